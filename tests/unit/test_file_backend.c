/* Unit tests of the file:// backend, driving its vtable directly with two or
 * more states (= instances) on one temporary directory: OFD locks conflict
 * between open file descriptions even inside one process. Also the pure
 * parts (record format, names, SHA-256) and a forked holder that is
 * SIGKILLed. Every wait is a poll with a deadline. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "run_ops.h"
#include "../../backends/file/file_backend.h"
#include "../../backends/file/file_internal.h"
#include "reign/backend.h"

#define OP_TIMEOUT_MS 1000
#define WAIT_DEADLINE_MS 5000
#define TAKEOVER_MS 50

/* ---- helpers -------------------------------------------------------------- */

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

#define assert_contains(hay, needle)                                                        \
    do {                                                                                    \
        const char *hay_ = (hay);                                                           \
        if (hay_ == NULL || strstr(hay_, (needle)) == NULL)                                 \
            fail_msg("expected \"%s\" to contain \"%s\"", hay_ ? hay_ : "(null)", (needle)); \
    } while (0)

typedef struct fixture {
    char dir[64];
} fixture;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup_in(void **state, const char *base)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof f->dir, "%s/reign-file-test-XXXXXX", base);
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_in(state, "/tmp");
}

/* tmpfs when there is one: creating 10,000 files on a VM's disk takes
 * seconds, which says nothing about the backend. */
static int setup_fast(void **state)
{
    struct stat st;
    if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0)
        return setup_in(state, "/dev/shm");
    return setup(state);
}

static int teardown(void **state)
{
    fixture *f = *state;
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static reign_backend_config make_cfg(const char *dir, const char *instance_id, const char *metadata)
{
    reign_backend_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.uri = "file:///test";
    cfg.uri_redacted = "file:///test";
    cfg.scheme = "file";
    cfg.path = dir;
    cfg.instance_id = instance_id;
    cfg.metadata = metadata;
    cfg.ttl_ms = 10000;
    cfg.op_timeout_ms = OP_TIMEOUT_MS;
    return cfg;
}

/* One instance: a config (which must outlive the state) and its state. */
typedef struct instance {
    reign_backend_config cfg;
    void *st;
} instance;

static void inst_open(instance *in, const char *dir, const char *id, const char *metadata)
{
    in->cfg = make_cfg(dir, id, metadata);
    in->st = NULL;
    int rc = reign_backend_file.open(&in->cfg, &in->st);
    if (rc != REIGN_OK)
        fail_msg("open %s as %s: %d %s", dir, id, rc, reign_last_error());
    assert_non_null(in->st);
}

static void inst_close(instance *in)
{
    if (in->st != NULL)
        reign_backend_file.close(in->st);
    in->st = NULL;
}

static void op_clear(reign_op *op)
{
    free(op->out_holder);
    free(op->out_metadata);
    free(op->out_error);
    op->out_holder = op->out_metadata = op->out_error = NULL;
}

/* Run one op of `len` bytes of resource; the caller clears it. */
static reign_op run_n(instance *in, reign_op_kind kind, const char *res, size_t len, uint64_t term)
{
    reign_op op;
    memset(&op, 0, sizeof op);
    op.kind = kind;
    op.resource = res;
    op.resource_len = len;
    op.term = term;
    assert_int_equal(run_ops(&reign_backend_file, in->st, &op, 1, OP_TIMEOUT_MS), REIGN_OK);
    if (op.result == REIGN_RES_ERROR)
        print_message("op %d on %.*s: %d %s\n", (int)kind, (int)len, res, op.out_status,
                      op.out_error ? op.out_error : "");
    return op;
}

static reign_op run(instance *in, reign_op_kind kind, const char *res, uint64_t term)
{
    return run_n(in, kind, res, strlen(res), term);
}

static uint64_t acquire_ok(instance *in, const char *res)
{
    reign_op op = run(in, REIGN_OP_ACQUIRE, res, 0);
    assert_int_equal(op.result, REIGN_RES_OK);
    uint64_t term = op.out_term;
    op_clear(&op);
    return term;
}

static void expect_result(instance *in, reign_op_kind kind, const char *res, uint64_t term,
                          reign_op_result want)
{
    reign_op op = run(in, kind, res, term);
    assert_int_equal(op.result, want);
    op_clear(&op);
}

/* Poll the instance's notify fd until readable or the deadline passes. */
static int wait_notified(instance *in, int64_t deadline_us)
{
    int fd = reign_backend_file.notify_fd(in->st);
    assert_true(fd >= 0);
    for (;;) {
        int64_t left_us = deadline_us - mono_us();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, left_us > 0 ? (int)((left_us + 999) / 1000) : 0);
        if (n > 0)
            return 1;
        if (n == 0 && mono_us() >= deadline_us)
            return 0;
    }
}

/* What a drain reported. */
typedef struct released_log {
    char names[16][64];
    int n;
    int unknown;
} released_log;

