/* store/invoices.c — invoice rows: the send intent and its outcome, status
 * answers and history, listing, the poller's and the receipt retry's
 * queries, the counts /healthz reads. See store.h. */
#include "store/private.h"
#include "store/pg/pg.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void store_invoice_clear(store_invoice *inv)
{
    free(inv->doc_json);
    free(inv->receipt_json);
    memset(inv, 0, sizeof *inv);
}

void store_read_invoice(sqlite3_stmt *s, store_invoice *inv)
{
    memset(inv, 0, sizeof *inv);
    inv->id = sqlite3_column_int64(s, 0);
    store_copy_col(s, 1, inv->reference, sizeof inv->reference);
    store_copy_col(s, 2, inv->send_state, sizeof inv->send_state);
    inv->status = seqr_status_parse((const char *)sqlite3_column_text(s, 3));
    inv->version = sqlite3_column_int64(s, 4);
    store_copy_col(s, 5, inv->qr_code, sizeof inv->qr_code);
    store_copy_col(s, 6, inv->currency, sizeof inv->currency);
    inv->total = sqlite3_column_int64(s, 7);
    store_copy_col(s, 8, inv->terminal_id, sizeof inv->terminal_id);
    store_copy_col(s, 9, inv->payment_mode, sizeof inv->payment_mode);
    store_copy_col(s, 10, inv->client_reference, sizeof inv->client_reference);
    store_copy_col(s, 11, inv->ers_reference, sizeof inv->ers_reference);
    inv->doc_json = store_dup_col(s, 12);
    inv->receipt_json = store_dup_col(s, 13);
    inv->receipt_submitted = sqlite3_column_int(s, 14) != 0;
    inv->polling_stopped = sqlite3_column_int(s, 15) != 0;
    store_copy_col(s, 16, inv->last_error, sizeof inv->last_error);
    inv->created_at = sqlite3_column_int64(s, 17);
    inv->updated_at = sqlite3_column_int64(s, 18);
    inv->expires_at = sqlite3_column_int64(s, 19);
    inv->paid_at = sqlite3_column_int64(s, 20);
    store_copy_col(s, 21, inv->notify_token, sizeof inv->notify_token);
    inv->refunded = sqlite3_column_int64(s, 22);
    inv->has_refunds = sqlite3_column_int(s, 23) != 0;
    store_copy_col(s, 24, inv->pay_token, sizeof inv->pay_token);
    store_copy_col(s, 25, inv->pay_secret, sizeof inv->pay_secret);
    inv->issued_at = sqlite3_column_int64(s, 26);
}

store_err store_invoice_begin(store *st, store_invoice *inv)
{
    if (st->pg != NULL)
        return store_pg_invoice_begin(st, inv);
    static const char sql[] =
        "INSERT INTO invoices(send_state, status, currency, total, terminal_id, payment_mode,"
        " client_reference, doc, created_at, updated_at, expires_at, notify_token, pay_token,"
        " pay_secret, client_invoice_id) VALUES('sending', 'ISSUED', ?1, ?2, ?3, ?4, ?5, ?6, ?7,"
        " ?8, ?9, ?10, ?11, ?12, ifnull(?13, json_extract(?6, '$.clientInvoiceId')))";
    /* Not durable: the intent survives a crash of this process as it is (it
     * is in the WAL, in the page cache), and the outcome's durable commit,
     * which comes before the webshop gets its 201, puts it on disk too.
     * Losing it to a power cut only loses an invoice no buyer has seen.
     * Refund intents, which guard money, are durable before the call. */
    store_err e = store_tx_begin(st);
    if (e != STORE_OK)
        return e;
    sqlite3_stmt *s = store_stmt(st, sql);
    if (s == NULL)
        return store_tx_finish(st, STORE_IO, false);
    int64_t now = store_now_ms();
    store_bind_text(s, 1, inv->currency);
    sqlite3_bind_int64(s, 2, inv->total);
    store_bind_text(s, 3, inv->terminal_id);
    store_bind_text(s, 4, inv->payment_mode);
    store_bind_text(s, 5, inv->client_reference);
    store_bind_text(s, 6, inv->doc_json ? inv->doc_json : "{}");
    sqlite3_bind_int64(s, 7, now);
    sqlite3_bind_int64(s, 8, now);
    sqlite3_bind_int64(s, 9, inv->expires_at);
    store_bind_text(s, 10, inv->notify_token);
    store_bind_text(s, 11, inv->pay_token);
    store_bind_text(s, 12, inv->pay_secret);
    if (inv->client_invoice_id != NULL) /* else doc_json is read for it */
        store_bind_text(s, 13, inv->client_invoice_id);
    else
        sqlite3_bind_null(s, 13);
    e = store_step_done(st, s);
    if (e == STORE_OK) {
        inv->id = sqlite3_last_insert_rowid(st->db);
        inv->created_at = inv->updated_at = now;
        snprintf(inv->send_state, sizeof inv->send_state, "%s", STORE_SEND_SENDING);
    }
    return store_tx_finish(st, e, false);
}

