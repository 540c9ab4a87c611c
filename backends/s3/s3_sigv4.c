/* AWS Signature Version 4 on OpenSSL: canonical request, string to sign,
 * signing key derivation and the Authorization header. No I/O, no clock.
 *
 * S3 differs from the generic algorithm in one place that matters here: the
 * path is URI-encoded once and never normalised (no dot-segment removal), so
 * the path is taken exactly as it goes on the wire. */
#include "s3_sigv4.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#define SIGV4_MAX_HEADERS 32
#define SIGV4_MAX_QUERY_PARAMS 64

/* ---- a growable string --------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool failed; /* out of memory once: every later append is a no-op */
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->failed) {
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) {
            cap *= 2;
        }
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

/* Hand the string over (NULL after a failure, which frees it). */
static char *sb_take(sbuf *b)
{
    if (b->failed || b->p == NULL) {
        free(b->p);
        b->p = NULL;
        return b->failed ? NULL : strdup("");
    }
    char *p = b->p;
    b->p = NULL;
    return p;
}

/* ---- hashing -------------------------------------------------------------- */

static void hex_of(const unsigned char *d, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[2 * n] = '\0';
}

void reign_s3_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256(data != NULL ? data : (const void *)"", len, d);
    hex_of(d, sizeof d, out);
}

static bool hmac(const void *key, size_t key_len, const char *msg, unsigned char out[32])
{
    unsigned int n = 0;
    return HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg, strlen(msg), out,
                &n) != NULL &&
           n == 32;
}

bool reign_s3_amz_date(time_t t, char out[17])
{
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL) {
        return false;
    }
    return strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) == 16;
}

size_t reign_s3_uri_encode(const char *s, size_t len, bool keep_slash, char *out, size_t out_size)
{
    static const char digits[] = "0123456789ABCDEF";
    size_t j = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        bool plain = isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' ||
                     (keep_slash && c == '/');
        /* isalnum is locale-dependent for bytes >= 0x80: keep it ASCII */
        if (c >= 0x80) {
            plain = false;
        }
        size_t need = plain ? 1 : 3;
        if (j + need + 1 > out_size) {
            return (size_t)-1;
        }
        if (plain) {
            out[j++] = (char)c;
        } else {
            out[j++] = '%';
            out[j++] = digits[c >> 4];
            out[j++] = digits[c & 15];
        }
    }
    if (j + 1 > out_size) {
        return (size_t)-1;
    }
    out[j] = '\0';
    return j;
}

/* ---- canonical headers ------------------------------------------------------ */

typedef struct hdr {
    char *name; /* lowercased copy */
    const char *value;
    size_t order; /* position in the input: keeps duplicates in order */
} hdr;

static int hdr_cmp(const void *a, const void *b)
{
    const hdr *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c != 0) {
        return c;
    }
    return x->order < y->order ? -1 : x->order > y->order;
}

/* A header value as SigV4 wants it: leading and trailing blanks removed,
 * each inner run of blanks folded to one space. */
static void sb_header_value(sbuf *b, const char *v)
{
    while (*v == ' ' || *v == '\t') {
        v++;
    }
    bool blank = false;
    for (; *v != '\0'; v++) {
        if (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r') {
            blank = true;
            continue;
        }
        if (blank) {
            sb_add(b, " ", 1);
            blank = false;
        }
        sb_add(b, v, 1);
    }
}

/* ---- canonical query ------------------------------------------------------- */

typedef struct qparam {
    const char *p; /* "name=value" or "name" inside the query */
    size_t name_len, len;
} qparam;

static int qparam_cmp(const void *a, const void *b)
{
    const qparam *x = a, *y = b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->p, y->p, n);
    if (c != 0) {
        return c;
    }
    if (x->name_len != y->name_len) {
        return x->name_len < y->name_len ? -1 : 1;
    }
    /* equal names: order by value */
    const char *xv = x->p + x->name_len, *yv = y->p + y->name_len;
    size_t xl = x->len - x->name_len, yl = y->len - y->name_len;
    if (xl > 0) {
        xv++, xl--;
    }
    if (yl > 0) {
        yv++, yl--;
    }
    n = xl < yl ? xl : yl;
    c = memcmp(xv, yv, n);
    if (c != 0) {
        return c;
    }
    return xl < yl ? -1 : xl > yl;
}

