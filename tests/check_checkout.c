/* check_checkout.c — the buyer's payment page: languages, amounts and states
 * (checkout_page.c) on their own, then GET /pay/... on the real daemon
 * against the real simulator: reachable without the API key by the token
 * only, paymentPageUrl absolute under [http] public_url, shop text escaped,
 * the app link's scheme from [checkout] app_scheme, the security headers,
 * the page's event stream (state and version only, resumable), and no
 * token in the log. The browser's view is tests/checkout_test.sh. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "checkout_page.h"
#include "config.h"
#include "gwtest.h"

START_TEST(language_from_accept_language)
{
    ck_assert_int_eq(checkout_lang_pick(NULL), CHECKOUT_EN);
    ck_assert_int_eq(checkout_lang_pick(""), CHECKOUT_EN);
    ck_assert_int_eq(checkout_lang_pick("sv"), CHECKOUT_SV);
    ck_assert_int_eq(checkout_lang_pick("sv-SE,sv;q=0.9,en-US;q=0.8,en;q=0.7"), CHECKOUT_SV);
    ck_assert_int_eq(checkout_lang_pick("en-GB, sv;q=0.5"), CHECKOUT_EN);
    ck_assert_int_eq(checkout_lang_pick("de-DE,de;q=0.9,sv;q=0.4,en;q=0.3"), CHECKOUT_SV);
    ck_assert_int_eq(checkout_lang_pick("fr, de"), CHECKOUT_EN);
    ck_assert_int_eq(checkout_lang_pick("sv;q=0, en"), CHECKOUT_EN);
    ck_assert_int_eq(checkout_lang_pick("SV-fi"), CHECKOUT_SV);
    ck_assert_int_eq(checkout_lang_pick("svx, en;q=0.1"), CHECKOUT_EN);
    ck_assert_int_eq(checkout_lang_pick(";;,,;q=,sv;q=1.0"), CHECKOUT_SV);
    ck_assert_str_eq(checkout_lang_tag(CHECKOUT_SV), "sv");
}
END_TEST

START_TEST(amounts_as_the_language_writes_them)
{
    char out[96];
    checkout_money(254950, "SEK", CHECKOUT_SV, out, sizeof out);
    ck_assert_str_eq(out, "2\xc2\xa0"
                          "549,50\xc2\xa0kr");
    checkout_money(254950, "SEK", CHECKOUT_EN, out, sizeof out);
    ck_assert_str_eq(out, "SEK\xc2\xa0"
                          "2,549.50");
    checkout_money(123456789012, "EUR", CHECKOUT_SV, out, sizeof out);
    ck_assert_str_eq(out, "1\xc2\xa0"
                          "234\xc2\xa0"
                          "567\xc2\xa0"
                          "890,12\xc2\xa0\xe2\x82\xac");
    checkout_money(5, "NOK", CHECKOUT_EN, out, sizeof out);
    ck_assert_str_eq(out, "NOK\xc2\xa0"
                          "0.05");
    checkout_money(-100000, "SEK", CHECKOUT_EN, out, sizeof out);
    ck_assert_str_eq(out, "SEK\xc2\xa0\xe2\x88\x92"
                          "1,000.00");
}
END_TEST

START_TEST(states)
{
    store_invoice inv;
    memset(&inv, 0, sizeof inv);
    inv.expires_at = 10000;
    inv.updated_at = 5000;
    inv.status = SEQR_STATUS_ISSUED;
    ck_assert_int_eq(checkout_state_of(&inv, 9000), CHECKOUT_PENDING);
    ck_assert_int_eq(checkout_state_of(&inv, 10001), CHECKOUT_EXPIRED);
    inv.status = SEQR_STATUS_PAID;
    ck_assert_int_eq(checkout_state_of(&inv, 20000), CHECKOUT_PAID);
    inv.status = SEQR_STATUS_RESERVED;
    ck_assert_int_eq(checkout_state_of(&inv, 9000), CHECKOUT_PAID);
    inv.status = SEQR_STATUS_FAILED;
    ck_assert_int_eq(checkout_state_of(&inv, 9000), CHECKOUT_FAILED);
    inv.status = SEQR_STATUS_CANCELED;
    ck_assert_int_eq(checkout_state_of(&inv, 9000), CHECKOUT_CANCELED);
    inv.updated_at = 10500; /* canceled by the poller after it expired */
    ck_assert_int_eq(checkout_state_of(&inv, 20000), CHECKOUT_EXPIRED);
    inv.status = SEQR_STATUS_PENDING_ISSUER_ACKNOWLEDGE;
    inv.polling_stopped = true;
    ck_assert_int_eq(checkout_state_of(&inv, 9000), CHECKOUT_FAILED);
    ck_assert_str_eq(checkout_state_name(CHECKOUT_EXPIRED), "expired");
}
END_TEST

