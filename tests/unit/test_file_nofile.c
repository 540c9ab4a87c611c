/* The file:// backend against RLIMIT_NOFILE: each held lease keeps a
 * descriptor, so the limit bounds the leases. Every case runs in a forked
 * child that lowers its own limit (the parent's stays as it was) and
 * reports through its exit status and stderr. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "run_ops.h"
#include "../../backends/file/file_backend.h"
#include "../../backends/file/file_internal.h"
#include "reign/backend.h"
#include "reign/reign.h"

#define CHILD_FAIL(...)                                                                       \
    do {                                                                                      \
        fprintf(stderr, "line %d: ", __LINE__);                                               \
        fprintf(stderr, __VA_ARGS__);                                                         \
        fputc('\n', stderr);                                                                  \
        return 1;                                                                             \
    } while (0)

static char dir[64];

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/reign-nofile-test-XXXXXX");
    return mkdtemp(dir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* Run fn in a child with RLIMIT_NOFILE soft/hard; assert it exits 0. */
static void in_child(int (*fn)(void), rlim_t soft, rlim_t hard)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit rl = {soft, hard};
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            fprintf(stderr, "setrlimit: %s\n", strerror(errno));
            _exit(2);
        }
        _exit(fn());
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static reign_backend_config make_cfg(void)
{
    reign_backend_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.uri = cfg.uri_redacted = "file:///test";
    cfg.scheme = "file";
    cfg.path = dir;
    cfg.instance_id = "inst-a";
    cfg.metadata = "";
    cfg.ttl_ms = 10000;
    cfg.op_timeout_ms = 1000;
    return cfg;
}

enum { N = 100 };
static char names[N][16];

/* ACQUIRE N resources in one batch; count the outcomes; keep the last
 * error message in *err (malloc'd). */
static void acquire_all(void *st, size_t first, size_t n, size_t *ok, size_t *eio, char **err)
{
    reign_op ops[N];
    memset(ops, 0, sizeof ops);
    for (size_t i = 0; i < n; i++) {
        snprintf(names[first + i], sizeof names[0], "r%zu", first + i);
        ops[i].kind = REIGN_OP_ACQUIRE;
        ops[i].resource = names[first + i];
        ops[i].resource_len = strlen(names[first + i]);
    }
    run_ops(&reign_backend_file, st, ops, n, 1000);
    *ok = *eio = 0;
    for (size_t i = 0; i < n; i++) {
        *ok += ops[i].result == REIGN_RES_OK;
        *eio += ops[i].result == REIGN_RES_ERROR && ops[i].out_status == REIGN_EIO;
        if (ops[i].out_error != NULL) {
            free(*err);
            *err = ops[i].out_error;
            ops[i].out_error = NULL;
        }
        free(ops[i].out_holder);
        free(ops[i].out_metadata);
    }
}

static int child_raises_the_soft_limit_at_open(void)
{
    reign_backend_config cfg = make_cfg();
    void *st = NULL;
    if (reign_backend_file.open(&cfg, &st) != REIGN_OK)
        CHILD_FAIL("open: %s", reign_last_error());
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur != 300)
        CHILD_FAIL("soft limit %llu after open, want 300", (unsigned long long)rl.rlim_cur);
    size_t budget = ((file_state *)st)->lease_limit;
    if (budget != 300 - FILE_NOFILE_RESERVE)
        CHILD_FAIL("lease budget %zu, want %d", budget, 300 - FILE_NOFILE_RESERVE);
    reign_backend_file.close(st);
    return 0;
}

static void test_open_raises_the_soft_limit_to_the_hard_one(void **state)
{
    (void)state;
    in_child(child_raises_the_soft_limit_at_open, 100, 300);
}

static int child_refuses_past_the_budget(void)
{
    reign_backend_config cfg = make_cfg();
    void *st = NULL;
    char *err = NULL;
    size_t ok, eio;
    if (reign_backend_file.open(&cfg, &st) != REIGN_OK)
        CHILD_FAIL("open: %s", reign_last_error());
    size_t budget = ((file_state *)st)->lease_limit; /* 94 - 64 = 30 */
    acquire_all(st, 0, N, &ok, &eio, &err);
    if (ok != budget || eio != N - budget)
        CHILD_FAIL("%zu OK and %zu EIO of %d, want %zu and %zu (%s)", ok, eio, N, budget,
                   N - budget, err ? err : "");
    if (err == NULL || strstr(err, "open-file limit (RLIMIT_NOFILE) is 94") == NULL ||
        strstr(err, "30 leases held") == NULL || strstr(err, "refused: ") == NULL)
        CHILD_FAIL("message: %s", err ? err : "(none)");
    if (((file_state *)st)->emfile_count != N - budget)
        CHILD_FAIL("emfile_count %llu", ((file_state *)st)->emfile_count);
    free(err);
    reign_backend_file.close(st);
    return 0;
}

