/*
 * biograd_paper.c — the authors' BioGrad, step for step (biograd_paper.h).
 *
 * One training sample:
 *
 *   forward   layer by layer, all T steps, event driven (a spike of unit j
 *             adds row j of W^T). Each neuron records, per step, its
 *             pseudo-derivative g[t] = amp 1[|v - vth| < win] and the factor
 *             r[t] = 1 - s[t] - v[t] g[t] by which its traces are reset.
 *   traces    the authors keep, per synapse j -> i, a trace
 *               a[t] = vdecay r[t-1] a[t-1] + x_j[t]   (r = 1 before t = 0)
 *             and sum e_ij = sum_t g_i[t] a[t]. Unrolled, the input spike at
 *             tau contributes x_j[tau] G_i[tau] with
 *               G_i[T-1] = g_i[T-1],  G_i[t] = g_i[t] + vdecay r_i[t] G_i[t+1],
 *             one backward pass per neuron. So e_ij = sum_tau x_j[tau] G_i[tau]:
 *             the same sums, added in another order, at the cost of one
 *             forward pass instead of T rank-one updates of an [out x in]
 *             matrix. The bias trace is the same with x = 1 at every step.
 *   error     from step soft_start on: e = softmax(output counts so far) -
 *             one-hot label drives a +/- pair of IF neurons per class (soft
 *             reset at 1); d_k = their spike difference summed over the steps.
 *   update    err_L = d / n_err, err_l = B_l d / n_err for hidden layers
 *             (direct feedback), dW_ij += err_i e_ij, db_i += err_i sum_t G_i.
 *             bg_paper_apply subtracts lr x the batch mean.
 *
 * The arithmetic of the forward pass, the error neurons and the sleep phase is
 * written in the same order as the numpy reference of the trajectory test
 * (bench/biograd/paper_ref.py), which is compiled without contraction into FMA
 * (CMakeLists), so both produce the same spikes from the same weights; only the
 * trace sums are reassociated (rounding-level differences in the weights).
 */
#include "biograd_paper.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bg_paper {
  bg_paper_config cfg;
  float *wt[BG_MAX_LAYERS], *b[BG_MAX_LAYERS], *fb[BG_MAX_LAYERS];
  float *wq[BG_MAX_LAYERS]; /* quantize: 8-bit inference image of wt */
  float q16[BG_MAX_LAYERS]; /* quantize: shadow grid step per layer, 0 = not fixed yet */
  float *acc_w[BG_MAX_LAYERS], *acc_b[BG_MAX_LAYERS]; /* pending batch sums */
  int pending;
  uint64_t rng[4];
  /* per-sample scratch */
  float *v[BG_MAX_LAYERS], *in[BG_MAX_LAYERS], *in2[BG_MAX_LAYERS];
  uint8_t *s[BG_MAX_LAYERS];
  uint8_t *spk[BG_MAX_LAYERS];                          /* [T x n] spikes */
  float *G[BG_MAX_LAYERS];                              /* [T x n] g, then G, then err x G */
  float *R[BG_MAX_LAYERS];                              /* [T x n] reset factors r */
  float *gsum[BG_MAX_LAYERS];                           /* sum_t G */
  float *err[BG_MAX_LAYERS];                            /* err of each layer */
  int32_t *cnt[BG_MAX_LAYERS];                          /* spike counts */
  uint32_t *hptr[BG_MAX_LAYERS], *hunit[BG_MAX_LAYERS]; /* CSR of hidden spikes */
  int32_t *d;                                           /* output error spikes, + minus - */
  double *ework;                                        /* [classes] softmax scratch */
  float *kwork;                                         /* [5 x classes]: cum, sm, v+, v-, sleep o^p */
  uint8_t *kbits;                                       /* [2 x classes]: s+, s- */
  int32_t *ko;                                          /* [classes] sleep output counts */
  int32_t *htr;                                         /* [max hidden] sleep noise difference */
  float *corr;                                          /* sleep: [n x classes] */
  uint8_t *noise;                                       /* sleep: one layer's noise block */
  size_t noise_cap;
};

static void *zalloc(size_t n) {
  void *p = NULL;
  if (n == 0) n = 1;
  if (posix_memalign(&p, 64, (n + 63) & ~(size_t)63) != 0) return NULL;
  memset(p, 0, n);
  return p;
}

