/* log.h — one line per event on stderr, with levels and secret redaction.
 *
 * Under systemd (JOURNAL_STREAM set) lines carry an sd-daemon "<N>" priority
 * prefix and no timestamp (journald adds one); otherwise "2026-11-24T10:15:00Z
 * LEVEL message". Every line passes through the redactor: strings registered with
 * log_add_secret() are replaced by "********", as is anything that looks like a
 * password or bearer token in free text. Thread-safe. */
#ifndef SEQR_LOG_H
#define SEQR_LOG_H

#include <stdbool.h>

#include "buf.h"

typedef enum { LOG_LEVEL_ERROR = 0, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG } log_level;

void log_set_level(log_level level);
log_level log_get_level(void);
/* Parses "error", "warn", "info", "debug"; false if unknown. */
bool log_parse_level(const char *text, log_level *out);

/* Registers a secret (copied) that must never appear in a log line. Strings
 * shorter than 4 bytes are ignored (they would mask ordinary words). */
void log_add_secret(const char *secret);
/* Forgets every registered secret (tests, config reload). */
void log_clear_secrets(void);

/* Appends text to out with every registered secret and every value following
 * "password", "api_key", "Authorization: Bearer" (as key=value, "key": "value",
 * <password>value</password>) replaced by "********". */
void log_redact(const char *text, buf *out);

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
