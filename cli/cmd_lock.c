/* `reign lock`: become master of one resource, then run a command for as
 * long as mastership lasts — like flock(1), but across machines.
 *
 * Signals (SIGINT, SIGTERM, SIGHUP, SIGCHLD) are blocked from the start, so
 * every thread the library creates inherits the mask, and are read from a
 * signalfd: no handler, no race between waitpid and a signal. Loss of
 * mastership arrives as the lost term on a pipe written by the election
 * callback, and is also polled every 10 ms (is_master and the term).
 * With --restart-on-lost the cycle campaign → run → lost → stop repeats
 * until CMD exits by itself or a stop signal arrives.
 *
 * flock(1)'s habits are taken as they are: -n, -w SECONDS, -c STRING (also
 * after RESOURCE), -E CODE, and `--` only needed before a CMD that starts
 * with '-'. Under systemd (Type=notify) READY=1 is sent once master, and
 * STATUS= tells a standby (who is master) from a master.
 *
 * CMD runs under a guard process (guard.c) that SIGKILLs it at the local
 * lease deadline unless reign sends a newer one, so that a reign that is
 * stopped or stalls cannot leave CMD running beside the next master's. CMD
 * gets its own process group (the guard kills the group) unless reign runs
 * in a terminal's foreground, where CMD must stay in the foreground group
 * to read the terminal; then the guard kills CMD alone. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

#define LOCK_POLL_MS 10        /* mastership poll while the command runs */
#define LOCK_WAIT_SLICE_MS 50  /* signal check while waiting for mastership */
#define LOCK_STATUS_READ_MS 5000 /* standby: who is master, for STATUS=, this often */
#define LOCK_MAX_GRACE_MS (INT64_C(24) * 3600 * 1000)
#define LOCK_MAX_WAIT_MS (INT64_C(30) * 24 * 3600 * 1000) /* longer: -1, forever */

enum {
    OPT_WAIT = CLI_OPT_FIRST_COMMAND_OPTION,
    OPT_GRACE,
    OPT_EXIT_ON_LOST,
    OPT_RESTART_ON_LOST,
    OPT_NONBLOCK = 'n',
    OPT_TIMEOUT_S = 'w',
    OPT_COMMAND = 'c',
    OPT_CONFLICT_CODE = 'E',
    OPT_QUIET = 'q',
};

