/* gwtest.h — plumbing for the suites that drive the real seqr-gateway and
 * seqr-sim binaries over loopback (check_gateway, check_crash): temporary
 * directories, configs, starting and stopping both, HTTP calls with the API
 * key, and small JSON accessors. Functions assert with Check on failure. */
#ifndef SEQR_GWTEST_H
#define SEQR_GWTEST_H

#include <jansson.h>

#include "testutil.h"

#define API_KEY "test-api-key-0123456789"
#define TERMINAL_PASSWORD "gw-test-terminal-secret"
#define RESELLER_PASSWORD "gw-test-reseller-secret"

typedef struct {
    tu_proc sim, gw;
    int sim_port, gw_port;
    char dir[512];
    char conf[600];
    char db[600];
} gw_env;

/* Writes e->conf: the gateway against seqr_port, test credentials, interval
 * 300 ms. extra_seqr/extra_poller replace or add lines in those sections. */
void gwt_write_config(gw_env *e, const char *extra_seqr, const char *extra_poller, int seqr_port);
void gwt_start_sim(gw_env *e, const char *reversal_seconds);
void gwt_start_gw(gw_env *e);
/* Temp dir, ports, and a running simulator. */
void gwt_env_init(gw_env *e, const char *reversal_seconds);
/* gwt_env_init, then a config against that simulator (extra_seqr and
 * extra_poller as for gwt_write_config; NULL for none), then the daemon. */
void gwt_env_start(gw_env *e, const char *reversal_seconds, const char *extra_seqr,
                   const char *extra_poller);
void gwt_env_stop(gw_env *e);
/* A gateway call with the API key (idem_key may be NULL); parsed body or NULL. */
json_t *gwt_gw_call(const gw_env *e, const char *method, const char *path, const char *body,
                    const char *idem_key, long *status);
json_t *gwt_sim_call(const gw_env *e, const char *method, const char *path, const char *body,
                     long *status);
/* How many SOAP calls of op the simulator has seen. */
int gwt_sim_count(const gw_env *e, const char *op);
/* String member or "" (borrowed). */
const char *gwt_str(const json_t *o, const char *k);
const char *gwt_error_code(const json_t *o);
const char *gwt_error_field(const json_t *o);
const char *gwt_error_message(const json_t *o);
/* A two-row invoice of 549.50 SEK. */
extern const char gwt_invoice_body[];
void gwt_create_invoice(const gw_env *e, char ref[64]);
/* How much slower than normal the daemons run: 20 under valgrind
 * (SEQR_VALGRIND set, make check-valgrind), 4 in the ASan build
 * (--enable-sanitizers), else 1. Timeouts and bounded waits scale by it. */
int gwt_slowdown(void);
/* Polls GET /invoices/{ref} until status is want (caller decrefs). */
json_t *gwt_wait_status(const gw_env *e, const char *ref, const char *want, int timeout_ms);
void gwt_sim_pay(const gw_env *e, const char *ref);
json_t *gwt_sim_state(const gw_env *e, const char *ref);
void gwt_paid_invoice(const gw_env *e, char ref[64]);

#endif
