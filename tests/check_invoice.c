/* check_invoice.c — invoice JSON validation and exact JSON amounts. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "invoice.h"
#include "testutil.h"

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    ck_assert_msg(j != NULL, "bad test JSON: %s", e.text);
    return j;
}

START_TEST(json_amounts_are_exact)
{
    int64_t v;
    json_t *j;
    j = parse("[149.99, \"149.99\", 150, 0.1, 1.005, 1e3, 1e-5, \"1e3\", 12345678901234.56, "
              "null, 0.30000000000000004]");
    ck_assert_int_eq(invoice_json_amount(json_array_get(j, 0), 2, &v), MONEY_OK);
    ck_assert_int_eq(v, 14999);
    ck_assert_int_eq(invoice_json_amount(json_array_get(j, 1), 2, &v), MONEY_OK);
    ck_assert_int_eq(v, 14999);
    ck_assert_int_eq(invoice_json_amount(json_array_get(j, 2), 2, &v), MONEY_OK);
    ck_assert_int_eq(v, 15000);
    ck_assert_int_eq(invoice_json_amount(json_array_get(j, 3), 2, &v), MONEY_OK);
    ck_assert_int_eq(v, 10);
    ck_assert_int_eq(invoice_json_amount(json_array_get(j, 4), 2, &v), MONEY_PRECISION);
    ck_assert_int_eq(invoice_json_amount(json_array_get(j, 5), 2, &v), MONEY_OK);
    ck_assert_int_eq(v, 100000);
    ck_assert_int_ne(invoice_json_amount(json_array_get(j, 6), 2, &v), MONEY_OK);
    ck_assert_int_eq(invoice_json_amount(json_array_get(j, 7), 2, &v), MONEY_SYNTAX);
    ck_assert_int_ne(invoice_json_amount(json_array_get(j, 8), 2, &v), MONEY_OK);
    ck_assert_int_eq(invoice_json_amount(json_array_get(j, 9), 2, &v), MONEY_SYNTAX);
    ck_assert_int_ne(invoice_json_amount(json_array_get(j, 10), 2, &v), MONEY_OK);
    json_decref(j);
}
END_TEST

START_TEST(valid_invoice_is_normalised)
{
    json_t *body = parse("{\"currency\":\"SEK\",\"title\":\"Fish & <Chips>\","
                         "\"rows\":[{\"quantity\":2,\"totalAmount\":\"500\",\"taxRate\":25,"
                         "\"unitPrice\":250,\"description\":\"Laptop\"},"
                         "{\"quantity\":\"1.5\",\"totalAmount\":49.5}],"
                         "\"totalAmount\":\"549.50\",\"backUrl\":\"https://shop.example/x?a=1\"}");
    invoice_input in;
    api_error err;
    api_error_clear(&err);
    ck_assert_msg(invoice_parse(body, &in, &err), "refused: %s", err.message);
    ck_assert_int_eq(in.total, 54950);
    ck_assert_int_eq(in.n_rows, 2);
    ck_assert_int_eq(in.rows[0].quantity_milli, 2000);
    ck_assert_int_eq(in.rows[1].quantity_milli, 1500);
    ck_assert_int_eq(in.rows[0].total, 50000);
    ck_assert(in.rows[0].has_unit_price);
    ck_assert_int_eq(in.rows[0].unit_price, 25000);
    ck_assert(in.rows[0].has_tax_rate);
    ck_assert_str_eq(in.rows[0].description, "Laptop");
    ck_assert_str_eq(in.title, "Fish & <Chips>");
    ck_assert_str_eq(in.payment_mode, "IMMEDIATE_DEBIT");
    ck_assert_str_eq(in.currency, "SEK");
    json_t *rows = json_object_get(in.doc, "rows");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(rows, 0), "totalAmount")),
                     "500.00");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(rows, 1), "quantity")),
                     "1.5");
    ck_assert_str_eq(json_string_value(json_object_get(in.doc, "totalAmount")), "549.50");
    seqr_invoice si;
    invoice_to_seqr(&in, &si);
    ck_assert_int_eq(si.total, 54950);
    ck_assert_str_eq(si.back_url, "https://shop.example/x?a=1");
    invoice_input_free(&in);
    json_decref(body);
}
END_TEST

START_TEST(row_rule_allows_decimal_quantities_and_discounts)
{
    /* 1.5 x 3.00 = 4.50; 2.25 x 10.00 - 2.50 = 20.00; no unitPrice: not checked. */
    json_t *body = parse("{\"currency\":\"SEK\",\"rows\":["
                         "{\"quantity\":\"1.5\",\"unitPrice\":\"3.00\",\"totalAmount\":\"4.50\"},"
                         "{\"quantity\":\"2.250\",\"unitPrice\":\"10\",\"discount\":\"2.50\","
                         "\"totalAmount\":\"20.00\"},"
                         "{\"quantity\":\"3\",\"totalAmount\":\"1.00\"}]}");
    invoice_input in;
    api_error err;
    api_error_clear(&err);
    ck_assert_msg(invoice_parse(body, &in, &err), "refused: %s", err.message);
    ck_assert_int_eq(in.total, 2550);
    invoice_input_free(&in);
    json_decref(body);
}
END_TEST

