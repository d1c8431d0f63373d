/*
 * test_ic_kernels.c — the information content kernels against reference
 * values from the issue (computed with sklearn's KernelDensity and nctpy)
 * and from scipy (expm, quad_vec Gramians) for the non-symmetric path. The
 * numbers are committed; nothing runs Python here.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ic_kernels.h"

#define NEAR(a, b, tol) ck_assert_msg(fabs((a) - (b)) <= (tol) * fmax(1.0, fabs(b)), \
                                      "%s = %.15g, expected %.15g", #a, (double)(a), (double)(b))

static const double PATH[9] = {0, 1, 0, 1, 0, 1, 0, 1, 0};

/* Normalised path graph (nctpy, c = 1): eigenvalues lam and vectors V. */
static void path_nctpy(double *lam, double *V) {
  double w[3];
  ck_assert_int_eq(ic_eigh(3, PATH, w, V), 0);
  double s = ic_scale_nctpy(w, 3, 1.0);
  NEAR(s, 1.0 + sqrt(2.0), 1e-14);
  for (int k = 0; k < 3; k++) lam[k] = w[k] / s - 1.0;
}

START_TEST(kde_reference) {
  double ref[6] = {-2, -1, 0, 0.5, 1, 3};
  double h = ic_silverman(ref, 6);
  NEAR(h, 1.16634888143328, 1e-13);
  ic_sort(ref, 6);
  const double q[5] = {-3, 0, 0.25, 2, 10};
  const double want[5] = {2.892172431168, 1.593820711279, 1.598040668542, 2.126696703423,
                          20.874378143554};
  double out[5], work[6];
  ic_kde_surprisal(ref, 6, h, q, 5, out, work);
  for (int i = 0; i < 5; i++) NEAR(out[i], want[i], 1e-11);
  /* far from the data the max-shifted sum stays exact (sklearn values) */
  const double far[2] = {50, 100}, want_far[2] = {814.77621268, 3461.11563425};
  ic_kde_surprisal(ref, 6, h, far, 2, out, work);
  for (int i = 0; i < 2; i++) NEAR(out[i], want_far[i], 1e-10);
}
END_TEST

/* The windowed, max-shifted sum equals a brute-force long-double sum. */
START_TEST(kde_window_exact) {
  enum { N = 2000, M = 300 };
  double *ref = malloc(N * sizeof *ref), *q = malloc(M * sizeof *q), *out = malloc(M * sizeof *out),
         *work = malloc(N * sizeof *work);
  unsigned long long s = 7;
  for (int i = 0; i < N; i++) { /* skewed, heavy-ish tails */
    double u = (ic_rand_next(&s) >> 11) * 0x1p-53, v = (ic_rand_next(&s) >> 11) * 0x1p-53;
    ref[i] = sqrt(-2 * log(u + 1e-300)) * cos(2 * M_PI * v) * (i % 3 ? 1.0 : 2.5);
  }
  for (int j = 0; j < M; j++) q[j] = -12.0 + 24.0 * j / (M - 1);
  double h = ic_silverman(ref, N);
  ic_sort(ref, N);
  ic_kde_surprisal(ref, N, h, q, M, out, work);
  for (int j = 0; j < M; j++) {
    long double mx = -INFINITY;
    for (int i = 0; i < N; i++) {
      long double d = q[j] - ref[i], e = -d * d / (2.0L * h * h);
      if (e > mx) mx = e;
    }
    long double sum = 0;
    for (int i = 0; i < N; i++) {
      long double d = q[j] - ref[i];
      sum += expl(-d * d / (2.0L * h * h) - mx);
    }
    double want = (double)(-(mx + logl(sum)) + logl((long double)N * h * sqrtl(2.0L * M_PI)));
    NEAR(out[j], want, 1e-12);
  }
  double nanq = NAN;
  ic_kde_surprisal(ref, N, h, &nanq, 1, out, work);
  ck_assert(isnan(out[0]));
  free(ref), free(q), free(out), free(work);
}
END_TEST

