/* floor.c — the least any SEQR gateway on this stack must do for one
 * POST /invoices, as a program of its own, so that bench/run can measure what
 * that least costs on the machine at hand and compare the real gateway with it.
 *
 *   floor --port P --sim-url URL --body-file F [--db PATH [--libs]]
 *
 * Every request is answered 201 after:
 *   without --db: one POST of the fixed SOAP body F to URL with libcurl
 *       (on a kept connection: idle easy handles are pooled between the
 *       connection threads, as the gateway does), the request body ignored —
 *       the bare extra hop;
 *   with --db: the same call between two SQLite transactions on a one-table
 *       WAL database (an INSERT before the call, the "intent", and an UPDATE
 *       after it, the "outcome"), then an fdatasync of the WAL before the
 *       answer — the rules of docs/design.md (write before you call, a 201 is
 *       on disk) with no JSON, XML, validation or schema of any size;
 *   with --db --libs: also the least JSON and XML work the fixed libraries
 *       allow: the request body parsed with jansson and its fields read, the
 *       sendInvoice envelope built with libxml2's tree API and serialised
 *       (sent instead of F), the answer parsed with libxml2 and its invoice
 *       reference found, and the answer rendered with jansson with the fields
 *       of the contract's invoice object; the fields read are checked for
 *       shape (currency, amounts, lengths); and the least schema the contract
 *       needs: the intent stores the invoice's document (json_dumps) and
 *       the payment page's capability (128 random bits, for the contract's
 *       paymentPageUrl; found through the invoice, no index of its own) and
 *       is indexed by status, the outcome stores the reference under a unique
 *       index and, in the same transaction, the invoice.created event the
 *       contract's feed and webhooks need (issue #18: an event is written
 *       with its change): the answer's JSON in an events table with the
 *       index a per-invoice stream needs. No validation beyond that, no
 *       logging, no status history, no idempotency, no secrets to scrub.
 * The WAL is first grown to its working size and checkpointed, as in a
 * gateway that has been running for a while. Stops on SIGTERM/SIGINT. */
#include <curl/curl.h>
#include <fcntl.h>
#include <jansson.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "benchutil.h"

/* Transactions run before serving, so the WAL has its working size. */
#define FLOOR_WARM_TRANSACTIONS 3000
/* Idle easy handles kept between requests (each with its connection). */
#define FLOOR_IDLE_MAX 64

typedef struct {
    const char *sim_url;
    char *body;
    sqlite3 *db; /* NULL: bare hop */
    pthread_mutex_t db_lock;
    sqlite3_stmt *begin, *commit, *intent, *outcome;
    sqlite3_stmt *event; /* --libs: the outcome's event row */
    int wal_fd;
    long next_id;
    bool libs; /* --libs: jansson and libxml2 work as well */
    pthread_mutex_t idle_lock;
    CURL *idle[FLOOR_IDLE_MAX]; /* easy handles with their kept connections */
    int n_idle;
    struct curl_slist *headers;
} floor_state;

/* --- --libs: the JSON and XML work --- */

/* The fields of the bench invoice (one row), as read from the request. */
typedef struct {
    json_t *doc;
    const char *currency, *title, *client_invoice_id;
    const char *quantity, *amount, *description;
} floor_invoice;

static const char *floor_str(json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : "";
}

/* A positive decimal with at most two decimals ("10", "10.5", "10.00"). */
static bool floor_decimal_ok(const char *s)
{
    size_t whole = strspn(s, "0123456789");
    if (whole == 0 || whole > 15)
        return false;
    const char *rest = s + whole;
    if (*rest == '.') {
        size_t dec = strspn(rest + 1, "0123456789");
        if (dec == 0 || dec > 2 || rest[1 + dec] != '\0')
            return false;
    } else if (*rest != '\0') {
        return false;
    }
    return strspn(s, "0.") < strlen(s); /* not zero */
}

/* The least validation the brief asks of every request: each field read is
 * checked for shape, so a bad one could be answered with a clear error. */
