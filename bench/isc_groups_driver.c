/*
 * isc_groups_driver.c — times isc_permutation_groups (the two-sample ISC
 * permutation test) on the ISCs and label shuffles bench/isc_groups_peer.py
 * wrote as raw files, and writes p and the observed difference back for
 * comparison with numpy. Best of `reps` runs (bench/isc_groups.sh passes 1
 * and takes the median over separate processes, as for numpy).
 *
 *   isc_groups_driver DIR KIND(mean|median) SIDE(right|left|two-sided) THREADS REPS
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "isc_kernels.h"

static void *slurp(const char *dir, const char *name, size_t bytes) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "rb");
  void *buf = malloc(bytes ? bytes : 1);
  if (!f || !buf || fread(buf, 1, bytes, f) != bytes) {
    fprintf(stderr, "isc_groups_driver: cannot read %zu bytes from %s\n", bytes, path);
    exit(1);
  }
  fclose(f);
  return buf;
}

static void spill(const char *dir, const char *name, const void *buf, size_t bytes) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(buf, 1, bytes, f) != bytes) {
    fprintf(stderr, "isc_groups_driver: cannot write %s\n", path);
    exit(1);
  }
  fclose(f);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s DIR mean|median right|left|two-sided THREADS REPS\n", argv[0]);
    return 2;
  }
  const char *dir = argv[1];
  char meta[4096];
  snprintf(meta, sizeof meta, "%s/meta.txt", dir);
  FILE *f = fopen(meta, "r");
  size_t S, V, N, rows;
  int pairwise;
  if (!f || fscanf(f, "%zu %zu %zu %d %zu", &S, &V, &N, &pairwise, &rows) != 5) return 1;
  fclose(f);
  isc_summary_kind kind = strcmp(argv[2], "median") ? ISC_SUMMARY_MEAN : ISC_SUMMARY_MEDIAN;
  isc_side side = !strcmp(argv[3], "left") ? ISC_SIDE_LEFT : !strcmp(argv[3], "two-sided") ? ISC_SIDE_TWO : ISC_SIDE_RIGHT;
  int threads = atoi(argv[4]), reps = atoi(argv[5]);
  double *iscs = slurp(dir, "iscs.bin", rows * V * sizeof *iscs);
  uint8_t *groups = slurp(dir, "groups.bin", S), *draws = slurp(dir, "draws.bin", N * S);
  double *obs = malloc(V * sizeof *obs), *p = malloc(V * sizeof *p), best = 1e30;
  for (int r = 0; r < reps; r++) {
    double t0 = now();
    int rc = isc_permutation_groups(iscs, S, V, pairwise, kind, groups, draws, N, 0, side, threads, obs, p, NULL);
    double t = now() - t0;
    if (rc) {
      fprintf(stderr, "isc_permutation_groups failed: %d\n", rc);
      return 1;
    }
    if (t < best) best = t;
  }
  spill(dir, "our_p.bin", p, V * sizeof *p);
  spill(dir, "our_obs.bin", obs, V * sizeof *obs);
  printf("ours_seconds %.3f\n", best);
  free(iscs);
  free(groups);
  free(draws);
  free(obs);
  free(p);
  return 0;
}
