/* seqr/codes.c — the SEQR resultCode table; see seqr/codes.h. */
#include "codes.h"

#include <stddef.h>

static const seqr_code_info seqr_codes[] = {
    {0, "SUCCESS", "the call succeeded", false, 200},
    {2, "REPORT_NOT_READY", "the report is still being produced; ask again in a few seconds", true,
     503},
    {20, "AUTHENTICATION_FAILED", "SEQR rejected the configured principal or password", false, 502},
    {21, "ACCESS_DENIED", "the principal may not perform this operation or see this invoice", false,
     502},
    {23, "INVALID_ERS_REFERENCE", "SEQR does not know this payment (ersReference)", false, 409},
    {29, "INVALID_INITIATOR_PRINCIPAL_ID", "the configured terminal or reseller id is invalid",
     false, 502},
    {37, "INITIATOR_PRINCIPAL_NOT_FOUND", "the configured terminal or reseller does not exist",
     false, 502},
    {49, "INVALID_INVOICE_DATA", "SEQR rejected the invoice data", false, 422},
    {50, "CANNOT_CANCEL_PAID_INVOICE", "the invoice is paid and can no longer be canceled", false,
     409},
    {51, "CANNOT_CANCEL_INVOICE_IN_PROGRESS",
     "the buyer is paying right now; the invoice cannot be canceled", true, 409},
    {53, "INVALID_SEQR_ID", "the SEQR ID is invalid or already assigned", false, 422},
    {54, "INVALID_INVOICE_REFERENCE", "SEQR does not know this invoice", false, 404},
    {64, "INVALID_NOTIFICATION_URL", "SEQR rejected the notification URL", false, 422},
    {90, "SYSTEM_ERROR", "SEQR had an internal error", true, 502},
    {91, "UNSUPPORTED_OPERATION", "SEQR does not support this operation here", false, 502},
    {94, "SERVICE_UNAVAILABLE", "a bank or service behind SEQR is down; retry later", true, 503},
    {95, "INVOICE_ALREADY_CANCELED", "the invoice was already canceled", false, 409},
    {96, "INVOICE_STATE_NOT_RESERVED", "the invoice is not in the RESERVED state", false, 409},
    {97, "RESELLER_NOT_ALLOWED_TO_DO_REFUND", "this merchant may not refund", false, 409},
    {98, "SUM_OF_REFUNDS_CAN_NOT_BE_MORE_THAN_ORIGINAL_TRANSACTION",
     "the refunds would exceed the amount paid", false, 422},
    {99, "RECEIVER_ACCOUNT_DOES_NOT_ALLOW_REFUNDS", "the receiving account does not allow refunds",
     false, 409},
};

const seqr_code_info *seqr_code_lookup(int code)
{
    for (size_t i = 0; i < sizeof seqr_codes / sizeof *seqr_codes; i++)
        if (seqr_codes[i].code == code)
            return &seqr_codes[i];
    return NULL;
}

int seqr_code_http_status(int code)
{
    const seqr_code_info *e = seqr_code_lookup(code);
    return e ? e->http_status : 502;
}

bool seqr_code_retryable(int code)
{
    const seqr_code_info *e = seqr_code_lookup(code);
    return e != NULL && e->retryable;
}

const char *seqr_code_name(int code)
{
    const seqr_code_info *e = seqr_code_lookup(code);
    return e ? e->name : "UNKNOWN_RESULT_CODE";
}

const seqr_code_info *seqr_code_table(int *n)
{
    *n = (int)(sizeof seqr_codes / sizeof *seqr_codes);
    return seqr_codes;
}
