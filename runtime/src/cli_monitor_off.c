/*
 * cli_monitor_off.c — `myelin run --monitor` in a build without the monitor
 * (CMake found no libwebsockets, or -DMYELIN_MONITOR=OFF): says so, and the
 * CLI exits 2 before the run. cli_monitor.c is the monitor.
 */
#include <stdio.h>

#include "monitor.h"

monitor *monitor_start(const char *addr, const pipeline *p, char *err, size_t errlen) {
  (void)addr;
  (void)p;
  snprintf(err, errlen,
           "this myelin was built without the monitor (it needs libwebsockets-dev with "
           "libwebsockets-evlib-uv at build time; rebuild with them, README: the live view)");
  return NULL;
}

const run_observer *monitor_observer(monitor *m) {
  (void)m;
  return NULL;
}

const char *monitor_url(const monitor *m) {
  (void)m;
  return "";
}

void monitor_stop(monitor *m) { (void)m; }
