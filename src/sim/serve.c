/* sim/serve.c — the loop threads and their daemons; see sim/serve.h. */
#include "sim/serve.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "sim/delay.h"

/* The longest a loop sleeps with nothing due, so that it sees a stop. */
#define SIM_SERVE_TICK_MS 100
/* The most held calls resumed in one run of a loop (see sim_serve_main). */
#define SIM_SERVE_RESUME_BATCH 16
/* Connections per daemon; the kernel spreads clients over the daemons. */
#define SIM_SERVE_CONNECTIONS 4000U
/* Memory per connection for its request line, headers and read buffer
 * (bodies are handed over in pieces). libmicrohttpd clears the whole of it
 * for every request on a kept connection: its default 32 KB cost a tenth
 * of the simulator's CPU per status call. */
#define SIM_SERVE_CONNECTION_MEMORY (16U * 1024U)

typedef struct {
    struct MHD_Daemon *daemon;
    sim_delay delay;
    pthread_t thread;
    bool started;
    atomic_bool *stop; /* the server's */
} sim_serve_loop;

struct sim_serve {
    sim_serve_loop *loops; /* owned, n of them */
    unsigned n;
    atomic_bool stop;
};

const char *sim_serve_strerror(sim_serve_error e)
{
    switch (e) {
    case SIM_SERVE_OK:
        return "no error";
    case SIM_SERVE_NO_MEMORY:
        return "out of memory";
    case SIM_SERVE_CANNOT_LISTEN:
        return "cannot listen on the address and port";
    case SIM_SERVE_NO_THREAD:
        return "cannot start a server thread";
    }
    return "unknown error";
}

static void sim_serve_run(sim_serve_loop *l, int64_t wait_ms)
{
    if (MHD_run_wait(l->daemon, (int32_t)wait_ms) == MHD_YES)
        return;
    /* Only a failing epoll gets here; do not spin on it. */
    fprintf(stderr, "seqr-sim: the server loop failed; retrying\n");
    struct timespec pause = {0, 10 * 1000000L};
    nanosleep(&pause, NULL);
}

static void *sim_serve_main(void *arg)
{
    sim_serve_loop *l = arg;
    while (!atomic_load(l->stop)) {
        /* Resumed here, run below: libmicrohttpd moves them back and calls
         * the handler within the same run, and sends the answers in the run
         * after. A few at a time, so that the first answers leave while the
         * next are built; when more are due the next run does not wait. */
        sim_delay_resume_due(&l->delay, SIM_SERVE_RESUME_BATCH);
        int64_t wait = sim_delay_wait_ms(&l->delay);
        if (wait < 0 || wait > SIM_SERVE_TICK_MS)
            wait = SIM_SERVE_TICK_MS;
        sim_serve_run(l, wait);
    }
    /* Stopping: the held calls are answered now, not dropped. One run calls
     * their handlers, the next sends what they queued. */
    sim_delay_resume_all(&l->delay);
    sim_serve_run(l, 0);
    sim_serve_run(l, 0);
    return NULL;
}

sim_serve_error sim_serve_start(const sim_serve_config *cfg, sim_serve **out)
{
    *out = NULL;
    sim_serve_error err = SIM_SERVE_OK;
    sim_serve *s = calloc(1, sizeof *s);
    if (s == NULL)
        return SIM_SERVE_NO_MEMORY;
    atomic_init(&s->stop, false);
    s->n = cfg->threads < 1 ? 1 : cfg->threads;
    s->loops = calloc(s->n, sizeof *s->loops);
    if (s->loops == NULL) {
        err = SIM_SERVE_NO_MEMORY;
        goto cleanup;
    }
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
    if (cfg->ipv6)
        flags |= MHD_USE_IPv6;
    /* The certificate and key, when given, as an option array (empty else). */
    struct MHD_OptionItem tls_options[3] = {{MHD_OPTION_END, 0, NULL}};
    if (cfg->tls_cert != NULL) {
        flags |= MHD_USE_TLS;
        tls_options[0] =
            (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)cfg->tls_cert};
        tls_options[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)cfg->tls_key};
        tls_options[2] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    }
    for (unsigned i = 0; i < s->n; i++) {
        sim_serve_loop *l = &s->loops[i];
        sim_delay_init(&l->delay);
        l->stop = &s->stop;
        /* Port 0 here: MHD_OPTION_SOCK_ADDR carries it. Every daemon binds
         * the same address with SO_REUSEPORT (LISTENING_ADDRESS_REUSE 1). */
        l->daemon = MHD_start_daemon(
            flags, 0, NULL, NULL, cfg->handler, &l->delay, MHD_OPTION_SOCK_ADDR, cfg->addr,
            MHD_OPTION_CONNECTION_LIMIT, SIM_SERVE_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT, 120U,
            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)SIM_SERVE_CONNECTION_MEMORY,
            MHD_OPTION_NOTIFY_COMPLETED, cfg->completed, NULL, MHD_OPTION_LISTENING_ADDRESS_REUSE,
            1U, MHD_OPTION_ARRAY, tls_options, MHD_OPTION_END);
        if (l->daemon == NULL) {
            err = SIM_SERVE_CANNOT_LISTEN;
            goto cleanup;
        }
    }
    for (unsigned i = 0; i < s->n; i++) {
        if (pthread_create(&s->loops[i].thread, NULL, sim_serve_main, &s->loops[i]) != 0) {
            err = SIM_SERVE_NO_THREAD;
            goto cleanup;
        }
        s->loops[i].started = true;
    }
    *out = s;
    return SIM_SERVE_OK;
cleanup:
    sim_serve_stop(s);
    return err;
}

void sim_serve_stop(sim_serve *s)
{
    if (s == NULL)
        return;
    atomic_store(&s->stop, true);
    for (unsigned i = 0; s->loops != NULL && i < s->n; i++) {
        sim_serve_loop *l = &s->loops[i];
        if (l->started)
            pthread_join(l->thread, NULL);
        else
            sim_delay_resume_all(&l->delay); /* holds nothing: no thread ran */
        if (l->daemon != NULL)
            MHD_stop_daemon(l->daemon);
        sim_delay_free(&l->delay);
    }
    free(s->loops);
    free(s);
}
