/* seqr/xml.h — SOAP envelope helpers shared by the SEQR client and the simulator.
 *
 * Documents are built with libxml2's tree API (never by pasting strings), so any
 * user text is escaped by the library. Untrusted documents are parsed with
 * seqr_xml_parse(), which refuses DTDs (and so entities), never touches the
 * network and caps the size. Elements are found by local name, whatever their
 * prefix or namespace, so answers with other prefixes and unknown elements work.
 *
 * Call xmlInitParser() once from the main thread before threads use these. */
#ifndef SEQR_XML_H
#define SEQR_XML_H

#include <libxml/tree.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../buf.h"
#include "../money.h"

#define SEQR_XML_NS "http://external.interfaces.ers.seamless.com/"
#define SEQR_XML_SOAP_NS "http://schemas.xmlsoap.org/soap/envelope/"
/* Largest SOAP document either side accepts. */
#define SEQR_XML_MAX_BYTES (2 * 1024 * 1024)

/* Parses an untrusted document. Returns NULL and writes a one-line reason into
 * err (errlen bytes) when it is empty, too large, not well-formed, or has a
 * DOCTYPE. Caller frees the result with xmlFreeDoc(). */
xmlDocPtr seqr_xml_parse(const char *data, size_t len, char *err, size_t errlen);

/* Streaming read of an untrusted document, for answers read without building
 * a tree: the same refusals as seqr_xml_parse (size, DTD and so entities,
 * network) and the same reasons in err. start is called for every element
 * with its local name (or "prefix:name" when the prefix is undeclared, as a
 * tree names it) and namespace URI (NULL for none), end at its end, and text
 * for its character data (CDATA included; any number of pieces, not
 * NUL-terminated). Returns false when the document is refused or not
 * well-formed: the callbacks may have run by then, so the caller throws
 * away what they gathered. Borrowed: everything. */
typedef struct {
    void (*start)(void *ud, const char *name, const char *ns_uri);
    void (*end)(void *ud);
    void (*text)(void *ud, const char *s, size_t len);
    void *ud;
} seqr_xml_sax;
bool seqr_xml_read(const char *data, size_t len, const seqr_xml_sax *sax, char *err, size_t errlen);

/* Creates <soap:Envelope><soap:Body><P:op xmlns:P=SEQR_XML_NS/></soap:Body>
 * (soap_prefix "soapenv" for requests, "soap" for answers; op_prefix "ext" or
 * "ns2"). *op_out receives the operation element. Caller frees the doc. */
xmlDocPtr seqr_xml_new_envelope(const char *soap_prefix, const char *op_prefix, const char *op_name,
                                xmlNodePtr *op_out);

/* The first element inside soap:Body, or NULL when the document is not a SOAP
 * 1.1 envelope with a body. Borrowed. */
xmlNodePtr seqr_xml_body_child(xmlDocPtr doc);

/* First element child of parent whose local name is name; NULL if none. */
xmlNodePtr seqr_xml_child(xmlNodePtr parent, const char *name);
/* Next element sibling after node with that local name; NULL if none. */
xmlNodePtr seqr_xml_next(xmlNodePtr node, const char *name);
/* First element child (any name); next element sibling (any name). */
xmlNodePtr seqr_xml_first_element(xmlNodePtr parent);
xmlNodePtr seqr_xml_next_element(xmlNodePtr node);
/* Local name of an element (borrowed). */
const char *seqr_xml_name(xmlNodePtr node);

/* Text content of the named child as a malloc'd string (caller frees with
 * free()); NULL when the child is absent. */
char *seqr_xml_child_text(xmlNodePtr parent, const char *name);
/* Copies the named child's text into dst (dstlen bytes). Returns false when the
 * child is absent or its text does not fit; dst is then "". */
bool seqr_xml_child_copy(xmlNodePtr parent, const char *name, char *dst, size_t dstlen);
/* Text content of node itself, malloc'd (caller frees). Never NULL for a node. */
char *seqr_xml_text(xmlNodePtr node);

/* Appends an unqualified <name>text</name> to parent; text is escaped by
 * libxml2. A NULL text appends nothing and returns NULL. */
xmlNodePtr seqr_xml_add_text(xmlNodePtr parent, const char *name, const char *text);
/* Appends an empty unqualified element and returns it. */
xmlNodePtr seqr_xml_add_node(xmlNodePtr parent, const char *name);
/* Appends <name><value>149.99</value><currency>SEK</currency></name>. */
xmlNodePtr seqr_xml_add_amount(xmlNodePtr parent, const char *name, int64_t minor,
                               const char *currency);
/* Appends <name>N</name> for an integer. */
xmlNodePtr seqr_xml_add_int(xmlNodePtr parent, const char *name, long long value);

/* Serialises doc (with XML declaration, UTF-8) into out (appended). */
void seqr_xml_serialize(xmlDocPtr doc, buf *out);

/* Serialises doc like seqr_xml_serialize, but with the text of every element
 * named "password" replaced by "********". For logs and debug dumps. */
void seqr_xml_serialize_redacted(xmlDocPtr doc, buf *out);

/* If body_child is a soap:Fault, copies faultcode and faultstring (either may be
 * "") and returns true. */
bool seqr_xml_fault(xmlNodePtr body_child, char *code, size_t codelen, char *string,
                    size_t stringlen);

/* Builds a complete soap:Fault envelope (for the simulator). */
void seqr_xml_build_fault(const char *faultcode, const char *faultstring, buf *out);

#endif
