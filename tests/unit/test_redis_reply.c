/* Unit tests of the redis:// backend's pure parts, no server: script
 * replies (fed as RESP bytes through hiredis' reader) → op results, error
 * mapping, key names and their Cluster slot, and a seeded fuzz of both. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#ifdef REIGN_WITH_REDIS

#include "../../backends/redis/redis_keys.h"
#include "../../backends/redis/redis_reply.h"

/* ---- helpers -------------------------------------------------------------- */

/* The reply hiredis makes of `resp` (one complete reply). */
static redisReply *reply_of(const char *resp, size_t len)
{
    redisReader *rd = redisReaderCreate();
    assert_non_null(rd);
    assert_int_equal(redisReaderFeed(rd, resp, len), REDIS_OK);
    void *r = NULL;
    assert_int_equal(redisReaderGetReply(rd, &r), REDIS_OK);
    assert_non_null(r);
    redisReaderFree(rd);
    return r;
}

typedef struct parsed {
    int rc;
    reign_op op;
    char err[256];
} parsed;

static parsed parse_n(reign_op_kind kind, const char *resp, size_t len)
{
    parsed p;
    memset(&p, 0, sizeof(p));
    p.op.kind = kind;
    p.op.resource = "jobs/7";
    p.op.resource_len = 6;
    redisReply *r = reply_of(resp, len);
    p.rc = reign_redis_reply_parse(&p.op, r, p.err, sizeof(p.err));
    freeReplyObject(r);
    return p;
}

static parsed parse(reign_op_kind kind, const char *resp)
{
    return parse_n(kind, resp, strlen(resp));
}

static void parsed_free(parsed *p)
{
    free(p->op.out_holder);
    free(p->op.out_metadata);
    free(p->op.out_error);
}

/* A failed parse leaves the op as it was. */
static void assert_untouched(const parsed *p)
{
    assert_int_equal(p->op.result, REIGN_RES_UNSET);
    assert_null(p->op.out_holder);
    assert_null(p->op.out_metadata);
    assert_int_equal(p->op.out_term, 0);
}

/* ---- ACQUIRE -------------------------------------------------------------- */

static void test_acquire_reply_of_one_and_term_gives_ok_with_that_term(void **state)
{
    (void)state;
    parsed p = parse(REIGN_OP_ACQUIRE, "*2\r\n:1\r\n:7\r\n");
    assert_int_equal(p.rc, REIGN_OK);
    assert_int_equal(p.op.result, REIGN_RES_OK);
    assert_int_equal(p.op.out_term, 7);
    assert_null(p.op.out_holder);
    parsed_free(&p);
}

static void
test_acquire_reply_of_zero_gives_held_with_holder_term_metadata_and_time_left(void **state)
{
    (void)state;
    parsed p = parse(REIGN_OP_ACQUIRE,
                     "*5\r\n:0\r\n$6\r\nhost:1\r\n$2\r\n42\r\n$9\r\n10.0.0.5:\r\n:9500\r\n");
    assert_int_equal(p.rc, REIGN_OK);
    assert_int_equal(p.op.result, REIGN_RES_HELD);
    assert_string_equal(p.op.out_holder, "host:1");
    assert_int_equal(p.op.out_term, 42);
    assert_string_equal(p.op.out_metadata, "10.0.0.5:");
    assert_int_equal(p.op.out_remaining_ms, 9500);
    parsed_free(&p);
}

static void test_held_lease_without_metadata_gives_null_metadata(void **state)
{
    (void)state;
    parsed p = parse(REIGN_OP_ACQUIRE, "*5\r\n:0\r\n$1\r\nA\r\n$1\r\n3\r\n$-1\r\n:10\r\n");
    assert_int_equal(p.rc, REIGN_OK);
    assert_int_equal(p.op.result, REIGN_RES_HELD);
    assert_null(p.op.out_metadata);
    parsed_free(&p);
}