store_err store_history_add(store *st, int64_t invoice_id, const char *status, int64_t version,
                            int64_t at)
{
    static const char sql[] =
        "INSERT INTO status_history(invoice_id, status, version, at) VALUES(?, ?, ?, ?)";
    sqlite3_stmt *s = store_stmt(st, sql);
    if (s == NULL)
        return STORE_IO;
    sqlite3_bind_int64(s, 1, invoice_id);
    store_bind_text(s, 2, status);
    sqlite3_bind_int64(s, 3, version);
    sqlite3_bind_int64(s, 4, at);
    return store_step_done(st, s);
}

store_err store_invoice_sent(store *st, store_invoice *inv, const char *reference,
                             const char *qr_code)
{
    if (st->pg != NULL)
        return store_pg_invoice_sent(st, inv, reference, qr_code);
    /* status and version stay out of the SET list: they are ISSUED and 0
     * since the intent (nothing changes them before the invoice is sent);
     * naming status would rewrite the invoices_status index page, naming
     * version would run the status trigger's test, for nothing. issued_at
     * is the ISSUED entry of the history (schema 9): no status_history row,
     * two pages fewer. */
    static const char sql[] =
        "UPDATE invoices SET reference = ?1, qr_code = ?2, send_state = 'sent',"
        " updated_at = ?3, issued_at = ?3 WHERE id = ?4 AND send_state = 'sending'";
    store_err e = store_tx_begin(st);
    if (e != STORE_OK)
        return e;
    sqlite3_stmt *s = store_stmt(st, sql);
    if (s == NULL)
        return store_tx_end(st, STORE_IO);
    int64_t now = store_now_ms();
    store_bind_text(s, 1, reference);
    store_bind_text(s, 2, qr_code);
    sqlite3_bind_int64(s, 3, now);
    sqlite3_bind_int64(s, 4, inv->id);
    e = store_step_done(st, s);
    if (e == STORE_OK && sqlite3_changes(st->db) == 0)
        e = STORE_NOT_FOUND;
    e = store_tx_end(st, e);
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

store_err store_invoice_send_failed(store *st, int64_t id, const char *send_state,
                                    const char *error)
{
    if (st->pg != NULL)
        return store_pg_invoice_send_failed(st, id, send_state, error);
    static const char sql[] =
        "UPDATE invoices SET send_state = ?, last_error = ?, updated_at = ? WHERE id = ?";
    store_err e = store_tx_begin(st);
    if (e != STORE_OK)
        return e;
    sqlite3_stmt *s = store_stmt(st, sql);
    if (s == NULL)
        return store_tx_end(st, STORE_IO);
    store_bind_text(s, 1, send_state);
    store_bind_text(s, 2, error);
    sqlite3_bind_int64(s, 3, store_now_ms());
    sqlite3_bind_int64(s, 4, id);
    e = store_step_done(st, s);
    return store_tx_end(st, e);
}

static store_err store_invoice_get_by(store *st, const char *sql, const char *reference, int64_t id,
                                      store_invoice *out)
{
    memset(out, 0, sizeof *out);
    store_lock(st);
    sqlite3_stmt *s = store_stmt(st, sql);
    store_err e = STORE_IO;
    if (s == NULL)
        goto cleanup;
    if (reference != NULL)
        store_bind_text(s, 1, reference);
    else
        sqlite3_bind_int64(s, 1, id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        store_read_invoice(s, out);
        e = STORE_OK;
    } else if (rc == SQLITE_DONE) {
        e = STORE_NOT_FOUND;
    }
    store_done(st, s);
cleanup:
    store_unlock(st);
    return e;
}

store_err store_invoice_get(store *st, const char *reference, store_invoice *out)
{
    if (st->pg != NULL)
        return store_pg_invoice_get(st, reference, 0, out);
    static const char sql[] =
        "SELECT " STORE_INVOICE_COLUMNS " FROM invoices i WHERE i.reference = ?";
    return store_invoice_get_by(st, sql, reference, 0, out);
}

store_err store_invoice_get_id(store *st, int64_t id, store_invoice *out)
{
    if (st->pg != NULL)
        return store_pg_invoice_get(st, NULL, id, out);
    static const char sql[] = "SELECT " STORE_INVOICE_COLUMNS " FROM invoices i WHERE i.id = ?";
    return store_invoice_get_by(st, sql, NULL, id, out);
}

store_err store_invoice_get_pay_token(store *st, const char *token, store_invoice *out)
{
    static const char sql[] = "SELECT " STORE_INVOICE_COLUMNS
                              " FROM invoices i WHERE i.pay_token = ? AND i.pay_token <> ''";
    if (token == NULL || token[0] == '\0')
        return STORE_NOT_FOUND;
    if (st->pg != NULL)
        return store_pg_invoice_get_pay_token(st, token, out);
    return store_invoice_get_by(st, sql, token, 0, out);
}

store_err store_invoice_list(store *st, const char *status, int64_t before_id, int limit,
                             store_invoice_fn fn, void *ud, int64_t *last_id, bool *more)
{
    if (st->pg != NULL)
        return store_pg_invoice_list(st, status, before_id, limit, fn, ud, last_id, more);
    static const char sql_any[] =
        "SELECT " STORE_INVOICE_COLUMNS " FROM invoices i WHERE i.send_state = 'sent'"
        " AND i.id < ? ORDER BY i.id DESC LIMIT ?";
    static const char sql_status[] =
        "SELECT " STORE_INVOICE_COLUMNS " FROM invoices i WHERE i.send_state = 'sent'"
        " AND i.id < ? AND i.status = ? ORDER BY i.id DESC LIMIT ?";
    *last_id = 0;
    *more = false;
    store_lock(st);
    sqlite3_stmt *s = store_stmt(st, status ? sql_status : sql_any);
    store_err e = STORE_IO;
    if (s == NULL)
        goto cleanup;
    sqlite3_bind_int64(s, 1, before_id > 0 ? before_id : INT64_MAX);
    if (status) {
        store_bind_text(s, 2, status);
        sqlite3_bind_int(s, 3, limit + 1);
    } else {
        sqlite3_bind_int(s, 2, limit + 1);
    }
    int n = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (n == limit) {
            *more = true;
            break;
        }
        store_invoice inv;
        store_read_invoice(s, &inv);
        *last_id = inv.id;
        n++;
        bool go_on = fn(&inv, ud);
        store_invoice_clear(&inv);
        if (!go_on)
            break;
    }
    e = (rc == SQLITE_ROW || rc == SQLITE_DONE) ? STORE_OK : STORE_IO;
    store_done(st, s);
cleanup:
    store_unlock(st);
    return e;
}

