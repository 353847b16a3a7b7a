/* html.c — HTML tree building helpers; see html.h. */
#include "html.h"

#include <stdarg.h>
#include <stdio.h>

void html_fail(html_builder *b, html_err e, const char *fmt, ...)
{
    if (b->err != HTML_OK)
        return;
    b->err = e;
    if (b->msg != NULL && b->msglen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(b->msg, b->msglen, fmt, ap);
        va_end(ap);
    }
}

xmlNodePtr html_el(html_builder *b, xmlNodePtr parent, const char *name, const char *text)
{
    if (b->err != HTML_OK || parent == NULL)
        return NULL;
    if (text != NULL && xmlCheckUTF8((const xmlChar *)text) == 0) {
        html_fail(b, HTML_ERR_INVALID, "text for <%s> is not valid UTF-8", name);
        return NULL;
    }
    xmlNodePtr n = xmlNewTextChild(parent, NULL, (const xmlChar *)name, (const xmlChar *)text);
    if (n == NULL)
        html_fail(b, HTML_ERR_INTERNAL, "out of memory");
    return n;
}

void html_attr(html_builder *b, xmlNodePtr n, const char *name, const char *value)
{
    if (b->err != HTML_OK || n == NULL)
        return;
    if (xmlCheckUTF8((const xmlChar *)value) == 0) {
        html_fail(b, HTML_ERR_INVALID, "attribute %s is not valid UTF-8", name);
        return;
    }
    if (xmlNewProp(n, (const xmlChar *)name, (const xmlChar *)value) == NULL)
        html_fail(b, HTML_ERR_INTERNAL, "out of memory");
}
