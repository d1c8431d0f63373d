/*
 * test_event_transforms.c — `to_frames` and `event_transform` through the
 * harness: small cases worked out by hand (unit numbering, bins, denoise,
 * crop, downsample, slice), then random recordings compared with
 * tests/events/tonic_ref.py, a numpy transcription of tonic's ToFrame,
 * Denoise, CenterCrop and Downsample rules (skipped without numpy).
 */
#include "events.h"
#include "myelin/harness.h"
#include "myelin/npy.h"
#include "testutil.h"

static myelin_msg *events_msg(ev_sensor s, const uint16_t *x, const uint16_t *y, const uint8_t *p,
                              const int64_t *t, size_t n) {
  myelin_builder *b = ev_build(&s, x, y, p, t, n);
  myelin_build_int(b, "label", 4);
  myelin_build_uint(b, "index", 17);
  myelin_msg *m = myelin_builder_finish(b);
  ck_assert_ptr_nonnull(m);
  return m;
}

static myelin_harness *stage(const char *plugin, const char *params) {
  char err[1024];
  myelin_harness *h = myelin_harness_new(plugin, params, err, sizeof err);
  ck_assert_msg(h != NULL, "%s", err);
  return h;
}

static void spikes_of(myelin_msg *m, uint64_t *n, uint64_t *steps, myelin_tensor *step, myelin_tensor *unit) {
  ck_assert_int_eq(myelin_msg_uint(m, "n", n), 0);
  ck_assert_int_eq(myelin_msg_uint(m, "steps", steps), 0);
  ck_assert_int_eq(myelin_msg_tensor(m, "step", step), 0);
  ck_assert_int_eq(myelin_msg_tensor(m, "unit", unit), 0);
  int64_t label;
  ck_assert_int_eq(myelin_msg_int(m, "label", &label), 0);
  ck_assert_int_eq(label, 4);
}

START_TEST(to_frames_by_hand) {
  /* sensor 4x3x2; t = 0, 10, 10, 25, 39, 40: n_time_bins 4 -> width 40 // 4
   * = 10, bins [0,10) [10,20) [20,30) [30,40); t = 40 is past the last bin */
  uint16_t x[] = {1, 3, 3, 0, 2, 1}, y[] = {0, 2, 2, 1, 1, 0};
  uint8_t p[] = {0, 1, 1, 0, 1, 0};
  int64_t t[] = {0, 10, 10, 25, 39, 40};
  myelin_harness *h = stage("to_frames", "{n_time_bins: 4}");
  ck_assert_int_eq(myelin_harness_push(h, NULL, events_msg((ev_sensor){4, 3, 2}, x, y, p, t, 6)), 0);
  uint64_t n, steps;
  myelin_tensor st, un;
  spikes_of(myelin_harness_output(h, "out", 0), &n, &steps, &st, &un);
  ck_assert_uint_eq(n, 24);
  ck_assert_uint_eq(steps, 4);
  /* unit = (p*H + y)*W + x: (1,0,0) -> 1; (3,2,1) -> (3+2)*4+3 = 23 twice (counts);
   * (0,1,0) -> 4; (2,1,1) -> (3+1)*4+2 = 18 */
  uint32_t ws[] = {0, 1, 1, 2, 3}, wu[] = {1, 23, 23, 4, 18};
  ck_assert_uint_eq(st.count, 5);
  for (int i = 0; i < 5; i++) {
    ck_assert_uint_eq(((const uint32_t *)st.data)[i], ws[i]);
    ck_assert_uint_eq(((const uint32_t *)un.data)[i], wu[i]);
  }
  double dt;
  ck_assert_int_eq(myelin_msg_float(myelin_harness_output(h, "out", 0), "dt", &dt), 0);
  ck_assert_double_eq_tol(dt, 10e-6, 1e-12);
  myelin_harness_free(h);
  /* binary: the double count becomes one; time_window 15: floor((40-15)/15)+1 = 2 windows */
  h = stage("to_frames", "{time_window: 15, mode: binary}");
  ck_assert_int_eq(myelin_harness_push(h, NULL, events_msg((ev_sensor){4, 3, 2}, x, y, p, t, 6)), 0);
  spikes_of(myelin_harness_output(h, "out", 0), &n, &steps, &st, &un);
  ck_assert_uint_eq(steps, 2);
  ck_assert_uint_eq(st.count, 3); /* [0,15): 1, 23; [15,30): 4 */
  myelin_harness_free(h);
  /* both or neither of n_time_bins / time_window: refused */
  char err[512];
  ck_assert_ptr_null(myelin_harness_new("to_frames", "{}", err, sizeof err));
  ck_assert_msg(strstr(err, "exactly one"), "%s", err);
  /* timestamps going back are refused, naming the event */
  h = stage("to_frames", "{n_time_bins: 2}");
  int64_t tb[] = {0, 10, 5, 25, 39, 40};
  ck_assert_int_ne(myelin_harness_push(h, NULL, events_msg((ev_sensor){4, 3, 2}, x, y, p, tb, 6)), 0);
  ck_assert_msg(strstr(myelin_harness_error(h), "event 2"), "%s", myelin_harness_error(h));
  myelin_harness_free(h);
}
END_TEST