store_err store_invoice_set_status(store *st, const char *reference, seqr_status status,
                                   int64_t version, const char *ers_reference,
                                   const char *receipt_json, bool *changed)
{
    if (st->pg != NULL)
        return store_pg_invoice_set_status(st, reference, seqr_status_name(status), version,
                                           ers_reference,
                                            receipt_json, changed);
    static const char sql_get[] = "SELECT id, status, version FROM invoices WHERE reference = ?";
    static const char sql_set[] =
        "UPDATE invoices SET status = ?, version = ?,"
        " ers_reference = CASE WHEN ?3 = '' THEN ers_reference ELSE ?3 END,"
        " receipt = ifnull(?4, receipt), updated_at = ?5,"
        " paid_at = CASE WHEN ?1 = 'PAID' AND paid_at = 0 THEN ?5 ELSE paid_at END"
        " WHERE id = ?6 AND version <= ?2"
        " AND (status = ?1 OR status NOT IN ('PAID', 'CANCELED', 'FAILED'))";
    if (changed)
        *changed = false;
    if (status == SEQR_STATUS_UNKNOWN)
        return STORE_CONFLICT; /* never stored: it says nothing */
    store_err e = store_tx_begin(st);
    if (e != STORE_OK)
        return e;
    sqlite3_stmt *s = store_stmt(st, sql_get);
    if (s == NULL)
        return store_tx_end(st, STORE_IO);
    store_bind_text(s, 1, reference);
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        store_done(st, s);
        return store_tx_end(st, rc == SQLITE_DONE ? STORE_NOT_FOUND : STORE_IO);
    }
    int64_t id = sqlite3_column_int64(s, 0);
    seqr_status was = seqr_status_parse((const char *)sqlite3_column_text(s, 1));
    int64_t was_version = sqlite3_column_int64(s, 2);
    bool differs = was != status || was_version != version;
    /* Status only moves forward: an answer about an older version (a slow
     * refresh that started before the payment) or one that would leave a
     * final status is stale and changes nothing. */
    bool stale = version < was_version || (seqr_status_is_final(was) && was != status);
    store_done(st, s);
    if (stale)
        return store_tx_end(st, STORE_CONFLICT);
    if (!differs && ers_reference == NULL && receipt_json == NULL)
        return store_tx_end(st, STORE_OK);

    int64_t now = store_now_ms();
    s = store_stmt(st, sql_set);
    if (s == NULL)
        return store_tx_end(st, STORE_IO);
    store_bind_text(s, 1, seqr_status_name(status));
    sqlite3_bind_int64(s, 2, version);
    store_bind_text(s, 3, ers_reference ? ers_reference : "");
    if (receipt_json)
        store_bind_text(s, 4, receipt_json);
    else
        sqlite3_bind_null(s, 4);
    sqlite3_bind_int64(s, 5, now);
    sqlite3_bind_int64(s, 6, id);
    e = store_step_done(st, s);
    if (e == STORE_OK && differs) {
        e = store_history_add(st, id, seqr_status_name(status), version, now);
        if (changed)
            *changed = true;
    }
    return store_tx_end(st, e);
}

