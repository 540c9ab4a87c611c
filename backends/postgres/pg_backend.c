/* The postgres:// (and postgresql://) backend: leases in one table of a
 * PostgreSQL database through libpq, notifications through LISTEN/NOTIFY.
 *
 * Map of this file:
 *   1. configuration (URI → libpq parameters, table, holder); the state is
 *      in pg_internal.h
 *   2. the LISTEN connection as the notification source: notify_fd, drain
 *   3. execute: one pipeline per batch — one array statement for all
 *      RELEASEs, one for all RENEWs, one statement per ACQUIRE and READ —
 *      so a batch is one round trip however many ops it has
 *   4. observers, set_metadata
 *   5. open, close, the vtable
 *
 * The connections' lifecycle (connect, schema, PREPARE, LISTEN, reconnect
 * pacing) lives in pg_link.c, the SQL and the pure parsing in pg_sql.c, URI
 * handling in pg_conninfo.c, libpq I/O with deadlines in pg_conn.c. Every member is
 * called from the factory's engine thread only, so the state has no lock.
 */
#include "pg_backend.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "pg_conn.h"
#include "pg_conninfo.h"
#include "pg_internal.h"
#include "pg_sql.h"

/* ---- 1. Configuration -------------------------------------------------------- */

/* Fail one op with its cause (the core adds "postgres: … (<uri>)"), and drop
 * any holder a partial answer left. */
static void op_fail(reign_op *op, int status, const char *cause)
{
    free(op->out_holder);
    free(op->out_metadata);
    op->out_holder = op->out_metadata = NULL;
    reign_op_fail(op, status, "%s", cause);
}

static int configure(pg_state *st, const reign_backend_config *cfg, char *err, size_t err_size)
{
    const char *uri = cfg->uri_redacted;
    /* First: it refuses a password in the query before any message shows
     * the URI (the core redacts only the password of the authority). */
    int rc = reign_pg_conninfo_build(cfg, &st->ci, err, err_size);
    if (rc != REIGN_OK) {
        return rc;
    }
    if (cfg->instance_id == NULL || cfg->instance_id[0] == '\0') {
        snprintf(err, err_size, "postgres: %s: empty instance ID", uri);
        return REIGN_EINVAL;
    }
    if (cfg->ttl_ms <= 0) {
        snprintf(err, err_size, "postgres: %s: lease TTL %" PRId64 " ms is not positive", uri,
                 cfg->ttl_ms);
        return REIGN_EINVAL;
    }
    const char *table = reign_backend_param(cfg, "table");
    st->table = table != NULL ? table : REIGN_PG_DEFAULT_TABLE;
    char why[300];
    if (reign_pg_table_check(st->table, &st->schema_len, why, sizeof(why)) != REIGN_OK) {
        snprintf(err, err_size, "postgres: %s: %s", uri, why);
        return REIGN_EURI;
    }
    snprintf(st->ttl_arg, sizeof(st->ttl_arg), "%" PRId64, cfg->ttl_ms);
    /* A statement still running after the batch gave up on it is useless
     * and may hold a row lock: let the server cancel it. reign never
     * cancels itself (PQcancel blocks on a new connection). */
    int64_t t = cfg->op_timeout_ms > 0 ? cfg->op_timeout_ms : 5000;
    snprintf(st->timeout_arg, sizeof(st->timeout_arg), "%" PRId64, t < 1000 ? 1000 : t);
    st->holder = cfg->instance_id;
    st->metadata = cfg->metadata != NULL ? cfg->metadata : "";
    st->secret = cfg->password;
    return REIGN_OK;
}

/* ---- 2. The LISTEN connection as the notification source -------------------------- */

static int pg_notify_fd(void *state)
{
    pg_state *st = state;
    return st->lsn.conn != NULL ? PQsocket(st->lsn.conn) : -1;
}

