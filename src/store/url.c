/* store/url.c — telling a PostgreSQL URL from a SQLite path, and writing a
 * URL without its password. See store.h. */
#include "store/private.h"

#include <string.h>

bool store_is_url(const char *location)
{
    return strncmp(location, "postgresql://", 13) == 0 || strncmp(location, "postgres://", 11) == 0;
}

void store_location_redact(const char *location, buf *out)
{
    if (!store_is_url(location)) {
        buf_puts(out, location);
        return;
    }
    /* postgresql://user:password@host/db?password=...: the userinfo ends at
     * the last '@' before the first '/' after the scheme; a password may also
     * come as a query parameter. */
    const char *auth = strstr(location, "://") + 3;
    const char *end = strchr(auth, '/');
    if (end == NULL)
        end = auth + strlen(auth);
    const char *at = NULL;
    for (const char *p = auth; p < end; p++)
        if (*p == '@')
            at = p;
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    const char *p = location;
    if (colon != NULL) {
        buf_append(out, location, (size_t)(colon + 1 - location));
        buf_puts(out, "***");
        p = at;
    }
    const char *query = strchr(end, '?');
    if (query == NULL) {
        buf_puts(out, p);
        return;
    }
    buf_append(out, p, (size_t)(query - p));
    for (const char *param = query; *param != '\0';) {
        const char *next = strchr(param + 1, '&');
        size_t len = next ? (size_t)(next - param) : strlen(param);
        if (strncmp(param + 1, "password=", 9) == 0) {
            buf_append(out, param, 10);
            buf_puts(out, "***");
        } else {
            buf_append(out, param, len);
        }
        param += len;
    }
}
