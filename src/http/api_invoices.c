/* http/api_invoices.c — invoice endpoints: create, list, read, refresh,
 * update, cancel, commit, receipt, QR image, receipt page, and SEQR's
 * notification callback. Invoice bodies are validated by invoice.c. */
#include "http/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "money.h"

void api_create_invoice(const http_context *ctx, const http_request *req, const char *const *a,
                        http_response *resp)
{
    json_t *body = api_body(req, resp, false);
    if (body == NULL)
        return;
    invoice_input in;
    memset(&in, 0, sizeof in);
    api_error err;
    api_error_clear(&err);
    store_invoice inv;
    json_t *answer = NULL;
    if (!invoice_parse(body, &in, &err) || !api_events_check_invoice(ctx, &in, &err) ||
        !service_create_invoice(ctx->svc, &in, &inv, &answer, &err)) {
        http_respond_error(resp, &err);
    } else {
        http_respond_json(resp, 201, answer);
        store_invoice_clear(&inv);
    }
    invoice_input_free(&in);
    json_decref(body);
}

void api_update_invoice(const http_context *ctx, const http_request *req, const char *const *a,
                        http_response *resp)
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

void api_list_invoices(const http_context *ctx, const http_request *req, const char *const *a,
                       http_response *resp)
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

void api_get_invoice(const http_context *ctx, const http_request *req, const char *const *a,
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

void api_refresh_invoice(const http_context *ctx, const http_request *req, const char *const *a,
                         http_response *resp)
{
    store_invoice inv;
    api_error err;
    if (!service_refresh_status(ctx->svc, a[0], &inv, &err))
        http_respond_error(resp, &err);
    else
        api_invoice_answer(ctx, resp, 200, &inv);
}

void api_cancel_invoice(const http_context *ctx, const http_request *req, const char *const *a,
                        http_response *resp)
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

void api_receipt(const http_context *ctx, const http_request *req, const char *const *a,
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

void api_commit(const http_context *ctx, const http_request *req, const char *const *a,
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

void api_notify(const http_context *ctx, const http_request *req, const char *const *a,
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

void api_invoice_qr(const http_context *ctx, const http_request *req, const char *const *a,
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

/* GET /invoices/{ref}/receipt.html: the HTML receipt submitted for it. */
void api_receipt_html(const http_context *ctx, const http_request *req, const char *const *a,
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
