/* What the files of the `reign` command share: exit codes, the commands,
 * option parsing and messages (options.c), output escaping (escape.c),
 * stop signals (signals.c), running the locked command (spawn.c) and the
 * HTTP endpoints of `reign shard --listen` (http.c). Only reign/reign.h is
 * used here (and libmicrohttpd, inside http.c only). */
#ifndef REIGN_CLI_CLI_H
#define REIGN_CLI_CLI_H

#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
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
int cli_cmd_watch(int argc, char **argv);
int cli_cmd_members(int argc, char **argv);

/* ---- options.c ----------------------------------------------------------- */

/* getopt_long values of the options several commands share. */
enum {
    CLI_OPT_HELP = 'h',
    CLI_OPT_URI = 256,
    CLI_OPT_TTL,
    CLI_OPT_INSTANCE,
    CLI_OPT_METADATA,
    CLI_OPT_RETRY_OPEN,
    CLI_OPT_FIRST_COMMAND_OPTION  /* commands number their own options from here */
};

#define CLI_LONG_HELP {"help", no_argument, NULL, CLI_OPT_HELP}
#define CLI_LONG_URI {"uri", required_argument, NULL, CLI_OPT_URI}
#define CLI_LONG_TTL {"ttl", required_argument, NULL, CLI_OPT_TTL}
#define CLI_LONG_INSTANCE {"instance", required_argument, NULL, CLI_OPT_INSTANCE}
#define CLI_LONG_METADATA {"metadata", required_argument, NULL, CLI_OPT_METADATA}
#define CLI_LONG_RETRY_OPEN {"retry-open", optional_argument, NULL, CLI_OPT_RETRY_OPEN}

