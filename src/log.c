/* log.c — levelled, redacted logging to stderr; see log.h. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define LOG_MAX_SECRETS 32

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
/* Set by the main thread (start-up, reload), read by every thread. */
static _Atomic log_level log_current = LOG_LEVEL_INFO;
static char *log_secrets[LOG_MAX_SECRETS];
static int log_nsecrets;

static const char *const log_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
/* sd-daemon(3) priorities: err, warning, info, debug. */
static const char *const log_prio[] = {"<3>", "<4>", "<6>", "<7>"};

void log_set_level(log_level level)
{
    log_current = level;
}

log_level log_get_level(void)
{
    return log_current;
}

bool log_parse_level(const char *text, log_level *out)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(text, names[i]) == 0) {
            *out = (log_level)i;
            return true;
        }
    }
    return false;
}

void log_add_secret(const char *secret)
{
    if (secret == NULL || strlen(secret) < 4)
        return;
    pthread_mutex_lock(&log_lock);
    if (log_nsecrets < LOG_MAX_SECRETS) {
        char *copy = strdup(secret);
        if (copy != NULL)
            log_secrets[log_nsecrets++] = copy;
    }
    pthread_mutex_unlock(&log_lock);
}

void log_clear_secrets(void)
{
    pthread_mutex_lock(&log_lock);
    for (int i = 0; i < log_nsecrets; i++)
        free(log_secrets[i]);
    log_nsecrets = 0;
    pthread_mutex_unlock(&log_lock);
}

/* Keys whose value is masked in free text. */
static const char *const log_secret_keys[] = {"password", "api_key", "apikey", "bearer "};

/* If text at p starts a known key, returns its length; else 0. */
static size_t log_key_at(const char *p)
{
    for (size_t i = 0; i < sizeof log_secret_keys / sizeof *log_secret_keys; i++) {
        size_t n = strlen(log_secret_keys[i]);
        if (strncasecmp(p, log_secret_keys[i], n) == 0)
            return n;
    }
    return 0;
}

/* Called with log_lock held (or from log_redact, which takes it). */
static void log_redact_locked(const char *text, buf *out)
{
    const char *p = text;
    while (*p) {
        bool matched = false;
        for (int i = 0; i < log_nsecrets; i++) {
            size_t n = strlen(log_secrets[i]);
            if (strncmp(p, log_secrets[i], n) == 0) {
                buf_puts(out, "********");
                p += n;
                matched = true;
                break;
            }
        }
        if (matched)
            continue;
        size_t k = log_key_at(p);
        if (k > 0) {
            buf_append(out, p, k);
            p += k;
            /* Copy the separator: '=', ':', '>', quotes and spaces. */
            const char *sep = p;
            while (*p == '"' || *p == '\'' || *p == ' ' || *p == '=' || *p == ':' || *p == '>')
                p++;
            bool is_bearer = k == 7; /* "bearer " needs no separator */
            if (p == sep && !is_bearer)
                continue;
            buf_append(out, sep, (size_t)(p - sep));
            if (*p == '\0' || *p == '<' || *p == '"' || *p == ',' || *p == '&')
                continue; /* empty value */
            while (*p && *p != '"' && *p != '\'' && *p != '<' && *p != '&' && *p != ',' &&
                   *p != ' ' && *p != '\n' && *p != '}')
                p++;
            buf_puts(out, "********");
            continue;
        }
        buf_putc(out, *p);
        p++;
    }
}

void log_redact(const char *text, buf *out)
{
    pthread_mutex_lock(&log_lock);
    log_redact_locked(text ? text : "", out);
    pthread_mutex_unlock(&log_lock);
}

static void log_write(log_level level, const char *fmt, va_list ap)
{
    if (level > log_current)
        return;
    buf raw = BUF_INIT;
    buf line = BUF_INIT;
    buf_vprintf(&raw, fmt, ap);

    pthread_mutex_lock(&log_lock);
    if (getenv("JOURNAL_STREAM") != NULL) {
        buf_puts(&line, log_prio[level]);
    } else {
        char ts[32];
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
        buf_printf(&line, "%s %s ", ts, log_names[level]);
    }
    log_redact_locked(buf_cstr(&raw), &line);
    /* One event, one line, and nothing a terminal would act on: newlines
     * fold to spaces, other control characters (ESC, BEL, DEL...) become '?'. */
    for (size_t i = 0; i < line.len; i++) {
        unsigned char c = (unsigned char)line.data[i];
        if (c == '\n' || c == '\r')
            line.data[i] = ' ';
        else if ((c < 0x20 && c != '\t') || c == 0x7f)
            line.data[i] = '?';
    }
    buf_putc(&line, '\n');
    fwrite(line.data, 1, line.len, stderr);
    fflush(stderr);
    pthread_mutex_unlock(&log_lock);
    buf_free(&raw);
    buf_free(&line);
}

void log_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_write(LOG_LEVEL_ERROR, fmt, ap);
    va_end(ap);
}

void log_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_write(LOG_LEVEL_WARN, fmt, ap);
    va_end(ap);
}

void log_info(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_write(LOG_LEVEL_INFO, fmt, ap);
    va_end(ap);
}

void log_debug(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_write(LOG_LEVEL_DEBUG, fmt, ap);
    va_end(ap);
}
