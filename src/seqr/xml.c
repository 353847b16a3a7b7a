/* seqr/xml.c — SOAP envelope helpers; see seqr/xml.h. */
#include "xml.h"

#include <libxml/SAX2.h>
#include <libxml/dict.h>
#include <libxml/parser.h>
#include <libxml/xmlsave.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    bool saw_dtd;
    const seqr_xml_sax *sax; /* streaming reads only */
    bool out_of_memory;      /* a callback stopped the parser for want of memory */
    bool ended;              /* the parser reached the document's end (not halted) */
} seqr_xml_guard;

static void seqr_xml_refuse_dtd(void *ctx, const xmlChar *name, const xmlChar *ext_id,
                                const xmlChar *sys_id)
{
    (void)name;
    (void)ext_id;
    (void)sys_id;
    xmlParserCtxtPtr ctxt = ctx;
    seqr_xml_guard *g = ctxt->_private;
    if (g != NULL)
        g->saw_dtd = true;
    xmlStopParser(ctxt);
}

static void seqr_xml_refuse_entity(void *ctx, const xmlChar *name, int type,
                                   const xmlChar *public_id, const xmlChar *system_id,
                                   xmlChar *content)
{
    (void)name;
    (void)type;
    (void)public_id;
    (void)system_id;
    (void)content;
    xmlParserCtxtPtr ctxt = ctx;
    seqr_xml_guard *g = ctxt->_private;
    if (g != NULL)
        g->saw_dtd = true;
    xmlStopParser(ctxt);
}

/* Each thread keeps one push parser context and reuses it (reset with
 * xmlCtxtResetPush for every document): creating one per document was a
 * sixth of a poll's parse. It keeps two, one that builds trees and one for
 * streaming reads. A push context is fed the whole document at once: read
 * from memory (xmlCtxtReadMemory), libxml2 2.9 asks its input to grow
 * dozens of times per small document, a quarter of a poll's instructions. */
#define SEQR_XML_DICT_MAX 4096
static pthread_key_t seqr_xml_ctxt_key[2];
static pthread_once_t seqr_xml_ctxt_once = PTHREAD_ONCE_INIT;
static bool seqr_xml_ctxt_key_ok;

static void seqr_xml_ctxt_free(void *ctxt)
{
    xmlFreeParserCtxt(ctxt);
}

static void seqr_xml_ctxt_key_init(void)
{
    seqr_xml_ctxt_key_ok = pthread_key_create(&seqr_xml_ctxt_key[0], seqr_xml_ctxt_free) == 0 &&
                           pthread_key_create(&seqr_xml_ctxt_key[1], seqr_xml_ctxt_free) == 0;
}

static void seqr_xml_sax_start(void *ctx, const xmlChar *localname, const xmlChar *prefix,
                               const xmlChar *uri, int nb_namespaces, const xmlChar **namespaces,
                               int nb_attributes, int nb_defaulted, const xmlChar **attributes)
{
    (void)nb_namespaces;
    (void)namespaces;
    (void)nb_attributes;
    (void)nb_defaulted;
    (void)attributes;
    xmlParserCtxtPtr ctxt = ctx;
    seqr_xml_guard *g = ctxt->_private;
    if (g == NULL || g->sax == NULL)
        return;
    const xmlChar *name = localname;
    if (prefix != NULL && uri == NULL) {
        /* An undeclared prefix: a tree names that element "prefix:name"
         * (libxml2's SAX2 builder), so a streaming read does too. */
        const xmlChar *q = xmlDictQLookup(ctxt->dict, prefix, localname);
        if (q == NULL) {
            g->out_of_memory = true;
            xmlStopParser(ctxt);
            return;
        }
        name = q;
    }
    g->sax->start(g->sax->ud, (const char *)name, (const char *)uri);
}

static void seqr_xml_sax_end(void *ctx, const xmlChar *localname, const xmlChar *prefix,
                             const xmlChar *uri)
{
    (void)localname;
    (void)prefix;
    (void)uri;
    xmlParserCtxtPtr ctxt = ctx;
    seqr_xml_guard *g = ctxt->_private;
    if (g != NULL && g->sax != NULL)
        g->sax->end(g->sax->ud);
}

