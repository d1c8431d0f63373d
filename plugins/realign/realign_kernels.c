/*
 * realign_kernels.c — rigid-body realignment (see realign_kernels.h for the
 * method and the parameter convention).
 */
#include "realign_kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DEG (180.0 / 3.14159265358979323846)

/* Over-relaxation of the full-resolution Gauss-Newton step. The fixed
 * inverse-compositional Jacobian (central differences of the reference)
 * overstates how fast a trilinearly interpolated volume changes between
 * voxels, so plain steps fall short by ~40% and converge linearly (rate
 * ~0.42 per iteration on EPI); 1.3x the step cuts the iterations by a third
 * and stays stable where the estimate is exact (integer shifts). */
#define RG_OMEGA 1.3

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

/* One separable Gaussian pass along an axis, the volume seen as [outer][n]
 * [inner] with inner contiguous: out = in convolved along n (weights
 * renormalized where the kernel leaves the grid). Whole rows of `inner`
 * values are combined at a time, so the x and y passes stream through
 * memory and vectorize; the z pass (inner = 1) is a plain 1-D convolution. */
static void smooth_axis(const float *in, float *out, size_t outer, int64_t n, size_t inner, double sigma) {
  int r = (int)ceil(3 * sigma);
  if (r > 32) r = 32;
  if (r > n - 1) r = (int)(n - 1);
  float w[65];
  for (int k = -r; k <= r; k++)
    w[k + r] = (float)exp(-0.5 * k * k / (sigma * sigma));
  for (size_t o = 0; o < outer; o++) {
    const float *src = in + o * (size_t)n * inner;
    float *dst = out + o * (size_t)n * inner;
    for (int64_t i = 0; i < n; i++) {
      int k0 = i < r ? (int)-i : -r, k1 = i + r >= n ? (int)(n - 1 - i) : r;
      double ws = 0;
      for (int k = k0; k <= k1; k++)
        ws += w[k + r];
      const float nf = (float)(1.0 / ws);
      float *d = dst + (size_t)i * inner;
      if (inner == 1) {
        float acc = 0;
        for (int k = k0; k <= k1; k++)
          acc += w[k + r] * src[i + k];
        d[0] = acc * nf;
        continue;
      }
      for (size_t j = 0; j < inner; j++)
        d[j] = 0;
      for (int k = k0; k <= k1; k++) {
        const float *sp = src + (size_t)(i + k) * inner;
        const float wk = w[k + r] * nf;
        for (size_t j = 0; j < inner; j++)
          d[j] += wk * sp[j];
      }
    }
  }
}

void rg_smooth(float *vol, const int64_t d[3], const double sigma[3], float *scratch) {
  const size_t V = (size_t)(d[0] * d[1] * d[2]);
  float *cur = vol, *other = scratch;
  for (int a = 0; a < 3; a++) {
    if (!(sigma[a] > 0) || d[a] < 2) continue;
    size_t outer = a == 0 ? 1 : a == 1 ? (size_t)d[0] : (size_t)(d[0] * d[1]);
    size_t inner = a == 0 ? (size_t)(d[1] * d[2]) : a == 1 ? (size_t)d[2] : 1;
    smooth_axis(cur, other, outer, d[a], inner, sigma[a]);
    float *t = cur;
    cur = other;
    other = t;
  }
  if (cur != vol) memcpy(vol, cur, V * sizeof *vol);
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
        for (int a = 0; a < 6; a++)
          for (int b = 0; b <= a; b++)
            l->H[a][b] += (double)J[a] * J[b];
        n++;
      }
  l->n = n;
  for (int a = 0; a < 6; a++)
    for (int b = a + 1; b < 6; b++)
      l->H[a][b] = l->H[b][a];
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
  float *scratch = malloc((V ? V : 1) * sizeof *scratch);
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
  ref->scratch = scratch;
  if (rc) rg_ref_free(ref);
  return rc ? -1 : 0;
}

