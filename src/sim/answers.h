/* sim/answers.h — serialised SOAP answers kept per loop thread, for the
 * answers whose every byte follows from a short key: an error answer (the
 * operation and its result code) and a getPaymentStatus answer before
 * payment (its status and version).
 *
 * The bytes kept are what libxml2 wrote for the tree of the first answer
 * with that key (sim/soap.c still builds every answer's tree); a later
 * answer with the same key is the same document, so its bytes are copied
 * instead of serialised again. Nothing is filled into them, so there is
 * nothing to escape. The caller makes the key hold everything the answer
 * depends on.
 *
 * Each thread has its own small table (no lock): SIM_ANSWERS_SLOTS answers
 * of at most SIM_ANSWERS_MAX_BYTES; a key that does not fit is not kept,
 * and a new key takes over the slot it hashes to. */
#ifndef SEQR_SIM_ANSWERS_H
#define SEQR_SIM_ANSWERS_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define SIM_ANSWERS_KEY_MAX 96
#define SIM_ANSWERS_SLOTS 32
#define SIM_ANSWERS_MAX_BYTES 1024

/* Appends the answer kept for key to out and returns true; false (out
 * unchanged) when this thread keeps none. */
bool sim_answers_get(const char *key, buf *out);
/* Keeps len bytes of data (copied) as the answer for key on this thread;
 * does nothing when the key or the answer is too long. */
void sim_answers_put(const char *key, const char *data, size_t len);

#endif
