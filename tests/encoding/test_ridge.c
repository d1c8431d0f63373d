/*
 * test_ridge.c — the ridge kernels of the encoding plugin, tested directly
 * (no runtime): sklearn parity on the reference problem of ref_data.h,
 * closed form vs SVD/Gram paths, leave-one-out shortcut vs brute force,
 * delays, word-event binning, folds, statistics, bad options.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ridge.h"
/* after ridge.h: it defines N, P, K... */
#include "ref_data.h"

static ridge_opts default_opts(void) {
  ridge_opts o = {.alphas = ALPHAS,
                  .n_alphas = NA,
                  .alpha_per_target = 1,
                  .inner = 0,
                  .folds = FOLDS,
                  .standardize = 1,
                  .scale_y = RIDGE_SCALE_NONE,
                  .intercept = 1,
                  .block = 3};
  return o;
}

static void check_encode(const ridge_opts *o, const double *r_mean, const int pick[FOLDS][K], double tol) {
  double r[FOLDS * K];
  int idx[FOLDS * K];
  char err[256] = "";
  ck_assert_msg(ridge_encode(X, N, P, Y, K, K, o, r, idx, err, sizeof err) == 0, "%s", err);
  for (int f = 0; f < FOLDS; f++)
    for (int k = 0; k < K; k++)
      ck_assert_msg(idx[f * K + k] == pick[f][k], "fold %d target %d: alpha index %d, sklearn %d", f, k,
                    idx[f * K + k], pick[f][k]);
  for (int k = 0; k < K; k++) {
    double m = 0;
    for (int f = 0; f < FOLDS; f++)
      m += r[f * K + k] / FOLDS;
    ck_assert_msg(fabs(m - r_mean[k]) < tol, "target %d: r %.12f, sklearn %.12f", k, m, r_mean[k]);
  }
}

/* float64 responses with an offset of 1e5 and an SD of 0.001-0.017: read in
 * float64, r and every alpha equal sklearn's on the float64 values (rounded
 * to float32, 15 of the 25 alphas and every r differ; voxel 0: 0.21, not 0.9988). */
START_TEST(test_float64_ill_conditioned_matches_sklearn) {
  ridge_opts o = default_opts();
  double r[FOLDS * K];
  int idx[FOLDS * K];
  char err[256] = "";
  ck_assert_msg(ridge_encode_f64(X, N, P, YILL, K, K, &o, r, idx, err, sizeof err) == 0, "%s", err);
  for (int f = 0; f < FOLDS; f++)
    for (int k = 0; k < K; k++)
      ck_assert_msg(idx[f * K + k] == REF_PICK_ILL[f][k], "fold %d target %d: alpha index %d, sklearn %d", f,
                    k, idx[f * K + k], REF_PICK_ILL[f][k]);
  for (int k = 0; k < K; k++) {
    double m = 0;
    for (int f = 0; f < FOLDS; f++)
      m += r[f * K + k] / FOLDS;
    ck_assert_msg(fabs(m - REF_R_ILL[k]) < 1e-7, "target %d: r %.12f, sklearn %.12f", k, m, REF_R_ILL[k]);
  }
}
END_TEST

START_TEST(test_data_construction) {
  /* Pins the construction to what ref_sklearn.py printed. */
  ck_assert_double_eq_tol(X[0], -0.4795973142609, 1e-12);
  ck_assert_double_eq_tol(X[1], 0.03309569647535682, 1e-12);
  ck_assert_double_eq_tol(X[2], 2.129467383492738, 1e-12);
  ck_assert_double_eq_tol(Y[0], 4.999398708343506, 1e-6);
  ck_assert_double_eq_tol(Y[1], 5.238109588623047, 1e-6);
}
END_TEST

