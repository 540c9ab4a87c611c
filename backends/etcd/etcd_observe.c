/* The etcd:// backend for observers (backend.h version 2): observe turns
 * PUT events on in the prefix watch (etcd_watch.c), set_metadata rewrites
 * the value of a key we hold — one txn comparing the key's create_revision
 * (the term) and lease (ours), then a put with the same lease, which keeps
 * create_revision: the term does not move, and watchers see a PUT. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd_codec.h"
#include "etcd_internal.h"
#include "etcd_json.h"

int reign_etcd_observe(void *state, int on)
{
    etcd_state *s = state;
    if (s->watch.multi == NULL)
        return REIGN_ENOTSUP; /* no watch at all (epoll/timerfd failed at open) */
    reign_etcd_watch_set_observing(s, on != 0);
    return REIGN_OK;
}

int reign_etcd_set_metadata(void *state, const char *resource, size_t len, uint64_t term,
                            const char *metadata, int64_t deadline_ns)
{
    etcd_state *s = state;
    char shown[200];
    int rc = REIGN_ENOMEM;
    char *key = NULL, *key64 = NULL, *value = NULL, *value64 = NULL;
    json_t *body = NULL;
    etcd_req r = {.path = "/kv/txn"};
    etcd_req *rp = &r;
    reign_printable(resource, len, shown, sizeof shown);
    if (s->lease_id == 0) {
        reign_backend_error("etcd: set_metadata %s: no lease of ours (%s)", shown,
                            s->cfg->uri_redacted);
        return REIGN_ENOTMASTER;
    }
    size_t klen = 0, vlen = 0;
    key = reign_etcd_key(s->set.prefix, resource, len, &klen);
    value = reign_etcd_value_encode(s->cfg->instance_id, metadata, &vlen);
    key64 = key != NULL ? reign_etcd_b64_encode(key, klen) : NULL;
    value64 = value != NULL ? reign_etcd_b64_encode(value, vlen) : NULL;
    if (key64 == NULL || value64 == NULL)
        goto oom;
    char rev[24], lease[24];
    snprintf(rev, sizeof rev, "%" PRIu64, term);
    snprintf(lease, sizeof lease, "%" PRId64, s->lease_id);
    body = json_pack("{s:[{s:s, s:s, s:s, s:s}, {s:s, s:s, s:s, s:s}],"
                     " s:[{s:{s:s, s:s, s:s}}]}",
                     "compare", "key", key64, "target", "CREATE", "result", "EQUAL",
                     "create_revision", rev, "key", key64, "target", "LEASE", "result", "EQUAL",
                     "lease", lease, "success", "request_put", "key", key64, "value", value64,
                     "lease", lease);
    r.body = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    if (r.body == NULL)
        goto oom;
    reign_etcd_http_run(&s->http, &rp, 1, deadline_ns);
    rc = r.status;
    if (rc != REIGN_OK) {
        reign_backend_error("etcd: set_metadata %s: %s (%s)", shown, r.err, s->cfg->uri_redacted);
    } else if (!json_is_true(json_object_get(r.root, "succeeded"))) {
        reign_backend_error("etcd: set_metadata %s: the key of term %s is not ours (%s)", shown,
                            rev, s->cfg->uri_redacted);
        rc = REIGN_ENOTMASTER;
    }
    goto out;
oom:
    reign_backend_error("etcd: set_metadata %s: out of memory", shown);
    rc = REIGN_ENOMEM;
out:
    reign_etcd_req_clear(&r);
    json_decref(body);
    free(key);
    free(key64);
    free(value);
    free(value64);
    return rc;
}
