/* sim/soap.c — POST /soap: one SEQR operation per request, checked the way
 * SEQR checks it (principal, password, principal type per operation, invoice
 * rows, plain decimal amounts), answered in SEQR's shape, and logged with the
 * deviations SEQR's certification would flag. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "money.h"
#include "seqr/xml.h"
#include "sim/answers.h"
#include "sim/sim.h"

typedef enum { SIM_PRINCIPAL_TERMINAL, SIM_PRINCIPAL_RESELLER } sim_principal_kind;

/* One request being handled. */
typedef struct {
    xmlNodePtr op;    /* the operation element */
    const char *name; /* its local name */
    char principal[64];
    char principal_type[32];
    char user_id[64];
    char password[128];
    char client_reference[64];
    bool has_client_reference;
    sim_terminal *terminal; /* authenticated terminal, or NULL */
    char deviations[SIM_MAX_DEVIATIONS][160];
    int n_deviations;
    json_t *details; /* merged into the call's log entry (see sim_log_request) */
    /* the answer: built on first use (sim_ret), or never when it is found
     * serialised (sim/answers.h) */
    xmlDocPtr doc;
    xmlNodePtr ret; /* <return> */
    xmlNodePtr code_node, desc_node;
    /* A getPaymentStatus answer before payment holds only these (copied
     * under the lock); the tree is built from them after it, if at all. */
    bool has_status;
    char status[32];
    int64_t version;
} sim_call;

static void sim_deviation(sim_call *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sim_deviation(sim_call *c, const char *fmt, ...)
{
    if (c->n_deviations == SIM_MAX_DEVIATIONS)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->deviations[c->n_deviations++], 160, fmt, ap);
    va_end(ap);
}

static const char *sim_code_name(int code)
{
    switch (code) {
    case 0:
        return "SUCCESS";
    case 2:
        return "REPORT_NOT_READY";
    case 20:
        return "AUTHENTICATION_FAILED";
    case 21:
        return "ACCESS_DENIED";
    case 23:
        return "INVALID_ERS_REFERENCE";
    case 29:
        return "INVALID_INITIATOR_PRINCIPAL_ID";
    case 37:
        return "INITIATOR_PRINCIPAL_NOT_FOUND";
    case 49:
        return "INVALID_INVOICE_DATA";
    case 50:
        return "CANNOT_CANCEL_PAID_INVOICE";
    case 51:
        return "CANNOT_CANCEL_INVOICE_IN_PROGRESS";
    case 53:
        return "INVALID_SEQR_ID";
    case 54:
        return "INVALID_INVOICE_REFERENCE";
    case 64:
        return "INVALID_NOTIFICATION_URL";
    case 90:
        return "SYSTEM_ERROR";
    case 91:
        return "UNSUPPORTED_OPERATION";
    case 95:
        return "INVOICE_ALREADY_CANCELED";
    case 96:
        return "INVOICE_STATE_NOT_RESERVED";
    case 98:
        return "SUM_OF_REFUNDS_CAN_NOT_BE_MORE_THAN_ORIGINAL_TRANSACTION";
    }
    return "SYSTEM_ERROR";
}

/* seqr_xml_child_copy (false, dst "", when the child is absent or its text
 * does not fit), without its two allocations and frees when the child holds
 * only text nodes, as every value a client sends does: their contents, in
 * order, are the text xmlNodeGetContent would give. Any other child goes
 * through seqr_xml_child_copy. */
static bool sim_copy(xmlNodePtr parent, const char *name, char *dst, size_t len)
{
    if (len == 0)
        return false;
    dst[0] = '\0';
    xmlNodePtr n = seqr_xml_child(parent, name);
    if (n == NULL)
        return false;
    size_t used = 0;
    for (xmlNodePtr t = n->children; t != NULL; t = t->next) {
        if (t->type != XML_TEXT_NODE)
            return seqr_xml_child_copy(parent, name, dst, len);
        size_t k = t->content != NULL ? strlen((const char *)t->content) : 0;
        if (k >= len - used) {
            /* More text after it (or other nodes) cannot make it fit. */
            dst[0] = '\0';
            return false;
        }
        memcpy(dst + used, t->content, k);
        used += k;
    }
    dst[used] = '\0';
    return true;
}

