/* store.c — SQLite store; see store.h. */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "secretbox.h"
#include "metrics.h"

#define STORE_MAX_STMTS 64

struct store {
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
    /* >>> events: set by the update hook when a transaction wrote an event;
     * the event hook runs once that transaction commits. */
    bool event_written;
    store_event_hook event_hook;
    void *event_hook_ud;
    /* <<< events */
};

/* >>> events: the outbox's schema. Triggers write an event row in the same
 * transaction as the change it tells of, so no change can be stored without
 * its event nor an event without its change, whichever write function (or
 * crash recovery) made the change. data is the object as it was after the
 * change, amounts in minor units and times in ms (events.c renders them in
 * the contract's shape). AUTOINCREMENT: an event id is never reused, so a
 * client's cursor (GET /events?after=) stays valid. Delivery state lives on
 * the row: pending -> delivered | failed (gave up) | skipped (no URL). */
#define STORE_EVENT_NOW "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"
#define STORE_EVENT_INVOICE_DATA                                                                   \
    "json_object('id', NEW.id, 'invoiceReference', NEW.reference, 'status', NEW.status,"          \
    " 'version', NEW.version, 'outcome', NEW.send_state,"                                         \
    " 'clientInvoiceId', json_extract(NEW.doc, '$.clientInvoiceId'),"                              \
    " 'clientReference', nullif(NEW.client_reference, ''),"                                       \
    " 'terminalId', nullif(NEW.terminal_id, ''), 'paymentMode', nullif(NEW.payment_mode, ''),"    \
    " 'currency', NEW.currency, 'totalAmount', NEW.total,"                                        \
    " 'refundedAmount', (SELECT ifnull(sum(amount), 0) FROM refunds r"                            \
    "  WHERE r.invoice_id = NEW.id AND r.state <> 'failed'),"                                     \
    " 'ersReference', nullif(NEW.ers_reference, ''),"                                             \
    " 'receiptSubmitted', json(CASE WHEN NEW.receipt_submitted THEN 'true' ELSE 'false' END),"    \
    " 'error', nullif(NEW.last_error, ''), 'createdAt', NEW.created_at,"                          \
    " 'updatedAt', NEW.updated_at, 'expiresAt', NEW.expires_at, 'paidAt', NEW.paid_at)"
#define STORE_EVENT_INSERT_INVOICE(type)                                                           \
    " INSERT INTO events(type, invoice_id, at, data) VALUES(" type ", NEW.id, " STORE_EVENT_NOW    \
    ", " STORE_EVENT_INVOICE_DATA ");"
#define STORE_EVENTS_MIGRATION                                                                     \
    "CREATE TABLE events("                                                                         \
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"                                                       \
    " type TEXT NOT NULL,"                                                                         \
    " invoice_id INTEGER NOT NULL REFERENCES invoices(id),"                                        \
    " refund_id INTEGER,"                                                                          \
    " at INTEGER NOT NULL,"                                                                        \
    " data TEXT NOT NULL,"                                                                         \
    " state TEXT NOT NULL DEFAULT 'pending',"                                                      \
    " attempts INTEGER NOT NULL DEFAULT 0,"                                                        \
    " next_at INTEGER NOT NULL DEFAULT 0,"                                                         \
    " done_at INTEGER NOT NULL DEFAULT 0);"                                                        \
    "CREATE INDEX events_invoice ON events(invoice_id, id);"                                       \
    "CREATE INDEX events_pending ON events(invoice_id, id) WHERE state = 'pending';"               \
    "CREATE INDEX events_due ON events(next_at, id) WHERE state = 'pending';"                      \
    "CREATE TABLE delivery_attempts("                                                              \
    " id INTEGER PRIMARY KEY,"                                                                     \
    " event_id INTEGER NOT NULL REFERENCES events(id),"                                            \
    " url TEXT NOT NULL,"                                                                          \
    " at INTEGER NOT NULL,"                                                                        \
    " http_status INTEGER NOT NULL,"                                                               \
    " latency_ms INTEGER NOT NULL,"                                                                \
    " error TEXT NOT NULL DEFAULT '');"                                                            \
    "CREATE INDEX delivery_attempts_event ON delivery_attempts(event_id);"                         \
    "CREATE TRIGGER events_invoice_sent AFTER UPDATE OF send_state ON invoices"                    \
    " WHEN NEW.send_state = 'sent' AND OLD.send_state <> 'sent' BEGIN"                             \
    STORE_EVENT_INSERT_INVOICE("'invoice.created'") " END;"                                        \
    "CREATE TRIGGER events_invoice_unknown AFTER UPDATE OF send_state ON invoices"                 \
    " WHEN NEW.send_state = 'unknown' AND OLD.send_state <> 'unknown' BEGIN"                       \
    STORE_EVENT_INSERT_INVOICE("'invoice.unknown_outcome'") " END;"                                \
    "CREATE TRIGGER events_invoice_rejected AFTER UPDATE OF send_state ON invoices"                \
    " WHEN NEW.send_state = 'rejected' AND OLD.send_state = 'unknown' BEGIN"                       \
    STORE_EVENT_INSERT_INVOICE("'invoice.rejected'") " END;"                                       \
    "CREATE TRIGGER events_invoice_status AFTER UPDATE OF status, version ON invoices"              \
    " WHEN NEW.send_state = 'sent' AND OLD.send_state = 'sent'"                                    \
    " AND (NEW.status <> OLD.status OR NEW.version <> OLD.version) BEGIN"                          \
    STORE_EVENT_INSERT_INVOICE(                                                                    \
        "CASE WHEN NEW.status = OLD.status THEN 'invoice.updated'"                                 \
        " ELSE CASE NEW.status WHEN 'PAID' THEN 'invoice.paid'"                                    \
        " WHEN 'CANCELED' THEN CASE WHEN NEW.expires_at > 0 AND NEW.expires_at <= "                \
        STORE_EVENT_NOW " THEN 'invoice.expired' ELSE 'invoice.canceled' END"                      \
        " WHEN 'FAILED' THEN 'invoice.failed' WHEN 'RESERVED' THEN 'invoice.reserved'"             \
        " WHEN 'PARTIALLY_PAID' THEN 'invoice.partially_paid' ELSE 'invoice.updated' END END")     \
    " END;"                                                                                        \
    "CREATE TRIGGER events_invoice_doc AFTER UPDATE OF doc, total ON invoices"                     \
    " WHEN NEW.send_state = 'sent' AND (NEW.doc <> OLD.doc OR NEW.total <> OLD.total) BEGIN"      \
    STORE_EVENT_INSERT_INVOICE("'invoice.updated'") " END;"                                        \
    "CREATE TRIGGER events_invoice_receipt AFTER UPDATE OF receipt_submitted ON invoices"          \
    " WHEN NEW.receipt_submitted <> 0 AND OLD.receipt_submitted = 0 BEGIN"                         \
    STORE_EVENT_INSERT_INVOICE("'invoice.receipt_submitted'") " END;"                              \
    "CREATE TRIGGER events_refund AFTER UPDATE OF state ON refunds"                                \
    " WHEN NEW.state <> OLD.state AND NEW.state IN ('done', 'failed', 'unknown') BEGIN"            \
    " INSERT INTO events(type, invoice_id, refund_id, at, data) SELECT"                            \
    "  CASE WHEN OLD.state = 'unknown' THEN 'refund.settled' WHEN NEW.state = 'done'"              \
    "  THEN 'refund.succeeded' WHEN NEW.state = 'failed' THEN 'refund.failed'"                     \
    "  ELSE 'refund.in_doubt' END, NEW.invoice_id, NEW.id, " STORE_EVENT_NOW ","                   \
    "  json_object('id', NEW.id, 'invoiceReference', i.reference, 'amount', NEW.amount,"           \
    "  'currency', i.currency, 'status', NEW.state, 'ersReference', nullif(NEW.ers_reference, ''),"\
    "  'title', nullif(NEW.title, ''), 'error', nullif(NEW.error, ''),"                            \
    "  'createdAt', NEW.created_at, 'updatedAt', NEW.updated_at)"                                  \
    "  FROM invoices i WHERE i.id = NEW.invoice_id; END;"
/* <<< events */

