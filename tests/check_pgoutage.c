/* check_pgoutage.c — a real gateway on a real PostgreSQL server that goes
 * away under it (tests/pg_test.sh gives SEQR_TEST_PG_URL and PGS_CTL, the
 * server's pg_ctl; without them: skipped, 77), and the real simulator.
 *
 * The server restarted: /healthz says failed (store_failing) while it is
 * down and ok once it is back, an invoice paid during the outage is recorded
 * PAID afterwards, POST /invoices works again, the outage is logged once and
 * the URL's password never. Every connection of a gateway killed
 * (pg_terminate_backend) while it cannot log in again: another gateway takes
 * its invoices, and once back it stops polling them. The server ends every
 * session of a gateway (pg_terminate_backend) while it can log in again:
 * the next calls work at once on new connections, with their statements
 * prepared again (the server forgot the old sessions' ones), also when the
 * server's last words arrived and the end of the stream not yet (a proxy,
 * tests/pgproxy.c, holds every connection at that moment). */
#include <check.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gwtest.h"
#include "pgproxy.h"
#include "testutil.h"

/* In the URL the gateways use (trust authentication ignores it): must never
 * reach a log. */
#define PGO_PASSWORD "pgo-url-password-never-logged"

static char pgo_url[1024]; /* SEQR_TEST_PG_URL as given (the test's own connections) */

static void pgo_sql(const char *sql)
{
    PGconn *c = PQconnectdb(pgo_url);
    ck_assert_msg(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
    PGresult *r = PQexec(c, sql);
    ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK,
                  "%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

/* The first column of the first row of a query, as an integer. */
static long long pgo_int(const char *sql)
{
    PGconn *c = PQconnectdb(pgo_url);
    ck_assert_msg(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
    PGresult *r = PQexec(c, sql);
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1, "%s: %s", sql,
                  PQerrorMessage(c));
    long long v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    PQfinish(c);
    return v;
}

static void pgo_ctl(const char *args)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "%s %s", getenv("PGS_CTL"), args);
    ck_assert_msg(system(cmd) == 0, "%s failed", cmd);
}

/* /healthz's status once it is want (bounded); the body's reasons must
 * then hold reason (NULL: any). */
static void pgo_wait_health(const gw_env *e, const char *want, const char *reason)
{
    long long until = tu_now_ms() + 30000LL * gwt_slowdown();
    for (;;) {
        long st;
        json_t *h = gwt_gw_call(e, "GET", "/healthz", NULL, NULL, &st);
        bool done = h != NULL && strcmp(gwt_str(h, "status"), want) == 0;
        if (done && reason != NULL) {
            bool found = false;
            size_t i;
            json_t *r;
            json_array_foreach(json_object_get(h, "reasons"), i, r)
            {
                found = found || strcmp(gwt_str(r, "code"), reason) == 0;
            }
            ck_assert_msg(found, "/healthz is %s without reason %s", want, reason);
            ck_assert_int_eq(st, strcmp(want, "failed") == 0 ? 503 : 200);
        }
        json_decref(h);
        if (done)
            return;
        ck_assert_msg(tu_now_ms() < until, "/healthz never said %s", want);
        tu_sleep_ms(50);
    }
}

/* How often text occurs in the gateway's log. */
static int pgo_log_count(const gw_env *e, const char *text)
{
    char path[700];
    snprintf(path, sizeof path, "%s/gateway.log", e->dir);
    char *log = tu_read_file(path, NULL);
    ck_assert_ptr_nonnull(log);
    int n = 0;
    for (const char *p = strstr(log, text); p != NULL; p = strstr(p + 1, text))
        n++;
    free(log);
    return n;
}

