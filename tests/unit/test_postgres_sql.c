/* Unit tests of the postgres:// backend's pure parts, no server: the SQL
 * text, binary array parameters, results (made with libpq's
 * PQmakeEmptyPGresult) → op results, SQLSTATE → status, libpq messages
 * cleaned of secrets, NOTIFY payloads, printable IDs and UTF-8 checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#ifdef REIGN_WITH_POSTGRES

#include "../../backends/postgres/pg_sql.h"

/* ---- helpers: results as the server would send them (binary format) ------- */

typedef struct col {
    const char *name;
    unsigned int oid;
} col;

static PGresult *result_of(const col *cols, int n)
{
    PGresult *r = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    assert_non_null(r);
    PGresAttDesc d[8];
    assert_true(n <= 8);
    for (int i = 0; i < n; i++) {
        d[i] = (PGresAttDesc){.name = (char *)cols[i].name,
                              .format = 1,
                              .typid = cols[i].oid,
                              .typlen = -1,
                              .atttypmod = -1};
    }
    assert_int_equal(PQsetResultAttrs(r, n, d), 1);
    return r;
}

static void set_int8(PGresult *r, int row, int c, int64_t v)
{
    char b[8];
    reign_pg_int8_bytes(v, b);
    assert_int_equal(PQsetvalue(r, row, c, b, 8), 1);
}

static void set_text(PGresult *r, int row, int c, const char *s)
{
    assert_int_equal(PQsetvalue(r, row, c, (char *)s, s != NULL ? (int)strlen(s) : -1), 1);
}

static void set_bool(PGresult *r, int row, int c, int v)
{
    char b = (char)v;
    assert_int_equal(PQsetvalue(r, row, c, &b, 1), 1);
}

static const col acquire_cols[] = {{"bool", REIGN_PG_OID_BOOL},
                                   {"holder", REIGN_PG_OID_TEXT},
                                   {"term", REIGN_PG_OID_INT8},
                                   {"metadata", REIGN_PG_OID_TEXT},
                                   {"remaining", REIGN_PG_OID_INT8}};
static const col read_cols[] = {{"holder", REIGN_PG_OID_TEXT},
                                {"term", REIGN_PG_OID_INT8},
                                {"metadata", REIGN_PG_OID_TEXT},
                                {"remaining", REIGN_PG_OID_INT8}};

static reign_op op_of(reign_op_kind kind)
{
    reign_op op;
    memset(&op, 0, sizeof(op));
    op.kind = kind;
    op.resource = "jobs/7";
    op.resource_len = 6;
    op.out_remaining_ms = -1;
    return op;
}

static void op_clear(reign_op *op)
{
    free(op->out_holder);
    free(op->out_metadata);
    free(op->out_error);
}

/* ---- statements ---------------------------------------------------------------- */

static void test_every_statement_names_the_quoted_table_and_no_placeholder_is_left(void **state)
{
    (void)state;
    for (int s = 0; s < REIGN_PG_N_STMTS; s++) {
        char *sql = reign_pg_sql((reign_pg_stmt)s, "\"app\".\"my leases\"");
        assert_non_null(sql);
        assert_null(strstr(sql, "@T"));
        assert_non_null(strstr(sql, "\"app\".\"my leases\""));
        free(sql);
    }
    char *acq = reign_pg_sql(REIGN_PG_ACQUIRE, "\"t\"");
    /* the INSERT and the read of the holder both name it */
    const char *first = strstr(acq, "\"t\"");
    assert_non_null(first);
    assert_non_null(strstr(first + 1, "\"t\""));
    free(acq);
    char *create = reign_pg_sql_create("\"reign_leases\"");
    assert_non_null(strstr(create, "CREATE TABLE IF NOT EXISTS \"reign_leases\""));
    assert_non_null(strstr(create, "resource   bytea PRIMARY KEY"));
    free(create);
}

static void test_expiry_uses_the_server_clock_timestamp_never_now(void **state)
{
    (void)state;
    for (int s = 0; s < REIGN_PG_N_STMTS; s++) {
        char *sql = reign_pg_sql((reign_pg_stmt)s, "\"t\"");
        assert_null(strstr(sql, "now()"));
        assert_non_null(strstr(sql, "clock_timestamp()"));
        free(sql);
    }
}

