/*
 * bench/biograd/fmnist.c — bench driver for bench/biograd.sh: Fashion-MNIST
 * (Debian's dataset-fashion-mnist IDX files) trained either by BioGrad on
 * rate-coded spikes or, as the yardstick, by exact backprop on the
 * rate-equivalent network of the same architecture (same neuron, same loss,
 * same per-sample SGD, inputs = the spike probabilities the encoder uses).
 *
 *   fmnist MODE DIR HIDDEN EPOCHS LIMIT LR LR_OUT THREADS [STEPS] [SLEEP_EVERY]
 *     MODE  biograd | backprop      HIDDEN  "500" or "500,500"
 *     LIMIT train samples per epoch (0 = all 60000)
 *     LR, LR_OUT  hidden and output learning rates (per sample); hidden layers
 *           fed by a hidden layer learn at LR * $LR_DEEP (default 1, the
 *           plugin's lr_deep), in both modes; layers with a bias: $BIAS
 *           (all | output | none; default output, the plugin's bias)
 *
 * Prints one line per epoch: test accuracy, training samples/s, wall time.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "biograd_kernels.h"

static uint8_t *read_gz(const char *path, size_t *len) {
  gzFile f = gzopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 1 << 24, n = 0;
  uint8_t *buf = malloc(cap);
  int k;
  while (buf && (k = gzread(f, buf + n, (unsigned)(cap - n))) > 0) {
    n += (size_t)k;
    if (n == cap) buf = realloc(buf, cap *= 2);
  }
  gzclose(f);
  *len = n;
  return buf;
}

static int load(const char *dir, const char *img, const char *lab, float **x, int **y) {
  char p1[1024], p2[1024];
  snprintf(p1, sizeof p1, "%s/%s", dir, img);
  snprintf(p2, sizeof p2, "%s/%s", dir, lab);
  size_t n1, n2;
  uint8_t *a = read_gz(p1, &n1), *b = read_gz(p2, &n2);
  if (!a || !b || n1 < 16 || n2 < 8) {
    fprintf(stderr, "cannot read %s / %s\n", p1, p2);
    exit(2);
  }
  int count = (int)n2 - 8;
  *x = malloc(sizeof(float) * 784 * (size_t)count);
  *y = malloc(sizeof(int) * (size_t)count);
  for (size_t i = 0; i < 784 * (size_t)count; i++)
    (*x)[i] = a[16 + i] / 255.0f;
  for (int i = 0; i < count; i++)
    (*y)[i] = b[8 + i];
  free(a), free(b);
  return count;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void encode(const float *x, int n, int T, uint64_t rng[4], uint32_t *ptr, uint32_t *unit) {
  uint32_t k = 0;
  for (int t = 0; t < T; t++) {
    ptr[t] = k;
    for (int j = 0; j < n; j++)
      if (x[j] > 0 && bg_rng_uniform(rng) < x[j]) unit[k++] = (uint32_t)j;
  }
  ptr[T] = k;
}

int main(int argc, char **argv) {
  if (argc < 9) {
    fprintf(stderr,
            "usage: %s biograd|backprop DIR HIDDEN EPOCHS LIMIT LR LR_OUT THREADS [STEPS] [SLEEP_EVERY]\n",
            argv[0]);
    return 2;
  }
  int bp = strcmp(argv[1], "backprop") == 0, epochs = atoi(argv[4]), limit = atoi(argv[5]);
  int T = argc > 9 ? atoi(argv[9]) : 32, sleep_every = argc > 10 ? atoi(argv[10]) : 1000;
  bg_config c = {.steps = T,
                 .vth = 0.5f,
                 .cdecay = 0.5f,
                 .vdecay = 0.75f,
                 .lr = (float)atof(argv[6]),
                 .lr_out = (float)atof(argv[7]),
                 .feedback_lr = 0.5f,
                 .sleep_steps = 256,
                 .sleep_rate = 0.2f,
                 .threads = atoi(argv[8]),
                 .seed = 1};
  c.lr_deep = getenv("LR_DEEP") ? (float)atof(getenv("LR_DEEP")) : 1.0f; /* the plugin's lr_deep */
  if (getenv("BIAS")) /* the plugin's bias: all | output | none */
    c.bias = strcmp(getenv("BIAS"), "none") == 0  ? BG_BIAS_NONE
             : strcmp(getenv("BIAS"), "all") == 0 ? BG_BIAS_ALL
                                                  : BG_BIAS_OUTPUT;
  else
    c.bias = BG_BIAS_OUTPUT;
  c.sizes[0] = 784;
  char *h = strdup(argv[3]);
  for (char *tok = strtok(h, ","); tok; tok = strtok(NULL, ","))
    c.sizes[++c.nlayers] = atoi(tok);
  c.sizes[++c.nlayers] = 10;
  free(h);
  float *xtr, *xte;
  int *ytr, *yte;
  int ntr = load(argv[2], "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", &xtr, &ytr);
  int nte = load(argv[2], "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", &xte, &yte);
  if (limit > 0 && limit < ntr) ntr = limit;
  char err[256];
  bg_net *net = bg_net_new(&c, err, sizeof err);
  if (!net) return fprintf(stderr, "%s\n", err), 1;
  float *wt[BG_MAX_LAYERS], *b[BG_MAX_LAYERS];
  for (int l = 0; l < c.nlayers; l++)
    wt[l] = bg_weight_t(net, l), b[l] = bg_bias(net, l);
  uint64_t rng[4];
  bg_rng_seed(rng, 42);
  int *order = malloc(sizeof(int) * (size_t)ntr);
  uint32_t *ptr = malloc(sizeof(uint32_t) * (size_t)(T + 1)),
           *unit = malloc(sizeof(uint32_t) * 784 * (size_t)T);
  double wall0 = now_s();
  long seen = 0;
  for (int ep = 0; ep < epochs; ep++) {
    for (int i = 0; i < ntr; i++)
      order[i] = i;
    for (int i = ntr - 1; i > 0; i--) {
      int j = (int)(bg_rng_next(rng) % (uint64_t)(i + 1)), t = order[i];
      order[i] = order[j], order[j] = t;
    }
    double t0 = now_s(), train_s = 0;
    int correct = 0;
    for (int i = 0; i < ntr; i++) {
      const float *x = xtr + 784 * (size_t)order[i];
      int y = ytr[order[i]];
      if (bp) {
        correct += bg_rate_grad(&c, wt, b, x, &y, 1, 1.0f, wt, b);
      } else {
        encode(x, 784, T, rng, ptr, unit); /* encoding is the spike_encoder's job: not timed */
        double s0 = now_s();
        bg_raster r = {784, T, ptr, unit};
        correct += bg_sample(net, &r, y, 1) == y;
        if (sleep_every > 0 && ++seen % sleep_every == 0) bg_sleep(net);
        train_s += now_s() - s0;
      }
    }
    if (bp) train_s = now_s() - t0;
    if (getenv("LR_DECAY")) { /* the plugin's lr_decay: rates x LR_DECAY after each epoch */
      float f = (float)atof(getenv("LR_DECAY"));
      c.lr *= f, c.lr_out *= f;
      bg_set_rates(net, c.lr, c.lr_out);
    }
    int tc = 0;
    if (bp) {
      tc = bg_rate_grad(&c, wt, b, xte, yte, nte, 0, NULL, NULL);
    } else {
      for (int i = 0; i < nte; i++) {
        encode(xte + 784 * (size_t)i, 784, T, rng, ptr, unit);
        bg_raster r = {784, T, ptr, unit};
        tc += bg_sample(net, &r, -1, 0) == yte[i];
      }
    }
    printf("%s %s epoch %d train_acc %.4f test_acc %.4f samples_per_s %.0f wall_s %.1f", argv[1], argv[3],
           ep + 1, (double)correct / ntr, (double)tc / nte, ntr / train_s, now_s() - wall0);
    if (!bp && c.nlayers > 1) printf(" feedback_angle %.1f", bg_feedback_angle(net, c.nlayers - 2));
    printf("\n");
    fflush(stdout);
  }
  bg_net_free(net);
  return 0;
}
