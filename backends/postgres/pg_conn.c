/* libpq connection mechanics of the postgres:// backend: every wait is a
 * poll() on PQsocket bounded by the caller's deadline, never a blocking
 * libpq call, so execute returns within its timeout even when the server
 * is stopped (SIGSTOP) or a network path drops packets. */
#include "pg_conn.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "reign/backend.h"

#include "pg_sql.h"

static int64_t remaining_ms(int64_t deadline_ms)
{
    int64_t r = deadline_ms - reign_monotonic_ms();
    return r > 0 ? r : 0;
}

/* poll one fd until `events` or the deadline: 1 ready, 0 timeout, -1 error
 * (errno set). EINTR restarts with the time left. */
static int wait_fd(int fd, short events, int64_t deadline_ms, short *revents)
{
    for (;;) {
        int64_t left = remaining_ms(deadline_ms);
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -1;
        }
        if (n == 0) {
            if (left == 0 || remaining_ms(deadline_ms) == 0) {
                return 0;
            }
            continue;
        }
        *revents = p.revents;
        return 1;
    }
}

/* ---- connect ------------------------------------------------------------------ */

/* Status of a failed connection attempt. The connection runs with verbose
 * errors until it is up, so the server's SQLSTATE is in the message
 * ("FATAL:  28P01: password authentication failed …") whatever the
 * server's lc_messages. */
static int connect_status(PGconn *c, const char *msg)
{
    char state[6];
    if (reign_pg_sqlstate_in_message(msg, state)) {
        return reign_pg_sqlstate_status(state);
    }
    if (PQconnectionNeedsPassword(c)) {
        return REIGN_EAUTH;
    }
    return REIGN_EBACKEND;
}

int reign_pg_connect(const char *const *keywords, const char *const *values, int64_t deadline_ms,
                     const char *secret, PGconn **out, char *err, size_t err_size)
{
    int rc = REIGN_OK;
    char msg[512];
    int64_t started = reign_monotonic_ms();
    /* expand_dbname 0: dbname is a name, never a second conninfo */
    PGconn *c = PQconnectStartParams(keywords, values, 0);
    if (c == NULL) {
        snprintf(err, err_size, "out of memory starting a connection");
        return REIGN_ENOMEM;
    }
    PQsetErrorVerbosity(c, PQERRORS_VERBOSE);
    PostgresPollingStatusType ps = PGRES_POLLING_WRITING;
    if (PQstatus(c) == CONNECTION_BAD) {
        ps = PGRES_POLLING_FAILED; /* e.g. a bad sslmode value */
    }
    while (ps != PGRES_POLLING_OK) {
        if (ps == PGRES_POLLING_FAILED) {
            reign_pg_clean_message(PQerrorMessage(c), secret, msg, sizeof(msg));
            rc = connect_status(c, PQerrorMessage(c));
            if (rc == REIGN_EAUTH && PQconnectionNeedsPassword(c)) {
                snprintf(err, err_size,
                         "%s (the server wants a password: postgres://user:PASSWORD@host/db, "
                         "PGPASSWORD or ~/.pgpass)",
                         msg);
            } else {
                snprintf(err, err_size, "%s", msg);
            }
            goto out;
        }
        int fd = PQsocket(c);
        if (fd < 0) {
            reign_pg_clean_message(PQerrorMessage(c), secret, msg, sizeof(msg));
            snprintf(err, err_size, "connection has no socket: %s", msg);
            rc = REIGN_EBACKEND;
            goto out;
        }
        short rev = 0;
        int w = wait_fd(fd, ps == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline_ms, &rev);
        if (w == 0) {
            snprintf(err, err_size,
                     "no connection within %" PRId64 " ms (server down, paused "
                     "or unreachable?)",
                     reign_monotonic_ms() - started);
            rc = REIGN_EBACKEND;
            goto out;
        }
        if (w < 0) {
            snprintf(err, err_size, "poll: %s", strerror(errno));
            rc = REIGN_EBACKEND;
            goto out;
        }
        ps = PQconnectPoll(c);
    }
    if (PQsetnonblocking(c, 1) != 0) {
        reign_pg_clean_message(PQerrorMessage(c), secret, msg, sizeof(msg));
        snprintf(err, err_size, "cannot make the connection non-blocking: %s", msg);
        rc = REIGN_EBACKEND;
        goto out;
    }
    PQsetErrorVerbosity(c, PQERRORS_DEFAULT);
    *out = c;
    c = NULL;
out:
    if (c != NULL) {
        PQfinish(c);
    }
    return rc;
}

