/* seqr/parse.h — answer parsers for the SEQR merchant SOAP API.
 *
 * One parser per operation. Each takes the raw HTTP body (untrusted), parses it
 * with seqr_xml_parse() (no DTD, no entities, no network, size cap), and reads
 * the answer namespace-aware: the body's first element must be
 * {SEQR_XML_NS}{operation}Response with a <return> child; prefixes do not
 * matter and unknown elements are ignored.
 *
 * Every parser returns
 *   SEQR_OK             resultCode 0; out is filled
 *   SEQR_ERR_RESULT     resultCode != 0; res->code/description set, out zeroed
 *   SEQR_ERR_FAULT      a soap:Fault; res->fault_code/fault_string set
 *   SEQR_ERR_BAD_ANSWER empty, oversized, not XML, a DOCTYPE, truncated, not a
 *                       SOAP envelope, the wrong operation, no <return>, no or a
 *                       non-numeric resultCode, or a success answer that lacks a
 *                       field the operation needs (or holds a malformed one)
 * and fills res->code, description, fault_code, fault_string and a one-line
 * res->message ("getPaymentStatus: ..."); res->http_status is left as it is.
 * data is borrowed; out and res are the caller's. */
#ifndef SEQR_PARSE_H
#define SEQR_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "seqr.h"

/* Sets res to "no answer": code -1, empty strings, http_status 0. */
void seqr_result_reset(seqr_result *res);

/* resultCode/resultDescription only, for an operation named op whose answer
 * carries nothing else ("cancelInvoice", ...). */
seqr_err seqr_parse_result(const char *op, const char *data, size_t len, seqr_result *res);

seqr_err seqr_parse_send_invoice(const char *data, size_t len, seqr_send_invoice_answer *out,
                                 seqr_result *res);
seqr_err seqr_parse_update_invoice(const char *data, size_t len, seqr_result *res);
/* status and version are required on success; an unknown status name gives
 * SEQR_STATUS_UNKNOWN with status_text as sent. At most SEQR_MAX_TOKENS
 * customerTokens are kept. */
seqr_err seqr_parse_get_payment_status(const char *data, size_t len, seqr_payment_status *out,
                                       seqr_result *res);
/* The same answer read through a whole tree, as every other parser reads:
 * the reference the streaming seqr_parse_get_payment_status (the poller's
 * path, no tree) is compared against by tests and the fuzzer. Same
 * contract, same results. */
seqr_err seqr_parse_get_payment_status_tree(const char *data, size_t len, seqr_payment_status *out,
                                            seqr_result *res);
seqr_err seqr_parse_cancel_invoice(const char *data, size_t len, seqr_result *res);
seqr_err seqr_parse_commit_reservation(const char *data, size_t len, seqr_result *res);
seqr_err seqr_parse_submit_payment_receipt(const char *data, size_t len, seqr_result *res);
/* ersReference of the refund may be absent (then ""). */
seqr_err seqr_parse_refund_payment(const char *data, size_t len, seqr_refund_answer *out,
                                   seqr_result *res);
/* transactionPeriodId is required on success. */
seqr_err seqr_parse_mark_transaction_period(const char *data, size_t len, char period_id[static 64],
                                            seqr_result *res);
/* report is required on success; out's strings are malloc'd (free with
 * seqr_report_free(), also after an error: out is always left freeable). */
seqr_err seqr_parse_execute_report(const char *data, size_t len, seqr_report *out,
                                   seqr_result *res);
/* terminalId is required on success. */
seqr_err seqr_parse_register_terminal(const char *data, size_t len, char terminal_id[static 64],
                                      seqr_result *res);
seqr_err seqr_parse_unregister_terminal(const char *data, size_t len, seqr_result *res);
seqr_err seqr_parse_assign_seqr_id(const char *data, size_t len, seqr_result *res);

#endif
