/*
 * ic_kernels.c — information content and network control kernels.
 *
 * Kernel density surprisal. sklearn's KernelDensity (the paper's tool) sums
 * exp(-(x - x_i)^2 / 2h^2) over the whole reference for every query. Here
 * the reference is sorted once per parcel; a query finds its nearest
 * reference point d0 by binary search, and only points with
 * (x - x_i)^2 <= d0^2 + 2 h^2 IC_KDE_CUT contribute more than exp(-50)
 * relative to the largest term, so they are the only ones summed, with the
 * largest term factored out (no underflow however far a query lies from the
 * data). The exponentials go
 * through a branch-free polynomial exp that GCC vectorises (compiled for
 * AVX2/AVX-512 clones when available); accuracy ~1e-16 relative per term.
 *
 * Network control. For a symmetric connectome A = V diag(w) V^T the
 * normalised system A_norm = A/s - I has the same eigenvectors and
 * eigenvalues lam = w/s - 1, and every quantity of the linear system
 * dx/dt = A_norm x + u decouples into independent scalar modes:
 *   Gramian       W_T = V diag((e^{2 lam T} - 1) / 2 lam) V^T
 *   min energy    sum_k (b_k - e^{lam T} a_k)^2 / g_k
 *   paper mean(u^2): the minimum-energy input of each mode is
 *                 u_k(t) = e^{-lam t} lam / sinh(lam T) (b_k - e^{lam T} a_k),
 *                 and its samples on the grid form a geometric series
 *   optimal control (state penalty s I, weight rho): 2x2 Hamiltonian per
 *                 mode with eigenvalues +-mu, mu^2 = lam^2 + s/rho; x(t) is
 *                 a combination of e^{-mu t} and e^{-mu (T - t)} fixed by
 *                 x(0), x(T), u = x' - lam x, and u^2 integrates in closed
 *                 form (cosh/sinh products for mu T < 1).
 * Each is a quadratic form in the modal coordinates (a, b) of x0 and xf, so
 * the energies of m states are one GEMM (Y = X V) plus O(m n).
 * A non-symmetric A has no such basis: its Gramian comes from Van Loan's
 * block exponential and energies from a Cholesky factor of W.
 */
#include "ic_kernels.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- statistics ---------------------------------------------------------- */
double ic_mean(const double *x, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += x[i];
  return n ? s / (double)n : 0.0;
}

double ic_sd(const double *x, size_t n) {
  if (!n) return 0.0;
  double m = ic_mean(x, n), s = 0;
  for (size_t i = 0; i < n; i++) s += (x[i] - m) * (x[i] - m);
  return sqrt(s / (double)n);
}

double ic_silverman(const double *x, size_t n) {
  return 1.06 * ic_sd(x, n) * pow((double)n, -0.2);
}

void ic_clip_limits(const double *ref, size_t n, double k, double *lo, double *hi) {
  double mn = INFINITY, mx = -INFINITY;
  for (size_t i = 0; i < n; i++) {
    if (ref[i] < mn) mn = ref[i];
    if (ref[i] > mx) mx = ref[i];
  }
  double m = ic_mean(ref, n), sd = ic_sd(ref, n);
  *lo = fmax(mn, m - k * sd);
  *hi = fmin(mx, m + k * sd);
}

void ic_clip(double *x, size_t n, double lo, double hi) {
  for (size_t i = 0; i < n; i++) x[i] = x[i] < lo ? lo : (x[i] > hi ? hi : x[i]);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

void ic_sort(double *x, size_t n) { qsort(x, n, sizeof *x, cmp_double); }

/* ---- kernel density surprisal ---------------------------------------------- */

/* First index with xs[i] >= v (n if none). */
static size_t lower_bound(const double *xs, size_t n, double v) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (xs[mid] < v) lo = mid + 1; else hi = mid;
  }
  return lo;
}

/* First index with xs[i] > v. */
static size_t upper_bound(const double *xs, size_t n, double v) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (xs[mid] <= v) lo = mid + 1; else hi = mid;
  }
  return lo;
}

/* exp(y) for y in [-700, 0] (the caller guarantees the range: window terms
 * are >= -IC_KDE_CUT), branch-free so loops over it vectorise: round
 * y / ln 2 with the 1.5 * 2^52 trick, reduce to |r| <= ln2 / 2 (Cody-Waite),
 * Taylor polynomial to degree 12 (truncation < 2e-16), scale by 2^k through
 * the exponent bits. */
