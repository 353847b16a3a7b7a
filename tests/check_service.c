/* check_service.c — the service and the poller in-process, against the real
 * seqr-sim over loopback and a real SQLite file, or the PostgreSQL database
 * of SEQR_TEST_PG_URL (tests/pg_test.sh), whose writes can be made to fail
 * (store_fail_writes). Whenever a store write fails after SEQR has
 * acted, the use case must say so (500 store_error), or the poller must keep
 * the invoice and store its answer again: never a silent loss. */
#include <check.h>
#include <curl/curl.h>
#include <libxml/parser.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gwtest.h"
#include "poller.h"
#include "seqr/codes.h"
#include "service.h"

typedef struct {
    gw_env e;
    config cfg;
    store *st;
    seqr_client *seqr;
    service *svc;
    poller *pol;
} svc_env;

static seqr_client *svc_client(const config *cfg, const char *url)
{
    seqr_client_options so = {
        .url = url,
        .timeout_ms = cfg->seqr_timeout_ms,
        .user_agent = "check_service",
        .channel = cfg->seqr_channel,
        .client_id = cfg->seqr_client_id,
        .client_reference = cfg->seqr_client_reference,
        .terminal_id = cfg->seqr_terminal_id,
        .terminal_password = cfg->seqr_password,
        .reseller_id = cfg->reseller_id,
        .reseller_user_id = cfg->reseller_user_id,
        .reseller_password = cfg->reseller_password,
    };
    seqr_client *c = seqr_client_new(&so);
    ck_assert_ptr_nonnull(c);
    return c;
}

/* The SQLite file, or PostgreSQL's URL when the suite runs against it. */
static const char *svc_location(const svc_env *s)
{
    const char *pg = getenv("SEQR_TEST_PG_URL");
    return pg != NULL && pg[0] != '\0' ? pg : s->e.db;
}

/* The simulator, a store, a client and the service; with_poller also runs
 * the poller, told of every new invoice. */
static void svc_start(svc_env *s, bool with_poller)
{
    memset(s, 0, sizeof *s);
    gwt_env_init(&s->e, "60");
    gwt_write_config(&s->e, NULL, NULL, s->e.sim_port);
    buf errors = BUF_INIT, warnings = BUF_INIT;
    ck_assert_msg(config_load(s->e.conf, &s->cfg, &errors, &warnings) == 0, "config: %s",
                  buf_cstr(&errors));
    buf_free(&errors);
    buf_free(&warnings);
    buf err = BUF_INIT;
    ck_assert_msg(store_open(svc_location(s), &s->st, &err) == STORE_OK, "%s", buf_cstr(&err));
    buf_free(&err);
    s->seqr = svc_client(&s->cfg, s->cfg.seqr_url);
    s->svc = service_new(&s->cfg, s->st, s->seqr);
    ck_assert_ptr_nonnull(s->svc);
    if (with_poller) {
        s->pol = poller_new(&s->cfg, s->svc, s->st, s->seqr);
        ck_assert_ptr_nonnull(s->pol);
        service_set_pending_hook(s->svc, poller_pending_hook, s->pol);
        ck_assert(poller_start(s->pol));
    }
}

static void svc_stop(svc_env *s)
{
    if (s->pol) {
        poller_stop(s->pol);
        poller_free(s->pol);
    }
    service_free(s->svc);
    seqr_client_free(s->seqr);
    store_close(s->st);
    config_free(&s->cfg);
    gwt_env_stop(&s->e);
}

