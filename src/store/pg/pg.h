/* store/pg/pg.h — the PostgreSQL backend of store.h, behind the same public
 * functions as the SQLite one: a public function of src/store/ hands over to
 * its store_pg_* twin here when st->pg is set (store_open() of a
 * postgresql:// URL). Nothing outside src/store/ includes this header.
 *
 * A small pool of libpq connections per store (STORE_PG_POOL, and one more
 * for the numbering thread, STORE_PG_NUMBER_SLOT): a thread
 * takes one for each store call (store_pg_acquire, recursive within the
 * thread) and gives it back after (libpq connections are not thread-safe,
 * so one thread at a time uses each), in autocommit or in explicit
 * transactions; every commit is durable when it returns (the server's
 * synchronous_commit, left at its default "on"), except the invoice intent,
 * which commits with synchronous_commit off like SQLite's (store.h), the
 * invoice outcome, which store_pg_events_number()'s durable commit flushes
 * before the call returns (store_pg_invoice_sent), and skipping an event
 * (store_pg_event_skip). Statements with parameters run as named prepared
 * statements of their connection (prepared.c).
 *
 * Several gateways share one database. Each registers itself in
 * gateway_instances at open and keeps a heartbeat there (store_lease_sync);
 * intents and claimed idempotency keys carry the instance that wrote them, so
 * crash recovery only settles those of dead instances, and pending invoices
 * carry a lease (lease_owner, valid while that instance lives; lease_until
 * is only informative) so that exactly one live instance polls each. Times of liveness are the
 * server's clock, so the hosts' clocks need not agree. */
#ifndef SEQR_STORE_PG_H
#define SEQR_STORE_PG_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "store.h"

/* How long a heartbeat lasts without renewal (the 3000 in STORE_PG_DEAD);
 * the poller renews about every STORE_LEASE_RENEW_MS, so an instance whose
 * host vanishes loses its invoices to the others within
 * STORE_PG_LEASE_TTL_MS + STORE_LEASE_RENEW_MS, one whose process dies
 * within STORE_LEASE_RENEW_MS. */
#define STORE_PG_LEASE_TTL_MS 3000

/* Connections per gateway: requests on different connections commit in
 * parallel (and share the server's WAL flushes), where one connection under
 * one mutex made every durable commit wait for the one before it. */
#define STORE_PG_POOL 8
/* And one more, the numbering thread's own (number.c), so that the run a
 * writer waits for never waits for a connection behind other writers. */
#define STORE_PG_NUMBER_SLOT STORE_PG_POOL
#define STORE_PG_CONNS (STORE_PG_POOL + 1)

/* A lost connection (the server restarted, an HA failover, a network blip,
 * pg_terminate_backend) is re-established when its slot is next taken
 * (store_pg_acquire): the call that hit it fails with STORE_IO, later ones
 * run on the new connection. No more than one attempt per slot every
 * STORE_PG_RETRY_MS while the server stays away, so calls fail fast. */
#define STORE_PG_RETRY_MS 200

/* Statements prepared per connection at most (prepared.c); more distinct
 * texts run unnamed, parsed on each call as before. The store has fewer. */
#define STORE_PG_PREPARED_MAX 256

/* Steps of one store_pg_exec_steps() exchange at most. */
#define STORE_PG_STEPS_MAX 8

struct store_pg {
    PGconn *conns[STORE_PG_CONNS]; /* conns[0] also holds the liveness lock */
    /* Each connection's prepared statements (prepared.c); the slot's holder
     * uses them, store_pg_revive() empties them with a new connection. */
    struct store_pg_prepared *prepared[STORE_PG_CONNS];
    bool busy[STORE_PG_CONNS];
    int64_t retry_at[STORE_PG_CONNS]; /* monotonic ms: next reconnect attempt (slot's holder) */
    /* Left in a state the next exchange cannot use (store_pg_exec_steps):
     * connected again when next taken (slot's holder). */
    bool broken[STORE_PG_CONNS];
    pthread_mutex_t lock; /* guards busy, live_waiting and down */
    pthread_cond_t freed;
    /* Threads waiting for conns[0] (store_pg_acquire_live): while one does,
     * no other taker gets it, so the heartbeat is never starved by requests
     * (a heartbeat 3 s late makes the other gateways count this one dead). */
    int live_waiting;
    int64_t instance; /* our row in gateway_instances */
    /* An outage is under way: logged when it starts and when it ends, not
     * per call. */
    bool down;
    /* Written by the holder of conns[0] only. live_lost: conns[0] was
     * connected again and the liveness lock (pg.h) is not yet ours again;
     * leases_lapsed: since then other gateways may have taken our leases
     * and settled our intents (the next lease sync tells the poller what
     * it no longer holds); last_sync_ms: monotonic time of the last good
     * lease sync. */
    bool live_lost;
    bool leases_lapsed;
    int64_t last_sync_ms;
    struct store_pg_listener *listener; /* listen.c; NULL until an event hook is set */
    struct store_pg_numberer *numberer; /* number.c; from open to close */
};

