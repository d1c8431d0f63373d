/*
 * ridge.c — cross-validated ridge encoding models (sklearn RidgeCV semantics).
 *
 * The model of Caucheteux, Gramfort & King (2021): per outer fold, z-score
 * the delayed features on the training rows, fit RidgeCV(alphas,
 * alpha_per_target=True) on the training rows — the alpha of each voxel
 * chosen by exact leave-one-out error — predict the held-out rows and score
 * each voxel by Pearson r.
 *
 * Design. One decomposition per training fold: Xc = X - mean = U S V^T, by
 * the eigendecomposition of the Gram matrix Xc Xc^T (dsyevd) when the design
 * is wide (n <= p, as sklearn's gcv_mode "eigen"), else a thin SVD
 * (dgesdd). With d = s^2 / (s^2 + alpha) the hat matrix is H = 11^T/n +
 * U diag(d) U^T (the intercept is not penalized), and the leave-one-out
 * errors of a centered target y are e = D^-1 (I - H) y with D = diag(1 - h),
 * h = diag(H) — exactly what sklearn's _RidgeGCV computes as c / diag(G^-1),
 * with a dense n x n product per alpha and voxel (2 n^2 flops), which is
 * the term that dominates when V >> n. Two ways to do less:
 *
 *  - Eigenbasis path (wide designs, one alpha per voxel; select_loo_z).
 *    With z = U^T y (one GEMM per voxel block), (I - H) y = U (f z), f = 1 -
 *    d, so SSE(alpha) = (f z)^T S (f z), S = U^T D^-2 U. S is as well
 *    conditioned as D (the ill-conditioning stays in the diagonal f), so its
 *    Cholesky factor R is accurate and SSE = ||R (f z)||^2 costs n^2 flops.
 *    Most alphas need not be computed at all: a few small GEMMs give, for
 *    every alpha, rigorous bounds on SSE (zsel_bounds). The alpha with the
 *    best midpoint is computed first, others only where their lower bound
 *    does not rule them out (zsel_block). An alpha is evaluated by a
 *    GEMM with D^-1 U until its factorization pays off (zsel_eval).
 *    Held-out predictions reuse z: yhat = Xtest V diag(s / (s^2 + alpha)) z.
 *  - Tall designs (n > p; select_loo_tall): the residual y - U (d z) costs
 *    2 n p < n^2 per voxel and alpha, as in sklearn's svd mode.
 *  - QR path (wide designs with one alpha for all voxels; select_loo). Per
 *    alpha, B = D^-1 (I - H) is reduced once to its QR factor R and ||e||^2
 *    = ||R y||^2 is one triangular multiply. Predictions apply M = Xtest V
 *    diag(s / (s^2 + alpha)) U^T [nt, n] to each group of voxels sharing an
 *    alpha; weights are never formed.
 *
 * Memory is bounded by o->block: the training targets are converted to
 * centered float64 one voxel block at a time (cheap next to the multiply),
 * so nothing of size T x V is ever allocated besides the caller's input;
 * the eigenbasis path also keeps n_alphas factors of n x n (it is not used
 * beyond 1 GiB of them). Every heavy operation is a BLAS-3 call on
 * OpenBLAS's threads (all cores).
 *
 * Ties: alphas are tried in the caller's order and a later alpha replaces
 * the best only when strictly better, as in sklearn (the first wins).
 * Constant voxels give zero error for every alpha (the first alpha is kept),
 * constant predictions give r = 0; neither produces NaN.
 */
#include "ridge.h"

#include <cblas.h>
#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void seterr(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || !errlen) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* malloc of k doubles; never malloc(0), so NULL always means out of memory. */
static double *dalloc(size_t k) { return malloc((k ? k : 1) * sizeof(double)); }

/* ---- features ------------------------------------------------------------ */

size_t ridge_bin_events(const double *onset, const double *data, size_t W, size_t F, double tr, long offset,
                        size_t T, double *out) {
  size_t dropped = 0;
  memset(out, 0, T * F * sizeof *out);
  for (size_t w = 0; w < W; w++) {
    double b = floor(onset[w] / tr) + (double)offset;
    if (!(b >= 0 && b < (double)T)) {
      dropped++;
      continue;
    }
    double *row = out + (size_t)b * F;
    for (size_t f = 0; f < F; f++)
      row[f] += data[w * F + f];
  }
  return dropped;
}

void ridge_delay(const double *X, size_t T, size_t F, const int *delays, size_t nd, int wrap, double *out) {
  size_t P = nd * F;
  for (size_t j = 0; j < nd; j++) {
    long d = delays[j];
    for (size_t t = 0; t < T; t++) {
      long src = (long)t - d;
      double *dst = out + t * P + j * F;
      if (wrap) {
        src %= (long)T;
        if (src < 0) src += (long)T;
      } else if (src < 0 || src >= (long)T) {
        memset(dst, 0, F * sizeof *dst);
        continue;
      }
      memcpy(dst, X + (size_t)src * F, F * sizeof *dst);
    }
  }
}

void ridge_fold_bounds(size_t n, size_t k, size_t i, size_t *start, size_t *stop) {
  size_t base = n / k, extra = n % k;
  *start = i * base + (i < extra ? i : extra);
  *stop = *start + base + (i < extra ? 1 : 0);
}

/* ---- statistics ---------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* numpy.percentile(..., method="linear") of sorted x[n]. */
static double percentile_sorted(const double *x, size_t n, double q) {
  double pos = q * (double)(n - 1);
  size_t lo = (size_t)floor(pos);
  if (lo + 1 >= n) return x[n - 1];
  return x[lo] + (x[lo + 1] - x[lo]) * (pos - (double)lo);
}

static void zscore_stats(const double *A, size_t n, size_t p, size_t lda, double *center, double *scale) {
  for (size_t j = 0; j < p; j++)
    center[j] = scale[j] = 0;
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < p; j++)
      center[j] += A[i * lda + j];
  for (size_t j = 0; j < p; j++)
    center[j] /= (double)n;
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < p; j++) {
      double d = A[i * lda + j] - center[j];
      scale[j] += d * d;
    }
  for (size_t j = 0; j < p; j++) {
    double var = scale[j] / (double)n, m = center[j], nn = (double)n;
    /* sklearn's _is_constant_feature: below the two-pass error bound. */
    double bound = nn * DBL_EPSILON * var + (nn * m * DBL_EPSILON) * (nn * m * DBL_EPSILON);
    scale[j] = var <= bound ? 1.0 : sqrt(var);
  }
}

void ridge_col_stats(const double *A, size_t n, size_t p, size_t lda, int method, double *center,
                     double *scale, double *work) {
  if (method == RIDGE_SCALE_ZSCORE && n > 0) {
    zscore_stats(A, n, p, lda, center, scale);
    return;
  }
  for (size_t j = 0; j < p; j++) {
    center[j] = 0;
    scale[j] = 1;
    if (method != RIDGE_SCALE_ROBUST || n == 0) continue;
    for (size_t i = 0; i < n; i++)
      work[i] = A[i * lda + j];
    qsort(work, n, sizeof *work, cmp_double);
    center[j] = percentile_sorted(work, n, 0.5);
    double iqr = percentile_sorted(work, n, 0.75) - percentile_sorted(work, n, 0.25);
    scale[j] = iqr < 10 * DBL_EPSILON ? 1.0 : iqr;
  }
}

double ridge_pearson(const double *a, size_t sa, const double *b, size_t sb, size_t n) {
  if (n == 0) return 0;
  double ma = 0, mb = 0;
  for (size_t i = 0; i < n; i++) {
    ma += a[i * sa];
    mb += b[i * sb];
  }
  ma /= (double)n;
  mb /= (double)n;
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < n; i++) {
    double x = a[i * sa] - ma, y = b[i * sb] - mb;
    sab += x * y;
    saa += x * x;
    sbb += y * y;
  }
  double den = sqrt(saa) * sqrt(sbb);
  if (!(den > 0) || !isfinite(den)) return 0;
  double r = sab / den;
  return r > 1 ? 1 : (r < -1 ? -1 : r);
}

