/*
 * loihi_sim_core.c — bit-accurate simulation of dense CUBA-LIF layers, and
 * its float twin.
 *
 * The integer path reproduces Lava's PyDenseModelBitAcc feeding
 * PyLifModelBitAcc, layer after layer (see plugins/loihi_sim/README.md for
 * the source lines each rule comes from). Per step t and layer l:
 *
 *   a    = what l's synapses accumulated at t-1 (the Dense a_buff), shifted
 *          by weight_exp
 *   acc  = sum of the effective weight rows of the units of layer l-1 (or
 *          of the input) spiking at t; it becomes next step's a
 *   u    = sign(p)*(|p| >> 12) + a*64,  p = u*(4096 - DU), wrapped to 24 bits
 *   v    = clamp(sign(q)*(|q| >> 12) + u + BIAS, +-(2^23 - 1)), q = v*(4096 - DV)
 *   spike where v > VTH, then v = 0 there (u keeps its value)
 *
 * So an input spike at t reaches layer l at t + 1 + l, and a sample of T
 * steps needs T + L steps (one flush step per layer) for every spike it
 * causes to come out.
 *
 * Event-driven: weights are stored transposed (one contiguous int16 row per
 * input unit, padded to a multiple of 128 columns) and a step adds only the
 * rows of units that spiked, exactly, in int16 lanes widened to int32 (a
 * layer's fan-in times 256 is checked to fit); everything downstream is
 * int64 as in the spec. Duplicate input units within a step
 * count once, as Lava's binary spikes do.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loihi.h"

#define ERR(...) loihi_errf(err, errlen, __VA_ARGS__)

static int64_t decay_shift(int64_t x, int64_t keep) {
  int64_t p = x * keep;
  return p < 0 ? -((-p) >> 12) : (p >> 12);
}

static int64_t wrap24(int64_t u) {
  const int64_t m = (int64_t)1 << 23;
  if (u > m) return u - 2 * m;
  if (u <= -m) return u + 2 * m;
  return u;
}

static int64_t clamp_v(int64_t v) {
  const int64_t lim = ((int64_t)1 << 23) - 1;
  return v > lim ? lim : (v < -lim ? -lim : v);
}

/* acc[j] = sum of row[j] over the spiking inputs: the only O(fan-out) work.
 * Effective weights are clipped to [-256, 255] (Lava's clip_weights), so up
 * to 127 rows add exactly in int16 lanes (127 * 256 = 32512); partial sums
 * are widened to int32 every GRP rows. Output columns go in blocks of BLK
 * that stay in vector registers while all rows stream past once. */
#define BLK 64
#define GRP 127
#define PREFETCH 8

/* The loop body, instantiated for a block width; `w` columns of every row
 * stay in registers while the rows stream past (rows are prefetched ahead:
 * they are scattered, so the hardware prefetcher cannot guess them). */
#define ACCUMULATE_BODY(w)                                                            \
  for (int j0 = 0; j0 < ld; j0 += (w)) {                                              \
    int32_t sum[w] = {0};                                                             \
    for (int k0 = 0; k0 < n_spk; k0 += GRP) {                                         \
      int k1 = k0 + GRP < n_spk ? k0 + GRP : n_spk;                                   \
      int16_t part[w] = {0};                                                          \
      for (int k = k0; k < k1; k++) {                                                 \
        if (k + PREFETCH < n_spk)                                                     \
          __builtin_prefetch(wt + (size_t)spk[k + PREFETCH] * (size_t)ld + (size_t)j0); \
        const int16_t *restrict row = wt + (size_t)spk[k] * (size_t)ld + (size_t)j0;  \
        for (int j = 0; j < (w); j++) part[j] = (int16_t)(part[j] + row[j]);          \
      }                                                                               \
      for (int j = 0; j < (w); j++) sum[j] += part[j];                                \
    }                                                                                 \
    memcpy(acc + j0, sum, sizeof sum);                                                \
  }

