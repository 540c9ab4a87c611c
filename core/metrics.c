/* Metrics in the Prometheus text format and the health verdict, both read
 * from the engine's counters under the factory lock (copied, then written
 * without the lock: no I/O under a lock). */
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "error.h"
#include "members.h"

typedef struct held_term {
    char *resource;
    uint64_t term;
} held_term;

static int cmp_held(const void *a, const void *b)
{
    return strcmp(((const held_term *)a)->resource, ((const held_term *)b)->resource);
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s)
{
    size_t n;
    unsigned min;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        n = 2;
        min = 0x80;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        n = 3;
        min = 0x800;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        n = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    unsigned cp = s[0] & (0x7f >> n);
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0; /* also stops at the terminating NUL */
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* Label values must be UTF-8 with backslash, double quote and newline
 * escaped. Resource IDs are any bytes, so after Prometheus' own unescaping
 * a control byte or invalid UTF-8 byte reads as the four characters \xNN
 * and a literal backslash as two backslashes: a hostile ID can neither
 * break the format nor pass for another ID. */
static void write_label_value(FILE *out, const char *v)
{
    const unsigned char *c = (const unsigned char *)v;
    while (*c) {
        size_t n = utf8_len(c);
        if (*c == '\\')
            fputs("\\\\\\\\", out); /* "\\" once unescaped: never read as \xNN */
        else if (*c == '"')
            fputs("\\\"", out);
        else if (*c == '\n')
            fputs("\\n", out);
        else if (n == 0 || *c < 0x20 || *c == 0x7f)
            fprintf(out, "\\\\x%02x", *c);
        else
            fwrite(c, 1, n, out);
        c += n ? n : 1;
    }
}

static bool engine_acquire_failing(const engine_metrics *m, reign_mono_ns now)
{
    return m->last_acquire_error > m->last_acquire_answer &&
           now - m->last_acquire_error < 2 * (reign_mono_ns)ENGINE_ACQUIRE_BACKOFF_MAX_MS *
                                             REIGN_NS_PER_MS;
}

int reign_factory_health(reign_factory *f, reign_health *out)
{
    if (f == NULL || out == NULL)
        return reign_error_set(REIGN_EINVAL, "factory_health: NULL argument");
    pthread_mutex_lock(&f->mu);
    reign_mono_ns now = reign_clock_now_ns();
    engine_metrics m = f->metrics;
    size_t held = f->stats.masterships;
    pthread_mutex_unlock(&f->mu);
    reign_health h = {0};
    h.masterships = held;
    h.ms_since_backend_ok = (now - m.last_ok_batch) / REIGN_NS_PER_MS;
    h.ms_since_renew_ok = m.last_renew_ok ? (now - m.last_renew_ok) / REIGN_NS_PER_MS : -1;
    bool backend_ok = m.last_failed_batch <= m.last_ok_batch;
    h.last_error_status = backend_ok ? REIGN_OK : m.last_failed_status;
    bool renew_ok = held == 0 || (h.ms_since_renew_ok >= 0 && h.ms_since_renew_ok < f->ttl_ms);
    /* ACQUIREs refused while the backend answers (file:// out of
     * descriptors): the instance cannot take its share, so not healthy,
     * until one is answered or none has failed for a full backoff. */
    bool acquire_ok = !engine_acquire_failing(&m, now);
    if (backend_ok && !acquire_ok)
        h.last_error_status = m.last_acquire_status;
    h.healthy = backend_ok && renew_ok && acquire_ok;
    *out = h;
    return REIGN_OK;
}

static int collect_terms(reign_factory *f, held_term **out, size_t *n_out, size_t *n_held)
{
    size_t cap = f->stats.masterships, n = 0;
    held_term *terms = calloc(cap ? cap : 1, sizeof *terms);
    if (terms == NULL)
        return REIGN_ENOMEM;
    for (reign_election *e = f->elections; e && n < cap; e = e->next) {
        /* The core's own elections (member slots) are not resources. */
        if (!e->master || e->internal)
            continue;
        terms[n].resource = strdup(e->resource);
        if (terms[n].resource == NULL)
            break;
        terms[n++].term = e->held_term;
    }
    *out = terms;
    *n_out = n;
    *n_held = n;
    return REIGN_OK;
}

int reign_metrics_write(reign_factory *f, FILE *out)
{
    static const char *const ops[] = {NULL, "acquire", "renew", "release", "read"};
    if (f == NULL || out == NULL)
        return reign_error_set(REIGN_EINVAL, "metrics_write: NULL argument");
    held_term *terms = NULL;
    size_t n_terms = 0, n_held = 0;
    pthread_mutex_lock(&f->mu);
    reign_stats st = f->stats;
    engine_metrics m = f->metrics;
    int rc = collect_terms(f, &terms, &n_terms, &n_held);
    pthread_mutex_unlock(&f->mu);
    if (rc != REIGN_OK)
        return reign_error_set(rc, "metrics_write: out of memory");
    qsort(terms, n_terms, sizeof *terms, cmp_held);
    reign_health h;
    reign_factory_health(f, &h);
    const char *b = f->uri.scheme;

    fprintf(out, "# HELP reign_masterships Resources this instance is master of.\n"
                 "# TYPE reign_masterships gauge\nreign_masterships{backend=\"%s\"} %zu\n",
            b, n_held);
    fprintf(out, "# HELP reign_transitions_total Mastership changes.\n"
                 "# TYPE reign_transitions_total counter\n"
                 "reign_transitions_total{backend=\"%s\",kind=\"gained\"} %llu\n"
                 "reign_transitions_total{backend=\"%s\",kind=\"lost\"} %llu\n",
            b, (unsigned long long)st.gained, b, (unsigned long long)st.lost);
    uint64_t counts[] = {0, st.ops_acquire, st.ops_renew, st.ops_release, st.ops_read};
    fputs("# HELP reign_ops_total Lease operations sent to the backend.\n"
          "# TYPE reign_ops_total counter\n", out);
    for (int k = REIGN_OP_ACQUIRE; k <= REIGN_OP_READ; k++)
        fprintf(out, "reign_ops_total{backend=\"%s\",op=\"%s\"} %llu\n", b, ops[k],
                (unsigned long long)counts[k]);
    fputs("# HELP reign_op_errors_total Lease operations that failed (outcome unknown).\n"
          "# TYPE reign_op_errors_total counter\n", out);
    for (int k = REIGN_OP_ACQUIRE; k <= REIGN_OP_READ; k++)
        fprintf(out, "reign_op_errors_total{backend=\"%s\",op=\"%s\"} %llu\n", b, ops[k],
                (unsigned long long)m.op_errors[k]);
    fprintf(out, "# HELP reign_batches_total Backend round trips (batches).\n"
                 "# TYPE reign_batches_total counter\nreign_batches_total{backend=\"%s\"} %llu\n",
            b, (unsigned long long)st.batches);
    fprintf(out, "# HELP reign_notifications_total Wake-ups from the backend's notifications.\n"
                 "# TYPE reign_notifications_total counter\n"
                 "reign_notifications_total{backend=\"%s\"} %llu\n",
            b, (unsigned long long)st.notifications);
    fputs("# HELP reign_batch_duration_seconds Round-trip time of one batch.\n"
          "# TYPE reign_batch_duration_seconds histogram\n", out);
    uint64_t cum = 0;
    for (int i = 0; i < ENGINE_LATENCY_BUCKETS; i++) {
        cum += m.latency_buckets[i];
        fprintf(out, "reign_batch_duration_seconds_bucket{backend=\"%s\",le=\"%g\"} %llu\n", b,
                reign_engine_latency_bounds[i], (unsigned long long)cum);
    }
    cum += m.latency_buckets[ENGINE_LATENCY_BUCKETS];
    fprintf(out, "reign_batch_duration_seconds_bucket{backend=\"%s\",le=\"+Inf\"} %llu\n", b,
            (unsigned long long)cum);
    fprintf(out, "reign_batch_duration_seconds_sum{backend=\"%s\"} %.6f\n", b, m.latency_sum_s);
    fprintf(out, "reign_batch_duration_seconds_count{backend=\"%s\"} %llu\n", b,
            (unsigned long long)m.latency_count);
    fprintf(out, "# HELP reign_seconds_since_renew Seconds since the last successful renewal "
                 "(NaN if none yet).\n# TYPE reign_seconds_since_renew gauge\n");
    if (h.ms_since_renew_ok >= 0)
        fprintf(out, "reign_seconds_since_renew{backend=\"%s\"} %.3f\n", b,
                (double)h.ms_since_renew_ok / 1000.0);
    else
        fprintf(out, "reign_seconds_since_renew{backend=\"%s\"} NaN\n", b);
    fprintf(out, "# HELP reign_healthy 1 while the backend answers and renewals are on time.\n"
                 "# TYPE reign_healthy gauge\nreign_healthy{backend=\"%s\"} %d\n",
            b, h.healthy ? 1 : 0);
    fprintf(out, "# HELP reign_acquire_failing 1 while ACQUIREs err though the backend "
                 "answers (e.g. file:// out of descriptors).\n"
                 "# TYPE reign_acquire_failing gauge\nreign_acquire_failing{backend=\"%s\"} %d\n",
            b, engine_acquire_failing(&m, reign_clock_now_ns()) ? 1 : 0);
    fprintf(out, "# HELP reign_term Fencing term of each held resource (first %d by name).\n"
                 "# TYPE reign_term gauge\n",
            REIGN_METRICS_MAX_TERMS);
    for (size_t i = 0; i < n_terms && i < REIGN_METRICS_MAX_TERMS; i++) {
        fputs("reign_term{resource=\"", out);
        write_label_value(out, terms[i].resource);
        fprintf(out, "\"} %llu\n", (unsigned long long)terms[i].term);
    }
    fprintf(out, "# HELP reign_term_series_dropped Held resources left out of reign_term.\n"
                 "# TYPE reign_term_series_dropped gauge\nreign_term_series_dropped %zu\n",
            n_held > REIGN_METRICS_MAX_TERMS ? n_held - REIGN_METRICS_MAX_TERMS : 0);
    for (size_t i = 0; i < n_terms; i++)
        free(terms[i].resource);
    free(terms);
    return ferror(out) ? reign_error_set(REIGN_EIO, "metrics_write: write failed") : REIGN_OK;
}
