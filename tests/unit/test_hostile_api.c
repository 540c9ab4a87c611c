/* Hostile input through the public API only: resource IDs made of every
 * awkward byte, metadata with quotes and control characters, URIs with
 * secrets, odd hosts and bad parameters. Each is accepted and kept apart
 * from every other, or refused with a clear error — and a password never
 * shows in reign_last_error(), reign_factory_uri() or a log line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "reign/reign.h"

#define SECRET "Zq7SeCr3tPw"

/* ---- helpers ------------------------------------------------------------------- */

/* Every log line of a factory, checked for the secret as it arrives. */
typedef struct log_capture {
    size_t lines;
    int leaked;
    char leak[512];
} log_capture;

static void capture_log(int level, const char *component, const char *message, void *payload)
{
    log_capture *c = payload;
    (void)level;
    c->lines++;
    if (!c->leaked && (strstr(message, SECRET) != NULL || strstr(component, SECRET) != NULL)) {
        c->leaked = 1;
        snprintf(c->leak, sizeof c->leak, "%s: %s", component, message);
    }
}

static reign_factory *open_as(const char *uri, const char *instance, const char *metadata,
                              log_capture *log)
{
    reign_options o = REIGN_OPTIONS_INIT;
    o.instance_id = instance;
    o.metadata = metadata;
    o.ttl_ms = 5000;
    o.retry_interval_ms = 50;
    if (log != NULL) {
        o.logger = capture_log;
        o.logger_payload = log;
    }
    reign_factory *f = NULL;
    int rc = reign_factory_open(uri, &o, &f);
    if (rc != REIGN_OK)
        fail_msg("open %s: %s", uri, reign_last_error());
    return f;
}

/* A fresh directory for file:// (removed with its lock files by rm_tree). */
static char *temp_dir_uri(char *dir, size_t size)
{
    snprintf(dir, size, "/tmp/reign-hostile-XXXXXX");
    assert_non_null(mkdtemp(dir));
    size_t n = strlen(dir) + 16;
    char *uri = malloc(n);
    assert_non_null(uri);
    snprintf(uri, n, "file://%s", dir);
    return uri;
}

static void rm_tree(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* ---- resource IDs -------------------------------------------------------------- */

#define N_IDS 40

typedef struct id_set {
    char *ids[N_IDS];
    size_t n;
} id_set;

static void add_id(id_set *s, const char *id)
{
    assert_true(s->n < N_IDS);
    s->ids[s->n] = strdup(id);
    assert_non_null(s->ids[s->n]);
    s->n++;
}

static void add_filled(id_set *s, char c, size_t len, char last)
{
    char *id = malloc(len + 1);
    assert_non_null(id);
    memset(id, c, len);
    if (last != '\0')
        id[len - 1] = last;
    id[len] = '\0';
    add_id(s, id);
    free(id);
}

/* Awkward IDs, ordered so that each one that a careless encoding could
 * confuse with another sits next to it: the two go to different instances
 * below, so a mix-up shows as a refused election or a wrong master. */
static id_set hostile_ids(void)
{
    id_set s = {{0}, 0};
    static const char *const plain[] = {
        "a/b",     "a%2Fb",     "a%2fb",  "a_b",     "..",         "%2E%2E",  ".",
        "%2E",     "../etc",    "/",      "%",       "%25",        "x\n",     "x\r",
        "x",       "x ",        "\x01",   "%01",     "a\\b",       "a\"b",    "_reign",
        "A",       "a",         ".lock",  "a.lock",  "-rf",        "~",       "~2F",
        "jobs/7",  "jobs%2F7",
    };
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
        add_id(&s, plain[i]);
    /* every byte but NUL */
    char all[256];
    for (int b = 1; b < 256; b++)
        all[b - 1] = (char)b;
    all[255] = '\0';
    add_id(&s, all);
    char high[] = {(char)0xff, (char)0xfe, (char)0x80, 'z', '\0'};
    add_id(&s, high);
    /* long IDs: the longest allowed, and ones that differ only at the end
     * (a hashed file name must not make them one) */
    add_filled(&s, 'a', REIGN_RESOURCE_ID_MAX, '\0');
    add_filled(&s, 'a', REIGN_RESOURCE_ID_MAX, 'b');
    add_filled(&s, '/', REIGN_RESOURCE_ID_MAX - 1, '\0');
    add_filled(&s, '/', REIGN_RESOURCE_ID_MAX - 1, '.');
    return s;
}

static void id_set_free(id_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->ids[i]);
    s->n = 0;
}

