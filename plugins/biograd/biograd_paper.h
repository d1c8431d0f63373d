/*
 * biograd_paper.h — BioGrad exactly as its authors' code runs it (variant
 * `paper` of the biograd plugin), free of any myelin type.
 *
 * Plain LIF neurons (no synaptic current), a pseudo-derivative on the voltage
 * at every step, per-synapse leaky eligibility traces with a post-spike reset,
 * softmax(cumulative output counts) - label fed through two integrate-and-fire
 * error neurons per class, direct feedback B_l [n_l x classes] from the output
 * error spikes to every hidden layer, updates averaged over a batch, and a
 * sleep phase (Poisson +/- noise through the spiking network, Oja-style rule
 * on B_l). plugins/biograd/README.md ("variant: paper") states every equation.
 *
 * The per-synapse traces are never stored: the trace of synapse j -> i summed
 * over the sample is sum_tau x_j[tau] G_i[tau], with G_i obtained by one
 * backward recursion over the steps (README), so an update costs what the
 * forward pass costs and stays event driven. tests/biograd checks the weights
 * step by step against an independent numpy transcription that keeps the
 * traces as [out x in] matrices.
 *
 * Layouts follow biograd_kernels.h: W_l stored transposed ([n_in x n_out]),
 * input spikes as CSR over steps (bg_raster).
 */
#ifndef BIOGRAD_PAPER_H
#define BIOGRAD_PAPER_H

#include <stddef.h>
#include <stdint.h>

#include "biograd_kernels.h"

typedef struct bg_paper_config {
  int nlayers;                  /* weight layers L >= 1 */
  int sizes[BG_MAX_LAYERS + 1]; /* n_0 (inputs) .. n_L (classes) */
  int steps;                    /* T */
  float vth, vdecay;            /* plain LIF: v = vdecay v (1 - s) + W x + b; s = v > vth */
  float grad_win, grad_amp;     /* pseudo-derivative: grad_amp * 1[|v - vth| < grad_win] */
  int soft_start;               /* first step at which the output error is fed back (< steps) */
  float lr, lr_out;             /* SGD rates of the hidden layers and of the output layer */
  int sleep_steps;              /* steps of one sleep sample */
  int sleep_batch;              /* noise samples per hidden layer and sleep phase */
  float sleep_lr, oja_power;    /* B += sleep_lr (corr - mean(o^oja_power) B) */
  uint64_t seed;                /* initial weights and sleep noise */
  int bias;                     /* BG_BIAS_* (biograd_kernels.h): layers with a bias */
  int quantize;                 /* 1: 16-bit shadow weights, 8-bit inference weights (README) */
} bg_paper_config;

typedef struct bg_paper bg_paper;

/* A network with nn.Linear's default initialisation (W, b ~ U(+-1/sqrt(fan_in)))
 * and B_l = (W_L ... W_{l+1})^T. NULL on a bad config (err says why). */
bg_paper *bg_paper_new(const bg_paper_config *cfg, char *err, size_t errlen);
void bg_paper_free(bg_paper *p);
const bg_paper_config *bg_paper_cfg(const bg_paper *p);
void bg_paper_set_rates(bg_paper *p, float lr, float lr_out);

/* weight_t(l) [sizes[l] x sizes[l+1]], bias(l) [sizes[l+1]], and for
 * l < nlayers-1 feedback(l) [sizes[l+1] x classes]: B of hidden layer l+1. */
float *bg_paper_weight_t(bg_paper *p, int l);
float *bg_paper_bias(bg_paper *p, int l);
float *bg_paper_feedback(bg_paper *p, int l);
/* Recomputes every B_l from the current W (the aligned start; call after
 * loading weights that came without feedback weights). */
void bg_paper_align_feedback(bg_paper *p);
uint64_t *bg_paper_rng_state(bg_paper *p); /* sleep noise generator (4 words) */
/* The weights the forward pass uses: weight_t(l) itself, or with quantize its
 * 8-bit image (what an export should carry). */
const float *bg_paper_inference_weight_t(const bg_paper *p, int l);
/* With quantize: puts the shadow weights and biases on their 16-bit grid
 * (its step fixed at creation, or now when new_grid: the initial weights
 * span 12 of the 16 bits, step max|w| / 2047, as in the authors' lab's
 * quantized runs, so weights may grow 16x before they clamp) and refreshes
 * the 8-bit inference weights (step max|w| / 127, round half to even). Runs
 * after every update; call it with new_grid after loading initial weights.
 * No-op without quantize. */
void bg_paper_requantize(bg_paper *p, int new_grid);
/* The 16-bit grid step of layer l's shadow weights (0 without quantize). */
float bg_paper_shadow_step(const bg_paper *p, int l);

/* Runs one sample (all layers, all steps). label < 0 or !learn: inference.
 * With learn, the sample's update is added to the pending batch (weights do
 * not change until bg_paper_apply). Returns argmax of the output spike counts
 * (ties to the lowest index). */
int bg_paper_sample(bg_paper *p, const bg_raster *in, int label, int learn);
const int32_t *bg_paper_output_counts(const bg_paper *p);
/* Spikes of layer l+1 (0-based weight layer l) in the last sample run. */
int64_t bg_paper_layer_spikes(const bg_paper *p, int l);

/* Samples accumulated since the last apply. */
int bg_paper_pending(const bg_paper *p);
/* W -= lr * (mean over the pending samples of err x trace), same for b;
 * clears the batch. No-op when nothing is pending. */
void bg_paper_apply(bg_paper *p);

/* Sleep noise source: fills n bytes (0/1) with the noise of one hidden layer
 * for one phase, laid out [2 (+, -)][sleep_batch][sleep_steps][units].
 * Returns 0, or nonzero to abort the phase. */
typedef int (*bg_paper_noise_fn)(void *ctx, uint8_t *dst, size_t n);

/* One sleep phase: for each hidden layer, last first, sleep_batch samples of
 * +/- Bernoulli noise at that layer (rate drawn U(0,1) once per phase, shared
 * by all layers and both signs) drive the layers above to the output; B_l
 * moves by the Oja-style rule. noise = NULL uses the internal generator.
 * Returns 0, -1 on allocation failure, or the noise source's nonzero code. */
int bg_paper_sleep(bg_paper *p, bg_paper_noise_fn noise, void *ctx);

/* Angle in degrees between B_l and (W_L ... W_{l+2})^T (l < nlayers-1). */
double bg_paper_feedback_angle(bg_paper *p, int l);

#endif
