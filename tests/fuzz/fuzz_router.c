/* fuzz_router.c — libFuzzer harness for the REST API: the input's first line
 * is "METHOD PATH", the rest the body. It goes through the router and every
 * handler's validation against a real store (in memory-backed /dev/shm) and a
 * SEQR client whose server refuses connections, so nothing leaves the box. */
#include <curl/curl.h>
#include <libxml/parser.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http/api.h"
#include "log.h"

static config cfg;
static store *st;
static seqr_client *seqr;
static service *svc;
static poller *pol;
static http_context ctx;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    xmlInitParser();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    log_set_level(LOG_LEVEL_ERROR);
    config_defaults(&cfg);
    char path[64];
    snprintf(path, sizeof path, "/dev/shm/seqr-fuzz-%d.db", (int)getpid());
    buf err = BUF_INIT;
    if (store_open(path, &st, &err) != STORE_OK)
        abort();
    buf_free(&err);
    unsigned char key[32] = {1};
    if (store_set_secret_key(st, key) != STORE_OK)
        abort();
    seqr_client_options so = {.url = "http://127.0.0.1:9/soap",
                              .timeout_ms = 200,
                              .client_id = "fuzz",
                              .client_reference = "fuzz",
                              .terminal_id = "t",
                              .terminal_password = "p"};
    seqr = seqr_client_new(&so);
    svc = service_new(&cfg, st, seqr);
    pol = poller_new(&cfg, svc, st, seqr);
    ctx = (http_context){&cfg, svc, pol, 0, NULL, false, events_hub_new(st, 4), NULL};
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *nl = memchr(data, '\n', size);
    size_t line = nl ? (size_t)(nl - (const char *)data) : size;
    const char *sp = memchr(data, ' ', line);
    if (sp == NULL || line > 512)
        return 0;
    char method[16], path[512];
    size_t ml = (size_t)(sp - (const char *)data);
    if (ml == 0 || ml >= sizeof method)
        return 0;
    memcpy(method, data, ml);
    method[ml] = '\0';
    size_t pl = line - ml - 1;
    memcpy(path, sp + 1, pl);
    path[pl] = '\0';
    if (memchr(path, '\0', pl) != NULL || memchr(method, '\0', ml) != NULL)
        return 0;
    size_t body_len = nl ? size - line - 1 : 0;
    char *body = malloc(body_len + 1);
    if (body_len > 0)
        memcpy(body, nl + 1, body_len);
    body[body_len] = '\0';
    http_request req = {method, path, body, body_len, NULL};
    http_response resp;
    memset(&resp, 0, sizeof resp);
    buf_init(&resp.raw);
    http_api_dispatch(&ctx, &req, &resp);
    if (resp.status < 200 || resp.status > 599)
        abort(); /* every request gets a real HTTP answer */
    json_decref(resp.json);
    buf_free(&resp.raw);
    if (resp.stream_free != NULL)
        resp.stream_free(resp.stream_ud); /* an event stream, never read here */
    free(body);
    return 0;
}
