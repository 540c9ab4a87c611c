/* Private to the redis:// backend: the vtable the registry finds. */
#ifndef REIGN_BACKENDS_REDIS_REDIS_BACKEND_H
#define REIGN_BACKENDS_REDIS_REDIS_BACKEND_H

#include "reign/backend.h"

extern const reign_backend reign_backend_redis;

#endif /* REIGN_BACKENDS_REDIS_REDIS_BACKEND_H */
