/* store/copy.c — moving a SQLite store into an empty PostgreSQL database
 * (seqr-gateway --copy-store-to): every row of every table both schemas
 * have, in the columns both have, in one PostgreSQL transaction, then the
 * id sequences set past the copied ids. See store_copy_to_pg() in store.h. */
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/pg/pg.h"
#include "store/private.h"

/* Parents before children (foreign keys). */
static const char *const store_copy_tables[] = {
    "invoices",  "status_history", "refunds", "receipts",          "periods",
    "terminals", "idempotency",    "events",  "delivery_attempts",
};

#define STORE_COPY_MAX_COLUMNS 64

typedef struct {
    int n;
    char *names[STORE_COPY_MAX_COLUMNS];
} store_copy_columns;

static void store_copy_columns_free(store_copy_columns *c)
{
    for (int i = 0; i < c->n; i++)
        free(c->names[i]);
    c->n = 0;
}

static bool store_copy_has(const store_copy_columns *c, const char *name)
{
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->names[i], name) == 0)
            return true;
    return false;
}

static void store_copy_add(store_copy_columns *c, const char *name)
{
    if (c->n >= STORE_COPY_MAX_COLUMNS)
        return;
    c->names[c->n] = strdup(name);
    if (c->names[c->n] == NULL)
        abort();
    c->n++;
}

/* The table's columns in SQLite (none when it has no such table). */
static store_err store_copy_sqlite_columns(store *src, const char *table, store_copy_columns *out)
{
    char sql[128];
    snprintf(sql, sizeof sql, "PRAGMA table_info(\"%s\")", table);
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(src->db, sql, -1, &s, NULL) != SQLITE_OK)
        return STORE_IO;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        store_copy_add(out, (const char *)sqlite3_column_text(s, 1));
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? STORE_OK : STORE_IO;
}

/* The table's columns in PostgreSQL's current schema. */
static store_err store_copy_pg_columns(store *dst, const char *table, store_copy_columns *out)
{
    const char *p[] = {table};
    store_err e;
    PGresult *r = store_pg_exec(dst,
                                "SELECT column_name FROM information_schema.columns"
                                " WHERE table_schema = current_schema() AND table_name = $1"
                                " ORDER BY ordinal_position",
                                1, p, &e);
    for (int i = 0; r != NULL && i < PQntuples(r); i++)
        store_copy_add(out, PQgetvalue(r, i, 0));
    PQclear(r);
    return e;
}

/* Copies one table's rows (the columns both have); counts them (-1 when
 * PostgreSQL has no such table: nothing copied, a note says so). */
