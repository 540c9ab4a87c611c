/* Unit tests of the s3:// backend's records, keys and expiry judgement, no
 * server: JSON encode/parse (and what a foreign object gives), object keys
 * of odd resource IDs, and the clock-free observer on a fake clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "reign/reign.h"

#ifdef REIGN_WITH_S3

#include "../../backends/s3/s3_observe.h"
#include "../../backends/s3/s3_record.h"

static reign_s3_record sample(void)
{
    reign_s3_record r = {.holder = (char *)"host:42:abcd",
                         .metadata = (char *)"10.0.0.5:8080",
                         .term = 7,
                         .ttl_ms = 10000,
                         .released = false,
                         .seq = 3};
    strcpy(r.nonce, "0123456789abcdef0123456789abcdef");
    return r;
}

typedef struct parsed {
    int rc;
    reign_s3_record rec;
    char cause[200];
} parsed;

static parsed parse(const char *body)
{
    parsed p;
    memset(&p, 0, sizeof p);
    p.rc = reign_s3_record_parse(body, strlen(body), &p.rec, p.cause, sizeof p.cause);
    return p;
}

/* ---- records ---------------------------------------------------------------- */

static void test_a_record_survives_encode_and_parse(void **state)
{
    (void)state;
    reign_s3_record r = sample();
    size_t len = 0;
    char *json = reign_s3_record_encode(&r, &len);
    assert_non_null(json);
    assert_int_equal(len, strlen(json));
    assert_string_equal(json, "{\"v\":1,\"holder\":\"host:42:abcd\",\"term\":7,\"meta\":\"10.0.0.5:8080\","
                              "\"ttl_ms\":10000,\"released\":false,\"seq\":3,"
                              "\"nonce\":\"0123456789abcdef0123456789abcdef\"}");
    parsed p = parse(json);
    assert_int_equal(p.rc, REIGN_OK);
    assert_string_equal(p.rec.holder, "host:42:abcd");
    assert_string_equal(p.rec.metadata, "10.0.0.5:8080");
    assert_int_equal(p.rec.term, 7);
    assert_int_equal(p.rec.ttl_ms, 10000);
    assert_false(p.rec.released);
    assert_int_equal(p.rec.seq, 3);
    assert_string_equal(p.rec.nonce, r.nonce);
    reign_s3_record_clear(&p.rec);
    free(json);
}

static void test_every_write_changes_the_bytes_through_its_nonce(void **state)
{
    (void)state;
    reign_s3_record a = sample(), b = sample();
    strcpy(b.nonce, "fedcba9876543210fedcba9876543210");
    char *ja = reign_s3_record_encode(&a, NULL), *jb = reign_s3_record_encode(&b, NULL);
    assert_non_null(ja);
    assert_non_null(jb);
    assert_string_not_equal(ja, jb);
    free(ja);
    free(jb);
}

static void test_a_released_record_keeps_its_term(void **state)
{
    (void)state;
    reign_s3_record r = sample();
    r.released = true;
    char *json = reign_s3_record_encode(&r, NULL);
    parsed p = parse(json);
    assert_int_equal(p.rc, REIGN_OK);
    assert_true(p.rec.released);
    assert_int_equal(p.rec.term, 7);
    reign_s3_record_clear(&p.rec);
    free(json);
}

static void test_holder_and_metadata_that_are_not_utf8_cannot_be_encoded(void **state)
{
    (void)state;
    reign_s3_record r = sample();
    r.holder = (char *)"bad\xff";
    assert_null(reign_s3_record_encode(&r, NULL));
    r = sample();
    r.metadata = (char *)"\xc3";
    assert_null(reign_s3_record_encode(&r, NULL));
    r = sample();
    r.term = (uint64_t)INT64_MAX + 1;
    assert_null(reign_s3_record_encode(&r, NULL));
}

