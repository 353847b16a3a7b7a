/* service/receipts.c — payment receipts: rendered or given, submitted,
 * automatic after PAID, read back as HTML. See service.h. */
#include "service/private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "receipt.h"

/* Renders the receipt of a PAID invoice from what the store holds into html. */
static bool service_render_receipt(service *svc, const store_invoice *inv, buf *html,
                                   api_error *err)
{
    json_t *doc = inv->doc_json ? json_loads(inv->doc_json, 0, NULL) : NULL;
    json_t *paid = inv->receipt_json ? json_loads(inv->receipt_json, 0, NULL) : NULL;
    invoice_input in;
    api_error perr;
    bool ok = false;
    /* The stored document passed invoice_parse() when it was stored. Should a
     * later version validate more strictly, the buyer still gets a receipt:
     * without the rows, with the total. */
    bool parsed = invoice_parse(doc, &in, &perr);
    if (!parsed)
        log_warn("invoice %s: its stored rows cannot be read back (%s); the receipt shows the "
                 "total only",
                 inv->reference, perr.message);
    service_required req;
    service_required_fields(svc, inv->terminal_id, inv->id,
                            json_string_value(json_object_get(doc, "title")),
                            json_string_value(json_object_get(doc, "clientInvoiceId")),
                            json_string_value(json_object_get(doc, "cashierId")),
                            json_string_value(json_object_get(doc, "footer")), &req);
    receipt_input ri;
    memset(&ri, 0, sizeof ri);
    ri.store_name = service_store_name(svc);
    ri.address = svc->cfg->receipt_address;
    ri.org_number = svc->cfg->receipt_org_number;
    ri.title = req.title;
    ri.client_invoice_id = req.client_invoice_id;
    ri.footer = req.footer;
    ri.currency = inv->currency;
    ri.total = inv->total;
    ri.rows = parsed ? in.rows : NULL;
    ri.n_rows = parsed ? in.n_rows : 0;
    ri.payment_date = json_string_value(json_object_get(paid, "paymentDate"));
    ri.invoice_reference = inv->reference;
    ri.ers_reference = inv->ers_reference;
    ri.payment_reference = json_string_value(json_object_get(paid, "paymentReference"));
    char msg[200];
    if (receipt_render_html(&ri, html, msg, sizeof msg) != RECEIPT_OK) {
        api_error_set(err, 500, "receipt_failed", NULL, "rendering the receipt failed: %s", msg);
        goto cleanup;
    }
    ok = true;
cleanup:
    invoice_input_free(&in);
    json_decref(doc);
    json_decref(paid);
    return ok;
}

