/* store/pg/events.c — the events outbox on PostgreSQL: the feed's reads and
 * the webhook worker's delivery state, with the same rules as
 * store/events.c (see store.h). Several gateways share the outbox: a due
 * event is claimed by the gateway that will deliver it (claimed_by, valid
 * while that gateway lives), so each is delivered by one; ids are given
 * after commit, in batches (schema.c, number.c), so a feed cursor never
 * passes an event still to come, and everything here reads numbered events
 * only. Wake-ups come from listen.c. */
#include "store/pg/pg.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/private.h"

#define STORE_PG_EVENT_COLUMNS                                                                     \
    "e.id, e.type, e.invoice_id, coalesce(e.refund_id, 0), e.at, e.data, e.state, e.attempts,"     \
    " e.next_at"

/* The data of an event as SQLite writes it: PostgreSQL's json text has
 * spaces ("a" : 1), SQLite's json_object() none; the same keys in the same
 * order either way. malloc'd; NULL for NULL. */
static char *store_pg_event_data(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return NULL;
    json_t *j = json_loads(PQgetvalue(r, row, col), JSON_DECODE_ANY, NULL);
    char *out = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY) : NULL;
    json_decref(j);
    return out != NULL ? out : store_pg_dup(r, row, col);
}

/* Hands every row of r to fn until it says stop; with_urls reads columns 9
 * and 10. */
static void store_pg_each_event(const PGresult *r, bool with_urls, store_event_fn fn, void *ud)
{
    for (int row = 0; row < PQntuples(r); row++) {
        store_event ev;
        memset(&ev, 0, sizeof ev);
        ev.id = store_pg_get_i64(r, row, 0);
        store_pg_copy(r, row, 1, ev.type, sizeof ev.type);
        ev.invoice_id = store_pg_get_i64(r, row, 2);
        ev.refund_id = store_pg_get_i64(r, row, 3);
        ev.at = store_pg_get_i64(r, row, 4);
        ev.data = store_pg_event_data(r, row, 5);
        store_pg_copy(r, row, 6, ev.state, sizeof ev.state);
        ev.attempts = (int)store_pg_get_i64(r, row, 7);
        ev.next_at = store_pg_get_i64(r, row, 8);
        if (with_urls) {
            ev.webhook_url = store_pg_dup(r, row, 9);
            ev.notification_url = store_pg_dup(r, row, 10);
        }
        bool go_on = fn(&ev, ud);
        store_event_clear(&ev);
        if (!go_on)
            break;
    }
}

/* Runs a query of events and hands its rows to fn (outside the connection). */
static store_err store_pg_events_query(store *st, const char *sql, int n, const char *const *params,
                                       bool with_urls, store_event_fn fn, void *ud)
{
    store_pg_acquire(st);
    store_err e;
    PGresult *r = store_pg_exec(st, sql, n, params, &e);
    store_pg_release(st);
    if (r != NULL)
        store_pg_each_event(r, with_urls, fn, ud);
    PQclear(r);
    return e;
}

store_err store_pg_events_after(store *st, int64_t after, int64_t invoice_id, int limit,
                                store_event_fn fn, void *ud)
{
    char a[24], l[24], inv[24];
    const char *p[] = {store_pg_i64(a, after), store_pg_i64(l, limit),
                       store_pg_i64(inv, invoice_id)};
    /* Rows without an id yet (not numbered) are not seen here. */
    if (invoice_id > 0)
        return store_pg_events_query(st,
                                     "SELECT " STORE_PG_EVENT_COLUMNS " FROM events e"
                                     " WHERE e.invoice_id = $3::bigint AND e.id > $1::bigint"
                                     " AND e.id IS NOT NULL"
                                     " ORDER BY e.id LIMIT $2::bigint",
                                     3, p, false, fn, ud);
    return store_pg_events_query(st,
                                 "SELECT " STORE_PG_EVENT_COLUMNS " FROM events e"
                                 " WHERE e.id > $1::bigint ORDER BY e.id LIMIT $2::bigint",
                                 2, p, false, fn, ud);
}

/* Runs a query whose one row holds int64 columns into out[0..n-1]. */
static store_err store_pg_query_i64(store *st, const char *sql, int64_t *out, int n)
{
    store_pg_acquire(st);
    store_err e;
    PGresult *r = store_pg_exec(st, sql, 0, NULL, &e);
    if (r != NULL && PQntuples(r) == 1 && PQnfields(r) == n)
        for (int i = 0; i < n; i++)
            out[i] = store_pg_get_i64(r, 0, i);
    else if (e == STORE_OK)
        e = STORE_IO;
    PQclear(r);
    store_pg_release(st);
    return e;
}

