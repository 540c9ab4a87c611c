/* Unit tests of the etcd:// backend's byte-level parts and URI settings, no
 * server: base64 both ways, the lease record in a key's value, key names and
 * prefix ranges, printable copies, the set of resources held by others,
 * and the endpoint list, prefix, user and TLS parameters taken from the raw URI. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#ifdef REIGN_WITH_ETCD

#include "../../backends/etcd/etcd_codec.h"
#include "../../backends/etcd/etcd_config.h"
#include "../../backends/etcd/etcd_held.h"
#include "reign/backend.h"

/* ---- base64 ----------------------------------------------------------------- */

static void test_base64_encodes_the_rfc_4648_vectors(void **state)
{
    (void)state;
    static const char *const in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const out[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
                                      "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        char *e = reign_etcd_b64_encode(in[i], strlen(in[i]));
        assert_non_null(e);
        assert_string_equal(e, out[i]);
        free(e);
    }
}

static void test_base64_round_trips_every_byte_value(void **state)
{
    (void)state;
    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    for (size_t len = 0; len <= 256; len += 37) {
        char *e = reign_etcd_b64_encode(all, len);
        assert_non_null(e);
        unsigned char *d = NULL;
        size_t dl = 0;
        assert_int_equal(reign_etcd_b64_decode(e, strlen(e), &d, &dl), REIGN_OK);
        assert_int_equal(dl, len);
        assert_memory_equal(d, all, len);
        assert_int_equal(d[dl], 0);
        free(d);
        free(e);
    }
}

static void test_base64_decodes_url_safe_and_unpadded_text(void **state)
{
    (void)state;
    unsigned char *d = NULL;
    size_t dl = 0;
    assert_int_equal(reign_etcd_b64_decode("-_8", 3, &d, &dl), REIGN_OK);
    assert_int_equal(dl, 2);
    assert_int_equal(d[0], 0xfb);
    assert_int_equal(d[1], 0xff);
    free(d);
    assert_int_equal(reign_etcd_b64_decode("Zm9vYg", 6, &d, &dl), REIGN_OK);
    assert_int_equal(dl, 4);
    assert_memory_equal(d, "foob", 4);
    free(d);
}

static void test_base64_refuses_garbage_with_eproto(void **state)
{
    (void)state;
    static const char *const bad[] = {"Zm9v!", "Z", "Zm9vY", "Zg=", "Z===", "Zh==", " Zm9v",
                                      "Zm\n9v"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        unsigned char *d = (unsigned char *)"untouched";
        size_t dl = 77;
        assert_int_equal(reign_etcd_b64_decode(bad[i], strlen(bad[i]), &d, &dl), REIGN_EPROTO);
        assert_string_equal((char *)d, "untouched");
        assert_int_equal(dl, 77);
    }
}

/* ---- the lease record ---------------------------------------------------------- */

static void test_value_holds_holder_and_metadata_with_any_bytes(void **state)
{
    (void)state;
    const char *holder = "host:12:ab\x01:\xff";
    const char *meta = "10.0.0.5:8080 {\"x\":1}:\n";
    size_t len = 0;
    char *v = reign_etcd_value_encode(holder, meta, &len);
    assert_non_null(v);
    assert_memory_equal(v, "reign1:13:", 10);
    char *h = NULL, *m = NULL;
    char err[128];
    assert_int_equal(reign_etcd_value_decode((unsigned char *)v, len, &h, &m, err, sizeof err),
                     REIGN_OK);
    assert_string_equal(h, holder);
    assert_string_equal(m, meta);
    free(h);
    free(m);
    free(v);
}

static void test_value_with_empty_metadata_decodes_to_an_empty_string(void **state)
{
    (void)state;
    size_t len = 0;
    char *v = reign_etcd_value_encode("me", NULL, &len);
    assert_non_null(v);
    assert_string_equal(v, "reign1:2:me");
    char *h = NULL, *m = NULL;
    char err[128];
    assert_int_equal(reign_etcd_value_decode((unsigned char *)v, len, &h, &m, err, sizeof err),
                     REIGN_OK);
    assert_string_equal(h, "me");
    assert_string_equal(m, "");
    free(h);
    free(m);
    free(v);
}

