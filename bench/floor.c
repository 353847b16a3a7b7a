/* floor.c — the least any SEQR gateway on this stack must do for one
 * POST /invoices, as a program of its own, so that bench/run can measure what
 * that least costs on the machine at hand and compare the real gateway with it.
 *
 *   floor --port P --sim-url URL --body-file F [--db PATH]
 *
 * Every request (any method, any path, the body ignored) is answered 201 after:
 *   without --db: one POST of the fixed SOAP body F to URL with libcurl
 *       (a kept connection per libmicrohttpd thread) — the bare extra hop;
 *   with --db: the same call between two SQLite transactions on a one-table
 *       WAL database (an INSERT before the call, the "intent", and an UPDATE
 *       after it, the "outcome"), then an fdatasync of the WAL before the
 *       answer — the rules of docs/design.md (write before you call, a 201 is
 *       on disk) with no JSON, XML, validation or schema of any size.
 * The WAL is first grown to its working size and checkpointed, as in a
 * gateway that has been running for a while. Stops on SIGTERM/SIGINT. */
#include <curl/curl.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "benchutil.h"

/* Transactions run before serving, so the WAL has its working size. */
#define FLOOR_WARM_TRANSACTIONS 3000

typedef struct {
    const char *sim_url;
    char *body;
    sqlite3 *db; /* NULL: bare hop */
    pthread_mutex_t db_lock;
    sqlite3_stmt *begin, *commit, *intent, *outcome;
    int wal_fd;
    long next_id;
} floor_state;

/* One transaction running stmt with ?1 = id. */
static bool floor_tx(floor_state *fs, sqlite3_stmt *stmt, long id)
{
    pthread_mutex_lock(&fs->db_lock);
    bool ok = sqlite3_step(fs->begin) == SQLITE_DONE;
    sqlite3_reset(fs->begin);
    sqlite3_bind_int64(stmt, 1, id);
    ok = ok && sqlite3_step(stmt) == SQLITE_DONE;
    sqlite3_reset(stmt);
    ok = ok && sqlite3_step(fs->commit) == SQLITE_DONE;
    sqlite3_reset(fs->commit);
    pthread_mutex_unlock(&fs->db_lock);
    return ok;
}

/* The call to the simulator on this thread's kept connection. */
static bool floor_call(floor_state *fs)
{
    static __thread CURL *easy;
    static __thread struct curl_slist *headers;
    if (easy == NULL) {
        easy = curl_easy_init();
        headers = curl_slist_append(headers, "Content-Type: text/xml; charset=utf-8");
        headers = curl_slist_append(headers, "SOAPAction: \"\"");
        headers = curl_slist_append(headers, "Expect:");
        if (easy == NULL || headers == NULL)
            return false;
    }
    curl_easy_setopt(easy, CURLOPT_URL, fs->sim_url);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, fs->body);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, bench_discard);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    long status = 0;
    CURLcode rc = curl_easy_perform(easy);
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    return rc == CURLE_OK && status == 200;
}

static enum MHD_Result floor_handle(void *cls, struct MHD_Connection *conn, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_data_size,
                                    void **con_cls)
{
    (void)url;
    (void)method;
    (void)version;
    (void)upload_data;
    floor_state *fs = cls;
    if (*con_cls == NULL) {
        *con_cls = fs; /* any non-NULL marker: headers seen */
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    long id = __atomic_add_fetch(&fs->next_id, 1, __ATOMIC_RELAXED);
    bool ok = fs->db == NULL || floor_tx(fs, fs->intent, id);
    ok = ok && floor_call(fs);
    if (ok && fs->db != NULL)
        ok = floor_tx(fs, fs->outcome, id) && fdatasync(fs->wal_fd) == 0;
    static const char created[] = "{\"ok\":true}";
    static const char failed[] = "{\"ok\":false}";
    struct MHD_Response *r =
        MHD_create_response_from_buffer(ok ? sizeof created - 1 : sizeof failed - 1,
                                        (void *)(ok ? created : failed), MHD_RESPMEM_PERSISTENT);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(conn, ok ? 201 : 502, r);
    MHD_destroy_response(r);
    return ret;
}

/* Opens a fresh database at path with one table and warms its WAL. */
static bool floor_open_db(floor_state *fs, const char *path)
{
    char wal[4096];
    snprintf(wal, sizeof wal, "%s-wal", path);
    unlink(path);
    unlink(wal);
    if (sqlite3_open(path, &fs->db) != SQLITE_OK ||
        sqlite3_exec(fs->db,
                     "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
                     "CREATE TABLE invoices(id INTEGER PRIMARY KEY, reference TEXT);",
                     NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(fs->db, "BEGIN", -1, &fs->begin, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(fs->db, "COMMIT", -1, &fs->commit, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(fs->db, "INSERT INTO invoices(id) VALUES(?1)", -1, &fs->intent, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(fs->db, "UPDATE invoices SET reference = '1764000000123' WHERE id = ?1",
                           -1, &fs->outcome, NULL) != SQLITE_OK) {
        fprintf(stderr, "floor: %s: %s\n", path, fs->db ? sqlite3_errmsg(fs->db) : "cannot open");
        return false;
    }
    for (long i = 1; i <= FLOOR_WARM_TRANSACTIONS; i++)
        if (!floor_tx(fs, fs->intent, -i) || !floor_tx(fs, fs->outcome, -i))
            return false;
    fs->wal_fd = open(wal, O_RDWR | O_CLOEXEC);
    return fs->wal_fd >= 0 && fdatasync(fs->wal_fd) == 0;
}

int main(int argc, char **argv)
{
    floor_state fs;
    memset(&fs, 0, sizeof fs);
    fs.wal_fd = -1;
    pthread_mutex_init(&fs.db_lock, NULL);
    const char *body_file = NULL, *db_path = NULL;
    int port = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port") == 0)
            port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--sim-url") == 0)
            fs.sim_url = argv[i + 1];
        else if (strcmp(argv[i], "--body-file") == 0)
            body_file = argv[i + 1];
        else if (strcmp(argv[i], "--db") == 0)
            db_path = argv[i + 1];
    }
    if (port <= 0 || port > 65535 || fs.sim_url == NULL || body_file == NULL || argc % 2 == 0) {
        fprintf(stderr, "usage: floor --port P --sim-url URL --body-file F [--db PATH]\n");
        return 2;
    }
    size_t len = 0;
    char *tmpl = bench_read_file(body_file);
    fs.body = tmpl ? bench_expand(tmpl, 1, &len) : NULL;
    free(tmpl);
    if (fs.body == NULL) {
        fprintf(stderr, "floor: cannot read %s\n", body_file);
        return 2;
    }
    if (db_path != NULL && !floor_open_db(&fs, db_path))
        return 1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    struct MHD_Daemon *d =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION,
                         (uint16_t)port, NULL, NULL, floor_handle, &fs, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "floor: cannot listen on port %d\n", port);
        return 1;
    }
    int sig = 0;
    sigwait(&stop, &sig);
    MHD_stop_daemon(d);
    if (fs.db != NULL) {
        sqlite3_finalize(fs.begin);
        sqlite3_finalize(fs.commit);
        sqlite3_finalize(fs.intent);
        sqlite3_finalize(fs.outcome);
        sqlite3_close(fs.db);
        close(fs.wal_fd);
    }
    free(fs.body);
    curl_global_cleanup();
    return 0;
}
