/* The one performer of the runner machine: steps runner_step.c's pure
 * machine and carries out its actions on an election, with the caller's
 * say at the three points where a runner and a shard differ.
 *
 * core/runner.c (one runner, Trillian's semantics) and core/shard.c
 * (thousands of runners on a few threads, with a balancer) both drive their
 * elections through reign_runner_advance, so the TRACK_FALSE / OFFER_RESIGNATION /
 * CAMPAIGN / TRACK_TRUE sequence and its error policy exist once. */
#ifndef REIGN_CORE_RUNNER_PERFORM_H
#define REIGN_CORE_RUNNER_PERFORM_H

#include <stdbool.h>
#include <stdint.h>

#include "reign/reign.h"
#include "runner_step.h"

/* What the caller says when the machine wants to campaign. */
typedef enum runner_say {
    RUNNER_SAY_CAMPAIGN = 0,  /* go ahead */
    RUNNER_SAY_HOLD_OFF,      /* not now: stay in PAUSE until *hold_until (or a kick) */
} runner_say;

typedef struct runner_hooks {
    /* TRACK_TRUE / TRACK_FALSE: tell the application (tracker, callback).
     * `resigning`: this TRACK_FALSE comes with OFFER_RESIGNATION (a
     * voluntary end), not with a loss. */
    void (*track)(void *ctx, bool is_master, bool resigning);
    /* OFFER_RESIGNATION: hand the resignation (revocation) over. Return
     * true if it has been carried out already (the lease is released), so
     * the machine moves on in this same call. */
    bool (*offer_resignation)(void *ctx);
    /* CAMPAIGN: may it? NULL always campaigns. On HOLD_OFF set *hold_until. */
    runner_say (*may_campaign)(void *ctx, int64_t now_ms, int64_t *hold_until);
    /* One uniform draw for the machine (its pre-election pauses, odds). */
    uint64_t (*draw)(void *ctx);
} runner_hooks;

/* Step `st` at in->now_ms (in->is_master and in->draw are filled in here)
 * and perform the actions on `election`; a resignation carried out inline
 * is followed by a second step, so the machine pauses and campaigns anew.
 * Returns REIGN_OK or the status of a failed campaign start (the machine
 * then retries one check interval later); *next_wake_ms is when to step
 * again (or earlier on election events). */
int reign_runner_advance(runner_state *st, reign_election *election, const runner_input *in,
                         const runner_hooks *hooks, void *ctx, int64_t *next_wake_ms);

#endif
