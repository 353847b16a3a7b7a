/* seqr/client.c — the SEQR SOAP client: libcurl transport and one function per
 * operation (declared in seqr/seqr.h).
 *
 * A call goes: ClientContext from the options (seqr_call_begin) -> envelope
 * builder (envelope.c) -> POST over libcurl (seqr_call_send) -> answer parser
 * (parse.c) -> HTTP status check and password scrubbing (seqr_call_end).
 *
 * Transport: TLS is always verified; the answer is capped at SEQR_XML_MAX_BYTES
 * (the transfer is aborted beyond it); redirects are never followed.
 * Connections are reused through a mutex-protected pool of easy handles (each
 * keeps its live connection between calls; a blocking call takes one, uses it
 * and puts it back), so any number of threads may call at once. DNS and TLS
 * sessions are shared between all handles through a locked CURLSH. Connection
 * sharing through CURLSH is avoided on purpose: libcurl documents it as unsafe
 * between concurrent threads. Asynchronous status requests get their own easy
 * handle; the caller's CURLM keeps and reuses their connections. */
#include "seqr.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../log.h"
#include "../text.h"
#include "envelope.h"
#include "memo.h"
#include "parse.h"
#include "xml.h"

#ifndef SEQR_VERSION
#define SEQR_VERSION "0"
#endif

/* Idle easy handles (with their open connections) kept between calls. */
#define SEQR_POOL_MAX 16
/* Idle easy handles of asynchronous getPaymentStatus calls, kept so that a
 * poll does not set up a handle (and its buffers) each time: about as many
 * as the poller has calls in flight. */
#define SEQR_STATUS_POOL_MAX 1024
/* Used when the options give no positive timeout. */
#define SEQR_DEFAULT_TIMEOUT_MS 30000L

/* A handle for one blocking call at a time and the multi handle it runs
 * in: the multi's connection cache keeps the connection to SEQR between
 * the calls that use this pair (see seqr_conn_perform). */
typedef struct {
    CURL *easy;
    CURLM *multi;
} seqr_conn;

struct seqr_client {
    char *url;
    char *ca_file; /* NULL = system store */
    char *user_agent;
    char *channel;
    char *client_id;
    char *client_reference;
    char *terminal_id;
    char *terminal_password;
    char *reseller_id;
    char *reseller_user_id;
    char *reseller_password;
    long timeout_ms;
    struct curl_slist *headers;
    CURLSH *share;
    pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
    bool share_locks_ready;
    pthread_mutex_t pool_lock;
    bool pool_lock_ready;
    seqr_conn pool[SEQR_POOL_MAX];
    int n_pool;
    CURL **status_pool; /* SEQR_STATUS_POOL_MAX slots, under pool_lock */
    int n_status_pool;
    void (*observe)(void *ud, const char *op, seqr_err err, int result_code, int64_t elapsed_us);
    void *observe_ud;
    seqr_memo *status_memo; /* getPaymentStatus answers parsed before (seqr/memo.h) */
};

/* One transfer's answer. */
typedef struct {
    buf body;
    bool too_large;
    char errbuf[CURL_ERROR_SIZE];
} seqr_xfer;

struct seqr_status_request {
    seqr_client *c;
    CURL *easy;
    seqr_status_cache *cache; /* the POSTed body; borrowed unless own_cache */
    bool own_cache;
    seqr_xfer x;
    void *user;
};

/* A serialised getPaymentStatus request and what it was built from. data
 * holds the key (every input of the request, each NUL-terminated: channel,
 * clientId, clientReference, principal id, password, invoice reference, and
 * the version in decimal), then the request itself, NUL-terminated. */
struct seqr_status_cache {
    size_t key_len;
    size_t request_len;
    size_t password_off; /* where the password starts in data */
    char data[];
};

const char *seqr_err_name(seqr_err err)
{
    switch (err) {
    case SEQR_OK:
        return "ok";
    case SEQR_ERR_RESULT:
        return "result";
    case SEQR_ERR_FAULT:
        return "fault";
    case SEQR_ERR_BAD_ANSWER:
        return "bad answer";
    case SEQR_ERR_CONNECT:
        return "connect";
    case SEQR_ERR_UNAVAILABLE:
        return "unavailable";
    case SEQR_ERR_TIMEOUT:
        return "timeout";
    case SEQR_ERR_INVALID:
        return "invalid request";
    case SEQR_ERR_INTERNAL:
        return "internal";
    }
    return "unknown";
}

/* --- small helpers --- */

static void seqr_message(seqr_result *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void seqr_message(seqr_result *res, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->message, sizeof res->message, fmt, ap);
    va_end(ap);
}

/* strdup that keeps NULL (and "" when empty_is_null is false). */
static bool seqr_copy(const char *s, bool empty_is_null, char **out)
{
    *out = NULL;
    if (s == NULL || (empty_is_null && s[0] == '\0'))
        return true;
    *out = strdup(s);
    return *out != NULL;
}

static void seqr_free_secret(char *s)
{
    if (s == NULL)
        return;
    volatile char *p = s;
    while (*p)
        *p++ = '\0';
    free(s);
}