static inline double exp_neg(double y) {
  const double shift = 0x1.8p52, ln2hi = 0x1.62e42fefa3800p-1, ln2lo = 0x1.ef35793c76730p-45;
  double kd = y * 0x1.71547652b82fep0 + shift;
  uint64_t ki;
  memcpy(&ki, &kd, sizeof ki);
  kd -= shift;
  double r = (y - kd * ln2hi) - kd * ln2lo;
  double p = 1.0 / 479001600.0;
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  uint64_t sb = (ki + 1023u) << 52;
  double scale;
  memcpy(&scale, &sb, sizeof scale);
  return p * scale;
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define IC_CLONES __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define IC_CLONES
#endif

/* sum_i exp(base - (x - xs[i])^2 * inv2h2) over xs[0..n): terms into work,
 * then eight independent partial sums (vectorisable without reassociation). */
IC_CLONES
static double window_sum(const double *xs, size_t n, double x, double base, double inv2h2,
                         double *work) {
  for (size_t i = 0; i < n; i++) {
    double d = x - xs[i];
    work[i] = exp_neg(base - d * d * inv2h2);
  }
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; l++) acc[l] += work[i + l];
  double s = 0;
  for (; i < n; i++) s += work[i];
  return s + ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

void ic_kde_surprisal(const double *xs, size_t n, double h, const double *x, size_t m, double *out,
                      double *work) {
  const double inv2h2 = 1.0 / (2.0 * h * h);
  const double lognorm = log((double)n * h * sqrt(2.0 * M_PI));
  const double cut = 2.0 * h * h * IC_KDE_CUT;
  for (size_t j = 0; j < m; j++) {
    double q = x[j];
    if (!isfinite(q) || n == 0) {
      out[j] = NAN;
      continue;
    }
    size_t pos = lower_bound(xs, n, q);
    double d0 = INFINITY;
    if (pos < n) d0 = xs[pos] - q;
    if (pos > 0 && q - xs[pos - 1] < d0) d0 = q - xs[pos - 1];
    double r = sqrt(d0 * d0 + cut);
    size_t lo = lower_bound(xs, n, q - r), hi = upper_bound(xs, n, q + r);
    double base = d0 * d0 * inv2h2;
    double s = window_sum(xs + lo, hi - lo, q, base, inv2h2, work);
    out[j] = lognorm + base - log(s);
  }
}

/* ---- symmetric systems ------------------------------------------------------ */
int ic_is_symmetric(int n, const double *A, double tol) {
  double amax = 0;
  for (int i = 0; i < n * n; i++) amax = fmax(amax, fabs(A[i]));
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n; j++)
      if (fabs(A[i * n + j] - A[j * n + i]) > tol * amax) return 0;
  return 1;
}

int ic_prepare_weninger(int n, double *A) {
  double s = 0;
  for (int i = 0; i < n; i++) {
    A[i * n + i] = 0;
    for (int j = i + 1; j < n; j++) {
      A[j * n + i] = A[i * n + j];
      s += 2 * fabs(A[i * n + j]);
    }
  }
  if (!(s > 0)) return -1;
  for (int i = 0; i < n * n; i++) A[i] /= s;
  return 0;
}

int ic_eigh(int n, const double *A, double *w, double *V) {
  double *a = malloc((size_t)n * n * sizeof *a);
  lapack_int *isuppz = malloc(2 * (size_t)n * sizeof *isuppz);
  if (!a || !isuppz) {
    free(a);
    free(isuppz);
    return -1;
  }
  memcpy(a, A, (size_t)n * n * sizeof *a);
  lapack_int found = 0;
  int info = LAPACKE_dsyevr(LAPACK_ROW_MAJOR, 'V', 'A', 'U', n, a, n, 0, 0, 0, 0, 0.0, &found, w,
                            V, n, isuppz);
  free(a);
  free(isuppz);
  return info;
}

double ic_scale_nctpy(const double *w, int n, double c) {
  return c + fmax(fabs(w[0]), fabs(w[n - 1]));
}

double ic_scale_weninger(const double *w, int n, double c) {
  double lo = w[0], hi = w[n - 1];
  /* A tie within rounding counts as a tie: bipartite spectra are symmetric. */
  double star = (-lo >= hi * (1.0 - 1e-12)) ? lo : hi;
  return star * (1.0 + c);
}

double ic_gramian_weight(double lam, double T) {
  return lam == 0.0 ? T : expm1(2.0 * lam * T) / (2.0 * lam);
}

