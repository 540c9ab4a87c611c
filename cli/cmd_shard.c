/* `reign shard`: take part in sharing a set of resources among instances
 * (one runner per resource in the shard manager) and print one line per
 * resource gained or lost, until SIGINT or SIGTERM; with --listen, serve
 * /metrics, /healthz and /status over HTTP (http.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define SHARD_MAX_COUNT 1000000    /* --count bound: names and runners are per resource */
#define SHARD_MAX_LISTED 100       /* held resources shown on one line */
#define SHARD_MAX_MS INT64_C(86400000) /* time options: at most a day */

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
    OPT_SLOTS,
    OPT_LISTEN,
    OPT_JSON,
    OPT_GRACE,
    OPT_RESTART_DELAY,
    OPT_DRAIN_TIMEOUT,
    OPT_RESOURCES_FILE,
    OPT_ON_EXIT,
};

static const char usage_text[] =
    "Usage: reign shard [OPTIONS] (--count N | RESOURCE... | --resources-file FILE)\n"
    "                   [-- CMD [ARGS...]]\n"
    "\n"
    "Share resources among the instances running this command: each resource\n"
    "gets a runner that campaigns for it, holds it, and campaigns again when\n"
    "it is lost. By default the instances see each other (membership) and\n"
    "split the resources fairly: each campaigns only for its share, weighted\n"
    "by a \"weight=N\" token in --metadata. One line per change, on stdout,\n"
    "flushed at once:\n"
    "  <ISO time> gained|lost <resource> term=<N> held=<count>\n"
    "      fair=<share>/<members>members [<held list>]\n"
    "(on one line). fair is this instance's fair share of the resources among\n"
    "the members it counts (without balancing: all of them, 1 member). The\n"
    "held list is sorted (r2 before r10) and shows at most %d names. Runs\n"
    "until SIGINT or SIGTERM, then revokes and releases everything and dies\n"
    "of that signal. A voluntary move is revoked first: the \"lost\" line is\n"
    "printed while the lease is still held, and it is released once printed.\n"
    "\n"
    "With --listen ADDRESS:PORT, serve HTTP on that address only:\n"
    "  /metrics  Prometheus text format (reign_masterships, reign_term, ...)\n"
    "  /healthz  200 \"ok\" while the backend answers and renewals are on\n"
    "            time, else 503 and the reason\n"
    "  /status   JSON: instance, URI (password hidden), held resources and\n"
    "            their terms, balance, members\n"
    "\n"
    "Options:\n"
    "  --count N           the resources r0 .. r(N-1)\n"
    "  --uri URI           backend (default: $REIGN_URI, else %s)\n"
    "  --instance ID       instance ID (default: host:pid:random)\n"
    "  --metadata TEXT     shown to others by `reign status`\n"
    "  --ttl DUR           lease TTL, 20ms..24h (default: the URI's ttl= or 10s)\n"
    "  --threads N         threads stepping the runners (default: 2)\n"
    "  --pause DUR         random pre-election pause below DUR (>= 10ms; default 10ms)\n"
    "  --check-interval DUR mastership check of each runner (>= 50ms; default 100ms)\n"
    "  --hold DUR          hold at least DUR before moving a resource (>= 10s; default 10s)\n"
    "  --resign-odds N     then resign with chance 1/N per check (0 = never; default 0)\n"
    "  --no-balance        campaign for every resource (no fair share; Trillian's way)\n"
    "  --max-moves N       balancing: surplus resignations per check (default 8)\n"
    "  --probe-interval DUR balancing: probe resources not ours this often (default 3 x ttl)\n"
    "  --refresh-interval DUR  membership: read the members this often\n"
    "                      (default min(ttl/3, 1000))\n"
    "  --stabilization DUR membership: count a new member after DUR (default 2 x ttl)\n"
    "  --slots N           membership: the most instances at once, 1..4096 (default\n"
    "                      1024; give every instance the same N); one more stands by\n"
    "  --listen ADDR:PORT  serve /metrics, /healthz, /status there (e.g.\n"
    "                      127.0.0.1:9100; port 0 = any free port, printed on stderr)\n"
    "  --json              one JSON object per event and line (gained, revoking,\n"
    "                      lost, started, exited) instead of the text lines\n"
    "  --resources-file FILE  the resources, one a line ('#' comments); reread on\n"
    "                      SIGHUP and applied as a difference\n"
    "  --drain-timeout DUR on SIGINT/SIGTERM, hand resources over one by one for\n"
    "                      at most DUR before stopping (default 30s; 0: no drain)\n"
    "With -- CMD: while master of a resource, run CMD for it (\"{}\" in ARGS is\n"
    "the ID) with REIGN_RESOURCE, REIGN_TERM (fencing token), REIGN_INSTANCE.\n"
    "  --grace DUR         a stopped CMD gets SIGTERM, SIGKILL after DUR (default 5s)\n"
    "  --on-exit restart|release  CMD exited by itself: run it again after the\n"
    "                      delay, same term, while still master (restart, the\n"
    "                      default), or give the resource away and take part\n"
    "                      again after the delay (release)\n"
    "  --restart-delay DUR that delay (default 1s)\n"
    "A guard process per CMD SIGKILLs CMD's process group at the local lease\n"
    "deadline if reign stops renewing (paused, stalled), and when reign dies.\n"
    "  -h, --help          this help\n"
    "\n"
    "DUR is a duration: 500ms, 5s, 2m, 1h; a bare number is milliseconds.\n"
    "\n"
    "Exit status: killed by SIGINT/SIGTERM after cleanup; 1 on errors; 2 on\n"
    "usage errors (with the valid range).\n"
    "\n"
    "Examples:\n"
    "  reign shard --instance a --count 12          # then start b and c likewise\n"
    "  reign shard --instance big --metadata weight=2 --count 12\n"
    "  reign shard --uri redis://127.0.0.1:6379/0 --resign-odds 100 jobs/1 jobs/2 jobs/3\n"
    "  reign shard --count 12 --listen 127.0.0.1:9100 &\n"
    "  curl -s 127.0.0.1:9100/metrics | grep '^reign_masterships'\n";