/* Forward migrations; index i brings user_version i to i + 1. */
static const char *const store_migrations[] = {
    "CREATE TABLE invoices("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " reference TEXT UNIQUE,"
    " send_state TEXT NOT NULL,"
    " status TEXT NOT NULL,"
    " version INTEGER NOT NULL DEFAULT 0,"
    " qr_code TEXT NOT NULL DEFAULT '',"
    " currency TEXT NOT NULL,"
    " total INTEGER NOT NULL,"
    " terminal_id TEXT NOT NULL DEFAULT '',"
    " payment_mode TEXT NOT NULL DEFAULT '',"
    " client_reference TEXT NOT NULL DEFAULT '',"
    " ers_reference TEXT NOT NULL DEFAULT '',"
    " doc TEXT NOT NULL,"
    " receipt TEXT,"
    " receipt_submitted INTEGER NOT NULL DEFAULT 0,"
    " polling_stopped INTEGER NOT NULL DEFAULT 0,"
    " last_error TEXT NOT NULL DEFAULT '',"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL,"
    " paid_at INTEGER NOT NULL DEFAULT 0,"
    " notify_token TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX invoices_status ON invoices(status, id);"
    "CREATE INDEX invoices_pending ON invoices(id) WHERE send_state = 'sent'"
    " AND polling_stopped = 0 AND status NOT IN ('PAID', 'CANCELED', 'FAILED');"
    "CREATE TABLE status_history("
    " id INTEGER PRIMARY KEY,"
    " invoice_id INTEGER NOT NULL REFERENCES invoices(id),"
    " status TEXT NOT NULL,"
    " version INTEGER NOT NULL,"
    " at INTEGER NOT NULL);"
    "CREATE INDEX status_history_invoice ON status_history(invoice_id);"
    "CREATE TABLE refunds("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " invoice_id INTEGER NOT NULL REFERENCES invoices(id),"
    " amount INTEGER NOT NULL CHECK (amount > 0),"
    " title TEXT NOT NULL DEFAULT '',"
    " state TEXT NOT NULL,"
    " ers_reference TEXT NOT NULL DEFAULT '',"
    " error TEXT NOT NULL DEFAULT '',"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL);"
    "CREATE INDEX refunds_invoice ON refunds(invoice_id);"
    "CREATE TABLE receipts("
    " id INTEGER PRIMARY KEY,"
    " invoice_id INTEGER NOT NULL REFERENCES invoices(id),"
    " mime_type TEXT NOT NULL DEFAULT '',"
    " receipt_type TEXT NOT NULL DEFAULT '',"
    " data_len INTEGER NOT NULL DEFAULT 0,"
    " result_code INTEGER NOT NULL,"
    " at INTEGER NOT NULL);"
    "CREATE TABLE periods("
    " id INTEGER PRIMARY KEY,"
    " period_id TEXT NOT NULL,"
    " terminal_id TEXT NOT NULL DEFAULT '',"
    " at INTEGER NOT NULL);"
    "CREATE TABLE terminals("
    " terminal_id TEXT PRIMARY KEY,"
    " external_id TEXT NOT NULL,"
    " name TEXT NOT NULL,"
    " password TEXT NOT NULL,"
    " seqr_id TEXT NOT NULL DEFAULT '',"
    " unregistered INTEGER NOT NULL DEFAULT 0,"
    " created_at INTEGER NOT NULL);"
    "CREATE TABLE idempotency("
    " key TEXT PRIMARY KEY,"
    " method TEXT NOT NULL,"
    " path TEXT NOT NULL,"
    " body TEXT NOT NULL,"
    " status INTEGER NOT NULL DEFAULT 0,"
    " response TEXT NOT NULL DEFAULT '',"
    " created_at INTEGER NOT NULL);",
    /* 2: the pending index goes, an index of unknown outcomes comes. The
     * pending index was written twice in every invoice's life (sent, then
     * final) and only served the start-up scan; its "status NOT IN (...)"
     * made SQLite build two temporary b-trees on every UPDATE of an invoice.
     * Invoices and refunds of unknown outcome are counted by every /healthz;
     * without an index that was a scan of the whole table, under the store
     * lock. These partial indexes are empty in normal operation and never
     * written on the normal path (sending -> sent, sending -> done). Queries
     * must spell their predicates the same way for SQLite to use them. */
    "DROP INDEX invoices_pending;"
    "CREATE INDEX invoices_unknown ON invoices(id) WHERE send_state = 'unknown';"
    "CREATE INDEX refunds_unknown ON refunds(id) WHERE state = 'unknown';",
    /* 3: the invoices table rebuilt without AUTOINCREMENT and with its
     * reference unique through a partial index, so that a new invoice writes
     * two pages fewer: AUTOINCREMENT rewrote sqlite_sequence on every intent,
     * and the UNIQUE column put the intent's NULL reference into the index,
     * only for the outcome to move it. Ids still only grow (no invoice row is
     * ever deleted, so max(id) + 1 is never an old id). A partial index on
     * "reference IS NOT NULL" serves every "reference = ?". SQLite's
     * documented way to change a table: new table, copy, drop, rename, with
     * foreign keys off around it (store_migrate) and checked before commit. */
    "CREATE TABLE invoices_new("
    " id INTEGER PRIMARY KEY,"
    " reference TEXT,"
    " send_state TEXT NOT NULL,"
    " status TEXT NOT NULL,"
    " version INTEGER NOT NULL DEFAULT 0,"
    " qr_code TEXT NOT NULL DEFAULT '',"
    " currency TEXT NOT NULL,"
    " total INTEGER NOT NULL,"
    " terminal_id TEXT NOT NULL DEFAULT '',"
    " payment_mode TEXT NOT NULL DEFAULT '',"
    " client_reference TEXT NOT NULL DEFAULT '',"
    " ers_reference TEXT NOT NULL DEFAULT '',"
    " doc TEXT NOT NULL,"
    " receipt TEXT,"
    " receipt_submitted INTEGER NOT NULL DEFAULT 0,"
    " polling_stopped INTEGER NOT NULL DEFAULT 0,"
    " last_error TEXT NOT NULL DEFAULT '',"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL,"
    " paid_at INTEGER NOT NULL DEFAULT 0,"
    " notify_token TEXT NOT NULL DEFAULT '');"
    "INSERT INTO invoices_new(id, reference, send_state, status, version, qr_code, currency,"
    " total, terminal_id, payment_mode, client_reference, ers_reference, doc, receipt,"
    " receipt_submitted, polling_stopped, last_error, created_at, updated_at, expires_at,"
    " paid_at, notify_token)"
    " SELECT id, reference, send_state, status, version, qr_code, currency,"
    " total, terminal_id, payment_mode, client_reference, ers_reference, doc, receipt,"
    " receipt_submitted, polling_stopped, last_error, created_at, updated_at, expires_at,"
    " paid_at, notify_token FROM invoices;"
    "DROP TABLE invoices;"
    "ALTER TABLE invoices_new RENAME TO invoices;"
    "CREATE UNIQUE INDEX invoices_reference ON invoices(reference) WHERE reference IS NOT NULL;"
    "CREATE INDEX invoices_status ON invoices(status, id);"
    "CREATE INDEX invoices_unknown ON invoices(id) WHERE send_state = 'unknown';"
    "DELETE FROM sqlite_sequence WHERE name = 'invoices';",
    /* 4: a receipt keeps what was submitted (its base64 receiptData, so the
     * shop can show the buyer the same receipt: GET /invoices/{ref}/receipt.html)
     * and is found by its invoice through an index; a terminal keeps its own
     * cashierId (the default for its invoices' required cashierId). Adding
     * nullable/defaulted columns rewrites no rows. */
    "ALTER TABLE receipts ADD COLUMN data TEXT;"
    "CREATE INDEX receipts_invoice ON receipts(invoice_id);"
    "ALTER TABLE terminals ADD COLUMN cashier_id TEXT NOT NULL DEFAULT '';",
    /* 5: Idempotency-Keys scoped per API key and fingerprinted, not kept.
     * Schemas up to 4 stored every request body (terminal passwords included, and
     * up to max_body_bytes each) and compared raw bytes. Now a row holds the
     * SHA-256 of the canonical request and the answer; rows expire after
     * [http] idempotency_ttl_s (created_at is indexed for the pruning).
     * Finished rows of older schemas are kept for their replays under scope '*'
     * (any key) with the fingerprint 'legacy' (any request); rows still
     * running are dropped as at every start. secure_delete overwrites the
     * dropped bodies in the file instead of leaving them on free pages. */
    "PRAGMA secure_delete = ON;"
    "CREATE TABLE idempotency_new("
    " scope TEXT NOT NULL,"
    " key TEXT NOT NULL,"
    " request_hash TEXT NOT NULL,"
    " status INTEGER NOT NULL DEFAULT 0,"
    " response TEXT NOT NULL DEFAULT '',"
    " created_at INTEGER NOT NULL,"
    " PRIMARY KEY(scope, key));"
    "INSERT INTO idempotency_new(scope, key, request_hash, status, response, created_at)"
    " SELECT '*', key, 'legacy', status, response, created_at FROM idempotency"
    " WHERE status <> 0;"
    "DROP TABLE idempotency;"
    "ALTER TABLE idempotency_new RENAME TO idempotency;"
    "CREATE INDEX idempotency_created ON idempotency(created_at);",
    /* >>> events (outbox; see the events block at the end of this file) */
    STORE_EVENTS_MIGRATION,
    /* <<< events */
};
#define STORE_SCHEMA_VERSION ((int)(sizeof store_migrations / sizeof *store_migrations))