static void test_held_lease_with_empty_metadata_gives_empty_string(void **state)
{
    (void)state;
    parsed p = parse(REIGN_OP_ACQUIRE, "*5\r\n:0\r\n$1\r\nA\r\n$1\r\n3\r\n$0\r\n\r\n:10\r\n");
    assert_int_equal(p.rc, REIGN_OK);
    assert_string_equal(p.op.out_metadata, "");
    parsed_free(&p);
}

static void test_negative_pttl_gives_unknown_time_left(void **state)
{
    (void)state;
    parsed p = parse(REIGN_OP_ACQUIRE, "*5\r\n:0\r\n$1\r\nA\r\n$1\r\n3\r\n$0\r\n\r\n:-1\r\n");
    assert_int_equal(p.rc, REIGN_OK);
    assert_int_equal(p.op.out_remaining_ms, -1);
    parsed_free(&p);
}

static void test_acquire_reply_too_short_is_a_protocol_error(void **state)
{
    (void)state;
    parsed p = parse(REIGN_OP_ACQUIRE, "*1\r\n:1\r\n");
    assert_int_equal(p.rc, REIGN_EPROTO);
    assert_untouched(&p);
    assert_non_null(strstr(p.err, "short array"));
}

static void test_held_reply_of_wrong_length_is_a_protocol_error(void **state)
{
    (void)state;
    parsed p = parse(REIGN_OP_ACQUIRE, "*4\r\n:0\r\n$1\r\nA\r\n$1\r\n3\r\n$0\r\n\r\n");
    assert_int_equal(p.rc, REIGN_EPROTO);
    assert_untouched(&p);
}

static void test_acquire_flag_other_than_zero_or_one_is_a_protocol_error(void **state)
{
    (void)state;
    parsed p = parse(REIGN_OP_ACQUIRE, "*2\r\n:2\r\n:7\r\n");
    assert_int_equal(p.rc, REIGN_EPROTO);
    assert_untouched(&p);
}

static void test_holder_with_a_nul_byte_is_a_protocol_error(void **state)
{
    (void)state;
    static const char resp[] = "*5\r\n:0\r\n$3\r\nA\0B\r\n$1\r\n3\r\n$0\r\n\r\n:10\r\n";
    parsed p = parse_n(REIGN_OP_ACQUIRE, resp, sizeof(resp) - 1);
    assert_int_equal(p.rc, REIGN_EPROTO);
    assert_untouched(&p);
    assert_non_null(strstr(p.err, "NUL"));
}

static void test_empty_holder_is_a_protocol_error(void **state)
{
    (void)state;
    parsed p = parse(REIGN_OP_READ, "*4\r\n$0\r\n\r\n$1\r\n3\r\n$0\r\n\r\n:10\r\n");
    assert_int_equal(p.rc, REIGN_EPROTO);
    assert_untouched(&p);
}

static void test_holder_of_wrong_type_is_a_protocol_error(void **state)
{
    (void)state;
    parsed p = parse(REIGN_OP_READ, "*4\r\n:5\r\n$1\r\n3\r\n$0\r\n\r\n:10\r\n");
    assert_int_equal(p.rc, REIGN_EPROTO);
    assert_untouched(&p);
    assert_non_null(strstr(p.err, "holder is of type integer"));
}

/* ---- terms ---------------------------------------------------------------- */

static void test_term_zero_is_a_protocol_error(void **state)
{
    (void)state;
    parsed p = parse(REIGN_OP_ACQUIRE, "*2\r\n:1\r\n:0\r\n");
    assert_int_equal(p.rc, REIGN_EPROTO);
    assert_untouched(&p);
    parsed q = parse(REIGN_OP_READ, "*4\r\n$1\r\nA\r\n$1\r\n0\r\n$0\r\n\r\n:10\r\n");
    assert_int_equal(q.rc, REIGN_EPROTO);
    assert_untouched(&q);
}