typedef struct shard_args {
    cli_common common;
    reign_shard_config shard;  /* balancing and membership settings */
    reign_runner_config runner;
    int64_t threads;
    int64_t count;  /* 0: resources listed */
    char **listed;
    size_t n_listed;
    bool listen;
    cli_listen_addr listen_addr;
    bool json;
    int64_t grace_ms;
    int64_t restart_delay_ms;
    int64_t drain_timeout_ms;
    const char *resources_file;
    cli_on_exit on_exit;
    char **cmd;     /* after "--": NULL if none */
} shard_args;

typedef struct held_entry {
    char *id;  /* strdup'd */
    uint64_t term;
} held_entry;

/* What this instance holds, for the lines printed and for /status. The
 * shard calls on_change from several threads, the HTTP server reads from
 * its own; `mu` guards `held`/`n_held`/`cap`/`out_of_memory` and is kept
 * while a line is printed so that lines appear in the order of the changes
 * they report. `shard` and `factory` are set before the shard starts and
 * the HTTP server runs, and not changed after. */
typedef struct shard_view {
    pthread_mutex_t mu;
    held_entry *held;  /* sorted by id with strverscmp */
    size_t n_held;
    size_t cap;
    bool out_of_memory;
    reign_shard *shard;
    reign_factory *factory;
    bool balance;
    bool quiet;               /* events printed by the supervisor instead */
    cli_supervisor *supervisor; /* NULL: the text lines of on_change only */
} shard_view;

