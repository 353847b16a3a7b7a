/* store/pg/prepared.c — named prepared statements, per connection: each
 * statement text with parameters is prepared (parsed and analysed by the
 * server) once per connection and then only executed, instead of parsed
 * and planned again on every call. The server forgets them when the
 * connection goes, so a re-established connection starts with an empty
 * cache (store_pg_prepared_reset). See store/pg/pg.h. */
#include "store/pg/pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct store_pg_prepared_entry {
    char *sql; /* malloc'd copy of the text; NULL: free slot */
    uint64_t hash;
    char name[24];
};

struct store_pg_prepared {
    struct store_pg_prepared_entry slots[STORE_PG_PREPARED_MAX * 2]; /* open addressing */
    int count;
    unsigned serial; /* names on this connection: s1, s2, ... */
};

static uint64_t store_pg_prepared_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

struct store_pg_prepared *store_pg_prepared_new(void)
{
    return calloc(1, sizeof(struct store_pg_prepared));
}

void store_pg_prepared_reset(struct store_pg_prepared *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < sizeof p->slots / sizeof *p->slots; i++) {
        free(p->slots[i].sql);
        p->slots[i].sql = NULL;
    }
    p->count = 0;
}

void store_pg_prepared_free(struct store_pg_prepared *p)
{
    store_pg_prepared_reset(p);
    free(p);
}

const char *store_pg_prepared_name(struct store_pg_prepared *p, PGconn *c, const char *sql, int n,
                                   PGresult **failed)
{
    *failed = NULL;
    if (p == NULL)
        return NULL;
    const size_t size = sizeof p->slots / sizeof *p->slots;
    uint64_t h = store_pg_prepared_hash(sql);
    size_t i = (size_t)(h % size);
    while (p->slots[i].sql != NULL) {
        if (p->slots[i].hash == h && strcmp(p->slots[i].sql, sql) == 0)
            return p->slots[i].name;
        i = (i + 1) % size;
    }
    if (p->count >= STORE_PG_PREPARED_MAX)
        return NULL; /* full: the caller runs it unnamed */
    struct store_pg_prepared_entry *en = &p->slots[i];
    snprintf(en->name, sizeof en->name, "s%u", ++p->serial);
    PGresult *r = PQprepare(c, en->name, sql, n, NULL);
    if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK) {
        *failed = r;
        return NULL;
    }
    PQclear(r);
    en->sql = strdup(sql);
    if (en->sql == NULL)
        abort();
    en->hash = h;
    p->count++;
    return en->name;
}