START_TEST(test_sklearn_gcv_per_target) {
  ridge_opts o = default_opts();
  check_encode(&o, REF_R_GCV, REF_PICK_GCV, 1e-6);
  /* Scaling y per voxel changes neither the chosen alphas nor r. */
  o.scale_y = RIDGE_SCALE_ZSCORE;
  check_encode(&o, REF_R_GCV, REF_PICK_GCV, 1e-6);
  o.scale_y = RIDGE_SCALE_ROBUST;
  o.block = 64;
  check_encode(&o, REF_R_GCV, REF_PICK_GCV, 1e-6);
}
END_TEST

START_TEST(test_sklearn_gcv_wide) {
  /* 80 delayed features > 48 training rows: the Gram / eigenbasis path. */
  static const double R_MEAN[K] = {0.77453845754948836, 0.48553040828867228, 0.22592473699511309,
                                   -0.35878927520846404, -0.27653539178900932};
  static const int PICK[FOLDS][K] = {
      {2, 3, 2, 9, 4}, {1, 1, 2, 9, 4}, {0, 1, 3, 9, 9}, {1, 0, 4, 9, 9}, {1, 2, 3, 9, 2}};
  static double Xw[N * 10 * P];
  int d[10];
  for (int i = 0; i < 10; i++)
    d[i] = i;
  ridge_delay(X, N, P, d, 10, 0, Xw);
  ridge_opts o = default_opts();
  double r[FOLDS * K];
  int idx[FOLDS * K];
  char err[256] = "";
  for (int blk = 1; blk <= 8; blk += 7) { /* blocks of 1 and 8 voxels */
    o.block = (size_t)blk;
    o.factor_after = blk == 1 ? 1 : 0; /* triangular from the start, or GEMM only */
    ck_assert_msg(ridge_encode(Xw, N, 10 * P, Y, K, K, &o, r, idx, err, sizeof err) == 0, "%s", err);
    for (int k = 0; k < K; k++) {
      double m = 0;
      for (int f = 0; f < FOLDS; f++) {
        ck_assert_int_eq(idx[f * K + k], PICK[f][k]);
        m += r[f * K + k] / FOLDS;
      }
      ck_assert_msg(fabs(m - R_MEAN[k]) < 1e-6, "target %d: %.12f vs %.12f", k, m, R_MEAN[k]);
    }
  }
}
END_TEST

START_TEST(test_sklearn_gcv_wide_shared_alpha) {
  /* Wide design, one alpha for all targets: the QR path. */
  static const double R_MEAN[K] = {0.63656326485199388, 0.29441624428849011, 0.18354784604544863,
                                   -0.36989110429152089, -0.27103678291227662};
  static const int PICK[FOLDS][K] = {
      {4, 4, 4, 4, 4}, {4, 4, 4, 4, 4}, {9, 9, 9, 9, 9}, {9, 9, 9, 9, 9}, {3, 3, 3, 3, 3}};
  static double Xw[N * 10 * P];
  int d[10];
  for (int i = 0; i < 10; i++)
    d[i] = i;
  ridge_delay(X, N, P, d, 10, 0, Xw);
  ridge_opts o = default_opts();
  o.alpha_per_target = 0;
  double r[FOLDS * K];
  int idx[FOLDS * K];
  char err[256] = "";
  ck_assert_msg(ridge_encode(Xw, N, 10 * P, Y, K, K, &o, r, idx, err, sizeof err) == 0, "%s", err);
  for (int k = 0; k < K; k++) {
    double m = 0;
    for (int f = 0; f < FOLDS; f++) {
      ck_assert_int_eq(idx[f * K + k], PICK[f][k]);
      m += r[f * K + k] / FOLDS;
    }
    ck_assert_msg(fabs(m - R_MEAN[k]) < 1e-6, "target %d: %.12f vs %.12f", k, m, R_MEAN[k]);
  }
}
END_TEST

START_TEST(test_sklearn_gcv_shared_alpha) {
  static const double R_MEAN[K] = {0.97362365067030043, 0.88431796933532447, 0.24676903902225061,
                                   -0.077344459661894266, 0.041532325402785397};
  static const int PICK[FOLDS][K] = {
      {3, 3, 3, 3, 3}, {3, 3, 3, 3, 3}, {3, 3, 3, 3, 3}, {3, 3, 3, 3, 3}, {3, 3, 3, 3, 3}};
  ridge_opts o = default_opts();
  o.alpha_per_target = 0;
  check_encode(&o, R_MEAN, PICK, 1e-6);
}
END_TEST

