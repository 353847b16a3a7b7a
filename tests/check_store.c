/* check_store.c — the SQLite store on a real file: schema and migrations,
 * write-before-call intents and crash recovery, status history, refund
 * limits, idempotency keys, terminals.
 *
 * With SEQR_TEST_PG_URL set (tests/pg_test.sh starts a throwaway server),
 * the tests that hold for both backends run against that PostgreSQL
 * database instead, each on an emptied schema, followed by the ones only
 * PostgreSQL has: migrations raced by two gateways, leases shared and taken
 * over, crash recovery of a dead gateway's intents only. */
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "log.h"
#include "store.h"
#include "store/pg/pg.h"   /* the pool, for tests of its prepared statements and slots */
#include "store/private.h" /* st->pg, for the pool test */
#include "testutil.h"

static char db_path[600];
static const char *pg_url; /* SEQR_TEST_PG_URL: run against PostgreSQL */

/* Runs sql on the PostgreSQL test database with a connection of its own. */
static void pg_sql(const char *sql)
{
    PGconn *c = PQconnectdb(pg_url);
    ck_assert_int_eq(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, sql);
    ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK,
                  "%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

/* fdatasync() as the store sees it: this definition in the test program
 * stands in front of libc's, so a test can make the disk fail. */
static int fail_syncs;            /* how many of the next calls fail with EIO */
static _Atomic int sync_calls;    /* calls so far */
static _Atomic int sync_delay_us; /* each call first takes this long, as a disk would */

int fdatasync(int fd)
{
    sync_calls++;
    if (sync_delay_us > 0)
        usleep((useconds_t)sync_delay_us);
    if (fail_syncs > 0) {
        fail_syncs--;
        errno = EIO;
        return -1;
    }
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    return real(fd);
}

static store *open_fresh(void)
{
    if (pg_url != NULL) {
        pg_sql(
            "SET client_min_messages = warning; DROP SCHEMA public CASCADE; CREATE SCHEMA public");
        snprintf(db_path, sizeof db_path, "%s", pg_url);
        store *st = NULL;
        buf err = BUF_INIT;
        ck_assert_msg(store_open(db_path, &st, &err) == STORE_OK, "%s", buf_cstr(&err));
        buf_free(&err);
        return st;
    }
    char *d = tu_tempdir();
    ck_assert_ptr_nonnull(d);
    snprintf(db_path, sizeof db_path, "%s/t.db", d);
    free(d);
    store *st = NULL;
    buf err = BUF_INIT;
    ck_assert_int_eq(store_open(db_path, &st, &err), STORE_OK);
    buf_free(&err);
    return st;
}

static store *reopen(store *st)
{
    store_close(st);
    store *again = NULL;
    buf err = BUF_INIT;
    ck_assert_int_eq(store_open(db_path, &again, &err), STORE_OK);
    buf_free(&err);
    return again;
}

static int64_t new_invoice(store *st, int64_t total, const char *ref)
{
    store_invoice inv;
    memset(&inv, 0, sizeof inv);
    snprintf(inv.currency, sizeof inv.currency, "SEK");
    inv.total = total;
    inv.doc_json = "{\"title\":\"t\"}";
    inv.expires_at = store_now_ms() + 60000;
    ck_assert_int_eq(store_invoice_begin(st, &inv), STORE_OK);
    ck_assert_int_gt(inv.id, 0);
    if (ref != NULL)
        ck_assert_int_eq(store_invoice_sent(st, &inv, ref, "HTTP://SEQR.SE/Rx"), STORE_OK);
    return inv.id;
}

/* A status answer without ersReference or receipt that the store takes
 * (whether it changed anything is not asked). */
static void set_status_ok(store *st, const char *ref, seqr_status status, int64_t version)
{
    bool changed = false;
    ck_assert_int_eq(store_invoice_set_status(st, ref, status, version, NULL, NULL, &changed),
                     STORE_OK);
}

/* An intent's fields for store_invoice_begin: SEK 5.00, a minute to live. */
static void intent_of_500(store_invoice *inv)
{
    memset(inv, 0, sizeof *inv);
    snprintf(inv->currency, sizeof inv->currency, "SEK");
    inv->total = 500;
    inv->doc_json = "{}";
    inv->expires_at = store_now_ms() + 60000;
}

static bool count_one(const store_invoice *inv, void *ud)
{
    (void)inv;
    (*(int *)ud)++;
    return true;
}

static void lost_none(const char *reference, void *ud)
{
    (void)ud;
    ck_abort_msg("lease of %s lost", reference);
}

/* Invoices the poller would poll: loaded at start-up (SQLite), or held in
 * leases (PostgreSQL). */
static int pending_count(store *st)
{
    int n = 0;
    ck_assert_int_eq(store_pending(st, count_one, &n), STORE_OK);
    int64_t held = 0;
    ck_assert_int_eq(store_lease_sync(st, count_one, lost_none, &n, &held), STORE_OK);
    return held >= 0 ? (int)held : n;
}

/* The SQLite schema version (PRAGMA user_version) store_open migrates to. */
#define SCHEMA_VERSION "10"

START_TEST(schema_and_pragmas)
{
    store *st = open_fresh();
    new_invoice(st, 1000, "1000000000001");
    /* SQLite keeps no memory statistics in this process (store_open turns
     * them off: each allocation would take a global mutex). */
    ck_assert_int_eq(sqlite3_memory_used(), 0);
    store_close(st);
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    sqlite3_stmt *s;
    sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL);
    ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
    ck_assert_int_eq(sqlite3_column_int(s, 0), atoi(SCHEMA_VERSION));
    sqlite3_finalize(s);
    sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL);
    ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
    ck_assert_str_eq((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    /* A database from a newer version is refused, not damaged. */
    sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL);
    sqlite3_close(db);
    store *again = NULL;
    buf err = BUF_INIT;
    ck_assert_int_eq(store_open(db_path, &again, &err), STORE_SCHEMA_NEWER);
    ck_assert_ptr_nonnull(strstr(buf_cstr(&err), "newer"));
    buf_free(&err);
}
END_TEST

START_TEST(intent_then_outcome_and_crash_recovery)
{
    store *st = open_fresh();
    int64_t sent = new_invoice(st, 1000, "1000000000001");
    int64_t lost = new_invoice(st, 2000, NULL); /* crash during sendInvoice */
    store_invoice inv;
    ck_assert_int_eq(store_invoice_get_id(st, lost, &inv), STORE_OK);
    ck_assert_str_eq(inv.send_state, STORE_SEND_SENDING);
    store_invoice_clear(&inv);
    ck_assert_int_eq(pending_count(st), 1);

    st = reopen(st);
    ck_assert_int_eq(store_invoice_get_id(st, lost, &inv), STORE_OK);
    ck_assert_str_eq(inv.send_state, STORE_SEND_UNKNOWN);
    ck_assert(strlen(inv.last_error) > 0);
    store_invoice_clear(&inv);
    ck_assert_int_eq(store_invoice_get(st, "1000000000001", &inv), STORE_OK);
    ck_assert_int_eq(inv.id, sent);
    ck_assert_int_eq(inv.status, SEQR_STATUS_ISSUED);
    ck_assert_str_eq(inv.doc_json, "{\"title\":\"t\"}");
    store_invoice_clear(&inv);
    int64_t unknown = -1;
    ck_assert_int_eq(store_counts(st, &unknown), STORE_OK);
    ck_assert_int_eq(pending_count(st), 1);
    ck_assert_int_eq(unknown, 1);
    ck_assert_int_eq(store_invoice_get(st, "nope", &inv), STORE_NOT_FOUND);
    store_close(st);
}
END_TEST

/* The first column of the first row of sql on db, as a malloc'd string
 * ("" when there is no row or it is NULL). */
static char *query_text(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s;
    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    const char *t = NULL;
    if (sqlite3_step(s) == SQLITE_ROW)
        t = (const char *)sqlite3_column_text(s, 0);
    char *copy = strdup(t ? t : "");
    sqlite3_finalize(s);
    return copy;
}

/* Asserts that sql (a query on db) answers want in its first column. */
static void assert_query(sqlite3 *db, const char *sql, const char *want)
{
    char *got = query_text(db, sql);
    ck_assert_msg(strcmp(got, want) == 0, "%s: %s, not %s", sql, got, want);
    free(got);
}

/* Asserts that SQLite answers sql (a query on db) through index. */
static void assert_plan_uses(sqlite3 *db, const char *sql, const char *index)
{
    char plan_sql[512];
    snprintf(plan_sql, sizeof plan_sql, "EXPLAIN QUERY PLAN %s", sql);
    sqlite3_stmt *s;
    ck_assert_int_eq(sqlite3_prepare_v2(db, plan_sql, -1, &s, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
    ck_assert_ptr_nonnull(strstr((const char *)sqlite3_column_text(s, 3), index));
    sqlite3_finalize(s);
}

/* Takes a current database back to schema 9's shape (before migration 10):
 * the events table with AUTOINCREMENT, its counter in sqlite_sequence. The
 * triggers name events; with legacy_alter_table the rename leaves them be. */
#define UNDO_SCHEMA_10                                                                             \
    "PRAGMA legacy_alter_table = ON;"                                                              \
    "CREATE TABLE events_v9( id INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL,"            \
    " invoice_id INTEGER NOT NULL REFERENCES invoices(id), refund_id INTEGER,"                     \
    " at INTEGER NOT NULL, data TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'pending',"             \
    " attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL DEFAULT 0,"                    \
    " done_at INTEGER NOT NULL DEFAULT 0);"                                                        \
    "INSERT INTO events_v9 SELECT * FROM events; DROP TABLE events;"                               \
    "ALTER TABLE events_v9 RENAME TO events;"                                                      \
    "CREATE INDEX events_invoice ON events(invoice_id, id);"                                       \
    "CREATE INDEX events_pending ON events(invoice_id, id) WHERE state = 'pending';"               \
    "CREATE INDEX events_due ON events(next_at, id) WHERE state = 'pending';"                      \
    "PRAGMA legacy_alter_table = OFF;"

/* Takes a current database back to schema 8's shape (before migration 9):
 * the ISSUED entries of the history as rows, no payment page secrets, no
 * clientInvoiceId column, and (as far as the tests need) no event triggers:
 * theirs read that column, and SQLite refuses to drop a column a trigger
 * names. Migration 9 makes them again. */
#define UNDO_SCHEMA_9                                                                              \
    UNDO_SCHEMA_10                                                                                 \
    "INSERT INTO status_history(invoice_id, status, version, at)"                                  \
    " SELECT id, 'ISSUED', 0, issued_at FROM invoices WHERE issued_at > 0;"                        \
    "DROP TRIGGER events_invoice_send; DROP TRIGGER events_invoice_status;"                        \
    " DROP TRIGGER events_invoice_doc; DROP TRIGGER events_invoice_receipt;"                       \
    " DROP TRIGGER events_refund;"                                                                 \
    "ALTER TABLE invoices DROP COLUMN issued_at; ALTER TABLE invoices DROP COLUMN pay_secret;"     \
    "ALTER TABLE invoices DROP COLUMN client_invoice_id;"

/* Takes a current database back to schema 7's shape (before migration 8) as
 * far as the tests need: no webhook_config, and of the triggers of old only
 * invoice.created's, which wrote every event pending. */
#define UNDO_SCHEMA_8                                                                              \
    UNDO_SCHEMA_9                                                                                  \
    "DROP TABLE webhook_config;"                                                                   \
    "CREATE TRIGGER events_invoice_sent AFTER UPDATE OF send_state ON invoices"                    \
    " WHEN NEW.send_state = 'sent' AND OLD.send_state <> 'sent' BEGIN"                             \
    " INSERT INTO events(type, invoice_id, at, data) VALUES('invoice.created', NEW.id, 1, '{}');"  \
    " END;"

/* Takes a current database back to schema 6's shape (before migration 7):
 * no payment page tokens. */
#define UNDO_SCHEMA_7                                                                              \
    UNDO_SCHEMA_8                                                                                  \
    "DROP INDEX invoices_pay_token; ALTER TABLE invoices DROP COLUMN pay_token;"

/* Takes a current database back to schema 5's shape (before migration 6). */
#define UNDO_SCHEMA_6                                                                              \
    UNDO_SCHEMA_7                                                                                  \
    "DROP TRIGGER events_invoice_sent; DROP TABLE delivery_attempts; DROP TABLE events;"           \
    " DELETE FROM sqlite_sequence WHERE name = 'events';"

/* Takes a current database back to schema 4's shape (before migration 5):
 * the idempotency table that kept whole request bodies. */
#define UNDO_SCHEMA_5                                                                              \
    UNDO_SCHEMA_6                                                                                  \
    "DROP TABLE idempotency;"                                                                      \
    "CREATE TABLE idempotency( key TEXT PRIMARY KEY, method TEXT NOT NULL,"                        \
    " path TEXT NOT NULL, body TEXT NOT NULL, status INTEGER NOT NULL DEFAULT 0,"                  \
    " response TEXT NOT NULL DEFAULT '', created_at INTEGER NOT NULL);"

/* Takes a current database back to schema 3's shape (before migration 4). */
#define UNDO_SCHEMA_4                                                                              \
    UNDO_SCHEMA_5                                                                                  \
    "DROP INDEX receipts_invoice; ALTER TABLE receipts DROP COLUMN data;"                          \
    " ALTER TABLE terminals DROP COLUMN cashier_id;"

/* Runs sql (an UNDO_SCHEMA_n and its user_version) on the closed store's
 * file in one transaction, then opens the store again, which migrates it. */
static store *reopen_after(const char *sql)
{
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    char *sqlerr = NULL;
    ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, &sqlerr) == SQLITE_OK, "%s", sqlerr);
    sqlite3_close(db);
    store *st = NULL;
    buf err = BUF_INIT;
    ck_assert_msg(store_open(db_path, &st, &err) == STORE_OK, "%s", buf_cstr(&err));
    buf_free(&err);
    return st;
}

/* Migration 1 -> 2 on a database written by the first schema: the pending
 * index goes, the indexes of unknown outcomes come and answer /healthz's
 * count, and the rows stay. */
