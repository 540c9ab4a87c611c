/* Backend URIs, parsed with libcurl's URL API into the pieces backends get. */
#ifndef REIGN_CORE_URI_H
#define REIGN_CORE_URI_H

#include <stddef.h>

#include "reign/backend.h"

typedef struct reign_uri {
    char *raw;       /* as given */
    char *redacted;  /* password replaced by *** */
    char *scheme;    /* lowercase */
    char *user, *password, *host; /* NULL if absent; decoded */
    int port;                     /* 0 if absent */
    char *path;                   /* decoded, "" if absent */
    reign_uri_param *params;
    size_t n_params;
} reign_uri;

/* Parse `text`; on failure REIGN_EURI (or ENOMEM) with a message naming the
 * URI (redacted when possible) and curl's reason. */
int reign_uri_parse(const char *text, reign_uri *out);
void reign_uri_free(reign_uri *uri);

/* REIGN_EURI naming the first parameter nobody used. */
int reign_uri_check_all_used(const reign_uri *uri);

/* Decode %XX and '+' (as space) in place-free form; NULL on bad escapes. */
char *reign_uri_decode(const char *s, size_t len);

/* Parse a duration: "250", "250ms", "10s", "2m" → milliseconds > 0. */
int reign_parse_duration_ms(const char *text, int64_t *out);

#endif
