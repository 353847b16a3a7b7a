/* service/core.c — the service object, call options per terminal, the
 * idempotency bookkeeping and the notification token check. See service.h. */
#include "service/private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "digest.h"

#include "log.h"
#include "receipt.h"

service *service_new(const config *cfg, store *st, seqr_client *seqr)
{
    service *svc = calloc(1, sizeof *svc);
    if (svc == NULL)
        return NULL;
    svc->cfg = cfg;
    svc->st = st;
    svc->seqr = seqr;
    return svc;
}

void service_free(service *svc)
{
    free(svc);
}

void service_set_pending_hook(service *svc, service_pending_fn fn, void *ud)
{
    svc->pending_fn = fn;
    svc->pending_ud = ud;
}

void service_random_hex(char *out, size_t nbytes)
{
    unsigned char raw[64];
    if (nbytes > sizeof raw)
        nbytes = sizeof raw;
    size_t got = 0;
    while (got < nbytes) {
        ssize_t r = getrandom(raw + got, nbytes - got, 0);
        if (r <= 0)
            abort(); /* no entropy: refuse to make guessable secrets */
        got += (size_t)r;
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < nbytes; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[2 * nbytes] = '\0';
}

bool service_call_opts(service *svc, const char *terminal_id, seqr_call_opts *o,
                       char pw[static 128])
{
    memset(o, 0, sizeof *o);
    pw[0] = '\0';
    if (terminal_id == NULL || terminal_id[0] == '\0' ||
        strcmp(terminal_id, svc->cfg->seqr_terminal_id) == 0)
        return true;
    store_terminal t;
    if (store_terminal_get(svc->st, terminal_id, &t) != STORE_OK || t.unregistered)
        return false;
    snprintf(pw, 128, "%s", t.password);
    o->terminal_id = terminal_id;
    o->terminal_password = pw;
    memset(t.password, 0, sizeof t.password);
    return true;
}

store_err service_idem_claim(service *svc, const char *scope, const char *key,
                             const char *request_hash, bool *same_request, int *status,
                             char **response)
{
    return store_idem_claim(svc->st, scope, key, request_hash,
                            (int64_t)svc->cfg->http_idempotency_ttl_s * 1000, same_request, status,
                            response);
}

void service_idem_finish(service *svc, const char *scope, const char *key, int status,
                         const char *response)
{
    if (store_idem_finish(svc->st, scope, key, status, response) != STORE_OK)
        log_warn("storing the answer for an Idempotency-Key failed");
}

void service_idem_release(service *svc, const char *scope, const char *key)
{
    if (store_idem_release(svc->st, scope, key) != STORE_OK)
        log_warn("releasing an Idempotency-Key failed");
}

bool service_backup(service *svc, backup_result *out, buf *err)
{
    return backup_now(svc->st, svc->cfg->store_path, out, err);
}

bool service_store_is_postgresql(const service *svc)
{
    return svc->cfg->store_url != NULL && svc->cfg->store_url[0] != '\0';
}

int64_t service_now_ms(void)
{
    return store_now_ms();
}

bool service_counts(service *svc, int64_t *unknown)
{
    return store_counts(svc->st, unknown) == STORE_OK;
}

bool service_check_notify(service *svc, const char *ref, const char *token, char ref_out[static 64])
{
    store_invoice inv;
    store_err e;
    if (strncmp(ref, "gw-", 3) == 0) {
        char *end = NULL;
        long long id = strtoll(ref + 3, &end, 10);
        if (end == ref + 3 || *end != '\0' || id <= 0)
            return false;
        e = store_invoice_get_id(svc->st, id, &inv);
    } else {
        e = store_invoice_get(svc->st, ref, &inv);
    }
    if (e != STORE_OK)
        return false;
    /* An empty token never matches. */
    bool ok = digest_secret_equal(token, inv.notify_token) && inv.reference[0] != '\0';
    if (ok)
        snprintf(ref_out, 64, "%s", inv.reference);
    store_invoice_clear(&inv);
    return ok;
}