/* Each instance holds the session advisory lock (STORE_PG_LIVE_KEY, its id)
 * while its connection lives: a gateway that dies with its process loses it
 * at once (the server sees the connection close), so the others take over
 * its invoices on their next sync instead of after the lease TTL; a host
 * that vanishes without closing its connections is caught by the TTL. */
#define STORE_PG_LIVE_KEY "1936028263"
/* Instances whose connection is gone (no live lock), as an SQL condition
 * on gateway_instances.id. */
#define STORE_PG_LOCK_GONE                                                                         \
    " id NOT IN (SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory'"                   \
    " AND classid = " STORE_PG_LIVE_KEY " AND objsubid = 2 AND granted)"
/* Instances that are dead by either sign, as an SQL subquery. */
#define STORE_PG_DEAD                                                                              \
    "(SELECT id FROM gateway_instances WHERE heartbeat_at < " STORE_PG_NOW " - 3000"               \
    " OR" STORE_PG_LOCK_GONE ")"
/* Instances whose running Idempotency-Keys may be freed: their connection
 * is gone, or they have been silent for STORE_PG_KEY_HOLD_MS. Not the 3 s of
 * STORE_PG_DEAD: a gateway alive but stalled for a few seconds (its
 * connection still holding the live lock) finishes its requests, and a retry
 * of one of them on another gateway must meet the running key (409), not run
 * the request a second time. Its invoices and refunds under way still go
 * unknown at 3 s (store_pg_recover_dead): their own outcome writes settle
 * that when it comes. */
#define STORE_PG_KEY_HOLD_MS "30000"
#define STORE_PG_GONE                                                                              \
    "(SELECT id FROM gateway_instances WHERE heartbeat_at < " STORE_PG_NOW                         \
    " - " STORE_PG_KEY_HOLD_MS " OR" STORE_PG_LOCK_GONE ")"

/* The outbox (schema.c): the transaction-level advisory lock under which
 * committed events get their ids in batches ("seqrev" in ASCII), the
 * channel of the NOTIFY that tells every gateway of newly numbered events
 * (payload: their invoices' ids, comma-separated, or '' for more than
 * STORE_PG_EVENTS_NOTIFY_MAX of them), and that limit. */
#define STORE_PG_EVENTS_KEY "126875896063350"
#define STORE_PG_EVENTS_CHANNEL "seqr_events"
#define STORE_PG_EVENTS_NOTIFY_MAX "64"

/* The server's clock in Unix ms, as an SQL expression. */
#define STORE_PG_NOW "(extract(epoch from clock_timestamp()) * 1000)::bigint"

/* --- conn.c --- */
store_err store_pg_open(store *st, const char *url, buf *err);
void store_pg_close(store *st);
/* Takes a connection of the pool for this thread (waiting while all are
 * taken); nested calls by the same thread for the same store reuse it.
 * Every store_pg_ call below runs on the thread's connection, or on
 * conns[0] outside any (open, migration, close). */
void store_pg_acquire(store *st);
/* The same for conns[0], the connection that holds the liveness lock (the
 * lease sync runs on it, so a lost one is noticed within a sync). */
void store_pg_acquire_live(store *st);
/* The same for the numbering thread's own connection (STORE_PG_NUMBER_SLOT). */
void store_pg_acquire_number(store *st);
void store_pg_release(store *st);
/* The slot a taker gets now, or -1 (it waits): slot want when free, or for
 * want < 0 a free one of the pool, conns[0] last and never while a thread
 * waits for it (live_waiting). Caller holds pg->lock. */
