/* sim/serve.h — the simulator's HTTP server: one libmicrohttpd daemon per
 * loop thread, each running its own epoll loop with its own sim_delay.
 *
 * Every daemon listens on the same address and port (SO_REUSEPORT); the
 * kernel spreads the connections over them, and a connection stays with its
 * daemon's thread for life. A call that must wait out injected latency is
 * suspended, held in that thread's sim_delay, and resumed by the same thread
 * when due (see sim/delay.h): no timer thread and no cross-thread wake-up
 * per call, which under load is what made a 20 ms call take 30 to 200 ms.
 *
 * The handler is called with its thread's sim_delay as cls. */
#ifndef SEQR_SIM_SERVE_H
#define SEQR_SIM_SERVE_H

#include <microhttpd.h>
#include <stdbool.h>
#include <sys/socket.h>

typedef enum {
    SIM_SERVE_OK,
    SIM_SERVE_NO_MEMORY,
    SIM_SERVE_CANNOT_LISTEN,
    SIM_SERVE_NO_THREAD,
} sim_serve_error;

typedef struct {
    const struct sockaddr *addr; /* borrowed, only during sim_serve_start */
    bool ipv6;                   /* addr is an IPv6 address */
    unsigned threads;            /* loop threads (and daemons), >= 1 */
    /* PEM text of the certificate and key, both or neither (plain HTTP);
     * borrowed, must outlive the server. */
    const char *tls_cert, *tls_key;
    MHD_AccessHandlerCallback handler;
    MHD_RequestCompletedCallback completed; /* its cls is NULL */
} sim_serve_config;

typedef struct sim_serve sim_serve;

/* Starts the daemons and their threads; *out is the server (stop it with
 * sim_serve_stop), NULL on error. */
sim_serve_error sim_serve_start(const sim_serve_config *cfg, sim_serve **out);
/* What an error means, for a message. */
const char *sim_serve_strerror(sim_serve_error e);
/* Answers the calls still held (at once), stops every thread and daemon and
 * frees s. NULL is ignored. */
void sim_serve_stop(sim_serve *s);

#endif
