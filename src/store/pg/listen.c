/* store/pg/listen.c — wake-ups for events committed by any gateway: a
 * thread LISTENs for the outbox's NOTIFY (sent by each run that numbers
 * committed events, schema.c and number.c, with their invoices' ids,
 * comma-separated, as payload; '' for many) on a connection of its own,
 * and runs the store's
 * event hook with those invoices, as SQLite's commit hook does for the one
 * gateway (store/events.c). Commits of this gateway come back the same way.
 * While that connection is down the thread reconnects every second and, in
 * between, checks the highest event id: when it moved, the hook runs with
 * "any invoice". See store/pg/pg.h. */
#include "store/pg/pg.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "store/private.h"

/* At most this many invoices are named to the hook at once; more: "any"
 * (as store/events.c). */
#define STORE_PG_LISTEN_MAX 64
/* Reconnect and fallback check period. */
#define STORE_PG_LISTEN_RETRY_MS 1000

struct store_pg_listener {
    store *st;
    pthread_t thread;
    int stop_pipe[2]; /* a byte on [1] stops the thread */
    char **keywords;  /* the connection's parameters, copied at start */
    char **values;
    int nparams;
    PGconn *conn; /* the thread's own; NULL while down */
};

/* Runs the store's event hook under the store lock (store.h). */
static void store_pg_listen_fire(store *st, const int64_t *ids, size_t n)
{
    store_lock(st);
    if (st->event_hook != NULL)
        st->event_hook(st->event_hook_ud, n > 0 ? ids : NULL, n, true); /* the worker looks */
    store_unlock(st);
}

static void store_pg_listen_params_free(struct store_pg_listener *l)
{
    for (int i = 0; i < l->nparams; i++) {
        free(l->keywords[i]);
        free(l->values[i]);
    }
    free(l->keywords);
    free(l->values);
}

/* Copies the parameters of the store's connections (so no URL is kept). */
static bool store_pg_listen_params(struct store_pg_listener *l, PGconn *from)
{
    PQconninfoOption *opts = PQconninfo(from);
    if (opts == NULL)
        return false;
    int n = 0;
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
        if (o->val != NULL && o->val[0] != '\0')
            n++;
    l->keywords = calloc((size_t)n + 1, sizeof *l->keywords);
    l->values = calloc((size_t)n + 1, sizeof *l->values);
    bool ok = l->keywords != NULL && l->values != NULL;
    for (PQconninfoOption *o = opts; ok && o->keyword != NULL; o++) {
        if (o->val == NULL || o->val[0] == '\0')
            continue;
        l->keywords[l->nparams] = strdup(o->keyword);
        l->values[l->nparams] = strdup(o->val);
        ok = l->keywords[l->nparams] != NULL && l->values[l->nparams] != NULL;
        l->nparams++;
    }
    PQconninfoFree(opts);
    return ok;
}

/* Connects and LISTENs; false (connection closed) on failure. */
static bool store_pg_listen_connect(struct store_pg_listener *l)
{
    l->conn =
        PQconnectdbParams((const char *const *)l->keywords, (const char *const *)l->values, 0);
    bool ok = l->conn != NULL && PQstatus(l->conn) == CONNECTION_OK;
    if (ok) {
        /* The server's last words stay out of stderr; the end of the
         * stream that follows them is what store_pg_listen_read sees. */
        PQsetNoticeReceiver(l->conn, store_pg_notice, NULL);
        PGresult *r = PQexec(l->conn, "LISTEN " STORE_PG_EVENTS_CHANNEL);
        ok = r != NULL && PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
    }
    if (!ok) {
        log_warn("store: PostgreSQL: cannot listen for events (retrying every %d ms): %s",
                 STORE_PG_LISTEN_RETRY_MS, l->conn ? PQerrorMessage(l->conn) : "out of memory");
        PQfinish(l->conn);
        l->conn = NULL;
    }
    return ok;
}

/* Reads what arrived and hands the notifications to the hook; false when
 * the connection broke. */