/* Index where `id` is or would be inserted. */
static size_t view_find(const shard_view *v, const char *id, bool *found)
{
    size_t lo = 0, hi = v->n_held;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strverscmp(v->held[mid].id, id);
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

static void view_update(shard_view *v, const char *id, bool is_master, uint64_t term)
{
    bool found;
    size_t i = view_find(v, id, &found);

    if (is_master && !found) {
        if (v->n_held == v->cap) {
            size_t cap = v->cap == 0 ? 16 : v->cap * 2;
            held_entry *held = realloc(v->held, cap * sizeof *held);
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
        v->held[i] = (held_entry){copy, term};
        v->n_held++;
    } else if (is_master) {
        v->held[i].term = term;  /* won again: a new term */
    } else if (found) {
        free(v->held[i].id);
        memmove(&v->held[i], &v->held[i + 1], (v->n_held - i - 1) * sizeof *v->held);
        v->n_held--;
    }
}

static void on_change(const char *resource_id, bool is_master, uint64_t term, void *payload)
{
    shard_view *v = payload;
    reign_shard_balance b = {0};

    /* Outside our lock: the balancer has its own, and fair share and
     * members do not depend on this change. */
    if (reign_shard_balance_info(v->shard, &b) != REIGN_OK)
        b = (reign_shard_balance){0};
    pthread_mutex_lock(&v->mu);
    view_update(v, resource_id, is_master, term);
    if (v->quiet) {
        pthread_mutex_unlock(&v->mu);
        return;
    }
    cli_put_iso_now(stdout);
    fputs(is_master ? " gained " : " lost ", stdout);
    cli_put_text(stdout, resource_id);
    printf(" term=%" PRIu64 " held=%zu fair=%zu/%zumembers [", term, v->n_held, b.fair_share,
           b.members);
    for (size_t i = 0; i < v->n_held && i < SHARD_MAX_LISTED; i++) {
        if (i > 0)
            fputc(' ', stdout);
        cli_put_text(stdout, v->held[i].id);
    }
    if (v->n_held > SHARD_MAX_LISTED)
        printf(" ...+%zu", v->n_held - SHARD_MAX_LISTED);
    fputs(v->out_of_memory ? "] (list incomplete: out of memory)\n" : "]\n", stdout);
    fflush(stdout);
    pthread_mutex_unlock(&v->mu);
}

static int on_event(reign_shard *shard, const reign_shard_event *event, void *payload)
{
    shard_view *v = payload;
    if (v->supervisor == NULL)
        return REIGN_SHARD_DONE;
    return cli_supervise_on_event(shard, event, v->supervisor);
}

/* SIGHUP with --resources-file: make the shard's set the file's. */
static void reload_resources(reign_shard *shard, cli_supervisor *supervisor, const char *path)
{
    char **ids = NULL;
    size_t n = 0;
    if (cli_resources_read(path, &ids, &n) != 0) {
        cli_error("%s not reread; the resources stay as they were", path);
        return;
    }
    if (reign_shard_set(shard, (const char *const *)ids, n) != REIGN_OK)
        cli_error("applying %s: %s", path, reign_last_error());
    else
        fprintf(stderr, "reign: %s reread: %zu resources\n", path, n);
    cli_supervisor_reloaded(supervisor);
    cli_resources_free(ids, n);
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
        {"slots", required_argument, NULL, OPT_SLOTS},
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"json", no_argument, NULL, OPT_JSON},
        {"grace", required_argument, NULL, OPT_GRACE},
        {"restart-delay", required_argument, NULL, OPT_RESTART_DELAY},
        {"drain-timeout", required_argument, NULL, OPT_DRAIN_TIMEOUT},
        {"resources-file", required_argument, NULL, OPT_RESOURCES_FILE},
        {"on-exit", required_argument, NULL, OPT_ON_EXIT},
        {NULL, 0, NULL, 0},
    };
    int opt, rc = 0;
    const char *cmd_only = NULL; /* an option that means something only with -- CMD */
    int64_t moves = 0;

    a->shard = (reign_shard_config)REIGN_SHARD_CONFIG_INIT;
    /* Demo-friendly defaults, all at or above the runner's minimums. */
    a->runner = (reign_runner_config)REIGN_RUNNER_CONFIG_INIT;
    a->runner.pre_election_pause_ms = 10;
    a->runner.master_check_interval_ms = 100;
    a->runner.master_hold_interval_ms = 10000;
    a->runner.resign_odds = 0;
    a->threads = 2;
    a->grace_ms = 5000;
    a->restart_delay_ms = 1000;
    a->drain_timeout_ms = 30000;
    /* "--" starts CMD: getopt must not see (or permute) what follows. */
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--") == 0) {
            if (i + 1 == argc)
                return cli_usage_error("shard", "missing CMD after --");
            a->cmd = &argv[i + 1];
            argv[i] = NULL;
            argc = i;
            break;
        }
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
            rc = cli_parse_duration("shard", "--check-interval", optarg, 1,
                                    REIGN_RUNNER_MIN_MASTER_CHECK_INTERVAL_MS, SHARD_MAX_MS,
                                    &a->runner.master_check_interval_ms);
            break;
        case OPT_PAUSE:
            rc = cli_parse_duration("shard", "--pause", optarg, 1,
                                    REIGN_RUNNER_MIN_PRE_ELECTION_PAUSE_MS, SHARD_MAX_MS,
                                    &a->runner.pre_election_pause_ms);
            break;
        case OPT_HOLD:
            rc = cli_parse_duration("shard", "--hold", optarg, 1,
                                    REIGN_RUNNER_MIN_MASTER_HOLD_INTERVAL_MS, SHARD_MAX_MS,
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
            rc = cli_parse_duration("shard", "--probe-interval", optarg, 1, 1, SHARD_MAX_MS,
                                    &a->shard.probe_interval_ms);
            break;
        case OPT_REFRESH_INTERVAL:
            rc = cli_parse_duration("shard", "--refresh-interval", optarg, 1, 1, SHARD_MAX_MS,
                                    &a->shard.membership.refresh_interval_ms);
            break;
        case OPT_STABILIZATION:
            rc = cli_parse_duration("shard", "--stabilization", optarg, 1, 1, SHARD_MAX_MS,
                                    &a->shard.membership.stabilization_ms);
            break;
        case OPT_SLOTS: {
            int64_t slots = 0;
            rc = cli_parse_int("shard", "--slots", optarg, 1, &slots);
            if (rc == 0 && slots > REIGN_MEMBERSHIP_MAX_SLOTS)
                rc = cli_usage_error("shard", "--slots: %s is above the maximum %d", optarg,
                                     REIGN_MEMBERSHIP_MAX_SLOTS);
            a->shard.membership.slots = (unsigned)slots;
            break;
        }
        case OPT_LISTEN:
            rc = cli_parse_listen("shard", "--listen", optarg, &a->listen_addr);
            a->listen = rc == 0;
            break;
        case OPT_JSON:
            a->json = true;
            break;
        case OPT_GRACE:
            cmd_only = "--grace";
            rc = cli_parse_duration("shard", "--grace", optarg, 1, 0, SHARD_MAX_MS, &a->grace_ms);
            break;
        case OPT_RESTART_DELAY:
            cmd_only = "--restart-delay";
            rc = cli_parse_duration("shard", "--restart-delay", optarg, 1, 0, SHARD_MAX_MS,
                                    &a->restart_delay_ms);
            break;
        case OPT_DRAIN_TIMEOUT:
            rc = cli_parse_duration("shard", "--drain-timeout", optarg, 1, 0, SHARD_MAX_MS,
                                    &a->drain_timeout_ms);
            break;
        case OPT_RESOURCES_FILE:
            a->resources_file = optarg;
            break;
        case OPT_ON_EXIT:
            cmd_only = "--on-exit";
            if (strcmp(optarg, "restart") == 0)
                a->on_exit = CLI_ON_EXIT_RESTART;
            else if (strcmp(optarg, "release") == 0)
                a->on_exit = CLI_ON_EXIT_RELEASE;
            else
                rc = cli_usage_error("shard", "--on-exit wants restart or release, got '%s'",
                                     optarg);
            break;
        default:
            return cli_bad_option("shard", opt, argv);
        }
        if (rc != 0)
            return rc;
    }
    a->listed = &argv[optind];
    a->n_listed = (size_t)(argc - optind);
    if (cmd_only != NULL && a->cmd == NULL)
        return cli_usage_error("shard", "%s needs -- CMD", cmd_only);
    if ((a->count > 0) + (a->n_listed > 0) + (a->resources_file != NULL) > 1)
        return cli_usage_error("shard",
                               "give one of --count, RESOURCEs and --resources-file");
    if (a->count == 0 && a->n_listed == 0 && a->resources_file == NULL)
        return cli_usage_error("shard", "missing --count N, RESOURCEs or --resources-file");
    for (size_t i = 0; i < a->n_listed; i++) {
        const char *id = a->listed[i];
        if (id[0] == '\0')
            return cli_usage_error("shard", "RESOURCE %zu is empty", i + 1);
        if (strlen(id) > REIGN_RESOURCE_ID_MAX)
            return cli_usage_error("shard", "RESOURCE %zu is %zu bytes, the maximum is %d", i + 1,
                                   strlen(id), REIGN_RESOURCE_ID_MAX);
        if (strncmp(id, REIGN_RESERVED_PREFIX, strlen(REIGN_RESERVED_PREFIX)) == 0)
            return cli_usage_error("shard",
                                   "RESOURCE %zu is reserved: IDs starting with \""
                                   REIGN_RESERVED_PREFIX "\" are reign's own (member slots)",
                                   i + 1);
    }
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

