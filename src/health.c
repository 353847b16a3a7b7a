/* health.c — the ok/degraded/failed verdict; see health.h. */
#include "health.h"

#include <stdio.h>
#include <string.h>

#include "store.h"

static health_reason *health_add(health_report *r, health_state at_least, const char *code)
{
    if (r->state < at_least)
        r->state = at_least;
    if (r->nreasons >= HEALTH_MAX_REASONS)
        return NULL;
    health_reason *reason = &r->reasons[r->nreasons++];
    reason->code = code;
    reason->message[0] = '\0';
    return reason;
}

void health_assess(const health_input *in, health_report *out)
{
    memset(out, 0, sizeof *out);
    out->state = HEALTH_OK;
    health_reason *r;
    if (!in->store_ok && (r = health_add(out, HEALTH_FAILED, "store_failing")) != NULL)
        snprintf(r->message, sizeof r->message,
                 "the database fails: nothing can be recorded (see the log)");
    if (!in->seqr_reachable && (r = health_add(out, HEALTH_DEGRADED, "seqr_unreachable")) != NULL) {
        if (in->last_ok_ms > 0)
            snprintf(r->message, sizeof r->message,
                     "SEQR unreachable: polls fail, last good answer %llds ago",
                     (long long)((in->now_ms - in->last_ok_ms) / 1000));
        else
            snprintf(r->message, sizeof r->message,
                     "SEQR unreachable: polls fail, no good answer since start");
    }
    if (in->gap_samples > 0 && in->gap_p99_ms > HEALTH_GAP_P99_LIMIT_MS &&
        (r = health_add(out, HEALTH_DEGRADED, "poll_gap_high")) != NULL)
        snprintf(r->message, sizeof r->message,
                 "poll gap p99 %lld ms is over %d ms (SEQR reverses unseen payments after ~20 s)",
                 (long long)in->gap_p99_ms, HEALTH_GAP_P99_LIMIT_MS);
    /* Live, unlike the p99 of a finished window: an invoice unpolled for 15 s
     * has 5 s left before SEQR reverses its payment. */
    if (in->gap_alarm && (r = health_add(out, HEALTH_DEGRADED, "poll_gap_open")) != NULL)
        snprintf(r->message, sizeof r->message,
                 "an invoice has gone %lld ms without a poll (SEQR reverses unseen payments "
                 "after ~20 s)",
                 (long long)in->gap_open_max_ms);
    if (in->unknown_outcomes > 0 &&
        (r = health_add(out, HEALTH_DEGRADED, "unknown_outcomes")) != NULL)
        snprintf(r->message, sizeof r->message,
                 "%lld unknown outcome%s to settle (GET /unknown-outcomes)",
                 (long long)in->unknown_outcomes, in->unknown_outcomes == 1 ? "" : "s");
}

void health_assess_poller(const poller_stats *ps, bool store_ok, int64_t unknown_outcomes,
                          health_report *out)
{
    health_input in = {
        .store_ok = store_ok,
        .seqr_reachable = ps->seqr_reachable,
        .pending = ps->pending,
        .last_ok_ms = ps->last_ok_ms,
        .now_ms = store_now_ms(),
        .gap_p99_ms = ps->gap_p99_ms,
        .gap_samples = ps->gap_samples,
        .gap_open_max_ms = ps->gap_open_max_ms,
        .gap_alarm = ps->gap_alarm,
        .unknown_outcomes = unknown_outcomes,
    };
    health_assess(&in, out);
}

/* >>> events */
void health_assess_webhooks(int64_t backlog, int64_t oldest_age_ms, health_report *out)
{
    health_reason *r;
    if (backlog > 0 && oldest_age_ms > HEALTH_WEBHOOK_AGE_LIMIT_MS &&
        (r = health_add(out, HEALTH_DEGRADED, "webhook_backlog")) != NULL)
        snprintf(r->message, sizeof r->message,
                 "%lld webhook event%s undelivered, the oldest for %lld s "
                 "(GET /webhooks/deliveries)",
                 (long long)backlog, backlog == 1 ? "" : "s", (long long)(oldest_age_ms / 1000));
}
/* <<< events */

const char *health_state_name(health_state s)
{
    switch (s) {
    case HEALTH_OK:
        return "ok";
    case HEALTH_DEGRADED:
        return "degraded";
    case HEALTH_FAILED:
        return "failed";
    }
    return "failed";
}

void health_summary(const health_report *r, char *out, size_t n)
{
    if (n == 0)
        return;
    int used = snprintf(out, n, "%s", health_state_name(r->state));
    for (int i = 0; i < r->nreasons && used >= 0 && (size_t)used < n; i++)
        used += snprintf(out + used, n - (size_t)used, "%s%s", i == 0 ? ": " : "; ",
                         r->reasons[i].message);
}