static ev_view out_events(myelin_harness *h, size_t i) {
  ev_view v;
  char err[256];
  myelin_msg *m = myelin_harness_output(h, "out", i);
  ck_assert_ptr_nonnull(m);
  ck_assert_msg(ev_view_of(m, &v, err, sizeof err) == 0, "%s", err);
  return v;
}

START_TEST(transforms_by_hand) {
  /* denoise 100 us: (5,5)@1000 alone; (5,6)@1050 has (5,5) stamped until
   * 1100 > 1050: kept; (9,9)@5000 alone: dropped. Early events (t < 100)
   * see untouched cells as recent: (0,0)@10 kept (tonic's rule). */
  uint16_t x[] = {0, 5, 5, 9}, y[] = {0, 5, 6, 9};
  uint8_t p[] = {0, 1, 0, 1};
  int64_t t[] = {10, 1000, 1050, 5000};
  myelin_harness *h = stage("event_transform", "{op: denoise, filter_time: 100}");
  ck_assert_int_eq(myelin_harness_push(h, NULL, events_msg((ev_sensor){10, 10, 2}, x, y, p, t, 4)), 0);
  ev_view v = out_events(h, 0);
  ck_assert_uint_eq(v.n, 2);
  ck_assert(v.t[0] == 10 && v.t[1] == 1050);
  myelin_harness_free(h);
  /* center crop 4x4 of 10x10: offset 3; keeps (5,5) and (5,6) -> (2,2), (2,3) */
  h = stage("event_transform", "{op: crop, size: [4, 4]}");
  ck_assert_int_eq(myelin_harness_push(h, NULL, events_msg((ev_sensor){10, 10, 2}, x, y, p, t, 4)), 0);
  v = out_events(h, 0);
  ck_assert(v.n == 2 && v.x[0] == 2 && v.y[0] == 2 && v.y[1] == 3 && v.sensor.w == 4 && v.sensor.h == 4);
  myelin_harness_free(h);
  /* downsample to 5x5 (factor 0.5) with time in ms */
  h = stage("event_transform", "{op: downsample, target_size: [5, 5], time_factor: 0.001}");
  ck_assert_int_eq(myelin_harness_push(h, NULL, events_msg((ev_sensor){10, 10, 2}, x, y, p, t, 4)), 0);
  v = out_events(h, 0);
  ck_assert(v.n == 4 && v.x[3] == 4 && v.y[2] == 3 && v.t[2] == 1 && v.t[3] == 5 && v.sensor.w == 5);
  myelin_harness_free(h);
  /* slice by 2000 us: floor((4990 - 2000) / 2000) + 1 = 2 windows; the last
   * event falls in none (tonic drops the incomplete tail); 3 with include_incomplete */
  h = stage("event_transform", "{op: slice, time_window: 2000}");
  ck_assert_int_eq(myelin_harness_push(h, NULL, events_msg((ev_sensor){10, 10, 2}, x, y, p, t, 4)), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "out"), 2);
  ck_assert_uint_eq(out_events(h, 0).n, 3);
  ck_assert_uint_eq(out_events(h, 1).n, 0);
  myelin_harness_free(h);
  h = stage("event_transform", "{op: slice, time_window: 2000, include_incomplete: true}");
  ck_assert_int_eq(myelin_harness_push(h, NULL, events_msg((ev_sensor){10, 10, 2}, x, y, p, t, 4)), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "out"), 3);
  ck_assert_uint_eq(out_events(h, 2).n, 1);
  int last = 0;
  ck_assert_int_eq(myelin_obj_bool(myelin_msg_get(myelin_harness_output(h, "out", 2), "last"), &last), 0);
  ck_assert_int_eq(last, 1);
  myelin_harness_free(h);
}
END_TEST

