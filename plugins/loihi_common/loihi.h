/*
 * loihi.h — shared code of the loihi_export and loihi_sim plugins.
 *
 * Not a plugin: a static library compiled into both .so files and into the
 * tests. It holds three representations of a dense CUBA-LIF network:
 *
 *  - loihi_fnet: the float network of a `network` message (DESIGN.md §4),
 *    weights [out, in], one neuron model {vth, cdecay, vdecay} for all layers.
 *  - loihi_net: the integer network a lava-dl netx file describes: per layer
 *    the file's integer weights, optional bias mantissas and the CUBA neuron
 *    registers iDecay, vDecay, vThMant, refDelay. This is what .net files hold
 *    and what loihi_quantize() produces from a loihi_fnet.
 *  - loihi_sim: a prepared simulator for a loihi_net that reproduces Lava's
 *    bit-accurate models (PyDenseModelBitAcc + PyLifModelBitAcc), built with
 *    the effective weights netx and Lava derive (optimize_weight_bits, then
 *    clip and truncate). Weights are stored transposed, one contiguous row per
 *    input unit, so a step only touches the rows of inputs that spiked.
 *
 * loihi_fsim is the float twin of loihi_sim with the same step structure (one
 * step of synaptic delay per layer, reset to 0, same flush steps), used to
 * report the float accuracy beside the quantized one.
 *
 * Everything here is plain C over arrays; errors come back as negative
 * MYELIN_E* codes with a readable reason in an `err` buffer.
 */
#ifndef MYELIN_LOIHI_H
#define MYELIN_LOIHI_H

#include <stddef.h>
#include <stdint.h>

#include <myelin/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Loihi register limits. */
#define LOIHI_DECAY_UNITY 4096
#define LOIHI_VTH_MAX ((1 << 17) - 1) /* vThMant: unsigned 17 bits */
#define LOIHI_BIAS_MIN (-4096)        /* bias mantissa: signed 13 bits */
#define LOIHI_BIAS_MAX 4095
#define LOIHI_W_MIN (-256)            /* 8-bit mixed-sign weights, even */
#define LOIHI_W_MAX 254
#define LOIHI_MAX_LAYERS 64
#define LOIHI_MAX_UNITS (1 << 22)

/* ---- float network (a `network` message) --------------------------------- */
typedef struct loihi_flayer {
  int n_in, n_out;
  float *weight; /* [n_out * n_in], row-major */
  float *bias;   /* [n_out] or NULL */
  char name[64];
} loihi_flayer;

typedef struct loihi_fnet {
  int n_layers;
  loihi_flayer *layers;
  double vth, cdecay, vdecay; /* cdecay/vdecay: fraction kept per step */
  int steps;                  /* the learner's steps per sample, 0 if unknown */
} loihi_fnet;

void loihi_fnet_free(loihi_fnet *f);

/* ---- integer network (a netx file) --------------------------------------- */
typedef struct loihi_layer {
  int n_in, n_out;
  int32_t *weight; /* [n_out * n_in] file integers */
  int32_t *bias;   /* [n_out] mantissas or NULL */
  int64_t i_decay, v_decay, vth_mant, ref_delay;
  int graded;
} loihi_layer;

typedef struct loihi_net {
  int n_layers;
  loihi_layer *layers;
} loihi_net;

void loihi_net_free(loihi_net *n);
/* Checks layer chaining and register ranges; err names the layer. */
int loihi_net_check(const loihi_net *n, char *err, size_t errlen);

/* ---- quantization (lava-dl slayer conventions) --------------------------- */
typedef struct loihi_qinfo {
  double scale;     /* lambda: weight, threshold and bias multiplier */
  double w_absmax;  /* max |w| of the float layer */
  int64_t w_min, w_max;
} loihi_qinfo;

/* round((1 - keep) * 4096) clamped to [0, 4096]. */
int64_t loihi_decay_register(double keep);
/* Float network -> integer network; info (may be NULL) gets one entry per
 * layer. vth must be > 0, decays in [0, 1]. */
int loihi_quantize(const loihi_fnet *f, loihi_net *out, loihi_qinfo *info, char *err,
                   size_t errlen);

/* netx's optimize_weight_bits followed by Lava's clip_weights(8) and
 * truncate_weights(num_weight_bits): w[n] (file integers) becomes the
 * effective integer weights, *weight_exp the exponent applied to the sum. */
