/* store/pg/schema.c — the PostgreSQL schema as forward migrations (table
 * schema_version), applied under a session advisory lock so that gateways
 * starting together do not race; the registration of this instance; and the
 * crash recovery of instances that died. See store/pg/pg.h. */
#include "store/pg/pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "store/private.h"

/* pg_advisory_lock key: "seqrgw" in ASCII, so that other applications
 * sharing the database are unlikely to pick it. */
#define STORE_PG_LOCK_KEY "126875896690551"

/* Forward migrations; index i brings version i to i + 1. Version 1 is the
 * SQLite schema 5 in PostgreSQL's types, plus what several gateways need:
 * the instance that wrote an intent or claimed a key (owner), the lease of a
 * pending invoice (lease_owner, lease_until), and gateway_instances. */
static const char *const store_pg_migrations[] = {
    "CREATE TABLE gateway_instances("
    " id BIGSERIAL PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " started_at BIGINT NOT NULL,"
    " heartbeat_at BIGINT NOT NULL);"
    "CREATE TABLE invoices("
    " id BIGSERIAL PRIMARY KEY,"
    " reference TEXT,"
    " send_state TEXT NOT NULL,"
    " status TEXT NOT NULL,"
    " version BIGINT NOT NULL DEFAULT 0,"
    " qr_code TEXT NOT NULL DEFAULT '',"
    " currency TEXT NOT NULL,"
    " total BIGINT NOT NULL,"
    " terminal_id TEXT NOT NULL DEFAULT '',"
    " payment_mode TEXT NOT NULL DEFAULT '',"
    " client_reference TEXT NOT NULL DEFAULT '',"
    " ers_reference TEXT NOT NULL DEFAULT '',"
    " doc TEXT NOT NULL,"
    " receipt TEXT,"
    " receipt_submitted INTEGER NOT NULL DEFAULT 0,"
    " polling_stopped INTEGER NOT NULL DEFAULT 0,"
    " last_error TEXT NOT NULL DEFAULT '',"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " expires_at BIGINT NOT NULL,"
    " paid_at BIGINT NOT NULL DEFAULT 0,"
    " notify_token TEXT NOT NULL DEFAULT '',"
    " owner BIGINT NOT NULL DEFAULT 0,"
    " lease_owner BIGINT NOT NULL DEFAULT 0,"
    " lease_until BIGINT NOT NULL DEFAULT 0);"
    "CREATE UNIQUE INDEX invoices_reference ON invoices(reference) WHERE reference IS NOT NULL;"
    "CREATE INDEX invoices_status ON invoices(status, id);"
    "CREATE INDEX invoices_unknown ON invoices(id) WHERE send_state = 'unknown';"
    "CREATE INDEX invoices_sending ON invoices(owner) WHERE send_state = 'sending';"
    "CREATE INDEX invoices_pending ON invoices(lease_owner, lease_until) WHERE send_state = 'sent'"
    " AND polling_stopped = 0 AND status NOT IN ('PAID', 'CANCELED', 'FAILED');"
    "CREATE TABLE status_history("
    " id BIGSERIAL PRIMARY KEY,"
    " invoice_id BIGINT NOT NULL REFERENCES invoices(id),"
    " status TEXT NOT NULL,"
    " version BIGINT NOT NULL,"
    " at BIGINT NOT NULL);"
    "CREATE INDEX status_history_invoice ON status_history(invoice_id);"
    "CREATE TABLE refunds("
    " id BIGSERIAL PRIMARY KEY,"
    " invoice_id BIGINT NOT NULL REFERENCES invoices(id),"
    " amount BIGINT NOT NULL CHECK (amount > 0),"
    " title TEXT NOT NULL DEFAULT '',"
    " state TEXT NOT NULL,"
    " ers_reference TEXT NOT NULL DEFAULT '',"
    " error TEXT NOT NULL DEFAULT '',"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " owner BIGINT NOT NULL DEFAULT 0);"
    "CREATE INDEX refunds_invoice ON refunds(invoice_id);"
    "CREATE INDEX refunds_unknown ON refunds(id) WHERE state = 'unknown';"
    "CREATE INDEX refunds_sending ON refunds(owner) WHERE state = 'sending';"
    "CREATE TABLE receipts("
    " id BIGSERIAL PRIMARY KEY,"
    " invoice_id BIGINT NOT NULL REFERENCES invoices(id),"
    " mime_type TEXT NOT NULL DEFAULT '',"
    " receipt_type TEXT NOT NULL DEFAULT '',"
    " data_len BIGINT NOT NULL DEFAULT 0,"
    " result_code INTEGER NOT NULL,"
    " at BIGINT NOT NULL,"
    " data TEXT);"
    "CREATE INDEX receipts_invoice ON receipts(invoice_id);"
    "CREATE TABLE periods("
    " id BIGSERIAL PRIMARY KEY,"
    " period_id TEXT NOT NULL,"
    " terminal_id TEXT NOT NULL DEFAULT '',"
    " at BIGINT NOT NULL);"
    "CREATE TABLE terminals("
    " terminal_id TEXT PRIMARY KEY,"
    " external_id TEXT NOT NULL,"
    " name TEXT NOT NULL,"
    " password TEXT NOT NULL,"
    " seqr_id TEXT NOT NULL DEFAULT '',"
    " unregistered INTEGER NOT NULL DEFAULT 0,"
    " created_at BIGINT NOT NULL,"
    " cashier_id TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE idempotency("
    " scope TEXT NOT NULL,"
    " key TEXT NOT NULL,"
    " request_hash TEXT NOT NULL,"
    " status INTEGER NOT NULL DEFAULT 0,"
    " response TEXT NOT NULL DEFAULT '',"
    " created_at BIGINT NOT NULL,"
    " owner BIGINT NOT NULL DEFAULT 0,"
    " PRIMARY KEY(scope, key));"
    "CREATE INDEX idempotency_created ON idempotency(created_at);"
    /* Every gateway looks for dead ones' intents and keys every second
     * (store_pg_recover_dead): small partial indexes, empty most of the time. */
    "CREATE INDEX idempotency_running ON idempotency(owner) WHERE status = 0;",
};
#define STORE_PG_SCHEMA_VERSION ((int)(sizeof store_pg_migrations / sizeof *store_pg_migrations))

