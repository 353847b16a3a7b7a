/* store/db.c — the SQLite connection: open (pragmas, the one-gateway flock),
 * close, the statement cache, savepoint transactions, the poller's batch,
 * durable commits that share fdatasyncs (store_sync), the online backup and
 * the row helpers of private.h. See store.h and store/private.h. */
#include "store/private.h"

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
#include "store/pg/pg.h"
#include "metrics.h"

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
    case STORE_SCHEMA_NEWER:
        return "database schema newer than this seqr-gateway";
    }
    return "unknown store error";
}

int64_t store_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void store_lock(store *st)
{
    pthread_mutex_lock(&st->lock);
}

void store_unlock(store *st)
{
    pthread_mutex_unlock(&st->lock);
}

/* Returns the cached prepared statement for sql (a static string), reset and
 * with bindings cleared; NULL on a prepare error (logged). */
sqlite3_stmt *store_stmt(store *st, const char *sql)
{
    if (st->db == NULL)
        return NULL; /* PostgreSQL: a function without a store_pg_ twin */
    for (int i = 0; i < st->ncache; i++) {
        if (st->cache[i].sql == sql) {
            sqlite3_reset(st->cache[i].stmt);
            sqlite3_clear_bindings(st->cache[i].stmt);
            return st->cache[i].stmt;
        }
    }
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
        log_error("store: prepare failed: %s", sqlite3_errmsg(st->db));
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
void store_done(store *st, sqlite3_stmt *stmt)
{
    for (int i = 0; i < st->ncache; i++) {
        if (st->cache[i].stmt == stmt) {
            sqlite3_reset(stmt);
            return;
        }
    }
    sqlite3_finalize(stmt);
}

void store_bind_text(sqlite3_stmt *s, int i, const char *text)
{
    sqlite3_bind_text(s, i, text ? text : "", -1, SQLITE_TRANSIENT);
}

store_err store_exec(store *st, const char *sql)
{
    if (st->db == NULL)
        return STORE_IO;
    char *msg = NULL;
    if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        log_error("store: %s: %s", sql, msg ? msg : "?");
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
        log_error("store: %s: %s", sql, sqlite3_errmsg(st->db));
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
void store_fail_writes(store *st, int skip, int count)
{
    store_lock(st);
    st->fault_skip = skip;
    st->fault_count = count;
    store_unlock(st);
}

bool store_fault(store *st)
{
    if (st->fault_count <= 0)
        return false;
    if (st->fault_skip > 0) {
        st->fault_skip--;
        return false;
    }
    st->fault_count--;
    return true;
}

store_err store_tx_begin(store *st)
{
    store_lock(st);
    if (st->sync_failed || store_fault(st)) {
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
store_err store_tx_finish(store *st, store_err result, bool durable)
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

store_err store_tx_end(store *st, store_err result)
{
    return store_tx_finish(st, result, true);
}

store_err store_step_done(store *st, sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    store_err e = STORE_OK;
    if (rc == SQLITE_CONSTRAINT)
        e = STORE_CONFLICT;
    else if (rc != SQLITE_DONE) {
        log_error("store: step failed: %s", sqlite3_errmsg(st->db));
        e = STORE_IO;
    }
    store_done(st, s);
    return e;
}

void store_copy_col(sqlite3_stmt *s, int col, char *dst, size_t dstlen)
{
    const unsigned char *t = sqlite3_column_text(s, col);
    snprintf(dst, dstlen, "%s", t ? (const char *)t : "");
}

char *store_dup_col(sqlite3_stmt *s, int col)
{
    const unsigned char *t = sqlite3_column_text(s, col);
    if (t == NULL)
        return NULL;
    char *d = strdup((const char *)t);
    if (d == NULL)
        abort();
    return d;
}

/* Runs a query whose single column is a JSON text; copies it to *json. */
store_err store_query_json(store *st, const char *sql, int64_t id, char **json)
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

/* Process-wide SQLite settings, made before its first use: no memory
 * statistics (nothing reads them), so that an allocation inside SQLite
 * takes no global mutex. Once per process; later calls find SQLite
 * initialised and change nothing. */
static void store_sqlite_config(void)
{
    if (sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) != SQLITE_OK)
        log_debug(
            "store: SQLite was in use before the first store opened; memory statistics stay on");
}

store_err store_open(const char *path, store **out, buf *err)
{
    static pthread_once_t configured = PTHREAD_ONCE_INIT;
    pthread_once(&configured, store_sqlite_config);
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
    st->events_may_pend = true; /* until store_set_delivery says otherwise */
    st->lock_fd = -1;
    if (store_is_url(path)) {
        /* PostgreSQL: no file to lock (several gateways share it), no WAL of
         * ours to sync (the server's commits are durable). */
        store_err pe = store_pg_open(st, path, err);
        if (pe != STORE_OK) {
            store_close(st);
            return pe == STORE_SCHEMA_NEWER ? pe : STORE_IO;
        }
        *out = st;
        return STORE_OK;
    }

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
    store_err me = store_migrate(st, err);
    if (me == STORE_SCHEMA_NEWER) {
        store_close(st);
        return me;
    }
    if (me != STORE_OK)
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
    if (st->pg != NULL) {
        buf_puts(err, "the backup command copies a SQLite store; back a PostgreSQL store up with "
                      "its own tools (pg_dump, base backups)");
        return STORE_IO;
    }

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
    store_pg_listen_stop(st);
    store_pg_close(st);
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
    if (st->pg != NULL)
        return; /* each write commits by itself */
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
    if (st->db != NULL && !sqlite3_get_autocommit(st->db)) {
        e = store_fault(st) ? STORE_IO : store_exec_cached(st, store_sql_commit);
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
