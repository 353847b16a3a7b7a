/* store/receipts.c — submitted payment receipts. See store.h. */
#include "store/private.h"
#include "store/pg/pg.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

store_err store_receipt_add(store *st, int64_t invoice_id, const char *mime_type,
                            const char *receipt_type, const char *data_b64, int result_code)
{
    if (st->pg != NULL)
        return store_pg_receipt_add(st, invoice_id, mime_type, receipt_type, data_b64, result_code);
    static const char sql[] = "INSERT INTO receipts(invoice_id, mime_type, receipt_type,"
                              " data_len, result_code, at, data) VALUES(?, ?, ?, ?, ?, ?, ?)";
    store_err e = store_tx_begin(st);
    if (e != STORE_OK)
        return e;
    sqlite3_stmt *s = store_stmt(st, sql);
    if (s == NULL)
        return store_tx_end(st, STORE_IO);
    sqlite3_bind_int64(s, 1, invoice_id);
    store_bind_text(s, 2, mime_type);
    store_bind_text(s, 3, receipt_type);
    sqlite3_bind_int64(s, 4, data_b64 ? (int64_t)strlen(data_b64) : 0);
    sqlite3_bind_int(s, 5, result_code);
    sqlite3_bind_int64(s, 6, store_now_ms());
    if (data_b64 != NULL)
        store_bind_text(s, 7, data_b64);
    else
        sqlite3_bind_null(s, 7);
    e = store_step_done(st, s);
    return store_tx_end(st, e);
}

store_err store_receipt_last(store *st, int64_t invoice_id, store_receipt *out)
{
    if (st->pg != NULL)
        return store_pg_receipt_last(st, invoice_id, out);
    static const char sql[] = "SELECT mime_type, receipt_type, data_len, at, data FROM receipts"
                              " WHERE invoice_id = ? AND result_code = 0 ORDER BY id DESC LIMIT 1";
    memset(out, 0, sizeof *out);
    store_lock(st);
    sqlite3_stmt *s = store_stmt(st, sql);
    store_err e = STORE_IO;
    if (s == NULL)
        goto cleanup;
    sqlite3_bind_int64(s, 1, invoice_id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        store_copy_col(s, 0, out->mime_type, sizeof out->mime_type);
        store_copy_col(s, 1, out->receipt_type, sizeof out->receipt_type);
        out->data_len = sqlite3_column_int64(s, 2);
        out->submitted_at = sqlite3_column_int64(s, 3);
        e = STORE_OK;
        if (sqlite3_column_type(s, 4) == SQLITE_TEXT) {
            out->data_b64 = strdup((const char *)sqlite3_column_text(s, 4));
            if (out->data_b64 == NULL)
                e = STORE_IO;
        }
    } else if (rc == SQLITE_DONE) {
        e = STORE_NOT_FOUND;
    }
    store_done(st, s);
cleanup:
    store_unlock(st);
    return e;
}

void store_receipt_clear(store_receipt *r)
{
    free(r->data_b64);
    r->data_b64 = NULL;
}
