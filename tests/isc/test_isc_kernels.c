/*
 * test_isc_kernels.c — the ISC kernels against BrainIAK's semantics.
 *
 * Reference numbers (isc_ref.h) come from tests/isc/ref_isc.py, a numpy/scipy
 * re-implementation of brainiak.isc's code paths run with Debian's
 * /usr/bin/python3 on the issue's data
 *   data[t, v, s] = sin(0.3(t+1)(v+1)) + cos(0.7(t+1)(s+1) + 0.5v)(0.5 + 0.5v)
 * (T = 40, V = 3, S = 5), cast to float32 as a `run` tensor would be. The
 * issue's own float64 numbers are checked with float64 input. Resampling
 * tests replay the exact draws the Python side used (for the two-sample
 * test, BrainIAK's label shuffles as each subject's group per resample).
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "isc_kernels.h"
#include "isc_ref.h"

enum { T = 40, V = 3, S = 5 };

static const isc_nan_policy TOL = {1, -1}, STRICT = {0, -1};

static double gen(int t, int v, int s) {
  return sin(0.3 * (t + 1) * (v + 1)) + cos(0.7 * (t + 1) * (s + 1) + 0.5 * v) * (0.5 + 0.5 * v);
}

typedef struct fixture {
  float f[S][T * V];
  double d[S][T * V];
  const void *pf[S], *pd[S];
  isc_data df, dd;
} fixture;

static void fixture_init(fixture *fx, size_t nsub) {
  for (int s = 0; s < S; s++) {
    for (int t = 0; t < T; t++)
      for (int v = 0; v < V; v++) {
        fx->d[s][t * V + v] = gen(t, v, s);
        fx->f[s][t * V + v] = (float)gen(t, v, s);
      }
    fx->pf[s] = fx->f[s];
    fx->pd[s] = fx->d[s];
  }
  fx->df = (isc_data){.x = fx->pf, .f64 = 0, .S = nsub, .T = T, .V = V};
  fx->dd = (isc_data){.x = fx->pd, .f64 = 1, .S = nsub, .T = T, .V = V};
}

static void expect_close(const double *got, const double *want, size_t n, double tol, const char *what) {
  for (size_t i = 0; i < n; i++) {
    if (isnan(want[i])) {
      ck_assert_msg(isnan(got[i]), "%s[%zu]: want NaN, got %.12g", what, i, got[i]);
      continue;
    }
    ck_assert_msg(fabs(got[i] - want[i]) <= tol, "%s[%zu]: got %.15g want %.15g", what, i, got[i], want[i]);
  }
}

START_TEST(issue_numbers_float64) {
  static fixture fx;
  fixture_init(&fx, S);
  double loo[S * V], pair[10 * V], mean[V];
  ck_assert_int_eq(isc_loo(&fx.dd, TOL, 1, loo), 0);
  ck_assert_int_eq(isc_pairwise(&fx.dd, TOL, 1, pair), 0);
  isc_summarize(loo, S, V, ISC_SUMMARY_MEAN, mean);
  const double row0[V] = {0.8533185988, 0.5474540740, 0.4686142007};
  const double p01[V] = {0.7965550167, 0.4172263151, 0.2696073252};
  const double fm[V] = {0.8856881756, 0.6230748423, 0.3898931590};
  expect_close(loo, row0, V, 1e-9, "loo row 0");
  expect_close(pair, p01, V, 1e-9, "pair (0,1)");
  expect_close(mean, fm, V, 1e-9, "fisher mean");
}
END_TEST

START_TEST(float32_matches_reference) {
  static fixture fx;
  fixture_init(&fx, S);
  double loo[S * V], pair[10 * V], sm[V];
  ck_assert_int_eq(isc_loo(&fx.df, TOL, 2, loo), 0);
  expect_close(loo, REF_LOO, S * V, 1e-12, "loo");
  ck_assert_int_eq(isc_pairwise(&fx.df, TOL, 2, pair), 0);
  expect_close(pair, REF_PAIR, 10 * V, 1e-12, "pairwise");
  isc_summarize(loo, S, V, ISC_SUMMARY_MEAN, sm);
  expect_close(sm, REF_MEAN, V, 1e-12, "mean");
  isc_summarize(loo, S, V, ISC_SUMMARY_MEDIAN, sm);
  expect_close(sm, REF_MEDIAN, V, 1e-12, "median");
  isc_summarize(pair, 10, V, ISC_SUMMARY_MEDIAN, sm);
  expect_close(sm, REF_PAIR_MEDIAN, V, 1e-12, "pair median");
}
END_TEST

START_TEST(two_subjects_one_row) {
  static fixture fx;
  fixture_init(&fx, 2);
  ck_assert_uint_eq(isc_rows(2, 0), 1);
  double loo[V], pair[V];
  ck_assert_int_eq(isc_loo(&fx.df, TOL, 1, loo), 0);
  ck_assert_int_eq(isc_pairwise(&fx.df, TOL, 1, pair), 0);
  expect_close(loo, REF_TWO, V, 1e-12, "two loo");
  expect_close(pair, REF_TWO, V, 1e-12, "two pair");
}
END_TEST

START_TEST(identical_subjects_give_one) {
  static fixture fx;
  fixture_init(&fx, S);
  for (int s = 1; s < S; s++)
    memcpy(fx.f[s], fx.f[0], sizeof fx.f[0]);
  double loo[S * V], pair[10 * V], m[V];
  ck_assert_int_eq(isc_loo(&fx.df, TOL, 1, loo), 0);
  ck_assert_int_eq(isc_pairwise(&fx.df, TOL, 1, pair), 0);
  for (int i = 0; i < S * V; i++)
    ck_assert_double_eq_tol(loo[i], 1.0, 1e-12);
  for (int i = 0; i < 10 * V; i++)
    ck_assert_double_eq_tol(pair[i], 1.0, 1e-12);
  isc_summarize(loo, S, V, ISC_SUMMARY_MEAN, m);
  for (int v = 0; v < V; v++)
    ck_assert_msg(fabs(m[v] - 1.0) < 1e-12, "fisher mean of ones %g", m[v]);
}
END_TEST

/* Pairwise ISC ignores any positive affine map per subject. Leave-one-out
 * correlates with the others' plain mean (as BrainIAK), so a per-subject
 * *scale* re-weights that mean: what stays invariant is every row under
 * per-subject offsets and one common scale, and row s under any positive
 * affine map of subject s alone. */
