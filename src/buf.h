/* buf.h — one growable byte buffer, used everywhere instead of ad-hoc malloc/strcat.
 *
 * A buf is always NUL-terminated once anything was appended, so b.data can be
 * used as a C string. Initialise with BUF_INIT or buf_init(); release with
 * buf_free(). The buffer owns b.data; buf_detach() hands it to the caller.
 * Allocation failure aborts the process (there is no sane recovery in a daemon
 * that cannot allocate a few bytes), so append functions return nothing. */
#ifndef SEQR_BUF_H
#define SEQR_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct {
    char *data; /* owned; NULL until the first append */
    size_t len; /* bytes used, not counting the trailing NUL */
    size_t cap; /* bytes allocated */
} buf;

#define BUF_INIT                                                                                   \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

void buf_init(buf *b);
/* Frees the storage and resets b to empty. */
void buf_free(buf *b);
/* Empties b but keeps its storage. */
void buf_reset(buf *b);
/* Makes room for at least extra more bytes (plus the NUL). */
void buf_grow(buf *b, size_t extra);
void buf_append(buf *b, const void *data, size_t len);
void buf_puts(buf *b, const char *s);
void buf_putc(buf *b, char c);
void buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(buf *b, const char *fmt, va_list ap);
/* Returns the contents as a malloc'd string (caller frees; never NULL) and
 * leaves b empty. */
char *buf_detach(buf *b);
/* b.data or "" when empty; borrowed. */
const char *buf_cstr(const buf *b);

#endif