/* ---- one training design -------------------------------------------------- */

void ridge_model_free(ridge_model *m) {
  free(m->xmean);
  free(m->U);
  free(m->s);
  free(m->Vt);
  free(m->Xc);
  memset(m, 0, sizeof *m);
}

/* Thin SVD of the centered design A [n, p] (destroyed), n > p. */
static int model_svd(ridge_model *m, double *A) {
  size_t n = m->n, p = m->p, r = m->r;
  m->Vt = dalloc(r * p);
  if (!m->Vt) return -1;
  return LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'S', (lapack_int)n, (lapack_int)p, A, (lapack_int)p, m->s, m->U,
                        (lapack_int)r, m->Vt, (lapack_int)p) == 0
             ? 0
             : -2;
}

/* Eigendecomposition of the Gram matrix A A^T (A [n, p] kept as Xc), n <= p.
 * Eigenvalues below n * eps * max are the null space (the intercept's
 * direction among them): s = 0 there. */
static int model_gram(ridge_model *m, double *A) {
  size_t n = m->n, p = m->p;
  m->Xc = A;
  cblas_dsyrk(CblasRowMajor, CblasLower, CblasNoTrans, (int)n, (int)p, 1.0, A, (int)p, 0.0, m->U, (int)n);
  if (LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'L', (lapack_int)n, m->U, (lapack_int)n, m->s) != 0) return -2;
  double top = n ? m->s[n - 1] : 0, tiny = (double)n * DBL_EPSILON * top;
  for (size_t k = 0; k < n; k++)
    m->s[k] = m->s[k] > tiny ? sqrt(m->s[k]) : 0.0;
  return 0;
}

/* gram: eigendecomposition of the Gram matrix (a complete basis U [n, n],
 * s = 0 on the null space) instead of the thin SVD; always for n <= p. */
static int model_fit(ridge_model *m, const double *X, size_t n, size_t p, int intercept, int gram, char *err,
                     size_t errlen) {
  memset(m, 0, sizeof *m);
  gram = gram || n <= p;
  size_t r = gram ? n : p;
  m->n = n, m->p = p, m->r = r, m->intercept = intercept;
  m->xmean = calloc(p ? p : 1, sizeof(double));
  m->U = dalloc(n * r);
  m->s = dalloc(r);
  double *A = calloc(n * p + 1, sizeof(double)); /* calloc: gcc cannot see the loop below fill it */
  if (!m->xmean || !m->U || !m->s || !A) {
    free(A);
    ridge_model_free(m);
    seterr(err, errlen, "out of memory for a %zu x %zu design", n, p);
    return -1;
  }
  if (intercept) {
    for (size_t i = 0; i < n; i++)
      for (size_t j = 0; j < p; j++)
        m->xmean[j] += X[i * p + j];
    for (size_t j = 0; j < p; j++)
      m->xmean[j] /= (double)n;
  }
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < p; j++)
      A[i * p + j] = X[i * p + j] - m->xmean[j];
  int rc = 0;
  if (r) rc = gram ? model_gram(m, A) : model_svd(m, A);
  if (!gram || rc == -1) free(A);
  if (rc != 0) {
    ridge_model_free(m);
    seterr(err, errlen, "%s of the %zu x %zu design failed",
           rc == -1 ? "out of memory: decomposition"
           : gram   ? "eigendecomposition"
                    : "SVD",
           n, p);
    return -1;
  }
  return 0;
}

int ridge_model_fit(ridge_model *m, const double *X, size_t n, size_t p, int intercept, char *err,
                    size_t errlen) {
  return model_fit(m, X, n, p, intercept, 0, err, errlen);
}

int ridge_loo_factor(const ridge_model *m, double alpha, double *R) {
  size_t n = m->n, r = m->r;
  double *Ud = dalloc(n * r);
  double *h = malloc(n * sizeof(double));
  double *tau = malloc(n * sizeof(double));
  if (!Ud || !h || !tau) {
    free(Ud), free(h), free(tau);
    return -1;
  }
  double c = m->intercept ? 1.0 / (double)n : 0.0;
  for (size_t i = 0; i < n; i++) {
    h[i] = c;
    for (size_t k = 0; k < r; k++) {
      double s2 = m->s[k] * m->s[k];
      double u = m->U[i * r + k] * sqrt(s2 / (s2 + alpha));
      Ud[i * r + k] = u;
      h[i] += u * u;
    }
  }
  /* Lower triangle of U diag(d) U^T, mirrored: B = D (I - 11^T/n - U d U^T). */
  if (r)
    cblas_dsyrk(CblasRowMajor, CblasLower, CblasNoTrans, (int)n, (int)r, -1.0, Ud, (int)r, 0.0, R, (int)n);
  else
    memset(R, 0, n * n * sizeof *R);
  for (size_t i = 0; i < n; i++)
    for (size_t j = i + 1; j < n; j++)
      R[i * n + j] = R[j * n + i];
  for (size_t i = 0; i < n; i++) {
    double g = 1.0 - h[i];
    double inv = 1.0 / (g > 1e-12 ? g : 1e-12);
    for (size_t j = 0; j < n; j++)
      R[i * n + j] = (R[i * n + j] - c + (i == j)) * inv;
  }
  lapack_int info = LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, (lapack_int)n, (lapack_int)n, R, (lapack_int)n, tau);
  free(Ud), free(h), free(tau);
  return info == 0 ? 0 : -1;
}

/* h = diag(H) of ridge(alpha): c + sum_k U_ik^2 s_k^2 / (s_k^2 + alpha). */
static void leverage(const ridge_model *m, double alpha, double *h) {
  size_t n = m->n, r = m->r;
  double c = m->intercept ? 1.0 / (double)n : 0.0;
  for (size_t i = 0; i < n; i++) {
    double acc = c;
    for (size_t k = 0; k < r; k++) {
      double s2 = m->s[k] * m->s[k], u = m->U[i * r + k];
      acc += u * u * (s2 / (s2 + alpha));
    }
    h[i] = acc;
  }
}

/* W = D^-1 U [n, n], f and d of alpha (the Gram path's leave-one-out). */
static int loo_prepare(const ridge_model *m, double alpha, double *W, double *f, double *d) {
  size_t n = m->n;
  double *h = dalloc(n);
  if (!h) return -1;
  leverage(m, alpha, h);
  for (size_t i = 0; i < n; i++) {
    d[i] = 1.0 - h[i] > 1e-12 ? 1.0 - h[i] : 1e-12;
    for (size_t k = 0; k < n; k++)
      W[i * n + k] = m->U[i * n + k] / d[i];
  }
  for (size_t k = 0; k < n; k++) {
    double s2 = m->s[k] * m->s[k];
    f[k] = alpha / (s2 + alpha);
  }
  free(h);
  return 0;
}

/* R [n, n] upper with R^T R = W^T W. A row-major upper triangle is LAPACK's
 * column-major lower one, so dpotrf needs no transposition. W and R may be
 * the same buffer; tmp is scratch [n, n]. */
static int loo_factor(const double *W, size_t n, double *tmp, double *R) {
  cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)n, (int)n, 1.0, W, (int)n, 0.0, tmp, (int)n);
  lapack_int info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', (lapack_int)n, tmp, (lapack_int)n);
  memcpy(R, tmp, n * n * sizeof *R);
  return info == 0 ? 0 : -1;
}

int ridge_loo_chol(const ridge_model *m, double alpha, double *R, double *f, double *d) {
  size_t n = m->n;
  if (m->r != n) return -1;
  double *W = dalloc(n * n), *tmp = dalloc(n * n);
  int rc = W && tmp && loo_prepare(m, alpha, W, f, d) == 0 ? loo_factor(W, n, tmp, R) : -1;
  free(W), free(tmp);
  return rc;
}

