/* seqr/http1.c — kept-alive HTTP/1.1 client of the poll path; see http1.h.
 *
 * A connection goes CONNECTING -> (HANDSHAKE) -> SENDING -> READING -> IDLE
 * and back to SENDING for its next call. Sockets are level-triggered in the
 * caller's epoll set; a connection's event mask changes only when what it
 * waits for changes (READING and IDLE both wait for EPOLLIN, so a call on a
 * kept connection costs no epoll_ctl). Answers are read into one buffer of
 * the pool (the parser copies the body out as it goes), so a connection
 * holds no read buffer of its own; a body grows only as large as its answer. */
#include "http1.h"

#include <arpa/inet.h>
#include <errno.h>
#include <http_parser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "../buf.h"
#include "../log.h"
#include "../text.h"

/* The pool's read buffer: one read takes at most this much. */
#define HTTP1_READ_BUF 16384
/* Background DNS refresh: at most this often while all is well ... */
#define HTTP1_RESOLVE_EVERY_MS 60000
/* ... and this soon after a connect failed. */
#define HTTP1_RESOLVE_RETRY_MS 1000
/* Addresses of the host kept (tried in turn when a connect fails). */
#define HTTP1_MAX_ADDRS 8

const char *seqr_http1_strerror(seqr_http1_err err)
{
    switch (err) {
    case SEQR_HTTP1_OK:
        return "ok";
    case SEQR_HTTP1_ERR_RESOLVE:
        return "cannot resolve the host name";
    case SEQR_HTTP1_ERR_CONNECT:
        return "cannot connect";
    case SEQR_HTTP1_ERR_TLS:
        return "TLS handshake or certificate verification failed";
    case SEQR_HTTP1_ERR_SEND:
        return "the connection broke while sending";
    case SEQR_HTTP1_ERR_CLOSED:
        return "the connection ended before a complete answer";
    case SEQR_HTTP1_ERR_MALFORMED:
        return "the answer is not HTTP/1.x";
    case SEQR_HTTP1_ERR_TOO_LARGE:
        return "the answer is too large";
    case SEQR_HTTP1_ERR_TIMEOUT:
        return "no complete answer in time";
    case SEQR_HTTP1_ERR_INTERNAL:
        return "internal error";
    case SEQR_HTTP1_ERR_CONFIG:
        return "bad configuration";
    }
    return "unknown error";
}

/* --- the answer reader (http-parser) --- */

struct seqr_http1_reader {
    http_parser parser;
    buf body;
    size_t max_body;
    int status;
    bool complete;
    bool too_large;
    bool keep_alive;
    bool trailing; /* bytes after the answer: the connection is not reused */
};

static int reader_on_message_begin(http_parser *p)
{
    seqr_http1_reader *r = p->data;
    if (r->complete) {
        r->trailing = true; /* bytes after the answer: stop there */
        return -1;
    }
    buf_reset(&r->body);
    return 0;
}

static int reader_on_body(http_parser *p, const char *at, size_t len)
{
    seqr_http1_reader *r = p->data;
    if (len > r->max_body || r->body.len > r->max_body - len) {
        r->too_large = true;
        return -1;
    }
    buf_append(&r->body, at, len);
    return 0;
}

static int reader_on_message_complete(http_parser *p)
{
    seqr_http1_reader *r = p->data;
    if (p->status_code >= 100 && p->status_code < 200)
        return 0; /* 100 Continue and friends: the answer follows */
    r->complete = true;
    r->status = (int)p->status_code;
    r->keep_alive = http_should_keep_alive(p) != 0;
    return 0;
}

static const http_parser_settings reader_settings = {
    .on_message_begin = reader_on_message_begin,
    .on_body = reader_on_body,
    .on_message_complete = reader_on_message_complete,
};

static void reader_reset(seqr_http1_reader *r)
{
    http_parser_init(&r->parser, HTTP_RESPONSE);
    r->parser.data = r;
    buf_reset(&r->body);
    r->status = 0;
    r->complete = false;
    r->too_large = false;
    r->keep_alive = false;
    r->trailing = false;
}

static void reader_init(seqr_http1_reader *r, size_t max_body)
{
    memset(r, 0, sizeof *r);
    buf_init(&r->body);
    r->max_body = max_body;
    reader_reset(r);
}

seqr_http1_reader *seqr_http1_reader_new(size_t max_body)
{
    seqr_http1_reader *r = malloc(sizeof *r);
    if (r == NULL)
        return NULL;
    reader_init(r, max_body);
    return r;
}

void seqr_http1_reader_free(seqr_http1_reader *r)
{
    if (r == NULL)
        return;
    buf_free(&r->body);
    free(r);
}

seqr_http1_err seqr_http1_reader_feed(seqr_http1_reader *r, const char *data, size_t len,
                                      bool *complete)
{
    *complete = r->complete;
    if (r->complete) {
        if (len > 0)
            r->trailing = true;
        return SEQR_HTTP1_OK;
    }
    size_t n = http_parser_execute(&r->parser, &reader_settings, data, len);
    if (r->complete) {
        /* Bytes after it (the parser stopped at them, or at a dead
         * connection's end) mean the connection is not reused. */
        if (n < len)
            r->trailing = true;
        *complete = true;
        return SEQR_HTTP1_OK;
    }
    if (r->too_large)
        return SEQR_HTTP1_ERR_TOO_LARGE;
    if (len == 0)
        return SEQR_HTTP1_ERR_CLOSED; /* the connection ended inside the answer */
    if (HTTP_PARSER_ERRNO(&r->parser) != HPE_OK || n != len)
        return SEQR_HTTP1_ERR_MALFORMED;
    return SEQR_HTTP1_OK;
}

