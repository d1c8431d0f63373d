/*
 * biograd_kernels.h — the numeric core of the BioGrad learner, free of any
 * myelin type so it can be tested and benchmarked alone.
 *
 * A network is L fully connected layers of current-based LIF neurons
 * (layer 0 is the input, layers 1..L-1 are hidden two-compartment neurons,
 * layer L is the output). Each hidden neuron has a spiking soma fed by
 * W_l s_{l-1} and a non-spiking apical compartment fed by error spikes of
 * layer l+1 through feedback weights B_l. plugins/biograd/README.md states
 * every equation and which ones follow the paper.
 *
 * Layout choices (the why):
 *  - W_l is stored TRANSPOSED, wt[l][j*n_out + i], so that one presynaptic
 *    spike of unit j touches one contiguous row: the forward pass and the
 *    weight update are event driven (only rows of spiking inputs are read or
 *    written).
 *  - Work is split by postsynaptic neuron ranges across threads. Every neuron
 *    sees the same summation order whatever the split, so results are
 *    bit-identical for any thread count.
 *  - Input spikes arrive as a raster in CSR form: ptr[t]..ptr[t+1] indexes the
 *    units firing at step t.
 */
#ifndef BIOGRAD_KERNELS_H
#define BIOGRAD_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#define BG_MAX_LAYERS 8 /* weight layers (hidden layers + 1) */

/* One sample's input spikes: CSR over steps. */
typedef struct bg_raster {
  int n;                /* input units */
  int steps;            /* T */
  const uint32_t *ptr;  /* [steps+1] */
  const uint32_t *unit; /* [ptr[steps]] unit indices, each < n */
} bg_raster;

/* Layers with a bias: all, only the output (no bias drives a hidden layer:
 * silent without input, as Loihi's energy budget wants), or none. */
enum { BG_BIAS_ALL = 0, BG_BIAS_OUTPUT = 1, BG_BIAS_NONE = 2 };
/* 1 when weight layer l (of L) has a bias under mode `bias`. */
static inline int bg_has_bias(int bias, int l, int L) {
  return bias == BG_BIAS_ALL || (bias == BG_BIAS_OUTPUT && l == L - 1);
}

typedef struct bg_config {
  int nlayers;                    /* weight layers L >= 1 */
  int sizes[BG_MAX_LAYERS + 1];   /* n_0 (inputs) .. n_L (classes) */
  int steps;                      /* T */
  float vth, cdecay, vdecay;      /* CUBA LIF */
  float lr;                       /* learning rate of hidden W and b */
  float lr_out;                   /* learning rate of the output layer */
  float lr_deep;                  /* hidden layers fed by a hidden layer learn at lr * lr_deep (0 = 1) */
  float feedback_lr;              /* sleep-phase rate of B */
  int sleep_steps;                /* steps per sleep phase */
  float sleep_rate;               /* spike probability per step in sleep */
  int threads;                    /* >= 1 */
  int bias;                       /* BG_BIAS_*: which layers have a (learned) bias */
  int random_feedback;            /* 0: B_l starts as W_{l+1}^T (the authors' start); 1: random (tests) */
  int feedback_kp;                /* 1: B_l also learns W_{l+1}^T's updates (Kolen-Pollack) */
  float init_gain[BG_MAX_LAYERS]; /* W_l ~ U(+-init_gain[l]/sqrt(fan_in)); 0 = 0.4 */
  uint64_t seed;
} bg_config;

typedef struct bg_net bg_net;

/* Creates a network with seeded random W (uniform +-g/sqrt(fan_in), g =
 * init_gain[l] or 0.4), b in the middle of the surrogate window, and
 * B_l = W_{l+1}^T (aligned, as the authors' constructor; random_feedback
 * draws B like W^T instead). NULL on bad config or allocation failure; err
 * gets the reason. */
bg_net *bg_net_new(const bg_config *cfg, char *err, size_t errlen);
void bg_net_free(bg_net *net);
const bg_config *bg_net_config(const bg_net *net);
/* Changes the learning rates (e.g. a per-epoch decay). */
void bg_set_rates(bg_net *net, float lr, float lr_out);

/* Parameter arrays (owned by the net; read or overwrite in place).
 * weight_t(l): [sizes[l] x sizes[l+1]] (transposed W_{l+1}); bias(l): [sizes[l+1]];
 * feedback(l) for l < nlayers-1: [sizes[l+1] x sizes[l+2]] (B maps layer
 * l+2's error to layer l+1's apical compartments). l is 0-based. */