START_TEST(server_restarted_under_the_gateway)
{
    gw_env e;
    gwt_env_start(&e, "60", NULL, NULL);
    char refs[3][64];
    for (int i = 0; i < 3; i++)
        gwt_create_invoice(&e, refs[i]);
    pgo_wait_health(&e, "ok", NULL);

    pgo_ctl("stop -m fast");
    /* Paid while the database is away: the poller learns it, cannot store
     * it, and must keep it. */
    gwt_sim_pay(&e, refs[0]);
    pgo_wait_health(&e, "failed", "store_failing");
    long st;
    json_t *j = gwt_gw_call(&e, "POST", "/invoices", gwt_invoice_body, NULL, &st);
    ck_assert_int_eq(st, 500);
    ck_assert_str_eq(gwt_error_code(j), "store_error");
    json_decref(j);

    pgo_ctl("start");
    pgo_wait_health(&e, "ok", NULL);
    json_decref(gwt_wait_status(&e, refs[0], "PAID", 30000));
    char fresh[64];
    gwt_create_invoice(&e, fresh);
    gwt_sim_pay(&e, refs[1]);
    json_decref(gwt_wait_status(&e, refs[1], "PAID", 30000));
    gwt_sim_pay(&e, fresh);
    json_decref(gwt_wait_status(&e, fresh, "PAID", 30000));
    j = gwt_sim_state(&e, refs[0]);
    ck_assert(json_is_false(json_object_get(j, "reversed")));
    json_decref(j);

    ck_assert_int_eq(tu_stop(&e.gw, SIGTERM, 10000), 0);
    /* Logged once per outage, not per call: one "lost" line, or one more
     * after each reconnection that succeeded (while the server shuts down,
     * a connection made just before it stops taking new ones is ended a
     * moment later, and that is an outage of its own). */
    int lost = pgo_log_count(&e, "lost the connection to PostgreSQL");
    int again = pgo_log_count(&e, "connected to PostgreSQL again");
    ck_assert_int_ge(again, 1);
    ck_assert_int_ge(lost, 1);
    ck_assert_int_le(lost, again + 1);
    ck_assert_int_eq(pgo_log_count(&e, PGO_PASSWORD), 0);
    gwt_env_stop(&e);
}
END_TEST

/* pendingInvoices of a gateway's /healthz. */
static long long pgo_pending(const gw_env *e)
{
    long st;
    json_t *h = gwt_gw_call(e, "GET", "/healthz", NULL, NULL, &st);
    ck_assert_ptr_nonnull(h);
    long long n = json_integer_value(json_object_get(h, "pendingInvoices"));
    json_decref(h);
    return n;
}

START_TEST(connections_killed_leases_taken_meanwhile)
{
    /* Gateway a logs in as its own role, so that it alone can be kept out. */
    pgo_sql("SET client_min_messages = warning; DROP ROLE IF EXISTS pgo_a;"
            " CREATE ROLE pgo_a LOGIN IN ROLE seqr");
    gw_env a, b;
    gwt_env_init(&b, "60");
    char key[700];
    snprintf(key, sizeof key, "%s/store.key", b.dir);
    setenv("SEQR_TEST_PG_KEY", key, 1);
    gwt_write_config(&b, NULL, NULL, b.sim_port);
    gwt_start_gw(&b); /* first: creates the tables, owned by seqr */
    a = b;
    memset(&a.gw, 0, sizeof a.gw);
    memset(&a.sim, 0, sizeof a.sim); /* b's to stop */
    ck_assert_int_lt(snprintf(a.dir, sizeof a.dir, "%s/a", b.dir), (int)sizeof a.dir);
    ck_assert_int_eq(mkdir(a.dir, 0700), 0);
    snprintf(a.conf, sizeof a.conf, "%s/gateway.conf", a.dir);
    a.gw_port = tu_free_port();
    char url[1100], *given = getenv("SEQR_TEST_PG_URL");
    const char *at = strchr(given, '@');
    ck_assert_ptr_nonnull(at);
    snprintf(url, sizeof url, "postgresql://pgo_a%s", at);
    setenv("SEQR_TEST_PG_URL", url, 1);
    gwt_write_config(&a, NULL, NULL, a.sim_port);
    setenv("SEQR_TEST_PG_URL", given, 1);
    gwt_start_gw(&a);

    /* Invoices sent through a are leased to a. */
    char refs[6][64];
    for (int i = 0; i < 6; i++)
        gwt_create_invoice(&a, refs[i]);
    long long until = tu_now_ms() + 30000LL * gwt_slowdown();
    while (pgo_pending(&a) < 6) {
        ck_assert_msg(tu_now_ms() < until, "a never polled its invoices");
        tu_sleep_ms(50);
    }

    /* a's sessions end and it cannot log in: b takes every invoice. */
    pgo_sql("ALTER ROLE pgo_a NOLOGIN");
    pgo_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'pgo_a'");
    until = tu_now_ms() + 30000LL * gwt_slowdown();
    /* b registered first: the lowest id. */
    while (pgo_int("SELECT count(*) FROM invoices WHERE lease_owner ="
                   " (SELECT min(id) FROM gateway_instances)") < 6) {
        ck_assert_msg(tu_now_ms() < until, "b never took a's invoices");
        tu_sleep_ms(50);
    }
    pgo_wait_health(&a, "failed", "store_failing");

    /* a is back: live again, and it stops polling what b holds now. */
    pgo_sql("ALTER ROLE pgo_a LOGIN");
    pgo_wait_health(&a, "ok", NULL);
    until = tu_now_ms() + 30000LL * gwt_slowdown();
    while (pgo_pending(&a) > 0) {
        ck_assert_msg(tu_now_ms() < until, "a still polls %lld invoices b holds", pgo_pending(&a));
        tu_sleep_ms(50);
    }
    ck_assert_int_eq(pgo_int("SELECT count(*) FROM pg_locks l JOIN pg_stat_activity s"
                             " ON s.pid = l.pid WHERE l.locktype = 'advisory'"
                             " AND l.classid = 1936028263 AND l.objsubid = 2 AND l.granted"
                             " AND s.usename = 'pgo_a'"),
                     1);
    /* Paid now: b records it; a new invoice through a works. */
    gwt_sim_pay(&a, refs[0]);
    json_decref(gwt_wait_status(&a, refs[0], "PAID", 30000));
    char fresh[64];
    gwt_create_invoice(&a, fresh);

    ck_assert_int_eq(tu_stop(&a.gw, SIGTERM, 10000), 0);
    ck_assert_int_eq(tu_stop(&b.gw, SIGTERM, 10000), 0);
    unsetenv("SEQR_TEST_PG_KEY");
    gwt_env_stop(&b);
    pgo_sql("DROP OWNED BY pgo_a; DROP ROLE pgo_a");
}
END_TEST

