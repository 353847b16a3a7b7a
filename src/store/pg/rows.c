/* store/pg/rows.c — receipts, reconciliation periods and idempotency keys on
 * PostgreSQL. An idempotency key is decided once across every gateway: the
 * claim is an INSERT ... ON CONFLICT DO NOTHING on (scope, key), so of two
 * gateways claiming the same key at once one inserts and the other waits
 * for it and finds the key held. See store.h. */
#include "store/pg/pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/private.h"

store_err store_pg_receipt_add(store *st, int64_t invoice_id, const char *mime_type,
                               const char *receipt_type, const char *data_b64, int result_code)
{
    char id[24], len[24], code[24], now[24];
    const char *p[] = {store_pg_i64(id, invoice_id),
                       mime_type ? mime_type : "",
                       receipt_type ? receipt_type : "",
                       store_pg_i64(len, data_b64 ? (int64_t)strlen(data_b64) : 0),
                       store_pg_i64(code, result_code),
                       store_pg_i64(now, store_now_ms()),
                       data_b64};
    store_pg_acquire(st);
    store_err e = store_pg_run(st,
                               "INSERT INTO receipts(invoice_id, mime_type, receipt_type, data_len,"
                               " result_code, at, data) VALUES($1::bigint, $2, $3, $4::bigint,"
                               " $5::integer, $6::bigint, $7)",
                               7, p);
    store_pg_release(st);
    return e;
}

store_err store_pg_receipt_last(store *st, int64_t invoice_id, store_receipt *out)
{
    memset(out, 0, sizeof *out);
    char id[24];
    const char *p[] = {store_pg_i64(id, invoice_id)};
    store_pg_acquire(st);
    store_err e;
    PGresult *r = store_pg_exec(st,
                                "SELECT mime_type, receipt_type, data_len, at, data FROM receipts"
                                " WHERE invoice_id = $1::bigint AND result_code = 0"
                                " ORDER BY id DESC LIMIT 1",
                                1, p, &e);
    store_pg_release(st);
    if (r == NULL)
        return e;
    if (PQntuples(r) == 1) {
        store_pg_copy(r, 0, 0, out->mime_type, sizeof out->mime_type);
        store_pg_copy(r, 0, 1, out->receipt_type, sizeof out->receipt_type);
        out->data_len = store_pg_get_i64(r, 0, 2);
        out->submitted_at = store_pg_get_i64(r, 0, 3);
        out->data_b64 = store_pg_dup(r, 0, 4);
    } else {
        e = STORE_NOT_FOUND;
    }
    PQclear(r);
    return e;
}

store_err store_pg_period_add(store *st, const char *period_id, const char *terminal_id)
{
    char now[24];
    const char *p[] = {period_id, terminal_id ? terminal_id : "",
                       store_pg_i64(now, store_now_ms())};
    store_pg_acquire(st);
    store_err e = store_pg_run(
        st, "INSERT INTO periods(period_id, terminal_id, at) VALUES($1, $2, $3::bigint)", 3, p);
    store_pg_release(st);
    return e;
}

store_err store_pg_idem_prune(store *st, int64_t older_than_ms)
{
    char t[24];
    const char *p[] = {store_pg_i64(t, older_than_ms)};
    store_pg_acquire(st);
    store_err e = store_pg_run(st, "DELETE FROM idempotency WHERE created_at < $1::bigint", 1, p);
    store_pg_release(st);
    return e;
}

store_err store_pg_idem_claim(store *st, const char *scope, const char *key,
                              const char *request_hash, int64_t ttl_ms, bool *same_request,
                              int *status, char **response)
{
    *same_request = false;
    *status = 0;
    *response = NULL;
    int64_t now = store_now_ms();
    store_err e = store_pg_idem_prune(st, now - ttl_ms);
    if (e != STORE_OK)
        return e;
    char now_s[24], me[24];
    const char *p[] = {scope, key, request_hash, store_pg_i64(now_s, now),
                       store_pg_i64(me, st->pg->instance)};
    store_pg_acquire(st);
    PGresult *r = NULL;
    /* Rows kept from SQLite's schema 3 (scope '*') do not exist here, but
     * the lookup keeps the same rule. */
    for (int attempt = 0; attempt < 3; attempt++) {
        r = store_pg_exec(st,
                          "INSERT INTO idempotency(scope, key, request_hash, created_at, owner)"
                          " VALUES($1, $2, $3, $4::bigint, $5::bigint)"
                          " ON CONFLICT (scope, key) DO NOTHING",
                          5, p, &e);
        bool inserted = r != NULL && strcmp(PQcmdTuples(r), "1") == 0;
        PQclear(r);
        r = NULL;
        if (e != STORE_OK || inserted)
            break;
        r = store_pg_exec(st,
                          "SELECT request_hash, status, response FROM idempotency"
                          " WHERE key = $2 AND scope IN ($1, '*') AND $3 = $3",
                          3, p, &e);
        if (r != NULL && PQntuples(r) >= 1) {
            const char *h = PQgetvalue(r, 0, 0);
            *same_request = strcmp(h, request_hash) == 0 || strcmp(h, "legacy") == 0;
            *status = (int)store_pg_get_i64(r, 0, 1);
            *response = store_pg_dup(r, 0, 2);
            e = STORE_CONFLICT;
            break;
        }
        /* Released between our INSERT and SELECT: claim again. */
        PQclear(r);
        r = NULL;
    }
    PQclear(r);
    store_pg_release(st);
    return e;
}

store_err store_pg_idem_finish(store *st, const char *scope, const char *key, int status,
                               const char *response)
{
    char s[24];
    const char *p[] = {store_pg_i64(s, status), response ? response : "", scope, key};
    store_pg_acquire(st);
    store_err e = store_pg_run(st,
                               "UPDATE idempotency SET status = $1::integer, response = $2"
                               " WHERE scope = $3 AND key = $4",
                               4, p);
    store_pg_release(st);
    return e;
}

store_err store_pg_idem_release(store *st, const char *scope, const char *key)
{
    const char *p[] = {scope, key};
    store_pg_acquire(st);
    store_err e = store_pg_run(st, "DELETE FROM idempotency WHERE scope = $1 AND key = $2", 2, p);
    store_pg_release(st);
    return e;
}
