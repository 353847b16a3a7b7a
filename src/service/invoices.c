/* service/invoices.c — invoice use cases: create (write before you call),
 * read, refresh, update, cancel, commit, list, status answers from the
 * poller, expiry. See service.h. */
#include "service/private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "receipt.h"

bool service_load(service *svc, const char *ref, store_invoice *out, api_error *err)
{
    store_err e = store_invoice_get(svc->st, ref, out);
    if (e != STORE_OK) {
        if (e == STORE_NOT_FOUND)
            api_error_set(err, 404, "not_found", NULL, "no invoice with reference %s", ref);
        else
            service_store_error(err, e, "invoice");
        return false;
    }
    return true;
}

bool service_get_invoice(service *svc, const char *ref, store_invoice *out, api_error *err)
{
    return service_load(svc, ref, out, err);
}

bool service_opts_for(service *svc, const store_invoice *inv, seqr_call_opts *o,
                      char pw[static 128], api_error *err)
{
    if (!service_call_opts(svc, inv->terminal_id, o, pw)) {
        api_error_set(err, 409, "unknown_terminal", NULL,
                      "terminal %s of this invoice is no longer registered here", inv->terminal_id);
        return false;
    }
    if (inv->client_reference[0] != '\0')
        o->client_reference = inv->client_reference;
    return true;
}

/* The invoice fields SEQR marks required, as the gateway sends them: the
 * shop's value, else the terminal's own default (a registered point of sale's
 * name as title, its cashierId), else the configured [invoice] default;
 * clientInvoiceId falls back to the gateway's own id "gw-<local id>". */
static bool service_given(const char *s)
{
    return s != NULL && s[0] != '\0';
}

const char *service_store_name(const service *svc)
{
    return service_given(svc->cfg->receipt_store_name) ? svc->cfg->receipt_store_name
                                                       : svc->cfg->seqr_client_id;
}

void service_required_fields(service *svc, const char *terminal_id, int64_t local_id,
                             const char *title, const char *client_invoice_id,
                             const char *cashier_id, const char *footer, service_required *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->own_id, sizeof out->own_id, "gw-%lld", (long long)local_id);
    store_terminal t;
    if (service_given(terminal_id) && strcmp(terminal_id, svc->cfg->seqr_terminal_id) != 0 &&
        store_terminal_get(svc->st, terminal_id, &t) == STORE_OK) {
        memset(t.password, 0, sizeof t.password);
        snprintf(out->term_name, sizeof out->term_name, "%s", t.name);
        snprintf(out->term_cashier, sizeof out->term_cashier, "%s", t.cashier_id);
    }
    out->title = service_given(title)                     ? title
                 : service_given(out->term_name)          ? out->term_name
                 : service_given(svc->cfg->invoice_title) ? svc->cfg->invoice_title
                                                          : service_store_name(svc);
    out->cashier_id = service_given(cashier_id)          ? cashier_id
                      : service_given(out->term_cashier) ? out->term_cashier
                                                         : svc->cfg->invoice_cashier_id;
    out->footer = service_given(footer) ? footer : svc->cfg->invoice_footer;
    out->client_invoice_id = service_given(client_invoice_id) ? client_invoice_id : out->own_id;
}

/* Fills si's required fields from req (which must outlive si). */
static void service_apply_required(seqr_invoice *si, const service_required *req)
{
    si->title = req->title;
    si->client_invoice_id = req->client_invoice_id;
    si->cashier_id = req->cashier_id;
    si->footer = req->footer;
}

/* The answer to the create, built while SEQR answers the sendInvoice: all
 * of it but what the send sets (service_invoice_json_state). */
typedef struct {
    service *svc;
    const store_invoice *intent; /* as stored before the call */
    json_t *doc;                 /* the request's document */
    json_t *answer;              /* the result, owned here until handed on */
} service_create_answer;

static void service_create_answer_build(void *ud)
{
    service_create_answer *a = ud;
    a->answer = service_invoice_json_doc(a->svc, a->intent, a->doc);
}

