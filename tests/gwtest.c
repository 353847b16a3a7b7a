/* gwtest.c — plumbing for the suites that run the real seqr-gateway against
 * the real seqr-sim; see gwtest.h. */
#include "gwtest.h"

#include <check.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* --- plumbing --- */

void gwt_write_config(gw_env *e, const char *extra_seqr, const char *extra_poller, int seqr_port)
{
    /* The parser refuses a key given twice: defaults the caller sets are left out. */
    const char *extra = extra_poller ? extra_poller : "";
    /* SEQR_TEST_HTTP_CLIENT=curl (or native) runs a suite with that poll
     * client (Makefile.am runs the poller-heavy suites with both). */
    const char *client = getenv("SEQR_TEST_HTTP_CLIENT");
    char client_line[64] = "";
    if (client != NULL && client[0] != '\0' && strstr(extra, "http_client") == NULL)
        snprintf(client_line, sizeof client_line, "http_client = %s\n", client);
    char poller[600];
    snprintf(poller, sizeof poller, "[poller]\n%s%s%sauto_receipt = true\n%s\n",
             strstr(extra, "interval_ms") ? "" : "interval_ms = 300\n",
             strstr(extra, "invoice_ttl_s") ? "" : "invoice_ttl_s = 900\n", client_line, extra);
    /* SQLite in the test's directory, or the PostgreSQL database of
     * SEQR_TEST_PG_URL (tests/pg_test.sh), emptied by gwt_env_init(). */
    char store[1400];
    const char *pg = getenv("SEQR_TEST_PG_URL");
    if (pg != NULL && pg[0] != '\0') {
        /* Gateways sharing the database share the key (SEQR_TEST_PG_KEY). */
        const char *key = getenv("SEQR_TEST_PG_KEY");
        if (key != NULL)
            snprintf(store, sizeof store, "url = %s\nkey_file = %s", pg, key);
        else
            snprintf(store, sizeof store, "url = %s\nkey_file = %s/store.key", pg, e->dir);
    } else {
        snprintf(store, sizeof store, "path = %s", e->db);
    }
    char text[6000];
    snprintf(text, sizeof text,
             "# test config\n"
             "[http]\nlisten = 127.0.0.1\nport = %d\napi_key = " API_KEY "\n"
             "max_body_bytes = 65536\nmax_connections_per_ip = 16\n\n"
             "[seqr]\nurl = http://127.0.0.1:%d/soap\nterminal_id = gw-test-terminal\n"
             "password = " TERMINAL_PASSWORD "\nclient_id = Company Name\n"
             "client_reference = seqr-gateway test\n%s\n"
             "[reseller]\nid = gw-test-reseller\nuser_id = 9900\npassword = " RESELLER_PASSWORD
             "\n\n[store]\n%s\n\n%s"
             "[log]\nlevel = debug\n",
             e->gw_port, seqr_port, extra_seqr ? extra_seqr : "timeout_ms = 3000\n", store, poller);
    ck_assert(tu_write_file(e->conf, text));
    chmod(e->conf, 0600);
}

void gwt_start_sim(gw_env *e, const char *reversal_seconds)
{
    char port[16];
    snprintf(port, sizeof port, "%d", e->sim_port);
    char log[700];
    snprintf(log, sizeof log, "%s/sim.log", e->dir);
    char *argv[] = {(char *)tu_env("SEQR_SIM_BIN", "src/seqr-sim"),
                    "--port",
                    port,
                    "--terminal",
                    "gw-test-terminal:" TERMINAL_PASSWORD,
                    "--reseller",
                    "gw-test-reseller:9900:" RESELLER_PASSWORD,
                    "--reversal-seconds",
                    (char *)reversal_seconds,
                    NULL};
    ck_assert(tu_spawn(&e->sim, argv, log));
    ck_assert_msg(tu_wait_port(e->sim_port, 10000), "seqr-sim did not start");
}