static void test_negative_term_is_a_protocol_error(void **state)
{
    (void)state;
    parsed p = parse(REIGN_OP_ACQUIRE, "*2\r\n:1\r\n:-3\r\n");
    assert_int_equal(p.rc, REIGN_EPROTO);
    assert_untouched(&p);
}

static void test_term_with_letters_is_a_protocol_error(void **state)
{
    (void)state;
    parsed p = parse(REIGN_OP_READ, "*4\r\n$1\r\nA\r\n$3\r\n1e5\r\n$0\r\n\r\n:10\r\n");
    assert_int_equal(p.rc, REIGN_EPROTO);
    assert_untouched(&p);
    assert_non_null(strstr(p.err, "'1e5'"));
}

static void test_term_above_uint64_max_is_a_protocol_error(void **state)
{
    (void)state;
    parsed p =
        parse(REIGN_OP_READ, "*4\r\n$1\r\nA\r\n$20\r\n18446744073709551616\r\n$0\r\n\r\n:10\r\n");
    assert_int_equal(p.rc, REIGN_EPROTO);
    assert_untouched(&p);
}

static void test_term_of_uint64_max_is_accepted(void **state)
{
    (void)state;
    parsed p =
        parse(REIGN_OP_READ, "*4\r\n$1\r\nA\r\n$20\r\n18446744073709551615\r\n$0\r\n\r\n:10\r\n");
    assert_int_equal(p.rc, REIGN_OK);
    assert_true(p.op.out_term == UINT64_MAX);
    parsed_free(&p);
}

/* ---- RENEW, RELEASE, READ ------------------------------------------------- */

static void test_renew_reply_one_is_ok_and_zero_is_lost(void **state)
{
    (void)state;
    parsed p = parse(REIGN_OP_RENEW, ":1\r\n");
    assert_int_equal(p.rc, REIGN_OK);
    assert_int_equal(p.op.result, REIGN_RES_OK);
    parsed q = parse(REIGN_OP_RENEW, ":0\r\n");
    assert_int_equal(q.rc, REIGN_OK);
    assert_int_equal(q.op.result, REIGN_RES_LOST);
}

static void test_release_reply_one_is_ok_and_zero_is_lost(void **state)
{
    (void)state;
    parsed p = parse(REIGN_OP_RELEASE, ":1\r\n");
    assert_int_equal(p.op.result, REIGN_RES_OK);
    parsed q = parse(REIGN_OP_RELEASE, ":0\r\n");
    assert_int_equal(q.op.result, REIGN_RES_LOST);
}

static void test_renew_reply_of_other_shapes_is_a_protocol_error(void **state)
{
    (void)state;
    const char *bad[] = {":2\r\n", ":-1\r\n", "+OK\r\n", "$1\r\n1\r\n", "$-1\r\n", "*0\r\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        parsed p = parse(REIGN_OP_RENEW, bad[i]);
        assert_int_equal(p.rc, REIGN_EPROTO);
        assert_untouched(&p);
    }
}

static void test_read_of_nil_is_none(void **state)
{
    (void)state;
    parsed p = parse(REIGN_OP_READ, "$-1\r\n");
    assert_int_equal(p.rc, REIGN_OK);
    assert_int_equal(p.op.result, REIGN_RES_NONE);
    assert_null(p.op.out_holder);
}

static void test_read_of_a_lease_gives_holder_term_metadata_and_time_left(void **state)
{
    (void)state;
    parsed p = parse(REIGN_OP_READ, "*4\r\n$1\r\nB\r\n:12\r\n$2\r\nmd\r\n:250\r\n");
    assert_int_equal(p.rc, REIGN_OK);
    assert_int_equal(p.op.result, REIGN_RES_OK);
    assert_string_equal(p.op.out_holder, "B");
    assert_int_equal(p.op.out_term, 12);
    assert_string_equal(p.op.out_metadata, "md");
    assert_int_equal(p.op.out_remaining_ms, 250);
    parsed_free(&p);
}