static bool floor_valid(const floor_invoice *inv)
{
    return strlen(inv->currency) == 3 && strspn(inv->currency, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == 3 &&
           floor_decimal_ok(inv->amount) && floor_decimal_ok(inv->quantity) &&
           strlen(inv->title) <= 255 && strlen(inv->client_invoice_id) <= 255 &&
           strlen(inv->description) <= 255;
}

static bool floor_parse_request(const bench_buf *body, floor_invoice *inv)
{
    memset(inv, 0, sizeof *inv);
    inv->doc = json_loadb(body->data ? body->data : "", body->len, 0, NULL);
    json_t *row = json_array_get(json_object_get(inv->doc, "rows"), 0);
    if (!json_is_object(inv->doc) || !json_is_object(row))
        return false;
    inv->currency = floor_str(inv->doc, "currency");
    inv->title = floor_str(inv->doc, "title");
    inv->client_invoice_id = floor_str(inv->doc, "clientInvoiceId");
    inv->quantity = floor_str(row, "quantity");
    inv->amount = floor_str(row, "totalAmount");
    inv->description = floor_str(row, "description");
    return floor_valid(inv);
}

static xmlNodePtr floor_el(xmlNodePtr parent, const char *name, const char *text)
{
    return xmlNewTextChild(parent, NULL, BAD_CAST name, BAD_CAST text);
}

static void floor_amount(xmlNodePtr parent, const char *name, const floor_invoice *inv)
{
    xmlNodePtr a = floor_el(parent, name, NULL);
    floor_el(a, "value", inv->amount);
    floor_el(a, "currency", inv->currency);
}

/* The sendInvoice envelope of bench/sendInvoice.xml, built with the tree API. */
static char *floor_envelope(const floor_invoice *inv, size_t *len)
{
    xmlDocPtr doc = xmlNewDoc(BAD_CAST "1.0");
    xmlNodePtr env = xmlNewDocNode(doc, NULL, BAD_CAST "Envelope", NULL);
    xmlDocSetRootElement(doc, env);
    xmlNsPtr soap =
        xmlNewNs(env, BAD_CAST "http://schemas.xmlsoap.org/soap/envelope/", BAD_CAST "soapenv");
    xmlNsPtr ext = xmlNewNs(env, BAD_CAST "http://external.interfaces.ers.seamless.com/",
                            BAD_CAST "ext");
    xmlSetNs(env, soap);
    xmlNewChild(env, soap, BAD_CAST "Header", NULL);
    xmlNodePtr body = xmlNewChild(env, soap, BAD_CAST "Body", NULL);
    xmlNodePtr op = xmlNewChild(body, ext, BAD_CAST "sendInvoice", NULL);
    xmlNodePtr ctx = floor_el(op, "context", NULL);
    floor_el(ctx, "channel", "WS");
    floor_el(ctx, "clientId", "Company Name");
    floor_el(ctx, "clientReference", "seqr-gateway 0.1.0");
    floor_el(ctx, "clientRequestTimeout", "0");
    xmlNodePtr who = floor_el(ctx, "initiatorPrincipalId", NULL);
    floor_el(who, "id", "seqr-sim-terminal");
    floor_el(who, "type", "TERMINALID");
    floor_el(ctx, "password", "terminal-password");
    xmlNodePtr iv = floor_el(op, "invoice", NULL);
    floor_el(iv, "paymentMode", "IMMEDIATE_DEBIT");
    floor_el(iv, "acknowledgmentMode", "NO_ACKNOWLEDGMENT");
    floor_el(iv, "issueDate", "2026-11-24T12:00:00Z");
    floor_el(iv, "title", inv->title);
    floor_el(iv, "clientInvoiceId", inv->client_invoice_id);
    xmlNodePtr row = floor_el(floor_el(iv, "invoiceRows", NULL), "invoiceRow", NULL);
    floor_el(row, "itemDescription", inv->description);
    floor_el(row, "itemQuantity", inv->quantity);
    floor_amount(row, "itemTotalAmount", inv);
    floor_amount(iv, "totalAmount", inv);
    xmlChar *mem = NULL;
    int size = 0;
    xmlDocDumpMemoryEnc(doc, &mem, &size, "UTF-8");
    xmlFreeDoc(doc);
    char *out = mem ? strdup((const char *)mem) : NULL;
    xmlFree(mem);
    *len = out ? (size_t)size : 0;
    return out;
}

/* Depth-first search for the first element called name. */
static xmlNodePtr floor_find(xmlNodePtr n, const char *name)
{
    for (; n != NULL; n = n->next) {
        if (n->type != XML_ELEMENT_NODE)
            continue;
        if (strcmp((const char *)n->name, name) == 0)
            return n;
        xmlNodePtr c = floor_find(n->children, name);
        if (c != NULL)
            return c;
    }
    return NULL;
}

/* resultCode 0 and the invoice reference from the sendInvoice answer. */
static bool floor_parse_answer(const bench_buf *answer, char ref[64])
{
    xmlDocPtr doc = xmlReadMemory(answer->data ? answer->data : "", (int)answer->len, NULL, NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
    xmlNodePtr code = floor_find(root, "resultCode");
    xmlNodePtr r = floor_find(root, "invoiceReference");
    xmlChar *c = code ? xmlNodeGetContent(code) : NULL;
    xmlChar *t = r ? xmlNodeGetContent(r) : NULL;
    bool ok = c != NULL && strcmp((const char *)c, "0") == 0 && t != NULL;
    snprintf(ref, 64, "%s", t ? (const char *)t : "");
    xmlFree(c);
    xmlFree(t);
    xmlFreeDoc(doc);
    return ok;
}

/* 128 random bits as 32 hex digits: the payment page's capability. */
static bool floor_secret(char out[33])
{
    unsigned char b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b)
        return false;
    for (size_t i = 0; i < sizeof b; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
    return true;
}

/* The contract's invoice object for the new invoice. Caller frees. */
static char *floor_render(const floor_invoice *inv, const char *ref, long id, const char *secret)
{
    char qr[96], url[96], now[32], page[128];
    snprintf(qr, sizeof qr, "HTTP://SEQR.SE/R%s", ref);
    snprintf(url, sizeof url, "SEQR://SEQR.SE/R%s", ref);
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_t *o = json_object();
    json_object_set_new(o, "invoiceReference", json_string(ref));
    json_object_set_new(o, "status", json_string("ISSUED"));
    json_object_set_new(o, "version", json_integer(0));
    json_object_set_new(o, "qrCode", json_string(qr));
    json_object_set_new(o, "seqrUrl", json_string(url));
    json_object_set_new(o, "clientInvoiceId", json_string(inv->client_invoice_id));
    json_object_set_new(o, "title", json_string(inv->title));
    static const char *const absent[] = {"cashierId",       "footer",          "backUrl",
                                         "notificationUrl", "clientReference", "terminalId",
                                         "ersReference",    "receipt",         "paidAt"};
    for (size_t i = 0; i < sizeof absent / sizeof *absent; i++)
        json_object_set_new(o, absent[i], json_null());
    json_object_set_new(o, "paymentMode", json_string("IMMEDIATE_DEBIT"));
    json_object_set_new(o, "currency", json_string(inv->currency));
    json_object_set_new(o, "totalAmount", json_string(inv->amount));
    json_object_set(o, "rows", json_object_get(inv->doc, "rows"));
    json_object_set_new(o, "receiptSubmitted", json_false());
    json_object_set_new(o, "refundedAmount", json_string("0.00"));
    json_object_set_new(o, "refunds", json_array());
    json_object_set_new(o, "createdAt", json_string(now));
    json_object_set_new(o, "updatedAt", json_string(now));
    json_object_set_new(o, "expiresAt", json_string(now));
    json_object_set_new(o, "polling", json_true());
    snprintf(page, sizeof page, "http://127.0.0.1:8080/pay/%016lx%s", (unsigned long)id, secret);
    json_object_set_new(o, "paymentPageUrl", json_string(page));
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

/* Runs stmt with ?1 = id and, if it has them, ?2 = text and ?3 = text3. */
static bool floor_step(sqlite3_stmt *stmt, long id, const char *text, const char *text3)
{
    sqlite3_bind_int64(stmt, 1, id);
    if (sqlite3_bind_parameter_count(stmt) >= 2)
        sqlite3_bind_text(stmt, 2, text, -1, SQLITE_TRANSIENT);
    if (sqlite3_bind_parameter_count(stmt) >= 3)
        sqlite3_bind_text(stmt, 3, text3, -1, SQLITE_TRANSIENT);
    bool ok = sqlite3_step(stmt) == SQLITE_DONE;
    sqlite3_reset(stmt);
    return ok;
}

/* One transaction running stmt (see floor_step) and then, when not NULL,
 * then (?1 = id, ?2 = then_text). */
static bool floor_tx(floor_state *fs, sqlite3_stmt *stmt, long id, const char *text,
                     const char *text3, sqlite3_stmt *then, const char *then_text)
{
    pthread_mutex_lock(&fs->db_lock);
    bool ok = sqlite3_step(fs->begin) == SQLITE_DONE;
    sqlite3_reset(fs->begin);
    ok = ok && floor_step(stmt, id, text, text3);
    ok = ok && (then == NULL || floor_step(then, id, then_text, NULL));
    ok = ok && sqlite3_step(fs->commit) == SQLITE_DONE;
    sqlite3_reset(fs->commit);
    pthread_mutex_unlock(&fs->db_lock);
    return ok;
}

/* The call to the simulator on a kept connection: an idle easy handle from
 * the pool (a new one when none is idle), put back after the call. Every
 * libmicrohttpd connection has a thread of its own that ends with it, so a
 * handle per thread would open a connection per request. */
static bool floor_call(floor_state *fs, const char *body, size_t len, bench_buf *answer)
{
    pthread_mutex_lock(&fs->idle_lock);
    CURL *easy = fs->n_idle > 0 ? fs->idle[--fs->n_idle] : NULL;
    pthread_mutex_unlock(&fs->idle_lock);
    if (easy == NULL) {
        easy = curl_easy_init();
        if (easy == NULL)
            return false;
        curl_easy_setopt(easy, CURLOPT_URL, fs->sim_url);
        curl_easy_setopt(easy, CURLOPT_HTTPHEADER, fs->headers);
        curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    }
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, (long)len);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, answer ? bench_collect : bench_discard);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, answer);
    long status = 0;
    CURLcode rc = curl_easy_perform(easy);
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    pthread_mutex_lock(&fs->idle_lock);
    if (fs->n_idle < FLOOR_IDLE_MAX) {
        fs->idle[fs->n_idle++] = easy;
        easy = NULL;
    }
    pthread_mutex_unlock(&fs->idle_lock);
    curl_easy_cleanup(easy); /* NULL when kept */
    return rc == CURLE_OK && status == 200;
}