float *bg_weight_t(bg_net *net, int l);
float *bg_bias(bg_net *net, int l);
float *bg_feedback(bg_net *net, int l);
/* The sleep-phase random generator state (4 words), for checkpoints. */
uint64_t *bg_rng_state(bg_net *net);

/* ---- elementwise kernels (exposed for tests) ------------------------------ */

/* One CUBA LIF step over n neurons: c = cd*c + in + b; v = vd*v*(1-s) + c;
 * s = v > vth. in and b may be NULL (zero). s holds 0/1 bytes. */
void bg_lif_step(int n, float *c, float *v, uint8_t *s, const float *in, const float *b, float cdecay,
                 float vdecay, float vth);

/* Rate of the rate-equivalent neuron for drive x (input per step):
 * C = x/(1-cdecay), r = clamp((C - c0)/(vth - c0), 0, 1), c0 = vth(1-vdecay). */
float bg_rate(float x, float cdecay, float vdecay, float vth);
/* dr/dx of bg_rate (0 outside the linear range). */
float bg_rate_slope(float x, float cdecay, float vdecay, float vth);

/* Spike count of an integrate-and-fire error neuron driven by |d| for T
 * steps (threshold 1, starts at 1/2): round(T |d|), signed like d. */
int bg_error_spikes(float d, int steps);

/* ---- learning ------------------------------------------------------------- */

/* Runs one sample. label < 0: inference only. When learn is nonzero (and
 * label >= 0) the BioGrad update is applied online. Returns the predicted
 * class (most output spikes; ties broken by summed output current, then by
 * lowest index). */
int bg_sample(bg_net *net, const bg_raster *in, int label, int learn);

/* Output spike counts of the last sample run ([classes]). */
const int32_t *bg_output_counts(const bg_net *net);
/* Spikes of weight layer l's neurons (layer l+1) in the last sample run. */
int64_t bg_layer_spikes(const bg_net *net, int l);

/* Like bg_sample with learning, but ADDS the would-be update of every weight
 * matrix (with its learning rate, same layout as weight_t) into acc[l] instead of
 * applying it. Used to measure the angle to the exact gradient. */
int bg_sample_update(bg_net *net, const bg_raster *in, int label, float *const *acc);

/* One sleep phase: for every hidden layer l, random spikes (probability
 * sleep_rate) drive layer l for sleep_steps steps; B_l moves toward W_{l+1}^T
 * by the local rule B += feedback_lr * (mean (s - rho) y^T - rho(1-rho) B),
 * y = W_{l+1} s the somatic drive of layer l+1. */
void bg_sleep(bg_net *net);

/* ---- rate-equivalent network (exact gradients, the backprop yardstick) ---- */

/* Exact gradient, summed over a batch of m samples x [m x n_0] (input
 * rates), of the rate-equivalent network with the given transposed
 * weights/biases under the matching loss of its output neurons,
 * L = sum_k integral_0^{z_k} (f(u) - y_k) du (so dL/dz_k = r_k - y_k).
 * Adds -scale * eta_l * dL/dW into acc_w[l] (layout of weight_t) and likewise
 * into acc_b[l] (may be NULL; only layers with a bias under cfg->bias), eta_l = the layer's rate under cfg
 * (lr, lr * lr_deep or lr_out, as bg_sample uses): scale 1 is one SGD step (acc = wt is allowed). Returns the
 * number of correct predictions (argmax r_L, ties to the lowest index). */
int bg_rate_grad(const bg_config *cfg, float *const *wt, float *const *b, const float *x, const int *labels,
                 int m, float scale, float *const *acc_w, float *const *acc_b);

/* Angle in degrees between two vectors (90 if either is zero). */
double bg_angle_deg(const float *a, const float *b, size_t n);
/* Angle between B_l and W_{l+2}^T, in degrees (l < nlayers-1). */
double bg_feedback_angle(bg_net *net, int l);

/* A small deterministic generator (xoshiro256**), also used by tests. */
void bg_rng_seed(uint64_t s[4], uint64_t seed);
uint64_t bg_rng_next(uint64_t s[4]);
float bg_rng_uniform(uint64_t s[4]); /* [0, 1) */

#endif
