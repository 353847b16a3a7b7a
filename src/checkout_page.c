/* checkout_page.c — the buyer's payment page; see checkout_page.h. */
#include "checkout_page.h"

#include <jansson.h>
#include <libxml/HTMLtree.h>
#include <libxml/parser.h>
#include <libxml/xmlstring.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "html.h"
#include "money.h"
#include "qr.h"
#include "seqr/seqr.h"

/* --- texts --- */

typedef enum {
    T_PAY_TITLE,
    T_TO_PAY,
    T_PAID_AMOUNT,
    T_AMOUNT,
    T_OPEN_APP,
    T_SCAN,
    T_SCAN_OTHER,
    T_QR_ALT,
    T_WAITING,
    T_EXPIRES_IN,
    T_PAID_TITLE,
    T_PAID_BACK,
    T_PAID_NOBACK,
    T_CANCELED_TITLE,
    T_FAILED_TITLE,
    T_EXPIRED_TITLE,
    T_NOTHING_CHARGED,
    T_BACK,
    T_ORDER_DETAILS,
    T_ORDER,
    T_COL_ITEM,
    T_COL_QTY,
    T_COL_AMOUNT,
    T_TOTAL,
    T_NOSCRIPT,
    T_CHECK_AGAIN,
    T_OFFLINE,
    T_SECURE,
    T_NOT_FOUND_TITLE,
    T_NOT_FOUND_TEXT,
    T_COUNT
} checkout_text;

static const char *const checkout_texts[2][T_COUNT] = {
    [CHECKOUT_EN] =
        {
            [T_PAY_TITLE] = "Pay",
            [T_TO_PAY] = "To pay",
            [T_PAID_AMOUNT] = "Paid",
            [T_AMOUNT] = "Amount",
            [T_OPEN_APP] = "Pay with the SEQR app",
            [T_SCAN] = "Scan the code with the SEQR app",
            [T_SCAN_OTHER] = "Paying with another phone? Scan the code with its SEQR app.",
            [T_QR_ALT] = "QR code for paying with SEQR",
            [T_WAITING] = "Waiting for the payment…",
            [T_EXPIRES_IN] = "Time left to pay:",
            [T_PAID_TITLE] = "Payment received",
            [T_PAID_BACK] = "Thank you! Taking you back to the shop…",
            [T_PAID_NOBACK] = "Thank you! You can close this page.",
            [T_CANCELED_TITLE] = "The payment was canceled",
            [T_FAILED_TITLE] = "The payment failed",
            [T_EXPIRED_TITLE] = "The time to pay has run out",
            [T_NOTHING_CHARGED] = "Nothing was charged.",
            [T_BACK] = "Back to the shop",
            [T_ORDER_DETAILS] = "Order details",
            [T_ORDER] = "Order",
            [T_COL_ITEM] = "Item",
            [T_COL_QTY] = "Qty",
            [T_COL_AMOUNT] = "Amount",
            [T_TOTAL] = "Total",
            [T_NOSCRIPT] = "This page updates itself when JavaScript is on. Without it, "
                           "reload the page to see whether the payment has arrived.",
            [T_CHECK_AGAIN] = "Check again",
            [T_OFFLINE] = "Connection lost. Trying again…",
            [T_SECURE] = "Secure payment with SEQR",
            [T_NOT_FOUND_TITLE] = "Payment not found",
            [T_NOT_FOUND_TEXT] = "This payment link is not valid. Go back to the shop and "
                                 "start the payment again.",
        },
    [CHECKOUT_SV] =
        {
            [T_PAY_TITLE] = "Betala",
            [T_TO_PAY] = "Att betala",
            [T_PAID_AMOUNT] = "Betalt",
            [T_AMOUNT] = "Belopp",
            [T_OPEN_APP] = "Betala med SEQR-appen",
            [T_SCAN] = "Skanna koden med SEQR-appen",
            [T_SCAN_OTHER] = "Betalar du med en annan telefon? Skanna koden med dess SEQR-app.",
            [T_QR_ALT] = "QR-kod för att betala med SEQR",
            [T_WAITING] = "Väntar på betalningen…",
            [T_EXPIRES_IN] = "Tid kvar att betala:",
            [T_PAID_TITLE] = "Betalningen är mottagen",
            [T_PAID_BACK] = "Tack! Du skickas tillbaka till butiken…",
            [T_PAID_NOBACK] = "Tack! Du kan stänga sidan.",
            [T_CANCELED_TITLE] = "Betalningen avbröts",
            [T_FAILED_TITLE] = "Betalningen misslyckades",
            [T_EXPIRED_TITLE] = "Tiden för att betala har gått ut",
            [T_NOTHING_CHARGED] = "Inget har dragits från ditt konto.",
            [T_BACK] = "Tillbaka till butiken",
            [T_ORDER_DETAILS] = "Orderdetaljer",
            [T_ORDER] = "Order",
            [T_COL_ITEM] = "Vara",
            [T_COL_QTY] = "Antal",
            [T_COL_AMOUNT] = "Belopp",
            [T_TOTAL] = "Totalt",
            [T_NOSCRIPT] = "Sidan uppdaterar sig själv när JavaScript är påslaget. Utan det "
                           "laddar du om sidan för att se om betalningen har kommit fram.",
            [T_CHECK_AGAIN] = "Kontrollera igen",
            [T_OFFLINE] = "Anslutningen bröts. Försöker igen…",
            [T_SECURE] = "Säker betalning med SEQR",
            [T_NOT_FOUND_TITLE] = "Betalningen hittades inte",
            [T_NOT_FOUND_TEXT] = "Betallänken är inte giltig. Gå tillbaka till butiken och "
                                 "börja om betalningen.",
        },
};

