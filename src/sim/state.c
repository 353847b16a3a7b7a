/* sim/state.c — the simulator's in-memory SEQR: invoices and their payments,
 * refunds, terminals, transaction periods, the request log and the fault
 * settings. One mutex guards everything; see sim/sim.h. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "money.h"
#include "sim/sim.h"

#define SIM_MAX_TERMINALS 4096
#define SIM_MAX_PERIODS 4096
#define SIM_MAX_LOG 200000

typedef struct {
    int64_t seq;
    int64_t time_ms;
    char operation[32];
    char principal[64];
    char client_reference[48];
    bool has_client_reference;
    int result_code;
    int http_status;
    /* owned, n_deviations of them; NULL when none (most calls): a status
     * poll's entry is then a tenth of the size, and 200,000 of them fit in
     * a few tens of MB instead of 300 */
    char (*deviations)[160];
    int n_deviations;
    json_t *details; /* owned or NULL: merged into the entry's JSON */
} sim_log_entry;

/* A string -> pointer map with open addressing (no deletions needed). */
typedef struct {
    const char **keys;
    void **values;
    size_t cap, len;
} sim_map;

static pthread_mutex_t sim_mutex = PTHREAD_MUTEX_INITIALIZER;
static int sim_reversal_s = 20;

static sim_invoice **sim_invoices;
static size_t sim_ninvoices, sim_invoices_cap;
static sim_map sim_by_ref, sim_by_ers;

static sim_terminal sim_terminals[SIM_MAX_TERMINALS];
static int sim_nterminals;
static sim_reseller sim_the_reseller;

static sim_period sim_periods[SIM_MAX_PERIODS];
static int sim_nperiods;

static sim_log_entry *sim_log;
static size_t sim_nlog;
static int64_t sim_log_seq;

static sim_faults sim_the_faults;

void sim_lock(void)
{
    pthread_mutex_lock(&sim_mutex);
}

void sim_unlock(void)
{
    pthread_mutex_unlock(&sim_mutex);
}