START_TEST(affine_rescaling_changes_nothing) {
  static fixture fx, fy;
  fixture_init(&fx, S);
  fixture_init(&fy, S);
  for (int s = 0; s < S; s++)
    for (int i = 0; i < T * V; i++)
      fy.d[s][i] = (0.25 + 3.0 * s) * fx.d[s][i] + 1000.0 * (s - 2);
  double a[S * V], b[S * V], pa[10 * V], pb[10 * V];
  ck_assert_int_eq(isc_pairwise(&fx.dd, TOL, 1, pa), 0);
  ck_assert_int_eq(isc_pairwise(&fy.dd, TOL, 1, pb), 0);
  expect_close(pb, pa, 10 * V, 1e-10, "rescaled pairwise");
  ck_assert_int_eq(isc_loo(&fx.dd, TOL, 1, a), 0);
  for (int s = 0; s < S; s++)
    for (int i = 0; i < T * V; i++)
      fy.d[s][i] = 7.5 * fx.d[s][i] + 1000.0 * (s - 2);
  ck_assert_int_eq(isc_loo(&fy.dd, TOL, 1, b), 0);
  expect_close(b, a, S * V, 1e-10, "offsets + common scale, loo");
  for (int k = 0; k < S; k++) {
    memcpy(fy.d, fx.d, sizeof fx.d);
    for (int i = 0; i < T * V; i++)
      fy.d[k][i] = (0.5 + k) * fx.d[k][i] - 300.0;
    ck_assert_int_eq(isc_loo(&fy.dd, TOL, 1, b), 0);
    expect_close(b + k * V, a + k * V, V, 1e-10, "own row under own affine map");
  }
}
END_TEST

START_TEST(nan_semantics) {
  static fixture fx;
  fixture_init(&fx, S);
  fx.f[2][5 * V + 1] = NAN;
  double out[S * V], pair[10 * V];
  ck_assert_int_eq(isc_loo(&fx.df, TOL, 1, out), 0);
  expect_close(out, REF_NAN_TRUE, S * V, 1e-12, "tolerate=True");
  /* exactly one NaN: row 2, voxel 1 */
  for (int i = 0; i < S * V; i++)
    ck_assert(isnan(out[i]) == (i == 2 * V + 1));
  ck_assert_int_eq(isc_loo(&fx.df, STRICT, 1, out), 0);
  expect_close(out, REF_NAN_FALSE, S * V, 1e-12, "tolerate=False");

  fx.f[0][7 * V + 2] = NAN;
  fx.f[3][9 * V + 2] = NAN;
  ck_assert_int_eq(isc_loo(&fx.df, TOL, 1, out), 0);
  expect_close(out, REF_NAN2_TRUE, S * V, 1e-12, "two NaN voxels, True");
  ck_assert_int_eq(isc_loo(&fx.df, (isc_nan_policy){1, 0.7}, 2, out), 0);
  expect_close(out, REF_NAN2_F07, S * V, 1e-12, "tolerate=0.7");
  ck_assert_int_eq(isc_loo(&fx.df, (isc_nan_policy){1, 0.5}, 2, out), 0);
  expect_close(out, REF_NAN2_F05, S * V, 1e-12, "tolerate=0.5");
  ck_assert_int_eq(isc_pairwise(&fx.df, (isc_nan_policy){1, 0.7}, 1, pair), 0);
  expect_close(pair, REF_NAN2_PAIR_F07, 10 * V, 1e-12, "pairwise tolerate=0.7");
}
END_TEST

/* ISFC with the voxels in slabs (as MPI ranks hold them with fmri_source
 * shard: voxels, plugins/isc/isc.c isfc_voxels): the mask and z-scores of
 * each slab, then every slab's rows against every slab's columns, equal the
 * whole isc_isfc within 1e-12 with NaN in the same places — leave-one-out
 * (nanmean and strict mean), pairwise with a threshold, two subjects; slabs
 * of scattered voxels, one of them empty. */
START_TEST(isfc_slabs_equal_whole) {
  enum { ST = 30, SV = 11, SS = 5, NSLAB = 4 };
  static double x[SS][ST * SV], xs[NSLAB][SS][ST * SV];
  static const uint32_t slab_vox[NSLAB][SV] = {{0, 3, 4, 9}, {1, 2, 7}, {0}, {5, 6, 8, 10}};
  static const size_t slab_n[NSLAB] = {4, 3, 0, 4};
  for (int s = 0; s < SS; s++)
    for (int t = 0; t < ST; t++)
      for (int v = 0; v < SV; v++)
        x[s][t * SV + v] = gen(t, v, s) + 0.3 * gen(t + 7, v + 2, s + 3);
  x[1][4 * SV + 3] = NAN; /* one TR of one subject */
  for (int t = 0; t < ST; t++)
    x[2][t * SV + 7] = NAN, x[3][t * SV + 7] = NAN; /* two subjects' voxel */
  for (int t = 0; t < ST; t++)
    x[0][t * SV + 5] = 2.0; /* a constant series */
  const void *px[SS];
  for (int s = 0; s < SS; s++)
    px[s] = x[s];
  static const struct {
    int pairwise;
    isc_nan_policy nan;
    size_t S;
  } cases[] = {{0, {1, -1}, SS}, {0, {0, -1}, SS}, {1, {1, 0.7}, SS}, {0, {1, -1}, 2}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    const size_t nS = cases[c].S, rows = isc_rows(nS, cases[c].pairwise);
    isc_data whole = {.x = px, .f64 = 1, .S = nS, .T = ST, .V = SV};
    double *want = malloc(rows * SV * SV * sizeof *want), *got = malloc(rows * SV * SV * sizeof *got);
    ck_assert_int_eq(isc_isfc(&whole, cases[c].pairwise, cases[c].nan, want), 0);
    static double za[NSLAB][ST * SV], zb[NSLAB][ST * SV], m[ST * SV], scratch[2 * SV * SV];
    static unsigned char masked[NSLAB][SV], bad[NSLAB][SV];
    isc_data d[NSLAB];
    const void *pxs[NSLAB][SS];
    for (int k = 0; k < NSLAB; k++) {
      const size_t n = slab_n[k];
      for (size_t s = 0; s < nS; s++) {
        for (int t = 0; t < ST; t++)
          for (size_t j = 0; j < n; j++)
            xs[k][s][t * n + j] = x[s][t * SV + slab_vox[k][j]];
        pxs[k][s] = xs[k][s];
      }
      d[k] = (isc_data){.x = pxs[k], .f64 = 1, .S = nS, .T = ST, .V = n};
      if (n) ck_assert_int_eq(isc_isfc_mask(&d[k], cases[c].nan, masked[k]), 0);
    }
    for (size_t r = 0; r < rows; r++) {
      for (int k = 0; k < NSLAB; k++)
        if (slab_n[k])
          ck_assert_int_eq(
              isc_isfc_zscore(&d[k], r, cases[c].pairwise, cases[c].nan, masked[k], za[k], zb[k], m, bad[k]),
              0);
      for (int k = 0; k < NSLAB; k++) {
        double rowbuf[SV * SV];
        for (int q = 0; q < NSLAB; q++)
          isc_isfc_block(za[k], zb[k], bad[k], slab_n[k], za[q], zb[q], bad[q], slab_vox[q], slab_n[q], ST,
                         scratch, rowbuf, SV);
        for (size_t i = 0; i < slab_n[k]; i++)
          memcpy(got + r * SV * SV + slab_vox[k][i] * SV, rowbuf + i * SV, SV * sizeof *got);
      }
    }
    expect_close(got, want, rows * SV * SV, 1e-12, "isfc from slabs");
    size_t nans = 0;
    for (size_t i = 0; i < rows * SV * SV; i++)
      nans += isnan(want[i]);
    ck_assert_msg(nans > 0 && nans < rows * SV * SV, "case %zu: %zu NaN of %zu", c, nans, rows * SV * SV);
    free(want);
    free(got);
  }
}
END_TEST

