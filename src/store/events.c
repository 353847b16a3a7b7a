/* store/events.c — the events outbox: the hooks that tell when a committed
 * transaction wrote events (rows the schema's triggers insert, see
 * schema.c), the feed's reads and the webhook worker's delivery state. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#include "store/pg/pg.h"
#include "store/private.h"

static void store_events_update_hook(void *ud, int op, const char *db, const char *table,
                                     sqlite3_int64 rowid)
{
    store *st = ud;
    if (op == SQLITE_INSERT && strcmp(table, "events") == 0) {
        if (!st->event_written || rowid < st->event_first)
            st->event_first = rowid;
        if (!st->event_written || rowid > st->event_last)
            st->event_last = rowid;
        st->event_written = true;
    }
}

static void store_events_rollback_hook(void *ud)
{
    store *st = ud;
    st->event_written = false;
}

void store_events_hooks(store *st)
{
    sqlite3_update_hook(st->db, store_events_update_hook, st);
    sqlite3_rollback_hook(st->db, store_events_rollback_hook, st);
}

/* At most this many invoices are named to the hook; more: "any". */
#define STORE_EVENTS_HOOK_MAX 64
/* At most this many event rows are read; a transaction that wrote more
 * (a long poller round) names nobody: every waiter and the worker look. */
#define STORE_EVENTS_HOOK_ROWS 1024

static bool store_events_named(const int64_t *ids, size_t n, int64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

/* Reads the events the transaction wrote and tells the hook which invoices
 * they belong to, so that a waiter on one invoice is woken only by its own
 * (no herd), and whether any of them waits for a delivery. */
static void store_events_tell(store *st)
{
    /* Row by row, the invoices told apart here: a GROUP BY ran a sorter
     * (allocated and zeroed) for the one event of most transactions. */
    static const char sql[] = "SELECT invoice_id, state = 'pending' FROM events"
                              " WHERE id BETWEEN ? AND ? LIMIT ?";
    int64_t ids[STORE_EVENTS_HOOK_MAX];
    size_t n = 0, rows = 0;
    bool deliver = false, named = true;
    sqlite3_stmt *s = store_stmt(st, sql);
    int rc = SQLITE_ERROR;
    if (s != NULL) {
        sqlite3_bind_int64(s, 1, st->event_first);
        sqlite3_bind_int64(s, 2, st->event_last);
        sqlite3_bind_int(s, 3, STORE_EVENTS_HOOK_ROWS);
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            int64_t id = sqlite3_column_int64(s, 0);
            if (sqlite3_column_int(s, 1) != 0)
                deliver = true;
            if (named && !store_events_named(ids, n, id)) {
                if (n < STORE_EVENTS_HOOK_MAX)
                    ids[n++] = id;
                else
                    named = false;
            }
            rows++;
        }
        store_done(st, s);
    }
    named = named && rc == SQLITE_DONE && n > 0 && rows < STORE_EVENTS_HOOK_ROWS;
    if (!named)
        deliver = true; /* not all read: the worker looks */
    st->event_hook(st->event_hook_ud, named ? ids : NULL, named ? n : 0, deliver);
}

void store_events_committed(store *st)
{
    if (st->event_written && st->event_hook != NULL) {
        /* Every event written skipped and nobody waiting for one invoice:
         * nothing to tell apart, no read (8k instructions per POST /invoices
         * on a gateway without webhooks). */
        if (!st->events_may_pend && st->event_ids_wanted != NULL &&
            !st->event_ids_wanted(st->event_hook_ud))
            st->event_hook(st->event_hook_ud, NULL, 0, false);
        else
            store_events_tell(st);
    }
    st->event_written = false;
}