START_TEST(migration_to_schema_2)
{
    store *st = open_fresh();
    new_invoice(st, 1000, "1000000000010");
    new_invoice(st, 1000, "1000000000011");
    new_invoice(st, 1000, NULL); /* an intent left by a crash */
    store_close(st);
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    ck_assert_int_eq(
        sqlite3_exec(db,
                     UNDO_SCHEMA_4
                     "DROP INDEX invoices_unknown; DROP INDEX refunds_unknown;"
                     "CREATE INDEX invoices_pending ON invoices(id) WHERE send_state = 'sent'"
                     " AND polling_stopped = 0 AND status NOT IN ('PAID', 'CANCELED', 'FAILED');"
                     "UPDATE invoices SET send_state = 'sending' WHERE reference IS NULL;"
                     "PRAGMA user_version = 1;",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);

    buf err = BUF_INIT;
    ck_assert_int_eq(store_open(db_path, &st, &err), STORE_OK);
    buf_free(&err);
    ck_assert_int_eq(pending_count(st), 2);
    int64_t unknown = -1;
    ck_assert_int_eq(store_counts(st, &unknown), STORE_OK);
    ck_assert_int_eq(unknown, 1);
    store_close(st);
    ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    char *names = query_text(db, "SELECT group_concat(name) FROM sqlite_master WHERE"
                                 " type = 'index' AND name IN ('invoices_pending',"
                                 " 'invoices_unknown', 'refunds_unknown')");
    ck_assert_ptr_null(strstr(names, "invoices_pending"));
    ck_assert_ptr_nonnull(strstr(names, "invoices_unknown"));
    ck_assert_ptr_nonnull(strstr(names, "refunds_unknown"));
    free(names);
    /* /healthz's count is answered from the partial index, not a table scan. */
    assert_plan_uses(db, "SELECT count(*) FROM invoices WHERE send_state = 'unknown'",
                     "invoices_unknown");
    sqlite3_close(db);
}
END_TEST

/* Migration 2 -> 3 on a database in schema 2's shape (AUTOINCREMENT, UNIQUE
 * reference column) with every kind of row that refers to an invoice: the
 * table is rebuilt, every row and link survives, the reference stays unique
 * and indexed, ids keep growing and foreign keys are enforced again. */
START_TEST(migration_to_schema_3)
{
    store *st = open_fresh();
    int64_t paid = new_invoice(st, 10000, "1000000000030");
    bool changed = false;
    ck_assert_int_eq(
        store_invoice_set_status(st, "1000000000030", SEQR_STATUS_PAID, 1, "E30", NULL, &changed),
        STORE_OK);
    int64_t refund_id = 0;
    ck_assert_int_eq(store_refund_begin(st, paid, 2500, "back", &refund_id), STORE_OK);
    ck_assert_int_eq(store_refund_finish(st, refund_id, STORE_REFUND_DONE, "R30", ""), STORE_OK);
    ck_assert_int_eq(store_receipt_add(st, paid, "text/plain", "PAYMENT", "cmVjZWlwdA==", 0),
                     STORE_OK);
    new_invoice(st, 1000, "1000000000031");
    int64_t intent = new_invoice(st, 1000, NULL); /* a crash left it: unknown */
    store_close(st);

    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    ck_assert_int_eq(
        sqlite3_exec(
            db,
            "PRAGMA foreign_keys = OFF; BEGIN;" UNDO_SCHEMA_4
            "CREATE TABLE invoices_v2( id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " reference TEXT UNIQUE, send_state TEXT NOT NULL, status TEXT NOT NULL,"
            " version INTEGER NOT NULL DEFAULT 0, qr_code TEXT NOT NULL DEFAULT '',"
            " currency TEXT NOT NULL, total INTEGER NOT NULL,"
            " terminal_id TEXT NOT NULL DEFAULT '', payment_mode TEXT NOT NULL DEFAULT '',"
            " client_reference TEXT NOT NULL DEFAULT '', ers_reference TEXT NOT NULL DEFAULT '',"
            " doc TEXT NOT NULL, receipt TEXT, receipt_submitted INTEGER NOT NULL DEFAULT 0,"
            " polling_stopped INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '',"
            " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
            " expires_at INTEGER NOT NULL, paid_at INTEGER NOT NULL DEFAULT 0,"
            " notify_token TEXT NOT NULL DEFAULT '');"
            "INSERT INTO invoices_v2 SELECT * FROM invoices;"
            "DROP TABLE invoices;"
            "ALTER TABLE invoices_v2 RENAME TO invoices;"
            "CREATE INDEX invoices_status ON invoices(status, id);"
            "CREATE INDEX invoices_unknown ON invoices(id) WHERE send_state = 'unknown';"
            "UPDATE invoices SET send_state = 'sending' WHERE reference IS NULL;"
            "PRAGMA user_version = 2; COMMIT;",
            NULL, NULL, NULL),
        SQLITE_OK);
    char *seq = query_text(db, "SELECT seq FROM sqlite_sequence WHERE name = 'invoices'");
    ck_assert_int_eq(atoll(seq), intent); /* it really is schema 2's shape */
    free(seq);
    sqlite3_close(db);

    buf err = BUF_INIT;
    ck_assert_int_eq(store_open(db_path, &st, &err), STORE_OK);
    buf_free(&err);
    store_invoice inv;
    ck_assert_int_eq(store_invoice_get(st, "1000000000030", &inv), STORE_OK);
    ck_assert_int_eq(inv.id, paid);
    ck_assert_int_eq(inv.status, SEQR_STATUS_PAID);
    ck_assert_str_eq(inv.ers_reference, "E30");
    ck_assert_int_eq(inv.refunded, 2500);
    store_invoice_clear(&inv);
    char *json = NULL;
    ck_assert_int_eq(store_invoice_history(st, paid, &json), STORE_OK);
    ck_assert_ptr_nonnull(strstr(json, "\"ISSUED\""));
    ck_assert_ptr_nonnull(strstr(json, "\"PAID\""));
    free(json);
    ck_assert_int_eq(store_refund_list(st, paid, &json), STORE_OK);
    ck_assert_ptr_nonnull(strstr(json, "\"R30\""));
    free(json);
    int64_t unknown = -1;
    ck_assert_int_eq(store_counts(st, &unknown), STORE_OK);
    ck_assert_int_eq(unknown, 1);
    ck_assert_int_eq(pending_count(st), 1);
    /* Ids keep growing past every old one. */
    int64_t next = new_invoice(st, 1000, "1000000000032");
    ck_assert_int_gt(next, intent);
    /* The reference is still unique... */
    memset(&inv, 0, sizeof inv);
    snprintf(inv.currency, sizeof inv.currency, "SEK");
    inv.total = 1;
    inv.doc_json = "{}";
    ck_assert_int_eq(store_invoice_begin(st, &inv), STORE_OK);
    ck_assert_int_ne(store_invoice_sent(st, &inv, "1000000000031", "HTTP://SEQR.SE/Rx"), STORE_OK);
    /* ...and foreign keys are enforced again after the migration. */
    ck_assert_int_ne(store_receipt_add(st, 999999, "text/plain", "PAYMENT", "eA==", 0), STORE_OK);
    store_close(st);

    ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    assert_query(db, "PRAGMA user_version", SCHEMA_VERSION);
    char *t = query_text(db, "SELECT sql FROM sqlite_master WHERE name = 'invoices'");
    ck_assert_ptr_null(strstr(t, "AUTOINCREMENT"));
    ck_assert_ptr_null(strstr(t, "UNIQUE"));
    free(t);
    assert_query(db, "SELECT count(*) FROM sqlite_sequence WHERE name = 'invoices'", "0");
    t = query_text(db, "SELECT group_concat(name) FROM sqlite_master WHERE type = 'index'"
                       " AND tbl_name = 'invoices'");
    ck_assert_ptr_nonnull(strstr(t, "invoices_reference"));
    ck_assert_ptr_nonnull(strstr(t, "invoices_status"));
    ck_assert_ptr_nonnull(strstr(t, "invoices_unknown"));
    free(t);
    /* Every "reference = ?" lookup is served by the partial unique index. */
    assert_plan_uses(db, "SELECT id FROM invoices WHERE reference = ?", "invoices_reference");
    assert_query(db, "SELECT count(*) FROM invoices", "5");
    assert_query(db, "PRAGMA integrity_check", "ok");
    assert_query(db, "PRAGMA foreign_key_check", "");
    sqlite3_close(db);
}
END_TEST

/* Migration 4 -> 5 on a database in schema 4's shape: Idempotency-Key rows
 * that held whole request bodies (a terminal password among them) keep their
 * answers for replays, the bodies are gone from the table and from the file,
 * rows of requests that never finished are dropped. */
START_TEST(migration_to_schema_5)
{
    store *st = open_fresh();
    store_close(st);
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    ck_assert_int_eq(
        sqlite3_exec(db,
                     "BEGIN;" UNDO_SCHEMA_5
                     "INSERT INTO idempotency VALUES('t-1', 'POST', '/terminals',"
                     " '{\"password\":\"Pw-In-Plain-Text-42\"}', 201,"
                     " '{\"terminalId\":\"T1\"}', strftime('%s','now') * 1000);"
                     "INSERT INTO idempotency VALUES('o-1', 'POST', '/invoices', '{}', 0, '',"
                     " strftime('%s','now') * 1000);"
                     "PRAGMA user_version = 4; COMMIT;",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);

    buf err = BUF_INIT;
    ck_assert_int_eq(store_open(db_path, &st, &err), STORE_OK);
    buf_free(&err);
    bool same = false;
    int status = 0;
    char *resp = NULL;
    /* The finished key replays for any scope and any request... */
    ck_assert_int_eq(store_idem_claim(st, "scope", "t-1", "h", 86400000, &same, &status, &resp),
                     STORE_CONFLICT);
    ck_assert(same);
    ck_assert_int_eq(status, 201);
    ck_assert_str_eq(resp, "{\"terminalId\":\"T1\"}");
    free(resp);
    /* ...the unfinished one is free again. */
    ck_assert_int_eq(store_idem_claim(st, "scope", "o-1", "h", 86400000, &same, &status, &resp),
                     STORE_OK);
    store_close(st);

    ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    assert_query(db, "PRAGMA user_version", SCHEMA_VERSION);
    char *t = query_text(db, "SELECT sql FROM sqlite_master WHERE name = 'idempotency'");
    ck_assert_ptr_null(strstr(t, "body"));
    ck_assert_ptr_nonnull(strstr(t, "request_hash"));
    free(t);
    assert_plan_uses(db, "DELETE FROM idempotency WHERE created_at < ?", "idempotency_created");
    sqlite3_close(db);
    /* The password is in no byte of the database file (or its WAL). */
    static const char *const files[] = {"", "-wal"};
    for (size_t i = 0; i < 2; i++) {
        char path[700];
        snprintf(path, sizeof path, "%s%s", db_path, files[i]);
        size_t len = 0;
        char *bytes = tu_read_file(path, &len);
        if (bytes == NULL)
            continue;
        ck_assert_ptr_null(memmem(bytes, len, "Pw-In-Plain-Text-42", 19));
        free(bytes);
    }
}
END_TEST

/* store_invoice_sent() leaves the caller's struct equal to the stored row. */
START_TEST(sent_updates_caller_copy)
{
    store *st = open_fresh();
    store_invoice inv;
    memset(&inv, 0, sizeof inv);
    snprintf(inv.currency, sizeof inv.currency, "EUR");
    inv.total = 4250;
    snprintf(inv.payment_mode, sizeof inv.payment_mode, "IMMEDIATE_DEBIT");
    snprintf(inv.notify_token, sizeof inv.notify_token, "tok");
    inv.doc_json = "{\"title\":\"copy\"}";
    inv.expires_at = store_now_ms() + 60000;
    ck_assert_int_eq(store_invoice_begin(st, &inv), STORE_OK);
    ck_assert_int_eq(store_invoice_sent(st, &inv, "1000000000020", "HTTP://SEQR.SE/R1000000000020"),
                     STORE_OK);
    store_invoice back;
    ck_assert_int_eq(store_invoice_get_id(st, inv.id, &back), STORE_OK);
    ck_assert_str_eq(inv.reference, back.reference);
    ck_assert_str_eq(inv.qr_code, back.qr_code);
    ck_assert_str_eq(inv.send_state, back.send_state);
    ck_assert_int_eq(inv.status, back.status);
    ck_assert_str_eq(inv.currency, back.currency);
    ck_assert_str_eq(inv.payment_mode, back.payment_mode);
    ck_assert_str_eq(inv.notify_token, back.notify_token);
    ck_assert_str_eq(inv.doc_json, back.doc_json);
    ck_assert_int_eq(inv.version, back.version);
    ck_assert_int_eq(inv.total, back.total);
    ck_assert_int_eq(inv.created_at, back.created_at);
    ck_assert_int_eq(inv.updated_at, back.updated_at);
    ck_assert_int_eq(inv.expires_at, back.expires_at);
    ck_assert_int_eq(back.refunded, 0);
    ck_assert(!back.has_refunds);
    store_invoice_clear(&back);
    /* A second outcome for the same intent is refused and changes nothing. */
    ck_assert_int_eq(store_invoice_sent(st, &inv, "1000000000021", "HTTP://SEQR.SE/Rx"),
                     STORE_NOT_FOUND);
    ck_assert_str_eq(inv.reference, "1000000000020");
    store_close(st);
}
END_TEST

/* Many threads writing at once: every durable write returns STORE_OK, all
 * of them are there afterwards, and they shared fdatasyncs (group commit)
 * without a thread of the store's own. */
#define STORE_TEST_THREADS 8
#define STORE_TEST_PER_THREAD 50

static void *writer_main(void *arg)
{
    store *st = arg;
    for (int i = 0; i < STORE_TEST_PER_THREAD; i++) {
        store_invoice inv;
        memset(&inv, 0, sizeof inv);
        snprintf(inv.currency, sizeof inv.currency, "SEK");
        inv.total = 100;
        inv.doc_json = "{}";
        inv.expires_at = store_now_ms() + 60000;
        char ref[64];
        if (store_invoice_begin(st, &inv) != STORE_OK)
            return (void *)1;
        snprintf(ref, sizeof ref, "9%012lld", (long long)inv.id);
        if (store_invoice_sent(st, &inv, ref, "HTTP://SEQR.SE/Rx") != STORE_OK)
            return (void *)1;
    }
    return NULL;
}

START_TEST(concurrent_durable_writers)
{
    store *st = open_fresh();
    int before = sync_calls;
    sync_delay_us = 2000; /* a disk slow enough that writers overlap */
    pthread_t t[STORE_TEST_THREADS];
    for (int i = 0; i < STORE_TEST_THREADS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, writer_main, st), 0);
    for (int i = 0; i < STORE_TEST_THREADS; i++) {
        void *rc = (void *)1;
        pthread_join(t[i], &rc);
        ck_assert_ptr_null(rc);
    }
    sync_delay_us = 0;
    /* One durable commit per invoice; shared, they took far fewer fdatasyncs. */
    int syncs = sync_calls - before;
    ck_assert_msg(syncs <= STORE_TEST_THREADS * STORE_TEST_PER_THREAD / 2,
                  "%d fdatasyncs for %d durable commits: not shared", syncs,
                  STORE_TEST_THREADS * STORE_TEST_PER_THREAD);
    ck_assert_int_eq(pending_count(st), STORE_TEST_THREADS * STORE_TEST_PER_THREAD);
    st = reopen(st);
    ck_assert_int_eq(pending_count(st), STORE_TEST_THREADS * STORE_TEST_PER_THREAD);
    store_close(st);
}
END_TEST

/* A failed fdatasync is sticky: the kernel may have dropped the dirty pages,
 * so the write that hit it and every later one fail, and /healthz's count
 * reports the database as failing, until the store is opened again. */
START_TEST(failed_fdatasync_is_sticky)
{
    store *st = open_fresh();
    int64_t id = new_invoice(st, 1000, "1000000000030");
    fail_syncs = 1;
    ck_assert_int_eq(store_invoice_set_receipt_submitted(st, "1000000000030"), STORE_IO);
    ck_assert_int_eq(fail_syncs, 0);
    /* The disk is fine again, but nothing written since can be trusted. */
    ck_assert_int_eq(store_invoice_set_error(st, "1000000000030", "x"), STORE_IO);
    int64_t refund_id = 0;
    ck_assert_int_eq(store_refund_begin(st, id, 100, "", &refund_id), STORE_IO);
    int64_t unknown = -1;
    ck_assert_int_eq(store_counts(st, &unknown), STORE_IO);
    /* Reads still answer. */
    store_invoice inv;
    ck_assert_int_eq(store_invoice_get(st, "1000000000030", &inv), STORE_OK);
    store_invoice_clear(&inv);
    /* A restart starts from what is on disk and works again. */
    st = reopen(st);
    ck_assert_int_eq(store_counts(st, &unknown), STORE_OK);
    ck_assert_int_eq(store_invoice_set_error(st, "1000000000030", "y"), STORE_OK);
    store_close(st);
}
END_TEST

/* Only a commit that wrote something waits for the disk: a poll that finds
 * the status unchanged, alone or in the poller's batch, costs no fdatasync;
 * a change costs one. */
START_TEST(unchanged_writes_cost_no_fdatasync)
{
    store *st = open_fresh();
    new_invoice(st, 1000, "1000000000040");
    bool changed = true;
    int before = sync_calls;
    ck_assert_int_eq(
        store_invoice_set_status(st, "1000000000040", SEQR_STATUS_ISSUED, 0, NULL, NULL, &changed),
        STORE_OK);
    ck_assert(!changed);
    store_batch_begin(st);
    set_status_ok(st, "1000000000040", SEQR_STATUS_ISSUED, 0);
    ck_assert_int_eq(store_batch_commit(st), STORE_OK);
    ck_assert_int_eq(sync_calls, before);
    store_batch_begin(st);
    ck_assert_int_eq(store_invoice_set_status(st, "1000000000040",
                                              SEQR_STATUS_PENDING_ISSUER_ACKNOWLEDGE, 1, NULL, NULL,
                                              &changed),
                     STORE_OK);
    ck_assert_int_eq(store_batch_commit(st), STORE_OK);
    ck_assert_int_eq(sync_calls, before + 1);
    store_close(st);
}
END_TEST

START_TEST(status_history_and_paid)
{
    store *st = open_fresh();
    int64_t id = new_invoice(st, 1000, "1000000000002");
    bool changed;
    ck_assert_int_eq(
        store_invoice_set_status(st, "1000000000002", SEQR_STATUS_ISSUED, 0, NULL, NULL, &changed),
        STORE_OK);
    ck_assert(!changed);
    ck_assert_int_eq(store_invoice_set_status(st, "1000000000002",
                                              SEQR_STATUS_PENDING_ISSUER_ACKNOWLEDGE, 1, NULL, NULL,
                                              &changed),
                     STORE_OK);
    ck_assert(changed);
    store_batch_begin(st); /* the poller's one-transaction round */
    ck_assert_int_eq(store_invoice_set_status(st, "1000000000002", SEQR_STATUS_PAID, 2,
                                              "2026112410184861801032678", "{\"r\":1}", &changed),
                     STORE_OK);
    ck_assert_int_eq(store_batch_commit(st), STORE_OK);
    store_invoice inv;
    ck_assert_int_eq(store_invoice_get_id(st, id, &inv), STORE_OK);
    ck_assert_int_eq(inv.status, SEQR_STATUS_PAID);
    ck_assert_int_eq(inv.version, 2);
    ck_assert_str_eq(inv.ers_reference, "2026112410184861801032678");
    ck_assert_str_eq(inv.receipt_json, "{\"r\":1}");
    ck_assert_int_gt(inv.paid_at, 0);
    store_invoice_clear(&inv);
    char *hist = NULL;
    ck_assert_int_eq(store_invoice_history(st, id, &hist), STORE_OK);
    /* In order, ISSUED (issued_at, schema 9) once and first. */
    const char *issued = strstr(hist, "\"ISSUED\"");
    ck_assert_ptr_nonnull(issued);
    ck_assert_ptr_null(strstr(issued + 1, "\"ISSUED\""));
    const char *pia = strstr(hist, "\"PENDING_ISSUER_ACKNOWLEDGE\"");
    ck_assert_ptr_nonnull(pia);
    ck_assert_ptr_nonnull(strstr(pia, "\"PAID\""));
    ck_assert(issued < pia);
    free(hist);
    ck_assert_int_eq(pending_count(st), 0); /* final: no longer polled */
    /* Status only moves forward: a slow refresh's ISSUED (older version), or
     * any other status after a final one, changes nothing. */
    ck_assert_int_eq(
        store_invoice_set_status(st, "1000000000002", SEQR_STATUS_ISSUED, 1, NULL, NULL, &changed),
        STORE_CONFLICT);
    ck_assert(!changed);
    ck_assert_int_eq(
        store_invoice_set_status(st, "1000000000002", SEQR_STATUS_ISSUED, 7, NULL, NULL, &changed),
        STORE_CONFLICT);
    set_status_ok(st, "1000000000002", SEQR_STATUS_PAID, 2);
    ck_assert_int_eq(store_invoice_get_id(st, id, &inv), STORE_OK);
    ck_assert_int_eq(inv.status, SEQR_STATUS_PAID);
    ck_assert_int_eq(inv.version, 2);
    store_invoice_clear(&inv);
    int64_t other = new_invoice(st, 1000, "1000000000003");
    ck_assert_int_eq(store_invoice_set_status(st, "1000000000003",
                                              SEQR_STATUS_PENDING_ISSUER_ACKNOWLEDGE, 3, NULL, NULL,
                                              &changed),
                     STORE_OK);
    ck_assert_int_eq(
        store_invoice_set_status(st, "1000000000003", SEQR_STATUS_ISSUED, 2, NULL, NULL, &changed),
        STORE_CONFLICT);
    ck_assert_int_eq(store_invoice_get_id(st, other, &inv), STORE_OK);
    ck_assert_int_eq(inv.status, SEQR_STATUS_PENDING_ISSUER_ACKNOWLEDGE);
    store_invoice_clear(&inv);
    store_close(st);
}
END_TEST

START_TEST(refunds_never_exceed_and_never_repeat)
{
    store *st = open_fresh();
    int64_t id = new_invoice(st, 10000, "1000000000003");
    int64_t r1, r2, r3;
    ck_assert_int_eq(store_refund_begin(st, id, 6000, "a", &r1), STORE_OK);
    /* While r1 is under way, nothing else may start. */
    ck_assert_int_eq(store_refund_begin(st, id, 100, "b", &r2), STORE_CONFLICT);
    ck_assert_int_eq(store_refund_finish(st, r1, STORE_REFUND_DONE, "E1", ""), STORE_OK);
    ck_assert_int_eq(store_refund_begin(st, id, 4001, "c", &r2), STORE_CONFLICT);
    ck_assert_int_eq(store_refund_begin(st, id, 3000, "d", &r2), STORE_OK);
    ck_assert_int_eq(store_refund_finish(st, r2, STORE_REFUND_FAILED, "", "no"), STORE_OK);
    /* A failed refund releases its amount; an unknown one keeps it and blocks. */
    ck_assert_int_eq(store_refund_begin(st, id, 4000, "e", &r3), STORE_OK);
    ck_assert_int_eq(store_refund_finish(st, r3, STORE_REFUND_UNKNOWN, "", "timeout"), STORE_OK);
    store_invoice inv;
    ck_assert_int_eq(store_invoice_get_id(st, id, &inv), STORE_OK);
    ck_assert_int_eq(inv.refunded, 10000);
    store_invoice_clear(&inv);
    ck_assert_int_eq(store_refund_begin(st, id, 1, "f", &r2), STORE_CONFLICT);

    /* A refund under way when the process dies comes back as unknown. */
    int64_t id2 = new_invoice(st, 500, "1000000000004");
    ck_assert_int_eq(store_refund_begin(st, id2, 500, "g", &r1), STORE_OK);
    st = reopen(st);
    char *json = NULL;
    ck_assert_int_eq(store_refund_get(st, r1, &json), STORE_OK);
    ck_assert_ptr_nonnull(strstr(json, "\"unknown\""));
    free(json);
    ck_assert_int_eq(store_refund_list(st, id, &json), STORE_OK);
    ck_assert_ptr_nonnull(strstr(json, "\"E1\""));
    free(json);

    /* The operator lists what is in doubt and settles it. */
    ck_assert_int_eq(store_unknown_list(st, &json), STORE_OK);
    json_t *u = json_loads(json, 0, NULL);
    free(json);
    ck_assert_int_eq(json_array_size(json_object_get(u, "refunds")), 2);
    json_t *first = json_array_get(json_object_get(u, "refunds"), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(first, "id")), r3);
    ck_assert_int_eq(json_integer_value(json_object_get(first, "amount")), 4000);
    ck_assert_str_eq(json_string_value(json_object_get(first, "invoiceReference")),
                     "1000000000003");
    json_decref(u);
    char was[16];
    ck_assert_int_eq(store_refund_resolve(st, id2, r3, STORE_REFUND_FAILED, "", was),
                     STORE_NOT_FOUND); /* r3 is not id2's */
    ck_assert_int_eq(store_refund_resolve(st, id, 424242, STORE_REFUND_FAILED, "", was),
                     STORE_NOT_FOUND);
    ck_assert_int_eq(store_refund_resolve(st, id, r2, STORE_REFUND_DONE, "", was), STORE_CONFLICT);
    ck_assert_str_eq(was, STORE_REFUND_FAILED);
    ck_assert_int_eq(store_refund_resolve(st, id, r3, STORE_REFUND_FAILED, "", was), STORE_OK);
    ck_assert_int_eq(store_invoice_get_id(st, id, &inv), STORE_OK);
    ck_assert_int_eq(inv.refunded, 6000); /* 4000 released */
    store_invoice_clear(&inv);
    ck_assert_int_eq(store_refund_get(st, r3, &json), STORE_OK);
    ck_assert_ptr_nonnull(strstr(json, "settled by the operator as failed (timeout)"));
    free(json);
    ck_assert_int_eq(store_refund_resolve(st, id, r3, STORE_REFUND_DONE, "", was), STORE_CONFLICT);
    ck_assert_int_eq(store_refund_begin(st, id, 4000, "h", &r2), STORE_OK); /* unblocked */
    ck_assert_int_eq(store_refund_resolve(st, id2, r1, STORE_REFUND_DONE, "E9", was), STORE_OK);
    ck_assert_int_eq(store_unknown_list(st, &json), STORE_OK);
    ck_assert_ptr_nonnull(strstr(json, "\"refunds\":[]"));
    free(json);
    ck_assert_int_eq(store_refund_list(st, id2, &json), STORE_OK);
    ck_assert_ptr_nonnull(strstr(json, "\"E9\""));
    free(json);
    store_close(st);
}
END_TEST

