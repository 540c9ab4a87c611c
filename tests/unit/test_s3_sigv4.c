/* Unit tests of the s3:// backend's SigV4 signer against AWS's published
 * vectors: the generic Signature Version 4 test suite (aws-sig-v4-test-suite,
 * service "service", 2015-08-30T12:36:00Z, AKIDEXAMPLE) and the S3
 * developer guide's GET and PUT object examples (2013-05-24). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#ifdef REIGN_WITH_S3

#include "../../backends/s3/s3_sigv4.h"

#define SUITE_AK "AKIDEXAMPLE"
#define SUITE_SK "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SUITE_DATE "20150830T123600Z"
#define SUITE_HOST "example.amazonaws.com"
#define SUITE_CRED "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "

#define S3_AK "AKIAIOSFODNN7EXAMPLE"
#define S3_SK "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define S3_DATE "20130524T000000Z"
#define S3_HOST "examplebucket.s3.amazonaws.com"

/* The Authorization value for a request of the generic suite; host and
 * x-amz-date are added here as the suite's signer adds them. */
static char *suite_sign(const char *method, const char *path, const char *query,
                        const reign_s3_header *extra, size_t n_extra, const char *body)
{
    reign_s3_header hs[8];
    size_t n = 0;
    hs[n++] = (reign_s3_header){"Host", SUITE_HOST};
    for (size_t i = 0; i < n_extra; i++) {
        hs[n++] = extra[i];
    }
    hs[n++] = (reign_s3_header){"X-Amz-Date", SUITE_DATE};
    char sha[65];
    reign_s3_sha256_hex(body, strlen(body), sha);
    reign_s3_sign_input in = {.method = method,
                              .path = path,
                              .query = query,
                              .headers = hs,
                              .n_headers = n,
                              .payload_sha256 = sha,
                              .amz_date = SUITE_DATE,
                              .region = "us-east-1",
                              .service = "service",
                              .access_key = SUITE_AK,
                              .secret_key = SUITE_SK};
    char *auth = NULL;
    assert_int_equal(reign_s3_authorization(&in, &auth), 0);
    assert_non_null(auth);
    return auth;
}

static void expect_auth(char *got, const char *want)
{
    if (strcmp(got, want) != 0) {
        print_error("authorization\n  got:  %s\n  want: %s\n", got, want);
    }
    assert_string_equal(got, want);
    free(got);
}

/* ---- the generic suite ------------------------------------------------------ */