/* Makes s one line. */
static void seqr_one_line(char *s)
{
    for (unsigned char *p = (unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            *p = ' ';
}

/* Replaces every occurrence of secret in s (capacity cap) by "********". */
static void seqr_scrub(char *s, size_t cap, const char *secret)
{
    if (secret == NULL || secret[0] == '\0' || strstr(s, secret) == NULL)
        return;
    buf b = BUF_INIT;
    size_t n = strlen(secret);
    const char *p = s;
    const char *hit;
    while ((hit = strstr(p, secret)) != NULL) {
        buf_append(&b, p, (size_t)(hit - p));
        buf_puts(&b, "********");
        p = hit + n;
    }
    buf_puts(&b, p);
    snprintf(s, cap, "%s", buf_cstr(&b));
    buf_free(&b);
}

/* Removes the client's passwords and extra (may be NULL) from every text of res. */
static void seqr_scrub_result(const seqr_client *c, seqr_result *res, const char *extra)
{
    const char *secrets[4] = {c ? c->terminal_password : NULL, c ? c->reseller_password : NULL,
                              extra, NULL};
    char *texts[4] = {res->message, res->description, res->fault_code, res->fault_string};
    size_t caps[4] = {sizeof res->message, sizeof res->description, sizeof res->fault_code,
                      sizeof res->fault_string};
    /* Each text made one line once (a mask adds no control characters),
     * then every secret masked in order. */
    for (int t = 0; t < 4; t++) {
        seqr_one_line(texts[t]);
        for (int i = 0; i < 3; i++)
            seqr_scrub(texts[t], caps[t], secrets[i]);
    }
}

/* --- CURLSH locking --- */

static void seqr_share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ud)
{
    (void)h;
    (void)access;
    seqr_client *c = ud;
    if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
        pthread_mutex_lock(&c->share_locks[data]);
}

static void seqr_share_unlock(CURL *h, curl_lock_data data, void *ud)
{
    (void)h;
    seqr_client *c = ud;
    if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
        pthread_mutex_unlock(&c->share_locks[data]);
}

/* --- easy handles --- */

static size_t seqr_write(char *data, size_t size, size_t n, void *ud)
{
    seqr_xfer *x = ud;
    size_t bytes = size * n;
    if (bytes > SEQR_XML_MAX_BYTES || x->body.len + bytes > SEQR_XML_MAX_BYTES) {
        x->too_large = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    buf_append(&x->body, data, bytes);
    return bytes;
}

static void seqr_xfer_init(seqr_xfer *x)
{
    buf_init(&x->body);
    x->too_large = false;
    x->errbuf[0] = '\0';
}

/* A new easy handle with every option that does not change between calls. */
static CURL *seqr_easy_new(seqr_client *c)
{
    CURL *h = curl_easy_init();
    if (h == NULL)
        return NULL;
    CURLcode rc = curl_easy_setopt(h, CURLOPT_URL, c->url);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_POST, 1L);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->headers);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_USERAGENT, c->user_agent);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (rc == CURLE_OK && c->ca_file != NULL)
        rc = curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, seqr_write);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_SHARE, c->share);
    if (rc != CURLE_OK) {
        log_error("seqr: cannot set up a libcurl handle: %s", curl_easy_strerror(rc));
        curl_easy_cleanup(h);
        return NULL;
    }
    return h;
}

/* Points h at this transfer's request body and answer. */
static bool seqr_easy_bind(CURL *h, const char *request, size_t request_len, seqr_xfer *x)
{
    CURLcode rc = curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)request_len);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_POSTFIELDS, request);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->errbuf);
    return rc == CURLE_OK;
}

/* Forgets the pointers of the finished transfer (they live on a stack). */
static void seqr_easy_unbind(CURL *h)
{
    /* Resetting pointers to NULL cannot fail in a way that matters here: the
     * next seqr_easy_bind() sets all of them again before any transfer. */
    (void)curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    (void)curl_easy_setopt(h, CURLOPT_WRITEDATA, NULL);
    (void)curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
}

static void seqr_conn_close(seqr_conn *k)
{
    if (k->multi != NULL)
        curl_multi_cleanup(k->multi);
    if (k->easy != NULL)
        curl_easy_cleanup(k->easy);
    k->multi = NULL;
    k->easy = NULL;
}

/* An idle pair from the pool, or a new one; false when libcurl cannot make one. */
static bool seqr_pool_get(seqr_client *c, seqr_conn *out)
{
    bool found = false;
    pthread_mutex_lock(&c->pool_lock);
    if (c->n_pool > 0) {
        *out = c->pool[--c->n_pool];
        found = true;
    }
    pthread_mutex_unlock(&c->pool_lock);
    if (found)
        return true;
    out->easy = seqr_easy_new(c);
    out->multi = out->easy != NULL ? curl_multi_init() : NULL;
    if (out->multi == NULL) {
        seqr_conn_close(out);
        return false;
    }
    return true;
}

static void seqr_pool_put(seqr_client *c, seqr_conn *k)
{
    pthread_mutex_lock(&c->pool_lock);
    if (c->n_pool < SEQR_POOL_MAX) {
        c->pool[c->n_pool++] = *k;
        k->easy = NULL;
        k->multi = NULL;
    }
    pthread_mutex_unlock(&c->pool_lock);
    seqr_conn_close(k); /* nothing when kept */
}

/* Runs the transfer set up on k->easy to its end, as curl_easy_perform()
 * would, and calls meanwhile (when not NULL) exactly once: after the first
 * step put the request on its way and the answer is still out, or else
 * when the transfer is over. */
static CURLcode seqr_conn_perform(seqr_conn *k, void (*meanwhile)(void *ud), void *ud)
{
    if (curl_multi_add_handle(k->multi, k->easy) != CURLM_OK) {
        if (meanwhile != NULL)
            meanwhile(ud);
        return CURLE_FAILED_INIT; /* nothing was sent */
    }
    CURLcode result = CURLE_RECV_ERROR; /* from here on the request may be out */
    bool over = false;
    while (!over) {
        int running = 0;
        if (curl_multi_perform(k->multi, &running) != CURLM_OK)
            break;
        if (running == 0) {
            int left = 0;
            CURLMsg *m;
            while ((m = curl_multi_info_read(k->multi, &left)) != NULL)
                if (m->msg == CURLMSG_DONE && m->easy_handle == k->easy)
                    result = m->data.result;
            over = true;
        } else if (meanwhile != NULL) {
            meanwhile(ud);
            meanwhile = NULL; /* and look at the transfer again at once */
        } else if (curl_multi_poll(k->multi, NULL, 0, 1000, NULL) != CURLM_OK) {
            break;
        }
    }
    /* The connection stays in the multi's cache for the next call. */
    (void)curl_multi_remove_handle(k->multi, k->easy);
    if (meanwhile != NULL)
        meanwhile(ud);
    return result;
}

/* --- client --- */

static bool seqr_url_ok(const char *url)
{
    return url != NULL &&
           (strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0) &&
           strpbrk(url, " \t\r\n") == NULL;
}

