/*
 * bench/loihi_run.c — loihi_sim's kernel throughput on a netx file.
 *
 * Loads N Fashion-MNIST test images, encodes them with the netx MNIST
 * tutorial's deterministic integrate-and-fire encoder (v += x/255, spike when
 * v > 1, then v = 0; what spike_encoder method: regular does), then times
 * loihi_sim_sample() over all samples — encoding excluded — on 1 thread and
 * on `threads` threads (one simulator per thread, samples split in blocks).
 * Writes the predictions to OUT (int32 per sample) so the peer can check it
 * gets the same ones, and prints one line of key=value figures.
 *
 * usage: loihi_run NET.net IMAGES.gz LABELS.gz N STEPS THREADS OUT
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "loihi.h"

typedef struct sample {
  uint32_t *step, *unit;
  size_t n;
  int label;
} sample;

typedef struct job {
  const loihi_net *net;
  const sample *s;
  int lo, hi, steps;
  int32_t *pred;
  uint64_t spikes, synops;
  double cpu; /* thread CPU seconds */
} job;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint8_t *gz(const char *path, size_t skip, size_t n) {
  gzFile g = gzopen(path, "rb");
  if (!g) return NULL;
  uint8_t hdr[16], *buf = malloc(n);
  int ok = gzread(g, hdr, (unsigned)skip) == (int)skip && gzread(g, buf, (unsigned)n) == (int)n;
  gzclose(g);
  if (!ok) free(buf);
  return ok ? buf : NULL;
}

static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *run(void *arg) {
  job *j = arg;
  double c0 = cpu_now();
  loihi_sim sim;
  char err[256];
  if (loihi_sim_init(&sim, j->net, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    exit(1);
  }
  int32_t counts[4096];
  for (int i = j->lo; i < j->hi; i++) {
    if (loihi_sim_sample(&sim, j->s[i].step, j->s[i].unit, j->s[i].n, j->steps, counts, err,
                         sizeof err)) {
      fprintf(stderr, "%s\n", err);
      exit(1);
    }
    j->pred[i] = loihi_argmax(counts, sim.n_out);
    j->spikes += sim.spikes;
    j->synops += sim.synops;
  }
  loihi_sim_free(&sim);
  j->cpu = cpu_now() - c0;
  return NULL;
}

static double timed(const loihi_net *net, const sample *s, int n, int steps, int threads,
                    int32_t *pred, uint64_t *spikes, uint64_t *synops, double *cpu) {
  job jobs[64];
  pthread_t tid[64];
  double t0 = now();
  for (int k = 0; k < threads; k++) {
    jobs[k] = (job){net, s, n * k / threads, n * (k + 1) / threads, steps, pred, 0, 0, 0};
    pthread_create(&tid[k], NULL, run, &jobs[k]);
  }
  *spikes = *synops = 0;
  *cpu = 0;
  for (int k = 0; k < threads; k++) {
    pthread_join(tid[k], NULL);
    *cpu += jobs[k].cpu;
    *spikes += jobs[k].spikes;
    *synops += jobs[k].synops;
  }
  return now() - t0;
}

int main(int argc, char **argv) {
  if (argc != 8) {
    fprintf(stderr, "usage: loihi_run NET IMAGES.gz LABELS.gz N STEPS THREADS OUT\n");
    return 2;
  }
  int n = atoi(argv[4]), steps = atoi(argv[5]), threads = atoi(argv[6]);
  if (threads < 1 || threads > 64 || n < 1) return 2;
  loihi_net net;
  char err[512];
  if (loihi_netx_read(argv[1], &net, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  uint8_t *img = gz(argv[2], 16, (size_t)n * 784), *lab = gz(argv[3], 8, (size_t)n);
  if (!img || !lab) {
    fprintf(stderr, "cannot read %d images from %s\n", n, argv[2]);
    return 1;
  }
  sample *s = calloc((size_t)n, sizeof *s);
  size_t events = 0;
  for (int i = 0; i < n; i++) {
    double v[784] = {0};
    s[i].step = malloc(sizeof(uint32_t) * 784 * (size_t)steps);
    s[i].unit = malloc(sizeof(uint32_t) * 784 * (size_t)steps);
    s[i].label = lab[i];
    for (int t = 0; t < steps; t++)
      for (int u = 0; u < 784; u++) {
        v[u] += img[(size_t)i * 784 + (size_t)u] / 255.0;
        if (v[u] > 1) {
          v[u] = 0;
          s[i].step[s[i].n] = (uint32_t)t;
          s[i].unit[s[i].n++] = (uint32_t)u;
        }
      }
    events += s[i].n;
  }
  int32_t *pred = malloc(sizeof(int32_t) * (size_t)n);
  uint64_t spikes, synops;
  double c1, ck;
  double t1 = timed(&net, s, n, steps, 1, pred, &spikes, &synops, &c1);
  double tk = timed(&net, s, n, steps, threads, pred, &spikes, &synops, &ck);
  int correct = 0;
  for (int i = 0; i < n; i++) correct += pred[i] == s[i].label;
  FILE *f = fopen(argv[7], "wb");
  if (!f || fwrite(pred, sizeof(int32_t), (size_t)n, f) != (size_t)n) return 1;
  fclose(f);
  printf("samples=%d input_events_per_sample=%.1f spikes_per_sample=%.1f synops_per_sample=%.0f "
         "rate_1=%.0f rate_%d=%.0f cpu_rate_per_core=%.0f accuracy=%.4f\n",
         n, (double)events / n, (double)spikes / n, (double)synops / n, n / t1, threads, n / tk,
         n / c1, (double)correct / n);
  for (int i = 0; i < n; i++) {
    free(s[i].step);
    free(s[i].unit);
  }
  free(s);
  free(pred);
  free(img);
  free(lab);
  loihi_net_free(&net);
  return 0;
}