void gwt_start_gw(gw_env *e)
{
    char log[700];
    snprintf(log, sizeof log, "%s/gateway.log", e->dir);
    char *gw = (char *)tu_env("SEQR_GATEWAY_BIN", "src/seqr-gateway");
    char *plain[] = {gw, "--config", e->conf, NULL};
    /* SEQR_VALGRIND=1 (make check-valgrind): the daemon runs under memcheck and
     * exits 99 on any error or definite leak, which the SIGTERM checks see. */
    char *valgrind[] = {"/usr/bin/valgrind",
                        "-q",
                        "--leak-check=full",
                        "--errors-for-leak-kinds=definite",
                        "--error-exitcode=99",
                        gw,
                        "--config",
                        e->conf,
                        NULL};
    bool vg = getenv("SEQR_VALGRIND") != NULL;
    ck_assert(tu_spawn(&e->gw, vg ? valgrind : plain, log));
    ck_assert_msg(tu_wait_port(e->gw_port, vg ? 60000 : 10000), "seqr-gateway did not start");
}

void gwt_env_init(gw_env *e, const char *reversal_seconds)
{
    memset(e, 0, sizeof *e);
    char *d = tu_tempdir();
    ck_assert_ptr_nonnull(d);
    snprintf(e->dir, sizeof e->dir, "%s", d);
    free(d);
    snprintf(e->conf, sizeof e->conf, "%s/gateway.conf", e->dir);
    snprintf(e->db, sizeof e->db, "%s/gateway.db", e->dir);
    const char *pg = getenv("SEQR_TEST_PG_URL");
    if (pg != NULL && pg[0] != '\0') {
        PGconn *c = PQconnectdb(pg);
        ck_assert_msg(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
        PGresult *r = PQexec(c, "SET client_min_messages = warning;"
                                " DROP SCHEMA public CASCADE; CREATE SCHEMA public");
        ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "%s", PQerrorMessage(c));
        PQclear(r);
        PQfinish(c);
    }
    e->sim_port = tu_free_port();
    e->gw_port = tu_free_port();
    gwt_start_sim(e, reversal_seconds);
}

void gwt_env_start(gw_env *e, const char *reversal_seconds, const char *extra_seqr,
                   const char *extra_poller)
{
    gwt_env_init(e, reversal_seconds);
    gwt_write_config(e, extra_seqr, extra_poller, e->sim_port);
    gwt_start_gw(e);
}

void gwt_env_stop(gw_env *e)
{
    if (e->gw.pid > 0)
        tu_stop(&e->gw, SIGTERM, 10000);
    if (e->sim.pid > 0)
        tu_stop(&e->sim, SIGTERM, 5000);
}

/* A request to the gateway with the API key; returns the parsed body. */
json_t *gwt_gw_call(const gw_env *e, const char *method, const char *path, const char *body,
                    const char *idem_key, long *status)
{
    char url[600], idem[300];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", e->gw_port, path);
    const char *headers[4] = {"Authorization: Bearer " API_KEY, "Content-Type: application/json",
                              NULL, NULL};
    if (idem_key != NULL) {
        snprintf(idem, sizeof idem, "Idempotency-Key: %s", idem_key);
        headers[2] = idem;
    }
    tu_response r;
    *status = tu_http(method, url, headers, body, body ? strlen(body) : 0, &r);
    json_t *j = tu_json(&r);
    tu_response_free(&r);
    return j;
}

json_t *gwt_sim_call(const gw_env *e, const char *method, const char *path, const char *body,
                     long *status)
{
    char url[600];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", e->sim_port, path);
    static const char *const headers[] = {"Content-Type: application/json", NULL};
    tu_response r;
    *status = tu_http(method, url, headers, body, body ? strlen(body) : 0, &r);
    json_t *j = tu_json(&r);
    tu_response_free(&r);
    return j;
}

