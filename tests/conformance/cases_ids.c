/* Conformance cases on resource IDs: length limits, every byte value, and
 * names that look like paths, globs, hash tags or escapes — each accepted or
 * refused clearly, and never mixed up with another resource. */
#include "conf.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Printable form of an ID for messages: escapes, at most ~60 bytes shown. */
static const char *shown(const char *id, char *buf, size_t size)
{
    size_t o = 0, len = strlen(id);
    for (size_t i = 0; i < len && o + 8 < size; i++) {
        unsigned char c = (unsigned char)id[i];
        if (i >= 60) {
            o += (size_t)snprintf(buf + o, size - o, "…(%zu bytes)", len);
            break;
        }
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
            buf[o++] = (char)c;
        else
            o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
    }
    buf[o < size ? o : size - 1] = '\0';
    return buf;
}

void test_an_empty_resource_id_is_refused_with_einval(void **state)
{
    (void)state;
    reign_factory *f = conf_factory("A");
    reign_election *e = NULL;
    CONF_EXPECT_STATUS(REIGN_EINVAL, reign_election_new(f, "", &e), "reign_election_new(\"\")");
    CONF_CHECK(reign_last_error()[0] != '\0', "no message for the empty ID");
    print_message("conformance[%s]:   refused: %s\n", conf.backend, reign_last_error());
    CONF_CHECK(e == NULL, "out was set although the call failed");
    CONF_EXPECT_STATUS(REIGN_EINVAL, reign_election_new(f, NULL, &e), "reign_election_new(NULL)");
    reign_master *m = NULL;
    CONF_EXPECT_STATUS(REIGN_EINVAL, reign_factory_current_master(f, "", &m),
                       "reign_factory_current_master(\"\")");
    CONF_CHECK(m == NULL, "out was set although the call failed");
}

static void expect_holder(reign_factory *via, const char *id, reign_factory *f);

/* "<prefix>/<tag>" padded with `fill` to exactly len bytes. */
static char *id_of_length(const char *tag, size_t len, char fill)
{
    const char *head = conf_resource(tag);
    char *id = conf_alloc(len + 1);
    memset(id, fill, len);
    size_t h = strlen(head);
    memcpy(id, head, h < len ? h : len);
    id[len] = '\0';
    return id;
}

void test_a_resource_id_of_1024_bytes_is_accepted_and_elected(void **state)
{
    (void)state;
    char *id = id_of_length("long", REIGN_RESOURCE_ID_MAX, 'x');
    char *other = id_of_length("long", REIGN_RESOURCE_ID_MAX, 'x');
    /* Same length, only the last byte differs: a backend that hashes or
     * truncates long IDs must still keep them apart. */
    other[REIGN_RESOURCE_ID_MAX - 1] = 'y';
    reign_factory *fa = conf_factory("A");
    reign_election *ea = conf_election(fa, id);
    CONF_OK(reign_election_wait(ea, conf_acquire_timeout_ms()), "wait on a %d-byte ID",
            REIGN_RESOURCE_ID_MAX);
    uint64_t term = conf_term(ea);
    conf_expect_master(ea, fa, term, "1024-byte ID");
    if (conf_has_cap("nocontention"))
        return;
    reign_factory *fb = conf_factory("B");
    reign_election *eb = conf_election(fb, other);
    CONF_OK(reign_election_wait(eb, conf_acquire_timeout_ms()),
            "B: wait on a 1024-byte ID differing only in its last byte");
    expect_holder(fb, id, fa);
    expect_holder(fa, other, fb);
    CONF_CHECK(reign_election_is_master(ea), "A lost the first long ID when B took the second");
}

