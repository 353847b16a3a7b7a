/* check_failover.c — two real gateways on one PostgreSQL database
 * (tests/pg_test.sh gives SEQR_TEST_PG_URL; without it: skipped, 77) and the
 * real simulator, set to reverse a payment whose status nobody fetched
 * within 5 s. 1,000 pending invoices, half sent by each gateway; a refund
 * raced on both at once happens once; then payments at the simulator while
 * one gateway is killed with SIGKILL: every payment is recorded PAID by the
 * survivor and none is reversed, and the survivor polls every invoice the
 * dead one held. And events that a gateway committed but had not numbered
 * (store/pg/number.c) when it was killed reach the feed through the other. */
#include <check.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gwtest.h"
#include "testutil.h"

#define FO_INVOICES 1000

typedef struct {
    const gw_env *e;
    const char *path;
    const char *body;
    long status;
    pthread_barrier_t *go;
} fo_call;

static void *fo_call_main(void *arg)
{
    fo_call *c = arg;
    pthread_barrier_wait(c->go);
    json_decref(gwt_gw_call(c->e, "POST", c->path, c->body, NULL, &c->status));
    return NULL;
}

/* statusFetches of every invoice the simulator knows, by index in refs. */
static void fo_fetches(const gw_env *e, char (*refs)[64], int n, long long *out)
{
    long st;
    json_t *all = gwt_sim_call(e, "GET", "/sim/invoices", NULL, &st);
    ck_assert_int_eq(st, 200);
    json_t *list = json_object_get(all, "invoices");
    size_t i;
    json_t *inv;
    json_array_foreach(list, i, inv)
    {
        const char *ref = json_string_value(json_object_get(inv, "invoiceReference"));
        for (int k = 0; ref != NULL && k < n; k++)
            if (strcmp(refs[k], ref) == 0)
                out[k] = json_integer_value(json_object_get(inv, "statusFetches"));
    }
    json_decref(all);
}

/* Whether the store already holds ref as PAID: a payment a recorded after
 * the fetch counts were taken and just before it died needs no poll again. */
static bool fo_final(const gw_env *e, const char *ref)
{
    char path[128];
    snprintf(path, sizeof path, "/invoices/%.64s", ref);
    long st;
    json_t *j = gwt_gw_call(e, "GET", path, NULL, NULL, &st);
    const char *status = json_string_value(json_object_get(j, "status"));
    bool paid = st == 200 && status != NULL && strcmp(status, "PAID") == 0;
    json_decref(j);
    return paid;
}

/* Two gateways on the database, a (with the simulator) and b. */
static void fo_start_two(gw_env *a, gw_env *b)
{
    gwt_env_init(a, "5");
    char key[700];
    snprintf(key, sizeof key, "%s/store.key", a->dir);
    setenv("SEQR_TEST_PG_KEY", key, 1); /* one key for both gateways */
    gwt_write_config(a, NULL, "interval_ms = 1000\n", a->sim_port);
    gwt_start_gw(a);
    *b = *a;
    memset(&b->gw, 0, sizeof b->gw);
    memset(&b->sim, 0, sizeof b->sim); /* a's to stop */
    ck_assert_int_lt(snprintf(b->dir, sizeof b->dir, "%s/b", a->dir), (int)sizeof b->dir);
    ck_assert_int_eq(mkdir(b->dir, 0700), 0);
    snprintf(b->conf, sizeof b->conf, "%s/gateway.conf", b->dir);
    b->gw_port = tu_free_port();
    gwt_write_config(b, NULL, "interval_ms = 1000\n", a->sim_port);
    gwt_start_gw(b);
}

