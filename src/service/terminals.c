/* service/terminals.c — reseller use cases: terminals, reconciliation
 * periods and reports. See service.h. */
#include "service/private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "receipt.h"

static bool service_require_reseller(service *svc, api_error *err)
{
    if (svc->cfg->reseller_id[0] == '\0') {
        api_error_set(err, 409, "reseller_not_configured", NULL,
                      "this operation needs the [reseller] section of the configuration");
        return false;
    }
    return true;
}

bool service_mark_period(service *svc, const char *terminal_id, char period_id[static 64],
                         api_error *err)
{
    if (!service_require_reseller(svc, err))
        return false;
    seqr_param p = {"TERMINALID", terminal_id};
    bool per_terminal = terminal_id != NULL && terminal_id[0] != '\0';
    seqr_result res;
    seqr_err e = seqr_mark_transaction_period(svc->seqr, NULL, per_terminal ? &p : NULL,
                                              per_terminal ? 1 : 0, period_id, &res);
    if (e != SEQR_OK) {
        service_seqr_error(err, e, &res, "markTransactionPeriod");
        return false;
    }
    store_err se = store_period_add(svc->st, period_id, per_terminal ? terminal_id : "");
    if (se != STORE_OK) {
        service_unrecorded(err, se, "the period is not in the gateway's list",
                           "SEQR marked transaction period %s", period_id);
        return false;
    }
    log_info("transaction period %s marked%s%s", period_id, per_terminal ? " for terminal " : "",
             per_terminal ? terminal_id : "");
    return true;
}

bool service_report(service *svc, const char *report_id, const char *language,
                    const seqr_param *params, size_t n_params, seqr_report *out, api_error *err)
{
    if (!service_require_reseller(svc, err))
        return false;
    for (int attempt = 1;; attempt++) {
        seqr_result res;
        memset(out, 0, sizeof *out);
        seqr_err e =
            seqr_execute_report(svc->seqr, NULL, report_id, language, params, n_params, out, &res);
        if (e == SEQR_OK)
            return true;
        seqr_report_free(out);
        if (e == SEQR_ERR_RESULT && res.code == SEQR_CODE_REPORT_NOT_READY &&
            attempt < SERVICE_REPORT_TRIES) {
            usleep(SERVICE_REPORT_WAIT_MS * 1000);
            continue;
        }
        service_seqr_error(err, e, &res, "executeReport");
        if (e == SEQR_ERR_RESULT && res.code == SEQR_CODE_REPORT_NOT_READY) {
            snprintf(err->code, sizeof err->code, "report_not_ready");
            snprintf(err->message, sizeof err->message,
                     "the report is not ready yet after %d tries; ask again shortly",
                     SERVICE_REPORT_TRIES);
            err->retry_after_s = 5;
        }
        return false;
    }
}

bool service_register_terminal(service *svc, const char *external_id, const char *name,
                               const char *password, const char *cashier_id,
                               char terminal_id[static 64], api_error *err)
{
    if (!service_require_reseller(svc, err))
        return false;
    char generated[65];
    if (password == NULL || password[0] == '\0') {
        service_random_hex(generated, 24);
        password = generated;
    }
    seqr_result res;
    seqr_err e =
        seqr_register_terminal(svc->seqr, NULL, external_id, password, name, terminal_id, &res);
    if (e != SEQR_OK) {
        service_seqr_error(err, e, &res, "registerTerminal");
        return false;
    }
    store_terminal t;
    memset(&t, 0, sizeof t);
    snprintf(t.terminal_id, sizeof t.terminal_id, "%s", terminal_id);
    snprintf(t.external_id, sizeof t.external_id, "%s", external_id);
    snprintf(t.name, sizeof t.name, "%s", name);
    snprintf(t.password, sizeof t.password, "%s", password);
    snprintf(t.cashier_id, sizeof t.cashier_id, "%s", cashier_id ? cashier_id : "");
    store_err se = store_terminal_add(svc->st, &t);
    memset(t.password, 0, sizeof t.password);
    memset(generated, 0, sizeof generated);
    if (se != STORE_OK) {
        log_error("terminal %s registered at SEQR but storing it failed", terminal_id);
        service_store_error(err, se, "terminal");
        return false;
    }
    log_info("terminal %s registered (%s)", terminal_id, external_id);
    return true;
}

