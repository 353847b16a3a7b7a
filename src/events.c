/* events.c — event shape and the waiting hub; see events.h. */
#include "events.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "money.h"

struct events_waiter {
    events_waiter *next;
    int64_t invoice_id; /* 0 = any */
    uint64_t seq;       /* moves when an event it wants is committed */
    pthread_cond_t cond;
};

struct events_hub {
    store *st;
    pthread_mutex_t lock;
    pthread_cond_t left; /* a waiter left */
    events_waiter *waiting;
    int waiters, max_waiters;
    int invoice_waiters; /* of them, waiting for one invoice's events */
    bool closing;
    void (*listener)(void *ud);
    void *listener_ud;
};

int64_t events_now_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The store's event hook: runs with the store's lock held. */
static void events_hub_committed(void *ud, const int64_t *invoice_ids, size_t n, bool deliver)
{
    events_hub *hub = ud;
    pthread_mutex_lock(&hub->lock);
    for (events_waiter *w = hub->waiting; w != NULL; w = w->next) {
        bool wanted = w->invoice_id == 0 || invoice_ids == NULL;
        for (size_t i = 0; !wanted && i < n; i++)
            wanted = invoice_ids[i] == w->invoice_id;
        if (wanted) {
            w->seq++;
            pthread_cond_signal(&w->cond);
        }
    }
    /* The webhook worker only when there is something to deliver: a POST
     * on a gateway without webhooks wakes no other thread. */
    void (*fn)(void *) = deliver ? hub->listener : NULL;
    void *fn_ud = hub->listener_ud;
    pthread_mutex_unlock(&hub->lock);
    if (fn != NULL)
        fn(fn_ud);
}

/* The store's question before it reads which invoices a commit's events
 * belong to (store lock held). */
static bool events_hub_ids_wanted(void *ud)
{
    events_hub *hub = ud;
    pthread_mutex_lock(&hub->lock);
    bool wanted = hub->invoice_waiters > 0;
    pthread_mutex_unlock(&hub->lock);
    return wanted;
}

events_hub *events_hub_new(store *st, int max_waiters)
{
    events_hub *hub = calloc(1, sizeof *hub);
    if (hub == NULL)
        return NULL;
    hub->st = st;
    hub->max_waiters = max_waiters;
    pthread_mutex_init(&hub->lock, NULL);
    pthread_cond_init(&hub->left, NULL);
    store_set_event_hook(st, events_hub_committed, events_hub_ids_wanted, hub);
    return hub;
}

void events_hub_free(events_hub *hub)
{
    if (hub == NULL)
        return;
    store_set_event_hook(hub->st, NULL, NULL, NULL);
    pthread_mutex_lock(&hub->lock);
    hub->closing = true;
    for (events_waiter *w = hub->waiting; w != NULL; w = w->next)
        pthread_cond_signal(&w->cond);
    while (hub->waiters > 0)
        pthread_cond_wait(&hub->left, &hub->lock);
    pthread_mutex_unlock(&hub->lock);
    pthread_cond_destroy(&hub->left);
    pthread_mutex_destroy(&hub->lock);
    free(hub);
}

void events_hub_close(events_hub *hub)
{
    pthread_mutex_lock(&hub->lock);
    hub->closing = true;
    for (events_waiter *w = hub->waiting; w != NULL; w = w->next)
        pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&hub->lock);
}

void events_hub_listen(events_hub *hub, void (*fn)(void *ud), void *ud)
{
    pthread_mutex_lock(&hub->lock);
    hub->listener = fn;
    hub->listener_ud = ud;
    pthread_mutex_unlock(&hub->lock);
}

uint64_t events_hub_seq(events_hub *hub, events_waiter *w)
{
    pthread_mutex_lock(&hub->lock);
    uint64_t s = w->seq;
    pthread_mutex_unlock(&hub->lock);
    return s;
}

