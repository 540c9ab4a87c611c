/* The runner machine's one performer (see runner_perform.h). */
#include "runner_perform.h"

#include "error.h"

int reign_runner_advance(runner_state *st, reign_election *election, const runner_input *in0,
                         const runner_hooks *h, void *ctx, int64_t *next_wake_ms)
{
    runner_input in = *in0;
    int64_t hold_until = 0;
    int rc = REIGN_OK;

    for (int pass = 0; pass < 2; pass++) {
        runner_output o;
        in.is_master = reign_election_is_master(election);
        in.draw = h->draw(ctx);
        reign_runner_state_step(st, &in, &o);

        if (o.actions & RUNNER_ACT_TRACK_FALSE)
            h->track(ctx, false, (o.actions & RUNNER_ACT_OFFER_RESIGNATION) != 0);
        bool resigned = false;
        if (o.actions & RUNNER_ACT_OFFER_RESIGNATION)
            resigned = h->offer_resignation(ctx);
        if ((o.actions & RUNNER_ACT_CAMPAIGN) && h->may_campaign != NULL &&
            h->may_campaign(ctx, in.now_ms, &hold_until) == RUNNER_SAY_HOLD_OFF) {
            /* Back to PAUSE, not campaigning, so TRACK_TRUE cannot stand. */
            reign_runner_step_campaign_failed(st, in.now_ms);
            st->campaign_at_ms = hold_until;
            break;
        }
        if (o.actions & RUNNER_ACT_CAMPAIGN) {
            rc = reign_election_start(election);
            if (rc != REIGN_OK) {
                reign_runner_step_campaign_failed(st, in.now_ms);
                break;
            }
        }
        if (o.actions & RUNNER_ACT_TRACK_TRUE)
            h->track(ctx, true, false);
        if (!resigned)
            break;
        in.resign_done = true;
        in.resign_request = false;
    }
    *next_wake_ms = st->phase == RUNNER_PAUSE ? st->campaign_at_ms : st->next_check_ms;
    return rc;
}