/* ---- random recordings against tonic's rules (tonic_ref.py) ---------------- */

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(uint32_t n) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)(rng % n);
}

static void save(const char *dir, const char *name, const char *what, myelin_dtype dt, const void *data,
                 size_t n) {
  char err[256];
  int64_t shape[1] = {(int64_t)n};
  char *path = mt_strf("%s/%s_%s.npy", dir, name, what);
  ck_assert_msg(myelin_npy_write(path, dt, 1, shape, data, err, sizeof err) == 0, "%s", err);
}

static void save_events(const char *dir, const char *name, const char *io, const ev_view *v) {
  save(dir, name, mt_strf("%s_x", io), MYELIN_U2, v->x, v->n);
  save(dir, name, mt_strf("%s_y", io), MYELIN_U2, v->y, v->n);
  save(dir, name, mt_strf("%s_p", io), MYELIN_U1, v->p, v->n);
  save(dir, name, mt_strf("%s_t", io), MYELIN_I8, v->t, v->n);
}

/* One case: random events (sorted t) through plugin(params), inputs and
 * outputs saved for the script with its description (json). */
static void one_case(const char *dir, int k, ev_sensor s, size_t n, int64_t span, const char *plugin,
                     const char *params, const char *json) {
  uint16_t *x = malloc(n * 2 + 2), *y = malloc(n * 2 + 2);
  uint8_t *p = malloc(n + 1);
  int64_t *t = malloc(n * 8 + 8);
  int64_t now = rnd(5000);
  for (size_t i = 0; i < n; i++) {
    /* clustered in space, so denoise keeps some and drops some */
    x[i] = (uint16_t)(i % 7 == 0 ? rnd(s.w) : (s.w / 2 + rnd(5)) % s.w);
    y[i] = (uint16_t)(i % 7 == 0 ? rnd(s.h) : (s.h / 2 + rnd(5)) % s.h);
    p[i] = (uint8_t)rnd(s.p);
    now += rnd(3) == 0 ? 0 : rnd((uint32_t)(2 * span / (int64_t)n) + 1);
    t[i] = now;
  }
  myelin_msg *m = events_msg(s, x, y, p, t, n);
  ev_view in;
  char err[256];
  ck_assert_int_eq(ev_view_of(m, &in, err, sizeof err), 0);
  char *name = mt_strf("case%02d", k);
  save_events(dir, name, "in", &in);
  myelin_harness *h = stage(plugin, params);
  ck_assert_int_eq(myelin_harness_push(h, NULL, m), 0);
  myelin_msg *o = myelin_harness_output(h, "out", 0);
  char *extra = "";
  if (!strcmp(plugin, "to_frames")) {
    uint64_t nn, steps;
    myelin_tensor st, un;
    spikes_of(o, &nn, &steps, &st, &un);
    save(dir, name, "step", MYELIN_U4, st.data, st.count);
    save(dir, name, "unit", MYELIN_U4, un.data, un.count);
    extra = mt_strf(", \"steps\": %llu", (unsigned long long)steps);
  } else {
    ev_view ov;
    ck_assert_int_eq(ev_view_of(o, &ov, err, sizeof err), 0);
    save_events(dir, name, "out", &ov);
  }
  mt_write(mt_strf("%s/%s.json", dir, name),
           mt_strf("{\"sensor\": [%u, %u, %u]%s, %s}", s.w, s.h, s.p, extra, json));
  myelin_harness_free(h);
  free(x);
  free(y);
  free(p);
  free(t);
}

