/* secretbox.c — AES-256-GCM sealing of stored secrets; see secretbox.h. */
#include "secretbox.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SECRETBOX_NONCE_LEN 12
#define SECRETBOX_TAG_LEN 16

static const char secretbox_hex[] = "0123456789abcdef";

static int secretbox_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes exactly n bytes from 2n hex digits. */
static bool secretbox_unhex(const char *text, unsigned char *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = secretbox_hexval(text[2 * i]),
            lo = hi < 0 ? -1 : secretbox_hexval(text[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return true;
}

static void secretbox_puthex(buf *b, const unsigned char *data, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        buf_putc(b, secretbox_hex[data[i] >> 4]);
        buf_putc(b, secretbox_hex[data[i] & 0x0f]);
    }
}

static bool secretbox_key_create(const char *path, unsigned char key[SECRETBOX_KEY_LEN], buf *err)
{
    if (RAND_bytes(key, SECRETBOX_KEY_LEN) != 1) {
        buf_printf(err, "%s: no random bytes from libcrypto", path);
        return false;
    }
    buf text = BUF_INIT;
    secretbox_puthex(&text, key, SECRETBOX_KEY_LEN);
    buf_putc(&text, '\n');
    bool ok = false;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        buf_printf(err, "%s: cannot create: %s", path, strerror(errno));
        goto cleanup;
    }
    ok = write(fd, text.data, text.len) == (ssize_t)text.len && fsync(fd) == 0;
    if (close(fd) != 0)
        ok = false;
    if (!ok) {
        buf_printf(err, "%s: cannot write the new key: %s", path, strerror(errno));
        unlink(path);
    }
cleanup:
    memset(text.data, 0, text.len);
    buf_free(&text);
    return ok;
}

bool secretbox_key_load(const char *path, unsigned char key[SECRETBOX_KEY_LEN], buf *err)
{
    FILE *f = fopen(path, "re");
    if (f == NULL && errno == ENOENT)
        return secretbox_key_create(path, key, err);
    if (f == NULL) {
        buf_printf(err, "%s: cannot read: %s", path, strerror(errno));
        return false;
    }
    char text[2 * SECRETBOX_KEY_LEN + 3];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        text[--n] = '\0';
    bool ok = n == 2 * SECRETBOX_KEY_LEN && secretbox_unhex(text, key, SECRETBOX_KEY_LEN);
    memset(text, 0, sizeof text);
    if (!ok)
        buf_printf(err, "%s: must hold a 256-bit key as 64 hex digits", path);
    return ok;
}

bool secretbox_is_sealed(const char *text)
{
    return strncmp(text, SECRETBOX_PREFIX, strlen(SECRETBOX_PREFIX)) == 0;
}

char *secretbox_seal(const unsigned char key[SECRETBOX_KEY_LEN], const char *aad, const char *plain)
{
    size_t len = strlen(plain);
    unsigned char nonce[SECRETBOX_NONCE_LEN], tag[SECRETBOX_TAG_LEN];
    unsigned char *ct = malloc(len + 1);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    char *result = NULL;
    int outl = 0, finl = 0;
    if (ct == NULL || ctx == NULL || len > 4096 || RAND_bytes(nonce, sizeof nonce) != 1)
        goto cleanup;
    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce) != 1 ||
        EVP_EncryptUpdate(ctx, NULL, &outl, (const unsigned char *)aad, (int)strlen(aad)) != 1 ||
        EVP_EncryptUpdate(ctx, ct, &outl, (const unsigned char *)plain, (int)len) != 1 ||
        EVP_EncryptFinal_ex(ctx, ct + outl, &finl) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SECRETBOX_TAG_LEN, tag) != 1)
        goto cleanup;
    buf b = BUF_INIT;
    buf_puts(&b, SECRETBOX_PREFIX);
    secretbox_puthex(&b, nonce, sizeof nonce);
    secretbox_puthex(&b, ct, (size_t)(outl + finl));
    secretbox_puthex(&b, tag, sizeof tag);
    result = buf_detach(&b);
cleanup:
    if (ct != NULL) {
        memset(ct, 0, len + 1);
        free(ct);
    }
    EVP_CIPHER_CTX_free(ctx);
    return result;
}

bool secretbox_open(const unsigned char key[SECRETBOX_KEY_LEN], const char *aad, const char *sealed,
                    char *out, size_t cap)
{
    out[0] = '\0';
    if (!secretbox_is_sealed(sealed))
        return false;
    const char *hex = sealed + strlen(SECRETBOX_PREFIX);
    size_t hexlen = strlen(hex);
    if (hexlen % 2 != 0 || hexlen / 2 < SECRETBOX_NONCE_LEN + SECRETBOX_TAG_LEN)
        return false;
    size_t total = hexlen / 2, ctlen = total - SECRETBOX_NONCE_LEN - SECRETBOX_TAG_LEN;
    if (ctlen + 1 > cap)
        return false;
    unsigned char *raw = malloc(total);
    unsigned char *plain = malloc(ctlen + 1);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    bool ok = false;
    int outl = 0, finl = 0;
    if (raw == NULL || plain == NULL || ctx == NULL || !secretbox_unhex(hex, raw, total))
        goto cleanup;
    const unsigned char *nonce = raw, *ct = raw + SECRETBOX_NONCE_LEN, *tag = ct + ctlen;
    if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce) != 1 ||
        EVP_DecryptUpdate(ctx, NULL, &outl, (const unsigned char *)aad, (int)strlen(aad)) != 1 ||
        EVP_DecryptUpdate(ctx, plain, &outl, ct, (int)ctlen) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SECRETBOX_TAG_LEN, (void *)tag) != 1 ||
        EVP_DecryptFinal_ex(ctx, plain + outl, &finl) != 1)
        goto cleanup;
    size_t n = (size_t)(outl + finl);
    if (memchr(plain, '\0', n) != NULL)
        goto cleanup;
    memcpy(out, plain, n);
    out[n] = '\0';
    ok = true;
cleanup:
    if (plain != NULL) {
        memset(plain, 0, ctlen + 1);
        free(plain);
    }
    free(raw);
    EVP_CIPHER_CTX_free(ctx);
    return ok;
}
