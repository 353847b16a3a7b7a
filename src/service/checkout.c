/* service/checkout.c — what the buyer's payment page needs from the service:
 * the invoice of a pay token, and the page's URL in the invoice object. See
 * service.h and http/checkout.c. */
#include "service/private.h"

#include <string.h>

#include "digest.h"
#include "log.h"

#define SERVICE_PAY_SECRET_LEN 32
#define SERVICE_PAY_REFERENCE_MAX 63

static bool service_pay_hex(const char *t, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!((t[i] >= '0' && t[i] <= '9') || (t[i] >= 'a' && t[i] <= 'f')))
            return false;
    return true;
}

/* A reference that can stand in a token: 1..63 of [0-9A-Za-z_-], no dots. */
static bool service_pay_reference_ok(const char *t, size_t len)
{
    if (len == 0 || len > SERVICE_PAY_REFERENCE_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = t[i];
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

bool service_pay_token_valid(const char *t, size_t len)
{
    if (len == SERVICE_PAY_SECRET_LEN) /* made before schema 9 */
        return service_pay_hex(t, len);
    if (len < SERVICE_PAY_SECRET_LEN + 2 || len > SERVICE_PAY_TOKEN_MAX)
        return false;
    size_t ref_len = len - SERVICE_PAY_SECRET_LEN - 1;
    return t[ref_len] == '.' && service_pay_reference_ok(t, ref_len) &&
           service_pay_hex(t + ref_len + 1, SERVICE_PAY_SECRET_LEN);
}

/* The token of inv's payment page into out (SERVICE_PAY_TOKEN_MAX + 1
 * bytes); false when it has none: not sent yet, no secret (made before
 * schema 7), or a reference a token cannot hold (SEQR's are digits). */
static bool service_pay_token(const store_invoice *inv, char *out, size_t len)
{
    if (inv->reference[0] == '\0')
        return false;
    const char *old = inv->pay_token;
    size_t rl = strlen(inv->reference), sl = strlen(inv->pay_secret), ol = strlen(old);
    if (sl > 0 && rl + 1 + sl < len) {
        memcpy(out, inv->reference, rl);
        out[rl] = '.';
        memcpy(out + rl + 1, inv->pay_secret, sl + 1);
    } else if (sl == 0 && ol > 0 && ol < len) {
        memcpy(out, old, ol + 1);
    } else {
        return false;
    }
    return service_pay_token_valid(out, strlen(out));
}

json_t *service_payment_page_url(service *svc, const store_invoice *inv)
{
    char token[SERVICE_PAY_TOKEN_MAX + 1];
    if (!service_pay_token(inv, token, sizeof token))
        return json_null();
    const char *base = svc->cfg->http_public_url;
    size_t bl = strlen(base);
    while (bl > 0 && base[bl - 1] == '/')
        bl--;
    buf url = BUF_INIT;
    buf_printf(&url, "%.*s/pay/%s", (int)bl, base, token);
    json_t *j = json_string(buf_cstr(&url));
    buf_free(&url);
    return j;
}

bool service_invoice_by_pay_token(service *svc, const char *token, store_invoice *out)
{
    memset(out, 0, sizeof *out);
    size_t len = token != NULL ? strlen(token) : 0;
    if (!service_pay_token_valid(token, len))
        return false;
    store_err e;
    if (len == SERVICE_PAY_SECRET_LEN) {
        e = store_invoice_get_pay_token(svc->st, token, out);
    } else {
        /* The reference finds the invoice; the secret must be its own. */
        char reference[SERVICE_PAY_REFERENCE_MAX + 1];
        size_t ref_len = len - SERVICE_PAY_SECRET_LEN - 1;
        memcpy(reference, token, ref_len);
        reference[ref_len] = '\0';
        e = store_invoice_get(svc->st, reference, out);
        if (e == STORE_OK && !digest_secret_equal(token + ref_len + 1, out->pay_secret)) {
            store_invoice_clear(out);
            e = STORE_NOT_FOUND;
        }
    }
    if (e == STORE_IO)
        log_warn("reading the invoice of a payment page failed");
    return e == STORE_OK;
}
