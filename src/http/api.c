/* http/api.c — the REST endpoints of API.md: routing table, request JSON
 * validation for the small bodies, and the handlers, each a thin layer over
 * one service_* use case. Invoice bodies are validated by invoice.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup.h"
#include "health.h"
#include "http/api_events.h"
#include "http/server.h"
#include "log.h"
#include "metrics.h"
#include "money.h"
#include "qr.h"
#include "store.h"

#define API_MAX_PARAMS 16

typedef void (*api_handler)(const http_context *ctx, const http_request *req,
                            const char *const *args, http_response *resp);

typedef struct {
    const char *method;
    const char *pattern; /* "/invoices/{}/refunds": {} matches one segment */
    api_handler handler;
} api_route;

/* --- small helpers --- */

/* Parses the body as a JSON object. An empty body is {} when optional. On error
 * sets a 400 answer and returns NULL. Caller decrefs. */
static json_t *api_body(const http_request *req, http_response *resp, bool optional)
{
    if (req->body_len == 0) {
        if (optional)
            return json_object();
        http_respond_fail(resp, 400, "invalid_json", NULL, "a JSON object body is required");
        return NULL;
    }
    json_error_t jerr;
    json_t *j = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL) {
        char msg[300];
        snprintf(msg, sizeof msg, "malformed JSON at line %d column %d: %s", jerr.line, jerr.column,
                 jerr.text);
        http_respond_fail(resp, 400, "invalid_json", NULL, msg);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        http_respond_fail(resp, 400, "invalid_json", NULL, "the body must be a JSON object");
        return NULL;
    }
    return j;
}

/* Rejects members not in allowed (NULL-terminated). */
static bool api_only(const json_t *obj, const char *const *allowed, http_response *resp)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(*a, key) == 0;
        if (!ok) {
            char msg[200];
            snprintf(msg, sizeof msg, "unknown field %s", key);
            http_respond_fail(resp, 400, "unknown_field", key, msg);
            return false;
        }
    }
    return true;
}

/* Reads an optional (or required) string member of at most max_len bytes. */
static bool api_string(const json_t *obj, const char *name, bool required, size_t max_len,
                       const char **out, http_response *resp)
{
    json_t *v = json_object_get(obj, name);
    *out = NULL;
    char msg[200];
    if (v == NULL || json_is_null(v)) {
        if (!required)
            return true;
        snprintf(msg, sizeof msg, "%s is required", name);
        http_respond_fail(resp, 400, "missing_field", name, msg);
        return false;
    }
    if (!json_is_string(v)) {
        snprintf(msg, sizeof msg, "%s must be a string", name);
        http_respond_fail(resp, 400, "invalid_type", name, msg);
        return false;
    }
    const char *s = json_string_value(v);
    if (strlen(s) > max_len || (required && s[0] == '\0')) {
        snprintf(msg, sizeof msg, "%s must be 1 to %zu characters", name, max_len);
        http_respond_fail(resp, 422, "invalid_value", name, msg);
        return false;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20) {
            snprintf(msg, sizeof msg, "%s contains a control character", name);
            http_respond_fail(resp, 422, "invalid_value", name, msg);
            return false;
        }
    }
    *out = s;
    return true;
}

static bool api_amount(const json_t *obj, const char *name, bool required, int64_t *out,
                       bool *present, http_response *resp)
{
    json_t *v = json_object_get(obj, name);
    *present = false;
    char msg[200];
    if (v == NULL || json_is_null(v)) {
        if (!required)
            return true;
        snprintf(msg, sizeof msg, "%s is required", name);
        http_respond_fail(resp, 400, "missing_field", name, msg);
        return false;
    }
    if (!json_is_string(v) && !json_is_number(v)) {
        snprintf(msg, sizeof msg, "%s must be a decimal string like \"10.00\"", name);
        http_respond_fail(resp, 400, "invalid_type", name, msg);
        return false;
    }
    money_err me = invoice_json_amount(v, MONEY_DECIMALS, out);
    if (me != MONEY_OK) {
        snprintf(msg, sizeof msg, "%s: %s", name, money_strerror(me));
        http_respond_fail(resp, me == MONEY_SYNTAX && json_is_string(v) ? 400 : 422,
                          me == MONEY_PRECISION ? "invalid_precision" : "invalid_amount", name,
                          msg);
        return false;
    }
    if (*out <= 0) {
        snprintf(msg, sizeof msg, "%s must be greater than 0", name);
        http_respond_fail(resp, 422, "invalid_amount", name, msg);
        return false;
    }
    *present = true;
    return true;
}

/* Answers with the invoice (status) after a successful use case. */
static void api_invoice_answer(const http_context *ctx, http_response *resp, int status,
                               store_invoice *inv)
{
    http_respond_json(resp, status, service_invoice_json(ctx->svc, inv));
    store_invoice_clear(inv);
}

