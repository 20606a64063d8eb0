/* api_fuzz_request.c: fuzz target for the request path, HTTP bytes through
 * http-parser, the router and the JSON decoders into the configuration.
 *
 * Input: byte 0 picks the VM state (bit 0: started, bit 1: paused) and
 * byte 1 where the rest is cut in two, so that requests split across reads
 * are exercised too; the rest is what a client sends on one connection.
 * Side effects go to stubs: no VM is created and no log or metrics file is
 * opened (a decoder only stat()s and opens regular files read-only or
 * read-write, without creating or truncating them).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "api-socket/api_http.h"
#include "api-socket/api_log.h"
#include "api-socket/api_router.h"

static int ok_start(void *ctx, const struct api_resources *res, struct api_err *e)
{
    (void)ctx, (void)res, (void)e;
    return 0;
}
static int ok(void *ctx, struct api_err *e)
{
    (void)ctx, (void)e;
    return 0;
}
static int ok_drive(void *ctx, const struct api_drive_update *u, struct api_err *e)
{
    (void)ctx, (void)u, (void)e;
    return 0;
}
static int ok_logger(void *ctx, const struct api_logger_cfg *c, struct api_err *e)
{
    (void)ctx, (void)c, (void)e;
    return 0;
}
static int ok_metrics(void *ctx, const struct api_metrics_cfg *c, struct api_err *e)
{
    (void)ctx, (void)c, (void)e;
    return 0;
}

static const struct api_vmm_ops stub_ops = {
    .start = ok_start,
    .pause = ok,
    .resume = ok,
    .ctrl_alt_del = ok,
    .update_drive = ok_drive,
    .configure_logger = ok_logger,
    .configure_metrics = ok_metrics,
    .flush_metrics = ok,
};

static void on_request(void *ctx, const struct api_request *req, struct api_response *resp)
{
    api_router_handle(ctx, req, resp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int initialised;
    struct api_router r;
    struct api_http_conn c;
    size_t cut, len;
    char *out;

    if (!initialised) {
        struct api_logger_cfg quiet = {.set = true, .level = API_LOG_OFF};
        struct api_err e;
        api_http_global_init();
        api_log_configure(&quiet, &e);
        initialised = 1;
    }
    if (size < 2)
        return 0;
    api_router_init(&r, "fuzz", &stub_ops, NULL);
    if (data[0] & 1)
        r.state = (data[0] & 2) ? API_VM_PAUSED : API_VM_RUNNING;
    api_http_conn_init(&c, API_HTTP_DEFAULT_MAX_BODY, on_request, &r);
    size -= 2;
    cut = size ? data[1] % (size + 1) : 0;
    if (api_http_feed(&c, (const char *)data + 2, cut) == 0)
        api_http_feed(&c, (const char *)data + 2 + cut, size - cut);
    out = api_http_take_output(&c, &len);
    free(out);
    api_http_conn_release(&c);
    api_router_release(&r);
    return 0;
}
