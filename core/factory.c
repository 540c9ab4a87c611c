/* Factories: options and URI → backend state + engine thread; statistics and
 * current-master reads for any resource. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine.h"
#include "error.h"
#include "registry.h"

#define DEFAULT_TTL_MS 10000
#define DEFAULT_RETRY_MS 1000
#define DEFAULT_DRIFT 0.01
#define MIN_TTL_MS REIGN_TTL_MIN_MS
#define MAX_TTL_MS REIGN_TTL_MAX_MS
#define INITIAL_BUCKETS 1024

static char *default_instance_id(void)
{
    char host[256] = "localhost";
    if (gethostname(host, sizeof host - 1) != 0)
        strcpy(host, "localhost");
    host[sizeof host - 1] = '\0';
    uint32_t rnd = 0;
    if (getrandom(&rnd, sizeof rnd, GRND_NONBLOCK) != (ssize_t)sizeof rnd)
        rnd = (uint32_t)reign_clock_now_ns() ^ (uint32_t)getpid() * 2654435761u;
    return reign_strdup_printf("%s:%ld:%08x", host, (long)getpid(), rnd);
}

const char *reign_default_uri(void)
{
    /* Computed per call (cheap): a test may change uid between calls. */
    static _Thread_local char buf[64];
    struct stat st;
    if (geteuid() == 0 && stat("/run/lock", &st) == 0 && S_ISDIR(st.st_mode))
        return "file:///run/lock/reign";
    snprintf(buf, sizeof buf, "file:///tmp/reign-%ld", (long)getuid());
    return buf;
}

static int check_options(const reign_options *o)
{
    if (o->version == 0 || o->version > REIGN_OPTIONS_VERSION)
        return reign_error_set(REIGN_EINVAL,
                               "options: reign_options.version %u unsupported (use "
                               "REIGN_OPTIONS_INIT; this library knows 1..%d)",
                               o->version, REIGN_OPTIONS_VERSION);
    if (o->ttl_ms < 0)
        return reign_error_set(REIGN_EINVAL, "options: ttl_ms %lld is negative",
                               (long long)o->ttl_ms);
    if (o->retry_interval_ms < 0)
        return reign_error_set(REIGN_EINVAL, "options: retry_interval_ms %lld is negative",
                               (long long)o->retry_interval_ms);
    if (o->op_timeout_ms < 0)
        return reign_error_set(REIGN_EINVAL, "options: op_timeout_ms %lld is negative",
                               (long long)o->op_timeout_ms);
    if (o->safety_margin_ms < 0)
        return reign_error_set(REIGN_EINVAL, "options: safety_margin_ms %lld is negative",
                               (long long)o->safety_margin_ms);
    if (!(o->max_drift >= 0.0 && o->max_drift < 0.5))
        return reign_error_set(REIGN_EINVAL, "options: max_drift %g must be in [0, 0.5)",
                               o->max_drift);
    if (o->instance_id != NULL &&
        (o->instance_id[0] == '\0' || strlen(o->instance_id) > REIGN_INSTANCE_ID_MAX))
        return reign_error_set(REIGN_EINVAL, "options: instance_id must be 1..%d bytes",
                               REIGN_INSTANCE_ID_MAX);
    if (o->metadata != NULL && strlen(o->metadata) > REIGN_METADATA_MAX)
        return reign_error_set(REIGN_EINVAL, "options: metadata longer than %d bytes",
                               REIGN_METADATA_MAX);
    return REIGN_OK;
}

