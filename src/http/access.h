/* http/access.h — what happens after each request is answered: one access-log
 * line (with the error code of a failed request; successful reads at DEBUG,
 * so a shop polling an invoice does not fill the log) and the request metrics
 * by route and status. Kept apart from server.c so the request plumbing and
 * the operator's view change independently. */
#ifndef SEQR_HTTP_ACCESS_H
#define SEQR_HTTP_ACCESS_H

#include <stdint.h>

#include "http/server.h"

/* method/path as received (path without query); resp as sent. */
void http_access_record(const char *method, const char *path, const http_response *resp,
                        int64_t elapsed_ms);

/* Implemented in http/api.c: the route pattern ("/invoices/{}") that path
 * matches for method, else the pattern it matches for another method, else
 * "unmatched" (static strings; bounded, for metric labels). */
const char *http_api_route(const char *method, const char *path);

#endif