START_TEST(clip_limits) {
  double ref[5] = {-2.8, -2.3, -1.8, -1.3, 8.2}; /* demeaned; sd = 4.1304 */
  double lo, hi;
  ic_clip_limits(ref, 5, 4.0, &lo, &hi); /* 4 sd is beyond both extremes */
  NEAR(lo, -2.8, 1e-15);
  NEAR(hi, 8.2, 1e-15);
  ic_clip_limits(ref, 5, 1.0, &lo, &hi);
  double sd = ic_sd(ref, 5);
  NEAR(sd, 4.1303752856126765, 1e-14);
  NEAR(lo, -2.8, 1e-15);
  NEAR(hi, sd, 1e-14); /* the paper's min(max, k sd) */
  double shifted[5], lo2, hi2; /* not demeaned: the same limits around the mean */
  for (int i = 0; i < 5; i++) shifted[i] = ref[i] + 100.0;
  ic_clip_limits(shifted, 5, 1.0, &lo2, &hi2);
  NEAR(lo2, lo + 100.0, 1e-13);
  NEAR(hi2, hi + 100.0, 1e-13);
  double x[3] = {-5, 0.3, 50};
  ic_clip(x, 3, lo, hi);
  NEAR(x[0], -2.8, 0);
  NEAR(x[1], 0.3, 0);
  NEAR(x[2], sd, 0);
}
END_TEST

START_TEST(gramian_closed_form) {
  double lam[3], V[9], W[9];
  path_nctpy(lam, V);
  ck_assert_int_eq(ic_gramian_sym(3, V, lam, 1.0, W), 0);
  NEAR(W[0], 0.461665727145, 1e-11);
  NEAR(W[4], 0.490999095909, 1e-11);
  NEAR(W[8], 0.461665727145, 1e-11);
  NEAR(W[1], 0.133587382324, 1e-11);
  NEAR(W[2], 0.029333368764, 1e-11);
  NEAR(W[3], W[1], 1e-15);
  NEAR(ic_gramian_weight(0.0, 2.5), 2.5, 0);
  NEAR(ic_gramian_weight(1e-12, 2.0), 2.0 + 4e-12, 1e-15);
}
END_TEST

START_TEST(min_energy_nctpy) {
  double lam[3], V[9], q[9];
  path_nctpy(lam, V);
  ic_quad_min_energy(lam, 3, 1.0, q);
  /* states: e1, e2, (1,1,1) from zero; then e1 -> e3 */
  double X[12] = {1, 0, 0, 0, 1, 0, 1, 1, 1, 1, 0, 0};
  double Y[12], out[4];
  ic_energy_states(3, V, q, X, 3, 0, Y, out);
  NEAR(out[0], 2.351808656125, 1e-11);
  NEAR(out[1], 2.390582026750, 1e-11);
  NEAR(out[2], 4.570098966468, 1e-11);
  double X2[6] = {1, 0, 0, 0, 0, 1};
  ic_energy_states(3, V, q, X2, 2, 1, Y, out);
  NEAR(out[0], 2.351808656125, 1e-11);
  NEAR(out[1], 2.729588837487, 1e-11);
}
END_TEST

/* Units against nctpy (tests/info_content/ref_nctpy_units.py): nctpy's
 * integrate_u(u).sum() for the input of get_control_inputs (dt = 0.001,
 * Simpson over samples) is 1000 x the integral of u^T u that energy: nctpy
 * reports, for minimum-energy (S = 0) and optimal (S = I) control. */
START_TEST(energy_units_vs_nctpy) {
  double lam[3], V[9], q[9], Y[6], out[2];
  path_nctpy(lam, V);
  const double X[3][6] = {{0, 0, 0, 1, 0, 0}, {0, 0, 0, 1, 1, 1}, {1, 0, 0, 0, 0, 1}};
  const double sum_min[3] = {2351.8086561252, 4570.0989664681, 2729.5888374872};
  const double sum_opt[3] = {2366.0198799387, 4622.6472839754, 2757.6535586621};
  for (int S = 0; S <= 1; S++) {
    if (S)
      ic_quad_optimal(lam, 3, 1.0, 1.0, 1.0, q);
    else
      ic_quad_min_energy(lam, 3, 1.0, q);
    for (int k = 0; k < 3; k++) {
      ic_energy_states(3, V, q, X[k], 2, 1, Y, out); /* x0 = first row, xf = second */
      NEAR(1000.0 * out[1], (S ? sum_opt : sum_min)[k], 1e-12);
    }
  }
}
END_TEST

