/*
 * cifti_load.c — bench/cifti driver: decodes a CIFTI-2 file into [rows, cols]
 * float32 (C order) with plugins/fmri_source/cifti.c, REPEATS times; prints
 * the best wall time in seconds, and writes the matrix of the last decode
 * to OUT (raw float32) for the bit-exact check against nibabel.
 * usage: cifti_load FILE REPEATS OUT
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cifti.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: cifti_load FILE REPEATS OUT\n");
    return 2;
  }
  int reps = atoi(argv[2]);
  double best = 1e300;
  cifti_file c;
  char err[1024];
  for (int i = 0; i < reps; i++) {
    double t0 = now();
    if (cifti_read_file(argv[1], &c, err, sizeof err)) {
      fprintf(stderr, "%s\n", err);
      return 1;
    }
    double dt = now() - t0;
    if (dt < best) best = dt;
    if (i + 1 < reps) cifti_free(&c);
  }
  FILE *f = fopen(argv[3], "wb");
  if (!f || fwrite(c.data, sizeof(float), c.rows * c.cols, f) != c.rows * c.cols) return 1;
  fclose(f);
  printf("%.6f %zu %zu\n", best, c.rows, c.cols);
  cifti_free(&c);
  return 0;
}
