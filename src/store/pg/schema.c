/* store/pg/schema.c — the PostgreSQL schema as forward migrations (table
 * schema_version), applied under a session advisory lock so that gateways
 * starting together do not race; the registration of this instance; and the
 * crash recovery of instances that died. See store/pg/pg.h. */
#include "store/pg/pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "store/private.h"

/* pg_advisory_lock key: "seqrgw" in ASCII, so that other applications
 * sharing the database are unlikely to pick it. */
#define STORE_PG_LOCK_KEY "126875896690551"

/* >>> events: the outbox, as SQLite's schema 6 (store/schema.c) has it:
 * triggers write an event row in the transaction of the change it tells
 * of, with the same types and the same data (the object after the change,
 * minor units, ms). Two things differ, both for several gateways:
 *
 * Ids in commit order. A client reads GET /events?after=<id> and moves its
 * cursor to the last id it got; so no event may become visible with an id
 * below one already visible. A sequence does not give that (ids are taken
 * in statement order, transactions commit in another), so an event's row
 * is written without its id (events.id NULL; seq is only the row's key)
 * and numbered once committed, by events_number_batch() (migration 4,
 * STORE_PG_EVENTS_BATCH_MIGRATION, which says why that keeps the rule).
 * Schema 3 numbered each transaction's events in a deferred constraint
 * trigger at its commit, under a transaction-level advisory lock: correct,
 * but every commit that wrote an event (every POST /invoices) then waited
 * for that lock and PostgreSQL's notification-queue lock in turn, so their
 * WAL flushes could not be shared.
 *
 * Wake-ups across gateways. Numbering sends NOTIFY seqr_events with the
 * invoices' ids; each gateway LISTENs on a connection of its own
 * (store/pg/listen.c) and wakes its SSE and long-poll waiters and its
 * webhook sender.
 *
 * Delivery by one gateway: claimed_by is the instance that claimed the
 * pending event (store_events_due), valid while that instance lives
 * (STORE_PG_DEAD, as invoice leases); claim_until is only informative.
 * The invoice trigger runs only for updates that can tell of something,
 * not for lease renewals. */
#define STORE_PG_EVENT_NOW "(extract(epoch from clock_timestamp()) * 1000)::bigint"
/* The invoice event's row (the body of events_add_invoice(kind, i)). */
#define STORE_PG_EVENTS_ADD_INVOICE_INSERT                                                         \
    " INSERT INTO events(type, invoice_id, at, data) VALUES(kind, i.id, " STORE_PG_EVENT_NOW ","   \
    " json_build_object('id', i.id, 'invoiceReference', i.reference, 'status', i.status,"          \
    " 'version', i.version, 'outcome', i.send_state,"                                              \
    " 'clientInvoiceId', i.doc::json -> 'clientInvoiceId',"                                        \
    " 'clientReference', nullif(i.client_reference, ''),"                                          \
    " 'terminalId', nullif(i.terminal_id, ''), 'paymentMode', nullif(i.payment_mode, ''),"         \
    " 'currency', i.currency, 'totalAmount', i.total,"                                             \
    " 'refundedAmount', (SELECT coalesce(sum(amount), 0) FROM refunds r"                           \
    "  WHERE r.invoice_id = i.id AND r.state <> 'failed'),"                                        \
    " 'ersReference', nullif(i.ers_reference, ''), 'receiptSubmitted', i.receipt_submitted <> 0,"  \
    " 'error', nullif(i.last_error, ''), 'createdAt', i.created_at,"                               \
    " 'updatedAt', i.updated_at, 'expiresAt', i.expires_at, 'paidAt', i.paid_at)::text)"

