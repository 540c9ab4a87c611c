/* Private to the mem:// backend: the vtable the registry finds, and the
 * store (mem_store.c) that the vtable (mem_backend.c) drives. */
#ifndef REIGN_BACKENDS_MEM_MEM_INTERNAL_H
#define REIGN_BACKENDS_MEM_MEM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reign/backend.h"

extern const reign_backend reign_backend_mem;

struct mem_store;

/* One open backend state: one factory's place in a store. The strings are
 * the factory's config, which lives until close. */
typedef struct mem_client {
    struct mem_client *next;  /* in the store's client list, guarded by its lock */
    struct mem_store *store;  /* set by reign_mem_store_attach */
    const char *instance_id;  /* holder name written into leases */
    const char *metadata;     /* never NULL */
    int64_t ttl_ms;           /* > 0 */
    int event_fd;             /* eventfd, written when others release or expire */

    /* Resources that may have been freed since the last drain; guarded by
     * the store's lock. pending_all: too many or out of memory — "any". */
    struct mem_pending *pending;
    size_t n_pending, cap_pending;
    bool pending_all;
    bool kick;                /* event_fd is due a write at the end of the batch */
    bool observing;           /* also told of acquisitions and metadata (observe) */
} mem_client;

/* One entry of a client's pending list. */
typedef struct mem_pending {
    char *resource;
    size_t resource_len;
} mem_pending;

/* Join the store named `name` ("" = "default"), creating it if it is the
 * first client; the store lives until its last client detaches. REIGN_ENOMEM
 * or REIGN_EBACKEND with a message on failure, nothing attached. */
int reign_mem_store_attach(mem_client *client, const char *name);

/* Leave the store; frees it if this was the last client. */
void reign_mem_store_detach(mem_client *client);

/* Run a batch of lease operations on the client's store (see backend.h). */
int reign_mem_store_execute(mem_client *client, reign_op *ops, size_t n_ops, int64_t deadline_ns);

/* Reset the client's eventfd and report what may have been freed since the
 * last drain (see notify_drain in backend.h). Calls `released` without any
 * lock held. */
void reign_mem_store_drain(mem_client *client, reign_released_fn released, void *ctx);

/* Report acquisitions and metadata changes too, this client's included
 * (backend.h, observe), or stop. */
void reign_mem_store_observe(mem_client *client, bool on);

/* backend.h, set_metadata: REIGN_OK, REIGN_ENOTMASTER, or an injected
 * failure with a message. */
int reign_mem_store_set_metadata(mem_client *client, const char *resource, size_t len,
                                 uint64_t term, const char *metadata, int64_t deadline_ns);

#endif /* REIGN_BACKENDS_MEM_MEM_INTERNAL_H */
