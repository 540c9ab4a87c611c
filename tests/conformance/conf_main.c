/* reign_conformance: the one backend-agnostic suite, run once per backend.
 *
 * Configuration (environment):
 *   REIGN_CONF_URI         the URI under test (required)
 *   REIGN_CONF_BACKEND     short name for messages (file, mem, noop, redis…)
 *   REIGN_CONF_SERVER_CTL  a command prefix run as `$CTL stop|start|restart|pause|resume`;
 *                          without it, cases that need it are skipped (mem uses its hooks)
 *   REIGN_CONF_CAPS        comma list: nocontention (every instance is master: noop),
 *                          noprocess (store not shared across processes: mem),
 *                          instantdeath (a killed holder's lease ends at once: file),
 *                          stoppedholds (a stopped holder keeps its lease: file),
 *                          nopush (observers are polled: no notifications, s3 and noop)
 *   REIGN_CONF_DEAD_URI    a URI whose server is unreachable (default: derived)
 *   REIGN_CONF_TTL_MS      lease TTL for every instance (default 1000)
 *   REIGN_CONF_RETRY_MS    campaign retry interval (default 250)
 *   REIGN_CONF_FILTER      run only the cases matching this cmocka pattern (e.g. "*killed*")
 * Exit status: the number of failed cases (cmocka), 2 on bad configuration.
 * The last line is greppable: "conformance[<backend>]: handoff_ms=… takeover_ms=…".
 */
#include "conf.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#define CASE(fn) cmocka_unit_test_setup_teardown(fn, conf_setup, conf_teardown)

int main(void)
{
    if (conf_config_load() != 0)
        return 2;
    /* A write to a dead child's pipe must be an error, not the end of us. */
    signal(SIGPIPE, SIG_IGN);
    printf("conformance[%s]: uri=%s caps=%s ttl_ms=%lld retry_ms=%lld server_ctl=%s\n",
           conf.backend, conf.uri, conf.caps[0] ? conf.caps : "-", (long long)conf.ttl_ms,
           (long long)conf.retry_ms,
           conf.server_ctl ? conf.server_ctl : (conf.mem_ctl ? "(mem hooks)" : "-"));
    fflush(stdout);

    const struct CMUnitTest cases[] = {
        CASE(test_a_new_election_is_not_master_and_has_no_term),
        CASE(test_a_lone_candidate_becomes_master_and_is_named_current_master),
        CASE(test_a_second_election_for_one_resource_in_one_factory_is_ebusy),
        CASE(test_an_unknown_uri_parameter_is_refused_with_euri),
        CASE(test_two_instances_elect_exactly_one_master_and_agree_on_it),
        CASE(test_resign_hands_mastership_over_with_a_higher_term_within_one_second),
        CASE(test_wait_on_a_held_resource_times_out_with_etimedout),
        CASE(test_close_wakes_a_waiting_thread_with_eclosed),
        CASE(test_lost_callback_reports_resigned_on_resign),
        CASE(test_lost_callback_reports_expired_when_the_mem_store_stalls),
        CASE(test_terms_increase_across_release),
        CASE(test_an_empty_resource_id_is_refused_with_einval),
        CASE(test_a_resource_id_of_1024_bytes_is_accepted_and_elected),
        CASE(test_a_resource_id_of_1025_bytes_is_refused_with_einval),
        CASE(test_a_resource_id_with_every_byte_from_01_to_ff_is_elected_as_itself),
        CASE(test_path_and_pattern_like_ids_are_accepted_or_refused_clearly),
        CASE(test_path_and_pattern_like_ids_are_never_confused_with_their_neighbours),
        CASE(test_a_thousand_resources_on_three_instances_each_get_exactly_one_master),
        CASE(test_renewals_of_a_thousand_resources_are_batched),
        CASE(test_a_killed_master_is_replaced_after_its_ttl_and_not_before),
        CASE(test_a_stopped_master_is_never_master_alongside_its_successor),
        CASE(test_terms_increase_across_expiry_of_a_killed_holder),
        CASE(test_a_stopped_server_ends_belief_by_the_deadline_and_election_resumes_on_start),
        CASE(test_a_paused_server_ends_belief_by_the_deadline_and_election_resumes_on_resume),
        CASE(test_terms_never_go_backwards_across_a_server_restart),
        CASE(test_terms_of_a_released_resource_survive_a_server_restart),
        CASE(test_an_unreachable_server_at_open_fails_clearly_within_ten_seconds),
        CASE(test_an_observer_sees_acquire_metadata_handoff_and_release_in_order),
        CASE(test_an_observer_sees_a_killed_holder_replaced_with_a_higher_term),
        CASE(test_an_observer_follows_changes_across_a_server_restart),
    };
    const char *filter = getenv("REIGN_CONF_FILTER");
    if (filter != NULL && filter[0] != '\0')
        cmocka_set_test_filter(filter);
    char group[64];
    snprintf(group, sizeof group, "conformance[%s]", conf.backend);
    int64_t t0 = conf_now_ns();
    int failed = _cmocka_run_group_tests(group, cases, sizeof cases / sizeof cases[0], NULL, NULL);
    printf("conformance[%s]: %d failed; suite took %.1f s\n", conf.backend, failed,
           conf_ms(conf_now_ns() - t0) / 1000.0);
    conf_metrics_print();
    return failed;
}