static void seqr_xml_sax_text(void *ctx, const xmlChar *ch, int len)
{
    xmlParserCtxtPtr ctxt = ctx;
    seqr_xml_guard *g = ctxt->_private;
    if (g != NULL && g->sax != NULL && len > 0)
        g->sax->text(g->sax->ud, (const char *)ch, (size_t)len);
}

/* The end of the document: the push parser reports it only when it was not
 * halted on the way (an input it cannot convert from its declared or detected
 * encoding halts it without an error of the document's own). The tree
 * reader's end also finishes its tree. */
static void seqr_xml_sax_end_document(void *ctx)
{
    xmlParserCtxtPtr ctxt = ctx;
    seqr_xml_guard *g = ctxt->_private;
    if (g != NULL)
        g->ended = true;
}

static void seqr_xml_tree_end_document(void *ctx)
{
    xmlSAX2EndDocument(ctx);
    seqr_xml_sax_end_document(ctx);
}

/* This thread's parser context (streaming: for seqr_xml_read) with the DTD
 * guards installed; NULL when out of memory. Borrowed: it lives until the
 * thread ends. */
static xmlParserCtxtPtr seqr_xml_thread_ctxt(bool streaming)
{
    pthread_once(&seqr_xml_ctxt_once, seqr_xml_ctxt_key_init);
    if (!seqr_xml_ctxt_key_ok)
        return NULL;
    pthread_key_t key = seqr_xml_ctxt_key[streaming ? 1 : 0];
    xmlParserCtxtPtr ctxt = pthread_getspecific(key);
    if (ctxt != NULL && xmlDictSize(ctxt->dict) <= SEQR_XML_DICT_MAX)
        return ctxt;
    if (ctxt != NULL) {
        /* Its dictionary keeps every element name it has seen; a peer
         * sending new names forever must not grow it forever. */
        (void)pthread_setspecific(key, NULL);
        xmlFreeParserCtxt(ctxt);
    }
    ctxt = xmlCreatePushParserCtxt(NULL, NULL, NULL, 0, NULL);
    if (ctxt == NULL)
        return NULL;
    if (streaming) {
        /* No tree: only elements and text reach seqr_xml_read's caller. */
        memset(ctxt->sax, 0, sizeof *ctxt->sax);
        ctxt->sax->initialized = XML_SAX2_MAGIC;
        ctxt->sax->startElementNs = seqr_xml_sax_start;
        ctxt->sax->endElementNs = seqr_xml_sax_end;
        ctxt->sax->characters = seqr_xml_sax_text;
        ctxt->sax->ignorableWhitespace = seqr_xml_sax_text;
        ctxt->sax->cdataBlock = seqr_xml_sax_text;
        ctxt->sax->endDocument = seqr_xml_sax_end_document;
    } else {
        ctxt->sax->endDocument = seqr_xml_tree_end_document;
    }
    ctxt->sax->internalSubset = seqr_xml_refuse_dtd;
    ctxt->sax->externalSubset = seqr_xml_refuse_dtd;
    ctxt->sax->entityDecl = seqr_xml_refuse_entity;
    if (pthread_setspecific(key, ctxt) != 0) {
        xmlFreeParserCtxt(ctxt);
        return NULL;
    }
    return ctxt;
}

/* Checks what both ways of parsing refuse before any parsing. */
static bool seqr_xml_precheck(const char *data, size_t len, char *err, size_t errlen)
{
    if (data == NULL || len == 0) {
        snprintf(err, errlen, "empty document");
        return false;
    }
    if (len > SEQR_XML_MAX_BYTES) {
        snprintf(err, errlen, "document larger than %d bytes", SEQR_XML_MAX_BYTES);
        return false;
    }
    if (len > (size_t)0x7fffffff) {
        snprintf(err, errlen, "document too large");
        return false;
    }
    return true;
}

/* Parses data with this thread's context: the same options for both ways
 * of reading (no network, no error output, CDATA as text; entities stay
 * unreplaced and DTDs are refused by the callbacks above). The encoding is
 * detected from the first bytes and the XML declaration as a read from
 * memory does. False when the context cannot be reset (out of memory). */
static bool seqr_xml_run(xmlParserCtxtPtr ctxt, const char *data, size_t len)
{
    if (xmlCtxtResetPush(ctxt, data, (int)len, NULL, NULL) != 0)
        return false;
    (void)xmlCtxtUseOptions(ctxt, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING |
                                      XML_PARSE_NOCDATA);
    /* Its result is ctxt->wellFormed and the last error, looked at by the
     * caller. */
    (void)xmlParseChunk(ctxt, NULL, 0, 1);
    return true;
}