/* Parameters sorted by name then value, each as name=value (an absent value
 * is written as name=). The parameters are taken as already encoded. */
static int sb_canonical_query(sbuf *b, const char *query)
{
    qparam ps[SIGV4_MAX_QUERY_PARAMS];
    size_t n = 0;
    for (const char *p = query; p != NULL && *p != '\0';) {
        const char *amp = strchr(p, '&');
        size_t len = amp != NULL ? (size_t)(amp - p) : strlen(p);
        if (len > 0) {
            if (n == SIGV4_MAX_QUERY_PARAMS) {
                return -1;
            }
            const char *eq = memchr(p, '=', len);
            ps[n++] = (qparam){p, eq != NULL ? (size_t)(eq - p) : len, len};
        }
        p = amp != NULL ? amp + 1 : NULL;
    }
    qsort(ps, n, sizeof ps[0], qparam_cmp);
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            sb_add(b, "&", 1);
        }
        sb_add(b, ps[i].p, ps[i].name_len);
        sb_add(b, "=", 1);
        if (ps[i].len > ps[i].name_len) {
            sb_add(b, ps[i].p + ps[i].name_len + 1, ps[i].len - ps[i].name_len - 1);
        }
    }
    return 0;
}

/* ---- the three steps --------------------------------------------------------- */

int reign_s3_canonical_request(const reign_s3_sign_input *in, char **out, char **signed_out)
{
    hdr hs[SIGV4_MAX_HEADERS];
    size_t n = 0;
    int rc = -1;
    sbuf b = {0}, sig = {0};
    bool have_host = false;

    if (in->n_headers > SIGV4_MAX_HEADERS || in->method == NULL || in->path == NULL ||
        in->path[0] != '/' || in->payload_sha256 == NULL) {
        goto out;
    }
    for (; n < in->n_headers; n++) {
        const char *name = in->headers[n].name;
        if (name == NULL || name[0] == '\0' || in->headers[n].value == NULL) {
            goto out;
        }
        hs[n].name = strdup(name);
        if (hs[n].name == NULL) {
            goto out;
        }
        for (char *c = hs[n].name; *c != '\0'; c++) {
            *c = (char)tolower((unsigned char)*c);
        }
        hs[n].value = in->headers[n].value;
        hs[n].order = n;
        have_host |= strcmp(hs[n].name, "host") == 0;
    }
    if (!have_host) {
        goto out;
    }
    qsort(hs, n, sizeof hs[0], hdr_cmp);

    sb_str(&b, in->method);
    sb_add(&b, "\n", 1);
    sb_str(&b, in->path);
    sb_add(&b, "\n", 1);
    if (sb_canonical_query(&b, in->query) != 0) {
        goto out;
    }
    sb_add(&b, "\n", 1);
    for (size_t i = 0; i < n; i++) {
        bool dup = i > 0 && strcmp(hs[i].name, hs[i - 1].name) == 0;
        if (dup) {
            /* repeated header: values joined with commas, in order */
            sb_add(&b, ",", 1);
        } else {
            if (i > 0) {
                sb_add(&b, "\n", 1);
                sb_add(&sig, ";", 1);
            }
            sb_str(&b, hs[i].name);
            sb_add(&b, ":", 1);
            sb_str(&sig, hs[i].name);
        }
        sb_header_value(&b, hs[i].value);
    }
    sb_add(&b, "\n\n", 2);
    sb_add(&b, sig.p != NULL ? sig.p : "", sig.len);
    sb_add(&b, "\n", 1);
    sb_str(&b, in->payload_sha256);

    char *canon = sb_take(&b);
    char *signed_list = sb_take(&sig);
    if (canon == NULL || signed_list == NULL) {
        free(canon);
        free(signed_list);
        goto out;
    }
    *out = canon;
    if (signed_out != NULL) {
        *signed_out = signed_list;
    } else {
        free(signed_list);
    }
    rc = 0;
out:
    for (size_t i = 0; i < n; i++) {
        free(hs[i].name);
    }
    free(b.p);
    free(sig.p);
    return rc;
}