static void on_released(void *ctx, const char *resource, size_t len)
{
    released_log *l = ctx;
    if (resource == NULL) {
        l->unknown++;
        return;
    }
    if (l->n < 16)
        snprintf(l->names[l->n++], 64, "%.*s", (int)len, resource);
}

static int released_has(const released_log *l, const char *name)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->names[i], name) == 0)
            return 1;
    return 0;
}

static void drain(instance *in, released_log *l)
{
    memset(l, 0, sizeof *l);
    reign_backend_file.notify_drain(in->st, on_released, l);
}

static void lock_path(const char *dir, const char *res, size_t len, char *out, size_t out_size)
{
    char name[FILE_NAME_MAX];
    reign_file_name_encode(res, len, ".lock", name);
    snprintf(out, out_size, "%s/%s", dir, name);
}

static void write_file(const char *path, const char *content)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fputs(content, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
}

/* ---- contention and terms --------------------------------------------------- */

static void test_only_one_of_two_instances_acquires(void **state)
{
    fixture *f = *state;
    instance a, b;
    inst_open(&a, f->dir, "inst-a", "addr-a");
    inst_open(&b, f->dir, "inst-b", "addr-b");

    assert_int_equal(acquire_ok(&a, "jobs/1"), 1);
    reign_op op = run(&b, REIGN_OP_ACQUIRE, "jobs/1", 0);
    assert_int_equal(op.result, REIGN_RES_HELD);
    assert_string_equal(op.out_holder, "inst-a");
    assert_string_equal(op.out_metadata, "addr-a");
    assert_int_equal(op.out_term, 1);
    assert_int_equal(op.out_remaining_ms, -1);
    op_clear(&op);

    inst_close(&b);
    inst_close(&a);
}

static void test_release_lets_the_other_acquire_with_a_higher_term(void **state)
{
    fixture *f = *state;
    instance a, b;
    inst_open(&a, f->dir, "inst-a", "");
    inst_open(&b, f->dir, "inst-b", "");

    uint64_t t1 = acquire_ok(&a, "res");
    expect_result(&b, REIGN_OP_ACQUIRE, "res", 0, REIGN_RES_HELD);
    expect_result(&a, REIGN_OP_RELEASE, "res", t1, REIGN_RES_OK);
    uint64_t t2 = acquire_ok(&b, "res");
    assert_true(t2 > t1);
    expect_result(&a, REIGN_OP_ACQUIRE, "res", 0, REIGN_RES_HELD);

    inst_close(&b);
    inst_close(&a);
}

static void test_terms_survive_closing_both_instances_and_reopening(void **state)
{
    fixture *f = *state;
    instance a, b;
    inst_open(&a, f->dir, "inst-a", "");
    inst_open(&b, f->dir, "inst-b", "");
    uint64_t t1 = acquire_ok(&a, "res");
    expect_result(&a, REIGN_OP_RELEASE, "res", t1, REIGN_RES_OK);
    uint64_t t2 = acquire_ok(&b, "res"); /* closed below while held */
    inst_close(&a);
    inst_close(&b);

    inst_open(&a, f->dir, "inst-a2", "");
    uint64_t t3 = acquire_ok(&a, "res");
    assert_int_equal(t2, t1 + 1);
    assert_int_equal(t3, t2 + 1);
    inst_close(&a);
}

static void test_renew_with_the_held_term_succeeds_and_anything_else_is_lost(void **state)
{
    fixture *f = *state;
    instance a, b;
    inst_open(&a, f->dir, "inst-a", "");
    inst_open(&b, f->dir, "inst-b", "");
    uint64_t t = acquire_ok(&a, "res");

    expect_result(&a, REIGN_OP_RENEW, "res", t, REIGN_RES_OK);
    expect_result(&a, REIGN_OP_RENEW, "res", t + 1, REIGN_RES_LOST);
    expect_result(&b, REIGN_OP_RENEW, "res", t, REIGN_RES_LOST);
    expect_result(&b, REIGN_OP_RELEASE, "res", t, REIGN_RES_LOST);
    expect_result(&a, REIGN_OP_RELEASE, "res", t + 1, REIGN_RES_LOST);
    expect_result(&a, REIGN_OP_RENEW, "other", t, REIGN_RES_LOST);
    /* Still ours after all those refusals. */
    expect_result(&a, REIGN_OP_RENEW, "res", t, REIGN_RES_OK);
    expect_result(&a, REIGN_OP_RELEASE, "res", t, REIGN_RES_OK);
    expect_result(&a, REIGN_OP_RENEW, "res", t, REIGN_RES_LOST);
    expect_result(&a, REIGN_OP_RELEASE, "res", t, REIGN_RES_LOST);

    inst_close(&b);
    inst_close(&a);
}

