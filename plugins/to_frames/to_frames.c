/*
 * to_frames.c — the `to_frames` stage: `events` in, `spikes` out, one
 * message per input, context passed through. The frames are tonic's ToFrame
 * [T, P, H, W] (sensor [W, H, P]) with the same slicing (n_time_bins or
 * time_window, ev_frame_bins in event_common), sent sparsely as spikes:
 * unit = (p * H + y) * W + x, n = P * H * W, steps = T, each (step, unit)
 * listed once per event (`counts`, tonic's sums) or once (`binary`), sorted
 * by step then unit as `spikes` requires. dt = the bin width in seconds.
 * The kernel is ev_frames_sparse (plugins/event_common/evtransform.c).
 */
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "myelin/myelin.h"

typedef struct tofr {
  const myelin_host *host;
  myelin_stage *st;
  uint32_t n_bins;
  double window;
  int incomplete, binary;
  ev_frames fr;
} tofr;

static void tf_fini(void *state) {
  tofr *s = state;
  if (!s) return;
  ev_frames_free(&s->fr);
  free(s);
}

static int tf_validate(const myelin_params *p, myelin_validate_ctx *ctx) {
  int nb = myelin_param_int(p, "n_time_bins") > 0, tw = myelin_param_float(p, "time_window") > 0;
  if (nb == tw)
    return myelin_validate_error(ctx, nb ? "time_window" : "n_time_bins",
                                 "set exactly one of n_time_bins and time_window");
  return 0;
}

static int tf_init(const myelin_host *host, myelin_stage *st, const myelin_params *p, void **state) {
  tofr *s = calloc(1, sizeof *s);
  if (!s) return host->error(st, "out of memory");
  s->host = host;
  s->st = st;
  s->n_bins = (uint32_t)myelin_param_int(p, "n_time_bins");
  s->window = myelin_param_float(p, "time_window");
  s->incomplete = myelin_param_bool(p, "include_incomplete");
  s->binary = !strcmp(myelin_param_str(p, "mode"), "binary");
  *state = s;
  return 0;
}

static int tf_process(void *state, int port, myelin_msg *m) {
  (void)port;
  tofr *s = state;
  ev_view v;
  char err[512];
  if (ev_view_of(m, &v, err, sizeof err)) return s->host->error(s->st, "%s", err);
  for (size_t i = 1; i < v.n; i++)
    if (v.t[i] < v.t[i - 1])
      return s->host->error(s->st,
                            "events message: timestamps go back at event %zu (%lld after %lld); "
                            "frames need events sorted by t",
                            i, (long long)v.t[i], (long long)v.t[i - 1]);
  if ((uint64_t)v.sensor.w * v.sensor.h * v.sensor.p > UINT32_MAX)
    return s->host->error(s->st, "sensor %ux%ux%u has more units than a spikes message can number",
                          v.sensor.w, v.sensor.h, v.sensor.p);
  size_t *lo, *hi;
  size_t bins = ev_frame_bins(v.t, v.n, s->n_bins, s->window, s->incomplete, &lo, &hi);
  if (!bins) return s->host->error(s->st, "out of memory, or more than %zu time bins", EV_MAX_BINS);
  int64_t ne = ev_frames_sparse(&s->fr, &v.sensor, v.x, v.y, v.p, lo, hi, bins, s->binary);
  free(lo);
  free(hi);
  if (ne < 0) return s->host->error(s->st, "out of memory");
  double w = s->n_bins ? (v.n ? (double)((v.t[v.n - 1] - v.t[0]) / (int64_t)s->n_bins) : 0) : s->window;
  myelin_builder *b = myelin_builder_new("spikes");
  if (!b) return s->host->error(s->st, "out of memory");
  uint64_t seq;
  if (myelin_msg_uint(m, "seq", &seq) == 0) myelin_build_uint(b, "seq", seq);
  myelin_build_uint(b, "n", (uint64_t)v.sensor.w * v.sensor.h * v.sensor.p);
  myelin_build_uint(b, "steps", bins);
  myelin_build_float(b, "dt", w * 1e-6);
  int64_t shape[1] = {ne};
  myelin_build_tensor_copy(b, "step", MYELIN_U4, 1, shape, s->fr.step);
  myelin_build_tensor_copy(b, "unit", MYELIN_U4, 1, shape, s->fr.unit);
  myelin_build_context(b, m);
  myelin_msg *o = myelin_builder_finish(b);
  if (!o) return s->host->error(s->st, "cannot build a message (out of memory?)");
  s->host->emit(s->st, 0, o); /* MYELIN_ESTOP: the run is ending anyway */
  return 0;
}

static const myelin_param_def tf_params[] = {
    {"n_time_bins", MYELIN_PARAM_INT, "0", 1, 0, 16777216, NULL, "bins",
     "A fixed number of frames: bins of (t_last - t_first) // n_time_bins us from the first event "
     "(tonic's SliceByTimeBins; events past the last bin are dropped). Set this or time_window."},
    {"time_window", MYELIN_PARAM_FLOAT, "0", 1, 0, 1e18, NULL, "us",
     "Frames of this length from the first event (tonic's SliceByTime): floor((duration - window) / "
     "window) + 1 of them, ceil with include_incomplete."},
    {"include_incomplete", MYELIN_PARAM_BOOL, "false", 0, 0, 0, NULL, NULL,
     "time_window: keep the last, shorter window (tonic's include_incomplete)."},
    {"mode", MYELIN_PARAM_ENUM, "counts", 0, 0, 0, "counts|binary", NULL,
     "counts: a unit appears in a step as many times as it had events in the bin (tonic's frame "
     "values); binary: once."},
    {NULL, 0, NULL, 0, 0, 0, NULL, NULL, NULL}};

static const myelin_port_def tf_inputs[] = {{"in", "events", 0, "one recording per message"},
                                            {NULL, NULL, 0, NULL}};
static const myelin_port_def tf_outputs[] = {
    {"out", "spikes", 0, "n = P*H*W units, unit = (p*H + y)*W + x; steps = bins; context passed through"},
    {NULL, NULL, 0, NULL}};

static const myelin_plugin_desc tf_desc = {
    MYELIN_DESC_HEADER,
    .name = "to_frames",
    .version = "1.0.0",
    .summary = "Events to spike frames with tonic's ToFrame binning (n_time_bins or time_window)",
    .doc = "Turns each `events` message into one `spikes` message holding tonic's ToFrame frames "
           "[T, P, H, W] sparsely: unit = (p*H + y)*W + x, n = P*H*W, steps = T, counts or binary.",
    .params = tf_params,
    .inputs = tf_inputs,
    .outputs = tf_outputs,
    .validate = tf_validate,
    .init = tf_init,
    .process = tf_process,
    .fini = tf_fini,
};

MYELIN_PLUGIN(tf_desc)
