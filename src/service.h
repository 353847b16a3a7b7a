/* service.h — one function per use case of the gateway: create, read, refresh,
 * update, cancel, commit, receipt, refund, reconciliation, terminals.
 *
 * The service is the only place that talks to both the store and SEQR. It
 * follows "write before you call": the intent is stored before any SOAP call
 * that creates or moves money, and the outcome after it. HTTP handlers and
 * the poller call in here; nothing in here knows about HTTP requests.
 *
 * Every use case returns true on success, or false with err filled in the
 * contract's shape (HTTP status, code, field, SEQR result). A store_invoice
 * handed out must be released with store_invoice_clear(). Thread-safe. */
#ifndef SEQR_SERVICE_H
#define SEQR_SERVICE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "api_error.h"
#include "backup.h"
#include "config.h"
#include "invoice.h"
#include "seqr/seqr.h"
#include "store.h"

typedef struct service service;

/* Called (from the creating thread) whenever an invoice starts needing polls. */
typedef void (*service_pending_fn)(void *ud, const store_invoice *inv);

/* cfg, st and seqr are borrowed and must outlive the service. */
service *service_new(const config *cfg, store *st, seqr_client *seqr);
void service_free(service *svc);
void service_set_pending_hook(service *svc, service_pending_fn fn, void *ud);

/* Call options for an invoice of terminal_id ("" = the configured terminal):
 * fills o, with the password copied into pw. False if the terminal is unknown. */
bool service_call_opts(service *svc, const char *terminal_id, seqr_call_opts *o,
                       char pw[static 128]);

/* The contract's invoice object (caller decrefs). */
json_t *service_invoice_json(service *svc, const store_invoice *inv);
/* The same with the invoice's document already parsed (borrowed; it must be
 * what inv->doc_json holds, as service_create_invoice() stored it): the
 * answer to POST /invoices does not parse again what it just wrote. */
json_t *service_invoice_json_doc(service *svc, const store_invoice *inv, json_t *doc);
/* Sets again, in o (such a document), the members that follow the invoice's
 * send and state: invoiceReference, status, version, qrCode, seqrUrl,
 * paymentPageUrl, updatedAt, polling. */
void service_invoice_json_state(service *svc, const store_invoice *inv, json_t *o);

/* Sends the invoice to SEQR, writing the intent before and the outcome
 * after the call (out owns the stored row on success). With answer not
 * NULL, *answer is then the contract's invoice object for out (caller
 * decrefs), built while SEQR answers: only what the send set is filled in
 * after it. */
bool service_create_invoice(service *svc, const invoice_input *in, store_invoice *out,
                            json_t **answer, api_error *err);
bool service_get_invoice(service *svc, const char *ref, store_invoice *out, api_error *err);
/* Calls getPaymentStatus now, stores the answer, sends the automatic receipt. */
bool service_refresh_status(service *svc, const char *ref, store_invoice *out, api_error *err);
bool service_update_invoice(service *svc, const char *ref, const invoice_input *in,
                            store_invoice *out, api_error *err);
bool service_cancel_invoice(service *svc, const char *ref, store_invoice *out, api_error *err);
/* Sends submitPaymentReceipt for a PAID invoice. With mime_type, receipt_type
 * and data_b64 all NULL the gateway renders its own receipt (text/html,
 * PAYMENT_RECEIPT, see receipt.h); otherwise all three are required (422
 * missing_field naming the first one missing). What was sent is stored. */
bool service_submit_receipt(service *svc, const char *ref, const char *mime_type,
                            const char *receipt_type, const char *data_b64, store_invoice *out,
                            api_error *err);
/* Appends the HTML receipt submitted for invoice ref to html: 404 unknown
 * invoice, 409 invalid_state (not PAID), receipt_not_submitted (none accepted
 * yet), receipt_not_html (the shop submitted another type). */
bool service_receipt_html(service *svc, const char *ref, buf *html, api_error *err);
/* *refund receives the refund object (caller decrefs). */
bool service_refund(service *svc, const char *ref, int64_t amount, const char *title,
                    json_t **refund, api_error *err);
/* Settles the invoice of local id whose sendInvoice outcome is unknown, as
 * the operator found it in SEQR's reconciliation report: with reference (SEQR
 * has the invoice: it is polled from now on, and canceled when it has expired
 * unpaid) or with NULL (SEQR has none). 404 for no such id, 409
 * invoice_not_in_doubt when its outcome is known, 409 reference_in_use when
 * another invoice has the reference. */
bool service_invoice_resolve(service *svc, int64_t id, const char *reference, api_error *err);
/* Settles refund refund_id of invoice ref whose outcome is unknown, as the
 * operator found it in SEQR's reconciliation report: happened (done; the
 * amount stays refunded; ers_reference may be NULL) or not (failed; the
 * amount is released and refunds are possible again). 404 for an unknown
 * invoice or refund, 409 refund_not_in_doubt when its outcome is known. *out
 * receives the invoice afterwards (caller clears it). */
bool service_refund_resolve(service *svc, const char *ref, int64_t refund_id, bool happened,
                            const char *ers_reference, store_invoice *out, api_error *err);
/* Invoices and refunds whose outcome is unknown (see store_unknown_list), money
 * and times formatted as in invoices; NULL with err set if the store fails.
 * Caller decrefs. */
