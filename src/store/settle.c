/* store/settle.c — outcomes in doubt: listing the sends and refunds of
 * unknown outcome and settling them as the operator found them in SEQR's
 * reconciliation report. See store.h. */
#include "store/private.h"
#include "store/pg/pg.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Inside a write transaction: copies the state that find (one row, binding
 * ?1 = a and, if it has one, ?2 = b) selects into was. STORE_NOT_FOUND without a row,
 * STORE_CONFLICT unless the state is "unknown", the only one an operator
 * may settle. */
static store_err store_settle_check(store *st, const char *find, int64_t a, int64_t b, char was[16])
{
    sqlite3_stmt *s = store_stmt(st, find);
    if (s == NULL)
        return STORE_IO;
    sqlite3_bind_int64(s, 1, a);
    if (sqlite3_bind_parameter_count(s) >= 2)
        sqlite3_bind_int64(s, 2, b);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        store_copy_col(s, 0, was, 16);
    store_done(st, s);
    if (rc != SQLITE_ROW)
        return rc == SQLITE_DONE ? STORE_NOT_FOUND : STORE_IO;
    return strcmp(was, "unknown") == 0 ? STORE_OK : STORE_CONFLICT;
}

store_err store_refund_resolve(store *st, int64_t invoice_id, int64_t refund_id, const char *state,
                               const char *ers_reference, char was[16])
{
    if (st->pg != NULL)
        return store_pg_refund_resolve(st, invoice_id, refund_id, state, ers_reference, was);
    static const char find[] = "SELECT state FROM refunds WHERE id = ?1 AND invoice_id = ?2";
    static const char settle[] =
        "UPDATE refunds SET state = ?1, ers_reference = ?2, updated_at = ?3,"
        " error = 'outcome was unknown; settled by the operator as ' || ?1 ||"
        " CASE WHEN error = '' THEN '' ELSE ' (' || error || ')' END"
        " WHERE id = ?4 AND state = 'unknown'";
    was[0] = '\0';
    store_err e = store_tx_begin(st);
    if (e != STORE_OK)
        return e;
    e = store_settle_check(st, find, refund_id, invoice_id, was);
    if (e != STORE_OK)
        return store_tx_end(st, e);
    sqlite3_stmt *s = store_stmt(st, settle);
    if (s == NULL)
        return store_tx_end(st, STORE_IO);
    store_bind_text(s, 1, state);
    store_bind_text(s, 2, ers_reference);
    sqlite3_bind_int64(s, 3, store_now_ms());
    sqlite3_bind_int64(s, 4, refund_id);
    e = store_step_done(st, s);
    return store_tx_end(st, e);
}

store_err store_invoice_resolve(store *st, int64_t id, const char *reference, char was[16])
{
    if (st->pg != NULL)
        return store_pg_invoice_resolve(st, id, reference, was);
    static const char find[] = "SELECT send_state FROM invoices WHERE id = ?1";
    static const char adopt[] =
        "UPDATE invoices SET reference = ?1, send_state = 'sent', status = 'ISSUED',"
        " version = 0, updated_at = ?2, issued_at = ?2,"
        " last_error = 'outcome was unknown; settled by the operator as done' ||"
        " CASE WHEN last_error = '' THEN '' ELSE ' (' || last_error || ')' END"
        " WHERE id = ?3 AND send_state = 'unknown'";
    static const char reject[] =
        "UPDATE invoices SET send_state = 'rejected', updated_at = ?2,"
        " last_error = 'outcome was unknown; settled by the operator as failed' ||"
        " CASE WHEN last_error = '' THEN '' ELSE ' (' || last_error || ')' END"
        " WHERE id = ?3 AND send_state = 'unknown'";
    was[0] = '\0';
    store_err e = store_tx_begin(st);
    if (e != STORE_OK)
        return e;
    e = store_settle_check(st, find, id, 0, was);
    if (e != STORE_OK)
        return store_tx_end(st, e);
    sqlite3_stmt *s = store_stmt(st, reference != NULL ? adopt : reject);
    if (s == NULL)
        return store_tx_end(st, STORE_IO);
    int64_t now = store_now_ms();
    if (reference != NULL)
        store_bind_text(s, 1, reference);
    sqlite3_bind_int64(s, 2, now);
    sqlite3_bind_int64(s, 3, id);
    e = store_step_done(st, s); /* STORE_CONFLICT: the reference is another invoice's */
    return store_tx_end(st, e); /* issued_at: the history's ISSUED entry */
}

store_err store_unknown_list(store *st, char **json)
{
    if (st->pg != NULL)
        return store_pg_unknown_list(st, json);
    /* The WHERE clauses are spelt as the partial indexes invoices_unknown and
     * refunds_unknown are, so SQLite reads only those. */
    static const char sql[] =
        "SELECT json_object("
        " 'invoices', json((SELECT json_group_array(json_object('id', id,"
        "  'clientInvoiceId', json_extract(doc, '$.clientInvoiceId'), 'totalAmount', total,"
        "  'currency', currency, 'createdAt', created_at, 'expiresAt', expires_at,"
        "  'error', nullif(last_error, '')))"
        "  FROM (SELECT * FROM invoices WHERE send_state = 'unknown' ORDER BY id"
        "   LIMIT ?1))),"
        " 'refunds', json((SELECT json_group_array(json_object('invoiceReference',"
        "  i.reference, 'id', r.id, 'amount', r.amount, 'currency', i.currency,"
        "  'title', nullif(r.title, ''), 'createdAt', r.created_at,"
        "  'error', nullif(r.error, '')))"
        "  FROM (SELECT * FROM refunds WHERE state = 'unknown' ORDER BY id"
        "   LIMIT ?1) r"
        "  JOIN invoices i ON i.id = r.invoice_id)))";
    return store_query_json(st, sql, STORE_UNKNOWN_LIST_MAX, json); /* ?1: the limit */
}