void ic_quad_min_energy(const double *lam, int n, double T, double *q) {
  for (int k = 0; k < n; k++) {
    double l = lam[k];
    if (l > 0) { /* unstable mode: divide through by e^{2 lam T} first */
      double d = -expm1(-2 * l * T);
      q[3 * k] = 2 * l / d;
      q[3 * k + 1] = -2 * l * exp(-l * T) / d;
      q[3 * k + 2] = 2 * l * exp(-2 * l * T) / d;
      continue;
    }
    double g = ic_gramian_weight(l, T), e = exp(l * T);
    q[3 * k] = e * e / g;
    q[3 * k + 1] = -e / g;
    q[3 * k + 2] = 1.0 / g;
  }
}

/* lam / sinh(lam T), even in lam, 1/T at 0. */
static double lam_over_sinh(double lam, double T) {
  double x = fabs(lam) * T;
  return x < 1e-300 ? 1.0 / T : fabs(lam) / sinh(x);
}

/* (lam / sinh(lam T))^2 sum_{i=0..steps} e^{-2 lam T i / steps}. For lam < 0
 * both factors are formed already divided by e^{2 |lam| T}, so a long horizon
 * neither overflows the sum nor underflows the ratio. */
static double weninger_gain(double l, double T, int steps) {
  double a = -2.0 * l * T / steps;
  if (l < 0) {
    double x = -l * T, d = -expm1(-2 * x);
    return 4 * l * l * -expm1(-a * (steps + 1.0)) / (d * d * -expm1(-a));
  }
  double r = lam_over_sinh(l, T);
  return r * r * (a == 0.0 ? steps + 1.0 : expm1(a * (steps + 1.0)) / expm1(a));
}

void ic_quad_weninger(const double *lam, int n, double T, int steps, double *q) {
  for (int k = 0; k < n; k++) {
    double wt = weninger_gain(lam[k], T, steps) / ((double)n * (steps + 1.0));
    double e = exp(lam[k] * T);
    q[3 * k] = wt * e * e;
    q[3 * k + 1] = -wt * e;
    q[3 * k + 2] = wt;
  }
}

/* (sinh(2x) - 2x) / (4 x^3), by its series where the difference cancels. */
static double sinh_excess(double x) {
  if (x > 0.5) return (sinh(2 * x) - 2 * x) / (4 * x * x * x);
  double s = 0, term = 1.0 / 3.0, x2 = x * x;
  for (int k = 1; k <= 12; k++) { /* term_k = 2^{2k-1} x^{2k-2} / (2k+1)! */
    s += term;
    term *= 4.0 * x2 / ((2.0 * k + 2) * (2.0 * k + 3));
  }
  return s;
}

static double sinhc(double x) { return x < 1e-8 ? 1.0 : sinh(x) / x; }

/* Small mu T: integrate cosh/sinh products directly (no growth to fear). */
static void quad_optimal_short(double l, double T, double rho, double s, double *q) {
  double mu = sqrt(l * l + s / rho), x = mu * T;
  double ch = cosh(x), sh = T * sinhc(x); /* sinh(mu T) / mu */
  double icc = T * (0.5 + 0.5 * sinhc(2 * x));
  double ics = 0.5 * T * T * sinhc(x) * sinhc(x);
  double iss = T * T * T * sinh_excess(x);
  double idd = icc - 2 * l * ics + l * l * iss, isd = ics - l * iss;
  double e11 = ch + l * sh, g = s / rho, f = e11 / sh;
  q[0] = g * g * iss - 2 * g * f * isd + f * f * idd;
  q[1] = (g * isd - f * idd) / sh;
  q[2] = idd / (sh * sh);
}

/* mu T >= 1: x(t) = P e^{-mu t} + Q e^{-mu (T - t)} with x(0) = a, x(T) = b,
 * and u = x' - lam x, in decaying exponentials only (the cosh/sinh form
 * cancels catastrophically once e^{2 mu T} outgrows 1e16). */
static void quad_optimal_long(double l, double T, double rho, double s, double *q) {
  double mu = sqrt(l * l + s / rho), E = exp(-mu * T), den = -expm1(-2 * mu * T);
  double k1 = -(mu + l) / den, k2 = (mu - l) / den;
  double i1 = den / (2 * mu), i12 = T * E;
  q[0] = i1 * (k1 * k1 + k2 * k2 * E * E) - 2 * i12 * k1 * k2 * E;
  q[1] = -i1 * E * (k1 * k1 + k2 * k2) + i12 * k1 * k2 * (1 + E * E);
  q[2] = i1 * (k1 * k1 * E * E + k2 * k2) - 2 * i12 * k1 * k2 * E;
}