int seqr_http1_reader_status(const seqr_http1_reader *r)
{
    return r->complete ? r->status : 0;
}

const char *seqr_http1_reader_body(const seqr_http1_reader *r, size_t *len)
{
    *len = r->body.len;
    return buf_cstr(&r->body);
}

bool seqr_http1_reader_keep_alive(const seqr_http1_reader *r)
{
    return r->complete && r->keep_alive && !r->trailing;
}

/* What went wrong in the parser, for logs. */
static const char *reader_why(const seqr_http1_reader *r)
{
    return http_errno_description(HTTP_PARSER_ERRNO(&r->parser));
}

/* --- pool --- */

typedef enum { H1_CONNECTING, H1_HANDSHAKE, H1_SENDING, H1_READING, H1_IDLE } h1_state;

typedef struct h1_conn {
    int fd;
    SSL *ssl;
    h1_state state;
    uint32_t mask;   /* events it is registered for in epoll */
    unsigned served; /* answers read on it */
    bool got_byte;   /* of the current call's answer */
    seqr_http1_call *call;
    seqr_http1_reader reader;
    struct h1_conn *idle_prev, *idle_next;
} h1_conn;

struct seqr_http1_call {
    const char *body; /* borrowed */
    size_t body_len;
    void *user;
    int64_t start_us;
    int64_t deadline_ms;
    char tail[48]; /* "<content length>\r\n\r\n" */
    size_t tail_len;
    char *tls_copy; /* prefix + tail + body for SSL_write; cleared before free */
    size_t tls_len;
    size_t sent; /* bytes of the whole request written */
    bool retried;
    int addr_tries; /* addresses tried by this call's connect */
    bool waiting;   /* queued for a connection */
    h1_conn *conn;
    seqr_http1_err err;
    int http_status;
    buf answer;
    char detail[200];
    int64_t elapsed_us;
    struct seqr_http1_call *prev, *next; /* calls under way, oldest first */
    struct seqr_http1_call *next_wait;   /* waiting for a connection */
    struct seqr_http1_call *next_done;   /* finished, not taken yet */
};

struct seqr_http1 {
    char *host; /* without brackets */
    char port[8];
    bool tls;
    bool host_is_ip;
    char *prefix; /* request line and headers up to "Content-Length: " */
    size_t prefix_len;
    SSL_CTX *ctx;
    SSL_SESSION *session; /* the newest, resumed on the next connection */
    int epfd;
    int max_conns;
    long timeout_ms;
    size_t max_body;

    struct sockaddr_storage addrs[HTTP1_MAX_ADDRS];
    socklen_t addr_lens[HTTP1_MAX_ADDRS];
    int n_addrs, addr_next;
    int64_t resolved_at; /* monotonic ms of the last resolve */
    bool connect_failed; /* since then */
    struct addrinfo gai_hints;
    struct gaicb gai;
    bool gai_running;

    h1_conn **by_fd;
    size_t fd_cap;
    h1_conn *idle; /* LIFO: the most recently used first */
    int n_conns;
    seqr_http1_call *head, *tail;           /* under way */
    seqr_http1_call *wait_head, *wait_tail; /* waiting for a connection */
    seqr_http1_call *done_head, *done_tail; /* finished */
    seqr_http1_stats stats;
    char rbuf[HTTP1_READ_BUF];
};

static int64_t h1_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void h1_detail(seqr_http1_call *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void h1_detail(seqr_http1_call *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->detail, sizeof c->detail, fmt, ap);
    va_end(ap);
}

static void h1_clear_free(char *p, size_t n)
{
    if (p == NULL)
        return;
    volatile char *v = p;
    for (size_t i = 0; i < n; i++)
        v[i] = '\0';
    free(p);
}

/* The newest TLS session, kept to resume the next connection with. */
static int h1_new_session(SSL *ssl, SSL_SESSION *sess)
{
    seqr_http1 *h = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    if (h == NULL)
        return 0;
    if (h->session != NULL)
        SSL_SESSION_free(h->session);
    h->session = sess;
    return 1; /* the reference is ours */
}

/* Splits url into scheme, host, port and path; fills h and the request prefix. */
static bool h1_parse_url(seqr_http1 *h, const char *url, const char *user_agent, char *why,
                         size_t why_len)
{
    const char *p;
    if (strncasecmp(url, "https://", 8) == 0) {
        h->tls = true;
        p = url + 8;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        p = url + 7;
    } else {
        snprintf(why, why_len, "the SEQR URL must start with http:// or https://");
        return false;
    }
    size_t auth_len = strcspn(p, "/?#");
    const char *path = p + auth_len;
    if (memchr(p, '@', auth_len) != NULL) {
        snprintf(why, why_len, "user names in the SEQR URL are not supported");
        return false;
    }
    const char *host = p, *host_end, *port = NULL;
    if (*p == '[') {
        host = p + 1;
        host_end = memchr(host, ']', auth_len);
        if (host_end == NULL) {
            snprintf(why, why_len, "the SEQR URL has an unclosed [");
            return false;
        }
        if (host_end + 1 < p + auth_len) {
            if (host_end[1] != ':') {
                snprintf(why, why_len, "the SEQR URL has junk after ]");
                return false;
            }
            port = host_end + 2;
        }
    } else {
        host_end = memchr(p, ':', auth_len);
        if (host_end != NULL)
            port = host_end + 1;
        else
            host_end = p + auth_len;
    }
    if (host_end == host) {
        snprintf(why, why_len, "the SEQR URL has no host");
        return false;
    }
    h->host = strndup(host, (size_t)(host_end - host));
    if (h->host == NULL)
        return false;
    long portnum = h->tls ? 443 : 80;
    if (port != NULL) {
        size_t plen = (size_t)(p + auth_len - port);
        char tmp[8];
        if (plen == 0 || plen >= sizeof tmp || strspn(port, "0123456789") < plen) {
            snprintf(why, why_len, "the SEQR URL has a bad port");
            return false;
        }
        memcpy(tmp, port, plen);
        tmp[plen] = '\0';
        portnum = strtol(tmp, NULL, 10);
        if (portnum < 1 || portnum > 65535) {
            snprintf(why, why_len, "the SEQR URL has a bad port");
            return false;
        }
    }
    snprintf(h->port, sizeof h->port, "%ld", portnum);
    unsigned char addr[sizeof(struct in6_addr)];
    h->host_is_ip =
        inet_pton(AF_INET, h->host, addr) == 1 || inet_pton(AF_INET6, h->host, addr) == 1;
    size_t path_len = strcspn(path, "#");
    if (strpbrk(url, " \t\r\n") != NULL || (user_agent && strpbrk(user_agent, "\r\n") != NULL)) {
        snprintf(why, why_len, "the SEQR URL or user agent holds white space");
        return false;
    }
    buf b = BUF_INIT;
    buf_printf(&b, "POST %s%.*s HTTP/1.1\r\nHost: %.*s\r\n", path_len && path[0] == '/' ? "" : "/",
               (int)path_len, path, (int)auth_len, p);
    buf_printf(&b,
               "User-Agent: %s\r\nAccept: text/xml\r\nContent-Type: text/xml; charset=utf-8\r\n"
               "SOAPAction: \"\"\r\nContent-Length: ",
               user_agent ? user_agent : "seqr-gateway");
    h->prefix_len = b.len;
    h->prefix = buf_detach(&b);
    return true;
}

