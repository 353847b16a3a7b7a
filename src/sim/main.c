/* sim/main.c — seqr-sim: a SEQR merchant SOAP service for offline development
 * and the test suite.
 *
 *   seqr-sim [--port 9090] [--listen 127.0.0.1] [--terminal ID:PASSWORD]...
 *            [--reseller ID:USERID:PASSWORD] [--reversal-seconds 20]
 *
 * POST /soap speaks SEQR's API; GET /soap?wsdl serves its WSDL; /sim/... is the
 * control API (see sim/control.c). sim/serve.c runs one libmicrohttpd epoll
 * loop per core; a call that must wait for injected latency is suspended and
 * resumed by its own loop when due (sim/delay.h), so the latency delays only
 * its own call and costs no thread while it waits. SIGTERM/SIGINT stop it
 * with exit 0. */
#include <arpa/inet.h>
#include <libxml/parser.h>
#include <microhttpd.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "sim/delay.h"
#include "sim/serve.h"
#include "sim/sim.h"

#define SIM_MAX_BODY (2 * 1024 * 1024)
#define SIM_DEFAULT_TERMINAL "seqr-sim-terminal:terminal-password"
#define SIM_DEFAULT_RESELLER "seqr-sim-reseller:9900:reseller-password"

typedef struct {
    buf body;
    bool too_large;
    bool held; /* the injected latency has been waited out (sim/delay.h) */
} sim_conn;

static char sim_location[256];

static void sim_usage(FILE *f)
{
    fprintf(f,
            "usage: seqr-sim [--port 9090] [--listen 127.0.0.1] [--terminal ID:PASSWORD]...\n"
            "                [--reseller ID:USERID:PASSWORD] [--reversal-seconds 20]\n"
            "                [--tls-cert CERT.pem --tls-key KEY.pem]\n"
            "\n"
            "An offline SEQR merchant SOAP service. Defaults: --terminal %s\n"
            "--reseller %s --reversal-seconds 20. With --tls-cert and --tls-key it\n"
            "speaks HTTPS (as SEQR does), for measuring and testing TLS.\n"
            "  POST /soap                 the SEQR SOAP API;  GET /soap?wsdl  its WSDL\n"
            "  POST /sim/invoices/REF/pay the buyer pays (also /fail, /scan)\n"
            "  GET  /sim/invoices/REF     an invoice's state;  GET /sim/invoices  all\n"
            "  GET  /sim/requests         every SOAP call with certification deviations\n"
            "  POST /sim/faults           {\"latencyMs\",\"httpErrorRate\",\"garbageRate\","
            "\"downForSeconds\"}\n"
            "  POST /sim/reset            forget everything\n",
            SIM_DEFAULT_TERMINAL, SIM_DEFAULT_RESELLER);
}

/* A uniform random number in [0, 1) for fault injection. */
static double sim_random_unit(void)
{
    uint32_t r;
    if (getrandom(&r, sizeof r, 0) != sizeof r)
        return 0.5;
    return (double)r / 4294967296.0;
}

/* Queues body as the answer; takes its bytes (body is left empty), so the
 * answer is not copied once more. */
static enum MHD_Result sim_send(struct MHD_Connection *conn, int status, const char *type,
                                buf *body)
{
    size_t len = body->len;
    char *data = buf_detach(body);
    struct MHD_Response *r = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(data);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

/* POST /soap; delay is the calling loop's (see sim/serve.h). */
static enum MHD_Result sim_soap(struct MHD_Connection *conn, sim_conn *sc, sim_delay *delay)
{
    sim_lock();
    sim_faults f = *sim_faults_get();
    sim_unlock();
    if (f.latency_ms > 0 && !sc->held && f.down_until_mono <= sim_mono_ms()) {
        /* Wait out the latency suspended; the handler runs again after it. */
        sc->held = true;
        if (sim_delay_hold(delay, conn, f.latency_ms))
            return MHD_YES;
    }
    buf answer = BUF_INIT;
    int status = 200;
    const char *type = "text/xml; charset=utf-8";
    if (f.down_until_mono > sim_mono_ms()) {
        buf_puts(&answer, "Service Unavailable");
        status = 503;
        type = "text/plain";
    } else {
        if (f.http_error_rate > 0 && sim_random_unit() < f.http_error_rate) {
            buf_puts(&answer, "Internal Server Error");
            status = 500;
            type = "text/plain";
        } else {
            sim_soap_handle(buf_cstr(&sc->body), sc->body.len, &answer, &status);
            if (f.garbage_rate > 0 && sim_random_unit() < f.garbage_rate) {
                /* The call happened, but the answer is unreadable. */
                buf_reset(&answer);
                buf_puts(&answer, "<soap:Envelope><garbage>\x01\x02 not xml");
                status = 200;
            }
        }
    }
    enum MHD_Result ret = sim_send(conn, status, type, &answer);
    buf_free(&answer);
    return ret;
}

static enum MHD_Result sim_find_wsdl(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    (void)kind;
    (void)value;
    if (strcasecmp(key, "wsdl") == 0) {
        *(bool *)cls = true;
        return MHD_NO;
    }
    return MHD_YES;
}

/* True for "?wsdl" (which has no value, so a plain lookup cannot see it). */
static bool sim_has_wsdl_arg(struct MHD_Connection *conn)
{
    bool found = false;
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, sim_find_wsdl, &found);
    return found;
}