/* Three POST /invoices and a GET of each of refs: each must work the first
 * time (after what happened, for the message). */
static void pgo_calls_work(const gw_env *e, char refs[3][64], const char *after)
{
    for (int i = 0; i < 3; i++) {
        long st;
        json_t *j = gwt_gw_call(e, "POST", "/invoices", gwt_invoice_body, NULL, &st);
        ck_assert_msg(st == 201, "POST /invoices after %s: %ld", after, st);
        json_decref(j);
        char path[300];
        snprintf(path, sizeof path, "/invoices/%s", refs[i]);
        j = gwt_gw_call(e, "GET", path, NULL, NULL, &st);
        ck_assert_msg(st == 200, "GET %s after %s: %ld", path, after, st);
        json_decref(j);
    }
}

START_TEST(sessions_killed_statements_prepared_again)
{
    gw_env e;
    gwt_env_start(&e, "60", NULL, NULL);
    /* Statements prepared on the gateway's connections. */
    char refs[3][64];
    for (int i = 0; i < 3; i++)
        gwt_create_invoice(&e, refs[i]);
    pgo_wait_health(&e, "ok", NULL);
    long long before = pgo_int("SELECT count(*) FROM pg_stat_activity WHERE"
                               " backend_type = 'client backend' AND pid <> pg_backend_pid()");
    ck_assert_int_gt(before, 0);

    /* Every session but the test's own ends (the gateway's only ones); the
     * old ones gone (those the server started before the kill). */
    long long killed_at = pgo_int("SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint");
    pgo_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE"
            " backend_type = 'client backend' AND pid <> pg_backend_pid()");
    char old[300];
    snprintf(old, sizeof old,
             "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
             " AND backend_start <= to_timestamp(%lld / 1000.0)",
             killed_at);
    long long until = tu_now_ms() + 30000LL * gwt_slowdown();
    while (pgo_int(old) > 0) {
        ck_assert_msg(tu_now_ms() < until, "the gateway's old sessions never ended");
        tu_sleep_ms(50);
    }

    /* The next calls succeed, each the first time: the same statements,
     * prepared again on the new connections. */
    pgo_calls_work(&e, refs, "the sessions ended");
    gwt_sim_pay(&e, refs[0]);
    json_decref(gwt_wait_status(&e, refs[0], "PAID", 30000));

    ck_assert_int_eq(tu_stop(&e.gw, SIGTERM, 10000), 0);
    ck_assert_int_eq(pgo_log_count(&e, "prepared statement"), 0);
    gwt_env_stop(&e);
}
END_TEST

