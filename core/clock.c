/* The clock of every deadline: CLOCK_BOOTTIME, which never steps with the
 * wall clock and, unlike CLOCK_MONOTONIC, keeps counting while the machine
 * is suspended — a master that slept through its lease must wake up not
 * believing. Condition variables only wait on CLOCK_MONOTONIC, so absolute
 * wait times are converted at the moment of the wait. */
#include "clock.h"

#include "reign/backend.h"

static reign_mono_ns read_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (reign_mono_ns)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

reign_mono_ns reign_clock_now_ns(void)
{
    return read_ns(CLOCK_BOOTTIME);
}

int64_t reign_monotonic_ms(void)
{
    return reign_clock_now_ns() / REIGN_NS_PER_MS;
}

struct timespec reign_clock_timespec(reign_mono_ns t)
{
    /* A suspend between this conversion and the wait only makes the wait
     * end late by the suspend, and every waiter re-checks its condition. */
    reign_mono_ns mono = read_ns(CLOCK_MONOTONIC) + (t - reign_clock_now_ns());
    if (mono < 0)
        mono = 0;
    struct timespec ts = {.tv_sec = mono / 1000000000, .tv_nsec = mono % 1000000000};
    return ts;
}

int64_t reign_backend_now_ns(void)
{
    return reign_clock_now_ns();
}

int64_t reign_backend_ms_left(int64_t deadline_ns)
{
    int64_t left = deadline_ns - reign_clock_now_ns();
    return left <= 0 ? 1 : (left + REIGN_NS_PER_MS - 1) / REIGN_NS_PER_MS;
}
