/*
 * clock.h — monotonic time helpers shared by the pacing plugins
 * (gen_source, file_source); header-only.
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

#endif
