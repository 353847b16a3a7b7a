/* seqr/memo.h — what a getPaymentStatus answer parsed to, remembered by the
 * answer's exact bytes.
 *
 * A pending invoice is polled every second and SEQR answers it the same way
 * each time: an ISSUED answer names no invoice (resultCode, resultDescription,
 * status, version), so every invoice at the same status and version gets the
 * very same bytes. Parsing is a function of the bytes alone, so an answer
 * byte for byte equal to one parsed before has the same result; the memo
 * hands that result back instead of running libxml2 again (most of a poll's
 * user time). Only "plain" successes are kept (SEQR_OK, no receipt, no
 * customer tokens, no ersReference): those repeat; a PAID answer names its
 * invoice and is seen once.
 *
 * The comparison is the whole body and the HTTP status, never a hash: no
 * two different answers can share an entry. A few entries, replaced in turn.
 * Thread-safe (a mutex): the poller thread and API threads may share it. */
#ifndef SEQR_MEMO_H
#define SEQR_MEMO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "seqr.h"

/* Entries kept, and the largest body kept (plain answers are ~450 bytes). */
#define SEQR_MEMO_SLOTS 16
#define SEQR_MEMO_MAX_BODY 2048

typedef struct seqr_memo seqr_memo;

/* NULL when out of memory. Free with seqr_memo_free (NULL is fine). */
seqr_memo *seqr_memo_new(void);
void seqr_memo_free(seqr_memo *m);

/* True when body (len bytes, answered with http_status) is byte for byte an
 * answer kept before: *out and *res are then what its parse gave. False and
 * *out, *res untouched otherwise. m may be NULL (false). */
bool seqr_memo_find(seqr_memo *m, long http_status, const char *body, size_t len,
                    seqr_payment_status *out, seqr_result *res);

/* Keeps what body parsed to (err, *out, *res) when it is a plain success
 * (see above) of at most SEQR_MEMO_MAX_BODY bytes; otherwise does nothing.
 * Out of memory: nothing kept. m may be NULL. */
void seqr_memo_add(seqr_memo *m, long http_status, const char *body, size_t len, seqr_err err,
                   const seqr_payment_status *out, const seqr_result *res);

/* How many answers seqr_memo_find recognised since seqr_memo_new. */
uint64_t seqr_memo_hits(seqr_memo *m);

#endif