/* The factory settings every command may take. */
typedef struct cli_common {
    const char *uri;       /* NULL: $REIGN_URI, else the library's default */
    const char *instance;  /* NULL: the library's host:pid:random */
    const char *metadata;  /* NULL: "" */
    int64_t ttl_ms;        /* 0: the library's default */
    /* --retry-open: keep trying to reach the backend at start for this
     * long (< 0: forever; 0: fail at once). Not given: forever for the
     * long-running commands (cli_set_long_running), else 0. */
    int64_t retry_open_ms;
    bool retry_open_set;
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
 * "reign: cannot open <uri>: <reason>" and return CLI_EXIT_FAIL
 * (CLI_EXIT_USAGE for a malformed URI or a bad value: REIGN_EURI,
 * REIGN_EINVAL). While the
 * backend is unreachable (REIGN_EBACKEND, REIGN_ETIMEDOUT) it retries as
 * c->retry_open_ms says, with the reason on stderr once and then once a
 * minute; a stop signal (blocked by the caller or not) ends the wait with
 * CLI_EXIT_SIGNAL_BASE + N, the signal noted for cli_die_of_stop_signal. */
int cli_open_factory(const cli_common *c, reign_factory **out);

/* This command runs until stopped (watch, shard, lock --restart-on-lost):
 * it retries the backend at start by default, and is warned once about a
 * default lock directory under /tmp. Set by main.c and cmd_lock.c. */
void cli_set_long_running(bool on);

/* Print a resource ID for a message: escaped as cli_put_text, and cut to
 * its first 64 bytes with its length when longer. */
void cli_put_id(FILE *f, const char *id);

/* ---- escape.c ------------------------------------------------------------ */

/* Write s with every byte outside '!'..'~' and the backslash escaped as
 * \xNN, so one field is one word and a terminal sees no control bytes. */
void cli_put_text(FILE *f, const char *s);

/* Write s as a JSON string literal (quotes included): ", \ and control
 * bytes escaped; bytes that are not valid UTF-8 become U+FFFD. */
void cli_put_json(FILE *f, const char *s);

/* Write the wall-clock time now as "2026-11-25T19:35:21.123Z" (UTC, ms),
 * the format of the library's log lines. */
void cli_put_iso_now(FILE *f);

/* ---- signals.c ----------------------------------------------------------- */

/* Block SIGINT, SIGTERM and SIGHUP in the calling thread and fill *set with
 * them. Call before the factory starts its threads: they inherit the mask,
 * so only cli_wait_stop_signal receives these signals. 0 or -1 (errno). */
int cli_block_stop_signals(sigset_t *set);

/* Wait up to timeout_ms (< 0: forever) for a signal of `set`: its number
 * (noted as by cli_note_stop_signal), 0 if the time passed, -1 on error
 * (errno). */
int cli_wait_stop_signal(const sigset_t *set, int64_t timeout_ms);

/* Remember that a stop signal (SIGINT, SIGTERM, SIGHUP) told reign to stop;
 * the first one counts. */
void cli_note_stop_signal(int sig);

/* Forget the noted stop signal: it was not one (SIGHUP rereading a file). */
void cli_forget_stop_signal(void);

/* If a stop signal was noted, die of it now: flush stdio, restore its
 * default action, unblock it and raise it, so that the parent (a shell,
 * systemd) sees "killed by signal N" as it would for flock, not an exit
 * status 128+N. Call once everything is cleaned up (main.c does, after the
 * command returns). Returns only if no stop signal was noted. */
void cli_die_of_stop_signal(void);

/* ---- duration.c ------------------------------------------------------------ */

/* Parse a duration for option `flag` into milliseconds: "500ms", "5s",
 * "2m", "1h", decimals allowed ("1.5s"); a bare number is in units of
 * bare_unit_ms (1 for every --option; 1000 for flock's -w). Outside
 * min_ms..max_ms, or no duration: a usage error naming the range (returns
 * CLI_EXIT_USAGE). 0 on success. */
int cli_parse_duration(const char *command, const char *flag, const char *text,
                       int64_t bare_unit_ms, int64_t min_ms, int64_t max_ms, int64_t *out);

/* A duration as the parser reads it back ("20ms", "5s", "24h"). */
void cli_format_duration(int64_t ms, char *buf, size_t size);

/* ---- notify.c -------------------------------------------------------------- */

/* Send one sd_notify(3) message ("READY=1\nSTATUS=...") to
 * $NOTIFY_SOCKET, if set: a datagram on an AF_UNIX socket (a leading '@'
 * names an abstract socket). Done by hand, so no libsystemd is needed.
 * Best effort and silent: 1 sent, 0 not under a service manager, -1 failed. */
int cli_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- spawn.c ------------------------------------------------------------- */

/* Remember which file descriptors above 2 are open now (before reign opens
 * any): they are the user's and the command inherits them; every other fd
 * is closed in the command even if reign forgot O_CLOEXEC. 0 or -1 (errno). */
int cli_spawn_snapshot_fds(void);

/* In a child after fork: mark every fd above 2 that the user did not give
 * reign close-on-exec. Async-signal-safe. */
void cli_spawn_hide_fds(void);
/* A shell's view of a wait status: the exit code, 128+N for death by
 * signal N. Async-signal-safe. */
int cli_exit_code_of(int status);

/* In a child after fork whose exec failed: write err to report_fd (a
 * close-on-exec pipe whose EOF tells the parent the exec happened) and
 * _exit 127 (ENOENT) or 126. Async-signal-safe. */
void cli_spawn_report_and_exit(int report_fd, int err) __attribute__((noreturn));

/* environ with REIGN_RESOURCE, REIGN_TERM and REIGN_INSTANCE set to these
 * values (replacing any inherited ones). Free with cli_env_free; NULL if out
 * of memory. */
char **cli_env_build(const char *resource, uint64_t term, const char *instance);
void cli_env_free(char **env);

/* ---- guard.c --------------------------------------------------------------- */

/* A guard process between reign and one CMD (guard.c). */
typedef struct cli_guard {
    pid_t pid;      /* the guard; reap it with waitpid */
    int fd;         /* to the guard: deadlines, signals (close-on-exec) */
    int report_fd;  /* from the guard: CMD's pid, an exec failure; -1 once read */
    pid_t cmd_pid;  /* CMD, once reported */
    int exec_errno; /* != 0 once reported: CMD could not be run */
} cli_guard;

/* Start a guard that starts argv (environment envp, signal mask `mask`) and
 * SIGKILLs it when deadline_ms (reign_monotonic_ms clock) passes without a
 * later deadline from cli_guard_send, or when g->fd is closed or reign dies.
 * With own_group, CMD gets its own process group and the whole group is
 * killed; else CMD stays in reign's group (a terminal's foreground) and only
 * CMD is. The guard exits with CMD's status (128+N if CMD died of signal N;
 * 127/126 if it could not be run). Returns at once, before CMD runs: 0, or
 * -1 (errno). The guard dies with the calling thread (PR_SET_PDEATHSIG). */
int cli_guard_start(char *const argv[], char *const envp[], const sigset_t *mask,
                    int64_t deadline_ms, bool own_group, cli_guard *g);

/* Read what the guard reported (g->cmd_pid, g->exec_errno): true once all
 * of it is in (CMD exec'd or failed to); with `wait`, blocks until then
 * (call it once the guard has exited). */
bool cli_guard_report(cli_guard *g, bool wait);

/* Close the guard's pipes (closing g->fd makes the guard kill CMD). */
void cli_guard_close(cli_guard *g);

/* Tell a guard: a positive message is a new deadline, -SIG sends SIG to
 * CMD's group. Never blocks for long (8 bytes on a pipe). 0 or -1. */
int cli_guard_send(int fd, int64_t message);

/* ---- supervise.c ----------------------------------------------------------- */

/* `reign shard -- CMD`: a guarded CMD per mastered resource. */
typedef enum cli_on_exit {
    CLI_ON_EXIT_RESTART, /* run CMD again after the delay, same term, while master */
    CLI_ON_EXIT_RELEASE, /* give the resource away; take part again after the delay */
} cli_on_exit;

typedef struct cli_supervise_config {
    char **cmd;               /* NULL-terminated; "{}" becomes the ID. NULL: events only */
    const char *instance;     /* for REIGN_INSTANCE */
    int64_t grace_ms;         /* SIGTERM, then SIGKILL after this */
    cli_on_exit on_exit;      /* CMD exited by itself */
    int64_t restart_delay_ms; /* the delay of on_exit */
    bool json;                /* events as JSON lines */
    sigset_t mask;            /* CMD's signal mask (reign's before blocking) */
} cli_supervise_config;

typedef struct cli_supervisor cli_supervisor;

/* 0 or -1 (out of memory). */
int cli_supervisor_new(const cli_supervise_config *cfg, cli_supervisor **out);
/* Start the supervisor thread (with a CMD) for the shard; before
 * reign_shard_start. 0 or -1. */
int cli_supervisor_start(cli_supervisor *s, reign_shard *shard);
/* The shard's on_event (payload: the supervisor): prints the event, starts
 * CMD on GAINED, stops it on REVOKED (answering REIGN_SHARD_LATER, then
 * reign_shard_revoke_done once CMD is reaped) and on LOST. */
int cli_supervise_on_event(reign_shard *shard, const reign_shard_event *event, void *payload);
/* The set was just made the resources file's (SIGHUP): resources released
 * by --on-exit release are not added back by the supervisor any more (the
 * file decides). */
void cli_supervisor_reloaded(cli_supervisor *s);
/* After reign_shard_stop: SIGKILL what is left, reap, free. NULL: no-op. */
void cli_supervisor_free(cli_supervisor *s);

/* ---- resources_file.c ------------------------------------------------------ */

/* Read the IDs of a --resources-file (one a line; blank and '#' lines
 * skipped). 0 (*out: caller frees with cli_resources_free) or -1, the
 * message (naming the line) printed. */
int cli_resources_read(const char *path, char ***out, size_t *n_out);
void cli_resources_free(char **ids, size_t n);

/* ---- http.c --------------------------------------------------------------- */

/* An address to listen on, from "--listen HOST:PORT" ("127.0.0.1:9100",
 * "[::1]:9100", "localhost:0"; port 0 = any free port). */
typedef struct cli_listen_addr {
    struct sockaddr_storage addr;
    socklen_t len;
} cli_listen_addr;

/* Parse `text` for option `flag` of `command`. 0, or a usage error
 * (returns CLI_EXIT_USAGE, message printed). */
int cli_parse_listen(const char *command, const char *flag, const char *text,
                     cli_listen_addr *out);

/* Writes the body of /status (JSON) to `out`; 0, or -1 with errno set.
 * Called on the HTTP server's thread. */
typedef int (*cli_status_fn)(FILE *out, void *payload);

typedef struct cli_http cli_http;

/* Serve, on a thread of libmicrohttpd's own, on exactly `addr`:
 *   /metrics  reign_metrics_write(factory) as text/plain; version=0.0.4
 *   /healthz  200 "ok" while reign_factory_health says healthy, else 503
 *             with the reason
 *   /status   what status_fn writes, as application/json
 * The factory and payload must outlive the server. Prints "cannot listen
 * on ..." and returns CLI_EXIT_FAIL if it cannot bind. *port_out: the
 * port bound (useful with port 0). */
int cli_http_start(const cli_listen_addr *addr, reign_factory *factory, cli_status_fn status_fn,
                   void *payload, cli_http **out, unsigned *port_out);

/* Stop serving and free; waits for requests in flight. NULL is a no-op. */
void cli_http_stop(cli_http *http);

#endif /* REIGN_CLI_CLI_H */