/* Text of a child (borrowed into buf dst); "" when absent. */
static void sim_text(xmlNodePtr parent, const char *name, char *dst, size_t len)
{
    if (!sim_copy(parent, name, dst, len))
        dst[0] = '\0';
}

/* Reads an Amount element: plain decimal value (#.##) and currency. */
static bool sim_amount(xmlNodePtr node, int64_t *value, char currency[4])
{
    char v[64], cur[16];
    if (node == NULL || !sim_copy(node, "value", v, sizeof v) ||
        !sim_copy(node, "currency", cur, sizeof cur))
        return false;
    if (money_parse(v, value) != MONEY_OK || strlen(cur) != 3 || !money_currency_valid(cur))
        return false;
    memcpy(currency, cur, 4);
    return true;
}

static bool sim_is_reseller_op(const char *op)
{
    return strcmp(op, "registerTerminal") == 0 || strcmp(op, "markTransactionPeriod") == 0 ||
           strcmp(op, "executeReport") == 0;
}

/* Reads and checks the ClientContext. Returns 0 or a result code. */
static int sim_context(sim_call *c)
{
    xmlNodePtr ctx = seqr_xml_child(c->op, "context");
    if (ctx == NULL) {
        sim_deviation(c, "no context element");
        return 20;
    }
    char channel[32], client_id[128], timeout[32];
    sim_text(ctx, "channel", channel, sizeof channel);
    sim_text(ctx, "clientId", client_id, sizeof client_id);
    c->has_client_reference = seqr_xml_child(ctx, "clientReference") != NULL;
    sim_text(ctx, "clientReference", c->client_reference, sizeof c->client_reference);
    bool has_timeout = sim_copy(ctx, "clientRequestTimeout", timeout, sizeof timeout);
    sim_text(ctx, "password", c->password, sizeof c->password);
    xmlNodePtr who = seqr_xml_child(ctx, "initiatorPrincipalId");
    sim_text(who, "id", c->principal, sizeof c->principal);
    sim_text(who, "type", c->principal_type, sizeof c->principal_type);
    sim_text(who, "userId", c->user_id, sizeof c->user_id);

    if (strcmp(channel, "WS") != 0 && strcmp(channel, "ClientWS") != 0 &&
        strcmp(channel, "extWS") != 0)
        sim_deviation(c, "channel should be WS (got \"%s\")", channel);
    if (client_id[0] == '\0')
        sim_deviation(c, "clientId is not set (certification expects the company name)");
    if (!c->has_client_reference || c->client_reference[0] == '\0')
        sim_deviation(c, "clientReference is not set (certification expects system name and "
                         "version)");
    else if (strlen(c->client_reference) > 32)
        sim_deviation(c, "clientReference is longer than 32 characters");
    if (!has_timeout || strcmp(timeout, "0") != 0)
        sim_deviation(c, "clientRequestTimeout must be 0");

    bool wants_reseller = sim_is_reseller_op(c->name);
    if (strcmp(c->principal_type, "RESELLERUSER") == 0) {
        const sim_reseller *r = sim_reseller_get();
        if (strcmp(c->principal, r->id) != 0 || strcmp(c->user_id, r->user_id) != 0 ||
            strcmp(c->password, r->password) != 0)
            return 20;
        if (!wants_reseller)
            return 21;
        return 0;
    }
    if (strcmp(c->principal_type, "TERMINALID") == 0) {
        sim_terminal *t = sim_terminal_find(c->principal);
        if (t == NULL || !t->registered || strcmp(t->password, c->password) != 0)
            return 20;
        if (wants_reseller)
            return 21;
        c->terminal = t;
        return 0;
    }
    sim_deviation(c, "initiatorPrincipalId/type must be TERMINALID or RESELLERUSER");
    return 29;
}

/* The answer's <return> in its envelope, with an empty resultCode and
 * resultDescription first, as SEQR sends them (sim_soap_handle fills them);
 * built on first use. */
static xmlNodePtr sim_ret(sim_call *c)
{
    if (c->doc == NULL) {
        char resp_name[64];
        snprintf(resp_name, sizeof resp_name, "%sResponse", c->name);
        xmlNodePtr resp_op;
        c->doc = seqr_xml_new_envelope("soap", "ns2", resp_name, &resp_op);
        c->ret = seqr_xml_add_node(resp_op, "return");
        c->code_node = seqr_xml_add_node(c->ret, "resultCode");
        c->desc_node = seqr_xml_add_node(c->ret, "resultDescription");
    }
    return c->ret;
}