store_err store_pg_events_last_id(store *st, int64_t *id)
{
    *id = 0;
    return store_pg_query_i64(st, "SELECT coalesce(max(id), 0) FROM events", id, 1);
}

store_err store_pg_events_due(store *st, int64_t now, int limit, store_event_fn fn, void *ud)
{
    /* The due rule of SQLite (oldest pending event of each invoice, due by
     * now, never tried ones first), and a claim: only events nobody else
     * alive holds, taken for this instance in the same statement. SKIP
     * LOCKED: a row another gateway is claiming right now is its own. The
     * earlier-pending test keeps two events of one invoice from being out
     * at once across gateways, as webhook.c does within one: the next
     * event is due only once the earlier one ended (its state moved on). */
    char now_s[24], lim[24], me[24], ttl[24];
    const char *p[] = {store_pg_i64(now_s, now), store_pg_i64(lim, limit),
                       store_pg_i64(me, st->pg->instance),
                       store_pg_i64(ttl, STORE_PG_LEASE_TTL_MS)};
    return store_pg_events_query(
        st,
        "WITH c AS (SELECT e.seq FROM events e WHERE e.state = 'pending'"
        " AND e.next_at <= $1::bigint AND e.id IS NOT NULL"
        " AND (e.claimed_by = 0 OR e.claimed_by = $3::bigint OR e.claimed_by IN " STORE_PG_DEAD ")"
        " AND NOT EXISTS(SELECT 1 FROM events p WHERE p.state = 'pending'"
        "  AND p.invoice_id = e.invoice_id AND p.id < e.id AND p.id IS NOT NULL)"
        " ORDER BY e.next_at, e.id LIMIT $2::bigint FOR UPDATE OF e SKIP LOCKED),"
        " u AS (UPDATE events e SET claimed_by = $3::bigint,"
        " claim_until = " STORE_PG_NOW " + $4::bigint FROM c, invoices i"
        " WHERE e.seq = c.seq AND i.id = e.invoice_id RETURNING " STORE_PG_EVENT_COLUMNS ","
        " i.doc::json ->> 'webhookUrl' AS webhook_url,"
        " i.doc::json ->> 'notificationUrl' AS notification_url)"
        " SELECT * FROM u e ORDER BY e.next_at, e.id",
        4, p, true, fn, ud);
}

store_err store_pg_event_attempt(store *st, int64_t event_id, const char *url, int http_status,
                                 int64_t latency_ms, const char *error, const char *state,
                                 int64_t next_at)
{
    char id[24], now_s[24], status_s[24], lat[24], next_s[24];
    const char *pa[] = {store_pg_i64(id, event_id),          url,
                        store_pg_i64(now_s, store_now_ms()), store_pg_i64(status_s, http_status),
                        store_pg_i64(lat, latency_ms),       error ? error : ""};
    const char *ps[] = {state, store_pg_i64(next_s, next_at), now_s, id};
    store_err e = store_pg_tx_begin(st);
    if (e != STORE_OK)
        return e;
    /* Not durable on its own, as with SQLite (store.h). */
    e = store_pg_run(st, "SET LOCAL synchronous_commit = off", 0, NULL);
    if (e == STORE_OK)
        e = store_pg_run(st,
                         "INSERT INTO delivery_attempts(event_id, url, at, http_status,"
                         " latency_ms, error) VALUES($1::bigint, $2, $3::bigint, $4::integer,"
                         " $5::bigint, $6)",
                         6, pa);
    /* The attempt ended: the claim goes, and a retry may be anyone's. */
    if (e == STORE_OK)
        e = store_pg_run(st,
                         "UPDATE events SET state = $1, attempts = attempts + 1,"
                         " next_at = $2::bigint, done_at = CASE WHEN $1 = 'pending' THEN 0"
                         " ELSE $3::bigint END, claimed_by = 0, claim_until = 0"
                         " WHERE id = $4::bigint",
                         4, ps);
    return store_pg_tx_end(st, e);
}

