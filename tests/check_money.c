/* check_money.c — exact amount parsing and formatting, and the printf-free
 * text helpers (text.h) that format numbers and build messages. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "money.h"
#include "testutil.h"
#include "text.h"

static void expect_ok(const char *text, int64_t want)
{
    int64_t v = 12345;
    ck_assert_msg(money_parse(text, &v) == MONEY_OK, "\"%s\" should parse", text);
    ck_assert_msg(v == want, "\"%s\" parsed as %lld, want %lld", text, (long long)v,
                  (long long)want);
}

static void expect_err(const char *text, money_err want)
{
    int64_t v = 777;
    money_err e = money_parse(text, &v);
    ck_assert_msg(e == want, "\"%s\" gave %d, want %d", text, e, want);
    ck_assert_int_eq(v, 777); /* untouched on error */
}

START_TEST(parse_plain)
{
    expect_ok("0", 0);
    expect_ok("0.1", 10);
    expect_ok("0.10", 10);
    expect_ok("149.99", 14999);
    expect_ok("5", 500);
    expect_ok("-12.5", -1250);
    expect_ok("-0.00", 0);
    expect_ok("1.500", 150); /* trailing zeros beyond precision are exact */
    expect_ok("92233720368547758.07", INT64_MAX);
    expect_ok("-92233720368547758.08", INT64_MIN);
}
END_TEST

START_TEST(parse_rejects)
{
    expect_err("1.005", MONEY_PRECISION);
    expect_err("0.001", MONEY_PRECISION);
    expect_err("1e3", MONEY_SYNTAX);
    expect_err("1E3", MONEY_SYNTAX);
    expect_err("", MONEY_SYNTAX);
    expect_err("-", MONEY_SYNTAX);
    expect_err("+1", MONEY_SYNTAX);
    expect_err(" 1", MONEY_SYNTAX);
    expect_err("1 ", MONEY_SYNTAX);
    expect_err("1.", MONEY_SYNTAX);
    expect_err(".5", MONEY_SYNTAX);
    expect_err("1,50", MONEY_SYNTAX);
    expect_err("0x10", MONEY_SYNTAX);
    expect_err("NaN", MONEY_SYNTAX);
    expect_err("1.2.3", MONEY_SYNTAX);
    expect_err("92233720368547758.08", MONEY_RANGE);
    expect_err("-92233720368547758.09", MONEY_RANGE);
    expect_err("99999999999999999999999", MONEY_RANGE);
    int64_t v;
    ck_assert_int_eq(money_parse(NULL, &v), MONEY_SYNTAX);
}
END_TEST

START_TEST(format_two_decimals)
{
    char b[MONEY_BUFLEN];
    ck_assert_str_eq(money_format(0, b), "0.00");
    ck_assert_str_eq(money_format(5, b), "0.05");
    ck_assert_str_eq(money_format(14999, b), "149.99");
    ck_assert_str_eq(money_format(-1250, b), "-12.50");
    ck_assert_str_eq(money_format(-5, b), "-0.05");
    ck_assert_str_eq(money_format(INT64_MAX, b), "92233720368547758.07");
    ck_assert_str_eq(money_format(INT64_MIN, b), "-92233720368547758.08");
}
END_TEST

START_TEST(round_trip)
{
    static const char *const samples[] = {"0.00", "0.01", "1.00", "549.50", "-3.33", "1000000.99"};
    char b[MONEY_BUFLEN];
    for (size_t i = 0; i < sizeof samples / sizeof *samples; i++) {
        int64_t v;
        ck_assert_int_eq(money_parse(samples[i], &v), MONEY_OK);
        ck_assert_str_eq(money_format(v, b), samples[i]);
    }
}
END_TEST

