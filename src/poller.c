/* poller.c — background getPaymentStatus polling; see poller.h. */
#include "poller.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "seqr/xml.h"

/* Longest wait between two polls of one invoice while SEQR fails. */
#define POLLER_MAX_BACKOFF_MS 5000
/* Longest sleep of the loop when nothing is due (so stop is noticed). */
#define POLLER_MAX_SLEEP_MS 200
/* Poll-gap histogram: 10 ms buckets up to 20 s (the last bucket is "more"),
 * reported over windows of 10 s. */
#define POLLER_GAP_BUCKET_MS 10
#define POLLER_GAP_BUCKETS 2001
#define POLLER_GAP_WINDOW_MS 10000
/* The 20-second rule's alarm: an invoice not polled for this long. */
#define POLLER_GAP_ALARM_MS 15000
/* How often the open gaps of all invoices are looked at. */
#define POLLER_GAP_SCAN_MS 500
/* Socket events taken from epoll per epoll_wait. */
#define POLLER_EPOLL_BATCH 256
/* The loop's tick: it wakes at most once per tick (stopping excepted),
 * takes every answer that arrived meanwhile in one go and launches every
 * poll due before the next tick. Answers wait up to a tick in the socket
 * buffer and polls go out up to a tick early or late, against a 1 s
 * interval and SEQR's 20 s; at thousands of polls a second one wake-up
 * then serves dozens of them instead of one or two (docs/design.md). */
#define POLLER_TICK_MS 8

typedef struct poller_entry {
    char ref[64];
    int64_t version;
    seqr_status status; /* as last stored: an answer that repeats it is not stored again */
    int64_t expires_at; /* wall clock ms */
    char terminal_id[64];
    char client_reference[40];
    int64_t due;         /* monotonic ms */
    int64_t last_launch; /* monotonic ms of the previous poll, 0 before the first */
    int failures;
    bool in_flight;
    bool poke_pending; /* poked while in flight: poll again as soon as it ends */
    bool dropped;      /* its lease went to another gateway: forget it when next due */
    bool expire_requested;
    size_t heap_index;        /* valid while !in_flight */
    seqr_status_request *req; /* the call under way while in_flight (libcurl) */
    seqr_http1_call *call;    /* the call under way while in_flight (native client) */
    /* Its getPaymentStatus request, serialised, reused from poll to poll
     * while nothing in it changes (it holds the terminal's password). */
    seqr_status_cache *request_cache;
    struct poller_entry *next_in_bucket;
    /* Written in this round's store batch (see poller_collect): until the
     * batch commits, the answer is not on disk, and a final entry stays. */
    bool in_batch;
    bool final_in_batch;
    struct poller_entry *next_in_batch;
} poller_entry;

/* A place in the heap: the entry and, beside it, its due time. */
typedef struct {
    int64_t due;
    poller_entry *entry;
} poller_heap_slot;

/* What the poller knows of one socket descriptor libcurl gave it. */
typedef struct {
    bool registered; /* in the epoll set (as far as the poller knows) */
    bool wanted;     /* libcurl watches it now; else an event only removes it */
} poller_fd;

/* Follow-up work for the job thread. */
typedef enum { POLLER_JOB_RECEIPT, POLLER_JOB_EXPIRE } poller_job_kind;
typedef struct poller_job {
    poller_job_kind kind;
    char ref[64];
    struct poller_job *next;
} poller_job;

/* Inbox from other threads: new invoices and pokes. */
typedef struct poller_msg {
    bool poke;
    bool drop;          /* the lease on entry.ref is no longer ours */
    poller_entry entry; /* for adds; entry.ref for pokes */
    struct poller_msg *next;
} poller_msg;

struct poller {
    const config *cfg;
    service *svc;
    store *st;
    seqr_client *seqr;
    CURLM *multi;
    /* The poll path's own HTTP/1.1 client (seqr/http1.h); NULL when the
     * polls go through libcurl ([poller] http_client = curl, or a proxy). */
    seqr_http1 *http1;
    /* The poller thread waits on epoll: libcurl's sockets (registered by
     * poller_socket_cb) and wake_fd, an eventfd other threads write to. */
    int epoll_fd, wake_fd;
    int64_t curl_due;  /* monotonic ms libcurl wants to be called by, -1 none */
    int64_t last_wake; /* monotonic ms the thread last came back from waiting */
    poller_fd *fds;    /* by descriptor number, fd_cap of them (poller thread) */
    size_t fd_cap;

    /* owned by the poller thread */
    poller_entry **buckets;
    size_t nbuckets;
    size_t count;
    poller_heap_slot *heap; /* 4-ary min-heap by due (see poller_heap_up) */
    size_t heap_len, heap_cap;
    int in_flight;
    int consecutive_errors;
    bool batch_open;             /* a store transaction groups this round's writes */
    poller_entry *batch_entries; /* entries written in it (next_in_batch) */

    /* gaps between two polls of one invoice (poller thread only) */
    uint32_t gap_hist[POLLER_GAP_BUCKETS];
    uint64_t gap_count;
    int64_t gap_window_start;
    int64_t gap_scan_at;

    pthread_t thread, job_thread;
    bool started;

    pthread_mutex_t lock; /* guards inbox, jobs, stop flags and stats */
    pthread_cond_t job_cond;
    poller_msg *inbox;
    int64_t wake_by; /* monotonic ms by which the thread reads its inbox again */
    poller_job *jobs, *jobs_tail;
    bool stopping;
    pthread_t lease_thread;    /* store_lease_sync() every STORE_LEASE_RENEW_MS */
    pthread_cond_t lease_cond; /* wakes it to stop */
    poller_stats stats;
};

static int64_t poller_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- hash of entries by reference --- */