void test_a_resource_id_of_1025_bytes_is_refused_with_einval(void **state)
{
    (void)state;
    char *id = id_of_length("toolong", REIGN_RESOURCE_ID_MAX + 1, 'x');
    reign_factory *f = conf_factory("A");
    reign_election *e = NULL;
    int rc = reign_election_new(f, id, &e);
    char err[1024];
    conf_copy_last_error(err, sizeof err);
    reign_master *m = NULL;
    int rc2 = reign_factory_current_master(f, id, &m);
    if (rc == REIGN_OK)
        reign_election_close(e);
    reign_master_free(m);
    CONF_EXPECT_STATUS(REIGN_EINVAL, rc, "reign_election_new with a %d-byte ID",
                       REIGN_RESOURCE_ID_MAX + 1);
    CONF_CHECK(err[0] != '\0', "no message for the over-long ID");
    print_message("conformance[%s]:   refused: %s\n", conf.backend, err);
    CONF_EXPECT_STATUS(REIGN_EINVAL, rc2, "reign_factory_current_master with a %d-byte ID",
                       REIGN_RESOURCE_ID_MAX + 1);
}

/* Acquire `id` through a fresh election of f; returns it (asserting). */
static reign_election *hold(reign_factory *f, const char *id, const char *who)
{
    char buf[128];
    reign_election *e = conf_election(f, id);
    CONF_OK(reign_election_wait(e, conf_acquire_timeout_ms()), "%s: wait on \"%s\"", who,
            shown(id, buf, sizeof buf));
    return e;
}

/* Assert that the backend names f as the holder of id, asked through `via`. */
static void expect_holder(reign_factory *via, const char *id, reign_factory *f)
{
    char buf[128];
    reign_master *m = NULL;
    CONF_OK(reign_factory_current_master(via, id, &m), "current master of \"%s\"",
            shown(id, buf, sizeof buf));
    bool same = strcmp(m->instance_id, reign_factory_instance_id(f)) == 0;
    char holder[256];
    snprintf(holder, sizeof holder, "%s", m->instance_id);
    reign_master_free(m);
    CONF_CHECK(same, "\"%s\" is held by \"%s\", expected \"%s\"", shown(id, buf, sizeof buf),
               holder, reign_factory_instance_id(f));
}

void test_a_resource_id_with_every_byte_from_01_to_ff_is_elected_as_itself(void **state)
{
    (void)state;
    const char *head = conf_resource("bytes/");
    size_t h = strlen(head);
    char id[512], shorter[512], swapped[512];
    memcpy(id, head, h);
    for (int c = 1; c <= 0xff; c++)
        id[h + (size_t)(c - 1)] = (char)c;
    id[h + 255] = '\0';
    /* Neighbours: one byte shorter; '/' and '.' swapped (path-like bytes). */
    memcpy(shorter, id, h + 254);
    shorter[h + 254] = '\0';
    memcpy(swapped, id, h + 256);
    swapped[h + 0x2e - 1] = '/';
    swapped[h + 0x2f - 1] = '.';

    reign_factory *fa = conf_factory("A");
    reign_election *ea = hold(fa, id, "A");
    uint64_t term = conf_term(ea);
    conf_expect_master(ea, fa, term, "binary ID");
    if (conf_has_cap("nocontention"))
        return;
    reign_factory *fb = conf_factory("B");
    reign_election *eb1 = hold(fb, shorter, "B");
    reign_election *eb2 = hold(fb, swapped, "B");
    expect_holder(fb, id, fa);
    expect_holder(fa, shorter, fb);
    expect_holder(fa, swapped, fb);
    CONF_CHECK(reign_election_is_master(ea) && reign_election_is_master(eb1) &&
                   reign_election_is_master(eb2),
               "a holder lost its binary ID (A=%d B1=%d B2=%d)", reign_election_is_master(ea),
               reign_election_is_master(eb1), reign_election_is_master(eb2));
}

/* Names that a backend could mistake for paths, globs, Redis hash tags,
 * percent escapes or separators. Exact names, no prefix: the point is what
 * the backend does with them. */
static const char *const odd_ids[] = {
    "../x", "*", "{a}", "a/b", "%2F", ".", "..", "/", "./x", "a\\b", "?", "{", "}",
    "[a]", "a b", "a\nb", "a:b", "#", "~", "$x", "\x7f", "\xc3\xa9", "a%00b", "-",
};
/* Their neighbours: none equals an odd ID, each is one a careless encoding
 * could map onto one. */
static const char *const neighbour_ids[] = {
    "x", "a", "{a}x", "a_b", "ab", "%2f", "%252F", "a%2Fb", "..x", "...", "//", "a/b/",
    "A", "\\", "{a", "a}", "%", "2F", "x/..", "../X", "..%2Fx", "[b]", "a  b", "a\rb", "ab?",
    "**", "a_00b", "a\\x00b", "--",
};

