/* pgproxy.c — a PostgreSQL wire proxy for tests: one thread, poll() over a
 * listening Unix socket and every forwarded connection. It follows the
 * server's messages (a type byte, then a length that counts itself) so that
 * the words it adds fall between two of them. See pgproxy.h. */
#include "pgproxy.h"

#include <errno.h>
#include <glob.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "testutil.h"

#define PGPROXY_MAX 64

typedef struct {
    int client;
    int server;
    /* The server's stream: bytes of its current message still to come, and
     * a header (type and length) read in part. */
    size_t server_left;
    unsigned char hdr[5];
    size_t hdr_have;
    bool idle;          /* a ReadyForQuery went through, and the client
                           sent nothing since */
    bool words_due;     /* last words asked for, not written yet */
    bool dying;         /* words written: forwards nothing more */
    long long close_at; /* dying: closed then (tu_now_ms) */
} pgproxy_pair;

struct pgproxy {
    char dir[64];
    char name[32];    /* the socket's file name, .s.PGSQL.<port> */
    char target[108]; /* the server's socket (sun_path's size) */
    int listener;
    int wake[2];
    pthread_t thread;
    pthread_mutex_t lock;
    pgproxy_pair pairs[PGPROXY_MAX];
    int n;
    int accepted;
    int linger_ms;
    bool stop;
};

/* A FATAL ErrorResponse as a server ending a session sends it. */
static size_t pgproxy_fatal(unsigned char *out, size_t cap)
{
    static const char *const fields[] = {"SFATAL", "VFATAL", "C57P01",
                                         "Mterminating connection due to administrator command"};
    size_t len = 4;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        len += strlen(fields[i]) + 1;
    len += 1; /* the fields' terminator */
    if (len + 1 > cap)
        return 0;
    out[0] = 'E';
    out[1] = (unsigned char)(len >> 24);
    out[2] = (unsigned char)(len >> 16);
    out[3] = (unsigned char)(len >> 8);
    out[4] = (unsigned char)len;
    size_t at = 5;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        size_t fl = strlen(fields[i]) + 1;
        memcpy(out + at, fields[i], fl);
        at += fl;
    }
    out[at++] = '\0';
    return at;
}

static bool pgproxy_write_all(int fd, const unsigned char *b, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        b += w;
        n -= (size_t)w;
    }
    return true;
}

/* Follows the server's messages over n bytes of its stream. */
static void pgproxy_follow(pgproxy_pair *pp, const unsigned char *b, size_t n)
{
    size_t off = 0;
    while (off < n) {
        if (pp->server_left == 0) {
            size_t take = 5 - pp->hdr_have;
            if (take > n - off)
                take = n - off;
            memcpy(pp->hdr + pp->hdr_have, b + off, take);
            pp->hdr_have += take;
            off += take;
            if (pp->hdr_have == 5) {
                uint32_t len = ((uint32_t)pp->hdr[1] << 24) | ((uint32_t)pp->hdr[2] << 16) |
                               ((uint32_t)pp->hdr[3] << 8) | (uint32_t)pp->hdr[4];
                pp->server_left = len >= 4 ? len - 4 : 0;
                pp->hdr_have = 0;
                if (pp->hdr[0] == 'Z') /* others (a notification) leave it */
                    pp->idle = true;
            }
        } else {
            size_t take = pp->server_left < n - off ? pp->server_left : n - off;
            pp->server_left -= take;
            off += take;
        }
    }
}

/* Writes the last words if they are due and the session is idle (the
 * server's stream between two messages). Caller holds the lock. */
static void pgproxy_maybe_words(pgproxy *p, pgproxy_pair *pp)
{
    if (!pp->words_due || !pp->idle || pp->server_left != 0 || pp->hdr_have != 0)
        return;
    unsigned char msg[128];
    size_t n = pgproxy_fatal(msg, sizeof msg);
    pp->words_due = false;
    pp->dying = true;
    pp->close_at = tu_now_ms() + p->linger_ms;
    if (n == 0 || !pgproxy_write_all(pp->client, msg, n))
        pp->close_at = 0; /* the client is gone: close at once */
}

