/* pollfloor.c — the least a getPaymentStatus poll costs on this stack, as a
 * program: libcurl's multi socket API on epoll, N calls in flight over
 * kept-alive connections to the simulator, until R answers have come back.
 * Prints one line of JSON with the client's CPU per call (user + sys) and
 * the latency the calls took (p50, p99: from adding the call to the multi
 * handle to its answer, as the caller sees it).
 *
 *   pollfloor --url URL --body-file ENVELOPE.xml [--in-flight 400]
 *             [--requests 40000] [--xml | --raw] [--ca-file CA.pem]
 *
 * Without --xml each call POSTs the same prebuilt envelope and throws the
 * answer away: what libcurl and the kernel cost. With --xml each call also
 * builds its envelope with libxml2's tree API and parses the answer into a
 * tree, as any poller that follows the project's rules must. With an
 * https URL (seqr-sim --tls-cert) the same over TLS, verified against
 * --ca-file. bench/run
 * prints both beside the gateway's own CPU per poll.
 *
 * With --raw (http only) the calls go without libcurl: one plain HTTP/1.1
 * keep-alive connection per call in flight on epoll, the prebuilt request
 * written whole and the answer read to its Content-Length. That client costs
 * a fraction of libcurl's CPU, so it measures what the simulator can answer
 * (its capacity) rather than what one libcurl thread can ask on a shared
 * machine. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "benchutil.h"

typedef struct {
    CURL *easy;
    bench_buf answer;
    xmlChar *built;    /* --xml: this call's envelope */
    double started_ms; /* when this call was handed to libcurl */
} floor_slot;

typedef struct {
    CURLM *multi;
    int epoll_fd;
    long timer_ms; /* -1: none */
} floor_loop;

static int floor_socket_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)e;
    floor_loop *l = userp;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(l->epoll_fd, EPOLL_CTL_DEL, s, NULL);
        return 0;
    }
    struct epoll_event ev = {0};
    ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
    ev.data.fd = s;
    if (epoll_ctl(l->epoll_fd, socketp ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, s, &ev) != 0)
        epoll_ctl(l->epoll_fd, socketp ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, s, &ev);
    curl_multi_assign(l->multi, s, l);
    return 0;
}

static int floor_timer_cb(CURLM *m, long timeout_ms, void *userp)
{
    (void)m;
    ((floor_loop *)userp)->timer_ms = timeout_ms;
    return 0;
}

static double floor_cpu_s(void)
{
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return (double)(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
           (double)(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

/* --xml: the envelope of one call, built as the gateway builds it. */
static xmlChar *floor_build(long seq, int *len)
{
    xmlDocPtr doc = xmlNewDoc(BAD_CAST "1.0");
    xmlNodePtr env = xmlNewNode(NULL, BAD_CAST "Envelope");
    xmlDocSetRootElement(doc, env);
    xmlNsPtr soap =
        xmlNewNs(env, BAD_CAST "http://schemas.xmlsoap.org/soap/envelope/", BAD_CAST "soapenv");
    xmlSetNs(env, soap);
    xmlNodePtr body = xmlNewChild(env, soap, BAD_CAST "Body", NULL);
    xmlNodePtr op = xmlNewChild(body, NULL, BAD_CAST "getPaymentStatus", NULL);
    xmlSetNs(op,
             xmlNewNs(op, BAD_CAST "http://external.interfaces.ers.seamless.com/", BAD_CAST "ext"));
    xmlNodePtr ctx = xmlNewChild(op, NULL, BAD_CAST "context", NULL);
    xmlNewTextChild(ctx, NULL, BAD_CAST "channel", BAD_CAST "WS");
    xmlNewTextChild(ctx, NULL, BAD_CAST "clientId", BAD_CAST "Company Name");
    xmlNewTextChild(ctx, NULL, BAD_CAST "clientReference", BAD_CAST "seqr-gateway 0.1.0");
    xmlNewTextChild(ctx, NULL, BAD_CAST "clientRequestTimeout", BAD_CAST "0");
    xmlNodePtr pid = xmlNewChild(ctx, NULL, BAD_CAST "initiatorPrincipalId", NULL);
    xmlNewTextChild(pid, NULL, BAD_CAST "id", BAD_CAST "seqr-sim-terminal");
    xmlNewTextChild(pid, NULL, BAD_CAST "type", BAD_CAST "TERMINALID");
    xmlNewTextChild(ctx, NULL, BAD_CAST "password", BAD_CAST "terminal-password");
    char ref[32];
    snprintf(ref, sizeof ref, "%ld", 1000000 + seq % 1000);
    xmlNewTextChild(op, NULL, BAD_CAST "invoiceReference", BAD_CAST ref);
    xmlNewTextChild(op, NULL, BAD_CAST "invoiceVersion", BAD_CAST "0");
    xmlChar *mem = NULL;
    xmlDocDumpMemoryEnc(doc, &mem, len, "UTF-8");
    xmlFreeDoc(doc);
    return mem;
}

static const char *floor_ca_file;

static bool floor_start(floor_slot *s, const char *url, const char *body, long body_len,
                        struct curl_slist *headers, bool xml, long seq)
{
    s->answer.len = 0;
    if (xml) {
        int len = 0;
        xmlFree(s->built);
        s->built = floor_build(seq, &len);
        body = (const char *)s->built;
        body_len = len;
    }
    curl_easy_setopt(s->easy, CURLOPT_URL, url);
    curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE, body_len);
    curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, bench_collect);
    curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, &s->answer);
    curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s);
    curl_easy_setopt(s->easy, CURLOPT_NOSIGNAL, 1L);
    if (floor_ca_file != NULL)
        curl_easy_setopt(s->easy, CURLOPT_CAINFO, floor_ca_file);
    s->started_ms = bench_now_ms();
    return true;
}

