/*
 * realign_kernels.c — rigid-body realignment (see realign_kernels.h for the
 * method and the parameter convention).
 */
#include "realign_kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DEG (180.0 / 3.14159265358979323846)

static size_t cidx(const int64_t d[3], int64_t x, int64_t y, int64_t z) {
  return (size_t)((x * d[1] + y) * d[2] + z);
}

static void mul4(double a[4][4], double b[4][4], double out[4][4]) {
  double r[4][4];
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++) {
      double s = 0;
      for (int k = 0; k < 4; k++)
        s += a[i][k] * b[k][j];
      r[i][j] = s;
    }
  memcpy(out, r, sizeof r);
}

int rg_inv4(double M[4][4], double out[4][4]) {
  double a[4][8];
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 8; j++)
      a[i][j] = j < 4 ? M[i][j] : (j - 4 == i);
  for (int c = 0; c < 4; c++) {
    int p = c;
    for (int r = c + 1; r < 4; r++)
      if (fabs(a[r][c]) > fabs(a[p][c])) p = r;
    if (fabs(a[p][c]) < 1e-300) return -1;
    if (p != c)
      for (int j = 0; j < 8; j++) {
        double t = a[p][j];
        a[p][j] = a[c][j];
        a[c][j] = t;
      }
    double piv = a[c][c];
    for (int j = 0; j < 8; j++)
      a[c][j] /= piv;
    for (int r = 0; r < 4; r++)
      if (r != c) {
        double f = a[r][c];
        for (int j = 0; j < 8; j++)
          a[r][j] -= f * a[c][j];
      }
  }
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++)
      out[i][j] = a[i][j + 4];
  return 0;
}

/* R = Rx(a) Ry(b) Rz(g), radians. */
static void rotation(double a, double b, double g, double R[3][3]) {
  double cx = cos(a), sx = sin(a), cy = cos(b), sy = sin(b), cz = cos(g), sz = sin(g);
  R[0][0] = cy * cz;
  R[0][1] = -cy * sz;
  R[0][2] = sy;
  R[1][0] = cx * sz + sx * sy * cz;
  R[1][1] = cx * cz - sx * sy * sz;
  R[1][2] = -sx * cy;
  R[2][0] = sx * sz - cx * sy * cz;
  R[2][1] = sx * cz + cx * sy * sz;
  R[2][2] = cx * cy;
}

/* T(p) = R (p - c) + c + t with angles in radians. */
static void matrix_rad(const double t[3], const double w[3], const double c[3], double T[4][4]) {
  double R[3][3];
  rotation(w[0], w[1], w[2], R);
  memset(T, 0, 16 * sizeof(double));
  for (int i = 0; i < 3; i++) {
    double rc = 0;
    for (int j = 0; j < 3; j++) {
      T[i][j] = R[i][j];
      rc += R[i][j] * c[j];
    }
    T[i][3] = c[i] - rc + t[i];
  }
  T[3][3] = 1;
}

void rg_matrix(const double p[6], const double c[3], double T[4][4]) {
  const double w[3] = {p[3] / DEG, p[4] / DEG, p[5] / DEG};
  matrix_rad(p, w, c, T);
}

void rg_params(double T[4][4], const double c[3], double p[6]) {
  double sy = T[0][2] > 1 ? 1 : T[0][2] < -1 ? -1 : T[0][2];
  p[4] = asin(sy) * DEG;
  p[3] = atan2(-T[1][2], T[2][2]) * DEG;
  p[5] = atan2(-T[0][1], T[0][0]) * DEG;
  for (int i = 0; i < 3; i++) {
    double tc = T[i][3];
    for (int j = 0; j < 3; j++)
      tc += T[i][j] * c[j];
    p[i] = tc - c[i]; /* T(c) - c */
  }
}

double rg_fd(const double prev[6], const double cur[6]) {
  double fd = 0;
  for (int i = 0; i < 3; i++)
    fd += fabs(cur[i] - prev[i]);
  for (int i = 3; i < 6; i++)
    fd += 50.0 * fabs(cur[i] - prev[i]) / DEG;
  return fd;
}

