/* webhook_sign.h — Standard Webhooks signatures (https://www.standardwebhooks.com).
 *
 * A secret is "whsec_" followed by the base64 of 24 to 64 random bytes; the
 * HMAC key is those bytes. A message is signed as
 *   webhook-signature: v1,<base64 of HMAC-SHA256(key, "<id>.<timestamp>.<body>")>
 * so that shops verify with the standardwebhooks libraries (PHP, Python,
 * Node, ...). HMAC and base64 come from OpenSSL's libcrypto. */
#ifndef SEQR_WEBHOOK_SIGN_H
#define SEQR_WEBHOOK_SIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WEBHOOK_KEY_MIN 24
#define WEBHOOK_KEY_MAX 64
/* "v1," + base64 of 32 bytes (44) + NUL */
#define WEBHOOK_SIGNATURE_LEN 48

typedef struct {
    unsigned char key[WEBHOOK_KEY_MAX];
    size_t len;
} webhook_key;

/* Parses "whsec_<base64>" into key. False (with a reason that never quotes
 * the secret in why, which may be NULL) when it is not one. */
bool webhook_key_parse(const char *secret, webhook_key *key, const char **why);

/* Writes "v1,<base64>" for the message (msg_id, timestamp in seconds, body of
 * body_len bytes) into sig. False when libcrypto fails. */
bool webhook_sign(const webhook_key *key, const char *msg_id, int64_t timestamp, const char *body,
                  size_t body_len, char sig[static WEBHOOK_SIGNATURE_LEN]);

/* Wipes the key's bytes. */
void webhook_key_clear(webhook_key *key);

#endif
