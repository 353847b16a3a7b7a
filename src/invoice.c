/* invoice.c — invoice JSON validation; see invoice.h. */
#include "invoice.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

money_err invoice_json_amount(const json_t *v, int decimals, int64_t *out)
{
    char text[64];
    if (json_is_string(v))
        return money_parse_scaled(json_string_value(v), decimals, out);
    if (json_is_integer(v)) {
        snprintf(text, sizeof text, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return money_parse_scaled(text, decimals, out);
    }
    if (json_is_real(v)) {
        /* jansson keeps only the binary value. Accept it when its shortest
         * round-tripping decimal form (<= 15 significant digits) is what the
         * client wrote; then parse that text exactly. */
        double d = json_real_value(v);
        snprintf(text, sizeof text, "%.15g", d);
        if (strtod(text, NULL) != d)
            return MONEY_PRECISION;
        if (strchr(text, 'e') != NULL || strchr(text, 'E') != NULL) {
            /* Large or tiny magnitudes come out in exponent form. */
            snprintf(text, sizeof text, "%.*f", decimals, d);
            if (strtod(text, NULL) != d)
                return MONEY_PRECISION;
        }
        return money_parse_scaled(text, decimals, out);
    }
    return MONEY_SYNTAX;
}

bool invoice_url_valid(const char *url)
{
    size_t n = strlen(url);
    if (n > 2048)
        return false;
    const char *rest;
    if (strncmp(url, "https://", 8) == 0)
        rest = url + 8;
    else if (strncmp(url, "http://", 7) == 0)
        rest = url + 7;
    else
        return false;
    if (*rest == '\0' || *rest == '/')
        return false;
    for (const unsigned char *p = (const unsigned char *)url; *p; p++)
        if (*p <= 0x20 || *p == 0x7f)
            return false;
    return true;
}

/* Field spec for string members. */
typedef struct {
    const char *name;
    size_t max_len;
} invoice_text_field;

static const invoice_text_field invoice_text_fields[] = {
    {"title", 200},      {"clientInvoiceId", 64}, {"cashierId", 64},
    {"footer", 500},     {"backUrl", 2048},       {"notificationUrl", 2048}, {"webhookUrl", 2048},
    {"paymentMode", 64}, {"clientReference", 32}, {"terminalId", 64},
};

static const invoice_text_field invoice_row_text_fields[] = {
    {"description", 200}, {"sku", 64}, {"ean", 64}, {"unit", 32}};

static const char *const invoice_payment_modes[] = {"IMMEDIATE_DEBIT", "RESERVATION_DESIRED",
                                                    "RESERVATION_REQUIRED",
                                                    "RESERVATION_REQUIRED_PRELIMINARY_AMOUNT"};

/* Copies a string member (validated) into the document. */
static bool invoice_take_text(const json_t *src, json_t *dst, const char *path_prefix,
                              const invoice_text_field *f, api_error *err)
{
    json_t *v = json_object_get(src, f->name);
    if (v == NULL || json_is_null(v))
        return true;
    const char *s = json_string_value(v); /* NULL: not a string */
    size_t len = s != NULL ? strlen(s) : 0;
    bool control = false;
    for (size_t i = 0; i < len && !control; i++) {
        unsigned char c = (unsigned char)s[i];
        control = c < 0x20 && c != '\n' && c != '\t';
    }
    if (s != NULL && len <= f->max_len && !control) {
        json_object_set_new(dst, f->name, json_stringn(s, len));
        return true;
    }
    /* The field's name is made only for its error (most requests have none). */
    char field[96];
    snprintf(field, sizeof field, "%s%s", path_prefix, f->name);
    if (s == NULL)
        api_error_set(err, 400, "invalid_type", field, "%s must be a string", field);
    else if (len > f->max_len)
        api_error_set(err, 422, "too_long", field, "%s is longer than %zu bytes", field,
                      f->max_len);
    else
        api_error_set(err, 422, "invalid_value", field, "%s contains a control character", field);
    return false;
}

static bool invoice_known(const char *key, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(key, names[i]) == 0)
            return true;
    return false;
}

