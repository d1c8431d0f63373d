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
 *  - on x86-64 CPUs with AVX-512 (checked at run time) a step is computed 16
 *    units at a time: 8 hashes with native 64-bit vector multiplies, one
 *    unsigned compare, one compress-store of the firing units; elsewhere a
 *    scalar loop over the active pairs writes events branch-free (always
 *    store, advance by the comparison). Both paths give identical events;
 *  - pairs (or blocks of 16 units) that are all zero are skipped — about half
 *    of a Fashion-MNIST image is background.
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
  free(s->tm1);
  free(s->nz);
  free(s->active);
  int scalar = s->scalar_only;
  memset(s, 0, sizeof *s);
  s->scalar_only = scalar;
}

/* Sizes every per-unit array for `units` rounded up to a block of 16. */
static int scratch_reserve(spk_rate_scratch *s, size_t units) {
  size_t cap = (units + 15) / 16 * 16;
  if (cap <= s->cap) return 0;
  uint64_t *t = realloc(s->thr, cap * sizeof *t);
  if (!t) return -1;
  s->thr = t;
  uint32_t *m = realloc(s->tm1, cap * sizeof *m);
  if (!m) return -1;
  s->tm1 = m;
  uint16_t *z = realloc(s->nz, cap / 16 * sizeof *z);
  if (!z) return -1;
  s->nz = z;
  uint32_t *a = realloc(s->active, cap / 2 * sizeof *a);
  if (!a) return -1;
  s->active = a;
  s->cap = cap;
  return 0;
}

static inline uint64_t prob_threshold(float x, double gain) {
  double p = gain * (double)x;
  if (!(p > 0)) return 0; /* also NaN */
  if (p >= 1) return (uint64_t)1 << 32;
  return (uint64_t)(p * 4294967296.0);
}

/* Scalar path: thr = p * 2^32 per unit (a padding unit gets 0) and the list
 * of pairs with any thr != 0; returns how many. */
static size_t rate_prepare_scalar(const float *x, size_t n, double gain, spk_rate_scratch *s) {
  size_t na = 0;
  for (size_t i = 0; i < n; i++) s->thr[i] = prob_threshold(x[i], gain);
  if (n & 1) s->thr[n] = 0;
  for (size_t p = 0; p < (n + 1) / 2; p++) {
    s->active[na] = (uint32_t)p;
    na += (s->thr[2 * p] | s->thr[2 * p + 1]) != 0;
  }
  return na;
}

/* One step, scalar: hash each active pair, compare both halves, write the
 * events branch-free (always store, advance by the comparison). */
