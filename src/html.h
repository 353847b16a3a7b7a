/* html.h — building HTML documents with libxml2's tree API, for the receipt
 * (receipt.c) and the payment page (checkout_page.c).
 *
 * Every text a shop or SEQR supplied becomes a text node or an attribute
 * value, so libxml2 escapes it when it serialises: it can never become
 * markup. Text that is not UTF-8 is refused. The first failure sticks in the
 * builder and every later call does nothing, so a renderer checks once, at
 * the end. The builder borrows msg (may be NULL); nodes belong to their
 * document. */
#ifndef SEQR_HTML_H
#define SEQR_HTML_H

#include <libxml/tree.h>
#include <stddef.h>

typedef enum {
    HTML_OK = 0,
    HTML_ERR_INVALID, /* text or a value that cannot be shown (not UTF-8, ...) */
    HTML_ERR_INTERNAL /* libxml2 ran out of memory */
} html_err;

typedef struct {
    html_err err;
    char *msg; /* the first failure's message, msglen bytes; may be NULL */
    size_t msglen;
} html_builder;

/* Records the first failure (later ones are ignored). */
void html_fail(html_builder *b, html_err e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Appends <name>text</name> to parent (no text when text is NULL); NULL when
 * the builder has failed, parent is NULL, or this call fails. */
xmlNodePtr html_el(html_builder *b, xmlNodePtr parent, const char *name, const char *text);
/* Sets attribute name=value on n (nothing when n is NULL or b has failed). */
void html_attr(html_builder *b, xmlNodePtr n, const char *name, const char *value);

#endif
