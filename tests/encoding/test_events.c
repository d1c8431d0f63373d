/*
 * test_events.c — word events to the TR grid (plugins/encoding/events.c):
 * SPM canonical HRF convolution and Lanczos resampling against scipy /
 * Huth et al.'s lanczosinterp2D (ref_events.py) on hand-set events, the HRF
 * against hand-computed values, and the encoding stage's `events` param:
 * word events with events: hrf / lanczos give the maps of the dense
 * features the kernels give.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "myelin/harness.h"
#include "myelin/npy.h"
#include "testutil.h"

static const double onsets[4] = {0.7, 3.1, 10.25, 40.0};
static const double xs[8] = {1, -2, 0.5, 3, 2, 1, 1, 1};

static void near_ref(const double *got, const char *dir, const char *name, size_t T, size_t F) {
  myelin_array a;
  char err[512];
  ck_assert_msg(myelin_npy_read(mt_strf("%s/%s.npy", dir, name), &a, err, sizeof err) == 0, "%s", err);
  ck_assert_uint_eq(a.count, T * F);
  const double *r = a.data;
  double mr = 0;
  for (size_t i = 0; i < T * F; i++) {
    ck_assert_msg(fabs(got[i] - r[i]) <= 1e-12 * (1 + fabs(r[i])), "%s[%zu, %zu]: %.17g vs scipy %.17g", name,
                  i / F, i % F, got[i], r[i]);
    mr = fmax(mr, fabs(r[i]));
  }
  ck_assert_msg(mr > 0.1, "%s: degenerate reference", name);
  myelin_array_free(&a);
}

START_TEST(hrf_hand_values) {
  /* Peak near 5 s; gamma(6) - gamma(16)/6 at 5 s: 5^5 e^-5 / 120 - 5^15 e^-5 / 15! / 6. */
  double g6 = pow(5, 5) * exp(-5) / 120, g16 = pow(5, 15) * exp(-5) / 1307674368000.0;
  double p6 = 1 - exp(-32) * (1 + 32 + 512 + 32768.0 / 6 + 1048576.0 / 24 + 33554432.0 / 120);
  double area = p6, term = 1, sum = 1;
  for (int k = 1; k < 16; k++)
    sum += term *= 32.0 / k;
  area -= (1 - exp(-32) * sum) / 6;
  ck_assert(fabs(events_spm_hrf(5) - (g6 - g16 / 6) / area) < 1e-15);
  ck_assert(events_spm_hrf(0) == 0 && events_spm_hrf(-1) == 0 && events_spm_hrf(32.5) == 0);
  double s = 0;
  for (int i = 1; i <= 32000; i++)
    s += events_spm_hrf(i * 1e-3) * 1e-3;
  ck_assert_msg(fabs(s - 1) < 1e-6, "unit area: %.9f", s);
}
END_TEST

START_TEST(kernels_match_scipy) {
  MT_NEED_PYTHON("numpy scipy", "scipy reference");
  char *d = mt_tmpdir();
  char *out = NULL;
  int rc = mt_run(mt_strf("%s %s/tests/encoding/ref_events.py %s",
                          mt_env("MYELIN_PYTHON", "/usr/bin/python3"), mt_env("MYELIN_SOURCE_DIR", "."), d),
                  &out);
  ck_assert_msg(rc == 0, "%s", out);
  free(out);
  double one[1] = {0}, v1[1] = {1}, y[30 * 2];
  events_hrf(one, v1, 1, 1, 2.0, 0, 20, y);
  near_ref(y, d, "hrf1", 20, 1);
  events_hrf(onsets, xs, 4, 2, 1.5, 1, 30, y);
  near_ref(y, d, "hrf3", 30, 2);
  events_lanczos(onsets, xs, 4, 2, 2.0, 0, 25, 3, 1, y);
  near_ref(y, d, "lanczos3", 25, 2);
  events_lanczos(onsets, xs, 4, 2, 2.0, -1, 25, 2, 1, y);
  near_ref(y, d, "lanczos_half", 25, 2);
}
END_TEST

enum { T = 80, V = 6, W = 60, F = 3 };