static size_t rate_step_scalar(const spk_rate_scratch *s, size_t na, uint64_t base, uint32_t t,
                               uint32_t *os, uint32_t *ou, size_t e) {
  const uint64_t *thr = s->thr;
  for (size_t j = 0; j < na; j++) {
    uint32_t p = s->active[j];
    uint64_t h = fmix64(base + (uint64_t)p * SPK_GAMMA);
    os[e] = t;
    ou[e] = 2 * p;
    e += (h & 0xffffffffULL) < thr[2 * p];
    os[e] = t;
    ou[e] = 2 * p + 1;
    e += (h >> 32) < thr[2 * p + 1];
  }
  return e;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(SPK_NO_SIMD)
#include <immintrin.h>
#define SPK_HAVE_AVX512 1

/* Vector path: per unit tm1 = thr - 1 (u < thr <=> u <= thr - 1, which fits
 * 32 bits even for p = 1; 0 when thr = 0) and per block of 16 units a mask
 * of thr != 0, with the scalar path's arithmetic (double p = gain * x,
 * truncated p * 2^32). Returns the number of units with thr != 0. */
__attribute__((target("avx512f,avx512dq,popcnt"))) static size_t
rate_prepare_avx512(const float *x, size_t n, double gain, spk_rate_scratch *s) {
  const __m512d g = _mm512_set1_pd(gain), two32 = _mm512_set1_pd(4294967296.0);
  const __m512d zero = _mm512_setzero_pd(), one = _mm512_set1_pd(1.0);
  const __m512i full_thr = _mm512_set1_epi64(1LL << 32), ones = _mm512_set1_epi64(1);
  size_t nnz = 0;
  for (size_t b = 0; b < (n + 15) / 16; b++) {
    size_t left = n - 16 * b;
    __mmask16 in = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
    __m512 xf = _mm512_maskz_loadu_ps(in, x + 16 * b);
    unsigned nz = 0;
    for (int h = 0; h < 2; h++) {
      __m256 xh = h ? _mm512_extractf32x8_ps(xf, 1) : _mm512_castps512_ps256(xf);
      __m512d p = _mm512_mul_pd(_mm512_cvtps_pd(xh), g);
      __mmask8 pos = _mm512_cmp_pd_mask(p, zero, _CMP_GT_OQ); /* false for NaN */
      __mmask8 full = _mm512_cmp_pd_mask(p, one, _CMP_GE_OQ);
      __m512i t = _mm512_maskz_cvttpd_epu64((__mmask8)(pos & ~full), _mm512_mul_pd(p, two32));
      t = _mm512_mask_mov_epi64(t, full, full_thr);
      __mmask8 nzq = _mm512_test_epi64_mask(t, t);
      t = _mm512_mask_sub_epi64(t, nzq, t, ones);
      _mm256_storeu_si256((__m256i *)(void *)(s->tm1 + 16 * b + 8 * h), _mm512_cvtepi64_epi32(t));
      nz |= (unsigned)nzq << (8 * h);
    }
    s->nz[b] = (uint16_t)nz;
    nnz += (size_t)_mm_popcnt_u32(nz);
  }
  return nnz;
}

/* One step, AVX-512: 8 pairs = 16 units per iteration. The 8 hashes viewed
 * as 16 little-endian u32 are exactly the uniforms of units 16b..16b+15 in
 * order (low half = even unit), so one unsigned compare against tm1 gives the
 * spike mask, and a compress-store writes the firing unit numbers in order.
 * Blocks whose 16 units are all zero are skipped. */
__attribute__((target("avx512f,avx512dq,popcnt"))) static size_t
rate_step_avx512(const spk_rate_scratch *s, size_t blocks, uint64_t base, uint32_t t, uint32_t *os,
                 uint32_t *ou, size_t e) {
  const __m512i lane_g = _mm512_mullo_epi64(_mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0),
                                            _mm512_set1_epi64((long long)SPK_GAMMA));
  const __m512i c1 = _mm512_set1_epi64((long long)0xbf58476d1ce4e5b9ULL);
  const __m512i c2 = _mm512_set1_epi64((long long)0x94d049bb133111ebULL);
  const __m512i iota = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  const __m512i tv = _mm512_set1_epi32((int)t);
  for (size_t b = 0; b < blocks; b++) {
    __mmask16 nz = s->nz[b];
    if (!nz) continue;
    __m512i z = _mm512_add_epi64(_mm512_set1_epi64((long long)(base + 8 * b * SPK_GAMMA)), lane_g);
    z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 30)), c1);
    z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 27)), c2);
    z = _mm512_xor_si512(z, _mm512_srli_epi64(z, 31));
    __m512i lim = _mm512_loadu_si512((const void *)(s->tm1 + 16 * b));
    __mmask16 k = _mm512_mask_cmple_epu32_mask(nz, z, lim);
    __m512i units = _mm512_add_epi32(iota, _mm512_set1_epi32((int)(16 * b)));
    _mm512_mask_compressstoreu_epi32(ou + e, k, units);
    _mm512_storeu_si512((void *)(os + e), tv); /* 16 slots reserved; the first popcount count */
    e += (size_t)_mm_popcnt_u32(k);
  }
  return e;
}

static int cpu_has_avx512(void) {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
}
#endif

int spk_rate(const float *x, size_t n, uint32_t steps, double gain, uint64_t key,
             spk_rate_scratch *s, spk_events *out) {
  if (n == 0) return 0;
  if (scratch_reserve(s, n) != 0) return -1;
#ifdef SPK_HAVE_AVX512
  if (!s->scalar_only && cpu_has_avx512()) {
    size_t nnz = rate_prepare_avx512(x, n, gain, s), blocks = (n + 15) / 16;
    for (uint32_t t = 0; t < steps; t++) {
      /* at most one event per non-zero unit, plus 16 slots for the vector stores */
      if (spk_events_reserve(out, out->n + nnz + 16) != 0) return -1;
      uint64_t base = key + ((uint64_t)t << 32) * SPK_GAMMA;
      out->n = rate_step_avx512(s, blocks, base, t, out->step, out->unit, out->n);
    }
    return 0;
  }
#endif
  size_t na = rate_prepare_scalar(x, n, gain, s);
  for (uint32_t t = 0; t < steps; t++) {
    if (spk_events_reserve(out, out->n + 2 * na) != 0) return -1;
    uint64_t base = key + ((uint64_t)t << 32) * SPK_GAMMA;
    out->n = rate_step_scalar(s, na, base, t, out->step, out->unit, out->n);
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
    if (!(s >= 0)) s = 0; /* also NaN (inf / inf) */
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
