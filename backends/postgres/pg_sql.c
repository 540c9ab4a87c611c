/* The SQL of the postgres:// backend and the pure parts around it: binary
 * parameters, result → op, SQLSTATE → reign status, NOTIFY payloads. No I/O
 * here, so tests/unit/test_postgres_*.c can feed it made-up results.
 *
 * Map: 1. statements  2. binary parameters  3. results  4. errors
 *      5. payloads, printable IDs, UTF-8
 *
 * Time: every expiry is computed and compared on the server with
 * clock_timestamp(), never now(). now() is frozen at the start of the
 * transaction: a statement that waited for a row lock (another instance
 * taking the same lease), or one in a transaction that began earlier, would
 * see a stale "now" — it would keep a dead lease alive longer than its TTL
 * and hand out leases that end early by the time it waited.
 * clock_timestamp() is read when the row is looked at, so
 *   - a lease is dead exactly when the server's clock passes expires_at;
 *   - a new expires_at = (time the server handled the op) + ttl, which is
 *     later than the time the core sent it, so the holder's local deadline
 *     (sent + ttl × (1 − drift) − margin) always ends before the server's.
 * Only the server's clock is used: the client's wall clock never enters.
 */
#include "pg_sql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- 1. Statements --------------------------------------------------------- */

/* The schema, created if missing (docs/backends/postgres.md shows it).
 * resource is bytea because resource IDs are any bytes but NUL: a text
 * column of a UTF8 database would refuse IDs that are not UTF-8. The row is
 * never deleted: a release or an expiry only ends expires_at, so the term
 * of the next holder is always the last one + 1. */
static const char create_sql[] = "CREATE TABLE IF NOT EXISTS @T (\n"
                                 "    resource   bytea PRIMARY KEY,\n"
                                 "    holder     text NOT NULL,\n"
                                 "    term       bigint NOT NULL,\n"
                                 "    expires_at timestamptz NOT NULL,\n"
                                 "    metadata   text NOT NULL DEFAULT ''\n"
                                 ")";

/* ACQUIRE($1 resource, $2 holder, $3 ttl ms, $4 metadata, $5 "<table>:"):
 * one statement. A lease taken is announced on REIGN_PG_CHANGED_CHANNEL
 * with the payload $5 || hex(resource), for observers (a LATERAL per row of
 * `acquired`, so nothing is sent when nothing was taken).
 * A lease the statement's snapshot shows alive is not touched at all, so
 * that asking about a held lease — most ACQUIREs of a busy candidate — is
 * a read: no row lock, no transaction ID, no WAL. Otherwise a free or dead
 * lease is taken (the term goes up by one; a new resource starts at 1).
 * ON CONFLICT locks the row and checks expires_at again on its newest
 * version even when the snapshot is older, so two instances never both
 * take it. When nothing was taken the last branch reports the holder as of
 * the snapshot; it is empty only in the rare race where another instance
 * created the row after that snapshot (then HELD, holder unknown). */
static const char acquire_sql[] =
    "WITH live AS (\n"
    "    SELECT 1 FROM @T WHERE resource = $1 AND expires_at > clock_timestamp()\n"
    "), acquired AS (\n"
    "    INSERT INTO @T AS lease (resource, holder, term, expires_at, metadata)\n"
    "    SELECT $1, $2, 1, clock_timestamp() + $3 * interval '1 millisecond', $4\n"
    "     WHERE NOT EXISTS (SELECT 1 FROM live)\n"
    "    ON CONFLICT (resource) DO UPDATE\n"
    "        SET holder = excluded.holder, term = lease.term + 1,\n"
    "            expires_at = clock_timestamp() + $3 * interval '1 millisecond',\n"
    "            metadata = excluded.metadata\n"
    "        WHERE lease.expires_at <= clock_timestamp()\n"
    "    RETURNING lease.term\n"
    ")\n"
    "SELECT true, NULL::text, acquired.term, NULL::text, NULL::bigint FROM acquired\n"
    "  CROSS JOIN LATERAL (SELECT pg_notify('" REIGN_PG_CHANGED_CHANNEL "',\n"
    "                                       $5 || encode($1, 'hex'))\n"
    "                       WHERE acquired.term IS NOT NULL) AS n\n"
    "UNION ALL\n"
    "SELECT false, l.holder, l.term, l.metadata,\n"
    "       floor(extract(epoch FROM l.expires_at - clock_timestamp()) * 1000)::bigint\n"
    "  FROM @T AS l\n"
    " WHERE l.resource = $1 AND NOT EXISTS (SELECT 1 FROM acquired)";

