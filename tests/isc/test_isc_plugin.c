/*
 * test_isc_plugin.c — the isc stage through the harness: batch groups,
 * streaming volumes, reference mode, statistics (the two-sample test with
 * `groups` too), ISFC and error messages.
 * Data are the issue's
 *   data[t, v, s] = sin(0.3(t+1)(v+1)) + cos(0.7(t+1)(s+1) + 0.5v)(0.5 + 0.5v)
 * with T = 40, V = 3, S = 5, sent as <f8 runs so the float64
 * reference numbers apply to 1e-9.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "isc_kernels.h"
#include "myelin/harness.h"
#include "myelin/npy.h"
#include "testutil.h"

enum { T = 40, V = 3, S = 5 };

static double gen(int t, int v, int s) {
  return sin(0.3 * (t + 1) * (v + 1)) + cos(0.7 * (t + 1) * (s + 1) + 0.5 * v) * (0.5 + 0.5 * v);
}

static void build_geometry(myelin_builder *b) {
  myelin_build_map_begin(b, "geometry");
  myelin_build_array_begin(b, "dims");
  for (int i = 0; i < 3; i++) myelin_build_int(b, NULL, i == 0 ? 3 : 1);
  myelin_build_array_end(b);
  double aff[16] = {2, 0, 0, -90, 0, 2, 0, -126, 0, 0, 2, -72, 0, 0, 0, 1};
  int64_t as[2] = {4, 4};
  myelin_build_tensor_copy(b, "affine", MYELIN_F8, 2, as, aff);
  uint32_t vox[V] = {0, 1, 2};
  int64_t vs[1] = {V};
  myelin_build_tensor_copy(b, "voxels", MYELIN_U4, 1, vs, vox);
  myelin_build_map_end(b);
}

static myelin_msg *run_msg(int s, const char *task, int nan_t, int nan_v) {
  double d[T * V];
  for (int t = 0; t < T; t++)
    for (int v = 0; v < V; v++) d[t * V + v] = gen(t, v, s);
  if (nan_t >= 0) d[nan_t * V + nan_v] = NAN;
  myelin_builder *b = myelin_builder_new("run");
  char sub[16];
  snprintf(sub, sizeof sub, "%02d", s + 1);
  myelin_build_str(b, "subject", sub);
  myelin_build_str(b, "task", task);
  myelin_build_int(b, "run", 1);
  myelin_build_float(b, "tr", 1.5);
  int64_t shp[2] = {T, V};
  myelin_build_tensor_copy(b, "data", MYELIN_F8, 2, shp, d);
  build_geometry(b);
  myelin_msg *m = myelin_builder_finish(b);
  ck_assert_ptr_nonnull(m);
  return m;
}

static myelin_msg *volume_msg(int s, int t, const char *task) {
  float d[V];
  for (int v = 0; v < V; v++) d[v] = (float)gen(t, v, s);
  myelin_builder *b = myelin_builder_new("volume");
  char sub[16];
  snprintf(sub, sizeof sub, "%02d", s + 1);
  myelin_build_str(b, "subject", sub);
  myelin_build_str(b, "task", task);
  myelin_build_int(b, "index", t);
  int64_t shp[1] = {V};
  myelin_build_tensor_copy(b, "data", MYELIN_F4, 1, shp, d);
  build_geometry(b);
  return myelin_builder_finish(b);
}

static myelin_harness *harness(const char *params) {
  char err[512];
  myelin_harness *h = myelin_harness_new("isc", params, err, sizeof err);
  ck_assert_msg(h != NULL, "harness: %s", err);
  return h;
}

static const double *tensor_of(myelin_msg *m, const char *key, myelin_tensor *t, int ndim) {
  ck_assert_int_eq(myelin_msg_tensor(m, key, t), 0);
  ck_assert_int_eq(t->dtype, MYELIN_F8);
  ck_assert_int_eq(t->ndim, ndim);
  return t->data;
}

START_TEST(batch_leave_one_out) {
  myelin_harness *h = harness("{summary: mean}");
  for (int s = 0; s < S; s++) ck_assert_int_eq(myelin_harness_push(h, NULL, run_msg(s, "story", -1, 0)), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 0);
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 1);
  myelin_msg *m = myelin_harness_output(h, "map", 0);
  ck_assert_str_eq(myelin_msg_kind(m), "map");
  ck_assert(myelin_obj_str_eq(myelin_msg_get(m, "stat"), "isc"));
  ck_assert(myelin_obj_str_eq(myelin_msg_get(m, "task"), "story"));
  myelin_tensor t;
  const double *d = tensor_of(m, "data", &t, 2);
  ck_assert_int_eq(t.shape[0], S);
  ck_assert_int_eq(t.shape[1], V);
  const double row0[V] = {0.8533185988, 0.5474540740, 0.4686142007};
  const double fm[V] = {0.8856881756, 0.6230748423, 0.3898931590};
  for (int v = 0; v < V; v++) ck_assert_double_eq_tol(d[v], row0[v], 1e-9);
  const double *sm = tensor_of(m, "summary", &t, 1);
  for (int v = 0; v < V; v++) ck_assert_double_eq_tol(sm[v], fm[v], 1e-9);
  myelin_obj subs = myelin_msg_get(m, "subjects");
  ck_assert_uint_eq(myelin_obj_len(subs), S);
  ck_assert(myelin_obj_str_eq(myelin_obj_at(subs, 4), "05"));
  myelin_obj geo = myelin_msg_get(m, "geometry");
  ck_assert(myelin_obj_exists(geo));
  myelin_tensor vox;
  ck_assert_int_eq(myelin_obj_tensor(myelin_obj_get(geo, "voxels"), &vox), 0);
  ck_assert_int_eq(vox.shape[0], V);
  myelin_harness_free(h);
}
END_TEST

START_TEST(batch_pairwise_and_early_group) {
  myelin_harness *h = harness("{pairwise: true, subjects: 5}");
  for (int s = 0; s < S; s++) {
    ck_assert_uint_eq(myelin_harness_count(h, "map"), 0);
    ck_assert_int_eq(myelin_harness_push(h, NULL, run_msg(s, "story", -1, 0)), 0);
  }
  /* the group is complete: emitted before end of stream */
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 1);
  myelin_msg *m = myelin_harness_output(h, "map", 0);
  myelin_tensor t;
  const double *d = tensor_of(m, "data", &t, 2);
  ck_assert_int_eq(t.shape[0], 10);
  const double p01[V] = {0.7965550167, 0.4172263151, 0.2696073252};
  for (int v = 0; v < V; v++) ck_assert_double_eq_tol(d[v], p01[v], 1e-9);
  myelin_tensor pt;
  ck_assert_int_eq(myelin_msg_tensor(m, "pairs", &pt), 0);
  ck_assert_int_eq(pt.shape[0], 10);
  ck_assert_uint_eq(((const uint32_t *)pt.data)[2 * 9 + 0], 3);
  ck_assert_uint_eq(((const uint32_t *)pt.data)[2 * 9 + 1], 4);
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 1);
  myelin_harness_free(h);
}
END_TEST

