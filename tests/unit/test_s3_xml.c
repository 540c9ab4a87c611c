/* Unit tests of the s3:// backend's answer decoding, no server: S3 error
 * documents (as RGW and AWS send them) → codes, HTTP status + body →
 * outcome and named reign status, and a seeded fuzz of both. */
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

#include "../../backends/s3/s3_xml.h"

/* Bodies as the servers send them. */
#define RGW_NOSUCHKEY                                                                            \
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>NoSuchKey</Code><BucketName>reign"   \
    "</BucketName><RequestId>tx000001</RequestId><HostId>1-default-default</HostId></Error>"
#define RGW_NOSUCHBUCKET                                                                         \
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>NoSuchBucket</Code><BucketName>"     \
    "nope</BucketName><RequestId>tx000002</RequestId><HostId>1-default-default</HostId></Error>"
#define RGW_UNKNOWN                                                                              \
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>UnknownError</Code><RequestId>"      \
    "tx000003</RequestId><HostId>1-default-default</HostId></Error>"
#define AWS_DENIED                                                                               \
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>"      \
    "Access Denied</Message><RequestId>X</RequestId><HostId>Y</HostId></Error>"

static reign_s3_error parse_ok(const char *body)
{
    reign_s3_error e;
    memset(&e, 0x55, sizeof e);
    assert_true(reign_s3_error_parse(body, strlen(body), &e));
    return e;
}

static void test_an_rgw_error_document_gives_its_code(void **state)
{
    (void)state;
    reign_s3_error e = parse_ok(RGW_NOSUCHKEY);
    assert_string_equal(e.code, "NoSuchKey");
    assert_string_equal(e.message, "");
    e = parse_ok(RGW_NOSUCHBUCKET);
    assert_string_equal(e.code, "NoSuchBucket");
}

static void test_an_aws_error_document_gives_code_and_decoded_message(void **state)
{
    (void)state;
    reign_s3_error e = parse_ok(AWS_DENIED);
    assert_string_equal(e.code, "AccessDenied");
    assert_string_equal(e.message, "Access Denied");
    e = parse_ok("<Error><Code>SignatureDoesNotMatch</Code><Message>a &lt;b&gt; &amp; &quot;c&quot; "
                 "&#65;&#x42; \xc3\xa9</Message></Error>");
    assert_string_equal(e.code, "SignatureDoesNotMatch");
    assert_string_equal(e.message, "a <b> & \"c\" AB ??");
}

static void test_bodies_that_are_not_s3_error_documents_are_refused(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "   ",
        "<html><body>502 Bad Gateway</body></html>",
        "{\"error\":\"AccessDenied\"}",
        "<Error><Code>NoSuchKey</Code>",                 /* truncated */
        "<Error><Message>x</Message></Error>",            /* no code */
        "<Error><Code></Code></Error>",                   /* empty code */
        "<Error><Code>No Such Key</Code></Error>",        /* not a code */
        "<Error><Code>NoSuchKey</Error>",                 /* unclosed code */
        "<?xml version=\"1.0\"<Error><Code>A</Code></Error>", /* broken declaration */
        "<Errors><Code>A</Code></Errors>",
        "<Error><Code>AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA</Code></Error>",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        reign_s3_error e;
        if (reign_s3_error_parse(bad[i], strlen(bad[i]), &e)) {
            print_error("accepted: %s\n", bad[i]);
            fail();
        }
    }
    reign_s3_error e;
    assert_false(reign_s3_error_parse(NULL, 0, &e));
    /* never past len: the same document cut short is refused */
    assert_false(reign_s3_error_parse(RGW_NOSUCHKEY, strlen(RGW_NOSUCHKEY) - 3, &e));
}

typedef struct classified {
    reign_s3_outcome out;
    int status;
    char cause[300];
} classified;

static classified classify(long http, const char *body)
{
    classified c;
    c.status = 12345;
    strcpy(c.cause, "untouched");
    c.out = reign_s3_classify(http, body, body != NULL ? strlen(body) : 0, &c.status, c.cause,
                              sizeof c.cause);
    return c;
}