void loihi_effective_weights(const int32_t *w, size_t n, int32_t *eff, int *weight_exp);

/* ---- netx HDF5 (lava-dl) ------------------------------------------------- */
int loihi_netx_read(const char *path, loihi_net *out, char *err, size_t errlen);
/* The same from a file image in memory (fuzzing, tests). */
/* loihi_netx_read in a forked child: a file that crashes libhdf5 becomes an
 * error, not a crash (loihi_isolate.c). For user-supplied files. */
int loihi_netx_read_isolated(const char *path, loihi_net *out, char *err, size_t errlen);
int loihi_netx_read_mem(const void *buf, size_t len, loihi_net *out, char *err, size_t errlen);
int loihi_netx_write(const char *path, const loihi_net *n, char *err, size_t errlen);

/* ---- NIR HDF5 (neuromorphs/NIR) ------------------------------------------ */
#define LOIHI_NIR_VERSION "1.0.7"
/* dt: seconds per step, stored as the graph's metadata `dt` (/node/metadata/dt).
 * Numeric arrays are gzip-compressed (deflate 4, one chunk), as nir.write. */
int loihi_nir_write(const char *path, const loihi_net *n, double dt, char *err, size_t errlen);

/* ---- bit-accurate simulator ---------------------------------------------- */
typedef struct loihi_slayer {
  int n_in, n_out, ld; /* ld: row stride, n_out rounded up to 128 */
  int avx2;            /* use the AVX2 accumulation path */
  int16_t *wt;         /* [n_in * ld] effective weights, transposed */
  int weight_exp;
  int64_t du, dv, vth, bias_scalar; /* DU, DV, VTH = vThMant << 6 */
  int64_t *bias;                    /* [n_out] bias << 6, or NULL */
  int32_t *acc, *pending;           /* [ld] synaptic sums: this step, last step */
  int64_t *u, *v;
  uint32_t *spk;                    /* indices spiking this step */
  int n_spk;
} loihi_slayer;

typedef struct loihi_sim {
  int n_layers;
  loihi_slayer *layers;
  int n_in, n_out;
  uint32_t *in_stamp; /* dedupes input units within a step */
  uint32_t *in_buf;
  uint32_t stamp;
  uint64_t spikes, synops; /* running totals since the last reset */
} loihi_sim;

int loihi_sim_init(loihi_sim *s, const loihi_net *n, char *err, size_t errlen);
void loihi_sim_free(loihi_sim *s);
void loihi_sim_reset(loihi_sim *s);
/* One step: in[0..n) are the input units spiking now (duplicates and
 * out-of-range units are ignored). Afterwards layers[l].spk holds each
 * layer's spikes and u, v the states. */
void loihi_sim_step(loihi_sim *s, const uint32_t *in, int n);
/* Resets, runs `steps` input steps plus one flush step per layer and adds
 * every output spike to counts[n_out]. Events are (step[i], unit[i]) sorted
 * by step; returns MYELIN_EINVAL with err when an event is out of range or
 * out of order. */
int loihi_sim_sample(loihi_sim *s, const uint32_t *step, const uint32_t *unit, size_t n_events,
                     int steps, int32_t *counts, char *err, size_t errlen);

/* ---- float twin ---------------------------------------------------------- */
typedef struct loihi_fslayer {
  int n_in, n_out;
  float *wt; /* [n_in * n_out] */
  const float *bias;
  float *acc, *pending, *u, *v;
  uint32_t *spk;
  int n_spk;
} loihi_fslayer;

typedef struct loihi_fsim {
  int n_layers;
  loihi_fslayer *layers;
  float vth, cdecay, vdecay;
  int n_in, n_out;
  uint32_t *in_stamp, *in_buf, stamp;
} loihi_fsim;

int loihi_fsim_init(loihi_fsim *s, const loihi_fnet *f, char *err, size_t errlen);
void loihi_fsim_free(loihi_fsim *s);
int loihi_fsim_sample(loihi_fsim *s, const uint32_t *step, const uint32_t *unit, size_t n_events,
                      int steps, int32_t *counts, char *err, size_t errlen);

/* snprintf into err (when errlen > 0); returns MYELIN_EINVAL. */
int loihi_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* argmax, first index on ties; -1 when n == 0. */
int loihi_argmax(const int32_t *counts, int n);

#ifdef __cplusplus
}
#endif
#endif