/* sse[j] = ||R W[:, j]||^2, W [n, nv] overwritten. */
static void tri_sse(const double *R, size_t n, double *W, size_t nv, double *sse) {
  cblas_dtrmm(CblasRowMajor, CblasLeft, CblasUpper, CblasNoTrans, CblasNonUnit, (int)n, (int)nv, 1.0, R,
              (int)n, W, (int)nv);
  for (size_t j = 0; j < nv; j++)
    sse[j] = 0;
  for (size_t k = 0; k < n; k++)
    for (size_t j = 0; j < nv; j++)
      sse[j] += W[k * nv + j] * W[k * nv + j];
}

void ridge_loo_sse_z(const double *R, const double *f, size_t n, const double *Z, size_t nv, size_t ldz,
                     double *work, double *sse) {
  for (size_t k = 0; k < n; k++)
    for (size_t j = 0; j < nv; j++)
      work[k * nv + j] = f[k] * Z[k * ldz + j];
  tri_sse(R, n, work, nv, sse);
}

void ridge_loo_sse(const double *R, size_t n, const double *Y, size_t nv, size_t ldy, double *work,
                   double *sse) {
  if (Y != work)
    for (size_t i = 0; i < n; i++)
      memcpy(work + i * nv, Y + i * ldy, nv * sizeof *work);
  cblas_dtrmm(CblasRowMajor, CblasLeft, CblasUpper, CblasNoTrans, CblasNonUnit, (int)n, (int)nv, 1.0, R,
              (int)n, work, (int)nv);
  for (size_t j = 0; j < nv; j++)
    sse[j] = 0;
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < nv; j++)
      sse[j] += work[i * nv + j] * work[i * nv + j];
}

static double shrink(double s, double alpha) { return s > 0 ? s / (s * s + alpha) : 0.0; }

int ridge_test_proj(const ridge_model *m, const double *Xtest, size_t nt, double *P) {
  size_t n = m->n, p = m->p, r = m->r;
  double *Xc = dalloc(nt * p);
  double *A = m->Xc ? dalloc(nt * n) : NULL;
  if (!Xc || (m->Xc && !A)) {
    free(Xc), free(A);
    return -1;
  }
  for (size_t i = 0; i < nt; i++)
    for (size_t j = 0; j < p; j++)
      Xc[i * p + j] = Xtest[i * p + j] - m->xmean[j];
  if (nt && r && p && m->Vt) {
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nt, (int)r, (int)p, 1.0, Xc, (int)p, m->Vt,
                (int)p, 0.0, P, (int)r);
  } else if (nt && r && p) { /* V = Xc^T U diag(1/s) */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nt, (int)n, (int)p, 1.0, Xc, (int)p, m->Xc,
                (int)p, 0.0, A, (int)n);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nt, (int)r, (int)n, 1.0, A, (int)n, m->U,
                (int)r, 0.0, P, (int)r);
    for (size_t i = 0; i < nt; i++)
      for (size_t k = 0; k < r; k++)
        P[i * r + k] = m->s[k] > 0 ? P[i * r + k] / m->s[k] : 0.0;
  }
  free(Xc), free(A);
  return 0;
}

int ridge_predict_op(const ridge_model *m, const double *P, size_t nt, double alpha, double *M) {
  size_t n = m->n, r = m->r;
  double *Pg = dalloc(nt * r);
  if (!Pg) return -1;
  for (size_t i = 0; i < nt; i++)
    for (size_t k = 0; k < r; k++)
      Pg[i * r + k] = P[i * r + k] * shrink(m->s[k], alpha);
  if (nt && r)
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nt, (int)n, (int)r, 1.0, Pg, (int)r, m->U,
                (int)r, 0.0, M, (int)n);
  else
    memset(M, 0, nt * n * sizeof *M);
  free(Pg);
  return 0;
}

int ridge_weights(const ridge_model *m, double alpha, const double *Y, size_t nv, double *w) {
  size_t n = m->n, r = m->r, p = m->p;
  double *Z = dalloc(r * nv), *Vs = m->Xc ? dalloc(p * r) : NULL;
  if (!Z || (m->Xc && !Vs)) {
    free(Z), free(Vs);
    return -1;
  }
  cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)r, (int)nv, (int)n, 1.0, m->U, (int)r, Y, (int)nv,
              0.0, Z, (int)nv);
  for (size_t k = 0; k < r; k++)
    for (size_t j = 0; j < nv; j++)
      Z[k * nv + j] *= shrink(m->s[k], alpha);
  if (m->Vt) {
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)p, (int)nv, (int)r, 1.0, m->Vt, (int)p, Z,
                (int)nv, 0.0, w, (int)nv);
  } else { /* V = Xc^T U diag(1/s) */
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)p, (int)r, (int)n, 1.0, m->Xc, (int)p, m->U,
                (int)r, 0.0, Vs, (int)r);
    for (size_t j = 0; j < p; j++)
      for (size_t k = 0; k < r; k++)
        Vs[j * r + k] = m->s[k] > 0 ? Vs[j * r + k] / m->s[k] : 0.0;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)p, (int)nv, (int)r, 1.0, Vs, (int)r, Z,
                (int)nv, 0.0, w, (int)nv);
  }
  free(Z), free(Vs);
  return 0;
}

int ridge_closed_form(const double *X, const double *y, size_t n, size_t p, double alpha, double *w) {
  double *A = malloc(p * p * sizeof(double));
  if (!A) return -1;
  cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)p, (int)p, (int)n, 1.0, X, (int)p, X, (int)p, 0.0,
              A, (int)p);
  for (size_t j = 0; j < p; j++)
    A[j * p + j] += alpha;
  cblas_dgemv(CblasRowMajor, CblasTrans, (int)n, (int)p, 1.0, X, (int)p, y, 1, 0.0, w, 1);
  lapack_int info = LAPACKE_dposv(LAPACK_ROW_MAJOR, 'L', (lapack_int)p, 1, A, (lapack_int)p, w, 1);
  free(A);
  return info == 0 ? 0 : -1;
}

/* ---- the cross-validated model ------------------------------------------- */

/* State of one ridge_encode call: inputs, the current fold, scratch. */
typedef struct enc {
  const double *X;
  const float *Y;   /* float32 responses, or */
  const double *Yd; /* float64 responses (exactly one is set) */
  size_t T, P, V, ldy;
  const ridge_opts *o;
  size_t *rows;       /* training rows of the outer fold [n] */
  size_t n, t0, t1;   /* n training rows; test rows [t0, t1) */
  double *Xtr, *Xte;  /* standardized designs [n, P], [nt, P] */
  double *off, *mul;  /* per voxel: y_centered = (y - off) * mul */
  double *xc, *xs;    /* [P] feature center and scale of the fold */
  double *blk, *blk2; /* [max(n, T), block] scratch */
  double *R, *M, *Pt; /* [n, n], [T, n], [T, r] */
  double *best;       /* [V] best score so far */
  double *score;      /* [n_alphas, V] (inner folds) or [n_alphas] */
  int *pick;          /* [V] alpha index of the current fold */
  size_t *idx;        /* [V] voxel indices of one alpha group */
  double flops;       /* of the per-alpha phase (ridge_stats) */
  char *err;
  size_t errlen;
} enc;

/* The [T, T] scratch *p, allocated on first use (only some paths need it). */
static double *scratch_tt(enc *e, double **p) {
  if (!*p) *p = dalloc(e->T * e->T);
  if (!*p) seterr(e->err, e->errlen, "out of memory (%zu x %zu scratch)", e->T, e->T);
  return *p;
}

/* blk[i, j] = (Y[rows[i], vox[j]] - off) * mul, vox = v0 + j or idx[j]. */
static void load_cols(const enc *e, const size_t *rows, size_t n, size_t v0, const size_t *vox, size_t nv,
                      int centered, double *blk) {
  for (size_t i = 0; i < n; i++) {
    double *o = blk + i * nv;
    if (e->Yd) {
      const double *y = e->Yd + rows[i] * e->ldy;
      for (size_t j = 0; j < nv; j++) {
        size_t v = vox ? vox[j] : v0 + j;
        o[j] = centered ? (y[v] - e->off[v]) * e->mul[v] : y[v];
      }
    } else {
      const float *y = e->Y + rows[i] * e->ldy;
      for (size_t j = 0; j < nv; j++) {
        size_t v = vox ? vox[j] : v0 + j;
        o[j] = centered ? ((double)y[v] - e->off[v]) * e->mul[v] : (double)y[v];
      }
    }
  }
}