static void test_acquire_of_a_lease_already_held_reports_our_own_hold(void **state)
{
    fixture *f = *state;
    instance a;
    inst_open(&a, f->dir, "inst-a", "meta");
    uint64_t t = acquire_ok(&a, "res");
    reign_op op = run(&a, REIGN_OP_ACQUIRE, "res", 0);
    assert_int_equal(op.result, REIGN_RES_HELD);
    assert_string_equal(op.out_holder, "inst-a");
    assert_int_equal(op.out_term, t);
    op_clear(&op);
    /* The core then releases that term and campaigns again: a fresh term. */
    expect_result(&a, REIGN_OP_RELEASE, "res", t, REIGN_RES_OK);
    assert_int_equal(acquire_ok(&a, "res"), t + 1);
    inst_close(&a);
}

static void test_a_record_changed_under_our_lock_makes_renew_lost(void **state)
{
    fixture *f = *state;
    char path[512];
    instance a;
    inst_open(&a, f->dir, "inst-a", "");
    uint64_t t = acquire_ok(&a, "res");
    lock_path(f->dir, "res", 3, path, sizeof path);
    write_file(path, "reign-lock 1\nterm 99\nstate held\nholder intruder\nmetadata \nend\n");
    expect_result(&a, REIGN_OP_RENEW, "res", t, REIGN_RES_LOST);
    /* The lease was given up; the next ACQUIRE continues from the file's term. */
    assert_int_equal(acquire_ok(&a, "res"), 100);
    inst_close(&a);
}

static void test_a_batch_of_ten_thousand_resources_works(void **state)
{
    fixture *f = *state;
    enum { N = 10000 };
    instance a;
    inst_open(&a, f->dir, "inst-a", "");
    reign_op *ops = calloc(N, sizeof *ops);
    char(*names)[16] = calloc(N, sizeof *names);
    assert_non_null(ops);
    assert_non_null(names);
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "r%d", i);
        ops[i].kind = REIGN_OP_ACQUIRE;
        ops[i].resource = names[i];
        ops[i].resource_len = strlen(names[i]);
    }
    int64_t t0 = mono_us();
    assert_int_equal(run_ops(&reign_backend_file, a.st, ops, N, 60000), REIGN_OK);
    for (int i = 0; i < N; i++) {
        if (ops[i].result != REIGN_RES_OK)
            fail_msg("ACQUIRE %s: result %d: %s", names[i], ops[i].result,
                     ops[i].out_error ? ops[i].out_error : "");
        assert_int_equal(ops[i].out_term, 1);
        ops[i].kind = REIGN_OP_RENEW;
        ops[i].term = 1;
    }
    assert_int_equal(run_ops(&reign_backend_file, a.st, ops, N, 60000), REIGN_OK);
    for (int i = 0; i < N; i++) {
        assert_int_equal(ops[i].result, REIGN_RES_OK);
        ops[i].kind = REIGN_OP_RELEASE;
    }
    assert_int_equal(run_ops(&reign_backend_file, a.st, ops, N, 60000), REIGN_OK);
    for (int i = 0; i < N; i++)
        assert_int_equal(ops[i].result, REIGN_RES_OK);
    print_message("30000 ops in %lld ms\n", (long long)((mono_us() - t0) / 1000));
    free(names);
    free(ops);
    inst_close(&a);
}

/* ---- READ ------------------------------------------------------------------- */

static void test_read_reports_the_holder_and_none_after_release(void **state)
{
    fixture *f = *state;
    instance a, b;
    inst_open(&a, f->dir, "inst-a", "meta a");
    inst_open(&b, f->dir, "inst-b", "");

    expect_result(&b, REIGN_OP_READ, "res", 0, REIGN_RES_NONE); /* never used */
    uint64_t t = acquire_ok(&a, "res");
    for (int i = 0; i < 2; i++) {
        reign_op op = run(i == 0 ? &b : &a, REIGN_OP_READ, "res", 0);
        assert_int_equal(op.result, REIGN_RES_OK);
        assert_string_equal(op.out_holder, "inst-a");
        assert_string_equal(op.out_metadata, "meta a");
        assert_int_equal(op.out_term, t);
        op_clear(&op);
    }
    expect_result(&a, REIGN_OP_RELEASE, "res", t, REIGN_RES_OK);
    expect_result(&b, REIGN_OP_READ, "res", 0, REIGN_RES_NONE);
    expect_result(&a, REIGN_OP_READ, "res", 0, REIGN_RES_NONE);

    inst_close(&b);
    inst_close(&a);
}

static void test_read_reports_none_after_the_holder_closes(void **state)
{
    fixture *f = *state;
    instance a, b;
    inst_open(&a, f->dir, "inst-a", "");
    inst_open(&b, f->dir, "inst-b", "");
    acquire_ok(&a, "res");
    expect_result(&b, REIGN_OP_READ, "res", 0, REIGN_RES_OK);
    inst_close(&a);
    expect_result(&b, REIGN_OP_READ, "res", 0, REIGN_RES_NONE);
    inst_close(&b);
}

/* ---- notifications ------------------------------------------------------------ */

