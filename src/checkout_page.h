/* checkout_page.h — the buyer's payment page for one invoice (GET /pay/{token}),
 * rendered with libxml2's HTML tree API from the gateway's own data.
 *
 * The page carries every state's text (pending, paid, canceled, failed,
 * expired) in the buyer's language; the state it is in when rendered is the
 * one shown (a reload always shows the current state), and
 * /pay/assets/checkout.js switches between them as the invoice moves. No
 * inline script or style: the page works under a strict
 * Content-Security-Policy. Shop text (title, rows, footer) only ever becomes
 * text nodes or attribute values, escaped by the serializer.
 *
 * Also here: the page's state of an invoice, the language from
 * Accept-Language, and amounts written the way the buyer's language writes
 * them ("1 234,50 kr", "SEK 1,234.50"). */
#ifndef SEQR_CHECKOUT_PAGE_H
#define SEQR_CHECKOUT_PAGE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "store.h"

typedef enum { CHECKOUT_EN = 0, CHECKOUT_SV } checkout_lang;

typedef enum {
    CHECKOUT_PENDING = 0, /* waiting for the buyer */
    CHECKOUT_PAID,        /* PAID, or RESERVED (the buyer approved a reservation) */
    CHECKOUT_CANCELED,
    CHECKOUT_FAILED,
    CHECKOUT_EXPIRED /* not paid in time (canceled by expiry, or about to be) */
} checkout_state;

typedef enum { CHECKOUT_OK = 0, CHECKOUT_ERR_INVALID, CHECKOUT_ERR_INTERNAL } checkout_err;

/* "pending", "paid", "canceled", "failed", "expired" (static). */
const char *checkout_state_name(checkout_state s);
/* The page's state of inv at now_ms. */
checkout_state checkout_state_of(const store_invoice *inv, int64_t now_ms);
/* The best of Swedish and English for an Accept-Language header (NULL or
 * unparsable: English). Honours q-values; "sv", "sv-SE", "sv-FI" are Swedish. */
checkout_lang checkout_lang_pick(const char *accept_language);
/* "en" or "sv" (static). */
const char *checkout_lang_tag(checkout_lang lang);
/* Writes minor units of currency as lang writes them into out (UTF-8). */
void checkout_money(int64_t minor, const char *currency, checkout_lang lang, char *out,
                    size_t outlen);

typedef struct {
    const store_invoice *inv; /* borrowed */
    const char *shop_name;    /* shown above the title; "" = none */
    const char *title;        /* the invoice's title (the shop's default when it gave none) */
    const char *app_scheme;   /* "SEQR" or "SEQR-DEBUG": the app link's scheme */
    const char *token;        /* the page's token (links to its status and events) */
    const char *events;       /* "" = no event stream; else its path relative to /pay/ */
    const char *version;      /* the gateway's version, to version the assets' URLs */
    checkout_lang lang;
    int64_t now_ms;
} checkout_input;

/* Appends the page as an HTML document to out. CHECKOUT_ERR_INVALID with a
 * message in msg when the invoice cannot be shown (no QR code, text that is
 * not UTF-8); nothing is appended then. */
checkout_err checkout_render(const checkout_input *in, buf *out, char *msg, size_t msglen);

/* Appends the short "no such payment" page in lang (for a 404). */
checkout_err checkout_render_not_found(checkout_lang lang, const char *version, buf *out);

#endif