static void accumulate_i16(int32_t *restrict acc, const int16_t *restrict wt, int ld,
                           const uint32_t *spk, int n_spk) {
  ACCUMULATE_BODY(BLK)
}

#if defined(__x86_64__) && defined(__GNUC__)
/* AVX2: 128 columns = 8 ymm registers. Chosen at init when the CPU has it. */
__attribute__((target("avx2"))) static void accumulate_i16_avx2(int32_t *restrict acc,
                                                                const int16_t *restrict wt, int ld,
                                                                const uint32_t *spk, int n_spk) {
  ACCUMULATE_BODY(2 * BLK)
}
#define HAVE_AVX2_PATH 1
#endif

static void accumulate(const loihi_slayer *L, const uint32_t *spk, int n_spk) {
#ifdef HAVE_AVX2_PATH
  if (L->avx2) {
    accumulate_i16_avx2(L->acc, L->wt, L->ld, spk, n_spk);
    return;
  }
#endif
  accumulate_i16(L->acc, L->wt, L->ld, spk, n_spk);
}

static int64_t shift_exp(int64_t a, int weight_exp) {
  if (weight_exp > 0) return a * ((int64_t)1 << weight_exp);
  return a >> (-weight_exp);
}

static void neurons_i(loihi_slayer *L) {
  const int64_t ku = LOIHI_DECAY_UNITY - L->du, kv = LOIHI_DECAY_UNITY - L->dv;
  L->n_spk = 0;
  for (int j = 0; j < L->n_out; j++) {
    int64_t a = shift_exp(L->pending[j], L->weight_exp);
    int64_t u = wrap24(decay_shift(L->u[j], ku) + a * 64);
    int64_t b = L->bias ? L->bias[j] : 0;
    int64_t v = clamp_v(decay_shift(L->v[j], kv) + u + b);
    L->u[j] = u;
    if (v > L->vth) {
      v = 0;
      L->spk[L->n_spk++] = (uint32_t)j;
    }
    L->v[j] = v;
  }
}

void loihi_effective_weights(const int32_t *w, size_t n, int32_t *eff, int *weight_exp) {
  int64_t mx = 0, mn = 0;
  for (size_t i = 0; i < n; i++) {
    if (i == 0 || w[i] > mx) mx = w[i];
    if (i == 0 || w[i] < mn) mn = w[i];
  }
  int clip = (mx > 254 && mn < 0) || (mn < -256 && mx > 0);
  for (size_t i = 0; i < n; i++) {
    int64_t x = w[i];
    if (clip) x = x < -256 ? -256 : (x > 254 ? 254 : x);
    eff[i] = (int32_t)x;
  }
  if (clip) {
    mx = mx > 254 ? 254 : mx;
    mn = mn < -256 ? -256 : mn;
  }
  *weight_exp = 0;
  if (n == 0 || (mx == 0 && mn == 0)) return; /* lava-dl fails here (log2 inf) */
  /* netx optimize_weight_bits: sign mode, scale bits, precision bits */
  int is_signed = !(mx < 0) && !(mn >= 0);
  double scale;
  if (is_signed) {
    double ps = mx > 0 ? 127.0 / (double)mx : INFINITY, ns = -128.0 / (double)mn;
    scale = ps < ns ? ps : ns;
  } else if (mx < 0) {
    scale = -256.0 / (double)mn;
  } else {
    scale = 255.0 / (double)mx;
  }
  int scale_bits = (int)floor(log2(scale)) + is_signed;
  int prec = 8;
  for (; prec > 0; prec--) {
    int64_t m = ((int64_t)1 << prec) - 1;
    size_t i = 0;
    while (i < n && (eff[i] & m) == 0) i++;
    if (i == n) break;
  }
  prec -= is_signed;
  int num_weight_bits = 8 - scale_bits - prec;
  *weight_exp = -scale_bits;
  for (size_t i = 0; i < n; i++)
    eff[i] = scale_bits >= 0 ? (int32_t)((int64_t)eff[i] * ((int64_t)1 << scale_bits))
                             : (int32_t)(eff[i] >> (-scale_bits));
  /* Lava PyDenseModelBitAcc: determine_sign_mode, clip_weights(8 bits),
   * truncate_weights(num_weight_bits) on the shifted weights */
  int64_t m2 = 0, n2 = 0;
  for (size_t i = 0; i < n; i++) {
    if (i == 0 || eff[i] > m2) m2 = eff[i];
    if (i == 0 || eff[i] < n2) n2 = eff[i];
  }
  int inhib = !(n2 >= 0) && m2 <= 0, mixed = !(n2 >= 0) && !(m2 <= 0);
  int ntb = 8 - num_weight_bits + mixed;
  if (ntb < 0) ntb = 0;
  if (ntb > 30) ntb = 30;
  for (size_t i = 0; i < n; i++) {
    int64_t x = inhib ? -(int64_t)eff[i] : eff[i];
    int64_t lo = mixed ? -256 : 0, hi = 255;
    x = x < lo ? lo : (x > hi ? hi : x);
    x = (x >> ntb) * ((int64_t)1 << ntb);
    eff[i] = (int32_t)(inhib ? -x : x);
  }
}

