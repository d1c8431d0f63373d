/*
 * biograd_kernels.c — BioGrad: forward LIF dynamics, eligibility traces,
 * error spikes, apical feedback, online updates, sleep, and the exact
 * gradient of the rate-equivalent network.
 *
 * One sample runs in three passes:
 *
 *   1. forward   each layer in turn, all T steps, event driven: a spike of
 *                presynaptic unit j at step t adds row j of W^T into the
 *                postsynaptic input of step t. While it runs, every neuron
 *                keeps its local traces: spike count n_i (presynaptic side of
 *                the next layer's eligibility) and the number of steps its
 *                soma current sat in the surrogate window (pseudo-derivative).
 *   2. feedback  error neurons turn (label - output spike rate) into signed
 *                spike counts (exactly: T times it is an integer); apical compartments of layer
 *                l sum B_l times the error spikes of layer l+1; hidden neurons
 *                in turn emit error spikes for the layer below.
 *   3. update    W_l += lr * delta_l (x) p_{l-1}, only rows j with p_j > 0.
 *
 * The eligibility trace of synapse (i,j) is the product of its two local
 * traces, p_j * g_i: a rank-one factorisation kept as two vectors rather than
 * an n_in x n_out matrix, which is what makes the update one event-driven
 * rank-one write per sample.
 *
 * Threads split postsynaptic neurons into fixed contiguous ranges; a neuron's
 * arithmetic never depends on the split, so any thread count gives the same
 * bits. Small layers run on the calling thread.
 */
#include "biograd_kernels.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define BG_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define BG_CLONES
#endif

#define BG_PAR_MIN 128      /* layers narrower than this run on one thread */
#define BG_INIT_GAIN 0.4f   /* W ~ U(+-gain/sqrt(fan_in)) */
#define BG_ERROR_QUANTA 8   /* a hidden error spike carries 1/8: bursts resolve small deltas */
#define BG_WIN_MARGIN 0.25f /* surrogate window widened by this x (vth - c0) per side */
#define BG_OUT_BIAS 0.5f    /* initial output bias, as a fraction of the hidden one */

/* ---- thread pool ----------------------------------------------------------- */

typedef void (*bg_job_fn)(bg_net *net, int lo, int hi, void *arg);

typedef struct bg_pool {
  int n; /* workers besides the caller */
  pthread_t *th;
  pthread_mutex_t mu;
  pthread_cond_t go, done;
  uint64_t gen;
  int pending, quit;
  bg_job_fn fn;
  void *arg;
  int total; /* items being split */
  bg_net *net;
} bg_pool;

struct bg_net {
  bg_config cfg;
  float *wt[BG_MAX_LAYERS];
  float *b[BG_MAX_LAYERS];
  float *fb[BG_MAX_LAYERS];
  uint64_t rng[4];
  /* per-sample scratch */
  float *c[BG_MAX_LAYERS], *v[BG_MAX_LAYERS], *in[BG_MAX_LAYERS], *csum[BG_MAX_LAYERS];
  uint8_t *s[BG_MAX_LAYERS];                            /* last step's spikes */
  uint8_t *spk[BG_MAX_LAYERS];                          /* [T x n] spike raster of each layer */
  int32_t *cnt[BG_MAX_LAYERS];                          /* spike counts */
  int32_t *gcnt[BG_MAX_LAYERS];                         /* steps in the surrogate window */
  float *delta[BG_MAX_LAYERS];                          /* apical x pseudo-derivative */
  float *q[BG_MAX_LAYERS];                              /* error spikes / T sent to the layer below */
  float *pre[BG_MAX_LAYERS];                            /* presynaptic rates of each weight layer */
  uint32_t *hptr[BG_MAX_LAYERS], *hunit[BG_MAX_LAYERS]; /* CSR of hidden spikes */
  int32_t *incnt;                                       /* input spike counts */
  bg_pool pool;
};

static void slice(int total, int parts, int k, int *lo, int *hi) {
  /* contiguous ranges rounded to 16 floats (one cache line) */
  int chunk = (total + parts - 1) / parts;
  chunk = (chunk + 15) & ~15;
  *lo = k * chunk < total ? k * chunk : total;
  *hi = (k + 1) * chunk < total ? (k + 1) * chunk : total;
}

