/*
 * isc_kernels.c — inter-subject correlation, BrainIAK semantics, fast.
 *
 * Leave-one-out (the common case, and the benchmark) is memory-bound: every
 * sample is touched a constant number of times. BrainIAK builds, for each
 * subject, a copy of the other N-1 subjects and averages it (O(S^2 T V) work
 * and a full copy of the data per subject). Here the voxels are cut into small
 * blocks that fit in L2; for one block we
 *   1. sum all subjects into a float64 [T, B] tile and take the means,
 *   2. re-read each subject's block (now in cache) and accumulate the centered
 *      products of x_s and (sum - x_s).
 * Correlation is scale-invariant, so sum - x_s stands for the mean of the
 * others. Two passes over a cached block give the exact two-pass (centered)
 * formula at one-pass memory cost, in float64. Extra memory is O(T B) per
 * thread. Threads (pthreads) take blocks from a shared counter.
 *
 * NaN: a block's voxels whose sums are not finite leave the fast path and are
 * recomputed one by one with BrainIAK's rules (threshold mask, nanmean or
 * mean of the others at each time point, NaN rows for subjects with NaN).
 *
 * Pairwise ISC centers each subject's block once and takes dot products of
 * every pair. ISFC is a matrix product per subject (or pair) of z-scored
 * [T, V] matrices: BLAS dgemm.
 *
 * Statistics follow BrainIAK: bootstrap, sign-flip permutation and the
 * two-sample (group relabeling) permutation test resample the ISC values;
 * the time-shift and phase-randomization nulls never materialize shifted
 * data. A circular shift of x by k turns sum_t x'_t y_t into a lagged dot
 * product; a phase randomization multiplies x's spectrum by
 * e^{i phi_f}, so sum_t x'_t y_t = (1/T) [2 sum_f Re(X_f conj(Y_f) e^{i phi_f})
 * + Nyquist term], from cross-spectra computed once per voxel. Both keep the
 * norm of x, so each resample costs O(T) (or O(T/2)) per subject and voxel.
 * Resampling draws are passed in (shifts, phases, samples, signs), so tests
 * can replay BrainIAK's exact draws (group assignments too); the plugin
 * draws them from isc_rng.
 */
#include "isc_kernels.h"

#include <math.h>
#include <stddef.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>

#ifndef LOO_BLOCK
#define LOO_BLOCK 32
#endif
#define PAIR_BLOCK 16

size_t isc_npairs(size_t S) { return S * (S - 1) / 2; }

size_t isc_pair_index(size_t i, size_t j, size_t S) {
  if (i > j) {
    size_t t = i;
    i = j;
    j = t;
  }
  return i * S - i * (i + 1) / 2 + (j - i - 1);
}

size_t isc_rows(size_t S, int pairwise) {
  if (S == 2) return 1;
  return pairwise ? isc_npairs(S) : S;
}

/* Pearson r from centered sums, clamped to [-1, 1]; NaN for zero variance. */
static double corr_from(double sxy, double sxx, double syy) {
  double den = sqrt(sxx * syy);
  if (!(den > 0)) return NAN;
  double r = sxy / den;
  if (r > 1.0) r = 1.0;
  if (r < -1.0) r = -1.0;
  return r;
}

/* Element i of subject s, as double. */
static inline double ld(const isc_data *d, size_t s, size_t i) {
  return d->f64 ? ((const double *)d->x[s])[i] : (double)((const float *)d->x[s])[i];
}

/* Two-pass Pearson r of two double series. */
static double corr_series(const double *x, const double *y, size_t T) {
  double mx = 0, my = 0;
  for (size_t t = 0; t < T; t++) {
    mx += x[t];
    my += y[t];
  }
  mx /= (double)T;
  my /= (double)T;
  double sxx = 0, syy = 0, sxy = 0;
  for (size_t t = 0; t < T; t++) {
    double a = x[t] - mx, b = y[t] - my;
    sxx += a * a;
    syy += b * b;
    sxy += a * b;
  }
  if (isnan(sxy) || isnan(sxx) || isnan(syy)) return NAN;
  return corr_from(sxy, sxx, syy);
}

/* ---- a tiny parallel-for --------------------------------------------------- */

typedef int (*range_fn)(void *ctx, size_t i0, size_t i1, void *scratch);

typedef struct par_job {
  size_t n, chunk, scratch_bytes;
  atomic_size_t next;
  atomic_int err;
  range_fn fn;
  void *ctx;
} par_job;

static void *par_worker(void *arg) {
  par_job *j = arg;
  void *scratch = j->scratch_bytes ? malloc(j->scratch_bytes) : NULL;
  if (j->scratch_bytes && !scratch) {
    atomic_store(&j->err, ISC_ENOMEM);
    return NULL;
  }
  for (;;) {
    if (atomic_load(&j->err)) break;
    size_t i0 = atomic_fetch_add(&j->next, j->chunk);
    if (i0 >= j->n) break;
    size_t i1 = i0 + j->chunk < j->n ? i0 + j->chunk : j->n;
    int rc = j->fn(j->ctx, i0, i1, scratch);
    if (rc) {
      atomic_store(&j->err, rc);
      break;
    }
  }
  free(scratch);
  return NULL;
}

static int resolve_threads(int nthreads) {
  if (nthreads > 0) return nthreads;
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)(n < 64 ? n : 64) : 1;
}

static int run_parallel(int nthreads, size_t n, size_t chunk, size_t scratch_bytes, range_fn fn, void *ctx) {
  if (n == 0) return 0;
  par_job j = {.n = n, .chunk = chunk ? chunk : 1, .scratch_bytes = scratch_bytes, .fn = fn, .ctx = ctx};
  atomic_init(&j.next, 0);
  atomic_init(&j.err, 0);
  size_t want = resolve_threads(nthreads);
  size_t chunks = (n + j.chunk - 1) / j.chunk;
  if (want > chunks) want = chunks;
  if (want > 64) want = 64;
  pthread_t tid[64];
  size_t started = 0;
  for (size_t i = 1; i < want; i++) {
    if (pthread_create(&tid[started], NULL, par_worker, &j) != 0) break;
    started++;
  }
  par_worker(&j);
  for (size_t i = 0; i < started; i++)
    pthread_join(tid[i], NULL);
  return atomic_load(&j.err);
}

/* ---- NaN rules for one voxel ---------------------------------------------- */

/* Reads voxel v of every subject into g[s*T + t]; returns the number of
 * subjects without NaN and marks them in clean[s]. */
static size_t gather_voxel(const isc_data *d, size_t v, double *g, unsigned char *clean) {
  const size_t S = d->S, T = d->T, V = d->V;
  size_t nclean = 0;
  for (size_t s = 0; s < S; s++) {
    int ok = 1;
    for (size_t t = 0; t < T; t++) {
      double val = ld(d, s, t * V + v);
      g[s * T + t] = val;
      if (isnan(val)) ok = 0;
    }
    clean[s] = (unsigned char)ok;
    nclean += (size_t)ok;
  }
  return nclean;
}

/* BrainIAK's _threshold_nans plus the strict mean: 1 when the whole voxel is
 * NaN in every row. */
static int voxel_masked(size_t nclean, size_t S, isc_nan_policy nan) {
  if (nclean == 0) return 1;
  if (nan.min_fraction >= 0 && (double)nclean < (double)S * nan.min_fraction) return 1;
  if (!nan.tolerate && nclean < S) return 1;
  return 0;
}

/* Row s of the leave-one-out ISC at one voxel whose data contain NaN: the
 * others' nanmean at each time point (y scratch [T]). */
static double loo_row_nan(const double *g, const unsigned char *clean, size_t S, size_t T, size_t s,
                          double *y) {
  if (!clean[s]) return NAN;
  for (size_t t = 0; t < T; t++) {
    double acc = 0;
    size_t cnt = 0;
    for (size_t o = 0; o < S; o++) {
      if (o == s) continue;
      double val = g[o * T + t];
      if (isnan(val)) continue;
      acc += val;
      cnt++;
    }
    y[t] = cnt ? acc / (double)cnt : NAN;
  }
  return corr_series(g + s * T, y, T);
}

/* ---- leave-one-out --------------------------------------------------------- */

typedef struct loo_ctx {
  const isc_data *d;
  size_t S, T, V, rows;
  isc_nan_policy nan;
  double *out;
} loo_ctx;

static size_t loo_scratch_doubles(size_t S, size_t T) {
  return T * LOO_BLOCK + S * LOO_BLOCK + 4 * LOO_BLOCK + S * T + T + S;
}

