/* service/json.c — the contract's invoice object (and its refunds) in JSON. */
#include "service/private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "receipt.h"

static void service_iso_time(int64_t ms, char out[static 32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

json_t *service_time_json(int64_t ms)
{
    char b[32];
    if (ms <= 0)
        return json_null();
    service_iso_time(ms, b);
    return json_string(b);
}

json_t *service_str_or_null(const char *s)
{
    return s && s[0] ? json_string(s) : json_null();
}

void service_json_money(json_t *o, const char *key)
{
    char m[MONEY_BUFLEN];
    json_int_t minor = json_integer_value(json_object_get(o, key));
    json_object_set_new(o, key, json_string(money_format(minor, m)));
}

void service_json_time(json_t *o, const char *key)
{
    json_object_set_new(o, key, service_time_json(json_integer_value(json_object_get(o, key))));
}

/* Refunds JSON from the store, with amounts formatted and times in ISO. */
static json_t *service_refunds_json(service *svc, const store_invoice *inv)
{
    if (!inv->has_refunds)
        return json_array(); /* most invoices: no query at all */
    char *text = NULL;
    json_t *arr = NULL;
    if (store_refund_list(svc->st, inv->id, &text) == STORE_OK)
        arr = json_loads(text, 0, NULL);
    free(text);
    if (!json_is_array(arr)) {
        json_decref(arr);
        return json_array();
    }
    size_t i;
    json_t *r;
    json_array_foreach(arr, i, r)
    {
        service_json_money(r, "amount");
        json_object_set_new(r, "currency", json_string(inv->currency));
        service_json_time(r, "createdAt");
    }
    return arr;
}

json_t *service_invoice_json(service *svc, const store_invoice *inv)
{
    json_t *doc = inv->doc_json ? json_loads(inv->doc_json, 0, NULL) : NULL;
    json_t *o = service_invoice_json_doc(svc, inv, doc);
    json_decref(doc);
    return o;
}

void service_invoice_json_state(service *svc, const store_invoice *inv, json_t *o)
{
    json_object_set_new(o, "invoiceReference", service_str_or_null(inv->reference));
    json_object_set_new(o, "status", json_string(seqr_status_name(inv->status)));
    json_object_set_new(o, "version", json_integer(inv->version));
    json_object_set_new(o, "qrCode", service_str_or_null(inv->qr_code));
    if (inv->qr_code[0] != '\0' && strncasecmp(inv->qr_code, "HTTP:", 5) == 0) {
        buf url = BUF_INIT;
        buf_printf(&url, "SEQR:%s", inv->qr_code + 5);
        json_object_set_new(o, "seqrUrl", json_string(buf_cstr(&url)));
        buf_free(&url);
    } else {
        json_object_set_new(o, "seqrUrl", json_null());
    }
    json_object_set_new(o, "paymentPageUrl", service_payment_page_url(svc, inv));
    json_object_set_new(o, "updatedAt", service_time_json(inv->updated_at));
    json_object_set_new(o, "polling",
                        json_boolean(inv->send_state[0] == 's' &&
                                     strcmp(inv->send_state, STORE_SEND_SENT) == 0 &&
                                     !inv->polling_stopped && !seqr_status_is_final(inv->status)));
}

json_t *service_invoice_json_doc(service *svc, const store_invoice *inv, json_t *doc)
{
    json_t *o = json_object();
    char m[MONEY_BUFLEN];

    /* Every member in its place; service_invoice_json_state() fills the
     * ones marked "(state)" below (jansson keeps a member's place when its
     * value is replaced). */
    static const char *const state_head[] = {"invoiceReference", "status", "version", "qrCode",
                                             "seqrUrl"};
    for (size_t i = 0; i < sizeof state_head / sizeof *state_head; i++)
        json_object_set_new(o, state_head[i], json_null());
    static const char *const doc_fields[] = {
        "clientInvoiceId", "title",       "cashierId",       "footer",    "backUrl",
        "notificationUrl", "paymentMode", "clientReference", "terminalId", "webhookUrl"};
    for (size_t i = 0; i < sizeof doc_fields / sizeof *doc_fields; i++) {
        json_t *v = json_object_get(doc, doc_fields[i]);
        json_object_set(o, doc_fields[i], v ? v : json_null());
    }
    json_object_set_new(o, "paymentPageUrl", json_null()); /* (state) */
    json_object_set_new(o, "currency", json_string(inv->currency));
    json_object_set_new(o, "totalAmount", json_string(money_format(inv->total, m)));
    json_t *rows = json_object_get(doc, "rows");
    json_object_set(o, "rows", rows ? rows : json_array());
    json_object_set_new(o, "ersReference", service_str_or_null(inv->ers_reference));
    json_t *receipt = inv->receipt_json ? json_loads(inv->receipt_json, 0, NULL) : NULL;
    json_object_set_new(o, "receipt", receipt ? receipt : json_null());
    json_object_set_new(o, "receiptSubmitted", json_boolean(inv->receipt_submitted));
    json_t *rdoc = json_null();
    store_receipt sr;
    if (inv->receipt_submitted && store_receipt_last(svc->st, inv->id, &sr) == STORE_OK) {
        rdoc = json_object();
        json_object_set_new(rdoc, "mimeType", json_string(sr.mime_type));
        json_object_set_new(rdoc, "receiptType", json_string(sr.receipt_type));
        json_object_set_new(rdoc, "size", json_integer(sr.data_len));
        json_object_set_new(rdoc, "submittedAt", service_time_json(sr.submitted_at));
        store_receipt_clear(&sr);
    }
    json_object_set_new(o, "receiptDocument", rdoc);
    json_object_set_new(o, "refundedAmount", json_string(money_format(inv->refunded, m)));
    json_object_set_new(o, "refunds", service_refunds_json(svc, inv));
    json_object_set_new(o, "createdAt", service_time_json(inv->created_at));
    json_object_set_new(o, "updatedAt", json_null()); /* (state) */
    json_object_set_new(o, "expiresAt", service_time_json(inv->expires_at));
    json_object_set_new(o, "paidAt", service_time_json(inv->paid_at));
    json_object_set_new(o, "polling", json_null()); /* (state) */
    if (inv->last_error[0] != '\0')
        json_object_set_new(o, "lastError", json_string(inv->last_error));
    service_invoice_json_state(svc, inv, o);
    return o;
}