static myelin_msg *features(int dense, const double *dense_x, const double *on, const double *x) {
  myelin_builder *b = myelin_builder_new("features");
  myelin_build_str(b, "task", "story");
  myelin_build_float(b, "tr", 2.0);
  int64_t ds[2] = {dense ? T : W, F}, os[1] = {W};
  myelin_build_tensor_copy(b, "data", MYELIN_F8, 2, ds, dense ? dense_x : x);
  if (!dense) myelin_build_tensor_copy(b, "onset", MYELIN_F8, 1, os, on);
  myelin_msg *m = myelin_builder_finish(b);
  ck_assert_ptr_nonnull(m);
  return m;
}

static myelin_msg *run_msg(const float *y) {
  myelin_builder *b = myelin_builder_new("run");
  myelin_build_str(b, "subject", "01");
  myelin_build_str(b, "task", "story");
  myelin_build_int(b, "run", 1);
  myelin_build_float(b, "tr", 2.0);
  int64_t s[2] = {T, V};
  myelin_build_tensor_copy(b, "data", MYELIN_F4, 2, s, y);
  myelin_msg *m = myelin_builder_finish(b);
  ck_assert_ptr_nonnull(m);
  return m;
}

static void map_of(const char *params, myelin_msg *feat, const float *y, double r[V]) {
  char err[512];
  myelin_harness *h = myelin_harness_new("encoding", params, err, sizeof err);
  ck_assert_msg(h != NULL, "%s", err);
  ck_assert_msg(myelin_harness_push(h, "features", feat) == 0, "%s", myelin_harness_error(h));
  ck_assert_msg(myelin_harness_push(h, "brain", run_msg(y)) == 0, "%s", myelin_harness_error(h));
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 1);
  myelin_tensor t;
  ck_assert_int_eq(myelin_msg_tensor(myelin_harness_output(h, "map", 0), "data", &t), 0);
  memcpy(r, t.data, V * sizeof(double));
  myelin_harness_free(h);
}

START_TEST(encoding_events_param) {
  static double on[W], x[W * F], dense[T * F];
  static float y[T * V];
  uint64_t s = 11;
  for (int w = 0; w < W; w++) {
    on[w] = 1.3 + 2.6 * w + 0.1 * (w % 3);
    for (int f = 0; f < F; f++) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      x[w * F + f] = (double)(s >> 40) / (double)(1 << 24) - 0.5;
    }
  }
  const char *modes[2] = {"hrf", "lanczos"};
  for (int k = 0; k < 2; k++) {
    if (k == 0)
      events_hrf(on, x, W, F, 2.0, 1, T, dense);
    else
      events_lanczos(on, x, W, F, 2.0, 1, T, 3, 1, dense);
    /* brain: the design plus noise, so r is high and differs per voxel */
    for (int t = 0; t < T; t++)
      for (int v = 0; v < V; v++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        y[t * V + v] =
            (float)(dense[t * F + v % F] + (0.05 + 0.05 * v) * ((double)(s >> 40) / (double)(1 << 24) - 0.5));
      }
    double r_events[V], r_dense[V], r_sum[V];
    map_of(mt_strf("{events: %s, offset: 1, delays: [0], folds: 4}", modes[k]), features(0, NULL, on, x), y,
           r_events);
    map_of("{delays: [0], folds: 4}", features(1, dense, NULL, NULL), y, r_dense);
    map_of("{events: sum, offset: 1, delays: [0], folds: 4}", features(0, NULL, on, x), y, r_sum);
    for (int v = 0; v < V; v++) {
      ck_assert_msg(fabs(r_events[v] - r_dense[v]) < 1e-12, "%s voxel %d: %g vs %g", modes[k], v, r_events[v],
                    r_dense[v]);
      ck_assert_msg(r_events[v] > 0.5, "%s voxel %d: r %g", modes[k], v, r_events[v]);
    }
    ck_assert_msg(fabs(r_sum[0] - r_events[0]) > 1e-3, "%s: binning gave the same map", modes[k]);
  }
}
END_TEST