/* ---- pipeline ----------------------------------------------------------------- */

/* Wait until PQgetResult will not block: flush what is still queued (the
 * server may only read our next commands once we read its answers, so
 * both directions are served in one poll), consume input as it comes. */
static int wait_ready(PGconn *c, int64_t deadline_ms, const char *secret, char *err,
                      size_t err_size)
{
    char msg[400];
    for (;;) {
        int f = PQflush(c);
        if (f < 0) {
            reign_pg_clean_message(PQerrorMessage(c), secret, msg, sizeof(msg));
            snprintf(err, err_size, "connection lost while sending: %s", msg);
            return REIGN_EBACKEND;
        }
        if (!PQisBusy(c)) {
            return REIGN_OK;
        }
        short rev = 0;
        int w = wait_fd(PQsocket(c), (short)(POLLIN | (f == 1 ? POLLOUT : 0)), deadline_ms, &rev);
        if (w == 0) {
            snprintf(err, err_size, "no answer in time; connection closed, outcome unknown");
            return REIGN_ETIMEDOUT;
        }
        if (w < 0) {
            snprintf(err, err_size, "poll: %s", strerror(errno));
            return REIGN_EBACKEND;
        }
        if ((rev & (POLLIN | POLLERR | POLLHUP)) != 0 && !PQconsumeInput(c)) {
            reign_pg_clean_message(PQerrorMessage(c), secret, msg, sizeof(msg));
            snprintf(err, err_size, "connection lost: %s", msg);
            return REIGN_EBACKEND;
        }
    }
}

static int send_cmd(PGconn *c, const reign_pg_cmd *cmd)
{
    switch (cmd->kind) {
    case REIGN_PG_CMD_PARAMS:
        return PQsendQueryParams(c, cmd->sql, cmd->n_params, cmd->types, cmd->values, cmd->lengths,
                                 cmd->formats, cmd->result_format);
    case REIGN_PG_CMD_PREPARE:
        return PQsendPrepare(c, cmd->name, cmd->sql, cmd->n_params, cmd->types);
    case REIGN_PG_CMD_PREPARED:
        return PQsendQueryPrepared(c, cmd->name, cmd->n_params, cmd->values, cmd->lengths,
                                   cmd->formats, cmd->result_format);
    }
    return 0;
}

