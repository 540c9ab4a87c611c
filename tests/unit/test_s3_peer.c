/* Unit tests of the s3:// backend's peer mode, no server: which advertised
 * URLs a candidate may ask, names in request paths, answers both ways (and
 * what garbage, lies and other terms give), the record's 'peer' field, the
 * table behind reign_s3_peer_answer, the built-in server over a real
 * socket, and the peer_* URI parameters. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "reign/reign.h"

#ifdef REIGN_WITH_S3

#include "../../backends/s3/s3_config.h"
#include "../../backends/s3/s3_peer.h"
#include "../../backends/s3/s3_record.h"
#include "reign/s3.h"

#define SECRET "s3cr3t-do-not-print"

static void test_only_plain_http_and_https_urls_may_be_asked(void **state)
{
    (void)state;
    char why[200];
    assert_true(reign_s3_peer_url_ok("http://10.0.0.5:8080/reign/peer", why, sizeof why));
    assert_true(reign_s3_peer_url_ok("https://app.example/x", why, sizeof why));
    assert_true(reign_s3_peer_url_ok("http://[::1]:9/reign/peer", why, sizeof why));
    const char *bad[] = {"", "ftp://h/x", "file:///etc/passwd", "http://u:p@h/x", "http://h/x?q=1",
                         "http://h/x#f", "http:///x", "http://h/ x", "http://h/\x01", "gopher://h",
                         "not a url", NULL};
    for (size_t i = 0; bad[i] != NULL; i++) {
        if (reign_s3_peer_url_ok(bad[i], why, sizeof why)) {
            print_error("accepted '%s'\n", bad[i]);
            fail();
        }
    }
    char longer[REIGN_S3_PEER_URL_MAX + 16];
    memset(longer, 'a', sizeof longer);
    memcpy(longer, "http://h/", 9);
    longer[sizeof longer - 1] = '\0';
    assert_false(reign_s3_peer_url_ok(longer, why, sizeof why));
}

static void test_the_name_is_the_last_path_segment_made_of_key_bytes(void **state)
{
    (void)state;
    char name[64];
    assert_true(reign_s3_peer_name_of("/reign/peer/jobs~2F7", name, sizeof name));
    assert_string_equal(name, "jobs~2F7");
    assert_true(reign_s3_peer_name_of("/app/x/a.b-c_d?x=1", name, sizeof name));
    assert_string_equal(name, "a.b-c_d");
    assert_true(reign_s3_peer_name_of("plain", name, sizeof name));
    assert_string_equal(name, "plain");
    const char *bad[] = {"/reign/peer/", "/reign/peer/..", "/reign/peer/.x", "/a/b%2Fc",
                         "/a/b c", "/a/\xc3\xa9", "", NULL};
    for (size_t i = 0; bad[i] != NULL; i++) {
        if (reign_s3_peer_name_of(bad[i], name, sizeof name)) {
            print_error("took a name from '%s'\n", bad[i]);
            fail();
        }
    }
    char small[4];
    assert_false(reign_s3_peer_name_of("/abcd", small, sizeof small));
}

static void test_an_answer_confirms_only_the_record_it_names(void **state)
{
    (void)state;
    char body[512], why[300];
    size_t n = reign_s3_peer_encode("jobs~2F7", true, 7, "web-3:41:9f", body, sizeof body);
    assert_true(n > 0);
    assert_string_equal(body,
                        "{\"resource\":\"jobs~2F7\",\"master\":true,\"term\":7,\"instance\":\"web-3:41:9f\"}");
    assert_int_equal(reign_s3_peer_judge(body, n, "jobs~2F7", "web-3:41:9f", 7, why, sizeof why),
                     REIGN_S3_PEER_CONFIRMED);
    /* another term, another holder, another resource */
    assert_int_equal(reign_s3_peer_judge(body, n, "jobs~2F7", "web-3:41:9f", 8, why, sizeof why),
                     REIGN_S3_PEER_OTHER);
    assert_int_equal(reign_s3_peer_judge(body, n, "jobs~2F7", "web-4", 7, why, sizeof why),
                     REIGN_S3_PEER_OTHER);
    assert_int_equal(reign_s3_peer_judge(body, n, "jobs~2F8", "web-3:41:9f", 7, why, sizeof why),
                     REIGN_S3_PEER_GARBAGE);
    /* not master */
    n = reign_s3_peer_encode("r", false, 0, NULL, body, sizeof body);
    assert_string_equal(body, "{\"resource\":\"r\",\"master\":false}");
    assert_int_equal(reign_s3_peer_judge(body, n, "r", "h", 1, why, sizeof why),
                     REIGN_S3_PEER_DENIED);
    /* does not fit */
    assert_int_equal(reign_s3_peer_encode("r", true, 1, "h", body, 10), 0);
}

