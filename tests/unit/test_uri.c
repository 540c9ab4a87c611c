/* URI parsing, option checks and status names: no server, no engine. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "reign/reign.h"
#include "uri.h"

static void test_redis_uri_splits_into_decoded_parts(void **state)
{
    (void)state;
    reign_uri u;
    assert_int_equal(reign_uri_parse("redis://us%40r:p%40ss@127.0.0.1:6379/2?prefix=a%2Fb&ttl=5s", &u),
                     REIGN_OK);
    assert_string_equal(u.scheme, "redis");
    assert_string_equal(u.user, "us@r");
    assert_string_equal(u.password, "p@ss");
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6379);
    assert_string_equal(u.path, "/2");
    assert_int_equal(u.n_params, 2);
    assert_string_equal(u.params[0].name, "prefix");
    assert_string_equal(u.params[0].value, "a/b");
    assert_null(strstr(u.redacted, "p%40ss"));
    assert_non_null(strstr(u.redacted, "***"));
    reign_uri_free(&u);
}

static void test_uri_without_authority_keeps_the_whole_path(void **state)
{
    (void)state;
    reign_uri u;
    assert_int_equal(reign_uri_parse("unix:///run/redis/r.sock?db=1", &u), REIGN_OK);
    assert_null(u.host);
    assert_string_equal(u.path, "/run/redis/r.sock");
    reign_uri_free(&u);
    assert_int_equal(reign_uri_parse("noop://", &u), REIGN_OK);
    assert_null(u.host);
    assert_string_equal(u.path, "");
    reign_uri_free(&u);
    assert_int_equal(reign_uri_parse("file:///tmp/a%20b", &u), REIGN_OK);
    assert_string_equal(u.path, "/tmp/a b");
    reign_uri_free(&u);
}

static void test_several_hosts_give_the_first_and_keep_the_raw_list(void **state)
{
    (void)state;
    reign_uri u;
    assert_int_equal(reign_uri_parse("etcd://root:pw@h1:2379,h2:2380,h3:2381/pfx?ttl=5", &u),
                     REIGN_OK);
    assert_string_equal(u.host, "h1");
    assert_int_equal(u.port, 2379);
    assert_string_equal(u.password, "pw");
    assert_string_equal(u.path, "/pfx");
    assert_string_equal(u.raw, "etcd://root:pw@h1:2379,h2:2380,h3:2381/pfx?ttl=5");
    assert_string_equal(u.redacted, "etcd://root:***@h1:2379,h2:2380,h3:2381/pfx?ttl=5");
    reign_uri_free(&u);
}

static void test_redaction_hides_passwords_with_at_and_colon(void **state)
{
    (void)state;
    reign_uri u;
    assert_int_equal(reign_uri_parse("redis://us:er:p%40w:d@host:1/0", &u), REIGN_OK);
    assert_string_equal(u.redacted, "redis://us:***@host:1/0");
    assert_null(strstr(u.redacted, "p%40w"));
    reign_uri_free(&u);
    assert_int_equal(reign_uri_parse("redis://user@host:1", &u), REIGN_OK);
    assert_string_equal(u.redacted, "redis://user@host:1");
    assert_null(u.password);
    reign_uri_free(&u);
    assert_int_equal(reign_uri_parse("redis://[::1]:6379", &u), REIGN_OK);
    assert_string_equal(u.host, "[::1]");
    assert_int_equal(u.port, 6379);
    reign_uri_free(&u);
}

static void test_secret_query_parameters_are_redacted(void **state)
{
    (void)state;
    reign_uri u;
    assert_int_equal(reign_uri_parse("postgres://h/db?password=hunter22&sslmode=require&x_token=ab", &u),
                     REIGN_OK);
    assert_string_equal(u.redacted, "postgres://h/db?password=***&sslmode=require&x_token=***");
    assert_string_equal(u.params[0].value, "hunter22");
    reign_uri_free(&u);
}

static void test_malformed_uris_are_refused_with_a_message(void **state)
{
    (void)state;
    const char *bad[] = {"", "no-scheme", "://x", "re dis://x", "redis://h:99999",
                         "redis://h?a=%zz", "redis://h?a=1&a=2", "redis://h?=x", "mem://x?a=%00"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        reign_uri u;
        int rc = reign_uri_parse(bad[i], &u);
        if (rc != REIGN_EURI)
            fail_msg("uri '%s': rc %d, expected REIGN_EURI", bad[i], rc);
        assert_true(strlen(reign_last_error()) > 0);
    }
}

static void test_password_never_appears_in_parse_errors(void **state)
{
    (void)state;
    reign_uri u;
    assert_int_equal(reign_uri_parse("redis://u:sekrit@h:99999", &u), REIGN_EURI);
    assert_null(strstr(reign_last_error(), "sekrit"));
    assert_int_equal(reign_uri_parse("redis://u:sekrit@h?x=%zz", &u), REIGN_EURI);
    assert_null(strstr(reign_last_error(), "sekrit"));
}

static void test_durations_parse_with_units(void **state)
{
    (void)state;
    int64_t ms = 0;
    assert_int_equal(reign_parse_duration_ms("250", &ms), REIGN_OK);
    assert_int_equal(ms, 250);
    assert_int_equal(reign_parse_duration_ms("10s", &ms), REIGN_OK);
    assert_int_equal(ms, 10000);
    assert_int_equal(reign_parse_duration_ms("2m", &ms), REIGN_OK);
    assert_int_equal(ms, 120000);
    assert_int_equal(reign_parse_duration_ms("0", &ms), REIGN_EINVAL);
    assert_int_equal(reign_parse_duration_ms("-5", &ms), REIGN_EINVAL);
    assert_int_equal(reign_parse_duration_ms("5h", &ms), REIGN_EINVAL);
    assert_int_equal(reign_parse_duration_ms("99999999999999999999", &ms), REIGN_EINVAL);
}

static void test_unknown_scheme_is_refused_naming_it(void **state)
{
    (void)state;
    reign_factory *f = NULL;
    assert_int_equal(reign_factory_open("zookeeper://h:2181", NULL, &f), REIGN_EURI);
    assert_null(f);
    assert_non_null(strstr(reign_last_error(), "zookeeper"));
}

static void test_built_in_schemes_are_listed_once_each(void **state)
{
    (void)state;
    size_t n = 0;
    int file = 0, mem = 0, noop = 0;
    for (; reign_backend_scheme(n) != NULL; n++) {
        const char *s = reign_backend_scheme(n);
        file += strcmp(s, "file") == 0;
        mem += strcmp(s, "mem") == 0;
        noop += strcmp(s, "noop") == 0;
        for (size_t k = 0; k < n; k++)
            assert_string_not_equal(reign_backend_scheme(k), s);
    }
    assert_int_equal(file + mem + noop, 3); /* always built, once each */
    assert_null(reign_backend_scheme(n + 1));
    assert_null(reign_backend_scheme((size_t)-1));
}

