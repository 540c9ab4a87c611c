/* S3 error documents and HTTP statuses → reign statuses. Bounded scanning
 * only: no recursion, no allocation, never past the given length, so any
 * bytes a server (or a fuzzer) sends are safe to pass in. */
#include "s3_xml.h"

#include <stdio.h>
#include <string.h>

#include "reign/reign.h"

/* The first occurrence of needle in [p, end), or NULL. */
static const char *find(const char *p, const char *end, const char *needle)
{
    size_t n = strlen(needle);
    if (n == 0 || p == NULL || p > end) {
        return NULL;
    }
    for (; (size_t)(end - p) >= n; p++) {
        if (*p == needle[0] && memcmp(p, needle, n) == 0) {
            return p;
        }
    }
    return NULL;
}

static bool starts(const char *p, const char *end, const char *prefix)
{
    size_t n = strlen(prefix);
    return (size_t)(end - p) >= n && memcmp(p, prefix, n) == 0;
}

static const char *skip_blank(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) {
        p++;
    }
    return p;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Decode text content [p, end) into out: the five XML entities and numeric
 * references; anything that is not printable ASCII becomes '?'. Truncates
 * to out_size - 1 bytes. */
static void text_of(const char *p, const char *end, char *out, size_t out_size)
{
    size_t j = 0;
    while (p < end && j + 1 < out_size) {
        char c = *p++;
        if (c == '&') {
            static const struct {
                const char *name;
                char c;
            } ents[] = {{"lt;", '<'}, {"gt;", '>'}, {"amp;", '&'}, {"quot;", '"'}, {"apos;", '\''}};
            bool done = false;
            for (size_t k = 0; k < sizeof ents / sizeof ents[0] && !done; k++) {
                if (starts(p, end, ents[k].name)) {
                    c = ents[k].c;
                    p += strlen(ents[k].name);
                    done = true;
                }
            }
            if (!done && p < end && *p == '#') {
                /* &#NN; or &#xNN; — keep ASCII, the rest is '?' */
                const char *q = p + 1;
                bool hex = q < end && (*q == 'x' || *q == 'X');
                q += hex;
                long v = 0;
                int digits = 0;
                while (q < end && digits < 8 && (hex ? hexval(*q) >= 0 : (*q >= '0' && *q <= '9'))) {
                    v = v * (hex ? 16 : 10) + (hex ? hexval(*q) : *q - '0');
                    q++;
                    digits++;
                }
                if (digits > 0 && q < end && *q == ';') {
                    c = v >= 0x20 && v < 0x7f ? (char)v : '?';
                    p = q + 1;
                }
            }
        }
        unsigned char u = (unsigned char)c;
        out[j++] = u >= 0x20 && u < 0x7f ? c : (c == '\n' || c == '\t' ? ' ' : '?');
    }
    out[j] = '\0';
}

/* Content of <tag>…</tag> in [p, end): true with [*from, *to). */
static bool element(const char *p, const char *end, const char *open, const char *close,
                    const char **from, const char **to)
{
    const char *a = find(p, end, open);
    if (a == NULL) {
        return false;
    }
    a += strlen(open);
    const char *b = find(a, end, close);
    if (b == NULL) {
        return false;
    }
    *from = a;
    *to = b;
    return true;
}