static bool service_terminal_opts(service *svc, const char *terminal_id, seqr_call_opts *o,
                                  char pw[static 128], api_error *err)
{
    store_terminal t;
    store_err se = store_terminal_get(svc->st, terminal_id, &t);
    if (se != STORE_OK || t.unregistered) {
        api_error_set(err, 404, "not_found", NULL, "no registered terminal %s", terminal_id);
        return false;
    }
    memset(t.password, 0, sizeof t.password);
    return service_call_opts(svc, terminal_id, o, pw);
}

bool service_assign_seqr_id(service *svc, const char *terminal_id, const char *seqr_id,
                            api_error *err)
{
    seqr_call_opts o;
    char pw[128];
    if (!service_terminal_opts(svc, terminal_id, &o, pw, err))
        return false;
    seqr_result res;
    seqr_err e = seqr_assign_seqr_id(svc->seqr, &o, seqr_id, &res);
    if (e != SEQR_OK) {
        service_seqr_error(err, e, &res, "assignSeqrId");
        return false;
    }
    store_err se = store_terminal_set_seqr_id(svc->st, terminal_id, seqr_id);
    if (se != STORE_OK) {
        service_unrecorded(err, se, "assign it again once the database works",
                           "SEQR assigned SEQR ID %s to terminal %s", seqr_id, terminal_id);
        return false;
    }
    return true;
}

/* Collects the references of a terminal's open invoices into a message. */
typedef struct {
    char list[320];
    size_t count;
} service_open_list;

static bool service_collect_open(const store_invoice *inv, void *ud)
{
    service_open_list *l = ud;
    size_t used = strlen(l->list);
    if (l->count < 10 && used + strlen(inv->reference) + 3 < sizeof l->list)
        snprintf(l->list + used, sizeof l->list - used, "%s%s", l->count > 0 ? ", " : "",
                 inv->reference);
    l->count++;
    return true;
}

bool service_unregister_terminal(service *svc, const char *terminal_id, api_error *err)
{
    seqr_call_opts o;
    char pw[128];
    if (!service_terminal_opts(svc, terminal_id, &o, pw, err))
        return false;
    /* Its open invoices would stop being polled (SEQR no longer knows the
     * terminal): the shop cancels them (or waits for them) first. */
    service_open_list open = {.list = "", .count = 0};
    if (store_terminal_open_invoices(svc->st, terminal_id, service_collect_open, &open) !=
        STORE_OK) {
        api_error_set(err, 500, "store_error", NULL, "the gateway's database could not be read");
        return false;
    }
    if (open.count > 0) {
        api_error_set(err, 409, "terminal_has_open_invoices", NULL,
                      "terminal %s has %zu open invoice(s): %s%s; cancel them "
                      "(POST /invoices/{ref}/cancel) or let them be paid first",
                      terminal_id, open.count, open.list, open.count > 10 ? ", ..." : "");
        return false;
    }
    seqr_result res;
    seqr_err e = seqr_unregister_terminal(svc->seqr, &o, &res);
    if (e != SEQR_OK) {
        service_seqr_error(err, e, &res, "unregisterTerminal");
        return false;
    }
    store_err se = store_terminal_unregister(svc->st, terminal_id);
    if (se != STORE_OK) {
        service_unrecorded(err, se, "the gateway still lists it as registered; unregister it again",
                           "SEQR unregistered terminal %s", terminal_id);
        return false;
    }
    log_info("terminal %s unregistered", terminal_id);
    return true;
}

bool service_terminal_seqr_id(service *svc, const char *terminal_id, char seqr_id[static 128],
                              api_error *err)
{
    store_terminal t;
    store_err e = store_terminal_get(svc->st, terminal_id, &t);
    memset(t.password, 0, sizeof t.password);
    if (e != STORE_OK || t.unregistered) {
        api_error_set(err, 404, "not_found", NULL, "no registered terminal %s", terminal_id);
        return false;
    }
    if (t.seqr_id[0] == '\0') {
        api_error_set(err, 409, "invalid_state", NULL,
                      "terminal %s has no SEQR ID yet (POST /terminals/{id}/seqr-id)", terminal_id);
        return false;
    }
    snprintf(seqr_id, 128, "%s", t.seqr_id);
    return true;
}
