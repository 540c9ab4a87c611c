/* Unit tests of the s3:// backend's configuration, no server: URI parts and
 * AWS_* variables (from a fake environment) → endpoint, addressing style,
 * Host header, request path, region and credentials; every refusal names
 * what was wrong and never shows a secret. */
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

#include "../../backends/s3/s3_config.h"

#define SECRET "s3cr3t-do-not-print"

/* A fake environment: NULL-terminated name/value pairs. */
static const char *fake_env(const char *name, void *ctx)
{
    const char *const *kv = ctx;
    for (; kv[0] != NULL; kv += 2) {
        if (strcmp(kv[0], name) == 0) {
            return kv[1];
        }
    }
    return NULL;
}

static const char *const CREDS[] = {"AWS_ACCESS_KEY_ID", "AK", "AWS_SECRET_ACCESS_KEY", SECRET, NULL};

typedef struct loaded {
    int rc;
    reign_s3_config c;
    char err[600];
} loaded;

/* Load with bucket/path/params as the core would hand them over. */
static loaded load(const char *bucket, const char *path, const char *const *params,
                   const char *const *env)
{
    static reign_uri_param ps[8];
    size_t n = 0;
    for (; params != NULL && params[2 * n] != NULL; n++) {
        ps[n] = (reign_uri_param){(char *)params[2 * n], (char *)params[2 * n + 1], 0};
    }
    reign_backend_config cfg = {.uri = "s3://test", .uri_redacted = "s3://test", .scheme = "s3",
                                .host = bucket, .path = path, .params = ps, .n_params = n,
                                .instance_id = "me", .metadata = "", .ttl_ms = 1000,
                                .op_timeout_ms = 300};
    loaded l;
    memset(&l, 0, sizeof l);
    l.rc = reign_s3_config_load(&cfg, fake_env, (void *)env, &l.c, l.err, sizeof l.err);
    assert_null(strstr(l.err, SECRET));
    return l;
}

static void expect_refused(loaded l, int status, const char *needle)
{
    if (l.rc != status || strstr(l.err, needle) == NULL) {
        print_error("got %s \"%s\"; wanted %s with \"%s\"\n", reign_status_str(l.rc), l.err,
                    reign_status_str(status), needle);
        fail();
    }
    assert_null(l.c.bucket);
}

static void test_a_custom_endpoint_defaults_to_path_style(void **state)
{
    (void)state;
    const char *params[] = {"endpoint", "http://127.0.0.1:7480", NULL};
    loaded l = load("reign", "/test", params, CREDS);
    assert_int_equal(l.rc, REIGN_OK);
    assert_true(l.c.path_style);
    assert_false(l.c.https);
    assert_string_equal(l.c.host_header, "127.0.0.1:7480");
    assert_string_equal(l.c.url_base, "http://127.0.0.1:7480");
    assert_string_equal(l.c.path_base, "/reign/test/");
    assert_string_equal(l.c.prefix, "test/");
    assert_string_equal(l.c.region, "us-east-1");
    assert_string_equal(l.c.access_key, "AK");
    assert_string_equal(l.c.secret_key, SECRET);
    assert_null(l.c.session_token);
    reign_s3_config_free(&l.c);
    reign_s3_config_free(&l.c); /* idempotent */
}

static void test_aws_itself_is_https_with_virtual_host_addressing(void **state)
{
    (void)state;
    const char *env[] = {"AWS_ACCESS_KEY_ID", "AK", "AWS_SECRET_ACCESS_KEY", SECRET,
                         "AWS_REGION", "eu-west-3", "AWS_SESSION_TOKEN", "tok", NULL};
    loaded l = load("my-bucket", "", NULL, env);
    assert_int_equal(l.rc, REIGN_OK);
    assert_false(l.c.path_style);
    assert_true(l.c.https);
    assert_string_equal(l.c.host_header, "my-bucket.s3.eu-west-3.amazonaws.com");
    assert_string_equal(l.c.url_base, "https://my-bucket.s3.eu-west-3.amazonaws.com");
    assert_string_equal(l.c.path_base, "/");
    assert_string_equal(l.c.prefix, "");
    assert_string_equal(l.c.session_token, "tok");
    reign_s3_config_free(&l.c);
}

static void test_uri_parameters_win_over_the_environment(void **state)
{
    (void)state;
    const char *env[] = {"AWS_ACCESS_KEY_ID", "AK", "AWS_SECRET_ACCESS_KEY", SECRET,
                         "AWS_REGION", "eu-west-3", "AWS_DEFAULT_REGION", "ap-south-1",
                         "AWS_ENDPOINT_URL", "http://general:1", "AWS_ENDPOINT_URL_S3",
                         "https://s3only.example:8443", NULL};
    loaded l = load("bkt", "/a/b/", NULL, env);
    assert_int_equal(l.rc, REIGN_OK);
    assert_string_equal(l.c.region, "eu-west-3");
    assert_string_equal(l.c.host_header, "s3only.example:8443");
    assert_string_equal(l.c.path_base, "/bkt/a/b/");
    reign_s3_config_free(&l.c);

    const char *params[] = {"region", "us-west-2", "endpoint", "https://minio.example",
                            "path_style", "0", NULL};
    l = load("bkt", "/x", params, env);
    assert_int_equal(l.rc, REIGN_OK);
    assert_string_equal(l.c.region, "us-west-2");
    assert_false(l.c.path_style);
    assert_string_equal(l.c.host_header, "bkt.minio.example");
    assert_string_equal(l.c.path_base, "/x/");
    reign_s3_config_free(&l.c);

    const char *env2[] = {"AWS_ACCESS_KEY_ID", "AK", "AWS_SECRET_ACCESS_KEY", SECRET,
                          "AWS_DEFAULT_REGION", "ap-south-1", "AWS_ENDPOINT_URL", "http://general:1",
                          NULL};
    l = load("bkt", "", NULL, env2);
    assert_int_equal(l.rc, REIGN_OK);
    assert_string_equal(l.c.region, "ap-south-1");
    assert_string_equal(l.c.host_header, "general:1");
    reign_s3_config_free(&l.c);
}

