/*
 * isc_driver.c — times the ISC kernels for bench/isc.sh.
 *
 *   isc_driver DIR S T V THREADS REPS
 *
 * Reads DIR/data.f32 (float32 [S, T, V], as S run tensors), runs leave-one-out
 * ISC + the Fisher-z mean REPS times, prints the best wall time and the peak
 * memory above the loaded input (VmHWM after resetting it through
 * /proc/self/clear_refs), and writes DIR/ours_mean.f64 for the diff.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "isc_kernels.h"

static long status_kb(const char *key) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long v = 0;
  size_t n = strlen(key);
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, key, n) && line[n] == ':') v = atol(line + n + 1);
  if (f) fclose(f);
  return v;
}

static void reset_peak(void) {
  FILE *f = fopen("/proc/self/clear_refs", "w");
  if (f) {
    fputs("5", f);
    fclose(f);
  }
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: %s DIR S T V THREADS REPS\n", argv[0]);
    return 2;
  }
  const char *dir = argv[1];
  size_t S = strtoul(argv[2], NULL, 10), T = strtoul(argv[3], NULL, 10), V = strtoul(argv[4], NULL, 10);
  int threads = atoi(argv[5]), reps = atoi(argv[6]);
  char path[4096];
  snprintf(path, sizeof path, "%s/data.f32", dir);
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    return 1;
  }
  float *data = malloc(S * T * V * sizeof *data);
  if (!data || fread(data, sizeof *data, S * T * V, f) != S * T * V) {
    fprintf(stderr, "%s: short read\n", path);
    return 1;
  }
  fclose(f);
  const void **x = malloc(S * sizeof *x);
  for (size_t s = 0; s < S; s++) x[s] = data + s * T * V;
  isc_data d = {.x = x, .f64 = 0, .S = S, .T = T, .V = V};
  long base = status_kb("VmRSS");
  reset_peak();
  double best = 1e30, *iscs = NULL, *mean = NULL;
  for (int r = 0; r < reps; r++) {
    double t0 = now();
    iscs = malloc(S * V * sizeof *iscs);
    mean = malloc(V * sizeof *mean);
    if (!iscs || !mean || isc_loo(&d, (isc_nan_policy){1, -1}, threads, iscs) != 0) return 1;
    isc_summarize(iscs, S, V, ISC_SUMMARY_MEAN, mean);
    double sec = now() - t0;
    if (sec < best) best = sec;
    if (r + 1 < reps) {
      free(iscs);
      free(mean);
    }
  }
  long peak = status_kb("VmHWM");
  snprintf(path, sizeof path, "%s/ours_mean.f64", dir);
  f = fopen(path, "wb");
  if (!f || fwrite(mean, sizeof *mean, V, f) != V) return 1;
  fclose(f);
  printf("ours_seconds %.4f\n", best);
  printf("ours_extra_bytes %ld\n", (peak > base ? peak - base : 0) * 1024);
  free(iscs);
  free(mean);
  free(x);
  free(data);
  return 0;
}
