/* config.h — the daemon's INI configuration (see etc/seqr-gateway.conf and docs/seqr-gateway.8).
 *
 * config_load() reads a file into a config, checking every key: type, range,
 * required-ness, unknown sections and keys. Every problem is reported, not just
 * the first, as "FILE:LINE: [section] key: what is wrong". A config owns all
 * its strings; release with config_free(). Strings are never NULL after a
 * successful load (an unset optional string is ""). */
#ifndef SEQR_CONFIG_H
#define SEQR_CONFIG_H

#include <stdbool.h>

#include "buf.h"

typedef struct {
    /* [http] */
    char *http_listen;             /* default "127.0.0.1" */
    int http_port;                 /* 1..65535, default 8080 */
    char *http_api_key;            /* "" = no key required */
    long http_rotation_overlap_s;  /* after a reload changed api_key, the old one still
                                     works this long; default 300 */
    char *http_public_url;         /* extension: base URL at which SEQR can reach this gateway
                                      for notificationUrl ("" = none) */
    long http_max_body_bytes;      /* extension: request body cap, default 1048576 */
    int http_max_connections;      /* extension: default 512 */
    int http_connection_timeout_s; /* extension: idle client timeout, default 30 */
    int http_max_connections_per_ip; /* extension: default 16 (well below max_connections) */
    int http_request_timeout_s;      /* extension: whole request (body upload), default 60 */
    long http_idempotency_ttl_s;     /* extension: how long Idempotency-Keys are kept, 86400 */
    char *http_allowed_hosts;        /* extension: Host names accepted besides IP literals,
                                        localhost and listen (comma-separated, "" = none) */
    int http_max_streams; /* extension: long-polls and event streams open at once, default 256 */

    /* [seqr] */
    char *seqr_url;              /* required; http(s):// URL */
    char *seqr_terminal_id;      /* required */
    char *seqr_password;         /* required (secret) */
    char *seqr_client_id;        /* default "Company Name" */
    char *seqr_client_reference; /* default "seqr-gateway " VERSION, <= 32 chars */
    char *seqr_channel;          /* default "WS" */
    long seqr_timeout_ms;        /* 100..600000, default 15000 */
    char *seqr_ca_file;          /* "" = system CAs; must be a readable file when set */

    /* [reseller] (all optional; needed for /periods, /reports, /terminals) */
    char *reseller_id;
    char *reseller_user_id;
    char *reseller_password; /* secret */

    /* [store] */
    char *store_path; /* default "/var/lib/seqr-gateway/gateway.db" */
    char *store_url;  /* secret: postgresql://... instead of path ("" = SQLite at path) */
    char *store_key_file; /* extension: key encrypting terminal passwords; "" = path + ".key" */

    /* [poller] */
    long poller_interval_ms;   /* 100..60000, default 1000 */
    long poller_invoice_ttl_s; /* 10..604800, default 900 */
    bool poller_auto_receipt;  /* default true */
    int poller_max_in_flight;  /* extension: concurrent getPaymentStatus, default 256 */
    long poller_poll_timeout_ms; /* extension: one getPaymentStatus, 100..5000, default 3000 */
    char *poller_http_client;    /* extension: "native" (default) or "curl": the poll's HTTP client */

    /* [invoice] defaults for the invoice fields SEQR requires when the shop gives none */
    char *invoice_title;      /* "" in the file = [receipt] store_name */
    char *invoice_cashier_id; /* default "web"; must not be empty */
    char *invoice_footer;     /* default "Thank you for your purchase"; must not be empty */

    /* [receipt] the seller on the rendered receipt */
    char *receipt_store_name; /* "" in the file = [seqr] client_id */
    char *receipt_address;    /* "" = not shown */
    char *receipt_org_number; /* VAT/organisation number; "" = not shown */

    /* [checkout] the buyer's payment page, GET /pay/{token} */
    char *checkout_app_scheme;     /* "SEQR" (default) or "SEQR-DEBUG" (test servers) */
    char *checkout_frame_ancestors; /* CSP frame-ancestors: "'none'" (default), "'self'" or
                                       origins (https://shop.example ...) that may embed it */
    /* [webhooks] (extension) events pushed to the shop, see webhook.h */
    char *webhooks_url;                    /* "" = only per-invoice URLs */
    char *webhooks_secret;                 /* whsec_<base64> (secret); "" = no deliveries */
    long webhooks_timeout_ms;              /* per attempt, default 10000 */
    int webhooks_max_in_flight;            /* requests at once, default 64 */
    long webhooks_retry_for_s;             /* give up after, default 259200 (3 days) */
    long webhooks_retry_max_interval_s;    /* backoff cap, default 3600 */

    /* [log] (extension) */
    char *log_level; /* error|warn|info|debug, default "info" */
} config;

/* Fills cfg with every default (required strings are ""). */
void config_defaults(config *cfg);

/* Loads path into cfg (which it first fills with defaults). Returns the number
 * of problems found: 0 means cfg is valid. Each problem is appended to errors
 * as one line "FILE:LINE: [section] key: message\n" (LINE 0 for a missing
 * required key, or for a file that cannot be read). Also appends (to warnings,
 * which may be NULL) a line when the file holds a password or api_key and is
 * readable by group or others. On failure cfg still must be config_free()d. */
int config_load(const char *path, config *cfg, buf *errors, buf *warnings);

void config_free(config *cfg);

/* Fills names[] with "[section] key" of every key whose value differs
 * between a and b, at most max; returns how many differ. */
int config_diff(const config *a, const config *b, char names[][64], int max);

#endif