/* Lower/upper voxel and weight along one axis; 0 when outside. */
static int axis(double x, int64_t n, int64_t *i0, double *f) {
  if (n == 1) {
    if (fabs(x) > 1e-6) return 0;
    *i0 = 0;
    *f = 0;
    return 1;
  }
  if (!(x >= 0 && x <= (double)(n - 1))) return 0;
  int64_t i = (int64_t)x;
  if (i >= n - 1) i = n - 2;
  *i0 = i;
  *f = x - (double)i;
  return 1;
}

float rg_trilinear(const float *vol, const int64_t d[3], double x, double y, double z) {
  int64_t i, j, k;
  double fx, fy, fz;
  if (!axis(x, d[0], &i, &fx) || !axis(y, d[1], &j, &fy) || !axis(z, d[2], &k, &fz)) return 0;
  int64_t di = d[0] > 1, dj = d[1] > 1, dk = d[2] > 1;
  size_t sx = (size_t)(d[1] * d[2]) * (size_t)di, sy = (size_t)d[2] * (size_t)dj, sz = (size_t)dk;
  const float *p = vol + cidx(d, i, j, k);
  double c00 = p[0] * (1 - fz) + p[sz] * fz, c01 = p[sy] * (1 - fz) + p[sy + sz] * fz;
  double c10 = p[sx] * (1 - fz) + p[sx + sz] * fz, c11 = p[sx + sy] * (1 - fz) + p[sx + sy + sz] * fz;
  double c0 = c00 * (1 - fy) + c01 * fy, c1 = c10 * (1 - fy) + c11 * fy;
  return (float)(c0 * (1 - fx) + c1 * fx);
}

void rg_smooth(float *vol, const int64_t d[3], const double sigma[3], float *scratch) {
  for (int a = 0; a < 3; a++) {
    if (!(sigma[a] > 0) || d[a] < 2) continue;
    int r = (int)ceil(3 * sigma[a]);
    if (r > 32) r = 32;
    double w[65];
    for (int k = -r; k <= r; k++)
      w[k + r] = exp(-0.5 * k * k / (sigma[a] * sigma[a]));
    int64_t n = d[a];
    size_t stride = a == 0 ? (size_t)(d[1] * d[2]) : a == 1 ? (size_t)d[2] : 1;
    int64_t o1 = a == 0 ? d[1] : d[0], o2 = a == 2 ? d[1] : d[2];
    for (int64_t u = 0; u < o1; u++)
      for (int64_t v = 0; v < o2; v++) {
        size_t base = a == 0 ? cidx(d, 0, u, v) : a == 1 ? cidx(d, u, 0, v) : cidx(d, u, v, 0);
        for (int64_t i = 0; i < n; i++)
          scratch[i] = vol[base + (size_t)i * stride];
        for (int64_t i = 0; i < n; i++) {
          double s = 0, ws = 0;
          for (int k = -r; k <= r; k++) {
            int64_t q = i + k;
            if (q < 0 || q >= n) continue;
            s += w[k + r] * scratch[q];
            ws += w[k + r];
          }
          vol[base + (size_t)i * stride] = (float)(s / ws);
        }
      }
  }
}

static void level_free(rg_level *l) {
  free(l->ijk);
  free(l->r);
  free(l->J);
  free(l->smooth);
  memset(l, 0, sizeof *l);
}

/* Samples of one level: voxels of `vol` (raw or smoothed) where the raw
 * reference is above thresh, off the border, keep % every == 0. */