START_TEST(tasks_are_separate_groups) {
  myelin_harness *h = harness("{}");
  for (int s = 0; s < S; s++) {
    ck_assert_int_eq(myelin_harness_push(h, NULL, run_msg(s, "a", -1, 0)), 0);
    if (s < 3) ck_assert_int_eq(myelin_harness_push(h, NULL, run_msg(s, "b", -1, 0)), 0);
  }
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 2);
  myelin_tensor t;
  tensor_of(myelin_harness_output(h, "map", 1), "data", &t, 2);
  ck_assert_int_eq(t.shape[0], 3);
  myelin_harness_free(h);

  /* runs without geometry still give a schema-valid map (empty geometry) */
  h = harness("{}");
  for (int s = 0; s < 3; s++) {
    myelin_builder *b = myelin_builder_new("run");
    myelin_build_int(b, "subject", s);
    double d[T * V];
    for (int i = 0; i < T * V; i++) d[i] = gen(i / V, i % V, s);
    int64_t shp[2] = {T, V};
    myelin_build_tensor_copy(b, "data", MYELIN_F8, 2, shp, d);
    ck_assert_int_eq(myelin_harness_push(h, NULL, myelin_builder_finish(b)), 0);
  }
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  myelin_msg *m = myelin_harness_output(h, "map", 0);
  ck_assert_int_eq(myelin_obj_type_of(myelin_msg_get(m, "geometry")), MYELIN_OBJ_MAP);
  ck_assert(myelin_obj_str_eq(myelin_obj_at(myelin_msg_get(m, "subjects"), 2), "2"));
  myelin_harness_free(h);
}
END_TEST

START_TEST(nan_gives_nan_exactly_there) {
  myelin_harness *h = harness("{}");
  for (int s = 0; s < S; s++)
    ck_assert_int_eq(myelin_harness_push(h, NULL, run_msg(s, "story", s == 2 ? 5 : -1, 1)), 0);
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  myelin_tensor t;
  const double *d = tensor_of(myelin_harness_output(h, "map", 0), "data", &t, 2);
  for (int i = 0; i < S * V; i++) ck_assert_msg(isnan(d[i]) == (i == 2 * V + 1), "entry %d", i);
  myelin_harness_free(h);

  h = harness("{tolerate_nans: false}");
  for (int s = 0; s < S; s++)
    ck_assert_int_eq(myelin_harness_push(h, NULL, run_msg(s, "story", s == 2 ? 5 : -1, 1)), 0);
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  d = tensor_of(myelin_harness_output(h, "map", 0), "data", &t, 2);
  for (int i = 0; i < S * V; i++) ck_assert_msg(isnan(d[i]) == (i % V == 1), "strict entry %d", i);
  myelin_harness_free(h);
}
END_TEST

/* BrainIAK's reading of tolerate_nans: the int 1 is True (nanmean, no
 * threshold), the float 1.0 the fraction 1.0 (every subject NaN-free, so the
 * voxel with one NaN subject is NaN in every row); 0 and 0.0 are False. */