/* --- endpoints --- */

static void api_healthz(const http_context *ctx, const http_request *req, const char *const *a,
                        http_response *resp)
{
    poller_stats ps;
    poller_get_stats(ctx->poller, &ps);
    int64_t unknown = 0;
    bool db_ok = service_counts(ctx->svc, &unknown);
    health_report hr;
    health_assess_poller(&ps, db_ok, unknown, &hr);
    api_events_assess(ctx, &hr);
    json_t *o = json_object();
    json_object_set_new(o, "status", json_string(health_state_name(hr.state)));
    json_t *reasons = json_array();
    for (int i = 0; i < hr.nreasons; i++)
        json_array_append_new(reasons, json_pack("{s:s,s:s}", "code", hr.reasons[i].code, "message",
                                                 hr.reasons[i].message));
    json_object_set_new(o, "reasons", reasons);
    json_object_set_new(o, "version", json_string(SEQR_VERSION));
    json_object_set_new(o, "uptimeSeconds",
                        json_integer((store_now_ms() - ctx->started_ms) / 1000));
    json_object_set_new(o, "database", json_string(db_ok ? "ok" : "failing"));
    json_object_set_new(o, "pendingInvoices", json_integer(ps.pending));
    json_object_set_new(o, "pollsInFlight", json_integer(ps.in_flight));
    json_object_set_new(o, "polls", json_integer((json_int_t)ps.polls));
    json_object_set_new(o, "pollErrors", json_integer((json_int_t)ps.errors));
    json_object_set_new(o, "seqrReachable", json_boolean(ps.seqr_reachable));
    json_t *gap = json_object();
    json_object_set_new(gap, "p50Ms", json_integer(ps.gap_p50_ms));
    json_object_set_new(gap, "p99Ms", json_integer(ps.gap_p99_ms));
    json_object_set_new(gap, "maxMs", json_integer(ps.gap_max_ms));
    json_object_set_new(gap, "samples", json_integer((json_int_t)ps.gap_samples));
    json_object_set_new(gap, "openMaxMs", json_integer(ps.gap_open_max_ms));
    json_object_set_new(gap, "alarm", json_boolean(ps.gap_alarm));
    json_object_set_new(o, "pollGap", gap);
    json_object_set_new(o, "unknownOutcomes", json_integer(unknown));
    api_events_health(ctx, o);
    http_respond_json(resp, hr.state == HEALTH_FAILED ? 503 : 200, o);
}

/* Prometheus text format; behind the API key like every endpoint but
 * /healthz. */
static void api_metrics(const http_context *ctx, const http_request *req, const char *const *a,
                        http_response *resp)
{
    poller_stats ps;
    poller_get_stats(ctx->poller, &ps);
    int64_t unknown = 0;
    bool db_ok = service_counts(ctx->svc, &unknown);
    health_report hr;
    health_assess_poller(&ps, db_ok, unknown, &hr);
    api_events_assess(ctx, &hr);
    metrics_gauges g = {
        .version = SEQR_VERSION,
        .start_time_s = ctx->started_ms / 1000,
        .pending = ps.pending,
        .in_flight = ps.in_flight,
        .polls = ps.polls,
        .poll_errors = ps.errors,
        .seqr_reachable = ps.seqr_reachable,
        .unknown_outcomes = db_ok ? unknown : -1,
        .store_ok = db_ok,
        .health_state = (int)hr.state,
    };
    resp->status = 200;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    metrics_render(&g, &resp->raw);
    api_events_metrics(ctx, &resp->raw);
}

/* An online backup by the daemon's own connection; the daemon picks the file. */
static void api_backup(const http_context *ctx, const http_request *req, const char *const *a,
                       http_response *resp)
{
    backup_result br;
    buf err = BUF_INIT;
    if (ctx->st == NULL || !backup_now(ctx->st, ctx->cfg->store_path, &br, &err)) {
        http_respond_fail(resp, 500, "backup_failed", NULL,
                          err.len > 0 ? buf_cstr(&err) : "no store to back up");
    } else {
        http_respond_json(resp, 201,
                          json_pack("{s:s,s:I,s:I,s:I}", "file", br.file, "pages",
                                    (json_int_t)br.pages, "bytes", (json_int_t)br.bytes,
                                    "elapsedMs", (json_int_t)br.elapsed_ms));
    }
    buf_free(&err);
}

static void api_create_invoice(const http_context *ctx, const http_request *req,
                               const char *const *a, http_response *resp)
{
    json_t *body = api_body(req, resp, false);
    if (body == NULL)
        return;
    invoice_input in;
    memset(&in, 0, sizeof in);
    api_error err;
    api_error_clear(&err);
    store_invoice inv;
    if (!invoice_parse(body, &in, &err) || !api_events_check_invoice(ctx, &in, &err) ||
        !service_create_invoice(ctx->svc, &in, &inv, &err))
        http_respond_error(resp, &err);
    else
        api_invoice_answer(ctx, resp, 201, &inv);
    invoice_input_free(&in);
    json_decref(body);
}

