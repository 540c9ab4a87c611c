/* The runner's state machine as a pure step function: state + now + observed
 * mastership + one random draw → actions and the next wake-up time.
 *
 * No threads, no clock reads, no election calls: core/runner.c (one runner)
 * and core/shard.c (thousands of runners on a few threads) perform the
 * actions with the public election API, and unit tests drive it with a fake
 * clock and chosen draws.
 *
 * The cycle (Trillian's election.Runner):
 *   PAUSE       wait a random pause in [0, pre_election_pause), then CAMPAIGN
 *   CAMPAIGNING poll every master_check_interval (callers also step early
 *               on election events); master seen → TRACK_TRUE
 *   MASTER      any step that sees mastership gone → TRACK_FALSE, new pause;
 *               at each check (every master_check_interval) once held for
 *               master_hold_interval, resign with chance 1/resign_odds →
 *               TRACK_FALSE + OFFER_RESIGNATION; a step with resign_request
 *               resigns the same way at once (the shard's voluntary ends)
 *   RESIGNING   wait until the caller reports the resignation executed, then
 *               a new pause. Like Trillian, the tracker goes false when the
 *               resignation is offered (the application should wind down
 *               master-only work) and the runner waits however long the
 *               application takes; it does not leave RESIGNING on its own,
 *               so a late execute can never resign a later mastership.
 */
#ifndef REIGN_CORE_RUNNER_STEP_H
#define REIGN_CORE_RUNNER_STEP_H

#include <stdbool.h>
#include <stdint.h>

#include "reign/reign.h"

typedef enum runner_phase {
    RUNNER_INIT = 0,     /* never stepped: the first step draws the pause */
    RUNNER_PAUSE,        /* waiting until campaign_at_ms */
    RUNNER_CAMPAIGNING,  /* campaign started, waiting to become master */
    RUNNER_MASTER,       /* tracker says true; checking every interval */
    RUNNER_RESIGNING,    /* resignation offered, not executed yet */
} runner_phase;

/* Actions of one step, a bit set. Perform them in this order:
 * TRACK_FALSE, OFFER_RESIGNATION, CAMPAIGN, TRACK_TRUE. */
enum {
    RUNNER_ACT_TRACK_FALSE = 1u << 0,        /* tracker set(id, false) */
    RUNNER_ACT_OFFER_RESIGNATION = 1u << 1,  /* hand a resignation to the app */
    RUNNER_ACT_CAMPAIGN = 1u << 2,           /* reign_election_start */
    RUNNER_ACT_TRACK_TRUE = 1u << 3,         /* tracker set(id, true) */
};

/* The validated settings a runner steps with (milliseconds). */
typedef struct runner_settings {
    int64_t pre_election_pause_ms;
    int64_t master_check_interval_ms;
    int64_t master_hold_interval_ms;
    int64_t resign_odds;  /* 0 = never */
} runner_settings;

typedef struct runner_state {
    runner_settings cfg;
    runner_phase phase;
    int64_t campaign_at_ms;  /* PAUSE: when to campaign */
    int64_t master_since_ms; /* MASTER: when mastership was first seen */
    int64_t next_check_ms;   /* CAMPAIGNING/MASTER/RESIGNING: next poll/check */
} runner_state;

typedef struct runner_input {
    int64_t now_ms;
    bool is_master;    /* reign_election_is_master, read just before the step */
    bool resign_done;  /* RESIGNING: the offered resignation has been executed */
    bool resign_request; /* MASTER: resign now (a shard's move, removal, drain, stop) */
    uint64_t draw;     /* uniform random; the step uses at most this one */
} runner_input;

typedef struct runner_output {
    unsigned actions;      /* RUNNER_ACT_* bits */
    int64_t next_wake_ms;  /* step again at this time (or earlier on events) */
} runner_output;

/* Check a public config: REIGN_OK, or REIGN_EINVAL with reign_last_error
 * naming the struct or field. Never clamps. */
int reign_runner_settings_from_config(const reign_runner_config *config, runner_settings *out);

/* A fresh state in RUNNER_INIT. */
void reign_runner_state_init(runner_state *st, const runner_settings *cfg);

/* One step. Pure: reads only `st` and `in`, writes only `st` and `out`. */
void reign_runner_state_step(runner_state *st, const runner_input *in, runner_output *out);

/* The campaign action failed (e.g. the backend refused start): go back to
 * PAUSE and try again one check interval from now. */
void reign_runner_step_campaign_failed(runner_state *st, int64_t now_ms);

/* Default generator for runners and shard threads: splitmix64, so any seed
 * (even 0) gives a good sequence. */
uint64_t reign_runner_splitmix64(uint64_t *state);

#endif