/* The server's last words reached every connection of the gateway and the
 * end of the stream has not yet, as between a backend's FATAL and its exit
 * (when it has already left pg_stat_activity; sessions_killed_... above
 * meets that moment only now and then). The next calls work at once: a
 * connection taken from the pool first reads and parses what waits on it,
 * and one the server is ending is connected again before it is used. */
START_TEST(last_words_before_the_end)
{
    /* The gateway connects through the proxy: host= is its directory. */
    char *given = strdup(getenv("SEQR_TEST_PG_URL"));
    ck_assert_ptr_nonnull(given);
    char *host = strstr(given, "host=");
    ck_assert_msg(host != NULL, "no host= in %s", pgo_url);
    char server_dir[600];
    snprintf(server_dir, sizeof server_dir, "%.*s", (int)strcspn(host + 5, "&"), host + 5);
    pgproxy *px = pgproxy_start(server_dir);
    ck_assert_ptr_nonnull(px);
    char url[1400];
    snprintf(url, sizeof url, "%.*shost=%s%s", (int)(host - given), given, pgproxy_dir(px),
             host + 5 + strlen(server_dir));
    setenv("SEQR_TEST_PG_URL", url, 1);
    gw_env e;
    gwt_env_start(&e, "60", NULL, NULL);
    setenv("SEQR_TEST_PG_URL", given, 1);
    char refs[3][64];
    for (int i = 0; i < 3; i++)
        gwt_create_invoice(&e, refs[i]);
    pgo_wait_health(&e, "ok", NULL);

    int before = pgproxy_accepted(px);
    int told = pgproxy_last_words(px, 3000);
    ck_assert_int_gt(told, 0);
    pgo_calls_work(&e, refs, "the server's last words");
    /* On new connections: the old ones said nothing more. */
    ck_assert_int_gt(pgproxy_accepted(px), before);
    gwt_sim_pay(&e, refs[0]);
    json_decref(gwt_wait_status(&e, refs[0], "PAID", 30000));

    ck_assert_int_eq(tu_stop(&e.gw, SIGTERM, 10000), 0);
    /* libpq's own printing of the words (its default notice processor,
     * on stderr, which the log holds) is off on every connection. */
    ck_assert_int_eq(pgo_log_count(&e, "\nFATAL:"), 0);
    gwt_env_stop(&e);
    pgproxy_stop(px);
    free(given);
}
END_TEST

int main(void)
{
    const char *pg = getenv("SEQR_TEST_PG_URL");
    const char *ctl = getenv("PGS_CTL");
    if (pg == NULL || pg[0] == '\0' || ctl == NULL || ctl[0] == '\0') {
        fprintf(stderr, "SKIP: needs a PostgreSQL server it may restart (tests/pg_test.sh)\n");
        return 77;
    }
    snprintf(pgo_url, sizeof pgo_url, "%s", pg);
    /* The gateways' URL carries a password (postgresql://user:password@...). */
    const char *at = strchr(pg, '@');
    const char *user = strstr(pg, "://");
    if (at != NULL && user != NULL && user + 3 <= at &&
        memchr(user + 3, ':', (size_t)(at - user - 3)) == NULL) {
        char url[1100];
        snprintf(url, sizeof url, "%.*s:" PGO_PASSWORD "%s", (int)(at - pg), pg, at);
        setenv("SEQR_TEST_PG_URL", url, 1);
    }
    Suite *s = suite_create("pgoutage");
    TCase *tc = tcase_create("postgresql");
    tcase_set_timeout(tc, 180 * gwt_slowdown());
    tcase_add_test(tc, server_restarted_under_the_gateway);
    tcase_add_test(tc, connections_killed_leases_taken_meanwhile);
    tcase_add_test(tc, sessions_killed_statements_prepared_again);
    tcase_add_test(tc, last_words_before_the_end);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