/* Settle TTL, timeouts and the belief window from options and URI. */
static int settle_timing(reign_factory *f, const reign_options *o)
{
    int64_t ttl = DEFAULT_TTL_MS;
    const char *uri_ttl = reign_backend_param(&f->cfg, "ttl");
    if (uri_ttl != NULL && reign_parse_duration_ms(uri_ttl, &ttl) != REIGN_OK)
        return reign_error_set(REIGN_EURI,
                               "uri %s: ttl=%s is not a positive duration (e.g. 500, 500ms, 10s)",
                               f->uri.redacted, uri_ttl);
    if (o->ttl_ms > 0)
        ttl = o->ttl_ms;
    if (ttl < MIN_TTL_MS || ttl > MAX_TTL_MS)
        return reign_error_set(REIGN_EINVAL, "options: ttl %lld ms is outside %d ms .. 24 h",
                               (long long)ttl, MIN_TTL_MS);
    double drift = o->max_drift > 0 ? o->max_drift : DEFAULT_DRIFT;
    int64_t margin = o->safety_margin_ms > 0 ? o->safety_margin_ms : (ttl / 20 < 100 ? ttl / 20 : 100);
    int64_t belief_ms = (int64_t)((double)ttl * (1.0 - drift)) - margin;
    if (belief_ms < ttl / 2)
        return reign_error_set(REIGN_EINVAL,
                               "options: safety_margin_ms %lld leaves less than half of ttl %lld ms "
                               "to believe in",
                               (long long)margin, (long long)ttl);
    f->ttl_ms = ttl;
    f->belief_ns = (reign_mono_ns)((double)ttl * (1.0 - drift) * (double)REIGN_NS_PER_MS) -
                   margin * REIGN_NS_PER_MS;
#ifdef REIGN_CHAOS_BROKEN_DEADLINE
    f->belief_ns = ttl * 3 / 2 * REIGN_NS_PER_MS; /* UNSAFE, past the lease: chaos test only */
#endif
    f->renew_ns = ttl * REIGN_NS_PER_MS / 3;
    f->retry_ms = o->retry_interval_ms > 0 ? o->retry_interval_ms : DEFAULT_RETRY_MS;
    f->op_timeout_ms = o->op_timeout_ms > 0 ? o->op_timeout_ms : (ttl / 3 < 5000 ? ttl / 3 : 5000);
    f->chunk_ops = ENGINE_CHUNK_OPS;
    return REIGN_OK;
}

/* Refuse parameters the backend does not declare, before it connects. */
static int check_declared_params(reign_factory *f)
{
    if (f->backend->params == NULL)
        return REIGN_OK;
    for (size_t i = 0; i < f->uri.n_params; i++) {
        const char *name = f->uri.params[i].name;
        bool known = strcmp(name, "ttl") == 0;
        for (const char *const *p = f->backend->params; *p != NULL && !known; p++)
            known = strcmp(*p, name) == 0;
        if (!known)
            return reign_error_set(REIGN_EURI, "uri %s: unknown query parameter '%s' for %s://",
                                   f->uri.redacted, name, f->uri.scheme);
    }
    return REIGN_OK;
}

static void factory_free(reign_factory *f)
{
    if (f == NULL)
        return;
    if (f->state != NULL)
        f->backend->close(f->state);
    reign_uri_free(&f->uri);
    free(f->instance_id);
    free(f->metadata);
    free(f->buckets);
    free(f->events);
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->changed);
    free(f);
}

/* Open a factory over `backend` (NULL: the one the URI's scheme names),
 * with its engine thread unless stepped. */