static void api_update_invoice(const http_context *ctx, const http_request *req,
                               const char *const *a, http_response *resp)
{
    json_t *body = api_body(req, resp, false);
    if (body == NULL)
        return;
    /* Zeroed: the terminalId branch answers without invoice_parse, and the
     * cleanup below must then free nothing. */
    invoice_input in;
    memset(&in, 0, sizeof in);
    api_error err;
    api_error_clear(&err);
    store_invoice inv;
    if (json_object_get(body, "terminalId") != NULL) {
        http_respond_fail(resp, 422, "invalid_value", "terminalId",
                          "the terminal of an invoice cannot change");
    } else if (!invoice_parse(body, &in, &err) ||
               !service_update_invoice(ctx->svc, a[0], &in, &inv, &err)) {
        http_respond_error(resp, &err);
    } else {
        api_invoice_answer(ctx, resp, 200, &inv);
    }
    invoice_input_free(&in);
    json_decref(body);
}

static bool api_valid_status(const char *s)
{
    return seqr_status_parse(s) != SEQR_STATUS_UNKNOWN;
}

static void api_list_invoices(const http_context *ctx, const http_request *req,
                              const char *const *a, http_response *resp)
{
    const char *status = http_query(req, "status");
    const char *limit_s = http_query(req, "limit");
    const char *after_s = http_query(req, "after");
    long limit = 50;
    long long after = 0;
    char *end;
    if (status != NULL && !api_valid_status(status)) {
        http_respond_fail(resp, 400, "invalid_value", "status",
                          "status must be one of ISSUED, PENDING_ISSUER_ACKNOWLEDGE, RESERVED, "
                          "PARTIALLY_PAID, PAID, CANCELED, FAILED");
        return;
    }
    if (limit_s != NULL) {
        limit = strtol(limit_s, &end, 10);
        if (end == limit_s || *end != '\0' || limit < 1 || limit > 200) {
            http_respond_fail(resp, 400, "invalid_value", "limit",
                              "limit must be a whole number from 1 to 200");
            return;
        }
    }
    if (after_s != NULL) {
        after = strtoll(after_s, &end, 10);
        if (end == after_s || *end != '\0' || after <= 0) {
            http_respond_fail(resp, 400, "invalid_value", "after",
                              "after must be a cursor returned as \"next\"");
            return;
        }
    }
    json_t *result = NULL;
    api_error err;
    if (!service_list_invoices(ctx->svc, status, after, (int)limit, &result, &err))
        http_respond_error(resp, &err);
    else
        http_respond_json(resp, 200, result);
}

static void api_get_invoice(const http_context *ctx, const http_request *req, const char *const *a,
                            http_response *resp)
{
    store_invoice inv;
    api_error err;
    if (http_query(req, "waitForVersion") != NULL) /* events */
        api_events_wait_invoice(ctx, req, a[0], resp);
    else if (!service_get_invoice(ctx->svc, a[0], &inv, &err))
        http_respond_error(resp, &err);
    else
        api_invoice_answer(ctx, resp, 200, &inv);
}

static void api_refresh_invoice(const http_context *ctx, const http_request *req,
                                const char *const *a, http_response *resp)
{
    store_invoice inv;
    api_error err;
    if (!service_refresh_status(ctx->svc, a[0], &inv, &err))
        http_respond_error(resp, &err);
    else
        api_invoice_answer(ctx, resp, 200, &inv);
}

static void api_cancel_invoice(const http_context *ctx, const http_request *req,
                               const char *const *a, http_response *resp)
{
    static const char *const allowed[] = {NULL};
    json_t *body = api_body(req, resp, true);
    if (body == NULL)
        return;
    store_invoice inv;
    api_error err;
    if (!api_only(body, allowed, resp)) {
        /* answered */
    } else if (!service_cancel_invoice(ctx->svc, a[0], &inv, &err)) {
        http_respond_error(resp, &err);
    } else {
        api_invoice_answer(ctx, resp, 200, &inv);
    }
    json_decref(body);
}

static bool api_base64_valid(const char *s)
{
    size_t n = 0, pad = 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        if (c == '=') {
            pad++;
        } else if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                   c == '+' || c == '/') {
            if (pad > 0)
                return false;
        } else {
            return false;
        }
        n++;
    }
    return n % 4 == 0 && pad <= 2;
}

