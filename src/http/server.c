/* http/server.c — libmicrohttpd plumbing for the REST API; see http/server.h. */
#include "http/server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "digest.h"
#include "http/access.h"
#include "http/apikey.h"
#include "log.h"

struct http_server {
    struct MHD_Daemon *daemon;
    http_context ctx;
    const http_router *router; /* borrowed: routes, access, dispatch */
    /* Idempotency-Keys are claimed within this scope: a digest of the API
     * key, so that keys of one key holder never meet another's. */
    char idem_scope[DIGEST_HEX_LEN + 1];
};

/* Per-request state kept between libmicrohttpd's calls of the handler. */
typedef struct {
    buf body;
    bool too_large;
    bool discard; /* HTTP_ROUTE_CALLBACK: its body is never used */
    int64_t started;
    /* The answer's JSON, owned here once it went out as text: freed in
     * http_completed, after the client has the answer, not before. */
    json_t *sent_json;
} http_conn_state;

void http_respond_json(http_response *resp, int status, json_t *json)
{
    json_decref(resp->json);
    resp->status = status;
    resp->json = json;
}

void http_respond_error(http_response *resp, const api_error *err)
{
    json_t *e = json_object();
    json_object_set_new(e, "code", json_string(err->code[0] ? err->code : "error"));
    json_object_set_new(e, "message", json_string(err->message));
    if (err->field[0] != '\0')
        json_object_set_new(e, "field", json_string(err->field));
    if (err->seqr_code >= 0) {
        json_object_set_new(e, "seqrResultCode", json_integer(err->seqr_code));
        json_object_set_new(e, "seqrResultDescription", json_string(err->seqr_desc));
    }
    json_t *o = json_object();
    json_object_set_new(o, "error", e);
    http_respond_json(resp, err->http_status ? err->http_status : 500, o);
    resp->retry_after_s = err->retry_after_s;
}

void http_respond_fail(http_response *resp, int status, const char *code, const char *field,
                       const char *message)
{
    api_error err;
    api_error_set(&err, status, code, field, "%s", message);
    http_respond_error(resp, &err);
}

bool http_respond_header(http_response *resp, const char *name, const char *value)
{
    if (resp->nheaders == HTTP_MAX_HEADERS || strlen(name) >= sizeof resp->headers[0].name ||
        strlen(value) >= sizeof resp->headers[0].value)
        return false;
    snprintf(resp->headers[resp->nheaders].name, sizeof resp->headers[0].name, "%s", name);
    snprintf(resp->headers[resp->nheaders].value, sizeof resp->headers[0].value, "%s", value);
    resp->nheaders++;
    return true;
}

const char *http_header(const http_request *req, const char *name)
{
    if (req->conn == NULL) /* a request made up by a test or fuzzer */
        return NULL;
    return MHD_lookup_connection_value((struct MHD_Connection *)req->conn, MHD_HEADER_KIND, name);
}

const char *http_query(const http_request *req, const char *name)
{
    if (req->conn == NULL) /* a request made up by a test or fuzzer */
        return NULL;
    return MHD_lookup_connection_value((struct MHD_Connection *)req->conn, MHD_GET_ARGUMENT_KIND,
                                       name);
}

/* The key set (http/apikey.c) holds the current key and, during a rotation's
 * overlap, the previous one. */
static bool http_authorized(const http_context *ctx, struct MHD_Connection *conn)
{
    if (!http_apikey_required(ctx->keys))
        return true;
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
        return false;
    h += 7;
    while (*h == ' ')
        h++;
    return http_apikey_check(ctx->keys, h);
}

/* The host part of a Host header value (port and IPv6 brackets removed). */
static void http_host_name(const char *value, char *out, size_t size)
{
    const char *start = value, *end;
    if (value[0] == '[') {
        start = value + 1;
        end = strchr(start, ']');
    } else {
        end = strchr(value, ':');
    }
    size_t n = end ? (size_t)(end - start) : strlen(start);
    if (n >= size)
        n = 0; /* too long to be any name we accept */
    memcpy(out, start, n);
    out[n] = '\0';
}

/* True when the name appears in the comma-separated list (case-insensitive). */
static bool http_name_listed(const char *list, const char *name)
{
    size_t n = strlen(name);
    const char *p = list;
    while (*p) {
        while (*p == ',' || *p == ' ')
            p++;
        const char *e = p;
        while (*e && *e != ',' && *e != ' ')
            e++;
        if ((size_t)(e - p) == n && n > 0 && strncasecmp(p, name, n) == 0)
            return true;
        p = e;
    }
    return false;
}