static const char usage_text[] =
    "Usage: reign lock [OPTIONS] RESOURCE [--] CMD [ARGS...]\n"
    "       reign lock [OPTIONS] RESOURCE -c 'SHELL COMMAND'\n"
    "\n"
    "Wait until this instance is master of RESOURCE, then run CMD while it\n"
    "stays master. CMD gets REIGN_RESOURCE, REIGN_TERM (the fencing token:\n"
    "higher for every new master) and REIGN_INSTANCE in its environment and\n"
    "is killed (SIGKILL) if reign dies. If mastership is lost, CMD gets\n"
    "SIGTERM, then SIGKILL after the grace period, and reign exits 76 (or,\n"
    "with --restart-on-lost, campaigns again and reruns CMD once master\n"
    "again). When CMD exits, reign resigns at once so that a waiting instance\n"
    "takes over. SIGINT, SIGTERM or SIGHUP to reign: CMD gets SIGTERM, reign\n"
    "resigns, then dies of that signal (as flock does). `--` is needed only\n"
    "when CMD starts with '-'.\n"
    "\n"
    "Durations take a unit: 500ms, 5s, 2m, 1h; a bare number is milliseconds\n"
    "(seconds for -w, as in flock).\n"
    "\n"
    "Options:\n"
    "  --uri URI        backend (default: $REIGN_URI, else %s)\n"
    "  --ttl DURATION   lease TTL, 20ms..24h (default: the URI's ttl= or 10s)\n"
    "  --wait DURATION  give up after DURATION if another instance is master and\n"
    "                   exit 75 (0: do not wait; -1, the default: wait forever)\n"
    "  -n, --nonblock   do not wait: the same as --wait 0 (flock -n)\n"
    "  -w, --timeout SECONDS  the same as --wait, in seconds (flock -w; 0.5 works)\n"
    "  -E, --conflict-exit-code CODE  exit CODE (0..255) instead of 75 when\n"
    "                   another instance is master after --wait/-n/-w (flock -E)\n"
    "  -q, --quiet      no message when another instance is master (for cron)\n"
    "  -c, --command STRING  run STRING with $SHELL -c (else /bin/sh), as flock -c\n"
    "  --grace DURATION after SIGTERM, wait before SIGKILL, 0..24h (default: 5s)\n"
    "  --exit-on-lost   when mastership is lost, stop CMD and exit 76 (the default)\n"
    "  --restart-on-lost  when mastership is lost, stop CMD, campaign again (without\n"
    "                   a time limit: --wait applies to the first campaign only) and\n"
    "                   rerun CMD with the new REIGN_TERM; until CMD exits by itself\n"
    "                   or a signal stops reign\n"
    "  --retry-open[=DURATION]  if the backend cannot be reached at start, keep\n"
    "                   trying (for DURATION; default forever). The default with\n"
    "                   --restart-on-lost; --retry-open=0 fails at once\n"
    "  --instance ID    instance ID, 1..255 bytes (default: host:pid:random)\n"
    "  --metadata TEXT  shown to others by `reign status`, up to 4096 bytes\n"
    "  -h, --help       this help\n"
    "\n"
    "Under systemd (Type=notify): READY=1 once master; STATUS= says\n"
    "\"standby for RESOURCE; master is B (term 7)\" or \"master of RESOURCE (term 8)\".\n"
    "\n"
    "Exit status: CMD's status (128+N if CMD died of signal N); 75 (or -E's\n"
    "CODE) if --wait passed while another instance was master; 76 if\n"
    "mastership was lost while CMD ran (never with --restart-on-lost); 126/127\n"
    "if CMD could not run / was not found; killed by signal N if reign got N\n"
    "(SIGINT, SIGTERM, SIGHUP; CMD gets SIGTERM, reign resigns first); 1 on\n"
    "errors; 2 on usage errors (a bad value says its range).\n"
    "\n"
    "Examples:\n"
    "  reign lock nightly-report ./make-report.sh\n"
    "  reign lock --uri redis://10.0.0.5:6379/0 --ttl 5s jobs/7 -- worker --job 7\n"
    "  reign lock -n -q backup rsync -a /data backup:/data     # from cron: quiet when busy\n"
    "  reign lock -w 30 -E 0 report -c 'make-report > /var/tmp/report'\n"
    "  reign lock --restart-on-lost --grace 2s ingest -- ./ingest-forever\n"
    "  reign lock --uri file:///var/lib/myapp/locks?mode=0660 migrate \\\n"
    "      sh -c 'db-migrate --fencing-token \"$REIGN_TERM\"'\n";

typedef struct lock_args {
    cli_common common;
    int64_t wait_ms;   /* < 0: forever */
    int64_t grace_ms;
    bool restart_on_lost;
    bool quiet;        /* -q: no "held by" line when busy */
    int conflict_code; /* exit status when busy (-E; default 75) */
    int lost_option;   /* the --*-on-lost given (0: none), to refuse both */
    const char *resource;
    char shown[300];   /* resource for messages: escaped, cut to 64 bytes */
    const char *shell_command; /* -c STRING */
    char *shell_argv[4];       /* $SHELL -c STRING */
    char **cmd;        /* NULL-terminated, points into argv or shell_argv */
} lock_args;

/* The lost pipe: the election callback (engine thread) writes the term of
 * each mastership that ended, 8 bytes at a time (atomic in a pipe). */
typedef struct lock_notify {
    int lost_pipe[2];
} lock_notify;