static store_err store_copy_table(store *src, store *dst, const char *table, int64_t *rows,
                                  buf *notes, buf *err)
{
    store_copy_columns sc = {0}, pc = {0}, both = {0};
    buf select = BUF_INIT, insert = BUF_INIT;
    sqlite3_stmt *s = NULL;
    store_err e = store_copy_sqlite_columns(src, table, &sc);
    if (e == STORE_OK)
        e = store_copy_pg_columns(dst, table, &pc);
    if (e != STORE_OK) {
        buf_printf(err, "cannot read the columns of %s", table);
        goto cleanup;
    }
    *rows = 0;
    if (sc.n == 0)
        goto cleanup; /* an older SQLite schema never had it */
    if (pc.n == 0) {  /* nor PostgreSQL's: say what stays behind */
        *rows = -1;
        buf_printf(&select, "SELECT count(*) FROM \"%s\"", table);
        if (sqlite3_prepare_v2(src->db, buf_cstr(&select), -1, &s, NULL) != SQLITE_OK ||
            sqlite3_step(s) != SQLITE_ROW) {
            buf_printf(err, "cannot read %s: %s", table, sqlite3_errmsg(src->db));
            e = STORE_IO;
            goto cleanup;
        }
        if (sqlite3_column_int64(s, 0) > 0)
            buf_printf(notes,
                       "not copied: %lld rows of %s (the PostgreSQL schema has no such table)\n",
                       (long long)sqlite3_column_int64(s, 0), table);
        goto cleanup;
    }
    for (int i = 0; i < sc.n; i++) {
        if (store_copy_has(&pc, sc.names[i]))
            store_copy_add(&both, sc.names[i]);
        else
            buf_printf(notes, "not copied: column %s.%s (the PostgreSQL schema has none)\n", table,
                       sc.names[i]);
    }
    buf_puts(&select, "SELECT ");
    buf_printf(&insert, "INSERT INTO %s(", table);
    for (int i = 0; i < both.n; i++) {
        buf_printf(&select, "%s\"%s\"", i ? ", " : "", both.names[i]);
        buf_printf(&insert, "%s\"%s\"", i ? ", " : "", both.names[i]);
    }
    buf_printf(&select, " FROM \"%s\" ORDER BY rowid", table);
    buf_puts(&insert, ") VALUES(");
    for (int i = 0; i < both.n; i++)
        buf_printf(&insert, "%s$%d", i ? ", " : "", i + 1);
    buf_puts(&insert, ")");
    if (sqlite3_prepare_v2(src->db, buf_cstr(&select), -1, &s, NULL) != SQLITE_OK) {
        buf_printf(err, "cannot read %s: %s", table, sqlite3_errmsg(src->db));
        e = STORE_IO;
        goto cleanup;
    }
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *values[STORE_COPY_MAX_COLUMNS];
        for (int i = 0; i < both.n; i++)
            values[i] = sqlite3_column_type(s, i) == SQLITE_NULL
                            ? NULL
                            : (const char *)sqlite3_column_text(s, i);
        PGresult *r = store_pg_exec(dst, buf_cstr(&insert), both.n, values, &e);
        PQclear(r);
        if (e != STORE_OK) {
            buf_printf(err, "cannot copy row %" PRId64 " of %s: %s", *rows + 1, table,
                       PQerrorMessage(store_pg_conn(dst)));
            goto cleanup;
        }
        (*rows)++;
    }
    if (rc != SQLITE_DONE) {
        buf_printf(err, "cannot read %s: %s", table, sqlite3_errmsg(src->db));
        e = STORE_IO;
        goto cleanup;
    }
    /* New ids continue after the copied ones. */
    if (*rows > 0 && store_copy_has(&both, "id")) {
        char sql[256];
        snprintf(sql, sizeof sql,
                 "SELECT setval(pg_get_serial_sequence('%s', 'id'), max(id)) FROM %s"
                 " HAVING pg_get_serial_sequence('%s', 'id') IS NOT NULL",
                 table, table, table);
        PGresult *r = store_pg_exec(dst, sql, 0, NULL, &e);
        PQclear(r);
        if (e != STORE_OK)
            buf_printf(err, "cannot set the id sequence of %s: %s", table,
                       PQerrorMessage(store_pg_conn(dst)));
    }
cleanup:
    sqlite3_finalize(s);
    buf_free(&select);
    buf_free(&insert);
    store_copy_columns_free(&sc);
    store_copy_columns_free(&pc);
    store_copy_columns_free(&both);
    return e;
}

/* After the copy, with deferred triggers run: every table with ids holds
 * the same ids in PostgreSQL as in SQLite (a trigger that numbers rows, as
 * an event feed's may, must not have renumbered them: the shops' cursors
 * and the rows that refer to them keep the old ones). */
static store_err store_copy_check_ids(store *src, store *dst, const char *table, buf *err)
{
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT count(*), coalesce(min(id), 0), coalesce(max(id), 0) FROM %s",
             table);
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(src->db, sql, -1, &s, NULL) != SQLITE_OK ||
        sqlite3_step(s) != SQLITE_ROW) {
        sqlite3_finalize(s);
        buf_printf(err, "cannot read %s: %s", table, sqlite3_errmsg(src->db));
        return STORE_IO;
    }
    char want[100];
    snprintf(want, sizeof want, "%lld %lld %lld", (long long)sqlite3_column_int64(s, 0),
             (long long)sqlite3_column_int64(s, 1), (long long)sqlite3_column_int64(s, 2));
    sqlite3_finalize(s);
    store_err e;
    PGresult *r = store_pg_exec(dst, sql, 0, NULL, &e);
    char got[100] = "";
    if (r != NULL && PQntuples(r) == 1)
        snprintf(got, sizeof got, "%s %s %s", PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1),
                 PQgetvalue(r, 0, 2));
    PQclear(r);
    if (e != STORE_OK) {
        buf_printf(err, "cannot check the ids of %s", table);
        return e;
    }
    if (strcmp(want, got) != 0) {
        buf_printf(err, "the ids of %s would change (count, min, max: %s in SQLite, %s copied)",
                   table, want, got);
        return STORE_IO;
    }
    return STORE_OK;
}