static void add_row(float *dst, const float *row, int n) {
  for (int i = 0; i < n; i++)
    dst[i] += row[i];
}

const bg_paper_config *bg_paper_cfg(const bg_paper *p) { return &p->cfg; }
void bg_paper_set_rates(bg_paper *p, float lr, float lr_out) {
  p->cfg.lr = lr;
  p->cfg.lr_out = lr_out;
}
float *bg_paper_weight_t(bg_paper *p, int l) { return p->wt[l]; }
const float *bg_paper_inference_weight_t(const bg_paper *p, int l) {
  return p->cfg.quantize ? p->wq[l] : p->wt[l];
}

static float absmax(const float *x, size_t n) {
  float m = 0.0f;
  for (size_t k = 0; k < n; k++)
    m = fabsf(x[k]) > m ? fabsf(x[k]) : m;
  return m;
}

/* x = step * clamp(rint(x / step), -lim, lim) */
static void to_grid(float *dst, const float *x, size_t n, float step, float lim) {
  if (!(step > 0.0f)) {
    if (dst != x) memcpy(dst, x, n * sizeof *dst);
    return;
  }
  for (size_t k = 0; k < n; k++) {
    float q = rintf(x[k] / step);
    dst[k] = step * (q > lim ? lim : q < -lim ? -lim : q);
  }
}

float bg_paper_shadow_step(const bg_paper *p, int l) { return p->cfg.quantize ? p->q16[l] : 0.0f; }

void bg_paper_requantize(bg_paper *p, int new_grid) {
  const bg_paper_config *c = &p->cfg;
  if (!c->quantize) return;
  for (int l = 0; l < c->nlayers; l++) {
    size_t nw = (size_t)c->sizes[l] * c->sizes[l + 1], nb = (size_t)c->sizes[l + 1];
    if (new_grid || p->q16[l] == 0.0f)
      p->q16[l] = absmax(p->wt[l], nw) / 2047.0f; /* init on 12 of the 16 bits */
    to_grid(p->wt[l], p->wt[l], nw, p->q16[l], 32767.0f);
    to_grid(p->b[l], p->b[l], nb, p->q16[l], 32767.0f);
    to_grid(p->wq[l], p->wt[l], nw, absmax(p->wt[l], nw) / 127.0f, 127.0f);
  }
}
float *bg_paper_bias(bg_paper *p, int l) { return p->b[l]; }
float *bg_paper_feedback(bg_paper *p, int l) { return l < p->cfg.nlayers - 1 ? p->fb[l] : NULL; }
uint64_t *bg_paper_rng_state(bg_paper *p) { return p->rng; }
const int32_t *bg_paper_output_counts(const bg_paper *p) { return p->cnt[p->cfg.nlayers - 1]; }
int bg_paper_pending(const bg_paper *p) { return p->pending; }

int64_t bg_paper_layer_spikes(const bg_paper *p, int l) {
  int64_t k = 0;
  for (int i = 0; i < p->cfg.sizes[l + 1]; i++)
    k += p->cnt[l][i];
  return k;
}

static int check(const bg_paper_config *c, char *err, size_t errlen) {
  if (c->nlayers < 1 || c->nlayers > BG_MAX_LAYERS)
    return snprintf(err, errlen, "need 1..%d weight layers, got %d", BG_MAX_LAYERS, c->nlayers), -1;
  for (int l = 0; l <= c->nlayers; l++)
    if (c->sizes[l] < 1 || c->sizes[l] > (1 << 20))
      return snprintf(err, errlen, "layer %d has %d units (want 1..%d)", l, c->sizes[l], 1 << 20), -1;
  if (c->steps < 1 || c->steps > 100000)
    return snprintf(err, errlen, "steps %d out of range 1..100000", c->steps), -1;
  if (c->soft_start < 0 || c->soft_start >= c->steps)
    return snprintf(err, errlen,
                    "soft_start %d must be below the %d steps of a sample (no error step otherwise)",
                    c->soft_start, c->steps),
           -1;
  if (!(c->vdecay >= 0 && c->vdecay < 1) || !(c->vth > 0) || !(c->grad_win > 0))
    return snprintf(err, errlen, "neuron needs 0 <= vdecay < 1, vth > 0 and grad_win > 0"), -1;
  if (c->sleep_steps < 1 || c->sleep_batch < 1)
    return snprintf(err, errlen, "sleep_steps and sleep_batch must be >= 1"), -1;
  return 0;
}

