/* The lock-file record: what a lock file says about its resource. Pure
 * functions (bytes in, struct out), so the parser can be fuzzed.
 *
 * Format (text, one field per line, in this order):
 *   reign-lock 1
 *   term 7
 *   state held            (or: released)
 *   holder host%3A12      (escaped: bytes 0x21..0x7e but '%' as is,
 *   metadata 10.0.0.5     every other byte as %XX; may be empty)
 *   end
 * An empty file means "never held", term 0. Bytes after "end\n" are ignored:
 * a writer writes the new record over the old one, then truncates, and one
 * that dies between the two leaves the tail of a longer old record behind; the
 * new record before it is whole, so the file stays readable.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "file_internal.h"

static const char magic_line[] = "reign-lock 1";

static int plain(unsigned char c)
{
    return c >= 0x21 && c <= 0x7e && c != '%';
}

static size_t escaped_len(const char *s)
{
    size_t n = 0;
    for (; *s != '\0'; s++)
        n += plain((unsigned char)*s) ? 1 : 3;
    return n;
}

static char *put_escaped(char *p, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (plain(c)) {
            *p++ = (char)c;
        } else {
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        }
    }
    return p;
}

char *reign_file_record_encode(uint64_t term, file_lease_state state, const char *holder,
                               const char *metadata, size_t *len_out)
{
    char head[80];
    const char *state_word = state == FILE_STATE_HELD ? "held" : "released";
    if (holder == NULL)
        holder = "";
    if (metadata == NULL)
        metadata = "";
    int head_len = snprintf(head, sizeof head, "%s\nterm %llu\nstate %s\nholder ", magic_line,
                            (unsigned long long)term, state_word);
    if (head_len < 0 || (size_t)head_len >= sizeof head)
        return NULL; /* cannot happen: the longest head is 54 bytes */
    size_t len = (size_t)head_len + escaped_len(holder) + strlen("\nmetadata ") +
                 escaped_len(metadata) + strlen("\nend\n");
    char *buf = malloc(len + 1);
    if (buf == NULL)
        return NULL;
    char *p = buf;
    memcpy(p, head, (size_t)head_len);
    p = put_escaped(p + head_len, holder);
    memcpy(p, "\nmetadata ", strlen("\nmetadata "));
    p = put_escaped(p + strlen("\nmetadata "), metadata);
    memcpy(p, "\nend\n", strlen("\nend\n"));
    p += strlen("\nend\n");
    *p = '\0';
    *len_out = (size_t)(p - buf);
    return buf;
}

void reign_file_record_clear(file_record *r)
{
    free(r->holder);
    free(r->metadata);
    r->holder = NULL;
    r->metadata = NULL;
}

/* The next line (without its '\n') from buf[*pos..len); 0 if there is no
 * complete line left. */
static int next_line(const char *buf, size_t len, size_t *pos, const char **line, size_t *line_len)
{
    if (*pos >= len)
        return 0;
    const char *start = buf + *pos;
    const char *nl = memchr(start, '\n', len - *pos);
    if (nl == NULL)
        return 0;
    *line = start;
    *line_len = (size_t)(nl - start);
    *pos += *line_len + 1;
    return 1;
}

/* If line is "<key> <value>", point *value at the value. */
static int keyed(const char *line, size_t line_len, const char *key, const char **value,
                 size_t *value_len)
{
    size_t key_len = strlen(key);
    if (line_len < key_len + 1 || memcmp(line, key, key_len) != 0 || line[key_len] != ' ')
        return 0;
    *value = line + key_len + 1;
    *value_len = line_len - key_len - 1;
    return 1;
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decimal, no sign, no leading zeros (but "0"), no overflow. */
static int parse_u64(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > 20 || (len > 1 && s[0] == '0'))
        return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    *out = v;
    return 1;
}

/* Unescape into a malloc'd C string. FILE_RECORD_BAD on a stray byte, a bad
 * escape or an escaped NUL (which a C string cannot carry). */
