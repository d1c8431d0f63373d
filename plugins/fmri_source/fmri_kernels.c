/*
 * fmri_kernels.c — trend removal, z-scoring, parcel averaging and variance
 * masks over [T, V] runs (see fmri_kernels.h).
 *
 * Detrending projects each column onto an orthonormal polynomial basis over
 * time (Gram-Schmidt of 1, s, s^2, ... with s = t rescaled to [-1, 1], done
 * twice for stability) and subtracts the projection: the same result as a
 * per-voxel numpy.polyfit/polyval, at O(T * V * (order + 1)) cost with one
 * pass for the coefficients and one for the subtraction.
 */
#include "fmri_kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

size_t fmri_nonconstant(const float *X, size_t T, size_t V, uint8_t *keep) {
  for (size_t v = 0; v < V; v++)
    keep[v] = T > 0 && isfinite(X[v]);
  uint8_t *varies = calloc(V ? V : 1, 1);
  if (!varies) return 0;
  for (size_t t = 1; t < T; t++) {
    const float *row = X + t * V;
    for (size_t v = 0; v < V; v++) {
      varies[v] |= row[v] != X[v];
      keep[v] &= isfinite(row[v]) != 0;
    }
  }
  size_t n = 0;
  for (size_t v = 0; v < V; v++) {
    keep[v] = keep[v] && varies[v];
    n += keep[v];
  }
  free(varies);
  return n;
}

/* Orthonormal polynomial basis Q [K, T] (row k has degree k). */
static double *poly_basis(size_t T, size_t K) {
  double *Q = malloc(K * T * sizeof *Q);
  if (!Q) return NULL;
  for (size_t k = 0; k < K; k++) {
    double *q = Q + k * T;
    for (size_t t = 0; t < T; t++) {
      double s = T > 1 ? 2.0 * (double)t / (double)(T - 1) - 1.0 : 0.0;
      q[t] = pow(s, (double)k);
    }
    for (int pass = 0; pass < 2; pass++)
      for (size_t j = 0; j < k; j++) {
        double d = 0;
        for (size_t t = 0; t < T; t++)
          d += q[t] * Q[j * T + t];
        for (size_t t = 0; t < T; t++)
          q[t] -= d * Q[j * T + t];
      }
    double nrm = 0;
    for (size_t t = 0; t < T; t++)
      nrm += q[t] * q[t];
    nrm = sqrt(nrm);
    for (size_t t = 0; t < T; t++)
      q[t] = nrm > 0 ? q[t] / nrm : 0.0;
  }
  return Q;
}

int fmri_detrend(float *X, size_t T, size_t V, int order) {
  if (order < 0 || T == 0 || V == 0) return 0;
  if ((size_t)order + 1 >= T) { /* the basis spans R^T: the fit is exact */
    memset(X, 0, T * V * sizeof *X);
    return 0;
  }
  size_t K = (size_t)order + 1 > T ? T : (size_t)order + 1;
  double *Q = poly_basis(T, K);
  double *coef = calloc(K * V, sizeof *coef);
  if (!Q || !coef) {
    free(Q);
    free(coef);
    return -1;
  }
  for (size_t t = 0; t < T; t++) {
    const float *row = X + t * V;
    for (size_t k = 0; k < K; k++) {
      double q = Q[k * T + t];
      double *c = coef + k * V;
      for (size_t v = 0; v < V; v++)
        c[v] += q * row[v];
    }
  }
  for (size_t t = 0; t < T; t++) {
    float *row = X + t * V;
    for (size_t v = 0; v < V; v++) {
      double fit = 0;
      for (size_t k = 0; k < K; k++)
        fit += coef[k * V + v] * Q[k * T + t];
      row[v] = (float)(row[v] - fit);
    }
  }
  free(Q);
  free(coef);
  return 0;
}

int fmri_zscore(float *X, size_t T, size_t V) {
  if (T == 0 || V == 0) return 0;
  double *mean = calloc(V, sizeof *mean), *ss = calloc(V, sizeof *ss);
  if (!mean || !ss) {
    free(mean);
    free(ss);
    return -1;
  }
  for (size_t t = 0; t < T; t++)
    for (size_t v = 0; v < V; v++)
      mean[v] += X[t * V + v];
  for (size_t v = 0; v < V; v++)
    mean[v] /= (double)T;
  for (size_t t = 0; t < T; t++)
    for (size_t v = 0; v < V; v++) {
      double d = X[t * V + v] - mean[v];
      ss[v] += d * d;
    }
  for (size_t v = 0; v < V; v++)
    ss[v] = ss[v] > 0 ? 1.0 / sqrt(ss[v] / (double)T) : 0.0;
  for (size_t t = 0; t < T; t++)
    for (size_t v = 0; v < V; v++)
      X[t * V + v] = (float)((X[t * V + v] - mean[v]) * ss[v]);
  free(mean);
  free(ss);
  return 0;
}

int fmri_parcel_means(const float *X, size_t T, size_t V, const int32_t *parcel, size_t P, float *out) {
  double *acc = calloc(P ? P : 1, sizeof *acc);
  size_t *cnt = calloc(P ? P : 1, sizeof *cnt);
  if (!acc || !cnt) {
    free(acc);
    free(cnt);
    return -1;
  }
  for (size_t v = 0; v < V; v++)
    if (parcel[v] >= 0 && (size_t)parcel[v] < P) cnt[parcel[v]]++;
  for (size_t t = 0; t < T; t++) {
    memset(acc, 0, P * sizeof *acc);
    const float *row = X + t * V;
    for (size_t v = 0; v < V; v++)
      if (parcel[v] >= 0 && (size_t)parcel[v] < P) acc[parcel[v]] += row[v];
    for (size_t p = 0; p < P; p++)
      out[t * P + p] = cnt[p] ? (float)(acc[p] / (double)cnt[p]) : NAN;
  }
  free(acc);
  free(cnt);
  return 0;
}

size_t fmri_compact_columns(float *X, size_t T, size_t V, const uint8_t *keep) {
  size_t n = 0;
  for (size_t v = 0; v < V; v++)
    n += keep[v] != 0;
  size_t w = 0;
  for (size_t t = 0; t < T; t++)
    for (size_t v = 0; v < V; v++)
      if (keep[v]) X[w++] = X[t * V + v];
  return n;
}
