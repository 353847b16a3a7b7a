/* seqr/seqr.h — typed SEQR merchant SOAP client (the fixtures in tests/fixtures show each call).
 *
 * One function per operation. Each builds the request with libxml2's tree API in
 * the documented element order, sends it over libcurl (blocking), and parses the
 * answer namespace-aware into a plain struct. This module knows nothing about
 * HTTP handlers or SQLite.
 *
 * Ownership: request structs are borrowed (the caller keeps them); answer
 * structs use fixed-size char arrays and are owned by the caller (no freeing,
 * except seqr_report_free()). A seqr_client is thread-safe: any number of
 * threads may call blocking operations on it at once, and connections are
 * reused between calls.
 *
 * Errors: every call returns a seqr_err and fills a seqr_result with the detail
 * (resultCode/description from SEQR, faultcode/faultstring, HTTP status, and a
 * human message that never contains a password). */
#ifndef SEQR_SEQR_H
#define SEQR_SEQR_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "../buf.h"
#include "codes.h"
#include "http1.h"

typedef enum {
    SEQR_OK = 0,          /* answered and resultCode == 0 */
    SEQR_ERR_RESULT,      /* answered with resultCode != 0 (see result.code) */
    SEQR_ERR_FAULT,       /* soap:Fault (usually HTTP 500) */
    SEQR_ERR_BAD_ANSWER,  /* HTTP status/body not a valid answer: garbage, truncated, too large */
    SEQR_ERR_CONNECT,     /* could not connect / resolve / TLS handshake or verification failed */
    SEQR_ERR_UNAVAILABLE, /* HTTP 503 (SEQR, or a proxy in front of it, which may have
                             forwarded the request): for a call that moves money the
                             outcome is unknown; a read may simply be retried */
    SEQR_ERR_TIMEOUT,     /* no complete answer within timeout_ms */
    SEQR_ERR_INVALID,     /* the request itself is invalid (caller bug): nothing sent */
    SEQR_ERR_INTERNAL     /* out of memory, curl setup failure */
} seqr_err;

/* A short English name for err ("connect", "timeout", ...). Static. */
const char *seqr_err_name(seqr_err err);

typedef struct {
    int code;               /* SEQR resultCode; -1 when there was no answer */
    char description[128];  /* SEQR resultDescription */
    char fault_code[64];    /* soap:Fault faultcode */
    char fault_string[512]; /* soap:Fault faultstring */
    long http_status;       /* 0 when no HTTP answer */
    char message[512];      /* human summary, safe to log and show */
} seqr_result;

/* Invoice status as SEQR reports it. */
typedef enum {
    SEQR_STATUS_UNKNOWN = 0,
    SEQR_STATUS_ISSUED,
    SEQR_STATUS_PENDING_ISSUER_ACKNOWLEDGE,
    SEQR_STATUS_RESERVED,
    SEQR_STATUS_PARTIALLY_PAID,
    SEQR_STATUS_PAID,
    SEQR_STATUS_CANCELED,
    SEQR_STATUS_FAILED
} seqr_status;

/* "ISSUED" ... ; "UNKNOWN" for SEQR_STATUS_UNKNOWN. Static. */
const char *seqr_status_name(seqr_status s);
/* Parses a status name; SEQR_STATUS_UNKNOWN when unknown. */
seqr_status seqr_status_parse(const char *name);
/* True for PAID, CANCELED, FAILED. */
bool seqr_status_is_final(seqr_status s);

