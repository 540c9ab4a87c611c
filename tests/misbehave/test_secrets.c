/* A password in the URI never leaves the process: not in a log line (the
 * library at debug level, every line captured), not in reign_last_error(),
 * reign_factory_uri() or reign_metrics_write(), not in anything the CLI
 * prints — with the right password, a wrong one, and a server that quotes
 * the password back in its error. Starts its own password-protected
 * redis-server with scripts/servers/redis.sh (skipped, with the reason,
 * when that cannot run). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "misbehave.h"
#include "reign/reign.h"

#define SECRET "Zq7SeCr3tPw"
#define WRONG "Wr0ngPassXq9"

static char server_dir[64];
static int server_port;
static char skip_reason[300];

/* ---- the server ------------------------------------------------------------ */

static int setup(void **state)
{
    (void)state;
    setenv("REIGN_LOG", "debug", 1);
    server_port = misbehave_server_start("redis", "REDIS_PASSWORD=" SECRET, server_dir,
                                         skip_reason, sizeof skip_reason);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    misbehave_server_stop("redis", server_dir);
    return 0;
}

#define SKIP_WITHOUT_SERVER()                                   \
    do {                                                        \
        if (server_port == 0) {                                 \
            print_message("skipped: %s\n", skip_reason);        \
            skip();                                             \
        }                                                       \
    } while (0)

/* ---- the library ----------------------------------------------------------- */

typedef struct capture {
    size_t lines;
    char leak[600];
} capture;

static void check_text(const char *what, const char *text, const char *secret)
{
    if (text != NULL && strstr(text, secret) != NULL)
        fail_msg("the password is in %s: %s", what, text);
}

static void on_log(int level, const char *component, const char *message, void *payload)
{
    capture *c = payload;
    (void)level;
    c->lines++;
    if (c->leak[0] == '\0' && (strstr(message, SECRET) != NULL || strstr(message, WRONG) != NULL))
        snprintf(c->leak, sizeof c->leak, "%s: %s", component, message);
}

static reign_options options(capture *c)
{
    reign_options o = REIGN_OPTIONS_INIT;
    o.instance_id = "secret-keeper";
    o.metadata = "10.0.0.5:8080";
    o.ttl_ms = 2000;
    o.op_timeout_ms = 500;
    o.logger = on_log;
    o.logger_payload = c;
    return o;
}

static void test_library_at_debug_level_never_shows_the_password(void **state)
{
    (void)state;
    SKIP_WITHOUT_SERVER();
    capture c = {0, ""};
    reign_options o = options(&c);
    char uri[128];
    snprintf(uri, sizeof uri, "redis://:%s@127.0.0.1:%d/0?prefix=secrets", SECRET, server_port);
    reign_factory *f = NULL;
    if (reign_factory_open(uri, &o, &f) != REIGN_OK)
        fail_msg("open with the right password: %s", reign_last_error());
    check_text("reign_factory_uri", reign_factory_uri(f), SECRET);
    assert_non_null(strstr(reign_factory_uri(f), "***"));

    reign_election *e = NULL;
    assert_int_equal(reign_election_new(f, "secret/job", &e), REIGN_OK);
    assert_int_equal(reign_election_wait(e, 5000), REIGN_OK);
    reign_master *m = NULL;
    assert_int_equal(reign_factory_current_master(f, "secret/job", &m), REIGN_OK);
    reign_master_free(m);
    assert_int_equal(reign_factory_current_master(f, "secret/nobody", &m), REIGN_ENOMASTER);
    check_text("reign_last_error", reign_last_error(), SECRET);

    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    assert_int_equal(reign_metrics_write(f, out), REIGN_OK);
    assert_int_equal(fclose(out), 0);
    check_text("the metrics", text, SECRET);
    free(text);

    assert_int_equal(reign_election_resign(e), REIGN_OK);
    assert_int_equal(reign_election_close(e), REIGN_OK);
    assert_int_equal(reign_factory_close(f), REIGN_OK);
    assert_true(c.lines > 0); /* debug level: the engine said something */
    if (c.leak[0] != '\0')
        fail_msg("the password is in a log line: %s", c.leak);
}

