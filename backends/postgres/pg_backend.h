/* Private to the postgres:// backend: the vtable the registry finds. */
#ifndef REIGN_BACKENDS_POSTGRES_PG_BACKEND_H
#define REIGN_BACKENDS_POSTGRES_PG_BACKEND_H

#include "reign/backend.h"

extern const reign_backend reign_backend_postgres;

#endif /* REIGN_BACKENDS_POSTGRES_PG_BACKEND_H */
