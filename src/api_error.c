/* api_error.c — see api_error.h. */
#include "api_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void api_error_clear(api_error *err)
{
    memset(err, 0, sizeof *err);
    err->seqr_code = -1;
}

void api_error_set(api_error *err, int http_status, const char *code, const char *field,
                   const char *fmt, ...)
{
    api_error_clear(err);
    err->http_status = http_status;
    snprintf(err->code, sizeof err->code, "%s", code);
    snprintf(err->field, sizeof err->field, "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
}
