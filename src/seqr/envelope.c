/* seqr/envelope.c — request envelopes for every SEQR operation; see envelope.h.
 *
 * A builder threads an env_state through small helpers: the first problem
 * (invalid input or out of memory) is recorded there and every later helper
 * does nothing, so a builder checks the state once at the end. */
#include "envelope.h"

#include <libxml/xmlstring.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../money.h"
#include "xml.h"

typedef struct {
    seqr_err err; /* SEQR_OK until the first problem */
    char *msg;    /* caller's err buffer */
    size_t msglen;
} env_state;

static void env_fail(env_state *st, seqr_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void env_fail(env_state *st, seqr_err err, const char *fmt, ...)
{
    if (st->err != SEQR_OK)
        return;
    st->err = err;
    if (st->msg != NULL && st->msglen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(st->msg, st->msglen, fmt, ap);
        va_end(ap);
    }
}

static bool env_ok(const env_state *st)
{
    return st->err == SEQR_OK;
}

/* Number of UTF-8 characters in s (s already known to be valid UTF-8). */
static size_t env_utf8_chars(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xC0) != 0x80)
            n++;
    return n;
}

/* True when text can be carried by an XML 1.0 document: valid UTF-8 and no
 * control characters other than tab, newline and carriage return. */
static bool env_text_valid(const char *text)
{
    if (xmlCheckUTF8((const unsigned char *)text) == 0)
        return false;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        if (*p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r')
            return false;
    return true;
}

/* Records an error when text is NULL or empty. what names the field. */
static void env_require(env_state *st, const char *text, const char *what)
{
    if (text == NULL || text[0] == '\0')
        env_fail(st, SEQR_ERR_INVALID, "%s is required", what);
}

/* Appends an empty unqualified element. (xmlNewChild with a NULL namespace
 * would inherit the parent's namespace; the protocol wants the operation's
 * children without one.) */
static xmlNodePtr env_node(env_state *st, xmlNodePtr parent, const char *name)
{
    if (!env_ok(st) || parent == NULL)
        return NULL;
    xmlNodePtr n = xmlNewDocNode(parent->doc, NULL, BAD_CAST name, NULL);
    if (n == NULL) {
        env_fail(st, SEQR_ERR_INTERNAL, "out of memory building <%s>", name);
        return NULL;
    }
    if (xmlAddChild(parent, n) == NULL) {
        xmlFreeNode(n);
        env_fail(st, SEQR_ERR_INTERNAL, "cannot add <%s>", name);
        return NULL;
    }
    return n;
}

/* Appends <name>text</name> (escaped by libxml2); nothing when text is NULL. */
static xmlNodePtr env_text(env_state *st, xmlNodePtr parent, const char *name, const char *text)
{
    if (!env_ok(st) || parent == NULL || text == NULL)
        return NULL;
    if (!env_text_valid(text)) {
        env_fail(st, SEQR_ERR_INVALID, "%s is not valid UTF-8 text (or holds control characters)",
                 name);
        return NULL;
    }
    xmlNodePtr n = env_node(st, parent, name);
    if (n == NULL)
        return NULL;
    /* A text node holds the literal text; libxml2 escapes it on output. */
    xmlNodePtr t = xmlNewDocText(parent->doc, BAD_CAST text);
    if (t == NULL) {
        env_fail(st, SEQR_ERR_INTERNAL, "out of memory building <%s>", name);
        return NULL;
    }
    if (xmlAddChild(n, t) == NULL) {
        xmlFreeNode(t);
        env_fail(st, SEQR_ERR_INTERNAL, "cannot add text to <%s>", name);
        return NULL;
    }
    return n;
}

static void env_int(env_state *st, xmlNodePtr parent, const char *name, long long value)
{
    char t[32];
    snprintf(t, sizeof t, "%lld", value);
    env_text(st, parent, name, t);
}

/* Appends <name><value>#.##</value><currency>XXX</currency></name>. */
static void env_amount(env_state *st, xmlNodePtr parent, const char *name, int64_t minor,
                       const char *currency)
{
    char m[MONEY_BUFLEN];
    if (!env_ok(st))
        return;
    if (currency == NULL || !money_currency_valid(currency)) {
        env_fail(st, SEQR_ERR_INVALID, "%s: currency \"%s\" is not an ISO 4217 code", name,
                 currency ? currency : "");
        return;
    }
    xmlNodePtr n = env_node(st, parent, name);
    env_text(st, n, "value", money_format(minor, m));
    env_text(st, n, "currency", currency);
}

bool seqr_envelope_format_time(time_t t, char out[static 32])
{
    struct tm tm;
    out[0] = '\0';
    if (gmtime_r(&t, &tm) == NULL)
        return false;
    if (tm.tm_year + 1900 < 1 || tm.tm_year + 1900 > 9999)
        return false;
    return strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) > 0;
}

