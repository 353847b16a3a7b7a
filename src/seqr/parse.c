/* seqr/parse.c — answer parsers for every SEQR operation; see parse.h.
 *
 * parse_open() does what all answers share (XML, envelope, fault, operation
 * element, <return>, resultCode); the per-operation parsers then read their
 * fields from <return>. Also home of the seqr_status_* helpers and
 * seqr_report_free(), which are pure functions of answers. */
#include "parse.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../money.h"
#include "../text.h"
#include "xml.h"

static const char *const seqr_status_names[] = {
    "UNKNOWN",  "ISSUED", "PENDING_ISSUER_ACKNOWLEDGE", "RESERVED", "PARTIALLY_PAID", "PAID",
    "CANCELED", "FAILED",
};

const char *seqr_status_name(seqr_status s)
{
    if ((int)s < 0 || (size_t)s >= sizeof seqr_status_names / sizeof seqr_status_names[0])
        return "UNKNOWN";
    return seqr_status_names[s];
}

seqr_status seqr_status_parse(const char *name)
{
    if (name == NULL)
        return SEQR_STATUS_UNKNOWN;
    for (size_t i = 1; i < sizeof seqr_status_names / sizeof seqr_status_names[0]; i++)
        if (strcmp(name, seqr_status_names[i]) == 0)
            return (seqr_status)i;
    return SEQR_STATUS_UNKNOWN;
}

bool seqr_status_is_final(seqr_status s)
{
    return s == SEQR_STATUS_PAID || s == SEQR_STATUS_CANCELED || s == SEQR_STATUS_FAILED;
}

void seqr_report_free(seqr_report *r)
{
    if (r == NULL)
        return;
    free(r->title);
    free(r->mime_type);
    free(r->content_string);
    free(r->content);
    r->title = NULL;
    r->mime_type = NULL;
    r->content_string = NULL;
    r->content = NULL;
}

void seqr_result_reset(seqr_result *res)
{
    memset(res, 0, sizeof *res);
    res->code = -1;
}

/* Replaces line breaks and other control characters by spaces so a message
 * stays on one line. */