bool reign_s3_error_parse(const char *body, size_t len, reign_s3_error *out)
{
    if (body == NULL) {
        return false;
    }
    const char *p = body, *end = body + len;
    if (starts(p, end, "\xEF\xBB\xBF")) { /* a UTF-8 byte order mark */
        p += 3;
    }
    p = skip_blank(p, end);
    if (starts(p, end, "<?xml")) {
        const char *q = find(p, end, "?>");
        if (q == NULL) {
            return false;
        }
        p = skip_blank(q + 2, end);
    }
    if (!starts(p, end, "<Error>")) {
        return false;
    }
    p += strlen("<Error>");
    const char *stop = find(p, end, "</Error>");
    if (stop == NULL) {
        return false; /* truncated */
    }
    const char *a, *b;
    if (!element(p, stop, "<Code>", "</Code>", &a, &b)) {
        return false;
    }
    reign_s3_error e;
    memset(&e, 0, sizeof e);
    if (b == a || (size_t)(b - a) >= sizeof e.code) {
        return false;
    }
    for (const char *c = a; c < b; c++) {
        bool ok = (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
                  *c == '.';
        if (!ok) {
            return false;
        }
    }
    memcpy(e.code, a, (size_t)(b - a));
    if (element(p, stop, "<Message>", "</Message>", &a, &b)) {
        text_of(a, b, e.message, sizeof e.message);
    }
    *out = e;
    return true;
}

/* ---- classification ---------------------------------------------------------- */

static bool only_blank(const char *body, size_t len)
{
    return body == NULL || skip_blank(body, body + len) == body + len;
}

static bool code_in(const char *code, const char *const *set)
{
    for (; *set != NULL; set++) {
        if (strcmp(code, *set) == 0) {
            return true;
        }
    }
    return false;
}

/* "HTTP 403 AccessDenied: Access Denied" + an optional hint */
static void s3_cause(char *cause, size_t size, long http, const reign_s3_error *e, const char *hint)
{
    snprintf(cause, size, "HTTP %ld %s%s%s%s%s", http, e->code, e->message[0] ? ": " : "",
             e->message, hint ? "; " : "", hint ? hint : "");
}

reign_s3_outcome reign_s3_classify(long http, const char *body, size_t len, int *status,
                                   char *cause, size_t cause_size)
{
    static const char *const auth_codes[] = {
        "AccessDenied",          "InvalidAccessKeyId", "SignatureDoesNotMatch",
        "RequestTimeTooSkewed",  "ExpiredToken",       "InvalidToken",
        "TokenRefreshRequired",  "AllAccessDisabled",  "AuthorizationHeaderMalformed",
        "InvalidSecurity",       "AccountProblem",     "MissingSecurityHeader",
        NULL};
    reign_s3_error e;
    bool s3 = reign_s3_error_parse(body, len, &e);

    if (http >= 200 && http < 300) {
        return REIGN_S3_OUT_OK;
    }
    if (http == 412 || http == 409) {
        return REIGN_S3_OUT_CONFLICT;
    }
    if (http == 404 && ((s3 && strcmp(e.code, "NoSuchKey") == 0) || (!s3 && only_blank(body, len)))) {
        return REIGN_S3_OUT_ABSENT;
    }
    if (http >= 500 || http == 429) {
        /* 500 is also how RGW answers the losers of an If-Match race */
        *status = REIGN_EBACKEND;
        if (s3) {
            s3_cause(cause, cause_size, http, &e, "outcome unknown, retrying");
        } else {
            snprintf(cause, cause_size, "HTTP %ld from the server; outcome unknown, retrying", http);
        }
        return REIGN_S3_OUT_UNKNOWN;
    }
    if (!s3) {
        *status = REIGN_EPROTO;
        if (http < 100) {
            snprintf(cause, cause_size, "no HTTP status in the answer: not an S3 endpoint?");
        } else {
            snprintf(cause, cause_size,
                     "HTTP %ld with %s that is not an S3 error document: not an S3 endpoint?",
                     http, only_blank(body, len) ? "an empty body" : "a body");
        }
        return REIGN_S3_OUT_FAILED;
    }
    if (strcmp(e.code, "SlowDown") == 0) {
        *status = REIGN_EBACKEND;
        s3_cause(cause, cause_size, http, &e, "the server asks to slow down");
        return REIGN_S3_OUT_UNKNOWN;
    }
    if (http == 401 || http == 403 || code_in(e.code, auth_codes)) {
        const char *hint = NULL;
        if (strcmp(e.code, "RequestTimeTooSkewed") == 0) {
            hint = "this machine's clock is off by more than 15 minutes";
        } else if (strcmp(e.code, "SignatureDoesNotMatch") == 0) {
            hint = "check AWS_SECRET_ACCESS_KEY";
        } else if (strcmp(e.code, "InvalidAccessKeyId") == 0) {
            hint = "check AWS_ACCESS_KEY_ID";
        } else if (strcmp(e.code, "AuthorizationHeaderMalformed") == 0) {
            hint = "check region= or AWS_REGION";
        } else if (strcmp(e.code, "AccessDenied") == 0) {
            hint = "the credentials need s3:GetObject, s3:PutObject and s3:ListBucket";
        }
        *status = REIGN_EAUTH;
        s3_cause(cause, cause_size, http, &e, hint);
        return REIGN_S3_OUT_FAILED;
    }
    *status = REIGN_EBACKEND;
    if (strcmp(e.code, "NoSuchBucket") == 0) {
        s3_cause(cause, cause_size, http, &e, "the bucket does not exist: create it or fix the URI");
    } else if (http >= 300 && http < 400) {
        s3_cause(cause, cause_size, http, &e,
                 "the bucket is elsewhere: set region= or endpoint=, or path_style=");
    } else {
        s3_cause(cause, cause_size, http, &e, NULL);
    }
    return REIGN_S3_OUT_FAILED;
}