/* DNS rebinding defence: a browser tricked into sending requests here sends
 * the attacker's host name in Host. Accepted: no Host (HTTP/1.0), any IP
 * literal (rebinding needs a name), localhost, the listen address, the host
 * of public_url and the names in [http] allowed_hosts. */
static bool http_host_allowed(const http_context *ctx, struct MHD_Connection *conn)
{
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host");
    if (h == NULL)
        return true;
    char name[256];
    http_host_name(h, name, sizeof name);
    if (name[0] == '\0')
        return false;
    unsigned char addr[16];
    if (inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1)
        return true;
    if (strcasecmp(name, "localhost") == 0 || strcasecmp(name, ctx->cfg->http_listen) == 0 ||
        http_name_listed(ctx->cfg->http_allowed_hosts, name))
        return true;
    const char *pub = ctx->cfg->http_public_url;
    const char *ph = strstr(pub, "://");
    if (ph != NULL) {
        char pubname[256];
        char hostport[300];
        size_t n = strcspn(ph + 3, "/?#");
        if (n < sizeof hostport) {
            memcpy(hostport, ph + 3, n);
            hostport[n] = '\0';
            const char *at = strrchr(hostport, '@');
            http_host_name(at ? at + 1 : hostport, pubname, sizeof pubname);
            if (pubname[0] != '\0' && strcasecmp(pubname, name) == 0)
                return true;
        }
    }
    return false;
}

/* True when the Content-Type is application/json (parameters allowed). */
static bool http_is_json_type(const char *type)
{
    if (type == NULL)
        return false;
    while (*type == ' ')
        type++;
    static const char json[] = "application/json";
    size_t n = sizeof json - 1;
    return strncasecmp(type, json, n) == 0 && (type[n] == '\0' || type[n] == ';' || type[n] == ' ');
}

/* True when the request announces a body (Content-Length > 0 or chunked). */
static bool http_has_body(struct MHD_Connection *conn)
{
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    const char *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding");
    return (cl != NULL && strtoll(cl, NULL, 10) != 0) || te != NULL;
}

/* Everything decided from the headers alone, before any body byte is read:
 * a refused request never gets its body buffered. Returns false with resp
 * set when the request is refused. */
static bool http_precheck(const http_server *srv, struct MHD_Connection *conn, const char *url,
                          http_response *resp)
{
    const http_context *ctx = &srv->ctx;
    http_route_access access = srv->router->access(url);
    bool open = access != HTTP_ROUTE_API_KEY;
    bool callback = access == HTTP_ROUTE_CALLBACK;
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    if (cl != NULL && strtoll(cl, NULL, 10) > ctx->cfg->http_max_body_bytes) {
        char msg[96];
        snprintf(msg, sizeof msg, "the request body is larger than %ld bytes",
                 ctx->cfg->http_max_body_bytes);
        http_respond_fail(resp, 413, "body_too_large", NULL, msg);
        return false;
    }
    if (!open && !http_host_allowed(ctx, conn)) {
        http_respond_fail(resp, 421, "host_not_allowed", "Host",
                          "this Host is not served here (add it to [http] allowed_hosts)");
        return false;
    }
    /* The API is for servers; a browser page may not drive it (CSRF). */
    if (!open && MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin") != NULL) {
        http_respond_fail(resp, 403, "cross_origin", "Origin",
                          "requests from web pages (with an Origin header) are not accepted");
        return false;
    }
    if (!open && !http_authorized(ctx, conn)) {
        http_respond_fail(resp, 401, "unauthorized", NULL,
                          "missing or wrong API key (send Authorization: Bearer <key>)");
        return false;
    }
    if (!callback && http_has_body(conn) &&
        !http_is_json_type(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type"))) {
        http_respond_fail(resp, 415, "unsupported_media_type", "Content-Type",
                          "a request body must be sent as Content-Type: application/json");
        return false;
    }
    return true;
}

/* A streamed body handed to libmicrohttpd (see http_response.stream). */
typedef struct {
    size_t (*fn)(void *ud, char *out, size_t max);
    void (*free_fn)(void *ud);
    void *ud;
} http_stream;

static ssize_t http_stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
    http_stream *hs = cls;
    size_t n = hs->fn(hs->ud, out, max);
    return n == 0 ? MHD_CONTENT_READER_END_OF_STREAM : (ssize_t)n;
}

