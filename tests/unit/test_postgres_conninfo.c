/* Unit tests of the postgres:// backend's URI handling, no server: the parts
 * the core parsed → libpq keywords, reign's own parameters kept out, libpq's
 * checked against PQconndefaults, secrets kept out of messages, table=. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#ifdef REIGN_WITH_POSTGRES

#include "../../backends/postgres/pg_conninfo.h"

/* ---- helpers -------------------------------------------------------------- */

typedef struct fixture {
    reign_backend_config cfg;
    reign_uri_param params[8];
    size_t n;
    char err[512];
    reign_pg_conninfo ci;
} fixture;

static void fx_init(fixture *f)
{
    memset(f, 0, sizeof(*f));
    f->cfg.uri = "postgres://reign:s3cret@db.example:5433/app";
    f->cfg.uri_redacted = "postgres://reign:***@db.example:5433/app";
    f->cfg.scheme = "postgres";
    f->cfg.path = "";
    f->cfg.params = f->params;
    f->cfg.instance_id = "me";
    f->cfg.metadata = "";
    f->cfg.ttl_ms = 10000;
    f->cfg.op_timeout_ms = 3000;
}

/* A query parameter; used=1 stands for one the core consumed before open. */
static void fx_param(fixture *f, const char *name, const char *value, int used)
{
    f->params[f->n].name = (char *)name;
    f->params[f->n].value = (char *)value;
    f->params[f->n].used = used;
    f->n++;
    f->cfg.n_params = f->n;
}

static const reign_uri_param *fx_find(const fixture *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++) {
        if (strcmp(f->params[i].name, name) == 0) {
            return &f->params[i];
        }
    }
    return NULL;
}

static int fx_build(fixture *f)
{
    return reign_pg_conninfo_build(&f->cfg, &f->ci, f->err, sizeof(f->err));
}

/* ---- the authority and the path -------------------------------------------- */

static void test_uri_parts_become_libpq_keywords(void **state)
{
    (void)state;
    fixture f;
    fx_init(&f);
    f.cfg.user = "reign";
    f.cfg.password = "s3cret";
    f.cfg.host = "db.example";
    f.cfg.port = 5433;
    f.cfg.path = "/app";
    assert_int_equal(fx_build(&f), REIGN_OK);
    assert_string_equal(reign_pg_conninfo_get(&f.ci, "user"), "reign");
    assert_string_equal(reign_pg_conninfo_get(&f.ci, "password"), "s3cret");
    assert_string_equal(reign_pg_conninfo_get(&f.ci, "host"), "db.example");
    assert_string_equal(reign_pg_conninfo_get(&f.ci, "port"), "5433");
    assert_string_equal(reign_pg_conninfo_get(&f.ci, "dbname"), "app");
    /* both arrays end with NULL for PQconnectStartParams */
    assert_null(f.ci.keywords[f.ci.n]);
    assert_null(f.ci.values[f.ci.n]);
    reign_pg_conninfo_free(&f.ci);
}

static void test_an_ipv6_host_loses_its_brackets(void **state)
{
    (void)state;
    fixture f;
    fx_init(&f);
    f.cfg.host = "[::1]";
    assert_int_equal(fx_build(&f), REIGN_OK);
    assert_string_equal(reign_pg_conninfo_get(&f.ci, "host"), "::1");
    reign_pg_conninfo_free(&f.ci);
}

static void test_absent_parts_are_left_to_libpq_and_pg_variables(void **state)
{
    (void)state;
    fixture f;
    fx_init(&f); /* postgres:// with nothing */
    assert_int_equal(fx_build(&f), REIGN_OK);
    assert_null(reign_pg_conninfo_get(&f.ci, "host"));
    assert_null(reign_pg_conninfo_get(&f.ci, "port"));
    assert_null(reign_pg_conninfo_get(&f.ci, "user"));
    assert_null(reign_pg_conninfo_get(&f.ci, "password"));
    assert_null(reign_pg_conninfo_get(&f.ci, "dbname"));
    reign_pg_conninfo_free(&f.ci);
}

static void test_a_path_of_two_segments_is_refused_with_euri(void **state)
{
    (void)state;
    fixture f;
    fx_init(&f);
    f.cfg.path = "/app/extra";
    assert_int_equal(fx_build(&f), REIGN_EURI);
    assert_non_null(strstr(f.err, "/app/extra"));
    assert_non_null(strstr(f.err, "database name"));
}