START_TEST(test_sklearn_inner_kfold) {
  /* RidgeCV(cv=KFold(3)) = GridSearchCV(Ridge) scored by r2, one alpha. */
  static const double R_MEAN[K] = {0.99403527592346186, 0.90433297487392328, 0.24457982291455868,
                                   -0.054146822522110151, 0.028638179157523359};
  static const int PICK[FOLDS][K] = {
      {2, 2, 2, 2, 2}, {2, 2, 2, 2, 2}, {2, 2, 2, 2, 2}, {2, 2, 2, 2, 2}, {2, 2, 2, 2, 2}};
  ridge_opts o = default_opts();
  o.alpha_per_target = 0;
  o.inner = 3;
  check_encode(&o, R_MEAN, PICK, 1e-6);
}
END_TEST

/* Centered copy of the first n rows of X and of target column k. */
static void centered(size_t n, int k, double *Xc, double *yc) {
  double mx[P] = {0}, my = 0;
  for (size_t i = 0; i < n; i++) {
    for (int j = 0; j < P; j++)
      mx[j] += X[i * P + j] / (double)n;
    my += Y[i * K + k] / (double)n;
  }
  for (size_t i = 0; i < n; i++) {
    for (int j = 0; j < P; j++)
      Xc[i * P + j] = X[i * P + j] - mx[j];
    yc[i] = Y[i * K + k] - my;
  }
}

static void check_closed_form(size_t n) {
  double Xc[N * P], yc[N], w1[P], w2[P];
  char err[128];
  centered(n, 2, Xc, yc);
  ridge_model m;
  ck_assert_int_eq(ridge_model_fit(&m, Xc, n, P, 0, err, sizeof err), 0);
  ck_assert(n > P ? m.Vt != NULL : m.Xc != NULL); /* thin SVD vs Gram path */
  for (int a = 0; a < 6; a++) {
    ck_assert_int_eq(ridge_closed_form(Xc, yc, n, P, ALPHAS[a], w1), 0);
    ck_assert_int_eq(ridge_weights(&m, ALPHAS[a], yc, 1, w2), 0);
    for (int j = 0; j < P; j++)
      ck_assert_msg(fabs(w1[j] - w2[j]) <= 1e-9 * (1 + fabs(w1[j])), "n %zu alpha %g w[%d]: %g vs %g", n,
                    ALPHAS[a], j, w1[j], w2[j]);
  }
  ridge_model_free(&m);
}

START_TEST(test_closed_form_equals_svd) {
  check_closed_form(N); /* tall: thin SVD */
  check_closed_form(6); /* wide: Gram eigendecomposition */
}
END_TEST

/* Leave-one-out by brute force: n refits with intercept on n - 1 rows. */
static double brute_loo_sse(size_t n, int k, double alpha) {
  double sse = 0;
  for (size_t out = 0; out < n; out++) {
    double Xs[N * P], ys[N], mx[P] = {0}, my = 0, w[P];
    size_t q = 0;
    for (size_t i = 0; i < n; i++) {
      if (i == out) continue;
      memcpy(Xs + q * P, X + i * P, sizeof(double) * P);
      ys[q++] = Y[i * K + k];
    }
    for (size_t i = 0; i < q; i++) {
      for (int j = 0; j < P; j++)
        mx[j] += Xs[i * P + j] / (double)q;
      my += ys[i] / (double)q;
    }
    for (size_t i = 0; i < q; i++) {
      for (int j = 0; j < P; j++)
        Xs[i * P + j] -= mx[j];
      ys[i] -= my;
    }
    ck_assert_int_eq(ridge_closed_form(Xs, ys, q, P, alpha, w), 0);
    double pred = my;
    for (int j = 0; j < P; j++)
      pred += (X[out * P + j] - mx[j]) * w[j];
    double e = Y[out * K + k] - pred;
    sse += e * e;
  }
  return sse;
}