/* Runs an UPDATE keyed by reference (last parameter) inside a transaction. */
static store_err store_update_ref(store *st, const char *sql, const char *text1,
                                  const int64_t *int2, const char *reference)
{
    store_err e = store_tx_begin(st);
    if (e != STORE_OK)
        return e;
    sqlite3_stmt *s = store_stmt(st, sql);
    if (s == NULL)
        return store_tx_end(st, STORE_IO);
    int i = 1;
    sqlite3_bind_int64(s, i++, store_now_ms());
    if (text1)
        store_bind_text(s, i++, text1);
    if (int2)
        sqlite3_bind_int64(s, i++, *int2);
    store_bind_text(s, i, reference);
    e = store_step_done(st, s);
    if (e == STORE_OK && sqlite3_changes(st->db) == 0)
        e = STORE_NOT_FOUND;
    return store_tx_end(st, e);
}

store_err store_invoice_set_doc(store *st, const char *reference, const char *doc_json,
                                int64_t total)
{
    if (st->pg != NULL)
        return store_pg_update_ref(
            st,
            "UPDATE invoices SET updated_at = $2::bigint, doc = $3, total = $4::bigint,"
            " client_invoice_id = $3::text::json ->> 'clientInvoiceId'"
            " WHERE reference = $1",
            reference, doc_json, &total);
    /* client_invoice_id follows the document (schema 9: the events' copy). */
    static const char sql[] =
        "UPDATE invoices SET updated_at = ?1, doc = ?2, total = ?3,"
        " client_invoice_id = json_extract(?2, '$.clientInvoiceId') WHERE reference = ?4";
    return store_update_ref(st, sql, doc_json, &total, reference);
}

store_err store_invoice_set_total(store *st, const char *reference, int64_t total)
{
    if (st->pg != NULL)
        return store_pg_update_ref(st,
                                   "UPDATE invoices SET updated_at = $2::bigint, total = $4::bigint"
                                   " WHERE reference = $1 AND $3 = ''", reference, NULL, &total);
    static const char sql[] = "UPDATE invoices SET updated_at = ?, total = ? WHERE reference = ?";
    return store_update_ref(st, sql, NULL, &total, reference);
}

store_err store_invoice_set_receipt_submitted(store *st, const char *reference)
{
    if (st->pg != NULL)
        return store_pg_update_ref(st,
                                   "UPDATE invoices SET updated_at = $2::bigint, receipt_submitted = 1"
                                   " WHERE reference = $1 AND $3 = '' AND $4 = '0'", reference, NULL, NULL);
    static const char sql[] =
        "UPDATE invoices SET updated_at = ?, receipt_submitted = 1 WHERE reference = ?";
    return store_update_ref(st, sql, NULL, NULL, reference);
}

store_err store_invoice_stop_polling(store *st, const char *reference, const char *error)
{
    if (st->pg != NULL)
        return store_pg_update_ref(st,
                                   "UPDATE invoices SET updated_at = $2::bigint, last_error = $3,"
                                   " polling_stopped = 1 WHERE reference = $1 AND $4 = '0'", reference, error, NULL);
    static const char sql[] = "UPDATE invoices SET updated_at = ?, last_error = ?,"
                              " polling_stopped = 1 WHERE reference = ?";
    return store_update_ref(st, sql, error, NULL, reference);
}