/* The reason a parse that ended not well-formed failed. */
static void seqr_xml_malformed(xmlParserCtxtPtr ctxt, char *err, size_t errlen)
{
    const xmlError *e = xmlCtxtGetLastError(ctxt);
    if (e != NULL && e->message != NULL) {
        snprintf(err, errlen, "malformed XML at line %d: %s", e->line, e->message);
        size_t n = strlen(err);
        if (n > 0 && err[n - 1] == '\n')
            err[n - 1] = '\0';
    } else {
        snprintf(err, errlen, "malformed XML");
    }
}

bool seqr_xml_read(const char *data, size_t len, const seqr_xml_sax *sax, char *err, size_t errlen)
{
    bool ok = false;
    xmlParserCtxtPtr ctxt = NULL;
    seqr_xml_guard guard = {false, sax, false, false};

    if (!seqr_xml_precheck(data, len, err, errlen))
        goto cleanup;
    ctxt = seqr_xml_thread_ctxt(true);
    if (ctxt == NULL) {
        snprintf(err, errlen, "out of memory");
        goto cleanup;
    }
    ctxt->_private = &guard;
    if (!seqr_xml_run(ctxt, data, len)) {
        snprintf(err, errlen, "out of memory");
        goto cleanup;
    }
    if (ctxt->myDoc != NULL) { /* never: no callback builds one */
        xmlFreeDoc(ctxt->myDoc);
        ctxt->myDoc = NULL;
    }
    if (guard.saw_dtd) {
        snprintf(err, errlen, "DOCTYPE/DTD not allowed");
        goto cleanup;
    }
    if (guard.out_of_memory) {
        snprintf(err, errlen, "out of memory");
        goto cleanup;
    }
    if (!ctxt->wellFormed || !guard.ended) {
        seqr_xml_malformed(ctxt, err, errlen);
        goto cleanup;
    }
    ok = true;
cleanup:
    if (ctxt != NULL)
        ctxt->_private = NULL;
    return ok;
}

xmlDocPtr seqr_xml_parse(const char *data, size_t len, char *err, size_t errlen)
{
    xmlDocPtr doc = NULL;
    xmlParserCtxtPtr ctxt = NULL;
    seqr_xml_guard guard = {false, NULL, false, false};

    if (!seqr_xml_precheck(data, len, err, errlen))
        goto cleanup;
    ctxt = seqr_xml_thread_ctxt(false);
    if (ctxt == NULL) {
        snprintf(err, errlen, "out of memory");
        goto cleanup;
    }
    ctxt->_private = &guard;
    if (!seqr_xml_run(ctxt, data, len)) {
        snprintf(err, errlen, "out of memory");
        goto cleanup;
    }
    doc = ctxt->myDoc; /* ours now */
    ctxt->myDoc = NULL;
    if (guard.saw_dtd) {
        snprintf(err, errlen, "DOCTYPE/DTD not allowed");
        if (doc != NULL) {
            xmlFreeDoc(doc);
            doc = NULL;
        }
        goto cleanup;
    }
    if (doc == NULL || !ctxt->wellFormed || !guard.ended) {
        seqr_xml_malformed(ctxt, err, errlen);
        if (doc != NULL) {
            xmlFreeDoc(doc);
            doc = NULL;
        }
        goto cleanup;
    }
    if (doc->intSubset != NULL || doc->extSubset != NULL) {
        snprintf(err, errlen, "DOCTYPE/DTD not allowed");
        xmlFreeDoc(doc);
        doc = NULL;
        goto cleanup;
    }
cleanup:
    if (ctxt != NULL)
        ctxt->_private = NULL;
    return doc;
}

