/* check_config.c — the INI parser (every key, every kind of bad value,
 * unknown sections and keys, duplicates, missing file, comments and quoting,
 * the permission warning, secrets kept out of messages) and the log redactor. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "log.h"
#include "testutil.h"

#define REQUIRED "[seqr]\nurl = https://seqr.example/soap\nterminal_id = T1\npassword = s3cret-pw\n"

static char *write_conf(const char *text, mode_t mode)
{
    static char path[600];
    char *d = tu_tempdir();
    snprintf(path, sizeof path, "%s/gw.conf", d);
    free(d);
    ck_assert(tu_write_file(path, text));
    chmod(path, mode);
    return path;
}

/* Loads text; returns the problem count and fills errors/warnings. */
static int load(const char *text, config *cfg, buf *errors, buf *warnings)
{
    buf_init(errors);
    buf_init(warnings);
    return config_load(write_conf(text, 0600), cfg, errors, warnings);
}

START_TEST(defaults_and_every_key)
{
    config cfg;
    buf e, w;
    ck_assert_int_eq(load(REQUIRED, &cfg, &e, &w), 0);
    ck_assert_str_eq(cfg.http_listen, "127.0.0.1");
    ck_assert_int_eq(cfg.http_port, 8080);
    ck_assert_str_eq(cfg.http_api_key, "");
    ck_assert_int_eq(cfg.seqr_timeout_ms, 15000);
    ck_assert_str_eq(cfg.seqr_client_id, "Company Name");
    ck_assert_str_eq(cfg.seqr_client_reference, "seqr-gateway " SEQR_VERSION);
    ck_assert_str_eq(cfg.seqr_channel, "WS");
    ck_assert_str_eq(cfg.store_path, "/var/lib/seqr-gateway/gateway.db");
    ck_assert_int_eq(cfg.poller_interval_ms, 1000);
    ck_assert_int_eq(cfg.poller_invoice_ttl_s, 900);
    ck_assert(cfg.poller_auto_receipt);
    ck_assert_str_eq(cfg.log_level, "info");
    /* SEQR's required invoice fields always have a value: the title is the
     * store's name, which is clientId unless set. */
    ck_assert_str_eq(cfg.receipt_store_name, "Company Name");
    ck_assert_str_eq(cfg.invoice_title, "Company Name");
    ck_assert_str_eq(cfg.invoice_cashier_id, "web");
    ck_assert_str_eq(cfg.invoice_footer, "Thank you for your purchase");
    ck_assert_str_eq(cfg.receipt_address, "");
    ck_assert_str_eq(cfg.receipt_org_number, "");
    config_free(&cfg);
    buf_free(&e);
    buf_free(&w);
    ck_assert_int_eq(load(REQUIRED "[receipt]\nstore_name = Corner Shop AB\n", &cfg, &e, &w), 0);
    ck_assert_str_eq(cfg.invoice_title, "Corner Shop AB");
    config_free(&cfg);
    buf_free(&e);
    buf_free(&w);

    const char *full = "# every key\n"
                       "[http]\nlisten = ::1\nport = 9000\napi_key = k3y-value\n"
                       "public_url = https://pay.example\nmax_body_bytes = 2048\n"
                       "max_connections = 10\nconnection_timeout_s = 5\n"
                       "[seqr]\nurl = https://seqr.example/soap  # trailing comment\n"
                       "terminal_id = T1\npassword = \"p#ss word\"\nclient_id = Shop AB\n"
                       "client_reference = shop 1.0\nchannel = extWS\ntimeout_ms = 100\n"
                       "ca_file = /etc/hostname\n"
                       "[reseller]\nid = R\nuser_id = 9900\npassword = rpw-secret\n"
                       "[store]\npath = /tmp/x.db\n"
                       "[poller]\ninterval_ms = 100\ninvoice_ttl_s = 10\nauto_receipt = off\n"
                       "max_in_flight = 1\n[invoice]\ntitle = Shop Online\ncashier_id = till-1\n"
                       "footer = See you\n[receipt]\nstore_name = Shop AB\naddress = Gatan 2\n"
                       "org_number = SE556677889901\n[log]\nlevel = debug\n";
    ck_assert_int_eq(load(full, &cfg, &e, &w), 0);
    ck_assert_str_eq(cfg.http_listen, "::1");
    ck_assert_int_eq(cfg.http_port, 9000);
    ck_assert_str_eq(cfg.http_api_key, "k3y-value");
    ck_assert_str_eq(cfg.http_public_url, "https://pay.example");
    ck_assert_int_eq(cfg.http_max_body_bytes, 2048);
    ck_assert_int_eq(cfg.http_max_connections, 10);
    ck_assert_int_eq(cfg.http_connection_timeout_s, 5);
    ck_assert_str_eq(cfg.seqr_url, "https://seqr.example/soap");
    ck_assert_str_eq(cfg.seqr_password, "p#ss word");
    ck_assert_str_eq(cfg.seqr_client_id, "Shop AB");
    ck_assert_str_eq(cfg.seqr_channel, "extWS");
    ck_assert_int_eq(cfg.seqr_timeout_ms, 100);
    ck_assert_str_eq(cfg.seqr_ca_file, "/etc/hostname");
    ck_assert_str_eq(cfg.reseller_user_id, "9900");
    ck_assert_str_eq(cfg.store_path, "/tmp/x.db");
    ck_assert(!cfg.poller_auto_receipt);
    ck_assert_int_eq(cfg.poller_max_in_flight, 1);
    ck_assert_str_eq(cfg.log_level, "debug");
    ck_assert_str_eq(cfg.invoice_title, "Shop Online");
    ck_assert_str_eq(cfg.invoice_cashier_id, "till-1");
    ck_assert_str_eq(cfg.invoice_footer, "See you");
    ck_assert_str_eq(cfg.receipt_store_name, "Shop AB");
    ck_assert_str_eq(cfg.receipt_address, "Gatan 2");
    ck_assert_str_eq(cfg.receipt_org_number, "SE556677889901");
    config_free(&cfg);
    buf_free(&e);
    buf_free(&w);
}
END_TEST