static int slayer_init(loihi_slayer *S, const loihi_layer *L, char *err, size_t errlen) {
  size_t nw = (size_t)L->n_in * (size_t)L->n_out;
  S->n_in = L->n_in;
  S->n_out = L->n_out;
  S->ld = (L->n_out + 2 * BLK - 1) / (2 * BLK) * (2 * BLK);
#ifdef HAVE_AVX2_PATH
  S->avx2 = __builtin_cpu_supports("avx2") != 0;
#endif
  int32_t *eff = malloc(sizeof(int32_t) * (nw ? nw : 1));
  S->wt = calloc((size_t)L->n_in * (size_t)S->ld, sizeof(int16_t));
  S->acc = calloc((size_t)S->ld, sizeof(int32_t));
  S->pending = calloc((size_t)S->ld, sizeof(int32_t));
  S->u = calloc((size_t)L->n_out, sizeof(int64_t));
  S->v = calloc((size_t)L->n_out, sizeof(int64_t));
  S->spk = calloc((size_t)L->n_out, sizeof(uint32_t));
  if (!eff || !S->wt || !S->acc || !S->pending || !S->u || !S->v || !S->spk) {
    free(eff);
    return ERR("out of memory");
  }
  loihi_effective_weights(L->weight, nw, eff, &S->weight_exp);
  for (int j = 0; j < L->n_out; j++)
    for (int i = 0; i < L->n_in; i++) /* |eff| <= 256 after Lava's clip */
      S->wt[(size_t)i * (size_t)S->ld + (size_t)j] = (int16_t)eff[(size_t)j * (size_t)L->n_in + (size_t)i];
  free(eff);
  S->du = L->i_decay;
  S->dv = L->v_decay;
  S->vth = L->vth_mant * 64;
  if (L->bias) {
    S->bias = malloc(sizeof(int64_t) * (size_t)L->n_out);
    if (!S->bias) return ERR("out of memory");
    for (int j = 0; j < L->n_out; j++) S->bias[j] = (int64_t)L->bias[j] * 64;
  }
  return 0;
}

static void slayer_free(loihi_slayer *S) {
  free(S->wt);
  free(S->acc);
  free(S->pending);
  free(S->u);
  free(S->v);
  free(S->spk);
  free(S->bias);
}