seqr_client *seqr_client_new(const seqr_client_options *opts)
{
    seqr_client *c = NULL;
    bool ok = true;

    if (opts == NULL || !seqr_url_ok(opts->url)) {
        log_error("seqr: the SEQR URL must start with http:// or https://");
        return NULL;
    }
    c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    if (pthread_mutex_init(&c->pool_lock, NULL) != 0)
        goto fail;
    c->pool_lock_ready = true;
    c->status_pool = calloc(SEQR_STATUS_POOL_MAX, sizeof *c->status_pool);
    if (c->status_pool == NULL)
        goto fail;
    c->status_memo = seqr_memo_new();
    if (c->status_memo == NULL)
        goto fail;
    int n_locks = 0;
    for (; n_locks < CURL_LOCK_DATA_LAST; n_locks++)
        if (pthread_mutex_init(&c->share_locks[n_locks], NULL) != 0)
            break;
    if (n_locks < CURL_LOCK_DATA_LAST) {
        for (int i = 0; i < n_locks; i++)
            pthread_mutex_destroy(&c->share_locks[i]);
        goto fail;
    }
    c->share_locks_ready = true;
    c->observe = opts->observe;
    c->observe_ud = opts->observe_ud;

    ok = ok && seqr_copy(opts->url, false, &c->url);
    ok = ok && seqr_copy(opts->ca_file, true, &c->ca_file);
    ok = ok && seqr_copy(opts->user_agent ? opts->user_agent : "seqr-gateway/" SEQR_VERSION, false,
                         &c->user_agent);
    ok = ok &&
         seqr_copy(opts->channel && opts->channel[0] ? opts->channel : "WS", false, &c->channel);
    ok = ok && seqr_copy(opts->client_id, true, &c->client_id);
    ok = ok && seqr_copy(opts->client_reference && opts->client_reference[0]
                             ? opts->client_reference
                             : "seqr-gateway " SEQR_VERSION,
                         false, &c->client_reference);
    ok = ok && seqr_copy(opts->terminal_id, true, &c->terminal_id);
    ok = ok && seqr_copy(opts->terminal_password, true, &c->terminal_password);
    ok = ok && seqr_copy(opts->reseller_id, true, &c->reseller_id);
    ok = ok && seqr_copy(opts->reseller_user_id, true, &c->reseller_user_id);
    ok = ok && seqr_copy(opts->reseller_password, true, &c->reseller_password);
    if (!ok)
        goto fail;
    c->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : SEQR_DEFAULT_TIMEOUT_MS;

    static const char *const headers[] = {"Content-Type: text/xml; charset=utf-8",
                                          "SOAPAction: \"\"", "Accept: text/xml",
                                          /* no "Expect: 100-continue" round trip */
                                          "Expect:"};
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        struct curl_slist *l = curl_slist_append(c->headers, headers[i]);
        if (l == NULL)
            goto fail;
        c->headers = l;
    }

    c->share = curl_share_init();
    if (c->share == NULL)
        goto fail;
    CURLSHcode sc = curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, seqr_share_lock);
    if (sc == CURLSHE_OK)
        sc = curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, seqr_share_unlock);
    if (sc == CURLSHE_OK)
        sc = curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
    if (sc == CURLSHE_OK)
        sc = curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    if (sc == CURLSHE_OK)
        sc = curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    if (sc != CURLSHE_OK) {
        log_error("seqr: cannot set up the libcurl share: %s", curl_share_strerror(sc));
        goto fail;
    }
    return c;

fail:
    seqr_client_free(c);
    return NULL;
}

void seqr_client_free(seqr_client *c)
{
    if (c == NULL)
        return;
    for (int i = 0; i < c->n_pool; i++)
        seqr_conn_close(&c->pool[i]);
    c->n_pool = 0;
    for (int i = 0; i < c->n_status_pool; i++)
        curl_easy_cleanup(c->status_pool[i]);
    c->n_status_pool = 0;
    free(c->status_pool);
    seqr_memo_free(c->status_memo);
    if (c->share != NULL) {
        CURLSHcode sc = curl_share_cleanup(c->share);
        if (sc != CURLSHE_OK)
            log_warn("seqr: libcurl share still in use at shutdown: %s", curl_share_strerror(sc));
    }
    curl_slist_free_all(c->headers);
    if (c->share_locks_ready)
        for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
            pthread_mutex_destroy(&c->share_locks[i]);
    if (c->pool_lock_ready)
        pthread_mutex_destroy(&c->pool_lock);
    free(c->url);
    free(c->ca_file);
    free(c->user_agent);
    free(c->channel);
    free(c->client_id);
    free(c->client_reference);
    free(c->terminal_id);
    seqr_free_secret(c->terminal_password);
    free(c->reseller_id);
    free(c->reseller_user_id);
    seqr_free_secret(c->reseller_password);
    free(c);
}

/* Fills ctx for a call as the TERMINALID (o may override it) or the
 * RESELLERUSER principal. Strings in ctx are borrowed from c and o. */
static seqr_err seqr_make_context(const seqr_client *c, const seqr_call_opts *o,
                                  seqr_principal_type type, seqr_context *ctx, const char *op,
                                  seqr_result *res)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->channel = c->channel;
    ctx->client_id = c->client_id;
    ctx->client_reference = c->client_reference;
    if (o != NULL && o->client_reference != NULL && o->client_reference[0] != '\0')
        ctx->client_reference = o->client_reference;
    ctx->principal_type = type;
    if (type == SEQR_PRINCIPAL_RESELLERUSER) {
        ctx->principal_id = c->reseller_id;
        ctx->user_id = c->reseller_user_id;
        ctx->password = c->reseller_password;
        if (ctx->principal_id == NULL || ctx->user_id == NULL || ctx->password == NULL) {
            seqr_message(res,
                         "%s: no reseller principal configured (reseller id, user id and "
                         "password are needed); nothing sent",
                         op);
            return SEQR_ERR_INVALID;
        }
        return SEQR_OK;
    }
    if (o != NULL && o->terminal_id != NULL && o->terminal_id[0] != '\0') {
        ctx->principal_id = o->terminal_id;
        ctx->password = o->terminal_password;
        if (ctx->password == NULL || ctx->password[0] == '\0') {
            seqr_message(res, "%s: terminal %s given without its password; nothing sent", op,
                         o->terminal_id);
            return SEQR_ERR_INVALID;
        }
    } else {
        ctx->principal_id = c->terminal_id;
        ctx->password = c->terminal_password;
    }
    if (ctx->principal_id == NULL || ctx->password == NULL) {
        seqr_message(res, "%s: no terminal id and password configured; nothing sent", op);
        return SEQR_ERR_INVALID;
    }
    return SEQR_OK;
}

