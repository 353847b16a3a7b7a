/* http/api_events.c — event feed, streams and webhook operator endpoints;
 * see http/api_events.h. */
#include "http/api_events.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "store.h"
#include "webhook.h"

#define API_EVENTS_MAX_LIMIT 500
#define API_EVENTS_MAX_WAIT_S 60
#define API_EVENTS_KEEPALIVE_MS 15000

/* Parses query argument name as an integer in [min, max]; def when absent.
 * On error sets a 400 answer and returns false. */
static bool api_events_int(const http_request *req, http_response *resp, const char *name,
                           int64_t min, int64_t max, int64_t def, int64_t *out)
{
    const char *v = http_query(req, name);
    *out = def;
    if (v == NULL)
        return true;
    char *end = NULL;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (v[0] == '\0' || *end != '\0' || errno != 0 || n < min || n > max) {
        char msg[128];
        snprintf(msg, sizeof msg, "%s must be a whole number from %lld to %lld", name,
                 (long long)min, (long long)max);
        http_respond_fail(resp, 400, "invalid_value", name, msg);
        return false;
    }
    *out = n;
    return true;
}

static void api_events_busy(http_response *resp)
{
    http_respond_fail(resp, 503, "too_many_streams", NULL,
                      "too many long-polls and event streams are open ([http] max_streams); "
                      "retry shortly");
    resp->retry_after_s = 1;
}

typedef struct {
    json_t *arr;
    int64_t last;
} api_events_page;

static bool api_events_add(const store_event *ev, void *ud)
{
    api_events_page *pg = ud;
    json_t *o = events_render(ev);
    if (o != NULL)
        json_array_append_new(pg->arr, o);
    pg->last = ev->id;
    return true;
}

void api_events_list(const http_context *ctx, const http_request *req, const char *const *a,
                     http_response *resp)
{
    int64_t after, limit, wait_s;
    if (!api_events_int(req, resp, "after", 0, INT64_MAX, 0, &after) ||
        !api_events_int(req, resp, "limit", 1, API_EVENTS_MAX_LIMIT, 100, &limit) ||
        !api_events_int(req, resp, "wait", 0, API_EVENTS_MAX_WAIT_S, 0, &wait_s))
        return;
    events_waiter *waiter = NULL;
    if (wait_s > 0) {
        waiter = events_hub_enter(ctx->hub, 0);
        if (waiter == NULL) {
            api_events_busy(resp);
            return;
        }
    }
    int64_t deadline = events_now_mono_ms() + wait_s * 1000;
    api_events_page pg = {json_array(), after};
    store_err e;
    for (;;) {
        /* The counter first, then the read: an event committed after the
         * read moves the counter, so the wait below cannot miss it. */
        uint64_t seq = waiter ? events_hub_seq(ctx->hub, waiter) : 0;
        e = service_events_after(ctx->svc, after, 0, (int)limit, api_events_add, &pg);
        if (e != STORE_OK || json_array_size(pg.arr) > 0 || waiter == NULL ||
            events_now_mono_ms() >= deadline || events_hub_closing(ctx->hub))
            break;
        events_hub_wait(ctx->hub, waiter, seq, deadline);
    }
    if (waiter != NULL)
        events_hub_leave(ctx->hub, waiter);
    if (e != STORE_OK) {
        json_decref(pg.arr);
        http_respond_fail(resp, 500, "store_error", NULL, "the gateway's database failed");
        return;
    }
    json_t *o = json_object();
    json_object_set_new(o, "events", pg.arr);
    json_object_set_new(o, "next", json_integer(pg.last));
    http_respond_json(resp, 200, o);
}

void api_events_redeliver(const http_context *ctx, const http_request *req, const char *const *a,
                          http_response *resp)
{
    char *end = NULL;
    errno = 0;
    long long id = strtoll(a[0], &end, 10);
    if (*end != '\0' || errno != 0 || id <= 0) {
        http_respond_fail(resp, 404, "not_found", NULL, "no such event");
        return;
    }
    store_err e = service_event_redeliver(ctx->svc, id);
    if (e == STORE_NOT_FOUND) {
        http_respond_fail(resp, 404, "not_found", NULL, "no such event");
        return;
    }
    if (e != STORE_OK) {
        http_respond_fail(resp, 500, "store_error", NULL, "the gateway's database failed");
        return;
    }
    webhook_reenable(ctx->webhooks);
    log_info("event %lld queued for redelivery", id);
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(id));
    json_object_set_new(o, "state", json_string("pending"));
    http_respond_json(resp, 202, o);
}