static int factory_open(const reign_backend *backend, const char *uri,
                        const reign_options *options, bool stepped, reign_factory **out)
{
    reign_options defaults = REIGN_OPTIONS_INIT;
    const reign_options *o = options != NULL ? options : &defaults;
    reign_factory *f = NULL;
    int rc;

    reign_error_clear();
    if (out == NULL)
        return reign_error_set(REIGN_EINVAL, "factory_open: out is NULL");
    if ((rc = check_options(o)) != REIGN_OK)
        return rc;
    if (uri != NULL && uri[0] == '\0')
        return reign_error_set(REIGN_EURI, "uri: empty URI (pass NULL for $REIGN_URI or the "
                                           "default, %s)", reign_default_uri());
    if (uri == NULL)
        uri = getenv("REIGN_URI");
    if (uri == NULL || uri[0] == '\0')
        uri = reign_default_uri();

    f = calloc(1, sizeof *f);
    if (f == NULL) {
        rc = reign_error_set(REIGN_ENOMEM, "factory_open: out of memory");
        goto out;
    }
    f->wake_fd = -1;
    f->observe_last_fd = -2; /* core/observe.c: notify_fd never asked yet */
    pthread_mutex_init(&f->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->changed, &ca);
    pthread_condattr_destroy(&ca);
    f->logger.fn = o->logger;
    f->logger.payload = o->logger_payload;

    if ((rc = reign_uri_parse(uri, &f->uri)) != REIGN_OK)
        goto out;
    if (backend == NULL) {
        rc = reign_registry_find(f->uri.scheme, &f->backend);
    } else if ((rc = reign_registry_check(backend)) == REIGN_OK) {
        f->backend = backend;
        if (!reign_registry_serves(backend, f->uri.scheme))
            rc = reign_error_set(REIGN_EURI, "uri %s: scheme '%s://' is not the backend's (%s://)",
                                 f->uri.redacted, f->uri.scheme, backend->scheme);
    }
    if (rc != REIGN_OK)
        goto out;
    f->instance_id = o->instance_id != NULL ? strdup(o->instance_id) : default_instance_id();
    f->metadata = strdup(o->metadata != NULL ? o->metadata : "");
    f->n_buckets = INITIAL_BUCKETS;
    f->buckets = calloc(f->n_buckets, sizeof *f->buckets);
    if (f->instance_id == NULL || f->metadata == NULL || f->buckets == NULL) {
        rc = reign_error_set(REIGN_ENOMEM, "factory_open: out of memory");
        goto out;
    }

    f->cfg = (reign_backend_config){
        .version = REIGN_BACKEND_VERSION, .uri = f->uri.raw, .uri_redacted = f->uri.redacted,
        .scheme = f->uri.scheme, .user = f->uri.user, .password = f->uri.password,
        .host = f->uri.host, .port = f->uri.port, .path = f->uri.path, .params = f->uri.params,
        .n_params = f->uri.n_params, .instance_id = f->instance_id, .metadata = f->metadata,
        .logger = o->logger, .logger_payload = o->logger_payload};
    if ((rc = settle_timing(f, o)) != REIGN_OK)
        goto out;
    f->cfg.ttl_ms = f->ttl_ms;
    f->cfg.op_timeout_ms = f->op_timeout_ms;

    if ((rc = check_declared_params(f)) != REIGN_OK)
        goto out;
    reign_error_clear();
    void *state = NULL;
    f->cfg.open_deadline_ns = reign_clock_now_ns() + f->op_timeout_ms * REIGN_NS_PER_MS;
    rc = f->backend->open(&f->cfg, &state);
    if (rc != REIGN_OK) {
        if (reign_last_error()[0] == '\0')
            reign_error_set(rc, "%s: cannot open %s", f->uri.scheme, f->uri.redacted);
        /* A typo in a parameter may be why: say so rather than hide it. */
        for (size_t i = 0; i < f->uri.n_params; i++) {
            if (f->uri.params[i].used || strcmp(f->uri.params[i].name, "ttl") == 0)
                continue;
            char why[1024];
            snprintf(why, sizeof why, "%s", reign_last_error());
            reign_error_set(rc, "%s (and the URI has a parameter %s does not know: '%s')", why,
                            f->uri.scheme, f->uri.params[i].name);
            break;
        }
        goto out;
    }
    f->state = state;
    if ((rc = reign_uri_check_all_used(&f->uri)) != REIGN_OK)
        goto out;
    f->metrics.opened_at = f->metrics.last_ok_batch = reign_clock_now_ns();
    f->stepped = stepped;
    if (!stepped && (rc = reign_engine_start(f)) != REIGN_OK)
        goto out;
    reign_log(&f->logger, REIGN_LOG_INFO, "factory", "opened %s as %s (ttl %lld ms)",
              f->uri.redacted, f->instance_id, (long long)f->ttl_ms);
    *out = f;
    f = NULL;
out:
    factory_free(f);
    return rc;
}

int reign_factory_open(const char *uri, const reign_options *options, reign_factory **out)
{
    return factory_open(NULL, uri, options, false, out);
}

int reign_factory_open_backend(const reign_backend *backend, const char *uri,
                               const reign_options *options, reign_factory **out)
{
    reign_error_clear();
    if (backend == NULL)
        return reign_error_set(REIGN_EINVAL, "factory_open_backend: backend is NULL");
    return factory_open(backend, uri, options, false, out);
}

int reign_engine_open_stepped(const reign_backend *backend, const char *uri,
                              const reign_options *options, reign_factory **out)
{
    return factory_open(backend, uri, options, true, out);
}

