/* http/access.h — what happens after each request is answered: one access-log
 * line (with the error code of a failed request; successful reads at DEBUG,
 * so a shop polling an invoice does not fill the log) and the request metrics
 * by route and status. Kept apart from server.c so the request plumbing and
 * the operator's view change independently. */
#ifndef SEQR_HTTP_ACCESS_H
#define SEQR_HTTP_ACCESS_H

#include <stdint.h>

#include "http/server.h"

/* method/path as received (path without query); route the router's label
 * for them (http_router.route); resp as sent. */
void http_access_record(const char *method, const char *path, const char *route,
                        const http_response *resp, int64_t elapsed_ms);

#endif