bool service_create_invoice(service *svc, const invoice_input *in, store_invoice *out,
                            json_t **answer, api_error *err)
{
    seqr_call_opts o;
    char pw[128];
    memset(out, 0, sizeof *out);
    if (answer != NULL)
        *answer = NULL;
    if (!service_call_opts(svc, in->terminal_id, &o, pw)) {
        api_error_set(err, 422, "unknown_terminal", "terminalId",
                      "terminal %s is not registered with this gateway", in->terminal_id);
        return false;
    }
    if (in->client_reference != NULL)
        o.client_reference = in->client_reference;

    store_invoice inv;
    memset(&inv, 0, sizeof inv);
    snprintf(inv.currency, sizeof inv.currency, "%s", in->currency);
    inv.total = in->total;
    snprintf(inv.terminal_id, sizeof inv.terminal_id, "%s", in->terminal_id ? in->terminal_id : "");
    snprintf(inv.payment_mode, sizeof inv.payment_mode, "%s", in->payment_mode);
    snprintf(inv.client_reference, sizeof inv.client_reference, "%s",
             in->client_reference ? in->client_reference : "");
    inv.doc_json = json_dumps(in->doc, JSON_COMPACT);
    inv.client_invoice_id = in->client_invoice_id; /* in->doc's, or NULL */
    /* invoice_ttl_s and auto_receipt change on reload: read them atomically. */
    long ttl_s = __atomic_load_n(&svc->cfg->poller_invoice_ttl_s, __ATOMIC_RELAXED);
    inv.expires_at = store_now_ms() + (int64_t)ttl_s * 1000;
    service_random_hex(inv.notify_token, 16);
    service_random_hex(inv.pay_secret, 16); /* the payment page's capability */

    store_err se = store_invoice_begin(svc->st, &inv);
    if (se != STORE_OK) {
        service_store_error(err, se, "invoice");
        store_invoice_clear(&inv);
        return false;
    }

    seqr_invoice si;
    invoice_to_seqr(in, &si);
    si.issue_date = (time_t)(inv.created_at / 1000);
    service_required req;
    service_required_fields(svc, inv.terminal_id, inv.id, in->title, in->client_invoice_id,
                            in->cashier_id, in->footer, &req);
    service_apply_required(&si, &req);
    buf notify = BUF_INIT;
    /* SEQR always notifies the gateway itself (when it can be reached); a
     * shop's own notificationUrl gets the invoice.paid webhook instead. */
    if (svc->cfg->http_public_url[0] != '\0') {
        const char *base = svc->cfg->http_public_url;
        size_t bl = strlen(base);
        buf_printf(&notify, "%.*s/seqr/notify/gw-%lld?token=%s",
                   (int)(bl > 0 && base[bl - 1] == '/' ? bl - 1 : bl), base, (long long)inv.id,
                   inv.notify_token);
        si.notification_url = buf_cstr(&notify);
    }
    if (ttl_s > 0 && strncmp(inv.payment_mode, "RESERVATION", 11) == 0)
        si.commit_reservation_timeout = (int)ttl_s;
    service_create_answer built = {svc, &inv, in->doc, NULL};
    if (answer != NULL) {
        o.meanwhile = service_create_answer_build;
        o.meanwhile_ud = &built;
    }

    seqr_send_invoice_answer ans;
    seqr_result res;
    seqr_err e = seqr_send_invoice(svc->seqr, &o, &si, NULL, 0, &ans, &res);
    buf_free(&notify);
    int64_t id = inv.id;
    if (e != SEQR_OK) {
        json_decref(built.answer);
        store_invoice_clear(&inv);
        bool unknown = service_outcome_unknown(e);
        store_err fe = store_invoice_send_failed(
            svc->st, id, unknown ? STORE_SEND_UNKNOWN : STORE_SEND_REJECTED, res.message);
        if (fe != STORE_OK) {
            service_unrecorded(err, fe,
                               "it stays 'sending' and is listed as an unknown outcome after "
                               "the next start",
                               "sendInvoice for local invoice %lld %s (%s)", (long long)id,
                               unknown ? "has an unknown outcome" : "was refused by SEQR",
                               res.message);
            return false;
        }
        if (unknown)
            log_warn("sendInvoice for local invoice %lld: outcome unknown (%s); kept as "
                     "'unknown', never shown to a buyer",
                     (long long)id, res.message);
        service_seqr_error(err, e, &res, "sendInvoice");
        return false;
    }
    se = store_invoice_sent(svc->st, &inv, ans.invoice_reference, ans.invoice_qr_code);
    if (se != STORE_OK) {
        log_error("invoice %s was created at SEQR but storing it failed (%s)",
                  ans.invoice_reference, store_strerror(se));
        service_store_error(err, se, "invoice");
        json_decref(built.answer);
        store_invoice_clear(&inv);
        return false;
    }
    *out = inv; /* the stored row, as store_invoice_sent() left it; out owns it now */
    if (answer != NULL) {
        if (built.answer != NULL)
            service_invoice_json_state(svc, out, built.answer);
        else /* jansson could not allocate it then */
            built.answer = service_invoice_json_doc(svc, out, in->doc);
        *answer = built.answer;
    }
    char total_text[MONEY_BUFLEN];
    log_info("invoice %s created: %s %s", out->reference, money_format(out->total, total_text),
             out->currency);
    if (svc->pending_fn)
        svc->pending_fn(svc->pending_ud, out);
    return true;
}