void bg_paper_align_feedback(bg_paper *p) {
  int L = p->cfg.nlayers, K = p->cfg.sizes[L];
  if (L < 2) return;
  memcpy(p->fb[L - 2], p->wt[L - 1], sizeof(float) * (size_t)p->cfg.sizes[L - 1] * K);
  for (int l = L - 3; l >= 0; l--) /* B_l = W_{l+1}^T B_{l+1}: wt[l+1] [n_{l+1} x n_{l+2}] . fb[l+1] */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, p->cfg.sizes[l + 1], K, p->cfg.sizes[l + 2], 1.0f,
                p->wt[l + 1], p->cfg.sizes[l + 2], p->fb[l + 1], K, 0.0f, p->fb[l], K);
}

bg_paper *bg_paper_new(const bg_paper_config *cfg, char *err, size_t errlen) {
  if (check(cfg, err, errlen) != 0) return NULL;
  bg_paper *p = calloc(1, sizeof *p);
  if (!p) return snprintf(err, errlen, "out of memory"), NULL;
  p->cfg = *cfg;
  int L = cfg->nlayers, T = cfg->steps, K = cfg->sizes[L], ok = 1;
  uint64_t init[4];
  bg_rng_seed(init, cfg->seed);
  bg_rng_seed(p->rng, cfg->seed ^ 0x5eed5eed5eed5eedULL);
  for (int l = 0; l < L && ok; l++) {
    size_t ni = (size_t)cfg->sizes[l], no = (size_t)cfg->sizes[l + 1];
    p->wt[l] = zalloc(sizeof(float) * ni * no);
    p->wq[l] = cfg->quantize ? zalloc(sizeof(float) * ni * no) : p->wt[l];
    p->acc_w[l] = zalloc(sizeof(float) * ni * no);
    p->b[l] = zalloc(sizeof(float) * no);
    p->acc_b[l] = zalloc(sizeof(float) * no);
    p->v[l] = zalloc(sizeof(float) * no);
    p->in[l] = zalloc(sizeof(float) * no);
    p->in2[l] = zalloc(sizeof(float) * no);
    p->s[l] = zalloc(no);
    p->spk[l] = zalloc(no * (size_t)T);
    p->G[l] = zalloc(sizeof(float) * no * (size_t)T);
    p->R[l] = zalloc(sizeof(float) * no * (size_t)T);
    p->gsum[l] = zalloc(sizeof(float) * no);
    p->err[l] = zalloc(sizeof(float) * no);
    p->cnt[l] = zalloc(sizeof(int32_t) * no);
    p->hptr[l] = zalloc(sizeof(uint32_t) * (size_t)(T + 1));
    p->hunit[l] = zalloc(sizeof(uint32_t) * no * (size_t)T);
    ok = p->wt[l] && p->wq[l] && p->acc_w[l] && p->b[l] && p->acc_b[l] && p->v[l] && p->in[l] && p->in2[l] &&
         p->s[l] && p->spk[l] && p->G[l] && p->R[l] && p->gsum[l] && p->err[l] && p->cnt[l] && p->hptr[l] &&
         p->hunit[l];
    if (!ok) break;
    /* torch.nn.Linear: weight and bias both U(-1/sqrt(fan_in), 1/sqrt(fan_in)) */
    float a = 1.0f / sqrtf((float)ni);
    for (size_t k = 0; k < ni * no; k++)
      p->wt[l][k] = a * (2.0f * bg_rng_uniform(init) - 1.0f);
    for (size_t i = 0; i < no; i++) { /* drawn in any case: the weights do not depend on the bias mode */
      float bi = a * (2.0f * bg_rng_uniform(init) - 1.0f);
      p->b[l][i] = bg_has_bias(cfg->bias, l, L) ? bi : 0.0f;
    }
  }
  int nmax = 0;
  for (int l = 0; l < L; l++)
    nmax = cfg->sizes[l + 1] > nmax ? cfg->sizes[l + 1] : nmax;
  for (int l = 0; l + 1 < L && ok; l++)
    ok = (p->fb[l] = zalloc(sizeof(float) * (size_t)cfg->sizes[l + 1] * K)) != NULL;
  ok = ok && (p->d = zalloc(sizeof(int32_t) * (size_t)K)) &&
       (p->corr = zalloc(sizeof(float) * (size_t)nmax * K)) &&
       (p->ework = zalloc(sizeof(double) * (size_t)K)) &&
       (p->kwork = zalloc(sizeof(float) * 5 * (size_t)K)) && (p->kbits = zalloc(2 * (size_t)K)) &&
       (p->ko = zalloc(sizeof(int32_t) * (size_t)K)) && (p->htr = zalloc(sizeof(int32_t) * (size_t)nmax));
  if (!ok) {
    snprintf(err, errlen, "out of memory");
    bg_paper_free(p);
    return NULL;
  }
  bg_paper_requantize(p, 1);
  bg_paper_align_feedback(p);
  return p;
}

