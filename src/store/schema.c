/* store/schema.c — the schema as forward migrations (PRAGMA user_version)
 * and the crash recovery store_open() runs after them. See store/private.h. */
#include "store/private.h"
#include "store/pg/pg.h"

#include <sqlite3.h>
#include <stdio.h>

/* >>> events: the outbox's schema. Triggers write an event row in the same
 * transaction as the change it tells of, so no change can be stored without
 * its event nor an event without its change, whichever write function (or
 * crash recovery) made the change. data is the object as it was after the
 * change, amounts in minor units and times in ms (events.c renders them in
 * the contract's shape). An event id is never reused, so a client's cursor
 * (GET /events?after=) stays valid: rows are never deleted (migration 10
 * rebuilds the table without AUTOINCREMENT and says why). Delivery state
 * lives on the row: pending -> delivered | failed (gave up) | skipped (no
 * URL). */
#define STORE_EVENT_NOW "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"
/* The refunded amount of the invoice NEW, for STORE_EVENT_INVOICE_DATA. */
#define STORE_EVENT_REFUNDED                                                                       \
    "(SELECT ifnull(sum(amount), 0) FROM refunds r WHERE r.invoice_id = NEW.id"                    \
    " AND r.state <> 'failed')"
/* refunded: STORE_EVENT_REFUNDED, or "0" where the invoice cannot have
 * refunds yet (its sendInvoice outcome: only a paid invoice is refunded). */
#define STORE_EVENT_INVOICE_DATA(refunded)                                                         \
    "json_object('id', NEW.id, 'invoiceReference', NEW.reference, 'status', NEW.status,"          \
    " 'version', NEW.version, 'outcome', NEW.send_state,"                                         \
    " 'clientInvoiceId', NEW.client_invoice_id,"                                                   \
    " 'clientReference', nullif(NEW.client_reference, ''),"                                       \
    " 'terminalId', nullif(NEW.terminal_id, ''), 'paymentMode', nullif(NEW.payment_mode, ''),"    \
    " 'currency', NEW.currency, 'totalAmount', NEW.total,"                                        \
    " 'refundedAmount', " refunded ","                                                             \
    " 'ersReference', nullif(NEW.ers_reference, ''),"                                             \
    " 'receiptSubmitted', json(CASE WHEN NEW.receipt_submitted THEN 'true' ELSE 'false' END),"    \
    " 'error', nullif(NEW.last_error, ''), 'createdAt', NEW.created_at,"                          \
    " 'updatedAt', NEW.updated_at, 'expiresAt', NEW.expires_at, 'paidAt', NEW.paid_at)"
/* Whether an event of type t needs a delivery: only when this store can
 * sign one (webhook_config.can_sign) and there is a URL for it: the
 * configured default, the invoice's own webhookUrl, or its notificationUrl
 * for invoice.paid (webhook.c, webhook_url_for, decides the same way).
 * STORE_EVENT_DELIVERY reads the row once, as column w: 0 (cannot sign),
 * 1 (a default URL: always) or 2 (the invoice's URLs decide); without the
 * row (deleted by hand) 1: every event is pending, as before schema 8, and
 * the worker decides. STORE_EVENT_PENDING(doc) is then the answer, in a
 * SELECT with columns t and w. */
#define STORE_EVENT_DELIVERY                                                                       \
    "ifnull((SELECT CASE WHEN NOT can_sign THEN 0 WHEN default_url THEN 1 ELSE 2 END"              \
    " FROM webhook_config WHERE id = 1), 1)"
#define STORE_EVENT_PENDING(doc)                                                                   \
    "CASE w WHEN 2 THEN ifnull(json_extract(" doc ", '$.webhookUrl'), '') <> ''"                   \
    " OR (t = 'invoice.paid' AND ifnull(json_extract(" doc ", '$.notificationUrl'), '') <> '')"    \
    " ELSE w END"
/* An event that needs no delivery is written skipped (done at once): it
 * never enters the partial indexes of pending events, and no later write
 * marks it. */
