/*
 * clock.h — monotonic time helpers shared by the pacing plugins
 * (gen_source, file_source, event_source); header-only.
 */
#ifndef MYELIN_PLUGIN_CLOCK_H
#define MYELIN_PLUGIN_CLOCK_H

#include <errno.h>
#include <time.h>

/* Seconds on the monotonic clock. */
static inline double clock_mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Sleeps until the monotonic clock reads t (an absolute deadline, so pacing
 * never drifts), resuming after signals. */
static inline void clock_sleep_until(double t) {
  struct timespec ts;
  ts.tv_sec = (time_t)t;
  ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
  }
}

/* Waits until the monotonic clock reads `due` as precisely as the machine
 * allows: sleeps in 100 ms slices while stop(arg) stays 0 (so an interrupt
 * is seen promptly), then to just short of the deadline, then spins — the
 * wake-up latency of a sleep (tens to hundreds of microseconds on a busy
 * machine) would otherwise become the pacing error. Returns 1 when stop()
 * became true, else 0. */
static inline int clock_pace_until(double due, int (*stop)(void *), void *arg) {
  while (due - clock_mono() > 0.1)
    if (stop(arg))
      return 1;
    else
      clock_sleep_until(clock_mono() + 0.1);
  if (stop(arg)) return 1;
  if (due - clock_mono() > 0.0005) clock_sleep_until(due - 0.0003);
  while (clock_mono() < due) {
  }
  return 0;
}

#endif