static void test_a_prefix_is_percent_encoded_in_the_path_only(void **state)
{
    (void)state;
    const char *params[] = {"endpoint", "http://h", NULL};
    loaded l = load("b", "/a b/c+d", params, CREDS);
    assert_int_equal(l.rc, REIGN_OK);
    assert_string_equal(l.c.prefix, "a b/c+d/");
    assert_string_equal(l.c.path_base, "/b/a%20b/c%2Bd/");
    reign_s3_config_free(&l.c);
}

static void test_credentials_in_the_uri_are_refused(void **state)
{
    (void)state;
    static reign_uri_param none[1];
    reign_backend_config cfg = {.uri = "s3://AK:" SECRET "@b", .uri_redacted = "s3://AK:***@b",
                                .scheme = "s3", .user = "AK", .password = SECRET, .host = "b",
                                .path = "", .params = none, .instance_id = "me", .ttl_ms = 1000};
    reign_s3_config c;
    char err[300];
    assert_int_equal(reign_s3_config_load(&cfg, fake_env, (void *)CREDS, &c, err, sizeof err),
                     REIGN_EURI);
    assert_non_null(strstr(err, "AWS_ACCESS_KEY_ID"));
    assert_null(strstr(err, SECRET));
}

static void test_missing_credentials_are_eauth_naming_the_variables(void **state)
{
    (void)state;
    const char *env[] = {"AWS_ACCESS_KEY_ID", "AK", NULL};
    expect_refused(load("bkt", "", NULL, env), REIGN_EAUTH, "AWS_SECRET_ACCESS_KEY");
}

static void test_bad_uri_parts_are_euri_naming_the_part(void **state)
{
    (void)state;
    const char *ftp[] = {"endpoint", "ftp://h", NULL};
    expect_refused(load("b", "", ftp, CREDS), REIGN_EURI, "http:// or https://");
    const char *garbage[] = {"endpoint", "::::", NULL};
    expect_refused(load("b", "", garbage, CREDS), REIGN_EURI, "is not a URL");
    const char *pathy[] = {"endpoint", "http://h/s3", NULL};
    expect_refused(load("b", "", pathy, CREDS), REIGN_EURI, "no path");
    const char *userinfo[] = {"endpoint", "http://u:" SECRET "@h", NULL};
    expect_refused(load("b", "", userinfo, CREDS), REIGN_EURI, "must not hold credentials");
    const char *ps[] = {"path_style", "maybe", NULL};
    expect_refused(load("b", "", ps, CREDS), REIGN_EURI, "path_style=maybe");
    const char *region[] = {"region", "us east", NULL};
    expect_refused(load("b", "", region, CREDS), REIGN_EURI, "region");
    expect_refused(load(NULL, "", NULL, CREDS), REIGN_EURI, "no bucket");
    expect_refused(load("b/c", "", NULL, CREDS), REIGN_EURI, "not a bucket name");
    expect_refused(load("b", "/a/../c", NULL, CREDS), REIGN_EURI, "'..'");
    expect_refused(load("b", "/a//c", NULL, CREDS), REIGN_EURI, "empty");
    expect_refused(load("b", "/./c", NULL, CREDS), REIGN_EURI, "'.'");
    expect_refused(load("b", "/a\001", NULL, CREDS), REIGN_EURI, "control");
}

static void test_a_bucket_unfit_for_a_host_name_needs_path_style(void **state)
{
    (void)state;
    /* dots break AWS's wildcard certificate; underscores are no host name */
    expect_refused(load("my.bucket", "", NULL, CREDS), REIGN_EURI, "path_style=1");
    expect_refused(load("My_Bucket", "", NULL, CREDS), REIGN_EURI, "path_style=1");
    expect_refused(load("ab", "", NULL, CREDS), REIGN_EURI, "3 to 63");
    const char *ps[] = {"path_style", "1", NULL};
    loaded l = load("my.bucket", "", ps, CREDS);
    assert_int_equal(l.rc, REIGN_OK);
    assert_string_equal(l.c.host_header, "s3.us-east-1.amazonaws.com");
    assert_string_equal(l.c.path_base, "/my.bucket/");
    reign_s3_config_free(&l.c);
}

static void test_an_ipv6_endpoint_keeps_its_brackets(void **state)
{
    (void)state;
    const char *params[] = {"endpoint", "http://[::1]:7480", NULL};
    loaded l = load("b", "", params, CREDS);
    assert_int_equal(l.rc, REIGN_OK);
    assert_string_equal(l.c.host_header, "[::1]:7480");
    assert_string_equal(l.c.url_base, "http://[::1]:7480");
    reign_s3_config_free(&l.c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_custom_endpoint_defaults_to_path_style),
        cmocka_unit_test(test_aws_itself_is_https_with_virtual_host_addressing),
        cmocka_unit_test(test_uri_parameters_win_over_the_environment),
        cmocka_unit_test(test_a_prefix_is_percent_encoded_in_the_path_only),
        cmocka_unit_test(test_credentials_in_the_uri_are_refused),
        cmocka_unit_test(test_missing_credentials_are_eauth_naming_the_variables),
        cmocka_unit_test(test_bad_uri_parts_are_euri_naming_the_part),
        cmocka_unit_test(test_a_bucket_unfit_for_a_host_name_needs_path_style),
        cmocka_unit_test(test_an_ipv6_endpoint_keeps_its_brackets),
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
