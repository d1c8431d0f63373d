/*
 * info_content_driver.c — times the info_content kernels on the benchmark
 * data written by info_content_peer.py (raw little-endian float64 files):
 *   A.bin [N, N], X.bin [M, N] states, R.bin [Tref, N] reference series.
 * Writes energy.bin [M] (the paper's mean u^2) and kde.bin [M, N]
 * (surprisal in nats), and prints "name wall_seconds cpu_seconds" per phase.
 *
 *   info_content_driver DIR N M TREF
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "ic_kernels.h"

static double clock_s(clockid_t id) {
  struct timespec t;
  clock_gettime(id, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}
static double now(void) { return clock_s(CLOCK_MONOTONIC); }
static double cpu(void) { return clock_s(CLOCK_PROCESS_CPUTIME_ID); }

static double *load(const char *dir, const char *name, size_t count) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "rb");
  double *x = malloc(count * sizeof *x);
  if (!f || !x || fread(x, sizeof *x, count, f) != count) {
    fprintf(stderr, "cannot read %zu doubles from %s\n", count, path);
    exit(2);
  }
  fclose(f);
  return x;
}

static void save(const char *dir, const char *name, const double *x, size_t count) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(x, sizeof *x, count, f) != count) {
    fprintf(stderr, "cannot write %s\n", path);
    exit(2);
  }
  fclose(f);
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s DIR N M TREF\n", argv[0]);
    return 2;
  }
  const char *dir = argv[1];
  int n = atoi(argv[2]);
  size_t m = (size_t)atol(argv[3]), tr = (size_t)atol(argv[4]);
  double *A = load(dir, "A.bin", (size_t)n * n), *X = load(dir, "X.bin", m * n);
  double *R = load(dir, "R.bin", tr * n);

  /* energy: prepare, one eigendecomposition, one GEMM */
  double t0 = now(), c0 = cpu();
  double *w = malloc(n * sizeof *w), *V = malloc((size_t)n * n * sizeof *V), *lam = malloc(n * sizeof *lam);
  double *q = malloc(3 * (size_t)n * sizeof *q), *Y = malloc(m * n * sizeof *Y), *E = malloc(m * sizeof *E);
  ic_prepare_weninger(n, A);
  if (ic_eigh(n, A, w, V) != 0) return 1;
  double s = ic_scale_weninger(w, n, 0.001);
  for (int k = 0; k < n; k++) lam[k] = w[k] / s - 1.0;
  ic_quad_weninger(lam, n, 10.0, 1000, q);
  double t1 = now(), c1 = cpu();
  ic_energy_states(n, V, q, X, m, 0, Y, E);
  double t2 = now(), c2 = cpu();
  printf("energy_decompose %.6f %.6f\nenergy_states %.6f %.6f\n", t1 - t0, c1 - c0, t2 - t1, c2 - c1);
  save(dir, "energy.bin", E, m);

  /* KDE: per parcel sort + bandwidth, then every state */
  double *ref = malloc(tr * sizeof *ref), *x = malloc(m * sizeof *x), *out = malloc(m * sizeof *out);
  double *work = malloc(tr * sizeof *work), *K = malloc(m * n * sizeof *K);
  double t3 = now(), c3 = cpu();
  for (int k = 0; k < n; k++) {
    for (size_t i = 0; i < tr; i++) ref[i] = R[i * n + k];
    double h = ic_silverman(ref, tr);
    ic_sort(ref, tr);
    for (size_t i = 0; i < m; i++) x[i] = X[i * n + k];
    ic_kde_surprisal(ref, tr, h, x, m, out, work);
    for (size_t i = 0; i < m; i++) K[i * n + k] = out[i];
  }
  double t4 = now(), c4 = cpu();
  printf("kde %.6f %.6f\n", t4 - t3, c4 - c3);
  save(dir, "kde.bin", K, m * n);
  return 0;
}
