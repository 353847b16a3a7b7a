/* check_poller.c — the poller against a SEQR that speaks HTTPS, as the real
 * one does: the real seqr-sim with a self-signed certificate (made with the
 * openssl command), the real daemon trusting it only through [seqr]
 * ca_file. A payment is seen over TLS; without the CA nothing is sent. */
#include <check.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gwtest.h"

typedef struct {
    gw_env e;
    char cert[700], key[700];
} tls_env;

/* A self-signed certificate for 127.0.0.1 in e->dir. */
static void tls_make_cert(tls_env *t)
{
    snprintf(t->cert, sizeof t->cert, "%s/sim.crt", t->e.dir);
    snprintf(t->key, sizeof t->key, "%s/sim.key", t->e.dir);
    char cmd[2400];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout '%s' -out '%s' -days 2 "
             "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1",
             t->key, t->cert);
    ck_assert_msg(system(cmd) == 0, "openssl could not make a test certificate");
}

/* The simulator with TLS and the gateway; ca_file names the CA the gateway
 * trusts, or NULL for the system's store (which lacks the test's). */
static void tls_start(tls_env *t, bool trust)
{
    gw_env *e = &t->e;
    memset(t, 0, sizeof *t);
    char *d = tu_tempdir();
    ck_assert_ptr_nonnull(d);
    snprintf(e->dir, sizeof e->dir, "%s", d);
    free(d);
    snprintf(e->conf, sizeof e->conf, "%s/gateway.conf", e->dir);
    snprintf(e->db, sizeof e->db, "%s/gateway.db", e->dir);
    e->sim_port = tu_free_port();
    e->gw_port = tu_free_port();
    tls_make_cert(t);
    char port[16], log[760];
    snprintf(port, sizeof port, "%d", e->sim_port);
    snprintf(log, sizeof log, "%s/sim.log", e->dir);
    char *argv[] = {(char *)tu_env("SEQR_SIM_BIN", "src/seqr-sim"),
                    "--port", port, "--terminal", "gw-test-terminal:" TERMINAL_PASSWORD,
                    "--reseller", "gw-test-reseller:9900:" RESELLER_PASSWORD,
                    "--tls-cert", t->cert, "--tls-key", t->key, NULL};
    ck_assert(tu_spawn(&e->sim, argv, log));
    ck_assert_msg(tu_wait_port(e->sim_port, 10000), "seqr-sim did not start");

    char extra[1000];
    snprintf(extra, sizeof extra, "timeout_ms = 3000\n%s%s\n", trust ? "ca_file = " : "",
             trust ? t->cert : "");
    gwt_write_config(e, extra, NULL, e->sim_port);
    /* gwt_write_config names the simulator over http: make it https. */
    char *text = tu_read_file(e->conf, NULL);
    ck_assert_ptr_nonnull(text);
    char *at = strstr(text, "url = http://");
    ck_assert_ptr_nonnull(at);
    char fixed[8192];
    snprintf(fixed, sizeof fixed, "%.*surl = https://%s", (int)(at - text), text,
             at + strlen("url = http://"));
    free(text);
    ck_assert(tu_write_file(e->conf, fixed));
    gwt_start_gw(e);
}

static size_t tls_collect(char *data, size_t size, size_t n, void *ud)
{
    buf_append(ud, data, size * n);
    return size * n;
}

/* Calls the simulator's control API over TLS, trusting the test's CA; the
 * answer's body goes into out (may be NULL). Returns the HTTP status. */
static long tls_sim_call(const tls_env *t, const char *method, const char *path, buf *out)
{
    char url[300];
    snprintf(url, sizeof url, "https://127.0.0.1:%d%s", t->e.sim_port, path);
    buf sink = BUF_INIT;
    CURL *h = curl_easy_init();
    ck_assert_ptr_nonnull(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "POST") == 0)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(h, CURLOPT_CAINFO, t->cert);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, tls_collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out ? out : &sink);
    long status = 0;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    buf_free(&sink);
    return status;
}

START_TEST(payment_seen_over_tls_with_ca_file)
{
    tls_env t;
    tls_start(&t, true);
    char ref[64];
    gwt_create_invoice(&t.e, ref);
    char path[128];
    snprintf(path, sizeof path, "/sim/invoices/%s/pay", ref);
    ck_assert_int_eq(tls_sim_call(&t, "POST", path, NULL), 200);
    json_t *inv = gwt_wait_status(&t.e, ref, "PAID", 10000);
    ck_assert_str_eq(gwt_str(inv, "status"), "PAID");
    ck_assert_int_eq(strlen(gwt_str(inv, "ersReference")), 25);
    json_decref(inv);
    long st;
    json_t *h = gwt_gw_call(&t.e, "GET", "/healthz", NULL, NULL, &st);
    ck_assert_int_eq(st, 200);
    ck_assert(json_is_true(json_object_get(h, "seqrReachable")));
    json_decref(h);
    ck_assert_int_eq(tu_stop(&t.e.gw, SIGTERM, 10000 * gwt_slowdown()), 0);
    gwt_env_stop(&t.e);
}
END_TEST

START_TEST(untrusted_certificate_sends_nothing)
{
    tls_env t;
    tls_start(&t, false);
    long st;
    json_t *j = gwt_gw_call(&t.e, "POST", "/invoices", gwt_invoice_body, NULL, &st);
    /* SEQR could not be reached safely: the contract's 503, nothing created. */
    ck_assert_int_eq(st, 503);
    ck_assert_str_eq(gwt_error_code(j), "seqr_unreachable");
    json_decref(j);
    /* The simulator itself is fine over TLS, and saw no call at all. */
    buf answer = BUF_INIT;
    ck_assert_int_eq(tls_sim_call(&t, "GET", "/sim/requests", &answer), 200);
    json_t *log = json_loads(buf_cstr(&answer), 0, NULL);
    buf_free(&answer);
    ck_assert_ptr_nonnull(log);
    ck_assert_int_eq(json_array_size(json_object_get(log, "requests")), 0);
    json_decref(log);
    gwt_env_stop(&t.e);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("poller");
    TCase *tls = tcase_create("tls");
    tcase_set_timeout(tls, 60 * gwt_slowdown());
    tcase_add_test(tls, payment_seen_over_tls_with_ca_file);
    tcase_add_test(tls, untrusted_certificate_sends_nothing);
    suite_add_tcase(s, tls);
    return tu_run_suite(s);
}
