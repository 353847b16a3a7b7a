/* store.h — the gateway's SQLite store: invoices, status history, refunds,
 * receipts, reconciliation periods, terminals and idempotency keys.
 *
 * One connection guarded by a mutex, so every function is thread-safe (one
 * connection on purpose: a second one that checkpoints while this one writes
 * can hit SQLite's WAL-reset race, see docs/design.md). The database runs in
 * WAL mode with busy_timeout and foreign_keys=ON; the schema version lives in
 * PRAGMA user_version and store_open() applies forward migrations. Every
 * state change is one transaction, and every write function returns only
 * once its transaction is on disk (fdatasync of the WAL), except
 * store_invoice_begin(). Concurrent writers share fdatasyncs (group commit
 * without a thread of its own: see store_sync in store/db.c).
 * store_batch_begin()/store_batch_commit() let the poller group many status
 * updates into one transaction. After a failed fdatasync every write fails
 * with STORE_IO and store_counts() reports the failure.
 *
 * Write before you call: an invoice or refund is recorded as an intent
 * ("sending") before the SOAP call and completed after it. store_open()
 * turns intents left by a crash into "unknown" so they stay visible.
 *
 * Times are Unix milliseconds (int64). Amounts are int64 minor units.
 * Structs returned to the caller are owned by the caller; release them with the
 * matching *_clear() function. */
#ifndef SEQR_STORE_H
#define SEQR_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "seqr/seqr.h"

typedef enum {
    STORE_OK = 0,
    STORE_NOT_FOUND, /* no such row */
    STORE_CONFLICT,  /* uniqueness or a business rule inside a transaction */
    STORE_IO,        /* SQLite failed (disk, corruption, busy past timeout) */
    STORE_SCHEMA_NEWER /* the database was migrated by a newer seqr-gateway */
} store_err;

const char *store_strerror(store_err err);

typedef struct store store;

/* Copies the database into dest_path, which must not exist, as one
 * self-contained file (rollback-journal mode, fsynced, mode 0600 under the
 * daemon's umask). Uses SQLite's online backup API on the store's own
 * connection, a few hundred pages per step with the store unlocked in
 * between, so requests and polls go on; a write made meanwhile (always
 * through this connection) is carried into the copy, which is therefore a
 * consistent snapshot as of the end. No checkpoint is run from outside (see
 * docs/design.md). pages gets the copy's page count; err says why on
 * failure (dest_path is then removed). */
store_err store_backup(store *st, const char *dest_path, int64_t *pages, buf *err);

/* Opens (creating if needed) the database at path and migrates it. Only one
 * store (one gateway process) may have a database open at a time: a second
 * store_open() of the same file fails while the first is open. On error
 * returns STORE_IO with a message in err.
 *
 * When path is a PostgreSQL URL (store_is_url), the store is that database
 * instead (store/pg/pg.h): created schema and migrations under an advisory
 * lock, and any number of gateways may have it open at once; each polls the
 * invoices it holds leases on (store_lease_sync). err never holds the URL's
 * password. A database whose schema is newer than this build knows is
 * refused unchanged with STORE_SCHEMA_NEWER (and the versions in err). */
store_err store_open(const char *path, store **out, buf *err);
/* The schema version the database is at now (db_version) and the one this
 * build knows (known). On PostgreSQL another gateway, started from a newer
 * build, may migrate the database while this one runs; its statements were
 * written for the older schema, so it must stop (main.c does, via the
 * poller's lease thread). A SQLite database is open in one gateway only and
 * migrated only by store_open, so there both are this build's version and
 * nothing is read. STORE_IO when the database cannot be read. */
store_err store_schema_versions(store *st, int *db_version, int *known);
/* True when location is a PostgreSQL URL (postgresql:// or postgres://). */
bool store_is_url(const char *location);
/* Appends location to out with the password of a URL replaced by "***"
 * (the form for logs and error messages). */
void store_location_redact(const char *location, buf *out);
void store_close(store *st);