static void expect_failed(long http, const char *body, int status, const char *needle)
{
    classified c = classify(http, body);
    if (c.out != REIGN_S3_OUT_FAILED || c.status != status || strstr(c.cause, needle) == NULL) {
        print_error("HTTP %ld: outcome %d status %s cause \"%s\"; wanted FAILED %s with \"%s\"\n",
                    http, (int)c.out, reign_status_str(c.status), c.cause, reign_status_str(status),
                    needle);
        fail();
    }
}

static void test_success_and_absence_are_told_apart(void **state)
{
    (void)state;
    assert_int_equal(classify(200, "{}").out, REIGN_S3_OUT_OK);
    assert_int_equal(classify(204, "").out, REIGN_S3_OUT_OK);
    assert_int_equal(classify(404, RGW_NOSUCHKEY).out, REIGN_S3_OUT_ABSENT);
    assert_int_equal(classify(404, "").out, REIGN_S3_OUT_ABSENT);
}

static void test_412_and_409_mean_a_lost_race(void **state)
{
    (void)state;
    assert_int_equal(classify(412, "<Error><Code>PreconditionFailed</Code></Error>").out,
                     REIGN_S3_OUT_CONFLICT);
    assert_int_equal(classify(412, "").out, REIGN_S3_OUT_CONFLICT);
    assert_int_equal(classify(409, "<Error><Code>ConditionalRequestConflict</Code></Error>").out,
                     REIGN_S3_OUT_CONFLICT);
}

static void test_5xx_and_slowdown_are_an_unknown_outcome_and_retryable(void **state)
{
    (void)state;
    classified c = classify(500, RGW_UNKNOWN);
    assert_int_equal(c.out, REIGN_S3_OUT_UNKNOWN);
    assert_int_equal(c.status, REIGN_EBACKEND);
    assert_non_null(strstr(c.cause, "HTTP 500 UnknownError"));
    c = classify(503, "<Error><Code>SlowDown</Code><Message>Please reduce your request rate."
                      "</Message></Error>");
    assert_int_equal(c.out, REIGN_S3_OUT_UNKNOWN);
    assert_non_null(strstr(c.cause, "SlowDown"));
    c = classify(502, "<html>bad gateway</html>");
    assert_int_equal(c.out, REIGN_S3_OUT_UNKNOWN);
    assert_int_equal(c.status, REIGN_EBACKEND);
    assert_int_equal(classify(429, NULL).out, REIGN_S3_OUT_UNKNOWN);
}

static void test_credential_errors_are_eauth_with_a_hint(void **state)
{
    (void)state;
    expect_failed(403, AWS_DENIED, REIGN_EAUTH, "AccessDenied: Access Denied");
    expect_failed(403, "<Error><Code>InvalidAccessKeyId</Code></Error>", REIGN_EAUTH,
                  "AWS_ACCESS_KEY_ID");
    expect_failed(403, "<Error><Code>SignatureDoesNotMatch</Code></Error>", REIGN_EAUTH,
                  "AWS_SECRET_ACCESS_KEY");
    expect_failed(403, "<Error><Code>RequestTimeTooSkewed</Code></Error>", REIGN_EAUTH, "clock");
    expect_failed(400, "<Error><Code>AuthorizationHeaderMalformed</Code></Error>", REIGN_EAUTH,
                  "region");
    expect_failed(400, "<Error><Code>ExpiredToken</Code></Error>", REIGN_EAUTH, "ExpiredToken");
}

static void test_a_missing_bucket_is_ebackend_saying_so(void **state)
{
    (void)state;
    expect_failed(404, RGW_NOSUCHBUCKET, REIGN_EBACKEND, "bucket does not exist");
}

static void test_other_s3_errors_are_ebackend_naming_the_code(void **state)
{
    (void)state;
    expect_failed(400, "<Error><Code>InvalidArgument</Code><Message>bad</Message></Error>",
                  REIGN_EBACKEND, "HTTP 400 InvalidArgument: bad");
    expect_failed(301, "<Error><Code>PermanentRedirect</Code></Error>", REIGN_EBACKEND, "region=");
}

