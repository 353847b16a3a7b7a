/* fuzz_invoice.c — libFuzzer harness: any bytes as a webshop's invoice or
 * refund body, through the JSON validation the REST API uses. */
#include <jansson.h>
#include <stdint.h>

#include "invoice.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (j == NULL)
        return 0;
    invoice_input in;
    api_error err;
    api_error_clear(&err);
    if (invoice_parse(j, &in, &err)) {
        seqr_invoice si;
        invoice_to_seqr(&in, &si);
    }
    invoice_input_free(&in);
    int64_t amount;
    invoice_json_amount(json_object_get(j, "amount"), 2, &amount);
    json_decref(j);
    return 0;
}