int64_t sim_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t sim_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t sim_hash(const char *s)
{
    size_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static void sim_map_put(sim_map *m, const char *key, void *value);

static void sim_map_grow(sim_map *m)
{
    sim_map old = *m;
    m->cap = old.cap ? old.cap * 2 : 1024;
    m->len = 0;
    m->keys = calloc(m->cap, sizeof *m->keys);
    m->values = calloc(m->cap, sizeof *m->values);
    if (m->keys == NULL || m->values == NULL)
        abort();
    for (size_t i = 0; i < old.cap; i++)
        if (old.keys[i] != NULL)
            sim_map_put(m, old.keys[i], old.values[i]);
    free(old.keys);
    free(old.values);
}

/* key must stay valid while in the map (it points into the invoice). */
static void sim_map_put(sim_map *m, const char *key, void *value)
{
    if ((m->len + 1) * 2 > m->cap)
        sim_map_grow(m);
    size_t i = sim_hash(key) & (m->cap - 1);
    while (m->keys[i] != NULL && strcmp(m->keys[i], key) != 0)
        i = (i + 1) & (m->cap - 1);
    if (m->keys[i] == NULL)
        m->len++;
    m->keys[i] = key;
    m->values[i] = value;
}

static void *sim_map_get(const sim_map *m, const char *key)
{
    if (m->cap == 0)
        return NULL;
    size_t i = sim_hash(key) & (m->cap - 1);
    while (m->keys[i] != NULL) {
        if (strcmp(m->keys[i], key) == 0)
            return m->values[i];
        i = (i + 1) & (m->cap - 1);
    }
    return NULL;
}

static void sim_map_clear(sim_map *m)
{
    free(m->keys);
    free(m->values);
    memset(m, 0, sizeof *m);
}

void sim_state_init(int reversal_seconds)
{
    sim_reversal_s = reversal_seconds;
    sim_log = calloc(SIM_MAX_LOG, sizeof *sim_log);
    if (sim_log == NULL)
        abort();
}

int sim_reversal_seconds(void)
{
    return sim_reversal_s;
}

sim_terminal *sim_terminal_add(const char *id, const char *password)
{
    sim_terminal *t = sim_terminal_find(id);
    if (t == NULL) {
        if (sim_nterminals == SIM_MAX_TERMINALS)
            return NULL;
        t = &sim_terminals[sim_nterminals++];
        memset(t, 0, sizeof *t);
        snprintf(t->id, sizeof t->id, "%s", id);
    }
    snprintf(t->password, sizeof t->password, "%s", password);
    t->registered = true;
    return t;
}

sim_terminal *sim_terminal_find(const char *id)
{
    for (int i = 0; i < sim_nterminals; i++)
        if (strcmp(sim_terminals[i].id, id) == 0)
            return &sim_terminals[i];
    return NULL;
}

sim_terminal *sim_terminal_by_seqr_id(const char *seqr_id)
{
    for (int i = 0; i < sim_nterminals; i++)
        if (sim_terminals[i].registered && strcmp(sim_terminals[i].seqr_id, seqr_id) == 0)
            return &sim_terminals[i];
    return NULL;
}

void sim_reseller_set(const char *id, const char *user_id, const char *password)
{
    snprintf(sim_the_reseller.id, sizeof sim_the_reseller.id, "%s", id);
    snprintf(sim_the_reseller.user_id, sizeof sim_the_reseller.user_id, "%s", user_id);
    snprintf(sim_the_reseller.password, sizeof sim_the_reseller.password, "%s", password);
}

const sim_reseller *sim_reseller_get(void)
{
    return &sim_the_reseller;
}

void sim_new_digits(char *out, int n)
{
    unsigned char raw[64];
    if (n > 64)
        n = 64;
    if (getrandom(raw, (size_t)n, 0) != n)
        abort();
    for (int i = 0; i < n; i++)
        out[i] = (char)('0' + raw[i] % 10);
    if (out[0] == '0')
        out[0] = '1';
    out[n] = '\0';
}

void sim_new_ers(char out[32])
{
    /* 25 digits: yyyymmddHHMMSS + 11 random digits, unique. */
    do {
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        char rnd[16];
        sim_new_digits(rnd, 11);
        strftime(out, 32, "%Y%m%d%H%M%S", &tm);
        strcat(out, rnd);
    } while (sim_invoice_by_ers(out) != NULL);
}

sim_invoice *sim_invoice_new(void)
{
    if (sim_ninvoices == sim_invoices_cap) {
        size_t cap = sim_invoices_cap ? sim_invoices_cap * 2 : 1024;
        sim_invoice **grown = realloc(sim_invoices, cap * sizeof *grown);
        if (grown == NULL)
            abort();
        sim_invoices = grown;
        sim_invoices_cap = cap;
    }
    sim_invoice *inv = calloc(1, sizeof *inv);
    if (inv == NULL)
        abort();
    do {
        sim_new_digits(inv->reference, 13);
    } while (sim_invoice_find(inv->reference) != NULL);
    snprintf(inv->status, sizeof inv->status, "ISSUED");
    inv->created_ms = sim_now_ms();
    sim_invoices[sim_ninvoices++] = inv;
    sim_map_put(&sim_by_ref, inv->reference, inv);
    return inv;
}

sim_invoice *sim_invoice_find(const char *ref)
{
    return sim_map_get(&sim_by_ref, ref);
}

sim_invoice *sim_invoice_by_ers(const char *ers)
{
    return sim_map_get(&sim_by_ers, ers);
}

size_t sim_invoice_count(void)
{
    return sim_ninvoices;
}

sim_invoice *sim_invoice_at(size_t i)
{
    return i < sim_ninvoices ? sim_invoices[i] : NULL;
}

void sim_invoice_set_status(sim_invoice *inv, const char *status)
{
    snprintf(inv->status, sizeof inv->status, "%s", status);
    inv->version++;
}

void sim_invoice_pay(sim_invoice *inv)
{
    sim_new_ers(inv->ers_reference);
    sim_map_put(&sim_by_ers, inv->ers_reference, inv);
    inv->paid_ms = sim_now_ms();
    inv->paid_mono = sim_mono_ms();
    inv->fetches_after_paid = 0;
    sim_invoice_set_status(inv, "PAID");
}

void sim_apply_reversal(sim_invoice *inv, int64_t now_mono)
{
    int64_t window = (int64_t)sim_reversal_s * 1000;
    if (strcmp(inv->status, "PAID") == 0 && !inv->reversed && inv->fetches_after_paid == 0 &&
        now_mono - inv->paid_mono > window) {
        /* SEQR assumes the shop never learned of the payment: money back to
         * the buyer, the invoice is void. */
        inv->reversed = true;
        sim_invoice_set_status(inv, "CANCELED");
        fprintf(stderr,
                "seqr-sim: payment of invoice %s reversed: status not fetched within %d s\n",
                inv->reference, sim_reversal_s);
    }
}

void sim_apply_reversals(void)
{
    int64_t now = sim_mono_ms();
    for (size_t i = 0; i < sim_ninvoices; i++)
        sim_apply_reversal(sim_invoices[i], now);
}

sim_period *sim_period_new(const char *terminal_id)
{
    if (sim_nperiods == SIM_MAX_PERIODS)
        return NULL;
    sim_period *p = &sim_periods[sim_nperiods++];
    memset(p, 0, sizeof *p);
    char rnd[16];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(p->id, sizeof p->id, "%Y%m%d%H%M%S", &tm);
    sim_new_digits(rnd, 11);
    strcat(p->id, rnd);
    snprintf(p->terminal_id, sizeof p->terminal_id, "%s", terminal_id ? terminal_id : "");
    p->marked_ms = sim_now_ms();
    /* The period starts where the previous one of the same scope ended. */
    for (int i = sim_nperiods - 2; i >= 0; i--) {
        if (strcmp(sim_periods[i].terminal_id, p->terminal_id) == 0) {
            p->from_ms = sim_periods[i].marked_ms;
            break;
        }
    }
    return p;
}

sim_period *sim_period_find(const char *id)
{
    for (int i = 0; i < sim_nperiods; i++)
        if (strcmp(sim_periods[i].id, id) == 0)
            return &sim_periods[i];
    return NULL;
}

/* Copies src into dst (size bytes), cut to fit like snprintf's "%s", without
 * its format parsing: the request log takes four strings per call. */
static void sim_copy_cut(char *dst, size_t size, const char *src)
{
    size_t n = src != NULL ? strnlen(src, size - 1) : 0;
    memcpy(dst, src != NULL ? src : "", n);
    dst[n] = '\0';
}

void sim_log_request(const char *operation, const char *principal, const char *client_reference,
                     int result_code, int http_status, char deviations[][160], int n_deviations,
                     json_t *details)
{
    sim_log_seq++;
    if (sim_nlog == SIM_MAX_LOG) {
        json_decref(details);
        return; /* full: later calls are counted by seq only */
    }
    sim_log_entry *e = &sim_log[sim_nlog++];
    memset(e, 0, sizeof *e);
    e->seq = sim_log_seq;
    e->time_ms = sim_now_ms();
    sim_copy_cut(e->operation, sizeof e->operation, operation);
    sim_copy_cut(e->principal, sizeof e->principal, principal);
    e->has_client_reference = client_reference != NULL;
    sim_copy_cut(e->client_reference, sizeof e->client_reference, client_reference);
    e->result_code = result_code;
    e->http_status = http_status;
    int n = n_deviations < SIM_MAX_DEVIATIONS ? n_deviations : SIM_MAX_DEVIATIONS;
    if (n > 0) {
        e->deviations = calloc((size_t)n, sizeof *e->deviations);
        if (e->deviations == NULL)
            abort();
        for (int i = 0; i < n; i++)
            snprintf(e->deviations[i], sizeof e->deviations[i], "%s", deviations[i]);
    }
    e->n_deviations = n;
    e->details = details;
}

static json_t *sim_time_json(int64_t ms)
{
    if (ms <= 0)
        return json_null();
    char b[40];
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(b + n, sizeof b - n, ".%03dZ", (int)(ms % 1000));
    return json_string(b);
}

json_t *sim_log_json(const char *operation)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < sim_nlog; i++) {
        const sim_log_entry *e = &sim_log[i];
        if (operation != NULL && strcmp(operation, e->operation) != 0)
            continue;
        json_t *o = json_object();
        json_object_set_new(o, "seq", json_integer(e->seq));
        json_object_set_new(o, "time", sim_time_json(e->time_ms));
        json_object_set_new(o, "operation", json_string(e->operation));
        json_object_set_new(o, "principal", json_string(e->principal));
        json_object_set_new(o, "clientReference",
                            e->has_client_reference ? json_string(e->client_reference)
                                                    : json_null());
        json_object_set_new(o, "resultCode", json_integer(e->result_code));
        json_object_set_new(o, "httpStatus", json_integer(e->http_status));
        json_t *d = json_array();
        for (int k = 0; k < e->n_deviations; k++)
            json_array_append_new(d, json_string(e->deviations[k]));
        json_object_set_new(o, "deviations", d);
        if (e->details != NULL)
            json_object_update(o, e->details);
        json_array_append_new(arr, o);
    }
    json_t *out = json_object();
    json_object_set_new(out, "requests", arr);
    json_object_set_new(out, "total", json_integer(sim_log_seq));
    return out;
}

