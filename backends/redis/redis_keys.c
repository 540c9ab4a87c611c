/* Key names of the redis:// backend. */
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

