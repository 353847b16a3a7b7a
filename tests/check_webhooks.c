/* check_webhooks.c — events to the shop, end to end, with the real daemons:
 *
 *  signed: every event reaches a real receiver (tests/webhook_receiver.py,
 *  which verifies each Standard Webhooks signature with Python's own hmac),
 *  in order per invoice; the feed, its long-poll, the SSE stream and
 *  waitForVersion see the payment; the secret never reaches the log.
 *
 *  receiver down: the receiver is down for WEBHOOK_DOWN_MS (default 5000;
 *  the minute is WEBHOOK_DOWN_MS=60000), then up: every event
 *  arrives, in order per invoice, none acknowledged twice, and the failed
 *  attempts are in GET /webhooks/deliveries.
 *
 *  crash: the gateway is kill -9'd WEBHOOK_KILLS times (default 20) during
 *  payments and refunds; afterwards every change has its event (the final
 *  status of each invoice is the type of its last status event) and every
 *  event reaches the receiver. */
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gwtest.h"
#include "webhook.h"
#include "webhook_sign.h"

#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define MAX_REFS 128

typedef struct {
    tu_proc proc;
    int port;
    char out[700];
} receiver;

static void receiver_start(receiver *r, const gw_env *e, const char *mode)
{
    char port[16];
    snprintf(port, sizeof port, "%d", r->port);
    char script[700], log[700];
    snprintf(script, sizeof script, "%s/tests/webhook_receiver.py", tu_env("SEQR_SRCDIR", ".."));
    snprintf(log, sizeof log, "%s/receiver.log", e->dir);
    char *argv[] = {"/usr/bin/env", "python3", script, "--port", port,         "--secret",
                    SECRET,         "--out",   r->out, "--mode", (char *)mode, NULL};
    ck_assert(tu_spawn(&r->proc, argv, log));
    ck_assert_msg(tu_wait_port(r->port, 10000), "the webhook receiver did not start");
}

static void receiver_init(receiver *r, const gw_env *e)
{
    memset(r, 0, sizeof *r);
    r->port = tu_free_port();
    snprintf(r->out, sizeof r->out, "%s/received.jsonl", e->dir);
}

/* The receiver's lines as a JSON array (caller decrefs). */
static json_t *receiver_lines(const receiver *r)
{
    json_t *arr = json_array();
    char *text = tu_read_file(r->out, NULL);
    if (text == NULL)
        return arr;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_t *j = json_loads(line, 0, NULL);
        ck_assert_msg(j != NULL, "receiver line is not JSON: %s", line);
        json_array_append_new(arr, j);
    }
    free(text);
    return arr;
}

/* Config with [webhooks] for receiver r (started or not), then the daemon. */
static const char *poller_extra; /* lines for [poller], or NULL */

static void start_with_webhooks(gw_env *e, const receiver *r, const char *extra)
{
    gwt_write_config(e, NULL, poller_extra, e->sim_port);
    char *text = tu_read_file(e->conf, NULL);
    ck_assert_ptr_nonnull(text);
    char conf[8192];
    snprintf(conf, sizeof conf,
             "%s\n[webhooks]\nurl = http://127.0.0.1:%d/hook\nsecret = " SECRET
             "\nretry_max_interval_s = 1\ntimeout_ms = 2000\n%s",
             text, r->port, extra ? extra : "");
    free(text);
    ck_assert(tu_write_file(e->conf, conf));
    gwt_start_gw(e);
}

/* All events of the feed (GET /events, paged), as a JSON array. */
static json_t *feed_all(const gw_env *e)
{
    json_t *all = json_array();
    long long after = 0;
    for (;;) {
        char path[96];
        snprintf(path, sizeof path, "/events?after=%lld&limit=500", after);
        long st;
        json_t *j = gwt_gw_call(e, "GET", path, NULL, NULL, &st);
        ck_assert_int_eq(st, 200);
        json_t *evs = json_object_get(j, "events");
        size_t n = json_array_size(evs);
        json_array_extend(all, evs);
        after = json_integer_value(json_object_get(j, "next"));
        json_decref(j);
        if (n == 0)
            break;
    }
    return all;
}

/* Checks the receiver's lines against the feed: every line verified; every
 * event of the feed received; per invoice in id order (of first arrivals);
 * no event received twice unless allow_repeats (after a kill -9 between the
 * shop's answer and its record, at-least-once repeats it). Returns how many
 * feed events were received. */
static bool allow_repeats;