#define STORE_PG_EVENTS_MIGRATION                                                                  \
    "CREATE SEQUENCE events_feed_id;"                                                              \
    "CREATE TABLE events("                                                                         \
    " seq BIGSERIAL PRIMARY KEY,"                                                                  \
    " id BIGINT UNIQUE,"                                                                           \
    " type TEXT NOT NULL,"                                                                         \
    " invoice_id BIGINT NOT NULL REFERENCES invoices(id),"                                         \
    " refund_id BIGINT,"                                                                           \
    " at BIGINT NOT NULL,"                                                                         \
    " data TEXT NOT NULL,"                                                                         \
    " state TEXT NOT NULL DEFAULT 'pending',"                                                      \
    " attempts INTEGER NOT NULL DEFAULT 0,"                                                        \
    " next_at BIGINT NOT NULL DEFAULT 0,"                                                          \
    " done_at BIGINT NOT NULL DEFAULT 0,"                                                          \
    " claimed_by BIGINT NOT NULL DEFAULT 0,"                                                       \
    " claim_until BIGINT NOT NULL DEFAULT 0);"                                                     \
    "CREATE INDEX events_invoice ON events(invoice_id, id);"                                       \
    "CREATE INDEX events_pending ON events(invoice_id, id) WHERE state = 'pending';"               \
    "CREATE INDEX events_due ON events(next_at, id) WHERE state = 'pending';"                      \
    "CREATE TABLE delivery_attempts("                                                              \
    " id BIGSERIAL PRIMARY KEY,"                                                                   \
    " event_id BIGINT NOT NULL REFERENCES events(id),"                                             \
    " url TEXT NOT NULL,"                                                                          \
    " at BIGINT NOT NULL,"                                                                         \
    " http_status INTEGER NOT NULL,"                                                               \
    " latency_ms BIGINT NOT NULL,"                                                                 \
    " error TEXT NOT NULL DEFAULT '');"                                                            \
    "CREATE INDEX delivery_attempts_event ON delivery_attempts(event_id);"                         \
    "CREATE FUNCTION events_number() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"                 \
    " PERFORM pg_advisory_xact_lock(" STORE_PG_EVENTS_KEY ");"                                     \
    " UPDATE events SET id = nextval('events_feed_id') WHERE seq = NEW.seq;"                       \
    " PERFORM pg_notify('" STORE_PG_EVENTS_CHANNEL "', NEW.invoice_id::text);"                     \
    " RETURN NULL; END $$;"                                                                        \
    "CREATE CONSTRAINT TRIGGER events_number AFTER INSERT ON events"                               \
    " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION events_number();"                \
    "CREATE FUNCTION events_add_invoice(kind TEXT, i invoices) RETURNS void LANGUAGE sql AS "      \
    "$$" STORE_PG_EVENTS_ADD_INVOICE_INSERT " $$;"                                                 \
    "CREATE FUNCTION events_invoice() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"                \
    " IF NEW.send_state = 'sent' AND OLD.send_state <> 'sent' THEN"                                \
    "  PERFORM events_add_invoice('invoice.created', NEW); END IF;"                                \
    " IF NEW.send_state = 'unknown' AND OLD.send_state <> 'unknown' THEN"                          \
    "  PERFORM events_add_invoice('invoice.unknown_outcome', NEW); END IF;"                        \
    " IF NEW.send_state = 'rejected' AND OLD.send_state = 'unknown' THEN"                          \
    "  PERFORM events_add_invoice('invoice.rejected', NEW); END IF;"                               \
    " IF NEW.send_state = 'sent' AND OLD.send_state = 'sent'"                                      \
    "  AND (NEW.status <> OLD.status OR NEW.version <> OLD.version) THEN"                          \
    "  PERFORM events_add_invoice(CASE WHEN NEW.status = OLD.status THEN 'invoice.updated'"        \
    "  ELSE CASE NEW.status WHEN 'PAID' THEN 'invoice.paid'"                                       \
    "  WHEN 'CANCELED' THEN CASE WHEN NEW.expires_at > 0 AND NEW.expires_at "                      \
    "<= " STORE_PG_EVENT_NOW " THEN 'invoice.expired' ELSE 'invoice.canceled' END"                 \
    "  WHEN 'FAILED' THEN 'invoice.failed' WHEN 'RESERVED' THEN 'invoice.reserved'"                \
    "  WHEN 'PARTIALLY_PAID' THEN 'invoice.partially_paid' ELSE 'invoice.updated' END END, NEW);"  \
    " END IF;"                                                                                     \
    " IF NEW.send_state = 'sent' AND (NEW.doc <> OLD.doc OR NEW.total <> OLD.total) THEN"          \
    "  PERFORM events_add_invoice('invoice.updated', NEW); END IF;"                                \
    " IF NEW.receipt_submitted <> 0 AND OLD.receipt_submitted = 0 THEN"                            \
    "  PERFORM events_add_invoice('invoice.receipt_submitted', NEW); END IF;"                      \
    " RETURN NULL; END $$;"                                                                        \
    "CREATE TRIGGER events_invoice AFTER UPDATE ON invoices FOR EACH ROW"                          \
    " WHEN (NEW.send_state <> OLD.send_state OR NEW.status <> OLD.status"                          \
    " OR NEW.version <> OLD.version OR NEW.doc <> OLD.doc OR NEW.total <> OLD.total"               \
    " OR NEW.receipt_submitted <> OLD.receipt_submitted)"                                          \
    " EXECUTE FUNCTION events_invoice();"                                                          \
    "CREATE FUNCTION events_refund() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"                 \
    " INSERT INTO events(type, invoice_id, refund_id, at, data) SELECT"                            \
    "  CASE WHEN OLD.state = 'unknown' THEN 'refund.settled' WHEN NEW.state = 'done'"              \
    "  THEN 'refund.succeeded' WHEN NEW.state = 'failed' THEN 'refund.failed'"                     \
    "  ELSE 'refund.in_doubt' END, NEW.invoice_id, NEW.id, " STORE_PG_EVENT_NOW ","                \
    "  json_build_object('id', NEW.id, 'invoiceReference', i.reference, 'amount', NEW.amount,"     \
    "  'currency', i.currency, 'status', NEW.state,"                                               \
    "  'ersReference', nullif(NEW.ers_reference, ''), 'title', nullif(NEW.title, ''),"             \
    "  'error', nullif(NEW.error, ''), 'createdAt', NEW.created_at,"                               \
    "  'updatedAt', NEW.updated_at)::text"                                                         \
    "  FROM invoices i WHERE i.id = NEW.invoice_id;"                                               \
    " RETURN NULL; END $$;"                                                                        \
    "CREATE TRIGGER events_refund AFTER UPDATE ON refunds FOR EACH ROW"                            \
    " WHEN (NEW.state <> OLD.state AND NEW.state IN ('done', 'failed', 'unknown'))"                \
    " EXECUTE FUNCTION events_refund();"
