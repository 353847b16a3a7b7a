/* secretbox.h — secrets the gateway must keep but must not keep readable:
 * AES-256-GCM (OpenSSL libcrypto) with a 256-bit key from a file outside the
 * database. Used for the passwords of terminals registered through the
 * gateway: SEQR needs them in plain text to call as that terminal, so they
 * cannot be hashed, only encrypted. A sealed value is text:
 *   "v1:" hex(nonce[12] || ciphertext || tag[16])
 * and is bound to its context (aad: e.g. the terminal id), so a sealed value
 * copied to another row does not open. */
#ifndef SEQR_SECRETBOX_H
#define SEQR_SECRETBOX_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define SECRETBOX_KEY_LEN 32
#define SECRETBOX_PREFIX "v1:"

/* Reads the key from path: 64 hex digits (a trailing newline allowed). When
 * the file does not exist it is created (mode 0600, O_EXCL) with a fresh
 * random key. False with a message in err otherwise. */
bool secretbox_key_load(const char *path, unsigned char key[SECRETBOX_KEY_LEN], buf *err);

/* Seals plain for context aad. Returns a malloc'd text, or NULL on failure. */
char *secretbox_seal(const unsigned char key[SECRETBOX_KEY_LEN], const char *aad,
                     const char *plain);

/* Opens sealed (from secretbox_seal with the same key and aad) into out
 * (NUL-terminated). False when it is malformed, was changed, belongs to
 * another context or key, or does not fit in cap. */
bool secretbox_open(const unsigned char key[SECRETBOX_KEY_LEN], const char *aad, const char *sealed,
                    char *out, size_t cap);

/* True when text looks sealed (starts with SECRETBOX_PREFIX). */
bool secretbox_is_sealed(const char *text);

#endif
