/* http/api_checkout.c — the buyer's payment page under /pay/, whose routes
 * are public in the route table (routes.c) besides /healthz and
 * /seqr/notify/: the invoice's pay token (128 random bits, see service.h) is the
 * capability.
 *
 *   GET /pay/{token}                  the page (checkout_page.c), text/html
 *   GET /pay/{token}/status           {"state","status","version","expiresIn"}
 *   GET /pay/{token}/events           text/event-stream of "state" {"state","version"}
 *                                     (the events hub's stream, http/api_events.h)
 *   GET /pay/assets/checkout.css|.js  the page's stylesheet and script
 *
 * A wrong token answers 404 with nothing about any invoice, and no other
 * invoice data than the page's is reachable here. Every answer carries a
 * strict Content-Security-Policy (no inline script or style; framing as
 * [checkout] frame_ancestors says), nosniff and no-referrer (the token must
 * not leak to the shop's backUrl through Referer). Tokens are masked in the
 * access log (api_checkout_log_path). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkout_page.h"
#include "http/api.h"

/* The assets, compiled in from src/checkout/ (checkout_assets.c, made by make). */
extern const char checkout_css_text[];
extern const char checkout_js_text[];

/* A token's shape is the service's (service.h, SERVICE_PAY_TOKEN_MAX). */
#define CHECKOUT_TOKEN_LEN SERVICE_PAY_TOKEN_MAX

const char *api_checkout_log_path(const char *path, char *out, size_t len)
{
    if (strncmp(path, "/pay/", 5) != 0 || strncmp(path, "/pay/assets/", 12) == 0)
        return path;
    const char *t = path + 5;
    size_t n = strcspn(t, "/");
    /* A token, or what may be a mistyped one: never logged. */
    snprintf(out, len, "/pay/{token}%.32s", service_pay_token_valid(t, n) ? t + n : "...");
    return out;
}

/* The headers of every /pay/ answer. */
static void checkout_security_headers(const http_context *ctx, http_response *resp)
{
    const char *ancestors = ctx->cfg->checkout_frame_ancestors;
    char csp[512];
    snprintf(csp, sizeof csp,
             "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
             "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors %s",
             ancestors);
    http_respond_header(resp, "Content-Security-Policy", csp);
    if (strcmp(ancestors, "'none'") == 0)
        http_respond_header(resp, "X-Frame-Options", "DENY");
    else if (strcmp(ancestors, "'self'") == 0)
        http_respond_header(resp, "X-Frame-Options", "SAMEORIGIN");
    http_respond_header(resp, "X-Content-Type-Options", "nosniff");
    http_respond_header(resp, "Referrer-Policy", "no-referrer");
}

static void checkout_asset(const char *text, const char *type, http_response *resp)
{
    buf_append(&resp->raw, text, strlen(text));
    resp->content_type = type;
    resp->status = 200;
    /* The page names them with ?v=<version>: a new gateway, a new URL. */
    http_respond_header(resp, "Cache-Control", "public, max-age=86400");
}

/* Loads the invoice of token; false (nothing said about why) when none. */
static bool checkout_load(const http_context *ctx, const char *token, size_t len,
                          store_invoice *inv)
{
    char t[CHECKOUT_TOKEN_LEN + 1];
    if (!service_pay_token_valid(token, len))
        return false;
    memcpy(t, token, len);
    t[len] = '\0';
    if (!service_invoice_by_pay_token(ctx->svc, t, inv))
        return false;
    if (inv->reference[0] == '\0' || inv->qr_code[0] == '\0') {
        store_invoice_clear(inv); /* never sent: no buyer has a link to it */
        return false;
    }
    return true;
}

static void checkout_not_found_page(const http_context *ctx, checkout_lang lang,
                                    http_response *resp)
{
    if (checkout_render_not_found(lang, SEQR_VERSION, &resp->raw) != CHECKOUT_OK) {
        http_respond_fail(resp, 404, "not_found", NULL, "no such payment");
        return;
    }
    resp->content_type = "text/html; charset=utf-8";
    resp->status = 404;
}

