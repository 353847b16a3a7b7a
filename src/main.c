/* main.c — seqr-gateway: command line, start-up, the signal/watchdog loop and
 * an orderly shutdown.
 *
 *   seqr-gateway --config FILE        run in the foreground (logs to stderr)
 *   seqr-gateway --check-config FILE  validate, print every problem, exit 0 or 2
 *   seqr-gateway --backup [FILE]      ask the running daemon for an online backup
 *   seqr-gateway --copy-store-to URL [FILE]  copy the SQLite store into PostgreSQL
 *   seqr-gateway --version
 *
 * SIGHUP (systemctl reload) re-reads the config and applies the log level,
 * the API key (the old one accepted for [http] rotation_overlap_s more),
 * [poller] invoice_ttl_s and auto_receipt; other changes are named in the
 * log as needing a restart.
 *
 * Under systemd (Type=notify) it reports READY=1, STATUS=, WATCHDOG=1 (only
 * while the poller's loop is alive) and STOPPING=1. SIGTERM/SIGINT stop
 * accepting requests, let requests and polls in flight finish, close the store
 * and exit 0. */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <libxml/parser.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "config.h"
#include "events.h"
#include "health.h"
#include "http/api.h"
#include "http/apikey.h"
#include "http/server.h"
#include "log.h"
#include "metrics.h"
#include "poller.h"
#include "secretbox.h"
#include "seqr/seqr.h"
#include "service.h"
#include "store.h"
#include "webhook.h"

/* The poller loop must have gone round within this long for WATCHDOG=1. */
#define MAIN_WATCHDOG_STALE_MS 10000
/* Exit status when the database's schema is newer than this build knows (at
 * start-up, or migrated by a newer gateway on a shared database while this
 * one ran): the unit does not restart on it (RestartPreventExitStatus=3). */
#define MAIN_EXIT_SCHEMA_NEWER 3

static void main_usage(FILE *f)
{
    fputs("usage: seqr-gateway --config FILE\n"
          "       seqr-gateway --check-config FILE\n"
          "       seqr-gateway --backup [FILE]   (online backup by the running daemon)\n"
          "       seqr-gateway --copy-store-to postgresql://... [FILE]\n"
          "                    (copy the stopped gateway's SQLite store into PostgreSQL)\n"
          "       seqr-gateway --version\n"
          "\n"
          "A local HTTP/JSON gateway to the SEQR payment service. See seqr-gateway(8).\n",
          f);
}

/* Loads and validates; prints problems to stderr. Returns 0 ok, 2 invalid. */
static int main_load_config(const char *path, config *cfg, bool quiet_ok)
{
    buf errors = BUF_INIT, warnings = BUF_INIT;
    int problems = config_load(path, cfg, &errors, &warnings);
    if (warnings.len > 0)
        fputs(buf_cstr(&warnings), stderr);
    if (problems > 0) {
        fputs(buf_cstr(&errors), stderr);
        fprintf(stderr, "%s: %d problem%s found\n", path, problems, problems == 1 ? "" : "s");
    } else if (!quiet_ok) {
        printf("%s: OK\n", path);
    }
    buf_free(&errors);
    buf_free(&warnings);
    return problems > 0 ? 2 : 0;
}

static int64_t main_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* What was last sent to systemd and logged. */
typedef struct {
    char status[320];
    char verdict[200];
} main_status_memo;

/* STATUS= says what /healthz says: ok, or degraded/failed with the reasons.
 * A change of verdict is logged once. */