static void on_election_event(reign_election *election, const reign_event *event, void *payload)
{
    lock_notify *n = payload;
    (void)election;
    if (event->kind != REIGN_EVENT_LOST)
        return;
    uint64_t term = event->term;
    ssize_t w;
    /* Non-blocking. A full pipe (thousands of losses unread) loses this
     * term, but then the 10 ms check of the term still sees the change. */
    do
        w = write(n->lost_pipe[1], &term, sizeof term);
    while (w < 0 && errno == EINTR);
}

/* -c STRING given twice (before and after RESOURCE) or with a CMD too. */
static int set_shell_command(lock_args *a, const char *text)
{
    if (a->shell_command != NULL)
        return cli_usage_error("lock", "-c given twice");
    a->shell_command = text;
    return 0;
}

static int parse_args(int argc, char **argv, lock_args *a)
{
    static const struct option longopts[] = {
        CLI_LONG_HELP, CLI_LONG_URI, CLI_LONG_TTL, CLI_LONG_INSTANCE, CLI_LONG_METADATA,
        CLI_LONG_RETRY_OPEN,
        {"wait", required_argument, NULL, OPT_WAIT},
        {"timeout", required_argument, NULL, OPT_TIMEOUT_S},
        {"nonblock", no_argument, NULL, OPT_NONBLOCK},
        {"nb", no_argument, NULL, OPT_NONBLOCK},
        {"conflict-exit-code", required_argument, NULL, OPT_CONFLICT_CODE},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {"command", required_argument, NULL, OPT_COMMAND},
        {"grace", required_argument, NULL, OPT_GRACE},
        {"exit-on-lost", no_argument, NULL, OPT_EXIT_ON_LOST},
        {"restart-on-lost", no_argument, NULL, OPT_RESTART_ON_LOST},
        {NULL, 0, NULL, 0},
    };
    int opt;
    int64_t code;

    a->wait_ms = -1;
    a->grace_ms = 5000;
    a->conflict_code = CLI_EXIT_BUSY;
    cli_getopt_reset();
    /* '+': stop at RESOURCE, so CMD's own options are never ours. */
    while ((opt = getopt_long(argc, argv, "+:hnqw:c:E:", longopts, NULL)) != -1) {
        int rc = cli_common_option("lock", opt, optarg, &a->common);
        if (rc == 1)
            continue;
        if (rc != 0)
            return rc;
        switch (opt) {
        case CLI_OPT_HELP:
            printf(usage_text, cli_default_uri());
            return -1;
        case OPT_WAIT:
            /* -1: forever, as the default; flock users write it. */
            if (strcmp(optarg, "-1") == 0)
                a->wait_ms = -1;
            else if (cli_parse_duration("lock", "--wait (-1: forever)", optarg, 1, 0,
                                        LOCK_MAX_WAIT_MS,
                                        &a->wait_ms) != 0)
                return CLI_EXIT_USAGE;
            break;
        case OPT_TIMEOUT_S:
            if (cli_parse_duration("lock", "-w", optarg, 1000, 0, LOCK_MAX_WAIT_MS,
                                   &a->wait_ms) != 0)
                return CLI_EXIT_USAGE;
            break;
        case OPT_NONBLOCK:
            a->wait_ms = 0;
            break;
        case OPT_CONFLICT_CODE:
            if (strspn(optarg, "0123456789") != strlen(optarg) || optarg[0] == '\0' ||
                strlen(optarg) > 3 || (code = strtoll(optarg, NULL, 10)) > 255)
                return cli_usage_error("lock", "-E: '%s' is not an exit status 0..255", optarg);
            a->conflict_code = (int)code;
            break;
        case OPT_QUIET:
            a->quiet = true;
            break;
        case OPT_COMMAND:
            if (set_shell_command(a, optarg) != 0)
                return CLI_EXIT_USAGE;
            break;
        case OPT_GRACE:
            if (cli_parse_duration("lock", "--grace", optarg, 1, 0, LOCK_MAX_GRACE_MS,
                                   &a->grace_ms) != 0)
                return CLI_EXIT_USAGE;
            break;
        case OPT_EXIT_ON_LOST:
        case OPT_RESTART_ON_LOST:
            if (a->lost_option != 0 && a->lost_option != opt)
                return cli_usage_error("lock",
                                       "give either --exit-on-lost or --restart-on-lost, not both");
            a->lost_option = opt;
            a->restart_on_lost = opt == OPT_RESTART_ON_LOST;
            break;
        default:
            return cli_bad_option("lock", opt, argv);
        }
    }
    if (optind >= argc)
        return cli_usage_error("lock", "missing RESOURCE");
    a->resource = argv[optind++];
    if (a->resource[0] == '\0')
        return cli_usage_error("lock", "RESOURCE is empty");
    FILE *m = fmemopen(a->shown, sizeof a->shown, "w");
    if (m != NULL) {
        cli_put_id(m, a->resource);
        fclose(m);
    }
    size_t len = strlen(a->resource);
    if (len > REIGN_RESOURCE_ID_MAX)
        return cli_usage_error("lock", "RESOURCE is %zu bytes, the maximum is %d", len,
                               REIGN_RESOURCE_ID_MAX);
    if (strncmp(a->resource, REIGN_RESERVED_PREFIX, strlen(REIGN_RESERVED_PREFIX)) == 0)
        return cli_usage_error("lock",
                               "RESOURCE %s is reserved: IDs starting with \""
                               REIGN_RESERVED_PREFIX "\" are reign's own (member slots)",
                               a->shown);

    /* What follows RESOURCE: "--" CMD..., flock's "-c STRING", or CMD... */
    if (optind < argc && strcmp(argv[optind], "--") == 0) {
        optind++;
    } else if (optind < argc &&
               (strcmp(argv[optind], "-c") == 0 || strcmp(argv[optind], "--command") == 0)) {
        if (optind + 1 >= argc)
            return cli_usage_error("lock", "%s needs a value", argv[optind]);
        if (optind + 2 < argc)
            return cli_usage_error("lock", "%s takes one string (quote it); '%s' follows it",
                                   argv[optind], argv[optind + 2]);
        if (set_shell_command(a, argv[optind + 1]) != 0)
            return CLI_EXIT_USAGE;
        optind = argc;
    } else if (optind < argc && argv[optind][0] == '-') {
        return cli_usage_error("lock",
                               "'%s' after RESOURCE: options go before RESOURCE; a command "
                               "that starts with '-' goes after --",
                               argv[optind]);
    }
    if (a->shell_command != NULL) {
        if (optind < argc)
            return cli_usage_error("lock", "give -c STRING or a command, not both");
        const char *shell = getenv("SHELL");
        a->shell_argv[0] = (char *)(shell != NULL && shell[0] != '\0' ? shell : "/bin/sh");
        a->shell_argv[1] = (char *)"-c";
        a->shell_argv[2] = (char *)a->shell_command;
        a->shell_argv[3] = NULL;
        a->cmd = a->shell_argv;
        return 0;
    }
    if (optind >= argc)
        return cli_usage_error("lock", "missing the command after RESOURCE %s", a->shown);
    a->cmd = &argv[optind];
    return 0;
}