static int level_init(rg_ref *ref, rg_level *l, const float *vol, const float *raw, double thresh,
                      int every) {
  const int64_t *d = ref->dims;
  size_t V = (size_t)(d[0] * d[1] * d[2]);
  l->ijk = malloc(V * 3 * sizeof *l->ijk);
  l->r = malloc(V * sizeof *l->r);
  l->J = malloc(V * 6 * sizeof *l->J);
  if (!l->ijk || !l->r || !l->J) return -1;
  size_t n = 0;
  int64_t lo[3], hi[3];
  for (int a = 0; a < 3; a++) {
    lo[a] = d[a] > 2 ? 1 : 0;
    hi[a] = d[a] > 2 ? d[a] - 2 : d[a] - 1;
  }
  for (int64_t x = lo[0]; x <= hi[0]; x++)
    for (int64_t y = lo[1]; y <= hi[1]; y++)
      for (int64_t z = lo[2]; z <= hi[2]; z++) {
        if (every > 1 && (x % every || y % every)) continue;
        size_t i = cidx(d, x, y, z);
        if (!(raw[i] > thresh)) continue;
        double gv[3] = {0, 0, 0};
        const int64_t pos[3] = {x, y, z};
        for (int a = 0; a < 3; a++) {
          if (d[a] < 3) continue;
          int64_t p1[3] = {x, y, z}, p0[3] = {x, y, z};
          p1[a] = pos[a] + 1;
          p0[a] = pos[a] - 1;
          gv[a] = 0.5 * (vol[cidx(d, p1[0], p1[1], p1[2])] - vol[cidx(d, p0[0], p0[1], p0[2])]);
        }
        double g[3], w[3], dv[3];
        for (int a = 0; a < 3; a++) {
          g[a] = ref->Ainv[0][a] * gv[0] + ref->Ainv[1][a] * gv[1] + ref->Ainv[2][a] * gv[2];
          w[a] =
              ref->A[a][0] * (double)x + ref->A[a][1] * (double)y + ref->A[a][2] * (double)z + ref->A[a][3];
          dv[a] = w[a] - ref->c[a];
        }
        if (g[0] == 0 && g[1] == 0 && g[2] == 0) continue;
        float *J = l->J + 6 * n;
        J[0] = (float)g[0];
        J[1] = (float)g[1];
        J[2] = (float)g[2];
        J[3] = (float)(dv[1] * g[2] - dv[2] * g[1]);
        J[4] = (float)(dv[2] * g[0] - dv[0] * g[2]);
        J[5] = (float)(dv[0] * g[1] - dv[1] * g[0]);
        l->ijk[3 * n] = (int32_t)x;
        l->ijk[3 * n + 1] = (int32_t)y;
        l->ijk[3 * n + 2] = (int32_t)z;
        l->r[n] = vol[i];
        n++;
      }
  l->n = n;
  return n >= 6 ? 0 : -1;
}

int rg_ref_init(rg_ref *ref, const float *vol, const int64_t dims[3], double A[4][4]) {
  memset(ref, 0, sizeof *ref);
  memcpy(ref->dims, dims, sizeof ref->dims);
  memcpy(ref->A, A, sizeof ref->A);
  if (rg_inv4(A, ref->Ainv)) return -1;
  for (int a = 0; a < 3; a++)
    ref->c[a] = A[a][0] * (double)(dims[0] - 1) / 2 + A[a][1] * (double)(dims[1] - 1) / 2 +
                A[a][2] * (double)(dims[2] - 1) / 2 + A[a][3];
  size_t V = (size_t)(dims[0] * dims[1] * dims[2]);
  double mean = 0;
  for (size_t i = 0; i < V; i++)
    mean += isfinite(vol[i]) ? vol[i] : 0;
  mean /= (double)(V ? V : 1);
  double thresh = mean / 8;
  ref->sigma_vox = 2.0 / 2.3548;
  float *sm = malloc((V ? V : 1) * sizeof *sm);
  float *scratch = malloc((size_t)(dims[0] + dims[1] + dims[2] + 1) * sizeof *scratch);
  int rc = -1;
  if (sm && scratch) {
    memcpy(sm, vol, V * sizeof *sm);
    const double s3[3] = {ref->sigma_vox, ref->sigma_vox, ref->sigma_vox};
    rg_smooth(sm, dims, s3, scratch);
    rc = level_init(ref, &ref->lev[0], sm, vol, thresh, 2) ||
         level_init(ref, &ref->lev[1], vol, vol, thresh, 1);
    ref->lev[0].smooth = sm;
    sm = NULL;
  }
  free(sm);
  free(scratch);
  if (rc) rg_ref_free(ref);
  return rc ? -1 : 0;
}

void rg_ref_free(rg_ref *ref) {
  level_free(&ref->lev[0]);
  level_free(&ref->lev[1]);
}

/* Solves the 6x6 SPD system H x = b (Cholesky). 0, or -1 if not SPD. */
static int solve6(double H[6][6], const double b[6], double x[6]) {
  double L[6][6] = {{0}};
  for (int i = 0; i < 6; i++)
    for (int j = 0; j <= i; j++) {
      double s = H[i][j];
      for (int k = 0; k < j; k++)
        s -= L[i][k] * L[j][k];
      if (i == j) {
        if (!(s > 0)) return -1;
        L[i][i] = sqrt(s);
      } else {
        L[i][j] = s / L[j][j];
      }
    }
  double y[6];
  for (int i = 0; i < 6; i++) {
    double s = b[i];
    for (int k = 0; k < i; k++)
      s -= L[i][k] * y[k];
    y[i] = s / L[i][i];
  }
  for (int i = 5; i >= 0; i--) {
    double s = y[i];
    for (int k = i + 1; k < 6; k++)
      s -= L[k][i] * x[k];
    x[i] = s / L[i][i];
  }
  return 0;
}

