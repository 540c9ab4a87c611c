/* Private to the postgres:// backend: its state, and the connections'
 * lifecycle (pg_link.c) that the vtable (pg_backend.c) uses. */
#ifndef REIGN_BACKENDS_POSTGRES_PG_INTERNAL_H
#define REIGN_BACKENDS_POSTGRES_PG_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "pg_conn.h"
#include "pg_conninfo.h"
#include "pg_sql.h"
#include "reign/backend.h"

#define PG_ERR_SIZE 512
/* ON CONFLICT needs 9.5. */
#define PG_MIN_SERVER_VERSION 90500

/* One connection and its reconnection pacing (backend.h). */
typedef struct pg_link {
    PGconn *conn; /* NULL while broken */
    reign_backend_link pace;
} pg_link;

typedef struct pg_state {
    const reign_backend_config *cfg; /* owned by the core, lives until close */
    reign_pg_conninfo ci;            /* libpq keywords for the command connection */
    const char *table;               /* table= as given (also the NOTIFY channel) */
    size_t schema_len;               /* of table, 0 if unqualified */
    char *quoted;                    /* table quoted with PQescapeIdentifier */
    char *channel_quoted;            /* table as one quoted identifier, for LISTEN */
    char *sql[REIGN_PG_N_STMTS];
    char *create_sql;
    char ttl_arg[24];     /* cfg->ttl_ms as decimal text */
    char timeout_arg[24]; /* statement_timeout in ms */
    const char *holder;   /* cfg->instance_id */
    const char *metadata; /* cfg->metadata or "" */
    const char *secret;   /* cfg->password: scrubbed from every message */
    pg_link cmd;          /* lease statements */
    pg_link lsn;          /* LISTEN only */
    uint64_t statements;  /* sent on cmd, for the debug log */
    uint64_t round_trips;
    char *changed_prefix; /* "<table>:", the start of our REIGN_PG_CHANGED_CHANNEL payloads */
    bool observing;       /* lsn also LISTENs to REIGN_PG_CHANGED_CHANNEL (observe) */
} pg_state;

/* Close l's connection (if any). */
void reign_pg_link_drop(pg_link *l);
/* A connection that worked broke: drop it, try again at once, then back off. */
void reign_pg_link_broken(pg_state *st, pg_link *l, const char *what, const char *cause);

/* Run cmds on c; on success every result is checked for an error, the
 * first of which is returned (with `what` naming the step); SQLSTATEs
 * ignore_a and ignore_b (may be NULL) count as success. */
int reign_pg_run_setup(pg_state *st, PGconn *c, reign_pg_cmd *cmds, size_t n, int64_t deadline_ms,
                       const char *what, const char *ignore_a, const char *ignore_b, char *err,
                       size_t err_size);
void reign_pg_results_clear(reign_pg_cmd *cmds, size_t n);

/* Connect the command connection (schema, PREPARE) by deadline_ms. */
int reign_pg_cmd_connect(pg_state *st, int64_t deadline_ms, char *err, size_t err_size);
/* The command connection, connected again if it broke and its pacing
 * allows; REIGN_OK or a status with err set. */
int reign_pg_cmd_ensure(pg_state *st, int64_t deadline_ms, char *err, size_t err_size);
/* (Re)connect the LISTEN connection when it is down and its pacing allows. */
void reign_pg_listen_maintain(pg_state *st, int64_t deadline_ms);

#endif /* REIGN_BACKENDS_POSTGRES_PG_INTERNAL_H */