/* Shop text only ever becomes text: the page has no markup of the shop's. */
START_TEST(render_escapes_shop_text)
{
    store_invoice inv;
    memset(&inv, 0, sizeof inv);
    inv.status = SEQR_STATUS_ISSUED;
    snprintf(inv.qr_code, sizeof inv.qr_code, "HTTP://SEQR.SE/R1234567890");
    snprintf(inv.currency, sizeof inv.currency, "SEK");
    inv.total = 1200;
    inv.expires_at = 100000;
    inv.doc_json = "{\"backUrl\":\"https://shop.example/\\\"><script>x()</script>\","
                   "\"footer\":\"<b>bold</b>\",\"rows\":[{\"quantity\":\"1.5\",\"totalAmount\":"
                   "\"12.00\",\"description\":\"<img src=x onerror=alert(1)>\"}]}";
    checkout_input in = {&inv,
                         "Shop & <Co>",
                         "<script>alert(1)</script>",
                         "SEQR-DEBUG",
                         "0123456789abcdef0123456789abcdef",
                         "",
                         "9.9",
                         CHECKOUT_SV,
                         1000};
    buf out = BUF_INIT;
    char msg[128];
    ck_assert_int_eq(checkout_render(&in, &out, msg, sizeof msg), CHECKOUT_OK);
    const char *html = buf_cstr(&out);
    ck_assert_msg(strncmp(html, "<!DOCTYPE html>\n<html lang=\"sv\">", 32) == 0, "%.80s", html);
    /* One script element: the page's own, by src. */
    const char *s1 = strstr(html, "<script");
    ck_assert_ptr_nonnull(s1);
    ck_assert_ptr_null(strstr(s1 + 1, "<script"));
    ck_assert_ptr_nonnull(strstr(s1, "src=\"/pay/assets/checkout.js?v=9.9\""));
    ck_assert_ptr_null(strstr(html, "<img"));
    ck_assert_ptr_null(strstr(html, "<b>"));
    ck_assert_ptr_null(strstr(html, " style="));
    ck_assert_ptr_nonnull(strstr(html, "&lt;script&gt;alert(1)&lt;/script&gt;"));
    ck_assert_ptr_nonnull(strstr(html, "Shop &amp; &lt;Co&gt;"));
    ck_assert_ptr_nonnull(strstr(html, "href=\"SEQR-DEBUG://SEQR.SE/R1234567890\""));
    /* (libxml2 quotes a value holding '"' with '.) */
    ck_assert_msg(strstr(html, "data-back-url='https://shop.example/\"&gt;&lt;script&gt;") != NULL,
                  "%.120s", strstr(html, "data-back"));
    ck_assert_ptr_nonnull(strstr(html, "1,5")); /* the quantity, in Swedish */
    ck_assert_ptr_nonnull(strstr(html, "data-state=\"pending\""));
    ck_assert_ptr_nonnull(strstr(html, "role=\"img\""));
    buf_free(&out);

    /* Not UTF-8: refused, nothing written. */
    in.title = "bad \xff title";
    ck_assert_int_eq(checkout_render(&in, &out, msg, sizeof msg), CHECKOUT_ERR_INVALID);
    ck_assert_uint_eq(out.len, 0);
    /* No QR code: no page. */
    in.title = "t";
    inv.qr_code[0] = '\0';
    ck_assert_int_eq(checkout_render(&in, &out, msg, sizeof msg), CHECKOUT_ERR_INVALID);
    buf_free(&out);
}
END_TEST

