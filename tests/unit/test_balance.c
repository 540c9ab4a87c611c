/* Fair-share assignment (rendezvous hashing with bounded loads): pure, no
 * threads, no clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "balance.h"
#include "members.h"

#define R 300

static uint64_t hashes[R];

static int setup(void **state)
{
    (void)state;
    for (int i = 0; i < R; i++) {
        char id[16];
        snprintf(id, sizeof id, "r%d", i);
        hashes[i] = reign_balance_hash(id);
    }
    return 0;
}

static void count(const size_t *owner, size_t n_members, size_t *counts)
{
    memset(counts, 0, n_members * sizeof *counts);
    for (int i = 0; i < R; i++) {
        assert_true(owner[i] < n_members);
        counts[owner[i]]++;
    }
}

static void test_three_members_get_exactly_a_third_each(void **state)
{
    (void)state;
    balance_member m[3] = {{"a", 1}, {"b", 1}, {"c", 1}};
    size_t owner[R], counts[3];
    assert_int_equal(reign_balance_assign(hashes, R, NULL, m, 3, owner), 0);
    count(owner, 3, counts);
    for (int i = 0; i < 3; i++)
        assert_int_equal(counts[i], 100);
}

static void test_a_fourth_member_takes_a_quarter_and_few_others_move(void **state)
{
    (void)state;
    balance_member m3[3] = {{"a", 1}, {"b", 1}, {"c", 1}};
    balance_member m4[4] = {{"a", 1}, {"b", 1}, {"c", 1}, {"d", 1}};
    size_t before[R], after[R], counts[4];
    assert_int_equal(reign_balance_assign(hashes, R, NULL, m3, 3, before), 0);
    assert_int_equal(reign_balance_assign(hashes, R, NULL, m4, 4, after), 0);
    count(after, 4, counts);
    for (int i = 0; i < 4; i++)
        assert_int_equal(counts[i], 75);
    int moved = 0, moved_elsewhere = 0;
    for (int i = 0; i < R; i++) {
        if (before[i] != after[i]) {
            moved++;
            moved_elsewhere += after[i] != 3;
        }
    }
    /* 75 must move to d; the capacity bound may shuffle a few more. */
    if (moved < 75 || moved > 75 + 30)
        fail_msg("%d of %d resources moved (%d not to the new member)", moved, R, moved_elsewhere);
}

static void test_the_order_members_are_given_in_does_not_matter(void **state)
{
    (void)state;
    balance_member x[3] = {{"a", 1}, {"b", 1}, {"c", 1}};
    balance_member y[3] = {{"c", 1}, {"a", 1}, {"b", 1}};
    size_t ox[R], oy[R];
    assert_int_equal(reign_balance_assign(hashes, R, NULL, x, 3, ox), 0);
    assert_int_equal(reign_balance_assign(hashes, R, NULL, y, 3, oy), 0);
    for (int i = 0; i < R; i++)
        assert_string_equal(x[ox[i]].id, y[oy[i]].id);
}

static void test_weights_share_in_proportion(void **state)
{
    (void)state;
    balance_member m[3] = {{"big", 2}, {"b", 1}, {"c", 1}};
    size_t owner[R], counts[3];
    assert_int_equal(reign_balance_assign(hashes, R, NULL, m, 3, owner), 0);
    count(owner, 3, counts);
    assert_int_equal(counts[0], 150);
    assert_int_equal(counts[1], 75);
    assert_int_equal(counts[2], 75);
    assert_int_equal(reign_balance_capacity(R, m, 3, 0), 150);
}

static void test_preferred_live_members_come_first(void **state)
{
    (void)state;
    balance_member m[3] = {{"a", 1}, {"b", 1}, {"c", 1}};
    balance_preference prefs[R];
    memset(prefs, 0, sizeof prefs);
    const char *const gone_then_c[] = {"zz", "c"};
    for (int i = 0; i < 10; i++)
        prefs[i] = (balance_preference){gone_then_c, 2};
    size_t owner[R], counts[3];
    assert_int_equal(reign_balance_assign(hashes, R, prefs, m, 3, owner), 0);
    for (int i = 0; i < 10; i++)
        assert_string_equal(m[owner[i]].id, "c");
    count(owner, 3, counts);
    for (int i = 0; i < 3; i++)
        assert_int_equal(counts[i], 100);
}