static void main_status(const config *cfg, service *svc, poller *p, store *st,
                        main_status_memo *memo)
{
    poller_stats ps;
    poller_get_stats(p, &ps);
    int64_t unknown = 0;
    bool db_ok = service_counts(svc, &unknown);
    health_report hr;
    health_assess_poller(&ps, db_ok, unknown, &hr);
    int64_t backlog = 0, oldest = 0; /* events */
    if (store_events_backlog(st, &backlog, &oldest) == STORE_OK && oldest > 0)
        health_assess_webhooks(backlog, store_now_ms() - oldest, &hr);
    char verdict[200];
    health_summary(&hr, verdict, sizeof verdict);
    char status[320];
    snprintf(status, sizeof status,
             "STATUS=%s; listening on %s:%d, %lld invoice%s pending, %lld webhook event%s "
             "undelivered",
             verdict, cfg->http_listen, cfg->http_port, (long long)ps.pending,
             ps.pending == 1 ? "" : "s", (long long)backlog, backlog == 1 ? "" : "s");
    if (strcmp(status, memo->status) != 0) {
        sd_notify(0, status);
        snprintf(memo->status, sizeof memo->status, "%s", status);
    }
    if (strcmp(verdict, memo->verdict) != 0) {
        if (hr.state == HEALTH_OK && memo->verdict[0] != '\0')
            log_info("health: ok again");
        else if (hr.state == HEALTH_DEGRADED)
            log_warn("health: %s", verdict);
        else if (hr.state == HEALTH_FAILED)
            log_error("health: %s", verdict);
        snprintf(memo->verdict, sizeof memo->verdict, "%s", verdict);
    }
}

/* What SIGHUP applies while running; every other changed key needs a restart
 * and is named in the log. Polling goes on throughout (another thread). */
static const char *const main_reloadable[] = {
    "[log] level",
    "[http] api_key",
    "[http] rotation_overlap_s",
    "[poller] invoice_ttl_s",
    "[poller] auto_receipt",
};

static bool main_is_reloadable(const char *name)
{
    for (size_t i = 0; i < sizeof main_reloadable / sizeof *main_reloadable; i++)
        if (strcmp(name, main_reloadable[i]) == 0)
            return true;
    return false;
}

/* Logs each line of text at error level, prefixed. */
static void main_log_lines(const char *prefix, const char *text)
{
    const char *p = text;
    while (*p != '\0') {
        const char *nl = strchr(p, '\n');
        int len = nl ? (int)(nl - p) : (int)strlen(p);
        if (len > 0)
            log_error("%s%.*s", prefix, len, p);
        p += len + (nl ? 1 : 0);
    }
}

/* SIGHUP: re-reads path and applies what can change while running. A config
 * with problems is refused as a whole. cfg is the running config (only this
 * thread writes it; the two values other threads read are stored atomically). */