void store_set_event_hook(store *st, store_event_hook fn, store_event_ids_wanted wanted, void *ud)
{
    /* PostgreSQL: commits of every gateway reach the hook through LISTEN. */
    if (st->pg != NULL && fn != NULL && store_pg_listen_start(st) != STORE_OK)
        log_error("store: events committed by other gateways wake nobody here "
                  "(webhooks still go out within a second)");
    store_lock(st);
    st->event_hook = fn;
    st->event_ids_wanted = wanted;
    st->event_hook_ud = ud;
    store_unlock(st);
}

store_err store_set_delivery(store *st, bool can_sign, bool default_url, bool *changed)
{
    if (st->pg != NULL)
        return store_pg_set_delivery(st, can_sign, default_url, changed);
    /* One statement, as PostgreSQL's: the row is written only when it
     * differs (or was deleted by hand). */
    static const char sql[] =
        "INSERT INTO webhook_config(id, can_sign, default_url) VALUES(1, ?1, ?2)"
        " ON CONFLICT(id) DO UPDATE SET can_sign = ?1, default_url = ?2"
        " WHERE can_sign <> ?1 OR default_url <> ?2";
    *changed = false;
    store_err e = store_tx_begin(st);
    if (e != STORE_OK)
        return e;
    sqlite3_stmt *s = store_stmt(st, sql);
    if (s == NULL)
        return store_tx_finish(st, STORE_IO, false);
    sqlite3_bind_int(s, 1, can_sign ? 1 : 0);
    sqlite3_bind_int(s, 2, default_url ? 1 : 0);
    e = store_step_done(st, s);
    bool wrote = e == STORE_OK && sqlite3_changes(st->db) > 0;
    /* Durable: events written after this call follow it. */
    e = store_tx_end(st, e);
    *changed = e == STORE_OK && wrote;
    if (e == STORE_OK) {
        store_lock(st);
        st->events_may_pend = can_sign;
        store_unlock(st);
    }
    return e;
}

void store_event_clear(store_event *ev)
{
    free(ev->data);
    free(ev->webhook_url);
    free(ev->notification_url);
    memset(ev, 0, sizeof *ev);
}

#define STORE_EVENT_COLUMNS                                                                        \
    "e.id, e.type, e.invoice_id, ifnull(e.refund_id, 0), e.at, e.data, e.state, e.attempts,"       \
    " e.next_at"

static void store_read_event(sqlite3_stmt *s, store_event *ev)
{
    memset(ev, 0, sizeof *ev);
    ev->id = sqlite3_column_int64(s, 0);
    store_copy_col(s, 1, ev->type, sizeof ev->type);
    ev->invoice_id = sqlite3_column_int64(s, 2);
    ev->refund_id = sqlite3_column_int64(s, 3);
    ev->at = sqlite3_column_int64(s, 4);
    ev->data = store_dup_col(s, 5);
    store_copy_col(s, 6, ev->state, sizeof ev->state);
    ev->attempts = sqlite3_column_int(s, 7);
    ev->next_at = sqlite3_column_int64(s, 8);
}

/* Steps s (bound), handing each row to fn; with_urls reads columns 9 and 10. */
static store_err store_events_each(store *st, sqlite3_stmt *s, bool with_urls, store_event_fn fn,
                                   void *ud)
{
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        store_event ev;
        store_read_event(s, &ev);
        if (with_urls) {
            ev.webhook_url = store_dup_col(s, 9);
            ev.notification_url = store_dup_col(s, 10);
        }
        bool go_on = fn(&ev, ud);
        store_event_clear(&ev);
        if (!go_on)
            break;
    }
    store_err e = (rc == SQLITE_ROW || rc == SQLITE_DONE) ? STORE_OK : STORE_IO;
    store_done(st, s);
    return e;
}

