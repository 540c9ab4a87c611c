/* `reign watch`: print a line whenever the master of a resource changes,
 * until SIGINT or SIGTERM.
 *
 * The library has no public watch or notification API (a backend's
 * notification fd is internal to the engine), so this polls: one batched
 * read of every resource (reign_factory_read_masters, one backend round
 * trip) per --interval, compared with the previous read. A change that
 * starts and ends between two reads is not seen, except that the term then
 * jumps. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define WATCH_DEFAULT_INTERVAL_MS 200
#define WATCH_MIN_INTERVAL_MS 10
#define WATCH_MAX_INTERVAL_MS 86400000  /* a day */

enum { OPT_INTERVAL = CLI_OPT_FIRST_COMMAND_OPTION, OPT_JSON };

static const char usage_text[] =
    "Usage: reign watch [OPTIONS] RESOURCE...\n"
    "\n"
    "Print the master of each RESOURCE, then one line per change, until SIGINT\n"
    "or SIGTERM (then reign dies of that signal). Lines are flushed at once:\n"
    "  <ISO time> RESOURCE master=INSTANCE term=N metadata=TEXT\n"
    "  <ISO time> RESOURCE none\n"
    "A change is a new master or a new term (the same instance may win again).\n"
    "Fields are escaped as by `reign status` (\\xNN). With --json, one JSON\n"
    "object per line:\n"
    "  {\"time\":\"...\",\"resource\":\"r0\",\"master\":\"a\",\"term\":3,\"metadata\":\"\"}\n"
    "  {\"time\":\"...\",\"resource\":\"r1\",\"master\":null}\n"
    "\n"
    "reign has no push notification for observers: watch reads every RESOURCE\n"
    "in one batch (one backend round trip) each --interval and prints what\n"
    "changed. A master that comes and goes between two reads is missed (its\n"
    "successor's term shows the jump). If the backend cannot be read, watch\n"
    "says so on stderr once, keeps trying, and says when it answers again.\n"
    "\n"
    "Options:\n"
    "  --uri URI        backend (default: $REIGN_URI, else %s)\n"
    "  --retry-open[=DURATION]  if the backend cannot be reached at start, keep\n"
    "                   trying for DURATION (the default: forever; 0: fail at once)\n"
    "  --interval DURATION  read this often: 200ms, 1s, ... (bare number: ms;\n"
    "                   %d ms..%d ms; default %d ms)\n"
    "  --json           JSON Lines output\n"
    "  -h, --help       this help\n"
    "\n"
    "Exit status: killed by the signal after SIGINT/SIGTERM/SIGHUP (as a\n"
    "service expects); 1 if the backend cannot be opened (after --retry-open)\n"
    "or the output cannot be written; 2 on usage errors (a bad value or URI).\n"
    "\n"
    "Examples:\n"
    "  reign watch nightly-report\n"
    "  reign watch --uri redis://127.0.0.1:6379/0 --interval 1s jobs/1 jobs/2\n"
    "  reign watch --json r0 r1 r2 | jq -c 'select(.master == null)'\n";

typedef struct watch_args {
    cli_common common;
    int64_t interval_ms;
    bool json;
    const char *const *ids;
    size_t n_ids;
} watch_args;

/* What the last read said of one resource. */
typedef struct watch_seen {
    bool known;         /* read at least once */
    bool held;
    char *instance_id;  /* when held */
    uint64_t term;
} watch_seen;

static int parse_args(int argc, char **argv, watch_args *a)
{
    static const struct option longopts[] = {
        CLI_LONG_HELP, CLI_LONG_URI, CLI_LONG_RETRY_OPEN,
        {"interval", required_argument, NULL, OPT_INTERVAL},
        {"json", no_argument, NULL, OPT_JSON},
        {NULL, 0, NULL, 0},
    };
    int opt;

    a->interval_ms = WATCH_DEFAULT_INTERVAL_MS;
    cli_getopt_reset();
    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        int c = cli_common_option("watch", opt, optarg, &a->common);
        if (c == 1)
            continue;
        if (c != 0)
            return c;
        switch (opt) {
        case CLI_OPT_HELP:
            printf(usage_text, cli_default_uri(), WATCH_MIN_INTERVAL_MS, WATCH_MAX_INTERVAL_MS,
                   WATCH_DEFAULT_INTERVAL_MS);
            return -1;
        case OPT_INTERVAL:
            if (cli_parse_duration("watch", "--interval", optarg, 1, WATCH_MIN_INTERVAL_MS,
                                   WATCH_MAX_INTERVAL_MS, &a->interval_ms) != 0)
                return CLI_EXIT_USAGE;
            break;
        case OPT_JSON:
            a->json = true;
            break;
        default:
            return cli_bad_option("watch", opt, argv);
        }
    }
    if (optind >= argc)
        return cli_usage_error("watch", "missing RESOURCE");
    for (int i = optind; i < argc; i++)
        if (argv[i][0] == '\0')
            return cli_usage_error("watch", "RESOURCE %d is empty", i - optind + 1);
    a->ids = (const char *const *)&argv[optind];
    a->n_ids = (size_t)(argc - optind);
    return 0;
}

