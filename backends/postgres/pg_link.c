/* The postgres:// backend's connections: the command connection (connect,
 * schema, PREPARE of the lease statements) and the LISTEN connection, each
 * reconnected with the core's pacing (reign_backend_link) when it breaks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "pg_internal.h"

/* ---- The command connection -------------------------------------------------- */

static void on_notice(void *arg, const char *message)
{
    const pg_state *st = arg;
    char msg[400];
    reign_pg_clean_message(message, st->secret, msg, sizeof(msg));
    reign_backend_log(st->cfg, REIGN_LOG_DEBUG, "server says: %s", msg);
}

void reign_pg_link_drop(pg_link *l)
{
    if (l->conn != NULL) {
        PQfinish(l->conn);
        l->conn = NULL;
    }
}

/* A connection that worked broke: try again at once, then back off. */
void reign_pg_link_broken(pg_state *st, pg_link *l, const char *what, const char *cause)
{
    reign_pg_link_drop(l);
    char who[32];
    snprintf(who, sizeof(who), "%s connection", what);
    reign_backend_link_lost(st->cfg, &l->pace, who, cause);
}

static void link_failed(pg_state *st, pg_link *l, const char *what, int status, const char *cause)
{
    char who[32];
    snprintf(who, sizeof(who), "%s connection", what);
    reign_backend_link_failed(st->cfg, &l->pace, who, status, cause);
}

static void link_up(pg_state *st, pg_link *l, PGconn *c, const char *what)
{
    l->conn = c;
    char who[32];
    snprintf(who, sizeof(who), "%s connection", what);
    reign_backend_link_up(st->cfg, &l->pace, who);
}

/* PQescapeIdentifier → malloc'd copy (libpq's must go with PQfreemem). */
static char *quote_ident(PGconn *c, const char *s, size_t len)
{
    char *q = PQescapeIdentifier(c, s, len);
    if (q == NULL) {
        return NULL;
    }
    char *copy = strdup(q);
    PQfreemem(q);
    return copy;
}

/* The table's quoted name and the SQL that uses it, once: quoting needs a
 * connection (its encoding). */
static int build_sql(pg_state *st, PGconn *c, char *err, size_t err_size)
{
    if (st->quoted != NULL) {
        return REIGN_OK;
    }
    char *schema = NULL, *name = NULL;
    int rc = REIGN_ENOMEM;
    if (st->schema_len > 0) {
        schema = quote_ident(c, st->table, st->schema_len);
        name =
            quote_ident(c, st->table + st->schema_len + 1, strlen(st->table) - st->schema_len - 1);
    } else {
        name = quote_ident(c, st->table, strlen(st->table));
    }
    if (name == NULL || (st->schema_len > 0 && schema == NULL)) {
        goto out;
    }
    size_t qlen = strlen(name) + (schema != NULL ? strlen(schema) + 1 : 0) + 1;
    st->quoted = malloc(qlen);
    st->channel_quoted = quote_ident(c, st->table, strlen(st->table));
    if (st->quoted == NULL || st->channel_quoted == NULL) {
        goto out;
    }
    snprintf(st->quoted, qlen, "%s%s%s", schema != NULL ? schema : "", schema != NULL ? "." : "",
             name);
    st->create_sql = reign_pg_sql_create(st->quoted);
    if (st->create_sql == NULL) {
        goto out;
    }
    for (int s = 0; s < REIGN_PG_N_STMTS; s++) {
        st->sql[s] = reign_pg_sql((reign_pg_stmt)s, st->quoted);
        if (st->sql[s] == NULL) {
            goto out;
        }
    }
    rc = REIGN_OK;
out:
    free(schema);
    free(name);
    if (rc != REIGN_OK) {
        snprintf(err, err_size, "out of memory building SQL");
        free(st->quoted);
        st->quoted = NULL;
    }
    return rc;
}

/* Run cmds on c; on success every result is checked for an error, the first
 * of which is returned (with `what` naming the step). */