START_TEST(tolerate_nans_int_one_is_true) {
  static const struct {
    const char *params;
    int whole_voxel; /* 1: voxel 1 NaN in every row; 0: only row 2 */
  } cases[] = {{"{tolerate_nans: 1}", 0},   {"{tolerate_nans: true}", 0}, {"{tolerate_nans: +1}", 0},
               {"{tolerate_nans: 1.0}", 1}, {"{tolerate_nans: 1.}", 1},   {"{tolerate_nans: 1e0}", 1},
               {"{tolerate_nans: 0}", 1},   {"{tolerate_nans: 0.0}", 1},  {"{tolerate_nans: 0.8}", 0},
               {"{tolerate_nans: 0.81}", 1}};
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    myelin_harness *h = harness(cases[k].params);
    for (int s = 0; s < S; s++)
      ck_assert_int_eq(myelin_harness_push(h, NULL, run_msg(s, "story", s == 2 ? 5 : -1, 1)), 0);
    ck_assert_int_eq(myelin_harness_eos(h), 0);
    myelin_tensor t;
    const double *d = tensor_of(myelin_harness_output(h, "map", 0), "data", &t, 2);
    for (int i = 0; i < S * V; i++) {
      int want = cases[k].whole_voxel ? i % V == 1 : i == 2 * V + 1;
      ck_assert_msg(isnan(d[i]) == want, "%s: entry %d is %g", cases[k].params, i, d[i]);
    }
    myelin_harness_free(h);
  }
  /* other ints and out-of-range or non-numeric values are refused, naming
   * the parameter and both spellings of one */
  static const char *bad[] = {"{tolerate_nans: 2}",   "{tolerate_nans: -1}",  "{tolerate_nans: 1.5}",
                              "{tolerate_nans: nan}", "{tolerate_nans: inf}", "{tolerate_nans: 0x1}",
                              "{tolerate_nans: ''}"};
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    char err[512];
    ck_assert_msg(myelin_harness_new("isc", bad[k], err, sizeof err) == NULL, "%s accepted", bad[k]);
    ck_assert_msg(strstr(err, "tolerate_nans") && strstr(err, "1.0"), "%s: %s", bad[k], err);
  }
}
END_TEST

START_TEST(streaming_equals_batch) {
  myelin_harness *h = harness("{subjects: 5, every: 10, summary: mean}");
  /* interleaved, with subject 3 running one TR behind */
  for (int t = 0; t <= T; t++)
    for (int s = 0; s < S; s++) {
      int tr = s == 3 ? t - 1 : t;
      if (tr < 0 || tr >= T) continue;
      ck_assert_int_eq(myelin_harness_push(h, NULL, volume_msg(s, tr, "story")), 0);
    }
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "map"), T / 10);
  myelin_msg *last = myelin_harness_output(h, "map", T / 10 - 1);
  myelin_tensor t;
  const double *d = tensor_of(last, "data", &t, 2);
  ck_assert_int_eq(t.shape[0], S);
  uint64_t trs = 0;
  ck_assert_int_eq(myelin_msg_uint(last, "trs", &trs), 0);
  ck_assert_uint_eq(trs, T);
  /* batch on the same float32 samples */
  static float f[S][T * V];
  const void *px[S];
  for (int s = 0; s < S; s++) {
    for (int i = 0; i < T * V; i++) f[s][i] = (float)gen(i / V, i % V, s);
    px[s] = f[s];
  }
  isc_data dd = {.x = px, .f64 = 0, .S = S, .T = T, .V = V};
  double batch[S * V], mean[V];
  ck_assert_int_eq(isc_loo(&dd, (isc_nan_policy){1, -1}, 1, batch), 0);
  for (int i = 0; i < S * V; i++) ck_assert_double_eq_tol(d[i], batch[i], 1e-10);
  isc_summarize(batch, S, V, ISC_SUMMARY_MEAN, mean);
  const double *sm = tensor_of(last, "summary", &t, 1);
  for (int v = 0; v < V; v++) ck_assert_double_eq_tol(sm[v], mean[v], 1e-10);
  myelin_harness_free(h);

  /* pairwise streaming, subjects arriving in reverse order */
  h = harness("{subjects: 5, every: 40, pairwise: true}");
  for (int tr = 0; tr < T; tr++)
    for (int s = S - 1; s >= 0; s--) ck_assert_int_eq(myelin_harness_push(h, NULL, volume_msg(s, tr, "story")), 0);
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 1);
  d = tensor_of(myelin_harness_output(h, "map", 0), "data", &t, 2);
  ck_assert_int_eq(t.shape[0], 10);
  double pb[10 * V];
  ck_assert_int_eq(isc_pairwise(&dd, (isc_nan_policy){1, -1}, 1, pb), 0);
  for (int i = 0; i < 10 * V; i++) ck_assert_double_eq_tol(d[i], pb[i], 1e-10);
  myelin_harness_free(h);
}
END_TEST