int reign_pg_pipeline(PGconn *c, reign_pg_cmd *cmds, size_t n, int64_t deadline_ms,
                      const char *secret, size_t *n_answered, char *err, size_t err_size)
{
    char msg[400];
    size_t answered = 0;
    int rc = REIGN_OK;

    for (size_t i = 0; i < n; i++) {
        if (cmds[i].res != NULL) {
            PQclear(cmds[i].res); /* left from an attempt that broke */
            cmds[i].res = NULL;
        }
    }
    if (PQpipelineStatus(c) == PQ_PIPELINE_OFF && !PQenterPipelineMode(c)) {
        reign_pg_clean_message(PQerrorMessage(c), secret, msg, sizeof(msg));
        snprintf(err, err_size, "cannot enter pipeline mode: %s", msg);
        rc = REIGN_EBACKEND;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (!send_cmd(c, &cmds[i]) || !PQpipelineSync(c)) {
            reign_pg_clean_message(PQerrorMessage(c), secret, msg, sizeof(msg));
            snprintf(err, err_size, "cannot send: %s", msg[0] != '\0' ? msg : "out of memory");
            rc = PQstatus(c) == CONNECTION_BAD ? REIGN_EBACKEND : REIGN_ENOMEM;
            goto out;
        }
    }
    /* Each command answers with its result(s), a NULL, then the Sync's
     * PGRES_PIPELINE_SYNC. The first result is the command's; a NULL twice
     * in a row would mean libpq has nothing more for us: out of step. */
    while (answered < n) {
        int nulls = 0;
        for (;;) {
            rc = wait_ready(c, deadline_ms, secret, err, err_size);
            if (rc != REIGN_OK) {
                goto out;
            }
            PGresult *r = PQgetResult(c);
            if (r == NULL) {
                if (++nulls >= 2) {
                    snprintf(err, err_size, "results out of step after %zu of %zu commands",
                             answered, n);
                    rc = REIGN_EPROTO;
                    goto out;
                }
                continue;
            }
            nulls = 0;
            ExecStatusType st = PQresultStatus(r);
            if (st == PGRES_PIPELINE_SYNC) {
                PQclear(r);
                break;
            }
            if (st == PGRES_FATAL_ERROR && PQstatus(c) == CONNECTION_BAD) {
                /* libpq's own "server closed the connection": the command
                 * may or may not have run */
                reign_pg_clean_message(PQresultErrorMessage(r), secret, msg, sizeof(msg));
                snprintf(err, err_size, "connection lost: %s", msg);
                PQclear(r);
                rc = REIGN_EBACKEND;
                goto out;
            }
            if (cmds[answered].res == NULL) {
                cmds[answered].res = r;
            } else {
                PQclear(r);
            }
        }
        if (cmds[answered].res == NULL) {
            snprintf(err, err_size, "no result for command %zu of %zu", answered + 1, n);
            rc = REIGN_EPROTO;
            goto out;
        }
        answered++;
    }
    if (!PQexitPipelineMode(c)) {
        reign_pg_clean_message(PQerrorMessage(c), secret, msg, sizeof(msg));
        snprintf(err, err_size, "cannot leave pipeline mode: %s", msg);
        rc = REIGN_EPROTO;
    }
out:
    *n_answered = answered;
    return rc;
}

bool reign_pg_idle_ok(PGconn *c)
{
    if (PQstatus(c) != CONNECTION_OK) {
        return false;
    }
    int fd = PQsocket(c);
    if (fd < 0) {
        return false;
    }
    /* A server that ends a session (shutdown, pg_terminate_backend) sends a
     * FATAL and closes: the first read takes the message, the next the EOF.
     * A few rounds see both; libpq passes the FATAL to the notice hook. */
    for (int round = 0; round < 4; round++) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        if (!PQconsumeInput(c)) {
            return false;
        }
        PGnotify *nt;
        while ((nt = PQnotifies(c)) != NULL) {
            PQfreemem(nt);
        }
    }
    return PQstatus(c) == CONNECTION_OK;
}

const char *reign_pg_result_sqlstate(const PGresult *res)
{
    const char *s = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return s != NULL ? s : "";
}

int reign_pg_result_error(const PGresult *res, const char *secret, char *err, size_t err_size)
{
    char msg[400];
    const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    const char *state = reign_pg_result_sqlstate(res);
    reign_pg_clean_message(primary != NULL ? primary : PQresultErrorMessage(res), secret, msg,
                           sizeof(msg));
    if (msg[0] == '\0') {
        snprintf(msg, sizeof(msg), "unexpected result %s", PQresStatus(PQresultStatus(res)));
    }
    if (state[0] != '\0') {
        snprintf(err, err_size, "%s (SQLSTATE %s)", msg, state);
        return reign_pg_sqlstate_status(state);
    }
    snprintf(err, err_size, "%s", msg);
    return REIGN_EBACKEND;
}