int store_pg_pick_slot(const struct store_pg *pg, int want);
/* Whether this thread holds a connection of st now. */
bool store_pg_holding(store *st);
/* On conns[0] (store_pg_acquire_live): takes the liveness lock again after a
 * reconnection and renews the heartbeat. False while that is not done (the
 * server may still hold the old session's lock until it sees it gone). */
bool store_pg_relive(store *st);
/* The pool's notice receiver (arg: the slot's pg->broken flag): quiet, and a
 * FATAL or PANIC, the server's last words before it ends the session, marks
 * the slot broken so that its next holder connects it again. Also keeps
 * migrations' NOTICEs out of the log. */
void store_pg_notice(void *arg, const PGresult *r);
/* Monotonic ms. */
int64_t store_pg_mono_ms(void);
/* Store-internal work (lease sync, migrations) that store_fail_writes()
 * must not count as the service's writes: raise around it. */
void store_pg_internal(bool on);
PGconn *store_pg_conn(store *st);
/* Runs sql with n text parameters (NULL = SQL NULL). Returns the result
 * (PQclear it) when it succeeded, NULL otherwise with *e set: STORE_CONFLICT
 * for a unique or check violation, STORE_IO for anything else (logged
 * without the parameters). Caller holds the store lock. */
PGresult *store_pg_exec(store *st, const char *sql, int n, const char *const *params, store_err *e);
/* One statement of store_pg_exec_steps(). */
typedef struct {
    const char *sql; /* one statement */
    int n;
    const char *const *params;
} store_pg_step;
/* Runs the steps in one round trip (libpq's pipeline mode), in order, each
 * as a prepared statement: for a transaction whose statements need no
 * answer from each other (BEGIN, ..., COMMIT). Returns the result of step
 * keep when every step succeeded; NULL otherwise with *e set as by
 * store_pg_exec() for the first that failed (a transaction the steps left
 * open is rolled back). Built against libpq 13, which has no pipeline
 * mode, it runs them one after the other. */
PGresult *store_pg_exec_steps(store *st, const store_pg_step *steps, int nsteps, int keep,
                              store_err *e);
/* The same for statements without rows of interest. Callers of both
 * hold a connection (store_pg_acquire). */
store_err store_pg_run(store *st, const char *sql, int n, const char *const *params);
/* The same for an UPDATE meant to change a row: STORE_NOT_FOUND when it
 * changed none. */
store_err store_pg_update(store *st, const char *sql, int n, const char *const *params);
/* BEGIN on a connection taken here; store_pg_tx_end() commits on
 * STORE_OK, rolls back otherwise, and gives the connection back. */
store_err store_pg_tx_begin(store *st);
store_err store_pg_tx_end(store *st, store_err result);
/* Runs a query whose first column of its one row is a text (JSON): copies
 * it to *out (malloc'd). STORE_NOT_FOUND without a row or for NULL. Takes
 * the lock. */
store_err store_pg_query_text(store *st, const char *sql, int n, const char *const *params,
                              char **out);
/* A malloc'd copy of a column, NULL for NULL (aborts when out of memory). */
char *store_pg_dup(const PGresult *r, int row, int col);
void store_pg_copy(const PGresult *r, int row, int col, char *dst, size_t dstlen);
/* Formats an int64 into a parameter buffer. */
const char *store_pg_i64(char dst[24], int64_t v);
int64_t store_pg_get_i64(const PGresult *r, int row, int col);

/* --- prepared.c: named prepared statements per connection --- */
struct store_pg_prepared;
/* NULL when out of memory (the connection then runs everything unnamed). */
struct store_pg_prepared *store_pg_prepared_new(void);
void store_pg_prepared_free(struct store_pg_prepared *p);
/* Forgets every statement (a new connection: the server has none of them). */
void store_pg_prepared_reset(struct store_pg_prepared *p);
/* The name of sql's prepared statement on c (which p belongs to), preparing
 * it first when new (one round trip, once). NULL when it cannot: p is NULL
 * or full (run it unnamed), or preparing failed: *failed then holds the
 * server's result (PQclear it), or NULL when libpq had none. */
const char *store_pg_prepared_name(struct store_pg_prepared *p, PGconn *c, const char *sql, int n,
                                   PGresult **failed);

/* --- schema.c --- */
/* Brings the database to the current schema under a session advisory lock
 * (two gateways starting at once: one migrates, the other waits and finds
 * it done), then registers this instance and settles what dead instances
 * left in doubt. */