static void pg_notify_drain(void *state, reign_released_fn released, void *ctx)
{
    pg_state *st = state;
    char res[REIGN_RESOURCE_ID_MAX + 1];
    if (st->lsn.conn == NULL) {
        return;
    }
    bool ok = PQconsumeInput(st->lsn.conn) != 0;
    PGnotify *nt;
    while ((nt = PQnotifies(st->lsn.conn)) != NULL) {
        size_t len = 0;
        if (strcmp(nt->relname, REIGN_PG_CHANGED_CHANNEL) == 0) {
            /* An acquisition or new metadata, for observers: ours only. */
            size_t pl = strlen(st->changed_prefix);
            if (strncmp(nt->extra, st->changed_prefix, pl) == 0 &&
                reign_pg_payload_decode(nt->extra + pl, res, sizeof(res), &len)) {
                released(ctx, res, len);
            }
        } else if (reign_pg_payload_decode(nt->extra, res, sizeof(res), &len)) {
            released(ctx, res, len);
        } else {
            released(ctx, NULL, 0); /* someone else's NOTIFY: cannot tell which */
        }
        PQfreemem(nt);
    }
    if (!ok || PQstatus(st->lsn.conn) != CONNECTION_OK) {
        /* Releases may go unheard until the next execute reconnects (and
         * notify_fd says -1 meanwhile): have every candidate try now. */
        char msg[PG_ERR_SIZE];
        reign_pg_clean_message(PQerrorMessage(st->lsn.conn), st->secret, msg, sizeof(msg));
        reign_pg_link_broken(st, &st->lsn, "LISTEN", msg[0] != '\0' ? msg : "closed");
        released(ctx, NULL, 0);
    }
}

/* ---- 3. Execute --------------------------------------------------------------------- */

/* Parameter formats: 1 = binary (bytea and arrays), 0 = text. */
static const int fmt_acquire[] = {1, 0, 0, 0, 0};
static const int fmt_arrays[] = {1, 1, 0, 0};
static const int fmt_read[] = {1};

/* One statement of the batch and the ops it answers. */
typedef struct pg_stmt_ops {
    reign_pg_stmt stmt;
    const size_t *idx; /* into ops */
    size_t n;
    const char *values[5];
    int lengths[5];
} pg_stmt_ops;

/* Apply one statement's result to its ops. */
static bool apply_result(pg_state *st, reign_op *ops, const pg_stmt_ops *so, const PGresult *res)
{
    char cause[PG_ERR_SIZE];
    ExecStatusType s = PQresultStatus(res);
    bool drop = false;
    if (s != PGRES_TUPLES_OK) {
        int status = reign_pg_result_error(res, st->secret, cause, sizeof(cause));
        const char *state = reign_pg_result_sqlstate(res);
        /* table dropped, statement gone (DISCARD), a standby: a new
         * connection sets up again or finds the primary */
        drop = strcmp(state, "42P01") == 0 || strcmp(state, "26000") == 0 ||
               strcmp(state, "25006") == 0 || strncmp(state, "57P", 3) == 0;
        if (strcmp(state, "25006") == 0) {
            size_t len = strlen(cause);
            snprintf(cause + len, sizeof(cause) - len,
                     "; the server is read-only (a standby?): add "
                     "target_session_attrs=read-write to the URI");
        }
        for (size_t k = 0; k < so->n; k++) {
            op_fail(&ops[so->idx[k]], status, cause);
        }
        return drop;
    }
    int rc = REIGN_OK;
    switch (so->stmt) {
    case REIGN_PG_ACQUIRE:
        rc = reign_pg_parse_acquire(res, &ops[so->idx[0]], cause, sizeof(cause));
        break;
    case REIGN_PG_READ:
        rc = reign_pg_parse_read(res, &ops[so->idx[0]], cause, sizeof(cause));
        break;
    case REIGN_PG_RENEW:
    case REIGN_PG_RELEASE:
        rc = reign_pg_parse_positions(res, ops, so->idx, so->n, cause, sizeof(cause));
        break;
    case REIGN_PG_N_STMTS: break;
    }
    if (rc != REIGN_OK) {
        for (size_t k = 0; k < so->n; k++) {
            op_fail(&ops[so->idx[k]], rc, cause);
        }
    }
    return false;
}

/* Array parameters of a RENEW or RELEASE statement over ops[idx[0..n)]. */
static bool build_arrays(const reign_op *ops, const size_t *idx, size_t n, reign_pg_buf *res,
                         reign_pg_buf *terms)
{
    reign_pg_array_begin(res, REIGN_PG_OID_BYTEA, n);
    reign_pg_array_begin(terms, REIGN_PG_OID_INT8, n);
    for (size_t k = 0; k < n; k++) {
        const reign_op *op = &ops[idx[k]];
        reign_pg_array_add(res, op->resource, op->resource_len);
        /* a term beyond int8 matches no row: LOST, as it should */
        reign_pg_array_add_int8(terms, (int64_t)op->term);
    }
    return !res->failed && !terms->failed && res->len <= INT32_MAX && terms->len <= INT32_MAX;
}