static size_t check_received(const gw_env *e, const receiver *r, bool require_all, size_t *feed_len)
{
    json_t *lines = receiver_lines(r);
    json_t *feed = feed_all(e);
    if (feed_len != NULL)
        *feed_len = json_array_size(feed);
    size_t i;
    json_t *l;
    json_t *seen = json_object();
    json_t *last_per_invoice = json_object();
    json_array_foreach(lines, i, l)
    {
        ck_assert_msg(json_is_true(json_object_get(l, "ok")), "a signature did not verify");
        json_t *ev = json_object_get(l, "event");
        const char *msg = gwt_str(l, "msgId");
        if (json_object_get(seen, msg) != NULL) {
            ck_assert_msg(allow_repeats, "event %s delivered twice", msg);
            continue;
        }
        json_object_set_new(seen, msg, json_true());
        char key[32];
        snprintf(key, sizeof key, "%lld",
                 (long long)json_integer_value(json_object_get(json_object_get(ev, "data"), "id")));
        if (json_object_get(ev, "kind") && strcmp(gwt_str(ev, "kind"), "refund") == 0)
            snprintf(key, sizeof key, "%s", gwt_str(ev, "invoiceReference"));
        json_int_t id = json_integer_value(json_object_get(ev, "id"));
        json_t *prev = json_object_get(last_per_invoice, gwt_str(ev, "invoiceReference"));
        if (json_is_string(json_object_get(ev, "invoiceReference"))) {
            ck_assert_msg(prev == NULL || json_integer_value(prev) < id,
                          "events of invoice %s out of order", gwt_str(ev, "invoiceReference"));
            json_object_set_new(last_per_invoice, gwt_str(ev, "invoiceReference"),
                                json_integer(id));
        }
    }
    size_t got = 0;
    json_array_foreach(feed, i, l)
    {
        char msg[32];
        snprintf(msg, sizeof msg, "evt_%lld",
                 (long long)json_integer_value(json_object_get(l, "id")));
        if (json_object_get(seen, msg) != NULL)
            got++;
        else if (require_all)
            ck_abort_msg("event %s (%s) never arrived", msg, gwt_str(l, "type"));
    }
    json_decref(seen);
    json_decref(last_per_invoice);
    json_decref(lines);
    json_decref(feed);
    return got;
}

/* Waits until every event of the feed has reached the receiver. */
static void wait_all_received(const gw_env *e, const receiver *r, int timeout_ms)
{
    long long until = tu_now_ms() + timeout_ms * gwt_slowdown();
    /* The feed and what arrived are compared in one pass: an event written
     * meanwhile (an automatic receipt, say) is waited for in the next. */
    for (;;) {
        size_t n = 0;
        size_t got = check_received(e, r, false, &n);
        if (n > 0 && got == n)
            break;
        ck_assert_msg(tu_now_ms() < until, "only %zu of %zu events arrived", got, n);
        tu_sleep_ms(50);
    }
}

typedef struct {
    const gw_env *e;
    char path[160];
    long status;
    char *body;
} bg_get;

static void *bg_get_run(void *arg)
{
    bg_get *g = arg;
    char url[300];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", g->e->gw_port, g->path);
    const char *headers[] = {"Authorization: Bearer " API_KEY, NULL};
    tu_response r;
    g->status = tu_http("GET", url, headers, NULL, 0, &r);
    g->body = strdup(buf_cstr(&r.body));
    tu_response_free(&r);
    return NULL;
}