static void test_objects_that_are_not_records_are_eproto_naming_the_field(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        const char *needle;
    } cases[] = {
        {"", "not JSON"},
        {"<html/>", "not JSON"},
        {"[1,2]", "not a JSON object"},
        {"{\"holder\":\"a\",\"term\":1,\"ttl_ms\":1,\"released\":false,\"nonce\":\"n\"}", "'v'"},
        {"{\"v\":2,\"holder\":\"a\",\"term\":1,\"ttl_ms\":1,\"released\":false,\"nonce\":\"n\"}",
         "version 2 is newer"},
        {"{\"v\":1,\"term\":1,\"ttl_ms\":1,\"released\":false,\"nonce\":\"n\"}", "lacks 'holder'"},
        {"{\"v\":1,\"holder\":\"\",\"term\":1,\"ttl_ms\":1,\"released\":false,\"nonce\":\"n\"}",
         "'holder' is empty"},
        {"{\"v\":1,\"holder\":\"a\\u0000b\",\"term\":1,\"ttl_ms\":1,\"released\":false,\"nonce\":\"n\"}",
         "not JSON"}, /* jansson refuses escaped NULs */
        {"{\"v\":1,\"holder\":7,\"term\":1,\"ttl_ms\":1,\"released\":false,\"nonce\":\"n\"}",
         "'holder' is not a string"},
        {"{\"v\":1,\"holder\":\"a\",\"term\":0,\"ttl_ms\":1,\"released\":false,\"nonce\":\"n\"}",
         "'term' is not an integer >= 1"},
        {"{\"v\":1,\"holder\":\"a\",\"term\":\"5\",\"ttl_ms\":1,\"released\":false,\"nonce\":\"n\"}",
         "'term' is not an integer"},
        {"{\"v\":1,\"holder\":\"a\",\"term\":1.5,\"ttl_ms\":1,\"released\":false,\"nonce\":\"n\"}",
         "'term' is not an integer"},
        {"{\"v\":1,\"holder\":\"a\",\"term\":1,\"ttl_ms\":-5,\"released\":false,\"nonce\":\"n\"}",
         "'ttl_ms'"},
        {"{\"v\":1,\"holder\":\"a\",\"term\":1,\"ttl_ms\":1,\"nonce\":\"n\"}", "'released'"},
        {"{\"v\":1,\"holder\":\"a\",\"term\":1,\"ttl_ms\":1,\"released\":0,\"nonce\":\"n\"}",
         "'released'"},
        {"{\"v\":1,\"holder\":\"a\",\"term\":1,\"ttl_ms\":1,\"released\":false}", "lacks 'nonce'"},
        {"{\"v\":1,\"holder\":\"a\",\"term\":1,\"ttl_ms\":1,\"released\":false,"
         "\"nonce\":\"0123456789abcdef0123456789abcdef0\"}",
         "'nonce' is longer"},
        {"{\"v\":1,\"v\":1,\"holder\":\"a\",\"term\":1,\"ttl_ms\":1,\"released\":false,\"nonce\":\"n\"}",
         "not JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        parsed p = parse(cases[i].body);
        if (p.rc != REIGN_EPROTO || strstr(p.cause, cases[i].needle) == NULL) {
            print_error("body %s: got %s \"%s\", wanted REIGN_EPROTO with \"%s\"\n", cases[i].body,
                        reign_status_str(p.rc), p.cause, cases[i].needle);
            fail();
        }
        assert_null(p.rec.holder);
    }
}