store_err store_events_after(store *st, int64_t after, int64_t invoice_id, int limit,
                             store_event_fn fn, void *ud)
{
    if (st->pg != NULL)
        return store_pg_events_after(st, after, invoice_id, limit, fn, ud);
    static const char sql_all[] =
        "SELECT " STORE_EVENT_COLUMNS " FROM events e WHERE e.id > ? ORDER BY e.id LIMIT ?";
    static const char sql_invoice[] =
        "SELECT " STORE_EVENT_COLUMNS " FROM events e"
        " WHERE e.invoice_id = ?3 AND e.id > ?1 ORDER BY e.id LIMIT ?2";
    store_lock(st);
    sqlite3_stmt *s = store_stmt(st, invoice_id > 0 ? sql_invoice : sql_all);
    store_err e = STORE_IO;
    if (s != NULL) {
        sqlite3_bind_int64(s, 1, after);
        sqlite3_bind_int(s, 2, limit);
        if (invoice_id > 0)
            sqlite3_bind_int64(s, 3, invoice_id);
        e = store_events_each(st, s, false, fn, ud);
    }
    store_unlock(st);
    return e;
}

store_err store_events_last_id(store *st, int64_t *id)
{
    if (st->pg != NULL)
        return store_pg_events_last_id(st, id);
    static const char sql[] = "SELECT ifnull(max(id), 0) FROM events";
    *id = 0;
    store_lock(st);
    sqlite3_stmt *s = store_stmt(st, sql);
    store_err e = STORE_IO;
    if (s != NULL) {
        if (sqlite3_step(s) == SQLITE_ROW) {
            *id = sqlite3_column_int64(s, 0);
            e = STORE_OK;
        }
        store_done(st, s);
    }
    store_unlock(st);
    return e;
}

store_err store_events_due(store *st, int64_t now, int limit, store_event_fn fn, void *ud)
{
    if (st->pg != NULL)
        return store_pg_events_due(st, now, limit, fn, ud);
    /* Spelt as the partial indexes events_due (the walk, in due order, which
     * stops after limit rows however long the backlog) and events_pending
     * (the check for an earlier pending event of the invoice) are. Fresh
     * events have next_at 0, so they come before retries. */
    static const char sql[] = "SELECT " STORE_EVENT_COLUMNS ", json_extract(i.doc, '$.webhookUrl'),"
                              " json_extract(i.doc, '$.notificationUrl')"
                              " FROM events e JOIN invoices i ON i.id = e.invoice_id"
                              " WHERE e.state = 'pending' AND e.next_at <= ?1"
                              " AND NOT EXISTS(SELECT 1 FROM events p WHERE p.state = 'pending'"
                              "  AND p.invoice_id = e.invoice_id AND p.id < e.id)"
                              " ORDER BY e.next_at, e.id LIMIT ?2";
    store_lock(st);
    sqlite3_stmt *s = store_stmt(st, sql);
    store_err e = STORE_IO;
    if (s != NULL) {
        sqlite3_bind_int64(s, 1, now);
        sqlite3_bind_int(s, 2, limit);
        e = store_events_each(st, s, true, fn, ud);
    }
    store_unlock(st);
    return e;
}

store_err store_event_attempt(store *st, int64_t event_id, const char *url, int http_status,
                              int64_t latency_ms, const char *error, const char *state,
                              int64_t next_at)
{
    if (st->pg != NULL)
        return store_pg_event_attempt(st, event_id, url, http_status, latency_ms, error, state,
                                      next_at);
    static const char sql_add[] =
        "INSERT INTO delivery_attempts(event_id, url, at, http_status, latency_ms, error)"
        " VALUES(?, ?, ?, ?, ?, ?)";
    static const char sql_set[] =
        "UPDATE events SET state = ?, attempts = attempts + 1, next_at = ?,"
        " done_at = CASE WHEN ?1 = 'pending' THEN 0 ELSE ?3 END WHERE id = ?";
    store_err e = store_tx_begin(st);
    if (e != STORE_OK)
        return e;
    int64_t now = store_now_ms();
    sqlite3_stmt *s = store_stmt(st, sql_add);
    if (s == NULL)
        return store_tx_finish(st, STORE_IO, false);
    sqlite3_bind_int64(s, 1, event_id);
    store_bind_text(s, 2, url);
    sqlite3_bind_int64(s, 3, now);
    sqlite3_bind_int(s, 4, http_status);
    sqlite3_bind_int64(s, 5, latency_ms);
    store_bind_text(s, 6, error);
    e = store_step_done(st, s);
    if (e == STORE_OK) {
        s = store_stmt(st, sql_set);
        if (s == NULL)
            return store_tx_finish(st, STORE_IO, false);
        store_bind_text(s, 1, state);
        sqlite3_bind_int64(s, 2, next_at);
        sqlite3_bind_int64(s, 3, now);
        sqlite3_bind_int64(s, 4, event_id);
        e = store_step_done(st, s);
    }
    return store_tx_finish(st, e, false);
}

