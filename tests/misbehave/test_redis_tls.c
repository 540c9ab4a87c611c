/* rediss:// when TLS is set up wrong: an untrusted CA, a name the
 * certificate does not carry (sni=), no client certificate, a plaintext
 * server behind rediss://, a TLS server behind redis://, unusable files.
 * Each open fails with its own status and a message naming the cause,
 * within the op timeout: never a hang. A right SNI and the right CA work.
 *
 * Starts its own TLS redis-server (REDIS_TLS=1 scripts/servers/redis.sh,
 * client certificates required) and a plaintext one; skips, saying why,
 * when they cannot run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "misbehave.h"
#include "reign/reign.h"

#define OP_TIMEOUT_MS 1000

static char tls_dir[64], plain_dir[64];
static int tls_port, plain_port;
static char skip_reason[300];

static int setup(void **state)
{
    (void)state;
    tls_port = misbehave_server_start("redis", "REDIS_TLS=1", tls_dir, skip_reason,
                                      sizeof skip_reason);
    if (tls_port != 0)
        plain_port =
            misbehave_server_start("redis", "", plain_dir, skip_reason, sizeof skip_reason);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    misbehave_server_stop("redis", tls_dir);
    misbehave_server_stop("redis", plain_dir);
    return 0;
}

#define SKIP_WITHOUT_SERVERS()                                                                \
    do {                                                                                      \
        if (tls_port == 0 || plain_port == 0) {                                               \
            print_message("skipped: no redis-server: %s\n", skip_reason);                   \
            skip();                                                                           \
        }                                                                                     \
    } while (0)

static void quiet(int level, const char *component, const char *message, void *payload)
{
    (void)level;
    (void)component;
    (void)message;
    (void)payload;
}

/* Open `uri`: its status, with the time it took in *took_ms. */
static int open_uri(const char *uri, int64_t *took_ms)
{
    reign_options o = REIGN_OPTIONS_INIT;
    o.instance_id = "tls-test";
    o.ttl_ms = 3000;
    o.op_timeout_ms = OP_TIMEOUT_MS;
    o.logger = quiet;
    reign_factory *f = NULL;
    int64_t t0 = reign_monotonic_ms();
    int rc = reign_factory_open(uri, &o, &f);
    *took_ms = reign_monotonic_ms() - t0;
    if (rc == REIGN_OK)
        reign_factory_close(f);
    return rc;
}

/* The files of the TLS server's certificates: DIR/tls/NAME. */
static const char *file(const char *name)
{
    static char buf[4][160];
    static int next;
    char *b = buf[next++ % 4];
    snprintf(b, sizeof buf[0], "%s/tls/%s", tls_dir, name);
    return b;
}

/* Opening fails with `want`, quickly, naming `words` in the message. */
static void refused(const char *uri, int want, const char *words)
{
    int64_t took = 0;
    int rc = open_uri(uri, &took);
    if (rc != want)
        fail_msg("%s: %s (%s), expected %s", uri, reign_status_str(rc), reign_last_error(),
                 reign_status_str(want));
    if (strstr(reign_last_error(), words) == NULL)
        fail_msg("%s: the message does not say \"%s\": %s", uri, words, reign_last_error());
    if (took > 2 * OP_TIMEOUT_MS + 500)
        fail_msg("%s: took %lld ms with op_timeout_ms %d", uri, (long long)took, OP_TIMEOUT_MS);
    print_message("  %s (%lld ms): %s\n", reign_status_str(rc), (long long)took,
                  reign_last_error());
}

static void test_the_right_ca_and_client_certificate_work(void **state)
{
    (void)state;
    SKIP_WITHOUT_SERVERS();
    char uri[600];
    snprintf(uri, sizeof uri, "rediss://127.0.0.1:%d?cacert=%s&cert=%s&key=%s", tls_port,
             file("ca.crt"), file("client.crt"), file("client.key"));
    int64_t took = 0;
    int rc = open_uri(uri, &took);
    if (rc != REIGN_OK)
        fail_msg("%s: %s", uri, reign_last_error());
}

static void test_an_sni_the_certificate_names_works(void **state)
{
    (void)state;
    SKIP_WITHOUT_SERVERS();
    char uri[600];
    snprintf(uri, sizeof uri, "rediss://127.0.0.1:%d?cacert=%s&cert=%s&key=%s&sni=redis.test",
             tls_port, file("ca.crt"), file("client.crt"), file("client.key"));
    int64_t took = 0;
    if (open_uri(uri, &took) != REIGN_OK)
        fail_msg("%s: %s", uri, reign_last_error());
}

static void test_an_untrusted_ca_is_refused(void **state)
{
    (void)state;
    SKIP_WITHOUT_SERVERS();
    char uri[600];
    snprintf(uri, sizeof uri, "rediss://127.0.0.1:%d?cacert=%s&cert=%s&key=%s", tls_port,
             file("other-ca.crt"), file("client.crt"), file("client.key"));
    refused(uri, REIGN_EAUTH, "not trusted");
}