/* Creates the envelope and the operation element; NULL doc on failure. */
static xmlDocPtr env_new(env_state *st, const char *op, xmlNodePtr *op_out)
{
    xmlDocPtr doc = NULL;
    xmlNodePtr env = NULL;
    xmlNodePtr opn = NULL;
    xmlNsPtr soap = NULL;
    xmlNsPtr ext = NULL;

    *op_out = NULL;
    doc = xmlNewDoc(BAD_CAST "1.0");
    if (doc == NULL)
        goto oom;
    env = xmlNewNode(NULL, BAD_CAST "Envelope");
    if (env == NULL)
        goto oom;
    xmlDocSetRootElement(doc, env);
    soap = xmlNewNs(env, BAD_CAST SEQR_XML_SOAP_NS, BAD_CAST "soapenv");
    ext = xmlNewNs(env, BAD_CAST SEQR_XML_NS, BAD_CAST "ext");
    if (soap == NULL || ext == NULL)
        goto oom;
    xmlSetNs(env, soap);
    if (xmlNewChild(env, soap, BAD_CAST "Header", NULL) == NULL)
        goto oom;
    xmlNodePtr body = xmlNewChild(env, soap, BAD_CAST "Body", NULL);
    if (body == NULL)
        goto oom;
    opn = xmlNewChild(body, ext, BAD_CAST op, NULL);
    if (opn == NULL)
        goto oom;
    *op_out = opn;
    return doc;

oom:
    env_fail(st, SEQR_ERR_INTERNAL, "out of memory building %s", op);
    if (doc != NULL)
        xmlFreeDoc(doc);
    return NULL;
}

static void env_context(env_state *st, xmlNodePtr op, const seqr_context *ctx)
{
    if (!env_ok(st))
        return;
    if (ctx == NULL) {
        env_fail(st, SEQR_ERR_INVALID, "no client context");
        return;
    }
    env_require(st, ctx->channel, "context.channel");
    env_require(st, ctx->client_id, "context.clientId");
    env_require(st, ctx->client_reference, "context.clientReference");
    env_require(st, ctx->principal_id, "context.initiatorPrincipalId.id");
    env_require(st, ctx->password, "context.password");
    if (ctx->principal_type == SEQR_PRINCIPAL_RESELLERUSER)
        env_require(st, ctx->user_id, "context.initiatorPrincipalId.userId");
    if (ctx->principal_type != SEQR_PRINCIPAL_TERMINALID &&
        ctx->principal_type != SEQR_PRINCIPAL_RESELLERUSER)
        env_fail(st, SEQR_ERR_INVALID, "context: unknown principal type %d",
                 (int)ctx->principal_type);
    if (!env_ok(st))
        return;
    if (env_text_valid(ctx->client_reference) &&
        env_utf8_chars(ctx->client_reference) > SEQR_CLIENT_REFERENCE_MAX)
        env_fail(st, SEQR_ERR_INVALID, "context.clientReference is longer than %d characters",
                 SEQR_CLIENT_REFERENCE_MAX);
    if (ctx->client_comment != NULL && env_text_valid(ctx->client_comment) &&
        env_utf8_chars(ctx->client_comment) > SEQR_CLIENT_COMMENT_MAX)
        env_fail(st, SEQR_ERR_INVALID, "context.clientComment is longer than %d characters",
                 SEQR_CLIENT_COMMENT_MAX);

    xmlNodePtr c = env_node(st, op, "context");
    env_text(st, c, "channel", ctx->channel);
    env_text(st, c, "clientComment", ctx->client_comment);
    env_text(st, c, "clientId", ctx->client_id);
    env_text(st, c, "clientReference", ctx->client_reference);
    env_text(st, c, "clientRequestTimeout", "0");
    xmlNodePtr p = env_node(st, c, "initiatorPrincipalId");
    env_text(st, p, "id", ctx->principal_id);
    if (ctx->principal_type == SEQR_PRINCIPAL_RESELLERUSER) {
        env_text(st, p, "type", "RESELLERUSER");
        env_text(st, p, "userId", ctx->user_id);
    } else {
        env_text(st, p, "type", "TERMINALID");
    }
    env_text(st, c, "password", ctx->password);
}