START_TEST(reference_mode) {
  /* reference = mean of subjects 1..4; live subject 0 streams its volumes */
  char *dir = mt_tmpdir();
  char *path = mt_strf("%s/ref.npy", dir);
  static float ref[T * V];
  for (int t = 0; t < T; t++)
    for (int v = 0; v < V; v++) {
      double acc = 0;
      for (int s = 1; s < S; s++) acc += (float)gen(t, v, s);
      ref[t * V + v] = (float)(acc / 4);
    }
  char err[256];
  int64_t shp[2] = {T, V};
  ck_assert_int_eq(myelin_npy_write(path, MYELIN_F4, 2, shp, ref, err, sizeof err), 0);
  char *params = mt_strf("{reference: '%s', every: 8}", path);
  myelin_harness *h = harness(params);
  for (int t = 0; t < T; t++) ck_assert_int_eq(myelin_harness_push(h, NULL, volume_msg(0, t, "story")), 0);
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "map"), T / 8);
  myelin_tensor t;
  const double *d = tensor_of(myelin_harness_output(h, "map", T / 8 - 1), "data", &t, 2);
  ck_assert_int_eq(t.shape[0], 1);
  static float live[T * V];
  for (int i = 0; i < T * V; i++) live[i] = (float)gen(i / V, i % V, 0);
  const void *px[2] = {live, ref};
  isc_data dd = {.x = px, .f64 = 0, .S = 2, .T = T, .V = V};
  double want[V];
  ck_assert_int_eq(isc_loo(&dd, (isc_nan_policy){1, -1}, 1, want), 0);
  for (int v = 0; v < V; v++) ck_assert_double_eq_tol(d[v], want[v], 1e-10);
  /* a TR past the reference is an error naming the file */
  ck_assert_int_ne(myelin_harness_push(h, NULL, volume_msg(0, T, "story")), 0);
  ck_assert_ptr_nonnull(strstr(myelin_harness_error(h), "ref.npy"));
  myelin_harness_free(h);

  /* the same reference as the first message of an .mpk; a whole run input */
  char *mpk = mt_strf("%s/ref.mpk", dir);
  myelin_builder *b = myelin_builder_new("tensor");
  myelin_build_tensor_copy(b, "data", MYELIN_F4, 2, shp, ref);
  myelin_msg *rm = myelin_builder_finish(b);
  size_t len = 0;
  const uint8_t *bytes = myelin_msg_bytes(rm, &len);
  FILE *f = fopen(mpk, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(bytes, 1, len, f), len);
  fclose(f);
  myelin_msg_unref(rm);
  char *p2 = mt_strf("{reference: '%s'}", mpk);
  h = harness(p2);
  myelin_msg *run = run_msg(0, "story", -1, 0);
  ck_assert_int_eq(myelin_harness_push(h, NULL, run), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 1);
  d = tensor_of(myelin_harness_output(h, "map", 0), "data", &t, 2);
  for (int v = 0; v < V; v++) ck_assert_double_eq_tol(d[v], want[v], 1e-6); /* f8 run vs f4 live */
  myelin_harness_free(h);
  free(p2);
  free(mpk);
  free(params);
  free(path);
  free(dir);
}
END_TEST

START_TEST(statistics_and_isfc) {
  myelin_harness *h = harness("{summary: median, stats: bootstrap, n_resamples: 199, seed: 5, isfc: true}");
  for (int s = 0; s < S; s++) ck_assert_int_eq(myelin_harness_push(h, NULL, run_msg(s, "story", -1, 0)), 0);
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  myelin_msg *m = myelin_harness_output(h, "map", 0);
  myelin_tensor t;
  const double *p = tensor_of(m, "p", &t, 1);
  const double *ci = tensor_of(m, "ci", &t, 2);
  ck_assert_int_eq(t.shape[0], 2);
  const double *sm = tensor_of(m, "summary", &t, 1);
  for (int v = 0; v < V; v++) {
    ck_assert_double_eq(p[v], 1.0 / 200); /* strong ISC: the p floor */
    ck_assert(ci[v] <= sm[v] && sm[v] <= ci[V + v]);
  }
  ck_assert_uint_eq(myelin_harness_count(h, "isfc"), 1);
  const double *isfc = tensor_of(myelin_harness_output(h, "isfc", 0), "data", &t, 2);
  ck_assert_int_eq(t.shape[0], V);
  for (int v = 0; v < V; v++) ck_assert_double_eq_tol(isfc[v * V + v], sm[v], 1e-12);
  myelin_harness_free(h);

  /* 2^5 = 32 <= 1000: exact sign-flip test, p = count / 32 */
  h = harness("{summary: mean, stats: permutation}");
  for (int s = 0; s < S; s++) ck_assert_int_eq(myelin_harness_push(h, NULL, run_msg(s, "story", -1, 0)), 0);
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  m = myelin_harness_output(h, "map", 0);
  uint64_t n = 0;
  ck_assert_int_eq(myelin_msg_uint(m, "n_resamples", &n), 0);
  ck_assert_uint_eq(n, 32);
  p = tensor_of(m, "p", &t, 1);
  for (int v = 0; v < V; v++) ck_assert_double_eq(p[v], 1.0 / 32);
  myelin_harness_free(h);

  /* seeds make timeshift reproducible */
  double first[V];
  for (int rep = 0; rep < 2; rep++) {
    h = harness("{summary: mean, stats: timeshift, n_resamples: 50, seed: 9, threads: 2}");
    for (int s = 0; s < S; s++) ck_assert_int_eq(myelin_harness_push(h, NULL, run_msg(s, "story", -1, 0)), 0);
    ck_assert_int_eq(myelin_harness_eos(h), 0);
    p = tensor_of(myelin_harness_output(h, "map", 0), "p", &t, 1);
    for (int v = 0; v < V; v++) {
      ck_assert(p[v] >= 1.0 / 51 && p[v] <= 1.0);
      if (rep == 0) first[v] = p[v];
      else ck_assert_double_eq(p[v], first[v]);
    }
    myelin_harness_free(h);
  }
}
END_TEST

