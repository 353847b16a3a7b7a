/* service/checkout.c — what the buyer's payment page needs from the service:
 * the invoice of a pay token, and the page's URL in the invoice object. See
 * service.h and http/checkout.c. */
#include "service/private.h"

#include <string.h>

#include "log.h"

json_t *service_payment_page_url(service *svc, const store_invoice *inv)
{
    if (inv->pay_token[0] == '\0' || inv->reference[0] == '\0')
        return json_null();
    const char *base = svc->cfg->http_public_url;
    size_t bl = strlen(base);
    while (bl > 0 && base[bl - 1] == '/')
        bl--;
    buf url = BUF_INIT;
    buf_printf(&url, "%.*s/pay/%s", (int)bl, base, inv->pay_token);
    json_t *j = json_string(buf_cstr(&url));
    buf_free(&url);
    return j;
}

bool service_invoice_by_pay_token(service *svc, const char *token, store_invoice *out)
{
    store_err e = store_invoice_get_pay_token(svc->st, token, out);
    if (e == STORE_IO)
        log_warn("reading the invoice of a payment page failed");
    return e == STORE_OK;
}