static void api_receipt(const http_context *ctx, const http_request *req, const char *const *a,
                        http_response *resp)
{
    static const char *const allowed[] = {"mimeType", "receiptType", "receiptData", NULL};
    static const char *const types[] = {"PAYMENT_RECEIPT", "WARRANTY", "VOUCHER", "OTHER"};
    json_t *body = api_body(req, resp, true);
    if (body == NULL)
        return;
    const char *mime = NULL, *type = NULL, *data = NULL;
    store_invoice inv;
    api_error err;
    if (!api_only(body, allowed, resp) || !api_string(body, "mimeType", false, 100, &mime, resp) ||
        !api_string(body, "receiptType", false, 32, &type, resp))
        goto cleanup;
    json_t *d = json_object_get(body, "receiptData");
    if (d != NULL && !json_is_null(d)) {
        if (!json_is_string(d)) {
            http_respond_fail(resp, 400, "invalid_type", "receiptData",
                              "receiptData must be a base64 string");
            goto cleanup;
        }
        data = json_string_value(d);
        if (!api_base64_valid(data)) {
            http_respond_fail(resp, 422, "invalid_value", "receiptData",
                              "receiptData is not valid base64");
            goto cleanup;
        }
    }
    if (type != NULL) {
        bool ok = false;
        for (size_t i = 0; i < 4; i++)
            ok = ok || strcmp(type, types[i]) == 0;
        if (!ok) {
            http_respond_fail(resp, 422, "invalid_value", "receiptType",
                              "receiptType must be PAYMENT_RECEIPT, WARRANTY, VOUCHER or OTHER");
            goto cleanup;
        }
    }
    /* No field at all: the gateway's own receipt; some but not all: the
     * service answers 422 naming the missing one. */
    if (!service_submit_receipt(ctx->svc, a[0], mime, type, data, &inv, &err))
        http_respond_error(resp, &err);
    else
        api_invoice_answer(ctx, resp, 200, &inv);
cleanup:
    json_decref(body);
}

static void api_refund(const http_context *ctx, const http_request *req, const char *const *a,
                       http_response *resp)
{
    static const char *const allowed[] = {"amount", "title", NULL};
    json_t *body = api_body(req, resp, false);
    if (body == NULL)
        return;
    int64_t amount;
    bool present;
    const char *title = NULL;
    json_t *refund = NULL;
    api_error err;
    if (!api_only(body, allowed, resp) ||
        !api_amount(body, "amount", true, &amount, &present, resp) ||
        !api_string(body, "title", false, 200, &title, resp))
        goto cleanup;
    if (!service_refund(ctx->svc, a[0], amount, title, &refund, &err))
        http_respond_error(resp, &err);
    else
        http_respond_json(resp, 201, refund);
cleanup:
    json_decref(body);
}

/* A numeric id from the path: 1 to 18 digits; anything else names nothing. */
static bool api_path_id(const char *text, int64_t *id)
{
    size_t digits = strspn(text, "0123456789");
    if (digits == 0 || digits > 18 || text[digits] != '\0')
        return false;
    *id = strtoll(text, NULL, 10);
    return true;
}

/* The "outcome" of an operator's settlement: *happened for "done", not for
 * "failed"; anything else is answered with an error (false). what names the
 * thing SEQR's report shows. */
static bool api_outcome(const json_t *body, const char *what, bool *happened,
                        http_response *resp)
{
    const char *outcome = NULL;
    if (!api_string(body, "outcome", true, 16, &outcome, resp))
        return false;
    *happened = strcmp(outcome, "done") == 0;
    if (!*happened && strcmp(outcome, "failed") != 0) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "outcome must be \"done\" (SEQR's report shows the %s) or \"failed\" (it "
                 "does not)",
                 what);
        http_respond_fail(resp, 422, "invalid_value", "outcome", msg);
        return false;
    }
    return true;
}

/* Settles a refund whose outcome is unknown; see service_refund_resolve. */
static void api_refund_resolve(const http_context *ctx, const http_request *req,
                               const char *const *a, http_response *resp)
{
    static const char *const allowed[] = {"outcome", "ersReference", NULL};
    int64_t refund_id;
    if (!api_path_id(a[1], &refund_id)) {
        char msg[160];
        snprintf(msg, sizeof msg, "invoice %.64s has no refund %.32s", a[0], a[1]);
        http_respond_fail(resp, 404, "not_found", NULL, msg);
        return;
    }
    json_t *body = api_body(req, resp, false);
    if (body == NULL)
        return;
    const char *ers = NULL;
    bool happened = false;
    api_error err;
    api_error_clear(&err);
    store_invoice inv;
    if (!api_only(body, allowed, resp) || !api_outcome(body, "refund", &happened, resp) ||
        !api_string(body, "ersReference", false, 64, &ers, resp))
        goto cleanup;
    if (!happened && ers != NULL) {
        http_respond_fail(resp, 422, "invalid_value", "ersReference",
                          "ersReference belongs to a refund that was done");
        goto cleanup;
    }
    if (!service_refund_resolve(ctx->svc, a[0], refund_id, happened, ers, &inv, &err))
        http_respond_error(resp, &err);
    else
        api_invoice_answer(ctx, resp, 200, &inv);
cleanup:
    json_decref(body);
}

