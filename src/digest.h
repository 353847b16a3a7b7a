/* digest.h — SHA-256 (OpenSSL libcrypto) as lowercase hex, for values that
 * must be compared or scoped without being kept: Idempotency-Key request
 * fingerprints and the API key's scope. */
#ifndef SEQR_DIGEST_H
#define SEQR_DIGEST_H

#include <stdbool.h>
#include <stddef.h>

#define DIGEST_HEX_LEN 64

/* Writes the SHA-256 of data as 64 hex digits and a NUL into out. Returns
 * false (out = "") only if libcrypto fails. */
bool digest_sha256_hex(const void *data, size_t len, char out[DIGEST_HEX_LEN + 1]);

#endif
