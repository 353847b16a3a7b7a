/* seqr/envelope.h — request envelopes for the SEQR merchant SOAP API.
 *
 * One builder per operation. Each checks its input, then builds the complete
 * SOAP 1.1 envelope with libxml2's tree API (user text is escaped by the library)
 * in the element order of the fixtures (tests/fixtures):
 *
 *   <soapenv:Envelope><soapenv:Header/><soapenv:Body>
 *     <ext:{operation}>            (namespace SEQR_XML_NS)
 *       <context>...</context>     (unqualified children from here on)
 *       ...operation fields...
 *
 * Optional fields that are NULL (or 0 where documented) are omitted.
 *
 * Usage:
 *   seqr_context ctx = {.channel = "WS", .client_id = "Example Shop AB", ...};
 *   xmlDocPtr doc = NULL;
 *   char err[256];
 *   if (seqr_envelope_cancel_invoice(&ctx, "1397222701693", &doc, err, sizeof err) != SEQR_OK)
 *       ... err says what is wrong; nothing was built ...
 *   seqr_envelope_serialize(doc, false, &body);   (or true for a log dump)
 *   xmlFreeDoc(doc);
 *
 * Every builder returns SEQR_OK and sets *out (caller frees with xmlFreeDoc()),
 * SEQR_ERR_INVALID with a one-line reason in err when the input is unusable
 * (missing required field, text that is not UTF-8 or holds control characters,
 * a bad currency, ...), or SEQR_ERR_INTERNAL when libxml2 ran out of memory.
 * All input is borrowed. The reason never contains a password. */
#ifndef SEQR_ENVELOPE_H
#define SEQR_ENVELOPE_H

#include <libxml/tree.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../buf.h"
#include "seqr.h"

typedef enum {
    SEQR_PRINCIPAL_TERMINALID = 0, /* <type>TERMINALID</type>, no userId */
    SEQR_PRINCIPAL_RESELLERUSER    /* <type>RESELLERUSER</type> + <userId> */
} seqr_principal_type;

/* ClientContext, the first child of every request. Strings borrowed. */
typedef struct {
    const char *channel;          /* required, "WS" */
    const char *client_comment;   /* optional (NULL = omitted), <= 80 chars */
    const char *client_id;        /* required */
    const char *client_reference; /* required, <= 32 chars */
    seqr_principal_type principal_type;
    const char *principal_id; /* required: terminal id or reseller id */
    const char *user_id;      /* required for RESELLERUSER, ignored otherwise */
    const char *password;     /* required; never written into err */
} seqr_context;

/* Longest clientReference / clientComment SEQR accepts. */
#define SEQR_CLIENT_REFERENCE_MAX 32
#define SEQR_CLIENT_COMMENT_MAX 80

/* sendInvoice: context, invoice, tokens*. inv->payment_mode/ack_mode default to
 * IMMEDIATE_DEBIT/NO_ACKNOWLEDGMENT, issue_date 0 to now; every row needs
 * quantity_milli > 0; amounts are written with inv->currency. */
seqr_err seqr_envelope_send_invoice(const seqr_context *ctx, const seqr_invoice *inv,
                                    const seqr_token_in *tokens, size_t n_tokens, xmlDocPtr *out,
                                    char *err, size_t errlen);

/* updateInvoice: context, invoiceReference, invoice, tokens*. */
seqr_err seqr_envelope_update_invoice(const seqr_context *ctx, const char *invoice_ref,
                                      const seqr_invoice *inv, const seqr_token_in *tokens,
                                      size_t n_tokens, xmlDocPtr *out, char *err, size_t errlen);

/* getPaymentStatus: context, invoiceReference, invoiceVersion (>= 0). */
seqr_err seqr_envelope_get_payment_status(const seqr_context *ctx, const char *invoice_ref,
                                          int64_t invoice_version, xmlDocPtr *out, char *err,
                                          size_t errlen);

/* cancelInvoice: context, invoiceReference. */
seqr_err seqr_envelope_cancel_invoice(const seqr_context *ctx, const char *invoice_ref,
                                      xmlDocPtr *out, char *err, size_t errlen);

/* commitReservation: context, invoiceReference, amount (value, currency). */
seqr_err seqr_envelope_commit_reservation(const seqr_context *ctx, const char *invoice_ref,
                                          int64_t amount, const char *currency, xmlDocPtr *out,
                                          char *err, size_t errlen);

/* submitPaymentReceipt: context, ersReference, receiptDocument (mimeType,
 * receiptData, receiptType). All three are required (the reference: "all
 * mandatory"; a receiptDocument is never sent empty or partial);
 * receipt_data_b64 must be non-empty base64 text. */
seqr_err seqr_envelope_submit_payment_receipt(const seqr_context *ctx, const char *ers_reference,
                                              const char *mime_type, const char *receipt_type,
                                              const char *receipt_data_b64, xmlDocPtr *out,
                                              char *err, size_t errlen);

/* refundPayment: context, ersReference, invoice. In the refund invoice only
 * what is set is written (no defaults, no issueDate unless non-zero): usually
 * title, clientInvoiceId, totalAmount, cashierId. refund->total must be > 0. */
seqr_err seqr_envelope_refund_payment(const seqr_context *ctx, const char *ers_reference,
                                      const seqr_invoice *refund, xmlDocPtr *out, char *err,
                                      size_t errlen);

/* markTransactionPeriod: context, parameters (omitted when n_params is 0). */
seqr_err seqr_envelope_mark_transaction_period(const seqr_context *ctx, const seqr_param *params,
                                               size_t n_params, xmlDocPtr *out, char *err,
                                               size_t errlen);

/* executeReport: context, reportId, language, parameters (omitted when
 * n_params is 0). */
seqr_err seqr_envelope_execute_report(const seqr_context *ctx, const char *report_id,
                                      const char *language, const seqr_param *params,
                                      size_t n_params, xmlDocPtr *out, char *err, size_t errlen);

/* registerTerminal: context, externalTerminalId, password (of the new
 * terminal), name. */
seqr_err seqr_envelope_register_terminal(const seqr_context *ctx, const char *external_terminal_id,
                                         const char *password, const char *name, xmlDocPtr *out,
                                         char *err, size_t errlen);

/* unregisterTerminal: context only. */
seqr_err seqr_envelope_unregister_terminal(const seqr_context *ctx, xmlDocPtr *out, char *err,
                                           size_t errlen);

/* assignSeqrId: context, seqrId. */
seqr_err seqr_envelope_assign_seqr_id(const seqr_context *ctx, const char *seqr_id, xmlDocPtr *out,
                                      char *err, size_t errlen);

/* Appends doc to out as UTF-8 text with an XML declaration. With redacted, every
 * <password> element's text is replaced by "********" (for logs). */
void seqr_envelope_serialize(xmlDocPtr doc, bool redacted, buf *out);

/* Writes t as xs:dateTime in UTC, "2026-11-24T10:15:00Z"; false if t cannot be
 * represented. */
bool seqr_envelope_format_time(time_t t, char out[static 32]);

#endif
