/* service/refunds.c — refunds (intent stored before the call) and the
 * operator's settlement of outcomes in doubt. See service.h. */
#include "service/private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "receipt.h"

bool service_refund(service *svc, const char *ref, int64_t amount, const char *title,
                    json_t **refund, api_error *err)
{
    store_invoice inv;
    *refund = NULL;
    if (!service_load(svc, ref, &inv, err))
        return false;
    bool ok = false;
    seqr_call_opts o;
    char pw[128];
    char m[MONEY_BUFLEN], m2[MONEY_BUFLEN];
    if (inv.status != SEQR_STATUS_PAID) {
        api_error_set(err, 409, "invalid_state", NULL,
                      "only a PAID invoice can be refunded; this one is %s",
                      seqr_status_name(inv.status));
        goto cleanup;
    }
    if (inv.ers_reference[0] == '\0') {
        api_error_set(err, 409, "invalid_state", NULL,
                      "this invoice is PAID, but SEQR gave no ersReference for the payment, "
                      "and a refund names it; nothing was sent");
        goto cleanup;
    }
    if (!service_opts_for(svc, &inv, &o, pw, err))
        goto cleanup;
    int64_t refund_id = 0;
    store_err se = store_refund_begin(svc->st, inv.id, amount, title, &refund_id);
    if (se == STORE_CONFLICT) {
        /* Either too much, or an earlier refund is still in doubt. */
        store_invoice now;
        if (store_invoice_get_id(svc->st, inv.id, &now) == STORE_OK) {
            int64_t left = now.total - now.refunded;
            if (amount > left)
                api_error_set(err, 422, "refund_too_large", "amount",
                              "refund %s is more than what is left to refund (%s)",
                              money_format(amount, m), money_format(left < 0 ? 0 : left, m2));
            else
                api_error_set(err, 409, "refund_in_doubt", NULL,
                              "an earlier refund of this invoice has an unknown outcome; "
                              "look it up in SEQR's reconciliation report and settle it "
                              "(POST /invoices/%s/refunds/{id}/resolve) before refunding "
                              "again",
                              ref);
            store_invoice_clear(&now);
        } else {
            api_error_set(err, 409, "refund_conflict", "amount", "refund refused");
        }
        goto cleanup;
    }
    if (se != STORE_OK) {
        service_store_error(err, se, "invoice");
        goto cleanup;
    }
    seqr_invoice ri;
    memset(&ri, 0, sizeof ri);
    buf cid = BUF_INIT;
    const char *orig_cid = NULL;
    json_t *doc = inv.doc_json ? json_loads(inv.doc_json, 0, NULL) : NULL;
    orig_cid = json_string_value(json_object_get(doc, "clientInvoiceId"));
    buf_printf(&cid, "%s-R%lld", orig_cid ? orig_cid : inv.reference, (long long)refund_id);
    buf rtitle = BUF_INIT;
    if (title == NULL)
        buf_printf(&rtitle, "Refund of invoice %s", inv.reference);
    ri.title = title ? title : buf_cstr(&rtitle);
    ri.client_invoice_id = buf_cstr(&cid);
    ri.total = amount;
    ri.currency = inv.currency;
    ri.cashier_id = json_string_value(json_object_get(doc, "cashierId"));
    seqr_refund_answer ans;
    seqr_result res;
    seqr_err e = seqr_refund_payment(svc->seqr, &o, inv.ers_reference, &ri, &ans, &res);
    buf_free(&cid);
    buf_free(&rtitle);
    json_decref(doc);
    if (e == SEQR_OK) {
        store_err fe =
            store_refund_finish(svc->st, refund_id, STORE_REFUND_DONE, ans.ers_reference, "");
        if (fe != STORE_OK) {
            service_unrecorded(err, fe,
                               "its amount stays reserved and it is listed as an unknown "
                               "outcome after the next start",
                               "SEQR made refund %lld of invoice %s (ersReference %s)",
                               (long long)refund_id, ref, ans.ers_reference);
            goto cleanup;
        }
        log_info("invoice %s: refunded %s %s (ersReference %s)", ref, money_format(amount, m),
                 inv.currency, ans.ers_reference);
    } else {
        bool unknown = service_outcome_unknown(e);
        store_err fe = store_refund_finish(svc->st, refund_id,
                                           unknown ? STORE_REFUND_UNKNOWN : STORE_REFUND_FAILED, "",
                                           res.message);
        if (fe != STORE_OK) {
            service_unrecorded(err, fe,
                               "its amount stays reserved and it is listed as an unknown "
                               "outcome after the next start",
                               "refund %lld of invoice %s %s (%s)", (long long)refund_id, ref,
                               unknown ? "has an unknown outcome" : "was refused by SEQR",
                               res.message);
            goto cleanup;
        }
        if (unknown)
            log_warn("invoice %s: refund %lld of %s %s outcome unknown (%s); amount stays "
                     "reserved",
                     ref, (long long)refund_id, money_format(amount, m), inv.currency, res.message);
        service_seqr_error(err, e, &res, "refundPayment");
        goto cleanup;
    }
    char *rj = NULL;
    if (store_refund_get(svc->st, refund_id, &rj) == STORE_OK) {
        json_t *r = json_loads(rj, 0, NULL);
        if (r != NULL) {
            json_object_set_new(r, "amount", json_string(money_format(amount, m)));
            json_object_set_new(r, "currency", json_string(inv.currency));
            json_object_set_new(
                r, "createdAt",
                service_time_json(json_integer_value(json_object_get(r, "createdAt"))));
            json_object_set_new(r, "invoiceReference", json_string(inv.reference));
            *refund = r;
        }
    }
    free(rj);
    if (*refund == NULL) {
        api_error_set(err, 500, "store_error", NULL,
                      "the refund was made but reading it back failed");
        goto cleanup;
    }
    ok = true;
cleanup:
    store_invoice_clear(&inv);
    return ok;
}