const char *store_strerror(store_err err)
{
    switch (err) {
    case STORE_OK:
        return "ok";
    case STORE_NOT_FOUND:
        return "not found";
    case STORE_CONFLICT:
        return "conflict";
    case STORE_IO:
        return "database error";
    }
    return "unknown store error";
}

int64_t store_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void store_lock(store *st)
{
    pthread_mutex_lock(&st->lock);
}

static void store_unlock(store *st)
{
    pthread_mutex_unlock(&st->lock);
}

/* Returns the cached prepared statement for sql (a static string), reset and
 * with bindings cleared; NULL on a prepare error (logged to stderr). */
static sqlite3_stmt *store_stmt(store *st, const char *sql)
{
    for (int i = 0; i < st->ncache; i++) {
        if (st->cache[i].sql == sql) {
            sqlite3_reset(st->cache[i].stmt);
            sqlite3_clear_bindings(st->cache[i].stmt);
            return st->cache[i].stmt;
        }
    }
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
        fprintf(stderr, "store: prepare failed: %s\n", sqlite3_errmsg(st->db));
        return NULL;
    }
    if (st->ncache < STORE_MAX_STMTS) {
        st->cache[st->ncache].sql = sql;
        st->cache[st->ncache].stmt = stmt;
        st->ncache++;
    }
    return stmt;
}

/* Statements beyond the cache are finalised by the caller via this. */
static void store_done(store *st, sqlite3_stmt *stmt)
{
    for (int i = 0; i < st->ncache; i++) {
        if (st->cache[i].stmt == stmt) {
            sqlite3_reset(stmt);
            return;
        }
    }
    sqlite3_finalize(stmt);
}

static void store_bind_text(sqlite3_stmt *s, int i, const char *text)
{
    sqlite3_bind_text(s, i, text ? text : "", -1, SQLITE_TRANSIENT);
}

static store_err store_exec(store *st, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "store: %s: %s\n", sql, msg ? msg : "?");
        sqlite3_free(msg);
        return STORE_IO;
    }
    return STORE_OK;
}

static const char store_sql_savepoint[] = "SAVEPOINT store_tx";
static const char store_sql_release[] = "RELEASE store_tx";
static const char store_sql_rollback[] = "ROLLBACK TO store_tx";
static const char store_sql_begin[] = "BEGIN IMMEDIATE";
static const char store_sql_commit[] = "COMMIT";
static const char store_sql_rollback_all[] = "ROLLBACK";

/* Runs one of the statements above through the statement cache (they run
 * several times per request; parsing them each time showed in profiles). */
static store_err store_exec_cached(store *st, const char *sql)
{
    sqlite3_stmt *s = store_stmt(st, sql);
    if (s == NULL)
        return STORE_IO;
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        fprintf(stderr, "store: %s: %s\n", sql, sqlite3_errmsg(st->db));
        return STORE_IO;
    }
    return STORE_OK;
}

/* Durable commits, leader/follower style. Every commit gets a number
 * (st->committed, taken under the store lock, so numbers follow commit
 * order). A thread that needs commit seq on disk either finds it covered
 * already, waits for the fdatasync under way and looks again, or does the
 * fdatasync itself for everything committed so far. Alone, a request pays
 * one fdatasync and no thread hand-off; under load one fdatasync covers
 * every commit made while the previous one ran. The store lock is not held
 * meanwhile, so other requests keep committing.
 *
 * Why this is safe: the WAL is the only file a commit writes (the database
 * file changes only in checkpoints, which sync the WAL before they copy and
 * the database after). fdatasync on our own descriptor of the WAL flushes
 * every page of that file, whoever wrote it. A failed fdatasync leaves the
 * page cache in an unknown state (the kernel may have dropped the dirty
 * pages), so it is sticky: every later durable commit fails and /healthz
 * reports the database as failing until the daemon is restarted. */
static store_err store_sync(store *st, uint64_t seq)
{
    pthread_mutex_lock(&st->sync_lock);
    while (st->synced < seq && !st->sync_failed) {
        if (st->syncing) {
            pthread_cond_wait(&st->sync_done, &st->sync_lock);
            continue;
        }
        st->syncing = true;
        uint64_t upto = atomic_load(&st->committed);
        pthread_mutex_unlock(&st->sync_lock);
        int64_t t0 = metrics_now_us();
        int rc = fdatasync(st->wal_fd);
        int saved = errno;
        metrics_observe(METRICS_STORE_FSYNC, "", metrics_now_us() - t0);
        pthread_mutex_lock(&st->sync_lock);
        st->syncing = false;
        if (rc == 0) {
            if (upto > st->synced)
                st->synced = upto;
        } else {
            st->sync_failed = true;
            log_error("store: fdatasync of the WAL failed (%s); no further write is "
                      "trusted, restart the gateway",
                      strerror(saved));
        }
        pthread_cond_broadcast(&st->sync_done);
    }
    store_err e = st->synced >= seq ? STORE_OK : STORE_IO;
    pthread_mutex_unlock(&st->sync_lock);
    return e;
}

static void store_events_committed(store *st);

/* Called with the store lock held when a transaction may begin: remembers
 * how many rows had changed, so that its end can tell whether it wrote. */
static void store_note_begin(store *st)
{
    if (sqlite3_get_autocommit(st->db))
        st->changes_at_begin = sqlite3_total_changes(st->db);
}

/* Called with the store lock held right after a statement that may have
 * ended the transaction: numbers the commit if it did and wrote something
 * (0 if not: still inside a transaction, or nothing to put on disk, as when
 * a poll finds the status unchanged). */
static uint64_t store_committed(store *st)
{
    if (!sqlite3_get_autocommit(st->db) || sqlite3_total_changes(st->db) == st->changes_at_begin)
        return 0;
    store_events_committed(st);
    return atomic_fetch_add(&st->committed, 1) + 1;
}

/* Every write runs inside a savepoint: a transaction of its own, or a part
 * of the poller's batch. */
static store_err store_tx_begin(store *st)
{
    store_lock(st);
    if (st->sync_failed) {
        store_unlock(st);
        return STORE_IO;
    }
    store_note_begin(st);
    store_err e = store_exec_cached(st, store_sql_savepoint);
    if (e != STORE_OK)
        store_unlock(st);
    return e;
}

/* Ends the savepoint: releases it on success, rolls it back otherwise, then
 * unlocks. When that committed a transaction and durable is set, returns only
 * once the commit is on disk. */
static store_err store_tx_finish(store *st, store_err result, bool durable)
{
    uint64_t seq = 0;
    int64_t t0 = metrics_now_us();
    if (result == STORE_OK) {
        if (store_exec_cached(st, store_sql_release) != STORE_OK) {
            store_exec_cached(st, store_sql_rollback);
            store_exec_cached(st, store_sql_release);
            result = STORE_IO;
        } else {
            seq = store_committed(st);
        }
    } else {
        store_exec_cached(st, store_sql_rollback);
        store_exec_cached(st, store_sql_release);
    }
    store_unlock(st);
    if (seq != 0 && durable) {
        result = store_sync(st, seq);
        metrics_observe(METRICS_STORE_COMMIT, "", metrics_now_us() - t0);
    }
    return result;
}

static store_err store_tx_end(store *st, store_err result)
{
    return store_tx_finish(st, result, true);
}

static store_err store_step_done(store *st, sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    store_err e = STORE_OK;
    if (rc == SQLITE_CONSTRAINT)
        e = STORE_CONFLICT;
    else if (rc != SQLITE_DONE) {
        fprintf(stderr, "store: step failed: %s\n", sqlite3_errmsg(st->db));
        e = STORE_IO;
    }
    store_done(st, s);
    return e;
}

