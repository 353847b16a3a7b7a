/* benchutil.h — the few helpers the bench tools share: a monotonic clock,
 * write callbacks that discard or collect, percentiles of a sample
 * array, reading a body file and expanding @SEQ@ in it. Header-only (static inline functions): each
 * bench tool is one C file compiled on its own by bench/run. */
#ifndef SEQR_BENCHUTIL_H
#define SEQR_BENCHUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Monotonic time in milliseconds. */
static inline double bench_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* A libcurl write callback that throws the answer away. */
static inline size_t bench_discard(char *data, size_t size, size_t n, void *ud)
{
    (void)data;
    (void)ud;
    return size * n;
}

/* A growing byte buffer, kept NUL-terminated; free data when done. */
typedef struct {
    char *data;
    size_t len;
} bench_buf;

/* A libcurl write callback (and a plain appender) that collects into the
 * bench_buf ud. Returns 0 when out of memory, which aborts a transfer. */
static inline size_t bench_collect(char *data, size_t size, size_t n, void *ud)
{
    bench_buf *b = ud;
    char *grown = realloc(b->data, b->len + size * n + 1);
    if (grown == NULL)
        return 0;
    memcpy(grown + b->len, data, size * n);
    b->len += size * n;
    grown[b->len] = '\0';
    b->data = grown;
    return size * n;
}

/* Sorts n samples in place (ascending). */
static inline int bench_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static inline void bench_sort(double *samples, long n)
{
    qsort(samples, (size_t)n, sizeof *samples, bench_cmp);
}

/* The p-quantile (0..1) of sorted samples; 0 when there are none. */
static inline double bench_pct(const double *sorted, long n, double p)
{
    return n > 0 ? sorted[(long)((double)(n - 1) * p)] : 0.0;
}

/* The whole file as a NUL-terminated string, or NULL. Caller frees. */
static inline char *bench_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *s = NULL;
    size_t len = 0, cap = 0;
    int c;
    while ((c = fgetc(f)) != EOF) {
        if (len + 2 > cap) {
            cap = cap ? cap * 2 : 4096;
            char *grown = realloc(s, cap);
            if (grown == NULL) {
                free(s);
                fclose(f);
                return NULL;
            }
            s = grown;
        }
        s[len++] = (char)c;
    }
    fclose(f);
    if (s == NULL)
        return calloc(1, 1);
    s[len] = '\0';
    return s;
}

/* tmpl with every @SEQ@ replaced by seq (unique idempotency keys,
 * clientInvoiceIds); its length in *len. Caller frees; NULL when out of
 * memory. */
static inline char *bench_expand(const char *tmpl, long seq, size_t *len)
{
    char num[32];
    int nlen = snprintf(num, sizeof num, "%ld", seq);
    size_t count = 0;
    for (const char *p = strstr(tmpl, "@SEQ@"); p; p = strstr(p + 5, "@SEQ@"))
        count++;
    char *out = malloc(strlen(tmpl) + count * (size_t)nlen + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    for (const char *p = tmpl; *p;) {
        if (strncmp(p, "@SEQ@", 5) == 0) {
            memcpy(out + o, num, (size_t)nlen);
            o += (size_t)nlen;
            p += 5;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    *len = o;
    return out;
}

#endif
