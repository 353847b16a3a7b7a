/* store/pg/invoices.c — invoice rows on PostgreSQL: the send intent and its
 * outcome, status answers and history, the start-up and /healthz queries.
 * The same rules as store/invoices.c (see store.h). */
#include "store/pg/pg.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/private.h"

void store_pg_copy(const PGresult *r, int row, int col, char *dst, size_t dstlen)
{
    snprintf(dst, dstlen, "%s", PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col));
}

char *store_pg_dup(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return NULL;
    char *d = strdup(PQgetvalue(r, row, col));
    if (d == NULL)
        abort();
    return d;
}

void store_pg_read_invoice(const PGresult *r, int row, store_invoice *inv)
{
    memset(inv, 0, sizeof *inv);
    inv->id = store_pg_get_i64(r, row, 0);
    store_pg_copy(r, row, 1, inv->reference, sizeof inv->reference);
    store_pg_copy(r, row, 2, inv->send_state, sizeof inv->send_state);
    inv->status = seqr_status_parse(PQgetvalue(r, row, 3));
    inv->version = store_pg_get_i64(r, row, 4);
    store_pg_copy(r, row, 5, inv->qr_code, sizeof inv->qr_code);
    store_pg_copy(r, row, 6, inv->currency, sizeof inv->currency);
    inv->total = store_pg_get_i64(r, row, 7);
    store_pg_copy(r, row, 8, inv->terminal_id, sizeof inv->terminal_id);
    store_pg_copy(r, row, 9, inv->payment_mode, sizeof inv->payment_mode);
    store_pg_copy(r, row, 10, inv->client_reference, sizeof inv->client_reference);
    store_pg_copy(r, row, 11, inv->ers_reference, sizeof inv->ers_reference);
    inv->doc_json = store_pg_dup(r, row, 12);
    inv->receipt_json = store_pg_dup(r, row, 13);
    inv->receipt_submitted = store_pg_get_i64(r, row, 14) != 0;
    inv->polling_stopped = store_pg_get_i64(r, row, 15) != 0;
    store_pg_copy(r, row, 16, inv->last_error, sizeof inv->last_error);
    inv->created_at = store_pg_get_i64(r, row, 17);
    inv->updated_at = store_pg_get_i64(r, row, 18);
    inv->expires_at = store_pg_get_i64(r, row, 19);
    inv->paid_at = store_pg_get_i64(r, row, 20);
    store_pg_copy(r, row, 21, inv->notify_token, sizeof inv->notify_token);
    inv->refunded = store_pg_get_i64(r, row, 22);
    inv->has_refunds = strcmp(PQgetvalue(r, row, 23), "t") == 0;
    store_pg_copy(r, row, 24, inv->pay_token, sizeof inv->pay_token);
    store_pg_copy(r, row, 25, inv->pay_secret, sizeof inv->pay_secret);
    inv->issued_at = store_pg_get_i64(r, row, 26);
}

void store_pg_each_invoice(const PGresult *r, store_invoice_fn fn, void *ud)
{
    for (int row = 0; row < PQntuples(r); row++) {
        store_invoice inv;
        store_pg_read_invoice(r, row, &inv);
        bool go_on = fn(&inv, ud);
        store_invoice_clear(&inv);
        if (!go_on)
            break;
    }
}

store_err store_pg_invoice_begin(store *st, store_invoice *inv)
{
    char total[24], now_s[24], expires[24], owner[24];
    int64_t now = store_now_ms();
    const char *p[] = {inv->currency,
                       store_pg_i64(total, inv->total),
                       inv->terminal_id,
                       inv->payment_mode,
                       inv->client_reference,
                       inv->doc_json ? inv->doc_json : "{}",
                       store_pg_i64(now_s, now),
                       store_pg_i64(expires, inv->expires_at),
                       inv->notify_token,
                       store_pg_i64(owner, st->pg->instance),
                       inv->pay_token,
                       inv->pay_secret,
                       inv->client_invoice_id};
    /* Not durable, as with SQLite (store.h): the outcome's durable commit
     * flushes the server's WAL up to and past it. One round trip for the
     * transaction (store_pg_exec_steps), not one per statement. */
    const store_pg_step steps[] = {
        {"BEGIN", 0, NULL},
        {"SET LOCAL synchronous_commit = off", 0, NULL},
        {"INSERT INTO invoices(send_state, status, currency, total, terminal_id,"
         " payment_mode, client_reference, doc, created_at, updated_at,"
         " expires_at, notify_token, owner, pay_token, pay_secret, client_invoice_id)"
         " VALUES('sending', 'ISSUED',"
         " $1, $2::bigint, $3, $4, $5, $6, $7::bigint, $7::bigint, $8::bigint, $9,"
         " $10::bigint, $11, $12, coalesce($13::text, $6::text::json ->> 'clientInvoiceId')) "
         "RETURNING id",
         13, p},
        {"COMMIT", 0, NULL},
    };
    store_pg_acquire(st);
    store_err e;
    PGresult *r = store_pg_exec_steps(st, steps, 4, 2, &e);
    if (r != NULL)
        inv->id = store_pg_get_i64(r, 0, 0);
    PQclear(r);
    store_pg_release(st);
    if (e == STORE_OK) {
        inv->created_at = inv->updated_at = now;
        snprintf(inv->send_state, sizeof inv->send_state, "%s", STORE_SEND_SENDING);
    }
    return e;
}

