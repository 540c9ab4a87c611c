/* Private to the postgres:// backend: the SQL it runs, the binary
 * parameters it sends, and the pure functions that turn results and server
 * errors into op results and reign statuses (testable without a server). */
#ifndef REIGN_BACKENDS_POSTGRES_PG_SQL_H
#define REIGN_BACKENDS_POSTGRES_PG_SQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "reign/backend.h"

/* Type OIDs of the parameters (fixed since PostgreSQL 7). */
#define REIGN_PG_OID_BOOL 16
#define REIGN_PG_OID_BYTEA 17
#define REIGN_PG_OID_INT8 20
#define REIGN_PG_OID_TEXT 25
#define REIGN_PG_OID_BYTEA_ARRAY 1001
#define REIGN_PG_OID_INT8_ARRAY 1016
#define REIGN_PG_OID_VOID 2278

/* The prepared statements, by name. */
/* The channel ACQUIRE and set_metadata NOTIFY for observers, one per
 * database (table names fill a channel name's 63 bytes already): the
 * payload is "<table>:" then the resource in hex, and a LISTENer keeps only
 * its own table's. */
#define REIGN_PG_CHANGED_CHANNEL "reign_changed"

typedef enum reign_pg_stmt {
    REIGN_PG_ACQUIRE = 0,
    REIGN_PG_RENEW = 1,
    REIGN_PG_RELEASE = 2,
    REIGN_PG_READ = 3,
    REIGN_PG_N_STMTS = 4,
} reign_pg_stmt;

/* Statement name for PQsendPrepare / PQsendQueryPrepared. */
const char *reign_pg_stmt_name(reign_pg_stmt s);
/* Number of parameters and their types. */
int reign_pg_stmt_n_params(reign_pg_stmt s);
const unsigned int *reign_pg_stmt_types(reign_pg_stmt s);

/* SQL text of a statement or of the schema, for the table `quoted` (an
 * identifier already quoted with PQescapeIdentifier, e.g. "reign_leases"
 * or "app"."leases"). malloc'd; NULL when out of memory. */
char *reign_pg_sql(reign_pg_stmt s, const char *quoted);
char *reign_pg_sql_create(const char *quoted);

/* One-dimensional array parameter in PostgreSQL's binary array format
 * (array_send): ndim, has-null flag, element type, length, lower bound,
 * then length + bytes per element. */
typedef struct reign_pg_buf {
    char *data;
    size_t len;
    size_t cap;
    bool failed; /* an allocation failed; data is incomplete */
} reign_pg_buf;

void reign_pg_array_begin(reign_pg_buf *b, unsigned int elem_oid, size_t n_elems);
void reign_pg_array_add(reign_pg_buf *b, const void *elem, size_t len);
void reign_pg_array_add_int8(reign_pg_buf *b, int64_t v);
void reign_pg_buf_free(reign_pg_buf *b);

/* int64 in network byte order, the binary format of an int8 parameter. */
void reign_pg_int8_bytes(int64_t v, char out[8]);

/* Results (binary format) → op results. Each returns REIGN_OK, or a status
 * with a message in err when the result has an unexpected shape. */
int reign_pg_parse_acquire(const PGresult *res, reign_op *op, char *err, size_t err_size);
int reign_pg_parse_read(const PGresult *res, reign_op *op, char *err, size_t err_size);
/* RENEW/RELEASE: rows carry the 1-based position of the array element that
 * matched; ops[idx[k]] for the k-th element gets OK if its position came
 * back, LOST otherwise. */
int reign_pg_parse_positions(const PGresult *res, reign_op *ops, const size_t *idx, size_t n,
                             char *err, size_t err_size);

/* A server error's SQLSTATE → the reign status it means. */
int reign_pg_sqlstate_status(const char *sqlstate);

/* The SQLSTATE in a verbose libpq message ("FATAL:  28P01: password …"),
 * copied into out[6]; false if there is none. */
bool reign_pg_sqlstate_in_message(const char *msg, char out[6]);

/* A libpq message made fit for one line: lines joined with "; ", LOCATION
 * lines dropped, trailing blanks cut, and any occurrence of `secret` (the
 * password, may be NULL) replaced by "***". Always NUL-terminates. */
void reign_pg_clean_message(const char *msg, const char *secret, char *out, size_t out_size);

/* NOTIFY payload of a released resource: lowercase hex, 2 chars per byte
 * (what encode(resource, 'hex') makes). Decoding checks everything and
 * returns false on a payload that is not one of ours. */
bool reign_pg_payload_decode(const char *payload, char *out, size_t out_size, size_t *out_len);

/* True if s[0..len) is valid UTF-8 (what a text column in a UTF8 database
 * accepts). */
bool reign_pg_utf8_valid(const char *s, size_t len);

#endif /* REIGN_BACKENDS_POSTGRES_PG_SQL_H */