static void *pool_main(void *p) {
  bg_pool *pool = p;
  pthread_mutex_lock(&pool->mu);
  int id = pool->pending++; /* startup numbering */
  uint64_t seen = pool->gen;
  pthread_cond_signal(&pool->done);
  for (;;) {
    while (pool->gen == seen && !pool->quit)
      pthread_cond_wait(&pool->go, &pool->mu);
    if (pool->quit) break;
    seen = pool->gen;
    bg_job_fn fn = pool->fn;
    void *arg = pool->arg;
    int lo, hi;
    slice(pool->total, pool->n + 1, id + 1, &lo, &hi);
    pthread_mutex_unlock(&pool->mu);
    if (lo < hi) fn(pool->net, lo, hi, arg);
    pthread_mutex_lock(&pool->mu);
    if (--pool->pending == 0) pthread_cond_signal(&pool->done);
  }
  pthread_mutex_unlock(&pool->mu);
  return NULL;
}

static int pool_start(bg_pool *pool, bg_net *net, int threads) {
  memset(pool, 0, sizeof *pool);
  pool->net = net;
  pthread_mutex_init(&pool->mu, NULL);
  pthread_cond_init(&pool->go, NULL);
  pthread_cond_init(&pool->done, NULL);
  if (threads <= 1) return 0;
  pool->th = calloc((size_t)threads - 1, sizeof *pool->th);
  if (!pool->th) return -1;
  pthread_mutex_lock(&pool->mu);
  for (int i = 0; i < threads - 1; i++) {
    if (pthread_create(&pool->th[i], NULL, pool_main, pool) != 0) break;
    pool->n++;
  }
  while (pool->pending < pool->n)
    pthread_cond_wait(&pool->done, &pool->mu);
  pool->pending = 0;
  pthread_mutex_unlock(&pool->mu);
  return 0;
}

static void pool_stop(bg_pool *pool) {
  pthread_mutex_lock(&pool->mu);
  pool->quit = 1;
  pthread_cond_broadcast(&pool->go);
  pthread_mutex_unlock(&pool->mu);
  for (int i = 0; i < pool->n; i++)
    pthread_join(pool->th[i], NULL);
  free(pool->th);
  pthread_mutex_destroy(&pool->mu);
  pthread_cond_destroy(&pool->go);
  pthread_cond_destroy(&pool->done);
}

/* Runs fn over [0,total) split across the pool and the caller. */
static void parallel(bg_net *net, int total, bg_job_fn fn, void *arg) {
  bg_pool *pool = &net->pool;
  if (pool->n == 0 || total < BG_PAR_MIN) {
    fn(net, 0, total, arg);
    return;
  }
  pthread_mutex_lock(&pool->mu);
  pool->fn = fn;
  pool->arg = arg;
  pool->total = total;
  pool->pending = pool->n;
  pool->gen++;
  pthread_cond_broadcast(&pool->go);
  pthread_mutex_unlock(&pool->mu);
  int lo, hi;
  slice(total, pool->n + 1, 0, &lo, &hi);
  if (lo < hi) fn(net, lo, hi, arg);
  pthread_mutex_lock(&pool->mu);
  while (pool->pending > 0)
    pthread_cond_wait(&pool->done, &pool->mu);
  pthread_mutex_unlock(&pool->mu);
}

/* ---- random numbers ----------------------------------------------------------- */