/* Receipt as stored JSON (caller frees), or NULL when absent. */
static char *service_receipt_json(const seqr_receipt *r)
{
    if (!r->present)
        return NULL;
    json_t *o = json_object();
    char m[MONEY_BUFLEN];
    json_object_set_new(o, "terminalId", service_str_or_null(r->terminal_id));
    json_object_set_new(o, "paymentDate", service_str_or_null(r->payment_date));
    json_object_set_new(o, "invoiceReference", service_str_or_null(r->invoice_reference));
    json_object_set_new(o, "paymentReference", service_str_or_null(r->payment_reference));
    json_object_set_new(o, "payerTerminalId", service_str_or_null(r->payer_terminal_id));
    json_object_set_new(o, "receiverName", service_str_or_null(r->receiver_name));
    json_object_set_new(o, "title", service_str_or_null(r->title));
    json_object_set_new(o, "clientInvoiceId", service_str_or_null(r->client_invoice_id));
    json_object_set_new(o, "totalAmount",
                        r->has_total ? json_string(money_format(r->total, m)) : json_null());
    json_object_set_new(o, "currency", service_str_or_null(r->currency));
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

bool service_apply_status(service *svc, const char *ref, const seqr_payment_status *ps, bool *final,
                          bool *needs_receipt)
{
    *final = false;
    *needs_receipt = false;
    if (ps->status == SEQR_STATUS_UNKNOWN) {
        log_warn("invoice %s: SEQR reported an unknown status '%s'; still polling", ref,
                 ps->status_text);
        return true;
    }
    char *receipt = service_receipt_json(&ps->receipt);
    bool changed = false;
    store_err e = store_invoice_set_status(svc->st, ref, ps->status, ps->version,
                                           ps->ers_reference[0] ? ps->ers_reference : NULL, receipt,
                                           &changed);
    free(receipt);
    if (e == STORE_CONFLICT) {
        /* Stale: another answer (the poller's, say PAID) is newer. What is
         * stored decides whether polling is over. */
        log_debug("invoice %s: stale answer %s (version %lld) ignored", ref,
                  seqr_status_name(ps->status), (long long)ps->version);
        store_invoice inv;
        if (store_invoice_get(svc->st, ref, &inv) == STORE_OK) {
            *final = seqr_status_is_final(inv.status);
            store_invoice_clear(&inv);
        }
        return true;
    }
    if (e != STORE_OK) {
        log_error("invoice %s: storing status %s failed (%s); still polled, stored again on the "
                  "next answer",
                  ref, seqr_status_name(ps->status), store_strerror(e));
        return false;
    }
    if (changed)
        log_info("invoice %s is %s (version %lld)", ref, seqr_status_name(ps->status),
                 (long long)ps->version);
    *final = seqr_status_is_final(ps->status);
    if (ps->status == SEQR_STATUS_PAID &&
        __atomic_load_n(&svc->cfg->poller_auto_receipt, __ATOMIC_RELAXED)) {
        store_invoice inv;
        if (store_invoice_get(svc->st, ref, &inv) == STORE_OK) {
            *needs_receipt = !inv.receipt_submitted;
            store_invoice_clear(&inv);
        }
    }
    return true;
}

bool service_refresh_status(service *svc, const char *ref, store_invoice *out, api_error *err)
{
    if (!service_load(svc, ref, out, err))
        return false;
    seqr_call_opts o;
    char pw[128];
    if (!service_opts_for(svc, out, &o, pw, err)) {
        store_invoice_clear(out);
        return false;
    }
    seqr_payment_status ps;
    seqr_result res;
    seqr_err e = seqr_get_payment_status(svc->seqr, &o, ref, out->version, &ps, &res);
    if (e != SEQR_OK) {
        store_invoice_clear(out);
        service_seqr_error(err, e, &res, "getPaymentStatus");
        return false;
    }
    bool final, needs_receipt;
    if (!service_apply_status(svc, ref, &ps, &final, &needs_receipt)) {
        store_invoice_clear(out);
        service_unrecorded(err, STORE_IO, "it is still polled",
                           "SEQR says invoice %s is %s (version %lld)", ref,
                           seqr_status_name(ps.status), (long long)ps.version);
        return false;
    }
    if (needs_receipt) {
        api_error rerr;
        if (!service_auto_receipt(svc, ref, &rerr))
            log_warn("invoice %s: automatic receipt failed: %s", ref, rerr.message);
    }
    store_invoice_clear(out);
    return service_load(svc, ref, out, err);
}

static bool service_require_open(const store_invoice *inv, const char *what, api_error *err)
{
    if (seqr_status_is_final(inv->status)) {
        api_error_set(err, 409, "invalid_state", NULL, "cannot %s: the invoice is %s", what,
                      seqr_status_name(inv->status));
        return false;
    }
    return true;
}

bool service_update_invoice(service *svc, const char *ref, const invoice_input *in,
                            store_invoice *out, api_error *err)
{
    if (!service_load(svc, ref, out, err))
        return false;
    seqr_call_opts o;
    char pw[128];
    bool ok = false;
    if (!service_require_open(out, "update", err) || !service_opts_for(svc, out, &o, pw, err))
        goto cleanup;
    if (strcmp(in->currency, out->currency) != 0) {
        api_error_set(err, 422, "invalid_currency", "currency",
                      "the currency of an invoice cannot change (it is %s)", out->currency);
        goto cleanup;
    }
    seqr_invoice si;
    invoice_to_seqr(in, &si);
    si.issue_date = (time_t)(out->created_at / 1000);
    service_required req;
    service_required_fields(svc, out->terminal_id, out->id, in->title, in->client_invoice_id,
                            in->cashier_id, in->footer, &req);
    service_apply_required(&si, &req);
    seqr_result res;
    seqr_err e = seqr_update_invoice(svc->seqr, &o, ref, &si, NULL, 0, &res);
    if (e != SEQR_OK) {
        service_seqr_error(err, e, &res, "updateInvoice");
        goto cleanup;
    }
    char *doc = json_dumps(in->doc, JSON_COMPACT);
    store_err se = store_invoice_set_doc(svc->st, ref, doc, in->total);
    free(doc);
    if (se != STORE_OK) {
        service_store_error(err, se, "invoice");
        goto cleanup;
    }
    ok = true;
cleanup:
    store_invoice_clear(out);
    if (ok)
        ok = service_load(svc, ref, out, err);
    return ok;
}

bool service_cancel_invoice(service *svc, const char *ref, store_invoice *out, api_error *err)
{
    if (!service_load(svc, ref, out, err))
        return false;
    seqr_call_opts o;
    char pw[128];
    bool ok = false;
    if (out->status == SEQR_STATUS_CANCELED) {
        api_error_set(err, 409, "invalid_state", NULL, "the invoice is already CANCELED");
        goto cleanup;
    }
    if (!service_require_open(out, "cancel", err) || !service_opts_for(svc, out, &o, pw, err))
        goto cleanup;
    seqr_result res;
    seqr_err e = seqr_cancel_invoice(svc->seqr, &o, ref, &res);
    if (e == SEQR_ERR_RESULT && res.code == SEQR_CODE_INVOICE_ALREADY_CANCELED)
        e = SEQR_OK; /* SEQR had it canceled already: agree with it */
    if (e != SEQR_OK) {
        service_seqr_error(err, e, &res, "cancelInvoice");
        if (e == SEQR_ERR_RESULT && res.code == SEQR_CODE_CANNOT_CANCEL_PAID_INVOICE) {
            /* Paid meanwhile: learn the payment right away. */
            store_invoice fresh;
            api_error ignore;
            if (service_refresh_status(svc, ref, &fresh, &ignore))
                store_invoice_clear(&fresh);
        }
        goto cleanup;
    }
    /* SEQR canceled it: authoritative, at the newest version stored by now. */
    store_invoice now;
    int64_t version = out->version;
    if (store_invoice_get(svc->st, ref, &now) == STORE_OK) {
        if (now.version > version)
            version = now.version;
        store_invoice_clear(&now);
    }
    store_err se =
        store_invoice_set_status(svc->st, ref, SEQR_STATUS_CANCELED, version, NULL, NULL, NULL);
    if (se != STORE_OK && se != STORE_CONFLICT) {
        service_unrecorded(err, se,
                           "it is still polled, so the gateway learns CANCELED "
                           "from SEQR on its next poll",
                           "SEQR canceled invoice %s", ref);
        goto cleanup;
    }
    log_info("invoice %s canceled", ref);
    ok = true;
cleanup:
    store_invoice_clear(out);
    if (ok)
        ok = service_load(svc, ref, out, err);
    return ok;
}

bool service_commit(service *svc, const char *ref, bool has_amount, int64_t amount,
                    store_invoice *out, api_error *err)
{
    if (!service_load(svc, ref, out, err))
        return false;
    seqr_call_opts o;
    char pw[128];
    bool ok = false;
    if (out->status != SEQR_STATUS_RESERVED) {
        api_error_set(err, 409, "invalid_state", NULL,
                      "only a RESERVED invoice can be committed; this one is %s",
                      seqr_status_name(out->status));
        goto cleanup;
    }
    if (has_amount && (amount <= 0 || amount > out->total)) {
        api_error_set(err, 422, "invalid_amount", "amount",
                      "amount must be greater than 0 and at most the invoice total");
        goto cleanup;
    }
    if (!service_opts_for(svc, out, &o, pw, err))
        goto cleanup;
    /* Committing less makes the invoice worth less: the refund cap is the
     * committed amount. Lowered before the call (a cap too low is safe, one
     * too high is not) and restored only when SEQR definitely refused. */
    bool less = has_amount && amount < out->total;
    if (less) {
        store_err se = store_invoice_set_total(svc->st, ref, amount);
        if (se != STORE_OK) {
            service_store_error(err, se, "invoice");
            goto cleanup;
        }
    }
    seqr_result res;
    seqr_err e = seqr_commit_reservation(svc->seqr, &o, ref, has_amount ? amount : out->total,
                                         out->currency, &res);
    if (e != SEQR_OK) {
        service_seqr_error(err, e, &res, "commitReservation");
        if (less && !service_outcome_unknown(e) &&
            store_invoice_set_total(svc->st, ref, out->total) != STORE_OK)
            log_error("invoice %s: restoring the total after a refused commit failed", ref);
        goto cleanup;
    }
    if (less) {
        char m1[MONEY_BUFLEN], m2[MONEY_BUFLEN];
        log_info("invoice %s: reservation committed for %s of %s %s", ref, money_format(amount, m1),
                 money_format(out->total, m2), out->currency);
    }
    ok = true;
cleanup:
    store_invoice_clear(out);
    if (ok)
        ok = service_refresh_status(svc, ref, out, err);
    return ok;
}

typedef struct {
    service *svc;
    json_t *arr;
} service_list_ctx;

static bool service_list_one(const store_invoice *inv, void *ud)
{
    service_list_ctx *ctx = ud;
    json_array_append_new(ctx->arr, service_invoice_json(ctx->svc, inv));
    return true;
}

bool service_list_invoices(service *svc, const char *status, int64_t after, int limit,
                           json_t **result, api_error *err)
{
    service_list_ctx ctx = {svc, json_array()};
    int64_t last = 0;
    bool more = false;
    store_err e =
        store_invoice_list(svc->st, status, after, limit, service_list_one, &ctx, &last, &more);
    if (e != STORE_OK) {
        json_decref(ctx.arr);
        service_store_error(err, e, "invoices");
        return false;
    }
    json_t *o = json_object();
    json_object_set_new(o, "invoices", ctx.arr);
    if (more) {
        char c[32];
        snprintf(c, sizeof c, "%lld", (long long)last);
        json_object_set_new(o, "next", json_string(c));
    } else {
        json_object_set_new(o, "next", json_null());
    }
    *result = o;
    return true;
}

bool service_expire(service *svc, const char *ref, api_error *err)
{
    store_invoice inv;
    bool ok = service_cancel_invoice(svc, ref, &inv, err);
    if (ok) {
        log_info("invoice %s expired unpaid and was canceled", ref);
        store_invoice_clear(&inv);
    }
    return ok;
}

bool service_stop_polling(service *svc, const char *ref, const char *why)
{
    store_err e = store_invoice_stop_polling(svc->st, ref, why);
    if (e != STORE_OK) {
        log_error("invoice %s: stopping its polls (%s) failed to be stored (%s); still polled", ref,
                  why, store_strerror(e));
        return false;
    }
    log_warn("invoice %s: polling stopped: %s", ref, why);
    return true;
}
