/* store/pg/conn.c — the PostgreSQL connections: open and close, the pool,
 * re-establishing a lost connection (and with conns[0] the liveness lock),
 * running statements with text parameters, transactions, and the test's
 * fault injection (store_fail_writes). See store/pg/pg.h. */
#include "store/pg/pg.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "store/private.h"

/* The connection this thread holds: one slot per thread (a thread works on
 * one store at a time; nested calls for the same store reuse it). internal:
 * the store's own work runs (store_pg_internal), which is not the writes
 * store_fail_writes() counts. */
static _Thread_local struct {
    store *st;
    int idx;
    int depth;
    int internal;
} store_pg_held;

int64_t store_pg_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool store_pg_holding(store *st)
{
    return store_pg_held.depth > 0 && store_pg_held.st == st;
}

void store_pg_internal(bool on)
{
    store_pg_held.internal += on ? 1 : -1;
}

/* libpq's message as one line (it ends in a newline, some span two). */
static void store_pg_message(PGconn *c, char *out, size_t n)
{
    snprintf(out, n, "%s", c ? PQerrorMessage(c) : "out of memory");
    for (char *p = out; *p != '\0'; p++)
        if (*p == '\n' || *p == '\r')
            *p = (p[1] == '\0') ? '\0' : ' ';
}

/* The server cannot be reached: logged when an outage starts, not per call.
 * libpq's messages name the host and user, never the password. */
static void store_pg_outage(store *st, PGconn *c)
{
    pthread_mutex_lock(&st->pg->lock);
    bool first = !st->pg->down;
    st->pg->down = true;
    pthread_mutex_unlock(&st->pg->lock);
    if (first) {
        char msg[512];
        store_pg_message(c, msg, sizeof msg);
        log_error("store: lost the connection to PostgreSQL (%s); store calls fail until it "
                  "is back",
                  msg);
    }
}

static void store_pg_back(store *st)
{
    pthread_mutex_lock(&st->pg->lock);
    bool was = st->pg->down;
    st->pg->down = false;
    pthread_mutex_unlock(&st->pg->lock);
    if (was)
        log_info("store: connected to PostgreSQL again");
}

/* Writes that store_fail_writes() makes fail, as SQLite's: a transaction
 * (at its BEGIN, alone or with what follows it in one exchange) or a write
 * statement outside one, by the service. */
static bool store_pg_fault(store *st, PGconn *c, const char *sql)
{
    /* Read without the lock first: the poller's batch holds it (SQLite). */
    if (__atomic_load_n(&st->fault_count, __ATOMIC_RELAXED) <= 0 || store_pg_held.internal > 0 ||
        PQtransactionStatus(c) != PQTRANS_IDLE)
        return false;
    if (strncmp(sql, "INSERT", 6) != 0 && strncmp(sql, "UPDATE", 6) != 0 &&
        strncmp(sql, "DELETE", 6) != 0 && strncmp(sql, "WITH", 4) != 0 &&
        strncmp(sql, "BEGIN", 5) != 0)
        return false;
    store_lock(st);
    bool fail = store_fault(st);
    store_unlock(st);
    return fail;
}

bool store_pg_relive(store *st)
{
    char id[24];
    const char *p[] = {store_pg_i64(id, st->pg->instance)};
    store_pg_internal(true);
    store_err e;
    PGresult *r = store_pg_exec(
        st, "SELECT pg_try_advisory_lock(" STORE_PG_LIVE_KEY ", $1::integer)", 1, p, &e);
    bool held = r != NULL && PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (held)
        held = store_pg_run(st,
                            "UPDATE gateway_instances SET heartbeat_at = " STORE_PG_NOW
                            " WHERE id = $1::bigint",
                            1, p) == STORE_OK;
    store_pg_internal(false);
    if (held) {
        st->pg->live_lost = false;
        log_info("store: this gateway is live again on PostgreSQL (instance %" PRId64 ")",
                 st->pg->instance);
    }
    return held;
}