int reign_pg_run_setup(pg_state *st, PGconn *c, reign_pg_cmd *cmds, size_t n, int64_t deadline_ms,
                     const char *what, const char *ignore_a, const char *ignore_b, char *err,
                     size_t err_size)
{
    size_t answered = 0;
    char cause[PG_ERR_SIZE];
    int rc =
        reign_pg_pipeline(c, cmds, n, deadline_ms, st->secret, &answered, cause, sizeof(cause));
    if (rc != REIGN_OK) {
        snprintf(err, err_size, "%s: %s", what, cause);
        if (rc == REIGN_ETIMEDOUT) {
            rc = REIGN_EBACKEND; /* nothing of the caller's batch ran yet */
        }
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        ExecStatusType s = PQresultStatus(cmds[i].res);
        if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) {
            continue;
        }
        const char *state = reign_pg_result_sqlstate(cmds[i].res);
        if ((ignore_a != NULL && strcmp(state, ignore_a) == 0) ||
            (ignore_b != NULL && strcmp(state, ignore_b) == 0)) {
            continue;
        }
        rc = reign_pg_result_error(cmds[i].res, st->secret, cause, sizeof(cause));
        snprintf(err, err_size, "%s: %s", what, cause);
        goto out;
    }
out:
    return rc;
}

void reign_pg_results_clear(reign_pg_cmd *cmds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (cmds[i].res != NULL) {
            PQclear(cmds[i].res);
            cmds[i].res = NULL;
        }
    }
}

static reign_pg_cmd prepare_cmd(const pg_state *st, reign_pg_stmt s)
{
    return (reign_pg_cmd){.kind = REIGN_PG_CMD_PREPARE,
                          .name = reign_pg_stmt_name(s),
                          .sql = st->sql[s],
                          .n_params = reign_pg_stmt_n_params(s),
                          .types = reign_pg_stmt_types(s)};
}

/* After connecting: session settings, a privilege check and the prepared
 * statements in one round trip; two more when the table has to be created
 * first. */