START_TEST(quantities)
{
    char b[MONEY_BUFLEN];
    int64_t q;
    ck_assert_int_eq(money_parse_scaled("2", MONEY_QTY_DECIMALS, &q), MONEY_OK);
    ck_assert_int_eq(q, 2000);
    ck_assert_str_eq(money_format_scaled(q, MONEY_QTY_DECIMALS, b), "2");
    ck_assert_int_eq(money_parse_scaled("1.5", MONEY_QTY_DECIMALS, &q), MONEY_OK);
    ck_assert_str_eq(money_format_scaled(q, MONEY_QTY_DECIMALS, b), "1.5");
    ck_assert_int_eq(money_parse_scaled("0.125", MONEY_QTY_DECIMALS, &q), MONEY_OK);
    ck_assert_str_eq(money_format_scaled(q, MONEY_QTY_DECIMALS, b), "0.125");
    ck_assert_int_eq(money_parse_scaled("0.1255", MONEY_QTY_DECIMALS, &q), MONEY_PRECISION);
}
END_TEST

START_TEST(sums_and_currency)
{
    int64_t r = 0;
    ck_assert(money_add(50000, 4950, &r));
    ck_assert_int_eq(r, 54950);
    ck_assert(!money_add(INT64_MAX, 1, &r));
    ck_assert_int_eq(r, 54950);
    ck_assert(!money_add(INT64_MIN, -1, &r));
    ck_assert(money_currency_valid("SEK"));
    ck_assert(money_currency_valid("EUR"));
    ck_assert(money_currency_valid("ZWG"));
    ck_assert(!money_currency_valid("sek"));
    ck_assert(!money_currency_valid("XYZ"));
    ck_assert(!money_currency_valid("SE"));
    ck_assert(!money_currency_valid("SEKK"));
    ck_assert(!money_currency_valid(NULL));
    /* Every three capitals: the 156 listed codes and nothing else (an
     * entry out of order in money.c's list would be missed by its search). */
    int valid = 0;
    char code[4] = {0};
    for (char a = 'A'; a <= 'Z'; a++)
        for (char b = 'A'; b <= 'Z'; b++)
            for (char c = 'A'; c <= 'Z'; c++) {
                code[0] = a, code[1] = b, code[2] = c;
                valid += money_currency_valid(code);
            }
    ck_assert_int_eq(valid, 156);
    ck_assert(money_currency_valid("AED"));
    ck_assert(!money_currency_valid("AAA"));
    ck_assert(!money_currency_valid("ZZZ"));
    ck_assert(!money_currency_valid("SE\x01"));
    ck_assert_ptr_nonnull(strstr(money_strerror(MONEY_PRECISION), "decimals"));
}
END_TEST

/* text.h: the same bytes as snprintf(dst, cap, "%s"/"%lld"), cut alike. */
START_TEST(text_helpers_match_snprintf)
{
    const int64_t nums[] = {0, 7, -7, 10, 4294967296LL, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        char got[TEXT_INT_LEN], want[TEXT_INT_LEN];
        size_t n = text_int(got, nums[i]);
        snprintf(want, sizeof want, "%lld", (long long)nums[i]);
        ck_assert_str_eq(got, want);
        ck_assert_uint_eq(n, strlen(want));
    }
    char small[8];
    ck_assert_uint_eq(text_copy(small, sizeof small, "getPaymentStatus"), 7);
    ck_assert_str_eq(small, "getPaym");
    size_t n = text_copy(small, sizeof small, "ab");
    n = text_append(small, sizeof small, n, ": ");
    ck_assert_uint_eq(n, 4);
    n = text_append(small, sizeof small, n, "SUCCESS");
    ck_assert_uint_eq(n, 7);
    ck_assert_str_eq(small, "ab: SUC");
    ck_assert_uint_eq(text_append(small, sizeof small, n, "more"), 7); /* full: unchanged */
    ck_assert_str_eq(small, "ab: SUC");
    ck_assert_uint_eq(text_copy(small, 1, "x"), 0);
    ck_assert_str_eq(small, "");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("money");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, parse_plain);
    tcase_add_test(tc, parse_rejects);
    tcase_add_test(tc, format_two_decimals);
    tcase_add_test(tc, round_trip);
    tcase_add_test(tc, quantities);
    tcase_add_test(tc, sums_and_currency);
    tcase_add_test(tc, text_helpers_match_snprintf);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
