/*
 * event_transform.c — the `event_transform` stage: `events` in, `events`
 * out, one transform per stage (`op`) with tonic's semantics; chain stages
 * for several. The kernels are plain functions in event_common
 * (evtransform.c); this file copies the message's arrays, applies one,
 * and rebuilds the message with its context.
 *
 *   denoise     tonic's Denoise(filter_time)
 *   downsample  tonic's Downsample(time_factor, spatial_factor | target_size)
 *   crop        tonic's CenterCrop(size), or a box at `origin`
 *   slice       tonic's SliceByTime(time_window, include_incomplete): one
 *               message per window, with `chunk` and `last`
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "myelin/myelin.h"

enum { OP_DENOISE, OP_DOWNSAMPLE, OP_CROP, OP_SLICE };

typedef struct evtr {
  const myelin_host *host;
  myelin_stage *st;
  int op, incomplete, has_origin, has_target;
  int64_t filter_time, origin[2];
  double fx, fy, time_factor, window;
  uint32_t size[2], target[2];
  ev_array a;
} evtr;

static void et_fini(void *state) {
  evtr *s = state;
  if (!s) return;
  ev_free(&s->a);
  free(s);
}

static int op_of(const char *name) {
  static const char *const ops[] = {"denoise", "downsample", "crop", "slice"};
  for (int i = 0; i < 4; i++)
    if (!strcmp(name, ops[i])) return i;
  return -1;
}

static int et_validate(const myelin_params *p, myelin_validate_ctx *ctx) {
  int op = op_of(myelin_param_str(p, "op"));
  size_t nsf = myelin_param_len(p, "spatial_factor");
  if (nsf < 1 || nsf > 2)
    return myelin_validate_error(ctx, "spatial_factor", "spatial_factor is [f] or [fx, fy]");
  for (size_t i = 0; i < nsf; i++)
    if (!(myelin_param_float_at(p, "spatial_factor", i) > 0))
      return myelin_validate_error(ctx, "spatial_factor", "spatial factors must be > 0");
  size_t nt = myelin_param_len(p, "target_size");
  if (nt != 0 && nt != 2) return myelin_validate_error(ctx, "target_size", "target_size is [W, H] or []");
  if (op == OP_CROP && myelin_param_len(p, "size") != 2)
    return myelin_validate_error(ctx, "size", "op crop needs size: [W, H]");
  for (size_t i = 0; i < myelin_param_len(p, "size"); i++)
    if (myelin_param_int_at(p, "size", i) < 1 || myelin_param_int_at(p, "size", i) > 65536)
      return myelin_validate_error(ctx, "size", "size entries must be in 1..65536");
  size_t no = myelin_param_len(p, "origin");
  if (no != 0 && no != 2) return myelin_validate_error(ctx, "origin", "origin is [x0, y0] or [] (centered)");
  if (op == OP_SLICE && !(myelin_param_float(p, "time_window") > 0))
    return myelin_validate_error(ctx, "time_window", "op slice needs time_window > 0 (us)");
  return 0;
}

static int et_init(const myelin_host *host, myelin_stage *st, const myelin_params *p, void **state) {
  evtr *s = calloc(1, sizeof *s);
  if (!s) return host->error(st, "out of memory");
  s->host = host;
  s->st = st;
  s->op = op_of(myelin_param_str(p, "op"));
  s->filter_time = myelin_param_int(p, "filter_time");
  s->fx = myelin_param_float_at(p, "spatial_factor", 0);
  s->fy = myelin_param_len(p, "spatial_factor") == 2 ? myelin_param_float_at(p, "spatial_factor", 1) : s->fx;
  s->time_factor = myelin_param_float(p, "time_factor");
  if ((s->has_target = myelin_param_len(p, "target_size") == 2)) {
    s->target[0] = (uint32_t)myelin_param_int_at(p, "target_size", 0);
    s->target[1] = (uint32_t)myelin_param_int_at(p, "target_size", 1);
  }
  if (myelin_param_len(p, "size") == 2) {
    s->size[0] = (uint32_t)myelin_param_int_at(p, "size", 0);
    s->size[1] = (uint32_t)myelin_param_int_at(p, "size", 1);
  }
  if ((s->has_origin = myelin_param_len(p, "origin") == 2)) {
    s->origin[0] = myelin_param_int_at(p, "origin", 0);
    s->origin[1] = myelin_param_int_at(p, "origin", 1);
  }
  s->window = myelin_param_float(p, "time_window");
  s->incomplete = myelin_param_bool(p, "include_incomplete");
  if (ev_reserve(&s->a, 1)) {
    free(s);
    return host->error(st, "out of memory");
  }
  *state = s;
  return 0;
}

static int emit(evtr *s, const myelin_msg *src, const ev_sensor *sensor, size_t lo, size_t hi, int64_t chunk,
                int last) {
  ev_array *a = &s->a;
  myelin_builder *b = ev_build(sensor, a->x + lo, a->y + lo, a->p + lo, a->t + lo, hi - lo);
  if (!b) return s->host->error(s->st, "out of memory");
  myelin_build_context(b, src);
  static const char *const keys[] = {"seq", "chunk", "last", NULL};
  if (chunk < 0)
    myelin_build_fields(b, src, keys);
  else {
    uint64_t seq;
    if (myelin_msg_uint(src, "seq", &seq) == 0) myelin_build_uint(b, "seq", seq);
    myelin_build_uint(b, "chunk", (uint64_t)chunk);
    myelin_build_bool(b, "last", last);
  }
  myelin_msg *m = myelin_builder_finish(b);
  if (!m) return s->host->error(s->st, "cannot build a message (out of memory?)");
  s->host->emit(s->st, 0, m); /* MYELIN_ESTOP: the run is ending anyway */
  return 0;
}

