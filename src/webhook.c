/* webhook.c — the webhook delivery worker; see webhook.h. */
#include "webhook.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "webhook_sign.h"

#define WEBHOOK_MAX_DISABLED 64

/* One request under way. */
typedef struct webhook_job {
    struct webhook_job *next;
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    char url[2048];
    int64_t event_id;
    int64_t invoice_id;
    int64_t event_at;
    int attempts; /* before this one */
    int64_t started_mono;
    char curl_error[CURL_ERROR_SIZE];
} webhook_job;

struct webhook_worker {
    const config *cfg;
    store *st;
    events_hub *hub;
    webhook_key key;
    bool have_key;
    CURLM *multi;
    pthread_t thread;
    atomic_bool stop;
    atomic_bool woken;    /* new events were committed */
    atomic_bool reenable; /* an operator redelivered: forget the 410s */
    atomic_int busy;      /* in_flight, for webhook_wake() */
    webhook_job *jobs;
    int in_flight;
    unsigned int seed;
    /* URLs that answered 410 Gone: nothing more goes to them until restart. */
    char disabled[WEBHOOK_MAX_DISABLED][2048];
    int ndisabled;
    pthread_mutex_t stats_lock;
    webhook_stats stats;
};

int64_t webhook_backoff_ms(int attempts, int64_t max_ms)
{
    int64_t d = 1000;
    for (int i = 1; i < attempts && d < max_ms; i++)
        d *= 2;
    return d < max_ms ? d : max_ms;
}

static void webhook_wake(void *ud)
{
    webhook_worker *w = ud;
    /* Runs on every commit that wrote events (with the store's lock held):
     * a syscall only when the worker is not already woken and has room to
     * start a delivery; otherwise it sees the flag when a delivery ends. */
    if (atomic_exchange(&w->woken, true))
        return;
    if (atomic_load(&w->busy) < w->cfg->webhooks_max_in_flight)
        curl_multi_wakeup(w->multi);
}

static bool webhook_disabled(const webhook_worker *w, const char *url)
{
    for (int i = 0; i < w->ndisabled; i++)
        if (strcmp(w->disabled[i], url) == 0)
            return true;
    return false;
}

static bool webhook_invoice_busy(const webhook_worker *w, int64_t invoice_id)
{
    for (const webhook_job *j = w->jobs; j != NULL; j = j->next)
        if (j->invoice_id == invoice_id)
            return true;
    return false;
}

/* The URL an event goes to; NULL when none. */
static const char *webhook_url_for(const webhook_worker *w, const store_event *ev)
{
    if (ev->webhook_url != NULL && ev->webhook_url[0] != '\0')
        return ev->webhook_url;
    if (strcmp(ev->type, "invoice.paid") == 0 && ev->notification_url != NULL &&
        ev->notification_url[0] != '\0')
        return ev->notification_url;
    if (w->cfg->webhooks_url[0] != '\0')
        return w->cfg->webhooks_url;
    return NULL;
}

static void webhook_job_free(webhook_job *j)
{
    if (j == NULL)
        return;
    if (j->easy != NULL)
        curl_easy_cleanup(j->easy);
    curl_slist_free_all(j->headers);
    free(j->body);
    free(j);
}

static size_t webhook_discard(char *ptr, size_t size, size_t nmemb, void *ud)
{
    return size * nmemb; /* the shop's answer body is not kept */
}

static struct curl_slist *webhook_header(struct curl_slist *list, const char *name,
                                         const char *value, bool *ok)
{
    char line[256];
    snprintf(line, sizeof line, "%s: %s", name, value);
    struct curl_slist *n = curl_slist_append(list, line);
    if (n == NULL) {
        *ok = false;
        return list;
    }
    return n;
}

/* Starts the delivery of ev to url. False when it could not even start
 * (then the event is retried as after a failed attempt). */