static void parse_one_line(char *s)
{
    for (unsigned char *p = (unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            *p = ' ';
}

static void parse_message(seqr_result *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void parse_message(seqr_result *res, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->message, sizeof res->message, fmt, ap);
    va_end(ap);
    parse_one_line(res->message);
}

/* Sets the "bad answer" message and returns SEQR_ERR_BAD_ANSWER. */
static seqr_err parse_bad(seqr_result *res, const char *op, const char *why)
{
    parse_message(res, "%s: bad answer from SEQR: %s", op, why);
    return SEQR_ERR_BAD_ANSWER;
}

/* Longest integer text (after trimming) an answer may carry, NUL included. */
#define PARSE_INT_MAX 32

static bool parse_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Copies text without surrounding XML whitespace into dst. Returns false when
 * it does not fit; with truncate, dst then holds as much as fits (cut on a
 * UTF-8 character boundary), otherwise "". */
static bool parse_copy_trimmed(const char *text, char *dst, size_t dstlen, bool truncate)
{
    const char *start = text;
    while (parse_is_space(*start))
        start++;
    size_t n = strlen(start);
    while (n > 0 && parse_is_space(start[n - 1]))
        n--;
    if (n < dstlen) {
        memcpy(dst, start, n);
        dst[n] = '\0';
        return true;
    }
    if (!truncate) {
        dst[0] = '\0';
        return false;
    }
    size_t cut = dstlen - 1;
    while (cut > 0 && ((unsigned char)start[cut] & 0xC0) == 0x80)
        cut--;
    memcpy(dst, start, cut);
    dst[cut] = '\0';
    return false;
}

typedef enum { FIELD_ABSENT, FIELD_OK, FIELD_TOO_LONG } parse_field_rc;

/* Copies the trimmed text t (NULL: absent) into dst ("" when absent). Text
 * fields (truncate) are cut to fit; ids are not. */
static parse_field_rc parse_text_field(const char *t, char *dst, size_t dstlen, bool truncate)
{
    dst[0] = '\0';
    if (t == NULL)
        return FIELD_ABSENT;
    bool fits = parse_copy_trimmed(t, dst, dstlen, truncate);
    if (fits || truncate)
        return FIELD_OK;
    return FIELD_TOO_LONG;
}

/* parse_text_field on the text of parent's first child named name. */
static parse_field_rc parse_field(xmlNodePtr parent, const char *name, char *dst, size_t dstlen,
                                  bool truncate)
{
    char *t = seqr_xml_child_text(parent, name);
    parse_field_rc rc = parse_text_field(t, dst, dstlen, truncate);
    free(t);
    return rc;
}

/* Strict decimal integer (optional '-', digits; surrounding whitespace ok). */
static bool parse_int64(const char *text, int64_t *out)
{
    char tmp[PARSE_INT_MAX];
    if (!parse_copy_trimmed(text, tmp, sizeof tmp, false) || tmp[0] == '\0')
        return false;
    const char *p = tmp[0] == '-' ? tmp + 1 : tmp;
    if (*p == '\0')
        return false;
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9')
            return false;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(tmp, &end, 10);
    if (errno != 0 || end == NULL || *end != '\0')
        return false;
    *out = (int64_t)v;
    return true;
}

/* Reads an integer text t (NULL: absent). Returns FIELD_ABSENT, FIELD_OK, or
 * FIELD_TOO_LONG for text that is not an integer in [min, max]. */
static parse_field_rc parse_text_int(const char *t, int64_t min, int64_t max, int64_t *out)
{
    if (t == NULL)
        return FIELD_ABSENT;
    int64_t v = 0;
    if (!parse_int64(t, &v) || v < min || v > max)
        return FIELD_TOO_LONG;
    *out = v;
    return FIELD_OK;
}

/* What every answer's head says, however it was read: texts are NULL when
 * the element is absent. */
typedef struct {
    bool envelope;         /* a soap:Envelope whose first soap:Body holds an element */
    const char *body_name; /* that element's name */
    bool body_in_seqr_ns;  /* ... in SEQR_XML_NS */
    bool fault;            /* ... is soap:Fault */
    const char *fault_code, *fault_string;
    bool has_return; /* the operation element has a <return> */
    const char *result_code, *result_description;
} parse_head;

/* True when name is op followed by "Response". */
static bool parse_is_response(const char *name, const char *op)
{
    size_t n = strlen(op);
    return strncmp(name, op, n) == 0 && strcmp(name + n, "Response") == 0;
}

/* The verdict on an answer's head: SEQR_OK or SEQR_ERR_RESULT when the
 * result code is known, else SEQR_ERR_FAULT or SEQR_ERR_BAD_ANSWER; res is
 * filled as parse.h says. */
static seqr_err parse_head_verdict(const char *op, const parse_head *h, seqr_result *res)
{
    char why[300];
    char want[96];
    if (!h->envelope)
        return parse_bad(res, op, "not a SOAP 1.1 envelope with a body");
    if (h->fault) {
        snprintf(res->fault_code, sizeof res->fault_code, "%s", h->fault_code ? h->fault_code : "");
        snprintf(res->fault_string, sizeof res->fault_string, "%s",
                 h->fault_string ? h->fault_string : "");
        parse_one_line(res->fault_code);
        parse_one_line(res->fault_string);
        parse_message(res, "%s: SOAP fault %s: %s", op,
                      res->fault_code[0] ? res->fault_code : "(no faultcode)",
                      res->fault_string[0] ? res->fault_string : "(no faultstring)");
        return SEQR_ERR_FAULT;
    }
    if (!parse_is_response(h->body_name, op) || !h->body_in_seqr_ns) {
        snprintf(want, sizeof want, "%sResponse", op);
        snprintf(why, sizeof why, "expected <%s> in namespace %s, got <%.64s>", want, SEQR_XML_NS,
                 h->body_name);
        return parse_bad(res, op, why);
    }
    if (!h->has_return)
        return parse_bad(res, op, "no <return> element");
    int64_t code = 0;
    parse_field_rc rc = parse_text_int(h->result_code, -2147483647, 2147483647, &code);
    if (rc == FIELD_ABSENT)
        return parse_bad(res, op, "no resultCode");
    if (rc != FIELD_OK)
        return parse_bad(res, op, "resultCode is not an integer");
    res->code = (int)code;
    parse_text_field(h->result_description, res->description, sizeof res->description, true);
    parse_one_line(res->description);
    const char *name = res->description[0] ? res->description : seqr_code_name(res->code);
    if (res->code == 0) {
        /* Every good answer: "op: name", without printf. */
        size_t n = text_copy(res->message, sizeof res->message, op);
        n = text_append(res->message, sizeof res->message, n, ": ");
        text_append(res->message, sizeof res->message, n, name);
        parse_one_line(res->message);
        return SEQR_OK;
    }
    const seqr_code_info *info = seqr_code_lookup(res->code);
    if (info != NULL)
        parse_message(res, "%s: SEQR answered %d %s (%s)", op, res->code, name, info->meaning);
    else
        parse_message(res, "%s: SEQR answered %d %s", op, res->code, name);
    return SEQR_ERR_RESULT;
}

/* Shared first half of every parser. On success *doc_out (caller frees) and
 * *ret_out (the <return> element) are set and the result code is known: the
 * return value is SEQR_OK or SEQR_ERR_RESULT. On any other return *doc_out is
 * NULL. */
static seqr_err parse_open(const char *op, const char *data, size_t len, xmlDocPtr *doc_out,
                           xmlNodePtr *ret_out, seqr_result *res)
{
    char why[300];
    char want[96];
    char fault_code[sizeof res->fault_code], fault_string[sizeof res->fault_string];
    xmlDocPtr doc = NULL;
    xmlNodePtr ret = NULL;
    parse_head h;
    seqr_err e = SEQR_ERR_BAD_ANSWER;
    long http = res->http_status;

    memset(&h, 0, sizeof h);
    seqr_result_reset(res);
    res->http_status = http;
    *doc_out = NULL;
    *ret_out = NULL;

    if (len == 0 || data == NULL) {
        e = parse_bad(res, op, "empty answer");
        goto cleanup;
    }
    doc = seqr_xml_parse(data, len, why, sizeof why);
    if (doc == NULL) {
        e = parse_bad(res, op, why);
        goto cleanup;
    }
    xmlNodePtr body = seqr_xml_body_child(doc);
    h.envelope = body != NULL;
    if (body != NULL) {
        h.body_name = seqr_xml_name(body);
        h.body_in_seqr_ns = body->ns != NULL && body->ns->href != NULL &&
                            strcmp((const char *)body->ns->href, SEQR_XML_NS) == 0;
        h.fault =
            seqr_xml_fault(body, fault_code, sizeof fault_code, fault_string, sizeof fault_string);
        h.fault_code = fault_code;
        h.fault_string = fault_string;
        snprintf(want, sizeof want, "%sResponse", op);
        if (!h.fault && strcmp(h.body_name, want) == 0 && h.body_in_seqr_ns)
            ret = seqr_xml_child(body, "return");
        h.has_return = ret != NULL;
        if (ret != NULL) {
            h.result_code = seqr_xml_child_text(ret, "resultCode");
            h.result_description = seqr_xml_child_text(ret, "resultDescription");
        }
    }
    e = parse_head_verdict(op, &h, res);
    free((char *)h.result_code);
    free((char *)h.result_description);
    if (e == SEQR_OK || e == SEQR_ERR_RESULT) {
        *doc_out = doc;
        *ret_out = ret;
        doc = NULL;
    }

cleanup:
    if (doc != NULL)
        xmlFreeDoc(doc);
    return e;
}

seqr_err seqr_parse_result(const char *op, const char *data, size_t len, seqr_result *res)
{
    xmlDocPtr doc = NULL;
    xmlNodePtr ret = NULL;
    seqr_err e = parse_open(op, data, len, &doc, &ret, res);
    if (doc != NULL)
        xmlFreeDoc(doc);
    return e;
}

seqr_err seqr_parse_update_invoice(const char *data, size_t len, seqr_result *res)
{
    return seqr_parse_result("updateInvoice", data, len, res);
}

seqr_err seqr_parse_cancel_invoice(const char *data, size_t len, seqr_result *res)
{
    return seqr_parse_result("cancelInvoice", data, len, res);
}

seqr_err seqr_parse_commit_reservation(const char *data, size_t len, seqr_result *res)
{
    return seqr_parse_result("commitReservation", data, len, res);
}

seqr_err seqr_parse_submit_payment_receipt(const char *data, size_t len, seqr_result *res)
{
    return seqr_parse_result("submitPaymentReceipt", data, len, res);
}

seqr_err seqr_parse_unregister_terminal(const char *data, size_t len, seqr_result *res)
{
    return seqr_parse_result("unregisterTerminal", data, len, res);
}

seqr_err seqr_parse_assign_seqr_id(const char *data, size_t len, seqr_result *res)
{
    return seqr_parse_result("assignSeqrId", data, len, res);
}

/* Reads an identifier that must be present, non-empty and fit in dst. */
static seqr_err parse_required_id(const char *op, xmlNodePtr parent, const char *name, char *dst,
                                  size_t dstlen, seqr_result *res)
{
    char why[128];
    parse_field_rc rc = parse_field(parent, name, dst, dstlen, false);
    if (rc == FIELD_OK && dst[0] != '\0')
        return SEQR_OK;
    if (rc == FIELD_TOO_LONG)
        snprintf(why, sizeof why, "%s is longer than %zu bytes", name, dstlen - 1);
    else
        snprintf(why, sizeof why, "no %s", name);
    return parse_bad(res, op, why);
}

/* Reads an optional identifier: absent is fine, too long is not. */
static seqr_err parse_optional_id(const char *op, xmlNodePtr parent, const char *name, char *dst,
                                  size_t dstlen, seqr_result *res)
{
    char why[128];
    if (parse_field(parent, name, dst, dstlen, false) != FIELD_TOO_LONG)
        return SEQR_OK;
    snprintf(why, sizeof why, "%s is longer than %zu bytes", name, dstlen - 1);
    return parse_bad(res, op, why);
}

seqr_err seqr_parse_send_invoice(const char *data, size_t len, seqr_send_invoice_answer *out,
                                 seqr_result *res)
{
    const char *op = "sendInvoice";
    xmlDocPtr doc = NULL;
    xmlNodePtr ret = NULL;
    memset(out, 0, sizeof *out);
    seqr_err e = parse_open(op, data, len, &doc, &ret, res);
    if (e != SEQR_OK)
        goto cleanup;
    e = parse_required_id(op, ret, "invoiceReference", out->invoice_reference,
                          sizeof out->invoice_reference, res);
    if (e != SEQR_OK)
        goto cleanup;
    e = parse_optional_id(op, ret, "invoiceQRCode", out->invoice_qr_code,
                          sizeof out->invoice_qr_code, res);
cleanup:
    if (e != SEQR_OK)
        memset(out, 0, sizeof *out);
    if (doc != NULL)
        xmlFreeDoc(doc);
    return e;
}

/* --- getPaymentStatus ---
 * Its answer is read either from a tree (the reference, as every other
 * answer) or streaming, without a tree (the poller's way): both gather the
 * same texts and hand them to the same checks, so they cannot disagree on
 * anything but what they gather, which the fuzzer compares. */

typedef struct {
    const char *description, *id, *value, *status;
} parse_token_texts;

/* The texts of a getPaymentStatus <return> (NULL: absent). */
typedef struct {
    const char *status, *version, *ers_reference;
    bool has_receipt;
    const char *terminal_id, *payment_date, *invoice_reference, *payment_reference,
        *payer_terminal_id, *receiver_name;
    bool has_invoice;
    const char *title, *client_invoice_id;
    bool has_total;
    const char *total_value, *total_currency;
    int n_tokens; /* the first SEQR_MAX_TOKENS customerTokens */
    parse_token_texts tokens[SEQR_MAX_TOKENS];
} parse_status_texts;

/* Reads an optional identifier text: absent is fine, too long is not. */
static seqr_err parse_optional_text(const char *op, const char *t, const char *name, char *dst,
                                    size_t dstlen, seqr_result *res)
{
    char why[128];
    if (parse_text_field(t, dst, dstlen, false) != FIELD_TOO_LONG)
        return SEQR_OK;
    snprintf(why, sizeof why, "%s is longer than %zu bytes", name, dstlen - 1);
    return parse_bad(res, op, why);
}

/* Reads <receipt> (and its <invoice>) into r. */
static seqr_err parse_receipt(const char *op, const parse_status_texts *t, seqr_receipt *r,
                              seqr_result *res)
{
    seqr_err e = SEQR_OK;
    r->present = true;
    e = parse_optional_text(op, t->terminal_id, "terminalId", r->terminal_id, sizeof r->terminal_id,
                            res);
    if (e == SEQR_OK)
        e = parse_optional_text(op, t->payment_date, "paymentDate", r->payment_date,
                                sizeof r->payment_date, res);
    if (e == SEQR_OK)
        e = parse_optional_text(op, t->invoice_reference, "invoiceReference", r->invoice_reference,
                                sizeof r->invoice_reference, res);
    if (e == SEQR_OK)
        e = parse_optional_text(op, t->payment_reference, "paymentReference", r->payment_reference,
                                sizeof r->payment_reference, res);
    if (e == SEQR_OK)
        e = parse_optional_text(op, t->payer_terminal_id, "payerTerminalId", r->payer_terminal_id,
                                sizeof r->payer_terminal_id, res);
    if (e != SEQR_OK)
        return e;
    parse_text_field(t->receiver_name, r->receiver_name, sizeof r->receiver_name, true);

    if (!t->has_invoice)
        return SEQR_OK;
    parse_text_field(t->title, r->title, sizeof r->title, true);
    e = parse_optional_text(op, t->client_invoice_id, "clientInvoiceId", r->client_invoice_id,
                            sizeof r->client_invoice_id, res);
    if (e != SEQR_OK)
        return e;
    if (!t->has_total)
        return SEQR_OK;
    char value[MONEY_BUFLEN];
    if (parse_text_field(t->total_value, value, sizeof value, false) != FIELD_OK ||
        money_parse(value, &r->total) != MONEY_OK)
        return parse_bad(res, op, "receipt totalAmount value is not a plain #.## amount");
    if (parse_text_field(t->total_currency, r->currency, sizeof r->currency, false) != FIELD_OK ||
        strlen(r->currency) != 3)
        return parse_bad(res, op, "receipt totalAmount currency is not a 3-letter code");
    r->has_total = true;
    return SEQR_OK;
}

/* Reads one <customerTokens> element. */
static seqr_err parse_token(const char *op, const parse_token_texts *tt, seqr_token *t,
                            seqr_result *res)
{
    parse_text_field(tt->description, t->description, sizeof t->description, true);
    seqr_err e = parse_optional_text(op, tt->id, "id", t->id, sizeof t->id, res);
    if (e == SEQR_OK)
        e = parse_optional_text(op, tt->value, "value", t->value, sizeof t->value, res);
    if (e != SEQR_OK)
        return e;
    int64_t status = 0;
    if (parse_text_int(tt->status, -1000000, 1000000, &status) == FIELD_TOO_LONG)
        return parse_bad(res, op, "customerTokens status is not an integer");
    t->status = (int)status;
    return SEQR_OK;
}

/* The checks on a getPaymentStatus <return> whose resultCode was 0. */
static seqr_err parse_status_verdict(const char *op, const parse_status_texts *t,
                                     seqr_payment_status *out, seqr_result *res)
{
    if (parse_text_field(t->status, out->status_text, sizeof out->status_text, true) ==
            FIELD_ABSENT ||
        out->status_text[0] == '\0')
        return parse_bad(res, op, "no status");
    out->status = seqr_status_parse(out->status_text);

    parse_field_rc rc = parse_text_int(t->version, 0, INT64_MAX, &out->version);
    if (rc != FIELD_OK)
        return parse_bad(
            res, op, rc == FIELD_ABSENT ? "no version" : "version is not a non-negative integer");
    seqr_err e = parse_optional_text(op, t->ers_reference, "ersReference", out->ers_reference,
                                     sizeof out->ers_reference, res);
    if (e != SEQR_OK)
        return e;
    if (t->has_receipt) {
        e = parse_receipt(op, t, &out->receipt, res);
        if (e != SEQR_OK)
            return e;
    }
    for (int i = 0; i < t->n_tokens; i++) {
        e = parse_token(op, &t->tokens[i], &out->tokens[out->n_tokens], res);
        if (e != SEQR_OK)
            return e;
        out->n_tokens++;
    }
    /* The head's message said "getPaymentStatus: SUCCESS"; add the status:
     * "op: description, status S version V", once per poll, without printf. */
    char version[TEXT_INT_LEN];
    text_int(version, out->version);
    char *m = res->message;
    size_t cap = sizeof res->message;
    size_t n = text_copy(m, cap, op);
    n = text_append(m, cap, n, ": ");
    n = text_append(m, cap, n, res->description[0] ? res->description : "SUCCESS");
    n = text_append(m, cap, n, ", status ");
    n = text_append(m, cap, n, out->status_text);
    n = text_append(m, cap, n, " version ");
    text_append(m, cap, n, version);
    parse_one_line(m);
    return SEQR_OK;
}

/* Frees every text a tree reading gathered (they are malloc'd). */
static void parse_status_texts_free(parse_status_texts *t)
{
    const char **all[] = {&t->status,
                          &t->version,
                          &t->ers_reference,
                          &t->terminal_id,
                          &t->payment_date,
                          &t->invoice_reference,
                          &t->payment_reference,
                          &t->payer_terminal_id,
                          &t->receiver_name,
                          &t->title,
                          &t->client_invoice_id,
                          &t->total_value,
                          &t->total_currency};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        free((char *)*all[i]);
        *all[i] = NULL;
    }
    for (int i = 0; i < t->n_tokens; i++) {
        free((char *)t->tokens[i].description);
        free((char *)t->tokens[i].id);
        free((char *)t->tokens[i].value);
        free((char *)t->tokens[i].status);
    }
    t->n_tokens = 0;
}

seqr_err seqr_parse_get_payment_status_tree(const char *data, size_t len, seqr_payment_status *out,
                                            seqr_result *res)
{
    const char *op = "getPaymentStatus";
    xmlDocPtr doc = NULL;
    xmlNodePtr ret = NULL;
    parse_status_texts t;
    memset(&t, 0, sizeof t);
    memset(out, 0, sizeof *out);
    seqr_err e = parse_open(op, data, len, &doc, &ret, res);
    if (e != SEQR_OK)
        goto cleanup;

    t.status = seqr_xml_child_text(ret, "status");
    t.version = seqr_xml_child_text(ret, "version");
    t.ers_reference = seqr_xml_child_text(ret, "ersReference");
    xmlNodePtr receipt = seqr_xml_child(ret, "receipt");
    t.has_receipt = receipt != NULL;
    if (receipt != NULL) {
        t.terminal_id = seqr_xml_child_text(receipt, "terminalId");
        t.payment_date = seqr_xml_child_text(receipt, "paymentDate");
        t.invoice_reference = seqr_xml_child_text(receipt, "invoiceReference");
        t.payment_reference = seqr_xml_child_text(receipt, "paymentReference");
        t.payer_terminal_id = seqr_xml_child_text(receipt, "payerTerminalId");
        t.receiver_name = seqr_xml_child_text(receipt, "receiverName");
        xmlNodePtr inv = seqr_xml_child(receipt, "invoice");
        t.has_invoice = inv != NULL;
        if (inv != NULL) {
            t.title = seqr_xml_child_text(inv, "title");
            t.client_invoice_id = seqr_xml_child_text(inv, "clientInvoiceId");
            xmlNodePtr total = seqr_xml_child(inv, "totalAmount");
            t.has_total = total != NULL;
            if (total != NULL) {
                t.total_value = seqr_xml_child_text(total, "value");
                t.total_currency = seqr_xml_child_text(total, "currency");
            }
        }
    }
    for (xmlNodePtr n = seqr_xml_child(ret, "customerTokens");
         n != NULL && t.n_tokens < SEQR_MAX_TOKENS; n = seqr_xml_next(n, "customerTokens")) {
        parse_token_texts *tt = &t.tokens[t.n_tokens++];
        tt->description = seqr_xml_child_text(n, "description");
        tt->id = seqr_xml_child_text(n, "id");
        tt->value = seqr_xml_child_text(n, "value");
        tt->status = seqr_xml_child_text(n, "status");
    }
    e = parse_status_verdict(op, &t, out, res);

cleanup:
    if (e != SEQR_OK)
        memset(out, 0, sizeof *out);
    parse_status_texts_free(&t);
    if (doc != NULL)
        xmlFreeDoc(doc);
    return e;
}

/* --- getPaymentStatus without a tree ---
 * A streaming read (seqr_xml_read) follows where it is in the answer with
 * one kind per open element and keeps the text of the first element of
 * each name that a tree reading would look at. A text is kept only as far
 * as its check can need it: leading whitespace dropped, then up to the
 * size of its destination, plus one marker byte when more than whitespace
 * follows (its check then sees it is too long, and cuts the same bytes). So
 * a hostile answer costs no memory beyond a fixed arena on the stack. */

typedef enum {
    PK_OTHER = 0,
    PK_ENVELOPE,
    PK_BODY,
    PK_FAULT,
    PK_OP, /* {SEQR_XML_NS}getPaymentStatusResponse */
    PK_RETURN,
    PK_RECEIPT,
    PK_INVOICE,
    PK_TOTAL,
    PK_TOKEN
} parse_kind;

/* The texts a streaming read keeps. */
typedef enum {
    PS_FAULT_CODE,
    PS_FAULT_STRING,
    PS_RESULT_CODE,
    PS_RESULT_DESCRIPTION,
    PS_STATUS,
    PS_VERSION,
    PS_ERS_REFERENCE,
    PS_TERMINAL_ID,
    PS_PAYMENT_DATE,
    PS_INVOICE_REFERENCE,
    PS_PAYMENT_REFERENCE,
    PS_PAYER_TERMINAL_ID,
    PS_RECEIVER_NAME,
    PS_TITLE,
    PS_CLIENT_INVOICE_ID,
    PS_TOTAL_VALUE,
    PS_TOTAL_CURRENCY,
    PS_TOKEN_DESCRIPTION, /* PS_TOKEN_DESCRIPTION + 4 * token: description, id, value, status */
    PS_SLOTS = PS_TOKEN_DESCRIPTION + 4 * SEQR_MAX_TOKENS
} parse_slot;

typedef struct {
    parse_kind parent;
    const char *name;
    parse_slot slot; /* for a token: its description's slot, the others follow */
    size_t keep;     /* bytes its check can need */
    bool raw;        /* kept as is (a fault's texts are not trimmed) */
} parse_slot_info;

static const parse_slot_info parse_slots[] = {
    {PK_FAULT, "faultcode", PS_FAULT_CODE, sizeof((seqr_result *)0)->fault_code - 1, true},
    {PK_FAULT, "faultstring", PS_FAULT_STRING, sizeof((seqr_result *)0)->fault_string - 1, true},
    {PK_RETURN, "resultCode", PS_RESULT_CODE, PARSE_INT_MAX, false},
    {PK_RETURN, "resultDescription", PS_RESULT_DESCRIPTION, sizeof((seqr_result *)0)->description,
     false},
    {PK_RETURN, "status", PS_STATUS, sizeof((seqr_payment_status *)0)->status_text, false},
    {PK_RETURN, "version", PS_VERSION, PARSE_INT_MAX, false},
    {PK_RETURN, "ersReference", PS_ERS_REFERENCE, sizeof((seqr_payment_status *)0)->ers_reference,
     false},
    {PK_RECEIPT, "terminalId", PS_TERMINAL_ID, sizeof((seqr_receipt *)0)->terminal_id, false},
    {PK_RECEIPT, "paymentDate", PS_PAYMENT_DATE, sizeof((seqr_receipt *)0)->payment_date, false},
    {PK_RECEIPT, "invoiceReference", PS_INVOICE_REFERENCE,
     sizeof((seqr_receipt *)0)->invoice_reference, false},
    {PK_RECEIPT, "paymentReference", PS_PAYMENT_REFERENCE,
     sizeof((seqr_receipt *)0)->payment_reference, false},
    {PK_RECEIPT, "payerTerminalId", PS_PAYER_TERMINAL_ID,
     sizeof((seqr_receipt *)0)->payer_terminal_id, false},
    {PK_RECEIPT, "receiverName", PS_RECEIVER_NAME, sizeof((seqr_receipt *)0)->receiver_name, false},
    {PK_INVOICE, "title", PS_TITLE, sizeof((seqr_receipt *)0)->title, false},
    {PK_INVOICE, "clientInvoiceId", PS_CLIENT_INVOICE_ID,
     sizeof((seqr_receipt *)0)->client_invoice_id, false},
    {PK_TOTAL, "value", PS_TOTAL_VALUE, MONEY_BUFLEN, false},
    {PK_TOTAL, "currency", PS_TOTAL_CURRENCY, sizeof((seqr_receipt *)0)->currency, false},
    {PK_TOKEN, "description", PS_TOKEN_DESCRIPTION, sizeof((seqr_token *)0)->description, false},
    {PK_TOKEN, "id", PS_TOKEN_DESCRIPTION + 1, sizeof((seqr_token *)0)->id, false},
    {PK_TOKEN, "value", PS_TOKEN_DESCRIPTION + 2, sizeof((seqr_token *)0)->value, false},
    {PK_TOKEN, "status", PS_TOKEN_DESCRIPTION + 3, PARSE_INT_MAX, false},
};

/* Elements deeper than this are never looked at (the deepest text kept is
 * Envelope/Body/op/return/receipt/invoice/totalAmount/value). */
#define PARSE_KIND_DEPTH 16
/* Room for every slot once, each with its marker byte and NUL. */
#define PARSE_ARENA 8192

typedef struct {
    const char *want; /* the operation element's name */
    int depth;        /* of the element open now, 0 outside the root */
    parse_kind kind[PARSE_KIND_DEPTH + 1];
    bool body_seen, body_child_seen, return_seen, receipt_seen, invoice_seen, total_seen;
    parse_head head;
    char body_name[65]; /* as much as the message shows */
    bool has_receipt, has_invoice, has_total;
    int n_tokens;
    int slot_off[PS_SLOTS]; /* where a kept text starts in arena; -1 absent */
    /* the text being kept: its slot (-1 none), element depth and state */
    int cur_slot, cur_depth;
    size_t cur_keep, cur_len;
    bool cur_raw, cur_started, cur_more;
    size_t arena_len;
    char arena[PARSE_ARENA];
} parse_stream;

static bool parse_name_is(const char *name, const char *want)
{
    return strcmp(name, want) == 0;
}

static bool parse_ns_is(const char *ns, const char *want)
{
    return ns != NULL && strcmp(ns, want) == 0;
}

/* Starts keeping the text of an element for slot (the first of its name). */
static void parse_stream_keep(parse_stream *ps, int slot, size_t keep, bool raw)
{
    if (ps->slot_off[slot] >= 0 || ps->arena_len + keep + 2 > sizeof ps->arena)
        return; /* not the first; the arena holds every slot once */
    ps->slot_off[slot] = (int)ps->arena_len;
    ps->cur_slot = slot;
    ps->cur_depth = ps->depth;
    ps->cur_keep = keep;
    ps->cur_len = 0;
    ps->cur_raw = raw;
    ps->cur_started = raw;
    ps->cur_more = false;
}

static void parse_stream_text(void *ud, const char *s, size_t len)
{
    parse_stream *ps = ud;
    if (ps->cur_slot < 0 || ps->cur_more)
        return; /* nothing kept, or nothing more can change the verdict */
    char *dst = ps->arena + ps->slot_off[ps->cur_slot];
    for (size_t i = 0; i < len; i++) {
        if (!ps->cur_started) {
            if (parse_is_space(s[i]))
                continue;
            ps->cur_started = true;
        }
        if (ps->cur_len < ps->cur_keep) {
            dst[ps->cur_len++] = s[i];
        } else if (ps->cur_raw) {
            return; /* a fault's text is cut here */
        } else if (!parse_is_space(s[i])) {
            ps->cur_more = true;
            return;
        }
    }
}

/* Ends the text being kept: NUL-terminated, with the marker byte if more
 * than whitespace followed what was kept. */
static void parse_stream_keep_end(parse_stream *ps)
{
    char *dst = ps->arena + ps->slot_off[ps->cur_slot];
    size_t n = ps->cur_len;
    if (ps->cur_more)
        dst[n++] = 'x';
    dst[n++] = '\0';
    ps->arena_len += n;
    ps->cur_slot = -1;
}

/* The kind of a new element whose parent is of kind parent. */
static parse_kind parse_stream_kind(parse_stream *ps, parse_kind parent, const char *name,
                                    const char *ns)
{
    switch (parent) {
    case PK_OTHER:
        if (ps->depth == 1) {
            ps->head.envelope =
                parse_name_is(name, "Envelope") && parse_ns_is(ns, SEQR_XML_SOAP_NS);
            return ps->head.envelope ? PK_ENVELOPE : PK_OTHER;
        }
        return PK_OTHER;
    case PK_ENVELOPE:
        if (ps->body_seen || !parse_name_is(name, "Body") || !parse_ns_is(ns, SEQR_XML_SOAP_NS))
            return PK_OTHER;
        ps->body_seen = true;
        return PK_BODY;
    case PK_BODY:
        if (ps->body_child_seen)
            return PK_OTHER;
        ps->body_child_seen = true;
        text_copy(ps->body_name, sizeof ps->body_name, name);
        ps->head.body_in_seqr_ns = parse_ns_is(ns, SEQR_XML_NS);
        if (parse_name_is(name, "Fault") && parse_ns_is(ns, SEQR_XML_SOAP_NS)) {
            ps->head.fault = true;
            return PK_FAULT;
        }
        return parse_name_is(name, ps->want) && ps->head.body_in_seqr_ns ? PK_OP : PK_OTHER;
    case PK_OP:
        if (ps->return_seen || !parse_name_is(name, "return"))
            return PK_OTHER;
        ps->return_seen = true;
        return PK_RETURN;
    case PK_RETURN:
        if (!ps->receipt_seen && parse_name_is(name, "receipt")) {
            ps->receipt_seen = true;
            return PK_RECEIPT;
        }
        if (ps->n_tokens < SEQR_MAX_TOKENS && parse_name_is(name, "customerTokens")) {
            ps->n_tokens++;
            return PK_TOKEN;
        }
        return PK_OTHER;
    case PK_RECEIPT:
        if (ps->invoice_seen || !parse_name_is(name, "invoice"))
            return PK_OTHER;
        ps->invoice_seen = true;
        return PK_INVOICE;
    case PK_INVOICE:
        if (ps->total_seen || !parse_name_is(name, "totalAmount"))
            return PK_OTHER;
        ps->total_seen = true;
        return PK_TOTAL;
    case PK_FAULT:
    case PK_TOTAL:
    case PK_TOKEN:
        return PK_OTHER;
    }
    return PK_OTHER;
}

static void parse_stream_start(void *ud, const char *name, const char *ns)
{
    parse_stream *ps = ud;
    ps->depth++;
    if (ps->cur_slot >= 0 || ps->depth > PARSE_KIND_DEPTH)
        return; /* inside a kept text, or deeper than anything looked at */
    parse_kind parent = ps->kind[ps->depth - 1];
    parse_kind k = parse_stream_kind(ps, parent, name, ns);
    ps->kind[ps->depth] = k;
    if (k != PK_OTHER)
        return;
    for (size_t i = 0; i < sizeof parse_slots / sizeof parse_slots[0]; i++) {
        const parse_slot_info *si = &parse_slots[i];
        if (si->parent != parent || !parse_name_is(name, si->name))
            continue;
        int slot = (int)si->slot;
        if (parent == PK_TOKEN)
            slot += 4 * (ps->n_tokens - 1);
        parse_stream_keep(ps, slot, si->keep, si->raw);
        return;
    }
}

static void parse_stream_end(void *ud)
{
    parse_stream *ps = ud;
    if (ps->cur_slot >= 0 && ps->depth == ps->cur_depth)
        parse_stream_keep_end(ps);
    if (ps->depth <= PARSE_KIND_DEPTH)
        ps->kind[ps->depth] = PK_OTHER;
    ps->depth--;
}

/* A kept text, or NULL when its element was absent. */
static const char *parse_stream_get(const parse_stream *ps, int slot)
{
    return ps->slot_off[slot] >= 0 ? ps->arena + ps->slot_off[slot] : NULL;
}

seqr_err seqr_parse_get_payment_status(const char *data, size_t len, seqr_payment_status *out,
                                       seqr_result *res)
{
    const char *op = "getPaymentStatus";
    char why[300];
    seqr_err e = SEQR_ERR_BAD_ANSWER;
    long http = res->http_status;
    parse_stream ps;
    parse_status_texts t;

    seqr_result_reset(res);
    res->http_status = http;
    memset(out, 0, sizeof *out);
    if (len == 0 || data == NULL) {
        e = parse_bad(res, op, "empty answer");
        goto cleanup;
    }
    memset(&ps, 0, offsetof(parse_stream, arena));
    ps.want = "getPaymentStatusResponse";
    ps.cur_slot = -1;
    for (int i = 0; i < PS_SLOTS; i++)
        ps.slot_off[i] = -1;
    seqr_xml_sax sax = {parse_stream_start, parse_stream_end, parse_stream_text, &ps};
    if (!seqr_xml_read(data, len, &sax, why, sizeof why)) {
        e = parse_bad(res, op, why);
        goto cleanup;
    }

    parse_head *h = &ps.head;
    h->envelope = h->envelope && ps.body_child_seen;
    h->body_name = ps.body_name;
    h->fault_code = parse_stream_get(&ps, PS_FAULT_CODE);
    h->fault_string = parse_stream_get(&ps, PS_FAULT_STRING);
    h->has_return = ps.return_seen;
    h->result_code = parse_stream_get(&ps, PS_RESULT_CODE);
    h->result_description = parse_stream_get(&ps, PS_RESULT_DESCRIPTION);
    e = parse_head_verdict(op, h, res);
    if (e != SEQR_OK)
        goto cleanup;

    memset(&t, 0, sizeof t);
    t.status = parse_stream_get(&ps, PS_STATUS);
    t.version = parse_stream_get(&ps, PS_VERSION);
    t.ers_reference = parse_stream_get(&ps, PS_ERS_REFERENCE);
    t.has_receipt = ps.receipt_seen;
    t.terminal_id = parse_stream_get(&ps, PS_TERMINAL_ID);
    t.payment_date = parse_stream_get(&ps, PS_PAYMENT_DATE);
    t.invoice_reference = parse_stream_get(&ps, PS_INVOICE_REFERENCE);
    t.payment_reference = parse_stream_get(&ps, PS_PAYMENT_REFERENCE);
    t.payer_terminal_id = parse_stream_get(&ps, PS_PAYER_TERMINAL_ID);
    t.receiver_name = parse_stream_get(&ps, PS_RECEIVER_NAME);
    t.has_invoice = ps.invoice_seen;
    t.title = parse_stream_get(&ps, PS_TITLE);
    t.client_invoice_id = parse_stream_get(&ps, PS_CLIENT_INVOICE_ID);
    t.has_total = ps.total_seen;
    t.total_value = parse_stream_get(&ps, PS_TOTAL_VALUE);
    t.total_currency = parse_stream_get(&ps, PS_TOTAL_CURRENCY);
    t.n_tokens = ps.n_tokens;
    for (int i = 0; i < ps.n_tokens; i++) {
        int base = PS_TOKEN_DESCRIPTION + 4 * i;
        t.tokens[i].description = parse_stream_get(&ps, base);
        t.tokens[i].id = parse_stream_get(&ps, base + 1);
        t.tokens[i].value = parse_stream_get(&ps, base + 2);
        t.tokens[i].status = parse_stream_get(&ps, base + 3);
    }
    e = parse_status_verdict(op, &t, out, res);

cleanup:
    if (e != SEQR_OK)
        memset(out, 0, sizeof *out);
    return e;
}

seqr_err seqr_parse_refund_payment(const char *data, size_t len, seqr_refund_answer *out,
                                   seqr_result *res)
{
    const char *op = "refundPayment";
    xmlDocPtr doc = NULL;
    xmlNodePtr ret = NULL;
    memset(out, 0, sizeof *out);
    seqr_err e = parse_open(op, data, len, &doc, &ret, res);
    if (e != SEQR_OK)
        goto cleanup;
    e = parse_optional_id(op, ret, "ersReference", out->ers_reference, sizeof out->ers_reference,
                          res);
cleanup:
    if (e != SEQR_OK)
        memset(out, 0, sizeof *out);
    if (doc != NULL)
        xmlFreeDoc(doc);
    return e;
}

seqr_err seqr_parse_mark_transaction_period(const char *data, size_t len, char period_id[static 64],
                                            seqr_result *res)
{
    const char *op = "markTransactionPeriod";
    xmlDocPtr doc = NULL;
    xmlNodePtr ret = NULL;
    period_id[0] = '\0';
    seqr_err e = parse_open(op, data, len, &doc, &ret, res);
    if (e != SEQR_OK)
        goto cleanup;
    e = parse_required_id(op, ret, "transactionPeriodId", period_id, 64, res);
cleanup:
    if (e != SEQR_OK)
        period_id[0] = '\0';
    if (doc != NULL)
        xmlFreeDoc(doc);
    return e;
}

seqr_err seqr_parse_register_terminal(const char *data, size_t len, char terminal_id[static 64],
                                      seqr_result *res)
{
    const char *op = "registerTerminal";
    xmlDocPtr doc = NULL;
    xmlNodePtr ret = NULL;
    terminal_id[0] = '\0';
    seqr_err e = parse_open(op, data, len, &doc, &ret, res);
    if (e != SEQR_OK)
        goto cleanup;
    e = parse_required_id(op, ret, "terminalId", terminal_id, 64, res);
cleanup:
    if (e != SEQR_OK)
        terminal_id[0] = '\0';
    if (doc != NULL)
        xmlFreeDoc(doc);
    return e;
}

seqr_err seqr_parse_execute_report(const char *data, size_t len, seqr_report *out, seqr_result *res)
{
    const char *op = "executeReport";
    xmlDocPtr doc = NULL;
    xmlNodePtr ret = NULL;
    memset(out, 0, sizeof *out);
    seqr_err e = parse_open(op, data, len, &doc, &ret, res);
    if (e != SEQR_OK)
        goto cleanup;
    xmlNodePtr report = seqr_xml_child(ret, "report");
    if (report == NULL) {
        e = parse_bad(res, op, "no report");
        goto cleanup;
    }
    out->title = seqr_xml_child_text(report, "title");
    out->mime_type = seqr_xml_child_text(report, "mimeType");
    out->content_string = seqr_xml_child_text(report, "contentString");
    out->content = seqr_xml_child_text(report, "content");
cleanup:
    if (e != SEQR_OK)
        seqr_report_free(out);
    if (doc != NULL)
        xmlFreeDoc(doc);
    return e;
}
