/* Byte-level encodings of the etcd:// backend: base64, the lease record in a
 * key's value, key names. Pure functions, unit-tested in test_etcd_codec.c. */
#include "etcd_codec.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reign/reign.h"

#define VALUE_MAGIC "reign1:"

/* ---- base64 ------------------------------------------------------------- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *reign_etcd_b64_encode(const void *data, size_t len)
{
    const unsigned char *in = data;
    if (len > (SIZE_MAX - 1) / 4 * 3 - 3)
        return NULL;
    char *out = malloc((len + 2) / 3 * 4 + 1);
    if (out == NULL)
        return NULL;
    size_t j = 0;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[j++] = b64_alphabet[v >> 18 & 63];
        out[j++] = b64_alphabet[v >> 12 & 63];
        out[j++] = b64_alphabet[v >> 6 & 63];
        out[j++] = b64_alphabet[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[j++] = b64_alphabet[v >> 18 & 63];
        out[j++] = b64_alphabet[v >> 12 & 63];
        out[j++] = '=';
        out[j++] = '=';
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[j++] = b64_alphabet[v >> 18 & 63];
        out[j++] = b64_alphabet[v >> 12 & 63];
        out[j++] = b64_alphabet[v >> 6 & 63];
        out[j++] = '=';
    }
    out[j] = '\0';
    return out;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

int reign_etcd_b64_decode(const char *text, size_t len, unsigned char **out, size_t *out_len)
{
    /* Padding is optional, but when present it must end the text. */
    size_t pad = 0;
    while (len > 0 && text[len - 1] == '=' && pad < 2) {
        len--;
        pad++;
    }
    if (len % 4 == 1 || (pad > 0 && (len + pad) % 4 != 0))
        return REIGN_EPROTO;
    unsigned char *buf = malloc(len / 4 * 3 + 3 + 1);
    if (buf == NULL)
        return REIGN_ENOMEM;
    size_t j = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value((unsigned char)text[i]);
        if (v < 0) {
            free(buf);
            return REIGN_EPROTO;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[j++] = (unsigned char)(acc >> bits & 0xff);
        }
    }
    /* Leftover bits must be zero, as every canonical encoder writes them. */
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
        free(buf);
        return REIGN_EPROTO;
    }
    buf[j] = '\0';
    *out = buf;
    *out_len = j;
    return REIGN_OK;
}

/* ---- the lease record ------------------------------------------------------ */

char *reign_etcd_value_encode(const char *holder, const char *metadata, size_t *out_len)
{
    size_t hl = strlen(holder);
    size_t ml = metadata != NULL ? strlen(metadata) : 0;
    char head[48];
    int n = snprintf(head, sizeof head, VALUE_MAGIC "%zu:", hl);
    if (n < 0 || (size_t)n >= sizeof head || hl > SIZE_MAX / 2 || ml > SIZE_MAX / 2)
        return NULL;
    char *v = malloc((size_t)n + hl + ml + 1);
    if (v == NULL)
        return NULL;
    memcpy(v, head, (size_t)n);
    memcpy(v + n, holder, hl);
    if (ml > 0)
        memcpy(v + (size_t)n + hl, metadata, ml);
    v[(size_t)n + hl + ml] = '\0';
    *out_len = (size_t)n + hl + ml;
    return v;
}

int reign_etcd_value_decode(const unsigned char *value, size_t len, char **holder, char **metadata,
                            char *err, size_t err_size)
{
    const size_t magic = sizeof VALUE_MAGIC - 1;
    if (len < magic || memcmp(value, VALUE_MAGIC, magic) != 0) {
        snprintf(err, err_size, "value is not a reign lease record (no \"%s\" at its start)",
                 VALUE_MAGIC);
        return REIGN_EPROTO;
    }
    if (memchr(value, '\0', len) != NULL) {
        snprintf(err, err_size, "lease record holds a NUL byte");
        return REIGN_EPROTO;
    }
    size_t i = magic;
    size_t hl = 0;
    size_t digits = 0;
    while (i < len && value[i] >= '0' && value[i] <= '9') {
        if (hl > (SIZE_MAX - 9) / 10 || digits == 19) {
            snprintf(err, err_size, "lease record's holder length is too large");
            return REIGN_EPROTO;
        }
        hl = hl * 10 + (size_t)(value[i] - '0');
        i++;
        digits++;
    }
    if (digits == 0 || i >= len || value[i] != ':') {
        snprintf(err, err_size, "lease record has no holder length");
        return REIGN_EPROTO;
    }
    i++;
    if (hl == 0 || hl > len - i) {
        snprintf(err, err_size, "lease record's holder length %zu does not fit its %zu bytes", hl,
                 len);
        return REIGN_EPROTO;
    }
    char *h = strndup((const char *)value + i, hl);
    char *m = strndup((const char *)value + i + hl, len - i - hl);
    if (h == NULL || m == NULL) {
        free(h);
        free(m);
        snprintf(err, err_size, "out of memory");
        return REIGN_ENOMEM;
    }
    *holder = h;
    *metadata = m;
    return REIGN_OK;
}

/* ---- keys ------------------------------------------------------------------- */

char *reign_etcd_key(const char *prefix, const char *resource, size_t resource_len, size_t *out_len)
{
    size_t pl = strlen(prefix);
    if (resource_len > SIZE_MAX - pl - 2)
        return NULL;
    char *k = malloc(pl + 1 + resource_len + 1);
    if (k == NULL)
        return NULL;
    memcpy(k, prefix, pl);
    k[pl] = '/';
    memcpy(k + pl + 1, resource, resource_len);
    k[pl + 1 + resource_len] = '\0';
    *out_len = pl + 1 + resource_len;
    return k;
}

int reign_etcd_key_resource(const char *prefix, const unsigned char *key, size_t key_len,
                            const unsigned char **resource, size_t *resource_len)
{
    size_t pl = strlen(prefix);
    if (key_len < pl + 2 || memcmp(key, prefix, pl) != 0 || key[pl] != '/')
        return -1;
    *resource = key + pl + 1;
    *resource_len = key_len - pl - 1;
    return 0;
}

char *reign_etcd_prefix_end(const char *key, size_t len, size_t *out_len)
{
    char *end = malloc(len + 1);
    if (end == NULL)
        return NULL;
    memcpy(end, key, len);
    end[len] = '\0';
    /* Drop trailing 0xff bytes (nothing sorts after them), then bump the last. */
    size_t n = len;
    while (n > 0 && (unsigned char)end[n - 1] == 0xff)
        n--;
    if (n == 0) {
        /* All 0xff: etcd reads "\0" as "to the end of the key space". */
        end[0] = '\0';
        *out_len = 1;
        return end;
    }
    end[n - 1] = (char)((unsigned char)end[n - 1] + 1);
    end[n] = '\0';
    *out_len = n;
    return end;
}

