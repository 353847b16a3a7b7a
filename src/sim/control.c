/* sim/control.c — the simulator's JSON control API (docs/seqr-sim.1):
 *
 *   POST /sim/invoices/{ref}/pay     the buyer scans and pays (RESERVED for
 *                                    RESERVATION_* modes; commitReservation then pays)
 *   POST /sim/invoices/{ref}/fail    the payment fails
 *   POST /sim/invoices/{ref}/scan    the buyer scanned: PENDING_ISSUER_ACKNOWLEDGE
 *   GET  /sim/invoices/{ref}         one invoice's state
 *   GET  /sim/invoices               all invoices
 *   GET  /sim/requests[?operation=]  every SOAP call with its certification deviations
 *   DELETE /sim/requests             clears that log
 *   POST /sim/faults                 {"latencyMs","httpErrorRate","garbageRate","downForSeconds"}
 *   GET  /sim/faults                 the current fault settings
 *   POST /sim/reset                  forgets every invoice, period and log entry */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/sim.h"

static void sim_json_answer(buf *answer, int *http_status, int status, json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT);
    buf_puts(answer, text ? text : "{}");
    free(text);
    json_decref(j);
    *http_status = status;
}

static void sim_json_error(buf *answer, int *http_status, int status, const char *code,
                           const char *message)
{
    json_t *e = json_object();
    json_object_set_new(e, "code", json_string(code));
    json_object_set_new(e, "message", json_string(message));
    json_t *o = json_object();
    json_object_set_new(o, "error", e);
    sim_json_answer(answer, http_status, status, o);
}

static json_t *sim_faults_json(void)
{
    sim_faults *f = sim_faults_get();
    int64_t left = f->down_until_mono - sim_mono_ms();
    json_t *o = json_object();
    json_object_set_new(o, "latencyMs", json_integer(f->latency_ms));
    json_object_set_new(o, "httpErrorRate", json_real(f->http_error_rate));
    json_object_set_new(o, "garbageRate", json_real(f->garbage_rate));
    json_object_set_new(o, "downForSeconds", json_integer(left > 0 ? (left + 999) / 1000 : 0));
    return o;
}

/* Applies a faults body; returns an error message or NULL. */
static const char *sim_set_faults(const json_t *body)
{
    sim_faults next = *sim_faults_get();
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)body, key, v)
    {
        if (strcmp(key, "latencyMs") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 600000)
                return "latencyMs must be a whole number of milliseconds (0..600000)";
            next.latency_ms = json_integer_value(v);
        } else if (strcmp(key, "httpErrorRate") == 0 || strcmp(key, "garbageRate") == 0) {
            if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 1)
                return "rates must be numbers from 0 to 1";
            if (key[0] == 'h')
                next.http_error_rate = json_number_value(v);
            else
                next.garbage_rate = json_number_value(v);
        } else if (strcmp(key, "downForSeconds") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 86400)
                return "downForSeconds must be a whole number (0..86400)";
            next.down_until_mono = sim_mono_ms() + json_integer_value(v) * 1000;
        } else {
            return "unknown field (latencyMs, httpErrorRate, garbageRate, downForSeconds)";
        }
    }
    *sim_faults_get() = next;
    return NULL;
}

static bool sim_final(const sim_invoice *inv)
{
    return strcmp(inv->status, "PAID") == 0 || strcmp(inv->status, "CANCELED") == 0 ||
           strcmp(inv->status, "FAILED") == 0;
}

