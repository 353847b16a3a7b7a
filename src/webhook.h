/* webhook.h — delivers the outbox's events to the shop as signed webhooks.
 *
 * One thread of its own with its own libcurl multi handle: a slow, hanging
 * or dead shop endpoint costs that thread some sockets and nothing else (no
 * poll, no API answer waits on it). Each event goes to one URL: the
 * invoice's own webhookUrl, else (invoice.paid only) the invoice's
 * notificationUrl, else [webhooks] url; without any, or without [webhooks]
 * secret, it is marked skipped (the event feed still has it).
 *
 * At least once, in order per invoice: only the oldest undelivered event of
 * an invoice is sent, and the next one only after it ended. A 2xx ends an
 * event (delivered); 410 Gone ends it (failed) and disables its URL until
 * the gateway restarts or an operator redelivers; anything else (other
 * status, timeout, refused connection) is retried with exponential backoff
 * (1 s doubling, up to [webhooks] retry_max_interval_s, with jitter) until
 * [webhooks] retry_for_s after the event (3 days by default), then failed.
 * Every attempt is recorded (time, URL, HTTP status, latency, error). */
#ifndef SEQR_WEBHOOK_H
#define SEQR_WEBHOOK_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "events.h"
#include "store.h"

typedef struct webhook_worker webhook_worker;

typedef struct {
    uint64_t delivered;       /* events ended by a 2xx */
    uint64_t attempts_failed; /* attempts that did not end in 2xx */
    uint64_t given_up;        /* events failed for good (410, or retried out) */
    int in_flight;            /* requests under way now */
    int64_t last_latency_ms;  /* of the last attempt that got an answer */
} webhook_stats;

/* Starts the worker thread. cfg, st and hub are borrowed and must outlive it.
 * NULL with a message in err on failure (bad secret: --check-config catches
 * it first). */
webhook_worker *webhook_start(const config *cfg, store *st, events_hub *hub, buf *err);
/* Stops the thread (requests under way are abandoned: their events stay
 * pending and go out again after the restart) and frees. */
void webhook_stop(webhook_worker *w);
void webhook_get_stats(webhook_worker *w, webhook_stats *out);
/* Forgets the URLs disabled by 410 Gone (an operator redelivered) and looks
 * for due events now. w may be NULL. */
void webhook_reenable(webhook_worker *w);

/* The delay before retry number attempts (1 = the first retry), before
 * jitter: 1 s doubling, capped at max_ms. */
int64_t webhook_backoff_ms(int attempts, int64_t max_ms);

#endif
