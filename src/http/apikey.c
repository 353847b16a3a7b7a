/* http/apikey.c — current and previous API key; see apikey.h. */
#include "http/apikey.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "digest.h"

struct http_apikey {
    pthread_mutex_t lock;
    char *current;             /* "" = none required */
    char *previous;            /* NULL = none */
    int64_t previous_until_ms; /* monotonic */
};

static int64_t http_apikey_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void http_apikey_wipe(char *s)
{
    if (s == NULL)
        return;
    volatile char *p = s;
    while (*p != '\0')
        *p++ = '\0';
    free(s);
}

http_apikey *http_apikey_new(const char *key)
{
    http_apikey *k = calloc(1, sizeof *k);
    if (k == NULL)
        return NULL;
    k->current = strdup(key ? key : "");
    if (k->current == NULL || pthread_mutex_init(&k->lock, NULL) != 0) {
        free(k->current);
        free(k);
        return NULL;
    }
    return k;
}

void http_apikey_free(http_apikey *k)
{
    if (k == NULL)
        return;
    http_apikey_wipe(k->current);
    http_apikey_wipe(k->previous);
    pthread_mutex_destroy(&k->lock);
    free(k);
}

bool http_apikey_rotate(http_apikey *k, const char *key, int64_t overlap_s)
{
    char *next = strdup(key ? key : "");
    if (next == NULL)
        return false;
    pthread_mutex_lock(&k->lock);
    if (strcmp(next, k->current) == 0) {
        pthread_mutex_unlock(&k->lock);
        http_apikey_wipe(next);
        return true;
    }
    http_apikey_wipe(k->previous);
    k->previous = NULL;
    /* An old "" (no key) is never kept: it would let anyone in. */
    if (overlap_s > 0 && k->current[0] != '\0') {
        k->previous = k->current;
        k->previous_until_ms = http_apikey_now_ms() + overlap_s * 1000;
    } else {
        http_apikey_wipe(k->current);
    }
    k->current = next;
    pthread_mutex_unlock(&k->lock);
    return true;
}

bool http_apikey_required(http_apikey *k)
{
    if (k == NULL) /* no key set: refuse everyone rather than admit everyone */
        return true;
    pthread_mutex_lock(&k->lock);
    bool required = k->current[0] != '\0';
    pthread_mutex_unlock(&k->lock);
    return required;
}

bool http_apikey_check(http_apikey *k, const char *presented)
{
    if (k == NULL || presented == NULL)
        return false;
    pthread_mutex_lock(&k->lock);
    bool ok = digest_secret_equal(presented, k->current);
    if (k->previous != NULL && http_apikey_now_ms() < k->previous_until_ms)
        ok = digest_secret_equal(presented, k->previous) || ok;
    pthread_mutex_unlock(&k->lock);
    return ok;
}