START_TEST(isfc_matches_reference) {
  static fixture fx;
  fixture_init(&fx, S);
  double loo[S * V * V], pair[10 * V * V];
  ck_assert_int_eq(isc_isfc(&fx.df, 0, TOL, loo), 0);
  expect_close(loo, REF_ISFC_LOO, S * V * V, 1e-12, "isfc loo");
  ck_assert_int_eq(isc_isfc(&fx.df, 1, TOL, pair), 0);
  expect_close(pair, REF_ISFC_PAIR, 10 * V * V, 1e-12, "isfc pairwise");
  /* the diagonal is the ISC */
  for (int s = 0; s < S; s++)
    for (int v = 0; v < V; v++)
      ck_assert_double_eq_tol(loo[s * V * V + v * V + v], REF_LOO[s * V + v], 1e-12);
}
END_TEST

START_TEST(bootstrap_replays_brainiak) {
  static fixture fx;
  fixture_init(&fx, S);
  double loo[S * V], pair[10 * V], obs[V], ci[2 * V], p[V];
  isc_loo(&fx.df, TOL, 1, loo);
  isc_pairwise(&fx.df, TOL, 1, pair);
  ck_assert_int_eq(isc_bootstrap(loo, S, V, 0, ISC_SUMMARY_MEAN, BOOT_SAMPLES, 50, 95, ISC_SIDE_RIGHT, 2, obs,
                                 ci, p, NULL),
                   0);
  expect_close(obs, BOOT_LOO_MEAN_OBS, V, 1e-12, "boot obs");
  expect_close(ci, BOOT_LOO_MEAN_CI, 2 * V, 1e-12, "boot ci");
  expect_close(p, BOOT_LOO_MEAN_P, V, 1e-15, "boot p");
  ck_assert_int_eq(isc_bootstrap(pair, S, V, 1, ISC_SUMMARY_MEDIAN, BOOT_SAMPLES, 50, 95, ISC_SIDE_TWO, 1,
                                 obs, ci, p, NULL),
                   0);
  expect_close(obs, BOOT_PAIR_MEDIAN_OBS, V, 1e-12, "boot pair obs");
  expect_close(ci, BOOT_PAIR_MEDIAN_CI, 2 * V, 1e-12, "boot pair ci");
  expect_close(p, BOOT_PAIR_MEDIAN_P, V, 1e-15, "boot pair p");
}
END_TEST

START_TEST(exact_permutation_replays_brainiak) {
  static fixture fx;
  fixture_init(&fx, S);
  double loo[S * V], pair[10 * V], obs[V], p[V];
  isc_loo(&fx.df, TOL, 1, loo);
  isc_pairwise(&fx.df, TOL, 1, pair);
  int8_t *flips = isc_all_sign_flips(S);
  ck_assert_ptr_nonnull(flips);
  ck_assert_int_eq(flips[0], -1);
  ck_assert_int_eq(flips[31 * S + 4], 1);
  ck_assert_int_eq(
      isc_permutation(loo, S, V, 0, ISC_SUMMARY_MEDIAN, flips, 32, 1, ISC_SIDE_RIGHT, 1, obs, p, NULL), 0);
  expect_close(p, PERM_LOO_MEDIAN_P, V, 1e-15, "perm loo p");
  expect_close(obs, REF_MEDIAN, V, 1e-12, "perm obs");
  ck_assert_int_eq(
      isc_permutation(pair, S, V, 1, ISC_SUMMARY_MEAN, flips, 32, 1, ISC_SIDE_RIGHT, 1, obs, p, NULL), 0);
  expect_close(p, PERM_PAIR_MEAN_P, V, 1e-15, "perm pair p");
  free(flips);
}
END_TEST

START_TEST(timeshift_replays_brainiak) {
  static fixture fx;
  fixture_init(&fx, S);
  double obs[V], p[V], dist[40 * V], col[40];
  ck_assert_int_eq(
      isc_timeshift(&fx.df, 0, ISC_SUMMARY_MEAN, TOL, SHIFTS, 40, ISC_SIDE_RIGHT, 2, obs, p, dist), 0);
  for (int i = 0; i < 40; i++)
    col[i] = dist[i * V];
  expect_close(col, TSHIFT_LOO_MEAN_NULL0, 40, 1e-12, "timeshift loo null");
  expect_close(p, TSHIFT_LOO_MEAN_P, V, 1e-15, "timeshift loo p");
  expect_close(obs, REF_MEAN, V, 1e-12, "timeshift obs");
  ck_assert_int_eq(
      isc_timeshift(&fx.df, 1, ISC_SUMMARY_MEDIAN, TOL, SHIFTS, 40, ISC_SIDE_RIGHT, 1, obs, p, dist), 0);
  for (int i = 0; i < 40; i++)
    col[i] = dist[i * V];
  expect_close(col, TSHIFT_PAIR_MEDIAN_NULL0, 40, 1e-12, "timeshift pair null");
  expect_close(p, TSHIFT_PAIR_MEDIAN_P, V, 1e-15, "timeshift pair p");
}
END_TEST

START_TEST(phaseshift_replays_brainiak) {
  static fixture fx;
  fixture_init(&fx, S);
  ck_assert_uint_eq(isc_phase_count(T), 19);
  ck_assert_uint_eq(isc_phase_count(41), 20);
  double obs[V], p[V], dist[40 * V], col[40];
  ck_assert_int_eq(
      isc_phaseshift(&fx.df, 0, ISC_SUMMARY_MEDIAN, TOL, PHASES, 40, ISC_SIDE_RIGHT, 2, obs, p, dist), 0);
  for (int i = 0; i < 40; i++)
    col[i] = dist[i * V];
  expect_close(col, PSHIFT_LOO_MEDIAN_NULL0, 40, 1e-10, "phaseshift loo null");
  expect_close(p, PSHIFT_LOO_MEDIAN_P, V, 1e-15, "phaseshift loo p");
  ck_assert_int_eq(
      isc_phaseshift(&fx.df, 1, ISC_SUMMARY_MEAN, TOL, PHASES, 40, ISC_SIDE_RIGHT, 1, obs, p, dist), 0);
  for (int i = 0; i < 40; i++)
    col[i] = dist[i * V];
  expect_close(col, PSHIFT_PAIR_MEAN_NULL0, 40, 1e-10, "phaseshift pair null");
  expect_close(p, PSHIFT_PAIR_MEAN_P, V, 1e-15, "phaseshift pair p");
}
END_TEST

