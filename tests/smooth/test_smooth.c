/*
 * tests/smooth — the smooth plugin: the kernel's FWHM in mm on anisotropic
 * voxels (an impulse response against the Gaussian written out), and the
 * masked average (a constant inside a mask stays constant at its edge).
 */
#include <math.h>

#include "myelin/harness.h"
#include "myelin/myelin.h"
#include "testutil.h"

#define N 21

static myelin_msg *vol(const float *v, const uint32_t *vox, size_t n, const double *aff) {
  myelin_builder *b = myelin_builder_new("volume");
  myelin_build_uint(b, "index", 0);
  myelin_build_float(b, "tr", 1);
  myelin_build_str(b, "subject", "s");
  myelin_build_str(b, "task", "t");
  myelin_build_int(b, "run", 1);
  const int64_t shape[1] = {(int64_t)n};
  myelin_build_tensor_copy(b, "data", MYELIN_F4, 1, shape, v);
  myelin_build_map_begin(b, "geometry");
  myelin_build_array_begin(b, "dims");
  for (int i = 0; i < 3; i++)
    myelin_build_int(b, NULL, N);
  myelin_build_array_end(b);
  const int64_t as[2] = {4, 4};
  myelin_build_tensor_copy(b, "affine", MYELIN_F8, 2, as, aff);
  myelin_build_tensor_copy(b, "voxels", MYELIN_U4, 1, shape, vox);
  myelin_build_map_end(b);
  return myelin_builder_finish(b);
}

static const float *run_one(const char *params, myelin_msg *in, myelin_harness **h) {
  char err[512];
  *h = myelin_harness_new("smooth", params, err, sizeof err);
  ck_assert_msg(*h != NULL, "%s", err);
  ck_assert_int_eq(myelin_harness_push(*h, "in", in), 0);
  ck_assert_int_eq(myelin_harness_eos(*h), 0);
  ck_assert_uint_eq(myelin_harness_count(*h, "out"), 1);
  myelin_tensor t;
  ck_assert_int_eq(myelin_msg_tensor(myelin_harness_output(*h, "out", 0), "data", &t), 0);
  return t.data;
}

static double gauss(int k, double sigma) {
  int r = (int)ceil(3 * sigma);
  double s = 0;
  for (int j = -r; j <= r; j++)
    s += exp(-0.5 * j * j / (sigma * sigma));
  return abs(k) > r ? 0 : exp(-0.5 * k * k / (sigma * sigma)) / s;
}

START_TEST(impulse_response_fwhm_mm) {
  static float v[N * N * N];
  static uint32_t vox[N * N * N];
  for (uint32_t i = 0; i < N * N * N; i++)
    vox[i] = i;
  v[(10 * N + 10) * N + 10] = 1;
  const double aff[16] = {2, 0, 0, -20, 0, 2, 0, -20, 0, 0, 3, -30, 0, 0, 0, 1};
  myelin_harness *h;
  const float *o = run_one("{fwhm: 6}", vol(v, vox, N * N * N, aff), &h);
  double sx = 6 / (2 * sqrt(2 * log(2))) / 2, sz = 6 / (2 * sqrt(2 * log(2))) / 3, sum = 0;
  for (int x = 0; x < N; x++)
    for (int y = 0; y < N; y++)
      for (int z = 0; z < N; z++) {
        double want = gauss(x - 10, sx) * gauss(y - 10, sx) * gauss(z - 10, sz);
        ck_assert_msg(fabs(o[(x * N + y) * N + z] - want) < 1e-6, "(%d,%d,%d): %g, want %g", x, y, z,
                      o[(x * N + y) * N + z], want);
        sum += o[(x * N + y) * N + z];
      }
  ck_assert_double_eq_tol(sum, 1.0, 1e-5);
  /* half maximum at 3 mm: along x 1.5 voxels out, the profile crosses 1/2 */
  double peak = gauss(0, sx), at1 = gauss(1, sx), at2 = gauss(2, sx);
  ck_assert(at1 > peak / 2 && at2 < peak / 2);
  myelin_harness_free(h);
}
END_TEST

START_TEST(masked_edges_stay_flat) {
  static float v[N * N * N];
  static uint32_t vox[N * N * N];
  size_t n = 0;
  for (int x = 0; x < N; x++)
    for (int y = 0; y < N; y++)
      for (int z = 0; z < N; z++)
        if ((x - 10) * (x - 10) + (y - 10) * (y - 10) + (z - 10) * (z - 10) <= 49) {
          vox[n] = (uint32_t)((x * N + y) * N + z);
          v[n++] = 100;
        }
  const double aff[16] = {2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1};
  myelin_harness *h;
  const float *o = run_one("{fwhm: 8}", vol(v, vox, n, aff), &h);
  for (size_t i = 0; i < n; i++)
    ck_assert_float_eq_tol(o[i], 100, 1e-3);
  myelin_harness_free(h);
  o = run_one("{fwhm: 8, masked: false}", vol(v, vox, n, aff), &h);
  float lo = 100;
  for (size_t i = 0; i < n; i++)
    lo = fminf(lo, o[i]);
  ck_assert_msg(lo < 60, "unmasked smoothing should darken the mask's edge (min %g)", lo);
  myelin_harness_free(h);
}
END_TEST

int main(void) {
  Suite *s = suite_create("smooth");
  TCase *tc = tcase_create("smooth");
  tcase_add_test(tc, impulse_response_fwhm_mm);
  tcase_add_test(tc, masked_edges_stay_flat);
  suite_add_tcase(s, tc);
  return mt_run_suite(s);
}
