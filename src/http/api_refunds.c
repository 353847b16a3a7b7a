/* http/api_refunds.c — refund endpoints: refund, list, settle a refund in
 * doubt. */
#include "http/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "money.h"

void api_refund(const http_context *ctx, const http_request *req, const char *const *a,
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

/* Settles a refund whose outcome is unknown; see service_refund_resolve. */
void api_refund_resolve(const http_context *ctx, const http_request *req, const char *const *a,
                        http_response *resp)
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

void api_list_refunds(const http_context *ctx, const http_request *req, const char *const *a,
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