/* An invoice whose sendInvoice outcome is unknown is settled by the operator:
 * failed (SEQR has none) or done with SEQR's reference (polled from then on);
 * wrong settlements change nothing. */
START_TEST(unknown_invoices_settled)
{
    store *st = open_fresh();
    int64_t sent = new_invoice(st, 1000, "1000000000040");
    int64_t lost = new_invoice(st, 2000, NULL); /* the process dies mid-call */
    int64_t late = new_invoice(st, 3000, NULL);
    ck_assert_int_eq(store_invoice_send_failed(st, late, STORE_SEND_UNKNOWN, "timeout"), STORE_OK);
    st = reopen(st);
    int64_t unknown = -1;
    ck_assert_int_eq(store_counts(st, &unknown), STORE_OK);
    ck_assert_int_eq(unknown, 2);
    ck_assert_int_eq(pending_count(st), 1);

    char was[16];
    ck_assert_int_eq(store_invoice_resolve(st, 424242, NULL, was), STORE_NOT_FOUND);
    ck_assert_int_eq(store_invoice_resolve(st, sent, NULL, was), STORE_CONFLICT);
    ck_assert_str_eq(was, STORE_SEND_SENT);
    /* The reference of another invoice: refused, and the invoice stays in doubt. */
    ck_assert_int_eq(store_invoice_resolve(st, late, "1000000000040", was), STORE_CONFLICT);
    ck_assert_str_eq(was, STORE_SEND_UNKNOWN);
    ck_assert_int_eq(store_counts(st, &unknown), STORE_OK);
    ck_assert_int_eq(unknown, 2);

    /* Failed: no invoice at SEQR; it leaves the count and is never polled. */
    ck_assert_int_eq(store_invoice_resolve(st, lost, NULL, was), STORE_OK);
    store_invoice inv;
    ck_assert_int_eq(store_invoice_get_id(st, lost, &inv), STORE_OK);
    ck_assert_str_eq(inv.send_state, STORE_SEND_REJECTED);
    ck_assert_ptr_nonnull(strstr(inv.last_error, "settled by the operator as failed (gateway "
                                                 "stopped during sendInvoice"));
    store_invoice_clear(&inv);
    ck_assert_int_eq(store_invoice_resolve(st, lost, NULL, was), STORE_CONFLICT);
    ck_assert_str_eq(was, STORE_SEND_REJECTED);

    /* Done: SEQR has it under this reference; it is an ISSUED invoice now. */
    ck_assert_int_eq(store_invoice_resolve(st, late, "1000000000041", was), STORE_OK);
    ck_assert_int_eq(store_invoice_get(st, "1000000000041", &inv), STORE_OK);
    ck_assert_int_eq(inv.id, late);
    ck_assert_str_eq(inv.send_state, STORE_SEND_SENT);
    ck_assert_int_eq(inv.status, SEQR_STATUS_ISSUED);
    ck_assert_int_eq(inv.total, 3000);
    ck_assert_str_eq(inv.last_error, "outcome was unknown; settled by the operator as done "
                                     "(timeout)");
    store_invoice_clear(&inv);
    char *json = NULL;
    ck_assert_int_eq(store_invoice_history(st, late, &json), STORE_OK);
    ck_assert_ptr_nonnull(strstr(json, "\"ISSUED\""));
    free(json);
    ck_assert_int_eq(store_counts(st, &unknown), STORE_OK);
    ck_assert_int_eq(unknown, 0);
    ck_assert_int_eq(store_unknown_list(st, &json), STORE_OK);
    ck_assert_ptr_nonnull(strstr(json, "\"invoices\":[]"));
    free(json);
    st = reopen(st); /* durable, and loaded for polling at start-up */
    ck_assert_int_eq(pending_count(st), 2);
    store_close(st);
}
END_TEST

START_TEST(idempotency_keys)
{
    store *st = open_fresh();
    bool same;
    int status;
    char *resp;
    const int64_t day = 86400000;
    ck_assert_int_eq(store_idem_claim(st, "s1", "k1", "h1", day, &same, &status, &resp), STORE_OK);
    ck_assert_int_eq(store_idem_claim(st, "s1", "k1", "h1", day, &same, &status, &resp),
                     STORE_CONFLICT);
    ck_assert(same);
    ck_assert_int_eq(status, 0); /* still running */
    free(resp);
    ck_assert_int_eq(store_idem_finish(st, "s1", "k1", 201, "{\"a\":1}"), STORE_OK);
    ck_assert_int_eq(store_idem_claim(st, "s1", "k1", "h1", day, &same, &status, &resp),
                     STORE_CONFLICT);
    ck_assert_int_eq(status, 201);
    ck_assert_str_eq(resp, "{\"a\":1}");
    free(resp);
    ck_assert_int_eq(store_idem_claim(st, "s1", "k1", "h2", day, &same, &status, &resp),
                     STORE_CONFLICT);
    ck_assert(!same);
    free(resp);
    /* Another API key's scope does not see the key. */
    ck_assert_int_eq(store_idem_claim(st, "s2", "k1", "h9", day, &same, &status, &resp), STORE_OK);
    ck_assert_int_eq(store_idem_claim(st, "s1", "k2", "h1", day, &same, &status, &resp), STORE_OK);
    ck_assert_int_eq(store_idem_release(st, "s1", "k2"), STORE_OK);
    ck_assert_int_eq(store_idem_claim(st, "s1", "k2", "h1", day, &same, &status, &resp), STORE_OK);
    /* Expired keys are pruned: a TTL of 0 ms lets nothing older survive. */
    ck_assert_int_eq(store_idem_prune(st, store_now_ms() + 1), STORE_OK);
    ck_assert_int_eq(store_idem_claim(st, "s1", "k1", "h2", day, &same, &status, &resp), STORE_OK);
    store_close(st);
}
END_TEST