static enum MHD_Result floor_handle(void *cls, struct MHD_Connection *conn, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_data_size,
                                    void **con_cls)
{
    (void)url;
    (void)method;
    (void)version;
    (void)upload_data;
    floor_state *fs = cls;
    bench_buf *in = *con_cls;
    if (in == NULL) {
        in = calloc(1, sizeof *in); /* the request body; freed when answered */
        *con_cls = in;
        return in != NULL ? MHD_YES : MHD_NO;
    }
    if (*upload_data_size > 0) {
        if (fs->libs && bench_collect((char *)upload_data, 1, *upload_data_size, in) == 0)
            return MHD_NO;
        *upload_data_size = 0;
        return MHD_YES;
    }
    long id = __atomic_add_fetch(&fs->next_id, 1, __ATOMIC_RELAXED);
    floor_invoice inv;
    memset(&inv, 0, sizeof inv);
    char *envelope = NULL, *answer_json = NULL, *doc = NULL;
    char secret[33] = "";
    size_t envelope_len = strlen(fs->body);
    bench_buf answer = {NULL, 0};
    bool ok = !fs->libs || floor_parse_request(in, &inv);
    if (ok && fs->libs) /* stored with the intent */
        ok = (doc = json_dumps(inv.doc, JSON_COMPACT)) != NULL && floor_secret(secret);
    ok = ok && (fs->db == NULL || floor_tx(fs, fs->intent, id, doc, secret, NULL, NULL));
    if (ok && fs->libs)
        ok = (envelope = floor_envelope(&inv, &envelope_len)) != NULL;
    ok = ok && floor_call(fs, envelope ? envelope : fs->body, envelope_len,
                          fs->libs ? &answer : NULL);
    char ref[64] = "";
    if (ok && fs->libs)
        ok = floor_parse_answer(&answer, ref);
    if (ok && fs->libs) /* the answer, and the event's data */
        ok = (answer_json = floor_render(&inv, ref, id, secret)) != NULL;
    if (ok && fs->db != NULL)
        ok = floor_tx(fs, fs->outcome, id, ref, NULL, fs->event, answer_json) &&
             fdatasync(fs->wal_fd) == 0;
    static const char created[] = "{\"ok\":true}";
    static const char failed[] = "{\"ok\":false}";
    const char *text = !ok ? failed : answer_json ? answer_json : created;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    json_decref(inv.doc);
    free(doc);
    free(envelope);
    free(answer.data);
    free(answer_json);
    free(in->data);
    free(in);
    *con_cls = NULL;
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(conn, ok ? 201 : 502, r);
    MHD_destroy_response(r);
    return ret;
}