static void svc_create(svc_env *s, char ref[64])
{
    json_t *body = json_loads(gwt_invoice_body, 0, NULL);
    ck_assert_ptr_nonnull(body);
    invoice_input in;
    api_error err;
    ck_assert_msg(invoice_parse(body, &in, &err), "%s", err.message);
    store_invoice inv;
    json_t *answer = NULL;
    ck_assert_msg(service_create_invoice(s->svc, &in, &inv, &answer, &err), "%s", err.message);
    snprintf(ref, 64, "%s", inv.reference);
    store_invoice_clear(&inv);
    /* The answer, built while SEQR answered and completed after, is the
     * invoice as it was stored, member for member and in the same order. */
    store_invoice got;
    ck_assert_msg(service_get_invoice(s->svc, ref, &got, &err), "%s", err.message);
    json_t *stored = service_invoice_json(s->svc, &got);
    char *a = json_dumps(answer, JSON_COMPACT), *b = json_dumps(stored, JSON_COMPACT);
    ck_assert_str_eq(a, b);
    ck_assert_str_eq(json_string_value(json_object_get(answer, "invoiceReference")), ref);
    free(a);
    free(b);
    json_decref(stored);
    json_decref(answer);
    store_invoice_clear(&got);
    invoice_input_free(&in);
    json_decref(body);
}

/* A PAID invoice (paid at the simulator, learnt by a refresh). */
static void svc_paid(svc_env *s, char ref[64])
{
    svc_create(s, ref);
    gwt_sim_pay(&s->e, ref);
    store_invoice inv;
    api_error err;
    ck_assert_msg(service_refresh_status(s->svc, ref, &inv, &err), "%s", err.message);
    ck_assert_int_eq(inv.status, SEQR_STATUS_PAID);
    store_invoice_clear(&inv);
}

static void svc_assert_unrecorded(const api_error *err, const char *what)
{
    ck_assert_int_eq(err->http_status, 500);
    ck_assert_str_eq(err->code, "store_error");
    ck_assert_msg(strstr(err->message, what) != NULL, "'%s' does not say '%s'", err->message, what);
}

/* SEQR canceled the invoice but CANCELED could not be stored: an error, not
 * a 200 showing ISSUED; the next refresh learns CANCELED from SEQR. */
START_TEST(cancel_unrecorded_is_an_error)
{
    svc_env s;
    svc_start(&s, false);
    char ref[64];
    svc_create(&s, ref);
    store_fail_writes(s.st, 0, 1);
    store_invoice inv;
    api_error err;
    ck_assert(!service_cancel_invoice(s.svc, ref, &inv, &err));
    svc_assert_unrecorded(&err, "SEQR canceled invoice");
    ck_assert_msg(service_refresh_status(s.svc, ref, &inv, &err), "%s", err.message);
    ck_assert_int_eq(inv.status, SEQR_STATUS_CANCELED);
    store_invoice_clear(&inv);
    svc_stop(&s);
}
END_TEST

/* refundPayment succeeded but its outcome could not be stored: an error, and
 * the refund stays 'sending' (amount reserved, further refunds refused), to
 * become an unknown outcome at the next start. */
START_TEST(refund_unrecorded_stays_in_doubt)
{
    svc_env s;
    svc_start(&s, false);
    char ref[64];
    svc_paid(&s, ref);
    store_fail_writes(s.st, 1, 1); /* the intent is stored, the outcome is not */
    json_t *refund = NULL;
    api_error err;
    ck_assert(!service_refund(s.svc, ref, 10000, NULL, &refund, &err));
    ck_assert_ptr_null(refund);
    svc_assert_unrecorded(&err, "SEQR made refund");
    ck_assert_int_eq(gwt_sim_count(&s.e, "refundPayment"), 1);
    ck_assert(!service_refund(s.svc, ref, 100, NULL, &refund, &err));
    ck_assert_str_eq(err.code, "refund_in_doubt");
    ck_assert_int_eq(gwt_sim_count(&s.e, "refundPayment"), 1);

    store_invoice inv;
    ck_assert_int_eq(store_invoice_get(s.st, ref, &inv), STORE_OK);
    int64_t id = inv.id;
    store_invoice_clear(&inv);
    store_close(s.st);
    buf berr = BUF_INIT;
    ck_assert_int_eq(store_open(svc_location(&s), &s.st, &berr), STORE_OK);
    buf_free(&berr);
    char *json = NULL;
    ck_assert_int_eq(store_refund_list(s.st, id, &json), STORE_OK);
    ck_assert_msg(strstr(json, "\"unknown\"") != NULL, "%s", json);
    free(json);
    /* The service still holds the closed store: give it a new one. */
    service_free(s.svc);
    s.svc = service_new(&s.cfg, s.st, s.seqr);
    svc_stop(&s);
}
END_TEST