static bool env_payment_mode_valid(const char *mode)
{
    static const char *const modes[] = {"IMMEDIATE_DEBIT", "RESERVATION_DESIRED",
                                        "RESERVATION_REQUIRED",
                                        "RESERVATION_REQUIRED_PRELIMINARY_AMOUNT"};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
        if (strcmp(mode, modes[i]) == 0)
            return true;
    return false;
}

static void env_row(env_state *st, xmlNodePtr rows, const seqr_invoice_row *r, size_t index,
                    const char *currency)
{
    char q[MONEY_BUFLEN];
    if (!env_ok(st))
        return;
    if (r->quantity_milli <= 0) {
        env_fail(st, SEQR_ERR_INVALID, "invoice row %zu: itemQuantity must be greater than 0",
                 index + 1);
        return;
    }
    if (r->has_tax_rate && (r->tax_rate < 0 || r->tax_rate > 100)) {
        env_fail(st, SEQR_ERR_INVALID, "invoice row %zu: itemTaxRate must be 0..100", index + 1);
        return;
    }
    xmlNodePtr n = env_node(st, rows, "invoiceRow");
    env_text(st, n, "itemDescription", r->description);
    if (r->has_discount)
        env_amount(st, n, "itemDiscount", r->discount, currency);
    env_text(st, n, "itemEAN", r->ean);
    env_text(st, n, "itemQuantity", money_format_scaled(r->quantity_milli, MONEY_QTY_DECIMALS, q));
    env_text(st, n, "itemSKU", r->sku);
    if (r->has_tax_rate)
        env_int(st, n, "itemTaxRate", r->tax_rate);
    env_amount(st, n, "itemTotalAmount", r->total, currency);
    env_text(st, n, "itemUnit", r->unit);
    if (r->has_unit_price)
        env_amount(st, n, "itemUnitPrice", r->unit_price, currency);
}

/* Writes <invoice>. A refund invoice gets no defaults (paymentMode,
 * acknowledgmentMode, issueDate only when set). */
static void env_invoice(env_state *st, xmlNodePtr op, const seqr_invoice *inv, bool refund)
{
    char date[32];
    if (!env_ok(st))
        return;
    if (inv == NULL) {
        env_fail(st, SEQR_ERR_INVALID, "no invoice");
        return;
    }
    if (inv->currency == NULL || !money_currency_valid(inv->currency)) {
        env_fail(st, SEQR_ERR_INVALID, "invoice currency \"%s\" is not an ISO 4217 code",
                 inv->currency ? inv->currency : "");
        return;
    }
    if (inv->n_rows > 0 && inv->rows == NULL) {
        env_fail(st, SEQR_ERR_INVALID, "invoice has %zu rows but no row data", inv->n_rows);
        return;
    }
    if (refund ? inv->total <= 0 : inv->total < 0) {
        env_fail(st, SEQR_ERR_INVALID, "invoice totalAmount must be %s",
                 refund ? "greater than 0" : "0 or more");
        return;
    }
    if (inv->commit_reservation_timeout < 0) {
        env_fail(st, SEQR_ERR_INVALID, "commitReservationTimeout must not be negative");
        return;
    }
    const char *mode = inv->payment_mode;
    const char *ack = inv->ack_mode;
    if (!refund) {
        if (mode == NULL)
            mode = "IMMEDIATE_DEBIT";
        if (ack == NULL)
            ack = "NO_ACKNOWLEDGMENT";
    }
    if (mode != NULL && !env_payment_mode_valid(mode)) {
        env_fail(st, SEQR_ERR_INVALID, "unknown paymentMode \"%s\"", mode);
        return;
    }
    const char *issue = NULL;
    if (!refund || inv->issue_date != 0) {
        time_t t = inv->issue_date != 0 ? inv->issue_date : time(NULL);
        if (!seqr_envelope_format_time(t, date)) {
            env_fail(st, SEQR_ERR_INVALID, "issueDate is out of range");
            return;
        }
        issue = date;
    }

    xmlNodePtr n = env_node(st, op, "invoice");
    env_text(st, n, "paymentMode", mode);
    env_text(st, n, "acknowledgmentMode", ack);
    env_text(st, n, "issueDate", issue);
    env_text(st, n, "title", inv->title);
    env_text(st, n, "clientInvoiceId", inv->client_invoice_id);
    if (inv->n_rows > 0) {
        xmlNodePtr rows = env_node(st, n, "invoiceRows");
        for (size_t i = 0; i < inv->n_rows && env_ok(st); i++)
            env_row(st, rows, &inv->rows[i], i, inv->currency);
    }
    env_amount(st, n, "totalAmount", inv->total, inv->currency);
    env_text(st, n, "cashierId", inv->cashier_id);
    env_text(st, n, "footer", inv->footer);
    env_text(st, n, "backURL", inv->back_url);
    env_text(st, n, "notificationUrl", inv->notification_url);
    if (inv->commit_reservation_timeout > 0)
        env_int(st, n, "commitReservationTimeout", inv->commit_reservation_timeout);
}