static store_err store_pg_history_add(store *st, int64_t invoice_id, const char *status,
                                      int64_t version, int64_t at)
{
    char id[24], v[24], at_s[24];
    const char *p[] = {store_pg_i64(id, invoice_id), status, store_pg_i64(v, version),
                       store_pg_i64(at_s, at)};
    return store_pg_run(st,
                        "INSERT INTO status_history(invoice_id, status, version, at)"
                        " VALUES($1::bigint, $2, $3::bigint, $4::bigint)",
                        4, p);
}

/* A durable commit of a write that changes nothing: returns once the
 * server's WAL is flushed past every commit made before it. */
static store_err store_pg_flush(store *st)
{
    char id[24];
    const char *p[] = {store_pg_i64(id, st->pg->instance)};
    store_pg_acquire(st);
    store_pg_internal(true);
    store_err e = store_pg_run(
        st, "UPDATE gateway_instances SET heartbeat_at = heartbeat_at WHERE id = $1::bigint", 1, p);
    store_pg_internal(false);
    store_pg_release(st);
    return e;
}

store_err store_pg_invoice_sent(store *st, store_invoice *inv, const char *reference,
                                const char *qr_code)
{
    char now_s[24], id[24], owner[24], ttl[24];
    int64_t now = store_now_ms();
    /* The gateway that sent it polls it first: it holds the lease. */
    const char *p[] = {reference,
                       qr_code,
                       store_pg_i64(now_s, now),
                       store_pg_i64(id, inv->id),
                       store_pg_i64(owner, st->pg->instance),
                       store_pg_i64(ttl, STORE_PG_LEASE_TTL_MS)};
    /* One transaction in one round trip: the outcome with issued_at (its
     * first history entry, schema 8) and, by the trigger, its invoice.created. An intent of ours
     * that another gateway settled as unknown meanwhile (it counted this one dead: a stall of more
     * than STORE_PG_LEASE_TTL_MS) takes the outcome too: this gateway knows it, and the shop gets
     * its invoice instead of a 404. It commits without waiting for its own WAL flush: the numbering
     * run this call then waits for (the POST's event in the feed) commits durably after it, and
     * that flush makes the outcome durable too, before the answer, with one flush wait where there
     * were two (store_pg_events_number). */
    const store_pg_step steps[] = {
        {"BEGIN", 0, NULL},
        {"SET LOCAL synchronous_commit = off", 0, NULL},
        {"UPDATE invoices SET reference = $1, qr_code = $2,"
         " send_state = 'sent', version = 0, updated_at = $3::bigint, issued_at = $3::bigint,"
         " last_error = '', lease_owner = $5::bigint, lease_until = " STORE_PG_NOW " + $6::bigint"
         " WHERE id = $4::bigint AND (send_state = 'sending'"
         " OR (send_state = 'unknown' AND owner = $5::bigint))",
         6, p},
        {"COMMIT", 0, NULL},
    };
    store_pg_acquire(st);
    store_err e;
    PGresult *r = store_pg_exec_steps(st, steps, 4, 2, &e);
    if (r != NULL && strcmp(PQcmdTuples(r), "0") == 0)
        e = STORE_NOT_FOUND;
    PQclear(r);
    store_pg_release(st);
    /* invoice.created in the feed; when the run failed, a durable commit of
     * our own flushes the outcome instead. */
    if (e == STORE_OK && !store_pg_events_number(st))
        e = store_pg_flush(st);
    if (e == STORE_OK) {
        snprintf(inv->reference, sizeof inv->reference, "%s", reference);
        snprintf(inv->qr_code, sizeof inv->qr_code, "%s", qr_code);
        snprintf(inv->send_state, sizeof inv->send_state, "%s", STORE_SEND_SENT);
        inv->status = SEQR_STATUS_ISSUED;
        inv->version = 0;
        inv->updated_at = inv->issued_at = now;
    }
    return e;
}