typedef struct {
    const char *text;   /* appended after REQUIRED */
    const char *expect; /* a substring of the single problem line */
} bad_value;

static const bad_value bad_values[] = {
    {"[http]\nport = 0\n", ":6: [http] port: 0 is out of range"},
    {"[http]\nport = 65536\n", "[http] port: 65536 is out of range"},
    {"[http]\nport = 80x\n", "[http] port: \"80x\" is not a whole number"},
    {"[http]\nport =\n", "[http] port: \"\" is not a whole number"},
    {"[http]\nport = 99999999999999999999\n", "[http] port"},
    {"[http]\nlisten = not a host!\n", "[http] listen: not an IP address or host name"},
    {"[http]\npublic_url = ftp://x\n", "[http] public_url"},
    {"[http]\nmax_body_bytes = 10\n", "[http] max_body_bytes: 10 is out of range"},
    {"[http]\nmax_connections = -1\n", "[http] max_connections"},
    {"[http]\nconnection_timeout_s = 0\n", "[http] connection_timeout_s"},
    {"[seqr]\nclient_reference = 123456789012345678901234567890123\n",
     "[seqr] client_reference: longer than 32 characters"},
    {"[seqr]\nchannel = SOAP\n", "[seqr] channel: must be WS, ClientWS or extWS"},
    {"[seqr]\ntimeout_ms = 99\n", "[seqr] timeout_ms: 99 is out of range"},
    {"[seqr]\nca_file = /nonexistent/ca.pem\n", "[seqr] ca_file: not a readable file"},
    {"[reseller]\nid = R\n", "[reseller] give all of id, user_id and password"},
    {"[store]\npath =\n", "[store] path: must not be empty"},
    {"[poller]\ninterval_ms = 50\n", "[poller] interval_ms: 50 is out of range"},
    {"[poller]\ninvoice_ttl_s = 604801\n", "[poller] invoice_ttl_s"},
    {"[poller]\nauto_receipt = maybe\n", "[poller] auto_receipt: \"maybe\" is not true/false"},
    {"[poller]\nmax_in_flight = 0\n", "[poller] max_in_flight"},
    {"[poller]\nhttp_client = fast\n", "[poller] http_client: must be native or curl"},
    {"[invoice]\ncashier_id =\n", "[invoice] cashier_id: must not be empty"},
    {"[invoice]\nfooter =\n", "[invoice] footer: must not be empty"},
    {"[receipt]\nlogo = x\n", "[receipt] logo: unknown key"},
    {"[log]\nlevel = loud\n", "[log] level: must be error, warn, info or debug"},
    {"[http]\nbogus = 1\n", "[http] bogus: unknown key"},
    {"[http]\nlisten = 0.0.0.0\n", "[http] api_key: required when listen (0.0.0.0)"},
    {"[http]\nlisten = 192.0.2.7\napi_key =\n", "[http] api_key: required when listen"},
    {"[http]\nidempotency_ttl_s = 59\n", "[http] idempotency_ttl_s: 59 is out of range"},
    {"[http]\nmax_connections_per_ip = 0\n", "[http] max_connections_per_ip"},
    {"[http]\nrequest_timeout_s = 0\n", "[http] request_timeout_s"},
    {"[nope]\nx = 1\n", "[nope] unknown section"},
    {"[http]\nport = 1\nport = 2\n", "[http] port: given twice (first on line 6)"},
    {"[http]\njust words\n", "[http] expected \"key = value\""},
    {"[http\n", "malformed section header"},
    {"[seqr]\nclient_id = \"unterminated\n", "[seqr] client_id: unterminated"},
};

