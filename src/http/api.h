/* http/api.h — the REST endpoints of docs/openapi.yaml, private to src/http: the route
 * table's handlers (one file per resource: api_invoices.c, api_refunds.c,
 * api_terminals.c, api_ops.c for health, metrics, backups and outcomes in
 * doubt), the body and field helpers they share (api_util.c) and the router
 * (routes.c) main.c hands to http_server_start(). Handlers see only
 * server.h's http_request/http_response (no libmicrohttpd types) and reach
 * the gateway through service.h. */
#ifndef SEQR_HTTP_API_H
#define SEQR_HTTP_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/api_events.h"
#include "http/server.h"

/* The router of the REST API (routes.c). */
extern const http_router http_api_router;

/* Routes one request (what http_api_router dispatches with). */
void http_api_dispatch(const http_context *ctx, const http_request *req, http_response *resp);

/* --- api_util.c: request bodies and fields --- */

/* Parses the body as a JSON object. An empty body is {} when optional. On error
 * sets a 400 answer and returns NULL. Caller decrefs. */
json_t *api_body(const http_request *req, http_response *resp, bool optional);
/* Rejects members not in allowed (NULL-terminated). */
bool api_only(const json_t *obj, const char *const *allowed, http_response *resp);
/* Reads an optional (or required) string member of at most max_len bytes. */
bool api_string(const json_t *obj, const char *name, bool required, size_t max_len,
                const char **out, http_response *resp);
bool api_amount(const json_t *obj, const char *name, bool required, int64_t *out, bool *present,
                http_response *resp);
/* Answers with the invoice (status) after a successful use case. */
void api_invoice_answer(const http_context *ctx, http_response *resp, int status,
                        store_invoice *inv);
/* A numeric id from the path: 1 to 18 digits; anything else names nothing. */
bool api_path_id(const char *text, int64_t *id);
/* The "outcome" of an operator's settlement: *happened for "done", not for
 * "failed"; anything else is answered with an error (false). what names the
 * thing SEQR's report shows. */
bool api_outcome(const json_t *body, const char *what, bool *happened, http_response *resp);
/* QR images: the invoice's code, or a terminal's static code. */
void api_qr(const http_request *req, const char *text, const char *format, http_response *resp);

/* --- handlers: args are the path's {} segments in order --- */

/* api_invoices.c */
void api_create_invoice(const http_context *ctx, const http_request *req, const char *const *a,
                        http_response *resp);
void api_update_invoice(const http_context *ctx, const http_request *req, const char *const *a,
                        http_response *resp);
void api_list_invoices(const http_context *ctx, const http_request *req, const char *const *a,
                       http_response *resp);
void api_get_invoice(const http_context *ctx, const http_request *req, const char *const *a,
                     http_response *resp);
void api_refresh_invoice(const http_context *ctx, const http_request *req, const char *const *a,
                         http_response *resp);
void api_cancel_invoice(const http_context *ctx, const http_request *req, const char *const *a,
                        http_response *resp);
void api_receipt(const http_context *ctx, const http_request *req, const char *const *a,
                 http_response *resp);
void api_commit(const http_context *ctx, const http_request *req, const char *const *a,
                http_response *resp);
void api_notify(const http_context *ctx, const http_request *req, const char *const *a,
                http_response *resp);
void api_invoice_qr(const http_context *ctx, const http_request *req, const char *const *a,
                    http_response *resp);
void api_receipt_html(const http_context *ctx, const http_request *req, const char *const *a,
                      http_response *resp);

/* api_refunds.c */
void api_refund(const http_context *ctx, const http_request *req, const char *const *a,
                http_response *resp);
void api_refund_resolve(const http_context *ctx, const http_request *req, const char *const *a,
                        http_response *resp);
void api_list_refunds(const http_context *ctx, const http_request *req, const char *const *a,
                      http_response *resp);

/* api_terminals.c */
void api_periods(const http_context *ctx, const http_request *req, const char *const *a,
                 http_response *resp);
void api_reports(const http_context *ctx, const http_request *req, const char *const *a,
                 http_response *resp);
void api_register_terminal(const http_context *ctx, const http_request *req, const char *const *a,
                           http_response *resp);
void api_assign_seqr_id(const http_context *ctx, const http_request *req, const char *const *a,
                        http_response *resp);
void api_unregister_terminal(const http_context *ctx, const http_request *req, const char *const *a,
                             http_response *resp);
void api_terminal_qr(const http_context *ctx, const http_request *req, const char *const *a,
                     http_response *resp);

/* api_checkout.c: the buyer's payment page (public: the token is the capability) */
void api_pay_page(const http_context *ctx, const http_request *req, const char *const *a,
                  http_response *resp);
void api_pay_status(const http_context *ctx, const http_request *req, const char *const *a,
                    http_response *resp);
/* GET /pay/{token}/events: the page's Server-Sent Events stream, event
 * "state" with what /pay/{token}/status says (state, version). */
void api_pay_events(const http_context *ctx, const http_request *req, const char *const *a,
                    http_response *resp);
void api_pay_css(const http_context *ctx, const http_request *req, const char *const *a,
                 http_response *resp);
void api_pay_js(const http_context *ctx, const http_request *req, const char *const *a,
                http_response *resp);
/* The path as the log may show it: a pay token masked (router's log_path). */
const char *api_checkout_log_path(const char *path, char *out, size_t len);

/* api_ops.c */
void api_healthz(const http_context *ctx, const http_request *req, const char *const *a,
                 http_response *resp);
void api_metrics(const http_context *ctx, const http_request *req, const char *const *a,
                 http_response *resp);
void api_backup(const http_context *ctx, const http_request *req, const char *const *a,
                http_response *resp);
void api_invoice_resolve(const http_context *ctx, const http_request *req, const char *const *a,
                         http_response *resp);
void api_unknown_outcomes(const http_context *ctx, const http_request *req, const char *const *a,
                          http_response *resp);

#endif