/* Migration 3 -> 4 on a database in schema 3's shape: receipts keep their
 * rows (with no stored document), gain the submitted document and an index
 * by invoice; terminals keep theirs and gain an empty cashierId. */
START_TEST(migration_to_schema_4)
{
    static const unsigned char key[32] = {7};
    store *st = open_fresh();
    ck_assert_int_eq(store_set_secret_key(st, key), STORE_OK);
    int64_t paid = new_invoice(st, 10000, "1000000000040");
    ck_assert_int_eq(store_receipt_add(st, paid, "text/plain", "PAYMENT_RECEIPT", NULL, 0),
                     STORE_OK);
    store_terminal t;
    memset(&t, 0, sizeof t);
    snprintf(t.terminal_id, sizeof t.terminal_id, "till-4");
    snprintf(t.external_id, sizeof t.external_id, "Till 4");
    snprintf(t.name, sizeof t.name, "Till four");
    snprintf(t.password, sizeof t.password, "s3cret-pass");
    ck_assert_int_eq(store_terminal_add(st, &t), STORE_OK);
    store_close(st);
    st = reopen_after("BEGIN;" UNDO_SCHEMA_4 "PRAGMA user_version = 3; COMMIT;");
    ck_assert_int_eq(store_set_secret_key(st, key), STORE_OK);
    store_receipt r;
    ck_assert_int_eq(store_receipt_last(st, paid, &r), STORE_OK);
    ck_assert_str_eq(r.mime_type, "text/plain");
    ck_assert_ptr_null(r.data_b64); /* submitted before documents were kept */
    store_receipt_clear(&r);
    ck_assert_int_eq(store_receipt_add(st, paid, "text/html", "PAYMENT_RECEIPT", "PGI+", 0),
                     STORE_OK);
    ck_assert_int_eq(store_receipt_add(st, paid, "text/xml", "OTHER", "eA==", 23), STORE_OK);
    ck_assert_int_eq(store_receipt_last(st, paid, &r), STORE_OK); /* the latest accepted */
    ck_assert_str_eq(r.mime_type, "text/html");
    ck_assert_str_eq(r.receipt_type, "PAYMENT_RECEIPT");
    ck_assert_str_eq(r.data_b64, "PGI+");
    ck_assert_int_eq(r.data_len, 4);
    ck_assert_int_gt(r.submitted_at, 0);
    store_receipt_clear(&r);
    ck_assert_int_eq(store_receipt_last(st, paid + 1000, &r), STORE_NOT_FOUND);
    store_terminal got;
    ck_assert_int_eq(store_terminal_get(st, "till-4", &got), STORE_OK);
    ck_assert_str_eq(got.name, "Till four");
    ck_assert_str_eq(got.cashier_id, "");
    snprintf(t.terminal_id, sizeof t.terminal_id, "till-5");
    snprintf(t.cashier_id, sizeof t.cashier_id, "Anna");
    ck_assert_int_eq(store_terminal_add(st, &t), STORE_OK);
    ck_assert_int_eq(store_terminal_get(st, "till-5", &got), STORE_OK);
    ck_assert_str_eq(got.cashier_id, "Anna");
    store_close(st);

    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    assert_query(db, "PRAGMA user_version", SCHEMA_VERSION);
    assert_plan_uses(db,
                     "SELECT mime_type FROM receipts WHERE invoice_id = 1 AND result_code = 0"
                     " ORDER BY id DESC LIMIT 1",
                     "receipts_invoice");
    sqlite3_close(db);
}
END_TEST

/* Migration 6 -> 7 on a database in schema 6's shape: invoices keep their
 * rows with no pay token (no payment page), new ones get theirs, found
 * through the partial unique index; "" finds nothing. */
START_TEST(migration_to_schema_7)
{
    store *st = open_fresh();
    int64_t old = new_invoice(st, 10000, "1000000000050");
    store_close(st);
    st = reopen_after("BEGIN;" UNDO_SCHEMA_7 "PRAGMA user_version = 6; COMMIT;");
    store_invoice inv;
    ck_assert_int_eq(store_invoice_get_id(st, old, &inv), STORE_OK);
    ck_assert_str_eq(inv.pay_token, "");
    ck_assert_str_eq(inv.reference, "1000000000050");
    store_invoice_clear(&inv);
    ck_assert_int_eq(store_invoice_get_pay_token(st, "", &inv), STORE_NOT_FOUND);

    store_invoice fresh;
    intent_of_500(&fresh);
    snprintf(fresh.pay_token, sizeof fresh.pay_token, "0123456789abcdef0123456789abcdef");
    ck_assert_int_eq(store_invoice_begin(st, &fresh), STORE_OK);
    ck_assert_int_eq(store_invoice_sent(st, &fresh, "1000000000051", "HTTP://SEQR.SE/R1"),
                     STORE_OK);
    ck_assert_int_eq(store_invoice_get_pay_token(st, "0123456789abcdef0123456789abcdef", &inv),
                     STORE_OK);
    ck_assert_str_eq(inv.reference, "1000000000051");
    store_invoice_clear(&inv);
    ck_assert_int_eq(store_invoice_get_pay_token(st, "0123456789abcdef0123456789abcdee", &inv),
                     STORE_NOT_FOUND);
    /* A second invoice with the same token is refused (unique). */
    store_invoice twin;
    memset(&twin, 0, sizeof twin);
    snprintf(twin.currency, sizeof twin.currency, "SEK");
    twin.total = 500;
    twin.doc_json = "{}";
    snprintf(twin.pay_token, sizeof twin.pay_token, "%s", fresh.pay_token);
    ck_assert_int_ne(store_invoice_begin(st, &twin), STORE_OK);
    store_close(st);

    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    assert_query(db, "PRAGMA user_version", SCHEMA_VERSION);
    assert_plan_uses(db, "SELECT id FROM invoices i WHERE i.pay_token = 'x' AND i.pay_token <> ''",
                     "invoices_pay_token");
    sqlite3_close(db);
}
END_TEST

static void ev_states(store *st, char *out, size_t len);

static int64_t new_invoice_doc(store *st, const char *doc, const char *ref);

/* Migration 9: an invoice sent before keeps its ISSUED history row (and
 * shows it once); one sent after has issued_at for its ISSUED entry, no
 * status_history row and no entry in invoices_pay_token; its pay_secret is
 * stored as given. clientInvoiceId is a column now, filled from the
 * documents of before, and the events take it from there. */
START_TEST(migration_to_schema_9)
{
    store *st = open_fresh();
    int64_t old = new_invoice(st, 1000, "1000000000070");
    int64_t named =
        new_invoice_doc(st, "{\"title\":\"t\",\"clientInvoiceId\":\"shop-9\"}", "1000000000072");
    store_close(st);
    st = reopen_after("BEGIN;" UNDO_SCHEMA_9 "PRAGMA user_version = 8; COMMIT;");
    char *hist = NULL;
    ck_assert_int_eq(store_invoice_history(st, old, &hist), STORE_OK);
    ck_assert_ptr_nonnull(strstr(hist, "[{\"status\":\"ISSUED\",\"version\":0,\"at\":"));
    ck_assert_ptr_null(strstr(strstr(hist, "ISSUED") + 1, "ISSUED"));
    free(hist);
    store_invoice inv;
    ck_assert_int_eq(store_invoice_get_id(st, old, &inv), STORE_OK);
    ck_assert_int_eq(inv.issued_at, 0);
    ck_assert_str_eq(inv.pay_secret, "");
    store_invoice_clear(&inv);

    store_invoice fresh;
    intent_of_500(&fresh);
    snprintf(fresh.pay_secret, sizeof fresh.pay_secret, "00112233445566778899aabbccddeeff");
    ck_assert_int_eq(store_invoice_begin(st, &fresh), STORE_OK);
    ck_assert_int_eq(store_invoice_sent(st, &fresh, "1000000000071", "HTTP://SEQR.SE/R1"),
                     STORE_OK);
    ck_assert_int_gt(fresh.issued_at, 0);
    bool changed = false;
    set_status_ok(st, "1000000000071", SEQR_STATUS_PAID, 1);
    ck_assert_int_eq(store_invoice_get_id(st, fresh.id, &inv), STORE_OK);
    ck_assert_str_eq(inv.pay_secret, "00112233445566778899aabbccddeeff");
    ck_assert_str_eq(inv.pay_token, "");
    ck_assert_int_eq(inv.issued_at, fresh.issued_at);
    store_invoice_clear(&inv);
    char want[160];
    snprintf(want, sizeof want,
             "[{\"status\":\"ISSUED\",\"version\":0,\"at\":%lld},{\"status\":\"PAID\","
             "\"version\":1,",
             (long long)fresh.issued_at);
    ck_assert_int_eq(store_invoice_history(st, fresh.id, &hist), STORE_OK);
    ck_assert_msg(strncmp(hist, want, strlen(want)) == 0, "%s", hist);
    free(hist);
    /* The backfilled clientInvoiceId in an event, then a new one with the
     * document. */
    ck_assert_int_eq(store_invoice_set_status(st, "1000000000072",
                                              SEQR_STATUS_PENDING_ISSUER_ACKNOWLEDGE, 1, NULL, NULL,
                                              &changed),
                     STORE_OK);
    ck_assert_int_eq(store_invoice_set_doc(st, "1000000000072",
                                           "{\"title\":\"t\",\"clientInvoiceId\":\"shop-10\"}",
                                           1000),
                     STORE_OK);
    store_close(st);

    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    assert_query(db, "PRAGMA user_version", SCHEMA_VERSION);
    assert_query(db, "SELECT count(*) FROM status_history WHERE status = 'ISSUED'", "2");
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT client_invoice_id FROM invoices WHERE id = %lld",
             (long long)named);
    assert_query(db, sql, "shop-10");
    snprintf(sql, sizeof sql,
             "SELECT group_concat(type || ':' || ifnull(json_extract(data, '$.clientInvoiceId'),"
             " 'null'), ' ') FROM (SELECT type, data FROM events WHERE invoice_id = %lld"
             " ORDER BY id)",
             (long long)named);
    assert_query(db, sql, "invoice.created:shop-9 invoice.updated:shop-9 invoice.updated:shop-10");
    assert_query(db,
                 "SELECT count(*) FROM invoices INDEXED BY invoices_pay_token"
                 " WHERE pay_token <> ''",
                 "0");
    sqlite3_close(db);
}
END_TEST

/* Migration 8 replaces the triggers of old (which wrote every event
 * pending) by ones that write events with nowhere to go skipped; events
 * written before keep their state. */
START_TEST(migration_to_schema_8)
{
    store *st = open_fresh();
    new_invoice(st, 1000, "1000000000060");
    store_close(st);
    st = reopen_after("BEGIN;" UNDO_SCHEMA_8 "PRAGMA user_version = 7; COMMIT;");
    bool changed = false;
    ck_assert_int_eq(store_set_delivery(st, false, false, &changed), STORE_OK);
    ck_assert(changed);
    new_invoice(st, 1000, "1000000000061");
    char states[256];
    ev_states(st, states, sizeof states);
    ck_assert_str_eq(states, "invoice.created:pending invoice.created:skipped");
    store_close(st);

    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    assert_query(db, "PRAGMA user_version", SCHEMA_VERSION);
    assert_query(db, "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'", "5");
    sqlite3_close(db);
}
END_TEST

/* Migration 9 -> 10: the events table without AUTOINCREMENT. Every event
 * and its delivery attempts keep their ids, the triggers still write events,
 * and a new event's id is past every old one, so a feed cursor stays valid;
 * an event no longer writes sqlite_sequence. */
START_TEST(migration_to_schema_10)
{
    store *st = open_fresh();
    new_invoice(st, 1000, "1000000000080");
    int64_t inv = new_invoice(st, 1000, "1000000000081");
    bool changed = false;
    ck_assert_int_eq(
        store_invoice_set_status(st, "1000000000081", SEQR_STATUS_PAID, 1, "E81", NULL, &changed),
        STORE_OK);
    int64_t last = 0;
    ck_assert_int_eq(store_events_last_id(st, &last), STORE_OK);
    ck_assert_int_eq(last, 3);
    ck_assert_int_eq(
        store_event_attempt(st, last, "http://shop.test/hook", 500, 12, "HTTP 500", "pending", 0),
        STORE_OK);
    store_close(st);
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "BEGIN;" UNDO_SCHEMA_10 "PRAGMA user_version = 9; COMMIT;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_query(db, "SELECT seq FROM sqlite_sequence WHERE name = 'events'", "3"); /* schema 9 */
    sqlite3_close(db);
    buf err = BUF_INIT;
    ck_assert_msg(store_open(db_path, &st, &err) == STORE_OK, "%s", buf_cstr(&err));
    buf_free(&err);

    char states[256];
    ev_states(st, states, sizeof states);
    ck_assert_str_eq(states,
                     "invoice.created:pending invoice.created:pending invoice.paid:pending");
    int64_t next = new_invoice(st, 1000, "1000000000082");
    ck_assert_int_gt(next, inv);
    ck_assert_int_eq(store_events_last_id(st, &last), STORE_OK);
    ck_assert_int_eq(last, 4);
    store_close(st);

    ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    assert_query(db, "PRAGMA user_version", SCHEMA_VERSION);
    char *t = query_text(db, "SELECT sql FROM sqlite_master WHERE name = 'events'");
    ck_assert_ptr_null(strstr(t, "AUTOINCREMENT"));
    free(t);
    assert_query(db, "SELECT count(*) FROM sqlite_sequence WHERE name = 'events'", "0");
    assert_query(db, "SELECT group_concat(event_id || ':' || http_status) FROM delivery_attempts",
                 "3:500");
    assert_query(db, "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'", "5");
    assert_query(db,
                 "SELECT count(*) FROM sqlite_master WHERE type = 'index'"
                 " AND tbl_name = 'events'",
                 "3");
    assert_query(db, "SELECT count(*) FROM pragma_foreign_key_check", "0");
    sqlite3_close(db);
}
END_TEST

/* Terminal passwords are encrypted at rest (SEQR needs them in plain text, so
 * they cannot be hashed): never stored without a key, not in the file in
 * plain text, bound to their row, and ones left in plain text by an older
 * version are sealed when the key is given. */