/* Settles an invoice whose sendInvoice outcome is unknown (the operator's
 * reconciliation): {"outcome": "done", "invoiceReference"} or {"outcome":
 * "failed"}; answers {"id", "outcome", "invoiceReference"}. */
static void api_invoice_resolve(const http_context *ctx, const http_request *req,
                                const char *const *a, http_response *resp)
{
    static const char *const allowed[] = {"outcome", "invoiceReference", NULL};
    int64_t id;
    if (!api_path_id(a[0], &id)) {
        char msg[120];
        snprintf(msg, sizeof msg, "the gateway has no invoice %.64s", a[0]);
        http_respond_fail(resp, 404, "not_found", NULL, msg);
        return;
    }
    json_t *body = api_body(req, resp, false);
    if (body == NULL)
        return;
    const char *reference = NULL;
    bool happened = false;
    api_error err;
    api_error_clear(&err);
    if (!api_only(body, allowed, resp) || !api_outcome(body, "invoice", &happened, resp) ||
        !api_string(body, "invoiceReference", false, 64, &reference, resp))
        goto cleanup;
    if (happened && reference == NULL) {
        http_respond_fail(resp, 400, "missing_field", "invoiceReference",
                          "invoiceReference (from SEQR's report) is required with \"done\"");
        goto cleanup;
    }
    if (!happened && reference != NULL) {
        http_respond_fail(resp, 422, "invalid_value", "invoiceReference",
                          "invoiceReference belongs to an invoice SEQR has (\"done\")");
        goto cleanup;
    }
    if (reference != NULL && (reference[0] == '\0' ||
                              reference[strspn(reference, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                          "abcdefghijklmnopqrstuvwxyz-_.")] != '\0')) {
        http_respond_fail(resp, 422, "invalid_value", "invoiceReference",
                          "invoiceReference must be 1 to 64 letters, digits, '-', '_' or '.'");
        goto cleanup;
    }
    if (!service_invoice_resolve(ctx->svc, id, reference, &err)) {
        http_respond_error(resp, &err);
        goto cleanup;
    }
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(id));
    json_object_set_new(o, "outcome", json_string(happened ? "done" : "failed"));
    json_object_set_new(o, "invoiceReference", reference ? json_string(reference) : json_null());
    http_respond_json(resp, 200, o);
cleanup:
    json_decref(body);
}

/* Every invoice and refund whose outcome is unknown, for the operator. */
static void api_unknown_outcomes(const http_context *ctx, const http_request *req,
                                 const char *const *a, http_response *resp)
{
    api_error err;
    api_error_clear(&err);
    json_t *o = service_unknown_outcomes(ctx->svc, &err);
    if (o == NULL)
        http_respond_error(resp, &err);
    else
        http_respond_json(resp, 200, o);
}

static void api_list_refunds(const http_context *ctx, const http_request *req, const char *const *a,
                             http_response *resp)
{
    store_invoice inv;
    api_error err;
    if (!service_get_invoice(ctx->svc, a[0], &inv, &err)) {
        http_respond_error(resp, &err);
        return;
    }
    json_t *full = service_invoice_json(ctx->svc, &inv);
    json_t *o = json_object();
    json_object_set(o, "refunds", json_object_get(full, "refunds"));
    json_object_set(o, "refundedAmount", json_object_get(full, "refundedAmount"));
    json_decref(full);
    store_invoice_clear(&inv);
    http_respond_json(resp, 200, o);
}

static void api_commit(const http_context *ctx, const http_request *req, const char *const *a,
                       http_response *resp)
{
    static const char *const allowed[] = {"amount", NULL};
    json_t *body = api_body(req, resp, true);
    if (body == NULL)
        return;
    int64_t amount = 0;
    bool present = false;
    store_invoice inv;
    api_error err;
    if (!api_only(body, allowed, resp) ||
        !api_amount(body, "amount", false, &amount, &present, resp))
        goto cleanup;
    if (!service_commit(ctx->svc, a[0], present, amount, &inv, &err))
        http_respond_error(resp, &err);
    else
        api_invoice_answer(ctx, resp, 200, &inv);
cleanup:
    json_decref(body);
}

static void api_periods(const http_context *ctx, const http_request *req, const char *const *a,
                        http_response *resp)
{
    static const char *const allowed[] = {"terminalId", NULL};
    json_t *body = api_body(req, resp, true);
    if (body == NULL)
        return;
    const char *terminal = NULL;
    char period[64];
    api_error err;
    if (!api_only(body, allowed, resp) ||
        !api_string(body, "terminalId", false, 64, &terminal, resp))
        goto cleanup;
    if (!service_mark_period(ctx->svc, terminal, period, &err)) {
        http_respond_error(resp, &err);
    } else {
        json_t *o = json_object();
        json_object_set_new(o, "transactionPeriodId", json_string(period));
        if (terminal != NULL)
            json_object_set_new(o, "terminalId", json_string(terminal));
        http_respond_json(resp, 201, o);
    }
cleanup:
    json_decref(body);
}