static void show_id(const char *id, char *out, size_t size)
{
    size_t j = 0;
    for (const unsigned char *c = (const unsigned char *)id; *c && j + 8 < size; c++) {
        if (j > 60) {
            snprintf(out + j, size - j, "...(%zu bytes)", strlen(id));
            return;
        }
        j += (size_t)snprintf(out + j, size - j, *c >= 0x20 && *c < 0x7f ? "%c" : "\\x%02x", *c);
    }
    out[j] = '\0';
}

/* Instance A masters the IDs at even positions, B those at odd ones; then
 * each factory sees the right master of every ID. */
static void ids_are_kept_apart(const char *uri)
{
    id_set s = hostile_ids();
    reign_factory *a = open_as(uri, "instance-a", "meta-a", NULL);
    reign_factory *b = open_as(uri, "instance-b", "meta-b", NULL);
    reign_election *e[N_IDS] = {0};
    char shown[100];

    for (size_t i = 0; i < s.n; i++) {
        show_id(s.ids[i], shown, sizeof shown);
        int rc = reign_election_new(i % 2 == 0 ? a : b, s.ids[i], &e[i]);
        if (rc != REIGN_OK)
            fail_msg("election_new '%s': %s", shown, reign_last_error());
        rc = reign_election_wait(e[i], 5000);
        if (rc != REIGN_OK)
            fail_msg("'%s' (for %s): %s: %s — mixed up with another ID?", shown,
                     i % 2 == 0 ? "a" : "b", reign_status_str(rc), reign_last_error());
    }
    for (size_t i = 0; i < s.n; i++) {
        show_id(s.ids[i], shown, sizeof shown);
        if (!reign_election_is_master(e[i]))
            fail_msg("'%s' lost mastership after the others were taken", shown);
        assert_string_equal(reign_election_resource(e[i]), s.ids[i]);
        for (int k = 0; k < 2; k++) {
            reign_master *m = NULL;
            int rc = reign_factory_current_master(k == 0 ? a : b, s.ids[i], &m);
            if (rc != REIGN_OK)
                fail_msg("current_master '%s': %s", shown, reign_last_error());
            const char *want = i % 2 == 0 ? "instance-a" : "instance-b";
            if (strcmp(m->instance_id, want) != 0)
                fail_msg("'%s': master %s, expected %s", shown, m->instance_id, want);
            assert_string_equal(m->metadata, i % 2 == 0 ? "meta-a" : "meta-b");
            assert_true(m->term >= 1);
            reign_master_free(m);
        }
    }
    for (size_t i = 0; i < s.n; i++)
        assert_int_equal(reign_election_close(e[i]), REIGN_OK);
    assert_int_equal(reign_factory_close(a), REIGN_OK);
    assert_int_equal(reign_factory_close(b), REIGN_OK);
    id_set_free(&s);
}

static void test_hostile_resource_ids_are_kept_apart_on_mem(void **state)
{
    (void)state;
    ids_are_kept_apart("mem://hostile-ids");
}

static void test_hostile_resource_ids_are_kept_apart_on_file(void **state)
{
    (void)state;
    char dir[64];
    char *uri = temp_dir_uri(dir, sizeof dir);
    ids_are_kept_apart(uri);
    /* nothing was written outside the directory (no '..', no '/') */
    char cmd[200];
    snprintf(cmd, sizeof cmd, "test -z \"$(find '%s' -mindepth 1 -maxdepth 1 -type d ! -name .members)\"",
             dir);
    assert_int_equal(system(cmd), 0);
    rm_tree(dir);
    free(uri);
}