/* Partial NaN (voxel 1: subject 2 at one TR; voxel 2: subjects 0 and 3).
 * Pairwise: BrainIAK's null is valid (pairs with a NaN subject drop out of
 * every resample's summary) and p equals its p; before, every such voxel got
 * p = NaN. Leave-one-out: BrainIAK's null is all NaN, we report p = NaN. */
START_TEST(shift_nulls_with_partial_nan_match_brainiak) {
  static fixture fx;
  fixture_init(&fx, S);
  fx.f[2][5 * V + 1] = NAN;
  fx.f[0][7 * V + 2] = NAN;
  fx.f[3][9 * V + 2] = NAN;
  const isc_nan_policy F07 = {1, 0.7};
  double obs[V], p[V], dist[40 * V], col[40];
  struct {
    int pairwise;
    isc_summary_kind kind;
    isc_nan_policy nan;
    const double *tobs, *tnull, *tp, *pnull, *pp;
  } cases[] = {
      {1, ISC_SUMMARY_MEDIAN, TOL, TSHIFT_NAN_PAIR_MEDIAN_OBS, TSHIFT_NAN_PAIR_MEDIAN_NULL1,
       TSHIFT_NAN_PAIR_MEDIAN_P, PSHIFT_NAN_PAIR_MEDIAN_NULL1, PSHIFT_NAN_PAIR_MEDIAN_P},
      {1, ISC_SUMMARY_MEAN, F07, TSHIFT_NAN_PAIR_MEAN_F07_OBS, TSHIFT_NAN_PAIR_MEAN_F07_NULL1,
       TSHIFT_NAN_PAIR_MEAN_F07_P, PSHIFT_NAN_PAIR_MEAN_F07_NULL1, PSHIFT_NAN_PAIR_MEAN_F07_P},
      {0, ISC_SUMMARY_MEAN, TOL, TSHIFT_NAN_LOO_MEAN_OBS, TSHIFT_NAN_LOO_MEAN_NULL1, TSHIFT_NAN_LOO_MEAN_P,
       PSHIFT_NAN_LOO_MEAN_NULL1, PSHIFT_NAN_LOO_MEAN_P},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    ck_assert_int_eq(isc_timeshift(&fx.df, cases[k].pairwise, cases[k].kind, cases[k].nan, SHIFTS, 40,
                                   ISC_SIDE_RIGHT, 2, obs, p, dist),
                     0);
    for (int i = 0; i < 40; i++)
      col[i] = dist[i * V + 1];
    expect_close(obs, cases[k].tobs, V, 1e-12, "timeshift NaN obs");
    expect_close(col, cases[k].tnull, 40, 1e-12, "timeshift NaN null, voxel 1");
    expect_close(p, cases[k].tp, V, 1e-15, "timeshift NaN p");
    ck_assert_int_eq(isc_phaseshift(&fx.df, cases[k].pairwise, cases[k].kind, cases[k].nan, PHASES, 40,
                                    ISC_SIDE_TWO, 1, obs, p, dist),
                     0);
    for (int i = 0; i < 40; i++)
      col[i] = dist[i * V + 1];
    expect_close(col, cases[k].pnull, 40, 1e-10, "phaseshift NaN null, voxel 1");
    expect_close(p, cases[k].pp, V, 1e-15, "phaseshift NaN p");
  }
  /* the pairwise p of voxel 1 (one NaN TR in one subject) is finite */
  ck_assert(!isnan(TSHIFT_NAN_PAIR_MEDIAN_P[1]) && !isnan(PSHIFT_NAN_PAIR_MEDIAN_P[1]));
}
END_TEST

START_TEST(p_value_floor) {
  /* Strong shared signal: every bootstrap draw is far from zero, so the
   * right-sided p reaches its floor 1/(n+1) and never 0. */
  static fixture fx;
  fixture_init(&fx, S);
  double loo[S * V], obs[V], p[V];
  isc_loo(&fx.df, TOL, 1, loo);
  enum { N = 999 };
  uint32_t *smp = malloc(N * S * sizeof *smp);
  isc_rng r;
  isc_rng_seed(&r, 42);
  for (int i = 0; i < N * S; i++)
    smp[i] = isc_rng_below(&r, S);
  ck_assert_int_eq(
      isc_bootstrap(loo, S, V, 0, ISC_SUMMARY_MEAN, smp, N, 95, ISC_SIDE_RIGHT, 2, obs, NULL, p, NULL), 0);
  for (int v = 0; v < V; v++)
    ck_assert_double_eq(p[v], 1.0 / (N + 1));
  /* p_from_null: a null entirely above gives 1; NaN observed gives NaN */
  double null[4] = {2, 3, 4, 5};
  ck_assert_double_eq(isc_p_from_null(1.0, null, 4, ISC_SIDE_RIGHT, 0), 1.0);
  ck_assert_double_eq(isc_p_from_null(9.0, null, 4, ISC_SIDE_RIGHT, 0), 0.2);
  ck_assert_double_eq(isc_p_from_null(-9.0, null, 4, ISC_SIDE_TWO, 0), 0.2);
  ck_assert_double_eq(isc_p_from_null(2.5, null, 4, ISC_SIDE_LEFT, 1), 0.25);
  ck_assert(isnan(isc_p_from_null(NAN, null, 4, ISC_SIDE_RIGHT, 0)));
  free(smp);
}
END_TEST

START_TEST(streaming_equals_batch) {
  static fixture fx;
  fixture_init(&fx, S);
  for (int pass = 0; pass < 2; pass++) {
    if (pass == 1) fx.f[2][5 * V + 1] = NAN;
    isc_stream st;
    ck_assert_int_eq(isc_stream_init(&st, S, V, 0), 0);
    isc_stream pst;
    ck_assert_int_eq(isc_stream_init(&pst, S, V, 1), 0);
    double pbatch[10 * V], plive[10 * V];
    double vol[S][V];
    const double *pv[S];
    for (int s = 0; s < S; s++)
      pv[s] = vol[s];
    double batch[S * V], live[S * V];
    for (int t = 0; t < T; t++) {
      for (int s = 0; s < S; s++)
        for (int v = 0; v < V; v++)
          vol[s][v] = fx.f[s][t * V + v];
      isc_stream_add(&st, pv);
      isc_stream_add(&pst, pv);
      if (t < 2) continue;
      isc_data part = fx.df;
      part.T = (size_t)t + 1;
      ck_assert_int_eq(isc_loo(&part, TOL, 1, batch), 0);
      isc_stream_result(&st, TOL, live);
      expect_close(live, batch, S * V, 1e-10, "stream vs batch");
      ck_assert_int_eq(isc_pairwise(&part, TOL, 1, pbatch), 0);
      isc_stream_result(&pst, TOL, plive);
      expect_close(plive, pbatch, 10 * V, 1e-10, "pairwise stream vs batch");
    }
    isc_stream_result(&st, STRICT, live);
    ck_assert_int_eq(isc_loo(&fx.df, STRICT, 1, batch), 0);
    expect_close(live, batch, S * V, 1e-10, "stream vs batch strict");
    isc_stream_free(&st);
    isc_stream_free(&pst);
  }
}
END_TEST