START_TEST(signed_events_feed_and_stream)
{
    gw_env e;
    gwt_env_init(&e, "20");
    receiver r;
    receiver_init(&r, &e);
    receiver_start(&r, &e, "ok");
    start_with_webhooks(&e, &r, NULL);

    char paid[64], canceled[64];
    gwt_create_invoice(&e, paid);
    gwt_create_invoice(&e, canceled);

    /* A stream, a long-poll and a version wait, all open before the payment. */
    long st;
    json_t *j = gwt_gw_call(&e, "GET", "/events?limit=500", NULL, NULL, &st);
    ck_assert_int_eq(st, 200);
    long long cursor = json_integer_value(json_object_get(j, "next"));
    json_decref(j);
    bg_get sse = {&e, "", 0, NULL}, poll = {&e, "", 0, NULL}, ver = {&e, "", 0, NULL};
    snprintf(sse.path, sizeof sse.path, "/invoices/%s/events", paid);
    snprintf(poll.path, sizeof poll.path, "/events?after=%lld&wait=30", cursor);
    snprintf(ver.path, sizeof ver.path, "/invoices/%s?waitForVersion=1&timeout=30", paid);
    pthread_t t1, t2, t3;
    pthread_create(&t1, NULL, bg_get_run, &sse);
    pthread_create(&t2, NULL, bg_get_run, &poll);
    pthread_create(&t3, NULL, bg_get_run, &ver);
    /* the waits are open when the hub counts them */
    long long until = tu_now_ms() + 10000;
    for (;;) {
        j = gwt_gw_call(&e, "GET", "/healthz", NULL, NULL, &st);
        json_int_t open =
            json_integer_value(json_object_get(json_object_get(j, "webhooks"), "openStreams"));
        json_decref(j);
        if (open == 3)
            break;
        ck_assert_msg(tu_now_ms() < until, "the waits did not open (%lld)", (long long)open);
        tu_sleep_ms(20);
    }
    long long paid_at = tu_now_ms();
    gwt_sim_pay(&e, paid);
    pthread_join(t2, NULL);
    long long poll_ms = tu_now_ms() - paid_at;
    pthread_join(t3, NULL);
    long long ver_ms = tu_now_ms() - paid_at;
    pthread_join(t1, NULL);
    long long sse_ms = tu_now_ms() - paid_at;
    fprintf(stderr,
            "PAID seen by long-poll %lld ms, waitForVersion %lld ms, SSE end %lld ms "
            "after the simulated payment (poll interval 300 ms)\n",
            poll_ms, ver_ms, sse_ms);
    ck_assert_int_eq(poll.status, 200);
    ck_assert_ptr_nonnull(strstr(poll.body, "invoice.paid"));
    ck_assert_int_eq(ver.status, 200);
    ck_assert_ptr_nonnull(strstr(ver.body, "\"status\":\"PAID\""));
    ck_assert_int_eq(sse.status, 200);
    ck_assert_ptr_nonnull(strstr(sse.body, "event: invoice.created\n"));
    ck_assert_ptr_nonnull(strstr(sse.body, "event: invoice.paid\n"));
    free(sse.body);
    free(poll.body);
    free(ver.body);

    char path[128];
    snprintf(path, sizeof path, "/invoices/%s/cancel", canceled);
    json_decref(gwt_gw_call(&e, "POST", path, "{}", NULL, &st));
    ck_assert_int_eq(st, 200);
    /* The automatic receipt (the poller's, after PAID) before the refund,
     * so that the order below is the order of the changes. */
    snprintf(path, sizeof path, "/invoices/%s", paid);
    long long receipt_by = tu_now_ms() + 20000LL * gwt_slowdown();
    for (;;) {
        j = gwt_gw_call(&e, "GET", path, NULL, NULL, &st);
        bool submitted = json_is_true(json_object_get(j, "receiptSubmitted"));
        json_decref(j);
        if (submitted)
            break;
        ck_assert_msg(tu_now_ms() < receipt_by, "the automatic receipt was never submitted");
        tu_sleep_ms(20);
    }
    snprintf(path, sizeof path, "/invoices/%s/refunds", paid);
    json_decref(gwt_gw_call(&e, "POST", path, "{\"amount\":\"100.00\"}", NULL, &st));
    ck_assert_int_eq(st, 201);
    wait_all_received(&e, &r, 20000);

    /* The types, in order, for the paid invoice. */
    json_t *lines = receiver_lines(&r);
    buf types = BUF_INIT;
    size_t i;
    json_t *l;
    json_array_foreach(lines, i, l)
    {
        json_t *ev = json_object_get(l, "event");
        if (strcmp(gwt_str(ev, "invoiceReference"), paid) == 0)
            buf_printf(&types, "%s ", gwt_str(ev, "type"));
    }
    ck_assert_str_eq(buf_cstr(&types),
                     "invoice.created invoice.paid invoice.receipt_submitted refund.succeeded ");
    buf_free(&types);
    json_decref(lines);

    /* An invoice's own notificationUrl gets its invoice.paid (SEQR keeps
     * notifying the gateway); its own webhookUrl gets all of its events. */
    char body[1024], nref[64], wref[64];
    snprintf(body, sizeof body,
             "{\"currency\":\"SEK\",\"notificationUrl\":\"http://127.0.0.1:%d/shop-notify\","
             "\"rows\":[{\"quantity\":\"1\",\"totalAmount\":\"5.00\"}]}",
             r.port);
    j = gwt_gw_call(&e, "POST", "/invoices", body, NULL, &st);
    ck_assert_int_eq(st, 201);
    snprintf(nref, sizeof nref, "%s", gwt_str(j, "invoiceReference"));
    json_decref(j);
    snprintf(body, sizeof body,
             "{\"currency\":\"SEK\",\"webhookUrl\":\"http://127.0.0.1:%d/own\","
             "\"rows\":[{\"quantity\":\"1\",\"totalAmount\":\"5.00\"}]}",
             r.port);
    j = gwt_gw_call(&e, "POST", "/invoices", body, NULL, &st);
    ck_assert_int_eq(st, 201);
    ck_assert_ptr_nonnull(strstr(gwt_str(j, "webhookUrl"), "/own"));
    snprintf(wref, sizeof wref, "%s", gwt_str(j, "invoiceReference"));
    json_decref(j);
    gwt_sim_pay(&e, nref);
    gwt_sim_pay(&e, wref);
    json_decref(gwt_wait_status(&e, nref, "PAID", 10000));
    json_decref(gwt_wait_status(&e, wref, "PAID", 10000));
    wait_all_received(&e, &r, 20000);
    lines = receiver_lines(&r);
    int checked = 0;
    json_array_foreach(lines, i, l)
    {
        json_t *ev = json_object_get(l, "event");
        const char *type = gwt_str(ev, "type");
        if (strcmp(gwt_str(ev, "invoiceReference"), nref) == 0) {
            ck_assert_str_eq(gwt_str(l, "path"),
                             strcmp(type, "invoice.paid") == 0 ? "/shop-notify" : "/hook");
            checked++;
        } else if (strcmp(gwt_str(ev, "invoiceReference"), wref) == 0) {
            ck_assert_str_eq(gwt_str(l, "path"), "/own");
            checked++;
        }
    }
    ck_assert_int_ge(checked, 4);
    json_decref(lines);

    /* The stream of a final invoice replays and ends; Last-Event-ID resumes. */
    bg_get again = {&e, "", 0, NULL};
    snprintf(again.path, sizeof again.path, "/invoices/%s/events", canceled);
    bg_get_run(&again);
    ck_assert_ptr_nonnull(strstr(again.body, "event: invoice.canceled\n"));
    free(again.body);
    /* Resuming after the first event (EventSource's Last-Event-ID) skips it. */
    {
        char url[300], last[64];
        snprintf(url, sizeof url, "http://127.0.0.1:%d/invoices/%s/events", e.gw_port, canceled);
        j = gwt_gw_call(&e, "GET", "/events?limit=500", NULL, NULL, &st);
        json_int_t first = 0;
        size_t k;
        json_t *ev;
        json_array_foreach(json_object_get(j, "events"), k, ev)
        {
            if (first == 0 && strcmp(gwt_str(ev, "invoiceReference"), canceled) == 0)
                first = json_integer_value(json_object_get(ev, "id"));
        }
        json_decref(j);
        ck_assert_int_gt(first, 0);
        snprintf(last, sizeof last, "Last-Event-ID: %lld", (long long)first);
        const char *headers[] = {"Authorization: Bearer " API_KEY, last, NULL};
        tu_response tr;
        ck_assert_int_eq(tu_http("GET", url, headers, NULL, 0, &tr), 200);
        ck_assert_ptr_null(strstr(buf_cstr(&tr.body), "event: invoice.created\n"));
        ck_assert_ptr_nonnull(strstr(buf_cstr(&tr.body), "event: invoice.canceled\n"));
        tu_response_free(&tr);
    }

    /* Operator views. */
    j = gwt_gw_call(&e, "GET", "/webhooks/deliveries", NULL, NULL, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_int_gt(json_array_size(json_object_get(j, "deliveries")), 0);
    json_decref(j);
    json_decref(gwt_gw_call(&e, "POST", "/events/1/redeliver", "{}", NULL, &st));
    ck_assert_int_eq(st, 202);
    json_decref(gwt_gw_call(&e, "POST", "/events/999999/redeliver", "{}", NULL, &st));
    ck_assert_int_eq(st, 404);
    json_decref(gwt_gw_call(&e, "GET", "/events?limit=0", NULL, NULL, &st));
    ck_assert_int_eq(st, 400);

    gwt_env_stop(&e);
    tu_stop(&r.proc, SIGTERM, 5000);
    char logp[700];
    snprintf(logp, sizeof logp, "%s/gateway.log", e.dir);
    char *log = tu_read_file(logp, NULL);
    ck_assert_ptr_nonnull(log);
    ck_assert_msg(strstr(log, SECRET + 6) == NULL, "the webhook secret reached the log");
    free(log);
}
END_TEST

START_TEST(receiver_down_then_up)
{
    int down_ms = atoi(tu_env("WEBHOOK_DOWN_MS", "5000"));
    gw_env e;
    gwt_env_init(&e, "60");
    receiver r;
    receiver_init(&r, &e);
    start_with_webhooks(&e, &r, NULL); /* the receiver is not there */
    long long down_since = tu_now_ms();
    char refs[6][64];
    for (int i = 0; i < 6; i++) {
        gwt_create_invoice(&e, refs[i]);
        if (i % 2 == 0)
            gwt_sim_pay(&e, refs[i]);
    }
    for (int i = 0; i < 6; i += 2)
        json_decref(gwt_wait_status(&e, refs[i], "PAID", 10000));
    long st;
    json_t *j;
    long long until = tu_now_ms() + 20000;
    for (;;) { /* the failed attempts are on record */
        j = gwt_gw_call(&e, "GET", "/webhooks/deliveries", NULL, NULL, &st);
        json_t *first = json_array_get(json_object_get(j, "deliveries"), 0);
        bool failed = first != NULL && json_is_string(json_object_get(first, "error"));
        json_decref(j);
        if (failed)
            break;
        ck_assert_msg(tu_now_ms() < until, "no failed attempt recorded");
        tu_sleep_ms(50);
    }
    j = gwt_gw_call(&e, "GET", "/healthz", NULL, NULL, &st);
    ck_assert_int_gt(json_integer_value(json_object_get(json_object_get(j, "webhooks"), "backlog")),
                     0);
    json_decref(j);
    long long left = down_ms - (tu_now_ms() - down_since);
    if (left > 0)
        tu_sleep_ms((int)left); /* the outage itself, not a wait for a result */
    receiver_start(&r, &e, "ok");
    wait_all_received(&e, &r, 30000);
    j = gwt_gw_call(&e, "GET", "/healthz", NULL, NULL, &st);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(j, "webhooks"), "backlog")),
                     0);
    json_decref(j);
    gwt_env_stop(&e);
    tu_stop(&r.proc, SIGTERM, 5000);
}
END_TEST

