/* Private to the noop:// backend: the vtable the registry finds. */
#ifndef REIGN_BACKENDS_NOOP_NOOP_INTERNAL_H
#define REIGN_BACKENDS_NOOP_NOOP_INTERNAL_H

#include "reign/backend.h"

extern const reign_backend reign_backend_noop;

#endif /* REIGN_BACKENDS_NOOP_NOOP_INTERNAL_H */
