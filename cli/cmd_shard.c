/* `reign shard`: take part in sharing a set of resources among instances
 * (one runner per resource in the shard manager) and print one line per
 * resource gained or lost, until SIGINT or SIGTERM. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

#define SHARD_MAX_COUNT 1000000    /* --count bound: names and runners are per resource */
#define SHARD_MAX_LISTED 100       /* held resources shown on one line */

enum {
    OPT_THREADS = CLI_OPT_FIRST_COMMAND_OPTION,
    OPT_CHECK_INTERVAL,
    OPT_PAUSE,
    OPT_HOLD,
    OPT_RESIGN_ODDS,
    OPT_COUNT,
    OPT_NO_BALANCE,
    OPT_MAX_MOVES,
    OPT_PROBE_INTERVAL,
    OPT_REFRESH_INTERVAL,
    OPT_STABILIZATION,
};

static const char usage_text[] =
    "Usage: reign shard [OPTIONS] (--count N | RESOURCE...)\n"
    "\n"
    "Share resources among the instances running this command: each resource\n"
    "gets a runner that campaigns for it, holds it, and campaigns again when\n"
    "it is lost. By default the instances see each other (membership) and\n"
    "split the resources fairly: each campaigns only for its share, weighted\n"
    "by a \"weight=N\" token in --metadata. One line per change, on stdout,\n"
    "flushed at once:\n"
    "  <ISO time> gained|lost <resource> term=<N> held=<count> [<held list>]\n"
    "The held list is sorted (r2 before r10) and shows at most %d names. Runs\n"
    "until SIGINT or SIGTERM, then resigns everything and exits 0.\n"
    "\n"
    "Options:\n"
    "  --count N           the resources r0 .. r(N-1)\n"
    "  --uri URI           backend (default: $REIGN_URI, else %s)\n"
    "  --instance ID       instance ID (default: host:pid:random)\n"
    "  --metadata TEXT     shown to others by `reign status`\n"
    "  --ttl MS            lease TTL in milliseconds (default: the URI's ttl= or 10000)\n"
    "  --threads N         threads stepping the runners (default: 2)\n"
    "  --pause MS          random pre-election pause below MS (>= 10; default 10)\n"
    "  --check-interval MS mastership check of each runner (>= 50; default 100)\n"
    "  --hold MS           hold at least MS before resigning (>= 10000; default 10000)\n"
    "  --resign-odds N     then resign with chance 1/N per check (0 = never; default 0)\n"
    "  --no-balance        campaign for every resource (no fair share; Trillian's way)\n"
    "  --max-moves N       balancing: surplus resignations per check (default 8)\n"
    "  --probe-interval MS balancing: probe resources not ours this often (default 3 x ttl)\n"
    "  --refresh-interval MS  membership: read the members this often\n"
    "                      (default min(ttl/3, 1000))\n"
    "  --stabilization MS  membership: count a new member after MS (default 2 x ttl)\n"
    "  -h, --help          this help\n"
    "\n"
    "Exit status: 0 after SIGINT/SIGTERM; 1 on errors; 2 on usage errors.\n"
    "\n"
    "Examples:\n"
    "  reign shard --instance a --count 12          # then start b and c likewise\n"
    "  reign shard --instance big --metadata weight=2 --count 12\n"
    "  reign shard --uri redis://127.0.0.1:6379/0 --resign-odds 100 jobs/1 jobs/2 jobs/3\n";

typedef struct shard_args {
    cli_common common;
    reign_shard_config shard;  /* balancing and membership settings */
    reign_runner_config runner;
    int64_t threads;
    int64_t count;  /* 0: resources listed */
    char **listed;
    size_t n_listed;
} shard_args;

/* What this instance holds, for the lines printed. The shard calls
 * on_change from several threads; `mu` guards `held`/`n_held` and is kept
 * while the line is printed so that lines appear in the order of the
 * changes they report. */
typedef struct shard_view {
    pthread_mutex_t mu;
    char **held;  /* sorted with strverscmp, strdup'd */
    size_t n_held;
    size_t cap;
    bool out_of_memory;
} shard_view;