static void check_loo(size_t n) {
  double Xc[N * P], yc[N * K], R[N * N], work[N * K], sse[K];
  char err[128];
  for (int k = 0; k < K; k++) {
    double col[N];
    centered(n, k, Xc, col);
    for (size_t i = 0; i < n; i++)
      yc[i * K + k] = col[i];
  }
  ridge_model m;
  ck_assert_int_eq(ridge_model_fit(&m, X, n, P, 1, err, sizeof err), 0);
  for (int a = 0; a < NA; a += 3) {
    ck_assert_int_eq(ridge_loo_factor(&m, ALPHAS[a], R), 0);
    ridge_loo_sse(R, n, yc, K, K, work, sse);
    double sz[K], f[N], d[N], dmin = INFINITY, dmax = 0, Z[N * K], L[N * N];
    if (m.r == n) { /* eigenbasis form: z = U^T y, same errors, bounded by ||f z|| */
      ck_assert_int_eq(ridge_loo_chol(&m, ALPHAS[a], L, f, d), 0);
      for (size_t i = 0; i < n; i++)
        dmin = fmin(dmin, d[i]), dmax = fmax(dmax, d[i]);
      for (size_t k2 = 0; k2 < n; k2++)
        for (int t = 0; t < K; t++) {
          Z[k2 * K + t] = 0;
          for (size_t i = 0; i < n; i++)
            Z[k2 * K + t] += m.U[i * n + k2] * yc[i * K + t];
        }
      ridge_loo_sse_z(L, f, n, Z, K, K, work, sz);
    }
    for (int k = 0; k < K; k++) {
      double b = brute_loo_sse(n, k, ALPHAS[a]);
      ck_assert_msg(fabs(sse[k] - b) <= 1e-9 * b, "n %zu alpha %g target %d: %.15g vs %.15g", n, ALPHAS[a], k,
                    sse[k], b);
      if (m.r != n) continue;
      ck_assert_msg(fabs(sz[k] - b) <= 1e-9 * b, "eigenbasis n %zu alpha %g target %d: %.15g vs %.15g", n,
                    ALPHAS[a], k, sz[k], b);
      double q = 0;
      for (size_t k2 = 0; k2 < n; k2++)
        q += f[k2] * f[k2] * Z[k2 * K + k] * Z[k2 * K + k];
      ck_assert(q / (dmax * dmax) <= b * (1 + 1e-9) && b <= q / (dmin * dmin) * (1 + 1e-9));
    }
  }
  ridge_model_free(&m);
}

/* Tall design: ridge_loo_sse_batch (every alpha of a voxel chunk in one
 * GEMM) equals n brute-force refits, for chunks of 1, 2 and all targets. */