static void main_reload(const char *path, config *cfg, http_apikey *keys)
{
    config next;
    buf errors = BUF_INIT, warnings = BUF_INIT, applied = BUF_INIT, restart = BUF_INIT;
    sd_notify(0, "RELOADING=1");
    int problems = config_load(path, &next, &errors, &warnings);
    if (warnings.len > 0)
        main_log_lines("reload: ", buf_cstr(&warnings));
    if (problems > 0) {
        main_log_lines("reload: ", buf_cstr(&errors));
        log_error("reload refused: %s has %d problem%s; still running with the previous "
                  "configuration",
                  path, problems, problems == 1 ? "" : "s");
        goto done;
    }
    char changed[64][64];
    int n = config_diff(cfg, &next, changed, 64);
    for (int i = 0; i < n && i < 64; i++) {
        buf *to = main_is_reloadable(changed[i]) ? &applied : &restart;
        buf_printf(to, "%s%s", to->len > 0 ? ", " : "", changed[i]);
    }

    log_level level = LOG_LEVEL_INFO;
    if (log_parse_level(next.log_level, &level))
        log_set_level(level);
    if (strcmp(next.http_api_key, cfg->http_api_key) != 0) {
        log_add_secret(next.http_api_key);
        if (!http_apikey_rotate(keys, next.http_api_key, next.http_rotation_overlap_s)) {
            log_error("reload: out of memory rotating the API key; the old key stays");
        } else {
            char *old = cfg->http_api_key;
            cfg->http_api_key = next.http_api_key;
            next.http_api_key = old;
            if (cfg->http_api_key[0] == '\0')
                log_warn("reload: [http] api_key is now empty: every endpoint is open");
            else
                log_info("reload: new API key in force; the previous one is accepted for %ld s "
                         "more",
                         next.http_api_key[0] != '\0' ? next.http_rotation_overlap_s : 0L);
        }
    }
    cfg->http_rotation_overlap_s = next.http_rotation_overlap_s;
    __atomic_store_n(&cfg->poller_invoice_ttl_s, next.poller_invoice_ttl_s, __ATOMIC_RELAXED);
    __atomic_store_n(&cfg->poller_auto_receipt, next.poller_auto_receipt, __ATOMIC_RELAXED);
    /* log level: copy the text so a later diff compares like with like */
    char *old_level = cfg->log_level;
    cfg->log_level = next.log_level;
    next.log_level = old_level;

    if (applied.len > 0)
        log_info("reload: applied %s", buf_cstr(&applied));
    else if (restart.len == 0)
        log_info("reload: %s unchanged", path);
    if (restart.len > 0)
        log_warn("reload: needs a restart to take effect (systemctl restart seqr-gateway): %s; "
                 "the running values stay in force until then",
                 buf_cstr(&restart));
done:
    config_free(&next);
    buf_free(&errors);
    buf_free(&warnings);
    buf_free(&applied);
    buf_free(&restart);
    sd_notify(0, "READY=1");
}

/* url for the log: a "user:password@" in it becomes "***@". */
static void main_url_shown(const char *url, char *out, size_t size)
{
    const char *host = strstr(url, "://");
    host = host ? host + 3 : url;
    size_t authority = strcspn(host, "/?#");
    const char *at = memchr(host, '@', authority);
    if (at == NULL)
        snprintf(out, size, "%s", url);
    else
        snprintf(out, size, "%.*s***%s", (int)(host - url), url, at);
}

/* Secrets live in this process's memory (API key, SEQR passwords, terminal
 * passwords once decrypted): no core dump, and no ptrace or /proc/PID/mem by
 * other processes of the same user. (setrlimit(RLIMIT_CORE) is not called
 * here: the unit's system call filter forbids @resources; it sets
 * LimitCORE=0 instead.) */
static void main_no_dumps(void)
{
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        log_warn("cannot mark the process non-dumpable (prctl)");
}

/* Up to max_in_flight SEQR connections plus max_connections clients need
 * more descriptors than the usual soft limit of 1024: raise it to the hard
 * limit (systemd's default hard limit is 524288), as systemd advises. */
static void main_raise_nofile(void)
{
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) != 0 || nofile.rlim_cur >= nofile.rlim_max)
        return;
    nofile.rlim_cur = nofile.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &nofile) != 0)
        log_warn("cannot raise the open-files limit to %llu: %s",
                 (unsigned long long)nofile.rlim_max, strerror(errno));
}

