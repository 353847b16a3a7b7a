/* http/server.h — the REST API's HTTP server on libmicrohttpd.
 *
 * Owns the listening socket and the per-request plumbing that every endpoint
 * shares. From the headers alone, before any body byte is read: size cap
 * (413), Host check against DNS rebinding (421), no Origin (403, CSRF), the
 * API key (Authorization: Bearer, constant-time compare; /healthz and
 * /seqr/notify exempt) and Content-Type: application/json on bodies (415).
 * Then body collection within [http] request_timeout_s, JSON error bodies in
 * the contract's shape, Idempotency-Key replay for authenticated POSTs
 * (scoped per API key, canonical-JSON fingerprint, Idempotent-Replayed: true
 * on replays, kept [http] idempotency_ttl_s), routing (404/405 as JSON) and
 * one access-log line per request. Which paths are public, which take an
 * Idempotency-Key and who answers is the router's to say (http_router, given
 * to http_server_start(); the REST API's is http/routes.c): the server knows
 * no route of its own. What handlers see here carries no libmicrohttpd type.
 *
 * Connections get a thread each (handlers may wait on SEQR for seconds), up to
 * [http] max_connections; idle clients are dropped after connection_timeout_s.
 * http_server_stop() stops accepting and waits for requests in flight. */
#ifndef SEQR_HTTP_SERVER_H
#define SEQR_HTTP_SERVER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "api_error.h"
#include "buf.h"
#include "config.h"
#include "events.h"
#include "poller.h"
#include "service.h"

/* What the endpoints need; all borrowed. */
typedef struct http_apikey http_apikey;

typedef struct {
    const config *cfg;
    service *svc;
    poller *poller;
    int64_t started_ms;
    http_apikey *keys; /* the accepted API keys (rotated on reload) */
    bool backups;      /* POST /admin/backup allowed (false in contexts made up by tests) */
    /* >>> events */
    events_hub *hub;                 /* waits for new events (long-poll, SSE) */
    struct webhook_worker *webhooks; /* may be NULL: delivery statistics */
    /* <<< events */
} http_context;

typedef struct {
    const char *method; /* "GET", "POST", ... */
    const char *path;   /* decoded path without query */
    const char *body;   /* NUL-terminated; "" when none */
    size_t body_len;
    void *conn; /* the server's connection, for query arguments (opaque; NULL
                   in a request made up by a test or fuzzer) */
} http_request;

#define HTTP_MAX_HEADERS 8

typedef struct {
    int status;
    json_t *json;             /* owned; rendered when set */
    buf raw;                  /* otherwise this body ... */
    const char *content_type; /* ... with this type (static string) */
    int retry_after_s;        /* > 0: Retry-After header */
    bool replayed;            /* the stored answer to an Idempotency-Key */
    /* More headers (http_respond_header); a Cache-Control here replaces
     * the default no-store. */
    struct {
        char name[32];
        char value[512];
    } headers[HTTP_MAX_HEADERS];
    int nheaders;
    /* A streamed body (Server-Sent Events): when stream is set, the body
     * comes from it with content_type. stream(stream_ud, out, max) is called
     * in the connection's own thread, where it may block, and returns the
     * bytes it wrote to out (1..max), or 0 when the body is complete;
     * stream_free(stream_ud) runs when the response is done. Owned. */
    size_t (*stream)(void *ud, char *out, size_t max);
    void *stream_ud;
    void (*stream_free)(void *ud);
} http_response;

/* Sets resp to a JSON body (takes the reference). */
void http_respond_json(http_response *resp, int status, json_t *json);
/* Sets resp to the contract's error body for err. */
void http_respond_error(http_response *resp, const api_error *err);
/* Shorthand for http_respond_error with a fresh error. */
void http_respond_fail(http_response *resp, int status, const char *code, const char *field,
                       const char *message);
/* Adds a header to the answer (copied; false when there is no room or it is
 * too long). */
bool http_respond_header(http_response *resp, const char *name, const char *value);
/* Request header (borrowed) or NULL. */
const char *http_header(const http_request *req, const char *name);
/* Query argument (decoded, borrowed) or NULL. */
const char *http_query(const http_request *req, const char *name);

/* A handler: args are the path's {} segments in order. */
typedef void (*http_handler)(const http_context *ctx, const http_request *req,
                             const char *const *args, http_response *resp);

/* How a route is reached. */
typedef enum {
    HTTP_ROUTE_API_KEY = 0, /* Host, Origin and API key checked; JSON bodies only */
    HTTP_ROUTE_PUBLIC,      /* no Host, Origin or API key check (/healthz) */
    HTTP_ROUTE_CALLBACK     /* public, and its body is discarded unread (/seqr/notify) */
} http_route_access;

/* What the server asks of the routes (all static functions, thread-safe). */
typedef struct {
    /* How path is reached (asked from the headers alone, any method). */
    http_route_access (*access)(const char *path);
    /* Whether the request may carry an Idempotency-Key. */
    bool (*takes_idempotency_key)(const char *method, const char *path);
    /* A bounded label for metrics (static string). */
    const char *(*route)(const char *method, const char *path);
    /* The path as the log may show it (a capability in it masked): path
     * itself, or out (of len bytes) filled with the masked form. */
    const char *(*log_path)(const char *path, char *out, size_t len);
    /* Answers the request (404/405 included). */
    void (*dispatch)(const http_context *ctx, const http_request *req, http_response *resp);
} http_router;

typedef struct http_server http_server;

/* Starts listening on [http] listen/port, answering through router (borrowed,
 * must outlive the server). NULL with a message in err on failure. */
http_server *http_server_start(const http_context *ctx, const http_router *router, buf *err);
/* Stops accepting, waits for requests in flight, frees. */
void http_server_stop(http_server *srv);

#endif