/* Index where `id` is or would be inserted. */
static size_t view_find(const shard_view *v, const char *id, bool *found)
{
    size_t lo = 0, hi = v->n_held;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strverscmp(v->held[mid], id);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static void view_update(shard_view *v, const char *id, bool is_master)
{
    bool found;
    size_t i = view_find(v, id, &found);

    if (is_master && !found) {
        if (v->n_held == v->cap) {
            size_t cap = v->cap == 0 ? 16 : v->cap * 2;
            char **held = realloc(v->held, cap * sizeof *held);
            if (held == NULL) {
                v->out_of_memory = true;
                return;
            }
            v->held = held;
            v->cap = cap;
        }
        char *copy = strdup(id);
        if (copy == NULL) {
            v->out_of_memory = true;
            return;
        }
        memmove(&v->held[i + 1], &v->held[i], (v->n_held - i) * sizeof *v->held);
        v->held[i] = copy;
        v->n_held++;
    } else if (!is_master && found) {
        free(v->held[i]);
        memmove(&v->held[i], &v->held[i + 1], (v->n_held - i - 1) * sizeof *v->held);
        v->n_held--;
    }
}

static void put_iso_now(FILE *f)
{
    struct timespec ts;
    struct tm tm;
    char buf[32];

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(f, "%s.%03ldZ", buf, ts.tv_nsec / 1000000);
}

static void on_change(const char *resource_id, bool is_master, uint64_t term, void *payload)
{
    shard_view *v = payload;

    pthread_mutex_lock(&v->mu);
    view_update(v, resource_id, is_master);
    put_iso_now(stdout);
    fputs(is_master ? " gained " : " lost ", stdout);
    cli_put_text(stdout, resource_id);
    printf(" term=%" PRIu64 " held=%zu [", term, v->n_held);
    for (size_t i = 0; i < v->n_held && i < SHARD_MAX_LISTED; i++) {
        if (i > 0)
            fputc(' ', stdout);
        cli_put_text(stdout, v->held[i]);
    }
    if (v->n_held > SHARD_MAX_LISTED)
        printf(" ...+%zu", v->n_held - SHARD_MAX_LISTED);
    fputs(v->out_of_memory ? "] (list incomplete: out of memory)\n" : "]\n", stdout);
    fflush(stdout);
    pthread_mutex_unlock(&v->mu);
}

static int parse_args(int argc, char **argv, shard_args *a)
{
    static const struct option longopts[] = {
        CLI_LONG_HELP, CLI_LONG_URI, CLI_LONG_TTL, CLI_LONG_INSTANCE, CLI_LONG_METADATA,
        {"threads", required_argument, NULL, OPT_THREADS},
        {"check-interval", required_argument, NULL, OPT_CHECK_INTERVAL},
        {"pause", required_argument, NULL, OPT_PAUSE},
        {"hold", required_argument, NULL, OPT_HOLD},
        {"resign-odds", required_argument, NULL, OPT_RESIGN_ODDS},
        {"count", required_argument, NULL, OPT_COUNT},
        {"no-balance", no_argument, NULL, OPT_NO_BALANCE},
        {"max-moves", required_argument, NULL, OPT_MAX_MOVES},
        {"probe-interval", required_argument, NULL, OPT_PROBE_INTERVAL},
        {"refresh-interval", required_argument, NULL, OPT_REFRESH_INTERVAL},
        {"stabilization", required_argument, NULL, OPT_STABILIZATION},
        {NULL, 0, NULL, 0},
    };
    int opt, rc = 0;
    int64_t moves = 0;

    a->shard = (reign_shard_config)REIGN_SHARD_CONFIG_INIT;
    /* Demo-friendly defaults, all at or above the runner's minimums. */
    a->runner = (reign_runner_config)REIGN_RUNNER_CONFIG_INIT;
    a->runner.pre_election_pause_ms = 10;
    a->runner.master_check_interval_ms = 100;
    a->runner.master_hold_interval_ms = 10000;
    a->runner.resign_odds = 0;
    a->threads = 2;
    cli_getopt_reset();
    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        int c = cli_common_option("shard", opt, optarg, &a->common);
        if (c == 1)
            continue;
        if (c != 0)
            return c;
        switch (opt) {
        case CLI_OPT_HELP:
            printf(usage_text, SHARD_MAX_LISTED, cli_default_uri());
            return -1;
        case OPT_THREADS:
            rc = cli_parse_int("shard", "--threads", optarg, 1, &a->threads);
            if (rc == 0 && a->threads > 1024)
                rc = cli_usage_error("shard", "--threads: %s is above the maximum 1024", optarg);
            break;
        case OPT_CHECK_INTERVAL:
            rc = cli_parse_int("shard", "--check-interval", optarg,
                               REIGN_RUNNER_MIN_MASTER_CHECK_INTERVAL_MS,
                               &a->runner.master_check_interval_ms);
            break;
        case OPT_PAUSE:
            rc = cli_parse_int("shard", "--pause", optarg, REIGN_RUNNER_MIN_PRE_ELECTION_PAUSE_MS,
                               &a->runner.pre_election_pause_ms);
            break;
        case OPT_HOLD:
            rc = cli_parse_int("shard", "--hold", optarg,
                               REIGN_RUNNER_MIN_MASTER_HOLD_INTERVAL_MS,
                               &a->runner.master_hold_interval_ms);
            break;
        case OPT_RESIGN_ODDS:
            rc = cli_parse_int("shard", "--resign-odds", optarg, 0, &a->runner.resign_odds);
            break;
        case OPT_COUNT:
            rc = cli_parse_int("shard", "--count", optarg, 1, &a->count);
            if (rc == 0 && a->count > SHARD_MAX_COUNT)
                rc = cli_usage_error("shard", "--count: %s is above the maximum %d", optarg,
                                     SHARD_MAX_COUNT);
            break;
        case OPT_NO_BALANCE:
            a->shard.balance = false;
            break;
        case OPT_MAX_MOVES:
            rc = cli_parse_int("shard", "--max-moves", optarg, 1, &moves);
            if (rc == 0 && moves > 1000000)
                rc = cli_usage_error("shard", "--max-moves: %s is above the maximum 1000000",
                                     optarg);
            a->shard.max_moves_per_check = (unsigned)moves;
            break;
        case OPT_PROBE_INTERVAL:
            rc = cli_parse_int("shard", "--probe-interval", optarg, 1,
                               &a->shard.probe_interval_ms);
            break;
        case OPT_REFRESH_INTERVAL:
            rc = cli_parse_int("shard", "--refresh-interval", optarg, 1,
                               &a->shard.membership.refresh_interval_ms);
            break;
        case OPT_STABILIZATION:
            rc = cli_parse_int("shard", "--stabilization", optarg, 1,
                               &a->shard.membership.stabilization_ms);
            break;
        default:
            return cli_bad_option("shard", opt, argv);
        }
        if (rc != 0)
            return rc;
    }
    a->listed = &argv[optind];
    a->n_listed = (size_t)(argc - optind);
    if (a->count > 0 && a->n_listed > 0)
        return cli_usage_error("shard", "give either --count or RESOURCEs, not both");
    if (a->count == 0 && a->n_listed == 0)
        return cli_usage_error("shard", "missing --count N or RESOURCEs");
    for (size_t i = 0; i < a->n_listed; i++)
        if (a->listed[i][0] == '\0')
            return cli_usage_error("shard", "RESOURCE %zu is empty", i + 1);
    return 0;
}

