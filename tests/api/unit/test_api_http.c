/* test_api_http.c: unit tests of the API's HTTP framing and routing, with
 * stub side effects and no socket (api_http.c, api_router.c). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "api-socket/api_http.h"
#include "api-socket/api_log.h"
#include "api-socket/api_metrics.h"
#include "api-socket/api_request_log.h"
#include "api-socket/api_router.h"

static int start_rc, pause_rc, starts, pauses;

static int st_start(void *ctx, const struct api_resources *res, struct api_err *e)
{
    (void)ctx, (void)res;
    starts++;
    return start_rc ? api_errf(e, "vm_create says no") : 0;
}
static int st_pause(void *ctx, struct api_err *e)
{
    (void)ctx;
    pauses++;
    return pause_rc ? api_errf(e, "cannot pause") : 0;
}
static int st_ok(void *ctx, struct api_err *e)
{
    (void)ctx, (void)e;
    return 0;
}
static int st_drive(void *ctx, const struct api_drive_update *u, struct api_err *e)
{
    (void)ctx, (void)u, (void)e;
    return 0;
}
static int st_logger(void *ctx, const struct api_logger_cfg *c, struct api_err *e)
{
    (void)ctx, (void)c, (void)e;
    return 0;
}
static int st_metrics(void *ctx, const struct api_metrics_cfg *c, struct api_err *e)
{
    (void)ctx, (void)c, (void)e;
    return 0;
}
static const struct api_vmm_ops ops = {
    .start = st_start,
    .pause = st_pause,
    .resume = st_ok,
    .ctrl_alt_del = st_ok,
    .update_drive = st_drive,
    .configure_logger = st_logger,
    .configure_metrics = st_metrics,
    .flush_metrics = st_ok,
};

static struct api_router router;
static struct api_http_conn conn;

static void on_request(void *ctx, const struct api_request *req, struct api_response *resp)
{
    api_router_handle(ctx, req, resp);
}

static void setup(void)
{
    struct api_logger_cfg quiet = {.set = true, .level = API_LOG_OFF};
    struct api_err e;

    api_log_configure(&quiet, &e);
    api_http_global_init();
    start_rc = pause_rc = starts = pauses = 0;
    api_router_init(&router, "unit", &ops, NULL);
    api_http_conn_init(&conn, 1000, on_request, &router);
}

static void teardown(void)
{
    api_http_conn_release(&conn);
    api_router_release(&router);
}

/* Feeds s; returns the output as a NUL-terminated string (caller frees). */
static char *feed(const char *s, int *rc)
{
    size_t len;
    char *out, *str;

    *rc = api_http_feed(&conn, s, strlen(s));
    out = api_http_take_output(&conn, &len);
    str = calloc(1, len + 1);
    if (out)
        memcpy(str, out, len);
    free(out);
    return str;
}

static char *request(const char *method, const char *path, const char *body)
{
    char buf[4096];
    int rc;

    if (body)
        snprintf(buf, sizeof(buf), "%s %s HTTP/1.1\r\nContent-Length: %zu\r\n\r\n%s", method, path,
                 strlen(body), body);
    else
        snprintf(buf, sizeof(buf), "%s %s HTTP/1.1\r\n\r\n", method, path);
    return feed(buf, &rc);
}

TestSuite(http, .init = setup, .fini = teardown);

Test(http, one_byte_at_a_time_equals_one_write)
{
    const char *req = "PUT /machine-config HTTP/1.1\r\nContent-Length: 35\r\n\r\n"
                      "{\"vcpu_count\":1,\"mem_size_mib\":64}\n";
    char one[2] = {0}, *whole, *bytes = NULL;
    size_t len, total = 0;
    int rc;

    for (size_t i = 0; req[i]; i++) {
        one[0] = req[i];
        cr_assert_eq(api_http_feed(&conn, one, 1), 0);
        char *o = api_http_take_output(&conn, &len);
        if (o) {
            bytes = realloc(bytes, total + len + 1);
            memcpy(bytes + total, o, len);
            total += len;
            bytes[total] = '\0';
            free(o);
        }
    }
    cr_assert_not_null(bytes);
    cr_assert_str_eq(bytes,
                     "HTTP/1.1 204 No Content\r\nServer: ember\r\nConnection: keep-alive\r\n\r\n");
    cr_assert_eq(router.res.machine.mem_size_mib, 64);
    whole = feed(req, &rc);
    cr_assert_str_eq(whole, bytes);
    free(whole);
    free(bytes);
}