/* True when PRAGMA foreign_key_check finds no row without its parent. */
static bool store_foreign_keys_hold(store *st)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db, "PRAGMA foreign_key_check", -1, &s, NULL) != SQLITE_OK)
        return false;
    bool ok = sqlite3_step(s) == SQLITE_DONE;
    sqlite3_finalize(s);
    return ok;
}

static store_err store_migrate(store *st, buf *err)
{
    sqlite3_stmt *s = NULL;
    int version = 0;
    if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
        goto fail;
    if (sqlite3_step(s) == SQLITE_ROW)
        version = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    if (version > STORE_SCHEMA_VERSION) {
        buf_printf(err, "database schema version %d is newer than this seqr-gateway (%d)", version,
                   STORE_SCHEMA_VERSION);
        return STORE_IO;
    }
    if (version == STORE_SCHEMA_VERSION)
        return STORE_OK;
    /* Foreign keys off while migrating (a table rebuild drops a parent
     * table), then checked inside each migration's transaction. The PRAGMA
     * is a no-op inside a transaction, so it goes around them. */
    if (store_exec(st, "PRAGMA foreign_keys = OFF") != STORE_OK)
        goto fail;
    for (; version < STORE_SCHEMA_VERSION; version++) {
        char pragma[64];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", version + 1);
        if (store_exec(st, "BEGIN IMMEDIATE") != STORE_OK)
            goto fail;
        if (store_exec(st, store_migrations[version]) != STORE_OK ||
            store_exec(st, pragma) != STORE_OK) {
            store_exec(st, "ROLLBACK");
            goto fail;
        }
        if (!store_foreign_keys_hold(st)) {
            store_exec(st, "ROLLBACK");
            buf_printf(err, "migrating the database to schema %d failed: a row refers to a "
                            "missing parent (PRAGMA foreign_key_check)",
                       version + 1);
            return STORE_IO;
        }
        if (store_exec(st, "COMMIT") != STORE_OK)
            goto fail;
    }
    if (store_exec(st, "PRAGMA foreign_keys = ON") != STORE_OK)
        goto fail;
    /* A migration that rebuilt a table left a WAL as large as that table;
     * copy it into the database now and give the space back. */
    if (store_exec(st, "PRAGMA wal_checkpoint(TRUNCATE)") != STORE_OK)
        goto fail;
    return STORE_OK;
fail:
    buf_printf(err, "migrating the database failed: %s", sqlite3_errmsg(st->db));
    return STORE_IO;
}

/* Crash recovery: an intent without an outcome has an unknown outcome. */
static store_err store_recover(store *st)
{
    if (store_exec(st, "UPDATE invoices SET send_state = 'unknown',"
                       " last_error = 'gateway stopped during sendInvoice; outcome unknown'"
                       " WHERE send_state = 'sending'") != STORE_OK)
        return STORE_IO;
    if (store_exec(st, "UPDATE refunds SET state = 'unknown',"
                       " error = 'gateway stopped during refundPayment; outcome unknown'"
                       " WHERE state = 'sending'") != STORE_OK)
        return STORE_IO;
    /* Idempotency keys claimed by requests that died with the process: let a
     * retry run again (the intents above keep it from doing anything twice). */
    return store_exec(st, "DELETE FROM idempotency WHERE status = 0");
}

static void store_events_hooks(store *st);

