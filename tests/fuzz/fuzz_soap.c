/* fuzz_soap.c — libFuzzer harness: any bytes as a SEQR answer, through every
 * operation's parser. Nothing may crash, leak or read out of bounds. The
 * getPaymentStatus answer is read both ways, streaming (the poller's) and
 * through a tree (the reference): any difference in verdict, fields or
 * message aborts. */
#include <libxml/parser.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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
    seqr_payment_status ps, ps_tree;
    seqr_result res_tree;
    memset(&res, 0, sizeof res);
    memset(&res_tree, 0, sizeof res_tree);
    seqr_err e = seqr_parse_get_payment_status(d, size, &ps, &res);
    seqr_err e_tree = seqr_parse_get_payment_status_tree(d, size, &ps_tree, &res_tree);
    if (e != e_tree || memcmp(&ps, &ps_tree, sizeof ps) != 0 || res.code != res_tree.code ||
        strcmp(res.description, res_tree.description) != 0 ||
        strcmp(res.fault_code, res_tree.fault_code) != 0 ||
        strcmp(res.fault_string, res_tree.fault_string) != 0 ||
        strcmp(res.message, res_tree.message) != 0) {
        fprintf(stderr, "getPaymentStatus read two ways differs:\n stream %d %s\n tree   %d %s\n",
                (int)e, res.message, (int)e_tree, res_tree.message);
        abort();
    }
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