static size_t poller_hash(const char *s)
{
    size_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static poller_entry *poller_find(poller *p, const char *ref)
{
    for (poller_entry *e = p->buckets[poller_hash(ref) & (p->nbuckets - 1)]; e;
         e = e->next_in_bucket)
        if (strcmp(e->ref, ref) == 0)
            return e;
    return NULL;
}

static void poller_hash_insert(poller *p, poller_entry *e)
{
    if (p->count + 1 > p->nbuckets * 3 / 4) {
        size_t n = p->nbuckets * 2;
        poller_entry **nb = calloc(n, sizeof *nb);
        if (nb == NULL)
            abort();
        for (size_t i = 0; i < p->nbuckets; i++) {
            poller_entry *x = p->buckets[i];
            while (x) {
                poller_entry *next = x->next_in_bucket;
                size_t b = poller_hash(x->ref) & (n - 1);
                x->next_in_bucket = nb[b];
                nb[b] = x;
                x = next;
            }
        }
        free(p->buckets);
        p->buckets = nb;
        p->nbuckets = n;
    }
    size_t b = poller_hash(e->ref) & (p->nbuckets - 1);
    e->next_in_bucket = p->buckets[b];
    p->buckets[b] = e;
    p->count++;
}

static void poller_hash_remove(poller *p, poller_entry *e)
{
    poller_entry **pp = &p->buckets[poller_hash(e->ref) & (p->nbuckets - 1)];
    while (*pp && *pp != e)
        pp = &(*pp)->next_in_bucket;
    if (*pp) {
        *pp = e->next_in_bucket;
        p->count--;
    }
}

/* --- min-heap of entries by due time ---
 * Four children per node, each slot holding its entry's due time beside
 * the pointer: a sift compares keys in one array (a node's children share
 * a cache line) instead of reaching into four scattered entries per level,
 * and moves the hole rather than swapping. At 5,000 pending, the binary
 * heap of pointers was the polling thread's largest user-space function
 * (9 % of its samples, the entries' cache misses). */

#define POLLER_HEAP_ARITY 4

static void poller_heap_place(poller *p, size_t i, poller_entry *e)
{
    p->heap[i].due = e->due;
    p->heap[i].entry = e;
    e->heap_index = i;
}

/* Sifts e, whose due time is e->due, up from hole i. */
static void poller_heap_up(poller *p, size_t i, poller_entry *e)
{
    while (i > 0) {
        size_t parent = (i - 1) / POLLER_HEAP_ARITY;
        if (p->heap[parent].due <= e->due)
            break;
        poller_heap_place(p, i, p->heap[parent].entry);
        i = parent;
    }
    poller_heap_place(p, i, e);
}

/* Sifts e down from hole i. */
static void poller_heap_down(poller *p, size_t i, poller_entry *e)
{
    for (;;) {
        size_t first = POLLER_HEAP_ARITY * i + 1;
        if (first >= p->heap_len)
            break;
        size_t last = first + POLLER_HEAP_ARITY;
        if (last > p->heap_len)
            last = p->heap_len;
        size_t m = first;
        for (size_t c = first + 1; c < last; c++)
            if (p->heap[c].due < p->heap[m].due)
                m = c;
        if (p->heap[m].due >= e->due)
            break;
        poller_heap_place(p, i, p->heap[m].entry);
        i = m;
    }
    poller_heap_place(p, i, e);
}

static void poller_heap_push(poller *p, poller_entry *e)
{
    if (p->heap_len == p->heap_cap) {
        size_t cap = p->heap_cap ? p->heap_cap * 2 : 256;
        poller_heap_slot *h = realloc(p->heap, cap * sizeof *h);
        if (h == NULL)
            abort();
        p->heap = h;
        p->heap_cap = cap;
    }
    poller_heap_up(p, p->heap_len++, e);
}

static poller_entry *poller_heap_pop(poller *p)
{
    poller_entry *top = p->heap[0].entry;
    p->heap_len--;
    if (p->heap_len > 0)
        poller_heap_down(p, 0, p->heap[p->heap_len].entry);
    return top;
}

/* The earliest due time; the heap must not be empty. */
static int64_t poller_heap_first_due(const poller *p)
{
    return p->heap[0].due;
}

/* Moves an entry already in the heap to a new due time. */
static void poller_heap_reschedule(poller *p, poller_entry *e, int64_t due)
{
    int64_t old = e->due;
    e->due = due;
    if (due < old)
        poller_heap_up(p, e->heap_index, e);
    else
        poller_heap_down(p, e->heap_index, e);
}

/* Frees an entry that left the poller (and the cached request with its
 * password). */
static void poller_entry_free(poller_entry *e)
{
    if (e == NULL)
        return;
    seqr_status_cache_free(e->request_cache);
    free(e);
}

/* --- libcurl's event interface --- */

/* libcurl tells which sockets to watch for what; they go into epoll with the
 * socket itself as data. On a reused connection libcurl says "remove" at the
 * end of every call and "watch" at the start of the next; taking the socket
 * out of epoll and putting it back each time cost two system calls per poll.
 * So a socket libcurl no longer wants stays in epoll, marked unwanted (one
 * MOD makes it wanted again), and leaves epoll only if it reports an event
 * while unwanted (poller_wait) or when it is closed, which the kernel does
 * by itself. A descriptor number reused after a close is not in epoll any
 * more: MOD then fails with ENOENT and ADD is used instead. */
static bool poller_fd_reserve(poller *p, curl_socket_t s)
{
    if (s < 0)
        return false;
    if ((size_t)s < p->fd_cap)
        return true;
    size_t cap = p->fd_cap ? p->fd_cap : 64;
    while (cap <= (size_t)s)
        cap *= 2;
    poller_fd *t = realloc(p->fds, cap * sizeof *t);
    if (t == NULL)
        return false;
    memset(t + p->fd_cap, 0, (cap - p->fd_cap) * sizeof *t);
    p->fds = t;
    p->fd_cap = cap;
    return true;
}

static int poller_socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy;
    (void)socketp;
    poller *p = userp;
    if (!poller_fd_reserve(p, s)) {
        log_error("poller: cannot track a SEQR connection (descriptor %d)", (int)s);
        return -1;
    }
    poller_fd *f = &p->fds[s];
    if (what == CURL_POLL_REMOVE) {
        f->wanted = false; /* stays in epoll until it reports something */
        return 0;
    }
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
    ev.data.fd = s;
    int op = f->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(p->epoll_fd, op, s, &ev) != 0) {
        /* MOD on a number whose socket was closed (ENOENT), or ADD on one
         * still registered (EEXIST): the other operation. */
        op = op == EPOLL_CTL_ADD ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
        if (epoll_ctl(p->epoll_fd, op, s, &ev) != 0) {
            f->registered = false;
            f->wanted = false;
            log_error("poller: cannot watch a SEQR connection: %s", strerror(errno));
            return -1;
        }
    }
    f->registered = true;
    f->wanted = true;
    return 0;
}