store_err store_open(const char *path, store **out, buf *err)
{
    store *st = calloc(1, sizeof *st);
    if (st == NULL) {
        buf_puts(err, "out of memory");
        return STORE_IO;
    }
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&st->lock, &attr);
    pthread_mutexattr_destroy(&attr);
    pthread_mutex_init(&st->sync_lock, NULL);
    pthread_cond_init(&st->sync_done, NULL);
    st->wal_fd = -1;
    st->lock_fd = -1;

    int rc = sqlite3_open_v2(
        path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
    if (rc != SQLITE_OK) {
        buf_printf(err, "cannot open database %s: %s", path,
                   st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
        goto fail;
    }
    /* One gateway per database: a second one would recover (and so spoil)
     * the first one's intents under way, poll every invoice twice, and add a
     * second writer connection, which SQLite's WAL-reset race needs. The
     * lock is a BSD flock on the database file, which SQLite's own POSIX
     * locks do not see; the descriptor stays open until after sqlite3_close()
     * (closing a descriptor of the file would drop SQLite's POSIX locks). */
    st->lock_fd = open(path, O_RDONLY | O_CLOEXEC);
    if (st->lock_fd < 0 || flock(st->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        if (st->lock_fd >= 0 && errno == EWOULDBLOCK)
            buf_printf(err, "database %s is in use by another seqr-gateway process", path);
        else
            buf_printf(err, "cannot lock database %s: %s", path, strerror(errno));
        goto fail;
    }
    sqlite3_busy_timeout(st->db, 5000);
    /* NORMAL: commits do not fsync by themselves; store_sync() makes the
     * ones that must be durable so (all but the invoice intent). */
    if (store_exec(st, "PRAGMA journal_mode = WAL") != STORE_OK ||
        store_exec(st, "PRAGMA synchronous = NORMAL") != STORE_OK ||
        store_exec(st, "PRAGMA foreign_keys = ON") != STORE_OK) {
        buf_printf(err, "cannot configure database %s: %s", path, sqlite3_errmsg(st->db));
        goto fail;
    }
    if (store_migrate(st, err) != STORE_OK)
        goto fail;
    store_events_hooks(st);
    if (store_recover(st) != STORE_OK) {
        buf_printf(err, "crash recovery failed: %s", sqlite3_errmsg(st->db));
        goto fail;
    }
    /* The connection has read and written, so SQLite has opened the WAL. */
    const char *wal = sqlite3_filename_wal(sqlite3_db_filename(st->db, "main"));
    st->wal_fd = wal ? open(wal, O_RDWR | O_CLOEXEC) : -1;
    if (st->wal_fd < 0) {
        buf_printf(err, "cannot open the WAL file %s: %s", wal ? wal : "(none)", strerror(errno));
        goto fail;
    }
    if (fdatasync(st->wal_fd) != 0) {
        buf_printf(err, "cannot sync the WAL file %s: %s", wal, strerror(errno));
        goto fail;
    }
    *out = st;
    return STORE_OK;
fail:
    store_close(st);
    return STORE_IO;
}

/* Pages per backup step: the store lock is held for one step at a time. */
#define STORE_BACKUP_STEP_PAGES 256

store_err store_backup(store *st, const char *dest_path, int64_t *pages, buf *err)
{
    sqlite3 *dst = NULL;
    sqlite3_backup *b = NULL;
    store_err result = STORE_IO;
    bool created = false;
    *pages = 0;

    /* O_EXCL: never overwrite, and never follow a planted symlink. */
    int fd = open(dest_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        buf_printf(err, "cannot create %s: %s", dest_path, strerror(errno));
        return STORE_IO;
    }
    close(fd);
    created = true;
    if (sqlite3_open_v2(dest_path, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL) !=
        SQLITE_OK) {
        buf_printf(err, "cannot open %s: %s", dest_path, dst ? sqlite3_errmsg(dst) : "no memory");
        goto cleanup;
    }
    store_lock(st);
    b = sqlite3_backup_init(dst, "main", st->db, "main");
    store_unlock(st);
    if (b == NULL) {
        buf_printf(err, "backup of the database failed to start: %s", sqlite3_errmsg(dst));
        goto cleanup;
    }
    for (;;) {
        store_lock(st);
        int rc = sqlite3_backup_step(b, STORE_BACKUP_STEP_PAGES);
        *pages = sqlite3_backup_pagecount(b);
        store_unlock(st);
        if (rc == SQLITE_DONE)
            break;
        if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
            usleep(1000);
            continue;
        }
        if (rc != SQLITE_OK) {
            buf_printf(err, "backup step failed: %s", sqlite3_errstr(rc));
            goto cleanup;
        }
    }
    store_lock(st);
    int frc = sqlite3_backup_finish(b);
    store_unlock(st);
    b = NULL;
    if (frc != SQLITE_OK) {
        buf_printf(err, "backup failed: %s", sqlite3_errstr(frc));
        goto cleanup;
    }
    /* One self-contained file: no -wal beside it, synced before it counts. */
    char *msg = NULL;
    if (sqlite3_exec(dst, "PRAGMA journal_mode=DELETE; PRAGMA synchronous=FULL;", NULL, NULL,
                     &msg) != SQLITE_OK) {
        buf_printf(err, "cannot finish the copy: %s", msg ? msg : "?");
        sqlite3_free(msg);
        goto cleanup;
    }
    if (sqlite3_close(dst) != SQLITE_OK) {
        buf_printf(err, "cannot close the copy");
        dst = NULL;
        goto cleanup;
    }
    dst = NULL;
    fd = open(dest_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        buf_printf(err, "cannot sync %s: %s", dest_path, strerror(errno));
        if (fd >= 0)
            close(fd);
        goto cleanup;
    }
    close(fd);
    result = STORE_OK;

cleanup:
    if (b != NULL) {
        store_lock(st);
        sqlite3_backup_finish(b);
        store_unlock(st);
    }
    if (dst != NULL)
        sqlite3_close(dst);
    if (result != STORE_OK && created) {
        unlink(dest_path);
        char side[4200];
        snprintf(side, sizeof side, "%s-journal", dest_path);
        unlink(side);
        snprintf(side, sizeof side, "%s-wal", dest_path);
        unlink(side);
    }
    return result;
}

void store_close(store *st)
{
    if (st == NULL)
        return;
    for (int i = 0; i < st->ncache; i++)
        sqlite3_finalize(st->cache[i].stmt);
    if (st->db != NULL)
        sqlite3_close(st->db); /* checkpoints (with syncs) and removes the WAL */
    if (st->wal_fd >= 0)
        close(st->wal_fd);
    if (st->lock_fd >= 0)
        close(st->lock_fd); /* after sqlite3_close(): see store_open() */
    pthread_mutex_destroy(&st->sync_lock);
    pthread_cond_destroy(&st->sync_done);
    pthread_mutex_destroy(&st->lock);
    memset(st->secret_key, 0, sizeof st->secret_key);
    free(st);
}

void store_batch_begin(store *st)
{
    store_lock(st);
    st->batch_depth++;
    store_note_begin(st);
    /* On failure each write of the batch is a transaction of its own (and
     * waits for its own durability). */
    store_exec_cached(st, store_sql_begin);
}

store_err store_batch_commit(store *st)
{
    uint64_t seq = 0;
    store_err e = STORE_OK;
    int64_t t0 = metrics_now_us();
    if (!sqlite3_get_autocommit(st->db)) {
        e = store_exec_cached(st, store_sql_commit);
        if (e != STORE_OK)
            store_exec_cached(st, store_sql_rollback_all);
        else
            seq = store_committed(st);
    }
    st->batch_depth--;
    store_unlock(st);
    if (seq != 0) {
        e = store_sync(st, seq);
        metrics_observe(METRICS_STORE_COMMIT, "", metrics_now_us() - t0);
    }
    return e;
}

/* --- invoices --- */

static store_err store_for_each(store *st, const char *sql, const char *param, store_invoice_fn fn,
                                void *ud);

void store_invoice_clear(store_invoice *inv)
{
    free(inv->doc_json);
    free(inv->receipt_json);
    memset(inv, 0, sizeof *inv);
}

static void store_copy_col(sqlite3_stmt *s, int col, char *dst, size_t dstlen)
{
    const unsigned char *t = sqlite3_column_text(s, col);
    snprintf(dst, dstlen, "%s", t ? (const char *)t : "");
}

static char *store_dup_col(sqlite3_stmt *s, int col)
{
    const unsigned char *t = sqlite3_column_text(s, col);
    if (t == NULL)
        return NULL;
    char *d = strdup((const char *)t);
    if (d == NULL)
        abort();
    return d;
}

#define STORE_INVOICE_COLUMNS                                                                      \
    "i.id, ifnull(i.reference, ''), i.send_state, i.status, i.version, i.qr_code, i.currency,"     \
    " i.total, i.terminal_id, i.payment_mode, i.client_reference, i.ers_reference, i.doc,"         \
    " i.receipt, i.receipt_submitted, i.polling_stopped, i.last_error, i.created_at,"              \
    " i.updated_at, i.expires_at, i.paid_at, i.notify_token,"                                      \
    " (SELECT ifnull(sum(amount), 0) FROM refunds r WHERE r.invoice_id = i.id"                     \
    "  AND r.state <> 'failed'),"                                                                  \
    " EXISTS(SELECT 1 FROM refunds r WHERE r.invoice_id = i.id)"

static void store_read_invoice(sqlite3_stmt *s, store_invoice *inv)
{
    memset(inv, 0, sizeof *inv);
    inv->id = sqlite3_column_int64(s, 0);
    store_copy_col(s, 1, inv->reference, sizeof inv->reference);
    store_copy_col(s, 2, inv->send_state, sizeof inv->send_state);
    store_copy_col(s, 3, inv->status, sizeof inv->status);
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
}

store_err store_invoice_begin(store *st, store_invoice *inv)
{
    static const char sql[] =
        "INSERT INTO invoices(send_state, status, currency, total, terminal_id, payment_mode,"
        " client_reference, doc, created_at, updated_at, expires_at, notify_token)"
        " VALUES('sending', 'ISSUED', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
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
    e = store_step_done(st, s);
    if (e == STORE_OK) {
        inv->id = sqlite3_last_insert_rowid(st->db);
        inv->created_at = inv->updated_at = now;
        snprintf(inv->send_state, sizeof inv->send_state, "%s", STORE_SEND_SENDING);
    }
    return store_tx_finish(st, e, false);
}

static store_err store_history_add(store *st, int64_t invoice_id, const char *status,
                                   int64_t version, int64_t at)
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
    /* status stays out of the SET list: it is ISSUED since the intent, and
     * naming it would rewrite the invoices_status index page for nothing. */
    static const char sql[] =
        "UPDATE invoices SET reference = ?, qr_code = ?, send_state = 'sent',"
        " version = 0, updated_at = ? WHERE id = ? AND send_state = 'sending'";
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
    if (e == STORE_OK)
        e = store_history_add(st, inv->id, "ISSUED", 0, now);
    e = store_tx_end(st, e);
    if (e == STORE_OK) {
        snprintf(inv->reference, sizeof inv->reference, "%s", reference);
        snprintf(inv->qr_code, sizeof inv->qr_code, "%s", qr_code);
        snprintf(inv->send_state, sizeof inv->send_state, "%s", STORE_SEND_SENT);
        snprintf(inv->status, sizeof inv->status, "%s", "ISSUED");
        inv->version = 0;
        inv->updated_at = now;
    }
    return e;
}

store_err store_invoice_send_failed(store *st, int64_t id, const char *send_state,
                                    const char *error)
{
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
    static const char sql[] =
        "SELECT " STORE_INVOICE_COLUMNS " FROM invoices i WHERE i.reference = ?";
    return store_invoice_get_by(st, sql, reference, 0, out);
}

store_err store_invoice_get_id(store *st, int64_t id, store_invoice *out)
{
    static const char sql[] = "SELECT " STORE_INVOICE_COLUMNS " FROM invoices i WHERE i.id = ?";
    return store_invoice_get_by(st, sql, NULL, id, out);
}

store_err store_invoice_list(store *st, const char *status, int64_t before_id, int limit,
                             store_invoice_fn fn, void *ud, int64_t *last_id, bool *more)
{
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

/* PAID, CANCELED and FAILED never change again. */
static bool store_status_final(const char *status)
{
    return strcmp(status, "PAID") == 0 || strcmp(status, "CANCELED") == 0 ||
           strcmp(status, "FAILED") == 0;
}

store_err store_invoice_set_status(store *st, const char *reference, const char *status,
                                   int64_t version, const char *ers_reference,
                                   const char *receipt_json, bool *changed)
{
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
    const char *was = (const char *)sqlite3_column_text(s, 1);
    int64_t was_version = sqlite3_column_int64(s, 2);
    bool differs = strcmp(was, status) != 0 || was_version != version;
    /* Status only moves forward: an answer about an older version (a slow
     * refresh that started before the payment) or one that would leave a
     * final status is stale and changes nothing. */
    bool stale = version < was_version ||
                 (store_status_final(was) && strcmp(was, status) != 0);
    store_done(st, s);
    if (stale)
        return store_tx_end(st, STORE_CONFLICT);
    if (!differs && ers_reference == NULL && receipt_json == NULL)
        return store_tx_end(st, STORE_OK);

    int64_t now = store_now_ms();
    s = store_stmt(st, sql_set);
    if (s == NULL)
        return store_tx_end(st, STORE_IO);
    store_bind_text(s, 1, status);
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
        e = store_history_add(st, id, status, version, now);
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
    static const char sql[] =
        "UPDATE invoices SET updated_at = ?, doc = ?, total = ? WHERE reference = ?";
    return store_update_ref(st, sql, doc_json, &total, reference);
}

store_err store_invoice_set_total(store *st, const char *reference, int64_t total)
{
    static const char sql[] = "UPDATE invoices SET updated_at = ?, total = ? WHERE reference = ?";
    return store_update_ref(st, sql, NULL, &total, reference);
}

store_err store_invoice_set_receipt_submitted(store *st, const char *reference)
{
    static const char sql[] =
        "UPDATE invoices SET updated_at = ?, receipt_submitted = 1 WHERE reference = ?";
    return store_update_ref(st, sql, NULL, NULL, reference);
}

store_err store_invoice_stop_polling(store *st, const char *reference, const char *error)
{
    static const char sql[] = "UPDATE invoices SET updated_at = ?, last_error = ?,"
                              " polling_stopped = 1 WHERE reference = ?";
    return store_update_ref(st, sql, error, NULL, reference);
}

store_err store_invoice_set_error(store *st, const char *reference, const char *error)
{
    static const char sql[] =
        "UPDATE invoices SET updated_at = ?, last_error = ? WHERE reference = ?";
    return store_update_ref(st, sql, error, NULL, reference);
}

/* Runs a query whose single column is a JSON text; copies it to *json. */
static store_err store_query_json(store *st, const char *sql, int64_t id, char **json)
{
    *json = NULL;
    store_lock(st);
    sqlite3_stmt *s = store_stmt(st, sql);
    store_err e = STORE_IO;
    if (s == NULL)
        goto cleanup;
    sqlite3_bind_int64(s, 1, id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL) {
        *json = store_dup_col(s, 0);
        e = STORE_OK;
    } else if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
        e = STORE_NOT_FOUND;
    }
    store_done(st, s);
cleanup:
    store_unlock(st);
    return e;
}