static void test_uneven_shares_differ_by_at_most_one_and_add_up(void **state)
{
    (void)state;
    balance_member m[3] = {{"a", 1}, {"b", 1}, {"c", 1}};
    size_t owner[R], counts[3];
    /* 299 resources over 3: 100, 100, 99 (the remainder by ID order). */
    assert_int_equal(reign_balance_assign(hashes, 299, NULL, m, 3, owner), 0);
    memset(counts, 0, sizeof counts);
    for (int i = 0; i < 299; i++)
        counts[owner[i]]++;
    assert_int_equal(counts[0], 100);
    assert_int_equal(counts[1], 100);
    assert_int_equal(counts[2], 99);
    assert_int_equal(reign_balance_capacity(299, m, 3, 2), 99);
    balance_member w[2] = {{"x", 2}, {"y", 1}};
    assert_int_equal(reign_balance_capacity(10, w, 2, 0) + reign_balance_capacity(10, w, 2, 1), 10);
    assert_int_equal(reign_balance_capacity(10, w, 2, 0), 7);
}

static void test_no_members_means_no_owner(void **state)
{
    (void)state;
    size_t owner[R];
    assert_int_equal(reign_balance_assign(hashes, R, NULL, NULL, 0, owner), 0);
    for (int i = 0; i < R; i++)
        assert_true(owner[i] == BALANCE_NONE);
}

static void test_member_weight_comes_from_a_metadata_token(void **state)
{
    (void)state;
    assert_int_equal(reign_member_weight("addr=10.0.0.1:80 weight=3"), 3);
    assert_int_equal(reign_member_weight("weight=2"), 2);
    assert_int_equal(reign_member_weight(""), 1);
    assert_int_equal(reign_member_weight("weight=0"), 0); /* drained: takes nothing */
    assert_int_equal(reign_member_weight("weight=abc"), 1); /* another's bad token */
    assert_int_equal(reign_member_weight("myweight=5"), 1);
    assert_int_equal(reign_member_weight("weight=7x"), 1);
}

static void test_a_bad_weight_token_is_an_error_naming_it(void **state)
{
    (void)state;
    uint32_t w = 99;
    assert_int_equal(reign_member_weight_parse("a=1 weight=12", &w), REIGN_OK);
    assert_int_equal(w, 12);
    assert_int_equal(reign_member_weight_parse("nothing here", &w), REIGN_OK);
    assert_int_equal(w, 1);
    const char *bad[] = {"weight=", "weight=-1", "weight=1.5", "weight=7x", "weight=1000001",
                         "x weight=abc y"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(reign_member_weight_parse(bad[i], &w), REIGN_EINVAL);
        assert_non_null(strstr(reign_last_error(), "weight="));
        assert_non_null(strstr(reign_last_error(), "0..1000000"));
    }
}

static void test_weight_zero_members_get_nothing_unless_all_are_zero(void **state)
{
    (void)state;
    uint64_t hs[R];
    size_t owner[R];
    for (int i = 0; i < R; i++) {
        char id[16];
        snprintf(id, sizeof id, "r%d", i);
        hs[i] = reign_balance_hash(id);
    }
    balance_member m[3] = {{"a", 1}, {"b", 0}, {"c", 1}};
    assert_int_equal(reign_balance_assign(hs, R, NULL, m, 3, owner), 0);
    size_t count[3] = {0};
    for (int i = 0; i < R; i++)
        count[owner[i]]++;
    assert_int_equal(count[0], 150);
    assert_int_equal(count[1], 0);
    assert_int_equal(count[2], 150);
    assert_int_equal(reign_balance_capacity(R, m, 3, 1), 0);

    balance_member z[3] = {{"a", 0}, {"b", 0}, {"c", 0}};
    assert_int_equal(reign_balance_assign(hs, R, NULL, z, 3, owner), 0);
    size_t zc[3] = {0};
    for (int i = 0; i < R; i++)
        zc[owner[i]]++;
    assert_int_equal(zc[0], 100);
    assert_int_equal(zc[1], 100);
    assert_int_equal(zc[2], 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_three_members_get_exactly_a_third_each),
        cmocka_unit_test(test_a_bad_weight_token_is_an_error_naming_it),
        cmocka_unit_test(test_weight_zero_members_get_nothing_unless_all_are_zero),
        cmocka_unit_test(test_a_fourth_member_takes_a_quarter_and_few_others_move),
        cmocka_unit_test(test_the_order_members_are_given_in_does_not_matter),
        cmocka_unit_test(test_weights_share_in_proportion),
        cmocka_unit_test(test_preferred_live_members_come_first),
        cmocka_unit_test(test_uneven_shares_differ_by_at_most_one_and_add_up),
        cmocka_unit_test(test_no_members_means_no_owner),
        cmocka_unit_test(test_member_weight_comes_from_a_metadata_token),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