static void test_answers_that_are_not_s3_are_eproto(void **state)
{
    (void)state;
    expect_failed(404, "<html>Not Found</html>", REIGN_EPROTO, "not an S3 endpoint");
    expect_failed(403, "Forbidden by proxy", REIGN_EPROTO, "not an S3 endpoint");
    expect_failed(302, "", REIGN_EPROTO, "not an S3 endpoint");
    expect_failed(0, "", REIGN_EPROTO, "no HTTP status");
    expect_failed(101, NULL, REIGN_EPROTO, "not an S3 endpoint");
}

/* ---- fuzz ------------------------------------------------------------------ */

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void test_random_and_mutated_bodies_never_crash_and_give_bounded_causes(void **state)
{
    (void)state;
    static const char *const seeds[] = {RGW_NOSUCHKEY, RGW_NOSUCHBUCKET, RGW_UNKNOWN, AWS_DENIED,
                                        "<Error><Code>A</Code><Message>&#x41;&amp</Message></Error>"};
    static const long statuses[] = {0, 200, 301, 400, 403, 404, 409, 412, 429, 500, 503, 999};
    uint64_t s = 0x5eed5eedULL;
    char buf[512];
    for (int round = 0; round < 20000; round++) {
        const char *seed = seeds[rnd(&s) % (sizeof seeds / sizeof seeds[0])];
        size_t len = strlen(seed);
        if (len > sizeof buf) {
            len = sizeof buf;
        }
        memcpy(buf, seed, len);
        int edits = (int)(rnd(&s) % 6);
        for (int k = 0; k < edits && len > 0; k++) {
            size_t at = rnd(&s) % len;
            switch (rnd(&s) % 3) {
            case 0: buf[at] = (char)rnd(&s); break;             /* flip a byte */
            case 1: len = at; break;                             /* cut */
            default: buf[at] = "<>&;/#x"[rnd(&s) % 7]; break;    /* markup */
            }
        }
        if (round % 10 == 0) { /* pure noise */
            len = rnd(&s) % sizeof buf;
            for (size_t i = 0; i < len; i++) {
                buf[i] = (char)rnd(&s);
            }
        }
        /* a heap copy of exactly len bytes: ASan catches any read past it */
        char *body = malloc(len ? len : 1);
        assert_non_null(body);
        memcpy(body, buf, len);
        reign_s3_error e;
        if (reign_s3_error_parse(body, len, &e)) {
            assert_true(strlen(e.code) > 0 && strlen(e.code) < sizeof e.code);
            assert_true(strlen(e.message) < sizeof e.message);
        }
        int status = 0;
        char cause[80];
        reign_s3_outcome out =
            reign_s3_classify(statuses[rnd(&s) % 12], body, len, &status, cause, sizeof cause);
        assert_true(out >= REIGN_S3_OUT_OK && out <= REIGN_S3_OUT_FAILED);
        if (out == REIGN_S3_OUT_FAILED || out == REIGN_S3_OUT_UNKNOWN) {
            assert_true(status == REIGN_EAUTH || status == REIGN_EBACKEND || status == REIGN_EPROTO);
            assert_true(strlen(cause) < sizeof cause);
        }
        free(body);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_an_rgw_error_document_gives_its_code),
        cmocka_unit_test(test_an_aws_error_document_gives_code_and_decoded_message),
        cmocka_unit_test(test_bodies_that_are_not_s3_error_documents_are_refused),
        cmocka_unit_test(test_success_and_absence_are_told_apart),
        cmocka_unit_test(test_412_and_409_mean_a_lost_race),
        cmocka_unit_test(test_5xx_and_slowdown_are_an_unknown_outcome_and_retryable),
        cmocka_unit_test(test_credential_errors_are_eauth_with_a_hint),
        cmocka_unit_test(test_a_missing_bucket_is_ebackend_saying_so),
        cmocka_unit_test(test_other_s3_errors_are_ebackend_naming_the_code),
        cmocka_unit_test(test_answers_that_are_not_s3_are_eproto),
        cmocka_unit_test(test_random_and_mutated_bodies_never_crash_and_give_bounded_causes),
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