static void test_release_makes_the_waiters_notify_fd_readable(void **state)
{
    fixture *f = *state;
    instance a, b;
    released_log l;
    inst_open(&a, f->dir, "inst-a", "");
    inst_open(&b, f->dir, "inst-b", "");
    uint64_t t = acquire_ok(&a, "res");
    expect_result(&b, REIGN_OP_ACQUIRE, "res", 0, REIGN_RES_HELD);
    drain(&b, &l);

    expect_result(&a, REIGN_OP_RELEASE, "res", t, REIGN_RES_OK);
    assert_true(wait_notified(&b, mono_us() + WAIT_DEADLINE_MS * 1000));
    drain(&b, &l);
    assert_true(released_has(&l, "res"));
    assert_int_equal(acquire_ok(&b, "res"), t + 1);

    inst_close(&b);
    inst_close(&a);
}

static void test_closing_the_holder_makes_the_waiters_notify_fd_readable(void **state)
{
    fixture *f = *state;
    instance a, b;
    released_log l;
    inst_open(&a, f->dir, "inst-a", "");
    inst_open(&b, f->dir, "inst-b", "");
    uint64_t t = acquire_ok(&a, "res");
    expect_result(&b, REIGN_OP_ACQUIRE, "res", 0, REIGN_RES_HELD);
    drain(&b, &l);

    inst_close(&a); /* like a death: no RELEASE */
    assert_true(wait_notified(&b, mono_us() + WAIT_DEADLINE_MS * 1000));
    drain(&b, &l);
    assert_true(released_has(&l, "res"));
    assert_int_equal(acquire_ok(&b, "res"), t + 1);

    inst_close(&b);
}

static void test_an_acquire_elsewhere_does_not_wake_a_waiter(void **state)
{
    fixture *f = *state;
    instance a, b;
    released_log l;
    inst_open(&a, f->dir, "inst-a", "");
    inst_open(&b, f->dir, "inst-b", "");
    acquire_ok(&a, "res");
    expect_result(&b, REIGN_OP_ACQUIRE, "res", 0, REIGN_RES_HELD);
    expect_result(&b, REIGN_OP_ACQUIRE, "res", 0, REIGN_RES_HELD); /* open+close by a contender */
    drain(&b, &l);

    acquire_ok(&a, "other");
    expect_result(&a, REIGN_OP_RENEW, "res", 1, REIGN_RES_OK);
    assert_false(wait_notified(&b, mono_us() + 20 * 1000));

    inst_close(&b);
    inst_close(&a);
}

