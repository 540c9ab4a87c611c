/* The table of backends built into this library (from REIGN_WITH_<BACKEND>). */
#ifndef REIGN_CORE_REGISTRY_H
#define REIGN_CORE_REGISTRY_H

#include <stdbool.h>

#include "reign/backend.h"

/* The backend serving `scheme`, or REIGN_EURI naming the schemes known. */
int reign_registry_find(const char *scheme, const reign_backend **out);

/* True if b serves URIs of `scheme` (its scheme or scheme_alt). */
bool reign_registry_serves(const reign_backend *b, const char *scheme);

/* REIGN_OK if the core can serve b (its version is known, the required
 * members are there), else REIGN_EINVAL with a message. */
int reign_registry_check(const reign_backend *b);

#endif