/* --raw: one kept connection and the call on it. */
typedef struct {
    int fd;
    size_t sent;  /* bytes of the request written so far */
    bench_buf in; /* the answer so far */
    double started_ms;
    bool want_out; /* registered for EPOLLOUT (the request did not fit) */
} raw_conn;

typedef struct {
    const char *request; /* the whole HTTP request, prebuilt */
    size_t request_len;
    struct addrinfo *ai;
    int epoll_fd;
    long started, done, errors, requests;
    double *took;
} raw_run;

/* A new connection to r->ai for c, registered for reading; false on error. */
static bool raw_connect(raw_run *r, raw_conn *c)
{
    c->want_out = false;
    c->fd = socket(r->ai->ai_family, SOCK_STREAM, 0);
    if (c->fd < 0)
        return false;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, r->ai->ai_addr, r->ai->ai_addrlen) != 0 ||
        fcntl(c->fd, F_SETFL, O_NONBLOCK) != 0) {
        close(c->fd);
        c->fd = -1;
        return false;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    return epoll_ctl(r->epoll_fd, EPOLL_CTL_ADD, c->fd, &ev) == 0;
}

/* Writes what is left of the request; asks for EPOLLOUT when the socket is
 * full. False when the connection failed. */
static bool raw_send(raw_run *r, raw_conn *c)
{
    while (c->sent < r->request_len) {
        ssize_t n = write(c->fd, r->request + c->sent, r->request_len - c->sent);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0)
            return false;
        c->sent += (size_t)n;
    }
    bool want_out = c->sent < r->request_len;
    if (want_out == c->want_out)
        return true;
    c->want_out = want_out;
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = c};
    return epoll_ctl(r->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev) == 0;
}

static bool raw_start(raw_run *r, raw_conn *c)
{
    r->started++;
    c->sent = 0;
    c->in.len = 0;
    c->started_ms = bench_now_ms();
    return raw_send(r, c);
}

/* The length of a complete answer in c->in (headers and body), 0 while it is
 * incomplete; its status in *status. */
static size_t raw_complete(const raw_conn *c, int *status)
{
    if (c->in.len == 0)
        return 0;
    const char *end = strstr(c->in.data, "\r\n\r\n");
    if (end == NULL)
        return 0;
    size_t head = (size_t)(end - c->in.data) + 4, body = 0;
    *status = strncmp(c->in.data, "HTTP/1.1 ", 9) == 0 ? atoi(c->in.data + 9) : 0;
    for (const char *p = strstr(c->in.data, "\r\n"); p != NULL && p < end;
         p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, "Content-Length:", 15) == 0)
            body = (size_t)strtoul(p + 17, NULL, 10);
    }
    return c->in.len >= head + body ? head + body : 0;
}

/* Reads what is there; on a complete answer, counts it and starts the next
 * call (or closes when all are started). False when the connection failed. */