store_err store_copy_to_pg(const char *sqlite_path, const char *url, store_copy_fn report, void *ud,
                           buf *notes, buf *err)
{
    store *src = NULL, *dst = NULL;
    store_err e = STORE_IO;
    if (store_is_url(sqlite_path) || !store_is_url(url)) {
        buf_puts(err, "copies a SQLite database into a PostgreSQL one (postgresql://...)");
        return STORE_IO;
    }
    if (access(sqlite_path, R_OK | W_OK) != 0) {
        buf_printf(err, "cannot open database %s: no such file, or not readable and writable",
                   sqlite_path);
        return STORE_IO;
    }
    /* Refused while a gateway runs on it (its flock); brought to the
     * current schema, with intents in doubt settled as at any start. */
    if (store_open(sqlite_path, &src, err) != STORE_OK)
        goto cleanup;
    if (store_open(url, &dst, err) != STORE_OK)
        goto cleanup;
    int64_t counts[sizeof store_copy_tables / sizeof *store_copy_tables] = {0};
    store_pg_internal(true);
    e = store_pg_tx_begin(dst);
    if (e != STORE_OK) {
        buf_puts(err, "cannot begin a transaction in PostgreSQL");
        store_pg_internal(false);
        goto cleanup;
    }
    /* No gateway writes invoices while the copy runs, and the target has
     * none: a copy never merges into a database in use. */
    store_err le;
    PGresult *r = store_pg_exec(dst,
                                "LOCK TABLE invoices IN EXCLUSIVE MODE;"
                                " SELECT EXISTS(SELECT 1 FROM invoices)",
                                0, NULL, &le);
    e = le;
    if (r != NULL && PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "f") != 0) {
        buf_puts(err, "the PostgreSQL database already has invoices: copy only into an empty one");
        e = STORE_CONFLICT;
    } else if (e != STORE_OK) {
        buf_printf(err, "cannot lock the invoices table: %s", PQerrorMessage(store_pg_conn(dst)));
    }
    PQclear(r);
    for (size_t i = 0; e == STORE_OK && i < sizeof store_copy_tables / sizeof *store_copy_tables;
         i++)
        e = store_copy_table(src, dst, store_copy_tables[i], &counts[i], notes, err);
    if (e == STORE_OK) {
        e = store_pg_run(dst, "SET CONSTRAINTS ALL IMMEDIATE", 0, NULL);
        if (e != STORE_OK)
            buf_printf(err, "the copy breaks a constraint: %s", PQerrorMessage(store_pg_conn(dst)));
    }
    for (size_t i = 0; e == STORE_OK && i < sizeof store_copy_tables / sizeof *store_copy_tables;
         i++)
        if (counts[i] > 0 && strcmp(store_copy_tables[i], "terminals") != 0 &&
            strcmp(store_copy_tables[i], "idempotency") != 0)
            e = store_copy_check_ids(src, dst, store_copy_tables[i], err);
    e = store_pg_tx_end(dst, e);
    store_pg_internal(false);
    if (e != STORE_OK) {
        if (err->len == 0)
            buf_puts(err, "committing the copy failed");
        goto cleanup;
    }
    for (size_t i = 0; i < sizeof store_copy_tables / sizeof *store_copy_tables; i++)
        if (counts[i] >= 0) /* -1: no such table in PostgreSQL (a note says so) */
            report(store_copy_tables[i], counts[i], ud);
cleanup:
    store_close(dst);
    store_close(src);
    return e;
}