/* Rows of one voxel from its series g [S, T] (BrainIAK's NaN rules). */
static void loo_voxel_rows(const double *g, const unsigned char *clean, size_t nclean, size_t S, size_t T,
                           size_t rows, isc_nan_policy nan, double *y, double *out, size_t stride) {
  int masked = voxel_masked(nclean, S, nan);
  for (size_t s = 0; s < rows; s++)
    out[s * stride] = masked ? NAN : loo_row_nan(g, clean, S, T, s, y);
}

static void loo_voxel_nan(const loo_ctx *c, size_t v, double *g, double *y, unsigned char *clean) {
  size_t nclean = gather_voxel(c->d, v, g, clean);
  loo_voxel_rows(g, clean, nclean, c->S, c->T, c->rows, c->nan, y, c->out + v, c->V);
}

int isc_loo_voxel(const double *g, size_t S, size_t T, isc_nan_policy nan, double *out, size_t stride) {
  if (!g || !out || S < 2 || T < 2) return ISC_EARG;
  unsigned char *clean = malloc(S);
  double *y = malloc(T * sizeof *y);
  if (!clean || !y) {
    free(clean);
    free(y);
    return ISC_ENOMEM;
  }
  size_t nclean = 0;
  for (size_t s = 0; s < S; s++) {
    int ok = 1;
    for (size_t t = 0; t < T; t++)
      if (isnan(g[s * T + t])) ok = 0;
    clean[s] = (unsigned char)ok;
    nclean += (size_t)ok;
  }
  loo_voxel_rows(g, clean, nclean, S, T, isc_rows(S, 0), nan, y, out, stride);
  free(clean);
  free(y);
  return ISC_OK;
}

/* The two hot loops, for float32 and float64 input. */
#define LOO_SUM_PASS(TYPE)                                                                                   \
  for (size_t s = 0; s < S; s++) {                                                                           \
    double *m = mx + s * nb;                                                                                 \
    memset(m, 0, nb * sizeof *m);                                                                            \
    for (size_t t = 0; t < T; t++) {                                                                         \
      const TYPE *row = (const TYPE *)c->d->x[s] + t * V + v0;                                               \
      double *srow = sum + t * nb;                                                                           \
      for (size_t b = 0; b < nb; b++) {                                                                      \
        double xv = row[b];                                                                                  \
        srow[b] += xv;                                                                                       \
        m[b] += xv;                                                                                          \
      }                                                                                                      \
    }                                                                                                        \
  }
#define LOO_PROD_PASS(TYPE)                                                                                  \
  for (size_t t = 0; t < T; t++) {                                                                           \
    const TYPE *row = (const TYPE *)c->d->x[s] + t * V + v0;                                                 \
    const double *srow = sum + t * nb;                                                                       \
    for (size_t b = 0; b < nb; b++) {                                                                        \
      double xc = (double)row[b] - m[b];                                                                     \
      double yc = srow[b] - xc;                                                                              \
      sxx[b] += xc * xc;                                                                                     \
      syy[b] += yc * yc;                                                                                     \
      sxy[b] += xc * yc;                                                                                     \
    }                                                                                                        \
  }

static int loo_range(void *vctx, size_t v0, size_t v1, void *scratch) {
  const loo_ctx *c = vctx;
  const size_t S = c->S, T = c->T, V = c->V, nb = v1 - v0;
  double *sum = scratch;             /* [T, nb] centered sum of subjects */
  double *mx = sum + T * LOO_BLOCK;  /* [S, nb] subject means */
  double *msum = mx + S * LOO_BLOCK; /* [nb] mean of the sum */
  double *sxx = msum + LOO_BLOCK, *syy = sxx + LOO_BLOCK, *sxy = syy + LOO_BLOCK;
  double *g = sxy + LOO_BLOCK, *y = g + S * T;
  unsigned char *clean = (unsigned char *)(y + T);

  memset(sum, 0, T * nb * sizeof *sum);
  if (c->d->f64) {
    LOO_SUM_PASS(double)
  } else {
    LOO_SUM_PASS(float)
  }
  memset(msum, 0, nb * sizeof *msum);
  for (size_t s = 0; s < S; s++)
    for (size_t b = 0; b < nb; b++)
      msum[b] += mx[s * nb + b];
  const double invT = 1.0 / (double)T;
  for (size_t b = 0; b < nb; b++)
    msum[b] *= invT;
  for (size_t i = 0; i < S * nb; i++)
    mx[i] *= invT;
  for (size_t t = 0; t < T; t++)
    for (size_t b = 0; b < nb; b++)
      sum[t * nb + b] -= msum[b];

  for (size_t s = 0; s < c->rows; s++) {
    const double *m = mx + s * nb;
    memset(sxx, 0, 3 * LOO_BLOCK * sizeof *sxx);
    if (c->d->f64) {
      LOO_PROD_PASS(double)
    } else {
      LOO_PROD_PASS(float)
    }
    for (size_t b = 0; b < nb; b++)
      c->out[s * V + v0 + b] = corr_from(sxy[b], sxx[b], syy[b]);
  }
  for (size_t b = 0; b < nb; b++)
    if (!isfinite(msum[b])) loo_voxel_nan(c, v0 + b, g, y, clean);
  return 0;
}

static int data_ok(const isc_data *d) { return d && d->x && d->S >= 2 && d->T >= 2; }

/* ---- leave-one-out with the subjects spread over ranks ----------------------- */

int isc_loo_sums(const isc_data *d, size_t v0, size_t v1, double *sum, double *colsum) {
  if (!d || (d->S && !d->x) || v0 > v1 || v1 > d->V || !sum || !colsum) return ISC_EARG;
  const size_t T = d->T, V = d->V, W = v1 - v0;
  for (size_t s = 0; s < d->S; s++) {
    for (size_t a = v0; a < v1; a += LOO_BLOCK) {
      const size_t nb = a + LOO_BLOCK < v1 ? LOO_BLOCK : v1 - a;
      double m[LOO_BLOCK] = {0};
      for (size_t t = 0; t < T; t++) {
        double *srow = sum + t * W + (a - v0);
        if (d->f64) {
          const double *row = (const double *)d->x[s] + t * V + a;
          for (size_t b = 0; b < nb; b++)
            srow[b] += row[b], m[b] += row[b];
        } else {
          const float *row = (const float *)d->x[s] + t * V + a;
          for (size_t b = 0; b < nb; b++) {
            double xv = row[b];
            srow[b] += xv;
            m[b] += xv;
          }
        }
      }
      for (size_t b = 0; b < nb; b++)
        colsum[a - v0 + b] += m[b];
    }
  }
  return ISC_OK;
}

typedef struct loo_sum_ctx {
  const isc_data *d;
  const double *sum, *colsum;
  size_t T, V, v0, W, rows;
  double *out;
} loo_sum_ctx;

/* Voxels v0 + [i0, i1) of the slab. */
static int loo_sum_range(void *vctx, size_t i0, size_t i1, void *scratch) {
  const loo_sum_ctx *c = vctx;
  const size_t T = c->T, V = c->V, W = c->W, nb = i1 - i0, v0 = c->v0 + i0;
  double *sum = scratch;              /* [T, nb] centered global sum */
  double *msum = sum + T * LOO_BLOCK; /* [nb] */
  double *m = msum + LOO_BLOCK, *sxx = m + LOO_BLOCK, *syy = sxx + LOO_BLOCK, *sxy = syy + LOO_BLOCK;
  const double invT = 1.0 / (double)T;
  for (size_t b = 0; b < nb; b++)
    msum[b] = c->colsum[i0 + b] * invT;
  for (size_t t = 0; t < T; t++)
    for (size_t b = 0; b < nb; b++)
      sum[t * nb + b] = c->sum[t * W + i0 + b] - msum[b];
  for (size_t s = 0; s < c->rows; s++) {
    memset(m, 0, nb * sizeof *m);
    for (size_t t = 0; t < T; t++) {
      if (c->d->f64) {
        const double *row = (const double *)c->d->x[s] + t * V + v0;
        for (size_t b = 0; b < nb; b++)
          m[b] += row[b];
      } else {
        const float *row = (const float *)c->d->x[s] + t * V + v0;
        for (size_t b = 0; b < nb; b++)
          m[b] += (double)row[b];
      }
    }
    for (size_t b = 0; b < nb; b++)
      m[b] *= invT;
    memset(sxx, 0, 3 * LOO_BLOCK * sizeof *sxx);
    if (c->d->f64) {
      LOO_PROD_PASS(double)
    } else {
      LOO_PROD_PASS(float)
    }
    for (size_t b = 0; b < nb; b++)
      c->out[s * V + v0 + b] = isfinite(msum[b]) ? corr_from(sxy[b], sxx[b], syy[b]) : NAN;
  }
  return 0;
}

