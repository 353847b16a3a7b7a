/* http/routes.c — the route table of the REST API: method, pattern, handler
 * and how the route is reached (behind the API key, public, or SEQR's
 * public callback), and the router built on it that the server consults
 * for access, Idempotency-Keys, metric labels and dispatch. */
#include "http/api.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *method;
    const char *pattern; /* "/invoices/{}/refunds": {} matches one segment */
    http_handler handler;
    http_route_access access;
} api_route;

static const api_route api_routes[] = {
    {"GET", "/healthz", api_healthz, HTTP_ROUTE_PUBLIC},
    {"GET", "/metrics", api_metrics, HTTP_ROUTE_API_KEY},
    {"POST", "/admin/backup", api_backup, HTTP_ROUTE_API_KEY},
    {"POST", "/invoices", api_create_invoice, HTTP_ROUTE_API_KEY},
    {"GET", "/invoices", api_list_invoices, HTTP_ROUTE_API_KEY},
    {"GET", "/invoices/{}", api_get_invoice, HTTP_ROUTE_API_KEY},
    {"PUT", "/invoices/{}", api_update_invoice, HTTP_ROUTE_API_KEY},
    {"GET", "/invoices/{}/status", api_refresh_invoice, HTTP_ROUTE_API_KEY},
    {"POST", "/invoices/{}/cancel", api_cancel_invoice, HTTP_ROUTE_API_KEY},
    {"POST", "/invoices/{}/receipt", api_receipt, HTTP_ROUTE_API_KEY},
    {"GET", "/invoices/{}/receipt.html", api_receipt_html, HTTP_ROUTE_API_KEY},
    {"POST", "/invoices/{}/refunds", api_refund, HTTP_ROUTE_API_KEY},
    {"GET", "/invoices/{}/refunds", api_list_refunds, HTTP_ROUTE_API_KEY},
    {"POST", "/invoices/{}/refunds/{}/resolve", api_refund_resolve, HTTP_ROUTE_API_KEY},
    {"POST", "/invoices/{}/commit", api_commit, HTTP_ROUTE_API_KEY},
    {"GET", "/invoices/{}/qr.{}", api_invoice_qr, HTTP_ROUTE_API_KEY},
    {"POST", "/periods", api_periods, HTTP_ROUTE_API_KEY},
    {"POST", "/reports", api_reports, HTTP_ROUTE_API_KEY},
    {"POST", "/terminals", api_register_terminal, HTTP_ROUTE_API_KEY},
    {"POST", "/terminals/{}/seqr-id", api_assign_seqr_id, HTTP_ROUTE_API_KEY},
    {"DELETE", "/terminals/{}", api_unregister_terminal, HTTP_ROUTE_API_KEY},
    {"GET", "/terminals/{}/qr.{}", api_terminal_qr, HTTP_ROUTE_API_KEY},
    {"POST", "/seqr/notify/{}", api_notify, HTTP_ROUTE_CALLBACK},
    /* The buyer's payment page: public like the callback (a browser through
     * the shop's proxy, bodies unread); the token is the capability. */
    {"GET", "/pay/assets/checkout.css", api_pay_css, HTTP_ROUTE_CALLBACK},
    {"GET", "/pay/assets/checkout.js", api_pay_js, HTTP_ROUTE_CALLBACK},
    {"GET", "/pay/{}", api_pay_page, HTTP_ROUTE_CALLBACK},
    {"GET", "/pay/{}/status", api_pay_status, HTTP_ROUTE_CALLBACK},
    {"GET", "/unknown-outcomes", api_unknown_outcomes, HTTP_ROUTE_API_KEY},
    {"POST", "/unknown-outcomes/invoices/{}/resolve", api_invoice_resolve, HTTP_ROUTE_API_KEY},
    /* >>> events (http/api_events.c) */
    {"GET", "/events", api_events_list, HTTP_ROUTE_API_KEY},
    {"POST", "/events/{}/redeliver", api_events_redeliver, HTTP_ROUTE_API_KEY},
    {"GET", "/invoices/{}/events", api_events_stream, HTTP_ROUTE_API_KEY},
    {"GET", "/webhooks/deliveries", api_events_deliveries, HTTP_ROUTE_API_KEY},
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

/* How a path is reached: the access of the routes its path matches (for any
 * method), else behind the API key like every unknown path. */
static http_route_access http_api_access(const char *path)
{
    char segs[4][128];
    for (size_t i = 0; i < sizeof api_routes / sizeof *api_routes; i++) {
        int n;
        if (api_match(api_routes[i].pattern, path, segs, &n))
            return api_routes[i].access;
    }
    return HTTP_ROUTE_API_KEY;
}

/* Every POST route behind the API key takes an Idempotency-Key; the
 * notification callback (unauthenticated, internet-facing) does not. */
static bool http_api_takes_idempotency_key(const char *method, const char *path)
{
    if (strcmp(method, "POST") != 0)
        return false;
    char segs[4][128];
    for (size_t i = 0; i < sizeof api_routes / sizeof *api_routes; i++) {
        int n;
        if (strcmp(api_routes[i].method, "POST") == 0 &&
            api_routes[i].access == HTTP_ROUTE_API_KEY &&
            api_match(api_routes[i].pattern, path, segs, &n))
            return true;
    }
    return false;
}

/* The route pattern ("/invoices/{}") that path matches for method, else the
 * pattern it matches for another method, else "unmatched" (static strings;
 * bounded, for metric labels). */
static const char *http_api_route(const char *method, const char *path)
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

const http_router http_api_router = {
    .access = http_api_access,
    .takes_idempotency_key = http_api_takes_idempotency_key,
    .route = http_api_route,
    .log_path = api_checkout_log_path,
    .dispatch = http_api_dispatch,
};