static void api_reports(const http_context *ctx, const http_request *req, const char *const *a,
                        http_response *resp)
{
    static const char *const allowed[] = {"reportId", "language", "parameters", NULL};
    json_t *body = api_body(req, resp, false);
    if (body == NULL)
        return;
    const char *report_id = NULL, *language = NULL;
    seqr_param params[API_MAX_PARAMS];
    size_t n = 0;
    api_error err;
    seqr_report rep;
    memset(&rep, 0, sizeof rep);
    if (!api_only(body, allowed, resp) ||
        !api_string(body, "reportId", true, 128, &report_id, resp) ||
        !api_string(body, "language", false, 8, &language, resp))
        goto cleanup;
    json_t *p = json_object_get(body, "parameters");
    if (p == NULL || !json_is_object(p)) {
        http_respond_fail(resp, 400, p == NULL ? "missing_field" : "invalid_type", "parameters",
                          "parameters must be an object with at least transactionPeriodId");
        goto cleanup;
    }
    const char *key;
    json_t *v;
    json_object_foreach(p, key, v)
    {
        char field[96];
        snprintf(field, sizeof field, "parameters.%s", key);
        if (!json_is_string(v) || strlen(json_string_value(v)) > 128) {
            http_respond_fail(resp, 400, "invalid_type", field,
                              "every parameter must be a string of at most 128 characters");
            goto cleanup;
        }
        if (n == API_MAX_PARAMS) {
            http_respond_fail(resp, 422, "invalid_value", "parameters", "too many parameters");
            goto cleanup;
        }
        params[n].key = key;
        params[n].value = json_string_value(v);
        n++;
    }
    if (json_object_get(p, "transactionPeriodId") == NULL) {
        http_respond_fail(resp, 400, "missing_field", "parameters.transactionPeriodId",
                          "parameters.transactionPeriodId is required (from POST /periods)");
        goto cleanup;
    }
    if (!service_report(ctx->svc, report_id, language ? language : "en", params, n, &rep, &err)) {
        http_respond_error(resp, &err);
        goto cleanup;
    }
    json_t *o = json_object();
    json_object_set_new(o, "title", rep.title ? json_string(rep.title) : json_null());
    json_object_set_new(o, "mimeType", rep.mime_type ? json_string(rep.mime_type) : json_null());
    json_object_set_new(o, "contentString",
                        rep.content_string ? json_string(rep.content_string) : json_null());
    json_object_set_new(o, "content", rep.content ? json_string(rep.content) : json_null());
    http_respond_json(resp, 200, o);
cleanup:
    seqr_report_free(&rep);
    json_decref(body);
}

static void api_register_terminal(const http_context *ctx, const http_request *req,
                                  const char *const *a, http_response *resp)
{
    static const char *const allowed[] = {"externalTerminalId", "name", "password", "cashierId",
                                          NULL};
    json_t *body = api_body(req, resp, false);
    if (body == NULL)
        return;
    const char *ext = NULL, *name = NULL, *password = NULL, *cashier = NULL;
    char terminal_id[64];
    api_error err;
    if (!api_only(body, allowed, resp) ||
        !api_string(body, "externalTerminalId", true, 100, &ext, resp) ||
        !api_string(body, "name", true, 100, &name, resp) ||
        !api_string(body, "password", false, 100, &password, resp) ||
        !api_string(body, "cashierId", false, 64, &cashier, resp))
        goto cleanup;
    if (password != NULL && password[0] != '\0' && strlen(password) < 8) {
        http_respond_fail(resp, 422, "invalid_value", "password",
                          "password must be at least 8 characters (or leave it out to have a "
                          "strong one generated)");
        goto cleanup;
    }
    if (!service_register_terminal(ctx->svc, ext, name, password, cashier, terminal_id, &err)) {
        http_respond_error(resp, &err);
    } else {
        json_t *o = json_object();
        json_object_set_new(o, "terminalId", json_string(terminal_id));
        json_object_set_new(o, "externalTerminalId", json_string(ext));
        json_object_set_new(o, "name", json_string(name));
        json_object_set_new(o, "cashierId", cashier ? json_string(cashier) : json_null());
        http_respond_json(resp, 201, o);
    }
cleanup:
    json_decref(body);
}

