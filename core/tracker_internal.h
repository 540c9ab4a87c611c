/* Tracker functions for the core only. */
#ifndef REIGN_CORE_TRACKER_INTERNAL_H
#define REIGN_CORE_TRACKER_INTERNAL_H

#include "reign/reign.h"

/* Stop tracking an ID (set false first if held): the shard's removals. */
int reign_tracker_forget(reign_tracker *tracker, const char *resource_id);

#endif