static void test_garbage_from_a_peer_never_confirms(void **state)
{
    (void)state;
    char why[300];
    const char *bad[] = {
        "",
        "<html>hello</html>",
        "[true]",
        "{\"resource\":\"r\"}",
        "{\"resource\":\"r\",\"master\":1,\"term\":1,\"instance\":\"h\"}",
        "{\"resource\":\"r\",\"master\":true}",
        "{\"resource\":\"r\",\"master\":true,\"term\":\"1\",\"instance\":\"h\"}",
        "{\"resource\":\"r\",\"master\":true,\"term\":0,\"instance\":\"h\"}",
        "{\"resource\":\"r\",\"master\":true,\"term\":-1,\"instance\":\"h\"}",
        "{\"resource\":\"r\",\"master\":true,\"term\":1,\"instance\":7}",
        "{\"resource\":\"r\",\"master\":true,\"term\":1,\"instance\":\"h\\u0000x\"}",
        "{\"resource\":\"r\",\"resource\":\"r\",\"master\":true,\"term\":1,\"instance\":\"h\"}",
        "{\"resource\":\"r\",\"master\":true,\"term\":1,\"instance\":\"h\"",
        NULL,
    };
    for (size_t i = 0; bad[i] != NULL; i++) {
        if (reign_s3_peer_judge(bad[i], strlen(bad[i]), "r", "h", 1, why, sizeof why) ==
            REIGN_S3_PEER_CONFIRMED) {
            print_error("confirmed '%s'\n", bad[i]);
            fail();
        }
    }
    /* every prefix of a good answer, and a long one */
    const char *good = "{\"resource\":\"r\",\"master\":true,\"term\":1,\"instance\":\"h\"}";
    for (size_t len = 0; len < strlen(good); len++) {
        assert_int_not_equal(reign_s3_peer_judge(good, len, "r", "h", 1, why, sizeof why),
                             REIGN_S3_PEER_CONFIRMED);
    }
    assert_int_equal(reign_s3_peer_judge(good, strlen(good), "r", "h", 1, why, sizeof why),
                     REIGN_S3_PEER_CONFIRMED);
    char *huge = calloc(1, REIGN_S3_PEER_ANSWER_MAX + 100);
    assert_non_null(huge);
    memset(huge, ' ', REIGN_S3_PEER_ANSWER_MAX + 50);
    memcpy(huge, good, strlen(good));
    assert_int_equal(reign_s3_peer_judge(huge, REIGN_S3_PEER_ANSWER_MAX + 50, "r", "h", 1, why,
                                         sizeof why),
                     REIGN_S3_PEER_GARBAGE);
    free(huge);
}

static void test_a_record_carries_its_peer_and_older_records_have_none(void **state)
{
    (void)state;
    reign_s3_record r = {.holder = (char *)"h:1",
                         .metadata = (char *)"m",
                         .term = 3,
                         .ttl_ms = 10000,
                         .peer = (char *)"http://10.0.0.5:7000/reign/peer"};
    strcpy(r.nonce, "0123456789abcdef0123456789abcdef");
    size_t len = 0;
    char *json = reign_s3_record_encode(&r, &len);
    assert_non_null(json);
    assert_non_null(strstr(json, "\"peer\":\"http://10.0.0.5:7000/reign/peer\""));
    reign_s3_record back, copy;
    char cause[200];
    assert_int_equal(reign_s3_record_parse(json, len, &back, cause, sizeof cause), REIGN_OK);
    assert_string_equal(back.peer, "http://10.0.0.5:7000/reign/peer");
    assert_int_equal(reign_s3_record_copy(&back, &copy), REIGN_OK);
    assert_string_equal(copy.peer, back.peer);
    reign_s3_record_clear(&copy);
    reign_s3_record_clear(&back);
    free(json);

    r.peer = NULL;
    json = reign_s3_record_encode(&r, &len);
    assert_non_null(json);
    assert_null(strstr(json, "peer"));
    assert_int_equal(reign_s3_record_parse(json, len, &back, cause, sizeof cause), REIGN_OK);
    assert_null(back.peer);
    reign_s3_record_clear(&back);
    free(json);

    const char *bad = "{\"v\":1,\"holder\":\"h\",\"term\":1,\"ttl_ms\":1,\"released\":false,"
                      "\"nonce\":\"n\",\"peer\":7}";
    assert_int_equal(reign_s3_record_parse(bad, strlen(bad), &back, cause, sizeof cause),
                     REIGN_EPROTO);
    assert_non_null(strstr(cause, "'peer'"));
}

