/* config.c — strict INI configuration; see config.h.
 *
 * Each key is described once in config_keys[] (section, name, type, range and
 * where it lands in struct config); parsing, defaults and required-ness all
 * follow from that table, so a new key is one line. */
#include "config.h"

#include "webhook_sign.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

typedef enum { CONFIG_STR, CONFIG_INT, CONFIG_LONG, CONFIG_BOOL } config_type;

/* Extra checks for some strings. */
typedef enum {
    CONFIG_CHECK_NONE,
    CONFIG_CHECK_HOST,       /* IPv4/IPv6 literal or a host name */
    CONFIG_CHECK_URL,        /* http:// or https:// */
    CONFIG_CHECK_PUBLIC_URL, /* optional http(s) base URL */
    CONFIG_CHECK_MAX32,      /* at most 32 characters */
    CONFIG_CHECK_CHANNEL,    /* WS, ClientWS, extWS */
    CONFIG_CHECK_FILE,       /* optional readable file */
    CONFIG_CHECK_LEVEL,      /* log level */
    CONFIG_CHECK_APP_SCHEME,    /* SEQR or SEQR-DEBUG */
    CONFIG_CHECK_ANCESTORS,     /* CSP frame-ancestors sources */
    CONFIG_CHECK_WEBHOOK_SECRET, /* optional whsec_<base64 of 24..64 bytes> */
    CONFIG_CHECK_HTTP_CLIENT     /* native or curl */
} config_check;

typedef struct {
    const char *section;
    const char *key;
    config_type type;
    size_t offset;
    const char *def; /* default for strings (NULL = ""), text of the default for numbers */
    long min, max;   /* numbers */
    bool required;   /* must be present and non-empty */
    bool secret;     /* never echo the value */
    config_check check;
} config_key;

#define CONFIG_AT(field) offsetof(config, field)

