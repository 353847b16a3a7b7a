/* testutil.c — see testutil.h. */
#include "testutil.h"

#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Ports are drawn from below Linux's ephemeral range (32768 and up by
 * default), which bind(port 0) and every outgoing connection use: a port taken
 * from there could be grabbed by a client connection of the suite in the
 * moment between this check and the daemon's own bind. */
#define TU_PORT_LOW 20000
#define TU_PORT_SPAN 12000

int tu_free_port(void)
{
    static unsigned seed;
    static int given[32]; /* the last ports handed out: never twice, as the */
    static int n_given;   /* daemons they are for may not have bound them yet */
    if (seed == 0)
        seed = (unsigned)getpid() ^ (unsigned)time(NULL) ^ 0x9e3779b9u;
    for (int attempt = 0; attempt < 500; attempt++) {
        int port = TU_PORT_LOW + rand_r(&seed) % TU_PORT_SPAN;
        bool recent = false;
        for (int i = 0; i < 32 && !recent; i++)
            recent = given[i] == port;
        if (recent)
            continue;
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0)
            return 0;
        struct sockaddr_in a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons((uint16_t)port);
        int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
        close(fd);
        if (ok) {
            given[n_given++ % 32] = port;
            return port;
        }
    }
    return 0;
}

const char *tu_env(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

char *tu_tempdir(void)
{
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/seqr-test-XXXXXX",
             tu_env("SEQR_TEST_RUN_DIR", tu_env("TMPDIR", "/tmp")));
    if (mkdtemp(tmpl) == NULL)
        return NULL;
    return strdup(tmpl);
}

char *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    buf b = BUF_INIT;
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_append(&b, chunk, n);
    fclose(f);
    if (len != NULL)
        *len = b.len;
    return buf_detach(&b);
}

char *tu_fixture(const char *name, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", tu_env("SEQR_FIXTURES", "tests/fixtures"), name);
    char *s = tu_read_file(path, len);
    if (s == NULL) {
        fprintf(stderr, "missing fixture %s\n", path);
        abort();
    }
    return s;
}

bool tu_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return false;
    size_t n = strlen(text);
    bool ok = fwrite(text, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

bool tu_spawn(tu_proc *p, char *const argv[], const char *log_path)
{
    snprintf(p->log_path, sizeof p->log_path, "%s", log_path);
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) {
            dup2(devnull, 0);
            close(devnull);
        }
        execv(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    p->pid = pid;
    return true;
}

bool tu_wait_port(int port, int timeout_ms)
{
    long long end = tu_now_ms() + timeout_ms;
    while (tu_now_ms() < end) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons((uint16_t)port);
        int rc = connect(fd, (struct sockaddr *)&a, sizeof a);
        close(fd);
        if (rc == 0)
            return true;
        tu_sleep_ms(20);
    }
    return false;
}

int tu_stop(tu_proc *p, int sig, int timeout_ms)
{
    if (p->pid <= 0)
        return -1;
    kill(p->pid, sig);
    long long end = tu_now_ms() + timeout_ms;
    int status = 0;
    for (;;) {
        pid_t r = waitpid(p->pid, &status, WNOHANG);
        if (r == p->pid)
            break;
        if (tu_now_ms() >= end) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &status, 0);
            p->pid = 0;
            return -1;
        }
        tu_sleep_ms(10);
    }
    p->pid = 0;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return -1;
}

bool tu_alive(tu_proc *p)
{
    if (p->pid <= 0)
        return false;
    int status;
    pid_t r = waitpid(p->pid, &status, WNOHANG);
    if (r == p->pid) {
        p->pid = 0;
        return false;
    }
    return true;
}

static size_t tu_collect(char *data, size_t size, size_t n, void *ud)
{
    buf_append(ud, data, size * n);
    return size * n;
}

long tu_http(const char *method, const char *url, const char *const *headers, const char *body,
             size_t body_len, tu_response *out)
{
    buf_init(&out->body);
    buf_init(&out->headers);
    out->status = 0;
    CURL *h = curl_easy_init();
    if (h == NULL)
        return 0;
    struct curl_slist *hl = NULL;
    for (const char *const *p = headers; p && *p; p++)
        hl = curl_slist_append(hl, *p);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    } else if (strcmp(method, "GET") != 0 && strcmp(method, "DELETE") != 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, tu_collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &out->body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, tu_collect);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &out->headers);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 60000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    return out->status;
}

void tu_response_free(tu_response *r)
{
    buf_free(&r->body);
    buf_free(&r->headers);
}

json_t *tu_json(const tu_response *r)
{
    if (r->body.len == 0)
        return NULL;
    return json_loadb(r->body.data, r->body.len, 0, NULL);
}

bool tu_header(const tu_response *r, const char *name, char *dst, size_t dstlen)
{
    size_t nl = strlen(name);
    const char *p = buf_cstr(&r->headers);
    while (*p) {
        const char *eol = strstr(p, "\r\n");
        size_t linelen = eol ? (size_t)(eol - p) : strlen(p);
        if (linelen > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            size_t vl = linelen - (size_t)(v - p);
            if (vl >= dstlen)
                vl = dstlen - 1;
            memcpy(dst, v, vl);
            dst[vl] = '\0';
            return true;
        }
        p += linelen;
        if (eol)
            p += 2;
    }
    return false;
}

json_t *tu_get_json(const char *url, long *status)
{
    tu_response r;
    *status = tu_http("GET", url, NULL, NULL, 0, &r);
    json_t *j = tu_json(&r);
    tu_response_free(&r);
    return j;
}

json_t *tu_post_json(const char *url, const char *json_text, long *status)
{
    static const char *const hdr[] = {"Content-Type: application/json", NULL};
    tu_response r;
    *status = tu_http("POST", url, hdr, json_text, json_text ? strlen(json_text) : 0, &r);
    json_t *j = tu_json(&r);
    tu_response_free(&r);
    return j;
}

void tu_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

long long tu_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int tu_remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

int tu_run_suite(Suite *s)
{
    /* Every tu_tempdir() of this run goes into one directory: removed when
     * every test passed, kept (and named) when one failed. */
    char run_dir[512];
    snprintf(run_dir, sizeof run_dir, "%s/seqr-test-run-XXXXXX", tu_env("TMPDIR", "/tmp"));
    bool have_dir = mkdtemp(run_dir) != NULL;
    if (have_dir)
        setenv("SEQR_TEST_RUN_DIR", run_dir, 1);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    if (have_dir) {
        unsetenv("SEQR_TEST_RUN_DIR");
        if (failed == 0) {
            if (nftw(run_dir, tu_remove_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
                fprintf(stderr, "could not remove all of %s: %s\n", run_dir, strerror(errno));
        } else {
            fprintf(stderr, "the failed run's files are kept in %s\n", run_dir);
        }
    }
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