/* A signal read from the signalfd, 0 if none is pending, -1 on error. */
static int read_signal(int sfd)
{
    struct signalfd_siginfo si;
    ssize_t n;
    do
        n = read(sfd, &si, sizeof si);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EAGAIN ? 0 : -1;
    if (n != (ssize_t)sizeof si) {
        errno = EIO;
        return -1;
    }
    int sig = (int)si.ssi_signo;
    if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP)
        cli_note_stop_signal(sig); /* reign dies of it once cleaned up */
    return sig;
}

static bool is_stop_signal(int sig)
{
    return sig == SIGINT || sig == SIGTERM || sig == SIGHUP;
}

/* What to do when --wait has passed. */
enum { DEADLINE_BUSY, DEADLINE_EXTEND, DEADLINE_FAIL };

/* --wait passed without mastership. A short --wait (0 included) may pass
 * before our first attempt has reached the backend, so ask the backend who
 * holds the resource: another instance → busy (say who); nobody, or we
 * ourselves (our attempt is landing) → wait a little longer; no answer →
 * the backend's error. */
static int at_deadline(reign_election *e, reign_factory *f, const lock_args *a, int64_t wait_ms)
{
    reign_master *m = NULL;
    int rc = reign_election_current_master(e, &m);

    if (rc == REIGN_ENOMASTER)
        return DEADLINE_EXTEND;
    if (rc != REIGN_OK) {
        cli_error("%s: cannot tell who holds it: %s", a->shown, reign_last_error());
        return DEADLINE_FAIL;
    }
    int verdict = DEADLINE_BUSY;
    if (strcmp(m->instance_id, reign_factory_instance_id(f)) == 0) {
        verdict = DEADLINE_EXTEND;
    } else if (!a->quiet) {
        char waited[32];
        cli_format_duration(wait_ms, waited, sizeof waited);
        fprintf(stderr, "reign: %s is held by ", a->shown);
        cli_put_text(stderr, m->instance_id);
        if (wait_ms == 0)
            fprintf(stderr, " (term %" PRIu64 "); not waiting (-n)\n", m->term);
        else
            fprintf(stderr, " (term %" PRIu64 "); gave up after waiting %s\n", m->term, waited);
    }
    reign_master_free(m);
    return verdict;
}

