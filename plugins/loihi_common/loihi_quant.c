/*
 * loihi_quant.c — float CUBA-LIF network -> Loihi integer registers.
 *
 * Follows lava-dl slayer's conventions. Loihi decays are the fraction LOST
 * per step on a 4096 scale, so a float model keeping `cdecay` of its current
 * each step gets iDecay = round((1 - cdecay) * 4096), clamped to [0, 4096].
 *
 * Weights, threshold and bias of one layer can all be multiplied by the same
 * lambda without changing that layer's spikes (the dynamics are linear and
 * reset is to 0), so each layer picks the largest lambda for which
 *   - W = clamp(round(lambda*w*64/2)*2, -256, 254) uses the 8-bit range
 *     (|lambda*w*32| <= 127),
 *   - vThMant = trunc(lambda*vth*64) <= 2^17 - 1,
 *   - the bias mantissa round(lambda*b*64) fits 13 bits signed.
 * Rounding is to nearest, ties to even (numpy's and torch's round).
 *
 * Bias: the float model adds b to the current (u = cdecay*u + a + b), Loihi
 * adds its bias to the voltage. A constant current b settles at
 * b/(1 - cdecay), so the voltage bias is b/(1 - cdecay) (1 - cdecay floored
 * at 1/4096): exact at steady state, approximate for the first steps.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loihi.h"

#define ERR(...) loihi_errf(err, errlen, __VA_ARGS__)

int loihi_errf(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return MYELIN_EINVAL;
}

void loihi_fnet_free(loihi_fnet *f) {
  if (f->layers)
    for (int l = 0; l < f->n_layers; l++) {
      free(f->layers[l].weight);
      free(f->layers[l].bias);
    }
  free(f->layers);
  memset(f, 0, sizeof *f);
}

void loihi_net_free(loihi_net *n) {
  if (n->layers)
    for (int l = 0; l < n->n_layers; l++) {
      free(n->layers[l].weight);
      free(n->layers[l].bias);
    }
  free(n->layers);
  memset(n, 0, sizeof *n);
}

int loihi_net_check(const loihi_net *n, char *err, size_t errlen) {
  if (n->n_layers < 1) return ERR("network has no dense layers");
  if (n->n_layers > LOIHI_MAX_LAYERS) return ERR("network has %d layers (max %d)", n->n_layers, LOIHI_MAX_LAYERS);
  for (int l = 0; l < n->n_layers; l++) {
    const loihi_layer *L = &n->layers[l];
    if (L->n_in < 1 || L->n_out < 1 || L->n_in > LOIHI_MAX_UNITS || L->n_out > LOIHI_MAX_UNITS)
      return ERR("layer %d: bad size %d -> %d", l, L->n_in, L->n_out);
    if (l > 0 && L->n_in != n->layers[l - 1].n_out)
      return ERR("layer %d: %d inputs but layer %d has %d outputs", l, L->n_in, l - 1,
                 n->layers[l - 1].n_out);
    if (L->i_decay < 0 || L->i_decay > LOIHI_DECAY_UNITY)
      return ERR("layer %d: iDecay %lld outside [0, 4096]", l, (long long)L->i_decay);
    if (L->v_decay < 0 || L->v_decay > LOIHI_DECAY_UNITY)
      return ERR("layer %d: vDecay %lld outside [0, 4096]", l, (long long)L->v_decay);
    if (L->vth_mant < 0 || L->vth_mant > ((int64_t)1 << 24))
      return ERR("layer %d: vThMant %lld outside [0, 2^24]", l, (long long)L->vth_mant);
    if (L->graded) return ERR("layer %d: graded spikes are not supported", l);
    if (!L->weight) return ERR("layer %d: no weights", l);
  }
  return 0;
}

int64_t loihi_decay_register(double keep) {
  double d = rint((1.0 - keep) * LOIHI_DECAY_UNITY);
  if (!(d >= 0)) d = 0; /* also NaN */
  if (d > LOIHI_DECAY_UNITY) d = LOIHI_DECAY_UNITY;
  return (int64_t)d;
}

static double bias_gain(double cdecay) { return 1.0 / fmax(1.0 - cdecay, 1.0 / LOIHI_DECAY_UNITY); }

