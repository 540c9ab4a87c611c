/* The file:// backend's one exported symbol: the vtable the registry finds.
 * Everything else of the backend is private (file_internal.h). */
#ifndef REIGN_BACKENDS_FILE_FILE_BACKEND_H
#define REIGN_BACKENDS_FILE_FILE_BACKEND_H

#include "reign/backend.h"

extern const reign_backend reign_backend_file;

#endif /* REIGN_BACKENDS_FILE_FILE_BACKEND_H */