static void test_renew_and_release_take_arrays_and_acquire_one_resource(void **state)
{
    (void)state;
    assert_int_equal(reign_pg_stmt_n_params(REIGN_PG_RENEW), 4);
    assert_int_equal(reign_pg_stmt_types(REIGN_PG_RENEW)[0], REIGN_PG_OID_BYTEA_ARRAY);
    assert_int_equal(reign_pg_stmt_types(REIGN_PG_RENEW)[1], REIGN_PG_OID_INT8_ARRAY);
    assert_int_equal(reign_pg_stmt_types(REIGN_PG_RELEASE)[0], REIGN_PG_OID_BYTEA_ARRAY);
    assert_int_equal(reign_pg_stmt_types(REIGN_PG_ACQUIRE)[0], REIGN_PG_OID_BYTEA);
    assert_int_equal(reign_pg_stmt_types(REIGN_PG_READ)[0], REIGN_PG_OID_BYTEA);
    char *rel = reign_pg_sql(REIGN_PG_RELEASE, "\"t\"");
    assert_non_null(strstr(rel, "pg_notify($4, encode(resource, 'hex'))"));
    free(rel);
    assert_string_not_equal(reign_pg_stmt_name(REIGN_PG_ACQUIRE),
                            reign_pg_stmt_name(REIGN_PG_READ));
}

/* ---- binary parameters ------------------------------------------------------------- */