static void check_loo_batch(size_t n) {
  double Xc[N * P], yc[N * K], Z[P * K], R0[N * K], f[NA * P], g[NA * N];
  double work[(P + N) * NA * K], sse[NA * K];
  char err[128];
  for (int k = 0; k < K; k++) {
    double col[N];
    centered(n, k, Xc, col);
    for (size_t i = 0; i < n; i++)
      yc[i * K + k] = col[i];
  }
  ridge_model m;
  ck_assert_int_eq(ridge_model_fit(&m, X, n, P, 1, err, sizeof err), 0);
  size_t r = m.r;
  ck_assert_uint_lt(r, n);
  for (size_t k2 = 0; k2 < r; k2++) /* Z = U^T y */
    for (int t = 0; t < K; t++) {
      Z[k2 * K + t] = 0;
      for (size_t i = 0; i < n; i++)
        Z[k2 * K + t] += m.U[i * r + k2] * yc[i * K + t];
    }
  for (size_t i = 0; i < n; i++) /* R0 = y - U z */
    for (int t = 0; t < K; t++) {
      R0[i * K + t] = yc[i * K + t];
      for (size_t k2 = 0; k2 < r; k2++)
        R0[i * K + t] -= m.U[i * r + k2] * Z[k2 * K + t];
    }
  for (int a = 0; a < NA; a++) {
    for (size_t k2 = 0; k2 < r; k2++)
      f[a * r + k2] = ALPHAS[a] / (m.s[k2] * m.s[k2] + ALPHAS[a]);
    for (size_t i = 0; i < n; i++) { /* h = 1/n + sum_k U_ik^2 s_k^2 / (s_k^2 + alpha) */
      double h = 1.0 / (double)n;
      for (size_t k2 = 0; k2 < r; k2++)
        h += m.U[i * r + k2] * m.U[i * r + k2] * (1 - f[a * r + k2]);
      g[a * n + i] = 1 / (1 - h);
    }
  }
  double brute[NA][K];
  for (int a = 0; a < NA; a++)
    for (int k = 0; k < K; k++)
      brute[a][k] = brute_loo_sse(n, k, ALPHAS[a]);
  for (size_t chunk = 1; chunk <= K; chunk = chunk == 2 ? K : chunk + 1) {
    for (size_t i = 0; i < NA * K; i++)
      sse[i] = -1;
    ridge_loo_sse_batch(m.U, n, r, R0, Z, K, f, g, NA, chunk, work, sse, K);
    for (int a = 0; a < NA; a++)
      for (int k = 0; k < K; k++)
        ck_assert_msg(fabs(sse[a * K + k] - brute[a][k]) <= 1e-9 * brute[a][k],
                      "chunk %zu alpha %g target %d: %.15g vs %.15g", chunk, ALPHAS[a], k, sse[a * K + k],
                      brute[a][k]);
  }
  ridge_model_free(&m);
}

START_TEST(test_loo_equals_brute_force) {
  check_loo(N); /* n > p */
  check_loo(7); /* n < p: the design is wider than tall */
  check_loo_batch(N);
  check_loo_batch(20);
}
END_TEST

/* A near-square tall design (32 delayed features, 48 training rows) takes
 * the eigenbasis path with pruning (Gram eigenvectors, s = 0 on the null
 * space): the same alphas and r as computing every alpha (the batched tall
 * path), and the per-alpha phase is measured. */
START_TEST(test_tall_eigenbasis_equals_direct) {
  static double Xw[N * 4 * P];
  int d[4] = {0, 1, 2, 3};
  ridge_delay(X, N, P, d, 4, 0, Xw);
  double r1[FOLDS * K], r2[FOLDS * K];
  int i1[FOLDS * K], i2[FOLDS * K];
  char err[256] = "";
  ridge_stats st1 = {0}, st2 = {0};
  ridge_opts o = default_opts();
  o.stats = &st1;
  ck_assert_msg(ridge_encode(Xw, N, 4 * P, Y, K, K, &o, r1, i1, err, sizeof err) == 0, "%s", err);
  o.path = RIDGE_PATH_DIRECT;
  o.stats = &st2;
  ck_assert_msg(ridge_encode(Xw, N, 4 * P, Y, K, K, &o, r2, i2, err, sizeof err) == 0, "%s", err);
  for (int i = 0; i < FOLDS * K; i++) {
    ck_assert_int_eq(i1[i], i2[i]);
    ck_assert_msg(fabs(r1[i] - r2[i]) < 1e-10, "%d: %.15g vs %.15g", i, r1[i], r2[i]);
  }
  /* Direct: z, r0 and the 10 alphas, 2 n p per voxel each, plus predictions. */
  double n = N - N / FOLDS, lo = 2.0 * n * 4 * P * K * (NA + 2) * FOLDS;
  ck_assert_msg(st2.flops >= lo && st2.flops < 2 * lo, "flops %g (at least %g)", st2.flops, lo);
  ck_assert(st1.flops > 0 && st1.seconds >= 0 && st2.seconds >= 0);
}
END_TEST

