/*
 * spike_encoder_kernel.c — benchmark driver for the rate-coding kernel
 * (plugins/spike_encoder/encode.c), built and run by bench/spike_encoder.sh.
 *
 * Loads an IDX image file (.gz through zlib), scales pixels by 1/255 and
 * rate-encodes every image at STEPS steps with THREADS pthreads, each thread
 * taking a contiguous block of images with its own scratch and event buffer
 * (events are counted, then the buffer is reused, as a stage would after
 * building its message). Prints one line: images, wall seconds, images/s,
 * CPU seconds (all threads; on a shared machine wall time also counts time
 * spent waiting for a core), and the mean spike count per image (so a peer's figure can be checked for the same
 * work).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "encode.h"

typedef struct job {
  const float *x;
  size_t first, count, n;
  unsigned steps;
  unsigned long long events;
} job;

static void *run_job(void *arg) {
  job *j = arg;
  spk_rate_scratch s = {0};
  spk_events ev = {0};
  for (size_t i = j->first; i < j->first + j->count; i++) {
    ev.n = 0;
    spk_rate(j->x + i * j->n, j->n, j->steps, 1.0, spk_key(1, 0, i), &s, &ev);
    j->events += ev.n;
  }
  spk_events_free(&ev);
  spk_rate_scratch_free(&s);
  return NULL;
}

static unsigned char *load_idx(const char *path, size_t *count, size_t *n) {
  gzFile g = gzopen(path, "rb");
  if (!g) return NULL;
  unsigned char h[16];
  if (gzread(g, h, 16) != 16 || h[2] != 8 || h[3] != 3) { gzclose(g); return NULL; }
  *count = (size_t)h[4] << 24 | h[5] << 16 | h[6] << 8 | h[7];
  *n = (size_t)(h[8] << 24 | h[9] << 16 | h[10] << 8 | h[11]) * (size_t)(h[12] << 24 | h[13] << 16 | h[14] << 8 | h[15]);
  unsigned char *px = malloc(*count * *n);
  if (px && gzread(g, px, (unsigned)(*count * *n)) != (int)(*count * *n)) { free(px); px = NULL; }
  gzclose(g);
  return px;
}

int main(int argc, char **argv) {
  if (argc < 4) { fprintf(stderr, "usage: %s IMAGES.idx3.gz STEPS THREADS [COUNT]\n", argv[0]); return 2; }
  size_t count, n;
  unsigned char *px = load_idx(argv[1], &count, &n);
  if (!px) { fprintf(stderr, "%s: cannot read IDX images\n", argv[1]); return 1; }
  if (argc > 4 && strtoul(argv[4], NULL, 10) < count) count = strtoul(argv[4], NULL, 10); /* the first COUNT */
  unsigned steps = (unsigned)atoi(argv[2]);
  int threads = atoi(argv[3]);
  if (threads < 1 || threads > 64) threads = 1;
  float *x = malloc(count * n * sizeof *x);
  for (size_t i = 0; i < count * n; i++) x[i] = px[i] * (1.0f / 255.0f);
  free(px);
  job jobs[64];
  pthread_t tid[64];
  struct timespec a, b, ca, cb;
  clock_gettime(CLOCK_MONOTONIC, &a);
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ca);
  for (int t = 0; t < threads; t++) {
    jobs[t] = (job){x, count * t / threads, count * (t + 1) / threads - count * t / threads, n, steps, 0};
    pthread_create(&tid[t], NULL, run_job, &jobs[t]);
  }
  unsigned long long events = 0;
  for (int t = 0; t < threads; t++) {
    pthread_join(tid[t], NULL);
    events += jobs[t].events;
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cb);
  double sec = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9;
  double cpu = (double)(cb.tv_sec - ca.tv_sec) + (double)(cb.tv_nsec - ca.tv_nsec) * 1e-9;
  printf("kernel  threads=%d images=%zu steps=%u seconds=%.3f images_per_s=%.0f cpu_seconds=%.3f "
         "images_per_cpu_s=%.0f spikes_per_image=%.1f\n",
         threads, count, steps, sec, (double)count / sec, cpu, (double)count / cpu,
         (double)events / (double)count);
  free(x);
  return 0;
}
