/* Resource IDs and instance IDs → file names that cannot escape the lock
 * directory and never collide.
 *
 * The mapping:
 *   1. Escape: bytes a-z, 0-9, '-' and '_' are kept; every other byte
 *      (upper case letters, '.', '/', '%', '~', controls, bytes ≥ 0x80) becomes
 *      %XX with upper case hex. The tokens form a prefix-free code, so two
 *      IDs escape alike only if they are equal. No '/' survives, and no name
 *      starts with '.', so "..", "." and DIR/.members are out of reach. Upper
 *      case letters are escaped so that case-folding file systems cannot merge
 *      "A" and "a"; "%4A" only ever stands for 'J' and we never write "%4a".
 *   2. If the escaped form is at most SHORT_MAX bytes the name is that form
 *      plus the suffix. Otherwise it is the first bytes of the escaped form
 *      (whole tokens, at most PREFIX_MAX, for people reading `ls`), then '~',
 *      then the lower case hex SHA-256 of the raw ID, then the suffix. A short
 *      name has no '~' (it would have been escaped), so short and long names
 *      never meet; two long names are equal only if the hashes are.
 * With SHORT_MAX 200 and PREFIX_MAX 120 every name fits in 255 bytes.
 */
#include <string.h>

#include "file_internal.h"

enum { SHORT_MAX = 200, PREFIX_MAX = 120 };

static const char hex_upper[] = "0123456789ABCDEF";
static const char hex_lower[] = "0123456789abcdef";

static int kept(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* Escape id into out (room for `room` bytes, no NUL); stops before a token
 * that would not fit. Returns the bytes written; *complete says whether all
 * of id was escaped. */
static size_t escape(const char *id, size_t len, char *out, size_t room, int *complete)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)id[i];
        size_t need = kept(c) ? 1 : 3;
        if (n + need > room) {
            *complete = 0;
            return n;
        }
        if (need == 1) {
            out[n++] = (char)c;
        } else {
            out[n++] = '%';
            out[n++] = hex_upper[c >> 4];
            out[n++] = hex_upper[c & 15];
        }
    }
    *complete = 1;
    return n;
}

void reign_file_name_encode(const char *id, size_t len, const char *suffix, char out[FILE_NAME_MAX])
{
    int complete = 0;
    size_t n = escape(id, len, out, SHORT_MAX, &complete);
    if (!complete) {
        uint8_t digest[FILE_SHA256_LEN];
        n = escape(id, len, out, PREFIX_MAX, &complete);
        out[n++] = '~';
        reign_file_sha256(id, len, digest);
        for (size_t i = 0; i < FILE_SHA256_LEN; i++) {
            out[n++] = hex_lower[digest[i] >> 4];
            out[n++] = hex_lower[digest[i] & 15];
        }
    }
    size_t suffix_len = strnlen(suffix, FILE_NAME_SUFFIX_MAX);
    memcpy(out + n, suffix, suffix_len);
    out[n + suffix_len] = '\0';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1; /* we write upper case only */
}

int reign_file_name_decode(const char *name, const char *suffix, char out[FILE_NAME_MAX],
                           size_t *len_out)
{
    size_t n = strlen(name), sl = strlen(suffix);
    if (n <= sl || memcmp(name + n - sl, suffix, sl) != 0)
        return -1;
    n -= sl;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (kept(c)) {
            out[k++] = (char)c;
        } else if (c == '%' && i + 2 < n && hex_value(name[i + 1]) >= 0 &&
                   hex_value(name[i + 2]) >= 0) {
            out[k++] = (char)(hex_value(name[i + 1]) * 16 + hex_value(name[i + 2]));
            i += 2;
        } else {
            return -1; /* '~' (a hashed long name) or not ours */
        }
    }
    if (k == 0)
        return -1;
    out[k] = '\0';
    *len_out = k;
    return 0;
}
