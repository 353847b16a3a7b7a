/* testutil.h — helpers for the Check suites: free loopback ports, spawning the
 * real binaries (seqr-sim, seqr-gateway) with their output in a log file, and
 * plain HTTP requests through libcurl.
 *
 * Binaries and fixtures are found through the environment that `make check`
 * sets: SEQR_GATEWAY_BIN, SEQR_SIM_BIN, SEQR_FIXTURES, SEQR_SRCDIR. */
#ifndef SEQR_TESTUTIL_H
#define SEQR_TESTUTIL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "buf.h"

/* A TCP port on 127.0.0.1 that was free a moment ago, below the kernel's
 * ephemeral range so no outgoing connection takes it meanwhile, and not one of
 * the last 32 this process was given. 0 if none was found. Not thread-safe. */
int tu_free_port(void);

/* Environment value or fallback (borrowed). */
const char *tu_env(const char *name, const char *fallback);

/* A fresh empty directory (malloc'd path; caller frees): inside the run's
 * directory under tu_run_suite(), which removes it when every test passed;
 * else under $TMPDIR. */
char *tu_tempdir(void);

/* Reads a whole file (malloc'd, NUL-terminated; caller frees); NULL on error. */
char *tu_read_file(const char *path, size_t *len);
/* Reads $SEQR_FIXTURES/name (caller frees); aborts the test if missing. */
char *tu_fixture(const char *name, size_t *len);
/* Writes text to path; false on error. */
bool tu_write_file(const char *path, const char *text);

typedef struct {
    pid_t pid;
    char log_path[512];
} tu_proc;

/* Starts argv[0] with argv (NULL-terminated), stdout+stderr appended to
 * log_path. Returns false if fork/exec failed. */
bool tu_spawn(tu_proc *p, char *const argv[], const char *log_path);
/* Waits until something accepts TCP on 127.0.0.1:port. */
bool tu_wait_port(int port, int timeout_ms);
/* Sends sig and waits up to timeout_ms; returns the exit status (0..255), 128+N
 * if killed by signal N, or -1 if it did not exit in time (then SIGKILLs it). */
int tu_stop(tu_proc *p, int sig, int timeout_ms);
/* True while the process has not exited. */
bool tu_alive(tu_proc *p);

typedef struct {
    long status; /* HTTP status, 0 if no answer */
    buf body;
    buf headers; /* raw response header lines */
} tu_response;

/* Performs one HTTP request. headers: NULL-terminated "Name: value" list or
 * NULL. body may be NULL. Returns the status (0 on transport failure). */
long tu_http(const char *method, const char *url, const char *const *headers, const char *body,
             size_t body_len, tu_response *out);
void tu_response_free(tu_response *r);
/* Parses the body as JSON (caller json_decref()s); NULL if not JSON. */
json_t *tu_json(const tu_response *r);
/* Value of response header name (case-insensitive) copied into dst; false if absent. */
bool tu_header(const tu_response *r, const char *name, char *dst, size_t dstlen);

/* Convenience: GET/POST JSON text and parse the answer; *status receives the
 * HTTP status. Returns the parsed body (caller decrefs) or NULL. */
json_t *tu_get_json(const char *url, long *status);
json_t *tu_post_json(const char *url, const char *json_text, long *status);

/* Runs every test of s (Check's normal output) and frees it; returns the
 * process exit status: EXIT_SUCCESS when nothing failed. */
typedef struct Suite Suite;
int tu_run_suite(Suite *s);

/* Sleeps ms milliseconds. */
void tu_sleep_ms(int ms);
/* Monotonic milliseconds. */
long long tu_now_ms(void);

#endif