static int pg_execute(void *state, reign_batch *batch)
{
    pg_state *st = state;
    reign_op *ops = batch->ops;
    size_t n_ops = batch->n_ops;
    int rc = REIGN_OK;
    char err[PG_ERR_SIZE];
    int64_t deadline_ms = batch->deadline_ns / 1000000;
    size_t *idx = NULL;
    pg_stmt_ops *so = NULL;
    reign_pg_cmd *cmds = NULL;
    reign_pg_buf bufs[4];
    size_t n_so = 0;
    memset(bufs, 0, sizeof(bufs));

    if (n_ops == 0) {
        goto out;
    }
    idx = malloc(n_ops * sizeof(*idx)); /* 0..n_ops-1: statements name their ops by index */
    so = calloc(n_ops + 2, sizeof(*so));
    cmds = calloc(n_ops + 2, sizeof(*cmds));
    if (idx == NULL || so == NULL || cmds == NULL) {
        for (size_t i = 0; i < n_ops; i++) {
            op_fail(&ops[i], REIGN_ENOMEM, "out of memory");
        }
        rc = REIGN_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n_ops; i++) {
        idx[i] = i;
    }
    /* The core hands the ops grouped in this order: grp[g] indexes group g. */
    static const reign_op_kind kinds[4] = REIGN_BATCH_ORDER;
    size_t *grp[4];
    size_t cnt[4];
    for (int g = 0; g < 4; g++) {
        grp[g] = idx + (reign_batch_group(batch, kinds[g], &cnt[g]) - ops);
    }
    rc = reign_pg_cmd_ensure(st, deadline_ms, err, sizeof(err));
    if (rc != REIGN_OK) {
        for (int g = 0; g < 4; g++) {
            for (size_t k = 0; k < cnt[g]; k++) {
                op_fail(&ops[grp[g][k]], rc, err);
            }
        }
        reign_backend_error("postgres: %s (%s)", err, st->cfg->uri_redacted);
        goto out;
    }

    /* The statements, in this order: RELEASEs first (the core may put a
     * RELEASE and a new ACQUIRE of one resource in a batch), then RENEWs,
     * then one ACQUIRE or READ per op. Each is its own transaction, so one
     * failing (or waiting for a row lock) holds up no other's locks. */
    for (int g = 0; g < 2; g++) {
        if (cnt[g] == 0) {
            continue;
        }
        pg_stmt_ops *s = &so[n_so];
        s->stmt = g == 0 ? REIGN_PG_RELEASE : REIGN_PG_RENEW;
        s->idx = grp[g];
        s->n = cnt[g];
        if (!build_arrays(ops, grp[g], cnt[g], &bufs[2 * g], &bufs[2 * g + 1])) {
            for (size_t k = 0; k < cnt[g]; k++) {
                op_fail(&ops[grp[g][k]], REIGN_ENOMEM, "out of memory building arrays");
            }
            continue;
        }
        s->values[0] = bufs[2 * g].data;
        s->lengths[0] = (int)bufs[2 * g].len;
        s->values[1] = bufs[2 * g + 1].data;
        s->lengths[1] = (int)bufs[2 * g + 1].len;
        s->values[2] = st->holder;
        s->values[3] = g == 0 ? st->table : st->ttl_arg; /* NOTIFY channel / ttl */
        n_so++;
    }
    for (int g = 2; g < 4; g++) {
        for (size_t k = 0; k < cnt[g]; k++) {
            pg_stmt_ops *s = &so[n_so++];
            const reign_op *op = &ops[grp[g][k]];
            s->stmt = g == 2 ? REIGN_PG_ACQUIRE : REIGN_PG_READ;
            s->idx = &grp[g][k];
            s->n = 1;
            s->values[0] = op->resource;
            s->lengths[0] = (int)op->resource_len;
            if (g == 2) {
                s->values[1] = st->holder;
                s->values[2] = st->ttl_arg;
                s->values[3] = st->metadata;
                s->values[4] = st->changed_prefix;
            }
        }
    }
    for (size_t i = 0; i < n_so; i++) {
        pg_stmt_ops *s = &so[i];
        cmds[i] = (reign_pg_cmd){
            .kind = REIGN_PG_CMD_PREPARED,
            .name = reign_pg_stmt_name(s->stmt),
            .n_params = reign_pg_stmt_n_params(s->stmt),
            .values = s->values,
            .lengths = s->lengths,
            .formats = s->stmt == REIGN_PG_ACQUIRE ? fmt_acquire
                       : s->stmt == REIGN_PG_READ  ? fmt_read
                                                   : fmt_arrays,
            .result_format = 1,
        };
    }
    if (n_so == 0) {
        goto out;
    }

    /* One round trip; a second only if the connection turned out dead when
     * the batch went out (the server ended the session just after the idle
     * check): every statement is safe to run again — a repeated ACQUIRE
     * answers HELD by ourselves, which the core resolves; RENEW and RELEASE
     * are idempotent — and the deadline still bounds both. */
    size_t done = 0;
    bool drop = false;
    int prc = REIGN_OK;
    for (int attempt = 0;; attempt++) {
        size_t answered = 0;
        prc = reign_pg_pipeline(st->cmd.conn, cmds + done, n_so - done, deadline_ms, st->secret,
                                &answered, err, sizeof(err));
        st->statements += n_so - done;
        st->round_trips++;
        reign_backend_log(st->cfg, REIGN_LOG_DEBUG,
                          "batch of %zu ops: %zu statements in one round trip (%zu RELEASE, %zu "
                          "RENEW, %zu ACQUIRE, %zu READ)%s",
                          n_ops, n_so - done, cnt[0], cnt[1], cnt[2], cnt[3],
                          attempt > 0 ? ", resent on a new connection" : "");
        for (size_t i = done; i < done + answered; i++) {
            drop |= apply_result(st, ops, &so[i], cmds[i].res);
        }
        done += answered;
        if (prc != REIGN_EBACKEND || attempt > 0 || reign_monotonic_ms() >= deadline_ms) {
            break;
        }
        char cause[PG_ERR_SIZE];
        snprintf(cause, sizeof(cause), "%s", err);
        reign_pg_link_broken(st, &st->cmd, "command", cause);
        if (reign_pg_cmd_ensure(st, deadline_ms, cause, sizeof(cause)) != REIGN_OK) {
            break; /* fail the rest below with the first cause */
        }
    }
    if (prc != REIGN_OK) {
        /* The stream is out of step or gone: the statements not answered
         * may or may not have run. */
        int status = prc == REIGN_ETIMEDOUT ? REIGN_ETIMEDOUT
                     : prc == REIGN_ENOMEM  ? REIGN_ENOMEM
                     : prc == REIGN_EPROTO  ? REIGN_EPROTO
                                            : REIGN_EBACKEND;
        char cause[PG_ERR_SIZE + 64];
        if (prc == REIGN_ETIMEDOUT) {
            snprintf(cause, sizeof(cause),
                     "no answer by the deadline; connection closed, outcome unknown");
        } else {
            snprintf(cause, sizeof(cause), "%s", err);
        }
        for (size_t i = done; i < n_so; i++) {
            for (size_t k = 0; k < so[i].n; k++) {
                op_fail(&ops[so[i].idx[k]], status, cause);
            }
        }
        if (st->cmd.conn != NULL) {
            reign_pg_link_broken(st, &st->cmd, "command", cause);
        }
        rc = status;
    } else if (drop) {
        reign_pg_link_broken(st, &st->cmd, "command", "the server asked for a new session");
    }
    reign_pg_results_clear(cmds, n_so);
    if (st->cmd.conn != NULL) {
        reign_pg_listen_maintain(st, deadline_ms);
    }
out:
    for (int b = 0; b < 4; b++) {
        reign_pg_buf_free(&bufs[b]);
    }
    free(idx);
    free(so);
    free(cmds);
    return rc;
}