static void test_unknown_fields_and_a_missing_meta_are_accepted(void **state)
{
    (void)state;
    parsed p = parse("{\"v\":1,\"holder\":\"a\",\"term\":9223372036854775807,\"ttl_ms\":5,"
                     "\"released\":true,\"nonce\":\"x\",\"future\":[1,{}]}");
    assert_int_equal(p.rc, REIGN_OK);
    assert_string_equal(p.rec.metadata, "");
    assert_int_equal(p.rec.term, (uint64_t)INT64_MAX);
    assert_true(p.rec.released);
    reign_s3_record_clear(&p.rec);
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void test_mutated_records_parse_or_fail_cleanly(void **state)
{
    (void)state;
    reign_s3_record r = sample();
    size_t len = 0;
    char *json = reign_s3_record_encode(&r, &len);
    assert_non_null(json);
    uint64_t s = 0xdecafbadULL;
    int ok = 0;
    for (int round = 0; round < 20000; round++) {
        size_t n = len;
        char *body = malloc(n); /* exactly n bytes: ASan catches reads past them */
        assert_non_null(body);
        memcpy(body, json, n);
        int edits = 1 + (int)(rnd(&s) % 4);
        for (int k = 0; k < edits && n > 0; k++) {
            size_t at = rnd(&s) % n;
            switch (rnd(&s) % 3) {
            case 0: body[at] = (char)rnd(&s); break;
            case 1: n = at; break;
            default: body[at] = "{}[]\":,0-9e.\\u"[rnd(&s) % 15]; break; /* [14]: a NUL */
            }
        }
        reign_s3_record out;
        char cause[120];
        int rc = reign_s3_record_parse(body, n, &out, cause, sizeof cause);
        assert_true(rc == REIGN_OK || rc == REIGN_EPROTO);
        if (rc == REIGN_OK) {
            assert_non_null(out.holder);
            assert_true(out.holder[0] != '\0');
            assert_true(out.term >= 1);
            assert_true(out.ttl_ms >= 1);
            assert_true(strlen(out.nonce) <= REIGN_S3_NONCE_LEN);
            reign_s3_record_clear(&out);
            ok++;
        } else {
            assert_true(strlen(cause) > 0 && strlen(cause) < sizeof cause);
            assert_null(out.holder);
        }
        free(body);
    }
    print_message("%d of 20000 mutated records still parsed\n", ok);
    free(json);
}

/* ---- keys ------------------------------------------------------------------- */

static char *key_of(const char *prefix, const char *res, size_t len)
{
    static char out[REIGN_S3_KEY_MAX + 1];
    size_t n = reign_s3_key(prefix, res, len, out, sizeof out);
    assert_true(n > 0);
    assert_int_equal(n, strlen(out));
    return out;
}

static void test_plain_ids_keep_their_name_under_the_prefix(void **state)
{
    (void)state;
    assert_string_equal(key_of("leases/", "jobs-7_a.b", 10), "leases/jobs-7_a.b");
    assert_string_equal(key_of("", "Z9", 2), "Z9");
}

static void test_slashes_dots_and_tildes_are_escaped_so_keys_stay_one_segment(void **state)
{
    (void)state;
    assert_string_equal(key_of("p/", "jobs/7", 6), "p/jobs~2F7");
    assert_string_equal(key_of("p/", ".", 1), "p/~2E");
    assert_string_equal(key_of("p/", "..", 2), "p/~2E.");
    assert_string_equal(key_of("p/", "a.", 2), "p/a.");
    assert_string_equal(key_of("p/", "~61", 3), "p/~7E61");
    assert_string_equal(key_of("p/", "*?[]", 4), "p/~2A~3F~5B~5D");
    assert_string_equal(key_of("p/", "a b\n", 4), "p/a~20b~0A");
}

static void test_every_byte_maps_to_its_own_key(void **state)
{
    (void)state;
    static char seen[256][8];
    for (int c = 1; c < 256; c++) {
        char res[1] = {(char)c};
        const char *k = key_of("", res, 1);
        assert_true(strlen(k) < sizeof seen[c]);
        strcpy(seen[c], k);
        for (const char *p = k; *p != '\0'; p++) {
            /* only URL-unreserved characters: no encoding, no '/' */
            assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~",
                                   *p));
        }
        for (int d = 1; d < c; d++) {
            assert_string_not_equal(seen[c], seen[d]);
        }
    }
}