static bool webhook_start_job(webhook_worker *w, const store_event *ev, const char *url)
{
    webhook_job *j = calloc(1, sizeof *j);
    json_t *o = events_render(ev);
    bool ok = false;
    if (j == NULL || o == NULL)
        goto cleanup;
    j->body = json_dumps(o, JSON_COMPACT);
    if (j->body == NULL)
        goto cleanup;
    snprintf(j->url, sizeof j->url, "%s", url);
    j->event_id = ev->id;
    j->invoice_id = ev->invoice_id;
    j->event_at = ev->at;
    j->attempts = ev->attempts;
    char msg_id[32];
    events_msg_id(ev->id, msg_id);
    int64_t ts = store_now_ms() / 1000;
    char ts_text[24];
    snprintf(ts_text, sizeof ts_text, "%lld", (long long)ts);
    char sig[WEBHOOK_SIGNATURE_LEN];
    if (!webhook_sign(&w->key, msg_id, ts, j->body, strlen(j->body), sig))
        goto cleanup;
    bool hok = true;
    j->headers = webhook_header(j->headers, "Content-Type", "application/json", &hok);
    j->headers = webhook_header(j->headers, "User-Agent", "seqr-gateway/" SEQR_VERSION, &hok);
    j->headers = webhook_header(j->headers, "webhook-id", msg_id, &hok);
    j->headers = webhook_header(j->headers, "webhook-timestamp", ts_text, &hok);
    j->headers = webhook_header(j->headers, "webhook-signature", sig, &hok);
    j->headers = webhook_header(j->headers, "Expect", "", &hok);
    if (!hok)
        goto cleanup;
    j->easy = curl_easy_init();
    if (j->easy == NULL)
        goto cleanup;
    CURL *e = j->easy;
    if (curl_easy_setopt(e, CURLOPT_URL, j->url) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_POST, 1L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, j->body) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(j->body)) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, j->headers) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, w->cfg->webhooks_timeout_ms) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, w->cfg->webhooks_timeout_ms) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, webhook_discard) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, j->curl_error) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PRIVATE, j) != CURLE_OK)
        goto cleanup;
    j->started_mono = events_now_mono_ms();
    if (curl_multi_add_handle(w->multi, e) != CURLM_OK)
        goto cleanup;
    j->next = w->jobs;
    w->jobs = j;
    w->in_flight++;
    ok = true;
cleanup:
    json_decref(o);
    if (!ok)
        webhook_job_free(j);
    return ok;
}

/* Records an attempt and decides what comes next for its event. */
static void webhook_finish(webhook_worker *w, int64_t event_id, int64_t event_at, int attempts,
                           const char *url, long status, int64_t latency_ms, const char *error)
{
    const char *state = "pending";
    int64_t now = store_now_ms();
    int64_t next_at = 0;
    char err_text[512];
    snprintf(err_text, sizeof err_text, "%s", error ? error : "");
    bool delivered = status >= 200 && status <= 299;
    if (delivered) {
        state = "delivered";
    } else if (status == 410) {
        state = "failed";
        snprintf(err_text, sizeof err_text, "410 Gone: the endpoint is disabled");
        if (!webhook_disabled(w, url) && w->ndisabled < WEBHOOK_MAX_DISABLED) {
            snprintf(w->disabled[w->ndisabled++], sizeof w->disabled[0], "%s", url);
            log_error("webhooks: %s answered 410 Gone; no more deliveries to it until restart or "
                      "POST /events/{id}/redeliver",
                      url);
        }
    } else {
        if (err_text[0] == '\0')
            snprintf(err_text, sizeof err_text, "HTTP %ld", status);
        if (now - event_at >= w->cfg->webhooks_retry_for_s * 1000) {
            state = "failed";
        } else {
            int64_t d =
                webhook_backoff_ms(attempts + 1, w->cfg->webhooks_retry_max_interval_s * 1000);
            int64_t jitter = d / 2 > 0 ? (int64_t)(rand_r(&w->seed) % (unsigned)(d / 2 + 1)) : 0;
            next_at = now + d / 2 + jitter;
        }
    }
    store_err se = store_event_attempt(w->st, event_id, url, (int)status, latency_ms, err_text,
                                       state, next_at);
    if (se != STORE_OK)
        log_error("webhooks: recording the attempt for event %lld failed: %s", (long long)event_id,
                  store_strerror(se));
    pthread_mutex_lock(&w->stats_lock);
    if (delivered)
        w->stats.delivered++;
    else
        w->stats.attempts_failed++;
    if (strcmp(state, "failed") == 0)
        w->stats.given_up++;
    if (status > 0)
        w->stats.last_latency_ms = latency_ms;
    pthread_mutex_unlock(&w->stats_lock);
    if (!delivered)
        log_warn("webhooks: event %lld to %s: %s%s", (long long)event_id, url, err_text,
                 strcmp(state, "failed") == 0 ? " (given up)" : " (will retry)");
}

/* The due events are copied out of the store's read first, then acted on
 * (each action writes to the store). */
typedef struct {
    store_event *evs;
    int n, cap;
} webhook_scan;

static char *webhook_dup(const char *s)
{
    if (s == NULL)
        return NULL;
    char *d = strdup(s);
    if (d == NULL)
        abort();
    return d;
}