static void test_int8_parameters_are_big_endian(void **state)
{
    (void)state;
    char b[8];
    reign_pg_int8_bytes(0x0102030405060708LL, b);
    assert_memory_equal(b, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
    reign_pg_int8_bytes(-1, b);
    assert_memory_equal(b, "\xff\xff\xff\xff\xff\xff\xff\xff", 8);
}

static void test_a_bytea_array_has_the_array_send_layout(void **state)
{
    (void)state;
    reign_pg_buf b = {0};
    reign_pg_array_begin(&b, REIGN_PG_OID_BYTEA, 2);
    reign_pg_array_add(&b, "ab", 2);
    reign_pg_array_add(&b, "\xff", 1);
    assert_false(b.failed);
    static const char want[] = "\0\0\0\1"   /* one dimension */
                               "\0\0\0\0"   /* no NULLs */
                               "\0\0\0\x11" /* bytea */
                               "\0\0\0\2"   /* two elements */
                               "\0\0\0\1"   /* from position 1 */
                               "\0\0\0\2ab"
                               "\0\0\0\1\xff";
    assert_int_equal(b.len, sizeof(want) - 1);
    assert_memory_equal(b.data, want, sizeof(want) - 1);
    /* begin again reuses the buffer */
    reign_pg_array_begin(&b, REIGN_PG_OID_INT8, 1);
    reign_pg_array_add_int8(&b, 7);
    assert_int_equal(b.len, 20 + 4 + 8);
    assert_memory_equal(b.data + 8, "\0\0\0\x14", 4);
    assert_memory_equal(b.data + 24, "\0\0\0\0\0\0\0\7", 8);
    reign_pg_buf_free(&b);
}

/* ---- results --------------------------------------------------------------------------- */

static void test_an_acquire_that_inserted_reports_ok_with_its_term(void **state)
{
    (void)state;
    PGresult *r = result_of(acquire_cols, 5);
    set_bool(r, 0, 0, 1);
    set_text(r, 0, 1, NULL);
    set_int8(r, 0, 2, 42);
    set_text(r, 0, 3, NULL);
    set_text(r, 0, 4, NULL);
    reign_op op = op_of(REIGN_OP_ACQUIRE);
    char err[200];
    assert_int_equal(reign_pg_parse_acquire(r, &op, err, sizeof(err)), REIGN_OK);
    assert_int_equal(op.result, REIGN_RES_OK);
    assert_int_equal(op.out_term, 42);
    assert_null(op.out_holder);
    PQclear(r);
}

static void test_an_acquire_of_a_held_lease_reports_the_holder_and_time_left(void **state)
{
    (void)state;
    PGresult *r = result_of(acquire_cols, 5);
    set_bool(r, 0, 0, 0);
    set_text(r, 0, 1, "other:1");
    set_int8(r, 0, 2, 9);
    set_text(r, 0, 3, "10.0.0.5:80");
    set_int8(r, 0, 4, 1234);
    reign_op op = op_of(REIGN_OP_ACQUIRE);
    char err[200];
    assert_int_equal(reign_pg_parse_acquire(r, &op, err, sizeof(err)), REIGN_OK);
    assert_int_equal(op.result, REIGN_RES_HELD);
    assert_int_equal(op.out_term, 9);
    assert_string_equal(op.out_holder, "other:1");
    assert_string_equal(op.out_metadata, "10.0.0.5:80");
    assert_int_equal(op.out_remaining_ms, 1234);
    op_clear(&op);
    PQclear(r);
}

static void test_a_held_row_already_past_its_expiry_reports_unknown_time_left(void **state)
{
    (void)state;
    PGresult *r = result_of(acquire_cols, 5);
    set_bool(r, 0, 0, 0);
    set_text(r, 0, 1, "other:1");
    set_int8(r, 0, 2, 9);
    set_text(r, 0, 3, "");
    set_int8(r, 0, 4, -15);
    reign_op op = op_of(REIGN_OP_ACQUIRE);
    char err[200];
    assert_int_equal(reign_pg_parse_acquire(r, &op, err, sizeof(err)), REIGN_OK);
    assert_int_equal(op.result, REIGN_RES_HELD);
    assert_int_equal(op.out_remaining_ms, -1);
    op_clear(&op);
    PQclear(r);
}

static void test_an_acquire_with_no_row_reports_held_by_an_unknown_holder(void **state)
{
    (void)state;
    PGresult *r = result_of(acquire_cols, 5);
    reign_op op = op_of(REIGN_OP_ACQUIRE);
    char err[200];
    assert_int_equal(reign_pg_parse_acquire(r, &op, err, sizeof(err)), REIGN_OK);
    assert_int_equal(op.result, REIGN_RES_HELD);
    assert_null(op.out_holder);
    assert_int_equal(op.out_remaining_ms, -1);
    PQclear(r);
}

static void test_an_acquire_result_of_another_shape_is_eproto(void **state)
{
    (void)state;
    /* a READ-shaped result where an ACQUIRE's was due */
    PGresult *r = result_of(read_cols, 4);
    reign_op op = op_of(REIGN_OP_ACQUIRE);
    char err[200];
    assert_int_equal(reign_pg_parse_acquire(r, &op, err, sizeof(err)), REIGN_EPROTO);
    assert_int_equal(op.result, REIGN_RES_UNSET);
    assert_non_null(strstr(err, "ACQUIRE"));
    PQclear(r);
    /* a term of the wrong size */
    r = result_of(acquire_cols, 5);
    set_bool(r, 0, 0, 1);
    assert_int_equal(PQsetvalue(r, 0, 2, "1234", 4), 1);
    assert_int_equal(reign_pg_parse_acquire(r, &op, err, sizeof(err)), REIGN_EPROTO);
    PQclear(r);
}

static void test_a_read_reports_none_or_the_live_lease(void **state)
{
    (void)state;
    char err[200];
    PGresult *r = result_of(read_cols, 4);
    reign_op op = op_of(REIGN_OP_READ);
    assert_int_equal(reign_pg_parse_read(r, &op, err, sizeof(err)), REIGN_OK);
    assert_int_equal(op.result, REIGN_RES_NONE);
    set_text(r, 0, 0, "me:2");
    set_int8(r, 0, 1, 3);
    set_text(r, 0, 2, "meta");
    set_int8(r, 0, 3, 900);
    op = op_of(REIGN_OP_READ);
    assert_int_equal(reign_pg_parse_read(r, &op, err, sizeof(err)), REIGN_OK);
    assert_int_equal(op.result, REIGN_RES_OK);
    assert_string_equal(op.out_holder, "me:2");
    assert_int_equal(op.out_term, 3);
    assert_string_equal(op.out_metadata, "meta");
    assert_int_equal(op.out_remaining_ms, 900);
    op_clear(&op);
    PQclear(r);
}

static void test_renewed_positions_are_ok_and_missing_ones_lost(void **state)
{
    (void)state;
    const col c[] = {{"i", REIGN_PG_OID_INT8}};
    PGresult *r = result_of(c, 1);
    set_int8(r, 0, 0, 3);
    set_int8(r, 1, 0, 1);
    reign_op ops[5];
    for (int i = 0; i < 5; i++) {
        ops[i] = op_of(REIGN_OP_RENEW);
    }
    /* the statement covered ops 4, 0, 2 in that order: positions 1..3 */
    size_t idx[] = {4, 0, 2};
    char err[200];
    assert_int_equal(reign_pg_parse_positions(r, ops, idx, 3, err, sizeof(err)), REIGN_OK);
    assert_int_equal(ops[4].result, REIGN_RES_OK);    /* position 1 */
    assert_int_equal(ops[0].result, REIGN_RES_LOST);  /* position 2: not returned */
    assert_int_equal(ops[2].result, REIGN_RES_OK);    /* position 3 */
    assert_int_equal(ops[1].result, REIGN_RES_UNSET); /* not in this statement */
    assert_int_equal(ops[3].result, REIGN_RES_UNSET);
    PQclear(r);
}

static void test_a_position_out_of_range_is_eproto_and_sets_no_op(void **state)
{
    (void)state;
    const col c[] = {{"i", REIGN_PG_OID_INT8}};
    PGresult *r = result_of(c, 1);
    set_int8(r, 0, 0, 1);
    set_int8(r, 1, 0, 4);
    reign_op ops[3];
    for (int i = 0; i < 3; i++) {
        ops[i] = op_of(REIGN_OP_RELEASE);
    }
    size_t idx[] = {0, 1, 2};
    char err[200];
    assert_int_equal(reign_pg_parse_positions(r, ops, idx, 3, err, sizeof(err)), REIGN_EPROTO);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ops[i].result, REIGN_RES_UNSET);
    }
    assert_non_null(strstr(err, "position 4"));
    PQclear(r);
}