static void test_wrong_password_is_refused_without_showing_it(void **state)
{
    (void)state;
    SKIP_WITHOUT_SERVER();
    capture c = {0, ""};
    reign_options o = options(&c);
    char uri[128];
    snprintf(uri, sizeof uri, "redis://default:%s@127.0.0.1:%d/0", WRONG, server_port);
    reign_factory *f = NULL;
    int rc = reign_factory_open(uri, &o, &f);
    assert_int_equal(rc, REIGN_EAUTH);
    check_text("reign_last_error", reign_last_error(), WRONG);
    if (c.leak[0] != '\0')
        fail_msg("the password is in a log line: %s", c.leak);
    /* no password at all: refused as well, and named */
    snprintf(uri, sizeof uri, "redis://127.0.0.1:%d/0", server_port);
    assert_int_equal(reign_factory_open(uri, &o, &f), REIGN_EAUTH);
}

/* A server (or a proxy in between) that quotes the AUTH argument in its
 * error: the backend copies server errors into messages, so it must take
 * the password out of them. */
static void test_server_quoting_the_password_back_does_not_leak_it(void **state)
{
    (void)state;
    misbehave *m = misbehave_start(0, MISBEHAVE_ECHO_AUTH);
    assert_non_null(m);
    capture c = {0, ""};
    reign_options o = options(&c);
    char uri[128];
    snprintf(uri, sizeof uri, "redis://:%s@127.0.0.1:%d/0", SECRET, misbehave_port(m));
    reign_factory *f = NULL;
    int rc = reign_factory_open(uri, &o, &f);
    misbehave_stop(m);
    if (rc == REIGN_OK) {
        reign_factory_close(f);
        fail_msg("a server refusing AUTH was accepted");
    }
    assert_int_equal(rc, REIGN_EAUTH);
    check_text("reign_last_error", reign_last_error(), SECRET);
    if (c.leak[0] != '\0')
        fail_msg("the password is in a log line: %s", c.leak);
}

/* ---- the CLI --------------------------------------------------------------- */

/* Run a shell command line (the CLI with REIGN_LOG=debug), return all it
 * printed on stdout and stderr (malloc'd) and its exit status. */
static char *run(const char *cmdline, int *status)
{
    char cmd[2560];
    snprintf(cmd, sizeof cmd, "REIGN_LOG=debug %s 2>&1", cmdline);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 4096, len = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    size_t n;
    while ((n = fread(out + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len < 1024) {
            cap *= 2;
            out = realloc(out, cap);
            assert_non_null(out);
        }
    }
    out[len] = '\0';
    int rc = pclose(p);
    *status = WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc);
    return out;
}

/* Run `reign ARGS` (after ENV words), fail if the output holds a password,
 * if it exited otherwise than want_status (< 0: any), or if it lacks
 * must_have (NULL: nothing required). */
static void cli_hides_showing(const char *args, const char *env, int want_status,
                              const char *must_have)
{
    const char *cli = getenv("REIGN_CLI");
    char line[2048];
    snprintf(line, sizeof line, "%s '%s' %s", env != NULL ? env : "", cli, args);
    int status = 0;
    char *out = run(line, &status);
    if (strstr(out, SECRET) != NULL || strstr(out, WRONG) != NULL)
        fail_msg("`reign %s` printed the password:\n%s", args, out);
    if (want_status >= 0 && status != want_status)
        fail_msg("`reign %s` exited %d, expected %d:\n%s", args, status, want_status, out);
    if (must_have != NULL && strstr(out, must_have) == NULL)
        fail_msg("`reign %s` did not print %s:\n%s", args, must_have, out);
    free(out);
}

static void cli_hides(const char *args, const char *env, int want_status)
{
    cli_hides_showing(args, env, want_status, NULL);
}