/* RENEW($1 resources[], $2 terms[], $3 holder, $4 ttl ms): every renewal of
 * a batch in one statement; returns the 1-based positions renewed.
 * The holder is joined as an array column rather than compared with $3:
 * `lease.holder = $3` would be a filter on the table, and the planner,
 * which has never seen a new instance ID in its statistics, would expect
 * one row from it, scan the table and probe the whole array per row found
 * (1000 leases: a million comparisons, seconds). As a join condition it
 * leaves the planner a hash join or an index probe per array element. */
static const char renew_sql[] =
    "UPDATE @T AS lease\n"
    "   SET expires_at = clock_timestamp() + $4 * interval '1 millisecond'\n"
    "  FROM unnest($1::bytea[], $2::bigint[],\n"
    "              array_fill($3::text, ARRAY[cardinality($1::bytea[])]))\n"
    "       WITH ORDINALITY AS r(resource, term, holder, i)\n"
    " WHERE lease.resource = r.resource AND lease.term = r.term AND lease.holder = r.holder\n"
    "   AND lease.expires_at > clock_timestamp()\n"
    "RETURNING r.i";

/* RELEASE($1 resources[], $2 terms[], $3 holder, $4 channel): end the
 * leases (the rows and their terms stay) and NOTIFY each released resource,
 * hex-encoded; notifications go out when the statement commits. The holder
 * is joined as in renew_sql, for the same reason. */
static const char release_sql[] =
    "WITH released AS (\n"
    "    UPDATE @T AS lease SET expires_at = clock_timestamp()\n"
    "      FROM unnest($1::bytea[], $2::bigint[],\n"
    "                  array_fill($3::text, ARRAY[cardinality($1::bytea[])]))\n"
    "           WITH ORDINALITY AS r(resource, term, holder, i)\n"
    "     WHERE lease.resource = r.resource AND lease.term = r.term\n"
    "       AND lease.holder = r.holder AND lease.expires_at > clock_timestamp()\n"
    "    RETURNING r.i, lease.resource\n"
    ")\n"
    "SELECT i, pg_notify($4, encode(resource, 'hex')) FROM released";

/* READ($1 resource): the live lease, if any. */
static const char read_sql[] =
    "SELECT holder, term, metadata,\n"
    "       floor(extract(epoch FROM expires_at - clock_timestamp()) * 1000)::bigint\n"
    "  FROM @T WHERE resource = $1 AND expires_at > clock_timestamp()";

static const unsigned int acquire_types[] = {REIGN_PG_OID_BYTEA, REIGN_PG_OID_TEXT,
                                             REIGN_PG_OID_INT8, REIGN_PG_OID_TEXT,
                                             REIGN_PG_OID_TEXT};
static const unsigned int renew_types[] = {REIGN_PG_OID_BYTEA_ARRAY, REIGN_PG_OID_INT8_ARRAY,
                                           REIGN_PG_OID_TEXT, REIGN_PG_OID_INT8};
static const unsigned int release_types[] = {REIGN_PG_OID_BYTEA_ARRAY, REIGN_PG_OID_INT8_ARRAY,
                                             REIGN_PG_OID_TEXT, REIGN_PG_OID_TEXT};
static const unsigned int read_types[] = {REIGN_PG_OID_BYTEA};

static const struct {
    const char *name;
    const char *sql;
    const unsigned int *types;
    int n_params;
} stmts[REIGN_PG_N_STMTS] = {
    [REIGN_PG_ACQUIRE] = {"reign_acquire", acquire_sql, acquire_types, 5},
    [REIGN_PG_RENEW] = {"reign_renew", renew_sql, renew_types, 4},
    [REIGN_PG_RELEASE] = {"reign_release", release_sql, release_types, 4},
    [REIGN_PG_READ] = {"reign_read", read_sql, read_types, 1},
};

