/*
 * ridge.h — ridge encoding-model kernels: plain C over row-major float64
 * arrays, no framework types (see ridge.c for the design).
 *
 * The pieces, in the order the encoding plugin uses them:
 *   ridge_bin_events   word events (onset + features) summed into TR bins
 *   ridge_delay        FIR delays: [T, F] -> [T, D*F], zero or wrap padding
 *   ridge_fold_bounds  contiguous folds with sklearn KFold(shuffle=False) sizes
 *   ridge_col_stats    StandardScaler / RobustScaler statistics per column
 *   ridge_model_*      one SVD of a training design, then per alpha:
 *     ridge_loo_factor   R with ||R y||^2 = leave-one-out SSE (sklearn RidgeCV)
 *     ridge_predict_op   M with yhat_test = M y_train (centered)
 *   ridge_pearson      Pearson r of two strided vectors (0 when undefined)
 *   ridge_encode       the whole cross-validated encoding model
 */
#ifndef MYELIN_RIDGE_H
#define MYELIN_RIDGE_H

#include <stddef.h>

enum { RIDGE_SCALE_NONE = 0, RIDGE_SCALE_ZSCORE = 1, RIDGE_SCALE_ROBUST = 2 };

/* Sums row w of data[W, F] into out[bin, :] with bin = floor(onset[w] / tr)
 * + offset; out is [T, F] and is zeroed first. Returns how many events fell
 * outside [0, T) and were dropped. */
size_t ridge_bin_events(const double *onset, const double *data, size_t W, size_t F, double tr, long offset,
                        size_t T, double *out);

/* out[t, j*F + f] = X[t - delays[j], f]; rows outside [0, T) are 0 (wrap = 0)
 * or taken modulo T (wrap = 1, numpy's np.roll). out is [T, nd*F]. */
void ridge_delay(const double *X, size_t T, size_t F, const int *delays, size_t nd, int wrap, double *out);

/* Fold i of k over n samples: [*start, *stop). The first n % k folds have
 * n / k + 1 samples, the others n / k (sklearn KFold without shuffle). */
void ridge_fold_bounds(size_t n, size_t k, size_t i, size_t *start, size_t *stop);

/* Column statistics of A [n, p] (row stride lda) for method RIDGE_SCALE_*:
 * ZSCORE: mean and population std (near-constant columns get scale 1, as
 * sklearn's StandardScaler); ROBUST: median and q75 - q25 with linear
 * interpolation (scale 1 when ~0, as RobustScaler); NONE: 0 and 1.
 * work needs n doubles (ROBUST only). */
void ridge_col_stats(const double *A, size_t n, size_t p, size_t lda, int method, double *center,
                     double *scale, double *work);

/* Pearson correlation of a[i*sa] and b[i*sb], i < n; 0 when either is
 * constant. Two-pass, float64. */
double ridge_pearson(const double *a, size_t sa, const double *b, size_t sb, size_t n);

/* One training design, decomposed once: Xc = X - mean = U diag(s) V^T.
 * Tall designs (n > p) keep Vt from a thin SVD (dgesdd); wide ones (n <= p,
 * the usual fMRI case) get U and s from the eigendecomposition of the Gram
 * matrix Xc Xc^T (dsyevd, as sklearn's gcv_mode="eigen") and keep Xc
 * instead of Vt, since V = Xc^T U diag(1/s) is never needed explicitly. */
typedef struct ridge_model {
  size_t n, p, r; /* samples, features, rank slots: min(n, p) or n */
  int intercept;  /* X was centered; the intercept is not penalized */
  double *xmean;  /* [p] (zeros without intercept) */
  double *U;      /* [n, r] */
  double *s;      /* [r]; 0 for the null space */
  double *Vt;     /* [r, p] (SVD path) or NULL */
  double *Xc;     /* [n, p] (Gram path) or NULL */
} ridge_model;

/* Decomposes X [n, p] (centered first when intercept). Returns 0, or -1 when
 * out of memory / LAPACK failed (err gets a reason). */
int ridge_model_fit(ridge_model *m, const double *X, size_t n, size_t p, int intercept, char *err,
                    size_t errlen);
void ridge_model_free(ridge_model *m);

/* Upper-triangular R [n, n] (lower part is scratch) such that for any
 * centered target y (centered by its training mean when intercept),
 * ||R y||^2 is the sum of squared leave-one-out errors of ridge(alpha):
 * e = diag(1 / (1 - h)) (I - H) y with H the hat matrix (intercept
 * unpenalized), the quantity sklearn's _RidgeGCV scores. Returns 0 or -1. */
int ridge_loo_factor(const ridge_model *m, double alpha, double *R);

/* Gram path (U is a complete basis, m->r == m->n): the same errors in the
 * eigenbasis. With z = U^T y, r = (I - H) y = U (f z), f = alpha / (s^2 +
 * alpha), so SSE = (f z)^T S (f z) with S = U^T D^-2 U, D = diag(1 - h).
 * Writes the upper Cholesky factor R of S = R^T R [n, n] (lower part is
 * scratch; S is as well conditioned as D^2: no loss of accuracy), f [n] and
 * d = diag(D) [n]; SSE lies between ||f z||^2 / max(d)^2 and
 * ||f z||^2 / min(d)^2. Returns 0 or -1. */
