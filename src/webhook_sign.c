/* webhook_sign.c — Standard Webhooks signatures; see webhook_sign.h. */
#include "webhook_sign.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WEBHOOK_SECRET_PREFIX "whsec_"

bool webhook_key_parse(const char *secret, webhook_key *key, const char **why)
{
    const char *reason = NULL;
    memset(key, 0, sizeof *key);
    if (secret == NULL || strncmp(secret, WEBHOOK_SECRET_PREFIX, 6) != 0) {
        reason = "must start with whsec_ (Standard Webhooks secret: whsec_ and base64)";
        goto cleanup;
    }
    const char *b64 = secret + 6;
    size_t n = strlen(b64);
    /* base64 of 24..64 bytes: 32..88 characters, a multiple of 4. */
    if (n < 32 || n > 88 || n % 4 != 0) {
        reason = "the part after whsec_ must be the base64 of 24 to 64 bytes";
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
        char c = b64[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '+' || c == '/' || (c == '=' && i >= n - 2);
        if (!ok || (c != '=' && i > 0 && b64[i - 1] == '=')) {
            reason = "the part after whsec_ is not valid base64";
            goto cleanup;
        }
    }
    unsigned char out[96];
    int got = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)n);
    if (got < 0) {
        reason = "the part after whsec_ is not valid base64";
        goto cleanup;
    }
    /* EVP_DecodeBlock counts padding as zero bytes; take them off. */
    size_t len = (size_t)got;
    if (b64[n - 1] == '=')
        len--;
    if (b64[n - 2] == '=')
        len--;
    if (len < WEBHOOK_KEY_MIN || len > WEBHOOK_KEY_MAX) {
        reason = "the part after whsec_ must be the base64 of 24 to 64 bytes";
        OPENSSL_cleanse(out, sizeof out);
        goto cleanup;
    }
    memcpy(key->key, out, len);
    key->len = len;
    OPENSSL_cleanse(out, sizeof out);
cleanup:
    if (why != NULL)
        *why = reason;
    return reason == NULL;
}

bool webhook_sign(const webhook_key *key, const char *msg_id, int64_t timestamp, const char *body,
                  size_t body_len, char sig[static WEBHOOK_SIGNATURE_LEN])
{
    bool ok = false;
    unsigned char *msg = NULL;
    char ts[24];
    snprintf(ts, sizeof ts, "%lld", (long long)timestamp);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    /* The signed content is "<id>.<timestamp>.<body>". */
    size_t id_len = strlen(msg_id), ts_len = strlen(ts);
    size_t n = id_len + 1 + ts_len + 1 + body_len;
    msg = malloc(n);
    if (msg == NULL)
        goto cleanup;
    memcpy(msg, msg_id, id_len);
    msg[id_len] = '.';
    memcpy(msg + id_len + 1, ts, ts_len);
    msg[id_len + 1 + ts_len] = '.';
    memcpy(msg + id_len + 2 + ts_len, body, body_len);
    if (HMAC(EVP_sha256(), key->key, (int)key->len, msg, n, mac, &mac_len) == NULL || mac_len != 32)
        goto cleanup;
    memcpy(sig, "v1,", 3);
    if (EVP_EncodeBlock((unsigned char *)sig + 3, mac, (int)mac_len) != 44)
        goto cleanup;
    ok = true;
cleanup:
    free(msg);
    OPENSSL_cleanse(mac, sizeof mac);
    return ok;
}

void webhook_key_clear(webhook_key *key)
{
    OPENSSL_cleanse(key, sizeof *key);
}