void bg_paper_free(bg_paper *p) {
  if (!p) return;
  for (int l = 0; l < BG_MAX_LAYERS; l++) {
    if (p->wq[l] != p->wt[l]) free(p->wq[l]);
    free(p->wt[l]), free(p->b[l]), free(p->fb[l]), free(p->acc_w[l]), free(p->acc_b[l]);
    free(p->v[l]), free(p->in[l]), free(p->in2[l]), free(p->s[l]), free(p->spk[l]), free(p->G[l]);
    free(p->R[l]), free(p->gsum[l]), free(p->err[l]), free(p->cnt[l]), free(p->hptr[l]), free(p->hunit[l]);
  }
  free(p->d), free(p->corr), free(p->noise), free(p->ework), free(p->kwork), free(p->kbits), free(p->ko);
  free(p->htr);
  free(p);
}

/* ---- forward ------------------------------------------------------------------------- */

/* One LIF step of n neurons: v = vdecay v (1 - s) + c; s = v > vth. */
static void lif(int n, float *v, uint8_t *s, const float *c, float vdecay, float vth) {
  for (int i = 0; i < n; i++) {
    float vi = vdecay * v[i] * (float)(1 - s[i]) + c[i];
    v[i] = vi;
    s[i] = vi > vth;
  }
}

/* Weight layer l over all T steps, input spikes in CSR (ptr, unit). With
 * learn, records g and r and turns them into G (header comment). */
static void layer_forward(bg_paper *p, int l, const uint32_t *ptr, const uint32_t *unit, int learn) {
  const bg_paper_config *c = &p->cfg;
  int no = c->sizes[l + 1], T = c->steps;
  const float *wt = p->wq[l], *b = p->b[l];
  float *v = p->v[l], *in = p->in[l];
  uint8_t *s = p->s[l];
  int32_t *cnt = p->cnt[l];
  memset(v, 0, sizeof(float) * (size_t)no);
  memset(s, 0, (size_t)no);
  memset(cnt, 0, sizeof(int32_t) * (size_t)no);
  for (int t = 0; t < T; t++) {
    memset(in, 0, sizeof(float) * (size_t)no);
    for (uint32_t e = ptr[t]; e < ptr[t + 1]; e++)
      add_row(in, wt + (size_t)unit[e] * no, no);
    for (int i = 0; i < no; i++)
      in[i] = in[i] + b[i];
    lif(no, v, s, in, c->vdecay, c->vth);
    uint8_t *row = p->spk[l] + (size_t)t * no;
    memcpy(row, s, (size_t)no);
    for (int i = 0; i < no; i++)
      cnt[i] += s[i];
    if (learn) {
      float *g = p->G[l] + (size_t)t * no, *r = p->R[l] + (size_t)t * no;
      for (int i = 0; i < no; i++) {
        float gi = fabsf(v[i] - c->vth) < c->grad_win ? c->grad_amp : 0.0f;
        g[i] = gi;
        r[i] = 1.0f - (float)s[i] - v[i] * gi;
      }
    }
  }
  if (!learn) return;
  for (int i = 0; i < no; i++) { /* G[t] = g[t] + vdecay r[t] G[t+1] */
    float Gi = p->G[l][(size_t)(T - 1) * no + i], sum = Gi;
    for (int t = T - 2; t >= 0; t--) {
      size_t k = (size_t)t * no + i;
      Gi = p->G[l][k] + c->vdecay * p->R[l][k] * Gi;
      p->G[l][k] = Gi;
      sum += Gi;
    }
    p->gsum[l][i] = sum;
  }
}