START_TEST(each_bad_value_is_named)
{
    for (size_t i = 0; i < sizeof bad_values / sizeof *bad_values; i++) {
        buf text = BUF_INIT;
        buf_puts(&text, REQUIRED);
        buf_puts(&text, bad_values[i].text);
        config cfg;
        buf e, w;
        int n = load(buf_cstr(&text), &cfg, &e, &w);
        ck_assert_msg(n == 1, "case %zu: %d problems:\n%s", i, n, buf_cstr(&e));
        ck_assert_msg(strstr(buf_cstr(&e), bad_values[i].expect) != NULL,
                      "case %zu: no '%s' in:\n%s", i, bad_values[i].expect, buf_cstr(&e));
        config_free(&cfg);
        buf_free(&e);
        buf_free(&w);
        buf_free(&text);
    }
}
END_TEST

START_TEST(every_problem_reported_with_lines)
{
    config cfg;
    buf e, w;
    int n = load("port = 1\n[http]\nport = 99999\nbogus = 1\n[seqr]\nurl = ftp://x\n"
                 "password = hunter2-secret\n[poller]\nauto_receipt = maybe\n",
                 &cfg, &e, &w);
    const char *out = buf_cstr(&e);
    ck_assert_int_eq(n, 6);
    ck_assert_ptr_nonnull(strstr(out, ":1: port: key outside any [section]"));
    ck_assert_ptr_nonnull(strstr(out, ":3: [http] port:"));
    ck_assert_ptr_nonnull(strstr(out, ":4: [http] bogus: unknown key"));
    ck_assert_ptr_nonnull(strstr(out, ":6: [seqr] url:"));
    ck_assert_ptr_nonnull(strstr(out, ":9: [poller] auto_receipt:"));
    ck_assert_ptr_nonnull(strstr(out, "gw.conf: [seqr] terminal_id: required but missing "
                                      "(add \"terminal_id = ...\" to the [seqr] section)"));
    ck_assert_ptr_null(strstr(out, ":0:"));            /* no "line 0" */
    ck_assert_ptr_null(strstr(out, "hunter2-secret")); /* secrets never echoed */
    config_free(&cfg);
    buf_free(&e);
    buf_free(&w);
}
END_TEST