/* [checkout]: defaults, good values, and each bad one named. */
START_TEST(config_keys)
{
    static const char base[] = "[seqr]\nurl = http://127.0.0.1:1/soap\nterminal_id = t\n"
                               "password = p4ssw0rd-long\n";
    static const struct {
        const char *lines;
        int problems;
        const char *scheme, *ancestors;
    } cases[] = {
        {"", 0, "SEQR", "'none'"},
        {"[checkout]\napp_scheme = SEQR-DEBUG\nframe_ancestors = 'self'\n", 0, "SEQR-DEBUG",
         "'self'"},
        {"[checkout]\nframe_ancestors = 'self' https://shop.example https://*.shop.example:8443\n",
         0, "SEQR", "'self' https://shop.example https://*.shop.example:8443"},
        {"[checkout]\napp_scheme = seqr\n", 1, NULL, NULL},
        {"[checkout]\napp_scheme = javascript\n", 1, NULL, NULL},
        {"[checkout]\nframe_ancestors = *\n", 1, NULL, NULL},
        {"[checkout]\nframe_ancestors = 'none' https://shop.example\n", 1, NULL, NULL},
        {"[checkout]\nframe_ancestors = https://shop.example; script-src *\n", 1, NULL, NULL},
        {"[checkout]\nframe_ancestors = 'unsafe-inline'\n", 1, NULL, NULL},
    };
    char *dir = tu_tempdir();
    char path[600];
    snprintf(path, sizeof path, "%s/gw.conf", dir);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        buf text = BUF_INIT, errors = BUF_INIT;
        buf_printf(&text, "%s%s", base, cases[i].lines);
        ck_assert(tu_write_file(path, buf_cstr(&text)));
        chmod(path, 0600);
        config cfg;
        int n = config_load(path, &cfg, &errors, NULL);
        ck_assert_msg(n == cases[i].problems, "%s: %d problems: %s", cases[i].lines, n,
                      buf_cstr(&errors));
        if (n == 0) {
            ck_assert_str_eq(cfg.checkout_app_scheme, cases[i].scheme);
            ck_assert_str_eq(cfg.checkout_frame_ancestors, cases[i].ancestors);
        } else {
            ck_assert_ptr_nonnull(strstr(buf_cstr(&errors), "[checkout] "));
        }
        config_free(&cfg);
        buf_free(&text);
        buf_free(&errors);
    }
    free(dir);
}
END_TEST

static gw_env env;

static long get(const char *path, const char *const *headers, tu_response *r)
{
    char url[600];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", env.gw_port, path);
    return tu_http("GET", url, headers, NULL, 0, r);
}

/* A GET /pay/{token}/events read to its end on a thread of its own. */
typedef struct {
    char path[160];
    long status;
    char type[128];
    char *body;
} sse_get;

static void *sse_get_run(void *arg)
{
    sse_get *g = arg;
    tu_response r;
    g->status = get(g->path, NULL, &r);
    if (!tu_header(&r, "Content-Type", g->type, sizeof g->type))
        g->type[0] = '\0';
    g->body = strdup(buf_cstr(&r.body));
    tu_response_free(&r);
    return NULL;
}

/* Checks that every data: line of an event stream is {"state","version"}
 * and nothing else; returns the last one's state (static) and its id. */
static const char *sse_last_state(const char *body, long long *last_id)
{
    static char state[32];
    state[0] = '\0';
    *last_id = 0;
    const char *p = body;
    while ((p = strstr(p, "id: ")) != NULL) {
        long long id = strtoll(p + 4, NULL, 10);
        const char *ev = strstr(p, "\nevent: state\ndata: ");
        ck_assert_msg(ev != NULL, "a frame without a state: %s", p);
        const char *d = ev + strlen("\nevent: state\ndata: ");
        size_t n = strcspn(d, "\n");
        json_error_t err;
        json_t *j = json_loadb(d, n, 0, &err);
        ck_assert_msg(j != NULL, "data is not JSON: %.*s", (int)n, d);
        ck_assert_msg(json_object_size(j) == 2 && json_is_string(json_object_get(j, "state")) &&
                          json_is_integer(json_object_get(j, "version")),
                      "data: %.*s", (int)n, d);
        snprintf(state, sizeof state, "%s", json_string_value(json_object_get(j, "state")));
        json_decref(j);
        ck_assert_msg(id > *last_id, "ids not increasing: %s", body);
        *last_id = id;
        p = d + n;
    }
    return state;
}

