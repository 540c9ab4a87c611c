/* Replies of the redis:// backend's scripts → lease op results. Every
 * element is checked for type and range: a server (or something posing as
 * one) may send anything, and that must end in REIGN_EPROTO, never a crash.
 *
 * Shapes, as the scripts in redis_scripts.c return them:
 *   ACQUIRE  [1, term] | [0, holder, term, meta|nil, pttl]
 *   RENEW    1 | 0            RELEASE  1 | 0
 *   READ     nil | [holder, term, meta|nil, pttl]
 */
#include "redis_reply.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_keys.h"

static const char *type_name(int type)
{
    switch (type) {
    case REDIS_REPLY_STRING: return "string";
    case REDIS_REPLY_ARRAY: return "array";
    case REDIS_REPLY_INTEGER: return "integer";
    case REDIS_REPLY_NIL: return "nil";
    case REDIS_REPLY_STATUS: return "status";
    case REDIS_REPLY_ERROR: return "error";
    }
    return "unknown type";
}

static bool starts_with(const char *text, size_t len, const char *word)
{
    size_t n = strlen(word);
    /* the error code is the first word: "NOAUTH Authentication required." */
    return len >= n && memcmp(text, word, n) == 0 && (len == n || text[n] == ' ');
}

bool reign_redis_reply_is_noscript(const redisReply *reply)
{
    return reply != NULL && reply->type == REDIS_REPLY_ERROR && reply->str != NULL &&
           starts_with(reply->str, reply->len, "NOSCRIPT");
}

int reign_redis_error_status(const char *text, size_t len)
{
    if (text == NULL) {
        return REIGN_EBACKEND;
    }
    if (starts_with(text, len, "NOAUTH") || starts_with(text, len, "WRONGPASS") ||
        starts_with(text, len, "NOPERM")) {
        return REIGN_EAUTH;
    }
    if (starts_with(text, len, "WRONGTYPE")) {
        return REIGN_EPROTO; /* our key holds something we did not write */
    }
    /* OOM, LOADING, BUSY, READONLY, MASTERDOWN, MOVED, ERR …: the server
     * is there but cannot serve us now; the engine retries. */
    return REIGN_EBACKEND;
}

static int fail(char *err, size_t err_size, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Write the cause into err and return status. */
static int fail(char *err, size_t err_size, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
    return status;
}

/* A term: a positive integer reply, or a string of decimal digits (the
 * hash field), overflow-checked. */
static int get_term(const redisReply *r, uint64_t *out, char *err, size_t err_size)
{
    uint64_t v = 0;
    if (r->type == REDIS_REPLY_INTEGER) {
        if (r->integer <= 0) {
            return fail(err, err_size, REIGN_EPROTO, "term %lld is not positive", r->integer);
        }
        *out = (uint64_t)r->integer;
        return REIGN_OK;
    }
    if (r->type != REDIS_REPLY_STRING) {
        return fail(err, err_size, REIGN_EPROTO, "term is of type %s, not a number",
                    type_name(r->type));
    }
    if (r->str == NULL || r->len == 0 || r->len > 20) {
        return fail(err, err_size, REIGN_EPROTO, "term is not a decimal number of 1..20 digits");
    }
    for (size_t i = 0; i < r->len; i++) {
        char c = r->str[i];
        if (c < '0' || c > '9') {
            char shown[48];
            reign_printable(r->str, r->len, shown, sizeof(shown));
            return fail(err, err_size, REIGN_EPROTO, "term '%s' is not a decimal number", shown);
        }
        uint64_t d = (uint64_t)(c - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return fail(err, err_size, REIGN_EPROTO, "term is out of range");
        }
        v = v * 10 + d;
    }
    if (v == 0) {
        return fail(err, err_size, REIGN_EPROTO, "term is zero");
    }
    *out = v;
    return REIGN_OK;
}

/* A copy of a string reply; nil gives NULL when nil_ok. */
static int get_string(const redisReply *r, const char *what, bool nil_ok, char **out, char *err,
                      size_t err_size)
{
    *out = NULL;
    if (r->type == REDIS_REPLY_NIL && nil_ok) {
        return REIGN_OK;
    }
    if (r->type != REDIS_REPLY_STRING || (r->str == NULL && r->len > 0)) {
        snprintf(err, err_size, "%s is of type %s, not a string", what, type_name(r->type));
        return REIGN_EPROTO;
    }
    if (r->len > 0 && memchr(r->str, '\0', r->len) != NULL) {
        return fail(err, err_size, REIGN_EPROTO, "%s holds a NUL byte", what);
    }
    char *s = malloc(r->len + 1);
    if (s == NULL) {
        return fail(err, err_size, REIGN_ENOMEM, "out of memory copying the %s", what);
    }
    if (r->len > 0) {
        memcpy(s, r->str, r->len);
    }
    s[r->len] = '\0';
    *out = s;
    return REIGN_OK;
}

/* holder, term, meta, pttl from four consecutive elements; sets op's out_*
 * only when all four are good. */
static int get_lease(reign_op *op, redisReply *const *el, char *err, size_t err_size)
{
    char *holder = NULL, *meta = NULL;
    uint64_t term = 0;
    int rc = get_string(el[0], "holder", false, &holder, err, err_size);
    if (rc == REIGN_OK && holder[0] == '\0') {
        rc = fail(err, err_size, REIGN_EPROTO, "holder is empty");
    }
    if (rc == REIGN_OK) {
        rc = get_term(el[1], &term, err, err_size);
    }
    if (rc == REIGN_OK) {
        rc = get_string(el[2], "metadata", true, &meta, err, err_size);
    }
    if (rc == REIGN_OK && el[3]->type != REDIS_REPLY_INTEGER) {
        snprintf(err, err_size, "remaining time is of type %s, not an integer",
                 type_name(el[3]->type));
        rc = REIGN_EPROTO;
    }
    if (rc != REIGN_OK) {
        free(holder);
        free(meta);
        return rc;
    }
    op->out_holder = holder;
    op->out_metadata = meta;
    op->out_term = term;
    /* PTTL: -1 no expiry (should not happen), -2 gone: both "unknown" */
    op->out_remaining_ms = el[3]->integer >= 0 ? (int64_t)el[3]->integer : -1;
    return REIGN_OK;
}

static int parse_acquire(reign_op *op, const redisReply *r, char *err, size_t err_size)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 || r->element == NULL) {
        return fail(err, err_size, REIGN_EPROTO, "expected [1, term] or [0, holder, ...], got %s",
                    r->type == REDIS_REPLY_ARRAY ? "a short array" : type_name(r->type));
    }
    const redisReply *flag = r->element[0];
    if (flag->type != REDIS_REPLY_INTEGER || (flag->integer != 0 && flag->integer != 1)) {
        return fail(err, err_size, REIGN_EPROTO, "first element is %s, not 0 or 1",
                    flag->type == REDIS_REPLY_INTEGER ? "another integer" : type_name(flag->type));
    }
    if (flag->integer == 1) {
        uint64_t term = 0;
        int rc = get_term(r->element[1], &term, err, err_size);
        if (rc != REIGN_OK) {
            return rc;
        }
        op->out_term = term;
        op->result = REIGN_RES_OK;
        return REIGN_OK;
    }
    if (r->elements != 5) {
        return fail(err, err_size, REIGN_EPROTO,
                    "held-lease reply has %zu elements, expected "
                    "[0, holder, term, meta, pttl]",
                    r->elements);
    }
    int rc = get_lease(op, r->element + 1, err, err_size);
    if (rc == REIGN_OK) {
        op->result = REIGN_RES_HELD;
    }
    return rc;
}