static void http_stream_free(void *cls)
{
    http_stream *hs = cls;
    if (hs->free_fn != NULL)
        hs->free_fn(hs->ud);
    free(hs);
}

static enum MHD_Result http_send(struct MHD_Connection *conn, http_response *resp)
{
    char *text = NULL;
    const char *data;
    size_t len;
    const char *type = resp->content_type;
    if (resp->stream != NULL) {
        http_stream *hs = malloc(sizeof *hs);
        struct MHD_Response *sr =
            hs ? MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, http_stream_read, hs,
                                                   http_stream_free)
               : NULL;
        if (sr == NULL) {
            free(hs);
            return MHD_NO; /* http_response_free() frees stream_ud */
        }
        hs->fn = resp->stream;
        hs->free_fn = resp->stream_free;
        hs->ud = resp->stream_ud;
        resp->stream = NULL; /* libmicrohttpd owns it now */
        MHD_add_response_header(sr, "Content-Type", type ? type : "text/event-stream");
        MHD_add_response_header(sr, "Cache-Control", "no-store");
        MHD_add_response_header(sr, "X-Accel-Buffering", "no");
        for (int i = 0; i < resp->nheaders; i++) /* e.g. the payment page's CSP */
            MHD_add_response_header(sr, resp->headers[i].name, resp->headers[i].value);
        enum MHD_Result sret = MHD_queue_response(conn, (unsigned)resp->status, sr);
        MHD_destroy_response(sr);
        return sret;
    }
    if (resp->json != NULL) {
        text = json_dumps(resp->json, JSON_COMPACT);
        if (text == NULL)
            text = strdup("{}");
        data = text;
        len = strlen(text);
        type = "application/json";
    } else {
        data = buf_cstr(&resp->raw);
        len = resp->raw.len;
        if (type == NULL)
            type = "text/plain; charset=utf-8";
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    free(text);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    bool cache_set = false;
    for (int i = 0; i < resp->nheaders; i++) {
        MHD_add_response_header(r, resp->headers[i].name, resp->headers[i].value);
        cache_set = cache_set || strcasecmp(resp->headers[i].name, "Cache-Control") == 0;
    }
    if (!cache_set)
        MHD_add_response_header(r, "Cache-Control", "no-store");
    if (resp->retry_after_s > 0) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", resp->retry_after_s);
        MHD_add_response_header(r, "Retry-After", ra);
    }
    if (resp->replayed)
        MHD_add_response_header(r, "Idempotent-Replayed", "true");
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)resp->status, r);
    MHD_destroy_response(r);
    return ret;
}

static void http_response_free(http_response *resp)
{
    json_decref(resp->json);
    resp->json = NULL;
    buf_free(&resp->raw);
    if (resp->stream != NULL && resp->stream_free != NULL)
        resp->stream_free(resp->stream_ud);
    resp->stream = NULL;
}

/* The request's fingerprint for its Idempotency-Key: SHA-256 of method,
 * path and the body as canonical JSON (keys sorted, no whitespace), so that
 * the same JSON written another way is the same request. A body that is not
 * JSON is taken byte for byte. */
static bool http_request_hash(const http_request *req, char out[DIGEST_HEX_LEN + 1])
{
    buf b = BUF_INIT;
    buf_printf(&b, "%s\n%s\n", req->method, req->path);
    json_t *j = req->body_len > 0 ? json_loadb(req->body, req->body_len,
                                               JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL)
                                  : NULL;
    char *canon = j ? json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    if (canon != NULL) {
        buf_puts(&b, "json\n");
        buf_puts(&b, canon);
    } else {
        buf_puts(&b, "raw\n");
        buf_append(&b, req->body, req->body_len);
    }
    free(canon);
    json_decref(j);
    bool ok = digest_sha256_hex(b.data ? b.data : "", b.len, out);
    buf_free(&b);
    return ok;
}

/* Idempotency-Key handling around dispatch. Returns true when the answer
 * came from the store (replay or conflict) and dispatch must not run. */