/* STATUS= for systemd while standing by: who is master now (one read of
 * the backend; only done when a service manager listens). */
static void notify_standby(reign_election *e, const lock_args *a)
{
    reign_master *m = NULL;
    int rc = reign_election_current_master(e, &m);
    if (rc == REIGN_OK) {
        /* Escaped: another instance's ID must not add lines (READY=1) to
         * our message. */
        char holder[300] = "?";
        FILE *mf = fmemopen(holder, sizeof holder, "w");
        if (mf != NULL) {
            cli_put_id(mf, m->instance_id);
            fclose(mf);
        }
        cli_notify("STATUS=standby for %s; master is %s (term %" PRIu64 ")", a->shown, holder,
                   m->term);
        reign_master_free(m);
    } else if (rc == REIGN_ENOMASTER) {
        cli_notify("STATUS=campaigning for %s; no master", a->shown);
    } else {
        cli_notify("STATUS=campaigning for %s; the backend cannot be read", a->shown);
    }
}

/* Wait for mastership up to wait_ms (< 0: forever), checking for signals
 * between slices. CLI_EXIT_OK with *term, CLI_EXIT_BUSY when another
 * instance holds it at the deadline, 128+signal if reign was told to stop,
 * CLI_EXIT_FAIL on error. */
static int wait_for_mastership(reign_election *e, reign_factory *f, const lock_args *a,
                               int64_t wait_ms, int sfd, uint64_t *term)
{
    int64_t deadline = wait_ms >= 0 ? reign_monotonic_ms() + wait_ms : -1;
    int64_t next_status = getenv("NOTIFY_SOCKET") != NULL ? reign_monotonic_ms() + 200 : -1;
    bool extended = false;

    for (;;) {
        int64_t slice = LOCK_WAIT_SLICE_MS;
        if (deadline >= 0) {
            int64_t left = deadline - reign_monotonic_ms();
            if (left < slice)
                slice = left < 0 ? 0 : left;
        }
        int rc = reign_election_wait(e, slice);
        if (rc == REIGN_OK) {
            /* Mastership may already have ended again; then keep waiting. */
            if (reign_election_term(e, term) == REIGN_OK)
                return CLI_EXIT_OK;
        } else if (rc != REIGN_ETIMEDOUT) {
            cli_error("waiting for mastership of %s: %s", a->shown, reign_last_error());
            return CLI_EXIT_FAIL;
        }
        if (next_status >= 0 && reign_monotonic_ms() >= next_status) {
            notify_standby(e, a);
            next_status = reign_monotonic_ms() + LOCK_STATUS_READ_MS;
        }
        int sig;
        while ((sig = read_signal(sfd)) != 0) {
            if (sig < 0) {
                cli_error("reading signals: %s", strerror(errno));
                return CLI_EXIT_FAIL;
            }
            if (is_stop_signal(sig))
                return CLI_EXIT_SIGNAL_BASE + sig;
        }
        if (deadline < 0 || reign_monotonic_ms() < deadline)
            continue;
        switch (at_deadline(e, f, a, wait_ms)) {
        case DEADLINE_BUSY:
            return CLI_EXIT_BUSY;
        case DEADLINE_FAIL:
            return CLI_EXIT_FAIL;
        default:
            if (extended) {
                char cause[320];
                bool failing = reign_election_last_failure(e, cause, sizeof cause) != REIGN_OK;
                if (!a->quiet)
                    cli_error("not master of %s after --wait %" PRId64 " ms%s%s", a->shown,
                              wait_ms, failing ? "; last " : "", failing ? cause : "");
                return CLI_EXIT_BUSY;
            }
            /* Once, by a lease TTL: an attempt in flight ends well within it. */
            extended = true;
            deadline = reign_monotonic_ms() + reign_factory_ttl_ms(f);
        }
    }
}