static void test_the_table_answers_master_until_its_deadline_and_forgets_on_release(void **state)
{
    (void)state;
    reign_s3_peer_server *srv = NULL;
    char err[200], body[REIGN_S3_PEER_BODY_MAX];
    assert_int_equal(reign_s3_peer_server_open("me:1", NULL, 0, &srv, err, sizeof err), REIGN_OK);
    assert_int_equal(reign_s3_peer_server_port(srv), 0);
    assert_int_equal(reign_s3_peer_answer("/reign/peer/unit-a", body, sizeof body), 200);
    assert_string_equal(body, "{\"resource\":\"unit-a\",\"master\":false}");

    reign_s3_peer_server_held(srv, "unit-a", 4, reign_monotonic_ms() + 60000);
    assert_int_equal(reign_s3_peer_answer("/x/unit-a?y", body, sizeof body), 200);
    assert_string_equal(body,
                        "{\"resource\":\"unit-a\",\"master\":true,\"term\":4,\"instance\":\"me:1\"}");
    /* renewed with a deadline already past: not master any more */
    reign_s3_peer_server_held(srv, "unit-a", 4, reign_monotonic_ms() - 1);
    assert_int_equal(reign_s3_peer_answer("/reign/peer/unit-a", body, sizeof body), 200);
    assert_non_null(strstr(body, "\"master\":false"));
    reign_s3_peer_server_held(srv, "unit-a", 5, reign_monotonic_ms() + 60000);
    assert_non_null(strstr(body, "unit-a"));
    reign_s3_peer_server_gone(srv, "unit-a");
    assert_int_equal(reign_s3_peer_answer("/reign/peer/unit-a", body, sizeof body), 200);
    assert_non_null(strstr(body, "\"master\":false"));

    assert_int_equal(reign_s3_peer_answer("/reign/peer/", body, sizeof body), 400);
    assert_int_equal(reign_s3_peer_answer("/reign/peer/a", body, 10), 500);
    /* many names: the chains hold them all */
    for (int i = 0; i < 2000; i++) {
        char n[32];
        snprintf(n, sizeof n, "many-%d", i);
        reign_s3_peer_server_held(srv, n, (uint64_t)i + 1, reign_monotonic_ms() + 60000);
    }
    assert_int_equal(reign_s3_peer_answer("/reign/peer/many-1234", body, sizeof body), 200);
    assert_non_null(strstr(body, "\"term\":1235,"));
    reign_s3_peer_server_close(srv);
    /* closed: nobody answers master */
    assert_int_equal(reign_s3_peer_answer("/reign/peer/many-1234", body, sizeof body), 200);
    assert_non_null(strstr(body, "\"master\":false"));
    reign_s3_peer_server_close(NULL);
}

/* One HTTP exchange with 127.0.0.1:port; the whole answer in out. */
static void exchange(int port, const char *request, char *out, size_t out_size)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(send(fd, request, strlen(request), 0), (ssize_t)strlen(request));
    size_t n = 0;
    ssize_t r;
    while (n < out_size - 1 && (r = recv(fd, out + n, out_size - 1 - n, 0)) > 0) {
        n += (size_t)r;
    }
    out[n] = '\0';
    close(fd);
}

static void test_the_built_in_server_answers_get_and_refuses_the_rest(void **state)
{
    (void)state;
    reign_s3_peer_server *srv = NULL;
    char err[200], out[8192];
    assert_int_equal(reign_s3_peer_server_open("srv:2", "127.0.0.1", 0, &srv, err, sizeof err),
                     REIGN_OK);
    int port = reign_s3_peer_server_port(srv);
    assert_true(port > 0);
    reign_s3_peer_server_held(srv, "srv-r", 9, reign_monotonic_ms() + 60000);
    exchange(port, "GET /reign/peer/srv-r HTTP/1.1\r\nHost: x\r\n\r\n", out, sizeof out);
    assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(out, "Content-Type: application/json\r\n"));
    assert_non_null(
        strstr(out, "\r\n\r\n{\"resource\":\"srv-r\",\"master\":true,\"term\":9,\"instance\":\"srv:2\"}"));
    exchange(port, "GET /elsewhere/srv-r HTTP/1.1\r\n\r\n", out, sizeof out);
    assert_non_null(strstr(out, "HTTP/1.1 404 "));
    exchange(port, "POST /reign/peer/srv-r HTTP/1.1\r\n\r\n", out, sizeof out);
    assert_non_null(strstr(out, "HTTP/1.1 405 "));
    exchange(port, "garbage\r\n\r\n", out, sizeof out);
    assert_non_null(strstr(out, "HTTP/1.1 400 "));
    /* a client that sends nothing does not stop the others */
    int idle = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(idle, (struct sockaddr *)&a, sizeof a), 0);
    exchange(port, "GET /reign/peer/other HTTP/1.0\r\n\r\n", out, sizeof out);
    assert_non_null(strstr(out, "\"master\":false"));
    close(idle);
    reign_s3_peer_server_close(srv);

    assert_int_equal(reign_s3_peer_server_open("x", "localhost", 0, &srv, err, sizeof err),
                     REIGN_EURI);
    assert_non_null(strstr(err, "numeric"));
}