store_err store_invoice_history(store *st, int64_t invoice_id, char **json)
{
    static const char sql[] =
        "SELECT json_group_array(json_object('status', status, 'version', version, 'at', at))"
        " FROM (SELECT status, version, at FROM status_history WHERE invoice_id = ?"
        " ORDER BY id)";
    return store_query_json(st, sql, invoice_id, json);
}

store_err store_pending(store *st, store_invoice_fn fn, void *ud)
{
    static const char sql[] =
        "SELECT " STORE_INVOICE_COLUMNS " FROM invoices i WHERE i.send_state = 'sent'"
        " AND i.polling_stopped = 0 AND i.status <> 'PAID' AND i.status <> 'CANCELED'"
        " AND i.status <> 'FAILED' ORDER BY i.id";
    return store_for_each(st, sql, NULL, fn, ud);
}

/* Runs a SELECT of STORE_INVOICE_COLUMNS (with param, if not NULL, bound to
 * its one '?') and hands every row to fn. */
static store_err store_for_each(store *st, const char *sql, const char *param, store_invoice_fn fn,
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
    static const char sql[] =
        "SELECT " STORE_INVOICE_COLUMNS " FROM invoices i WHERE i.send_state = 'sent'"
        " AND i.status = 'PAID' AND i.receipt_submitted = 0 ORDER BY i.id";
    return store_for_each(st, sql, NULL, fn, ud);
}

store_err store_counts(store *st, int64_t *unknown)
{
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

/* --- refunds --- */

store_err store_refund_begin(store *st, int64_t invoice_id, int64_t amount, const char *title,
                             int64_t *refund_id)
{
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
    static const char sql[] = "SELECT json_group_array(json(j)) FROM (SELECT " STORE_REFUND_JSON
                              " AS j FROM refunds WHERE invoice_id = ? ORDER BY id)";
    return store_query_json(st, sql, invoice_id, json);
}

store_err store_refund_get(store *st, int64_t refund_id, char **json)
{
    static const char sql[] = "SELECT " STORE_REFUND_JSON " FROM refunds WHERE id = ?";
    return store_query_json(st, sql, refund_id, json);
}

/* Inside a write transaction: copies the state that find (one row, binding
 * ?1 = a and, if it has one, ?2 = b) selects into was. STORE_NOT_FOUND without a row,
 * STORE_CONFLICT unless the state is "unknown", the only one an operator
 * may settle. */
static store_err store_settle_check(store *st, const char *find, int64_t a, int64_t b,
                                    char was[16])
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

store_err store_refund_resolve(store *st, int64_t invoice_id, int64_t refund_id,
                               const char *state, const char *ers_reference, char was[16])
{
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
    static const char find[] = "SELECT send_state FROM invoices WHERE id = ?1";
    static const char adopt[] =
        "UPDATE invoices SET reference = ?1, send_state = 'sent', status = 'ISSUED',"
        " version = 0, updated_at = ?2,"
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
    if (e == STORE_OK && reference != NULL)
        e = store_history_add(st, id, "ISSUED", 0, now);
    return store_tx_end(st, e);
}

store_err store_unknown_list(store *st, char **json)
{
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

/* --- receipts, periods --- */

store_err store_receipt_add(store *st, int64_t invoice_id, const char *mime_type,
                            const char *receipt_type, const char *data_b64, int result_code)
{
    static const char sql[] = "INSERT INTO receipts(invoice_id, mime_type, receipt_type,"
                              " data_len, result_code, at, data) VALUES(?, ?, ?, ?, ?, ?, ?)";
    store_err e = store_tx_begin(st);
    if (e != STORE_OK)
        return e;
    sqlite3_stmt *s = store_stmt(st, sql);
    if (s == NULL)
        return store_tx_end(st, STORE_IO);
    sqlite3_bind_int64(s, 1, invoice_id);
    store_bind_text(s, 2, mime_type);
    store_bind_text(s, 3, receipt_type);
    sqlite3_bind_int64(s, 4, data_b64 ? (int64_t)strlen(data_b64) : 0);
    sqlite3_bind_int(s, 5, result_code);
    sqlite3_bind_int64(s, 6, store_now_ms());
    if (data_b64 != NULL)
        store_bind_text(s, 7, data_b64);
    else
        sqlite3_bind_null(s, 7);
    e = store_step_done(st, s);
    return store_tx_end(st, e);
}

store_err store_receipt_last(store *st, int64_t invoice_id, store_receipt *out)
{
    static const char sql[] = "SELECT mime_type, receipt_type, data_len, at, data FROM receipts"
                              " WHERE invoice_id = ? AND result_code = 0 ORDER BY id DESC LIMIT 1";
    memset(out, 0, sizeof *out);
    store_lock(st);
    sqlite3_stmt *s = store_stmt(st, sql);
    store_err e = STORE_IO;
    if (s == NULL)
        goto cleanup;
    sqlite3_bind_int64(s, 1, invoice_id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        store_copy_col(s, 0, out->mime_type, sizeof out->mime_type);
        store_copy_col(s, 1, out->receipt_type, sizeof out->receipt_type);
        out->data_len = sqlite3_column_int64(s, 2);
        out->submitted_at = sqlite3_column_int64(s, 3);
        e = STORE_OK;
        if (sqlite3_column_type(s, 4) == SQLITE_TEXT) {
            out->data_b64 = strdup((const char *)sqlite3_column_text(s, 4));
            if (out->data_b64 == NULL)
                e = STORE_IO;
        }
    } else if (rc == SQLITE_DONE) {
        e = STORE_NOT_FOUND;
    }
    store_done(st, s);
cleanup:
    store_unlock(st);
    return e;
}

void store_receipt_clear(store_receipt *r)
{
    free(r->data_b64);
    r->data_b64 = NULL;
}

store_err store_period_add(store *st, const char *period_id, const char *terminal_id)
{
    static const char sql[] = "INSERT INTO periods(period_id, terminal_id, at) VALUES(?, ?, ?)";
    store_err e = store_tx_begin(st);
    if (e != STORE_OK)
        return e;
    sqlite3_stmt *s = store_stmt(st, sql);
    if (s == NULL)
        return store_tx_end(st, STORE_IO);
    store_bind_text(s, 1, period_id);
    store_bind_text(s, 2, terminal_id);
    sqlite3_bind_int64(s, 3, store_now_ms());
    e = store_step_done(st, s);
    return store_tx_end(st, e);
}

/* --- terminals --- */

/* The context a terminal's sealed password is bound to. */
static void store_terminal_aad(const char *terminal_id, char *aad, size_t size)
{
    snprintf(aad, size, "seqr-gateway terminal password\n%s", terminal_id);
}

store_err store_set_secret_key(store *st, const unsigned char key[SECRETBOX_KEY_LEN])
{
    static const char sql_plain[] =
        "SELECT terminal_id, password FROM terminals WHERE password NOT LIKE 'v1:%'";
    static const char sql_seal[] = "UPDATE terminals SET password = ? WHERE terminal_id = ?";
    memcpy(st->secret_key, key, SECRETBOX_KEY_LEN);
    st->has_secret_key = true;
    /* Passwords stored in plain text by an older version are sealed now;
     * secure_delete overwrites the old text in the file's pages, and the
     * checkpoint below empties the WAL of the pages that held it. */
    if (store_exec(st, "PRAGMA secure_delete = ON") != STORE_OK)
        return STORE_IO;
    store_err e = store_tx_begin(st);
    if (e != STORE_OK)
        return e;
    int sealed = 0;
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db, sql_plain, -1, &s, NULL) != SQLITE_OK)
        return store_tx_end(st, STORE_IO);
    int rc;
    while (e == STORE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        char aad[160];
        store_terminal_aad((const char *)sqlite3_column_text(s, 0), aad, sizeof aad);
        char *box = secretbox_seal(key, aad, (const char *)sqlite3_column_text(s, 1));
        sqlite3_stmt *u = box ? store_stmt(st, sql_seal) : NULL;
        if (u == NULL) {
            e = STORE_IO;
        } else {
            store_bind_text(u, 1, box);
            store_bind_text(u, 2, (const char *)sqlite3_column_text(s, 0));
            e = store_step_done(st, u);
            sealed++;
        }
        free(box);
    }
    sqlite3_finalize(s);
    e = store_tx_end(st, e);
    if (e == STORE_OK && sealed > 0) {
        log_info("store: %d terminal password(s) stored in plain text by an older version are "
                 "now encrypted",
                 sealed);
        e = store_exec(st, "PRAGMA wal_checkpoint(TRUNCATE)");
    }
    /* From here on: deleted content is zeroed within its pages, at no extra I/O. */
    if (e == STORE_OK)
        e = store_exec(st, "PRAGMA secure_delete = FAST");
    return e;
}

