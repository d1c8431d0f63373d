/*
 * fmri_load.c — benchmark driver for bench/fmri.sh: loads a NIfTI run into a
 * [T, V] float32 matrix (V in C order over x, y, z, as fmri_source emits it)
 * with plugins/fmri_source/nifti.c and prints the best wall time of N runs.
 *
 *   fmri_load FILE [REPEATS] [stream]   ->  "seconds T V checksum"
 * "stream" forces the zlib volume-by-volume path (default: one-shot inflate). 
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nifti.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int load(const char *path, size_t limit, size_t *T, size_t *V, double *checksum) {
  char err[512];
  nifti_reader r;
  if (nifti_open_file_ex(&r, path, limit, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  size_t nv = r.h.nvox, nt = r.h.nvols;
  float *out = malloc(nv * nt * sizeof(float));
  if (!out) return 1;
  if (nifti_read_volumes_c(&r, nt, NULL, nv, out, nv, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  nifti_close(&r);
  *checksum = out[nv * nt / 2] + out[nv * nt - 1];
  *T = nt;
  *V = nv;
  free(out);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: fmri_load FILE [REPEATS]\n");
    return 2;
  }
  int reps = argc > 2 ? atoi(argv[2]) : 3;
  size_t limit = argc > 3 && !strcmp(argv[3], "stream") ? 0 : NIFTI_WHOLE_INFLATE_LIMIT;
  double best = 1e30, sum = 0;
  size_t T = 0, V = 0;
  for (int i = 0; i < reps; i++) {
    double chk, t0 = now();
    if (load(argv[1], limit, &T, &V, &chk)) return 1;
    double dt = now() - t0;
    if (dt < best) best = dt;
    sum += chk;
  }
  printf("%.6f %zu %zu %g\n", best, T, V, sum);
  return 0;
}
