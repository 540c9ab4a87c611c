/* The one hash of resource IDs (include/reign/backend.h): FNV-1a, 64 bits. */
#include <stddef.h>
#include <stdint.h>

#include "reign/backend.h"

uint64_t reign_hash(const void *bytes, size_t len)
{
    const unsigned char *p = bytes;
    uint64_t h = 14695981039346656037ULL; /* the offset basis */
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ULL; /* the prime */
    }
    return h;
}