static void test_values_that_are_not_lease_records_are_eproto(void **state)
{
    (void)state;
    static const char *const bad[] = {"", "hello", "reign1:", "reign1:x:ab", "reign1:5:ab",
                                      "reign1:0:", "reign1:2ab", "reign2:1:a",
                                      "reign1:99999999999999999999999:a"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *h = NULL, *m = NULL;
        char err[128] = "";
        assert_int_equal(reign_etcd_value_decode((const unsigned char *)bad[i], strlen(bad[i]), &h,
                                                 &m, err, sizeof err),
                         REIGN_EPROTO);
        assert_null(h);
        assert_null(m);
        assert_true(strlen(err) > 0);
    }
    char *h = NULL, *m = NULL;
    char err[128];
    assert_int_equal(reign_etcd_value_decode((const unsigned char *)"reign1:1:a\0b", 12, &h, &m,
                                             err, sizeof err),
                     REIGN_EPROTO);
}

/* ---- keys ------------------------------------------------------------------------ */

static void test_key_is_prefix_slash_resource_and_strips_back(void **state)
{
    (void)state;
    size_t len = 0;
    char *k = reign_etcd_key("/reign/leases", "a/../b\x01", 7, &len);
    assert_non_null(k);
    assert_int_equal(len, 21);
    assert_memory_equal(k, "/reign/leases/a/../b\x01", 21);
    const unsigned char *res = NULL;
    size_t rl = 0;
    assert_int_equal(reign_etcd_key_resource("/reign/leases", (unsigned char *)k, len, &res, &rl),
                     0);
    assert_int_equal(rl, 7);
    assert_memory_equal(res, "a/../b\x01", 7);
    free(k);
}

static void test_keys_outside_the_prefix_name_no_resource(void **state)
{
    (void)state;
    const unsigned char *res = NULL;
    size_t rl = 0;
    assert_int_equal(reign_etcd_key_resource("/p", (const unsigned char *)"/p/", 3, &res, &rl), -1);
    assert_int_equal(reign_etcd_key_resource("/p", (const unsigned char *)"/px/a", 5, &res, &rl),
                     -1);
    assert_int_equal(reign_etcd_key_resource("/p", (const unsigned char *)"/q/a", 4, &res, &rl),
                     -1);
    assert_int_equal(reign_etcd_key_resource("/p", (const unsigned char *)"/p", 2, &res, &rl), -1);
}

static void test_prefix_end_bumps_the_last_byte_and_skips_ff(void **state)
{
    (void)state;
    size_t len = 0;
    char *e = reign_etcd_prefix_end("/reign/leases/", 14, &len);
    assert_non_null(e);
    assert_int_equal(len, 14);
    assert_memory_equal(e, "/reign/leases0", 14);
    free(e);
    e = reign_etcd_prefix_end("a\xff\xff", 3, &len);
    assert_int_equal(len, 1);
    assert_memory_equal(e, "b", 1);
    free(e);
    e = reign_etcd_prefix_end("\xff", 1, &len);
    assert_int_equal(len, 1);
    assert_int_equal(e[0], 0);
    free(e);
}

/* ---- URI settings ------------------------------------------------------------------ */

typedef struct cfg_fixture {
    reign_backend_config cfg;
    reign_uri_param params[4];
    char names[4][32];
    char values[4][256];
} cfg_fixture;

/* A config as the core would give it for `uri` with query parameters given
 * as "name=value" strings (NULL-terminated). */
static void cfg_make(cfg_fixture *f, const char *scheme, const char *uri, const char *const *params)
{
    memset(f, 0, sizeof *f);
    f->cfg.uri = uri;
    f->cfg.uri_redacted = "etcd://(redacted)";
    f->cfg.scheme = scheme;
    f->cfg.path = "";
    f->cfg.instance_id = "me";
    f->cfg.metadata = "";
    f->cfg.ttl_ms = 10000;
    f->cfg.op_timeout_ms = 3000;
    for (size_t i = 0; params != NULL && params[i] != NULL && i < 4; i++) {
        const char *eq = strchr(params[i], '=');
        snprintf(f->names[i], sizeof f->names[i], "%.*s", (int)(eq - params[i]), params[i]);
        snprintf(f->values[i], sizeof f->values[i], "%s", eq + 1);
        f->params[i] = (reign_uri_param){f->names[i], f->values[i], 0};
        f->cfg.n_params = i + 1;
    }
    f->cfg.params = f->params;
}

