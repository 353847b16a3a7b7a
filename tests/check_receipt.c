/* check_receipt.c — the rendered receipt: exact VAT per rate, base64, and the
 * HTML (every supplied text escaped, the figures a buyer needs present). */
#include <check.h>
#include <libxml/HTMLparser.h>
#include <stdlib.h>
#include <string.h>

#include "receipt.h"
#include "testutil.h"

START_TEST(vat_is_exact_and_rounded_half_away_from_zero)
{
    ck_assert_int_eq(receipt_vat(50000, 25), 10000); /* 500.00 incl. 25 %: 100.00 */
    ck_assert_int_eq(receipt_vat(1200, 12), 129);    /* 128.57 -> 129 */
    ck_assert_int_eq(receipt_vat(800, 6), 45);       /* 45.28 -> 45 */
    ck_assert_int_eq(receipt_vat(125, 25), 25);      /* exactly 25 */
    ck_assert_int_eq(receipt_vat(106, 6), 6);
    ck_assert_int_eq(receipt_vat(53, 6), 3);    /* 3.0 */
    ck_assert_int_eq(receipt_vat(9, 25), 2);    /* 1.8 -> 2 */
    ck_assert_int_eq(receipt_vat(5, 25), 1);    /* 1.0 */
    ck_assert_int_eq(receipt_vat(2, 25), 0);    /* 0.4 -> 0 */
    ck_assert_int_eq(receipt_vat(25, 25), 5);   /* 5.0 */
    ck_assert_int_eq(receipt_vat(1, 100), 1);   /* 0.5 -> 1 (half away from zero) */
    ck_assert_int_eq(receipt_vat(-1, 100), -1); /* -0.5 -> -1 */
    ck_assert_int_eq(receipt_vat(-1200, 12), -129);
    ck_assert_int_eq(receipt_vat(1000, 0), 0);
    /* No overflow at the ends of int64. */
    ck_assert_int_eq(receipt_vat(INT64_MAX, 100), INT64_MAX / 2 + 1);
    ck_assert_int_eq(receipt_vat(INT64_MIN, 100), INT64_MIN / 2);
    ck_assert_int_eq(receipt_vat(INT64_MAX, 25), 1844674407370955161LL); /* ...161.4 */
}
END_TEST

START_TEST(base64_round_trip)
{
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const coded[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                        "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        buf b = BUF_INIT;
        receipt_base64_encode(plain[i], strlen(plain[i]), &b);
        ck_assert_str_eq(buf_cstr(&b), coded[i]);
        buf d = BUF_INIT;
        ck_assert(receipt_base64_decode(coded[i], &d));
        ck_assert_str_eq(buf_cstr(&d), plain[i]);
        buf_free(&b);
        buf_free(&d);
    }
    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    buf b = BUF_INIT, d = BUF_INIT;
    receipt_base64_encode(all, sizeof all, &b);
    ck_assert(receipt_base64_decode(buf_cstr(&b), &d));
    ck_assert_int_eq(d.len, 256);
    ck_assert(memcmp(d.data, all, 256) == 0);
    buf_free(&b);
    buf_free(&d);
    static const char *const bad[] = {"Zg=", "Z===", "Zg==Zg==", "Zm9v!", "Zm=v", "Zm9 "};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        buf x = BUF_INIT;
        buf_puts(&x, "kept");
        ck_assert_msg(!receipt_base64_decode(bad[i], &x), "%s", bad[i]);
        ck_assert_str_eq(buf_cstr(&x), "kept");
        buf_free(&x);
    }
}
END_TEST

static receipt_input sample(seqr_invoice_row rows[3])
{
    memset(rows, 0, 3 * sizeof *rows);
    rows[0] = (seqr_invoice_row){.description = "Laptop <b>pro</b>",
                                 .unit = "pcs",
                                 .quantity_milli = 2000,
                                 .has_tax_rate = true,
                                 .tax_rate = 25,
                                 .total = 50000,
                                 .has_unit_price = true,
                                 .unit_price = 25000,
                                 .has_discount = true,
                                 .discount = 1000};
    rows[1] = (seqr_invoice_row){.description = "Book",
                                 .quantity_milli = 1500,
                                 .has_tax_rate = true,
                                 .tax_rate = 6,
                                 .total = 10600};
    rows[2] = (seqr_invoice_row){.description = "Gift wrap", .quantity_milli = 1000, .total = 500};
    receipt_input in = {.store_name = "Shop & Co",
                        .address = "Storgatan 1",
                        .org_number = "SE556677889901",
                        .title = "Order \"42\" <script>x</script>",
                        .client_invoice_id = "42",
                        .currency = "SEK",
                        .total = 61100,
                        .rows = rows,
                        .n_rows = 3,
                        .payment_date = "2026-11-24T10:18:48Z",
                        .invoice_reference = "1397222701693",
                        .ers_reference = "2026112410184861801032678",
                        .payment_reference = "PR-77",
                        .footer = "Welcome back"};
    return in;
}