START_TEST(two_gateways_one_killed)
{
    static char refs[FO_INVOICES][64];
    static long long before[FO_INVOICES], after[FO_INVOICES];
    gw_env a, b;
    fo_start_two(&a, &b);

    /* A refund of the whole amount sent to both gateways at once: once. */
    char paid[64];
    gwt_paid_invoice(&a, paid);
    char path[128];
    snprintf(path, sizeof path, "/invoices/%s", paid);
    long st;
    json_t *j = gwt_gw_call(&b, "GET", path, NULL, NULL, &st);
    ck_assert_int_eq(st, 200);
    char body[128];
    snprintf(body, sizeof body, "{\"amount\":\"%s\"}",
             json_string_value(json_object_get(j, "totalAmount")));
    json_decref(j);
    snprintf(path, sizeof path, "/invoices/%s/refunds", paid);
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 2);
    fo_call calls[2] = {{&a, path, body, 0, &go}, {&b, path, body, 0, &go}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, fo_call_main, &calls[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&go);
    ck_assert_msg((calls[0].status == 201) + (calls[1].status == 201) == 1, "refunds: %ld and %ld",
                  calls[0].status, calls[1].status);
    json_t *s = gwt_sim_state(&a, paid);
    ck_assert_int_eq(json_array_size(json_object_get(s, "refunds")), 1);
    json_decref(s);

    /* 1,000 pending invoices, every other one sent through each gateway
     * (and so first leased to it). */
    for (int i = 0; i < FO_INVOICES; i++)
        gwt_create_invoice(i % 2 == 0 ? &a : &b, refs[i]);
    /* Some of a's paid just before it dies, more right after. */
    for (int i = 0; i < 40; i += 2)
        gwt_sim_pay(&a, refs[i]);
    fo_fetches(&a, refs, FO_INVOICES, before);
    long long killed = tu_now_ms();
    ck_assert_int_eq(tu_stop(&a.gw, SIGKILL, 5000), 128 + SIGKILL);
    for (int i = 40; i < 200; i++)
        gwt_sim_pay(&a, refs[i]);

    /* The survivor polls every invoice a held. */
    long long taken = 0;
    for (;;) {
        fo_fetches(&a, refs, FO_INVOICES, after);
        int waiting = 0;
        for (int i = 0; i < FO_INVOICES; i += 2)
            waiting += after[i] <= before[i] && !fo_final(&b, refs[i]);
        if (waiting == 0) {
            taken = tu_now_ms() - killed;
            break;
        }
        ck_assert_msg(tu_now_ms() - killed < 60000, "%d of a's pending invoices never polled again",
                      waiting);
        tu_sleep_ms(100);
    }
    fprintf(stderr,
            "failover: every invoice of the killed gateway polled again %lld ms after "
            "the kill\n",
            taken);
    /* Every payment recorded, none reversed. */
    for (int i = 0; i < 200; i++) {
        if (i < 40 && i % 2 != 0)
            continue; /* not paid */
        json_decref(gwt_wait_status(&b, refs[i], "PAID", 30000));
    }
    for (int i = 0; i < 200; i++) {
        json_t *si = gwt_sim_state(&b, refs[i]);
        ck_assert_msg(json_is_false(json_object_get(si, "reversed")), "%s reversed", refs[i]);
        json_decref(si);
    }
    ck_assert_int_eq(tu_stop(&b.gw, SIGTERM, 10000), 0);
    gwt_env_stop(&a);
}
END_TEST

/* A statement on a connection of the test; its result (PQclear it). */
static PGresult *fo_sql(PGconn *c, const char *sql, ExecStatusType want)
{
    PGresult *r = PQexec(c, sql);
    ck_assert_msg(PQresultStatus(r) == want, "%s: %s", sql, PQerrorMessage(c));
    return r;
}

static long long fo_sql_count(PGconn *c, const char *sql)
{
    PGresult *r = fo_sql(c, sql, PGRES_TUPLES_OK);
    long long n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return n;
}

typedef struct {
    const gw_env *e;
    long status;
} fo_post;

static void *fo_post_main(void *arg)
{
    fo_post *p = arg;
    json_decref(gwt_gw_call(p->e, "POST", "/invoices", gwt_invoice_body, NULL, &p->status));
    return NULL;
}

/* Events are numbered after their commit (store/pg/number.c): a gateway
 * killed in between leaves them unnumbered, and the other's periodic run
 * numbers them. The test holds the numbering lock so that a's run cannot
 * start, kills a once its invoice.created is committed, lets go, and reads
 * the feed on b. */
START_TEST(killed_before_numbering)
{
    gw_env a, b;
    fo_start_two(&a, &b);
    PGconn *c = PQconnectdb(getenv("SEQR_TEST_PG_URL"));
    ck_assert_int_eq(PQstatus(c), CONNECTION_OK);
    long st;
    json_t *j = gwt_gw_call(&b, "GET", "/events?limit=500", NULL, NULL, &st);
    ck_assert_int_eq(st, 200);
    long long cursor = json_integer_value(json_object_get(j, "next"));
    json_decref(j);
    PQclear(fo_sql(c, "BEGIN", PGRES_COMMAND_OK));
    PQclear(fo_sql(c, "SELECT pg_advisory_xact_lock(126875896063350)", PGRES_TUPLES_OK));
    fo_post post = {&a, 0};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, fo_post_main, &post), 0);
    /* a committed the invoice and its event (c sees it: not in c's
     * transaction's snapshot rules, as each statement takes a new one). */
    long long until = tu_now_ms() + 30000 * gwt_slowdown();
    while (fo_sql_count(c, "SELECT count(*) FROM events WHERE id IS NULL"
                           " AND type = 'invoice.created'") == 0) {
        ck_assert_msg(tu_now_ms() < until, "a never committed its invoice");
        tu_sleep_ms(20);
    }
    ck_assert_int_eq(tu_stop(&a.gw, SIGKILL, 5000), 128 + SIGKILL);
    pthread_join(t, NULL);
    ck_assert_int_ne(post.status, 201); /* a died before it answered */
    PQclear(fo_sql(c, "ROLLBACK", PGRES_COMMAND_OK));
    char path[96];
    snprintf(path, sizeof path, "/events?after=%lld&limit=10", cursor);
    bool seen = false;
    until = tu_now_ms() + 30000 * gwt_slowdown();
    while (!seen) {
        j = gwt_gw_call(&b, "GET", path, NULL, NULL, &st);
        ck_assert_int_eq(st, 200);
        json_t *events = json_object_get(j, "events");
        size_t i;
        json_t *ev;
        json_array_foreach(events, i, ev)
        {
            seen = seen || strcmp(gwt_str(ev, "type"), "invoice.created") == 0;
        }
        json_decref(j);
        ck_assert_msg(seen || tu_now_ms() < until, "a's event never reached b's feed");
        if (!seen)
            tu_sleep_ms(50);
    }
    ck_assert_int_eq(fo_sql_count(c, "SELECT count(*) FROM events WHERE id IS NULL"), 0);
    PQfinish(c);
    ck_assert_int_eq(tu_stop(&b.gw, SIGTERM, 10000), 0);
    gwt_env_stop(&a);
}
END_TEST