/* Per-voxel offset/multiplier on the training rows: scale_y, then centering. */
static void fit_y_scaling(enc *e) {
  const ridge_opts *o = e->o;
  size_t B = o->block;
  double *c = e->score, *s = e->score + B; /* score holds >= 2 * block doubles */
  for (size_t v0 = 0; v0 < e->V; v0 += B) {
    size_t nv = e->V - v0 < B ? e->V - v0 : B;
    load_cols(e, e->rows, e->n, v0, NULL, nv, 0, e->blk);
    ridge_col_stats(e->blk, e->n, nv, nv, o->scale_y, c, s, e->blk2);
    for (size_t j = 0; j < nv; j++) {
      double mean = 0;
      if (o->intercept) {
        for (size_t i = 0; i < e->n; i++)
          mean += e->blk[i * nv + j];
        mean /= (double)e->n;
      }
      e->off[v0 + j] = o->intercept ? mean : c[j];
      e->mul[v0 + j] = 1.0 / s[j];
    }
  }
}

static void standardize(enc *e) {
  size_t P = e->P, nt = e->t1 - e->t0;
  for (size_t i = 0; i < e->n; i++)
    memcpy(e->Xtr + i * P, e->X + e->rows[i] * P, P * sizeof(double));
  memcpy(e->Xte, e->X + e->t0 * P, nt * P * sizeof(double));
  if (!e->o->standardize) return;
  double *c = e->xc, *s = e->xs;
  ridge_col_stats(e->Xtr, e->n, P, P, RIDGE_SCALE_ZSCORE, c, s, NULL);
  for (size_t i = 0; i < e->n; i++)
    for (size_t j = 0; j < P; j++)
      e->Xtr[i * P + j] = (e->Xtr[i * P + j] - c[j]) / s[j];
  for (size_t i = 0; i < nt; i++)
    for (size_t j = 0; j < P; j++)
      e->Xte[i * P + j] = (e->Xte[i * P + j] - c[j]) / s[j];
}

/* Records score sc[j] of alpha a for voxels v0.. (lower is better when
 * minimize). Strictly better only: the first alpha wins ties. */
static void keep_best(enc *e, size_t a, size_t v0, size_t nv, const double *sc, int minimize) {
  for (size_t j = 0; j < nv; j++) {
    double x = minimize ? sc[j] : -sc[j];
    if (a == 0 || x < e->best[v0 + j]) {
      e->best[v0 + j] = x;
      e->pick[v0 + j] = (int)a;
    }
  }
}

/* Single alpha for every voxel: the best total (sklearn alpha_per_target=False). */
static void pick_global(enc *e, const double *total, int minimize) {
  size_t ba = 0;
  for (size_t a = 1; a < e->o->n_alphas; a++)
    if (minimize ? total[a] < total[ba] : total[a] > total[ba]) ba = a;
  for (size_t v = 0; v < e->V; v++)
    e->pick[v] = (int)ba;
}

/* Exact leave-one-out selection on the training rows of the fold. */
static int select_loo(enc *e, const ridge_model *m) {
  const ridge_opts *o = e->o;
  double total[64] = {0};
  if (!scratch_tt(e, &e->R)) return -1;
  for (size_t a = 0; a < o->n_alphas; a++) {
    if (ridge_loo_factor(m, o->alphas[a], e->R) != 0) {
      seterr(e->err, e->errlen, "leave-one-out factorization failed (alpha %g)", o->alphas[a]);
      return -1;
    }
    /* dsyrk n^2 r, dgeqrf 4/3 n^3, then n^2 per voxel (dtrmm) */
    double nn = (double)e->n * (double)e->n;
    e->flops += nn * (double)m->r + 4.0 / 3.0 * nn * (double)e->n + nn * (double)e->V;
    for (size_t v0 = 0; v0 < e->V; v0 += o->block) {
      size_t nv = e->V - v0 < o->block ? e->V - v0 : o->block;
      load_cols(e, e->rows, e->n, v0, NULL, nv, 1, e->blk);
      ridge_loo_sse(e->R, e->n, e->blk, nv, nv, e->blk, e->blk2);
      if (o->alpha_per_target)
        keep_best(e, a, v0, nv, e->blk2, 1);
      else
        for (size_t j = 0; j < nv; j++)
          total[a] += e->blk2[j];
    }
  }
  if (!o->alpha_per_target) pick_global(e, total, 1);
  return 0;
}

/* Scratch of the eigenbasis selection. The rows whose 1 - h lies farthest
 * from the median ("outliers", no = n / 32 of them: rows near the run's edges
 * where delayed features are padded, typically) are summed exactly; the
 * bounds use the range of 1 - h over the other rows only, which keeps them
 * tight. */
typedef struct zsel {
  size_t n, na, B, no, factor_after;
  double flops;       /* of the BLAS/LAPACK calls (ridge_stats) */
  double *L, *f, *f2; /* [na, n, n] D^-1 U, or its Cholesky factor R once
                         factored[a]; [na, n] f, f^2 */
  int factored[64], planned, plan[64];
  size_t evals[64];          /* voxels evaluated per alpha so far */
  double *tmp;               /* [n, n] */
  double *UO, *wO;           /* [na, no, n] rows U[o, :] * f, [na, no] 1 / d_o^2 */
  double il[64], ih[64];     /* 1 / dmax^2, 1 / dmin^2 over the other rows */
  double *dl, *h2;           /* [na, n] w_i - wbar (w = 1 / d^2), (1 - f_k)^2 */
  double wbar[64], mdel[64]; /* mid-range of w and max |w_i - wbar| */
  double *A, *Vn;            /* [na, B] sum_i dl_i y_i^2, ||v||^2 */
  double *lo, *sse;          /* [na, B] lower bounds, exact SSE (NAN = not computed) */
  double *out, *RO;          /* [B], [na, no, B] */
  size_t *cols;              /* [B] */
  int *star;                 /* [B] round-1 alpha */
} zsel;

static int cmp_dev(const void *a, const void *b) {
  double x = ((const double *)a)[0], y = ((const double *)b)[0];
  return (x < y) - (x > y); /* descending deviation */
}

/* Splits the rows of alpha a into outliers and bulk (see zsel). pairs is
 * scratch [2 n]. */
static void zsel_split(zsel *z, const ridge_model *m, size_t a, const double *d, double *pairs) {
  size_t n = z->n, no = z->no;
  for (size_t i = 0; i < n; i++)
    pairs[2 * i] = d[i], pairs[2 * i + 1] = 0;
  qsort(pairs, n, 2 * sizeof *pairs, cmp_dev); /* by d, descending */
  double med = pairs[2 * (n / 2)];
  for (size_t i = 0; i < n; i++)
    pairs[2 * i] = fabs(log(d[i] / med)), pairs[2 * i + 1] = (double)i;
  qsort(pairs, n, 2 * sizeof *pairs, cmp_dev);
  const double *f = z->f + a * n;
  double dmin = INFINITY, dmax = 0;
  for (size_t t = 0; t < n; t++) {
    size_t i = (size_t)pairs[2 * t + 1];
    if (t < no) {
      for (size_t k = 0; k < n; k++)
        z->UO[(a * no + t) * n + k] = m->U[i * n + k] * f[k];
      z->wO[a * no + t] = 1.0 / (d[i] * d[i]);
    } else {
      dmin = d[i] < dmin ? d[i] : dmin;
      dmax = d[i] > dmax ? d[i] : dmax;
    }
  }
  z->il[a] = no < n ? 1.0 / (dmax * dmax) : 0;
  z->ih[a] = no < n ? 1.0 / (dmin * dmin) : 0;
}