int isc_loo_from_sums(const isc_data *d, size_t rows, size_t v0, size_t v1, const double *sum,
                      const double *colsum, int nthreads, double *out) {
  if (!d || (rows && !d->x) || rows > d->S || d->T < 2 || v0 > v1 || v1 > d->V || !sum || !colsum ||
      (rows && !out))
    return ISC_EARG;
  if (rows == 0) return ISC_OK;
  loo_sum_ctx c = {.d = d,
                   .sum = sum,
                   .colsum = colsum,
                   .T = d->T,
                   .V = d->V,
                   .v0 = v0,
                   .W = v1 - v0,
                   .rows = rows,
                   .out = out};
  return run_parallel(nthreads, v1 - v0, LOO_BLOCK, (d->T * LOO_BLOCK + 5 * LOO_BLOCK) * sizeof(double),
                      loo_sum_range, &c);
}

int isc_loo(const isc_data *d, isc_nan_policy nan, int nthreads, double *out) {
  if (!data_ok(d) || !out) return ISC_EARG;
  loo_ctx c = {.d = d, .S = d->S, .T = d->T, .V = d->V, .rows = isc_rows(d->S, 0), .nan = nan, .out = out};
  return run_parallel(nthreads, d->V, LOO_BLOCK, loo_scratch_doubles(d->S, d->T) * sizeof(double), loo_range,
                      &c);
}

/* ---- pairwise -------------------------------------------------------------- */

typedef struct pair_ctx {
  const isc_data *d;
  size_t S, T, V;
  isc_nan_policy nan;
  double *out;
} pair_ctx;

static int pair_range(void *vctx, size_t v0, size_t v1, void *scratch) {
  const pair_ctx *c = vctx;
  const size_t S = c->S, T = c->T, V = c->V, nb = v1 - v0;
  double *z = scratch;                  /* [S, T, nb] centered */
  double *nrm = z + S * T * PAIR_BLOCK; /* [S, nb] sum of squares */
  double *dot = nrm + S * PAIR_BLOCK;   /* [nb] */
  double *g = dot + PAIR_BLOCK;         /* [S, T] */
  unsigned char *clean = (unsigned char *)(g + S * T);

  for (size_t s = 0; s < S; s++) {
    double *zs = z + s * T * nb, *ns = nrm + s * nb;
    memset(ns, 0, nb * sizeof *ns);
    for (size_t t = 0; t < T; t++)
      for (size_t b = 0; b < nb; b++) {
        double xv = ld(c->d, s, t * V + v0 + b);
        zs[t * nb + b] = xv;
        ns[b] += xv;
      }
    for (size_t b = 0; b < nb; b++)
      ns[b] /= (double)T;
    for (size_t t = 0; t < T; t++)
      for (size_t b = 0; b < nb; b++)
        zs[t * nb + b] -= ns[b];
    memset(ns, 0, nb * sizeof *ns);
    for (size_t t = 0; t < T; t++)
      for (size_t b = 0; b < nb; b++)
        ns[b] += zs[t * nb + b] * zs[t * nb + b];
  }
  size_t p = 0;
  for (size_t i = 0; i < S; i++)
    for (size_t j = i + 1; j < S; j++, p++) {
      const double *zi = z + i * T * nb, *zj = z + j * T * nb;
      memset(dot, 0, nb * sizeof *dot);
      for (size_t t = 0; t < T; t++)
        for (size_t b = 0; b < nb; b++)
          dot[b] += zi[t * nb + b] * zj[t * nb + b];
      for (size_t b = 0; b < nb; b++) {
        double r = corr_from(dot[b], nrm[i * nb + b], nrm[j * nb + b]);
        if (isnan(dot[b]) || isnan(nrm[i * nb + b]) || isnan(nrm[j * nb + b])) r = NAN;
        c->out[p * V + v0 + b] = r;
      }
    }
  /* The threshold mask (pairwise ignores tolerate, as BrainIAK). */
  if (c->nan.min_fraction >= 0) {
    isc_nan_policy thr = {.tolerate = 1, .min_fraction = c->nan.min_fraction};
    for (size_t b = 0; b < nb; b++) {
      int any = 0;
      for (size_t s = 0; s < S; s++)
        any |= isnan(nrm[s * nb + b]);
      if (!any) continue;
      size_t nclean = gather_voxel(c->d, v0 + b, g, clean);
      if (voxel_masked(nclean, S, thr))
        for (size_t q = 0; q < isc_npairs(S); q++)
          c->out[q * V + v0 + b] = NAN;
    }
  }
  return 0;
}

int isc_pairwise(const isc_data *d, isc_nan_policy nan, int nthreads, double *out) {
  if (!data_ok(d) || !out) return ISC_EARG;
  const size_t S = d->S, T = d->T, V = d->V;
  pair_ctx c = {.d = d, .S = S, .T = T, .V = V, .nan = nan, .out = out};
  size_t scratch = (S * T * PAIR_BLOCK + S * PAIR_BLOCK + PAIR_BLOCK + S * T + S) * sizeof(double);
  return run_parallel(nthreads, V, PAIR_BLOCK, scratch, pair_range, &c);
}

/* ---- summaries ------------------------------------------------------------- */

/* Quickselect: reorders v so that v[k] is the k-th smallest, everything
 * before it <= and everything after it >=. O(n); no NaN allowed. */
static double select_kth(double *v, size_t n, size_t k) {
  /* Wirth's algorithm, signed indices */
  ptrdiff_t l = 0, m = (ptrdiff_t)n - 1, kk = (ptrdiff_t)k;
  while (l < m) {
    double x = v[kk];
    ptrdiff_t i = l, j = m;
    do {
      while (v[i] < x)
        i++;
      while (x < v[j])
        j--;
      if (i <= j) {
        double t = v[i];
        v[i] = v[j];
        v[j] = t;
        i++;
        j--;
      }
    } while (i <= j);
    if (j < kk) l = i;
    if (kk < i) m = j;
  }
  return v[kk];
}

/* v[k] and v[k + 1] of the sorted order (k + 1 < n). */
static void select_pair(double *v, size_t n, size_t k, double *a, double *b) {
  *a = select_kth(v, n, k);
  double m = v[k + 1];
  for (size_t i = k + 2; i < n; i++)
    if (v[i] < m) m = v[i];
  *b = m;
}

/* Summary of n values (NaN ignored); v may be reordered. */
static double summary_of(double *v, size_t n, isc_summary_kind kind) {
  if (kind == ISC_SUMMARY_MEAN) {
    double acc = 0;
    size_t cnt = 0;
    for (size_t i = 0; i < n; i++) {
      double z = atanh(v[i]);
      if (isnan(z)) continue;
      acc += z;
      cnt++;
    }
    return cnt ? tanh(acc / (double)cnt) : NAN;
  }
  size_t m = 0;
  for (size_t i = 0; i < n; i++)
    if (!isnan(v[i])) v[m++] = v[i];
  if (m == 0) return NAN;
  if (m & 1) return select_kth(v, m, m / 2);
  double a, b;
  select_pair(v, m, m / 2 - 1, &a, &b);
  return 0.5 * (a + b);
}

void isc_summarize(const double *iscs, size_t rows, size_t V, isc_summary_kind kind, double *out) {
  double stackbuf[256];
  double *col = rows <= 256 ? stackbuf : malloc(rows * sizeof *col);
  if (!col) {
    for (size_t v = 0; v < V; v++)
      out[v] = NAN;
    return;
  }
  for (size_t v = 0; v < V; v++) {
    for (size_t r = 0; r < rows; r++)
      col[r] = iscs[r * V + v];
    out[v] = summary_of(col, rows, kind);
  }
  if (col != stackbuf) free(col);
}

/* ---- ISFC ------------------------------------------------------------------ */

/* z[t*V + v] = (a - mean) / norm for one [T, V] matrix (float or double
 * source); columns with NaN or zero variance become 0 and bad[v] = 1. */
static void zscore_cols(const isc_data *dd, size_t s, const double *xd, size_t T, size_t V, double *z,
                        unsigned char *bad) {
  for (size_t v = 0; v < V; v++) {
    double m = 0;
    for (size_t t = 0; t < T; t++)
      m += xd ? xd[t * V + v] : ld(dd, s, t * V + v);
    m /= (double)T;
    double ss = 0;
    for (size_t t = 0; t < T; t++) {
      double d = (xd ? xd[t * V + v] : ld(dd, s, t * V + v)) - m;
      z[t * V + v] = d;
      ss += d * d;
    }
    double nrm = sqrt(ss);
    bad[v] = !(nrm > 0) || isnan(ss);
    for (size_t t = 0; t < T; t++)
      z[t * V + v] = bad[v] ? 0 : z[t * V + v] / nrm;
  }
}