static void test_several_hosts_in_the_uri_become_libpq_host_and_port_lists(void **state)
{
    (void)state;
    fixture f;
    fx_init(&f);
    /* the core gives the first host in host/port, the list only in uri */
    f.cfg.uri = "postgres://reign:p,w@d:x@db1:5432,[::1]:5433,db3/app?sslmode=require";
    f.cfg.host = "db1";
    f.cfg.port = 5432;
    f.cfg.user = "reign";
    f.cfg.password = "p,w@d:x";
    f.cfg.path = "/app";
    assert_int_equal(fx_build(&f), REIGN_OK);
    assert_string_equal(reign_pg_conninfo_get(&f.ci, "host"), "db1,::1,db3");
    assert_string_equal(reign_pg_conninfo_get(&f.ci, "port"), "5432,5433,");
    assert_string_equal(reign_pg_conninfo_get(&f.ci, "password"), "p,w@d:x");
    assert_string_equal(reign_pg_conninfo_get(&f.ci, "dbname"), "app");
    reign_pg_conninfo_free(&f.ci);
}

static void test_host_lists_are_split_and_checked(void **state)
{
    (void)state;
    char *h = NULL, *p = NULL;
    assert_int_equal(reign_pg_split_hosts("postgres://a,b/db", &h, &p), REIGN_OK);
    assert_string_equal(h, "a,b");
    assert_string_equal(p, ""); /* no port anywhere: libpq's default */
    free(h);
    free(p);
    assert_int_equal(reign_pg_split_hosts("postgresql://u@h%2Dx:1,h2:65535?x=1", &h, &p), REIGN_OK);
    assert_string_equal(h, "h-x,h2");
    assert_string_equal(p, "1,65535");
    free(h);
    free(p);
    const char *bad[] = {"postgres://a,,b/db",   "postgres://a,/db",      "postgres://,a/db",
                         "postgres://a:x,b/db",  "postgres://a:123456,b", "postgres://[::1,b/db",
                         "postgres://[]:1,b/db", "postgres://[::1]x,b",   "postgres://a%2Cb,c",
                         "postgres://a%zz,b",    "postgres://:5432,b",    "no-scheme"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        h = p = NULL;
        assert_int_equal(reign_pg_split_hosts(bad[i], &h, &p), REIGN_EURI);
        assert_null(h);
    }
}

/* ---- the query ---------------------------------------------------------------- */

static void test_reign_parameters_stay_out_and_libpq_ones_pass_marked_used(void **state)
{
    (void)state;
    fixture f;
    fx_init(&f);
    fx_param(&f, "ttl", "5s", 1); /* consumed by the core */
    fx_param(&f, "table", "leases", 0);
    fx_param(&f, "sslmode", "require", 0);
    fx_param(&f, "connect_timeout", "5", 0);
    fx_param(&f, "application_name", "billing", 0);
    assert_int_equal(fx_build(&f), REIGN_OK);
    assert_null(reign_pg_conninfo_get(&f.ci, "ttl"));
    assert_null(reign_pg_conninfo_get(&f.ci, "table"));
    assert_string_equal(reign_pg_conninfo_get(&f.ci, "sslmode"), "require");
    assert_string_equal(reign_pg_conninfo_get(&f.ci, "connect_timeout"), "5");
    assert_string_equal(reign_pg_conninfo_get(&f.ci, "application_name"), "billing");
    assert_int_equal(fx_find(&f, "sslmode")->used, 1);
    assert_int_equal(fx_find(&f, "connect_timeout")->used, 1);
    assert_int_equal(fx_find(&f, "application_name")->used, 1);
    /* table is read (and marked) by the backend itself, not here */
    assert_int_equal(fx_find(&f, "table")->used, 0);
    reign_pg_conninfo_free(&f.ci);
}

static void test_a_query_parameter_overrides_the_authority(void **state)
{
    (void)state;
    fixture f;
    fx_init(&f);
    f.cfg.host = "db.example";
    fx_param(&f, "host", "/run/postgresql", 0);
    assert_int_equal(fx_build(&f), REIGN_OK);
    assert_string_equal(reign_pg_conninfo_get(&f.ci, "host"), "/run/postgresql");
    size_t hosts = 0;
    for (size_t i = 0; i < f.ci.n; i++) {
        hosts += strcmp(f.ci.keywords[i], "host") == 0;
    }
    assert_int_equal(hosts, 1);
    reign_pg_conninfo_free(&f.ci);
}

static void test_an_unknown_parameter_is_refused_with_euri_naming_it(void **state)
{
    (void)state;
    fixture f;
    fx_init(&f);
    fx_param(&f, "sslmode", "disable", 0);
    fx_param(&f, "conformance_no_such_param", "1", 0);
    assert_int_equal(fx_build(&f), REIGN_EURI);
    assert_non_null(strstr(f.err, "'conformance_no_such_param'"));
    assert_non_null(strstr(f.err, f.cfg.uri_redacted));
    assert_int_equal(fx_find(&f, "conformance_no_such_param")->used, 0);
}

static void test_a_password_in_the_query_is_refused_without_showing_it(void **state)
{
    (void)state;
    const char *names[] = {"password", "sslpassword"};
    for (int i = 0; i < 2; i++) {
        fixture f;
        fx_init(&f);
        f.cfg.uri_redacted = "postgres://db.example/app?password=hunter2";
        fx_param(&f, names[i], "hunter2", 0);
        assert_int_equal(fx_build(&f), REIGN_EURI);
        assert_null(strstr(f.err, "hunter2"));
        assert_non_null(strstr(f.err, names[i]));
    }
}

