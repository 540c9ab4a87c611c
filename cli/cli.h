/* What the files of the `reign` command share: exit codes, the commands,
 * option parsing and messages (options.c), output escaping (escape.c) and
 * running the locked command (spawn.c). Only reign/reign.h is used here. */
#ifndef REIGN_CLI_CLI_H
#define REIGN_CLI_CLI_H

#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "reign/reign.h"

/* Exit codes; main.c's usage text documents them. */
enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAIL = 1,          /* runtime error, message on stderr */
    CLI_EXIT_USAGE = 2,         /* bad command line */
    CLI_EXIT_BUSY = 75,         /* lock: --wait passed, someone else is master (EX_TEMPFAIL) */
    CLI_EXIT_LOST = 76,         /* lock: mastership lost while the command ran */
    CLI_EXIT_CANNOT_EXEC = 126, /* lock: the command exists but cannot run */
    CLI_EXIT_NOT_FOUND = 127,   /* lock: the command was not found */
    CLI_EXIT_SIGNAL_BASE = 128, /* + signal number */
};

/* ---- commands (cmd_*.c): argv[0] is the command name ------------------- */

int cli_cmd_lock(int argc, char **argv);
int cli_cmd_status(int argc, char **argv);
int cli_cmd_shard(int argc, char **argv);

/* ---- options.c ----------------------------------------------------------- */

/* getopt_long values of the options several commands share. */
enum {
    CLI_OPT_HELP = 'h',
    CLI_OPT_URI = 256,
    CLI_OPT_TTL,
    CLI_OPT_INSTANCE,
    CLI_OPT_METADATA,
    CLI_OPT_FIRST_COMMAND_OPTION  /* commands number their own options from here */
};

#define CLI_LONG_HELP {"help", no_argument, NULL, CLI_OPT_HELP}
#define CLI_LONG_URI {"uri", required_argument, NULL, CLI_OPT_URI}
#define CLI_LONG_TTL {"ttl", required_argument, NULL, CLI_OPT_TTL}
#define CLI_LONG_INSTANCE {"instance", required_argument, NULL, CLI_OPT_INSTANCE}
#define CLI_LONG_METADATA {"metadata", required_argument, NULL, CLI_OPT_METADATA}

/* The factory settings every command may take. */
typedef struct cli_common {
    const char *uri;       /* NULL: $REIGN_URI, else the library's default */
    const char *instance;  /* NULL: the library's host:pid:random */
    const char *metadata;  /* NULL: "" */
    int64_t ttl_ms;        /* 0: the library's default */
} cli_common;

/* "reign: <message>\n" on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A usage error of `command`: the message, a pointer to --help; returns
 * CLI_EXIT_USAGE. */
int cli_usage_error(const char *command, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Parse a whole decimal integer >= min for option `flag` into *out.
 * 0, or a usage error (returns CLI_EXIT_USAGE). */
int cli_parse_int(const char *command, const char *flag, const char *text, int64_t min,
                  int64_t *out);

/* Handle a shared option (opt = getopt_long's value). 1 = handled, 0 = not a
 * shared option, CLI_EXIT_USAGE = bad value (message printed). */
int cli_common_option(const char *command, int opt, const char *arg, cli_common *c);

/* Restart getopt_long for a new argv (GNU getopt keeps state). Commands
 * pass an optstring starting with ':' so a missing value is told apart. */
void cli_getopt_reset(void);

/* The usage error for getopt_long's '?' or ':' (opt); returns
 * CLI_EXIT_USAGE. */
int cli_bad_option(const char *command, int opt, char *const argv[]);

/* The URI a command uses, for messages: --uri, $REIGN_URI or the default,
 * with any password replaced by ***. Caller frees; NULL if out of memory. */
char *cli_effective_uri(const char *uri);

/* The default when neither --uri nor $REIGN_URI is given (static). */
const char *cli_default_uri(void);

/* Open the factory the common options describe. On failure print
 * "reign: cannot open <uri>: <reason>" and return CLI_EXIT_FAIL. */
int cli_open_factory(const cli_common *c, reign_factory **out);

/* ---- escape.c ------------------------------------------------------------ */

/* Write s with every byte outside '!'..'~' and the backslash escaped as
 * \xNN, so one field is one word and a terminal sees no control bytes. */
void cli_put_text(FILE *f, const char *s);

/* Write s as a JSON string literal (quotes included): ", \ and control
 * bytes escaped; bytes that are not valid UTF-8 become U+FFFD. */
void cli_put_json(FILE *f, const char *s);

/* ---- spawn.c ------------------------------------------------------------- */

/* Remember which file descriptors above 2 are open now (before reign opens
 * any): they are the user's and the command inherits them; every other fd
 * is closed in the command even if reign forgot O_CLOEXEC. 0 or -1 (errno). */
int cli_spawn_snapshot_fds(void);

/* Start argv[0] (PATH searched) with environment envp and signal mask
 * `mask`, as a child that gets SIGKILL when this process dies. 0 = running,
 * *pid_out set; 1 = the exec failed, *exec_errno says why (the child is
 * reaped); -1 = pipe or fork failed (errno). Call from the main thread:
 * the death signal follows the thread that forked. */
int cli_spawn(char *const argv[], char *const envp[], const sigset_t *mask, pid_t *pid_out,
              int *exec_errno);

/* environ with REIGN_RESOURCE, REIGN_TERM and REIGN_INSTANCE set to these
 * values (replacing any inherited ones). Free with cli_env_free; NULL if out
 * of memory. */
char **cli_env_build(const char *resource, uint64_t term, const char *instance);
void cli_env_free(char **env);

#endif /* REIGN_CLI_CLI_H */
