/* seqr/memo.c — getPaymentStatus answers remembered by their bytes (see
 * seqr/memo.h). */
#include "memo.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *body; /* NULL: empty slot */
    size_t len;
    long http_status;
    seqr_payment_status out;
    seqr_result res;
} seqr_memo_entry;

struct seqr_memo {
    pthread_mutex_t lock;
    seqr_memo_entry slots[SEQR_MEMO_SLOTS];
    int next; /* the slot the next new answer replaces */
    uint64_t hits;
};

seqr_memo *seqr_memo_new(void)
{
    seqr_memo *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m);
        return NULL;
    }
    return m;
}

void seqr_memo_free(seqr_memo *m)
{
    if (m == NULL)
        return;
    for (int i = 0; i < SEQR_MEMO_SLOTS; i++)
        free(m->slots[i].body);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* The slot holding exactly this answer, or NULL. Under m->lock. */
static seqr_memo_entry *seqr_memo_slot(seqr_memo *m, long http_status, const char *body, size_t len)
{
    for (int i = 0; i < SEQR_MEMO_SLOTS; i++) {
        seqr_memo_entry *s = &m->slots[i];
        if (s->body != NULL && s->len == len && s->http_status == http_status &&
            memcmp(s->body, body, len) == 0)
            return s;
    }
    return NULL;
}

bool seqr_memo_find(seqr_memo *m, long http_status, const char *body, size_t len,
                    seqr_payment_status *out, seqr_result *res)
{
    if (m == NULL || body == NULL || len == 0 || len > SEQR_MEMO_MAX_BODY)
        return false;
    pthread_mutex_lock(&m->lock);
    seqr_memo_entry *s = seqr_memo_slot(m, http_status, body, len);
    if (s != NULL) {
        *out = s->out;
        *res = s->res;
        m->hits++;
    }
    pthread_mutex_unlock(&m->lock);
    return s != NULL;
}

void seqr_memo_add(seqr_memo *m, long http_status, const char *body, size_t len, seqr_err err,
                   const seqr_payment_status *out, const seqr_result *res)
{
    /* Only what repeats: a plain success (a receipt, tokens or an ersReference
     * belong to one invoice and would only push useful entries out). */
    if (m == NULL || body == NULL || len == 0 || len > SEQR_MEMO_MAX_BODY || err != SEQR_OK ||
        out->receipt.present || out->n_tokens != 0 || out->ers_reference[0] != '\0')
        return;
    char *copy = malloc(len);
    if (copy == NULL)
        return;
    memcpy(copy, body, len);
    pthread_mutex_lock(&m->lock);
    if (seqr_memo_slot(m, http_status, body, len) != NULL) { /* another thread kept it */
        pthread_mutex_unlock(&m->lock);
        free(copy);
        return;
    }
    seqr_memo_entry *s = &m->slots[m->next];
    m->next = (m->next + 1) % SEQR_MEMO_SLOTS;
    free(s->body);
    s->body = copy;
    s->len = len;
    s->http_status = http_status;
    s->out = *out;
    s->res = *res;
    pthread_mutex_unlock(&m->lock);
}

uint64_t seqr_memo_hits(seqr_memo *m)
{
    if (m == NULL)
        return 0;
    pthread_mutex_lock(&m->lock);
    uint64_t n = m->hits;
    pthread_mutex_unlock(&m->lock);
    return n;
}