/* A socket that accepts connections (the kernel's backlog) but never answers. */
static int svc_silent_socket(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(fd, 8), 0);
    socklen_t len = sizeof a;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* sendInvoice timed out (outcome unknown) and recording that failed: an
 * error saying so, and the intent becomes an unknown outcome at the next
 * start rather than vanishing. */
START_TEST(send_outcome_unrecorded_is_an_error)
{
    svc_env s;
    svc_start(&s, false);
    int port;
    int fd = svc_silent_socket(&port);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/soap", port);
    s.cfg.seqr_timeout_ms = 300;
    seqr_client *silent = svc_client(&s.cfg, url);
    service *svc = service_new(&s.cfg, s.st, silent);
    json_t *body = json_loads(gwt_invoice_body, 0, NULL);
    invoice_input in;
    api_error err;
    ck_assert(invoice_parse(body, &in, &err));
    store_fail_writes(s.st, 1, 1); /* the intent is stored, the outcome is not */
    store_invoice inv;
    json_t *answer = NULL;
    ck_assert(!service_create_invoice(svc, &in, &inv, &answer, &err));
    ck_assert_ptr_null(answer); /* what was built meanwhile is not handed out */
    svc_assert_unrecorded(&err, "has an unknown outcome");
    invoice_input_free(&in);
    json_decref(body);
    service_free(svc);
    seqr_client_free(silent);
    close(fd);

    service_free(s.svc);
    store_close(s.st);
    buf berr = BUF_INIT;
    ck_assert_int_eq(store_open(svc_location(&s), &s.st, &berr), STORE_OK);
    buf_free(&berr);
    s.svc = service_new(&s.cfg, s.st, s.seqr);
    int64_t unknown = 0;
    ck_assert_int_eq(store_counts(s.st, &unknown), STORE_OK);
    ck_assert_int_eq(unknown, 1);
    svc_stop(&s);
}
END_TEST

/* SEQR accepted the receipt but the gateway could not record it: an error. */
START_TEST(receipt_unrecorded_is_an_error)
{
    svc_env s;
    svc_start(&s, false);
    s.cfg.poller_auto_receipt = false;
    char ref[64];
    svc_paid(&s, ref);
    for (int skip = 0; skip < 2; skip++) {
        store_fail_writes(s.st, skip, 1); /* the receipt row, then the invoice's flag */
        store_invoice inv;
        api_error err;
        ck_assert_msg(!service_submit_receipt(s.svc, ref, NULL, NULL, NULL, &inv, &err), "skip %d",
                      skip);
        svc_assert_unrecorded(&err, "SEQR accepted the receipt");
    }
    svc_stop(&s);
}
END_TEST

/* markTransactionPeriod succeeded but the period could not be stored. */
START_TEST(period_unrecorded_is_an_error)
{
    svc_env s;
    svc_start(&s, false);
    store_fail_writes(s.st, 0, 1);
    char period[64];
    api_error err;
    ck_assert(!service_mark_period(s.svc, NULL, period, &err));
    svc_assert_unrecorded(&err, "SEQR marked transaction period");
    svc_stop(&s);
}
END_TEST

/* SEQR assigned a SEQR ID, or unregistered a terminal, but the gateway could
 * not record it: an error each time, and the terminal stays as stored. */
START_TEST(terminal_calls_unrecorded_are_errors)
{
    svc_env s;
    svc_start(&s, false);
    unsigned char key[32];
    memset(key, 7, sizeof key);
    ck_assert_int_eq(store_set_secret_key(s.st, key), STORE_OK);
    char term[64];
    api_error err;
    ck_assert_msg(
        service_register_terminal(s.svc, "Store 1/Till 9", "Till 9", NULL, NULL, term, &err), "%s",
        err.message);
    store_fail_writes(s.st, 0, 1);
    ck_assert(!service_assign_seqr_id(s.svc, term, "storeonetill9", &err));
    svc_assert_unrecorded(&err, "SEQR assigned SEQR ID storeonetill9");
    store_fail_writes(s.st, 0, 1);
    ck_assert(!service_unregister_terminal(s.svc, term, &err));
    svc_assert_unrecorded(&err, "SEQR unregistered terminal");
    store_terminal t;
    ck_assert_int_eq(store_terminal_get(s.st, term, &t), STORE_OK);
    ck_assert(!t.unregistered);
    ck_assert_str_eq(t.seqr_id, "");
    svc_stop(&s);
}
END_TEST

