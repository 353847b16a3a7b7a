/* store/idempotency.c — idempotency keys: claim, finish, release, prune.
 * See store.h. */
#include "store/private.h"
#include "store/pg/pg.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

store_err store_idem_prune(store *st, int64_t older_than_ms)
{
    if (st->pg != NULL)
        return store_pg_idem_prune(st, older_than_ms);
    static const char sql[] = "DELETE FROM idempotency WHERE created_at < ?";
    store_err e = store_tx_begin(st);
    if (e != STORE_OK)
        return e;
    sqlite3_stmt *s = store_stmt(st, sql);
    if (s == NULL)
        return store_tx_end(st, STORE_IO);
    sqlite3_bind_int64(s, 1, older_than_ms);
    e = store_step_done(st, s);
    return store_tx_end(st, e);
}

store_err store_idem_claim(store *st, const char *scope, const char *key, const char *request_hash,
                           int64_t ttl_ms, bool *same_request, int *status, char **response)
{
    if (st->pg != NULL)
        return store_pg_idem_claim(st, scope, key, request_hash, ttl_ms, same_request, status,
                                   response);
    static const char sql_prune[] = "DELETE FROM idempotency WHERE created_at < ?";
    static const char sql_get[] = "SELECT request_hash, status, response FROM idempotency"
                                  " WHERE key = ? AND scope IN (?, '*')";
    static const char sql_put[] =
        "INSERT INTO idempotency(scope, key, request_hash, created_at) VALUES(?, ?, ?, ?)";
    *same_request = false;
    *status = 0;
    *response = NULL;
    int64_t now = store_now_ms();
    store_err e = store_tx_begin(st);
    if (e != STORE_OK)
        return e;
    /* Expired keys go first (an index range, empty most of the time), so an
     * expired key is a new key and the table holds at most one TTL's worth. */
    sqlite3_stmt *s = store_stmt(st, sql_prune);
    if (s == NULL)
        return store_tx_end(st, STORE_IO);
    sqlite3_bind_int64(s, 1, now - ttl_ms);
    e = store_step_done(st, s);
    if (e != STORE_OK)
        return store_tx_end(st, e);
    s = store_stmt(st, sql_get);
    if (s == NULL)
        return store_tx_end(st, STORE_IO);
    store_bind_text(s, 1, key);
    store_bind_text(s, 2, scope);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const char *h = (const char *)sqlite3_column_text(s, 0);
        *same_request = strcmp(h, request_hash) == 0 || strcmp(h, "legacy") == 0;
        *status = sqlite3_column_int(s, 1);
        *response = store_dup_col(s, 2);
        store_done(st, s);
        return store_tx_end(st, STORE_CONFLICT);
    }
    store_done(st, s);
    if (rc != SQLITE_DONE)
        return store_tx_end(st, STORE_IO);
    s = store_stmt(st, sql_put);
    if (s == NULL)
        return store_tx_end(st, STORE_IO);
    store_bind_text(s, 1, scope);
    store_bind_text(s, 2, key);
    store_bind_text(s, 3, request_hash);
    sqlite3_bind_int64(s, 4, now);
    e = store_step_done(st, s);
    return store_tx_end(st, e);
}

store_err store_idem_finish(store *st, const char *scope, const char *key, int status,
                            const char *response)
{
    if (st->pg != NULL)
        return store_pg_idem_finish(st, scope, key, status, response);
    static const char sql[] =
        "UPDATE idempotency SET status = ?, response = ? WHERE scope = ? AND key = ?";
    store_err e = store_tx_begin(st);
    if (e != STORE_OK)
        return e;
    sqlite3_stmt *s = store_stmt(st, sql);
    if (s == NULL)
        return store_tx_end(st, STORE_IO);
    sqlite3_bind_int(s, 1, status);
    store_bind_text(s, 2, response);
    store_bind_text(s, 3, scope);
    store_bind_text(s, 4, key);
    e = store_step_done(st, s);
    return store_tx_end(st, e);
}

store_err store_idem_release(store *st, const char *scope, const char *key)
{
    if (st->pg != NULL)
        return store_pg_idem_release(st, scope, key);
    static const char sql[] = "DELETE FROM idempotency WHERE scope = ? AND key = ?";
    store_err e = store_tx_begin(st);
    if (e != STORE_OK)
        return e;
    sqlite3_stmt *s = store_stmt(st, sql);
    if (s == NULL)
        return store_tx_end(st, STORE_IO);
    store_bind_text(s, 1, scope);
    store_bind_text(s, 2, key);
    e = store_step_done(st, s);
    return store_tx_end(st, e);
}
