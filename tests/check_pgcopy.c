/* check_pgcopy.c — seqr-gateway --copy-store-to, with the real binaries, a
 * real SQLite file and the real PostgreSQL database of SEQR_TEST_PG_URL
 * (tests/pg_test.sh; without it: skipped, 77). A gateway on SQLite makes
 * invoices (pending, paid and partly refunded, canceled, one for a
 * registered terminal); the copy is refused while it runs; it stops; the
 * copy succeeds and prints its counts, and a second copy is refused; a
 * gateway on PostgreSQL with the same key file answers every invoice and
 * refund as the first did, and uses the copied terminal's sealed password. */
#include <check.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "gwtest.h"
#include "testutil.h"

#define PGC_N 5

/* Runs the copy into the test's database; returns its exit code and its
 * output (stdout and stderr, malloc'd) in *out. */
static int pgc_copy(const gw_env *e, const char *url, char **out)
{
    char file[700], cmd[3000];
    snprintf(file, sizeof file, "%s/copy.out", e->dir);
    snprintf(cmd, sizeof cmd, "'%s' --copy-store-to '%s' '%s' >'%s' 2>&1",
             tu_env("SEQR_GATEWAY_BIN", "src/seqr-gateway"), url, e->conf, file);
    int rc = system(cmd);
    *out = tu_read_file(file, NULL);
    ck_assert_ptr_nonnull(*out);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static json_t *pgc_get(const gw_env *e, const char *path)
{
    long st;
    json_t *j = gwt_gw_call(e, "GET", path, NULL, NULL, &st);
    ck_assert_msg(st == 200, "GET %s: %ld", path, st);
    return j;
}

START_TEST(sqlite_store_copied_to_postgresql)
{
    char url[1024];
    snprintf(url, sizeof url, "%s", getenv("SEQR_TEST_PG_URL"));
    gw_env e;
    gwt_env_init(&e, "60"); /* empties the PostgreSQL database */
    unsetenv("SEQR_TEST_PG_URL");
    gwt_write_config(&e, NULL, NULL, e.sim_port); /* SQLite */
    gwt_start_gw(&e);

    char refs[PGC_N][64];
    gwt_create_invoice(&e, refs[0]);
    gwt_create_invoice(&e, refs[1]);
    gwt_paid_invoice(&e, refs[2]);
    long st;
    char path[400], body[400];
    snprintf(path, sizeof path, "/invoices/%s/refunds", refs[2]);
    json_decref(
        gwt_gw_call(&e, "POST", path, "{\"amount\":\"100.00\",\"title\":\"one item\"}", NULL, &st));
    ck_assert_int_eq(st, 201);
    gwt_create_invoice(&e, refs[3]);
    snprintf(path, sizeof path, "/invoices/%s/cancel", refs[3]);
    json_decref(gwt_gw_call(&e, "POST", path, "{}", NULL, &st));
    ck_assert_int_eq(st, 200);
    json_t *j =
        gwt_gw_call(&e, "POST", "/terminals",
                    "{\"externalTerminalId\":\"Store 1/Till 4\",\"name\":\"Till 4\"}", NULL, &st);
    ck_assert_int_eq(st, 201);
    char term[64];
    snprintf(term, sizeof term, "%s", gwt_str(j, "terminalId"));
    json_decref(j);
    snprintf(body, sizeof body,
             "{\"currency\":\"SEK\",\"terminalId\":\"%s\",\"rows\":[{\"quantity\":\"1\","
             "\"totalAmount\":\"75.00\"}]}",
             term);
    j = gwt_gw_call(&e, "POST", "/invoices", body, NULL, &st);
    ck_assert_int_eq(st, 201);
    snprintf(refs[4], sizeof refs[4], "%s", gwt_str(j, "invoiceReference"));
    json_decref(j);
    json_t *before[PGC_N], *refunds_before = NULL;
    for (int i = 0; i < PGC_N; i++) {
        snprintf(path, sizeof path, "/invoices/%s", refs[i]);
        before[i] = pgc_get(&e, path);
    }
    snprintf(path, sizeof path, "/invoices/%s/refunds", refs[2]);
    refunds_before = pgc_get(&e, path);

    /* Refused while the gateway holds the SQLite file. */
    char *out = NULL;
    ck_assert_int_eq(pgc_copy(&e, url, &out), 1);
    ck_assert_msg(strstr(out, "in use by another seqr-gateway") != NULL, "%s", out);
    free(out);
    ck_assert_int_eq(tu_stop(&e.gw, SIGTERM, 10000), 0);

    ck_assert_int_eq(pgc_copy(&e, url, &out), 0);
    /* Until the PostgreSQL schema has payment page tokens, the copy says it
     * leaves them behind, and only paymentPageUrl may differ. */
    bool no_pay_tokens = strstr(out, "not copied: column invoices.pay_token") != NULL;
    ck_assert_msg(strstr(out, "invoices           5\n") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "refunds            1\n") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "terminals          1\n") != NULL, "%s", out);
    fprintf(stderr, "%s", out);
    free(out);
    /* Only into an empty database. */
    ck_assert_int_eq(pgc_copy(&e, url, &out), 1);
    ck_assert_msg(strstr(out, "already has invoices") != NULL, "%s", out);
    free(out);

    /* A gateway on PostgreSQL with the SQLite store's key file. */
    char key[700];
    snprintf(key, sizeof key, "%s.key", e.db);
    setenv("SEQR_TEST_PG_URL", url, 1);
    setenv("SEQR_TEST_PG_KEY", key, 1);
    gwt_write_config(&e, NULL, NULL, e.sim_port);
    unsetenv("SEQR_TEST_PG_KEY");
    gwt_start_gw(&e);
    for (int i = 0; i < PGC_N; i++) {
        snprintf(path, sizeof path, "/invoices/%s", refs[i]);
        j = pgc_get(&e, path);
        if (no_pay_tokens) {
            json_object_del(before[i], "paymentPageUrl");
            json_object_del(j, "paymentPageUrl");
        }
        char *a = json_dumps(before[i], JSON_SORT_KEYS), *b = json_dumps(j, JSON_SORT_KEYS);
        ck_assert_msg(json_equal(before[i], j), "invoice %d:\n%s\n%s", i, a, b);
        free(a);
        free(b);
        json_decref(j);
        json_decref(before[i]);
    }
    snprintf(path, sizeof path, "/invoices/%s/refunds", refs[2]);
    j = pgc_get(&e, path);
    ck_assert(json_equal(refunds_before, j));
    json_decref(j);
    json_decref(refunds_before);

    /* Still pending: polled from PostgreSQL, and paid there. */
    gwt_sim_pay(&e, refs[0]);
    json_decref(gwt_wait_status(&e, refs[0], "PAID", 30000));
    gwt_sim_pay(&e, refs[4]); /* the terminal's: polled with its unsealed password */
    json_decref(gwt_wait_status(&e, refs[4], "PAID", 30000));
    /* New rows get ids past the copied ones (else: a duplicate key). */
    char fresh[64];
    gwt_create_invoice(&e, fresh);
    snprintf(path, sizeof path, "/invoices/%s/refunds", refs[2]);
    json_decref(gwt_gw_call(&e, "POST", path, "{\"amount\":\"1.00\"}", NULL, &st));
    ck_assert_int_eq(st, 201);
    gwt_env_stop(&e);
}
END_TEST

int main(void)
{
    const char *pg = getenv("SEQR_TEST_PG_URL");
    if (pg == NULL || pg[0] == '\0') {
        fprintf(stderr, "SKIP: needs a PostgreSQL server (tests/pg_test.sh runs this test)\n");
        return 77;
    }
    Suite *s = suite_create("pgcopy");
    TCase *tc = tcase_create("postgresql");
    tcase_set_timeout(tc, 120 * gwt_slowdown());
    tcase_add_test(tc, sqlite_store_copied_to_postgresql);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
