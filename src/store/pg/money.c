/* store/pg/money.c — refunds on PostgreSQL, and settling the sends and
 * refunds of unknown outcome. A refund is decided once across every gateway:
 * its intent locks the invoice row first (SELECT ... FOR UPDATE), so two
 * gateways refunding the same invoice at once check the sum one after the
 * other, each seeing what the other committed. See store.h. */
#include "store/pg/pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/private.h"

store_err store_pg_refund_begin(store *st, int64_t invoice_id, int64_t amount, const char *title,
                                int64_t *refund_id)
{
    char id[24], amt[24], now[24], me[24];
    const char *p1[] = {store_pg_i64(id, invoice_id)};
    store_err e = store_pg_tx_begin(st);
    if (e != STORE_OK)
        return e;
    PGresult *r =
        store_pg_exec(st, "SELECT total FROM invoices WHERE id = $1::bigint FOR UPDATE", 1, p1, &e);
    if (r == NULL)
        return store_pg_tx_end(st, e);
    bool found = PQntuples(r) == 1;
    int64_t total = found ? store_pg_get_i64(r, 0, 0) : 0;
    PQclear(r);
    if (!found)
        return store_pg_tx_end(st, STORE_NOT_FOUND);
    /* A statement of its own, after the lock: it sees every refund
     * committed by whoever held the lock before (READ COMMITTED). */
    r = store_pg_exec(st,
                      "SELECT coalesce(sum(amount) FILTER (WHERE state <> 'failed'), 0),"
                      " count(*) FILTER (WHERE state = 'sending' OR state = 'unknown')"
                      " FROM refunds WHERE invoice_id = $1::bigint",
                      1, p1, &e);
    if (r == NULL)
        return store_pg_tx_end(st, e);
    int64_t refunded = store_pg_get_i64(r, 0, 0);
    int64_t open = store_pg_get_i64(r, 0, 1);
    PQclear(r);
    int64_t after;
    if (open > 0 || amount <= 0 || __builtin_add_overflow(refunded, amount, &after) ||
        after > total)
        return store_pg_tx_end(st, STORE_CONFLICT);
    const char *p[] = {id, store_pg_i64(amt, amount), title ? title : "",
                       store_pg_i64(now, store_now_ms()), store_pg_i64(me, st->pg->instance)};
    r = store_pg_exec(st,
                      "INSERT INTO refunds(invoice_id, amount, title, state, created_at,"
                      " updated_at, owner) VALUES($1::bigint, $2::bigint, $3, 'sending',"
                      " $4::bigint, $4::bigint, $5::bigint) RETURNING id",
                      5, p, &e);
    if (r != NULL)
        *refund_id = store_pg_get_i64(r, 0, 0);
    PQclear(r);
    return store_pg_tx_end(st, e);
}

store_err store_pg_refund_finish(store *st, int64_t refund_id, const char *state,
                                 const char *ers_reference, const char *error)
{
    char id[24], now[24];
    const char *p[] = {state, ers_reference ? ers_reference : "", error ? error : "",
                       store_pg_i64(now, store_now_ms()), store_pg_i64(id, refund_id)};
    store_pg_acquire(st);
    store_err e = store_pg_run(st,
                               "UPDATE refunds SET state = $1, ers_reference = $2, error = $3,"
                               " updated_at = $4::bigint WHERE id = $5::bigint",
                               5, p);
    store_pg_release(st);
    if (e == STORE_OK)
        store_pg_events_number(st);
    return e;
}

#define STORE_PG_REFUND_JSON                                                                       \
    "json_build_object('id', id, 'amount', amount, 'status', state, 'ersReference',"               \
    " nullif(ers_reference, ''), 'title', nullif(title, ''), 'createdAt', created_at,"             \
    " 'error', nullif(error, ''))"

store_err store_pg_refund_list(store *st, int64_t invoice_id, char **json)
{
    char id[24];
    const char *p[] = {store_pg_i64(id, invoice_id)};
    return store_pg_query_text(st,
                               "SELECT coalesce(json_agg(" STORE_PG_REFUND_JSON
                               " ORDER BY id), '[]'::json)::text FROM refunds"
                               " WHERE invoice_id = $1::bigint",
                               1, p, json);
}

store_err store_pg_refund_get(store *st, int64_t refund_id, char **json)
{
    char id[24];
    const char *p[] = {store_pg_i64(id, refund_id)};
    return store_pg_query_text(
        st, "SELECT " STORE_PG_REFUND_JSON "::text FROM refunds WHERE id = $1::bigint", 1, p, json);
}

/* Inside a transaction: locks the row find selects (parameters p) and
 * copies its state to was. STORE_NOT_FOUND without a row, STORE_CONFLICT
 * unless the state is "unknown". */