static void print_change(const watch_args *a, const char *resource, const reign_master *m)
{
    if (a->json) {
        fputs("{\"time\":\"", stdout);
        cli_put_iso_now(stdout);
        fputs("\",\"resource\":", stdout);
        cli_put_json(stdout, resource);
        if (m == NULL) {
            fputs(",\"master\":null}\n", stdout);
            return;
        }
        fputs(",\"master\":", stdout);
        cli_put_json(stdout, m->instance_id);
        printf(",\"term\":%" PRIu64 ",\"metadata\":", m->term);
        cli_put_json(stdout, m->metadata != NULL ? m->metadata : "");
        fputs("}\n", stdout);
        return;
    }
    cli_put_iso_now(stdout);
    fputc(' ', stdout);
    cli_put_text(stdout, resource);
    if (m == NULL) {
        fputs(" none\n", stdout);
        return;
    }
    fputs(" master=", stdout);
    cli_put_text(stdout, m->instance_id);
    printf(" term=%" PRIu64 " metadata=", m->term);
    cli_put_text(stdout, m->metadata != NULL ? m->metadata : "");
    fputc('\n', stdout);
}

/* Compare one read with what was seen, print if it changed, remember it.
 * -1 if out of memory. */
static int apply(const watch_args *a, const char *resource, const reign_master *m,
                 watch_seen *seen)
{
    bool changed = !seen->known || seen->held != (m != NULL) ||
                   (m != NULL && (seen->term != m->term ||
                                  strcmp(seen->instance_id, m->instance_id) != 0));
    if (!changed)
        return 0;
    char *copy = NULL;
    if (m != NULL) {
        copy = strdup(m->instance_id);
        if (copy == NULL)
            return -1;
    }
    print_change(a, resource, m);
    free(seen->instance_id);
    seen->instance_id = copy;
    seen->known = true;
    seen->held = m != NULL;
    seen->term = m != NULL ? m->term : 0;
    return 0;
}

/* One batched read and its lines. CLI_EXIT_OK, or CLI_EXIT_FAIL when the
 * output cannot be written or memory ran out (a backend error is reported
 * and retried: *failing tracks it). */
static int poll_once(reign_factory *f, const watch_args *a, reign_master **read,
                     watch_seen *seen, bool *failing)
{
    int rc = reign_factory_read_masters(f, a->ids, a->n_ids, read);
    if (rc != REIGN_OK) {
        if (!*failing)
            cli_error("watch: cannot read the masters: %s; retrying every %" PRId64 " ms",
                      reign_last_error()[0] != '\0' ? reign_last_error() : reign_status_str(rc),
                      a->interval_ms);
        *failing = true;
        return CLI_EXIT_OK;
    }
    if (*failing) {
        cli_error("watch: the backend answers again");
        *failing = false;
    }
    int out = CLI_EXIT_OK;
    for (size_t i = 0; i < a->n_ids; i++) {
        if (out == CLI_EXIT_OK && apply(a, a->ids[i], read[i], &seen[i]) != 0) {
            cli_error("out of memory");
            out = CLI_EXIT_FAIL;
        }
        reign_master_free(read[i]);
        read[i] = NULL;
    }
    if (fflush(stdout) != 0) {
        cli_error("writing the output: %s", strerror(errno));
        out = CLI_EXIT_FAIL;
    }
    return out;
}

int cli_cmd_watch(int argc, char **argv)
{
    watch_args a = {0};
    sigset_t stop_set;
    reign_factory *factory = NULL;
    reign_master **read = NULL;
    watch_seen *seen = NULL;
    bool failing = false;
    int rc = parse_args(argc, argv, &a);

    if (rc < 0)
        return CLI_EXIT_OK;  /* --help */
    if (rc != 0)
        return rc;
    /* Before the factory's threads exist, so that they inherit the mask. */
    if (cli_block_stop_signals(&stop_set) != 0) {
        cli_error("blocking signals: %s", strerror(errno));
        return CLI_EXIT_FAIL;
    }
    read = calloc(a.n_ids, sizeof *read);
    seen = calloc(a.n_ids, sizeof *seen);
    if (read == NULL || seen == NULL) {
        cli_error("out of memory for %zu resources", a.n_ids);
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    if ((rc = cli_open_factory(&a.common, &factory)) != CLI_EXIT_OK)
        goto out;

    for (;;) {
        int64_t next = reign_monotonic_ms() + a.interval_ms;
        if ((rc = poll_once(factory, &a, read, seen, &failing)) != CLI_EXIT_OK)
            break;
        int64_t left = next - reign_monotonic_ms();
        /* A read slower than the interval: the next one at once, but a
         * pending signal is still taken first. */
        int sig = cli_wait_stop_signal(&stop_set, left > 0 ? left : 0);
        if (sig < 0) {
            cli_error("waiting for signals: %s", strerror(errno));
            rc = CLI_EXIT_FAIL;
            break;
        }
        if (sig > 0)
            break;
    }

out:
    if (factory != NULL && reign_factory_close(factory) != REIGN_OK) {
        cli_error("closing the factory: %s", reign_last_error());
        rc = CLI_EXIT_FAIL;
    }
    for (size_t i = 0; seen != NULL && i < a.n_ids; i++)
        free(seen[i].instance_id);
    free(seen);
    free(read);
    return rc;
}
