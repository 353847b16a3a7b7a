/* sim/delay.h — holds SOAP answers back for the injected latency without a
 * thread per waiting call, and without waking another thread to end a wait.
 *
 * Each of the simulator's loop threads (sim/serve.c) owns one sim_delay: a
 * min-heap of the connections its handler suspended (MHD_suspend_connection),
 * by due time. The same thread resumes every due connection just before it
 * runs its libmicrohttpd daemon again, and sleeps in that run no longer than
 * the earliest due time; libmicrohttpd then calls the handler again, which
 * answers. So 1,000 calls waiting 20 ms cost no thread, no lock, no wake-up
 * signal between threads, and the resumes of a millisecond are one batch.
 *
 * Not thread-safe: use a sim_delay only from the thread that runs the daemon
 * of the connections it holds. The connections are borrowed: libmicrohttpd
 * owns them. */
#ifndef SEQR_SIM_DELAY_H
#define SEQR_SIM_DELAY_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int64_t due; /* monotonic microseconds to resume at */
    struct MHD_Connection *conn;
} sim_delay_item;

typedef struct {
    sim_delay_item *heap; /* owned; a binary min-heap by due */
    size_t len, cap;
    bool stopping; /* set by sim_delay_resume_all: later holds fail */
} sim_delay;

/* An empty heap. */
void sim_delay_init(sim_delay *d);
/* Suspends conn and queues it to be resumed latency_ms from now, never
 * sooner (the clock counts microseconds). False, with conn left running,
 * when d is stopping or out of memory: the caller then answers at once.
 * Call only from conn's request handler, on d's thread. */
bool sim_delay_hold(sim_delay *d, struct MHD_Connection *conn, int64_t latency_ms);
/* Resumes the connections that are due, earliest first, at most max of
 * them; returns how many. */
size_t sim_delay_resume_due(sim_delay *d, size_t max);
/* Milliseconds until the earliest due time, rounded up (0 when one is due),
 * or -1 when nothing is held. */
int64_t sim_delay_wait_ms(const sim_delay *d);
/* Resumes every held connection at once and refuses later holds (the
 * simulator is stopping; libmicrohttpd needs none suspended to stop). */
void sim_delay_resume_all(sim_delay *d);
/* Frees the heap; hold nothing after. */
void sim_delay_free(sim_delay *d);

#endif
