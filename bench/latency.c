/* latency.c — measures the latency one HTTP service adds over another, in
 * the same run: sends one request to A, then one to B, then A again, one at
 * a time, so that whatever the machine does during the run (noisy
 * neighbours, frequency changes, cache state) weighs on both sides alike.
 * bench/run uses it with A = the simulator's SOAP endpoint (a sendInvoice),
 * B = the conforming floor's POST /invoices (bench/floor.c) and C = the
 * gateway's: A, B, C, A, C, B, ... so that the gateway and its floor are
 * judged in the same moments. B and C swap places every turn: the one
 * that follows the other (rather than A) measured 0.02-0.05 ms slower with
 * the same program on both sides (two floors, 500 turns), so a fixed order
 * would favour B.
 *
 *   latency --pairs N [--warmup N]
 *           --a-url URL [--a-body-file F] [--a-header H]... [--a-expect STATUS]
 *           --b-url URL [--b-body-file F] [--b-header H]... [--b-expect STATUS]
 *           [--c-url URL [--c-body-file F] [--c-header H]... [--c-expect STATUS]]
 *           [--samples FILE]
 *
 * Every request is a POST when a body file is given, a GET otherwise, on a
 * connection kept alive for the whole run. A body may contain @SEQ@, replaced
 * by a running number. Prints one line of JSON:
 *   {"pairs", "errors", "a": {"p50_ms", "p90_ms", "p99_ms"}, "b": {...},
 *    "added_p50_ms", "added_p99_ms"}
 * where added_* is B's percentile minus A's; with C also "c": {...},
 * "c_added_p50_ms", "c_added_p99_ms" (C's minus A's) and "c_over_b_p50_ms"
 * (C's p50 minus B's). Exit status 1 when any request failed or answered
 * another status than expected. --samples writes every measured turn to
 * FILE, one line each: the turn, its start in ms since the first measured
 * turn, and each side's latency in ms (tab-separated; -1 for a failure),
 * to see how a run's differences spread over its time. */
#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "benchutil.h"

#define LATENCY_MAX_HEADERS 8

typedef struct {
    const char *url;
    const char *body_file;
    char *tmpl;
    const char *headers[LATENCY_MAX_HEADERS];
    int nheaders;
    long expect;
    CURL *easy;
    struct curl_slist *slist;
    double *samples;
    long nsamples;
} latency_side;

/* One request on side s; returns its latency in ms, or -1 on failure. */
static double latency_one(latency_side *s, long seq)
{
    size_t body_len = 0;
    char *body = s->tmpl ? bench_expand(s->tmpl, seq, &body_len) : NULL;
    CURL *e = s->easy;
    curl_easy_setopt(e, CURLOPT_URL, s->url);
    if (body != NULL) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)body_len);
    } else {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, s->slist);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, bench_discard);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    double t0 = bench_now_ms();
    CURLcode rc = curl_easy_perform(e);
    double ms = bench_now_ms() - t0;
    free(body);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK || (s->expect != 0 ? status != s->expect : status >= 400))
        return -1.0;
    return ms;
}

static void latency_print_side(const char *name, latency_side *s)
{
    bench_sort(s->samples, s->nsamples);
    printf("\"%s\": {\"p50_ms\": %.3f, \"p90_ms\": %.3f, \"p99_ms\": %.3f}", name,
           bench_pct(s->samples, s->nsamples, 0.50), bench_pct(s->samples, s->nsamples, 0.90),
           bench_pct(s->samples, s->nsamples, 0.99));
}

#define LATENCY_MAX_SIDES 3

/* Handles "--a-xxx"/"--b-xxx"/"--c-xxx" options; returns false when arg is
 * not one. */
static bool latency_side_arg(latency_side *sides, const char *arg, const char *value)
{
    if (strncmp(arg, "--", 2) != 0 || arg[2] < 'a' || arg[2] >= 'a' + LATENCY_MAX_SIDES ||
        arg[3] != '-')
        return false;
    latency_side *s = &sides[arg[2] - 'a'];
    const char *opt = arg + 4;
    if (strcmp(opt, "url") == 0)
        s->url = value;
    else if (strcmp(opt, "body-file") == 0)
        s->body_file = value;
    else if (strcmp(opt, "header") == 0 && s->nheaders < LATENCY_MAX_HEADERS)
        s->headers[s->nheaders++] = value;
    else if (strcmp(opt, "expect") == 0)
        s->expect = atol(value);
    else
        return false;
    return true;
}

