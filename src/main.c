/* main.c — seqr-gateway: command line, start-up, the signal/watchdog loop and
 * an orderly shutdown.
 *
 *   seqr-gateway --config FILE        run in the foreground (logs to stderr)
 *   seqr-gateway --check-config FILE  validate, print every problem, exit 0 or 2
 *   seqr-gateway --version
 *
 * Under systemd (Type=notify) it reports READY=1, STATUS=, WATCHDOG=1 (only
 * while the poller's loop is alive) and STOPPING=1. SIGTERM/SIGINT stop
 * accepting requests, let requests and polls in flight finish, close the store
 * and exit 0. */
#include <curl/curl.h>
#include <errno.h>
#include <libxml/parser.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "config.h"
#include "events.h"
#include "http/server.h"
#include "log.h"
#include "poller.h"
#include "seqr/seqr.h"
#include "service.h"
#include "store.h"
#include "webhook.h"

/* The poller loop must have gone round within this long for WATCHDOG=1. */
#define MAIN_WATCHDOG_STALE_MS 10000

static void main_usage(FILE *f)
{
    fputs("usage: seqr-gateway --config FILE\n"
          "       seqr-gateway --check-config FILE\n"
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

static void main_status(const config *cfg, poller *p, char *last, size_t lastlen)
{
    poller_stats ps;
    poller_get_stats(p, &ps);
    char status[256];
    snprintf(status, sizeof status, "STATUS=listening on %s:%d, %lld invoice%s pending%s",
             cfg->http_listen, cfg->http_port, (long long)ps.pending, ps.pending == 1 ? "" : "s",
             ps.seqr_reachable ? "" : ", SEQR unreachable");
    if (strcmp(status, last) != 0) {
        sd_notify(0, status);
        snprintf(last, lastlen, "%s", status);
    }
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
    buf err = BUF_INIT;

    if (main_load_config(path, &cfg, true) != 0) {
        config_free(&cfg);
        return 2;
    }
    log_level level = LOG_LEVEL_INFO;
    log_parse_level(cfg.log_level, &level);
    log_set_level(level);
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
    if (store_open(cfg.store_path, &st, &err) != STORE_OK) {
        log_error("store: %s", buf_cstr(&err));
        goto cleanup;
    }
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

    http_context hc = {&cfg, svc, pol, store_now_ms(), st, hub, webhooks};
    srv = http_server_start(&hc, &err);
    if (srv == NULL) {
        log_error("http: %s", buf_cstr(&err));
        goto cleanup;
    }
    log_info("seqr-gateway %s listening on http://%s:%d (SEQR at %s)", SEQR_VERSION,
             cfg.http_listen, cfg.http_port, cfg.seqr_url);
    char last_status[256] = "";
    sd_notify(0, "READY=1");
    main_status(&cfg, pol, last_status, sizeof last_status);

    for (;;) {
        struct timespec tick = {1, 0};
        int sig = sigtimedwait(&sigs, NULL, &tick);
        if (sig == SIGTERM || sig == SIGINT) {
            log_info("received %s; stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            break;
        }
        if (sig == SIGHUP)
            log_info("SIGHUP ignored: restart the service to apply a new configuration");
        poller_stats ps;
        poller_get_stats(pol, &ps);
        if (main_mono_ms() - ps.heartbeat_ms < MAIN_WATCHDOG_STALE_MS)
            sd_notify(0, "WATCHDOG=1");
        else
            log_error("poller loop has not run for %lld ms; withholding the watchdog",
                      (long long)(main_mono_ms() - ps.heartbeat_ms));
        main_status(&cfg, pol, last_status, sizeof last_status);
    }
    sd_notify(0, "STOPPING=1");
    rc = 0;
cleanup:
    if (hub != NULL)
        events_hub_close(hub); /* waits and streams end, so the server can stop */
    http_server_stop(srv);
    webhook_stop(webhooks);
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
    if (argc == 3 && strcmp(argv[1], "--config") == 0)
        return main_run(argv[2]);
    main_usage(stderr);
    return 2;
}
