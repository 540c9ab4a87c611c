/* CLOCK_MONOTONIC in nanoseconds: never steps with the wall clock. */
#include "clock.h"

#include "reign/reign.h"

reign_mono_ns reign_clock_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (reign_mono_ns)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t reign_monotonic_ms(void)
{
    return reign_clock_now_ns() / REIGN_NS_PER_MS;
}

struct timespec reign_clock_timespec(reign_mono_ns t)
{
    struct timespec ts = {.tv_sec = t / 1000000000, .tv_nsec = t % 1000000000};
    return ts;
}
