/* Logging through the user's callback (or the stderr default). */
#ifndef REIGN_CORE_LOG_H
#define REIGN_CORE_LOG_H

#include "reign/reign.h"

typedef struct reign_logger {
    reign_log_fn fn;
    void *payload;
} reign_logger;

void reign_log(const reign_logger *logger, int level, const char *component, const char *fmt,
               ...) __attribute__((format(printf, 4, 5)));

#endif