void ic_quad_optimal(const double *lam, int n, double T, double rho, double s, double *q) {
  for (int k = 0; k < n; k++) {
    double mu = sqrt(lam[k] * lam[k] + s / rho);
    if (mu * T < 1.0) quad_optimal_short(lam[k], T, rho, s, q + 3 * k);
    else quad_optimal_long(lam[k], T, rho, s, q + 3 * k);
  }
}

void ic_energy_states(int n, const double *V, const double *q, const double *X, size_t m,
                      int x0_prev, double *Y, double *out) {
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, n, n, 1.0, X, n, V, n, 0.0, Y, n);
  for (size_t t = 0; t < m; t++) {
    const double *b = Y + t * (size_t)n;
    double e = 0;
    if (x0_prev && t > 0) {
      const double *a = b - n;
      for (int k = 0; k < n; k++)
        e += q[3 * k] * a[k] * a[k] + 2 * q[3 * k + 1] * a[k] * b[k] + q[3 * k + 2] * b[k] * b[k];
    } else {
      for (int k = 0; k < n; k++) e += q[3 * k + 2] * b[k] * b[k];
    }
    out[t] = e;
  }
}

void ic_permute_rows(int n, const double *V, const int *perm, double *Vp) {
  for (int i = 0; i < n; i++) memcpy(Vp + (size_t)i * n, V + (size_t)perm[i] * n, n * sizeof *V);
}

int ic_gramian_sym(int n, const double *V, const double *lam, double T, double *W) {
  double *VG = malloc((size_t)n * n * sizeof *VG);
  if (!VG) return -1;
  for (int k = 0; k < n; k++) {
    double g = ic_gramian_weight(lam[k], T);
    for (int i = 0; i < n; i++) VG[i * n + k] = V[i * n + k] * g;
  }
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0, VG, n, V, n, 0.0, W, n);
  free(VG);
  return 0;
}

void ic_ave_control_cont(int n, const double *V, const double *lam, double T, double *out) {
  for (int i = 0; i < n; i++) {
    double s = 0;
    for (int k = 0; k < n; k++) s += V[i * n + k] * V[i * n + k] * ic_gramian_weight(lam[k], T);
    out[i] = s;
  }
}

void ic_ave_control_disc(int n, const double *V, const double *mu, double *out) {
  for (int i = 0; i < n; i++) {
    double s = 0;
    for (int k = 0; k < n; k++) s += V[i * n + k] * V[i * n + k] / (1.0 - mu[k] * mu[k]);
    out[i] = s;
  }
}

void ic_modal_control(int n, const double *V, const double *mu, double *out) {
  for (int i = 0; i < n; i++) {
    double s = 0;
    for (int k = 0; k < n; k++) s += V[i * n + k] * V[i * n + k] * (1.0 - mu[k] * mu[k]);
    out[i] = s;
  }
}

/* ---- general systems --------------------------------------------------------- */

double ic_spectral_radius(int n, const double *A) {
  double *a = malloc((size_t)n * n * sizeof *a), *wr = malloc(2 * (size_t)n * sizeof *wr);
  if (!a || !wr) {
    free(a);
    free(wr);
    return -1.0;
  }
  memcpy(a, A, (size_t)n * n * sizeof *a);
  double *wi = wr + n, r = 0;
  int info = LAPACKE_dgeev(LAPACK_ROW_MAJOR, 'N', 'N', n, a, n, wr, wi, NULL, n, NULL, n);
  for (int i = 0; i < n && info == 0; i++) r = fmax(r, hypot(wr[i], wi[i]));
  free(a);
  free(wr);
  return info == 0 ? r : -1.0;
}

/* C = A B for n x n row-major matrices. */
static void mm(int n, const double *A, const double *B, double *C) {
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, A, n, B, n, 0.0, C, n);
}