START_TEST(public_by_token_only)
{
    gwt_env_init(&env, "20");
    gwt_write_config(&env, NULL,
                     "[http]\npublic_url = https://pay.shop.example/gw/\n"
                     "[checkout]\napp_scheme = SEQR-DEBUG\n"
                     "frame_ancestors = 'self' https://shop.example\n",
                     env.sim_port);
    gwt_start_gw(&env);
    char ref[64], url[256];
    long st;
    json_t *inv = gwt_gw_call(&env, "POST", "/invoices", gwt_invoice_body, NULL, &st);
    ck_assert_int_eq(st, 201);
    snprintf(ref, sizeof ref, "%s", gwt_str(inv, "invoiceReference"));
    snprintf(url, sizeof url, "%s", gwt_str(inv, "paymentPageUrl"));
    /* The token: "<reference>.<32 hex digits of secret>". */
    const char *prefix = "https://pay.shop.example/gw/pay/";
    size_t pl = strlen(prefix), rl = strlen(ref);
    ck_assert_msg(strncmp(url, prefix, pl) == 0 && strncmp(url + pl, ref, rl) == 0 &&
                      url[pl + rl] == '.' && strlen(url) == pl + rl + 1 + 32 &&
                      strspn(url + pl + rl + 1, "0123456789abcdef") == 32,
                  "%s", url);
    char path[128], token[128], secret[40];
    snprintf(token, sizeof token, "%s", url + pl);
    snprintf(secret, sizeof secret, "%s", url + pl + rl + 1);
    snprintf(path, sizeof path, "/pay/%s", token);
    json_decref(inv);
    /* A second invoice, whose secret must not open the first one's page. */
    inv = gwt_gw_call(&env, "POST", "/invoices", gwt_invoice_body, NULL, &st);
    ck_assert_int_eq(st, 201);
    const char *url2 = gwt_str(inv, "paymentPageUrl");
    const char *dot2 = strrchr(url2, '.');
    ck_assert_ptr_nonnull(dot2);
    char crossed[160];
    snprintf(crossed, sizeof crossed, "/pay/%s%s", ref, dot2);
    json_decref(inv);

    /* GET /invoices/{ref} answers the same URL. */
    char p2[200];
    snprintf(p2, sizeof p2, "/invoices/%s", ref);
    inv = gwt_gw_call(&env, "GET", p2, NULL, NULL, &st);
    ck_assert_str_eq(gwt_str(inv, "paymentPageUrl"), url);
    json_decref(inv);

    /* The page, without any key. */
    tu_response r;
    const char *sv[] = {"Accept-Language: sv-SE,sv;q=0.9", NULL};
    ck_assert_int_eq(get(path, sv, &r), 200);
    char h[512];
    ck_assert(tu_header(&r, "Content-Type", h, sizeof h));
    ck_assert_str_eq(h, "text/html; charset=utf-8");
    ck_assert(tu_header(&r, "Content-Security-Policy", h, sizeof h));
    ck_assert_ptr_nonnull(strstr(h, "script-src 'self'"));
    ck_assert_ptr_nonnull(strstr(h, "frame-ancestors 'self' https://shop.example"));
    ck_assert(!tu_header(&r, "X-Frame-Options", h, sizeof h)); /* frame-ancestors decides */
    ck_assert(tu_header(&r, "Referrer-Policy", h, sizeof h));
    ck_assert_str_eq(h, "no-referrer");
    ck_assert(tu_header(&r, "Content-Language", h, sizeof h));
    ck_assert_str_eq(h, "sv");
    ck_assert_ptr_nonnull(strstr(buf_cstr(&r.body), "SEQR-DEBUG://SEQR.SE/R"));
    ck_assert_ptr_nonnull(strstr(buf_cstr(&r.body), "Att betala"));
    tu_response_free(&r);

    /* A buyer's browser through the shop's proxy: its Host, an Origin. */
    const char *proxied[] = {"Host: pay.elsewhere.example", "Origin: https://pay.elsewhere.example",
                             NULL};
    ck_assert_int_eq(get(path, proxied, &r), 200);
    tu_response_free(&r);
    /* ...which the API still refuses. */
    const char *api_proxied[] = {"Host: pay.elsewhere.example", "Authorization: Bearer " API_KEY,
                                 NULL};
    snprintf(p2, sizeof p2, "/invoices/%s", ref);
    ck_assert_int_eq(get(p2, api_proxied, &r), 421);
    tu_response_free(&r);

    /* Its status, without any key: the state only. */
    snprintf(p2, sizeof p2, "%s/status", path);
    ck_assert_int_eq(get(p2, NULL, &r), 200);
    json_t *s = tu_json(&r);
    ck_assert_str_eq(gwt_str(s, "state"), "pending");
    ck_assert_int_eq(json_object_size(s), 4);
    json_decref(s);
    tu_response_free(&r);

    /* Its event stream, open before the payment. */
    sse_get sse = {.status = 0};
    snprintf(sse.path, sizeof sse.path, "%s/events", path);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, sse_get_run, &sse), 0);
    long long until = tu_now_ms() + 10000 * gwt_slowdown();
    for (;;) { /* open once the hub counts it */
        json_t *hz = gwt_gw_call(&env, "GET", "/healthz", NULL, NULL, &st);
        json_int_t open =
            json_integer_value(json_object_get(json_object_get(hz, "webhooks"), "openStreams"));
        json_decref(hz);
        if (open >= 1)
            break;
        ck_assert_msg(tu_now_ms() < until, "the page's stream did not open");
        tu_sleep_ms(20);
    }

    /* Paid: the status follows, and the stream ends with it. */
    gwt_sim_pay(&env, ref);
    json_decref(gwt_wait_status(&env, ref, "PAID", 10000 * gwt_slowdown()));
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_eq(sse.status, 200);
    ck_assert_str_eq(sse.type, "text/event-stream");
    ck_assert_ptr_null(strstr(sse.body, ref));
    long long first_id = strtoll(strstr(sse.body, "id: ") + 4, NULL, 10), last_id;
    ck_assert_str_eq(sse_last_state(sse.body, &last_id), "paid");
    ck_assert_msg(last_id > first_id, "one frame only: %s", sse.body);
    free(sse.body);
    /* The automatic receipt follows PAID with an event of its own: the
     * resumes below count on every event of the invoice being in. */
    snprintf(p2, sizeof p2, "/invoices/%s", ref);
    until = tu_now_ms() + 10000 * gwt_slowdown();
    for (;;) {
        json_t *got = gwt_gw_call(&env, "GET", p2, NULL, NULL, &st);
        bool sent = json_is_true(json_object_get(got, "receiptSubmitted"));
        json_decref(got);
        if (sent)
            break;
        ck_assert_msg(tu_now_ms() < until, "the automatic receipt was not submitted");
        tu_sleep_ms(20);
    }
    snprintf(p2, sizeof p2, "%s/status", path);
    /* Last-Event-ID resumes after it; after the last, the final stream ends empty. */
    char lei[64], ep[160];
    snprintf(ep, sizeof ep, "%s/events", path);
    snprintf(lei, sizeof lei, "Last-Event-ID: %lld", first_id);
    const char *resume[] = {lei, NULL};
    ck_assert_int_eq(get(ep, resume, &r), 200);
    long long id2;
    ck_assert_str_eq(sse_last_state(buf_cstr(&r.body), &id2), "paid");
    ck_assert_int_ge(id2, last_id); /* (events may follow the final one) */
    snprintf(lei, sizeof lei, "id: %lld\n", first_id);
    ck_assert_ptr_null(strstr(buf_cstr(&r.body), lei));
    tu_response_free(&r);
    snprintf(lei, sizeof lei, "Last-Event-ID: %lld", id2);
    ck_assert_int_eq(get(ep, resume, &r), 200);
    ck_assert_ptr_null(strstr(buf_cstr(&r.body), "data:"));
    tu_response_free(&r);
    ck_assert_int_eq(get(p2, NULL, &r), 200);
    s = tu_json(&r);
    ck_assert_str_eq(gwt_str(s, "state"), "paid");
    json_decref(s);
    tu_response_free(&r);

    /* Wrong tokens: 404. Paths under /pay/ that are no route of the page's
     * are the API's, behind its key: 401. Either way, nothing. */
    char wrong[160], other[160], wrong_events[180], bare[64];
    size_t tl = strlen(token);
    snprintf(wrong, sizeof wrong, "/pay/%.*s%c", (int)(tl - 1), token,
             token[tl - 1] == 'a' ? 'b' : 'a');
    snprintf(wrong_events, sizeof wrong_events, "%s/events", wrong);
    snprintf(bare, sizeof bare, "/pay/%s", secret); /* the shape of a token made before schema 9 */
    snprintf(other, sizeof other, "/pay/%s/refunds", token);
    /* (Dot segments, which libcurl removes, are tried by checkout_test.sh.) */
    const struct {
        const char *path;
        long status;
    } nothing[] = {{wrong, 404},       {wrong_events, 404},   {crossed, 404},
                   {bare, 404},        {"/pay/", 401},        {"/pay", 401},
                   {other, 401},       {"/pay/assets/", 401}, {"/pay/assets/checkout.jsx", 401},
                   {"/pay/x/y/z", 401}};
    for (size_t i = 0; i < sizeof nothing / sizeof *nothing; i++) {
        long got = get(nothing[i].path, NULL, &r);
        ck_assert_msg(got == nothing[i].status, "%s: %ld", nothing[i].path, got);
        ck_assert_ptr_null(strstr(buf_cstr(&r.body), ref));
        ck_assert_ptr_null(strstr(buf_cstr(&r.body), "SEQR.SE"));
        ck_assert_ptr_null(strstr(buf_cstr(&r.body), "data:"));
        tu_response_free(&r);
    }
    snprintf(p2, sizeof p2, "/pay/%s", ref);
    ck_assert_int_eq(get(p2, NULL, &r), 404);
    tu_response_free(&r);
    char full[600];
    snprintf(full, sizeof full, "http://127.0.0.1:%d%s", env.gw_port, path);
    ck_assert_int_eq(tu_http("POST", full, NULL, "{}", 2, &r), 405);
    tu_response_free(&r);
    /* Everything else still wants the key. */
    snprintf(p2, sizeof p2, "/invoices/%s", ref);
    ck_assert_int_eq(get(p2, NULL, &r), 401);
    tu_response_free(&r);

    /* The assets: cacheable, typed. */
    ck_assert_int_eq(get("/pay/assets/checkout.js", NULL, &r), 200);
    ck_assert(tu_header(&r, "Content-Type", h, sizeof h));
    ck_assert_str_eq(h, "text/javascript; charset=utf-8");
    ck_assert(tu_header(&r, "Cache-Control", h, sizeof h));
    ck_assert_ptr_nonnull(strstr(h, "max-age"));
    tu_response_free(&r);

    gwt_env_stop(&env);
    /* No token in the log. */
    char logp[700];
    snprintf(logp, sizeof logp, "%s/gateway.log", env.dir);
    char *log = tu_read_file(logp, NULL);
    ck_assert_ptr_nonnull(log);
    ck_assert_ptr_null(strstr(log, token));
    ck_assert_ptr_null(strstr(log, secret));
    ck_assert_ptr_nonnull(strstr(log, "GET /pay/{token}"));
    free(log);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("checkout");
    TCase *tc = tcase_create("page");
    tcase_add_test(tc, language_from_accept_language);
    tcase_add_test(tc, amounts_as_the_language_writes_them);
    tcase_add_test(tc, states);
    tcase_add_test(tc, render_escapes_shop_text);
    tcase_add_test(tc, config_keys);
    tcase_add_test(tc, public_by_token_only);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
