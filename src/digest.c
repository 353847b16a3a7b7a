/* digest.c — SHA-256 as hex through libcrypto's EVP interface; see digest.h. */
#include "digest.h"

#include <openssl/evp.h>
#include <string.h>

bool digest_sha256_hex(const void *data, size_t len, char out[DIGEST_HEX_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    out[0] = '\0';
    if (EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL) != 1 || md_len != 32)
        return false;
    for (unsigned int i = 0; i < md_len; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 0x0f];
    }
    out[2 * md_len] = '\0';
    return true;
}

bool digest_secret_equal(const char *given, const char *expected)
{
    if (given == NULL || expected == NULL || expected[0] == '\0')
        return false;
    size_t n = strlen(expected);
    size_t g = strlen(given);
    unsigned char diff = (unsigned char)(g != n);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = i < g ? (unsigned char)given[i] : 0;
        diff |= (unsigned char)(c ^ (unsigned char)expected[i]);
    }
    return diff == 0;
}
