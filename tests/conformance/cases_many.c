/* Conformance cases at scale: 1,000 resources, three instances campaigning
 * for all of them; every resource gets exactly one master, and renewals go
 * out in O(1) batches per renew period, not one per resource. */
#include "conf.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define MANY_RESOURCES 1000
#define MANY_FACTORIES 3

typedef struct many {
    reign_factory *f[MANY_FACTORIES];
    reign_election **e[MANY_FACTORIES];  /* e[factory][resource] */
    int zero, multi;                     /* last count seen, for messages */
    int first_bad;
} many;

/* Count resources with no master and with more than one. */
static void many_count(many *m)
{
    m->zero = m->multi = 0;
    m->first_bad = -1;
    for (int r = 0; r < MANY_RESOURCES; r++) {
        int n = 0;
        for (int i = 0; i < MANY_FACTORIES; i++)
            n += reign_election_is_master(m->e[i][r]);
        if (n == 0)
            m->zero++;
        if (n > 1)
            m->multi++;
        if (n != 1 && m->first_bad < 0)
            m->first_bad = r;
    }
}

static bool each_has_one_master(void *ctx)
{
    many *m = ctx;
    many_count(m);
    return m->zero == 0 && m->multi == 0;
}

/* Three factories, 1,000 elections each, all started; waits until every
 * resource has exactly one master. */
static void many_setup(many *m)
{
    static const char *const who[MANY_FACTORIES] = {"A", "B", "C"};
    memset(m, 0, sizeof *m);
    for (int i = 0; i < MANY_FACTORIES; i++) {
        reign_options o = conf_options(who[i]);
        /* Losers retry every resource they do not hold: keep that load sane.
         * A slow server may run these cases with its own URI and TTL. */
        o.retry_interval_ms = conf.retry_ms > 500 ? conf.retry_ms : 500;
        o.ttl_ms = conf.many_ttl_ms;
        m->f[i] = conf_factory_uri(conf.many_uri, &o);
        m->e[i] = conf_alloc(MANY_RESOURCES * sizeof *m->e[i]);
    }
    int64_t t0 = conf_now_ns();
    for (int r = 0; r < MANY_RESOURCES; r++) {
        char name[32];
        snprintf(name, sizeof name, "many/%04d", r);
        const char *id = conf_resource(name);
        for (int i = 0; i < MANY_FACTORIES; i++)
            m->e[i][r] = conf_election(m->f[i], id);
    }
    for (int r = 0; r < MANY_RESOURCES; r++)
        for (int i = 0; i < MANY_FACTORIES; i++)
            CONF_OK(reign_election_start(m->e[i][r]), "start resource %d in factory %d", r, i);
    int64_t timeout = 20000 + 3 * conf.many_ttl_ms;
    if (!conf_wait_until(each_has_one_master, m, timeout, 10000)) {
        print_error("conformance[%s]: after %" PRId64 " ms: %d resources without a master, %d with "
                    "more than one (first: %s)\n", conf.backend, timeout, m->zero, m->multi,
                    m->first_bad >= 0 ? reign_election_resource(m->e[0][m->first_bad]) : "-");
        fail();
    }
    print_message("conformance[%s]:   %d resources × %d instances: each has one master after "
                  "%.1f ms\n", conf.backend, MANY_RESOURCES, MANY_FACTORIES,
                  conf_ms(conf_now_ns() - t0));
}

static int many_held(const many *m, int i)
{
    int n = 0;
    for (int r = 0; r < MANY_RESOURCES; r++)
        n += reign_election_is_master(m->e[i][r]);
    return n;
}

void test_a_thousand_resources_on_three_instances_each_get_exactly_one_master(void **state)
{
    (void)state;
    CONF_NEED_CONTENTION();
    many m;
    many_setup(&m);
    int total = 0;
    for (int i = 0; i < MANY_FACTORIES; i++) {
        int held = many_held(&m, i);
        print_message("conformance[%s]:   instance %c holds %d\n", conf.backend, 'A' + i, held);
        total += held;
    }
    CONF_CHECK(total == MANY_RESOURCES, "%d masterships for %d resources", total, MANY_RESOURCES);
    /* The backend agrees with the beliefs, on a sample of resources. */
    for (int r = 0; r < MANY_RESOURCES; r += 97) {
        for (int i = 0; i < MANY_FACTORIES; i++) {
            if (!reign_election_is_master(m.e[i][r]))
                continue;
            uint64_t term = 0;
            CONF_OK(reign_election_term(m.e[i][r], &term), "term of resource %d", r);
            conf_expect_master(m.e[(i + 1) % MANY_FACTORIES][r], m.f[i], term,
                               "asked by another instance");
        }
    }
}

void test_renewals_of_a_thousand_resources_are_batched(void **state)
{
    (void)state;
    CONF_NEED_CONTENTION();
    many m;
    many_setup(&m);
    const double renew_period_ms = (double)conf.many_ttl_ms / 3.0;
    reign_stats s0[MANY_FACTORIES], s1[MANY_FACTORIES];
    int held[MANY_FACTORIES];
    for (int i = 0; i < MANY_FACTORIES; i++) {
        held[i] = many_held(&m, i);
        CONF_OK(reign_factory_stats(m.f[i], &s0[i]), "stats");
    }
    int64_t t0 = conf_now_ns();
    /* Watch a window of four renew periods; every resource must keep its one
     * master throughout (a renewal that went missing would show here). */
    int64_t until = t0 + (int64_t)(4.0 * renew_period_ms * (double)CONF_NS_PER_MS);
    while (conf_now_ns() < until) {
        many_count(&m);
        CONF_CHECK(m.zero == 0 && m.multi == 0,
                   "during the window: %d resources without a master, %d with more than one",
                   m.zero, m.multi);
        conf_poll_pause_us(10000);
    }
    for (int i = 0; i < MANY_FACTORIES; i++)
        CONF_OK(reign_factory_stats(m.f[i], &s1[i]), "stats");
    double periods = conf_ms(conf_now_ns() - t0) / renew_period_ms;
    for (int i = 0; i < MANY_FACTORIES; i++) {
        uint64_t batches = s1[i].renew_batches - s0[i].renew_batches;
        uint64_t ops = s1[i].ops_renew - s0[i].ops_renew;
        uint64_t errors = s1[i].op_errors - s0[i].op_errors;
        double per_period = (double)batches / periods;
        /* A renewal that failed (a timeout, a 5xx) is retried on its own
         * schedule, in a batch of its own at worst: those may add to the
         * regular one or two per period, and no more. */
        double allowed = 3.0 + (double)errors / periods;
        print_message("conformance[%s]:   instance %c: %d held, %" PRIu64 " renewals in %" PRIu64
                      " batches over %.2f renew periods (%.2f batches per period; %" PRIu64
                      " failed ops retried)\n",
                      conf.backend, 'A' + i, held[i], ops, batches, periods, per_period, errors);
        CONF_CHECK(per_period <= allowed,
                   "instance %c sent %" PRIu64 " renew batches in %.2f periods for %d leases: "
                   "%.2f per period, more than 3 + %" PRIu64 " failed ops retried",
                   'A' + i, batches, periods, held[i], per_period, errors);
        /* Each lease renews about once per period: at least periods - 1 times. */
        uint64_t min_ops = (uint64_t)held[i] * (uint64_t)(periods - 1.0);
        CONF_CHECK(ops >= min_ops, "instance %c renewed %" PRIu64 " times, expected at least %"
                   PRIu64 " (%d leases × %.0f periods)", 'A' + i, ops, min_ops, held[i],
                   periods - 1.0);
    }
}
