/* Per-thread last-error message and status names (libgit2 style). */
#ifndef REIGN_CORE_ERROR_H
#define REIGN_CORE_ERROR_H

#include <stdarg.h>

/* Set this thread's message and return `status`, so `return reign_error_set(...)`. */
int reign_error_set(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int reign_error_setv(int status, const char *fmt, va_list ap);
void reign_error_clear(void);

/* malloc'd printf; NULL on allocation failure. */
char *reign_strdup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