static void id_length_limits(const char *uri)
{
    reign_factory *f = open_as(uri, "instance-a", NULL, NULL);
    char *id = malloc(REIGN_RESOURCE_ID_MAX + 2);
    assert_non_null(id);
    memset(id, 'q', REIGN_RESOURCE_ID_MAX + 1);
    id[REIGN_RESOURCE_ID_MAX + 1] = '\0';
    reign_election *e = NULL;
    reign_master *m = NULL;

    assert_int_equal(reign_election_new(f, id, &e), REIGN_EINVAL);
    assert_null(e);
    assert_non_null(strstr(reign_last_error(), "1024"));
    assert_int_equal(reign_factory_current_master(f, id, &m), REIGN_EINVAL);
    assert_non_null(strstr(reign_last_error(), "1024"));
    assert_int_equal(reign_election_new(f, "", &e), REIGN_EINVAL);
    assert_non_null(strstr(reign_last_error(), "empty"));
    assert_int_equal(reign_election_new(f, NULL, &e), REIGN_EINVAL);

    id[REIGN_RESOURCE_ID_MAX] = '\0'; /* 1024 bytes: fine */
    assert_int_equal(reign_election_new(f, id, &e), REIGN_OK);
    assert_int_equal(reign_election_wait(e, 5000), REIGN_OK);
    assert_int_equal(reign_factory_current_master(f, id, &m), REIGN_OK);
    assert_string_equal(m->instance_id, "instance-a");
    reign_master_free(m);
    assert_int_equal(reign_election_close(e), REIGN_OK);
    assert_int_equal(reign_factory_close(f), REIGN_OK);
    free(id);
}

static void test_resource_id_of_1025_bytes_is_refused_and_1024_accepted_on_mem(void **state)
{
    (void)state;
    id_length_limits("mem://hostile-len");
}

static void test_resource_id_of_1025_bytes_is_refused_and_1024_accepted_on_file(void **state)
{
    (void)state;
    char dir[64];
    char *uri = temp_dir_uri(dir, sizeof dir);
    id_length_limits(uri);
    rm_tree(dir);
    free(uri);
}

/* ---- metadata ------------------------------------------------------------------ */

static const char hostile_metadata[] =
    "say \"hi\"\n\tback\\slash 'q' \x01\x02\x1b[31mred\x7f \xc3\xa9 \xff end";

static void metadata_round_trips(const char *uri)
{
    reign_factory *a = open_as(uri, "holder \"one\"\n", hostile_metadata, NULL);
    reign_factory *b = open_as(uri, "observer", "", NULL);
    reign_election *e = NULL;
    reign_master *m = NULL;
    assert_int_equal(reign_election_new(a, "meta", &e), REIGN_OK);
    assert_int_equal(reign_election_wait(e, 5000), REIGN_OK);
    assert_int_equal(reign_factory_current_master(b, "meta", &m), REIGN_OK);
    assert_string_equal(m->instance_id, "holder \"one\"\n");
    assert_string_equal(m->metadata, hostile_metadata);
    reign_master_free(m);
    assert_int_equal(reign_election_close(e), REIGN_OK);
    assert_int_equal(reign_factory_close(a), REIGN_OK);
    assert_int_equal(reign_factory_close(b), REIGN_OK);
}

static void test_metadata_with_quotes_and_control_bytes_round_trips_on_mem(void **state)
{
    (void)state;
    metadata_round_trips("mem://hostile-meta");
}

static void test_metadata_with_quotes_and_control_bytes_round_trips_on_file(void **state)
{
    (void)state;
    char dir[64];
    char *uri = temp_dir_uri(dir, sizeof dir);
    metadata_round_trips(uri);
    rm_tree(dir);
    free(uri);
}

/* ---- metrics ------------------------------------------------------------------- */

/* UTF-8 well-formed enough for a Prometheus parser (lead bytes and
 * continuation bytes; overlongs of 3 and 4 bytes are not looked for). */