static void sim_answer_text(sim_call *c, const char *name, const char *text)
{
    seqr_xml_add_text(sim_ret(c), name, text);
}

/* --- operations: each returns a resultCode and adds its fields to sim_ret(c) --- */

/* True when parent has a child name with non-blank text. */
static bool sim_has_text(xmlNodePtr parent, const char *name)
{
    char *t = seqr_xml_child_text(parent, name);
    bool ok = false;
    for (const char *p = t; p != NULL && *p && !ok; p++)
        ok = *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r';
    free(t);
    return ok;
}

/* The Invoice fields the SEQR reference marks "Required: Y". Missing ones are
 * a certification deviation, not a refusal: the live service tolerates them
 * (see tests/fixtures), and existing shop plugins must keep working. */
static void sim_check_required(sim_call *c, xmlNodePtr inv)
{
    static const char *const required[] = {"paymentMode", "acknowledgmentMode", "issueDate",
                                           "title",       "clientInvoiceId",    "cashierId",
                                           "footer"};
    char missing[160] = "";
    size_t used = 0;
    json_t *fields = json_object();
    json_decref(c->details);
    c->details = json_object();
    json_object_set_new(c->details, "invoice", fields);
    for (size_t i = 0; i < sizeof required / sizeof *required; i++) {
        char *text = seqr_xml_child_text(inv, required[i]);
        json_object_set_new(fields, required[i], text ? json_string(text) : json_null());
        free(text);
        if (sim_has_text(inv, required[i]))
            continue;
        int n =
            snprintf(missing + used, sizeof missing - used, "%s%s", used ? ", " : "", required[i]);
        if (n > 0 && (size_t)n < sizeof missing - used)
            used += (size_t)n;
    }
    int64_t total;
    char currency[4];
    if (sim_amount(seqr_xml_child(inv, "totalAmount"), &total, currency)) {
        char m[MONEY_BUFLEN];
        json_t *amount = json_object();
        json_object_set_new(amount, "value", json_string(money_format(total, m)));
        json_object_set_new(amount, "currency", json_string(currency));
        json_object_set_new(fields, "totalAmount", amount);
    } else {
        json_object_set_new(fields, "totalAmount", json_null());
    }
    if (seqr_xml_child(inv, "totalAmount") == NULL) {
        int n = snprintf(missing + used, sizeof missing - used, "%stotalAmount", used ? ", " : "");
        if (n > 0 && (size_t)n < sizeof missing - used)
            used += (size_t)n;
    }
    if (used > 0)
        sim_deviation(c, "invoice lacks required field(s): %s (Required: Y in the reference)",
                      missing);
}

static int sim_read_invoice(sim_call *c, xmlNodePtr inv, sim_invoice *into, bool check_ack)
{
    if (inv == NULL) {
        sim_deviation(c, "no invoice element");
        return 49;
    }
    sim_check_required(c, inv);
    char ack[48];
    sim_text(inv, "acknowledgmentMode", ack, sizeof ack);
    if (check_ack && strcmp(ack, "NO_ACKNOWLEDGMENT") != 0)
        sim_deviation(c,
                      "acknowledgmentMode should be NO_ACKNOWLEDGMENT for a webshop (got "
                      "\"%s\")",
                      ack);
    int64_t total;
    char currency[4];
    if (!sim_amount(seqr_xml_child(inv, "totalAmount"), &total, currency)) {
        sim_deviation(c, "invoice/totalAmount missing or not a plain decimal with a currency");
        return 49;
    }
    xmlNodePtr rows = seqr_xml_child(inv, "invoiceRows");
    int64_t sum = 0;
    int nrows = 0;
    for (xmlNodePtr r = seqr_xml_child(rows, "invoiceRow"); r; r = seqr_xml_next(r, "invoiceRow")) {
        char q[64];
        int64_t qty, row_total;
        char row_cur[4];
        if (!sim_copy(r, "itemQuantity", q, sizeof q) ||
            money_parse_scaled(q, 3, &qty) != MONEY_OK || qty <= 0) {
            sim_deviation(c, "invoiceRow %d: itemQuantity missing or invalid", nrows + 1);
            return 49;
        }
        if (!sim_amount(seqr_xml_child(r, "itemTotalAmount"), &row_total, row_cur) ||
            strcmp(row_cur, currency) != 0) {
            sim_deviation(c,
                          "invoiceRow %d: itemTotalAmount missing, not #.## or another "
                          "currency",
                          nrows + 1);
            return 49;
        }
        if (!money_add(sum, row_total, &sum)) {
            sim_deviation(c, "invoiceRow %d: the rows' itemTotalAmount overflow", nrows + 1);
            return 49;
        }
        nrows++;
    }
    if (nrows > 0 && sum != total) {
        sim_deviation(c, "totalAmount differs from the sum of itemTotalAmount");
        return 49;
    }
    into->total = total;
    memcpy(into->currency, currency, 4);
    sim_text(inv, "title", into->title, sizeof into->title);
    sim_text(inv, "clientInvoiceId", into->client_invoice_id, sizeof into->client_invoice_id);
    sim_text(inv, "paymentMode", into->payment_mode, sizeof into->payment_mode);
    if (into->payment_mode[0] == '\0')
        snprintf(into->payment_mode, sizeof into->payment_mode, "IMMEDIATE_DEBIT");
    return 0;
}