/* Maps the end of a transfer. SEQR_OK means an HTTP answer is in x->body (any
 * status; res->http_status is set). */
static seqr_err seqr_transfer_outcome(const seqr_client *c, const char *op, CURL *h, CURLcode rc,
                                      const seqr_xfer *x, seqr_result *res)
{
    long status = 0;
    if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK)
        res->http_status = status;
    if (rc == CURLE_OK)
        return SEQR_OK;
    const char *detail = x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);
    switch (rc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_USE_SSL_FAILED:
        seqr_message(res, "%s: cannot reach SEQR: %s", op, detail);
        return SEQR_ERR_CONNECT;
    case CURLE_OPERATION_TIMEDOUT:
        seqr_message(res, "%s: no answer from SEQR within %ld ms (%s)", op, c->timeout_ms, detail);
        return SEQR_ERR_TIMEOUT;
    case CURLE_WRITE_ERROR:
        if (x->too_large) {
            seqr_message(res, "%s: bad answer from SEQR: larger than %d bytes", op,
                         SEQR_XML_MAX_BYTES);
            return SEQR_ERR_BAD_ANSWER;
        }
        seqr_message(res, "%s: bad answer from SEQR: %s", op, detail);
        return SEQR_ERR_BAD_ANSWER;
    case CURLE_OUT_OF_MEMORY:
    case CURLE_FAILED_INIT:
    case CURLE_BAD_FUNCTION_ARGUMENT:
        seqr_message(res, "%s: libcurl failed: %s", op, detail);
        return SEQR_ERR_INTERNAL;
    default:
        /* Sent (or maybe sent) but no complete answer: the outcome is unknown. */
        seqr_message(res, "%s: bad answer from SEQR: %s", op, detail);
        return SEQR_ERR_BAD_ANSWER;
    }
}

/* After a parser ran on an HTTP answer: anything but HTTP 200 is a bad answer
 * unless it carried a soap:Fault. */
static seqr_err seqr_check_http(const char *op, seqr_err e, seqr_result *res)
{
    if (res->http_status == 200 || e == SEQR_ERR_FAULT)
        return e;
    if (res->http_status == 503) {
        /* SEQR or a proxy in front of it saying the service is down. A proxy
         * answers 503 also after it forwarded the request (the upstream
         * connection broke), so this is not proof that nothing happened. */
        seqr_message(res, "%s: SEQR is unavailable (HTTP %ld)", op, res->http_status);
        return SEQR_ERR_UNAVAILABLE;
    }
    seqr_message(res, "%s: bad answer from SEQR: HTTP %ld without a SOAP fault", op,
                 res->http_status);
    return SEQR_ERR_BAD_ANSWER;
}

/* --- one blocking call --- */

typedef struct {
    seqr_client *c;
    const char *op;
    seqr_result *res;
    seqr_context ctx;
    xmlDocPtr doc;     /* the request, set by the builder */
    seqr_xfer x;       /* the answer */
    const char *extra; /* one more secret to scrub (registerTerminal's password) */
    char why[256];     /* builder's error */
    bool sent;         /* the transfer ran: observed in seqr_call_end */
    int64_t elapsed_us;
    void (*meanwhile)(void *ud); /* seqr_call_opts' */
    void *meanwhile_ud;
} seqr_call;

/* The transfer's total time in microseconds (0 if curl cannot say). */
static int64_t seqr_elapsed_us(CURL *h)
{
    curl_off_t t = 0;
    if (curl_easy_getinfo(h, CURLINFO_TOTAL_TIME_T, &t) != CURLE_OK)
        return 0;
    return (int64_t)t;
}

static seqr_err seqr_call_begin(seqr_call *call, seqr_client *c, const seqr_call_opts *o,
                                const char *op, seqr_principal_type type, seqr_result *res)
{
    memset(call, 0, sizeof *call);
    call->c = c;
    call->op = op;
    call->res = res;
    if (o != NULL) {
        call->meanwhile = o->meanwhile;
        call->meanwhile_ud = o->meanwhile_ud;
    }
    seqr_xfer_init(&call->x);
    seqr_result_reset(res);
    if (c == NULL) {
        seqr_message(res, "%s: no SEQR client; nothing sent", op);
        return SEQR_ERR_INVALID;
    }
    return seqr_make_context(c, o, type, &call->ctx, op, res);
}

/* Takes the builder's verdict; on success POSTs call->doc. SEQR_OK means an
 * HTTP answer is in call->x.body. */
static seqr_err seqr_call_send(seqr_call *call, seqr_err built)
{
    seqr_result *res = call->res;
    seqr_err e = SEQR_OK;
    buf request = BUF_INIT;
    seqr_conn k = {NULL, NULL};

    if (built != SEQR_OK) {
        seqr_message(res, "%s: %s, nothing sent: %s", call->op,
                     built == SEQR_ERR_INVALID ? "invalid request" : "cannot build the request",
                     call->why);
        e = built;
        goto cleanup;
    }
    seqr_envelope_serialize(call->doc, false, &request);
    if (request.len == 0) {
        seqr_message(res, "%s: cannot serialise the request; nothing sent", call->op);
        e = SEQR_ERR_INTERNAL;
        goto cleanup;
    }
    if (log_get_level() >= LOG_LEVEL_DEBUG) {
        buf shown = BUF_INIT;
        seqr_envelope_serialize(call->doc, true, &shown);
        log_debug("seqr %s request: %s", call->op, buf_cstr(&shown));
        buf_free(&shown);
    }
    /* The text is all that is sent: the tree goes now, not after the
     * answer, where freeing it would delay the caller's reply. */
    xmlFreeDoc(call->doc);
    call->doc = NULL;
    if (!seqr_pool_get(call->c, &k) ||
        !seqr_easy_bind(k.easy, buf_cstr(&request), request.len, &call->x)) {
        seqr_message(res, "%s: cannot set up the HTTP transfer; nothing sent", call->op);
        e = SEQR_ERR_INTERNAL;
        goto cleanup;
    }
    CURLcode rc = seqr_conn_perform(&k, call->meanwhile, call->meanwhile_ud);
    call->meanwhile = NULL; /* it ran */
    call->sent = true;
    call->elapsed_us = seqr_elapsed_us(k.easy);
    e = seqr_transfer_outcome(call->c, call->op, k.easy, rc, &call->x, res);
    if (e == SEQR_OK)
        log_debug("seqr %s answer: HTTP %ld, %zu bytes", call->op, res->http_status,
                  call->x.body.len);

cleanup:
    if (k.easy != NULL) {
        seqr_easy_unbind(k.easy);
        seqr_pool_put(call->c, &k);
    }
    buf_free(&request);
    return e;
}