int ic_expm(int n, const double *A, double *E) {
  static const double b[14] = {64764752532480000.0, 32382376266240000.0, 7771770303897600.0,
                               1187353796428800.0,  129060195264000.0,   10559470521600.0,
                               670442572800.0,      33522128640.0,       1323241920.0,
                               40840800.0,          960960.0,            16380.0,
                               182.0,               1.0};
  const double theta13 = 5.371920351148152;
  size_t nn = (size_t)n * n;
  double *buf = calloc(7 * nn, sizeof *buf);
  lapack_int *ipiv = malloc((size_t)n * sizeof *ipiv);
  if (!buf || !ipiv) {
    free(buf);
    free(ipiv);
    return -1;
  }
  double *a = buf, *a2 = buf + nn, *a4 = buf + 2 * nn, *a6 = buf + 3 * nn, *u = buf + 4 * nn,
         *v = buf + 5 * nn, *t = buf + 6 * nn;
  double norm1 = 0; /* max column sum */
  for (int j = 0; j < n; j++) {
    double c = 0;
    for (int i = 0; i < n; i++) c += fabs(A[i * n + j]);
    norm1 = fmax(norm1, c);
  }
  int sq = norm1 > theta13 ? (int)ceil(log2(norm1 / theta13)) : 0;
  double scale = ldexp(1.0, -sq);
  for (size_t i = 0; i < nn; i++) a[i] = A[i] * scale;
  mm(n, a, a, a2);
  mm(n, a2, a2, a4);
  mm(n, a4, a2, a6);
  /* u = a (a6 (b13 a6 + b11 a4 + b9 a2) + b7 a6 + b5 a4 + b3 a2 + b1 I) */
  for (size_t i = 0; i < nn; i++) t[i] = b[13] * a6[i] + b[11] * a4[i] + b[9] * a2[i];
  mm(n, a6, t, v);
  for (size_t i = 0; i < nn; i++) v[i] += b[7] * a6[i] + b[5] * a4[i] + b[3] * a2[i];
  for (int i = 0; i < n; i++) v[i * n + i] += b[1];
  mm(n, a, v, u);
  /* v = a6 (b12 a6 + b10 a4 + b8 a2) + b6 a6 + b4 a4 + b2 a2 + b0 I */
  for (size_t i = 0; i < nn; i++) t[i] = b[12] * a6[i] + b[10] * a4[i] + b[8] * a2[i];
  mm(n, a6, t, v);
  for (size_t i = 0; i < nn; i++) v[i] += b[6] * a6[i] + b[4] * a4[i] + b[2] * a2[i];
  for (int i = 0; i < n; i++) v[i * n + i] += b[0];
  /* (v - u) E = (v + u) */
  for (size_t i = 0; i < nn; i++) {
    t[i] = v[i] - u[i];
    E[i] = v[i] + u[i];
  }
  int info = LAPACKE_dgesv(LAPACK_ROW_MAJOR, n, n, t, n, ipiv, E, n);
  for (int s = 0; s < sq && info == 0; s++) {
    mm(n, E, E, t);
    memcpy(E, t, nn * sizeof *E);
  }
  free(buf);
  free(ipiv);
  return info;
}

int ic_gramian_vanloan(int n, const double *A, const double *B, int nb, double T, double *W,
                       double *eAT) {
  int n2 = 2 * n;
  size_t nn2 = (size_t)n2 * n2;
  double *M = calloc(2 * nn2, sizeof *M);
  if (!M) return -1;
  double *F = M + nn2;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      M[i * n2 + j] = -A[i * n + j] * T;
      M[(n + i) * n2 + n + j] = A[j * n + i] * T;
      double bb = 0;
      for (int k = 0; k < nb; k++) bb += B[i * nb + k] * B[j * nb + k];
      M[i * n2 + n + j] = bb * T;
    }
  int rc = ic_expm(n2, M, F);
  if (rc == 0) {
    /* F12 = F[0:n, n:2n], F22 = e^{A^T T}; W = F22^T F12. */
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, n, n, 1.0, F + (size_t)n * n2 + n, n2,
                F + n, n2, 0.0, W, n);
    if (eAT)
      for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) eAT[i * n + j] = F[(n + j) * n2 + n + i];
  }
  free(M);
  return rc;
}

int ic_energy_general(int n, double *W, const double *eAT, const double *X, size_t m,
                      int x0_prev, double *work, double *out) {
  int info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', n, W, n);
  if (info != 0) return info;
  memcpy(work, X, m * (size_t)n * sizeof *work);
  /* delta_t = x_t - e^{AT} x_{t-1}: rows 1..m-1 minus X[0..m-2] eAT^T */
  if (x0_prev && m > 1)
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m - 1, n, n, -1.0, X, n, eAT, n, 1.0,
                work + n, n);
  /* Z L^T = Delta */
  cblas_dtrsm(CblasRowMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit, (int)m, n, 1.0, W, n,
              work, n);
  for (size_t t = 0; t < m; t++) {
    double e = 0;
    for (int k = 0; k < n; k++) e += work[t * n + k] * work[t * n + k];
    out[t] = e;
  }
  return 0;
}

/* ---- random permutations ------------------------------------------------- */
unsigned long long ic_rand_next(unsigned long long *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void ic_rand_perm(int n, int *perm, unsigned long long *s) {
  for (int i = 0; i < n; i++) perm[i] = i;
  for (int i = n - 1; i > 0; i--) {
    int j = (int)(ic_rand_next(s) % (uint64_t)(i + 1));
    int t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
}