/* ---- 4. Observers: LISTEN to the changes channel, set_metadata --------------------- */

static int pg_observe(void *state, int on)
{
    pg_state *st = state;
    if (st->observing == (on != 0)) {
        return REIGN_OK;
    }
    st->observing = on != 0;
    /* LISTEN again with (or without) the changes channel at the next
     * execute; the core reads everything observed once the notification
     * fd is back, so nothing falls into the gap. */
    if (st->lsn.conn != NULL) {
        reign_pg_link_drop(&st->lsn);
        reign_backend_link_retry_now(&st->lsn.pace);
    }
    return REIGN_OK;
}

static int pg_set_metadata(void *state, const char *resource, size_t len, uint64_t term,
                           const char *metadata, int64_t deadline_ns)
{
    pg_state *st = state;
    char err[PG_ERR_SIZE];
    char shown[200];
    char *sql = NULL;
    reign_pg_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    reign_printable(resource, len, shown, sizeof(shown));
    int64_t deadline_ms = deadline_ns / 1000000;
    int rc = reign_pg_cmd_ensure(st, deadline_ms, err, sizeof(err));
    if (rc != REIGN_OK) {
        reign_backend_error("postgres: set_metadata %s: %s (%s)", shown, err, st->cfg->uri_redacted);
        return rc;
    }
    static const char tmpl[] =
        "UPDATE %s SET metadata = $4\n"
        " WHERE resource = $1 AND holder = $2 AND term = $3 AND expires_at > clock_timestamp()\n"
        "RETURNING pg_notify('" REIGN_PG_CHANGED_CHANNEL "', $5 || encode(resource, 'hex'))";
    size_t n = sizeof(tmpl) + strlen(st->quoted);
    sql = malloc(n);
    if (sql == NULL) {
        reign_backend_error("postgres: set_metadata %s: out of memory", shown);
        return REIGN_ENOMEM;
    }
    snprintf(sql, n, tmpl, st->quoted);
    char t[24];
    snprintf(t, sizeof(t), "%" PRIu64, term);
    static const unsigned int types[] = {REIGN_PG_OID_BYTEA, REIGN_PG_OID_TEXT, REIGN_PG_OID_INT8,
                                         REIGN_PG_OID_TEXT, REIGN_PG_OID_TEXT};
    const char *values[] = {resource, st->holder, t, metadata, st->changed_prefix};
    int lengths[] = {(int)len, 0, 0, 0, 0};
    cmd = (reign_pg_cmd){.kind = REIGN_PG_CMD_PARAMS, .sql = sql, .n_params = 5, .types = types,
                         .values = values, .lengths = lengths, .formats = fmt_acquire};
    rc = reign_pg_run_setup(st, st->cmd.conn, &cmd, 1, deadline_ms, "set_metadata", NULL, NULL, err,
                   sizeof(err));
    if (rc != REIGN_OK) {
        reign_backend_error("postgres: set_metadata %s: %s (%s)", shown, err, st->cfg->uri_redacted);
        if (cmd.res == NULL) {
            reign_pg_link_broken(st, &st->cmd, "command", err); /* out of step: start over */
        }
    } else if (PQntuples(cmd.res) != 1) {
        reign_backend_error("postgres: set_metadata %s: the lease of term %s is not ours (%s)",
                            shown, t, st->cfg->uri_redacted);
        rc = REIGN_ENOTMASTER;
    }
    reign_pg_results_clear(&cmd, 1);
    free(sql);
    return rc;
}