uint64_t events_hub_wait(events_hub *hub, events_waiter *w, uint64_t seen, int64_t deadline_ms)
{
    struct timespec ts;
    ts.tv_sec = (time_t)(deadline_ms / 1000);
    ts.tv_nsec = (long)(deadline_ms % 1000) * 1000000L;
    pthread_mutex_lock(&hub->lock);
    while (w->seq == seen && !hub->closing && events_now_mono_ms() < deadline_ms)
        pthread_cond_timedwait(&w->cond, &hub->lock, &ts);
    uint64_t s = w->seq;
    pthread_mutex_unlock(&hub->lock);
    return s;
}

events_waiter *events_hub_enter(events_hub *hub, int64_t invoice_id)
{
    events_waiter *w = calloc(1, sizeof *w);
    if (w == NULL)
        return NULL;
    w->invoice_id = invoice_id;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cond, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_lock(&hub->lock);
    bool ok = !hub->closing && hub->waiters < hub->max_waiters;
    if (ok) {
        hub->waiters++;
        if (invoice_id != 0)
            hub->invoice_waiters++;
        w->next = hub->waiting;
        hub->waiting = w;
    }
    pthread_mutex_unlock(&hub->lock);
    if (!ok) {
        pthread_cond_destroy(&w->cond);
        free(w);
        return NULL;
    }
    return w;
}

void events_hub_leave(events_hub *hub, events_waiter *w)
{
    pthread_mutex_lock(&hub->lock);
    for (events_waiter **p = &hub->waiting; *p != NULL; p = &(*p)->next) {
        if (*p == w) {
            *p = w->next;
            break;
        }
    }
    hub->waiters--;
    if (w->invoice_id != 0)
        hub->invoice_waiters--;
    pthread_cond_broadcast(&hub->left);
    pthread_mutex_unlock(&hub->lock);
    pthread_cond_destroy(&w->cond);
    free(w);
}

void events_hub_waiters(events_hub *hub, int *now, int *max)
{
    pthread_mutex_lock(&hub->lock);
    *now = hub->waiters;
    *max = hub->max_waiters;
    pthread_mutex_unlock(&hub->lock);
}

bool events_hub_closing(events_hub *hub)
{
    pthread_mutex_lock(&hub->lock);
    bool c = hub->closing;
    pthread_mutex_unlock(&hub->lock);
    return c;
}

/* --- the public shape --- */

static json_t *events_time(int64_t ms)
{
    if (ms <= 0)
        return json_null();
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char b[32];
    strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(b);
}

/* Rewrites o[key] (minor units) as a decimal string, when present. */
static void events_money(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        return;
    char m[MONEY_BUFLEN];
    json_object_set_new(o, key, json_string(money_format(json_integer_value(v), m)));
}

/* Rewrites o[key] (ms) as an ISO time or null, when present. */
static void events_iso(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL)
        return;
    json_object_set_new(o, key, events_time(json_is_integer(v) ? json_integer_value(v) : 0));
}

json_t *events_render(const store_event *ev)
{
    json_t *data = ev->data ? json_loads(ev->data, 0, NULL) : NULL;
    if (!json_is_object(data)) {
        json_decref(data);
        return NULL;
    }
    static const char *const money_keys[] = {"totalAmount", "refundedAmount", "amount"};
    for (size_t i = 0; i < sizeof money_keys / sizeof *money_keys; i++)
        events_money(data, money_keys[i]);
    static const char *const time_keys[] = {"createdAt", "updatedAt", "expiresAt", "paidAt"};
    for (size_t i = 0; i < sizeof time_keys / sizeof *time_keys; i++)
        events_iso(data, time_keys[i]);
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(ev->id));
    json_object_set_new(o, "type", json_string(ev->type));
    json_object_set_new(o, "createdAt", events_time(ev->at));
    json_t *ref = json_object_get(data, "invoiceReference");
    json_object_set(o, "invoiceReference", ref ? ref : json_null());
    json_object_set_new(o, "kind", json_string(ev->refund_id > 0 ? "refund" : "invoice"));
    json_object_set_new(o, "data", data);
    return o;
}

void events_msg_id(int64_t id, char out[static 32])
{
    snprintf(out, 32, "evt_%lld", (long long)id);
}
