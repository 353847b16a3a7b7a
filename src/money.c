/* money.c — exact decimal amounts; see money.h. */
#include "money.h"

#include <stdlib.h>
#include <string.h>

static const int64_t money_pow10[] = {1,      10,      100,      1000,      10000,
                                      100000, 1000000, 10000000, 100000000, 1000000000};

money_err money_parse_scaled(const char *text, int decimals, int64_t *out)
{
    if (text == NULL || decimals < 0 || decimals > 9)
        return MONEY_SYNTAX;
    const char *p = text;
    bool negative = false;
    if (*p == '-') {
        negative = true;
        p++;
    }
    if (*p < '0' || *p > '9')
        return MONEY_SYNTAX;

    /* Accumulate as a negative number so INT64_MIN-adjacent values are exact. */
    int64_t acc = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        int d = *p - '0';
        if (acc < (INT64_MIN + d) / 10)
            return MONEY_RANGE;
        acc = acc * 10 - d;
    }
    int frac_digits = 0;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return MONEY_SYNTAX;
        for (; *p >= '0' && *p <= '9'; p++) {
            int d = *p - '0';
            if (frac_digits >= decimals) {
                /* Trailing zeros beyond the precision are harmless ("1.500"). */
                if (d != 0)
                    return MONEY_PRECISION;
                continue;
            }
            if (acc < (INT64_MIN + d) / 10)
                return MONEY_RANGE;
            acc = acc * 10 - d;
            frac_digits++;
        }
    }
    if (*p != '\0')
        return MONEY_SYNTAX;
    for (; frac_digits < decimals; frac_digits++) {
        if (acc < INT64_MIN / 10)
            return MONEY_RANGE;
        acc *= 10;
    }
    if (!negative) {
        if (acc == INT64_MIN)
            return MONEY_RANGE;
        acc = -acc;
    }
    *out = acc;
    return MONEY_OK;
}

money_err money_parse(const char *text, int64_t *out)
{
    return money_parse_scaled(text, MONEY_DECIMALS, out);
}

static char *money_format_impl(int64_t value, int decimals, bool trim,
                               char buf[static MONEY_BUFLEN])
{
    /* Work on the magnitude as unsigned so INT64_MIN formats correctly. */
    uint64_t mag = value < 0 ? (uint64_t)0 - (uint64_t)value : (uint64_t)value;
    uint64_t scale = (uint64_t)money_pow10[decimals];
    uint64_t whole = mag / scale;
    uint64_t frac = mag % scale;
    char digits[MONEY_BUFLEN];
    int n = 0;
    do {
        digits[n++] = (char)('0' + whole % 10);
        whole /= 10;
    } while (whole > 0);

    char *w = buf;
    if (value < 0)
        *w++ = '-';
    while (n > 0)
        *w++ = digits[--n];
    int keep = decimals;
    if (trim) {
        while (keep > 0 && frac % 10 == 0) {
            frac /= 10;
            keep--;
        }
    }
    if (keep > 0) {
        *w++ = '.';
        for (int i = keep - 1; i >= 0; i--) {
            w[i] = (char)('0' + frac % 10);
            frac /= 10;
        }
        w += keep;
    }
    *w = '\0';
    return buf;
}

char *money_format(int64_t minor, char buf[static MONEY_BUFLEN])
{
    return money_format_impl(minor, MONEY_DECIMALS, false, buf);
}

char *money_format_scaled(int64_t value, int decimals, char buf[static MONEY_BUFLEN])
{
    if (decimals < 0 || decimals > 9)
        decimals = 0;
    return money_format_impl(value, decimals, true, buf);
}

bool money_add(int64_t a, int64_t b, int64_t *out)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return false;
    *out = r;
    return true;
}

/* ISO 4217 codes of currencies in circulation (2024 list, funds codes left
 * out), in alphabetical order, each followed by a space or the final NUL:
 * entry i is at 4 * i, so the list is searched in halves (a linear scan was
 * 17k instructions of every POST /invoices). Keep it sorted when editing. */
static const char money_currencies[] =
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL "
    "BSD BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP "
    "ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR "
    "IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL "
    "LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR "
    "NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD "
    "SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX "
    "USD UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG";
#define MONEY_CURRENCY_COUNT (sizeof money_currencies / 4)

bool money_currency_valid(const char *code)
{
    if (code == NULL || strlen(code) != 3)
        return false;
    size_t lo = 0, hi = MONEY_CURRENCY_COUNT;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = memcmp(code, money_currencies + 4 * mid, 3);
        if (c == 0)
            return true;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return false;
}

const char *money_strerror(money_err err)
{
    switch (err) {
    case MONEY_OK:
        return "ok";
    case MONEY_SYNTAX:
        return "not a plain decimal number (use digits and a dot, e.g. \"149.99\")";
    case MONEY_PRECISION:
        return "too many decimals";
    case MONEY_RANGE:
        return "out of range";
    }
    return "invalid amount";
}