static void env_tokens(env_state *st, xmlNodePtr op, const seqr_token_in *tokens, size_t n)
{
    if (!env_ok(st))
        return;
    if (n > 0 && tokens == NULL) {
        env_fail(st, SEQR_ERR_INVALID, "%zu tokens but no token data", n);
        return;
    }
    for (size_t i = 0; i < n && env_ok(st); i++) {
        const seqr_token_in *t = &tokens[i];
        if (t->id == NULL || t->id[0] == '\0') {
            env_fail(st, SEQR_ERR_INVALID, "token %zu: id is required", i + 1);
            return;
        }
        xmlNodePtr x = env_node(st, op, "tokens");
        env_text(st, x, "description", t->description);
        env_text(st, x, "id", t->id);
        env_int(st, x, "status", t->status);
        env_text(st, x, "value", t->value);
    }
}

static void env_params(env_state *st, xmlNodePtr op, const seqr_param *params, size_t n)
{
    if (!env_ok(st) || n == 0)
        return;
    if (params == NULL) {
        env_fail(st, SEQR_ERR_INVALID, "%zu parameters but no parameter data", n);
        return;
    }
    xmlNodePtr wrap = env_node(st, op, "parameters");
    xmlNodePtr map = env_node(st, wrap, "parameter");
    for (size_t i = 0; i < n && env_ok(st); i++) {
        if (params[i].key == NULL || params[i].key[0] == '\0' || params[i].value == NULL) {
            env_fail(st, SEQR_ERR_INVALID, "parameter %zu needs a key and a value", i + 1);
            return;
        }
        xmlNodePtr e = env_node(st, map, "entry");
        env_text(st, e, "key", params[i].key);
        env_text(st, e, "value", params[i].value);
    }
}

/* Common ending: hands doc to *out, or frees it and reports the error. */
static seqr_err env_finish(env_state *st, xmlDocPtr doc, xmlDocPtr *out)
{
    if (env_ok(st) && doc != NULL) {
        *out = doc;
        return SEQR_OK;
    }
    if (doc != NULL)
        xmlFreeDoc(doc);
    if (env_ok(st))
        env_fail(st, SEQR_ERR_INTERNAL, "out of memory");
    return st->err;
}

/* Starts a request: clears *out and err, creates the envelope and the context. */
static xmlDocPtr env_begin(env_state *st, const seqr_context *ctx, const char *op,
                           xmlNodePtr *op_out, xmlDocPtr *out, char *err, size_t errlen)
{
    st->err = SEQR_OK;
    st->msg = err;
    st->msglen = errlen;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    *out = NULL;
    xmlDocPtr doc = env_new(st, op, op_out);
    env_context(st, *op_out, ctx);
    return doc;
}