/* Exact SSE of alpha a for the block's columns listed in z->cols[0..c):
 * ||D^-1 U (f z)||^2 by a GEMM (2 n^2 per voxel) until this alpha has used
 * as many voxels as its Cholesky factorization costs (4n/3), then ||R (f z)||^2
 * by a triangular multiply (n^2 per voxel): rent, then buy — or buy at once
 * when the first block predicts that many evaluations (zsel_plan). work and work2
 * are [n, c]. Returns -1 if the factorization fails. */
static int zsel_eval(zsel *z, size_t a, const double *Z, size_t nv, size_t c, double *work, double *work2) {
  if (!c) return 0;
  size_t n = z->n;
  const double *f = z->f + a * n;
  double *M = z->L + a * n * n;
  for (size_t k = 0; k < n; k++)
    for (size_t t = 0; t < c; t++)
      work[k * c + t] = f[k] * Z[k * nv + z->cols[t]];
  z->evals[a] += c;
  if (!z->factored[a] && (z->plan[a] || z->evals[a] >= z->factor_after)) {
    if (loo_factor(M, n, z->tmp, M) != 0) return -1;
    z->factored[a] = 1;
    z->flops += 4.0 / 3.0 * (double)n * (double)n * (double)n; /* syrk n^3 + potrf n^3/3 */
  }
  if (z->factored[a]) {
    tri_sse(M, n, work, c, z->out);
    z->flops += (double)n * (double)n * (double)c;
  } else {
    z->flops += 2.0 * (double)n * (double)n * (double)c;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)c, (int)n, 1.0, M, (int)n, work,
                (int)c, 0.0, work2, (int)c);
    for (size_t t = 0; t < c; t++)
      z->out[t] = 0;
    for (size_t k = 0; k < n; k++)
      for (size_t t = 0; t < c; t++)
        z->out[t] += work2[k * c + t] * work2[k * c + t];
  }
  for (size_t t = 0; t < c; t++)
    z->sse[a * z->B + z->cols[t]] = z->out[t];
  return 0;
}

/* Lower bounds z->lo [na, B] and midpoints mid [na, B] of every alpha for
 * the block: Y [n, nv] the centered targets (squared in place), Z = U^T Y,
 * sqz scratch [n, nv]. Two rigorous enclosures of SSE = sum_i w_i r_i^2,
 * r = U (f z) = y - v, v = U ((1 - f) z), w = 1 / d^2, intersected:
 *  - leverage range: the rows of most extreme w summed exactly, the others
 *    within ||r_bulk||^2 [min w, max w] (tight for small alphas);
 *  - expansion around y: with w = wbar + dl, SSE = wbar ||r||^2 +
 *    sum dl y^2 - 2 sum dl y v + sum dl v^2, the last two within
 *    max|dl| (2 ||y|| ||v|| + ||v||^2) (tight for large alphas, v small).
 * ||r||^2, ||v||^2 and sum dl y^2 for all alphas are three small GEMMs, the
 * outlier rows a fourth. */
static void zsel_bounds(zsel *z, double *Y, const double *Z, size_t nv, double *sqz, double *mid) {
  size_t n = z->n, no = z->no, na = z->na, B = z->B;
  for (size_t i = 0; i < n * nv; i++)
    sqz[i] = Z[i] * Z[i], Y[i] *= Y[i];
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)na, (int)nv, (int)n, 1.0, z->f2, (int)n, sqz,
              (int)nv, 0.0, z->lo, (int)B);
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)na, (int)nv, (int)n, 1.0, z->h2, (int)n, sqz,
              (int)nv, 0.0, z->Vn, (int)B);
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)na, (int)nv, (int)n, 1.0, z->dl, (int)n, Y,
              (int)nv, 0.0, z->A, (int)B);
  if (no)
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(na * no), (int)nv, (int)n, 1.0, z->UO,
                (int)n, Z, (int)nv, 0.0, z->RO, (int)nv);
  z->flops += 2.0 * (double)nv * (double)n * (double)na * (double)(3 + no);
  double *yy = z->out; /* ||y||^2 = ||z||^2 (U is a complete basis) */
  for (size_t j = 0; j < nv; j++)
    yy[j] = 0;
  for (size_t k = 0; k < n; k++)
    for (size_t j = 0; j < nv; j++)
      yy[j] += sqz[k * nv + j];
  for (size_t a = 0; a < na; a++) {
    double *lo = z->lo + a * B, *md = mid + a * B;
    const double *ro = z->RO + a * no * nv, *w = z->wO + a * no;
    for (size_t j = 0; j < nv; j++) {
      double so = 0, sw = 0, q = lo[j], vv = z->Vn[a * B + j];
      for (size_t t = 0; t < no; t++) {
        double r2 = ro[t * nv + j] * ro[t * nv + j];
        so += r2;
        sw += r2 * w[t];
      }
      double bulk = q - so > 0 ? q - so : 0;
      double l1 = sw + bulk * z->il[a], h1 = sw + bulk * z->ih[a];
      double c = z->wbar[a] * q + z->A[a * B + j];
      double err = z->mdel[a] * (2 * sqrt(yy[j] * vv) + vv);
      double l2 = c - err, h2 = c + err;
      double l = l1 > l2 ? l1 : l2, h = h1 < h2 ? h1 : h2;
      if (h < l) h = l; /* rounding when both are tight */
      lo[j] = l;
      md[j] = 0.5 * (l + h);
    }
  }
}

/* From the first block's bounds, the alphas that will be evaluated for at
 * least factor_after voxels over the whole run get their factorization up
 * front: an alpha is a candidate where its lower bound is below the upper
 * bound of the voxel's round-1 alpha. */
static void zsel_plan(enc *e, zsel *z, size_t nv, const double *mid) {
  size_t na = z->na, B = z->B;
  z->planned = 1;
  for (size_t a = 0; a < na; a++) {
    size_t cnt = 0;
    for (size_t j = 0; j < nv; j++) {
      size_t s = (size_t)z->star[j];
      double hi = 2 * mid[s * B + j] - z->lo[s * B + j];
      cnt += s == a || z->lo[a * B + j] <= hi;
    }
    z->plan[a] = (double)cnt * (double)e->V / (double)nv >= (double)z->factor_after;
  }
}

/* One block: bounds for every alpha, the exact SSE of the most promising
 * alpha, then of every alpha whose lower bound does not exclude it. An alpha
 * is skipped only when its error provably exceeds one already computed by a
 * relative 1e-8, so the choice (ties to the first alpha) is the one a full
 * evaluation would make. Y (the centered targets) is destroyed. */
static int zsel_block(enc *e, zsel *z, double *Y, const double *Z, size_t v0, size_t nv) {
  size_t na = z->na, B = z->B;
  double *best = e->best + v0, *mid = z->sse; /* sse: borrowed until the evaluations */
  zsel_bounds(z, Y, Z, nv, e->blk2 + z->n * nv, mid);
  for (size_t a = 0; a < na; a++)
    for (size_t j = 0; j < nv; j++)
      if (a == 0 || mid[a * B + j] < best[j]) best[j] = mid[a * B + j], z->star[j] = (int)a;
  if (!z->planned) zsel_plan(e, z, nv, mid);
  for (size_t i = 0; i < na * B; i++)
    z->sse[i] = NAN;
  for (size_t a = 0; a < na; a++) { /* round 1 */
    size_t c = 0;
    for (size_t j = 0; j < nv; j++)
      if (z->star[j] == (int)a) z->cols[c++] = j;
    if (zsel_eval(z, a, Z, nv, c, e->blk, e->blk2 + z->n * nv)) return -1;
  }
  for (size_t a = 0; a < na; a++) { /* round 2 */
    size_t c = 0;
    for (size_t j = 0; j < nv; j++)
      if (z->star[j] != (int)a && z->lo[a * B + j] <= z->sse[(size_t)z->star[j] * B + j] * (1 + 1e-8))
        z->cols[c++] = j;
    if (zsel_eval(z, a, Z, nv, c, e->blk, e->blk2 + z->n * nv)) return -1;
  }
  for (size_t j = 0; j < nv; j++) {
    int pick = -1;
    for (size_t a = 0; a < na; a++) {
      double x = z->sse[a * B + j];
      if (!isnan(x) && (pick < 0 || x < z->sse[(size_t)pick * B + j])) pick = (int)a;
    }
    e->pick[v0 + j] = pick;
  }
  return 0;
}