const char *reign_pg_stmt_name(reign_pg_stmt s) { return stmts[s].name; }

int reign_pg_stmt_n_params(reign_pg_stmt s) { return stmts[s].n_params; }

const unsigned int *reign_pg_stmt_types(reign_pg_stmt s) { return stmts[s].types; }

/* The template with every @T replaced by the quoted table name. */
static char *subst(const char *tmpl, const char *quoted)
{
    size_t qlen = strlen(quoted), n = 0;
    for (const char *p = strstr(tmpl, "@T"); p != NULL; p = strstr(p + 2, "@T")) {
        n++;
    }
    size_t len = strlen(tmpl) + n * qlen + 1;
    char *out = malloc(len);
    if (out == NULL) {
        return NULL;
    }
    char *o = out;
    for (const char *p = tmpl; *p != '\0';) {
        if (p[0] == '@' && p[1] == 'T') {
            memcpy(o, quoted, qlen);
            o += qlen;
            p += 2;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    return out;
}

char *reign_pg_sql(reign_pg_stmt s, const char *quoted) { return subst(stmts[s].sql, quoted); }

char *reign_pg_sql_create(const char *quoted) { return subst(create_sql, quoted); }

/* ---- 2. Binary parameters ---------------------------------------------------- */

static void buf_put(reign_pg_buf *b, const void *p, size_t n)
{
    if (b->failed) {
        return;
    }
    if (b->len + n > b->cap) {
        size_t ncap = b->cap == 0 ? 256 : b->cap;
        while (ncap < b->len + n) {
            ncap *= 2;
        }
        char *nd = realloc(b->data, ncap);
        if (nd == NULL) {
            b->failed = true;
            return;
        }
        b->data = nd;
        b->cap = ncap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void put_int32(reign_pg_buf *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    buf_put(b, x, 4);
}

void reign_pg_int8_bytes(int64_t v, char out[8])
{
    uint64_t u = (uint64_t)v;
    for (int i = 7; i >= 0; i--) {
        out[i] = (char)(unsigned char)(u & 0xff);
        u >>= 8;
    }
}

void reign_pg_array_begin(reign_pg_buf *b, unsigned int elem_oid, size_t n_elems)
{
    b->len = 0;
    b->failed = false;
    put_int32(b, 1);                 /* dimensions */
    put_int32(b, 0);                 /* no NULL elements */
    put_int32(b, elem_oid);          /* element type */
    put_int32(b, (uint32_t)n_elems); /* length of the dimension */
    put_int32(b, 1);                 /* lower bound: positions count from 1 */
}

void reign_pg_array_add(reign_pg_buf *b, const void *elem, size_t len)
{
    put_int32(b, (uint32_t)len);
    buf_put(b, elem, len);
}

void reign_pg_array_add_int8(reign_pg_buf *b, int64_t v)
{
    char x[8];
    reign_pg_int8_bytes(v, x);
    reign_pg_array_add(b, x, 8);
}

void reign_pg_buf_free(reign_pg_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

/* ---- 3. Results ---------------------------------------------------------------- */

static int64_t int8_of(const char *p)
{
    uint64_t u = 0;
    for (int i = 0; i < 8; i++) {
        u = (u << 8) | (unsigned char)p[i];
    }
    return (int64_t)u;
}

/* Column `col` of row `row` must be a binary value of `oid`; int8 and bool
 * must have their exact sizes. */
static bool col_ok(const PGresult *res, int col, unsigned int oid)
{
    if (PQftype(res, col) != oid || PQfformat(res, col) != 1) {
        return false;
    }
    return true;
}

static int get_int8(const PGresult *res, int row, int col, bool null_ok, int64_t *out,
                    bool *is_null)
{
    if (PQgetisnull(res, row, col)) {
        if (is_null != NULL) {
            *is_null = true;
        }
        return null_ok ? REIGN_OK : REIGN_EPROTO;
    }
    if (is_null != NULL) {
        *is_null = false;
    }
    if (PQgetlength(res, row, col) != 8) {
        return REIGN_EPROTO;
    }
    *out = int8_of(PQgetvalue(res, row, col));
    return REIGN_OK;
}

/* A text column → malloc'd C string (NULL column → NULL, *ok stays). */
static char *get_text(const PGresult *res, int row, int col, bool *oom)
{
    if (PQgetisnull(res, row, col)) {
        return NULL;
    }
    int len = PQgetlength(res, row, col);
    char *s = malloc((size_t)len + 1);
    if (s == NULL) {
        *oom = true;
        return NULL;
    }
    memcpy(s, PQgetvalue(res, row, col), (size_t)len);
    s[len] = '\0';
    return s;
}

/* Fill the HELD/READ fields from holder, term, metadata, remaining columns
 * starting at `col`. */
static int fill_holder(const PGresult *res, int col, reign_op *op, char *err, size_t err_size)
{
    int64_t term = 0, remaining = -1;
    bool oom = false, rem_null = false;
    if (get_int8(res, 0, col + 1, false, &term, NULL) != REIGN_OK || term < 0 ||
        get_int8(res, 0, col + 3, true, &remaining, &rem_null) != REIGN_OK ||
        PQgetisnull(res, 0, col)) {
        snprintf(err, err_size, "unexpected NULL or size in the lease row");
        return REIGN_EPROTO;
    }
    op->out_holder = get_text(res, 0, col, &oom);
    op->out_metadata = get_text(res, 0, col + 2, &oom);
    if (oom || op->out_holder == NULL) {
        free(op->out_holder);
        free(op->out_metadata);
        op->out_holder = op->out_metadata = NULL;
        snprintf(err, err_size, "out of memory reading the lease row");
        return REIGN_ENOMEM;
    }
    op->out_term = (uint64_t)term;
    /* Negative: the snapshot's row had ended but a newer one holds the lease
     * (see acquire_sql): how long it has left is unknown. */
    op->out_remaining_ms = rem_null || remaining < 0 ? -1 : remaining;
    return REIGN_OK;
}

int reign_pg_parse_acquire(const PGresult *res, reign_op *op, char *err, size_t err_size)
{
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) != 5 ||
        !col_ok(res, 0, REIGN_PG_OID_BOOL) || !col_ok(res, 1, REIGN_PG_OID_TEXT) ||
        !col_ok(res, 2, REIGN_PG_OID_INT8) || !col_ok(res, 3, REIGN_PG_OID_TEXT) ||
        !col_ok(res, 4, REIGN_PG_OID_INT8)) {
        snprintf(err, err_size, "unexpected result shape for ACQUIRE (%d columns)", PQnfields(res));
        return REIGN_EPROTO;
    }
    int rows = PQntuples(res);
    if (rows == 0) {
        /* the rare race of acquire_sql: held by someone we could not see */
        op->result = REIGN_RES_HELD;
        op->out_remaining_ms = -1;
        return REIGN_OK;
    }
    if (rows != 1 || PQgetisnull(res, 0, 0) || PQgetlength(res, 0, 0) != 1) {
        snprintf(err, err_size, "ACQUIRE returned %d rows, expected 1", rows);
        return REIGN_EPROTO;
    }
    bool acquired = PQgetvalue(res, 0, 0)[0] != 0;
    if (acquired) {
        int64_t term = 0;
        if (get_int8(res, 0, 2, false, &term, NULL) != REIGN_OK || term <= 0) {
            snprintf(err, err_size, "ACQUIRE returned no valid term");
            return REIGN_EPROTO;
        }
        op->out_term = (uint64_t)term;
        op->result = REIGN_RES_OK;
        return REIGN_OK;
    }
    int rc = fill_holder(res, 1, op, err, err_size);
    if (rc == REIGN_OK) {
        op->result = REIGN_RES_HELD;
    }
    return rc;
}

int reign_pg_parse_read(const PGresult *res, reign_op *op, char *err, size_t err_size)
{
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) != 4 ||
        !col_ok(res, 0, REIGN_PG_OID_TEXT) || !col_ok(res, 1, REIGN_PG_OID_INT8) ||
        !col_ok(res, 2, REIGN_PG_OID_TEXT) || !col_ok(res, 3, REIGN_PG_OID_INT8)) {
        snprintf(err, err_size, "unexpected result shape for READ (%d columns)", PQnfields(res));
        return REIGN_EPROTO;
    }
    int rows = PQntuples(res);
    if (rows == 0) {
        op->result = REIGN_RES_NONE;
        return REIGN_OK;
    }
    if (rows != 1) {
        snprintf(err, err_size, "READ returned %d rows, expected 0 or 1", rows);
        return REIGN_EPROTO;
    }
    int rc = fill_holder(res, 0, op, err, err_size);
    if (rc == REIGN_OK) {
        op->result = REIGN_RES_OK;
    }
    return rc;
}

int reign_pg_parse_positions(const PGresult *res, reign_op *ops, const size_t *idx, size_t n,
                             char *err, size_t err_size)
{
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) < 1 ||
        !col_ok(res, 0, REIGN_PG_OID_INT8)) {
        snprintf(err, err_size, "unexpected result shape (%d columns)", PQnfields(res));
        return REIGN_EPROTO;
    }
    int rows = PQntuples(res);
    /* Check every row before touching an op: a bad result sets nothing. */
    for (int r = 0; r < rows; r++) {
        int64_t pos = 0;
        if (get_int8(res, r, 0, false, &pos, NULL) != REIGN_OK || pos < 1 || (uint64_t)pos > n) {
            snprintf(err, err_size, "row %d names position %lld of %zu", r, (long long)pos, n);
            return REIGN_EPROTO;
        }
    }
    for (size_t k = 0; k < n; k++) {
        ops[idx[k]].result = REIGN_RES_LOST;
    }
    for (int r = 0; r < rows; r++) {
        int64_t pos = 0;
        (void)get_int8(res, r, 0, false, &pos, NULL);
        ops[idx[pos - 1]].result = REIGN_RES_OK;
    }
    return REIGN_OK;
}