/* A gateway of a newer build migrates the shared database while older ones
 * run (a rolling upgrade; here the test writes the newer version itself):
 * each older one notices within a lease sync, says why, and stops by itself
 * with exit status 3, which the unit does not restart. Started again, the
 * older build refuses the database with the same status and changes
 * nothing; once the database is back at the version it knows, it runs and
 * polls the invoice. */
START_TEST(newer_schema_stops_older_gateways)
{
    gw_env a, b;
    fo_start_two(&a, &b);
    char ref[64];
    gwt_create_invoice(&a, ref);
    PGconn *c = PQconnectdb(getenv("SEQR_TEST_PG_URL"));
    ck_assert_int_eq(PQstatus(c), CONNECTION_OK);
    long long known = fo_sql_count(c, "SELECT max(version) FROM schema_version");
    PQclear(fo_sql(c, "INSERT INTO schema_version(version) SELECT max(version) + 1 FROM schema_version",
                   PGRES_COMMAND_OK));
    /* Signal 0: only waits for each to exit by itself. */
    ck_assert_int_eq(tu_stop(&a.gw, 0, 30000 * gwt_slowdown()), 3);
    ck_assert_int_eq(tu_stop(&b.gw, 0, 30000 * gwt_slowdown()), 3);
    char *log = tu_read_file(a.gw.log_path, NULL);
    ck_assert_ptr_nonnull(log);
    ck_assert_msg(strstr(log, "newer than this one knows") != NULL, "a did not say why: %s", log);
    free(log);
    long long instances = fo_sql_count(c, "SELECT count(*) FROM gateway_instances");
    char *argv[] = {(char *)tu_env("SEQR_GATEWAY_BIN", "src/seqr-gateway"), "--config", a.conf,
                    NULL};
    char logp[sizeof a.gw.log_path];
    snprintf(logp, sizeof logp, "%s", a.gw.log_path);
    ck_assert(tu_spawn(&a.gw, argv, logp));
    ck_assert_int_eq(tu_stop(&a.gw, 0, 30000 * gwt_slowdown()), 3);
    log = tu_read_file(a.gw.log_path, NULL);
    ck_assert_ptr_nonnull(log);
    ck_assert_msg(strstr(log, "is newer than this seqr-gateway") != NULL, "%s", log);
    free(log);
    ck_assert_int_eq(fo_sql_count(c, "SELECT count(*) FROM gateway_instances"), instances);
    ck_assert_int_eq(fo_sql_count(c, "SELECT max(version) FROM schema_version"), known + 1);
    char undo[96];
    snprintf(undo, sizeof undo, "DELETE FROM schema_version WHERE version = %lld", known + 1);
    PQclear(fo_sql(c, undo, PGRES_COMMAND_OK));
    PQfinish(c);
    gwt_start_gw(&a);
    long st;
    long long until = tu_now_ms() + 30000 * gwt_slowdown();
    for (;;) {
        json_t *h = gwt_gw_call(&a, "GET", "/healthz", NULL, NULL, &st);
        long long pending = h ? json_integer_value(json_object_get(h, "pendingInvoices")) : 0;
        json_decref(h);
        if (pending == 1)
            break;
        ck_assert_msg(tu_now_ms() < until, "a did not take the invoice up again");
        tu_sleep_ms(50);
    }
    ck_assert_int_eq(tu_stop(&a.gw, SIGTERM, 10000), 0);
    gwt_env_stop(&a);
}
END_TEST

int main(void)
{
    const char *pg = getenv("SEQR_TEST_PG_URL");
    if (pg == NULL || pg[0] == '\0') {
        fprintf(stderr, "SKIP: needs a PostgreSQL server (tests/pg_test.sh runs this test)\n");
        return 77;
    }
    Suite *s = suite_create("failover");
    TCase *tc = tcase_create("postgresql");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, two_gateways_one_killed);
    tcase_add_test(tc, killed_before_numbering);
    tcase_add_test(tc, newer_schema_stops_older_gateways);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