START_TEST(missing_file_and_permissions)
{
    config cfg;
    buf e = BUF_INIT, w = BUF_INIT;
    ck_assert_int_eq(config_load("/nonexistent/seqr.conf", &cfg, &e, &w), 1);
    ck_assert_ptr_nonnull(strstr(buf_cstr(&e), "/nonexistent/seqr.conf: cannot read"));
    config_free(&cfg);
    buf_free(&e);
    char *path = write_conf(REQUIRED, 0644);
    ck_assert_int_eq(config_load(path, &cfg, &e, &w), 0);
    ck_assert_ptr_nonnull(strstr(buf_cstr(&w), "readable by others or group-writable (chmod 640"));
    config_free(&cfg);
    buf_free(&w);
    /* root:seqr-gateway 0640 is the packaged layout: no warning */
    path = write_conf(REQUIRED, 0640);
    ck_assert_int_eq(config_load(path, &cfg, &e, &w), 0);
    ck_assert_int_eq(w.len, 0);
    config_free(&cfg);
    path = write_conf(REQUIRED, 0600);
    ck_assert_int_eq(config_load(path, &cfg, &e, &w), 0);
    ck_assert_int_eq(w.len, 0);
    config_free(&cfg);
    /* plain http to a remote host: allowed (a simulator elsewhere), warned */
    path =
        write_conf("[seqr]\nurl = http://seqr.example/soap\nterminal_id = T\npassword = p\n", 0600);
    ck_assert_int_eq(config_load(path, &cfg, &e, &w), 0);
    ck_assert_ptr_nonnull(strstr(buf_cstr(&w), "plain http://"));
    config_free(&cfg);
    buf_free(&w);
    buf_free(&e);
}
END_TEST

/* The shipped example is valid except for its placeholders, which
 * --check-config refuses (the service must not start with them). */
START_TEST(example_config_refused_for_placeholders_only)
{
    char path[600];
    snprintf(path, sizeof path, "%s/etc/seqr-gateway.conf", tu_env("SEQR_SRCDIR", "."));
    config cfg;
    buf e = BUF_INIT, w = BUF_INIT;
    int n = config_load(path, &cfg, &e, &w);
    const char *out = buf_cstr(&e);
    ck_assert_msg(n == 2, "%s", out);
    ck_assert_ptr_nonnull(
        strstr(out, "[seqr] terminal_id: still the placeholder \"CHANGE-ME\"; set the real value"));
    ck_assert_ptr_nonnull(
        strstr(out, "[seqr] password: still the placeholder; set the real value"));
    config_free(&cfg);
    buf_free(&e);
    buf_free(&w);
}
END_TEST

START_TEST(placeholders_refused_in_any_key)
{
    config cfg;
    buf e, w;
    int n = load("[seqr]\nurl = https://seqr.example/soap\nterminal_id = T1\npassword = p\n"
                 "client_id = changeme Ltd\n[http]\napi_key = change_me-please\n",
                 &cfg, &e, &w);
    const char *out = buf_cstr(&e);
    ck_assert_msg(n == 2, "%s", out);
    ck_assert_ptr_nonnull(strstr(out, ":5: [seqr] client_id: still the placeholder"));
    ck_assert_ptr_nonnull(strstr(out, ":7: [http] api_key: still the placeholder; set"));
    ck_assert_ptr_null(strstr(out, "change_me-please")); /* a secret is not echoed */
    config_free(&cfg);
    buf_free(&e);
    buf_free(&w);
}
END_TEST

/* seqr-gateway(8) lists every key of the example file under its section,
 * with its default and meaning (the man page no longer points at the file). */
/* [store] url: PostgreSQL instead of path, never both, of a libpq URL's
 * form, with a key_file of its own, and never echoed (it holds a password). */