static enum MHD_Result sim_handle(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    sim_delay *delay = cls;
    sim_conn *sc = *con_cls;
    if (sc == NULL) {
        sc = calloc(1, sizeof *sc);
        if (sc == NULL)
            return MHD_NO;
        *con_cls = sc;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (sc->body.len + *upload_data_size > SIM_MAX_BODY)
            sc->too_large = true;
        else
            buf_append(&sc->body, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    buf answer = BUF_INIT;
    int status = 404;
    enum MHD_Result ret;
    if (sc->too_large) {
        buf_puts(&answer, "{\"error\":{\"code\":\"body_too_large\",\"message\":\"over 2 MB\"}}");
        ret = sim_send(conn, 413, "application/json", &answer);
    } else if (strcmp(url, "/soap") == 0 && strcmp(method, "GET") == 0 && sim_has_wsdl_arg(conn)) {
        sim_wsdl(sim_location, &answer);
        ret = sim_send(conn, 200, "text/xml; charset=utf-8", &answer);
    } else if (strcmp(url, "/soap") == 0 && strcmp(method, "POST") == 0) {
        ret = sim_soap(conn, sc, delay);
    } else if (strncmp(url, "/sim/", 5) == 0 || strcmp(url, "/sim") == 0) {
        const char *op = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "operation");
        sim_control_handle(method, url, op, buf_cstr(&sc->body), sc->body.len, &answer, &status);
        ret = sim_send(conn, status, "application/json", &answer);
    } else {
        buf_puts(&answer, "{\"error\":{\"code\":\"not_found\",\"message\":\"POST /soap, GET "
                          "/soap?wsdl or /sim/...\"}}");
        ret = sim_send(conn, 404, "application/json", &answer);
    }
    buf_free(&answer);
    return ret;
}

static void sim_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                          enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    sim_conn *sc = *con_cls;
    if (sc != NULL) {
        buf_free(&sc->body);
        free(sc);
        *con_cls = NULL;
    }
}

/* The whole of a PEM file as a NUL-terminated string (caller frees), or NULL. */
static char *sim_read_pem(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    buf b = BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && b.len < 1024 * 1024)
        buf_append(&b, chunk, n);
    bool failed = ferror(f) != 0;
    fclose(f);
    if (failed || b.len == 0) {
        buf_free(&b);
        return NULL;
    }
    char *out = strdup(buf_cstr(&b));
    buf_free(&b);
    return out;
}

/* Splits "A:B[:C]" in place into parts; returns how many. */
static int sim_split(char *s, char **parts, int max)
{
    int n = 0;
    while (n < max) {
        parts[n++] = s;
        char *colon = strchr(s, ':');
        if (colon == NULL || n == max)
            break;
        *colon = '\0';
        s = colon + 1;
    }
    return n;
}