xmlDocPtr seqr_xml_new_envelope(const char *soap_prefix, const char *op_prefix, const char *op_name,
                                xmlNodePtr *op_out)
{
    xmlDocPtr doc = xmlNewDoc(BAD_CAST "1.0");
    xmlNodePtr env = xmlNewNode(NULL, BAD_CAST "Envelope");
    xmlDocSetRootElement(doc, env);
    xmlNsPtr soap = xmlNewNs(env, BAD_CAST SEQR_XML_SOAP_NS, BAD_CAST soap_prefix);
    xmlSetNs(env, soap);
    xmlNodePtr body = xmlNewChild(env, soap, BAD_CAST "Body", NULL);
    xmlNodePtr op = xmlNewChild(body, NULL, BAD_CAST op_name, NULL);
    xmlNsPtr ns = xmlNewNs(op, BAD_CAST SEQR_XML_NS, BAD_CAST op_prefix);
    xmlSetNs(op, ns);
    if (op_out != NULL)
        *op_out = op;
    return doc;
}

static bool seqr_xml_in_soap_ns(xmlNodePtr n)
{
    return n->ns != NULL && n->ns->href != NULL &&
           strcmp((const char *)n->ns->href, SEQR_XML_SOAP_NS) == 0;
}

xmlNodePtr seqr_xml_body_child(xmlDocPtr doc)
{
    if (doc == NULL)
        return NULL;
    xmlNodePtr env = xmlDocGetRootElement(doc);
    if (env == NULL || strcmp((const char *)env->name, "Envelope") != 0 ||
        !seqr_xml_in_soap_ns(env))
        return NULL;
    for (xmlNodePtr n = seqr_xml_first_element(env); n; n = seqr_xml_next_element(n)) {
        if (strcmp((const char *)n->name, "Body") == 0 && seqr_xml_in_soap_ns(n))
            return seqr_xml_first_element(n);
    }
    return NULL;
}

xmlNodePtr seqr_xml_first_element(xmlNodePtr parent)
{
    if (parent == NULL)
        return NULL;
    for (xmlNodePtr n = parent->children; n; n = n->next)
        if (n->type == XML_ELEMENT_NODE)
            return n;
    return NULL;
}

xmlNodePtr seqr_xml_next_element(xmlNodePtr node)
{
    if (node == NULL)
        return NULL;
    for (xmlNodePtr n = node->next; n; n = n->next)
        if (n->type == XML_ELEMENT_NODE)
            return n;
    return NULL;
}

const char *seqr_xml_name(xmlNodePtr node)
{
    return node && node->name ? (const char *)node->name : "";
}

xmlNodePtr seqr_xml_child(xmlNodePtr parent, const char *name)
{
    for (xmlNodePtr n = seqr_xml_first_element(parent); n; n = seqr_xml_next_element(n))
        if (strcmp((const char *)n->name, name) == 0)
            return n;
    return NULL;
}

xmlNodePtr seqr_xml_next(xmlNodePtr node, const char *name)
{
    for (xmlNodePtr n = seqr_xml_next_element(node); n; n = seqr_xml_next_element(n))
        if (strcmp((const char *)n->name, name) == 0)
            return n;
    return NULL;
}

char *seqr_xml_text(xmlNodePtr node)
{
    xmlChar *c = xmlNodeGetContent(node);
    char *s = strdup(c ? (const char *)c : "");
    xmlFree(c);
    if (s == NULL)
        abort();
    return s;
}

char *seqr_xml_child_text(xmlNodePtr parent, const char *name)
{
    xmlNodePtr n = seqr_xml_child(parent, name);
    return n ? seqr_xml_text(n) : NULL;
}

bool seqr_xml_child_copy(xmlNodePtr parent, const char *name, char *dst, size_t dstlen)
{
    if (dstlen == 0)
        return false;
    dst[0] = '\0';
    char *t = seqr_xml_child_text(parent, name);
    if (t == NULL)
        return false;
    size_t n = strlen(t);
    bool ok = n < dstlen;
    if (ok)
        memcpy(dst, t, n + 1);
    free(t);
    return ok;
}

xmlNodePtr seqr_xml_add_node(xmlNodePtr parent, const char *name)
{
    /* xmlNewChild(parent, NULL, ...) would give the child the parent's
     * namespace; SEQR's children are unqualified, so build the node bare. */
    xmlNodePtr n = xmlNewDocNode(parent->doc, NULL, BAD_CAST name, NULL);
    if (n == NULL)
        abort();
    xmlAddChild(parent, n);
    return n;
}

xmlNodePtr seqr_xml_add_text(xmlNodePtr parent, const char *name, const char *text)
{
    if (text == NULL)
        return NULL;
    xmlNodePtr n = seqr_xml_add_node(parent, name);
    /* A text node: &, < and > are escaped when the document is written. */
    xmlNodeAddContent(n, BAD_CAST text);
    return n;
}