/* ---- 5. Open, close, the vtable ------------------------------------------------------- */

static void pg_close(void *state)
{
    pg_state *st = state;
    reign_backend_log(st->cfg, REIGN_LOG_DEBUG,
                      "closing: %" PRIu64 " statements in %" PRIu64 " round trips (%s)",
                      st->statements, st->round_trips, st->cfg->uri_redacted);
    reign_pg_link_drop(&st->cmd);
    reign_pg_link_drop(&st->lsn);
    reign_pg_conninfo_free(&st->ci);
    free(st->quoted);
    free(st->channel_quoted);
    free(st->changed_prefix);
    free(st->create_sql);
    for (int s = 0; s < REIGN_PG_N_STMTS; s++) {
        free(st->sql[s]);
    }
    free(st);
}

static int pg_open(const reign_backend_config *cfg, void **state_out)
{
    pg_state *st = calloc(1, sizeof(*st));
    char err[PG_ERR_SIZE];
    int rc = REIGN_OK;

    if (st == NULL) {
        reign_backend_error("postgres: out of memory");
        return REIGN_ENOMEM;
    }
    st->cfg = cfg;
    rc = configure(st, cfg, err, sizeof(err));
    if (rc != REIGN_OK) {
        reign_backend_error("%s", err);
        goto out;
    }
    size_t plen = strlen(st->table) + 2;
    st->changed_prefix = malloc(plen);
    if (st->changed_prefix == NULL) {
        reign_backend_error("postgres: out of memory");
        rc = REIGN_ENOMEM;
        goto out;
    }
    snprintf(st->changed_prefix, plen, "%s:", st->table);
    int64_t deadline_ms = cfg->open_deadline_ns / 1000000;
    rc = reign_pg_cmd_connect(st, deadline_ms, err, sizeof(err));
    if (rc != REIGN_OK) {
        reign_backend_error("postgres: %s (%s)", err, cfg->uri_redacted);
        goto out;
    }
    /* Without LISTEN we still work, only slower to notice releases: it is
     * retried at later batches. */
    reign_pg_listen_maintain(st, deadline_ms);
    *state_out = st;
    st = NULL;
out:
    if (st != NULL) {
        pg_close(st);
    }
    return rc;
}

const reign_backend reign_backend_postgres = {
    REIGN_BACKEND_INIT,
    .scheme = "postgres",
    .scheme_alt = "postgresql",
    .open = pg_open,
    .execute = pg_execute,
    .notify_fd = pg_notify_fd,
    .notify_drain = pg_notify_drain,
    .observe = pg_observe,
    .set_metadata = pg_set_metadata,
    .close = pg_close,
};