static int cmd_setup(pg_state *st, PGconn *c, int64_t deadline_ms, char *err, size_t err_size)
{
    int rc = REIGN_OK;
    reign_pg_cmd cmds[2 + REIGN_PG_N_STMTS];
    size_t n = 0;
    memset(cmds, 0, sizeof(cmds));

    int version = PQserverVersion(c);
    if (version < PG_MIN_SERVER_VERSION) {
        snprintf(err, err_size,
                 "server version %d is too old: reign needs PostgreSQL 9.5 or later "
                 "(INSERT … ON CONFLICT)",
                 version);
        return REIGN_EBACKEND;
    }
    /* instance ID and metadata go into text columns */
    const char *enc = PQparameterStatus(c, "client_encoding");
    if (enc != NULL && strcmp(enc, "UTF8") == 0) {
        if (!reign_pg_utf8_valid(st->holder, strlen(st->holder))) {
            snprintf(err, err_size,
                     "the instance ID is not valid UTF-8, which a text column of "
                     "this UTF8 database refuses");
            return REIGN_EINVAL;
        }
        if (!reign_pg_utf8_valid(st->metadata, strlen(st->metadata))) {
            snprintf(err, err_size,
                     "the metadata is not valid UTF-8, which a text column of "
                     "this UTF8 database refuses");
            return REIGN_EINVAL;
        }
    }
    rc = build_sql(st, c, err, err_size);
    if (rc != REIGN_OK) {
        return rc;
    }

    /* 1: session settings and the statements, in one round trip, since the
     * table is there nearly always. Hash and merge joins are off for the
     * session: RENEW and RELEASE join a batch of up to 4,096 resources
     * against the table, and the planner, counting the live leases (all of
     * them, on a busy table), picks a hash join over a scan of the whole
     * table for every chunk; an index probe per resource is 3x faster at
     * 100,000 leases (35 vs 112 ms a chunk) and does not grow with the
     * table. ACQUIRE and READ look up one row by key either way.
     * PREPARE parses and plans against the
     * table: a missing one shows as 42P01, and a table of another shape
     * fails here, at connect, not at the first lease. A role needs CREATE
     * on the schema only when the table is missing. */
    const char *v_timeout[] = {st->timeout_arg};
    bool missing[REIGN_PG_N_STMTS] = {false};
    cmds[0] = (reign_pg_cmd){.kind = REIGN_PG_CMD_PARAMS,
                             .sql = "SELECT set_config('statement_timeout', $1, false), "
                                    "set_config('enable_hashjoin', 'off', false), "
                                    "set_config('enable_mergejoin', 'off', false)",
                             .n_params = 1,
                             .values = v_timeout};
    /* PREPARE checks no privileges: ask, so that a role without them is
     * told at open rather than at its first lease (one call per privilege:
     * with a list, has_table_privilege is true if any is held) */
    const char *v_table[] = {st->quoted};
    cmds[1] = (reign_pg_cmd){.kind = REIGN_PG_CMD_PARAMS,
                             .sql = "SELECT has_table_privilege($1, 'SELECT') AND "
                                    "has_table_privilege($1, 'INSERT') AND "
                                    "has_table_privilege($1, 'UPDATE')",
                             .n_params = 1,
                             .values = v_table};
    for (int k = 0; k < REIGN_PG_N_STMTS; k++) {
        cmds[2 + k] = prepare_cmd(st, (reign_pg_stmt)k);
    }
    n = 2 + REIGN_PG_N_STMTS;
    rc = reign_pg_run_setup(st, c, cmds, n, deadline_ms, "session setup", "42P01", NULL, err, err_size);
    if (rc != REIGN_OK) {
        goto hint;
    }
    if (PQresultStatus(cmds[1].res) == PGRES_TUPLES_OK && PQntuples(cmds[1].res) == 1 &&
        strcmp(PQgetvalue(cmds[1].res, 0, 0), "f") == 0) {
        snprintf(err, err_size,
                 "role %s lacks SELECT, INSERT or UPDATE on table %s: GRANT SELECT, INSERT, "
                 "UPDATE ON %s TO %s",
                 PQuser(c), st->quoted, st->quoted, PQuser(c));
        rc = REIGN_EAUTH;
        goto out;
    }
    bool any_missing = false;
    for (int k = 0; k < REIGN_PG_N_STMTS; k++) {
        missing[k] = strcmp(reign_pg_result_sqlstate(cmds[2 + k].res), "42P01") == 0;
        any_missing |= missing[k];
    }
    reign_pg_results_clear(cmds, n);
    n = 0;
    if (!any_missing) {
        goto out;
    }

    /* 2: the schema. Two instances creating it at once may race inside IF
     * NOT EXISTS (42P07, or 23505 on the catalog): either way the table is
     * there afterwards. */
    cmds[0] = (reign_pg_cmd){.kind = REIGN_PG_CMD_PARAMS, .sql = st->create_sql};
    n = 1;
    rc = reign_pg_run_setup(st, c, cmds, n, deadline_ms, "creating the lease table", "42P07", "23505", err,
                   err_size);
    if (rc != REIGN_OK) {
        goto out;
    }
    reign_backend_log(st->cfg, REIGN_LOG_INFO, "created lease table %s (%s)", st->quoted,
                      st->cfg->uri_redacted);
    reign_pg_results_clear(cmds, n);
    n = 0;

    /* 3: the statements that failed for want of the table */
    for (int k = 0; k < REIGN_PG_N_STMTS; k++) {
        if (missing[k]) {
            cmds[n++] = prepare_cmd(st, (reign_pg_stmt)k);
        }
    }
    rc = reign_pg_run_setup(st, c, cmds, n, deadline_ms, "preparing statements", NULL, NULL, err, err_size);
hint:
    if (rc == REIGN_EINVAL || rc == REIGN_EBACKEND) {
        size_t len = strlen(err);
        if (len + 1 < err_size && strstr(err, "SQLSTATE 42") != NULL) {
            snprintf(err + len, err_size - len,
                     "; does table %s have the columns reign needs (resource bytea primary key, "
                     "holder text, term bigint, expires_at timestamptz, metadata text)?",
                     st->quoted);
        }
    }
out:
    reign_pg_results_clear(cmds, n);
    return rc;
}

int reign_pg_cmd_connect(pg_state *st, int64_t deadline_ms, char *err, size_t err_size)
{
    PGconn *c = NULL;
    char cause[PG_ERR_SIZE];
    int rc =
        reign_pg_connect((const char *const *)st->ci.keywords, (const char *const *)st->ci.values,
                         deadline_ms, st->secret, &c, cause, sizeof(cause));
    if (rc != REIGN_OK) {
        snprintf(err, err_size, "cannot connect: %s", cause);
        return rc;
    }
    PQsetNoticeProcessor(c, on_notice, st);
    rc = cmd_setup(st, c, deadline_ms, err, err_size);
    if (rc != REIGN_OK) {
        PQfinish(c);
        return rc;
    }
    link_up(st, &st->cmd, c, "command");
    return REIGN_OK;
}