/* Applies the HTTP status check to a parser's verdict. */
static seqr_err seqr_call_parsed(seqr_call *call, seqr_err parsed)
{
    return seqr_check_http(call->op, parsed, call->res);
}

static seqr_err seqr_call_end(seqr_call *call, seqr_err e)
{
    if (call->meanwhile != NULL) /* nothing was sent: it runs all the same */
        call->meanwhile(call->meanwhile_ud);
    call->meanwhile = NULL;
    if (call->sent && call->c->observe != NULL)
        call->c->observe(call->c->observe_ud, call->op, e, call->res->code, call->elapsed_us);
    seqr_scrub_result(call->c, call->res, call->ctx.password);
    if (call->extra != NULL)
        seqr_scrub_result(NULL, call->res, call->extra);
    if (call->doc != NULL)
        xmlFreeDoc(call->doc);
    call->doc = NULL;
    buf_free(&call->x.body);
    return e;
}

/* --- operations --- */

seqr_err seqr_send_invoice(seqr_client *c, const seqr_call_opts *o, const seqr_invoice *inv,
                           const seqr_token_in *tokens, size_t n_tokens,
                           seqr_send_invoice_answer *out, seqr_result *res)
{
    seqr_call call;
    memset(out, 0, sizeof *out);
    seqr_err e = seqr_call_begin(&call, c, o, "sendInvoice", SEQR_PRINCIPAL_TERMINALID, res);
    if (e == SEQR_OK)
        e = seqr_call_send(&call, seqr_envelope_send_invoice(&call.ctx, inv, tokens, n_tokens,
                                                             &call.doc, call.why, sizeof call.why));
    if (e == SEQR_OK)
        e = seqr_call_parsed(&call,
                             seqr_parse_send_invoice(call.x.body.data, call.x.body.len, out, res));
    return seqr_call_end(&call, e);
}

seqr_err seqr_update_invoice(seqr_client *c, const seqr_call_opts *o, const char *invoice_ref,
                             const seqr_invoice *inv, const seqr_token_in *tokens, size_t n_tokens,
                             seqr_result *res)
{
    seqr_call call;
    seqr_err e = seqr_call_begin(&call, c, o, "updateInvoice", SEQR_PRINCIPAL_TERMINALID, res);
    if (e == SEQR_OK)
        e = seqr_call_send(&call, seqr_envelope_update_invoice(&call.ctx, invoice_ref, inv, tokens,
                                                               n_tokens, &call.doc, call.why,
                                                               sizeof call.why));
    if (e == SEQR_OK)
        e = seqr_call_parsed(&call,
                             seqr_parse_update_invoice(call.x.body.data, call.x.body.len, res));
    return seqr_call_end(&call, e);
}

seqr_err seqr_get_payment_status(seqr_client *c, const seqr_call_opts *o, const char *invoice_ref,
                                 int64_t invoice_version, seqr_payment_status *out,
                                 seqr_result *res)
{
    seqr_call call;
    memset(out, 0, sizeof *out);
    seqr_err e = seqr_call_begin(&call, c, o, "getPaymentStatus", SEQR_PRINCIPAL_TERMINALID, res);
    if (e == SEQR_OK)
        e = seqr_call_send(&call,
                           seqr_envelope_get_payment_status(&call.ctx, invoice_ref, invoice_version,
                                                            &call.doc, call.why, sizeof call.why));
    if (e == SEQR_OK)
        e = seqr_call_parsed(
            &call, seqr_parse_get_payment_status(call.x.body.data, call.x.body.len, out, res));
    return seqr_call_end(&call, e);
}

seqr_err seqr_cancel_invoice(seqr_client *c, const seqr_call_opts *o, const char *invoice_ref,
                             seqr_result *res)
{
    seqr_call call;
    seqr_err e = seqr_call_begin(&call, c, o, "cancelInvoice", SEQR_PRINCIPAL_TERMINALID, res);
    if (e == SEQR_OK)
        e = seqr_call_send(&call, seqr_envelope_cancel_invoice(&call.ctx, invoice_ref, &call.doc,
                                                               call.why, sizeof call.why));
    if (e == SEQR_OK)
        e = seqr_call_parsed(&call,
                             seqr_parse_cancel_invoice(call.x.body.data, call.x.body.len, res));
    return seqr_call_end(&call, e);
}

seqr_err seqr_commit_reservation(seqr_client *c, const seqr_call_opts *o, const char *invoice_ref,
                                 int64_t amount, const char *currency, seqr_result *res)
{
    seqr_call call;
    seqr_err e = seqr_call_begin(&call, c, o, "commitReservation", SEQR_PRINCIPAL_TERMINALID, res);
    if (e == SEQR_OK)
        e = seqr_call_send(&call, seqr_envelope_commit_reservation(&call.ctx, invoice_ref, amount,
                                                                   currency, &call.doc, call.why,
                                                                   sizeof call.why));
    if (e == SEQR_OK)
        e = seqr_call_parsed(&call,
                             seqr_parse_commit_reservation(call.x.body.data, call.x.body.len, res));
    return seqr_call_end(&call, e);
}