/* Whether r is a FATAL or PANIC error: the server ends the session. */
static bool store_pg_fatal(const PGresult *r)
{
    if (r == NULL)
        return false;
    const char *severity = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
    if (severity == NULL) /* servers before 9.6 send the localized one only */
        severity = PQresultErrorField(r, PG_DIAG_SEVERITY);
    return severity != NULL && (strcmp(severity, "FATAL") == 0 || strcmp(severity, "PANIC") == 0);
}

void store_pg_notice(void *arg, const PGresult *r)
{
    bool *broken = arg;
    if (broken != NULL && store_pg_fatal(r))
        *broken = true;
}

/* The slot this thread just took: a connection the server closed (idle
 * connections notice it by reading what is waiting: the server's last words
 * and the end of the stream) is connected again, at most every
 * STORE_PG_RETRY_MS. When that fails the connection stays bad and the
 * caller's statements fail with STORE_IO.
 *
 * The last words come before the end of the stream, and a server ending a
 * session takes it out of pg_stat_activity in between: read alone, the
 * words would wait in libpq's buffer and be taken for the answer to the
 * caller's next statement (in pipeline mode they are), so they are parsed
 * here (PQisBusy), where store_pg_notice marks the slot broken. */
static void store_pg_revive(store *st, int idx)
{
    PGconn *c = st->pg->conns[idx];
    if (PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) == PQTRANS_IDLE) {
        PQconsumeInput(c);
        PQconsumeInput(c);
        PQisBusy(c);
    }
    if (PQstatus(c) == CONNECTION_OK && !st->pg->broken[idx])
        return;
    int64_t now = store_pg_mono_ms();
    if (now < st->pg->retry_at[idx])
        return;
    st->pg->retry_at[idx] = now + STORE_PG_RETRY_MS;
    PQreset(c);
    st->pg->broken[idx] = false;
    store_pg_prepared_reset(st->pg->prepared[idx]); /* went with the old session */
    if (PQstatus(c) != CONNECTION_OK) {
        store_pg_outage(st, c);
        return;
    }
    store_pg_back(st);
    if (idx == 0 && st->pg->instance != 0) {
        /* The liveness lock went with the old session: until it is ours
         * again others count this gateway dead and may take its leases. */
        st->pg->live_lost = true;
        st->pg->leases_lapsed = true;
        store_pg_relive(st);
    }
}

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

/* The pool slot whose connection store_pg_conn() gives. */
static int store_pg_slot(store *st)
{
    return store_pg_held.depth > 0 && store_pg_held.st == st ? store_pg_held.idx : 0;
}

/* Whether r failed because the server no longer has a statement of ours
 * (26000: DEALLOCATE ALL, a pooler between us) or its plan's result type
 * changed (0A000: another gateway migrated the schema). */
static bool store_pg_statement_lost(const PGresult *r)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    return state != NULL && (strcmp(state, "26000") == 0 || strcmp(state, "0A000") == 0);
}

/* A statement failed with result r (NULL: libpq had none), which this
 * clears: sets *e (STORE_CONFLICT for a unique, check or foreign key
 * violation, STORE_IO for anything else) and logs what needs it. */
static void store_pg_failed(store *st, PGconn *c, PGresult *r, store_err *e)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    /* 23505 unique_violation, 23514 check_violation, 23503 foreign key. */
    if (state != NULL && strncmp(state, "235", 3) == 0) {
        *e = STORE_CONFLICT;
    } else if (PQstatus(c) == CONNECTION_BAD || store_pg_fatal(r)) {
        /* Connected again when the slot is next taken; a FATAL answer comes
         * before the end of the stream, which may not have been read yet. */
        *e = STORE_IO;
        st->pg->broken[store_pg_slot(st)] = true;
        store_pg_outage(st, c);
    } else {
        *e = STORE_IO;
        /* The message names the statement, never the parameters' values. */
        log_error("store: PostgreSQL: %s", r && PQresultErrorMessage(r)[0] != '\0'
                                               ? PQresultErrorMessage(r)
                                               : PQerrorMessage(c));
    }
    /* Prepared again when next run (store_pg_statement_lost). */
    if (store_pg_statement_lost(r))
        store_pg_prepared_reset(st->pg->prepared[store_pg_slot(st)]);
    PQclear(r);
}