/* split_layers: one model per layer block, each equal to that block alone. */
START_TEST(encoding_split_layers) {
  enum { L = 2 };
  static double on[W], x[W * F * L], xb[L][W * F];
  static float y[T * V];
  uint64_t s = 5;
  for (int w = 0; w < W; w++) {
    on[w] = 1.0 + 2.5 * w;
    for (int k = 0; k < L * F; k++) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      x[w * L * F + k] = xb[k / F][w * F + k % F] = (double)(s >> 40) / (double)(1 << 24) - 0.5;
    }
  }
  static double dense[T * F];
  for (int t = 0; t < T * F; t++)
    dense[t] = 0;
  for (int w = 0; w < W; w++)
    for (int f = 0; f < F; f++)
      dense[(int)(on[w] / 2.0) * F + f] += xb[1][w * F + f]; /* layer block 1 drives */
  for (int t = 0; t < T; t++)
    for (int v = 0; v < V; v++) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      y[t * V + v] = (float)(dense[t * F + v % F] + 0.1 * ((double)(s >> 40) / (double)(1 << 24) - 0.5));
    }
  myelin_builder *b = myelin_builder_new("features");
  myelin_build_str(b, "task", "story");
  myelin_build_float(b, "tr", 2.0);
  int64_t ds[2] = {W, L * F}, os[1] = {W};
  myelin_build_tensor_copy(b, "data", MYELIN_F8, 2, ds, x);
  myelin_build_tensor_copy(b, "onset", MYELIN_F8, 1, os, on);
  myelin_build_array_begin(b, "layers");
  myelin_build_int(b, NULL, 3);
  myelin_build_int(b, NULL, 7);
  myelin_build_array_end(b);
  myelin_build_int(b, "n_embd", F);
  myelin_msg *fm = myelin_builder_finish(b);
  char err[512];
  myelin_harness *h =
      myelin_harness_new("encoding", "{split_layers: true, delays: [0], folds: 4}", err, sizeof err);
  ck_assert_msg(h != NULL, "%s", err);
  ck_assert_int_eq(myelin_harness_push(h, "features", myelin_msg_ref(fm)), 0);
  ck_assert_msg(myelin_harness_push(h, "brain", run_msg(y)) == 0, "%s", myelin_harness_error(h));
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "map"), L);
  for (int k = 0; k < L; k++) {
    const myelin_msg *m = myelin_harness_output(h, "map", (size_t)k);
    int64_t layer;
    ck_assert_int_eq(myelin_msg_int(m, "layer", &layer), 0);
    ck_assert_int_eq(layer, k ? 7 : 3);
    myelin_tensor t;
    ck_assert_int_eq(myelin_msg_tensor(m, "data", &t), 0);
    double alone[V];
    map_of("{delays: [0], folds: 4}", features(0, NULL, on, xb[k]), y, alone);
    for (int v = 0; v < V; v++) {
      double r = ((const double *)t.data)[v];
      ck_assert_msg(fabs(r - alone[v]) < 1e-12, "layer block %d voxel %d: %g vs %g", k, v, r, alone[v]);
      ck_assert_msg(k ? r > 0.8 : r < 0.5, "layer block %d voxel %d: r %g", k, v, r);
    }
  }
  myelin_harness_free(h);
  /* n_embd that does not divide the columns */
  h = myelin_harness_new("encoding", "{split_layers: true, delays: [0], folds: 4}", err, sizeof err);
  b = myelin_builder_new("features");
  myelin_build_str(b, "task", "story");
  myelin_build_tensor_copy(b, "data", MYELIN_F8, 2, ds, x);
  myelin_build_tensor_copy(b, "onset", MYELIN_F8, 1, os, on);
  myelin_build_array_begin(b, "layers");
  myelin_build_int(b, NULL, 3);
  myelin_build_array_end(b);
  myelin_build_int(b, "n_embd", F);
  ck_assert_int_eq(myelin_harness_push(h, "features", myelin_builder_finish(b)), 0);
  ck_assert_int_ne(myelin_harness_push(h, "brain", run_msg(y)), 0);
  ck_assert_msg(strstr(myelin_harness_error(h), "len(layers) x n_embd = its 6 columns"), "%s",
                myelin_harness_error(h));
  myelin_harness_free(h);
  myelin_msg_unref(fm);
}
END_TEST

int main(void) {
  Suite *su = suite_create("encoding_events");
  TCase *tc = tcase_create("events");
  tcase_add_test(tc, hrf_hand_values);
  tcase_add_test(tc, kernels_match_scipy);
  tcase_add_test(tc, encoding_events_param);
  tcase_add_test(tc, encoding_split_layers);
  suite_add_tcase(su, tc);
  return mt_run_suite(su);
}