static store_err store_pg_settle_check(store *st, const char *find, int n, const char *const *p,
                                       char was[16])
{
    store_err e;
    PGresult *r = store_pg_exec(st, find, n, p, &e);
    if (r == NULL)
        return e;
    bool found = PQntuples(r) == 1;
    if (found)
        store_pg_copy(r, 0, 0, was, 16);
    PQclear(r);
    if (!found)
        return STORE_NOT_FOUND;
    return strcmp(was, "unknown") == 0 ? STORE_OK : STORE_CONFLICT;
}

store_err store_pg_refund_resolve(store *st, int64_t invoice_id, int64_t refund_id,
                                  const char *state, const char *ers_reference, char was[16])
{
    was[0] = '\0';
    char rid[24], iid[24], now[24];
    const char *pf[] = {store_pg_i64(rid, refund_id), store_pg_i64(iid, invoice_id)};
    store_err e = store_pg_tx_begin(st);
    if (e != STORE_OK)
        return e;
    e = store_pg_settle_check(
        st,
        "SELECT state FROM refunds WHERE id = $1::bigint AND invoice_id = $2::bigint FOR UPDATE", 2,
        pf, was);
    if (e != STORE_OK)
        return store_pg_tx_end(st, e);
    const char *p[] = {state, ers_reference ? ers_reference : "", store_pg_i64(now, store_now_ms()),
                       rid};
    e = store_pg_run(st,
                     "UPDATE refunds SET state = $1, ers_reference = $2, updated_at = $3::bigint,"
                     " error = 'outcome was unknown; settled by the operator as ' || $1 ||"
                     " CASE WHEN error = '' THEN '' ELSE ' (' || error || ')' END"
                     " WHERE id = $4::bigint AND state = 'unknown'",
                     4, p);
    e = store_pg_tx_end(st, e);
    if (e == STORE_OK)
        store_pg_events_number(st);
    return e;
}

store_err store_pg_invoice_resolve(store *st, int64_t id, const char *reference, char was[16])
{
    was[0] = '\0';
    char ids[24], now[24];
    const char *pf[] = {store_pg_i64(ids, id)};
    store_err e = store_pg_tx_begin(st);
    if (e != STORE_OK)
        return e;
    e = store_pg_settle_check(
        st, "SELECT send_state FROM invoices WHERE id = $1::bigint FOR UPDATE", 1, pf, was);
    if (e != STORE_OK)
        return store_pg_tx_end(st, e);
    int64_t t = store_now_ms();
    const char *p[] = {reference ? reference : "", store_pg_i64(now, t), ids};
    if (reference != NULL)
        e = store_pg_run(
            st,
            "UPDATE invoices SET reference = $1, send_state = 'sent', status = 'ISSUED',"
            " version = 0, updated_at = $2::bigint, issued_at = $2::bigint,"
            " last_error = 'outcome was unknown; settled by the operator as done' ||"
            " CASE WHEN last_error = '' THEN '' ELSE ' (' || last_error || ')' END"
            " WHERE id = $3::bigint AND send_state = 'unknown'",
            3, p);
    else
        e = store_pg_run(st,
                         "UPDATE invoices SET send_state = 'rejected', updated_at = $2::bigint,"
                         " last_error = 'outcome was unknown; settled by the operator as failed' ||"
                         " CASE WHEN last_error = '' THEN '' ELSE ' (' || last_error || ')' END"
                         " WHERE id = $3::bigint AND send_state = 'unknown' AND $1 = ''",
                         3, p);
    e = store_pg_tx_end(st, e); /* issued_at: the history's ISSUED entry */
    if (e == STORE_OK)
        store_pg_events_number(st);
    return e;
}

store_err store_pg_unknown_list(store *st, char **json)
{
    char lim[24];
    const char *p[] = {store_pg_i64(lim, STORE_UNKNOWN_LIST_MAX)};
    return store_pg_query_text(
        st,
        "SELECT json_build_object("
        " 'invoices', (SELECT coalesce(json_agg(json_build_object('id', id,"
        "  'clientInvoiceId', doc::json -> 'clientInvoiceId', 'totalAmount', total,"
        "  'currency', currency, 'createdAt', created_at, 'expiresAt', expires_at,"
        "  'error', nullif(last_error, '')) ORDER BY id), '[]'::json)"
        "  FROM (SELECT * FROM invoices WHERE send_state = 'unknown' ORDER BY id"
        "   LIMIT $1::bigint) u),"
        " 'refunds', (SELECT coalesce(json_agg(json_build_object('invoiceReference',"
        "  i.reference, 'id', r.id, 'amount', r.amount, 'currency', i.currency,"
        "  'title', nullif(r.title, ''), 'createdAt', r.created_at,"
        "  'error', nullif(r.error, '')) ORDER BY r.id), '[]'::json)"
        "  FROM (SELECT * FROM refunds WHERE state = 'unknown' ORDER BY id"
        "   LIMIT $1::bigint) r JOIN invoices i ON i.id = r.invoice_id))::text",
        1, p, json);
}