static const char *tx(checkout_lang lang, checkout_text t)
{
    return checkout_texts[lang == CHECKOUT_SV ? CHECKOUT_SV : CHECKOUT_EN][t];
}

const char *checkout_state_name(checkout_state s)
{
    switch (s) {
    case CHECKOUT_PENDING:
        return "pending";
    case CHECKOUT_PAID:
        return "paid";
    case CHECKOUT_CANCELED:
        return "canceled";
    case CHECKOUT_FAILED:
        return "failed";
    case CHECKOUT_EXPIRED:
        return "expired";
    }
    return "pending";
}

checkout_state checkout_state_of(const store_invoice *inv, int64_t now_ms)
{
    seqr_status s = inv->status;
    bool run_out = inv->expires_at > 0 && now_ms > inv->expires_at;
    switch (s) {
    case SEQR_STATUS_PAID:
    case SEQR_STATUS_RESERVED:
        return CHECKOUT_PAID;
    case SEQR_STATUS_FAILED:
        return CHECKOUT_FAILED;
    case SEQR_STATUS_CANCELED:
        /* The poller cancels an invoice once it has expired unpaid. */
        return inv->expires_at > 0 && inv->updated_at >= inv->expires_at ? CHECKOUT_EXPIRED
                                                                         : CHECKOUT_CANCELED;
    default:
        break;
    }
    if (inv->polling_stopped) /* SEQR no longer knows it: it will never be paid */
        return CHECKOUT_FAILED;
    return run_out ? CHECKOUT_EXPIRED : CHECKOUT_PENDING;
}

const char *checkout_lang_tag(checkout_lang lang)
{
    return lang == CHECKOUT_SV ? "sv" : "en";
}

/* q-value of one Accept-Language item's parameters ("q=0.5"), in thousandths. */
static int checkout_qvalue(const char *params, size_t len)
{
    const char *q = NULL;
    for (size_t i = 0; i + 1 < len; i++) {
        if ((params[i] == 'q' || params[i] == 'Q') && params[i + 1] == '=') {
            q = params + i + 2;
            break;
        }
    }
    if (q == NULL)
        return 1000;
    int v = 0, digits = 0;
    if (*q == '1')
        return 1000;
    if (*q != '0')
        return 0;
    q++;
    if (*q == '.') {
        q++;
        while (digits < 3 && *q >= '0' && *q <= '9') {
            v = v * 10 + (*q - '0');
            q++;
            digits++;
        }
    }
    while (digits++ < 3)
        v *= 10;
    return v;
}