START_TEST(terminals)
{
    store *st = open_fresh();
    store_terminal t;
    memset(&t, 0, sizeof t);
    snprintf(t.terminal_id, sizeof t.terminal_id, "abc");
    snprintf(t.external_id, sizeof t.external_id, "Till 4");
    snprintf(t.name, sizeof t.name, "Register");
    snprintf(t.password, sizeof t.password, "s3cret-pass");
    ck_assert_int_eq(store_terminal_add(st, &t), STORE_IO); /* no key: never in plain text */
    unsigned char key[32], other[32];
    memset(key, 0x5a, sizeof key);
    memset(other, 0xa5, sizeof other);
    ck_assert_int_eq(store_set_secret_key(st, key), STORE_OK);
    ck_assert_int_eq(store_terminal_add(st, &t), STORE_OK);
    ck_assert_int_eq(store_terminal_set_seqr_id(st, "abc", "shop1"), STORE_OK);
    store_terminal got;
    ck_assert_int_eq(store_terminal_get(st, "abc", &got), STORE_OK);
    ck_assert_str_eq(got.password, "s3cret-pass");
    ck_assert_str_eq(got.seqr_id, "shop1");
    ck_assert(!got.unregistered);
    ck_assert_int_eq(store_terminal_unregister(st, "abc"), STORE_OK);
    ck_assert_int_eq(store_terminal_get(st, "abc", &got), STORE_OK);
    ck_assert(got.unregistered);
    ck_assert_int_eq(store_terminal_get(st, "zzz", &got), STORE_NOT_FOUND);
    ck_assert_int_eq(store_terminal_unregister(st, "zzz"), STORE_NOT_FOUND);
    store_close(st);
    if (pg_url != NULL) {
        /* In the database: sealed; another key does not open it. */
        pg_sql("DO $$ BEGIN IF (SELECT password FROM terminals WHERE terminal_id = 'abc')"
               " NOT LIKE 'v1:%' THEN RAISE EXCEPTION 'not sealed'; END IF; END $$");
        st = reopen(NULL);
        ck_assert_int_eq(store_set_secret_key(st, other), STORE_OK);
        ck_assert_int_eq(store_terminal_get(st, "abc", &got), STORE_IO);
        store_close(st);
        return;
    }

    /* On disk: sealed. Copied to another row: does not open. A plain-text row
     * of an older version gets sealed when the key is given. */
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    char *pw = query_text(db, "SELECT password FROM terminals WHERE terminal_id = 'abc'");
    ck_assert_ptr_nonnull(strstr(pw, "v1:"));
    ck_assert_ptr_null(strstr(pw, "s3cret"));
    free(pw);
    ck_assert_int_eq(sqlite3_exec(db,
                                  "INSERT INTO terminals(terminal_id, external_id, name, password,"
                                  " created_at) SELECT 'copy', 'x', 'x', password, 0 FROM terminals"
                                  " WHERE terminal_id = 'abc';"
                                  "INSERT INTO terminals(terminal_id, external_id, name, password,"
                                  " created_at) VALUES('old', 'x', 'x', 'Plain-Old-Pass-77', 0);",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    buf err = BUF_INIT;
    ck_assert_int_eq(store_open(db_path, &st, &err), STORE_OK);
    buf_free(&err);
    ck_assert_int_eq(store_set_secret_key(st, key), STORE_OK);
    ck_assert_int_eq(store_terminal_get(st, "copy", &got), STORE_IO);
    ck_assert_int_eq(store_terminal_get(st, "old", &got), STORE_OK);
    ck_assert_str_eq(got.password, "Plain-Old-Pass-77");
    store_close(st);
    ck_assert_int_eq(store_open(db_path, &st, &err), STORE_OK);
    ck_assert_int_eq(store_set_secret_key(st, other), STORE_OK);
    ck_assert_int_eq(store_terminal_get(st, "abc", &got), STORE_IO); /* another key */
    store_close(st);
    size_t len = 0;
    char *bytes = tu_read_file(db_path, &len);
    ck_assert_ptr_nonnull(bytes);
    ck_assert_ptr_null(memmem(bytes, len, "Plain-Old-Pass-77", 17));
    ck_assert_ptr_null(memmem(bytes, len, "s3cret-pass", 11));
    free(bytes);
}
END_TEST

/* A second gateway's store on the same database (PostgreSQL). */
static store *open_second(void)
{
    store *st = NULL;
    buf err = BUF_INIT;
    ck_assert_msg(store_open(db_path, &st, &err) == STORE_OK, "%s", buf_cstr(&err));
    buf_free(&err);
    return st;
}

typedef struct {
    store *st;
    store_err e;
} opener;

static void *open_main(void *arg)
{
    opener *o = arg;
    buf err = BUF_INIT;
    o->e = store_open(db_path, &o->st, &err);
    buf_free(&err);
    return NULL;
}

/* Gateways started together on an empty database: one migrates under the
 * advisory lock, the others wait and find the schema there. */
START_TEST(pg_migrations_raced)
{
    pg_sql("SET client_min_messages = warning; DROP SCHEMA public CASCADE; CREATE SCHEMA public");
    snprintf(db_path, sizeof db_path, "%s", pg_url);
    opener o[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, open_main, &o[i]), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(o[i].e, STORE_OK);
        store_close(o[i].st);
    }
}
END_TEST

static void count_lost(const char *reference, void *ud)
{
    (void)reference;
    (*(int *)ud)++;
}

/* Two gateways: each invoice is leased to one; a gateway that joins gets
 * its share; one that dies (stops renewing) loses its invoices to the other
 * once the lease runs out, and its send intents become unknown. */
START_TEST(pg_leases_shared_and_taken_over)
{
    store *a = open_fresh();
    for (int i = 0; i < 100; i++) {
        char ref[32];
        snprintf(ref, sizeof ref, "7%012d", i);
        new_invoice(a, 100, ref);
    }
    int64_t intent = new_invoice(a, 100, NULL); /* a dies during this sendInvoice */
    int gained = 0, lost = 0;
    int64_t held = 0;
    ck_assert_int_eq(store_lease_sync(a, count_one, count_lost, &gained, &held), STORE_OK);
    ck_assert_int_eq(held, 100); /* the sender holds what it sent */
    ck_assert_int_eq(gained, 0);

    store *b = open_second();
    int b_gained = 0;
    int64_t b_held = 0;
    ck_assert_int_eq(store_lease_sync(b, count_one, lost_none, &b_gained, &b_held), STORE_OK);
    ck_assert_int_eq(b_held, 0); /* nothing free yet */
    ck_assert_int_eq(store_lease_sync(a, count_one, count_lost, &lost, &held), STORE_OK);
    ck_assert_int_eq(held, 50); /* a gives back what is over its share */
    ck_assert_int_eq(lost, 50);
    ck_assert_int_eq(store_lease_sync(b, count_one, lost_none, &b_gained, &b_held), STORE_OK);
    ck_assert_int_eq(b_held, 50);
    ck_assert_int_eq(b_gained, 50);
    /* Disjoint: no invoice is held by both. */
    pg_sql("DO $$ BEGIN IF (SELECT count(DISTINCT id) FROM invoices WHERE lease_owner <> 0)"
           " <> 100 THEN RAISE EXCEPTION 'leases overlap or missing'; END IF; END $$");

    /* a dies: no clean close, its heartbeat and leases simply stop. Until
     * they run out b takes nothing; then b takes all within one sync. */
    pg_sql("UPDATE gateway_instances SET heartbeat_at = heartbeat_at - 10000"
           " WHERE id = (SELECT min(id) FROM gateway_instances);"
           "UPDATE invoices SET lease_until = lease_until - 10000"
           " WHERE lease_owner = (SELECT min(id) FROM gateway_instances)");
    b_gained = 0;
    ck_assert_int_eq(store_lease_sync(b, count_one, lost_none, &b_gained, &b_held), STORE_OK);
    ck_assert_int_eq(b_held, 100);
    ck_assert_int_eq(b_gained, 50);
    store_invoice inv;
    ck_assert_int_eq(store_invoice_get_id(b, intent, &inv), STORE_OK);
    ck_assert_str_eq(inv.send_state, STORE_SEND_UNKNOWN);
    store_invoice_clear(&inv);
    /* b's own intents under way are not a dead gateway's. */
    int64_t mine = new_invoice(b, 100, NULL);
    ck_assert_int_eq(store_lease_sync(b, count_one, lost_none, &b_gained, &b_held), STORE_OK);
    ck_assert_int_eq(store_invoice_get_id(b, mine, &inv), STORE_OK);
    ck_assert_str_eq(inv.send_state, STORE_SEND_SENDING);
    store_invoice_clear(&inv);
    store_close(b);
    store_close(a);
}
END_TEST

/* Claims key on st; returns what store_idem_claim returned (the row's
 * status in *status when the key is held). */
static store_err claim_key(store *st, const char *key, int *status)
{
    bool same = false;
    char *response = NULL;
    *status = -1;
    store_err e = store_idem_claim(st, "scope", key, "hash", 600000, &same, status, &response);
    free(response);
    return e;
}

/* A gateway alive but stalled for a few seconds (its connection holding the
 * live lock, its heartbeat late) keeps its running Idempotency-Keys: a retry
 * on another gateway meets the running key instead of running the request
 * again. Its intent under way goes unknown at 3 s as before; once it has
 * been silent for 30 s (or its connection is gone) its keys are freed. */
START_TEST(pg_stalled_gateway_keeps_its_running_keys)
{
    store *a = open_fresh();
    int status = -1;
    ck_assert_int_eq(claim_key(a, "key-stall", &status), STORE_OK);
    int64_t intent = new_invoice(a, 100, NULL); /* its sendInvoice under way */
    store *b = open_second();
    int gained = 0;
    int64_t held = 0;

    pg_sql("UPDATE gateway_instances SET heartbeat_at = heartbeat_at - 10000"
           " WHERE id = (SELECT min(id) FROM gateway_instances)");
    ck_assert_int_eq(store_lease_sync(b, count_one, lost_none, &gained, &held), STORE_OK);
    store_invoice inv;
    ck_assert_int_eq(store_invoice_get_id(b, intent, &inv), STORE_OK);
    ck_assert_str_eq(inv.send_state, STORE_SEND_UNKNOWN);
    store_invoice_clear(&inv);
    ck_assert_int_eq(claim_key(b, "key-stall", &status), STORE_CONFLICT);
    ck_assert_int_eq(status, 0); /* still running: the retry waits */

    pg_sql("UPDATE gateway_instances SET heartbeat_at = heartbeat_at - 30000"
           " WHERE id = (SELECT min(id) FROM gateway_instances)");
    ck_assert_int_eq(store_lease_sync(b, count_one, lost_none, &gained, &held), STORE_OK);
    ck_assert_int_eq(claim_key(b, "key-stall", &status), STORE_OK);
    store_close(b);
    store_close(a);
}
END_TEST

/* Gateways sharing the database see each other (a [webhooks] that differs
 * from theirs is reported at start, webhook.c); a closed one is gone. */
START_TEST(pg_other_gateways_counted)
{
    store *a = open_fresh();
    int64_t n = -1;
    ck_assert_int_eq(store_other_gateways(a, &n), STORE_OK);
    ck_assert_int_eq(n, 0);
    store *b = open_second();
    ck_assert_int_eq(store_other_gateways(a, &n), STORE_OK);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(store_other_gateways(b, &n), STORE_OK);
    ck_assert_int_eq(n, 1);
    store_close(b);
    ck_assert_int_eq(store_other_gateways(a, &n), STORE_OK);
    ck_assert_int_eq(n, 0);
    store_close(a);
}
END_TEST

typedef struct {
    store *st;
    int64_t invoice_id;
    pthread_barrier_t *go;
    store_err refund, claim;
} racer;

static void *race_main(void *arg)
{
    racer *r = arg;
    int64_t refund_id = 0;
    pthread_barrier_wait(r->go);
    r->refund = store_refund_begin(r->st, r->invoice_id, 1000, "all of it", &refund_id);
    bool same = false;
    int status = 0;
    char *response = NULL;
    r->claim = store_idem_claim(r->st, "scope", "key-1", "hash", 60000, &same, &status, &response);
    free(response);
    return NULL;
}

/* Two gateways refunding the whole of one invoice at the same moment, and
 * claiming the same Idempotency-Key: each is decided once. */
START_TEST(pg_refund_and_key_decided_once_across_gateways)
{
    store *a = open_fresh();
    store *b = open_second();
    for (int round = 0; round < 20; round++) {
        char ref[32];
        snprintf(ref, sizeof ref, "5%012d", round);
        int64_t id = new_invoice(a, 1000, ref);
        ck_assert_int_eq(store_invoice_set_status(a, ref, SEQR_STATUS_PAID, 1, "ers", NULL, NULL),
                         STORE_OK);
        pg_sql("DELETE FROM idempotency");
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, 2);
        racer r[2] = {{a, id, &go, STORE_IO, STORE_IO}, {b, id, &go, STORE_IO, STORE_IO}};
        pthread_t t[2];
        for (int i = 0; i < 2; i++)
            ck_assert_int_eq(pthread_create(&t[i], NULL, race_main, &r[i]), 0);
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        pthread_barrier_destroy(&go);
        ck_assert_int_eq((r[0].refund == STORE_OK) + (r[1].refund == STORE_OK), 1);
        ck_assert_int_eq((r[0].refund == STORE_CONFLICT) + (r[1].refund == STORE_CONFLICT), 1);
        ck_assert_int_eq((r[0].claim == STORE_OK) + (r[1].claim == STORE_OK), 1);
        ck_assert_int_eq((r[0].claim == STORE_CONFLICT) + (r[1].claim == STORE_CONFLICT), 1);
    }
    store_close(b);
    store_close(a);
}
END_TEST

/* The URL's password never reaches an error message. */
START_TEST(pg_password_not_in_errors)
{
    store *st = NULL;
    buf err = BUF_INIT;
    ck_assert_int_eq(
        store_open("postgresql://u:Sekr1t-pw@127.0.0.1:1/db?password=Other-pw2", &st, &err),
        STORE_IO);
    ck_assert_ptr_null(strstr(buf_cstr(&err), "Sekr1t-pw"));
    ck_assert_ptr_null(strstr(buf_cstr(&err), "Other-pw2"));
    ck_assert_ptr_nonnull(strstr(buf_cstr(&err), "u:***@127.0.0.1:1/db?password=***"));
    buf_free(&err);
}
END_TEST

/* A failing SQL statement is reported through the log module (its level,
 * its redactor), not printed to stderr past it. */
