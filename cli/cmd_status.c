/* `reign status`: who is master of each resource, asked of the backend now.
 * One line per resource, or a JSON array with --json. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

enum { OPT_JSON = CLI_OPT_FIRST_COMMAND_OPTION };

static const char usage_text[] =
    "Usage: reign status [OPTIONS] RESOURCE...\n"
    "\n"
    "Print the current master of each RESOURCE, one line each:\n"
    "  RESOURCE master=INSTANCE term=N metadata=TEXT\n"
    "  RESOURCE no master\n"
    "Bytes outside '!'..'~' and the backslash are printed as \\xNN (a space is\n"
    "\\x20), so each field is one word. With --json, one array of objects:\n"
    "  {\"resource\":\"r0\",\"master\":\"a\",\"term\":3,\"metadata\":\"\"}\n"
    "  {\"resource\":\"r1\",\"master\":null}\n"
    "  {\"resource\":\"r2\",\"error\":\"...\"}\n"
    "(bytes that are not UTF-8 appear as U+FFFD there).\n"
    "\n"
    "Options:\n"
    "  --uri URI   backend (default: $REIGN_URI, else %s)\n"
    "  --retry-open[=DURATION]  keep trying to reach the backend at start (for\n"
    "              DURATION; default forever)\n"
    "  --json      JSON output\n"
    "  -h, --help  this help\n"
    "\n"
    "Exit status: 0 when every resource was read (held or not); 1 if any\n"
    "could not be read (its error is on stderr); 2 on usage errors.\n"
    "\n"
    "Examples:\n"
    "  reign status nightly-report\n"
    "  reign status --uri redis://127.0.0.1:6379/0 jobs/1 jobs/2 jobs/3\n"
    "  reign status --json r0 r1 | jq -r '.[] | select(.master) | .resource'\n";

static void print_text(const char *resource, int rc, const reign_master *m)
{
    if (rc != REIGN_OK)
        return;  /* errors go to stderr only */
    cli_put_text(stdout, resource);
    if (m == NULL) {
        fputs(" no master\n", stdout);
        return;
    }
    fputs(" master=", stdout);
    cli_put_text(stdout, m->instance_id);
    printf(" term=%" PRIu64 " metadata=", m->term);
    cli_put_text(stdout, m->metadata != NULL ? m->metadata : "");
    fputc('\n', stdout);
}

static void print_json(const char *resource, int rc, const reign_master *m, bool first)
{
    fputs(first ? "[\n  {\"resource\":" : ",\n  {\"resource\":", stdout);
    cli_put_json(stdout, resource);
    if (rc != REIGN_OK) {
        fputs(",\"error\":", stdout);
        cli_put_json(stdout, reign_last_error()[0] != '\0' ? reign_last_error()
                                                           : reign_status_str(rc));
    } else if (m == NULL) {
        fputs(",\"master\":null", stdout);
    } else {
        fputs(",\"master\":", stdout);
        cli_put_json(stdout, m->instance_id);
        printf(",\"term\":%" PRIu64 ",\"metadata\":", m->term);
        cli_put_json(stdout, m->metadata != NULL ? m->metadata : "");
    }
    fputc('}', stdout);
}

int cli_cmd_status(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_LONG_HELP, CLI_LONG_URI, CLI_LONG_RETRY_OPEN,
        {"json", no_argument, NULL, OPT_JSON},
        {NULL, 0, NULL, 0},
    };
    cli_common common = {0};
    bool json = false;
    reign_factory *factory = NULL;
    int opt, rc = CLI_EXIT_OK;

    cli_getopt_reset();
    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        int c = cli_common_option("status", opt, optarg, &common);
        if (c == 1)
            continue;
        if (c != 0)
            return c;
        switch (opt) {
        case CLI_OPT_HELP:
            printf(usage_text, cli_default_uri());
            return CLI_EXIT_OK;
        case OPT_JSON:
            json = true;
            break;
        default:
            return cli_bad_option("status", opt, argv);
        }
    }
    if (optind >= argc)
        return cli_usage_error("status", "missing RESOURCE");
    for (int i = optind; i < argc; i++)
        if (argv[i][0] == '\0')
            return cli_usage_error("status", "RESOURCE %d is empty", i - optind + 1);

    if ((rc = cli_open_factory(&common, &factory)) != CLI_EXIT_OK)
        return rc;
    for (int i = optind; i < argc; i++) {
        reign_master *m = NULL;
        int r = reign_factory_current_master(factory, argv[i], &m);
        if (r == REIGN_ENOMASTER) {
            r = REIGN_OK;
            m = NULL;
        }
        if (r != REIGN_OK) {
            fputs("reign: status of ", stderr);
            cli_put_id(stderr, argv[i]); /* a 1 KB ID is not echoed whole */
            fprintf(stderr, ": %s\n",
                    reign_last_error()[0] != '\0' ? reign_last_error() : reign_status_str(r));
            rc = CLI_EXIT_FAIL;
        }
        if (json)
            print_json(argv[i], r, m, i == optind);
        else
            print_text(argv[i], r, m);
        if (m != NULL)
            reign_master_free(m);
    }
    if (json)
        fputs("\n]\n", stdout);
    if (fflush(stdout) != 0) {
        cli_error("writing the output failed");
        rc = CLI_EXIT_FAIL;
    }
    if (reign_factory_close(factory) != REIGN_OK) {
        cli_error("closing the factory: %s", reign_last_error());
        rc = CLI_EXIT_FAIL;
    }
    return rc;
}