int loihi_sim_init(loihi_sim *s, const loihi_net *n, char *err, size_t errlen) {
  memset(s, 0, sizeof *s);
  int rc = loihi_net_check(n, err, errlen);
  if (rc) return rc;
  for (int l = 0; l < n->n_layers; l++)
    if ((int64_t)n->layers[l].n_in * 256 >= INT32_MAX)
      return ERR("layer %d: fan-in %d too large for 32-bit synaptic sums", l, n->layers[l].n_in);
  s->n_layers = n->n_layers;
  s->n_in = n->layers[0].n_in;
  s->n_out = n->layers[n->n_layers - 1].n_out;
  s->layers = calloc((size_t)n->n_layers, sizeof(loihi_slayer));
  s->in_stamp = calloc((size_t)s->n_in, sizeof(uint32_t));
  s->in_buf = malloc(sizeof(uint32_t) * (size_t)s->n_in);
  if (!s->layers || !s->in_stamp || !s->in_buf) {
    loihi_sim_free(s);
    return ERR("out of memory");
  }
  for (int l = 0; l < n->n_layers; l++) {
    rc = slayer_init(&s->layers[l], &n->layers[l], err, errlen);
    if (rc) {
      loihi_sim_free(s);
      return rc;
    }
  }
  return 0;
}

void loihi_sim_free(loihi_sim *s) {
  if (s->layers)
    for (int l = 0; l < s->n_layers; l++) slayer_free(&s->layers[l]);
  free(s->layers);
  free(s->in_stamp);
  free(s->in_buf);
  memset(s, 0, sizeof *s);
}

void loihi_sim_reset(loihi_sim *s) {
  for (int l = 0; l < s->n_layers; l++) {
    loihi_slayer *L = &s->layers[l];
    size_t n = (size_t)L->n_out;
    memset(L->acc, 0, (size_t)L->ld * sizeof(int32_t));
    memset(L->pending, 0, (size_t)L->ld * sizeof(int32_t));
    memset(L->u, 0, n * sizeof(int64_t));
    memset(L->v, 0, n * sizeof(int64_t));
    L->n_spk = 0;
  }
  s->spikes = s->synops = 0;
}

/* Keeps each in-range unit once; returns the count written to s->in_buf. */
static int dedupe_input(uint32_t *stamp_arr, uint32_t *stamp, int n_units, const uint32_t *in,
                        int n, uint32_t *out) {
  if (++*stamp == 0) {
    memset(stamp_arr, 0, sizeof(uint32_t) * (size_t)n_units);
    *stamp = 1;
  }
  int k = 0;
  for (int i = 0; i < n; i++) {
    uint32_t x = in[i];
    if (x >= (uint32_t)n_units || stamp_arr[x] == *stamp) continue;
    stamp_arr[x] = *stamp;
    out[k++] = x;
  }
  return k;
}

/* One step with input units already unique and in range. */
static void sim_step_unique(loihi_sim *s, const uint32_t *spk, int n_spk) {
  for (int l = 0; l < s->n_layers; l++) {
    loihi_slayer *L = &s->layers[l];
    int32_t *t = L->pending;
    L->pending = L->acc;
    L->acc = t;
    accumulate(L, spk, n_spk);
    s->synops += (uint64_t)n_spk * (uint64_t)L->n_out;
    neurons_i(L);
    s->spikes += (uint64_t)L->n_spk;
    spk = L->spk;
    n_spk = L->n_spk;
  }
}

void loihi_sim_step(loihi_sim *s, const uint32_t *in, int n) {
  int k = dedupe_input(s->in_stamp, &s->stamp, s->n_in, in, n, s->in_buf);
  sim_step_unique(s, s->in_buf, k);
}

/* Collects the distinct units of events[*pos..] that belong to step t into
 * buf (n_in entries), stamping them in stamp_arr. */
