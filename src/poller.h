/* poller.h — the heartbeat: keeps every open invoice polled with
 * getPaymentStatus about once per interval, so SEQR never reverses a payment
 * the shop did not hear about (the 20-second rule).
 *
 * One thread runs a libcurl multi handle through its socket interface: the
 * sockets libcurl names are watched with epoll (an eventfd wakes the thread
 * for new invoices, pokes and stop), so a wake-up costs what it handles, not
 * what is open. While calls are in flight it wakes at most once per 8 ms
 * tick and then takes every answer that arrived and launches every poll due
 * before the next tick (stopping does not wait for the tick). Up to
 * max_in_flight calls at once on kept-alive connections,
 * a min-heap of due times, and a hash of invoices by reference. An answer
 * that repeats the status and version last stored is not written; the
 * changes of one round go to the store in one transaction. SEQR
 * errors back off (at most 5 s between polls, so a PAID invoice is still seen
 * in time) and are logged once per outage. A second thread runs the blocking
 * follow-ups: automatic receipts and canceling invoices past their TTL.
 *
 * poller_start() loads every pending invoice from the store and polls them all
 * at once; poller_add()/poller_poke() are thread-safe. With several gateways
 * on one PostgreSQL store, a third thread calls store_lease_sync() every
 * STORE_LEASE_RENEW_MS: invoices taken over from a dead gateway (or handed
 * over to balance the load) are polled at once, and invoices whose lease
 * went to another gateway are forgotten when next due. */
#ifndef SEQR_POLLER_H
#define SEQR_POLLER_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "seqr/seqr.h"
#include "service.h"
#include "store.h"

typedef struct poller poller;

typedef struct {
    int64_t pending;      /* invoices being polled */
    int64_t in_flight;    /* getPaymentStatus calls under way */
    uint64_t polls;       /* answers received since start */
    uint64_t errors;      /* failed polls since start */
    bool seqr_reachable;  /* false while polls fail */
    int64_t last_ok_ms;   /* wall clock of the last good answer, 0 if none */
    int64_t heartbeat_ms; /* monotonic time the loop last went round (watchdog) */
    /* Time between two polls of the same invoice over the last full 10 s
     * window (10 ms resolution): the 20-second rule's safety margin. */
    int64_t gap_p50_ms, gap_p99_ms, gap_max_ms;
    uint64_t gap_samples;
    /* The longest an invoice has gone unpolled right now (every 0.5 s), and
     * the alarm when that reaches 15 s, before SEQR's 20 s run out. */
    int64_t gap_open_max_ms;
    bool gap_alarm;
    /* Several gateways on one database: the schema version another gateway
     * migrated it to while this one ran, newer than this build knows (0
     * while none is). The gateway must then stop (main.c). */
    int schema_newer;
} poller_stats;

/* All arguments are borrowed and must outlive the poller. */
poller *poller_new(const config *cfg, service *svc, store *st, seqr_client *seqr);
/* Loads pending invoices and starts the threads. False on failure. */
bool poller_start(poller *p);
/* Stops: lets calls in flight finish (bounded by the SOAP timeout), joins. */
void poller_stop(poller *p);
void poller_free(poller *p);

/* Starts polling a new invoice, first after one interval (ignored if already
 * polled). */
void poller_add(poller *p, const store_invoice *inv);
/* Polls ref now (notification, webshop asking); false if ref is not polled. */
bool poller_poke(poller *p, const char *ref);
void poller_get_stats(poller *p, poller_stats *out);

/* Adapter for service_set_pending_hook (ud is the poller). */
void poller_pending_hook(void *ud, const store_invoice *inv);

#endif
