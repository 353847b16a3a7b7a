/* check_ops.c — running the gateway as an operator does: honest health
 * (/healthz and systemd's STATUS= line agree: ok, degraded with reasons, or
 * failed), the log lines an operator reads, Prometheus metrics, reload on
 * SIGHUP and online backups. The real daemon against the real simulator,
 * with a real notification socket standing in for systemd. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "gwtest.h"

/* --- a stand-in for systemd's notification socket --- */

typedef struct {
    int fd;
    char path[600];
    char last_status[512]; /* the latest STATUS= seen */
} notify_sock;

static void notify_open(notify_sock *n, const char *dir)
{
    memset(n, 0, sizeof *n);
    snprintf(n->path, sizeof n->path, "%s/notify.sock", dir);
    n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(n->fd, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    ck_assert_uint_lt(strlen(n->path), sizeof sa.sun_path);
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", n->path);
    ck_assert_int_eq(bind(n->fd, (struct sockaddr *)&sa, sizeof sa), 0);
}

/* Reads every datagram waiting; remembers the latest STATUS=. */
static void notify_drain(notify_sock *n)
{
    char msg[4096];
    for (;;) {
        ssize_t got = recv(n->fd, msg, sizeof msg - 1, MSG_DONTWAIT);
        if (got < 0)
            return;
        msg[got] = '\0';
        for (char *line = strtok(msg, "\n"); line != NULL; line = strtok(NULL, "\n"))
            if (strncmp(line, "STATUS=", 7) == 0)
                snprintf(n->last_status, sizeof n->last_status, "%s", line + 7);
    }
}

/* Waits (bounded) until the latest STATUS= starts with prefix. */
static bool notify_wait_status(notify_sock *n, const char *prefix, int timeout_ms)
{
    long long end = tu_now_ms() + (long long)timeout_ms * gwt_slowdown();
    do {
        notify_drain(n);
        if (strncmp(n->last_status, prefix, strlen(prefix)) == 0)
            return true;
        tu_sleep_ms(50);
    } while (tu_now_ms() < end);
    return false;
}

static void notify_close(notify_sock *n)
{
    close(n->fd);
    unlink(n->path);
}

/* Starts the env's gateway with NOTIFY_SOCKET pointing at n. */
static void start_gw_notified(gw_env *e, notify_sock *n)
{
    notify_open(n, e->dir);
    setenv("NOTIFY_SOCKET", n->path, 1);
    gwt_start_gw(e);
    unsetenv("NOTIFY_SOCKET");
}

/* Waits (bounded) until /healthz says want; returns its body (caller decrefs). */
static json_t *wait_health(const gw_env *e, const char *want, int timeout_ms, long *st)
{
    long long end = tu_now_ms() + (long long)timeout_ms * gwt_slowdown();
    for (;;) {
        json_t *j = gwt_gw_call(e, "GET", "/healthz", NULL, NULL, st);
        if (j != NULL && strcmp(gwt_str(j, "status"), want) == 0)
            return j;
        if (tu_now_ms() >= end)
            return j;
        json_decref(j);
        tu_sleep_ms(100);
    }
}

static bool has_reason(const json_t *health, const char *code)
{
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(health, "reasons"), i, r)
    {
        if (strcmp(gwt_str(r, "code"), code) == 0)
            return true;
    }
    return false;
}

/* --- health --- */

/* SEQR down while an invoice is pending: /healthz answers 200 "degraded"
 * with the reason, and the STATUS= line says the same; back to ok (both)
 * once SEQR answers again. */