static void test_the_system_cas_do_not_trust_a_private_ca(void **state)
{
    (void)state;
    SKIP_WITHOUT_SERVERS();
    char uri[600];
    snprintf(uri, sizeof uri, "rediss://127.0.0.1:%d?cert=%s&key=%s", tls_port, file("client.crt"),
             file("client.key"));
    refused(uri, REIGN_EAUTH, "not trusted");
}

static void test_a_wrong_sni_is_refused(void **state)
{
    (void)state;
    SKIP_WITHOUT_SERVERS();
    char uri[600];
    snprintf(uri, sizeof uri, "rediss://127.0.0.1:%d?cacert=%s&cert=%s&key=%s&sni=wrong.example",
             tls_port, file("ca.crt"), file("client.crt"), file("client.key"));
    refused(uri, REIGN_EAUTH, "wrong.example");
}

static void test_no_client_certificate_is_refused_by_the_server(void **state)
{
    (void)state;
    SKIP_WITHOUT_SERVERS();
    char uri[600];
    snprintf(uri, sizeof uri, "rediss://127.0.0.1:%d?cacert=%s", tls_port, file("ca.crt"));
    int64_t took = 0;
    int rc = open_uri(uri, &took);
    /* TLS 1.3 says it after the handshake, in an alert; some servers just hang up */
    if (rc != REIGN_EAUTH && rc != REIGN_EBACKEND)
        fail_msg("%s (%s)", reign_status_str(rc), reign_last_error());
    if (strstr(reign_last_error(), "cert") == NULL)
        fail_msg("the message does not name the certificate: %s", reign_last_error());
    assert_true(took <= 2 * OP_TIMEOUT_MS + 500);
    print_message("  %s (%lld ms): %s\n", reign_status_str(rc), (long long)took,
                  reign_last_error());
}

static void test_a_plain_server_behind_rediss_is_named(void **state)
{
    (void)state;
    SKIP_WITHOUT_SERVERS();
    char uri[600];
    snprintf(uri, sizeof uri, "rediss://127.0.0.1:%d?cacert=%s", plain_port, file("ca.crt"));
    /* Redis reads a ClientHello as an inline command still missing its
     * newline, and waits: the handshake times out, saying what it may be. */
    refused(uri, REIGN_EBACKEND, "redis://");
}

static void test_a_tls_server_behind_redis_is_named(void **state)
{
    (void)state;
    SKIP_WITHOUT_SERVERS();
    char uri[600];
    snprintf(uri, sizeof uri, "redis://127.0.0.1:%d", tls_port);
    int64_t took = 0;
    int rc = open_uri(uri, &took);
    if (rc != REIGN_EPROTO && rc != REIGN_EBACKEND)
        fail_msg("%s (%s)", reign_status_str(rc), reign_last_error());
    if (strstr(reign_last_error(), "rediss://") == NULL)
        fail_msg("the message does not suggest rediss://: %s", reign_last_error());
    assert_true(took <= 2 * OP_TIMEOUT_MS + 500);
    print_message("  %s (%lld ms): %s\n", reign_status_str(rc), (long long)took,
                  reign_last_error());
}

static void test_unusable_files_are_named_at_open(void **state)
{
    (void)state;
    SKIP_WITHOUT_SERVERS();
    char uri[600];
    snprintf(uri, sizeof uri, "rediss://127.0.0.1:%d?cacert=/nonexistent/ca.crt", tls_port);
    refused(uri, REIGN_EURI, "/nonexistent/ca.crt");
    snprintf(uri, sizeof uri, "rediss://127.0.0.1:%d?cacert=%s&cert=%s", tls_port, file("ca.crt"),
             file("client.crt"));
    refused(uri, REIGN_EURI, "key=");
    /* a key that does not belong to the certificate */
    snprintf(uri, sizeof uri, "rediss://127.0.0.1:%d?cacert=%s&cert=%s&key=%s", tls_port,
             file("ca.crt"), file("client.crt"), file("server.key"));
    refused(uri, REIGN_EURI, "server.key");
}

static void test_tls_parameters_need_a_tls_scheme(void **state)
{
    (void)state;
    SKIP_WITHOUT_SERVERS();
    char uri[600];
    snprintf(uri, sizeof uri, "redis://127.0.0.1:%d?cacert=%s", plain_port, file("ca.crt"));
    int64_t took = 0;
    assert_int_equal(open_uri(uri, &took), REIGN_EURI);
    assert_non_null(strstr(reign_last_error(), "cacert"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_right_ca_and_client_certificate_work),
        cmocka_unit_test(test_an_sni_the_certificate_names_works),
        cmocka_unit_test(test_an_untrusted_ca_is_refused),
        cmocka_unit_test(test_the_system_cas_do_not_trust_a_private_ca),
        cmocka_unit_test(test_a_wrong_sni_is_refused),
        cmocka_unit_test(test_no_client_certificate_is_refused_by_the_server),
        cmocka_unit_test(test_a_plain_server_behind_rediss_is_named),
        cmocka_unit_test(test_a_tls_server_behind_redis_is_named),
        cmocka_unit_test(test_unusable_files_are_named_at_open),
        cmocka_unit_test(test_tls_parameters_need_a_tls_scheme),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
