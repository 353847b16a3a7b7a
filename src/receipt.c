/* receipt.c — the rendered payment receipt (HTML) and base64; see receipt.h. */
#include "receipt.h"

#include <libxml/HTMLtree.h>
#include <libxml/xmlstring.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "html.h"
#include "money.h"

int64_t receipt_vat(int64_t total, int rate)
{
    if (rate <= 0 || total == 0)
        return 0;
    int64_t div = 100 + rate;
    /* |total| without overflow for INT64_MIN: work on the negative side. */
    bool neg = total < 0;
    int64_t q = total / div, rem = total % div; /* both <= 0 when neg */
    if (neg) {
        q = -q;
        rem = -rem;
    }
    /* q * rate <= |total|; rem * rate * 2 < 2 * div * 100: no overflow. */
    int64_t vat = q * rate + (rem * rate * 2 + div) / (2 * div);
    return neg ? -vat : vat;
}

/* --- HTML building; the first failure sticks in st (html.h) --- */

static receipt_err rc_from_html(html_err e)
{
    switch (e) {
    case HTML_OK:
        return RECEIPT_OK;
    case HTML_ERR_INVALID:
        return RECEIPT_ERR_INVALID;
    case HTML_ERR_INTERNAL:
        break;
    }
    return RECEIPT_ERR_INTERNAL;
}


static bool rc_set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

/* <tr> with th label and td value, skipped when value is empty. */
static void rc_pair(html_builder *st, xmlNodePtr table, const char *label, const char *value)
{
    if (!rc_set(value))
        return;
    xmlNodePtr tr = html_el(st, table, "tr", NULL);
    html_el(st, tr, "th", label);
    html_el(st, tr, "td", value);
}

static void rc_money(html_builder *st, xmlNodePtr tr, int64_t minor, const char *currency)
{
    char m[MONEY_BUFLEN];
    char text[MONEY_BUFLEN + 8];
    snprintf(text, sizeof text, "%s %s", money_format(minor, m), currency);
    html_attr(st, html_el(st, tr, "td", text), "class", "amount");
}

static void rc_rows(html_builder *st, xmlNodePtr body, const receipt_input *in)
{
    char q[MONEY_BUFLEN], rate[16];
    xmlNodePtr table = html_el(st, body, "table", NULL);
    html_attr(st, table, "class", "rows");
    xmlNodePtr head = html_el(st, html_el(st, table, "thead", NULL), "tr", NULL);
    static const char *const cols[] = {"Item",     "Quantity", "Unit price",
                                       "Discount", "VAT %",    "Amount"};
    for (size_t i = 0; i < sizeof cols / sizeof *cols; i++)
        html_el(st, head, "th", cols[i]);
    xmlNodePtr tbody = html_el(st, table, "tbody", NULL);
    for (size_t i = 0; i < in->n_rows && st->err == HTML_OK; i++) {
        const seqr_invoice_row *r = &in->rows[i];
        xmlNodePtr tr = html_el(st, tbody, "tr", NULL);
        html_el(st, tr, "td", rc_set(r->description) ? r->description : "");
        char qty[MONEY_BUFLEN + 130];
        snprintf(qty, sizeof qty, "%s%s%.120s",
                 money_format_scaled(r->quantity_milli, MONEY_QTY_DECIMALS, q),
                 rc_set(r->unit) ? " " : "", rc_set(r->unit) ? r->unit : "");
        if (rc_set(r->unit) && xmlCheckUTF8((const xmlChar *)qty) == 0)
            snprintf(qty, sizeof qty, "%s", q); /* a unit cut inside a character */
        html_el(st, tr, "td", qty);
        if (r->has_unit_price)
            rc_money(st, tr, r->unit_price, in->currency);
        else
            html_el(st, tr, "td", "");
        if (r->has_discount)
            rc_money(st, tr, r->discount, in->currency);
        else
            html_el(st, tr, "td", "");
        if (r->has_tax_rate)
            snprintf(rate, sizeof rate, "%d %%", r->tax_rate);
        else
            rate[0] = '\0';
        html_el(st, tr, "td", rate);
        rc_money(st, tr, r->total, in->currency);
    }
}

