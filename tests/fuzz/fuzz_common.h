/* Small helpers shared by the fuzz targets (header-only: each target is one
 * program). Oracles abort() so libFuzzer records the input as a crash. */
#ifndef REIGN_TESTS_FUZZ_FUZZ_COMMON_H
#define REIGN_TESTS_FUZZ_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A check that must hold for every input: print and abort otherwise. */
#define FUZZ_CHECK(cond, ...)                                                   \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "fuzz check failed at %s:%d: %s: ", __FILE__,       \
                    __LINE__, #cond);                                           \
            fprintf(stderr, __VA_ARGS__);                                       \
            fputc('\n', stderr);                                                \
            abort();                                                            \
        }                                                                       \
    } while (0)

/* Occurrences of needle in hay (overlapping ones count), bounded scan. */
static inline size_t fuzz_count(const char *hay, size_t hay_len, const char *needle,
                                size_t needle_len)
{
    size_t n = 0;
    if (needle_len == 0 || hay_len < needle_len)
        return 0;
    for (size_t i = 0; i + needle_len <= hay_len; i++)
        if (memcmp(hay + i, needle, needle_len) == 0)
            n++;
    return n;
}

/* A message a parser left in a buffer: NUL-terminated within size. */
static inline int fuzz_terminated(const char *buf, size_t size)
{
    return memchr(buf, '\0', size) != NULL;
}

/* A deterministic stream of numbers from the input's own bytes, for
 * choices (chunk sizes, selectors) that the fuzzer can steer. */
typedef struct fuzz_in {
    const uint8_t *p;
    size_t n;
} fuzz_in;

static inline unsigned fuzz_byte(fuzz_in *in)
{
    if (in->n == 0)
        return 0;
    in->n--;
    return *in->p++;
}

static inline unsigned fuzz_u16(fuzz_in *in)
{
    unsigned hi = fuzz_byte(in);
    return hi << 8 | fuzz_byte(in);
}

/* Take up to len bytes (fewer at the end of the input). */
static inline const uint8_t *fuzz_take(fuzz_in *in, size_t *len)
{
    const uint8_t *p = in->p;
    if (*len > in->n)
        *len = in->n;
    in->p += *len;
    in->n -= *len;
    return p;
}

#endif /* REIGN_TESTS_FUZZ_FUZZ_COMMON_H */
