/* money.h — exact amounts. An amount is an int64 count of minor units (öre, cent);
 * parsing and formatting of decimal strings live here and nowhere else.
 *
 * Amounts always have two decimals on the wire ("149.99" <-> 14999). The same
 * fixed-point code also serves quantities (itemQuantity, three decimals).
 * Nothing in here uses binary floating point. */
#ifndef SEQR_MONEY_H
#define SEQR_MONEY_H

#include <stdbool.h>
#include <stdint.h>

typedef enum {
    MONEY_OK = 0,
    MONEY_SYNTAX,    /* not a plain decimal: empty, letters, exponent, "1.", ".5", "+1" */
    MONEY_PRECISION, /* more decimals than allowed, e.g. "1.005" */
    MONEY_RANGE      /* does not fit in int64 minor units */
} money_err;

/* Big enough for any formatted int64 with a sign, a dot and a NUL. */
#define MONEY_BUFLEN 32
/* Decimals of an amount on the wire and in minor units. */
#define MONEY_DECIMALS 2
/* Decimals allowed in an itemQuantity. */
#define MONEY_QTY_DECIMALS 3

/* Parses "149.99" into 14999. Accepts an optional leading '-', digits, and at
 * most two decimals after a dot ("5", "5.5", "5.50"). Rejects exponents, '+',
 * spaces, more than two decimals and overflow. "-0.00" parses as 0. */
money_err money_parse(const char *text, int64_t *out);

/* Like money_parse with `decimals` allowed decimals (0..9): "1.5" with 3 -> 1500. */
money_err money_parse_scaled(const char *text, int decimals, int64_t *out);

/* Writes "149.99" into buf; returns buf. */
char *money_format(int64_t minor, char buf[static MONEY_BUFLEN]);

/* Writes a fixed-point value with `decimals` decimals, dropping trailing zeros
 * of the fraction (1500 with 3 -> "1.5", 2000 -> "2"); returns buf. */
char *money_format_scaled(int64_t value, int decimals, char buf[static MONEY_BUFLEN]);

/* *out = a + b; false (and *out untouched) on overflow. */
bool money_add(int64_t a, int64_t b, int64_t *out);

/* True for an upper-case ISO 4217 code of a currency in use (SEK, EUR, ...). */
bool money_currency_valid(const char *code);

/* A short English message for an error ("too many decimals", ...). Static. */
const char *money_strerror(money_err err);

#endif