/* Read every term on the lost pipe; true if `term` is among them. */
static bool term_was_lost(int fd, uint64_t term)
{
    uint64_t terms[64];
    bool lost = false;
    ssize_t n;
    do {
        n = read(fd, terms, sizeof terms);
        for (ssize_t i = 0; i < n / (ssize_t)sizeof terms[0]; i++)
            lost |= terms[i] == term;
    } while (n > 0 || (n < 0 && errno == EINTR));
    return lost;
}

/* Still master under the term CMD was started with? The engine may lose a
 * mastership and win the resource again between two of our checks (e.g.
 * when reign was stopped past its deadline): that is a new term, and CMD,
 * which holds the old one, must stop all the same. */
static bool still_master(const reign_election *e, uint64_t term)
{
    uint64_t now_term;
    return reign_election_is_master(e) && reign_election_term(e, &now_term) == REIGN_OK &&
           now_term == term;
}

/* Run the command's life: wait for it to exit; stop it when mastership is
 * lost or reign is told to stop. Returns reign's exit code; *stop_signal is
 * the stop signal received, if any (also one that came while CMD was being
 * stopped for a loss: then no restart). */
/* Send a signal to CMD through its guard; a guard that cannot be told is
 * killed, and CMD dies with it. */
static void signal_cmd(const cli_guard *g, int sig)
{
    if (cli_guard_send(g->fd, -(int64_t)sig) != 0)
        kill(g->pid, SIGKILL);
}

