/* seqr/parse.c — answer parsers for every SEQR operation; see parse.h.
 *
 * parse_open() does what all answers share (XML, envelope, fault, operation
 * element, <return>, resultCode); the per-operation parsers then read their
 * fields from <return>. Also home of the seqr_status_* helpers and
 * seqr_report_free(), which are pure functions of answers. */
#include "parse.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../money.h"
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

/* Copies the trimmed text of parent's first child named name into dst
 * ("" when absent). Text fields (truncate) are cut to fit; ids are not. */
static parse_field_rc parse_field(xmlNodePtr parent, const char *name, char *dst, size_t dstlen,
                                  bool truncate)
{
    dst[0] = '\0';
    char *t = seqr_xml_child_text(parent, name);
    if (t == NULL)
        return FIELD_ABSENT;
    bool fits = parse_copy_trimmed(t, dst, dstlen, truncate);
    free(t);
    if (fits || truncate)
        return FIELD_OK;
    return FIELD_TOO_LONG;
}

/* Strict decimal integer (optional '-', digits; surrounding whitespace ok). */
static bool parse_int64(const char *text, int64_t *out)
{
    char tmp[32];
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

/* Reads an integer child. Returns FIELD_ABSENT, FIELD_OK, or FIELD_TOO_LONG
 * for text that is not an integer in [min, max]. */
static parse_field_rc parse_int_field(xmlNodePtr parent, const char *name, int64_t min, int64_t max,
                                      int64_t *out)
{
    char *t = seqr_xml_child_text(parent, name);
    if (t == NULL)
        return FIELD_ABSENT;
    int64_t v = 0;
    bool ok = parse_int64(t, &v) && v >= min && v <= max;
    free(t);
    if (!ok)
        return FIELD_TOO_LONG;
    *out = v;
    return FIELD_OK;
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
    xmlDocPtr doc = NULL;
    seqr_err e = SEQR_ERR_BAD_ANSWER;
    long http = res->http_status;

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
    if (body == NULL) {
        e = parse_bad(res, op, "not a SOAP 1.1 envelope with a body");
        goto cleanup;
    }
    if (seqr_xml_fault(body, res->fault_code, sizeof res->fault_code, res->fault_string,
                       sizeof res->fault_string)) {
        parse_one_line(res->fault_code);
        parse_one_line(res->fault_string);
        parse_message(res, "%s: SOAP fault %s: %s", op,
                      res->fault_code[0] ? res->fault_code : "(no faultcode)",
                      res->fault_string[0] ? res->fault_string : "(no faultstring)");
        e = SEQR_ERR_FAULT;
        goto cleanup;
    }
    snprintf(want, sizeof want, "%sResponse", op);
    if (strcmp(seqr_xml_name(body), want) != 0 || body->ns == NULL || body->ns->href == NULL ||
        strcmp((const char *)body->ns->href, SEQR_XML_NS) != 0) {
        snprintf(why, sizeof why, "expected <%s> in namespace %s, got <%.64s>", want, SEQR_XML_NS,
                 seqr_xml_name(body));
        e = parse_bad(res, op, why);
        goto cleanup;
    }
    xmlNodePtr ret = seqr_xml_child(body, "return");
    if (ret == NULL) {
        e = parse_bad(res, op, "no <return> element");
        goto cleanup;
    }
    int64_t code = 0;
    parse_field_rc rc = parse_int_field(ret, "resultCode", -2147483647, 2147483647, &code);
    if (rc == FIELD_ABSENT) {
        e = parse_bad(res, op, "no resultCode");
        goto cleanup;
    }
    if (rc != FIELD_OK) {
        e = parse_bad(res, op, "resultCode is not an integer");
        goto cleanup;
    }
    res->code = (int)code;
    parse_field(ret, "resultDescription", res->description, sizeof res->description, true);
    parse_one_line(res->description);
    const char *name = res->description[0] ? res->description : seqr_code_name(res->code);
    if (res->code == 0) {
        parse_message(res, "%s: %s", op, name);
        e = SEQR_OK;
    } else {
        const seqr_code_info *info = seqr_code_lookup(res->code);
        if (info != NULL)
            parse_message(res, "%s: SEQR answered %d %s (%s)", op, res->code, name, info->meaning);
        else
            parse_message(res, "%s: SEQR answered %d %s", op, res->code, name);
        e = SEQR_ERR_RESULT;
    }
    *doc_out = doc;
    *ret_out = ret;
    doc = NULL;

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

/* Reads <receipt> (and its <invoice>) into r. */
static seqr_err parse_receipt(const char *op, xmlNodePtr node, seqr_receipt *r, seqr_result *res)
{
    seqr_err e = SEQR_OK;
    r->present = true;
    e = parse_optional_id(op, node, "terminalId", r->terminal_id, sizeof r->terminal_id, res);
    if (e == SEQR_OK)
        e = parse_optional_id(op, node, "paymentDate", r->payment_date, sizeof r->payment_date,
                              res);
    if (e == SEQR_OK)
        e = parse_optional_id(op, node, "invoiceReference", r->invoice_reference,
                              sizeof r->invoice_reference, res);
    if (e == SEQR_OK)
        e = parse_optional_id(op, node, "paymentReference", r->payment_reference,
                              sizeof r->payment_reference, res);
    if (e == SEQR_OK)
        e = parse_optional_id(op, node, "payerTerminalId", r->payer_terminal_id,
                              sizeof r->payer_terminal_id, res);
    if (e != SEQR_OK)
        return e;
    parse_field(node, "receiverName", r->receiver_name, sizeof r->receiver_name, true);

    xmlNodePtr inv = seqr_xml_child(node, "invoice");
    if (inv == NULL)
        return SEQR_OK;
    parse_field(inv, "title", r->title, sizeof r->title, true);
    e = parse_optional_id(op, inv, "clientInvoiceId", r->client_invoice_id,
                          sizeof r->client_invoice_id, res);
    if (e != SEQR_OK)
        return e;
    xmlNodePtr total = seqr_xml_child(inv, "totalAmount");
    if (total == NULL)
        return SEQR_OK;
    char value[MONEY_BUFLEN];
    if (parse_field(total, "value", value, sizeof value, false) != FIELD_OK ||
        money_parse(value, &r->total) != MONEY_OK)
        return parse_bad(res, op, "receipt totalAmount value is not a plain #.## amount");
    if (parse_field(total, "currency", r->currency, sizeof r->currency, false) != FIELD_OK ||
        strlen(r->currency) != 3)
        return parse_bad(res, op, "receipt totalAmount currency is not a 3-letter code");
    r->has_total = true;
    return SEQR_OK;
}

/* Reads one <customerTokens> element. */
static seqr_err parse_token(const char *op, xmlNodePtr node, seqr_token *t, seqr_result *res)
{
    parse_field(node, "description", t->description, sizeof t->description, true);
    seqr_err e = parse_optional_id(op, node, "id", t->id, sizeof t->id, res);
    if (e == SEQR_OK)
        e = parse_optional_id(op, node, "value", t->value, sizeof t->value, res);
    if (e != SEQR_OK)
        return e;
    int64_t status = 0;
    if (parse_int_field(node, "status", -1000000, 1000000, &status) == FIELD_TOO_LONG)
        return parse_bad(res, op, "customerTokens status is not an integer");
    t->status = (int)status;
    return SEQR_OK;
}

seqr_err seqr_parse_get_payment_status(const char *data, size_t len, seqr_payment_status *out,
                                       seqr_result *res)
{
    const char *op = "getPaymentStatus";
    xmlDocPtr doc = NULL;
    xmlNodePtr ret = NULL;
    memset(out, 0, sizeof *out);
    seqr_err e = parse_open(op, data, len, &doc, &ret, res);
    if (e != SEQR_OK)
        goto cleanup;

    if (parse_field(ret, "status", out->status_text, sizeof out->status_text, true) ==
            FIELD_ABSENT ||
        out->status_text[0] == '\0') {
        e = parse_bad(res, op, "no status");
        goto cleanup;
    }
    out->status = seqr_status_parse(out->status_text);

    parse_field_rc rc = parse_int_field(ret, "version", 0, INT64_MAX, &out->version);
    if (rc != FIELD_OK) {
        e = parse_bad(res, op,
                      rc == FIELD_ABSENT ? "no version" : "version is not a non-negative integer");
        goto cleanup;
    }
    e = parse_optional_id(op, ret, "ersReference", out->ers_reference, sizeof out->ers_reference,
                          res);
    if (e != SEQR_OK)
        goto cleanup;

    xmlNodePtr receipt = seqr_xml_child(ret, "receipt");
    if (receipt != NULL) {
        e = parse_receipt(op, receipt, &out->receipt, res);
        if (e != SEQR_OK)
            goto cleanup;
    }
    for (xmlNodePtr t = seqr_xml_child(ret, "customerTokens");
         t != NULL && out->n_tokens < SEQR_MAX_TOKENS; t = seqr_xml_next(t, "customerTokens")) {
        e = parse_token(op, t, &out->tokens[out->n_tokens], res);
        if (e != SEQR_OK)
            goto cleanup;
        out->n_tokens++;
    }
    /* parse_open's message said "getPaymentStatus: SUCCESS"; add the status. */
    parse_message(res, "%s: %s, status %s version %lld", op,
                  res->description[0] ? res->description : "SUCCESS", out->status_text,
                  (long long)out->version);

cleanup:
    if (e != SEQR_OK)
        memset(out, 0, sizeof *out);
    if (doc != NULL)
        xmlFreeDoc(doc);
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