void rg_ref_free(rg_ref *ref) {
  free(ref->scratch);
  ref->scratch = NULL;
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

/* b = sum of J e over the samples that map inside the grid, e = the moving
 * volume at the warped sample minus the reference (trilinear). The fast
 * path, for grids of at least 2 voxels along every axis: float coordinates,
 * the interpolation inlined. */
static void gradient(const rg_level *l, const float *vol, const int64_t d[3], double M[4][4], double b[6]) {
  const float m[12] = {(float)M[0][0], (float)M[0][1], (float)M[0][2], (float)M[0][3],
                       (float)M[1][0], (float)M[1][1], (float)M[1][2], (float)M[1][3],
                       (float)M[2][0], (float)M[2][1], (float)M[2][2], (float)M[2][3]};
  const float hx = (float)(d[0] - 1), hy = (float)(d[1] - 1), hz = (float)(d[2] - 1);
  const int64_t ny = d[1], nz = d[2];
  const size_t sx = (size_t)(ny * nz), sy = (size_t)nz;
  double acc[6] = {0, 0, 0, 0, 0, 0};
  for (size_t s = 0; s < l->n; s++) {
    const int32_t *q = l->ijk + 3 * s;
    const float qx = (float)q[0], qy = (float)q[1], qz = (float)q[2];
    const float x = m[0] * qx + m[1] * qy + m[2] * qz + m[3];
    const float y = m[4] * qx + m[5] * qy + m[6] * qz + m[7];
    const float z = m[8] * qx + m[9] * qy + m[10] * qz + m[11];
    if (!(x >= 0 && x <= hx && y >= 0 && y <= hy && z >= 0 && z <= hz)) continue;
    int64_t i = (int64_t)x, j = (int64_t)y, k = (int64_t)z;
    if (i > d[0] - 2) i = d[0] - 2;
    if (j > d[1] - 2) j = d[1] - 2;
    if (k > d[2] - 2) k = d[2] - 2;
    const float fx = x - (float)i, fy = y - (float)j, fz = z - (float)k;
    const float *p = vol + (size_t)i * sx + (size_t)j * sy + (size_t)k;
    const float c00 = p[0] + fz * (p[1] - p[0]), c01 = p[sy] + fz * (p[sy + 1] - p[sy]);
    const float c10 = p[sx] + fz * (p[sx + 1] - p[sx]), c11 = p[sx + sy] + fz * (p[sx + sy + 1] - p[sx + sy]);
    const float c0 = c00 + fy * (c01 - c00), c1 = c10 + fy * (c11 - c10);
    const float e = c0 + fx * (c1 - c0) - l->r[s];
    const float *J = l->J + 6 * s;
    for (int a = 0; a < 6; a++)
      acc[a] += (double)(J[a] * e);
  }
  memcpy(b, acc, sizeof acc);
}

/* The same for any grid (an axis of 1 voxel included). */
static void gradient_any(const rg_level *l, const float *vol, const int64_t d[3], double M[4][4],
                         double b[6]) {
  memset(b, 0, 6 * sizeof *b);
  for (size_t s = 0; s < l->n; s++) {
    const int32_t *q = l->ijk + 3 * s;
    double v[3];
    for (int a = 0; a < 3; a++)
      v[a] = M[a][0] * q[0] + M[a][1] * q[1] + M[a][2] * q[2] + M[a][3];
    int64_t i0;
    double f;
    if (!axis(v[0], d[0], &i0, &f) || !axis(v[1], d[1], &i0, &f) || !axis(v[2], d[2], &i0, &f)) continue;
    double e = rg_trilinear(vol, d, v[0], v[1], v[2]) - l->r[s];
    const float *J = l->J + 6 * s;
    for (int a = 0; a < 6; a++)
      b[a] += J[a] * e;
  }
}

/* Gauss-Newton iterations on one level; the iterations used, -1 (singular
 * or non-finite) or GN_STALLED (below). The inverse-compositional matrix H
 * is the reference's, computed once (the few samples that leave the grid
 * only shorten a step, they do not move the optimum); a Levenberg damping of
 * 1e-4 of its mean diagonal keeps directions the data cannot determine from
 * diverging.
 *
 * From a start inside the capture range the updates shrink geometrically
 * (each ~0.45 of the last on EPI). One that does not shrink below 0.9 of the
 * last either means the start is outside the capture range (a large update:
 * with `stall` set, GN_STALLED, and the caller takes the coarse-to-fine
 * path) or, near the optimum, that the steps straddle it (the trilinear
 * cost has creases at voxel boundaries, and the over-relaxed step overshoots
 * them): then the relaxation is halved, so the updates shrink again instead
 * of cycling at a fraction of a micrometre until max_iter. */
enum { GN_STALLED = -2 };
#define RG_STALL_STEP 0.1 /* mm (translation + 50 mm x rotation): larger = outside the capture range */

static int gn_level(rg_ref *ref, const rg_level *l, const float *vol, double T[4][4], int max_iter,
                    double tol, int stall) {
  const int64_t *d = ref->dims;
  const int fast = d[0] >= 2 && d[1] >= 2 && d[2] >= 2;
  double H[6][6], diag = 0;
  memcpy(H, l->H, sizeof H);
  for (int i = 0; i < 6; i++)
    diag += H[i][i] / 6;
  for (int i = 0; i < 6; i++)
    H[i][i] += 1e-4 * diag;
  int it = 0;
  double last = INFINITY, relax = l->smooth ? 1.0 : RG_OMEGA;
  for (; it < max_iter; it++) {
    double M[4][4], AT[4][4];
    mul4(T, ref->A, AT);
    mul4(ref->Ainv, AT, M);
    double b[6];
    if (fast)
      gradient(l, vol, d, M, b);
    else
      gradient_any(l, vol, d, M, b);
    double dp[6];
    if (solve6(H, b, dp)) return -1;
    for (int i = 0; i < 6; i++)
      dp[i] *= relax;
    double W[4][4], Wi[4][4];
    matrix_rad(dp, dp + 3, ref->c, W);
    if (rg_inv4(W, Wi)) return -1;
    mul4(T, Wi, T);
    for (int i = 0; i < 6; i++)
      if (!isfinite(dp[i])) return -1;
    double step = fabs(dp[0]) + fabs(dp[1]) + fabs(dp[2]) + 50 * (fabs(dp[3]) + fabs(dp[4]) + fabs(dp[5]));
    if (step < tol) return it + 1;
    if (!(step < 0.9 * last)) {
      if (stall && step > RG_STALL_STEP) return GN_STALLED;
      relax *= 0.5;
    }
    last = step;
  }
  return it;
}

static int is_identity(double T[4][4]) {
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++)
      if (T[i][j] != (i == j)) return 0;
  return 1;
}