Test(http, pipelined_requests_answer_in_order)
{
    int rc;
    char *out =
        feed("GET /version HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n", &rc);
    char *a = strstr(out, "200 OK"), *b = strstr(out, "400 Bad Request"),
         *c = a ? strstr(a + 1, "200 OK") : NULL;

    cr_assert_eq(rc, 0);
    cr_assert(a && b && c && a < b && b < c, "%s", out);
    free(out);
}

Test(http, expect_continue_is_answered_before_the_body)
{
    int rc;
    char *out =
        feed("PUT /logger HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n", &rc);
    cr_assert_str_eq(out, "HTTP/1.1 100 Continue\r\n\r\n");
    free(out);
    out = feed("{}", &rc);
    cr_assert(strncmp(out, "HTTP/1.1 204", 12) == 0, "%s", out);
    free(out);
}

Test(http, body_limit_by_content_length_closes)
{
    int rc;
    char *out = feed("PUT /logger HTTP/1.1\r\nContent-Length: 1001\r\n\r\n", &rc);

    cr_assert_eq(rc, -1);
    cr_assert(conn.closing);
    cr_assert(strstr(out, "Connection: close"), "%s", out);
    cr_assert(strstr(out, "Request payload with size 1001 is larger than the limit of 1000 "
                          "allowed by server."),
              "%s", out);
    free(out);
    /* Nothing more is read from a closing connection. */
    out = feed("GET / HTTP/1.1\r\n\r\n", &rc);
    cr_assert_eq(rc, -1);
    cr_assert_str_eq(out, "");
    free(out);
}

Test(http, body_exactly_at_the_limit_is_read)
{
    char body[1001], *out;

    memset(body, ' ', 1000);
    body[0] = '{';
    body[999] = '}';
    body[1000] = '\0';
    out = request("PUT", "/serial", body);
    cr_assert(strncmp(out, "HTTP/1.1 204", 12) == 0, "%s", out);
    free(out);
}

Test(http, connection_close_ends_after_the_answer)
{
    int rc;
    char *out = feed("GET / HTTP/1.1\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n\r\n", &rc);

    cr_assert_eq(rc, -1);
    cr_assert_eq(strstr(out, "HTTP/1.1 200") == out, 1);
    cr_assert_null(strstr(out + 1, "HTTP/1.1"));
    free(out);
}

Test(http, invalid_utf8_in_a_path_gives_valid_json)
{
    char *out = request("GET", "/\xff\xfe", NULL);
    cr_assert(strstr(out, "Invalid request method and/or path: GET /??."), "%s", out);
    free(out);
}

TestSuite(router, .init = setup, .fini = teardown);

Test(router, instance_start_once_and_only_with_a_boot_source)
{
    char *out = request("PUT", "/actions", "{\"action_type\":\"InstanceStart\"}");
    cr_assert(strstr(out, "Cannot start microvm without kernel configuration."), "%s", out);
    free(out);
    router.res.boot.kernel_image_path = strdup("/x");
    start_rc = 1;
    out = request("PUT", "/actions", "{\"action_type\":\"InstanceStart\"}");
    cr_assert(strstr(out, "vm_create says no"), "%s", out);
    cr_assert_eq(router.state, API_VM_NOT_STARTED);
    free(out);
    start_rc = 0;
    out = request("PUT", "/actions", "{\"action_type\":\"InstanceStart\"}");
    cr_assert(strncmp(out, "HTTP/1.1 204", 12) == 0, "%s", out);
    cr_assert_eq(router.state, API_VM_RUNNING);
    free(out);
    out = request("PUT", "/actions", "{\"action_type\":\"InstanceStart\"}");
    cr_assert(strstr(out, API_MSG_AFTER_BOOT), "%s", out);
    cr_assert_eq(starts, 2);
    free(out);
}

Test(router, a_failed_pause_keeps_the_state)
{
    char *out;

    router.state = API_VM_RUNNING;
    pause_rc = 1;
    out = request("PATCH", "/vm", "{\"state\":\"Paused\"}");
    cr_assert(strstr(out, "cannot pause"), "%s", out);
    cr_assert_eq(router.state, API_VM_RUNNING);
    free(out);
    pause_rc = 0;
    out = request("PATCH", "/vm", "{\"state\":\"Paused\"}");
    cr_assert_eq(router.state, API_VM_PAUSED);
    free(out);
    /* Already paused: nothing to do, no second call. */
    out = request("PATCH", "/vm", "{\"state\":\"Paused\"}");
    cr_assert_eq(pauses, 2);
    free(out);
}