static bool webhook_collect(const store_event *ev, void *ud)
{
    webhook_scan *sc = ud;
    if (sc->n >= sc->cap)
        return false;
    store_event *c = &sc->evs[sc->n++];
    *c = *ev;
    c->data = webhook_dup(ev->data);
    c->webhook_url = webhook_dup(ev->webhook_url);
    c->notification_url = webhook_dup(ev->notification_url);
    return true;
}

/* Starts (or settles without a request) one due event; false when there was
 * no room for it. */
static bool webhook_due(webhook_worker *w, const store_event *ev, int *room)
{
    if (webhook_invoice_busy(w, ev->invoice_id))
        return true; /* under way: its invoice's next event waits */
    if (*room <= 0)
        return false;
    const char *url = webhook_url_for(w, ev);
    if (url == NULL || !w->have_key) {
        store_err se = store_event_skip(w->st, ev->id);
        if (se != STORE_OK)
            log_error("webhooks: marking event %lld skipped failed: %s", (long long)ev->id,
                      store_strerror(se));
        return true;
    }
    if (webhook_disabled(w, url)) {
        webhook_finish(w, ev->id, ev->at, ev->attempts, url, 410, 0, "");
        return true;
    }
    if (!webhook_start_job(w, ev, url)) {
        webhook_finish(w, ev->id, ev->at, ev->attempts, url, 0, 0,
                       "the request could not be prepared");
        return true;
    }
    (*room)--;
    return true;
}

static void webhook_reap(webhook_worker *w)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(w->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        webhook_job *j = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&j);
        if (j == NULL)
            continue;
        long status = 0;
        const char *error = NULL;
        if (msg->data.result == CURLE_OK)
            curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &status);
        else
            error = j->curl_error[0] ? j->curl_error : curl_easy_strerror(msg->data.result);
        curl_multi_remove_handle(w->multi, j->easy);
        int64_t latency = events_now_mono_ms() - j->started_mono;
        for (webhook_job **p = &w->jobs; *p != NULL; p = &(*p)->next) {
            if (*p == j) {
                *p = j->next;
                break;
            }
        }
        w->in_flight--;
        webhook_finish(w, j->event_id, j->event_at, j->attempts, j->url, status, latency, error);
        webhook_job_free(j);
    }
}

static void *webhook_main(void *arg)
{
    webhook_worker *w = arg;
    int64_t next_scan = 0;
    while (!atomic_load(&w->stop)) {
        int64_t now = events_now_mono_ms();
        int room = w->cfg->webhooks_max_in_flight - w->in_flight;
        if (atomic_exchange(&w->reenable, false))
            w->ndisabled = 0;
        if (atomic_exchange(&w->woken, false))
            next_scan = 0;
        if (room > 0 && now >= next_scan) {
            /* Rows of invoices under way come back too (skipped): ask for
             * enough to fill the room past them. */
            webhook_scan sc = {NULL, 0, room + w->in_flight};
            sc.evs = calloc((size_t)sc.cap, sizeof *sc.evs);
            if (sc.evs == NULL)
                abort();
            store_err e = store_events_due(w->st, store_now_ms(), sc.cap, webhook_collect, &sc);
            if (e != STORE_OK)
                log_error("webhooks: reading the outbox failed: %s", store_strerror(e));
            for (int i = 0; i < sc.n; i++) {
                webhook_due(w, &sc.evs[i], &room);
                store_event_clear(&sc.evs[i]);
            }
            free(sc.evs);
            next_scan = now + 1000; /* retries come due without a wake-up */
        }
        int running = 0;
        CURLMcode mc = curl_multi_perform(w->multi, &running);
        if (mc != CURLM_OK)
            log_error("webhooks: curl_multi_perform: %s", curl_multi_strerror(mc));
        int before = w->in_flight;
        webhook_reap(w);
        if (w->in_flight < before)
            next_scan = 0; /* an ended event may have freed its invoice's next one */
        int64_t wait = next_scan - events_now_mono_ms();
        if (wait < 0)
            wait = 0;
        pthread_mutex_lock(&w->stats_lock);
        w->stats.in_flight = w->in_flight;
        pthread_mutex_unlock(&w->stats_lock);
        atomic_store(&w->busy, w->in_flight);
        if (atomic_load(&w->woken))
            wait = 0;
        /* With every slot taken nothing can start: wait for a delivery to
         * end (its socket wakes the poll; libcurl's own timers too) or for
         * the periodic scan, however often commits set the wake flag or
         * asked for a scan. Without this, a receiver that holds all slots
         * (hanging) made this thread spin at a full core: every commit's
         * flag, and the scan it left due, meant a poll of 0 ms. */
        if (w->in_flight >= w->cfg->webhooks_max_in_flight && wait < 1000)
            wait = 1000;
        mc = curl_multi_poll(w->multi, NULL, 0, (int)wait, NULL);
        if (mc != CURLM_OK) {
            log_error("webhooks: curl_multi_poll: %s", curl_multi_strerror(mc));
            struct timespec pause = {0, 100 * 1000000L}; /* no busy loop on a broken handle */
            nanosleep(&pause, NULL);
        }
    }
    return NULL;
}