/* libcurl asks to be called again after timeout_ms (-1: no timer). */
static int poller_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    poller *p = userp;
    p->curl_due = timeout_ms < 0 ? -1 : poller_mono_ms() + timeout_ms;
    return 0;
}

/* Wakes the poller thread from another thread. */
static void poller_wake(poller *p)
{
    uint64_t one = 1;
    /* A full counter (never in practice) already means "wake up". */
    if (write(p->wake_fd, &one, sizeof one) < 0 && errno != EAGAIN)
        log_warn("poller: cannot wake the polling thread: %s", strerror(errno));
}

/* --- the native client --- */

/* The poll timeout: [poller] poll_timeout_ms, never more than the SOAP one. */
static long poller_poll_timeout(const poller *p)
{
    return p->cfg->poller_poll_timeout_ms < p->cfg->seqr_timeout_ms ? p->cfg->poller_poll_timeout_ms
                                                                    : p->cfg->seqr_timeout_ms;
}

/* Sets up the poll path's own HTTP client unless the config asks for
 * libcurl or a proxy applies (which only libcurl speaks). False only when
 * the native client was asked for and cannot be set up. */
static bool poller_native_setup(poller *p)
{
    const char *want = p->cfg->poller_http_client;
    if (want != NULL && strcmp(want, "curl") == 0) {
        log_info("poller: polling SEQR through libcurl ([poller] http_client = curl)");
        return true;
    }
    char var[32];
    if (seqr_http1_proxy_applies(p->cfg->seqr_url, var, sizeof var)) {
        log_info("poller: polling SEQR through libcurl: the proxy in %s applies to [seqr] url "
                 "(the native client speaks no proxy)",
                 var);
        return true;
    }
    char ua[64], why[256];
    snprintf(ua, sizeof ua, "seqr-gateway/%s", SEQR_VERSION);
    seqr_http1_options o = {
        .url = p->cfg->seqr_url,
        .ca_file = p->cfg->seqr_ca_file,
        .user_agent = ua,
        .epoll_fd = p->epoll_fd,
        .max_conns = p->cfg->poller_max_in_flight,
        .timeout_ms = poller_poll_timeout(p),
        .max_body = SEQR_XML_MAX_BYTES,
    };
    seqr_http1_err err;
    p->http1 = seqr_http1_new(&o, &err, why, sizeof why);
    if (p->http1 == NULL) {
        log_error("poller: cannot set up the HTTP client for polls: %s", why);
        return false;
    }
    return true;
}

/* --- lifecycle --- */

poller *poller_new(const config *cfg, service *svc, store *st, seqr_client *seqr)
{
    poller *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->cfg = cfg;
    p->svc = svc;
    p->st = st;
    p->seqr = seqr;
    p->curl_due = -1;
    p->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    p->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    p->nbuckets = 1024;
    p->buckets = calloc(p->nbuckets, sizeof *p->buckets);
    p->multi = curl_multi_init();
    if (p->buckets == NULL || p->multi == NULL || p->epoll_fd < 0 || p->wake_fd < 0) {
        poller_free(p);
        return NULL;
    }
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.fd = p->wake_fd;
    if (epoll_ctl(p->epoll_fd, EPOLL_CTL_ADD, p->wake_fd, &ev) != 0 ||
        curl_multi_setopt(p->multi, CURLMOPT_SOCKETFUNCTION, poller_socket_cb) != CURLM_OK ||
        curl_multi_setopt(p->multi, CURLMOPT_SOCKETDATA, p) != CURLM_OK ||
        curl_multi_setopt(p->multi, CURLMOPT_TIMERFUNCTION, poller_timer_cb) != CURLM_OK ||
        curl_multi_setopt(p->multi, CURLMOPT_TIMERDATA, p) != CURLM_OK) {
        poller_free(p);
        return NULL;
    }
    /* HTTP/1.1 carries one call per connection at a time, so the calls in
     * flight (about polls per second x SEQR's latency, at most max_in_flight)
     * decide how many connections are open; finished ones stay open for the
     * next poll instead of a new connect (and TLS handshake) each time. */
    curl_multi_setopt(p->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)cfg->poller_max_in_flight);
    curl_multi_setopt(p->multi, CURLMOPT_MAXCONNECTS, (long)cfg->poller_max_in_flight);
    if (!poller_native_setup(p)) {
        poller_free(p);
        return NULL;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->job_cond, NULL);
    pthread_cond_init(&p->lease_cond, NULL);
    p->stats.seqr_reachable = true;
    p->stats.heartbeat_ms = poller_mono_ms();
    p->gap_window_start = poller_mono_ms();
    return p;
}

void poller_free(poller *p)
{
    if (p == NULL)
        return;
    if (p->buckets != NULL) {
        for (size_t i = 0; i < p->nbuckets; i++) {
            poller_entry *e = p->buckets[i];
            while (e) {
                poller_entry *next = e->next_in_bucket;
                poller_entry_free(e);
                e = next;
            }
        }
    }
    free(p->buckets);
    free(p->heap);
    while (p->inbox) {
        poller_msg *m = p->inbox;
        p->inbox = m->next;
        free(m);
    }
    while (p->jobs) {
        poller_job *j = p->jobs;
        p->jobs = j->next;
        free(j);
    }
    if (p->multi)
        curl_multi_cleanup(p->multi);
    seqr_http1_free(p->http1);
    free(p->fds);
    if (p->epoll_fd >= 0)
        close(p->epoll_fd);
    if (p->wake_fd >= 0)
        close(p->wake_fd);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->job_cond);
    pthread_cond_destroy(&p->lease_cond);
    free(p);
}

static void poller_fill_entry(poller_entry *e, const store_invoice *inv)
{
    memset(e, 0, sizeof *e);
    snprintf(e->ref, sizeof e->ref, "%s", inv->reference);
    e->version = inv->version;
    e->status = inv->status;
    e->expires_at = inv->expires_at;
    snprintf(e->terminal_id, sizeof e->terminal_id, "%s", inv->terminal_id);
    snprintf(e->client_reference, sizeof e->client_reference, "%s", inv->client_reference);
}

