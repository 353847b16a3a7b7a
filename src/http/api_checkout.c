/* http/api_checkout.c — the buyer's payment page under /pay/, whose routes
 * are public in the route table (routes.c) besides /healthz and
 * /seqr/notify/: the invoice's pay token (128 random bits, see store.h) is the
 * capability.
 *
 *   GET /pay/{token}                  the page (checkout_page.c), text/html
 *   GET /pay/{token}/status           {"state","status","version","expiresIn"}
 *   GET /pay/assets/checkout.css|.js  the page's stylesheet and script
 *
 * A wrong token answers 404 with nothing about any invoice, and no other
 * invoice data than the page's is reachable here. Every answer carries a
 * strict Content-Security-Policy (no inline script or style; framing as
 * [checkout] frame_ancestors says), nosniff and no-referrer (the token must
 * not leak to the shop's backUrl through Referer). Tokens are masked in the
 * access log (api_checkout_log_path). */
#include <stdio.h>
#include <string.h>

#include "checkout_page.h"
#include "http/api.h"

/* The assets, compiled in from src/checkout/ (checkout_assets.c, made by make). */
extern const char checkout_css_text[];
extern const char checkout_js_text[];

#define CHECKOUT_TOKEN_LEN 32

/* 32 lower-case hex digits: the only shape a token has. */
static bool checkout_token_valid(const char *t, size_t len)
{
    if (len != CHECKOUT_TOKEN_LEN)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((t[i] >= '0' && t[i] <= '9') || (t[i] >= 'a' && t[i] <= 'f')))
            return false;
    return true;
}

const char *api_checkout_log_path(const char *path, char *out, size_t len)
{
    if (strncmp(path, "/pay/", 5) != 0 || strncmp(path, "/pay/assets/", 12) == 0)
        return path;
    const char *t = path + 5;
    size_t n = strcspn(t, "/");
    /* A token, or what may be a mistyped one: never logged. */
    snprintf(out, len, "/pay/{token}%.32s", checkout_token_valid(t, n) ? t + n : "...");
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
    if (!checkout_token_valid(token, len))
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
    checkout_input in = {
        .inv = &inv,
        .shop_name = shop,
        .title = title,
        .app_scheme = cfg->checkout_app_scheme,
        .token = tok,
        .events = "",
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

static void checkout_status(const http_context *ctx, const char *token, size_t len,
                            http_response *resp)
{
    store_invoice inv;
    if (!checkout_load(ctx, token, len, &inv)) {
        http_respond_fail(resp, 404, "not_found", NULL, "no such payment");
        return;
    }
    int64_t now = store_now_ms();
    json_t *o = json_object();
    json_object_set_new(o, "state", json_string(checkout_state_name(checkout_state_of(&inv, now))));
    json_object_set_new(o, "status", json_string(seqr_status_name(inv.status)));
    json_object_set_new(o, "version", json_integer(inv.version));
    json_object_set_new(o, "expiresIn",
                        json_integer(inv.expires_at > now ? (inv.expires_at - now) / 1000 : 0));
    http_respond_json(resp, 200, o);
    store_invoice_clear(&inv);
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