static const config_key config_keys[] = {
    {"http", "listen", CONFIG_STR, CONFIG_AT(http_listen), "127.0.0.1", 0, 0, false, false,
     CONFIG_CHECK_HOST},
    {"http", "port", CONFIG_INT, CONFIG_AT(http_port), "8080", 1, 65535, false, false, 0},
    {"http", "api_key", CONFIG_STR, CONFIG_AT(http_api_key), NULL, 0, 0, false, true, 0},
    {"http", "rotation_overlap_s", CONFIG_LONG, CONFIG_AT(http_rotation_overlap_s), "300", 0, 86400,
     false, false, 0},
    {"http", "public_url", CONFIG_STR, CONFIG_AT(http_public_url), NULL, 0, 0, false, false,
     CONFIG_CHECK_PUBLIC_URL},
    {"http", "max_body_bytes", CONFIG_LONG, CONFIG_AT(http_max_body_bytes), "1048576", 1024,
     67108864, false, false, 0},
    {"http", "max_connections", CONFIG_INT, CONFIG_AT(http_max_connections), "512", 1, 100000,
     false, false, 0},
    {"http", "connection_timeout_s", CONFIG_INT, CONFIG_AT(http_connection_timeout_s), "30", 1,
     3600, false, false, 0},
    {"http", "max_connections_per_ip", CONFIG_INT, CONFIG_AT(http_max_connections_per_ip), "64",
     1, 100000, false, false, 0},
    {"http", "request_timeout_s", CONFIG_INT, CONFIG_AT(http_request_timeout_s), "60", 1, 3600,
     false, false, 0},
    {"http", "idempotency_ttl_s", CONFIG_LONG, CONFIG_AT(http_idempotency_ttl_s), "86400", 60,
     2592000, false, false, 0},
    {"http", "allowed_hosts", CONFIG_STR, CONFIG_AT(http_allowed_hosts), NULL, 0, 0, false, false,
     0},
    {"http", "max_streams", CONFIG_INT, CONFIG_AT(http_max_streams), "256", 1, 100000, false,
     false, 0},
    {"seqr", "url", CONFIG_STR, CONFIG_AT(seqr_url), NULL, 0, 0, true, false, CONFIG_CHECK_URL},
    {"seqr", "terminal_id", CONFIG_STR, CONFIG_AT(seqr_terminal_id), NULL, 0, 0, true, false, 0},
    {"seqr", "password", CONFIG_STR, CONFIG_AT(seqr_password), NULL, 0, 0, true, true, 0},
    {"seqr", "client_id", CONFIG_STR, CONFIG_AT(seqr_client_id), "Company Name", 0, 0, false, false,
     0},
    {"seqr", "client_reference", CONFIG_STR, CONFIG_AT(seqr_client_reference),
     "seqr-gateway " SEQR_VERSION, 0, 0, false, false, CONFIG_CHECK_MAX32},
    {"seqr", "channel", CONFIG_STR, CONFIG_AT(seqr_channel), "WS", 0, 0, false, false,
     CONFIG_CHECK_CHANNEL},
    {"seqr", "timeout_ms", CONFIG_LONG, CONFIG_AT(seqr_timeout_ms), "15000", 100, 600000, false,
     false, 0},
    {"seqr", "ca_file", CONFIG_STR, CONFIG_AT(seqr_ca_file), NULL, 0, 0, false, false,
     CONFIG_CHECK_FILE},
    {"reseller", "id", CONFIG_STR, CONFIG_AT(reseller_id), NULL, 0, 0, false, false, 0},
    {"reseller", "user_id", CONFIG_STR, CONFIG_AT(reseller_user_id), NULL, 0, 0, false, false, 0},
    {"reseller", "password", CONFIG_STR, CONFIG_AT(reseller_password), NULL, 0, 0, false, true, 0},
    {"store", "path", CONFIG_STR, CONFIG_AT(store_path), "/var/lib/seqr-gateway/gateway.db", 0, 0,
     false, false, 0},
    {"store", "url", CONFIG_STR, CONFIG_AT(store_url), NULL, 0, 0, false, true, 0},
    {"store", "key_file", CONFIG_STR, CONFIG_AT(store_key_file), NULL, 0, 0, false, false, 0},
    {"poller", "interval_ms", CONFIG_LONG, CONFIG_AT(poller_interval_ms), "1000", 100, 60000, false,
     false, 0},
    {"poller", "invoice_ttl_s", CONFIG_LONG, CONFIG_AT(poller_invoice_ttl_s), "900", 10, 604800,
     false, false, 0},
    {"poller", "auto_receipt", CONFIG_BOOL, CONFIG_AT(poller_auto_receipt), "true", 0, 0, false,
     false, 0},
    {"poller", "max_in_flight", CONFIG_INT, CONFIG_AT(poller_max_in_flight), "256", 1, 10000, false,
     false, 0},
    {"poller", "poll_timeout_ms", CONFIG_LONG, CONFIG_AT(poller_poll_timeout_ms), "3000", 100,
     5000, false, false, 0},
    {"poller", "http_client", CONFIG_STR, CONFIG_AT(poller_http_client), "native", 0, 0, false,
     false, CONFIG_CHECK_HTTP_CLIENT},
    {"invoice", "title", CONFIG_STR, CONFIG_AT(invoice_title), NULL, 0, 0, false, false, 0},
    {"invoice", "cashier_id", CONFIG_STR, CONFIG_AT(invoice_cashier_id), "web", 0, 0, false, false,
     0},
    {"invoice", "footer", CONFIG_STR, CONFIG_AT(invoice_footer), "Thank you for your purchase", 0,
     0, false, false, 0},
    {"receipt", "store_name", CONFIG_STR, CONFIG_AT(receipt_store_name), NULL, 0, 0, false, false,
     0},
    {"receipt", "address", CONFIG_STR, CONFIG_AT(receipt_address), NULL, 0, 0, false, false, 0},
    {"receipt", "org_number", CONFIG_STR, CONFIG_AT(receipt_org_number), NULL, 0, 0, false, false,
     0},
    {"checkout", "app_scheme", CONFIG_STR, CONFIG_AT(checkout_app_scheme), "SEQR", 0, 0, false,
     false, CONFIG_CHECK_APP_SCHEME},
    {"checkout", "frame_ancestors", CONFIG_STR, CONFIG_AT(checkout_frame_ancestors), "'none'", 0,
     0, false, false, CONFIG_CHECK_ANCESTORS},
    {"webhooks", "url", CONFIG_STR, CONFIG_AT(webhooks_url), NULL, 0, 0, false, false,
     CONFIG_CHECK_PUBLIC_URL},
    {"webhooks", "secret", CONFIG_STR, CONFIG_AT(webhooks_secret), NULL, 0, 0, false, true,
     CONFIG_CHECK_WEBHOOK_SECRET},
    {"webhooks", "timeout_ms", CONFIG_LONG, CONFIG_AT(webhooks_timeout_ms), "10000", 100, 120000,
     false, false, 0},
    {"webhooks", "max_in_flight", CONFIG_INT, CONFIG_AT(webhooks_max_in_flight), "64", 1, 10000,
     false, false, 0},
    {"webhooks", "retry_for_s", CONFIG_LONG, CONFIG_AT(webhooks_retry_for_s), "259200", 1,
     31536000, false, false, 0},
    {"webhooks", "retry_max_interval_s", CONFIG_LONG, CONFIG_AT(webhooks_retry_max_interval_s),
     "3600", 1, 86400, false, false, 0},
    {"log", "level", CONFIG_STR, CONFIG_AT(log_level), "info", 0, 0, false, false,
     CONFIG_CHECK_LEVEL},
};
#define CONFIG_NKEYS (sizeof config_keys / sizeof *config_keys)