static int sim_send_invoice(sim_call *c)
{
    sim_invoice tmp;
    memset(&tmp, 0, sizeof tmp);
    int code = sim_read_invoice(c, seqr_xml_child(c->op, "invoice"), &tmp, true);
    if (code != 0)
        return code;
    xmlNodePtr rows = seqr_xml_child(seqr_xml_child(c->op, "invoice"), "invoiceRows");
    if (seqr_xml_child(rows, "invoiceRow") == NULL)
        sim_deviation(c, "no invoiceRow (certification expects at least one)");
    sim_invoice *inv = sim_invoice_new();
    char ref[16];
    memcpy(ref, inv->reference, sizeof ref);
    memcpy(inv, &tmp, sizeof *inv);
    memcpy(inv->reference, ref, sizeof ref);
    snprintf(inv->status, sizeof inv->status, "ISSUED");
    inv->created_ms = sim_now_ms();
    snprintf(inv->terminal_id, sizeof inv->terminal_id, "%s", c->terminal->id);
    char qr[64];
    snprintf(qr, sizeof qr, "HTTP://SEQR.SE/R%s", inv->reference);
    sim_answer_text(c, "invoiceQRCode", qr);
    sim_answer_text(c, "invoiceReference", inv->reference);
    return 0;
}

/* The invoice named by <invoiceReference>, owned by the calling terminal. */
static int sim_own_invoice(sim_call *c, sim_invoice **out)
{
    char ref[64];
    sim_text(c->op, "invoiceReference", ref, sizeof ref);
    sim_invoice *inv = sim_invoice_find(ref);
    if (inv == NULL)
        return 54;
    if (strcmp(inv->terminal_id, c->terminal->id) != 0)
        return 21;
    *out = inv;
    return 0;
}

static bool sim_final(const sim_invoice *inv)
{
    return strcmp(inv->status, "PAID") == 0 || strcmp(inv->status, "CANCELED") == 0 ||
           strcmp(inv->status, "FAILED") == 0;
}

static int sim_update_invoice(sim_call *c)
{
    sim_invoice *inv;
    int code = sim_own_invoice(c, &inv);
    if (code != 0)
        return code;
    if (sim_final(inv))
        return 49;
    sim_invoice tmp;
    memset(&tmp, 0, sizeof tmp);
    code = sim_read_invoice(c, seqr_xml_child(c->op, "invoice"), &tmp, true);
    if (code != 0)
        return code;
    inv->total = tmp.total;
    memcpy(inv->title, tmp.title, sizeof inv->title);
    memcpy(inv->client_invoice_id, tmp.client_invoice_id, sizeof inv->client_invoice_id);
    inv->version++;
    return 0;
}

