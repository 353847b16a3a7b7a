/* sim/delay.c — the per-thread heap of held calls; see sim/delay.h. */
#include "sim/delay.h"

#include <stdlib.h>
#include <time.h>

static int64_t sim_delay_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sim_delay_swap(sim_delay *d, size_t a, size_t b)
{
    sim_delay_item t = d->heap[a];
    d->heap[a] = d->heap[b];
    d->heap[b] = t;
}

static bool sim_delay_push(sim_delay *d, sim_delay_item it)
{
    if (d->len == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 1024;
        sim_delay_item *h = realloc(d->heap, cap * sizeof *h);
        if (h == NULL)
            return false;
        d->heap = h;
        d->cap = cap;
    }
    size_t i = d->len++;
    d->heap[i] = it;
    while (i > 0 && d->heap[(i - 1) / 2].due > d->heap[i].due) {
        sim_delay_swap(d, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
    return true;
}

static sim_delay_item sim_delay_pop(sim_delay *d)
{
    sim_delay_item top = d->heap[0];
    d->heap[0] = d->heap[--d->len];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < d->len && d->heap[l].due < d->heap[m].due)
            m = l;
        if (r < d->len && d->heap[r].due < d->heap[m].due)
            m = r;
        if (m == i)
            break;
        sim_delay_swap(d, i, m);
        i = m;
    }
    return top;
}

void sim_delay_init(sim_delay *d)
{
    d->heap = NULL;
    d->len = d->cap = 0;
    d->stopping = false;
}

bool sim_delay_hold(sim_delay *d, struct MHD_Connection *conn, int64_t latency_ms)
{
    if (d->stopping)
        return false;
    /* The request was complete before now, so this is never early. */
    int64_t due = sim_delay_now_us() + latency_ms * 1000;
    if (!sim_delay_push(d, (sim_delay_item){due, conn}))
        return false;
    MHD_suspend_connection(conn);
    return true;
}

size_t sim_delay_resume_due(sim_delay *d, size_t max)
{
    size_t n = 0;
    int64_t now = sim_delay_now_us();
    while (n < max && d->len > 0 && d->heap[0].due <= now) {
        MHD_resume_connection(sim_delay_pop(d).conn);
        n++;
    }
    return n;
}

int64_t sim_delay_wait_ms(const sim_delay *d)
{
    if (d->len == 0)
        return -1;
    int64_t left = d->heap[0].due - sim_delay_now_us();
    return left > 0 ? (left + 999) / 1000 : 0;
}

void sim_delay_resume_all(sim_delay *d)
{
    d->stopping = true;
    while (d->len > 0)
        MHD_resume_connection(sim_delay_pop(d).conn);
}

void sim_delay_free(sim_delay *d)
{
    free(d->heap);
    sim_delay_init(d);
}