/* Moves a SQLite store into PostgreSQL (seqr-gateway --copy-store-to): opens
 * the SQLite file as a gateway would (refused while a gateway holds it;
 * migrated; intents in doubt become unknown outcomes) and copies every row
 * of invoices, status history, refunds, receipts, periods, terminals
 * (sealed passwords as they are: the gateways on PostgreSQL need the same
 * key file), idempotency keys and the events outbox, in the columns both
 * schemas have, into url in one transaction, refused when url already
 * holds invoices (STORE_CONFLICT); then sets its id sequences past the
 * copied ids. report is called per table PostgreSQL has, with the rows
 * copied; notes gets
 * a line for each table or column the PostgreSQL schema has no place for
 * (not copied). err says why on failure, never with the URL's password. */
typedef void (*store_copy_fn)(const char *table, int64_t rows, void *ud);
store_err store_copy_to_pg(const char *sqlite_path, const char *url, store_copy_fn report, void *ud,
                           buf *notes, buf *err);

/* Current Unix time in milliseconds. */
int64_t store_now_ms(void);

/* Invoice send states (the gateway's own bookkeeping around sendInvoice). */
#define STORE_SEND_SENDING "sending"   /* intent recorded, call under way */
#define STORE_SEND_SENT "sent"         /* SEQR answered with a reference */
#define STORE_SEND_REJECTED "rejected" /* SEQR answered with an error: no invoice exists */
#define STORE_SEND_UNKNOWN "unknown"   /* no answer (timeout/crash): outcome unknown */

typedef struct {
    int64_t id;          /* gateway-local id */
    char reference[64];  /* SEQR invoiceReference; "" until sent */
    char send_state[16]; /* STORE_SEND_* */
    seqr_status status;  /* ISSUED once sent; SEQR_STATUS_UNKNOWN before (stored as
                          * its name: the text is converted here, at the store) */
    int64_t version;     /* latest invoiceVersion received */
    char qr_code[256];
    char currency[4];
    int64_t total;
    char terminal_id[64]; /* "" = the configured terminal */
    char payment_mode[40];
    char client_reference[40];
    char ers_reference[64];
    char *doc_json;     /* malloc'd: the invoice as the webshop gave it (normalised) */
    char *receipt_json; /* malloc'd or NULL: SEQR's receipt once PAID */
    bool receipt_submitted;
    int64_t refunded;     /* refunds done, sending or unknown (never over-refund) */
    bool has_refunds;     /* any refund row at all, failed ones included */
    bool polling_stopped; /* SEQR no longer knows it (54): not polled */
    char last_error[256];
    int64_t created_at, updated_at, expires_at, paid_at;
    char notify_token[40]; /* secret for POST /seqr/notify/{ref}?token= */
    char pay_token[40];    /* a payment page token made before schema 9 (whole, looked up by
                            * store_invoice_get_pay_token); "" for invoices since */
    char pay_secret[40];   /* the payment page's secret since schema 9: the token is
                            * "<reference>.<pay_secret>" (service/checkout.c); "" = none */
    int64_t issued_at;     /* when it was sent (the ISSUED history entry); 0 = not sent,
                            * or sent before schema 9 (its ISSUED row is in the history) */
    const char *client_invoice_id; /* for store_invoice_begin only: doc_json's clientInvoiceId
                                    * when the caller has it at hand (borrowed); NULL: the
                                    * store reads it from doc_json. Reads leave it NULL. */
} store_invoice;

void store_invoice_clear(store_invoice *inv);

/* Records the intent to send an invoice. Fills inv->id (and timestamps). Only
 * currency, total, terminal_id, payment_mode, client_reference, doc_json,
 * client_invoice_id, notify_token, pay_secret, pay_token and expires_at are read from inv. The one
 * write that is not durable when it returns: it survives a crash of the process, and
 * store_invoice_sent() or store_invoice_send_failed() puts it on disk with the outcome. */
store_err store_invoice_begin(store *st, store_invoice *inv);
/* Completes the send of inv (as filled by store_invoice_begin): reference,
 * QR code, status ISSUED, version 0. Durable when it returns. On success inv
 * is updated to match the stored row, so the caller needs no read-back.
 * Concurrent callers share fdatasyncs, so the outcome step scales with the
 * number of requests in flight instead of the disk's fsync rate. */