/* Runs one statement with parameters, prepared when it can be. */
static PGresult *store_pg_exec_params(store *st, PGconn *c, const char *sql, int n,
                                      const char *const *params)
{
    PGresult *failed = NULL;
    const char *name =
        store_pg_prepared_name(st->pg->prepared[store_pg_slot(st)], c, sql, n, &failed);
    if (name != NULL)
        return PQexecPrepared(c, name, n, params, NULL, NULL, 0);
    if (failed != NULL || PQstatus(c) == CONNECTION_BAD)
        return failed;
    return PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
}

PGresult *store_pg_exec(store *st, const char *sql, int n, const char *const *params, store_err *e)
{
    /* Without parameters, the simple protocol: sql may hold several
     * statements (migrations). */
    PGconn *c = store_pg_conn(st);
    /* Still lost (store_pg_revive could not connect it again, or waits
     * before it tries): fails as the outage's first failure was logged. */
    if (PQstatus(c) == CONNECTION_BAD || store_pg_fault(st, c, sql)) {
        *e = STORE_IO;
        return NULL;
    }
    PGresult *r = n == 0 ? PQexec(c, sql) : store_pg_exec_params(st, c, sql, n, params);
    ExecStatusType status = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (n > 0 && store_pg_statement_lost(r) && PQtransactionStatus(c) == PQTRANS_IDLE) {
        /* Our prepared statement is gone (or stale) and the statement ran
         * on its own, so it did nothing: prepare it again and run it once
         * more, instead of failing the caller's request. */
        PQclear(r);
        store_pg_prepared_reset(st->pg->prepared[store_pg_slot(st)]);
        r = store_pg_exec_params(st, c, sql, n, params);
        status = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    }
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
        *e = STORE_OK;
        return r;
    }
    store_pg_failed(st, c, r, e);
    return NULL;
}

#ifdef LIBPQ_HAS_PIPELINING
/* Reads the results of the steps sent in pipeline mode and the sync after
 * them; returns step keep's when all succeeded. */
static PGresult *store_pg_steps_read(store *st, PGconn *c, int nsteps, int keep, store_err *e)
{
    PGresult *kept = NULL;
    *e = STORE_OK;
    for (int i = 0; i < nsteps; i++) {
        PGresult *r = PQgetResult(c);
        if (r == NULL) { /* the connection broke: no more results */
            if (*e == STORE_OK)
                store_pg_failed(st, c, NULL, e);
            break;
        }
        ExecStatusType status = PQresultStatus(r);
        if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
            if (i == keep)
                kept = r;
            else
                PQclear(r);
        } else if (status == PGRES_PIPELINE_ABORTED || *e != STORE_OK) {
            PQclear(r); /* skipped after the first failure, reported already */
        } else {
            store_pg_failed(st, c, r, e);
        }
        /* Each step's results end with a NULL. */
        while ((r = PQgetResult(c)) != NULL)
            PQclear(r);
    }
    /* The sync's result (PGRES_PIPELINE_SYNC), unless the connection broke. */
    PGresult *r;
    while (PQstatus(c) == CONNECTION_OK && (r = PQgetResult(c)) != NULL) {
        bool sync = PQresultStatus(r) == PGRES_PIPELINE_SYNC;
        PQclear(r);
        if (sync)
            break;
    }
    if (*e != STORE_OK) {
        PQclear(kept);
        kept = NULL;
    }
    return kept;
}
#endif