checkout_lang checkout_lang_pick(const char *header)
{
    if (header == NULL)
        return CHECKOUT_EN;
    int best_q[2] = {0, 0};
    bool seen[2] = {false, false};
    const char *p = header;
    int order = 0, first_seen[2] = {0, 0};
    while (*p != '\0') {
        size_t len = strcspn(p, ",");
        const char *item = p;
        while (len > 0 && (*item == ' ' || *item == '\t')) {
            item++;
            len--;
        }
        size_t tag = strcspn(item, ";-, \t");
        if (tag > len)
            tag = len;
        int which = -1;
        if (tag == 2 && strncasecmp(item, "sv", 2) == 0)
            which = CHECKOUT_SV;
        else if (tag == 2 && strncasecmp(item, "en", 2) == 0)
            which = CHECKOUT_EN;
        if (which >= 0) {
            const char *semi = memchr(item, ';', len);
            int q = semi ? checkout_qvalue(semi, len - (size_t)(semi - item)) : 1000;
            if (q > 0 && (!seen[which] || q > best_q[which])) {
                if (!seen[which])
                    first_seen[which] = order;
                seen[which] = true;
                best_q[which] = q;
            }
        }
        order++;
        p = item + len;
        if (*p == ',')
            p++;
    }
    if (seen[CHECKOUT_SV] && seen[CHECKOUT_EN]) {
        if (best_q[CHECKOUT_SV] != best_q[CHECKOUT_EN])
            return best_q[CHECKOUT_SV] > best_q[CHECKOUT_EN] ? CHECKOUT_SV : CHECKOUT_EN;
        return first_seen[CHECKOUT_SV] < first_seen[CHECKOUT_EN] ? CHECKOUT_SV : CHECKOUT_EN;
    }
    return seen[CHECKOUT_SV] ? CHECKOUT_SV : CHECKOUT_EN;
}

/* "-1234.50" -> digits grouped by group (UTF-8), decimal mark dec. */
static void checkout_number(const char *plain, const char *group, char dec, char *out,
                            size_t outlen)
{
    buf b = BUF_INIT;
    const char *p = plain;
    if (*p == '-') {
        buf_append(&b, "\xe2\x88\x92", 3); /* minus sign */
        p++;
    }
    size_t int_len = strcspn(p, ".");
    for (size_t i = 0; i < int_len; i++) {
        if (i > 0 && (int_len - i) % 3 == 0)
            buf_append(&b, group, strlen(group));
        buf_putc(&b, p[i]);
    }
    if (p[int_len] == '.') {
        buf_putc(&b, dec);
        buf_append(&b, p + int_len + 1, strlen(p + int_len + 1));
    }
    snprintf(out, outlen, "%s", buf_cstr(&b));
    buf_free(&b);
}

void checkout_money(int64_t minor, const char *currency, checkout_lang lang, char *out,
                    size_t outlen)
{
    char plain[MONEY_BUFLEN], num[MONEY_BUFLEN * 3];
    money_format(minor, plain);
    if (lang == CHECKOUT_SV) {
        checkout_number(plain, "\xc2\xa0", ',', num, sizeof num); /* no-break space */
        const char *unit = strcmp(currency, "SEK") == 0   ? "kr"
                           : strcmp(currency, "EUR") == 0 ? "€"
                                                          : currency;
        snprintf(out, outlen, "%s\xc2\xa0%s", num, unit);
    } else {
        checkout_number(plain, ",", '.', num, sizeof num);
        snprintf(out, outlen, "%s\xc2\xa0%s", currency, num);
    }
}

/* --- HTML building; the first failure sticks in st (html.h) --- */

static checkout_err ck_from_html(html_err e)
{
    switch (e) {
    case HTML_OK:
        return CHECKOUT_OK;
    case HTML_ERR_INVALID:
        return CHECKOUT_ERR_INVALID;
    case HTML_ERR_INTERNAL:
        break;
    }
    return CHECKOUT_ERR_INTERNAL;
}


/* An element with a class (and optional text). */
static xmlNodePtr ck_elc(html_builder *st, xmlNodePtr parent, const char *name, const char *cls,
                         const char *text)
{
    xmlNodePtr n = html_el(st, parent, name, text);
    html_attr(st, n, "class", cls);
    return n;
}