/* The VAT table: one line per rate, in rising order. */
static void rc_vat(html_builder *st, xmlNodePtr body, const receipt_input *in)
{
    int64_t gross[101];
    bool used[101];
    bool any = false;
    memset(gross, 0, sizeof gross);
    memset(used, 0, sizeof used);
    for (size_t i = 0; i < in->n_rows; i++) {
        const seqr_invoice_row *r = &in->rows[i];
        if (!r->has_tax_rate)
            continue;
        if (r->tax_rate < 0 || r->tax_rate > 100) {
            html_fail(st, HTML_ERR_INVALID, "row %zu: tax rate %d is not 0..100", i + 1,
                    r->tax_rate);
            return;
        }
        if (!money_add(gross[r->tax_rate], r->total, &gross[r->tax_rate])) {
            html_fail(st, HTML_ERR_INVALID, "the rows' totals at %d %% are out of range",
                    r->tax_rate);
            return;
        }
        used[r->tax_rate] = true;
        any = true;
    }
    if (!any)
        return;
    xmlNodePtr table = html_el(st, body, "table", NULL);
    html_attr(st, table, "class", "vat");
    xmlNodePtr head = html_el(st, html_el(st, table, "thead", NULL), "tr", NULL);
    html_el(st, head, "th", "VAT rate");
    html_el(st, head, "th", "VAT");
    html_el(st, head, "th", "Net");
    html_el(st, head, "th", "Gross");
    xmlNodePtr tbody = html_el(st, table, "tbody", NULL);
    for (int rate = 0; rate <= 100; rate++) {
        if (!used[rate])
            continue;
        char label[16];
        snprintf(label, sizeof label, "%d %%", rate);
        int64_t vat = receipt_vat(gross[rate], rate);
        xmlNodePtr tr = html_el(st, tbody, "tr", NULL);
        html_el(st, tr, "td", label);
        rc_money(st, tr, vat, in->currency);
        rc_money(st, tr, gross[rate] - vat, in->currency); /* |vat| <= |gross|: no overflow */
        rc_money(st, tr, gross[rate], in->currency);
    }
}