static void test_status_reply_is_a_protocol_error_for_every_op(void **state)
{
    (void)state;
    for (int k = REIGN_OP_ACQUIRE; k <= REIGN_OP_READ; k++) {
        parsed p = parse((reign_op_kind)k, "+OK\r\n");
        assert_int_equal(p.rc, REIGN_EPROTO);
        assert_untouched(&p);
        assert_non_null(strstr(p.err, "status"));
    }
}

static void test_null_reply_is_a_protocol_error(void **state)
{
    (void)state;
    reign_op op = {0};
    char err[64];
    op.kind = REIGN_OP_READ;
    assert_int_equal(reign_redis_reply_parse(&op, NULL, err, sizeof(err)), REIGN_EPROTO);
    assert_int_equal(op.result, REIGN_RES_UNSET);
}

/* ---- server errors -------------------------------------------------------- */

static void test_server_errors_map_to_statuses(void **state)
{
    (void)state;
    static const struct {
        const char *resp;
        int status;
    } cases[] = {
        {"-NOAUTH Authentication required.\r\n", REIGN_EAUTH},
        {"-WRONGPASS invalid username-password pair\r\n", REIGN_EAUTH},
        {"-NOPERM this user has no permissions\r\n", REIGN_EAUTH},
        {"-OOM command not allowed when used memory > 'maxmemory'.\r\n", REIGN_EBACKEND},
        {"-LOADING Redis is loading the dataset in memory\r\n", REIGN_EBACKEND},
        {"-BUSY Redis is busy running a script.\r\n", REIGN_EBACKEND},
        {"-READONLY You can't write against a read only replica.\r\n", REIGN_EBACKEND},
        {"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n", REIGN_EPROTO},
        {"-ERR Error running script\r\n", REIGN_EBACKEND},
        {"-NOAUTHX something else\r\n", REIGN_EBACKEND},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        parsed p = parse(REIGN_OP_RENEW, cases[i].resp);
        assert_int_equal(p.rc, cases[i].status);
        assert_untouched(&p);
        /* the server's own words are in the message */
        assert_non_null(strstr(p.err, "server error: "));
        assert_memory_equal(p.err + strlen("server error: "), cases[i].resp + 1, 6);
    }
}

static void test_oom_message_carries_the_server_text(void **state)
{
    (void)state;
    parsed p =
        parse(REIGN_OP_ACQUIRE, "-OOM command not allowed when used memory > 'maxmemory'.\r\n");
    assert_int_equal(p.rc, REIGN_EBACKEND);
    assert_string_equal(p.err,
                        "server error: OOM command not allowed when used memory > 'maxmemory'.");
}

static void test_noscript_error_is_recognised_and_nothing_else_is(void **state)
{
    (void)state;
    const char *noscript = "-NOSCRIPT No matching script. Please use EVAL.\r\n";
    redisReply *r = reply_of(noscript, strlen(noscript));
    assert_true(reign_redis_reply_is_noscript(r));
    freeReplyObject(r);
    r = reply_of("-NOSCRIPTS x\r\n", 14);
    assert_false(reign_redis_reply_is_noscript(r));
    freeReplyObject(r);
    r = reply_of("$8\r\nNOSCRIPT\r\n", 14);
    assert_false(reign_redis_reply_is_noscript(r));
    freeReplyObject(r);
    assert_false(reign_redis_reply_is_noscript(NULL));
}

/* ---- keys ----------------------------------------------------------------- */

/* Redis Cluster's slot of a key: CRC16 (XMODEM) of the hash tag, mod 16384. */
static uint16_t crc16(const char *buf, size_t len)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)((unsigned char)buf[i] << 8);
        for (int b = 0; b < 8; b++) {
            crc = (crc & 0x8000) != 0 ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
        }
    }
    return crc;
}

static unsigned key_slot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len);
    if (open != NULL) {
        size_t rest = len - (size_t)(open - key) - 1;
        const char *close = memchr(open + 1, '}', rest);
        if (close != NULL && close > open + 1) {
            return crc16(open + 1, (size_t)(close - open - 1)) & 16383;
        }
    }
    return crc16(key, len) & 16383;
}