/* CPU time (user + system) the process has used so far, in ms. */
static long long proc_cpu_ms(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    char *text = tu_read_file(path, NULL);
    ck_assert_ptr_nonnull(text);
    /* Fields 14 and 15 (utime, stime) follow the command's closing ')'. */
    const char *p = strrchr(text, ')');
    ck_assert_ptr_nonnull(p);
    unsigned long long utime = 0, stime = 0;
    ck_assert_int_eq(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                            &utime, &stime),
                     2);
    free(text);
    return (long long)(utime + stime) * 1000 / sysconf(_SC_CLK_TCK);
}

/* A receiver that holds every delivery slot (it hangs) costs the gateway no
 * CPU while commits go on writing events: the delivery thread waits for a
 * slot to free instead of polling at once for each commit's wake-up (it
 * spun at a full core, and POST /invoices lost a fifth of its rate). */
START_TEST(hanging_receiver_costs_no_cpu)
{
    gw_env e;
    gwt_env_init(&e, "60");
    receiver r;
    receiver_init(&r, &e);
    receiver_start(&r, &e, "hang");
    start_with_webhooks(&e, &r, "max_in_flight = 2\n");
    char ref[64];
    for (int i = 0; i < 3; i++)
        gwt_create_invoice(&e, ref);
    long long until = tu_now_ms() + 10000;
    for (;;) { /* both slots taken by the hanging receiver */
        long st;
        json_t *j = gwt_gw_call(&e, "GET", "/healthz", NULL, NULL, &st);
        json_int_t busy = json_integer_value(json_object_get(json_object_get(j, "webhooks"), "inFlight"));
        json_decref(j);
        if (busy == 2)
            break;
        ck_assert_msg(tu_now_ms() < until, "the deliveries did not start");
        tu_sleep_ms(20);
    }
    for (int i = 0; i < 3; i++) /* commits while every slot is taken */
        gwt_create_invoice(&e, ref);
    long long cpu0 = proc_cpu_ms(e.gw.pid), wall0 = tu_now_ms();
    tu_sleep_ms(1500); /* the window measured, not a wait for an outcome */
    long long cpu = proc_cpu_ms(e.gw.pid) - cpu0, wall = tu_now_ms() - wall0;
    ck_assert_msg(cpu * 100 < wall * 30, "the gateway used %lld ms of CPU in %lld ms, idle but "
                  "for a hanging webhook receiver", cpu, wall);
    gwt_env_stop(&e);
    tu_stop(&r.proc, SIGTERM, 5000);
}
END_TEST

