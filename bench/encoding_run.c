/*
 * encoding_run.c — benchmark driver for the ridge encoding kernel
 * (plugins/encoding/ridge.c), built and run by bench/encoding.sh.
 *
 * Usage: encoding_run DIR T P V [BLOCK [PATH]]   (PATH: auto or direct)
 * Reads DIR/X.f8 (float64 [T, P]) and DIR/Y.f4 (float32 [T, V]), runs
 * ridge_encode with the plugin's defaults (5 contiguous folds, z-scored X,
 * alphas logspace(-1, 8, 10), one alpha per voxel by exact leave-one-out)
 * and writes DIR/r_ours.f8 [5, V] and DIR/alpha_ours.i4 [5, V]. Prints the
 * wall-clock and CPU seconds (all threads) spent in ridge_encode, file
 * reading excluded, as for the peer, then the wall seconds and flops of its
 * per-alpha phase (ridge_stats: leave-one-out errors and held-out
 * predictions, after each fold's decomposition).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ridge.h"

static void *load(const char *dir, const char *name, size_t bytes) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "rb");
  void *p = malloc(bytes);
  if (!f || !p || fread(p, 1, bytes, f) != bytes) {
    fprintf(stderr, "encoding_run: cannot read %zu bytes from %s\n", bytes, path);
    exit(1);
  }
  fclose(f);
  return p;
}

static void save(const char *dir, const char *name, const void *p, size_t bytes) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(p, 1, bytes, f) != bytes) {
    fprintf(stderr, "encoding_run: cannot write %s\n", path);
    exit(1);
  }
  fclose(f);
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: encoding_run DIR T P V [BLOCK]\n");
    return 2;
  }
  const char *dir = argv[1];
  size_t T = strtoull(argv[2], NULL, 10), P = strtoull(argv[3], NULL, 10);
  size_t V = strtoull(argv[4], NULL, 10), block = argc > 5 ? strtoull(argv[5], NULL, 10) : 2048;
  int direct = argc > 6 && !strcmp(argv[6], "direct");
  double *X = load(dir, "X.f8", T * P * sizeof(double));
  float *Y = load(dir, "Y.f4", T * V * sizeof(float));
  double alphas[10];
  for (int a = 0; a < 10; a++)
    alphas[a] = 0.1;
  for (int a = 1; a < 10; a++)
    alphas[a] = alphas[a - 1] * 10;
  ridge_opts o = {.alphas = alphas,
                  .n_alphas = 10,
                  .alpha_per_target = 1,
                  .inner = 0,
                  .folds = 5,
                  .standardize = 1,
                  .scale_y = RIDGE_SCALE_NONE,
                  .intercept = 1,
                  .block = block,
                  .path = direct ? RIDGE_PATH_DIRECT : RIDGE_PATH_AUTO};
  ridge_stats st = {0};
  o.stats = &st;
  double *r = malloc(5 * V * sizeof *r);
  int *idx = malloc(5 * V * sizeof *idx);
  char err[256];
  struct timespec t0, t1;
  clock_t c0 = clock();
  clock_gettime(CLOCK_MONOTONIC, &t0);
  if (ridge_encode(X, T, P, Y, V, V, &o, r, idx, err, sizeof err) != 0) {
    fprintf(stderr, "encoding_run: %s\n", err);
    return 1;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double cpu = (double)(clock() - c0) / CLOCKS_PER_SEC;
  save(dir, "r_ours.f8", r, 5 * V * sizeof *r);
  save(dir, "alpha_ours.i4", idx, 5 * V * sizeof *idx);
  printf("%.3f %.3f %.3f %.6g\n", (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec),
         cpu, st.seconds, st.flops);
  free(X), free(Y), free(r), free(idx);
  return 0;
}
