/* The open-file budget of the file:// backend. Every held lease keeps its
 * lock file open, so RLIMIT_NOFILE bounds the leases one instance can hold.
 * At open the soft limit is raised to the hard one (as Go's runtime does at
 * start); past what is left, ACQUIRE is refused with a message naming the
 * limit instead of failing on EMFILE deep inside an op, and after one
 * EMFILE the rest of the batch's ACQUIREs fail at once (no syscall each):
 * the core backs off, so a full instance costs little and says why. */
#include <errno.h>
#include <stdio.h>
#include <sys/resource.h>

#include "file_internal.h"

void reign_file_nofile_prepare(file_state *st)
{
    struct rlimit rl;
    st->lease_limit = 0;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t old = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
            reign_backend_log(st->cfg, REIGN_LOG_INFO,
                              "file: raised the open-file limit from %llu to %llu: each held "
                              "lease keeps its lock file open",
                              (unsigned long long)old, (unsigned long long)rl.rlim_cur);
        else if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
            return;
    }
    st->nofile = rl.rlim_cur;
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur <= FILE_NOFILE_RESERVE)
        return; /* unbounded, or too small to budget: EMFILE tells */
    st->lease_limit = (size_t)(rl.rlim_cur - FILE_NOFILE_RESERVE);
}

/* Fail op for want of descriptors. The core warns once per episode. */
static void refuse(file_state *st, reign_op *op, const char *why)
{
    reign_op_fail(op, REIGN_EIO,
                  "lock directory %s: refused: %s; %zu leases held, the "
                  "open-file limit (RLIMIT_NOFILE) is %llu and each held lease keeps its lock "
                  "file open (%d kept for the rest of the process); raise the hard limit "
                  "(ulimit -Hn, systemd LimitNOFILE=) or spread the resources over more "
                  "instances",
                  st->dir, why, st->held.count, (unsigned long long)st->nofile,
                  FILE_NOFILE_RESERVE);
    st->emfile_count++;
}

int reign_file_nofile_refuse(file_state *st, reign_op *op)
{
    if (st->emfile_batch) {
        refuse(st, op, "out of file descriptors earlier in this batch");
        return 1;
    }
    if (st->lease_limit != 0 && st->held.count >= st->lease_limit) {
        refuse(st, op, "no descriptor left for another lease");
        return 1;
    }
    return 0;
}

void reign_file_nofile_emfile(file_state *st, reign_op *op)
{
    st->emfile_batch = 1;
    refuse(st, op, "out of file descriptors (EMFILE)");
}