static const char *const tricky_ids[] = {"{a}", "a",     "*",        "../x",    "{a}}",
                                         "}",   "{",     "a}:lease", "a}:term", "{}",
                                         "",    "x{y}z", "?[]",      "a b"};
#define N_TRICKY (sizeof(tricky_ids) / sizeof(tricky_ids[0]))

static void test_keys_of_distinct_ids_are_distinct(void **state)
{
    (void)state;
    char *keys[2 * N_TRICKY];
    size_t lens[2 * N_TRICKY];
    size_t n = 0;
    for (size_t i = 0; i < N_TRICKY; i++) {
        if (tricky_ids[i][0] == '\0') {
            continue; /* not a valid ID; the engine never sends it */
        }
        for (int k = 0; k < 2; k++) {
            keys[n] = reign_redis_key("reign:", tricky_ids[i], strlen(tricky_ids[i]),
                                      (reign_redis_key_kind)k, &lens[n]);
            assert_non_null(keys[n]);
            n++;
        }
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t j = i + 1; j < n; j++) {
            if (lens[i] == lens[j] && memcmp(keys[i], keys[j], lens[i]) == 0) {
                fail_msg("key '%s' made twice (%zu, %zu)", keys[i], i, j);
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        free(keys[i]);
    }
}

static void test_lease_and_term_keys_of_an_id_share_a_cluster_slot(void **state)
{
    (void)state;
    /* prefixes hold no braces (refused at open) */
    const char *prefixes[] = {"reign:", "", "app/x:"};
    for (size_t p = 0; p < sizeof(prefixes) / sizeof(prefixes[0]); p++) {
        for (size_t i = 0; i < N_TRICKY; i++) {
            const char *id = tricky_ids[i];
            /* "" is no ID; one starting with '}' makes an empty hash tag,
             * which Redis replaces by the whole key: a documented limit */
            if (id[0] == '\0' || id[0] == '}') {
                continue;
            }
            size_t ll = 0, tl = 0;
            char *lease = reign_redis_key(prefixes[p], id, strlen(id), REIGN_REDIS_KEY_LEASE, &ll);
            char *term = reign_redis_key(prefixes[p], id, strlen(id), REIGN_REDIS_KEY_TERM, &tl);
            assert_non_null(lease);
            assert_non_null(term);
            unsigned ls = key_slot(lease, ll), ts = key_slot(term, tl);
            free(lease);
            free(term);
            if (ls != ts) {
                fail_msg("prefix '%s' id '%s': lease and term keys fall in slots %u and %u",
                         prefixes[p], id, ls, ts);
            }
        }
    }
}

static void test_key_holds_the_id_bytes_as_they_are(void **state)
{
    (void)state;
    const char id[] = "\x01\xff{x}\n";
    size_t len = 0;
    char *key = reign_redis_key("p:", id, sizeof(id) - 1, REIGN_REDIS_KEY_LEASE, &len);
    assert_non_null(key);
    const char want[] = "p:{\x01\xff{x}\n}:lease";
    assert_int_equal(len, sizeof(want) - 1);
    assert_memory_equal(key, want, len);
    assert_int_equal(key[len], '\0');
    free(key);
}

/* ---- fuzz ----------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Append a random but well-formed RESP value, depth-bounded, shaped like
 * our replies often enough to reach deep into the parser. */
static void gen_resp(char *buf, size_t cap, size_t *len, int depth)
{
    static const char *const words[] = {"0",  "1",    "7",       "-1", "18446744073709551615",
                                        "",   "A",    "1e5",     "00", "99999999999999999999",
                                        " 3", "host", "\x01\xff"};
    char tmp[128];
    int n = 0;
    switch (rnd() % (depth < 3 ? 6 : 5)) {
    case 0: n = snprintf(tmp, sizeof(tmp), ":%lld\r\n", (long long)(rnd() % 5) - 2); break;
    case 1: {
        const char *w = words[rnd() % (sizeof(words) / sizeof(words[0]))];
        n = snprintf(tmp, sizeof(tmp), "$%zu\r\n%s\r\n", strlen(w), w);
        break;
    }
    case 2: n = snprintf(tmp, sizeof(tmp), "$-1\r\n"); break;
    case 3: n = snprintf(tmp, sizeof(tmp), "+OK\r\n"); break;
    case 4: n = snprintf(tmp, sizeof(tmp), "-ERR x\r\n"); break;
    default: {
        size_t elems = rnd() % 7;
        n = snprintf(tmp, sizeof(tmp), "*%zu\r\n", elems);
        if (*len + (size_t)n < cap) {
            memcpy(buf + *len, tmp, (size_t)n);
            *len += (size_t)n;
        }
        for (size_t i = 0; i < elems; i++) {
            gen_resp(buf, cap, len, depth + 1);
        }
        return;
    }
    }
    if (*len + (size_t)n < cap) {
        memcpy(buf + *len, tmp, (size_t)n);
        *len += (size_t)n;
    }
}

/* Whatever the reply, parse either sets a result with sane outputs or
 * fails leaving the op untouched; ASan/UBSan watch the rest. */
static void check_any_reply(const redisReply *r)
{
    for (int k = REIGN_OP_ACQUIRE; k <= REIGN_OP_READ; k++) {
        reign_op op = {0};
        char err[128];
        op.kind = (reign_op_kind)k;
        int rc = reign_redis_reply_parse(&op, r, err, sizeof(err));
        if (rc == REIGN_OK) {
            assert_true(op.result >= REIGN_RES_OK && op.result <= REIGN_RES_NONE);
            if (op.result == REIGN_RES_HELD || (k == REIGN_OP_READ && op.result == REIGN_RES_OK)) {
                assert_non_null(op.out_holder);
                assert_true(op.out_term > 0);
                assert_true(op.out_remaining_ms >= -1);
            }
            if (k == REIGN_OP_ACQUIRE && op.result == REIGN_RES_OK) {
                assert_true(op.out_term > 0);
            }
        } else {
            assert_int_equal(op.result, REIGN_RES_UNSET);
            assert_null(op.out_holder);
            assert_null(op.out_metadata);
            assert_true(strlen(err) > 0);
        }
        free(op.out_holder);
        free(op.out_metadata);
    }
}

/* F7: hiredis 0.14 callocs a multi-bulk's element array from its declared
 * length; a limited reader refuses a huge one before allocating. */
static void test_limited_reader_refuses_a_huge_array_and_keeps_small_ones(void **state)
{
    (void)state;
    redisReader *rd = redisReaderCreate();
    assert_non_null(rd);
    reign_redis_reader_limit(rd);
    reign_redis_reader_limit(rd); /* twice is harmless */
    const char ok[] = "*2\r\n$1\r\na\r\n:7\r\n";
    assert_int_equal(redisReaderFeed(rd, ok, sizeof ok - 1), REDIS_OK);
    void *reply = NULL;
    assert_int_equal(redisReaderGetReply(rd, &reply), REDIS_OK);
    assert_non_null(reply);
    assert_int_equal(((redisReply *)reply)->elements, 2);
    freeReplyObject(reply);
    const char huge[] = "*674407370\r\n";
    assert_int_equal(redisReaderFeed(rd, huge, sizeof huge - 1), REDIS_OK);
    assert_int_equal(redisReaderGetReply(rd, &reply), REDIS_ERR);
    assert_null(reply);
    assert_int_not_equal(rd->err, 0);
    redisReaderFree(rd);

    rd = redisReaderCreate();
    reign_redis_reader_limit(rd);
    char edge[32];
    int n = snprintf(edge, sizeof edge, "*%d\r\n", REIGN_REDIS_MAX_ELEMENTS + 1);
    assert_int_equal(redisReaderFeed(rd, edge, (size_t)n), REDIS_OK);
    assert_int_equal(redisReaderGetReply(rd, &reply), REDIS_ERR);
    redisReaderFree(rd);
}

static void test_random_replies_never_crash_the_parser(void **state)
{
    (void)state;
    static char buf[1 << 16];
    int ok = 0;
    for (int iter = 0; iter < 20000; iter++) {
        size_t len = 0;
        gen_resp(buf, sizeof(buf), &len, 0);
        /* sometimes flip a byte: the reader must refuse, or we must cope */
        if (iter % 4 == 3 && len > 0) {
            buf[rnd() % len] = (char)rnd();
        }
        redisReader *rd = redisReaderCreate();
        assert_non_null(rd);
        void *r = NULL;
        if (redisReaderFeed(rd, buf, len) == REDIS_OK && redisReaderGetReply(rd, &r) == REDIS_OK &&
            r != NULL) {
            check_any_reply(r);
            freeReplyObject(r);
            ok++;
        }
        redisReaderFree(rd);
    }
    assert_true(ok > 10000); /* most inputs were whole replies */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_acquire_reply_of_one_and_term_gives_ok_with_that_term),
        cmocka_unit_test(
            test_acquire_reply_of_zero_gives_held_with_holder_term_metadata_and_time_left),
        cmocka_unit_test(test_held_lease_without_metadata_gives_null_metadata),
        cmocka_unit_test(test_held_lease_with_empty_metadata_gives_empty_string),
        cmocka_unit_test(test_negative_pttl_gives_unknown_time_left),
        cmocka_unit_test(test_acquire_reply_too_short_is_a_protocol_error),
        cmocka_unit_test(test_held_reply_of_wrong_length_is_a_protocol_error),
        cmocka_unit_test(test_acquire_flag_other_than_zero_or_one_is_a_protocol_error),
        cmocka_unit_test(test_holder_with_a_nul_byte_is_a_protocol_error),
        cmocka_unit_test(test_empty_holder_is_a_protocol_error),
        cmocka_unit_test(test_holder_of_wrong_type_is_a_protocol_error),
        cmocka_unit_test(test_term_zero_is_a_protocol_error),
        cmocka_unit_test(test_negative_term_is_a_protocol_error),
        cmocka_unit_test(test_term_with_letters_is_a_protocol_error),
        cmocka_unit_test(test_term_above_uint64_max_is_a_protocol_error),
        cmocka_unit_test(test_term_of_uint64_max_is_accepted),
        cmocka_unit_test(test_renew_reply_one_is_ok_and_zero_is_lost),
        cmocka_unit_test(test_release_reply_one_is_ok_and_zero_is_lost),
        cmocka_unit_test(test_renew_reply_of_other_shapes_is_a_protocol_error),
        cmocka_unit_test(test_read_of_nil_is_none),
        cmocka_unit_test(test_read_of_a_lease_gives_holder_term_metadata_and_time_left),
        cmocka_unit_test(test_status_reply_is_a_protocol_error_for_every_op),
        cmocka_unit_test(test_null_reply_is_a_protocol_error),
        cmocka_unit_test(test_server_errors_map_to_statuses),
        cmocka_unit_test(test_oom_message_carries_the_server_text),
        cmocka_unit_test(test_noscript_error_is_recognised_and_nothing_else_is),
        cmocka_unit_test(test_keys_of_distinct_ids_are_distinct),
        cmocka_unit_test(test_lease_and_term_keys_of_an_id_share_a_cluster_slot),
        cmocka_unit_test(test_key_holds_the_id_bytes_as_they_are),
        cmocka_unit_test(test_limited_reader_refuses_a_huge_array_and_keeps_small_ones),
        cmocka_unit_test(test_random_replies_never_crash_the_parser),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#else /* !REIGN_WITH_REDIS */

static void test_redis_backend_is_not_built(void **state)
{
    (void)state;
    skip(); /* configure with -DREIGN_WITH_REDIS=ON to run these tests */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redis_backend_is_not_built),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#endif /* REIGN_WITH_REDIS */