static void test_endpoint_list_is_split_on_commas_with_default_ports(void **state)
{
    (void)state;
    cfg_fixture f;
    cfg_make(&f, "etcd", "etcd://u:p%40ss@h1:2381,10.0.0.2,[::1]:2390/apps/x?ttl=5s", NULL);
    etcd_settings s;
    char err[256] = "";
    assert_int_equal(reign_etcd_settings_parse(&f.cfg, &s, err, sizeof err), REIGN_OK);
    assert_int_equal(s.n_endpoints, 3);
    assert_string_equal(s.endpoints[0], "http://h1:2381");
    assert_string_equal(s.endpoints[1], "http://10.0.0.2:2379");
    assert_string_equal(s.endpoints[2], "http://[::1]:2390");
    assert_string_equal(s.user, "u");
    assert_string_equal(s.password, "p@ss");
    assert_string_equal(s.prefix, "/apps/x");
    assert_int_equal(s.max_txn_ops, 128);
    assert_false(s.tls);
    reign_etcd_settings_free(&s);
}

static void test_etcds_uses_https_and_no_host_means_localhost(void **state)
{
    (void)state;
    cfg_fixture f;
    cfg_make(&f, "etcds", "etcds:///", NULL);
    etcd_settings s;
    char err[256] = "";
    assert_int_equal(reign_etcd_settings_parse(&f.cfg, &s, err, sizeof err), REIGN_OK);
    assert_int_equal(s.n_endpoints, 1);
    assert_string_equal(s.endpoints[0], "https://127.0.0.1:2379");
    assert_true(s.tls);
    assert_null(s.user);
    assert_string_equal(s.prefix, "/reign/leases");
    reign_etcd_settings_free(&s);
}

static void test_prefix_comes_from_path_or_parameter_without_trailing_slash(void **state)
{
    (void)state;
    static const char *const p1[] = {"prefix=/a/b/", NULL};
    cfg_fixture f;
    etcd_settings s;
    char err[256] = "";
    cfg_make(&f, "etcd", "etcd://h?prefix=/a/b/", p1);
    assert_int_equal(reign_etcd_settings_parse(&f.cfg, &s, err, sizeof err), REIGN_OK);
    assert_string_equal(s.prefix, "/a/b");
    assert_int_equal(f.params[0].used, 1);
    reign_etcd_settings_free(&s);

    cfg_make(&f, "etcd", "etcd://h/a%2Fb%20c//", NULL);
    assert_int_equal(reign_etcd_settings_parse(&f.cfg, &s, err, sizeof err), REIGN_OK);
    assert_string_equal(s.prefix, "/a/b c");
    reign_etcd_settings_free(&s);

    static const char *const p2[] = {"prefix=/other", NULL};
    cfg_make(&f, "etcd", "etcd://h/mine?prefix=/other", p2);
    assert_int_equal(reign_etcd_settings_parse(&f.cfg, &s, err, sizeof err), REIGN_EURI);
    assert_non_null(strstr(err, "two different prefixes"));
}

