/* The message helpers the core offers backends (include/reign/backend.h):
 * op kind names and the printable form of bytes from outside. Every backend
 * shows resource IDs and server text through reign_printable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "reign/backend.h"

static void test_op_kinds_have_their_names(void **state)
{
    (void)state;
    assert_string_equal(reign_op_kind_name(REIGN_OP_ACQUIRE), "ACQUIRE");
    assert_string_equal(reign_op_kind_name(REIGN_OP_RENEW), "RENEW");
    assert_string_equal(reign_op_kind_name(REIGN_OP_RELEASE), "RELEASE");
    assert_string_equal(reign_op_kind_name(REIGN_OP_READ), "READ");
    assert_string_equal(reign_op_kind_name((reign_op_kind)99), "op");
}

static void test_printable_escapes_control_bytes_and_backslashes(void **state)
{
    (void)state;
    char out[32];
    assert_string_equal(reign_printable("a\x01\\b", 4, out, sizeof out), "a\\x01\\x5cb");
    assert_string_equal(reign_printable("x'); DROP\n", 10, out, sizeof out), "x'); DROP\\x0a");
    assert_string_equal(reign_printable("\xff\\", 2, out, sizeof out), "\\xff\\x5c");
    char tiny[4];
    assert_string_equal(reign_printable("", 0, tiny, sizeof tiny), "");
}

static void test_printable_cuts_whole_escapes_with_an_ellipsis(void **state)
{
    (void)state;
    char out[16];
    assert_string_equal(reign_printable("0123456789abcdefgh", 18, out, sizeof out),
                        "0123456789ab...");
    /* exactly what fits: no ellipsis */
    assert_string_equal(reign_printable("0123456789abcde", 15, out, sizeof out),
                        "0123456789abcde");
    char tiny[4];
    assert_string_equal(reign_printable("\x01\x02", 2, tiny, sizeof tiny), "...");

    char buf[32], big[100];
    memset(big, 'x', sizeof big);
    reign_printable(big, sizeof big, buf, sizeof buf);
    assert_int_equal(strlen(buf), 31);
    assert_string_equal(buf + 28, "...");
    reign_printable(big, 31, buf, sizeof buf);
    assert_int_equal(strlen(buf), 31);
    assert_null(strstr(buf, "..."));
    /* an escape is never cut in half */
    char mixed[8];
    assert_string_equal(reign_printable("ab\x01\x02", 4, mixed, sizeof mixed), "ab...");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_op_kinds_have_their_names),
        cmocka_unit_test(test_printable_escapes_control_bytes_and_backslashes),
        cmocka_unit_test(test_printable_cuts_whole_escapes_with_an_ellipsis),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