/* <html lang><head> with charset, viewport, title and the stylesheet. */
static xmlNodePtr ck_head(html_builder *st, htmlDocPtr doc, checkout_lang lang, const char *title,
                          const char *version, bool script)
{
    xmlNodePtr html = xmlNewDocNode(doc, NULL, (const xmlChar *)"html", NULL);
    if (html == NULL) {
        html_fail(st, HTML_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    xmlDocSetRootElement(doc, html);
    html_attr(st, html, "lang", checkout_lang_tag(lang));
    xmlNodePtr head = html_el(st, html, "head", NULL);
    html_attr(st, html_el(st, head, "meta", NULL), "charset", "utf-8");
    xmlNodePtr vp = html_el(st, head, "meta", NULL);
    html_attr(st, vp, "name", "viewport");
    html_attr(st, vp, "content", "width=device-width, initial-scale=1");
    xmlNodePtr robots = html_el(st, head, "meta", NULL);
    html_attr(st, robots, "name", "robots");
    html_attr(st, robots, "content", "noindex, nofollow");
    xmlNodePtr ref = html_el(st, head, "meta", NULL);
    html_attr(st, ref, "name", "referrer");
    html_attr(st, ref, "content", "no-referrer");
    html_el(st, head, "title", title);
    char href[128];
    snprintf(href, sizeof href, "/pay/assets/checkout.css?v=%s", version);
    xmlNodePtr css = html_el(st, head, "link", NULL);
    html_attr(st, css, "rel", "stylesheet");
    html_attr(st, css, "href", href);
    if (script) {
        snprintf(href, sizeof href, "/pay/assets/checkout.js?v=%s", version);
        xmlNodePtr js = html_el(st, head, "script", NULL);
        html_attr(st, js, "src", href);
        html_attr(st, js, "defer", "defer");
    }
    return html_el(st, html, "body", NULL);
}

static void ck_dump(html_builder *st, htmlDocPtr doc, buf *out)
{
    if (st->err != HTML_OK)
        return;
    xmlChar *mem = NULL;
    int len = 0;
    htmlDocDumpMemoryFormat(doc, &mem, &len, 0);
    if (mem == NULL || len <= 0) {
        html_fail(st, HTML_ERR_INTERNAL, "out of memory");
    } else {
        /* The serializer writes an HTML 4 doctype for a document without
         * one; the page is HTML5. */
        const char *m = (const char *)mem;
        if (strncmp(m, "<!DOCTYPE", 9) == 0) {
            const char *end = strchr(m, '>');
            if (end != NULL)
                m = end + 1;
            while (*m == '\n')
                m++;
        }
        buf_append(out, "<!DOCTYPE html>\n", 16);
        buf_append(out, m, (size_t)len - (size_t)(m - (const char *)mem));
    }
    xmlFree(mem);
}

/* The QR code from qr.c's SVG, as an inline <svg role="img"> with a title. */
static void ck_qr(html_builder *st, htmlDocPtr doc, xmlNodePtr parent, const char *text,
                  const char *label)
{
    if (st->err != HTML_OK || parent == NULL)
        return;
    qr_options o;
    qr_options_default(&o, "svg");
    o.margin = 2;
    buf svg = BUF_INIT;
    const char *type = NULL;
    qr_err e = qr_render(text, "svg", &o, &svg, &type);
    xmlDocPtr sdoc = e == QR_OK
                         ? xmlReadMemory(svg.data, (int)svg.len, "qr.svg", "UTF-8", XML_PARSE_NONET)
                         : NULL;
    buf_free(&svg);
    xmlNodePtr root = sdoc ? xmlDocGetRootElement(sdoc) : NULL;
    xmlNodePtr copy = root ? xmlDocCopyNode(root, doc, 1) : NULL;
    xmlFreeDoc(sdoc);
    if (copy == NULL) {
        html_fail(st, HTML_ERR_INVALID, "the QR code %s cannot be rendered", text);
        return;
    }
    xmlUnsetProp(copy, (const xmlChar *)"width");
    xmlUnsetProp(copy, (const xmlChar *)"height");
    xmlAddChild(parent, copy);
    html_attr(st, copy, "role", "img");
    html_attr(st, copy, "aria-labelledby", "qr-title");
    html_attr(st, copy, "class", "qr-code");
    xmlNodePtr t = xmlNewDocNode(doc, NULL, (const xmlChar *)"title", NULL);
    if (t == NULL) {
        html_fail(st, HTML_ERR_INTERNAL, "out of memory");
        return;
    }
    xmlNodeAddContent(t, (const xmlChar *)label);
    xmlSetProp(t, (const xmlChar *)"id", (const xmlChar *)"qr-title");
    if (copy->children != NULL)
        xmlAddPrevSibling(copy->children, t);
    else
        xmlAddChild(copy, t);
}

/* A quantity "1.5" as lang writes it ("1,5"). */
static void ck_quantity(const char *q, checkout_lang lang, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s", q);
    if (lang == CHECKOUT_SV)
        for (char *p = out; *p; p++)
            if (*p == '.')
                *p = ',';
}

static void ck_rows(html_builder *st, xmlNodePtr parent, const checkout_input *in, json_t *doc)
{
    json_t *rows = json_object_get(doc, "rows");
    if (!json_is_array(rows) || json_array_size(rows) == 0)
        return;
    checkout_lang lang = in->lang;
    xmlNodePtr det = ck_elc(st, parent, "details", "order", NULL);
    html_el(st, det, "summary", tx(lang, T_ORDER_DETAILS));
    xmlNodePtr table = html_el(st, det, "table", NULL);
    xmlNodePtr head = html_el(st, html_el(st, table, "thead", NULL), "tr", NULL);
    html_attr(st, html_el(st, head, "th", tx(lang, T_COL_ITEM)), "scope", "col");
    html_attr(st, ck_elc(st, head, "th", "num", tx(lang, T_COL_QTY)), "scope", "col");
    html_attr(st, ck_elc(st, head, "th", "num", tx(lang, T_COL_AMOUNT)), "scope", "col");
    xmlNodePtr body = html_el(st, table, "tbody", NULL);
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        const char *desc = json_string_value(json_object_get(row, "description"));
        const char *unit = json_string_value(json_object_get(row, "unit"));
        const char *qty = json_string_value(json_object_get(row, "quantity"));
        const char *amount = json_string_value(json_object_get(row, "totalAmount"));
        int64_t minor = 0;
        char text[256], money[96];
        xmlNodePtr tr = html_el(st, body, "tr", NULL);
        html_el(st, tr, "td", desc ? desc : "");
        ck_quantity(qty ? qty : "", lang, text, sizeof text);
        if (unit != NULL && unit[0] != '\0' && strlen(text) + strlen(unit) + 2 < sizeof text) {
            strcat(text, " ");
            strcat(text, unit);
        }
        ck_elc(st, tr, "td", "num", text);
        if (amount != NULL && money_parse(amount, &minor) == MONEY_OK)
            checkout_money(minor, in->inv->currency, lang, money, sizeof money);
        else
            snprintf(money, sizeof money, "%s", amount ? amount : "");
        ck_elc(st, tr, "td", "num", money);
    }
    char total[96];
    checkout_money(in->inv->total, in->inv->currency, lang, total, sizeof total);
    xmlNodePtr tr = html_el(st, html_el(st, table, "tfoot", NULL), "tr", NULL);
    xmlNodePtr th = html_el(st, tr, "th", tx(lang, T_TOTAL));
    html_attr(st, th, "scope", "row");
    html_attr(st, th, "colspan", "2");
    ck_elc(st, tr, "td", "num", total);
}

/* One outcome block: shown by the stylesheet when the page is in state. */
static xmlNodePtr ck_outcome(html_builder *st, xmlNodePtr parent, const char *state, const char *icon,
                             const char *title)
{
    char cls[64];
    snprintf(cls, sizeof cls, "outcome outcome-%s", state);
    xmlNodePtr sec = ck_elc(st, parent, "section", cls, NULL);
    char id[64];
    snprintf(id, sizeof id, "outcome-%s-title", state);
    html_attr(st, sec, "aria-labelledby", id);
    xmlNodePtr ic = ck_elc(st, sec, "div", "icon", icon);
    html_attr(st, ic, "aria-hidden", "true");
    xmlNodePtr h = html_el(st, sec, "h2", title);
    html_attr(st, h, "id", id);
    html_attr(st, h, "tabindex", "-1");
    return sec;
}

static void ck_back(html_builder *st, xmlNodePtr parent, checkout_lang lang, const char *back_url)
{
    if (back_url == NULL || back_url[0] == '\0')
        return;
    xmlNodePtr a = ck_elc(st, parent, "a", "button back", tx(lang, T_BACK));
    html_attr(st, a, "href", back_url);
}

checkout_err checkout_render(const checkout_input *in, buf *out, char *msg, size_t msglen)
{
    html_builder st = {HTML_OK, msg, msglen};
    if (msg != NULL && msglen > 0)
        msg[0] = '\0';
    const store_invoice *inv = in->inv;
    if (inv->qr_code[0] == '\0' || strncasecmp(inv->qr_code, "HTTP:", 5) != 0) {
        html_fail(&st, HTML_ERR_INVALID, "the invoice has no QR code");
        return ck_from_html(st.err);
    }
    checkout_lang lang = in->lang;
    json_t *doc = inv->doc_json ? json_loads(inv->doc_json, 0, NULL) : NULL;
    const char *back_url = json_string_value(json_object_get(doc, "backUrl"));
    const char *order_id = json_string_value(json_object_get(doc, "clientInvoiceId"));
    checkout_state state = checkout_state_of(inv, in->now_ms);

    htmlDocPtr hdoc = htmlNewDoc(NULL, NULL);
    if (hdoc == NULL) {
        json_decref(doc);
        return CHECKOUT_ERR_INTERNAL;
    }
    char page_title[512];
    snprintf(page_title, sizeof page_title, "%s: %s", tx(lang, T_PAY_TITLE), in->title);
    if (xmlCheckUTF8((const xmlChar *)page_title) == 0)
        snprintf(page_title, sizeof page_title, "%s", tx(lang, T_PAY_TITLE));
    xmlNodePtr body = ck_head(&st, hdoc, lang, page_title, in->version, true);

    xmlNodePtr main_el = ck_elc(&st, body, "main", "checkout", NULL);
    html_attr(&st, main_el, "id", "checkout");
    html_attr(&st, main_el, "data-state", checkout_state_name(state));
    char rel[160], num[32];
    snprintf(rel, sizeof rel, "/pay/%s/status", in->token);
    html_attr(&st, main_el, "data-status-url", rel);
    if (in->events != NULL && in->events[0] != '\0') {
        snprintf(rel, sizeof rel, "/pay/%s", in->events);
        html_attr(&st, main_el, "data-events-url", rel);
    }
    snprintf(num, sizeof num, "%lld", (long long)inv->version);
    html_attr(&st, main_el, "data-version", num);
    int64_t left_s = inv->expires_at > in->now_ms ? (inv->expires_at - in->now_ms) / 1000 : 0;
    snprintf(num, sizeof num, "%lld", (long long)left_s);
    html_attr(&st, main_el, "data-expires-in", num);
    if (back_url != NULL)
        html_attr(&st, main_el, "data-back-url", back_url);

    /* Who is asking for how much. */
    xmlNodePtr header = ck_elc(&st, main_el, "header", "summary", NULL);
    if (in->shop_name != NULL && in->shop_name[0] != '\0')
        ck_elc(&st, header, "p", "shop", in->shop_name);
    html_el(&st, header, "h1", in->title);
    if (order_id != NULL && order_id[0] != '\0') {
        char order[160];
        snprintf(order, sizeof order, "%s %s", tx(lang, T_ORDER), order_id);
        if (xmlCheckUTF8((const xmlChar *)order) != 0)
            ck_elc(&st, header, "p", "order-id", order);
    }
    char total[96];
    checkout_money(inv->total, inv->currency, lang, total, sizeof total);
    xmlNodePtr amount = ck_elc(&st, header, "p", "amount", NULL);
    /* The label that fits the state is shown: to pay, paid, or just the amount. */
    ck_elc(&st, amount, "span", "amount-label label-due", tx(lang, T_TO_PAY));
    ck_elc(&st, amount, "span", "amount-label label-paid", tx(lang, T_PAID_AMOUNT));
    ck_elc(&st, amount, "span", "amount-label label-other", tx(lang, T_AMOUNT));
    ck_elc(&st, amount, "strong", "amount-value", total);

    /* Waiting: the app button (phones), the QR code, the time left. */
    xmlNodePtr pay = ck_elc(&st, main_el, "section", "outcome outcome-pending", NULL);
    html_attr(&st, pay, "aria-label", tx(lang, T_WAITING));
    char app[300];
    snprintf(app, sizeof app, "%s:%s", in->app_scheme, inv->qr_code + 5);
    xmlNodePtr btn = ck_elc(&st, pay, "a", "button app", tx(lang, T_OPEN_APP));
    html_attr(&st, btn, "href", app);
    html_attr(&st, btn, "id", "app-link");
    xmlNodePtr fig = ck_elc(&st, pay, "figure", "qr", NULL);
    char alt[400];
    snprintf(alt, sizeof alt, "%s (%s)", tx(lang, T_QR_ALT), inv->qr_code);
    ck_qr(&st, hdoc, fig, inv->qr_code, alt);
    xmlNodePtr cap = html_el(&st, fig, "figcaption", NULL);
    ck_elc(&st, cap, "span", "scan", tx(lang, T_SCAN));
    ck_elc(&st, cap, "span", "scan-other", tx(lang, T_SCAN_OTHER));
    xmlNodePtr wait = ck_elc(&st, pay, "p", "waiting", NULL);
    ck_elc(&st, wait, "span", "spinner", NULL);
    html_el(&st, wait, "span", tx(lang, T_WAITING));
    xmlNodePtr timer = ck_elc(&st, pay, "p", "timer", tx(lang, T_EXPIRES_IN));
    char clock[32];
    snprintf(clock, sizeof clock, " %lld:%02lld", (long long)(left_s / 60),
             (long long)(left_s % 60));
    xmlNodePtr t = html_el(&st, timer, "time", clock + 1);
    html_attr(&st, t, "id", "time-left");
    xmlNodePtr offline = ck_elc(&st, pay, "p", "offline", tx(lang, T_OFFLINE));
    html_attr(&st, offline, "role", "alert");
    xmlNodePtr nos = html_el(&st, pay, "noscript", NULL);
    xmlNodePtr np = html_el(&st, nos, "p", tx(lang, T_NOSCRIPT));
    snprintf(rel, sizeof rel, "/pay/%s", in->token);
    html_attr(&st, html_el(&st, np, "a", tx(lang, T_CHECK_AGAIN)), "href", rel);

    /* Every outcome; the live region announces the one that comes. */
    xmlNodePtr live = ck_elc(&st, main_el, "div", "outcomes", NULL);
    html_attr(&st, live, "aria-live", "polite");
    xmlNodePtr paid = ck_outcome(&st, live, "paid", "\xe2\x9c\x93", tx(lang, T_PAID_TITLE));
    html_el(&st, paid, "p", tx(lang, back_url ? T_PAID_BACK : T_PAID_NOBACK));
    ck_back(&st, paid, lang, back_url);
    static const struct {
        const char *state;
        checkout_text title;
    } ends[] = {
        {"canceled", T_CANCELED_TITLE}, {"failed", T_FAILED_TITLE}, {"expired", T_EXPIRED_TITLE}};
    for (size_t i = 0; i < sizeof ends / sizeof *ends; i++) {
        xmlNodePtr sec = ck_outcome(&st, live, ends[i].state, "\xc3\x97", tx(lang, ends[i].title));
        html_el(&st, sec, "p", tx(lang, T_NOTHING_CHARGED));
        ck_back(&st, sec, lang, back_url);
    }

    ck_rows(&st, main_el, in, doc);
    const char *footer = json_string_value(json_object_get(doc, "footer"));
    xmlNodePtr foot = ck_elc(&st, main_el, "footer", "foot", NULL);
    if (footer != NULL && footer[0] != '\0')
        html_el(&st, foot, "p", footer);
    ck_elc(&st, foot, "p", "secure", tx(lang, T_SECURE));

    ck_dump(&st, hdoc, out);
    xmlFreeDoc(hdoc);
    json_decref(doc);
    return ck_from_html(st.err);
}

checkout_err checkout_render_not_found(checkout_lang lang, const char *version, buf *out)
{
    html_builder st = {HTML_OK, NULL, 0};
    htmlDocPtr hdoc = htmlNewDoc(NULL, NULL);
    if (hdoc == NULL)
        return CHECKOUT_ERR_INTERNAL;
    xmlNodePtr body = ck_head(&st, hdoc, lang, tx(lang, T_NOT_FOUND_TITLE), version, false);
    xmlNodePtr main_el = ck_elc(&st, body, "main", "checkout", NULL);
    html_attr(&st, main_el, "data-state", "missing");
    xmlNodePtr sec = ck_outcome(&st, main_el, "missing", "?", tx(lang, T_NOT_FOUND_TITLE));
    html_el(&st, sec, "p", tx(lang, T_NOT_FOUND_TEXT));
    ck_dump(&st, hdoc, out);
    xmlFreeDoc(hdoc);
    return ck_from_html(st.err);
}