START_TEST(errors_are_clear) {
  char err[512];
  ck_assert_ptr_null(myelin_harness_new("isc", "{tolerate_nans: maybe}", err, sizeof err));
  ck_assert_ptr_nonnull(strstr(err, "tolerate_nans"));
  ck_assert_ptr_null(myelin_harness_new("isc", "{stats: bootstrap}", err, sizeof err));
  ck_assert_ptr_nonnull(strstr(err, "summary"));
  ck_assert_ptr_null(myelin_harness_new("isc", "{reference: /nonexistent/ref.npy}", err, sizeof err));

  myelin_harness *h = harness("{}");
  ck_assert_int_eq(myelin_harness_push(h, NULL, run_msg(0, "story", -1, 0)), 0);
  myelin_builder *b = myelin_builder_new("run");
  myelin_build_str(b, "subject", "07");
  myelin_build_str(b, "task", "story");
  myelin_build_int(b, "run", 1);
  double d[10 * V] = {0};
  int64_t shp[2] = {10, V};
  myelin_build_tensor_copy(b, "data", MYELIN_F8, 2, shp, d);
  ck_assert_int_ne(myelin_harness_push(h, NULL, myelin_builder_finish(b)), 0);
  ck_assert_ptr_nonnull(strstr(myelin_harness_error(h), "'07'"));
  ck_assert_int_ne(myelin_harness_push(h, NULL, run_msg(0, "story", -1, 0)), 0);
  ck_assert_ptr_nonnull(strstr(myelin_harness_error(h), "two runs"));
  myelin_harness_free(h);

  h = harness("{}");
  b = myelin_builder_new("run");
  myelin_build_str(b, "subject", "01");
  int64_t one[2] = {1, V};
  myelin_build_tensor_copy(b, "data", MYELIN_F8, 2, one, d);
  ck_assert_int_ne(myelin_harness_push(h, NULL, myelin_builder_finish(b)), 0);
  ck_assert_ptr_nonnull(strstr(myelin_harness_error(h), "at least 2"));
  myelin_harness_free(h);

  /* stats: bootstrap with two subjects: refused (its null is 0 or NaN, so
   * any r > 0 would read as p = 1/(n+1)), at validation when `subjects: 2`
   * says so, else when the two-subject group is computed. */
  ck_assert_ptr_null(
      myelin_harness_new("isc", "{summary: mean, stats: bootstrap, subjects: 2}", err, sizeof err));
  ck_assert_msg(strstr(err, "stats") && strstr(err, "bootstrap") && strstr(err, "at least 3 subjects"), "%s",
                err);
  h = harness("{summary: median, stats: bootstrap, pairwise: true}");
  ck_assert_int_eq(myelin_harness_push(h, NULL, run_msg(0, "story", -1, 0)), 0);
  ck_assert_int_eq(myelin_harness_push(h, NULL, run_msg(1, "story", -1, 0)), 0);
  ck_assert_int_ne(myelin_harness_eos(h), 0);
  ck_assert_msg(strstr(myelin_harness_error(h), "bootstrap") && strstr(myelin_harness_error(h), "'story'") &&
                    strstr(myelin_harness_error(h), "at least 3 subjects"),
                "%s", myelin_harness_error(h));
  ck_assert_ptr_null(myelin_harness_output(h, "map", 0));
  myelin_harness_free(h);
  /* the tests that are defined with two subjects still run */
  h = harness("{summary: mean, stats: timeshift, n_resamples: 20}");
  ck_assert_int_eq(myelin_harness_push(h, NULL, run_msg(0, "story", -1, 0)), 0);
  ck_assert_int_eq(myelin_harness_push(h, NULL, run_msg(1, "story", -1, 0)), 0);
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  ck_assert_ptr_nonnull(myelin_harness_output(h, "map", 0));
  myelin_harness_free(h);

  h = harness("{}");
  ck_assert_int_eq(myelin_harness_push(h, NULL, run_msg(0, "story", -1, 0)), 0);
  ck_assert_int_ne(myelin_harness_eos(h), 0);
  ck_assert_ptr_nonnull(strstr(myelin_harness_error(h), "at least 2 subjects"));
  myelin_harness_free(h);

  h = harness("{}");
  ck_assert_int_ne(myelin_harness_push(h, NULL, volume_msg(0, 0, "story")), 0);
  ck_assert_ptr_nonnull(strstr(myelin_harness_error(h), "subjects"));
  myelin_harness_free(h);

  h = harness("{}");
  b = myelin_builder_new("run");
  myelin_build_str(b, "subject", "01");
  myelin_build_str(b, "data", "not a tensor");
  ck_assert_int_ne(myelin_harness_push(h, NULL, myelin_builder_finish(b)), 0);
  ck_assert_ptr_nonnull(strstr(myelin_harness_error(h), "`data`"));
  myelin_harness_free(h);
}
END_TEST

/* ---- two-sample permutation test (`groups`) ---------------------------------- */

enum { GS = 6 };

/* A planted group effect: subjects 01-03 (group "a") share a strong signal at
 * voxels 0 and 1, 04-06 ("b") carry it weakly; voxel 2 is alike for all. */
static double ggen(int t, int v, int s) {
  double w = v == 2 ? 0.7 : (s < 3 ? 1.5 : 0.3);
  return w * sin(0.37 * t + v) + 0.8 * sin(1.3 * (t + 1) * (s + 2) + 0.7 * v * (s + 1));
}

static myelin_msg *group_run(int s, const char *task) {
  double d[T * V];
  for (int i = 0; i < T * V; i++)
    d[i] = ggen(i / V, i % V, s);
  myelin_builder *b = myelin_builder_new("run");
  char sub[16];
  snprintf(sub, sizeof sub, "%02d", s + 1);
  myelin_build_str(b, "subject", sub);
  myelin_build_str(b, "task", task);
  int64_t shp[2] = {T, V};
  myelin_build_tensor_copy(b, "data", MYELIN_F8, 2, shp, d);
  build_geometry(b);
  return myelin_builder_finish(b);
}

/* Pushes the six subjects in a scrambled order and ends the stream. */
static myelin_harness *group_harness(const char *params, int nsub) {
  static const int order[GS] = {4, 0, 5, 2, 1, 3};
  myelin_harness *h = harness(params);
  for (int i = 0; i < GS; i++)
    if (order[i] < nsub) ck_assert_int_eq(myelin_harness_push(h, NULL, group_run(order[i], "story")), 0);
  return h;
}