seqr_err seqr_submit_payment_receipt(seqr_client *c, const seqr_call_opts *o,
                                     const char *ers_reference, const char *mime_type,
                                     const char *receipt_type, const char *receipt_data_b64,
                                     seqr_result *res)
{
    seqr_call call;
    seqr_err e =
        seqr_call_begin(&call, c, o, "submitPaymentReceipt", SEQR_PRINCIPAL_TERMINALID, res);
    if (e == SEQR_OK)
        e = seqr_call_send(&call, seqr_envelope_submit_payment_receipt(
                                      &call.ctx, ers_reference, mime_type, receipt_type,
                                      receipt_data_b64, &call.doc, call.why, sizeof call.why));
    if (e == SEQR_OK)
        e = seqr_call_parsed(
            &call, seqr_parse_submit_payment_receipt(call.x.body.data, call.x.body.len, res));
    return seqr_call_end(&call, e);
}

seqr_err seqr_refund_payment(seqr_client *c, const seqr_call_opts *o, const char *ers_reference,
                             const seqr_invoice *refund, seqr_refund_answer *out, seqr_result *res)
{
    seqr_call call;
    memset(out, 0, sizeof *out);
    seqr_err e = seqr_call_begin(&call, c, o, "refundPayment", SEQR_PRINCIPAL_TERMINALID, res);
    if (e == SEQR_OK)
        e = seqr_call_send(&call,
                           seqr_envelope_refund_payment(&call.ctx, ers_reference, refund, &call.doc,
                                                        call.why, sizeof call.why));
    if (e == SEQR_OK)
        e = seqr_call_parsed(
            &call, seqr_parse_refund_payment(call.x.body.data, call.x.body.len, out, res));
    return seqr_call_end(&call, e);
}

seqr_err seqr_mark_transaction_period(seqr_client *c, const seqr_call_opts *o,
                                      const seqr_param *params, size_t n_params,
                                      char period_id[static 64], seqr_result *res)
{
    seqr_call call;
    period_id[0] = '\0';
    seqr_err e =
        seqr_call_begin(&call, c, o, "markTransactionPeriod", SEQR_PRINCIPAL_RESELLERUSER, res);
    if (e == SEQR_OK)
        e = seqr_call_send(&call, seqr_envelope_mark_transaction_period(&call.ctx, params, n_params,
                                                                        &call.doc, call.why,
                                                                        sizeof call.why));
    if (e == SEQR_OK)
        e = seqr_call_parsed(&call, seqr_parse_mark_transaction_period(
                                        call.x.body.data, call.x.body.len, period_id, res));
    return seqr_call_end(&call, e);
}

seqr_err seqr_execute_report(seqr_client *c, const seqr_call_opts *o, const char *report_id,
                             const char *language, const seqr_param *params, size_t n_params,
                             seqr_report *out, seqr_result *res)
{
    seqr_call call;
    memset(out, 0, sizeof *out);
    seqr_err e = seqr_call_begin(&call, c, o, "executeReport", SEQR_PRINCIPAL_RESELLERUSER, res);
    if (e == SEQR_OK)
        e = seqr_call_send(&call, seqr_envelope_execute_report(&call.ctx, report_id, language,
                                                               params, n_params, &call.doc,
                                                               call.why, sizeof call.why));
    if (e == SEQR_OK) {
        e = seqr_call_parsed(
            &call, seqr_parse_execute_report(call.x.body.data, call.x.body.len, out, res));
        if (e != SEQR_OK)
            seqr_report_free(out);
    }
    return seqr_call_end(&call, e);
}

seqr_err seqr_register_terminal(seqr_client *c, const seqr_call_opts *o,
                                const char *external_terminal_id, const char *password,
                                const char *name, char terminal_id[static 64], seqr_result *res)
{
    seqr_call call;
    terminal_id[0] = '\0';
    seqr_err e = seqr_call_begin(&call, c, o, "registerTerminal", SEQR_PRINCIPAL_RESELLERUSER, res);
    call.extra = password;
    if (e == SEQR_OK)
        e = seqr_call_send(&call, seqr_envelope_register_terminal(&call.ctx, external_terminal_id,
                                                                  password, name, &call.doc,
                                                                  call.why, sizeof call.why));
    if (e == SEQR_OK) {
        e = seqr_call_parsed(&call, seqr_parse_register_terminal(call.x.body.data, call.x.body.len,
                                                                 terminal_id, res));
        if (e != SEQR_OK)
            terminal_id[0] = '\0';
    }
    return seqr_call_end(&call, e);
}

seqr_err seqr_unregister_terminal(seqr_client *c, const seqr_call_opts *o, seqr_result *res)
{
    seqr_call call;
    seqr_err e = seqr_call_begin(&call, c, o, "unregisterTerminal", SEQR_PRINCIPAL_TERMINALID, res);
    if (e == SEQR_OK)
        e = seqr_call_send(&call, seqr_envelope_unregister_terminal(&call.ctx, &call.doc, call.why,
                                                                    sizeof call.why));
    if (e == SEQR_OK)
        e = seqr_call_parsed(
            &call, seqr_parse_unregister_terminal(call.x.body.data, call.x.body.len, res));
    return seqr_call_end(&call, e);
}

seqr_err seqr_assign_seqr_id(seqr_client *c, const seqr_call_opts *o, const char *seqr_id,
                             seqr_result *res)
{
    seqr_call call;
    seqr_err e = seqr_call_begin(&call, c, o, "assignSeqrId", SEQR_PRINCIPAL_TERMINALID, res);
    if (e == SEQR_OK)
        e = seqr_call_send(&call, seqr_envelope_assign_seqr_id(&call.ctx, seqr_id, &call.doc,
                                                               call.why, sizeof call.why));
    if (e == SEQR_OK)
        e = seqr_call_parsed(&call,
                             seqr_parse_assign_seqr_id(call.x.body.data, call.x.body.len, res));
    return seqr_call_end(&call, e);
}

/* --- asynchronous getPaymentStatus --- */

/* The inputs of a getPaymentStatus request, in key order (see
 * seqr_status_cache); the password is SEQR_KEY_PASSWORD. */
#define SEQR_KEY_FIELDS 7
#define SEQR_KEY_PASSWORD 4