static void test_bad_endpoint_lists_are_euri_naming_the_endpoint(void **state)
{
    (void)state;
    static const struct {
        const char *uri;
        const char *says;
    } cases[] = {
        {"etcd://h1:2379,,h2", "empty endpoint"},
        {"etcd://h1:2379,", "empty endpoint"},
        {"etcd://h1:0", "not 1..65535"},
        {"etcd://h1:65536", "not 1..65535"},
        {"etcd://h1:12a", "bad port"},
        {"etcd://h1:", "bad port"},
        {"etcd://::1:2379", "brackets"},
        {"etcd://[::1", "closing ']'"},
        {"etcd://[zz]:1", "not an IPv6"},
        {"etcd://h%20x", "bad character"},
        {"etcd://:2379", "no host"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cfg_fixture f;
        cfg_make(&f, "etcd", cases[i].uri, NULL);
        etcd_settings s;
        char err[256] = "";
        int rc = reign_etcd_settings_parse(&f.cfg, &s, err, sizeof err);
        if (rc != REIGN_EURI || strstr(err, cases[i].says) == NULL)
            fail_msg("%s: got %d \"%s\", expected REIGN_EURI saying \"%s\"", cases[i].uri, rc,
                     err, cases[i].says);
        assert_non_null(strstr(err, "etcd://(redacted)"));
    }
}

static void test_tls_files_need_etcds_and_come_in_pairs(void **state)
{
    (void)state;
    static const char *const ca[] = {"cacert=/etc/hostname", NULL};
    static const char *const cert_only[] = {"cert=/etc/hostname", NULL};
    static const char *const missing[] = {"cacert=/nonexistent/ca.pem", NULL};
    cfg_fixture f;
    etcd_settings s;
    char err[256] = "";
    cfg_make(&f, "etcd", "etcd://h", ca);
    assert_int_equal(reign_etcd_settings_parse(&f.cfg, &s, err, sizeof err), REIGN_EURI);
    assert_non_null(strstr(err, "needs etcds://"));

    unsetenv("ETCDCTL_CACERT");
    unsetenv("ETCDCTL_CERT");
    unsetenv("ETCDCTL_KEY");
    cfg_make(&f, "etcds", "etcds://h", ca);
    assert_int_equal(reign_etcd_settings_parse(&f.cfg, &s, err, sizeof err), REIGN_OK);
    assert_string_equal(s.cacert, "/etc/hostname");
    assert_null(s.cert);
    reign_etcd_settings_free(&s);

    cfg_make(&f, "etcds", "etcds://h", cert_only);
    assert_int_equal(reign_etcd_settings_parse(&f.cfg, &s, err, sizeof err), REIGN_EINVAL);
    assert_non_null(strstr(err, "both cert= and key="));

    cfg_make(&f, "etcds", "etcds://h", missing);
    assert_int_equal(reign_etcd_settings_parse(&f.cfg, &s, err, sizeof err), REIGN_EINVAL);
    assert_non_null(strstr(err, "/nonexistent/ca.pem"));

    setenv("ETCDCTL_CACERT", "/etc/hostname", 1);
    cfg_make(&f, "etcds", "etcds://h", NULL);
    assert_int_equal(reign_etcd_settings_parse(&f.cfg, &s, err, sizeof err), REIGN_OK);
    assert_string_equal(s.cacert, "/etc/hostname");
    reign_etcd_settings_free(&s);
    cfg_make(&f, "etcd", "etcd://h", NULL);
    assert_int_equal(reign_etcd_settings_parse(&f.cfg, &s, err, sizeof err), REIGN_OK);
    assert_null(s.cacert); /* ETCDCTL_* only matter for etcds:// */
    reign_etcd_settings_free(&s);
    unsetenv("ETCDCTL_CACERT");
}

static void test_user_from_the_core_wins_and_a_lone_password_is_refused(void **state)
{
    (void)state;
    cfg_fixture f;
    etcd_settings s;
    char err[256] = "";
    cfg_make(&f, "etcd", "etcd://raw:rawpw@h", NULL);
    f.cfg.user = "core";
    f.cfg.password = "corepw";
    assert_int_equal(reign_etcd_settings_parse(&f.cfg, &s, err, sizeof err), REIGN_OK);
    assert_string_equal(s.user, "core");
    assert_string_equal(s.password, "corepw");
    reign_etcd_settings_free(&s);

    cfg_make(&f, "etcd", "etcd://:secret@h", NULL);
    assert_int_equal(reign_etcd_settings_parse(&f.cfg, &s, err, sizeof err), REIGN_EURI);
    assert_non_null(strstr(err, "needs a user name"));
    assert_null(strstr(err, "secret"));
}

static void test_max_txn_ops_must_be_a_positive_number(void **state)
{
    (void)state;
    static const char *const good[] = {"max_txn_ops=64", NULL};
    static const char *const bad[] = {"max_txn_ops=0", NULL};
    cfg_fixture f;
    etcd_settings s;
    char err[256] = "";
    cfg_make(&f, "etcd", "etcd://h", good);
    assert_int_equal(reign_etcd_settings_parse(&f.cfg, &s, err, sizeof err), REIGN_OK);
    assert_int_equal(s.max_txn_ops, 64);
    reign_etcd_settings_free(&s);
    cfg_make(&f, "etcd", "etcd://h", bad);
    assert_int_equal(reign_etcd_settings_parse(&f.cfg, &s, err, sizeof err), REIGN_EURI);
    assert_non_null(strstr(err, "max_txn_ops=0"));
}

/* ---- the held set ------------------------------------------------------------------- */

static void test_held_set_matches_a_reference_through_random_adds_and_removes(void **state)
{
    (void)state;
    enum { N = 600 };
    static bool in[N];
    char names[N][24];
    for (int i = 0; i < N; i++)
        snprintf(names[i], sizeof names[i], "res/%d\x01%c", i, 'a' + i % 26);
    etcd_held set = {0};
    uint64_t x = 42;
    for (int step = 0; step < 20000; step++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int i = (int)(x % N);
        size_t len = strlen(names[i]);
        if (x & 0x100000) {
            assert_true(reign_etcd_held_add(&set, names[i], len));
            in[i] = true;
        } else {
            reign_etcd_held_remove(&set, names[i], len);
            in[i] = false;
        }
        if (step % 997 == 0) {
            size_t n = 0;
            for (int k = 0; k < N; k++) {
                if (reign_etcd_held_contains(&set, names[k], strlen(names[k])) != in[k])
                    fail_msg("step %d: %s is %s the set, expected %s", step, names[k],
                             in[k] ? "not in" : "in", in[k] ? "in" : "out");
                n += in[k];
            }
            assert_int_equal(set.n, n);
        }
    }
    reign_etcd_held_clear(&set);
    assert_int_equal(set.n, 0);
    assert_false(reign_etcd_held_contains(&set, names[0], strlen(names[0])));
    assert_true(reign_etcd_held_add(&set, "", 0));
    assert_true(reign_etcd_held_contains(&set, "", 0));
    reign_etcd_held_free(&set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_held_set_matches_a_reference_through_random_adds_and_removes),
        cmocka_unit_test(test_base64_encodes_the_rfc_4648_vectors),
        cmocka_unit_test(test_base64_round_trips_every_byte_value),
        cmocka_unit_test(test_base64_decodes_url_safe_and_unpadded_text),
        cmocka_unit_test(test_base64_refuses_garbage_with_eproto),
        cmocka_unit_test(test_value_holds_holder_and_metadata_with_any_bytes),
        cmocka_unit_test(test_value_with_empty_metadata_decodes_to_an_empty_string),
        cmocka_unit_test(test_values_that_are_not_lease_records_are_eproto),
        cmocka_unit_test(test_key_is_prefix_slash_resource_and_strips_back),
        cmocka_unit_test(test_keys_outside_the_prefix_name_no_resource),
        cmocka_unit_test(test_prefix_end_bumps_the_last_byte_and_skips_ff),
        cmocka_unit_test(test_endpoint_list_is_split_on_commas_with_default_ports),
        cmocka_unit_test(test_etcds_uses_https_and_no_host_means_localhost),
        cmocka_unit_test(test_prefix_comes_from_path_or_parameter_without_trailing_slash),
        cmocka_unit_test(test_bad_endpoint_lists_are_euri_naming_the_endpoint),
        cmocka_unit_test(test_tls_files_need_etcds_and_come_in_pairs),
        cmocka_unit_test(test_user_from_the_core_wins_and_a_lone_password_is_refused),
        cmocka_unit_test(test_max_txn_ops_must_be_a_positive_number),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#else /* !REIGN_WITH_ETCD */

static void test_etcd_backend_is_not_built(void **state)
{
    (void)state;
    skip(); /* configure with -DREIGN_WITH_ETCD=ON to run these tests */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_etcd_backend_is_not_built),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#endif /* REIGN_WITH_ETCD */
