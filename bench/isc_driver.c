/*
 * isc_driver.c — times the ISC kernels for bench/isc.sh.
 *
 *   isc_driver DIR S T V THREADS REPS
 *
 * Reads DIR/data.f32 (float32 [S, T, V], as S run tensors), runs leave-one-out
 * ISC + the Fisher-z mean REPS times, prints the best wall time (bench/isc.sh
 * passes REPS=1 and takes the median over separate processes) and the peak
 * memory above the loaded input (VmHWM after resetting it through
 * /proc/self/clear_refs), and writes DIR/ours_mean.f64 for the diff. Then
 * times streaming: one isc_stream_add per TR (S volumes) over 50 TRs, and
 * one isc_stream_result (what an emitted map costs).
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

  /* Streaming: per-TR updates of every subject's leave-one-out accumulators
   * (the volumes are converted to float64 as the stage does). */
  size_t ntr = T < 50 ? T : 50;
  isc_stream st;
  double *vbuf = malloc(S * V * sizeof *vbuf);
  const double **vol = malloc(S * sizeof *vol);
  if (!vbuf || !vol || isc_stream_init(&st, S, V, 0) != 0) return 1;
  for (size_t s = 0; s < S; s++) vol[s] = vbuf + s * V;
  double t0 = now();
  for (size_t t = 0; t < ntr; t++) {
    for (size_t s = 0; s < S; s++)
      for (size_t v = 0; v < V; v++) vbuf[s * V + v] = data[s * T * V + t * V + v];
    isc_stream_add(&st, vol);
  }
  double per_tr = (now() - t0) / (double)ntr;
  t0 = now();
  isc_stream_result(&st, (isc_nan_policy){1, -1}, iscs);
  double result = now() - t0;
  isc_stream_free(&st);
  free(vbuf);
  free(vol);
  snprintf(path, sizeof path, "%s/ours_mean.f64", dir);
  f = fopen(path, "wb");
  if (!f || fwrite(mean, sizeof *mean, V, f) != V) return 1;
  fclose(f);
  printf("ours_seconds %.4f\n", best);
  printf("ours_extra_bytes %ld\n", (peak > base ? peak - base : 0) * 1024);
  printf("stream_ms_per_tr %.2f\n", 1e3 * per_tr);
  printf("stream_result_ms %.2f\n", 1e3 * result);
  free(iscs);
  free(mean);
  free(x);
  free(data);
  return 0;
}