static bool utf8_valid(const unsigned char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        size_t n = 0;
        if (c >= 0x80 && c >= 0xc2 && c <= 0xdf)
            n = 1;
        else if (c >= 0xe0 && c <= 0xef)
            n = 2;
        else if (c >= 0xf0 && c <= 0xf4)
            n = 3;
        else if (c >= 0x80)
            return false;
        if (i + n >= len && n > 0)
            return false;
        for (size_t k = 1; k <= n; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
        i += n + 1;
    }
    return true;
}

/* The label value of one `reign_term{resource="…"} N` line, unescaped as
 * Prometheus' text format defines (\\, \", \n), into out; false if the
 * line breaks the format. */
static bool label_of(const char *line, char *out, size_t size)
{
    const char *p = line + strlen("reign_term{resource=\"");
    size_t j = 0;
    while (*p != '"') {
        if (*p == '\0' || *p == '\n' || j + 1 >= size)
            return false;
        if (*p == '\\') {
            p++;
            if (*p == 'n')
                out[j++] = '\n';
            else if (*p == '\\' || *p == '"')
                out[j++] = *p;
            else
                return false; /* no other escape exists */
            p++;
            continue;
        }
        out[j++] = *p++;
    }
    out[j] = '\0';
    return strncmp(p, "\"} ", 3) == 0;
}

/* What a Prometheus server needs from the output: one sample per line,
 * valid UTF-8, and one label value per resource (no two resources folded
 * into one series); printable IDs come back exactly. */
static void test_metrics_keep_hostile_resource_ids_apart_and_parseable(void **state)
{
    (void)state;
    static const char *const ids[] = {
        "plain",        "quote\"d",    "back\\slash", "new\nline",     "tab\there",
        "ctl\x01",      "ctl\\x01",    "bell\x07",    "ctl\\\\x07",    "esc\x1b[0m",
        "del\x7f",      "hi\xff",      "hi\xc3\xa9",  "}{=\",",       "a\r\nreign_fake 1",
    };
    const size_t n = sizeof ids / sizeof ids[0];
    reign_factory *f = open_as("mem://hostile-metrics", "m", NULL, NULL);
    reign_election *e[16] = {0};
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(reign_election_new(f, ids[i], &e[i]), REIGN_OK);
        assert_int_equal(reign_election_wait(e[i], 5000), REIGN_OK);
    }
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    assert_int_equal(reign_metrics_write(f, out), REIGN_OK);
    assert_int_equal(fclose(out), 0);

    char labels[16][64];
    size_t found = 0;
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (line[0] == '#')
            continue;
        if (strspn(line, "abcdefghijklmnopqrstuvwxyz_") == 0)
            fail_msg("metrics line does not start with a metric name: '%s'", line);
        if (strncmp(line, "reign_term{", 11) != 0)
            continue;
        assert_true(found < n);
        if (!label_of(line, labels[found], sizeof labels[found]))
            fail_msg("reign_term line breaks the text format: '%s'", line);
        found++;
    }
    assert_int_equal(found, n);
    for (size_t i = 0; i < found; i++)
        for (size_t k = i + 1; k < found; k++)
            if (strcmp(labels[i], labels[k]) == 0)
                fail_msg("two resources share the label value '%s'", labels[i]);
    /* (text was cut into lines by strtok: its bytes are all still there) */
    if (!utf8_valid((const unsigned char *)text, len))
        fail_msg("metrics output is not valid UTF-8 (a resource ID's bytes copied raw)");
    /* printable (and UTF-8) IDs come back as they are; a backslash may be
     * written as an escape of reign's own, to keep "\xNN" unambiguous */
    for (size_t i = 0; i < n; i++) {
        bool printable = true;
        for (const unsigned char *c = (const unsigned char *)ids[i]; *c; c++)
            if ((*c < 0x20 && *c != '\n') || *c == 0x7f || *c == '\\')
                printable = false;
        if (!printable || !utf8_valid((const unsigned char *)ids[i], strlen(ids[i])))
            continue;
        bool seen = false;
        for (size_t k = 0; k < found; k++)
            seen = seen || strcmp(labels[k], ids[i]) == 0;
        if (!seen)
            fail_msg("resource '%s' is not a label value as it is", ids[i]);
    }
    free(text);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(reign_election_close(e[i]), REIGN_OK);
    assert_int_equal(reign_factory_close(f), REIGN_OK);
}

