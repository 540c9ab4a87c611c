/* The mem:// backend's vtable: reads the store name from the URI, gives each
 * state an eventfd for release notifications and hands batches to its store
 * (mem_store.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "mem_internal.h"

/* The store name: "mem://NAME" gives NAME as host; "mem:///NAME" or
 * "mem:NAME" give it as the path. Sets *out or a message. */
static int parse_name(const reign_backend_config *cfg, const char **out)
{
    const char *host = cfg->host != NULL ? cfg->host : "";
    const char *path = cfg->path != NULL ? cfg->path : "";
    const char *shown = cfg->uri_redacted != NULL ? cfg->uri_redacted : "mem://";

    if (cfg->user != NULL || cfg->password != NULL || cfg->port != 0) {
        reign_backend_error("mem: %s: a mem URI takes no user, password or port "
                            "(use mem://NAME)", shown);
        return REIGN_EURI;
    }
    if (host[0] != '\0') {
        /* A trailing slash (mem://NAME/) is harmless; more path is a typo. */
        if (path[0] != '\0' && strcmp(path, "/") != 0) {
            reign_backend_error("mem: %s: unexpected path \"%s\" after the store name "
                                "(use mem://NAME)", shown, path);
            return REIGN_EURI;
        }
        *out = host;
        return REIGN_OK;
    }
    *out = path[0] == '/' ? path + 1 : path;
    return REIGN_OK;
}

static int mem_open(const reign_backend_config *cfg, void **state_out)
{
    mem_client *c = NULL;
    const char *name = NULL;
    int rc = parse_name(cfg, &name);
    if (rc != REIGN_OK) {
        goto out;
    }
    if (cfg->instance_id == NULL || cfg->instance_id[0] == '\0') {
        reign_backend_error("mem: store %s: empty instance ID", name);
        rc = REIGN_EINVAL;
        goto out;
    }
    if (cfg->ttl_ms <= 0) {
        reign_backend_error("mem: store %s: lease TTL must be positive, not %lld ms", name,
                            (long long)cfg->ttl_ms);
        rc = REIGN_EINVAL;
        goto out;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        reign_backend_error("mem: store %s: out of memory", name);
        rc = REIGN_ENOMEM;
        goto out;
    }
    c->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (c->event_fd < 0) {
        reign_backend_error("mem: store %s: eventfd: %s", name, strerror(errno));
        rc = REIGN_EBACKEND;
        goto out;
    }
    c->instance_id = cfg->instance_id;
    c->metadata = cfg->metadata != NULL ? cfg->metadata : "";
    c->ttl_ms = cfg->ttl_ms;
    rc = reign_mem_store_attach(c, name);
    if (rc != REIGN_OK) {
        goto out;
    }
    *state_out = c;
    c = NULL;
out:
    if (c != NULL) {
        if (c->event_fd >= 0) {
            close(c->event_fd);
        }
        free(c);
    }
    return rc;
}

static int mem_execute(void *state, reign_batch *b)
{
    return reign_mem_store_execute(state, b->ops, b->n_ops, b->deadline_ns);
}

static int mem_notify_fd(void *state)
{
    const mem_client *c = state;
    return c->event_fd;
}

static void mem_notify_drain(void *state, reign_released_fn released, void *ctx)
{
    reign_mem_store_drain(state, released, ctx);
}

static void mem_close(void *state)
{
    mem_client *c = state;
    /* Detach first: once unlinked no other state can write to the fd. */
    reign_mem_store_detach(c);
    close(c->event_fd);
    free(c);
}

static int mem_observe(void *state, int on)
{
    reign_mem_store_observe(state, on != 0);
    return REIGN_OK;
}

static int mem_set_metadata(void *state, const char *resource, size_t len, uint64_t term,
                            const char *metadata, int64_t deadline_ns)
{
    return reign_mem_store_set_metadata(state, resource, len, term, metadata, deadline_ns);
}

static const char *const mem_params[] = {NULL};

const reign_backend reign_backend_mem = {
    REIGN_BACKEND_INIT,
    .scheme = "mem",
    .scheme_alt = NULL,
    .open = mem_open,
    .execute = mem_execute,
    .notify_fd = mem_notify_fd,
    .notify_drain = mem_notify_drain,
    .close = mem_close,
    .params = mem_params,
    .observe = mem_observe,
    .set_metadata = mem_set_metadata,
};
