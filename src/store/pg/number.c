/* store/pg/number.c — committed events get their feed ids: one thread per
 * store runs events_number_batch() (schema.c, migration 4, which says why
 * ids become visible in increasing order) when a write of this gateway
 * that may have written events asks for it, and every
 * STORE_PG_NUMBER_SWEEP_MS in any case, for events of a gateway that died
 * between its commit and their numbering. Writers that ask while a run is
 * under way share the next one, so the runs are batches, as group commit
 * batches WAL flushes. See store/pg/pg.h. */
#include "store/pg/pg.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"
#include "store/private.h"

/* The safety net's period. */
#define STORE_PG_NUMBER_SWEEP_MS 1000
/* Rows one run's transaction numbers at most; a run goes on while full. */
#define STORE_PG_NUMBER_MAX_ROWS "5000"

struct store_pg_numberer {
    pthread_t thread;
    pthread_mutex_t lock; /* guards the fields below */
    pthread_cond_t asked; /* wanted moved, or stop */
    pthread_cond_t ran;   /* done moved */
    uint64_t wanted;      /* requests so far */
    uint64_t done;        /* requests up to this one had a run start after them */
    uint64_t good;        /* ... and a run that succeeded, up to this one */
    bool stop;
};

/* One run: as many batches as there are committed unnumbered rows (one
 * transaction each, autocommit). */
static store_err store_pg_number_run(store *st)
{
    store_pg_acquire_number(st);
    store_pg_internal(true);
    store_err e = STORE_OK;
    for (;;) {
        PGresult *r = store_pg_exec(st, "SELECT events_number_batch(" STORE_PG_NUMBER_MAX_ROWS ")",
                                    0, NULL, &e);
        bool full = r != NULL && PQntuples(r) == 1 &&
                    store_pg_get_i64(r, 0, 0) >= atoi(STORE_PG_NUMBER_MAX_ROWS);
        PQclear(r);
        if (e != STORE_OK || !full)
            break;
    }
    store_pg_internal(false);
    store_pg_release(st);
    return e;
}

static void store_pg_number_deadline(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void *store_pg_number_main(void *arg)
{
    store *st = arg;
    struct store_pg_numberer *n = st->pg->numberer;
    bool failing = false;
    pthread_mutex_lock(&n->lock);
    while (!n->stop) {
        if (n->wanted == n->done) {
            struct timespec deadline;
            store_pg_number_deadline(&deadline, STORE_PG_NUMBER_SWEEP_MS);
            int rc = 0;
            while (!n->stop && n->wanted == n->done && rc != ETIMEDOUT)
                rc = pthread_cond_timedwait(&n->asked, &n->lock, &deadline);
            if (n->stop)
                break;
        }
        /* Every request up to here committed before this run starts. */
        uint64_t covers = n->wanted;
        pthread_mutex_unlock(&n->lock);
        store_err e = store_pg_number_run(st);
        if (e != STORE_OK && !failing)
            log_warn("store: PostgreSQL: numbering committed events failed; retrying every %d ms",
                     STORE_PG_NUMBER_SWEEP_MS);
        else if (e == STORE_OK && failing)
            log_info("store: PostgreSQL: numbering committed events works again");
        failing = e != STORE_OK;
        pthread_mutex_lock(&n->lock);
        /* Failed or not, the waiters go on: their writes are committed, and
         * the sweep numbers their events once the server answers again. */
        n->done = covers;
        if (e == STORE_OK)
            n->good = covers;
        pthread_cond_broadcast(&n->ran);
    }
    n->done = n->wanted;
    pthread_cond_broadcast(&n->ran);
    pthread_mutex_unlock(&n->lock);
    return NULL;
}

store_err store_pg_number_start(store *st)
{
    if (st->pg->numberer != NULL)
        return STORE_OK;
    struct store_pg_numberer *n = calloc(1, sizeof *n);
    if (n == NULL)
        return STORE_IO;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&n->lock, NULL);
    pthread_cond_init(&n->asked, &attr);
    pthread_cond_init(&n->ran, NULL);
    pthread_condattr_destroy(&attr);
    st->pg->numberer = n;
    if (pthread_create(&n->thread, NULL, store_pg_number_main, st) != 0) {
        log_error("store: PostgreSQL: cannot start the thread that numbers events");
        st->pg->numberer = NULL;
        pthread_mutex_destroy(&n->lock);
        pthread_cond_destroy(&n->asked);
        pthread_cond_destroy(&n->ran);
        free(n);
        return STORE_IO;
    }
    return STORE_OK;
}

void store_pg_number_stop(store *st)
{
    if (st->pg == NULL || st->pg->numberer == NULL)
        return;
    struct store_pg_numberer *n = st->pg->numberer;
    pthread_mutex_lock(&n->lock);
    n->stop = true;
    pthread_cond_broadcast(&n->asked);
    pthread_mutex_unlock(&n->lock);
    pthread_join(n->thread, NULL);
    st->pg->numberer = NULL;
    pthread_mutex_destroy(&n->lock);
    pthread_cond_destroy(&n->asked);
    pthread_cond_destroy(&n->ran);
    free(n);
}

bool store_pg_events_number(store *st)
{
    struct store_pg_numberer *n = st->pg->numberer;
    if (n == NULL)
        return false; /* not started (open failed) or stopping: the next start's sweep */
    bool wait = !store_pg_holding(st);
    pthread_mutex_lock(&n->lock);
    uint64_t mine = ++n->wanted;
    pthread_cond_signal(&n->asked);
    while (wait && !n->stop && n->done < mine)
        pthread_cond_wait(&n->ran, &n->lock);
    bool good = wait && n->good >= mine;
    pthread_mutex_unlock(&n->lock);
    return good;
}