static bool store_pg_listen_read(struct store_pg_listener *l)
{
    if (PQconsumeInput(l->conn) == 0)
        return false;
    int64_t ids[STORE_PG_LISTEN_MAX];
    size_t n = 0;
    bool any = false, got = false;
    PGnotify *note;
    while ((note = PQnotifies(l->conn)) != NULL) {
        got = true;
        const char *s = note->extra;
        if (*s == '\0')
            any = true;
        while (*s != '\0') {
            char *end = NULL;
            errno = 0;
            int64_t id = strtoll(s, &end, 10);
            if (end == s || errno != 0 || (*end != ',' && *end != '\0')) {
                any = true; /* not ours to read: wake everyone */
                break;
            }
            bool seen = false;
            for (size_t i = 0; i < n && !seen; i++)
                seen = ids[i] == id;
            if (!seen && id > 0 && n < STORE_PG_LISTEN_MAX)
                ids[n++] = id;
            else if (!seen)
                any = true;
            s = *end == ',' ? end + 1 : end;
        }
        PQfreemem(note);
    }
    if (got)
        store_pg_listen_fire(l->st, ids, any ? 0 : n);
    return true;
}

static void *store_pg_listen_main(void *arg)
{
    struct store_pg_listener *l = arg;
    int64_t last_id = -1;            /* the fallback's view while the connection is down */
    bool listened = l->conn != NULL; /* store_pg_listen_start() connected */
    for (;;) {
        if (l->conn == NULL && store_pg_listen_connect(l)) {
            /* Events committed while nobody listened: wake every waiter. */
            if (listened)
                store_pg_listen_fire(l->st, NULL, 0);
            listened = true;
            last_id = -1;
        }
        struct pollfd fds[2] = {{l->stop_pipe[0], POLLIN, 0}, {-1, POLLIN, 0}};
        if (l->conn != NULL)
            fds[1].fd = PQsocket(l->conn);
        int rc = poll(fds, 2, STORE_PG_LISTEN_RETRY_MS);
        if (rc < 0 && errno != EINTR) {
            log_error("store: PostgreSQL: listening for events: poll: %s", strerror(errno));
            break;
        }
        if (fds[0].revents != 0)
            break;
        if (l->conn != NULL && fds[1].revents != 0 && !store_pg_listen_read(l)) {
            log_warn("store: PostgreSQL: the events connection broke: %s", PQerrorMessage(l->conn));
            PQfinish(l->conn);
            l->conn = NULL;
        }
        if (l->conn == NULL) {
            /* The fallback: a periodic look at the highest event id. */
            int64_t id = 0;
            if (store_pg_events_last_id(l->st, &id) == STORE_OK && id != last_id) {
                if (last_id >= 0)
                    store_pg_listen_fire(l->st, NULL, 0);
                last_id = id;
            }
        }
    }
    return NULL;
}

store_err store_pg_listen_start(store *st)
{
    if (st->pg->listener != NULL)
        return STORE_OK;
    struct store_pg_listener *l = calloc(1, sizeof *l);
    if (l == NULL)
        return STORE_IO;
    l->st = st;
    l->stop_pipe[0] = l->stop_pipe[1] = -1;
    store_pg_acquire(st);
    bool ok = store_pg_listen_params(l, store_pg_conn(st));
    store_pg_release(st);
    if (!ok || pipe(l->stop_pipe) != 0)
        goto fail;
    /* LISTEN before returning, so that every commit after this call reaches
     * the hook (the thread retries if this fails). */
    store_pg_listen_connect(l);
    if (pthread_create(&l->thread, NULL, store_pg_listen_main, l) != 0)
        goto fail;
    st->pg->listener = l;
    return STORE_OK;
fail:
    log_error("store: PostgreSQL: cannot start listening for events");
    if (l->stop_pipe[0] >= 0) {
        close(l->stop_pipe[0]);
        close(l->stop_pipe[1]);
    }
    PQfinish(l->conn);
    store_pg_listen_params_free(l);
    free(l);
    return STORE_IO;
}

void store_pg_listen_stop(store *st)
{
    if (st->pg == NULL || st->pg->listener == NULL)
        return;
    struct store_pg_listener *l = st->pg->listener;
    char c = 0;
    while (write(l->stop_pipe[1], &c, 1) < 0 && errno == EINTR)
        ;
    pthread_join(l->thread, NULL);
    PQfinish(l->conn);
    close(l->stop_pipe[0]);
    close(l->stop_pipe[1]);
    store_pg_listen_params_free(l);
    free(l);
    st->pg->listener = NULL;
}