/* Held-out r of the block's voxels from z = U^T y [r, nv]: yhat = P diag(s /
 * (s^2 + alpha)) z with P = Xtest V (e->Pt [nt, r]), one GEMM per alpha
 * picked in the block. cols is scratch [nv]. */
static void score_block_z(enc *e, const ridge_model *m, const double *Z, size_t v0, size_t nv, size_t *cols,
                          double *r) {
  size_t rk = m->r, nt = e->t1 - e->t0;
  double *G = e->blk, *yh = e->blk2 + rk * nv, *yt = yh + nt * nv;
  for (size_t a = 0; a < e->o->n_alphas; a++) {
    size_t c = 0;
    for (size_t j = 0; j < nv; j++)
      if (e->pick[v0 + j] == (int)a) cols[c++] = j;
    if (!c) continue;
    for (size_t k = 0; k < rk; k++) {
      double g = shrink(m->s[k], e->o->alphas[a]);
      for (size_t t = 0; t < c; t++)
        G[k * c + t] = g * Z[k * nv + cols[t]];
    }
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nt, (int)c, (int)rk, 1.0, e->Pt, (int)rk, G,
                (int)c, 0.0, yh, (int)c);
    e->flops += 2.0 * (double)nt * (double)c * (double)rk;
    for (size_t i = 0; i < nt; i++) {
      size_t at = (e->t0 + i) * e->ldy + v0;
      if (e->Yd)
        for (size_t t = 0; t < c; t++)
          yt[i * c + t] = e->Yd[at + cols[t]];
      else
        for (size_t t = 0; t < c; t++)
          yt[i * c + t] = e->Y[at + cols[t]];
    }
    for (size_t t = 0; t < c; t++)
      r[v0 + cols[t]] = ridge_pearson(yt + t, c, yh + t, c, nt);
  }
}

/* Per-alpha vectors of the bounds: f^2, (1 - f)^2 = (s^2 / (s^2 + alpha))^2,
 * w - wbar. */
static void zsel_expansion(zsel *z, const ridge_model *m, double alpha, size_t a, const double *d) {
  size_t n = z->n;
  double wmin = INFINITY, wmax = 0;
  for (size_t i = 0; i < n; i++) {
    double w = 1.0 / (d[i] * d[i]);
    wmin = w < wmin ? w : wmin;
    wmax = w > wmax ? w : wmax;
  }
  z->wbar[a] = 0.5 * (wmin + wmax);
  z->mdel[a] = 0.5 * (wmax - wmin);
  for (size_t i = 0; i < n; i++)
    z->dl[a * n + i] = 1.0 / (d[i] * d[i]) - z->wbar[a];
  for (size_t k = 0; k < n; k++) {
    double f = z->f[a * n + k], s2 = m->s[k] * m->s[k], g = s2 / (s2 + alpha);
    z->f2[a * n + k] = f * f;
    z->h2[a * n + k] = g * g;
  }
}

static void zsel_free(zsel *z) {
  free(z->dl), free(z->h2), free(z->A), free(z->Vn);
  free(z->L), free(z->f), free(z->f2), free(z->UO), free(z->wO), free(z->lo), free(z->sse), free(z->out);
  free(z->RO), free(z->cols), free(z->star), free(z->tmp);
}

/* Exact leave-one-out, one alpha per voxel, in the eigenbasis (Gram path),
 * and the held-out r of each block right after its alphas are known. */
static int select_loo_z(enc *e, const ridge_model *m, double *r) {
  const ridge_opts *o = e->o;
  size_t n = e->n, na = o->n_alphas, B = o->block, no = n / 32;
  zsel z = {.n = n,
            .na = na,
            .B = B,
            .no = no,
            .factor_after = o->factor_after ? o->factor_after : (4 * n + 2) / 3};
  z.L = dalloc(na * n * n), z.f = dalloc(na * n), z.lo = dalloc(na * B), z.sse = dalloc(na * B);
  z.UO = dalloc(na * no * n), z.wO = dalloc(na * no), z.out = dalloc(B);
  z.RO = dalloc(na * no * B), z.f2 = dalloc(na * n), z.tmp = dalloc(n * n);
  z.dl = dalloc(na * n), z.h2 = dalloc(na * n), z.A = dalloc(na * B), z.Vn = dalloc(na * B);
  z.cols = malloc(B * sizeof *z.cols), z.star = malloc(B * sizeof *z.star);
  double *d = dalloc(n), *pairs = dalloc(2 * n);
  int rc = 0;
  if (!z.L || !z.f || !z.lo || !z.sse || !z.UO || !z.wO || !z.out || !z.RO || !z.f2 || !z.tmp || !z.dl ||
      !z.h2 || !z.A || !z.Vn || !z.cols || !z.star || !d || !pairs) {
    seterr(e->err, e->errlen, "out of memory (%zu alphas x %zu^2 factors)", na, n);
    rc = -1;
  }
  for (size_t a = 0; rc == 0 && a < na; a++) {
    if (loo_prepare(m, o->alphas[a], z.L + a * n * n, z.f + a * n, d)) {
      seterr(e->err, e->errlen, "out of memory (leverage)");
      rc = -1;
    } else {
      zsel_split(&z, m, a, d, pairs);
      zsel_expansion(&z, m, o->alphas[a], a, d);
    }
  }
  if (rc == 0 && ridge_test_proj(m, e->Xte, e->t1 - e->t0, e->Pt) != 0) {
    seterr(e->err, e->errlen, "out of memory (predictions)");
    rc = -1;
  }
  e->flops += 2.0 * (double)(e->t1 - e->t0) * (double)n * (double)(m->p + n);
  for (size_t v0 = 0; rc == 0 && v0 < e->V; v0 += B) {
    size_t nv = e->V - v0 < B ? e->V - v0 : B;
    load_cols(e, e->rows, n, v0, NULL, nv, 1, e->blk);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n, (int)nv, (int)n, 1.0, m->U, (int)n, e->blk,
                (int)nv, 0.0, e->blk2, (int)nv);
    e->flops += 2.0 * (double)n * (double)n * (double)nv;
    if (zsel_block(e, &z, e->blk, e->blk2, v0, nv) != 0) {
      seterr(e->err, e->errlen, "leave-one-out factorization failed");
      rc = -1;
      break;
    }
    score_block_z(e, m, e->blk2, v0, nv, z.cols, r);
  }
  e->flops += z.flops;
  zsel_free(&z);
  free(d), free(pairs);
  return rc;
}

void ridge_loo_sse_batch(const double *U, size_t n, size_t r, const double *R0, const double *Z, size_t nv,
                         const double *f, const double *g, size_t na, size_t chunk, double *work, double *sse,
                         size_t ldsse) {
  if (chunk == 0 || chunk > nv) chunk = nv;
  for (size_t a = 0; a < na; a++)
    for (size_t j = 0; j < nv; j++)
      sse[a * ldsse + j] = 0;
  for (size_t j0 = 0; j0 < nv; j0 += chunk) {
    size_t c = nv - j0 < chunk ? nv - j0 : chunk, w = na * c;
    double *G = work, *Q = work + r * w;
    for (size_t k = 0; k < r; k++)
      for (size_t a = 0; a < na; a++) {
        double fk = f[a * r + k];
        for (size_t t = 0; t < c; t++)
          G[k * w + a * c + t] = fk * Z[k * nv + j0 + t];
      }
    if (r)
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)w, (int)r, 1.0, U, (int)r, G,
                  (int)w, 0.0, Q, (int)w);
    else
      memset(Q, 0, n * w * sizeof *Q);
    for (size_t i = 0; i < n; i++) {
      const double *r0 = R0 + i * nv + j0;
      for (size_t a = 0; a < na; a++) {
        const double *q = Q + i * w + a * c;
        double gi = g[a * n + i], *out = sse + a * ldsse + j0;
        for (size_t t = 0; t < c; t++) {
          double x = (r0[t] + q[t]) * gi;
          out[t] += x * x;
        }
      }
    }
  }
}