int main(int argc, char **argv)
{
    latency_side sides[LATENCY_MAX_SIDES];
    memset(sides, 0, sizeof sides);
    long pairs = 0, warmup = 20;
    const char *samples_file = NULL;
    for (int i = 1; i < argc; i++) {
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (value != NULL && strcmp(argv[i], "--pairs") == 0)
            pairs = atol(value);
        else if (value != NULL && strcmp(argv[i], "--warmup") == 0)
            warmup = atol(value);
        else if (value != NULL && strcmp(argv[i], "--samples") == 0)
            samples_file = value;
        else if (value == NULL || !latency_side_arg(sides, argv[i], value)) {
            fprintf(stderr, "latency: unknown or incomplete argument %s\n", argv[i]);
            return 2;
        }
        i++;
    }
    if (pairs <= 0 || warmup < 0 || sides[0].url == NULL || sides[1].url == NULL) {
        fprintf(stderr, "usage: latency --pairs N [--warmup N] --a-url URL [--a-body-file F] "
                        "[--a-header H]... [--a-expect S] --b-url URL [...] [--c-url URL [...]]\n");
        return 2;
    }
    int nsides = sides[2].url != NULL ? 3 : 2;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    for (int k = 0; k < nsides; k++) {
        latency_side *s = &sides[k];
        if (s->body_file != NULL && (s->tmpl = bench_read_file(s->body_file)) == NULL) {
            fprintf(stderr, "latency: cannot read %s\n", s->body_file);
            return 2;
        }
        for (int h = 0; h < s->nheaders; h++)
            s->slist = curl_slist_append(s->slist, s->headers[h]);
        s->easy = curl_easy_init();
        s->samples = malloc(sizeof(double) * (size_t)pairs);
        if (s->easy == NULL || s->samples == NULL) {
            fprintf(stderr, "latency: out of memory\n");
            return 2;
        }
    }
    FILE *sf = NULL;
    if (samples_file != NULL && (sf = fopen(samples_file, "w")) == NULL) {
        fprintf(stderr, "latency: cannot write %s\n", samples_file);
        return 2;
    }
    long errors = 0;
    double start = 0;
    for (long i = -warmup; i < pairs; i++) {
        double turn[LATENCY_MAX_SIDES];
        if (i == 0)
            start = bench_now_ms();
        double at = bench_now_ms() - start;
        for (int k = 0; k < nsides; k++) {
            /* A first; then B, C on even turns and C, B on odd ones. */
            int s = nsides == 3 && k > 0 && ((i + warmup) & 1) ? 3 - k : k;
            double ms = latency_one(&sides[s], i + warmup);
            turn[s] = ms;
            if (ms < 0)
                errors++;
            else if (i >= 0)
                sides[s].samples[sides[s].nsamples++] = ms;
        }
        if (sf != NULL && i >= 0) {
            fprintf(sf, "%ld\t%.1f", i, at);
            for (int k = 0; k < nsides; k++)
                fprintf(sf, "\t%.3f", turn[k]);
            fprintf(sf, "\n");
        }
    }
    if (sf != NULL && fclose(sf) != 0) {
        fprintf(stderr, "latency: cannot write %s\n", samples_file);
        return 2;
    }
    printf("{\"pairs\": %ld, \"errors\": %ld, ", pairs, errors);
    latency_print_side("a", &sides[0]);
    printf(", ");
    latency_print_side("b", &sides[1]);
    double add50 = bench_pct(sides[1].samples, sides[1].nsamples, 0.50) -
                   bench_pct(sides[0].samples, sides[0].nsamples, 0.50);
    double add99 = bench_pct(sides[1].samples, sides[1].nsamples, 0.99) -
                   bench_pct(sides[0].samples, sides[0].nsamples, 0.99);
    printf(", \"added_p50_ms\": %.3f, \"added_p99_ms\": %.3f", add50, add99);
    if (nsides == 3) {
        printf(", ");
        latency_print_side("c", &sides[2]);
        double c50 = bench_pct(sides[2].samples, sides[2].nsamples, 0.50);
        printf(", \"c_added_p50_ms\": %.3f, \"c_added_p99_ms\": %.3f, \"c_over_b_p50_ms\": %.3f",
               c50 - bench_pct(sides[0].samples, sides[0].nsamples, 0.50),
               bench_pct(sides[2].samples, sides[2].nsamples, 0.99) -
                   bench_pct(sides[0].samples, sides[0].nsamples, 0.99),
               c50 - bench_pct(sides[1].samples, sides[1].nsamples, 0.50));
    }
    printf("}\n");
    for (int k = 0; k < nsides; k++) {
        curl_easy_cleanup(sides[k].easy);
        curl_slist_free_all(sides[k].slist);
        free(sides[k].tmpl);
        free(sides[k].samples);
    }
    curl_global_cleanup();
    return errors > 0 ? 1 : 0;
}
