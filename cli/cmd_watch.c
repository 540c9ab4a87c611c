/* `reign watch`: print a line whenever the master of a resource changes,
 * until SIGINT or SIGTERM.
 *
 * Built on the library's observer (reign.h §4c): changes are pushed by the
 * backend's notifications where it has them (every backend but s3:// and
 * noop://) and read every --interval where it has none. The observer's
 * callback prints (on the observer's thread); the main thread waits for a
 * stop signal and, every --interval, looks at the observer's status to
 * say once that the backend cannot be read and once that it answers again.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>
#include <stdatomic.h>

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
    "A change is a new master, a new term (the same instance may win again) or\n"
    "new metadata of the same mastership.\n"
    "Fields are escaped as by `reign status` (\\xNN). With --json, one JSON\n"
    "object per line:\n"
    "  {\"time\":\"...\",\"resource\":\"r0\",\"master\":\"a\",\"term\":3,\"metadata\":\"\"}\n"
    "  {\"time\":\"...\",\"resource\":\"r1\",\"master\":null}\n"
    "\n"
    "Changes are pushed by the backend's notifications (redis pub/sub, PostgreSQL\n"
    "LISTEN/NOTIFY, the etcd watch, inotify on file://, mem://): a line follows\n"
    "a change within a round trip. s3:// and noop:// push nothing: there watch\n"
    "reads every RESOURCE in one batch each --interval. A master that comes and\n"
    "goes faster than a read is missed (its successor's term shows the jump).\n"
    "If the backend cannot be read, watch says so on stderr once, keeps trying,\n"
    "and says when it answers again.\n"
    "\n"
    "Options:\n"
    "  --uri URI        backend (default: $REIGN_URI, else %s)\n"
    "  --retry-open[=DURATION]  if the backend cannot be reached at start, keep\n"
    "                   trying for DURATION (the default: forever; 0: fail at once)\n"
    "  --interval DURATION  where the backend pushes nothing, read this often:\n"
    "                   200ms, 1s, ... (bare number: ms; %d ms..%d ms; default\n"
    "                   %d ms); also how soon a failed read is tried again\n"
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

/* Shared by the observer's callback and the main thread. */
typedef struct watch_ctx {
    const watch_args *a;
    atomic_bool write_failed;
} watch_ctx;

static void print_change(const watch_args *a, const reign_change *c)
{
    if (a->json) {
        fputs("{\"time\":\"", stdout);
        cli_put_iso_now(stdout);
        fputs("\",\"resource\":", stdout);
        cli_put_json(stdout, c->resource_id);
        if (!c->held) {
            fputs(",\"master\":null}\n", stdout);
            return;
        }
        fputs(",\"master\":", stdout);
        cli_put_json(stdout, c->instance_id);
        printf(",\"term\":%" PRIu64 ",\"metadata\":", c->term);
        cli_put_json(stdout, c->metadata);
        fputs("}\n", stdout);
        return;
    }
    cli_put_iso_now(stdout);
    fputc(' ', stdout);
    cli_put_text(stdout, c->resource_id);
    if (!c->held) {
        fputs(" none\n", stdout);
        return;
    }
    fputs(" master=", stdout);
    cli_put_text(stdout, c->instance_id);
    printf(" term=%" PRIu64 " metadata=", c->term);
    cli_put_text(stdout, c->metadata);
    fputc('\n', stdout);
}

/* On the observer's thread: one line per change, flushed at once. */
static void on_change(reign_observer *o, const reign_change *c, void *payload)
{
    (void)o;
    watch_ctx *w = payload;
    if (atomic_load(&w->write_failed))
        return;
    print_change(w->a, c);
    if (fflush(stdout) != 0) {
        cli_error("writing the output: %s", strerror(errno));
        atomic_store(&w->write_failed, true);
    }
}

/* Say once that reads fail, and once that they work again. */
static void report_health(reign_observer *o, const watch_args *a, bool *failing)
{
    reign_observer_status st;
    if (reign_observer_status_get(o, &st) != REIGN_OK)
        return;
    if (st.failures > 0 && !*failing) {
        cli_error("watch: cannot read the masters: %s; retrying every %" PRId64 " ms",
                  reign_status_str(st.last_error_status), a->interval_ms);
        *failing = true;
    } else if (st.failures == 0 && *failing) {
        cli_error("watch: the backend answers again");
        *failing = false;
    }
}

int cli_cmd_watch(int argc, char **argv)
{
    watch_args a = {0};
    sigset_t stop_set;
    reign_factory *factory = NULL;
    reign_observer *observer = NULL;
    watch_ctx w = {.a = &a};
    bool failing = false;
    int rc = parse_args(argc, argv, &a);

    if (rc < 0)
        return CLI_EXIT_OK;  /* --help */
    if (rc != 0)
        return rc;
    atomic_init(&w.write_failed, false);
    /* Before the factory's threads exist, so that they inherit the mask. */
    if (cli_block_stop_signals(&stop_set) != 0) {
        cli_error("blocking signals: %s", strerror(errno));
        return CLI_EXIT_FAIL;
    }
    if ((rc = cli_open_factory(&a.common, &factory)) != CLI_EXIT_OK)
        goto out;
    reign_observer_config oc = REIGN_OBSERVER_CONFIG_INIT;
    oc.ids = a.ids;
    oc.n_ids = a.n_ids;
    oc.fn = on_change;
    oc.payload = &w;
    oc.poll_interval_ms = a.interval_ms;
    if (reign_observer_new(factory, &oc, &observer) != REIGN_OK) {
        cli_error("watch: %s", reign_last_error());
        rc = CLI_EXIT_FAIL;
        goto out;
    }

    for (;;) {
        int sig = cli_wait_stop_signal(&stop_set, a.interval_ms);
        if (sig < 0) {
            cli_error("waiting for signals: %s", strerror(errno));
            rc = CLI_EXIT_FAIL;
            break;
        }
        if (sig > 0)
            break;
        if (atomic_load(&w.write_failed)) {
            rc = CLI_EXIT_FAIL;
            break;
        }
        report_health(observer, &a, &failing);
    }

out:
    reign_observer_free(observer);
    if (factory != NULL && reign_factory_close(factory) != REIGN_OK) {
        cli_error("closing the factory: %s", reign_last_error());
        rc = CLI_EXIT_FAIL;
    }
    return rc;
}