/* The body of /status, on the HTTP server's thread:
 *   {"instance":…,"uri":…,"ttl_ms":…,"healthy":…,"resources":R,
 *    "held":[{"resource":…,"term":…}…],"held_incomplete":false,
 *    "balance":{"held":…,"target":…,"fair_share":…,"members":…},
 *    "members":[{"instance":…,"weight":…,"metadata":…,"stable":…,"self":…}…]}
 * ("members" with balancing only: it is the joined view, no I/O). */
static int write_status(FILE *out, void *payload)
{
    shard_view *v = payload;
    reign_shard_balance b = {0};
    reign_health h = {0};
    reign_member *members = NULL;
    size_t n_members = 0;

    if (reign_shard_balance_info(v->shard, &b) != REIGN_OK ||
        reign_factory_health(v->factory, &h) != REIGN_OK ||
        (v->balance && reign_factory_members(v->factory, &members, &n_members) != REIGN_OK)) {
        errno = EIO;
        return -1;
    }
    fputs("{\"instance\":", out);
    cli_put_json(out, reign_factory_instance_id(v->factory));
    fputs(",\"uri\":", out);
    cli_put_json(out, reign_factory_uri(v->factory));
    fprintf(out, ",\"ttl_ms\":%" PRId64 ",\"healthy\":%s,\"resources\":%zu,\"held\":[",
            reign_factory_ttl_ms(v->factory), h.healthy ? "true" : "false", b.resources);
    /* Written while holding the view: it is a memory stream, no real I/O. */
    pthread_mutex_lock(&v->mu);
    for (size_t i = 0; i < v->n_held; i++) {
        fputs(i == 0 ? "{\"resource\":" : ",{\"resource\":", out);
        cli_put_json(out, v->held[i].id);
        fprintf(out, ",\"term\":%" PRIu64 "}", v->held[i].term);
    }
    fprintf(out, "],\"held_incomplete\":%s", v->out_of_memory ? "true" : "false");
    pthread_mutex_unlock(&v->mu);
    fprintf(out,
            ",\"balance\":{\"balanced\":%s,\"held\":%zu,\"target\":%zu,\"fair_share\":%zu,"
            "\"members\":%zu}",
            v->balance ? "true" : "false", b.held, b.target, b.fair_share, b.members);
    if (v->balance) {
        fputs(",\"members\":[", out);
        for (size_t i = 0; i < n_members; i++) {
            fputs(i == 0 ? "{\"instance\":" : ",{\"instance\":", out);
            cli_put_json(out, members[i].instance_id);
            fprintf(out, ",\"weight\":%" PRIu32 ",\"metadata\":", members[i].weight);
            cli_put_json(out, members[i].metadata != NULL ? members[i].metadata : "");
            fprintf(out, ",\"stable\":%s,\"self\":%s}", members[i].stable ? "true" : "false",
                    members[i].self ? "true" : "false");
        }
        fputc(']', out);
        reign_members_free(members, n_members);
    }
    fputs("}\n", out);
    return 0;
}