static void api_assign_seqr_id(const http_context *ctx, const http_request *req,
                               const char *const *a, http_response *resp)
{
    static const char *const allowed[] = {"seqrId", NULL};
    json_t *body = api_body(req, resp, false);
    if (body == NULL)
        return;
    const char *seqr_id = NULL;
    api_error err;
    if (!api_only(body, allowed, resp) || !api_string(body, "seqrId", true, 100, &seqr_id, resp))
        goto cleanup;
    if (!service_assign_seqr_id(ctx->svc, a[0], seqr_id, &err)) {
        http_respond_error(resp, &err);
    } else {
        buf qr = BUF_INIT;
        buf_printf(&qr, "HTTP://SEQR.SE/Q%s", seqr_id);
        json_t *o = json_object();
        json_object_set_new(o, "terminalId", json_string(a[0]));
        json_object_set_new(o, "seqrId", json_string(seqr_id));
        json_object_set_new(o, "qrCode", json_string(buf_cstr(&qr)));
        buf_free(&qr);
        http_respond_json(resp, 200, o);
    }
cleanup:
    json_decref(body);
}

static void api_unregister_terminal(const http_context *ctx, const http_request *req,
                                    const char *const *a, http_response *resp)
{
    api_error err;
    if (!service_unregister_terminal(ctx->svc, a[0], &err)) {
        http_respond_error(resp, &err);
        return;
    }
    json_t *o = json_object();
    json_object_set_new(o, "terminalId", json_string(a[0]));
    json_object_set_new(o, "unregistered", json_true());
    http_respond_json(resp, 200, o);
}

static void api_notify(const http_context *ctx, const http_request *req, const char *const *a,
                       http_response *resp)
{
    char ref[64];
    const char *token = http_query(req, "token");
    if (!service_check_notify(ctx->svc, a[0], token, ref)) {
        http_respond_fail(resp, 404, "not_found", NULL, "unknown invoice or wrong token");
        return;
    }
    poller_poke(ctx->poller, ref);
    json_t *o = json_object();
    json_object_set_new(o, "accepted", json_true());
    json_object_set_new(o, "invoiceReference", json_string(ref));
    http_respond_json(resp, 200, o);
}

/* QR images: the invoice's code, or a terminal's static code. */
static void api_qr(const http_request *req, const char *text, const char *format,
                   http_response *resp)
{
    if (strcmp(format, "svg") != 0 && strcmp(format, "png") != 0 && strcmp(format, "txt") != 0) {
        http_respond_fail(resp, 404, "not_found", NULL,
                          "no such QR format; use qr.svg, qr.png or qr.txt");
        return;
    }
    qr_options opts;
    qr_options_default(&opts, format);
    const char *size = http_query(req, "size");
    const char *margin = http_query(req, "margin");
    const char *invert = http_query(req, "invert");
    opts.invert = invert != NULL && (strcmp(invert, "1") == 0 || strcmp(invert, "true") == 0);
    char msg[160];
    if (!qr_options_parse(&opts, size, margin, msg, sizeof msg)) {
        http_respond_fail(resp, 400, "invalid_value", size && !margin ? "size" : "margin", msg);
        return;
    }
    qr_err e = qr_render(text, format, &opts, &resp->raw, &resp->content_type);
    if (e != QR_OK) {
        http_respond_fail(resp, 500, "qr_failed", NULL, qr_strerror(e));
        return;
    }
    resp->status = 200;
}

static void api_invoice_qr(const http_context *ctx, const http_request *req, const char *const *a,
                           http_response *resp)
{
    store_invoice inv;
    api_error err;
    if (!service_get_invoice(ctx->svc, a[0], &inv, &err)) {
        http_respond_error(resp, &err);
        return;
    }
    if (inv.qr_code[0] == '\0')
        http_respond_fail(resp, 409, "invalid_state", NULL, "this invoice has no QR code");
    else
        api_qr(req, inv.qr_code, a[1], resp);
    store_invoice_clear(&inv);
}

static void api_terminal_qr(const http_context *ctx, const http_request *req, const char *const *a,
                            http_response *resp)
{
    char seqr_id[128];
    api_error err;
    if (!service_terminal_seqr_id(ctx->svc, a[0], seqr_id, &err)) {
        http_respond_error(resp, &err);
        return;
    }
    buf text = BUF_INIT;
    buf_printf(&text, "HTTP://SEQR.SE/Q%s", seqr_id);
    api_qr(req, buf_cstr(&text), a[1], resp);
    buf_free(&text);
}

/* GET /invoices/{ref}/receipt.html: the HTML receipt submitted for it. */
static void api_receipt_html(const http_context *ctx, const http_request *req, const char *const *a,
                             http_response *resp)
{
    (void)req;
    api_error err;
    buf html = BUF_INIT;
    if (!service_receipt_html(ctx->svc, a[0], &html, &err)) {
        http_respond_error(resp, &err);
    } else {
        buf_append(&resp->raw, html.data, html.len);
        resp->content_type = "text/html; charset=utf-8";
        resp->status = 200;
    }
    buf_free(&html);
}