/* A constant voxel gets r = 0 and the first alpha; others are unchanged. */
static void check_constant_voxel(const double *Xd, size_t p) {
  float Y2[N * (K + 1)];
  for (int i = 0; i < N; i++) {
    memcpy(Y2 + i * (K + 1), Y + i * K, sizeof(float) * K);
    Y2[i * (K + 1) + K] = 7.0f;
  }
  ridge_opts o = default_opts();
  o.scale_y = RIDGE_SCALE_ZSCORE;
  double r1[FOLDS * K], r2[FOLDS * (K + 1)];
  int i1[FOLDS * K], i2[FOLDS * (K + 1)];
  char err[128];
  ck_assert_int_eq(ridge_encode(Xd, N, p, Y, K, K, &o, r1, i1, err, sizeof err), 0);
  ck_assert_int_eq(ridge_encode(Xd, N, p, Y2, K + 1, K + 1, &o, r2, i2, err, sizeof err), 0);
  for (int f = 0; f < FOLDS; f++) {
    ck_assert_double_eq(r2[f * (K + 1) + K], 0.0);
    ck_assert_int_eq(i2[f * (K + 1) + K], 0);
    for (int k = 0; k < K; k++) {
      ck_assert_double_eq_tol(r1[f * K + k], r2[f * (K + 1) + k], 1e-12);
      ck_assert_int_eq(i1[f * K + k], i2[f * (K + 1) + k]);
    }
  }
}

START_TEST(test_constant_voxel) {
  static double Xw[N * 10 * P];
  int d[10];
  for (int i = 0; i < 10; i++)
    d[i] = i;
  ridge_delay(X, N, P, d, 10, 0, Xw);
  check_constant_voxel(X, P);       /* QR path */
  check_constant_voxel(Xw, 10 * P); /* eigenbasis path */
}
END_TEST

START_TEST(test_delay_zero_and_wrap) {
  const double x[4 * 2] = {1, 10, 2, 20, 3, 30, 4, 40};
  const int d[2] = {0, 2};
  double z[4 * 4], w[4 * 4];
  ridge_delay(x, 4, 2, d, 2, 0, z);
  ridge_delay(x, 4, 2, d, 2, 1, w);
  const double ez[16] = {1, 10, 0, 0, 2, 20, 0, 0, 3, 30, 1, 10, 4, 40, 2, 20};
  const double ew[16] = {1, 10, 3, 30, 2, 20, 4, 40, 3, 30, 1, 10, 4, 40, 2, 20};
  for (int i = 0; i < 16; i++) {
    ck_assert_double_eq(z[i], ez[i]);
    ck_assert_double_eq(w[i], ew[i]);
  }
  const int neg[1] = {-1}; /* a lead: row t takes row t + 1 */
  double l[4 * 2];
  ridge_delay(x, 4, 2, neg, 1, 0, l);
  ck_assert_double_eq(l[0], 2);
  ck_assert_double_eq(l[7], 0);
}
END_TEST

START_TEST(test_bin_events) {
  /* tr = 1.5: onsets 0.2, 1.4 -> bin 0; 1.5 -> 1; 4.6 -> 3; -1 and 9 dropped. */
  const double onset[6] = {0.2, 1.4, 1.5, 4.6, -1.0, 9.0};
  const double data[6 * 2] = {1, 2, 3, 4, 5, 6, 7, 8, 100, 100, 100, 100};
  double out[5 * 2];
  size_t dropped = ridge_bin_events(onset, data, 6, 2, 1.5, 0, 5, out);
  const double e0[10] = {4, 6, 5, 6, 0, 0, 7, 8, 0, 0};
  ck_assert_uint_eq(dropped, 2);
  for (int i = 0; i < 10; i++)
    ck_assert_double_eq(out[i], e0[i]);
  dropped = ridge_bin_events(onset, data, 6, 2, 1.5, 1, 5, out); /* offset: one TR later */
  const double e1[10] = {100, 100, 4, 6, 5, 6, 0, 0, 7, 8};
  ck_assert_uint_eq(dropped, 1);
  for (int i = 0; i < 10; i++)
    ck_assert_double_eq(out[i], e1[i]);
}
END_TEST