seqr_err seqr_envelope_send_invoice(const seqr_context *ctx, const seqr_invoice *inv,
                                    const seqr_token_in *tokens, size_t n_tokens, xmlDocPtr *out,
                                    char *err, size_t errlen)
{
    env_state st;
    xmlNodePtr op = NULL;
    xmlDocPtr doc = env_begin(&st, ctx, "sendInvoice", &op, out, err, errlen);
    env_invoice(&st, op, inv, false);
    env_tokens(&st, op, tokens, n_tokens);
    return env_finish(&st, doc, out);
}

seqr_err seqr_envelope_update_invoice(const seqr_context *ctx, const char *invoice_ref,
                                      const seqr_invoice *inv, const seqr_token_in *tokens,
                                      size_t n_tokens, xmlDocPtr *out, char *err, size_t errlen)
{
    env_state st;
    xmlNodePtr op = NULL;
    xmlDocPtr doc = env_begin(&st, ctx, "updateInvoice", &op, out, err, errlen);
    env_require(&st, invoice_ref, "invoiceReference");
    env_text(&st, op, "invoiceReference", invoice_ref);
    env_invoice(&st, op, inv, false);
    env_tokens(&st, op, tokens, n_tokens);
    return env_finish(&st, doc, out);
}

seqr_err seqr_envelope_get_payment_status(const seqr_context *ctx, const char *invoice_ref,
                                          int64_t invoice_version, xmlDocPtr *out, char *err,
                                          size_t errlen)
{
    env_state st;
    xmlNodePtr op = NULL;
    xmlDocPtr doc = env_begin(&st, ctx, "getPaymentStatus", &op, out, err, errlen);
    env_require(&st, invoice_ref, "invoiceReference");
    if (invoice_version < 0)
        env_fail(&st, SEQR_ERR_INVALID, "invoiceVersion must not be negative");
    env_text(&st, op, "invoiceReference", invoice_ref);
    env_int(&st, op, "invoiceVersion", (long long)invoice_version);
    return env_finish(&st, doc, out);
}

seqr_err seqr_envelope_cancel_invoice(const seqr_context *ctx, const char *invoice_ref,
                                      xmlDocPtr *out, char *err, size_t errlen)
{
    env_state st;
    xmlNodePtr op = NULL;
    xmlDocPtr doc = env_begin(&st, ctx, "cancelInvoice", &op, out, err, errlen);
    env_require(&st, invoice_ref, "invoiceReference");
    env_text(&st, op, "invoiceReference", invoice_ref);
    return env_finish(&st, doc, out);
}

seqr_err seqr_envelope_commit_reservation(const seqr_context *ctx, const char *invoice_ref,
                                          int64_t amount, const char *currency, xmlDocPtr *out,
                                          char *err, size_t errlen)
{
    env_state st;
    xmlNodePtr op = NULL;
    xmlDocPtr doc = env_begin(&st, ctx, "commitReservation", &op, out, err, errlen);
    env_require(&st, invoice_ref, "invoiceReference");
    if (amount < 0)
        env_fail(&st, SEQR_ERR_INVALID, "amount must not be negative");
    env_text(&st, op, "invoiceReference", invoice_ref);
    env_amount(&st, op, "amount", amount, currency);
    return env_finish(&st, doc, out);
}

seqr_err seqr_envelope_submit_payment_receipt(const seqr_context *ctx, const char *ers_reference,
                                              const char *mime_type, const char *receipt_type,
                                              const char *receipt_data_b64, xmlDocPtr *out,
                                              char *err, size_t errlen)
{
    env_state st;
    xmlNodePtr op = NULL;
    xmlDocPtr doc = env_begin(&st, ctx, "submitPaymentReceipt", &op, out, err, errlen);
    env_require(&st, ers_reference, "ersReference");
    /* The reference: "mimeType, receiptData, receiptType - all mandatory". */
    env_require(&st, mime_type, "receiptDocument/mimeType");
    env_require(&st, receipt_data_b64, "receiptDocument/receiptData");
    env_require(&st, receipt_type, "receiptDocument/receiptType");
    if (receipt_data_b64 != NULL) {
        for (const char *p = receipt_data_b64; *p && env_ok(&st); p++) {
            bool b64 = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                       (*p >= '0' && *p <= '9') || *p == '+' || *p == '/' || *p == '=' ||
                       *p == '\n' || *p == '\r';
            if (!b64)
                env_fail(&st, SEQR_ERR_INVALID, "receiptData is not base64");
        }
    }
    env_text(&st, op, "ersReference", ers_reference);
    xmlNodePtr d = env_node(&st, op, "receiptDocument");
    env_text(&st, d, "mimeType", mime_type);
    env_text(&st, d, "receiptData", receipt_data_b64);
    env_text(&st, d, "receiptType", receipt_type);
    return env_finish(&st, doc, out);
}