/* Others' mean at each (t, v): nanmean (tolerate) or mean. */
static void others_mean(const isc_data *d, size_t s, int tolerate, double *m) {
  const size_t S = d->S;
  for (size_t i = 0; i < d->T * d->V; i++) {
    double acc = 0;
    size_t cnt = 0;
    for (size_t o = 0; o < S; o++) {
      if (o == s) continue;
      double val = ld(d, o, i);
      if (tolerate && isnan(val)) continue;
      acc += val;
      cnt++;
    }
    m[i] = cnt ? acc / (double)cnt : NAN;
  }
}

/* One symmetrized ISFC value from C[i, j] and C[j, i]: NaN for a bad voxel,
 * clamped to [-1, 1]. */
static double isfc_value(double a, double b, int bad) {
  double r = bad ? NAN : 0.5 * (a + b);
  return r > 1 ? 1 : r < -1 ? -1 : r;
}

/* out = (A^T B + B^T A) / 2 with NaN rows/columns for bad voxels. */
static void isfc_one(const double *za, const double *zb, const unsigned char *bad, size_t T, size_t V,
                     double *out) {
  cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)V, (int)V, (int)T, 1.0, za, (int)V, zb, (int)V,
              0.0, out, (int)V);
  for (size_t i = 0; i < V; i++)
    for (size_t j = i; j < V; j++)
      out[i * V + j] = out[j * V + i] = isfc_value(out[i * V + j], out[j * V + i], bad[i] || bad[j]);
}

int isc_isfc_mask(const isc_data *d, isc_nan_policy nan, unsigned char *masked) {
  if (!data_ok(d) || !masked) return ISC_EARG;
  double *g = malloc(d->S * d->T * sizeof *g + 1);
  unsigned char *clean = malloc(d->S + 1);
  if (!g || !clean) {
    free(g);
    free(clean);
    return ISC_ENOMEM;
  }
  /* BrainIAK threshold_nans: all subjects NaN, or below the threshold
   * fraction. The strict mean is handled by NaN propagation. */
  isc_nan_policy thr = {.tolerate = 1, .min_fraction = nan.min_fraction};
  for (size_t v = 0; v < d->V; v++)
    masked[v] = (unsigned char)voxel_masked(gather_voxel(d, v, g, clean), d->S, thr);
  free(g);
  free(clean);
  return ISC_OK;
}

int isc_isfc_zscore(const isc_data *d, size_t row, int pairwise, isc_nan_policy nan,
                    const unsigned char *masked, double *za, double *zb, double *m, unsigned char *bad) {
  const size_t S = d->S, T = d->T, V = d->V;
  if (!data_ok(d) || !masked || !za || !zb || !bad || row >= isc_rows(S, pairwise) ||
      (!pairwise && S > 2 && !m))
    return ISC_EARG;
  unsigned char *badb = malloc(V + 1);
  if (!badb) return ISC_ENOMEM;
  if (S == 2 || pairwise) {
    size_t i = 0, r = row; /* row -> pair (i, j) in (0,1), (0,2), ... order */
    while (r >= S - 1 - i)
      r -= S - 1 - i++;
    const size_t j = i + 1 + r;
    zscore_cols(d, i, NULL, T, V, za, bad);
    zscore_cols(d, j, NULL, T, V, zb, badb);
  } else {
    zscore_cols(d, row, NULL, T, V, za, bad);
    others_mean(d, row, nan.tolerate, m);
    zscore_cols(d, 0, m, T, V, zb, badb);
  }
  for (size_t v = 0; v < V; v++)
    bad[v] = bad[v] || badb[v] || masked[v];
  free(badb);
  return ISC_OK;
}

int isc_isfc(const isc_data *d, int pairwise, isc_nan_policy nan, double *out) {
  if (!data_ok(d) || !out) return ISC_EARG;
  const size_t S = d->S, T = d->T, V = d->V, rows = isc_rows(S, pairwise);
  double *za = malloc(T * V * sizeof *za), *zb = malloc(T * V * sizeof *zb), *m = malloc(T * V * sizeof *m);
  unsigned char *bad = malloc(V), *masked = malloc(V);
  int rc = za && zb && m && bad && masked ? isc_isfc_mask(d, nan, masked) : ISC_ENOMEM;
  for (size_t r = 0; r < rows && rc == ISC_OK; r++) {
    rc = isc_isfc_zscore(d, r, pairwise, nan, masked, za, zb, m, bad);
    if (rc == ISC_OK) isfc_one(za, zb, bad, T, V, out + r * V * V);
  }
  free(za);
  free(zb);
  free(m);
  free(bad);
  free(masked);
  return rc;
}

void isc_isfc_block(const double *za_i, const double *zb_i, const unsigned char *bad_i, size_t ni,
                    const double *za_j, const double *zb_j, const unsigned char *bad_j, const uint32_t *cols,
                    size_t nj, size_t T, double *scratch, double *out, size_t ld) {
  if (ni == 0 || nj == 0) return;
  double *c1 = scratch, *c2 = scratch + ni * nj;
  /* c1[i, j] = sum_t za_i[t, i] zb_j[t, j]; c2[i, j] = sum_t zb_i[t, i] za_j[t, j] */
  cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)ni, (int)nj, (int)T, 1.0, za_i, (int)ni, zb_j,
              (int)nj, 0.0, c1, (int)nj);
  cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)ni, (int)nj, (int)T, 1.0, zb_i, (int)ni, za_j,
              (int)nj, 0.0, c2, (int)nj);
  for (size_t i = 0; i < ni; i++)
    for (size_t j = 0; j < nj; j++)
      out[i * ld + cols[j]] = isfc_value(c1[i * nj + j], c2[i * nj + j], bad_i[i] || bad_j[j]);
}

/* ---- streaming ------------------------------------------------------------- */

int isc_acc_init(isc_acc *a, size_t V) {
  memset(a, 0, sizeof *a);
  a->V = V;
  a->mx = calloc(5 * (V ? V : 1), sizeof(double));
  if (!a->mx) return ISC_ENOMEM;
  a->my = a->mx + V;
  a->cxx = a->my + V;
  a->cyy = a->cxx + V;
  a->cxy = a->cyy + V;
  return ISC_OK;
}

void isc_acc_free(isc_acc *a) {
  free(a->mx);
  memset(a, 0, sizeof *a);
}

void isc_acc_reset(isc_acc *a) {
  a->n = 0;
  memset(a->mx, 0, 5 * a->V * sizeof(double));
}

void isc_acc_add(isc_acc *a, const double *x, const double *y) {
  a->n++;
  const double inv = 1.0 / (double)a->n;
  for (size_t v = 0; v < a->V; v++) {
    double xv = x[v], yv = y[v];
    double dx = xv - a->mx[v], dy = yv - a->my[v];
    a->mx[v] += dx * inv;
    a->my[v] += dy * inv;
    double ex = xv - a->mx[v], ey = yv - a->my[v];
    a->cxx[v] += dx * ex;
    a->cyy[v] += dy * ey;
    a->cxy[v] += dx * ey;
  }
}

void isc_acc_corr(const isc_acc *a, double *r) {
  for (size_t v = 0; v < a->V; v++) {
    if (a->n < 2 || isnan(a->cxy[v]) || isnan(a->cxx[v]) || isnan(a->cyy[v]))
      r[v] = NAN;
    else
      r[v] = corr_from(a->cxy[v], a->cxx[v], a->cyy[v]);
  }
}

int isc_stream_init(isc_stream *st, size_t S, size_t V, int pairwise) {
  memset(st, 0, sizeof *st);
  if (S < 2) return ISC_EARG;
  st->S = S;
  st->V = V;
  st->pairwise = pairwise && S > 2;
  if (st->pairwise) {
    st->pacc = calloc(isc_npairs(S), sizeof *st->pacc);
    if (!st->pacc) return ISC_ENOMEM;
    for (size_t q = 0; q < isc_npairs(S); q++)
      if (isc_acc_init(&st->pacc[q], V)) {
        isc_stream_free(st);
        return ISC_ENOMEM;
      }
  }
  st->acc = calloc(S, sizeof *st->acc);
  st->sum = malloc((V ? V : 1) * sizeof *st->sum);
  st->y = malloc((V ? V : 1) * sizeof *st->y);
  st->cnt = malloc((V ? V : 1) * sizeof *st->cnt);
  if (!st->acc || !st->sum || !st->y || !st->cnt) {
    isc_stream_free(st);
    return ISC_ENOMEM;
  }
  for (size_t s = 0; s < S; s++)
    if (isc_acc_init(&st->acc[s], V)) {
      isc_stream_free(st);
      return ISC_ENOMEM;
    }
  return ISC_OK;
}

