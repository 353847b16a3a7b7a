/* service/events.c — the events outbox as the HTTP handlers see it: thin
 * passes to the store (the triggers that write events live in the store's
 * schema; see store.h "events"). */
#include <string.h>

#include "service/private.h"

store_err service_events_after(service *svc, int64_t after, int64_t invoice_id, int limit,
                               store_event_fn fn, void *ud)
{
    return store_events_after(svc->st, after, invoice_id, limit, fn, ud);
}

store_err service_event_redeliver(service *svc, int64_t event_id)
{
    return store_event_redeliver(svc->st, event_id);
}

store_err service_events_backlog(service *svc, int64_t *count, int64_t *oldest_at)
{
    return store_events_backlog(svc->st, count, oldest_at);
}

store_err service_delivery_list(service *svc, int limit, char **json)
{
    return store_delivery_list(svc->st, limit, json);
}

bool service_invoice_final(service *svc, int64_t invoice_id)
{
    store_invoice inv;
    if (store_invoice_get_id(svc->st, invoice_id, &inv) != STORE_OK)
        return true;
    bool final = seqr_status_is_final(inv.status) ||
                 strcmp(inv.send_state, STORE_SEND_REJECTED) == 0;
    store_invoice_clear(&inv);
    return final;
}