store_err store_terminal_add(store *st, const store_terminal *t)
{
    static const char sql[] =
        "INSERT OR REPLACE INTO terminals(terminal_id, external_id, name, password, seqr_id,"
        " unregistered, created_at, cashier_id) VALUES(?, ?, ?, ?, '', 0, ?, ?)";
    if (!st->has_secret_key)
        return STORE_IO; /* never in plain text */
    char aad[160];
    store_terminal_aad(t->terminal_id, aad, sizeof aad);
    char *box = secretbox_seal(st->secret_key, aad, t->password);
    if (box == NULL)
        return STORE_IO;
    store_err e = store_tx_begin(st);
    if (e != STORE_OK) {
        free(box);
        return e;
    }
    sqlite3_stmt *s = store_stmt(st, sql);
    if (s == NULL) {
        free(box);
        return store_tx_end(st, STORE_IO);
    }
    store_bind_text(s, 1, t->terminal_id);
    store_bind_text(s, 2, t->external_id);
    store_bind_text(s, 3, t->name);
    store_bind_text(s, 4, box);
    sqlite3_bind_int64(s, 5, store_now_ms());
    store_bind_text(s, 6, t->cashier_id);
    e = store_step_done(st, s);
    free(box);
    return store_tx_end(st, e);
}

store_err store_terminal_get(store *st, const char *terminal_id, store_terminal *out)
{
    static const char sql[] = "SELECT terminal_id, external_id, name, password, seqr_id,"
                              " unregistered, created_at, cashier_id FROM terminals WHERE terminal_id = ?";
    memset(out, 0, sizeof *out);
    store_lock(st);
    sqlite3_stmt *s = store_stmt(st, sql);
    store_err e = STORE_IO;
    if (s == NULL)
        goto cleanup;
    store_bind_text(s, 1, terminal_id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        store_copy_col(s, 0, out->terminal_id, sizeof out->terminal_id);
        store_copy_col(s, 1, out->external_id, sizeof out->external_id);
        store_copy_col(s, 2, out->name, sizeof out->name);
        store_copy_col(s, 4, out->seqr_id, sizeof out->seqr_id);
        out->unregistered = sqlite3_column_int(s, 5) != 0;
        out->created_at = sqlite3_column_int64(s, 6);
        store_copy_col(s, 7, out->cashier_id, sizeof out->cashier_id);
        char aad[160];
        store_terminal_aad(out->terminal_id, aad, sizeof aad);
        const char *box = (const char *)sqlite3_column_text(s, 3);
        if (st->has_secret_key && box != NULL &&
            secretbox_open(st->secret_key, aad, box, out->password, sizeof out->password)) {
            e = STORE_OK;
        } else {
            log_error("store: terminal %s: its stored secret cannot be decrypted (another "
                      "[store] key_file?)",
                      out->terminal_id);
            memset(out, 0, sizeof *out);
            e = STORE_IO;
        }
    } else if (rc == SQLITE_DONE) {
        e = STORE_NOT_FOUND;
    }
    store_done(st, s);
cleanup:
    store_unlock(st);
    return e;
}

static store_err store_terminal_update(store *st, const char *sql, const char *text,
                                       const char *terminal_id)
{
    store_err e = store_tx_begin(st);
    if (e != STORE_OK)
        return e;
    sqlite3_stmt *s = store_stmt(st, sql);
    if (s == NULL)
        return store_tx_end(st, STORE_IO);
    int i = 1;
    if (text)
        store_bind_text(s, i++, text);
    store_bind_text(s, i, terminal_id);
    e = store_step_done(st, s);
    if (e == STORE_OK && sqlite3_changes(st->db) == 0)
        e = STORE_NOT_FOUND;
    return store_tx_end(st, e);
}

store_err store_terminal_set_seqr_id(store *st, const char *terminal_id, const char *seqr_id)
{
    static const char sql[] = "UPDATE terminals SET seqr_id = ? WHERE terminal_id = ?";
    return store_terminal_update(st, sql, seqr_id, terminal_id);
}

store_err store_terminal_open_invoices(store *st, const char *terminal_id, store_invoice_fn fn,
                                       void *ud)
{
    static const char sql[] =
        "SELECT " STORE_INVOICE_COLUMNS " FROM invoices i WHERE i.send_state = 'sent'"
        " AND i.polling_stopped = 0 AND i.status <> 'PAID' AND i.status <> 'CANCELED'"
        " AND i.status <> 'FAILED' AND i.terminal_id = ? ORDER BY i.id";
    return store_for_each(st, sql, terminal_id, fn, ud);
}

store_err store_terminal_unregister(store *st, const char *terminal_id)
{
    static const char sql[] = "UPDATE terminals SET unregistered = 1 WHERE terminal_id = ?";
    return store_terminal_update(st, sql, NULL, terminal_id);
}

/* --- idempotency --- */

