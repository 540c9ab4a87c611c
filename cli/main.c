/* The `reign` command: global options, usage, and dispatch to the commands
 * (cmd_lock.c, cmd_status.c, cmd_watch.c, cmd_members.c, cmd_shard.c). */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char usage_text[] =
    "Usage: reign [--help | --version]\n"
    "       reign COMMAND [OPTIONS] ...\n"
    "\n"
    "Master election per resource ID, on a backend chosen by URI.\n"
    "\n"
    "Commands:\n"
    "  lock RESOURCE [--] CMD [ARGS...] run CMD while master of RESOURCE (like flock;\n"
    "                                   also -n, -w SECONDS, -c STRING, -E CODE, -q)\n"
    "  status RESOURCE...               show the master of each RESOURCE\n"
    "  watch RESOURCE...                print each change of master until stopped\n"
    "  members                          list the live members (shard instances)\n"
    "  shard (--count N | RESOURCE...)  share resources among instances, print changes;\n"
    "                                   --listen ADDR:PORT serves /metrics, /healthz\n"
    "Run `reign COMMAND --help` for its options and examples.\n"
    "\n"
    "Backend (--uri URI, else $REIGN_URI, else file:///run/lock/reign for root\n"
    "and file:///tmp/reign-$UID for other users; here %s):\n"
    "  file:///DIR[?mode=0660]          lock files in DIR, no server (local file systems);\n"
    "                                   mode= shares DIR with its group\n"
    "  redis://[user:pass@]HOST:PORT/DB Redis\n"
    "  postgres://[user:pass@]HOST/DB   PostgreSQL (also postgresql://)\n"
    "  etcd://HOST:PORT[,HOST:PORT...]  etcd v3 through its JSON gateway (etcds:// for TLS)\n"
    "  s3://BUCKET[/PREFIX]             S3 conditional writes (credentials from AWS_*)\n"
    "  mem://NAME, noop://              in-process stores for tests: within one\n"
    "                                   reign process only\n"
    "Built into this reign: %s\n"
    "\n"
    "Durations: 500ms, 5s, 2m, 1h; a bare number is milliseconds (lock -w: seconds).\n"
    "\n"
    "Exit status:\n"
    "  0    success\n"
    "  1    error (backend unreachable, I/O, ...); the reason is on stderr\n"
    "  2    usage error: a bad option, value (the message gives its range) or URI\n"
    "  75   lock: --wait passed while another instance was master (-E CODE)\n"
    "  76   lock: mastership was lost while CMD ran (CMD was stopped;\n"
    "       with --restart-on-lost reign campaigns again instead)\n"
    "  126  lock: CMD cannot be run;  127  lock: CMD not found\n"
    "  lock otherwise exits with CMD's status (128+N if CMD died of signal N)\n"
    "  SIGINT, SIGTERM or SIGHUP stop lock, watch and shard: reign resigns and\n"
    "  cleans up, then dies of that signal (a shell shows 128+N; systemd a clean stop)\n"
    "\n"
    "Environment:\n"
    "  REIGN_URI  default backend URI\n"
    "  REIGN_LOG  library log level on stderr: error, warn (default), info, debug\n"
    "\n"
    "Examples:\n"
    "  reign lock nightly-report ./make-report.sh\n"
    "  reign lock -n -q backup -c 'rsync -a /data backup:/data'   # cron, flock style\n"
    "  reign status nightly-report\n"
    "  reign watch nightly-report\n"
    "  reign shard --instance a --count 12 --listen 127.0.0.1:9100\n"
    "  reign members\n"
    "See reign(1) for the whole manual.\n";

typedef struct cli_command {
    const char *name;
    int (*run)(int argc, char **argv);
} cli_command;

static const cli_command commands[] = {
    {"lock", cli_cmd_lock},
    {"status", cli_cmd_status},
    {"watch", cli_cmd_watch},
    {"members", cli_cmd_members},
    {"shard", cli_cmd_shard},
};

int main(int argc, char **argv)
{
    if (argc < 2)
        return cli_usage_error(NULL, "missing COMMAND");
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        char built[128] = "";
        for (size_t i = 0; reign_backend_scheme(i) != NULL; i++) {
            size_t used = strlen(built);
            snprintf(built + used, sizeof built - used, "%s%s", i ? ", " : "",
                     reign_backend_scheme(i));
        }
        printf(usage_text, cli_default_uri(), built);
        return CLI_EXIT_OK;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        printf("reign %s\n", REIGN_VERSION_STRING);
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(name, commands[i].name) == 0) {
            /* They run until stopped: retry the backend at start. */
            cli_set_long_running(strcmp(name, "watch") == 0 || strcmp(name, "shard") == 0);
            int rc = commands[i].run(argc - 1, argv + 1);
            cli_die_of_stop_signal(); /* stopped by a signal: die of it */
            return rc;
        }
    if (name[0] == '-')
        return cli_usage_error(NULL, "unknown option '%s'", name);
    return cli_usage_error(NULL, "unknown command '%s'", name);
}