static void sim_receipt(sim_call *c, const sim_invoice *inv)
{
    xmlNodePtr r = seqr_xml_add_node(sim_ret(c), "receipt");
    seqr_xml_add_text(r, "terminalId", inv->terminal_id);
    char date[40];
    time_t t = (time_t)(inv->paid_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    seqr_xml_add_text(r, "paymentDate", date);
    seqr_xml_add_text(r, "invoiceReference", inv->reference);
    seqr_xml_add_text(r, "paymentReference", inv->ers_reference);
    seqr_xml_add_text(r, "payerTerminalId", "seqr-sim-buyer");
    seqr_xml_add_text(r, "receiverName", "seqr-sim merchant");
    xmlNodePtr i = seqr_xml_add_node(r, "invoice");
    seqr_xml_add_text(i, "title", inv->title);
    seqr_xml_add_text(i, "clientInvoiceId", inv->client_invoice_id);
    seqr_xml_add_amount(i, "totalAmount", inv->total, inv->currency);
}

static int sim_get_payment_status(sim_call *c)
{
    sim_invoice *inv;
    int code = sim_own_invoice(c, &inv);
    if (code != 0)
        return code;
    char ver[32];
    long long seen = -1;
    if (sim_copy(c->op, "invoiceVersion", ver, sizeof ver))
        seen = strtoll(ver, NULL, 10);
    else
        sim_deviation(c, "invoiceVersion is missing (send 0, then the latest version)");
    if (seen >= 0 && seen < inv->last_version_seen)
        sim_deviation(c, "invoiceVersion %lld is older than version %lld already received", seen,
                      (long long)inv->last_version_seen);
    inv->status_fetches++;
    sim_apply_reversal(inv, sim_mono_ms());
    if (strcmp(inv->status, "PAID") == 0)
        inv->fetches_after_paid++;
    inv->last_version_seen = inv->version;
    if (strcmp(inv->status, "PAID") == 0) {
        sim_answer_text(c, "status", inv->status);
        seqr_xml_add_int(sim_ret(c), "version", inv->version);
        sim_answer_text(c, "ersReference", inv->ers_reference);
        sim_receipt(c, inv);
        return 0;
    }
    /* Before payment the answer is the status and the version alone. */
    c->has_status = true;
    memcpy(c->status, inv->status, sizeof c->status);
    c->version = inv->version;
    return 0;
}

static int sim_cancel_invoice(sim_call *c)
{
    sim_invoice *inv;
    int code = sim_own_invoice(c, &inv);
    if (code != 0)
        return code;
    if (strcmp(inv->status, "PAID") == 0)
        return 50;
    if (strcmp(inv->status, "CANCELED") == 0 || strcmp(inv->status, "FAILED") == 0)
        return 95;
    if (strcmp(inv->status, "PENDING_ISSUER_ACKNOWLEDGE") == 0)
        return 51;
    sim_invoice_set_status(inv, "CANCELED");
    return 0;
}

static int sim_commit_reservation(sim_call *c)
{
    sim_invoice *inv;
    int code = sim_own_invoice(c, &inv);
    if (code != 0)
        return code;
    if (strcmp(inv->status, "RESERVED") != 0)
        return 96;
    int64_t amount;
    char currency[4];
    if (!sim_amount(seqr_xml_child(c->op, "amount"), &amount, currency) || amount <= 0 ||
        amount > inv->total || strcmp(currency, inv->currency) != 0)
        return 49;
    inv->total = amount;
    sim_invoice_pay(inv);
    return 0;
}

static bool sim_base64(const char *s)
{
    size_t n = 0;
    for (const char *p = s; *p; p++) {
        char ch = *p;
        if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t')
            continue;
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '+' || ch == '/' || ch == '='))
            return false;
        n++;
    }
    return n % 4 == 0;
}