START_TEST(sql_errors_go_through_the_log)
{
    store *st = open_fresh();
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    ck_assert_int_eq(
        sqlite3_exec(db, "ALTER TABLE receipts RENAME TO receipts_gone", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    store_invoice inv; /* a read: the connection learns the new schema */
    ck_assert_int_eq(store_invoice_get(st, "none", &inv), STORE_NOT_FOUND);
    log_add_secret("receipts");
    char out[700];
    snprintf(out, sizeof out, "%s.stderr", db_path);
    fflush(stderr);
    int saved = dup(2);
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    dup2(fd, 2);
    close(fd);
    store_receipt r;
    store_err e = store_receipt_last(st, 1, &r);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    log_clear_secrets();
    ck_assert_int_eq(e, STORE_IO);
    char *text = tu_read_file(out, NULL);
    ck_assert_ptr_nonnull(text);
    ck_assert_msg(strstr(text, " ERROR store: ") != NULL, "not a log line: %s", text);
    ck_assert_msg(strstr(text, "receipts") == NULL, "not redacted: %s", text);
    free(text);
    store_close(st);
}
END_TEST

/* --- events (the outbox) --- */

typedef struct {
    int n;
    char types[16][40];
    int64_t ids[16];
    char data[16][1024];
    char states[16][16];
} ev_seen;

static bool ev_collect(const store_event *ev, void *ud)
{
    ev_seen *seen = ud;
    if (seen->n < 16) {
        snprintf(seen->types[seen->n], sizeof seen->types[0], "%s", ev->type);
        snprintf(seen->states[seen->n], sizeof seen->states[0], "%s", ev->state);
        snprintf(seen->data[seen->n], sizeof seen->data[0], "%s", ev->data);
        seen->ids[seen->n] = ev->id;
    }
    seen->n++;
    return true;
}

static void ev_hook(void *ud, const int64_t *invoice_ids, size_t n, bool deliver)
{
    ck_assert(invoice_ids != NULL && n == 1); /* one invoice per change here */
    ck_assert(deliver);                       /* nothing said: every event is pending */
    atomic_fetch_add((atomic_int *)ud, 1);
}

/* The hook has run at least n times. With SQLite it runs at the commit
 * itself; with PostgreSQL it comes from the NOTIFY of the commit, on the
 * listening thread, shortly after: wait for it (bounded). */
static void ev_wait_hooked(atomic_int *hooked, int n)
{
    for (int i = 0; pg_url != NULL && atomic_load(hooked) < n && i < 1000; i++)
        tu_sleep_ms(10);
    ck_assert_int_ge(atomic_load(hooked), n);
}

/* Every change a shop cares about writes its event in the same transaction;
 * a change that does not happen writes none; events survive a reopen (crash
 * recovery's own change included); ids only grow; per-invoice order. */
START_TEST(events_with_their_changes)
{
    store *st = open_fresh();
    atomic_int hooked = 0;
    store_set_event_hook(st, ev_hook, NULL, &hooked);
    int64_t id = new_invoice(st, 1000, "1000000000100");
    ev_wait_hooked(&hooked, 1);
    ck_assert_int_eq(atomic_load(&hooked), 1);
    bool changed = false;
    ck_assert_int_eq(
        store_invoice_set_status(st, "1000000000100", SEQR_STATUS_ISSUED, 0, NULL, NULL, &changed),
        STORE_OK);
    ck_assert(!changed);
    ck_assert_int_eq(atomic_load(&hooked), 1); /* nothing changed: no event */
    ck_assert_int_eq(
        store_invoice_set_status(st, "1000000000100", SEQR_STATUS_PAID, 1, "ers-1", NULL, &changed),
        STORE_OK);
    ev_wait_hooked(&hooked, 2);
    ck_assert_int_eq(atomic_load(&hooked), 2);
    int64_t rid = 0;
    ck_assert_int_eq(store_refund_begin(st, id, 400, "back", &rid), STORE_OK);
    ck_assert_int_eq(store_refund_finish(st, rid, STORE_REFUND_DONE, "ers-r", ""), STORE_OK);
    ck_assert_int_eq(store_refund_begin(st, id, 100, "again", &rid), STORE_OK);
    ck_assert_int_eq(store_refund_finish(st, rid, STORE_REFUND_UNKNOWN, "", "timeout"), STORE_OK);
    char was[16];
    ck_assert_int_eq(store_refund_resolve(st, id, rid, STORE_REFUND_FAILED, "", was), STORE_OK);
    ck_assert_int_eq(store_invoice_set_receipt_submitted(st, "1000000000100"), STORE_OK);
    /* A refund refused by the store's rules changes nothing and tells nothing. */
    ck_assert_int_eq(store_refund_begin(st, id, 100000, "too much", &rid), STORE_CONFLICT);
    /* A send intent left by a crash becomes unknown on reopen, with its event. */
    int64_t lost = new_invoice(st, 500, NULL);
    st = reopen(st);

    ev_seen seen;
    memset(&seen, 0, sizeof seen);
    ck_assert_int_eq(store_events_after(st, 0, 0, 100, ev_collect, &seen), STORE_OK);
    static const char *const want[] = {"invoice.created",        "invoice.paid",
                                       "refund.succeeded",       "refund.in_doubt",
                                       "refund.settled",         "invoice.receipt_submitted",
                                       "invoice.unknown_outcome"};
    ck_assert_int_eq(seen.n, 7);
    for (int i = 0; i < 7; i++) {
        ck_assert_str_eq(seen.types[i], want[i]);
        if (i > 0)
            ck_assert_int_gt(seen.ids[i], seen.ids[i - 1]);
    }
    ck_assert_ptr_nonnull(strstr(seen.data[1], "\"status\":\"PAID\""));
    ck_assert_ptr_nonnull(strstr(seen.data[1], "\"ersReference\":\"ers-1\""));
    ck_assert_ptr_nonnull(strstr(seen.data[2], "\"amount\":400"));
    ck_assert_ptr_nonnull(strstr(seen.data[5], "\"refundedAmount\":400"));
    char needle[64];
    snprintf(needle, sizeof needle, "\"id\":%lld", (long long)lost);
    ck_assert_ptr_nonnull(strstr(seen.data[6], needle));
    int64_t last = 0;
    ck_assert_int_eq(store_events_last_id(st, &last), STORE_OK);
    ck_assert_int_eq(last, seen.ids[6]);
    memset(&seen, 0, sizeof seen);
    ck_assert_int_eq(store_events_after(st, 0, id, 100, ev_collect, &seen), STORE_OK);
    ck_assert_int_eq(seen.n, 6); /* the feed of one invoice */

    /* Per-invoice order: only the oldest pending event of an invoice is due. */
    memset(&seen, 0, sizeof seen);
    ck_assert_int_eq(store_events_due(st, store_now_ms(), 100, ev_collect, &seen), STORE_OK);
    ck_assert_int_eq(seen.n, 2);
    ck_assert_str_eq(seen.types[0], "invoice.created");
    ck_assert_str_eq(seen.types[1], "invoice.unknown_outcome");
    ck_assert_int_eq(store_event_attempt(st, seen.ids[0], "http://x/", 500, 3, "HTTP 500",
                                         "pending", store_now_ms() + 60000),
                     STORE_OK);
    memset(&seen, 0, sizeof seen);
    ck_assert_int_eq(store_events_due(st, store_now_ms(), 100, ev_collect, &seen), STORE_OK);
    ck_assert_int_eq(seen.n, 1); /* the first waits for its retry, the rest behind it */
    int64_t count = 0, oldest = 0;
    ck_assert_int_eq(store_events_backlog(st, &count, &oldest), STORE_OK);
    ck_assert_int_eq(count, 7);
    ck_assert_int_gt(oldest, 0);
    char *json = NULL;
    ck_assert_int_eq(store_delivery_list(st, 10, &json), STORE_OK);
    ck_assert_ptr_nonnull(strstr(json, "\"httpStatus\":500"));
    free(json);
    ck_assert_int_eq(store_event_redeliver(st, 999999), STORE_NOT_FOUND);

    /* An unknown outcome settled as "SEQR has none" tells invoice.rejected;
     * one settled with a reference, invoice.created. */
    ck_assert_int_eq(store_invoice_resolve(st, lost, NULL, was), STORE_OK);
    int64_t lost2 = new_invoice(st, 500, NULL);
    ck_assert_int_eq(store_invoice_send_failed(st, lost2, STORE_SEND_UNKNOWN, "timeout"),
                     STORE_OK);
    ck_assert_int_eq(store_invoice_resolve(st, lost2, "1000000000199", was), STORE_OK);
    memset(&seen, 0, sizeof seen);
    ck_assert_int_eq(store_events_after(st, last, 0, 100, ev_collect, &seen), STORE_OK);
    ck_assert_int_eq(seen.n, 3);
    ck_assert_str_eq(seen.types[0], "invoice.rejected");
    ck_assert_str_eq(seen.types[1], "invoice.unknown_outcome");
    ck_assert_str_eq(seen.types[2], "invoice.created");
    store_close(st);
}
END_TEST

/* What the hook was last told (SQLite: at the commit itself). */
static void ev_hook_deliver(void *ud, const int64_t *invoice_ids, size_t n, bool deliver)
{
    (void)invoice_ids;
    (void)n;
    atomic_store((atomic_int *)ud, deliver ? 1 : 0);
}

/* What the event hook was told last, and how often. */
typedef struct {
    int calls;
    bool all; /* no invoices named: every waiter looks */
    size_t n;
    int64_t ids[4];
    bool deliver;
} ev_told;

static void ev_hook_told(void *ud, const int64_t *invoice_ids, size_t n, bool deliver)
{
    ev_told *t = ud;
    t->calls++;
    t->all = invoice_ids == NULL;
    t->n = n;
    for (size_t i = 0; i < n && i < 4; i++)
        t->ids[i] = invoice_ids[i];
    t->deliver = deliver;
}

/* A commit names each invoice its events belong to once, and says whether
 * any waits for a delivery; past 64 invoices it names none (all look). */
START_TEST(events_hook_names_each_invoice_once)
{
    store *st = open_fresh();
    bool changed = false;
    ck_assert_int_eq(store_set_delivery(st, false, false, &changed), STORE_OK); /* skipped */
    int64_t a = new_invoice(st, 1000, "1000000000300");
    int64_t b = new_invoice(st, 1000, "1000000000301");
    ev_told told = {0};
    store_set_event_hook(st, ev_hook_told, NULL, &told);
    store_batch_begin(st);
    ck_assert_int_eq(store_invoice_set_status(st, "1000000000300",
                                              SEQR_STATUS_PENDING_ISSUER_ACKNOWLEDGE, 1, NULL,
                                              NULL, &changed),
                     STORE_OK);
    ck_assert_int_eq(store_invoice_set_status(st, "1000000000301", SEQR_STATUS_CANCELED, 1, NULL,
                                              NULL, &changed),
                     STORE_OK);
    set_status_ok(st, "1000000000300", SEQR_STATUS_PAID, 2);
    ck_assert_int_eq(store_batch_commit(st), STORE_OK);
    ck_assert_int_eq(told.calls, 1);
    ck_assert(!told.all);
    ck_assert_uint_eq(told.n, 2);
    ck_assert_int_eq(told.ids[0], a);
    ck_assert_int_eq(told.ids[1], b);
    ck_assert(!told.deliver);

    ck_assert_int_eq(store_set_delivery(st, true, true, &changed), STORE_OK); /* pending */
    char ref[32];
    for (int i = 0; i < 65; i++) {
        snprintf(ref, sizeof ref, "10000000004%02d", i);
        new_invoice(st, 1000, ref);
    }
    told.calls = 0;
    store_batch_begin(st);
    for (int i = 0; i < 65; i++) {
        snprintf(ref, sizeof ref, "10000000004%02d", i);
        ck_assert_int_eq(store_invoice_set_status(st, ref, SEQR_STATUS_CANCELED, 1, NULL, NULL,
                                                  &changed),
                         STORE_OK);
    }
    ck_assert_int_eq(store_batch_commit(st), STORE_OK);
    ck_assert_int_eq(told.calls, 1);
    ck_assert(told.all);
    ck_assert(told.deliver);
    store_close(st);
}
END_TEST

/* What ev_ids_wanted answers. */
static bool ev_wanted;

static bool ev_ids_wanted(void *ud)
{
    (void)ud;
    return ev_wanted;
}

/* The read that names a commit's invoices is left out when nobody waits for
 * one invoice and no event can wait for a delivery: the hook is then told
 * "any invoice, nothing to deliver". Someone waiting for one invoice, or a
 * signing key (events may be pending), brings the read back. */
START_TEST(events_hook_reads_only_when_asked)
{
    store *st = open_fresh();
    ev_told told = {0};
    store_set_event_hook(st, ev_hook_told, ev_ids_wanted, &told);
    bool changed = false;
    ck_assert_int_eq(store_set_delivery(st, false, false, &changed), STORE_OK); /* skipped */
    ev_wanted = false;
    new_invoice(st, 1000, "1000000000600");
    ck_assert_int_eq(told.calls, 1);
    ck_assert(told.all);
    ck_assert_uint_eq(told.n, 0);
    ck_assert(!told.deliver);

    ev_wanted = true;
    int64_t b = new_invoice(st, 1000, "1000000000601");
    ck_assert_int_eq(told.calls, 2);
    ck_assert(!told.all);
    ck_assert_uint_eq(told.n, 1);
    ck_assert_int_eq(told.ids[0], b);
    ck_assert(!told.deliver);

    ev_wanted = false;
    ck_assert_int_eq(store_set_delivery(st, true, true, &changed), STORE_OK); /* pending */
    int64_t c = new_invoice(st, 1000, "1000000000602");
    ck_assert_int_eq(told.calls, 3);
    ck_assert(!told.all);
    ck_assert_uint_eq(told.n, 1);
    ck_assert_int_eq(told.ids[0], c);
    ck_assert(told.deliver);
    store_close(st);
}
END_TEST

/* A sent invoice whose document is doc. */
static int64_t new_invoice_doc(store *st, const char *doc, const char *ref)
{
    store_invoice inv;
    memset(&inv, 0, sizeof inv);
    snprintf(inv.currency, sizeof inv.currency, "SEK");
    inv.total = 1000;
    inv.doc_json = (char *)doc; /* only read */
    inv.expires_at = store_now_ms() + 60000;
    ck_assert_int_eq(store_invoice_begin(st, &inv), STORE_OK);
    ck_assert_int_eq(store_invoice_sent(st, &inv, ref, "HTTP://SEQR.SE/Rx"), STORE_OK);
    return inv.id;
}

/* The state each event of the feed has, in order, joined by spaces. */
static void ev_states(store *st, char *out, size_t len)
{
    ev_seen seen;
    memset(&seen, 0, sizeof seen);
    ck_assert_int_eq(store_events_after(st, 0, 0, 16, ev_collect, &seen), STORE_OK);
    out[0] = '\0';
    for (int i = 0; i < seen.n && i < 16; i++) {
        size_t used = strlen(out);
        snprintf(out + used, len - used, "%s%s:%s", i ? " " : "", seen.types[i], seen.states[i]);
    }
}

/* Events with nowhere to go are written skipped (store_set_delivery): none
 * without a signing key; without a default URL only those of invoices with
 * a webhookUrl, or a notificationUrl for invoice.paid; until told, all are
 * pending. Only pending ones are due, and (SQLite) only they tell the hook
 * that there is something to deliver. */
START_TEST(events_nowhere_to_go_written_skipped)
{
    store *st = open_fresh();
    atomic_int deliver = -1;
    store_set_event_hook(st, ev_hook_deliver, NULL, &deliver);
    new_invoice_doc(st, "{}", "1000000000500");
    bool changed = false;
    ck_assert_int_eq(store_set_delivery(st, false, true, &changed), STORE_OK);
    ck_assert(changed);
    ck_assert_int_eq(store_set_delivery(st, false, true, &changed), STORE_OK);
    ck_assert(!changed);
    int64_t others = -1; /* no other gateway to disagree with (webhook.c) */
    ck_assert_int_eq(store_other_gateways(st, &others), STORE_OK);
    ck_assert_int_eq(others, 0);
    new_invoice_doc(st, "{\"webhookUrl\":\"http://shop/h\"}", "1000000000501");
    if (pg_url == NULL)
        ck_assert_int_eq(atomic_load(&deliver), 0);
    ck_assert_int_eq(store_set_delivery(st, true, false, &changed), STORE_OK);
    ck_assert(changed);
    new_invoice_doc(st, "{}", "1000000000502");
    if (pg_url == NULL)
        ck_assert_int_eq(atomic_load(&deliver), 0);
    new_invoice_doc(st, "{\"webhookUrl\":\"http://shop/h\"}", "1000000000503");
    if (pg_url == NULL)
        ck_assert_int_eq(atomic_load(&deliver), 1);
    new_invoice_doc(st, "{\"notificationUrl\":\"http://shop/n\"}", "1000000000504");
    ck_assert_int_eq(store_invoice_set_status(st, "1000000000504", SEQR_STATUS_PAID, 1, "ers-4",
                                              NULL, &changed),
                     STORE_OK);
    /* A refund's event follows its invoice's URL. */
    int64_t rid = 0;
    ck_assert_int_eq(store_invoice_set_status(st, "1000000000502", SEQR_STATUS_PAID, 1, "ers-2",
                                              NULL, &changed),
                     STORE_OK);
    store_invoice inv;
    ck_assert_int_eq(store_invoice_get(st, "1000000000502", &inv), STORE_OK);
    ck_assert_int_eq(store_refund_begin(st, inv.id, 100, "back", &rid), STORE_OK);
    ck_assert_int_eq(store_refund_finish(st, rid, STORE_REFUND_DONE, "ers-r2", ""), STORE_OK);
    store_invoice_clear(&inv);
    ck_assert_int_eq(store_set_delivery(st, true, true, &changed), STORE_OK);
    ck_assert(changed);
    new_invoice_doc(st, "{}", "1000000000505");
    if (pg_url == NULL)
        ck_assert_int_eq(atomic_load(&deliver), 1);

    char states[1024];
    ev_states(st, states, sizeof states);
    ck_assert_str_eq(states, "invoice.created:pending invoice.created:skipped "
                             "invoice.created:skipped invoice.created:pending "
                             "invoice.created:skipped invoice.paid:pending "
                             "invoice.paid:skipped refund.succeeded:skipped "
                             "invoice.created:pending");
    ev_seen seen;
    memset(&seen, 0, sizeof seen);
    ck_assert_int_eq(store_events_due(st, store_now_ms(), 100, ev_collect, &seen), STORE_OK);
    ck_assert_int_eq(seen.n, 4);
    int64_t count = 0, oldest = 0;
    ck_assert_int_eq(store_events_backlog(st, &count, &oldest), STORE_OK);
    ck_assert_int_eq(count, 4);
    /* A skipped event sent again waits for a delivery like any other. */
    memset(&seen, 0, sizeof seen);
    ck_assert_int_eq(store_events_after(st, 0, 0, 2, ev_collect, &seen), STORE_OK);
    ck_assert_int_eq(store_event_redeliver(st, seen.ids[1]), STORE_OK);
    ck_assert_int_eq(store_events_backlog(st, &count, &oldest), STORE_OK);
    ck_assert_int_eq(count, 5);
    store_close(st);
}
END_TEST

/* The same changes on a SQLite store and on this store. */
static void ev_same_story(store *st)
{
    int64_t id = new_invoice(st, 1000, "1000000000300");
    store_invoice inv;
    memset(&inv, 0, sizeof inv);
    snprintf(inv.currency, sizeof inv.currency, "SEK");
    snprintf(inv.terminal_id, sizeof inv.terminal_id, "t-1");
    snprintf(inv.payment_mode, sizeof inv.payment_mode, "RESERVATION_DESIRED");
    snprintf(inv.client_reference, sizeof inv.client_reference, "cref");
    inv.total = 2500;
    inv.doc_json = "{\"title\":\"t\",\"clientInvoiceId\":\"shop-7\"}";
    inv.expires_at = 1;
    ck_assert_int_eq(store_invoice_begin(st, &inv), STORE_OK);
    ck_assert_int_eq(store_invoice_sent(st, &inv, "1000000000301", "HTTP://SEQR.SE/R"), STORE_OK);
    bool changed = false;
    ck_assert_int_eq(
        store_invoice_set_status(st, "1000000000300", SEQR_STATUS_PAID, 1, "ers-1", NULL, &changed),
        STORE_OK);
    int64_t rid = 0;
    ck_assert_int_eq(store_refund_begin(st, id, 400, "back", &rid), STORE_OK);
    ck_assert_int_eq(store_refund_finish(st, rid, STORE_REFUND_DONE, "ers-r", ""), STORE_OK);
    ck_assert_int_eq(store_refund_begin(st, id, 100, "", &rid), STORE_OK);
    ck_assert_int_eq(store_refund_finish(st, rid, STORE_REFUND_FAILED, "", "no"), STORE_OK);
    ck_assert_int_eq(store_invoice_set_receipt_submitted(st, "1000000000300"), STORE_OK);
    ck_assert_int_eq(store_invoice_set_doc(st, "1000000000301", "{\"title\":\"u\"}", 2000),
                     STORE_OK);
    ck_assert_int_eq(store_invoice_set_status(st, "1000000000301", SEQR_STATUS_RESERVED, 1, NULL,
                                              NULL, &changed),
                     STORE_OK);
    set_status_ok(st, "1000000000301", SEQR_STATUS_CANCELED, 2);
    int64_t lost = new_invoice(st, 700, NULL);
    ck_assert_int_eq(store_invoice_send_failed(st, lost, STORE_SEND_UNKNOWN, "timeout"), STORE_OK);
    char was[16];
    ck_assert_int_eq(store_invoice_resolve(st, lost, NULL, was), STORE_OK);
}

/* The event's data without the times (each store took its own). */
static json_t *ev_data_timeless(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);
    ck_assert_msg(j != NULL, "event data is not JSON: %s", text);
    static const char *const times[] = {"createdAt", "updatedAt", "paidAt", "expiresAt"};
    for (size_t i = 0; i < sizeof times / sizeof *times; i++)
        if (json_integer_value(json_object_get(j, times[i])) > 0)
            json_object_set_new(j, times[i], json_integer(1));
    return j;
}

/* PostgreSQL's triggers tell of the same changes with the same types and
 * the same data as SQLite's. */
START_TEST(pg_events_as_sqlite)
{
    store *pg = open_fresh();
    char *d = tu_tempdir();
    ck_assert_ptr_nonnull(d);
    char path[700];
    snprintf(path, sizeof path, "%s/same.db", d);
    free(d);
    store *lite = NULL;
    buf err = BUF_INIT;
    ck_assert_int_eq(store_open(path, &lite, &err), STORE_OK);
    buf_free(&err);
    ev_same_story(lite);
    ev_same_story(pg);
    ev_seen a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    ck_assert_int_eq(store_events_after(lite, 0, 0, 100, ev_collect, &a), STORE_OK);
    ck_assert_int_eq(store_events_after(pg, 0, 0, 100, ev_collect, &b), STORE_OK);
    ck_assert_int_eq(a.n, 11);
    ck_assert_int_eq(b.n, a.n);
    for (int i = 0; i < a.n; i++) {
        ck_assert_str_eq(b.types[i], a.types[i]);
        json_t *ja = ev_data_timeless(a.data[i]), *jb = ev_data_timeless(b.data[i]);
        char *ta = json_dumps(ja, JSON_COMPACT | JSON_PRESERVE_ORDER);
        char *tb = json_dumps(jb, JSON_COMPACT | JSON_PRESERVE_ORDER);
        ck_assert_str_eq(tb, ta);
        free(ta);
        free(tb);
        json_decref(ja);
        json_decref(jb);
    }
    store_close(lite);
    store_close(pg);
}
END_TEST

/* Reads the events after *cursor into seen (appending) and moves the cursor
 * past them. */
static void ev_read_on(store *st, int64_t *cursor, ev_seen *seen)
{
    ev_seen got;
    memset(&got, 0, sizeof got);
    ck_assert_int_eq(store_events_after(st, *cursor, 0, 16, ev_collect, &got), STORE_OK);
    for (int i = 0; i < got.n && seen->n < 16; i++) {
        snprintf(seen->types[seen->n], sizeof seen->types[0], "%s", got.types[i]);
        seen->ids[seen->n] = got.ids[i];
        seen->n++;
        *cursor = got.ids[i];
    }
}

/* Waits (bounded) until a reader at *cursor has read n events in all. */
static void ev_wait_read(store *st, int64_t *cursor, ev_seen *seen, int n)
{
    for (int i = 0; i < 1000 && seen->n < n; i++) {
        ev_read_on(st, cursor, seen);
        if (seen->n < n)
            tu_sleep_ms(10);
    }
    ck_assert_int_eq(seen->n, n);
}

/* PostgreSQL: an event's id is given after its transaction commits, so a
 * feed cursor never passes an event still to come. Transaction x writes an
 * event first and commits last: a reader that has seen y's event and moved
 * its cursor past it still gets x's. (Ids taken at insert would give x's
 * event the lower id, behind the cursor: lost to that reader.) x is a
 * writer that never numbers what it wrote, as a gateway that died right
 * after its commit: the store's periodic run numbers it. */
START_TEST(pg_event_ids_in_commit_order)
{
    store *st = open_fresh();
    new_invoice(st, 1000, "1000000000201");
    new_invoice(st, 1000, "1000000000202");
    int64_t cursor = 0;
    ck_assert_int_eq(store_events_last_id(st, &cursor), STORE_OK);
    PGconn *x = PQconnectdb(pg_url);
    ck_assert_int_eq(PQstatus(x), CONNECTION_OK);
    PGresult *r = PQexec(x, "BEGIN; UPDATE invoices SET status = 'PAID', version = 1"
                            " WHERE reference = '1000000000201'");
    ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "%s", PQerrorMessage(x));
    PQclear(r);
    set_status_ok(st, "1000000000202", SEQR_STATUS_CANCELED, 1);
    ev_seen seen;
    memset(&seen, 0, sizeof seen);
    ck_assert_int_eq(store_events_after(st, cursor, 0, 100, ev_collect, &seen), STORE_OK);
    ck_assert_int_eq(seen.n, 1);
    ck_assert_str_eq(seen.types[0], "invoice.canceled");
    cursor = seen.ids[0];
    r = PQexec(x, "COMMIT");
    ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "%s", PQerrorMessage(x));
    PQclear(r);
    PQfinish(x);
    int64_t was = cursor;
    memset(&seen, 0, sizeof seen);
    ev_wait_read(st, &cursor, &seen, 1);
    ck_assert_str_eq(seen.types[0], "invoice.paid");
    ck_assert_int_gt(seen.ids[0], was);
    store_close(st);
}
END_TEST