/* <<< events */

/* >>> events numbered in batches (migration 4). The events_number trigger
 * goes; rows are written with id NULL and events_number_batch() numbers
 * them after their commit (store/pg/number.c runs it: after each write of
 * this gateway that may have written events, and every second as a safety
 * net for events whose gateway died between its commit and the numbering).
 * One run, one transaction: it takes the transaction-level advisory lock
 * STORE_PG_EVENTS_KEY, then, in a statement whose snapshot is taken after
 * the lock, gives every committed unnumbered row (up to max_rows) the next
 * ids in seq order, and sends one NOTIFY for them all. Why no cursor skips:
 * the lock is released only once the run's commit is visible, so the next
 * run's snapshot sees its ids, takes higher ones, and becomes visible after
 * it; a reader that sees a run's ids sees every earlier run's, and a run
 * that rolls back leaves a gap nobody sees. A run sees only committed rows,
 * so no id ever waits on a transaction still open, and the writers take no
 * lock of the feed and send no NOTIFY: their commits share WAL flushes.
 * Within an invoice, events keep their order: a transaction that writes
 * one holds the invoice's row lock, so a later one inserts (takes a higher
 * seq) after the earlier committed, and any run that sees the later sees
 * the earlier too. Ids continue after the highest one given (the sequence
 * or max(id), whichever is higher: a copied store, store/copy.c, sets ids
 * itself). The run commits durably (the store's default): a numbering lost
 * in a crash after clients read its ids would give those ids again. Rows of
 * a schema 3 database keep their ids; its unnumbered rows (transactions in
 * flight when the migration waited for them) are numbered by the first run.
 * Readers take numbered rows only (id IS NOT NULL, id > cursor). */
#define STORE_PG_EVENTS_BATCH_MIGRATION                                                            \
    "DROP TRIGGER events_number ON events;"                                                        \
    "DROP FUNCTION events_number();"                                                               \
    "CREATE INDEX events_unnumbered ON events(seq) WHERE id IS NULL;"                              \
    "CREATE FUNCTION events_number_batch(max_rows integer) RETURNS integer"                        \
    " LANGUAGE plpgsql AS $$ DECLARE n integer; top bigint; invs bigint[]; BEGIN"                  \
    " IF NOT EXISTS(SELECT 1 FROM events WHERE id IS NULL) THEN RETURN 0; END IF;"                 \
    " PERFORM pg_advisory_xact_lock(" STORE_PG_EVENTS_KEY ");"                                     \
    " WITH b AS (SELECT seq, row_number() OVER (ORDER BY seq) AS rn FROM events"                   \
    "  WHERE id IS NULL ORDER BY seq LIMIT max_rows),"                                             \
    " base AS (SELECT greatest((SELECT coalesce(max(id), 0) FROM events),"                         \
    "  (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END"                        \
    "  FROM events_feed_id)) AS v),"                                                               \
    " u AS (UPDATE events e SET id = base.v + b.rn FROM b, base WHERE e.seq = b.seq"               \
    "  RETURNING e.id, e.invoice_id)"                                                              \
    " SELECT count(*), max(id), array_agg(DISTINCT invoice_id) INTO n, top, invs FROM u;"          \
    " IF n = 0 THEN RETURN 0; END IF;"                                                             \
    " PERFORM setval('events_feed_id', top);"                                                      \
    " PERFORM pg_notify('" STORE_PG_EVENTS_CHANNEL                                                 \
    "', CASE WHEN cardinality(invs) <= " STORE_PG_EVENTS_NOTIFY_MAX                                \
    " THEN array_to_string(invs, ',') ELSE '' END);"                                               \
    " RETURN n; END $$;"
