/* seqr/codes.h — the table of SEQR resultCodes (SEQR's merchant API documentation).
 *
 * For each code: its name, what it means in plain words, whether retrying the
 * same call later can help, and the HTTP status the REST API answers with when
 * SEQR returns it. Lookups are into a static table; nothing to free. */
#ifndef SEQR_CODES_H
#define SEQR_CODES_H

#include <stdbool.h>

typedef struct {
    int code;
    const char *name;    /* "CANNOT_CANCEL_PAID_INVOICE" */
    const char *meaning; /* "the invoice is paid and can no longer be canceled" */
    bool retryable;      /* true for 2, 90, 94 */
    int http_status;     /* e.g. 409 */
} seqr_code_info;

/* The entry for code, or NULL when SEQR sent a code not in the table. */
const seqr_code_info *seqr_code_lookup(int code);
/* HTTP status for code: the table's, or 502 for an unknown code. */
int seqr_code_http_status(int code);
/* Name for code, or "UNKNOWN_RESULT_CODE". */
const char *seqr_code_name(int code);
/* Every entry, for documentation and tests; *n receives the count. */
const seqr_code_info *seqr_code_table(int *n);

#endif