START_TEST(random_recordings_match_tonic_rules) {
  MT_NEED_PYTHON("numpy", "tonic reference check");
  char *d = mt_tmpdir();
  ev_sensor nm = {34, 34, 2};
  const char *tf = "\"op\": \"to_frames\", \"time_window\": 0, \"include_incomplete\": false";
  one_case(d, 0, nm, 4000, 300000, "to_frames", "{n_time_bins: 60}",
           mt_strf("%s, \"n_time_bins\": 60, \"mode\": \"counts\"", tf));
  one_case(d, 1, nm, 2500, 300000, "to_frames", "{n_time_bins: 7, mode: binary}",
           mt_strf("%s, \"n_time_bins\": 7, \"mode\": \"binary\"", tf));
  one_case(
      d, 2, (ev_sensor){40, 30, 1}, 3000, 100000, "to_frames", "{time_window: 1234.5}",
      "\"op\": \"to_frames\", \"n_time_bins\": 0, \"time_window\": 1234.5, \"include_incomplete\": false");
  one_case(d, 3, nm, 3000, 100000, "to_frames", "{time_window: 5000, include_incomplete: true}",
           "\"op\": \"to_frames\", \"n_time_bins\": 0, \"time_window\": 5000, \"include_incomplete\": true");
  one_case(d, 4, nm, 1, 100, "to_frames", "{n_time_bins: 5}", mt_strf("%s, \"n_time_bins\": 5", tf));
  /* a large sensor: few units per bin over a wide span (the sorted, not scanned, path) */
  one_case(d, 11, (ev_sensor){1280, 720, 2}, 600, 100000, "to_frames", "{n_time_bins: 9}",
           mt_strf("%s, \"n_time_bins\": 9, \"mode\": \"counts\"", tf));
  one_case(d, 5, nm, 3000, 300000, "event_transform", "{op: denoise, filter_time: 10000}",
           "\"op\": \"denoise\", \"filter_time\": 10000");
  one_case(d, 6, nm, 3000, 30000, "event_transform", "{op: denoise, filter_time: 2000}",
           "\"op\": \"denoise\", \"filter_time\": 2000");
  one_case(d, 7, nm, 2000, 30000, "event_transform", "{op: crop, size: [21, 16]}",
           "\"op\": \"crop\", \"size\": [21, 16]");
  one_case(d, 8, (ev_sensor){10, 9, 2}, 500, 30000, "event_transform", "{op: crop, size: [15, 12]}",
           "\"op\": \"crop\", \"size\": [15, 12]");
  one_case(d, 9, nm, 2000, 30000, "event_transform",
           "{op: downsample, spatial_factor: [0.5, 0.3], time_factor: 0.37}",
           "\"op\": \"downsample\", \"spatial_factor\": [0.5, 0.3], \"time_factor\": 0.37");
  one_case(d, 10, nm, 2000, 30000, "event_transform", "{op: downsample, target_size: [10, 7]}",
           "\"op\": \"downsample\", \"target_size\": [10, 7], \"time_factor\": 1.0");
  char *out;
  int rc = mt_run(mt_strf("%s %s/tests/events/tonic_ref.py %s", mt_env("MYELIN_PYTHON", "/usr/bin/python3"),
                          mt_env("MYELIN_SOURCE_DIR", "."), d),
                  &out);
  ck_assert_msg(rc == 0, "%s", out);
  ck_assert_msg(strstr(out, "case10: downsample ok") && strstr(out, "case11: to_frames ok"), "%s", out);
  free(out);
  ck_assert_int_eq(mt_run(mt_strf("rm -rf %s", d), NULL), 0);
}
END_TEST

int main(void) {
  Suite *s = suite_create("event_transforms");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, to_frames_by_hand);
  tcase_add_test(tc, transforms_by_hand);
  tcase_add_test(tc, random_recordings_match_tonic_rules);
  suite_add_tcase(s, tc);
  return mt_run_suite(s);
}
