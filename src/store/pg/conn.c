/* store/pg/conn.c — the PostgreSQL connection: open and close, running
 * statements with text parameters, transactions. See store/pg/pg.h. */
#include "store/pg/pg.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store/private.h"

const char *store_pg_i64(char dst[24], int64_t v)
{
    snprintf(dst, 24, "%" PRId64, v);
    return dst;
}

int64_t store_pg_get_i64(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return 0;
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

PGresult *store_pg_exec(store *st, const char *sql, int n, const char *const *params, store_err *e)
{
    /* Without parameters, the simple protocol: sql may hold several
     * statements (migrations). */
    PGconn *c = store_pg_conn(st);
    PGresult *r = n == 0 ? PQexec(c, sql) : PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType status = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
        *e = STORE_OK;
        return r;
    }
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    /* 23505 unique_violation, 23514 check_violation, 23503 foreign key. */
    if (state != NULL && strncmp(state, "235", 3) == 0) {
        *e = STORE_CONFLICT;
    } else {
        *e = STORE_IO;
        /* The message names the statement, never the parameters' values. */
        log_error("store: PostgreSQL: %s", PQerrorMessage(store_pg_conn(st)));
    }
    PQclear(r);
    return NULL;
}

store_err store_pg_run(store *st, const char *sql, int n, const char *const *params)
{
    store_err e;
    PGresult *r = store_pg_exec(st, sql, n, params, &e);
    PQclear(r);
    return e;
}

store_err store_pg_tx_begin(store *st)
{
    store_pg_acquire(st);
    store_err e = store_pg_run(st, "BEGIN", 0, NULL);
    if (e != STORE_OK)
        store_pg_release(st);
    return e;
}

store_err store_pg_tx_end(store *st, store_err result)
{
    if (result == STORE_OK) {
        if (store_pg_run(st, "COMMIT", 0, NULL) != STORE_OK)
            result = STORE_IO;
    } else if (store_pg_run(st, "ROLLBACK", 0, NULL) != STORE_OK) {
        result = STORE_IO;
    }
    store_pg_release(st);
    return result;
}

/* The connection this thread holds: one slot per thread (a thread works on
 * one store at a time; nested calls for the same store reuse it). */
static _Thread_local struct {
    store *st;
    int idx;
    int depth;
} store_pg_held;

PGconn *store_pg_conn(store *st)
{
    if (store_pg_held.depth > 0 && store_pg_held.st == st)
        return st->pg->conns[store_pg_held.idx];
    return st->pg->conns[0];
}

void store_pg_acquire(store *st)
{
    if (store_pg_held.depth > 0) {
        if (store_pg_held.st != st)
            abort(); /* one store at a time per thread (see above) */
        store_pg_held.depth++;
        return;
    }
    pthread_mutex_lock(&st->pg->lock);
    int idx = -1;
    while (idx < 0) {
        for (int i = 0; i < STORE_PG_POOL && idx < 0; i++)
            if (st->pg->conns[i] != NULL && !st->pg->busy[i])
                idx = i;
        if (idx < 0)
            pthread_cond_wait(&st->pg->freed, &st->pg->lock);
    }
    st->pg->busy[idx] = true;
    pthread_mutex_unlock(&st->pg->lock);
    store_pg_held.st = st;
    store_pg_held.idx = idx;
    store_pg_held.depth = 1;
}

void store_pg_release(store *st)
{
    if (--store_pg_held.depth > 0)
        return;
    pthread_mutex_lock(&st->pg->lock);
    st->pg->busy[store_pg_held.idx] = false;
    pthread_cond_signal(&st->pg->freed);
    pthread_mutex_unlock(&st->pg->lock);
    store_pg_held.st = NULL;
}

store_err store_pg_open(store *st, const char *url, buf *err)
{
    st->pg = calloc(1, sizeof *st->pg);
    if (st->pg == NULL) {
        buf_puts(err, "out of memory");
        return STORE_IO;
    }
    pthread_mutex_init(&st->pg->lock, NULL);
    pthread_cond_init(&st->pg->freed, NULL);
    for (int i = 0; i < STORE_PG_POOL; i++) {
        st->pg->conns[i] = PQconnectdb(url);
        if (st->pg->conns[i] == NULL || PQstatus(st->pg->conns[i]) != CONNECTION_OK) {
            buf_puts(err, "cannot connect to ");
            store_location_redact(url, err);
            buf_printf(err, ": %s",
                       st->pg->conns[i] ? PQerrorMessage(st->pg->conns[i]) : "out of memory");
            return STORE_IO;
        }
    }
    return store_pg_migrate(st, err);
}

void store_pg_close(store *st)
{
    if (st->pg == NULL)
        return;
    PGconn *c = st->pg->conns[0];
    if (c != NULL && st->pg->instance != 0 && PQstatus(c) == CONNECTION_OK) {
        /* A clean stop hands its leases on at once instead of after the TTL. */
        char id[24];
        const char *p[] = {store_pg_i64(id, st->pg->instance)};
        store_pg_run(st,
                     "UPDATE invoices SET lease_owner = 0, lease_until = 0"
                     " WHERE lease_owner = $1::bigint",
                     1, p);
        store_pg_run(st, "UPDATE gateway_instances SET heartbeat_at = 0 WHERE id = $1::bigint", 1,
                     p);
    }
    for (int i = 0; i < STORE_PG_POOL; i++)
        if (st->pg->conns[i] != NULL)
            PQfinish(st->pg->conns[i]);
    pthread_mutex_destroy(&st->pg->lock);
    pthread_cond_destroy(&st->pg->freed);
    free(st->pg);
    st->pg = NULL;
}

store_err store_pg_query_text(store *st, const char *sql, int n, const char *const *params,
                              char **out)
{
    *out = NULL;
    store_pg_acquire(st);
    store_err e;
    PGresult *r = store_pg_exec(st, sql, n, params, &e);
    if (r != NULL && PQntuples(r) >= 1 && !PQgetisnull(r, 0, 0)) {
        /* PostgreSQL writes JSON with spaces ("a" : 1); SQLite, and so the
         * API's answers and their tests, without. Re-dump it compactly, in
         * the same key order. */
        json_t *j = json_loads(PQgetvalue(r, 0, 0), JSON_DECODE_ANY, NULL);
        *out = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY) : NULL;
        json_decref(j);
        if (*out == NULL)
            e = STORE_IO;
    } else if (e == STORE_OK)
        e = STORE_NOT_FOUND;
    PQclear(r);
    store_pg_release(st);
    return e;
}