static bool http_idem_claim(const http_server *srv, const http_request *req, const char *key,
                            http_response *resp)
{
    const http_context *ctx = &srv->ctx;
    bool same = false;
    int status = 0;
    char *stored = NULL;
    char hash[DIGEST_HEX_LEN + 1];
    if (!http_request_hash(req, hash)) {
        http_respond_fail(resp, 500, "internal_error", NULL, "hashing the request failed");
        return true;
    }
    store_err e = service_idem_claim(ctx->svc, srv->idem_scope, key, hash, &same, &status, &stored);
    if (e == STORE_OK)
        return false;
    if (e == STORE_CONFLICT) {
        if (!same) {
            http_respond_fail(resp, 422, "idempotency_key_reused", NULL,
                              "this Idempotency-Key was used with another request");
        } else if (status == 0) {
            http_respond_fail(resp, 409, "idempotency_in_progress", NULL,
                              "the first request with this Idempotency-Key is still running");
            resp->retry_after_s = 1;
        } else {
            json_t *j = stored ? json_loads(stored, 0, NULL) : NULL;
            http_respond_json(resp, status, j ? j : json_object());
            resp->replayed = true;
        }
    } else {
        http_respond_fail(resp, 500, "store_error", NULL, "the gateway's database failed");
    }
    free(stored);
    return true;
}

static void http_idem_finish(const http_server *srv, const char *key, http_response *resp)
{
    const http_context *ctx = &srv->ctx;
    /* 5xx: nothing definite happened, or the outcome is in doubt and the
     * service itself guards against doing it twice; let a retry run again. */
    if (resp->status >= 500 || resp->json == NULL) {
        service_idem_release(ctx->svc, srv->idem_scope, key);
        return;
    }
    char *text = json_dumps(resp->json, JSON_COMPACT);
    service_idem_finish(ctx->svc, srv->idem_scope, key, resp->status, text ? text : "{}");
    free(text);
}

/* The path as the log may show it: the router masks capabilities in it. */
static const char *http_log_path(const http_server *srv, const char *url, char *out, size_t len)
{
    return srv->router->log_path != NULL ? srv->router->log_path(url, out, len) : url;
}

static enum MHD_Result http_handle(void *cls, struct MHD_Connection *conn, const char *url,
                                   const char *method, const char *version, const char *upload_data,
                                   size_t *upload_data_size, void **con_cls)
{
    http_server *srv = cls;
    const http_context *ctx = &srv->ctx;
    http_conn_state *cs = *con_cls;

    if (cs == NULL) {
        cs = calloc(1, sizeof *cs);
        if (cs == NULL)
            return MHD_NO;
        buf_init(&cs->body);
        cs->started = service_now_ms();
        cs->discard = srv->router->access(url) == HTTP_ROUTE_CALLBACK;
        *con_cls = cs;
        /* Headers only so far: refuse before reading any of the body. */
        http_response early;
        memset(&early, 0, sizeof early);
        buf_init(&early.raw);
        if (http_precheck(srv, conn, url, &early))
            return MHD_YES;
        char masked[128];
        log_info("%s %s -> %d (refused before the body)", method,
                 http_log_path(srv, url, masked, sizeof masked), early.status);
        enum MHD_Result ret = http_send(conn, &early);
        http_response_free(&early);
        return ret;
    }
    if (*upload_data_size > 0) {
        /* A client trickling its body holds a thread: bound the whole upload. */
        if (service_now_ms() - cs->started > (int64_t)ctx->cfg->http_request_timeout_s * 1000) {
            log_warn("%s %s: body not complete after %d s; connection closed", method, url,
                     ctx->cfg->http_request_timeout_s);
            return MHD_NO;
        }
        if (!cs->too_large && !cs->discard) {
            if (cs->body.len + *upload_data_size > (size_t)ctx->cfg->http_max_body_bytes) {
                cs->too_large = true;
                buf_free(&cs->body);
            } else {
                buf_append(&cs->body, upload_data, *upload_data_size);
            }
        }
        *upload_data_size = 0;
        return MHD_YES;
    }

    http_response resp;
    memset(&resp, 0, sizeof resp);
    buf_init(&resp.raw);
    http_request req = {method, url, buf_cstr(&cs->body), cs->body.len, conn};

    if (cs->too_large) {
        char msg[96];
        snprintf(msg, sizeof msg, "the request body is larger than %ld bytes",
                 ctx->cfg->http_max_body_bytes);
        http_respond_fail(&resp, 413, "body_too_large", NULL, msg);
    } else {
        /* Keys are claimed only where the contract takes them: authenticated
         * POSTs (never /seqr/notify, which faces the internet unauthenticated). */
        const char *key =
            srv->router->takes_idempotency_key(method, url)
                ? MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Idempotency-Key")
                : NULL;
        if (key != NULL && (key[0] == '\0' || strlen(key) > 255)) {
            http_respond_fail(&resp, 400, "invalid_header", "Idempotency-Key",
                              "Idempotency-Key must be 1 to 255 characters");
        } else if (key == NULL || !http_idem_claim(srv, &req, key, &resp)) {
            srv->router->dispatch(ctx, &req, &resp);
            if (key != NULL)
                http_idem_finish(srv, key, &resp);
        }
    }
    if (resp.status == 0)
        http_respond_fail(&resp, 500, "internal_error", NULL, "no answer was produced");
    char masked[128]; /* a payment page's token never reaches the log */
    http_access_record(method, http_log_path(srv, url, masked, sizeof masked),
                       srv->router->route(method, url), &resp,
                       service_now_ms() - cs->started);
    enum MHD_Result ret = http_send(conn, &resp);
    /* Freeing the answer's document (for an invoice, a few hundred nodes)
     * waits until the answer is on its way (http_completed). */
    cs->sent_json = resp.json;
    resp.json = NULL;
    http_response_free(&resp);
    return ret;
}