static char **config_str(config *cfg, const config_key *k)
{
    return (char **)((char *)cfg + k->offset);
}

static char *config_xstrdup(const char *s)
{
    char *d = strdup(s ? s : "");
    if (d == NULL)
        abort();
    return d;
}

int config_diff(const config *a, const config *b, char names[][64], int max)
{
    int n = 0;
    for (size_t i = 0; i < CONFIG_NKEYS; i++) {
        const config_key *k = &config_keys[i];
        const char *pa = (const char *)a + k->offset, *pb = (const char *)b + k->offset;
        bool differs;
        if (k->type == CONFIG_STR)
            differs = strcmp(*(char *const *)pa, *(char *const *)pb) != 0;
        else if (k->type == CONFIG_INT)
            differs = *(const int *)pa != *(const int *)pb;
        else if (k->type == CONFIG_LONG)
            differs = *(const long *)pa != *(const long *)pb;
        else
            differs = *(const bool *)pa != *(const bool *)pb;
        if (!differs)
            continue;
        if (n < max)
            snprintf(names[n], 64, "[%s] %s", k->section, k->key);
        n++;
    }
    return n;
}

static bool config_parse_long(const char *text, long *out)
{
    if (text[0] == '\0')
        return false;
    errno = 0;
    char *end;
    long v = strtol(text, &end, 10);
    if (errno != 0 || *end != '\0' || (text[0] != '-' && (text[0] < '0' || text[0] > '9')))
        return false;
    *out = v;
    return true;
}

static bool config_parse_bool(const char *text, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

/* Stores a value (numbers and bools parsed) without checks; false if it does
 * not parse. */
static bool config_set(config *cfg, const config_key *k, const char *value)
{
    long v;
    bool b;
    switch (k->type) {
    case CONFIG_STR: {
        char **slot = config_str(cfg, k);
        free(*slot);
        *slot = config_xstrdup(value);
        return true;
    }
    case CONFIG_INT:
        if (!config_parse_long(value, &v) || v < INT_MIN || v > INT_MAX)
            return false;
        *(int *)((char *)cfg + k->offset) = (int)v;
        return true;
    case CONFIG_LONG:
        if (!config_parse_long(value, &v))
            return false;
        *(long *)((char *)cfg + k->offset) = v;
        return true;
    case CONFIG_BOOL:
        if (!config_parse_bool(value, &b))
            return false;
        *(bool *)((char *)cfg + k->offset) = b;
        return true;
    }
    return false;
}

void config_defaults(config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < CONFIG_NKEYS; i++) {
        const config_key *k = &config_keys[i];
        if (k->type == CONFIG_STR)
            *config_str(cfg, k) = config_xstrdup(k->def);
        else
            config_set(cfg, k, k->def);
    }
}

void config_free(config *cfg)
{
    for (size_t i = 0; i < CONFIG_NKEYS; i++) {
        if (config_keys[i].type == CONFIG_STR) {
            char **slot = config_str(cfg, &config_keys[i]);
            free(*slot);
            *slot = NULL;
        }
    }
}

