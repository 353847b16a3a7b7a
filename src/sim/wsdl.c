/* sim/wsdl.c — GET /soap?wsdl. The schema part is the static document
 * src/sim/seqr.wsdl (compiled in as sim_wsdl_text); the messages, port type,
 * binding and service for the twelve operations are added here with the tree
 * API, and soap:address points at the simulator's own URL. */
#include <libxml/parser.h>
#include <stdio.h>
#include <string.h>

#include "seqr/xml.h"
#include "sim/sim.h"

extern const char sim_wsdl_text[];

#define SIM_WSDL_NS "http://schemas.xmlsoap.org/wsdl/"
#define SIM_WSDL_SOAP_NS "http://schemas.xmlsoap.org/wsdl/soap/"

static const char *const sim_wsdl_ops[] = {
    "sendInvoice",       "updateInvoice",        "getPaymentStatus",   "cancelInvoice",
    "commitReservation", "submitPaymentReceipt", "refundPayment",      "markTransactionPeriod",
    "executeReport",     "registerTerminal",     "unregisterTerminal", "assignSeqrId",
};

static xmlNodePtr sim_wsdl_node(xmlNodePtr parent, xmlNsPtr ns, const char *name, const char *attr,
                                const char *value)
{
    xmlNodePtr n = xmlNewChild(parent, ns, BAD_CAST name, NULL);
    if (attr != NULL)
        xmlNewProp(n, BAD_CAST attr, BAD_CAST value);
    return n;
}

void sim_wsdl(const char *location, buf *out)
{
    xmlDocPtr doc = xmlReadMemory(sim_wsdl_text, (int)strlen(sim_wsdl_text), "seqr.wsdl", NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOBLANKS);
    if (doc == NULL)
        return;
    xmlNodePtr defs = xmlDocGetRootElement(doc);
    xmlNsPtr wsdl = xmlSearchNsByHref(doc, defs, BAD_CAST SIM_WSDL_NS);
    xmlNsPtr soap = xmlSearchNsByHref(doc, defs, BAD_CAST SIM_WSDL_SOAP_NS);
    char qname[96];
    size_t nops = sizeof sim_wsdl_ops / sizeof *sim_wsdl_ops;

    for (size_t i = 0; i < nops; i++) {
        for (int resp = 0; resp < 2; resp++) {
            char name[64];
            snprintf(name, sizeof name, "%s%s", sim_wsdl_ops[i], resp ? "Response" : "");
            xmlNodePtr msg = sim_wsdl_node(defs, wsdl, "message", "name", name);
            xmlNodePtr part = sim_wsdl_node(msg, wsdl, "part", "name", "parameters");
            snprintf(qname, sizeof qname, "tns:%s", name);
            xmlNewProp(part, BAD_CAST "element", BAD_CAST qname);
        }
    }
    xmlNodePtr port_type = sim_wsdl_node(defs, wsdl, "portType", "name", "ERSWSCashRegister");
    for (size_t i = 0; i < nops; i++) {
        xmlNodePtr op = sim_wsdl_node(port_type, wsdl, "operation", "name", sim_wsdl_ops[i]);
        snprintf(qname, sizeof qname, "tns:%s", sim_wsdl_ops[i]);
        sim_wsdl_node(op, wsdl, "input", "message", qname);
        snprintf(qname, sizeof qname, "tns:%sResponse", sim_wsdl_ops[i]);
        sim_wsdl_node(op, wsdl, "output", "message", qname);
    }
    xmlNodePtr binding = sim_wsdl_node(defs, wsdl, "binding", "name", "ERSWSCashRegisterBinding");
    xmlNewProp(binding, BAD_CAST "type", BAD_CAST "tns:ERSWSCashRegister");
    xmlNodePtr sb = sim_wsdl_node(binding, soap, "binding", "style", "document");
    xmlNewProp(sb, BAD_CAST "transport", BAD_CAST "http://schemas.xmlsoap.org/soap/http");
    for (size_t i = 0; i < nops; i++) {
        xmlNodePtr op = sim_wsdl_node(binding, wsdl, "operation", "name", sim_wsdl_ops[i]);
        sim_wsdl_node(op, soap, "operation", "soapAction", "");
        xmlNodePtr in = sim_wsdl_node(op, wsdl, "input", NULL, NULL);
        sim_wsdl_node(in, soap, "body", "use", "literal");
        xmlNodePtr outp = sim_wsdl_node(op, wsdl, "output", NULL, NULL);
        sim_wsdl_node(outp, soap, "body", "use", "literal");
    }
    xmlNodePtr service = sim_wsdl_node(defs, wsdl, "service", "name", "ERSWSCashRegisterService");
    xmlNodePtr port = sim_wsdl_node(service, wsdl, "port", "name", "ERSWSCashRegisterPort");
    xmlNewProp(port, BAD_CAST "binding", BAD_CAST "tns:ERSWSCashRegisterBinding");
    sim_wsdl_node(port, soap, "address", "location", location);

    xmlChar *mem = NULL;
    int size = 0;
    xmlDocDumpFormatMemoryEnc(doc, &mem, &size, "UTF-8", 1);
    if (mem != NULL)
        buf_append(out, mem, (size_t)size);
    xmlFree(mem);
    xmlFreeDoc(doc);
}
