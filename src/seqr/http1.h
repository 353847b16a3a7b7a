/* seqr/http1.h — the poll path's own HTTP/1.1 client: a pool of kept-alive
 * connections to the one origin of [seqr] url (http or https), driven by
 * the caller's epoll set, without a thread of its own.
 *
 * The poller POSTs each invoice's serialised getPaymentStatus request with
 * seqr_http1_post() and hands every socket event it gets for a descriptor
 * it does not own itself to seqr_http1_on_event(); seqr_http1_tick() runs
 * the per-call timeouts and the DNS refresh, seqr_http1_next_due() says by
 * when it wants to be ticked, and finished calls are taken with
 * seqr_http1_done(). Answers are parsed with http-parser (Content-Length,
 * chunked and close-delimited bodies, 1xx before the answer, HTTP/1.0,
 * Connection: close), the body capped at SEQR_XML_MAX_BYTES. TLS is
 * OpenSSL's: TLS >= 1.2, the peer always verified against ca_file or the
 * system's store, the host name checked and sent as SNI, sessions resumed
 * between connections. A request written on a reused connection that is
 * closed before any answer byte arrives is sent once more on a new
 * connection (a getPaymentStatus is a read). DNS never blocks the loop:
 * the name is resolved once in seqr_http1_new(), later in the background
 * (getaddrinfo_a) at most every 60 s, sooner after a failed connect.
 *
 * Ownership: a seqr_http1 owns its connections, SSL_CTX and calls. The body
 * given to seqr_http1_post() is borrowed and must stay unchanged until the
 * call is taken with seqr_http1_done() (it may hold a password: the pool
 * never logs it, and the one copy it makes for TLS is cleared before it is
 * freed). A call taken with seqr_http1_done() belongs to the caller until
 * seqr_http1_call_free(). Not thread-safe: one thread drives a pool. */
#ifndef SEQR_HTTP1_H
#define SEQR_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    SEQR_HTTP1_OK = 0,
    SEQR_HTTP1_ERR_RESOLVE,   /* the host name does not resolve */
    SEQR_HTTP1_ERR_CONNECT,   /* connect refused, unreachable, reset during connect */
    SEQR_HTTP1_ERR_TLS,       /* TLS handshake or certificate verification failed */
    SEQR_HTTP1_ERR_SEND,      /* the connection broke while the request was written */
    SEQR_HTTP1_ERR_CLOSED,    /* the connection ended before a complete answer */
    SEQR_HTTP1_ERR_MALFORMED, /* the answer is not HTTP/1.x */
    SEQR_HTTP1_ERR_TOO_LARGE, /* the answer's body exceeds the cap */
    SEQR_HTTP1_ERR_TIMEOUT,   /* no complete answer within the call's timeout */
    SEQR_HTTP1_ERR_INTERNAL,  /* out of memory, a socket or epoll call failed */
    SEQR_HTTP1_ERR_CONFIG     /* bad URL, CA file or TLS set-up (seqr_http1_new only) */
} seqr_http1_err;

/* A short English text for err. Static. */
const char *seqr_http1_strerror(seqr_http1_err err);

typedef struct {
    const char *url;        /* http:// or https://host[:port][/path]; copied */
    const char *ca_file;    /* NULL/"" = the system's default CA paths; copied */
    const char *user_agent; /* copied */
    int epoll_fd;           /* the caller's epoll set; borrowed */
    int max_conns;          /* connections at most (>= 1) */
    long timeout_ms;        /* per call, from seqr_http1_post() to the last answer byte */
    size_t max_body;        /* answer body cap in bytes */
} seqr_http1_options;

typedef struct seqr_http1 seqr_http1;
typedef struct seqr_http1_call seqr_http1_call;

/* What a finished call got. body is owned by the call. */
typedef struct {
    seqr_http1_err err;
    int http_status;  /* of the final answer; 0 without one */
    const char *body; /* the answer's body, NUL-terminated ("" without one) */
    size_t body_len;
    char detail[200];   /* what went wrong, for logs (never request bytes) */
    int64_t elapsed_us; /* from post to the end */
    void *user;         /* as given to seqr_http1_post() */
} seqr_http1_result;

/* Parses the URL, sets up TLS and resolves the host (this once blocking).
 * NULL with *err and why filled on failure. */
seqr_http1 *seqr_http1_new(const seqr_http1_options *o, seqr_http1_err *err, char *why,
                           size_t why_len);
/* Closes every connection; calls still under way or not yet taken are
 * dropped without being reported. NULL is fine. */
void seqr_http1_free(seqr_http1 *h);

/* Starts a POST of body (borrowed, see above). Never reports through its
 * return: even a failure to connect comes back from seqr_http1_done(). NULL
 * only when out of memory. */
seqr_http1_call *seqr_http1_post(seqr_http1 *h, const char *body, size_t body_len, void *user);

/* True when fd is one of the pool's sockets. */
bool seqr_http1_owns(const seqr_http1 *h, int fd);
/* Acts on epoll events (EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP...) for fd. */
void seqr_http1_on_event(seqr_http1 *h, int fd, uint32_t events);
/* Ends calls past their timeout and looks after the background DNS refresh.
 * now_ms is CLOCK_MONOTONIC in ms. */
void seqr_http1_tick(seqr_http1 *h, int64_t now_ms);
/* Monotonic ms by which seqr_http1_tick() should run next; -1 for none. */
int64_t seqr_http1_next_due(const seqr_http1 *h);

/* The next finished call (oldest first), NULL when none; fills *out. */
seqr_http1_call *seqr_http1_done(seqr_http1 *h, seqr_http1_result *out);
/* Frees a call taken with seqr_http1_done(). NULL is fine. */
void seqr_http1_call_free(seqr_http1_call *c);

typedef struct {
    uint64_t connects; /* connections opened */
    uint64_t reuses;   /* calls sent on a kept-alive connection */
    uint64_t retries;  /* calls sent again after a kept connection died */
    uint64_t resolves; /* background DNS refreshes completed */
    uint64_t resumed;  /* TLS handshakes that resumed an earlier session */
    int open_conns;    /* connections open now */
} seqr_http1_stats;
void seqr_http1_get_stats(const seqr_http1 *h, seqr_http1_stats *out);

/* --- pieces, for the tests and the fuzzer --- */

/* Reads one HTTP/1.x answer from bytes fed in any splits, without a network. */
typedef struct seqr_http1_reader seqr_http1_reader;
seqr_http1_reader *seqr_http1_reader_new(size_t max_body);
void seqr_http1_reader_free(seqr_http1_reader *r);
/* Feeds len bytes (len 0 = the connection ended). Returns SEQR_HTTP1_OK
 * while more is needed or once complete (*complete set), else the error. */
seqr_http1_err seqr_http1_reader_feed(seqr_http1_reader *r, const char *data, size_t len,
                                      bool *complete);
/* After completion: status, body (borrowed from r) and whether the
 * connection may be kept. */
int seqr_http1_reader_status(const seqr_http1_reader *r);
const char *seqr_http1_reader_body(const seqr_http1_reader *r, size_t *len);
bool seqr_http1_reader_keep_alive(const seqr_http1_reader *r);

/* True when a proxy variable (https_proxy, http_proxy, all_proxy, in lower
 * or upper case) applies to url and no_proxy does not exclude its host:
 * libcurl would go through that proxy, which this client does not speak.
 * why (may be NULL) names the variable. */
bool seqr_http1_proxy_applies(const char *url, char *why, size_t why_len);

#endif
