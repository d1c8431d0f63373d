/*
 * encode.c — the spike-encoding kernels of encode.h.
 *
 * Rate coding is the hot path (Fashion-MNIST: 784 pixels x 32 steps per
 * image, target 50,000 images/s on 2 cores), so it is shaped for speed:
 *
 *  - one SplitMix64 hash per (step, pair of units) gives two 32-bit
 *    uniforms: the low half for the even unit, the high half for the odd one.
 *    The counter is (step << 32 | pair) in the SplitMix64 stream of the
 *    sample's key, so each draw is a pure function of
 *    (seed, epoch, index, step, unit) and any thread may compute any sample;
 *  - each unit's probability is turned once per sample into an integer
 *    threshold p * 2^32 (2^32 itself for p = 1, so "always" is exact), and a
 *    spike is `uniform < threshold` — no float work in the inner loop;
 *  - pairs whose two units are both zero are skipped (about half of a
 *    Fashion-MNIST image is background);
 *  - events are written branch-free (always store, advance by the
 *    comparison), with capacity reserved per step.
 */
#include "encode.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SPK_GAMMA 0x9e3779b97f4a7c15ULL

static inline uint64_t fmix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

int spk_events_reserve(spk_events *e, size_t cap) {
  if (cap <= e->cap) return 0;
  size_t nc = e->cap ? e->cap : 1024;
  while (nc < cap) nc *= 2;
  uint32_t *s = realloc(e->step, nc * sizeof *s);
  if (!s) return -1;
  e->step = s;
  uint32_t *u = realloc(e->unit, nc * sizeof *u);
  if (!u) return -1;
  e->unit = u;
  e->cap = nc;
  return 0;
}

void spk_events_free(spk_events *e) {
  free(e->step);
  free(e->unit);
  memset(e, 0, sizeof *e);
}

uint64_t spk_key(uint64_t seed, uint64_t epoch, uint64_t index) {
  uint64_t k = fmix64(seed + SPK_GAMMA);
  k = fmix64(k ^ (epoch + 2 * SPK_GAMMA));
  return fmix64(k ^ (index + 3 * SPK_GAMMA));
}

static inline uint64_t pair_hash(uint64_t key, uint32_t step, uint32_t pair) {
  return fmix64(key + (((uint64_t)step << 32) | pair) * SPK_GAMMA);
}

uint32_t spk_uniform32(uint64_t key, uint32_t step, uint32_t unit) {
  uint64_t h = pair_hash(key, step, unit >> 1);
  return (unit & 1) ? (uint32_t)(h >> 32) : (uint32_t)h;
}

void spk_rate_scratch_free(spk_rate_scratch *s) {
  free(s->thr);
  free(s->active);
  memset(s, 0, sizeof *s);
}

static int scratch_reserve(spk_rate_scratch *s, size_t units) {
  if (units <= s->cap) return 0;
  uint64_t *t = realloc(s->thr, units * sizeof *t);
  if (!t) return -1;
  s->thr = t;
  uint32_t *a = realloc(s->active, (units / 2) * sizeof *a);
  if (!a) return -1;
  s->active = a;
  s->cap = units;
  return 0;
}

static inline uint64_t prob_threshold(float x, double gain) {
  double p = gain * (double)x;
  if (!(p > 0)) return 0; /* also NaN */
  if (p >= 1) return (uint64_t)1 << 32;
  return (uint64_t)(p * 4294967296.0);
}

/* Fills thresholds for 2*pairs units (a padding unit gets 0) and the list of
 * pairs with any non-zero threshold; returns how many. */
static size_t rate_prepare(const float *x, size_t n, double gain, spk_rate_scratch *s) {
  size_t pairs = (n + 1) / 2, na = 0;
  for (size_t i = 0; i < n; i++) s->thr[i] = prob_threshold(x[i], gain);
  if (n & 1) s->thr[n] = 0;
  for (size_t p = 0; p < pairs; p++) {
    s->active[na] = (uint32_t)p;
    na += (s->thr[2 * p] | s->thr[2 * p + 1]) != 0;
  }
  return na;
}