START_TEST(threads_and_blocks_agree) {
  /* V spans several blocks with a ragged tail; 1 and 3 threads agree. */
  enum { SS = 7, TT = 50, VV = 1000 };
  float *buf = malloc(sizeof(float) * SS * TT * VV);
  const void *px[SS];
  isc_rng r;
  isc_rng_seed(&r, 3);
  for (int s = 0; s < SS; s++) {
    for (int i = 0; i < TT * VV; i++) {
      int v = i % VV, t = i / VV;
      buf[s * TT * VV + i] = (float)(sin(0.1 * t * (1 + v % 13)) + isc_rng_unit(&r));
    }
    px[s] = buf + s * TT * VV;
  }
  buf[3 * TT * VV + 10 * VV + 517] = NAN;
  isc_data d = {.x = px, .f64 = 0, .S = SS, .T = TT, .V = VV};
  double *a = malloc(sizeof(double) * SS * VV), *b = malloc(sizeof(double) * SS * VV);
  ck_assert_int_eq(isc_loo(&d, TOL, 1, a), 0);
  ck_assert_int_eq(isc_loo(&d, TOL, 3, b), 0);
  ck_assert_int_eq(memcmp(a, b, sizeof(double) * SS * VV), 0);
  ck_assert(isnan(a[3 * VV + 517]) && !isnan(a[2 * VV + 517]));
  /* spot-check one voxel against the per-voxel slow path formula */
  double x[TT], y[TT];
  for (int t = 0; t < TT; t++) {
    x[t] = buf[1 * TT * VV + t * VV + 999];
    y[t] = 0;
    for (int s = 0; s < SS; s++)
      if (s != 1) y[t] += buf[s * TT * VV + t * VV + 999];
  }
  double mx = 0, my = 0, sxx = 0, syy = 0, sxy = 0;
  for (int t = 0; t < TT; t++)
    mx += x[t] / TT, my += y[t] / TT;
  for (int t = 0; t < TT; t++)
    sxx += (x[t] - mx) * (x[t] - mx), syy += (y[t] - my) * (y[t] - my), sxy += (x[t] - mx) * (y[t] - my);
  ck_assert_double_eq_tol(a[1 * VV + 999], sxy / sqrt(sxx * syy), 1e-12);
  free(a);
  free(b);
  free(buf);
}
END_TEST

START_TEST(loo_from_sums_spread_over_holders) {
  /* The subjects split over "ranks": each adds its own to the sums, the sums
   * are added in holder order, each computes its rows. One holder gives
   * isc_loo bit for bit; two and three holders within 1e-12 (only the order
   * of the sum changes); voxels with a NaN are recomputed from every
   * subject's series by isc_loo_voxel, bit for bit. */
  enum { SS = 7, TT = 50, VV = 70 };
  float *buf = malloc(sizeof(float) * SS * TT * VV);
  const void *px[SS];
  isc_rng r;
  isc_rng_seed(&r, 5);
  for (int s = 0; s < SS; s++) {
    for (int i = 0; i < TT * VV; i++)
      buf[s * TT * VV + i] = (float)(100 + sin(0.1 * (i / VV) * (1 + (i % VV) % 11)) + isc_rng_unit(&r));
    px[s] = buf + s * TT * VV;
  }
  buf[2 * TT * VV + 7 * VV + 33] = NAN; /* voxel 33: subject 2 has a NaN */
  for (int t = 0; t < TT; t++)
    buf[5 * TT * VV + t * VV + 40] = NAN; /* voxel 40: subject 5 all NaN */
  isc_data d = {.x = px, .f64 = 0, .S = SS, .T = TT, .V = VV};
  double *want = malloc(sizeof(double) * SS * VV), *got = malloc(sizeof(double) * SS * VV);
  double *sums = malloc(sizeof(double) * (TT + 1) * VV), *part = malloc(sizeof(double) * (TT + 1) * VV);
  double *g = malloc(sizeof(double) * SS * TT);
  ck_assert_int_eq(isc_loo(&d, TOL, 2, want), 0);
  const size_t cuts[3][4] = {{0, SS, SS, SS}, {0, 3, SS, SS}, {0, 2, 5, SS}};
  for (int c = 0; c < 3; c++) {
    memset(sums, 0, sizeof(double) * (TT + 1) * VV);
    for (int h = 0; h < 3; h++) { /* holder h: subjects cuts[c][h] .. cuts[c][h+1] */
      isc_data dh = {.x = px + cuts[c][h], .f64 = 0, .S = cuts[c][h + 1] - cuts[c][h], .T = TT, .V = VV};
      memset(part, 0, sizeof(double) * (TT + 1) * VV);
      ck_assert_int_eq(isc_loo_sums(&dh, 0, VV, part, part + TT * VV), 0);
      for (int i = 0; i < (TT + 1) * VV; i++)
        sums[i] += part[i];
    }
    for (int h = 0; h < 3; h++) {
      isc_data dh = {.x = px + cuts[c][h], .f64 = 0, .S = cuts[c][h + 1] - cuts[c][h], .T = TT, .V = VV};
      ck_assert_int_eq(isc_loo_from_sums(&dh, dh.S, 0, VV, sums, sums + TT * VV, 1, got + cuts[c][h] * VV),
                       0);
    }
    ck_assert(isnan(got[0 * VV + 33]) && isnan(got[6 * VV + 40])); /* left for isc_loo_voxel */
    for (int v = 33; v <= 40; v += 7) {
      for (int s = 0; s < SS; s++)
        for (int t = 0; t < TT; t++)
          g[s * TT + t] = buf[s * TT * VV + t * VV + v];
      ck_assert_int_eq(isc_loo_voxel(g, SS, TT, TOL, got + v, VV), 0);
    }
    if (c == 0) {
      ck_assert_int_eq(memcmp(got, want, sizeof(double) * SS * VV), 0);
    } else {
      expect_close(got, want, SS * VV, 1e-12, "spread rows");
      for (int s = 0; s < SS; s++) /* the NaN voxels: bit for bit */
        ck_assert(memcmp(&got[s * VV + 33], &want[s * VV + 33], sizeof(double)) == 0 &&
                  memcmp(&got[s * VV + 40], &want[s * VV + 40], sizeof(double)) == 0);
    }
  }
  ck_assert(isnan(want[2 * VV + 33]) && !isnan(want[1 * VV + 33]) && isnan(want[5 * VV + 40]));
  isc_data none = {.x = NULL, .f64 = 0, .S = 0, .T = TT, .V = VV}; /* a holder without subjects */
  ck_assert_int_eq(isc_loo_sums(&none, 0, VV, part, part + TT * VV), 0);
  ck_assert_int_eq(isc_loo_from_sums(&none, 0, 0, VV, sums, sums + TT * VV, 1, NULL), 0);
  ck_assert_int_eq(isc_loo_from_sums(&none, 1, 0, VV, sums, sums + TT * VV, 1, got), ISC_EARG);
  ck_assert_int_eq(isc_loo_sums(&d, 5, VV + 1, part, part + TT * VV), ISC_EARG);
  /* in slabs of any width (23: not a multiple of the block), one holder: isc_loo bit for bit */
  memset(got, 0, sizeof(double) * SS * VV);
  for (size_t v0 = 0; v0 < VV; v0 += 23) {
    size_t v1 = v0 + 23 < VV ? v0 + 23 : VV, w = v1 - v0;
    memset(part, 0, sizeof(double) * (TT + 1) * w);
    ck_assert_int_eq(isc_loo_sums(&d, v0, v1, part, part + TT * w), 0);
    ck_assert_int_eq(isc_loo_from_sums(&d, SS, v0, v1, part, part + TT * w, 2, got), 0);
  }
  for (int v = 33; v <= 40; v += 7) {
    for (int s = 0; s < SS; s++)
      for (int t = 0; t < TT; t++)
        g[s * TT + t] = buf[s * TT * VV + t * VV + v];
    ck_assert_int_eq(isc_loo_voxel(g, SS, TT, TOL, got + v, VV), 0);
  }
  ck_assert_int_eq(memcmp(got, want, sizeof(double) * SS * VV), 0);
  free(want), free(got), free(sums), free(part), free(g), free(buf);
}
END_TEST