static int unescape(const char *s, size_t len, char **out)
{
    char *buf = malloc(len + 1);
    if (buf == NULL)
        return FILE_RECORD_NOMEM;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            int hi = i + 2 < len ? hex_value((unsigned char)s[i + 1]) : -1;
            int lo = i + 2 < len ? hex_value((unsigned char)s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                free(buf);
                return FILE_RECORD_BAD;
            }
            buf[n++] = (char)(hi << 4 | lo);
            i += 2;
        } else if (plain(c)) {
            buf[n++] = (char)c;
        } else {
            free(buf);
            return FILE_RECORD_BAD;
        }
    }
    buf[n] = '\0';
    *out = buf;
    return FILE_RECORD_OK;
}

/* "<key> <escaped>" into *out; *why names the line on failure. */
static int parse_string_line(const char *buf, size_t len, size_t *pos, const char *key,
                             const char *bad, char **out, const char **why)
{
    const char *line = NULL, *value = NULL;
    size_t line_len = 0, value_len = 0;
    if (!next_line(buf, len, pos, &line, &line_len) ||
        !keyed(line, line_len, key, &value, &value_len)) {
        *why = bad;
        return FILE_RECORD_BAD;
    }
    int rc = unescape(value, value_len, out);
    if (rc == FILE_RECORD_BAD)
        *why = bad;
    return rc;
}

int reign_file_record_parse(const char *buf, size_t len, file_record *out, const char **why)
{
    const char *line = NULL, *value = NULL;
    size_t line_len = 0, value_len = 0, pos = 0;
    file_record r = {0};
    int rc = FILE_RECORD_BAD;

    memset(out, 0, sizeof *out);
    if (len == 0) {
        r.holder = strdup("");
        r.metadata = strdup("");
        if (r.holder == NULL || r.metadata == NULL) {
            rc = FILE_RECORD_NOMEM;
            goto out;
        }
        r.state = FILE_STATE_NEVER;
        rc = FILE_RECORD_OK;
        goto out;
    }
    if (!next_line(buf, len, &pos, &line, &line_len) || line_len < strlen("reign-lock ") ||
        memcmp(line, "reign-lock ", strlen("reign-lock ")) != 0) {
        *why = "bad magic line (not a reign lock file)";
        goto out;
    }
    if (line_len != strlen(magic_line) || memcmp(line, magic_line, line_len) != 0) {
        *why = "unsupported record version (written by a newer reign?)";
        goto out;
    }
    if (!next_line(buf, len, &pos, &line, &line_len) ||
        !keyed(line, line_len, "term", &value, &value_len) ||
        !parse_u64(value, value_len, &r.term)) {
        *why = "bad term line";
        goto out;
    }
    if (!next_line(buf, len, &pos, &line, &line_len) ||
        !keyed(line, line_len, "state", &value, &value_len)) {
        *why = "bad state line";
        goto out;
    }
    if (value_len == 4 && memcmp(value, "held", 4) == 0) {
        r.state = FILE_STATE_HELD;
    } else if (value_len == 8 && memcmp(value, "released", 8) == 0) {
        r.state = FILE_STATE_RELEASED;
    } else {
        *why = "bad state line";
        goto out;
    }
    rc = parse_string_line(buf, len, &pos, "holder", "bad holder line", &r.holder, why);
    if (rc != FILE_RECORD_OK)
        goto out;
    rc = parse_string_line(buf, len, &pos, "metadata", "bad metadata line", &r.metadata, why);
    if (rc != FILE_RECORD_OK)
        goto out;
    if (!next_line(buf, len, &pos, &line, &line_len) || line_len != 3 ||
        memcmp(line, "end", 3) != 0) {
        *why = "missing end line (record cut short?)";
        rc = FILE_RECORD_BAD;
        goto out;
    }
    rc = FILE_RECORD_OK;
out:
    if (rc == FILE_RECORD_OK) {
        *out = r;
    } else {
        reign_file_record_clear(&r);
        if (rc == FILE_RECORD_NOMEM)
            *why = "out of memory";
    }
    return rc;
}