/* Tall designs (n > p, U thin; select_loo_tall): every alpha of every voxel,
 * as sklearn's svd mode, in batched GEMMs (ridge_loo_sse_batch): per block,
 * z = U^T y and r0 = y - U z (two GEMMs), then U times the alphas' scaled z
 * side by side, 2 n p flops per voxel and alpha. f and 1 / (1 - h) of each
 * alpha are computed once per fold. With one alpha per voxel the block is
 * scored right away from z; with a shared alpha, totals are kept and
 * score_test runs afterwards. r may be NULL then. */
enum { TALL_GEMM_COLS = 2048 }; /* columns of one batched GEMM (na x chunk) */

static int select_loo_tall(enc *e, const ridge_model *m, double *r) {
  const ridge_opts *o = e->o;
  size_t n = e->n, rk = m->r, na = o->n_alphas, B = o->block;
  size_t chunk = TALL_GEMM_COLS / na > B ? B : TALL_GEMM_COLS / na;
  if (!chunk) chunk = 1;
  double total[64] = {0}, *h = dalloc(n), *f = dalloc(na * rk), *g = dalloc(na * n);
  double *sse = dalloc(na * B), *work = dalloc((rk + n) * na * chunk);
  size_t *cols = malloc(B * sizeof *cols);
  int rc = 0;
  if (!h || !f || !g || !sse || !work || !cols || (r && ridge_test_proj(m, e->Xte, e->t1 - e->t0, e->Pt))) {
    seterr(e->err, e->errlen, "out of memory (leave-one-out)");
    rc = -1;
  }
  if (r) e->flops += 2.0 * (double)(e->t1 - e->t0) * (double)m->p * (double)rk;
  for (size_t a = 0; rc == 0 && a < na; a++) {
    leverage(m, o->alphas[a], h);
    for (size_t i = 0; i < n; i++)
      g[a * n + i] = 1.0 - h[i] > 1e-12 ? 1.0 / (1.0 - h[i]) : 1e12;
    for (size_t k = 0; k < rk; k++)
      f[a * rk + k] = o->alphas[a] / (m->s[k] * m->s[k] + o->alphas[a]);
  }
  for (size_t v0 = 0; rc == 0 && v0 < e->V; v0 += B) {
    size_t nv = e->V - v0 < B ? e->V - v0 : B;
    double *R0 = e->blk, *Z = e->blk2;
    load_cols(e, e->rows, n, v0, NULL, nv, 1, R0);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)rk, (int)nv, (int)n, 1.0, m->U, (int)rk, R0,
                (int)nv, 0.0, Z, (int)nv);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)nv, (int)rk, -1.0, m->U, (int)rk, Z,
                (int)nv, 1.0, R0, (int)nv);
    ridge_loo_sse_batch(m->U, n, rk, R0, Z, nv, f, g, na, chunk, work, sse, B);
    e->flops += 2.0 * (double)n * (double)rk * (double)nv * (double)(na + 2);
    for (size_t a = 0; a < na; a++) {
      if (o->alpha_per_target)
        keep_best(e, a, v0, nv, sse + a * B, 1);
      else
        for (size_t j = 0; j < nv; j++)
          total[a] += sse[a * B + j];
    }
    if (o->alpha_per_target) score_block_z(e, m, Z, v0, nv, cols, r);
  }
  if (rc == 0 && !o->alpha_per_target) pick_global(e, total, 1);
  free(h), free(f), free(g), free(sse), free(work), free(cols);
  return rc;
}

/* r2_score of one column with sklearn's force_finite rule. */
static double r2_col(const double *yt, const double *yh, size_t n, size_t ld) {
  double m = 0, sse = 0, sst = 0;
  for (size_t i = 0; i < n; i++)
    m += yt[i * ld];
  m /= (double)n;
  for (size_t i = 0; i < n; i++) {
    double d = yt[i * ld] - yh[i * ld], c = yt[i * ld] - m;
    sse += d * d;
    sst += c * c;
  }
  if (sst == 0) return sse == 0 ? 1.0 : 0.0;
  return 1.0 - sse / sst;
}

/* One inner fold: adds r2 / k of every alpha and voxel into e->score. */
static int inner_fold(enc *e, size_t k, size_t j) {
  const ridge_opts *o = e->o;
  size_t i0, i1, P = e->P, B = o->block;
  ridge_fold_bounds(e->n, k, j, &i0, &i1);
  size_t ni = e->n - (i1 - i0), nt = i1 - i0;
  size_t *rows = malloc(ni * sizeof *rows);
  double *Xi = malloc(ni * P * sizeof *Xi);
  double *mean = malloc(B * sizeof *mean);
  if (!rows || !Xi || !mean) {
    free(rows), free(Xi), free(mean);
    seterr(e->err, e->errlen, "out of memory (inner folds)");
    return -1;
  }
  for (size_t i = 0, q = 0; i < e->n; i++)
    if (i < i0 || i >= i1) {
      rows[q] = e->rows[i];
      memcpy(Xi + q++ * P, e->Xtr + i * P, P * sizeof *Xi);
    }
  ridge_model m;
  int rc = ridge_model_fit(&m, Xi, ni, P, o->intercept, e->err, e->errlen), fitted = rc == 0;
  free(Xi);
  if (rc == 0 && (!scratch_tt(e, &e->M) || ridge_test_proj(&m, e->Xtr + i0 * P, nt, e->Pt) != 0)) rc = -1;
  for (size_t a = 0; rc == 0 && a < o->n_alphas; a++) {
    if (ridge_predict_op(&m, e->Pt, nt, o->alphas[a], e->M) != 0) {
      rc = -1;
      break;
    }
    for (size_t v0 = 0; v0 < e->V; v0 += B) {
      size_t nv = e->V - v0 < B ? e->V - v0 : B;
      load_cols(e, rows, ni, v0, NULL, nv, 0, e->blk);
      for (size_t c = 0; c < nv; c++)
        mean[c] = 0;
      if (o->intercept) {
        for (size_t i = 0; i < ni; i++)
          for (size_t c = 0; c < nv; c++)
            mean[c] += e->blk[i * nv + c];
        for (size_t c = 0; c < nv; c++)
          mean[c] /= (double)ni;
        for (size_t i = 0; i < ni; i++)
          for (size_t c = 0; c < nv; c++)
            e->blk[i * nv + c] -= mean[c];
      }
      double *yh = e->blk2, *yt = e->blk2 + nt * nv;
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nt, (int)nv, (int)ni, 1.0, e->M, (int)ni,
                  e->blk, (int)nv, 0.0, yh, (int)nv);
      load_cols(e, e->rows + i0, nt, v0, NULL, nv, 0, yt);
      for (size_t i = 0; i < nt; i++)
        for (size_t c = 0; c < nv; c++)
          yh[i * nv + c] += mean[c];
      for (size_t c = 0; c < nv; c++)
        e->score[a * e->V + v0 + c] += r2_col(yt + c, yh + c, nt, nv) / (double)k;
    }
  }
  if (fitted) ridge_model_free(&m);
  if (fitted && rc) seterr(e->err, e->errlen, "out of memory (inner folds)");
  free(rows), free(mean);
  return rc;
}

/* k contiguous inner folds, scored by r2 (GridSearchCV's default). */
static int select_inner(enc *e) {
  const ridge_opts *o = e->o;
  size_t k = (size_t)o->inner;
  if (k > e->n) {
    seterr(e->err, e->errlen, "inner: %zu folds but only %zu training samples", k, e->n);
    return -1;
  }
  memset(e->score, 0, o->n_alphas * e->V * sizeof *e->score);
  for (size_t j = 0; j < k; j++)
    if (inner_fold(e, k, j) != 0) return -1;
  if (o->alpha_per_target) {
    for (size_t a = 0; a < o->n_alphas; a++)
      keep_best(e, a, 0, e->V, e->score + a * e->V, 0);
    return 0;
  }
  double total[64] = {0};
  for (size_t a = 0; a < o->n_alphas; a++)
    for (size_t v = 0; v < e->V; v++)
      total[a] += e->score[a * e->V + v];
  pick_global(e, total, 0);
  return 0;
}