static bool raw_receive(raw_run *r, raw_conn *c)
{
    char chunk[16384];
    for (;;) {
        ssize_t n = read(c->fd, chunk, sizeof chunk);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        if (n <= 0)
            return false;
        if (bench_collect(chunk, 1, (size_t)n, &c->in) != (size_t)n)
            return false;
        int status = 0;
        size_t whole = raw_complete(c, &status);
        if (whole == 0)
            continue;
        if (status != 200 || whole != c->in.len)
            r->errors++;
        r->took[r->done++] = bench_now_ms() - c->started_ms;
        if (r->started == r->requests) {
            epoll_ctl(r->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
            close(c->fd);
            c->fd = -1;
            return true;
        }
        return raw_start(r, c);
    }
}

/* Runs the calls of --raw; false when the URL or a connection is unusable. */
static bool raw_main(const char *url, const char *body, long in_flight, raw_run *r)
{
    char host[256], port[16] = "80";
    const char *p = strncmp(url, "http://", 7) == 0 ? url + 7 : NULL;
    if (p == NULL) {
        fprintf(stderr, "pollfloor: --raw takes an http:// URL\n");
        return false;
    }
    size_t hl = strcspn(p, ":/");
    if (hl == 0 || hl >= sizeof host)
        return false;
    memcpy(host, p, hl);
    host[hl] = '\0';
    p += hl;
    if (*p == ':') {
        size_t pl = strcspn(p + 1, "/");
        if (pl == 0 || pl >= sizeof port)
            return false;
        memcpy(port, p + 1, pl);
        port[pl] = '\0';
        p += 1 + pl;
    }
    const char *path = *p ? p : "/";
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
    if (getaddrinfo(host, port, &hints, &r->ai) != 0)
        return false;
    bench_buf req = {NULL, 0};
    char head[512];
    int n = snprintf(head, sizeof head,
                     "POST %s HTTP/1.1\r\nHost: %s:%s\r\nContent-Type: text/xml; "
                     "charset=utf-8\r\nSOAPAction: \"\"\r\nContent-Length: %zu\r\n\r\n",
                     path, host, port, strlen(body));
    bool ok = n > 0 && (size_t)n < sizeof head && bench_collect(head, 1, (size_t)n, &req) &&
              bench_collect((char *)body, 1, strlen(body), &req);
    raw_conn *conns = calloc((size_t)in_flight, sizeof *conns);
    r->request = req.data;
    r->request_len = req.len;
    r->epoll_fd = epoll_create1(0);
    for (long i = 0; ok && i < in_flight; i++)
        ok = raw_connect(r, &conns[i]) && raw_start(r, &conns[i]);
    struct epoll_event ev[256];
    while (ok && r->done < r->requests) {
        int ne = epoll_wait(r->epoll_fd, ev, 256, 1000);
        for (int i = 0; i < ne; i++) {
            raw_conn *c = ev[i].data.ptr;
            if (c->fd < 0)
                continue;
            bool alive = (ev[i].events & EPOLLOUT) ? raw_send(r, c) : true;
            if (alive && (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                alive = raw_receive(r, c);
            if (alive)
                continue;
            /* The connection failed: count the call, carry on with a new one. */
            r->errors++;
            r->took[r->done++] = bench_now_ms() - c->started_ms;
            epoll_ctl(r->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
            close(c->fd);
            c->fd = -1;
            if (r->started < r->requests && !(raw_connect(r, c) && raw_start(r, c)))
                ok = false;
        }
    }
    for (long i = 0; conns != NULL && i < in_flight; i++) {
        if (conns[i].fd >= 0)
            close(conns[i].fd);
        free(conns[i].in.data);
    }
    free(conns);
    free(req.data);
    close(r->epoll_fd);
    freeaddrinfo(r->ai);
    return ok;
}

int main(int argc, char **argv)
{
    const char *url = NULL, *body_file = NULL;
    long in_flight = 400, requests = 40000;
    bool xml = false, raw = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--xml") == 0)
            xml = true;
        else if (strcmp(argv[i], "--raw") == 0)
            raw = true;
        else if (i + 1 < argc && strcmp(argv[i], "--url") == 0)
            url = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--body-file") == 0)
            body_file = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--ca-file") == 0)
            floor_ca_file = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--in-flight") == 0)
            in_flight = atol(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--requests") == 0)
            requests = atol(argv[++i]);
        else {
            fprintf(stderr, "usage: pollfloor --url URL --body-file F [--in-flight N] "
                            "[--requests N] [--xml | --raw] [--ca-file F]\n");
            return 2;
        }
    }
    if (url == NULL || body_file == NULL || in_flight < 1 || requests < in_flight || (raw && xml))
        return 2;
    char *body = bench_read_file(body_file);
    if (body == NULL)
        return 1;
    long body_len = (long)strlen(body);
    if (raw) {
        raw_run r = {.requests = requests, .took = malloc((size_t)requests * sizeof(double))};
        double cpu0 = floor_cpu_s(), t0 = bench_now_ms();
        bool ok = r.took != NULL && raw_main(url, body, in_flight, &r);
        double cpu = floor_cpu_s() - cpu0, secs = (bench_now_ms() - t0) / 1000.0;
        if (ok) {
            bench_sort(r.took, r.done);
            printf("{\"requests\": %ld, \"errors\": %ld, \"seconds\": %.3f, \"rps\": %.0f, "
                   "\"cpu_us_per_call\": %.2f, \"p50_ms\": %.1f, \"p99_ms\": %.1f}\n",
                   r.done, r.errors, secs, (double)r.done / secs, cpu * 1e6 / (double)r.done,
                   bench_pct(r.took, r.done, 0.50), bench_pct(r.took, r.done, 0.99));
        }
        free(r.took);
        free(body);
        return ok && r.errors == 0 ? 0 : 1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    xmlInitParser();
    struct curl_slist *headers = NULL;
    headers = curl_slist_append(headers, "Content-Type: text/xml; charset=utf-8");
    headers = curl_slist_append(headers, "SOAPAction: \"\"");
    headers = curl_slist_append(headers, "Expect:");
    floor_loop l = {curl_multi_init(), epoll_create1(0), -1};
    curl_multi_setopt(l.multi, CURLMOPT_SOCKETFUNCTION, floor_socket_cb);
    curl_multi_setopt(l.multi, CURLMOPT_SOCKETDATA, &l);
    curl_multi_setopt(l.multi, CURLMOPT_TIMERFUNCTION, floor_timer_cb);
    curl_multi_setopt(l.multi, CURLMOPT_TIMERDATA, &l);
    curl_multi_setopt(l.multi, CURLMOPT_MAX_HOST_CONNECTIONS, in_flight);
    curl_multi_setopt(l.multi, CURLMOPT_MAXCONNECTS, in_flight);
    floor_slot *slots = calloc((size_t)in_flight, sizeof *slots);
    double *took = malloc((size_t)requests * sizeof *took);
    if (slots == NULL || took == NULL)
        return 1;
    long started = 0, done = 0, errors = 0;
    double cpu0 = floor_cpu_s(), t0 = bench_now_ms();
    for (long i = 0; i < in_flight; i++) {
        slots[i].easy = curl_easy_init();
        floor_start(&slots[i], url, body, body_len, headers, xml, started++);
        curl_multi_add_handle(l.multi, slots[i].easy);
    }
    int running = 0;
    curl_multi_socket_action(l.multi, CURL_SOCKET_TIMEOUT, 0, &running);
    struct epoll_event ev[256];
    while (done < requests) {
        int n = epoll_wait(l.epoll_fd, ev, 256, l.timer_ms < 0 ? 1000 : (int)l.timer_ms);
        if (n == 0)
            curl_multi_socket_action(l.multi, CURL_SOCKET_TIMEOUT, 0, &running);
        for (int i = 0; i < n; i++) {
            int mask = (ev[i].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
                       (ev[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0);
            curl_multi_socket_action(l.multi, ev[i].data.fd, mask, &running);
        }
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(l.multi, &left)) != NULL) {
            if (m->msg != CURLMSG_DONE)
                continue;
            floor_slot *s = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            long status = 0;
            curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
            if (m->data.result != CURLE_OK || status != 200)
                errors++;
            took[done] = bench_now_ms() - s->started_ms;
            if (xml) {
                xmlDocPtr doc = xmlReadMemory(s->answer.data, (int)s->answer.len, NULL, NULL,
                                              XML_PARSE_NONET | XML_PARSE_NOERROR);
                if (doc == NULL)
                    errors++;
                xmlFreeDoc(doc);
            }
            done++;
            curl_multi_remove_handle(l.multi, s->easy);
            if (started < requests) {
                floor_start(s, url, body, body_len, headers, xml, started++);
                curl_multi_add_handle(l.multi, s->easy);
            }
        }
    }
    double cpu = floor_cpu_s() - cpu0, secs = (bench_now_ms() - t0) / 1000.0;
    bench_sort(took, done);
    printf("{\"requests\": %ld, \"errors\": %ld, \"seconds\": %.3f, \"rps\": %.0f, "
           "\"cpu_us_per_call\": %.2f, \"p50_ms\": %.1f, \"p99_ms\": %.1f}\n",
           done, errors, secs, (double)done / secs, cpu * 1e6 / (double)done,
           bench_pct(took, done, 0.50), bench_pct(took, done, 0.99));
    free(took);
    for (long i = 0; i < in_flight; i++) {
        curl_easy_cleanup(slots[i].easy);
        free(slots[i].answer.data);
        xmlFree(slots[i].built);
    }
    free(slots);
    free(body);
    curl_multi_cleanup(l.multi);
    curl_slist_free_all(headers);
    return errors == 0 ? 0 : 1;
}