static void config_problem(buf *errors, int *n, const char *path, int line, const char *section,
                           const char *key, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

static void config_problem(buf *errors, int *n, const char *path, int line, const char *section,
                           const char *key, const char *fmt, ...)
{
    if (line > 0)
        buf_printf(errors, "%s:%d: ", path, line);
    else
        buf_printf(errors, "%s: ", path);
    if (section != NULL)
        buf_printf(errors, "[%s] ", section);
    if (key != NULL)
        buf_printf(errors, "%s: ", key);
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(errors, fmt, ap);
    va_end(ap);
    buf_putc(errors, '\n');
    (*n)++;
}

static bool config_host_valid(const char *h)
{
    unsigned char addr[16];
    if (inet_pton(AF_INET, h, addr) == 1 || inet_pton(AF_INET6, h, addr) == 1)
        return true;
    size_t n = strlen(h);
    if (n == 0 || n > 253)
        return false;
    for (const char *p = h; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.'))
            return false;
    }
    return h[0] != '-' && h[0] != '.';
}

static size_t config_key_index(const char *section, const char *key)
{
    for (size_t i = 0; i < CONFIG_NKEYS; i++)
        if (strcmp(config_keys[i].section, section) == 0 && strcmp(config_keys[i].key, key) == 0)
            return i;
    abort(); /* a name missing from config_keys is a programming error */
}

/* A libpq connection URI: postgresql:// or postgres://, a database name
 * after the first '/' (a host may be left to ?host=), printable ASCII only. */
static bool config_pg_url_valid(const char *u)
{
    const char *rest = NULL;
    if (strncmp(u, "postgresql://", 13) == 0)
        rest = u + 13;
    else if (strncmp(u, "postgres://", 11) == 0)
        rest = u + 11;
    if (rest == NULL)
        return false;
    for (const unsigned char *p = (const unsigned char *)u; *p; p++)
        if (*p <= ' ' || *p >= 0x7f)
            return false;
    const char *slash = strchr(rest, '/');
    return slash != NULL && slash[1] != '\0' && slash[1] != '?';
}

static bool config_url_valid(const char *u)
{
    const char *rest = NULL;
    if (strncmp(u, "https://", 8) == 0)
        rest = u + 8;
    else if (strncmp(u, "http://", 7) == 0)
        rest = u + 7;
    if (rest == NULL || *rest == '\0' || *rest == '/')
        return false;
    for (const unsigned char *p = (const unsigned char *)u; *p; p++)
        if (*p <= ' ' || *p == 0x7f)
            return false;
    return true;
}

static bool config_loopback_url(const char *u)
{
    const char *h = strstr(u, "://");
    h = h ? h + 3 : u;
    return strncmp(h, "127.", 4) == 0 || strncmp(h, "localhost", 9) == 0 ||
           strncmp(h, "[::1]", 5) == 0;
}

/* A CSP frame-ancestors value: 'none', or 'self' and/or http(s) origins
 * (scheme://host[:port], '*.' allowed in front of the host), space-separated. */
static bool config_ancestors_valid(const char *v)
{
    if (strcmp(v, "'none'") == 0)
        return true;
    const char *p = v;
    int n = 0;
    while (*p) {
        while (*p == ' ')
            p++;
        if (*p == '\0')
            break;
        size_t len = strcspn(p, " ");
        if (len == 6 && strncmp(p, "'self'", 6) == 0) {
            /* fine */
        } else {
            size_t skip = strncmp(p, "https://", 8) == 0 ? 8 : strncmp(p, "http://", 7) == 0 ? 7 : 0;
            if (skip == 0 || len <= skip)
                return false;
            for (size_t i = skip; i < len; i++) {
                char c = p[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == ':' || (c == '*' && i == skip)))
                    return false;
            }
        }
        n++;
        p += len;
    }
    return n > 0;
}

/* True for a listen address only this host can reach. */
static bool config_loopback_listen(const char *h)
{
    return strncmp(h, "127.", 4) == 0 || strcmp(h, "localhost") == 0 || strcmp(h, "::1") == 0 ||
           strcmp(h, "[::1]") == 0;
}