static int sim_submit_receipt(sim_call *c)
{
    char ers[64];
    sim_text(c->op, "ersReference", ers, sizeof ers);
    sim_invoice *inv = sim_invoice_by_ers(ers);
    if (inv == NULL || strcmp(inv->terminal_id, c->terminal->id) != 0)
        return 23;
    if (strcmp(inv->status, "PAID") != 0)
        sim_deviation(c, "submitPaymentReceipt for an invoice that is not PAID");
    xmlNodePtr doc = seqr_xml_child(c->op, "receiptDocument");
    if (doc == NULL) {
        sim_deviation(c, "no receiptDocument");
    } else {
        /* The reference: "mimeType, receiptData, receiptType - all mandatory". */
        bool has_mime = sim_has_text(doc, "mimeType"), has_data = sim_has_text(doc, "receiptData"),
             has_type = sim_has_text(doc, "receiptType");
        json_t *rd = json_object();
        static const char *const parts[] = {"mimeType", "receiptData", "receiptType"};
        for (size_t i = 0; i < 3; i++) {
            char *text = seqr_xml_child_text(doc, parts[i]);
            json_object_set_new(rd, parts[i], text ? json_string(text) : json_null());
            free(text);
        }
        json_decref(c->details);
        c->details = json_object();
        json_object_set_new(c->details, "receiptDocument", rd);
        if (!has_mime || !has_data || !has_type)
            sim_deviation(c, "receiptDocument lacks%s%s%s (all three are mandatory)",
                          has_mime ? "" : " mimeType", has_data ? "" : " receiptData",
                          has_type ? "" : " receiptType");
    }
    char *data = seqr_xml_child_text(doc, "receiptData");
    char mime[64];
    sim_text(doc, "mimeType", mime, sizeof mime);
    bool bad = data != NULL && data[0] != '\0' && (!sim_base64(data) || mime[0] == '\0');
    free(data);
    if (bad) {
        sim_deviation(c, "receiptData must be base64 with a mimeType");
        return 49;
    }
    inv->receipt_submitted = true;
    return 0;
}

static int sim_refund_payment(sim_call *c)
{
    char ers[64];
    sim_text(c->op, "ersReference", ers, sizeof ers);
    sim_invoice *inv = sim_invoice_by_ers(ers);
    if (inv == NULL || strcmp(inv->terminal_id, c->terminal->id) != 0 || inv->reversed)
        return 23;
    int64_t amount;
    char currency[4];
    xmlNodePtr ri = seqr_xml_child(c->op, "invoice");
    if (!sim_amount(seqr_xml_child(ri, "totalAmount"), &amount, currency) || amount <= 0 ||
        strcmp(currency, inv->currency) != 0)
        return 49;
    if (amount > inv->total - inv->refunded)
        return 98;
    if (inv->n_refunds == SIM_MAX_REFUNDS)
        return 90;
    sim_refund *r = &inv->refunds[inv->n_refunds++];
    sim_new_ers(r->ers_reference);
    r->amount = amount;
    inv->refunded += amount;
    sim_answer_text(c, "ersReference", r->ers_reference);
    return 0;
}

/* Reads <parameters><parameter><entry><key/><value/></entry>... for key. */
static bool sim_param(xmlNodePtr op, const char *key, char *dst, size_t len)
{
    xmlNodePtr p = seqr_xml_child(seqr_xml_child(op, "parameters"), "parameter");
    for (xmlNodePtr e = seqr_xml_child(p, "entry"); e; e = seqr_xml_next(e, "entry")) {
        char k[64];
        if (sim_copy(e, "key", k, sizeof k) && strcmp(k, key) == 0)
            return sim_copy(e, "value", dst, len);
    }
    return false;
}

static int sim_mark_period(sim_call *c)
{
    char term[64] = "";
    sim_param(c->op, "TERMINALID", term, sizeof term);
    sim_period *p = sim_period_new(term);
    if (p == NULL)
        return 90;
    sim_answer_text(c, "transactionPeriodId", p->id);
    return 0;
}

static void sim_base64_encode(const char *in, size_t n, buf *out)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned char)in[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)in[i + 2];
        buf_putc(out, tbl[(v >> 18) & 63]);
        buf_putc(out, tbl[(v >> 12) & 63]);
        buf_putc(out, i + 1 < n ? tbl[(v >> 6) & 63] : '=');
        buf_putc(out, i + 2 < n ? tbl[v & 63] : '=');
    }
}