/* Queues an invoice for the polling thread; due 0 means "now". The thread is
 * woken only when it would otherwise look too late: a new invoice is first
 * due one interval from now, and the thread wakes at least every
 * POLLER_MAX_SLEEP_MS, so most creations cost no wake-up (and no syscall) on
 * the request's path. */
static void poller_enqueue(poller *p, const store_invoice *inv, int64_t due)
{
    poller_msg *m = calloc(1, sizeof *m);
    if (m == NULL)
        abort();
    poller_fill_entry(&m->entry, inv);
    m->entry.due = due;
    pthread_mutex_lock(&p->lock);
    m->next = p->inbox;
    p->inbox = m;
    bool wake = due < p->wake_by;
    pthread_mutex_unlock(&p->lock);
    if (wake)
        poller_wake(p);
}

void poller_add(poller *p, const store_invoice *inv)
{
    poller_enqueue(p, inv, poller_mono_ms() + p->cfg->poller_interval_ms);
}

void poller_pending_hook(void *ud, const store_invoice *inv)
{
    poller_add(ud, inv);
}

bool poller_poke(poller *p, const char *ref)
{
    poller_msg *m = calloc(1, sizeof *m);
    if (m == NULL)
        abort();
    m->poke = true;
    snprintf(m->entry.ref, sizeof m->entry.ref, "%s", ref);
    pthread_mutex_lock(&p->lock);
    m->next = p->inbox;
    p->inbox = m;
    pthread_mutex_unlock(&p->lock);
    poller_wake(p);
    return true;
}

void poller_get_stats(poller *p, poller_stats *out)
{
    pthread_mutex_lock(&p->lock);
    *out = p->stats;
    pthread_mutex_unlock(&p->lock);
}

static void poller_push_job(poller *p, poller_job_kind kind, const char *ref)
{
    poller_job *j = calloc(1, sizeof *j);
    if (j == NULL)
        abort();
    j->kind = kind;
    snprintf(j->ref, sizeof j->ref, "%s", ref);
    pthread_mutex_lock(&p->lock);
    if (p->jobs_tail)
        p->jobs_tail->next = j;
    else
        p->jobs = j;
    p->jobs_tail = j;
    pthread_cond_signal(&p->job_cond);
    pthread_mutex_unlock(&p->lock);
}

/* --- the polling thread --- */

static void poller_drain_inbox(poller *p, int64_t now)
{
    pthread_mutex_lock(&p->lock);
    poller_msg *m = p->inbox;
    p->inbox = NULL;
    pthread_mutex_unlock(&p->lock);
    /* The inbox is a stack; reverse it so invoices are polled in arrival order. */
    poller_msg *rev = NULL;
    while (m) {
        poller_msg *next = m->next;
        m->next = rev;
        rev = m;
        m = next;
    }
    while (rev) {
        poller_msg *next = rev->next;
        poller_entry *e = poller_find(p, rev->entry.ref);
        if (rev->drop) {
            if (e != NULL)
                e->dropped = true;
        } else if (rev->poke) {
            if (e != NULL && !e->in_flight)
                poller_heap_reschedule(p, e, now);
            else if (e != NULL)
                e->poke_pending = true; /* the answer under way may predate the news */
        } else if (e != NULL) {
            e->dropped = false; /* leased to us again before it was forgotten */
        } else {
            e = malloc(sizeof *e);
            if (e == NULL)
                abort();
            *e = rev->entry;
            /* A new invoice cannot have been paid yet: first poll after one
             * interval. Invoices loaded at start-up are due at once. */
            e->due = rev->entry.due > 0 ? rev->entry.due : now;
            poller_hash_insert(p, e);
            poller_heap_push(p, e);
        }
        free(rev);
        rev = next;
    }
}

static void poller_launch(poller *p, poller_entry *e)
{
    if (e->dropped) {
        poller_hash_remove(p, e);
        poller_entry_free(e);
        return;
    }
    seqr_call_opts o;
    char pw[128];
    if (!service_call_opts(p->svc, e->terminal_id, &o, pw)) {
        if (!service_stop_polling(p->svc, e->ref, "its terminal is no longer registered")) {
            e->due = poller_mono_ms() + POLLER_MAX_BACKOFF_MS;
            poller_heap_push(p, e);
            return;
        }
        poller_hash_remove(p, e);
        poller_entry_free(e);
        return;
    }
    if (e->client_reference[0] != '\0')
        o.client_reference = e->client_reference;
    if (p->http1 != NULL) {
        /* The native client: the cached request goes out as it is; the
         * pool's timeout is the poll timeout. The call points at the entry. */
        bool built = seqr_status_cache_prepare(p->seqr, &o, e->ref, e->version, &e->request_cache);
        memset(pw, 0, sizeof pw);
        size_t len = 0;
        const char *body = built ? seqr_status_cache_request(e->request_cache, &len) : NULL;
        seqr_http1_call *call = built ? seqr_http1_post(p->http1, body, len, e) : NULL;
        if (call == NULL) {
            e->due = poller_mono_ms() + POLLER_MAX_BACKOFF_MS;
            poller_heap_push(p, e);
            return;
        }
        e->call = call;
    } else {
        seqr_status_request *r =
            seqr_status_request_new_cached(p->seqr, &o, e->ref, e->version, &e->request_cache);
        memset(pw, 0, sizeof pw);
        if (r == NULL) {
            e->due = poller_mono_ms() + POLLER_MAX_BACKOFF_MS;
            poller_heap_push(p, e);
            return;
        }
        CURL *easy = seqr_status_request_easy(r);
        /* A poll gets a short timeout of its own: one hanging call plus
         * backoff must stay well inside SEQR's 20 seconds. */
        curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, poller_poll_timeout(p));
        /* CURLOPT_PRIVATE points at the request; the request points at the entry. */
        seqr_status_request_set_user(r, e);
        if (curl_multi_add_handle(p->multi, easy) != CURLM_OK) {
            seqr_status_request_free(r);
            e->due = poller_mono_ms() + POLLER_MAX_BACKOFF_MS;
            poller_heap_push(p, e);
            return;
        }
        e->req = r;
    }
    e->in_flight = true;
    p->in_flight++;
    int64_t now = poller_mono_ms();
    if (e->last_launch > 0) {
        int64_t b = (now - e->last_launch) / POLLER_GAP_BUCKET_MS;
        p->gap_hist[b < POLLER_GAP_BUCKETS - 1 ? b : POLLER_GAP_BUCKETS - 1]++;
        p->gap_count++;
        metrics_observe(METRICS_POLL_GAP, "", (now - e->last_launch) * 1000);
    }
    e->last_launch = now;
    if (!e->expire_requested && e->expires_at > 0 && store_now_ms() > e->expires_at) {
        e->expire_requested = true;
        poller_push_job(p, POLLER_JOB_EXPIRE, e->ref);
    }
}

