/* Monotonic time for deadlines. Wall time is only for logs. */
#ifndef REIGN_CORE_CLOCK_H
#define REIGN_CORE_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Nanoseconds of CLOCK_BOOTTIME (monotonic, counts suspend): the unit of
 * every deadline in the engine. */
typedef int64_t reign_mono_ns;

#define REIGN_NS_PER_MS INT64_C(1000000)

reign_mono_ns reign_clock_now_ns(void);
/* The CLOCK_MONOTONIC timespec for pthread_cond_timedwait (condition
 * variables made with pthread_condattr_setclock(CLOCK_MONOTONIC)) of a time
 * on reign's clock. */
struct timespec reign_clock_timespec(reign_mono_ns t);

#endif
