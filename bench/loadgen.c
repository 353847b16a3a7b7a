/* loadgen.c — a small HTTP load generator on libcurl multi, used by bench/run
 * for both the gateway and the simulator (the same tool for the baseline and
 * the measured path, in the same run).
 *
 *   loadgen --url URL [--method POST] [--body-file F] [--header H]...
 *           [--concurrency N] [--seconds S | --requests N] [--expect STATUS]
 *           [--print-refs]
 *
 * Keeps N requests in flight on reused connections until the time or count
 * is reached, then prints one line of JSON: requests, errors, seconds,
 * rps, p50_ms, p90_ms, p99_ms, max_ms. With --print-refs it also prints every
 * answer's "invoiceReference" (one per line, before the summary) so a
 * scenario can fill the gateway and then act on the invoices. The body may
 * contain @SEQ@, replaced by a running number (unique idempotency keys,
 * clientInvoiceIds). */
#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "benchutil.h"

#define LOADGEN_MAX_HEADERS 16
#define LOADGEN_MAX_SAMPLES 4000000

typedef struct {
    CURL *easy;
    char *body;
    size_t body_len;
    bench_buf answer;
    double started;
    struct curl_slist *headers;
} loadgen_slot;

int main(int argc, char **argv)
{
    const char *url = NULL, *method = "GET", *body_file = NULL;
    const char *headers[LOADGEN_MAX_HEADERS];
    int nheaders = 0, concurrency = 16;
    double seconds = 0;
    long max_requests = 0, expect = 0;
    int print_refs = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--url") == 0 && i + 1 < argc)
            url = argv[++i];
        else if (strcmp(argv[i], "--method") == 0 && i + 1 < argc)
            method = argv[++i];
        else if (strcmp(argv[i], "--body-file") == 0 && i + 1 < argc)
            body_file = argv[++i];
        else if (strcmp(argv[i], "--header") == 0 && i + 1 < argc && nheaders < LOADGEN_MAX_HEADERS)
            headers[nheaders++] = argv[++i];
        else if (strcmp(argv[i], "--concurrency") == 0 && i + 1 < argc)
            concurrency = atoi(argv[++i]);
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = strtod(argv[++i], NULL);
        else if (strcmp(argv[i], "--requests") == 0 && i + 1 < argc)
            max_requests = atol(argv[++i]);
        else if (strcmp(argv[i], "--expect") == 0 && i + 1 < argc)
            expect = atol(argv[++i]);
        else if (strcmp(argv[i], "--print-refs") == 0)
            print_refs = 1;
        else {
            fprintf(stderr, "loadgen: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    if (url == NULL || concurrency < 1 || (seconds <= 0 && max_requests <= 0)) {
        fprintf(stderr, "usage: loadgen --url URL [--method M] [--body-file F] [--header H] "
                        "[--concurrency N] (--seconds S | --requests N) [--expect STATUS]\n");
        return 2;
    }
    char *tmpl = body_file ? bench_read_file(body_file) : NULL;
    if (body_file && tmpl == NULL) {
        fprintf(stderr, "loadgen: cannot read %s\n", body_file);
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)concurrency);
    loadgen_slot *slots = calloc((size_t)concurrency, sizeof *slots);
    double *samples = malloc(sizeof(double) * LOADGEN_MAX_SAMPLES);
    long done = 0, errors = 0, started = 0, nsamples = 0;
    double t0 = (bench_now_ms() / 1000.0);

    for (int i = 0; i < concurrency; i++) {
        slots[i].easy = curl_easy_init();
        for (int h = 0; h < nheaders; h++)
            slots[i].headers = curl_slist_append(slots[i].headers, headers[h]);
    }
    /* start(i): issue the next request on slot i. */
    int active = 0;
    for (;;) {
        double now = (bench_now_ms() / 1000.0);
        bool more =
            (seconds <= 0 || now - t0 < seconds) && (max_requests <= 0 || started < max_requests);
        for (int i = 0; more && i < concurrency; i++) {
            loadgen_slot *s = &slots[i];
            if (s->started != 0)
                continue;
            if (max_requests > 0 && started >= max_requests)
                break;
            free(s->body);
            s->body = tmpl ? bench_expand(tmpl, started, &s->body_len) : NULL;
            s->answer.len = 0; /* the buffer is kept for the next answer */
            if (s->answer.data != NULL)
                s->answer.data[0] = '\0';
            CURL *e = s->easy;
            curl_easy_reset(e);
            curl_easy_setopt(e, CURLOPT_URL, url);
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
            if (s->body) {
                curl_easy_setopt(e, CURLOPT_POSTFIELDS, s->body);
                curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)s->body_len);
            }
            curl_easy_setopt(e, CURLOPT_HTTPHEADER, s->headers);
            curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, bench_collect);
            curl_easy_setopt(e, CURLOPT_WRITEDATA, &s->answer);
            curl_easy_setopt(e, CURLOPT_PRIVATE, s);
            curl_easy_setopt(e, CURLOPT_TIMEOUT, 60L);
            curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
            s->started = (bench_now_ms() / 1000.0);
            curl_multi_add_handle(multi, e);
            started++;
            active++;
        }
        if (active == 0 && !more)
            break;
        int running;
        curl_multi_perform(multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(multi, &left)) != NULL) {
            if (m->msg != CURLMSG_DONE)
                continue;
            loadgen_slot *s = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            long status = 0;
            curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
            double ms = ((bench_now_ms() / 1000.0) - s->started) * 1000.0;
            bool ok = m->data.result == CURLE_OK && (expect == 0 ? status < 400 : status == expect);
            if (!ok) {
                errors++;
                /* The first few, to stderr: what failed, not only how many. */
                if (errors <= 5)
                    fprintf(stderr, "loadgen: request failed: HTTP %ld, %s: %.300s\n", status,
                            curl_easy_strerror(m->data.result),
                            s->answer.data != NULL ? s->answer.data : "");
            } else if (nsamples < LOADGEN_MAX_SAMPLES)
                samples[nsamples++] = ms;
            if (print_refs && ok && s->answer.data) {
                const char *k = strstr(s->answer.data, "\"invoiceReference\":\"");
                if (k) {
                    k += 20;
                    printf("%.*s\n", (int)strcspn(k, "\""), k);
                }
            }
            done++;
            curl_multi_remove_handle(multi, m->easy_handle);
            s->started = 0;
            active--;
        }
        curl_multi_poll(multi, NULL, 0, 5, NULL);
    }
    double elapsed = (bench_now_ms() / 1000.0) - t0;
    bench_sort(samples, nsamples);
    printf("{\"requests\": %ld, \"errors\": %ld, \"seconds\": %.3f, \"rps\": %.1f, "
           "\"p50_ms\": %.3f, \"p90_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f}\n",
           done, errors, elapsed, (double)done / elapsed, bench_pct(samples, nsamples, 0.50),
           bench_pct(samples, nsamples, 0.90), bench_pct(samples, nsamples, 0.99),
           nsamples ? samples[nsamples - 1] : 0.0);
    for (int i = 0; i < concurrency; i++) {
        curl_easy_cleanup(slots[i].easy);
        curl_slist_free_all(slots[i].headers);
        free(slots[i].body);
        free(slots[i].answer.data);
    }
    free(slots);
    free(samples);
    free(tmpl);
    curl_multi_cleanup(multi);
    curl_global_cleanup();
    return errors > 0 && done == errors ? 1 : 0;
}
