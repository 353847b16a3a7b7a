/* fuzz_soap.c — libFuzzer harness: any bytes as a SEQR answer, through every
 * operation's parser. Nothing may crash, leak or read out of bounds. */
#include <libxml/parser.h>
#include <stdint.h>
#include <string.h>

#include "seqr/parse.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    xmlInitParser();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *d = (const char *)data;
    seqr_result res;
    seqr_send_invoice_answer si;
    seqr_parse_send_invoice(d, size, &si, &res);
    seqr_payment_status ps;
    seqr_parse_get_payment_status(d, size, &ps, &res);
    seqr_refund_answer ra;
    seqr_parse_refund_payment(d, size, &ra, &res);
    char id[64];
    seqr_parse_mark_transaction_period(d, size, id, &res);
    seqr_parse_register_terminal(d, size, id, &res);
    seqr_report rep;
    memset(&rep, 0, sizeof rep);
    seqr_parse_execute_report(d, size, &rep, &res);
    seqr_report_free(&rep);
    seqr_parse_cancel_invoice(d, size, &res);
    seqr_parse_result("assignSeqrId", d, size, &res);
    return 0;
}