/* True when cache was built from exactly these inputs. */
static bool seqr_status_cache_matches(const seqr_status_cache *cache,
                                      const char *const fields[SEQR_KEY_FIELDS])
{
    size_t off = 0;
    for (int i = 0; i < SEQR_KEY_FIELDS; i++) {
        size_t n = strlen(fields[i]) + 1;
        if (n > cache->key_len - off || memcmp(cache->data + off, fields[i], n) != 0)
            return false;
        off += n;
    }
    return off == cache->key_len;
}

/* Clears and frees a buf that held a secret. */
static void seqr_buf_free_secret(buf *b)
{
    if (b->data != NULL) {
        volatile char *p = b->data;
        for (size_t i = 0; i < b->cap; i++)
            p[i] = '\0';
    }
    buf_free(b);
}

void seqr_status_cache_free(seqr_status_cache *cache)
{
    if (cache == NULL)
        return;
    volatile char *p = cache->data;
    for (size_t i = 0; i < cache->key_len + cache->request_len + 1; i++)
        p[i] = '\0';
    free(cache);
}

/* Makes *cache hold the request for ctx, ref and version: kept when its key
 * is the same, rebuilt otherwise. False (and *cache untouched) when the
 * request cannot be built. */
static bool seqr_status_cache_update(const seqr_context *ctx, const char *invoice_ref,
                                     int64_t invoice_version, seqr_status_cache **cache)
{
    bool ok = false;
    buf key = BUF_INIT, request = BUF_INIT;
    xmlDocPtr doc = NULL;
    char why[256], version[32];
    size_t password_off = 0;

    text_int(version, invoice_version); /* every poll: no printf */
    const char *const fields[SEQR_KEY_FIELDS] = {
        ctx->channel ? ctx->channel : "",
        ctx->client_id ? ctx->client_id : "",
        ctx->client_reference ? ctx->client_reference : "",
        ctx->principal_id ? ctx->principal_id : "",
        ctx->password ? ctx->password : "",
        invoice_ref ? invoice_ref : "",
        version,
    };
    if (*cache != NULL && seqr_status_cache_matches(*cache, fields))
        return true;
    if (seqr_envelope_get_payment_status(ctx, invoice_ref, invoice_version, &doc, why,
                                         sizeof why) != SEQR_OK) {
        log_warn("seqr: getPaymentStatus for %s not sent: %s", invoice_ref ? invoice_ref : "(none)",
                 why);
        goto cleanup;
    }
    seqr_envelope_serialize(doc, false, &request);
    if (request.len == 0)
        goto cleanup;
    for (int i = 0; i < SEQR_KEY_FIELDS; i++) {
        if (i == SEQR_KEY_PASSWORD)
            password_off = key.len;
        buf_append(&key, fields[i], strlen(fields[i]) + 1);
    }
    seqr_status_cache *fresh = malloc(sizeof *fresh + key.len + request.len + 1);
    if (fresh == NULL)
        goto cleanup;
    fresh->key_len = key.len;
    fresh->request_len = request.len;
    fresh->password_off = password_off;
    memcpy(fresh->data, key.data, key.len);
    memcpy(fresh->data + key.len, request.data, request.len + 1);
    seqr_status_cache_free(*cache);
    *cache = fresh;
    ok = true;

cleanup:
    if (doc != NULL)
        xmlFreeDoc(doc);
    seqr_buf_free_secret(&key);
    seqr_buf_free_secret(&request);
    return ok;
}

seqr_status_request *seqr_status_request_new_cached(seqr_client *c, const seqr_call_opts *o,
                                                    const char *invoice_ref,
                                                    int64_t invoice_version,
                                                    seqr_status_cache **cache)
{
    seqr_status_request *r = NULL;
    seqr_context ctx;
    seqr_result res;
    bool ok = false;

    seqr_result_reset(&res);
    if (c == NULL || cache == NULL)
        return NULL;
    r = calloc(1, sizeof *r);
    if (r == NULL)
        goto cleanup;
    r->c = c;
    seqr_xfer_init(&r->x);
    if (seqr_make_context(c, o, SEQR_PRINCIPAL_TERMINALID, &ctx, "getPaymentStatus", &res) !=
        SEQR_OK) {
        seqr_scrub_result(c, &res, NULL);
        log_warn("seqr: %s", res.message);
        goto cleanup;
    }
    if (!seqr_status_cache_update(&ctx, invoice_ref, invoice_version, cache))
        goto cleanup;
    r->cache = *cache;
    pthread_mutex_lock(&c->pool_lock);
    if (c->n_status_pool > 0)
        r->easy = c->status_pool[--c->n_status_pool];
    pthread_mutex_unlock(&c->pool_lock);
    if (r->easy == NULL)
        r->easy = seqr_easy_new(c);
    if (r->easy == NULL ||
        !seqr_easy_bind(r->easy, r->cache->data + r->cache->key_len, r->cache->request_len, &r->x))
        goto cleanup;
    if (curl_easy_setopt(r->easy, CURLOPT_PRIVATE, (void *)r) != CURLE_OK)
        goto cleanup;
    ok = true;

cleanup:
    if (!ok) {
        seqr_status_request_free(r);
        r = NULL;
    }
    return r;
}

seqr_status_request *seqr_status_request_new(seqr_client *c, const seqr_call_opts *o,
                                             const char *invoice_ref, int64_t invoice_version)
{
    seqr_status_cache *cache = NULL;
    seqr_status_request *r =
        seqr_status_request_new_cached(c, o, invoice_ref, invoice_version, &cache);
    if (r == NULL) {
        seqr_status_cache_free(cache);
        return NULL;
    }
    r->own_cache = true;
    return r;
}

CURL *seqr_status_request_easy(seqr_status_request *r)
{
    return r ? r->easy : NULL;
}

seqr_err seqr_status_answer(long http_status, const char *body, size_t len,
                            seqr_payment_status *out, seqr_result *res)
{
    res->http_status = http_status;
    return seqr_check_http("getPaymentStatus", seqr_parse_get_payment_status(body, len, out, res),
                           res);
}

/* seqr_status_answer, unless c's memo knows these very bytes (the poll
 * paths: the same ISSUED answer comes back every second). */