webhook_worker *webhook_start(const config *cfg, store *st, events_hub *hub, buf *err)
{
    webhook_worker *w = calloc(1, sizeof *w);
    if (w == NULL) {
        buf_puts(err, "out of memory");
        return NULL;
    }
    w->cfg = cfg;
    w->st = st;
    w->hub = hub;
    w->seed = (unsigned int)store_now_ms();
    pthread_mutex_init(&w->stats_lock, NULL);
    if (cfg->webhooks_secret[0] != '\0') {
        const char *why = NULL;
        if (!webhook_key_parse(cfg->webhooks_secret, &w->key, &why)) {
            buf_printf(err, "[webhooks] secret: %s", why);
            goto fail;
        }
        w->have_key = true;
    }
    w->multi = curl_multi_init();
    if (w->multi == NULL) {
        buf_puts(err, "webhooks: curl_multi_init failed");
        goto fail;
    }
    curl_multi_setopt(w->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)cfg->webhooks_max_in_flight);
    /* Events with nowhere to go are then written skipped by the store; any
     * written pending before (or when this fails) are skipped here. */
    bool changed = false, default_url = cfg->webhooks_url[0] != '\0';
    store_err se = store_set_delivery(st, w->have_key, default_url, &changed);
    if (se != STORE_OK)
        log_error("webhooks: storing what can be delivered failed: %s", store_strerror(se));
    else if (changed && !w->have_key)
        log_info("webhooks: no [webhooks] secret: events are written skipped (the feed and "
                 "streams still carry them)");
    else if (changed && !default_url)
        log_info("webhooks: no [webhooks] url: only events of invoices with a webhookUrl (or, "
                 "for invoice.paid, a notificationUrl) wait for a delivery");
    int64_t others = 0;
    if (se == STORE_OK && changed && store_other_gateways(st, &others) == STORE_OK && others > 0) {
        /* One database, one delivery rule: a gateway that cannot deliver an
         * event it takes marks it skipped, so a mixed set loses webhooks. */
        log_error("webhooks: this gateway's [webhooks] (secret: %s, url: %s) differs from what "
                  "the %lld other running gateway(s) on this database set: every gateway of one "
                  "database needs the same [webhooks], or webhooks are skipped (docs/scaling.md)",
                  w->have_key ? "yes" : "no", default_url ? "yes" : "no",
                  (long long)others);
    }
    events_hub_listen(hub, webhook_wake, w);
    if (pthread_create(&w->thread, NULL, webhook_main, w) != 0) {
        events_hub_listen(hub, NULL, NULL);
        buf_puts(err, "webhooks: cannot start the delivery thread");
        goto fail;
    }
    return w;
fail:
    if (w->multi != NULL)
        curl_multi_cleanup(w->multi);
    webhook_key_clear(&w->key);
    pthread_mutex_destroy(&w->stats_lock);
    free(w);
    return NULL;
}

void webhook_stop(webhook_worker *w)
{
    if (w == NULL)
        return;
    events_hub_listen(w->hub, NULL, NULL);
    atomic_store(&w->stop, true);
    curl_multi_wakeup(w->multi);
    pthread_join(w->thread, NULL);
    while (w->jobs != NULL) {
        webhook_job *j = w->jobs;
        w->jobs = j->next;
        curl_multi_remove_handle(w->multi, j->easy);
        webhook_job_free(j);
    }
    curl_multi_cleanup(w->multi);
    webhook_key_clear(&w->key);
    pthread_mutex_destroy(&w->stats_lock);
    free(w);
}

void webhook_reenable(webhook_worker *w)
{
    if (w == NULL)
        return;
    atomic_store(&w->reenable, true);
    atomic_store(&w->woken, true);
    curl_multi_wakeup(w->multi);
}

void webhook_get_stats(webhook_worker *w, webhook_stats *out)
{
    memset(out, 0, sizeof *out);
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->stats_lock);
    *out = w->stats;
    pthread_mutex_unlock(&w->stats_lock);
}