static int et_process(void *state, int port, myelin_msg *m) {
  (void)port;
  evtr *s = state;
  ev_view v;
  char err[512];
  if (ev_view_of(m, &v, err, sizeof err)) return s->host->error(s->st, "%s", err);
  ev_array *a = &s->a;
  a->n = 0;
  if (ev_reserve(a, v.n)) return s->host->error(s->st, "out of memory");
  if (v.n) {
    memcpy(a->x, v.x, v.n * sizeof *a->x);
    memcpy(a->y, v.y, v.n * sizeof *a->y);
    memcpy(a->p, v.p, v.n);
    memcpy(a->t, v.t, v.n * sizeof *a->t);
  }
  a->n = v.n;
  ev_sensor sensor = v.sensor;
  switch (s->op) {
  case OP_DENOISE:
    if (ev_denoise(a, s->filter_time)) return s->host->error(s->st, "out of memory");
    break;
  case OP_DOWNSAMPLE: {
    double fx = s->fx, fy = s->fy;
    if (s->has_target) {
      fx = (double)s->target[0] / sensor.w;
      fy = (double)s->target[1] / sensor.h;
    }
    if ((sensor.w - 1) * fx >= 65536 || (sensor.h - 1) * fy >= 65536)
      return s->host->error(s->st, "downsample: the sensor %ux%u scaled by %g x %g exceeds 65536 pixels",
                            sensor.w, sensor.h, fx, fy);
    for (size_t i = 0; i < a->n; i++)
      if (!(fabs((double)a->t[i] * s->time_factor) < 9e18))
        return s->host->error(s->st, "downsample: t = %lld times %g overflows 64 bits", (long long)a->t[i],
                              s->time_factor);
    ev_downsample(a, &sensor, fx, fy, s->time_factor);
    break;
  }
  case OP_CROP: {
    int64_t x0 = s->has_origin ? s->origin[0] : ((int64_t)sensor.w - s->size[0]) / 2;
    int64_t y0 = s->has_origin ? s->origin[1] : ((int64_t)sensor.h - s->size[1]) / 2;
    /* tonic floors the centered offset (Python //): differs from C's / below 0 */
    if (!s->has_origin && (int64_t)sensor.w < s->size[0] && ((int64_t)sensor.w - s->size[0]) % 2) x0--;
    if (!s->has_origin && (int64_t)sensor.h < s->size[1] && ((int64_t)sensor.h - s->size[1]) % 2) y0--;
    ev_crop(a, &sensor, x0, y0, s->size[0], s->size[1]);
    break;
  }
  default: { /* slice */
    size_t *lo, *hi;
    size_t bins = ev_frame_bins(a->t, a->n, 0, s->window, s->incomplete, &lo, &hi);
    if (!bins) return s->host->error(s->st, "out of memory, or more than %zu windows", EV_MAX_BINS);
    int rc = 0;
    for (size_t i = 0; !rc && i < bins; i++)
      rc = emit(s, m, &sensor, lo[i], hi[i], (int64_t)i, i + 1 == bins);
    free(lo);
    free(hi);
    return rc;
  }
  }
  return emit(s, m, &sensor, 0, a->n, -1, 0);
}