START_TEST(test_fold_bounds) {
  size_t a, b, sizes[5];
  for (size_t i = 0; i < 5; i++) {
    ridge_fold_bounds(23, 5, i, &a, &b);
    sizes[i] = b - a;
    if (i == 4) ck_assert_uint_eq(b, 23);
  }
  ck_assert_uint_eq(sizes[0], 5);
  ck_assert_uint_eq(sizes[2], 5);
  ck_assert_uint_eq(sizes[3], 4);
}
END_TEST

START_TEST(test_pearson_and_stats) {
  const double a[4] = {1, 2, 3, 4}, b[4] = {2, 4, 6, 8.5}, c[4] = {3, 3, 3, 3};
  /* numpy.corrcoef */
  ck_assert_double_eq_tol(ridge_pearson(a, 1, b, 1, 4), 0.9983814394570298, 1e-12);
  ck_assert_double_eq(ridge_pearson(a, 1, c, 1, 4), 0.0);
  double ctr[2], scl[2], work[4];
  const double A[4 * 2] = {1, 3, 2, 3, 3, 3, 10, 3};
  ridge_col_stats(A, 4, 2, 2, RIDGE_SCALE_ROBUST, ctr, scl, work);
  ck_assert_double_eq(ctr[0], 2.5);            /* numpy median */
  ck_assert_double_eq_tol(scl[0], 3.0, 1e-12); /* q75 4.75 - q25 1.75 */
  ck_assert_double_eq(scl[1], 1.0);            /* constant column */
  ridge_col_stats(A, 4, 2, 2, RIDGE_SCALE_ZSCORE, ctr, scl, NULL);
  ck_assert_double_eq(ctr[0], 4.0);
  ck_assert_double_eq_tol(scl[0], sqrt(12.5), 1e-12);
  ck_assert_double_eq(scl[1], 1.0);
}
END_TEST

START_TEST(test_bad_options) {
  ridge_opts o = default_opts();
  double r[FOLDS * K];
  int idx[FOLDS * K];
  char err[128] = "";
  o.folds = N + 1;
  ck_assert_int_eq(ridge_encode(X, N, P, Y, K, K, &o, r, idx, err, sizeof err), -1);
  ck_assert_ptr_nonnull(strstr(err, "folds"));
  o = default_opts();
  o.inner = 100;
  ck_assert_int_eq(ridge_encode(X, N, P, Y, K, K, &o, r, idx, err, sizeof err), -1);
  ck_assert_ptr_nonnull(strstr(err, "inner"));
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("encoding_ridge");
  TCase *tc = tcase_create("kernels");
  tcase_add_checked_fixture(tc, make_data, NULL);
  tcase_add_test(tc, test_data_construction);
  tcase_add_test(tc, test_float64_ill_conditioned_matches_sklearn);
  tcase_add_test(tc, test_sklearn_gcv_per_target);
  tcase_add_test(tc, test_sklearn_gcv_wide);
  tcase_add_test(tc, test_sklearn_gcv_shared_alpha);
  tcase_add_test(tc, test_sklearn_gcv_wide_shared_alpha);
  tcase_add_test(tc, test_sklearn_inner_kfold);
  tcase_add_test(tc, test_closed_form_equals_svd);
  tcase_add_test(tc, test_loo_equals_brute_force);
  tcase_add_test(tc, test_tall_eigenbasis_equals_direct);
  tcase_add_test(tc, test_constant_voxel);
  tcase_add_test(tc, test_delay_zero_and_wrap);
  tcase_add_test(tc, test_bin_events);
  tcase_add_test(tc, test_fold_bounds);
  tcase_add_test(tc, test_pearson_and_stats);
  tcase_add_test(tc, test_bad_options);
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
