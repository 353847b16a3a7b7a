/* backup.c — names and takes an online backup; see backup.h. */
#include "backup.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"

bool backup_now(store *st, const char *store_path, backup_result *out, buf *err)
{
    memset(out, 0, sizeof *out);
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", store_path);
    char *parent = dirname(dir);
    char backups[1024];
    int n = snprintf(backups, sizeof backups, "%s/backups", parent);
    if (n < 0 || (size_t)n >= sizeof backups) {
        buf_printf(err, "the database path is too long");
        return false;
    }
    if (mkdir(backups, 0700) != 0 && errno != EEXIST) {
        buf_printf(err, "cannot create %s: %s", backups, strerror(errno));
        return false;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", &tm);
    n = snprintf(out->file, sizeof out->file, "%s/gateway-%s.%03ldZ.db", backups, stamp,
                 now.tv_nsec / 1000000);
    if (n < 0 || (size_t)n >= sizeof out->file) {
        buf_printf(err, "the backup path is too long");
        return false;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (store_backup(st, out->file, &out->pages, err) != STORE_OK) {
        log_error("backup to %s failed: %s", out->file, buf_cstr(err));
        return false;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    out->elapsed_ms = (int64_t)(t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    struct stat sb;
    if (stat(out->file, &sb) == 0)
        out->bytes = (int64_t)sb.st_size;
    log_info("backup: %s (%lld pages, %lld bytes, %lld ms)", out->file, (long long)out->pages,
             (long long)out->bytes, (long long)out->elapsed_ms);
    return true;
}
