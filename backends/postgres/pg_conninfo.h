/* Private to the postgres:// backend: the URI the core parsed → libpq's
 * keyword/value connection parameters, and reign's own parameters (table). */
#ifndef REIGN_BACKENDS_POSTGRES_PG_CONNINFO_H
#define REIGN_BACKENDS_POSTGRES_PG_CONNINFO_H

#include <stddef.h>

#include "reign/backend.h"

/* Longest table= value: it is also the LISTEN channel name, an identifier
 * of at most NAMEDATALEN - 1 = 63 bytes. */
#define REIGN_PG_TABLE_MAX 63
#define REIGN_PG_DEFAULT_TABLE "reign_leases"
/* application_name unless the URI or $PGAPPNAME names one. */
#define REIGN_PG_APP_NAME "reign"
#define REIGN_PG_LISTEN_APP_NAME "reign-listen"

/* Keyword/value arrays for PQconnectStartParams: both NULL-terminated,
 * every string malloc'd and owned by the struct. */
typedef struct reign_pg_conninfo {
    char **keywords;
    char **values;
    size_t n;
    size_t cap;
} reign_pg_conninfo;

/* Build libpq's parameters from the core's parse of the URI:
 *   user, password, host (IPv6 brackets removed), port — or, when the URI
 *   names several hosts, the host and port lists of reign_pg_split_hosts —
 *   dbname (the path without its '/'), then every query parameter the core did not consume
 *   (it consumes ttl) except reign's own `table`, each checked against
 *   PQconndefaults() and marked used with reign_backend_param; a query
 *   parameter overrides the same keyword from the authority part.
 *   fallback_application_name = "reign" unless given.
 * Unknown keywords, and password/sslpassword in the query (the core's
 * redacted URI would show them), are REIGN_EURI with a message in err that
 * names them. Keywords absent here are left to libpq: PG* environment
 * variables, ~/.pgpass, service files. */
int reign_pg_conninfo_build(const reign_backend_config *cfg, reign_pg_conninfo *out, char *err,
                            size_t err_size);
void reign_pg_conninfo_free(reign_pg_conninfo *ci);

/* Value of a keyword, NULL if not set. */
const char *reign_pg_conninfo_get(const reign_pg_conninfo *ci, const char *keyword);

/* Set (replace or append) a keyword; REIGN_ENOMEM on failure. */
int reign_pg_conninfo_set(reign_pg_conninfo *ci, const char *keyword, const char *value);

/* The host list of a URI's authority, "h1:5432,[::1]:5433,h3" → hosts
 * "h1,::1,h3" and ports "5432,5433," (an empty item: libpq's default; ""
 * when no entry has a port), both malloc'd. REIGN_EURI on an empty entry, a
 * bad port or bracket, REIGN_ENOMEM. The user information is skipped. */
int reign_pg_split_hosts(const char *uri, char **hosts_out, char **ports_out);

/* table= value → REIGN_OK, or REIGN_EURI with a message: `name` or
 * `schema.name`, each part 1..63 bytes of [A-Za-z0-9_] not starting with a
 * digit, 63 bytes in all. On success *schema_len is the length of the
 * schema part (0 if none; the name follows the dot). */
int reign_pg_table_check(const char *spec, size_t *schema_len, char *err, size_t err_size);

#endif /* REIGN_BACKENDS_POSTGRES_PG_CONNINFO_H */