/* Waits until the store holds status want for ref (bounded). */
static bool svc_wait_stored(svc_env *s, const char *ref, seqr_status want, int timeout_ms)
{
    long long until = tu_now_ms() + (long long)timeout_ms * gwt_slowdown();
    for (;;) {
        store_invoice inv;
        bool done = store_invoice_get(s->st, ref, &inv) == STORE_OK && inv.status == want;
        store_invoice_clear(&inv);
        if (done)
            return true;
        if (tu_now_ms() > until)
            return false;
        tu_sleep_ms(20);
    }
}

/* The poller learns PAID while the store fails: the status write itself
 * (skip 0) or the commit of the poller's batch (skip 1; PostgreSQL has no
 * batch, each write commits alone, so there the write after it fails: the
 * automatic receipt's). Either way the invoice stays polled and PAID is
 * stored by a later poll, not lost until a restart. */
START_TEST(poller_keeps_paid_through_failed_write)
{
    svc_env s;
    svc_start(&s, true);
    char ref[64];
    svc_create(&s, ref);
    store_fail_writes(s.st, _i, 1);
    gwt_sim_pay(&s.e, ref);
    ck_assert_msg(svc_wait_stored(&s, ref, SEQR_STATUS_PAID, 10000), "PAID was lost (skip %d)", _i);
    svc_stop(&s);
}
END_TEST

/* The code table is the one source: a refusal with a code after which the
 * same call may succeed later (its retryable column) gets a Retry-After,
 * and no other does; the HTTP status is the table's. */
START_TEST(seqr_refusals_follow_the_code_table)
{
    int n = 0;
    const seqr_code_info *table = seqr_code_table(&n);
    ck_assert_int_gt(n, 0);
    for (int i = 0; i < n; i++) {
        if (table[i].code == SEQR_CODE_SUCCESS)
            continue;
        seqr_result res;
        memset(&res, 0, sizeof res);
        res.code = table[i].code;
        api_error err;
        memset(&err, 0, sizeof err);
        service_seqr_error(&err, SEQR_ERR_RESULT, &res, "anOperation");
        ck_assert_msg((err.retry_after_s > 0) == table[i].retryable, "code %d (%s)", table[i].code,
                      table[i].name);
        ck_assert_int_eq(seqr_code_retryable(table[i].code), table[i].retryable);
        ck_assert_int_eq(err.http_status, table[i].http_status);
        ck_assert_int_eq(err.seqr_code, table[i].code);
    }
    ck_assert(!seqr_code_retryable(12345));
}
END_TEST

static Suite *service_suite(void)
{
    Suite *s = suite_create("service");
    TCase *codes = tcase_create("codes");
    tcase_add_test(codes, seqr_refusals_follow_the_code_table);
    suite_add_tcase(s, codes);
    TCase *tc = tcase_create("unrecorded");
    tcase_set_timeout(tc, 60 * gwt_slowdown());
    tcase_add_test(tc, cancel_unrecorded_is_an_error);
    tcase_add_test(tc, refund_unrecorded_stays_in_doubt);
    tcase_add_test(tc, send_outcome_unrecorded_is_an_error);
    tcase_add_test(tc, receipt_unrecorded_is_an_error);
    tcase_add_test(tc, period_unrecorded_is_an_error);
    tcase_add_test(tc, terminal_calls_unrecorded_are_errors);
    tcase_add_loop_test(tc, poller_keeps_paid_through_failed_write, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    xmlInitParser();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int failed = tu_run_suite(service_suite());
    curl_global_cleanup();
    return failed;
}
