/*
 * ref_data.h — the reference problem shared by the encoding suites.
 *
 * Construction (also in tests/encoding/ref_sklearn.py, which printed the
 * expected numbers with Debian's sklearn 1.2.1):
 *   LCG s <- (1664525 s + 1013904223) mod 2^32, u = s / 2^32 - 0.5, s0 = 12345.
 *   X [60, 8]  drawn row by row: X[i][j] = u * (j + 1) + j.
 *   W [8, 5]   drawn row by row: W[j][k] = 0.05 u.
 *   E [60, 5]  drawn row by row: E[i][k] = u.
 *   Y[i][k] = float32(5 + sum_j X[i][j] W[j][k] (in j order) + noise[k] E[i][k]),
 *   noise = {0.01, 0.1, 0.5, 1, 3}.
 *   YILL[i][k] = 1e5 + 0.02 (sum_j X[i][j] W[j][k] (from 0, in j order)
 *   + noise[k] E[i][k]), float64: ill-conditioned for float32 (spacing 2^-7
 *   near 1e5).
 * Expected: 5 contiguous outer folds, StandardScaler + RidgeCV(alphas =
 * logspace(-1, 8, 10)) per fold, Pearson r on the held-out fold, mean over folds.
 */
#ifndef ENCODING_REF_DATA_H
#define ENCODING_REF_DATA_H

#include <math.h>
#include <stdint.h>

#define N 60
#define P 8
#define K 5
#define FOLDS 5
#define NA 10

static double ALPHAS[NA];
static double X[N * P];
static float Y[N * K];
static double YILL[N * K]; /* float64, offset 1e5, SD 0.001-0.017 */

static void make_data(void) {
  uint64_t s = 12345;
  const double noise[K] = {0.01, 0.1, 0.5, 1.0, 3.0};
  double W[P * K], E[N * K];
#define U() (s = (1664525u * s + 1013904223u) % 4294967296u, (double)s / 4294967296.0 - 0.5)
  for (int i = 0; i < N; i++)
    for (int j = 0; j < P; j++) X[i * P + j] = U() * (j + 1) + j;
  for (int j = 0; j < P; j++)
    for (int k = 0; k < K; k++) W[j * K + k] = 0.05 * U();
  for (int i = 0; i < N; i++)
    for (int k = 0; k < K; k++) E[i * K + k] = U();
#undef U
  for (int i = 0; i < N; i++)
    for (int k = 0; k < K; k++) {
      double acc = 5.0;
      for (int j = 0; j < P; j++) acc += X[i * P + j] * W[j * K + k];
      Y[i * K + k] = (float)(acc + noise[k] * E[i * K + k]);
      double z = 0.0;
      for (int j = 0; j < P; j++)
        z += X[i * P + j] * W[j * K + k];
      YILL[i * K + k] = 1e5 + 0.02 * (z + noise[k] * E[i * K + k]);
    }
  for (int a = 0; a < NA; a++) ALPHAS[a] = pow(10.0, -1.0 + a);
}

/* sklearn RidgeCV(alphas, alpha_per_target=True), cv=None (leave-one-out). */
static const double REF_R_GCV[K] = {0.99880583994974814, 0.90444277058829992,
                                    0.24676903902225061, -0.07989140618464316,
                                    0.030880731741734557};
static const int REF_PICK_GCV[FOLDS][K] = {
    {0, 1, 3, 4, 3}, {0, 1, 3, 4, 3}, {0, 1, 3, 9, 4}, {0, 1, 3, 3, 3}, {0, 1, 3, 9, 3}};

/* The same on YILL (float64, sklearn on the float64 values; r of the
 * prediction without its ~1e5 intercept, see ref_sklearn.py). Rounded to
 * float32 first, sklearn gives r = {0.2099, 0.5339, 0.2537, -0.1474,
 * 0.0110} and 10 of these 25 picks (what the stage computed before it kept
 * float64 input in float64). */
static const double REF_R_ILL[K] = {0.99880586605910637, 0.9044429404478308, 0.24676936374692579,
                                    -0.079891306634371106, 0.030880777833771789};
static const int REF_PICK_ILL[FOLDS][K] = {
    {0, 1, 3, 4, 3}, {0, 1, 3, 4, 3}, {0, 1, 3, 9, 4}, {0, 1, 3, 3, 3}, {0, 1, 3, 9, 3}};

#endif
