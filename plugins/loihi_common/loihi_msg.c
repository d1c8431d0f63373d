/*
 * loihi_msg.c — `network` / `spikes` message readers and the pending-sample
 * store (see loihi_msg.h for why the store is compact).
 *
 * Every field is checked before use and errors name the field: a malformed
 * message becomes a stage error, never a crash.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loihi_msg.h"

#define ERR(...) loihi_errf(err, errlen, __VA_ARGS__)

static int num_field(myelin_obj map, const char *key, double *out, char *err, size_t errlen) {
  int rc = myelin_obj_float(myelin_obj_get(map, key), out);
  if (rc) return ERR("network: neuron.%s %s", key, rc == MYELIN_ENOENT ? "missing" : "not a number");
  if (!isfinite(*out)) return ERR("network: neuron.%s is not finite", key);
  return 0;
}

static int tensor_to_float(const myelin_tensor *t, float *out) {
  for (size_t i = 0; i < t->count; i++) {
    if (t->dtype == MYELIN_F4)
      out[i] = ((const float *)t->data)[i];
    else if (t->dtype == MYELIN_F8)
      out[i] = (float)((const double *)t->data)[i];
    else
      return -1;
  }
  return 0;
}

static int read_layer(myelin_obj lo, int l, loihi_flayer *L, char *err, size_t errlen) {
  myelin_tensor w, b;
  if (myelin_obj_str_copy(myelin_obj_get(lo, "name"), L->name, sizeof L->name) != 0)
    snprintf(L->name, sizeof L->name, "layer%d", l);
  if (myelin_obj_tensor(myelin_obj_get(lo, "weight"), &w) != 0 || w.ndim != 2)
    return ERR("network: layers[%d].weight missing or not a 2-D tensor", l);
  if (w.shape[0] < 1 || w.shape[1] < 1 || w.shape[0] > LOIHI_MAX_UNITS || w.shape[1] > LOIHI_MAX_UNITS)
    return ERR("network: layers[%d].weight has bad shape [%lld, %lld]", l, (long long)w.shape[0],
               (long long)w.shape[1]);
  L->n_out = (int)w.shape[0];
  L->n_in = (int)w.shape[1];
  L->weight = malloc(sizeof(float) * w.count);
  if (!L->weight) return ERR("out of memory");
  if (tensor_to_float(&w, L->weight)) return ERR("network: layers[%d].weight must be <f4 or <f8", l);
  myelin_obj bo = myelin_obj_get(lo, "bias");
  if (myelin_obj_exists(bo) && myelin_obj_type_of(bo) != MYELIN_OBJ_NIL) {
    if (myelin_obj_tensor(bo, &b) != 0 || b.count != (size_t)L->n_out)
      return ERR("network: layers[%d].bias must be a tensor of %d values", l, L->n_out);
    L->bias = malloc(sizeof(float) * b.count);
    if (!L->bias) return ERR("out of memory");
    if (tensor_to_float(&b, L->bias)) return ERR("network: layers[%d].bias must be <f4 or <f8", l);
  }
  return 0;
}

int loihi_fnet_from_msg(const myelin_msg *m, loihi_fnet *f, char *err, size_t errlen) {
  memset(f, 0, sizeof *f);
  myelin_obj model = myelin_msg_get(m, "model");
  if (myelin_obj_exists(model) && !myelin_obj_str_eq(model, "cuba_lif"))
    return ERR("network: model must be \"cuba_lif\"");
  myelin_obj neuron = myelin_msg_get(m, "neuron");
  if (myelin_obj_type_of(neuron) != MYELIN_OBJ_MAP) return ERR("network: 'neuron' map missing");
  int rc;
  if ((rc = num_field(neuron, "vth", &f->vth, err, errlen)) ||
      (rc = num_field(neuron, "cdecay", &f->cdecay, err, errlen)) ||
      (rc = num_field(neuron, "vdecay", &f->vdecay, err, errlen)))
    return rc;
  int64_t steps = 0;
  if (myelin_msg_int(m, "steps", &steps) == 0 && steps > 0 && steps < (1 << 24)) f->steps = (int)steps;
  myelin_obj layers = myelin_msg_get(m, "layers");
  size_t n = myelin_obj_len(layers);
  if (myelin_obj_type_of(layers) != MYELIN_OBJ_ARRAY || n < 1 || n > LOIHI_MAX_LAYERS)
    return ERR("network: 'layers' must be a list of 1 to %d layers", LOIHI_MAX_LAYERS);
  f->layers = calloc(n, sizeof(loihi_flayer));
  if (!f->layers) return ERR("out of memory");
  f->n_layers = (int)n;
  for (size_t l = 0; l < n; l++) {
    rc = read_layer(myelin_obj_at(layers, l), (int)l, &f->layers[l], err, errlen);
    if (rc == 0 && l > 0 && f->layers[l].n_in != f->layers[l - 1].n_out)
      rc = ERR("network: layers[%zu] has %d inputs but layers[%zu] has %d outputs", l,
               f->layers[l].n_in, l - 1, f->layers[l - 1].n_out);
    if (rc) {
      loihi_fnet_free(f);
      return rc;
    }
  }
  return 0;
}

int loihi_spikes_view(const myelin_msg *m, loihi_spikes *s, char *err, size_t errlen) {
  memset(s, 0, sizeof *s);
  myelin_tensor st, un;
  if (myelin_msg_int(m, "n", &s->n) != 0 || s->n < 1 || s->n > LOIHI_MAX_UNITS)
    return ERR("spikes: 'n' missing or outside [1, %d]", LOIHI_MAX_UNITS);
  if (myelin_msg_int(m, "steps", &s->steps) != 0 || s->steps < 1 || s->steps > (1 << 24))
    return ERR("spikes: 'steps' missing or out of range");
  if (myelin_msg_float(m, "dt", &s->dt) != 0) s->dt = 0;
  if (myelin_msg_tensor(m, "step", &st) != 0 || st.dtype != MYELIN_U4 || st.ndim != 1)
    return ERR("spikes: 'step' must be a <u4 [E] tensor");
  if (myelin_msg_tensor(m, "unit", &un) != 0 || un.dtype != MYELIN_U4 || un.ndim != 1)
    return ERR("spikes: 'unit' must be a <u4 [E] tensor");
  if (st.count != un.count)
    return ERR("spikes: 'step' has %zu events but 'unit' has %zu", st.count, un.count);
  s->step = st.data;
  s->unit = un.data;
  s->n_events = st.count;
  s->has_label = myelin_msg_int(m, "label", &s->label) == 0;
  return 0;
}

/* ---- store --------------------------------------------------------------- */

