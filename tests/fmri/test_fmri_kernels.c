/*
 * test_fmri_kernels.c — detrend / zscore / parcel means / variance mask.
 * Reference numbers computed with numpy.polyfit/polyval and
 * scipy.stats.zscore (Debian python3) on the 7x3 matrix below.
 */
#include <math.h>

#include "fmri_kernels.h"
#include "testutil.h"

static const float X0[21] = {1.0f,
                             3.0f,
                             5.0f,
                             4.341471195220947f,
                             2.6209068298339844f,
                             5.0f,
                             7.909297466278076f,
                             0.7515594959259033f,
                             5.0f,
                             11.641119956970215f,
                             0.030022509396076202f,
                             5.0f,
                             16.24319839477539f,
                             2.039069175720215f,
                             5.0f,
                             22.54107666015625f,
                             5.850986480712891f,
                             5.0f,
                             30.720584869384766f,
                             8.880511283874512f,
                             5.0f};

static const double D0[21] = {-12.4852498, -0.3104365, 0.0, -9.1437786, -0.6895297, 0.0,
                              -5.5759523,  -2.558877,  0.0, -1.8441298, -3.280414,  0.0,
                              2.7579486,   -1.2713674, 0.0, 9.0558269,  2.5405499,  0.0,
                              17.2353351,  5.5700747,  0.0};
static const double D1[21] = {1.8606288,  2.4098352,  0.0, 0.4201404,  1.1239848, 0.0,
                              -0.7939928, -1.6521198, 0.0, -1.8441298, -3.280414, 0.0,
                              -2.0240109, -2.1781246, 0.0, -0.5080922, 0.7270355, 0.0,
                              2.8894565,  2.849803,   0.0};
static const double D2[21] = {-0.4953806, -0.6205565, 0.0, 0.4201404,  1.1239848,  0.0,
                              0.6196128,  0.1661152,  0.0, 0.0406776,  -0.8561007, 0.0,
                              -0.6104053, -0.3598896, 0.0, -0.5080922, 0.7270355,  0.0,
                              0.5334472,  -0.1805887, 0.0};
static const double Z[21] = {-1.2851667, -0.1088105, 0.0, -0.941213,  -0.2416858, 0.0,
                             -0.5739595, -0.8969073, 0.0, -0.1898251, -1.1498118, 0.0,
                             0.2838889,  -0.4456246, 0.0, 0.9321597,  0.8904835,  0.0,
                             1.7741158,  1.9523566,  0.0};

START_TEST(detrend_matches_polyfit) {
  const double *want[3] = {D0, D1, D2};
  for (int order = 0; order <= 2; order++) {
    float X[21];
    memcpy(X, X0, sizeof X);
    ck_assert_int_eq(fmri_detrend(X, 7, 3, order), 0);
    for (int i = 0; i < 21; i++)
      ck_assert_msg(fabs(X[i] - want[order][i]) < 2e-5, "order %d [%d]: %g vs %g", order, i, X[i],
                    want[order][i]);
  }
  float X[21];
  memcpy(X, X0, sizeof X);
  ck_assert_int_eq(fmri_detrend(X, 7, 3, -1), 0); /* off */
  ck_assert_mem_eq(X, X0, sizeof X);
  /* order >= T - 1: the fit is exact, the residual exactly 0 (not noise) */
  for (int order = 6; order <= 8; order++) {
    memcpy(X, X0, sizeof X);
    ck_assert_int_eq(fmri_detrend(X, 7, 3, order), 0);
    for (int i = 0; i < 21; i++)
      ck_assert_msg(X[i] == 0.0f, "order %d [%d] = %g", order, i, X[i]);
  }
}
END_TEST

START_TEST(zscore_matches_scipy) {
  float X[21];
  memcpy(X, X0, sizeof X);
  ck_assert_int_eq(fmri_zscore(X, 7, 3), 0);
  for (int i = 0; i < 21; i++)
    ck_assert_msg(fabs(X[i] - Z[i]) < 1e-5, "[%d]: %g vs %g", i, X[i], Z[i]);
}
END_TEST

START_TEST(parcel_means_by_hand) {
  /* T = 2, V = 5: parcels {0: v0, v3}, {1: v1}, v2 unlabeled, {2: none}, v4 in 1 */
  float X[10] = {1, 2, 3, 4, 5, 10, 20, 30, 40, 50};
  int32_t parcel[5] = {0, 1, -1, 0, 1};
  float out[6];
  ck_assert_int_eq(fmri_parcel_means(X, 2, 5, parcel, 3, out), 0);
  ck_assert_float_eq(out[0], 2.5f);
  ck_assert_float_eq(out[1], 3.5f);
  ck_assert(isnan(out[2]));
  ck_assert_float_eq(out[3], 25.0f);
  ck_assert_float_eq(out[4], 35.0f);
}
END_TEST

START_TEST(nonconstant_mask_and_compact) {
  float X[12] = {1, 2, 3, NAN, 1, 2, 4, 0, 1, 2, 3, 0}; /* T = 3, V = 4 */
  uint8_t keep[4];
  ck_assert_uint_eq(fmri_nonconstant(X, 3, 4, keep), 1);
  ck_assert_int_eq(keep[0], 0);
  ck_assert_int_eq(keep[1], 0);
  ck_assert_int_eq(keep[2], 1);
  ck_assert_int_eq(keep[3], 0); /* NaN */
  ck_assert_uint_eq(fmri_compact_columns(X, 3, 4, keep), 1);
  ck_assert_float_eq(X[0], 3);
  ck_assert_float_eq(X[1], 4);
  ck_assert_float_eq(X[2], 3);
}
END_TEST

int main(void) {
  Suite *s = suite_create("fmri_kernels");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, detrend_matches_polyfit);
  tcase_add_test(tc, zscore_matches_scipy);
  tcase_add_test(tc, parcel_means_by_hand);
  tcase_add_test(tc, nonconstant_mask_and_compact);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
