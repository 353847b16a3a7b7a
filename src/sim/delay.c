/* sim/delay.c — the timer that resumes held calls; see sim/delay.h. */
#include "sim/delay.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "sim/sim.h"

typedef struct {
    int64_t due;
    struct MHD_Connection *conn;
} sim_delay_item;

/* A binary min-heap by due time, guarded by sim_delay_lock. */
static pthread_mutex_t sim_delay_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sim_delay_cond;
static sim_delay_item *sim_delay_heap;
static size_t sim_delay_len, sim_delay_cap;
static bool sim_delay_running, sim_delay_stopping;
static pthread_t sim_delay_thread;

static void sim_delay_swap(size_t a, size_t b)
{
    sim_delay_item t = sim_delay_heap[a];
    sim_delay_heap[a] = sim_delay_heap[b];
    sim_delay_heap[b] = t;
}

static bool sim_delay_push(sim_delay_item it)
{
    if (sim_delay_len == sim_delay_cap) {
        size_t cap = sim_delay_cap ? sim_delay_cap * 2 : 1024;
        sim_delay_item *h = realloc(sim_delay_heap, cap * sizeof *h);
        if (h == NULL)
            return false;
        sim_delay_heap = h;
        sim_delay_cap = cap;
    }
    size_t i = sim_delay_len++;
    sim_delay_heap[i] = it;
    while (i > 0 && sim_delay_heap[(i - 1) / 2].due > sim_delay_heap[i].due) {
        sim_delay_swap(i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
    return true;
}

static sim_delay_item sim_delay_pop(void)
{
    sim_delay_item top = sim_delay_heap[0];
    sim_delay_heap[0] = sim_delay_heap[--sim_delay_len];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < sim_delay_len && sim_delay_heap[l].due < sim_delay_heap[m].due)
            m = l;
        if (r < sim_delay_len && sim_delay_heap[r].due < sim_delay_heap[m].due)
            m = r;
        if (m == i)
            break;
        sim_delay_swap(i, m);
        i = m;
    }
    return top;
}

static void *sim_delay_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&sim_delay_lock);
    for (;;) {
        if (sim_delay_stopping && sim_delay_len == 0)
            break;
        if (sim_delay_len == 0) {
            pthread_cond_wait(&sim_delay_cond, &sim_delay_lock);
            continue;
        }
        int64_t now = sim_mono_ms();
        if (!sim_delay_stopping && sim_delay_heap[0].due > now) {
            /* The condition variable runs on CLOCK_MONOTONIC (see start). */
            struct timespec until;
            int64_t due = sim_delay_heap[0].due;
            until.tv_sec = (time_t)(due / 1000);
            until.tv_nsec = (long)(due % 1000) * 1000000L;
            pthread_cond_timedwait(&sim_delay_cond, &sim_delay_lock, &until);
            continue;
        }
        sim_delay_item it = sim_delay_pop();
        pthread_mutex_unlock(&sim_delay_lock);
        MHD_resume_connection(it.conn);
        pthread_mutex_lock(&sim_delay_lock);
    }
    pthread_mutex_unlock(&sim_delay_lock);
    return NULL;
}

bool sim_delay_start(void)
{
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        return false;
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&sim_delay_cond, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0)
        return false;
    if (pthread_create(&sim_delay_thread, NULL, sim_delay_main, NULL) != 0)
        return false;
    sim_delay_running = true;
    return true;
}

bool sim_delay_hold(struct MHD_Connection *conn, int64_t due_mono_ms)
{
    pthread_mutex_lock(&sim_delay_lock);
    bool held = false;
    if (sim_delay_running && !sim_delay_stopping) {
        /* Suspended before it is queued, so the timer can never resume a
         * connection that is not suspended yet. */
        MHD_suspend_connection(conn);
        held = sim_delay_push((sim_delay_item){due_mono_ms, conn});
        if (!held)
            MHD_resume_connection(conn);
        else if (sim_delay_heap[0].conn == conn)
            pthread_cond_signal(&sim_delay_cond);
    }
    pthread_mutex_unlock(&sim_delay_lock);
    return held;
}

void sim_delay_stop(void)
{
    pthread_mutex_lock(&sim_delay_lock);
    bool running = sim_delay_running;
    sim_delay_stopping = true;
    pthread_cond_signal(&sim_delay_cond);
    pthread_mutex_unlock(&sim_delay_lock);
    if (running)
        pthread_join(sim_delay_thread, NULL);
    sim_delay_running = false;
    free(sim_delay_heap);
    sim_delay_heap = NULL;
    sim_delay_len = sim_delay_cap = 0;
}