/* The IDs r0 .. r(count-1), or NULL if out of memory. Free with
 * free_generated. */
static char **generate_ids(int64_t count)
{
    char **ids = calloc((size_t)count, sizeof *ids);
    if (ids == NULL)
        return NULL;
    for (int64_t i = 0; i < count; i++) {
        char name[24];
        snprintf(name, sizeof name, "r%" PRId64, i);
        ids[i] = strdup(name);
        if (ids[i] == NULL) {
            for (int64_t j = 0; j < i; j++)
                free(ids[j]);
            free(ids);
            return NULL;
        }
    }
    return ids;
}

static void free_generated(char **ids, int64_t count)
{
    if (ids == NULL)
        return;
    for (int64_t i = 0; i < count; i++)
        free(ids[i]);
    free(ids);
}

/* Block until SIGINT, SIGTERM or SIGHUP (blocked in every thread). */
static int wait_for_stop(const sigset_t *set)
{
    int sig = 0;
    for (;;) {
        int err = sigwait(set, &sig);
        if (err == 0)
            return sig;
        if (err != EINTR) {
            cli_error("sigwait: %s", strerror(err));
            return -1;
        }
    }
}

int cli_cmd_shard(int argc, char **argv)
{
    shard_args a = {0};
    shard_view view = {.mu = PTHREAD_MUTEX_INITIALIZER};
    sigset_t stop_set;
    reign_factory *factory = NULL;
    reign_shard *shard = NULL;
    char **generated = NULL;
    int rc = parse_args(argc, argv, &a);

    if (rc < 0)
        return CLI_EXIT_OK;  /* --help */
    if (rc != 0)
        return rc;
    if (reign_runner_config_check(&a.runner) != REIGN_OK)
        return cli_usage_error("shard", "%s", reign_last_error());

    /* Blocked before any reign thread exists, so all of them inherit the
     * mask and only sigwait below receives these signals. */
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGINT);
    sigaddset(&stop_set, SIGTERM);
    sigaddset(&stop_set, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &stop_set, NULL) != 0) {
        cli_error("blocking signals: %s", strerror(errno));
        return CLI_EXIT_FAIL;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);

    const char *const *ids = (const char *const *)a.listed;
    size_t n_ids = a.n_listed;
    if (a.count > 0) {
        generated = generate_ids(a.count);
        if (generated == NULL) {
            cli_error("out of memory for %" PRId64 " resource IDs", a.count);
            rc = CLI_EXIT_FAIL;
            goto out;
        }
        ids = (const char *const *)generated;
        n_ids = (size_t)a.count;
    }

    if ((rc = cli_open_factory(&a.common, &factory)) != CLI_EXIT_OK)
        goto out;
    reign_shard_config config = a.shard;
    config.runner = a.runner;
    config.threads = (unsigned)a.threads;
    config.on_change = on_change;
    config.payload = &view;
    if (reign_shard_new(factory, ids, n_ids, &config, &shard) != REIGN_OK ||
        reign_shard_start(shard) != REIGN_OK) {
        cli_error("%s", reign_last_error());
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    fprintf(stderr,
            "reign: shard of %zu resources as %s on %s (ttl %" PRId64 " ms, pause %" PRId64
            " ms, check %" PRId64 " ms, hold %" PRId64 " ms, resign odds %" PRId64
            ", %s); SIGINT or SIGTERM stops\n",
            n_ids, reign_factory_instance_id(factory), reign_factory_uri(factory),
            reign_factory_ttl_ms(factory), a.runner.pre_election_pause_ms,
            a.runner.master_check_interval_ms, a.runner.master_hold_interval_ms,
            a.runner.resign_odds, config.balance ? "balanced" : "not balanced");

    rc = wait_for_stop(&stop_set) < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
    if (reign_shard_stop(shard) != REIGN_OK) {
        cli_error("stopping the shard: %s", reign_last_error());
        rc = CLI_EXIT_FAIL;
    }

out:
    reign_shard_free(shard);
    if (factory != NULL && reign_factory_close(factory) != REIGN_OK) {
        cli_error("closing the factory: %s", reign_last_error());
        rc = CLI_EXIT_FAIL;
    }
    free_generated(generated, a.count);
    for (size_t i = 0; i < view.n_held; i++)
        free(view.held[i]);
    free(view.held);
    return rc;
}
