/* store/pg/leases.c — which pending invoices each gateway polls: heartbeats,
 * takeover of what dead gateways held, and a fair share for each live one.
 * An invoice's lease (lease_owner) holds while its holder lives, so the
 * heartbeat renews every lease at once. See store_lease_sync() in store.h. */
#include "store/pg/pg.h"

#include <stdio.h>
#include <stdlib.h>

#include "store/private.h"

/* A pending invoice, spelt as the invoices_pending index is. */
#define STORE_PG_PENDING                                                                           \
    "send_state = 'sent' AND polling_stopped = 0 AND status NOT IN ('PAID', 'CANCELED', 'FAILED')"

store_err store_pg_lease_sync(store *st, store_invoice_fn gained, store_lease_lost_fn lost,
                              void *ud, int64_t *held)
{
    char me[24], ttl[24];
    const char *p2[] = {store_pg_i64(me, st->pg->instance),
                        store_pg_i64(ttl, STORE_PG_LEASE_TTL_MS)};
    *held = 0;
    store_pg_acquire_live(st);
    store_pg_internal(true);
    /* Not live (conns[0] was connected again but the server still holds
     * the old session's liveness lock): others count this gateway dead, so
     * settling "dead" gateways' intents would settle ours. Wait for it. */
    if (st->pg->live_lost && !store_pg_relive(st)) {
        st->pg->leases_lapsed = true;
        store_pg_internal(false);
        store_pg_release(st);
        return STORE_IO;
    }
    /* A sync missed for longer than a lease lasts, or the liveness lock
     * lost with a connection: other gateways may hold some of our invoices
     * now. */
    int64_t now = store_pg_mono_ms();
    if (now - st->pg->last_sync_ms > STORE_PG_LEASE_TTL_MS)
        st->pg->leases_lapsed = true;
    store_err e = store_pg_run(st,
                               "UPDATE gateway_instances SET heartbeat_at = " STORE_PG_NOW
                               " WHERE id = $1::bigint AND $2::bigint > 0",
                               2, p2);
    /* What dead gateways left in doubt (as at start-up after a crash). */
    if (e == STORE_OK)
        e = store_pg_recover_dead(st);
    /* A lease lasts as long as its holder lives (its heartbeat and its
     * liveness lock, pg.h): renewing the heartbeat renews them all, with
     * no write per invoice. */
    PGresult *r = NULL;
    /* After a lapse: whatever the poller still polls that is leased to
     * another gateway now is no longer ours (references it does not poll
     * are ignored), so no invoice is polled by two gateways for long. */
    if (e == STORE_OK && st->pg->leases_lapsed) {
        r = store_pg_exec(st,
                          "SELECT reference FROM invoices WHERE " STORE_PG_PENDING
                          " AND lease_owner <> $1::bigint AND $2::bigint > 0",
                          2, p2, &e);
        for (int i = 0; r != NULL && i < PQntuples(r); i++)
            lost(PQgetvalue(r, i, 0), ud);
        PQclear(r);
        r = NULL;
        if (e == STORE_OK)
            st->pg->leases_lapsed = false;
    }
    if (e == STORE_OK)
        r = store_pg_exec(
            st,
            "SELECT count(*) FROM invoices WHERE lease_owner = $1::bigint AND " STORE_PG_PENDING
            " AND $2::bigint > 0",
            2, p2, &e);
    int64_t mine = r ? store_pg_get_i64(r, 0, 0) : 0;
    PQclear(r);
    /* Fair share: pending invoices over live gateways, rounded up. */
    int64_t share = 0;
    if (e == STORE_OK) {
        r = store_pg_exec(st,
                          "SELECT (SELECT count(*) FROM invoices WHERE " STORE_PG_PENDING "),"
                          " (SELECT count(*) FROM gateway_instances WHERE id NOT IN " STORE_PG_DEAD
                          " OR id = $1::bigint), $2::bigint",
                          2, p2, &e);
        if (r != NULL) {
            int64_t pending = store_pg_get_i64(r, 0, 0);
            int64_t live = store_pg_get_i64(r, 0, 1);
            share = live > 0 ? (pending + live - 1) / live : pending;
        }
        PQclear(r);
    }
    /* Over the share by more than a few (another gateway joined): give the
     * excess back; a gateway under its share takes it on its next sync.
     * The oldest first: an invoice just sent holds its lease before its
     * sender has handed it to its poller (store_invoice_sent returns once
     * its events are numbered), and given back in between it would stay
     * polled by both gateways. */
    if (e == STORE_OK && mine > share + 16) {
        char excess[24];
        const char *p3[] = {me, ttl, store_pg_i64(excess, mine - share)};
        r = store_pg_exec(
            st,
            "UPDATE invoices SET lease_owner = 0, lease_until = 0 WHERE id IN"
            " (SELECT id FROM invoices WHERE lease_owner = $1::bigint AND " STORE_PG_PENDING
            " ORDER BY id LIMIT $3::bigint"
            " FOR UPDATE SKIP LOCKED) AND $2::bigint > 0 RETURNING reference",
            3, p3, &e);
        for (int i = 0; r != NULL && i < PQntuples(r); i++)
            lost(PQgetvalue(r, i, 0), ud);
        mine -= r ? PQntuples(r) : 0;
        PQclear(r);
    }
    /* Take over free and expired leases up to the share, skipping rows
     * another gateway is taking at this moment. */
    if (e == STORE_OK && mine < share) {
        char want[24];
        const char *p3[] = {me, ttl, store_pg_i64(want, share - mine)};
        r = store_pg_exec(st,
                          "WITH c AS (SELECT id FROM invoices WHERE " STORE_PG_PENDING
                          " AND (lease_owner = 0 OR lease_owner IN " STORE_PG_DEAD ")"
                          " ORDER BY id LIMIT $3::bigint FOR UPDATE SKIP LOCKED)"
                          " UPDATE invoices i SET lease_owner = $1::bigint,"
                          " lease_until = " STORE_PG_NOW " + $2::bigint"
                          " FROM c WHERE i.id = c.id RETURNING " STORE_PG_INVOICE_COLUMNS,
                          3, p3, &e);
        if (r != NULL) {
            mine += PQntuples(r);
            store_pg_each_invoice(r, gained, ud);
        }
        PQclear(r);
    }
    if (e == STORE_OK)
        st->pg->last_sync_ms = now;
    store_pg_internal(false);
    store_pg_release(st);
    *held = mine;
    return e;
}

store_err store_pg_other_gateways(store *st, int64_t *n)
{
    char id[24];
    const char *p[] = {store_pg_i64(id, st->pg->instance)};
    *n = 0;
    store_pg_acquire(st);
    store_err e;
    PGresult *r = store_pg_exec(st,
                                "SELECT count(*) FROM gateway_instances WHERE id <> $1::bigint"
                                " AND id NOT IN " STORE_PG_DEAD,
                                1, p, &e);
    if (r != NULL && PQntuples(r) == 1)
        *n = store_pg_get_i64(r, 0, 0);
    else if (e == STORE_OK)
        e = STORE_IO;
    PQclear(r);
    store_pg_release(st);
    return e;
}