START_TEST(optimal_control) {
  double lam[3], V[9], q[9], Y[6], out[2];
  double X2[6] = {1, 0, 0, 0, 0, 1};
  path_nctpy(lam, V);
  ic_quad_optimal(lam, 3, 1.0, 1.0, 1.0, q);
  ic_energy_states(3, V, q, X2, 2, 1, Y, out);
  NEAR(out[1], 2.757653558662, 1e-11);
  ic_quad_optimal(lam, 3, 1.0, 100.0, 1.0, q);
  ic_energy_states(3, V, q, X2, 2, 1, Y, out);
  NEAR(out[1], 2.729592137627, 1e-11);
  /* S = 0 is minimum-energy control */
  double qm[9];
  ic_quad_optimal(lam, 3, 1.0, 3.0, 0.0, q);
  ic_quad_min_energy(lam, 3, 1.0, qm);
  for (int i = 0; i < 9; i++) NEAR(q[i], qm[i], 1e-12);
  /* short (mu T < 1) and long horizons against 60-digit quadrature (mpmath);
   * the long one once lost every digit of q00 to cosh/sinh cancellation */
  const double cases[4][4] = {{-0.3, 0.8, 1, 1}, {-1.5, 10, 1, 1}, {0.3, 5, 2, 1}, {-1e-9, 0.5, 1e6, 1}};
  const double wantq[4][3] = {{0.98386459345998323, -1.2294982057025905, 1.5838645934599833},
                              {0.025425539619385144, -1.9332308562286582e-07, 3.025425539619385},
                              {0.74536035714334292, -0.072803466036941142, 0.14536035714334289},
                              {1.9999999990000028, -1.9999999999999976, 2.0000000010000027}};
  for (int i = 0; i < 4; i++) {
    double qq[3];
    ic_quad_optimal(&cases[i][0], 1, cases[i][1], cases[i][2], cases[i][3], qq);
    for (int j = 0; j < 3; j++)
      ck_assert_msg(fabs(qq[j] - wantq[i][j]) <= 1e-11 * fabs(wantq[i][j]) + 1e-20, "case %d q%d = %.17g, want %.17g",
                    i, j, qq[j], wantq[i][j]);
  }
  double l0 = 0.0, q0[3], m0[3]; /* the lam = mu = 0 limit */
  ic_quad_optimal(&l0, 1, 2.0, 1.0, 0.0, q0);
  ic_quad_min_energy(&l0, 1, 2.0, m0);
  for (int i = 0; i < 3; i++) NEAR(q0[i], m0[i], 1e-12);
}
END_TEST