/* What a finished poll means for its entry, whichever client made it. */
static void poller_settle(poller *p, poller_entry *e, seqr_err err, const seqr_payment_status *ps,
                          const seqr_result *res, int64_t now);

/* A libcurl poll ended. */
static void poller_finish(poller *p, seqr_status_request *r, CURLcode rc, int64_t now)
{
    poller_entry *e = seqr_status_request_user(r);
    seqr_payment_status ps;
    seqr_result res;
    seqr_err err = seqr_status_request_finish(r, rc, &ps, &res);
    curl_multi_remove_handle(p->multi, seqr_status_request_easy(r));
    seqr_status_request_free(r);
    e->req = NULL;
    poller_settle(p, e, err, &ps, &res, now);
}

/* A poll of the native client ended. */
static void poller_finish_native(poller *p, seqr_http1_call *call, const seqr_http1_result *hr,
                                 int64_t now)
{
    poller_entry *e = hr->user;
    seqr_payment_status ps;
    seqr_result res;
    seqr_err err = seqr_status_finish_http1(p->seqr, e->request_cache, hr, &ps, &res);
    seqr_http1_call_free(call);
    e->call = NULL;
    poller_settle(p, e, err, &ps, &res, now);
}

static void poller_settle(poller *p, poller_entry *e, seqr_err err, const seqr_payment_status *ps,
                          const seqr_result *res, int64_t now)
{
    e->in_flight = false;
    p->in_flight--;
    bool poked = e->poke_pending;
    e->poke_pending = false;

    pthread_mutex_lock(&p->lock);
    p->stats.polls++;
    if (err == SEQR_OK) {
        p->stats.last_ok_ms = store_now_ms();
        p->stats.seqr_reachable = true;
    } else if (err != SEQR_ERR_RESULT || seqr_code_retryable(res->code)) {
        /* SEQR did not answer, or answered that it cannot serve now. */
        p->stats.errors++;
        p->stats.seqr_reachable = false;
    }
    pthread_mutex_unlock(&p->lock);

    if (err == SEQR_OK) {
        if (p->consecutive_errors > 0)
            log_info("SEQR polling recovered after %d failed polls", p->consecutive_errors);
        p->consecutive_errors = 0;
        e->failures = 0;
        bool final = false, needs_receipt = false;
        if (ps->status != e->status || ps->version != e->version) {
            /* Something changed: store it (and decide on receipt and end). An
             * answer that repeats what is stored costs no write. */
            if (!p->batch_open) {
                store_batch_begin(p->st);
                p->batch_open = true;
            }
            if (service_apply_status(p->svc, e->ref, ps, &final, &needs_receipt)) {
                if (ps->status != SEQR_STATUS_UNKNOWN)
                    e->status = ps->status;
                if (!e->in_batch) {
                    e->in_batch = true;
                    e->next_in_batch = p->batch_entries;
                    p->batch_entries = e;
                }
            } else {
                e->status = SEQR_STATUS_UNKNOWN; /* not stored: store the next answer */
            }
        }
        e->version = ps->version;
        if (needs_receipt)
            poller_push_job(p, POLLER_JOB_RECEIPT, e->ref);
        if (final) {
            /* Leaves once the batch holding its final status has committed
             * (poller_collect). */
            e->final_in_batch = true;
            return;
        }
        if (e->dropped) { /* its lease went to another gateway */
            poller_hash_remove(p, e);
            poller_entry_free(e);
            return;
        }
        /* Keep the cadence: next poll one interval after this one was due. */
        int64_t next = e->due + p->cfg->poller_interval_ms;
        e->due = next > now && !poked ? next : now;
        poller_heap_push(p, e);
        return;
    }
    if (err == SEQR_ERR_RESULT && res->code == SEQR_CODE_INVALID_INVOICE_REFERENCE) {
        if (service_stop_polling(p->svc, e->ref, "SEQR does not know this invoice (54)")) {
            poller_hash_remove(p, e);
            poller_entry_free(e);
            return;
        }
    }
    if (p->consecutive_errors == 0)
        log_warn("SEQR polling is failing (%s); retrying with backoff, no invoice is dropped",
                 res->message);
    p->consecutive_errors++;
    e->failures++;
    int64_t delay = p->cfg->poller_interval_ms;
    for (int i = 1; i < e->failures && delay < POLLER_MAX_BACKOFF_MS; i++)
        delay *= 2;
    if (delay > POLLER_MAX_BACKOFF_MS)
        delay = POLLER_MAX_BACKOFF_MS;
    e->due = now + delay;
    poller_heap_push(p, e);
}

/* The gap below which fraction q of the window's gaps fall, in ms. */
static int64_t poller_gap_quantile(const poller *p, double q)
{
    if (p->gap_count == 0)
        return 0;
    uint64_t want = (uint64_t)((double)p->gap_count * q);
    uint64_t seen = 0;
    for (int i = 0; i < POLLER_GAP_BUCKETS; i++) {
        seen += p->gap_hist[i];
        if (seen > want)
            return (int64_t)(i + 1) * POLLER_GAP_BUCKET_MS;
    }
    return (int64_t)POLLER_GAP_BUCKETS * POLLER_GAP_BUCKET_MS;
}