static int gather_step(const uint32_t *step, const uint32_t *unit, size_t n_events, size_t *pos,
                       uint32_t t, int steps, int n_in, uint32_t *stamp_arr, uint32_t *stamp,
                       uint32_t *buf, char *err, size_t errlen) {
  int k = 0;
  if (++*stamp == 0) {
    memset(stamp_arr, 0, sizeof(uint32_t) * (size_t)n_in);
    *stamp = 1;
  }
  while (*pos < n_events && step[*pos] == t) {
    uint32_t x = unit[*pos];
    if (x >= (uint32_t)n_in)
      return ERR("event %zu: unit %u out of range (network has %d inputs)", *pos, x, n_in);
    if (stamp_arr[x] != *stamp) {
      stamp_arr[x] = *stamp;
      buf[k++] = x;
    }
    (*pos)++;
  }
  if (*pos < n_events && step[*pos] < t)
    return ERR("event %zu: step %u out of order (events must be sorted by step)", *pos, step[*pos]);
  if (*pos < n_events && step[*pos] >= (uint32_t)steps)
    return ERR("event %zu: step %u out of range (steps = %d)", *pos, step[*pos], steps);
  return k;
}

int loihi_sim_sample(loihi_sim *s, const uint32_t *step, const uint32_t *unit, size_t n_events,
                     int steps, int32_t *counts, char *err, size_t errlen) {
  loihi_sim_reset(s);
  memset(counts, 0, sizeof(int32_t) * (size_t)s->n_out);
  size_t pos = 0;
  uint32_t *buf = s->in_buf;
  int total = steps + s->n_layers;
  for (int t = 0; t < total; t++) {
    int k = 0;
    if (t < steps) {
      k = gather_step(step, unit, n_events, &pos, (uint32_t)t, steps, s->n_in, s->in_stamp,
                      &s->stamp, buf, err, errlen);
      if (k < 0) return k;
    }
    sim_step_unique(s, buf, k);
    const loihi_slayer *L = &s->layers[s->n_layers - 1];
    for (int i = 0; i < L->n_spk; i++) counts[L->spk[i]]++;
  }
  if (pos < n_events)
    return ERR("event %zu: step %u out of range (steps = %d)", pos, step[pos], steps);
  return 0;
}

int loihi_argmax(const int32_t *counts, int n) {
  int best = n > 0 ? 0 : -1;
  for (int i = 1; i < n; i++)
    if (counts[i] > counts[best]) best = i;
  return best;
}

/* ---- float twin ----------------------------------------------------------
 * The float model of a `network` message, as the BioGrad learner defines it:
 * u = cdecay*u + a + b (bias into the current), v = vdecay*v + u, spike when
 * v > vth, then v = 0; with the same per-layer delay and flush steps as the
 * integer path so that the two accuracies compare like for like. */

static void accumulate_f32(float *restrict acc, const float *restrict wt, int n_out,
                           const uint32_t *spk, int n_spk) {
  memset(acc, 0, sizeof(float) * (size_t)n_out);
  for (int k = 0; k < n_spk; k++) {
    const float *restrict row = wt + (size_t)spk[k] * (size_t)n_out;
    for (int j = 0; j < n_out; j++) acc[j] += row[j];
  }
}

static void neurons_f(loihi_fslayer *L, float vth, float cdecay, float vdecay) {
  L->n_spk = 0;
  for (int j = 0; j < L->n_out; j++) {
    float u = L->u[j] * cdecay + L->pending[j] + (L->bias ? L->bias[j] : 0.0f);
    float v = L->v[j] * vdecay + u;
    L->u[j] = u;
    if (v > vth) {
      v = 0.0f;
      L->spk[L->n_spk++] = (uint32_t)j;
    }
    L->v[j] = v;
  }
}