/* ---- errors -------------------------------------------------------------------------------- */

static void test_sqlstates_map_to_named_statuses(void **state)
{
    (void)state;
    assert_int_equal(reign_pg_sqlstate_status("28P01"), REIGN_EAUTH);
    assert_int_equal(reign_pg_sqlstate_status("28000"), REIGN_EAUTH);
    assert_int_equal(reign_pg_sqlstate_status("42501"), REIGN_EAUTH);
    assert_int_equal(reign_pg_sqlstate_status("3D000"), REIGN_EINVAL);
    assert_int_equal(reign_pg_sqlstate_status("25006"), REIGN_EBACKEND);
    assert_int_equal(reign_pg_sqlstate_status("40001"), REIGN_EBACKEND);
    assert_int_equal(reign_pg_sqlstate_status("40P01"), REIGN_EBACKEND);
    assert_int_equal(reign_pg_sqlstate_status("57014"), REIGN_ETIMEDOUT);
    assert_int_equal(reign_pg_sqlstate_status("57P01"), REIGN_EBACKEND);
    assert_int_equal(reign_pg_sqlstate_status("08006"), REIGN_EBACKEND);
    assert_int_equal(reign_pg_sqlstate_status("53300"), REIGN_EBACKEND);
    assert_int_equal(reign_pg_sqlstate_status("22021"), REIGN_EINVAL);
    assert_int_equal(reign_pg_sqlstate_status("XX000"), REIGN_EBACKEND);
    assert_int_equal(reign_pg_sqlstate_status(""), REIGN_EBACKEND);
    assert_int_equal(reign_pg_sqlstate_status(NULL), REIGN_EBACKEND);
}

static void test_the_sqlstate_is_found_in_a_verbose_connection_message(void **state)
{
    (void)state;
    char s[6];
    assert_true(reign_pg_sqlstate_in_message(
        "connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  28P01: password "
        "authentication failed for user \"reign\"\nLOCATION:  auth_failed, auth.c:335\n",
        s));
    assert_string_equal(s, "28P01");
    assert_true(reign_pg_sqlstate_in_message("FATAL:  3D000: database \"x\" does not exist", s));
    assert_string_equal(s, "3D000");
    assert_false(reign_pg_sqlstate_in_message("FATAL:  password authentication failed", s));
    assert_false(reign_pg_sqlstate_in_message("Connection refused", s));
    assert_false(reign_pg_sqlstate_in_message(NULL, s));
}

static void test_messages_become_one_line_without_location_repeats_or_secret(void **state)
{
    (void)state;
    char out[300];
    reign_pg_clean_message("connection to server failed: FATAL:  28P01: password authentication "
                           "failed for user \"hunter2\"\nLOCATION:  auth_failed, auth.c:335\n"
                           "connection to server failed: FATAL:  28P01: password authentication "
                           "failed for user \"hunter2\"\n",
                           "hunter2", out, sizeof(out));
    assert_string_equal(out, "connection to server failed: FATAL:  28P01: password "
                             "authentication failed for user \"***\"");
    reign_pg_clean_message("Connection refused\n\tIs the server running?\n", NULL, out,
                           sizeof(out));
    assert_string_equal(out, "Connection refused; Is the server running?");
    reign_pg_clean_message(NULL, NULL, out, sizeof(out));
    assert_string_equal(out, "");
    char tiny[8];
    reign_pg_clean_message("a long message that does not fit", NULL, tiny, sizeof(tiny));
    assert_int_equal(strlen(tiny), 7);
}

/* ---- payloads, printable IDs, UTF-8 ------------------------------------------------------------
 */