void isc_stream_free(isc_stream *st) {
  if (st->acc)
    for (size_t s = 0; s < st->S; s++)
      isc_acc_free(&st->acc[s]);
  free(st->acc);
  if (st->pacc)
    for (size_t q = 0; q < isc_npairs(st->S); q++)
      isc_acc_free(&st->pacc[q]);
  free(st->pacc);
  free(st->sum);
  free(st->y);
  free(st->cnt);
  memset(st, 0, sizeof *st);
}

void isc_stream_add(isc_stream *st, const double *const *vol) {
  const size_t S = st->S, V = st->V;
  memset(st->sum, 0, V * sizeof *st->sum);
  memset(st->cnt, 0, V * sizeof *st->cnt);
  for (size_t s = 0; s < S; s++)
    for (size_t v = 0; v < V; v++)
      if (!isnan(vol[s][v])) {
        st->sum[v] += vol[s][v];
        st->cnt[v]++;
      }
  size_t rows = isc_rows(S, 0);
  for (size_t s = 0; s < rows; s++) {
    /* The others' nanmean at this TR; a NaN x poisons row s anyway. */
    for (size_t v = 0; v < V; v++) {
      double xv = vol[s][v];
      int self = !isnan(xv);
      double rest = self ? st->sum[v] - xv : st->sum[v];
      uint32_t n = st->cnt[v] - (uint32_t)self;
      st->y[v] = n ? rest / (double)n : NAN;
    }
    isc_acc_add(&st->acc[s], vol[s], st->y);
  }
  /* Rows past the first (S == 2) still need their NaN flags. */
  for (size_t s = rows; s < S; s++)
    isc_acc_add(&st->acc[s], vol[s], st->sum);
  if (st->pairwise)
    for (size_t i = 0, q = 0; i < S; i++)
      for (size_t j = i + 1; j < S; j++, q++)
        isc_acc_add(&st->pacc[q], vol[i], vol[j]);
}

void isc_stream_result(const isc_stream *st, isc_nan_policy nan, double *out) {
  const size_t S = st->S, V = st->V, rows = isc_rows(S, st->pairwise);
  for (size_t r = 0; r < rows; r++)
    isc_acc_corr(st->pairwise ? &st->pacc[r] : &st->acc[r], out + r * V);
  /* pairwise ignores tolerate and applies only the threshold (as batch) */
  isc_nan_policy pol = st->pairwise ? (isc_nan_policy){1, nan.min_fraction} : nan;
  for (size_t v = 0; v < V; v++) {
    size_t nclean = 0;
    for (size_t s = 0; s < S; s++)
      nclean += !isnan(st->acc[s].mx[v]);
    if (voxel_masked(nclean, S, pol))
      for (size_t s = 0; s < rows; s++)
        out[s * V + v] = NAN;
  }
}

/* ---- random numbers -------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void isc_rng_seed(isc_rng *r, uint64_t seed) {
  for (int i = 0; i < 4; i++)
    r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t isc_rng_next(isc_rng *r) {
  uint64_t *s = r->s;
  uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return out;
}

uint32_t isc_rng_below(isc_rng *r, uint32_t n) {
  /* Lemire's multiply-shift with rejection. */
  uint64_t m = (uint64_t)(uint32_t)(isc_rng_next(r) >> 32) * n;
  uint32_t l = (uint32_t)m;
  if (l < n) {
    uint32_t thr = (uint32_t)(-n) % n;
    while (l < thr) {
      m = (uint64_t)(uint32_t)(isc_rng_next(r) >> 32) * n;
      l = (uint32_t)m;
    }
  }
  return (uint32_t)(m >> 32);
}

double isc_rng_unit(isc_rng *r) { return (double)(isc_rng_next(r) >> 11) * 0x1.0p-53; }

/* ---- p-values and percentiles ----------------------------------------------- */

/* 1 when null value d is at least as extreme as obs on this side (NaN: 0). */
static int exceeds(double d, double obs, isc_side side) {
  if (side == ISC_SIDE_TWO) return fabs(d) >= fabs(obs);
  if (side == ISC_SIDE_LEFT) return d <= obs;
  return d >= obs;
}

double isc_p_from_null(double observed, const double *null, size_t n, isc_side side, int exact) {
  if (isnan(observed) || n == 0) return NAN;
  size_t count = 0;
  for (size_t i = 0; i < n; i++)
    count += (size_t)exceeds(null[i], observed, side);
  return exact ? (double)count / (double)n : (double)(count + 1) / (double)(n + 1);
}

double isc_percentile(double *v, size_t n, double q) {
  if (n == 0) return NAN;
  for (size_t i = 0; i < n; i++)
    if (isnan(v[i])) return NAN;
  double pos = q / 100.0 * (double)(n - 1);
  size_t lo = (size_t)floor(pos);
  if (lo >= n - 1) return select_kth(v, n, n - 1);
  double frac = pos - (double)lo, a, b;
  select_pair(v, n, lo, &a, &b);
  return a + (b - a) * frac;
}

/* ---- resampling of ISC values ------------------------------------------------ */

typedef struct resample_ctx {
  const double *iscs;
  size_t S, V, rows, n;
  int pairwise, exact;
  isc_summary_kind kind;
  const uint32_t *samples;
  const int8_t *signs;
  double ci_percent;
  isc_side side;
  double *observed, *ci, *p, *dist;
} resample_ctx;

/* Summary of values already Fisher-transformed for MEAN (z = arctanh r):
 * tanh(nanmean z); MEDIAN takes plain r. */
static double summary_pre(double *v, size_t n, isc_summary_kind kind) {
  if (kind != ISC_SUMMARY_MEAN) return summary_of(v, n, kind);
  double acc = 0;
  size_t cnt = 0;
  for (size_t i = 0; i < n; i++)
    if (!isnan(v[i])) {
      acc += v[i];
      cnt++;
    }
  return cnt ? tanh(acc / (double)cnt) : NAN;
}

/* Summary statistic of one bootstrap or sign-flip draw at one voxel whose
 * rows are col[] (arctanh'ed once per voxel for MEAN: arctanh is odd, so
 * sign flips commute with it). */
static double resample_one(const resample_ctx *c, size_t i, const double *col, double *buf) {
  const size_t S = c->S;
  size_t m = 0;
  if (c->samples) {
    const uint32_t *smp = c->samples + i * S;
    if (!c->pairwise || S == 2) {
      if (S == 2) {
        buf[m++] = smp[0] != smp[1] ? col[0] : NAN;
      } else {
        for (size_t a = 0; a < S; a++)
          buf[m++] = col[smp[a]];
      }
    } else {
      for (size_t a = 0; a < S; a++)
        for (size_t b = a + 1; b < S; b++) {
          size_t ia = smp[a], ib = smp[b];
          if (ia == ib) {
            buf[m++] = NAN; /* same subject twice: censored */
            continue;
          }
          buf[m++] = col[isc_pair_index(ia, ib, S)];
        }
    }
  } else {
    const int8_t *sg = c->signs + i * S;
    if (c->pairwise || S == 2) {
      size_t q = 0;
      for (size_t a = 0; a < S; a++)
        for (size_t b = a + 1; b < S && q < c->rows; b++, q++)
          buf[m++] = col[q] * (double)(sg[a] * sg[b]);
    } else {
      for (size_t a = 0; a < S; a++)
        buf[m++] = col[a] * (double)sg[a];
    }
  }
  return summary_pre(buf, m, c->kind);
}

static int resample_range(void *vctx, size_t v0, size_t v1, void *scratch) {
  const resample_ctx *c = vctx;
  double *null = scratch, *buf = null + c->n, *col = buf + c->S * c->S, *zc = col + c->rows;
  for (size_t v = v0; v < v1; v++) {
    for (size_t r = 0; r < c->rows; r++) {
      double val = c->iscs[r * c->V + v];
      col[r] = val;
      zc[r] = c->kind == ISC_SUMMARY_MEAN ? atanh(val) : val;
    }
    double obs = summary_of(col, c->rows, c->kind);
    c->observed[v] = obs;
    for (size_t i = 0; i < c->n; i++)
      null[i] = resample_one(c, i, zc, buf);
    if (c->dist)
      for (size_t i = 0; i < c->n; i++)
        c->dist[i * c->V + v] = null[i];
    if (c->samples) {
      /* Bootstrap: p from the distribution shifted by the observed value. */
      for (size_t i = 0; i < c->n; i++)
        null[i] -= obs;
      c->p[v] = isc_p_from_null(obs, null, c->n, c->side, 0);
      if (c->ci) {
        for (size_t i = 0; i < c->n; i++)
          null[i] += obs;
        double lo = (100.0 - c->ci_percent) / 2.0;
        c->ci[v] = isc_percentile(null, c->n, lo);
        c->ci[c->V + v] = isc_percentile(null, c->n, c->ci_percent + lo);
      }
    } else {
      c->p[v] = isc_p_from_null(obs, null, c->n, c->side, c->exact);
    }
  }
  return 0;
}