int spk_rate(const float *x, size_t n, uint32_t steps, double gain, uint64_t key,
             spk_rate_scratch *s, spk_events *out) {
  if (n == 0) return 0;
  if (scratch_reserve(s, 2 * ((n + 1) / 2)) != 0) return -1;
  size_t na = rate_prepare(x, n, gain, s);
  const uint64_t *thr = s->thr;
  const uint32_t *act = s->active;
  for (uint32_t t = 0; t < steps; t++) {
    if (spk_events_reserve(out, out->n + 2 * na) != 0) return -1;
    uint32_t *os = out->step, *ou = out->unit;
    size_t e = out->n;
    uint64_t base = key + ((uint64_t)t << 32) * SPK_GAMMA;
    for (size_t j = 0; j < na; j++) {
      uint32_t p = act[j];
      uint64_t h = fmix64(base + (uint64_t)p * SPK_GAMMA);
      os[e] = t;
      ou[e] = 2 * p;
      e += (h & 0xffffffffULL) < thr[2 * p];
      os[e] = t;
      ou[e] = 2 * p + 1;
      e += (h >> 32) < thr[2 * p + 1];
    }
    out->n = e;
  }
  return 0;
}

int spk_latency(const float *x, size_t n, uint32_t steps, double threshold, spk_events *out) {
  if (n == 0 || steps == 0) return 0;
  double mx = -INFINITY;
  for (size_t i = 0; i < n; i++)
    if ((double)x[i] > mx) mx = x[i];
  if (!(mx > 0)) return 0;
  /* Counting sort by step keeps units ascending within a step. */
  size_t *count = calloc((size_t)steps + 1, sizeof *count);
  uint32_t *at = malloc(n * sizeof *at);
  if (!count || !at) { free(count); free(at); return -1; }
  size_t total = 0;
  for (size_t i = 0; i < n; i++) {
    at[i] = UINT32_MAX;
    if (!((double)x[i] > threshold)) continue;
    double s = floor((1.0 - (double)x[i] / mx) * (double)(steps - 1) + 0.5);
    if (s < 0) s = 0;
    if (s > steps - 1) s = steps - 1;
    at[i] = (uint32_t)s;
    count[at[i] + 1]++;
    total++;
  }
  if (spk_events_reserve(out, out->n + total) != 0) { free(count); free(at); return -1; }
  for (uint32_t t = 0; t < steps; t++) count[t + 1] += count[t];
  for (size_t i = 0; i < n; i++) {
    if (at[i] == UINT32_MAX) continue;
    size_t e = out->n + count[at[i]]++;
    out->step[e] = at[i];
    out->unit[e] = (uint32_t)i;
  }
  out->n += total;
  free(count);
  free(at);
  return 0;
}

int spk_regular(const float *x, size_t n, uint32_t steps, double gain, double *v,
                spk_events *out) {
  for (uint32_t t = 0; t < steps; t++) {
    if (spk_events_reserve(out, out->n + n) != 0) return -1;
    size_t e = out->n;
    for (size_t i = 0; i < n; i++) {
      v[i] += gain * (double)x[i];
      int fire = v[i] > 1.0;
      out->step[e] = t;
      out->unit[e] = (uint32_t)i;
      e += (size_t)fire;
      if (fire) v[i] = 0;
    }
    out->n = e;
  }
  return 0;
}

int spk_delta(const float *x, size_t T, size_t n, double threshold, double *ref, int *primed,
              uint32_t step0, spk_events *out) {
  size_t t0 = 0;
  if (T > 0 && !*primed) {
    for (size_t i = 0; i < n; i++) ref[i] = x[i];
    *primed = 1;
    t0 = 1;
  }
  for (size_t t = t0; t < T; t++) {
    if (spk_events_reserve(out, out->n + 2 * n) != 0) return -1;
    const float *row = x + t * n;
    for (size_t i = 0; i < n; i++) {
      double d = (double)row[i] - ref[i];
      if (d >= threshold) {
        out->step[out->n] = step0 + (uint32_t)t;
        out->unit[out->n++] = (uint32_t)(2 * i);
        ref[i] += threshold;
      } else if (-d >= threshold) {
        out->step[out->n] = step0 + (uint32_t)t;
        out->unit[out->n++] = (uint32_t)(2 * i + 1);
        ref[i] -= threshold;
      }
    }
  }
  return 0;
}
