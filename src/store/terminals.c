/* store/terminals.c — terminals registered through this gateway (their
 * passwords sealed with secretbox) and reconciliation periods. See store.h. */
#include "store/private.h"
#include "store/pg/pg.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "secretbox.h"

store_err store_period_add(store *st, const char *period_id, const char *terminal_id)
{
    if (st->pg != NULL)
        return store_pg_period_add(st, period_id, terminal_id);
    static const char sql[] = "INSERT INTO periods(period_id, terminal_id, at) VALUES(?, ?, ?)";
    store_err e = store_tx_begin(st);
    if (e != STORE_OK)
        return e;
    sqlite3_stmt *s = store_stmt(st, sql);
    if (s == NULL)
        return store_tx_end(st, STORE_IO);
    store_bind_text(s, 1, period_id);
    store_bind_text(s, 2, terminal_id);
    sqlite3_bind_int64(s, 3, store_now_ms());
    e = store_step_done(st, s);
    return store_tx_end(st, e);
}

/* The context a terminal's sealed password is bound to. */
static void store_terminal_aad(const char *terminal_id, char *aad, size_t size)
{
    snprintf(aad, size, "seqr-gateway terminal password\n%s", terminal_id);
}

store_err store_set_secret_key(store *st, const unsigned char key[SECRETBOX_KEY_LEN])
{
    static const char sql_plain[] =
        "SELECT terminal_id, password FROM terminals WHERE password NOT LIKE 'v1:%'";
    static const char sql_seal[] = "UPDATE terminals SET password = ? WHERE terminal_id = ?";
    memcpy(st->secret_key, key, SECRETBOX_KEY_LEN);
    st->has_secret_key = true;
    if (st->pg != NULL)
        return STORE_OK; /* never held a password in plain text */
    /* Passwords stored in plain text by an older version are sealed now;
     * secure_delete overwrites the old text in the file's pages, and the
     * checkpoint below empties the WAL of the pages that held it. */
    if (store_exec(st, "PRAGMA secure_delete = ON") != STORE_OK)
        return STORE_IO;
    store_err e = store_tx_begin(st);
    if (e != STORE_OK)
        return e;
    int sealed = 0;
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db, sql_plain, -1, &s, NULL) != SQLITE_OK)
        return store_tx_end(st, STORE_IO);
    int rc;
    while (e == STORE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        char aad[160];
        store_terminal_aad((const char *)sqlite3_column_text(s, 0), aad, sizeof aad);
        char *box = secretbox_seal(key, aad, (const char *)sqlite3_column_text(s, 1));
        sqlite3_stmt *u = box ? store_stmt(st, sql_seal) : NULL;
        if (u == NULL) {
            e = STORE_IO;
        } else {
            store_bind_text(u, 1, box);
            store_bind_text(u, 2, (const char *)sqlite3_column_text(s, 0));
            e = store_step_done(st, u);
            sealed++;
        }
        free(box);
    }
    sqlite3_finalize(s);
    e = store_tx_end(st, e);
    if (e == STORE_OK && sealed > 0) {
        log_info("store: %d terminal password(s) stored in plain text by an older version are "
                 "now encrypted",
                 sealed);
        e = store_exec(st, "PRAGMA wal_checkpoint(TRUNCATE)");
    }
    /* From here on: deleted content is zeroed within its pages, at no extra I/O. */
    if (e == STORE_OK)
        e = store_exec(st, "PRAGMA secure_delete = FAST");
    return e;
}

store_err store_terminal_add(store *st, const store_terminal *t)
{
    static const char sql[] =
        "INSERT OR REPLACE INTO terminals(terminal_id, external_id, name, password, seqr_id,"
        " unregistered, created_at, cashier_id) VALUES(?, ?, ?, ?, '', 0, ?, ?)";
    if (!st->has_secret_key)
        return STORE_IO; /* never in plain text */
    char aad[160];
    store_terminal_aad(t->terminal_id, aad, sizeof aad);
    char *box = secretbox_seal(st->secret_key, aad, t->password);
    if (box == NULL)
        return STORE_IO;
    if (st->pg != NULL) {
        store_err pe = store_pg_terminal_put(st, t, box);
        free(box);
        return pe;
    }
    store_err e = store_tx_begin(st);
    if (e != STORE_OK) {
        free(box);
        return e;
    }
    sqlite3_stmt *s = store_stmt(st, sql);
    if (s == NULL) {
        free(box);
        return store_tx_end(st, STORE_IO);
    }
    store_bind_text(s, 1, t->terminal_id);
    store_bind_text(s, 2, t->external_id);
    store_bind_text(s, 3, t->name);
    store_bind_text(s, 4, box);
    sqlite3_bind_int64(s, 5, store_now_ms());
    store_bind_text(s, 6, t->cashier_id);
    e = store_step_done(st, s);
    free(box);
    return store_tx_end(st, e);
}