bool service_submit_receipt(service *svc, const char *ref, const char *mime_type,
                            const char *receipt_type, const char *data_b64, store_invoice *out,
                            api_error *err)
{
    bool own = mime_type == NULL && receipt_type == NULL && data_b64 == NULL;
    memset(out, 0, sizeof *out);
    if (!own && (mime_type == NULL || mime_type[0] == '\0' || receipt_type == NULL ||
                 receipt_type[0] == '\0' || data_b64 == NULL || data_b64[0] == '\0')) {
        const char *missing = mime_type == NULL || mime_type[0] == '\0'         ? "mimeType"
                              : receipt_type == NULL || receipt_type[0] == '\0' ? "receiptType"
                                                                                : "receiptData";
        api_error_set(err, 422, "missing_field", missing,
                      "a receiptDocument needs mimeType, receiptType and receiptData (%s is "
                      "missing); send no body for the gateway's own receipt",
                      missing);
        return false;
    }
    if (!service_load(svc, ref, out, err))
        return false;
    seqr_call_opts o;
    char pw[128];
    bool ok = false;
    buf html = BUF_INIT, b64 = BUF_INIT;
    if (out->status != SEQR_STATUS_PAID) {
        api_error_set(err, 409, "invalid_state", NULL,
                      "a receipt needs a PAID invoice; this one is %s",
                      seqr_status_name(out->status));
        goto cleanup;
    }
    if (out->ers_reference[0] == '\0') {
        api_error_set(err, 409, "invalid_state", NULL,
                      "this invoice is PAID, but SEQR gave no ersReference for the payment, "
                      "and a receipt names it; nothing was sent");
        goto cleanup;
    }
    if (!service_opts_for(svc, out, &o, pw, err))
        goto cleanup;
    if (own) {
        /* The gateway's own receipt: never an empty receiptDocument. */
        if (!service_render_receipt(svc, out, &html, err))
            goto cleanup;
        receipt_base64_encode(html.data, html.len, &b64);
        mime_type = "text/html";
        receipt_type = "PAYMENT_RECEIPT";
        data_b64 = buf_cstr(&b64);
    }
    seqr_result res;
    seqr_err e = seqr_submit_payment_receipt(svc->seqr, &o, out->ers_reference, mime_type,
                                             receipt_type, data_b64, &res);
    store_err se = store_receipt_add(svc->st, out->id, mime_type, receipt_type, data_b64,
                                     e == SEQR_OK ? 0 : (res.code != 0 ? res.code : -1));
    if (e != SEQR_OK) {
        if (se != STORE_OK)
            log_error("invoice %s: recording the refused receipt failed (%s)", ref,
                      store_strerror(se));
        service_seqr_error(err, e, &res, "submitPaymentReceipt");
        goto cleanup;
    }
    if (se == STORE_OK)
        se = store_invoice_set_receipt_submitted(svc->st, ref);
    if (se != STORE_OK) {
        service_unrecorded(err, se,
                           "the invoice still counts as without a receipt, so it may be "
                           "submitted again",
                           "SEQR accepted the receipt of invoice %s", ref);
        goto cleanup;
    }
    ok = true;
cleanup:
    buf_free(&html);
    buf_free(&b64);
    store_invoice_clear(out);
    if (ok)
        ok = service_load(svc, ref, out, err);
    return ok;
}

bool service_receipt_html(service *svc, const char *ref, buf *html, api_error *err)
{
    store_invoice inv;
    if (!service_load(svc, ref, &inv, err))
        return false;
    bool ok = false;
    store_receipt r;
    memset(&r, 0, sizeof r);
    if (inv.status != SEQR_STATUS_PAID) {
        api_error_set(err, 409, "invalid_state", NULL,
                      "a receipt needs a PAID invoice; this one is %s",
                      seqr_status_name(inv.status));
        goto cleanup;
    }
    store_err se =
        inv.receipt_submitted ? store_receipt_last(svc->st, inv.id, &r) : STORE_NOT_FOUND;
    if (se == STORE_OK && strcmp(r.mime_type, "text/html") == 0 && r.data_b64 != NULL) {
        if (!receipt_base64_decode(r.data_b64, html)) {
            api_error_set(err, 500, "receipt_failed", NULL, "the stored receipt is not base64");
            goto cleanup;
        }
        ok = true;
    } else if (se == STORE_OK) {
        api_error_set(err, 409, "receipt_not_html", NULL,
                      "the receipt submitted for this invoice is %s, not text/html",
                      r.mime_type[0] ? r.mime_type : "unknown");
    } else if (se == STORE_NOT_FOUND) {
        api_error_set(err, 409, "receipt_not_submitted", NULL,
                      "no receipt has been submitted for this invoice yet");
    } else {
        service_store_error(err, se, "receipt");
    }
cleanup:
    store_receipt_clear(&r);
    store_invoice_clear(&inv);
    return ok;
}

bool service_auto_receipt(service *svc, const char *ref, api_error *err)
{
    store_invoice inv;
    if (!service_load(svc, ref, &inv, err))
        return false;
    bool due = inv.status == SEQR_STATUS_PAID && !inv.receipt_submitted;
    store_invoice_clear(&inv);
    if (!due)
        return true;
    bool ok = service_submit_receipt(svc, ref, NULL, NULL, NULL, &inv, err);
    if (ok) {
        log_info("invoice %s: receipt submitted", ref);
        store_invoice_clear(&inv);
    }
    return ok;
}