int ridge_loo_chol(const ridge_model *m, double alpha, double *R, double *f, double *d);
/* sse[j] = ||R (f Z[:, j])||^2 for Z [n, nv] (row stride ldz); work [n, nv]. */
void ridge_loo_sse_z(const double *R, const double *f, size_t n, const double *Z, size_t nv, size_t ldz,
                     double *work, double *sse);

/* sse[j] = ||R Y[:, j]||^2 for Y [n, nv] (row stride ldy); work is [n, nv]. */
void ridge_loo_sse(const double *R, size_t n, const double *Y, size_t nv, size_t ldy, double *work,
                   double *sse);

/* P = (Xtest - xmean) V, [nt, r]: computed once per training design.
 * This and the next two return 0, or -1 when out of memory. */
int ridge_test_proj(const ridge_model *m, const double *Xtest, size_t nt, double *P);
/* M [nt, n] with yhat_test = M y_centered (+ training mean of y). */
int ridge_predict_op(const ridge_model *m, const double *P, size_t nt, double alpha, double *M);
/* Primal weights w [p, nv] = V diag(s / (s^2 + alpha)) U^T Y. */
int ridge_weights(const ridge_model *m, double alpha, const double *Y, size_t nv, double *w);

/* Reference: w [p] solving (X^T X + alpha I) w = X^T y by Cholesky (no
 * intercept: pass centered data). Returns 0 or -1. For tests. */
int ridge_closed_form(const double *X, const double *y, size_t n, size_t p, double alpha, double *w);

/* Tall designs (U thin [n, r], n > r): leave-one-out SSE of na alphas for
 * nv centered targets in batched GEMMs. The residual of alpha a is y - U
 * diag(1 - f_a) U^T y = r0 + U (f_a z), with z = U^T y, r0 = y - U z and
 * f_a = alpha / (s^2 + alpha); the alphas' scaled copies of Z sit side by
 * side in one [r, na * c] operand, so U multiplies every alpha of c voxels
 * in one GEMM (c = chunk, at most nv). sse[a * ldsse + j] = sum_i (g[a * n
 * + i] (r0 + U f_a z)_ij)^2 with g = 1 / (1 - h) of alpha a.
 * R0 [n, nv] and Z [r, nv] have row stride nv; f is [na, r], g [na, n];
 * work holds (r + n) * na * chunk doubles. */
void ridge_loo_sse_batch(const double *U, size_t n, size_t r, const double *R0, const double *Z, size_t nv,
                         const double *f, const double *g, size_t na, size_t chunk, double *work, double *sse,
                         size_t ldsse);

/* Measurements of one ridge_encode call (ridge_opts.stats), summed over folds. */
typedef struct ridge_stats {
  double seconds; /* wall time of the per-alpha phase: after each fold's
                     decomposition, the leave-one-out errors of the alphas
                     and the held-out predictions of every voxel block
                     (targets read from Y included) */
  double flops;   /* floating-point operations of the BLAS/LAPACK calls of
                     that phase (2 per multiply-add, n^3/3 per Cholesky);
                     not counted with inner folds (o->inner) */
} ridge_stats;

enum { RIDGE_PATH_AUTO = 0, RIDGE_PATH_DIRECT = 1 };

/* The cross-validated encoding model. */
typedef struct ridge_opts {
  const double *alphas; /* candidate alphas (> 0), tried in this order */
  size_t n_alphas;
  int alpha_per_target; /* 1: one alpha per voxel; 0: one for all */
  int inner;            /* 0: exact leave-one-out; k >= 2: k contiguous inner folds */
  size_t folds;         /* outer contiguous folds, >= 2 */
  int standardize;      /* z-score X on each training fold */
  int scale_y;          /* RIDGE_SCALE_*, fitted on each training fold */
  int intercept;
  size_t block;        /* voxels per block (memory bound) */
  size_t factor_after; /* eigenbasis path: Cholesky-factor an alpha after this
                          many voxel evaluations (0 = 4n/3, the break-even) */
  int path;            /* RIDGE_PATH_AUTO: the eigenbasis path with pruning
                          where it applies (one alpha per voxel, wide or
                          near-square designs); RIDGE_PATH_DIRECT: every
                          alpha of every voxel computed (tall: batched
                          GEMMs; wide: QR factors). For tests and benches. */
  ridge_stats *stats;  /* optional: the per-alpha phase's time and flops
                          are added here */
} ridge_opts;

/*
 * X [T, P] float64 (features after delays), Y [T, V] float32 (row stride
 * ldy). Writes r_folds [folds, V] (Pearson r of each held-out fold) and
 * alpha_idx [folds, V] (index into alphas chosen on each training fold).
 * Returns 0, or -1 with a reason in err.
 */
int ridge_encode(const double *X, size_t T, size_t P, const float *Y, size_t V, size_t ldy,
                 const ridge_opts *o, double *r_folds, int *alpha_idx, char *err, size_t errlen);
/* The same with float64 responses Y [T, V], read in float64 (no rounding to
 * float32: an offset of 1e5 with an SD of 0.02 keeps its signal). */
int ridge_encode_f64(const double *X, size_t T, size_t P, const double *Y, size_t V, size_t ldy,
                     const ridge_opts *o, double *r_folds, int *alpha_idx, char *err, size_t errlen);

#endif