PGresult *store_pg_exec_steps(store *st, const store_pg_step *steps, int nsteps, int keep,
                              store_err *e)
{
    PGconn *c = store_pg_conn(st);
    PGresult *kept = NULL;
    *e = STORE_OK;
    if (nsteps < 1 || nsteps > STORE_PG_STEPS_MAX || PQstatus(c) == CONNECTION_BAD) {
        *e = STORE_IO;
        return NULL;
    }
    /* Prepared before the pipeline (once per connection), so that it only
     * executes. */
    const char *names[STORE_PG_STEPS_MAX];
    int slot = store_pg_slot(st);
    bool room = true;
    for (int i = 0; i < nsteps && room; i++) {
        PGresult *failed = NULL;
        names[i] =
            store_pg_prepared_name(st->pg->prepared[slot], c, steps[i].sql, steps[i].n, &failed);
        if (names[i] == NULL && (failed != NULL || PQstatus(c) == CONNECTION_BAD)) {
            store_pg_failed(st, c, failed, e);
            goto cleanup;
        }
        room = names[i] != NULL;
    }
#ifndef LIBPQ_HAS_PIPELINING
    room = false; /* libpq 13: no pipeline mode */
#endif
    if (!room) {
        /* No room to prepare, or no pipeline mode: one statement after the
         * other (store_pg_exec checks store_fail_writes()). */
        for (int i = 0; i < nsteps && *e == STORE_OK; i++) {
            PGresult *r = store_pg_exec(st, steps[i].sql, steps[i].n, steps[i].params, e);
            if (i == keep)
                kept = r;
            else
                PQclear(r);
        }
        goto cleanup;
    }
#ifdef LIBPQ_HAS_PIPELINING
    if (store_pg_fault(st, c, steps[0].sql)) {
        *e = STORE_IO;
        goto cleanup;
    }
    if (PQenterPipelineMode(c) != 1) {
        store_pg_failed(st, c, NULL, e);
        goto cleanup;
    }
    int sent = 0;
    while (sent < nsteps && PQsendQueryPrepared(c, names[sent], steps[sent].n, steps[sent].params,
                                                NULL, NULL, 0) == 1)
        sent++;
    if (sent == nsteps && PQpipelineSync(c) == 1)
        kept = store_pg_steps_read(st, c, nsteps, keep, e);
    else
        store_pg_failed(st, c, NULL, e);
    if (PQexitPipelineMode(c) != 1) {
        /* Results left unread would be the next exchange's: the slot's next
         * holder connects it again (store_pg_revive). */
        st->pg->broken[slot] = true;
        if (*e == STORE_OK)
            store_pg_failed(st, c, NULL, e);
    }
#endif
cleanup:
    if (*e != STORE_OK) {
        PQclear(kept);
        kept = NULL;
        /* A failed step left the steps' transaction open. */
        bool piped = false;
#ifdef LIBPQ_HAS_PIPELINING
        piped = PQpipelineStatus(c) != PQ_PIPELINE_OFF;
#endif
        if (PQstatus(c) == CONNECTION_OK && !piped && PQtransactionStatus(c) != PQTRANS_IDLE)
            PQclear(PQexec(c, "ROLLBACK"));
    }
    return kept;
}

store_err store_pg_run(store *st, const char *sql, int n, const char *const *params)
{
    store_err e;
    PGresult *r = store_pg_exec(st, sql, n, params, &e);
    PQclear(r);
    return e;
}