/* Closes a gap window: publishes its quantiles and starts the next. */
static void poller_gap_rotate(poller *p, int64_t now)
{
    if (now - p->gap_window_start < POLLER_GAP_WINDOW_MS)
        return;
    int64_t p50 = poller_gap_quantile(p, 0.50), p99 = poller_gap_quantile(p, 0.99);
    int64_t max = 0;
    for (int i = POLLER_GAP_BUCKETS - 1; i >= 0; i--) {
        if (p->gap_hist[i] > 0) {
            max = (int64_t)(i + 1) * POLLER_GAP_BUCKET_MS;
            break;
        }
    }
    pthread_mutex_lock(&p->lock);
    p->stats.gap_p50_ms = p50;
    p->stats.gap_p99_ms = p99;
    p->stats.gap_max_ms = max;
    p->stats.gap_samples = p->gap_count;
    pthread_mutex_unlock(&p->lock);
    memset(p->gap_hist, 0, sizeof p->gap_hist);
    p->gap_count = 0;
    p->gap_window_start = now;
}

/* The longest time any invoice has now gone without a poll being launched,
 * looked at every POLLER_GAP_SCAN_MS: the gap histogram only learns of a gap
 * once it has ended, too late for an alarm. */
static void poller_gap_scan(poller *p, int64_t now)
{
    if (now - p->gap_scan_at < POLLER_GAP_SCAN_MS)
        return;
    p->gap_scan_at = now;
    int64_t open = 0;
    for (size_t i = 0; i < p->nbuckets; i++)
        for (poller_entry *e = p->buckets[i]; e; e = e->next_in_bucket)
            if (e->last_launch > 0 && now - e->last_launch > open)
                open = now - e->last_launch;
    pthread_mutex_lock(&p->lock);
    bool was = p->stats.gap_alarm;
    p->stats.gap_open_max_ms = open;
    p->stats.gap_alarm = open >= POLLER_GAP_ALARM_MS;
    bool is = p->stats.gap_alarm;
    pthread_mutex_unlock(&p->lock);
    if (is && !was)
        log_error("an invoice has not been polled for %lld ms: SEQR reverses payments not "
                  "fetched within 20 s",
                  (long long)open);
    else if (was && !is)
        log_info("every invoice is polled again within %lld ms", (long long)open);
}

static bool poller_stopping(poller *p)
{
    pthread_mutex_lock(&p->lock);
    bool s = p->stopping;
    pthread_mutex_unlock(&p->lock);
    return s;
}

/* After the round's batch: on success the entries whose final status it
 * held leave; on failure nothing of it is on disk, so every entry written in
 * it forgets the status it stored (its next answer is stored again) and a
 * final one is polled again right away. */
static void poller_batch_settle(poller *p, store_err ce)
{
    int n = 0;
    int64_t now = poller_mono_ms();
    poller_entry *e = p->batch_entries;
    p->batch_entries = NULL;
    while (e != NULL) {
        poller_entry *next = e->next_in_batch;
        bool final = e->final_in_batch;
        e->in_batch = false;
        e->final_in_batch = false;
        e->next_in_batch = NULL;
        n++;
        if (ce == STORE_OK && final) {
            poller_hash_remove(p, e);
            poller_entry_free(e);
        } else if (ce != STORE_OK) {
            e->status = SEQR_STATUS_UNKNOWN;
            if (final) {
                e->due = now;
                poller_heap_push(p, e);
            }
        }
        e = next;
    }
    if (ce != STORE_OK)
        log_error("poller: storing %d status answer(s) failed (%s); they stay polled and are "
                  "stored again on their next answer",
                  n, store_strerror(ce));
}

/* Hands every finished call to poller_finish; the writes they make share one
 * store transaction, begun by the first of them. */
static void poller_collect(poller *p)
{
    int left;
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(p->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        seqr_status_request *r = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        poller_finish(p, r, msg->data.result, poller_mono_ms());
    }
    if (p->http1 != NULL) {
        seqr_http1_result hr;
        seqr_http1_call *call;
        while ((call = seqr_http1_done(p->http1, &hr)) != NULL)
            poller_finish_native(p, call, &hr, poller_mono_ms());
    }
    if (p->batch_open) {
        store_err ce = store_batch_commit(p->st);
        p->batch_open = false;
        poller_batch_settle(p, ce);
    }
}

/* Sleeps until the tick that began at the last wake-up is over, unless
 * the poller is stopping (then it returns at once; an eventfd wake-up
 * ends the sleep for that). Other wake-ups (new invoices, pokes, leases)
 * wait for the tick; true when one came, so the inbox is read right after.
 * Only when calls are in flight: then an answer would end epoll_wait early,
 * while otherwise nothing but a due time or a wake-up does. */
static bool poller_pace(poller *p)
{
    bool woken = false;
    int64_t until = p->last_wake + POLLER_TICK_MS;
    for (;;) {
        int64_t now = poller_mono_ms();
        if (now >= until || poller_stopping(p))
            return woken;
        struct pollfd w = {.fd = p->wake_fd, .events = POLLIN};
        int n = poll(&w, 1, (int)(until - now));
        if (n < 0 && errno != EINTR) {
            log_error("poller: poll failed: %s", strerror(errno));
            return woken;
        }
        if (n > 0 && (w.revents & POLLIN)) {
            uint64_t count;
            if (read(p->wake_fd, &count, sizeof count) < 0 && errno != EAGAIN)
                log_warn("poller: cannot read its wake-ups: %s", strerror(errno));
            woken = true;
        }
    }
}

/* Hands one epoll_wait's events to their owners: the wake-up eventfd, the
 * native client's sockets or libcurl's. */