/* RENEW and RELEASE: 1 = done, 0 = not our lease (any more). */
static int parse_flag(reign_op *op, const redisReply *r, char *err, size_t err_size)
{
    if (r->type != REDIS_REPLY_INTEGER || (r->integer != 0 && r->integer != 1)) {
        return fail(err, err_size, REIGN_EPROTO, "expected 1 or 0, got %s",
                    r->type == REDIS_REPLY_INTEGER ? "another integer" : type_name(r->type));
    }
    op->result = r->integer == 1 ? REIGN_RES_OK : REIGN_RES_LOST;
    return REIGN_OK;
}

static int parse_read(reign_op *op, const redisReply *r, char *err, size_t err_size)
{
    if (r->type == REDIS_REPLY_NIL) {
        op->result = REIGN_RES_NONE;
        return REIGN_OK;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 4 || r->element == NULL) {
        return fail(
            err, err_size, REIGN_EPROTO, "expected nil or [holder, term, meta, pttl], got %s",
            r->type == REDIS_REPLY_ARRAY ? "an array of another length" : type_name(r->type));
    }
    int rc = get_lease(op, r->element, err, err_size);
    if (rc == REIGN_OK) {
        op->result = REIGN_RES_OK;
    }
    return rc;
}

int reign_redis_reply_parse(reign_op *op, const redisReply *reply, char *err, size_t err_size)
{
    if (reply == NULL) {
        return fail(err, err_size, REIGN_EPROTO, "no reply");
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        char shown[200];
        reign_printable(reply->str != NULL ? reply->str : "",
                              reply->str != NULL ? reply->len : 0, shown, sizeof(shown));
        snprintf(err, err_size, "server error: %s", shown);
        return reign_redis_error_status(reply->str, reply->len);
    }
    /* Nested replies are checked before use: hiredis could hand us NULL
     * elements only on its own bugs, but garbage must never crash us. */
    if (reply->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < reply->elements; i++) {
            if (reply->element == NULL || reply->element[i] == NULL) {
                return fail(err, err_size, REIGN_EPROTO, "array with a missing element");
            }
        }
    }
    switch (op->kind) {
    case REIGN_OP_ACQUIRE: return parse_acquire(op, reply, err, err_size);
    case REIGN_OP_RENEW:
    case REIGN_OP_RELEASE: return parse_flag(op, reply, err, err_size);
    case REIGN_OP_READ: return parse_read(op, reply, err, err_size);
    }
    snprintf(err, err_size, "unknown op kind %d", (int)op->kind);
    return REIGN_EBUG;
}

/* hiredis' default functions are one static table, the same for every
 * reader it creates: copied once, with createArray wrapped. */
static redisReplyObjectFunctions limited_functions;
static void *(*default_create_array)(const redisReadTask *, int);
static pthread_once_t limited_once = PTHREAD_ONCE_INIT;

static void *create_array_limited(const redisReadTask *task, int elements)
{
    if (elements < 0 || elements > REIGN_REDIS_MAX_ELEMENTS) {
        return NULL; /* the reader reports "Out of memory" and stops */
    }
    return default_create_array(task, elements);
}

static void init_limited(void)
{
    redisReader *probe = redisReaderCreate();
    if (probe != NULL && probe->fn != NULL && probe->fn->createArray != NULL) {
        limited_functions = *probe->fn;
        default_create_array = probe->fn->createArray;
        limited_functions.createArray = create_array_limited;
    }
    redisReaderFree(probe);
}

void reign_redis_reader_limit(redisReader *reader)
{
    pthread_once(&limited_once, init_limited);
    /* only a reader with hiredis' own functions: anything else is left as is */
    if (reader != NULL && reader->fn != NULL && default_create_array != NULL &&
        reader->fn->createArray == default_create_array) {
        reader->fn = &limited_functions;
    }
}
