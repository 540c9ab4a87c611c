/* The *_INIT macros as functions, for languages that cannot expand C
 * macros, with a size check: a binding's mirrored struct of the wrong size
 * is refused before anything is written into it. */
#include <string.h>

#include "error.h"
#include "reign/reign.h"

static int size_check(const void *out, size_t size, size_t want, const char *type)
{
    if (out == NULL)
        return reign_error_set(REIGN_EINVAL, "%s_init: out is NULL", type);
    if (size != want)
        return reign_error_set(REIGN_EINVAL,
                               "%s_init: the caller's struct %s is %zu bytes, this library's is "
                               "%zu (the binding's mirror of it is out of date or wrong)",
                               type, type, size, want);
    return REIGN_OK;
}

#define REIGN_DEFINE_INIT(type, macro)                                        \
    int type##_init(type *out, size_t size)                                  \
    {                                                                         \
        int rc = size_check(out, size, sizeof(type), #type);                  \
        if (rc == REIGN_OK)                                                   \
            *out = (type)macro;                                               \
        return rc;                                                            \
    }

REIGN_DEFINE_INIT(reign_options, REIGN_OPTIONS_INIT)
REIGN_DEFINE_INIT(reign_runner_config, REIGN_RUNNER_CONFIG_INIT)
REIGN_DEFINE_INIT(reign_membership_config, REIGN_MEMBERSHIP_CONFIG_INIT)
REIGN_DEFINE_INIT(reign_shard_config, REIGN_SHARD_CONFIG_INIT)
REIGN_DEFINE_INIT(reign_observer_config, REIGN_OBSERVER_CONFIG_INIT)

size_t reign_struct_size(const char *name)
{
    static const struct {
        const char *name;
        size_t size;
    } sizes[] = {
        {"reign_options", sizeof(reign_options)},
        {"reign_runner_config", sizeof(reign_runner_config)},
        {"reign_membership_config", sizeof(reign_membership_config)},
        {"reign_shard_config", sizeof(reign_shard_config)},
        {"reign_master", sizeof(reign_master)},
        {"reign_member", sizeof(reign_member)},
        {"reign_event", sizeof(reign_event)},
        {"reign_stats", sizeof(reign_stats)},
        {"reign_health", sizeof(reign_health)},
        {"reign_held_info", sizeof(reign_held_info)},
        {"reign_shard_balance", sizeof(reign_shard_balance)},
        {"reign_observer_config", sizeof(reign_observer_config)},
        {"reign_change", sizeof(reign_change)},
        {"reign_observer_status", sizeof(reign_observer_status)},
        {"reign_leader_status", sizeof(reign_leader_status)},
    };
    for (size_t i = 0; name != NULL && i < sizeof sizes / sizeof sizes[0]; i++)
        if (strcmp(name, sizes[i].name) == 0)
            return sizes[i].size;
    return 0;
}