bool service_invoice_resolve(service *svc, int64_t id, const char *reference, api_error *err)
{
    char was[16];
    store_err se = store_invoice_resolve(svc->st, id, reference, was);
    if (se == STORE_NOT_FOUND) {
        api_error_set(err, 404, "not_found", NULL, "the gateway has no invoice %lld",
                      (long long)id);
        return false;
    }
    if (se == STORE_CONFLICT && strcmp(was, STORE_SEND_UNKNOWN) == 0) {
        api_error_set(err, 409, "reference_in_use", "invoiceReference",
                      "invoice reference %s belongs to another invoice", reference);
        return false;
    }
    if (se == STORE_CONFLICT) {
        api_error_set(err, 409, "invoice_not_in_doubt", NULL,
                      "invoice %lld is %s; only an invoice whose sendInvoice outcome is unknown "
                      "can be settled",
                      (long long)id, was);
        return false;
    }
    if (se != STORE_OK) {
        service_store_error(err, se, "invoice");
        return false;
    }
    log_warn("local invoice %lld, sendInvoice outcome unknown until now, settled by the operator "
             "as %s%s%s",
             (long long)id, reference ? "done, invoice reference " : "failed",
             reference ? reference : "", reference ? "; polled from now on" : "");
    if (reference != NULL && svc->pending_fn != NULL) {
        store_invoice inv;
        if (store_invoice_get_id(svc->st, id, &inv) == STORE_OK) {
            svc->pending_fn(svc->pending_ud, &inv);
            store_invoice_clear(&inv);
        } else {
            log_error("invoice %s is settled but could not be read back; it is polled after "
                      "the next restart",
                      reference);
        }
    }
    return true;
}

bool service_refund_resolve(service *svc, const char *ref, int64_t refund_id, bool happened,
                            const char *ers_reference, store_invoice *out, api_error *err)
{
    store_invoice inv;
    memset(out, 0, sizeof *out);
    if (!service_load(svc, ref, &inv, err))
        return false;
    char was[16];
    const char *state = happened ? STORE_REFUND_DONE : STORE_REFUND_FAILED;
    store_err se = store_refund_resolve(svc->st, inv.id, refund_id, state,
                                        ers_reference ? ers_reference : "", was);
    bool ok = false;
    if (se == STORE_NOT_FOUND) {
        api_error_set(err, 404, "not_found", NULL, "invoice %s has no refund %lld", ref,
                      (long long)refund_id);
    } else if (se == STORE_CONFLICT) {
        api_error_set(err, 409, "refund_not_in_doubt", NULL,
                      "refund %lld is %s; only a refund whose outcome is unknown can be settled",
                      (long long)refund_id, was);
    } else if (se != STORE_OK) {
        service_store_error(err, se, "refund");
    } else {
        log_warn("invoice %s: refund %lld, outcome unknown until now, settled by the operator as "
                 "%s%s%s",
                 ref, (long long)refund_id, state, ers_reference ? ", ersReference " : "",
                 ers_reference ? ers_reference : "");
        ok = service_load(svc, ref, out, err);
    }
    store_invoice_clear(&inv);
    return ok;
}

json_t *service_unknown_outcomes(service *svc, api_error *err)
{
    char *text = NULL;
    store_err se = store_unknown_list(svc->st, &text);
    json_t *o = se == STORE_OK ? json_loads(text, 0, NULL) : NULL;
    free(text);
    if (!json_is_object(o)) {
        json_decref(o);
        service_store_error(err, se == STORE_OK ? STORE_IO : se, "outcomes");
        return NULL;
    }
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(o, "invoices"), i, v)
    {
        service_json_money(v, "totalAmount");
        service_json_time(v, "createdAt");
        service_json_time(v, "expiresAt");
    }
    json_array_foreach(json_object_get(o, "refunds"), i, v)
    {
        service_json_money(v, "amount");
        service_json_time(v, "createdAt");
    }
    return o;
}