/* "YYYYMMDD/REGION/SERVICE/aws4_request" */
static int scope_of(const reign_s3_sign_input *in, char *out, size_t size)
{
    if (in->amz_date == NULL || strlen(in->amz_date) != 16 || in->region == NULL ||
        in->service == NULL) {
        return -1;
    }
    int n = snprintf(out, size, "%.8s/%s/%s/aws4_request", in->amz_date, in->region, in->service);
    return n > 0 && (size_t)n < size ? 0 : -1;
}

int reign_s3_string_to_sign(const reign_s3_sign_input *in, const char *canonical, char **out)
{
    char scope[256], hash[65];
    if (scope_of(in, scope, sizeof scope) != 0) {
        return -1;
    }
    reign_s3_sha256_hex(canonical, strlen(canonical), hash);
    sbuf b = {0};
    sb_str(&b, "AWS4-HMAC-SHA256\n");
    sb_str(&b, in->amz_date);
    sb_add(&b, "\n", 1);
    sb_str(&b, scope);
    sb_add(&b, "\n", 1);
    sb_str(&b, hash);
    char *s = sb_take(&b);
    if (s == NULL) {
        return -1;
    }
    *out = s;
    return 0;
}

int reign_s3_authorization(const reign_s3_sign_input *in, char **out)
{
    char *canon = NULL, *signed_list = NULL, *sts = NULL, *secret = NULL;
    char scope[256], date[9], sig_hex[65];
    unsigned char k[32], k2[32];
    int rc = -1;

    if (in->access_key == NULL || in->secret_key == NULL ||
        scope_of(in, scope, sizeof scope) != 0) {
        goto out;
    }
    if (reign_s3_canonical_request(in, &canon, &signed_list) != 0 ||
        reign_s3_string_to_sign(in, canon, &sts) != 0) {
        goto out;
    }
    /* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request") */
    size_t slen = strlen(in->secret_key);
    secret = malloc(slen + 5);
    if (secret == NULL) {
        goto out;
    }
    memcpy(secret, "AWS4", 4);
    memcpy(secret + 4, in->secret_key, slen + 1);
    memcpy(date, in->amz_date, 8);
    date[8] = '\0';
    /* never the same buffer as key and output of one HMAC */
    if (!hmac(secret, slen + 4, date, k) || !hmac(k, 32, in->region, k2) ||
        !hmac(k2, 32, in->service, k) || !hmac(k, 32, "aws4_request", k2) ||
        !hmac(k2, 32, sts, k)) {
        goto out;
    }
    hex_of(k, 32, sig_hex);

    sbuf b = {0};
    sb_str(&b, "AWS4-HMAC-SHA256 Credential=");
    sb_str(&b, in->access_key);
    sb_add(&b, "/", 1);
    sb_str(&b, scope);
    sb_str(&b, ", SignedHeaders=");
    sb_str(&b, signed_list);
    sb_str(&b, ", Signature=");
    sb_str(&b, sig_hex);
    char *auth = sb_take(&b);
    if (auth == NULL) {
        goto out;
    }
    *out = auth;
    rc = 0;
out:
    /* the derived keys and the prefixed secret are as sensitive as the secret */
    OPENSSL_cleanse(k, sizeof k);
    OPENSSL_cleanse(k2, sizeof k2);
    if (secret != NULL) {
        OPENSSL_cleanse(secret, strlen(secret));
        free(secret);
    }
    free(canon);
    free(signed_list);
    free(sts);
    return rc;
}