START_TEST(bad_arguments) {
  static fixture fx;
  fixture_init(&fx, 1);
  double out[V];
  ck_assert_int_eq(isc_loo(&fx.df, TOL, 1, out), ISC_EARG);
  ck_assert_int_eq(isc_pairwise(&fx.df, TOL, 1, out), ISC_EARG);
  ck_assert_int_eq(isc_loo(NULL, TOL, 1, out), ISC_EARG);
  fixture_init(&fx, S);
  uint32_t bad[S] = {0, 1, 2, 3, 9};
  double obs[V], p[V];
  ck_assert_int_eq(
      isc_bootstrap(REF_LOO, S, V, 0, ISC_SUMMARY_MEAN, bad, 1, 95, ISC_SIDE_RIGHT, 1, obs, NULL, p, NULL),
      ISC_EARG);
  /* Two subjects: one ISC value; a resample is that value (subjects 0 and 1
   * drawn) or undefined (one subject drawn twice), so the shifted null is 0 or
   * NaN and every r > 0 would get the floor p = 1/(n+1). Refused. */
  const uint32_t two[3 * 2] = {0, 1, 0, 0, 1, 1};
  double ci[2 * V];
  for (int pw = 0; pw <= 1; pw++)
    ck_assert_int_eq(
        isc_bootstrap(REF_TWO, 2, V, pw, ISC_SUMMARY_MEAN, two, 3, 95, ISC_SIDE_RIGHT, 1, obs, ci, p, NULL),
        ISC_EARG);
  uint32_t sh[S] = {0, 1, 2, 3, 40};
  ck_assert_int_eq(isc_timeshift(&fx.df, 0, ISC_SUMMARY_MEAN, TOL, sh, 1, ISC_SIDE_RIGHT, 1, obs, p, NULL),
                   ISC_EARG);
  ck_assert_ptr_null(isc_all_sign_flips(40));
}
END_TEST

/* Two-sample test, exact: BrainIAK enumerates all 5! = 120 permutations of
 * the labels; we enumerate the C(5, 2) = 10 distinct assignments, each
 * standing for 2! 3! of them, so the p-values are the same rationals. */
START_TEST(group_permutation_exact_replays_brainiak) {
  size_t n = 0;
  uint8_t *all = isc_all_group_assignments(G5, S, 1000, &n);
  ck_assert_ptr_nonnull(all);
  ck_assert_uint_eq(n, 10);
  static const struct {
    int pairwise;
    isc_summary_kind kind;
    const double *obs, *p[3];
  } cases[] = {
      {0,
       ISC_SUMMARY_MEDIAN,
       GPERM_LOO_MEDIAN_OBS,
       {GPERM_LOO_MEDIAN_PR, GPERM_LOO_MEDIAN_PL, GPERM_LOO_MEDIAN_P2}},
      {0, ISC_SUMMARY_MEAN, GPERM_LOO_MEAN_OBS, {GPERM_LOO_MEAN_PR, GPERM_LOO_MEAN_PL, GPERM_LOO_MEAN_P2}},
      {1,
       ISC_SUMMARY_MEAN,
       GPERM_PAIR_MEAN_OBS,
       {GPERM_PAIR_MEAN_PR, GPERM_PAIR_MEAN_PL, GPERM_PAIR_MEAN_P2}},
      {1,
       ISC_SUMMARY_MEDIAN,
       GPERM_PAIR_MEDIAN_OBS,
       {GPERM_PAIR_MEDIAN_PR, GPERM_PAIR_MEDIAN_PL, GPERM_PAIR_MEDIAN_P2}},
  };
  const isc_side sides[3] = {ISC_SIDE_RIGHT, ISC_SIDE_LEFT, ISC_SIDE_TWO};
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
    for (int sd = 0; sd < 3; sd++) {
      double obs[V], p[V];
      const double *iscs = cases[k].pairwise ? REF_PAIR : REF_LOO;
      ck_assert_int_eq(isc_permutation_groups(iscs, S, V, cases[k].pairwise, cases[k].kind, G5, all, n, 1,
                                              sides[sd], 1 + sd, obs, p, NULL),
                       0);
      expect_close(obs, cases[k].obs, V, 1e-10, "group obs");
      expect_close(p, cases[k].p[sd], V, 1e-15, "group exact p");
    }
  free(all);
}
END_TEST

/* Monte Carlo: BrainIAK's own shuffles (its RandomState reseeding chain),
 * replayed as each subject's group per resample. */
START_TEST(group_permutation_resampled_replays_brainiak) {
  double obs[V], p[V], dist[30 * V];
  ck_assert_int_eq(isc_permutation_groups(REF_LOO, S, V, 0, ISC_SUMMARY_MEAN, G5, GMC_LOO_MEAN_ASSIGN, 30, 0,
                                          ISC_SIDE_TWO, 2, obs, p, dist),
                   0);
  expect_close(obs, GPERM_LOO_MEAN_OBS, V, 1e-10, "mc loo obs");
  expect_close(dist, GMC_LOO_MEAN_DIST, 30 * V, 1e-10, "mc loo null");
  expect_close(p, GMC_LOO_MEAN_P, V, 1e-15, "mc loo p");
  ck_assert_int_eq(isc_permutation_groups(REF_PAIR, S, V, 1, ISC_SUMMARY_MEDIAN, G5, GMC_PAIR_MEDIAN_ASSIGN,
                                          30, 0, ISC_SIDE_RIGHT, 1, obs, p, dist),
                   0);
  expect_close(obs, GPERM_PAIR_MEDIAN_OBS, V, 1e-10, "mc pair obs");
  expect_close(dist, GMC_PAIR_MEDIAN_DIST, 30 * V, 1e-10, "mc pair null");
  expect_close(p, GMC_PAIR_MEDIAN_P, V, 1e-15, "mc pair p");
}
END_TEST

