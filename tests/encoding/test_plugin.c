/*
 * test_plugin.c — the encoding plugin through the harness (messages in,
 * maps out) and the demo pipeline through `myelin run`.
 *
 * The numbers come from the reference problem of ref_data.h (sklearn
 * RidgeCV, printed by ref_sklearn.py): with `delays: [0]` the design is X
 * itself, so the map must equal sklearn's fold-mean r and alphas.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "myelin/harness.h"
#include "myelin/msg.h"
#include "ref_data.h"
#include "testutil.h"

/* A features (or tensor) message: data [rows, P] from X; task may be NULL;
 * with tr > 0, rows become word events at onset = row * tr + 0.25 * tr. */
static myelin_msg *features_msg(const char *kind, const char *task, size_t rows, double tr) {
  myelin_builder *b = myelin_builder_new(kind);
  if (task) myelin_build_str(b, "task", task);
  int64_t shape[2] = {(int64_t)rows, P};
  myelin_build_tensor_copy(b, "data", MYELIN_F8, 2, shape, X);
  if (tr > 0) {
    double onset[N];
    for (size_t i = 0; i < rows; i++) onset[i] = ((double)i + 0.25) * tr;
    int64_t wshape[1] = {(int64_t)rows};
    myelin_build_tensor_copy(b, "onset", MYELIN_F8, 1, wshape, onset);
    myelin_build_float(b, "tr", tr);
  }
  myelin_msg *m = myelin_builder_finish(b);
  ck_assert_ptr_nonnull(m);
  return m;
}

/* A run message [N, K] from Y (or y32, or y64 as float64), with a small
 * geometry. */
static myelin_msg *run_msg_any(const char *subject, const char *task, const float *y, const double *y64) {
  myelin_builder *b = myelin_builder_new("run");
  myelin_build_str(b, "subject", subject);
  myelin_build_str(b, "task", task);
  myelin_build_int(b, "run", 1);
  myelin_build_float(b, "tr", 2.0);
  int64_t shape[2] = {N, K};
  if (y64)
    myelin_build_tensor_copy(b, "data", MYELIN_F8, 2, shape, y64);
  else
    myelin_build_tensor_copy(b, "data", MYELIN_F4, 2, shape, y ? y : Y);
  myelin_build_map_begin(b, "geometry");
  myelin_build_array_begin(b, "dims");
  for (int i = 0; i < 3; i++) myelin_build_int(b, NULL, i == 0 ? K : 1);
  myelin_build_array_end(b);
  uint32_t vox[K] = {0, 1, 2, 3, 4};
  int64_t vshape[1] = {K};
  myelin_build_tensor_copy(b, "voxels", MYELIN_U4, 1, vshape, vox);
  myelin_build_map_end(b);
  myelin_msg *m = myelin_builder_finish(b);
  ck_assert_ptr_nonnull(m);
  return m;
}

static myelin_msg *run_msg(const char *subject, const char *task, const float *y) {
  return run_msg_any(subject, task, y, NULL);
}

static myelin_harness *harness(const char *params) {
  char err[512] = "";
  myelin_harness *h = myelin_harness_new("encoding", params, err, sizeof err);
  ck_assert_msg(h != NULL, "harness: %s", err);
  return h;
}

static const double *map_tensor(const myelin_msg *m, const char *key, size_t count) {
  myelin_tensor t;
  ck_assert_int_eq(myelin_msg_tensor(m, key, &t), 0);
  ck_assert_int_eq(t.dtype, MYELIN_F8);
  ck_assert_uint_eq(t.count, count);
  return t.data;
}

static void check_reference_map(const myelin_msg *m, double tol) {
  char buf[64];
  ck_assert_int_eq(myelin_msg_str(m, "stat", buf, sizeof buf), 0);
  ck_assert_str_eq(buf, "r");
  const double *r = map_tensor(m, "data", K), *af = map_tensor(m, "alpha_folds", FOLDS * K);
  const double *rf = map_tensor(m, "r_folds", FOLDS * K), *al = map_tensor(m, "alpha", K);
  for (int k = 0; k < K; k++) {
    ck_assert_msg(fabs(r[k] - REF_R_GCV[k]) < tol, "voxel %d: r %.10f, sklearn %.10f", k, r[k],
                  REF_R_GCV[k]);
    double mean = 0;
    for (int f = 0; f < FOLDS; f++) {
      mean += rf[f * K + k] / FOLDS;
      ck_assert_double_eq_tol(af[f * K + k], ALPHAS[REF_PICK_GCV[f][k]], 1e-9 * af[f * K + k]);
    }
    ck_assert_double_eq_tol(mean, r[k], 1e-12);
  }
  /* alpha = median over folds: voxel 3 picked 1e3, 1e3, 1e8, 1e2, 1e8; voxel 4 1e2 x4, 1e3. */
  ck_assert_double_eq_tol(al[0], 0.1, 1e-12);
  ck_assert_double_eq_tol(al[3], 1e3, 1e-6);
  ck_assert_double_eq_tol(al[4], 1e2, 1e-6);
}