/* The type a status event of this status has. */
static const char *status_event(const char *status)
{
    if (strcmp(status, "PAID") == 0)
        return "invoice.paid";
    if (strcmp(status, "CANCELED") == 0)
        return "invoice.canceled";
    return "invoice.created";
}

START_TEST(kill9_every_change_has_its_event)
{
    int kills = atoi(tu_env("WEBHOOK_KILLS", "20"));
    allow_repeats = true;
    gw_env e;
    gwt_env_init(&e, "60");
    receiver r;
    receiver_init(&r, &e);
    receiver_start(&r, &e, "ok");
    start_with_webhooks(&e, &r, NULL);
    char refs[MAX_REFS][64];
    int n = 0;
    long st;
    for (int k = 0; k < kills; k++) {
        for (int i = 0; i < 3 && n < MAX_REFS; i++) {
            json_t *j = gwt_gw_call(&e, "POST", "/invoices", gwt_invoice_body, NULL, &st);
            if (st == 201)
                snprintf(refs[n++], 64, "%s", gwt_str(j, "invoiceReference"));
            json_decref(j);
        }
        if (n > 0) {
            const char *ref = refs[(k * 7) % n];
            char path[160];
            snprintf(path, sizeof path, "/sim/invoices/%.64s/pay", ref);
            json_decref(gwt_sim_call(&e, "POST", path, NULL, &st));
            /* the status now (PAID), then a refund of it */
            snprintf(path, sizeof path, "/invoices/%.64s/status", ref);
            json_decref(gwt_gw_call(&e, "GET", path, NULL, NULL, &st));
            snprintf(path, sizeof path, "/invoices/%.64s/refunds", ref);
            json_decref(gwt_gw_call(&e, "POST", path, "{\"amount\":\"1.00\"}", NULL, &st));
            if (k % 3 == 0) {
                snprintf(path, sizeof path, "/invoices/%.64s/cancel", refs[(k * 5) % n]);
                json_decref(gwt_gw_call(&e, "POST", path, "{}", NULL, &st));
            }
        }
        tu_sleep_ms((int)(tu_now_ms() % 400)); /* a kill at a random moment of the poller's work */
        tu_stop(&e.gw, SIGKILL, 5000);
        gwt_start_gw(&e);
    }
    /* Let the poller see every payment, then compare. */
    for (int i = 0; i < n; i++) {
        char path[128];
        snprintf(path, sizeof path, "/invoices/%.64s/status", refs[i]);
        json_decref(gwt_gw_call(&e, "GET", path, NULL, NULL, &st));
    }
    wait_all_received(&e, &r, 60000);
    json_t *feed = feed_all(&e);
    int refunds_done = 0, paid = 0;
    for (int i = 0; i < n; i++) {
        char path[128];
        snprintf(path, sizeof path, "/invoices/%.64s", refs[i]);
        json_t *inv = gwt_gw_call(&e, "GET", path, NULL, NULL, &st);
        ck_assert_int_eq(st, 200);
        const char *last = NULL;
        size_t k;
        json_t *ev;
        int refunds = 0;
        json_array_foreach(feed, k, ev)
        {
            if (strcmp(gwt_str(ev, "invoiceReference"), refs[i]) != 0)
                continue;
            const char *type = gwt_str(ev, "type");
            if (strncmp(type, "invoice.", 8) == 0 &&
                strcmp(type, "invoice.receipt_submitted") != 0 &&
                strcmp(type, "invoice.updated") != 0)
                last = type;
            if (strcmp(type, "refund.succeeded") == 0)
                refunds++;
        }
        ck_assert_msg(last != NULL, "invoice %s has no event", refs[i]);
        const char *status = gwt_str(inv, "status");
        ck_assert_msg(strcmp(last, status_event(status)) == 0 ||
                          (strcmp(status, "CANCELED") == 0 && strcmp(last, "invoice.expired") == 0),
                      "invoice %s is %s but its last event is %s", refs[i], status, last);
        int done = 0;
        json_t *rf;
        json_array_foreach(json_object_get(inv, "refunds"), k, rf) done +=
            strcmp(gwt_str(rf, "status"), "done") == 0;
        ck_assert_msg(done == refunds, "invoice %s: %d refunds done, %d refund.succeeded events",
                      refs[i], done, refunds);
        refunds_done += done;
        paid += strcmp(status, "PAID") == 0;
        json_decref(inv);
    }
    /* not vacuous: payments and refunds happened between the kills */
    ck_assert_int_ge(paid, kills / 2);
    ck_assert_int_ge(refunds_done, kills / 2);
    json_decref(feed);
    gwt_env_stop(&e);
    tu_stop(&r.proc, SIGTERM, 5000);
}
END_TEST