static int main_run(const char *path)
{
    config cfg;
    int rc = 1;
    store *st = NULL;
    seqr_client *seqr = NULL;
    service *svc = NULL;
    poller *pol = NULL;
    http_server *srv = NULL;
    events_hub *hub = NULL;
    webhook_worker *webhooks = NULL;
    http_apikey *keys = NULL;
    buf err = BUF_INIT;

    if (main_load_config(path, &cfg, true) != 0) {
        config_free(&cfg);
        return 2;
    }
    log_level level = LOG_LEVEL_INFO;
    log_parse_level(cfg.log_level, &level);
    log_set_level(level);
    main_no_dumps();
    log_add_secret(cfg.seqr_password);
    log_add_secret(cfg.http_api_key);
    log_add_secret(cfg.reseller_password);
    log_add_secret(cfg.webhooks_secret);

    /* Files this daemon creates (the database) are for its own user only. */
    umask(077);

    /* Signals are taken synchronously by the main loop; block them in every
     * thread started from here on. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    main_raise_nofile();

    xmlInitParser();
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_error("libcurl initialisation failed");
        goto cleanup;
    }
    /* SQLite at path, or PostgreSQL at url (shared with other gateways). */
    const char *location = cfg.store_url[0] != '\0' ? cfg.store_url : cfg.store_path;
    store_err opened = store_open(location, &st, &err);
    if (opened != STORE_OK) {
        log_error("store: %s", buf_cstr(&err));
        if (opened == STORE_SCHEMA_NEWER) {
            log_error("upgrade this seqr-gateway to the version that migrated the database");
            rc = MAIN_EXIT_SCHEMA_NEWER;
        }
        goto cleanup;
    }
    /* The key that encrypts registered terminals' passwords: a file apart
     * from the database (created on first start). */
    buf key_path = BUF_INIT;
    if (cfg.store_key_file[0] != '\0')
        buf_puts(&key_path, cfg.store_key_file);
    else
        buf_printf(&key_path, "%s.key", cfg.store_path);
    unsigned char key[SECRETBOX_KEY_LEN];
    bool key_ok = secretbox_key_load(buf_cstr(&key_path), key, &err);
    buf_free(&key_path);
    if (!key_ok || store_set_secret_key(st, key) != STORE_OK) {
        log_error("store: %s", key_ok ? "sealing terminal passwords failed" : buf_cstr(&err));
        memset(key, 0, sizeof key);
        goto cleanup;
    }
    memset(key, 0, sizeof key);
    char ua[64];
    snprintf(ua, sizeof ua, "seqr-gateway/%s", SEQR_VERSION);
    seqr_client_options so = {
        .url = cfg.seqr_url,
        .ca_file = cfg.seqr_ca_file,
        .timeout_ms = cfg.seqr_timeout_ms,
        .user_agent = ua,
        .channel = cfg.seqr_channel,
        .client_id = cfg.seqr_client_id,
        .client_reference = cfg.seqr_client_reference,
        .terminal_id = cfg.seqr_terminal_id,
        .terminal_password = cfg.seqr_password,
        .reseller_id = cfg.reseller_id,
        .reseller_user_id = cfg.reseller_user_id,
        .reseller_password = cfg.reseller_password,
        .observe = metrics_seqr_observe,
    };
    seqr = seqr_client_new(&so);
    svc = seqr ? service_new(&cfg, st, seqr) : NULL;
    pol = svc ? poller_new(&cfg, svc, st, seqr) : NULL;
    if (pol == NULL) {
        log_error("start-up failed: out of memory or libcurl setup failed");
        goto cleanup;
    }
    service_set_pending_hook(svc, poller_pending_hook, pol);
    hub = events_hub_new(st, cfg.http_max_streams);
    if (hub == NULL)
        goto cleanup;
    webhooks = webhook_start(&cfg, st, hub, &err);
    if (webhooks == NULL) {
        log_error("%s", buf_cstr(&err));
        goto cleanup;
    }
    if (!poller_start(pol))
        goto cleanup;

    keys = http_apikey_new(cfg.http_api_key);
    if (keys == NULL) {
        log_error("start-up failed: out of memory");
        goto cleanup;
    }
    http_context hc = {&cfg, svc, pol, store_now_ms(), keys, true, hub, webhooks};
    srv = http_server_start(&hc, &http_api_router, &err);
    if (srv == NULL) {
        log_error("http: %s", buf_cstr(&err));
        goto cleanup;
    }
    char seqr_shown[512];
    main_url_shown(cfg.seqr_url, seqr_shown, sizeof seqr_shown);
    log_info("seqr-gateway %s listening on http://%s:%d (SEQR at %s)", SEQR_VERSION,
             cfg.http_listen, cfg.http_port, seqr_shown);
    main_status_memo memo = {"", ""};
    sd_notify(0, "READY=1");
    main_status(&cfg, svc, pol, st, &memo);

    int stop_rc = 0;
    for (;;) {
        struct timespec tick = {1, 0};
        int sig = sigtimedwait(&sigs, NULL, &tick);
        if (sig == SIGTERM || sig == SIGINT) {
            log_info("received %s; stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            break;
        }
        if (sig == SIGHUP) {
            log_info("received SIGHUP; reloading %s", path);
            main_reload(path, &cfg, keys);
        }
        poller_stats ps;
        poller_get_stats(pol, &ps);
        if (ps.schema_newer > 0) {
            /* Stopping hands this gateway's pending invoices to the newer
             * one at once (the liveness lock goes with the connection). */
            log_error("store: another seqr-gateway migrated the database to schema version %d, "
                      "newer than this one knows; stopping (upgrade this one, then start it)",
                      ps.schema_newer);
            stop_rc = MAIN_EXIT_SCHEMA_NEWER;
            break;
        }
        if (main_mono_ms() - ps.heartbeat_ms < MAIN_WATCHDOG_STALE_MS)
            sd_notify(0, "WATCHDOG=1");
        else
            log_error("poller loop has not run for %lld ms; withholding the watchdog",
                      (long long)(main_mono_ms() - ps.heartbeat_ms));
        main_status(&cfg, svc, pol, st, &memo);
    }
    sd_notify(0, "STOPPING=1");
    rc = stop_rc;
cleanup:
    if (hub != NULL)
        events_hub_close(hub); /* waits and streams end, so the server can stop */
    http_server_stop(srv);
    webhook_stop(webhooks);
    http_apikey_free(keys);
    if (pol != NULL)
        poller_stop(pol);
    poller_free(pol);
    service_free(svc);
    seqr_client_free(seqr);
    events_hub_free(hub);
    store_close(st);
    curl_global_cleanup();
    xmlCleanupParser();
    buf_free(&err);
    config_free(&cfg);
    log_clear_secrets();
    if (rc == 0)
        log_info("stopped");
    return rc;
}

static size_t main_collect(char *data, size_t size, size_t n, void *ud)
{
    buf_append((buf *)ud, data, size * n);
    return size * n;
}

/* seqr-gateway --backup [CONFIG]: asks the running daemon (POST
 * /admin/backup, with the config's API key) for an online backup and prints
 * the copy's path. The daemon makes the copy through its own connection: a
 * second process must not open the live database for writing. */
static int main_backup(const char *path)
{
    config cfg;
    int rc = 1;
    buf body = BUF_INIT, url = BUF_INIT, auth = BUF_INIT;
    CURL *h = NULL;
    struct curl_slist *headers = NULL;
    json_t *answer = NULL;
    if (main_load_config(path, &cfg, true) != 0) {
        config_free(&cfg);
        return 2;
    }
    const char *host = cfg.http_listen;
    if (strcmp(host, "0.0.0.0") == 0)
        host = "127.0.0.1";
    else if (strcmp(host, "::") == 0)
        host = "::1";
    bool v6 = strchr(host, ':') != NULL;
    buf_printf(&url, "http://%s%s%s:%d/admin/backup", v6 ? "[" : "", host, v6 ? "]" : "",
               cfg.http_port);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || (h = curl_easy_init()) == NULL) {
        fprintf(stderr, "seqr-gateway --backup: libcurl initialisation failed\n");
        goto cleanup;
    }
    if (cfg.http_api_key[0] != '\0') {
        buf_printf(&auth, "Authorization: Bearer %s", cfg.http_api_key);
        headers = curl_slist_append(headers, buf_cstr(&auth));
    }
    headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, buf_cstr(&url));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, "{}");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, main_collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 3600L);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (cc != CURLE_OK) {
        fprintf(stderr, "seqr-gateway --backup: cannot reach the gateway at %s: %s\n",
                buf_cstr(&url), curl_easy_strerror(cc));
        goto cleanup;
    }
    answer = json_loads(buf_cstr(&body), 0, NULL);
    if (status != 201 || answer == NULL) {
        json_t *e = answer ? json_object_get(answer, "error") : NULL;
        const char *msg = e ? json_string_value(json_object_get(e, "message")) : NULL;
        fprintf(stderr, "seqr-gateway --backup: HTTP %ld: %s\n", status,
                msg ? msg : buf_cstr(&body));
        goto cleanup;
    }
    printf("%s\n", json_string_value(json_object_get(answer, "file")));
    rc = 0;
