/* metrics.c — histograms in fixed buckets, one mutex, text format 0.0.4; see
 * metrics.h. */
#include "metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "text.h"

#define METRICS_MAX_BUCKETS 16
#define METRICS_OVERFLOW_LABELS "overflow=\"true\""

typedef struct {
    const char *name;
    const char *help;
    int nbuckets;
    int64_t bounds_us[METRICS_MAX_BUCKETS]; /* upper bounds, ascending; +Inf implied */
} metrics_family_def;

/* Latency buckets: 1 ms .. 30 s. */
#define METRICS_LATENCY_BUCKETS                                                                    \
    14,                                                                                            \
    {                                                                                              \
        1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000,  \
            10000000, 30000000                                                                     \
    }

static const metrics_family_def metrics_defs[METRICS_NFAMILIES] = {
    [METRICS_POLL_GAP] = {"seqr_gateway_poll_gap_seconds",
                          "Time between two getPaymentStatus polls of one invoice (SEQR reverses "
                          "a payment not seen within ~20 s).",
                          13,
                          {250000, 500000, 1000000, 1500000, 2000000, 3000000, 5000000, 7500000,
                           10000000, 15000000, 20000000, 30000000, 60000000}},
    [METRICS_SEQR_CALL] = {"seqr_gateway_seqr_call_duration_seconds",
                           "SEQR SOAP calls by operation and result (SEQR resultCode, or the "
                           "transport failure: connect, timeout, fault, bad_answer, internal).",
                           METRICS_LATENCY_BUCKETS},
    [METRICS_HTTP_REQUEST] = {"seqr_gateway_http_request_duration_seconds",
                              "REST API requests by route, method and status.",
                              METRICS_LATENCY_BUCKETS},
    [METRICS_STORE_COMMIT] = {"seqr_gateway_store_commit_duration_seconds",
                              "Durable SQLite commits, from COMMIT until the WAL is on disk.",
                              METRICS_LATENCY_BUCKETS},
    [METRICS_STORE_FSYNC] = {"seqr_gateway_store_fdatasync_duration_seconds",
                             "fdatasync calls on the SQLite WAL.", METRICS_LATENCY_BUCKETS},
};

typedef struct {
    char labels[192];
    uint64_t buckets[METRICS_MAX_BUCKETS + 1]; /* per bucket, not cumulative; last = +Inf */
    uint64_t count;
    int64_t sum_us;
} metrics_series;

typedef struct {
    metrics_series series[METRICS_MAX_SERIES];
    int n;
} metrics_family_state;

static pthread_mutex_t metrics_lock = PTHREAD_MUTEX_INITIALIZER;
static metrics_family_state metrics_state[METRICS_NFAMILIES];