static void store_pg_quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

store_err store_pg_recover_dead(store *st)
{
    store_err e = store_pg_run(st,
                               "UPDATE invoices SET send_state = 'unknown',"
                               " last_error = 'gateway stopped during sendInvoice; outcome unknown'"
                               " WHERE send_state = 'sending' AND owner IN " STORE_PG_DEAD,
                               0, NULL);
    if (e == STORE_OK)
        e = store_pg_run(st,
                         "UPDATE refunds SET state = 'unknown',"
                         " error = 'gateway stopped during refundPayment; outcome unknown'"
                         " WHERE state = 'sending' AND owner IN " STORE_PG_DEAD,
                         0, NULL);
    if (e == STORE_OK)
        e = store_pg_run(st, "DELETE FROM idempotency WHERE status = 0 AND owner IN " STORE_PG_DEAD,
                         0, NULL);
    return e;
}

store_err store_pg_migrate(store *st, buf *err)
{
    for (int i = 0; i < STORE_PG_POOL; i++)
        if (st->pg->conns[i] != NULL)
            PQsetNoticeProcessor(st->pg->conns[i], store_pg_quiet, NULL);
    store_err e;
    PGresult *r = store_pg_exec(st, "SELECT pg_advisory_lock(" STORE_PG_LOCK_KEY ")", 0, NULL, &e);
    PQclear(r);
    if (e != STORE_OK) {
        buf_printf(err, "cannot take the migration lock: %s", PQerrorMessage(store_pg_conn(st)));
        return STORE_IO;
    }
    int version = 0;
    e = store_pg_run(st, "CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)", 0,
                     NULL);
    if (e == STORE_OK) {
        r = store_pg_exec(st, "SELECT max(version) FROM schema_version", 0, NULL, &e);
        if (r != NULL && PQntuples(r) == 1)
            version = (int)store_pg_get_i64(r, 0, 0);
        PQclear(r);
    }
    if (e != STORE_OK) {
        buf_printf(err, "cannot read the schema version: %s", PQerrorMessage(store_pg_conn(st)));
        goto unlock;
    }
    if (version > STORE_PG_SCHEMA_VERSION) {
        buf_printf(err, "database schema version %d is newer than this seqr-gateway (%d)", version,
                   STORE_PG_SCHEMA_VERSION);
        e = STORE_IO;
        goto unlock;
    }
    for (; version < STORE_PG_SCHEMA_VERSION; version++) {
        char v[24];
        const char *p[] = {store_pg_i64(v, version + 1)};
        e = store_pg_run(st, "BEGIN", 0, NULL);
        if (e == STORE_OK)
            e = store_pg_run(st, store_pg_migrations[version], 0, NULL);
        if (e == STORE_OK)
            e = store_pg_run(st, "INSERT INTO schema_version(version) VALUES($1::integer)", 1, p);
        if (e == STORE_OK)
            e = store_pg_run(st, "COMMIT", 0, NULL);
        if (e != STORE_OK) {
            buf_printf(err, "migrating the database to schema %d failed: %s", version + 1,
                       PQerrorMessage(store_pg_conn(st)));
            store_pg_run(st, "ROLLBACK", 0, NULL);
            goto unlock;
        }
    }
    /* This instance: its id marks its intents, keys and leases. */
    char host[64] = "";
    if (gethostname(host, sizeof host - 1) != 0)
        snprintf(host, sizeof host, "?");
    char name[96];
    snprintf(name, sizeof name, "%s:%ld", host, (long)getpid());
    const char *p[] = {name};
    r = store_pg_exec(st,
                      "INSERT INTO gateway_instances(name, started_at, heartbeat_at)"
                      " VALUES($1, " STORE_PG_NOW ", " STORE_PG_NOW ") RETURNING id",
                      1, p, &e);
    if (r != NULL)
        st->pg->instance = store_pg_get_i64(r, 0, 0);
    PQclear(r);
    if (e == STORE_OK) {
        char id[24];
        const char *pl[] = {store_pg_i64(id, st->pg->instance)};
        r = store_pg_exec(st, "SELECT pg_advisory_lock(" STORE_PG_LIVE_KEY ", $1::integer)", 1, pl,
                          &e);
        PQclear(r);
    }
    if (e == STORE_OK)
        e = store_pg_recover_dead(st);
    if (e != STORE_OK)
        buf_printf(err, "cannot register this gateway: %s", PQerrorMessage(store_pg_conn(st)));
unlock:;
    store_err unlocked;
    r = store_pg_exec(st, "SELECT pg_advisory_unlock(" STORE_PG_LOCK_KEY ")", 0, NULL, &unlocked);
    PQclear(r);
    return e == STORE_OK ? unlocked : e;
}