receipt_err receipt_render_html(const receipt_input *in, buf *out, char *msg, size_t msglen)
{
    html_builder st = {HTML_OK, msg, msglen};
    if (msg != NULL && msglen > 0)
        msg[0] = '\0';
    if (!rc_set(in->store_name) || !money_currency_valid(in->currency ? in->currency : "")) {
        html_fail(&st, HTML_ERR_INVALID, "a receipt needs the store's name and a currency");
        return rc_from_html(st.err);
    }
    if (in->n_rows > 0 && in->rows == NULL) {
        html_fail(&st, HTML_ERR_INVALID, "%zu rows but no row data", in->n_rows);
        return rc_from_html(st.err);
    }
    htmlDocPtr doc = htmlNewDoc(NULL, NULL);
    if (doc == NULL)
        return RECEIPT_ERR_INTERNAL;
    xmlNodePtr html = xmlNewDocNode(doc, NULL, (const xmlChar *)"html", NULL);
    if (html == NULL) {
        xmlFreeDoc(doc);
        return RECEIPT_ERR_INTERNAL;
    }
    xmlDocSetRootElement(doc, html);
    xmlNodePtr head = html_el(&st, html, "head", NULL);
    xmlNodePtr meta = html_el(&st, head, "meta", NULL);
    html_attr(&st, meta, "http-equiv", "Content-Type");
    html_attr(&st, meta, "content", "text/html; charset=UTF-8");
    char title[300];
    snprintf(title, sizeof title, "Receipt: %s", in->store_name);
    if (xmlCheckUTF8((const xmlChar *)title) == 0)
        snprintf(title, sizeof title, "Receipt");
    html_el(&st, head, "title", title);
    xmlNodePtr body = html_el(&st, html, "body", NULL);

    xmlNodePtr seller = html_el(&st, body, "div", NULL);
    html_attr(&st, seller, "class", "seller");
    html_el(&st, seller, "h1", in->store_name);
    if (rc_set(in->address))
        html_el(&st, seller, "p", in->address);
    if (rc_set(in->org_number)) {
        xmlNodePtr p = html_el(&st, seller, "p", "VAT/Org. no. ");
        html_el(&st, p, "span", in->org_number);
    }
    if (rc_set(in->title))
        html_el(&st, body, "h2", in->title);
    rc_rows(&st, body, in);
    rc_vat(&st, body, in);

    char m[MONEY_BUFLEN];
    char total[MONEY_BUFLEN + 16];
    snprintf(total, sizeof total, "%s %s", money_format(in->total, m), in->currency);
    xmlNodePtr tot = html_el(&st, body, "p", "Total ");
    html_attr(&st, tot, "class", "total");
    html_el(&st, tot, "strong", total);

    xmlNodePtr facts = html_el(&st, body, "table", NULL);
    html_attr(&st, facts, "class", "payment");
    rc_pair(&st, facts, "Currency", in->currency);
    rc_pair(&st, facts, "Payment date", in->payment_date);
    rc_pair(&st, facts, "Order", in->client_invoice_id);
    rc_pair(&st, facts, "Invoice reference", in->invoice_reference);
    rc_pair(&st, facts, "ersReference", in->ers_reference);
    rc_pair(&st, facts, "Payment reference", in->payment_reference);
    html_el(&st, body, "p", "Paid with SEQR");
    if (rc_set(in->footer))
        html_attr(&st, html_el(&st, body, "p", in->footer), "class", "footer");

    if (st.err == HTML_OK) {
        xmlChar *mem = NULL;
        int len = 0;
        htmlDocDumpMemoryFormat(doc, &mem, &len, 1);
        if (mem == NULL || len <= 0)
            html_fail(&st, HTML_ERR_INTERNAL, "out of memory");
        else
            buf_append(out, mem, (size_t)len);
        xmlFree(mem);
    }
    xmlFreeDoc(doc);
    return rc_from_html(st.err);
}

/* --- base64 --- */

static const char receipt_b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void receipt_base64_encode(const void *data, size_t len, buf *out)
{
    const unsigned char *p = data;
    if (len == 0)
        return;
    buf_grow(out, (len + 2) / 3 * 4);
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < len)
            v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < len)
            v |= p[i + 2];
        char q[4] = {receipt_b64[(v >> 18) & 63], receipt_b64[(v >> 12) & 63],
                     i + 1 < len ? receipt_b64[(v >> 6) & 63] : '=',
                     i + 2 < len ? receipt_b64[v & 63] : '='};
        buf_append(out, q, 4);
    }
}

static int receipt_b64_value(char c)
{
    const char *p = c ? strchr(receipt_b64, c) : NULL;
    return p ? (int)(p - receipt_b64) : -1;
}

bool receipt_base64_decode(const char *b64, buf *out)
{
    size_t n = strlen(b64);
    size_t start = out->len;
    if (n % 4 != 0)
        return false;
    for (size_t i = 0; i < n; i += 4) {
        bool last = i + 4 == n;
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            char c = b64[i + k];
            if (c == '=' && last && k >= 2 && (k == 3 || b64[i + 3] == '=')) {
                v[k] = 0;
                pad++;
                continue;
            }
            v[k] = receipt_b64_value(c);
            if (v[k] < 0 || pad > 0)
                goto bad;
        }
        unsigned x =
            (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 | (unsigned)v[3];
        char bytes[3] = {(char)(x >> 16), (char)(x >> 8), (char)x};
        buf_append(out, bytes, (size_t)(3 - pad));
    }
    return true;
bad:
    out->len = start;
    if (out->data != NULL)
        out->data[start] = '\0';
    return false;
}