static size_t bitmap_bytes(int64_t n, int64_t steps) { return (size_t)((n * steps + 7) / 8); }

static int encode_sample(loihi_sample *x, const loihi_spikes *s, char *err, size_t errlen) {
  size_t bm = bitmap_bytes(s->n, s->steps);
  x->wide = s->n > 65535;
  size_t csr = sizeof(uint32_t) * (size_t)(s->steps + 1) + s->n_events * (x->wide ? 4 : 2);
  x->bitmap = bm < csr;
  x->data = calloc(1, x->bitmap ? bm : csr);
  if (!x->data) return ERR("out of memory holding spikes");
  for (size_t i = 0; i < s->n_events; i++) {
    if (s->unit[i] >= (uint64_t)s->n || s->step[i] >= (uint64_t)s->steps)
      return ERR("spikes: event %zu (step %u, unit %u) outside steps %lld x n %lld", i, s->step[i],
                 s->unit[i], (long long)s->steps, (long long)s->n);
    if (i > 0 && s->step[i] < s->step[i - 1])
      return ERR("spikes: event %zu out of order (events must be sorted by step)", i);
  }
  if (x->bitmap) {
    uint8_t *b = x->data;
    for (size_t i = 0; i < s->n_events; i++) {
      size_t bit = (size_t)s->step[i] * (size_t)s->n + s->unit[i];
      b[bit >> 3] |= (uint8_t)(1u << (bit & 7));
    }
    /* duplicates collapse in a bitmap; the simulator ignores them anyway */
    size_t cnt = 0;
    for (size_t k = 0; k < bm; k++) cnt += (size_t)__builtin_popcount(b[k]);
    x->n_events = cnt;
    return 0;
  }
  uint32_t *ptr = x->data;
  void *units = ptr + s->steps + 1;
  for (size_t i = 0; i < s->n_events; i++) {
    ptr[s->step[i] + 1]++;
    if (x->wide)
      ((uint32_t *)units)[i] = s->unit[i];
    else
      ((uint16_t *)units)[i] = (uint16_t)s->unit[i];
  }
  for (int64_t t = 0; t < s->steps; t++) ptr[t + 1] += ptr[t];
  x->n_events = s->n_events;
  return 0;
}

int loihi_store_push(loihi_store *st, const myelin_msg *m, const loihi_spikes *s, char *err,
                     size_t errlen) {
  if (st->len == st->cap) {
    size_t cap = st->cap ? st->cap * 2 : 256;
    loihi_sample *p = realloc(st->items, cap * sizeof *p);
    if (!p) return ERR("out of memory holding spikes");
    st->items = p;
    st->cap = cap;
  }
  loihi_sample *x = &st->items[st->len];
  memset(x, 0, sizeof *x);
  x->n = s->n;
  x->steps = s->steps;
  x->has_label = s->has_label;
  x->label = s->label;
  int rc = encode_sample(x, s, err, errlen);
  if (rc == 0) {
    myelin_builder *b = myelin_builder_new("ctx");
    if (b) myelin_build_context(b, m);
    x->ctx = b ? myelin_builder_finish(b) : NULL;
    if (!x->ctx) rc = ERR("out of memory holding spikes");
  }
  if (rc) {
    free(x->data);
    return rc;
  }
  st->bytes += x->bitmap ? bitmap_bytes(x->n, x->steps)
                         : sizeof(uint32_t) * (size_t)(x->steps + 1) + x->n_events * (x->wide ? 4 : 2);
  st->len++;
  return 0;
}

void loihi_sample_events(const loihi_sample *x, uint32_t *step, uint32_t *unit) {
  size_t k = 0;
  if (x->bitmap) {
    const uint8_t *b = x->data;
    for (int64_t t = 0; t < x->steps; t++)
      for (int64_t i = 0; i < x->n; i++) {
        size_t bit = (size_t)t * (size_t)x->n + (size_t)i;
        if (b[bit >> 3] & (1u << (bit & 7))) {
          step[k] = (uint32_t)t;
          unit[k++] = (uint32_t)i;
        }
      }
    return;
  }
  const uint32_t *ptr = x->data;
  const void *units = ptr + x->steps + 1;
  for (int64_t t = 0; t < x->steps; t++)
    for (uint32_t e = ptr[t]; e < ptr[t + 1]; e++) {
      step[k] = (uint32_t)t;
      unit[k++] = x->wide ? ((const uint32_t *)units)[e] : ((const uint16_t *)units)[e];
    }
}

void loihi_store_clear(loihi_store *st) {
  for (size_t i = 0; i < st->len; i++) {
    free(st->items[i].data);
    myelin_msg_unref(st->items[i].ctx);
  }
  free(st->items);
  memset(st, 0, sizeof *st);
}