static void poller_dispatch(poller *p, const struct epoll_event *events, int n)
{
    int running = 0;
    for (int i = 0; i < n; i++) {
        int fd = events[i].data.fd;
        if (fd == p->wake_fd) {
            uint64_t count;
            if (read(p->wake_fd, &count, sizeof count) < 0 && errno != EAGAIN)
                log_warn("poller: cannot read its wake-ups: %s", strerror(errno));
            continue;
        }
        if (p->http1 != NULL) {
            seqr_http1_on_event(p->http1, fd, events[i].events);
            continue;
        }
        if (fd >= 0 && (size_t)fd < p->fd_cap && !p->fds[fd].wanted) {
            /* An idle connection (closed by SEQR, usually): libcurl finds
             * that out itself before it reuses it; only stop hearing of it. */
            if (epoll_ctl(p->epoll_fd, EPOLL_CTL_DEL, fd, NULL) != 0 && errno != ENOENT)
                log_warn("poller: cannot stop watching a SEQR connection: %s", strerror(errno));
            p->fds[fd].registered = false;
            continue;
        }
        int mask = 0;
        if (events[i].events & (EPOLLIN | EPOLLHUP))
            mask |= CURL_CSELECT_IN;
        if (events[i].events & EPOLLOUT)
            mask |= CURL_CSELECT_OUT;
        if (events[i].events & EPOLLERR)
            mask |= CURL_CSELECT_ERR;
        curl_multi_socket_action(p->multi, fd, mask, &running);
    }
}

/* Waits until wake_at (monotonic ms) for socket activity, a wake-up or a
 * timer, but not before the current tick is over (poller_pace), and lets
 * the clients act on exactly the sockets that are ready. Every answer that
 * is ready is read before the per-call timeouts are looked at, so an answer
 * that waited in the socket buffer for the tick is never timed out. */