START_TEST(weninger_paper) {
  double A[9], w[3], V[9], lam[3], q[9];
  memcpy(A, PATH, sizeof A);
  ck_assert_int_eq(ic_prepare_weninger(3, A), 0);
  NEAR(A[1], 0.25, 1e-15);
  ck_assert_int_eq(ic_eigh(3, A, w, V), 0);
  double s = ic_scale_weninger(w, 3, 0.001);
  ck_assert(s < 0); /* symmetric spectrum: the negative eigenvalue, as eigs(A,1) */
  for (int k = 0; k < 3; k++) lam[k] = w[k] / s - 1.0;
  ic_quad_weninger(lam, 3, 10.0, 1000, q);
  double X[6] = {1, 0, 0, 1, 1, 1}, Y[6], out[2];
  ic_energy_states(3, V, q, X, 2, 0, Y, out);
  NEAR(out[0], 0.0684289984391, 1e-10);
  NEAR(out[1], 0.396075959266, 1e-10);
  /* from x0 = e1 to (1,1,1): closed form 0.39592470040471617 (numpy); the
   * paper's expm simulation gives 0.395924703873 (its own rounding, 1e-8) */
  ic_energy_states(3, V, q, X, 2, 1, Y, out);
  NEAR(out[1], 0.39592470040471617, 1e-10);
  /* gains stay finite and exact over long horizons (mpmath, 50 digits):
   * n = 3 modes, so q11 = gain / (3 * 1001) */
  double lw[3] = {-2.0, -0.7, -0.7}, qw[9];
  ic_quad_weninger(lw, 3, 400.0, 1000, qw);
  NEAR(qw[2], 0.0066758327060771408, 1e-12);
  ic_quad_weninger(lw, 3, 3.0, 1000, qw);
  NEAR(qw[5], 0.15810757477182022, 1e-12);
  double lu = 0.5, qu[3]; /* an unstable mode, e^{2000} */
  ic_quad_min_energy(&lu, 1, 2000.0, qu);
  ck_assert(isfinite(qu[0]) && isfinite(qu[1]) && isfinite(qu[2]));
  NEAR(qu[0], 1.0, 1e-15);
  NEAR(qu[1], 0.0, 1e-15);
  NEAR(qu[2], 0.0, 1e-15);
  /* a non-bipartite graph picks its Perron root */
  double tri[9] = {0, 1, 1, 1, 0, 1, 1, 1, 0};
  ck_assert_int_eq(ic_eigh(3, tri, w, V), 0);
  NEAR(ic_scale_weninger(w, 3, 0.5), 3.0, 1e-14);
  double zero[9] = {0};
  ck_assert_int_eq(ic_prepare_weninger(3, zero), -1);
}
END_TEST

START_TEST(controllability) {
  double lam[3], V[9], out[3], w[3], mu[3];
  path_nctpy(lam, V);
  ic_ave_control_cont(3, V, lam, 1.0, out);
  NEAR(out[0], 0.46166573, 1e-8);
  NEAR(out[1], 0.4909991, 1e-8);
  NEAR(out[2], 0.46166573, 1e-8);
  ck_assert_int_eq(ic_eigh(3, PATH, w, V), 0);
  for (int k = 0; k < 3; k++) mu[k] = w[k] / (1.0 + sqrt(2.0));
  ic_ave_control_disc(3, V, mu, out);
  NEAR(out[0], 1.26120387, 1e-8);
  NEAR(out[1], 1.52240775, 1e-8);
  NEAR(out[2], 1.26120387, 1e-8);
  ic_modal_control(3, V, mu, out);
  NEAR(out[0], 0.82842712, 1e-8);
  NEAR(out[1], 0.65685425, 1e-8);
  NEAR(out[2], 0.82842712, 1e-8);
}
END_TEST