/* ---- the URI parameters --------------------------------------------------- */

static const char *fake_env(const char *name, void *ctx)
{
    (void)ctx;
    if (strcmp(name, "AWS_ACCESS_KEY_ID") == 0) {
        return "AK";
    }
    if (strcmp(name, "AWS_SECRET_ACCESS_KEY") == 0) {
        return SECRET;
    }
    return NULL;
}

static int load(const char *const *params, reign_s3_config *c, char *err, size_t err_size)
{
    static reign_uri_param ps[8];
    size_t n = 0;
    for (; params[2 * n] != NULL; n++) {
        ps[n] = (reign_uri_param){(char *)params[2 * n], (char *)params[2 * n + 1], 0};
    }
    ps[n] = (reign_uri_param){(char *)"endpoint", (char *)"http://127.0.0.1:1", 0};
    n++;
    reign_backend_config cfg = {.uri = "s3://b", .uri_redacted = "s3://b", .scheme = "s3",
                                .host = "b", .path = "", .params = ps, .n_params = n,
                                .instance_id = "me", .metadata = "", .ttl_ms = 1000,
                                .op_timeout_ms = 300};
    err[0] = '\0';
    int rc = reign_s3_config_load(&cfg, fake_env, NULL, c, err, err_size);
    assert_null(strstr(err, SECRET));
    return rc;
}

static void test_peer_parameters_default_off_and_serving_implies_asking(void **state)
{
    (void)state;
    reign_s3_config c;
    char err[600];
    const char *none[] = {NULL};
    assert_int_equal(load(none, &c, err, sizeof err), REIGN_OK);
    assert_false(c.peer_ask);
    assert_null(c.peer_listen_host);
    assert_null(c.peer_url);
    assert_int_equal(c.peer_check_ms, REIGN_S3_PEER_CHECK_MS);
    reign_s3_config_free(&c);

    const char *listen[] = {"peer_listen", "[::1]:8080", NULL};
    assert_int_equal(load(listen, &c, err, sizeof err), REIGN_OK);
    assert_true(c.peer_ask);
    assert_string_equal(c.peer_listen_host, "::1");
    assert_int_equal(c.peer_listen_port, 8080);
    reign_s3_config_free(&c);

    const char *url[] = {"peer_url", "https://app:8443/peer//", "peer", "0", NULL};
    assert_int_equal(load(url, &c, err, sizeof err), REIGN_OK);
    assert_false(c.peer_ask); /* serves (the application does), does not ask */
    assert_string_equal(c.peer_url, "https://app:8443/peer");
    reign_s3_config_free(&c);

    const char *ask[] = {"peer", "1", "peer_check", "45s", "peer_ca", "/dev/null", NULL};
    assert_int_equal(load(ask, &c, err, sizeof err), REIGN_OK);
    assert_true(c.peer_ask);
    assert_int_equal(c.peer_check_ms, 45000);
    assert_string_equal(c.peer_ca, "/dev/null");
    reign_s3_config_free(&c);

    const char *any[] = {"peer_listen", "0.0.0.0:7000", NULL};
    assert_int_equal(load(any, &c, err, sizeof err), REIGN_EURI);
    assert_non_null(strstr(err, "peer_url=http://THIS-HOST:7000/reign/peer"));
    const char *any_ok[] = {"peer_listen", "0.0.0.0:7000", "peer_url", "http://h1:7000/reign/peer",
                            NULL};
    assert_int_equal(load(any_ok, &c, err, sizeof err), REIGN_OK);
    reign_s3_config_free(&c);
    const char *bad_check[] = {"peer", "1", "peer_check", "50ms", NULL};
    assert_int_equal(load(bad_check, &c, err, sizeof err), REIGN_EURI);
    assert_non_null(strstr(err, "peer_check=50ms"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_only_plain_http_and_https_urls_may_be_asked),
        cmocka_unit_test(test_the_name_is_the_last_path_segment_made_of_key_bytes),
        cmocka_unit_test(test_an_answer_confirms_only_the_record_it_names),
        cmocka_unit_test(test_garbage_from_a_peer_never_confirms),
        cmocka_unit_test(test_a_record_carries_its_peer_and_older_records_have_none),
        cmocka_unit_test(test_the_table_answers_master_until_its_deadline_and_forgets_on_release),
        cmocka_unit_test(test_the_built_in_server_answers_get_and_refuses_the_rest),
        cmocka_unit_test(test_peer_parameters_default_off_and_serving_implies_asking),
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