void api_events_deliveries(const http_context *ctx, const http_request *req, const char *const *a,
                           http_response *resp)
{
    int64_t limit;
    if (!api_events_int(req, resp, "limit", 1, API_EVENTS_MAX_LIMIT, 100, &limit))
        return;
    char *text = NULL;
    store_err e = service_delivery_list(ctx->svc, (int)limit, &text);
    json_t *arr = e == STORE_OK && text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    if (!json_is_array(arr)) {
        json_decref(arr);
        http_respond_fail(resp, 500, "store_error", NULL, "the gateway's database failed");
        return;
    }
    size_t i;
    json_t *d;
    json_array_foreach(arr, i, d)
    {
        json_int_t at = json_integer_value(json_object_get(d, "at"));
        char b[32];
        time_t t = (time_t)(at / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &tm);
        json_object_set_new(d, "at", json_string(b));
    }
    json_t *o = json_object();
    json_object_set_new(o, "deliveries", arr);
    http_respond_json(resp, 200, o);
}

void api_events_assess(const http_context *ctx, health_report *hr)
{
    int64_t backlog = 0, oldest = 0;
    if (service_events_backlog(ctx->svc, &backlog, &oldest) == STORE_OK && oldest > 0)
        health_assess_webhooks(backlog, store_now_ms() - oldest, hr);
}

void api_events_metrics(const http_context *ctx, buf *out)
{
    int64_t backlog = 0, oldest = 0;
    bool ok = service_events_backlog(ctx->svc, &backlog, &oldest) == STORE_OK;
    webhook_stats ws;
    webhook_get_stats(ctx->webhooks, &ws);
    int streams = 0, max_streams = 0;
    events_hub_waiters(ctx->hub, &streams, &max_streams);
    if (ok) {
        buf_printf(out,
                   "# HELP seqr_gateway_webhook_backlog Events waiting for webhook delivery.\n"
                   "# TYPE seqr_gateway_webhook_backlog gauge\n"
                   "seqr_gateway_webhook_backlog %lld\n"
                   "# HELP seqr_gateway_webhook_oldest_undelivered_seconds Age of the oldest "
                   "event waiting for delivery (0 when none).\n"
                   "# TYPE seqr_gateway_webhook_oldest_undelivered_seconds gauge\n"
                   "seqr_gateway_webhook_oldest_undelivered_seconds %lld\n",
                   (long long)backlog,
                   (long long)(oldest > 0 ? (store_now_ms() - oldest) / 1000 : 0));
    }
    buf_printf(out,
               "# HELP seqr_gateway_webhook_deliveries_total Webhook attempts by outcome.\n"
               "# TYPE seqr_gateway_webhook_deliveries_total counter\n"
               "seqr_gateway_webhook_deliveries_total{outcome=\"delivered\"} %llu\n"
               "seqr_gateway_webhook_deliveries_total{outcome=\"failed\"} %llu\n"
               "# HELP seqr_gateway_webhook_given_up_total Events no longer retried (410, or "
               "retried out).\n"
               "# TYPE seqr_gateway_webhook_given_up_total counter\n"
               "seqr_gateway_webhook_given_up_total %llu\n"
               "# HELP seqr_gateway_webhook_in_flight Webhook requests under way.\n"
               "# TYPE seqr_gateway_webhook_in_flight gauge\n"
               "seqr_gateway_webhook_in_flight %d\n"
               "# HELP seqr_gateway_event_streams Long-polls and event streams open.\n"
               "# TYPE seqr_gateway_event_streams gauge\n"
               "seqr_gateway_event_streams %d\n",
               (unsigned long long)ws.delivered, (unsigned long long)ws.attempts_failed,
               (unsigned long long)ws.given_up, ws.in_flight, streams);
}