/* The kernels run directly on the same data: what the stage must emit. */
static void group_expect(int pairwise, isc_summary_kind kind, isc_side side, double *obs, double *p,
                         size_t *n) {
  static double x[GS][T * V];
  const void *px[GS];
  for (int s = 0; s < GS; s++) {
    for (int i = 0; i < T * V; i++)
      x[s][i] = ggen(i / V, i % V, s);
    px[s] = x[s];
  }
  isc_data d = {.x = px, .f64 = 1, .S = GS, .T = T, .V = V};
  double iscs[15 * V];
  const uint8_t g[GS] = {0, 0, 0, 1, 1, 1};
  ck_assert_int_eq(pairwise ? isc_pairwise(&d, (isc_nan_policy){1, -1}, 1, iscs)
                            : isc_loo_groups(&d, g, (isc_nan_policy){1, -1}, 1, iscs),
                   0);
  uint8_t *all = isc_all_group_assignments(g, GS, 1000, n);
  ck_assert_ptr_nonnull(all);
  ck_assert_int_eq(isc_permutation_groups(iscs, GS, V, pairwise, kind, g, all, *n, 1, side, 1, obs, p, NULL),
                   0);
  free(all);
}

static void expect_strs(myelin_msg *m, const char *key, const char *const *want, size_t n) {
  myelin_obj o = myelin_msg_get(m, key);
  ck_assert_uint_eq(myelin_obj_len(o), n);
  for (size_t i = 0; i < n; i++)
    ck_assert_msg(myelin_obj_str_eq(myelin_obj_at(o, i), want[i]), "%s[%zu] != %s", key, i, want[i]);
}

START_TEST(two_sample_permutation) {
  /* both spellings: one comma-separated string and list items with sub- */
  myelin_harness *h = group_harness(
      "{summary: mean, stats: permutation, groups: ['01:a, 02:a,03:a', sub-04:b, sub-05:b, sub-06:b]}", GS);
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 1);
  myelin_msg *m = myelin_harness_output(h, "map", 0);
  ck_assert(myelin_obj_str_eq(myelin_msg_get(m, "test"), "two-sample"));
  static const char *const labels[2] = {"a", "b"}, *const subs[GS] = {"a", "a", "a", "b", "b", "b"};
  expect_strs(m, "group_labels", labels, 2);
  expect_strs(m, "subject_groups", subs, GS);
  uint64_t n = 0;
  ck_assert_int_eq(myelin_msg_uint(m, "n_resamples", &n), 0);
  ck_assert_uint_eq(n, 20); /* C(6, 3) = 20 <= 1000: exact */
  myelin_tensor t;
  const double *p = tensor_of(m, "p", &t, 1);
  const double *diff = tensor_of(m, "difference", &t, 1);
  const double *gsum = tensor_of(m, "group_summary", &t, 2);
  ck_assert_int_eq(t.shape[0], 2);
  tensor_of(m, "summary", &t, 1);
  double obs[V], want[V];
  size_t nw = 0;
  group_expect(0, ISC_SUMMARY_MEAN, ISC_SIDE_RIGHT, obs, want, &nw);
  ck_assert_uint_eq(nw, 20);
  for (int v = 0; v < V; v++) {
    ck_assert_double_eq(p[v], want[v]);
    ck_assert_double_eq(diff[v], obs[v]);
    ck_assert_double_eq_tol(gsum[v] - gsum[V + v], diff[v], 1e-12);
  }
  /* the planted effect: group a's ISC above b's, the most extreme of 20 */
  for (int v = 0; v < 2; v++) {
    ck_assert(diff[v] > 0.2);
    ck_assert_double_eq(p[v], 1.0 / 20);
  }
  ck_assert(p[2] > 0.1);
  myelin_harness_free(h);

  /* pairwise, median, left side, labels that sort numerically (10 > 9) */
  h = group_harness("{pairwise: true, summary: median, stats: permutation, side: left, "
                    "groups: '01:9,02:9,03:9,04:10,05:10,06:10'}",
                    GS);
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  m = myelin_harness_output(h, "map", 0);
  static const char *const nlabels[2] = {"9", "10"};
  expect_strs(m, "group_labels", nlabels, 2);
  p = tensor_of(m, "p", &t, 1);
  diff = tensor_of(m, "difference", &t, 1);
  group_expect(1, ISC_SUMMARY_MEDIAN, ISC_SIDE_LEFT, obs, want, &nw);
  for (int v = 0; v < V; v++) {
    ck_assert_double_eq(p[v], want[v]);
    ck_assert_double_eq(diff[v], obs[v]);
  }
  ck_assert_double_eq(p[0], 1.0); /* a's within-group ISC is the highest: nothing lies to its left */
  myelin_harness_free(h);

  /* fewer resamples than assignments: Monte Carlo, reproducible by seed */
  double first[V];
  for (int rep = 0; rep < 2; rep++) {
    h = group_harness("{summary: mean, stats: permutation, n_resamples: 15, seed: 4, threads: 2, "
                      "groups: [01:a, 02:a, 03:a, 04:b, 05:b, 06:b]}",
                      GS);
    ck_assert_int_eq(myelin_harness_eos(h), 0);
    m = myelin_harness_output(h, "map", 0);
    ck_assert_int_eq(myelin_msg_uint(m, "n_resamples", &n), 0);
    ck_assert_uint_eq(n, 15);
    p = tensor_of(m, "p", &t, 1);
    for (int v = 0; v < V; v++) {
      ck_assert(p[v] >= 1.0 / 16 && p[v] <= 1.0);
      if (rep == 0)
        first[v] = p[v];
      else
        ck_assert_double_eq(p[v], first[v]);
    }
    myelin_harness_free(h);
  }

  /* no groups: the one-sample test, unchanged (and says so) */
  h = group_harness("{summary: mean, stats: permutation}", GS);
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  m = myelin_harness_output(h, "map", 0);
  ck_assert(myelin_obj_str_eq(myelin_msg_get(m, "test"), "one-sample"));
  ck_assert(!myelin_obj_exists(myelin_msg_get(m, "difference")));
  ck_assert_int_eq(myelin_msg_uint(m, "n_resamples", &n), 0);
  ck_assert_uint_eq(n, 64);
  myelin_harness_free(h);
}
END_TEST