static int count_entries(const char *path)
{
    DIR *d = opendir(path);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void test_closing_a_waiter_stops_its_watcher_threads(void **state)
{
    fixture *f = *state;
    instance a, b, c;
    int fds_before = count_entries("/proc/self/fd");
    int threads_before = count_entries("/proc/self/task");
    inst_open(&a, f->dir, "inst-a", "");
    inst_open(&c, f->dir, "inst-c", "");
    inst_open(&b, f->dir, "inst-b", "");
    acquire_ok(&a, "r1");
    acquire_ok(&c, "r2");
    expect_result(&b, REIGN_OP_ACQUIRE, "r1", 0, REIGN_RES_HELD); /* watches inst-a */
    expect_result(&b, REIGN_OP_ACQUIRE, "r2", 0, REIGN_RES_HELD); /* watches inst-c */
    assert_int_equal(count_entries("/proc/self/task"), threads_before + 2);
    inst_close(&b); /* must cancel both blocked threads, not hang */
    assert_int_equal(count_entries("/proc/self/task"), threads_before);
    inst_close(&c);
    inst_close(&a);
    assert_int_equal(count_entries("/proc/self/fd"), fds_before);
}

/* A lock whose record names a holder with no member file: what a dying
 * holder looks like between the kernel dropping its member lock and its
 * lease lock. The waiter is woken by a timer with backoff, a bounded number
 * of times, and takes over once the lock goes. */
static void test_a_holder_that_is_no_live_member_is_retried_by_timer_a_bounded_number_of_times(
    void **state)
{
    fixture *f = *state;
    char path[512];
    instance b;
    released_log l;
    inst_open(&b, f->dir, "inst-b", "");
    lock_path(f->dir, "res", 3, path, sizeof path);
    write_file(path, "reign-lock 1\nterm 4\nstate held\nholder ghost\nmetadata \nend\n");
    int fd = open(path, O_RDWR | O_CLOEXEC);
    assert_true(fd >= 0);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
    assert_int_equal(fcntl(fd, F_OFD_SETLK, &fl), 0);

    int wakes = 0;
    for (;;) {
        reign_op op = run(&b, REIGN_OP_ACQUIRE, "res", 0);
        assert_int_equal(op.result, REIGN_RES_HELD);
        assert_string_equal(op.out_holder, "ghost");
        assert_int_equal(op.out_term, 4);
        op_clear(&op);
        if (!wait_notified(&b, mono_us() + 400 * 1000))
            break;
        drain(&b, &l);
        assert_true(released_has(&l, "res"));
        wakes++;
        assert_true(wakes <= 8);
    }
    assert_true(wakes >= 1);
    print_message("%d timer wake-ups for a lock held by a non-member\n", wakes);

    close(fd); /* the "holder" finally lets go */
    assert_int_equal(acquire_ok(&b, "res"), 5);
    inst_close(&b);
}

/* The holder process of the kill test: this program re-executed with
 * --hold-child DIR FD, so that it is a small fresh process whose death the
 * kernel finishes quickly (a forked copy of the test, with its sanitizer
 * heap, can take long enough to tear down to blur what is measured). It
 * acquires "res", reports 'K' (or 'E'/'H') on FD and waits for SIGKILL. */
static int hold_child_main(const char *dir, int ready_fd)
{
    instance c;
    c.cfg = make_cfg(dir, "child", "");
    char result = 'E';
    if (reign_backend_file.open(&c.cfg, &c.st) == REIGN_OK) {
        reign_op op;
        memset(&op, 0, sizeof op);
        op.kind = REIGN_OP_ACQUIRE;
        op.resource = "res";
        op.resource_len = 3;
        run_ops(&reign_backend_file, c.st, &op, 1, OP_TIMEOUT_MS);
        result = op.result == REIGN_RES_OK ? 'K' : 'H';
    }
    if (write(ready_fd, &result, 1) != 1)
        return 1;
    for (;;)
        pause(); /* until SIGKILL */
}

/* The holder is another process, killed: its lock goes with it and the
 * waiter must notice and take over within TAKEOVER_MS. */
static void test_a_killed_holder_is_taken_over_within_50_ms(void **state)
{
    fixture *f = *state;
    int ready[2];
    assert_int_equal(pipe(ready), 0); /* not close-on-exec: the child writes ready[1] */
    char fd_arg[16];
    snprintf(fd_arg, sizeof fd_arg, "%d", ready[1]);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(ready[0]);
        execl("/proc/self/exe", "test_file_backend", "--hold-child", f->dir, fd_arg, (char *)NULL);
        _exit(127);
    }
    close(ready[1]);
    struct pollfd p = {.fd = ready[0], .events = POLLIN};
    assert_int_equal(poll(&p, 1, WAIT_DEADLINE_MS), 1);
    char result = 0;
    assert_int_equal(read(ready[0], &result, 1), 1);
    close(ready[0]);
    assert_int_equal(result, 'K');

    instance b;
    released_log l;
    inst_open(&b, f->dir, "parent", "");
    reign_op op = run(&b, REIGN_OP_ACQUIRE, "res", 0);
    assert_int_equal(op.result, REIGN_RES_HELD);
    assert_string_equal(op.out_holder, "child");
    op_clear(&op);
    drain(&b, &l);

    int64_t t0 = mono_us();
    assert_int_equal(kill(pid, SIGKILL), 0);
    int64_t deadline = t0 + TAKEOVER_MS * 1000;
    reign_op_result last = REIGN_RES_HELD;
    int wakes = 0;
    while (last != REIGN_RES_OK && wait_notified(&b, deadline)) {
        wakes++;
        drain(&b, &l);
        op = run(&b, REIGN_OP_ACQUIRE, "res", 0);
        last = op.result;
        op_clear(&op);
    }
    int64_t took_us = mono_us() - t0;
    print_message("takeover after SIGKILL: %lld us, %d wake-ups\n", (long long)took_us, wakes);
    assert_int_equal(last, REIGN_RES_OK);
    assert_true(took_us <= TAKEOVER_MS * 1000);

    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    inst_close(&b);

    /* The dead child's member file stays until the next open sweeps it. */
    char member[512];
    snprintf(member, sizeof member, "%s/.members/child.member", f->dir);
    assert_int_equal(access(member, F_OK), 0);
    inst_open(&b, f->dir, "parent", "");
    assert_int_equal(access(member, F_OK), -1);
    inst_close(&b);
}

/* ---- names and hostile IDs ------------------------------------------------------ */