START_TEST(store_url_checked)
{
    static const struct {
        const char *text;
        int problems;
        const char *expect;
    } cases[] = {
        {"[store]\nurl = postgresql://gw:Pw-secret1@db.example:5432/seqr\n"
         "key_file = /etc/seqr-gateway/store.key\n",
         0, NULL},
        {"[store]\nurl = postgres://gw@/seqr?host=/run/postgresql\nkey_file = /k\n", 0, NULL},
        {"[store]\npath = /var/lib/x.db\nurl = postgresql://gw:Pw-secret1@db/seqr\nkey_file = /k\n",
         1, "give path (SQLite) or url (PostgreSQL), not both"},
        {"[store]\nurl = mysql://gw:Pw-secret1@db/seqr\nkey_file = /k\n", 1, "must be a URL"},
        {"[store]\nurl = postgresql://gw:Pw-secret1@db\nkey_file = /k\n", 1, "must be a URL"},
        {"[store]\nurl = postgresql://gw:Pw-secret1@db/seqr\n", 1, "[store] key_file: required"},
        {"[store]\nurl = postgresql://gw:Pw-secret1@db/seqr\nkey_file = /k\n"
         "[webhooks]\nurl = https://shop.example/hook\nsecret = "
         "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n",
         0, NULL}, /* the outbox is on PostgreSQL too */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        buf text = BUF_INIT;
        buf_puts(&text, REQUIRED);
        buf_puts(&text, cases[i].text);
        config cfg;
        buf e, w;
        int n = load(buf_cstr(&text), &cfg, &e, &w);
        ck_assert_msg(n == cases[i].problems, "case %zu: %d problems:\n%s", i, n, buf_cstr(&e));
        if (cases[i].expect != NULL)
            ck_assert_msg(strstr(buf_cstr(&e), cases[i].expect) != NULL, "case %zu: no '%s' in:\n%s",
                          i, cases[i].expect, buf_cstr(&e));
        ck_assert_ptr_null(strstr(buf_cstr(&e), "Pw-secret1"));
        config_free(&cfg);
        buf_free(&e);
        buf_free(&w);
        buf_free(&text);
    }
}
END_TEST