Test(router, pre_boot_only_routes_refuse_after_boot)
{
    static const char *const puts[][2] = {
        {"/machine-config", "{}"}, {"/boot-source", "{}"},
        {"/drives/a", "{}"},       {"/network-interfaces/a", "{}"},
        {"/vsock", "{}"},          {"/logger", "{}"},
        {"/metrics", "{}"},        {"/serial", "{}"},
    };
    router.state = API_VM_RUNNING;
    for (size_t i = 0; i < sizeof(puts) / sizeof(puts[0]); i++) {
        char *out = request("PUT", puts[i][0], puts[i][1]);
        cr_assert(strstr(out, API_MSG_AFTER_BOOT), "PUT %s: %s", puts[i][0], out);
        free(out);
    }
}

Test(router, ids)
{
    struct api_err e;
    char id65[66];

    memset(id65, 'a', 65);
    id65[65] = '\0';
    cr_assert_eq(api_id_check("drive", "A_z09", &e), 0);
    cr_assert_eq(api_id_check("drive", id65 + 1, &e), 0);
    cr_assert_eq(api_id_check("drive", id65, &e), -1);
    cr_assert_eq(api_id_check("drive", "", &e), -1);
    cr_assert_eq(api_id_check("drive", "a-b", &e), -1);
    cr_assert_eq(api_id_check("drive", "a\xc3\xa9", &e), -1);
}

Test(metrics, counters_are_deltas)
{
    char *a, *b;

    api_metrics_request(API_GET, API_R_INSTANCE_INFO, false);
    api_metrics_request(API_PUT, API_R_DRIVE, true);
    api_metrics_store(API_M_BOOT_TIME_US, 42);
    free(api_metrics_take_line());
    api_metrics_request(API_GET, API_R_INSTANCE_INFO, false);
    a = api_metrics_take_line();
    b = api_metrics_take_line();
    cr_assert(strstr(a, "\"instance_info_count\":1,"), "%s", a);
    cr_assert(strstr(a, "\"drive_count\":0,\"drive_fails\":0"), "%s", a);
    cr_assert(strstr(b, "\"instance_info_count\":0,"), "%s", b);
    cr_assert(strstr(b, "\"boot_time_us\":42"), "gauges stay: %s", b);
    free(a);
    free(b);
}

/* Firecracker's description of a request: Rust Debug strings. */
static void describe(const char *method, enum api_method m, const char *path, const char *body,
                     size_t len, const char *want)
{
    struct api_request req = {
        .method = m, .method_name = method, .path = path, .body = body, .body_len = len};
    char buf[512];

    api_describe_request(&req, buf, sizeof(buf));
    cr_assert_str_eq(buf, want);
}

Test(request_log, bodies_as_rust_debug_strings)
{
    describe("GET", API_GET, "/machine-config", "", 0, "Get request on \"/machine-config\"");
    describe("PUT", API_PUT, "/machine-config", "{\"vcpu_count\": 1}", 17,
             "Put request on \"/machine-config\" with body \"{\\\"vcpu_count\\\": 1}\"");
    describe("PATCH", API_PATCH, "/vm", "a\\b\n\t\x01", 6,
             "Patch request on \"/vm\" with body \"a\\\\b\\n\\t\\u{1}\"");
    describe("PUT", API_PUT, "/boot-source", "\xff\xfe", 2,
             "Put request on \"/boot-source\" with body \"inconvertible to UTF-8\"");
    describe("PUT", API_PUT, "/mmds", "{\"secret\": 1}", 13, "Put request on \"/mmds\"");
    describe("PUT", API_PUT, "/mmds/config", "{}", 2, "Put request on \"/mmds/config\"");
    describe("DELETE", API_METHOD_OTHER, "/drives/x", "", 0, "Delete request on \"/drives/x\"");
}

Test(request_log, a_small_buffer_is_cut_not_overrun)
{
    struct api_request req = {.method = API_PUT,
                              .method_name = "PUT",
                              .path = "/logger",
                              .body = "{\"level\": \"Info\"}",
                              .body_len = 17};
    char buf[16];

    memset(buf, 'x', sizeof(buf));
    api_describe_request(&req, buf, sizeof(buf));
    cr_assert_eq(strlen(buf), sizeof(buf) - 1);
    cr_assert_str_eq(buf, "Put request on ");
}