/* CSR of weight layer l's output spikes, the input of layer l+1. */
static void hidden_raster(bg_paper *p, int l) {
  int no = p->cfg.sizes[l + 1], T = p->cfg.steps;
  uint32_t k = 0;
  for (int t = 0; t < T; t++) {
    p->hptr[l][t] = k;
    const uint8_t *row = p->spk[l] + (size_t)t * no;
    for (int i = 0; i < no; i++)
      if (row[i]) p->hunit[l][k++] = (uint32_t)i;
  }
  p->hptr[l][T] = k;
}

/* ---- error neurons ----------------------------------------------------------------------- */

/* softmax of the cumulative output counts, evaluated in double and rounded
 * to float (the reference does the same with Python's math.exp). */
static void softmax(const float *x, float *y, double *e, int n) {
  double m = x[0], sum = 0.0;
  for (int k = 1; k < n; k++)
    m = x[k] > m ? x[k] : m;
  for (int k = 0; k < n; k++)
    sum += (e[k] = exp((double)x[k] - m));
  for (int k = 0; k < n; k++)
    y[k] = (float)(e[k] / sum);
}

/* Runs the error neurons over the output spikes; fills d, returns the
 * number of error steps. */
static int error_spikes(bg_paper *p, int label) {
  const bg_paper_config *c = &p->cfg;
  int L = c->nlayers, K = c->sizes[L], T = c->steps, nerr = 0;
  float *cum = p->kwork, *sm = cum + K, *vp = sm + K, *vn = vp + K;
  uint8_t *sp = p->kbits, *sn = sp + K;
  memset(p->kwork, 0, sizeof(float) * 4 * (size_t)K);
  memset(p->kbits, 0, 2 * (size_t)K);
  memset(p->d, 0, sizeof(int32_t) * (size_t)K);
  for (int t = 0; t < T; t++) {
    const uint8_t *row = p->spk[L - 1] + (size_t)t * K;
    for (int k = 0; k < K; k++)
      cum[k] += (float)row[k];
    if (t < c->soft_start) continue;
    softmax(cum, sm, p->ework, K);
    for (int k = 0; k < K; k++) {
      float e = sm[k] - (k == label ? 1.0f : 0.0f);
      float ep = e > 0.0f ? e : 0.0f, en = -e > 0.0f ? -e : 0.0f, psp = ep - en;
      vp[k] = vp[k] - (float)sp[k] + psp;
      sp[k] = vp[k] > 1.0f;
      vn[k] = vn[k] - (float)sn[k] - psp;
      sn[k] = vn[k] > 1.0f;
      p->d[k] += (int32_t)sp[k] - (int32_t)sn[k];
    }
    nerr++;
  }
  return nerr;
}

/* ---- sample -------------------------------------------------------------------------------- */

