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

PGresult *store_pg_exec(store *st, const char *sql, int n, const char *const *params,
                        store_err *e)
{
    /* Without parameters, the simple protocol: sql may hold several
     * statements (migrations). */
    PGresult *r = n == 0 ? PQexec(st->pg->conn, sql)
                         : PQexecParams(st->pg->conn, sql, n, NULL, params, NULL, NULL, 0);
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
        log_error("store: PostgreSQL: %s", PQerrorMessage(st->pg->conn));
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
    store_lock(st);
    store_err e = store_pg_run(st, "BEGIN", 0, NULL);
    if (e != STORE_OK)
        store_unlock(st);
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
    store_unlock(st);
    return result;
}

store_err store_pg_open(store *st, const char *url, buf *err)
{
    st->pg = calloc(1, sizeof *st->pg);
    if (st->pg == NULL) {
        buf_puts(err, "out of memory");
        return STORE_IO;
    }
    st->pg->conn = PQconnectdb(url);
    if (st->pg->conn == NULL || PQstatus(st->pg->conn) != CONNECTION_OK) {
        buf_puts(err, "cannot connect to ");
        store_location_redact(url, err);
        buf_printf(err, ": %s", st->pg->conn ? PQerrorMessage(st->pg->conn) : "out of memory");
        return STORE_IO;
    }
    /* Quiet NOTICEs (CREATE ... IF NOT EXISTS) instead of stderr lines. */
    PQsetNoticeProcessor(st->pg->conn, NULL, NULL);
    return store_pg_migrate(st, err);
}

void store_pg_close(store *st)
{
    if (st->pg == NULL)
        return;
    if (st->pg->conn != NULL) {
        if (st->pg->instance != 0 && PQstatus(st->pg->conn) == CONNECTION_OK) {
            /* A clean stop hands its leases on at once instead of after the TTL. */
            char id[24];
            const char *p[] = {store_pg_i64(id, st->pg->instance)};
            store_pg_run(st,
                         "UPDATE invoices SET lease_owner = 0, lease_until = 0"
                         " WHERE lease_owner = $1",
                         1, p);
            store_pg_run(st, "UPDATE gateway_instances SET heartbeat_at = 0 WHERE id = $1", 1, p);
        }
        PQfinish(st->pg->conn);
    }
    free(st->pg);
    st->pg = NULL;
}

store_err store_pg_query_text(store *st, const char *sql, int n, const char *const *params,
                              char **out)
{
    *out = NULL;
    store_lock(st);
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
    store_unlock(st);
    return e;
}
