/* check_gateway.c — the gateway end to end: the real seqr-sim and the real
 * seqr-gateway on free loopback ports, a real SQLite file, driven over HTTP
 * the way a webshop would. Covers the webshop certification steps, every
 * kind of bad input (which must reach neither the store nor SEQR), SEQR
 * down/slow/garbage, idempotency, refunds, restarts after kill -9, SIGTERM. */
#include <arpa/inet.h>
#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gwtest.h"
#include "receipt.h"

static gw_env env; /* the shared pair for the main test cases */

static void shared_setup(void)
{
    gwt_env_start(&env, "20", NULL, NULL);
}

static void shared_teardown(void)
{
    /* Exit 0 after SIGTERM: also the verdict of ASan's leak check and of
     * valgrind (make check-valgrind exits 99 on any error). */
    ck_assert_int_eq(tu_stop(&env.gw, SIGTERM, 60000), 0);
    gwt_env_stop(&env);
}

/* --- operations --- */

START_TEST(healthz_and_auth)
{
    long st;
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/healthz", env.gw_port);
    json_t *j = tu_get_json(url, &st); /* no key needed */
    ck_assert_int_eq(st, 200);
    /* Other tests of this daemon may have left outcomes in doubt (in any
     * order): those, and only those, make it degraded. */
    json_int_t unknown = json_integer_value(json_object_get(j, "unknownOutcomes"));
    ck_assert_str_eq(gwt_str(j, "status"), unknown > 0 ? "degraded" : "ok");
    ck_assert_str_eq(gwt_str(j, "version"), "0.1.0");
    json_decref(j);

    snprintf(url, sizeof url, "http://127.0.0.1:%d/invoices", env.gw_port);
    j = tu_get_json(url, &st);
    ck_assert_int_eq(st, 401);
    ck_assert_str_eq(gwt_error_code(j), "unauthorized");
    json_decref(j);

    const char *wrong[] = {"Authorization: Bearer not-the-key", NULL};
    tu_response r;
    st = tu_http("GET", url, wrong, NULL, 0, &r);
    ck_assert_int_eq(st, 401);
    tu_response_free(&r);
    const char *prefix[] = {"Authorization: Bearer " API_KEY "x", NULL};
    st = tu_http("GET", url, prefix, NULL, 0, &r);
    ck_assert_int_eq(st, 401);
    tu_response_free(&r);
}
END_TEST

START_TEST(unknown_paths_and_methods)
{
    long st;
    json_t *j = gwt_gw_call(&env, "GET", "/nope", NULL, NULL, &st);
    ck_assert_int_eq(st, 404);
    ck_assert_str_eq(gwt_error_code(j), "not_found");
    json_decref(j);
    j = gwt_gw_call(&env, "DELETE", "/invoices", NULL, NULL, &st);
    ck_assert_int_eq(st, 405);
    json_decref(j);
    j = gwt_gw_call(&env, "GET", "/invoices/9999999999999", NULL, NULL, &st);
    ck_assert_int_eq(st, 404);
    ck_assert_str_eq(gwt_error_code(j), "not_found");
    json_decref(j);
}
END_TEST

START_TEST(body_too_large)
{
    size_t n = 70000;
    char *big = malloc(n + 1);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    big[n] = '\0';
    long st;
    json_t *j = gwt_gw_call(&env, "POST", "/invoices", big, NULL, &st);
    ck_assert_int_eq(st, 413);
    ck_assert_str_eq(gwt_error_code(j), "body_too_large");
    json_decref(j);
    free(big);
}
END_TEST

/* --- webshop certification, step by step --- */

START_TEST(cert1_send_invoice)
{
    long st;
    json_t *j = gwt_gw_call(&env, "POST", "/invoices", gwt_invoice_body, NULL, &st);
    ck_assert_int_eq(st, 201);
    const char *ref = gwt_str(j, "invoiceReference");
    char qr[128], url[128];
    snprintf(qr, sizeof qr, "HTTP://SEQR.SE/R%s", ref);
    snprintf(url, sizeof url, "SEQR://SEQR.SE/R%s", ref);
    ck_assert_str_eq(gwt_str(j, "status"), "ISSUED");
    ck_assert_str_eq(gwt_str(j, "qrCode"), qr);
    ck_assert_str_eq(gwt_str(j, "seqrUrl"), url);
    ck_assert_str_eq(gwt_str(j, "totalAmount"), "549.50");
    ck_assert_str_eq(gwt_str(j, "currency"), "SEK");
    ck_assert_str_eq(gwt_str(j, "title"), "Order 1001 & <friends>");
    ck_assert_str_eq(gwt_str(j, "refundedAmount"), "0.00");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "version")), 0);
    json_t *rows = json_object_get(j, "rows");
    ck_assert_int_eq(json_array_size(rows), 2);
    ck_assert_str_eq(gwt_str(json_array_get(rows, 1), "totalAmount"), "49.50");
    ck_assert(json_is_null(json_object_get(j, "ersReference")));
    ck_assert(json_is_false(json_object_get(j, "receiptSubmitted")));

    /* What SEQR saw: a certification-clean sendInvoice for the same amount. */
    json_t *s = gwt_sim_state(&env, ref);
    ck_assert_str_eq(gwt_str(s, "totalAmount"), "549.50");
    ck_assert_str_eq(gwt_str(s, "title"), "Order 1001 & <friends>");
    json_decref(s);
    long st2;
    json_t *reqs = gwt_sim_call(&env, "GET", "/sim/requests?operation=sendInvoice", NULL, &st2);
    json_t *arr = json_object_get(reqs, "requests");
    json_t *last = json_array_get(arr, json_array_size(arr) - 1);
    ck_assert_int_eq(json_array_size(json_object_get(last, "deviations")), 0);
    ck_assert_str_eq(gwt_str(last, "clientReference"), "seqr-gateway test");
    json_decref(reqs);
    json_decref(j);
}
END_TEST

START_TEST(cert2_status_scan_paid_and_receipt)
{
    char ref[64];
    gwt_create_invoice(&env, ref);
    char path[128];
    snprintf(path, sizeof path, "/invoices/%s/status", ref);
    long st;
    json_t *j = gwt_gw_call(&env, "GET", path, NULL, NULL, &st); /* before the scan */
    ck_assert_int_eq(st, 200);
    ck_assert_str_eq(gwt_str(j, "status"), "ISSUED");
    json_decref(j);

    gwt_sim_pay(&env, ref);                       /* the buyer scans and pays */
    j = gwt_wait_status(&env, ref, "PAID", 3000); /* the poller sees it */
    ck_assert_int_eq(strlen(gwt_str(j, "ersReference")), 25);
    json_t *receipt = json_object_get(j, "receipt");
    ck_assert(json_is_object(receipt));
    ck_assert_str_eq(gwt_str(receipt, "invoiceReference"), ref);
    json_decref(j);

    /* The automatic (rendered) receipt follows the payment. */
    long long end = tu_now_ms() + 5000;
    bool submitted = false;
    while (!submitted && tu_now_ms() < end) {
        json_t *s = gwt_sim_state(&env, ref);
        submitted = json_is_true(json_object_get(s, "receiptSubmitted"));
        ck_assert(json_is_false(json_object_get(s, "reversed")));
        json_decref(s);
        if (!submitted)
            tu_sleep_ms(50);
    }
    ck_assert_msg(submitted, "no automatic receipt reached SEQR");
    /* The store records it right after SEQR's answer. */
    end = tu_now_ms() + 5000;
    bool recorded = false;
    while (!recorded && tu_now_ms() < end) {
        j = gwt_wait_status(&env, ref, "PAID", 100);
        recorded = json_is_true(json_object_get(j, "receiptSubmitted"));
        json_decref(j);
        if (!recorded)
            tu_sleep_ms(50);
    }
    ck_assert_msg(recorded, "the receipt reached SEQR but the store does not say so");

    /* Step 3 by hand as well: a base64 HTML receipt. */
    snprintf(path, sizeof path, "/invoices/%s/receipt", ref);
    j = gwt_gw_call(&env, "POST", path,
                    "{\"mimeType\":\"text/html\",\"receiptType\":\"PAYMENT_RECEIPT\","
                    "\"receiptData\":\"PGh0bWw+PC9odG1sPg==\"}",
                    NULL, &st);
    ck_assert_int_eq(st, 200);
    json_decref(j);
    j = gwt_gw_call(&env, "POST", path, "{\"receiptData\":\"not base64!\"}", NULL, &st);
    ck_assert_int_eq(st, 422);
    ck_assert_str_eq(gwt_error_field(j), "receiptData");
    json_decref(j);
}
END_TEST

