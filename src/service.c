/* service.c — the gateway's use cases; see service.h. */
#include "service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "receipt.h"

/* executeReport REPORT_NOT_READY: how often and how far apart to ask again. */
#define SERVICE_REPORT_TRIES 4
#define SERVICE_REPORT_WAIT_MS 1500

struct service {
    const config *cfg;
    store *st;
    seqr_client *seqr;
    service_pending_fn pending_fn;
    void *pending_ud;
};

service *service_new(const config *cfg, store *st, seqr_client *seqr)
{
    service *svc = calloc(1, sizeof *svc);
    if (svc == NULL)
        return NULL;
    svc->cfg = cfg;
    svc->st = st;
    svc->seqr = seqr;
    return svc;
}

void service_free(service *svc)
{
    free(svc);
}

void service_set_pending_hook(service *svc, service_pending_fn fn, void *ud)
{
    svc->pending_fn = fn;
    svc->pending_ud = ud;
}

/* Fills out with n random bytes as lower-case hex (out holds 2n+1). */
static void service_random_hex(char *out, size_t nbytes)
{
    unsigned char raw[64];
    if (nbytes > sizeof raw)
        nbytes = sizeof raw;
    size_t got = 0;
    while (got < nbytes) {
        ssize_t r = getrandom(raw + got, nbytes - got, 0);
        if (r <= 0)
            abort(); /* no entropy: refuse to make guessable secrets */
        got += (size_t)r;
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < nbytes; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[2 * nbytes] = '\0';
}

void service_seqr_error(api_error *err, seqr_err e, const seqr_result *res, const char *op)
{
    switch (e) {
    case SEQR_ERR_RESULT: {
        const seqr_code_info *info = seqr_code_lookup(res->code);
        api_error_set(err, seqr_code_http_status(res->code), "seqr_error", NULL,
                      "SEQR refused %s: %s", op, info ? info->meaning : "unknown result code");
        err->seqr_code = res->code;
        snprintf(err->seqr_desc, sizeof err->seqr_desc, "%s",
                 res->description[0] ? res->description : seqr_code_name(res->code));
        if (res->code == 94 || res->code == 2)
            err->retry_after_s = 5;
        break;
    }
    case SEQR_ERR_FAULT:
        api_error_set(err, 502, "seqr_fault", NULL, "SEQR answered %s with a SOAP fault: %s", op,
                      res->fault_string[0] ? res->fault_string : res->message);
        break;
    case SEQR_ERR_BAD_ANSWER:
        api_error_set(err, 502, "seqr_bad_answer", NULL,
                      "SEQR's answer to %s could not be understood: %s", op, res->message);
        break;
    case SEQR_ERR_CONNECT:
        api_error_set(err, 503, "seqr_unreachable", NULL, "SEQR could not be reached for %s: %s",
                      op, res->message);
        err->retry_after_s = 5;
        break;
    case SEQR_ERR_UNAVAILABLE:
        api_error_set(err, 503, "seqr_unavailable", NULL, "SEQR is unavailable for %s: %s", op,
                      res->message);
        err->retry_after_s = 5;
        break;
    case SEQR_ERR_TIMEOUT:
        api_error_set(err, 504, "seqr_timeout", NULL, "SEQR did not answer %s in time", op);
        break;
    case SEQR_ERR_INVALID:
        api_error_set(err, 422, "invalid_request", NULL, "%s: %s", op, res->message);
        break;
    case SEQR_OK:
    case SEQR_ERR_INTERNAL:
    default:
        api_error_set(err, 500, "internal_error", NULL, "%s failed inside the gateway: %s", op,
                      res->message);
        break;
    }
}

/* For a call that moves money (sendInvoice, refundPayment): true when the
 * request may have reached SEQR although no valid answer came back. Only a
 * refusal before sending (connect, TLS, invalid) or a definite answer (result
 * code, SOAP fault) means it did not happen. */
static bool service_outcome_unknown(seqr_err e)
{
    return e == SEQR_ERR_TIMEOUT || e == SEQR_ERR_BAD_ANSWER || e == SEQR_ERR_INTERNAL ||
           e == SEQR_ERR_UNAVAILABLE;
}

static void service_store_error(api_error *err, store_err e, const char *what)
{
    if (e == STORE_NOT_FOUND)
        api_error_set(err, 404, "not_found", NULL, "%s not found", what);
    else
        api_error_set(err, 500, "store_error", NULL, "the gateway's database failed (%s)",
                      store_strerror(e));
}

bool service_call_opts(service *svc, const char *terminal_id, seqr_call_opts *o,
                       char pw[static 128])
{
    memset(o, 0, sizeof *o);
    pw[0] = '\0';
    if (terminal_id == NULL || terminal_id[0] == '\0' ||
        strcmp(terminal_id, svc->cfg->seqr_terminal_id) == 0)
        return true;
    store_terminal t;
    if (store_terminal_get(svc->st, terminal_id, &t) != STORE_OK || t.unregistered)
        return false;
    snprintf(pw, 128, "%s", t.password);
    o->terminal_id = terminal_id;
    o->terminal_password = pw;
    memset(t.password, 0, sizeof t.password);
    return true;
}

static void service_iso_time(int64_t ms, char out[static 32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *service_time_json(int64_t ms)
{
    char b[32];
    if (ms <= 0)
        return json_null();
    service_iso_time(ms, b);
    return json_string(b);
}

static json_t *service_str_or_null(const char *s)
{
    return s && s[0] ? json_string(s) : json_null();
}

/* Rewrites o[key], minor units from the store, as a decimal string. */
static void service_json_money(json_t *o, const char *key)
{
    char m[MONEY_BUFLEN];
    json_int_t minor = json_integer_value(json_object_get(o, key));
    json_object_set_new(o, key, json_string(money_format(minor, m)));
}

/* Rewrites o[key], milliseconds from the store, as an ISO time (or null). */
static void service_json_time(json_t *o, const char *key)
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
    json_t *o = json_object();
    json_t *doc = inv->doc_json ? json_loads(inv->doc_json, 0, NULL) : NULL;
    char m[MONEY_BUFLEN];

    json_object_set_new(o, "invoiceReference", service_str_or_null(inv->reference));
    json_object_set_new(o, "status", json_string(inv->status));
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
    static const char *const doc_fields[] = {
        "clientInvoiceId", "title",       "cashierId",       "footer",    "backUrl",
        "notificationUrl", "paymentMode", "clientReference", "terminalId", "webhookUrl"};
    for (size_t i = 0; i < sizeof doc_fields / sizeof *doc_fields; i++) {
        json_t *v = json_object_get(doc, doc_fields[i]);
        json_object_set(o, doc_fields[i], v ? v : json_null());
    }
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
    json_object_set_new(o, "updatedAt", service_time_json(inv->updated_at));
    json_object_set_new(o, "expiresAt", service_time_json(inv->expires_at));
    json_object_set_new(o, "paidAt", service_time_json(inv->paid_at));
    json_object_set_new(o, "polling",
                        json_boolean(inv->send_state[0] == 's' &&
                                     strcmp(inv->send_state, STORE_SEND_SENT) == 0 &&
                                     !inv->polling_stopped &&
                                     !seqr_status_is_final(seqr_status_parse(inv->status))));
    if (inv->last_error[0] != '\0')
        json_object_set_new(o, "lastError", json_string(inv->last_error));
    json_decref(doc);
    return o;
}

static bool service_load(service *svc, const char *ref, store_invoice *out, api_error *err)
{
    store_err e = store_invoice_get(svc->st, ref, out);
    if (e != STORE_OK) {
        if (e == STORE_NOT_FOUND)
            api_error_set(err, 404, "not_found", NULL, "no invoice with reference %s", ref);
        else
            service_store_error(err, e, "invoice");
        return false;
    }
    return true;
}

bool service_get_invoice(service *svc, const char *ref, store_invoice *out, api_error *err)
{
    return service_load(svc, ref, out, err);
}

static bool service_opts_for(service *svc, const store_invoice *inv, seqr_call_opts *o,
                             char pw[static 128], api_error *err)
{
    if (!service_call_opts(svc, inv->terminal_id, o, pw)) {
        api_error_set(err, 409, "unknown_terminal", NULL,
                      "terminal %s of this invoice is no longer registered here", inv->terminal_id);
        return false;
    }
    if (inv->client_reference[0] != '\0')
        o->client_reference = inv->client_reference;
    return true;
}

/* The invoice fields SEQR marks required, as the gateway sends them: the
 * shop's value, else the terminal's own default (a registered point of sale's
 * name as title, its cashierId), else the configured [invoice] default;
 * clientInvoiceId falls back to the gateway's own id "gw-<local id>". */
typedef struct {
    const char *title;
    const char *client_invoice_id;
    const char *cashier_id;
    const char *footer;
    char own_id[32];
    char term_name[128];
    char term_cashier[128];
} service_required;

static bool service_given(const char *s)
{
    return s != NULL && s[0] != '\0';
}

/* The seller's name: [receipt] store_name, else clientId (config_load fills
 * it in; a config from config_defaults() alone may leave it empty). */
static const char *service_store_name(const service *svc)
{
    return service_given(svc->cfg->receipt_store_name) ? svc->cfg->receipt_store_name
                                                       : svc->cfg->seqr_client_id;
}

static void service_required_fields(service *svc, const char *terminal_id, int64_t local_id,
                                    const char *title, const char *client_invoice_id,
                                    const char *cashier_id, const char *footer,
                                    service_required *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->own_id, sizeof out->own_id, "gw-%lld", (long long)local_id);
    store_terminal t;
    if (service_given(terminal_id) && strcmp(terminal_id, svc->cfg->seqr_terminal_id) != 0 &&
        store_terminal_get(svc->st, terminal_id, &t) == STORE_OK) {
        memset(t.password, 0, sizeof t.password);
        snprintf(out->term_name, sizeof out->term_name, "%s", t.name);
        snprintf(out->term_cashier, sizeof out->term_cashier, "%s", t.cashier_id);
    }
    out->title = service_given(title)                     ? title
                 : service_given(out->term_name)          ? out->term_name
                 : service_given(svc->cfg->invoice_title) ? svc->cfg->invoice_title
                                                          : service_store_name(svc);
    out->cashier_id = service_given(cashier_id)          ? cashier_id
                      : service_given(out->term_cashier) ? out->term_cashier
                                                         : svc->cfg->invoice_cashier_id;
    out->footer = service_given(footer) ? footer : svc->cfg->invoice_footer;
    out->client_invoice_id = service_given(client_invoice_id) ? client_invoice_id : out->own_id;
}

/* Fills si's required fields from req (which must outlive si). */
static void service_apply_required(seqr_invoice *si, const service_required *req)
{
    si->title = req->title;
    si->client_invoice_id = req->client_invoice_id;
    si->cashier_id = req->cashier_id;
    si->footer = req->footer;
}

bool service_create_invoice(service *svc, const invoice_input *in, store_invoice *out,
                            api_error *err)
{
    seqr_call_opts o;
    char pw[128];
    memset(out, 0, sizeof *out);
    if (!service_call_opts(svc, in->terminal_id, &o, pw)) {
        api_error_set(err, 422, "unknown_terminal", "terminalId",
                      "terminal %s is not registered with this gateway", in->terminal_id);
        return false;
    }
    if (in->client_reference != NULL)
        o.client_reference = in->client_reference;

    store_invoice inv;
    memset(&inv, 0, sizeof inv);
    snprintf(inv.currency, sizeof inv.currency, "%s", in->currency);
    inv.total = in->total;
    snprintf(inv.terminal_id, sizeof inv.terminal_id, "%s", in->terminal_id ? in->terminal_id : "");
    snprintf(inv.payment_mode, sizeof inv.payment_mode, "%s", in->payment_mode);
    snprintf(inv.client_reference, sizeof inv.client_reference, "%s",
             in->client_reference ? in->client_reference : "");
    inv.doc_json = json_dumps(in->doc, JSON_COMPACT);
    /* invoice_ttl_s and auto_receipt change on reload: read them atomically. */
    long ttl_s = __atomic_load_n(&svc->cfg->poller_invoice_ttl_s, __ATOMIC_RELAXED);
    inv.expires_at = store_now_ms() + (int64_t)ttl_s * 1000;
    service_random_hex(inv.notify_token, 16);

    store_err se = store_invoice_begin(svc->st, &inv);
    if (se != STORE_OK) {
        service_store_error(err, se, "invoice");
        store_invoice_clear(&inv);
        return false;
    }

    seqr_invoice si;
    invoice_to_seqr(in, &si);
    si.issue_date = (time_t)(inv.created_at / 1000);
    service_required req;
    service_required_fields(svc, inv.terminal_id, inv.id, in->title, in->client_invoice_id,
                            in->cashier_id, in->footer, &req);
    service_apply_required(&si, &req);
    buf notify = BUF_INIT;
    /* SEQR always notifies the gateway itself (when it can be reached); a
     * shop's own notificationUrl gets the invoice.paid webhook instead. */
    if (svc->cfg->http_public_url[0] != '\0') {
        const char *base = svc->cfg->http_public_url;
        size_t bl = strlen(base);
        buf_printf(&notify, "%.*s/seqr/notify/gw-%lld?token=%s",
                   (int)(bl > 0 && base[bl - 1] == '/' ? bl - 1 : bl), base, (long long)inv.id,
                   inv.notify_token);
        si.notification_url = buf_cstr(&notify);
    }
    if (ttl_s > 0 && strncmp(inv.payment_mode, "RESERVATION", 11) == 0)
        si.commit_reservation_timeout = (int)ttl_s;

    seqr_send_invoice_answer ans;
    seqr_result res;
    seqr_err e = seqr_send_invoice(svc->seqr, &o, &si, NULL, 0, &ans, &res);
    buf_free(&notify);
    int64_t id = inv.id;
    if (e != SEQR_OK) {
        store_invoice_clear(&inv);
        bool unknown = service_outcome_unknown(e);
        store_invoice_send_failed(svc->st, id, unknown ? STORE_SEND_UNKNOWN : STORE_SEND_REJECTED,
                                  res.message);
        if (unknown)
            log_warn("sendInvoice for local invoice %lld: outcome unknown (%s); kept as "
                     "'unknown', never shown to a buyer",
                     (long long)id, res.message);
        service_seqr_error(err, e, &res, "sendInvoice");
        return false;
    }
    se = store_invoice_sent(svc->st, &inv, ans.invoice_reference, ans.invoice_qr_code);
    if (se != STORE_OK) {
        log_error("invoice %s was created at SEQR but storing it failed (%s)",
                  ans.invoice_reference, store_strerror(se));
        service_store_error(err, se, "invoice");
        store_invoice_clear(&inv);
        return false;
    }
    *out = inv; /* the stored row, as store_invoice_sent() left it; out owns it now */
    char total_text[MONEY_BUFLEN];
    log_info("invoice %s created: %s %s", out->reference, money_format(out->total, total_text),
             out->currency);
    if (svc->pending_fn)
        svc->pending_fn(svc->pending_ud, out);
    return true;
}

/* Receipt as stored JSON (caller frees), or NULL when absent. */
static char *service_receipt_json(const seqr_receipt *r)
{
    if (!r->present)
        return NULL;
    json_t *o = json_object();
    char m[MONEY_BUFLEN];
    json_object_set_new(o, "terminalId", service_str_or_null(r->terminal_id));
    json_object_set_new(o, "paymentDate", service_str_or_null(r->payment_date));
    json_object_set_new(o, "invoiceReference", service_str_or_null(r->invoice_reference));
    json_object_set_new(o, "paymentReference", service_str_or_null(r->payment_reference));
    json_object_set_new(o, "payerTerminalId", service_str_or_null(r->payer_terminal_id));
    json_object_set_new(o, "receiverName", service_str_or_null(r->receiver_name));
    json_object_set_new(o, "title", service_str_or_null(r->title));
    json_object_set_new(o, "clientInvoiceId", service_str_or_null(r->client_invoice_id));
    json_object_set_new(o, "totalAmount",
                        r->has_total ? json_string(money_format(r->total, m)) : json_null());
    json_object_set_new(o, "currency", service_str_or_null(r->currency));
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

void service_apply_status(service *svc, const char *ref, const seqr_payment_status *ps, bool *final,
                          bool *needs_receipt)
{
    *final = false;
    *needs_receipt = false;
    if (ps->status == SEQR_STATUS_UNKNOWN) {
        log_warn("invoice %s: SEQR reported an unknown status '%s'; still polling", ref,
                 ps->status_text);
        return;
    }
    char *receipt = service_receipt_json(&ps->receipt);
    bool changed = false;
    store_err e = store_invoice_set_status(svc->st, ref, seqr_status_name(ps->status), ps->version,
                                           ps->ers_reference[0] ? ps->ers_reference : NULL, receipt,
                                           &changed);
    free(receipt);
    if (e == STORE_CONFLICT) {
        /* Stale: another answer (the poller's, say PAID) is newer. What is
         * stored decides whether polling is over. */
        log_debug("invoice %s: stale answer %s (version %lld) ignored", ref,
                  seqr_status_name(ps->status), (long long)ps->version);
        store_invoice inv;
        if (store_invoice_get(svc->st, ref, &inv) == STORE_OK) {
            *final = seqr_status_is_final(seqr_status_parse(inv.status));
            store_invoice_clear(&inv);
        }
        return;
    }
    if (e != STORE_OK) {
        log_error("invoice %s: storing status %s failed (%s)", ref, seqr_status_name(ps->status),
                  store_strerror(e));
        return;
    }
    if (changed)
        log_info("invoice %s is %s (version %lld)", ref, seqr_status_name(ps->status),
                 (long long)ps->version);
    *final = seqr_status_is_final(ps->status);
    if (ps->status == SEQR_STATUS_PAID &&
        __atomic_load_n(&svc->cfg->poller_auto_receipt, __ATOMIC_RELAXED)) {
        store_invoice inv;
        if (store_invoice_get(svc->st, ref, &inv) == STORE_OK) {
            *needs_receipt = !inv.receipt_submitted;
            store_invoice_clear(&inv);
        }
    }
}

bool service_refresh_status(service *svc, const char *ref, store_invoice *out, api_error *err)
{
    if (!service_load(svc, ref, out, err))
        return false;
    seqr_call_opts o;
    char pw[128];
    if (!service_opts_for(svc, out, &o, pw, err)) {
        store_invoice_clear(out);
        return false;
    }
    seqr_payment_status ps;
    seqr_result res;
    seqr_err e = seqr_get_payment_status(svc->seqr, &o, ref, out->version, &ps, &res);
    if (e != SEQR_OK) {
        store_invoice_clear(out);
        service_seqr_error(err, e, &res, "getPaymentStatus");
        return false;
    }
    bool final, needs_receipt;
    service_apply_status(svc, ref, &ps, &final, &needs_receipt);
    if (needs_receipt) {
        api_error rerr;
        if (!service_auto_receipt(svc, ref, &rerr))
            log_warn("invoice %s: automatic receipt failed: %s", ref, rerr.message);
    }
    store_invoice_clear(out);
    return service_load(svc, ref, out, err);
}

static bool service_require_open(const store_invoice *inv, const char *what, api_error *err)
{
    if (seqr_status_is_final(seqr_status_parse(inv->status))) {
        api_error_set(err, 409, "invalid_state", NULL, "cannot %s: the invoice is %s", what,
                      inv->status);
        return false;
    }
    return true;
}

bool service_update_invoice(service *svc, const char *ref, const invoice_input *in,
                            store_invoice *out, api_error *err)
{
    if (!service_load(svc, ref, out, err))
        return false;
    seqr_call_opts o;
    char pw[128];
    bool ok = false;
    if (!service_require_open(out, "update", err) || !service_opts_for(svc, out, &o, pw, err))
        goto cleanup;
    if (strcmp(in->currency, out->currency) != 0) {
        api_error_set(err, 422, "invalid_currency", "currency",
                      "the currency of an invoice cannot change (it is %s)", out->currency);
        goto cleanup;
    }
    seqr_invoice si;
    invoice_to_seqr(in, &si);
    si.issue_date = (time_t)(out->created_at / 1000);
    service_required req;
    service_required_fields(svc, out->terminal_id, out->id, in->title, in->client_invoice_id,
                            in->cashier_id, in->footer, &req);
    service_apply_required(&si, &req);
    seqr_result res;
    seqr_err e = seqr_update_invoice(svc->seqr, &o, ref, &si, NULL, 0, &res);
    if (e != SEQR_OK) {
        service_seqr_error(err, e, &res, "updateInvoice");
        goto cleanup;
    }
    char *doc = json_dumps(in->doc, JSON_COMPACT);
    store_err se = store_invoice_set_doc(svc->st, ref, doc, in->total);
    free(doc);
    if (se != STORE_OK) {
        service_store_error(err, se, "invoice");
        goto cleanup;
    }
    ok = true;
cleanup:
    store_invoice_clear(out);
    if (ok)
        ok = service_load(svc, ref, out, err);
    return ok;
}

bool service_cancel_invoice(service *svc, const char *ref, store_invoice *out, api_error *err)
{
    if (!service_load(svc, ref, out, err))
        return false;
    seqr_call_opts o;
    char pw[128];
    bool ok = false;
    if (strcmp(out->status, "CANCELED") == 0) {
        api_error_set(err, 409, "invalid_state", NULL, "the invoice is already CANCELED");
        goto cleanup;
    }
    if (!service_require_open(out, "cancel", err) || !service_opts_for(svc, out, &o, pw, err))
        goto cleanup;
    seqr_result res;
    seqr_err e = seqr_cancel_invoice(svc->seqr, &o, ref, &res);
    if (e == SEQR_ERR_RESULT && res.code == 95)
        e = SEQR_OK; /* SEQR had it canceled already: agree with it */
    if (e != SEQR_OK) {
        service_seqr_error(err, e, &res, "cancelInvoice");
        if (e == SEQR_ERR_RESULT && res.code == 50) {
            /* Paid meanwhile: learn the payment right away. */
            store_invoice fresh;
            api_error ignore;
            if (service_refresh_status(svc, ref, &fresh, &ignore))
                store_invoice_clear(&fresh);
        }
        goto cleanup;
    }
    /* SEQR canceled it: authoritative, at the newest version stored by now. */
    store_invoice now;
    int64_t version = out->version;
    if (store_invoice_get(svc->st, ref, &now) == STORE_OK) {
        if (now.version > version)
            version = now.version;
        store_invoice_clear(&now);
    }
    if (store_invoice_set_status(svc->st, ref, "CANCELED", version, NULL, NULL, NULL) != STORE_OK)
        log_warn("invoice %s: canceled at SEQR, but storing CANCELED failed", ref);
    log_info("invoice %s canceled", ref);
    ok = true;
cleanup:
    store_invoice_clear(out);
    if (ok)
        ok = service_load(svc, ref, out, err);
    return ok;
}

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
    if (strcmp(out->status, "PAID") != 0 || out->ers_reference[0] == '\0') {
        api_error_set(err, 409, "invalid_state", NULL,
                      "a receipt needs a PAID invoice; this one is %s", out->status);
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
    store_receipt_add(svc->st, out->id, mime_type, receipt_type, data_b64,
                      e == SEQR_OK ? 0 : (res.code != 0 ? res.code : -1));
    if (e != SEQR_OK) {
        service_seqr_error(err, e, &res, "submitPaymentReceipt");
        goto cleanup;
    }
    store_invoice_set_receipt_submitted(svc->st, ref);
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
    if (strcmp(inv.status, "PAID") != 0) {
        api_error_set(err, 409, "invalid_state", NULL,
                      "a receipt needs a PAID invoice; this one is %s", inv.status);
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
    bool due = strcmp(inv.status, "PAID") == 0 && !inv.receipt_submitted;
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

bool service_refund(service *svc, const char *ref, int64_t amount, const char *title,
                    json_t **refund, api_error *err)
{
    store_invoice inv;
    *refund = NULL;
    if (!service_load(svc, ref, &inv, err))
        return false;
    bool ok = false;
    seqr_call_opts o;
    char pw[128];
    char m[MONEY_BUFLEN], m2[MONEY_BUFLEN];
    if (strcmp(inv.status, "PAID") != 0 || inv.ers_reference[0] == '\0') {
        api_error_set(err, 409, "invalid_state", NULL,
                      "only a PAID invoice can be refunded; this one is %s", inv.status);
        goto cleanup;
    }
    if (!service_opts_for(svc, &inv, &o, pw, err))
        goto cleanup;
    int64_t refund_id = 0;
    store_err se = store_refund_begin(svc->st, inv.id, amount, title, &refund_id);
    if (se == STORE_CONFLICT) {
        /* Either too much, or an earlier refund is still in doubt. */
        store_invoice now;
        if (store_invoice_get_id(svc->st, inv.id, &now) == STORE_OK) {
            int64_t left = now.total - now.refunded;
            if (amount > left)
                api_error_set(err, 422, "refund_too_large", "amount",
                              "refund %s is more than what is left to refund (%s)",
                              money_format(amount, m), money_format(left < 0 ? 0 : left, m2));
            else
                api_error_set(err, 409, "refund_in_doubt", NULL,
                              "an earlier refund of this invoice has an unknown outcome; "
                              "look it up in SEQR's reconciliation report and settle it "
                              "(POST /invoices/%s/refunds/{id}/resolve) before refunding "
                              "again",
                              ref);
            store_invoice_clear(&now);
        } else {
            api_error_set(err, 409, "refund_conflict", "amount", "refund refused");
        }
        goto cleanup;
    }
    if (se != STORE_OK) {
        service_store_error(err, se, "invoice");
        goto cleanup;
    }
    seqr_invoice ri;
    memset(&ri, 0, sizeof ri);
    buf cid = BUF_INIT;
    const char *orig_cid = NULL;
    json_t *doc = inv.doc_json ? json_loads(inv.doc_json, 0, NULL) : NULL;
    orig_cid = json_string_value(json_object_get(doc, "clientInvoiceId"));
    buf_printf(&cid, "%s-R%lld", orig_cid ? orig_cid : inv.reference, (long long)refund_id);
    buf rtitle = BUF_INIT;
    if (title == NULL)
        buf_printf(&rtitle, "Refund of invoice %s", inv.reference);
    ri.title = title ? title : buf_cstr(&rtitle);
    ri.client_invoice_id = buf_cstr(&cid);
    ri.total = amount;
    ri.currency = inv.currency;
    ri.cashier_id = json_string_value(json_object_get(doc, "cashierId"));
    seqr_refund_answer ans;
    seqr_result res;
    seqr_err e = seqr_refund_payment(svc->seqr, &o, inv.ers_reference, &ri, &ans, &res);
    buf_free(&cid);
    buf_free(&rtitle);
    json_decref(doc);
    if (e == SEQR_OK) {
        store_refund_finish(svc->st, refund_id, STORE_REFUND_DONE, ans.ers_reference, "");
        log_info("invoice %s: refunded %s %s (ersReference %s)", ref, money_format(amount, m),
                 inv.currency, ans.ers_reference);
    } else {
        bool unknown = service_outcome_unknown(e);
        store_refund_finish(svc->st, refund_id,
                            unknown ? STORE_REFUND_UNKNOWN : STORE_REFUND_FAILED, "", res.message);
        if (unknown)
            log_warn("invoice %s: refund %lld of %s %s outcome unknown (%s); amount stays "
                     "reserved",
                     ref, (long long)refund_id, money_format(amount, m), inv.currency, res.message);
        service_seqr_error(err, e, &res, "refundPayment");
        goto cleanup;
    }
    char *rj = NULL;
    if (store_refund_get(svc->st, refund_id, &rj) == STORE_OK) {
        json_t *r = json_loads(rj, 0, NULL);
        if (r != NULL) {
            json_object_set_new(r, "amount", json_string(money_format(amount, m)));
            json_object_set_new(r, "currency", json_string(inv.currency));
            json_object_set_new(
                r, "createdAt",
                service_time_json(json_integer_value(json_object_get(r, "createdAt"))));
            json_object_set_new(r, "invoiceReference", json_string(inv.reference));
            *refund = r;
        }
    }
    free(rj);
    if (*refund == NULL) {
        api_error_set(err, 500, "store_error", NULL,
                      "the refund was made but reading it back failed");
        goto cleanup;
    }
    ok = true;
cleanup:
    store_invoice_clear(&inv);
    return ok;
}

bool service_invoice_resolve(service *svc, int64_t id, const char *reference, api_error *err)
{
    char was[16];
    store_err se = store_invoice_resolve(svc->st, id, reference, was);
    if (se == STORE_NOT_FOUND) {
        api_error_set(err, 404, "not_found", NULL, "the gateway has no invoice %lld",
                      (long long)id);
        return false;
    }
    if (se == STORE_CONFLICT && strcmp(was, STORE_SEND_UNKNOWN) == 0) {
        api_error_set(err, 409, "reference_in_use", "invoiceReference",
                      "invoice reference %s belongs to another invoice", reference);
        return false;
    }
    if (se == STORE_CONFLICT) {
        api_error_set(err, 409, "invoice_not_in_doubt", NULL,
                      "invoice %lld is %s; only an invoice whose sendInvoice outcome is unknown "
                      "can be settled",
                      (long long)id, was);
        return false;
    }
    if (se != STORE_OK) {
        service_store_error(err, se, "invoice");
        return false;
    }
    log_warn("local invoice %lld, sendInvoice outcome unknown until now, settled by the operator "
             "as %s%s%s",
             (long long)id, reference ? "done, invoice reference " : "failed",
             reference ? reference : "", reference ? "; polled from now on" : "");
    if (reference != NULL && svc->pending_fn != NULL) {
        store_invoice inv;
        if (store_invoice_get_id(svc->st, id, &inv) == STORE_OK) {
            svc->pending_fn(svc->pending_ud, &inv);
            store_invoice_clear(&inv);
        } else {
            log_error("invoice %s is settled but could not be read back; it is polled after "
                      "the next restart",
                      reference);
        }
    }
    return true;
}

bool service_refund_resolve(service *svc, const char *ref, int64_t refund_id, bool happened,
                            const char *ers_reference, store_invoice *out, api_error *err)
{
    store_invoice inv;
    memset(out, 0, sizeof *out);
    if (!service_load(svc, ref, &inv, err))
        return false;
    char was[16];
    const char *state = happened ? STORE_REFUND_DONE : STORE_REFUND_FAILED;
    store_err se = store_refund_resolve(svc->st, inv.id, refund_id, state,
                                        ers_reference ? ers_reference : "", was);
    bool ok = false;
    if (se == STORE_NOT_FOUND) {
        api_error_set(err, 404, "not_found", NULL, "invoice %s has no refund %lld", ref,
                      (long long)refund_id);
    } else if (se == STORE_CONFLICT) {
        api_error_set(err, 409, "refund_not_in_doubt", NULL,
                      "refund %lld is %s; only a refund whose outcome is unknown can be settled",
                      (long long)refund_id, was);
    } else if (se != STORE_OK) {
        service_store_error(err, se, "refund");
    } else {
        log_warn("invoice %s: refund %lld, outcome unknown until now, settled by the operator as "
                 "%s%s%s",
                 ref, (long long)refund_id, state, ers_reference ? ", ersReference " : "",
                 ers_reference ? ers_reference : "");
        ok = service_load(svc, ref, out, err);
    }
    store_invoice_clear(&inv);
    return ok;
}

json_t *service_unknown_outcomes(service *svc, api_error *err)
{
    char *text = NULL;
    store_err se = store_unknown_list(svc->st, &text);
    json_t *o = se == STORE_OK ? json_loads(text, 0, NULL) : NULL;
    free(text);
    if (!json_is_object(o)) {
        json_decref(o);
        service_store_error(err, se == STORE_OK ? STORE_IO : se, "outcomes");
        return NULL;
    }
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(o, "invoices"), i, v)
    {
        service_json_money(v, "totalAmount");
        service_json_time(v, "createdAt");
        service_json_time(v, "expiresAt");
    }
    json_array_foreach(json_object_get(o, "refunds"), i, v)
    {
        service_json_money(v, "amount");
        service_json_time(v, "createdAt");
    }
    return o;
}

bool service_commit(service *svc, const char *ref, bool has_amount, int64_t amount,
                    store_invoice *out, api_error *err)
{
    if (!service_load(svc, ref, out, err))
        return false;
    seqr_call_opts o;
    char pw[128];
    bool ok = false;
    if (strcmp(out->status, "RESERVED") != 0) {
        api_error_set(err, 409, "invalid_state", NULL,
                      "only a RESERVED invoice can be committed; this one is %s", out->status);
        goto cleanup;
    }
    if (has_amount && (amount <= 0 || amount > out->total)) {
        api_error_set(err, 422, "invalid_amount", "amount",
                      "amount must be greater than 0 and at most the invoice total");
        goto cleanup;
    }
    if (!service_opts_for(svc, out, &o, pw, err))
        goto cleanup;
    /* Committing less makes the invoice worth less: the refund cap is the
     * committed amount. Lowered before the call (a cap too low is safe, one
     * too high is not) and restored only when SEQR definitely refused. */
    bool less = has_amount && amount < out->total;
    if (less) {
        store_err se = store_invoice_set_total(svc->st, ref, amount);
        if (se != STORE_OK) {
            service_store_error(err, se, "invoice");
            goto cleanup;
        }
    }
    seqr_result res;
    seqr_err e = seqr_commit_reservation(svc->seqr, &o, ref, has_amount ? amount : out->total,
                                         out->currency, &res);
    if (e != SEQR_OK) {
        service_seqr_error(err, e, &res, "commitReservation");
        if (less && !service_outcome_unknown(e) &&
            store_invoice_set_total(svc->st, ref, out->total) != STORE_OK)
            log_error("invoice %s: restoring the total after a refused commit failed", ref);
        goto cleanup;
    }
    if (less) {
        char m1[MONEY_BUFLEN], m2[MONEY_BUFLEN];
        log_info("invoice %s: reservation committed for %s of %s %s", ref,
                 money_format(amount, m1), money_format(out->total, m2), out->currency);
    }
    ok = true;
cleanup:
    store_invoice_clear(out);
    if (ok)
        ok = service_refresh_status(svc, ref, out, err);
    return ok;
}

typedef struct {
    service *svc;
    json_t *arr;
} service_list_ctx;

static bool service_list_one(const store_invoice *inv, void *ud)
{
    service_list_ctx *ctx = ud;
    json_array_append_new(ctx->arr, service_invoice_json(ctx->svc, inv));
    return true;
}

bool service_list_invoices(service *svc, const char *status, int64_t after, int limit,
                           json_t **result, api_error *err)
{
    service_list_ctx ctx = {svc, json_array()};
    int64_t last = 0;
    bool more = false;
    store_err e =
        store_invoice_list(svc->st, status, after, limit, service_list_one, &ctx, &last, &more);
    if (e != STORE_OK) {
        json_decref(ctx.arr);
        service_store_error(err, e, "invoices");
        return false;
    }
    json_t *o = json_object();
    json_object_set_new(o, "invoices", ctx.arr);
    if (more) {
        char c[32];
        snprintf(c, sizeof c, "%lld", (long long)last);
        json_object_set_new(o, "next", json_string(c));
    } else {
        json_object_set_new(o, "next", json_null());
    }
    *result = o;
    return true;
}

static bool service_require_reseller(service *svc, api_error *err)
{
    if (svc->cfg->reseller_id[0] == '\0') {
        api_error_set(err, 409, "reseller_not_configured", NULL,
                      "this operation needs the [reseller] section of the configuration");
        return false;
    }
    return true;
}

bool service_mark_period(service *svc, const char *terminal_id, char period_id[static 64],
                         api_error *err)
{
    if (!service_require_reseller(svc, err))
        return false;
    seqr_param p = {"TERMINALID", terminal_id};
    bool per_terminal = terminal_id != NULL && terminal_id[0] != '\0';
    seqr_result res;
    seqr_err e = seqr_mark_transaction_period(svc->seqr, NULL, per_terminal ? &p : NULL,
                                              per_terminal ? 1 : 0, period_id, &res);
    if (e != SEQR_OK) {
        service_seqr_error(err, e, &res, "markTransactionPeriod");
        return false;
    }
    store_period_add(svc->st, period_id, per_terminal ? terminal_id : "");
    log_info("transaction period %s marked%s%s", period_id, per_terminal ? " for terminal " : "",
             per_terminal ? terminal_id : "");
    return true;
}

bool service_report(service *svc, const char *report_id, const char *language,
                    const seqr_param *params, size_t n_params, seqr_report *out, api_error *err)
{
    if (!service_require_reseller(svc, err))
        return false;
    for (int attempt = 1;; attempt++) {
        seqr_result res;
        memset(out, 0, sizeof *out);
        seqr_err e =
            seqr_execute_report(svc->seqr, NULL, report_id, language, params, n_params, out, &res);
        if (e == SEQR_OK)
            return true;
        seqr_report_free(out);
        if (e == SEQR_ERR_RESULT && res.code == 2 && attempt < SERVICE_REPORT_TRIES) {
            usleep(SERVICE_REPORT_WAIT_MS * 1000);
            continue;
        }
        service_seqr_error(err, e, &res, "executeReport");
        if (e == SEQR_ERR_RESULT && res.code == 2) {
            snprintf(err->code, sizeof err->code, "report_not_ready");
            snprintf(err->message, sizeof err->message,
                     "the report is not ready yet after %d tries; ask again shortly",
                     SERVICE_REPORT_TRIES);
            err->retry_after_s = 5;
        }
        return false;
    }
}

bool service_register_terminal(service *svc, const char *external_id, const char *name,
                               const char *password, const char *cashier_id,
                               char terminal_id[static 64], api_error *err)
{
    if (!service_require_reseller(svc, err))
        return false;
    char generated[65];
    if (password == NULL || password[0] == '\0') {
        service_random_hex(generated, 24);
        password = generated;
    }
    seqr_result res;
    seqr_err e =
        seqr_register_terminal(svc->seqr, NULL, external_id, password, name, terminal_id, &res);
    if (e != SEQR_OK) {
        service_seqr_error(err, e, &res, "registerTerminal");
        return false;
    }
    store_terminal t;
    memset(&t, 0, sizeof t);
    snprintf(t.terminal_id, sizeof t.terminal_id, "%s", terminal_id);
    snprintf(t.external_id, sizeof t.external_id, "%s", external_id);
    snprintf(t.name, sizeof t.name, "%s", name);
    snprintf(t.password, sizeof t.password, "%s", password);
    snprintf(t.cashier_id, sizeof t.cashier_id, "%s", cashier_id ? cashier_id : "");
    store_err se = store_terminal_add(svc->st, &t);
    memset(t.password, 0, sizeof t.password);
    memset(generated, 0, sizeof generated);
    if (se != STORE_OK) {
        log_error("terminal %s registered at SEQR but storing it failed", terminal_id);
        service_store_error(err, se, "terminal");
        return false;
    }
    log_info("terminal %s registered (%s)", terminal_id, external_id);
    return true;
}

static bool service_terminal_opts(service *svc, const char *terminal_id, seqr_call_opts *o,
                                  char pw[static 128], api_error *err)
{
    store_terminal t;
    store_err se = store_terminal_get(svc->st, terminal_id, &t);
    if (se != STORE_OK || t.unregistered) {
        api_error_set(err, 404, "not_found", NULL, "no registered terminal %s", terminal_id);
        return false;
    }
    memset(t.password, 0, sizeof t.password);
    return service_call_opts(svc, terminal_id, o, pw);
}

bool service_assign_seqr_id(service *svc, const char *terminal_id, const char *seqr_id,
                            api_error *err)
{
    seqr_call_opts o;
    char pw[128];
    if (!service_terminal_opts(svc, terminal_id, &o, pw, err))
        return false;
    seqr_result res;
    seqr_err e = seqr_assign_seqr_id(svc->seqr, &o, seqr_id, &res);
    if (e != SEQR_OK) {
        service_seqr_error(err, e, &res, "assignSeqrId");
        return false;
    }
    store_terminal_set_seqr_id(svc->st, terminal_id, seqr_id);
    return true;
}

/* Collects the references of a terminal's open invoices into a message. */
typedef struct {
    char list[320];
    size_t count;
} service_open_list;

static bool service_collect_open(const store_invoice *inv, void *ud)
{
    service_open_list *l = ud;
    size_t used = strlen(l->list);
    if (l->count < 10 && used + strlen(inv->reference) + 3 < sizeof l->list)
        snprintf(l->list + used, sizeof l->list - used, "%s%s", l->count > 0 ? ", " : "",
                 inv->reference);
    l->count++;
    return true;
}

bool service_unregister_terminal(service *svc, const char *terminal_id, api_error *err)
{
    seqr_call_opts o;
    char pw[128];
    if (!service_terminal_opts(svc, terminal_id, &o, pw, err))
        return false;
    /* Its open invoices would stop being polled (SEQR no longer knows the
     * terminal): the shop cancels them (or waits for them) first. */
    service_open_list open = {.list = "", .count = 0};
    if (store_terminal_open_invoices(svc->st, terminal_id, service_collect_open, &open) !=
        STORE_OK) {
        api_error_set(err, 500, "store_error", NULL, "the gateway's database could not be read");
        return false;
    }
    if (open.count > 0) {
        api_error_set(err, 409, "terminal_has_open_invoices", NULL,
                      "terminal %s has %zu open invoice(s): %s%s; cancel them "
                      "(POST /invoices/{ref}/cancel) or let them be paid first",
                      terminal_id, open.count, open.list, open.count > 10 ? ", ..." : "");
        return false;
    }
    seqr_result res;
    seqr_err e = seqr_unregister_terminal(svc->seqr, &o, &res);
    if (e != SEQR_OK) {
        service_seqr_error(err, e, &res, "unregisterTerminal");
        return false;
    }
    store_terminal_unregister(svc->st, terminal_id);
    log_info("terminal %s unregistered", terminal_id);
    return true;
}

bool service_expire(service *svc, const char *ref, api_error *err)
{
    store_invoice inv;
    bool ok = service_cancel_invoice(svc, ref, &inv, err);
    if (ok) {
        log_info("invoice %s expired unpaid and was canceled", ref);
        store_invoice_clear(&inv);
    }
    return ok;
}

void service_stop_polling(service *svc, const char *ref, const char *why)
{
    log_warn("invoice %s: polling stopped: %s", ref, why);
    store_invoice_stop_polling(svc->st, ref, why);
}

store_err service_idem_claim(service *svc, const char *scope, const char *key,
                             const char *request_hash, bool *same_request, int *status,
                             char **response)
{
    return store_idem_claim(svc->st, scope, key, request_hash,
                            (int64_t)svc->cfg->http_idempotency_ttl_s * 1000, same_request, status,
                            response);
}

void service_idem_finish(service *svc, const char *scope, const char *key, int status,
                         const char *response)
{
    if (store_idem_finish(svc->st, scope, key, status, response) != STORE_OK)
        log_warn("storing the answer for an Idempotency-Key failed");
}

void service_idem_release(service *svc, const char *scope, const char *key)
{
    if (store_idem_release(svc->st, scope, key) != STORE_OK)
        log_warn("releasing an Idempotency-Key failed");
}

bool service_counts(service *svc, int64_t *unknown)
{
    return store_counts(svc->st, unknown) == STORE_OK;
}

bool service_check_notify(service *svc, const char *ref, const char *token, char ref_out[static 64])
{
    store_invoice inv;
    store_err e;
    if (strncmp(ref, "gw-", 3) == 0) {
        char *end = NULL;
        long long id = strtoll(ref + 3, &end, 10);
        if (end == ref + 3 || *end != '\0' || id <= 0)
            return false;
        e = store_invoice_get_id(svc->st, id, &inv);
    } else {
        e = store_invoice_get(svc->st, ref, &inv);
    }
    if (e != STORE_OK)
        return false;
    /* Compare in constant time; an empty token never matches. */
    size_t n = strlen(inv.notify_token);
    unsigned char diff = (unsigned char)(token == NULL || n == 0 || strlen(token) != n);
    for (size_t i = 0; token != NULL && i < n && token[i] != '\0'; i++)
        diff |= (unsigned char)(token[i] ^ inv.notify_token[i]);
    bool ok = diff == 0 && inv.reference[0] != '\0';
    if (ok)
        snprintf(ref_out, 64, "%s", inv.reference);
    store_invoice_clear(&inv);
    return ok;
}

bool service_terminal_seqr_id(service *svc, const char *terminal_id, char seqr_id[static 128],
                              api_error *err)
{
    store_terminal t;
    store_err e = store_terminal_get(svc->st, terminal_id, &t);
    memset(t.password, 0, sizeof t.password);
    if (e != STORE_OK || t.unregistered) {
        api_error_set(err, 404, "not_found", NULL, "no registered terminal %s", terminal_id);
        return false;
    }
    if (t.seqr_id[0] == '\0') {
        api_error_set(err, 409, "invalid_state", NULL,
                      "terminal %s has no SEQR ID yet (POST /terminals/{id}/seqr-id)", terminal_id);
        return false;
    }
    snprintf(seqr_id, 128, "%s", t.seqr_id);
    return true;
}
