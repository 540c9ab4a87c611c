/* The chaos test's shared vocabulary: the log line formats the worker writes
 * and the driver and checker read, and small helpers (clock, line reader).
 * No reign types here: the driver and checker do not link the library.
 *
 * Worker log (one line per event, each written with one write(2) on an
 * O_APPEND fd, so a SIGKILL loses at most the line being formed; all times
 * are CLOCK_MONOTONIC ns, shared by every process of the machine):
 *   hello PID WORKER MODE TTL_MS BELIEF_NS SLACK_NS RESOURCES T
 *   open  RES TERM T BOUND SRC        first evidence of mastership (SRC poll|gained)
 *   observer POLICY POLL_NS T         the poll thread's scheduling (realtime|normal)
 *   renew RES TERM T BOUND T_PREV     a RENEW was gathered after T_PREV (when the
 *                                     previous poll began) and by T: the bound moves
 *   unrenew RES TERM T BOUND          the RENEW in flight failed (op_errors grew):
 *                                     the bound goes back to the last good one
 *   frozen RES TERM T BOUND           about to freeze itself (driver's stop or kill):
 *                                     the bound at the freeze, without a RENEW in
 *                                     flight whose deadline was never applied
 *   late  RES TERM T BOUND            is_master true past BOUND with no RENEW since
 *   missed RES T_FROM T_TO            a mastership began and ended between two
 *                                     polls without a callback (e.g. gained just
 *                                     before a SIGSTOP): it lay within the window
 *   close RES TERM T WHY UNSEEN       first evidence it ended (WHY below); UNSEEN =
 *                                     time of the previous poll if a RENEW went
 *                                     out after it and was never seen, else 0
 *   error T MESSAGE...
 *   bye T
 * WHY: poll, expired, backend, resigned, closed (LOST callbacks), resign
 * (the worker decided to resign: logged before it calls resign), exit,
 * term (a newer term replaced it between two polls).
 *
 * Driver log (driver.log in the same directory):
 *   start SEED T BACKEND TTL_MS WORKERS RESOURCES
 *   spawn WORKER PID T LOGFILE
 *   kill PID T_FROZEN T_KILLED         frozen (SIGUSR2: it stops itself) and seen
 *                                      stopped: it ran no code after T_FROZEN; then
 *                                      SIGKILL sent at T_KILLED
 *   stop PID T_STOP T_CONT             stopped (all threads) by T_STOP, SIGCONT at T_CONT
 *   resign PID RES T                   a resign request (SIGUSR1) sent
 *   server OP T0 T1                    restart / pause (T0 = paused, T1 = resumed)
 *   exit PID STATUS T                  a worker was reaped (STATUS from waitpid)
 *   end T FAILOVERS
 */
#ifndef REIGN_TESTS_CHAOS_CHAOS_H
#define REIGN_TESTS_CHAOS_CHAOS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CHAOS_NS_PER_MS INT64_C(1000000)
#define CHAOS_NS_PER_S INT64_C(1000000000)
#define CHAOS_MAX_FIELDS 16
#define CHAOS_LINE_MAX 512

/* CLOCK_MONOTONIC in ns (the clock reign's deadlines use). */
int64_t chaos_now_ns(void);

/* Sleep for ns, retrying EINTR. */
void chaos_sleep_ns(int64_t ns);

/* Split a line (modified in place) into at most CHAOS_MAX_FIELDS blank-
 * separated fields; returns how many. The last field keeps the rest of the
 * line when there are more. */
size_t chaos_split(char *line, char **fields);

/* Parse a whole decimal field; 0 on success, -1 if it is not one. */
int chaos_parse_i64(const char *s, int64_t *out);
int chaos_parse_u64(const char *s, uint64_t *out);

/* Incremental reader of a file that another process appends to: returns
 * complete lines only, keeping a partial last line until its newline comes
 * (a writer killed mid-line leaves one: it is never returned). */
typedef struct chaos_tail {
    FILE *fp;
    char buf[CHAOS_LINE_MAX];
    size_t len;
    int overlong;  /* the current line outgrew buf: dropped */
} chaos_tail;

/* 0, or -1 with errno (the file cannot be opened). */
int chaos_tail_open(chaos_tail *t, const char *path);
void chaos_tail_close(chaos_tail *t);
/* Next complete line (without '\n', NUL-terminated, valid until the next
 * call) or NULL when none is complete yet. */
char *chaos_tail_next(chaos_tail *t);

#endif