static seqr_err seqr_status_answer_memo(seqr_client *c, long http_status, const char *body,
                                        size_t len, seqr_payment_status *out, seqr_result *res)
{
    seqr_memo *m = c != NULL ? c->status_memo : NULL;
    if (seqr_memo_find(m, http_status, body, len, out, res))
        return SEQR_OK;
    seqr_err e = seqr_status_answer(http_status, body, len, out, res);
    seqr_memo_add(m, http_status, body, len, e, out, res);
    return e;
}

uint64_t seqr_client_status_memo_hits(seqr_client *c)
{
    return c != NULL ? seqr_memo_hits(c->status_memo) : 0;
}

seqr_err seqr_status_request_finish(seqr_status_request *r, CURLcode rc, seqr_payment_status *out,
                                    seqr_result *res)
{
    const char *op = "getPaymentStatus";
    memset(out, 0, sizeof *out);
    seqr_result_reset(res);
    if (r == NULL || r->easy == NULL) {
        seqr_message(res, "%s: no request", op);
        return SEQR_ERR_INTERNAL;
    }
    seqr_err e = seqr_transfer_outcome(r->c, op, r->easy, rc, &r->x, res);
    if (e == SEQR_OK)
        e = seqr_status_answer_memo(r->c, res->http_status, r->x.body.data, r->x.body.len, out,
                                    res);
    if (r->c->observe != NULL)
        r->c->observe(r->c->observe_ud, op, e, res->code, seqr_elapsed_us(r->easy));
    seqr_scrub_result(r->c, res, r->cache->data + r->cache->password_off);
    return e;
}

bool seqr_status_cache_prepare(seqr_client *c, const seqr_call_opts *o, const char *invoice_ref,
                               int64_t invoice_version, seqr_status_cache **cache)
{
    seqr_context ctx;
    seqr_result res;
    seqr_result_reset(&res);
    if (c == NULL || cache == NULL)
        return false;
    if (seqr_make_context(c, o, SEQR_PRINCIPAL_TERMINALID, &ctx, "getPaymentStatus", &res) !=
        SEQR_OK) {
        seqr_scrub_result(c, &res, NULL);
        log_warn("seqr: %s", res.message);
        return false;
    }
    return seqr_status_cache_update(&ctx, invoice_ref, invoice_version, cache);
}

const char *seqr_status_cache_request(const seqr_status_cache *cache, size_t *len)
{
    *len = cache->request_len;
    return cache->data + cache->key_len;
}

seqr_err seqr_status_finish_http1(seqr_client *c, const seqr_status_cache *cache,
                                  const seqr_http1_result *hr, seqr_payment_status *out,
                                  seqr_result *res)
{
    const char *op = "getPaymentStatus";
    seqr_err e;
    memset(out, 0, sizeof *out);
    seqr_result_reset(res);
    switch (hr->err) {
    case SEQR_HTTP1_OK:
        e = seqr_status_answer_memo(c, hr->http_status, hr->body, hr->body_len, out, res);
        break;
    case SEQR_HTTP1_ERR_RESOLVE:
    case SEQR_HTTP1_ERR_CONNECT:
    case SEQR_HTTP1_ERR_TLS:
        seqr_message(res, "%s: cannot reach SEQR: %s", op, hr->detail);
        e = SEQR_ERR_CONNECT;
        break;
    case SEQR_HTTP1_ERR_TIMEOUT:
        seqr_message(res, "%s: %s", op, hr->detail);
        e = SEQR_ERR_TIMEOUT;
        break;
    case SEQR_HTTP1_ERR_TOO_LARGE:
        seqr_message(res, "%s: bad answer from SEQR: larger than %d bytes", op, SEQR_XML_MAX_BYTES);
        e = SEQR_ERR_BAD_ANSWER;
        break;
    case SEQR_HTTP1_ERR_SEND:
    case SEQR_HTTP1_ERR_CLOSED:
    case SEQR_HTTP1_ERR_MALFORMED:
        /* Sent (or maybe sent) but no complete answer: the outcome is unknown. */
        seqr_message(res, "%s: bad answer from SEQR: %s", op, hr->detail);
        e = SEQR_ERR_BAD_ANSWER;
        break;
    default:
        seqr_message(res, "%s: the HTTP client failed: %s", op, hr->detail);
        e = SEQR_ERR_INTERNAL;
        break;
    }
    if (c != NULL && c->observe != NULL)
        c->observe(c->observe_ud, op, e, res->code, hr->elapsed_us);
    seqr_scrub_result(c, res, cache != NULL ? cache->data + cache->password_off : NULL);
    return e;
}

void seqr_status_request_free(seqr_status_request *r)
{
    if (r == NULL)
        return;
    if (r->easy != NULL) {
        /* Back to the pool for the next poll; it must not point at r. */
        bool kept = false;
        seqr_easy_unbind(r->easy);
        (void)curl_easy_setopt(r->easy, CURLOPT_PRIVATE, NULL);
        pthread_mutex_lock(&r->c->pool_lock);
        if (r->c->status_pool != NULL && r->c->n_status_pool < SEQR_STATUS_POOL_MAX) {
            r->c->status_pool[r->c->n_status_pool++] = r->easy;
            kept = true;
        }
        pthread_mutex_unlock(&r->c->pool_lock);
        if (!kept)
            curl_easy_cleanup(r->easy);
    }
    buf_free(&r->x.body);
    if (r->own_cache)
        seqr_status_cache_free(r->cache);
    free(r);
}

void seqr_status_request_set_user(seqr_status_request *r, void *user)
{
    if (r != NULL)
        r->user = user;
}

void *seqr_status_request_user(const seqr_status_request *r)
{
    return r ? r->user : NULL;
}

/* --- debug --- */

void seqr_build_get_payment_status(seqr_client *c, const seqr_call_opts *o, const char *ref,
                                   int64_t version, bool redacted, buf *out)
{
    seqr_context ctx;
    seqr_result res;
    xmlDocPtr doc = NULL;
    char why[256];
    if (c == NULL)
        return;
    if (seqr_make_context(c, o, SEQR_PRINCIPAL_TERMINALID, &ctx, "getPaymentStatus", &res) !=
        SEQR_OK)
        return;
    if (seqr_envelope_get_payment_status(&ctx, ref, version, &doc, why, sizeof why) != SEQR_OK)
        return;
    seqr_envelope_serialize(doc, redacted, out);
    xmlFreeDoc(doc);
}
