/* sim/answers.c — the per-thread table of serialised answers; see
 * sim/answers.h. */
#include "sim/answers.h"

#include <string.h>

typedef struct {
    char key[SIM_ANSWERS_KEY_MAX]; /* "" = empty slot */
    size_t len;
    char data[SIM_ANSWERS_MAX_BYTES];
} sim_answer;

/* Fixed storage in each thread: nothing to free when a thread ends. */
static _Thread_local sim_answer sim_answers[SIM_ANSWERS_SLOTS];

static size_t sim_answers_slot(const char *key)
{
    size_t h = 1469598103934665603ULL;
    for (const char *p = key; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return h % SIM_ANSWERS_SLOTS;
}

bool sim_answers_get(const char *key, buf *out)
{
    if (key[0] == '\0' || strlen(key) >= SIM_ANSWERS_KEY_MAX)
        return false;
    const sim_answer *a = &sim_answers[sim_answers_slot(key)];
    if (strcmp(a->key, key) != 0)
        return false;
    buf_append(out, a->data, a->len);
    return true;
}

void sim_answers_put(const char *key, const char *data, size_t len)
{
    size_t klen = strlen(key);
    if (klen == 0 || klen >= SIM_ANSWERS_KEY_MAX || len > SIM_ANSWERS_MAX_BYTES)
        return;
    sim_answer *a = &sim_answers[sim_answers_slot(key)];
    memcpy(a->key, key, klen + 1);
    memcpy(a->data, data, len);
    a->len = len;
}