/* g: CMD's guard, told each new deadline. */
static int supervise(reign_election *e, const lock_args *a, uint64_t term, cli_guard *g, int sfd,
                     int lost_fd, int *stop_signal)
{
    int stop_code = -1;        /* set once we decided to stop CMD: our exit code */
    int64_t term_sent_at = -1; /* when SIGTERM went to CMD */
    int64_t sent_deadline = 0;
    bool kill_sent = false;

    for (;;) {
        int status;
        pid_t w = waitpid(g->pid, &status, WNOHANG);
        if (w == g->pid && cli_guard_report(g, true) && g->exec_errno != 0) {
            cli_error("cannot run %s: %s", a->cmd[0], strerror(g->exec_errno));
            return g->exec_errno == ENOENT ? CLI_EXIT_NOT_FOUND : CLI_EXIT_CANNOT_EXEC;
        }
        if (w == g->pid && stop_code < 0 &&
            (term_was_lost(lost_fd, term) || !still_master(e, term))) {
            /* The guard killed CMD at the deadline while reign could not act
             * (stopped, stalled): a loss like any other. */
            cli_error("lost mastership of %s (term %" PRIu64 "); the command was killed at the "
                      "lease deadline", a->shown, term);
            return CLI_EXIT_LOST;
        }
        if (w == g->pid)
            return stop_code >= 0 ? stop_code : cli_exit_code_of(status);
        if (w < 0 && errno != EINTR) {
            cli_error("waiting for the command: %s", strerror(errno));
            return CLI_EXIT_FAIL;
        }

        int sig;
        while ((sig = read_signal(sfd)) != 0) {
            if (sig < 0) {
                cli_error("reading signals: %s", strerror(errno));
                sig = SIGTERM;  /* cannot watch any more: stop CMD like on SIGTERM */
            }
            if (!is_stop_signal(sig))
                continue;  /* SIGCHLD: waitpid above */
            if (*stop_signal == 0)
                *stop_signal = sig;
            if (stop_code < 0) {
                stop_code = CLI_EXIT_SIGNAL_BASE + sig;
                signal_cmd(g, SIGTERM);
                term_sent_at = reign_monotonic_ms();
            } else if (!kill_sent) {
                /* A second request to stop: do not wait out the grace. */
                signal_cmd(g, SIGKILL);
                kill_sent = true;
            }
        }

        bool lost = term_was_lost(lost_fd, term);
        if (stop_code < 0 && (lost || !still_master(e, term))) {
            cli_error("lost mastership of %s (term %" PRIu64 "); stopping the command",
                      a->shown, term);
            cli_notify("STATUS=lost mastership of %s (term %" PRIu64 "); stopping the command",
                       a->shown, term);
            stop_code = CLI_EXIT_LOST;
            signal_cmd(g, SIGTERM);
            term_sent_at = reign_monotonic_ms();
        }
        if (stop_code >= 0 && !kill_sent && reign_monotonic_ms() - term_sent_at >= a->grace_ms) {
            signal_cmd(g, SIGKILL);
            kill_sent = true;
        }
        /* The lease was renewed: the guard may let CMD run that much longer.
         * Not after a loss; while stopping on a signal the lease is still
         * ours, and --grace may be longer than the TTL. */
        int64_t deadline;
        uint64_t now_term;
        if (stop_code != CLI_EXIT_LOST &&
            reign_election_deadline_ms(e, &deadline, &now_term) == REIGN_OK && now_term == term &&
            deadline > sent_deadline && cli_guard_send(g->fd, deadline) == 0)
            sent_deadline = deadline;

        struct pollfd pfd[2] = {{.fd = sfd, .events = POLLIN}, {.fd = lost_fd, .events = POLLIN}};
        if (poll(pfd, 2, LOCK_POLL_MS) < 0 && errno != EINTR) {
            cli_error("poll: %s", strerror(errno));
            return CLI_EXIT_FAIL;
        }
    }
}

