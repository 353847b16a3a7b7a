/* http/api_terminals.c — reseller endpoints: terminals (register, SEQR
 * ID, unregister, QR), reconciliation periods and reports. */
#include "http/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "money.h"

/* Report parameters at most (POST /reports). */
#define API_MAX_PARAMS 16

void api_periods(const http_context *ctx, const http_request *req, const char *const *a,
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

void api_reports(const http_context *ctx, const http_request *req, const char *const *a,
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

void api_register_terminal(const http_context *ctx, const http_request *req, const char *const *a,
                           http_response *resp)
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

void api_assign_seqr_id(const http_context *ctx, const http_request *req, const char *const *a,
                        http_response *resp)
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

void api_unregister_terminal(const http_context *ctx, const http_request *req, const char *const *a,
                             http_response *resp)
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

void api_terminal_qr(const http_context *ctx, const http_request *req, const char *const *a,
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