#define STORE_EVENT_INSERT_INVOICE(type, refunded)                                                 \
    " INSERT INTO events(type, invoice_id, at, data, state, done_at)"                              \
    " SELECT t, NEW.id, at, " STORE_EVENT_INVOICE_DATA(refunded) ","                               \
    " CASE WHEN p THEN 'pending' ELSE 'skipped' END, CASE WHEN p THEN 0 ELSE at END"               \
    " FROM (SELECT t, at, " STORE_EVENT_PENDING("NEW.doc") " AS p"                                 \
    " FROM (SELECT " type " AS t, " STORE_EVENT_NOW " AS at, " STORE_EVENT_DELIVERY " AS w));"
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
    "CREATE INDEX delivery_attempts_event ON delivery_attempts(event_id);"
/* The triggers that write events (migration 8). One trigger per column set
 * updated: each trigger that fires costs a sub-program run (its frame
 * allocated and zeroed) even when its WHEN is false, so the outcome of a
 * sendInvoice (send_state) runs one. */
#define STORE_EVENT_TRIGGERS                                                                       \
    "CREATE TRIGGER events_invoice_send AFTER UPDATE OF send_state ON invoices"                    \
    " WHEN (NEW.send_state = 'sent' AND OLD.send_state <> 'sent')"                                 \
    " OR (NEW.send_state = 'unknown' AND OLD.send_state <> 'unknown')"                             \
    " OR (NEW.send_state = 'rejected' AND OLD.send_state = 'unknown') BEGIN"                       \
    STORE_EVENT_INSERT_INVOICE("CASE NEW.send_state WHEN 'sent' THEN 'invoice.created'"            \
                               " WHEN 'unknown' THEN 'invoice.unknown_outcome'"                    \
                               " ELSE 'invoice.rejected' END",                                     \
                               "0") " END;"                             \
    "CREATE TRIGGER events_invoice_status AFTER UPDATE OF status, version ON invoices"              \
    " WHEN NEW.send_state = 'sent' AND OLD.send_state = 'sent'"                                    \
    " AND (NEW.status <> OLD.status OR NEW.version <> OLD.version) BEGIN"                          \
    STORE_EVENT_INSERT_INVOICE(                                                                    \
        "CASE WHEN NEW.status = OLD.status THEN 'invoice.updated'"                                 \
        " ELSE CASE NEW.status WHEN 'PAID' THEN 'invoice.paid'"                                    \
        " WHEN 'CANCELED' THEN CASE WHEN NEW.expires_at > 0 AND NEW.expires_at <= "                \
        STORE_EVENT_NOW " THEN 'invoice.expired' ELSE 'invoice.canceled' END"                      \
        " WHEN 'FAILED' THEN 'invoice.failed' WHEN 'RESERVED' THEN 'invoice.reserved'"             \
        " WHEN 'PARTIALLY_PAID' THEN 'invoice.partially_paid' ELSE 'invoice.updated' END END",     \
        STORE_EVENT_REFUNDED) " END;"                                                                                        \
    "CREATE TRIGGER events_invoice_doc AFTER UPDATE OF doc, total ON invoices"                     \
    " WHEN NEW.send_state = 'sent' AND (NEW.doc <> OLD.doc OR NEW.total <> OLD.total) BEGIN"      \
    STORE_EVENT_INSERT_INVOICE("'invoice.updated'", STORE_EVENT_REFUNDED) " END;"                                        \
    "CREATE TRIGGER events_invoice_receipt AFTER UPDATE OF receipt_submitted ON invoices"          \
    " WHEN NEW.receipt_submitted <> 0 AND OLD.receipt_submitted = 0 BEGIN"                         \
    STORE_EVENT_INSERT_INVOICE("'invoice.receipt_submitted'", STORE_EVENT_REFUNDED) " END;"                              \
    "CREATE TRIGGER events_refund AFTER UPDATE OF state ON refunds"                                \
    " WHEN NEW.state <> OLD.state AND NEW.state IN ('done', 'failed', 'unknown') BEGIN"            \
    " INSERT INTO events(type, invoice_id, refund_id, at, data, state, done_at) SELECT"            \
    "  t, NEW.invoice_id, NEW.id, at,"                                                             \
    "  json_object('id', NEW.id, 'invoiceReference', reference, 'amount', NEW.amount,"             \
    "  'currency', currency, 'status', NEW.state, 'ersReference', nullif(NEW.ers_reference, ''),"  \
    "  'title', nullif(NEW.title, ''), 'error', nullif(NEW.error, ''),"                            \
    "  'createdAt', NEW.created_at, 'updatedAt', NEW.updated_at),"                                 \
    "  CASE WHEN p THEN 'pending' ELSE 'skipped' END, CASE WHEN p THEN 0 ELSE at END"              \
    "  FROM (SELECT t, at, reference, currency, " STORE_EVENT_PENDING("doc") " AS p FROM"         \
    "  (SELECT CASE WHEN OLD.state = 'unknown' THEN 'refund.settled' WHEN NEW.state = 'done'"      \
    "  THEN 'refund.succeeded' WHEN NEW.state = 'failed' THEN 'refund.failed'"                     \
    "  ELSE 'refund.in_doubt' END AS t, " STORE_EVENT_NOW " AS at, i.reference, i.currency, i.doc," \
    "  " STORE_EVENT_DELIVERY " AS w FROM invoices i WHERE i.id = NEW.invoice_id)); END;"
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
    /* 6: the events outbox (see STORE_EVENTS_MIGRATION above); its triggers
     * come with migration 8, which follows in the same store_migrate() run
     * (a database that reached 6 or 7 under an older release has the older
     * triggers, and 8 replaces them). */
    STORE_EVENTS_MIGRATION,
    /* 7: an invoice's payment page token (GET /pay/{token}, no API key: the
     * token is the capability), 128 random bits as hex, unique, found
     * through a partial index. Invoices from before keep '' and have no
     * payment page (their paymentPageUrl is null): no token is made up for
     * them inside SQL, where getrandom() is not at hand. */
    "ALTER TABLE invoices ADD COLUMN pay_token TEXT NOT NULL DEFAULT '';"
    "CREATE UNIQUE INDEX invoices_pay_token ON invoices(pay_token) WHERE pay_token <> '';",
    /* 8: events that need no delivery are written skipped. webhook_config
     * holds what the webhook worker can deliver (store_set_delivery: a
     * signing key; a default URL), so that the triggers know whether an
     * event has anywhere to go. Until the worker says, everything is
     * pending, as before. Before this, every event was written pending,
     * entering events_pending and events_due, and the worker marked it
     * skipped in a transaction of its own a moment later: three index
     * pages and a commit per event for nothing on a gateway without
     * webhooks. The three triggers on send_state become one
     * (STORE_EVENT_TRIGGERS says why). */
    "CREATE TABLE webhook_config("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " can_sign INTEGER NOT NULL,"
    " default_url INTEGER NOT NULL);"
    "INSERT INTO webhook_config(id, can_sign, default_url) VALUES(1, 1, 1);"
    "DROP TRIGGER IF EXISTS events_invoice_sent;"
    "DROP TRIGGER IF EXISTS events_invoice_unknown;"
    "DROP TRIGGER IF EXISTS events_invoice_rejected;"
    "DROP TRIGGER IF EXISTS events_invoice_status;"
    "DROP TRIGGER IF EXISTS events_invoice_doc;"
    "DROP TRIGGER IF EXISTS events_invoice_receipt;"
    "DROP TRIGGER IF EXISTS events_refund;" STORE_EVENT_TRIGGERS,
    /* 9: two pages fewer in the outcome of every sendInvoice:
     * - pay_secret: the payment page's secret (128 random bits as hex). The
     *   token of an invoice sent since is "<reference>.<pay_secret>"
     *   (service/checkout.c), found through the reference's index and
     *   compared in constant time, so the intent no longer writes a random
     *   leaf of invoices_pay_token. That index keeps the tokens made before
     *   (pay_token, still valid); new rows leave pay_token '' and never
     *   enter it.
     * - issued_at: when the invoice was sent (or settled as sent). It is
     *   the ISSUED entry of the invoice's status history, which
     *   store_invoice_history() reads first; status_history holds the
     *   changes after it. Invoices sent before keep issued_at 0 and their
     *   ISSUED row. */
    "ALTER TABLE invoices ADD COLUMN pay_secret TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE invoices ADD COLUMN issued_at INTEGER NOT NULL DEFAULT 0;"
    /* ... and the event triggers again (STORE_EVENT_TRIGGERS): webhook_config
     * read once per event instead of twice, and no refunds summed for the
     * outcome of a sendInvoice, which has none (5.4k instructions of the
     * 96k of that outcome's UPDATE). Same rows, same data. */
    "DROP TRIGGER IF EXISTS events_invoice_send; DROP TRIGGER IF EXISTS events_invoice_status;"
    "DROP TRIGGER IF EXISTS events_invoice_doc; DROP TRIGGER IF EXISTS events_invoice_receipt;"
    "DROP TRIGGER IF EXISTS events_refund;"
    /* ... whose data takes clientInvoiceId from a column kept with the
     * document (store_invoice_begin, store_invoice_set_doc) instead of
     * parsing the whole document for it in every invoice event (8k
     * instructions for a one-row invoice, more for larger ones). Filled
     * from the documents here: every invoice row that has one is
     * rewritten once. */
    "ALTER TABLE invoices ADD COLUMN client_invoice_id TEXT;"
    "UPDATE invoices SET client_invoice_id = json_extract(doc, '$.clientInvoiceId')"
    " WHERE json_extract(doc, '$.clientInvoiceId') IS NOT NULL;" STORE_EVENT_TRIGGERS,
    /* 10: the events table rebuilt without AUTOINCREMENT, as migration 3
     * did for invoices: every transaction that wrote an event also rewrote
     * sqlite_sequence, one WAL page (and 14k instructions) more in the
     * outcome of every sendInvoice and every status change. Ids still only
     * grow: no event row is ever deleted, so max(id) + 1 is never an old
     * id and a feed cursor (GET /events?after=) stays valid. Whatever
     * prunes events one day must keep the newest row. The triggers name
     * the table, and a rename checks them, so they go first and come back
     * after (STORE_EVENT_TRIGGERS); delivery_attempts refers to events by
     * name and keeps pointing at the same ids. */
    "DROP TRIGGER IF EXISTS events_invoice_send; DROP TRIGGER IF EXISTS events_invoice_status;"
    "DROP TRIGGER IF EXISTS events_invoice_doc; DROP TRIGGER IF EXISTS events_invoice_receipt;"
    "DROP TRIGGER IF EXISTS events_refund;"
    "CREATE TABLE events_new("
    " id INTEGER PRIMARY KEY,"
    " type TEXT NOT NULL,"
    " invoice_id INTEGER NOT NULL REFERENCES invoices(id),"
    " refund_id INTEGER,"
    " at INTEGER NOT NULL,"
    " data TEXT NOT NULL,"
    " state TEXT NOT NULL DEFAULT 'pending',"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " next_at INTEGER NOT NULL DEFAULT 0,"
    " done_at INTEGER NOT NULL DEFAULT 0);"
    "INSERT INTO events_new(id, type, invoice_id, refund_id, at, data, state, attempts, next_at,"
    " done_at) SELECT id, type, invoice_id, refund_id, at, data, state, attempts, next_at,"
    " done_at FROM events;"
    "DROP TABLE events;"
    "ALTER TABLE events_new RENAME TO events;"
    "CREATE INDEX events_invoice ON events(invoice_id, id);"
    "CREATE INDEX events_pending ON events(invoice_id, id) WHERE state = 'pending';"
    "CREATE INDEX events_due ON events(next_at, id) WHERE state = 'pending';"
    "DELETE FROM sqlite_sequence WHERE name = 'events';" STORE_EVENT_TRIGGERS,
};
#define STORE_SCHEMA_VERSION ((int)(sizeof store_migrations / sizeof *store_migrations))

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

store_err store_migrate(store *st, buf *err)
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
        return STORE_SCHEMA_NEWER;
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
            buf_printf(err,
                       "migrating the database to schema %d failed: a row refers to a "
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
store_err store_recover(store *st)
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

store_err store_schema_versions(store *st, int *db_version, int *known)
{
    if (st->pg != NULL)
        return store_pg_schema_versions(st, db_version, known);
    /* One gateway per SQLite file (the flock in db.c), migrated only when
     * it opens it: nothing can move the schema under it. */
    *db_version = STORE_SCHEMA_VERSION;
    *known = STORE_SCHEMA_VERSION;
    return STORE_OK;
}