int loihi_fsim_init(loihi_fsim *s, const loihi_fnet *f, char *err, size_t errlen) {
  memset(s, 0, sizeof *s);
  if (f->n_layers < 1) return ERR("network has no layers");
  s->n_layers = f->n_layers;
  s->vth = (float)f->vth;
  s->cdecay = (float)f->cdecay;
  s->vdecay = (float)f->vdecay;
  s->n_in = f->layers[0].n_in;
  s->n_out = f->layers[f->n_layers - 1].n_out;
  s->layers = calloc((size_t)f->n_layers, sizeof(loihi_fslayer));
  s->in_stamp = calloc((size_t)s->n_in, sizeof(uint32_t));
  s->in_buf = malloc(sizeof(uint32_t) * (size_t)s->n_in);
  if (!s->layers || !s->in_stamp || !s->in_buf) goto oom;
  for (int l = 0; l < f->n_layers; l++) {
    const loihi_flayer *F = &f->layers[l];
    loihi_fslayer *L = &s->layers[l];
    if (l > 0 && F->n_in != f->layers[l - 1].n_out) {
      loihi_fsim_free(s);
      return ERR("layer %d: %d inputs but layer %d has %d outputs", l, F->n_in, l - 1,
                 f->layers[l - 1].n_out);
    }
    L->n_in = F->n_in;
    L->n_out = F->n_out;
    L->bias = F->bias;
    size_t nw = (size_t)F->n_in * (size_t)F->n_out;
    L->wt = malloc(sizeof(float) * (nw ? nw : 1));
    L->acc = calloc((size_t)F->n_out, sizeof(float));
    L->pending = calloc((size_t)F->n_out, sizeof(float));
    L->u = calloc((size_t)F->n_out, sizeof(float));
    L->v = calloc((size_t)F->n_out, sizeof(float));
    L->spk = calloc((size_t)F->n_out, sizeof(uint32_t));
    if (!L->wt || !L->acc || !L->pending || !L->u || !L->v || !L->spk) goto oom;
    for (int j = 0; j < F->n_out; j++)
      for (int i = 0; i < F->n_in; i++)
        L->wt[(size_t)i * (size_t)F->n_out + (size_t)j] = F->weight[(size_t)j * (size_t)F->n_in + (size_t)i];
  }
  return 0;
oom:
  loihi_fsim_free(s);
  return ERR("out of memory");
}

void loihi_fsim_free(loihi_fsim *s) {
  if (s->layers)
    for (int l = 0; l < s->n_layers; l++) {
      loihi_fslayer *L = &s->layers[l];
      free(L->wt);
      free(L->acc);
      free(L->pending);
      free(L->u);
      free(L->v);
      free(L->spk);
    }
  free(s->layers);
  free(s->in_stamp);
  free(s->in_buf);
  memset(s, 0, sizeof *s);
}

int loihi_fsim_sample(loihi_fsim *s, const uint32_t *step, const uint32_t *unit, size_t n_events,
                      int steps, int32_t *counts, char *err, size_t errlen) {
  for (int l = 0; l < s->n_layers; l++) {
    loihi_fslayer *L = &s->layers[l];
    size_t n = (size_t)L->n_out * sizeof(float);
    memset(L->acc, 0, n);
    memset(L->pending, 0, n);
    memset(L->u, 0, n);
    memset(L->v, 0, n);
  }
  memset(counts, 0, sizeof(int32_t) * (size_t)s->n_out);
  size_t pos = 0;
  for (int t = 0; t < steps + s->n_layers; t++) {
    int k = 0;
    if (t < steps) {
      k = gather_step(step, unit, n_events, &pos, (uint32_t)t, steps, s->n_in, s->in_stamp,
                      &s->stamp, s->in_buf, err, errlen);
      if (k < 0) return k;
    }
    const uint32_t *spk = s->in_buf;
    int n_spk = k;
    for (int l = 0; l < s->n_layers; l++) {
      loihi_fslayer *L = &s->layers[l];
      float *tmp = L->pending;
      L->pending = L->acc;
      L->acc = tmp;
      accumulate_f32(L->acc, L->wt, L->n_out, spk, n_spk);
      neurons_f(L, s->vth, s->cdecay, s->vdecay);
      spk = L->spk;
      n_spk = L->n_spk;
    }
    const loihi_fslayer *L = &s->layers[s->n_layers - 1];
    for (int i = 0; i < L->n_spk; i++) counts[L->spk[i]]++;
  }
  if (pos < n_events)
    return ERR("event %zu: step %u out of range (steps = %d)", pos, step[pos], steps);
  return 0;
}