static uint64_t splitmix(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void bg_rng_seed(uint64_t s[4], uint64_t seed) {
  uint64_t x = seed;
  for (int i = 0; i < 4; i++)
    s[i] = splitmix(&x);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t bg_rng_next(uint64_t s[4]) {
  uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return r;
}

float bg_rng_uniform(uint64_t s[4]) { return (float)(bg_rng_next(s) >> 40) * (1.0f / 16777216.0f); }

/* ---- elementwise kernels ------------------------------------------------------- */

void bg_lif_step(int n, float *c, float *v, uint8_t *s, const float *in, const float *b, float cdecay,
                 float vdecay, float vth) {
  for (int i = 0; i < n; i++) {
    float ci = cdecay * c[i] + (in ? in[i] : 0.0f) + (b ? b[i] : 0.0f);
    float vi = vdecay * v[i] * (float)(1 - s[i]) + ci;
    c[i] = ci;
    v[i] = vi;
    s[i] = vi > vth;
  }
}

static float rheobase(float vdecay, float vth) { return vth * (1.0f - vdecay); }

/* The rate-equivalent neuron: the clamp (C - c0)/(vth - c0) of the LIF rate
 * between rheobase c0 and one spike per step, averaged over Gaussian noise of
 * sd BG_RATE_NOISE*(vth - c0) on the current — the fluctuation a rate-coded
 * input produces, and what keeps the derivative from vanishing outside the
 * window (no dead units). */
#define BG_RATE_NOISE 0.25f

static float phi_cdf(float z) { return 0.5f * erfcf(-z * (float)M_SQRT1_2); }
static float phi_pdf(float z) { return 0.3989422804f * expf(-0.5f * z * z); }

float bg_rate(float x, float cdecay, float vdecay, float vth) {
  float c0 = rheobase(vdecay, vth), w = vth - c0, a = (x / (1.0f - cdecay) - c0) / w, s = BG_RATE_NOISE;
  float hi = a * phi_cdf(a / s) + s * phi_pdf(a / s);
  float lo = (a - 1.0f) * phi_cdf((a - 1.0f) / s) + s * phi_pdf((a - 1.0f) / s);
  return hi - lo;
}

float bg_rate_slope(float x, float cdecay, float vdecay, float vth) {
  float c0 = rheobase(vdecay, vth), w = vth - c0, a = (x / (1.0f - cdecay) - c0) / w, s = BG_RATE_NOISE;
  return (phi_cdf(a / s) - phi_cdf((a - 1.0f) / s)) / (w * (1.0f - cdecay));
}

int bg_error_spikes(float d, int steps) {
  /* IF neuron: u starts at 1/2, gains |d| per step, fires (u -= 1) while u >= 1 */
  float a = fabsf(d) * (float)steps + 0.5f;
  int k = (int)floorf(a);
  return d < 0 ? -k : k;
}

/* acc[0..n) += row[0..n) — the event-driven inner loop. */
BG_CLONES static void add_row(float *restrict acc, const float *restrict row, int n) {
  for (int i = 0; i < n; i++)
    acc[i] += row[i];
}

/* row[0..n) += a * x[0..n) — the rank-one update inner loop. */
BG_CLONES static void axpy_row(float *restrict row, float a, const float *restrict x, int n) {
  for (int i = 0; i < n; i++)
    row[i] += a * x[i];
}

/* ---- network ---------------------------------------------------------------------- */

static void *zalloc(size_t n) {
  void *p = NULL;
  if (n == 0) n = 1;
  if (posix_memalign(&p, 64, (n + 63) & ~(size_t)63) != 0) return NULL;
  memset(p, 0, n);
  return p;
}

const bg_config *bg_net_config(const bg_net *net) { return &net->cfg; }
void bg_set_rates(bg_net *net, float lr, float lr_out) {
  net->cfg.lr = lr;
  net->cfg.lr_out = lr_out;
}
float *bg_weight_t(bg_net *net, int l) { return net->wt[l]; }
float *bg_bias(bg_net *net, int l) { return net->b[l]; }
float *bg_feedback(bg_net *net, int l) { return l < net->cfg.nlayers - 1 ? net->fb[l] : NULL; }
uint64_t *bg_rng_state(bg_net *net) { return net->rng; }

static int check_config(const bg_config *c, char *err, size_t errlen) {
  if (c->nlayers < 1 || c->nlayers > BG_MAX_LAYERS)
    return snprintf(err, errlen, "need 1..%d weight layers, got %d", BG_MAX_LAYERS, c->nlayers), -1;
  for (int l = 0; l <= c->nlayers; l++)
    if (c->sizes[l] < 1 || c->sizes[l] > (1 << 20))
      return snprintf(err, errlen, "layer %d has %d units (want 1..%d)", l, c->sizes[l], 1 << 20), -1;
  if (c->steps < 1 || c->steps > 100000)
    return snprintf(err, errlen, "steps %d out of range 1..100000", c->steps), -1;
  if (!(c->cdecay >= 0 && c->cdecay < 1) || !(c->vdecay >= 0 && c->vdecay < 1) || !(c->vth > 0))
    return snprintf(err, errlen, "neuron needs 0 <= cdecay, vdecay < 1 and vth > 0"), -1;
  if (!(c->sleep_rate > 0 && c->sleep_rate < 1))
    return snprintf(err, errlen, "sleep_rate must lie in (0, 1)"), -1;
  return 0;
}

bg_net *bg_net_new(const bg_config *cfg, char *err, size_t errlen) {
  if (check_config(cfg, err, errlen) != 0) return NULL;
  bg_net *net = calloc(1, sizeof *net);
  if (!net) return snprintf(err, errlen, "out of memory"), NULL;
  net->cfg = *cfg;
  if (net->cfg.threads < 1) net->cfg.threads = 1;
  int L = cfg->nlayers, T = cfg->steps, ok = 1;
  uint64_t init[4];
  bg_rng_seed(init, cfg->seed);
  bg_rng_seed(net->rng, cfg->seed ^ 0x5eed5eed5eed5eedULL);
  net->incnt = zalloc(sizeof(int32_t) * (size_t)cfg->sizes[0]);
  ok &= net->incnt != NULL;
  for (int l = 0; l < L && ok; l++) {
    size_t ni = (size_t)cfg->sizes[l], no = (size_t)cfg->sizes[l + 1];
    net->wt[l] = zalloc(sizeof(float) * ni * no);
    net->b[l] = zalloc(sizeof(float) * no);
    net->c[l] = zalloc(sizeof(float) * no);
    net->v[l] = zalloc(sizeof(float) * no);
    net->in[l] = zalloc(sizeof(float) * no);
    net->csum[l] = zalloc(sizeof(float) * no);
    net->s[l] = zalloc(no);
    net->spk[l] = zalloc(no * (size_t)T);
    net->cnt[l] = zalloc(sizeof(int32_t) * no);
    net->gcnt[l] = zalloc(sizeof(int32_t) * no);
    net->delta[l] = zalloc(sizeof(float) * no);
    net->q[l] = zalloc(sizeof(float) * no);
    net->pre[l] = zalloc(sizeof(float) * ni);
    net->hptr[l] = zalloc(sizeof(uint32_t) * (size_t)(T + 1));
    net->hunit[l] = zalloc(sizeof(uint32_t) * no * (size_t)T);
    ok &= net->wt[l] && net->b[l] && net->c[l] && net->v[l] && net->in[l] && net->csum[l] && net->s[l] &&
          net->spk[l] && net->cnt[l] && net->gcnt[l] && net->delta[l] && net->q[l] && net->pre[l] &&
          net->hptr[l] && net->hunit[l];
    if (!ok) break;
    /* small weights and a bias at the middle of the surrogate window keep
       most neurons in their linear range at the start (see README) */
    float a = (cfg->init_gain[l] > 0.0f ? cfg->init_gain[l] : BG_INIT_GAIN) / sqrtf((float)ni);
    float mid = 0.5f * (cfg->vth + rheobase(cfg->vdecay, cfg->vth)) * (1.0f - cfg->cdecay);
    for (size_t k = 0; k < ni * no; k++)
      net->wt[l][k] = a * (2.0f * bg_rng_uniform(init) - 1.0f);
    for (size_t i = 0; i < no; i++)
      net->b[l][i] = !bg_has_bias(cfg->bias, l, L) ? 0.0f : l + 1 < L ? mid : BG_OUT_BIAS * mid;
  }
  for (int l = 0; l + 1 < L && ok; l++) {
    size_t na = (size_t)cfg->sizes[l + 1], nb = (size_t)cfg->sizes[l + 2];
    net->fb[l] = zalloc(sizeof(float) * na * nb);
    ok &= net->fb[l] != NULL;
    if (!ok) break;
    /* B_l starts aligned with W_{l+1}^T, as in the authors' constructor: with
       a random B the first sleep_every samples are feedback alignment, and a
       deep net's lower layers learn in a random direction until then */
    if (!cfg->random_feedback) {
      memcpy(net->fb[l], net->wt[l + 1], sizeof(float) * na * nb);
      continue;
    }
    float a = BG_INIT_GAIN / sqrtf((float)na);
    for (size_t k = 0; k < na * nb; k++)
      net->fb[l][k] = a * (2.0f * bg_rng_uniform(init) - 1.0f);
  }
  if (!ok || pool_start(&net->pool, net, net->cfg.threads) != 0) {
    snprintf(err, errlen, "out of memory");
    net->pool.n = 0;
    bg_net_free(net);
    return NULL;
  }
  return net;
}

void bg_net_free(bg_net *net) {
  if (!net) return;
  if (net->pool.th || net->pool.n) pool_stop(&net->pool);
  for (int l = 0; l < BG_MAX_LAYERS; l++) {
    free(net->wt[l]), free(net->b[l]), free(net->fb[l]), free(net->c[l]), free(net->v[l]);
    free(net->in[l]), free(net->csum[l]), free(net->s[l]), free(net->spk[l]), free(net->cnt[l]);
    free(net->gcnt[l]), free(net->delta[l]), free(net->q[l]), free(net->pre[l]);
    free(net->hptr[l]), free(net->hunit[l]);
  }
  free(net->incnt);
  free(net);
}

/* ---- forward pass ------------------------------------------------------------------- */

typedef struct fwd_arg {
  int l;
  const uint32_t *ptr, *unit;
} fwd_arg;

/* Neurons [lo,hi) of weight layer l, all T steps. */
static void forward_job(bg_net *net, int lo, int hi, void *p) {
  const fwd_arg *a = p;
  const bg_config *cfg = &net->cfg;
  int l = a->l, no = cfg->sizes[l + 1], T = cfg->steps, n = hi - lo;
  const float *wt = net->wt[l] + lo, *b = net->b[l] + lo;
  float *c = net->c[l] + lo, *v = net->v[l] + lo, *in = net->in[l] + lo, *cs = net->csum[l] + lo;
  uint8_t *s = net->s[l] + lo;
  int32_t *cnt = net->cnt[l] + lo, *g = net->gcnt[l] + lo;
  float c0 = rheobase(cfg->vdecay, cfg->vth), vth = cfg->vth;
  float glo = c0 - BG_WIN_MARGIN * (vth - c0), ghi = vth + BG_WIN_MARGIN * (vth - c0);
  memset(c, 0, sizeof(float) * (size_t)n);
  memset(v, 0, sizeof(float) * (size_t)n);
  memset(cs, 0, sizeof(float) * (size_t)n);
  memset(s, 0, (size_t)n);
  memset(cnt, 0, sizeof(int32_t) * (size_t)n);
  memset(g, 0, sizeof(int32_t) * (size_t)n);
  for (int t = 0; t < T; t++) {
    memset(in, 0, sizeof(float) * (size_t)n);
    for (uint32_t e = a->ptr[t]; e < a->ptr[t + 1]; e++)
      add_row(in, wt + (size_t)a->unit[e] * no, n);
    bg_lif_step(n, c, v, s, in, b, cfg->cdecay, cfg->vdecay, vth);
    uint8_t *row = net->spk[l] + (size_t)t * no + lo;
    for (int i = 0; i < n; i++) {
      row[i] = s[i];
      cnt[i] += s[i];
      g[i] += c[i] > glo && c[i] < ghi;
      cs[i] += c[i];
    }
  }
}

/* CSR of layer l's spikes, the input of layer l+1. */
static void hidden_raster(bg_net *net, int l) {
  int no = net->cfg.sizes[l + 1], T = net->cfg.steps;
  uint32_t k = 0;
  for (int t = 0; t < T; t++) {
    net->hptr[l][t] = k;
    const uint8_t *row = net->spk[l] + (size_t)t * no;
    for (int i = 0; i < no; i++)
      if (row[i]) net->hunit[l][k++] = (uint32_t)i;
  }
  net->hptr[l][T] = k;
}

static int predict(const bg_net *net) {
  int L = net->cfg.nlayers, no = net->cfg.sizes[L], best = 0;
  const int32_t *cnt = net->cnt[L - 1];
  const float *cs = net->csum[L - 1];
  for (int k = 1; k < no; k++)
    if (cnt[k] > cnt[best] || (cnt[k] == cnt[best] && cs[k] > cs[best])) best = k;
  return best;
}

const int32_t *bg_output_counts(const bg_net *net) { return net->cnt[net->cfg.nlayers - 1]; }

int64_t bg_layer_spikes(const bg_net *net, int l) {
  int64_t k = 0;
  for (int i = 0; i < net->cfg.sizes[l + 1]; i++)
    k += net->cnt[l][i];
  return k;
}

static void forward(bg_net *net, const bg_raster *in) {
  const bg_config *cfg = &net->cfg;
  int T = cfg->steps;
  memset(net->incnt, 0, sizeof(int32_t) * (size_t)cfg->sizes[0]);
  for (uint32_t e = 0; e < in->ptr[T]; e++)
    net->incnt[in->unit[e]]++;
  for (int j = 0; j < cfg->sizes[0]; j++)
    net->pre[0][j] = (float)net->incnt[j] / (float)T;
  fwd_arg a = {0, in->ptr, in->unit};
  for (int l = 0; l < cfg->nlayers; l++) {
    a.l = l;
    parallel(net, cfg->sizes[l + 1], forward_job, &a);
    if (l + 1 < cfg->nlayers) {
      hidden_raster(net, l);
      a.ptr = net->hptr[l];
      a.unit = net->hunit[l];
      for (int j = 0; j < cfg->sizes[l + 1]; j++)
        net->pre[l + 1][j] = (float)net->cnt[l][j] / (float)T;
    }
  }
}

/* ---- feedback: error neurons and apical compartments ------------------------------------ */

static void feedback(bg_net *net, int label) {
  const bg_config *cfg = &net->cfg;
  int L = cfg->nlayers, T = cfg->steps;
  float kappa = 1.0f / ((cfg->vth - rheobase(cfg->vdecay, cfg->vth)) * (1.0f - cfg->cdecay));
  /* output: error neurons compare output spikes with the label */
  int no = cfg->sizes[L];
  for (int k = 0; k < no; k++) {
    float e = (k == label ? 1.0f : 0.0f) - (float)net->cnt[L - 1][k] / (float)T;
    float d = e; /* matching loss: no output derivative (README, eq. 6) */
    net->q[L - 1][k] = (float)bg_error_spikes(d, T) / (float)T;
    net->delta[L - 1][k] = net->q[L - 1][k];
  }
  /* hidden: apical a = B q_above; delta = a * pseudo-derivative */
  for (int l = L - 2; l >= 0; l--) {
    int na = cfg->sizes[l + 1], nb = cfg->sizes[l + 2];
    const float *B = net->fb[l], *qa = net->q[l + 1];
    for (int i = 0; i < na; i++) {
      float a = 0.0f;
      const float *row = B + (size_t)i * nb;
      for (int k = 0; k < nb; k++)
        a += row[k] * qa[k];
      float d = a * kappa * (float)net->gcnt[l][i] / (float)T;
      net->delta[l][i] = d;
      net->q[l][i] = (float)bg_error_spikes(d, T * BG_ERROR_QUANTA) / (float)(T * BG_ERROR_QUANTA);
    }
  }
}

/* The first hidden layer learns at lr, the output layer at lr_out: the output
 * error is O(1) and its fan-in large, so one sample moves an output neuron's
 * drive by ~lr_out * |p|^2, which must stay well below the width of its rate
 * window. Hidden layers fed by another hidden layer learn at lr * lr_deep
 * (README, "Deep networks"). */
static float layer_lr(const bg_config *c, int l) {
  if (l == c->nlayers - 1) return c->lr_out;
  return l > 0 && c->lr_deep > 0.0f ? c->lr * c->lr_deep : c->lr;
}

/* ---- updates ------------------------------------------------------------------------------ */

typedef struct upd_arg {
  int l;
  float *acc; /* NULL: apply to W */
} upd_arg;

static void update_job(bg_net *net, int lo, int hi, void *p) {
  const upd_arg *a = p;
  int l = a->l, ni = net->cfg.sizes[l], no = net->cfg.sizes[l + 1];
  float lr = layer_lr(&net->cfg, l);
  float *W = a->acc ? a->acc : net->wt[l];
  const float *pre = net->pre[l], *d = net->delta[l] + lo;
  /* Kolen-Pollack: the feedback synapse k -> i of layer l-1 (error spikes of
     neuron k in, apical compartment of neuron i) learns with the same local
     product as the forward synapse i -> k: its presynaptic error times the
     rate of the neuron it sits on. B_{l-1} [n_l x n_{l+1}] has the layout of
     wt[l], so it gets the very same increments and, from the aligned start,
     stays equal to W_l^T up to what sleep adds (README, "Deep networks") */
  float *B = !a->acc && l >= 1 && net->cfg.feedback_kp ? net->fb[l - 1] : NULL;
  for (int j = 0; j < ni; j++) {
    if (pre[j] == 0.0f) continue;
    axpy_row(W + (size_t)j * no + lo, lr * pre[j], d, hi - lo);
    if (B) axpy_row(B + (size_t)j * no + lo, lr * pre[j], d, hi - lo);
  }
  if (!a->acc && bg_has_bias(net->cfg.bias, l, net->cfg.nlayers))
    for (int i = lo; i < hi; i++)
      net->b[l][i] += lr * net->delta[l][i];
}

int bg_sample(bg_net *net, const bg_raster *in, int label, int learn) {
  forward(net, in);
  int pred = predict(net);
  if (!learn || label < 0 || label >= net->cfg.sizes[net->cfg.nlayers]) return pred;
  feedback(net, label);
  for (int l = 0; l < net->cfg.nlayers; l++) {
    upd_arg a = {l, NULL};
    parallel(net, net->cfg.sizes[l + 1], update_job, &a);
  }
  return pred;
}

int bg_sample_update(bg_net *net, const bg_raster *in, int label, float *const *acc) {
  forward(net, in);
  int pred = predict(net);
  if (label < 0 || label >= net->cfg.sizes[net->cfg.nlayers]) return pred;
  feedback(net, label);
  for (int l = 0; l < net->cfg.nlayers; l++) {
    upd_arg a = {l, acc[l]};
    parallel(net, net->cfg.sizes[l + 1], update_job, &a);
  }
  return pred;
}

/* ---- sleep -------------------------------------------------------------------------------- */

void bg_sleep(bg_net *net) {
  const bg_config *cfg = &net->cfg;
  int S = cfg->sleep_steps;
  float rho = cfg->sleep_rate;
  if (S < 1 || cfg->nlayers < 2) return;
  for (int l = 0; l + 1 < cfg->nlayers; l++) {
    int na = cfg->sizes[l + 1], nb = cfg->sizes[l + 2];
    float *X = malloc(sizeof(float) * (size_t)S * na), *Xc = malloc(sizeof(float) * (size_t)S * na);
    float *Y = malloc(sizeof(float) * (size_t)S * nb);
    if (!X || !Xc || !Y) {
      free(X), free(Xc), free(Y);
      return;
    }
    for (size_t k = 0; k < (size_t)S * na; k++) {
      X[k] = bg_rng_uniform(net->rng) < rho ? 1.0f : 0.0f;
      Xc[k] = X[k] - rho;
    }
    /* y_t = W s_t: somatic drive of layer l+2 (its W^T is wt[l+1], [na x nb]) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, S, nb, na, 1.0f, X, na, net->wt[l + 1], nb, 0.0f,
                Y, nb);
    /* B = (1 - eta rho(1-rho)) B + eta/S sum_t (s_t - rho) y_t^T */
    float eta = cfg->feedback_lr;
    float *B = net->fb[l];
    for (size_t k = 0; k < (size_t)na * nb; k++)
      B[k] *= 1.0f - eta * rho * (1.0f - rho);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, na, nb, S, eta / (float)S, Xc, na, Y, nb, 1.0f, B,
                nb);
    free(X), free(Xc), free(Y);
  }
}

/* ---- rate-equivalent network -------------------------------------------------------------- */

int bg_rate_grad(const bg_config *cfg, float *const *wt, float *const *b, const float *x, const int *labels,
                 int m, float scale, float *const *acc_w, float *const *acc_b) {
  int L = cfg->nlayers, correct = 0;
  float *R[BG_MAX_LAYERS + 1] = {0}, *D[BG_MAX_LAYERS + 1] = {0};
  int ok = 1;
  for (int l = 1; l <= L; l++) {
    R[l] = malloc(sizeof(float) * (size_t)m * cfg->sizes[l]);
    D[l] = malloc(sizeof(float) * (size_t)m * cfg->sizes[l]);
    ok &= R[l] && D[l];
  }
  if (!ok) goto out;
  R[0] = (float *)x;
  for (int l = 0; l < L; l++) { /* pre-activations into D[l+1], rates into R[l+1] */
    int ni = cfg->sizes[l], no = cfg->sizes[l + 1];
    for (int r = 0; r < m; r++)
      memcpy(D[l + 1] + (size_t)r * no, b[l], sizeof(float) * no);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, no, ni, 1.0f, R[l], ni, wt[l], no, 1.0f,
                D[l + 1], no);
    for (size_t k = 0; k < (size_t)m * no; k++) {
      float z = D[l + 1][k];
      R[l + 1][k] = bg_rate(z, cfg->cdecay, cfg->vdecay, cfg->vth);
      D[l + 1][k] = bg_rate_slope(z, cfg->cdecay, cfg->vdecay, cfg->vth); /* f'(z) kept in D */
    }
  }
  int no = cfg->sizes[L];
  for (int r = 0; r < m; r++) {
    const float *y = R[L] + (size_t)r * no;
    int best = 0;
    for (int k = 1; k < no; k++)
      if (y[k] > y[best]) best = k;
    correct += best == labels[r];
    for (int k = 0; k < no; k++) {
      D[L][(size_t)r * no + k] = y[k] - (k == labels[r] ? 1.0f : 0.0f);
    }
  }
  /* backward first (weights untouched), then the gradients: acc_w may alias wt */
  for (int l = L - 1; l > 0; l--) { /* D[l] = (D[l+1] W) * f'(z_l), W = wt^T */
    int ni = cfg->sizes[l], nn = cfg->sizes[l + 1];
    float *tmp = malloc(sizeof(float) * (size_t)m * ni);
    if (!tmp) goto out;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, ni, nn, 1.0f, D[l + 1], nn, wt[l], nn, 0.0f, tmp,
                ni);
    for (size_t k = 0; k < (size_t)m * ni; k++)
      D[l][k] *= tmp[k];
    free(tmp);
  }
  for (int l = 0; l < L; l++) {
    int ni = cfg->sizes[l], nn = cfg->sizes[l + 1];
    float eta = scale * layer_lr(cfg, l);
    if (acc_w && acc_w[l])
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ni, nn, m, -eta, R[l], ni, D[l + 1], nn, 1.0f,
                  acc_w[l], nn);
    if (acc_b && acc_b[l] && bg_has_bias(cfg->bias, l, L)) /* as bg_sample: no bias, no bias learning */
      for (int r = 0; r < m; r++)
        for (int i = 0; i < nn; i++)
          acc_b[l][i] -= eta * D[l + 1][(size_t)r * nn + i];
  }
out:
  for (int l = 1; l <= L; l++)
    free(R[l]), free(D[l]);
  return correct;
}

double bg_angle_deg(const float *a, const float *b, size_t n) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < n; i++) {
    ab += (double)a[i] * b[i];
    aa += (double)a[i] * a[i];
    bb += (double)b[i] * b[i];
  }
  if (aa <= 0 || bb <= 0) return 90.0;
  double c = ab / sqrt(aa * bb);
  c = c > 1 ? 1 : (c < -1 ? -1 : c);
  return acos(c) * 180.0 / M_PI;
}

double bg_feedback_angle(bg_net *net, int l) {
  if (l < 0 || l + 1 >= net->cfg.nlayers) return 0.0;
  return bg_angle_deg(net->fb[l], net->wt[l + 1], (size_t)net->cfg.sizes[l + 1] * net->cfg.sizes[l + 2]);
}