/* An init error whose message holds every fragment. */
static void init_fails(const char *params, const char *frag1, const char *frag2) {
  char err[512];
  myelin_harness *h = myelin_harness_new("isc", params, err, sizeof err);
  ck_assert_msg(h == NULL, "accepted %s", params);
  ck_assert_msg(strstr(err, frag1) && strstr(err, frag2), "%s: %s", params, err);
}

START_TEST(two_sample_errors) {
  init_fails("{summary: mean, stats: permutation, groups: '01:a,02:b,03:c'}", "groups",
             "more than two groups");
  init_fails("{summary: mean, stats: permutation, groups: '01:a,02:a'}", "groups", "two groups");
  init_fails("{summary: mean, stats: permutation, groups: '01:a,02:b,01:b'}", "'01'", "two groups");
  init_fails("{summary: mean, stats: permutation, groups: '01-a,02:b'}", "'01-a'", "subject:group");
  init_fails("{summary: mean, stats: permutation, groups: '01:,02:b'}", "groups", "subject and a group");
  init_fails("{summary: mean, stats: bootstrap, groups: '01:a,02:b'}", "groups", "stats: permutation");

  /* a subject without a group: named, at compute time */
  myelin_harness *h =
      group_harness("{summary: mean, stats: permutation, groups: '01:a,02:a,03:a,04:b,05:b'}", GS);
  ck_assert_int_ne(myelin_harness_eos(h), 0);
  ck_assert_msg(strstr(myelin_harness_error(h), "'06'") && strstr(myelin_harness_error(h), "no group"), "%s",
                myelin_harness_error(h));
  myelin_harness_free(h);

  /* a task whose subjects are all in one group */
  h = group_harness("{summary: mean, stats: permutation, groups: '01:a,02:a,03:a,04:b,05:b,06:b'}", 3);
  ck_assert_int_ne(myelin_harness_eos(h), 0);
  ck_assert_msg(strstr(myelin_harness_error(h), "no subject of group 'b'"), "%s", myelin_harness_error(h));
  myelin_harness_free(h);

  /* leave-one-out within a group of two: no row per subject */
  h = group_harness("{summary: mean, stats: permutation, groups: '01:a,02:a,03:a,04:a,05:b,06:b'}", GS);
  ck_assert_int_ne(myelin_harness_eos(h), 0);
  ck_assert_msg(strstr(myelin_harness_error(h), "group 'b' has 2 subjects") &&
                    strstr(myelin_harness_error(h), "at least 3"),
                "%s", myelin_harness_error(h));
  myelin_harness_free(h);

  /* pairwise: a group of one has no within-group pair */
  h = group_harness(
      "{pairwise: true, summary: mean, stats: permutation, groups: '01:a,02:a,03:a,04:b,05:a,06:a'}", GS);
  ck_assert_int_ne(myelin_harness_eos(h), 0);
  ck_assert_msg(strstr(myelin_harness_error(h), "group 'b'") && strstr(myelin_harness_error(h), "at least 2"),
                "%s", myelin_harness_error(h));
  myelin_harness_free(h);
}
END_TEST

/* End to end through the CLI: the demo BIDS dataset -> pipelines/isc.yaml
 * (fmri_source -> isc -> nifti_sink + npy_sink) -> the planted box shows. */