static void checkout_page(const http_context *ctx, const http_request *req, const char *token,
                          size_t len, http_response *resp)
{
    checkout_lang lang = checkout_lang_pick(http_header(req, "Accept-Language"));
    http_respond_header(resp, "Vary", "Accept-Language");
    http_respond_header(resp, "Content-Language", checkout_lang_tag(lang));
    store_invoice inv;
    if (!checkout_load(ctx, token, len, &inv)) {
        checkout_not_found_page(ctx, lang, resp);
        return;
    }
    const config *cfg = ctx->cfg;
    const char *shop = cfg->receipt_store_name[0] ? cfg->receipt_store_name : cfg->seqr_client_id;
    json_t *doc = inv.doc_json ? json_loads(inv.doc_json, 0, NULL) : NULL;
    const char *title = json_string_value(json_object_get(doc, "title"));
    if (title == NULL || title[0] == '\0')
        title = cfg->invoice_title[0] ? cfg->invoice_title : shop;
    char tok[CHECKOUT_TOKEN_LEN + 1];
    memcpy(tok, token, len);
    tok[len] = '\0';
    char events[CHECKOUT_TOKEN_LEN + 16];
    snprintf(events, sizeof events, "%s/events", tok);
    checkout_input in = {
        .inv = &inv,
        .shop_name = shop,
        .title = title,
        .app_scheme = cfg->checkout_app_scheme,
        .token = tok,
        .events = events,
        .version = SEQR_VERSION,
        .lang = lang,
        .now_ms = store_now_ms(),
    };
    char msg[160];
    checkout_err e = checkout_render(&in, &resp->raw, msg, sizeof msg);
    if (e != CHECKOUT_OK) {
        buf_reset(&resp->raw);
        http_respond_fail(resp, 500, "page_failed", NULL, msg);
    } else {
        resp->content_type = "text/html; charset=utf-8";
        resp->status = 200;
    }
    json_decref(doc);
    store_invoice_clear(&inv);
}

/* What the page may learn of its invoice: its state and version (a new
 * reference). */
static json_t *checkout_state_json(const store_invoice *inv, int64_t now)
{
    json_t *o = json_object();
    json_object_set_new(o, "state", json_string(checkout_state_name(checkout_state_of(inv, now))));
    json_object_set_new(o, "version", json_integer(inv->version));
    return o;
}

static void checkout_status(const http_context *ctx, const char *token, size_t len,
                            http_response *resp)
{
    store_invoice inv;
    if (!checkout_load(ctx, token, len, &inv)) {
        http_respond_fail(resp, 404, "not_found", NULL, "no such payment");
        return;
    }
    int64_t now = store_now_ms();
    json_t *o = checkout_state_json(&inv, now);
    json_object_set_new(o, "status", json_string(seqr_status_name(inv.status)));
    json_object_set_new(o, "expiresIn",
                        json_integer(inv.expires_at > now ? (inv.expires_at - now) / 1000 : 0));
    http_respond_json(resp, 200, o);
    store_invoice_clear(&inv);
}

/* The page's stream writer: after each run of events, one "state" frame
 * with the invoice's state then (never the events themselves, which carry
 * the shop's data). ud: the token (heap, freed with the stream). */
typedef struct {
    const http_context *ctx;
    char token[CHECKOUT_TOKEN_LEN + 1];
} checkout_stream;

static bool checkout_stream_batch(void *ud, int64_t last_id, buf *out)
{
    checkout_stream *cs = ud;
    store_invoice inv;
    if (!checkout_load(cs->ctx, cs->token, strlen(cs->token), &inv))
        return false;
    json_t *o = checkout_state_json(&inv, store_now_ms());
    store_invoice_clear(&inv);
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (text == NULL)
        return false;
    buf_printf(out, "id: %lld\nevent: state\ndata: %s\n\n", (long long)last_id, text);
    free(text);
    return true;
}

static void checkout_events(const http_context *ctx, const http_request *req, const char *token,
                            size_t len, http_response *resp)
{
    store_invoice inv;
    if (!checkout_load(ctx, token, len, &inv)) {
        http_respond_fail(resp, 404, "not_found", NULL, "no such payment");
        return;
    }
    int64_t invoice_id = inv.id;
    store_invoice_clear(&inv);
    int64_t last;
    if (!api_events_last_event_id(req, resp, &last))
        return;
    checkout_stream *cs = calloc(1, sizeof *cs);
    if (cs == NULL)
        abort();
    cs->ctx = ctx;
    memcpy(cs->token, token, len);
    cs->token[len] = '\0';
    const api_stream_writer w = {.batch = checkout_stream_batch, .free = free};
    api_events_open_stream(ctx, invoice_id, last, &w, cs, resp);
}

void api_pay_page(const http_context *ctx, const http_request *req, const char *const *a,
                  http_response *resp)
{
    checkout_security_headers(ctx, resp);
    checkout_page(ctx, req, a[0], strlen(a[0]), resp);
}

void api_pay_status(const http_context *ctx, const http_request *req, const char *const *a,
                    http_response *resp)
{
    checkout_security_headers(ctx, resp);
    checkout_status(ctx, a[0], strlen(a[0]), resp);
}

void api_pay_events(const http_context *ctx, const http_request *req, const char *const *a,
                    http_response *resp)
{
    checkout_security_headers(ctx, resp);
    checkout_events(ctx, req, a[0], strlen(a[0]), resp);
}

void api_pay_css(const http_context *ctx, const http_request *req, const char *const *a,
                 http_response *resp)
{
    checkout_security_headers(ctx, resp);
    checkout_asset(checkout_css_text, "text/css; charset=utf-8", resp);
}

void api_pay_js(const http_context *ctx, const http_request *req, const char *const *a,
                http_response *resp)
{
    checkout_security_headers(ctx, resp);
    checkout_asset(checkout_js_text, "text/javascript; charset=utf-8", resp);
}
