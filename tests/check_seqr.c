/* check_seqr.c — the SEQR SOAP client: envelopes, answer parsing, transport.
 *
 * Three parts:
 *  - builders: every request builder's output, parsed back, has exactly the
 *    elements (names, order, leaf texts) of the documented fixture request;
 *    escaping, redaction and input validation;
 *  - parsers: every fixture answer gives the expected struct; faults, wrong
 *    operations, hostile documents (DTD entities, oversize, garbage) are refused;
 *  - transport: the blocking calls and the asynchronous status request against
 *    a libmicrohttpd listener started inside the test on a free loopback port
 *    (plain HTTP, and HTTPS with a self-signed certificate embedded below). */
#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <libxml/parser.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "seqr/envelope.h"
#include "seqr/memo.h"
#include "seqr/parse.h"
#include "seqr/seqr.h"
#include "seqr/xml.h"
#include "testutil.h"

/* Self-signed certificate for IP 127.0.0.1 / localhost, valid 2000..2199, used
 * only by the TLS tests below. */
static const char test_tls_key[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgvzC8lQbUOoAdh+Un\n"
    "QV9FS6fq2k77eJSGsInHY5SgGk6hRANCAASfHIgCoBV9s4os8EYpGdjwNQAsbXSp\n"
    "l8BWuo3ivcAiS/g15RkPixIKJUvJ4Hm4DS9I9Nbl6OzdUD2hz3qyPCPL\n"
    "-----END PRIVATE KEY-----\n";
static const char test_tls_cert[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBfjCCASWgAwIBAgIUaUnFdjSYgurdA5tY0lbu0m726aIwCgYIKoZIzj0EAwIw\n"
    "JjEkMCIGA1UEAwwbc2Vxci1nYXRld2F5IHRlc3QgMTI3LjAuMC4xMCAXDTAwMDEw\n"
    "MTAwMDAwMFoYDzIxOTkxMjMxMDAwMDAwWjAmMSQwIgYDVQQDDBtzZXFyLWdhdGV3\n"
    "YXkgdGVzdCAxMjcuMC4wLjEwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAASfHIgC\n"
    "oBV9s4os8EYpGdjwNQAsbXSpl8BWuo3ivcAiS/g15RkPixIKJUvJ4Hm4DS9I9Nbl\n"
    "6OzdUD2hz3qyPCPLoy8wLTAaBgNVHREEEzARhwR/AAABgglsb2NhbGhvc3QwDwYD\n"
    "VR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNHADBEAiAnrWSSJ8apYzjDBB9kKAmE\n"
    "PzU8DemLJlAi/v6osW3kYwIgC0DKrceRWeja4QUpFPCfGMTqBdB4VkDdw3GWnVaP\n"
    "JT0=\n"
    "-----END CERTIFICATE-----\n";

#define TERMINAL_ID "8609bf533abf4a20816e8bfe76639521"
#define TERMINAL_PW "terminal-password"
#define RESELLER_PW "reseller-password"

static const seqr_context terminal_ctx = {
    .channel = "WS",
    .client_comment = "fixture",
    .client_id = "Example Shop AB",
    .client_reference = "seqr-gateway 0.1.0",
    .principal_type = SEQR_PRINCIPAL_TERMINALID,
    .principal_id = TERMINAL_ID,
    .user_id = NULL,
    .password = TERMINAL_PW,
};

static const seqr_context reseller_ctx = {
    .channel = "WS",
    .client_comment = NULL,
    .client_id = "Example Shop AB",
    .client_reference = "seqr-gateway 0.1.0",
    .principal_type = SEQR_PRINCIPAL_RESELLERUSER,
    .principal_id = "example-reseller",
    .user_id = "9900",
    .password = RESELLER_PW,
};

static const seqr_invoice_row fixture_rows[] = {
    {.description = "Laptop Samsung Ultrabook",
     .sku = "16",
     .unit = "pcs",
     .quantity_milli = 2000,
     .has_tax_rate = true,
     .tax_rate = 25,
     .total = 50000,
     .has_unit_price = true,
     .unit_price = 25000},
    {.description = "Shipping", .quantity_milli = 1000, .total = 4950},
};

/* 2026-11-24T10:15:00Z */
static time_t fixture_issue_date(void)
{
    struct tm tm = {0};
    tm.tm_year = 2026 - 1900;
    tm.tm_mon = 10;
    tm.tm_mday = 24;
    tm.tm_hour = 10;
    tm.tm_min = 15;
    return timegm(&tm);
}

static seqr_invoice fixture_invoice(const char *title)
{
    seqr_invoice inv = {0};
    inv.issue_date = fixture_issue_date();
    inv.title = title;
    inv.client_invoice_id = "1001";
    inv.rows = fixture_rows;
    inv.n_rows = 2;
    inv.total = 54950;
    inv.currency = "SEK";
    inv.cashier_id = "web";
    inv.footer = "Thank you for shopping";
    inv.back_url = "https://shop.example/seqr/back?order=1001";
    inv.notification_url = "https://shop.example/seqr/notify?order=1001";
    return inv;
}

/* --- element signatures: names in order, recursively, with leaf texts --- */

static bool node_has_element_child(xmlNodePtr n)
{
    return seqr_xml_first_element(n) != NULL;
}

static void signature_of(xmlNodePtr n, buf *out)
{
    buf_puts(out, seqr_xml_name(n));
    if (node_has_element_child(n)) {
        buf_putc(out, '(');
        for (xmlNodePtr k = seqr_xml_first_element(n); k; k = seqr_xml_next_element(k)) {
            signature_of(k, out);
            if (seqr_xml_next_element(k) != NULL)
                buf_putc(out, ',');
        }
        buf_putc(out, ')');
    } else {
        char *t = seqr_xml_text(n);
        buf_printf(out, "=[%s]", t);
        free(t);
    }
}

/* Signature of a whole document given as text; "" if it does not parse. */
static char *signature_of_text(const char *text, size_t len)
{
    char err[256];
    buf b = BUF_INIT;
    xmlDocPtr doc = seqr_xml_parse(text, len, err, sizeof err);
    if (doc != NULL) {
        signature_of(xmlDocGetRootElement(doc), &b);
        xmlFreeDoc(doc);
    }
    return buf_detach(&b);
}

/* Checks that the operation element is in the SEQR namespace and that every
 * element below it is unqualified. */
static void check_unqualified(xmlNodePtr n)
{
    for (xmlNodePtr k = seqr_xml_first_element(n); k; k = seqr_xml_next_element(k)) {
        ck_assert_msg(k->ns == NULL, "<%s> must be unqualified", seqr_xml_name(k));
        check_unqualified(k);
    }
}

/* Serialises doc (and frees it), then compares it with the fixture request. */
static void expect_like_fixture(xmlDocPtr doc, const char *fixture)
{
    ck_assert_ptr_nonnull(doc);
    xmlNodePtr op = seqr_xml_body_child(doc);
    ck_assert_ptr_nonnull(op);
    ck_assert_ptr_nonnull(op->ns);
    ck_assert_str_eq((const char *)op->ns->href, SEQR_XML_NS);
    check_unqualified(op);

    buf raw = BUF_INIT;
    seqr_envelope_serialize(doc, false, &raw);
    xmlFreeDoc(doc);
    size_t flen = 0;
    char *ftext = tu_fixture(fixture, &flen);
    char *want = signature_of_text(ftext, flen);
    char *got = signature_of_text(raw.data, raw.len);
    ck_assert_msg(want[0] != '\0', "fixture %s does not parse", fixture);
    ck_assert_msg(strcmp(want, got) == 0, "%s differs:\nwant %s\ngot  %s", fixture, want, got);
    free(want);
    free(got);
    free(ftext);
    buf_free(&raw);
}

/* --- builders --- */

START_TEST(build_send_invoice)
{
    seqr_invoice inv = fixture_invoice("Example Shop order 1001");
    xmlDocPtr doc = NULL;
    char err[256];
    ck_assert_int_eq(
        seqr_envelope_send_invoice(&terminal_ctx, &inv, NULL, 0, &doc, err, sizeof err), SEQR_OK);
    expect_like_fixture(doc, "sendInvoice.request.xml");
}
END_TEST

START_TEST(build_update_invoice)
{
    seqr_invoice inv = fixture_invoice("Example Shop order 1001 (member price)");
    seqr_token_in tok = {"Example loyalty card", "X_CARD", 1, "2610411111110"};
    xmlDocPtr doc = NULL;
    char err[256];
    ck_assert_int_eq(seqr_envelope_update_invoice(&terminal_ctx, "1397222701693", &inv, &tok, 1,
                                                  &doc, err, sizeof err),
                     SEQR_OK);
    expect_like_fixture(doc, "updateInvoice.request.xml");
}
END_TEST

START_TEST(build_small_operations)
{
    xmlDocPtr doc = NULL;
    char err[256];

    ck_assert_int_eq(
        seqr_envelope_get_payment_status(&terminal_ctx, "1397222701693", 0, &doc, err, sizeof err),
        SEQR_OK);
    expect_like_fixture(doc, "getPaymentStatus.request.xml");

    ck_assert_int_eq(
        seqr_envelope_cancel_invoice(&terminal_ctx, "1397222701693", &doc, err, sizeof err),
        SEQR_OK);
    expect_like_fixture(doc, "cancelInvoice.request.xml");

    ck_assert_int_eq(seqr_envelope_commit_reservation(&terminal_ctx, "1397222701693", 50000, "SEK",
                                                      &doc, err, sizeof err),
                     SEQR_OK);
    expect_like_fixture(doc, "commitReservation.request.xml");

    ck_assert_int_eq(seqr_envelope_submit_payment_receipt(
                         &terminal_ctx, "2026112410184861801032678", "text/html", "PAYMENT_RECEIPT",
                         "PGh0bWw+PGJvZHk+UmVjZWlwdCAxMDAxPC9ib2R5PjwvaHRtbD4=", &doc, err,
                         sizeof err),
                     SEQR_OK);
    expect_like_fixture(doc, "submitPaymentReceipt.request.xml");

    seqr_invoice refund = {0};
    refund.title = "Refund order 1001";
    refund.client_invoice_id = "1001-R1";
    refund.total = 4950;
    refund.currency = "SEK";
    refund.cashier_id = "web";
    ck_assert_int_eq(seqr_envelope_refund_payment(&terminal_ctx, "2026112410184861801032678",
                                                  &refund, &doc, err, sizeof err),
                     SEQR_OK);
    expect_like_fixture(doc, "refundPayment.request.xml");

    seqr_param mark[] = {{"TERMINALID", TERMINAL_ID}};
    ck_assert_int_eq(
        seqr_envelope_mark_transaction_period(&reseller_ctx, mark, 1, &doc, err, sizeof err),
        SEQR_OK);
    expect_like_fixture(doc, "markTransactionPeriod.request.xml");

    seqr_param report[] = {{"transactionPeriodId", "2026112418000012301000002"},
                           {"TERMINALID", TERMINAL_ID}};
    ck_assert_int_eq(seqr_envelope_execute_report(&reseller_ctx, "Reconciliation/STD_RECON_006.xml",
                                                  "en", report, 2, &doc, err, sizeof err),
                     SEQR_OK);
    expect_like_fixture(doc, "executeReport.request.xml");

    ck_assert_int_eq(
        seqr_envelope_register_terminal(&reseller_ctx, "Store 111/Till 4", "new-terminal-password",
                                        "Example Shop, cash register 4", &doc, err, sizeof err),
        SEQR_OK);
    expect_like_fixture(doc, "registerTerminal.request.xml");

    ck_assert_int_eq(seqr_envelope_unregister_terminal(&terminal_ctx, &doc, err, sizeof err),
                     SEQR_OK);
    expect_like_fixture(doc, "unregisterTerminal.request.xml");

    ck_assert_int_eq(seqr_envelope_assign_seqr_id(&terminal_ctx, "exampleshop0039394857311223",
                                                  &doc, err, sizeof err),
                     SEQR_OK);
    expect_like_fixture(doc, "assignSeqrId.request.xml");
}
END_TEST

START_TEST(build_optional_fields)
{
    /* Without clientComment, discounts, EAN, reservation timeout and an empty
     * receipt document: only what is set appears. */
    seqr_context ctx = terminal_ctx;
    ctx.client_comment = NULL;
    seqr_invoice_row row = {.ean = "7310865004703",
                            .quantity_milli = 1500,
                            .total = 1000,
                            .has_discount = true,
                            .discount = 50};
    seqr_invoice inv = {0};
    inv.rows = &row;
    inv.n_rows = 1;
    inv.total = 1000;
    inv.currency = "EUR";
    inv.payment_mode = "RESERVATION_DESIRED";
    inv.commit_reservation_timeout = 600;
    inv.issue_date = fixture_issue_date();
    xmlDocPtr doc = NULL;
    char err[256];
    ck_assert_int_eq(seqr_envelope_send_invoice(&ctx, &inv, NULL, 0, &doc, err, sizeof err),
                     SEQR_OK);
    buf b = BUF_INIT;
    signature_of(seqr_xml_body_child(doc), &b);
    ck_assert_str_eq(
        buf_cstr(&b),
        "sendInvoice(context(channel=[WS],clientId=[Example Shop AB],clientReference=[seqr-"
        "gateway 0.1.0],clientRequestTimeout=[0],initiatorPrincipalId(id=[" TERMINAL_ID
        "],type=[TERMINALID]),password=[" TERMINAL_PW
        "]),invoice(paymentMode=[RESERVATION_DESIRED],acknowledgmentMode=[NO_ACKNOWLEDGMENT],"
        "issueDate=[2026-11-24T10:15:00Z],invoiceRows(invoiceRow(itemDiscount(value=[0.50],"
        "currency=[EUR]),itemEAN=[7310865004703],itemQuantity=[1.5],itemTotalAmount(value=[10."
        "00],currency=[EUR]))),totalAmount(value=[10.00],currency=[EUR]),"
        "commitReservationTimeout=[600]))");
    buf_free(&b);
    xmlFreeDoc(doc);

    /* A receiptDocument is never sent empty or partial ("all mandatory"). */
    ck_assert_int_eq(seqr_envelope_submit_payment_receipt(&ctx, "2026112410184861801032678", NULL,
                                                          NULL, NULL, &doc, err, sizeof err),
                     SEQR_ERR_INVALID);
    ck_assert_ptr_null(doc);
    ck_assert_ptr_nonnull(strstr(err, "mimeType is required"));
    ck_assert_int_eq(seqr_envelope_submit_payment_receipt(&ctx, "2026112410184861801032678",
                                                          "text/html", NULL, "PGI+", &doc, err,
                                                          sizeof err),
                     SEQR_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(err, "receiptType is required"));
    ck_assert_int_eq(seqr_envelope_submit_payment_receipt(&ctx, "2026112410184861801032678",
                                                          "text/html", "PAYMENT_RECEIPT", "", &doc,
                                                          err, sizeof err),
                     SEQR_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(err, "receiptData is required"));

    /* markTransactionPeriod without parameters has only the context. */
    ck_assert_int_eq(
        seqr_envelope_mark_transaction_period(&reseller_ctx, NULL, 0, &doc, err, sizeof err),
        SEQR_OK);
    xmlNodePtr op = seqr_xml_body_child(doc);
    ck_assert_ptr_null(seqr_xml_child(op, "parameters"));
    ck_assert_ptr_nonnull(seqr_xml_child(op, "context"));
    xmlFreeDoc(doc);
}
END_TEST

START_TEST(build_escapes_user_text)
{
    const char *title = "Fish & <Chips> \"Ltd\"";
    seqr_invoice inv = fixture_invoice(title);
    xmlDocPtr doc = NULL;
    char err[256];
    ck_assert_int_eq(
        seqr_envelope_send_invoice(&terminal_ctx, &inv, NULL, 0, &doc, err, sizeof err), SEQR_OK);
    buf raw = BUF_INIT;
    seqr_envelope_serialize(doc, false, &raw);
    xmlFreeDoc(doc);
    ck_assert_ptr_nonnull(strstr(raw.data, "Fish &amp; &lt;Chips&gt;"));
    ck_assert_ptr_nonnull(strstr(raw.data, "&amp;"));
    ck_assert_ptr_nonnull(strstr(raw.data, "&lt;"));
    ck_assert_ptr_null(strstr(raw.data, "<Chips>"));

    doc = seqr_xml_parse(raw.data, raw.len, err, sizeof err);
    ck_assert_msg(doc != NULL, "own output does not parse: %s", err);
    xmlNodePtr invn = seqr_xml_child(seqr_xml_body_child(doc), "invoice");
    char *back = seqr_xml_child_text(invn, "title");
    ck_assert_str_eq(back, title);
    free(back);
    xmlFreeDoc(doc);
    buf_free(&raw);

    /* <script>, quotes and 2 KB of UTF-8 in the footer the receipt shows. */
    buf footer = BUF_INIT;
    buf_puts(&footer, "<script>alert('x')</script> & \"q\" ");
    for (int i = 0; i < 500; i++)
        buf_puts(&footer, "\xF0\x9F\x8D\x95");
    inv = fixture_invoice("<script>document.title</script>");
    inv.footer = buf_cstr(&footer);
    ck_assert_int_eq(
        seqr_envelope_send_invoice(&terminal_ctx, &inv, NULL, 0, &doc, err, sizeof err), SEQR_OK);
    seqr_envelope_serialize(doc, false, &raw);
    xmlFreeDoc(doc);
    ck_assert_ptr_null(strstr(raw.data, "<script>"));
    ck_assert_ptr_nonnull(strstr(raw.data, "&lt;script&gt;alert('x')&lt;/script&gt; &amp;"));
    doc = seqr_xml_parse(raw.data, raw.len, err, sizeof err);
    ck_assert_msg(doc != NULL, "own output does not parse: %s", err);
    back = seqr_xml_child_text(seqr_xml_child(seqr_xml_body_child(doc), "invoice"), "footer");
    ck_assert_str_eq(back, buf_cstr(&footer));
    free(back);
    xmlFreeDoc(doc);
    buf_free(&raw);
    buf_free(&footer);
}
END_TEST

START_TEST(build_redacts_password)
{
    xmlDocPtr doc = NULL;
    char err[256];
    ck_assert_int_eq(seqr_envelope_register_terminal(&reseller_ctx, "Store 111/Till 4",
                                                     "new-terminal-password", "Till 4", &doc, err,
                                                     sizeof err),
                     SEQR_OK);
    buf plain = BUF_INIT;
    buf red = BUF_INIT;
    seqr_envelope_serialize(doc, false, &plain);
    seqr_envelope_serialize(doc, true, &red);
    xmlFreeDoc(doc);
    ck_assert_ptr_nonnull(strstr(plain.data, RESELLER_PW));
    ck_assert_ptr_null(strstr(red.data, RESELLER_PW));
    ck_assert_ptr_null(strstr(red.data, "new-terminal-password"));
    ck_assert_ptr_nonnull(strstr(red.data, "<password>********</password>"));
    ck_assert_ptr_nonnull(strstr(red.data, "Store 111/Till 4"));
    buf_free(&plain);
    buf_free(&red);

    /* The client's debug rendering of a status request. */
    seqr_client_options o = {.url = "http://127.0.0.1:9/",
                             .client_id = "Example Shop AB",
                             .terminal_id = TERMINAL_ID,
                             .terminal_password = TERMINAL_PW};
    seqr_client *c = seqr_client_new(&o);
    ck_assert_ptr_nonnull(c);
    buf dbg = BUF_INIT;
    seqr_build_get_payment_status(c, NULL, "1397222701693", 3, true, &dbg);
    ck_assert_ptr_nonnull(strstr(buf_cstr(&dbg), "<invoiceVersion>3</invoiceVersion>"));
    ck_assert_ptr_nonnull(strstr(buf_cstr(&dbg), "********"));
    ck_assert_ptr_null(strstr(buf_cstr(&dbg), TERMINAL_PW));
    buf_reset(&dbg);
    seqr_build_get_payment_status(c, NULL, "1397222701693", 3, false, &dbg);
    ck_assert_ptr_nonnull(strstr(buf_cstr(&dbg), TERMINAL_PW));
    buf_free(&dbg);
    seqr_client_free(c);
}
END_TEST

/* Expects SEQR_ERR_INVALID with a reason that mentions what and never the password. */
static void expect_invalid(seqr_err e, xmlDocPtr doc, const char *err, const char *what)
{
    ck_assert_int_eq(e, SEQR_ERR_INVALID);
    ck_assert_ptr_null(doc);
    ck_assert_msg(strstr(err, what) != NULL, "reason \"%s\" should mention %s", err, what);
    ck_assert_ptr_null(strstr(err, TERMINAL_PW));
}

START_TEST(build_rejects_invalid_input)
{
    xmlDocPtr doc = NULL;
    char err[256];
    seqr_context ctx = terminal_ctx;
    seqr_err e;

    ctx.password = NULL;
    e = seqr_envelope_cancel_invoice(&ctx, "1", &doc, err, sizeof err);
    expect_invalid(e, doc, err, "password");

    ctx = terminal_ctx;
    ctx.client_reference = "123456789012345678901234567890123"; /* 33 */
    e = seqr_envelope_cancel_invoice(&ctx, "1", &doc, err, sizeof err);
    expect_invalid(e, doc, err, "clientReference");

    e = seqr_envelope_cancel_invoice(&terminal_ctx, "", &doc, err, sizeof err);
    expect_invalid(e, doc, err, "invoiceReference");

    e = seqr_envelope_get_payment_status(&terminal_ctx, "1", -1, &doc, err, sizeof err);
    expect_invalid(e, doc, err, "invoiceVersion");

    e = seqr_envelope_execute_report(&terminal_ctx, "r", "en", NULL, 0, &doc, err, sizeof err);
    ck_assert_int_eq(e, SEQR_OK); /* a TERMINALID principal is the caller's choice */
    xmlFreeDoc(doc);
    doc = NULL;

    ctx = reseller_ctx;
    ctx.user_id = NULL;
    e = seqr_envelope_mark_transaction_period(&ctx, NULL, 0, &doc, err, sizeof err);
    expect_invalid(e, doc, err, "userId");

    seqr_invoice inv = fixture_invoice("x");
    inv.currency = "SKR";
    e = seqr_envelope_send_invoice(&terminal_ctx, &inv, NULL, 0, &doc, err, sizeof err);
    expect_invalid(e, doc, err, "currency");

    inv = fixture_invoice("bad \xff utf-8");
    e = seqr_envelope_send_invoice(&terminal_ctx, &inv, NULL, 0, &doc, err, sizeof err);
    expect_invalid(e, doc, err, "title");

    inv = fixture_invoice("bell \x07");
    e = seqr_envelope_send_invoice(&terminal_ctx, &inv, NULL, 0, &doc, err, sizeof err);
    expect_invalid(e, doc, err, "title");

    seqr_invoice_row row = {.quantity_milli = 0, .total = 100};
    inv = fixture_invoice("x");
    inv.rows = &row;
    inv.n_rows = 1;
    e = seqr_envelope_send_invoice(&terminal_ctx, &inv, NULL, 0, &doc, err, sizeof err);
    expect_invalid(e, doc, err, "itemQuantity");

    inv = fixture_invoice("x");
    inv.payment_mode = "PAY_LATER";
    e = seqr_envelope_send_invoice(&terminal_ctx, &inv, NULL, 0, &doc, err, sizeof err);
    expect_invalid(e, doc, err, "paymentMode");

    seqr_invoice refund = {.total = 0, .currency = "SEK"};
    e = seqr_envelope_refund_payment(&terminal_ctx, "2026", &refund, &doc, err, sizeof err);
    expect_invalid(e, doc, err, "totalAmount");

    e = seqr_envelope_submit_payment_receipt(&terminal_ctx, "2026", "text/html", "PAYMENT_RECEIPT",
                                             "<html>", &doc, err, sizeof err);
    expect_invalid(e, doc, err, "base64");

    seqr_param p = {NULL, "x"};
    e = seqr_envelope_mark_transaction_period(&reseller_ctx, &p, 1, &doc, err, sizeof err);
    expect_invalid(e, doc, err, "key");
}
END_TEST

/* --- parsers --- */

static seqr_err parse_fixture_status(const char *name, seqr_payment_status *ps, seqr_result *res)
{
    size_t len = 0;
    char *t = tu_fixture(name, &len);
    seqr_result_reset(res);
    seqr_err e = seqr_parse_get_payment_status(t, len, ps, res);
    free(t);
    return e;
}

START_TEST(parse_status_answers)
{
    seqr_payment_status ps;
    seqr_result res;

    ck_assert_int_eq(parse_fixture_status("getPaymentStatus.response.issued.xml", &ps, &res),
                     SEQR_OK);
    ck_assert_int_eq(res.code, 0);
    ck_assert_str_eq(res.description, "SUCCESS");
    ck_assert_int_eq(ps.status, SEQR_STATUS_ISSUED);
    ck_assert_str_eq(ps.status_text, "ISSUED");
    ck_assert_int_eq(ps.version, 1);
    ck_assert_str_eq(ps.ers_reference, "");
    ck_assert(!ps.receipt.present);
    ck_assert_int_eq(ps.n_tokens, 0);

    ck_assert_int_eq(parse_fixture_status("getPaymentStatus.response.paid.xml", &ps, &res),
                     SEQR_OK);
    ck_assert_int_eq(ps.status, SEQR_STATUS_PAID);
    ck_assert(seqr_status_is_final(ps.status));
    ck_assert_int_eq(ps.version, 2);
    ck_assert_str_eq(ps.ers_reference, "2026112410184861801032678");
    ck_assert(ps.receipt.present);
    ck_assert_str_eq(ps.receipt.terminal_id, TERMINAL_ID);
    ck_assert_str_eq(ps.receipt.payment_date, "2026-11-24T10:18:48.663+01:00");
    ck_assert_str_eq(ps.receipt.invoice_reference, "1397222701693");
    ck_assert_str_eq(ps.receipt.payment_reference, "2026112410184861801032678");
    ck_assert_str_eq(ps.receipt.payer_terminal_id, "d613c5b8428d17248751bc101");
    ck_assert_str_eq(ps.receipt.receiver_name, "Example Shop AB");
    ck_assert_str_eq(ps.receipt.title, "Example Shop order 1001");
    ck_assert_str_eq(ps.receipt.client_invoice_id, "1001");
    ck_assert(ps.receipt.has_total);
    ck_assert_int_eq(ps.receipt.total, 54950);
    ck_assert_str_eq(ps.receipt.currency, "SEK");

    ck_assert_int_eq(parse_fixture_status("getPaymentStatus.response.pending-token.xml", &ps, &res),
                     SEQR_OK);
    ck_assert_int_eq(ps.status, SEQR_STATUS_PENDING_ISSUER_ACKNOWLEDGE);
    ck_assert(!seqr_status_is_final(ps.status));
    ck_assert_int_eq(ps.version, 3);
    ck_assert_int_eq(ps.n_tokens, 1);
    ck_assert_str_eq(ps.tokens[0].description, "Example loyalty card");
    ck_assert_str_eq(ps.tokens[0].id, "X_CARD");
    ck_assert_int_eq(ps.tokens[0].status, 0);
    ck_assert_str_eq(ps.tokens[0].value, "2610411111110");

    ck_assert_int_eq(
        parse_fixture_status("getPaymentStatus.response.other-prefixes.xml", &ps, &res), SEQR_OK);
    ck_assert_int_eq(ps.status, SEQR_STATUS_CANCELED);
    ck_assert_int_eq(ps.version, 4);

    ck_assert_int_eq(parse_fixture_status("getPaymentStatus.response.unknown.xml", &ps, &res),
                     SEQR_ERR_RESULT);
    ck_assert_int_eq(res.code, 54);
    ck_assert_str_eq(res.description, "INVALID_INVOICE_REFERENCE");
    ck_assert_ptr_nonnull(strstr(res.message, "54"));
    ck_assert_int_eq(ps.status, SEQR_STATUS_UNKNOWN);

    ck_assert_int_eq(parse_fixture_status("fault.response.xml", &ps, &res), SEQR_ERR_FAULT);
    ck_assert_str_eq(res.fault_code, "soap:Client");
    ck_assert_str_eq(res.fault_string,
                     "Unmarshalling Error: unexpected element (uri:\"\", local:\"invoiceRowz\")");
    ck_assert_int_eq(res.code, -1);
    ck_assert_ptr_nonnull(strstr(res.message, "soap:Client"));
}
END_TEST

START_TEST(parse_status_names)
{
    for (int s = SEQR_STATUS_UNKNOWN; s <= SEQR_STATUS_FAILED; s++)
        ck_assert_int_eq(seqr_status_parse(seqr_status_name((seqr_status)s)), s);
    ck_assert_int_eq(seqr_status_parse("NEW_THING"), SEQR_STATUS_UNKNOWN);
    ck_assert_int_eq(seqr_status_parse(NULL), SEQR_STATUS_UNKNOWN);
    ck_assert(seqr_status_is_final(SEQR_STATUS_FAILED));
    ck_assert(!seqr_status_is_final(SEQR_STATUS_RESERVED));
    ck_assert_str_eq(seqr_err_name(SEQR_ERR_TIMEOUT), "timeout");
}
END_TEST

/* Returns the fixture with the first occurrence of from replaced by to
 * (caller frees). */
static char *fixture_replace(const char *name, const char *from, const char *to)
{
    size_t len = 0;
    char *t = tu_fixture(name, &len);
    char *hit = strstr(t, from);
    ck_assert_msg(hit != NULL, "%s has no \"%s\"", name, from);
    buf b = BUF_INIT;
    buf_append(&b, t, (size_t)(hit - t));
    buf_puts(&b, to);
    buf_puts(&b, hit + strlen(from));
    free(t);
    return buf_detach(&b);
}

START_TEST(parse_status_edge_cases)
{
    seqr_payment_status ps;
    seqr_result res;
    char *t;

    /* A status we do not know: kept as text. */
    t = fixture_replace("getPaymentStatus.response.issued.xml", "ISSUED", "ON_HOLD_NEW");
    seqr_result_reset(&res);
    ck_assert_int_eq(seqr_parse_get_payment_status(t, strlen(t), &ps, &res), SEQR_OK);
    ck_assert_int_eq(ps.status, SEQR_STATUS_UNKNOWN);
    ck_assert_str_eq(ps.status_text, "ON_HOLD_NEW");
    free(t);

    /* No resultCode. */
    t = fixture_replace("getPaymentStatus.response.issued.xml", "<resultCode>0</resultCode>", "");
    ck_assert_int_eq(seqr_parse_get_payment_status(t, strlen(t), &ps, &res), SEQR_ERR_BAD_ANSWER);
    ck_assert_ptr_nonnull(strstr(res.message, "resultCode"));
    free(t);

    /* Non-numeric resultCode. */
    t = fixture_replace("getPaymentStatus.response.issued.xml", "<resultCode>0<",
                        "<resultCode>zero<");
    ck_assert_int_eq(seqr_parse_get_payment_status(t, strlen(t), &ps, &res), SEQR_ERR_BAD_ANSWER);
    free(t);

    /* Success without status. */
    t = fixture_replace("getPaymentStatus.response.issued.xml", "<status>ISSUED</status>", "");
    ck_assert_int_eq(seqr_parse_get_payment_status(t, strlen(t), &ps, &res), SEQR_ERR_BAD_ANSWER);
    free(t);

    /* An amount with a float exponent in the receipt. */
    t = fixture_replace("getPaymentStatus.response.paid.xml", "<value>549.50</value>",
                        "<value>5.495e2</value>");
    ck_assert_int_eq(seqr_parse_get_payment_status(t, strlen(t), &ps, &res), SEQR_ERR_BAD_ANSWER);
    free(t);

    /* The operation element in another namespace. */
    t = fixture_replace("getPaymentStatus.response.issued.xml",
                        "xmlns:ns2=\"http://external.interfaces.ers.seamless.com/\"",
                        "xmlns:ns2=\"http://example.com/other/\"");
    ck_assert_int_eq(seqr_parse_get_payment_status(t, strlen(t), &ps, &res), SEQR_ERR_BAD_ANSWER);
    free(t);

    /* Whitespace around values is tolerated. */
    t = fixture_replace("getPaymentStatus.response.issued.xml", "<version>1</version>",
                        "<version>\n  7 </version>");
    ck_assert_int_eq(seqr_parse_get_payment_status(t, strlen(t), &ps, &res), SEQR_OK);
    ck_assert_int_eq(ps.version, 7);
    free(t);
}
END_TEST

static char *fixture_text(const char *name, size_t *len)
{
    return tu_fixture(name, len);
}

START_TEST(parse_other_answers)
{
    seqr_result res;
    size_t len;
    char *t;

    seqr_send_invoice_answer si;
    t = fixture_text("sendInvoice.response.xml", &len);
    ck_assert_int_eq(seqr_parse_send_invoice(t, len, &si, &res), SEQR_OK);
    ck_assert_str_eq(si.invoice_reference, "1397222701693");
    ck_assert_str_eq(si.invoice_qr_code, "HTTP://SEQR.SE/R1397222701693");
    /* the same answer is the wrong operation for another parser */
    ck_assert_int_eq(seqr_parse_cancel_invoice(t, len, &res), SEQR_ERR_BAD_ANSWER);
    ck_assert_ptr_nonnull(strstr(res.message, "cancelInvoiceResponse"));
    free(t);

    t = fixture_text("updateInvoice.response.xml", &len);
    ck_assert_int_eq(seqr_parse_update_invoice(t, len, &res), SEQR_OK);
    free(t);

    t = fixture_text("cancelInvoice.response.xml", &len);
    ck_assert_int_eq(seqr_parse_cancel_invoice(t, len, &res), SEQR_OK);
    free(t);
    t = fixture_text("cancelInvoice.response.paid.xml", &len);
    ck_assert_int_eq(seqr_parse_cancel_invoice(t, len, &res), SEQR_ERR_RESULT);
    ck_assert_int_eq(res.code, 50);
    ck_assert_str_eq(res.description, "CANNOT_CANCEL_PAID_INVOICE");
    free(t);

    t = fixture_text("commitReservation.response.xml", &len);
    ck_assert_int_eq(seqr_parse_commit_reservation(t, len, &res), SEQR_OK);
    free(t);

    t = fixture_text("submitPaymentReceipt.response.xml", &len);
    ck_assert_int_eq(seqr_parse_submit_payment_receipt(t, len, &res), SEQR_OK);
    free(t);

    seqr_refund_answer ra;
    t = fixture_text("refundPayment.response.xml", &len);
    ck_assert_int_eq(seqr_parse_refund_payment(t, len, &ra, &res), SEQR_OK);
    ck_assert_str_eq(ra.ers_reference, "2026112411020000101000007");
    free(t);
    t = fixture_text("refundPayment.response.too-much.xml", &len);
    ck_assert_int_eq(seqr_parse_refund_payment(t, len, &ra, &res), SEQR_ERR_RESULT);
    ck_assert_int_eq(res.code, 98);
    ck_assert_str_eq(res.description, "SUM_OF_REFUNDS_CAN_NOT_BE_MORE_THAN_ORIGINAL_TRANSACTION");
    ck_assert_str_eq(ra.ers_reference, "");
    free(t);

    char period[64];
    t = fixture_text("markTransactionPeriod.response.xml", &len);
    ck_assert_int_eq(seqr_parse_mark_transaction_period(t, len, period, &res), SEQR_OK);
    ck_assert_str_eq(period, "2026112418000012301000002");
    free(t);

    seqr_report rep;
    t = fixture_text("executeReport.response.xml", &len);
    ck_assert_int_eq(seqr_parse_execute_report(t, len, &rep, &res), SEQR_OK);
    ck_assert_str_eq(rep.title, "STD_RECON_006_2026112418000012301000002.xml");
    ck_assert_str_eq(rep.mime_type, "text/html");
    ck_assert_ptr_nonnull(rep.content_string);
    ck_assert(strncmp(rep.content_string, "<?xml version=\"1.0\"", 19) == 0);
    ck_assert_ptr_nonnull(strstr(rep.content_string, "<SalesTotal>549.50000</SalesTotal>"));
    ck_assert(strncmp(rep.content, "PD94bWwgdmVyc2lvbj0i", 20) == 0);
    seqr_report_free(&rep);
    ck_assert_ptr_null(rep.title);
    free(t);
    t = fixture_text("executeReport.response.not-ready.xml", &len);
    ck_assert_int_eq(seqr_parse_execute_report(t, len, &rep, &res), SEQR_ERR_RESULT);
    ck_assert_int_eq(res.code, 2);
    ck_assert_str_eq(res.description, "REPORT_NOT_READY");
    ck_assert_ptr_null(rep.content);
    seqr_report_free(&rep);
    free(t);

    char term[64];
    t = fixture_text("registerTerminal.response.xml", &len);
    ck_assert_int_eq(seqr_parse_register_terminal(t, len, term, &res), SEQR_OK);
    ck_assert_str_eq(term, "87e791f9e24148a6892c52aa85bb0331");
    free(t);

    t = fixture_text("unregisterTerminal.response.xml", &len);
    ck_assert_int_eq(seqr_parse_unregister_terminal(t, len, &res), SEQR_OK);
    free(t);

    t = fixture_text("assignSeqrId.response.xml", &len);
    ck_assert_int_eq(seqr_parse_assign_seqr_id(t, len, &res), SEQR_OK);
    free(t);
    t = fixture_text("assignSeqrId.response.invalid.xml", &len);
    ck_assert_int_eq(seqr_parse_assign_seqr_id(t, len, &res), SEQR_ERR_RESULT);
    ck_assert_int_eq(res.code, 53);
    ck_assert_str_eq(res.description, "INVALID_SEQR_ID");
    free(t);

    /* A fault is a fault for every operation. */
    t = fixture_text("fault.response.xml", &len);
    ck_assert_int_eq(seqr_parse_refund_payment(t, len, &ra, &res), SEQR_ERR_FAULT);
    ck_assert_str_eq(res.fault_code, "soap:Client");
    ck_assert_int_eq(seqr_parse_execute_report(t, len, &rep, &res), SEQR_ERR_FAULT);
    seqr_report_free(&rep);
    free(t);
}
END_TEST

static const char billion_laughs[] =
    "<?xml version=\"1.0\"?>\n"
    "<!DOCTYPE lolz [\n"
    " <!ENTITY lol \"lol\">\n"
    " <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
    " <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">\n"
    " <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n"
    " <!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">\n"
    " <!ENTITY lol5 \"&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;\">\n"
    " <!ENTITY lol6 \"&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;\">\n"
    " <!ENTITY lol7 \"&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;\">\n"
    " <!ENTITY lol8 \"&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;\">\n"
    " <!ENTITY lol9 \"&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;\">\n"
    "]>\n"
    "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body>"
    "<ns2:getPaymentStatusResponse xmlns:ns2=\"http://external.interfaces.ers.seamless.com/\">"
    "<return><resultCode>0</resultCode><resultDescription>&lol9;</resultDescription>"
    "<status>PAID</status><version>1</version></return></ns2:getPaymentStatusResponse>"
    "</soap:Body></soap:Envelope>\n";

static const char external_entity[] =
    "<?xml version=\"1.0\"?>\n"
    "<!DOCTYPE r [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\n"
    "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body>"
    "<ns2:getPaymentStatusResponse xmlns:ns2=\"http://external.interfaces.ers.seamless.com/\">"
    "<return><resultCode>0</resultCode><resultDescription>&xxe;</resultDescription>"
    "<status>PAID</status><version>1</version></return></ns2:getPaymentStatusResponse>"
    "</soap:Body></soap:Envelope>\n";

/* A well-formed getPaymentStatus answer padded to about size bytes (caller frees). */
static char *huge_answer(size_t size, size_t *len)
{
    buf b = BUF_INIT;
    buf_puts(&b, "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\">"
                 "<soap:Body><ns2:getPaymentStatusResponse "
                 "xmlns:ns2=\"http://external.interfaces.ers.seamless.com/\"><return>"
                 "<resultCode>0</resultCode><status>PAID</status><version>1</version><pad>");
    buf_grow(&b, size);
    while (b.len < size)
        buf_puts(&b, "padding padding padding padding padding padding padding padding\n");
    buf_puts(&b, "</pad></return></ns2:getPaymentStatusResponse></soap:Body></soap:Envelope>");
    *len = b.len;
    return buf_detach(&b);
}

START_TEST(parse_refuses_hostile_and_broken)
{
    seqr_payment_status ps;
    seqr_result res;

    ck_assert_int_eq(
        seqr_parse_get_payment_status(billion_laughs, strlen(billion_laughs), &ps, &res),
        SEQR_ERR_BAD_ANSWER);
    ck_assert_ptr_null(strstr(res.description, "lollol"));

    ck_assert_int_eq(
        seqr_parse_get_payment_status(external_entity, strlen(external_entity), &ps, &res),
        SEQR_ERR_BAD_ANSWER);
    ck_assert_ptr_null(strstr(res.message, "root:"));
    ck_assert_ptr_null(strstr(res.description, "root:"));

    size_t len = 0;
    char *big = huge_answer(10 * 1024 * 1024, &len);
    ck_assert_int_eq(seqr_parse_get_payment_status(big, len, &ps, &res), SEQR_ERR_BAD_ANSWER);
    ck_assert_ptr_nonnull(strstr(res.message, "larger"));
    free(big);
    /* ... while a padded answer under the cap is fine. */
    big = huge_answer(64 * 1024, &len);
    ck_assert_int_eq(seqr_parse_get_payment_status(big, len, &ps, &res), SEQR_OK);
    free(big);

    char *t = tu_fixture("getPaymentStatus.response.paid.xml", &len);
    for (size_t cut = 1; cut < len - 2; cut += 37) {
        ck_assert_msg(seqr_parse_get_payment_status(t, cut, &ps, &res) == SEQR_ERR_BAD_ANSWER,
                      "truncated at %zu accepted", cut);
    }
    free(t);

    ck_assert_int_eq(seqr_parse_get_payment_status("", 0, &ps, &res), SEQR_ERR_BAD_ANSWER);
    ck_assert_int_eq(seqr_parse_get_payment_status(NULL, 0, &ps, &res), SEQR_ERR_BAD_ANSWER);
    const char *garbage = "HTTP/1.1 502 Bad Gateway\r\n\r\n<html>oops";
    ck_assert_int_eq(seqr_parse_get_payment_status(garbage, strlen(garbage), &ps, &res),
                     SEQR_ERR_BAD_ANSWER);
    const char *html = "<html><body>Service Unavailable</body></html>";
    ck_assert_int_eq(seqr_parse_get_payment_status(html, strlen(html), &ps, &res),
                     SEQR_ERR_BAD_ANSWER);
    ck_assert_ptr_nonnull(strstr(res.message, "SOAP"));
    const char *noreturn =
        "<S:Envelope xmlns:S=\"http://schemas.xmlsoap.org/soap/envelope/\"><S:Body>"
        "<e:getPaymentStatusResponse xmlns:e=\"http://external.interfaces.ers.seamless.com/\"/>"
        "</S:Body></S:Envelope>";
    ck_assert_int_eq(seqr_parse_get_payment_status(noreturn, strlen(noreturn), &ps, &res),
                     SEQR_ERR_BAD_ANSWER);
}
END_TEST

/* The streaming read (the poller's) against the tree reading, on answers
 * that probe how each finds its texts: both must agree on everything. */
#define ENV_OPEN                                                                                   \
    "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body>"          \
    "<ns2:getPaymentStatusResponse xmlns:ns2=\"http://external.interfaces.ers.seamless.com/\">"
#define ENV_CLOSE "</ns2:getPaymentStatusResponse></soap:Body></soap:Envelope>"
#define OK_HEAD "<return><resultCode>0</resultCode>"

static const char *const status_probes[] = {
    /* duplicates: the first of each name counts */
    ENV_OPEN OK_HEAD "<status>PAID</status><status>ISSUED</status><version>3</version>"
                     "<version>x</version><resultCode>7</resultCode></return>"
                     "<return><resultCode>9</resultCode></return>" ENV_CLOSE,
    /* text inside nested elements, CDATA, entities, comments */
    ENV_OPEN OK_HEAD "<status>PA<b>I</b><!-- c -->D</status><version><![CDATA[ 4 ]]></version>"
                     "<resultDescription>Fish &amp; &lt;Chips&gt; &#x41;</resultDescription>"
                     "</return>" ENV_CLOSE,
    /* surrounding whitespace, long whitespace, too long after it */
    ENV_OPEN OK_HEAD "<status>\n\t  RESERVED  \r\n</status><version>  2  </version>"
                     "<ersReference>                                                     "
                     "                                                       abc        "
                     "                                                                   "
                     "</ersReference></return>" ENV_CLOSE,
    ENV_OPEN OK_HEAD "<status>PAID</status><version>2</version><ersReference>"
                     "0123456789012345678901234567890123456789012345678901234567890123"
                     "</ersReference></return>" ENV_CLOSE,
    ENV_OPEN OK_HEAD "<status>PAID</status><version>2</version><ersReference>"
                     "012345678901234567890123456789012345678901234567890123456789012"
                     "</ersReference></return>" ENV_CLOSE,
    ENV_OPEN OK_HEAD "<status>PAID</status><version>2</version><ersReference>"
                     "012345678901234567890123456789012345678901234567890123456789012  "
                     "     </ersReference></return>" ENV_CLOSE,
    /* what was kept ends in whitespace, but more text follows it */
    ENV_OPEN OK_HEAD "<status>PAID</status><version>2</version><ersReference>"
                     "012345678901234567890123456789012345678901234567890123456789    z"
                     "</ersReference></return>" ENV_CLOSE,
    ENV_OPEN OK_HEAD "<status>PAID</status><version>2</version><resultDescription>"
                     "0123456789012345678901234567890123456789012345678901234567890123456789"
                     "012345678901234567890123456789012345678901234567890123          z"
                     "</resultDescription></return>" ENV_CLOSE,
    /* a long status and description are cut on a UTF-8 boundary */
    ENV_OPEN OK_HEAD
    "<status>ÅÄÖÅÄÖÅÄÖÅÄÖÅÄÖÅÄÖÅÄÖÅÄÖÅÄÖÅÄÖÅÄÖÅÄÖ</status><version>1</version>"
    "<resultDescription>ééééééééééééééééééééééééééééééééééééééééééééééééééééééééééé"
    "éééééééééééééééééééééééééééééééééééééééééééééééééééééééééééé</resultDescription>"
    "</return>" ENV_CLOSE,
    /* integers */
    ENV_OPEN "<return><resultCode> -5 </resultCode></return>" ENV_CLOSE,
    ENV_OPEN "<return><resultCode>99999999999</resultCode></return>" ENV_CLOSE,
    ENV_OPEN
    "<return><resultCode>00000000000000000000000000000000000001</resultCode></return>" ENV_CLOSE,
    ENV_OPEN OK_HEAD "<status>PAID</status><version>-1</version></return>" ENV_CLOSE,
    ENV_OPEN OK_HEAD "<status>PAID</status><version>1 2</version></return>" ENV_CLOSE,
    ENV_OPEN OK_HEAD "<status> </status><version>1</version></return>" ENV_CLOSE,
    /* namespaces: wrong, none, undeclared prefix, default namespace */
    "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body>"
    "<ns2:getPaymentStatusResponse xmlns:ns2=\"http://example.com/\">" OK_HEAD
    "<status>PAID</status><version>1</version></return>" ENV_CLOSE,
    "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body>"
    "<getPaymentStatusResponse>" OK_HEAD "<status>PAID</status><version>1</version></return>"
    "</getPaymentStatusResponse></soap:Body></soap:Envelope>",
    "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body>"
    "<x:getPaymentStatusResponse>" OK_HEAD "<status>PAID</status><version>1</version></return>"
    "</x:getPaymentStatusResponse></soap:Body></soap:Envelope>",
    "<Envelope xmlns=\"http://schemas.xmlsoap.org/soap/envelope/\"><Body>"
    "<getPaymentStatusResponse xmlns=\"http://external.interfaces.ers.seamless.com/\">"
    "<return xmlns=\"\"><resultCode>0</resultCode><status>PAID</status><version>1</version>"
    "</return></getPaymentStatusResponse></Body></Envelope>",
    ENV_OPEN OK_HEAD "<q:status>PAID</q:status><version>1</version></return>" ENV_CLOSE,
    "<soap:Envelope xmlns:soap=\"http://example.com/soap\"><soap:Body>"
    "<ns2:getPaymentStatusResponse "
    "xmlns:ns2=\"http://external.interfaces.ers.seamless.com/\">" OK_HEAD
    "<status>PAID</status><version>1</version></return>" ENV_CLOSE,
    /* the body: header first, a second Body, an empty Body, another operation */
    "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Header>"
    "<soap:Body/></soap:Header><soap:Body>"
    "<ns2:getPaymentStatusResponse "
    "xmlns:ns2=\"http://external.interfaces.ers.seamless.com/\">" OK_HEAD
    "<status>PAID</status><version>1</version></return>" ENV_CLOSE,
    "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body/>"
    "<soap:Body>"
    "<ns2:getPaymentStatusResponse "
    "xmlns:ns2=\"http://external.interfaces.ers.seamless.com/\">" OK_HEAD
    "<status>PAID</status><version>1</version></return>" ENV_CLOSE,
    "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body>"
    "<ns2:cancelInvoiceResponse xmlns:ns2=\"http://external.interfaces.ers.seamless.com/\">" OK_HEAD
    "</return></ns2:cancelInvoiceResponse></soap:Body></soap:Envelope>",
    "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body>"
    "<ns2:getPaymentStatusResponseWithAVeryLongNameThatGoesOnAndOnAndOnAndOnAndOnAndOnAndOn "
    "xmlns:ns2=\"http://external.interfaces.ers.seamless.com/\"/></soap:Body></soap:Envelope>",
    /* faults: long texts, nested, whitespace kept, missing parts, a non-SOAP Fault */
    "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body>"
    "<soap:Fault><faultcode>  soap:Server\n</faultcode><faultstring>a<b>b</b>c"
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    "yyyy</faultstring><faultcode>second</faultcode></soap:Fault></soap:Body></soap:Envelope>",
    "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body>"
    "<soap:Fault/></soap:Body></soap:Envelope>",
    "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body>"
    "<Fault><faultcode>x</faultcode></Fault></soap:Body></soap:Envelope>",
    /* receipt, invoice, amount and tokens (more than kept) */
    ENV_OPEN OK_HEAD "<status>PAID</status><version>2</version><ersReference>e1</ersReference>"
                     "<receipt><terminalId>t</terminalId><receiverName>Shop</receiverName>"
                     "<invoice><title>T</title><totalAmount><value>549.50</value>"
                     "<currency>SEK</currency></totalAmount><totalAmount><value>x</value>"
                     "</totalAmount></invoice><invoice/></receipt><receipt/>"
                     "<customerTokens><id>1</id><status>1</status><value>v</value></customerTokens>"
                     "<customerTokens><status>x</status></customerTokens>"
                     "</return>" ENV_CLOSE,
    ENV_OPEN OK_HEAD "<status>PAID</status><version>2</version><receipt><invoice><totalAmount>"
                     "<value>5.5</value><currency>SEK</currency></totalAmount></invoice></receipt>"
                     "</return>" ENV_CLOSE,
    ENV_OPEN OK_HEAD "<status>PAID</status><version>2</version><receipt><invoice><totalAmount>"
                     "<value>5.50</value><currency>SEKK</currency></totalAmount></invoice>"
                     "</receipt></return>" ENV_CLOSE,
    ENV_OPEN OK_HEAD "<status>PAID</status><version>2</version>"
                     "<customerTokens><id>1</id></customerTokens><customerTokens><id>2</id>"
                     "</customerTokens><customerTokens><id>3</id></customerTokens><customerTokens>"
                     "<id>4</id></customerTokens><customerTokens><id>5</id></customerTokens>"
                     "<customerTokens><id>6</id></customerTokens><customerTokens><id>7</id>"
                     "</customerTokens><customerTokens><id>8</id></customerTokens><customerTokens>"
                     "<status>not kept</status></customerTokens></return>" ENV_CLOSE,
    /* fields where they do not belong */
    ENV_OPEN "<status>PAID</status><return><resultCode>0</resultCode><x><status>PAID</status>"
             "</x><version>1</version></return>" ENV_CLOSE,
    /* broken: undefined entity, bad nesting, a DOCTYPE without entities */
    ENV_OPEN OK_HEAD "<status>&nope;</status><version>1</version></return>" ENV_CLOSE,
    ENV_OPEN OK_HEAD "<status>PAID</version></return>" ENV_CLOSE,
    "<!DOCTYPE soap:Envelope>" ENV_OPEN OK_HEAD "<status>PAID</status><version>1</version>"
    "</return>" ENV_CLOSE,
    "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>" ENV_OPEN OK_HEAD
    "<status>PAID</status><version>1</version><receipt><receiverName>\xc5land</receiverName>"
    "</receipt></return>" ENV_CLOSE,
};

/* "<" and three NUL bytes make libxml2 read UCS-4, which the rest cannot be
 * converted from: the parser halts without an error of the document's own.
 * Both readers must call that malformed, alike (the streaming one once took
 * the empty read for an answer without an envelope). */
START_TEST(parse_unconvertible_encoding_is_malformed_both_ways)
{
    static const char tail[] = "soap:Envelope xmlns:soap=\"" SEQR_XML_SOAP_NS "\">"
                               "<soap:Body/></soap:Envelope>";
    char d[4 + sizeof tail];
    memcpy(d, "<\0\0\0", 4);
    memcpy(d + 4, tail, sizeof tail - 1);
    size_t len = 4 + sizeof tail - 1;
    seqr_payment_status a, b;
    seqr_result ra, rb;
    memset(&ra, 0, sizeof ra);
    memset(&rb, 0, sizeof rb);
    ck_assert_int_eq(seqr_parse_get_payment_status(d, len, &a, &ra), SEQR_ERR_BAD_ANSWER);
    ck_assert_int_eq(seqr_parse_get_payment_status_tree(d, len, &b, &rb), SEQR_ERR_BAD_ANSWER);
    ck_assert_msg(strstr(ra.message, "malformed XML") != NULL, "streaming: %s", ra.message);
    ck_assert_str_eq(ra.message, rb.message);
    char err[200];
    ck_assert_ptr_null(seqr_xml_parse(d, len, err, sizeof err));
}
END_TEST

START_TEST(parse_status_streaming_matches_tree)
{
    for (size_t i = 0; i < sizeof status_probes / sizeof status_probes[0]; i++) {
        const char *d = status_probes[i];
        seqr_payment_status a, b;
        seqr_result ra, rb;
        memset(&ra, 0, sizeof ra);
        memset(&rb, 0, sizeof rb);
        seqr_err ea = seqr_parse_get_payment_status(d, strlen(d), &a, &ra);
        seqr_err eb = seqr_parse_get_payment_status_tree(d, strlen(d), &b, &rb);
        ck_assert_msg(ea == eb, "probe %zu: streaming %s (%s), tree %s (%s)", i, seqr_err_name(ea),
                      ra.message, seqr_err_name(eb), rb.message);
        ck_assert_msg(memcmp(&a, &b, sizeof a) == 0, "probe %zu: fields differ", i);
        ck_assert_msg(strcmp(ra.message, rb.message) == 0, "probe %zu: '%s' vs '%s'", i, ra.message,
                      rb.message);
        ck_assert_int_eq(ra.code, rb.code);
        ck_assert_str_eq(ra.description, rb.description);
        ck_assert_str_eq(ra.fault_code, rb.fault_code);
        ck_assert_str_eq(ra.fault_string, rb.fault_string);
    }
    /* A few verdicts spelled out, so that both cannot be wrong alike. */
    seqr_payment_status ps;
    seqr_result res;
    ck_assert_int_eq(
        seqr_parse_get_payment_status(status_probes[0], strlen(status_probes[0]), &ps, &res),
        SEQR_OK);
    ck_assert_int_eq(ps.status, SEQR_STATUS_PAID);
    ck_assert_int_eq(ps.version, 3);
    ck_assert_int_eq(
        seqr_parse_get_payment_status(status_probes[1], strlen(status_probes[1]), &ps, &res),
        SEQR_OK);
    ck_assert_int_eq(ps.status, SEQR_STATUS_PAID);
    ck_assert_int_eq(ps.version, 4);
    ck_assert_str_eq(res.description, "Fish & <Chips> A");
    ck_assert_int_eq(
        seqr_parse_get_payment_status(status_probes[3], strlen(status_probes[3]), &ps, &res),
        SEQR_ERR_BAD_ANSWER);
    ck_assert_int_eq(
        seqr_parse_get_payment_status(status_probes[4], strlen(status_probes[4]), &ps, &res),
        SEQR_OK);
    ck_assert_int_eq(
        seqr_parse_get_payment_status(status_probes[5], strlen(status_probes[5]), &ps, &res),
        SEQR_OK);
}
END_TEST

/* --- a tiny HTTP(S) listener on libmicrohttpd --- */

typedef struct {
    struct MHD_Daemon *d;
    int port;
    pthread_mutex_t lock;
    /* what to answer (set before requests arrive) */
    unsigned int status;
    const char *body; /* borrowed; copied into each answer */
    size_t body_len;
    int delay_ms;
    volatile bool stopping;
    /* what was seen */
    int requests;
    int connections;
    char method[16];
    char soap_action[64];
    char content_type[64];
    char user_agent[128];
    buf last_body;
} listener;

static void listener_copy_header(struct MHD_Connection *conn, const char *name, char *dst,
                                 size_t dstlen)
{
    const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
    snprintf(dst, dstlen, "%s", v ? v : "(absent)");
}

static enum MHD_Result listener_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                        const char *method, const char *version,
                                        const char *upload_data, size_t *upload_size,
                                        void **con_cls)
{
    (void)url;
    (void)version;
    listener *l = cls;
    buf *body = *con_cls;
    if (body == NULL) {
        body = calloc(1, sizeof *body);
        if (body == NULL)
            return MHD_NO;
        *con_cls = body;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        buf_append(body, upload_data, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&l->lock);
    l->requests++;
    snprintf(l->method, sizeof l->method, "%s", method);
    listener_copy_header(conn, "SOAPAction", l->soap_action, sizeof l->soap_action);
    listener_copy_header(conn, "Content-Type", l->content_type, sizeof l->content_type);
    listener_copy_header(conn, "User-Agent", l->user_agent, sizeof l->user_agent);
    buf_reset(&l->last_body);
    buf_append(&l->last_body, buf_cstr(body), body->len);
    int delay = l->delay_ms;
    unsigned int status = l->status;
    const char *answer = l->body;
    size_t answer_len = l->body_len;
    pthread_mutex_unlock(&l->lock);

    long long end = tu_now_ms() + delay;
    while (delay > 0 && !l->stopping && tu_now_ms() < end)
        tu_sleep_ms(10);

    struct MHD_Response *resp =
        MHD_create_response_from_buffer(answer_len, (void *)answer, MHD_RESPMEM_MUST_COPY);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "text/xml; charset=utf-8");
    enum MHD_Result ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void listener_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                               enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    buf *body = *con_cls;
    if (body != NULL) {
        buf_free(body);
        free(body);
        *con_cls = NULL;
    }
}

static void listener_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                                enum MHD_ConnectionNotificationCode toe)
{
    (void)conn;
    (void)socket_context;
    listener *l = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        pthread_mutex_lock(&l->lock);
        l->connections++;
        pthread_mutex_unlock(&l->lock);
    }
}

