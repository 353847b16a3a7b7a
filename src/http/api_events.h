/* http/api_events.h — the endpoints that tell the shop what changed: the
 * event feed (GET /events, long-poll with wait=), the per-invoice stream
 * (GET /invoices/{ref}/events, Server-Sent Events), the wait for an
 * invoice's version (GET /invoices/{ref}?waitForVersion=), and the
 * operator's view of webhook deliveries. Routed from http/api.c.
 *
 * Waiting: libmicrohttpd runs one thread per connection, so a wait blocks
 * that thread on the events hub's condition variable (no CPU while it
 * waits, woken by the commit of a new event). At most [http] max_streams
 * waits and streams are open at once; past that the answer is 503
 * too_many_streams with Retry-After, so waits never take the connections
 * the rest of the API needs (docs/design.md, "Events and webhooks"). */
#ifndef SEQR_HTTP_API_EVENTS_H
#define SEQR_HTTP_API_EVENTS_H

#include <jansson.h>

#include "health.h"
#include "http/server.h"
#include "invoice.h"
#include "store.h"

void api_events_list(const http_context *ctx, const http_request *req, const char *const *a,
                     http_response *resp);
void api_events_redeliver(const http_context *ctx, const http_request *req, const char *const *a,
                          http_response *resp);
void api_events_stream(const http_context *ctx, const http_request *req, const char *const *a,
                       http_response *resp);
void api_events_deliveries(const http_context *ctx, const http_request *req, const char *const *a,
                           http_response *resp);
/* GET /invoices/{ref}?waitForVersion=V[&timeout=S]: answers the invoice once
 * its version is at least V, it is final, or S seconds (default 30, at most
 * 60) have passed. */
void api_events_wait_invoice(const http_context *ctx, const http_request *req, const char *ref,
                             http_response *resp);
/* False with a 422 webhooks_not_configured in err when the invoice names a
 * webhookUrl but [webhooks] secret is not set (webhooks are always signed). */
bool api_events_check_invoice(const http_context *ctx, const invoice_input *in, api_error *err);
/* How a Server-Sent Events stream of one invoice writes what it reads
 * from the outbox (api_events_open_stream). Either hook may be NULL.
 * event: called for each new event, appends its frames to out.
 * batch: called once after a run of new events (last_id the last one's id),
 *        appends frames to out; false ends the stream.
 * free:  frees the writer's ud when the stream closes (or fails to open). */
typedef struct {
    void (*event)(void *ud, const store_event *ev, buf *out);
    bool (*batch)(void *ud, int64_t last_id, buf *out);
    void (*free)(void *ud);
} api_stream_writer;

/* Answers resp with a text/event-stream of invoice_id's events after
 * last_id, written by writer, ending once the invoice is final; counted
 * against [http] max_streams (503 too_many_streams past it). The stream
 * owns writer_ud from here on, whatever the outcome. */
void api_events_open_stream(const http_context *ctx, int64_t invoice_id, int64_t last_id,
                            const api_stream_writer *writer, void *writer_ud, http_response *resp);
/* Reads the Last-Event-ID header into last (0 when absent); on a bad one
 * sets a 400 answer and returns false. */
bool api_events_last_event_id(const http_request *req, http_response *resp, int64_t *last);
/* Adds the webhook backlog's verdict to hr (health_assess_webhooks). */
void api_events_assess(const http_context *ctx, health_report *hr);
/* Appends the webhook metrics (Prometheus text format) to out. */
void api_events_metrics(const http_context *ctx, buf *out);
/* Adds "webhooks" (backlog, oldest undelivered age, delivery counters,
 * streams) to a /healthz object. */
void api_events_health(const http_context *ctx, json_t *health);

#endif