/* Opens the sealed password box into out->password; false (out zeroed,
 * logged) when it cannot be opened. */
static bool store_terminal_open(store *st, store_terminal *out, const char *box)
{
    char aad[160];
    store_terminal_aad(out->terminal_id, aad, sizeof aad);
    if (st->has_secret_key && box != NULL &&
        secretbox_open(st->secret_key, aad, box, out->password, sizeof out->password))
        return true;
    log_error("store: terminal %s: its stored secret cannot be decrypted (another "
              "[store] key_file?)",
              out->terminal_id);
    memset(out, 0, sizeof *out);
    return false;
}

store_err store_terminal_get(store *st, const char *terminal_id, store_terminal *out)
{
    static const char sql[] =
        "SELECT terminal_id, external_id, name, password, seqr_id,"
        " unregistered, created_at, cashier_id FROM terminals WHERE terminal_id = ?";
    memset(out, 0, sizeof *out);
    if (st->pg != NULL) {
        char *sealed = NULL;
        store_err pe = store_pg_terminal_row(st, terminal_id, out, &sealed);
        if (pe == STORE_OK && !store_terminal_open(st, out, sealed))
            pe = STORE_IO;
        free(sealed);
        return pe;
    }
    store_lock(st);
    sqlite3_stmt *s = store_stmt(st, sql);
    store_err e = STORE_IO;
    if (s == NULL)
        goto cleanup;
    store_bind_text(s, 1, terminal_id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        store_copy_col(s, 0, out->terminal_id, sizeof out->terminal_id);
        store_copy_col(s, 1, out->external_id, sizeof out->external_id);
        store_copy_col(s, 2, out->name, sizeof out->name);
        store_copy_col(s, 4, out->seqr_id, sizeof out->seqr_id);
        out->unregistered = sqlite3_column_int(s, 5) != 0;
        out->created_at = sqlite3_column_int64(s, 6);
        store_copy_col(s, 7, out->cashier_id, sizeof out->cashier_id);
        e = store_terminal_open(st, out, (const char *)sqlite3_column_text(s, 3)) ? STORE_OK
                                                                                   : STORE_IO;
    } else if (rc == SQLITE_DONE) {
        e = STORE_NOT_FOUND;
    }
    store_done(st, s);
cleanup:
    store_unlock(st);
    return e;
}

static store_err store_terminal_update(store *st, const char *sql, const char *text,
                                       const char *terminal_id)
{
    store_err e = store_tx_begin(st);
    if (e != STORE_OK)
        return e;
    sqlite3_stmt *s = store_stmt(st, sql);
    if (s == NULL)
        return store_tx_end(st, STORE_IO);
    int i = 1;
    if (text)
        store_bind_text(s, i++, text);
    store_bind_text(s, i, terminal_id);
    e = store_step_done(st, s);
    if (e == STORE_OK && sqlite3_changes(st->db) == 0)
        e = STORE_NOT_FOUND;
    return store_tx_end(st, e);
}

store_err store_terminal_set_seqr_id(store *st, const char *terminal_id, const char *seqr_id)
{
    if (st->pg != NULL)
        return store_pg_terminal_update(st, terminal_id, seqr_id);
    static const char sql[] = "UPDATE terminals SET seqr_id = ? WHERE terminal_id = ?";
    return store_terminal_update(st, sql, seqr_id, terminal_id);
}

store_err store_terminal_open_invoices(store *st, const char *terminal_id, store_invoice_fn fn,
                                       void *ud)
{
    if (st->pg != NULL)
        return store_pg_terminal_open_invoices(st, terminal_id, fn, ud);
    static const char sql[] =
        "SELECT " STORE_INVOICE_COLUMNS " FROM invoices i WHERE i.send_state = 'sent'"
        " AND i.polling_stopped = 0 AND i.status <> 'PAID' AND i.status <> 'CANCELED'"
        " AND i.status <> 'FAILED' AND i.terminal_id = ? ORDER BY i.id";
    return store_for_each(st, sql, terminal_id, fn, ud);
}

store_err store_terminal_unregister(store *st, const char *terminal_id)
{
    if (st->pg != NULL)
        return store_pg_terminal_update(st, terminal_id, NULL);
    static const char sql[] = "UPDATE terminals SET unregistered = 1 WHERE terminal_id = ?";
    return store_terminal_update(st, sql, NULL, terminal_id);
}