int reign_factory_close(reign_factory *f)
{
    if (f == NULL)
        return REIGN_OK;
    reign_factory_leave(f); /* its slot election must go before the check */
    pthread_mutex_lock(&f->mu);
    size_t open_elections = f->n_elections;
    bool observed = f->observers != NULL;
    pthread_mutex_unlock(&f->mu);
    if (observed)
        return reign_error_set(REIGN_EBUSY, "factory_close: observers still open; free them first");
    if (open_elections > 0)
        return reign_error_set(REIGN_EBUSY, "factory_close: %zu election(s) still open; close them first",
                               open_elections);
    reign_engine_stop(f);
    factory_free(f);
    return REIGN_OK;
}

const char *reign_factory_instance_id(const reign_factory *f)
{
    return f->instance_id;
}

const char *reign_factory_uri(const reign_factory *f)
{
    return f->uri.redacted;
}

int64_t reign_factory_ttl_ms(const reign_factory *f)
{
    return f->ttl_ms;
}

int reign_factory_stats(reign_factory *f, reign_stats *out)
{
    if (f == NULL || out == NULL)
        return reign_error_set(REIGN_EINVAL, "factory_stats: NULL argument");
    pthread_mutex_lock(&f->mu);
    *out = f->stats;
    pthread_mutex_unlock(&f->mu);
    return REIGN_OK;
}

static int check_reader(reign_factory *f, const void *out, const char *what)
{
    if (f == NULL || out == NULL)
        return reign_error_set(REIGN_EINVAL, "%s: NULL argument", what);
    if (reign_engine_is_engine_thread(f))
        return reign_error_set(REIGN_ESTATE, "%s: not from a reign callback (it would wait for "
                                             "the thread running the callback)", what);
    return REIGN_OK;
}

int reign_factory_current_master(reign_factory *f, const char *resource_id, reign_master **out)
{
    int rc = check_reader(f, out, "current_master");
    if (rc != REIGN_OK || (rc = reign_resource_id_check(resource_id)) != REIGN_OK)
        return rc;
    read_request r = {.resource = resource_id, .resource_len = strlen(resource_id)};
    reign_engine_read_many(f, &r, 1);
    if (r.status == REIGN_OK) {
        *out = r.master;
        return REIGN_OK;
    }
    char shown[200];
    reign_printable(resource_id, strlen(resource_id), shown, sizeof shown);
    if (r.status == REIGN_ENOMASTER)
        rc = reign_error_set(REIGN_ENOMASTER, "%s: no master", shown);
    else
        rc = reign_error_set(r.status, "current_master %s: %s", shown,
                             r.error != NULL ? r.error : reign_status_str(r.status));
    free(r.error);
    return rc;
}

int reign_factory_read_masters(reign_factory *f, const char *const *ids, size_t n,
                               reign_master **out)
{
    int rc = check_reader(f, out, "read_masters");
    if (rc != REIGN_OK)
        return rc;
    if (n == 0)
        return REIGN_OK;
    if (ids == NULL)
        return reign_error_set(REIGN_EINVAL, "read_masters: ids is NULL");
    for (size_t i = 0; i < n; i++)
        if ((rc = reign_resource_id_check(ids[i])) != REIGN_OK)
            return rc;
    read_request *reqs = calloc(n, sizeof *reqs);
    if (reqs == NULL)
        return reign_error_set(REIGN_ENOMEM, "read_masters: out of memory");
    for (size_t i = 0; i < n; i++)
        reqs[i] = (read_request){.resource = ids[i], .resource_len = strlen(ids[i])};
    reign_engine_read_many(f, reqs, n);
    for (size_t i = 0; i < n; i++) {
        if (reqs[i].status != REIGN_OK && reqs[i].status != REIGN_ENOMASTER && rc == REIGN_OK) {
            char shown[200];
            reign_printable(ids[i], strlen(ids[i]), shown, sizeof shown);
            rc = reign_error_set(reqs[i].status, "read_masters %s: %s", shown,
                                 reqs[i].error != NULL ? reqs[i].error
                                                       : reign_status_str(reqs[i].status));
        }
        free(reqs[i].error);
    }
    for (size_t i = 0; i < n; i++) {
        if (rc == REIGN_OK) {
            out[i] = reqs[i].master;
        } else {
            reign_master_free(reqs[i].master);
        }
    }
    free(reqs);
    return rc;
}

void reign_master_free(reign_master *m)
{
    if (m == NULL)
        return;
    free(m->instance_id);
    free(m->metadata);
    free(m);
}