typedef struct {
    const char *url;              /* endpoint, http:// or https:// */
    const char *ca_file;          /* NULL/"" = system CA store; TLS always verified */
    long timeout_ms;              /* per call, connect + answer; <= 0 means 30 s */
    const char *user_agent;       /* e.g. "seqr-gateway/0.1.0" */
    const char *channel;          /* "WS" */
    const char *client_id;        /* "Company Name" */
    const char *client_reference; /* default clientReference, <= 32 chars */
    const char *terminal_id;      /* TERMINALID principal */
    const char *terminal_password;
    const char *reseller_id; /* RESELLERUSER principal (may be NULL/"") */
    const char *reseller_user_id;
    const char *reseller_password;
    /* Optional: told of every SOAP call that went out (blocking calls and
     * seqr_status_request_finish): operation, outcome, SEQR resultCode (-1
     * when there was none) and the transfer's duration in microseconds.
     * Called on the calling thread, so it must be thread-safe. */
    void (*observe)(void *ud, const char *op, seqr_err err, int result_code, int64_t elapsed_us);
    void *observe_ud;
} seqr_client_options;

typedef struct seqr_client seqr_client;

/* Creates a client; copies every option string. NULL on failure. Call
 * curl_global_init() and xmlInitParser() first (main does). */
seqr_client *seqr_client_new(const seqr_client_options *opts);
/* Frees c; no call may be running and every seqr_status_request of c must
 * have been freed. NULL is fine. */
void seqr_client_free(seqr_client *c);

/* Per-call overrides (pass NULL for none). Borrowed. */
typedef struct {
    const char *client_reference;  /* overrides the default clientReference */
    const char *terminal_id;       /* act as this TERMINALID ... */
    const char *terminal_password; /* ... with this password */
    /* When not NULL, called exactly once with meanwhile_ud on the calling
     * thread: while SEQR answers (once the request is on its way), or, when
     * nothing was sent or the answer came at once, before the call returns.
     * The caller's work that does not need the answer overlaps SEQR's. */
    void (*meanwhile)(void *ud);
    void *meanwhile_ud;
} seqr_call_opts;

typedef struct {
    const char *description; /* itemDescription, may be NULL */
    const char *ean;         /* itemEAN */
    const char *sku;         /* itemSKU */
    const char *unit;        /* itemUnit */
    int64_t quantity_milli;  /* itemQuantity in thousandths (2 -> 2000); required */
    bool has_tax_rate;
    int tax_rate;  /* itemTaxRate, integer percent */
    int64_t total; /* itemTotalAmount, minor units; required */
    bool has_unit_price;
    int64_t unit_price; /* itemUnitPrice */
    bool has_discount;
    int64_t discount; /* itemDiscount */
} seqr_invoice_row;

typedef struct {
    const char *payment_mode; /* NULL = "IMMEDIATE_DEBIT" */
    const char *ack_mode;     /* NULL = "NO_ACKNOWLEDGMENT" */
    time_t issue_date;        /* 0 = now */
    const char *title;
    const char *client_invoice_id;
    const seqr_invoice_row *rows;
    size_t n_rows;
    int64_t total;        /* totalAmount, minor units */
    const char *currency; /* ISO 4217, used for every amount */
    const char *cashier_id;
    const char *footer;
    const char *back_url; /* backURL */
    const char *notification_url;
    int commit_reservation_timeout; /* seconds; 0 = omitted */
} seqr_invoice;

typedef struct {
    const char *description;
    const char *id;
    int status; /* 0 pending, 1 used, 90 blocked, 99 invalid */
    const char *value;
} seqr_token_in;

/* --- answers --- */

typedef struct {
    char invoice_reference[64];
    char invoice_qr_code[256];
} seqr_send_invoice_answer;

#define SEQR_MAX_TOKENS 8
typedef struct {
    char description[128];
    char id[64];
    int status;
    char value[128];
} seqr_token;

typedef struct {
    bool present;
    char terminal_id[64];
    char payment_date[64];
    char invoice_reference[64];
    char payment_reference[64];
    char payer_terminal_id[64];
    char receiver_name[128];
    char title[256];
    char client_invoice_id[128];
    bool has_total;
    int64_t total;
    char currency[4];
} seqr_receipt;