int main(int argc, char **argv)
{
    int port = 9090, reversal = 20;
    const char *listen_addr = "127.0.0.1";
    const char *tls_cert_path = NULL, *tls_key_path = NULL;
    char reseller[256];
    snprintf(reseller, sizeof reseller, "%s", SIM_DEFAULT_RESELLER);
    char *terminals[64];
    int nterminals = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            sim_usage(stdout);
            return 0;
        } else if (strcmp(a, "--version") == 0) {
            printf("seqr-sim %s\n", SEQR_VERSION);
            return 0;
        } else if (v == NULL) {
            fprintf(stderr, "seqr-sim: %s needs a value\n", a);
            return 2;
        } else if (strcmp(a, "--port") == 0) {
            port = atoi(v);
            if (port < 1 || port > 65535) {
                fprintf(stderr, "seqr-sim: --port must be 1..65535\n");
                return 2;
            }
        } else if (strcmp(a, "--listen") == 0) {
            listen_addr = v;
        } else if (strcmp(a, "--terminal") == 0) {
            if (nterminals == 64 || strchr(v, ':') == NULL) {
                fprintf(stderr, "seqr-sim: --terminal takes ID:PASSWORD\n");
                return 2;
            }
            terminals[nterminals++] = (char *)v;
        } else if (strcmp(a, "--tls-cert") == 0) {
            tls_cert_path = v;
        } else if (strcmp(a, "--tls-key") == 0) {
            tls_key_path = v;
        } else if (strcmp(a, "--reseller") == 0) {
            snprintf(reseller, sizeof reseller, "%s", v);
        } else if (strcmp(a, "--reversal-seconds") == 0) {
            reversal = atoi(v);
            if (reversal < 1 || reversal > 3600) {
                fprintf(stderr, "seqr-sim: --reversal-seconds must be 1..3600\n");
                return 2;
            }
        } else {
            fprintf(stderr, "seqr-sim: unknown option %s\n", a);
            sim_usage(stderr);
            return 2;
        }
        i++;
    }
    if ((tls_cert_path == NULL) != (tls_key_path == NULL)) {
        fprintf(stderr, "seqr-sim: --tls-cert and --tls-key go together\n");
        return 2;
    }
    char *tls_cert = NULL, *tls_key = NULL;
    if (tls_cert_path != NULL) {
        tls_cert = sim_read_pem(tls_cert_path);
        tls_key = sim_read_pem(tls_key_path);
        if (tls_cert == NULL || tls_key == NULL) {
            fprintf(stderr, "seqr-sim: cannot read %s\n",
                    tls_cert == NULL ? tls_cert_path : tls_key_path);
            free(tls_cert);
            free(tls_key);
            return 2;
        }
    }
    xmlInitParser();
    sim_state_init(reversal);
    sim_lock();
    if (nterminals == 0) {
        static char def[] = SIM_DEFAULT_TERMINAL;
        terminals[nterminals++] = def;
    }
    for (int i = 0; i < nterminals; i++) {
        char copy[256], *parts[2];
        snprintf(copy, sizeof copy, "%s", terminals[i]);
        sim_split(copy, parts, 2);
        sim_terminal_add(parts[0], parts[1]);
        fprintf(stderr, "seqr-sim: terminal %s password %s\n", parts[0], parts[1]);
    }
    char *rp[3];
    if (sim_split(reseller, rp, 3) != 3) {
        fprintf(stderr, "seqr-sim: --reseller takes ID:USERID:PASSWORD\n");
        return 2;
    }
    sim_reseller_set(rp[0], rp[1], rp[2]);
    sim_unlock();
    fprintf(stderr, "seqr-sim: reseller %s user %s password %s\n", rp[0], rp[1], rp[2]);
    fprintf(stderr, "seqr-sim: payments not fetched within %d s are reversed\n", reversal);

    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    if (getaddrinfo(listen_addr, portstr, &hints, &ai) != 0 || ai == NULL) {
        fprintf(stderr, "seqr-sim: cannot resolve --listen %s\n", listen_addr);
        return 2;
    }
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* Thousands of client connections need as many descriptors. */
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        setrlimit(RLIMIT_NOFILE, &nofile);
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    sim_serve_config cfg = {
        .addr = ai->ai_addr,
        .ipv6 = ai->ai_family == AF_INET6,
        .threads = cores < 1    ? 1U
                   : cores > 16 ? 16U
                                : (unsigned)cores,
        .tls_cert = tls_cert,
        .tls_key = tls_key,
        .handler = sim_handle,
        .completed = sim_completed,
    };
    sim_serve *server = NULL;
    sim_serve_error serr = sim_serve_start(&cfg, &server);
    freeaddrinfo(ai);
    if (serr != SIM_SERVE_OK) {
        fprintf(stderr, "seqr-sim: %s port %d: %s\n", listen_addr, port, sim_serve_strerror(serr));
        free(tls_cert);
        free(tls_key);
        return 1;
    }
    const char *host = strchr(listen_addr, ':') ? "[::1]" : listen_addr;
    snprintf(sim_location, sizeof sim_location, "%s://%s:%d/soap", tls_cert ? "https" : "http",
             host, port);
    fprintf(stderr, "seqr-sim listening on %s\n", sim_location);

    for (;;) {
        struct timespec tick = {0, 200 * 1000000L};
        int sig = sigtimedwait(&sigs, NULL, &tick);
        if (sig == SIGTERM || sig == SIGINT)
            break;
        sim_lock();
        sim_apply_reversals();
        sim_unlock();
    }
    sim_serve_stop(server);
    free(tls_cert);
    free(tls_key);
    xmlCleanupParser();
    fprintf(stderr, "seqr-sim: stopped\n");
    return 0;
}
