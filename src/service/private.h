/* service/private.h — what the files of the service share; nothing outside
 * src/service/ includes it. The service is split by use case: core.c (the
 * service object, call options, idempotency and notification checks),
 * invoices.c (create, read, update, cancel, commit, list, status answers),
 * receipts.c, refunds.c (refunds and the settlement of outcomes in doubt),
 * terminals.c (reseller: terminals, periods, reports), json.c (the
 * contract's JSON rendering) and errors.c (SEQR and store errors mapped to
 * the contract's). service.h is the public interface. */
#ifndef SEQR_SERVICE_PRIVATE_H
#define SEQR_SERVICE_PRIVATE_H

#include <stddef.h>

#include "service.h"

/* executeReport REPORT_NOT_READY: how often and how far apart to ask again. */
#define SERVICE_REPORT_TRIES 4
#define SERVICE_REPORT_WAIT_MS 1500

struct service {
    const config *cfg;
    store *st;
    seqr_client *seqr;
    service_pending_fn pending_fn;
    void *pending_ud;
};

typedef struct {
    const char *title;
    const char *client_invoice_id;
    const char *cashier_id;
    const char *footer;
    char own_id[32];
    char term_name[128];
    char term_cashier[128];
} service_required;

/* --- checkout.c --- */

/* The invoice's payment page, GET /pay/{token}: absolute under [http]
 * public_url when set, else a path; null for an invoice without a token
 * (created before schema 7) or never sent to SEQR. */
json_t *service_payment_page_url(service *svc, const store_invoice *inv);

/* --- core.c --- */

/* Fills out with n random bytes as lower-case hex (out holds 2n+1). */
void service_random_hex(char *out, size_t nbytes);

/* --- errors.c --- */

/* For a call that moves money (sendInvoice, refundPayment): true when the
 * request may have reached SEQR although no valid answer came back. Only a
 * refusal before sending (connect, TLS, invalid) or a definite answer (result
 * code, SOAP fault) means it did not happen. */
bool service_outcome_unknown(seqr_err e);
void service_store_error(api_error *err, store_err e, const char *what);
/* A store write failed after SEQR had acted: logs it as an error and fills
 * err (500 store_error) with what SEQR did (fmt..., a sentence such as
 * "SEQR canceled invoice 123") and what the gateway does about it (after),
 * so the failure is never silent. */
void service_unrecorded(api_error *err, store_err e, const char *after, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* --- invoices.c --- */

bool service_load(service *svc, const char *ref, store_invoice *out, api_error *err);
bool service_opts_for(service *svc, const store_invoice *inv, seqr_call_opts *o,
                      char pw[static 128], api_error *err);
/* The seller's name: [receipt] store_name, else clientId (config_load fills
 * it in; a config from config_defaults() alone may leave it empty). */
const char *service_store_name(const service *svc);
void service_required_fields(service *svc, const char *terminal_id, int64_t local_id,
                             const char *title, const char *client_invoice_id,
                             const char *cashier_id, const char *footer, service_required *out);

/* --- json.c --- */

json_t *service_time_json(int64_t ms);
json_t *service_str_or_null(const char *s);
/* Rewrites o[key], minor units from the store, as a decimal string. */
void service_json_money(json_t *o, const char *key);
/* Rewrites o[key], milliseconds from the store, as an ISO time (or null). */
void service_json_time(json_t *o, const char *key);

#endif