static void test_hostile_resource_ids_map_to_distinct_files_inside_the_directory(void **state)
{
    fixture *f = *state;
    enum { N_IDS = 16 };
    static char long_a[1025], long_b[1025], binary[256], long_binary[1025];
    memset(long_a, 'x', 1024);
    memcpy(long_b, long_a, 1024);
    long_b[1023] = 'y';
    for (int i = 0; i < 255; i++)
        binary[i] = (char)(i + 1);
    for (int i = 0; i < 1024; i++)
        long_binary[i] = (char)(1 + i % 255);
    const char *ids[N_IDS] = {"../x", "*", "{a}", "a/b", "a%2Fb", "A", "a", ".", "..",
                              ".members", "~", "x~y", long_a, long_b, binary, long_binary};
    char parent_before[512];
    snprintf(parent_before, sizeof parent_before, "%s/../x.lock", f->dir);

    instance a, b;
    inst_open(&a, f->dir, "inst-a", "");
    inst_open(&b, f->dir, "inst-b", "");
    char names[N_IDS][FILE_NAME_MAX];
    for (int i = 0; i < N_IDS; i++) {
        reign_file_name_encode(ids[i], strlen(ids[i]), ".lock", names[i]);
        assert_true(strlen(names[i]) <= 255);
        assert_null(strchr(names[i], '/'));
        assert_true(names[i][0] != '.');
        for (int j = 0; j < i; j++)
            if (strcmp(names[i], names[j]) == 0)
                fail_msg("IDs %d and %d share the file name %s", i, j, names[i]);
        assert_int_equal(acquire_ok(&a, ids[i]), 1);
    }
    /* Each is its own lease: b sees every one held by a, with term 1. */
    for (int i = 0; i < N_IDS; i++) {
        reign_op op = run(&b, REIGN_OP_READ, ids[i], 0);
        assert_int_equal(op.result, REIGN_RES_OK);
        assert_string_equal(op.out_holder, "inst-a");
        assert_int_equal(op.out_term, 1);
        op_clear(&op);
    }
    /* Exactly N lock files in DIR, plus .members; nothing outside. */
    DIR *d = opendir(f->dir);
    assert_non_null(d);
    int n_lock = 0, n_other = 0;
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d)) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            strcmp(e->d_name, ".members") == 0)
            continue;
        size_t len = strlen(e->d_name);
        if (len > 5 && strcmp(e->d_name + len - 5, ".lock") == 0)
            n_lock++;
        else
            n_other++;
    }
    closedir(d);
    assert_int_equal(n_lock, N_IDS);
    assert_int_equal(n_other, 0);
    assert_int_equal(access(parent_before, F_OK), -1);

    inst_close(&b);
    inst_close(&a);
}

static void test_short_names_decode_back_to_their_ids_and_long_ones_do_not(void **state)
{
    (void)state;
    const char *ids[] = {"jobs/7", "A.b~c", "x", "\x01\xff%"};
    char name[FILE_NAME_MAX], id[FILE_NAME_MAX];
    size_t len = 0;
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        reign_file_name_encode(ids[i], strlen(ids[i]), ".lock", name);
        assert_int_equal(reign_file_name_decode(name, ".lock", id, &len), 0);
        assert_int_equal(len, strlen(ids[i]));
        assert_memory_equal(id, ids[i], len);
    }
    char longid[400];
    memset(longid, 'a', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    reign_file_name_encode(longid, strlen(longid), ".lock", name);
    assert_int_equal(reign_file_name_decode(name, ".lock", id, &len), -1);
    assert_int_equal(reign_file_name_decode("abc.member", ".lock", id, &len), -1);
    assert_int_equal(reign_file_name_decode(".lock", ".lock", id, &len), -1);
    assert_int_equal(reign_file_name_decode("a%4.lock", ".lock", id, &len), -1);
}

static void test_names_keep_safe_bytes_and_escape_the_rest(void **state)
{
    (void)state;
    char name[FILE_NAME_MAX];
    reign_file_name_encode("jobs-7_a", 8, ".lock", name);
    assert_string_equal(name, "jobs-7_a.lock");
    reign_file_name_encode("../X", 4, ".lock", name);
    assert_string_equal(name, "%2E%2E%2F%58.lock");
    reign_file_name_encode("a\0b", 3, ".member", name);
    assert_string_equal(name, "a%00b.member");
}

static void test_long_ids_get_a_hashed_name_that_fits(void **state)
{
    (void)state;
    char id[1024], name[FILE_NAME_MAX];
    memset(id, '%', sizeof id); /* worst case: every byte escaped */
    reign_file_name_encode(id, sizeof id, ".member", name);
    assert_true(strlen(name) <= 255);
    const char *tilde = strchr(name, '~');
    assert_non_null(tilde);
    assert_int_equal(strlen(tilde), 1 + 64 + strlen(".member"));
    assert_int_equal(strncmp(name, "%25%25", 6), 0);
}

/* ---- record format ------------------------------------------------------------ */

static void test_record_round_trips_every_byte(void **state)
{
    (void)state;
    char holder[256], metadata[300];
    for (int i = 0; i < 255; i++)
        holder[i] = (char)(i + 1);
    holder[255] = '\0';
    snprintf(metadata, sizeof metadata, "http://10.0.0.5:8080/x y%%z\n");
    size_t len = 0;
    char *buf = reign_file_record_encode(UINT64_MAX, FILE_STATE_HELD, holder, metadata, &len);
    assert_non_null(buf);
    assert_int_equal(strlen(buf), len);
    file_record rec;
    const char *why = NULL;
    assert_int_equal(reign_file_record_parse(buf, len, &rec, &why), FILE_RECORD_OK);
    assert_int_equal(rec.term, UINT64_MAX);
    assert_int_equal(rec.state, FILE_STATE_HELD);
    assert_string_equal(rec.holder, holder);
    assert_string_equal(rec.metadata, metadata);
    reign_file_record_clear(&rec);
    free(buf);

    buf = reign_file_record_encode(7, FILE_STATE_RELEASED, "", "", &len);
    assert_string_equal(buf, "reign-lock 1\nterm 7\nstate released\nholder \nmetadata \nend\n");
    assert_int_equal(reign_file_record_parse(buf, len, &rec, &why), FILE_RECORD_OK);
    assert_int_equal(rec.state, FILE_STATE_RELEASED);
    assert_string_equal(rec.holder, "");
    reign_file_record_clear(&rec);
    free(buf);
}

