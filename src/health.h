/* health.h — one verdict on the daemon's health for /healthz and for
 * systemd's STATUS= line, so both always say the same.
 *
 *   ok        everything works
 *   degraded  the gateway serves, but something needs an operator: SEQR
 *             unreachable, polls spaced too far apart for the 20-second rule,
 *             unknown outcomes waiting to be settled
 *   failed    the store fails: nothing can be recorded (HTTP 503)
 *
 * Pure functions over a snapshot; no locking, no I/O. */
#ifndef SEQR_HEALTH_H
#define SEQR_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "poller.h"

/* Poll gap p99 above this is degraded: SEQR reverses a payment whose status
 * is not fetched within ~20 s, so 5 s leaves room for three misses. */
#define HEALTH_GAP_P99_LIMIT_MS 5000

typedef enum { HEALTH_OK, HEALTH_DEGRADED, HEALTH_FAILED } health_state;

typedef struct {
    bool store_ok;
    bool seqr_reachable;
    int64_t pending;          /* invoices being polled */
    int64_t last_ok_ms;       /* wall clock of SEQR's last good answer, 0 = none */
    int64_t now_ms;           /* wall clock */
    int64_t gap_p99_ms;       /* poll gap p99 over the last window */
    uint64_t gap_samples;     /* samples behind gap_p99_ms */
    int64_t gap_open_max_ms;  /* the longest any invoice has gone unpolled right now */
    bool gap_alarm;           /* gap_open_max_ms reached the poller's alarm (15 s) */
    int64_t unknown_outcomes; /* invoices/refunds in doubt (-1 = unknown) */
} health_input;

#define HEALTH_MAX_REASONS 5

typedef struct {
    const char *code;  /* static: "store_failing", "seqr_unreachable", ... */
    char message[160]; /* for people */
} health_reason;

typedef struct {
    health_state state;
    int nreasons;
    health_reason reasons[HEALTH_MAX_REASONS];
} health_report;

void health_assess(const health_input *in, health_report *out);
/* health_assess over the poller's stats, the store's verdict and the count of
 * unknown outcomes, now. */
void health_assess_poller(const poller_stats *ps, bool store_ok, int64_t unknown_outcomes,
                          health_report *out);
/* >>> events: webhook events not delivered for longer than this are a
 * degraded reason ("webhook_backlog"): the shop is not hearing of payments. */
#define HEALTH_WEBHOOK_AGE_LIMIT_MS 300000
/* Adds the webhook verdict to out: backlog events wait for delivery, the
 * oldest since oldest_age_ms. */
void health_assess_webhooks(int64_t backlog, int64_t oldest_age_ms, health_report *out);
/* <<< events */

/* "ok", "degraded" or "failed" (static). */
const char *health_state_name(health_state s);
/* "ok" or e.g. "degraded: SEQR unreachable ...; 2 unknown outcomes ..." into
 * out (always NUL-terminated, truncated to n). */
void health_summary(const health_report *r, char *out, size_t n);

#endif
