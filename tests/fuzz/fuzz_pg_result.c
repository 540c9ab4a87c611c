/* Fuzz target: PostgreSQL results as the postgres:// backend reads them
 * (backends/postgres/pg_sql.c). libpq builds a PGresult without a server
 * (PQmakeEmptyPGresult, PQsetResultAttrs, PQsetvalue): column types and
 * formats, row count, NULLs and every value's bytes come from the input.
 * Also the server-message helpers: the SQLSTATE finder, and the message
 * cleaner, which must never let the password through. */
#include <libpq-fe.h>

#include "fuzz_common.h"
#include "postgres/pg_sql.h"

static const unsigned oids[] = {REIGN_PG_OID_BOOL, REIGN_PG_OID_TEXT, REIGN_PG_OID_INT8,
                                REIGN_PG_OID_TEXT, REIGN_PG_OID_INT8, REIGN_PG_OID_BYTEA};

static PGresult *make_result(fuzz_in *in)
{
    unsigned shape = fuzz_byte(in);
    int nfields = (int)(shape % 7);
    int ntuples = (int)(shape >> 3) % 4;
    ExecStatusType status = (shape & 0x80) && (shape & 0x40) ? PGRES_COMMAND_OK : PGRES_TUPLES_OK;
    PGresult *res = PQmakeEmptyPGresult(NULL, status);
    if (res == NULL || nfields == 0)
        return res;
    PGresAttDesc atts[6];
    char names[6][4];
    unsigned tweak = fuzz_byte(in);
    for (int c = 0; c < nfields; c++) {
        snprintf(names[c], sizeof names[c], "c%d", c);
        memset(&atts[c], 0, sizeof atts[c]);
        atts[c].name = names[c];
        /* mostly the shape the statements return; sometimes another type
         * or the text format */
        atts[c].typid = (tweak >> c) & 1 && (tweak & 0x80) ? oids[(c + 1) % 6] : oids[c % 6];
        if (nfields == 4) /* READ: text int8 text int8 */
            atts[c].typid = c % 2 == 0 ? REIGN_PG_OID_TEXT : REIGN_PG_OID_INT8;
        if (nfields == 1)
            atts[c].typid = REIGN_PG_OID_INT8;
        atts[c].format = (tweak & 0x40) && c == 0 ? 0 : 1;
        atts[c].typlen = -1;
        atts[c].atttypmod = -1;
    }
    if (!PQsetResultAttrs(res, nfields, atts)) {
        PQclear(res);
        return NULL;
    }
    for (int r = 0; r < ntuples; r++) {
        for (int c = 0; c < nfields; c++) {
            size_t len = fuzz_byte(in);
            if (len == 255) {
                PQsetvalue(res, r, c, NULL, -1); /* NULL */
                continue;
            }
            len %= 24;
            const uint8_t *v = fuzz_take(in, &len);
            PQsetvalue(res, r, c, (char *)v, (int)len);
        }
    }
    return res;
}

static void check(int rc, const reign_op *op, const char *err, size_t err_size)
{
    if (rc == REIGN_OK) {
        FUZZ_CHECK(op->result != REIGN_RES_UNSET, "OK but op unset");
        if (op->result == REIGN_RES_OK && op->kind == REIGN_OP_ACQUIRE)
            FUZZ_CHECK(op->out_term > 0, "acquired term 0");
        if (op->kind == REIGN_OP_READ && op->result == REIGN_RES_OK)
            FUZZ_CHECK(op->out_holder != NULL, "read without holder");
    } else {
        FUZZ_CHECK(rc < 0 && fuzz_terminated(err, err_size) && err[0] != '\0',
                   "status %d without a message", rc);
    }
}

static void fuzz_results(fuzz_in *in)
{
    PGresult *res = make_result(in);
    if (res == NULL)
        return;
    char err[160];
    reign_op op;
    memset(&op, 0, sizeof op);
    op.kind = REIGN_OP_ACQUIRE;
    int rc = reign_pg_parse_acquire(res, &op, err, sizeof err);
    check(rc, &op, err, sizeof err);
    free(op.out_holder);
    free(op.out_metadata);
    memset(&op, 0, sizeof op);
    op.kind = REIGN_OP_READ;
    rc = reign_pg_parse_read(res, &op, err, sizeof err);
    check(rc, &op, err, sizeof err);
    free(op.out_holder);
    free(op.out_metadata);

    reign_op ops[4];
    size_t idx[3] = {2, 0, 3};
    memset(ops, 0, sizeof ops);
    rc = reign_pg_parse_positions(res, ops, idx, 3, err, sizeof err);
    if (rc == REIGN_OK) {
        for (size_t k = 0; k < 3; k++)
            FUZZ_CHECK(ops[idx[k]].result == REIGN_RES_OK || ops[idx[k]].result == REIGN_RES_LOST,
                       "position %zu unset", k);
        FUZZ_CHECK(ops[1].result == REIGN_RES_UNSET, "an op outside idx was set");
    } else {
        for (size_t k = 0; k < 4; k++)
            FUZZ_CHECK(ops[k].result == REIGN_RES_UNSET, "failed parse set op %zu", k);
    }
    PQclear(res);
}

static void fuzz_messages(fuzz_in *in)
{
    /* secret, then message: both C strings from the input */
    size_t slen = fuzz_byte(in) % 24;
    char secret[32];
    const uint8_t *s = fuzz_take(in, &slen);
    memcpy(secret, s, slen);
    secret[slen] = '\0';
    size_t mlen = in->n;
    char *msg = malloc(mlen + 1);
    if (msg == NULL)
        return;
    memcpy(msg, fuzz_take(in, &mlen), mlen);
    msg[mlen] = '\0';

    char state[6];
    if (reign_pg_sqlstate_in_message(msg, state)) {
        FUZZ_CHECK(strlen(state) == 5, "sqlstate '%s'", state);
        (void)reign_pg_sqlstate_status(state);
    }
    char out[200];
    reign_pg_clean_message(msg, secret[0] != '\0' ? secret : NULL, out, sizeof out);
    FUZZ_CHECK(fuzz_terminated(out, sizeof out), "clean message not terminated");
    /* A secret of letters and digits cannot be made by the cleaner's own
     * joins ("; ") or cuts: it must not be in the output at all. */
    size_t sl = strlen(secret);
    if (sl >= 4 && strspn(secret, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") ==
                       sl)
        FUZZ_CHECK(strstr(out, secret) == NULL, "secret '%s' in cleaned message '%s' (from '%s')",
                   secret, out, msg);

    char payload[64];
    size_t plen = 0;
    if (reign_pg_payload_decode(msg, payload, sizeof payload, &plen))
        FUZZ_CHECK(plen <= sizeof payload, "payload length %zu", plen);
    free(msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 8192)
        return 0;
    fuzz_in in = {data + 1, size - 1};
    if (data[0] & 1)
        fuzz_messages(&in);
    else
        fuzz_results(&in);
    return 0;
}