START_TEST(html_names_everything_and_escapes_text)
{
    seqr_invoice_row rows[3];
    receipt_input in = sample(rows);
    buf html = BUF_INIT;
    char msg[200];
    ck_assert_int_eq(receipt_render_html(&in, &html, msg, sizeof msg), RECEIPT_OK);
    const char *h = buf_cstr(&html);
    static const char *const want[] = {"Shop &amp; Co",
                                       "Storgatan 1",
                                       "SE556677889901",
                                       "Order \"42\" &lt;script&gt;x&lt;/script&gt;",
                                       "Laptop &lt;b&gt;pro&lt;/b&gt;",
                                       "2 pcs",
                                       "1.5",
                                       "250.00 SEK",
                                       "10.00 SEK",
                                       "25 %",
                                       "6 %",
                                       "100.00 SEK", /* VAT 25 % of 500.00 incl. */
                                       "400.00 SEK",
                                       "6.00 SEK",
                                       "100.00 SEK",
                                       "611.00 SEK",
                                       "2026-11-24T10:18:48Z",
                                       "1397222701693",
                                       "2026112410184861801032678",
                                       "PR-77",
                                       "Welcome back",
                                       "charset=UTF-8"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        ck_assert_msg(strstr(h, want[i]) != NULL, "no \"%s\" in:\n%s", want[i], h);
    ck_assert_ptr_null(strstr(h, "<script"));
    ck_assert_ptr_null(strstr(h, "<b>"));
    /* The VAT table has the two rates, not the row without one. */
    const char *vat = strstr(h, "class=\"vat\"");
    ck_assert_ptr_nonnull(vat);
    ck_assert_ptr_null(strstr(vat, "0 %"));
    /* And it is HTML a parser reads back to the same text. */
    htmlDocPtr doc = htmlReadMemory(html.data, (int)html.len, NULL, "UTF-8",
                                    HTML_PARSE_NONET | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING);
    ck_assert_ptr_nonnull(doc);
    xmlChar *text = xmlNodeGetContent(xmlDocGetRootElement(doc));
    ck_assert_ptr_nonnull(strstr((const char *)text, "Order \"42\" <script>x</script>"));
    xmlFree(text);
    xmlFreeDoc(doc);
    buf_free(&html);
}
END_TEST

START_TEST(bad_input_renders_nothing)
{
    seqr_invoice_row rows[3];
    receipt_input in = sample(rows);
    buf html = BUF_INIT;
    char msg[200];
    in.title = "bad \xC3";
    ck_assert_int_eq(receipt_render_html(&in, &html, msg, sizeof msg), RECEIPT_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(msg, "UTF-8"));
    ck_assert_int_eq(html.len, 0);
    in = sample(rows);
    in.store_name = "";
    ck_assert_int_eq(receipt_render_html(&in, &html, msg, sizeof msg), RECEIPT_ERR_INVALID);
    in = sample(rows);
    rows[1].tax_rate = 101;
    ck_assert_int_eq(receipt_render_html(&in, &html, msg, sizeof msg), RECEIPT_ERR_INVALID);
    in = sample(rows);
    rows[0].total = INT64_MAX;
    rows[1].tax_rate = 25;
    ck_assert_int_eq(receipt_render_html(&in, &html, msg, sizeof msg), RECEIPT_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(msg, "out of range"));
    ck_assert_int_eq(html.len, 0);
    /* Only the required parts: still a receipt. */
    receipt_input bare = {.store_name = "S", .currency = "EUR", .total = 100};
    ck_assert_int_eq(receipt_render_html(&bare, &html, msg, sizeof msg), RECEIPT_OK);
    ck_assert_ptr_nonnull(strstr(buf_cstr(&html), "1.00 EUR"));
    buf_free(&html);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("receipt");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, vat_is_exact_and_rounded_half_away_from_zero);
    tcase_add_test(tc, base64_round_trip);
    tcase_add_test(tc, html_names_everything_and_escapes_text);
    tcase_add_test(tc, bad_input_renders_nothing);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