static void sim_invoice_action(const char *ref, const char *action, buf *answer, int *http_status)
{
    sim_invoice *inv = sim_invoice_find(ref);
    if (inv == NULL) {
        sim_json_error(answer, http_status, 404, "not_found", "no such invoice");
        return;
    }
    if (strcmp(action, "") == 0) {
        sim_json_answer(answer, http_status, 200, sim_invoice_json(inv));
        return;
    }
    bool reservable = strcmp(inv->status, "RESERVED") == 0 && strcmp(action, "fail") == 0;
    if (sim_final(inv) || (strcmp(inv->status, "RESERVED") == 0 && !reservable)) {
        char msg[96];
        snprintf(msg, sizeof msg, "the invoice is %s", inv->status);
        sim_json_error(answer, http_status, 409, "invalid_state", msg);
        return;
    }
    if (strcmp(action, "pay") == 0) {
        if (strncmp(inv->payment_mode, "RESERVATION", 11) == 0)
            sim_invoice_set_status(inv, "RESERVED");
        else
            sim_invoice_pay(inv);
    } else if (strcmp(action, "fail") == 0) {
        sim_invoice_set_status(inv, "FAILED");
    } else if (strcmp(action, "scan") == 0) {
        sim_invoice_set_status(inv, "PENDING_ISSUER_ACKNOWLEDGE");
    } else {
        sim_json_error(answer, http_status, 404, "not_found", "unknown action (pay, fail, scan)");
        return;
    }
    sim_json_answer(answer, http_status, 200, sim_invoice_json(inv));
}

void sim_control_handle(const char *method, const char *path, const char *query_operation,
                        const char *body, size_t len, buf *answer, int *http_status)
{
    json_t *j = NULL;
    if (len > 0) {
        j = json_loadb(body, len, 0, NULL);
        if (!json_is_object(j)) {
            json_decref(j);
            sim_json_error(answer, http_status, 400, "invalid_json",
                           "the body must be a JSON object");
            return;
        }
    }
    sim_lock();
    sim_apply_reversals();
    if (strncmp(path, "/sim/invoices/", 14) == 0) {
        char ref[32] = "", action[16] = "";
        const char *rest = path + 14;
        size_t n = strcspn(rest, "/");
        if (n == 0 || n >= sizeof ref) {
            sim_json_error(answer, http_status, 404, "not_found", "no such invoice");
        } else {
            memcpy(ref, rest, n);
            if (rest[n] == '/')
                snprintf(action, sizeof action, "%s", rest + n + 1);
            bool get = strcmp(method, "GET") == 0;
            if ((action[0] == '\0') != get)
                sim_json_error(answer, http_status, 405, "method_not_allowed",
                               "GET /sim/invoices/{ref} or POST /sim/invoices/{ref}/pay|fail|scan");
            else
                sim_invoice_action(ref, action, answer, http_status);
        }
    } else if (strcmp(path, "/sim/invoices") == 0 && strcmp(method, "GET") == 0) {
        json_t *arr = json_array();
        for (size_t i = 0; i < sim_invoice_count(); i++)
            json_array_append_new(arr, sim_invoice_json(sim_invoice_at(i)));
        json_t *o = json_object();
        json_object_set_new(o, "invoices", arr);
        sim_json_answer(answer, http_status, 200, o);
    } else if (strcmp(path, "/sim/requests") == 0 && strcmp(method, "GET") == 0) {
        sim_json_answer(answer, http_status, 200, sim_log_json(query_operation));
    } else if (strcmp(path, "/sim/requests") == 0 && strcmp(method, "DELETE") == 0) {
        sim_log_clear();
        sim_json_answer(answer, http_status, 200, json_object());
    } else if (strcmp(path, "/sim/faults") == 0 && strcmp(method, "GET") == 0) {
        sim_json_answer(answer, http_status, 200, sim_faults_json());
    } else if (strcmp(path, "/sim/faults") == 0 && strcmp(method, "POST") == 0) {
        const char *msg = j ? sim_set_faults(j) : NULL;
        if (msg != NULL)
            sim_json_error(answer, http_status, 400, "invalid_value", msg);
        else
            sim_json_answer(answer, http_status, 200, sim_faults_json());
    } else if (strcmp(path, "/sim/reset") == 0 && strcmp(method, "POST") == 0) {
        sim_reset();
        sim_json_answer(answer, http_status, 200, json_object());
    } else {
        sim_json_error(answer, http_status, 404, "not_found", "no such control endpoint");
    }
    sim_unlock();
    json_decref(j);
}
