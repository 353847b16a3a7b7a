/* invoice.h — a webshop's invoice JSON, validated and turned into SEQR's shape.
 *
 * invoice_parse() checks everything before anything is stored or sent: types,
 * required fields, amounts (<= 2 decimals, exact), quantities (> 0), total =
 * sum of rows when given, currency, lengths, URLs, enum values, unknown fields.
 * On success the invoice_input owns a normalised JSON document (what the store
 * keeps and the API answers with) and the SEQR row array; every string in it
 * points into that document. Release with invoice_input_free().
 *
 * Also here: invoice_json_amount(), the one place a JSON value (string or
 * number) becomes an exact amount. */
#ifndef SEQR_INVOICE_H
#define SEQR_INVOICE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "api_error.h"
#include "money.h"
#include "seqr/seqr.h"

/* Upper bound on rows per invoice (abuse guard; a larger invoice gets 422). */
#define INVOICE_MAX_ROWS 500

typedef struct {
    json_t *doc; /* owned normalised document */
    char currency[4];
    int64_t total;
    seqr_invoice_row *rows; /* owned array; strings borrowed from doc */
    size_t n_rows;
    const char *title; /* each borrowed from doc, NULL when absent */
    const char *client_invoice_id;
    const char *cashier_id;
    const char *footer;
    const char *back_url;
    const char *notification_url;
    const char *payment_mode; /* never NULL after parse: default IMMEDIATE_DEBIT */
    const char *client_reference;
    const char *terminal_id;
} invoice_input;

/* Validates body (an object) into out. Returns false with err filled (400 for
 * wrong types/unknown fields, 422 for values that are well-formed but invalid).
 * out must be released with invoice_input_free() either way. */
bool invoice_parse(const json_t *body, invoice_input *out, api_error *err);
void invoice_input_free(invoice_input *in);

/* Fills a seqr_invoice that borrows from in (valid while in lives). */
void invoice_to_seqr(const invoice_input *in, seqr_invoice *out);

/* Reads an amount from a JSON string ("149.99") or an exact JSON number
 * (149.99, 150) with at most `decimals` decimals. Returns MONEY_OK or the
 * reason; a JSON value of another type is MONEY_SYNTAX. */
money_err invoice_json_amount(const json_t *v, int decimals, int64_t *out);

/* True for an absolute http:// or https:// URL without spaces or control
 * characters, at most 2048 bytes. */
bool invoice_url_valid(const char *url);

#endif