store_err store_invoice_sent(store *st, store_invoice *inv, const char *reference,
                             const char *qr_code);
/* Marks a send as rejected or unknown (STORE_SEND_*), with an error text. */
store_err store_invoice_send_failed(store *st, int64_t id, const char *send_state,
                                    const char *error);
/* Settles an invoice whose sendInvoice outcome is unknown, as the operator
 * found it in SEQR's reconciliation report. With a reference, SEQR has the
 * invoice: it becomes sent, ISSUED, version 0 (issued now: its history entry), and is
 * polled like any other from now on. With reference NULL, SEQR has none: it
 * becomes rejected. The note of the settlement goes before the original error.
 * STORE_NOT_FOUND for no such id. STORE_CONFLICT when its outcome is known
 * (was receives its send_state), or when another invoice has the reference
 * (was is STORE_SEND_UNKNOWN: its state was not the reason). Durable. */
store_err store_invoice_resolve(store *st, int64_t id, const char *reference, char was[16]);

/* Reads by SEQR reference or by local id. */
store_err store_invoice_get(store *st, const char *reference, store_invoice *out);
store_err store_invoice_get_id(store *st, int64_t id, store_invoice *out);
/* Reads by a payment page token made before schema 9 (exact match; "" never
 * matches). Newer tokens name their invoice's reference: service/checkout.c. */
store_err store_invoice_get_pay_token(store *st, const char *token, store_invoice *out);

/* Lists sent invoices newest first, optionally by status (NULL = any), with
 * id < before_id (0 = from the newest). Calls fn for each (inv borrowed for the
 * call); stops early when fn returns false. *last_id receives the id of the last
 * row handed out (0 if none), *more whether more rows follow. */
typedef bool (*store_invoice_fn)(const store_invoice *inv, void *ud);
store_err store_invoice_list(store *st, const char *status, int64_t before_id, int limit,
                             store_invoice_fn fn, void *ud, int64_t *last_id, bool *more);

/* Stores a status answer. Appends a history row when status or version changed.
 * ers_reference and receipt_json may be NULL (kept as they were). Sets paid_at
 * the first time status is PAID. *changed (may be NULL) tells whether anything
 * changed. Status only moves forward: an answer with an older version than
 * the stored one, or another status than a stored final one (PAID, CANCELED,
 * FAILED), is stale: STORE_CONFLICT, nothing changes. */
store_err store_invoice_set_status(store *st, const char *reference, seqr_status status,
                                   int64_t version, const char *ers_reference,
                                   const char *receipt_json, bool *changed);
/* Replaces the document and total (updateInvoice). */
store_err store_invoice_set_doc(store *st, const char *reference, const char *doc_json,
                                int64_t total);
/* Sets the total alone (a reservation committed for less: the refund cap). */
store_err store_invoice_set_total(store *st, const char *reference, int64_t total);
store_err store_invoice_set_receipt_submitted(store *st, const char *reference);
store_err store_invoice_stop_polling(store *st, const char *reference, const char *error);
store_err store_invoice_set_error(store *st, const char *reference, const char *error);

/* Status history of an invoice, oldest first, as a JSON array text
 * [{"status","version","at"}] (malloc'd into *json). */
store_err store_invoice_history(store *st, int64_t invoice_id, char **json);

/* Calls fn for every sent, non-final invoice that is still polled (restart). */
store_err store_pending(store *st, store_invoice_fn fn, void *ud);
/* Calls fn for every PAID invoice whose receipt has not been submitted yet
 * (an automatic receipt cut short by a crash or a SEQR outage). */
store_err store_receipts_due(store *st, store_invoice_fn fn, void *ud);
/* Counts send and refund intents of unknown outcome (from small partial
 * indexes: cheap enough for every /healthz). STORE_IO also after a failed
 * fdatasync (the daemon must be restarted). How many invoices are pending is
 * the poller's to say. */
store_err store_counts(store *st, int64_t *unknown);

