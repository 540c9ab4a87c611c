/* `reign members`: the live members of the membership registry (the
 * instances running `reign shard` or reign_factory_join), read once
 * without joining. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

enum { OPT_JSON = CLI_OPT_FIRST_COMMAND_OPTION };

static const char usage_text[] =
    "Usage: reign members [OPTIONS]\n"
    "\n"
    "List the live members: the instances that joined the membership registry\n"
    "on this backend (every `reign shard` does, unless --no-balance), sorted\n"
    "by instance ID, one line each:\n"
    "  INSTANCE weight=W metadata=TEXT\n"
    "W is the \"weight=N\" token of the member's metadata (default 1). Nothing\n"
    "is printed when there is no member. This reads the member slots once\n"
    "(64 at a time from the bottom, until 64 in a row are free) and does\n"
    "not join. Fields are escaped as by `reign status` (\\xNN). With --json,\n"
    "one array:\n"
    "  [{\"instance\":\"a\",\"weight\":1,\"metadata\":\"\"}]\n"
    "\n"
    "Options:\n"
    "  --uri URI   backend (default: $REIGN_URI, else %s)\n"
    "  --retry-open[=DURATION]  keep trying to reach the backend at start (for\n"
    "              DURATION; default forever)\n"
    "  --json      JSON output\n"
    "  -h, --help  this help\n"
    "\n"
    "Exit status: 0 when the slots were read (members or not); 1 if they could\n"
    "not be; 2 on usage errors.\n"
    "\n"
    "Examples:\n"
    "  reign members\n"
    "  reign members --uri redis://127.0.0.1:6379/0 --json | jq length\n";

static void print_text(const reign_member *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cli_put_text(stdout, m[i].instance_id);
        printf(" weight=%" PRIu32 " metadata=", m[i].weight);
        cli_put_text(stdout, m[i].metadata != NULL ? m[i].metadata : "");
        fputc('\n', stdout);
    }
}

static void print_json(const reign_member *m, size_t n)
{
    fputc('[', stdout);
    for (size_t i = 0; i < n; i++) {
        fputs(i == 0 ? "\n  {\"instance\":" : ",\n  {\"instance\":", stdout);
        cli_put_json(stdout, m[i].instance_id);
        printf(",\"weight\":%" PRIu32 ",\"metadata\":", m[i].weight);
        cli_put_json(stdout, m[i].metadata != NULL ? m[i].metadata : "");
        fputc('}', stdout);
    }
    fputs(n > 0 ? "\n]\n" : "]\n", stdout);
}

int cli_cmd_members(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_LONG_HELP, CLI_LONG_URI, CLI_LONG_RETRY_OPEN,
        {"json", no_argument, NULL, OPT_JSON},
        {NULL, 0, NULL, 0},
    };
    cli_common common = {0};
    bool json = false;
    reign_factory *factory = NULL;
    reign_member *members = NULL;
    size_t n = 0;
    int opt, rc;

    cli_getopt_reset();
    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        int c = cli_common_option("members", opt, optarg, &common);
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
            return cli_bad_option("members", opt, argv);
        }
    }
    if (optind < argc)
        return cli_usage_error("members", "unexpected argument '%s'", argv[optind]);

    if ((rc = cli_open_factory(&common, &factory)) != CLI_EXIT_OK)
        return rc;
    int r = reign_factory_members(factory, &members, &n);
    if (r != REIGN_OK) {
        cli_error("reading the members: %s",
                  reign_last_error()[0] != '\0' ? reign_last_error() : reign_status_str(r));
        rc = CLI_EXIT_FAIL;
    } else {
        if (json)
            print_json(members, n);
        else
            print_text(members, n);
        reign_members_free(members, n);
        if (fflush(stdout) != 0) {
            cli_error("writing the output failed");
            rc = CLI_EXIT_FAIL;
        }
    }
    if (reign_factory_close(factory) != REIGN_OK) {
        cli_error("closing the factory: %s", reign_last_error());
        rc = CLI_EXIT_FAIL;
    }
    return rc;
}
