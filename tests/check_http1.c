/* check_http1.c — the poll path's own HTTP/1.1 client (src/seqr/http1.c)
 * against a raw loopback server thread of the test, which answers each
 * request as the test case says (split in single bytes, chunked, ended by
 * closing, after a 100 Continue, ...), and over TLS against the real
 * seqr-sim with a self-signed certificate made with the openssl command
 * (and a small OpenSSL server of the test's own for session resumption).
 * The client runs on an epoll set of the test, as the poller drives it. */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "seqr/http1.h"
#include "seqr/seqr.h"
#include "seqr/xml.h"
#include "testutil.h"

/* --- the scripted server --- */

typedef enum {
    SRV_PLAIN,       /* Content-Length answer, kept alive */
    SRV_ONE_BYTE,    /* the same, one byte per write */
    SRV_CHUNKED,     /* Transfer-Encoding: chunked */
    SRV_CLOSE_DELIM, /* no length: the body ends when the server closes */
    SRV_CONTINUE,    /* 100 Continue, then the answer */
    SRV_CONN_CLOSE,  /* Connection: close, then closes */
    SRV_CLOSE_IDLE,  /* answers kept-alive, then closes the idle connection */
    SRV_FAULT_500,   /* HTTP 500 with a soap:Fault */
    SRV_HUGE,        /* a body over 2 MB */
    SRV_GARBAGE,     /* not HTTP */
    SRV_SILENT,      /* reads the request, never answers */
    SRV_HTTP10       /* an HTTP/1.0 answer with a length */
} srv_mode;

typedef struct {
    int lfd;
    int port;
    srv_mode mode;
    pthread_t thread;
    volatile int stop;
    volatile int accepts;  /* connections accepted */
    volatile int requests; /* complete requests read */
    volatile int idle_closed;
    char last_request[4096];
} srv;

#define BODY "<ok>hello</ok>"