/* --- leases: which pending invoices this gateway polls ---
 * With SQLite the one gateway polls every pending invoice (store_pending at
 * start, then the ones it sends). With PostgreSQL each pending invoice is
 * leased to one live gateway: store_invoice_sent() leases a new invoice to
 * the gateway that sent it, and the poller calls store_lease_sync() about
 * every STORE_LEASE_RENEW_MS. It renews this gateway's heartbeat and leases,
 * settles the intents of gateways that died (as store_open() does after a
 * crash), takes over pending invoices whose lease ran out or that nobody
 * holds, up to a fair share (pending / live gateways), and gives back what
 * is over that share so a gateway that joins gets work. gained is called for
 * each invoice newly held (poll it), lost for each reference no longer held
 * (stop polling it; another gateway has it). *held receives how many this
 * gateway holds. With SQLite nothing is gained or lost and *held is -1. */
#define STORE_LEASE_RENEW_MS 1000
typedef void (*store_lease_lost_fn)(const char *reference, void *ud);
store_err store_lease_sync(store *st, store_invoice_fn gained, store_lease_lost_fn lost, void *ud,
                           int64_t *held);
/* How many other live gateways share this store: *n (0 with SQLite). */
store_err store_other_gateways(store *st, int64_t *n);

/* For tests: after skip more writes succeed, the next count writes fail with
 * STORE_IO and change nothing, as a full disk would make them. A write is one
 * write function's transaction (store_invoice_begin, ..., also each write
 * inside the poller's batch) or the batch's commit. count 0 turns it off.
 * PostgreSQL counts the same way: a write function's transaction, or its
 * one write statement outside any (it has no batch, so no batch commit),
 * and never the lease sync's own writes. Costs one comparison per write. */
void store_fail_writes(store *st, int skip, int count);

/* Groups the following calls into one transaction (poller ticks). Other
 * threads wait until store_batch_commit(). Nested calls are not allowed. */
void store_batch_begin(store *st);
store_err store_batch_commit(store *st);

/* --- refunds --- */
#define STORE_REFUND_SENDING "sending"
#define STORE_REFUND_DONE "done"
#define STORE_REFUND_FAILED "failed"
#define STORE_REFUND_UNKNOWN "unknown"

/* Records a refund intent of amount for the invoice, inside one transaction
 * that checks amount <= paid total - refunded (STORE_CONFLICT otherwise) and that
 * no earlier refund's outcome is unknown or under way (STORE_CONFLICT). *refund_id
 * receives the new id. */
store_err store_refund_begin(store *st, int64_t invoice_id, int64_t amount, const char *title,
                             int64_t *refund_id);
/* Completes a refund: state is STORE_REFUND_DONE (with ers_reference),
 * STORE_REFUND_FAILED (SEQR said no: the amount is released) or
 * STORE_REFUND_UNKNOWN (no answer: the amount stays reserved). */
store_err store_refund_finish(store *st, int64_t refund_id, const char *state,
                              const char *ers_reference, const char *error);
/* Refunds of an invoice, oldest first, as a JSON array text (malloc'd):
 * [{"id","amount","status","ersReference","title","createdAt","error"}]. */
store_err store_refund_list(store *st, int64_t invoice_id, char **json);
/* One refund as a JSON object text (malloc'd). */
store_err store_refund_get(store *st, int64_t refund_id, char **json);
/* Settles a refund whose outcome is unknown, once the operator has looked it
 * up in SEQR's reconciliation report: state is STORE_REFUND_DONE (it happened:
 * the amount stays refunded; ers_reference may be "") or STORE_REFUND_FAILED
 * (it did not: the amount is released). The refund must belong to invoice_id
 * (STORE_NOT_FOUND otherwise) and still be unknown (STORE_CONFLICT otherwise,
 * with its state copied to was). Its error keeps the original error text
 * after a note of the settlement. Durable. */
store_err store_refund_resolve(store *st, int64_t invoice_id, int64_t refund_id, const char *state,
                               const char *ers_reference, char was[16]);