static const myelin_param_def et_params[] = {
    {"op", MYELIN_PARAM_ENUM, NULL, 0, 0, 0, "denoise|downsample|crop|slice", NULL,
     "The transform (tonic's semantics): denoise (Denoise), downsample (Downsample), crop (CenterCrop, "
     "or a box at `origin`), slice (SliceByTime: one message per window)."},
    {"filter_time", MYELIN_PARAM_INT, "10000", 1, 0, 9.2e18, NULL, "us",
     "denoise: an event survives when a 4-neighbour fired within this time before it."},
    {"spatial_factor", MYELIN_PARAM_FLOAT_LIST, "[1]", 0, 0, 0, NULL, NULL,
     "downsample: x and y multipliers, [f] or [fx, fy] (results truncated)."},
    {"time_factor", MYELIN_PARAM_FLOAT, "1", 1, 0, 1e9, NULL, NULL, "downsample: timestamp multiplier."},
    {"target_size", MYELIN_PARAM_INT_LIST, "[]", 0, 0, 0, NULL, NULL,
     "downsample: [W, H] of the result; overrides spatial_factor with target / sensor."},
    {"size", MYELIN_PARAM_INT_LIST, "[]", 0, 0, 0, NULL, NULL, "crop: [W, H] of the box (the new sensor)."},
    {"origin", MYELIN_PARAM_INT_LIST, "[]", 0, 0, 0, NULL, NULL,
     "crop: the box's top-left [x0, y0]; [] centers it ((W - w) // 2, (H - h) // 2)."},
    {"time_window", MYELIN_PARAM_FLOAT, "0", 1, 0, 1e18, NULL, "us", "slice: window length."},
    {"include_incomplete", MYELIN_PARAM_BOOL, "false", 0, 0, 0, NULL, NULL,
     "slice: keep the last, shorter window."},
    {NULL, 0, NULL, 0, 0, 0, NULL, NULL, NULL}};

static const myelin_port_def et_inputs[] = {{"in", "events", 0, NULL}, {NULL, NULL, 0, NULL}};
static const myelin_port_def et_outputs[] = {
    {"out", "events", 0, "the transformed events, context passed through (slice: with chunk, last)"},
    {NULL, NULL, 0, NULL}};

static const myelin_plugin_desc et_desc = {
    MYELIN_DESC_HEADER,
    .name = "event_transform",
    .version = "1.0.0",
    .summary = "One tonic transform on events: denoise, downsample, crop or slice by time",
    .doc = "Applies one of tonic's event transforms per stage (chain stages for more), with tonic's "
           "rules, to each `events` message.",
    .params = et_params,
    .inputs = et_inputs,
    .outputs = et_outputs,
    .validate = et_validate,
    .init = et_init,
    .process = et_process,
    .fini = et_fini,
};

MYELIN_PLUGIN(et_desc)
