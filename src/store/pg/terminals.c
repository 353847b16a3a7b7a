/* store/pg/terminals.c — terminal rows on PostgreSQL. Sealing and opening
 * the passwords stays in store/terminals.c, shared by both backends; these
 * functions store and read the sealed text. See store.h. */
#include "store/pg/pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/private.h"

store_err store_pg_terminal_put(store *st, const store_terminal *t, const char *box)
{
    char now[24];
    const char *p[] = {
        t->terminal_id, t->external_id, t->name, box, store_pg_i64(now, store_now_ms()),
        t->cashier_id};
    store_pg_acquire(st);
    store_err e = store_pg_run(
        st,
        "INSERT INTO terminals(terminal_id, external_id, name, password, seqr_id, unregistered,"
        " created_at, cashier_id) VALUES($1, $2, $3, $4, '', 0, $5::bigint, $6)"
        " ON CONFLICT (terminal_id) DO UPDATE SET external_id = EXCLUDED.external_id,"
        " name = EXCLUDED.name, password = EXCLUDED.password, seqr_id = '', unregistered = 0,"
        " created_at = EXCLUDED.created_at, cashier_id = EXCLUDED.cashier_id",
        6, p);
    store_pg_release(st);
    return e;
}

store_err store_pg_terminal_row(store *st, const char *terminal_id, store_terminal *out, char **box)
{
    *box = NULL;
    const char *p[] = {terminal_id};
    store_pg_acquire(st);
    store_err e;
    PGresult *r = store_pg_exec(st,
                                "SELECT terminal_id, external_id, name, password, seqr_id,"
                                " unregistered, created_at, cashier_id FROM terminals"
                                " WHERE terminal_id = $1",
                                1, p, &e);
    store_pg_release(st);
    if (r == NULL)
        return e;
    if (PQntuples(r) == 1) {
        store_pg_copy(r, 0, 0, out->terminal_id, sizeof out->terminal_id);
        store_pg_copy(r, 0, 1, out->external_id, sizeof out->external_id);
        store_pg_copy(r, 0, 2, out->name, sizeof out->name);
        *box = store_pg_dup(r, 0, 3);
        store_pg_copy(r, 0, 4, out->seqr_id, sizeof out->seqr_id);
        out->unregistered = store_pg_get_i64(r, 0, 5) != 0;
        out->created_at = store_pg_get_i64(r, 0, 6);
        store_pg_copy(r, 0, 7, out->cashier_id, sizeof out->cashier_id);
    } else {
        e = STORE_NOT_FOUND;
    }
    PQclear(r);
    return e;
}

store_err store_pg_terminal_update(store *st, const char *terminal_id, const char *seqr_id)
{
    const char *p[] = {terminal_id, seqr_id ? seqr_id : ""};
    store_pg_acquire(st);
    store_err e =
        store_pg_update(st,
                        seqr_id ? "UPDATE terminals SET seqr_id = $2 WHERE terminal_id = $1"
                                : "UPDATE terminals SET unregistered = 1"
                                  " WHERE terminal_id = $1 AND $2 = ''",
                        2, p);
    store_pg_release(st);
    return e;
}

store_err store_pg_terminal_open_invoices(store *st, const char *terminal_id, store_invoice_fn fn,
                                          void *ud)
{
    const char *p[] = {terminal_id};
    store_pg_acquire(st);
    store_err e;
    PGresult *r = store_pg_exec(st,
                                "SELECT " STORE_PG_INVOICE_COLUMNS
                                " FROM invoices i WHERE i.send_state = 'sent'"
                                " AND i.polling_stopped = 0 AND i.status NOT IN ('PAID',"
                                " 'CANCELED', 'FAILED') AND i.terminal_id = $1 ORDER BY i.id",
                                1, p, &e);
    store_pg_release(st);
    if (r != NULL)
        store_pg_each_invoice(r, fn, ud);
    PQclear(r);
    return e;
}