/* Runs an UPDATE of one event (?1 = now, ?2 = id); STORE_NOT_FOUND when no row. */
static store_err store_event_update(store *st, const char *sql, int64_t event_id)
{
    store_err e = store_tx_begin(st);
    if (e != STORE_OK)
        return e;
    sqlite3_stmt *s = store_stmt(st, sql);
    if (s == NULL)
        return store_tx_finish(st, STORE_IO, false);
    sqlite3_bind_int64(s, 1, store_now_ms());
    sqlite3_bind_int64(s, 2, event_id);
    e = store_step_done(st, s);
    if (e == STORE_OK && sqlite3_changes(st->db) == 0)
        e = STORE_NOT_FOUND;
    return store_tx_finish(st, e, false);
}

store_err store_event_skip(store *st, int64_t event_id)
{
    if (st->pg != NULL)
        return store_pg_event_skip(st, event_id);
    static const char sql[] =
        "UPDATE events SET state = 'skipped', done_at = ?1 WHERE id = ?2 AND state = 'pending'";
    store_err e = store_event_update(st, sql, event_id);
    return e == STORE_NOT_FOUND ? STORE_OK : e;
}

store_err store_event_redeliver(store *st, int64_t event_id)
{
    if (st->pg != NULL)
        return store_pg_event_redeliver(st, event_id);
    static const char sql[] =
        "UPDATE events SET state = 'pending', next_at = 0, done_at = 0 WHERE id = ?2 AND ?1 > 0";
    return store_event_update(st, sql, event_id);
}

store_err store_events_backlog(store *st, int64_t *count, int64_t *oldest_at)
{
    if (st->pg != NULL)
        return store_pg_events_backlog(st, count, oldest_at);
    static const char sql[] =
        "SELECT count(*), ifnull(min(at), 0) FROM events WHERE state = 'pending'";
    *count = 0;
    *oldest_at = 0;
    store_lock(st);
    sqlite3_stmt *s = store_stmt(st, sql);
    store_err e = STORE_IO;
    if (s != NULL) {
        if (sqlite3_step(s) == SQLITE_ROW) {
            *count = sqlite3_column_int64(s, 0);
            *oldest_at = sqlite3_column_int64(s, 1);
            e = STORE_OK;
        }
        store_done(st, s);
    }
    store_unlock(st);
    return e;
}

store_err store_delivery_list(store *st, int limit, char **json)
{
    if (st->pg != NULL)
        return store_pg_delivery_list(st, limit, json);
    static const char sql[] =
        "SELECT json_group_array(json(j)) FROM (SELECT json_object('eventId', a.event_id,"
        " 'type', e.type, 'url', a.url, 'at', a.at, 'httpStatus', nullif(a.http_status, 0),"
        " 'latencyMs', a.latency_ms, 'error', nullif(a.error, ''), 'eventState', e.state) AS j"
        " FROM (SELECT * FROM delivery_attempts ORDER BY id DESC LIMIT 10000) a"
        " JOIN events e ON e.id = a.event_id"
        " ORDER BY (a.http_status BETWEEN 200 AND 299), a.id DESC LIMIT ?)";
    return store_query_json(st, sql, limit, json);
}
