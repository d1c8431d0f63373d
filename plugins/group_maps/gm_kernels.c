/*
 * gm_kernels.c — the kernels of gm_kernels.h.
 *
 * The permutation means of all voxels are one matrix product: signs
 * [B, S] (+-1 / S) times x [S, V], B patterns at a time (cblas_dgemm), so
 * 10,000 patterns of 20 subjects over 50,000 voxels cost 2e10 flops in BLAS
 * rather than a loop per voxel. Pattern k of the exact enumeration flips
 * subject s when bit s of k is set (k = 0: the observed signs).
 */
#include "gm_kernels.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 256

void gm_normalize(const double *r, const double *c, size_t S, size_t V, double c_min, double *score,
                  unsigned char *in) {
  for (size_t v = 0; v < V; v++) {
    double cm = 0;
    for (size_t s = 0; s < S; s++)
      cm += c[s * V + v];
    cm /= (double)S;
    in[v] = cm > c_min;
    for (size_t s = 0; s < S; s++) {
      double cs = c[s * V + v] > c_min ? c[s * V + v] : c_min;
      score[s * V + v] = in[v] ? r[s * V + v] / cs : 0;
    }
  }
}

static uint64_t xorshift(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13, x ^= x >> 7, x ^= x << 17;
  return *s = x;
}

size_t gm_signflip(const double *x, size_t S, size_t V, const unsigned char *in, size_t n_perm, uint64_t seed,
                   double *mean, double *p, double *p_fwe) {
  int exact = S < 63 && ((uint64_t)1 << S) <= n_perm;
  size_t N = exact ? (size_t)1 << S : n_perm;
  double *signs = malloc(BATCH * S * sizeof *signs), *perm = malloc(BATCH * (V ? V : 1) * sizeof *perm);
  size_t *count = calloc(V ? V : 1, sizeof *count), *count_fwe = calloc(V ? V : 1, sizeof *count_fwe);
  if (!signs || !perm || !count || !count_fwe) {
    free(signs), free(perm), free(count), free(count_fwe);
    return 0;
  }
  for (size_t v = 0; v < V; v++) {
    double m = 0;
    for (size_t s = 0; s < S; s++)
      m += x[s * V + v];
    mean[v] = m / (double)S;
  }
  uint64_t st = seed ? seed : 0x9E3779B97F4A7C15ull;
  for (size_t k0 = 0; k0 < N; k0 += BATCH) {
    size_t B = N - k0 < BATCH ? N - k0 : BATCH;
    for (size_t b = 0; b < B; b++) {
      uint64_t bits = exact ? (uint64_t)(k0 + b) : xorshift(&st);
      for (size_t s = 0; s < S; s++) {
        if (!exact && s % 64 == 0 && s) bits = xorshift(&st);
        signs[b * S + s] = ((bits >> (s % 64)) & 1 ? -1.0 : 1.0) / (double)S;
      }
    }
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)V, (int)S, 1.0, signs, (int)S, x,
                (int)V, 0.0, perm, (int)V);
    for (size_t b = 0; b < B; b++) {
      const double *row = perm + b * V;
      double mx = -INFINITY;
      for (size_t v = 0; v < V; v++) {
        if (!in[v]) continue;
        /* a relative tolerance, so the observed pattern counts itself */
        double tol = 1e-12 * (fabs(mean[v]) + 1e-300);
        count[v] += row[v] >= mean[v] - tol;
        mx = row[v] > mx ? row[v] : mx;
      }
      if (p_fwe)
        for (size_t v = 0; v < V; v++)
          count_fwe[v] += in[v] && mx >= mean[v] - 1e-12 * fabs(mean[v]);
    }
  }
  for (size_t v = 0; v < V; v++) {
    if (!in[v]) {
      p[v] = 1;
      if (p_fwe) p_fwe[v] = 1;
      continue;
    }
    p[v] = exact ? (double)count[v] / (double)N : (1.0 + (double)count[v]) / (1.0 + (double)N);
    if (p_fwe)
      p_fwe[v] = exact ? (double)count_fwe[v] / (double)N : (1.0 + (double)count_fwe[v]) / (1.0 + (double)N);
  }
  free(signs), free(perm), free(count), free(count_fwe);
  return N;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

size_t gm_fdr_bh(const double *p, const unsigned char *in, size_t V, double q, unsigned char *sig) {
  size_t m = 0;
  for (size_t v = 0; v < V; v++)
    m += in[v] != 0;
  double *sorted = malloc((m ? m : 1) * sizeof *sorted);
  memset(sig, 0, V);
  if (!sorted || m == 0) return free(sorted), 0;
  size_t j = 0;
  for (size_t v = 0; v < V; v++)
    if (in[v]) sorted[j++] = p[v];
  qsort(sorted, m, sizeof *sorted, cmp_double);
  double cut = -1;
  for (size_t k = m; k >= 1; k--)
    if (sorted[k - 1] <= (double)k * q / (double)m) {
      cut = sorted[k - 1];
      break;
    }
  free(sorted);
  size_t n = 0;
  for (size_t v = 0; v < V; v++)
    if (in[v] && p[v] <= cut) sig[v] = 1, n++;
  return n;
}