/* Runs an UPDATE of one event ($1 = now, $2 = id); STORE_NOT_FOUND when no row. */
static store_err store_pg_event_update(store *st, const char *sql, int64_t event_id)
{
    char now_s[24], id[24];
    const char *p[] = {store_pg_i64(now_s, store_now_ms()), store_pg_i64(id, event_id)};
    store_pg_acquire(st);
    store_err e = store_pg_update(st, sql, 2, p);
    store_pg_release(st);
    return e;
}

store_err store_pg_event_skip(store *st, int64_t event_id)
{
    /* Not durable (one round trip, no WAL flush of its own): the webhook
     * sender skips every event without a URL, most of them one per POST
     * /invoices, and a skip lost in a crash leaves the event pending, to be
     * skipped again. */
    char now_s[24], id[24];
    const char *p[] = {store_pg_i64(now_s, store_now_ms()), store_pg_i64(id, event_id)};
    const store_pg_step steps[] = {
        {"BEGIN", 0, NULL},
        {"SET LOCAL synchronous_commit = off", 0, NULL},
        {"UPDATE events SET state = 'skipped', done_at = $1::bigint, claimed_by = 0,"
         " claim_until = 0 WHERE id = $2::bigint AND state = 'pending'",
         2, p},
        {"COMMIT", 0, NULL},
    };
    store_pg_acquire(st);
    store_err e;
    PQclear(store_pg_exec_steps(st, steps, 4, 3, &e));
    store_pg_release(st);
    return e;
}

store_err store_pg_set_delivery(store *st, bool can_sign, bool default_url, bool *changed)
{
    /* One row for every gateway of the database: the last to start says.
     * Durable, as every write of the store by default: events written after
     * it follow it. */
    const char *p[] = {can_sign ? "true" : "false", default_url ? "true" : "false"};
    store_pg_acquire(st);
    store_err e = store_pg_update(st,
                                  "INSERT INTO webhook_config AS c(id, can_sign, default_url)"
                                  " VALUES(1, $1::boolean, $2::boolean) ON CONFLICT (id) DO UPDATE"
                                  " SET can_sign = $1::boolean, default_url = $2::boolean"
                                  " WHERE c.can_sign <> $1::boolean OR c.default_url <> $2::boolean",
                                  2, p);
    store_pg_release(st);
    *changed = e == STORE_OK;
    return e == STORE_NOT_FOUND ? STORE_OK : e;
}

store_err store_pg_event_redeliver(store *st, int64_t event_id)
{
    /* The claim stays: a gateway delivering it now goes on holding it (and
     * takes it again when due), so no second gateway sends it meanwhile. */
    return store_pg_event_update(st,
                                 "UPDATE events SET state = 'pending', next_at = 0, done_at = 0"
                                 " WHERE id = $2::bigint AND $1::bigint > 0",
                                 event_id);
}

store_err store_pg_events_backlog(store *st, int64_t *count, int64_t *oldest_at)
{
    int64_t v[2] = {0, 0};
    store_err e = store_pg_query_i64(
        st,
        /* Numbered rows through events_due, the others through
         * events_unnumbered (schema.c, migration 6). */
        "SELECT count(*), coalesce(min(at), 0) FROM (SELECT at FROM events"
        " WHERE state = 'pending' AND id IS NOT NULL UNION ALL SELECT at FROM events"
        " WHERE id IS NULL AND state = 'pending') p",
        v, 2);
    *count = v[0];
    *oldest_at = v[1];
    return e;
}

store_err store_pg_delivery_list(store *st, int limit, char **json)
{
    char lim[24];
    const char *p[] = {store_pg_i64(lim, limit)};
    return store_pg_query_text(
        st,
        "SELECT coalesce(json_agg(j ORDER BY ok, aid DESC), '[]'::json)::text FROM ("
        " SELECT json_build_object('eventId', a.event_id, 'type', e.type, 'url', a.url,"
        " 'at', a.at, 'httpStatus', nullif(a.http_status, 0), 'latencyMs', a.latency_ms,"
        " 'error', nullif(a.error, ''), 'eventState', e.state) AS j,"
        " (a.http_status BETWEEN 200 AND 299) AS ok, a.id AS aid"
        " FROM (SELECT * FROM delivery_attempts ORDER BY id DESC LIMIT 10000) a"
        " JOIN events e ON e.id = a.event_id"
        " ORDER BY 2, 3 DESC LIMIT $1::bigint) s",
        1, p, json);
}
