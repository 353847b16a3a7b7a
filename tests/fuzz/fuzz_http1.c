/* fuzz_http1.c — libFuzzer harness: any bytes as the answer to a poll,
 * through the native client's response reader (seqr/http1.c) without a
 * network. The first two bytes seed how the rest is split into reads; the
 * same bytes read in one piece must give the same verdict, status, body and
 * keep-alive as read in those splits (a split may never change an answer).
 * Nothing may crash, leak or read out of bounds. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seqr/http1.h"

/* A small body cap, so "too large" is reached too. */
#define FUZZ_MAX_BODY 4096

typedef struct {
    seqr_http1_err err;
    bool complete;
    int status;
    bool keep_alive;
    char *body;
    size_t body_len;
} fuzz_outcome;

/* Feeds data in pieces whose sizes come from seed (0: one piece), then the
 * end of the stream unless complete. */
static void fuzz_read(const char *data, size_t size, unsigned seed, fuzz_outcome *out)
{
    seqr_http1_reader *r = seqr_http1_reader_new(FUZZ_MAX_BODY);
    if (r == NULL)
        abort();
    memset(out, 0, sizeof *out);
    size_t at = 0;
    while (at < size && out->err == SEQR_HTTP1_OK && !out->complete) {
        size_t n = size - at;
        if (seed != 0) {
            seed = seed * 1103515245u + 12345u;
            size_t piece = 1 + (seed >> 16) % 7;
            if (piece < n)
                n = piece;
        }
        out->err = seqr_http1_reader_feed(r, data + at, n, &out->complete);
        at += n;
    }
    if (out->err == SEQR_HTTP1_OK && !out->complete)
        out->err = seqr_http1_reader_feed(r, NULL, 0, &out->complete);
    if (out->complete) {
        out->status = seqr_http1_reader_status(r);
        out->keep_alive = seqr_http1_reader_keep_alive(r);
        size_t len = 0;
        const char *b = seqr_http1_reader_body(r, &len);
        out->body = malloc(len + 1);
        if (out->body == NULL)
            abort();
        memcpy(out->body, b, len);
        out->body_len = len;
    }
    seqr_http1_reader_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    unsigned seed = (unsigned)data[0] << 8 | data[1];
    const char *d = (const char *)data + 2;
    size -= 2;
    fuzz_outcome whole, split;
    fuzz_read(d, size, 0, &whole);
    fuzz_read(d, size, seed | 1u, &split);
    /* Bytes after a complete answer only matter for keep-alive, and a split
     * may stop before reading them: compare the answer itself. */
    bool same = whole.err == split.err && whole.complete == split.complete &&
                whole.status == split.status && whole.body_len == split.body_len &&
                (whole.body_len == 0 || memcmp(whole.body, split.body, whole.body_len) == 0);
    if (!same) {
        fprintf(stderr,
                "reading in pieces differs: whole err %d complete %d status %d body %zu; "
                "split err %d complete %d status %d body %zu\n",
                (int)whole.err, whole.complete, whole.status, whole.body_len, (int)split.err,
                split.complete, split.status, split.body_len);
        abort();
    }
    free(whole.body);
    free(split.body);
    return 0;
}
