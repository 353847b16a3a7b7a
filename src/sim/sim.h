/* sim/sim.h — seqr-sim, an offline SEQR service: shared types and the entry
 * points of its parts.
 *
 *   state.c    invoices, payments, refunds, terminals, periods, request log,
 *              fault settings; one mutex (sim_lock) guards all of it
 *   soap.c     POST /soap: parses an operation, checks it like SEQR, answers
 *   answers.c  serialised answers kept per thread for those a key decides
 *   control.c  the JSON control API under /sim/
 *   wsdl.c     GET /soap?wsdl
 *   serve.c    the libmicrohttpd loops, one per core; delay.c holds slow calls
 *   main.c     command line
 *
 * It reuses seqr/xml.c (envelopes), money.c, buf.c and log.c, nothing else. */
#ifndef SEQR_SIM_H
#define SEQR_SIM_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"

#define SIM_MAX_REFUNDS 16
#define SIM_MAX_DEVIATIONS 8

typedef struct {
    char ers_reference[32];
    int64_t amount;
} sim_refund;

typedef struct {
    char reference[16];
    char terminal_id[64];
    char status[32];
    int64_t version;
    char currency[4];
    int64_t total;
    char title[256];
    char client_invoice_id[128];
    char payment_mode[48];
    char ers_reference[32];
    int64_t created_ms; /* wall clock */
    int64_t paid_ms;    /* wall clock, 0 if not paid */
    int64_t paid_mono;  /* monotonic, for the reversal rule */
    bool reversed;
    bool receipt_submitted;
    int64_t status_fetches;
    int64_t fetches_after_paid;
    int64_t last_version_seen;
    sim_refund refunds[SIM_MAX_REFUNDS];
    int n_refunds;
    int64_t refunded;
} sim_invoice;

typedef struct {
    char id[64];
    char password[128];
    char seqr_id[80];
    char external_id[128];
    char name[128];
    bool registered;
} sim_terminal;

typedef struct {
    char id[64];
    char user_id[64];
    char password[128];
} sim_reseller;

typedef struct {
    char id[32];
    char terminal_id[64]; /* "" = the whole shop */
    int64_t marked_ms;
    int64_t from_ms; /* payments after this and up to marked_ms belong to it */
    bool report_asked;
} sim_period;

typedef struct {
    int64_t latency_ms;
    double http_error_rate; /* fault injection rates only; never amounts */
    double garbage_rate;
    int64_t down_until_mono;
} sim_faults;

/* --- state.c (call with sim_lock held unless noted) --- */

/* Sets up the state; terminals and reseller from the command line. */
void sim_state_init(int reversal_seconds);
void sim_lock(void);
void sim_unlock(void);
int64_t sim_now_ms(void);  /* wall clock */
int64_t sim_mono_ms(void); /* monotonic */

sim_terminal *sim_terminal_add(const char *id, const char *password);
sim_terminal *sim_terminal_find(const char *id);
sim_terminal *sim_terminal_by_seqr_id(const char *seqr_id);
void sim_reseller_set(const char *id, const char *user_id, const char *password);
const sim_reseller *sim_reseller_get(void);

sim_invoice *sim_invoice_new(void);
sim_invoice *sim_invoice_find(const char *ref);
sim_invoice *sim_invoice_by_ers(const char *ers);
size_t sim_invoice_count(void);
sim_invoice *sim_invoice_at(size_t i);
/* New unique references. */
void sim_new_ers(char out[32]);
void sim_new_digits(char *out, int n);
/* Moves an invoice to status (version + 1). */
void sim_invoice_set_status(sim_invoice *inv, const char *status);
/* Marks an invoice paid now (ersReference, version + 1). */
void sim_invoice_pay(sim_invoice *inv);
/* Applies the reversal rule to every invoice (the background sweep). */
void sim_apply_reversals(void);
/* Applies it to one invoice (on each status call; O(1)). */
void sim_apply_reversal(sim_invoice *inv, int64_t now_mono);
int sim_reversal_seconds(void);

sim_period *sim_period_new(const char *terminal_id);
sim_period *sim_period_find(const char *id);

/* Request log for certification rehearsal. details (may be NULL; the log takes
 * the reference) is an object merged into the call's log entry: "invoice" (the
 * required fields as received) for sendInvoice/updateInvoice, "receiptDocument"
 * for submitPaymentReceipt. */
void sim_log_request(const char *operation, const char *principal, const char *client_reference,
                     int result_code, int http_status, char deviations[][160], int n_deviations,
                     json_t *details);
/* {"requests": [...]} filtered by operation (NULL = all). Caller decrefs. */
json_t *sim_log_json(const char *operation);
void sim_log_clear(void);

sim_faults *sim_faults_get(void);
void sim_reset(void);

/* Invoice state as the control API shows it. Caller decrefs. */
json_t *sim_invoice_json(const sim_invoice *inv);

/* --- soap.c --- */
/* Handles one SOAP request body; fills the answer and its HTTP status.
 * Takes sim_lock itself. */
void sim_soap_handle(const char *body, size_t len, buf *answer, int *http_status);

/* --- control.c --- */
/* Handles /sim/... ; fills a JSON answer and HTTP status. Takes sim_lock. */
void sim_control_handle(const char *method, const char *path, const char *query_operation,
                        const char *body, size_t len, buf *answer, int *http_status);

/* --- wsdl.c --- */
/* The WSDL with its soap:address set to location (e.g. http://127.0.0.1:9090/soap). */
void sim_wsdl(const char *location, buf *out);

#endif