static void http_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                           enum MHD_RequestTerminationCode toe)
{
    http_conn_state *cs = *con_cls;
    if (cs != NULL) {
        buf_free(&cs->body);
        json_decref(cs->sent_json);
        free(cs);
        *con_cls = NULL;
    }
}

static void http_mhd_log(void *cls, const char *fmt, va_list ap)
{
    buf b = BUF_INIT;
    buf_vprintf(&b, fmt, ap);
    while (b.len > 0 && (b.data[b.len - 1] == '\n'))
        b.data[--b.len] = '\0';
    log_warn("http: %s", buf_cstr(&b));
    buf_free(&b);
}

http_server *http_server_start(const http_context *ctx, const http_router *router, buf *err)
{
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char port[16];
    snprintf(port, sizeof port, "%d", ctx->cfg->http_port);
    int rc = getaddrinfo(ctx->cfg->http_listen, port, &hints, &ai);
    if (rc != 0 || ai == NULL) {
        buf_printf(err, "[http] listen %s: %s", ctx->cfg->http_listen, gai_strerror(rc));
        return NULL;
    }
    http_server *srv = calloc(1, sizeof *srv);
    if (srv == NULL) {
        freeaddrinfo(ai);
        return NULL;
    }
    srv->ctx = *ctx;
    srv->router = router;
    if (ctx->cfg->http_api_key[0] == '\0') {
        snprintf(srv->idem_scope, sizeof srv->idem_scope, "open");
    } else {
        buf k = BUF_INIT;
        buf_printf(&k, "seqr-gateway idempotency scope\n%s", ctx->cfg->http_api_key);
        bool ok = digest_sha256_hex(k.data, k.len, srv->idem_scope);
        buf_free(&k);
        if (!ok) {
            buf_puts(err, "SHA-256 from libcrypto failed");
            freeaddrinfo(ai);
            free(srv);
            return NULL;
        }
    }
    /* One address may hold only a small share of the threads. */
    int per_ip = ctx->cfg->http_max_connections_per_ip < ctx->cfg->http_max_connections
                     ? ctx->cfg->http_max_connections_per_ip
                     : ctx->cfg->http_max_connections;
    /* poll(), not select(): the poller's SEQR connections can push socket
     * numbers past FD_SETSIZE, which select() cannot watch. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    srv->daemon = MHD_start_daemon(
        flags, (uint16_t)ctx->cfg->http_port, NULL, NULL, http_handle, srv,
        MHD_OPTION_EXTERNAL_LOGGER, http_mhd_log, srv, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)ctx->cfg->http_max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)ctx->cfg->http_connection_timeout_s,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)per_ip, MHD_OPTION_NOTIFY_COMPLETED,
        http_completed, srv, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (srv->daemon == NULL) {
        buf_printf(err, "cannot listen on %s port %d (in use, or not permitted)",
                   ctx->cfg->http_listen, ctx->cfg->http_port);
        free(srv);
        return NULL;
    }
    return srv;
}

void http_server_stop(http_server *srv)
{
    if (srv == NULL)
        return;
    MHD_quiesce_daemon(srv->daemon);
    MHD_stop_daemon(srv->daemon);
    free(srv);
}