static bool invoice_amount_field(const json_t *obj, const char *name, const char *field,
                                 bool required, int decimals, int64_t *out, bool *present,
                                 api_error *err)
{
    json_t *v = json_object_get(obj, name);
    *present = false;
    if (v == NULL || json_is_null(v)) {
        if (required) {
            api_error_set(err, 400, "missing_field", field, "%s is required", field);
            return false;
        }
        return true;
    }
    if (!json_is_string(v) && !json_is_number(v)) {
        api_error_set(err, 400, "invalid_type", field,
                      "%s must be a decimal string like \"149.99\"", field);
        return false;
    }
    money_err me = invoice_json_amount(v, decimals, out);
    if (me != MONEY_OK) {
        api_error_set(err, me == MONEY_SYNTAX && json_is_string(v) ? 400 : 422,
                      me == MONEY_PRECISION ? "invalid_precision" : "invalid_amount", field,
                      "%s: %s", field, money_strerror(me));
        return false;
    }
    *present = true;
    return true;
}

/* The row rule: with a unitPrice, totalAmount must be exactly
 * quantity x unitPrice - discount (discount 0 when absent). Quantities have
 * three decimals, so the product is in thousandths of a minor unit and is
 * compared with (totalAmount + discount) x 1000; a product with a fraction of
 * a minor unit never matches (such a row is sent without a unitPrice).
 * Without a unitPrice there is nothing to check. Overflow is an error. */
static bool invoice_row_consistent(const seqr_invoice_row *r, const char *prefix, api_error *err)
{
    char field[96];
    snprintf(field, sizeof field, "%stotalAmount", prefix);
    if (!r->has_unit_price)
        return true;
    int64_t product, gross, expected;
    int64_t discount = r->has_discount ? r->discount : 0;
    if (__builtin_mul_overflow(r->quantity_milli, r->unit_price, &product) ||
        !money_add(r->total, discount, &gross) || __builtin_mul_overflow(gross, 1000, &expected)) {
        api_error_set(err, 422, "invalid_amount", field, "%squantity x unitPrice is out of range",
                      prefix);
        return false;
    }
    if (product != expected) {
        char q[MONEY_BUFLEN], u[MONEY_BUFLEN], d[MONEY_BUFLEN], t[MONEY_BUFLEN];
        api_error_set(err, 422, "row_amount_mismatch", field,
                      "%s %s does not equal quantity %s x unitPrice %s - discount %s", field,
                      money_format(r->total, t),
                      money_format_scaled(r->quantity_milli, MONEY_QTY_DECIMALS, q),
                      money_format(r->unit_price, u), money_format(discount, d));
        return false;
    }
    return true;
}

static bool invoice_parse_row(const json_t *row, size_t idx, const char *currency,
                              seqr_invoice_row *r, json_t *out_rows, api_error *err)
{
    static const char *const known[] = {"quantity",  "totalAmount", "description",
                                        "unitPrice", "taxRate",     "sku",
                                        "ean",       "unit",        "discount"};
    char prefix[32], field[96];
    snprintf(prefix, sizeof prefix, "rows[%zu].", idx);
    if (!json_is_object(row)) {
        snprintf(field, sizeof field, "rows[%zu]", idx);
        api_error_set(err, 400, "invalid_type", field, "%s must be an object", field);
        return false;
    }
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)row, key, val)
    {
        if (!invoice_known(key, known, sizeof known / sizeof *known)) {
            snprintf(field, sizeof field, "%s%s", prefix, key);
            api_error_set(err, 400, "unknown_field", field, "unknown field %s", field);
            return false;
        }
    }
    json_t *o = json_object();
    json_array_append_new(out_rows, o);
    char m[MONEY_BUFLEN];
    bool present;

    snprintf(field, sizeof field, "%squantity", prefix);
    if (!invoice_amount_field(row, "quantity", field, true, MONEY_QTY_DECIMALS, &r->quantity_milli,
                              &present, err))
        return false;
    if (r->quantity_milli <= 0) {
        api_error_set(err, 422, "invalid_quantity", field, "%s must be greater than 0", field);
        return false;
    }
    json_object_set_new(o, "quantity",
                        json_string(money_format_scaled(r->quantity_milli, MONEY_QTY_DECIMALS, m)));

    snprintf(field, sizeof field, "%stotalAmount", prefix);
    if (!invoice_amount_field(row, "totalAmount", field, true, MONEY_DECIMALS, &r->total, &present,
                              err))
        return false;
    if (r->total < 0) {
        api_error_set(err, 422, "invalid_amount", field, "%s must not be negative", field);
        return false;
    }
    json_object_set_new(o, "totalAmount", json_string(money_format(r->total, m)));

    snprintf(field, sizeof field, "%sunitPrice", prefix);
    if (!invoice_amount_field(row, "unitPrice", field, false, MONEY_DECIMALS, &r->unit_price,
                              &r->has_unit_price, err))
        return false;
    if (r->has_unit_price)
        json_object_set_new(o, "unitPrice", json_string(money_format(r->unit_price, m)));

    snprintf(field, sizeof field, "%sdiscount", prefix);
    if (!invoice_amount_field(row, "discount", field, false, MONEY_DECIMALS, &r->discount,
                              &r->has_discount, err))
        return false;
    if (r->has_discount)
        json_object_set_new(o, "discount", json_string(money_format(r->discount, m)));
    if (r->has_discount && r->discount < 0) {
        api_error_set(err, 422, "invalid_amount", field, "%s must not be negative", field);
        return false;
    }
    if (!invoice_row_consistent(r, prefix, err))
        return false;

    json_t *tax = json_object_get(row, "taxRate");
    if (tax != NULL && !json_is_null(tax)) {
        snprintf(field, sizeof field, "%staxRate", prefix);
        if (!json_is_integer(tax)) {
            api_error_set(err, 400, "invalid_type", field, "%s must be an integer percent", field);
            return false;
        }
        json_int_t t = json_integer_value(tax);
        if (t < 0 || t > 100) {
            api_error_set(err, 422, "invalid_value", field, "%s must be between 0 and 100", field);
            return false;
        }
        r->has_tax_rate = true;
        r->tax_rate = (int)t;
        json_object_set_new(o, "taxRate", json_integer(t));
    }
    for (size_t i = 0; i < sizeof invoice_row_text_fields / sizeof *invoice_row_text_fields; i++)
        if (!invoice_take_text(row, o, prefix, &invoice_row_text_fields[i], err))
            return false;
    (void)currency;
    return true;
}

