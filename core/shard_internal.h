/* Shard manager internals shared by shard.c (threads, stepping, API) and
 * shard_balance.c (the fair-share balancer). */
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

/* ---- 1. Types ------------------------------------------------------------- */

typedef struct shard_thread shard_thread;

typedef struct shard_item {
    reign_election *election;  /* owned by the shard */
    shard_thread *owner;

    /* Only the owner thread (or the controlling thread while no shard
     * thread runs) touches these. */
    runner_state st;
    uint64_t term;    /* term of the mastership the tracker shows */
    bool campaigned;  /* started since the shard started: resign at stop */

    /* Guarded by owner->mu. */
    size_t heap_pos;  /* SHARD_NOT_IN_HEAP while being stepped */
    int64_t wake_ms;
    bool kicked;      /* an event arrived while it was out of the heap */

    /* Balancing: written by the balancer, read by the owner thread. */
    atomic_bool wanted;       /* the assignment makes it ours: campaign */
    atomic_bool resign_now;   /* surplus: resign at the next step */
    atomic_llong gained_at_ms; /* owner writes when mastership is seen; 0 none */
    atomic_bool probe_free;   /* the balancer read it masterless: campaign briefly */
    /* Owner thread only. */
    int64_t probe_until_ms;   /* end of the current probe, 0 if none */
    bool parked;              /* waiting, unwanted, for a probe or a kick */
    uint64_t hash;            /* balance_hash of the resource ID */
    balance_preference pref;  /* owned copies of preferred IDs */
} shard_item;

struct shard_thread {
    reign_shard *shard;
    pthread_t thread;
    bool started;
    uint64_t rng;              /* owner thread only */
    shard_item **batch;        /* owner thread only: items due this round */
    size_t n_items;            /* size of its slice */
    int stop_rc;               /* first error while stopping, for reign_shard_stop */
    char stop_error[256];

    /* mu guards heap, heap_n, stop and the heap fields of its items; cond
     * wakes the thread on events and stop. */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    shard_item **heap;
    size_t heap_n;
    bool stop;
};

struct reign_shard {
    reign_factory *factory;  /* not owned */
    runner_settings settings;
    reign_clock_fn clock;
    reign_random_fn random;
    void *clock_random_payload;
    reign_shard_fn on_change;
    void *payload;
    reign_tracker *tracker;  /* owned */

    shard_item *items;
    size_t n_items;
    shard_thread *threads;
    unsigned n_threads;

    /* ctl_mu serialises start, stop and free; guards running. */
    pthread_mutex_t ctl_mu;
    bool running;

    bool balance;
    struct shard_balancer *balancer;  /* NULL unless balance */
    int64_t probe_interval_ms;
};


/* Make an item due now in its owner's heap (any thread). */
void shard_kick(shard_item *it);

/* Balancer (shard_balance.c): created with the shard when balancing. */
int shard_balancer_init(reign_shard *s, const reign_shard_config *config);
int shard_balancer_start(reign_shard *s);
void shard_balancer_stop(reign_shard *s);
void shard_balancer_destroy(reign_shard *s);

#endif