START_TEST(cert2_first_invoice_still_answers_after_a_second)
{
    /* Step 2.4-2.6 (the certification's 30 s wait is not made here): after a
     * second invoice, the first one's status still answers. */
    char first[64], second[64];
    gwt_create_invoice(&env, first);
    gwt_create_invoice(&env, second);
    ck_assert_str_ne(first, second);
    char path[128];
    snprintf(path, sizeof path, "/invoices/%s/status", first);
    long st;
    json_t *j = gwt_gw_call(&env, "GET", path, NULL, NULL, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_str_eq(gwt_str(j, "invoiceReference"), first);
    json_decref(j);
}
END_TEST

START_TEST(cert4_cancel)
{
    char ref[64];
    gwt_create_invoice(&env, ref);
    char path[128];
    snprintf(path, sizeof path, "/invoices/%s/cancel", ref);
    long st;
    json_t *j = gwt_gw_call(&env, "POST", path, NULL, NULL, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_str_eq(gwt_str(j, "status"), "CANCELED");
    json_decref(j);
    json_t *s = gwt_sim_state(&env, ref);
    ck_assert_str_eq(gwt_str(s, "status"), "CANCELED");
    json_decref(s);
    j = gwt_gw_call(&env, "POST", path, NULL, NULL, &st); /* again */
    ck_assert_int_eq(st, 409);
    json_decref(j);

    char paid[64];
    gwt_paid_invoice(&env, paid);
    snprintf(path, sizeof path, "/invoices/%s/cancel", paid);
    j = gwt_gw_call(&env, "POST", path, NULL, NULL, &st);
    ck_assert_int_eq(st, 409);
    json_decref(j);
}
END_TEST

/* Runs sql, which must change exactly one row, on the running gateway's
 * SQLite file (tests that do are SQLite only: gw_sqlite_only). */
static void change_one_row(const gw_env *e, const char *sql)
{
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(e->db, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    ck_assert_int_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_changes(db), 1);
    sqlite3_close(db);
}

START_TEST(cert5_refunds)
{
    char ref[64];
    gwt_paid_invoice(&env, ref);
    char path[128];
    snprintf(path, sizeof path, "/invoices/%s/refunds", ref);
    long st;
    json_t *j = gwt_gw_call(&env, "POST", path, "{\"amount\":\"100.00\",\"title\":\"Broken item\"}",
                            NULL, &st);
    ck_assert_int_eq(st, 201);
    ck_assert_str_eq(gwt_str(j, "amount"), "100.00");
    ck_assert_str_eq(gwt_str(j, "currency"), "SEK");
    ck_assert_int_eq(strlen(gwt_str(j, "ersReference")), 25);
    ck_assert(strlen(gwt_str(j, "createdAt")) > 0);
    json_decref(j);

    int before = gwt_sim_count(&env, "refundPayment");
    j = gwt_gw_call(&env, "POST", path, "{\"amount\":\"449.51\"}", NULL, &st); /* 0.01 too much */
    ck_assert_int_eq(st, 422);
    ck_assert_str_eq(gwt_error_code(j), "refund_too_large");
    json_decref(j);
    ck_assert_int_eq(gwt_sim_count(&env, "refundPayment"), before); /* nothing sent */

    j = gwt_gw_call(&env, "POST", path, "{\"amount\":\"449.50\"}", NULL, &st); /* the rest */
    ck_assert_int_eq(st, 201);
    json_decref(j);
    snprintf(path, sizeof path, "/invoices/%s", ref);
    j = gwt_gw_call(&env, "GET", path, NULL, NULL, &st);
    ck_assert_str_eq(gwt_str(j, "refundedAmount"), "549.50");
    ck_assert_int_eq(json_array_size(json_object_get(j, "refunds")), 2);
    json_decref(j);
    json_t *s = gwt_sim_state(&env, ref);
    ck_assert_str_eq(gwt_str(s, "refundedAmount"), "549.50");
    json_decref(s);

    /* Unpaid invoice: 409, nothing sent. */
    char open[64];
    gwt_create_invoice(&env, open);
    snprintf(path, sizeof path, "/invoices/%s/refunds", open);
    before = gwt_sim_count(&env, "refundPayment");
    j = gwt_gw_call(&env, "POST", path, "{\"amount\":\"1.00\"}", NULL, &st);
    ck_assert_int_eq(st, 409);
    json_decref(j);
    j = gwt_gw_call(&env, "POST", path, "{\"amount\":\"1.001\"}", NULL, &st);
    ck_assert_int_eq(st, 422);
    ck_assert_str_eq(gwt_error_field(j), "amount");
    json_decref(j);
    ck_assert_int_eq(gwt_sim_count(&env, "refundPayment"), before);
}
END_TEST

/* A PAID invoice whose status answer had no ersReference (the protocol makes
 * it optional): a refund and a receipt both name it, so each is refused
 * with a 409 that says so, rather than "only a PAID invoice ...; this one
 * is PAID", and nothing is sent to SEQR. */
START_TEST(paid_without_ers_reference)
{
    char ref[64];
    gwt_paid_invoice(&env, ref);
    char sql[160];
    snprintf(sql, sizeof sql, "UPDATE invoices SET ers_reference = '' WHERE reference = '%s'", ref);
    change_one_row(&env, sql);

    int refunds = gwt_sim_count(&env, "refundPayment");
    int receipts = gwt_sim_count(&env, "submitPaymentReceipt");
    char path[128];
    long st;
    snprintf(path, sizeof path, "/invoices/%s/refunds", ref);
    json_t *j = gwt_gw_call(&env, "POST", path, "{\"amount\":\"1.00\"}", NULL, &st);
    ck_assert_int_eq(st, 409);
    ck_assert_str_eq(gwt_error_code(j), "invalid_state");
    const char *msg = gwt_str(json_object_get(j, "error"), "message");
    ck_assert_msg(strstr(msg, "no ersReference") != NULL, "%s", msg);
    json_decref(j);
    snprintf(path, sizeof path, "/invoices/%s/receipt", ref);
    j = gwt_gw_call(&env, "POST", path, NULL, NULL, &st);
    ck_assert_int_eq(st, 409);
    ck_assert_str_eq(gwt_error_code(j), "invalid_state");
    msg = gwt_str(json_object_get(j, "error"), "message");
    ck_assert_msg(strstr(msg, "no ersReference") != NULL, "%s", msg);
    json_decref(j);
    ck_assert_int_eq(gwt_sim_count(&env, "refundPayment"), refunds);
    ck_assert_int_eq(gwt_sim_count(&env, "submitPaymentReceipt"), receipts);
}
END_TEST

START_TEST(cert6_period_and_report)
{
    long st;
    json_t *j = gwt_gw_call(&env, "POST", "/periods", "{}", NULL, &st);
    ck_assert_int_eq(st, 201);
    char period[64];
    snprintf(period, sizeof period, "%s", gwt_str(j, "transactionPeriodId"));
    ck_assert(strlen(period) > 0);
    json_decref(j);
    char body[256];
    snprintf(body, sizeof body,
             "{\"reportId\":\"Reconciliation/STD_RECON_003.xml\",\"language\":\"en\","
             "\"parameters\":{\"transactionPeriodId\":\"%s\"}}",
             period);
    j = gwt_gw_call(&env, "POST", "/reports", body, NULL, &st); /* NOT_READY retried inside */
    ck_assert_msg(st == 200, "POST /reports gave %ld", st);
    ck_assert(strlen(gwt_str(j, "content")) > 0);
    ck_assert(strlen(gwt_str(j, "title")) > 0);
    json_decref(j);
    j = gwt_gw_call(&env, "POST", "/reports", "{\"reportId\":\"x\",\"parameters\":{}}", NULL, &st);
    ck_assert_int_eq(st, 400);
    ck_assert_str_eq(gwt_error_field(j), "parameters.transactionPeriodId");
    json_decref(j);
}
END_TEST

/* --- validation: every bad input answered, nothing sent or stored --- */

typedef struct {
    const char *body;
    long status;
    const char *field; /* expected error.field, or NULL */
} bad_case;

static const bad_case bad_invoices[] = {
    {"", 400, NULL},
    {"not json", 400, NULL},
    {"[1,2]", 400, NULL},
    {"{\"rows\":[{\"quantity\":\"1\",\"totalAmount\":\"1.00\"}]}", 400, "currency"},
    {"{\"currency\":\"SEK\"}", 400, "rows"},
    {"{\"currency\":\"SEK\",\"rows\":[]}", 422, "rows"},
    {"{\"currency\":\"SEK\",\"rows\":{}}", 400, "rows"},
    {"{\"currency\":\"sek\",\"rows\":[{\"quantity\":\"1\",\"totalAmount\":\"1.00\"}]}", 422,
     "currency"},
    {"{\"currency\":\"XYZ\",\"rows\":[{\"quantity\":\"1\",\"totalAmount\":\"1.00\"}]}", 422,
     "currency"},
    {"{\"currency\":5,\"rows\":[{\"quantity\":\"1\",\"totalAmount\":\"1.00\"}]}", 400, "currency"},
    {"{\"currency\":\"SEK\",\"rows\":[{\"totalAmount\":\"1.00\"}]}", 400, "rows[0].quantity"},
    {"{\"currency\":\"SEK\",\"rows\":[{\"quantity\":\"0\",\"totalAmount\":\"1.00\"}]}", 422,
     "rows[0].quantity"},
    {"{\"currency\":\"SEK\",\"rows\":[{\"quantity\":\"-1\",\"totalAmount\":\"1.00\"}]}", 422,
     "rows[0].quantity"},
    {"{\"currency\":\"SEK\",\"rows\":[{\"quantity\":\"1\"}]}", 400, "rows[0].totalAmount"},
    {"{\"currency\":\"SEK\",\"rows\":[{\"quantity\":\"1\",\"totalAmount\":\"1.005\"}]}", 422,
     "rows[0].totalAmount"},
    {"{\"currency\":\"SEK\",\"rows\":[{\"quantity\":\"1\",\"totalAmount\":\"1e3\"}]}", 400,
     "rows[0].totalAmount"},
    {"{\"currency\":\"SEK\",\"rows\":[{\"quantity\":\"1\",\"totalAmount\":1.005}]}", 422,
     "rows[0].totalAmount"},
    {"{\"currency\":\"SEK\",\"rows\":[{\"quantity\":\"1\",\"totalAmount\":true}]}", 400,
     "rows[0].totalAmount"},
    {"{\"currency\":\"SEK\",\"rows\":[{\"quantity\":\"1\",\"totalAmount\":\"0.00\"}]}", 422,
     "rows"},
    {"{\"currency\":\"SEK\",\"rows\":[{\"quantity\":\"1\",\"totalAmount\":\"5.00\"}],"
     "\"totalAmount\":\"5.01\"}",
     422, "totalAmount"},
    {"{\"currency\":\"SEK\",\"rows\":[{\"quantity\":\"1\",\"totalAmount\":\"5.00\"}],"
     "\"clientReference\":\"123456789012345678901234567890123\"}",
     422, "clientReference"},
    {"{\"currency\":\"SEK\",\"rows\":[{\"quantity\":\"1\",\"totalAmount\":\"5.00\"}],"
     "\"backUrl\":\"javascript:alert(1)\"}",
     422, "backUrl"},
    {"{\"currency\":\"SEK\",\"rows\":[{\"quantity\":\"1\",\"totalAmount\":\"5.00\"}],"
     "\"paymentMode\":\"LATER\"}",
     422, "paymentMode"},
    {"{\"currency\":\"SEK\",\"rows\":[{\"quantity\":\"1\",\"totalAmount\":\"5.00\","
     "\"taxRate\":\"25\"}]}",
     400, "rows[0].taxRate"},
    {"{\"currency\":\"SEK\",\"rows\":[{\"quantity\":\"1\",\"totalAmount\":\"5.00\","
     "\"colour\":\"red\"}]}",
     400, "rows[0].colour"},
    {"{\"currency\":\"SEK\",\"rows\":[{\"quantity\":\"1\",\"totalAmount\":\"5.00\"}],"
     "\"totalAmmount\":\"5.00\"}",
     400, "totalAmmount"},
    {"{\"currency\":\"SEK\",\"rows\":[{\"quantity\":\"1\",\"totalAmount\":\"5.00\"}],"
     "\"terminalId\":\"not-registered\"}",
     422, "terminalId"},
    {"{\"currency\":\"SEK\",\"currency\":\"EUR\",\"rows\":[]}", 400, NULL},
    {"{\"currency\":\"SEK\",\"title\":\"\xff\xfe\",\"rows\":[]}", 400, NULL},
    {"{\"currency\":\"SEK\",\"rows\":[{\"quantity\":\"1\",\"totalAmount\":"
     "\"92233720368547758.07\"},{\"quantity\":\"1\",\"totalAmount\":\"1.00\"}]}",
     422, "rows"},
};

START_TEST(bad_invoices_change_nothing)
{
    int before = gwt_sim_count(&env, "sendInvoice");
    long st;
    json_t *list = gwt_gw_call(&env, "GET", "/invoices?limit=200", NULL, NULL, &st);
    size_t stored_before = json_array_size(json_object_get(list, "invoices"));
    json_decref(list);
    for (size_t i = 0; i < sizeof bad_invoices / sizeof *bad_invoices; i++) {
        const bad_case *c = &bad_invoices[i];
        json_t *j = gwt_gw_call(&env, "POST", "/invoices", c->body, NULL, &st);
        ck_assert_msg(st == c->status, "case %zu (%s): status %ld, want %ld", i, c->body, st,
                      c->status);
        ck_assert_msg(json_is_object(json_object_get(j, "error")), "case %zu: no error object", i);
        ck_assert_msg(strlen(gwt_str(json_object_get(j, "error"), "message")) > 0,
                      "case %zu: empty message", i);
        if (c->field != NULL)
            ck_assert_msg(strcmp(gwt_error_field(j), c->field) == 0,
                          "case %zu: field '%s', want '%s'", i, gwt_error_field(j), c->field);
        json_decref(j);
    }
    /* A thousand rows: refused as too many, no crash. */
    buf big = BUF_INIT;
    buf_puts(&big, "{\"currency\":\"SEK\",\"rows\":[");
    for (int i = 0; i < 1000; i++)
        buf_printf(&big, "%s{\"quantity\":\"1\",\"totalAmount\":\"1.00\"}", i ? "," : "");
    buf_puts(&big, "]}");
    json_t *j = gwt_gw_call(&env, "POST", "/invoices", buf_cstr(&big), NULL, &st);
    ck_assert_int_eq(st, 422);
    ck_assert_str_eq(gwt_error_code(j), "too_many_rows");
    json_decref(j);
    buf_free(&big);

    ck_assert_int_eq(gwt_sim_count(&env, "sendInvoice"), before);
    list = gwt_gw_call(&env, "GET", "/invoices?limit=200", NULL, NULL, &st);
    ck_assert_int_eq(json_array_size(json_object_get(list, "invoices")), stored_before);
    json_decref(list);
}
END_TEST

START_TEST(list_and_update)
{
    char a[64], b[64];
    gwt_create_invoice(&env, a);
    gwt_create_invoice(&env, b);
    long st;
    json_t *j = gwt_gw_call(&env, "GET", "/invoices?status=ISSUED&limit=1", NULL, NULL, &st);
    ck_assert_int_eq(st, 200);
    json_t *arr = json_object_get(j, "invoices");
    ck_assert_int_eq(json_array_size(arr), 1);
    ck_assert_str_eq(gwt_str(json_array_get(arr, 0), "invoiceReference"), b); /* newest first */
    const char *next = gwt_str(j, "next");
    ck_assert(strlen(next) > 0);
    char path[128];
    snprintf(path, sizeof path, "/invoices?status=ISSUED&limit=1&after=%s", next);
    json_t *j2 = gwt_gw_call(&env, "GET", path, NULL, NULL, &st);
    ck_assert_str_eq(
        gwt_str(json_array_get(json_object_get(j2, "invoices"), 0), "invoiceReference"), a);
    json_decref(j2);
    json_decref(j);
    j = gwt_gw_call(&env, "GET", "/invoices?status=BOGUS", NULL, NULL, &st);
    ck_assert_int_eq(st, 400);
    json_decref(j);
    j = gwt_gw_call(&env, "GET", "/invoices?limit=0", NULL, NULL, &st);
    ck_assert_int_eq(st, 400);
    json_decref(j);

    snprintf(path, sizeof path, "/invoices/%s", a);
    j = gwt_gw_call(&env, "PUT", path,
                    "{\"currency\":\"SEK\",\"title\":\"Member price\","
                    "\"rows\":[{\"quantity\":\"1\",\"totalAmount\":\"450.00\"}]}",
                    NULL, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_str_eq(gwt_str(j, "totalAmount"), "450.00");
    ck_assert_str_eq(gwt_str(j, "title"), "Member price");
    json_decref(j);
    json_t *s = gwt_sim_state(&env, a);
    ck_assert_str_eq(gwt_str(s, "totalAmount"), "450.00");
    json_decref(s);
}
END_TEST

START_TEST(idempotency_key)
{
    int before = gwt_sim_count(&env, "sendInvoice");
    long st1, st2, st3;
    json_t *a = gwt_gw_call(&env, "POST", "/invoices", gwt_invoice_body, "order-77", &st1);
    json_t *b = gwt_gw_call(&env, "POST", "/invoices", gwt_invoice_body, "order-77", &st2);
    ck_assert_int_eq(st1, 201);
    ck_assert_int_eq(st2, 201);
    ck_assert_str_eq(gwt_str(a, "invoiceReference"), gwt_str(b, "invoiceReference"));
    ck_assert_int_eq(gwt_sim_count(&env, "sendInvoice"), before + 1);
    json_t *c = gwt_gw_call(&env, "POST", "/invoices",
                            "{\"currency\":\"SEK\",\"rows\":[{\"quantity\":\"1\",\"totalAmount\":"
                            "\"1.00\"}]}",
                            "order-77", &st3);
    ck_assert_int_eq(st3, 422);
    ck_assert_str_eq(gwt_error_code(c), "idempotency_key_reused");
    ck_assert_int_eq(gwt_sim_count(&env, "sendInvoice"), before + 1);
    json_decref(a);
    json_decref(b);
    json_decref(c);
}
END_TEST

/* Hostile bodies on every route and method: each gets a real HTTP answer and
 * the daemon lives on. PUT /invoices/{ref} with "terminalId" once freed an
 * uninitialised pointer and aborted the process. */
START_TEST(hostile_bodies_every_route)
{
    char ref[64], path[160];
    gwt_create_invoice(&env, ref);
    static const char *const bodies[] = {
        "{\"terminalId\":\"t-1\"}",
        "{\"terminalId\":null,\"currency\":\"SEK\"}",
        "{\"currency\":\"SEK\",\"rows\":[{\"quantity\":\"1\",\"totalAmount\":\"1.00\"}],"
        "\"terminalId\":\"x\"}",
        "[]",
        "\"text\"",
        "null",
        "{",
        "{\"amount\":\"99999999999999999999\"}",
        "{\"amount\":1e400}",
        "{\"rows\":[null,1,\"x\",{}]}",
        "{\"parameters\":{\"transactionPeriodId\":[]}}",
        "{\"a\":1,\"a\":2}",
        "{\"\\u0000\":\"\\u0000\"}",
    };
    static const char *const paths[] = {"/invoices",
                                        "/invoices/%s",
                                        "/invoices/%s/status",
                                        "/invoices/%s/cancel",
                                        "/invoices/%s/receipt",
                                        "/invoices/%s/refunds",
                                        "/invoices/%s/refunds/1/resolve",
                                        "/invoices/%s/commit",
                                        "/invoices/%s/qr.svg",
                                        "/periods",
                                        "/reports",
                                        "/terminals",
                                        "/terminals/%s/seqr-id",
                                        "/terminals/%s",
                                        "/unknown-outcomes",
                                        "/unknown-outcomes/invoices/%s/resolve",
                                        "/healthz"};
    static const char *const methods[] = {"POST", "PUT", "GET", "DELETE", "PATCH"};
    for (size_t p = 0; p < sizeof paths / sizeof *paths; p++) {
        snprintf(path, sizeof path, paths[p], ref);
        for (size_t m = 0; m < sizeof methods / sizeof *methods; m++) {
            for (size_t b = 0; b < sizeof bodies / sizeof *bodies; b++) {
                long st = 0;
                json_t *j = gwt_gw_call(&env, methods[m], path, bodies[b], NULL, &st);
                ck_assert_msg(st >= 200 && st <= 599, "%s %s %s -> %ld", methods[m], path,
                              bodies[b], st);
                json_decref(j);
            }
        }
    }
    long st;
    json_t *j = gwt_gw_call(&env, "GET", "/healthz", NULL, NULL, &st);
    ck_assert_int_eq(st, 200);
    json_decref(j);
    snprintf(path, sizeof path, "/invoices/%s", ref);
    j = gwt_gw_call(&env, "PUT", path, "{\"terminalId\":\"t-1\"}", NULL, &st);
    ck_assert_int_eq(st, 422);
    ck_assert_str_eq(gwt_error_field(j), "terminalId");
    json_decref(j);
}
END_TEST

/* The same JSON written another way is the same request (canonical compare),
 * and a replayed answer says so in Idempotent-Replayed. */
START_TEST(idempotency_canonical_json_and_replay_header)
{
    static const char a[] = "{\"currency\":\"SEK\",\"rows\":[{\"quantity\":\"1\",\"totalAmount\":"
                            "\"5.00\",\"description\":\"Tea\"}]}";
    static const char b[] = "{ \"rows\" : [ { \"description\" : \"Tea\", \"totalAmount\" : "
                            "\"5.00\", \"quantity\" : \"1\" } ],\n  \"currency\" : \"SEK\" }";
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/invoices", env.gw_port);
    const char *h[] = {"Authorization: Bearer " API_KEY, "Content-Type: application/json",
                       "Idempotency-Key: canon-1", NULL};
    int before = gwt_sim_count(&env, "sendInvoice");
    tu_response r1, r2;
    ck_assert_int_eq(tu_http("POST", url, h, a, strlen(a), &r1), 201);
    ck_assert_ptr_null(strcasestr(buf_cstr(&r1.headers), "Idempotent-Replayed"));
    ck_assert_int_eq(tu_http("POST", url, h, b, strlen(b), &r2), 201);
    ck_assert_ptr_nonnull(strcasestr(buf_cstr(&r2.headers), "Idempotent-Replayed: true"));
    json_t *j1 = tu_json(&r1), *j2 = tu_json(&r2);
    ck_assert_str_eq(gwt_str(j1, "invoiceReference"), gwt_str(j2, "invoiceReference"));
    ck_assert_int_eq(gwt_sim_count(&env, "sendInvoice"), before + 1);
    json_decref(j1);
    json_decref(j2);
    tu_response_free(&r1);
    tu_response_free(&r2);
}
END_TEST

/* /seqr/notify/ faces the internet without the API key: it must neither
 * claim Idempotency-Keys (a stranger pre-claiming the shop's next key made
 * the shop's real POST /invoices fail with 422) nor keep bodies. */
START_TEST(notify_claims_no_idempotency_key)
{
    char url[160];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/seqr/notify/nope?token=x", env.gw_port);
    size_t n = 500000;
    char *big = malloc(n + 1);
    memset(big, 'a', n);
    big[n] = '\0';
    const char *h[] = {"Idempotency-Key: order-45", "Content-Type: text/plain", NULL};
    tu_response r;
    long st = tu_http("POST", url, h, big, n, &r);
    ck_assert_msg(st == 404 || st == 413, "notify got %ld", st);
    tu_response_free(&r);
    st = tu_http("POST", url, h, "{}", 2, &r);
    ck_assert_int_eq(st, 404);
    tu_response_free(&r);
    free(big);
    json_t *j = gwt_gw_call(&env, "POST", "/invoices", gwt_invoice_body, "order-45", &st);
    ck_assert_int_eq(st, 201);
    json_decref(j);
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open_v2(env.db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *s;
    ck_assert_int_eq(sqlite3_prepare_v2(db,
                                        "SELECT count(*), max(length(response)) FROM idempotency"
                                        " WHERE key = 'order-45'",
                                        -1, &s, NULL),
                     SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
    ck_assert_int_eq(sqlite3_column_int(s, 0), 1);
    ck_assert_int_lt(sqlite3_column_int(s, 1), 5000);
    sqlite3_finalize(s);
    sqlite3_close(db);
}
END_TEST

/* Browsers: a page may not drive the API (CSRF as text/plain, or any
 * Origin), and a rebound host name is refused (DNS rebinding); an
 * unauthenticated body is refused before it is read. */
START_TEST(csrf_rebinding_and_content_type)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/invoices", env.gw_port);
    tu_response r;
    const char *plain[] = {"Authorization: Bearer " API_KEY, "Content-Type: text/plain", NULL};
    ck_assert_int_eq(tu_http("POST", url, plain, gwt_invoice_body, strlen(gwt_invoice_body), &r),
                     415);
    json_t *j = tu_json(&r);
    ck_assert_str_eq(gwt_error_code(j), "unsupported_media_type");
    json_decref(j);
    tu_response_free(&r);
    const char *form[] = {"Authorization: Bearer " API_KEY,
                          "Content-Type: application/x-www-form-urlencoded", NULL};
    ck_assert_int_eq(tu_http("POST", url, form, "a=b", 3, &r), 415);
    tu_response_free(&r);
    const char *origin[] = {"Authorization: Bearer " API_KEY, "Content-Type: application/json",
                            "Origin: https://evil.example", NULL};
    ck_assert_int_eq(tu_http("POST", url, origin, gwt_invoice_body, strlen(gwt_invoice_body), &r),
                     403);
    tu_response_free(&r);
    const char *rebound[] = {"Authorization: Bearer " API_KEY, "Host: evil.example:8080", NULL};
    ck_assert_int_eq(tu_http("GET", url, rebound, NULL, 0, &r), 421);
    j = tu_json(&r);
    ck_assert_str_eq(gwt_error_code(j), "host_not_allowed");
    json_decref(j);
    tu_response_free(&r);
    const char *local[] = {"Authorization: Bearer " API_KEY, "Host: localhost", NULL};
    ck_assert_int_eq(tu_http("GET", url, local, NULL, 0, &r), 200);
    tu_response_free(&r);
    /* No key: 401 whatever the body. */
    const char *nokey[] = {"Content-Type: application/json", NULL};
    ck_assert_int_eq(tu_http("POST", url, nokey, gwt_invoice_body, strlen(gwt_invoice_body), &r),
                     401);
    tu_response_free(&r);
    j = gwt_gw_call(&env, "GET", "/healthz", NULL, NULL, &(long){0});
    json_decref(j);
}
END_TEST

START_TEST(qr_text_and_images)
{
    char ref[64];
    gwt_create_invoice(&env, ref);
    static const char *const formats[] = {"svg", "png", "txt"};
    for (int i = 0; i < 3; i++) {
        char url[200];
        snprintf(url, sizeof url, "http://127.0.0.1:%d/invoices/%s/qr.%s", env.gw_port, ref,
                 formats[i]);
        const char *h[] = {"Authorization: Bearer " API_KEY, NULL};
        tu_response r;
        long st = tu_http("GET", url, h, NULL, 0, &r);
        ck_assert_int_eq(st, 200);
        ck_assert(r.body.len > 100);
        tu_response_free(&r);
    }
    long st;
    char path[128];
    snprintf(path, sizeof path, "/invoices/%s/qr.gif", ref);
    json_t *j = gwt_gw_call(&env, "GET", path, NULL, NULL, &st);
    ck_assert_int_eq(st, 404); /* no such image format */
    json_decref(j);
}
END_TEST

/* Every path and method in docs/openapi.yaml reaches a handler (not the
 * router's 404/405), so the document cannot drift from the server. */
/* Finds the refund of invoice ref in GET /unknown-outcomes; its id, or 0. */
static json_int_t unknown_refund_id(const char *ref)
{
    long st;
    json_t *j = gwt_gw_call(&env, "GET", "/unknown-outcomes", NULL, NULL, &st);
    ck_assert_int_eq(st, 200);
    ck_assert(json_is_array(json_object_get(j, "invoices")));
    json_int_t id = 0;
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(j, "refunds"), i, r)
    {
        if (strcmp(gwt_str(r, "invoiceReference"), ref) == 0)
            id = json_integer_value(json_object_get(r, "id"));
    }
    json_decref(j);
    return id;
}

/* HTTP 503 from SEQR (or a proxy in front of it, which may have forwarded
 * the request) after a refund left: its outcome is unknown, never "failed"
 * (which released the amount for a second refund). */
START_TEST(seqr_503_leaves_a_refund_unknown)
{
    char ref[64], path[200];
    long st, sim_st;
    gwt_paid_invoice(&env, ref);
    snprintf(path, sizeof path, "/invoices/%s/refunds", ref);
    json_decref(gwt_sim_call(&env, "POST", "/sim/faults", "{\"downForSeconds\":30}", &sim_st));
    json_t *j = gwt_gw_call(&env, "POST", path, "{\"amount\":\"10.00\"}", "r503", &st);
    json_decref(gwt_sim_call(&env, "POST", "/sim/faults", "{\"downForSeconds\":0}", &sim_st));
    ck_assert_int_eq(st, 503);
    ck_assert_str_eq(gwt_error_code(j), "seqr_unavailable");
    json_decref(j);
    json_int_t id = unknown_refund_id(ref);
    ck_assert_int_gt(id, 0);
    /* A retry with the same key does not refund again while it is in doubt. */
    j = gwt_gw_call(&env, "POST", path, "{\"amount\":\"10.00\"}", "r503", &st);
    ck_assert_int_eq(st, 409);
    ck_assert_str_eq(gwt_error_code(j), "refund_in_doubt");
    json_decref(j);
    char rpath[240];
    snprintf(rpath, sizeof rpath, "/invoices/%s/refunds/%lld/resolve", ref, (long long)id);
    j = gwt_gw_call(&env, "POST", rpath, "{\"outcome\":\"failed\"}", NULL, &st);
    ck_assert_int_eq(st, 200);
    json_decref(j);
}
END_TEST

/* A reservation committed for less is worth less: the refund cap is the
 * committed amount, not the original total (only SEQR's code 98 stopped an
 * over-refund before). */
START_TEST(commit_for_less_caps_refunds)
{
    long st;
    json_t *j = gwt_gw_call(&env, "POST", "/invoices",
                            "{\"currency\":\"SEK\",\"paymentMode\":\"RESERVATION_REQUIRED\","
                            "\"rows\":[{\"quantity\":\"1\",\"totalAmount\":\"100.00\"}]}",
                            NULL, &st);
    ck_assert_int_eq(st, 201);
    char ref[64], path[200];
    snprintf(ref, sizeof ref, "%s", gwt_str(j, "invoiceReference"));
    json_decref(j);
    gwt_sim_pay(&env, ref);
    json_decref(gwt_wait_status(&env, ref, "RESERVED", 10000));
    snprintf(path, sizeof path, "/invoices/%s/commit", ref);
    j = gwt_gw_call(&env, "POST", path, "{\"amount\":\"60.00\"}", NULL, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_str_eq(gwt_str(j, "totalAmount"), "60.00");
    json_decref(j);
    json_decref(gwt_wait_status(&env, ref, "PAID", 10000));
    int before = gwt_sim_count(&env, "refundPayment");
    snprintf(path, sizeof path, "/invoices/%s/refunds", ref);
    j = gwt_gw_call(&env, "POST", path, "{\"amount\":\"70.00\"}", NULL, &st);
    ck_assert_int_eq(st, 422);
    json_decref(j);
    ck_assert_int_eq(gwt_sim_count(&env, "refundPayment"), before); /* refused locally */
    j = gwt_gw_call(&env, "POST", path, "{\"amount\":\"60.00\"}", NULL, &st);
    ck_assert_int_eq(st, 201);
    json_decref(j);
}
END_TEST

/* Sends an invoice whose answer the simulator garbles (it exists at SEQR, the
 * gateway cannot know), and returns the gateway's id for it from
 * GET /unknown-outcomes; sim_ref receives the simulator's reference. */
static json_int_t unknown_invoice(const char *client_id, char sim_ref[64])
{
    long st;
    char body[256];
    snprintf(body, sizeof body,
             "{\"currency\":\"SEK\",\"clientInvoiceId\":\"%s\",\"rows\":[{\"quantity\":\"1\","
             "\"totalAmount\":\"12.00\",\"description\":\"x\"}]}",
             client_id);
    json_decref(gwt_sim_call(&env, "POST", "/sim/faults", "{\"garbageRate\":1}", &st));
    json_t *j = gwt_gw_call(&env, "POST", "/invoices", body, NULL, &st);
    long sim_st;
    json_decref(gwt_sim_call(&env, "POST", "/sim/faults", "{\"garbageRate\":0}", &sim_st));
    ck_assert_int_eq(st, 502);
    json_decref(j);
    json_int_t id = 0;
    size_t i;
    json_t *r;
    j = gwt_gw_call(&env, "GET", "/unknown-outcomes", NULL, NULL, &st);
    json_array_foreach(json_object_get(j, "invoices"), i, r)
    {
        const char *c = gwt_str(r, "clientInvoiceId");
        if (c != NULL && strcmp(c, client_id) == 0)
            id = json_integer_value(json_object_get(r, "id"));
    }
    json_decref(j);
    sim_ref[0] = '\0';
    j = gwt_sim_call(&env, "GET", "/sim/invoices", NULL, &st);
    json_array_foreach(json_object_get(j, "invoices"), i, r)
    {
        if (strcmp(gwt_str(r, "clientInvoiceId"), client_id) == 0)
            snprintf(sim_ref, 64, "%s", gwt_str(r, "invoiceReference"));
    }
    json_decref(j);
    ck_assert_int_gt(id, 0);
    ck_assert_int_gt(strlen(sim_ref), 0);
    return id;
}

/* An invoice whose sendInvoice answer never came is reconciled by the
 * operator: settled as failed it is gone from the alert; settled as done with
 * the reference from SEQR's report it becomes an invoice the gateway polls,
 * and its payment is seen. Wrong settlements are refused and change nothing. */
START_TEST(unknown_invoice_settled_by_operator)
{
    char sim_a[64], sim_b[64], known[64], path[128];
    long st;
    json_int_t a = unknown_invoice("unknown-a", sim_a);
    json_int_t b = unknown_invoice("unknown-b", sim_b);
    json_t *j = gwt_gw_call(&env, "GET", "/healthz", NULL, NULL, &st);
    json_int_t in_doubt = json_integer_value(json_object_get(j, "unknownOutcomes"));
    ck_assert_int_ge(in_doubt, 2);
    json_decref(j);
    gwt_create_invoice(&env, known);

    static const struct {
        const char *id; /* NULL: invoice a */
        const char *body;
        long status;
        const char *code;
    } bad[] = {
        {NULL, "{\"outcome\":\"maybe\"}", 422, "invalid_value"},
        {NULL, "{\"outcome\":\"done\"}", 400, "missing_field"},
        {NULL, "{\"outcome\":\"done\",\"invoiceReference\":\"\"}", 422, "invalid_value"},
        {NULL, "{\"outcome\":\"done\",\"invoiceReference\":\"a/b\"}", 422, "invalid_value"},
        {NULL, "{\"outcome\":\"done\",\"invoiceReference\":7}", 400, "invalid_type"},
        {NULL, "{\"outcome\":\"failed\",\"invoiceReference\":\"1\"}", 422, "invalid_value"},
        {NULL, "{\"outcome\":\"failed\",\"amount\":\"1.00\"}", 400, "unknown_field"},
        {NULL, "{}", 400, "missing_field"},
        {NULL, "not json", 400, "invalid_json"},
        {NULL, "@known", 409, "reference_in_use"},
        {"abc", "{\"outcome\":\"failed\"}", 404, "not_found"},
        {"99999999", "{\"outcome\":\"failed\"}", 404, "not_found"},
        {"1234567890123456789", "{\"outcome\":\"failed\"}", 404, "not_found"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        char body[160];
        if (strcmp(bad[k].body, "@known") == 0)
            snprintf(body, sizeof body, "{\"outcome\":\"done\",\"invoiceReference\":\"%s\"}",
                     known);
        else
            snprintf(body, sizeof body, "%s", bad[k].body);
        if (bad[k].id != NULL)
            snprintf(path, sizeof path, "/unknown-outcomes/invoices/%s/resolve", bad[k].id);
        else
            snprintf(path, sizeof path, "/unknown-outcomes/invoices/%lld/resolve", (long long)a);
        j = gwt_gw_call(&env, "POST", path, body, NULL, &st);
        ck_assert_msg(st == bad[k].status, "case %zu: %ld", k, st);
        ck_assert_str_eq(gwt_error_code(j), bad[k].code);
        json_decref(j);
    }
    j = gwt_gw_call(&env, "GET", "/healthz", NULL, NULL, &st);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "unknownOutcomes")), in_doubt);
    json_decref(j);

    /* a: SEQR's report does not show it. */
    snprintf(path, sizeof path, "/unknown-outcomes/invoices/%lld/resolve", (long long)a);
    j = gwt_gw_call(&env, "POST", path, "{\"outcome\":\"failed\"}", NULL, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_str_eq(gwt_str(j, "outcome"), "failed");
    ck_assert(json_is_null(json_object_get(j, "invoiceReference")));
    json_decref(j);
    j = gwt_gw_call(&env, "POST", path, "{\"outcome\":\"failed\"}", NULL, &st);
    ck_assert_int_eq(st, 409);
    ck_assert_str_eq(gwt_error_code(j), "invoice_not_in_doubt");
    json_decref(j);

    /* b: SEQR's report shows it; from now on the gateway polls it. */
    snprintf(path, sizeof path, "/unknown-outcomes/invoices/%lld/resolve", (long long)b);
    char body[160];
    snprintf(body, sizeof body, "{\"outcome\":\"done\",\"invoiceReference\":\"%s\"}", sim_b);
    j = gwt_gw_call(&env, "POST", path, body, NULL, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_str_eq(gwt_str(j, "invoiceReference"), sim_b);
    json_decref(j);
    j = gwt_gw_call(&env, "GET", "/healthz", NULL, NULL, &st);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "unknownOutcomes")), in_doubt - 2);
    json_decref(j);
    gwt_sim_pay(&env, sim_b);
    j = gwt_wait_status(&env, sim_b, "PAID", 5000);
    ck_assert_str_eq(gwt_str(j, "totalAmount"), "12.00");
    json_decref(j);
}
END_TEST

/* A refund whose answer never came: its amount stays reserved and it blocks
 * further refunds until the operator settles it; a wrong settlement is
 * refused and changes nothing. */
START_TEST(unknown_refund_settled_by_operator)
{
    char ref[64], other[64], path[200];
    long st;
    gwt_paid_invoice(&env, ref);
    snprintf(path, sizeof path, "/invoices/%s/refunds", ref);
    json_decref(gwt_sim_call(&env, "POST", "/sim/faults", "{\"garbageRate\":1}", &st));
    json_t *j = gwt_gw_call(&env, "POST", path, "{\"amount\":\"100.00\"}", NULL, &st);
    long sim_st;
    json_decref(gwt_sim_call(&env, "POST", "/sim/faults", "{\"garbageRate\":0}", &sim_st));
    ck_assert_int_eq(st, 502);
    json_decref(j);

    json_int_t id = unknown_refund_id(ref);
    ck_assert_int_gt(id, 0);
    j = gwt_gw_call(&env, "GET", "/healthz", NULL, NULL, &st);
    ck_assert_int_ge(json_integer_value(json_object_get(j, "unknownOutcomes")), 1);
    json_decref(j);
    j = gwt_gw_call(&env, "POST", path, "{\"amount\":\"1.00\"}", NULL, &st);
    ck_assert_int_eq(st, 409);
    ck_assert_str_eq(gwt_error_code(j), "refund_in_doubt");
    ck_assert_ptr_nonnull(strstr(gwt_str(json_object_get(j, "error"), "message"), "/resolve"));
    json_decref(j);

    /* Wrong settlements: refused, nothing changes. */
    gwt_create_invoice(&env, other);
    static const struct {
        const char *ref_or_null; /* NULL: the paid invoice */
        const char *id;          /* NULL: the unknown refund */
        const char *body;
        long status;
        const char *code;
    } bad[] = {
        {NULL, NULL, "{\"outcome\":\"maybe\"}", 422, "invalid_value"},
        {NULL, NULL, "{\"outcome\":\"failed\",\"ersReference\":\"E1\"}", 422, "invalid_value"},
        {NULL, NULL, "{\"outcome\":7}", 400, "invalid_type"},
        {NULL, NULL, "{}", 400, "missing_field"},
        {NULL, NULL, "{\"outcome\":\"done\",\"amount\":\"1.00\"}", 400, "unknown_field"},
        {NULL, NULL, "[\"done\"]", 400, "invalid_json"},
        {NULL, "abc", "{\"outcome\":\"done\"}", 404, "not_found"},
        {NULL, "99999999", "{\"outcome\":\"done\"}", 404, "not_found"},
        {NULL, "1234567890123456789", "{\"outcome\":\"done\"}", 404, "not_found"},
        {"", NULL, "{\"outcome\":\"done\"}", 404, "not_found"}, /* "": the other invoice */
        {"NO-SUCH-REF", NULL, "{\"outcome\":\"done\"}", 404, "not_found"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        char idtext[32];
        snprintf(idtext, sizeof idtext, "%lld", (long long)id);
        const char *r = bad[k].ref_or_null == NULL      ? ref
                        : bad[k].ref_or_null[0] == '\0' ? other
                                                        : bad[k].ref_or_null;
        snprintf(path, sizeof path, "/invoices/%s/refunds/%s/resolve", r,
                 bad[k].id ? bad[k].id : idtext);
        j = gwt_gw_call(&env, "POST", path, bad[k].body, NULL, &st);
        ck_assert_msg(st == bad[k].status, "case %zu: %ld", k, st);
        ck_assert_str_eq(gwt_error_code(j), bad[k].code);
        json_decref(j);
    }
    ck_assert_int_eq(unknown_refund_id(ref), id); /* still in doubt */

    /* Settled as failed: the amount is released, refunds work again. */
    snprintf(path, sizeof path, "/invoices/%s/refunds/%lld/resolve", ref, (long long)id);
    j = gwt_gw_call(&env, "POST", path, "{\"outcome\":\"failed\"}", NULL, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_str_eq(gwt_str(j, "refundedAmount"), "0.00");
    json_t *r0 = json_array_get(json_object_get(j, "refunds"), 0);
    ck_assert_str_eq(gwt_str(r0, "status"), "failed");
    ck_assert_ptr_nonnull(strstr(gwt_str(r0, "error"), "settled by the operator as failed"));
    json_decref(j);
    j = gwt_gw_call(&env, "POST", path, "{\"outcome\":\"done\"}", NULL, &st);
    ck_assert_int_eq(st, 409);
    ck_assert_str_eq(gwt_error_code(j), "refund_not_in_doubt");
    json_decref(j);
    ck_assert_int_eq(unknown_refund_id(ref), 0);
    snprintf(path, sizeof path, "/invoices/%s/refunds", ref);
    j = gwt_gw_call(&env, "POST", path, "{\"amount\":\"1.00\"}", NULL, &st);
    ck_assert_int_eq(st, 201);
    json_decref(j);

    /* Another one in doubt, settled as done: the amount stays refunded. */
    json_decref(gwt_sim_call(&env, "POST", "/sim/faults", "{\"garbageRate\":1}", &st));
    j = gwt_gw_call(&env, "POST", path, "{\"amount\":\"50.00\"}", NULL, &st);
    json_decref(gwt_sim_call(&env, "POST", "/sim/faults", "{\"garbageRate\":0}", &sim_st));
    ck_assert_int_eq(st, 502);
    json_decref(j);
    id = unknown_refund_id(ref);
    ck_assert_int_gt(id, 0);
    snprintf(path, sizeof path, "/invoices/%s/refunds/%lld/resolve", ref, (long long)id);
    j = gwt_gw_call(&env, "POST", path, "{\"outcome\":\"done\",\"ersReference\":\"ERS-REPORT-1\"}",
                    NULL, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_str_eq(gwt_str(j, "refundedAmount"), "51.00");
    json_t *r2 = json_array_get(json_object_get(j, "refunds"), 2);
    ck_assert_str_eq(gwt_str(r2, "status"), "done");
    ck_assert_str_eq(gwt_str(r2, "ersReference"), "ERS-REPORT-1");
    json_decref(j);
    ck_assert_int_eq(unknown_refund_id(ref), 0);
}
END_TEST

START_TEST(openapi_paths_answer)
{
    char path[700];
    snprintf(path, sizeof path, "%s/docs/openapi.yaml", tu_env("SEQR_SRCDIR", "."));
    char *doc = tu_read_file(path, NULL);
    ck_assert_ptr_nonnull(doc);
    char ref[64];
    gwt_create_invoice(&env, ref);
    int checked = 0;
    char current[256] = "";
    bool in_paths = false;
    for (char *line = strtok(doc, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "paths:", 6) == 0) {
            in_paths = true;
            continue;
        }
        if (in_paths && line[0] != ' ')
            break;
        if (!in_paths)
            continue;
        if (strncmp(line, "  /", 3) == 0) {
            snprintf(current, sizeof current, "%s", line + 2);
            current[strcspn(current, ":")] = '\0';
            continue;
        }
        static const char *const methods[] = {"get", "post", "put", "delete"};
        for (int m = 0; m < 4; m++) {
            char want[16];
            snprintf(want, sizeof want, "    %s:", methods[m]);
            if (strcmp(line, want) != 0)
                continue;
            /* Fill the templates with harmless values. */
            buf url = BUF_INIT;
            for (const char *p = current; *p; p++) {
                if (strncmp(p, "{ref}", 5) == 0) {
                    buf_puts(&url, ref);
                    p += 4;
                } else if (strncmp(p, "{id}", 4) == 0) {
                    buf_puts(&url, "no-such-terminal");
                    p += 3;
                } else if (strncmp(p, "{refundId}", 10) == 0) {
                    buf_puts(&url, "1");
                    p += 9;
                } else if (strncmp(p, "{invoiceId}", 11) == 0) {
                    buf_puts(&url, "1");
                    p += 10;
                } else if (strncmp(p, "{format}", 8) == 0) {
                    buf_puts(&url, "txt");
                    p += 7;
                } else {
                    buf_putc(&url, *p);
                }
            }
            char method[8];
            size_t k = 0;
            for (; methods[m][k] != '\0'; k++)
                method[k] = (char)toupper((unsigned char)methods[m][k]);
            method[k] = '\0';
            long st;
            json_t *j = gwt_gw_call(&env, method, buf_cstr(&url),
                                    strcmp(method, "GET") && strcmp(method, "DELETE") ? "{}" : NULL,
                                    NULL, &st);
            const char *msg = gwt_str(json_object_get(j, "error"), "message");
            ck_assert_msg(st != 405 && strcmp(msg, "no such endpoint") != 0,
                          "%s %s (documented as %s) is not served: %ld %s", method, buf_cstr(&url),
                          current, st, msg);
            ck_assert_msg(st != 500, "%s %s gave 500", method, buf_cstr(&url));
            json_decref(j);
            buf_free(&url);
            checked++;
        }
    }
    ck_assert_int_ge(checked, 18);
    free(doc);
}
END_TEST

/* PostgreSQL: the online backup is SQLite's; on a PostgreSQL store it is
 * a contract error that says what to use instead, and writes nothing. */
START_TEST(backup_refused_on_postgresql)
{
    long st;
    json_t *j = gwt_gw_call(&env, "POST", "/admin/backup", "{}", NULL, &st);
    ck_assert_int_eq(st, 409);
    json_t *err = json_object_get(j, "error");
    ck_assert_str_eq(gwt_str(err, "code"), "not_supported_on_postgresql");
    ck_assert_ptr_nonnull(strstr(gwt_str(err, "message"), "pg_dump"));
    json_decref(j);
    char dir[1100];
    snprintf(dir, sizeof dir, "%s/backups", env.dir);
    ck_assert_int_ne(access(dir, F_OK), 0);
}
END_TEST

/* --- points of sale --- */

START_TEST(pos_terminal_flow)
{
    long st;
    json_t *j =
        gwt_gw_call(&env, "POST", "/terminals",
                    "{\"externalTerminalId\":\"Store 1/Till 4\",\"name\":\"Till 4\"}", NULL, &st);
    ck_assert_int_eq(st, 201);
    char term[64];
    snprintf(term, sizeof term, "%s", gwt_str(j, "terminalId"));
    ck_assert_int_eq(strlen(term), 32);
    json_decref(j);

    char path[200], body[400];
    snprintf(path, sizeof path, "/terminals/%s/qr.txt", term);
    j = gwt_gw_call(&env, "GET", path, NULL, NULL, &st);
    ck_assert_int_eq(st, 409); /* no SEQR ID yet */
    json_decref(j);
    snprintf(path, sizeof path, "/terminals/%s/seqr-id", term);
    j = gwt_gw_call(&env, "POST", path, "{\"seqrId\":\"storeonetill4\"}", NULL, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_str_eq(gwt_str(j, "qrCode"), "HTTP://SEQR.SE/Qstoreonetill4");
    json_decref(j);
    snprintf(path, sizeof path, "/terminals/%s/qr.svg", term);
    tu_response r;
    char url[300];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", env.gw_port, path);
    const char *h[] = {"Authorization: Bearer " API_KEY, NULL};
    ck_assert_int_eq(tu_http("GET", url, h, NULL, 0, &r), 200);
    ck_assert_ptr_nonnull(strstr(buf_cstr(&r.body), "<svg"));
    tu_response_free(&r);

    /* An invoice on behalf of the terminal, paid and polled with its credentials. */
    snprintf(body, sizeof body,
             "{\"currency\":\"SEK\",\"terminalId\":\"%s\",\"rows\":[{\"quantity\":\"1\","
             "\"totalAmount\":\"75.00\"}]}",
             term);
    j = gwt_gw_call(&env, "POST", "/invoices", body, NULL, &st);
    ck_assert_int_eq(st, 201);
    char ref[64];
    snprintf(ref, sizeof ref, "%s", gwt_str(j, "invoiceReference"));
    ck_assert_str_eq(gwt_str(j, "terminalId"), term);
    json_decref(j);
    json_t *s = gwt_sim_state(&env, ref);
    ck_assert_str_eq(gwt_str(s, "terminalId"), term);
    json_decref(s);
    gwt_sim_pay(&env, ref);
    json_decref(gwt_wait_status(&env, ref, "PAID", 3000));

    snprintf(body, sizeof body, "{\"terminalId\":\"%s\"}", term);
    j = gwt_gw_call(&env, "POST", "/periods", body, NULL, &st);
    ck_assert_int_eq(st, 201);
    char period[64];
    snprintf(period, sizeof period, "%s", gwt_str(j, "transactionPeriodId"));
    json_decref(j);
    snprintf(body, sizeof body,
             "{\"reportId\":\"Reconciliation/STD_RECON_006.xml\",\"parameters\":"
             "{\"transactionPeriodId\":\"%s\",\"TERMINALID\":\"%s\"}}",
             period, term);
    j = gwt_gw_call(&env, "POST", "/reports", body, NULL, &st);
    ck_assert_int_eq(st, 200);
    json_decref(j);

    /* An open invoice of the terminal: unregistering is refused (it would stop
     * being polled) with 409 naming it, and allowed once it is canceled. */
    snprintf(body, sizeof body,
             "{\"currency\":\"SEK\",\"terminalId\":\"%s\",\"rows\":[{\"quantity\":\"1\","
             "\"totalAmount\":\"12.00\"}]}",
             term);
    j = gwt_gw_call(&env, "POST", "/invoices", body, NULL, &st);
    ck_assert_int_eq(st, 201);
    char open_ref[64];
    snprintf(open_ref, sizeof open_ref, "%s", gwt_str(j, "invoiceReference"));
    json_decref(j);
    snprintf(path, sizeof path, "/terminals/%s", term);
    j = gwt_gw_call(&env, "DELETE", path, NULL, NULL, &st);
    ck_assert_int_eq(st, 409);
    ck_assert_str_eq(gwt_error_code(j), "terminal_has_open_invoices");
    ck_assert_ptr_nonnull(strstr(gwt_error_message(j), open_ref));
    ck_assert_ptr_null(strstr(gwt_error_message(j), ref)); /* the PAID one is not open */
    json_decref(j);
    char cancel[120];
    snprintf(cancel, sizeof cancel, "/invoices/%s/cancel", open_ref);
    j = gwt_gw_call(&env, "POST", cancel, NULL, NULL, &st);
    ck_assert_int_eq(st, 200);
    json_decref(j);
    j = gwt_gw_call(&env, "DELETE", path, NULL, NULL, &st);
    ck_assert_int_eq(st, 200);
    json_decref(j);
    j = gwt_gw_call(&env, "DELETE", path, NULL, NULL, &st);
    ck_assert_int_eq(st, 404);
    json_decref(j);
    snprintf(body, sizeof body,
             "{\"currency\":\"SEK\",\"terminalId\":\"%s\",\"rows\":[{\"quantity\":\"1\","
             "\"totalAmount\":\"75.00\"}]}",
             term);
    j = gwt_gw_call(&env, "POST", "/invoices", body, NULL, &st);
    ck_assert_int_eq(st, 422);
    ck_assert_str_eq(gwt_error_field(j), "terminalId");
    json_decref(j);

    j = gwt_gw_call(&env, "POST", "/terminals", "{\"name\":\"x\"}", NULL, &st);
    ck_assert_int_eq(st, 400);
    ck_assert_str_eq(gwt_error_field(j), "externalTerminalId");
    json_decref(j);
}
END_TEST

/* dev/certify walks the procedure with curl against the simulator. */
static void run_certify(const char *mode_flag, const char *expect_line)
{
    char out[700], cmd[2048];
    snprintf(out, sizeof out, "%s/certify%s.log", env.dir, mode_flag);
    snprintf(cmd, sizeof cmd,
             "GATEWAY_URL=http://127.0.0.1:%d API_KEY=%s SIM_URL=http://127.0.0.1:%d "
             "'%s/dev/certify' %s --wait-seconds 1 --pay-timeout %d > '%s' 2>&1",
             env.gw_port, API_KEY, env.sim_port, tu_env("SEQR_SRCDIR", "."), mode_flag,
             10 * gwt_slowdown(), out);
    int rc = system(cmd);
    char *text = tu_read_file(out, NULL);
    ck_assert_msg(rc == 0, "dev/certify %s failed:\n%s", mode_flag, text ? text : "");
    ck_assert_msg(strstr(text, expect_line) != NULL, "no '%s' in:\n%s", expect_line, text);
    ck_assert_ptr_null(strstr(text, "FAIL"));
    free(text);
}

START_TEST(certify_script_webshop)
{
    run_certify("", "6 passed, 0 failed");
}
END_TEST

START_TEST(certify_script_pos)
{
    run_certify("--pos", "9 passed, 0 failed");
}
END_TEST

/* --- abuse: nothing a client sends may crash the daemon or starve others --- */

START_TEST(abuse_deep_json_header_flood_idle_connections)
{
    long st;
    /* 20,000 nested arrays: refused as malformed, no stack blow-up. */
    buf deep = BUF_INIT;
    for (int i = 0; i < 20000; i++)
        buf_putc(&deep, '[');
    for (int i = 0; i < 20000; i++)
        buf_putc(&deep, ']');
    json_t *j = gwt_gw_call(&env, "POST", "/invoices", buf_cstr(&deep), NULL, &st);
    ck_assert_int_eq(st, 400);
    json_decref(j);
    buf_free(&deep);

    /* A flood of headers: an error answer (or a closed connection), no crash. */
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/invoices", env.gw_port);
    const char **h = calloc(3002, sizeof *h);
    h[0] = "Authorization: Bearer " API_KEY;
    for (int i = 1; i <= 3000; i++)
        h[i] = "X-Flood: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    tu_response r;
    st = tu_http("GET", url, h, NULL, 0, &r);
    ck_assert_msg(st == 0 || st >= 400, "a header flood got %ld", st);
    tu_response_free(&r);
    free(h);

    /* 100 clients of one address (127.0.0.2) that connect and say nothing
     * must not starve a real one of another address: that address gets
     * [http] max_connections_per_ip (16) threads, the rest are closed. */
    int idle[100];
    for (int i = 0; i < 100; i++) {
        idle[i] = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in src = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000002)};
        ck_assert_int_eq(bind(idle[i], (struct sockaddr *)&src, sizeof src), 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)env.gw_port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        ck_assert_int_eq(connect(idle[i], (struct sockaddr *)&a, sizeof a), 0);
        static const char half[] = "GET /invoices HTTP/1.1\r\nHost: x\r\n";
        if (i % 2 == 0) /* half of them send half a request */
            ck_assert_int_gt(write(idle[i], half, sizeof half - 1), 0);
    }
    long long t0 = tu_now_ms();
    j = gwt_gw_call(&env, "GET", "/healthz", NULL, NULL, &st);
    ck_assert_int_eq(st, 200);
    long long took = tu_now_ms() - t0;
    ck_assert_int_lt(took, 1000LL * gwt_slowdown());
    json_decref(j);
    char ref[64];
    gwt_create_invoice(&env, ref);
    /* All but max_connections_per_ip of them were closed by the gateway. */
    int closed = 0;
    long long deadline = tu_now_ms() + 10000LL * gwt_slowdown();
    while (closed < 100 - 16 && tu_now_ms() < deadline) {
        closed = 0;
        for (int i = 0; i < 100; i++) {
            char c;
            ssize_t n = recv(idle[i], &c, 1, MSG_DONTWAIT | MSG_PEEK);
            closed += n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
        }
        if (closed < 100 - 16)
            usleep(50000);
    }
    ck_assert_int_ge(closed, 100 - 16);
    for (int i = 0; i < 100; i++)
        close(idle[i]);
    ck_assert(tu_alive(&env.gw));
}
END_TEST

/* --- SEQR trouble --- */

START_TEST(seqr_garbage_slow_down)
{
    long st;
    json_t *j = gwt_sim_call(&env, "POST", "/sim/faults", "{\"garbageRate\":1}", &st);
    ck_assert_int_eq(st, 200);
    json_decref(j);
    j = gwt_gw_call(&env, "POST", "/invoices", gwt_invoice_body, NULL, &st);
    ck_assert_int_eq(st, 502);
    ck_assert_str_eq(gwt_error_code(j), "seqr_bad_answer");
    json_decref(j);

    json_decref(
        gwt_sim_call(&env, "POST", "/sim/faults", "{\"garbageRate\":0,\"httpErrorRate\":1}", &st));
    j = gwt_gw_call(&env, "POST", "/invoices", gwt_invoice_body, NULL, &st);
    ck_assert_int_eq(st, 502);
    json_decref(j);

    json_decref(
        gwt_sim_call(&env, "POST", "/sim/faults", "{\"httpErrorRate\":0,\"latencyMs\":4500}", &st));
    j = gwt_gw_call(&env, "POST", "/invoices", gwt_invoice_body, NULL, &st); /* timeout_ms = 3000 */
    ck_assert_int_eq(st, 504);
    ck_assert_str_eq(gwt_error_code(j), "seqr_timeout");
    json_decref(j);

    json_decref(
        gwt_sim_call(&env, "POST", "/sim/faults", "{\"latencyMs\":0,\"downForSeconds\":2}", &st));
    j = gwt_gw_call(&env, "POST", "/invoices", gwt_invoice_body, NULL, &st);
    ck_assert_msg(st == 503, "SEQR down gave %ld", st);
    ck_assert_str_eq(gwt_error_code(j), "seqr_unavailable");
    json_decref(j);
    json_decref(gwt_sim_call(&env, "POST", "/sim/faults",
                             "{\"latencyMs\":0,\"garbageRate\":0,\"httpErrorRate\":0,"
                             "\"downForSeconds\":0}",
                             &st));

    /* The daemon is still fine. */
    char ref[64];
    gwt_create_invoice(&env, ref);
}
END_TEST

START_TEST(seqr_unreachable_port)
{
    gw_env e;
    memset(&e, 0, sizeof e);
    char *d = tu_tempdir();
    snprintf(e.dir, sizeof e.dir, "%s", d);
    free(d);
    snprintf(e.conf, sizeof e.conf, "%s/gateway.conf", e.dir);
    snprintf(e.db, sizeof e.db, "%s/gateway.db", e.dir);
    e.gw_port = tu_free_port();
    gwt_write_config(&e, NULL, NULL, tu_free_port()); /* nothing listens there */
    gwt_start_gw(&e);
    long st;
    json_t *j = gwt_gw_call(&e, "POST", "/invoices", gwt_invoice_body, NULL, &st);
    ck_assert_int_eq(st, 503);
    ck_assert_str_eq(gwt_error_code(j), "seqr_unreachable");
    json_decref(j);
    ck_assert_int_eq(tu_stop(&e.gw, SIGTERM, 10000), 0);
}
END_TEST

/* --- crashes and lifecycle --- */

START_TEST(kill9_restart_payment_recorded_in_time)
{
    gw_env e;
    gwt_env_start(&e, "5", NULL, NULL); /* reversal after 5 s without a status fetch */
    char refs[3][64];
    for (int i = 0; i < 3; i++)
        gwt_create_invoice(&e, refs[i]);
    ck_assert_int_eq(tu_stop(&e.gw, SIGKILL, 5000), 128 + SIGKILL);
    gwt_sim_pay(&e, refs[1]); /* paid while the gateway is down */
    tu_sleep_ms(1500);
    gwt_start_gw(&e);
    json_t *j = gwt_wait_status(&e, refs[1], "PAID", 3000);
    json_decref(j);
    json_t *s = gwt_sim_state(&e, refs[1]);
    ck_assert(json_is_false(json_object_get(s, "reversed")));
    ck_assert_int_ge(json_integer_value(json_object_get(s, "statusFetchesAfterPaid")), 1);
    json_decref(s);
    /* The others are still polled after the restart. */
    gwt_sim_pay(&e, refs[2]);
    json_decref(gwt_wait_status(&e, refs[2], "PAID", 3000));
    ck_assert_int_eq(tu_stop(&e.gw, SIGTERM, 10000), 0);
    gwt_env_stop(&e);
}
END_TEST

START_TEST(sigterm_exits_zero_and_secrets_stay_out_of_logs)
{
    gw_env e;
    /* public_url: every sendInvoice carries a notificationUrl with a token. */
    gwt_env_start(&e, "20", NULL, "[http]\npublic_url = https://gw.example/base\n");
    char ref[64];
    gwt_paid_invoice(&e, ref);
    long st;
    json_decref(gwt_gw_call(&e, "POST", "/periods", "{}", NULL, &st));
    json_decref(gwt_gw_call(&e, "POST", "/terminals",
                            "{\"externalTerminalId\":\"s1\",\"name\":\"Till\","
                            "\"password\":\"Till-Secret-9876\"}",
                            "t-secret", &st));
    ck_assert_int_eq(st, 201);
    /* A terminal escape in the path reaches the access log as '?'. */
    json_decref(gwt_gw_call(&e, "GET", "/nope%1B%5B31mRED", NULL, NULL, &st));
    ck_assert_int_eq(st, 404);
    ck_assert_int_eq(tu_stop(&e.gw, SIGTERM, 10000), 0);
    char token[64] = "";
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open_v2(e.db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *q;
    ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT notify_token FROM invoices WHERE reference = ?",
                                        -1, &q, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(q, 1, ref, -1, SQLITE_STATIC);
    ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
    snprintf(token, sizeof token, "%s", (const char *)sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    sqlite3_close(db);
    ck_assert_int_eq(strlen(token), 32);
    char log[700];
    snprintf(log, sizeof log, "%s/gateway.log", e.dir);
    char *text = tu_read_file(log, NULL);
    ck_assert_ptr_nonnull(text);
    ck_assert_ptr_nonnull(strstr(text, "listening on"));
    ck_assert_ptr_nonnull(strstr(text, "notificationUrl")); /* debug shows the request... */
    ck_assert_ptr_null(strstr(text, token));                /* ...without its token */
    ck_assert_ptr_null(strstr(text, TERMINAL_PASSWORD));
    ck_assert_ptr_null(strstr(text, RESELLER_PASSWORD));
    ck_assert_ptr_null(strstr(text, API_KEY));
    ck_assert_ptr_null(strstr(text, "Till-Secret-9876"));
    ck_assert_ptr_null(strchr(text, 0x1b));
    ck_assert_ptr_nonnull(strstr(text, "?[31mRED"));
    free(text);
    gwt_env_stop(&e);
}
END_TEST

/* Unpaid past invoice_ttl_s: the poller cancels it at SEQR. */
START_TEST(ttl_cancels_unpaid_invoices)
{
    gw_env e;
    gwt_env_start(&e, "20", NULL, "invoice_ttl_s = 10\n");
    char ref[64];
    gwt_create_invoice(&e, ref);
    json_t *j = gwt_wait_status(&e, ref, "CANCELED", 15000);
    json_decref(j);
    json_t *s = gwt_sim_state(&e, ref);
    ck_assert_str_eq(gwt_str(s, "status"), "CANCELED");
    json_decref(s);
    ck_assert_int_eq(tu_stop(&e.gw, SIGTERM, 10000), 0);
    gwt_env_stop(&e);
}
END_TEST

/* SEQR's notification (with the invoice's own token) makes the gateway poll at
 * once; a wrong token is refused and changes nothing. */
START_TEST(notification_triggers_a_poll)
{
    gw_env e;
    gwt_env_start(&e, "20", NULL, "interval_ms = 60000\n");
    char ref[64];
    gwt_create_invoice(&e, ref);
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open_v2(e.db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *q = NULL;
    ck_assert_int_eq(sqlite3_prepare_v2(db,
                                        "SELECT id, notify_token FROM invoices WHERE reference = ?",
                                        -1, &q, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(q, 1, ref, -1, SQLITE_STATIC);
    ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
    long long id = sqlite3_column_int64(q, 0);
    char token[64];
    snprintf(token, sizeof token, "%s", (const char *)sqlite3_column_text(q, 1));
    sqlite3_finalize(q);
    sqlite3_close(db);
    ck_assert_int_eq(strlen(token), 32);

    gwt_sim_pay(&e, ref); /* paid; the next regular poll is a minute away */
    long st;
    char path[200];
    snprintf(path, sizeof path, "/seqr/notify/gw-%lld?token=%s", id,
             "0123456789abcdef0123456789abcdef");
    json_t *j = gwt_gw_call(&e, "POST", path, NULL, NULL, &st);
    ck_assert_int_eq(st, 404);
    json_decref(j);
    snprintf(path, sizeof path, "/seqr/notify/gw-%lld?token=%s", id, token);
    j = gwt_gw_call(&e, "POST", path, NULL, NULL, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_str_eq(gwt_str(j, "invoiceReference"), ref);
    json_decref(j);
    json_decref(gwt_wait_status(&e, ref, "PAID", 3000));
    ck_assert_int_eq(tu_stop(&e.gw, SIGTERM, 10000), 0);
    gwt_env_stop(&e);
}
END_TEST

/* A hanging SEQR: polls give up after [poller] poll_timeout_ms (3 s by
 * default), not after the general timeout_ms (15 s here), so one stuck poll
 * plus backoff stays inside SEQR's 20 seconds. */
START_TEST(polls_have_their_own_short_timeout)
{
    gw_env e;
    gwt_env_start(&e, "60", "timeout_ms = 15000\n", NULL);
    char ref[64];
    gwt_create_invoice(&e, ref);
    long st;
    json_decref(gwt_sim_call(&e, "POST", "/sim/faults", "{\"latencyMs\":5000}", &st));
    ck_assert_int_eq(st, 200);
    long long deadline = tu_now_ms() + 30000LL * gwt_slowdown();
    json_int_t errors = 0;
    while (errors == 0 && tu_now_ms() < deadline) {
        json_t *j = gwt_gw_call(&e, "GET", "/healthz", NULL, NULL, &st);
        errors = json_integer_value(json_object_get(j, "pollErrors"));
        ck_assert(json_is_object(json_object_get(j, "pollGap")));
        ck_assert(json_is_boolean(json_object_get(json_object_get(j, "pollGap"), "alarm")));
        json_decref(j);
        if (errors == 0)
            tu_sleep_ms(200);
    }
    ck_assert_int_gt(errors, 0);
    json_decref(gwt_sim_call(&e, "POST", "/sim/faults", "{\"latencyMs\":0}", &st));
    ck_assert_int_eq(tu_stop(&e.gw, SIGTERM, 30000), 0);
    gwt_env_stop(&e);
}
END_TEST

/* The polling loop works in ticks (wakes at most every few ms while calls
 * are in flight, src/poller.c): with many invoices polled ten times a second
 * and every answer taking 20 ms, it is always mid-tick. A new invoice still
 * gets polled (it is seen PAID), and SIGTERM still ends the daemon cleanly
 * (the wake-up for stopping ends a tick's wait). */
START_TEST(ticking_poller_takes_new_invoices_and_stops)
{
    gw_env e;
    gwt_env_start(&e, "60", NULL, "interval_ms = 100\n");
    long st;
    json_decref(gwt_sim_call(&e, "POST", "/sim/faults", "{\"latencyMs\":20}", &st));
    ck_assert_int_eq(st, 200);
    char ref[64];
    for (int i = 0; i < 40; i++)
        gwt_create_invoice(&e, ref);
    /* Wait until the polls flow: several rounds of all forty. */
    long long deadline = tu_now_ms() + 30000LL * gwt_slowdown();
    json_int_t polls = 0;
    while (polls < 200 && tu_now_ms() < deadline) {
        json_t *j = gwt_gw_call(&e, "GET", "/healthz", NULL, NULL, &st);
        polls = json_integer_value(json_object_get(j, "polls"));
        json_decref(j);
        if (polls < 200)
            tu_sleep_ms(100);
    }
    ck_assert_int_ge(polls, 200);
    char fresh[64];
    gwt_create_invoice(&e, fresh);
    gwt_sim_pay(&e, fresh);
    json_decref(gwt_wait_status(&e, fresh, "PAID", 10000));
    ck_assert_int_eq(tu_stop(&e.gw, SIGTERM, 10000 * gwt_slowdown()), 0);
    gwt_env_stop(&e);
}
END_TEST

/* The 20-second rule's alarm: a poller that cannot keep up (one call at a
 * time, 8 invoices, SEQR answering in 2.5 s: each invoice waits ~20 s) shows
 * it in /healthz before SEQR's 20 s run out, not only after a gap ended. */
START_TEST(poll_gap_alarm_before_20_seconds)
{
    gw_env e;
    gwt_env_start(&e, "60", "timeout_ms = 15000\n", "max_in_flight = 1\n");
    char ref[64];
    for (int i = 0; i < 8; i++)
        gwt_create_invoice(&e, ref);
    long st;
    json_decref(gwt_sim_call(&e, "POST", "/sim/faults", "{\"latencyMs\":2500}", &st));
    long long deadline = tu_now_ms() + 60000LL * gwt_slowdown();
    bool alarm = false;
    json_int_t open_ms = 0;
    const char *status = "";
    json_t *j = NULL;
    while (!alarm && tu_now_ms() < deadline) {
        json_decref(j);
        j = gwt_gw_call(&e, "GET", "/healthz", NULL, NULL, &st);
        json_t *gap = json_object_get(j, "pollGap");
        alarm = json_is_true(json_object_get(gap, "alarm"));
        open_ms = json_integer_value(json_object_get(gap, "openMaxMs"));
        status = gwt_str(j, "status");
        if (!alarm)
            tu_sleep_ms(250);
    }
    ck_assert_msg(alarm, "no alarm; longest open gap %lld ms", (long long)open_ms);
    ck_assert_int_ge(open_ms, 15000); /* the threshold: 5 s before SEQR's 20 s */
    ck_assert_str_eq(status, "degraded");
    json_decref(j);
    json_decref(gwt_sim_call(&e, "POST", "/sim/faults", "{\"latencyMs\":0}", &st));
    ck_assert_int_eq(tu_stop(&e.gw, SIGTERM, 30000), 0);
    gwt_env_stop(&e);
}
END_TEST

/* A second gateway on the same database, or on the same port, refuses to
 * start and leaves the first one alone; once the first has stopped, the
 * database is free again. (Two daemons on one database would recover each
 * other's intents under way and poll every invoice twice.) */
START_TEST(one_gateway_per_database_and_port)
{
    gw_env e;
    gwt_env_start(&e, "20", NULL, NULL);
    char ref[64];
    gwt_create_invoice(&e, ref);

    char *gw = (char *)tu_env("SEQR_GATEWAY_BIN", "src/seqr-gateway");
    char log2[700], conf2[700], db2[700];
    snprintf(log2, sizeof log2, "%s/second.log", e.dir);
    snprintf(conf2, sizeof conf2, "%s/second.conf", e.dir);
    snprintf(db2, sizeof db2, "%s/other.db", e.dir);
    tu_proc second;
    char *same[] = {gw, "--config", e.conf, NULL};
    ck_assert(tu_spawn(&second, same, log2));
    ck_assert_int_eq(tu_stop(&second, 0, 10000 * gwt_slowdown()), 1);
    char *out = tu_read_file(log2, NULL);
    ck_assert_ptr_nonnull(strstr(out, "in use by another seqr-gateway"));
    free(out);

    /* The same port with a database of its own: the port is taken. */
    char *text = tu_read_file(e.conf, NULL);
    char *at = strstr(text, e.db);
    ck_assert_ptr_nonnull(at);
    buf other = BUF_INIT;
    buf_printf(&other, "%.*s%s%s", (int)(at - text), text, db2, at + strlen(e.db));
    ck_assert(tu_write_file(conf2, buf_cstr(&other)));
    chmod(conf2, 0600);
    buf_free(&other);
    free(text);
    unlink(log2);
    char *port_taken[] = {gw, "--config", conf2, NULL};
    ck_assert(tu_spawn(&second, port_taken, log2));
    ck_assert_int_eq(tu_stop(&second, 0, 10000 * gwt_slowdown()), 1);
    out = tu_read_file(log2, NULL);
    ck_assert_ptr_nonnull(strstr(out, "cannot listen"));
    free(out);

    /* The first gateway did not notice: its invoice is still there. */
    long st;
    char path[128];
    snprintf(path, sizeof path, "/invoices/%s", ref);
    json_t *j = gwt_gw_call(&e, "GET", path, NULL, NULL, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_str_eq(gwt_str(j, "status"), "ISSUED");
    json_decref(j);

    /* Stopped, it frees the database for the next one. */
    ck_assert_int_eq(tu_stop(&e.gw, SIGTERM, 10000 * gwt_slowdown()), 0);
    gwt_start_gw(&e);
    j = gwt_gw_call(&e, "GET", path, NULL, NULL, &st);
    ck_assert_int_eq(st, 200);
    json_decref(j);
    ck_assert_int_eq(tu_stop(&e.gw, SIGTERM, 10000 * gwt_slowdown()), 0);
    gwt_env_stop(&e);
}
END_TEST

START_TEST(command_line)
{
    char log[700], bad[700];
    char *d = tu_tempdir();
    snprintf(log, sizeof log, "%s/out.log", d);
    snprintf(bad, sizeof bad, "%s/bad.conf", d);
    ck_assert(tu_write_file(bad, "[http]\nport = 99999\nbogus = 1\n[seqr]\nurl = ftp://x\n"));
    tu_proc p;
    char *argv1[] = {(char *)tu_env("SEQR_GATEWAY_BIN", "src/seqr-gateway"), "--check-config", bad,
                     NULL};
    ck_assert(tu_spawn(&p, argv1, log));
    ck_assert_int_eq(tu_stop(&p, 0, 10000), 2);
    char *out = tu_read_file(log, NULL);
    ck_assert_ptr_nonnull(strstr(out, "[http] port"));
    ck_assert_ptr_nonnull(strstr(out, "[http] bogus"));
    ck_assert_ptr_nonnull(strstr(out, "[seqr] url"));
    ck_assert_ptr_nonnull(strstr(out, "[seqr] terminal_id"));
    free(out);
    char *argv2[] = {(char *)tu_env("SEQR_GATEWAY_BIN", "src/seqr-gateway"), "--version", NULL};
    unlink(log);
    ck_assert(tu_spawn(&p, argv2, log));
    ck_assert_int_eq(tu_stop(&p, 0, 10000), 0);
    out = tu_read_file(log, NULL);
    ck_assert_str_eq(out, "seqr-gateway 0.1.0\n");
    free(out);
    free(d);
}
END_TEST

/* --- complete invoices and rendered receipts (own pair, with [invoice] and
 * [receipt] configured) --- */

static gw_env renv;

static void receipts_setup(void)
{
    gwt_env_start(
        &renv, "20", NULL,
        "[invoice]\ntitle = Corner Shop Online\ncashier_id = web-7\n"
        "footer = Open every day 8-22\n"
        "[receipt]\nstore_name = Corner Shop AB\naddress = Storgatan 1, 111 22 Stockholm\n"
        "org_number = SE556677889901\n");
}

static void receipts_teardown(void)
{
    ck_assert_int_eq(tu_stop(&renv.gw, SIGTERM, 60000), 0);
    gwt_env_stop(&renv);
}

/* The last entry of the simulator's request log for op (caller decrefs). */
static json_t *last_sim_request(const gw_env *e, const char *op)
{
    char path[128];
    long st;
    snprintf(path, sizeof path, "/sim/requests?operation=%s", op);
    json_t *log = gwt_sim_call(e, "GET", path, NULL, &st);
    ck_assert_int_eq(st, 200);
    json_t *arr = json_object_get(log, "requests");
    ck_assert_int_gt(json_array_size(arr), 0);
    json_t *last = json_incref(json_array_get(arr, json_array_size(arr) - 1));
    json_decref(log);
    return last;
}

/* Waits until the invoice says its receipt was submitted (caller decrefs). */
static json_t *wait_receipt(const gw_env *e, const char *ref)
{
    long long end = tu_now_ms() + 5000LL * gwt_slowdown();
    for (;;) {
        json_t *j = gwt_wait_status(e, ref, "PAID", 5000 * gwt_slowdown());
        if (json_is_true(json_object_get(j, "receiptSubmitted")) || tu_now_ms() > end)
            return j;
        json_decref(j);
        tu_sleep_ms(50);
    }
}

/* The receiptData the simulator received last, decoded (caller frees). */
static char *submitted_receipt_html(const gw_env *e)
{
    json_t *req = last_sim_request(e, "submitPaymentReceipt");
    ck_assert_int_eq(json_array_size(json_object_get(req, "deviations")), 0);
    json_t *doc = json_object_get(req, "receiptDocument");
    ck_assert_str_eq(gwt_str(doc, "mimeType"), "text/html");
    ck_assert_str_eq(gwt_str(doc, "receiptType"), "PAYMENT_RECEIPT");
    buf html = BUF_INIT;
    ck_assert(receipt_base64_decode(gwt_str(doc, "receiptData"), &html));
    json_decref(req);
    ck_assert_int_gt(html.len, 0);
    return buf_detach(&html);
}

START_TEST(required_fields_get_configured_defaults)
{
    long st;
    json_t *j = gwt_gw_call(&renv, "POST", "/invoices",
                            "{\"currency\":\"SEK\",\"rows\":[{\"quantity\":\"1\","
                            "\"totalAmount\":\"75.00\"}]}",
                            NULL, &st);
    ck_assert_int_eq(st, 201);
    char ref[64];
    snprintf(ref, sizeof ref, "%s", gwt_str(j, "invoiceReference"));
    json_decref(j);
    json_t *req = last_sim_request(&renv, "sendInvoice");
    char *dump = json_dumps(req, 0);
    ck_assert_msg(json_array_size(json_object_get(req, "deviations")) == 0, "%s", dump);
    json_t *inv = json_object_get(req, "invoice");
    ck_assert_str_eq(gwt_str(inv, "paymentMode"), "IMMEDIATE_DEBIT");
    ck_assert_str_eq(gwt_str(inv, "acknowledgmentMode"), "NO_ACKNOWLEDGMENT");
    ck_assert_int_eq(strlen(gwt_str(inv, "issueDate")), 20);
    ck_assert_str_eq(gwt_str(inv, "title"), "Corner Shop Online");
    ck_assert_str_eq(gwt_str(inv, "cashierId"), "web-7");
    ck_assert_str_eq(gwt_str(inv, "footer"), "Open every day 8-22");
    ck_assert_msg(strncmp(gwt_str(inv, "clientInvoiceId"), "gw-", 3) == 0, "%s", dump);
    ck_assert_str_eq(gwt_str(json_object_get(inv, "totalAmount"), "value"), "75.00");
    char own_id[64];
    snprintf(own_id, sizeof own_id, "%s", gwt_str(inv, "clientInvoiceId"));
    free(dump);
    json_decref(req);

    /* updateInvoice: the same defaults, the same own id. */
    char path[128];
    snprintf(path, sizeof path, "/invoices/%s", ref);
    j = gwt_gw_call(
        &renv, "PUT", path,
        "{\"currency\":\"SEK\",\"rows\":[{\"quantity\":\"2\",\"totalAmount\":\"150.00\"}]}", NULL,
        &st);
    ck_assert_int_eq(st, 200);
    json_decref(j);
    req = last_sim_request(&renv, "updateInvoice");
    ck_assert_int_eq(json_array_size(json_object_get(req, "deviations")), 0);
    inv = json_object_get(req, "invoice");
    ck_assert_str_eq(gwt_str(inv, "title"), "Corner Shop Online");
    ck_assert_str_eq(gwt_str(inv, "cashierId"), "web-7");
    ck_assert_str_eq(gwt_str(inv, "footer"), "Open every day 8-22");
    ck_assert_str_eq(gwt_str(inv, "clientInvoiceId"), own_id);
    json_decref(req);

    /* The shop's own values win over the defaults. */
    j = gwt_gw_call(&renv, "POST", "/invoices", gwt_invoice_body, NULL, &st);
    ck_assert_int_eq(st, 201);
    json_decref(j);
    req = last_sim_request(&renv, "sendInvoice");
    inv = json_object_get(req, "invoice");
    ck_assert_str_eq(gwt_str(inv, "title"), "Order 1001 & <friends>");
    ck_assert_str_eq(gwt_str(inv, "clientInvoiceId"), "1001");
    ck_assert_str_eq(gwt_str(inv, "cashierId"), "web");
    ck_assert_str_eq(gwt_str(inv, "footer"), "Thanks");
    json_decref(req);

    /* A point of sale: its name is the title, its own cashierId the cashier. */
    j = gwt_gw_call(&renv, "POST", "/terminals",
                    "{\"externalTerminalId\":\"till-7\",\"name\":\"Till 7 at the door\","
                    "\"cashierId\":\"anna\"}",
                    NULL, &st);
    ck_assert_int_eq(st, 201);
    ck_assert_str_eq(gwt_str(j, "cashierId"), "anna");
    char body[256];
    snprintf(body, sizeof body,
             "{\"currency\":\"SEK\",\"terminalId\":\"%s\",\"rows\":[{\"quantity\":\"1\","
             "\"totalAmount\":\"10.00\"}]}",
             gwt_str(j, "terminalId"));
    json_decref(j);
    j = gwt_gw_call(&renv, "POST", "/invoices", body, NULL, &st);
    ck_assert_int_eq(st, 201);
    json_decref(j);
    req = last_sim_request(&renv, "sendInvoice");
    ck_assert_int_eq(json_array_size(json_object_get(req, "deviations")), 0);
    inv = json_object_get(req, "invoice");
    ck_assert_str_eq(gwt_str(inv, "title"), "Till 7 at the door");
    ck_assert_str_eq(gwt_str(inv, "cashierId"), "anna");
    ck_assert_str_eq(gwt_str(inv, "footer"), "Open every day 8-22");
    json_decref(req);
}
END_TEST

START_TEST(paid_invoice_gets_a_rendered_receipt)
{
    char ref[64];
    gwt_paid_invoice(&renv, ref);
    json_t *j = wait_receipt(&renv, ref);
    ck_assert(json_is_true(json_object_get(j, "receiptSubmitted")));
    json_t *rd = json_object_get(j, "receiptDocument");
    ck_assert_str_eq(gwt_str(rd, "mimeType"), "text/html");
    ck_assert_str_eq(gwt_str(rd, "receiptType"), "PAYMENT_RECEIPT");
    ck_assert_int_eq(strlen(gwt_str(rd, "submittedAt")), 20);
    char ers[64];
    snprintf(ers, sizeof ers, "%s", gwt_str(j, "ersReference"));
    char pay_ref[64];
    snprintf(pay_ref, sizeof pay_ref, "%s",
             gwt_str(json_object_get(j, "receipt"), "paymentReference"));
    json_decref(j);

    char *html = submitted_receipt_html(&renv);
    static const char *const want[] = {"Corner Shop AB", "Storgatan 1, 111 22 Stockholm",
                                       "SE556677889901", "Order 1001 &amp; &lt;friends&gt;",
                                       "Laptop",         "Shipping",
                                       "250.00 SEK",     "25 %",
                                       "100.00 SEK", /* VAT at 25 %: 500.00 * 25 / 125 */
                                       "400.00 SEK", /* net at 25 % */
                                       "549.50 SEK",     "Thanks"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        ck_assert_msg(strstr(html, want[i]) != NULL, "no \"%s\" in:\n%s", want[i], html);
    ck_assert_msg(strstr(html, ers) != NULL, "no ersReference %s in:\n%s", ers, html);
    if (pay_ref[0] != '\0')
        ck_assert_msg(strstr(html, pay_ref) != NULL, "no paymentReference in:\n%s", html);

    /* The shop can show the buyer the very same receipt. */
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/invoices/%s/receipt.html", renv.gw_port, ref);
    const char *auth[] = {"Authorization: Bearer " API_KEY, NULL};
    tu_response r;
    ck_assert_int_eq(tu_http("GET", url, auth, NULL, 0, &r), 200);
    char type[128];
    ck_assert(tu_header(&r, "Content-Type", type, sizeof type));
    ck_assert_ptr_nonnull(strstr(type, "text/html"));
    ck_assert_str_eq(buf_cstr(&r.body), html);
    tu_response_free(&r);
    free(html);

    /* POST with no body sends the rendered receipt again, never an empty one. */
    char path[128];
    long st;
    snprintf(path, sizeof path, "/invoices/%s/receipt", ref);
    j = gwt_gw_call(&renv, "POST", path, NULL, NULL, &st);
    ck_assert_int_eq(st, 200);
    json_decref(j);
    html = submitted_receipt_html(&renv);
    ck_assert_ptr_nonnull(strstr(html, "Laptop"));
    free(html);
}
END_TEST

START_TEST(receipt_contract_errors)
{
    long st;
    json_t *j = gwt_gw_call(&renv, "GET", "/invoices/9999999999999/receipt.html", NULL, NULL, &st);
    ck_assert_int_eq(st, 404);
    ck_assert_str_eq(gwt_error_code(j), "not_found");
    json_decref(j);
    char ref[64], path[128];
    gwt_create_invoice(&renv, ref);
    snprintf(path, sizeof path, "/invoices/%s/receipt.html", ref);
    j = gwt_gw_call(&renv, "GET", path, NULL, NULL, &st);
    ck_assert_int_eq(st, 409);
    ck_assert_str_eq(gwt_error_code(j), "invalid_state");
    json_decref(j);

    gwt_sim_pay(&renv, ref);
    json_decref(wait_receipt(&renv, ref));
    snprintf(path, sizeof path, "/invoices/%s/receipt", ref);
    int before = gwt_sim_count(&renv, "submitPaymentReceipt");
    /* Some but not all of the three: 422 naming the missing one, nothing sent. */
    static const struct {
        const char *body, *field;
    } partial[] = {
        {"{\"receiptType\":\"PAYMENT_RECEIPT\",\"receiptData\":\"PGI+\"}", "mimeType"},
        {"{\"mimeType\":\"text/html\",\"receiptData\":\"PGI+\"}", "receiptType"},
        {"{\"mimeType\":\"text/html\",\"receiptType\":\"PAYMENT_RECEIPT\"}", "receiptData"},
        {"{\"mimeType\":\"text/html\"}", "receiptType"},
    };
    for (size_t i = 0; i < sizeof partial / sizeof *partial; i++) {
        j = gwt_gw_call(&renv, "POST", path, partial[i].body, NULL, &st);
        ck_assert_int_eq(st, 422);
        ck_assert_str_eq(gwt_error_code(j), "missing_field");
        ck_assert_str_eq(gwt_error_field(j), partial[i].field);
        json_decref(j);
    }
    ck_assert_int_eq(gwt_sim_count(&renv, "submitPaymentReceipt"), before);

    /* The shop's own (XML) receipt: sent as given; there is no HTML to show. */
    j = gwt_gw_call(&renv, "POST", path,
                    "{\"mimeType\":\"text/xml\",\"receiptType\":\"OTHER\",\"receiptData\":"
                    "\"PHJlY2VpcHQvPg==\"}",
                    NULL, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_str_eq(gwt_str(json_object_get(j, "receiptDocument"), "mimeType"), "text/xml");
    json_decref(j);
    json_t *req = last_sim_request(&renv, "submitPaymentReceipt");
    ck_assert_str_eq(gwt_str(json_object_get(req, "receiptDocument"), "receiptData"),
                     "PHJlY2VpcHQvPg==");
    json_decref(req);
    snprintf(path, sizeof path, "/invoices/%s/receipt.html", ref);
    j = gwt_gw_call(&renv, "GET", path, NULL, NULL, &st);
    ck_assert_int_eq(st, 409);
    ck_assert_str_eq(gwt_error_code(j), "receipt_not_html");
    json_decref(j);
}
END_TEST

/* A stored invoice that no longer reads back (say a later version checks rows
 * more strictly) still gets a receipt: the total, the title, the references. */
START_TEST(receipt_without_readable_rows)
{
    char ref[64];
    gwt_create_invoice(&renv, ref);
    char sql[256];
    snprintf(sql, sizeof sql,
             "UPDATE invoices SET doc = json_set(doc, '$.rows[0].quantity', '0')"
             " WHERE reference = '%s'",
             ref);
    change_one_row(&renv, sql);
    gwt_sim_pay(&renv, ref);
    json_t *j = wait_receipt(&renv, ref);
    ck_assert(json_is_true(json_object_get(j, "receiptSubmitted")));
    json_decref(j);
    char *html = submitted_receipt_html(&renv);
    ck_assert_ptr_nonnull(strstr(html, "549.50 SEK"));
    ck_assert_ptr_nonnull(strstr(html, "Order 1001 &amp; &lt;friends&gt;"));
    ck_assert_ptr_null(strstr(html, "Laptop"));
    free(html);
}
END_TEST

/* <script>, &, quotes and 2 KB of UTF-8 from the shop stay text: in the SOAP
 * envelope (SEQR receives exactly what the shop sent) and in the receipt. */
START_TEST(hostile_text_is_escaped)
{
    buf footer = BUF_INIT, body = BUF_INIT, euros = BUF_INIT, rows = BUF_INIT;
    for (int i = 0; i < 125; i++)
        buf_puts(&footer, "\xF0\x9F\x8D\x95"); /* 125 x U+1F355: 500 bytes, the most */
    for (int i = 0; i < 66; i++)
        buf_puts(&euros, "\xE2\x82\xAC"); /* 66 x U+20AC: 198 bytes */
    for (int i = 0; i < 8; i++)           /* with the footer and the title: over 2 KB of UTF-8 */
        buf_printf(&rows,
                   ",{\"quantity\":\"1\",\"totalAmount\":\"1.00\",\"taxRate\":6,"
                   "\"description\":\"%s\"}",
                   buf_cstr(&euros));
    const char *title =
        "<script>alert(\\\"x\\\")</script> & 'quotes' \\\"too\\\" \xC3\xA5\xC3\xA4\xC3\xB6";
    const char *title_raw =
        "<script>alert(\"x\")</script> & 'quotes' \"too\" \xC3\xA5\xC3\xA4\xC3\xB6";
    buf_printf(&body,
               "{\"currency\":\"SEK\",\"title\":\"%s\",\"footer\":\"%s\",\"rows\":[{\"quantity\":"
               "\"1\",\"totalAmount\":\"12.00\",\"taxRate\":12,\"description\":\"<img src=x "
               "onerror=alert(1)> &amp; </td></tr></table>\"}%s]}",
               title, buf_cstr(&footer), buf_cstr(&rows));
    long st;
    json_t *j = gwt_gw_call(&renv, "POST", "/invoices", buf_cstr(&body), NULL, &st);
    char *answer = json_dumps(j, 0);
    ck_assert_msg(st == 201, "%ld %s", st, answer);
    free(answer);
    char ref[64];
    snprintf(ref, sizeof ref, "%s", gwt_str(j, "invoiceReference"));
    json_decref(j);
    json_t *req = last_sim_request(&renv, "sendInvoice");
    json_t *inv = json_object_get(req, "invoice");
    ck_assert_str_eq(gwt_str(inv, "title"), title_raw);
    ck_assert_str_eq(gwt_str(inv, "footer"), buf_cstr(&footer));
    json_decref(req);

    gwt_sim_pay(&renv, ref);
    json_decref(wait_receipt(&renv, ref));
    char *html = submitted_receipt_html(&renv);
    ck_assert_ptr_null(strstr(html, "<script"));
    ck_assert_ptr_null(strstr(html, "<img"));
    ck_assert_ptr_null(strstr(html, "</td></tr></table>\""));
    ck_assert_msg(strstr(html, "&lt;script&gt;alert(\"x\")&lt;/script&gt; &amp; 'quotes'") != NULL,
                  "%s", html);
    ck_assert_ptr_nonnull(strstr(html, "&lt;img src=x onerror=alert(1)&gt; &amp;amp; "
                                       "&lt;/td&gt;&lt;/tr&gt;&lt;/table&gt;"));
    ck_assert_ptr_nonnull(strstr(html, "\xC3\xA5\xC3\xA4\xC3\xB6"));
    ck_assert_ptr_nonnull(strstr(html, buf_cstr(&footer)));
    ck_assert_ptr_nonnull(strstr(html, buf_cstr(&euros)));
    ck_assert_ptr_nonnull(strstr(html, "1.29 SEK")); /* VAT at 12 %: 12.00 * 12 / 112 = 1.2857 */
    ck_assert_ptr_nonnull(strstr(html, "0.45 SEK")); /* VAT at 6 %: 8.00 * 6 / 106 = 0.4528 */
    ck_assert_ptr_nonnull(strstr(html, "20.00 SEK"));
    free(html);
    buf_free(&euros);
    buf_free(&rows);
    buf_free(&footer);
    buf_free(&body);
}
END_TEST

/* Adds tests that share one daemon, which must not depend on their order:
 * SEQR_TEST_ORDER=reverse adds them backwards to show it. */
/* tests/pg_test.sh runs these tests on PostgreSQL (SEQR_TEST_PG_URL), but
 * for those that open the SQLite file itself or test what only SQLite has
 * (the one-gateway lock, the online backup). */
static bool gw_sqlite_only(const TTest *t)
{
    static const char *const names[] = {
        "notify_claims_no_idempotency_key",  "receipt_without_readable_rows",
        "paid_without_ers_reference",        "sigterm_exits_zero_and_secrets_stay_out_of_logs",
        "one_gateway_per_database_and_port", "notification_triggers_a_poll"};
    const char *pg = getenv("SEQR_TEST_PG_URL");
    if (pg == NULL || pg[0] == '\0')
        return false;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strcmp(t->name, names[i]) == 0)
            return true;
    return false;
}

static void gw_add_tests(TCase *tc, const TTest *const *tests, size_t n)
{
    bool reverse = strcmp(tu_env("SEQR_TEST_ORDER", ""), "reverse") == 0;
    for (size_t i = 0; i < n; i++) {
        const TTest *t = tests[reverse ? n - 1 - i : i];
        if (!gw_sqlite_only(t))
            tcase_add_test(tc, t);
    }
}

int main(void)
{
    Suite *s = suite_create("gateway");

    TCase *shared = tcase_create("shared");
    tcase_add_unchecked_fixture(shared, shared_setup, shared_teardown);
    tcase_set_timeout(shared, 60 * gwt_slowdown());
    const TTest *const shared_tests[] = {
        healthz_and_auth,
        unknown_paths_and_methods,
        body_too_large,
        cert1_send_invoice,
        cert2_status_scan_paid_and_receipt,
        cert2_first_invoice_still_answers_after_a_second,
        cert4_cancel,
        cert5_refunds,
        paid_without_ers_reference,
        unknown_refund_settled_by_operator,
        seqr_503_leaves_a_refund_unknown,
        commit_for_less_caps_refunds,
        unknown_invoice_settled_by_operator,
        cert6_period_and_report,
        bad_invoices_change_nothing,
        list_and_update,
        idempotency_key,
        hostile_bodies_every_route,
        idempotency_canonical_json_and_replay_header,
        notify_claims_no_idempotency_key,
        csrf_rebinding_and_content_type,
        qr_text_and_images,
        openapi_paths_answer,
        abuse_deep_json_header_flood_idle_connections,
        pos_terminal_flow,
        certify_script_webshop,
        certify_script_pos,
        seqr_garbage_slow_down,
    };
    gw_add_tests(shared, shared_tests, sizeof shared_tests / sizeof *shared_tests);
    if (tu_env("SEQR_TEST_PG_URL", "")[0] != '\0')
        tcase_add_test(shared, backup_refused_on_postgresql);
    suite_add_tcase(s, shared);

    TCase *receipts = tcase_create("receipts");
    tcase_add_unchecked_fixture(receipts, receipts_setup, receipts_teardown);
    tcase_set_timeout(receipts, 60 * gwt_slowdown());
    const TTest *const receipt_tests[] = {
        required_fields_get_configured_defaults,
        paid_invoice_gets_a_rendered_receipt,
        receipt_contract_errors,
        hostile_text_is_escaped,
        receipt_without_readable_rows,
    };
    gw_add_tests(receipts, receipt_tests, sizeof receipt_tests / sizeof *receipt_tests);
    suite_add_tcase(s, receipts);

    TCase *own = tcase_create("own-processes");
    tcase_set_timeout(own, 60 * gwt_slowdown());
    tcase_add_test(own, seqr_unreachable_port);
    tcase_add_test(own, kill9_restart_payment_recorded_in_time);
    if (!gw_sqlite_only(sigterm_exits_zero_and_secrets_stay_out_of_logs))
        tcase_add_test(own, sigterm_exits_zero_and_secrets_stay_out_of_logs);
    tcase_add_test(own, command_line);
    if (!gw_sqlite_only(one_gateway_per_database_and_port))
        tcase_add_test(own, one_gateway_per_database_and_port);
    tcase_add_test(own, ttl_cancels_unpaid_invoices);
    if (!gw_sqlite_only(notification_triggers_a_poll))
        tcase_add_test(own, notification_triggers_a_poll);
    tcase_add_test(own, polls_have_their_own_short_timeout);
    tcase_add_test(own, ticking_poller_takes_new_invoices_and_stops);
    tcase_add_test(own, poll_gap_alarm_before_20_seconds);
    suite_add_tcase(s, own);

    return tu_run_suite(s);
}