typedef struct {
    store *st;
    const char *reference;
} ev_writer;

static void *ev_write_canceled(void *arg)
{
    ev_writer *w = arg;
    bool changed = false;
    ck_assert_int_eq(store_invoice_set_status(w->st, w->reference, SEQR_STATUS_CANCELED, 1, NULL,
                                              NULL, &changed),
                     STORE_OK);
    return NULL;
}

/* PostgreSQL: events are numbered after commit, in batches; a numbering
 * transaction still open holds back every later one. Here one (on a
 * connection of the test, as another gateway's) has numbered invoice 301's
 * event and not committed yet when this store commits invoice 302's event
 * and numbers it. A reader polling in between moves its cursor on whatever
 * it sees: it must still get both, 301's first. (Numbering without the
 * lock would show 302's event with the higher id at once; the reader's
 * cursor would then pass 301's, which appears later with the lower one.) */
START_TEST(pg_event_numbering_runs_in_order)
{
    store *st = open_fresh();
    new_invoice(st, 1000, "1000000000301");
    new_invoice(st, 1000, "1000000000302");
    int64_t cursor = 0;
    ck_assert_int_eq(store_events_last_id(st, &cursor), STORE_OK);
    PGconn *x = PQconnectdb(pg_url);
    ck_assert_int_eq(PQstatus(x), CONNECTION_OK);
    PGresult *r = PQexec(x, "BEGIN; UPDATE invoices SET status = 'PAID', version = 1"
                            " WHERE reference = '1000000000301';"
                            " SELECT events_number_batch(100)");
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s", PQerrorMessage(x));
    ck_assert_str_eq(PQgetvalue(r, 0, 0), "1");
    PQclear(r);
    ev_writer w = {.st = st, .reference = "1000000000302"};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, ev_write_canceled, &w), 0);
    /* The reader polls while the writer commits and asks for its run
     * (which waits for x's): for half a second, or until it sees one. */
    ev_seen seen;
    memset(&seen, 0, sizeof seen);
    for (int i = 0; i < 50 && seen.n == 0; i++) {
        ev_read_on(st, &cursor, &seen);
        tu_sleep_ms(10);
    }
    r = PQexec(x, "COMMIT");
    ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "%s", PQerrorMessage(x));
    PQclear(r);
    PQfinish(x);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ev_wait_read(st, &cursor, &seen, 2);
    ck_assert_str_eq(seen.types[0], "invoice.paid");
    ck_assert_str_eq(seen.types[1], "invoice.canceled");
    ck_assert_int_gt(seen.ids[1], seen.ids[0]);
    store_close(st);
}
END_TEST

/* PostgreSQL: a database of schema 3 (events numbered by a trigger at
 * commit) moves to schema 4 with its events: numbered ones keep their ids,
 * one written but not numbered (as a transaction in flight at the upgrade)
 * is numbered after them, and new ones follow (migration 5, run again
 * after it, keeps them). */
/* Back to PostgreSQL schema 7 (before migration 8): the ISSUED entries of
 * the history as rows, no payment page secrets. */
#define PG_UNDO_SCHEMA_8                                                                           \
    " INSERT INTO status_history(invoice_id, status, version, at)"                                 \
    " SELECT id, 'ISSUED', 0, issued_at FROM invoices WHERE issued_at > 0;"                        \
    " ALTER TABLE invoices DROP COLUMN issued_at; ALTER TABLE invoices DROP COLUMN pay_secret;"    \
    " ALTER TABLE invoices DROP COLUMN client_invoice_id;"

/* Takes a PostgreSQL database back to before its migration 7 (events
 * written skipped by a trigger of events). */
#define PG_UNDO_SCHEMA_7                                                                           \
    PG_UNDO_SCHEMA_8                                                                               \
    " DROP TRIGGER events_delivery ON events; DROP FUNCTION events_delivery();"                    \
    " DROP TABLE webhook_config;"

START_TEST(pg_events_from_schema_3)
{
    store *st = open_fresh();
    new_invoice(st, 1000, "1000000000401");
    new_invoice(st, 1000, "1000000000402");
    int64_t last = 0;
    ck_assert_int_eq(store_events_last_id(st, &last), STORE_OK);
    store_close(st);
    /* Back to schema 3: its trigger, and an event row without its id. */
    PGconn *x = PQconnectdb(pg_url);
    ck_assert_int_eq(PQstatus(x), CONNECTION_OK);
    PGresult *r = PQexec(
        x, "BEGIN; DROP FUNCTION events_number_batch(integer); DROP INDEX events_unnumbered;"
           " CREATE FUNCTION events_number() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
           " PERFORM pg_advisory_xact_lock(126875896063350);"
           " UPDATE events SET id = nextval('events_feed_id') WHERE seq = NEW.seq;"
           " RETURN NULL; END $$;"
           " CREATE CONSTRAINT TRIGGER events_number AFTER INSERT ON events"
           " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION events_number();"
           PG_UNDO_SCHEMA_7 " DELETE FROM schema_version WHERE version >= 4;"
           " ALTER TABLE events DISABLE TRIGGER events_number;"
           " UPDATE invoices SET status = 'PAID', version = 1 WHERE reference = '1000000000401';"
           " ALTER TABLE events ENABLE TRIGGER events_number; COMMIT");
    ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "%s", PQerrorMessage(x));
    PQclear(r);
    r = PQexec(x, "SELECT count(*) FROM events WHERE id IS NULL");
    ck_assert_str_eq(PQgetvalue(r, 0, 0), "1");
    PQclear(r);
    PQfinish(x);
    st = NULL;
    buf err = BUF_INIT;
    ck_assert_msg(store_open(db_path, &st, &err) == STORE_OK, "%s", buf_cstr(&err));
    buf_free(&err);
    set_status_ok(st, "1000000000402", SEQR_STATUS_CANCELED, 1);
    ev_seen seen;
    memset(&seen, 0, sizeof seen);
    ck_assert_int_eq(store_events_after(st, 0, 0, 16, ev_collect, &seen), STORE_OK);
    ck_assert_int_eq(seen.n, 4);
    ck_assert_str_eq(seen.types[0], "invoice.created");
    ck_assert_str_eq(seen.types[1], "invoice.created");
    ck_assert_int_eq(seen.ids[1], last);
    ck_assert_str_eq(seen.types[2], "invoice.paid");
    ck_assert_str_eq(seen.types[3], "invoice.canceled");
    ck_assert_int_gt(seen.ids[2], last);
    ck_assert_int_gt(seen.ids[3], seen.ids[2]);
    store_close(st);
}
END_TEST