static void test_ids_too_long_for_a_key_are_hashed_under_the_prefix(void **state)
{
    (void)state;
    char res[1024];
    memset(res, 'x', sizeof res);
    const char *k = key_of("test/", res, sizeof res);
    assert_int_equal(strlen(k), 5 + 2 + 64);
    assert_memory_equal(k, "test/~~", 7);
    char k1[100];
    strcpy(k1, k);
    res[1023] = 'y';
    assert_string_not_equal(key_of("test/", res, sizeof res), k1);
    /* 1019 plain bytes still fit next to "test/" */
    assert_int_equal(strlen(key_of("test/", res, 1019)), 1024);
    /* an escaped form never holds "~~" */
    memset(res, '~', 300);
    assert_null(strstr(key_of("", res, 300), "~~"));
}

static void test_a_prefix_that_leaves_no_room_gives_no_key(void **state)
{
    (void)state;
    char prefix[1000];
    memset(prefix, 'p', sizeof prefix - 1);
    prefix[sizeof prefix - 1] = '\0';
    char out[REIGN_S3_KEY_MAX + 1];
    assert_int_equal(reign_s3_key(prefix, "a", 1, out, sizeof out), 0);
    assert_int_equal(reign_s3_key("p/", "a", 1, out, 3), 0);
}

/* ---- the observer -------------------------------------------------------------- */

static reign_s3_record owned(const char *holder, uint64_t term, int64_t ttl, bool released)
{
    reign_s3_record r = {.holder = strdup(holder), .metadata = strdup(""), .term = term,
                         .ttl_ms = ttl, .released = released};
    assert_non_null(r.holder);
    return r;
}

static void test_expiry_waits_the_ttl_plus_two_percent(void **state)
{
    (void)state;
    assert_int_equal(reign_s3_expiry_ms(1000), 1021);
    assert_int_equal(reign_s3_expiry_ms(10000), 10201);
    assert_int_equal(reign_s3_expiry_ms(0), 0);
}

static void test_a_lease_is_dead_only_after_its_etag_stays_unchanged_for_the_ttl(void **state)
{
    (void)state;
    reign_s3_obs_map map = {0};
    reign_s3_obs *o = reign_s3_obs_find(&map, "p/a", true, 0);
    assert_non_null(o);
    int64_t left = -1;
    assert_int_equal(reign_s3_obs_judge(o, 0, &left), REIGN_S3_LEASE_UNKNOWN);

    reign_s3_record r = owned("other", 3, 1000, false);
    reign_s3_obs_note_record(o, "etag-1", &r, 5000);
    assert_null(r.holder); /* taken over */
    assert_int_equal(reign_s3_obs_judge(o, 5000, &left), REIGN_S3_LEASE_LIVE);
    assert_int_equal(left, 1021);
    /* the same ETag seen again later does not restart the count */
    r = owned("other", 3, 1000, false);
    reign_s3_obs_note_record(o, "etag-1", &r, 5900);
    assert_int_equal(reign_s3_obs_judge(o, 6020, &left), REIGN_S3_LEASE_LIVE);
    assert_int_equal(left, 1);
    assert_int_equal(reign_s3_obs_judge(o, 6021, &left), REIGN_S3_LEASE_EXPIRED);
    /* a renewal (new ETag) starts it over */
    r = owned("other", 3, 1000, false);
    reign_s3_obs_note_record(o, "etag-2", &r, 6100);
    assert_int_equal(reign_s3_obs_judge(o, 7000, &left), REIGN_S3_LEASE_LIVE);
    assert_int_equal(left, 121);
    reign_s3_obs_map_free(&map);
}

static void test_the_holders_ttl_not_ours_times_its_lease(void **state)
{
    (void)state;
    reign_s3_obs_map map = {0};
    reign_s3_obs *o = reign_s3_obs_find(&map, "k", true, 0);
    reign_s3_record r = owned("slow", 1, 60000, false);
    reign_s3_obs_note_record(o, "e", &r, 0);
    assert_int_equal(reign_s3_obs_judge(o, 30000, NULL), REIGN_S3_LEASE_LIVE);
    assert_int_equal(reign_s3_obs_judge(o, 61201, NULL), REIGN_S3_LEASE_EXPIRED);
    reign_s3_obs_map_free(&map);
}