/* Seven subjects (3 + 4) with a planted group effect and NaN ISCs; voxel 3
 * has no ISC left in group A (observed NaN, p NaN). Exact over 7! = 5040
 * on the Python side, C(7, 3) = 35 here. */
START_TEST(group_permutation_nan_and_effect) {
  size_t n = 0;
  uint8_t *all = isc_all_group_assignments(G7, 7, 35, &n);
  ck_assert_ptr_nonnull(all);
  ck_assert_uint_eq(n, 35);
  double obs[4], p[4];
  ck_assert_int_eq(
      isc_permutation_groups(L7, 7, 4, 0, ISC_SUMMARY_MEAN, G7, all, n, 1, ISC_SIDE_RIGHT, 1, obs, p, NULL),
      0);
  expect_close(obs, G7_LOO_MEAN_OBS, 4, 1e-10, "g7 loo mean obs");
  expect_close(p, G7_LOO_MEAN_P, 4, 1e-15, "g7 loo mean p");
  ck_assert_double_eq(p[0], 1.0 / 35); /* the planted effect: the most extreme assignment */
  ck_assert_int_eq(
      isc_permutation_groups(L7, 7, 4, 0, ISC_SUMMARY_MEDIAN, G7, all, n, 1, ISC_SIDE_TWO, 2, obs, p, NULL),
      0);
  expect_close(obs, G7_LOO_MEDIAN_OBS, 4, 1e-10, "g7 loo median obs");
  expect_close(p, G7_LOO_MEDIAN_P, 4, 1e-15, "g7 loo median p");
  ck_assert_int_eq(
      isc_permutation_groups(P7, 7, 4, 1, ISC_SUMMARY_MEAN, G7, all, n, 1, ISC_SIDE_LEFT, 3, obs, p, NULL),
      0);
  expect_close(obs, G7_PAIR_MEAN_OBS, 4, 1e-10, "g7 pair mean obs");
  expect_close(p, G7_PAIR_MEAN_P, 4, 1e-15, "g7 pair mean p");
  free(all);
}
END_TEST

/* Leave-one-out as BrainIAK's two-sample test takes it: ISC within each
 * group (isc() per group, stacked), then the test; 6 subjects in two
 * interleaved groups of 3, float32 data, exact over 6! (Python) = C(6, 3). */
START_TEST(group_loo_within_groups_replays_brainiak) {
  static float x[6][T * V];
  const void *px[6];
  for (int s = 0; s < 6; s++) {
    for (int i = 0; i < T * V; i++)
      x[s][i] = (float)gen(i / V, i % V, s);
    px[s] = x[s];
  }
  isc_data d = {.x = px, .f64 = 0, .S = 6, .T = T, .V = V};
  double loo[6 * V], obs[V], p[V];
  ck_assert_int_eq(isc_loo_groups(&d, G6, TOL, 2, loo), 0);
  expect_close(loo, GLOO6_ISCS, 6 * V, 1e-12, "within-group loo");
  size_t n = 0;
  uint8_t *all = isc_all_group_assignments(G6, 6, 1000, &n);
  ck_assert_uint_eq(n, 20);
  ck_assert_int_eq(
      isc_permutation_groups(loo, 6, V, 0, ISC_SUMMARY_MEAN, G6, all, n, 1, ISC_SIDE_TWO, 1, obs, p, NULL),
      0);
  expect_close(obs, GLOO6_MEAN_OBS, V, 1e-10, "within-group obs");
  expect_close(p, GLOO6_MEAN_P, V, 1e-15, "within-group p");
  free(all);
  /* a group of 2 has no leave-one-out row per subject */
  const uint8_t two[6] = {0, 0, 1, 1, 1, 1};
  ck_assert_int_eq(isc_loo_groups(&d, two, TOL, 1, loo), ISC_EARG);
}
END_TEST

/* Swapping the names of the groups negates the statistic and every null
 * value; a two-sided p is unchanged. Threads and block edges do not change
 * a bit (V = 203 spans several blocks with a ragged tail). */
START_TEST(group_permutation_symmetry_and_threads) {
  enum { SS = 9, VV = 203, NN = 64 };
  const size_t rows = isc_npairs(SS);
  double *iscs = malloc(rows * VV * sizeof *iscs);
  uint8_t g[SS] = {0, 0, 1, 0, 1, 1, 0, 1, 1}, ng[SS], *as = malloc(NN * SS), *nas = malloc(NN * SS);
  isc_rng r;
  isc_rng_seed(&r, 17);
  for (size_t i = 0; i < rows * VV; i++)
    iscs[i] = 1.6 * isc_rng_unit(&r) - 0.8;
  for (int s = 0; s < SS; s++)
    ng[s] = (uint8_t)(1 - g[s]);
  for (int i = 0; i < NN; i++) {
    memcpy(as + i * SS, g, SS);
    for (int k = SS - 1; k > 0; k--) { /* Fisher-Yates */
      uint32_t j = isc_rng_below(&r, (uint32_t)k + 1);
      uint8_t t = as[i * SS + k];
      as[i * SS + k] = as[i * SS + j];
      as[i * SS + j] = t;
    }
    for (int s = 0; s < SS; s++)
      nas[i * SS + s] = (uint8_t)(1 - as[i * SS + s]);
  }
  double o1[VV], p1[VV], d1[NN * VV], o2[VV], p2[VV], d2[NN * VV];
  for (int pairwise = 0; pairwise < 2; pairwise++)
    for (int kind = ISC_SUMMARY_MEAN; kind <= ISC_SUMMARY_MEDIAN; kind++) {
      ck_assert_int_eq(
          isc_permutation_groups(iscs, SS, VV, pairwise, kind, g, as, NN, 0, ISC_SIDE_TWO, 1, o1, p1, d1), 0);
      ck_assert_int_eq(
          isc_permutation_groups(iscs, SS, VV, pairwise, kind, g, as, NN, 0, ISC_SIDE_TWO, 3, o2, p2, d2), 0);
      ck_assert_int_eq(memcmp(p1, p2, sizeof p1), 0);
      ck_assert_int_eq(memcmp(d1, d2, sizeof d1), 0);
      ck_assert_int_eq(
          isc_permutation_groups(iscs, SS, VV, pairwise, kind, ng, nas, NN, 0, ISC_SIDE_TWO, 2, o2, p2, d2),
          0);
      for (int v = 0; v < VV; v++) {
        ck_assert_double_eq(o2[v], -o1[v]);
        ck_assert_double_eq(p2[v], p1[v]);
        ck_assert(p1[v] >= 1.0 / (NN + 1) && p1[v] <= 1.0);
      }
      for (int i = 0; i < NN * VV; i++)
        ck_assert_double_eq(d2[i], -d1[i]);
    }
  free(iscs);
  free(as);
  free(nas);
}
END_TEST