START_TEST(man_page_documents_every_key)
{
    char path[600];
    size_t len;
    snprintf(path, sizeof path, "%s/docs/seqr-gateway.8", tu_env("SEQR_SRCDIR", "."));
    char *man = tu_read_file(path, &len);
    ck_assert_ptr_nonnull(man);
    snprintf(path, sizeof path, "%s/etc/seqr-gateway.conf", tu_env("SEQR_SRCDIR", "."));
    char *conf = tu_read_file(path, &len);
    ck_assert_ptr_nonnull(conf);
    char section[64] = "";
    const char *sec_start = NULL, *sec_end = NULL;
    int keys = 0;
    for (char *line = strtok(conf, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        char name[64];
        if (sscanf(line, "[%63[^]]]", name) == 1) {
            snprintf(section, sizeof section, "%s", name);
            char heading[80];
            snprintf(heading, sizeof heading, ".SS [%s]\n", section);
            sec_start = strstr(man, heading);
            ck_assert_msg(sec_start != NULL, "seqr-gateway.8 has no %s", heading);
            sec_end = strstr(sec_start + 1, ".SS ");
            if (sec_end == NULL)
                sec_end = strstr(sec_start, ".SH ");
            continue;
        }
        if (line[0] == '#' || sscanf(line, "%63[a-z_] =", name) != 1)
            continue;
        char item[96];
        snprintf(item, sizeof item, ".TP\n.B %s\n", name);
        const char *at = strstr(sec_start, item);
        ck_assert_msg(at != NULL && (sec_end == NULL || at < sec_end),
                      "seqr-gateway.8 does not describe [%s] %s", section, name);
        const char *next = strstr(at + strlen(item), ".TP\n");
        const char *dflt = strstr(at, "Default: ");
        ck_assert_msg(dflt != NULL && (next == NULL || dflt < next),
                      "seqr-gateway.8 gives no default for [%s] %s", section, name);
        keys++;
    }
    ck_assert_int_ge(keys, 20);
    free(conf);
    free(man);
}
END_TEST

START_TEST(redactor)
{
    log_clear_secrets();
    log_add_secret("terminal-s3cret");
    log_add_secret("abc"); /* too short to mask: ignored */
    buf out = BUF_INIT;
    log_redact("login with terminal-s3cret failed; <password>xyz</password> "
               "password=hunter2 \"api_key\": \"k-123\" Authorization: Bearer tok.en abc",
               &out);
    const char *s = buf_cstr(&out);
    ck_assert_ptr_null(strstr(s, "terminal-s3cret"));
    ck_assert_ptr_null(strstr(s, "xyz"));
    ck_assert_ptr_null(strstr(s, "hunter2"));
    ck_assert_ptr_null(strstr(s, "k-123"));
    ck_assert_ptr_null(strstr(s, "tok.en"));
    ck_assert_ptr_nonnull(strstr(s, "abc")); /* ordinary words stay */
    ck_assert_ptr_nonnull(strstr(s, "********"));
    buf_free(&out);
    log_clear_secrets();
}
END_TEST

/* [webhooks]: a bad URL or secret fails --check-config, the secret is never
 * echoed, a URL needs a secret, and a good secret passes. */
START_TEST(webhooks_keys)
{
    static const char base[] = "[seqr]\nurl = http://127.0.0.1:1/soap\nterminal_id = t\n"
                               "password = p\n[webhooks]\n";
    static const char *const bad[] = {
        "url = ftp://shop.example/hook\nsecret = whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n",
        "url = https://shop.example/hook\nsecret = MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n",
        "url = https://shop.example/hook\nsecret = whsec_c2hvcnQ=\n",
        "url = https://shop.example/hook\nsecret = whsec_MfKQ9r8GKYqrTwjU*D8ILPZIo2LaLaSw\n",
        "url = https://shop.example/hook\n",
        "retry_for_s = 0\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char text[512];
        snprintf(text, sizeof text, "%s%s", base, bad[i]);
        config cfg;
        buf e = BUF_INIT, w = BUF_INIT;
        ck_assert_msg(load(text, &cfg, &e, &w) > 0, "accepted: %s", bad[i]);
        ck_assert_ptr_nonnull(strstr(buf_cstr(&e), "[webhooks]"));
        ck_assert_ptr_null(strstr(buf_cstr(&e), "MfKQ9r8GKYqrTwjU"));
        ck_assert_ptr_null(strstr(buf_cstr(&e), "c2hvcnQ"));
        config_free(&cfg);
        buf_free(&e);
        buf_free(&w);
    }
    char text[512];
    snprintf(text, sizeof text, "%s%s", base,
             "url = https://shop.example/hook\nsecret = whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n");
    config cfg;
    buf e = BUF_INIT, w = BUF_INIT;
    ck_assert_int_eq(load(text, &cfg, &e, &w), 0);
    ck_assert_str_eq(cfg.webhooks_url, "https://shop.example/hook");
    ck_assert_int_eq(cfg.webhooks_retry_for_s, 259200);
    config_free(&cfg);
    buf_free(&e);
    buf_free(&w);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, defaults_and_every_key);
    tcase_add_test(tc, each_bad_value_is_named);
    tcase_add_test(tc, every_problem_reported_with_lines);
    tcase_add_test(tc, missing_file_and_permissions);
    tcase_add_test(tc, example_config_refused_for_placeholders_only);
    tcase_add_test(tc, placeholders_refused_in_any_key);
    tcase_add_test(tc, redactor);
    tcase_add_test(tc, store_url_checked);
    tcase_add_test(tc, man_page_documents_every_key);
    tcase_add_test(tc, webhooks_keys);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
