/* http/apikey.h — the API keys a request may present: the current one and,
 * for a while after a reload changed it, the previous one, so shops can be
 * switched to a new key without a window of 401s.
 *
 * Thread-safe: requests check while the main thread rotates. Keys are
 * compared in constant time (the time depends only on the stored key's
 * length). The set owns copies of its keys and wipes them when freed. */
#ifndef SEQR_HTTP_APIKEY_H
#define SEQR_HTTP_APIKEY_H

#include <stdbool.h>
#include <stdint.h>

typedef struct http_apikey http_apikey;

/* key "" = no key required. NULL on out of memory. */
http_apikey *http_apikey_new(const char *key);
void http_apikey_free(http_apikey *k);

/* Makes key the current one. Unless it is unchanged, the old current key
 * stays accepted for overlap_s more seconds (0: at once refused). False on
 * out of memory (nothing changed then). */
bool http_apikey_rotate(http_apikey *k, const char *key, int64_t overlap_s);

/* True when a key is required (the current one is not ""). */
bool http_apikey_required(http_apikey *k);

/* True when presented equals the current key or the previous one within its
 * overlap. */
bool http_apikey_check(http_apikey *k, const char *presented);

#endif