store_err store_pg_migrate(store *st, buf *err);
/* store_schema_versions() on PostgreSQL: reads schema_version on the lease
 * sync's connection (its caller is the lease thread). */
store_err store_pg_schema_versions(store *st, int *db_version, int *known);
/* Crash recovery of instances whose heartbeat stopped: their send and
 * refund intents become unknown, their running idempotency keys are freed,
 * their leases are dropped. Caller holds the store lock, outside a
 * transaction. */
store_err store_pg_recover_dead(store *st);

/* --- invoices.c --- */
store_err store_pg_invoice_begin(store *st, store_invoice *inv);
store_err store_pg_invoice_sent(store *st, store_invoice *inv, const char *reference,
                                const char *qr_code);
store_err store_pg_invoice_send_failed(store *st, int64_t id, const char *send_state,
                                       const char *error);
store_err store_pg_invoice_get(store *st, const char *reference, int64_t id, store_invoice *out);
store_err store_pg_invoice_set_status(store *st, const char *reference, const char *status,
                                      int64_t version, const char *ers_reference,
                                      const char *receipt_json, bool *changed);
store_err store_pg_invoice_history(store *st, int64_t invoice_id, char **json);
store_err store_pg_pending(store *st, store_invoice_fn fn, void *ud);
store_err store_pg_counts(store *st, int64_t *unknown);
/* Hands every row of r (STORE_PG_INVOICE_COLUMNS) to fn until it says stop. */
void store_pg_each_invoice(const PGresult *r, store_invoice_fn fn, void *ud);
/* The columns store_pg_read_invoice() reads, selected from invoices i. */
#define STORE_PG_INVOICE_COLUMNS                                                                   \
    "i.id, coalesce(i.reference, ''), i.send_state, i.status, i.version, i.qr_code, i.currency,"   \
    " i.total, i.terminal_id, i.payment_mode, i.client_reference, i.ers_reference, i.doc,"         \
    " i.receipt, i.receipt_submitted, i.polling_stopped, i.last_error, i.created_at,"              \
    " i.updated_at, i.expires_at, i.paid_at, i.notify_token,"                                      \
    " (SELECT coalesce(sum(amount), 0) FROM refunds r WHERE r.invoice_id = i.id"                   \
    "  AND r.state <> 'failed'),"                                                                  \
    " EXISTS(SELECT 1 FROM refunds r WHERE r.invoice_id = i.id), i.pay_token, i.pay_secret,"       \
    " i.issued_at"
void store_pg_read_invoice(const PGresult *r, int row, store_invoice *inv);

store_err store_pg_invoice_list(store *st, const char *status, int64_t before_id, int limit,
                                store_invoice_fn fn, void *ud, int64_t *last_id, bool *more);
/* Runs an UPDATE of one invoice by reference ($1), setting updated_at ($2)
 * and the rest of the SET list from text1 ($3) and int2 ($4) when given. */
store_err store_pg_update_ref(store *st, const char *sql, const char *reference, const char *text1,
                              const int64_t *int2);
store_err store_pg_receipts_due(store *st, store_invoice_fn fn, void *ud);

/* --- money.c: refunds and settling outcomes in doubt --- */
store_err store_pg_refund_begin(store *st, int64_t invoice_id, int64_t amount, const char *title,
                                int64_t *refund_id);
store_err store_pg_refund_finish(store *st, int64_t refund_id, const char *state,
                                 const char *ers_reference, const char *error);
store_err store_pg_refund_list(store *st, int64_t invoice_id, char **json);
store_err store_pg_refund_get(store *st, int64_t refund_id, char **json);
store_err store_pg_refund_resolve(store *st, int64_t invoice_id, int64_t refund_id,
                                  const char *state, const char *ers_reference, char was[16]);
store_err store_pg_invoice_resolve(store *st, int64_t id, const char *reference, char was[16]);
store_err store_pg_unknown_list(store *st, char **json);

/* --- rows.c: receipts, periods, terminals, idempotency keys --- */
store_err store_pg_receipt_add(store *st, int64_t invoice_id, const char *mime_type,
                               const char *receipt_type, const char *data_b64, int result_code);