typedef struct {
    seqr_status status;
    char status_text[40]; /* as sent, even when unknown to us */
    int64_t version;
    char ers_reference[64]; /* PAID only, else "" */
    seqr_receipt receipt;
    seqr_token tokens[SEQR_MAX_TOKENS];
    int n_tokens;
} seqr_payment_status;

typedef struct {
    char ers_reference[64]; /* of the refund */
} seqr_refund_answer;

typedef struct {
    char *title; /* malloc'd, may be NULL */
    char *mime_type;
    char *content_string; /* as sent */
    char *content;        /* base64, as sent */
} seqr_report;
void seqr_report_free(seqr_report *r);

typedef struct {
    const char *key;
    const char *value;
} seqr_param;

/* --- operations (blocking) ---
 * Each returns SEQR_OK on resultCode 0, otherwise an error with res filled. res
 * is always filled (code -1 when SEQR did not answer). */

seqr_err seqr_send_invoice(seqr_client *c, const seqr_call_opts *o, const seqr_invoice *inv,
                           const seqr_token_in *tokens, size_t n_tokens,
                           seqr_send_invoice_answer *out, seqr_result *res);
seqr_err seqr_update_invoice(seqr_client *c, const seqr_call_opts *o, const char *invoice_ref,
                             const seqr_invoice *inv, const seqr_token_in *tokens, size_t n_tokens,
                             seqr_result *res);
seqr_err seqr_get_payment_status(seqr_client *c, const seqr_call_opts *o, const char *invoice_ref,
                                 int64_t invoice_version, seqr_payment_status *out,
                                 seqr_result *res);
seqr_err seqr_cancel_invoice(seqr_client *c, const seqr_call_opts *o, const char *invoice_ref,
                             seqr_result *res);
seqr_err seqr_commit_reservation(seqr_client *c, const seqr_call_opts *o, const char *invoice_ref,
                                 int64_t amount, const char *currency, seqr_result *res);
/* mime_type, receipt_type and receipt_data_b64 (base64) are all required. */
seqr_err seqr_submit_payment_receipt(seqr_client *c, const seqr_call_opts *o,
                                     const char *ers_reference, const char *mime_type,
                                     const char *receipt_type, const char *receipt_data_b64,
                                     seqr_result *res);
/* refund: an invoice whose totalAmount is the amount refunded (title,
 * client_invoice_id, cashier_id optional; rows none). */
seqr_err seqr_refund_payment(seqr_client *c, const seqr_call_opts *o, const char *ers_reference,
                             const seqr_invoice *refund, seqr_refund_answer *out, seqr_result *res);
/* Reseller principal. params may be NULL/0 (e.g. TERMINALID for per-terminal). */
seqr_err seqr_mark_transaction_period(seqr_client *c, const seqr_call_opts *o,
                                      const seqr_param *params, size_t n_params,
                                      char period_id[static 64], seqr_result *res);
seqr_err seqr_execute_report(seqr_client *c, const seqr_call_opts *o, const char *report_id,
                             const char *language, const seqr_param *params, size_t n_params,
                             seqr_report *out, seqr_result *res);
seqr_err seqr_register_terminal(seqr_client *c, const seqr_call_opts *o,
                                const char *external_terminal_id, const char *password,
                                const char *name, char terminal_id[static 64], seqr_result *res);
/* TERMINALID principal of the terminal itself: pass it in o. */
seqr_err seqr_unregister_terminal(seqr_client *c, const seqr_call_opts *o, seqr_result *res);
seqr_err seqr_assign_seqr_id(seqr_client *c, const seqr_call_opts *o, const char *seqr_id,
                             seqr_result *res);

/* --- asynchronous getPaymentStatus, for the poller ---
 * seqr_status_request_new() builds the request and a ready libcurl easy handle
 * (with CURLOPT_PRIVATE set to the request). Add seqr_status_request_easy(r) to
 * a CURLM; when the multi reports it done, call seqr_status_request_finish()
 * with the CURLcode, then remove the easy handle from the multi and free r. */