static void poller_wait(poller *p, int64_t wake_at, bool stopping)
{
    struct epoll_event events[POLLER_EPOLL_BATCH];
    if (!stopping && p->in_flight > 0 && poller_pace(p))
        wake_at = 0; /* read the inbox at once */
    int64_t now = poller_mono_ms();
    if (p->curl_due >= 0 && p->curl_due < wake_at)
        wake_at = p->curl_due;
    int64_t http1_due = p->http1 != NULL ? seqr_http1_next_due(p->http1) : -1;
    if (http1_due >= 0 && http1_due < wake_at)
        wake_at = http1_due;
    int timeout = wake_at <= now ? 0 : (int)(wake_at - now);
    int n = epoll_wait(p->epoll_fd, events, POLLER_EPOLL_BATCH, timeout);
    p->last_wake = poller_mono_ms();
    if (n < 0 && errno != EINTR)
        log_error("poller: epoll_wait failed: %s", strerror(errno));
    poller_dispatch(p, events, n);
    /* More ready than one batch holds: take the rest before the timeouts. */
    while (n == POLLER_EPOLL_BATCH) {
        n = epoll_wait(p->epoll_fd, events, POLLER_EPOLL_BATCH, 0);
        if (n < 0 && errno != EINTR)
            log_error("poller: epoll_wait failed: %s", strerror(errno));
        poller_dispatch(p, events, n);
    }
    if (p->curl_due >= 0 && poller_mono_ms() >= p->curl_due) {
        int running = 0;
        p->curl_due = -1;
        curl_multi_socket_action(p->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
    if (p->http1 != NULL)
        seqr_http1_tick(p->http1, poller_mono_ms());
}

static void *poller_main(void *arg)
{
    poller *p = arg;
    int64_t stop_deadline = 0;
    for (;;) {
        int64_t now = poller_mono_ms();
        bool stopping = poller_stopping(p);
        if (stopping) {
            if (stop_deadline == 0)
                stop_deadline = now + p->cfg->seqr_timeout_ms;
            if (p->in_flight == 0 || now > stop_deadline)
                break;
        } else {
            poller_drain_inbox(p, now);
            /* Everything due before the next tick goes out now. */
            while (p->heap_len > 0 && p->in_flight < p->cfg->poller_max_in_flight &&
                   poller_heap_first_due(p) < now + POLLER_TICK_MS)
                poller_launch(p, poller_heap_pop(p));
        }
        /* New transfers set libcurl's timer to 0: start them now. */
        if (p->curl_due >= 0 && poller_mono_ms() >= p->curl_due) {
            int running = 0;
            p->curl_due = -1;
            curl_multi_socket_action(p->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        }
        poller_collect(p);

        poller_gap_rotate(p, poller_mono_ms());
        poller_gap_scan(p, poller_mono_ms());
        now = poller_mono_ms();
        int64_t wake_at = now + POLLER_MAX_SLEEP_MS;
        if (!stopping && p->heap_len > 0 && p->in_flight < p->cfg->poller_max_in_flight &&
            poller_heap_first_due(p) < wake_at)
            wake_at = poller_heap_first_due(p);
        pthread_mutex_lock(&p->lock);
        p->stats.pending = (int64_t)p->count;
        p->stats.in_flight = p->in_flight;
        p->stats.heartbeat_ms = now;
        /* Whatever arrived since the inbox was drained was not woken for
         * (see poller_enqueue): look at it now. */
        if (p->inbox != NULL && !stopping)
            wake_at = now;
        /* The thread looks at its inbox again by then (a tick at the least
         * while calls are in flight, see poller_wait). */
        int64_t tick_end = p->last_wake + POLLER_TICK_MS;
        p->wake_by = p->in_flight > 0 && wake_at < tick_end ? tick_end : wake_at;
        pthread_mutex_unlock(&p->lock);
        poller_wait(p, wake_at, stopping);
        poller_collect(p);
    }
    /* Abandon anything still running past the deadline. */
    for (size_t i = 0; i < p->nbuckets; i++) {
        for (poller_entry *e = p->buckets[i]; e; e = e->next_in_bucket) {
            if (!e->in_flight)
                continue;
            if (e->req != NULL) {
                curl_multi_remove_handle(p->multi, seqr_status_request_easy(e->req));
                seqr_status_request_free(e->req);
            }
            e->req = NULL;
            e->call = NULL; /* the pool frees its calls below */
            e->in_flight = false;
            p->in_flight--;
        }
    }
    /* Closes the native client's connections and drops what it still had. */
    seqr_http1_free(p->http1);
    p->http1 = NULL;
    return NULL;
}

/* How often receipts that are still due are retried (after a crash, or
 * while SEQR refused them). */
#define POLLER_RECEIPT_SWEEP_S 30

static bool poller_receipt_due(const store_invoice *inv, void *ud)
{
    poller_push_job(ud, POLLER_JOB_RECEIPT, inv->reference);
    return true;
}

static void *poller_jobs_main(void *arg)
{
    poller *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        while (p->jobs == NULL && !p->stopping) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += POLLER_RECEIPT_SWEEP_S;
            if (pthread_cond_timedwait(&p->job_cond, &p->lock, &until) != 0 &&
                __atomic_load_n(&p->cfg->poller_auto_receipt, __ATOMIC_RELAXED)) {
                pthread_mutex_unlock(&p->lock);
                store_receipts_due(p->st, poller_receipt_due, p);
                pthread_mutex_lock(&p->lock);
            }
        }
        poller_job *j = p->jobs;
        if (j != NULL) {
            p->jobs = j->next;
            if (p->jobs == NULL)
                p->jobs_tail = NULL;
        }
        bool stop = p->stopping && j == NULL;
        pthread_mutex_unlock(&p->lock);
        if (stop)
            break;
        if (j == NULL)
            continue;
        api_error err;
        api_error_clear(&err);
        if (j->kind == POLLER_JOB_RECEIPT) {
            if (!service_auto_receipt(p->svc, j->ref, &err))
                log_warn("invoice %s: automatic receipt failed: %s", j->ref, err.message);
        } else {
            if (!service_expire(p->svc, j->ref, &err))
                log_warn("invoice %s: cancel after TTL failed: %s", j->ref, err.message);
            poller_poke(p, j->ref);
        }
        free(j);
    }
    return NULL;
}

typedef struct {
    poller *p;
    int64_t n;
} poller_load_ctx;

static bool poller_load_one(const store_invoice *inv, void *ud)
{
    poller_load_ctx *ctx = ud;
    poller_enqueue(ctx->p, inv, 0); /* after a restart: poll at once */
    ctx->n++;
    return true;
}

typedef struct {
    poller *p;
    int64_t gained, lost;
} poller_lease_ctx;

static bool poller_lease_gained(const store_invoice *inv, void *ud)
{
    poller_lease_ctx *ctx = ud;
    poller_enqueue(ctx->p, inv, 0); /* taken over: poll at once */
    ctx->gained++;
    return true;
}

static void poller_lease_lost(const char *reference, void *ud)
{
    poller_lease_ctx *ctx = ud;
    poller_msg *m = calloc(1, sizeof *m);
    if (m == NULL)
        abort();
    m->drop = true;
    snprintf(m->entry.ref, sizeof m->entry.ref, "%s", reference);
    pthread_mutex_lock(&ctx->p->lock);
    m->next = ctx->p->inbox;
    ctx->p->inbox = m;
    pthread_mutex_unlock(&ctx->p->lock);
    ctx->lost++;
}

/* Several gateways on one database: renews this gateway's leases and takes
 * over what dead ones held, every STORE_LEASE_RENEW_MS (store.h). With
 * SQLite the first call says there are no leases and the thread ends. */
static void *poller_lease_main(void *arg)
{
    poller *p = arg;
    bool failing = false; /* logged once per outage, not every second */
    for (;;) {
        poller_lease_ctx ctx = {p, 0, 0};
        int64_t held = 0;
        if (store_lease_sync(p->st, poller_lease_gained, poller_lease_lost, &ctx, &held) !=
            STORE_OK) {
            if (!failing)
                log_warn("poller: renewing the leases on pending invoices failed; retrying");
            failing = true;
        } else if (held < 0) {
            return NULL;
        } else if (failing) {
            log_info("poller: leases on pending invoices renewed again");
            failing = false;
        }
        /* A newer gateway may have migrated the shared database meanwhile:
         * this one's statements were written for the schema before. */
        int db_version = 0, known = 0;
        if (store_schema_versions(p->st, &db_version, &known) == STORE_OK && db_version > known) {
            pthread_mutex_lock(&p->lock);
            p->stats.schema_newer = db_version;
            pthread_mutex_unlock(&p->lock);
        }
        if (ctx.gained > 0 || ctx.lost > 0) {
            log_info("poller: took %lld pending invoices, handed on %lld, holds %lld",
                     (long long)ctx.gained, (long long)ctx.lost, (long long)held);
            poller_wake(p);
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += (long)STORE_LEASE_RENEW_MS * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_mutex_lock(&p->lock);
        while (!p->stopping &&
               pthread_cond_timedwait(&p->lease_cond, &p->lock, &until) != ETIMEDOUT) {
        }
        bool stop = p->stopping;
        pthread_mutex_unlock(&p->lock);
        if (stop)
            return NULL;
    }
}

bool poller_start(poller *p)
{
    poller_load_ctx ctx = {p, 0};
    if (store_pending(p->st, poller_load_one, &ctx) != STORE_OK) {
        log_error("poller: cannot load pending invoices from the store");
        return false;
    }
    if (ctx.n > 0)
        log_info("poller: resuming %lld pending invoices", (long long)ctx.n);
    /* Receipts that a crash left unsent are due now as well. */
    if (__atomic_load_n(&p->cfg->poller_auto_receipt, __ATOMIC_RELAXED) &&
        store_receipts_due(p->st, poller_receipt_due, p) != STORE_OK)
        log_warn("poller: cannot look up receipts still to send");
    if (pthread_create(&p->thread, NULL, poller_main, p) != 0)
        return false;
    if (pthread_create(&p->job_thread, NULL, poller_jobs_main, p) != 0) {
        pthread_mutex_lock(&p->lock);
        p->stopping = true;
        pthread_mutex_unlock(&p->lock);
        poller_wake(p);
        pthread_join(p->thread, NULL);
        return false;
    }
    if (pthread_create(&p->lease_thread, NULL, poller_lease_main, p) != 0) {
        pthread_mutex_lock(&p->lock);
        p->stopping = true;
        pthread_cond_broadcast(&p->job_cond);
        pthread_mutex_unlock(&p->lock);
        poller_wake(p);
        pthread_join(p->thread, NULL);
        pthread_join(p->job_thread, NULL);
        return false;
    }
    p->started = true;
    return true;
}

void poller_stop(poller *p)
{
    if (!p->started)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->job_cond);
    pthread_cond_broadcast(&p->lease_cond);
    pthread_mutex_unlock(&p->lock);
    poller_wake(p);
    pthread_join(p->thread, NULL);
    pthread_join(p->job_thread, NULL);
    pthread_join(p->lease_thread, NULL);
    p->started = false;
}