static bool h1_tls_setup(seqr_http1 *h, const char *ca_file, char *why, size_t why_len)
{
    h->ctx = SSL_CTX_new(TLS_client_method());
    if (h->ctx == NULL) {
        snprintf(why, why_len, "cannot set up TLS");
        return false;
    }
    if (SSL_CTX_set_min_proto_version(h->ctx, TLS1_2_VERSION) != 1) {
        snprintf(why, why_len, "cannot require TLS 1.2");
        return false;
    }
    SSL_CTX_set_verify(h->ctx, SSL_VERIFY_PEER, NULL);
    if (ca_file != NULL && ca_file[0] != '\0') {
        if (SSL_CTX_load_verify_locations(h->ctx, ca_file, NULL) != 1) {
            snprintf(why, why_len, "cannot load the CA file %s", ca_file);
            return false;
        }
    } else if (SSL_CTX_set_default_verify_paths(h->ctx) != 1) {
        snprintf(why, why_len, "cannot load the system's CA certificates");
        return false;
    }
    SSL_CTX_set_app_data(h->ctx, h);
    SSL_CTX_set_session_cache_mode(h->ctx,
                                   SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(h->ctx, h1_new_session);
    return true;
}

/* Copies the addresses of res into h (none kept when res is empty). */
static void h1_take_addrs(seqr_http1 *h, const struct addrinfo *res)
{
    int n = 0;
    for (const struct addrinfo *a = res; a != NULL && n < HTTP1_MAX_ADDRS; a = a->ai_next) {
        if (a->ai_addrlen > sizeof h->addrs[n])
            continue;
        memcpy(&h->addrs[n], a->ai_addr, a->ai_addrlen);
        h->addr_lens[n] = a->ai_addrlen;
        n++;
    }
    if (n > 0) {
        h->n_addrs = n;
        h->addr_next = 0;
    }
}

seqr_http1 *seqr_http1_new(const seqr_http1_options *o, seqr_http1_err *err, char *why,
                           size_t why_len)
{
    seqr_http1 *h = calloc(1, sizeof *h);
    *err = SEQR_HTTP1_ERR_CONFIG;
    snprintf(why, why_len, "out of memory");
    if (h == NULL) {
        *err = SEQR_HTTP1_ERR_INTERNAL;
        return NULL;
    }
    h->epfd = o->epoll_fd;
    h->max_conns = o->max_conns > 0 ? o->max_conns : 1;
    h->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 30000;
    h->max_body = o->max_body;
    if (o->url == NULL || !h1_parse_url(h, o->url, o->user_agent, why, why_len))
        goto fail;
    if (h->tls && !h1_tls_setup(h, o->ca_file, why, why_len))
        goto fail;
    h->gai_hints.ai_family = AF_UNSPEC;
    h->gai_hints.ai_socktype = SOCK_STREAM;
    h->gai_hints.ai_flags = AI_NUMERICSERV;
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(h->host, h->port, &h->gai_hints, &res);
    if (rc == 0) {
        h1_take_addrs(h, res);
        freeaddrinfo(res);
    } else {
        /* Not fatal: calls fail until a background resolve succeeds. */
        log_warn("seqr: cannot resolve %s now (%s); trying again in the background", h->host,
                 gai_strerror(rc));
        h->connect_failed = true;
    }
    h->resolved_at = h1_now_us() / 1000;
    *err = SEQR_HTTP1_OK;
    why[0] = '\0';
    return h;

fail:
    seqr_http1_free(h);
    return NULL;
}

/* --- connections --- */

static bool h1_fd_reserve(seqr_http1 *h, int fd)
{
    if ((size_t)fd < h->fd_cap)
        return true;
    size_t cap = h->fd_cap ? h->fd_cap : 256;
    while (cap <= (size_t)fd)
        cap *= 2;
    h1_conn **t = realloc(h->by_fd, cap * sizeof *t);
    if (t == NULL)
        return false;
    memset(t + h->fd_cap, 0, (cap - h->fd_cap) * sizeof *t);
    h->by_fd = t;
    h->fd_cap = cap;
    return true;
}

/* Watches conn for mask; no system call when it already does. */
static bool h1_watch(seqr_http1 *h, h1_conn *conn, uint32_t mask)
{
    if (conn->mask == mask)
        return true;
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = mask;
    ev.data.fd = conn->fd;
    if (epoll_ctl(h->epfd, conn->mask == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, conn->fd, &ev) != 0)
        return false;
    conn->mask = mask;
    return true;
}

static void h1_idle_remove(seqr_http1 *h, h1_conn *conn)
{
    if (conn->idle_prev != NULL)
        conn->idle_prev->idle_next = conn->idle_next;
    else if (h->idle == conn)
        h->idle = conn->idle_next;
    if (conn->idle_next != NULL)
        conn->idle_next->idle_prev = conn->idle_prev;
    conn->idle_prev = conn->idle_next = NULL;
}

static void h1_idle_push(seqr_http1 *h, h1_conn *conn)
{
    conn->state = H1_IDLE;
    conn->idle_prev = NULL;
    conn->idle_next = h->idle;
    if (h->idle != NULL)
        h->idle->idle_prev = conn;
    h->idle = conn;
}

/* Closes a connection (the kernel takes it out of epoll); its call, if any,
 * must have been taken off it first. */
static void h1_conn_close(seqr_http1 *h, h1_conn *conn)
{
    if (conn->state == H1_IDLE)
        h1_idle_remove(h, conn);
    if (conn->ssl != NULL)
        SSL_free(conn->ssl); /* no close_notify: a poll connection just ends */
    if (conn->fd >= 0) {
        if ((size_t)conn->fd < h->fd_cap)
            h->by_fd[conn->fd] = NULL;
        close(conn->fd);
    }
    buf_free(&conn->reader.body);
    free(conn);
    h->n_conns--;
    h->stats.open_conns = h->n_conns;
}

static void h1_list_remove(seqr_http1 *h, seqr_http1_call *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        h->head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    else
        h->tail = c->prev;
    c->prev = c->next = NULL;
}

static void h1_wait_remove(seqr_http1 *h, seqr_http1_call *c)
{
    seqr_http1_call **pp = &h->wait_head;
    seqr_http1_call *last = NULL;
    while (*pp != NULL && *pp != c) {
        last = *pp;
        pp = &(*pp)->next_wait;
    }
    if (*pp == c) {
        *pp = c->next_wait;
        if (h->wait_tail == c)
            h->wait_tail = last;
    }
    c->next_wait = NULL;
    c->waiting = false;
}

/* Ends a call (off its connection, which the caller deals with) and queues
 * it for seqr_http1_done(). */
static void h1_finish(seqr_http1 *h, seqr_http1_call *c, seqr_http1_err err)
{
    if (c->conn != NULL) {
        c->conn->call = NULL;
        c->conn = NULL;
    }
    if (c->waiting)
        h1_wait_remove(h, c);
    h1_list_remove(h, c);
    c->err = err;
    if (err != SEQR_HTTP1_OK && c->detail[0] == '\0')
        h1_detail(c, "%s", seqr_http1_strerror(err));
    c->elapsed_us = h1_now_us() - c->start_us;
    h1_clear_free(c->tls_copy, c->tls_len);
    c->tls_copy = NULL;
    c->next_done = NULL;
    if (h->done_tail != NULL)
        h->done_tail->next_done = c;
    else
        h->done_head = c;
    h->done_tail = c;
}

static void h1_send(seqr_http1 *h, h1_conn *conn);
static void h1_start(seqr_http1 *h, seqr_http1_call *c, bool fresh);

/* Fails conn's call with err and closes conn. */
static void h1_fail(seqr_http1 *h, h1_conn *conn, seqr_http1_err err)
{
    if (conn->call != NULL)
        h1_finish(h, conn->call, err);
    h1_conn_close(h, conn);
}

/* Hands calls waiting for a connection to free ones. */
static void h1_dispatch(seqr_http1 *h)
{
    while (h->wait_head != NULL && (h->idle != NULL || h->n_conns < h->max_conns)) {
        seqr_http1_call *c = h->wait_head;
        h1_wait_remove(h, c);
        h1_start(h, c, c->retried);
    }
}

/* The connection died under its call before any answer byte: a call that
 * went out on a kept connection (which the server may have closed just as
 * we wrote) is sent once more on a new one; otherwise it fails with err. */
static void h1_broke(seqr_http1 *h, h1_conn *conn, seqr_http1_err err)
{
    seqr_http1_call *c = conn->call;
    if (c != NULL && !conn->got_byte && conn->served > 0 && !c->retried) {
        conn->call = NULL;
        c->conn = NULL;
        c->retried = true;
        c->sent = 0;
        h->stats.retries++;
        h1_conn_close(h, conn);
        h1_start(h, c, true);
        return;
    }
    h1_fail(h, conn, err);
    h1_dispatch(h);
}

/* Text of the thread's last OpenSSL error, or fallback. */
static const char *h1_ssl_why(char *out, size_t len, const char *fallback)
{
    unsigned long e = ERR_get_error();
    if (e == 0) {
        snprintf(out, len, "%s", fallback);
        return out;
    }
    ERR_error_string_n(e, out, len);
    return out;
}

static void h1_handshake(seqr_http1 *h, h1_conn *conn)
{
    ERR_clear_error();
    int r = SSL_connect(conn->ssl);
    if (r == 1) {
        if (SSL_session_reused(conn->ssl))
            h->stats.resumed++;
        conn->state = H1_SENDING;
        h1_send(h, conn);
        return;
    }
    int e = SSL_get_error(conn->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        if (!h1_watch(h, conn, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT)) {
            h1_detail(conn->call, "cannot watch the connection: %s", strerror(errno));
            h1_fail(h, conn, SEQR_HTTP1_ERR_INTERNAL);
            h1_dispatch(h);
        }
        return;
    }
    long v = SSL_get_verify_result(conn->ssl);
    if (v != X509_V_OK) {
        h1_detail(conn->call, "TLS certificate of %s not accepted: %s", h->host,
                  X509_verify_cert_error_string(v));
    } else {
        char tmp[160];
        h1_detail(conn->call, "TLS handshake with %s failed: %s", h->host,
                  h1_ssl_why(tmp, sizeof tmp,
                             e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN
                                 ? "the connection ended"
                                 : "no reason given"));
    }
    h->connect_failed = true;
    h1_fail(h, conn, SEQR_HTTP1_ERR_TLS);
    h1_dispatch(h);
}

static void h1_connect(seqr_http1 *h, seqr_http1_call *c);

/* A connect failed: the host's next address is tried for the same call
 * (IPv6 and IPv4 of one name, say) until each was tried once; then the call
 * fails. */
static void h1_connect_failed(seqr_http1 *h, h1_conn *conn)
{
    seqr_http1_call *c = conn->call;
    h->connect_failed = true;
    if (h->n_addrs > 1)
        h->addr_next = (h->addr_next + 1) % h->n_addrs;
    if (c != NULL && c->addr_tries + 1 < h->n_addrs) {
        c->addr_tries++;
        conn->call = NULL;
        c->conn = NULL;
        h1_conn_close(h, conn);
        c->detail[0] = '\0';
        h1_connect(h, c);
        return;
    }
    h1_fail(h, conn, SEQR_HTTP1_ERR_CONNECT);
}

/* The TCP connection is up (or failed): go on with TLS or the request. */
static void h1_connected(seqr_http1 *h, h1_conn *conn)
{
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (getsockopt(conn->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
        soerr = errno;
    if (soerr != 0) {
        h1_detail(conn->call, "connect to %s port %s failed: %s", h->host, h->port,
                  strerror(soerr));
        h1_connect_failed(h, conn);
        h1_dispatch(h);
        return;
    }
    if (!h->tls) {
        conn->state = H1_SENDING;
        h1_send(h, conn);
        return;
    }
    conn->ssl = SSL_new(h->ctx);
    bool ok = conn->ssl != NULL && SSL_set_fd(conn->ssl, conn->fd) == 1;
    if (ok) {
        SSL_set_mode(conn->ssl,
                     SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        if (h->host_is_ip) {
            ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(conn->ssl), h->host) == 1;
        } else {
            ok = SSL_set1_host(conn->ssl, h->host) == 1 &&
                 SSL_set_tlsext_host_name(conn->ssl, h->host) == 1;
        }
    }
    if (ok && h->session != NULL)
        ok = SSL_set_session(conn->ssl, h->session) == 1;
    if (!ok) {
        h1_detail(conn->call, "cannot set up TLS for %s", h->host);
        h1_fail(h, conn, SEQR_HTTP1_ERR_INTERNAL);
        h1_dispatch(h);
        return;
    }
    SSL_set_connect_state(conn->ssl);
    conn->state = H1_HANDSHAKE;
    h1_handshake(h, conn);
}

/* Opens a new connection for c. */
static void h1_connect(seqr_http1 *h, seqr_http1_call *c)
{
    if (h->n_addrs == 0) {
        h1_detail(c, "cannot resolve %s", h->host);
        h->connect_failed = true;
        h1_finish(h, c, SEQR_HTTP1_ERR_RESOLVE);
        return;
    }
    int i = h->addr_next;
    const struct sockaddr *sa = (const struct sockaddr *)&h->addrs[i];
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    h1_conn *conn = NULL;
    if (fd < 0 || !h1_fd_reserve(h, fd) || (conn = calloc(1, sizeof *conn)) == NULL) {
        h1_detail(c, "cannot open a socket: %s", fd < 0 ? strerror(errno) : "out of memory");
        if (fd >= 0)
            close(fd);
        h1_finish(h, c, SEQR_HTTP1_ERR_INTERNAL);
        return;
    }
    int one = 1;
    /* Both only make a poll faster or notice a dead peer: not fatal. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    conn->fd = fd;
    conn->state = H1_CONNECTING;
    reader_init(&conn->reader, h->max_body);
    conn->call = c;
    c->conn = conn;
    h->by_fd[fd] = conn;
    h->n_conns++;
    h->stats.open_conns = h->n_conns;
    h->stats.connects++;
    int rc = connect(fd, sa, h->addr_lens[i]);
    if (rc != 0 && errno != EINPROGRESS) {
        h1_detail(c, "connect to %s port %s failed: %s", h->host, h->port, strerror(errno));
        h1_connect_failed(h, conn);
        return;
    }
    if (!h1_watch(h, conn, EPOLLOUT)) {
        h1_detail(c, "cannot watch the connection: %s", strerror(errno));
        h1_fail(h, conn, SEQR_HTTP1_ERR_INTERNAL);
        return;
    }
    if (rc == 0)
        h1_connected(h, conn);
}

/* Gives c a connection: the most recently used idle one unless fresh, a new
 * one while there are fewer than max_conns, else it waits. */
static void h1_start(seqr_http1 *h, seqr_http1_call *c, bool fresh)
{
    if (!fresh && h->idle != NULL) {
        h1_conn *conn = h->idle;
        h1_idle_remove(h, conn);
        conn->state = H1_SENDING;
        conn->call = c;
        c->conn = conn;
        h->stats.reuses++;
        h1_send(h, conn);
        return;
    }
    if (h->n_conns >= h->max_conns && h->idle != NULL) {
        /* A fresh connection is wanted and all slots are taken: the least
         * recently used idle one makes room. */
        h1_conn *last = h->idle;
        while (last->idle_next != NULL)
            last = last->idle_next;
        h1_conn_close(h, last);
    }
    if (h->n_conns < h->max_conns) {
        h1_connect(h, c);
        return;
    }
    c->waiting = true;
    c->next_wait = NULL;
    if (h->wait_tail != NULL)
        h->wait_tail->next_wait = c;
    else
        h->wait_head = c;
    h->wait_tail = c;
}

seqr_http1_call *seqr_http1_post(seqr_http1 *h, const char *body, size_t body_len, void *user)
{
    seqr_http1_call *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->body = body;
    c->body_len = body_len;
    c->user = user;
    c->start_us = h1_now_us();
    c->deadline_ms = c->start_us / 1000 + h->timeout_ms;
    buf_init(&c->answer);
    /* The Content-Length's value and the end of the head (no printf: once
     * per poll). body_len is at most SEQR_XML_MAX_BYTES in practice. */
    size_t n = text_int(c->tail, (int64_t)body_len);
    c->tail_len = text_append(c->tail, sizeof c->tail, n, "\r\n\r\n");
    c->prev = h->tail;
    if (h->tail != NULL)
        h->tail->next = c;
    else
        h->head = c;
    h->tail = c;
    h1_start(h, c, false);
    return c;
}

/* Writes what is left of the request; on to READING once it is all out. */
static void h1_send(seqr_http1 *h, h1_conn *conn)
{
    seqr_http1_call *c = conn->call;
    conn->got_byte = false;
    if (c->sent == 0)
        reader_reset(&conn->reader);
    size_t total = h->prefix_len + c->tail_len + c->body_len;
    if (h->tls && c->tls_copy == NULL) {
        c->tls_copy = malloc(total);
        if (c->tls_copy == NULL) {
            h1_detail(c, "out of memory");
            h1_fail(h, conn, SEQR_HTTP1_ERR_INTERNAL);
            h1_dispatch(h);
            return;
        }
        c->tls_len = total;
        memcpy(c->tls_copy, h->prefix, h->prefix_len);
        memcpy(c->tls_copy + h->prefix_len, c->tail, c->tail_len);
        memcpy(c->tls_copy + h->prefix_len + c->tail_len, c->body, c->body_len);
    }
    while (c->sent < total) {
        if (h->tls) {
            ERR_clear_error();
            int r = SSL_write(conn->ssl, c->tls_copy + c->sent, (int)(total - c->sent));
            if (r > 0) {
                c->sent += (size_t)r;
                continue;
            }
            int e = SSL_get_error(conn->ssl, r);
            if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
                if (!h1_watch(h, conn, e == SSL_ERROR_WANT_WRITE ? EPOLLOUT : EPOLLIN)) {
                    h1_detail(c, "cannot watch the connection: %s", strerror(errno));
                    h1_fail(h, conn, SEQR_HTTP1_ERR_INTERNAL);
                    h1_dispatch(h);
                }
                return;
            }
            char tmp[160];
            h1_detail(c, "sending to %s failed: %s", h->host,
                      h1_ssl_why(tmp, sizeof tmp, "the connection ended"));
            h1_broke(h, conn, SEQR_HTTP1_ERR_SEND);
            return;
        }
        /* Plain TCP: the three pieces in one system call. */
        struct iovec iov[3];
        const char *piece[3] = {h->prefix, c->tail, c->body};
        size_t len[3] = {h->prefix_len, c->tail_len, c->body_len};
        int n = 0;
        size_t skip = c->sent;
        for (int i = 0; i < 3; i++) {
            if (skip >= len[i]) {
                skip -= len[i];
                continue;
            }
            iov[n].iov_base = (void *)(piece[i] + skip);
            iov[n].iov_len = len[i] - skip;
            skip = 0;
            n++;
        }
        struct msghdr msg;
        memset(&msg, 0, sizeof msg);
        msg.msg_iov = iov;
        msg.msg_iovlen = (size_t)n;
        ssize_t w = sendmsg(conn->fd, &msg, MSG_NOSIGNAL);
        if (w >= 0) {
            c->sent += (size_t)w;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (!h1_watch(h, conn, EPOLLOUT)) {
                h1_detail(c, "cannot watch the connection: %s", strerror(errno));
                h1_fail(h, conn, SEQR_HTTP1_ERR_INTERNAL);
                h1_dispatch(h);
            }
            return;
        }
        h1_detail(c, "sending to %s failed: %s", h->host, strerror(errno));
        h1_broke(h, conn, SEQR_HTTP1_ERR_SEND);
        return;
    }
    conn->state = H1_READING;
    if (!h1_watch(h, conn, EPOLLIN)) {
        h1_detail(c, "cannot watch the connection: %s", strerror(errno));
        h1_fail(h, conn, SEQR_HTTP1_ERR_INTERNAL);
        h1_dispatch(h);
    }
}

/* The answer is complete: hand it over, keep or close the connection. */
static void h1_answered(seqr_http1 *h, h1_conn *conn)
{
    seqr_http1_call *c = conn->call;
    c->http_status = conn->reader.status;
    /* The body moves to the call; the connection starts its next empty. */
    c->answer = conn->reader.body;
    buf_init(&conn->reader.body);
    conn->served++;
    bool keep = seqr_http1_reader_keep_alive(&conn->reader);
    h1_finish(h, c, SEQR_HTTP1_OK);
    if (keep)
        h1_idle_push(h, conn);
    else
        h1_conn_close(h, conn);
    h1_dispatch(h);
}

/* Feeds n bytes (0: end of stream) to the reader. False when conn is gone. */
static bool h1_feed(seqr_http1 *h, h1_conn *conn, const char *data, size_t n)
{
    bool complete = false;
    seqr_http1_err e = seqr_http1_reader_feed(&conn->reader, data, n, &complete);
    if (complete) {
        if (n == 0)
            conn->reader.keep_alive = false;
        h1_answered(h, conn);
        return false;
    }
    if (e == SEQR_HTTP1_OK)
        return true;
    if (e == SEQR_HTTP1_ERR_CLOSED) {
        h1_detail(conn->call, "%s closed the connection %s", h->host,
                  conn->got_byte ? "inside the answer" : "without answering");
        h1_broke(h, conn, e);
        return false;
    }
    if (e == SEQR_HTTP1_ERR_TOO_LARGE)
        h1_detail(conn->call, "answer larger than %zu bytes", h->max_body);
    else
        h1_detail(conn->call, "not an HTTP/1.x answer: %s", reader_why(&conn->reader));
    h1_fail(h, conn, e);
    h1_dispatch(h);
    return false;
}

static void h1_read(seqr_http1 *h, h1_conn *conn)
{
    for (;;) {
        ssize_t n;
        if (h->tls) {
            ERR_clear_error();
            int r = SSL_read(conn->ssl, h->rbuf, sizeof h->rbuf);
            if (r > 0) {
                n = r;
                if (conn->mask != EPOLLIN && !h1_watch(h, conn, EPOLLIN)) {
                    h1_detail(conn->call, "cannot watch the connection: %s", strerror(errno));
                    h1_fail(h, conn, SEQR_HTTP1_ERR_INTERNAL);
                    h1_dispatch(h);
                    return;
                }
            } else {
                int e = SSL_get_error(conn->ssl, r);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                    if (!h1_watch(h, conn,
                                  e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLIN | EPOLLOUT)) {
                        h1_detail(conn->call, "cannot watch the connection: %s", strerror(errno));
                        h1_fail(h, conn, SEQR_HTTP1_ERR_INTERNAL);
                        h1_dispatch(h);
                    }
                    return;
                }
                if (e == SSL_ERROR_ZERO_RETURN ||
                    (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)) {
                    n = 0; /* the peer ended the stream */
                } else {
                    char tmp[160];
                    h1_detail(conn->call, "reading from %s failed: %s", h->host,
                              h1_ssl_why(tmp, sizeof tmp, "TLS error"));
                    h1_broke(h, conn, SEQR_HTTP1_ERR_CLOSED);
                    return;
                }
            }
        } else {
            n = read(conn->fd, h->rbuf, sizeof h->rbuf);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    return;
                h1_detail(conn->call, "reading from %s failed: %s", h->host, strerror(errno));
                h1_broke(h, conn, SEQR_HTTP1_ERR_CLOSED);
                return;
            }
        }
        if (n > 0)
            conn->got_byte = true;
        if (!h1_feed(h, conn, h->rbuf, (size_t)n))
            return;
        if (n == 0)
            return; /* not reached: end of stream always decides */
        /* Plain TCP: a short read took all there was; epoll says when more
         * comes (saves the read that would only say EAGAIN). */
        if (!h->tls && (size_t)n < sizeof h->rbuf)
            return;
    }
}

/* Something happened on an idle connection: the server closed it (or sent
 * what nobody asked for). A TLS 1.3 session ticket is read and kept. */
static void h1_idle_event(seqr_http1 *h, h1_conn *conn, uint32_t events)
{
    if (conn->ssl != NULL && !(events & (EPOLLERR | EPOLLHUP))) {
        ERR_clear_error();
        int r = SSL_read(conn->ssl, h->rbuf, sizeof h->rbuf);
        if (r <= 0 && SSL_get_error(conn->ssl, r) == SSL_ERROR_WANT_READ)
            return;
    }
    h1_conn_close(h, conn);
    h1_dispatch(h);
}

bool seqr_http1_owns(const seqr_http1 *h, int fd)
{
    return h != NULL && fd >= 0 && (size_t)fd < h->fd_cap && h->by_fd[fd] != NULL;
}

void seqr_http1_on_event(seqr_http1 *h, int fd, uint32_t events)
{
    if (!seqr_http1_owns(h, fd))
        return;
    h1_conn *conn = h->by_fd[fd];
    switch (conn->state) {
    case H1_CONNECTING:
        h1_connected(h, conn);
        break;
    case H1_HANDSHAKE:
        h1_handshake(h, conn);
        break;
    case H1_SENDING:
        if (conn->mask == EPOLLIN && !(events & EPOLLIN))
            break;
        h1_send(h, conn);
        break;
    case H1_READING:
        h1_read(h, conn);
        break;
    case H1_IDLE:
        h1_idle_event(h, conn, events);
        break;
    }
}

/* Looks after the background resolve: starts one when due, takes its answer. */
static void h1_resolve_tick(seqr_http1 *h, int64_t now_ms)
{
    if (h->gai_running) {
        int rc = gai_error(&h->gai);
        if (rc == EAI_INPROGRESS)
            return;
        h->gai_running = false;
        h->resolved_at = now_ms;
        if (rc == 0 && h->gai.ar_result != NULL) {
            h1_take_addrs(h, h->gai.ar_result);
            h->stats.resolves++;
        } else {
            log_warn("seqr: cannot resolve %s: %s", h->host, gai_strerror(rc));
        }
        if (h->gai.ar_result != NULL)
            freeaddrinfo(h->gai.ar_result);
        h->gai.ar_result = NULL;
        return;
    }
    int64_t since = now_ms - h->resolved_at;
    if (h->host_is_ip || !(since >= HTTP1_RESOLVE_EVERY_MS ||
                           (h->connect_failed && since >= HTTP1_RESOLVE_RETRY_MS)))
        return;
    memset(&h->gai, 0, sizeof h->gai);
    h->gai.ar_name = h->host;
    h->gai.ar_service = h->port;
    h->gai.ar_request = &h->gai_hints;
    struct gaicb *list[1] = {&h->gai};
    h->connect_failed = false;
    h->resolved_at = now_ms;
    if (getaddrinfo_a(GAI_NOWAIT, list, 1, NULL) == 0)
        h->gai_running = true;
}

void seqr_http1_tick(seqr_http1 *h, int64_t now_ms)
{
    while (h->head != NULL && h->head->deadline_ms <= now_ms) {
        seqr_http1_call *c = h->head;
        h1_conn *conn = c->conn;
        h1_detail(c, "no answer from %s within %ld ms", h->host, h->timeout_ms);
        h1_finish(h, c, SEQR_HTTP1_ERR_TIMEOUT);
        if (conn != NULL)
            h1_conn_close(h, conn);
    }
    h1_dispatch(h);
    h1_resolve_tick(h, now_ms);
}

int64_t seqr_http1_next_due(const seqr_http1 *h)
{
    return h->head != NULL ? h->head->deadline_ms : -1;
}

seqr_http1_call *seqr_http1_done(seqr_http1 *h, seqr_http1_result *out)
{
    seqr_http1_call *c = h->done_head;
    if (c == NULL)
        return NULL;
    h->done_head = c->next_done;
    if (h->done_head == NULL)
        h->done_tail = NULL;
    c->next_done = NULL;
    memset(out, 0, sizeof *out);
    out->err = c->err;
    out->http_status = c->http_status;
    out->body = buf_cstr(&c->answer);
    out->body_len = c->answer.len;
    text_copy(out->detail, sizeof out->detail, c->detail);
    out->elapsed_us = c->elapsed_us;
    out->user = c->user;
    return c;
}

void seqr_http1_call_free(seqr_http1_call *c)
{
    if (c == NULL)
        return;
    h1_clear_free(c->tls_copy, c->tls_len);
    buf_free(&c->answer);
    free(c);
}

void seqr_http1_get_stats(const seqr_http1 *h, seqr_http1_stats *out)
{
    *out = h->stats;
}

void seqr_http1_free(seqr_http1 *h)
{
    if (h == NULL)
        return;
    while (h->head != NULL) {
        seqr_http1_call *c = h->head;
        h1_conn *conn = c->conn;
        h1_finish(h, c, SEQR_HTTP1_ERR_CLOSED);
        if (conn != NULL)
            h1_conn_close(h, conn);
    }
    while (h->done_head != NULL) {
        seqr_http1_call *c = h->done_head;
        h->done_head = c->next_done;
        seqr_http1_call_free(c);
    }
    while (h->idle != NULL)
        h1_conn_close(h, h->idle);
    if (h->gai_running) {
        if (gai_cancel(&h->gai) == EAI_NOTCANCELED) {
            const struct gaicb *list[1] = {&h->gai};
            while (gai_error(&h->gai) == EAI_INPROGRESS)
                gai_suspend(list, 1, NULL);
        }
        if (h->gai.ar_result != NULL)
            freeaddrinfo(h->gai.ar_result);
    }
    if (h->session != NULL)
        SSL_SESSION_free(h->session);
    if (h->ctx != NULL)
        SSL_CTX_free(h->ctx);
    free(h->by_fd);
    free(h->host);
    free(h->prefix);
    free(h);
}

/* --- proxies --- */

/* The value of the first of names that is set and not empty, else NULL. */
static const char *h1_env(const char *const *names, size_t n, const char **which)
{
    for (size_t i = 0; i < n; i++) {
        const char *v = getenv(names[i]);
        if (v != NULL && v[0] != '\0') {
            *which = names[i];
            return v;
        }
    }
    return NULL;
}

/* True when no_proxy (a comma-separated list of host names, domains, or
 * "*") names host. */
static bool h1_no_proxy(const char *list, const char *host)
{
    if (list == NULL)
        return false;
    size_t hl = strlen(host);
    const char *p = list;
    while (*p != '\0') {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, ", ");
        if (n == 0)
            break;
        const char *e = p;
        size_t en = n;
        if (en == 1 && e[0] == '*')
            return true;
        if (e[0] == '.') {
            e++;
            en--;
        }
        /* an entry with a port (host:port) counts for its host */
        const char *colon = memchr(e, ':', en);
        if (colon != NULL && memchr(colon + 1, ':', en - (size_t)(colon + 1 - e)) == NULL)
            en = (size_t)(colon - e);
        if (en > 0 && hl >= en && strncasecmp(host + hl - en, e, en) == 0 &&
            (hl == en || host[hl - en - 1] == '.'))
            return true;
        p += n;
    }
    return false;
}

bool seqr_http1_proxy_applies(const char *url, char *why, size_t why_len)
{
    if (url == NULL)
        return false;
    bool tls = strncasecmp(url, "https://", 8) == 0;
    const char *which = NULL;
    static const char *const https_names[] = {"https_proxy", "HTTPS_PROXY", "all_proxy",
                                              "ALL_PROXY"};
    static const char *const http_names[] = {"http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"};
    const char *v = tls ? h1_env(https_names, 4, &which) : h1_env(http_names, 4, &which);
    if (v == NULL)
        return false;
    const char *p = url + (tls ? 8 : 7);
    char host[256];
    size_t n;
    if (*p == '[') {
        p++;
        n = strcspn(p, "]");
    } else {
        n = strcspn(p, ":/?#");
    }
    if (n >= sizeof host)
        n = sizeof host - 1;
    memcpy(host, p, n);
    host[n] = '\0';
    const char *np = getenv("no_proxy");
    if (np == NULL || np[0] == '\0')
        np = getenv("NO_PROXY");
    if (h1_no_proxy(np, host))
        return false;
    if (why != NULL)
        snprintf(why, why_len, "%s", which);
    return true;
}