store_err store_pg_invoice_send_failed(store *st, int64_t id, const char *send_state,
                                       const char *error)
{
    char now_s[24], id_s[24];
    const char *p[] = {send_state, error, store_pg_i64(now_s, store_now_ms()),
                       store_pg_i64(id_s, id)};
    store_pg_acquire(st);
    store_err e = store_pg_run(st,
                               "UPDATE invoices SET send_state = $1, last_error = $2,"
                               " updated_at = $3::bigint WHERE id = $4::bigint",
                               4, p);
    store_pg_release(st);
    if (e == STORE_OK)
        store_pg_events_number(st);
    return e;
}

/* Reads the one invoice sql (STORE_PG_INVOICE_COLUMNS, $1 = param) finds. */
static store_err store_pg_invoice_get_by(store *st, const char *sql, const char *param,
                                         store_invoice *out)
{
    memset(out, 0, sizeof *out);
    const char *p[] = {param};
    store_pg_acquire(st);
    store_err e;
    PGresult *r = store_pg_exec(st, sql, 1, p, &e);
    if (r != NULL && PQntuples(r) == 1)
        store_pg_read_invoice(r, 0, out);
    else if (e == STORE_OK)
        e = STORE_NOT_FOUND;
    PQclear(r);
    store_pg_release(st);
    return e;
}

store_err store_pg_invoice_get(store *st, const char *reference, int64_t id, store_invoice *out)
{
    char id_s[24];
    if (reference != NULL)
        return store_pg_invoice_get_by(
            st, "SELECT " STORE_PG_INVOICE_COLUMNS " FROM invoices i WHERE i.reference = $1",
            reference, out);
    return store_pg_invoice_get_by(
        st, "SELECT " STORE_PG_INVOICE_COLUMNS " FROM invoices i WHERE i.id = $1::bigint",
        store_pg_i64(id_s, id), out);
}

store_err store_pg_invoice_get_pay_token(store *st, const char *token, store_invoice *out)
{
    return store_pg_invoice_get_by(st,
                                   "SELECT " STORE_PG_INVOICE_COLUMNS
                                   " FROM invoices i WHERE i.pay_token = $1 AND i.pay_token <> ''",
                                   token, out);
}

static bool store_pg_status_final(const char *status)
{
    return strcmp(status, "PAID") == 0 || strcmp(status, "CANCELED") == 0 ||
           strcmp(status, "FAILED") == 0;
}

store_err store_pg_invoice_set_status(store *st, const char *reference, const char *status,
                                      int64_t version, const char *ers_reference,
                                      const char *receipt_json, bool *changed)
{
    if (changed)
        *changed = false;
    store_err e = store_pg_tx_begin(st);
    if (e != STORE_OK)
        return e;
    /* FOR UPDATE: two gateways answering for the same invoice (a lease
     * handed over mid-poll) decide one after the other. */
    const char *pr[] = {reference};
    PGresult *r = store_pg_exec(
        st, "SELECT id, status, version FROM invoices WHERE reference = $1 FOR UPDATE", 1, pr, &e);
    if (r == NULL)
        return store_pg_tx_end(st, e);
    if (PQntuples(r) != 1) {
        PQclear(r);
        return store_pg_tx_end(st, STORE_NOT_FOUND);
    }
    int64_t id = store_pg_get_i64(r, 0, 0);
    char was[40];
    store_pg_copy(r, 0, 1, was, sizeof was);
    int64_t was_version = store_pg_get_i64(r, 0, 2);
    PQclear(r);
    bool differs = strcmp(was, status) != 0 || was_version != version;
    bool stale = version < was_version || (store_pg_status_final(was) && strcmp(was, status) != 0);
    if (stale)
        return store_pg_tx_end(st, STORE_CONFLICT);
    if (!differs && ers_reference == NULL && receipt_json == NULL)
        return store_pg_tx_end(st, STORE_OK);
    int64_t now = store_now_ms();
    char v[24], now_s[24], id_s[24];
    const char *p[] = {status,       store_pg_i64(v, version), ers_reference ? ers_reference : "",
                       receipt_json, store_pg_i64(now_s, now), store_pg_i64(id_s, id)};
    e = store_pg_run(st,
                     "UPDATE invoices SET status = $1, version = $2::bigint,"
                     " ers_reference = CASE WHEN $3 = '' THEN ers_reference ELSE $3 END,"
                     " receipt = coalesce($4, receipt), updated_at = $5::bigint,"
                     " paid_at = CASE WHEN $1 = 'PAID' AND paid_at = 0 THEN $5::bigint"
                     " ELSE paid_at END WHERE id = $6::bigint",
                     6, p);
    if (e == STORE_OK && differs) {
        e = store_pg_history_add(st, id, status, version, now);
        if (changed)
            *changed = true;
    }
    e = store_pg_tx_end(st, e);
    if (e == STORE_OK)
        store_pg_events_number(st);
    return e;
}