/* The Standard Webhooks specification's own example: same secret, id,
 * timestamp and body give the signature the reference libraries compute. */
START_TEST(standard_webhooks_vector)
{
    webhook_key key;
    const char *why = NULL;
    ck_assert(webhook_key_parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", &key, &why));
    ck_assert_int_eq(key.len, 24);
    char sig[WEBHOOK_SIGNATURE_LEN];
    const char body[] = "{\"test\": 2432232314}";
    ck_assert(
        webhook_sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, strlen(body), sig));
    ck_assert_str_eq(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    ck_assert(!webhook_key_parse("whsec_", &key, &why));
    ck_assert_ptr_nonnull(why);
    ck_assert(!webhook_key_parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS=", &key, &why));
    ck_assert(!webhook_key_parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", &key, &why));
    ck_assert_int_eq(webhook_backoff_ms(1, 3600000), 1000);
    ck_assert_int_eq(webhook_backoff_ms(4, 3600000), 8000);
    ck_assert_int_eq(webhook_backoff_ms(40, 3600000), 3600000);
}
END_TEST

/* 410 Gone ends an event (failed) and disables the URL; a redelivery after
 * the shop fixed its endpoint goes out. */
START_TEST(gone_disables_then_redeliver)
{
    gw_env e;
    gwt_env_init(&e, "60");
    receiver r;
    receiver_init(&r, &e);
    receiver_start(&r, &e, "gone");
    start_with_webhooks(&e, &r, NULL);
    char ref[64];
    gwt_create_invoice(&e, ref);
    long st;
    json_t *j = NULL;
    long long until = tu_now_ms() + 20000;
    json_int_t event_id = 0;
    for (;;) {
        j = gwt_gw_call(&e, "GET", "/webhooks/deliveries", NULL, NULL, &st);
        json_t *d = json_array_get(json_object_get(j, "deliveries"), 0);
        if (d != NULL && strcmp(gwt_str(d, "eventState"), "failed") == 0) {
            ck_assert_int_eq(json_integer_value(json_object_get(d, "httpStatus")), 410);
            event_id = json_integer_value(json_object_get(d, "eventId"));
            json_decref(j);
            break;
        }
        json_decref(j);
        ck_assert_msg(tu_now_ms() < until, "the 410 did not fail the event");
        tu_sleep_ms(50);
    }
    j = gwt_gw_call(&e, "GET", "/healthz", NULL, NULL, &st);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(j, "webhooks"), "givenUp")),
                     1);
    json_decref(j);
    tu_stop(&r.proc, SIGTERM, 5000);
    receiver_start(&r, &e, "ok");
    char path[64];
    snprintf(path, sizeof path, "/events/%lld/redeliver", (long long)event_id);
    json_decref(gwt_gw_call(&e, "POST", path, "{}", NULL, &st));
    ck_assert_int_eq(st, 202);
    wait_all_received(&e, &r, 20000);
    gwt_env_stop(&e);
    tu_stop(&r.proc, SIGTERM, 5000);
}
END_TEST

