/* Shard manager internals shared by shard.c (items, threads, stepping,
 * API), shard_index.c (the resource-keyed table) and shard_balance.c (the
 * fair-share balancer behind the small interface at the end). */
#ifndef REIGN_CORE_SHARD_INTERNAL_H
#define REIGN_CORE_SHARD_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "balance.h"
#include "reign/reign.h"
#include "runner_step.h"

#define SHARD_NOT_IN_HEAP SIZE_MAX

typedef struct shard_thread shard_thread;
typedef struct shard_balancer shard_balancer;

/* One resource. Created by reign_shard_add/new, freed by its owner thread
 * after a removal (or by reign_shard_free). The index owns the pointer:
 * other threads reach an item only under index_lock. */
typedef struct shard_item {
    struct shard_item *next;   /* index bucket chain (index_lock) */
    reign_election *election;  /* owned */
    const char *id;            /* the election's resource ID */
    uint64_t hash;             /* reign_balance_hash(id) */
    shard_thread *owner;       /* for life */
    balance_preference pref;   /* owned copies; written under the write lock */

    /* Owner thread only (or the controlling thread while no thread runs). */
    runner_state st;
    uint64_t term;                /* of the mastership the application was told of */
    bool campaigned;              /* started since the shard started */
    bool busy;                    /* MASTER or RESIGNING: counted in owner->n_busy */
    bool parked;                  /* held off with no end: waits for a kick */
    reign_shard_reason revoke_reason; /* RESIGNING: why */
    int64_t revoke_deadline_ms;   /* RESIGNING: release anyway at this time */
    int64_t probe_until_ms;       /* end of the current probe, 0 if none */
    uint64_t granted_generation;  /* shard thread: the assignment that granted it */

    /* Guarded by owner->mu. */
    size_t heap_pos;      /* SHARD_NOT_IN_HEAP while being stepped or idle */
    int64_t wake_ms;
    bool kicked;          /* an event arrived while it was out of the heap */
    uint64_t revoke_term; /* the pending revocation's term, 0 if none */
    bool acked;           /* reign_shard_revoke_done came for revoke_term */

    /* Written by other threads. */
    atomic_bool removing;     /* reign_shard_remove: revoke, release, forget */
    atomic_bool revoked;      /* told REVOKED, not yet released: is_master false */
    atomic_int lost_reason;   /* the election's last LOST reason (engine thread) */
    atomic_bool drain_queued; /* waits in the drain queue for a slot */
} shard_item;

struct shard_thread {
    reign_shard *shard;
    pthread_t thread;
    bool started;
    uint64_t rng;           /* owner thread only */
    shard_item **batch;     /* owner thread only: items due this round */
    size_t batch_cap;
    size_t n_busy;          /* owner thread only: items MASTER or RESIGNING */

    /* mu guards heap, heap_n, heap_cap, n_items, stop and the heap fields
     * of its items; cond wakes the thread on events and stop. */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    shard_item **heap;
    size_t heap_n, heap_cap;
    size_t n_items;         /* items owned */
    bool stop;
};

struct reign_shard {
    reign_factory *factory;  /* not owned */
    runner_settings settings;
    reign_clock_fn clock;
    bool clock_injected;     /* may jump: threads poll it every tick */
    reign_random_fn random;
    void *clock_random_payload;
    reign_shard_fn on_change;
    reign_shard_event_fn on_event;
    void *payload;
    int64_t revoke_timeout_ms;
    unsigned drain_parallel;
    reign_tracker *tracker;  /* owned */

    /* index_lock guards the table and item lifetimes; `running` is
     * written under it too, so an add either pushes its item itself or is
     * pushed by start. */
    pthread_rwlock_t index_lock;
    shard_item **buckets;
    size_t n_buckets, n_items;
    uint64_t set_generation;  /* bumped by every add and remove */
    bool running;

    shard_thread *threads;
    unsigned n_threads;
    unsigned next_thread;     /* round robin for new items (index_lock) */

    /* ctl_mu serialises start, stop, drain and free. */
    pthread_mutex_t ctl_mu;
    atomic_bool stopping;     /* revoke everything, take nothing */
    atomic_bool draining;     /* hand over drain_parallel at a time, take nothing */
    atomic_uint drain_slots;  /* revocations the drain may still start */
    atomic_size_t n_busy;     /* items MASTER or RESIGNING, over all threads */
    /* drain_mu guards the queue of IDs waiting for a drain slot; drain_cond
     * wakes reign_shard_drain whenever an item stops being busy. */
    pthread_mutex_t drain_mu;
    pthread_cond_t drain_cond;
    char **drain_queue;
    size_t drain_queue_head, drain_queue_n, drain_queue_cap;

    shard_balancer *balancer;  /* NULL unless balancing */
    int64_t probe_interval_ms;
};

int64_t reign_shard_now(const reign_shard *s);

/* shard_step.c: the threads. */
void *reign_shard_thread_main(void *arg);
int reign_shard_heap_reserve(shard_thread *t, size_t n);     /* t->mu held */
void reign_shard_heap_push(shard_thread *t, shard_item *it); /* t->mu held, room reserved */
/* shard.c: close the election and free (no lock held, out of the index). */
void reign_shard_item_destroy(shard_item *it);

/* Make an item due now in its owner's heap (any thread, index_lock held or
 * the item otherwise known alive). */
void reign_shard_kick(shard_item *it);
/* Kick every item (takes index_lock for reading). */
void reign_shard_kick_all(reign_shard *s);

/* ---- The resource-keyed table (shard_index.c; index_lock held) ---------- */

shard_item *reign_shard_index_find(const reign_shard *s, const char *id);
int reign_shard_index_insert(reign_shard *s, shard_item *it); /* REIGN_ENOMEM */
void reign_shard_index_remove(reign_shard *s, shard_item *it);
/* Call fn for every item; stops early when fn returns false. */
void reign_shard_index_each(const reign_shard *s, bool (*fn)(shard_item *it, void *ctx), void *ctx);

/* ---- The balancer (shard_balance.c) --------------------------------------- */

/* The balancer's say on one item, at step time. */
typedef enum shard_say {
    SHARD_SAY_MINE,      /* a target: campaign */
    SHARD_SAY_LATER,     /* a target from *until on (the assignment settles) */
    SHARD_SAY_NOT_MINE,  /* another instance's: stay quiet until kicked */
    SHARD_SAY_PROBE,     /* not ours but read masterless: campaign for one check */
} shard_say;

int reign_shard_balancer_init(reign_shard *s, const reign_shard_config *config);
int reign_shard_balancer_start(reign_shard *s); /* joins the membership */
void reign_shard_balancer_stop(reign_shard *s); /* leaves it */
/* Sleep until the others have surely seen a leave (two refreshes). */
void reign_shard_balancer_wait_seen(reign_shard *s);
void reign_shard_balancer_destroy(reign_shard *s);
/* The set changed: recompute soon. */
void reign_shard_balancer_set_changed(reign_shard *s);
/* *generation: the assignment's, for it->granted_generation. */
shard_say reign_shard_balancer_say(reign_shard *s, const shard_item *it, int64_t now,
                                   int64_t *until, uint64_t *generation);
/* Should a held item move away now? Takes one of the check's move tokens. */
bool reign_shard_balancer_should_move(reign_shard *s, const shard_item *it, int64_t master_since,
                                      int64_t now);

#endif