static void test_an_empty_record_means_never_held(void **state)
{
    (void)state;
    file_record rec;
    const char *why = NULL;
    assert_int_equal(reign_file_record_parse("", 0, &rec, &why), FILE_RECORD_OK);
    assert_int_equal(rec.term, 0);
    assert_int_equal(rec.state, FILE_STATE_NEVER);
    reign_file_record_clear(&rec);
}

static void test_bytes_after_the_end_line_are_ignored(void **state)
{
    (void)state;
    static const char text[] = "reign-lock 1\nterm 3\nstate held\nholder h\nmetadata m\nend\n"
                               "ld\nmetadata a-longer-old-one\nend\n";
    file_record rec;
    const char *why = NULL;
    assert_int_equal(reign_file_record_parse(text, strlen(text), &rec, &why), FILE_RECORD_OK);
    assert_int_equal(rec.term, 3);
    assert_string_equal(rec.metadata, "m");
    reign_file_record_clear(&rec);
}

static void test_garbage_records_are_refused_with_the_fault_named(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *why;
    } cases[] = {
        {"hello\n", "bad magic line"},
        {"reign-lock 2\n", "unsupported record version"},
        {"reign-lock 1", "bad magic line"},
        {"reign-lock 1\nterm x\n", "bad term line"},
        {"reign-lock 1\nterm 007\n", "bad term line"},
        {"reign-lock 1\nterm -1\n", "bad term line"},
        {"reign-lock 1\nterm 18446744073709551616\n", "bad term line"},
        {"reign-lock 1\nterm 1\nstate maybe\n", "bad state line"},
        {"reign-lock 1\nterm 1\nstate held\nholder a b\n", "bad holder line"},
        {"reign-lock 1\nterm 1\nstate held\nholder %4\n", "bad holder line"},
        {"reign-lock 1\nterm 1\nstate held\nholder %00\n", "bad holder line"},
        {"reign-lock 1\nterm 1\nstate held\nholderx\n", "bad holder line"},
        {"reign-lock 1\nterm 1\nstate held\nholder h\nmetadata %zz\nend\n", "bad metadata line"},
        {"reign-lock 1\nterm 1\nstate held\nholder h\nmetadata m\n", "missing end line"},
        {"reign-lock 1\nterm 1\nstate held\nholder h\nmetadata m\nend", "missing end line"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        file_record rec;
        const char *why = NULL;
        int rc = reign_file_record_parse(cases[i].text, strlen(cases[i].text), &rec, &why);
        if (rc != FILE_RECORD_BAD)
            fail_msg("case %zu (%s): parsed", i, cases[i].text);
        assert_contains(why, cases[i].why);
    }
}

static void test_garbage_in_a_lock_file_is_an_eproto_error_naming_the_file(void **state)
{
    fixture *f = *state;
    char path[512];
    instance a, b;
    inst_open(&a, f->dir, "inst-a", "");
    inst_open(&b, f->dir, "inst-b", "");
    lock_path(f->dir, "g", 1, path, sizeof path);
    write_file(path, "reign-lock 1\nterm many\n");

    reign_op op = run(&a, REIGN_OP_ACQUIRE, "g", 0);
    assert_int_equal(op.result, REIGN_RES_ERROR);
    assert_int_equal(op.out_status, REIGN_EPROTO);
    assert_contains(op.out_error, path);
    assert_contains(op.out_error, "bad term line");
    op_clear(&op);
    /* The failed ACQUIRE kept nothing: the file is not locked. */
    expect_result(&b, REIGN_OP_READ, "g", 0, REIGN_RES_NONE);

    /* A fresh lease on a good file, then garbage under it: RENEW says so. */
    write_file(path, "");
    uint64_t t = acquire_ok(&a, "g");
    write_file(path, "\x01\x02garbage");
    op = run(&a, REIGN_OP_RENEW, "g", t);
    assert_int_equal(op.result, REIGN_RES_ERROR);
    assert_int_equal(op.out_status, REIGN_EPROTO);
    assert_contains(op.out_error, "bad magic line");
    op_clear(&op);
    op = run(&b, REIGN_OP_READ, "g", 0);
    assert_int_equal(op.result, REIGN_RES_ERROR);
    assert_int_equal(op.out_status, REIGN_EPROTO);
    op_clear(&op);
    op = run(&b, REIGN_OP_ACQUIRE, "g", 0);
    assert_int_equal(op.result, REIGN_RES_ERROR);
    assert_int_equal(op.out_status, REIGN_EPROTO);
    op_clear(&op);

    inst_close(&b);
    inst_close(&a);
}

