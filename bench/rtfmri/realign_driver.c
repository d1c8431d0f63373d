/*
 * bench/rtfmri/realign_driver.c — times plugins/realign's estimator.
 * usage: realign_driver REF.nii.gz OUTDIR N
 * Moves REF by N rigid motions (up to 3 mm / 3 deg, fixed pseudo-random,
 * made with a tricubic interpolator), writes the first 3 as OUTDIR/mK.nii
 * (and OUTDIR/ref.nii, OUTDIR/truth.txt) for the Python peer, then times
 * estimate + resample per volume, each volume starting from the identity.
 * Prints "p50_ms p99_ms max_err cpu_p50_ms" (wall-clock, then the thread's
 * CPU time, which a loaded machine inflates less; max_err: the worst
 * parameter error, mm/deg).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nifti.h"
#include "realign_kernels.h"

static int64_t D[3];
static double A[4][4];
static float *V0;

static double cw(double t, int k) {
  double t2 = t * t, t3 = t2 * t;
  return k == 0   ? -0.5 * t3 + t2 - 0.5 * t
         : k == 1 ? 1.5 * t3 - 2.5 * t2 + 1
         : k == 2 ? -1.5 * t3 + 2 * t2 + 0.5 * t
                  : 0.5 * t3 - 0.5 * t2;
}

static float cubic(double x, double y, double z) {
  if (x < 0 || y < 0 || z < 0 || x > D[0] - 1 || y > D[1] - 1 || z > D[2] - 1) return 0;
  int64_t i = (int64_t)x, j = (int64_t)y, k = (int64_t)z;
  double s = 0;
  for (int a = 0; a < 4; a++)
    for (int b = 0; b < 4; b++)
      for (int c = 0; c < 4; c++) {
        int64_t p = i + a - 1, q = j + b - 1, r = k + c - 1;
        p = p < 0 ? 0 : p >= D[0] ? D[0] - 1 : p;
        q = q < 0 ? 0 : q >= D[1] ? D[1] - 1 : q;
        r = r < 0 ? 0 : r >= D[2] ? D[2] - 1 : r;
        s += cw(x - i, a) * cw(y - j, b) * cw(z - k, c) * V0[(p * D[1] + q) * D[2] + r];
      }
  return (float)s;
}

static void write_nii(const float *v, const char *path) {
  float *f = malloc((size_t)(D[0] * D[1] * D[2]) * sizeof *f);
  for (int64_t x = 0; x < D[0]; x++)
    for (int64_t y = 0; y < D[1]; y++)
      for (int64_t z = 0; z < D[2]; z++)
        f[x + D[0] * (y + D[1] * z)] = v[(x * D[1] + y) * D[2] + z];
  const int64_t d4[4] = {D[0], D[1], D[2], 1};
  FILE *fp = fopen(path, "wb");
  char err[256];
  if (!fp || nifti_write_f32(fp, d4, &A[0][0], 0, f, 0, err, sizeof err)) exit(1);
  fclose(fp);
  free(f);
}

static int cmpd(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (argc < 4) return 2;
  char err[512], path[1024];
  nifti_reader r;
  if (nifti_open_file(&r, argv[1], err, sizeof err)) return fprintf(stderr, "%s\n", err), 1;
  for (int i = 0; i < 3; i++)
    D[i] = r.h.dim[i + 1];
  nifti_affine(&r.h, A);
  size_t n = r.h.nvox;
  V0 = malloc(n * sizeof *V0);
  if (nifti_read_volumes_c(&r, 1, NULL, n, V0, n, err, sizeof err)) return 1;
  nifti_close(&r);
  int N = atoi(argv[3]);
  rg_ref ref;
  if (rg_ref_init(&ref, V0, D, A)) return 1;
  snprintf(path, sizeof path, "%s/ref.nii", argv[2]);
  write_nii(V0, path);
  snprintf(path, sizeof path, "%s/truth.txt", argv[2]);
  FILE *truth = fopen(path, "w");
  srand(7);
  float **mv = malloc((size_t)N * sizeof *mv);
  double(*P)[6] = malloc((size_t)N * sizeof *P);
  for (int k = 0; k < N; k++) {
    for (int i = 0; i < 6; i++)
      P[k][i] = 6.0 * rand() / RAND_MAX - 3.0;
    double T[4][4], Ti[4][4], Ai[4][4];
    rg_matrix(P[k], ref.c, T);
    rg_inv4(T, Ti);
    rg_inv4(A, Ai);
    mv[k] = malloc(n * sizeof **mv);
    for (int64_t x = 0; x < D[0]; x++)
      for (int64_t y = 0; y < D[1]; y++)
        for (int64_t z = 0; z < D[2]; z++) {
          double w[4] = {0}, v[3] = {0};
          for (int a = 0; a < 3; a++)
            w[a] = A[a][0] * x + A[a][1] * y + A[a][2] * z + A[a][3];
          double u[3];
          for (int a = 0; a < 3; a++)
            u[a] = Ti[a][0] * w[0] + Ti[a][1] * w[1] + Ti[a][2] * w[2] + Ti[a][3];
          for (int a = 0; a < 3; a++)
            v[a] = Ai[a][0] * u[0] + Ai[a][1] * u[1] + Ai[a][2] * u[2] + Ai[a][3];
          mv[k][(x * D[1] + y) * D[2] + z] = cubic(v[0], v[1], v[2]);
        }
    if (k < 3) {
      snprintf(path, sizeof path, "%s/m%d.nii", argv[2], k);
      write_nii(mv[k], path);
      fprintf(truth, "%f %f %f %f %f %f\n", P[k][0], P[k][1], P[k][2], P[k][3], P[k][4], P[k][5]);
    }
  }
  fclose(truth);
  float *out = malloc(n * sizeof *out);
  double *ms = malloc((size_t)N * sizeof *ms), *cpu = malloc((size_t)N * sizeof *cpu), maxerr = 0;
  for (int k = 0; k < N; k++) {
    double T[4][4] = {{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}}, p[6];
    struct timespec a, b, ca, cb;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ca);
    clock_gettime(CLOCK_MONOTONIC, &a);
    rg_estimate(&ref, mv[k], T, 30, 1e-4);
    rg_resample(mv[k], D, A, ref.Ainv, T, out);
    clock_gettime(CLOCK_MONOTONIC, &b);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cb);
    ms[k] = 1e3 * (b.tv_sec - a.tv_sec) + 1e-6 * (b.tv_nsec - a.tv_nsec);
    cpu[k] = 1e3 * (cb.tv_sec - ca.tv_sec) + 1e-6 * (cb.tv_nsec - ca.tv_nsec);
    rg_params(T, ref.c, p);
    for (int i = 0; i < 6; i++)
      maxerr = fmax(maxerr, fabs(p[i] - P[k][i]));
  }
  qsort(ms, (size_t)N, sizeof *ms, cmpd);
  qsort(cpu, (size_t)N, sizeof *cpu, cmpd);
  printf("%.3f %.3f %.4f %.3f\n", ms[N / 2], ms[(int)(0.99 * (N - 1))], maxerr, cpu[N / 2]);
  return 0;
}