/* <<< events numbered in batches */

/* >>> leaner event rows (migration 6). An event row is written three times
 * (inserted without its id; numbered; skipped or delivered), and each write
 * is a new row version with an entry in every index of events (a change of
 * an indexed column, or of one in a partial index's WHERE, is never a HOT
 * update). So the indexes cover only the rows their readers can take:
 * - events_pending goes: its one reader, the claim's test for an earlier
 *   pending event of the same invoice (store_pg_events_due), is served by
 *   events_invoice, an invoice having a handful of events;
 * - events_invoice (the feed of one invoice, that test) and events_due (the
 *   claim's walk in due order) hold numbered rows only: every reader of
 *   them takes numbered rows only (id > cursor, p.id < e.id, id IS NOT
 *   NULL), so the insert of an event adds no entry to them, only the
 *   numbering does.
 * Per event: 10 index entries instead of 14 (3 at the insert: the key, the
 * unique id, events_unnumbered; 4 when numbered; 3 when skipped). IF
 * EXISTS: a database taken back to an older schema by hand (the tests do)
 * may lack some.
 *
 * The invoice trigger writes its events itself: the same conditions, in the
 * same order, collected as kinds, then one INSERT per kind in the trigger
 * function (events_add_invoice(), a second PL/pgSQL call with the invoice
 * row as its argument per event, goes).
 *
 * The foreign keys events.invoice_id and status_history.invoice_id ->
 * invoices go: every event row is written by a trigger on the invoice's own
 * row (invoice_id = NEW.id) or on one of its refunds (whose own key to
 * invoices holds), every status_history row by the store in a transaction
 * that updated or locked the invoice's row (store/pg/invoices.c), and
 * nothing deletes invoices; so neither could fail, and their checks (a
 * query and a row lock each) ran twice per POST /invoices. The keys of
 * refunds and receipts, written on a client's say-so, stay.
 *
 * Nothing dropped here is named by a statement of the release before
 * (events_add_invoice() only by the trigger function replaced here), so an
 * older gateway's statements keep working until it sees schema 6 and stops
 * (docs/design.md, the migration rule). */
