/* text.c — bounded string building without printf; see text.h. */
#include "text.h"

#include <string.h>

size_t text_copy(char *dst, size_t cap, const char *src)
{
    if (cap == 0)
        return 0;
    dst[0] = '\0';
    return text_append(dst, cap, 0, src);
}

size_t text_append(char *dst, size_t cap, size_t len, const char *src)
{
    if (cap == 0 || len >= cap)
        return len;
    size_t n = strlen(src);
    if (n > cap - 1 - len)
        n = cap - 1 - len;
    memcpy(dst + len, src, n);
    dst[len + n] = '\0';
    return len + n;
}

size_t text_int(char out[TEXT_INT_LEN], int64_t v)
{
    char rev[TEXT_INT_LEN];
    size_t n = 0, len = 0;
    /* Negative values are taken digit by digit as negatives, so INT64_MIN
     * needs no special case. */
    int64_t x = v;
    do {
        int d = (int)(x % 10);
        rev[n++] = (char)('0' + (d < 0 ? -d : d));
        x /= 10;
    } while (x != 0);
    if (v < 0)
        out[len++] = '-';
    while (n > 0)
        out[len++] = rev[--n];
    out[len] = '\0';
    return len;
}