static const api_route api_routes[] = {
    {"GET", "/healthz", api_healthz},
    {"GET", "/metrics", api_metrics},
    {"POST", "/admin/backup", api_backup},
    {"POST", "/invoices", api_create_invoice},
    {"GET", "/invoices", api_list_invoices},
    {"GET", "/invoices/{}", api_get_invoice},
    {"PUT", "/invoices/{}", api_update_invoice},
    {"GET", "/invoices/{}/status", api_refresh_invoice},
    {"POST", "/invoices/{}/cancel", api_cancel_invoice},
    {"POST", "/invoices/{}/receipt", api_receipt},
    {"GET", "/invoices/{}/receipt.html", api_receipt_html},
    {"POST", "/invoices/{}/refunds", api_refund},
    {"GET", "/invoices/{}/refunds", api_list_refunds},
    {"POST", "/invoices/{}/refunds/{}/resolve", api_refund_resolve},
    {"POST", "/invoices/{}/commit", api_commit},
    {"GET", "/invoices/{}/qr.{}", api_invoice_qr},
    {"POST", "/periods", api_periods},
    {"POST", "/reports", api_reports},
    {"POST", "/terminals", api_register_terminal},
    {"POST", "/terminals/{}/seqr-id", api_assign_seqr_id},
    {"DELETE", "/terminals/{}", api_unregister_terminal},
    {"GET", "/terminals/{}/qr.{}", api_terminal_qr},
    {"POST", "/seqr/notify/{}", api_notify},
    {"GET", "/unknown-outcomes", api_unknown_outcomes},
    {"POST", "/unknown-outcomes/invoices/{}/resolve", api_invoice_resolve},
    /* >>> events (http/api_events.c) */
    {"GET", "/events", api_events_list},
    {"POST", "/events/{}/redeliver", api_events_redeliver},
    {"GET", "/invoices/{}/events", api_events_stream},
    {"GET", "/webhooks/deliveries", api_events_deliveries},
    /* <<< events */
};

/* Matches path against pattern; captured segments go to args (each into its
 * own slot of segs). "{}" matches a non-empty run without '/' (or, after
 * "qr.", the extension). */
static bool api_match(const char *pattern, const char *path, char segs[][128], int *nargs)
{
    *nargs = 0;
    const char *p = pattern, *s = path;
    while (*p) {
        if (p[0] == '{' && p[1] == '}') {
            p += 2;
            char stop = *p; /* '/', '.', or '\0' */
            const char *start = s;
            while (*s && *s != '/' && !(stop == '.' && *s == '.'))
                s++;
            size_t n = (size_t)(s - start);
            if (n == 0 || n >= 128 || *nargs == 4)
                return false;
            memcpy(segs[*nargs], start, n);
            segs[*nargs][n] = '\0';
            (*nargs)++;
            continue;
        }
        if (*p != *s)
            return false;
        p++;
        s++;
    }
    return *s == '\0';
}

bool http_api_takes_idempotency_key(const char *method, const char *path)
{
    if (strcmp(method, "POST") != 0 || strncmp(path, "/seqr/notify/", 13) == 0)
        return false;
    char segs[4][128];
    for (size_t i = 0; i < sizeof api_routes / sizeof *api_routes; i++) {
        int n;
        if (strcmp(api_routes[i].method, "POST") == 0 &&
            api_match(api_routes[i].pattern, path, segs, &n))
            return true;
    }
    return false;
}

const char *http_api_route(const char *method, const char *path)
{
    char segs[4][128];
    const char *known = NULL;
    for (size_t i = 0; i < sizeof api_routes / sizeof *api_routes; i++) {
        int n;
        if (!api_match(api_routes[i].pattern, path, segs, &n))
            continue;
        known = api_routes[i].pattern;
        if (strcmp(api_routes[i].method, method) == 0 ||
            (strcmp(method, "HEAD") == 0 && strcmp(api_routes[i].method, "GET") == 0))
            return known;
    }
    return known != NULL ? known : "unmatched";
}

void http_api_dispatch(const http_context *ctx, const http_request *req, http_response *resp)
{
    char segs[4][128];
    const char *args[4];
    bool path_known = false;
    for (size_t i = 0; i < sizeof api_routes / sizeof *api_routes; i++) {
        int n;
        if (!api_match(api_routes[i].pattern, req->path, segs, &n))
            continue;
        path_known = true;
        if (strcmp(api_routes[i].method, req->method) != 0 &&
            !(strcmp(req->method, "HEAD") == 0 && strcmp(api_routes[i].method, "GET") == 0))
            continue;
        for (int k = 0; k < n; k++)
            args[k] = segs[k];
        api_routes[i].handler(ctx, req, args, resp);
        return;
    }
    if (path_known)
        http_respond_fail(resp, 405, "method_not_allowed", NULL,
                          "this path does not support that method");
    else
        http_respond_fail(resp, 404, "not_found", NULL, "no such endpoint");
}
