/* reign_bench: reign's benchmarks as one program with a subcommand each.
 * Each prints a table with medians and percentiles; with --out FILE it also
 * appends result rows (TSV: backend, key, value, unit, n, note) that
 * scripts/bench.sh gathers into docs/benchmarks.md. Benchmarks are not
 * tests: nothing here fails on speed. */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

static void usage(void)
{
    fputs("usage: reign_bench COMMAND --backend NAME --uri URI [options] [args]\n"
          "commands:\n"
          "  rtt        one round trip to the backend's server, without reign\n"
          "  handoff    graceful handoff between two instances\n"
          "  failover   crash failover: SIGKILL the master process\n"
          "  scale      many resources over 3 processes with the shard manager\n"
          "  shard      shard handover: add/remove 1,000, drain one of 3 (move latency)\n"
          "  is-master  ns per reign_election_is_master from 4 threads\n"
          "  peer       reign on etcd beside `etcdctl elect` (etcd only)\n"
          "  observe    observer latency: master change -> observer callback\n"
          "  stop       graceful stop time with 1,000 / 10,000 / 100,000 held resources\n"
          "  fleet [N]  N instances (default 65) start at once: time until even, moves\n"
          "  s3-peer    S3 requests/min of a standby with and without peer mode (s3 only)\n"
          "options:\n"
          "  --out FILE       append result rows (TSV) to FILE\n"
          "  --quick          fewer repetitions, shorter windows\n"
          "  --reps N         repetitions (default per command)\n"
          "  --budget S       stop repeating after S seconds\n"
          "  --ttl MS         lease TTL\n"
          "  --resources N    scale: resource count (default 10000); stop: the largest N\n"
          "  --window MS      scale: steady-state window; s3-peer: stable window\n"
          "  --method M       handoff: wait (default), poll or spin\n"
          "  --etcdctl PATH   peer: the etcdctl to run\n"
          "  --peer-crash     peer: also crash failover (etcdctl's TTL is 60 s)\n",
          stderr);
    exit(2);
}

static long parse_long(const char *flag, const char *v)
{
    char *end = NULL;
    long n = strtol(v, &end, 10);
    if (end == v || *end != '\0' || n < 0)
        bench_die("%s wants a non-negative number, not '%s'", flag, v);
    return n;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    const char *cmd = argv[1];
    bench_opts o = {.backend = NULL};
    int i = 2;
    for (; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = true;
        if (strcmp(a, "--quick") == 0) {
            o.quick = true;
            takes = false;
        } else if (strcmp(a, "--peer-crash") == 0) {
            o.peer_crash = true;
            takes = false;
        } else if (strncmp(a, "--", 2) != 0) {
            break;
        } else if (v == NULL) {
            bench_die("%s needs a value", a);
        } else if (strcmp(a, "--backend") == 0) {
            o.backend = v;
        } else if (strcmp(a, "--uri") == 0) {
            o.uri = v;
        } else if (strcmp(a, "--out") == 0) {
            o.out = v;
        } else if (strcmp(a, "--reps") == 0) {
            o.reps = parse_long(a, v);
        } else if (strcmp(a, "--budget") == 0) {
            o.budget_s = (double)parse_long(a, v);
        } else if (strcmp(a, "--ttl") == 0) {
            o.ttl_ms = parse_long(a, v);
        } else if (strcmp(a, "--resources") == 0) {
            o.resources = parse_long(a, v);
        } else if (strcmp(a, "--window") == 0) {
            o.window_ms = parse_long(a, v);
        } else if (strcmp(a, "--method") == 0) {
            if (strcmp(v, "poll") != 0 && strcmp(v, "spin") != 0 && strcmp(v, "wait") != 0)
                bench_die("--method is poll, spin or wait, not '%s'", v);
            o.method = v;
        } else if (strcmp(a, "--etcdctl") == 0) {
            o.etcdctl = v;
        } else {
            bench_die("unknown option %s", a);
        }
        if (takes)
            i++;
    }
    o.argc = argc - i;
    o.argv = argv + i;
    if (o.uri == NULL)
        bench_die("%s: --uri is required", cmd);
    if (o.backend == NULL)
        o.backend = "?";
    if (bench_results_open(o.out) != 0)
        return 1;

    int rc;
    if (strcmp(cmd, "rtt") == 0)
        rc = bench_rtt(&o);
    else if (strcmp(cmd, "handoff") == 0)
        rc = bench_handoff(&o);
    else if (strcmp(cmd, "failover") == 0)
        rc = bench_failover(&o);
    else if (strcmp(cmd, "scale") == 0)
        rc = bench_scale(&o);
    else if (strcmp(cmd, "shard") == 0)
        rc = bench_shard(&o);
    else if (strcmp(cmd, "is-master") == 0)
        rc = bench_is_master(&o);
    else if (strcmp(cmd, "peer") == 0)
        rc = bench_peer(&o);
    else if (strcmp(cmd, "observe") == 0)
        rc = bench_observe(&o);
    else if (strcmp(cmd, "stop") == 0)
        rc = bench_stop(&o);
    else if (strcmp(cmd, "fleet") == 0)
        rc = bench_fleet(&o);
    else if (strcmp(cmd, "s3-peer") == 0)
        rc = bench_s3peer(&o);
    else if (strcmp(cmd, "_s3peer-child") == 0)
        rc = bench_s3peer_child(&o);
    else if (strcmp(cmd, "_failover-child") == 0)
        rc = bench_failover_child(&o);
    else if (strcmp(cmd, "_scale-child") == 0)
        rc = bench_scale_child(&o);
    else if (strcmp(cmd, "_elect-child") == 0)
        rc = bench_elect_child(&o);
    else
        usage();
    bench_results_close();
    return rc;
}
