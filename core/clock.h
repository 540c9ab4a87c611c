/* Monotonic time for deadlines. Wall time is only for logs. */
#ifndef REIGN_CORE_CLOCK_H
#define REIGN_CORE_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Monotonic nanoseconds: the unit of every deadline in the engine. */
typedef int64_t reign_mono_ns;

#define REIGN_NS_PER_MS INT64_C(1000000)

reign_mono_ns reign_clock_now_ns(void);
/* Absolute CLOCK_MONOTONIC timespec for pthread_cond_timedwait. */
struct timespec reign_clock_timespec(reign_mono_ns t);

#endif