START_TEST(expm_and_vanloan) {
  const double M[9] = {0.1, 2, -1, 0.5, -3, 0.2, 1, 1, 1};
  const double want[9] = {0.5869109400012704, 0.1995311031349355, -1.5186718748010133,
                          0.20561639662644027, 0.15651158059779202, -0.05618332654294045,
                          1.8301391164864258, 1.2764195757123593, 1.8014427536093143};
  double E[9];
  ck_assert_int_eq(ic_expm(3, M, E), 0);
  for (int i = 0; i < 9; i++) NEAR(E[i], want[i], 1e-13);
  double big[4] = {-30, 10, 5, -40}, Eb[4]; /* needs scaling and squaring */
  ck_assert_int_eq(ic_expm(2, big, Eb), 0);
  ck_assert(Eb[0] > 0 && Eb[0] < 1e-10 && Eb[3] > 0);

  /* Van Loan on the symmetric path graph equals the closed form */
  double lam[3], V[9], Wc[9], Wv[9], An[9], I3[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
  path_nctpy(lam, V);
  for (int i = 0; i < 9; i++) An[i] = PATH[i] / (1.0 + sqrt(2.0)) - I3[i];
  ic_gramian_sym(3, V, lam, 1.0, Wc);
  ck_assert_int_eq(ic_gramian_vanloan(3, An, I3, 3, 1.0, Wv, NULL), 0);
  for (int i = 0; i < 9; i++) NEAR(Wv[i], Wc[i], 1e-13);

  /* a directed graph, nctpy normalisation, T = 1.5 (scipy quad_vec) */
  const double A[9] = {0, 1, 0.5, 0.2, 0, 1, 0.3, 0.7, 0};
  double l = ic_spectral_radius(3, A);
  NEAR(l, 1.1689803880111826, 1e-13);
  ck_assert(!ic_is_symmetric(3, A, 1e-12));
  ck_assert(ic_is_symmetric(3, PATH, 1e-12));
  for (int i = 0; i < 9; i++) An[i] = A[i] / (1.0 + l) - I3[i];
  const double wantW[9] = {0.5429076006890629, 0.15577368284740947, 0.1262700853404739,
                           0.15577368284740947, 0.5431185680233458, 0.18172912106489478,
                           0.1262700853404739, 0.18172912106489478, 0.5274964876984456};
  double W[9], eAT[9];
  ck_assert_int_eq(ic_gramian_vanloan(3, An, I3, 3, 1.5, W, eAT), 0);
  for (int i = 0; i < 9; i++) NEAR(W[i], wantW[i], 1e-12);
  double X[6] = {1, -0.5, 0.25, 0.3, 0.9, -1.0}, work[6], out[2];
  ck_assert_int_eq(ic_energy_general(3, W, eAT, X, 2, 1, work, out), 0);
  NEAR(out[0], 3.2183951672186732, 1e-11);
  NEAR(out[1], 5.709172569722098, 1e-11);
  double notpd[4] = {1, 2, 2, 1};
  ck_assert_int_gt(ic_energy_general(2, notpd, I3, X, 1, 0, work, out), 0);
}
END_TEST

/* Relabelling the eigenvector rows equals decomposing the relabelled graph. */
START_TEST(permutation_null) {
  enum { N = 12 };
  double A[N * N], Ap[N * N], w[N], V[N * N], wp[N], Vp[N * N], Vr[N * N];
  unsigned long long s = 3;
  for (int i = 0; i < N; i++)
    for (int j = 0; j <= i; j++)
      A[i * N + j] = A[j * N + i] = i == j ? 0 : (ic_rand_next(&s) >> 11) * 0x1p-53;
  int perm[N];
  ic_rand_perm(N, perm, &s);
  int seen[N] = {0};
  for (int i = 0; i < N; i++) seen[perm[i]]++;
  for (int i = 0; i < N; i++) ck_assert_int_eq(seen[i], 1);
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++) Ap[i * N + j] = A[perm[i] * N + perm[j]];
  ic_eigh(N, A, w, V);
  ic_eigh(N, Ap, wp, Vp);
  ic_permute_rows(N, V, perm, Vr);
  double sc = ic_scale_nctpy(w, N, 1.0), lam[N], q[3 * N], X[2 * N], Y[2 * N], e1[2], e2[2];
  for (int k = 0; k < N; k++) lam[k] = w[k] / sc - 1.0;
  ic_quad_min_energy(lam, N, 1.0, q);
  for (int i = 0; i < 2 * N; i++) X[i] = sin(1.0 + i);
  ic_energy_states(N, Vr, q, X, 2, 1, Y, e1);
  for (int k = 0; k < N; k++) lam[k] = wp[k] / sc - 1.0;
  ic_quad_min_energy(lam, N, 1.0, q);
  ic_energy_states(N, Vp, q, X, 2, 1, Y, e2);
  NEAR(e1[0], e2[0], 1e-10);
  NEAR(e1[1], e2[1], 1e-10);
}
END_TEST

int main(void) {
  Suite *s = suite_create("ic_kernels");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, kde_reference);
  tcase_add_test(tc, kde_window_exact);
  tcase_add_test(tc, clip_limits);
  tcase_add_test(tc, gramian_closed_form);
  tcase_add_test(tc, min_energy_nctpy);
  tcase_add_test(tc, optimal_control);
  tcase_add_test(tc, energy_units_vs_nctpy);
  tcase_add_test(tc, weninger_paper);
  tcase_add_test(tc, controllability);
  tcase_add_test(tc, expm_and_vanloan);
  tcase_add_test(tc, permutation_null);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
