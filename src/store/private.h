/* store/private.h — what the files of the SQLite store share, and nothing
 * outside src/store/ may include: the connection (struct store), the
 * statement cache, the transaction helpers and the row readers.
 *
 * store.h is the one public interface; this header is the SQLite seam. The
 * per-resource files (invoices.c, refunds.c, settle.c, receipts.c,
 * terminals.c, idempotency.c) hold only SQL and the mapping of rows to the
 * structs of store.h, and reach SQLite through the helpers declared here,
 * which db.c (connection, lock, transactions, shared fdatasyncs) and
 * schema.c (migrations, crash recovery) implement. Another backend would
 * replace this header and those two files and keep the resource files'
 * shape. Every function here expects the caller to follow the locking rules
 * written beside it; names keep the store_ prefix. */
#ifndef SEQR_STORE_PRIVATE_H
#define SEQR_STORE_PRIVATE_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "secretbox.h"
#include "store.h"

#define STORE_MAX_STMTS 64

struct store_pg;

struct store {
    /* The PostgreSQL backend (store/pg/pg.h) when opened from a URL: then
     * db is NULL and each public function hands over to its store_pg_ twin
     * (store_stmt() returns NULL, so one that has none fails with STORE_IO
     * instead of touching SQLite). */
    struct store_pg *pg;
    sqlite3 *db;
    /* Seals terminal passwords (store_set_secret_key); none: they cannot be
     * stored or read. */
    unsigned char secret_key[SECRETBOX_KEY_LEN];
    bool has_secret_key;
    pthread_mutex_t lock; /* recursive: batch holds it across calls */
    int batch_depth;
    int changes_at_begin; /* sqlite3_total_changes() when the transaction began */
    /* Durable commits (see store_sync): the connection runs with
     * synchronous=NORMAL, so a commit only writes its pages to the WAL; a
     * durable one then waits until an fdatasync of the WAL has covered it. */
    int lock_fd;                /* the database file, flock()ed: one gateway per database */
    int wal_fd;                 /* our own descriptor of the WAL file */
    _Atomic uint64_t committed; /* commits whose pages are in the WAL (under lock) */
    pthread_mutex_t sync_lock;  /* guards the four fields below */
    pthread_cond_t sync_done;
    uint64_t synced;  /* every commit up to this number is on disk */
    bool syncing;     /* a thread is inside fdatasync now */
    bool sync_failed; /* sticky: after a failed fdatasync nothing is trusted */
    struct {
        const char *sql; /* static string, compared by address */
        sqlite3_stmt *stmt;
    } cache[STORE_MAX_STMTS];
    int ncache;
    /* store_fail_writes(), for tests: writes left to succeed, then writes to
     * fail (under lock). */
    int fault_skip, fault_count;
    /* events.c: set by the update hook when a transaction wrote an event;
     * the event hook runs once that transaction commits. */
    bool event_written;
    int64_t event_first, event_last; /* ids of the events it wrote */
    store_event_hook event_hook;
    store_event_ids_wanted event_ids_wanted;
    void *event_hook_ud;
    bool events_may_pend; /* false once store_set_delivery said can_sign false */
};

/* --- db.c: lock, statements, transactions --- */

/* The connection's mutex (recursive: the poller's batch holds it across
 * calls). Readers take it around their statements; writers get it from
 * store_tx_begin(). */
void store_lock(store *st);
void store_unlock(store *st);
/* Returns the cached prepared statement for sql (a static string, compared
 * by address), reset and with bindings cleared; NULL on a prepare error
 * (logged). Under the lock; give it back with store_done(). */
sqlite3_stmt *store_stmt(store *st, const char *sql);
/* Resets a cached statement; statements beyond the cache are finalised. */
void store_done(store *st, sqlite3_stmt *stmt);
/* Binds text, NULL as "" (SQLITE_TRANSIENT: the text is copied). */
void store_bind_text(sqlite3_stmt *s, int i, const char *text);
/* Runs sql (one or more statements, no rows wanted) outside the cache. */
store_err store_exec(store *st, const char *sql);
/* Every write runs inside a savepoint: a transaction of its own, or a part
 * of the poller's batch. Takes the lock; store_tx_end()/store_tx_finish()
 * release it. */
store_err store_tx_begin(store *st);
/* Ends the savepoint: releases it on success, rolls it back otherwise, then
 * unlocks. When that committed a transaction and durable is set, returns only
 * once the commit is on disk (shared fdatasync). */
store_err store_tx_finish(store *st, store_err result, bool durable);
/* store_tx_finish(st, result, true). */
store_err store_tx_end(store *st, store_err result);
/* Steps a write statement to SQLITE_DONE and gives it back: STORE_CONFLICT
 * for a constraint, STORE_IO for any other failure. */
store_err store_step_done(store *st, sqlite3_stmt *s);
/* Copies a text column into dst ("" for NULL), truncating to dstlen. */
void store_copy_col(sqlite3_stmt *s, int col, char *dst, size_t dstlen);
/* A malloc'd copy of a text column, NULL for NULL (aborts when out of memory). */
char *store_dup_col(sqlite3_stmt *s, int col);
/* Runs a query whose single column is a JSON text, with ?1 bound to id;
 * copies it to *json (malloc'd). Takes the lock. */
store_err store_query_json(store *st, const char *sql, int64_t id, char **json);

/* True when store_fail_writes() says this write must fail (and counts it).
 * Under the lock. */
bool store_fault(store *st);

/* --- schema.c: migrations, crash recovery --- */

/* Brings the database to the current schema (PRAGMA user_version); err says
 * why on failure. */
store_err store_migrate(store *st, buf *err);
/* Crash recovery: an intent without an outcome has an unknown outcome. */
store_err store_recover(store *st);

/* --- invoices.c: the invoice row --- */

/* The columns store_read_invoice() reads, selected from invoices i. */
#define STORE_INVOICE_COLUMNS                                                                      \
    "i.id, ifnull(i.reference, ''), i.send_state, i.status, i.version, i.qr_code, i.currency,"     \
    " i.total, i.terminal_id, i.payment_mode, i.client_reference, i.ers_reference, i.doc,"         \
    " i.receipt, i.receipt_submitted, i.polling_stopped, i.last_error, i.created_at,"              \
    " i.updated_at, i.expires_at, i.paid_at, i.notify_token,"                                      \
    " (SELECT ifnull(sum(amount), 0) FROM refunds r WHERE r.invoice_id = i.id"                     \
    "  AND r.state <> 'failed'),"                                                                  \
    " EXISTS(SELECT 1 FROM refunds r WHERE r.invoice_id = i.id), i.pay_token, i.pay_secret,"       \
    " i.issued_at"

void store_read_invoice(sqlite3_stmt *s, store_invoice *inv);
/* Runs a SELECT of STORE_INVOICE_COLUMNS (with param, if not NULL, bound to
 * its one '?') and hands every row to fn. Takes the lock. */
store_err store_for_each(store *st, const char *sql, const char *param, store_invoice_fn fn,
                         void *ud);
/* Appends a status history row; inside a write transaction. */
store_err store_history_add(store *st, int64_t invoice_id, const char *status, int64_t version,
                            int64_t at);

/* --- events.c: the outbox --- */

/* Installs the update and rollback hooks that note event inserts (once, at
 * open, after the migrations). */
void store_events_hooks(store *st);
/* With the lock held, right after a commit that wrote something: runs the
 * event hook when that transaction wrote an event. */
void store_events_committed(store *st);

#endif
