/* receipt.h — the payment receipt the gateway renders after PAID and sends in
 * submitPaymentReceipt's receiptDocument (text/html, PAYMENT_RECEIPT).
 *
 * The HTML is built with libxml2's HTML tree API: every text a shop or SEQR
 * supplied (title, row descriptions, references) becomes a text node, so it is
 * escaped by construction and can never become markup.
 *
 * VAT per rate is computed exactly in int64 minor units from the rows' totals,
 * which include VAT: for the sum T of the row totals with rate r,
 *   vat = T * r / (100 + r), rounded to the nearest minor unit, halves away from 0
 * (computed as q*r + round(rem*r/(100+r)) with q, rem = T divmod (100+r), so
 * nothing overflows). Rows without a taxRate are not in the VAT table.
 *
 * Also here: base64 encoding and decoding (RFC 4648, no line breaks). */
#ifndef SEQR_RECEIPT_H
#define SEQR_RECEIPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "seqr/seqr.h"

typedef enum {
    RECEIPT_OK = 0,
    RECEIPT_ERR_INVALID, /* text that is not UTF-8, an amount out of range, no currency */
    RECEIPT_ERR_INTERNAL /* libxml2 ran out of memory */
} receipt_err;

/* Everything the receipt shows; all borrowed. Strings may be NULL or "" (the
 * line is left out) unless marked required. */
typedef struct {
    const char *store_name; /* required: the seller */
    const char *address;
    const char *org_number; /* VAT/organisation number */
    const char *title;      /* the invoice title */
    const char *client_invoice_id;
    const char *currency; /* required, ISO 4217 */
    int64_t total;        /* minor units */
    const seqr_invoice_row *rows;
    size_t n_rows;
    const char *payment_date; /* as SEQR reported it */
    const char *invoice_reference;
    const char *ers_reference;
    const char *payment_reference;
    const char *footer; /* the invoice footer, shown last */
} receipt_input;

/* Appends the receipt as a UTF-8 HTML document to out. On error out is left
 * as it was and msg (may be NULL) says why. */
receipt_err receipt_render_html(const receipt_input *in, buf *out, char *msg, size_t msglen);

/* VAT included in total at rate percent (0..100), rounded as described above. */
int64_t receipt_vat(int64_t total, int rate);

/* Appends the base64 of data[0..len) to out. */
void receipt_base64_encode(const void *data, size_t len, buf *out);
/* Appends the bytes of base64 text b64 to out; false (out as it was) when b64
 * is not canonical base64 (length a multiple of 4, padding only at the end). */
bool receipt_base64_decode(const char *b64, buf *out);

#endif