static void test_get_vanilla_gives_the_suite_canonical_request_and_signature(void **state)
{
    (void)state;
    reign_s3_header hs[] = {{"Host", SUITE_HOST}, {"X-Amz-Date", SUITE_DATE}};
    reign_s3_sign_input in = {.method = "GET",
                              .path = "/",
                              .headers = hs,
                              .n_headers = 2,
                              .payload_sha256 = REIGN_S3_EMPTY_SHA256,
                              .amz_date = SUITE_DATE,
                              .region = "us-east-1",
                              .service = "service",
                              .access_key = SUITE_AK,
                              .secret_key = SUITE_SK};
    char *canon = NULL, *signed_list = NULL, *sts = NULL;
    assert_int_equal(reign_s3_canonical_request(&in, &canon, &signed_list), 0);
    assert_string_equal(canon, "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
                               "host;x-amz-date\n" REIGN_S3_EMPTY_SHA256);
    assert_string_equal(signed_list, "host;x-amz-date");
    assert_int_equal(reign_s3_string_to_sign(&in, canon, &sts), 0);
    assert_string_equal(sts, "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/"
                             "aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c252"
                             "92927e63");
    free(canon);
    free(signed_list);
    free(sts);
    expect_auth(suite_sign("GET", "/", NULL, NULL, 0, ""),
                SUITE_CRED "SignedHeaders=host;x-amz-date, "
                           "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

static void test_post_vanilla_matches_the_suite(void **state)
{
    (void)state;
    expect_auth(suite_sign("POST", "/", NULL, NULL, 0, ""),
                SUITE_CRED "SignedHeaders=host;x-amz-date, "
                           "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
}

static void test_query_parameters_are_sorted_by_name(void **state)
{
    (void)state;
    expect_auth(suite_sign("GET", "/", "Param2=value2&Param1=value1", NULL, 0, ""),
                SUITE_CRED "SignedHeaders=host;x-amz-date, "
                           "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

static void test_header_values_keep_their_case(void **state)
{
    (void)state;
    reign_s3_header h[] = {{"My-Header1", "VALUE1"}};
    expect_auth(suite_sign("POST", "/", NULL, h, 1, ""),
                SUITE_CRED "SignedHeaders=host;my-header1;x-amz-date, "
                           "Signature=cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d");
}

static void test_header_values_are_trimmed_and_inner_blanks_folded(void **state)
{
    (void)state;
    reign_s3_header h[] = {{"My-Header1", " value1"}, {"My-Header2", " \"a   b   c\""}};
    expect_auth(suite_sign("GET", "/", NULL, h, 2, ""),
                SUITE_CRED "SignedHeaders=host;my-header1;my-header2;x-amz-date, "
                           "Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736");
}

static void test_repeated_headers_are_joined_with_commas_in_order(void **state)
{
    (void)state;
    reign_s3_header h[] = {{"My-Header1", "value2"}, {"My-Header1", "value2"}, {"My-Header1", "value1"}};
    expect_auth(suite_sign("GET", "/", NULL, h, 3, ""),
                SUITE_CRED "SignedHeaders=host;my-header1;x-amz-date, "
                           "Signature=c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea");
}

static void test_unreserved_path_characters_are_not_encoded(void **state)
{
    (void)state;
    const char *raw = "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    char path[256];
    assert_int_equal(reign_s3_uri_encode(raw, strlen(raw), true, path, sizeof path), strlen(raw));
    assert_string_equal(path, raw);
    expect_auth(suite_sign("GET", path, NULL, NULL, 0, ""),
                SUITE_CRED "SignedHeaders=host;x-amz-date, "
                           "Signature=07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f");
}

static void test_a_utf8_path_is_percent_encoded_once(void **state)
{
    (void)state;
    const char *raw = "/\xe1\x88\xb4"; /* U+1234 */
    char path[64];
    assert_int_equal(reign_s3_uri_encode(raw, strlen(raw), true, path, sizeof path), 10);
    assert_string_equal(path, "/%E1%88%B4");
    expect_auth(suite_sign("GET", path, NULL, NULL, 0, ""),
                SUITE_CRED "SignedHeaders=host;x-amz-date, "
                           "Signature=8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85");
}

static void test_a_form_body_is_hashed_into_the_signature(void **state)
{
    (void)state;
    reign_s3_header h[] = {{"Content-Type", "application/x-www-form-urlencoded"}};
    expect_auth(suite_sign("POST", "/", NULL, h, 1, "Param1=value1"),
                SUITE_CRED "SignedHeaders=content-type;host;x-amz-date, "
                           "Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a");
}

static void test_a_session_token_is_signed_as_a_header(void **state)
{
    (void)state;
    /* aws-c-auth's get-vanilla-with-session-token case of the suite */
    reign_s3_header h[] = {
        {"X-Amz-Security-Token", "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"}};
    expect_auth(suite_sign("GET", "/", NULL, h, 1, ""),
                SUITE_CRED "SignedHeaders=host;x-amz-date;x-amz-security-token, "
                           "Signature=07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8");
}

/* ---- the S3 developer guide's examples -------------------------------------- */

static char *s3_sign(const char *method, const char *path, const reign_s3_header *hs, size_t n,
                     const char *sha)
{
    reign_s3_sign_input in = {.method = method,
                              .path = path,
                              .headers = hs,
                              .n_headers = n,
                              .payload_sha256 = sha,
                              .amz_date = S3_DATE,
                              .region = "us-east-1",
                              .service = "s3",
                              .access_key = S3_AK,
                              .secret_key = S3_SK};
    char *auth = NULL;
    assert_int_equal(reign_s3_authorization(&in, &auth), 0);
    return auth;
}

static void test_the_s3_get_object_example_signs_range_and_content_sha256(void **state)
{
    (void)state;
    reign_s3_header hs[] = {{"Host", S3_HOST},
                            {"Range", "bytes=0-9"},
                            {"x-amz-content-sha256", REIGN_S3_EMPTY_SHA256},
                            {"x-amz-date", S3_DATE}};
    expect_auth(s3_sign("GET", "/test.txt", hs, 4, REIGN_S3_EMPTY_SHA256),
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

static void test_the_s3_put_object_example_encodes_a_dollar_in_the_key(void **state)
{
    (void)state;
    const char *body = "Welcome to Amazon S3.";
    char sha[65], path[64];
    reign_s3_sha256_hex(body, strlen(body), sha);
    assert_string_equal(sha, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    reign_s3_uri_encode("/test$file.text", 15, true, path, sizeof path);
    assert_string_equal(path, "/test%24file.text");
    reign_s3_header hs[] = {{"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                            {"Host", S3_HOST},
                            {"x-amz-date", S3_DATE},
                            {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
                            {"x-amz-content-sha256", sha}};
    expect_auth(s3_sign("PUT", path, hs, 5, sha),
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, "
                "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

/* ---- pieces ----------------------------------------------------------------- */

static void test_sha256_of_nothing_is_the_empty_payload_hash(void **state)
{
    (void)state;
    char sha[65];
    reign_s3_sha256_hex("", 0, sha);
    assert_string_equal(sha, REIGN_S3_EMPTY_SHA256);
    reign_s3_sha256_hex(NULL, 0, sha);
    assert_string_equal(sha, REIGN_S3_EMPTY_SHA256);
}

static void test_amz_date_is_utc_in_basic_format(void **state)
{
    (void)state;
    char d[17];
    assert_true(reign_s3_amz_date((time_t)1440938160, d)); /* 2015-08-30T12:36:00Z */
    assert_string_equal(d, "20150830T123600Z");
}

static void test_uri_encode_escapes_slash_only_when_asked_and_reports_short_buffers(void **state)
{
    (void)state;
    char out[32];
    assert_int_equal(reign_s3_uri_encode("a/b c", 5, false, out, sizeof out), 9);
    assert_string_equal(out, "a%2Fb%20c");
    assert_int_equal(reign_s3_uri_encode("a/b c", 5, true, out, sizeof out), 7);
    assert_string_equal(out, "a/b%20c");
    assert_int_equal(reign_s3_uri_encode("\xff", 1, true, out, sizeof out), 3);
    assert_string_equal(out, "%FF");
    assert_int_equal(reign_s3_uri_encode("abc", 3, true, out, 3), (size_t)-1);
    assert_int_equal(reign_s3_uri_encode(" ", 1, true, out, 3), (size_t)-1);
}

static void test_signing_without_a_host_header_is_refused(void **state)
{
    (void)state;
    reign_s3_header hs[] = {{"X-Amz-Date", SUITE_DATE}};
    reign_s3_sign_input in = {.method = "GET",
                              .path = "/",
                              .headers = hs,
                              .n_headers = 1,
                              .payload_sha256 = REIGN_S3_EMPTY_SHA256,
                              .amz_date = SUITE_DATE,
                              .region = "us-east-1",
                              .service = "s3",
                              .access_key = SUITE_AK,
                              .secret_key = SUITE_SK};
    char *auth = (char *)"untouched";
    assert_int_equal(reign_s3_authorization(&in, &auth), -1);
    assert_string_equal(auth, "untouched");
    in.headers = (reign_s3_header[]){{"Host", SUITE_HOST}};
    in.amz_date = "2015";
    assert_int_equal(reign_s3_authorization(&in, &auth), -1);
    in.amz_date = SUITE_DATE;
    in.path = "no-slash";
    assert_int_equal(reign_s3_authorization(&in, &auth), -1);
}

static void test_the_authorization_never_contains_the_secret(void **state)
{
    (void)state;
    char *auth = suite_sign("GET", "/", NULL, NULL, 0, "");
    assert_null(strstr(auth, SUITE_SK));
    assert_null(strstr(auth, "wJalrXUtnFEMI"));
    free(auth);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_vanilla_gives_the_suite_canonical_request_and_signature),
        cmocka_unit_test(test_post_vanilla_matches_the_suite),
        cmocka_unit_test(test_query_parameters_are_sorted_by_name),
        cmocka_unit_test(test_header_values_keep_their_case),
        cmocka_unit_test(test_header_values_are_trimmed_and_inner_blanks_folded),
        cmocka_unit_test(test_repeated_headers_are_joined_with_commas_in_order),
        cmocka_unit_test(test_unreserved_path_characters_are_not_encoded),
        cmocka_unit_test(test_a_utf8_path_is_percent_encoded_once),
        cmocka_unit_test(test_a_form_body_is_hashed_into_the_signature),
        cmocka_unit_test(test_a_session_token_is_signed_as_a_header),
        cmocka_unit_test(test_the_s3_get_object_example_signs_range_and_content_sha256),
        cmocka_unit_test(test_the_s3_put_object_example_encodes_a_dollar_in_the_key),
        cmocka_unit_test(test_sha256_of_nothing_is_the_empty_payload_hash),
        cmocka_unit_test(test_amz_date_is_utc_in_basic_format),
        cmocka_unit_test(test_uri_encode_escapes_slash_only_when_asked_and_reports_short_buffers),
        cmocka_unit_test(test_signing_without_a_host_header_is_refused),
        cmocka_unit_test(test_the_authorization_never_contains_the_secret),
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