/* How many SOAP calls of op the simulator has seen. */
int gwt_sim_count(const gw_env *e, const char *op)
{
    long st;
    char path[128];
    snprintf(path, sizeof path, "/sim/requests?operation=%s", op);
    json_t *j = gwt_sim_call(e, "GET", path, NULL, &st);
    ck_assert_int_eq(st, 200);
    int n = (int)json_array_size(json_object_get(j, "requests"));
    json_decref(j);
    return n;
}

const char *gwt_str(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

const char *gwt_error_code(const json_t *o)
{
    return gwt_str(json_object_get(o, "error"), "code");
}

const char *gwt_error_field(const json_t *o)
{
    return gwt_str(json_object_get(o, "error"), "field");
}

const char *gwt_error_message(const json_t *o)
{
    return gwt_str(json_object_get(o, "error"), "message");
}

const char gwt_invoice_body[] =
    "{\"currency\":\"SEK\",\"title\":\"Order 1001 & <friends>\",\"clientInvoiceId\":\"1001\","
    "\"cashierId\":\"web\",\"footer\":\"Thanks\","
    "\"rows\":[{\"quantity\":\"2\",\"totalAmount\":\"500.00\",\"description\":\"Laptop\","
    "\"unitPrice\":\"250.00\",\"taxRate\":25,\"sku\":\"16\",\"unit\":\"pcs\"},"
    "{\"quantity\":1,\"totalAmount\":49.5,\"description\":\"Shipping\"}],"
    "\"totalAmount\":\"549.50\"}";

/* Creates an invoice; returns its reference (static buffer per call site). */
void gwt_create_invoice(const gw_env *e, char ref[64])
{
    long st;
    json_t *j = gwt_gw_call(e, "POST", "/invoices", gwt_invoice_body, NULL, &st);
    ck_assert_msg(st == 201, "POST /invoices gave %ld", st);
    snprintf(ref, 64, "%s", gwt_str(j, "invoiceReference"));
    ck_assert_int_eq(strlen(ref), 13);
    json_decref(j);
}

/* Polls GET /invoices/{ref} until status is want or timeout_ms passes. */
int gwt_slowdown(void)
{
    if (getenv("SEQR_VALGRIND") != NULL)
        return 20;
#if defined(__SANITIZE_ADDRESS__)
    return 4; /* the ASan build: the daemons are built the same way */
#else
    return 1;
#endif
}

json_t *gwt_wait_status(const gw_env *e, const char *ref, const char *want, int timeout_ms)
{
    timeout_ms *= gwt_slowdown();
    char path[128];
    snprintf(path, sizeof path, "/invoices/%s", ref);
    long long end = tu_now_ms() + timeout_ms;
    for (;;) {
        long st;
        json_t *j = gwt_gw_call(e, "GET", path, NULL, NULL, &st);
        ck_assert_int_eq(st, 200);
        if (strcmp(gwt_str(j, "status"), want) == 0)
            return j;
        if (tu_now_ms() > end) {
            ck_abort_msg("invoice %s stayed %s, wanted %s", ref, gwt_str(j, "status"), want);
            json_decref(j);
            return NULL;
        }
        json_decref(j);
        tu_sleep_ms(50);
    }
}

void gwt_sim_pay(const gw_env *e, const char *ref)
{
    long st;
    char path[128];
    snprintf(path, sizeof path, "/sim/invoices/%s/pay", ref);
    json_t *j = gwt_sim_call(e, "POST", path, NULL, &st);
    ck_assert_msg(st == 200, "sim pay gave %ld", st);
    json_decref(j);
}

json_t *gwt_sim_state(const gw_env *e, const char *ref)
{
    long st;
    char path[128];
    snprintf(path, sizeof path, "/sim/invoices/%s", ref);
    json_t *j = gwt_sim_call(e, "GET", path, NULL, &st);
    ck_assert_int_eq(st, 200);
    return j;
}

void gwt_paid_invoice(const gw_env *e, char ref[64])
{
    gwt_create_invoice(e, ref);
    gwt_sim_pay(e, ref);
    json_decref(gwt_wait_status(e, ref, "PAID", 5000));
}