START_TEST(health_degraded_while_seqr_unreachable)
{
    gw_env e;
    notify_sock n;
    long st;
    gwt_env_init(&e, "20");
    gwt_write_config(&e, NULL, NULL, e.sim_port);
    start_gw_notified(&e, &n);

    char ref[64];
    gwt_create_invoice(&e, ref);
    json_t *j = wait_health(&e, "ok", 10000, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_str_eq(gwt_str(j, "status"), "ok");
    ck_assert_int_eq(json_array_size(json_object_get(j, "reasons")), 0);
    json_decref(j);
    ck_assert_msg(notify_wait_status(&n, "ok; listening on 127.0.0.1:", 10000), "STATUS=%s",
                  n.last_status);

    json_decref(gwt_sim_call(&e, "POST", "/sim/faults", "{\"downForSeconds\":600}", &st));
    ck_assert_int_eq(st, 200);
    j = wait_health(&e, "degraded", 15000, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_str_eq(gwt_str(j, "status"), "degraded");
    ck_assert(json_is_false(json_object_get(j, "seqrReachable")));
    ck_assert(has_reason(j, "seqr_unreachable"));
    json_decref(j);
    ck_assert_msg(notify_wait_status(&n, "degraded: SEQR unreachable", 10000), "STATUS=%s",
                  n.last_status);

    json_decref(gwt_sim_call(&e, "POST", "/sim/faults", "{\"downForSeconds\":0}", &st));
    j = wait_health(&e, "ok", 15000, &st);
    ck_assert_str_eq(gwt_str(j, "status"), "ok");
    json_decref(j);
    ck_assert_msg(notify_wait_status(&n, "ok;", 10000), "STATUS=%s", n.last_status);

    ck_assert_int_eq(tu_stop(&e.gw, SIGTERM, 10000 * gwt_slowdown()), 0);
    char log[700];
    snprintf(log, sizeof log, "%s/gateway.log", e.dir);
    char *out = tu_read_file(log, NULL);
    ck_assert_ptr_nonnull(strstr(out, "health: degraded: SEQR unreachable"));
    ck_assert_ptr_nonnull(strstr(out, "health: ok again"));
    free(out);
    notify_close(&n);
    gwt_env_stop(&e);
}
END_TEST

/* --- logs --- */

/* Sets [log] level in e's config (written by gwt_write_config at debug). */
static void set_log_level(gw_env *e, const char *level)
{
    char *text = tu_read_file(e->conf, NULL);
    ck_assert_ptr_nonnull(text);
    char *at = strstr(text, "level = debug");
    ck_assert_ptr_nonnull(at);
    char out[8192];
    snprintf(out, sizeof out, "%.*slevel = %s%s", (int)(at - text), text, level,
             at + strlen("level = debug"));
    ck_assert(tu_write_file(e->conf, out));
    free(text);
}

static char *gw_log(const gw_env *e)
{
    char log[700];
    snprintf(log, sizeof log, "%s/gateway.log", e->dir);
    char *out = tu_read_file(log, NULL);
    ck_assert_ptr_nonnull(out);
    return out;
}

/* At level info: a failed request's line names the error code and field;
 * amounts are decimals with their currency; routine reads are not logged;
 * every line is one event. */
START_TEST(log_lines_an_operator_can_use)
{
    gw_env e;
    long st;
    gwt_env_init(&e, "20");
    gwt_write_config(&e, NULL, NULL, e.sim_port);
    set_log_level(&e, "info");
    gwt_start_gw(&e);

    char ref[64], path[128];
    gwt_create_invoice(&e, ref);
    snprintf(path, sizeof path, "/invoices/%s", ref);
    for (int i = 0; i < 5; i++)
        json_decref(gwt_gw_call(&e, "GET", path, NULL, NULL, &st));
    json_t *j =
        gwt_gw_call(&e, "POST", "/invoices",
                    "{\"currency\":\"SEK\",\"totalAmount\":\"-1.00\",\"rows\":[]}", NULL, &st);
    ck_assert_int_ge(st, 400);
    char want[160];
    snprintf(want, sizeof want, "POST /invoices -> %ld %s", st, gwt_error_code(j));
    json_decref(j);
    ck_assert_int_eq(tu_stop(&e.gw, SIGTERM, 10000 * gwt_slowdown()), 0);

    char *out = gw_log(&e);
    ck_assert_msg(strstr(out, want) != NULL, "no \"%s\" in:\n%s", want, out);
    ck_assert_msg(strstr(out, " field=") != NULL, "%s", out);
    snprintf(want, sizeof want, "invoice %s created: 549.50 SEK", ref);
    ck_assert_msg(strstr(out, want) != NULL, "no \"%s\" in:\n%s", want, out);
    ck_assert_ptr_null(strstr(out, "minor units"));
    snprintf(want, sizeof want, "GET /invoices/%s ->", ref);
    ck_assert_msg(strstr(out, want) == NULL, "a routine read logged at info:\n%s", out);
    ck_assert_ptr_nonnull(strstr(out, "POST /invoices -> 201"));
    free(out);
    gwt_env_stop(&e);
}
END_TEST

/* --- reload --- */

/* Replaces the first occurrence of from in e's config by to. */
static void conf_replace(gw_env *e, const char *from, const char *to)
{
    char *text = tu_read_file(e->conf, NULL);
    ck_assert_ptr_nonnull(text);
    char *at = strstr(text, from);
    ck_assert_msg(at != NULL, "no \"%s\" in the config", from);
    char out[8192];
    snprintf(out, sizeof out, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    ck_assert(tu_write_file(e->conf, out));
    free(text);
}

/* GET /invoices with key; the HTTP status. */
static long status_with_key(const gw_env *e, const char *key)
{
    char url[128], auth[160];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/invoices?limit=1", e->gw_port);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
    const char *headers[] = {auth, NULL};
    tu_response r;
    long st = tu_http("GET", url, headers, NULL, 0, &r);
    tu_response_free(&r);
    return st;
}

/* Sends SIGHUP and waits (bounded) for the count-th occurrence of marker in
 * the log. */
static void reload_and_wait(gw_env *e, const char *marker, int count)
{
    ck_assert_int_eq(kill(e->gw.pid, SIGHUP), 0);
    long long end = tu_now_ms() + 10000LL * gwt_slowdown();
    for (;;) {
        char *out = gw_log(e);
        int seen = 0;
        for (const char *p = strstr(out, marker); p != NULL; p = strstr(p + 1, marker))
            seen++;
        free(out);
        if (seen >= count)
            return;
        ck_assert_msg(tu_now_ms() < end, "no %d x \"%s\" in the log", count, marker);
        tu_sleep_ms(50);
    }
}

/* SIGHUP re-reads the config: a new API key with the old one accepted during
 * the overlap (and refused after a rotation without one), the log level,
 * invoice defaults; a key needing a restart is named; a broken config is
 * refused whole; polling goes on (a payment made meanwhile is seen). */
START_TEST(reload_on_sighup)
{
    gw_env e;
    gwt_env_start(&e, "20", NULL, NULL);
    char ref[64];
    gwt_create_invoice(&e, ref);

    conf_replace(&e, "api_key = " API_KEY,
                 "api_key = second-key-0123456789\nrotation_overlap_s = 600");
    conf_replace(&e, "level = debug", "level = info");
    conf_replace(&e, "invoice_ttl_s = 900", "invoice_ttl_s = 600");
    conf_replace(&e, "timeout_ms = 3000", "timeout_ms = 4000");
    reload_and_wait(&e, "reload: applied", 1);
    ck_assert_int_eq(status_with_key(&e, "second-key-0123456789"), 200);
    ck_assert_int_eq(status_with_key(&e, API_KEY), 200); /* within the overlap */
    ck_assert_int_eq(status_with_key(&e, "not-a-key-at-all"), 401);
    char *out = gw_log(&e);
    ck_assert_ptr_nonnull(strstr(out, "reload: applied [http] api_key, [http] rotation_overlap_s, "
                                      "[poller] invoice_ttl_s, [log] level"));
    ck_assert_ptr_nonnull(strstr(out, "needs a restart to take effect (systemctl restart "
                                      "seqr-gateway): [seqr] timeout_ms"));
    ck_assert_ptr_null(strstr(out, "second-key-0123456789")); /* the key never logged */
    free(out);

    /* Polling went on: the payment is seen. */
    gwt_sim_pay(&e, ref);
    char path[128];
    snprintf(path, sizeof path, "/invoices/%s", ref);
    char url[200], auth[] = "Authorization: Bearer second-key-0123456789";
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", e.gw_port, path);
    long long end = tu_now_ms() + 10000LL * gwt_slowdown();
    bool paid = false;
    while (!paid && tu_now_ms() < end) {
        const char *headers[] = {auth, NULL};
        tu_response r;
        tu_http("GET", url, headers, NULL, 0, &r);
        paid = strstr(buf_cstr(&r.body), "\"PAID\"") != NULL;
        tu_response_free(&r);
        if (!paid)
            tu_sleep_ms(100);
    }
    ck_assert_msg(paid, "the invoice paid after the reload was not seen");

    /* A broken config is refused whole: the second key stays. */
    conf_replace(&e, "api_key = second-key-0123456789",
                 "api_key = third-key-0123456789\nbogus = 1");
    reload_and_wait(&e, "reload refused", 1);
    ck_assert_int_eq(status_with_key(&e, "second-key-0123456789"), 200);
    ck_assert_int_eq(status_with_key(&e, "third-key-0123456789"), 401);

    /* Rotation without overlap: only the newest key works. */
    conf_replace(&e, "bogus = 1\n", "");
    conf_replace(&e, "rotation_overlap_s = 600", "rotation_overlap_s = 0");
    reload_and_wait(&e, "reload: applied", 2);
    ck_assert_int_eq(status_with_key(&e, "third-key-0123456789"), 200);
    ck_assert_int_eq(status_with_key(&e, "second-key-0123456789"), 401);
    ck_assert_int_eq(status_with_key(&e, API_KEY), 401);

    /* An overlap ends: the previous key is refused once it has passed. */
    conf_replace(&e, "api_key = third-key-0123456789", "api_key = fourth-key-0123456789");
    conf_replace(&e, "rotation_overlap_s = 0", "rotation_overlap_s = 1");
    reload_and_wait(&e, "reload: applied", 3);
    ck_assert_int_eq(status_with_key(&e, "fourth-key-0123456789"), 200);
    long long until = tu_now_ms() + 10000LL * gwt_slowdown();
    while (status_with_key(&e, "third-key-0123456789") != 401 && tu_now_ms() < until)
        tu_sleep_ms(100);
    ck_assert_int_eq(status_with_key(&e, "third-key-0123456789"), 401);
    ck_assert_int_eq(status_with_key(&e, "fourth-key-0123456789"), 200);

    ck_assert_int_eq(tu_stop(&e.gw, SIGTERM, 10000 * gwt_slowdown()), 0);
    gwt_env_stop(&e);
}
END_TEST

/* --- backup --- */

/* Opens path read-only and checks it is a whole, self-contained database
 * holding at least min_invoices invoices. */
static void check_backup_file(const char *path, int min_invoices)
{
    char side[700];
    snprintf(side, sizeof side, "%s-wal", path);
    ck_assert_msg(access(side, F_OK) != 0, "%s exists: the copy is not self-contained", side);
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *q = NULL;
    ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &q, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
    ck_assert_str_eq((const char *)sqlite3_column_text(q, 0), "ok");
    sqlite3_finalize(q);
    ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
    ck_assert_str_eq((const char *)sqlite3_column_text(q, 0), "delete");
    sqlite3_finalize(q);
    ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM invoices", -1, &q, NULL),
                     SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
    ck_assert_int_ge(sqlite3_column_int(q, 0), min_invoices);
    sqlite3_finalize(q);
    sqlite3_close(db);
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 077, 0); /* for the daemon's user only */
}

/* POST /admin/backup and seqr-gateway --backup take a consistent copy
 * through the daemon's own connection while it runs and polls on. */
START_TEST(online_backup)
{
    gw_env e;
    long st;
    gwt_env_start(&e, "20", NULL, NULL);
    char refs[3][64];
    for (int i = 0; i < 3; i++)
        gwt_create_invoice(&e, refs[i]);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/admin/backup", e.gw_port);
    json_t *j = tu_post_json(url, "{}", &st);
    ck_assert_int_eq(st, 401);
    json_decref(j);

    j = gwt_gw_call(&e, "POST", "/admin/backup", "{}", NULL, &st);
    ck_assert_int_eq(st, 201);
    const char *file = gwt_str(j, "file");
    char want_dir[700];
    snprintf(want_dir, sizeof want_dir, "%s/backups/gateway-", e.dir);
    ck_assert_msg(strncmp(file, want_dir, strlen(want_dir)) == 0, "%s", file);
    ck_assert_int_gt(json_integer_value(json_object_get(j, "bytes")), 0);
    check_backup_file(file, 3);
    json_decref(j);

    /* The command line asks the running daemon. */
    char log[700];
    snprintf(log, sizeof log, "%s/backup-cli.log", e.dir);
    char *argv[] = {(char *)tu_env("SEQR_GATEWAY_BIN", "src/seqr-gateway"), "--backup", e.conf,
                    NULL};
    tu_proc p;
    ck_assert(tu_spawn(&p, argv, log));
    ck_assert_int_eq(tu_stop(&p, 0, 30000 * gwt_slowdown()), 0);
    char *out = tu_read_file(log, NULL);
    ck_assert_ptr_nonnull(out);
    char *nl = strchr(out, '\n');
    ck_assert_ptr_nonnull(nl);
    *nl = '\0';
    ck_assert_msg(strncmp(out, want_dir, strlen(want_dir)) == 0, "%s", out);
    check_backup_file(out, 3);
    free(out);

    /* The daemon went on polling: a payment now is seen. */
    gwt_sim_pay(&e, refs[0]);
    json_decref(gwt_wait_status(&e, refs[0], "PAID", 10000));
    ck_assert_int_eq(tu_stop(&e.gw, SIGTERM, 10000 * gwt_slowdown()), 0);
    gwt_env_stop(&e);
}
END_TEST

/* --- metrics --- */

/* GET /metrics with the API key; the raw body (caller frees) or NULL. */
static char *get_metrics(const gw_env *e, const char *key, long *st)
{
    char url[128], auth[160];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", e->gw_port);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
    const char *headers[] = {auth, NULL};
    tu_response r;
    *st = tu_http("GET", url, key ? headers : NULL, NULL, 0, &r);
    char *body = strdup(buf_cstr(&r.body));
    tu_response_free(&r);
    return body;
}

/* Waits (bounded) until /metrics holds every line prefix in want[]. */
static char *wait_metrics(const gw_env *e, const char *const *want, int timeout_ms)
{
    long long end = tu_now_ms() + (long long)timeout_ms * gwt_slowdown();
    for (;;) {
        long st;
        char *m = get_metrics(e, API_KEY, &st);
        ck_assert_int_eq(st, 200);
        ck_assert_ptr_nonnull(m);
        bool all = true;
        for (int i = 0; want[i] != NULL && all; i++)
            all = strstr(m, want[i]) != NULL;
        if (all || tu_now_ms() >= end)
            return m;
        free(m);
        tu_sleep_ms(100);
    }
}

/* The exposition is behind the API key, passes promtool's checks, and holds
 * the families an on-call engineer alerts on, recorded from real traffic. */
START_TEST(metrics_for_prometheus)
{
    gw_env e;
    long st;
    gwt_env_start(&e, "20", NULL, NULL);
    char *m = get_metrics(&e, NULL, &st);
    ck_assert_int_eq(st, 401);
    free(m);

    char ref[64];
    gwt_create_invoice(&e, ref);
    json_decref(gwt_gw_call(&e, "GET", "/invoices/nope", NULL, NULL, &st));
    static const char *const want[] = {
        "seqr_gateway_build_info{version=\"0.1.0\"} 1",
        "seqr_gateway_pending_invoices 1",
        "seqr_gateway_seqr_reachable 1",
        "seqr_gateway_unknown_outcomes 0",
        "seqr_gateway_health 0",
        "seqr_gateway_seqr_call_duration_seconds_count{operation=\"sendInvoice\",result=\"0\"} 1",
        "seqr_gateway_seqr_call_duration_seconds_count{operation=\"getPaymentStatus\",result="
        "\"0\"}",
        "seqr_gateway_poll_gap_seconds_count ",
        "seqr_gateway_http_request_duration_seconds_count{route=\"/invoices\",method=\"POST\","
        "status=\"201\"} 1",
        "seqr_gateway_http_request_duration_seconds_count{route=\"/invoices/{}\",method=\"GET\","
        "status=\"404\"} 1",
        "seqr_gateway_store_commit_duration_seconds_count ",
        "seqr_gateway_store_fdatasync_duration_seconds_count ",
        "seqr_gateway_poll_gap_seconds_bucket{le=\"+Inf\"}",
        NULL};
    m = wait_metrics(&e, want, 15000);
    for (int i = 0; want[i] != NULL; i++)
        ck_assert_msg(strstr(m, want[i]) != NULL, "no \"%s\" in:\n%s", want[i], m);

    /* promtool (Debian's prometheus package) judges the format. */
    char path[700], cmd[1600];
    snprintf(path, sizeof path, "%s/metrics.txt", e.dir);
    ck_assert(tu_write_file(path, m));
    snprintf(cmd, sizeof cmd, "promtool check metrics < '%s' > '%s.out' 2>&1", path, path);
    int rc = system(cmd);
    snprintf(cmd, sizeof cmd, "%s.out", path);
    char *verdict = tu_read_file(cmd, NULL);
    ck_assert_msg(rc == 0,
                  "promtool check metrics failed (is the prometheus package "
                  "installed? dev/setup installs it): %s",
                  verdict ? verdict : "");
    free(verdict);

    /* The sample alert rules in docs/ are valid rules. */
    snprintf(cmd, sizeof cmd,
             "promtool check rules '%s/docs/prometheus-alerts.yml' >/dev/null 2>&1",
             tu_env("SEQR_SRCDIR", "."));
    ck_assert_msg(system(cmd) == 0, "promtool check rules docs/prometheus-alerts.yml failed");
    free(m);
    gwt_env_stop(&e);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops");
    TCase *tc = tcase_create("ops");
    tcase_set_timeout(tc, 120 * gwt_slowdown());
    tcase_add_test(tc, health_degraded_while_seqr_unreachable);
    tcase_add_test(tc, log_lines_an_operator_can_use);
    tcase_add_test(tc, metrics_for_prometheus);
    tcase_add_test(tc, reload_on_sighup);
    tcase_add_test(tc, online_backup);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