/* The TTL cancel of an unpaid invoice tells invoice.expired, not canceled. */
START_TEST(ttl_cancel_is_expired)
{
    gw_env e;
    gwt_env_init(&e, "60");
    receiver r;
    receiver_init(&r, &e);
    receiver_start(&r, &e, "ok");
    poller_extra = "invoice_ttl_s = 10\n";
    start_with_webhooks(&e, &r, NULL);
    poller_extra = NULL;
    char ref[64];
    gwt_create_invoice(&e, ref);
    json_decref(gwt_wait_status(&e, ref, "CANCELED", 60000));
    wait_all_received(&e, &r, 20000);
    json_t *lines = receiver_lines(&r);
    buf types = BUF_INIT;
    size_t i;
    json_t *l;
    json_array_foreach(lines, i, l)
        buf_printf(&types, "%s ", gwt_str(json_object_get(l, "event"), "type"));
    /* (SEQR may move a canceled invoice's version once more: invoice.updated) */
    ck_assert_msg(strncmp(buf_cstr(&types), "invoice.created invoice.expired ", 32) == 0 &&
                      strstr(buf_cstr(&types) + 32, "expired") == NULL &&
                      strstr(buf_cstr(&types) + 32, "canceled") == NULL,
                  "events: %s", buf_cstr(&types));
    buf_free(&types);
    json_decref(lines);
    gwt_env_stop(&e);
    tu_stop(&r.proc, SIGTERM, 5000);
}
END_TEST

/* A number under "webhooks" in e's /healthz. */
static json_int_t healthz_webhooks(const gw_env *e, const char *key)
{
    long st;
    json_t *j = gwt_gw_call(e, "GET", "/healthz", NULL, NULL, &st);
    json_int_t v = json_integer_value(json_object_get(json_object_get(j, "webhooks"), key));
    json_decref(j);
    return v;
}

/* Waits (bounded) until e's /healthz says webhooks.key >= want. */
static void wait_healthz_webhooks(const gw_env *e, const char *key, json_int_t want)
{
    long long until = tu_now_ms() + 20000 * gwt_slowdown();
    while (healthz_webhooks(e, key) < want) {
        ck_assert_msg(tu_now_ms() < until, "webhooks.%s never reached %lld", key, (long long)want);
        tu_sleep_ms(20);
    }
}

/* Two gateways on one PostgreSQL database (SEQR_TEST_PG_URL), one receiver:
 * a long-poll on a sees a payment that b polled; invoices sent, paid and
 * canceled through both: every event reaches the receiver exactly once, in
 * order per invoice; then a is kill -9'd while deliveries it claimed hang,
 * and b delivers them (each still exactly once: the hanging receiver never
 * answered, so none was received before). */