/* Held-out Pearson r of every voxel, one alpha group at a time. */
static int score_test(enc *e, const ridge_model *m, double *r) {
  const ridge_opts *o = e->o;
  size_t nt = e->t1 - e->t0, B = o->block;
  size_t *trows = malloc(nt * sizeof *trows);
  if (!trows || !scratch_tt(e, &e->M) || ridge_test_proj(m, e->Xte, nt, e->Pt) != 0) {
    free(trows);
    seterr(e->err, e->errlen, "out of memory (predictions)");
    return -1;
  }
  for (size_t i = 0; i < nt; i++)
    trows[i] = e->t0 + i;
  e->flops += 2.0 * (double)nt * (double)m->p * (double)m->r * (m->Xc ? 2 : 1);
  for (size_t a = 0; a < o->n_alphas; a++) {
    size_t ng = 0;
    for (size_t v = 0; v < e->V; v++)
      if (e->pick[v] == (int)a) e->idx[ng++] = v;
    if (!ng) continue;
    if (ridge_predict_op(m, e->Pt, nt, o->alphas[a], e->M) != 0) {
      free(trows);
      seterr(e->err, e->errlen, "out of memory (predictions)");
      return -1;
    }
    e->flops += 2.0 * (double)nt * (double)e->n * ((double)m->r + (double)ng);
    for (size_t g0 = 0; g0 < ng; g0 += B) {
      size_t nv = ng - g0 < B ? ng - g0 : B;
      double *yh = e->blk2, *yt = e->blk2 + nt * nv;
      load_cols(e, e->rows, e->n, 0, e->idx + g0, nv, 1, e->blk);
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nt, (int)nv, (int)e->n, 1.0, e->M,
                  (int)e->n, e->blk, (int)nv, 0.0, yh, (int)nv);
      load_cols(e, trows, nt, 0, e->idx + g0, nv, 0, yt);
      for (size_t c = 0; c < nv; c++)
        r[e->idx[g0 + c]] = ridge_pearson(yt + c, nv, yh + c, nv, nt);
    }
  }
  free(trows);
  return 0;
}

static int run_fold(enc *e, size_t f, double *r, int *alpha_idx) {
  const ridge_opts *o = e->o;
  ridge_fold_bounds(e->T, o->folds, f, &e->t0, &e->t1);
  e->n = 0;
  for (size_t t = 0; t < e->T; t++)
    if (t < e->t0 || t >= e->t1) e->rows[e->n++] = t;
  standardize(e);
  fit_y_scaling(e);
  /* The eigenbasis path needs a complete basis (the Gram matrix's
   * eigenvectors, also for a tall design) and n_alphas factors of n^2. A
   * tall design takes it when p >= n / 2: then its ~6 n^2 flops per voxel
   * (z, bounds, ~2.6 alphas computed) beat the 2 n p per voxel and alpha of
   * computing every alpha. */
  size_t n = e->n;
  int zpath = o->path == RIDGE_PATH_AUTO && !o->inner && o->alpha_per_target &&
              o->n_alphas * n * n <= ((size_t)1 << 27) && 2 * e->P >= n;
  ridge_model m;
  if (model_fit(&m, e->Xtr, n, e->P, o->intercept, zpath, e->err, e->errlen) != 0) return -1;
  int tall = !o->inner && m.r < m.n, scored = zpath || (tall && o->alpha_per_target);
  struct timespec t0, t1;
  timespec_get(&t0, TIME_UTC);
  e->flops = 0;
  int rc = o->inner ? select_inner(e)
           : zpath  ? select_loo_z(e, &m, r)
           : tall   ? select_loo_tall(e, &m, o->alpha_per_target ? r : NULL)
                    : select_loo(e, &m);
  if (rc == 0) {
    if (!scored) rc = score_test(e, &m, r);
    memcpy(alpha_idx, e->pick, e->V * sizeof *alpha_idx);
  }
  timespec_get(&t1, TIME_UTC);
  if (o->stats) {
    o->stats->seconds += (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    o->stats->flops += e->flops;
  }
  ridge_model_free(&m);
  return rc;
}

static void enc_free(enc *e) {
  free(e->rows), free(e->Xtr), free(e->Xte), free(e->off), free(e->mul), free(e->blk);
  free(e->xc), free(e->xs);
  free(e->blk2), free(e->R), free(e->M), free(e->Pt), free(e->best), free(e->score);
  free(e->pick), free(e->idx);
}

/* Y is float32 (Y) or float64 (Yd): read in its own precision, every sum in
 * float64. */
static int encode_any(const double *X, size_t T, size_t P, const float *Y, const double *Yd, size_t V,
                      size_t ldy, const ridge_opts *o, double *r_folds, int *alpha_idx, char *err,
                      size_t errlen) {
  if (o->folds < 2 || o->folds > T) {
    seterr(err, errlen, "folds: %zu outer folds need at least as many samples (T = %zu)", o->folds, T);
    return -1;
  }
  if (o->n_alphas == 0 || o->n_alphas > 64 || o->block == 0 || P == 0) {
    seterr(err, errlen, "alphas: 1 to 64 values needed, block > 0 and at least one feature");
    return -1;
  }
  enc e = {
      .X = X, .Y = Y, .Yd = Yd, .T = T, .P = P, .V = V, .ldy = ldy, .o = o, .err = err, .errlen = errlen};
  size_t B = o->block, big = T, r = T < P ? T : P;
  size_t nsc = o->inner ? o->n_alphas * V : 0;
  if (nsc < 2 * B) nsc = 2 * B;
  e.rows = malloc(T * sizeof *e.rows);
  e.Xtr = malloc(T * P * sizeof(double));
  e.Xte = malloc((T / o->folds + 1) * P * sizeof(double));
  e.off = malloc((V + 1) * sizeof(double));
  e.mul = malloc((V + 1) * sizeof(double));
  e.xc = malloc(P * sizeof(double));
  e.xs = malloc(P * sizeof(double));
  e.blk = malloc(big * B * sizeof(double));
  e.blk2 = malloc(2 * big * B * sizeof(double));
  size_t npt = T * r > (T / o->folds + 1) * T ? T * r : (T / o->folds + 1) * T;
  e.Pt = malloc((npt + 1) * sizeof(double)); /* [nt, rank]; the rank is n on the eigenbasis path */
  e.best = malloc((V + 1) * sizeof(double));
  e.score = malloc(nsc * sizeof(double));
  e.pick = calloc(V + 1, sizeof(int));
  e.idx = malloc((V + 1) * sizeof(size_t));
  if (!e.rows || !e.Xtr || !e.Xte || !e.off || !e.mul || !e.xc || !e.xs || !e.blk || !e.blk2 || !e.Pt ||
      !e.best || !e.score || !e.pick || !e.idx) {
    enc_free(&e);
    seterr(err, errlen, "out of memory (T = %zu, P = %zu, V = %zu, block = %zu)", T, P, V, B);
    return -1;
  }
  int rc = 0;
  for (size_t f = 0; rc == 0 && f < o->folds; f++)
    rc = run_fold(&e, f, r_folds + f * V, alpha_idx + f * V);
  enc_free(&e);
  return rc;
}

int ridge_encode(const double *X, size_t T, size_t P, const float *Y, size_t V, size_t ldy,
                 const ridge_opts *o, double *r_folds, int *alpha_idx, char *err, size_t errlen) {
  return encode_any(X, T, P, Y, NULL, V, ldy, o, r_folds, alpha_idx, err, errlen);
}

int ridge_encode_f64(const double *X, size_t T, size_t P, const double *Y, size_t V, size_t ldy,
                     const ridge_opts *o, double *r_folds, int *alpha_idx, char *err, size_t errlen) {
  return encode_any(X, T, P, NULL, Y, V, ldy, o, r_folds, alpha_idx, err, errlen);
}
