/* text.h — bounded string building without printf, for the poll path.
 *
 * snprintf's format machinery costs several hundred instructions per call;
 * a poll made about ten such calls for plain copies and numbers. These
 * helpers do the same into a caller's fixed array: they always
 * NUL-terminate (cap >= 1) and cut what does not fit, exactly as
 * snprintf(dst, cap, "%s", ...) would. Nothing is allocated or owned. */
#ifndef SEQR_TEXT_H
#define SEQR_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* Room for any int64_t in decimal, sign and NUL included. */
#define TEXT_INT_LEN 21

/* Copies src into dst (cap bytes); returns the length written. */
size_t text_copy(char *dst, size_t cap, const char *src);
/* Appends src to the len bytes already in dst (len < cap); returns the new
 * length. */
size_t text_append(char *dst, size_t cap, size_t len, const char *src);
/* Writes v in decimal into out (TEXT_INT_LEN bytes); returns its length. */
size_t text_int(char out[TEXT_INT_LEN], int64_t v);

#endif