START_TEST(test_matches_sklearn) {
  myelin_harness *h = harness("{delays: [0], scale_y: none}");
  ck_assert_int_eq(myelin_harness_push(h, "features", features_msg("tensor", NULL, N, 0)), 0);
  ck_assert_int_eq(myelin_harness_push(h, "brain", run_msg("01", "story", NULL)), 0);
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 1);
  myelin_msg *m = myelin_harness_output(h, "map", 0);
  check_reference_map(m, 1e-6);
  char buf[64];
  ck_assert_int_eq(myelin_msg_str(m, "subject", buf, sizeof buf), 0);
  ck_assert_str_eq(buf, "01");
  myelin_tensor vox;
  ck_assert_int_eq(myelin_obj_tensor(myelin_obj_get(myelin_msg_get(m, "geometry"), "voxels"), &vox), 0);
  ck_assert_uint_eq(vox.count, K);
  myelin_harness_free(h);
}
END_TEST

START_TEST(test_word_events_equal_dense) {
  /* One event per TR at 0.25 TR into the bin: binning reproduces X. */
  myelin_harness *h = harness("{delays: [0], scale_y: zscore}");
  ck_assert_int_eq(myelin_harness_push(h, "features", features_msg("features", "story", N, 2.0)), 0);
  ck_assert_int_eq(myelin_harness_push(h, "brain", run_msg("01", "story", NULL)), 0);
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 1);
  check_reference_map(myelin_harness_output(h, "map", 0), 1e-6);
  myelin_harness_free(h);
  /* offset: 1 moves every event one TR later, which changes the answer. */
  h = harness("{delays: [0], offset: 1}");
  ck_assert_int_eq(myelin_harness_push(h, "features", features_msg("features", "story", N, 2.0)), 0);
  ck_assert_int_eq(myelin_harness_push(h, "brain", run_msg("01", "story", NULL)), 0);
  const double *r = map_tensor(myelin_harness_output(h, "map", 0), "data", K);
  ck_assert(fabs(r[0] - REF_R_GCV[0]) > 0.1);
  myelin_harness_free(h);
}
END_TEST

START_TEST(test_matching_by_task) {
  myelin_harness *h = harness("{delays: [0, 1]}");
  /* A run before its features waits; features of another task do not serve it. */
  ck_assert_int_eq(myelin_harness_push(h, "brain", run_msg("01", "b", NULL)), 0);
  ck_assert_int_eq(myelin_harness_push(h, "features", features_msg("features", "a", N, 0)), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 0);
  ck_assert_int_eq(myelin_harness_push(h, "features", features_msg("features", "b", N, 0)), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 1);
  ck_assert_int_eq(myelin_harness_push(h, "brain", run_msg("02", "a", NULL)), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 2);
  /* A second features message for a task is refused. */
  ck_assert_int_ne(myelin_harness_push(h, "features", features_msg("features", "a", N, 0)), 0);
  ck_assert_ptr_nonnull(strstr(myelin_harness_error(h), "twice"));
  ck_assert_int_eq(myelin_harness_push(h, "brain", run_msg("03", "c", NULL)), 0);
  ck_assert_int_ne(myelin_harness_eos(h), 0);
  ck_assert_ptr_nonnull(strstr(myelin_harness_error(h), "task c"));
  myelin_harness_free(h);
}
END_TEST

START_TEST(test_taskless_features_serve_every_run) {
  myelin_harness *h = harness("{delays: [0], scale_y: none}");
  ck_assert_int_eq(myelin_harness_push(h, "brain", run_msg("01", "x", NULL)), 0);
  ck_assert_int_eq(myelin_harness_push(h, "features", features_msg("tensor", NULL, N, 0)), 0);
  ck_assert_int_eq(myelin_harness_push(h, "brain", run_msg("02", "y", NULL)), 0);
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 2);
  for (size_t i = 0; i < 2; i++) check_reference_map(myelin_harness_output(h, "map", i), 1e-6);
  myelin_harness_free(h);
}
END_TEST