static double layer_scale(const loihi_flayer *F, double vth, double cdecay, loihi_qinfo *q) {
  size_t nw = (size_t)F->n_in * (size_t)F->n_out;
  double wmax = 0, bmax = 0;
  for (size_t i = 0; i < nw; i++) wmax = fmax(wmax, fabs((double)F->weight[i]));
  if (F->bias)
    for (int j = 0; j < F->n_out; j++) bmax = fmax(bmax, fabs((double)F->bias[j]) * bias_gain(cdecay));
  double lam = LOIHI_VTH_MAX / (64.0 * vth);
  if (wmax > 0) lam = fmin(lam, 127.0 / (32.0 * wmax));
  if (bmax > 0) lam = fmin(lam, LOIHI_BIAS_MAX / (64.0 * bmax));
  q->w_absmax = wmax;
  q->scale = lam;
  return lam;
}

static int quantize_layer(const loihi_flayer *F, const loihi_fnet *f, loihi_layer *L,
                          loihi_qinfo *q, char *err, size_t errlen) {
  size_t nw = (size_t)F->n_in * (size_t)F->n_out;
  for (size_t i = 0; i < nw; i++)
    if (!isfinite(F->weight[i])) return ERR("weight %zu is not finite", i);
  double lam = layer_scale(F, f->vth, f->cdecay, q);
  L->n_in = F->n_in;
  L->n_out = F->n_out;
  L->weight = malloc(sizeof(int32_t) * (nw ? nw : 1));
  if (!L->weight) return ERR("out of memory");
  q->w_min = q->w_max = 0;
  for (size_t i = 0; i < nw; i++) {
    double w = rint(lam * (double)F->weight[i] * 32.0) * 2.0;
    w = w < LOIHI_W_MIN ? LOIHI_W_MIN : (w > LOIHI_W_MAX ? LOIHI_W_MAX : w);
    L->weight[i] = (int32_t)w;
    if (i == 0 || w < q->w_min) q->w_min = (int64_t)w;
    if (i == 0 || w > q->w_max) q->w_max = (int64_t)w;
  }
  if (F->bias) {
    L->bias = malloc(sizeof(int32_t) * (size_t)F->n_out);
    if (!L->bias) return ERR("out of memory");
    for (int j = 0; j < F->n_out; j++) {
      if (!isfinite(F->bias[j])) return ERR("bias %d is not finite", j);
      double b = rint(lam * (double)F->bias[j] * bias_gain(f->cdecay) * 64.0);
      b = b < LOIHI_BIAS_MIN ? LOIHI_BIAS_MIN : (b > LOIHI_BIAS_MAX ? LOIHI_BIAS_MAX : b);
      L->bias[j] = (int32_t)b;
    }
  }
  L->i_decay = loihi_decay_register(f->cdecay);
  L->v_decay = loihi_decay_register(f->vdecay);
  L->vth_mant = (int64_t)trunc(lam * f->vth * 64.0);
  if (L->vth_mant > LOIHI_VTH_MAX) L->vth_mant = LOIHI_VTH_MAX;
  L->ref_delay = 1;
  L->graded = 0;
  return 0;
}

int loihi_quantize(const loihi_fnet *f, loihi_net *out, loihi_qinfo *info, char *err,
                   size_t errlen) {
  memset(out, 0, sizeof *out);
  if (f->n_layers < 1) return ERR("network has no layers");
  if (!(f->vth > 0) || !isfinite(f->vth)) return ERR("neuron.vth must be > 0 (got %g)", f->vth);
  if (!(f->cdecay >= 0 && f->cdecay <= 1)) return ERR("neuron.cdecay must be in [0, 1] (got %g)", f->cdecay);
  if (!(f->vdecay >= 0 && f->vdecay <= 1)) return ERR("neuron.vdecay must be in [0, 1] (got %g)", f->vdecay);
  out->layers = calloc((size_t)f->n_layers, sizeof(loihi_layer));
  if (!out->layers) return ERR("out of memory");
  out->n_layers = f->n_layers;
  for (int l = 0; l < f->n_layers; l++) {
    loihi_qinfo q;
    char sub[200];
    int rc = quantize_layer(&f->layers[l], f, &out->layers[l], &q, sub, sizeof sub);
    if (rc) {
      snprintf(err, errlen, "layer %d (%s): %s", l, f->layers[l].name, sub);
      loihi_net_free(out);
      return rc;
    }
    if (info) info[l] = q;
  }
  int rc = loihi_net_check(out, err, errlen);
  if (rc) loihi_net_free(out);
  return rc;
}
