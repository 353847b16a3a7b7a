/* digest.h — SHA-256 (OpenSSL libcrypto) as lowercase hex, for values that
 * must be compared or scoped without being kept: Idempotency-Key request
 * fingerprints and the API key's scope; and the one comparison of a
 * presented secret (API key, notification token) with the expected one. */
#ifndef SEQR_DIGEST_H
#define SEQR_DIGEST_H

#include <stdbool.h>
#include <stddef.h>

#define DIGEST_HEX_LEN 64

/* Writes the SHA-256 of data as 64 hex digits and a NUL into out. Returns
 * false (out = "") only if libcrypto fails. */
bool digest_sha256_hex(const void *data, size_t len, char out[DIGEST_HEX_LEN + 1]);

/* True when given equals expected, in time that depends only on the length
 * of expected (not on where they differ). NULL given or an empty expected
 * never matches. */
bool digest_secret_equal(const char *given, const char *expected);

#endif