int cli_cmd_lock(int argc, char **argv)
{
    lock_args a = {0};
    lock_notify notify = {{-1, -1}};
    sigset_t blocked, original;
    int sfd = -1;
    reign_factory *factory = NULL;
    reign_election *election = NULL;
    char **env = NULL;
    uint64_t term = 0;
    int rc = parse_args(argc, argv, &a);

    if (rc < 0)
        return CLI_EXIT_OK;  /* --help */
    if (rc != 0)
        return rc;
    if (a.restart_on_lost)
        cli_set_long_running(true); /* a service: retry the backend at start */

    if (cli_spawn_snapshot_fds() != 0) {
        cli_error("listing open file descriptors: %s", strerror(errno));
        return CLI_EXIT_FAIL;
    }
    /* A guard that died leaves a pipe nobody reads: an error, not a death. */
    signal(SIGPIPE, SIG_IGN);
    /* Before the factory starts its thread, so that it inherits the mask. */
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGINT);
    sigaddset(&blocked, SIGTERM);
    sigaddset(&blocked, SIGHUP);
    sigaddset(&blocked, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &blocked, &original) != 0) {
        cli_error("blocking signals: %s", strerror(errno));
        return CLI_EXIT_FAIL;
    }
    sfd = signalfd(-1, &blocked, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0 || pipe2(notify.lost_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        cli_error("signalfd/pipe: %s", strerror(errno));
        rc = CLI_EXIT_FAIL;
        goto out;
    }

    if ((rc = cli_open_factory(&a.common, &factory)) != CLI_EXIT_OK)
        goto out;
    if (reign_election_new(factory, a.resource, &election) != REIGN_OK ||
        reign_election_set_callback(election, on_election_event, &notify) != REIGN_OK ||
        reign_election_start(election) != REIGN_OK) {
        cli_error("election for %s: %s", a.shown, reign_last_error());
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    for (unsigned run = 0;; run++) {
        /* --wait bounds the first campaign; after a loss (restart mode)
         * reign waits as long as it takes, like a supervisor would. */
        if (run == 0)
            cli_notify("STATUS=campaigning for %s", a.shown);
        rc = wait_for_mastership(election, factory, &a, run == 0 ? a.wait_ms : -1, sfd, &term);
        if (rc == CLI_EXIT_BUSY) {
            rc = a.conflict_code; /* -E: may be 0, and still nothing runs */
            goto out;
        }
        if (rc != CLI_EXIT_OK)
            goto out;
        if (run > 0 && !a.quiet)
            cli_error("master of %s again (term %" PRIu64 "); restarting the command",
                      a.shown, term);
        /* READY only now: a standby is "starting" for systemd, so that
         * `systemctl status` and ordering (After=) tell it from the master. */
        cli_notify("READY=1\nSTATUS=master of %s (term %" PRIu64 "); running %s", a.shown, term,
                   a.cmd[0]);

        env = cli_env_build(a.resource, term, reign_factory_instance_id(factory));
        if (env == NULL) {
            cli_error("out of memory");
            rc = CLI_EXIT_FAIL;
            goto out;
        }
        int64_t deadline;
        uint64_t deadline_term;
        /* Lost again already: a deadline of now, and supervise sees the loss. */
        if (reign_election_deadline_ms(election, &deadline, &deadline_term) != REIGN_OK ||
            deadline_term != term)
            deadline = reign_monotonic_ms();
        bool foreground = isatty(STDIN_FILENO) && tcgetpgrp(STDIN_FILENO) == getpgrp();
        cli_guard guard;
        int spawned = cli_guard_start(a.cmd, env, &original, deadline, !foreground, &guard);
        int spawn_errno = errno;
        cli_env_free(env);
        env = NULL;
        if (spawned < 0) {
            cli_error("cannot start %s: %s", a.cmd[0], strerror(spawn_errno));
            rc = CLI_EXIT_FAIL;
            goto out;
        }
        int stop_signal = 0;
        rc = supervise(election, &a, term, &guard, sfd, notify.lost_pipe[0], &stop_signal);
        cli_guard_close(&guard);
        if (rc != CLI_EXIT_LOST || !a.restart_on_lost)
            break;
        if (stop_signal != 0) {
            /* Told to stop while CMD was being stopped: no rerun. */
            rc = CLI_EXIT_SIGNAL_BASE + stop_signal;
            break;
        }
        if (!a.quiet)
            cli_error("campaigning for %s again (--restart-on-lost)", a.shown);
        cli_notify("STATUS=campaigning for %s again (--restart-on-lost)", a.shown);
    }

out:
    if (election != NULL)
        cli_notify("STOPPING=1\nSTATUS=resigning %s", a.shown);
    /* Close resigns: a waiting instance takes over as soon as CMD is gone. */
    if (election != NULL && reign_election_close(election) != REIGN_OK)
        cli_error("resigning %s: %s", a.shown, reign_last_error());
    if (factory != NULL && reign_factory_close(factory) != REIGN_OK)
        cli_error("closing the factory: %s", reign_last_error());
    cli_env_free(env);
    if (sfd >= 0)
        close(sfd);
    if (notify.lost_pipe[0] >= 0) {
        close(notify.lost_pipe[0]);
        close(notify.lost_pipe[1]);
    }
    return rc;
}
