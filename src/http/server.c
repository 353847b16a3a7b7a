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

#include "http/access.h"
#include "http/apikey.h"
#include "log.h"
#include "store.h"

struct http_server {
    struct MHD_Daemon *daemon;
    http_context ctx;
};

/* Per-request state kept between libmicrohttpd's calls of the handler. */
typedef struct {
    buf body;
    bool too_large;
    int64_t started;
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

const char *http_query(const http_request *req, const char *name)
{
    if (req->conn == NULL) /* a request made up by a test or fuzzer */
        return NULL;
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
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

static enum MHD_Result http_send(struct MHD_Connection *conn, http_response *resp)
{
    char *text = NULL;
    const char *data;
    size_t len;
    const char *type = resp->content_type;
    if (resp->stream != NULL) {
        struct MHD_Response *sr = MHD_create_response_from_callback(
            MHD_SIZE_UNKNOWN, 4096, resp->stream, resp->stream_ud, resp->stream_free);
        if (sr == NULL)
            return MHD_NO; /* http_response_free() frees stream_ud */
        resp->stream = NULL; /* libmicrohttpd owns stream_ud now */
        MHD_add_response_header(sr, "Content-Type", type ? type : "text/event-stream");
        MHD_add_response_header(sr, "Cache-Control", "no-store");
        MHD_add_response_header(sr, "X-Accel-Buffering", "no");
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
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (resp->retry_after_s > 0) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", resp->retry_after_s);
        MHD_add_response_header(r, "Retry-After", ra);
    }
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

/* Idempotency-Key handling around dispatch for POSTs. Returns true when the
 * answer came from the store (replay or conflict) and dispatch must not run. */
static bool http_idem_claim(const http_context *ctx, const http_request *req, const char *key,
                            http_response *resp)
{
    bool same = false;
    int status = 0;
    char *stored = NULL;
    store_err e = service_idem_claim(ctx->svc, key, req->method, req->path, req->body, &same,
                                     &status, &stored);
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
        }
    } else {
        http_respond_fail(resp, 500, "store_error", NULL, "the gateway's database failed");
    }
    free(stored);
    return true;
}

static void http_idem_finish(const http_context *ctx, const char *key, http_response *resp)
{
    /* 5xx: nothing definite happened, or the outcome is in doubt and the
     * service itself guards against doing it twice; let a retry run again. */
    if (resp->status >= 500 || resp->json == NULL) {
        service_idem_release(ctx->svc, key);
        return;
    }
    char *text = json_dumps(resp->json, JSON_COMPACT);
    service_idem_finish(ctx->svc, key, resp->status, text ? text : "{}");
    free(text);
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
        cs->started = store_now_ms();
        *con_cls = cs;
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl != NULL && strtoll(cl, NULL, 10) > ctx->cfg->http_max_body_bytes)
            cs->too_large = true;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (!cs->too_large) {
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
    } else if (strcmp(url, "/healthz") != 0 && strncmp(url, "/seqr/notify/", 13) != 0 &&
               !http_authorized(ctx, conn)) {
        http_respond_fail(&resp, 401, "unauthorized", NULL,
                          "missing or wrong API key (send Authorization: Bearer <key>)");
    } else {
        const char *key =
            strcmp(method, "POST") == 0
                ? MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Idempotency-Key")
                : NULL;
        if (key != NULL && (key[0] == '\0' || strlen(key) > 255)) {
            http_respond_fail(&resp, 400, "invalid_header", "Idempotency-Key",
                              "Idempotency-Key must be 1 to 255 characters");
        } else if (key == NULL || !http_idem_claim(ctx, &req, key, &resp)) {
            http_api_dispatch(ctx, &req, &resp);
            if (key != NULL)
                http_idem_finish(ctx, key, &resp);
        }
    }
    if (resp.status == 0)
        http_respond_fail(&resp, 500, "internal_error", NULL, "no answer was produced");
    http_access_record(method, url, &resp, store_now_ms() - cs->started);
    enum MHD_Result ret = http_send(conn, &resp);
    http_response_free(&resp);
    return ret;
}

static void http_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                           enum MHD_RequestTerminationCode toe)
{
    http_conn_state *cs = *con_cls;
    if (cs != NULL) {
        buf_free(&cs->body);
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

http_server *http_server_start(const http_context *ctx, buf *err)
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
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)ctx->cfg->http_max_connections,
        MHD_OPTION_NOTIFY_COMPLETED, http_completed, srv, MHD_OPTION_END);
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
