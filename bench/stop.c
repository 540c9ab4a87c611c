/* `reign_bench stop`: how long a graceful stop takes with N held
 * resources, as `reign shard` does it on SIGTERM. One instance holds N
 * resources through a shard; then, timed on the monotonic clock:
 *   stop:  reign_shard_stop (every lease released: the RELEASEs are sent);
 *   free:  reign_shard_free (every election closed);
 *   close: reign_factory_close (the engine thread ends).
 * N runs over 1,000, 10,000 and 100,000, up to --resources (default
 * 100,000; 10,000 with --quick). After each stop a second factory reads a
 * sample of the resources to check nobody holds them any more. */
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "reign/reign.h"

#define SAMPLE 16

static char **make_ids(size_t n, size_t size_index)
{
    char **ids = calloc(n, sizeof *ids);
    if (ids == NULL)
        bench_die("out of memory");
    for (size_t i = 0; i < n; i++) {
        char buf[48];
        snprintf(buf, sizeof buf, "stop-%zu-%zu", size_index, i);
        ids[i] = strdup(buf);
        if (ids[i] == NULL)
            bench_die("out of memory");
    }
    return ids;
}

static void free_ids(char **ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

/* Wait until the shard holds all n (ms since t0), or die after 300 s. */
static double wait_held(reign_shard *s, size_t n, int64_t t0)
{
    for (;;) {
        if (reign_tracker_count(reign_shard_tracker(s)) >= n)
            return (double)(bench_now_ns() - t0) / BENCH_NS_PER_MS;
        if (bench_now_ns() - t0 > 300 * BENCH_NS_PER_S)
            bench_die("only %zu of %zu held after 300 s", reign_tracker_count(reign_shard_tracker(s)),
                      n);
        bench_sleep_ns(10 * BENCH_NS_PER_MS);
    }
}

/* Nobody holds the sampled resources any more (a stop that forgot a
 * release would leave the next instance a TTL's wait). */
static int check_released(const bench_opts *o, char **ids, size_t n)
{
    reign_options opt = REIGN_OPTIONS_INIT;
    opt.instance_id = "bench-stop-check";
    reign_factory *f = NULL;
    if (reign_factory_open(o->uri, &opt, &f) != REIGN_OK)
        bench_die("open %s: %s", o->uri, reign_last_error());
    int held = 0;
    for (size_t k = 0; k < SAMPLE && k < n; k++) {
        reign_master *m = NULL;
        size_t i = k * (n / SAMPLE > 0 ? n / SAMPLE : 1);
        if (reign_factory_current_master(f, ids[i], &m) == REIGN_OK) {
            bench_warn("%s still held by %s after the stop", ids[i], m->instance_id);
            held++;
        }
        reign_master_free(m);
    }
    if (reign_factory_close(f) != REIGN_OK)
        bench_warn("close: %s", reign_last_error());
    return held;
}

int bench_stop(const bench_opts *o)
{
    static const size_t sizes[] = {1000, 10000, 100000};
    size_t max_n = o->resources > 0 ? (size_t)o->resources : (o->quick ? 10000 : 100000);
    long reps = o->reps > 0 ? o->reps : (o->quick ? 1 : 3);
    int64_t ttl = o->ttl_ms > 0 ? o->ttl_ms : 10000;
    int still_held = 0;

    char title[160];
    snprintf(title, sizeof title, "stop, %s: one instance, TTL %lld ms, %ld repetition(s) per size",
             o->backend, (long long)ttl, reps);
    bench_samples acquire[3] = {{0}}, stop[3] = {{0}}, free_[3] = {{0}}, total[3] = {{0}};
    size_t n_sizes = 0;
    for (size_t z = 0; z < sizeof sizes / sizeof *sizes && sizes[z] <= max_n; z++, n_sizes++) {
        size_t n = sizes[z];
        char **ids = make_ids(n, z);
        for (long r = 0; r < reps; r++) {
            reign_options opt = REIGN_OPTIONS_INIT;
            opt.instance_id = "bench-stop";
            opt.ttl_ms = ttl;
            reign_factory *f = NULL;
            if (reign_factory_open(o->uri, &opt, &f) != REIGN_OK)
                bench_die("open %s: %s", o->uri, reign_last_error());
            reign_shard_config c = REIGN_SHARD_CONFIG_INIT;
            c.runner.pre_election_pause_ms = 10;
            reign_shard *s = NULL;
            if (reign_shard_new(f, (const char *const *)ids, n, &c, &s) != REIGN_OK ||
                reign_shard_start(s) != REIGN_OK)
                bench_die("shard: %s", reign_last_error());
            int64_t t0 = bench_now_ns();
            bench_samples_add(&acquire[z], wait_held(s, n, t0));

            int64_t t1 = bench_now_ns();
            if (reign_shard_stop(s) != REIGN_OK)
                bench_die("stop: %s", reign_last_error());
            int64_t t2 = bench_now_ns();
            reign_shard_free(s);
            int64_t t3 = bench_now_ns();
            if (reign_factory_close(f) != REIGN_OK)
                bench_die("close: %s", reign_last_error());
            int64_t t4 = bench_now_ns();
            bench_samples_add(&stop[z], (double)(t2 - t1) / BENCH_NS_PER_MS);
            bench_samples_add(&free_[z], (double)(t3 - t2) / BENCH_NS_PER_MS);
            bench_samples_add(&total[z], (double)(t4 - t1) / BENCH_NS_PER_MS);
            still_held += check_released(o, ids, n);
        }
        free_ids(ids, n);
    }

    bench_table_header(title);
    for (size_t z = 0; z < n_sizes; z++) {
        char label[64];
        snprintf(label, sizeof label, "%zu: acquire all", sizes[z]);
        bench_table_row(label, &acquire[z], "ms");
        snprintf(label, sizeof label, "%zu: reign_shard_stop", sizes[z]);
        bench_table_row(label, &stop[z], "ms");
        snprintf(label, sizeof label, "%zu: reign_shard_free", sizes[z]);
        bench_table_row(label, &free_[z], "ms");
        snprintf(label, sizeof label, "%zu: stop + free + close", sizes[z]);
        bench_table_row(label, &total[z], "ms");
        char key[64];
        snprintf(key, sizeof key, "stop_%zu_ms", sizes[z]);
        bench_result(o->backend, key, bench_pct(&total[z], 50), "ms", total[z].n, "p50");
    }
    printf("sampled resources still held after a stop: %d\n", still_held);
    for (size_t z = 0; z < n_sizes; z++) {
        bench_samples_free(&acquire[z]);
        bench_samples_free(&stop[z]);
        bench_samples_free(&free_[z]);
        bench_samples_free(&total[z]);
    }
    return still_held == 0 ? 0 : 1;
}