store_err store_pg_update(store *st, const char *sql, int n, const char *const *params)
{
    store_err e;
    PGresult *r = store_pg_exec(st, sql, n, params, &e);
    if (r != NULL && strcmp(PQcmdTuples(r), "0") == 0)
        e = STORE_NOT_FOUND;
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

PGconn *store_pg_conn(store *st)
{
    if (store_pg_held.depth > 0 && store_pg_held.st == st)
        return st->pg->conns[store_pg_held.idx];
    return st->pg->conns[0];
}

int store_pg_pick_slot(const struct store_pg *pg, int want)
{
    if (want >= 0)
        return pg->conns[want] != NULL && !pg->busy[want] ? want : -1;
    for (int i = 1; i < STORE_PG_POOL; i++)
        if (pg->conns[i] != NULL && !pg->busy[i])
            return i;
    if (pg->live_waiting == 0 && pg->conns[0] != NULL && !pg->busy[0])
        return 0;
    return -1;
}

/* Takes slot want, or any free one of the pool (want < 0): conns[0] last,
 * and not while the lease sync waits for it. Taken first, as any slot was
 * before, conns[0] was nearly always busy under load, and the lease thread
 * lost each release of it to one of dozens of request threads: its
 * heartbeat came 3 s late, the other gateway counted this one dead and
 * settled its sendInvoice intents under way as unknown (failed POSTs). */
static void store_pg_take(store *st, int want)
{
    if (store_pg_held.depth > 0) {
        if (store_pg_held.st != st)
            abort(); /* one store at a time per thread (see above) */
        store_pg_held.depth++;
        return;
    }
    pthread_mutex_lock(&st->pg->lock);
    if (want == 0)
        st->pg->live_waiting++;
    int idx;
    while ((idx = store_pg_pick_slot(st->pg, want)) < 0)
        pthread_cond_wait(&st->pg->freed, &st->pg->lock);
    if (want == 0)
        st->pg->live_waiting--;
    st->pg->busy[idx] = true;
    pthread_mutex_unlock(&st->pg->lock);
    store_pg_held.st = st;
    store_pg_held.idx = idx;
    store_pg_held.depth = 1;
    store_pg_revive(st, idx);
}

void store_pg_acquire(store *st)
{
    store_pg_take(st, -1);
}

void store_pg_acquire_live(store *st)
{
    store_pg_take(st, 0);
}

void store_pg_acquire_number(store *st)
{
    store_pg_take(st, STORE_PG_NUMBER_SLOT);
}

void store_pg_release(store *st)
{
    if (--store_pg_held.depth > 0)
        return;
    pthread_mutex_lock(&st->pg->lock);
    st->pg->busy[store_pg_held.idx] = false;
    /* All: a waiter for conns[0] alone must not swallow the wake-up. */
    pthread_cond_broadcast(&st->pg->freed);
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
    st->pg->last_sync_ms = store_pg_mono_ms();
    /* Defaults the URL may override (it comes last): give up connecting
     * after 10 s, and notice a peer that vanished without closing the TCP
     * connection (a failover, a cable) in about a minute, not hours. */
    const char *const keys[] = {"connect_timeout",  "keepalives_idle", "keepalives_interval",
                                "keepalives_count", "dbname",          NULL};
    const char *const values[] = {"10", "30", "10", "3", url, NULL};
    for (int i = 0; i < STORE_PG_CONNS; i++) {
        st->pg->prepared[i] = store_pg_prepared_new();
        st->pg->conns[i] = PQconnectdbParams(keys, values, 1);
        if (st->pg->conns[i] == NULL || PQstatus(st->pg->conns[i]) != CONNECTION_OK) {
            buf_puts(err, "cannot connect to ");
            store_location_redact(url, err);
            buf_printf(err, ": %s",
                       st->pg->conns[i] ? PQerrorMessage(st->pg->conns[i]) : "out of memory");
            return STORE_IO;
        }
        /* Kept over PQreset. */
        PQsetNoticeReceiver(st->pg->conns[i], store_pg_notice, &st->pg->broken[i]);
    }
    store_pg_internal(true);
    store_err e = store_pg_migrate(st, err);
    store_pg_internal(false);
    if (e == STORE_OK && store_pg_number_start(st) != STORE_OK) {
        buf_puts(err, "cannot start the thread that numbers events");
        e = STORE_IO;
    }
    /* What dead gateways, and the recovery above, left unnumbered. */
    if (e == STORE_OK)
        store_pg_events_number(st);
    return e;
}

void store_pg_close(store *st)
{
    if (st->pg == NULL)
        return;
    store_pg_number_stop(st);
    PGconn *c = st->pg->conns[0];
    if (c != NULL && st->pg->instance != 0 && PQstatus(c) == CONNECTION_OK) {
        store_pg_internal(true);
        /* A clean stop hands its leases on at once instead of after the TTL. */
        char id[24];
        const char *p[] = {store_pg_i64(id, st->pg->instance)};
        store_pg_run(st,
                     "UPDATE invoices SET lease_owner = 0, lease_until = 0"
                     " WHERE lease_owner = $1::bigint",
                     1, p);
        store_pg_run(st, "UPDATE gateway_instances SET heartbeat_at = 0 WHERE id = $1::bigint", 1,
                     p);
        store_pg_internal(false);
    }
    for (int i = 0; i < STORE_PG_CONNS; i++) {
        if (st->pg->conns[i] != NULL)
            PQfinish(st->pg->conns[i]);
        store_pg_prepared_free(st->pg->prepared[i]);
    }
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