cleanup:
    json_decref(answer);
    curl_slist_free_all(headers);
    if (h != NULL)
        curl_easy_cleanup(h);
    curl_global_cleanup();
    buf_free(&body);
    buf_free(&url);
    buf_free(&auth);
    config_free(&cfg);
    return rc;
}

static void main_copied(const char *table, int64_t rows, void *ud)
{
    (void)ud;
    printf("%-18s %lld\n", table, (long long)rows);
}

/* seqr-gateway --copy-store-to URL [CONFIG]: copies the config's [store]
 * path (SQLite; the gateway stopped) into the empty PostgreSQL database at
 * url and prints the rows copied per table. */
static int main_copy_store(const char *url, const char *path)
{
    config cfg;
    if (main_load_config(path, &cfg, true) != 0) {
        config_free(&cfg);
        return 2;
    }
    int rc = 1;
    buf notes = BUF_INIT, err = BUF_INIT, where = BUF_INIT;
    store_location_redact(url, &where);
    if (!store_is_url(url)) {
        fprintf(stderr, "seqr-gateway --copy-store-to: %s is not a postgresql:// URL\n",
                buf_cstr(&where));
        rc = 2;
        goto cleanup;
    }
    if (cfg.store_path[0] == '\0') {
        fprintf(stderr, "seqr-gateway --copy-store-to: %s has no [store] path to copy\n", path);
        rc = 2;
        goto cleanup;
    }
    log_set_level(LOG_LEVEL_WARN);
    umask(077);
    printf("copying %s into %s\n", cfg.store_path, buf_cstr(&where));
    fflush(stdout);
    if (store_copy_to_pg(cfg.store_path, url, main_copied, NULL, &notes, &err) != STORE_OK) {
        fputs(buf_cstr(&notes), stderr);
        fprintf(stderr, "seqr-gateway --copy-store-to: %s; nothing was copied\n", buf_cstr(&err));
        goto cleanup;
    }
    fflush(stdout);
    fputs(buf_cstr(&notes), stderr);
    printf("done. Gateways on the PostgreSQL store need the same key_file as this one had");
    if (cfg.store_key_file[0] != '\0')
        printf(" (%s)\n", cfg.store_key_file);
    else
        printf(" (%s.key)\n", cfg.store_path);
    rc = 0;
cleanup:
    buf_free(&notes);
    buf_free(&err);
    buf_free(&where);
    config_free(&cfg);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("seqr-gateway %s\n", SEQR_VERSION);
        return 0;
    }
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        main_usage(stdout);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "--check-config") == 0) {
        config cfg;
        int rc = main_load_config(argv[2], &cfg, false);
        config_free(&cfg);
        return rc;
    }
    if ((argc == 2 || argc == 3) && strcmp(argv[1], "--backup") == 0)
        return main_backup(argc == 3 ? argv[2] : SYSCONFDIR "/seqr-gateway/seqr-gateway.conf");
    if ((argc == 3 || argc == 4) && strcmp(argv[1], "--copy-store-to") == 0)
        return main_copy_store(argv[2],
                               argc == 4 ? argv[3] : SYSCONFDIR "/seqr-gateway/seqr-gateway.conf");
    if (argc == 3 && strcmp(argv[1], "--config") == 0)
        return main_run(argv[2]);
    main_usage(stderr);
    return 2;
}