store_err store_idem_prune(store *st, int64_t older_than_ms)
{
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

store_err store_idem_claim(store *st, const char *scope, const char *key,
                           const char *request_hash, int64_t ttl_ms, bool *same_request,
                           int *status, char **response)
{
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

/* >>> events: the outbox (see store.h) */

static void store_events_update_hook(void *ud, int op, const char *db, const char *table,
                                     sqlite3_int64 rowid)
{
    store *st = ud;
    if (op == SQLITE_INSERT && strcmp(table, "events") == 0)
        st->event_written = true;
}

static void store_events_rollback_hook(void *ud)
{
    store *st = ud;
    st->event_written = false;
}

static void store_events_hooks(store *st)
{
    sqlite3_update_hook(st->db, store_events_update_hook, st);
    sqlite3_rollback_hook(st->db, store_events_rollback_hook, st);
}

/* With the store lock held, after a commit that wrote something. */
static void store_events_committed(store *st)
{
    if (st->event_written && st->event_hook != NULL)
        st->event_hook(st->event_hook_ud);
    st->event_written = false;
}

void store_set_event_hook(store *st, store_event_hook fn, void *ud)
{
    store_lock(st);
    st->event_hook = fn;
    st->event_hook_ud = ud;
    store_unlock(st);
}

void store_event_clear(store_event *ev)
{
    free(ev->data);
    free(ev->webhook_url);
    free(ev->notification_url);
    memset(ev, 0, sizeof *ev);
}

#define STORE_EVENT_COLUMNS                                                                        \
    "e.id, e.type, e.invoice_id, ifnull(e.refund_id, 0), e.at, e.data, e.state, e.attempts,"       \
    " e.next_at"

static void store_read_event(sqlite3_stmt *s, store_event *ev)
{
    memset(ev, 0, sizeof *ev);
    ev->id = sqlite3_column_int64(s, 0);
    store_copy_col(s, 1, ev->type, sizeof ev->type);
    ev->invoice_id = sqlite3_column_int64(s, 2);
    ev->refund_id = sqlite3_column_int64(s, 3);
    ev->at = sqlite3_column_int64(s, 4);
    ev->data = store_dup_col(s, 5);
    store_copy_col(s, 6, ev->state, sizeof ev->state);
    ev->attempts = sqlite3_column_int(s, 7);
    ev->next_at = sqlite3_column_int64(s, 8);
}

/* Steps s (bound), handing each row to fn; with_urls reads columns 9 and 10. */
static store_err store_events_each(store *st, sqlite3_stmt *s, bool with_urls, store_event_fn fn,
                                   void *ud)
{
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        store_event ev;
        store_read_event(s, &ev);
        if (with_urls) {
            ev.webhook_url = store_dup_col(s, 9);
            ev.notification_url = store_dup_col(s, 10);
        }
        bool go_on = fn(&ev, ud);
        store_event_clear(&ev);
        if (!go_on)
            break;
    }
    store_err e = (rc == SQLITE_ROW || rc == SQLITE_DONE) ? STORE_OK : STORE_IO;
    store_done(st, s);
    return e;
}

store_err store_events_after(store *st, int64_t after, int64_t invoice_id, int limit,
                             store_event_fn fn, void *ud)
{
    static const char sql_all[] =
        "SELECT " STORE_EVENT_COLUMNS " FROM events e WHERE e.id > ? ORDER BY e.id LIMIT ?";
    static const char sql_invoice[] = "SELECT " STORE_EVENT_COLUMNS " FROM events e"
                                      " WHERE e.invoice_id = ?3 AND e.id > ?1 ORDER BY e.id LIMIT ?2";
    store_lock(st);
    sqlite3_stmt *s = store_stmt(st, invoice_id > 0 ? sql_invoice : sql_all);
    store_err e = STORE_IO;
    if (s != NULL) {
        sqlite3_bind_int64(s, 1, after);
        sqlite3_bind_int(s, 2, limit);
        if (invoice_id > 0)
            sqlite3_bind_int64(s, 3, invoice_id);
        e = store_events_each(st, s, false, fn, ud);
    }
    store_unlock(st);
    return e;
}

store_err store_events_last_id(store *st, int64_t *id)
{
    static const char sql[] = "SELECT ifnull(max(id), 0) FROM events";
    *id = 0;
    store_lock(st);
    sqlite3_stmt *s = store_stmt(st, sql);
    store_err e = STORE_IO;
    if (s != NULL) {
        if (sqlite3_step(s) == SQLITE_ROW) {
            *id = sqlite3_column_int64(s, 0);
            e = STORE_OK;
        }
        store_done(st, s);
    }
    store_unlock(st);
    return e;
}

store_err store_events_due(store *st, int64_t now, int limit, store_event_fn fn, void *ud)
{
    /* Spelt as the partial indexes events_due (the walk, in due order, which
     * stops after limit rows however long the backlog) and events_pending
     * (the check for an earlier pending event of the invoice) are. Fresh
     * events have next_at 0, so they come before retries. */
    static const char sql[] =
        "SELECT " STORE_EVENT_COLUMNS ", json_extract(i.doc, '$.webhookUrl'),"
        " json_extract(i.doc, '$.notificationUrl')"
        " FROM events e JOIN invoices i ON i.id = e.invoice_id"
        " WHERE e.state = 'pending' AND e.next_at <= ?1"
        " AND NOT EXISTS(SELECT 1 FROM events p WHERE p.state = 'pending'"
        "  AND p.invoice_id = e.invoice_id AND p.id < e.id)"
        " ORDER BY e.next_at, e.id LIMIT ?2";
    store_lock(st);
    sqlite3_stmt *s = store_stmt(st, sql);
    store_err e = STORE_IO;
    if (s != NULL) {
        sqlite3_bind_int64(s, 1, now);
        sqlite3_bind_int(s, 2, limit);
        e = store_events_each(st, s, true, fn, ud);
    }
    store_unlock(st);
    return e;
}

store_err store_event_attempt(store *st, int64_t event_id, const char *url, int http_status,
                              int64_t latency_ms, const char *error, const char *state,
                              int64_t next_at)
{
    static const char sql_add[] =
        "INSERT INTO delivery_attempts(event_id, url, at, http_status, latency_ms, error)"
        " VALUES(?, ?, ?, ?, ?, ?)";
    static const char sql_set[] =
        "UPDATE events SET state = ?, attempts = attempts + 1, next_at = ?,"
        " done_at = CASE WHEN ?1 = 'pending' THEN 0 ELSE ?3 END WHERE id = ?";
    store_err e = store_tx_begin(st);
    if (e != STORE_OK)
        return e;
    int64_t now = store_now_ms();
    sqlite3_stmt *s = store_stmt(st, sql_add);
    if (s == NULL)
        return store_tx_finish(st, STORE_IO, false);
    sqlite3_bind_int64(s, 1, event_id);
    store_bind_text(s, 2, url);
    sqlite3_bind_int64(s, 3, now);
    sqlite3_bind_int(s, 4, http_status);
    sqlite3_bind_int64(s, 5, latency_ms);
    store_bind_text(s, 6, error);
    e = store_step_done(st, s);
    if (e == STORE_OK) {
        s = store_stmt(st, sql_set);
        if (s == NULL)
            return store_tx_finish(st, STORE_IO, false);
        store_bind_text(s, 1, state);
        sqlite3_bind_int64(s, 2, next_at);
        sqlite3_bind_int64(s, 3, now);
        sqlite3_bind_int64(s, 4, event_id);
        e = store_step_done(st, s);
    }
    return store_tx_finish(st, e, false);
}

/* Runs an UPDATE of one event (?1 = now, ?2 = id); STORE_NOT_FOUND when no row. */
static store_err store_event_update(store *st, const char *sql, int64_t event_id)
{
    store_err e = store_tx_begin(st);
    if (e != STORE_OK)
        return e;
    sqlite3_stmt *s = store_stmt(st, sql);
    if (s == NULL)
        return store_tx_finish(st, STORE_IO, false);
    sqlite3_bind_int64(s, 1, store_now_ms());
    sqlite3_bind_int64(s, 2, event_id);
    e = store_step_done(st, s);
    if (e == STORE_OK && sqlite3_changes(st->db) == 0)
        e = STORE_NOT_FOUND;
    return store_tx_finish(st, e, false);
}

store_err store_event_skip(store *st, int64_t event_id)
{
    static const char sql[] =
        "UPDATE events SET state = 'skipped', done_at = ?1 WHERE id = ?2 AND state = 'pending'";
    store_err e = store_event_update(st, sql, event_id);
    return e == STORE_NOT_FOUND ? STORE_OK : e;
}

store_err store_event_redeliver(store *st, int64_t event_id)
{
    static const char sql[] =
        "UPDATE events SET state = 'pending', next_at = 0, done_at = 0 WHERE id = ?2 AND ?1 > 0";
    return store_event_update(st, sql, event_id);
}

store_err store_events_backlog(store *st, int64_t *count, int64_t *oldest_at)
{
    static const char sql[] =
        "SELECT count(*), ifnull(min(at), 0) FROM events WHERE state = 'pending'";
    *count = 0;
    *oldest_at = 0;
    store_lock(st);
    sqlite3_stmt *s = store_stmt(st, sql);
    store_err e = STORE_IO;
    if (s != NULL) {
        if (sqlite3_step(s) == SQLITE_ROW) {
            *count = sqlite3_column_int64(s, 0);
            *oldest_at = sqlite3_column_int64(s, 1);
            e = STORE_OK;
        }
        store_done(st, s);
    }
    store_unlock(st);
    return e;
}

store_err store_delivery_list(store *st, int limit, char **json)
{
    static const char sql[] =
        "SELECT json_group_array(json(j)) FROM (SELECT json_object('eventId', a.event_id,"
        " 'type', e.type, 'url', a.url, 'at', a.at, 'httpStatus', nullif(a.http_status, 0),"
        " 'latencyMs', a.latency_ms, 'error', nullif(a.error, ''), 'eventState', e.state) AS j"
        " FROM (SELECT * FROM delivery_attempts ORDER BY id DESC LIMIT 10000) a"
        " JOIN events e ON e.id = a.event_id"
        " ORDER BY (a.http_status BETWEEN 200 AND 299), a.id DESC LIMIT ?)";
    return store_query_json(st, sql, limit, json);
}
/* <<< events */
