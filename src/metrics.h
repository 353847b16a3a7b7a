/* metrics.h — the daemon's Prometheus metrics: histograms and counters kept
 * in this module, recorded from anywhere (thread-safe), rendered in the text
 * exposition format 0.0.4 by GET /metrics.
 *
 * Histograms keep integer microseconds (bucket bounds and sums) and are
 * rendered in seconds. Each family holds at most METRICS_MAX_SERIES label
 * sets; further label sets are counted under the label set given in
 * METRICS_OVERFLOW_LABELS so a misbehaving client cannot grow memory.
 * Gauges that the poller and the store already know (pending invoices,
 * polls, unknown outcomes, ...) are passed in at render time. */
#ifndef SEQR_METRICS_H
#define SEQR_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "seqr/seqr.h"

typedef enum {
    METRICS_POLL_GAP,     /* seconds between two polls of one invoice; no labels */
    METRICS_SEQR_CALL,    /* SOAP call latency; operation, result */
    METRICS_HTTP_REQUEST, /* REST request latency; route, method, status */
    METRICS_STORE_COMMIT, /* durable commit: COMMIT/RELEASE until on disk; no labels */
    METRICS_STORE_FSYNC,  /* one fdatasync of the WAL; no labels */
    METRICS_NFAMILIES
} metrics_family;

#define METRICS_MAX_SERIES 256

/* Records one observation of us microseconds. labels is the rendered label
 * set without braces ("operation=\"sendInvoice\",result=\"0\"") or "" for
 * none; label values must be escaped already (metrics_label_value). */
void metrics_observe(metrics_family f, const char *labels, int64_t us);

/* Escapes a label value (\\, \", \n) into out (always NUL-terminated). */
void metrics_label_value(const char *value, char *out, size_t n);

/* What the caller knows at scrape time. */
typedef struct {
    const char *version;
    int64_t start_time_s; /* wall clock, seconds */
    int64_t pending;
    int64_t in_flight;
    uint64_t polls;
    uint64_t poll_errors;
    bool seqr_reachable;
    int64_t unknown_outcomes; /* -1: the store could not say */
    bool store_ok;
    int health_state; /* 0 ok, 1 degraded, 2 failed */
} metrics_gauges;

/* Appends every metric to out. */
void metrics_render(const metrics_gauges *g, buf *out);

/* A seqr_client_options.observe callback (ud unused): one METRICS_SEQR_CALL
 * observation labelled with the operation and the result (resultCode, or
 * the transport failure). */
void metrics_seqr_observe(void *ud, const char *op, seqr_err err, int result_code,
                          int64_t elapsed_us);

/* Forgets every observation (tests). */
void metrics_reset(void);

/* Monotonic clock in microseconds, for timing what is observed. */
int64_t metrics_now_us(void);

#endif
