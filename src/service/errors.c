/* service/errors.c — SEQR and store failures mapped to the contract's errors. */
#include "service/private.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "receipt.h"

void service_seqr_error(api_error *err, seqr_err e, const seqr_result *res, const char *op)
{
    switch (e) {
    case SEQR_ERR_RESULT: {
        const seqr_code_info *info = seqr_code_lookup(res->code);
        api_error_set(err, seqr_code_http_status(res->code), "seqr_error", NULL,
                      "SEQR refused %s: %s", op, info ? info->meaning : "unknown result code");
        err->seqr_code = res->code;
        snprintf(err->seqr_desc, sizeof err->seqr_desc, "%s",
                 res->description[0] ? res->description : seqr_code_name(res->code));
        if (seqr_code_retryable(res->code))
            err->retry_after_s = 5;
        break;
    }
    case SEQR_ERR_FAULT:
        api_error_set(err, 502, "seqr_fault", NULL, "SEQR answered %s with a SOAP fault: %s", op,
                      res->fault_string[0] ? res->fault_string : res->message);
        break;
    case SEQR_ERR_BAD_ANSWER:
        api_error_set(err, 502, "seqr_bad_answer", NULL,
                      "SEQR's answer to %s could not be understood: %s", op, res->message);
        break;
    case SEQR_ERR_CONNECT:
        api_error_set(err, 503, "seqr_unreachable", NULL, "SEQR could not be reached for %s: %s",
                      op, res->message);
        err->retry_after_s = 5;
        break;
    case SEQR_ERR_UNAVAILABLE:
        api_error_set(err, 503, "seqr_unavailable", NULL, "SEQR is unavailable for %s: %s", op,
                      res->message);
        err->retry_after_s = 5;
        break;
    case SEQR_ERR_TIMEOUT:
        api_error_set(err, 504, "seqr_timeout", NULL, "SEQR did not answer %s in time", op);
        break;
    case SEQR_ERR_INVALID:
        api_error_set(err, 422, "invalid_request", NULL, "%s: %s", op, res->message);
        break;
    case SEQR_OK:
    case SEQR_ERR_INTERNAL:
    default:
        api_error_set(err, 500, "internal_error", NULL, "%s failed inside the gateway: %s", op,
                      res->message);
        break;
    }
}

bool service_outcome_unknown(seqr_err e)
{
    return e == SEQR_ERR_TIMEOUT || e == SEQR_ERR_BAD_ANSWER || e == SEQR_ERR_INTERNAL ||
           e == SEQR_ERR_UNAVAILABLE;
}

void service_unrecorded(api_error *err, store_err e, const char *after, const char *fmt, ...)
{
    char done[800];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(done, sizeof done, fmt, ap);
    va_end(ap);
    log_error("%s, but the gateway's database failed to record it (%s); %s", done,
              store_strerror(e), after);
    api_error_set(err, 500, "store_error", NULL,
                  "%s, but the gateway's database failed to record it (%s); %s", done,
                  store_strerror(e), after);
}

void service_store_error(api_error *err, store_err e, const char *what)
{
    if (e == STORE_NOT_FOUND)
        api_error_set(err, 404, "not_found", NULL, "%s not found", what);
    else
        api_error_set(err, 500, "store_error", NULL, "the gateway's database failed (%s)",
                      store_strerror(e));
}