static void test_cli_commands_never_print_the_password(void **state)
{
    (void)state;
    SKIP_WITHOUT_SERVER();
    if (getenv("REIGN_CLI") == NULL) {
        print_message("skipped: REIGN_CLI is not set (no cli/ in this build)\n");
        skip();
    }
    char uri[160], bad[160], arg[1024], env[200];
    snprintf(uri, sizeof uri, "redis://:%s@127.0.0.1:%d/0?prefix=secrets-cli", SECRET,
             server_port);
    snprintf(bad, sizeof bad, "redis://:%s@127.0.0.1:%d/0", WRONG, server_port);

    snprintf(arg, sizeof arg, "lock --uri '%s' --ttl 1000 cli/job -- true", uri);
    cli_hides(arg, NULL, 0);
    snprintf(arg, sizeof arg, "status --uri '%s' cli/job nothing/here", uri);
    cli_hides(arg, NULL, 0);
    snprintf(arg, sizeof arg, "status --json --uri '%s' cli/job", uri);
    cli_hides(arg, NULL, 0);
    /* shard runs until SIGTERM: 2 s, then it resigns and exits 0 (timeout
     * itself exits 124 when it had to send the signal) */
    snprintf(arg, sizeof arg, "shard --uri '%s' --ttl 1000 --count 3 --instance s1", uri);
    snprintf(env, sizeof env, "timeout -s TERM 2");
    cli_hides(arg, env, -1);
    snprintf(arg, sizeof arg, "members --uri '%s'", uri);
    cli_hides(arg, NULL, 0);
    snprintf(arg, sizeof arg, "watch --uri '%s' cli/job", uri);
    snprintf(env, sizeof env, "timeout -s TERM 2");
    cli_hides(arg, env, -1);
    /* shard --listen: what /status, /metrics and /healthz serve. The script
     * prints the port line and the three bodies; cli_hides checks them all
     * and that the scrape found a port (exit 0). */
    snprintf(arg, sizeof arg,
             "shard --uri '%s' --ttl 1000 --count 2 --instance s2 --listen 127.0.0.1:0 2>&1 | "
             "{ port=; for i in $(seq 50); do read -r line || break; echo \"$line\"; "
             "port=$(echo \"$line\" | sed -n 's|.* on http://127.0.0.1:\\([0-9]*\\)/.*|\\1|p'); "
             "[ -n \"$port\" ] && break; done; [ -n \"$port\" ] || exit 3; sleep 1; "
             "for p in status metrics healthz; do curl -s --max-time 5 http://127.0.0.1:$port/$p; done; "
             "}",
             uri);
    snprintf(env, sizeof env, "timeout -s TERM 4");
    cli_hides_showing(arg, env, 0, "reign_masterships");
    /* the same through $REIGN_URI, which --help shows as the default */
    snprintf(env, sizeof env, "REIGN_URI='%s'", uri);
    cli_hides("--help", env, 0);
    cli_hides("status --help", env, 0);
    cli_hides("status cli/job", env, 0);
    /* errors: wrong password, bad parameter, bad option */
    snprintf(arg, sizeof arg, "status --uri '%s' cli/job", bad);
    cli_hides(arg, NULL, 1);
    snprintf(arg, sizeof arg, "lock --wait 0 --uri '%s' cli/job -- true", bad);
    cli_hides(arg, NULL, 1);
    snprintf(arg, sizeof arg, "status --uri '%s&bogus=1' cli/job", uri);
    cli_hides(arg, NULL, 2); /* a malformed URI is a usage error */
    snprintf(arg, sizeof arg, "lock --uri '%s' --ttl nonsense cli/job -- true", uri);
    cli_hides(arg, NULL, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_library_at_debug_level_never_shows_the_password),
        cmocka_unit_test(test_wrong_password_is_refused_without_showing_it),
        cmocka_unit_test(test_server_quoting_the_password_back_does_not_leak_it),
        cmocka_unit_test(test_cli_commands_never_print_the_password),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
