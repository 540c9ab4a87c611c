/* Private to the postgres:// backend: libpq connection mechanics with a
 * deadline — non-blocking connect, a pipeline of commands in one round trip,
 * the idle check, and server errors → reign statuses. */
#ifndef REIGN_BACKENDS_POSTGRES_PG_CONN_H
#define REIGN_BACKENDS_POSTGRES_PG_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

/* Connect, bounded by deadline_ms (reign_monotonic_ms time). On failure a
 * status (REIGN_EAUTH for refused credentials, REIGN_EINVAL for a missing
 * database, REIGN_EBACKEND otherwise, REIGN_ENOMEM) and libpq's message in
 * err, with `secret` (the password, may be NULL) replaced by ***. The
 * connection returned is non-blocking. */
int reign_pg_connect(const char *const *keywords, const char *const *values, int64_t deadline_ms,
                     const char *secret, PGconn **out, char *err, size_t err_size);

typedef enum reign_pg_cmd_kind {
    REIGN_PG_CMD_PARAMS = 1,   /* PQsendQueryParams(sql, …) */
    REIGN_PG_CMD_PREPARE = 2,  /* PQsendPrepare(name, sql, types) */
    REIGN_PG_CMD_PREPARED = 3, /* PQsendQueryPrepared(name, …) */
} reign_pg_cmd_kind;

/* One command of a pipeline. In: how to send it. Out: its result. */
typedef struct reign_pg_cmd {
    reign_pg_cmd_kind kind;
    const char *name; /* PREPARE, PREPARED */
    const char *sql;  /* PARAMS, PREPARE */
    int n_params;
    const unsigned int *types; /* PARAMS, PREPARE; may be NULL */
    const char *const *values; /* PARAMS, PREPARED */
    const int *lengths;
    const int *formats;
    int result_format; /* 0 text, 1 binary */
    PGresult *res;     /* out: PQclear it; NULL if never answered */
} reign_pg_cmd;

/* Send cmds[0..n) in pipeline mode, each followed by a Sync (so each runs
 * in its own implicit transaction and one failing does not abort the
 * others), flush, then read every result: one round trip however many
 * commands. Returns REIGN_OK when all were answered (a result may still be
 * an error), else REIGN_ETIMEDOUT (deadline passed), REIGN_EBACKEND
 * (connection lost), REIGN_EPROTO (results out of step) or REIGN_ENOMEM;
 * *n_answered then says how many commands got their result, and the
 * connection must be dropped: the others may or may not have run. Each
 * cmd's res must be NULL or a result of an earlier call (it is freed). */
int reign_pg_pipeline(PGconn *c, reign_pg_cmd *cmds, size_t n, int64_t deadline_ms,
                      const char *secret, size_t *n_answered, char *err, size_t err_size);

/* An idle connection: read what the server sent meanwhile (a FATAL before
 * it closed, notices) without blocking; false if the connection is gone. */
bool reign_pg_idle_ok(PGconn *c);

/* A failed result → reign status and "message (SQLSTATE xxxxx)" in err. */
int reign_pg_result_error(const PGresult *res, const char *secret, char *err, size_t err_size);

/* The SQLSTATE of a result, "" if none. */
const char *reign_pg_result_sqlstate(const PGresult *res);

#endif /* REIGN_BACKENDS_POSTGRES_PG_CONN_H */