START_TEST(test_average_subjects) {
  /* Subject 2 = 2 Y - 1: the average 1.5 Y - 0.5 is a positive affine map
   * of Y per voxel, so r and alphas equal the single-subject reference. */
  float y2[N * K];
  for (int i = 0; i < N * K; i++) y2[i] = 2.0f * Y[i] - 1.0f;
  myelin_harness *h = harness("{delays: [0], scale_y: none, average_subjects: true}");
  ck_assert_int_eq(myelin_harness_push(h, "brain", run_msg("01", "story", NULL)), 0);
  ck_assert_int_eq(myelin_harness_push(h, "brain", run_msg("02", "story", y2)), 0);
  ck_assert_int_eq(myelin_harness_push(h, "features", features_msg("features", "story", N, 0)), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 0);
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 1);
  myelin_msg *m = myelin_harness_output(h, "map", 0);
  check_reference_map(m, 1e-5);
  char buf[64];
  ck_assert_int_eq(myelin_msg_str(m, "subject", buf, sizeof buf), 0);
  ck_assert_str_eq(buf, "average");
  ck_assert_uint_eq(myelin_obj_len(myelin_msg_get(m, "subjects")), 2);
  myelin_harness_free(h);
}
END_TEST

/* float64 runs stay float64: on YILL (offset 1e5, SD 0.001-0.017) the map
 * equals sklearn on the float64 values, alone and averaged over subjects.
 * Before, the stage rounded them to float32: r = 0.21 instead of 0.9988 in
 * voxel 0 and 15 of 25 alphas differed. */
START_TEST(test_float64_runs_stay_float64) {
  static double y2[N * K];
  for (int i = 0; i < N * K; i++)
    y2[i] = YILL[i] + 0.5; /* average: YILL + 0.25 */
  for (int avg = 0; avg <= 1; avg++) {
    myelin_harness *h = harness(avg ? "{delays: [0], scale_y: none, average_subjects: true}"
                                    : "{delays: [0], scale_y: none}");
    ck_assert_int_eq(myelin_harness_push(h, "features", features_msg("tensor", NULL, N, 0)), 0);
    ck_assert_int_eq(myelin_harness_push(h, "brain", run_msg_any("01", "story", NULL, YILL)), 0);
    if (avg) ck_assert_int_eq(myelin_harness_push(h, "brain", run_msg_any("02", "story", NULL, y2)), 0);
    ck_assert_int_eq(myelin_harness_eos(h), 0);
    ck_assert_uint_eq(myelin_harness_count(h, "map"), 1);
    const myelin_msg *m = myelin_harness_output(h, "map", 0);
    const double *r = map_tensor(m, "data", K), *af = map_tensor(m, "alpha_folds", FOLDS * K);
    for (int k = 0; k < K; k++) {
      ck_assert_msg(fabs(r[k] - REF_R_ILL[k]) < 1e-7, "avg %d voxel %d: r %.10f, sklearn %.10f", avg, k, r[k],
                    REF_R_ILL[k]);
      for (int f = 0; f < FOLDS; f++)
        ck_assert_msg(fabs(af[f * K + k] - ALPHAS[REF_PICK_ILL[f][k]]) <= 1e-9 * af[f * K + k],
                      "avg %d fold %d voxel %d: alpha %g, sklearn %g", avg, f, k, af[f * K + k],
                      ALPHAS[REF_PICK_ILL[f][k]]);
    }
    myelin_harness_free(h);
  }
}
END_TEST

START_TEST(test_bad_input) {
  myelin_harness *h = harness(NULL);
  ck_assert_int_eq(myelin_harness_push(h, "features", features_msg("features", "story", N - 1, 0)), 0);
  ck_assert_int_ne(myelin_harness_push(h, "brain", run_msg("01", "story", NULL)), 0);
  ck_assert_ptr_nonnull(strstr(myelin_harness_error(h), "59 rows"));
  myelin_harness_free(h);

  float bad[N * K];
  memcpy(bad, Y, sizeof bad);
  bad[7 * K + 2] = NAN;
  h = harness(NULL);
  ck_assert_int_eq(myelin_harness_push(h, "features", features_msg("features", "story", N, 0)), 0);
  ck_assert_int_ne(myelin_harness_push(h, "brain", run_msg("01", "story", bad)), 0);
  ck_assert_ptr_nonnull(strstr(myelin_harness_error(h), "volume 7, voxel 2"));
  myelin_harness_free(h);

  /* Non-finite features are named too. */
  double saved = X[3 * P + 1];
  X[3 * P + 1] = INFINITY;
  h = harness(NULL);
  ck_assert_int_eq(myelin_harness_push(h, "features", features_msg("features", "story", N, 0)), 0);
  X[3 * P + 1] = saved;
  ck_assert_int_ne(myelin_harness_push(h, "brain", run_msg("01", "story", NULL)), 0);
  ck_assert_ptr_nonnull(strstr(myelin_harness_error(h), "TR 3, feature 1"));
  myelin_harness_free(h);

  h = harness("{folds: 100}");
  ck_assert_int_eq(myelin_harness_push(h, "features", features_msg("features", "story", N, 0)), 0);
  ck_assert_int_ne(myelin_harness_push(h, "brain", run_msg("01", "story", NULL)), 0);
  ck_assert_ptr_nonnull(strstr(myelin_harness_error(h), "folds"));
  myelin_harness_free(h);

  char err[512];
  ck_assert_ptr_null(myelin_harness_new("encoding", "{inner: often}", err, sizeof err));
  ck_assert_ptr_nonnull(strstr(err, "inner"));
  ck_assert_ptr_null(myelin_harness_new("encoding", "{alphas: [1, -2]}", err, sizeof err));
  ck_assert_ptr_nonnull(strstr(err, "alphas"));
  ck_assert_ptr_null(myelin_harness_new("encoding", "{pad: mirror}", err, sizeof err));
}
END_TEST

