/* The runner's pure state machine (see runner_step.h for the cycle). */
#include "runner_step.h"

#include <inttypes.h>

#include "error.h"

/* Callers may configure huge intervals (Trillian uses "forever" for the hold
 * interval), so every "now + interval" saturates instead of overflowing. */
static int64_t add_saturating(int64_t a, int64_t b)
{
    if (b > 0 && a > INT64_MAX - b)
        return INT64_MAX;
    return a + b;
}

static int check_minimum(const char *field, int64_t value, int64_t minimum)
{
    if (value < minimum)
        return reign_error_set(REIGN_EINVAL, "runner: %s %" PRId64 " is below the minimum %" PRId64,
                               field, value, minimum);
    return REIGN_OK;
}

int reign_runner_settings_from_config(const reign_runner_config *config, runner_settings *out)
{
    int rc = REIGN_OK;
    if (config == NULL)
        return reign_error_set(REIGN_EINVAL, "runner: reign_runner_config is NULL");
    if (config->version == 0 || config->version > REIGN_RUNNER_CONFIG_VERSION)
        return reign_error_set(REIGN_EINVAL,
                               "runner: reign_runner_config version %u is not supported "
                               "(use REIGN_RUNNER_CONFIG_INIT; this build knows 1..%d)",
                               config->version, REIGN_RUNNER_CONFIG_VERSION);
    rc = check_minimum("pre_election_pause_ms", config->pre_election_pause_ms,
                       REIGN_RUNNER_MIN_PRE_ELECTION_PAUSE_MS);
    if (rc != REIGN_OK)
        return rc;
    rc = check_minimum("master_check_interval_ms", config->master_check_interval_ms,
                       REIGN_RUNNER_MIN_MASTER_CHECK_INTERVAL_MS);
    if (rc != REIGN_OK)
        return rc;
    rc = check_minimum("master_hold_interval_ms", config->master_hold_interval_ms,
                       REIGN_RUNNER_MIN_MASTER_HOLD_INTERVAL_MS);
    if (rc != REIGN_OK)
        return rc;
    if (config->resign_odds < 0)
        return reign_error_set(REIGN_EINVAL,
                               "runner: resign_odds %" PRId64 " is negative (0 = never resign)",
                               config->resign_odds);
    out->pre_election_pause_ms = config->pre_election_pause_ms;
    out->master_check_interval_ms = config->master_check_interval_ms;
    out->master_hold_interval_ms = config->master_hold_interval_ms;
    out->resign_odds = config->resign_odds;
    return REIGN_OK;
}

int reign_runner_config_check(const reign_runner_config *config)
{
    runner_settings unused;
    return reign_runner_settings_from_config(config, &unused);
}

void reign_runner_state_init(runner_state *st, const runner_settings *cfg)
{
    *st = (runner_state){.cfg = *cfg, .phase = RUNNER_INIT};
}

static void enter_pause(runner_state *st, int64_t now_ms, uint64_t draw)
{
    int64_t pause = (int64_t)(draw % (uint64_t)st->cfg.pre_election_pause_ms);
    st->phase = RUNNER_PAUSE;
    st->campaign_at_ms = add_saturating(now_ms, pause);
}

/* 1 in resign_odds, decided by the draw; odds 0 never resigns. The modulo
 * bias is below 2^-64 * odds: irrelevant for odds that fit in int64. */
static bool should_resign(const runner_state *st, uint64_t draw)
{
    if (st->cfg.resign_odds == 0)
        return false;
    return draw % (uint64_t)st->cfg.resign_odds == 0;
}

/* CAMPAIGNING: mastership seen → MASTER, else poll again at the next check. */
static void step_campaigning(runner_state *st, const runner_input *in, runner_output *out)
{
    int64_t now = in->now_ms;
    if (in->is_master) {
        out->actions |= RUNNER_ACT_TRACK_TRUE;
        st->phase = RUNNER_MASTER;
        st->master_since_ms = now;
        st->next_check_ms = add_saturating(now, st->cfg.master_check_interval_ms);
    } else if (now >= st->next_check_ms) {
        st->next_check_ms = add_saturating(now, st->cfg.master_check_interval_ms);
    }
}

/* PAUSE: campaign once the pause is over; mastership may then be seen in
 * the same step (e.g. noop://, or an election that was already master). */
static void step_pause(runner_state *st, const runner_input *in, runner_output *out)
{
    if (in->now_ms < st->campaign_at_ms)
        return;
    out->actions |= RUNNER_ACT_CAMPAIGN;
    st->phase = RUNNER_CAMPAIGNING;
    st->next_check_ms = in->now_ms;
    step_campaigning(st, in, out);
}

static void step_master(runner_state *st, const runner_input *in, runner_output *out)
{
    int64_t now = in->now_ms;
    if (!in->is_master) {
        /* Any step may see the loss (callers step early on election events),
         * so the tracker follows at once, not at the next check. */
        out->actions |= RUNNER_ACT_TRACK_FALSE;
        enter_pause(st, now, in->draw);
        step_pause(st, in, out);
        return;
    }
    if (in->resign_request) {
        out->actions |= RUNNER_ACT_TRACK_FALSE | RUNNER_ACT_OFFER_RESIGNATION;
        st->phase = RUNNER_RESIGNING;
        st->next_check_ms = add_saturating(now, st->cfg.master_check_interval_ms);
        return;
    }
    if (now < st->next_check_ms)
        return; /* early step, still master: no check due */
    st->next_check_ms = add_saturating(now, st->cfg.master_check_interval_ms);
    if (now - st->master_since_ms >= st->cfg.master_hold_interval_ms &&
        should_resign(st, in->draw)) {
        out->actions |= RUNNER_ACT_TRACK_FALSE | RUNNER_ACT_OFFER_RESIGNATION;
        st->phase = RUNNER_RESIGNING;
    }
}

static void step_resigning(runner_state *st, const runner_input *in, runner_output *out)
{
    if (!in->resign_done) {
        /* Poll too, in case the executing thread's wake-up is missed. */
        if (in->now_ms >= st->next_check_ms)
            st->next_check_ms = add_saturating(in->now_ms, st->cfg.master_check_interval_ms);
        return;
    }
    enter_pause(st, in->now_ms, in->draw);
    step_pause(st, in, out);
}

void reign_runner_state_step(runner_state *st, const runner_input *in, runner_output *out)
{
    out->actions = 0;
    switch (st->phase) {
    case RUNNER_INIT:
        enter_pause(st, in->now_ms, in->draw);
        step_pause(st, in, out);
        break;
    case RUNNER_PAUSE:
        step_pause(st, in, out);
        break;
    case RUNNER_CAMPAIGNING:
        step_campaigning(st, in, out);
        break;
    case RUNNER_MASTER:
        step_master(st, in, out);
        break;
    case RUNNER_RESIGNING:
        step_resigning(st, in, out);
        break;
    }
    out->next_wake_ms = st->phase == RUNNER_PAUSE ? st->campaign_at_ms : st->next_check_ms;
}

void reign_runner_step_campaign_failed(runner_state *st, int64_t now_ms)
{
    st->phase = RUNNER_PAUSE;
    st->campaign_at_ms = add_saturating(now_ms, st->cfg.master_check_interval_ms);
}

uint64_t reign_runner_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}