START_TEST(urls)
{
    ck_assert(invoice_url_valid("https://shop.example/notify?x=1"));
    ck_assert(invoice_url_valid("http://127.0.0.1:8080/x"));
    ck_assert(!invoice_url_valid("ftp://x"));
    ck_assert(!invoice_url_valid("https://"));
    ck_assert(!invoice_url_valid("https:///path"));
    ck_assert(!invoice_url_valid("https://a b"));
    ck_assert(!invoice_url_valid("javascript:alert(1)"));
}
END_TEST

START_TEST(errors_name_the_field)
{
    static const struct {
        const char *body;
        int status;
        const char *field;
    } cases[] = {
        {"{\"currency\":\"SEK\",\"rows\":[{\"quantity\":\"1\",\"totalAmount\":\"1\"},"
         "{\"quantity\":\"x\",\"totalAmount\":\"1\"}]}",
         400, "rows[1].quantity"},
        {"{\"currency\":\"SEK\",\"rows\":[{\"quantity\":\"1\",\"totalAmount\":\"1\","
         "\"taxRate\":101}]}",
         422, "rows[0].taxRate"},
        {"{\"currency\":\"SEK\",\"rows\":[{\"quantity\":\"1\",\"totalAmount\":\"1\","
         "\"description\":5}]}",
         400, "rows[0].description"},
        {"{\"currency\":\"SEK\",\"rows\":[{\"quantity\":\"1\",\"totalAmount\":\"-1\"}]}", 422,
         "rows[0].totalAmount"},
        {"{\"currency\":\"SEK\",\"rows\":[\"row\"]}", 400, "rows[0]"},
        /* The row rule: totalAmount = quantity x unitPrice - discount, exactly. */
        {"{\"currency\":\"SEK\",\"rows\":[{\"quantity\":\"1\",\"totalAmount\":\"1\"},"
         "{\"quantity\":\"2\",\"unitPrice\":\"250.00\",\"totalAmount\":\"400.00\"}]}",
         422, "rows[1].totalAmount"},
        {"{\"currency\":\"SEK\",\"rows\":[{\"quantity\":\"1.5\",\"unitPrice\":\"0.99\","
         "\"totalAmount\":\"1.48\"}]}",
         422, "rows[0].totalAmount"},
        {"{\"currency\":\"SEK\",\"rows\":[{\"quantity\":\"2\",\"unitPrice\":\"250.00\","
         "\"discount\":\"50.00\",\"totalAmount\":\"500.00\"}]}",
         422, "rows[0].totalAmount"},
        {"{\"currency\":\"SEK\",\"rows\":[{\"quantity\":\"2\",\"unitPrice\":\"250.00\","
         "\"discount\":\"-50.00\",\"totalAmount\":\"550.00\"}]}",
         422, "rows[0].discount"},
        {"{\"currency\":\"SEK\",\"rows\":[{\"quantity\":\"9000000000000000\","
         "\"unitPrice\":\"90000000000000.00\",\"totalAmount\":\"1\"}]}",
         422, "rows[0].totalAmount"},
        {"{\"currency\":\"SEK\",\"rows\":[{\"quantity\":\"1\",\"totalAmount\":\"1\"}],"
         "\"title\":\"a\\u0001b\"}",
         422, "title"},
        {"{\"currency\":\"SEK\",\"rows\":[{\"quantity\":\"1\",\"totalAmount\":\"1\"}],"
         "\"clientInvoiceId\":"
         "\"0123456789012345678901234567890123456789012345678901234567890123x\"}",
         422, "clientInvoiceId"},
        {"{\"currency\":\"SEK\",\"rows\":[{\"quantity\":\"1\",\"totalAmount\":\"1\","
         "\"description\":\"tab\\tok, bell\\u0007 not\"}]}",
         422, "rows[0].description"},
        {"{\"currency\":\"SEK\",\"rows\":[{\"quantity\":\"1\",\"totalAmount\":\"1\"}],"
         "\"clientInvoiceId\":[]}",
         400, "clientInvoiceId"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *body = parse(cases[i].body);
        invoice_input in;
        api_error err;
        api_error_clear(&err);
        ck_assert_msg(!invoice_parse(body, &in, &err), "case %zu accepted", i);
        ck_assert_int_eq(err.http_status, cases[i].status);
        ck_assert_str_eq(err.field, cases[i].field);
        ck_assert(strlen(err.message) > 0);
        invoice_input_free(&in);
        json_decref(body);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("invoice");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, json_amounts_are_exact);
    tcase_add_test(tc, valid_invoice_is_normalised);
    tcase_add_test(tc, row_rule_allows_decimal_quantities_and_discounts);
    tcase_add_test(tc, urls);
    tcase_add_test(tc, errors_name_the_field);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