static void srv_write(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

static void srv_puts(int fd, const char *s)
{
    srv_write(fd, s, strlen(s));
}

/* Reads one request (headers and Content-Length body). False at EOF/error. */
static bool srv_read_request(srv *s, int fd)
{
    char req[4096];
    size_t have = 0;
    for (;;) {
        struct pollfd pfd = {fd, POLLIN, 0};
        while (poll(&pfd, 1, 100) == 0)
            if (s->stop)
                return false;
        ssize_t n = recv(fd, req + have, sizeof req - 1 - have, 0);
        if (n <= 0)
            return false;
        have += (size_t)n;
        req[have] = '\0';
        char *end = strstr(req, "\r\n\r\n");
        if (end == NULL)
            continue;
        const char *cl = strstr(req, "Content-Length: ");
        size_t body = cl ? strtoul(cl + 16, NULL, 10) : 0;
        if (have >= (size_t)(end + 4 - req) + body) {
            snprintf(s->last_request, sizeof s->last_request, "%s", req);
            s->requests++;
            return true;
        }
    }
}

/* Answers one request; false when the connection is to be closed. */
static bool srv_answer(srv *s, int fd)
{
    char head[256];
    snprintf(head, sizeof head,
             "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: %zu\r\n\r\n",
             strlen(BODY));
    switch (s->mode) {
    case SRV_PLAIN:
        srv_puts(fd, head);
        srv_puts(fd, BODY);
        return true;
    case SRV_ONE_BYTE: {
        char all[512];
        snprintf(all, sizeof all, "%s%s", head, BODY);
        for (size_t i = 0; all[i] != '\0'; i++) {
            srv_write(fd, all + i, 1);
            usleep(300);
        }
        return true;
    }
    case SRV_CHUNKED:
        srv_puts(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "4\r\n<ok>\r\n");
        usleep(2000);
        srv_puts(fd, "a\r\nhello</ok>\r\n0\r\n\r\n");
        return true;
    case SRV_CLOSE_DELIM:
        srv_puts(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n\r\n<ok>hel");
        usleep(2000);
        srv_puts(fd, "lo</ok>");
        return false;
    case SRV_CONTINUE:
        srv_puts(fd, "HTTP/1.1 100 Continue\r\n\r\n");
        usleep(2000);
        srv_puts(fd, head);
        srv_puts(fd, BODY);
        return true;
    case SRV_CONN_CLOSE:
        srv_puts(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 14\r\n\r\n" BODY);
        return false;
    case SRV_CLOSE_IDLE:
        srv_puts(fd, head);
        srv_puts(fd, BODY);
        return false; /* closed as if its idle timer ran out */
    case SRV_FAULT_500: {
        char *fault = tu_fixture("fault.response.xml", NULL);
        const char *b = fault ? fault
                              : "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/"
                                "envelope/\"><soap:Body><soap:Fault><faultcode>soap:Server"
                                "</faultcode><faultstring>boom</faultstring></soap:Fault>"
                                "</soap:Body></soap:Envelope>";
        char h500[200];
        snprintf(h500, sizeof h500,
                 "HTTP/1.1 500 Internal Server Error\r\nContent-Length: %zu\r\n\r\n", strlen(b));
        srv_puts(fd, h500);
        srv_puts(fd, b);
        free(fault);
        return true;
    }
    case SRV_HUGE: {
        size_t n = 3 * 1024 * 1024;
        char h[128];
        snprintf(h, sizeof h, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", n);
        srv_puts(fd, h);
        char *big = malloc(n);
        ck_assert_ptr_nonnull(big);
        memset(big, 'x', n);
        srv_write(fd, big, n);
        free(big);
        return false;
    }
    case SRV_GARBAGE:
        srv_puts(fd, "HELLO THERE\r\n\r\n");
        return true;
    case SRV_SILENT:
        while (!s->stop)
            usleep(10000);
        return false;
    case SRV_HTTP10:
        srv_puts(fd, "HTTP/1.0 200 OK\r\nContent-Length: 14\r\n\r\n" BODY);
        return false;
    }
    return false;
}

static void *srv_main(void *arg)
{
    srv *s = arg;
    while (!s->stop) {
        struct pollfd pfd = {s->lfd, POLLIN, 0};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        s->accepts++;
        while (!s->stop && srv_read_request(s, fd) && srv_answer(s, fd)) {
        }
        if (s->mode == SRV_CLOSE_IDLE) {
            /* Let the client see the whole answer before the end. */
            usleep(20000);
            s->idle_closed++;
        }
        close(fd);
    }
    return NULL;
}

static void srv_start(srv *s, srv_mode mode)
{
    memset(s, 0, sizeof *s);
    s->mode = mode;
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(s->lfd, 0);
    int one = 1;
    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    ck_assert_int_eq(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
    s->port = ntohs(a.sin_port);
    ck_assert_int_eq(listen(s->lfd, 16), 0);
    ck_assert_int_eq(pthread_create(&s->thread, NULL, srv_main, s), 0);
}

static void srv_stop(srv *s)
{
    s->stop = 1;
    pthread_join(s->thread, NULL);
    close(s->lfd);
}

/* --- driving the client --- */

typedef struct {
    int epfd;
    seqr_http1 *h;
} cli;

static void cli_open(cli *c, const char *url, const char *ca_file, long timeout_ms)
{
    c->epfd = epoll_create1(EPOLL_CLOEXEC);
    ck_assert_int_ge(c->epfd, 0);
    seqr_http1_options o = {
        .url = url,
        .ca_file = ca_file,
        .user_agent = "check_http1",
        .epoll_fd = c->epfd,
        .max_conns = 4,
        .timeout_ms = timeout_ms,
        .max_body = SEQR_XML_MAX_BYTES,
    };
    seqr_http1_err err;
    char why[256];
    c->h = seqr_http1_new(&o, &err, why, sizeof why);
    ck_assert_msg(c->h != NULL, "seqr_http1_new: %s", why);
}

static void cli_close(cli *c)
{
    seqr_http1_free(c->h);
    close(c->epfd);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs the event loop until a call finishes (bounded by 15 s). */
static seqr_http1_call *cli_wait(cli *c, seqr_http1_result *r)
{
    int64_t until = mono_ms() + 15000;
    for (;;) {
        seqr_http1_call *call = seqr_http1_done(c->h, r);
        if (call != NULL)
            return call;
        ck_assert_msg(mono_ms() < until, "no call finished within 15 s");
        struct epoll_event ev[16];
        int n = epoll_wait(c->epfd, ev, 16, 50);
        for (int i = 0; i < n; i++)
            seqr_http1_on_event(c->h, ev[i].data.fd, ev[i].events);
        seqr_http1_tick(c->h, mono_ms());
    }
}

static const char *REQUEST = "<Envelope>get it</Envelope>";

/* Posts REQUEST, waits, and returns the result's error; *r filled (its body
 * copied into body). */
static seqr_http1_err cli_call(cli *c, seqr_http1_result *r, char *body, size_t body_len)
{
    ck_assert_ptr_nonnull(seqr_http1_post(c->h, REQUEST, strlen(REQUEST), NULL));
    seqr_http1_call *call = cli_wait(c, r);
    if (body != NULL)
        snprintf(body, body_len, "%s", r->body);
    seqr_http1_err e = r->err;
    r->body = NULL;
    seqr_http1_call_free(call);
    return e;
}

static void url_of(char *out, size_t n, const srv *s)
{
    snprintf(out, n, "http://127.0.0.1:%d/soap", s->port);
}

/* One server mode, one call: the body is BODY and the status 200. */
static void expect_plain_answer(srv_mode mode, int calls)
{
    srv s;
    srv_start(&s, mode);
    char url[128];
    url_of(url, sizeof url, &s);
    cli c;
    cli_open(&c, url, NULL, 5000);
    for (int i = 0; i < calls; i++) {
        seqr_http1_result r;
        char body[256];
        seqr_http1_err e = cli_call(&c, &r, body, sizeof body);
        ck_assert_msg(e == SEQR_HTTP1_OK, "call %d: %s (%s)", i, seqr_http1_strerror(e), r.detail);
        ck_assert_int_eq(r.http_status, 200);
        ck_assert_str_eq(body, BODY);
    }
    ck_assert_ptr_nonnull(strstr(s.last_request, "POST /soap HTTP/1.1\r\n"));
    ck_assert_ptr_nonnull(strstr(s.last_request, "Content-Length: 27\r\n"));
    ck_assert_ptr_nonnull(strstr(s.last_request, REQUEST));
    cli_close(&c);
    srv_stop(&s);
}

START_TEST(kept_alive_calls_share_one_connection)
{
    srv s;
    srv_start(&s, SRV_PLAIN);
    char url[128];
    url_of(url, sizeof url, &s);
    cli c;
    cli_open(&c, url, NULL, 5000);
    for (int i = 0; i < 5; i++) {
        seqr_http1_result r;
        ck_assert_int_eq(cli_call(&c, &r, NULL, 0), SEQR_HTTP1_OK);
    }
    seqr_http1_stats st;
    seqr_http1_get_stats(c.h, &st);
    ck_assert_int_eq(st.connects, 1);
    ck_assert_int_eq(st.reuses, 4);
    ck_assert_int_eq(s.accepts, 1);
    cli_close(&c);
    srv_stop(&s);
}
END_TEST

START_TEST(answer_split_one_byte_per_read)
{
    expect_plain_answer(SRV_ONE_BYTE, 2);
}
END_TEST

START_TEST(chunked_answer)
{
    expect_plain_answer(SRV_CHUNKED, 2);
}
END_TEST

START_TEST(close_delimited_answer)
{
    expect_plain_answer(SRV_CLOSE_DELIM, 2);
}
END_TEST

START_TEST(continue_100_before_the_answer)
{
    expect_plain_answer(SRV_CONTINUE, 2);
}
END_TEST

START_TEST(http10_answer)
{
    expect_plain_answer(SRV_HTTP10, 2);
}
END_TEST

START_TEST(connection_close_then_a_new_connection)
{
    srv s;
    srv_start(&s, SRV_CONN_CLOSE);
    char url[128];
    url_of(url, sizeof url, &s);
    cli c;
    cli_open(&c, url, NULL, 5000);
    for (int i = 0; i < 2; i++) {
        seqr_http1_result r;
        char body[64];
        ck_assert_int_eq(cli_call(&c, &r, body, sizeof body), SEQR_HTTP1_OK);
        ck_assert_str_eq(body, BODY);
    }
    seqr_http1_stats st;
    seqr_http1_get_stats(c.h, &st);
    ck_assert_int_eq(st.connects, 2);
    ck_assert_int_eq(st.reuses, 0);
    ck_assert_int_eq(st.retries, 0);
    ck_assert_int_eq(s.accepts, 2);
    cli_close(&c);
    srv_stop(&s);
}
END_TEST

START_TEST(idle_connection_closed_by_server_is_retried_transparently)
{
    srv s;
    srv_start(&s, SRV_CLOSE_IDLE);
    char url[128];
    url_of(url, sizeof url, &s);
    cli c;
    cli_open(&c, url, NULL, 5000);
    seqr_http1_result r;
    ck_assert_int_eq(cli_call(&c, &r, NULL, 0), SEQR_HTTP1_OK);
    /* The server closes the kept connection; the client has not looked
     * (no event loop ran), so the next call is written on it. */
    int64_t until = mono_ms() + 5000;
    while (s.idle_closed < 1 && mono_ms() < until)
        usleep(1000);
    ck_assert_int_eq(s.idle_closed, 1);
    char body[64];
    seqr_http1_err e = cli_call(&c, &r, body, sizeof body);
    ck_assert_msg(e == SEQR_HTTP1_OK, "%s (%s)", seqr_http1_strerror(e), r.detail);
    ck_assert_str_eq(body, BODY);
    seqr_http1_stats st;
    seqr_http1_get_stats(c.h, &st);
    ck_assert_int_eq(st.retries, 1);
    ck_assert_int_eq(st.connects, 2);
    cli_close(&c);
    srv_stop(&s);
}
END_TEST

START_TEST(idle_connection_closed_by_server_is_dropped_on_its_event)
{
    srv s;
    srv_start(&s, SRV_CLOSE_IDLE);
    char url[128];
    url_of(url, sizeof url, &s);
    cli c;
    cli_open(&c, url, NULL, 5000);
    seqr_http1_result r;
    ck_assert_int_eq(cli_call(&c, &r, NULL, 0), SEQR_HTTP1_OK);
    /* This time the loop runs: the close is seen on the idle connection. */
    seqr_http1_stats st;
    int64_t until = mono_ms() + 5000;
    do {
        struct epoll_event ev[4];
        int n = epoll_wait(c.epfd, ev, 4, 50);
        for (int i = 0; i < n; i++)
            seqr_http1_on_event(c.h, ev[i].data.fd, ev[i].events);
        seqr_http1_get_stats(c.h, &st);
    } while (st.open_conns > 0 && mono_ms() < until);
    ck_assert_int_eq(st.open_conns, 0);
    ck_assert_int_eq(cli_call(&c, &r, NULL, 0), SEQR_HTTP1_OK);
    seqr_http1_get_stats(c.h, &st);
    ck_assert_int_eq(st.retries, 0);
    cli_close(&c);
    srv_stop(&s);
}
END_TEST

START_TEST(http_500_with_soap_fault)
{
    srv s;
    srv_start(&s, SRV_FAULT_500);
    char url[128];
    url_of(url, sizeof url, &s);
    cli c;
    cli_open(&c, url, NULL, 5000);
    ck_assert_ptr_nonnull(seqr_http1_post(c.h, REQUEST, strlen(REQUEST), NULL));
    seqr_http1_result r;
    seqr_http1_call *call = cli_wait(&c, &r);
    ck_assert_int_eq(r.err, SEQR_HTTP1_OK);
    ck_assert_int_eq(r.http_status, 500);
    /* The answer handling shared with libcurl: a SOAP fault. */
    seqr_payment_status ps;
    seqr_result res;
    ck_assert_int_eq(seqr_status_finish_http1(NULL, NULL, &r, &ps, &res), SEQR_ERR_FAULT);
    ck_assert_int_eq(res.http_status, 500);
    ck_assert_str_ne(res.fault_string, "");
    seqr_http1_call_free(call);
    cli_close(&c);
    srv_stop(&s);
}
END_TEST

/* A mode whose single call fails with want (and maps to seqr_want). */
static void expect_failure(srv_mode mode, long timeout_ms, seqr_http1_err want, seqr_err seqr_want)
{
    srv s;
    srv_start(&s, mode);
    char url[128];
    url_of(url, sizeof url, &s);
    cli c;
    cli_open(&c, url, NULL, timeout_ms);
    ck_assert_ptr_nonnull(seqr_http1_post(c.h, REQUEST, strlen(REQUEST), NULL));
    seqr_http1_result r;
    seqr_http1_call *call = cli_wait(&c, &r);
    ck_assert_msg(r.err == want, "got %s (%s)", seqr_http1_strerror(r.err), r.detail);
    ck_assert_str_ne(r.detail, "");
    seqr_payment_status ps;
    seqr_result res;
    ck_assert_int_eq(seqr_status_finish_http1(NULL, NULL, &r, &ps, &res), seqr_want);
    ck_assert_str_ne(res.message, "");
    ck_assert_ptr_null(strstr(res.message, REQUEST)); /* request bytes never shown */
    seqr_http1_call_free(call);
    seqr_http1_stats st;
    seqr_http1_get_stats(c.h, &st);
    ck_assert_int_eq(st.open_conns, 0); /* a failed call's connection is closed */
    cli_close(&c);
    srv_stop(&s);
}

START_TEST(body_over_2mb_is_refused)
{
    expect_failure(SRV_HUGE, 10000, SEQR_HTTP1_ERR_TOO_LARGE, SEQR_ERR_BAD_ANSWER);
}
END_TEST

START_TEST(garbage_status_line)
{
    expect_failure(SRV_GARBAGE, 5000, SEQR_HTTP1_ERR_MALFORMED, SEQR_ERR_BAD_ANSWER);
}
END_TEST

START_TEST(no_answer_times_out)
{
    expect_failure(SRV_SILENT, 300, SEQR_HTTP1_ERR_TIMEOUT, SEQR_ERR_TIMEOUT);
}
END_TEST

START_TEST(refused_connect)
{
    int port = tu_free_port(); /* nothing listens there */
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/soap", port);
    cli c;
    cli_open(&c, url, NULL, 5000);
    seqr_http1_result r;
    ck_assert_ptr_nonnull(seqr_http1_post(c.h, REQUEST, strlen(REQUEST), NULL));
    seqr_http1_call *call = cli_wait(&c, &r);
    ck_assert_int_eq(r.err, SEQR_HTTP1_ERR_CONNECT);
    ck_assert_ptr_nonnull(strstr(r.detail, "refused"));
    seqr_payment_status ps;
    seqr_result res;
    ck_assert_int_eq(seqr_status_finish_http1(NULL, NULL, &r, &ps, &res), SEQR_ERR_CONNECT);
    seqr_http1_call_free(call);
    cli_close(&c);
}
END_TEST

START_TEST(host_name_with_an_address_nobody_listens_on)
{
    /* localhost is often ::1 first, while the server listens on 127.0.0.1
     * only: the call goes on to the next address instead of failing. */
    srv s;
    srv_start(&s, SRV_PLAIN);
    char url[128];
    snprintf(url, sizeof url, "http://localhost:%d/soap", s.port);
    cli c;
    cli_open(&c, url, NULL, 5000);
    for (int i = 0; i < 2; i++) {
        seqr_http1_result r;
        seqr_http1_err e = cli_call(&c, &r, NULL, 0);
        ck_assert_msg(e == SEQR_HTTP1_OK, "%s (%s)", seqr_http1_strerror(e), r.detail);
    }
    cli_close(&c);
    srv_stop(&s);
}
END_TEST

START_TEST(reader_in_every_split)
{
    const char *answer = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: "
                         "chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    size_t n = strlen(answer);
    for (size_t cut = 1; cut <= n; cut++) { /* 0 bytes would mean the end */
        seqr_http1_reader *r = seqr_http1_reader_new(1024);
        ck_assert_ptr_nonnull(r);
        bool done = false;
        ck_assert_int_eq(seqr_http1_reader_feed(r, answer, cut, &done), SEQR_HTTP1_OK);
        if (!done && cut < n)
            ck_assert_int_eq(seqr_http1_reader_feed(r, answer + cut, n - cut, &done),
                             SEQR_HTTP1_OK);
        ck_assert(done);
        ck_assert_int_eq(seqr_http1_reader_status(r), 200);
        size_t len;
        ck_assert_str_eq(seqr_http1_reader_body(r, &len), "hello");
        ck_assert(seqr_http1_reader_keep_alive(r));
        seqr_http1_reader_free(r);
    }
}
END_TEST

START_TEST(proxy_variables_decide)
{
    const char *vars[] = {"https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY",
                          "all_proxy",   "ALL_PROXY",   "no_proxy",   "NO_PROXY"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        unsetenv(vars[i]);
    char why[64];
    ck_assert(!seqr_http1_proxy_applies("https://extdev.seqr.com/soap", why, sizeof why));
    setenv("HTTPS_PROXY", "http://proxy:3128", 1);
    ck_assert(seqr_http1_proxy_applies("https://extdev.seqr.com/soap", why, sizeof why));
    ck_assert_str_eq(why, "HTTPS_PROXY");
    ck_assert(!seqr_http1_proxy_applies("http://127.0.0.1:8000/soap", why, sizeof why));
    setenv("no_proxy", "localhost,.seqr.com", 1);
    ck_assert(!seqr_http1_proxy_applies("https://extdev.seqr.com/soap", why, sizeof why));
    ck_assert(seqr_http1_proxy_applies("https://notseqr.com/soap", why, sizeof why));
    setenv("no_proxy", "*", 1);
    ck_assert(!seqr_http1_proxy_applies("https://notseqr.com/soap", why, sizeof why));
    unsetenv("no_proxy");
    setenv("all_proxy", "socks5://p:1080", 1);
    ck_assert(seqr_http1_proxy_applies("http://127.0.0.1:8000/soap", why, sizeof why));
    ck_assert_str_eq(why, "all_proxy");
}
END_TEST

/* --- TLS against seqr-sim --- */

typedef struct {
    char dir[512];
    char cert[700], key[700];
    int port;
    tu_proc sim;
} tls_sim;

/* seqr-sim over TLS with a self-signed certificate whose only name is san. */
static void tls_sim_start(tls_sim *t, const char *san)
{
    memset(t, 0, sizeof *t);
    char *d = tu_tempdir();
    ck_assert_ptr_nonnull(d);
    snprintf(t->dir, sizeof t->dir, "%s", d);
    free(d);
    snprintf(t->cert, sizeof t->cert, "%s/sim.crt", t->dir);
    snprintf(t->key, sizeof t->key, "%s/sim.key", t->dir);
    char cmd[2400];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout '%s' -out '%s' -days 2 "
             "-subj /CN=seqr-test -addext subjectAltName=%s >/dev/null 2>&1",
             t->key, t->cert, san);
    ck_assert_msg(system(cmd) == 0, "openssl could not make a test certificate");
    t->port = tu_free_port();
    char port[16], log[760];
    snprintf(port, sizeof port, "%d", t->port);
    snprintf(log, sizeof log, "%s/sim.log", t->dir);
    char *argv[] = {(char *)tu_env("SEQR_SIM_BIN", "src/seqr-sim"),
                    "--port",
                    port,
                    "--tls-cert",
                    t->cert,
                    "--tls-key",
                    t->key,
                    NULL};
    ck_assert(tu_spawn(&t->sim, argv, log));
    ck_assert_msg(tu_wait_port(t->port, 10000), "seqr-sim did not start");
}

static void tls_sim_stop(tls_sim *t)
{
    tu_stop(&t->sim, SIGTERM, 5000);
}

/* One call to the simulator's SOAP endpoint; its answer is HTTP (a fault
 * for this request is fine: the transport is what is tested). */
static seqr_http1_err tls_call(const tls_sim *t, const char *host, bool with_ca, char *detail,
                               int calls)
{
    char url[128];
    snprintf(url, sizeof url, "https://%s:%d/soap", host, t->port);
    cli c;
    cli_open(&c, url, with_ca ? t->cert : NULL, 5000);
    seqr_http1_err e = SEQR_HTTP1_OK;
    for (int i = 0; i < calls && e == SEQR_HTTP1_OK; i++) {
        seqr_http1_result r;
        e = cli_call(&c, &r, NULL, 0);
        snprintf(detail, 200, "%s", r.detail);
        if (e == SEQR_HTTP1_OK)
            ck_assert_int_ne(r.http_status, 0);
    }
    if (e == SEQR_HTTP1_OK && calls > 1) {
        seqr_http1_stats st;
        seqr_http1_get_stats(c.h, &st);
        ck_assert_int_eq(st.connects, 1);
    }
    cli_close(&c);
    return e;
}

START_TEST(tls_with_ca_file_works)
{
    tls_sim t;
    tls_sim_start(&t, "IP:127.0.0.1");
    char detail[200];
    seqr_http1_err e = tls_call(&t, "127.0.0.1", true, detail, 3);
    ck_assert_msg(e == SEQR_HTTP1_OK, "%s", detail);
    tls_sim_stop(&t);
}
END_TEST

/* A small TLS server of the test (OpenSSL, which issues session tickets,
 * unlike seqr-sim's TLS): one thread per connection, kept-alive answers. */
typedef struct {
    int lfd, port;
    SSL_CTX *ctx;
    pthread_t thread;
    pthread_t conn_threads[8];
    int n_conns;
    volatile int stop;
    volatile int resumed; /* handshakes that resumed a session */
} tls_srv;

typedef struct {
    tls_srv *s;
    int fd;
} tls_conn_arg;

static void *tls_srv_conn(void *arg)
{
    tls_conn_arg a = *(tls_conn_arg *)arg;
    free(arg);
    SSL *ssl = SSL_new(a.s->ctx);
    SSL_set_fd(ssl, a.fd);
    if (SSL_accept(ssl) == 1) {
        if (SSL_session_reused(ssl))
            a.s->resumed++;
        char req[4096];
        size_t have = 0;
        while (!a.s->stop) {
            struct pollfd pfd = {a.fd, POLLIN, 0};
            if (SSL_pending(ssl) == 0 && poll(&pfd, 1, 100) == 0)
                continue;
            int n = SSL_read(ssl, req + have, (int)(sizeof req - 1 - have));
            if (n <= 0)
                break;
            have += (size_t)n;
            req[have] = '\0';
            char *end = strstr(req, "\r\n\r\n");
            const char *cl = strstr(req, "Content-Length: ");
            if (end == NULL || cl == NULL ||
                have < (size_t)(end + 4 - req) + strtoul(cl + 16, NULL, 10))
                continue;
            have = 0;
            const char *answer = "HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\n" BODY;
            if (SSL_write(ssl, answer, (int)strlen(answer)) <= 0)
                break;
        }
    }
    SSL_free(ssl);
    close(a.fd);
    return NULL;
}

static void *tls_srv_main(void *arg)
{
    tls_srv *s = arg;
    while (!s->stop) {
        struct pollfd pfd = {s->lfd, POLLIN, 0};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0 || s->n_conns == 8) {
            if (fd >= 0)
                close(fd);
            continue;
        }
        tls_conn_arg *a = malloc(sizeof *a);
        ck_assert_ptr_nonnull(a);
        a->s = s;
        a->fd = fd;
        ck_assert_int_eq(pthread_create(&s->conn_threads[s->n_conns++], NULL, tls_srv_conn, a), 0);
    }
    for (int i = 0; i < s->n_conns; i++)
        pthread_join(s->conn_threads[i], NULL);
    return NULL;
}

START_TEST(tls_session_resumed_on_a_new_connection)
{
    tls_sim t; /* for its certificate only */
    tls_sim_start(&t, "IP:127.0.0.1");
    tls_sim_stop(&t);
    tls_srv s;
    memset(&s, 0, sizeof s);
    s.ctx = SSL_CTX_new(TLS_server_method());
    ck_assert_ptr_nonnull(s.ctx);
    ck_assert_int_eq(SSL_CTX_use_certificate_file(s.ctx, t.cert, SSL_FILETYPE_PEM), 1);
    ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(s.ctx, t.key, SSL_FILETYPE_PEM), 1);
    s.lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(s.lfd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    ck_assert_int_eq(getsockname(s.lfd, (struct sockaddr *)&a, &al), 0);
    s.port = ntohs(a.sin_port);
    ck_assert_int_eq(listen(s.lfd, 16), 0);
    ck_assert_int_eq(pthread_create(&s.thread, NULL, tls_srv_main, &s), 0);

    char url[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/soap", s.port);
    cli c;
    cli_open(&c, url, t.cert, 5000);
    seqr_http1_result r;
    char body[64];
    ck_assert_int_eq(cli_call(&c, &r, body, sizeof body), SEQR_HTTP1_OK);
    ck_assert_str_eq(body, BODY);
    /* Two at once: one takes the kept connection, the other opens a new one
     * with the session the first connection got. */
    ck_assert_ptr_nonnull(seqr_http1_post(c.h, REQUEST, strlen(REQUEST), NULL));
    ck_assert_ptr_nonnull(seqr_http1_post(c.h, REQUEST, strlen(REQUEST), NULL));
    for (int i = 0; i < 2; i++) {
        seqr_http1_call *call = cli_wait(&c, &r);
        ck_assert_msg(r.err == SEQR_HTTP1_OK, "%s", r.detail);
        seqr_http1_call_free(call);
    }
    seqr_http1_stats st;
    seqr_http1_get_stats(c.h, &st);
    ck_assert_int_eq(st.connects, 2);
    ck_assert_int_eq(st.resumed, 1);
    ck_assert_int_eq(s.resumed, 1);
    cli_close(&c);
    s.stop = 1;
    pthread_join(s.thread, NULL);
    close(s.lfd);
    SSL_CTX_free(s.ctx);
}
END_TEST

START_TEST(tls_without_the_ca_is_refused)
{
    tls_sim t;
    tls_sim_start(&t, "IP:127.0.0.1");
    char detail[200];
    ck_assert_int_eq(tls_call(&t, "127.0.0.1", false, detail, 1), SEQR_HTTP1_ERR_TLS);
    ck_assert_msg(strstr(detail, "certificate") != NULL, "%s", detail);
    tls_sim_stop(&t);
}
END_TEST

START_TEST(tls_wrong_host_name_is_refused)
{
    tls_sim t;
    tls_sim_start(&t, "DNS:other.example");
    char detail[200];
    ck_assert_int_eq(tls_call(&t, "127.0.0.1", true, detail, 1), SEQR_HTTP1_ERR_TLS);
    ck_assert_msg(strstr(detail, "mismatch") != NULL, "%s", detail);
    tls_sim_stop(&t);
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    Suite *s = suite_create("http1");
    TCase *plain = tcase_create("plain");
    tcase_add_test(plain, kept_alive_calls_share_one_connection);
    tcase_add_test(plain, answer_split_one_byte_per_read);
    tcase_add_test(plain, chunked_answer);
    tcase_add_test(plain, close_delimited_answer);
    tcase_add_test(plain, continue_100_before_the_answer);
    tcase_add_test(plain, http10_answer);
    tcase_add_test(plain, connection_close_then_a_new_connection);
    tcase_add_test(plain, idle_connection_closed_by_server_is_retried_transparently);
    tcase_add_test(plain, idle_connection_closed_by_server_is_dropped_on_its_event);
    tcase_add_test(plain, http_500_with_soap_fault);
    tcase_add_test(plain, body_over_2mb_is_refused);
    tcase_add_test(plain, garbage_status_line);
    tcase_add_test(plain, no_answer_times_out);
    tcase_add_test(plain, refused_connect);
    tcase_add_test(plain, host_name_with_an_address_nobody_listens_on);
    tcase_add_test(plain, reader_in_every_split);
    tcase_add_test(plain, proxy_variables_decide);
    suite_add_tcase(s, plain);
    TCase *tls = tcase_create("tls");
    tcase_add_test(tls, tls_with_ca_file_works);
    tcase_add_test(tls, tls_session_resumed_on_a_new_connection);
    tcase_add_test(tls, tls_without_the_ca_is_refused);
    tcase_add_test(tls, tls_wrong_host_name_is_refused);
    suite_add_tcase(s, tls);
    return tu_run_suite(s);
}