int64_t metrics_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void metrics_label_value(const char *value, char *out, size_t n)
{
    size_t o = 0;
    if (n == 0)
        return;
    for (const char *p = value ? value : ""; *p != '\0' && o + 3 < n; p++) {
        if (*p == '\\' || *p == '"') {
            out[o++] = '\\';
            out[o++] = *p;
        } else if (*p == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
}

/* With the lock held: the series for labels, created if there is room. */
static metrics_series *metrics_find(metrics_family_state *fs, const char *labels)
{
    for (int i = 0; i < fs->n; i++)
        if (strcmp(fs->series[i].labels, labels) == 0)
            return &fs->series[i];
    if (fs->n >= METRICS_MAX_SERIES - 1 && strcmp(labels, METRICS_OVERFLOW_LABELS) != 0)
        return metrics_find(fs, METRICS_OVERFLOW_LABELS);
    if (fs->n >= METRICS_MAX_SERIES || strlen(labels) >= sizeof fs->series[0].labels)
        return NULL;
    metrics_series *s = &fs->series[fs->n++];
    memset(s, 0, sizeof *s);
    snprintf(s->labels, sizeof s->labels, "%s", labels);
    return s;
}

void metrics_observe(metrics_family f, const char *labels, int64_t us)
{
    if ((int)f < 0 || f >= METRICS_NFAMILIES)
        return;
    if (us < 0)
        us = 0;
    const metrics_family_def *d = &metrics_defs[f];
    int b = 0;
    while (b < d->nbuckets && us > d->bounds_us[b])
        b++;
    pthread_mutex_lock(&metrics_lock);
    metrics_series *s = metrics_find(&metrics_state[f], labels ? labels : "");
    if (s != NULL) {
        s->buckets[b]++;
        s->count++;
        s->sum_us += us;
    }
    pthread_mutex_unlock(&metrics_lock);
}

void metrics_seqr_observe(void *ud, const char *op, seqr_err err, int result_code,
                          int64_t elapsed_us)
{
    /* Once per SEQR call, polls included: built without snprintf. */
    char result[TEXT_INT_LEN], opv[64], labels[160];
    const char *rtext = result;
    if (err == SEQR_OK || (err == SEQR_ERR_RESULT && result_code >= 0))
        text_int(result, err == SEQR_OK ? 0 : result_code);
    else if (err == SEQR_ERR_BAD_ANSWER)
        rtext = "bad_answer";
    else if (err == SEQR_ERR_INVALID)
        rtext = "invalid_request";
    else
        rtext = seqr_err_name(err);
    metrics_label_value(op, opv, sizeof opv);
    size_t n = text_copy(labels, sizeof labels, "operation=\"");
    n = text_append(labels, sizeof labels, n, opv);
    n = text_append(labels, sizeof labels, n, "\",result=\"");
    n = text_append(labels, sizeof labels, n, rtext);
    text_append(labels, sizeof labels, n, "\"");
    metrics_observe(METRICS_SEQR_CALL, labels, elapsed_us);
}

void metrics_reset(void)
{
    pthread_mutex_lock(&metrics_lock);
    memset(metrics_state, 0, sizeof metrics_state);
    pthread_mutex_unlock(&metrics_lock);
}

/* Microseconds as seconds: "0.001500". */
static void metrics_put_seconds(buf *out, int64_t us)
{
    buf_printf(out, "%lld.%06lld", (long long)(us / 1000000), (long long)(us % 1000000));
}

/* "{labels,le=\"x\"}" or "{le=\"x\"}" */
static void metrics_put_bucket(buf *out, const char *name, const char *labels, int64_t bound_us,
                               bool inf, uint64_t cumulative)
{
    buf_printf(out, "%s_bucket{%s%sle=\"", name, labels, labels[0] ? "," : "");
    if (inf)
        buf_puts(out, "+Inf");
    else
        metrics_put_seconds(out, bound_us);
    buf_printf(out, "\"} %llu\n", (unsigned long long)cumulative);
}

static void metrics_render_histograms(buf *out)
{
    pthread_mutex_lock(&metrics_lock);
    for (int f = 0; f < METRICS_NFAMILIES; f++) {
        const metrics_family_def *d = &metrics_defs[f];
        const metrics_family_state *fs = &metrics_state[f];
        buf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", d->name, d->help, d->name);
        for (int i = 0; i < fs->n; i++) {
            const metrics_series *s = &fs->series[i];
            uint64_t cum = 0;
            for (int b = 0; b < d->nbuckets; b++) {
                cum += s->buckets[b];
                metrics_put_bucket(out, d->name, s->labels, d->bounds_us[b], false, cum);
            }
            cum += s->buckets[d->nbuckets];
            metrics_put_bucket(out, d->name, s->labels, 0, true, cum);
            buf_printf(out, "%s_sum%s%s%s ", d->name, s->labels[0] ? "{" : "", s->labels,
                       s->labels[0] ? "}" : "");
            metrics_put_seconds(out, s->sum_us);
            buf_printf(out, "\n%s_count%s%s%s %llu\n", d->name, s->labels[0] ? "{" : "", s->labels,
                       s->labels[0] ? "}" : "", (unsigned long long)s->count);
        }
    }
    pthread_mutex_unlock(&metrics_lock);
}

static void metrics_gauge(buf *out, const char *name, const char *type, const char *help,
                          long long value)
{
    buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %lld\n", name, help, name, type, name, value);
}

void metrics_render(const metrics_gauges *g, buf *out)
{
    char version[64];
    metrics_label_value(g->version, version, sizeof version);
    buf_printf(out,
               "# HELP seqr_gateway_build_info The running version (value is always 1).\n"
               "# TYPE seqr_gateway_build_info gauge\n"
               "seqr_gateway_build_info{version=\"%s\"} 1\n",
               version);
    metrics_gauge(out, "seqr_gateway_start_time_seconds", "gauge",
                  "Start of the daemon, seconds since the Unix epoch.", (long long)g->start_time_s);
    metrics_gauge(out, "seqr_gateway_pending_invoices", "gauge",
                  "Invoices being polled (sent, not final).", (long long)g->pending);
    metrics_gauge(out, "seqr_gateway_polls_in_flight", "gauge", "getPaymentStatus calls under way.",
                  (long long)g->in_flight);
    metrics_gauge(out, "seqr_gateway_polls_total", "counter",
                  "getPaymentStatus answers received since start.", (long long)g->polls);
    metrics_gauge(out, "seqr_gateway_poll_errors_total", "counter",
                  "Failed getPaymentStatus polls since start.", (long long)g->poll_errors);
    metrics_gauge(out, "seqr_gateway_seqr_reachable", "gauge",
                  "1 while SEQR answers polls, 0 while they fail.", g->seqr_reachable ? 1 : 0);
    metrics_gauge(out, "seqr_gateway_unknown_outcomes", "gauge",
                  "sendInvoice and refundPayment calls whose outcome is unknown, to settle by "
                  "hand (-1: the store could not say).",
                  (long long)g->unknown_outcomes);
    metrics_gauge(out, "seqr_gateway_store_ok", "gauge",
                  "1 while the database works, 0 after a failed write or fdatasync.",
                  g->store_ok ? 1 : 0);
    metrics_gauge(out, "seqr_gateway_health", "gauge",
                  "The /healthz verdict: 0 ok, 1 degraded, 2 failed.", (long long)g->health_state);
    metrics_render_histograms(out);
}