json_t *service_unknown_outcomes(service *svc, api_error *err);
bool service_commit(service *svc, const char *ref, bool has_amount, int64_t amount,
                    store_invoice *out, api_error *err);
/* Lists invoices (see store_invoice_list); *result receives {"invoices", "next"}. */
bool service_list_invoices(service *svc, const char *status, int64_t after, int limit,
                           json_t **result, api_error *err);

/* Reconciliation (reseller principal). terminal_id may be NULL/"". */
bool service_mark_period(service *svc, const char *terminal_id, char period_id[static 64],
                         api_error *err);
/* Retries REPORT_NOT_READY a few times (bounded), then 503 with retry_after_s. */
bool service_report(service *svc, const char *report_id, const char *language,
                    const seqr_param *params, size_t n_params, seqr_report *out, api_error *err);

/* Points of sale. password may be NULL/"" (a strong one is generated).
 * cashier_id (may be NULL/"") is the terminal's default cashierId; its name is
 * the default title of its invoices. */
bool service_register_terminal(service *svc, const char *external_id, const char *name,
                               const char *password, const char *cashier_id,
                               char terminal_id[static 64], api_error *err);
bool service_assign_seqr_id(service *svc, const char *terminal_id, const char *seqr_id,
                            api_error *err);
bool service_unregister_terminal(service *svc, const char *terminal_id, api_error *err);
/* The SEQR ID assigned to a registered terminal (404 unknown, 409 none yet). */
bool service_terminal_seqr_id(service *svc, const char *terminal_id, char seqr_id[static 128],
                              api_error *err);

/* --- Idempotency-Key bookkeeping (see store_idem_claim; keys expire after
 * [http] idempotency_ttl_s) --- */
store_err service_idem_claim(service *svc, const char *scope, const char *key,
                             const char *request_hash, bool *same_request, int *status,
                             char **response);
void service_idem_finish(service *svc, const char *scope, const char *key, int status,
                         const char *response);
void service_idem_release(service *svc, const char *scope, const char *key);

/* An online backup of the database beside it (see backup.h). */
bool service_backup(service *svc, backup_result *out, buf *err);
/* Whether the store is a PostgreSQL database ([store] url), which the
 * backup above does not copy: pg_dump and base backups do. */
bool service_store_is_postgresql(const service *svc);
/* Current Unix time in milliseconds (the store's clock). */
int64_t service_now_ms(void);

/* For /healthz: intents of unknown outcome; false when the database fails. */
bool service_counts(service *svc, int64_t *unknown);
/* A payment page token is "<reference>.<secret>": the invoice's SEQR
 * reference (1 to 63 of [0-9A-Za-z_-]; the buyer sees it in the QR code
 * anyway) and 128 random bits as 32 lower-case hex digits, compared in
 * constant time. Tokens made before schema 9 are the 32 digits alone.
 * SERVICE_PAY_TOKEN_MAX: the longest, without the NUL. */
#define SERVICE_PAY_TOKEN_MAX (63 + 1 + 32)
/* Whether the len bytes at t have a token's shape (nothing is looked up). */
bool service_pay_token_valid(const char *t, size_t len);
/* The invoice whose payment page token is token (GET /pay/{token}); false
 * when there is none (or the store failed, which is logged). */
bool service_invoice_by_pay_token(service *svc, const char *token, store_invoice *out);
/* Checks a notification token for an invoice given as SEQR reference or
 * "gw-<local id>"; on success copies the SEQR reference into ref_out. */
bool service_check_notify(service *svc, const char *ref, const char *token,
                          char ref_out[static 64]);

/* --- for the poller --- */

/* Stores a status answer for ref. *final tells whether polling can stop;
 * *needs_receipt whether an automatic receipt is due now. Returns false when
 * storing it failed (*final is then false: the answer must be stored again,
 * so keep polling and do not take the next identical answer as known). */
bool service_apply_status(service *svc, const char *ref, const seqr_payment_status *ps, bool *final,
                          bool *needs_receipt);
/* Sends the automatic (rendered) receipt for a PAID invoice if not yet sent. */
bool service_auto_receipt(service *svc, const char *ref, api_error *err);
/* Cancels an invoice unpaid past its TTL. */
bool service_expire(service *svc, const char *ref, api_error *err);
/* Stops polling an invoice SEQR no longer knows (result 54). False when
 * storing that failed (keep polling it). */
bool service_stop_polling(service *svc, const char *ref, const char *why);

/* Maps a failed SEQR call into err (503 unreachable, 504 timeout, 502 bad
 * answer/fault, resultCode via the code table). op names the operation. */
void service_seqr_error(api_error *err, seqr_err e, const seqr_result *res, const char *op);

/* --- events (service/events.c): the outbox, for the feed, the streams and
 * the operator (see store.h "events") --- */
store_err service_events_after(service *svc, int64_t after, int64_t invoice_id, int limit,
                               store_event_fn fn, void *ud);
/* Queues an event for delivery again: STORE_NOT_FOUND for no such event. */
store_err service_event_redeliver(service *svc, int64_t event_id);
store_err service_events_backlog(service *svc, int64_t *count, int64_t *oldest_at);
store_err service_delivery_list(service *svc, int limit, char **json);
/* Whether the invoice of local id is final (PAID, CANCELED, FAILED, or its
 * send rejected); true also when it cannot be read (nothing more to wait for). */
bool service_invoice_final(service *svc, int64_t invoice_id);

#endif