/* ---- 4. Errors ------------------------------------------------------------------- */

int reign_pg_sqlstate_status(const char *sqlstate)
{
    if (sqlstate == NULL || strlen(sqlstate) != 5) {
        return REIGN_EBACKEND;
    }
    /* exact codes first, then classes */
    static const struct {
        const char *code;
        int status;
    } exact[] = {
        {"28P01", REIGN_EAUTH},     /* invalid_password */
        {"28000", REIGN_EAUTH},     /* invalid_authorization_specification */
        {"42501", REIGN_EAUTH},     /* insufficient_privilege */
        {"3D000", REIGN_EINVAL},    /* invalid_catalog_name: no such database */
        {"3F000", REIGN_EINVAL},    /* invalid_schema_name: table=SCHEMA.x */
        {"42703", REIGN_EINVAL},    /* undefined_column: a table of another shape */
        {"42804", REIGN_EINVAL},    /* datatype_mismatch: idem */
        {"42883", REIGN_EINVAL},    /* undefined_function: idem, or a server too old */
        {"42P01", REIGN_EBACKEND},  /* undefined_table: dropped under us; recreated */
        {"25006", REIGN_EBACKEND},  /* read_only_sql_transaction: a standby */
        {"40001", REIGN_EBACKEND},  /* serialization_failure: retry */
        {"40P01", REIGN_EBACKEND},  /* deadlock_detected: retry */
        {"57014", REIGN_ETIMEDOUT}, /* query_canceled: statement_timeout */
        {"55P03", REIGN_ETIMEDOUT}, /* lock_not_available: lock_timeout */
        {"22021", REIGN_EINVAL},    /* character_not_in_repertoire: not UTF-8 */
        {"54000", REIGN_EINVAL},    /* program_limit_exceeded: e.g. too long a payload */
    };
    for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++) {
        if (strcmp(exact[i].code, sqlstate) == 0) {
            return exact[i].status;
        }
    }
    if (strncmp(sqlstate, "08", 2) == 0 || strncmp(sqlstate, "57", 2) == 0 ||
        strncmp(sqlstate, "53", 2) == 0 || strncmp(sqlstate, "58", 2) == 0) {
        /* connection exception, operator intervention (shutdown, starting
         * up), insufficient resources, system error: retry */
        return REIGN_EBACKEND;
    }
    if (strncmp(sqlstate, "28", 2) == 0) {
        return REIGN_EAUTH;
    }
    return REIGN_EBACKEND;
}