/* Value checks beyond the type; returns a message or NULL. */
static const char *config_check_value(const config *cfg, const config_key *k, const char *value,
                                      buf *warnings, const char *path, int line)
{
    if (k->type == CONFIG_INT || k->type == CONFIG_LONG) {
        long v = k->type == CONFIG_INT ? *(const int *)((const char *)cfg + k->offset)
                                       : *(const long *)((const char *)cfg + k->offset);
        if (v < k->min || v > k->max)
            return "out of range";
        return NULL;
    }
    if (k->type != CONFIG_STR)
        return NULL;
    switch (k->check) {
    case CONFIG_CHECK_HOST:
        return config_host_valid(value) ? NULL : "not an IP address or host name";
    case CONFIG_CHECK_URL:
        if (value[0] == '\0')
            return NULL; /* reported as missing */
        if (!config_url_valid(value))
            return "must be an http:// or https:// URL";
        if (strncmp(value, "http://", 7) == 0 && !config_loopback_url(value) && warnings)
            buf_printf(warnings,
                       "%s:%d: [seqr] url: plain http:// to a non-local host; SEQR needs "
                       "https:// (http is for a local simulator)\n",
                       path, line);
        return NULL;
    case CONFIG_CHECK_PUBLIC_URL:
        return value[0] == '\0' || config_url_valid(value) ? NULL
                                                           : "must be an http:// or https:// URL";
    case CONFIG_CHECK_MAX32:
        return strlen(value) <= 32 ? NULL : "longer than 32 characters";
    case CONFIG_CHECK_CHANNEL:
        return strcmp(value, "WS") == 0 || strcmp(value, "ClientWS") == 0 ||
                       strcmp(value, "extWS") == 0
                   ? NULL
                   : "must be WS, ClientWS or extWS";
    case CONFIG_CHECK_FILE:
        return value[0] == '\0' || access(value, R_OK) == 0 ? NULL : "not a readable file";
    case CONFIG_CHECK_LEVEL:
        return strcmp(value, "error") == 0 || strcmp(value, "warn") == 0 ||
                       strcmp(value, "info") == 0 || strcmp(value, "debug") == 0
                   ? NULL
                   : "must be error, warn, info or debug";
    case CONFIG_CHECK_APP_SCHEME:
        return strcmp(value, "SEQR") == 0 || strcmp(value, "SEQR-DEBUG") == 0
                   ? NULL
                   : "must be SEQR or SEQR-DEBUG (the SEQR test servers' app)";
    case CONFIG_CHECK_ANCESTORS:
        return config_ancestors_valid(value)
                   ? NULL
                   : "must be 'none', or 'self' and/or origins like https://shop.example";
    case CONFIG_CHECK_WEBHOOK_SECRET: {
        if (value[0] == '\0')
            return NULL;
        webhook_key key;
        const char *why = NULL;
        bool ok = webhook_key_parse(value, &key, &why);
        webhook_key_clear(&key);
        return ok ? NULL : why; /* why never quotes the secret */
    }
    case CONFIG_CHECK_HTTP_CLIENT:
        return strcmp(value, "native") == 0 || strcmp(value, "curl") == 0
                   ? NULL
                   : "must be native or curl";
    case CONFIG_CHECK_NONE:
        break;
    }
    return NULL;
}

/* True for the example config's placeholders (CHANGE-ME, changeme, ...). */
static bool config_is_placeholder(const char *value)
{
    static const char *const marks[] = {"CHANGE-ME", "CHANGEME", "CHANGE_ME"};
    for (size_t i = 0; i < sizeof marks / sizeof *marks; i++)
        if (strcasestr(value, marks[i]) != NULL)
            return true;
    return false;
}

static char *config_trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

/* Strips a trailing comment ("  # ...") and surrounding quotes from a value.
 * Returns false when a quoted value is not closed. */
static bool config_clean_value(char *v, char **out)
{
    v = config_trim(v);
    if (v[0] == '"') {
        char *close = strchr(v + 1, '"');
        if (close == NULL)
            return false;
        *close = '\0';
        char *rest = config_trim(close + 1);
        if (rest[0] != '\0' && rest[0] != '#')
            return false;
        *out = v + 1;
        return true;
    }
    for (char *p = v; *p; p++) {
        if (*p == '#' && (p == v || p[-1] == ' ' || p[-1] == '\t')) {
            *p = '\0';
            break;
        }
    }
    *out = config_trim(v);
    return true;
}

