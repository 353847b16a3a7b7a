/* seqr/codes.h — the table of SEQR resultCodes (SEQR's merchant API documentation).
 *
 * For each code: its name, what it means in plain words, whether retrying the
 * same call later can help, and the HTTP status the REST API answers with when
 * SEQR returns it. The table in codes.c is the one source of all four; the
 * names below are for the codes the gateway acts on. Lookups are into a
 * static table; nothing to free. */
#ifndef SEQR_CODES_H
#define SEQR_CODES_H

#include <stdbool.h>

typedef struct {
    int code;
    const char *name;    /* "CANNOT_CANCEL_PAID_INVOICE" */
    const char *meaning; /* "the invoice is paid and can no longer be canceled" */
    bool retryable;      /* the same call may succeed later (see the table) */
    int http_status;     /* e.g. 409 */
} seqr_code_info;

/* The resultCodes the gateway acts on, by name (their entries are in the table). */
enum {
    SEQR_CODE_SUCCESS = 0,
    SEQR_CODE_REPORT_NOT_READY = 2,
    SEQR_CODE_CANNOT_CANCEL_PAID_INVOICE = 50,
    SEQR_CODE_INVALID_INVOICE_REFERENCE = 54,
    SEQR_CODE_INVOICE_ALREADY_CANCELED = 95
};

/* The entry for code, or NULL when SEQR sent a code not in the table. */
const seqr_code_info *seqr_code_lookup(int code);
/* HTTP status for code: the table's, or 502 for an unknown code. */
int seqr_code_http_status(int code);
/* The table's retryable for code; false for an unknown code. */
bool seqr_code_retryable(int code);
/* Name for code, or "UNKNOWN_RESULT_CODE". */
const char *seqr_code_name(int code);
/* Every entry, for documentation and tests; *n receives the count. */
const seqr_code_info *seqr_code_table(int *n);

#endif