/* Gauss-Newton iterations on one level; the iterations used or -1. */
static int gn_level(rg_ref *ref, const rg_level *l, const float *vol, double T[4][4], int max_iter,
                    double tol) {
  int it = 0;
  for (; it < max_iter; it++) {
    double M[4][4], AT[4][4];
    mul4(T, ref->A, AT);
    mul4(ref->Ainv, AT, M);
    double H[6][6] = {{0}}, b[6] = {0};
    for (size_t s = 0; s < l->n; s++) {
      const int32_t *q = l->ijk + 3 * s;
      double v[3];
      for (int a = 0; a < 3; a++)
        v[a] = M[a][0] * q[0] + M[a][1] * q[1] + M[a][2] * q[2] + M[a][3];
      int64_t i0;
      double f;
      if (!axis(v[0], ref->dims[0], &i0, &f) || !axis(v[1], ref->dims[1], &i0, &f) ||
          !axis(v[2], ref->dims[2], &i0, &f))
        continue;
      double e = rg_trilinear(vol, ref->dims, v[0], v[1], v[2]) - l->r[s];
      const float *J = l->J + 6 * s;
      for (int i = 0; i < 6; i++) {
        b[i] += J[i] * e;
        for (int j = 0; j <= i; j++)
          H[i][j] += (double)J[i] * J[j];
      }
    }
    for (int i = 0; i < 6; i++)
      for (int j = i + 1; j < 6; j++)
        H[i][j] = H[j][i];
    double dp[6];
    if (solve6(H, b, dp)) return -1;
    double W[4][4], Wi[4][4];
    matrix_rad(dp, dp + 3, ref->c, W);
    if (rg_inv4(W, Wi)) return -1;
    mul4(T, Wi, T);
    for (int i = 0; i < 6; i++)
      if (!isfinite(dp[i])) return -1;
    double step = fabs(dp[0]) + fabs(dp[1]) + fabs(dp[2]) + 50 * (fabs(dp[3]) + fabs(dp[4]) + fabs(dp[5]));
    if (step < tol) return it + 1;
  }
  return it;
}

int rg_estimate(rg_ref *ref, const float *mov, double T[4][4], int max_iter, double tol_mm) {
  const int64_t *d = ref->dims;
  size_t V = (size_t)(d[0] * d[1] * d[2]);
  float *sm = ref->lev[0].smooth;
  float *scratch = malloc((size_t)(d[0] + d[1] + d[2] + 1) * sizeof *scratch);
  if (!scratch) return -1;
  memcpy(sm, mov, V * sizeof *sm);
  const double s3[3] = {ref->sigma_vox, ref->sigma_vox, ref->sigma_vox};
  rg_smooth(sm, d, s3, scratch);
  free(scratch);
  int a = gn_level(ref, &ref->lev[0], sm, T, max_iter, tol_mm * 10);
  if (a < 0) return -1;
  int b = gn_level(ref, &ref->lev[1], mov, T, max_iter, tol_mm);
  return b < 0 ? -1 : a + b;
}

void rg_resample(const float *mov, const int64_t d[3], double A[4][4], double Ainv[4][4], double T[4][4],
                 float *out) {
  double M[4][4], AT[4][4];
  mul4(T, A, AT);
  mul4(Ainv, AT, M);
  for (int64_t x = 0; x < d[0]; x++)
    for (int64_t y = 0; y < d[1]; y++) {
      double bx = M[0][0] * (double)x + M[0][1] * (double)y + M[0][3];
      double by = M[1][0] * (double)x + M[1][1] * (double)y + M[1][3];
      double bz = M[2][0] * (double)x + M[2][1] * (double)y + M[2][3];
      float *o = out + cidx(d, x, y, 0);
      for (int64_t z = 0; z < d[2]; z++)
        o[z] = rg_trilinear(mov, d, bx + M[0][2] * (double)z, by + M[1][2] * (double)z,
                            bz + M[2][2] * (double)z);
    }
}