/* The text of the one value sql reads (malloc'd). */
static char *pg_value(const char *sql)
{
    PGconn *c = PQconnectdb(pg_url);
    ck_assert_int_eq(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, sql);
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1, "%s: %s", sql,
                  PQerrorMessage(c));
    char *v = strdup(PQgetvalue(r, 0, 0));
    ck_assert_ptr_nonnull(v);
    PQclear(r);
    PQfinish(c);
    return v;
}

/* Asserts that the one value sql reads is want. */
static void pg_value_is(const char *sql, const char *want)
{
    char *v = pg_value(sql);
    ck_assert_msg(strcmp(v, want) == 0, "%s: %s, not %s", sql, v, want);
    free(v);
}

/* PostgreSQL: a database of schema 5 (six indexes on events, each row in
 * all of them; events_add_invoice() called by the invoice trigger;
 * foreign keys from events and status_history to invoices) moves to schema 6 in place: its
 * indexes on events become the lean ones, the trigger writes the events
 * itself, and its events, skipped, pending and one written but not
 * numbered yet (a transaction in flight at the upgrade), read, fall due
 * and count as before. */
START_TEST(pg_events_from_schema_5)
{
    store *st = open_fresh();
    int64_t a = new_invoice(st, 1000, "1000000000601");
    new_invoice(st, 1000, "1000000000602");
    ev_seen seen;
    memset(&seen, 0, sizeof seen);
    ck_assert_int_eq(store_events_due(st, store_now_ms(), 100, ev_collect, &seen), STORE_OK);
    ck_assert_int_eq(seen.n, 2);
    ck_assert_int_eq(store_event_skip(st, seen.ids[0]), STORE_OK); /* 601's invoice.created */
    store_close(st);
    /* Schema 5's shape (its event INSERT shortened: only the types are
     * read below). */
    pg_sql("BEGIN; DROP INDEX events_due; DROP INDEX events_invoice;"
           " CREATE INDEX events_invoice ON events(invoice_id, id);"
           " CREATE INDEX events_pending ON events(invoice_id, id) WHERE state = 'pending';"
           " CREATE INDEX events_due ON events(next_at, id) WHERE state = 'pending';"
           " ALTER TABLE events ADD FOREIGN KEY (invoice_id) REFERENCES invoices(id);"
           " ALTER TABLE status_history ADD FOREIGN KEY (invoice_id) REFERENCES invoices(id);"
           " CREATE FUNCTION events_add_invoice(kind TEXT, i invoices) RETURNS void"
           " LANGUAGE plpgsql AS $$ BEGIN INSERT INTO events(type, invoice_id, at, data)"
           " VALUES(kind, i.id, 1, '{}'); END $$;"
           " CREATE OR REPLACE FUNCTION events_invoice() RETURNS trigger LANGUAGE plpgsql AS $$"
           " BEGIN IF NEW.status <> OLD.status THEN"
           " PERFORM events_add_invoice('invoice.paid', NEW); END IF; RETURN NULL; END $$;"
           PG_UNDO_SCHEMA_7 " DELETE FROM schema_version WHERE version >= 6;"
           " UPDATE invoices SET status = 'PAID', version = 1 WHERE reference = '1000000000601';"
           " COMMIT");
    pg_value_is("SELECT count(*) FROM events WHERE id IS NULL", "1");
    st = NULL;
    buf err = BUF_INIT;
    ck_assert_msg(store_open(db_path, &st, &err) == STORE_OK, "%s", buf_cstr(&err));
    buf_free(&err);
    pg_value_is("SELECT max(version) FROM schema_version", "8");
    pg_value_is("SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes"
                " WHERE tablename = 'events'",
                "events_due,events_id_key,events_invoice,events_pkey,events_unnumbered");
    char *v = pg_value("SELECT indexdef FROM pg_indexes WHERE indexname = 'events_due'");
    ck_assert_ptr_nonnull(strstr(v, "id IS NOT NULL"));
    free(v);
    pg_value_is("SELECT count(*) FROM pg_constraint WHERE conrelid IN ('events'::regclass,"
                " 'status_history'::regclass) AND contype = 'f'",
                "0");
    pg_value_is("SELECT count(*) FROM pg_proc WHERE proname = 'events_add_invoice'", "0");
    /* The event in flight at the upgrade was numbered when the store opened. */
    memset(&seen, 0, sizeof seen);
    ck_assert_int_eq(store_events_after(st, 0, 0, 16, ev_collect, &seen), STORE_OK);
    ck_assert_int_eq(seen.n, 3);
    ck_assert_str_eq(seen.types[2], "invoice.paid");
    ck_assert_int_gt(seen.ids[2], seen.ids[1]);
    memset(&seen, 0, sizeof seen);
    ck_assert_int_eq(store_events_after(st, 0, a, 16, ev_collect, &seen), STORE_OK);
    ck_assert_int_eq(seen.n, 2);
    ck_assert_str_eq(seen.types[0], "invoice.created");
    ck_assert_str_eq(seen.types[1], "invoice.paid");
    int64_t count = 0, oldest = 0;
    ck_assert_int_eq(store_events_backlog(st, &count, &oldest), STORE_OK);
    ck_assert_int_eq(count, 2);
    memset(&seen, 0, sizeof seen);
    ck_assert_int_eq(store_events_due(st, store_now_ms(), 100, ev_collect, &seen), STORE_OK);
    ck_assert_int_eq(seen.n, 2); /* 602's invoice.created, 601's invoice.paid */
    ck_assert_str_eq(seen.types[0], "invoice.created");
    ck_assert_str_eq(seen.types[1], "invoice.paid");
    /* A change after the upgrade: its event by schema 6's trigger, whole. */
    set_status_ok(st, "1000000000602", SEQR_STATUS_CANCELED, 1);
    memset(&seen, 0, sizeof seen);
    ck_assert_int_eq(store_events_after(st, 0, 0, 16, ev_collect, &seen), STORE_OK);
    ck_assert_int_eq(seen.n, 4);
    ck_assert_str_eq(seen.types[3], "invoice.canceled");
    ck_assert_ptr_nonnull(strstr(seen.data[3], "\"invoiceReference\":\"1000000000602\""));
    ck_assert_ptr_nonnull(strstr(seen.data[3], "\"status\":\"CANCELED\""));
    store_close(st);
}
END_TEST

/* PostgreSQL: a prepared statement the server no longer has (DEALLOCATE
 * ALL, as a pooler between gateway and server may do) costs the caller
 * nothing: the read is prepared again and answers. */
START_TEST(pg_statement_forgotten_prepared_again)
{
    store *st = open_fresh();
    new_invoice(st, 1000, "1000000000501");
    store_pg_acquire(st); /* the calls below on one connection */
    store_invoice inv;
    ck_assert_int_eq(store_invoice_get(st, "1000000000501", &inv), STORE_OK);
    store_invoice_clear(&inv);
    ck_assert_int_eq(store_pg_run(st, "DEALLOCATE ALL", 0, NULL), STORE_OK);
    ck_assert_int_eq(store_invoice_get(st, "1000000000501", &inv), STORE_OK);
    ck_assert_str_eq(inv.reference, "1000000000501");
    store_invoice_clear(&inv);
    store_pg_release(st);
    store_close(st);
}
END_TEST

/* The pool's slot 0 holds the liveness lock and the lease thread renews the
 * heartbeat on it. Request threads took it first of all slots, so under
 * load it was nearly always busy and the lease thread lost each release of
 * it to a running request thread: the heartbeat came 3 s late and the other
 * gateway counted this one dead (bench/pg: 46 POSTs failed in one run of
 * three). Now a request thread takes slot 0 last, and never while a thread
 * waits for it. The rule on its own, on the store's real pool. */
START_TEST(pg_pool_slot0_to_its_waiter_first)
{
    store *st = open_fresh();
    struct store_pg *pg = st->pg;
    pthread_mutex_lock(&pg->lock);
    bool busy[STORE_PG_CONNS];
    memcpy(busy, pg->busy, sizeof busy);
    int waiting = pg->live_waiting;
    for (int i = 0; i < STORE_PG_CONNS; i++)
        ck_assert_ptr_nonnull(pg->conns[i]);
    memset(pg->busy, 0, sizeof pg->busy);
    pg->live_waiting = 0;
    /* A request thread takes another slot while one is free... */
    int first = store_pg_pick_slot(pg, -1);
    ck_assert_int_ne(first, 0);
    ck_assert_int_ne(first, STORE_PG_NUMBER_SLOT);
    for (int i = 1; i < STORE_PG_POOL; i++)
        pg->busy[i] = true;
    /* ...slot 0 only when every other slot of the pool is busy... */
    ck_assert_int_eq(store_pg_pick_slot(pg, -1), 0);
    /* ...and not while the lease thread waits for it. */
    pg->live_waiting = 1;
    ck_assert_int_eq(store_pg_pick_slot(pg, -1), -1);
    ck_assert_int_eq(store_pg_pick_slot(pg, 0), 0);
    /* The numbering thread's own slot is never a request thread's. */
    pg->busy[0] = true;
    pg->live_waiting = 0;
    ck_assert_int_eq(store_pg_pick_slot(pg, -1), -1);
    ck_assert_int_eq(store_pg_pick_slot(pg, STORE_PG_NUMBER_SLOT), STORE_PG_NUMBER_SLOT);
    memcpy(pg->busy, busy, sizeof busy);
    pg->live_waiting = waiting;
    pthread_mutex_unlock(&pg->lock);
    store_close(st);
}
END_TEST

/* Another gateway counted this one dead during its sendInvoice (a stall of
 * more than 3 s) and settled the intent as unknown: the outcome this
 * gateway then learns is stored all the same, instead of failing the POST
 * with "not found" for an invoice SEQR created. */
START_TEST(pg_outcome_after_settled_unknown)
{
    store *st = open_fresh();
    int64_t id = new_invoice(st, 1000, NULL);
    store_pg_acquire(st);
    ck_assert_int_eq(store_pg_run(st,
                                  "UPDATE invoices SET send_state = 'unknown', last_error ="
                                  " 'gateway stopped during sendInvoice; outcome unknown'",
                                  0, NULL),
                     STORE_OK);
    store_pg_release(st);
    store_invoice inv;
    ck_assert_int_eq(store_invoice_get_id(st, id, &inv), STORE_OK);
    ck_assert_str_eq(inv.send_state, STORE_SEND_UNKNOWN);
    ck_assert_int_eq(store_invoice_sent(st, &inv, "1000000000601", "HTTP://SEQR.SE/R1000000000601"),
                     STORE_OK);
    store_invoice_clear(&inv);
    ck_assert_int_eq(store_invoice_get(st, "1000000000601", &inv), STORE_OK);
    ck_assert_str_eq(inv.send_state, STORE_SEND_SENT);
    ck_assert_str_eq(inv.last_error, "");
    store_invoice_clear(&inv);
    store_close(st);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store");
    pg_url = getenv("SEQR_TEST_PG_URL");
    if (pg_url != NULL && pg_url[0] != '\0') {
        /* The tests that hold for both backends, then PostgreSQL's own. */
        TCase *pg = tcase_create("postgresql");
        tcase_add_test(pg, intent_then_outcome_and_crash_recovery);
        tcase_add_test(pg, sent_updates_caller_copy);
        tcase_add_test(pg, status_history_and_paid);
        tcase_add_test(pg, refunds_never_exceed_and_never_repeat);
        tcase_add_test(pg, unknown_invoices_settled);
        tcase_add_test(pg, idempotency_keys);
        tcase_add_test(pg, terminals);
        tcase_add_test(pg, pg_migrations_raced);
        tcase_add_test(pg, pg_leases_shared_and_taken_over);
        tcase_add_test(pg, pg_stalled_gateway_keeps_its_running_keys);
        tcase_add_test(pg, pg_other_gateways_counted);
        tcase_add_test(pg, pg_refund_and_key_decided_once_across_gateways);
        tcase_add_test(pg, pg_password_not_in_errors);
        tcase_add_test(pg, events_with_their_changes);
        tcase_add_test(pg, events_nowhere_to_go_written_skipped);
        tcase_add_test(pg, pg_event_ids_in_commit_order);
        tcase_add_test(pg, pg_event_numbering_runs_in_order);
        tcase_add_test(pg, pg_events_from_schema_3);
        tcase_add_test(pg, pg_events_from_schema_5);
        tcase_add_test(pg, pg_statement_forgotten_prepared_again);
        tcase_add_test(pg, pg_pool_slot0_to_its_waiter_first);
        tcase_add_test(pg, pg_outcome_after_settled_unknown);
        tcase_add_test(pg, pg_events_as_sqlite);
        suite_add_tcase(s, pg);
        return tu_run_suite(s);
    }
    pg_url = NULL;
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, schema_and_pragmas);
    tcase_add_test(tc, intent_then_outcome_and_crash_recovery);
    tcase_add_test(tc, migration_to_schema_2);
    tcase_add_test(tc, migration_to_schema_3);
    tcase_add_test(tc, migration_to_schema_4);
    tcase_add_test(tc, migration_to_schema_5);
    tcase_add_test(tc, migration_to_schema_7);
    tcase_add_test(tc, unknown_invoices_settled);
    tcase_add_test(tc, sent_updates_caller_copy);
    tcase_add_test(tc, concurrent_durable_writers);
    tcase_add_test(tc, failed_fdatasync_is_sticky);
    tcase_add_test(tc, unchanged_writes_cost_no_fdatasync);
    tcase_add_test(tc, status_history_and_paid);
    tcase_add_test(tc, refunds_never_exceed_and_never_repeat);
    tcase_add_test(tc, idempotency_keys);
    tcase_add_test(tc, terminals);
    tcase_add_test(tc, pg_password_not_in_errors);
    tcase_add_test(tc, sql_errors_go_through_the_log);
    tcase_add_test(tc, events_with_their_changes);
    tcase_add_test(tc, events_nowhere_to_go_written_skipped);
    tcase_add_test(tc, migration_to_schema_8);
    tcase_add_test(tc, migration_to_schema_9);
    tcase_add_test(tc, migration_to_schema_10);
    tcase_add_test(tc, events_hook_names_each_invoice_once);
    tcase_add_test(tc, events_hook_reads_only_when_asked);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