START_TEST(two_gateways_one_receiver)
{
    gw_env a, b;
    gwt_env_init(&a, "60");
    char key[700];
    snprintf(key, sizeof key, "%s/store.key", a.dir);
    setenv("SEQR_TEST_PG_KEY", key, 1); /* one key for both gateways */
    receiver r;
    receiver_init(&r, &a);
    receiver_start(&r, &a, "ok");
    /* Two deliveries at most per gateway, so that both get some below. */
    start_with_webhooks(&a, &r, "max_in_flight = 2\n");
    b = a;
    memset(&b.gw, 0, sizeof b.gw);
    memset(&b.sim, 0, sizeof b.sim); /* a's to stop */
    ck_assert_int_lt(snprintf(b.dir, sizeof b.dir, "%s/b", a.dir), (int)sizeof b.dir);
    ck_assert_int_eq(mkdir(b.dir, 0700), 0);
    snprintf(b.conf, sizeof b.conf, "%s/gateway.conf", b.dir);
    b.gw_port = tu_free_port();
    start_with_webhooks(&b, &r, "max_in_flight = 2\n");

    /* A long-poll on a wakes for a payment b records (b sent the invoice,
     * so b holds its lease and polls it): the NOTIFY crosses gateways. */
    char ref[64];
    gwt_create_invoice(&b, ref);
    wait_all_received(&a, &r, 20000);
    json_t *feed = feed_all(&a);
    long long cursor =
        json_integer_value(json_object_get(json_array_get(feed, json_array_size(feed) - 1), "id"));
    json_decref(feed);
    bg_get poll = {&a, "", 0, NULL};
    snprintf(poll.path, sizeof poll.path, "/events?after=%lld&wait=30", cursor);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, bg_get_run, &poll), 0);
    wait_healthz_webhooks(&a, "openStreams", 1);
    long long paid_at = tu_now_ms();
    gwt_sim_pay(&a, ref);
    pthread_join(t, NULL);
    fprintf(stderr, "two gateways: a's long-poll saw b's PAID %lld ms after the payment\n",
            tu_now_ms() - paid_at);
    ck_assert_int_eq(poll.status, 200);
    ck_assert_ptr_nonnull(strstr(poll.body, "invoice.paid"));
    ck_assert_ptr_nonnull(strstr(poll.body, ref));
    free(poll.body);

    /* Sent, paid and canceled through both: each event once, in order. */
    char refs[12][64];
    for (int i = 0; i < 12; i++)
        gwt_create_invoice(i % 2 ? &b : &a, refs[i]);
    for (int i = 0; i < 12; i += 3)
        gwt_sim_pay(&a, refs[i]);
    for (int i = 1; i < 12; i += 3) {
        char path[128];
        long st;
        snprintf(path, sizeof path, "/invoices/%s/cancel", refs[i]);
        json_decref(gwt_gw_call(i % 2 ? &a : &b, "POST", path, "{}", NULL, &st));
        ck_assert_int_eq(st, 200);
    }
    for (int i = 0; i < 12; i += 3)
        json_decref(gwt_wait_status(&b, refs[i], "PAID", 20000));
    allow_repeats = false;
    wait_all_received(&a, &r, 30000);

    /* a dies while deliveries it claimed hang: b delivers them. */
    tu_stop(&r.proc, SIGTERM, 5000);
    receiver_start(&r, &a, "hang"); /* answers nothing for 30 s */
    char more[6][64];
    for (int i = 0; i < 6; i++)
        gwt_create_invoice(i % 2 ? &b : &a, more[i]);
    wait_healthz_webhooks(&a, "inFlight", 1);
    ck_assert_int_eq(tu_stop(&a.gw, SIGKILL, 5000), 128 + SIGKILL);
    tu_stop(&r.proc, SIGTERM, 5000); /* the hanging requests die unrecorded */
    receiver_start(&r, &a, "ok");
    wait_all_received(&b, &r, 60000);
    check_received(&b, &r, true, NULL);

    ck_assert_int_eq(tu_stop(&b.gw, SIGTERM, 10000), 0);
    gwt_env_stop(&a);
    tu_stop(&r.proc, SIGTERM, 5000);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("webhooks");
    TCase *tc = tcase_create("sign");
    tcase_add_test(tc, standard_webhooks_vector);
    suite_add_tcase(s, tc);
    tc = tcase_create("signed");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, signed_events_feed_and_stream);
    suite_add_tcase(s, tc);
    tc = tcase_create("gone");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, gone_disables_then_redeliver);
    suite_add_tcase(s, tc);
    tc = tcase_create("expired");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, ttl_cancel_is_expired);
    suite_add_tcase(s, tc);
    tc = tcase_create("down");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, receiver_down_then_up);
    suite_add_tcase(s, tc);
    tc = tcase_create("hang");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, hanging_receiver_costs_no_cpu);
    suite_add_tcase(s, tc);
    tc = tcase_create("crash");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, kill9_every_change_has_its_event);
    suite_add_tcase(s, tc);
    const char *pg = getenv("SEQR_TEST_PG_URL");
    if (pg != NULL && pg[0] != '\0') {
        tc = tcase_create("twogateways");
        tcase_set_timeout(tc, 600);
        tcase_add_test(tc, two_gateways_one_receiver);
        suite_add_tcase(s, tc);
    } else {
        fprintf(stderr, "two_gateways_one_receiver skipped: needs SEQR_TEST_PG_URL "
                        "(tests/pg_test.sh)\n");
    }
    return tu_run_suite(s);
}