bool invoice_parse(const json_t *body, invoice_input *out, api_error *err)
{
    static const char *const known[] = {
        "currency", "rows",    "totalAmount",     "title",       "clientInvoiceId", "cashierId",
        "footer",   "backUrl", "notificationUrl", "paymentMode", "clientReference", "terminalId",
        "webhookUrl"};
    memset(out, 0, sizeof *out);
    out->doc = json_object();
    if (!json_is_object(body)) {
        api_error_set(err, 400, "invalid_json", NULL, "the request body must be a JSON object");
        return false;
    }
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)body, key, val)
    {
        if (!invoice_known(key, known, sizeof known / sizeof *known)) {
            api_error_set(err, 400, "unknown_field", key, "unknown field %s", key);
            return false;
        }
    }

    json_t *cur = json_object_get(body, "currency");
    if (cur == NULL || json_is_null(cur)) {
        api_error_set(err, 400, "missing_field", "currency", "currency is required");
        return false;
    }
    if (!json_is_string(cur)) {
        api_error_set(err, 400, "invalid_type", "currency",
                      "currency must be a string like \"SEK\"");
        return false;
    }
    if (!money_currency_valid(json_string_value(cur))) {
        api_error_set(err, 422, "invalid_currency", "currency",
                      "currency must be an ISO 4217 code in upper case, like \"SEK\"");
        return false;
    }
    snprintf(out->currency, sizeof out->currency, "%s", json_string_value(cur));
    json_object_set_new(out->doc, "currency", json_string(out->currency));

    json_t *rows = json_object_get(body, "rows");
    if (rows == NULL || json_is_null(rows)) {
        api_error_set(err, 400, "missing_field", "rows", "rows is required");
        return false;
    }
    if (!json_is_array(rows)) {
        api_error_set(err, 400, "invalid_type", "rows", "rows must be an array");
        return false;
    }
    size_t n = json_array_size(rows);
    if (n == 0) {
        api_error_set(err, 422, "invalid_value", "rows", "rows must hold at least one row");
        return false;
    }
    if (n > INVOICE_MAX_ROWS) {
        api_error_set(err, 422, "too_many_rows", "rows", "at most %d rows per invoice",
                      INVOICE_MAX_ROWS);
        return false;
    }
    out->rows = calloc(n, sizeof *out->rows);
    if (out->rows == NULL)
        abort();
    out->n_rows = n;
    json_t *out_rows = json_array();
    json_object_set_new(out->doc, "rows", out_rows);
    int64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (!invoice_parse_row(json_array_get(rows, i), i, out->currency, &out->rows[i], out_rows,
                               err))
            return false;
        if (!money_add(sum, out->rows[i].total, &sum)) {
            api_error_set(err, 422, "invalid_amount", "rows", "the rows' sum is out of range");
            return false;
        }
    }
    if (sum <= 0) {
        api_error_set(err, 422, "invalid_amount", "rows",
                      "the invoice total must be greater than 0");
        return false;
    }
    bool has_total;
    int64_t total = 0;
    if (!invoice_amount_field(body, "totalAmount", "totalAmount", false, MONEY_DECIMALS, &total,
                              &has_total, err))
        return false;
    if (has_total && total != sum) {
        char a[MONEY_BUFLEN], b[MONEY_BUFLEN];
        api_error_set(err, 422, "amount_mismatch", "totalAmount",
                      "totalAmount %s does not equal the sum of the rows %s",
                      money_format(total, a), money_format(sum, b));
        return false;
    }
    out->total = sum;
    char m[MONEY_BUFLEN];
    json_object_set_new(out->doc, "totalAmount", json_string(money_format(sum, m)));

    for (size_t i = 0; i < sizeof invoice_text_fields / sizeof *invoice_text_fields; i++)
        if (!invoice_take_text(body, out->doc, "", &invoice_text_fields[i], err))
            return false;

    const char *mode = json_string_value(json_object_get(out->doc, "paymentMode"));
    if (mode != NULL) {
        bool ok = false;
        for (size_t i = 0; i < sizeof invoice_payment_modes / sizeof *invoice_payment_modes; i++)
            ok = ok || strcmp(mode, invoice_payment_modes[i]) == 0;
        if (!ok) {
            api_error_set(err, 422, "invalid_value", "paymentMode",
                          "paymentMode must be IMMEDIATE_DEBIT, RESERVATION_DESIRED, "
                          "RESERVATION_REQUIRED or RESERVATION_REQUIRED_PRELIMINARY_AMOUNT");
            return false;
        }
    } else {
        json_object_set_new(out->doc, "paymentMode", json_string("IMMEDIATE_DEBIT"));
    }
    static const char *const urls[] = {"backUrl", "notificationUrl", "webhookUrl"};
    for (size_t i = 0; i < 3; i++) {
        const char *u = json_string_value(json_object_get(out->doc, urls[i]));
        if (u != NULL && !invoice_url_valid(u)) {
            api_error_set(err, 422, "invalid_url", urls[i],
                          "%s must be an absolute http:// or https:// URL", urls[i]);
            return false;
        }
    }

    /* Borrow every string from the final document. */
    out->title = json_string_value(json_object_get(out->doc, "title"));
    out->client_invoice_id = json_string_value(json_object_get(out->doc, "clientInvoiceId"));
    out->cashier_id = json_string_value(json_object_get(out->doc, "cashierId"));
    out->footer = json_string_value(json_object_get(out->doc, "footer"));
    out->back_url = json_string_value(json_object_get(out->doc, "backUrl"));
    out->notification_url = json_string_value(json_object_get(out->doc, "notificationUrl"));
    out->payment_mode = json_string_value(json_object_get(out->doc, "paymentMode"));
    out->client_reference = json_string_value(json_object_get(out->doc, "clientReference"));
    out->terminal_id = json_string_value(json_object_get(out->doc, "terminalId"));
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(out_rows, i);
        out->rows[i].description = json_string_value(json_object_get(o, "description"));
        out->rows[i].sku = json_string_value(json_object_get(o, "sku"));
        out->rows[i].ean = json_string_value(json_object_get(o, "ean"));
        out->rows[i].unit = json_string_value(json_object_get(o, "unit"));
    }
    return true;
}

void invoice_input_free(invoice_input *in)
{
    json_decref(in->doc);
    free(in->rows);
    memset(in, 0, sizeof *in);
}

void invoice_to_seqr(const invoice_input *in, seqr_invoice *out)
{
    memset(out, 0, sizeof *out);
    out->payment_mode = in->payment_mode;
    out->title = in->title;
    out->client_invoice_id = in->client_invoice_id;
    out->rows = in->rows;
    out->n_rows = in->n_rows;
    out->total = in->total;
    out->currency = in->currency;
    out->cashier_id = in->cashier_id;
    out->footer = in->footer;
    out->back_url = in->back_url;
    out->notification_url = in->notification_url;
}
