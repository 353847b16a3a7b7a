/* api_error.h — the contract-shaped error every layer fills and the HTTP layer
 * renders as {"error": {"code", "message", "field"?, "seqrResultCode"?,
 * "seqrResultDescription"?}} with http_status (docs/openapi.yaml, Error).
 * Plain struct, no allocation; copy freely. */
#ifndef SEQR_API_ERROR_H
#define SEQR_API_ERROR_H

typedef struct {
    int http_status;     /* 400, 401, 404, 409, 413, 422, 500, 502, 503, 504 */
    char code[48];       /* machine-readable: "invalid_field", "seqr_error", ... */
    char message[512];   /* human sentence; never holds a secret */
    char field[96];      /* JSON path of the offending field, e.g. "rows[0].quantity"; "" if none */
    int seqr_code;       /* SEQR resultCode, -1 if none */
    char seqr_desc[128]; /* SEQR resultDescription, "" if none */
    int retry_after_s;   /* > 0: send Retry-After */
} api_error;

/* Resets err to "no error" (http_status 0, seqr_code -1). */
void api_error_clear(api_error *err);
/* Fills status, code, field (may be NULL) and a printf-style message. */
void api_error_set(api_error *err, int http_status, const char *code, const char *field,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#endif