seqr_err seqr_envelope_refund_payment(const seqr_context *ctx, const char *ers_reference,
                                      const seqr_invoice *refund, xmlDocPtr *out, char *err,
                                      size_t errlen)
{
    env_state st;
    xmlNodePtr op = NULL;
    xmlDocPtr doc = env_begin(&st, ctx, "refundPayment", &op, out, err, errlen);
    env_require(&st, ers_reference, "ersReference");
    env_text(&st, op, "ersReference", ers_reference);
    env_invoice(&st, op, refund, true);
    return env_finish(&st, doc, out);
}

seqr_err seqr_envelope_mark_transaction_period(const seqr_context *ctx, const seqr_param *params,
                                               size_t n_params, xmlDocPtr *out, char *err,
                                               size_t errlen)
{
    env_state st;
    xmlNodePtr op = NULL;
    xmlDocPtr doc = env_begin(&st, ctx, "markTransactionPeriod", &op, out, err, errlen);
    env_params(&st, op, params, n_params);
    return env_finish(&st, doc, out);
}

seqr_err seqr_envelope_execute_report(const seqr_context *ctx, const char *report_id,
                                      const char *language, const seqr_param *params,
                                      size_t n_params, xmlDocPtr *out, char *err, size_t errlen)
{
    env_state st;
    xmlNodePtr op = NULL;
    xmlDocPtr doc = env_begin(&st, ctx, "executeReport", &op, out, err, errlen);
    env_require(&st, report_id, "reportId");
    env_require(&st, language, "language");
    env_text(&st, op, "reportId", report_id);
    env_text(&st, op, "language", language);
    env_params(&st, op, params, n_params);
    return env_finish(&st, doc, out);
}

seqr_err seqr_envelope_register_terminal(const seqr_context *ctx, const char *external_terminal_id,
                                         const char *password, const char *name, xmlDocPtr *out,
                                         char *err, size_t errlen)
{
    env_state st;
    xmlNodePtr op = NULL;
    xmlDocPtr doc = env_begin(&st, ctx, "registerTerminal", &op, out, err, errlen);
    env_require(&st, external_terminal_id, "externalTerminalId");
    env_require(&st, password, "password");
    env_require(&st, name, "name");
    env_text(&st, op, "externalTerminalId", external_terminal_id);
    env_text(&st, op, "password", password);
    env_text(&st, op, "name", name);
    return env_finish(&st, doc, out);
}

seqr_err seqr_envelope_unregister_terminal(const seqr_context *ctx, xmlDocPtr *out, char *err,
                                           size_t errlen)
{
    env_state st;
    xmlNodePtr op = NULL;
    xmlDocPtr doc = env_begin(&st, ctx, "unregisterTerminal", &op, out, err, errlen);
    return env_finish(&st, doc, out);
}

seqr_err seqr_envelope_assign_seqr_id(const seqr_context *ctx, const char *seqr_id, xmlDocPtr *out,
                                      char *err, size_t errlen)
{
    env_state st;
    xmlNodePtr op = NULL;
    xmlDocPtr doc = env_begin(&st, ctx, "assignSeqrId", &op, out, err, errlen);
    env_require(&st, seqr_id, "seqrId");
    env_text(&st, op, "seqrId", seqr_id);
    return env_finish(&st, doc, out);
}

void seqr_envelope_serialize(xmlDocPtr doc, bool redacted, buf *out)
{
    if (doc == NULL)
        return;
    if (redacted)
        seqr_xml_serialize_redacted(doc, out);
    else
        seqr_xml_serialize(doc, out);
}