int bg_paper_sample(bg_paper *p, const bg_raster *x, int label, int learn) {
  const bg_paper_config *c = &p->cfg;
  int L = c->nlayers, K = c->sizes[L];
  learn = learn && label >= 0 && label < K;
  const uint32_t *ptr = x->ptr, *unit = x->unit;
  for (int l = 0; l < L; l++) {
    layer_forward(p, l, ptr, unit, learn);
    if (l + 1 < L) {
      hidden_raster(p, l);
      ptr = p->hptr[l];
      unit = p->hunit[l];
    }
  }
  const int32_t *cnt = p->cnt[L - 1];
  int pred = 0;
  for (int k = 1; k < K; k++)
    if (cnt[k] > cnt[pred]) pred = k;
  if (!learn) return pred;

  int nerr = error_spikes(p, label);
  float fn = (float)nerr;
  for (int k = 0; k < K; k++)
    p->err[L - 1][k] = (float)p->d[k] / fn;
  for (int l = 0; l + 1 < L; l++) { /* direct feedback: err_l = B_l d / n_err */
    int n = c->sizes[l + 1];
    for (int i = 0; i < n; i++) {
      const float *row = p->fb[l] + (size_t)i * K;
      float a = 0.0f;
      for (int k = 0; k < K; k++)
        a += row[k] * (float)p->d[k];
      p->err[l][i] = a / fn;
    }
  }
  ptr = x->ptr;
  unit = x->unit;
  for (int l = 0; l < L; l++) { /* acc_w[j, i] += sum_t x_j[t] err_i G_i[t] */
    int no = c->sizes[l + 1], T = c->steps;
    const float *err = p->err[l];
    float *G = p->G[l];
    for (int t = 0; t < T; t++)
      for (int i = 0; i < no; i++)
        G[(size_t)t * no + i] *= err[i];
    for (int t = 0; t < T; t++)
      for (uint32_t e = ptr[t]; e < ptr[t + 1]; e++)
        add_row(p->acc_w[l] + (size_t)unit[e] * no, G + (size_t)t * no, no);
    for (int i = 0; i < no; i++)
      p->acc_b[l][i] += err[i] * p->gsum[l][i];
    ptr = p->hptr[l];
    unit = p->hunit[l];
  }
  p->pending++;
  return pred;
}

void bg_paper_apply(bg_paper *p) {
  if (p->pending == 0) return;
  const bg_paper_config *c = &p->cfg;
  for (int l = 0; l < c->nlayers; l++) {
    float f = (l == c->nlayers - 1 ? c->lr_out : c->lr) / (float)p->pending;
    size_t nw = (size_t)c->sizes[l] * c->sizes[l + 1];
    float *w = p->wt[l], *a = p->acc_w[l];
    for (size_t k = 0; k < nw; k++)
      w[k] -= f * a[k];
    memset(a, 0, sizeof(float) * nw);
    if (bg_has_bias(c->bias, l, c->nlayers))
      for (int i = 0; i < c->sizes[l + 1]; i++)
        p->b[l][i] -= f * p->acc_b[l][i];
    memset(p->acc_b[l], 0, sizeof(float) * (size_t)c->sizes[l + 1]);
  }
  p->pending = 0;
  bg_paper_requantize(p, 0);
}

/* ---- sleep ------------------------------------------------------------------------------------ */

/* One sleep sample of hidden layer h (weight layer h is the one above it):
 * noise rows pos/neg [S x n] drive layers h+1..L; adds the output spike counts
 * to o and the noise difference to htr. */
static void sleep_sample(bg_paper *p, int h, const uint8_t *pos, const uint8_t *neg, int32_t *htr,
                         int32_t *o) {
  const bg_paper_config *c = &p->cfg;
  int L = c->nlayers, S = c->sleep_steps, n = c->sizes[h];
  for (int l = h; l < L; l++) {
    memset(p->v[l], 0, sizeof(float) * (size_t)c->sizes[l + 1]);
    memset(p->s[l], 0, (size_t)c->sizes[l + 1]);
  }
  for (int t = 0; t < S; t++) {
    const uint8_t *xp = pos + (size_t)t * n, *xn = neg + (size_t)t * n;
    for (int j = 0; j < n; j++)
      htr[j] += (int32_t)xp[j] - (int32_t)xn[j];
    /* first layer above the noise: (W x+ + b) - (W x- + b), as the authors write it */
    int no = c->sizes[h + 1];
    const float *wt = p->wq[h], *b = p->b[h];
    float *ip = p->in[h], *ineg = p->in2[h];
    memset(ip, 0, sizeof(float) * (size_t)no);
    memset(ineg, 0, sizeof(float) * (size_t)no);
    for (int j = 0; j < n; j++) {
      if (xp[j]) add_row(ip, wt + (size_t)j * no, no);
      if (xn[j]) add_row(ineg, wt + (size_t)j * no, no);
    }
    for (int i = 0; i < no; i++)
      ip[i] = (ip[i] + b[i]) - (ineg[i] + b[i]);
    lif(no, p->v[h], p->s[h], ip, c->vdecay, c->vth);
    for (int l = h + 1; l < L; l++) {
      int ni = c->sizes[l];
      no = c->sizes[l + 1];
      float *in = p->in[l];
      memset(in, 0, sizeof(float) * (size_t)no);
      for (int j = 0; j < ni; j++)
        if (p->s[l - 1][j]) add_row(in, p->wq[l] + (size_t)j * no, no);
      for (int i = 0; i < no; i++)
        in[i] = in[i] + p->b[l][i];
      lif(no, p->v[l], p->s[l], in, c->vdecay, c->vth);
    }
    for (int k = 0; k < c->sizes[L]; k++)
      o[k] += p->s[L - 1][k];
  }
}