store_err store_invoice_set_error(store *st, const char *reference, const char *error)
{
    if (st->pg != NULL)
        return store_pg_update_ref(st,
                                   "UPDATE invoices SET updated_at = $2::bigint, last_error = $3"
                                   " WHERE reference = $1 AND $4 = '0'", reference, error, NULL);
    static const char sql[] =
        "UPDATE invoices SET updated_at = ?, last_error = ? WHERE reference = ?";
    return store_update_ref(st, sql, error, NULL, reference);
}

store_err store_invoice_history(store *st, int64_t invoice_id, char **json)
{
    if (st->pg != NULL)
        return store_pg_invoice_history(st, invoice_id, json);
    /* The ISSUED entry of an invoice sent since schema 9 is its issued_at;
     * every other entry is a status_history row. */
    static const char sql[] =
        "SELECT json_group_array(json_object('status', status, 'version', version, 'at', at))"
        " FROM (SELECT 0 AS k, 0 AS id, 'ISSUED' AS status, 0 AS version, issued_at AS at"
        " FROM invoices WHERE id = ?1 AND issued_at > 0"
        " UNION ALL SELECT 1, id, status, version, at FROM status_history WHERE invoice_id = ?1"
        " ORDER BY k, id)";
    return store_query_json(st, sql, invoice_id, json);
}

store_err store_pending(store *st, store_invoice_fn fn, void *ud)
{
    if (st->pg != NULL)
        return store_pg_pending(st, fn, ud);
    static const char sql[] =
        "SELECT " STORE_INVOICE_COLUMNS " FROM invoices i WHERE i.send_state = 'sent'"
        " AND i.polling_stopped = 0 AND i.status <> 'PAID' AND i.status <> 'CANCELED'"
        " AND i.status <> 'FAILED' ORDER BY i.id";
    return store_for_each(st, sql, NULL, fn, ud);
}

/* Runs a SELECT of STORE_INVOICE_COLUMNS (with param, if not NULL, bound to
 * its one '?') and hands every row to fn. */
store_err store_for_each(store *st, const char *sql, const char *param, store_invoice_fn fn,
                         void *ud)
{
    store_lock(st);
    sqlite3_stmt *s = store_stmt(st, sql);
    store_err e = STORE_IO;
    if (s == NULL)
        goto cleanup;
    if (param != NULL)
        store_bind_text(s, 1, param);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        store_invoice inv;
        store_read_invoice(s, &inv);
        bool go_on = fn(&inv, ud);
        store_invoice_clear(&inv);
        if (!go_on)
            break;
    }
    e = (rc == SQLITE_ROW || rc == SQLITE_DONE) ? STORE_OK : STORE_IO;
    store_done(st, s);
cleanup:
    store_unlock(st);
    return e;
}

store_err store_receipts_due(store *st, store_invoice_fn fn, void *ud)
{
    if (st->pg != NULL)
        return store_pg_receipts_due(st, fn, ud);
    static const char sql[] =
        "SELECT " STORE_INVOICE_COLUMNS " FROM invoices i WHERE i.send_state = 'sent'"
        " AND i.status = 'PAID' AND i.receipt_submitted = 0 ORDER BY i.id";
    return store_for_each(st, sql, NULL, fn, ud);
}

store_err store_counts(store *st, int64_t *unknown)
{
    if (st->pg != NULL)
        return store_pg_counts(st, unknown);
    static const char sql[] = "SELECT (SELECT count(*) FROM invoices WHERE send_state = 'unknown')"
                              " + (SELECT count(*) FROM refunds WHERE state = 'unknown')";
    store_lock(st);
    sqlite3_stmt *s = store_stmt(st, sql);
    store_err e = STORE_IO;
    if (s != NULL && sqlite3_step(s) == SQLITE_ROW) {
        *unknown = sqlite3_column_int64(s, 0);
        e = STORE_OK;
    }
    if (s != NULL)
        store_done(st, s);
    store_unlock(st);
    pthread_mutex_lock(&st->sync_lock);
    if (st->sync_failed)
        e = STORE_IO; /* the database can no longer be trusted with writes */
    pthread_mutex_unlock(&st->sync_lock);
    return e;
}

store_err store_lease_sync(store *st, store_invoice_fn gained, store_lease_lost_fn lost, void *ud,
                           int64_t *held)
{
    if (st->pg != NULL)
        return store_pg_lease_sync(st, gained, lost, ud, held);
    *held = -1; /* SQLite: one gateway, which polls every pending invoice */
    return STORE_OK;
}

store_err store_other_gateways(store *st, int64_t *n)
{
    if (st->pg != NULL)
        return store_pg_other_gateways(st, n);
    *n = 0; /* SQLite: the file is locked by one gateway */
    return STORE_OK;
}
