/*
 * encode.h — spike-encoding kernels: plain C over float arrays, no framework
 * types, so they are unit-tested and benchmarked alone and reused by other
 * plugins (biograd encodes its own inputs with the same functions).
 *
 * Every kernel appends events to an spk_events list in the order the
 * `spikes` message wants them: sorted by step, then by unit.
 *
 *   rate     P(unit i spikes at step t) = clamp(gain*x_i, 0, 1), independently
 *            per (t, i). The uniform draw is a pure function of
 *            (seed, epoch, index, step, unit) — a counter-based generator —
 *            so results never depend on threads, batching or call order.
 *   latency  one spike per unit with x_i > threshold, at step
 *            round_half_up((1 - x_i/max(x)) * (steps - 1)); none if max(x) <= 0.
 *   regular  v_i += gain*x_i each step; when v_i > 1: spike, v_i = 0.
 *   delta    for a series x[T][N]: unit 2c (up) spikes when
 *            x[t][c] - ref_c >= threshold, then ref_c += threshold; unit 2c+1
 *            (down) when ref_c - x[t][c] >= threshold, then ref_c -= threshold.
 *            ref_c starts at the first sample seen, so the first frame never
 *            spikes; ref + threshold*(ups - downs) tracks x within threshold
 *            while the signal moves by less than threshold per step (at most
 *            one spike per unit and step, so faster moves are followed with lag).
 */
#ifndef MYELIN_SPIKE_ENCODE_H
#define MYELIN_SPIKE_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A growable event list (two parallel arrays, ready to become the `step` and
 * `unit` tensors of a spikes message). Zero-initialize before first use. */
typedef struct spk_events {
  uint32_t *step;
  uint32_t *unit;
  size_t n, cap;
} spk_events;

int spk_events_reserve(spk_events *e, size_t cap); /* 0 or -1 (out of memory) */
void spk_events_free(spk_events *e);

/* The per-sample key of the rate generator. */
uint64_t spk_key(uint64_t seed, uint64_t epoch, uint64_t index);
/* The 32-bit uniform the rate coder compares for (key, step, unit):
 * spike iff spk_uniform32(...) < clamp(gain*x, 0, 1) * 2^32. */
uint32_t spk_uniform32(uint64_t key, uint32_t step, uint32_t unit);

/* Scratch for spk_rate (per-unit thresholds, masks, active pairs); reuse
 * across calls. Zero-initialize. scalar_only = 1 disables the AVX-512 path
 * (tests compare both; results are identical). */
typedef struct spk_rate_scratch {
  uint64_t *thr;    /* p * 2^32 per unit */
  uint32_t *tm1;    /* thr - 1 (0 when thr = 0) */
  uint16_t *nz;     /* per block of 16 units: bit j = unit has p > 0 */
  uint32_t *active; /* pairs with a non-zero probability */
  size_t cap;       /* units allocated (multiple of 16) */
  int scalar_only;
} spk_rate_scratch;
void spk_rate_scratch_free(spk_rate_scratch *s);

/* Appends rate-coded events of x[0..n) over `steps` steps. 0 or -1 (memory). */
int spk_rate(const float *x, size_t n, uint32_t steps, double gain, uint64_t key,
             spk_rate_scratch *s, spk_events *out);

int spk_latency(const float *x, size_t n, uint32_t steps, double threshold, spk_events *out);

/* v: per-unit membrane state [n], zeroed by the caller for a fresh sample. */
int spk_regular(const float *x, size_t n, uint32_t steps, double gain, double *v,
                spk_events *out);

/* x: T rows of n channels (row-major). ref: per-channel reference [n];
 * *primed = 0 makes the first row the reference (and emit nothing for it),
 * after which it is set to 1 — pass the same ref/primed for consecutive
 * chunks of one stream. step0: step number given to row 0. */
int spk_delta(const float *x, size_t T, size_t n, double threshold, double *ref, int *primed,
              uint32_t step0, spk_events *out);

#ifdef __cplusplus
}
#endif
#endif
