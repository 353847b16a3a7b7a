/* backup.h — online backups taken by the running daemon (POST /admin/backup,
 * seqr-gateway --backup): a consistent copy of the database, made through
 * the daemon's own SQLite connection (store_backup), named
 * backups/gateway-YYYYMMDDTHHMMSS.mmmZ.db next to the database. The daemon
 * chooses the name: a client can never make it write elsewhere. */
#ifndef SEQR_BACKUP_H
#define SEQR_BACKUP_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "store.h"

typedef struct {
    char file[1024]; /* absolute path of the copy */
    int64_t pages;
    int64_t bytes;
    int64_t elapsed_ms;
} backup_result;

/* Copies st (whose file is store_path) into a new file in the backups
 * directory beside it (created 0700 if missing). False with a message in
 * err on failure. */
bool backup_now(store *st, const char *store_path, backup_result *out, buf *err);

#endif