static void test_acquire_past_the_descriptor_budget_is_refused_naming_the_limit(void **state)
{
    (void)state;
    in_child(child_refuses_past_the_budget, 94, 94);
}

static int child_emfile_fails_the_rest_of_the_batch(void)
{
    reign_backend_config cfg = make_cfg();
    void *st = NULL;
    char *err = NULL;
    size_t ok, eio;
    if (reign_backend_file.open(&cfg, &st) != REIGN_OK)
        CHILD_FAIL("open: %s", reign_last_error());
    /* Someone else in the process takes every descriptor left. */
    int fds[200], n_fds = 0;
    while (n_fds < 200 && (fds[n_fds] = open("/dev/null", O_RDONLY)) >= 0)
        n_fds++;
    if (n_fds == 200 || errno != EMFILE)
        CHILD_FAIL("could not exhaust descriptors (%d opened)", n_fds);
    acquire_all(st, 0, 10, &ok, &eio, &err);
    if (ok != 0 || eio != 10)
        CHILD_FAIL("%zu OK, %zu EIO of 10 with no descriptor free", ok, eio);
    if (err == NULL || strstr(err, "earlier in this batch") == NULL)
        CHILD_FAIL("message of the last: %s", err ? err : "(none)");
    /* Freed descriptors are used again in the next batch. */
    close(fds[--n_fds]);
    close(fds[--n_fds]);
    acquire_all(st, 10, 1, &ok, &eio, &err);
    if (ok != 1)
        CHILD_FAIL("ACQUIRE after descriptors were freed: %s", err ? err : "");
    free(err);
    while (n_fds > 0)
        close(fds[--n_fds]);
    reign_backend_file.close(st);
    return 0;
}

static void test_emfile_fails_the_rest_of_the_batch_at_once_and_clears_after(void **state)
{
    (void)state;
    in_child(child_emfile_fails_the_rest_of_the_batch, 150, 150);
}

/* Through the engine: campaigns past the budget back off (far fewer
 * ACQUIREs than one per retry interval) and health says why. */
static int child_engine_backs_off_and_health_says_so(void)
{
    char uri[128];
    snprintf(uri, sizeof uri, "file://%s", dir);
    reign_options o = REIGN_OPTIONS_INIT;
    o.instance_id = "inst-a";
    o.retry_interval_ms = 50;
    reign_factory *f = NULL;
    if (reign_factory_open(uri, &o, &f) != REIGN_OK)
        CHILD_FAIL("open: %s", reign_last_error());
    reign_election *e[N];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[0], "r%d", i);
        if (reign_election_new(f, names[i], &e[i]) != REIGN_OK ||
            reign_election_start(e[i]) != REIGN_OK)
            CHILD_FAIL("election %d: %s", i, reign_last_error());
    }
    struct timespec ts = {2, 0};
    nanosleep(&ts, NULL); /* the quantity measured is work done over time */
    reign_stats s;
    reign_health h;
    reign_factory_stats(f, &s);
    reign_factory_health(f, &h);
    size_t budget = 94 - FILE_NOFILE_RESERVE;
    /* Without backoff: (N - budget) × 2 s / 50 ms = 2,800 ACQUIREs. With
     * it, about N - budget × log2(2 s / 50 ms) ≈ 400, plus the first N. */
    if (s.masterships != budget)
        CHILD_FAIL("masterships %llu, want %zu", (unsigned long long)s.masterships, budget);
    if (s.ops_acquire > 800)
        CHILD_FAIL("%llu ACQUIREs in 2 s: no backoff", (unsigned long long)s.ops_acquire);
    if (h.healthy || h.last_error_status != REIGN_EIO)
        CHILD_FAIL("health: healthy %d, last error %d", h.healthy, h.last_error_status);
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    reign_metrics_write(f, m);
    fclose(m);
    if (strstr(text, "reign_acquire_failing{backend=\"file\"} 1") == NULL)
        CHILD_FAIL("metrics:\n%s", text);
    fprintf(stderr, "%llu ACQUIREs in 2 s for %d resources, %zu held\n",
            (unsigned long long)s.ops_acquire, N, budget);
    free(text);
    for (int i = 0; i < N; i++)
        reign_election_close(e[i]);
    reign_factory_close(f);
    return 0;
}

static void test_the_engine_backs_off_acquires_refused_for_descriptors_and_is_unhealthy(
    void **state)
{
    (void)state;
    in_child(child_engine_backs_off_and_health_says_so, 94, 94);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_open_raises_the_soft_limit_to_the_hard_one),
        T(test_acquire_past_the_descriptor_budget_is_refused_naming_the_limit),
        T(test_emfile_fails_the_rest_of_the_batch_at_once_and_clears_after),
        T(test_the_engine_backs_off_acquires_refused_for_descriptors_and_is_unhealthy),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