/* ---- URIs ---------------------------------------------------------------------- */

/* Open must fail with `want` (0: any status); the message names `mention` and hides the
 * secret; the logs hide it too. */
static void refused(const char *uri, int want, const char *mention)
{
    log_capture log = {0, 0, ""};
    reign_options o = REIGN_OPTIONS_INIT;
    o.instance_id = "hostile";
    o.op_timeout_ms = 500;
    o.logger = capture_log;
    o.logger_payload = &log;
    reign_factory *f = NULL;
    int rc = reign_factory_open(uri, &o, &f);
    if (rc == REIGN_OK) {
        reign_factory_close(f);
        fail_msg("'%s' was accepted", uri);
    }
    const char *msg = reign_last_error();
    if (want != 0 && rc != want)
        fail_msg("'%s': %s (%s), expected %s", uri, reign_status_str(rc), msg,
                 reign_status_str(want));
    if (mention != NULL && strstr(msg, mention) == NULL)
        fail_msg("'%s': message '%s' does not name '%s'", uri, msg, mention);
    if (strstr(msg, SECRET) != NULL)
        fail_msg("'%s': the password is in the message '%s'", uri, msg);
    if (log.leaked)
        fail_msg("'%s': the password is in a log line: %s", uri, log.leak);
    assert_null(f);
}

static void test_unknown_query_parameter_is_refused_by_name(void **state)
{
    (void)state;
    refused("mem://x?bogus=1", REIGN_EURI, "bogus");
    refused("noop://?ttl=1s&colour=red", REIGN_EURI, "colour");
    /* the file backend may create its directory before it looks at the
     * parameters: give it one of ours */
    char dir[64], uri[128];
    free(temp_dir_uri(dir, sizeof dir));
    snprintf(uri, sizeof uri, "file://%s/locks?lock_mode=weird", dir);
    refused(uri, REIGN_EURI, "lock_mode");
    rm_tree(dir);
}

static void test_duplicated_query_parameter_is_refused(void **state)
{
    (void)state;
    refused("mem://x?ttl=1s&ttl=2s", REIGN_EURI, "ttl");
    refused("noop://?ttl=1s&ttl=1s", REIGN_EURI, "twice");
}

static void test_bad_query_values_are_refused_by_name(void **state)
{
    (void)state;
    refused("mem://x?ttl=soon", REIGN_EURI, "ttl");
    refused("mem://x?ttl=-5", REIGN_EURI, "ttl");
    refused("mem://x?ttl=99999999999999999999", REIGN_EURI, "ttl");
    refused("mem://x?=1", REIGN_EURI, NULL);
    refused("mem://x?a=%zz", REIGN_EURI, NULL);
    refused("mem://x?a=%00", REIGN_EURI, NULL);
}

static void test_malformed_uris_are_refused(void **state)
{
    (void)state;
    refused("mem:", REIGN_EURI, NULL);
    refused("://x", REIGN_EURI, NULL);
    refused("no-scheme-at-all", REIGN_EURI, "scheme");
    refused("gopher://x", REIGN_EURI, "gopher");
    refused("me m://x", REIGN_EURI, NULL);
}

static void test_password_is_hidden_when_the_uri_is_refused(void **state)
{
    (void)state;
    refused("noop://u:" SECRET "@host/?bogus=1", REIGN_EURI, "bogus");
    refused("mem://u:" SECRET "@x?ttl=1s&ttl=2s", REIGN_EURI, "ttl");
    refused("noop://u:" SECRET "@host:99999/", REIGN_EURI, NULL);
    refused("noop://u:" SECRET "@[::1/", REIGN_EURI, NULL);
    refused("noop://u:" SECRET "@ho st/", REIGN_EURI, NULL);
    refused("noop://u:" SECRET "@[::1]:70000/", REIGN_EURI, NULL);
    refused("nope://u:" SECRET "@host/", REIGN_EURI, "nope");
    refused("noop://a:b:" SECRET "@c@host/?x", REIGN_EURI, NULL);
}

