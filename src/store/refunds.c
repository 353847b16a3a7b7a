/* store/refunds.c — refund rows: the intent (never over-refund), its
 * outcome, reading them back. See store.h. */
#include "store/private.h"
#include "store/pg/pg.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

store_err store_refund_begin(store *st, int64_t invoice_id, int64_t amount, const char *title,
                             int64_t *refund_id)
{
    if (st->pg != NULL)
        return store_pg_refund_begin(st, invoice_id, amount, title, refund_id);
    static const char sql_check[] =
        "SELECT i.total, i.status,"
        " (SELECT ifnull(sum(amount), 0) FROM refunds r WHERE r.invoice_id = i.id"
        "  AND r.state <> 'failed'),"
        " (SELECT count(*) FROM refunds r WHERE r.invoice_id = i.id"
        "  AND (r.state = 'sending' OR r.state = 'unknown'))"
        " FROM invoices i WHERE i.id = ?";
    static const char sql_insert[] =
        "INSERT INTO refunds(invoice_id, amount, title, state, created_at, updated_at)"
        " VALUES(?, ?, ?, 'sending', ?, ?)";
    store_err e = store_tx_begin(st);
    if (e != STORE_OK)
        return e;
    sqlite3_stmt *s = store_stmt(st, sql_check);
    if (s == NULL)
        return store_tx_end(st, STORE_IO);
    sqlite3_bind_int64(s, 1, invoice_id);
    if (sqlite3_step(s) != SQLITE_ROW) {
        store_done(st, s);
        return store_tx_end(st, STORE_NOT_FOUND);
    }
    int64_t total = sqlite3_column_int64(s, 0);
    int64_t refunded = sqlite3_column_int64(s, 2);
    int64_t open = sqlite3_column_int64(s, 3);
    store_done(st, s);
    int64_t after;
    if (open > 0 || amount <= 0 || __builtin_add_overflow(refunded, amount, &after) ||
        after > total)
        return store_tx_end(st, STORE_CONFLICT);

    s = store_stmt(st, sql_insert);
    if (s == NULL)
        return store_tx_end(st, STORE_IO);
    int64_t now = store_now_ms();
    sqlite3_bind_int64(s, 1, invoice_id);
    sqlite3_bind_int64(s, 2, amount);
    store_bind_text(s, 3, title);
    sqlite3_bind_int64(s, 4, now);
    sqlite3_bind_int64(s, 5, now);
    e = store_step_done(st, s);
    if (e == STORE_OK)
        *refund_id = sqlite3_last_insert_rowid(st->db);
    return store_tx_end(st, e);
}

store_err store_refund_finish(store *st, int64_t refund_id, const char *state,
                              const char *ers_reference, const char *error)
{
    if (st->pg != NULL)
        return store_pg_refund_finish(st, refund_id, state, ers_reference, error);
    static const char sql[] = "UPDATE refunds SET state = ?, ers_reference = ?, error = ?,"
                              " updated_at = ? WHERE id = ?";
    store_err e = store_tx_begin(st);
    if (e != STORE_OK)
        return e;
    sqlite3_stmt *s = store_stmt(st, sql);
    if (s == NULL)
        return store_tx_end(st, STORE_IO);
    store_bind_text(s, 1, state);
    store_bind_text(s, 2, ers_reference);
    store_bind_text(s, 3, error);
    sqlite3_bind_int64(s, 4, store_now_ms());
    sqlite3_bind_int64(s, 5, refund_id);
    e = store_step_done(st, s);
    return store_tx_end(st, e);
}

#define STORE_REFUND_JSON                                                                          \
    "json_object('id', id, 'amount', amount, 'status', state, 'ersReference',"                     \
    " CASE WHEN ers_reference = '' THEN NULL ELSE ers_reference END, 'title', nullif(title, ''),"  \
    " 'createdAt', created_at, 'error', CASE WHEN error = '' THEN NULL ELSE error END)"

store_err store_refund_list(store *st, int64_t invoice_id, char **json)
{
    if (st->pg != NULL)
        return store_pg_refund_list(st, invoice_id, json);
    static const char sql[] = "SELECT json_group_array(json(j)) FROM (SELECT " STORE_REFUND_JSON
                              " AS j FROM refunds WHERE invoice_id = ? ORDER BY id)";
    return store_query_json(st, sql, invoice_id, json);
}

store_err store_refund_get(store *st, int64_t refund_id, char **json)
{
    if (st->pg != NULL)
        return store_pg_refund_get(st, refund_id, json);
    static const char sql[] = "SELECT " STORE_REFUND_JSON " FROM refunds WHERE id = ?";
    return store_query_json(st, sql, refund_id, json);
}