void api_events_health(const http_context *ctx, json_t *health)
{
    json_t *w = json_object();
    int64_t backlog = 0, oldest = 0;
    if (service_events_backlog(ctx->svc, &backlog, &oldest) == STORE_OK) {
        json_object_set_new(w, "backlog", json_integer(backlog));
        json_object_set_new(w, "oldestUndeliveredAgeSeconds",
                            json_integer(oldest > 0 && store_now_ms() > oldest
                                             ? (store_now_ms() - oldest) / 1000
                                             : 0));
    }
    webhook_stats ws;
    webhook_get_stats(ctx->webhooks, &ws);
    json_object_set_new(w, "delivered", json_integer((json_int_t)ws.delivered));
    json_object_set_new(w, "failedAttempts", json_integer((json_int_t)ws.attempts_failed));
    json_object_set_new(w, "givenUp", json_integer((json_int_t)ws.given_up));
    json_object_set_new(w, "inFlight", json_integer(ws.in_flight));
    int now = 0, max = 0;
    events_hub_waiters(ctx->hub, &now, &max);
    json_object_set_new(w, "openStreams", json_integer(now));
    json_object_set_new(w, "maxStreams", json_integer(max));
    json_object_set_new(health, "webhooks", w);
}

bool api_events_check_invoice(const http_context *ctx, const invoice_input *in, api_error *err)
{
    if (json_object_get(in->doc, "webhookUrl") == NULL || ctx->cfg->webhooks_secret[0] != '\0')
        return true;
    api_error_set(err, 422, "webhooks_not_configured", "webhookUrl",
                  "webhookUrl needs [webhooks] secret in the gateway's configuration "
                  "(webhooks are always signed)");
    return false;
}

/* --- waiting for an invoice --- */

static bool api_events_final(const store_invoice *inv)
{
    return seqr_status_is_final(inv->status) || strcmp(inv->send_state, STORE_SEND_REJECTED) == 0;
}

void api_events_wait_invoice(const http_context *ctx, const http_request *req, const char *ref,
                             http_response *resp)
{
    int64_t want, timeout_s;
    if (!api_events_int(req, resp, "waitForVersion", 0, INT64_MAX, 0, &want) ||
        !api_events_int(req, resp, "timeout", 0, API_EVENTS_MAX_WAIT_S, 30, &timeout_s))
        return;
    store_invoice inv;
    api_error err;
    if (!service_get_invoice(ctx->svc, ref, &inv, &err)) {
        http_respond_error(resp, &err);
        return;
    }
    if (inv.version < want && !api_events_final(&inv) && timeout_s > 0) {
        events_waiter *waiter = events_hub_enter(ctx->hub, inv.id);
        if (waiter == NULL) {
            store_invoice_clear(&inv);
            api_events_busy(resp);
            return;
        }
        int64_t deadline = events_now_mono_ms() + timeout_s * 1000;
        for (;;) {
            uint64_t seq = events_hub_seq(ctx->hub, waiter);
            store_invoice_clear(&inv);
            if (!service_get_invoice(ctx->svc, ref, &inv, &err)) {
                events_hub_leave(ctx->hub, waiter);
                http_respond_error(resp, &err);
                return;
            }
            if (inv.version >= want || api_events_final(&inv) || events_now_mono_ms() >= deadline ||
                events_hub_closing(ctx->hub))
                break;
            events_hub_wait(ctx->hub, waiter, seq, deadline);
        }
        events_hub_leave(ctx->hub, waiter);
    }
    http_respond_json(resp, 200, service_invoice_json(ctx->svc, &inv));
    store_invoice_clear(&inv);
}

/* --- the per-invoice streams (Server-Sent Events) --- */

typedef struct {
    const http_context *ctx;
    int64_t invoice_id;
    int64_t last_id; /* the last event id read */
    events_waiter *waiter;
    api_stream_writer writer;
    void *writer_ud;
    buf out; /* framed text not yet handed to libmicrohttpd */
    size_t out_pos;
    bool ending; /* the invoice is final and its events are out */
} api_stream;

static bool api_stream_add(const store_event *ev, void *ud)
{
    api_stream *s = ud;
    if (s->writer.event != NULL)
        s->writer.event(s->writer_ud, ev, &s->out);
    s->last_id = ev->id;
    return true;
}

/* Fills s->out with what comes next: new events, a keep-alive comment, or
 * nothing when the stream is over. Blocks until one of them. */