static int resample_run(resample_ctx *c, int nthreads) {
  size_t scratch = (c->n + c->S * c->S + 2 * c->rows + 1) * sizeof(double);
  return run_parallel(nthreads, c->V, 64, scratch, resample_range, c);
}

int isc_bootstrap(const double *iscs, size_t S, size_t V, int pairwise, isc_summary_kind kind,
                  const uint32_t *samples, size_t n, double ci_percent, isc_side side, int nthreads,
                  double *observed, double *ci, double *p, double *dist) {
  /* S == 2: the null is 0 or NaN (isc_kernels.h), so S >= 3 */
  if (!iscs || !samples || !observed || !p || S < 3 || n == 0 || kind == ISC_SUMMARY_NONE) return ISC_EARG;
  for (size_t i = 0; i < n * S; i++)
    if (samples[i] >= S) return ISC_EARG;
  resample_ctx c = {.iscs = iscs,
                    .S = S,
                    .V = V,
                    .rows = isc_rows(S, pairwise),
                    .n = n,
                    .pairwise = pairwise,
                    .kind = kind,
                    .samples = samples,
                    .ci_percent = ci_percent,
                    .side = side,
                    .observed = observed,
                    .ci = ci,
                    .p = p,
                    .dist = dist};
  return resample_run(&c, nthreads);
}

int isc_permutation(const double *iscs, size_t S, size_t V, int pairwise, isc_summary_kind kind,
                    const int8_t *signs, size_t n, int exact, isc_side side, int nthreads, double *observed,
                    double *p, double *dist) {
  if (!iscs || !signs || !observed || !p || S < 2 || n == 0 || kind == ISC_SUMMARY_NONE) return ISC_EARG;
  resample_ctx c = {.iscs = iscs,
                    .S = S,
                    .V = V,
                    .rows = isc_rows(S, pairwise),
                    .n = n,
                    .pairwise = pairwise,
                    .exact = exact,
                    .kind = kind,
                    .signs = signs,
                    .side = side,
                    .observed = observed,
                    .p = p,
                    .dist = dist};
  return resample_run(&c, nthreads);
}

int8_t *isc_all_sign_flips(size_t S) {
  if (S == 0 || S > 24) return NULL;
  size_t n = (size_t)1 << S;
  int8_t *f = malloc(n * S);
  if (!f) return NULL;
  for (size_t i = 0; i < n; i++)
    for (size_t s = 0; s < S; s++)
      f[i * S + s] = ((i >> (S - 1 - s)) & 1) ? 1 : -1;
  return f;
}

/* ---- two-sample (group) permutation test --------------------------------------
 *
 * BrainIAK's permutation_isc with a two-group group_assignment. The statistic
 * is summary(group A rows) - summary(group B rows); a leave-one-out row is its
 * subject's, a pairwise row (i, j) is A's when both subjects are in A, B's
 * when both are in B, and left out when it straddles the groups. The null
 * relabels subjects (a permutation of the assignment) and recomputes the
 * rows' membership. Which rows enter each group depends only on the
 * assignment, not on the voxel, so a block of voxels shares one row list per
 * resample. Rows are always taken in ascending order, and the observed value
 * goes through the same code as the null, so a resample that selects the
 * same rows gives the same bits (BrainIAK counts the identity in an exact
 * test; so must we). Counts are kept per voxel: no null is stored unless
 * `dist` is asked for. */

typedef struct group_ctx {
  const double *iscs;
  size_t S, V, rows, n, nb;
  int pairwise, exact;
  isc_summary_kind kind;
  const uint8_t *groups, *assign;
  isc_side side;
  double *observed, *p, *dist;
} group_ctx;

/* Rows of group A then group B under assignment a; returns the count of A's
 * rows in *na and the total. */
static size_t group_rows(const group_ctx *c, const uint8_t *a, uint32_t *idx, size_t *na) {
  size_t m = 0;
  for (int g = 0; g < 2; g++) {
    if (!c->pairwise) {
      for (size_t r = 0; r < c->S; r++)
        if (a[r] == g) idx[m++] = (uint32_t)r;
    } else {
      size_t q = 0;
      for (size_t i = 0; i < c->S; i++)
        for (size_t j = i + 1; j < c->S; j++, q++)
          if (a[i] == g && a[j] == g) idx[m++] = (uint32_t)q;
    }
    if (g == 0) *na = m;
  }
  return m;
}

/* Fisher mean of rows idx[0..m) of a block, for its w voxels at once: the
 * sums run across voxels (contiguous, vectorizable), adding the rows in
 * ascending order like summary_pre, so the bits are the same. */
static void block_mean(const double *zc, size_t nb, size_t w, const uint32_t *idx, size_t m, double *acc,
                       double *cnt, double *out) {
  for (size_t b = 0; b < w; b++)
    acc[b] = cnt[b] = 0;
  for (size_t k = 0; k < m; k++) {
    const double *row = zc + (size_t)idx[k] * nb;
    for (size_t b = 0; b < w; b++) {
      double z = row[b];
      int ok = !isnan(z);
      acc[b] += ok ? z : 0.0;
      cnt[b] += ok;
    }
  }
  for (size_t b = 0; b < w; b++)
    out[b] = cnt[b] > 0 ? tanh(acc[b] / cnt[b]) : NAN;
}

/* summary(A) - summary(B) for the w voxels of a block whose (for MEAN,
 * arctanh'ed) rows are zc[r * nb + b]; A's rows are idx[0..na), B's
 * idx[na..m). tmp: 3 nb + rows doubles. */
static void block_diff(const group_ctx *c, const double *zc, size_t w, const uint32_t *idx, size_t na,
                       size_t m, double *tmp, double *out) {
  const size_t nb = c->nb;
  double *acc = tmp, *cnt = acc + nb, *sa = cnt + nb, *buf = sa + nb;
  if (c->kind == ISC_SUMMARY_MEAN) {
    block_mean(zc, nb, w, idx, na, acc, cnt, sa);
    block_mean(zc, nb, w, idx + na, m - na, acc, cnt, out);
    for (size_t b = 0; b < w; b++)
      out[b] = sa[b] - out[b];
    return;
  }
  for (size_t b = 0; b < w; b++) {
    for (size_t k = 0; k < m; k++)
      buf[k] = zc[(size_t)idx[k] * nb + b];
    double a = summary_pre(buf, na, c->kind);
    out[b] = a - summary_pre(buf + na, m - na, c->kind);
  }
}

static int group_range(void *vctx, size_t blk0, size_t blk1, void *scratch) {
  const group_ctx *c = vctx;
  const size_t nb = c->nb, rows = c->rows;
  double *zc = scratch;              /* [rows, nb] */
  double *tmp = zc + rows * nb;      /* [3 nb + rows] */
  double *obs = tmp + 3 * nb + rows; /* [nb] */
  double *d = obs + nb;              /* [nb] */
  size_t *count = (size_t *)(d + nb);
  uint32_t *idx = (uint32_t *)(count + nb);
  for (size_t blk = blk0; blk < blk1; blk++) {
    size_t v0 = blk * nb, w = c->V - v0 < nb ? c->V - v0 : nb;
    for (size_t r = 0; r < rows; r++)
      for (size_t b = 0; b < w; b++) {
        double val = c->iscs[r * c->V + v0 + b];
        zc[r * nb + b] = c->kind == ISC_SUMMARY_MEAN ? atanh(val) : val;
      }
    size_t na, m = group_rows(c, c->groups, idx, &na);
    block_diff(c, zc, w, idx, na, m, tmp, obs);
    memset(count, 0, nb * sizeof *count);
    for (size_t i = 0; i < c->n; i++) {
      m = group_rows(c, c->assign + i * c->S, idx, &na);
      block_diff(c, zc, w, idx, na, m, tmp, d);
      for (size_t b = 0; b < w; b++)
        count[b] += (size_t)exceeds(d[b], obs[b], c->side);
      if (c->dist) memcpy(c->dist + i * c->V + v0, d, w * sizeof *d);
    }
    for (size_t b = 0; b < w; b++) {
      double n = (double)c->n, k = (double)count[b];
      c->observed[v0 + b] = obs[b];
      c->p[v0 + b] = isnan(obs[b]) ? NAN : c->exact ? k / n : (k + 1) / (n + 1);
    }
  }
  return 0;
}

/* 1 when groups holds only 0/1 with both present (and enough subjects for
 * a leave-one-out row each). */