START_TEST(pipeline_end_to_end) {
  MT_NEED_PYTHON("numpy", "the demo generator");
  const char *py = mt_env("MYELIN_PYTHON", "/usr/bin/python3");
  const char *src = mt_env("MYELIN_SOURCE_DIR", ".");
  const char *bin = mt_env("MYELIN_BIN", "myelin");
  char *dir = mt_tmpdir(), *out = NULL;
  /* DATA (the demo folder) and OUT apart: the pipelines must write under OUT only */
  char *data = mt_strf("%s/data", dir), *outd = mt_strf("%s/out", dir);
  char *cmd = mt_strf("%s %s/examples/isc_demo/make_demo.py %s --subjects 6 --trs 80", py, src, data);
  ck_assert_msg(mt_run(cmd, &out) == 0, "make_demo: %s", out);
  free(cmd);
  free(out);
  cmd = mt_strf("DATA=%s OUT=%s %s validate %s/pipelines/isc.yaml", data, outd, bin, src);
  ck_assert_msg(mt_run(cmd, &out) == 0, "validate: %s", out);
  free(cmd);
  free(out);
  cmd = mt_strf("DATA=%s OUT=%s %s run --quiet --check-messages %s/pipelines/isc.yaml", data, outd, bin, src);
  ck_assert_msg(mt_run(cmd, &out) == 0, "run: %s", out);
  free(cmd);
  free(out);
  char *nii = mt_strf("%s/isc/isc_story.nii.gz", outd);
  ck_assert_msg(mt_file_size(nii) > 0, "no %s", nii);
  cmd = mt_strf("%s %s/examples/isc_demo/check_demo.py %s %s", py, src, data, outd);
  int rc = mt_run(cmd, &out);
  ck_assert_msg(rc == 0 && strstr(out, "planted region recovered"), "check_demo: %s", out);
  free(cmd);
  free(out);
  /* streaming: four interleaved volume sources, equal to batch numpy ISC */
  cmd = mt_strf("DATA=%s OUT=%s %s run --quiet --check-messages %s/pipelines/isc_live.yaml", data, outd, bin, src);
  ck_assert_msg(mt_run(cmd, &out) == 0, "run live: %s", out);
  free(cmd);
  free(out);
  if (mt_python_or_skip("numpy nibabel msgpack", "check_demo.py --live")) {
    cmd = mt_strf("%s %s/examples/isc_demo/check_demo.py %s %s --live", py, src, data, outd);
    rc = mt_run(cmd, &out);
    ck_assert_msg(rc == 0, "check_demo --live: %s", out);
    free(cmd);
    free(out);
  }
  /* reference mode: one live subject against the recorded group series */
  cmd = mt_strf("DATA=%s OUT=%s %s run --quiet --check-messages %s/pipelines/isc_feedback.yaml", data, outd, bin, src);
  ck_assert_msg(mt_run(cmd, &out) == 0, "run feedback: %s", out);
  free(cmd);
  free(out);
  if (mt_python_or_skip("numpy nibabel msgpack", "check_demo.py --feedback")) {
    cmd = mt_strf("%s %s/examples/isc_demo/check_demo.py %s %s --feedback", py, src, data, outd);
    rc = mt_run(cmd, &out);
    ck_assert_msg(rc == 0, "check_demo --feedback: %s", out);
    free(cmd);
    free(out);
  }
  /* nothing was written into the input folder */
  const char *outputs[] = {"isc", "isc_live.mpk", "feedback.mpk"};
  for (size_t i = 0; i < 3; i++) {
    char *q = mt_strf("%s/%s", data, outputs[i]);
    ck_assert_msg(access(q, F_OK) != 0, "%s written into the input folder", q);
    free(q);
  }
  /* the two-sample test end to end: 3 + 3 subjects, exact over C(6, 3) = 20
   * assignments, p checked against the map schema and written as .npy */
  char *gy = mt_strf("%s/groups.yaml", dir);
  mt_write(
      gy,
      mt_strf(
          "name: isc-groups\n"
          "stages:\n"
          "  - {id: bold, plugin: fmri_source, params: {path: '%s/data/bids', detrend: 1}}\n"
          "  - id: isc\n"
          "    plugin: isc\n"
          "    inputs: [bold]\n"
          "    params: {summary: mean, stats: permutation, n_resamples: 100,\n"
          "             groups: [sub-01:a, sub-02:a, sub-03:a, sub-04:b, sub-05:b, sub-06:b]}\n"
          "  - {id: npy, plugin: npy_sink, inputs: [isc.map], params: {path: '%s/isc/p.npy', field: p}}\n",
          dir, dir));
  cmd = mt_strf("%s run --quiet --check-messages %s", bin, gy);
  ck_assert_msg(mt_run(cmd, &out) == 0, "run groups: %s", out);
  free(cmd);
  free(out);
  myelin_array pa;
  char perr[256];
  ck_assert_msg(myelin_npy_read(mt_strf("%s/isc/p.npy", dir), &pa, perr, sizeof perr) == 0, "%s", perr);
  ck_assert_int_eq(pa.dtype, MYELIN_F8);
  size_t finite = 0;
  for (size_t i = 0; i < pa.count; i++) {
    double pv = ((const double *)pa.data)[i];
    if (isnan(pv)) continue;
    finite++;
    ck_assert_msg(pv >= 1.0 / 20 && pv <= 1.0 && fabs(pv * 20 - round(pv * 20)) < 1e-9, "p %g is not k/20",
                  pv);
  }
  ck_assert_uint_gt(finite, 0);
  myelin_array_free(&pa);
  /* a bad param is reported against the file, exit code 2 */
  cmd = mt_strf("DATA=%s %s run %s/pipelines/isc.yaml --set isc.tolerate_nans=sometimes", data, bin, src);
  rc = mt_run(cmd, &out);
  ck_assert_msg(rc == 2 && strstr(out, "tolerate_nans"), "bad param: rc %d: %s", rc, out);
  free(cmd);
  free(out);
  free(nii);
  free(data);
  free(outd);
  cmd = mt_strf("rm -rf %s", dir);
  mt_run(cmd, NULL);
  free(cmd);
  free(dir);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("isc_plugin");
  TCase *tc = tcase_create("plugin");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, batch_leave_one_out);
  tcase_add_test(tc, batch_pairwise_and_early_group);
  tcase_add_test(tc, tasks_are_separate_groups);
  tcase_add_test(tc, nan_gives_nan_exactly_there);
  tcase_add_test(tc, tolerate_nans_int_one_is_true);
  tcase_add_test(tc, streaming_equals_batch);
  tcase_add_test(tc, reference_mode);
  tcase_add_test(tc, statistics_and_isfc);
  tcase_add_test(tc, errors_are_clear);
  tcase_add_test(tc, two_sample_permutation);
  tcase_add_test(tc, two_sample_errors);
  tcase_add_test(tc, pipeline_end_to_end);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