int config_load(const char *path, config *cfg, buf *errors, buf *warnings)
{
    config_defaults(cfg);
    int problems = 0;
    int seen_line[CONFIG_NKEYS];
    memset(seen_line, 0, sizeof seen_line);
    bool holds_secret = false;

    FILE *f = fopen(path, "r");
    if (f == NULL) {
        config_problem(errors, &problems, path, 0, NULL, NULL, "cannot read: %s", strerror(errno));
        return problems;
    }
    char section[64] = "";
    bool section_known = false;
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0;
    while (getline(&line, &cap, f) != -1) {
        lineno++;
        char *s = config_trim(line);
        if (s[0] == '\0' || s[0] == '#' || s[0] == ';')
            continue;
        if (s[0] == '[') {
            char *end = strchr(s, ']');
            char *after = end ? config_trim(end + 1) : NULL;
            if (end == NULL || (after[0] != '\0' && after[0] != '#')) {
                config_problem(errors, &problems, path, lineno, NULL, NULL,
                               "malformed section header");
                section[0] = '\0';
                section_known = false;
                continue;
            }
            *end = '\0';
            snprintf(section, sizeof section, "%s", config_trim(s + 1));
            section_known = false;
            for (size_t i = 0; i < CONFIG_NKEYS; i++)
                section_known = section_known || strcmp(config_keys[i].section, section) == 0;
            if (!section_known)
                config_problem(errors, &problems, path, lineno, section, NULL,
                               "unknown section (known: http, seqr, reseller, store, poller, "
                               "invoice, receipt, checkout, webhooks, log)");
            continue;
        }
        char *eq = strchr(s, '=');
        if (eq == NULL) {
            config_problem(errors, &problems, path, lineno, section[0] ? section : NULL, NULL,
                           "expected \"key = value\"");
            continue;
        }
        *eq = '\0';
        char *key = config_trim(s);
        char *value;
        if (section[0] == '\0') {
            config_problem(errors, &problems, path, lineno, NULL, key, "key outside any [section]");
            continue;
        }
        if (!section_known)
            continue; /* already reported */
        const config_key *k = NULL;
        size_t ki = 0;
        for (size_t i = 0; i < CONFIG_NKEYS; i++) {
            if (strcmp(config_keys[i].section, section) == 0 &&
                strcmp(config_keys[i].key, key) == 0) {
                k = &config_keys[i];
                ki = i;
                break;
            }
        }
        if (k == NULL) {
            config_problem(errors, &problems, path, lineno, section, key, "unknown key");
            continue;
        }
        if (!config_clean_value(eq + 1, &value)) {
            config_problem(errors, &problems, path, lineno, section, key,
                           "unterminated or malformed quoted value");
            continue;
        }
        if (seen_line[ki] != 0) {
            config_problem(errors, &problems, path, lineno, section, key,
                           "given twice (first on line %d)", seen_line[ki]);
            continue;
        }
        seen_line[ki] = lineno;
        if (k->secret && value[0] != '\0')
            holds_secret = true;
        if (!config_set(cfg, k, value)) {
            if (k->secret)
                config_problem(errors, &problems, path, lineno, section, key, "invalid value");
            else if (k->type == CONFIG_BOOL)
                config_problem(errors, &problems, path, lineno, section, key,
                               "\"%s\" is not true/false/yes/no/on/off/1/0", value);
            else
                config_problem(errors, &problems, path, lineno, section, key,
                               "\"%s\" is not a whole number", value);
            continue;
        }
        if (k->type == CONFIG_STR && config_is_placeholder(value)) {
            config_problem(errors, &problems, path, lineno, section, key,
                           "still the placeholder%s%s%s; set the real value",
                           k->secret ? "" : " \"", k->secret ? "" : value, k->secret ? "" : "\"");
            continue;
        }
        const char *msg = config_check_value(cfg, k, value, warnings, path, lineno);
        if (msg != NULL) {
            if (k->type == CONFIG_INT || k->type == CONFIG_LONG)
                config_problem(errors, &problems, path, lineno, section, key,
                               "%s is out of range (%ld to %ld)", value, k->min, k->max);
            else
                config_problem(errors, &problems, path, lineno, section, key, "%s", msg);
        }
    }
    free(line);
    fclose(f);

    for (size_t i = 0; i < CONFIG_NKEYS; i++) {
        const config_key *k = &config_keys[i];
        if (k->required && (*config_str(cfg, k))[0] == '\0' && seen_line[i] != 0)
            config_problem(errors, &problems, path, seen_line[i], k->section, k->key,
                           "required but empty");
        else if (k->required && (*config_str(cfg, k))[0] == '\0')
            config_problem(errors, &problems, path, 0, k->section, k->key,
                           "required but missing (add \"%s = ...\" to the [%s] section)", k->key,
                           k->section);
    }
    if (cfg->seqr_client_id[0] == '\0')
        config_problem(errors, &problems, path, 0, "seqr", "client_id", "must not be empty");
    if (cfg->invoice_cashier_id[0] == '\0')
        config_problem(errors, &problems, path, 0, "invoice", "cashier_id",
                       "must not be empty (SEQR requires a cashierId on every invoice)");
    if (cfg->invoice_footer[0] == '\0')
        config_problem(errors, &problems, path, 0, "invoice", "footer",
                       "must not be empty (SEQR requires a footer on every invoice)");
    /* The store's name falls back to clientId, the invoice title to the store's name. */
    if (cfg->receipt_store_name[0] == '\0') {
        free(cfg->receipt_store_name);
        cfg->receipt_store_name = config_xstrdup(cfg->seqr_client_id);
    }
    if (cfg->invoice_title[0] == '\0') {
        free(cfg->invoice_title);
        cfg->invoice_title = config_xstrdup(cfg->receipt_store_name);
    }
    if (cfg->store_path[0] == '\0')
        config_problem(errors, &problems, path, 0, "store", "path", "must not be empty");
    if (cfg->store_url[0] != '\0') {
        int path_line = seen_line[config_key_index("store", "path")];
        int url_line = seen_line[config_key_index("store", "url")];
        if (path_line != 0)
            config_problem(errors, &problems, path, url_line, "store", "url",
                           "give path (SQLite) or url (PostgreSQL), not both (path is on line %d)",
                           path_line);
        if (!config_pg_url_valid(cfg->store_url))
            config_problem(errors, &problems, path, url_line, "store", "url",
                           "must be a URL postgresql://[user[:password]@]host[:port]/dbname"
                           "[?param=value&...] without spaces");
        if (cfg->store_key_file[0] == '\0')
            config_problem(errors, &problems, path, url_line, "store", "key_file",
                           "required with url: the key that seals terminal passwords must "
                           "not live in the database (give the same file to every gateway)");
    }
    if (cfg->http_api_key[0] == '\0' && config_host_valid(cfg->http_listen) &&
        !config_loopback_listen(cfg->http_listen))
        config_problem(errors, &problems, path, 0, "http", "api_key",
                       "required when listen (%s) is not a loopback address: without it anyone "
                       "who reaches the port could issue invoices and refunds",
                       cfg->http_listen);
    int reseller = (cfg->reseller_id[0] != '\0') + (cfg->reseller_user_id[0] != '\0') +
                   (cfg->reseller_password[0] != '\0');
    if (cfg->webhooks_url[0] != '\0' && cfg->webhooks_secret[0] == '\0')
        config_problem(errors, &problems, path, 0, "webhooks", "secret",
                       "required when [webhooks] url is set (webhooks are always signed)");
    if (reseller != 0 && reseller != 3)
        config_problem(errors, &problems, path, 0, "reseller", NULL,
                       "give all of id, user_id and password, or none");

    struct stat stt;
    /* Group read is the packaged layout (root:seqr-gateway 0640); others must not
     * read it and nobody but root may write it. */
    if (holds_secret && warnings != NULL && stat(path, &stt) == 0 && (stt.st_mode & 027) != 0)
        buf_printf(warnings,
                   "%s: holds secrets but is readable by others or group-writable "
                   "(chmod 640 %s)\n",
                   path, path);
    return problems;
}
