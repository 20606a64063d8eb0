/* test_mmds_store.c: the MMDS data store: RFC 7396 merge patches (the RFC's
 * own examples), RFC 6901 pointers, the IMDS and JSON answers, the size
 * limit, V2 tokens. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "mmds/mmds_store.h"

static json_t *j(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &e);

    cr_assert(v, "bad test JSON %s: %s", text, e.text);
    return v;
}

static void put(struct mmds_store *s, const char *text)
{
    char err[128];
    json_t *v = j(text);

    cr_assert_eq(mmds_store_put(s, v, err, sizeof(err)), 0, "%s", err);
    json_decref(v);
}

static char *doc(const struct mmds_store *s)
{
    json_t *v = mmds_store_get(s);
    char *t = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);

    json_decref(v);
    return t;
}

/* RFC 7396 Appendix A: target, patch, result. */
Test(mmds_store, merge_patch_rfc7396_examples)
{
    static const char *const cases[][3] = {
        {"{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"},
        {"{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}"},
        {"{\"a\":\"b\"}", "{\"a\":null}", "{}"},
        {"{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}"},
        {"{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"},
        {"{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}"},
        {"{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}", "{\"a\":{\"b\":\"d\"}}"},
        {"{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}"},
        {"{\"e\":null}", "{\"a\":1}", "{\"a\":1,\"e\":null}"},
        {"{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mmds_store s;
        char err[128];
        mmds_store_init(&s, MMDS_SIZE_LIMIT_DEFAULT);
        put(&s, cases[i][0]);
        json_t *p = j(cases[i][1]);
        cr_assert_eq(mmds_store_patch(&s, p, err, sizeof(err)), 0, "%s", err);
        json_decref(p);
        char *got = doc(&s);
        cr_expect_str_eq(got, cases[i][2], "case %zu", i);
        free(got);
        mmds_store_release(&s);
    }
}

Test(mmds_store, patch_before_put_and_limits)
{
    struct mmds_store s;
    char err[128];
    json_t *p = j("{\"a\":\"0123456789\"}");

    mmds_store_init(&s, 20);
    char *empty = doc(&s);
    cr_expect_str_eq(empty, "{}");
    free(empty);
    cr_expect_eq(mmds_store_patch(&s, p, err, sizeof(err)), -1);
    cr_expect_str_eq(err, "The MMDS data store is not initialized.");
    put(&s, "{\"b\":1}");
    cr_expect_eq(mmds_store_patch(&s, p, err, sizeof(err)), -1); /* 26 bytes > 20 */
    cr_expect_str_eq(err, "The MMDS patch request doesn't fit.");
    cr_expect_eq(mmds_store_put(&s, p, err, sizeof(err)), 0); /* 18 bytes */
    json_decref(p);
    mmds_store_release(&s);
}

static void lookup(const struct mmds_store *s, const char *path, bool json, int status,
                   const char *body)
{
    char *got;
    int st = mmds_store_lookup(s, path, json, &got);

    cr_expect_eq(st, status, "%s: status %d", path, st);
    cr_expect_str_eq(got, body, "%s", path);
    free(got);
}

Test(mmds_store, pointers_and_formats)
{
    struct mmds_store s;

    mmds_store_init(&s, MMDS_SIZE_LIMIT_DEFAULT);
    put(&s,
        "{\"a/b\":\"slash\",\"m~n\":\"tilde\",\"obj\":{\"z\":\"1\",\"y\":{}},\"arr\":[\"x\",{\"k\":"
        "\"v\"}],\"num\":7,\"\":\"empty\"}");
    lookup(&s, "/a~1b", false, 200, "slash");
    lookup(&s, "/m~0n", false, 200, "tilde");
    lookup(&s, "/obj", false, 200, "y/\nz");
    lookup(&s, "/obj/", false, 200, "y/\nz");
    lookup(&s, "//obj//z", false, 200, "1");
    lookup(&s, "/obj", true, 200, "{\"y\":{},\"z\":\"1\"}");
    lookup(&s, "/arr/0", false, 200, "x");
    lookup(&s, "/arr/1/k", true, 200, "\"v\"");
    lookup(&s, "/arr/01", false, 404, "Resource not found: /arr/01.");
    lookup(&s, "/arr/2", false, 404, "Resource not found: /arr/2.");
    lookup(&s, "/arr/-1", false, 404, "Resource not found: /arr/-1.");
    lookup(&s, "/num", true, 200, "7");
    lookup(&s, "/num", false, 501, "Cannot retrieve value. The value has an unsupported type.");
    lookup(&s, "/arr", false, 501, "Cannot retrieve value. The value has an unsupported type.");
    lookup(&s, "/bad~2", false, 404, "Resource not found: /bad~2.");
    lookup(&s, "/num/x", false, 404, "Resource not found: /num/x.");
    mmds_store_release(&s);
}

Test(mmds_store, tokens)
{
    struct mmds_store s;
    char t1[MMDS_TOKEN_LEN + 1], t2[MMDS_TOKEN_LEN + 1];
    uint64_t now = 1000000000000ull;

    mmds_store_init(&s, MMDS_SIZE_LIMIT_DEFAULT);
    memset(t1, '0', MMDS_TOKEN_LEN);
    t1[MMDS_TOKEN_LEN] = '\0';
    cr_expect(!mmds_store_token_valid(&s, t1, now), "no token is valid before the first");
    cr_assert_eq(mmds_store_token_new(&s, 1, now, t1), 0);
    cr_assert_eq(mmds_store_token_new(&s, MMDS_TOKEN_TTL_MAX, now, t2), 0);
    cr_expect_eq(strlen(t1), MMDS_TOKEN_LEN);
    cr_expect_str_neq(t1, t2);
    cr_expect(mmds_store_token_valid(&s, t1, now + 999999999ull));
    cr_expect(!mmds_store_token_valid(&s, t1, now + 1000000000ull), "expired after its 1 s");
    cr_expect(mmds_store_token_valid(&s, t2, now + 1000000000ull));
    t2[5] ^= 1;
    cr_expect(!mmds_store_token_valid(&s, t2, now));
    cr_expect(!mmds_store_token_valid(&s, "", now));
    /* A full table gives up the token closest to expiry, never grows. */
    for (unsigned i = 0; i < 2 * MMDS_TOKENS_MAX; i++)
        cr_assert_eq(mmds_store_token_new(&s, 60, now, t1), 0);
    cr_expect(mmds_store_token_valid(&s, t1, now));
    mmds_store_release(&s);
}