static void test_a_hex_payload_decodes_to_the_resource(void **state)
{
    (void)state;
    char out[REIGN_RESOURCE_ID_MAX + 1];
    size_t len = 0;
    assert_true(reign_pg_payload_decode("6a6f62732f37", out, sizeof(out), &len));
    assert_int_equal(len, 6);
    assert_string_equal(out, "jobs/7");
    assert_true(reign_pg_payload_decode("FF01", out, sizeof(out), &len));
    assert_int_equal(len, 2);
    assert_memory_equal(out, "\xff\x01", 2);
}

static void test_payloads_that_are_not_ours_are_refused(void **state)
{
    (void)state;
    char out[REIGN_RESOURCE_ID_MAX + 1];
    size_t len = 99;
    const char *bad[] = {"", "abc", "zz", "6a00", "hello world", NULL};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(reign_pg_payload_decode(bad[i], out, sizeof(out), &len));
    }
    char *huge = malloc(2 * (REIGN_RESOURCE_ID_MAX + 1) + 1);
    memset(huge, 'a', 2 * (REIGN_RESOURCE_ID_MAX + 1));
    huge[2 * (REIGN_RESOURCE_ID_MAX + 1)] = '\0';
    assert_false(reign_pg_payload_decode(huge, out, sizeof(out), &len));
    huge[2 * REIGN_RESOURCE_ID_MAX] = '\0';
    assert_true(reign_pg_payload_decode(huge, out, sizeof(out), &len));
    assert_int_equal(len, REIGN_RESOURCE_ID_MAX);
    free(huge);
    assert_int_equal(len, REIGN_RESOURCE_ID_MAX);
}

static void test_utf8_validity_follows_the_standard(void **state)
{
    (void)state;
    assert_true(reign_pg_utf8_valid("", 0));
    assert_true(reign_pg_utf8_valid("host:1:abc", 10));
    assert_true(reign_pg_utf8_valid("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9));
    assert_false(reign_pg_utf8_valid("\xff", 1));
    assert_false(reign_pg_utf8_valid("\xc3", 1));             /* cut short */
    assert_false(reign_pg_utf8_valid("\xc0\xaf", 2));         /* overlong */
    assert_false(reign_pg_utf8_valid("\xe0\x80\xaf", 3));     /* overlong */
    assert_false(reign_pg_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    assert_false(reign_pg_utf8_valid("\xf4\x90\x80\x80", 4)); /* past U+10FFFF */
    assert_false(reign_pg_utf8_valid("\xe2\x82", 2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_statement_names_the_quoted_table_and_no_placeholder_is_left),
        cmocka_unit_test(test_expiry_uses_the_server_clock_timestamp_never_now),
        cmocka_unit_test(test_renew_and_release_take_arrays_and_acquire_one_resource),
        cmocka_unit_test(test_int8_parameters_are_big_endian),
        cmocka_unit_test(test_a_bytea_array_has_the_array_send_layout),
        cmocka_unit_test(test_an_acquire_that_inserted_reports_ok_with_its_term),
        cmocka_unit_test(test_an_acquire_of_a_held_lease_reports_the_holder_and_time_left),
        cmocka_unit_test(test_a_held_row_already_past_its_expiry_reports_unknown_time_left),
        cmocka_unit_test(test_an_acquire_with_no_row_reports_held_by_an_unknown_holder),
        cmocka_unit_test(test_an_acquire_result_of_another_shape_is_eproto),
        cmocka_unit_test(test_a_read_reports_none_or_the_live_lease),
        cmocka_unit_test(test_renewed_positions_are_ok_and_missing_ones_lost),
        cmocka_unit_test(test_a_position_out_of_range_is_eproto_and_sets_no_op),
        cmocka_unit_test(test_sqlstates_map_to_named_statuses),
        cmocka_unit_test(test_the_sqlstate_is_found_in_a_verbose_connection_message),
        cmocka_unit_test(test_messages_become_one_line_without_location_repeats_or_secret),
        cmocka_unit_test(test_a_hex_payload_decodes_to_the_resource),
        cmocka_unit_test(test_payloads_that_are_not_ours_are_refused),
        cmocka_unit_test(test_utf8_validity_follows_the_standard),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#else /* !REIGN_WITH_POSTGRES */

static void test_postgres_backend_is_not_built(void **state)
{
    (void)state;
    print_message("postgres backend not built (-DREIGN_WITH_POSTGRES=ON): skipped\n");
    skip();
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_postgres_backend_is_not_built)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#endif