xmlNodePtr seqr_xml_add_amount(xmlNodePtr parent, const char *name, int64_t minor,
                               const char *currency)
{
    char m[MONEY_BUFLEN];
    xmlNodePtr n = seqr_xml_add_node(parent, name);
    seqr_xml_add_text(n, "value", money_format(minor, m));
    seqr_xml_add_text(n, "currency", currency ? currency : "");
    return n;
}

xmlNodePtr seqr_xml_add_int(xmlNodePtr parent, const char *name, long long value)
{
    char t[32];
    snprintf(t, sizeof t, "%lld", value);
    return seqr_xml_add_text(parent, name, t);
}

void seqr_xml_serialize(xmlDocPtr doc, buf *out)
{
    xmlChar *mem = NULL;
    int size = 0;
    xmlDocDumpMemoryEnc(doc, &mem, &size, "UTF-8");
    if (mem != NULL)
        buf_append(out, mem, (size_t)size);
    xmlFree(mem);
}

/* notificationUrl carries the invoice's notify token (token=...): keep the
 * URL, mask the token. */
static void seqr_xml_mask_token(xmlNodePtr n)
{
    xmlChar *url = xmlNodeGetContent(n);
    if (url == NULL)
        return;
    const char *t = strstr((const char *)url, "token=");
    if (t != NULL) {
        buf shown = BUF_INIT;
        buf_append(&shown, url, (size_t)(t - (const char *)url) + 6);
        buf_puts(&shown, "********");
        const char *rest = strchr(t, '&');
        if (rest != NULL)
            buf_puts(&shown, rest);
        xmlNodeSetContent(n, NULL);
        xmlNodeAddContent(n, BAD_CAST buf_cstr(&shown));
        buf_free(&shown);
    }
    xmlFree(url);
}

static void seqr_xml_mask_passwords(xmlNodePtr node)
{
    for (xmlNodePtr n = seqr_xml_first_element(node); n; n = seqr_xml_next_element(n)) {
        if (strcmp((const char *)n->name, "password") == 0)
            xmlNodeSetContent(n, BAD_CAST "********");
        else if (strcmp((const char *)n->name, "notificationUrl") == 0)
            seqr_xml_mask_token(n);
        else
            seqr_xml_mask_passwords(n);
    }
}

void seqr_xml_serialize_redacted(xmlDocPtr doc, buf *out)
{
    xmlDocPtr copy = xmlCopyDoc(doc, 1);
    if (copy == NULL)
        return;
    seqr_xml_mask_passwords((xmlNodePtr)copy);
    seqr_xml_serialize(copy, out);
    xmlFreeDoc(copy);
}

bool seqr_xml_fault(xmlNodePtr body_child, char *code, size_t codelen, char *string,
                    size_t stringlen)
{
    if (body_child == NULL || strcmp((const char *)body_child->name, "Fault") != 0 ||
        !seqr_xml_in_soap_ns(body_child))
        return false;
    char *c = seqr_xml_child_text(body_child, "faultcode");
    char *s = seqr_xml_child_text(body_child, "faultstring");
    snprintf(code, codelen, "%s", c ? c : "");
    snprintf(string, stringlen, "%s", s ? s : "");
    free(c);
    free(s);
    return true;
}

void seqr_xml_build_fault(const char *faultcode, const char *faultstring, buf *out)
{
    xmlDocPtr doc = xmlNewDoc(BAD_CAST "1.0");
    xmlNodePtr env = xmlNewNode(NULL, BAD_CAST "Envelope");
    xmlDocSetRootElement(doc, env);
    xmlNsPtr soap = xmlNewNs(env, BAD_CAST SEQR_XML_SOAP_NS, BAD_CAST "soap");
    xmlSetNs(env, soap);
    xmlNodePtr body = xmlNewChild(env, soap, BAD_CAST "Body", NULL);
    xmlNodePtr fault = xmlNewChild(body, soap, BAD_CAST "Fault", NULL);
    seqr_xml_add_text(fault, "faultcode", faultcode);
    seqr_xml_add_text(fault, "faultstring", faultstring);
    seqr_xml_serialize(doc, out);
    xmlFreeDoc(doc);
}