static void test_sessions_are_named_reign_unless_the_user_names_them(void **state)
{
    (void)state;
    fixture f;
    fx_init(&f);
    assert_int_equal(fx_build(&f), REIGN_OK);
    assert_string_equal(reign_pg_conninfo_get(&f.ci, "fallback_application_name"),
                        REIGN_PG_APP_NAME);
    assert_null(reign_pg_conninfo_get(&f.ci, "application_name"));
    reign_pg_conninfo_free(&f.ci);

    fx_init(&f);
    fx_param(&f, "fallback_application_name", "mine", 0);
    assert_int_equal(fx_build(&f), REIGN_OK);
    assert_string_equal(reign_pg_conninfo_get(&f.ci, "fallback_application_name"), "mine");
    reign_pg_conninfo_free(&f.ci);
}

static void test_set_replaces_a_keyword_and_keeps_the_arrays_terminated(void **state)
{
    (void)state;
    reign_pg_conninfo ci = {0};
    char name[32];
    for (int i = 0; i < 40; i++) { /* past the first growth */
        snprintf(name, sizeof(name), "k%d", i);
        assert_int_equal(reign_pg_conninfo_set(&ci, name, "v"), REIGN_OK);
    }
    assert_int_equal(reign_pg_conninfo_set(&ci, "k7", "seven"), REIGN_OK);
    assert_int_equal(ci.n, 40);
    assert_string_equal(reign_pg_conninfo_get(&ci, "k7"), "seven");
    assert_null(ci.keywords[40]);
    assert_null(ci.values[40]);
    reign_pg_conninfo_free(&ci);
}

/* ---- table= -------------------------------------------------------------------- */

static void test_table_names_and_schema_qualified_names_are_accepted(void **state)
{
    (void)state;
    char err[256];
    size_t slen = 99;
    assert_int_equal(reign_pg_table_check("reign_leases", &slen, err, sizeof(err)), REIGN_OK);
    assert_int_equal(slen, 0);
    assert_int_equal(reign_pg_table_check("app.Leases_2", &slen, err, sizeof(err)), REIGN_OK);
    assert_int_equal(slen, 3);
    assert_int_equal(reign_pg_table_check("_x", &slen, err, sizeof(err)), REIGN_OK);
    char max[REIGN_PG_TABLE_MAX + 1];
    memset(max, 'a', REIGN_PG_TABLE_MAX);
    max[REIGN_PG_TABLE_MAX] = '\0';
    assert_int_equal(reign_pg_table_check(max, &slen, err, sizeof(err)), REIGN_OK);
}

static void test_bad_table_names_are_refused_with_euri_naming_them(void **state)
{
    (void)state;
    const char *bad[] = {"",        "1leases", "lea ses", "x\"); DROP TABLE t; --", "a.b.c",
                         ".leases", "leases.", "le-ases", "sch\xc3\xa9ma.t",        "a'b"};
    char err[256];
    size_t slen = 0;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(reign_pg_table_check(bad[i], &slen, err, sizeof(err)), REIGN_EURI);
        assert_non_null(strstr(err, "table="));
    }
    char long_name[REIGN_PG_TABLE_MAX + 2];
    memset(long_name, 'a', REIGN_PG_TABLE_MAX + 1);
    long_name[REIGN_PG_TABLE_MAX + 1] = '\0';
    assert_int_equal(reign_pg_table_check(long_name, &slen, err, sizeof(err)), REIGN_EURI);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uri_parts_become_libpq_keywords),
        cmocka_unit_test(test_an_ipv6_host_loses_its_brackets),
        cmocka_unit_test(test_absent_parts_are_left_to_libpq_and_pg_variables),
        cmocka_unit_test(test_a_path_of_two_segments_is_refused_with_euri),
        cmocka_unit_test(test_several_hosts_in_the_uri_become_libpq_host_and_port_lists),
        cmocka_unit_test(test_host_lists_are_split_and_checked),
        cmocka_unit_test(test_reign_parameters_stay_out_and_libpq_ones_pass_marked_used),
        cmocka_unit_test(test_a_query_parameter_overrides_the_authority),
        cmocka_unit_test(test_an_unknown_parameter_is_refused_with_euri_naming_it),
        cmocka_unit_test(test_a_password_in_the_query_is_refused_without_showing_it),
        cmocka_unit_test(test_sessions_are_named_reign_unless_the_user_names_them),
        cmocka_unit_test(test_set_replaces_a_keyword_and_keeps_the_arrays_terminated),
        cmocka_unit_test(test_table_names_and_schema_qualified_names_are_accepted),
        cmocka_unit_test(test_bad_table_names_are_refused_with_euri_naming_them),
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
