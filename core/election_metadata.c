/* reign_election_set_metadata: new metadata for a mastership held now
 * (etcd's Proclaim), through the backend's optional set_metadata (backend.h
 * version 2), run on the engine thread like every backend call. */
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "error.h"

typedef struct set_md_args {
    reign_election *e;
    uint64_t term;
    const char *metadata;
} set_md_args;

static void run_set_metadata(reign_factory *f, engine_call *call)
{
    set_md_args *a = call->arg;
    reign_error_clear();
    call->status = f->backend->set_metadata(f->state, a->e->resource, a->e->resource_len, a->term,
                                            a->metadata,
                                            reign_clock_now_ns() + f->op_timeout_ms * REIGN_NS_PER_MS);
    if (call->status != REIGN_OK) {
        const char *msg = reign_last_error();
        call->error = strdup(msg[0] != '\0' ? msg : reign_status_str(call->status));
    }
}

int reign_election_set_metadata(reign_election *e, const char *metadata)
{
    if (e == NULL || metadata == NULL)
        return reign_error_set(REIGN_EINVAL, "set_metadata: NULL argument");
    reign_factory *f = e->factory;
    size_t len = strlen(metadata);
    if (len > REIGN_METADATA_MAX)
        return reign_error_set(REIGN_EINVAL, "set_metadata %s: metadata of %zu bytes (at most %d)",
                               e->shown, len, REIGN_METADATA_MAX);
    const reign_backend *b = f->backend;
    if (b->set_metadata == NULL)
        return reign_error_set(REIGN_ENOTSUP, "set_metadata %s: the %s backend cannot change "
                                              "metadata while master", e->shown, b->scheme);
    if (reign_engine_is_engine_thread(f))
        return reign_error_set(REIGN_ESTATE, "set_metadata %s: not from a reign callback (it "
                                             "would wait for the thread running the callback)",
                               e->shown);
    uint64_t term = 0;
    if (reign_election_term(e, &term) != REIGN_OK)
        return reign_error_set(REIGN_ENOTMASTER, "set_metadata %s: not master", e->shown);
    set_md_args a = {e, term, metadata};
    engine_call call = {.fn = run_set_metadata, .arg = &a};
    reign_engine_run_call(f, &call);
    int rc = REIGN_OK;
    if (call.status != REIGN_OK)
        rc = reign_error_set(call.status, "set_metadata %s (term %llu): %s", e->shown,
                             (unsigned long long)term, call.error != NULL ? call.error : "failed");
    free(call.error);
    return rc;
}