void sim_log_clear(void)
{
    for (size_t i = 0; i < sim_nlog; i++) {
        json_decref(sim_log[i].details);
        sim_log[i].details = NULL;
        free(sim_log[i].deviations);
        sim_log[i].deviations = NULL;
    }
    sim_nlog = 0;
}

sim_faults *sim_faults_get(void)
{
    return &sim_the_faults;
}

void sim_reset(void)
{
    for (size_t i = 0; i < sim_ninvoices; i++)
        free(sim_invoices[i]);
    sim_ninvoices = 0;
    sim_map_clear(&sim_by_ref);
    sim_map_clear(&sim_by_ers);
    sim_nperiods = 0;
    sim_log_clear();
    memset(&sim_the_faults, 0, sizeof sim_the_faults);
    /* Terminals registered at run time go; the command line's stay. */
    for (int i = 0; i < sim_nterminals; i++)
        sim_terminals[i].seqr_id[0] = '\0';
}

json_t *sim_invoice_json(const sim_invoice *inv)
{
    char m[MONEY_BUFLEN];
    json_t *o = json_object();
    json_object_set_new(o, "invoiceReference", json_string(inv->reference));
    json_object_set_new(o, "status", json_string(inv->status));
    json_object_set_new(o, "version", json_integer(inv->version));
    json_object_set_new(o, "terminalId", json_string(inv->terminal_id));
    json_object_set_new(o, "currency", json_string(inv->currency));
    json_object_set_new(o, "totalAmount", json_string(money_format(inv->total, m)));
    json_object_set_new(o, "title", json_string(inv->title));
    json_object_set_new(o, "clientInvoiceId", json_string(inv->client_invoice_id));
    json_object_set_new(o, "paymentMode", json_string(inv->payment_mode));
    json_object_set_new(o, "ersReference",
                        inv->ers_reference[0] ? json_string(inv->ers_reference) : json_null());
    json_object_set_new(o, "createdAt", sim_time_json(inv->created_ms));
    json_object_set_new(o, "paidAt", sim_time_json(inv->paid_ms));
    json_object_set_new(o, "reversed", json_boolean(inv->reversed));
    json_object_set_new(o, "receiptSubmitted", json_boolean(inv->receipt_submitted));
    json_object_set_new(o, "statusFetches", json_integer(inv->status_fetches));
    json_object_set_new(o, "statusFetchesAfterPaid", json_integer(inv->fetches_after_paid));
    json_object_set_new(o, "lastInvoiceVersionSeen", json_integer(inv->last_version_seen));
    json_t *refunds = json_array();
    for (int i = 0; i < inv->n_refunds; i++) {
        json_t *r = json_object();
        json_object_set_new(r, "ersReference", json_string(inv->refunds[i].ers_reference));
        json_object_set_new(r, "amount", json_string(money_format(inv->refunds[i].amount, m)));
        json_array_append_new(refunds, r);
    }
    json_object_set_new(o, "refunds", refunds);
    json_object_set_new(o, "refundedAmount", json_string(money_format(inv->refunded, m)));
    return o;
}