/* Starts a listener on a free loopback port answering status/body. */
static listener *listener_start(bool tls, unsigned int status, const char *body)
{
    listener *l = calloc(1, sizeof *l);
    ck_assert_ptr_nonnull(l);
    pthread_mutex_init(&l->lock, NULL);
    buf_init(&l->last_body);
    l->status = status;
    l->body = body;
    l->body_len = strlen(body);
    for (int attempt = 0; attempt < 20 && l->d == NULL; attempt++) {
        l->port = tu_free_port();
        struct sockaddr_in sa;
        memset(&sa, 0, sizeof sa);
        sa.sin_family = AF_INET;
        sa.sin_port = htons((uint16_t)l->port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION;
        if (tls)
            l->d = MHD_start_daemon(
                flags | MHD_USE_TLS, 0, NULL, NULL, listener_handler, l, MHD_OPTION_SOCK_ADDR,
                (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, listener_completed, l,
                MHD_OPTION_NOTIFY_CONNECTION, listener_connection, l, MHD_OPTION_HTTPS_MEM_KEY,
                test_tls_key, MHD_OPTION_HTTPS_MEM_CERT, test_tls_cert, MHD_OPTION_END);
        else
            l->d = MHD_start_daemon(flags, 0, NULL, NULL, listener_handler, l, MHD_OPTION_SOCK_ADDR,
                                    (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED,
                                    listener_completed, l, MHD_OPTION_NOTIFY_CONNECTION,
                                    listener_connection, l, MHD_OPTION_END);
    }
    ck_assert_msg(l->d != NULL, "cannot start the test listener");
    return l;
}

static void listener_answer(listener *l, unsigned int status, const char *body)
{
    pthread_mutex_lock(&l->lock);
    l->status = status;
    l->body = body;
    l->body_len = strlen(body);
    pthread_mutex_unlock(&l->lock);
}

static void listener_delay(listener *l, int ms)
{
    pthread_mutex_lock(&l->lock);
    l->delay_ms = ms;
    pthread_mutex_unlock(&l->lock);
}

static int listener_requests(listener *l)
{
    pthread_mutex_lock(&l->lock);
    int n = l->requests;
    pthread_mutex_unlock(&l->lock);
    return n;
}

static int listener_connections(listener *l)
{
    pthread_mutex_lock(&l->lock);
    int n = l->connections;
    pthread_mutex_unlock(&l->lock);
    return n;
}

/* Local name of the operation element of the last request ("" if none). */
static void listener_last_op(listener *l, char *dst, size_t dstlen)
{
    char err[256];
    dst[0] = '\0';
    pthread_mutex_lock(&l->lock);
    xmlDocPtr doc = seqr_xml_parse(l->last_body.data, l->last_body.len, err, sizeof err);
    pthread_mutex_unlock(&l->lock);
    if (doc == NULL)
        return;
    snprintf(dst, dstlen, "%s", seqr_xml_name(seqr_xml_body_child(doc)));
    xmlFreeDoc(doc);
}

static void listener_stop(listener *l)
{
    l->stopping = true;
    MHD_stop_daemon(l->d);
    buf_free(&l->last_body);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

static seqr_client *test_client(const char *scheme, int port, long timeout_ms, const char *ca_file,
                                bool with_reseller)
{
    char url[128];
    snprintf(url, sizeof url, "%s://127.0.0.1:%d/soap/merchant/cashregister-2", scheme, port);
    seqr_client_options o = {0};
    o.url = url;
    o.ca_file = ca_file;
    o.timeout_ms = timeout_ms;
    o.user_agent = "seqr-gateway-test/1";
    o.channel = "WS";
    o.client_id = "Example Shop AB";
    o.client_reference = "seqr-gateway 0.1.0";
    o.terminal_id = TERMINAL_ID;
    o.terminal_password = TERMINAL_PW;
    if (with_reseller) {
        o.reseller_id = "example-reseller";
        o.reseller_user_id = "9900";
        o.reseller_password = RESELLER_PW;
    }
    seqr_client *c = seqr_client_new(&o);
    ck_assert_ptr_nonnull(c);
    return c;
}

static void expect_clean_message(const seqr_result *res)
{
    ck_assert_msg(res->message[0] != '\0', "empty message");
    ck_assert_ptr_null(strstr(res->message, TERMINAL_PW));
    ck_assert_ptr_null(strstr(res->message, RESELLER_PW));
    ck_assert_ptr_null(strchr(res->message, '\n'));
}

/* --- transport --- */

static char *paid_answer; /* fixture texts loaded once per test */
static char *fault_answer;

static void load_answers(void)
{
    size_t len;
    paid_answer = tu_fixture("getPaymentStatus.response.paid.xml", &len);
    fault_answer = tu_fixture("fault.response.xml", &len);
}

static void free_answers(void)
{
    free(paid_answer);
    free(fault_answer);
    paid_answer = NULL;
    fault_answer = NULL;
}

START_TEST(transport_success_and_headers)
{
    load_answers();
    listener *l = listener_start(false, 200, paid_answer);
    seqr_client *c = test_client("http", l->port, 5000, NULL, false);
    seqr_payment_status ps;
    seqr_result res;
    seqr_err e = seqr_get_payment_status(c, NULL, "1397222701693", 1, &ps, &res);
    ck_assert_msg(e == SEQR_OK, "got %s: %s", seqr_err_name(e), res.message);
    ck_assert_int_eq(res.http_status, 200);
    ck_assert_int_eq(ps.status, SEQR_STATUS_PAID);
    ck_assert_int_eq(ps.receipt.total, 54950);
    expect_clean_message(&res);

    ck_assert_str_eq(l->method, "POST");
    ck_assert_str_eq(l->soap_action, "\"\"");
    ck_assert_str_eq(l->content_type, "text/xml; charset=utf-8");
    ck_assert_str_eq(l->user_agent, "seqr-gateway-test/1");
    char op[64];
    listener_last_op(l, op, sizeof op);
    ck_assert_str_eq(op, "getPaymentStatus");
    ck_assert_ptr_nonnull(strstr(l->last_body.data, "<invoiceVersion>1</invoiceVersion>"));
    ck_assert_ptr_nonnull(strstr(l->last_body.data, "<password>" TERMINAL_PW "</password>"));

    /* Connection reuse: more calls, still one connection. */
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(seqr_get_payment_status(c, NULL, "1397222701693", 2, &ps, &res), SEQR_OK);
    ck_assert_int_eq(listener_requests(l), 5);
    ck_assert_int_eq(listener_connections(l), 1);

    /* A per-call terminal override and clientReference. */
    seqr_call_opts o = {.client_reference = "order-1001",
                        .terminal_id = "other-terminal",
                        .terminal_password = "other-secret"};
    ck_assert_int_eq(seqr_get_payment_status(c, &o, "1397222701693", 2, &ps, &res), SEQR_OK);
    ck_assert_ptr_nonnull(strstr(l->last_body.data, "<id>other-terminal</id>"));
    ck_assert_ptr_nonnull(strstr(l->last_body.data, "<password>other-secret</password>"));
    ck_assert_ptr_nonnull(
        strstr(l->last_body.data, "<clientReference>order-1001</clientReference>"));
    seqr_call_opts nopw = {.terminal_id = "other-terminal"};
    ck_assert_int_eq(seqr_get_payment_status(c, &nopw, "1397222701693", 2, &ps, &res),
                     SEQR_ERR_INVALID);
    ck_assert_int_eq(listener_requests(l), 6);

    seqr_client_free(c);
    listener_stop(l);
    free_answers();
}
END_TEST

typedef struct {
    seqr_client *c;
    int ok;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *a = p;
    for (int i = 0; i < 10; i++) {
        seqr_payment_status ps;
        seqr_result res;
        if (seqr_get_payment_status(a->c, NULL, "1397222701693", i, &ps, &res) == SEQR_OK &&
            ps.status == SEQR_STATUS_PAID)
            a->ok++;
    }
    return NULL;
}

START_TEST(transport_threads)
{
    load_answers();
    listener *l = listener_start(false, 200, paid_answer);
    seqr_client *c = test_client("http", l->port, 5000, NULL, false);
    pthread_t th[4];
    worker_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i].c = c;
        args[i].ok = 0;
        ck_assert_int_eq(pthread_create(&th[i], NULL, worker, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(args[i].ok, 10);
    }
    ck_assert_int_eq(listener_requests(l), 40);
    ck_assert_int_le(listener_connections(l), 4);
    seqr_client_free(c);
    listener_stop(l);
    free_answers();
}
END_TEST

START_TEST(transport_errors)
{
    load_answers();
    seqr_payment_status ps;
    seqr_result res;
    seqr_err e;

    /* Nothing listening. */
    int dead = tu_free_port();
    seqr_client *c = test_client("http", dead, 2000, NULL, false);
    e = seqr_get_payment_status(c, NULL, "1", 0, &ps, &res);
    ck_assert_msg(e == SEQR_ERR_CONNECT, "got %s: %s", seqr_err_name(e), res.message);
    ck_assert_int_eq(res.code, -1);
    ck_assert_int_eq(res.http_status, 0);
    expect_clean_message(&res);
    seqr_client_free(c);

    listener *l = listener_start(false, 200, paid_answer);
    c = test_client("http", l->port, 300, NULL, false);

    /* Too slow. */
    listener_delay(l, 1500);
    long long t0 = tu_now_ms();
    e = seqr_get_payment_status(c, NULL, "1", 0, &ps, &res);
    ck_assert_msg(e == SEQR_ERR_TIMEOUT, "got %s: %s", seqr_err_name(e), res.message);
    ck_assert_int_lt(tu_now_ms() - t0, 1400);
    expect_clean_message(&res);
    listener_delay(l, 0);

    /* HTTP 500 with a fault. */
    listener_answer(l, 500, fault_answer);
    e = seqr_get_payment_status(c, NULL, "1", 0, &ps, &res);
    ck_assert_msg(e == SEQR_ERR_FAULT, "got %s: %s", seqr_err_name(e), res.message);
    ck_assert_int_eq(res.http_status, 500);
    ck_assert_str_eq(res.fault_code, "soap:Client");
    ck_assert_ptr_nonnull(strstr(res.fault_string, "invoiceRowz"));
    expect_clean_message(&res);

    /* HTTP 500 without a fault. */
    listener_answer(l, 500, "<html><body>Internal Server Error</body></html>");
    e = seqr_get_payment_status(c, NULL, "1", 0, &ps, &res);
    ck_assert_msg(e == SEQR_ERR_BAD_ANSWER, "got %s: %s", seqr_err_name(e), res.message);
    ck_assert_int_eq(res.http_status, 500);
    ck_assert_ptr_nonnull(strstr(res.message, "500"));

    /* HTTP 500 with a well-formed normal answer is still not a valid answer. */
    listener_answer(l, 500, paid_answer);
    ck_assert_int_eq(seqr_get_payment_status(c, NULL, "1", 0, &ps, &res), SEQR_ERR_BAD_ANSWER);

    /* HTTP 200 garbage. */
    listener_answer(l, 200, "this is not XML");
    ck_assert_int_eq(seqr_get_payment_status(c, NULL, "1", 0, &ps, &res), SEQR_ERR_BAD_ANSWER);
    ck_assert_int_eq(res.http_status, 200);

    /* HTTP 200 with a DOCTYPE bomb. */
    listener_answer(l, 200, billion_laughs);
    ck_assert_int_eq(seqr_get_payment_status(c, NULL, "1", 0, &ps, &res), SEQR_ERR_BAD_ANSWER);

    /* HTTP 404. */
    listener_answer(l, 404, "Not Found");
    ck_assert_int_eq(seqr_get_payment_status(c, NULL, "1", 0, &ps, &res), SEQR_ERR_BAD_ANSWER);
    ck_assert_int_eq(res.http_status, 404);

    /* HTTP 503 from a balancer in front of SEQR: it may have forwarded the
     * request, so it is "unavailable", never "could not connect"; 504 is a bad
     * answer. Both leave a money-moving call's outcome unknown. */
    listener_answer(l, 503, "Service Unavailable");
    ck_assert_int_eq(seqr_get_payment_status(c, NULL, "1", 0, &ps, &res), SEQR_ERR_UNAVAILABLE);
    ck_assert_int_eq(res.http_status, 503);
    listener_answer(l, 504, "Gateway Timeout");
    ck_assert_int_eq(seqr_get_payment_status(c, NULL, "1", 0, &ps, &res), SEQR_ERR_BAD_ANSWER);

    /* resultCode != 0. */
    size_t len;
    char *unknown = tu_fixture("getPaymentStatus.response.unknown.xml", &len);
    listener_answer(l, 200, unknown);
    e = seqr_get_payment_status(c, NULL, "1", 0, &ps, &res);
    ck_assert_int_eq(e, SEQR_ERR_RESULT);
    ck_assert_int_eq(res.code, 54);
    ck_assert_str_eq(res.description, "INVALID_INVOICE_REFERENCE");
    expect_clean_message(&res);

    /* A fault that echoes the password is scrubbed. */
    buf echo = BUF_INIT;
    seqr_xml_build_fault("soap:Server", "bad login for " TERMINAL_PW "\nsecond line", &echo);
    listener_answer(l, 500, buf_cstr(&echo));
    e = seqr_get_payment_status(c, NULL, "1", 0, &ps, &res);
    ck_assert_int_eq(e, SEQR_ERR_FAULT);
    expect_clean_message(&res);
    ck_assert_ptr_null(strstr(res.fault_string, TERMINAL_PW));
    ck_assert_ptr_nonnull(strstr(res.message, "bad login for ********"));

    /* 10 MB answer: the transfer is cut off at the cap. */
    char *big = huge_answer(10 * 1024 * 1024, &len);
    listener_answer(l, 200, big);
    seqr_client_free(c);
    c = test_client("http", l->port, 10000, NULL, false);
    e = seqr_get_payment_status(c, NULL, "1", 0, &ps, &res);
    ck_assert_msg(e == SEQR_ERR_BAD_ANSWER, "got %s: %s", seqr_err_name(e), res.message);
    ck_assert_ptr_nonnull(strstr(res.message, "larger"));

    /* Reseller calls without a reseller principal send nothing. */
    int before = listener_requests(l);
    char period[64];
    e = seqr_mark_transaction_period(c, NULL, NULL, 0, period, &res);
    ck_assert_int_eq(e, SEQR_ERR_INVALID);
    ck_assert_int_eq(listener_requests(l), before);
    expect_clean_message(&res);
    /* ... and neither does an invalid request. */
    e = seqr_commit_reservation(c, NULL, "1", 100, "XXX", &res);
    ck_assert_int_eq(e, SEQR_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(res.message, "currency"));
    ck_assert_int_eq(listener_requests(l), before);

    seqr_client_free(c);
    listener_stop(l);
    free(big);
    free(unknown);
    buf_free(&echo);
    free_answers();
}
END_TEST

START_TEST(transport_tls)
{
    load_answers();
    seqr_payment_status ps;
    seqr_result res;
    seqr_err e;

    /* https:// to a plain HTTP listener. */
    listener *plain = listener_start(false, 200, paid_answer);
    seqr_client *c = test_client("https", plain->port, 3000, NULL, false);
    e = seqr_get_payment_status(c, NULL, "1", 0, &ps, &res);
    ck_assert_msg(e == SEQR_ERR_CONNECT, "got %s: %s", seqr_err_name(e), res.message);
    seqr_client_free(c);
    listener_stop(plain);

    /* A certificate nobody vouches for. */
    listener *l = listener_start(true, 200, paid_answer);
    c = test_client("https", l->port, 3000, NULL, false);
    e = seqr_get_payment_status(c, NULL, "1", 0, &ps, &res);
    ck_assert_msg(e == SEQR_ERR_CONNECT, "got %s: %s", seqr_err_name(e), res.message);
    expect_clean_message(&res);
    ck_assert_int_eq(listener_requests(l), 0);
    seqr_client_free(c);

    /* The same certificate trusted through ca_file. */
    char *dir = tu_tempdir();
    ck_assert_ptr_nonnull(dir);
    char path[600];
    snprintf(path, sizeof path, "%s/ca.pem", dir);
    ck_assert(tu_write_file(path, test_tls_cert));
    c = test_client("https", l->port, 3000, path, false);
    e = seqr_get_payment_status(c, NULL, "1", 0, &ps, &res);
    ck_assert_msg(e == SEQR_OK, "got %s: %s", seqr_err_name(e), res.message);
    ck_assert_int_eq(ps.status, SEQR_STATUS_PAID);
    ck_assert_str_eq(l->soap_action, "\"\"");
    seqr_client_free(c);

    listener_stop(l);
    unlink(path);
    rmdir(dir);
    free(dir);
    free_answers();
}
END_TEST

/* Runs every request in rs[0..n) on m until all are done; stores the results. */
static void run_multi(CURLM *m, seqr_status_request **rs, int n, seqr_err *errs,
                      seqr_payment_status *pss, seqr_result *ress)
{
    for (int i = 0; i < n; i++) {
        ck_assert_ptr_nonnull(rs[i]);
        seqr_status_request_set_user(rs[i], &errs[i]);
        ck_assert_int_eq(curl_multi_add_handle(m, seqr_status_request_easy(rs[i])), CURLM_OK);
    }
    int done = 0;
    long long end = tu_now_ms() + 15000;
    while (done < n && tu_now_ms() < end) {
        int running = 0;
        ck_assert_int_eq(curl_multi_perform(m, &running), CURLM_OK);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            seqr_status_request *r = NULL;
            ck_assert_int_eq(curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r),
                             CURLE_OK);
            CURLcode rc = msg->data.result;
            CURL *easy = msg->easy_handle;
            seqr_err *slot = seqr_status_request_user(r);
            int i = (int)(slot - errs);
            ck_assert(i >= 0 && i < n);
            *slot = seqr_status_request_finish(r, rc, &pss[i], &ress[i]);
            ck_assert_int_eq(curl_multi_remove_handle(m, easy), CURLM_OK);
            seqr_status_request_free(r);
            rs[i] = NULL;
            done++;
        }
        if (done < n)
            ck_assert_int_eq(curl_multi_poll(m, NULL, 0, 100, NULL), CURLM_OK);
    }
    ck_assert_int_eq(done, n);
}

/* --- answers parsed once (seqr/memo.h) --- */

/* What seqr_status_finish_http1 gives for body answered with http_status. */
static seqr_err finish_status(seqr_client *c, int http_status, const char *body, size_t len,
                              seqr_payment_status *ps, seqr_result *res)
{
    seqr_http1_result hr;
    memset(&hr, 0, sizeof hr);
    hr.err = SEQR_HTTP1_OK;
    hr.http_status = http_status;
    hr.body = body;
    hr.body_len = len;
    return seqr_status_finish_http1(c, NULL, &hr, ps, res);
}

/* The same answer through the client twice gives what parsing it gives. */
static void expect_as_parsed(seqr_client *c, int http_status, const char *body, size_t len)
{
    seqr_payment_status want, got;
    seqr_result wres, gres;
    seqr_result_reset(&wres);
    seqr_err we = seqr_status_answer(http_status, body, len, &want, &wres);
    for (int round = 0; round < 2; round++) {
        seqr_err ge = finish_status(c, http_status, body, len, &got, &gres);
        ck_assert_int_eq(ge, we);
        ck_assert_int_eq(got.status, want.status);
        ck_assert_str_eq(got.status_text, want.status_text);
        ck_assert_int_eq(got.version, want.version);
        ck_assert_str_eq(got.ers_reference, want.ers_reference);
        ck_assert_int_eq(got.receipt.present, want.receipt.present);
        ck_assert_str_eq(got.receipt.payment_reference, want.receipt.payment_reference);
        ck_assert_int_eq(got.n_tokens, want.n_tokens);
        ck_assert_int_eq(gres.code, wres.code);
        ck_assert_str_eq(gres.description, wres.description);
        ck_assert_int_eq(gres.http_status, wres.http_status);
    }
}

START_TEST(status_answers_parsed_once)
{
    seqr_client *c = test_client("http", 1, 1000, NULL, false);
    static const char *const fixtures[] = {
        "getPaymentStatus.response.issued.xml", "getPaymentStatus.response.other-prefixes.xml",
        "getPaymentStatus.response.paid.xml", "getPaymentStatus.response.pending-token.xml",
        "getPaymentStatus.response.unknown.xml"};
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++) {
        size_t len = 0;
        char *t = tu_fixture(fixtures[i], &len);
        uint64_t before = seqr_client_status_memo_hits(c);
        expect_as_parsed(c, 200, t, len);
        /* A plain success is parsed once, then recognised; one naming its
         * invoice (a receipt, tokens) is parsed every time. */
        seqr_payment_status ps;
        seqr_result res;
        seqr_result_reset(&res);
        bool plain = seqr_status_answer(200, t, len, &ps, &res) == SEQR_OK && !ps.receipt.present &&
                     ps.n_tokens == 0 && ps.ers_reference[0] == '\0';
        ck_assert_msg(seqr_client_status_memo_hits(c) == before + (plain ? 1 : 0), "%s: %llu hits",
                      fixtures[i], (unsigned long long)(seqr_client_status_memo_hits(c) - before));
        free(t);
    }

    size_t len = 0;
    char *issued = tu_fixture("getPaymentStatus.response.issued.xml", &len);
    seqr_payment_status ps;
    seqr_result res;
    ck_assert_int_eq(finish_status(c, 200, issued, len, &ps, &res), SEQR_OK);
    ck_assert_int_eq(ps.status, SEQR_STATUS_ISSUED);
    /* The same length, another status: never the remembered ISSUED. */
    char *failed = strdup(issued);
    ck_assert_ptr_nonnull(failed);
    char *at = strstr(failed, ">ISSUED<");
    ck_assert_ptr_nonnull(at);
    memcpy(at + 1, "FAILED", 6);
    expect_as_parsed(c, 200, failed, len);
    ck_assert_int_eq(finish_status(c, 200, failed, len, &ps, &res), SEQR_OK);
    ck_assert_int_eq(ps.status, SEQR_STATUS_FAILED);
    /* The same bytes with another HTTP status: not the remembered success. */
    uint64_t hits = seqr_client_status_memo_hits(c);
    ck_assert_int_ne(finish_status(c, 503, issued, len, &ps, &res), SEQR_OK);
    ck_assert_int_eq(seqr_client_status_memo_hits(c), hits);

    /* More versions than the memo keeps: each still parsed as itself. */
    char *at_version = strstr(issued, "<version>1</version>");
    ck_assert_ptr_nonnull(at_version);
    *at_version = '\0';
    const char *rest = at_version + strlen("<version>1</version>");
    for (int round = 0; round < 2; round++) {
        for (int v = 1; v <= SEQR_MEMO_SLOTS + 4; v++) {
            char other[2048];
            int n = snprintf(other, sizeof other, "%s<version>%d</version>%s", issued, v, rest);
            ck_assert(n > 0 && (size_t)n < sizeof other);
            expect_as_parsed(c, 200, other, (size_t)n);
            ck_assert_int_eq(finish_status(c, 200, other, (size_t)n, &ps, &res), SEQR_OK);
            ck_assert_int_eq(ps.version, v);
        }
    }
    free(failed);
    free(issued);
    seqr_client_free(c);
}
END_TEST

START_TEST(transport_async_status)
{
    load_answers();
    listener *l = listener_start(false, 200, paid_answer);
    seqr_client *c = test_client("http", l->port, 5000, NULL, false);
    CURLM *m = curl_multi_init();
    ck_assert_ptr_nonnull(m);

    seqr_status_request *rs[3];
    seqr_err errs[3];
    seqr_payment_status pss[3];
    seqr_result ress[3];
    for (int i = 0; i < 3; i++)
        rs[i] = seqr_status_request_new(c, NULL, "1397222701693", i);
    run_multi(m, rs, 3, errs, pss, ress);
    for (int i = 0; i < 3; i++) {
        ck_assert_msg(errs[i] == SEQR_OK, "request %d: %s", i, ress[i].message);
        ck_assert_int_eq(pss[i].status, SEQR_STATUS_PAID);
        ck_assert_int_eq(pss[i].version, 2);
        ck_assert_int_eq(ress[i].http_status, 200);
    }
    ck_assert_int_eq(listener_requests(l), 3);
    ck_assert_str_eq(l->soap_action, "\"\"");
    int conns = listener_connections(l);

    /* A second round reuses the multi's connections. */
    for (int i = 0; i < 3; i++)
        rs[i] = seqr_status_request_new(c, NULL, "1397222701693", 2);
    run_multi(m, rs, 3, errs, pss, ress);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(errs[i], SEQR_OK);
    ck_assert_int_eq(listener_connections(l), conns);

    /* Errors come back the same way as from the blocking call. */
    listener_answer(l, 500, fault_answer);
    rs[0] = seqr_status_request_new(c, NULL, "1397222701693", 2);
    run_multi(m, rs, 1, errs, pss, ress);
    ck_assert_int_eq(errs[0], SEQR_ERR_FAULT);
    ck_assert_str_eq(ress[0].fault_code, "soap:Client");

    seqr_client *dead = test_client("http", tu_free_port(), 2000, NULL, false);
    rs[0] = seqr_status_request_new(dead, NULL, "1397222701693", 0);
    run_multi(m, rs, 1, errs, pss, ress);
    ck_assert_int_eq(errs[0], SEQR_ERR_CONNECT);
    expect_clean_message(&ress[0]);

    listener_delay(l, 1500);
    seqr_client *slow = test_client("http", l->port, 300, NULL, false);
    rs[0] = seqr_status_request_new(slow, NULL, "1397222701693", 0);
    run_multi(m, rs, 1, errs, pss, ress);
    ck_assert_int_eq(errs[0], SEQR_ERR_TIMEOUT);

    /* Invalid input gives no request at all; freeing NULL is fine. */
    ck_assert_ptr_null(seqr_status_request_new(c, NULL, "", 0));
    seqr_status_request_free(NULL);

    /* A request freed without ever running. */
    seqr_status_request *idle = seqr_status_request_new(c, NULL, "1", 0);
    ck_assert_ptr_nonnull(idle);
    seqr_status_request_free(idle);

    curl_multi_cleanup(m);
    seqr_client_free(slow);
    seqr_client_free(dead);
    seqr_client_free(c);
    listener_stop(l);
    free_answers();
}
END_TEST

/* Runs one cached status request to the end; the body sent is l->last_body. */
static seqr_err run_cached(CURLM *m, seqr_client *c, const seqr_call_opts *o, const char *ref,
                           int64_t version, seqr_status_cache **cache)
{
    seqr_status_request *rs[1];
    seqr_err errs[1];
    seqr_payment_status pss[1];
    seqr_result ress[1];
    rs[0] = seqr_status_request_new_cached(c, o, ref, version, cache);
    ck_assert_ptr_nonnull(rs[0]);
    run_multi(m, rs, 1, errs, pss, ress);
    return errs[0];
}

/* The poller keeps each invoice's request serialised between polls: any
 * changed input (the password above all) must go out with the next call. */
START_TEST(transport_async_status_cached)
{
    load_answers();
    listener *l = listener_start(false, 200, paid_answer);
    seqr_client *c = test_client("http", l->port, 5000, NULL, false);
    CURLM *m = curl_multi_init();
    ck_assert_ptr_nonnull(m);
    seqr_status_cache *cache = NULL;

    seqr_call_opts o = {.terminal_id = "other-terminal", .terminal_password = "secret-one"};
    ck_assert_int_eq(run_cached(m, c, &o, "1397222701693", 1, &cache), SEQR_OK);
    ck_assert_ptr_nonnull(cache);
    ck_assert_ptr_nonnull(strstr(l->last_body.data, "<password>secret-one</password>"));
    ck_assert_ptr_nonnull(strstr(l->last_body.data, "<invoiceVersion>1</invoiceVersion>"));

    /* Nothing changed: the very same request again. */
    seqr_status_cache *before = cache;
    char sent[4096];
    snprintf(sent, sizeof sent, "%s", l->last_body.data);
    ck_assert_int_eq(run_cached(m, c, &o, "1397222701693", 1, &cache), SEQR_OK);
    ck_assert_ptr_eq(cache, before);
    ck_assert_str_eq(l->last_body.data, sent);

    /* A new password (in a new buffer, as the store hands it out). */
    char pw[32];
    snprintf(pw, sizeof pw, "%s", "secret-two");
    o.terminal_password = pw;
    ck_assert_int_eq(run_cached(m, c, &o, "1397222701693", 1, &cache), SEQR_OK);
    ck_assert_ptr_nonnull(strstr(l->last_body.data, "<password>secret-two</password>"));
    ck_assert_ptr_null(strstr(l->last_body.data, "secret-one"));
    /* The same length, one letter apart. */
    snprintf(pw, sizeof pw, "%s", "secret-twp");
    ck_assert_int_eq(run_cached(m, c, &o, "1397222701693", 1, &cache), SEQR_OK);
    ck_assert_ptr_nonnull(strstr(l->last_body.data, "<password>secret-twp</password>"));

    /* A new version, clientReference, terminal, invoice. */
    ck_assert_int_eq(run_cached(m, c, &o, "1397222701693", 2, &cache), SEQR_OK);
    ck_assert_ptr_nonnull(strstr(l->last_body.data, "<invoiceVersion>2</invoiceVersion>"));
    o.client_reference = "order-1001";
    ck_assert_int_eq(run_cached(m, c, &o, "1397222701693", 2, &cache), SEQR_OK);
    ck_assert_ptr_nonnull(
        strstr(l->last_body.data, "<clientReference>order-1001</clientReference>"));
    ck_assert_int_eq(run_cached(m, c, NULL, "1397222701693", 2, &cache), SEQR_OK);
    ck_assert_ptr_nonnull(strstr(l->last_body.data, "<id>" TERMINAL_ID "</id>"));
    ck_assert_ptr_nonnull(strstr(l->last_body.data, "<password>" TERMINAL_PW "</password>"));
    ck_assert_int_eq(run_cached(m, c, NULL, "1397222701694", 2, &cache), SEQR_OK);
    ck_assert_ptr_nonnull(
        strstr(l->last_body.data, "<invoiceReference>1397222701694</invoiceReference>"));

    /* Bad input sends nothing and leaves the cache as it was. */
    before = cache;
    ck_assert_ptr_null(seqr_status_request_new_cached(c, NULL, "", 2, &cache));
    ck_assert_ptr_eq(cache, before);
    seqr_call_opts nopw = {.terminal_id = "other-terminal"};
    ck_assert_ptr_null(seqr_status_request_new_cached(c, &nopw, "1397222701694", 2, &cache));
    ck_assert_ptr_eq(cache, before);
    ck_assert_int_eq(listener_requests(l), 8);

    seqr_status_cache_free(cache);
    seqr_status_cache_free(NULL);
    curl_multi_cleanup(m);
    seqr_client_free(c);
    listener_stop(l);
    free_answers();
}
END_TEST

/* Makes l answer HTTP 200 with the fixture name; returns its text (caller
 * frees after the call). */
static char *serve(listener *l, const char *name)
{
    char *t = tu_fixture(name, NULL);
    listener_answer(l, 200, t);
    return t;
}

/* What a meanwhile function saw: how often it ran, and when. */
typedef struct {
    int calls;
    long long at_ms;
} meanwhile_seen;

static void meanwhile_record(void *ud)
{
    meanwhile_seen *m = ud;
    m->calls++;
    m->at_ms = tu_now_ms();
}

/* seqr_call_opts.meanwhile runs exactly once: while SEQR takes its time
 * over the answer, and also when nothing could be sent or the call failed. */
START_TEST(transport_meanwhile_runs_once_while_seqr_answers)
{
    listener *l = listener_start(false, 200, "");
    char *t = serve(l, "sendInvoice.response.xml");
    listener_delay(l, 400);
    seqr_client *c = test_client("http", l->port, 5000, NULL, false);
    meanwhile_seen m = {0, 0};
    seqr_call_opts o = {.meanwhile = meanwhile_record, .meanwhile_ud = &m};
    seqr_invoice inv = fixture_invoice("Meanwhile");
    seqr_send_invoice_answer sa;
    seqr_result res;
    long long t0 = tu_now_ms();
    seqr_err e = seqr_send_invoice(c, &o, &inv, NULL, 0, &sa, &res);
    long long t1 = tu_now_ms();
    ck_assert_msg(e == SEQR_OK, "%s", res.message);
    ck_assert_str_eq(sa.invoice_reference, "1397222701693");
    ck_assert_int_eq(m.calls, 1);
    /* The answer took at least 400 ms; the work ran long before it came. */
    ck_assert_int_ge(t1 - t0, 400);
    ck_assert_msg(t1 - m.at_ms >= 200, "ran %lld ms after the start, the call took %lld",
                  m.at_ms - t0, t1 - t0);

    /* The same connection again, without a delay: still once. */
    listener_delay(l, 0);
    m.calls = 0;
    ck_assert_int_eq(seqr_send_invoice(c, &o, &inv, NULL, 0, &sa, &res), SEQR_OK);
    ck_assert_int_eq(m.calls, 1);

    /* SEQR too slow: the call times out, the work has run once. */
    seqr_client *slow = test_client("http", l->port, 300, NULL, false);
    listener_delay(l, 1500);
    m.calls = 0;
    ck_assert_int_eq(seqr_send_invoice(slow, &o, &inv, NULL, 0, &sa, &res), SEQR_ERR_TIMEOUT);
    ck_assert_int_eq(m.calls, 1);
    seqr_client_free(slow);

    /* Nothing listening, and a request that cannot be built: once each. */
    seqr_client *dead = test_client("http", tu_free_port(), 2000, NULL, false);
    m.calls = 0;
    ck_assert_int_eq(seqr_send_invoice(dead, &o, &inv, NULL, 0, &sa, &res), SEQR_ERR_CONNECT);
    ck_assert_int_eq(m.calls, 1);
    seqr_client_free(dead);
    seqr_invoice bad = fixture_invoice("Meanwhile");
    bad.currency = NULL;
    m.calls = 0;
    ck_assert_int_eq(seqr_send_invoice(c, &o, &bad, NULL, 0, &sa, &res), SEQR_ERR_INVALID);
    ck_assert_int_eq(m.calls, 1);

    seqr_client_free(c);
    listener_stop(l);
    free(t);
}
END_TEST

/* Every blocking operation against its fixture answer. */
START_TEST(transport_all_operations)
{
    listener *l = listener_start(false, 200, "");
    seqr_client *c = test_client("http", l->port, 5000, NULL, true);
    seqr_result res;
    char op[64];
    char *t;
    seqr_err e;

    t = serve(l, "sendInvoice.response.xml");
    seqr_invoice inv = fixture_invoice("Fish & <Chips> \"Ltd\"");
    seqr_send_invoice_answer sa;
    e = seqr_send_invoice(c, NULL, &inv, NULL, 0, &sa, &res);
    ck_assert_msg(e == SEQR_OK, "%s", res.message);
    ck_assert_str_eq(sa.invoice_reference, "1397222701693");
    listener_last_op(l, op, sizeof op);
    ck_assert_str_eq(op, "sendInvoice");
    ck_assert_ptr_nonnull(strstr(l->last_body.data, "Fish &amp; &lt;Chips&gt;"));
    free(t);

    t = serve(l, "updateInvoice.response.xml");
    seqr_token_in tok = {"Example loyalty card", "X_CARD", 1, "2610411111110"};
    ck_assert_int_eq(seqr_update_invoice(c, NULL, "1397222701693", &inv, &tok, 1, &res), SEQR_OK);
    listener_last_op(l, op, sizeof op);
    ck_assert_str_eq(op, "updateInvoice");
    free(t);

    t = serve(l, "cancelInvoice.response.paid.xml");
    ck_assert_int_eq(seqr_cancel_invoice(c, NULL, "1397222701693", &res), SEQR_ERR_RESULT);
    ck_assert_int_eq(res.code, 50);
    listener_last_op(l, op, sizeof op);
    ck_assert_str_eq(op, "cancelInvoice");
    free(t);

    t = serve(l, "commitReservation.response.xml");
    ck_assert_int_eq(seqr_commit_reservation(c, NULL, "1397222701693", 50000, "SEK", &res),
                     SEQR_OK);
    ck_assert_ptr_nonnull(strstr(l->last_body.data, "<value>500.00</value>"));
    free(t);

    t = serve(l, "submitPaymentReceipt.response.xml");
    ck_assert_int_eq(seqr_submit_payment_receipt(c, NULL, "2026112410184861801032678", "text/html",
                                                 "PAYMENT_RECEIPT", "PGI+", &res),
                     SEQR_OK);
    listener_last_op(l, op, sizeof op);
    ck_assert_str_eq(op, "submitPaymentReceipt");
    free(t);

    t = serve(l, "refundPayment.response.too-much.xml");
    seqr_invoice refund = {.title = "Refund order 1001", .total = 4950, .currency = "SEK"};
    seqr_refund_answer ra;
    ck_assert_int_eq(seqr_refund_payment(c, NULL, "2026112410184861801032678", &refund, &ra, &res),
                     SEQR_ERR_RESULT);
    ck_assert_int_eq(res.code, 98);
    free(t);

    t = serve(l, "markTransactionPeriod.response.xml");
    char period[64];
    seqr_param mp = {"TERMINALID", TERMINAL_ID};
    ck_assert_int_eq(seqr_mark_transaction_period(c, NULL, &mp, 1, period, &res), SEQR_OK);
    ck_assert_str_eq(period, "2026112418000012301000002");
    ck_assert_ptr_nonnull(strstr(l->last_body.data, "<type>RESELLERUSER</type>"));
    ck_assert_ptr_nonnull(strstr(l->last_body.data, "<userId>9900</userId>"));
    free(t);

    t = serve(l, "executeReport.response.xml");
    seqr_report rep;
    seqr_param rp = {"transactionPeriodId", period};
    ck_assert_int_eq(
        seqr_execute_report(c, NULL, "Reconciliation/Shop.xml", "en", &rp, 1, &rep, &res), SEQR_OK);
    ck_assert_str_eq(rep.mime_type, "text/html");
    seqr_report_free(&rep);
    free(t);

    t = serve(l, "executeReport.response.not-ready.xml");
    ck_assert_int_eq(
        seqr_execute_report(c, NULL, "Reconciliation/Shop.xml", "en", &rp, 1, &rep, &res),
        SEQR_ERR_RESULT);
    ck_assert_int_eq(res.code, 2);
    seqr_report_free(&rep);
    free(t);

    t = serve(l, "registerTerminal.response.xml");
    char term[64];
    ck_assert_int_eq(seqr_register_terminal(c, NULL, "Store 111/Till 4", "new-terminal-pw",
                                            "Till 4", term, &res),
                     SEQR_OK);
    ck_assert_str_eq(term, "87e791f9e24148a6892c52aa85bb0331");
    free(t);

    /* registerTerminal's new password is scrubbed from messages too. */
    buf echo = BUF_INIT;
    seqr_xml_build_fault("soap:Client", "weak password new-terminal-pw", &echo);
    listener_answer(l, 500, buf_cstr(&echo));
    ck_assert_int_eq(seqr_register_terminal(c, NULL, "Store 111/Till 4", "new-terminal-pw",
                                            "Till 4", term, &res),
                     SEQR_ERR_FAULT);
    ck_assert_ptr_null(strstr(res.message, "new-terminal-pw"));
    ck_assert_str_eq(term, "");

    t = serve(l, "unregisterTerminal.response.xml");
    seqr_call_opts as_terminal = {.terminal_id = "87e791f9e24148a6892c52aa85bb0331",
                                  .terminal_password = "new-terminal-pw"};
    ck_assert_int_eq(seqr_unregister_terminal(c, &as_terminal, &res), SEQR_OK);
    ck_assert_ptr_nonnull(strstr(l->last_body.data, "<id>87e791f9e24148a6892c52aa85bb0331</id>"));
    free(t);

    t = serve(l, "assignSeqrId.response.invalid.xml");
    ck_assert_int_eq(seqr_assign_seqr_id(c, NULL, "exampleshop0039394857311223", &res),
                     SEQR_ERR_RESULT);
    ck_assert_int_eq(res.code, 53);
    listener_last_op(l, op, sizeof op);
    ck_assert_str_eq(op, "assignSeqrId");
    free(t);

    ck_assert_int_eq(listener_connections(l), 1);
    seqr_client_free(c);
    listener_stop(l);
    buf_free(&echo);
}
END_TEST

START_TEST(client_options)
{
    seqr_client_options o = {0};
    ck_assert_ptr_null(seqr_client_new(NULL));
    o.url = "ftp://example.com/";
    ck_assert_ptr_null(seqr_client_new(&o));
    o.url = NULL;
    ck_assert_ptr_null(seqr_client_new(&o));
    o.url = "HTTPS://extdev.seqr.com/soap/merchant/cashregister-2";
    seqr_client *c = seqr_client_new(&o);
    ck_assert_ptr_nonnull(c);
    /* No terminal configured: nothing can be sent. */
    seqr_result res;
    ck_assert_int_eq(seqr_cancel_invoice(c, NULL, "1", &res), SEQR_ERR_INVALID);
    seqr_client_free(c);
    seqr_client_free(NULL);
    ck_assert_int_eq(seqr_cancel_invoice(NULL, NULL, "1", &res), SEQR_ERR_INVALID);
}
END_TEST

int main(void)
{
    xmlInitParser();
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    Suite *s = suite_create("seqr");

    TCase *tb = tcase_create("build");
    tcase_add_test(tb, build_send_invoice);
    tcase_add_test(tb, build_update_invoice);
    tcase_add_test(tb, build_small_operations);
    tcase_add_test(tb, build_optional_fields);
    tcase_add_test(tb, build_escapes_user_text);
    tcase_add_test(tb, build_redacts_password);
    tcase_add_test(tb, build_rejects_invalid_input);
    suite_add_tcase(s, tb);

    TCase *tp = tcase_create("parse");
    tcase_add_test(tp, parse_status_answers);
    tcase_add_test(tp, parse_status_names);
    tcase_add_test(tp, parse_status_edge_cases);
    tcase_add_test(tp, parse_other_answers);
    tcase_add_test(tp, parse_refuses_hostile_and_broken);
    tcase_add_test(tp, parse_status_streaming_matches_tree);
    tcase_add_test(tp, parse_unconvertible_encoding_is_malformed_both_ways);
    tcase_add_test(tp, status_answers_parsed_once);
    suite_add_tcase(s, tp);

    TCase *tt = tcase_create("transport");
    tcase_set_timeout(tt, 60);
    tcase_add_test(tt, transport_success_and_headers);
    tcase_add_test(tt, transport_threads);
    tcase_add_test(tt, transport_errors);
    tcase_add_test(tt, transport_tls);
    tcase_add_test(tt, transport_async_status);
    tcase_add_test(tt, transport_async_status_cached);
    tcase_add_test(tt, transport_all_operations);
    tcase_add_test(tt, transport_meanwhile_runs_once_while_seqr_answers);
    tcase_add_test(tt, client_options);
    suite_add_tcase(s, tt);

    int failed = tu_run_suite(s);
    curl_global_cleanup();
    xmlCleanupParser();
    return failed;
}
