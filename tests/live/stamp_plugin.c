/*
 * stamp — a test-only sink measuring real-time pacing: for each message it
 * compares the wall-clock gap since the previous message with the recorded
 * gap (t - t_prev) / speed, and reports the median absolute error of these
 * inter-message gaps in microseconds as the counter `median_error_us` (and
 * `span_ms`, the wall time from first to last). Gaps, not times since the
 * first message, so a late first delivery does not bias every sample.
 * A message's time t is its float field `t` (seconds), or, for `events`
 * messages, the last of its event times (tensor `t`, microseconds); an
 * events message with no events is skipped. tests/live and tests/events
 * both load it.
 */
#include <math.h>
#include <stdlib.h>
#include <time.h>

#include "myelin/plugin.h"

typedef struct stamp {
  const myelin_host *host;
  myelin_stage *st;
  double speed, w0, wlast, tprev;
  double *err;
  size_t n, cap, seen;
} stamp;

static double mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int st_init(const myelin_host *host, myelin_stage *st, const myelin_params *p, void **state) {
  stamp *s = calloc(1, sizeof *s);
  if (!s) return MYELIN_ENOMEM;
  s->host = host;
  s->st = st;
  s->speed = myelin_param_float(p, "speed");
  *state = s;
  return 0;
}

static int st_process(void *state, int port, myelin_msg *m) {
  (void)port;
  stamp *s = state;
  double now = mono(), t;
  myelin_tensor ev;
  if (!myelin_msg_tensor(m, "t", &ev)) {
    if (ev.count == 0) return 0;
    t = (double)((const int64_t *)ev.data)[ev.count - 1] * 1e-6;
  } else if (myelin_msg_float(m, "t", &t)) {
    return s->host->error(s->st, "message without t");
  }
  if (s->seen++ == 0) { /* first message: the reference point */
    s->tprev = t;
    s->w0 = s->wlast = now;
    return 0;
  }
  if (s->n == s->cap) {
    s->cap = s->cap ? 2 * s->cap : 1024;
    double *ne = realloc(s->err, s->cap * sizeof *ne);
    if (!ne) return MYELIN_ENOMEM;
    s->err = ne;
  }
  s->err[s->n++] = fabs((now - s->wlast) - (t - s->tprev) / s->speed);
  s->wlast = now;
  s->tprev = t;
  return 0;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int st_flush(void *state) {
  stamp *s = state;
  if (!s->n) return 0;
  qsort(s->err, s->n, sizeof *s->err, cmp);
  s->host->counter_add(s->st, "median_error_us", (int64_t)(s->err[s->n / 2] * 1e6));
  s->host->counter_add(s->st, "span_ms", (int64_t)((s->wlast - s->w0) * 1e3));
  return 0;
}

static void st_fini(void *state) {
  stamp *s = state;
  free(s->err);
  free(s);
}

static const myelin_param_def st_params[] = {
    {.name = "speed", .type = MYELIN_PARAM_FLOAT, .def = "1.0", .doc = "replay speed"}, {0}};
static const myelin_port_def st_in[] = {{.name = "in", .kinds = "*"}, {0}};

static const myelin_plugin_desc st_desc = {
    MYELIN_DESC_HEADER,  .name = "stamp", .version = "0.0.1", .summary = "test sink: real-time pacing error",
    .params = st_params, .inputs = st_in, .init = st_init,    .process = st_process,
    .flush = st_flush,   .fini = st_fini,
};

MYELIN_PLUGIN(st_desc)