static void pgproxy_close(pgproxy *p, int i)
{
    close(p->pairs[i].client);
    close(p->pairs[i].server);
    p->pairs[i] = p->pairs[p->n - 1];
    p->n--;
}

static void pgproxy_accept(pgproxy *p)
{
    int c = accept(p->listener, NULL, NULL);
    if (c < 0)
        return;
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", p->target);
    if (s < 0 || p->n == PGPROXY_MAX || connect(s, (struct sockaddr *)&sa, sizeof sa) != 0) {
        if (s >= 0)
            close(s);
        close(c);
        return;
    }
    pgproxy_pair *pp = &p->pairs[p->n++];
    memset(pp, 0, sizeof *pp);
    pp->client = c;
    pp->server = s;
    p->accepted++;
}

/* One side of pair i is readable: forwards what came. false: close it. */
static bool pgproxy_forward(pgproxy *p, int i, bool from_client)
{
    pgproxy_pair *pp = &p->pairs[i];
    unsigned char b[65536];
    ssize_t n = recv(from_client ? pp->client : pp->server, b, sizeof b, 0);
    if (n < 0 && errno == EINTR)
        return true;
    if (n <= 0)
        return false;
    if (pp->dying) /* the backend exited: a client that writes sees the end */
        return !from_client;
    if (from_client) {
        pp->idle = false;
        return pgproxy_write_all(pp->server, b, (size_t)n);
    }
    pgproxy_follow(pp, b, (size_t)n);
    if (!pgproxy_write_all(pp->client, b, (size_t)n))
        return false;
    pgproxy_maybe_words(p, pp);
    return true;
}