#define STORE_PG_EVENTS_LEAN_MIGRATION                                                             \
    "DROP INDEX IF EXISTS events_pending;"                                                         \
    "DROP INDEX IF EXISTS events_due;"                                                             \
    "CREATE INDEX events_due ON events(next_at, id) WHERE state = 'pending' AND id IS NOT NULL;"   \
    "DROP INDEX IF EXISTS events_invoice;"                                                         \
    "CREATE INDEX events_invoice ON events(invoice_id, id) WHERE id IS NOT NULL;"                  \
    "ALTER TABLE events DROP CONSTRAINT IF EXISTS events_invoice_id_fkey;"                         \
    "ALTER TABLE status_history DROP CONSTRAINT IF EXISTS status_history_invoice_id_fkey;"         \
    "CREATE OR REPLACE FUNCTION events_invoice() RETURNS trigger LANGUAGE plpgsql AS $$"           \
    " DECLARE i ALIAS FOR NEW; kinds text[] := '{}'; kind text; BEGIN"                             \
    " IF NEW.send_state = 'sent' AND OLD.send_state <> 'sent' THEN"                                \
    "  kinds := array_append(kinds, 'invoice.created'); END IF;"                                   \
    " IF NEW.send_state = 'unknown' AND OLD.send_state <> 'unknown' THEN"                          \
    "  kinds := array_append(kinds, 'invoice.unknown_outcome'); END IF;"                           \
    " IF NEW.send_state = 'rejected' AND OLD.send_state = 'unknown' THEN"                          \
    "  kinds := array_append(kinds, 'invoice.rejected'); END IF;"                                  \
    " IF NEW.send_state = 'sent' AND OLD.send_state = 'sent'"                                      \
    "  AND (NEW.status <> OLD.status OR NEW.version <> OLD.version) THEN"                          \
    "  kinds := array_append(kinds, CASE WHEN NEW.status = OLD.status THEN 'invoice.updated'"      \
    "  ELSE CASE NEW.status WHEN 'PAID' THEN 'invoice.paid'"                                       \
    "  WHEN 'CANCELED' THEN CASE WHEN NEW.expires_at > 0 AND NEW.expires_at "                      \
    "<= " STORE_PG_EVENT_NOW " THEN 'invoice.expired' ELSE 'invoice.canceled' END"                 \
    "  WHEN 'FAILED' THEN 'invoice.failed' WHEN 'RESERVED' THEN 'invoice.reserved'"                \
    "  WHEN 'PARTIALLY_PAID' THEN 'invoice.partially_paid' ELSE 'invoice.updated' END END);"       \
    " END IF;"                                                                                     \
    " IF NEW.send_state = 'sent' AND (NEW.doc <> OLD.doc OR NEW.total <> OLD.total) THEN"          \
    "  kinds := array_append(kinds, 'invoice.updated'); END IF;"                                   \
    " IF NEW.receipt_submitted <> 0 AND OLD.receipt_submitted = 0 THEN"                            \
    "  kinds := array_append(kinds, 'invoice.receipt_submitted'); END IF;"                         \
    " FOREACH kind IN ARRAY kinds LOOP" STORE_PG_EVENTS_ADD_INVOICE_INSERT "; END LOOP;"           \
    " RETURN NULL; END $$;"                                                                        \
    "DROP FUNCTION IF EXISTS events_add_invoice(text, invoices);"
/* <<< leaner event rows */

/* >>> events born skipped (migration 7; SQLite schema 8). webhook_config
 * holds what the webhook workers can deliver (store_set_delivery: a signing
 * key; a default URL). A pending event about to be inserted that has
 * nowhere to go is written skipped and done at once, by a BEFORE INSERT
 * trigger on events, so neither invoice nor refund trigger changes: it
 * never enters events_due, no gateway claims it, and no later transaction
 * marks it (before: a claim and a skip, two row versions and two
 * transactions, per event of a gateway without webhooks). The URL rule is
 * webhook.c's (webhook_url_for): the default, the invoice's webhookUrl,
 * or its notificationUrl for invoice.paid. Without the row (deleted by
 * hand) every event stays pending and the workers decide, as before. */
#define STORE_PG_EVENTS_DELIVERY_MIGRATION                                                         \
    "CREATE TABLE webhook_config("                                                                 \
    " id INTEGER PRIMARY KEY CHECK (id = 1),"                                                      \
    " can_sign BOOLEAN NOT NULL,"                                                                  \
    " default_url BOOLEAN NOT NULL);"                                                              \
    "INSERT INTO webhook_config(id, can_sign, default_url) VALUES(1, true, true);"                 \
    "CREATE FUNCTION events_delivery() RETURNS trigger LANGUAGE plpgsql AS $$"                     \
    " DECLARE c webhook_config; d json; BEGIN"                                                     \
    " SELECT * INTO c FROM webhook_config WHERE id = 1;"                                           \
    " IF NOT FOUND OR (c.can_sign AND c.default_url) THEN RETURN NEW; END IF;"                     \
    " IF c.can_sign THEN"                                                                          \
    "  SELECT doc::json INTO d FROM invoices WHERE id = NEW.invoice_id;"                           \
    "  IF coalesce(d ->> 'webhookUrl', '') <> '' OR (NEW.type = 'invoice.paid'"                    \
    "   AND coalesce(d ->> 'notificationUrl', '') <> '') THEN RETURN NEW; END IF;"                 \
    " END IF;"                                                                                     \
    " NEW.state := 'skipped'; NEW.done_at := NEW.at; RETURN NEW; END $$;"                          \
    "CREATE TRIGGER events_delivery BEFORE INSERT ON events FOR EACH ROW"                          \
    " WHEN (NEW.state = 'pending') EXECUTE FUNCTION events_delivery();"
/* <<< events born skipped */

/* Forward migrations; index i brings version i to i + 1. Version 1 is the
 * SQLite schema 5 in PostgreSQL's types, plus what several gateways need:
 * the instance that wrote an intent or claimed a key (owner), the lease of a
 * pending invoice (lease_owner, lease_until), and gateway_instances. */
