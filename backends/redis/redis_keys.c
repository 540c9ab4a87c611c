/* Key names of the redis:// backend and printable forms of resource IDs. */
#include "redis_keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *reign_redis_key(const char *prefix, const char *resource, size_t resource_len,
                      reign_redis_key_kind kind, size_t *len_out)
{
    /* The resource goes between braces as raw bytes. A '{' or '}' inside it
     * only moves the Cluster hash tag, never the key: the key is prefix +
     * "{" + id + "}:" + suffix, so two IDs never share a key. The prefix
     * holds no brace (checked at open), so the tag starts at our '{' and
     * ends by our '}' at the latest: both keys of an ID get the same tag,
     * hence the same slot. One exception: an ID starting with '}' makes an
     * empty tag, and Redis then hashes the whole key (see the docs). */
    const char *suffix = kind == REIGN_REDIS_KEY_TERM ? "}:term" : "}:lease";
    size_t plen = strlen(prefix);
    size_t slen = strlen(suffix);
    size_t len = plen + 1 + resource_len + slen;
    char *key = malloc(len + 1);
    if (key == NULL) {
        return NULL;
    }
    memcpy(key, prefix, plen);
    key[plen] = '{';
    memcpy(key + plen + 1, resource, resource_len);
    memcpy(key + plen + 1 + resource_len, suffix, slen);
    key[len] = '\0';
    *len_out = len;
    return key;
}

/* Bytes one input byte takes in the printable form. */
static size_t printable_width(unsigned char c)
{
    return c >= 0x20 && c < 0x7f && c != '\\' ? 1 : 4;
}

char *reign_redis_printable(const char *bytes, size_t len, char *out, size_t out_size)
{
    size_t total = 0;
    for (size_t i = 0; i < len; i++) {
        total += printable_width((unsigned char)bytes[i]);
    }
    /* when it does not all fit, keep room for "..." and the NUL */
    size_t room = total < out_size ? out_size - 1 : out_size - 4;
    size_t j = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)bytes[i];
        size_t n = printable_width(c);
        if (j + n > room) {
            break;
        }
        if (n == 1) {
            out[j] = (char)c;
        } else {
            snprintf(out + j, 5, "\\x%02x", c);
        }
        j += n;
    }
    if (total >= out_size) {
        memcpy(out + j, "...", 3);
        j += 3;
    }
    out[j] = '\0';
    return out;
}