static void test_released_and_absent_records_are_free_at_once(void **state)
{
    (void)state;
    reign_s3_obs_map map = {0};
    reign_s3_obs *o = reign_s3_obs_find(&map, "k", true, 0);
    reign_s3_record r = owned("x", 4, 1000, true);
    reign_s3_obs_note_record(o, "e", &r, 100);
    assert_int_equal(reign_s3_obs_judge(o, 100, NULL), REIGN_S3_LEASE_RELEASED);
    reign_s3_obs_note_absent(o, 200);
    assert_int_equal(reign_s3_obs_judge(o, 200, NULL), REIGN_S3_LEASE_ABSENT);
    assert_null(o->rec.holder);
    reign_s3_obs_forget(o);
    assert_int_equal(reign_s3_obs_judge(o, 300, NULL), REIGN_S3_LEASE_UNKNOWN);
    reign_s3_obs_map_free(&map);
}

static void test_the_map_finds_grows_and_sweeps_idle_entries(void **state)
{
    (void)state;
    reign_s3_obs_map map = {0};
    char key[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        reign_s3_obs *o = reign_s3_obs_find(&map, key, true, i < 500 ? 10 : 20);
        assert_non_null(o);
        assert_string_equal(o->key, key);
    }
    assert_int_equal(map.n, 1000);
    assert_null(reign_s3_obs_find(&map, "absent", false, 30));
    assert_non_null(reign_s3_obs_find(&map, "k7", false, 30)); /* used at 30 now */
    assert_int_equal(reign_s3_obs_sweep(&map, 15), 499);
    assert_int_equal(map.n, 501);
    assert_non_null(reign_s3_obs_find(&map, "k7", false, 40));
    assert_null(reign_s3_obs_find(&map, "k8", false, 40));
    assert_non_null(reign_s3_obs_find(&map, "k999", false, 40));
    reign_s3_obs_map_free(&map);
    assert_int_equal(map.n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_record_survives_encode_and_parse),
        cmocka_unit_test(test_every_write_changes_the_bytes_through_its_nonce),
        cmocka_unit_test(test_a_released_record_keeps_its_term),
        cmocka_unit_test(test_holder_and_metadata_that_are_not_utf8_cannot_be_encoded),
        cmocka_unit_test(test_objects_that_are_not_records_are_eproto_naming_the_field),
        cmocka_unit_test(test_unknown_fields_and_a_missing_meta_are_accepted),
        cmocka_unit_test(test_mutated_records_parse_or_fail_cleanly),
        cmocka_unit_test(test_plain_ids_keep_their_name_under_the_prefix),
        cmocka_unit_test(test_slashes_dots_and_tildes_are_escaped_so_keys_stay_one_segment),
        cmocka_unit_test(test_every_byte_maps_to_its_own_key),
        cmocka_unit_test(test_ids_too_long_for_a_key_are_hashed_under_the_prefix),
        cmocka_unit_test(test_a_prefix_that_leaves_no_room_gives_no_key),
        cmocka_unit_test(test_expiry_waits_the_ttl_plus_two_percent),
        cmocka_unit_test(test_a_lease_is_dead_only_after_its_etag_stays_unchanged_for_the_ttl),
        cmocka_unit_test(test_the_holders_ttl_not_ours_times_its_lease),
        cmocka_unit_test(test_released_and_absent_records_are_free_at_once),
        cmocka_unit_test(test_the_map_finds_grows_and_sweeps_idle_entries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#else

static void test_s3_backend_not_built(void **state)
{
    (void)state;
    print_message("[  SKIP    ] reign built without REIGN_WITH_S3\n");
    skip();
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_s3_backend_not_built)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#endif
