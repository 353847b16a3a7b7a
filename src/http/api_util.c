/* http/api_util.c — what the handlers share: request bodies parsed and
 * checked member by member, path ids, settlement outcomes, the invoice
 * answer and QR images. See api.h. */
#include "http/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "money.h"
#include "qr.h"

/* Parses the body as a JSON object. An empty body is {} when optional. On error
 * sets a 400 answer and returns NULL. Caller decrefs. */
json_t *api_body(const http_request *req, http_response *resp, bool optional)
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

bool api_only(const json_t *obj, const char *const *allowed, http_response *resp)
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

bool api_string(const json_t *obj, const char *name, bool required, size_t max_len,
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

bool api_amount(const json_t *obj, const char *name, bool required, int64_t *out, bool *present,
                http_response *resp)
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

void api_invoice_answer(const http_context *ctx, http_response *resp, int status,
                        store_invoice *inv)
{
    http_respond_json(resp, status, service_invoice_json(ctx->svc, inv));
    store_invoice_clear(inv);
}

bool api_path_id(const char *text, int64_t *id)
{
    size_t digits = strspn(text, "0123456789");
    if (digits == 0 || digits > 18 || text[digits] != '\0')
        return false;
    *id = strtoll(text, NULL, 10);
    return true;
}

bool api_outcome(const json_t *body, const char *what, bool *happened, http_response *resp)
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

void api_qr(const http_request *req, const char *text, const char *format, http_response *resp)
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