static const char *const store_pg_migrations[] = {
    "CREATE TABLE gateway_instances("
    " id BIGSERIAL PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " started_at BIGINT NOT NULL,"
    " heartbeat_at BIGINT NOT NULL);"
    "CREATE TABLE invoices("
    " id BIGSERIAL PRIMARY KEY,"
    " reference TEXT,"
    " send_state TEXT NOT NULL,"
    " status TEXT NOT NULL,"
    " version BIGINT NOT NULL DEFAULT 0,"
    " qr_code TEXT NOT NULL DEFAULT '',"
    " currency TEXT NOT NULL,"
    " total BIGINT NOT NULL,"
    " terminal_id TEXT NOT NULL DEFAULT '',"
    " payment_mode TEXT NOT NULL DEFAULT '',"
    " client_reference TEXT NOT NULL DEFAULT '',"
    " ers_reference TEXT NOT NULL DEFAULT '',"
    " doc TEXT NOT NULL,"
    " receipt TEXT,"
    " receipt_submitted INTEGER NOT NULL DEFAULT 0,"
    " polling_stopped INTEGER NOT NULL DEFAULT 0,"
    " last_error TEXT NOT NULL DEFAULT '',"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " expires_at BIGINT NOT NULL,"
    " paid_at BIGINT NOT NULL DEFAULT 0,"
    " notify_token TEXT NOT NULL DEFAULT '',"
    " owner BIGINT NOT NULL DEFAULT 0,"
    " lease_owner BIGINT NOT NULL DEFAULT 0,"
    " lease_until BIGINT NOT NULL DEFAULT 0);"
    "CREATE UNIQUE INDEX invoices_reference ON invoices(reference) WHERE reference IS NOT NULL;"
    "CREATE INDEX invoices_status ON invoices(status, id);"
    "CREATE INDEX invoices_unknown ON invoices(id) WHERE send_state = 'unknown';"
    "CREATE INDEX invoices_sending ON invoices(owner) WHERE send_state = 'sending';"
    "CREATE INDEX invoices_pending ON invoices(lease_owner, lease_until) WHERE send_state = 'sent'"
    " AND polling_stopped = 0 AND status NOT IN ('PAID', 'CANCELED', 'FAILED');"
    "CREATE TABLE status_history("
    " id BIGSERIAL PRIMARY KEY,"
    " invoice_id BIGINT NOT NULL REFERENCES invoices(id),"
    " status TEXT NOT NULL,"
    " version BIGINT NOT NULL,"
    " at BIGINT NOT NULL);"
    "CREATE INDEX status_history_invoice ON status_history(invoice_id);"
    "CREATE TABLE refunds("
    " id BIGSERIAL PRIMARY KEY,"
    " invoice_id BIGINT NOT NULL REFERENCES invoices(id),"
    " amount BIGINT NOT NULL CHECK (amount > 0),"
    " title TEXT NOT NULL DEFAULT '',"
    " state TEXT NOT NULL,"
    " ers_reference TEXT NOT NULL DEFAULT '',"
    " error TEXT NOT NULL DEFAULT '',"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " owner BIGINT NOT NULL DEFAULT 0);"
    "CREATE INDEX refunds_invoice ON refunds(invoice_id);"
    "CREATE INDEX refunds_unknown ON refunds(id) WHERE state = 'unknown';"
    "CREATE INDEX refunds_sending ON refunds(owner) WHERE state = 'sending';"
    "CREATE TABLE receipts("
    " id BIGSERIAL PRIMARY KEY,"
    " invoice_id BIGINT NOT NULL REFERENCES invoices(id),"
    " mime_type TEXT NOT NULL DEFAULT '',"
    " receipt_type TEXT NOT NULL DEFAULT '',"
    " data_len BIGINT NOT NULL DEFAULT 0,"
    " result_code INTEGER NOT NULL,"
    " at BIGINT NOT NULL,"
    " data TEXT);"
    "CREATE INDEX receipts_invoice ON receipts(invoice_id);"
    "CREATE TABLE periods("
    " id BIGSERIAL PRIMARY KEY,"
    " period_id TEXT NOT NULL,"
    " terminal_id TEXT NOT NULL DEFAULT '',"
    " at BIGINT NOT NULL);"
    "CREATE TABLE terminals("
    " terminal_id TEXT PRIMARY KEY,"
    " external_id TEXT NOT NULL,"
    " name TEXT NOT NULL,"
    " password TEXT NOT NULL,"
    " seqr_id TEXT NOT NULL DEFAULT '',"
    " unregistered INTEGER NOT NULL DEFAULT 0,"
    " created_at BIGINT NOT NULL,"
    " cashier_id TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE idempotency("
    " scope TEXT NOT NULL,"
    " key TEXT NOT NULL,"
    " request_hash TEXT NOT NULL,"
    " status INTEGER NOT NULL DEFAULT 0,"
    " response TEXT NOT NULL DEFAULT '',"
    " created_at BIGINT NOT NULL,"
    " owner BIGINT NOT NULL DEFAULT 0,"
    " PRIMARY KEY(scope, key));"
    "CREATE INDEX idempotency_created ON idempotency(created_at);"
    /* Every gateway looks for dead ones' intents and keys every second
     * (store_pg_recover_dead): small partial indexes, empty most of the time. */
    "CREATE INDEX idempotency_running ON idempotency(owner) WHERE status = 0;",
    /* 2: the payment page token (SQLite schema 7): 128 random bits as hex,
     * unique among invoices that have one; older invoices keep '' (no
     * payment page). */
    "ALTER TABLE invoices ADD COLUMN pay_token TEXT NOT NULL DEFAULT '';"
    "CREATE UNIQUE INDEX invoices_pay_token ON invoices(pay_token) WHERE pay_token <> '';",
    /* 3: the events outbox (SQLite schema 6), see STORE_PG_EVENTS_MIGRATION. */
    STORE_PG_EVENTS_MIGRATION,
    /* 4: events numbered after commit, in batches, see
     * STORE_PG_EVENTS_BATCH_MIGRATION. */
    STORE_PG_EVENTS_BATCH_MIGRATION,
    /* 5: events_add_invoice() in PL/pgSQL, the same INSERT: a LANGUAGE sql
     * function that is not inlined parses and plans its body on every call
     * (every invoice event, so every POST /invoices), where PL/pgSQL plans
     * it once per connection. */
    "CREATE OR REPLACE FUNCTION events_add_invoice(kind TEXT, i invoices) RETURNS void"
    " LANGUAGE plpgsql AS $$ BEGIN" STORE_PG_EVENTS_ADD_INVOICE_INSERT "; END $$;",
    /* 6: fewer index entries per event row, see
     * STORE_PG_EVENTS_LEAN_MIGRATION. */
    STORE_PG_EVENTS_LEAN_MIGRATION,
    /* 7: events with nowhere to go written skipped, see
     * STORE_PG_EVENTS_DELIVERY_MIGRATION. */
    STORE_PG_EVENTS_DELIVERY_MIGRATION,
    /* 8: the payment page's secret and the time an invoice was issued
     * (SQLite schema 9, which says why): a sendInvoice's outcome writes
     * neither an index entry of invoices_pay_token nor a status_history
     * row. And clientInvoiceId as a column, kept with the document (the
     * SQLite triggers read it from there; here it keeps the two schemas
     * alike for --copy-store-to). */
    "ALTER TABLE invoices ADD COLUMN pay_secret TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE invoices ADD COLUMN issued_at BIGINT NOT NULL DEFAULT 0;"
    "ALTER TABLE invoices ADD COLUMN client_invoice_id TEXT;"
    "UPDATE invoices SET client_invoice_id = doc::json ->> 'clientInvoiceId'"
    " WHERE doc::json ->> 'clientInvoiceId' IS NOT NULL;",
};
#define STORE_PG_SCHEMA_VERSION ((int)(sizeof store_pg_migrations / sizeof *store_pg_migrations))