static void test_unknown_query_parameter_is_refused_naming_it(void **state)
{
    (void)state;
    reign_factory *f = NULL;
    assert_int_equal(reign_factory_open("noop://?colour=blue", NULL, &f), REIGN_EURI);
    assert_non_null(strstr(reign_last_error(), "colour"));
}

static void test_bad_ttl_values_are_refused(void **state)
{
    (void)state;
    reign_factory *f = NULL;
    reign_options o = REIGN_OPTIONS_INIT;
    o.ttl_ms = -1;
    assert_int_equal(reign_factory_open("noop://", &o, &f), REIGN_EINVAL);
    assert_non_null(strstr(reign_last_error(), "ttl"));
    o.ttl_ms = 5;
    assert_int_equal(reign_factory_open("noop://", &o, &f), REIGN_EINVAL);
    assert_int_equal(reign_factory_open("noop://?ttl=0", NULL, &f), REIGN_EURI);
    assert_int_equal(reign_factory_open("noop://?ttl=abc", NULL, &f), REIGN_EURI);
    assert_null(f);
}

static void test_options_version_zero_or_newer_is_refused(void **state)
{
    (void)state;
    reign_factory *f = NULL;
    reign_options o = REIGN_OPTIONS_INIT;
    o.version = 0;
    assert_int_equal(reign_factory_open("noop://", &o, &f), REIGN_EINVAL);
    assert_non_null(strstr(reign_last_error(), "version"));
    o.version = REIGN_OPTIONS_VERSION + 1;
    assert_int_equal(reign_factory_open("noop://", &o, &f), REIGN_EINVAL);
    o = (reign_options)REIGN_OPTIONS_INIT;
    o.max_drift = 0.7;
    assert_int_equal(reign_factory_open("noop://", &o, &f), REIGN_EINVAL);
    o = (reign_options)REIGN_OPTIONS_INIT;
    o.ttl_ms = 1000;
    o.safety_margin_ms = 900;
    assert_int_equal(reign_factory_open("noop://", &o, &f), REIGN_EINVAL);
}

static void test_uri_ttl_applies_unless_options_say_otherwise(void **state)
{
    (void)state;
    reign_factory *f = NULL;
    assert_int_equal(reign_factory_open("noop://?ttl=3s", NULL, &f), REIGN_OK);
    assert_int_equal(reign_factory_ttl_ms(f), 3000);
    assert_int_equal(reign_factory_close(f), REIGN_OK);
    reign_options o = REIGN_OPTIONS_INIT;
    o.ttl_ms = 700;
    assert_int_equal(reign_factory_open("noop://?ttl=3s", &o, &f), REIGN_OK);
    assert_int_equal(reign_factory_ttl_ms(f), 700);
    assert_int_equal(reign_factory_close(f), REIGN_OK);
}

static void test_status_names_are_never_null(void **state)
{
    (void)state;
    for (int s = -100; s <= 0; s++)
        assert_non_null(reign_status_str(s));
    assert_non_null(strstr(reign_status_str(REIGN_EBUG), "bug"));
    assert_string_equal(reign_status_str(12345), "unknown reign status");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redis_uri_splits_into_decoded_parts),
        cmocka_unit_test(test_uri_without_authority_keeps_the_whole_path),
        cmocka_unit_test(test_several_hosts_give_the_first_and_keep_the_raw_list),
        cmocka_unit_test(test_redaction_hides_passwords_with_at_and_colon),
        cmocka_unit_test(test_secret_query_parameters_are_redacted),
        cmocka_unit_test(test_malformed_uris_are_refused_with_a_message),
        cmocka_unit_test(test_password_never_appears_in_parse_errors),
        cmocka_unit_test(test_durations_parse_with_units),
        cmocka_unit_test(test_unknown_scheme_is_refused_naming_it),
        cmocka_unit_test(test_built_in_schemes_are_listed_once_each),
        cmocka_unit_test(test_unknown_query_parameter_is_refused_naming_it),
        cmocka_unit_test(test_bad_ttl_values_are_refused),
        cmocka_unit_test(test_options_version_zero_or_newer_is_refused),
        cmocka_unit_test(test_uri_ttl_applies_unless_options_say_otherwise),
        cmocka_unit_test(test_status_names_are_never_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