store_err store_pg_invoice_history(store *st, int64_t invoice_id, char **json)
{
    char id[24];
    const char *p[] = {store_pg_i64(id, invoice_id)};
    /* As with SQLite: issued_at is the ISSUED entry (schema 8), first. */
    return store_pg_query_text(st,
                               "SELECT coalesce(json_agg(json_build_object('status', status,"
                               " 'version', version, 'at', at) ORDER BY k, id), '[]'::json)::text"
                               " FROM (SELECT 0 AS k, 0::bigint AS id, 'ISSUED' AS status,"
                               " 0::bigint AS version, issued_at AS at FROM invoices"
                               " WHERE id = $1::bigint AND issued_at > 0 UNION ALL"
                               " SELECT 1, id, status, version, at FROM status_history"
                               " WHERE invoice_id = $1::bigint) h",
                               1, p, json);
}

store_err store_pg_pending(store *st, store_invoice_fn fn, void *ud)
{
    /* Several gateways: start-up loads nothing; store_lease_sync() hands out
     * each gateway's share within its first call. */
    (void)st;
    (void)fn;
    (void)ud;
    return STORE_OK;
}

store_err store_pg_counts(store *st, int64_t *unknown)
{
    store_pg_acquire(st);
    store_err e;
    PGresult *r =
        store_pg_exec(st,
                      "SELECT (SELECT count(*) FROM invoices WHERE send_state = 'unknown')"
                      " + (SELECT count(*) FROM refunds WHERE state = 'unknown')",
                      0, NULL, &e);
    if (r != NULL)
        *unknown = store_pg_get_i64(r, 0, 0);
    PQclear(r);
    store_pg_release(st);
    return e;
}

store_err store_pg_invoice_list(store *st, const char *status, int64_t before_id, int limit,
                                store_invoice_fn fn, void *ud, int64_t *last_id, bool *more)
{
    *last_id = 0;
    *more = false;
    char before[24], lim[24];
    const char *p[] = {store_pg_i64(before, before_id > 0 ? before_id : INT64_MAX),
                       store_pg_i64(lim, (int64_t)limit + 1), status};
    store_pg_acquire(st);
    store_err e;
    PGresult *r = store_pg_exec(
        st,
        status ? "SELECT " STORE_PG_INVOICE_COLUMNS " FROM invoices i WHERE i.send_state = 'sent'"
                 " AND i.id < $1::bigint AND i.status = $3"
                 " ORDER BY i.id DESC LIMIT $2::bigint"
               : "SELECT " STORE_PG_INVOICE_COLUMNS " FROM invoices i WHERE i.send_state = 'sent'"
                 " AND i.id < $1::bigint ORDER BY i.id DESC"
                 " LIMIT $2::bigint",
        status ? 3 : 2, p, &e);
    store_pg_release(st);
    if (r == NULL)
        return e;
    int rows = PQntuples(r);
    for (int row = 0; row < rows; row++) {
        if (row == limit) {
            *more = true;
            break;
        }
        store_invoice inv;
        store_pg_read_invoice(r, row, &inv);
        *last_id = inv.id;
        bool go_on = fn(&inv, ud);
        store_invoice_clear(&inv);
        if (!go_on)
            break;
    }
    PQclear(r);
    return STORE_OK;
}

store_err store_pg_update_ref(store *st, const char *sql, const char *reference, const char *text1,
                              const int64_t *int2)
{
    char now[24], i2[24];
    const char *p[] = {reference, store_pg_i64(now, store_now_ms()), text1 ? text1 : "",
                       int2 ? store_pg_i64(i2, *int2) : "0"};
    store_pg_acquire(st);
    store_err e = store_pg_update(st, sql, 4, p);
    store_pg_release(st);
    if (e == STORE_OK)
        store_pg_events_number(st);
    return e;
}

store_err store_pg_receipts_due(store *st, store_invoice_fn fn, void *ud)
{
    /* Receipts of the invoices this gateway holds or held last: with
     * several gateways, each sends those its poller saw PAID. */
    char me[24];
    const char *p[] = {store_pg_i64(me, st->pg->instance)};
    store_pg_acquire(st);
    store_err e;
    PGresult *r = store_pg_exec(st,
                                "SELECT " STORE_PG_INVOICE_COLUMNS
                                " FROM invoices i WHERE i.send_state = 'sent' AND i.status = 'PAID'"
                                " AND i.receipt_submitted = 0 AND (i.lease_owner = $1::bigint"
                                " OR i.lease_owner = 0 OR i.lease_owner IN " STORE_PG_DEAD ")"
                                " ORDER BY i.id",
                                1, p, &e);
    store_pg_release(st);
    if (r != NULL)
        store_pg_each_invoice(r, fn, ud);
    PQclear(r);
    return e;
}