static int sim_execute_report(sim_call *c)
{
    char period_id[64], report_id[128];
    sim_text(c->op, "reportId", report_id, sizeof report_id);
    if (!sim_param(c->op, "transactionPeriodId", period_id, sizeof period_id))
        return 49;
    sim_period *p = sim_period_find(period_id);
    if (p == NULL)
        return 49;
    char term[64] = "";
    sim_param(c->op, "TERMINALID", term, sizeof term);
    if (!p->report_asked) {
        p->report_asked = true;
        return 2; /* the first ask is always too early, as with SEQR */
    }
    int64_t count = 0, sum = 0;
    for (size_t i = 0; i < sim_invoice_count(); i++) {
        const sim_invoice *inv = sim_invoice_at(i);
        if (inv->paid_ms == 0 || inv->reversed || inv->paid_ms <= p->from_ms ||
            inv->paid_ms > p->marked_ms)
            continue;
        if (p->terminal_id[0] != '\0' && strcmp(inv->terminal_id, p->terminal_id) != 0)
            continue;
        count++;
        if (!money_add(sum, inv->total - inv->refunded, &sum))
            sum = INT64_MAX; /* saturates: the report cannot show more */
    }
    /* The report document, built as a tree. */
    xmlDocPtr rd = xmlNewDoc(BAD_CAST "1.0");
    xmlNodePtr root = xmlNewDocNode(rd, NULL, BAD_CAST "TransactionSummary", NULL);
    xmlDocSetRootElement(rd, root);
    xmlNodePtr meta = seqr_xml_add_node(root, "Meta");
    seqr_xml_add_text(meta, "ReportId", report_id);
    seqr_xml_add_text(meta, "ResellerId", sim_reseller_get()->id);
    seqr_xml_add_text(meta, "TerminalId", term[0] ? term : p->terminal_id);
    seqr_xml_add_text(meta, "TransactionPeriodId", p->id);
    xmlNodePtr row = seqr_xml_add_node(root, "Row");
    seqr_xml_add_int(row, "SalesCount", count);
    char m[MONEY_BUFLEN];
    seqr_xml_add_text(row, "SalesTotal", money_format(sum, m));
    buf content = BUF_INIT, b64 = BUF_INIT;
    seqr_xml_serialize(rd, &content);
    xmlFreeDoc(rd);
    sim_base64_encode(content.data, content.len, &b64);
    const char *slash = strrchr(report_id, '/');
    const char *base = slash ? slash + 1 : report_id;
    char title[256];
    snprintf(title, sizeof title, "%.*s_%s.xml", (int)strcspn(base, "."), base, p->id);
    xmlNodePtr rep = seqr_xml_add_node(sim_ret(c), "report");
    seqr_xml_add_text(rep, "content", buf_cstr(&b64));
    seqr_xml_add_text(rep, "contentString", buf_cstr(&content));
    seqr_xml_add_text(rep, "mimeType", "text/xml");
    seqr_xml_add_text(rep, "title", title);
    buf_free(&content);
    buf_free(&b64);
    return 0;
}

static int sim_register_terminal(sim_call *c)
{
    char ext[128], password[128], name[128];
    sim_text(c->op, "externalTerminalId", ext, sizeof ext);
    sim_text(c->op, "password", password, sizeof password);
    sim_text(c->op, "name", name, sizeof name);
    if (ext[0] == '\0' || password[0] == '\0' || name[0] == '\0')
        return 49;
    char id[40];
    static const char hex[] = "0123456789abcdef";
    do {
        char digits[40];
        sim_new_digits(digits, 32);
        for (int i = 0; i < 32; i++)
            id[i] = hex[(digits[i] - '0' + i * 7) % 16];
        id[32] = '\0';
    } while (sim_terminal_find(id) != NULL);
    sim_terminal *t = sim_terminal_add(id, password);
    if (t == NULL)
        return 90;
    snprintf(t->external_id, sizeof t->external_id, "%s", ext);
    snprintf(t->name, sizeof t->name, "%s", name);
    sim_answer_text(c, "terminalId", id);
    return 0;
}

static int sim_assign_seqr_id(sim_call *c)
{
    char id[128];
    if (!sim_copy(c->op, "seqrId", id, sizeof id) || id[0] == '\0' || strlen(id) > 64)
        return 53;
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
            return 53;
    sim_terminal *owner = sim_terminal_by_seqr_id(id);
    if (owner != NULL && owner != c->terminal)
        return 53;
    snprintf(c->terminal->seqr_id, sizeof c->terminal->seqr_id, "%s", id);
    return 0;
}

static int sim_unregister_terminal(sim_call *c)
{
    c->terminal->registered = false;
    c->terminal->seqr_id[0] = '\0';
    return 0;
}

typedef struct {
    const char *name;
    int (*fn)(sim_call *c);
} sim_op;

