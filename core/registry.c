/* Backend registry: a read-only table generated at build time, so core never
 * names a backend and a backend is left out of the build by one option. */
#include "registry.h"

#include <string.h>

#include "error.h"
#include "registry_list.h"

static const reign_backend *const registry[] = {REIGN_REGISTRY_ENTRIES NULL};

int reign_registry_check(const reign_backend *b)
{
    if (b->scheme == NULL || b->scheme[0] == '\0')
        return reign_error_set(REIGN_EINVAL, "backend: struct reign_backend has no scheme");
    if (b->version > 0 && b->version < REIGN_BACKEND_VERSION_MIN)
        return reign_error_set(REIGN_EINVAL, "backend %s: struct reign_backend version %d is older "
                               "than this core serves (%d..%d): its execute has another "
                               "signature; rebuild it against this reign/backend.h",
                               b->scheme, b->version, REIGN_BACKEND_VERSION_MIN,
                               REIGN_BACKEND_VERSION);
    if (b->version <= 0 || b->version > REIGN_BACKEND_VERSION)
        return reign_error_set(REIGN_EINVAL, "backend %s: struct reign_backend version %d unsupported "
                                           "(this core knows %d..%d)",
                               b->scheme, b->version, REIGN_BACKEND_VERSION_MIN,
                               REIGN_BACKEND_VERSION);
    if (b->open == NULL || b->execute == NULL || b->close == NULL)
        return reign_error_set(REIGN_EINVAL, "backend %s: open, execute and close are required",
                               b->scheme);
    return REIGN_OK;
}

bool reign_registry_serves(const reign_backend *b, const char *scheme)
{
    return strcmp(b->scheme, scheme) == 0 || (b->scheme_alt && strcmp(b->scheme_alt, scheme) == 0);
}

int reign_registry_find(const char *scheme, const reign_backend **out)
{
    char known[256] = "";
    for (size_t i = 0; registry[i] != NULL; i++) {
        const reign_backend *b = registry[i];
        if (reign_registry_serves(b, scheme)) {
            int rc = reign_registry_check(b);
            if (rc != REIGN_OK)
                return rc;
            *out = b;
            return REIGN_OK;
        }
        strncat(known, i ? ", " : "", sizeof known - strlen(known) - 1);
        strncat(known, b->scheme, sizeof known - strlen(known) - 1);
    }
    return reign_error_set(REIGN_EURI, "uri: unknown scheme '%s://' (this build has: %s)", scheme,
                           known);
}

const char *reign_backend_scheme(size_t i)
{
    size_t n = sizeof registry / sizeof registry[0] - 1; /* less the NULL */
    return i < n ? registry[i]->scheme : NULL;
}
