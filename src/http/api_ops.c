/* http/api_ops.c — the operator's endpoints: /healthz, /metrics, POST
 * /admin/backup and the outcomes in doubt (/unknown-outcomes). See docs/openapi.yaml. */
#include "http/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "health.h"
#include "metrics.h"

/* --- endpoints --- */

void api_healthz(const http_context *ctx, const http_request *req, const char *const *a,
                 http_response *resp)
{
    poller_stats ps;
    poller_get_stats(ctx->poller, &ps);
    int64_t unknown = 0;
    bool db_ok = service_counts(ctx->svc, &unknown);
    health_report hr;
    health_assess_poller(&ps, db_ok, unknown, &hr);
    api_events_assess(ctx, &hr);
    json_t *o = json_object();
    json_object_set_new(o, "status", json_string(health_state_name(hr.state)));
    json_t *reasons = json_array();
    for (int i = 0; i < hr.nreasons; i++)
        json_array_append_new(reasons, json_pack("{s:s,s:s}", "code", hr.reasons[i].code, "message",
                                                 hr.reasons[i].message));
    json_object_set_new(o, "reasons", reasons);
    json_object_set_new(o, "version", json_string(SEQR_VERSION));
    json_object_set_new(o, "uptimeSeconds",
                        json_integer((service_now_ms() - ctx->started_ms) / 1000));
    json_object_set_new(o, "database", json_string(db_ok ? "ok" : "failing"));
    json_object_set_new(o, "pendingInvoices", json_integer(ps.pending));
    json_object_set_new(o, "pollsInFlight", json_integer(ps.in_flight));
    json_object_set_new(o, "polls", json_integer((json_int_t)ps.polls));
    json_object_set_new(o, "pollErrors", json_integer((json_int_t)ps.errors));
    json_object_set_new(o, "seqrReachable", json_boolean(ps.seqr_reachable));
    json_t *gap = json_object();
    json_object_set_new(gap, "p50Ms", json_integer(ps.gap_p50_ms));
    json_object_set_new(gap, "p99Ms", json_integer(ps.gap_p99_ms));
    json_object_set_new(gap, "maxMs", json_integer(ps.gap_max_ms));
    json_object_set_new(gap, "samples", json_integer((json_int_t)ps.gap_samples));
    json_object_set_new(gap, "openMaxMs", json_integer(ps.gap_open_max_ms));
    json_object_set_new(gap, "alarm", json_boolean(ps.gap_alarm));
    json_object_set_new(o, "pollGap", gap);
    json_object_set_new(o, "unknownOutcomes", json_integer(unknown));
    api_events_health(ctx, o);
    http_respond_json(resp, hr.state == HEALTH_FAILED ? 503 : 200, o);
}

/* Prometheus text format; behind the API key like every endpoint but
 * /healthz. */
void api_metrics(const http_context *ctx, const http_request *req, const char *const *a,
                 http_response *resp)
{
    poller_stats ps;
    poller_get_stats(ctx->poller, &ps);
    int64_t unknown = 0;
    bool db_ok = service_counts(ctx->svc, &unknown);
    health_report hr;
    health_assess_poller(&ps, db_ok, unknown, &hr);
    api_events_assess(ctx, &hr);
    metrics_gauges g = {
        .version = SEQR_VERSION,
        .start_time_s = ctx->started_ms / 1000,
        .pending = ps.pending,
        .in_flight = ps.in_flight,
        .polls = ps.polls,
        .poll_errors = ps.errors,
        .seqr_reachable = ps.seqr_reachable,
        .unknown_outcomes = db_ok ? unknown : -1,
        .store_ok = db_ok,
        .health_state = (int)hr.state,
    };
    resp->status = 200;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    metrics_render(&g, &resp->raw);
    api_events_metrics(ctx, &resp->raw);
}

/* An online backup by the daemon's own connection; the daemon picks the file. */
void api_backup(const http_context *ctx, const http_request *req, const char *const *a,
                http_response *resp)
{
    backup_result br;
    buf err = BUF_INIT;
    if (ctx->backups && service_store_is_postgresql(ctx->svc)) {
        /* Nothing changes; the operator needs another tool, not a retry. */
        http_respond_fail(resp, 409, "not_supported_on_postgresql", NULL,
                          "the store is a PostgreSQL database: back it up with pg_dump or a "
                          "base backup (pg_basebackup), not with POST /admin/backup");
    } else if (!ctx->backups || !service_backup(ctx->svc, &br, &err)) {
        http_respond_fail(resp, 500, "backup_failed", NULL,
                          err.len > 0 ? buf_cstr(&err) : "no store to back up");
    } else {
        http_respond_json(resp, 201,
                          json_pack("{s:s,s:I,s:I,s:I}", "file", br.file, "pages",
                                    (json_int_t)br.pages, "bytes", (json_int_t)br.bytes,
                                    "elapsedMs", (json_int_t)br.elapsed_ms));
    }
    buf_free(&err);
}

/* Settles an invoice whose sendInvoice outcome is unknown (the operator's
 * reconciliation): {"outcome": "done", "invoiceReference"} or {"outcome":
 * "failed"}; answers {"id", "outcome", "invoiceReference"}. */
void api_invoice_resolve(const http_context *ctx, const http_request *req, const char *const *a,
                         http_response *resp)
{
    static const char *const allowed[] = {"outcome", "invoiceReference", NULL};
    int64_t id;
    if (!api_path_id(a[0], &id)) {
        char msg[120];
        snprintf(msg, sizeof msg, "the gateway has no invoice %.64s", a[0]);
        http_respond_fail(resp, 404, "not_found", NULL, msg);
        return;
    }
    json_t *body = api_body(req, resp, false);
    if (body == NULL)
        return;
    const char *reference = NULL;
    bool happened = false;
    api_error err;
    api_error_clear(&err);
    if (!api_only(body, allowed, resp) || !api_outcome(body, "invoice", &happened, resp) ||
        !api_string(body, "invoiceReference", false, 64, &reference, resp))
        goto cleanup;
    if (happened && reference == NULL) {
        http_respond_fail(resp, 400, "missing_field", "invoiceReference",
                          "invoiceReference (from SEQR's report) is required with \"done\"");
        goto cleanup;
    }
    if (!happened && reference != NULL) {
        http_respond_fail(resp, 422, "invalid_value", "invoiceReference",
                          "invoiceReference belongs to an invoice SEQR has (\"done\")");
        goto cleanup;
    }
    if (reference != NULL &&
        (reference[0] == '\0' ||
         reference[strspn(reference, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                     "abcdefghijklmnopqrstuvwxyz-_.")] != '\0')) {
        http_respond_fail(resp, 422, "invalid_value", "invoiceReference",
                          "invoiceReference must be 1 to 64 letters, digits, '-', '_' or '.'");
        goto cleanup;
    }
    if (!service_invoice_resolve(ctx->svc, id, reference, &err)) {
        http_respond_error(resp, &err);
        goto cleanup;
    }
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(id));
    json_object_set_new(o, "outcome", json_string(happened ? "done" : "failed"));
    json_object_set_new(o, "invoiceReference", reference ? json_string(reference) : json_null());
    http_respond_json(resp, 200, o);
cleanup:
    json_decref(body);
}

/* Every invoice and refund whose outcome is unknown, for the operator. */
void api_unknown_outcomes(const http_context *ctx, const http_request *req, const char *const *a,
                          http_response *resp)
{
    api_error err;
    api_error_clear(&err);
    json_t *o = service_unknown_outcomes(ctx->svc, &err);
    if (o == NULL)
        http_respond_error(resp, &err);
    else
        http_respond_json(resp, 200, o);
}