static bool sqlstate_char(char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z'); }

bool reign_pg_sqlstate_in_message(const char *msg, char out[6])
{
    /* libpq's verbose form is "<SEVERITY>:  <SQLSTATE>: <message>" */
    static const char *const sev[] = {"FATAL:  ", "ERROR:  ", "PANIC:  "};
    if (msg == NULL) {
        return false;
    }
    for (size_t s = 0; s < sizeof(sev) / sizeof(sev[0]); s++) {
        size_t sl = strlen(sev[s]);
        for (const char *p = strstr(msg, sev[s]); p != NULL; p = strstr(p + 1, sev[s])) {
            const char *c = p + sl;
            bool ok = true;
            for (int i = 0; i < 5; i++) {
                if (!sqlstate_char(c[i])) {
                    ok = false;
                    break;
                }
            }
            if (ok && c[5] == ':') {
                memcpy(out, c, 5);
                out[5] = '\0';
                return true;
            }
        }
    }
    return false;
}

/* Cut blanks at both ends of s[0..*len). */
static void trim(const char **s, size_t *len)
{
    while (*len > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 &&
           ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t' || (*s)[*len - 1] == '\r')) {
        (*len)--;
    }
}

void reign_pg_clean_message(const char *msg, const char *secret, char *out, size_t out_size)
{
    size_t o = 0;
    size_t slen = secret != NULL ? strlen(secret) : 0;
    bool sep = false;
    if (out_size == 0) {
        return;
    }
    if (msg == NULL) {
        msg = "";
    }
    const char *line = msg;
    while (*line != '\0') {
        const char *end = strchr(line, '\n');
        size_t len = end != NULL ? (size_t)(end - line) : strlen(line);
        const char *l = line;
        trim(&l, &len);
        /* libpq repeats a failure once per attempt (sslmode=prefer tries
         * with TLS, then without): show each line once */
        bool seen = false;
        for (const char *q = msg; q < line && !seen;) {
            const char *qe = strchr(q, '\n');
            size_t ql = qe != NULL ? (size_t)(qe - q) : strlen(q);
            trim(&q, &ql);
            seen = ql == len && memcmp(q, l, len) == 0;
            q = qe != NULL ? qe + 1 : line;
        }
        if (len > 0 && strncmp(l, "LOCATION:", 9) != 0 && !seen) {
            if (sep) {
                for (const char *s = "; "; *s != '\0' && o + 1 < out_size; s++) {
                    out[o++] = *s;
                }
            }
            for (size_t i = 0; i < len && o + 1 < out_size;) {
                if (slen > 0 && i + slen <= len && memcmp(l + i, secret, slen) == 0) {
                    for (const char *s = "***"; *s != '\0' && o + 1 < out_size; s++) {
                        out[o++] = *s;
                    }
                    i += slen;
                } else {
                    out[o++] = l[i++];
                }
            }
            sep = true;
        }
        line = end != NULL ? end + 1 : line + strlen(line);
    }
    out[o] = '\0';
}

/* ---- 5. Payloads, printable IDs, UTF-8 --------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

bool reign_pg_payload_decode(const char *payload, char *out, size_t out_size, size_t *out_len)
{
    if (payload == NULL) {
        return false;
    }
    size_t len = strlen(payload);
    if (len == 0 || len % 2 != 0 || len / 2 > REIGN_RESOURCE_ID_MAX || len / 2 >= out_size) {
        return false;
    }
    for (size_t i = 0; i < len / 2; i++) {
        int hi = hexval(payload[2 * i]), lo = hexval(payload[2 * i + 1]);
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            return false; /* not hex, or a NUL: no resource ID has one */
        }
        out[i] = (char)(hi * 16 + lo);
    }
    out[len / 2] = '\0';
    *out_len = len / 2;
    return true;
}

bool reign_pg_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + n >= len) {
            return false; /* cut short */
        }
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        /* overlong forms, surrogates and beyond U+10FFFF */
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff)) {
            return false;
        }
        i += n + 1;
    }
    return true;
}