/* Make sure the command connection is up before a batch. */
int reign_pg_cmd_ensure(pg_state *st, int64_t deadline_ms, char *err, size_t err_size)
{
    if (st->cmd.conn != NULL) {
        if (reign_pg_idle_ok(st->cmd.conn)) {
            return REIGN_OK;
        }
        /* Closed while idle (restart, pg_terminate_backend, idle timeout):
         * nothing of this batch was sent yet, so reconnect at once. */
        char msg[PG_ERR_SIZE];
        reign_pg_clean_message(PQerrorMessage(st->cmd.conn), st->secret, msg, sizeof(msg));
        reign_pg_link_broken(st, &st->cmd, "command", msg[0] != '\0' ? msg : "closed while idle");
    }
    int64_t now = reign_monotonic_ms();
    if (!reign_backend_link_may_try(&st->cmd.pace, now)) {
        return reign_backend_link_refusal(&st->cmd.pace, now, err, err_size);
    }
    int rc = reign_pg_cmd_connect(st, deadline_ms, err, err_size);
    if (rc != REIGN_OK) {
        link_failed(st, &st->cmd, "command", rc, err);
    }
    return rc;
}

/* ---- The LISTEN connection ------------------------------------------------------- */

static int listen_connect(pg_state *st, int64_t deadline_ms, char *err, size_t err_size)
{
    PGconn *c = NULL;
    reign_pg_cmd cmd;
    char cause[PG_ERR_SIZE];
    char *sql = NULL;
    int rc = REIGN_OK;
    memset(&cmd, 0, sizeof(cmd));

    /* the same parameters, shown as reign-listen unless the user named it */
    size_t n = st->ci.n;
    const char **vals = calloc(n + 1, sizeof(*vals));
    if (vals == NULL) {
        snprintf(err, err_size, "out of memory");
        return REIGN_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        vals[i] = st->ci.values[i];
        if (strcmp(st->ci.keywords[i], "fallback_application_name") == 0 &&
            strcmp(st->ci.values[i], REIGN_PG_APP_NAME) == 0) {
            vals[i] = REIGN_PG_LISTEN_APP_NAME;
        }
    }
    rc = reign_pg_connect((const char *const *)st->ci.keywords, vals, deadline_ms, st->secret, &c,
                          cause, sizeof(cause));
    if (rc != REIGN_OK) {
        snprintf(err, err_size, "cannot connect: %s", cause);
        goto out;
    }
    PQsetNoticeProcessor(c, on_notice, st);
    if (st->channel_quoted == NULL) {
        rc = build_sql(st, c, err, err_size);
        if (rc != REIGN_OK) {
            goto out;
        }
    }
    size_t len = strlen(st->channel_quoted) + 8;
    sql = malloc(len);
    if (sql == NULL) {
        snprintf(err, err_size, "out of memory");
        rc = REIGN_ENOMEM;
        goto out;
    }
    snprintf(sql, len, "LISTEN %s", st->channel_quoted);
    cmd = (reign_pg_cmd){.kind = REIGN_PG_CMD_PARAMS, .sql = sql};
    rc = reign_pg_run_setup(st, c, &cmd, 1, deadline_ms, "LISTEN", NULL, NULL, err, err_size);
    if (rc != REIGN_OK) {
        goto out;
    }
    if (st->observing) {
        reign_pg_results_clear(&cmd, 1);
        cmd = (reign_pg_cmd){.kind = REIGN_PG_CMD_PARAMS,
                             .sql = "LISTEN " REIGN_PG_CHANGED_CHANNEL};
        rc = reign_pg_run_setup(st, c, &cmd, 1, deadline_ms, "LISTEN", NULL, NULL, err, err_size);
        if (rc != REIGN_OK) {
            goto out;
        }
    }
    link_up(st, &st->lsn, c, "LISTEN");
    c = NULL;
out:
    reign_pg_results_clear(&cmd, 1);
    free(sql);
    free(vals);
    if (c != NULL) {
        PQfinish(c);
    }
    return rc;
}

/* Bring the LISTEN connection back if it is down and its backoff passed. */
void reign_pg_listen_maintain(pg_state *st, int64_t deadline_ms)
{
    int64_t now = reign_monotonic_ms();
    if (st->lsn.conn != NULL || !reign_backend_link_may_try(&st->lsn.pace, now) ||
        now >= deadline_ms) {
        return;
    }
    char err[PG_ERR_SIZE];
    int rc = listen_connect(st, deadline_ms, err, sizeof(err));
    if (rc != REIGN_OK) {
        link_failed(st, &st->lsn, "LISTEN", rc, err);
    }
}