store_err store_pg_receipt_last(store *st, int64_t invoice_id, store_receipt *out);
store_err store_pg_period_add(store *st, const char *period_id, const char *terminal_id);
store_err store_pg_idem_claim(store *st, const char *scope, const char *key,
                              const char *request_hash, int64_t ttl_ms, bool *same_request,
                              int *status, char **response);
store_err store_pg_idem_finish(store *st, const char *scope, const char *key, int status,
                               const char *response);
store_err store_pg_idem_release(store *st, const char *scope, const char *key);
store_err store_pg_idem_prune(store *st, int64_t older_than_ms);

/* --- terminals.c: rows with the password sealed by store/terminals.c --- */
store_err store_pg_terminal_put(store *st, const store_terminal *t, const char *box);
/* Fills out but its password; *box (malloc'd) receives the sealed one. */
store_err store_pg_terminal_row(store *st, const char *terminal_id, store_terminal *out,
                                char **box);
/* Sets seqr_id, or with seqr_id NULL marks the terminal unregistered. */
store_err store_pg_terminal_update(store *st, const char *terminal_id, const char *seqr_id);
store_err store_pg_terminal_open_invoices(store *st, const char *terminal_id, store_invoice_fn fn,
                                          void *ud);

store_err store_pg_invoice_get_pay_token(store *st, const char *token, store_invoice *out);

/* --- events.c: the outbox (see store.h) --- */
store_err store_pg_events_after(store *st, int64_t after, int64_t invoice_id, int limit,
                                store_event_fn fn, void *ud);
store_err store_pg_events_last_id(store *st, int64_t *id);
/* Also claims what it hands out for this instance (see schema.c). */
store_err store_pg_events_due(store *st, int64_t now, int limit, store_event_fn fn, void *ud);
store_err store_pg_event_attempt(store *st, int64_t event_id, const char *url, int http_status,
                                 int64_t latency_ms, const char *error, const char *state,
                                 int64_t next_at);
store_err store_pg_event_skip(store *st, int64_t event_id);
store_err store_pg_set_delivery(store *st, bool can_sign, bool default_url, bool *changed);
store_err store_pg_event_redeliver(store *st, int64_t event_id);
store_err store_pg_events_backlog(store *st, int64_t *count, int64_t *oldest_at);
store_err store_pg_delivery_list(store *st, int limit, char **json);

/* --- listen.c: events committed by any gateway wake this one's hook --- */
/* Starts the thread that LISTENs on a connection of its own and runs the
 * store's event hook (under the store lock) for every NOTIFY of the outbox;
 * while that connection is down, it reconnects and runs the hook with "any
 * invoice" each time the highest event id moved (checked every second).
 * Idempotent. Returns STORE_IO when the thread cannot start. */
store_err store_pg_listen_start(store *st);
/* Stops and joins the thread (before the store closes). Idempotent. */
void store_pg_listen_stop(store *st);

/* --- number.c: committed events get their feed ids (schema.c, migration 4) --- */
/* Starts the thread that numbers events: on demand (below) and every
 * STORE_PG_NUMBER_SWEEP_MS as the safety net for events whose gateway died
 * between its commit and their numbering. STORE_IO when it cannot start. */
store_err store_pg_number_start(store *st);
/* Stops and joins it; waiters return. Idempotent. */
void store_pg_number_stop(store *st);
/* Every store_pg_ write whose statements can fire the events triggers
 * (updates of an invoice's send_state, status, version, doc, total or
 * receipt_submitted, of a refund's state) calls this once it committed:
 * it returns when a numbering run that started after the call has ended,
 * so what the write made is in the feed (the same as SQLite, where events
 * have ids at commit); concurrent callers share one run. A thread that
 * still holds a connection (its transaction may be open) only asks for a
 * run and does not wait. A failed run is logged; its events are numbered
 * by a later one. True when it waited and that run succeeded: then the
 * run's durable commit, or the durable commit of the run that numbered
 * the events the write made (a run commits durably and becomes visible
 * only once flushed), flushed the server's WAL past the write's commit,
 * so a write that committed without its own flush is durable too
 * (store_pg_invoice_sent). */
bool store_pg_events_number(store *st);

/* --- leases.c --- */
store_err store_pg_other_gateways(store *st, int64_t *n);
store_err store_pg_lease_sync(store *st, store_invoice_fn gained, store_lease_lost_fn lost,
                              void *ud, int64_t *held);

#endif
