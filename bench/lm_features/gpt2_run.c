/*
 * gpt2_run.c — times gpt2_forward() (plugins/lm_features/gpt2_model.c) on
 * one window of T random tokens through every block and ln_f, best of R
 * runs, and writes the last hidden state to OUT.npy for the comparison.
 *   gpt2_run MODEL_DIR T R OUT.npy   ->  "best_wall_s cpu_s_of_best"
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "gpt2_model.h"
#include "myelin/npy.h"

static double now(clockid_t c) {
  struct timespec ts;
  clock_gettime(c, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc != 5) return fprintf(stderr, "usage: gpt2_run MODEL_DIR T R OUT.npy\n"), 2;
  char err[1024];
  gpt2_model m;
  if (gpt2_load(argv[1], &m, err, sizeof err) != 0) return fprintf(stderr, "%s\n", err), 1;
  size_t T = (size_t)atol(argv[2]), C = (size_t)m.c.n_embd;
  int R = atoi(argv[3]), last = m.c.n_layer;
  gpt2_work w;
  int32_t *tok = malloc(T * sizeof *tok);
  float *out = malloc(T * C * sizeof *out);
  if (!tok || !out || gpt2_work_init(&w, &m.c, T) != 0) return fprintf(stderr, "out of memory\n"), 1;
  unsigned long long s = 1;
  for (size_t t = 0; t < T; t++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    tok[t] = (int32_t)((s >> 33) % (unsigned long long)m.c.n_vocab);
  }
  double best = 1e30, best_cpu = 0;
  for (int r = 0; r < R; r++) {
    double w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
    if (gpt2_forward(&m, &w, tok, T, &last, 1, out, err, sizeof err) != 0) return fprintf(stderr, "%s\n", err), 1;
    double dw = now(CLOCK_MONOTONIC) - w0, dc = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
    if (dw < best) best = dw, best_cpu = dc;
  }
  int64_t shape[2] = {(int64_t)T, (int64_t)C};
  if (myelin_npy_write(argv[4], MYELIN_F4, 2, shape, out, err, sizeof err) != 0) return fprintf(stderr, "%s\n", err), 1;
  printf("%.4f %.4f\n", best, best_cpu);
  gpt2_work_free(&w);
  gpt2_free(&m);
  free(tok), free(out);
  return 0;
}