/* The outcomes in doubt, oldest first, at most STORE_UNKNOWN_LIST_MAX of each
 * kind, as a JSON object text (malloc'd): {"invoices": [{"id",
 * "clientInvoiceId", "totalAmount", "currency", "createdAt", "expiresAt",
 * "error"}], "refunds": [{"invoiceReference", "id", "amount", "currency",
 * "title", "createdAt", "error"}]}; money in minor units, times in ms. */
#define STORE_UNKNOWN_LIST_MAX 1000
store_err store_unknown_list(store *st, char **json);

/* --- receipts submitted --- */
/* Records a submitPaymentReceipt: what was sent (data_b64, the base64
 * receiptData, may be NULL) and SEQR's resultCode (0 = accepted). */
store_err store_receipt_add(store *st, int64_t invoice_id, const char *mime_type,
                            const char *receipt_type, const char *data_b64, int result_code);
typedef struct {
    char mime_type[104];
    char receipt_type[40];
    int64_t data_len;     /* length of the base64 text */
    int64_t submitted_at; /* ms */
    char *data_b64;       /* malloc'd or NULL: the receiptData as submitted */
} store_receipt;
/* The latest receipt SEQR accepted for invoice_id (STORE_NOT_FOUND when none).
 * Release with store_receipt_clear(). */
store_err store_receipt_last(store *st, int64_t invoice_id, store_receipt *out);
void store_receipt_clear(store_receipt *r);

/* --- reconciliation periods --- */
store_err store_period_add(store *st, const char *period_id, const char *terminal_id);

/* --- terminals registered through this gateway --- */
/* Gives the store the key that seals terminal passwords (secretbox.h: AES-256-GCM,
 * bound to the terminal id) and seals any stored in plain text by an older
 * version. Without a key, store_terminal_add and store_terminal_get fail with
 * STORE_IO: a password is never stored or read in plain text. The key is
 * copied. */
store_err store_set_secret_key(store *st, const unsigned char key[32]);
typedef struct {
    char terminal_id[64];
    char external_id[128];
    char name[128];
    char password[128]; /* secret */
    char seqr_id[128];
    char cashier_id[128]; /* "" = none of its own (the configured default applies) */
    bool unregistered;
    int64_t created_at;
} store_terminal;
store_err store_terminal_add(store *st, const store_terminal *t);
store_err store_terminal_get(store *st, const char *terminal_id, store_terminal *out);
store_err store_terminal_set_seqr_id(store *st, const char *terminal_id, const char *seqr_id);
store_err store_terminal_unregister(store *st, const char *terminal_id);
/* Calls fn for every sent, non-final, polled invoice of a terminal (the ones
 * unregistering it would orphan), oldest first. */
store_err store_terminal_open_invoices(store *st, const char *terminal_id, store_invoice_fn fn,
                                       void *ud);

/* --- idempotency keys --- */
/* A key is claimed within a scope (a digest of the API key that presented
 * it) for one request, identified by request_hash (a digest of the canonical
 * request; the request itself is not kept). Keys older than ttl_ms are pruned
 * first, so an expired key is new again. Returns STORE_OK when the key is new
 * (the caller must later store_idem_finish or store_idem_release it);
 * STORE_CONFLICT with *status and *response (malloc'd) filled when the key is
 * held: *same_request tells whether request_hash matches, and *status is 0
 * while the first request is still running. Rows kept from schema 3 match
 * every scope and every request. */
store_err store_idem_claim(store *st, const char *scope, const char *key, const char *request_hash,
                           int64_t ttl_ms, bool *same_request, int *status, char **response);
store_err store_idem_finish(store *st, const char *scope, const char *key, int status,
                            const char *response);
/* Forgets a claimed key (the request failed before anything happened). */
store_err store_idem_release(store *st, const char *scope, const char *key);
/* Deletes every key created before older_than_ms (ms since the epoch). */
store_err store_idem_prune(store *st, int64_t older_than_ms);

/* >>> events: the outbox (see docs/design.md "Events and webhooks").
 * Event rows are written by triggers in the transaction of the change they
 * tell of; these functions read them and keep their delivery state. */
