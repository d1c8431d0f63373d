/*
 * gemm_peak.c — this machine's DGEMM and SGEMM rate through OpenBLAS, the
 * reference "peak" of bench/encoding.sh.
 *
 * Usage: gemm_peak [N [RUNS]]   (default 3000, 5)
 * Times C = A B for square N x N row-major matrices with cblas_dgemm and
 * cblas_sgemm on OpenBLAS's threads (OPENBLAS_NUM_THREADS), one warm-up
 * call each, then the median of RUNS calls. Prints
 * "DGEMM_GFLOPS SGEMM_GFLOPS THREADS CORE" (2 N^3 flops per call; CORE is the
 * kernel OpenBLAS picked for this CPU).
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  timespec_get(&t, TIME_UTC);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *t, int k) {
  qsort(t, (size_t)k, sizeof *t, cmp);
  return k % 2 ? t[k / 2] : 0.5 * (t[k / 2 - 1] + t[k / 2]);
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 3000, runs = argc > 2 ? atoi(argv[2]) : 5;
  if (n < 64 || runs < 1 || runs > 99) {
    fprintf(stderr, "usage: gemm_peak [N >= 64 [RUNS 1..99]]\n");
    return 2;
  }
  size_t nn = (size_t)n * (size_t)n;
  double *A = malloc(nn * sizeof *A), *B = malloc(nn * sizeof *B), *C = malloc(nn * sizeof *C);
  float *a = malloc(nn * sizeof *a), *b = malloc(nn * sizeof *b), *c = malloc(nn * sizeof *c);
  if (!A || !B || !C || !a || !b || !c) {
    fprintf(stderr, "gemm_peak: out of memory\n");
    return 1;
  }
  for (size_t i = 0; i < nn; i++) {
    A[i] = (double)(i % 7) * 0.125 - 0.375;
    B[i] = (double)(i % 5) * 0.25 - 0.5;
    a[i] = (float)A[i], b[i] = (float)B[i];
  }
  double t[99], flops = 2.0 * (double)n * (double)n * (double)n, gd, gs;
  for (int r = -1; r < runs; r++) {
    double t0 = now();
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, A, n, B, n, 0.0, C, n);
    if (r >= 0) t[r] = now() - t0;
  }
  gd = flops / median(t, runs) / 1e9;
  for (int r = -1; r < runs; r++) {
    double t0 = now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    if (r >= 0) t[r] = now() - t0;
  }
  gs = flops / median(t, runs) / 1e9;
  printf("%.1f %.1f %d %s\n", gd, gs, openblas_get_num_threads(), openblas_get_corename());
  free(A), free(B), free(C), free(a), free(b), free(c);
  return 0;
}
