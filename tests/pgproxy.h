/* pgproxy.h — a PostgreSQL wire proxy for tests, between the gateway and a
 * real server on a Unix socket, that can speak a server's last words.
 *
 * When a server ends a session (pg_terminate_backend, a shutdown), the
 * backend sends a FATAL error, leaves pg_stat_activity, and only then
 * exits and closes its socket. A client that reads in between has the
 * words and not yet the end of the stream. pgproxy_last_words() puts every
 * connection in that state, for as long as the test says, so that what a
 * client does then can be tested deterministically. */
#ifndef SEQR_TESTS_PGPROXY_H
#define SEQR_TESTS_PGPROXY_H

#include <stdbool.h>

typedef struct pgproxy pgproxy;

/* Starts a proxy in a new temporary directory that forwards to the server
 * whose socket is in server_dir (the host= of its URL). NULL on failure
 * (printed to stderr). Free with pgproxy_stop(). */
pgproxy *pgproxy_start(const char *server_dir);

/* The directory of the proxy's socket: the host= to connect to. Owned by
 * the proxy. */
const char *pgproxy_dir(const pgproxy *p);

/* Writes a FATAL 57P01 ("terminating connection due to administrator
 * command") to every client connection open now, each once its session is
 * idle (the server's ReadyForQuery went through, the client sent nothing
 * since), as a server ends an idle session, and from then on forwards nothing of them: a client
 * that sends anything more gets its connection closed (the backend has
 * exited), and each is closed after linger_ms anyway. Returns how many
 * connections got the words, once all have (at most 10 s), or -1. */
int pgproxy_last_words(pgproxy *p, int linger_ms);

/* How many client connections the proxy has accepted so far. */
int pgproxy_accepted(pgproxy *p);

/* Closes every connection, stops the thread, removes the directory. */
void pgproxy_stop(pgproxy *p);

#endif