static void test_sha256_matches_the_standard_vectors(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *hex;
    } v[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        uint8_t d[FILE_SHA256_LEN];
        char hex[65];
        reign_file_sha256(v[i].in, strlen(v[i].in), d);
        for (int j = 0; j < FILE_SHA256_LEN; j++)
            snprintf(hex + 2 * j, 3, "%02x", d[j]);
        assert_string_equal(hex, v[i].hex);
    }
}

/* ---- open -------------------------------------------------------------------- */

static void test_two_live_instances_with_one_id_both_open(void **state)
{
    fixture *f = *state;
    instance a, a2;
    inst_open(&a, f->dir, "same", "");
    inst_open(&a2, f->dir, "same", ""); /* warns; others then rely on retries */
    char member[512];
    snprintf(member, sizeof member, "%s/.members/same.member", f->dir);
    inst_close(&a2); /* must not remove the first one's member file */
    assert_int_equal(access(member, F_OK), 0);
    inst_close(&a);
    assert_int_equal(access(member, F_OK), -1);
}

static void test_open_creates_missing_directories_with_mode_0700(void **state)
{
    fixture *f = *state;
    char dir[256];
    snprintf(dir, sizeof dir, "%s/new/locks", f->dir);
    instance a;
    inst_open(&a, dir, "inst-a", "");
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    inst_close(&a);
}

static void test_open_under_a_regular_file_fails_with_eio_naming_the_path(void **state)
{
    fixture *f = *state;
    char file[256], dir[300];
    snprintf(file, sizeof file, "%s/plain", f->dir);
    snprintf(dir, sizeof dir, "%s/sub", file);
    write_file(file, "not a directory");
    reign_backend_config cfg = make_cfg(dir, "inst-a", "");
    void *st = NULL;
    assert_int_equal(reign_backend_file.open(&cfg, &st), REIGN_EIO);
    assert_null(st);
    assert_contains(reign_last_error(), dir);
    assert_contains(reign_last_error(), strerror(ENOTDIR));

    cfg = make_cfg(file, "inst-a", ""); /* the regular file itself */
    assert_int_equal(reign_backend_file.open(&cfg, &st), REIGN_EIO);
    assert_contains(reign_last_error(), file);
}

static void test_open_without_a_directory_is_a_uri_error(void **state)
{
    (void)state;
    reign_backend_config cfg = make_cfg("", "inst-a", "");
    void *st = NULL;
    assert_int_equal(reign_backend_file.open(&cfg, &st), REIGN_EURI);
    assert_contains(reign_last_error(), "no directory");
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--hold-child") == 0)
        return hold_child_main(argv[2], atoi(argv[3]));

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_only_one_of_two_instances_acquires),
        T(test_release_lets_the_other_acquire_with_a_higher_term),
        T(test_terms_survive_closing_both_instances_and_reopening),
        T(test_renew_with_the_held_term_succeeds_and_anything_else_is_lost),
        T(test_acquire_of_a_lease_already_held_reports_our_own_hold),
        T(test_a_record_changed_under_our_lock_makes_renew_lost),
        cmocka_unit_test_setup_teardown(test_a_batch_of_ten_thousand_resources_works, setup_fast,
                                        teardown),
        T(test_read_reports_the_holder_and_none_after_release),
        T(test_read_reports_none_after_the_holder_closes),
        T(test_release_makes_the_waiters_notify_fd_readable),
        T(test_closing_the_holder_makes_the_waiters_notify_fd_readable),
        T(test_an_acquire_elsewhere_does_not_wake_a_waiter),
        T(test_closing_a_waiter_stops_its_watcher_threads),
        T(test_a_holder_that_is_no_live_member_is_retried_by_timer_a_bounded_number_of_times),
        T(test_a_killed_holder_is_taken_over_within_50_ms),
        T(test_hostile_resource_ids_map_to_distinct_files_inside_the_directory),
        cmocka_unit_test(test_names_keep_safe_bytes_and_escape_the_rest),
        cmocka_unit_test(test_short_names_decode_back_to_their_ids_and_long_ones_do_not),
        cmocka_unit_test(test_long_ids_get_a_hashed_name_that_fits),
        cmocka_unit_test(test_record_round_trips_every_byte),
        cmocka_unit_test(test_an_empty_record_means_never_held),
        cmocka_unit_test(test_bytes_after_the_end_line_are_ignored),
        cmocka_unit_test(test_garbage_records_are_refused_with_the_fault_named),
        T(test_garbage_in_a_lock_file_is_an_eproto_error_naming_the_file),
        cmocka_unit_test(test_sha256_matches_the_standard_vectors),
        T(test_two_live_instances_with_one_id_both_open),
        T(test_open_creates_missing_directories_with_mode_0700),
        T(test_open_under_a_regular_file_fails_with_eio_naming_the_path),
        cmocka_unit_test(test_open_without_a_directory_is_a_uri_error),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
