/*
 * tests/roi — the roi plugin: region means from an atlas, percent signal
 * change against the baseline, and the causal GLM with motion regressors
 * (a series made of an intercept, a drift and a motion trace is explained
 * away; a step added on top shows).
 */
#include <math.h>

#include "myelin/harness.h"
#include "myelin/myelin.h"
#include "nifti.h"
#include "testutil.h"

#define NX 6
#define NY 5
#define NZ 4

static const double AFF[16] = {2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1};

/* atlas: label 1 for x < 3, label 2 otherwise (file order) */
static char *write_atlas(void) {
  float a[NX * NY * NZ];
  for (int z = 0; z < NZ; z++)
    for (int y = 0; y < NY; y++)
      for (int x = 0; x < NX; x++)
        a[x + NX * (y + NY * z)] = x < 3 ? 1 : 2;
  char *path = mt_strf("%s/atlas.nii", mt_tmpdir());
  FILE *f = fopen(path, "wb");
  const int64_t d[4] = {NX, NY, NZ, 1};
  char err[256];
  ck_assert_int_eq(nifti_write_f32(f, d, AFF, 0, a, 0, err, sizeof err), 0);
  fclose(f);
  return path;
}

/* A volume whose region 1 voxels hold y1 and region 2 voxels y2 (+-1 around
 * the mean, so the mean is exact), with motion mx along x. */
static myelin_msg *vol(int t, double y1, double y2, double mx) {
  float v[NX * NY * NZ];
  uint32_t vox[NX * NY * NZ];
  for (int x = 0; x < NX; x++)
    for (int y = 0; y < NY; y++)
      for (int z = 0; z < NZ; z++) {
        int i = (x * NY + y) * NZ + z;
        vox[i] = (uint32_t)i;
        v[i] = (float)((x < 3 ? y1 : y2) + (z % 2 ? 1 : -1));
      }
  myelin_builder *b = myelin_builder_new("volume");
  myelin_build_uint(b, "index", (uint64_t)t);
  myelin_build_float(b, "t", t);
  myelin_build_float(b, "tr", 1);
  myelin_build_str(b, "subject", "s");
  myelin_build_str(b, "task", "nf");
  myelin_build_int(b, "run", 1);
  const int64_t shape[1] = {NX * NY * NZ};
  myelin_build_tensor_copy(b, "data", MYELIN_F4, 1, shape, v);
  const double mo[6] = {mx, 0, 0, 0, 0, 0};
  const int64_t ms[1] = {6};
  myelin_build_tensor_copy(b, "motion", MYELIN_F8, 1, ms, mo);
  myelin_build_map_begin(b, "geometry");
  myelin_build_array_begin(b, "dims");
  myelin_build_int(b, NULL, NX);
  myelin_build_int(b, NULL, NY);
  myelin_build_int(b, NULL, NZ);
  myelin_build_array_end(b);
  const int64_t as[2] = {4, 4};
  myelin_build_tensor_copy(b, "affine", MYELIN_F8, 2, as, AFF);
  myelin_build_tensor_copy(b, "voxels", MYELIN_U4, 1, shape, vox);
  myelin_build_map_end(b);
  return myelin_builder_finish(b);
}

static const float *out_data(myelin_harness *h, size_t i, const char *key) {
  myelin_tensor t;
  ck_assert_int_eq(myelin_msg_tensor(myelin_harness_output(h, "out", i), key, &t), 0);
  ck_assert_uint_eq(t.count, 2);
  return t.data;
}

START_TEST(psc_against_baseline) {
  char err[512];
  myelin_harness *h = myelin_harness_new(
      "roi", mt_strf("{atlas: %s, detrend: none, baseline: 5}", write_atlas()), err, sizeof err);
  ck_assert_msg(h != NULL, "%s", err);
  for (int t = 0; t < 8; t++)
    ck_assert_int_eq(myelin_harness_push(h, "in", vol(t, t < 5 ? 200 : 210, 50, 0)), 0);
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "out"), 8);
  const float *raw = out_data(h, 6, "raw"), *psc = out_data(h, 6, "data");
  ck_assert_float_eq_tol(raw[0], 210, 1e-4);
  ck_assert_float_eq_tol(raw[1], 50, 1e-4);
  ck_assert_float_eq_tol(psc[0], 5.0, 1e-4);
  ck_assert_float_eq_tol(psc[1], 0.0, 1e-4);
  ck_assert_float_eq_tol(out_data(h, 2, "data")[0], 0.0, 1e-4);
  char name[16];
  ck_assert_int_eq(myelin_msg_str(myelin_harness_output(h, "out", 0), "name", name, sizeof name), 0);
  ck_assert_str_eq(name, "roi_psc");
  myelin_harness_free(h);
}
END_TEST

START_TEST(glm_explains_drift_and_motion) {
  char err[512];
  myelin_harness *h = myelin_harness_new(
      "roi", mt_strf("{atlas: %s, labels: [2, 1], detrend: glm, baseline: 4}", write_atlas()), err,
      sizeof err);
  ck_assert_msg(h != NULL, "%s", err);
  const int T = 30;
  for (int t = 0; t < T; t++) {
    double mx = 0.4 * sin(1.3 * t), y = 100 + 0.5 * t + 3 * mx + (t == T - 1 ? 10 : 0);
    ck_assert_int_eq(myelin_harness_push(h, "in", vol(t, y, 80 - 0.2 * t, mx)), 0);
  }
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  /* labels [2, 1]: column 0 is label 2 (pure drift), column 1 label 1 */
  for (int t = 4; t < T - 1; t++) {
    const float *p = out_data(h, (size_t)t, "data");
    ck_assert_msg(fabsf(p[0]) < 1e-3 && fabsf(p[1]) < 1e-3, "t %d: psc %g %g, want 0 (explained)", t, p[0],
                  p[1]);
  }
  /* the step of 10 on a baseline of ~100.75 shows (partly absorbed by the fit) */
  const float *last = out_data(h, (size_t)T - 1, "data");
  ck_assert_msg(last[1] > 5 && last[1] < 10, "step psc %g", last[1]);
  myelin_harness_free(h);
}
END_TEST

START_TEST(params_checked) {
  char err[512];
  myelin_harness *h = myelin_harness_new("roi", "{}", err, sizeof err);
  ck_assert_ptr_null(h);
  ck_assert_msg(strstr(err, "mask") != NULL, "%s", err);
  h = myelin_harness_new("roi", mt_strf("{atlas: %s, labels: [7]}", write_atlas()), err, sizeof err);
  if (h) {
    ck_assert_int_ne(myelin_harness_start(h), 0);
    snprintf(err, sizeof err, "%s", myelin_harness_error(h));
    myelin_harness_free(h);
  }
  ck_assert_msg(strstr(err, "label 7") != NULL, "%s", err);
}
END_TEST

int main(void) {
  Suite *s = suite_create("roi");
  TCase *tc = tcase_create("roi");
  tcase_add_test(tc, psc_against_baseline);
  tcase_add_test(tc, glm_explains_drift_and_motion);
  tcase_add_test(tc, params_checked);
  suite_add_tcase(s, tc);
  return mt_run_suite(s);
}