static void *pgproxy_main(void *arg)
{
    pgproxy *p = arg;
    pthread_mutex_lock(&p->lock);
    while (!p->stop) {
        struct pollfd fds[2 + 2 * PGPROXY_MAX];
        int nf = 0;
        fds[nf++] = (struct pollfd){.fd = p->wake[0], .events = POLLIN};
        fds[nf++] = (struct pollfd){.fd = p->listener, .events = POLLIN};
        int timeout = 100;
        long long now = tu_now_ms();
        for (int i = 0; i < p->n; i++) {
            fds[nf++] = (struct pollfd){.fd = p->pairs[i].client, .events = POLLIN};
            fds[nf++] = (struct pollfd){.fd = p->pairs[i].server, .events = POLLIN};
            if (p->pairs[i].dying && p->pairs[i].close_at - now < timeout)
                timeout = p->pairs[i].close_at > now ? (int)(p->pairs[i].close_at - now) : 0;
        }
        int npairs = p->n;
        pthread_mutex_unlock(&p->lock);
        int r = poll(fds, (nfds_t)nf, timeout);
        pthread_mutex_lock(&p->lock);
        if (r < 0 && errno != EINTR)
            break;
        if (r > 0 && (fds[0].revents & POLLIN)) {
            char c[64];
            if (read(p->wake[0], c, sizeof c) < 0) {
                /* nothing to do: the loop looks at p->stop */
            }
        }
        if (r > 0 && (fds[1].revents & POLLIN))
            pgproxy_accept(p);
        /* Back to front: closing moves the last pair into the gap, and
         * pairs accepted just now (past npairs) were not polled. */
        now = tu_now_ms();
        for (int i = npairs - 1; i >= 0; i--) {
            bool ok = true;
            short cr = fds[2 + 2 * i].revents, sr = fds[2 + 2 * i + 1].revents;
            if (r > 0 && (cr & (POLLIN | POLLHUP | POLLERR)))
                ok = pgproxy_forward(p, i, true);
            if (ok && r > 0 && (sr & (POLLIN | POLLHUP | POLLERR)))
                ok = pgproxy_forward(p, i, false);
            if (ok && p->pairs[i].dying && p->pairs[i].close_at <= now)
                ok = false;
            if (!ok)
                pgproxy_close(p, i);
        }
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

pgproxy *pgproxy_start(const char *server_dir)
{
    pgproxy *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->listener = -1;
    p->wake[0] = p->wake[1] = -1;
    /* The server's socket: .s.PGSQL.<port> in its directory. */
    char pattern[600];
    snprintf(pattern, sizeof pattern, "%s/.s.PGSQL.*", server_dir);
    glob_t g;
    int found = glob(pattern, 0, NULL, &g);
    for (size_t i = 0; found == 0 && i < g.gl_pathc; i++) {
        const char *name = strrchr(g.gl_pathv[i], '/') + 1;
        if (strstr(name, ".lock") == NULL && strlen(g.gl_pathv[i]) < sizeof p->target) {
            snprintf(p->target, sizeof p->target, "%s", g.gl_pathv[i]);
            snprintf(p->name, sizeof p->name, "%s", name);
        }
    }
    if (found == 0)
        globfree(&g);
    snprintf(p->dir, sizeof p->dir, "/tmp/seqr-pgproxy.XXXXXX");
    if (p->target[0] == '\0' || mkdtemp(p->dir) == NULL) {
        fprintf(stderr, "pgproxy: no server socket in %s, or no temporary directory\n", server_dir);
        free(p);
        return NULL;
    }
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s/%s", p->dir, p->name);
    p->listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (p->listener < 0 || bind(p->listener, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(p->listener, 64) != 0 || pipe(p->wake) != 0) {
        fprintf(stderr, "pgproxy: cannot listen on %s: %s\n", sa.sun_path, strerror(errno));
        goto fail;
    }
    pthread_mutex_init(&p->lock, NULL);
    if (pthread_create(&p->thread, NULL, pgproxy_main, p) != 0) {
        pthread_mutex_destroy(&p->lock);
        goto fail;
    }
    return p;
fail:
    if (p->listener >= 0)
        close(p->listener);
    if (p->wake[0] >= 0) {
        close(p->wake[0]);
        close(p->wake[1]);
    }
    unlink(sa.sun_path);
    rmdir(p->dir);
    free(p);
    return NULL;
}

const char *pgproxy_dir(const pgproxy *p)
{
    return p->dir;
}

int pgproxy_last_words(pgproxy *p, int linger_ms)
{
    pthread_mutex_lock(&p->lock);
    p->linger_ms = linger_ms;
    int count = 0;
    for (int i = 0; i < p->n; i++) {
        if (p->pairs[i].dying)
            continue;
        p->pairs[i].words_due = true;
        pgproxy_maybe_words(p, &p->pairs[i]);
        count++;
    }
    pthread_mutex_unlock(&p->lock);
    /* The rest when their server's current message has gone through. */
    long long until = tu_now_ms() + 10000;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        bool due = false;
        for (int i = 0; i < p->n; i++)
            due = due || p->pairs[i].words_due;
        pthread_mutex_unlock(&p->lock);
        if (!due)
            return count;
        if (tu_now_ms() > until)
            return -1;
        tu_sleep_ms(1);
    }
}

int pgproxy_accepted(pgproxy *p)
{
    pthread_mutex_lock(&p->lock);
    int n = p->accepted;
    pthread_mutex_unlock(&p->lock);
    return n;
}

void pgproxy_stop(pgproxy *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_mutex_unlock(&p->lock);
    if (write(p->wake[1], "x", 1) < 0) {
        /* the thread wakes within 100 ms anyway */
    }
    pthread_join(p->thread, NULL);
    while (p->n > 0)
        pgproxy_close(p, p->n - 1);
    close(p->listener);
    close(p->wake[0]);
    close(p->wake[1]);
    char path[200];
    snprintf(path, sizeof path, "%s/%s", p->dir, p->name);
    unlink(path);
    rmdir(p->dir);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