static const sim_op sim_ops[] = {
    {"sendInvoice", sim_send_invoice},
    {"updateInvoice", sim_update_invoice},
    {"getPaymentStatus", sim_get_payment_status},
    {"cancelInvoice", sim_cancel_invoice},
    {"commitReservation", sim_commit_reservation},
    {"submitPaymentReceipt", sim_submit_receipt},
    {"refundPayment", sim_refund_payment},
    {"markTransactionPeriod", sim_mark_period},
    {"executeReport", sim_execute_report},
    {"registerTerminal", sim_register_terminal},
    {"unregisterTerminal", sim_unregister_terminal},
    {"assignSeqrId", sim_assign_seqr_id},
};

static void sim_fault(const char *code, const char *text, buf *answer, int *http_status)
{
    seqr_xml_build_fault(code, text, answer);
    *http_status = 500;
}

void sim_soap_handle(const char *body, size_t len, buf *answer, int *http_status)
{
    char err[256];
    xmlDocPtr req = seqr_xml_parse(body, len, err, sizeof err);
    if (req == NULL) {
        char msg[300];
        snprintf(msg, sizeof msg, "Unmarshalling Error: %s", err);
        sim_fault("soap:Client", msg, answer, http_status);
        sim_lock();
        sim_log_request("(unparseable)", "", NULL, -1, 500, NULL, 0, NULL);
        sim_unlock();
        return;
    }
    xmlNodePtr op = seqr_xml_body_child(req);
    const sim_op *found = NULL;
    if (op != NULL && op->ns != NULL && strcmp((const char *)op->ns->href, SEQR_XML_NS) == 0) {
        for (size_t i = 0; i < sizeof sim_ops / sizeof *sim_ops; i++)
            if (strcmp((const char *)op->name, sim_ops[i].name) == 0) {
                found = &sim_ops[i];
                break;
            }
    }
    if (found == NULL) {
        char msg[200];
        snprintf(msg, sizeof msg, "Cannot find dispatch method for {%s}%s",
                 op && op->ns ? (const char *)op->ns->href : "", op ? (const char *)op->name : "?");
        sim_fault("soap:Client", msg, answer, http_status);
        sim_lock();
        sim_log_request(op ? (const char *)op->name : "(no operation)", "", NULL, -1, 500, NULL, 0,
                        NULL);
        sim_unlock();
        xmlFreeDoc(req);
        return;
    }

    sim_call c;
    memset(&c, 0, sizeof c);
    c.op = op;
    c.name = found->name;

    sim_lock();
    int code = sim_context(&c);
    if (code == 0)
        code = found->fn(&c);
    sim_log_request(c.name, c.principal, c.has_client_reference ? c.client_reference : NULL, code,
                    200, c.deviations, c.n_deviations, c.details);
    sim_unlock();

    /* An error answer follows from the operation and the code, one before
     * payment from the status and the version (the version ends the key
     * and has no newline, so no two answers share a key): serialised once
     * per thread, then copied (sim/answers.h). */
    char key[SIM_ANSWERS_KEY_MAX] = "";
    int n = 0;
    if (code != 0)
        n = snprintf(key, sizeof key, "error\n%s\n%d", c.name, code);
    else if (c.has_status)
        n = snprintf(key, sizeof key, "getPaymentStatus\n%s\n%lld", c.status, (long long)c.version);
    if (n < 0 || (size_t)n >= sizeof key)
        key[0] = '\0';
    if (key[0] == '\0' || !sim_answers_get(key, answer)) {
        sim_ret(&c);
        char code_text[16];
        snprintf(code_text, sizeof code_text, "%d", code);
        xmlNodeAddContent(c.code_node, BAD_CAST code_text);
        xmlNodeAddContent(c.desc_node, BAD_CAST sim_code_name(code));
        if (code != 0) {
            /* An error answer carries only the result. */
            xmlNodePtr e = seqr_xml_next_element(c.desc_node);
            while (e != NULL) {
                xmlNodePtr next = seqr_xml_next_element(e);
                xmlUnlinkNode(e);
                xmlFreeNode(e);
                e = next;
            }
        } else if (c.has_status) {
            seqr_xml_add_text(c.ret, "status", c.status);
            seqr_xml_add_int(c.ret, "version", c.version);
        }
        size_t start = answer->len;
        seqr_xml_serialize(c.doc, answer);
        if (key[0] != '\0' && answer->len > start)
            sim_answers_put(key, answer->data + start, answer->len - start);
    }
    *http_status = 200;
    xmlFreeDoc(c.doc);
    xmlFreeDoc(req);
}