typedef struct seqr_status_request seqr_status_request;
seqr_status_request *seqr_status_request_new(seqr_client *c, const seqr_call_opts *o,
                                             const char *invoice_ref, int64_t invoice_version);
CURL *seqr_status_request_easy(seqr_status_request *r);
seqr_err seqr_status_request_finish(seqr_status_request *r, CURLcode rc, seqr_payment_status *out,
                                    seqr_result *res);
/* Frees r and its easy handle (remove that from the CURLM first). NULL is fine. */
void seqr_status_request_free(seqr_status_request *r);

/* The same request, kept serialised between polls of one invoice: *cache
 * (NULL at first; the caller owns it) holds the request last built, with
 * every input it was built from (channel, clientId, clientReference,
 * terminal id and password, invoice reference and version). It is reused
 * while they are all the same and rebuilt as soon as one differs, so a
 * changed password goes out with the very next call. A NULL and an empty
 * input count as the same (the client's own strings never change).
 * The cache must outlive the request made from it, and must not be passed
 * to another call while that request lives (a rebuild frees the body being
 * sent). It holds the password: free it with seqr_status_cache_free(),
 * which clears it first, when the invoice is no longer polled. */
typedef struct seqr_status_cache seqr_status_cache;
seqr_status_request *seqr_status_request_new_cached(seqr_client *c, const seqr_call_opts *o,
                                                    const char *invoice_ref,
                                                    int64_t invoice_version,
                                                    seqr_status_cache **cache);
/* Clears and frees a cache. NULL is fine. */
void seqr_status_cache_free(seqr_status_cache *cache);
/* An opaque pointer the caller attaches to a request (the poller's entry). */
void seqr_status_request_set_user(seqr_status_request *r, void *user);
void *seqr_status_request_user(const seqr_status_request *r);

/* Turns the HTTP answer to a getPaymentStatus into status and result, for
 * both clients of the poll path: parses body (len bytes), then anything but
 * HTTP 200 without a soap:Fault is a bad answer (503: unavailable). Does not
 * scrub or observe (the callers do). */
seqr_err seqr_status_answer(long http_status, const char *body, size_t len,
                            seqr_payment_status *out, seqr_result *res);

/* --- getPaymentStatus over the poll path's own HTTP client (http1.h) ---
 * seqr_status_cache_prepare() makes *cache hold the request (as
 * seqr_status_request_new_cached() does; false when it cannot be built, with
 * a warning logged); POST seqr_status_cache_request() with seqr_http1_post()
 * and hand the finished call to seqr_status_finish_http1(), which maps it to
 * the same seqr_err values the libcurl path gives, calls the observe hook and
 * scrubs the passwords from res. */
bool seqr_status_cache_prepare(seqr_client *c, const seqr_call_opts *o, const char *invoice_ref,
                               int64_t invoice_version, seqr_status_cache **cache);
/* The serialised request held by cache (borrowed from it). */
const char *seqr_status_cache_request(const seqr_status_cache *cache, size_t *len);
seqr_err seqr_status_finish_http1(seqr_client *c, const seqr_status_cache *cache,
                                  const seqr_http1_result *hr, seqr_payment_status *out,
                                  seqr_result *res);
/* Both finishers above (seqr_status_request_finish, seqr_status_finish_http1)
 * parse an answer only once: the same bytes again (an ISSUED answer names no
 * invoice) give what their parse gave (seqr/memo.h). How many answers were
 * recognised so, since seqr_client_new. */
uint64_t seqr_client_status_memo_hits(seqr_client *c);

/* --- for tests and debug logs --- */
/* Builds the getPaymentStatus envelope without sending it (redacted if asked). */
void seqr_build_get_payment_status(seqr_client *c, const seqr_call_opts *o, const char *ref,
                                   int64_t version, bool redacted, buf *out);

#endif