/* Opens a fresh database at path with one table and warms its WAL. */
static bool floor_open_db(floor_state *fs, const char *path)
{
    char wal[4096];
    snprintf(wal, sizeof wal, "%s-wal", path);
    unlink(path);
    unlink(wal);
    /* --libs: the least schema the contract needs: the invoice's document
     * (GET /invoices/{ref} returns it), found by reference, listed by status. */
    const char *schema =
        fs->libs ? "CREATE TABLE invoices(id INTEGER PRIMARY KEY, reference TEXT, status TEXT,"
                   " doc TEXT, pay_secret TEXT);"
                   "CREATE UNIQUE INDEX invoices_reference ON invoices(reference)"
                   " WHERE reference IS NOT NULL;"
                   "CREATE INDEX invoices_status ON invoices(status, id);"
                   "CREATE TABLE events(id INTEGER PRIMARY KEY, type TEXT, invoice_id INTEGER,"
                   " data TEXT);"
                   "CREATE INDEX events_invoice ON events(invoice_id, id);"
                 : "CREATE TABLE invoices(id INTEGER PRIMARY KEY, reference TEXT);";
    const char *intent = fs->libs ? "INSERT INTO invoices(id, status, doc, pay_secret)"
                                    " VALUES(?1, 'ISSUED', ?2, ?3)"
                                  : "INSERT INTO invoices(id) VALUES(?1)";
    const char *outcome = fs->libs ? "UPDATE invoices SET reference = ?2 WHERE id = ?1"
                                   : "UPDATE invoices SET reference = '1764000000123' WHERE id = ?1";
    if (sqlite3_open(path, &fs->db) != SQLITE_OK ||
        sqlite3_exec(fs->db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;", NULL, NULL,
                     NULL) != SQLITE_OK ||
        sqlite3_exec(fs->db, schema, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(fs->db, "BEGIN", -1, &fs->begin, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(fs->db, "COMMIT", -1, &fs->commit, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(fs->db, intent, -1, &fs->intent, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(fs->db, outcome, -1, &fs->outcome, NULL) != SQLITE_OK ||
        (fs->libs && sqlite3_prepare_v2(fs->db,
                                        "INSERT INTO events(type, invoice_id, data)"
                                        " VALUES('invoice.created', ?1, ?2)",
                                        -1, &fs->event, NULL) != SQLITE_OK)) {
        fprintf(stderr, "floor: %s: %s\n", path, fs->db ? sqlite3_errmsg(fs->db) : "cannot open");
        return false;
    }
    for (long i = 1; i <= FLOOR_WARM_TRANSACTIONS; i++) {
        char ref[32];
        snprintf(ref, sizeof ref, "W%ld", i);
        if (!floor_tx(fs, fs->intent, -i, "{\"currency\":\"SEK\"}", ref, NULL, NULL) ||
            !floor_tx(fs, fs->outcome, -i, ref, NULL, fs->event, "{\"status\":\"ISSUED\"}"))
            return false;
    }
    fs->wal_fd = open(wal, O_RDWR | O_CLOEXEC);
    return fs->wal_fd >= 0 && fdatasync(fs->wal_fd) == 0;
}

int main(int argc, char **argv)
{
    floor_state fs;
    memset(&fs, 0, sizeof fs);
    fs.wal_fd = -1;
    pthread_mutex_init(&fs.db_lock, NULL);
    const char *body_file = NULL, *db_path = NULL;
    int port = 0;
    bool bad = false;
    for (int i = 1; i < argc; i++) {
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--libs") == 0)
            fs.libs = true;
        else if (value == NULL)
            bad = true;
        else if (strcmp(argv[i], "--port") == 0)
            port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--sim-url") == 0)
            fs.sim_url = argv[++i];
        else if (strcmp(argv[i], "--body-file") == 0)
            body_file = argv[++i];
        else if (strcmp(argv[i], "--db") == 0)
            db_path = argv[++i];
        else
            bad = true;
    }
    if (bad || port <= 0 || port > 65535 || fs.sim_url == NULL || body_file == NULL ||
        (fs.libs && db_path == NULL)) {
        fprintf(stderr, "usage: floor --port P --sim-url URL --body-file F [--db PATH [--libs]]\n");
        return 2;
    }
    size_t len = 0;
    char *tmpl = bench_read_file(body_file);
    fs.body = tmpl ? bench_expand(tmpl, 1, &len) : NULL;
    free(tmpl);
    if (fs.body == NULL) {
        fprintf(stderr, "floor: cannot read %s\n", body_file);
        return 2;
    }
    /* As the gateway (store/db.c): no memory statistics, so SQLite's
     * allocations take no global mutex. */
    if (sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) != SQLITE_OK ||
        (db_path != NULL && !floor_open_db(&fs, db_path)))
        return 1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pthread_mutex_init(&fs.idle_lock, NULL);
    fs.headers = curl_slist_append(NULL, "Content-Type: text/xml; charset=utf-8");
    if (fs.headers != NULL)
        fs.headers = curl_slist_append(fs.headers, "SOAPAction: \"\"");
    if (fs.headers != NULL)
        fs.headers = curl_slist_append(fs.headers, "Expect:");
    if (fs.headers == NULL) {
        fprintf(stderr, "floor: out of memory\n");
        return 1;
    }
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    struct MHD_Daemon *d =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION,
                         (uint16_t)port, NULL, NULL, floor_handle, &fs, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "floor: cannot listen on port %d\n", port);
        return 1;
    }
    int sig = 0;
    sigwait(&stop, &sig);
    MHD_stop_daemon(d);
    if (fs.db != NULL) {
        sqlite3_finalize(fs.begin);
        sqlite3_finalize(fs.commit);
        sqlite3_finalize(fs.intent);
        sqlite3_finalize(fs.outcome);
        sqlite3_finalize(fs.event);
        sqlite3_close(fs.db);
        close(fs.wal_fd);
    }
    free(fs.body);
    for (int i = 0; i < fs.n_idle; i++)
        curl_easy_cleanup(fs.idle[i]);
    curl_slist_free_all(fs.headers);
    curl_global_cleanup();
    return 0;
}