START_TEST(test_inner_folds_param) {
  /* inner: 3 with one alpha for all voxels is RidgeCV(cv=KFold(3)). */
  static const double R3[K] = {0.99403527592346186, 0.90433297487392328, 0.24457982291455868,
                               -0.054146822522110151, 0.028638179157523359};
  myelin_harness *h = harness("{delays: [0], inner: 3, alpha_per_target: false}");
  ck_assert_int_eq(myelin_harness_push(h, "features", features_msg("tensor", NULL, N, 0)), 0);
  ck_assert_int_eq(myelin_harness_push(h, "brain", run_msg("01", "story", NULL)), 0);
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  const double *r = map_tensor(myelin_harness_output(h, "map", 0), "data", K);
  for (int k = 0; k < K; k++) ck_assert_double_eq_tol(r[k], R3[k], 1e-6);
  myelin_harness_free(h);
}
END_TEST

START_TEST(test_demo_pipeline) {
  MT_NEED_PYTHON("numpy nibabel msgpack", "the demo generator");
  char *dir = mt_tmpdir(), *out = NULL;
  const char *src = mt_env("MYELIN_SOURCE_DIR", "."), *py = mt_env("MYELIN_PYTHON", "/usr/bin/python3");
  char *cmd = mt_strf("%s %s/examples/encoding_demo/make_demo.py %s --trs 200 && DATA=%s OUT=%s %s run "
                      "%s/pipelines/encoding.yaml --quiet && %s %s/examples/encoding_demo/check_demo.py %s %s",
                      py, src, dir, dir, dir, mt_env("MYELIN_BIN", "myelin"), src, py, src, dir, dir);
  int rc = mt_run(cmd, &out);
  ck_assert_msg(rc == 0, "demo failed (%d):\n%s", rc, out);
  ck_assert_ptr_nonnull(strstr(out, "planted voxels recovered"));
  free(out), free(cmd);
  out = NULL;
  /* Features already at the TR, from an .npy through `dataset` (a tensor
   * message without task serves every subject). */
  char *yaml = mt_strf("%s/npy.yaml", dir);
  char *text = mt_strf(
      "name: encoding-npy\n"
      "stages:\n"
      "  - {id: feats, plugin: dataset, params: {path: %s/features_tr.npy, whole: true}}\n"
      "  - {id: brain, plugin: fmri_source, params: {path: %s/bids, mask: auto}}\n"
      "  - id: encode\n"
      "    plugin: encoding\n"
      "    inputs: {features: [feats], brain: [brain]}\n"
      "  - {id: save, plugin: npy_sink, inputs: [encode], params: {path: \"%s/encoding/r_{subject}.npy\"}}\n",
      dir, dir, dir);
  mt_write(yaml, text);
  cmd = mt_strf("rm -rf %s/encoding && %s run %s --quiet && %s %s/examples/encoding_demo/check_demo.py %s %s",
                dir, mt_env("MYELIN_BIN", "myelin"), yaml, py, src, dir, dir);
  rc = mt_run(cmd, &out);
  ck_assert_msg(rc == 0, "npy features pipeline failed (%d):\n%s", rc, out);
  free(out), free(cmd), free(yaml), free(text);
  out = NULL;
  cmd = mt_strf("rm -rf %s", dir);
  mt_run(cmd, NULL);
  free(cmd), free(dir);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("encoding_plugin");
  TCase *tc = tcase_create("plugin");
  tcase_add_checked_fixture(tc, make_data, NULL);
  tcase_set_timeout(tc, 240);
  tcase_add_test(tc, test_matches_sklearn);
  tcase_add_test(tc, test_word_events_equal_dense);
  tcase_add_test(tc, test_matching_by_task);
  tcase_add_test(tc, test_taskless_features_serve_every_run);
  tcase_add_test(tc, test_average_subjects);
  tcase_add_test(tc, test_float64_runs_stay_float64);
  tcase_add_test(tc, test_bad_input);
  tcase_add_test(tc, test_inner_folds_param);
  tcase_add_test(tc, test_demo_pipeline);
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