int cli_cmd_shard(int argc, char **argv)
{
    shard_args a = {0};
    shard_view view = {.mu = PTHREAD_MUTEX_INITIALIZER};
    sigset_t stop_set;
    reign_factory *factory = NULL;
    reign_shard *shard = NULL;
    cli_http *http = NULL;
    char **generated = NULL;
    char **file_ids = NULL;
    size_t n_file_ids = 0;
    cli_supervisor *supervisor = NULL;
    sigset_t cmd_mask;
    int rc = parse_args(argc, argv, &a);

    if (rc < 0)
        return CLI_EXIT_OK;  /* --help */
    if (rc != 0)
        return rc;
    if (reign_runner_config_check(&a.runner) != REIGN_OK)
        return cli_usage_error("shard", "%s", reign_last_error());

    /* CMD gets the mask reign was started with, not reign's. */
    sigprocmask(SIG_BLOCK, NULL, &cmd_mask);
    /* A guard that died leaves a pipe nobody reads: an error, not a death. */
    if (a.cmd != NULL)
        signal(SIGPIPE, SIG_IGN);
    /* Blocked before any reign thread exists, so all of them inherit the
     * mask and only sigwait below receives these signals. */
    if (cli_block_stop_signals(&stop_set) != 0) {
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
    if (a.resources_file != NULL) {
        if (cli_resources_read(a.resources_file, &file_ids, &n_file_ids) != 0) {
            rc = CLI_EXIT_USAGE;
            goto out;
        }
        ids = (const char *const *)file_ids;
        n_ids = n_file_ids;
    }

    if ((rc = cli_open_factory(&a.common, &factory)) != CLI_EXIT_OK)
        goto out;
    reign_shard_config config = a.shard;
    config.runner = a.runner;
    config.threads = (unsigned)a.threads;
    config.on_change = on_change;
    config.on_event = on_event;
    config.payload = &view;
    /* Longer than the grace, so that a revoked CMD is SIGKILLed and reaped
     * before the lease is released anyway. */
    config.revoke_timeout_ms = a.grace_ms + 5000;
    cli_supervise_config sc = {.cmd = a.cmd,
                               .instance = NULL,
                               .grace_ms = a.grace_ms,
                               .on_exit = a.on_exit,
                               .restart_delay_ms = a.restart_delay_ms,
                               .json = a.json,
                               .mask = cmd_mask};
    sc.instance = reign_factory_instance_id(factory);
    if (cli_supervisor_new(&sc, &supervisor) != 0) {
        cli_error("out of memory");
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    if (a.cmd != NULL || a.json)
        view.supervisor = supervisor;
    view.quiet = a.cmd != NULL || a.json;
    if (reign_shard_new(factory, ids, n_ids, &config, &shard) != REIGN_OK) {
        cli_error("%s", reign_last_error());
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    view.shard = shard;
    view.factory = factory;
    if (cli_supervisor_start(supervisor, shard) != 0) {
        cli_error("starting the supervisor thread: %s", strerror(errno));
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    view.balance = config.balance;
    /* Serve before the shard starts, so that a scrape sees it from 0. */
    if (a.listen) {
        unsigned port = 0;
        rc = cli_http_start(&a.listen_addr, factory, write_status, &view, &http, &port);
        if (rc != CLI_EXIT_OK)
            goto out;
        char host[64] = "?";
        if (a.listen_addr.addr.ss_family == AF_INET6)
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&a.listen_addr.addr)->sin6_addr, host,
                      sizeof host);
        else
            inet_ntop(AF_INET, &((struct sockaddr_in *)&a.listen_addr.addr)->sin_addr, host,
                      sizeof host);
        fprintf(stderr, "reign: serving /metrics, /healthz and /status on http://%s%s%s:%u/\n",
                a.listen_addr.addr.ss_family == AF_INET6 ? "[" : "", host,
                a.listen_addr.addr.ss_family == AF_INET6 ? "]" : "", port);
    }
    if (reign_shard_start(shard) != REIGN_OK) {
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

    cli_notify("READY=1\nSTATUS=sharding %zu resources", n_ids);
    for (;;) {
        int sig = cli_wait_stop_signal(&stop_set, -1);
        if (sig < 0) {
            cli_error("waiting for signals: %s", strerror(errno));
            rc = CLI_EXIT_FAIL;
            break;
        }
        if (sig != SIGHUP || a.resources_file == NULL)
            break;
        cli_forget_stop_signal();
        reload_resources(shard, supervisor, a.resources_file);
    }
    /* Hand over one by one (each CMD stopped first) rather than all at
     * once, so the others take over without a gap. */
    if (rc == CLI_EXIT_OK && a.drain_timeout_ms > 0) {
        cli_notify("STOPPING=1\nSTATUS=draining");
        if (reign_shard_drain(shard, a.drain_timeout_ms) != REIGN_OK)
            cli_error("drain: %s; stopping", reign_last_error());
    }
    /* The server reads the shard and the view: stop it first. */
    cli_http_stop(http);
    http = NULL;
    if (reign_shard_stop(shard) != REIGN_OK) {
        cli_error("stopping the shard: %s", reign_last_error());
        rc = CLI_EXIT_FAIL;
    }

out:
    cli_http_stop(http);
    reign_shard_free(shard);
    cli_supervisor_free(supervisor);
    cli_resources_free(file_ids, n_file_ids);
    if (factory != NULL && reign_factory_close(factory) != REIGN_OK) {
        cli_error("closing the factory: %s", reign_last_error());
        rc = CLI_EXIT_FAIL;
    }
    free_generated(generated, a.count);
    for (size_t i = 0; i < view.n_held; i++)
        free(view.held[i].id);
    free(view.held);
    return rc;
}