static void api_stream_fill(api_stream *s)
{
    const http_context *ctx = s->ctx;
    int64_t deadline = events_now_mono_ms() + API_EVENTS_KEEPALIVE_MS;
    for (;;) {
        uint64_t seq = events_hub_seq(ctx->hub, s->waiter);
        /* Final first, then the events: the change and its event commit
         * together, so a final invoice's last event is already readable. */
        bool final = service_invoice_final(ctx->svc, s->invoice_id);
        int64_t before = s->last_id;
        if (service_events_after(ctx->svc, s->last_id, s->invoice_id, 100, api_stream_add, s) !=
            STORE_OK) {
            s->ending = true;
            return;
        }
        if (s->last_id != before && s->writer.batch != NULL &&
            !s->writer.batch(s->writer_ud, s->last_id, &s->out)) {
            s->ending = true;
            return;
        }
        if (s->out.len > 0)
            return; /* more may follow; the next call looks again */
        if (final || events_hub_closing(ctx->hub)) {
            s->ending = true;
            return;
        }
        if (events_now_mono_ms() >= deadline) {
            buf_puts(&s->out, ": keep-alive\n\n");
            return;
        }
        events_hub_wait(ctx->hub, s->waiter, seq, deadline);
    }
}

/* http_response.stream: the next bytes of the stream, 0 at its end. */
static size_t api_stream_read(void *cls, char *out, size_t max)
{
    api_stream *s = cls;
    if (s->out_pos >= s->out.len) {
        s->out.len = 0;
        s->out_pos = 0;
        if (s->ending)
            return 0;
        api_stream_fill(s);
        if (s->out.len == 0)
            return 0;
    }
    size_t n = s->out.len - s->out_pos;
    if (n > max)
        n = max;
    memcpy(out, s->out.data + s->out_pos, n);
    s->out_pos += n;
    return n;
}

static void api_stream_free(void *cls)
{
    api_stream *s = cls;
    events_hub_leave(s->ctx->hub, s->waiter);
    if (s->writer.free != NULL)
        s->writer.free(s->writer_ud);
    buf_free(&s->out);
    free(s);
}

bool api_events_last_event_id(const http_request *req, http_response *resp, int64_t *last)
{
    *last = 0;
    const char *h = http_header(req, "Last-Event-ID");
    if (h == NULL)
        return true;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(h, &end, 10);
    if (h[0] == '\0' || *end != '\0' || errno != 0 || v < 0) {
        http_respond_fail(resp, 400, "invalid_header", "Last-Event-ID",
                          "Last-Event-ID must be an event id (a whole number)");
        return false;
    }
    *last = v;
    return true;
}

void api_events_open_stream(const http_context *ctx, int64_t invoice_id, int64_t last_id,
                            const api_stream_writer *writer, void *writer_ud, http_response *resp)
{
    events_waiter *waiter = events_hub_enter(ctx->hub, invoice_id);
    if (waiter == NULL) {
        if (writer->free != NULL)
            writer->free(writer_ud);
        api_events_busy(resp);
        return;
    }
    api_stream *s = calloc(1, sizeof *s);
    if (s == NULL)
        abort();
    s->waiter = waiter;
    s->ctx = ctx;
    s->invoice_id = invoice_id;
    s->last_id = last_id;
    s->writer = *writer;
    s->writer_ud = writer_ud;
    buf_init(&s->out);
    buf_puts(&s->out, "retry: 2000\n\n");
    resp->status = 200;
    resp->content_type = "text/event-stream";
    resp->stream = api_stream_read;
    resp->stream_ud = s;
    resp->stream_free = api_stream_free;
}

/* The shop's stream: every event, as GET /events renders it. */
static void api_events_frame(void *ud, const store_event *ev, buf *out)
{
    json_t *o = events_render(ev);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (text != NULL) {
        /* Compact JSON has no newline, so one data: line carries it. */
        buf_printf(out, "id: %lld\nevent: %s\ndata: %s\n\n", (long long)ev->id, ev->type, text);
        free(text);
    }
}

void api_events_stream(const http_context *ctx, const http_request *req, const char *const *a,
                       http_response *resp)
{
    int64_t last = 0;
    if (http_header(req, "Last-Event-ID") != NULL) {
        if (!api_events_last_event_id(req, resp, &last))
            return;
    } else if (!api_events_int(req, resp, "after", 0, INT64_MAX, 0, &last)) {
        return;
    }
    store_invoice inv;
    api_error err;
    if (!service_get_invoice(ctx->svc, a[0], &inv, &err)) {
        http_respond_error(resp, &err);
        return;
    }
    int64_t id = inv.id;
    store_invoice_clear(&inv);
    const api_stream_writer w = {.event = api_events_frame};
    api_events_open_stream(ctx, id, last, &w, NULL, resp);
}