static int groups_ok(const uint8_t *g, size_t S) {
  size_t n1 = 0;
  for (size_t s = 0; s < S; s++) {
    if (g[s] > 1) return 0;
    n1 += g[s];
  }
  return n1 > 0 && n1 < S;
}

int isc_permutation_groups(const double *iscs, size_t S, size_t V, int pairwise, isc_summary_kind kind,
                           const uint8_t *groups, const uint8_t *assign, size_t n, int exact, isc_side side,
                           int nthreads, double *observed, double *p, double *dist) {
  if (!iscs || !groups || !assign || !observed || !p || n == 0 || kind == ISC_SUMMARY_NONE ||
      S < (pairwise ? 2u : 3u) || !groups_ok(groups, S))
    return ISC_EARG;
  size_t n1 = 0;
  for (size_t s = 0; s < S; s++)
    n1 += groups[s];
  for (size_t i = 0; i < n; i++) {
    size_t m1 = 0;
    for (size_t s = 0; s < S; s++) {
      if (assign[i * S + s] > 1) return ISC_EARG;
      m1 += assign[i * S + s];
    }
    if (m1 != n1) return ISC_EARG; /* not a relabeling of groups */
  }
  const size_t rows = isc_rows(S, pairwise);
  /* Voxels per block: up to 64, fewer when rows are many. */
  size_t nb = 64;
  while (nb > 1 && rows * nb > ((size_t)1 << 16))
    nb /= 2;
  group_ctx c = {.iscs = iscs,
                 .S = S,
                 .V = V,
                 .rows = rows,
                 .n = n,
                 .nb = nb,
                 .pairwise = pairwise,
                 .exact = exact,
                 .kind = kind,
                 .groups = groups,
                 .assign = assign,
                 .side = side,
                 .observed = observed,
                 .p = p,
                 .dist = dist};
  size_t scratch =
      (rows * nb + 3 * nb + rows + 2 * nb) * sizeof(double) + nb * sizeof(size_t) + rows * sizeof(uint32_t);
  return run_parallel(nthreads, (V + nb - 1) / nb, 1, scratch, group_range, &c);
}

int isc_loo_groups(const isc_data *d, const uint8_t *groups, isc_nan_policy nan, int nthreads, double *out) {
  if (!data_ok(d) || !groups || !out) return ISC_EARG;
  const size_t S = d->S, V = d->V;
  size_t n1 = 0;
  for (size_t s = 0; s < S; s++) {
    if (groups[s] > 1) return ISC_EARG;
    n1 += groups[s];
  }
  if (n1 < 3 || S - n1 < 3) return ISC_EARG; /* each group: one row per subject */
  const void **xs = malloc(S * sizeof *xs);
  size_t *who = malloc(S * sizeof *who);
  double *tmp = malloc((S * V + 1) * sizeof *tmp);
  int rc = (xs && who && tmp) ? ISC_OK : ISC_ENOMEM;
  for (uint8_t g = 0; g < 2 && rc == ISC_OK; g++) {
    size_t m = 0;
    for (size_t s = 0; s < S; s++)
      if (groups[s] == g) {
        xs[m] = d->x[s];
        who[m++] = s;
      }
    isc_data dg = {.x = xs, .f64 = d->f64, .S = m, .T = d->T, .V = V};
    rc = isc_loo(&dg, nan, nthreads, tmp);
    for (size_t j = 0; j < m && rc == ISC_OK; j++)
      memcpy(out + who[j] * V, tmp + j * V, V * sizeof *out);
  }
  free(xs);
  free(who);
  free(tmp);
  return rc;
}

int isc_group_summaries(const double *iscs, size_t S, size_t V, int pairwise, isc_summary_kind kind,
                        const uint8_t *groups, double *out) {
  if (!iscs || !groups || !out || kind == ISC_SUMMARY_NONE || S < (pairwise ? 2u : 3u) ||
      !groups_ok(groups, S))
    return ISC_EARG;
  const size_t rows = isc_rows(S, pairwise);
  group_ctx c = {.S = S, .pairwise = pairwise};
  uint32_t *idx = malloc(rows * sizeof *idx);
  double *buf = malloc(rows * sizeof *buf);
  if (!idx || !buf) {
    free(idx);
    free(buf);
    return ISC_ENOMEM;
  }
  size_t na, m = group_rows(&c, groups, idx, &na);
  for (size_t v = 0; v < V; v++) {
    for (size_t k = 0; k < m; k++)
      buf[k] = iscs[(size_t)idx[k] * V + v];
    out[v] = summary_of(buf, na, kind);
    out[V + v] = summary_of(buf + na, m - na, kind);
  }
  free(idx);
  free(buf);
  return ISC_OK;
}

size_t isc_group_assignment_count(size_t S, size_t na) {
  if (na > S) return 0;
  if (na > S - na) na = S - na;
  size_t c = 1;
  for (size_t k = 1; k <= na; k++) {
    /* c * (S - na + k) / k stays an integer; check the product first */
    size_t f = S - na + k;
    if (c > SIZE_MAX / f) return SIZE_MAX;
    c = c * f / k;
  }
  return c;
}

uint8_t *isc_all_group_assignments(const uint8_t *groups, size_t S, size_t max, size_t *count) {
  if (!groups || S == 0 || !count) return NULL;
  size_t na = 0;
  for (size_t s = 0; s < S; s++)
    na += groups[s] == 0;
  size_t n = isc_group_assignment_count(S, na);
  if (n == 0 || n > max || n == SIZE_MAX || n > SIZE_MAX / S) return NULL;
  uint8_t *out = malloc(n * S);
  size_t *pos = malloc((na + 1) * sizeof *pos); /* group A's members, ascending */
  if (!out || !pos) {
    free(out);
    free(pos);
    return NULL;
  }
  for (size_t k = 0; k < na; k++)
    pos[k] = k;
  for (size_t i = 0; i < n; i++) {
    memset(out + i * S, 1, S);
    for (size_t k = 0; k < na; k++)
      out[i * S + pos[k]] = 0;
    /* next combination in lexicographic order */
    size_t k = na;
    while (k > 0 && pos[k - 1] == S - na + k - 1)
      k--;
    if (k == 0) break;
    pos[k - 1]++;
    for (size_t j = k; j < na; j++)
      pos[j] = pos[j - 1] + 1;
  }
  free(pos);
  *count = n;
  return out;
}

/* ---- time-shift and phase-randomization nulls -------------------------------- */

size_t isc_phase_count(size_t T) { return (T % 2 == 0) ? (T / 2 > 0 ? T / 2 - 1 : 0) : (T - 1) / 2; }

typedef struct shift_ctx {
  const isc_data *d;
  size_t S, T, V, n, F;
  int pairwise, phase;
  isc_summary_kind kind;
  isc_nan_policy nan;
  const uint32_t *shifts;
  const double *phases;
  const double *cosT, *sinT; /* [T] twiddles cos(2 pi k / T) */
  isc_side side;
  const double *obs_rows; /* observed ISC [rows, V] */
  double *observed, *p, *dist;
} shift_ctx;

/* sum_u a[u] b[(u + lag) mod T] */
static double lag_dot(const double *a, const double *b, size_t T, size_t lag) {
  double acc = 0;
  size_t split = T - lag;
  for (size_t u = 0; u < split; u++)
    acc += a[u] * b[u + lag];
  for (size_t u = split; u < T; u++)
    acc += a[u] * b[u + lag - T];
  return acc;
}

/* Positive-frequency DFT bins f = 1..F of a real series, plus Nyquist. */
static void dft_pos(const shift_ctx *c, const double *a, double *re, double *im, double *nyq) {
  const size_t T = c->T;
  for (size_t f = 1; f <= c->F; f++) {
    double sr = 0, si = 0;
    size_t k = 0;
    for (size_t t = 0; t < T; t++) {
      sr += a[t] * c->cosT[k];
      si -= a[t] * c->sinT[k];
      k += f;
      if (k >= T) k -= T;
    }
    re[f - 1] = sr;
    im[f - 1] = si;
  }
  if (T % 2 == 0) {
    double acc = 0;
    for (size_t t = 0; t < T; t++)
      acc += (t & 1) ? -a[t] : a[t];
    *nyq = acc;
  } else {
    *nyq = 0;
  }
}

/* Per-voxel scratch layout (doubles). */
static size_t shift_scratch(size_t S, size_t T, size_t F, size_t n) {
  return 2 * S * T + 2 * S + 4 * S * F + 2 * S + n + S * S + S * T + S;
}