#define N_ODD (sizeof odd_ids / sizeof odd_ids[0])
#define N_NEIGHBOURS (sizeof neighbour_ids / sizeof neighbour_ids[0])

/* Election for id, or NULL if refused with EINVAL and a message (printed);
 * anything else fails the test. */
static reign_election *accept_or_refuse(reign_factory *f, const char *id)
{
    char buf[128];
    reign_election *e = NULL;
    int rc = reign_election_new(f, id, &e);
    if (rc == REIGN_OK) {
        conf_track_election(e);
        return e;
    }
    char err[512];
    conf_copy_last_error(err, sizeof err);
    CONF_EXPECT_STATUS(REIGN_EINVAL, rc, "reign_election_new(\"%s\")", shown(id, buf, sizeof buf));
    CONF_CHECK(err[0] != '\0', "\"%s\" refused without a message", shown(id, buf, sizeof buf));
    print_message("conformance[%s]:   \"%s\" refused: %s\n", conf.backend,
                  shown(id, buf, sizeof buf), err);
    return NULL;
}

void test_path_and_pattern_like_ids_are_accepted_or_refused_clearly(void **state)
{
    (void)state;
    char buf[128];
    reign_factory *f = conf_factory("A");
    size_t accepted = 0;
    for (size_t i = 0; i < N_ODD; i++) {
        reign_election *e = accept_or_refuse(f, odd_ids[i]);
        if (e == NULL)
            continue;
        CONF_OK(reign_election_wait(e, conf_acquire_timeout_ms()), "wait on \"%s\"",
                shown(odd_ids[i], buf, sizeof buf));
        conf_expect_master(e, f, conf_term(e), shown(odd_ids[i], buf, sizeof buf));
        accepted++;
    }
    print_message("conformance[%s]:   %zu of %zu odd IDs accepted and elected\n", conf.backend,
                  accepted, N_ODD);
}

void test_path_and_pattern_like_ids_are_never_confused_with_their_neighbours(void **state)
{
    (void)state;
    CONF_NEED_CONTENTION();
    char buf[128];
    reign_factory *fa = conf_factory("A");
    reign_factory *fb = conf_factory("B");
    reign_election *held_a[N_ODD] = {0};
    reign_election *held_b[N_NEIGHBOURS] = {0};
    /* A holds every odd ID; B then holds every neighbour, which must be free. */
    for (size_t i = 0; i < N_ODD; i++) {
        held_a[i] = accept_or_refuse(fa, odd_ids[i]);
        if (held_a[i] != NULL)
            CONF_OK(reign_election_wait(held_a[i], conf_acquire_timeout_ms()), "A: wait on \"%s\"",
                    shown(odd_ids[i], buf, sizeof buf));
    }
    for (size_t i = 0; i < N_NEIGHBOURS; i++) {
        held_b[i] = accept_or_refuse(fb, neighbour_ids[i]);
        if (held_b[i] == NULL)
            continue;
        int rc = reign_election_wait(held_b[i], conf_acquire_timeout_ms());
        if (rc != REIGN_OK) {
            reign_master *m = NULL;
            reign_election_current_master(held_b[i], &m);
            print_error("conformance[%s]: B cannot get \"%s\": held by %s\n", conf.backend,
                        shown(neighbour_ids[i], buf, sizeof buf), m ? m->instance_id : "nobody");
            reign_master_free(m);
        }
        CONF_OK(rc, "B: wait on the free neighbour \"%s\"", shown(neighbour_ids[i], buf, sizeof buf));
    }
    for (size_t i = 0; i < N_ODD; i++) {
        if (held_a[i] == NULL)
            continue;
        expect_holder(fb, odd_ids[i], fa);
        CONF_CHECK(reign_election_is_master(held_a[i]), "A lost \"%s\" while B took neighbours",
                   shown(odd_ids[i], buf, sizeof buf));
    }
    for (size_t i = 0; i < N_NEIGHBOURS; i++)
        if (held_b[i] != NULL)
            expect_holder(fa, neighbour_ids[i], fb);
}