typedef struct {
    int64_t id;
    char type[40];       /* "invoice.paid", "refund.succeeded", ... */
    int64_t invoice_id;  /* local id of the invoice the event belongs to */
    int64_t refund_id;   /* 0 unless a refund event */
    int64_t at;          /* ms */
    char *data;          /* malloc'd: the object after the change (store units) */
    char state[16];      /* pending | delivered | failed | skipped */
    int attempts;
    int64_t next_at;     /* ms: no attempt before */
    /* Filled by store_events_due() only (malloc'd or NULL): the invoice's own
     * webhookUrl and notificationUrl from its document. */
    char *webhook_url;
    char *notification_url;
} store_event;
void store_event_clear(store_event *ev);
typedef bool (*store_event_fn)(const store_event *ev, void *ud);

/* Called (with the store's lock held: it must only signal) after a
 * transaction that wrote at least one event committed, with the local ids of
 * the invoices the events belong to (invoice_ids NULL and n 0: too many to
 * name, any invoice may have news); deliver is false when every event it
 * wrote was written skipped (nothing for the webhook worker to do). */
typedef void (*store_event_hook)(void *ud, const int64_t *invoice_ids, size_t n, bool deliver);
/* Asked (with the store's lock held) before a commit's events are read to
 * name their invoices: false when nobody waits for a particular invoice.
 * The store then skips that read when it also knows that no event can wait
 * for a delivery (store_set_delivery with can_sign false: all are written
 * skipped) and tells the hook "any invoice" (invoice_ids NULL, deliver
 * false). NULL: the events are always read. */
typedef bool (*store_event_ids_wanted)(void *ud);
void store_set_event_hook(store *st, store_event_hook fn, store_event_ids_wanted wanted, void *ud);

/* Tells the store what the webhook worker can deliver, so that an event
 * with nowhere to go is written skipped at once instead of pending (it then
 * costs no delivery state, no index entry of pending events and no later
 * write): with can_sign false (no [webhooks] secret) every event; without
 * default_url ([webhooks] url empty) the events of invoices that have no
 * webhookUrl of their own (nor, for invoice.paid, a notificationUrl). Until
 * it is called every event is written pending. Kept in the database
 * (gateways sharing one PostgreSQL must have the same [webhooks]; the last
 * to start decides); sets *changed when it differed from what was kept. */
store_err store_set_delivery(store *st, bool can_sign, bool default_url, bool *changed);

/* Events with id > after, oldest first, at most limit, only those of invoice
 * invoice_id unless it is 0. */
store_err store_events_after(store *st, int64_t after, int64_t invoice_id, int limit,
                             store_event_fn fn, void *ud);
/* The highest event id (0 when none). */
store_err store_events_last_id(store *st, int64_t *id);
/* Deliverable events: the oldest pending event of each invoice, due by now,
 * never tried ones first, then by due time, at most limit (per-invoice order: a later event waits for
 * the earlier one to end). */
store_err store_events_due(store *st, int64_t now, int limit, store_event_fn fn, void *ud);
/* Records one delivery attempt (url, HTTP status or 0, latency, error text or
 * "") and moves the event to state with next_at, in one transaction. Not
 * synced to disk on its own (a lost record means one more delivery, which
 * at-least-once allows). */
store_err store_event_attempt(store *st, int64_t event_id, const char *url, int http_status,
                              int64_t latency_ms, const char *error, const char *state,
                              int64_t next_at);
/* Marks an event skipped (no URL to deliver it to). */
store_err store_event_skip(store *st, int64_t event_id);
/* Puts an event back in the queue (pending, due now). STORE_NOT_FOUND. */
store_err store_event_redeliver(store *st, int64_t event_id);
/* Pending events and the time of the oldest (0 when none). */
store_err store_events_backlog(store *st, int64_t *count, int64_t *oldest_at);
/* Recent delivery attempts, failed ones first, then newest first, as a JSON
 * array text (malloc'd): [{"eventId","type","url","at","httpStatus",
 * "latencyMs","error","eventState"}]. */
store_err store_delivery_list(store *st, int limit, char **json);
/* <<< events */

#endif