static int shift_range(void *vctx, size_t v0, size_t v1, void *scratch) {
  const shift_ctx *c = vctx;
  const size_t S = c->S, T = c->T, V = c->V, F = c->F, rows = isc_rows(S, c->pairwise);
  double *xc = scratch;    /* [S, T] centered subjects */
  double *yc = xc + S * T; /* [S, T] centered others (sum - x) */
  double *nx = yc + S * T; /* [S] */
  double *ny = nx + S;     /* [S] */
  double *xre = ny + S, *xim = xre + S * F, *yre = xim + S * F, *yim = yre + S * F;
  double *xnq = yim + S * F, *ynq = xnq + S;
  double *null = ynq + S, *buf = null + c->n, *g = buf + S * S;
  unsigned char *clean = (unsigned char *)(g + S * T);
  const int loo = !c->pairwise;

  for (size_t v = v0; v < v1; v++) {
    double col[512];
    double *colp = rows <= 512 ? col : buf;
    for (size_t r = 0; r < rows; r++)
      colp[r] = c->obs_rows[r * V + v];
    double obs = summary_of(colp, rows, c->kind);
    c->observed[v] = obs;
    size_t nclean = gather_voxel(c->d, v, g, clean);
    /* Leave-one-out: BrainIAK's null correlates the shifted subject with the
     * others' plain mean, so a NaN in subject k makes row k (its own NaN) and
     * every other row (k is in their mean) NaN: the null is all NaN and p is
     * NaN here (README). Pairwise: pairs with a NaN subject are NaN in the
     * observed rows and in every resample (a shift or phase randomization
     * keeps the NaN); the summary skips them, so the null of the other pairs
     * is valid, as in BrainIAK. */
    if ((loo && nclean < S) || isnan(obs)) {
      c->p[v] = NAN;
      if (c->dist)
        for (size_t i = 0; i < c->n; i++)
          c->dist[i * V + v] = NAN;
      continue;
    }
    for (size_t s = 0; s < S; s++) {
      if (!clean[s]) {
        nx[s] = NAN;
        continue;
      }
      double m = 0;
      for (size_t t = 0; t < T; t++)
        m += g[s * T + t];
      m /= (double)T;
      double ss = 0;
      for (size_t t = 0; t < T; t++) {
        xc[s * T + t] = g[s * T + t] - m;
        ss += xc[s * T + t] * xc[s * T + t];
      }
      nx[s] = sqrt(ss);
    }
    if (loo) {
      for (size_t t = 0; t < T; t++) {
        double tot = 0;
        for (size_t s = 0; s < S; s++)
          tot += xc[s * T + t];
        for (size_t s = 0; s < S; s++)
          yc[s * T + t] = tot - xc[s * T + t];
      }
      for (size_t s = 0; s < S; s++) {
        double ss = 0;
        for (size_t t = 0; t < T; t++)
          ss += yc[s * T + t] * yc[s * T + t];
        ny[s] = sqrt(ss);
      }
    }
    if (c->phase)
      for (size_t s = 0; s < S; s++) {
        if (!clean[s]) continue;
        dft_pos(c, xc + s * T, xre + s * F, xim + s * F, xnq + s);
        if (loo) dft_pos(c, yc + s * T, yre + s * F, yim + s * F, ynq + s);
      }
    size_t finite = 0;
    for (size_t i = 0; i < c->n; i++) {
      size_t m = 0;
      if (loo) {
        for (size_t s = 0; s < S; s++) {
          double dot;
          if (!c->phase) {
            dot = lag_dot(xc + s * T, yc + s * T, T, c->shifts[i * S + s]);
          } else {
            const double *ph = c->phases + (i * S + s) * F;
            const double *ar = xre + s * F, *ai = xim + s * F, *br = yre + s * F, *bi = yim + s * F;
            double acc = 0;
            for (size_t f = 0; f < F; f++) {
              /* Re( (A e^{i phi}) conj(B) ) */
              double cr = ar[f] * br[f] + ai[f] * bi[f], ci = ai[f] * br[f] - ar[f] * bi[f];
              acc += cr * cos(ph[f]) - ci * sin(ph[f]);
            }
            dot = (2 * acc + xnq[s] * ynq[s]) / (double)T;
          }
          double den = nx[s] * ny[s];
          double r = den > 0 ? dot / den : NAN;
          buf[m++] = r > 1 ? 1 : (r < -1 ? -1 : r);
        }
      } else {
        for (size_t a = 0; a < S; a++)
          for (size_t b = a + 1; b < S && m < rows; b++) {
            if (!clean[a] || !clean[b]) {
              buf[m++] = NAN;
              continue;
            }
            double dot;
            if (!c->phase) {
              size_t ka = c->shifts[i * S + a], kb = c->shifts[i * S + b];
              dot = lag_dot(xc + a * T, xc + b * T, T, (ka + T - kb) % T);
            } else {
              const double *pa = c->phases + (i * S + a) * F, *pb = c->phases + (i * S + b) * F;
              double acc = 0;
              for (size_t f = 0; f < F; f++) {
                double d = pa[f] - pb[f];
                double cr = xre[a * F + f] * xre[b * F + f] + xim[a * F + f] * xim[b * F + f];
                double ci = xim[a * F + f] * xre[b * F + f] - xre[a * F + f] * xim[b * F + f];
                acc += cr * cos(d) - ci * sin(d);
              }
              dot = (2 * acc + xnq[a] * xnq[b]) / (double)T;
            }
            double den = nx[a] * nx[b];
            double r = den > 0 ? dot / den : NAN;
            buf[m++] = r > 1 ? 1 : (r < -1 ? -1 : r);
          }
      }
      null[i] = summary_of(buf, m, c->kind);
      if (c->dist) c->dist[i * V + v] = null[i];
      finite += !isnan(null[i]);
    }
    /* An all-NaN null would give the floor 1/(n+1): report NaN instead. */
    c->p[v] = finite ? isc_p_from_null(obs, null, c->n, c->side, 0) : NAN;
  }
  return 0;
}

static int shift_run(shift_ctx *c, int nthreads) {
  const size_t rows = isc_rows(c->S, c->pairwise);
  double *obs_rows = malloc(rows * c->V * sizeof *obs_rows);
  double *tw = malloc(2 * c->T * sizeof *tw);
  int rc = ISC_ENOMEM;
  if (obs_rows && tw) {
    rc = c->pairwise ? isc_pairwise(c->d, c->nan, nthreads, obs_rows)
                     : isc_loo(c->d, c->nan, nthreads, obs_rows);
    for (size_t k = 0; k < c->T; k++) {
      tw[k] = cos(2 * M_PI * (double)k / (double)c->T);
      tw[c->T + k] = sin(2 * M_PI * (double)k / (double)c->T);
    }
    c->cosT = tw;
    c->sinT = tw + c->T;
    c->obs_rows = obs_rows;
    if (rc == 0)
      rc = run_parallel(nthreads, c->V, 8, shift_scratch(c->S, c->T, c->F, c->n) * sizeof(double),
                        shift_range, c);
  }
  free(obs_rows);
  free(tw);
  return rc;
}

int isc_timeshift(const isc_data *d, int pairwise, isc_summary_kind kind, isc_nan_policy nan,
                  const uint32_t *shifts, size_t n, isc_side side, int nthreads, double *observed, double *p,
                  double *dist) {
  if (!data_ok(d) || !shifts || !observed || !p || n == 0 || kind == ISC_SUMMARY_NONE) return ISC_EARG;
  const size_t S = d->S, T = d->T, V = d->V;
  for (size_t i = 0; i < n * S; i++)
    if (shifts[i] >= T) return ISC_EARG;
  shift_ctx c = {.d = d,
                 .S = S,
                 .T = T,
                 .V = V,
                 .n = n,
                 .F = isc_phase_count(T),
                 .pairwise = pairwise,
                 .kind = kind,
                 .nan = nan,
                 .shifts = shifts,
                 .side = side,
                 .observed = observed,
                 .p = p,
                 .dist = dist};
  return shift_run(&c, nthreads);
}

int isc_phaseshift(const isc_data *d, int pairwise, isc_summary_kind kind, isc_nan_policy nan,
                   const double *phases, size_t n, isc_side side, int nthreads, double *observed, double *p,
                   double *dist) {
  if (!data_ok(d) || !phases || !observed || !p || n == 0 || kind == ISC_SUMMARY_NONE) return ISC_EARG;
  const size_t S = d->S, T = d->T, V = d->V;
  shift_ctx c = {.d = d,
                 .S = S,
                 .T = T,
                 .V = V,
                 .n = n,
                 .F = isc_phase_count(T),
                 .pairwise = pairwise,
                 .phase = 1,
                 .kind = kind,
                 .nan = nan,
                 .phases = phases,
                 .side = side,
                 .observed = observed,
                 .p = p,
                 .dist = dist};
  return shift_run(&c, nthreads);
}
