/* http/access.c — the access-log line and request metrics; see access.h. */
#include "http/access.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "metrics.h"

/* Methods as metric labels: the known ones, else "other" (bounded). */
static const char *http_access_method(const char *method)
{
    static const char *const known[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"};
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (strcmp(method, known[i]) == 0)
            return known[i];
    return "other";
}

void http_access_record(const char *method, const char *path, const char *route,
                        const http_response *resp, int64_t elapsed_ms)
{
    const json_t *error = resp->json ? json_object_get(resp->json, "error") : NULL;
    const char *code = error ? json_string_value(json_object_get(error, "code")) : NULL;
    const char *field = error ? json_string_value(json_object_get(error, "field")) : NULL;
    long long ms = (long long)elapsed_ms;
    bool read = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;

    char labels[192];
    snprintf(labels, sizeof labels, "route=\"%s\",method=\"%s\",status=\"%d\"", route,
             http_access_method(method), resp->status);
    metrics_observe(METRICS_HTTP_REQUEST, labels, elapsed_ms * 1000);

    if (resp->status >= 500)
        log_warn("%s %s -> %d %s%s%s (%lld ms)", method, path, resp->status, code ? code : "",
                 field ? " field=" : "", field ? field : "", ms);
    else if (resp->status >= 400)
        log_info("%s %s -> %d %s%s%s (%lld ms)", method, path, resp->status, code ? code : "",
                 field ? " field=" : "", field ? field : "", ms);
    else if (read)
        log_debug("%s %s -> %d (%lld ms)", method, path, resp->status, ms);
    else
        log_info("%s %s -> %d (%lld ms)", method, path, resp->status, ms);
}
