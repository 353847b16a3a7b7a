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
 * one access-log line per request. Endpoints live in
 * http/api.c and are reached through http_api_dispatch().
 *
 * Connections get a thread each (handlers may wait on SEQR for seconds), up to
 * [http] max_connections; idle clients are dropped after connection_timeout_s.
 * http_server_stop() stops accepting and waits for requests in flight. */
#ifndef SEQR_HTTP_SERVER_H
#define SEQR_HTTP_SERVER_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

#include "api_error.h"
#include "buf.h"
#include "config.h"
#include "events.h"
#include "poller.h"
#include "service.h"
#include "store.h"

/* What the endpoints need; all borrowed. */
typedef struct http_apikey http_apikey;

typedef struct {
    const config *cfg;
    service *svc;
    poller *poller;
    int64_t started_ms;
    http_apikey *keys; /* the accepted API keys (rotated on reload) */
    store *st;         /* for POST /admin/backup and the event feed */
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
    struct MHD_Connection *conn; /* for query arguments and headers */
} http_request;

typedef struct {
    int status;
    json_t *json;             /* owned; rendered when set */
    buf raw;                  /* otherwise this body ... */
    const char *content_type; /* ... with this type (static string) */
    int retry_after_s;        /* > 0: Retry-After header */
    bool replayed;            /* the stored answer to an Idempotency-Key */
    /* A streamed body (Server-Sent Events): when stream is set, the body
     * comes from it (libmicrohttpd's content reader, called in the
     * connection's own thread, where it may block) with content_type, and
     * stream_free(stream_ud) runs when the response is done. Owned. */
    MHD_ContentReaderCallback stream;
    void *stream_ud;
    MHD_ContentReaderFreeCallback stream_free;
} http_response;

/* Sets resp to a JSON body (takes the reference). */
void http_respond_json(http_response *resp, int status, json_t *json);
/* Sets resp to the contract's error body for err. */
void http_respond_error(http_response *resp, const api_error *err);
/* Shorthand for http_respond_error with a fresh error. */
void http_respond_fail(http_response *resp, int status, const char *code, const char *field,
                       const char *message);
/* Query argument (decoded, borrowed) or NULL. */
const char *http_query(const http_request *req, const char *name);

typedef struct http_server http_server;

/* Starts listening on [http] listen/port. NULL with a message in err on failure. */
http_server *http_server_start(const http_context *ctx, buf *err);
/* Stops accepting, waits for requests in flight, frees. */
void http_server_stop(http_server *srv);

/* Implemented in http/api.c: routes one request. */
void http_api_dispatch(const http_context *ctx, const http_request *req, http_response *resp);
/* True for the routes that take an Idempotency-Key: every POST of the API
 * except /seqr/notify/{token} (unauthenticated, internet-facing). */
bool http_api_takes_idempotency_key(const char *method, const char *path);

#endif