store_err store_pg_recover_dead(store *st)
{
    store_err e = store_pg_run(st,
                               "UPDATE invoices SET send_state = 'unknown',"
                               " last_error = 'gateway stopped during sendInvoice; outcome unknown'"
                               " WHERE send_state = 'sending' AND owner IN " STORE_PG_DEAD,
                               0, NULL);
    if (e == STORE_OK)
        e = store_pg_run(st,
                         "UPDATE refunds SET state = 'unknown',"
                         " error = 'gateway stopped during refundPayment; outcome unknown'"
                         " WHERE state = 'sending' AND owner IN " STORE_PG_DEAD,
                         0, NULL);
    if (e == STORE_OK)
        e = store_pg_run(st, "DELETE FROM idempotency WHERE status = 0 AND owner IN " STORE_PG_GONE,
                         0, NULL);
    /* invoice.unknown_outcome, refund.in_doubt: the caller holds its
     * connection, so this only asks for a run. */
    if (e == STORE_OK)
        store_pg_events_number(st);
    return e;
}

store_err store_pg_migrate(store *st, buf *err)
{
    store_err e;
    PGresult *r = store_pg_exec(st, "SELECT pg_advisory_lock(" STORE_PG_LOCK_KEY ")", 0, NULL, &e);
    PQclear(r);
    if (e != STORE_OK) {
        buf_printf(err, "cannot take the migration lock: %s", PQerrorMessage(store_pg_conn(st)));
        return STORE_IO;
    }
    int version = 0;
    e = store_pg_run(st, "CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)", 0,
                     NULL);
    if (e == STORE_OK) {
        r = store_pg_exec(st, "SELECT max(version) FROM schema_version", 0, NULL, &e);
        if (r != NULL && PQntuples(r) == 1)
            version = (int)store_pg_get_i64(r, 0, 0);
        PQclear(r);
    }
    if (e != STORE_OK) {
        buf_printf(err, "cannot read the schema version: %s", PQerrorMessage(store_pg_conn(st)));
        goto unlock;
    }
    if (version > STORE_PG_SCHEMA_VERSION) {
        buf_printf(err, "database schema version %d is newer than this seqr-gateway (%d)", version,
                   STORE_PG_SCHEMA_VERSION);
        e = STORE_SCHEMA_NEWER;
        goto unlock;
    }
    for (; version < STORE_PG_SCHEMA_VERSION; version++) {
        char v[24];
        const char *p[] = {store_pg_i64(v, version + 1)};
        e = store_pg_run(st, "BEGIN", 0, NULL);
        if (e == STORE_OK)
            e = store_pg_run(st, store_pg_migrations[version], 0, NULL);
        if (e == STORE_OK)
            e = store_pg_run(st, "INSERT INTO schema_version(version) VALUES($1::integer)", 1, p);
        if (e == STORE_OK)
            e = store_pg_run(st, "COMMIT", 0, NULL);
        if (e != STORE_OK) {
            buf_printf(err, "migrating the database to schema %d failed: %s", version + 1,
                       PQerrorMessage(store_pg_conn(st)));
            store_pg_run(st, "ROLLBACK", 0, NULL);
            goto unlock;
        }
    }
    /* This instance: its id marks its intents, keys and leases. */
    char host[64] = "";
    if (gethostname(host, sizeof host - 1) != 0)
        snprintf(host, sizeof host, "?");
    char name[96];
    snprintf(name, sizeof name, "%s:%ld", host, (long)getpid());
    const char *p[] = {name};
    r = store_pg_exec(st,
                      "INSERT INTO gateway_instances(name, started_at, heartbeat_at)"
                      " VALUES($1, " STORE_PG_NOW ", " STORE_PG_NOW ") RETURNING id",
                      1, p, &e);
    if (r != NULL)
        st->pg->instance = store_pg_get_i64(r, 0, 0);
    PQclear(r);
    if (e == STORE_OK) {
        char id[24];
        const char *pl[] = {store_pg_i64(id, st->pg->instance)};
        r = store_pg_exec(st, "SELECT pg_advisory_lock(" STORE_PG_LIVE_KEY ", $1::integer)", 1, pl,
                          &e);
        PQclear(r);
    }
    if (e == STORE_OK)
        e = store_pg_recover_dead(st);
    if (e != STORE_OK)
        buf_printf(err, "cannot register this gateway: %s", PQerrorMessage(store_pg_conn(st)));
unlock:;
    store_err unlocked;
    r = store_pg_exec(st, "SELECT pg_advisory_unlock(" STORE_PG_LOCK_KEY ")", 0, NULL, &unlocked);
    PQclear(r);
    return e == STORE_OK ? unlocked : e;
}

store_err store_pg_schema_versions(store *st, int *db_version, int *known)
{
    *known = STORE_PG_SCHEMA_VERSION;
    *db_version = STORE_PG_SCHEMA_VERSION;
    store_pg_acquire_live(st);
    store_pg_internal(true);
    store_err e;
    PGresult *r = store_pg_exec(st, "SELECT max(version) FROM schema_version", 0, NULL, &e);
    store_pg_internal(false);
    store_pg_release(st);
    if (r == NULL)
        return e;
    if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
        *db_version = (int)store_pg_get_i64(r, 0, 0);
    PQclear(r);
    return STORE_OK;
}