/* Finding F1 (docs/safety.md §6): a scheme with a bad character made the
 * whole text before "://" the message, user info and all. */
static void test_password_is_hidden_when_the_scheme_is_malformed(void **state)
{
    (void)state;
    refused("redis:/u:" SECRET "@h/?endpoint=http://x", REIGN_EURI, NULL);
    refused("re dis://u:" SECRET "@h/", REIGN_EURI, NULL);
}

#ifdef REIGN_WITH_REDIS
/* Nothing listens on port 1: the connection is refused. */
static void test_redis_password_is_hidden_when_the_server_is_unreachable(void **state)
{
    (void)state;
    refused("redis://user:" SECRET "@127.0.0.1:1/0", REIGN_EBACKEND, "127.0.0.1");
    refused("redis://:" SECRET "@[::1]:1/0", REIGN_EBACKEND, NULL);
    refused("redis://us%40er:" SECRET "%3A%40@127.0.0.1:1/0", REIGN_EBACKEND, NULL);
    /* the redis backend connects before it looks at the parameters: the
     * unknown one is named after the connection error */
    refused("redis://user:" SECRET "@127.0.0.1:1/0?bogus=1", 0, "bogus");
    refused("redis://user:" SECRET "@127.0.0.1:99999/0", REIGN_EURI, NULL);
}

/* Finding F2: "redis:///u:pw@host" (one slash too many) has an empty
 * authority, so nothing is redacted and the text after it is the path. */
static void test_redis_password_is_hidden_with_an_empty_authority(void **state)
{
    (void)state;
    refused("redis:///u:" SECRET "@127.0.0.1:1/0", REIGN_EURI, NULL);
}
#endif

#ifdef REIGN_WITH_POSTGRES
/* libpq takes password= in the query too; reign refuses it there, since
 * the redacted URI keeps the query — and must not show it while refusing. */
static void test_postgres_password_in_the_query_is_refused_without_showing_it(void **state)
{
    (void)state;
    refused("postgres://u@127.0.0.1:1/db?password=" SECRET, REIGN_EURI, "password");
}
#endif

/* "_reign/" IDs are the core's member slots: no program may campaign for
 * one (it would show as a fake member), while the core's own slot
 * elections go on working and reading a slot stays allowed. */
static void test_reserved_resource_ids_are_refused_and_membership_still_works(void **state)
{
    (void)state;
    reign_factory *f = open_as("mem://hostile-reserved", "me", "weight=1", NULL);
    reign_election *e = NULL;
    const char *ids[] = {"_reign/member/5", "_reign/", "_reign/x/y"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        assert_int_equal(reign_election_new(f, ids[i], &e), REIGN_EINVAL);
        assert_null(e);
        assert_non_null(strstr(reign_last_error(), "reserved"));
    }
    /* Not reserved: only the exact prefix is. */
    assert_int_equal(reign_election_new(f, "_reign", &e), REIGN_OK);
    assert_int_equal(reign_election_close(e), REIGN_OK);
    e = NULL;
    assert_int_equal(reign_election_new(f, "reign/member/5", &e), REIGN_OK);
    assert_int_equal(reign_election_close(e), REIGN_OK);

    reign_membership_config mc = REIGN_MEMBERSHIP_CONFIG_INIT;
    mc.refresh_interval_ms = 20;
    assert_int_equal(reign_factory_join(f, &mc), REIGN_OK);
    reign_member *m = NULL;
    size_t n = 0;
    for (int tries = 0; tries < 200 && n == 0; tries++) {
        assert_int_equal(reign_factory_members(f, &m, &n), REIGN_OK);
        if (n == 0) {
            reign_members_free(m, n);
            m = NULL;
            usleep(10000);
        }
    }
    assert_int_equal(n, 1);
    assert_string_equal(m[0].instance_id, "me");
    reign_members_free(m, n);
    reign_master *slot = NULL;
    int rc = reign_factory_current_master(f, "_reign/member/0", &slot);
    assert_true(rc == REIGN_OK || rc == REIGN_ENOMASTER);
    reign_master_free(slot);
    assert_int_equal(reign_factory_close(f), REIGN_OK);
}