int rg_estimate(rg_ref *ref, const float *mov, double T[4][4], int max_iter, double tol_mm) {
  /* Online, the previous volume's estimate is a few tenths of a mm away:
   * the full-resolution level alone converges from there (AFNI 3dvolreg's
   * single pass), however many iterations the tolerance takes. Only if it
   * stalls far from the optimum (the start is outside its capture range) or
   * runs out of iterations is the coarse-to-fine path taken, from the same
   * start. (It used to give up after 12 iterations and start over: a third
   * of the volumes of a slow head drift did, which made the latency tail.) */
  double T0[4][4];
  memcpy(T0, T, sizeof T0);
  if (!is_identity(T)) {
    int b = gn_level(ref, &ref->lev[1], mov, T, max_iter, tol_mm, 1);
    if (b > 0 && b < max_iter) return b;
    memcpy(T, T0, sizeof T0);
  }
  ref->coarse_runs++;
  const int64_t *d = ref->dims;
  size_t V = (size_t)(d[0] * d[1] * d[2]);
  float *sm = ref->lev[0].smooth;
  memcpy(sm, mov, V * sizeof *sm);
  const double s3[3] = {ref->sigma_vox, ref->sigma_vox, ref->sigma_vox};
  rg_smooth(sm, d, s3, ref->scratch);
  /* the coarse level only has to land in the fine level's capture range */
  int a = gn_level(ref, &ref->lev[0], sm, T, max_iter, fmax(tol_mm * 10, 0.01), 0);
  if (a < 0) return -1;
  int b = gn_level(ref, &ref->lev[1], mov, T, max_iter, tol_mm, 0);
  return b < 0 ? -1 : a + b;
}

void rg_resample(const float *mov, const int64_t d[3], double A[4][4], double Ainv[4][4], double T[4][4],
                 float *out) {
  double M[4][4], AT[4][4];
  mul4(T, A, AT);
  mul4(Ainv, AT, M);
  const int fast = d[0] >= 2 && d[1] >= 2 && d[2] >= 2;
  const double hx = (double)(d[0] - 1), hy = (double)(d[1] - 1), hz = (double)(d[2] - 1);
  const size_t sx = (size_t)(d[1] * d[2]), sy = (size_t)d[2];
  for (int64_t x = 0; x < d[0]; x++)
    for (int64_t y = 0; y < d[1]; y++) {
      double bx = M[0][0] * (double)x + M[0][1] * (double)y + M[0][3];
      double by = M[1][0] * (double)x + M[1][1] * (double)y + M[1][3];
      double bz = M[2][0] * (double)x + M[2][1] * (double)y + M[2][3];
      float *o = out + cidx(d, x, y, 0);
      for (int64_t z = 0; z < d[2]; z++) {
        double vx = bx + M[0][2] * (double)z, vy = by + M[1][2] * (double)z, vz = bz + M[2][2] * (double)z;
        if (!fast) {
          o[z] = rg_trilinear(mov, d, vx, vy, vz);
          continue;
        }
        if (!(vx >= 0 && vx <= hx && vy >= 0 && vy <= hy && vz >= 0 && vz <= hz)) {
          o[z] = 0;
          continue;
        }
        int64_t i = (int64_t)vx, j = (int64_t)vy, k = (int64_t)vz;
        if (i > d[0] - 2) i = d[0] - 2;
        if (j > d[1] - 2) j = d[1] - 2;
        if (k > d[2] - 2) k = d[2] - 2;
        const double fx = vx - (double)i, fy = vy - (double)j, fz = vz - (double)k;
        const float *p = mov + (size_t)i * sx + (size_t)j * sy + (size_t)k;
        double c00 = p[0] + fz * (p[1] - p[0]), c01 = p[sy] + fz * (p[sy + 1] - p[sy]);
        double c10 = p[sx] + fz * (p[sx + 1] - p[sx]), c11 = p[sx + sy] + fz * (p[sx + sy + 1] - p[sx + sy]);
        double c0 = c00 + fy * (c01 - c00), c1 = c10 + fy * (c11 - c10);
        o[z] = (float)(c0 + fx * (c1 - c0));
      }
    }
}