START_TEST(group_assignments_enumerate) {
  ck_assert_uint_eq(isc_group_assignment_count(5, 2), 10);
  ck_assert_uint_eq(isc_group_assignment_count(7, 4), 35);
  ck_assert_uint_eq(isc_group_assignment_count(20, 10), 184756);
  ck_assert_uint_eq(isc_group_assignment_count(60, 30), 118264581564861424ull);
  ck_assert_uint_eq(isc_group_assignment_count(200, 100), SIZE_MAX);
  ck_assert_uint_eq(isc_group_assignment_count(3, 4), 0);
  const uint8_t g[8] = {1, 0, 1, 1, 0, 1, 0, 1};
  size_t n = 0;
  ck_assert_ptr_null(isc_all_group_assignments(g, 8, 55, &n));
  uint8_t *all = isc_all_group_assignments(g, 8, 56, &n);
  ck_assert_ptr_nonnull(all);
  ck_assert_uint_eq(n, 56);
  /* every one has 3 in group A, and all are distinct */
  unsigned seen[256] = {0};
  for (size_t i = 0; i < n; i++) {
    unsigned code = 0, na = 0;
    for (int s = 0; s < 8; s++) {
      ck_assert_uint_le(all[i * 8 + s], 1);
      na += all[i * 8 + s] == 0;
      code = code * 2 + all[i * 8 + s];
    }
    ck_assert_uint_eq(na, 3);
    ck_assert_uint_eq(seen[code]++, 0);
  }
  free(all);
  /* many subjects, a group of one: S assignments, the one moving */
  uint8_t big[70];
  memset(big, 1, sizeof big);
  big[69] = 0;
  all = isc_all_group_assignments(big, 70, 1000, &n);
  ck_assert_ptr_nonnull(all);
  ck_assert_uint_eq(n, 70);
  for (size_t i = 0; i < n; i++)
    for (size_t s = 0; s < 70; s++)
      ck_assert_uint_eq(all[i * 70 + s], s != i);
  free(all);
  /* bad arguments */
  double obs[V], p[V];
  const uint8_t three[S] = {0, 1, 2, 0, 1}, one[S] = {0, 0, 0, 0, 0}, skew[S] = {0, 0, 0, 1, 1};
  ck_assert_int_eq(isc_permutation_groups(REF_LOO, S, V, 0, ISC_SUMMARY_MEAN, three, G5, 1, 0, ISC_SIDE_RIGHT,
                                          1, obs, p, NULL),
                   ISC_EARG);
  ck_assert_int_eq(isc_permutation_groups(REF_LOO, S, V, 0, ISC_SUMMARY_MEAN, one, one, 1, 0, ISC_SIDE_RIGHT,
                                          1, obs, p, NULL),
                   ISC_EARG);
  /* an assign row with 3 + 2 for a 2 + 3 assignment is not a relabeling */
  ck_assert_int_eq(isc_permutation_groups(REF_LOO, S, V, 0, ISC_SUMMARY_MEAN, G5, skew, 1, 0, ISC_SIDE_RIGHT,
                                          1, obs, p, NULL),
                   ISC_EARG);
  ck_assert_int_eq(isc_permutation_groups(REF_LOO, 2, V, 0, ISC_SUMMARY_MEAN, G5 + 1, G5 + 1, 1, 0,
                                          ISC_SIDE_RIGHT, 1, obs, p, NULL),
                   ISC_EARG);
  ck_assert_int_eq(isc_permutation_groups(REF_LOO, S, V, 0, ISC_SUMMARY_NONE, G5, G5, 1, 0, ISC_SIDE_RIGHT, 1,
                                          obs, p, NULL),
                   ISC_EARG);
}
END_TEST

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Median and percentiles use quickselect; check them against sorting on
 * many sizes, with ties and NaN. */
START_TEST(select_matches_sorting) {
  isc_rng r;
  isc_rng_seed(&r, 11);
  double v[301], w[301], sorted[301], out;
  for (int trial = 0; trial < 2000; trial++) {
    size_t n = 1 + isc_rng_below(&r, 300);
    size_t nn = 0;
    for (size_t i = 0; i < n; i++) {
      double x = (double)isc_rng_below(&r, 7) - 3.0; /* many ties */
      if (trial % 3) x += isc_rng_unit(&r);
      if (isc_rng_below(&r, 10) == 0) x = NAN;
      v[i] = x;
      if (!isnan(x)) sorted[nn++] = x;
    }
    qsort(sorted, nn, sizeof *sorted, cmp_d);
    isc_summarize(v, n, 1, ISC_SUMMARY_MEDIAN, &out);
    if (nn == 0) {
      ck_assert(isnan(out));
      continue;
    }
    double med = (nn & 1) ? sorted[nn / 2] : 0.5 * (sorted[nn / 2 - 1] + sorted[nn / 2]);
    ck_assert_double_eq(out, med);
    double q = 100.0 * isc_rng_unit(&r);
    memcpy(w, sorted, nn * sizeof *w);
    for (size_t i = nn; i-- > 1;) { /* shuffle */
      size_t j = isc_rng_below(&r, (uint32_t)(i + 1));
      double t = w[i];
      w[i] = w[j];
      w[j] = t;
    }
    double pos = q / 100.0 * (double)(nn - 1);
    size_t lo = (size_t)floor(pos);
    double want =
        lo >= nn - 1 ? sorted[nn - 1] : sorted[lo] + (sorted[lo + 1] - sorted[lo]) * (pos - (double)lo);
    ck_assert_double_eq_tol(isc_percentile(w, nn, q), want, 1e-15);
  }
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("isc_kernels");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, issue_numbers_float64);
  tcase_add_test(tc, float32_matches_reference);
  tcase_add_test(tc, two_subjects_one_row);
  tcase_add_test(tc, identical_subjects_give_one);
  tcase_add_test(tc, affine_rescaling_changes_nothing);
  tcase_add_test(tc, nan_semantics);
  tcase_add_test(tc, isfc_matches_reference);
  tcase_add_test(tc, isfc_slabs_equal_whole);
  tcase_add_test(tc, bootstrap_replays_brainiak);
  tcase_add_test(tc, exact_permutation_replays_brainiak);
  tcase_add_test(tc, timeshift_replays_brainiak);
  tcase_add_test(tc, phaseshift_replays_brainiak);
  tcase_add_test(tc, shift_nulls_with_partial_nan_match_brainiak);
  tcase_add_test(tc, p_value_floor);
  tcase_add_test(tc, streaming_equals_batch);
  tcase_add_test(tc, threads_and_blocks_agree);
  tcase_add_test(tc, loo_from_sums_spread_over_holders);
  tcase_add_test(tc, bad_arguments);
  tcase_add_test(tc, select_matches_sorting);
  tcase_add_test(tc, group_permutation_exact_replays_brainiak);
  tcase_add_test(tc, group_permutation_resampled_replays_brainiak);
  tcase_add_test(tc, group_permutation_nan_and_effect);
  tcase_add_test(tc, group_loo_within_groups_replays_brainiak);
  tcase_add_test(tc, group_permutation_symmetry_and_threads);
  tcase_add_test(tc, group_assignments_enumerate);
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