/* The initialisers for other languages: the macros' defaults, and a
 * struct of another size refused before anything is written. */
static void test_init_functions_fill_defaults_and_refuse_a_wrong_size(void **state)
{
    (void)state;
    reign_options o;
    memset(&o, 0x5a, sizeof o);
    assert_int_equal(reign_options_init(&o, sizeof o), REIGN_OK);
    reign_options want = REIGN_OPTIONS_INIT;
    assert_int_equal(o.version, want.version);
    assert_null(o.instance_id);
    assert_int_equal(o.ttl_ms, 0);
    reign_shard_config sc;
    memset(&sc, 0x5a, sizeof sc);
    assert_int_equal(reign_shard_config_init(&sc, sizeof sc), REIGN_OK);
    reign_shard_config sc_want = REIGN_SHARD_CONFIG_INIT;
    assert_int_equal(sc.version, sc_want.version);
    assert_true(sc.balance);
    assert_int_equal(sc.runner.pre_election_pause_ms, sc_want.runner.pre_election_pause_ms);
    assert_int_equal(sc.membership.version, REIGN_MEMBERSHIP_CONFIG_VERSION);
    reign_runner_config rc;
    assert_int_equal(reign_runner_config_init(&rc, sizeof rc), REIGN_OK);
    assert_int_equal(reign_runner_config_check(&rc), REIGN_OK);
    reign_membership_config mc;
    assert_int_equal(reign_membership_config_init(&mc, sizeof mc), REIGN_OK);

    unsigned char small[8];
    memset(small, 0x5a, sizeof small);
    assert_int_equal(reign_options_init((reign_options *)(void *)small, sizeof small), REIGN_EINVAL);
    assert_non_null(strstr(reign_last_error(), "bytes"));
    for (size_t i = 0; i < sizeof small; i++)
        assert_int_equal(small[i], 0x5a);
    assert_int_equal(reign_shard_config_init(NULL, sizeof sc), REIGN_EINVAL);
    assert_int_equal(reign_struct_size("reign_shard_config"), sizeof(reign_shard_config));
    assert_int_equal(reign_struct_size("reign_options"), sizeof(reign_options));
    assert_int_equal(reign_struct_size("no_such_struct"), 0);
    assert_int_equal(reign_struct_size(NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostile_resource_ids_are_kept_apart_on_mem),
        cmocka_unit_test(test_reserved_resource_ids_are_refused_and_membership_still_works),
        cmocka_unit_test(test_init_functions_fill_defaults_and_refuse_a_wrong_size),
        cmocka_unit_test(test_hostile_resource_ids_are_kept_apart_on_file),
        cmocka_unit_test(test_resource_id_of_1025_bytes_is_refused_and_1024_accepted_on_mem),
        cmocka_unit_test(test_resource_id_of_1025_bytes_is_refused_and_1024_accepted_on_file),
        cmocka_unit_test(test_metadata_with_quotes_and_control_bytes_round_trips_on_mem),
        cmocka_unit_test(test_metadata_with_quotes_and_control_bytes_round_trips_on_file),
        cmocka_unit_test(test_metrics_keep_hostile_resource_ids_apart_and_parseable),
        cmocka_unit_test(test_unknown_query_parameter_is_refused_by_name),
        cmocka_unit_test(test_duplicated_query_parameter_is_refused),
        cmocka_unit_test(test_bad_query_values_are_refused_by_name),
        cmocka_unit_test(test_malformed_uris_are_refused),
        cmocka_unit_test(test_password_is_hidden_when_the_uri_is_refused),
        cmocka_unit_test(test_password_is_hidden_when_the_scheme_is_malformed),
#ifdef REIGN_WITH_REDIS
        cmocka_unit_test(test_redis_password_is_hidden_when_the_server_is_unreachable),
        cmocka_unit_test(test_redis_password_is_hidden_with_an_empty_authority),
#endif
#ifdef REIGN_WITH_POSTGRES
        cmocka_unit_test(test_postgres_password_in_the_query_is_refused_without_showing_it),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