int bg_paper_sleep(bg_paper *p, bg_paper_noise_fn noise, void *ctx) {
  const bg_paper_config *c = &p->cfg;
  int L = c->nlayers, K = c->sizes[L], S = c->sleep_steps, SB = c->sleep_batch;
  if (L < 2) return 0;
  float rate = bg_rng_uniform(p->rng); /* one rate per phase, as torch.rand(1) */
  for (int h = L - 1; h >= 1; h--) {   /* hidden layer h, its B is fb[h-1] */
    int n = c->sizes[h];
    size_t block = (size_t)2 * SB * S * n;
    if (block > p->noise_cap) {
      free(p->noise);
      p->noise_cap = 0;
      if (!(p->noise = malloc(block))) return -1;
      p->noise_cap = block;
    }
    if (noise) {
      int rc = noise(ctx, p->noise, block);
      if (rc) return rc;
    } else {
      for (size_t k = 0; k < block; k++)
        p->noise[k] = bg_rng_uniform(p->rng) < rate;
    }
    int32_t *htr = p->htr, *o = p->ko;
    float *osq = p->kwork + 4 * (size_t)K;
    memset(p->corr, 0, sizeof(float) * (size_t)n * K);
    memset(osq, 0, sizeof(float) * (size_t)K);
    for (int b = 0; b < SB; b++) {
      memset(htr, 0, sizeof(int32_t) * (size_t)n);
      memset(o, 0, sizeof(int32_t) * (size_t)K);
      const uint8_t *pos = p->noise + (size_t)b * S * n, *neg = p->noise + ((size_t)SB + b) * S * n;
      sleep_sample(p, h, pos, neg, htr, o);
      for (int i = 0; i < n; i++) /* integer products: exact in float */
        if (htr[i])
          for (int k = 0; k < K; k++)
            p->corr[(size_t)i * K + k] += (float)(htr[i] * o[k]);
      for (int k = 0; k < K; k++)
        osq[k] += powf((float)o[k], c->oja_power);
    }
    float *B = p->fb[h - 1];
    for (int k = 0; k < K; k++)
      osq[k] = osq[k] / (float)SB;
    for (int i = 0; i < n; i++)
      for (int k = 0; k < K; k++) {
        size_t q = (size_t)i * K + k;
        B[q] += c->sleep_lr * (p->corr[q] - osq[k] * B[q]);
      }
  }
  return 0;
}

double bg_paper_feedback_angle(bg_paper *p, int l) {
  const bg_paper_config *c = &p->cfg;
  int L = c->nlayers, K = c->sizes[L];
  if (l < 0 || l + 1 >= L) return 0.0;
  /* M = wt[l+1] . wt[l+2] ... wt[L-1], [n_{l+1} x K] */
  size_t nmax = 0;
  for (int k = l + 1; k <= L; k++)
    nmax = (size_t)c->sizes[k] > nmax ? (size_t)c->sizes[k] : nmax;
  float *m = malloc(sizeof(float) * nmax * K), *t = malloc(sizeof(float) * nmax * K);
  double ang = 90.0;
  if (m && t) {
    memcpy(m, p->wt[L - 1], sizeof(float) * (size_t)c->sizes[L - 1] * K);
    for (int k = L - 2; k >= l + 1; k--) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c->sizes[k], K, c->sizes[k + 1], 1.0f, p->wt[k],
                  c->sizes[k + 1], m, K, 0.0f, t, K);
      float *sw = m;
      m = t;
      t = sw;
    }
    ang = bg_angle_deg(p->fb[l], m, (size_t)c->sizes[l + 1] * K);
  }
  free(m), free(t);
  return ang;
}
