/*
 * biograd — the BioGrad learner as a myelin stage: spikes in, a trained
 * cuba_lif network and per-epoch metrics out. The numerics live in
 * biograd_kernels.c; this file is the glue: message decoding, epochs, the
 * held-out test split, checkpoints and output messages.
 *
 * Epochs follow the train stream's `epoch` field. When it changes (or the
 * train stream ends, or the `epochs` param is reached), the epoch that just
 * ended is closed: its train-side metrics (train_acc, grad_angle, feedback
 * angles, rates) are measured, its weights and biases are kept as a snapshot
 * and the checkpoint is written. Test scores wait for the whole test split:
 * the test port's end is only known when every input has ended, so flush()
 * scores each snapshot on the full test set, emits one `metrics` message per
 * epoch in order, then the `network`. Every number printed thus depends on
 * the seed alone, never on how the test stream interleaved with training.
 * Memory: one snapshot per epoch (weights + biases: 1.6 MB for 784-500-10,
 * 25 MB for 16 epochs), beside the test rasters.
 *
 * Test samples are kept as bit rasters (T x ceil(n/8) bytes each: 3 KiB for a
 * 784-pixel, 32-step sample), far smaller than the event lists of a dense rate
 * code. The first `probe` train samples are kept the same way: the probe
 * batch on which `grad_angle` compares the BioGrad update with the exact
 * gradient of the rate-equivalent network (computed without touching the
 * weights, so measuring never changes training).
 *
 * Checkpoints are .npz files (numpy can read them) holding every array and
 * counter training depends on; a run that finds one resumes after its last
 * epoch, skipping train messages of epochs already done, and produces the
 * same bits as an uninterrupted run.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "biograd_kernels.h"
#include "biograd_paper.h"
#include "myelin/myelin.h"

typedef struct bg_store { /* samples as bit rasters */
  size_t count, cap, stride;
  uint8_t *bits;
  int32_t *label;
  int64_t *index;
} bg_store;

typedef struct bg_epoch_rec { /* a closed epoch, waiting for the whole test split */
  int64_t epoch;
  float *params; /* weights then biases of every layer, at the end of the epoch */
  double train_acc, angle, per[BG_MAX_LAYERS], fb_angle[BG_MAX_LAYERS];
  double samples_per_s, train_samples, train_seconds;
} bg_epoch_rec;

typedef struct bgp {
  const myelin_host *host;
  myelin_stage *st;
  const myelin_params *p;
  bg_config cfg;
  bg_net *net; /* variant myelin */
  int paper;   /* variant paper: pn instead of net */
  bg_paper_config pcfg;
  bg_paper *pn;
  int64_t batch;         /* paper: samples per update */
  int sleep_after_batch; /* paper: sleep after every update (sleep_every unset) */
  char init_path[4096];  /* initial weights (.npz), "" = seeded init */
  char noise_path[4096]; /* paper: sleep noise (.npy |u1), "" = internal generator */
  myelin_array noise;
  size_t noise_pos;
  char trace_path[4096]; /* paper: parameters after each update and sleep (.npy) */
  float *trace;
  size_t trace_rows, trace_cap, trace_cols;
  double act_spikes[BG_MAX_LAYERS]; /* activity over the last scored test split */
  char checkpoint[4096];
  int64_t epochs_limit, sleep_every, probe_max;
  int want_predictions;
  double lr_decay;
  /* epochs */
  int64_t cur_epoch;   /* epoch field of the samples being trained, -1 = none yet */
  int64_t epochs_done; /* completed (evaluated) epochs, counting resumed ones */
  int pending;         /* the current epoch has trained samples not yet evaluated */
  int stopped;         /* `epochs` reached: ignore further train samples */
  uint64_t samples_total;
  int64_t ep_seen, ep_correct, skipped;
  double ep_seconds;
  /* data */
  bg_store test, probe;
  bg_epoch_rec *recs; /* closed epochs not yet scored */
  size_t n_recs;
  uint32_t *ptr, *unit;   /* CSR of the message being processed */
  uint32_t *eptr, *eunit; /* CSR of stored samples under evaluation (never the above:
                             an epoch ends while a train message is decoded) */
  size_t unit_cap;
} bgp;

/* ---- small helpers -------------------------------------------------------- */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The two variants behind one set of accessors. */
static int have_net(const bgp *g) { return g->net != NULL || g->pn != NULL; }
static float *net_wt(bgp *g, int l) { return g->pn ? bg_paper_weight_t(g->pn, l) : bg_weight_t(g->net, l); }
static float *net_b(bgp *g, int l) { return g->pn ? bg_paper_bias(g->pn, l) : bg_bias(g->net, l); }
static float *net_fb(bgp *g, int l) { return g->pn ? bg_paper_feedback(g->pn, l) : bg_feedback(g->net, l); }
static uint64_t *net_rng(bgp *g) { return g->pn ? bg_paper_rng_state(g->pn) : bg_rng_state(g->net); }
/* Columns of feedback(l): the layer above (myelin) or the classes (paper: direct feedback). */
static int fb_cols(const bgp *g, int l) {
  return g->paper ? g->cfg.sizes[g->cfg.nlayers] : g->cfg.sizes[l + 2];
}
static int net_sample(bgp *g, const bg_raster *r, int label, int learn) {
  return g->pn ? bg_paper_sample(g->pn, r, label, learn) : bg_sample(g->net, r, label, learn);
}
static const int32_t *net_counts(bgp *g) {
  return g->pn ? bg_paper_output_counts(g->pn) : bg_output_counts(g->net);
}
static int64_t net_spikes(bgp *g, int l) {
  return g->pn ? bg_paper_layer_spikes(g->pn, l) : bg_layer_spikes(g->net, l);
}

static int store_push(bg_store *s, const bg_raster *r, int32_t label, int64_t index) {
  if (s->count == s->cap) {
    size_t cap = s->cap ? 2 * s->cap : 256;
    uint8_t *bits = realloc(s->bits, cap * s->stride);
    int32_t *lab = realloc(s->label, cap * sizeof *lab);
    int64_t *idx = realloc(s->index, cap * sizeof *idx);
    if (bits) s->bits = bits;
    if (lab) s->label = lab;
    if (idx) s->index = idx;
    if (!bits || !lab || !idx) return MYELIN_ENOMEM;
    s->cap = cap;
  }
  uint8_t *b = s->bits + s->count * s->stride;
  memset(b, 0, s->stride);
  size_t row = (size_t)(r->n + 7) / 8;
  for (int t = 0; t < r->steps; t++)
    for (uint32_t e = r->ptr[t]; e < r->ptr[t + 1]; e++)
      b[(size_t)t * row + r->unit[e] / 8] |= (uint8_t)(1u << (r->unit[e] % 8));
  s->label[s->count] = label;
  s->index[s->count] = index;
  s->count++;
  return 0;
}

/* Expands stored sample i into the CSR scratch. */
static bg_raster store_get(bgp *g, const bg_store *s, size_t i) {
  int n = g->cfg.sizes[0], T = g->cfg.steps;
  size_t row = (size_t)(n + 7) / 8;
  const uint8_t *b = s->bits + i * s->stride;
  uint32_t k = 0;
  for (int t = 0; t < T; t++) {
    g->eptr[t] = k;
    for (int j = 0; j < n; j++)
      if (b[(size_t)t * row + j / 8] & (1u << (j % 8))) g->eunit[k++] = (uint32_t)j;
  }
  g->eptr[T] = k;
  bg_raster r = {n, T, g->eptr, g->eunit};
  return r;
}

static void store_free(bg_store *s) {
  free(s->bits);
  free(s->label);
  free(s->index);
  memset(s, 0, sizeof *s);
}

/* ---- decoding --------------------------------------------------------------- */

/* Checks a spikes message and fills the CSR scratch. */
static int decode_spikes(bgp *g, const myelin_msg *m, const char *port, bg_raster *out) {
  uint64_t n = 0, steps = 0;
  myelin_tensor ts, tu;
  if (myelin_msg_uint(m, "n", &n) != 0 || n == 0 || n > (1u << 20))
    return g->host->error(g->st, "%s: spikes message needs a field 'n' (units, 1..2^20)", port);
  if (myelin_msg_uint(m, "steps", &steps) != 0 || steps == 0 || steps > 100000)
    return g->host->error(g->st, "%s: spikes message needs a field 'steps' (1..100000)", port);
  if (myelin_msg_tensor(m, "step", &ts) != 0 || ts.dtype != MYELIN_U4 || ts.ndim != 1)
    return g->host->error(g->st, "%s: field 'step' must be a <u4 [E] tensor", port);
  if (myelin_msg_tensor(m, "unit", &tu) != 0 || tu.dtype != MYELIN_U4 || tu.ndim != 1 || tu.count != ts.count)
    return g->host->error(g->st, "%s: field 'unit' must be a <u4 [E] tensor as long as 'step'", port);
  if (have_net(g)) {
    if ((int)n != g->cfg.sizes[0])
      return g->host->error(g->st, "%s: field 'n' is %llu but the network has %d inputs", port,
                            (unsigned long long)n, g->cfg.sizes[0]);
    if ((int)steps != g->cfg.steps)
      return g->host->error(g->st, "%s: field 'steps' is %llu but the network runs %d steps", port,
                            (unsigned long long)steps, g->cfg.steps);
  } else if (g->cfg.steps > 0 && (int)steps != g->cfg.steps) {
    return g->host->error(g->st, "%s: field 'steps' is %llu but param steps is %d", port,
                          (unsigned long long)steps, g->cfg.steps);
  }
  if (ts.count > (size_t)n * steps)
    return g->host->error(g->st, "%s: %zu events for %llu units x %llu steps", port, ts.count,
                          (unsigned long long)n, (unsigned long long)steps);
  if (!g->ptr || g->unit_cap < (size_t)n * steps) {
    free(g->ptr);
    free(g->unit);
    g->ptr = malloc(sizeof(uint32_t) * (steps + 1));
    g->unit = malloc(sizeof(uint32_t) * n * steps);
    g->unit_cap = g->ptr && g->unit ? (size_t)n * steps : 0;
    if (!g->unit_cap) return g->host->error(g->st, "out of memory");
  }
  const uint32_t *st = ts.data, *un = tu.data;
  uint32_t t = 0;
  g->ptr[0] = 0;
  for (size_t e = 0; e < ts.count; e++) {
    if (st[e] >= steps || un[e] >= n)
      return g->host->error(g->st, "%s: event %zu (step %u, unit %u) outside %llu steps x %llu units", port,
                            e, st[e], un[e], (unsigned long long)steps, (unsigned long long)n);
    if (st[e] < t) return g->host->error(g->st, "%s: field 'step' is not sorted (event %zu)", port, e);
    while (t < st[e])
      g->ptr[++t] = (uint32_t)e;
    g->unit[e] = un[e];
  }
  while (t < steps)
    g->ptr[++t] = (uint32_t)ts.count;
  out->n = (int)n;
  out->steps = (int)steps;
  out->ptr = g->ptr;
  out->unit = g->unit;
  return 0;
}

static int msg_label(bgp *g, const myelin_msg *m, const char *port, int32_t *label) {
  int64_t v;
  if (myelin_msg_int(m, "label", &v) != 0)
    return g->host->error(g->st, "%s: spikes message has no integer field 'label'", port);
  if (v < 0 || v >= g->cfg.sizes[g->cfg.nlayers])
    return g->host->error(g->st, "%s: label %lld outside 0..%d (param classes)", port, (long long)v,
                          g->cfg.sizes[g->cfg.nlayers] - 1);
  *label = (int32_t)v;
  return 0;
}

/* ---- checkpoints -------------------------------------------------------------- */

static int checkpoint_save(bgp *g) {
  if (!g->checkpoint[0]) return 0;
  char err[512], key[32];
  if (myelin_mkdirs_for(g->checkpoint, err, sizeof err) != 0)
    return g->host->error(g->st, "checkpoint: %s", err);
  myelin_npz_writer *w = myelin_npz_open(g->checkpoint, err, sizeof err);
  if (!w) return g->host->error(g->st, "checkpoint: %s", err);
  int L = g->cfg.nlayers, rc = 0;
  int64_t meta[BG_MAX_LAYERS + 6];
  int64_t nm = 0;
  meta[nm++] = g->paper ? 2 : 1; /* format: 1 variant myelin, 2 variant paper */
  meta[nm++] = L;
  for (int l = 0; l <= L; l++)
    meta[nm++] = g->cfg.sizes[l];
  meta[nm++] = g->cfg.steps;
  meta[nm++] = g->epochs_done;
  meta[nm++] = (int64_t)g->samples_total;
  int64_t shape[2] = {nm, 0};
  rc = myelin_npz_add(w, "meta", MYELIN_I8, 1, shape, meta, err, sizeof err);
  shape[0] = 4;
  if (!rc) rc = myelin_npz_add(w, "rng", MYELIN_U8, 1, shape, net_rng(g), err, sizeof err);
  for (int l = 0; l < L && !rc; l++) {
    int64_t sw[2] = {g->cfg.sizes[l], g->cfg.sizes[l + 1]}, sb[1] = {g->cfg.sizes[l + 1]};
    snprintf(key, sizeof key, "wt%d", l);
    rc = myelin_npz_add(w, key, MYELIN_F4, 2, sw, net_wt(g, l), err, sizeof err);
    snprintf(key, sizeof key, "b%d", l);
    if (!rc) rc = myelin_npz_add(w, key, MYELIN_F4, 1, sb, net_b(g, l), err, sizeof err);
    if (!rc && l + 1 < L) {
      int64_t sf[2] = {g->cfg.sizes[l + 1], fb_cols(g, l)};
      snprintf(key, sizeof key, "fb%d", l);
      rc = myelin_npz_add(w, key, MYELIN_F4, 2, sf, net_fb(g, l), err, sizeof err);
    }
  }
  if (rc) {
    myelin_npz_abort(w);
    return g->host->error(g->st, "checkpoint %s: %s", g->checkpoint, err);
  }
  if (myelin_npz_close(w, err, sizeof err) != 0) return g->host->error(g->st, "checkpoint: %s", err);
  return 0;
}

/* Reads array `key` of the .npz `path` (param `what`) into dst. */
static int load_array(bgp *g, const char *what, const char *path, const char *key, myelin_dtype dt,
                      size_t count, void *dst) {
  char err[512];
  myelin_array a;
  if (myelin_npz_read(path, key, &a, err, sizeof err) != 0)
    return g->host->error(g->st, "%s %s: %s", what, path, err);
  int ok = a.dtype == dt && a.count == count;
  if (ok) memcpy(dst, a.data, a.nbytes);
  myelin_array_free(&a);
  if (!ok)
    return g->host->error(
        g->st, "%s %s: array '%s' has the wrong type or size for this network (want %s, %zu values)", what,
        path, key, dt == MYELIN_F4 ? "<f4" : "<u8", count);
  return 0;
}

/* Weights wt<l>, biases b<l> and feedback fb<l> (fb optional when
 * feedback_optional: the paper variant then aligns B with the loaded W). */
static int load_params(bgp *g, const char *what, const char *path, int feedback_optional) {
  char key[32];
  int L = g->cfg.nlayers, rc = 0, have_fb = 1;
  if (feedback_optional && L > 1) {
    char **names = NULL, err[512];
    int n = myelin_npz_list(path, &names, err, sizeof err);
    if (n < 0) return g->host->error(g->st, "%s %s: %s", what, path, err);
    have_fb = 0;
    for (int i = 0; i < n; i++) {
      have_fb |= strcmp(names[i], "fb0") == 0;
      free(names[i]);
    }
    free(names);
  }
  for (int l = 0; l < L && !rc; l++) {
    snprintf(key, sizeof key, "wt%d", l);
    rc = load_array(g, what, path, key, MYELIN_F4, (size_t)g->cfg.sizes[l] * g->cfg.sizes[l + 1],
                    net_wt(g, l));
    snprintf(key, sizeof key, "b%d", l);
    if (!rc) rc = load_array(g, what, path, key, MYELIN_F4, (size_t)g->cfg.sizes[l + 1], net_b(g, l));
    if (!rc && l + 1 < L && have_fb) {
      snprintf(key, sizeof key, "fb%d", l);
      rc = load_array(g, what, path, key, MYELIN_F4, (size_t)g->cfg.sizes[l + 1] * fb_cols(g, l),
                      net_fb(g, l));
    }
  }
  if (!rc && g->pn) bg_paper_requantize(g->pn, strcmp(what, "init") == 0); /* a checkpoint keeps its grid */
  if (!rc && !have_fb && g->pn) bg_paper_align_feedback(g->pn);
  return rc;
}

/* Resumes from the checkpoint if the file exists. */
static int checkpoint_load(bgp *g) {
  if (!g->checkpoint[0] || access(g->checkpoint, F_OK) != 0) return 0;
  char err[512];
  myelin_array meta;
  if (myelin_npz_read(g->checkpoint, "meta", &meta, err, sizeof err) != 0)
    return g->host->error(g->st, "checkpoint %s: %s", g->checkpoint, err);
  int L = g->cfg.nlayers, ok = meta.dtype == MYELIN_I8 && meta.count == (size_t)L + 6;
  const int64_t *m = meta.data;
  ok = ok && m[0] == (g->paper ? 2 : 1) && m[1] == L; /* format 1: variant myelin, 2: paper */
  for (int l = 0; ok && l <= L; l++)
    ok = m[2 + l] == g->cfg.sizes[l];
  ok = ok && m[3 + L] == g->cfg.steps;
  int64_t done = ok ? m[4 + L] : 0, total = ok ? m[5 + L] : 0;
  myelin_array_free(&meta);
  if (!ok)
    return g->host->error(g->st,
                          "checkpoint %s was written for another variant, architecture or step count (delete "
                          "it or change param checkpoint)",
                          g->checkpoint);
  int rc = load_array(g, "checkpoint", g->checkpoint, "rng", MYELIN_U8, 4, net_rng(g));
  if (!rc) rc = load_params(g, "checkpoint", g->checkpoint, 0);
  if (rc) return rc;
  g->epochs_done = done;
  g->samples_total = (uint64_t)total;
  if (g->epochs_limit > 0 && done >= g->epochs_limit) g->stopped = 1;
  g->host->log(g->st, MYELIN_LOG_INFO, "resumed from %s after %lld epoch(s)", g->checkpoint, (long long)done);
  return 0;
}

/* Learning rates of the coming epoch: lr * lr_decay^epochs_done. */
static void apply_rates(bgp *g) {
  double f = 1.0;
  for (int64_t e = 0; e < g->epochs_done; e++)
    f *= g->lr_decay;
  if (g->pn)
    bg_paper_set_rates(g->pn, (float)(g->pcfg.lr * f), (float)(g->pcfg.lr_out * f));
  else
    bg_set_rates(g->net, (float)(g->cfg.lr * f), (float)(g->cfg.lr_out * f));
}

/* ---- network creation -------------------------------------------------------------- */

static int make_net(bgp *g, const bg_raster *r) {
  char err[256];
  g->cfg.sizes[0] = r->n;
  g->cfg.steps = r->steps;
  if (g->paper) {
    memcpy(g->pcfg.sizes, g->cfg.sizes, sizeof g->pcfg.sizes);
    g->pcfg.nlayers = g->cfg.nlayers;
    g->pcfg.steps = r->steps;
    g->pn = bg_paper_new(&g->pcfg, err, sizeof err);
    if (!g->pn) return g->host->error(g->st, "cannot build the network: %s", err);
  } else {
    g->net = bg_net_new(&g->cfg, err, sizeof err);
    if (!g->net) return g->host->error(g->st, "cannot build the network: %s", err);
  }
  int lrc = g->init_path[0] ? load_params(g, "init", g->init_path, 1) : 0;
  if (lrc) return lrc;
  g->eptr = malloc(sizeof(uint32_t) * (size_t)(r->steps + 1));
  g->eunit = malloc(sizeof(uint32_t) * (size_t)r->steps * (size_t)r->n);
  if (!g->eptr || !g->eunit) return g->host->error(g->st, "out of memory");
  size_t stride = (size_t)r->steps * (size_t)((r->n + 7) / 8);
  if (g->test.count > 0 && g->test.stride != stride)
    return g->host->error(g->st, "train samples (n %d, steps %d) differ in shape from the test samples", r->n,
                          r->steps);
  g->test.stride = g->probe.stride = stride;
  int rc = checkpoint_load(g);
  if (rc == 0) apply_rates(g);
  return rc;
}

/* ---- evaluation and output ------------------------------------------------------------ */

static double probe_angles(bgp *g, double *per_layer) {
  int L = g->cfg.nlayers, n0 = g->cfg.sizes[0];
  size_t m = g->probe.count;
  if (m == 0 || g->paper) return -1; /* paper: no rate-equivalent network to compare with */
  float *u[BG_MAX_LAYERS] = {0}, *gr[BG_MAX_LAYERS] = {0}, *wt[BG_MAX_LAYERS], *b[BG_MAX_LAYERS];
  float *rates = calloc(m * (size_t)n0, sizeof(float));
  int *labels = calloc(m, sizeof(int)), ok = rates && labels;
  for (int l = 0; l < L; l++) {
    size_t k = (size_t)g->cfg.sizes[l] * g->cfg.sizes[l + 1];
    u[l] = calloc(k, sizeof(float));
    gr[l] = calloc(k, sizeof(float));
    wt[l] = bg_weight_t(g->net, l);
    b[l] = bg_bias(g->net, l);
    ok = ok && u[l] && gr[l];
  }
  double mean = -1;
  if (ok) {
    for (size_t i = 0; i < m; i++) {
      bg_raster r = store_get(g, &g->probe, i);
      labels[i] = g->probe.label[i];
      bg_sample_update(g->net, &r, labels[i], u);
      for (uint32_t e = 0; e < r.ptr[r.steps]; e++)
        rates[i * n0 + r.unit[e]] += 1.0f / (float)r.steps;
    }
    bg_rate_grad(&g->cfg, wt, b, rates, labels, (int)m, 1.0f, gr, NULL);
    mean = 0;
    for (int l = 0; l < L; l++) {
      per_layer[l] = bg_angle_deg(u[l], gr[l], (size_t)g->cfg.sizes[l] * g->cfg.sizes[l + 1]);
      mean += per_layer[l] / L;
    }
  }
  for (int l = 0; l < L; l++)
    free(u[l]), free(gr[l]);
  free(rates);
  free(labels);
  return mean;
}

/* One `predictions` message (schemas/predictions.yaml) for test sample i. */
static int emit_prediction(bgp *g, size_t i, int pred, int64_t epoch) {
  myelin_builder *b = myelin_builder_new("predictions");
  if (!b) return MYELIN_ENOMEM;
  int64_t shape[1] = {g->cfg.sizes[g->cfg.nlayers]};
  myelin_build_tensor_copy(b, "data", MYELIN_I4, 1, shape, net_counts(g));
  myelin_build_int(b, "prediction", pred);
  myelin_build_int(b, "label", g->test.label[i]);
  myelin_build_int(b, "index", g->test.index[i]);
  myelin_build_str(b, "split", "test");
  myelin_build_int(b, "epoch", epoch);
  myelin_msg *m = myelin_builder_finish(b);
  if (!m) return g->host->error(g->st, "cannot build a predictions message");
  return g->host->emit(g->st, 2, m);
}

/* Copies every layer's weights and biases to dst (to_net = 0) or back. */
static size_t net_params(bgp *g, float *dst, int to_net) {
  size_t k = 0;
  for (int l = 0; l < g->cfg.nlayers; l++) {
    size_t nw = (size_t)g->cfg.sizes[l] * (size_t)g->cfg.sizes[l + 1], nb = (size_t)g->cfg.sizes[l + 1];
    float *w = net_wt(g, l), *b = net_b(g, l);
    if (dst && to_net) {
      memcpy(w, dst + k, nw * sizeof *w);
      memcpy(b, dst + k + nw, nb * sizeof *b);
    } else if (dst) {
      memcpy(dst + k, w, nw * sizeof *w);
      memcpy(dst + k + nw, b, nb * sizeof *b);
    }
    k += nw + nb;
  }
  if (dst && to_net && g->pn) bg_paper_requantize(g->pn, 0); /* the 8-bit image of the restored weights */
  return k;
}

/* ---- variant paper: batches, sleep, trace -------------------------------------------------- */

/* Sleep noise from param sleep_noise, consumed in order (bg_paper_noise_fn). */
static int noise_from_file(void *ctx, uint8_t *dst, size_t n) {
  bgp *g = ctx;
  if (g->noise_pos + n > g->noise.count) return 1;
  memcpy(dst, (const uint8_t *)g->noise.data + g->noise_pos, n);
  g->noise_pos += n;
  return 0;
}

/* Appends [kind, samples seen, every wt<l>, b<l>, fb<l>] to the trace
 * (kind 1 = after an update, 2 = after a sleep phase). */
static int trace_record(bgp *g, int kind) {
  if (!g->trace_path[0]) return 0;
  int L = g->cfg.nlayers;
  if (!g->trace_cols) {
    size_t k = 2;
    for (int l = 0; l < L; l++) {
      k += (size_t)g->cfg.sizes[l] * g->cfg.sizes[l + 1] + (size_t)g->cfg.sizes[l + 1];
      if (l + 1 < L) k += (size_t)g->cfg.sizes[l + 1] * fb_cols(g, l);
    }
    g->trace_cols = k;
  }
  if (g->trace_rows == g->trace_cap) {
    size_t cap = g->trace_cap ? 2 * g->trace_cap : 64;
    float *t = realloc(g->trace, cap * g->trace_cols * sizeof *t);
    if (!t)
      return g->host->error(g->st, "trace: out of memory (%zu records of %zu values)", cap, g->trace_cols);
    g->trace = t;
    g->trace_cap = cap;
  }
  float *row = g->trace + g->trace_rows++ * g->trace_cols;
  *row++ = (float)kind;
  *row++ = (float)g->samples_total;
  for (int l = 0; l < L; l++) {
    size_t nw = (size_t)g->cfg.sizes[l] * g->cfg.sizes[l + 1], nb = (size_t)g->cfg.sizes[l + 1];
    memcpy(row, net_wt(g, l), nw * sizeof *row);
    memcpy(row + nw, net_b(g, l), nb * sizeof *row);
    row += nw + nb;
    if (l + 1 < L) {
      size_t nf = nb * (size_t)fb_cols(g, l);
      memcpy(row, net_fb(g, l), nf * sizeof *row);
      row += nf;
    }
  }
  return 0;
}

static int trace_write(bgp *g) {
  if (!g->trace_path[0]) return 0;
  char err[512];
  int64_t shape[2] = {(int64_t)g->trace_rows, (int64_t)g->trace_cols};
  if (myelin_mkdirs_for(g->trace_path, err, sizeof err) != 0 ||
      myelin_npy_write(g->trace_path, MYELIN_F4, 2, shape,
                       g->trace ? (const void *)g->trace : (const void *)"", err, sizeof err) != 0)
    return g->host->error(g->st, "trace: %s", err);
  return 0;
}

static int paper_sleep(bgp *g) {
  if (g->cfg.nlayers < 2) return 0; /* no hidden layer, no feedback weights */
  int rc = bg_paper_sleep(g->pn, g->noise_path[0] ? noise_from_file : NULL, g);
  if (rc == -1) return g->host->error(g->st, "out of memory");
  if (rc)
    return g->host->error(g->st,
                          "sleep_noise %s: exhausted after %zu bytes (each phase takes 2 x sleep_batch x "
                          "sleep_steps x units bytes per hidden layer)",
                          g->noise_path, g->noise_pos);
  return trace_record(g, 2);
}

/* Applies the pending batch; sleeps after it when that is the cadence. */
static int paper_update(bgp *g) {
  bg_paper_apply(g->pn);
  int rc = trace_record(g, 1);
  if (!rc && g->sleep_after_batch) rc = paper_sleep(g);
  return rc;
}

/* Closes the epoch that just ended: measures its train-side metrics, keeps a
 * snapshot of its weights for scoring in flush, saves the checkpoint. */
static int close_epoch(bgp *g) {
  if (!g->pending) return 0;
  g->pending = 0;
  int prc = g->pn && bg_paper_pending(g->pn) > 0 ? paper_update(g) : 0; /* the last, partial batch */
  if (prc) return prc;
  bg_epoch_rec *nr = realloc(g->recs, (g->n_recs + 1) * sizeof *nr);
  if (!nr) return g->host->error(g->st, "out of memory");
  g->recs = nr;
  bg_epoch_rec *r = &g->recs[g->n_recs];
  memset(r, 0, sizeof *r);
  if (!(r->params = malloc(net_params(g, NULL, 0) * sizeof(float))))
    return g->host->error(g->st, "out of memory");
  g->n_recs++;
  net_params(g, r->params, 0);
  r->epoch = g->cur_epoch;
  r->train_acc = g->ep_seen ? (double)g->ep_correct / (double)g->ep_seen : 0.0;
  r->angle = probe_angles(g, r->per);
  for (int l = 0; l + 1 < g->cfg.nlayers; l++)
    r->fb_angle[l] = g->pn ? bg_paper_feedback_angle(g->pn, l) : bg_feedback_angle(g->net, l);
  r->samples_per_s = g->ep_seconds > 0 ? (double)g->ep_seen / g->ep_seconds : 0.0;
  r->train_samples = (double)g->ep_seen;
  r->train_seconds = g->ep_seconds;
  g->host->log(g->st, MYELIN_LOG_INFO,
               "epoch %lld trained: train_acc %.4f, %.0f samples/s (test_acc once the test split has ended)",
               (long long)r->epoch, r->train_acc, r->samples_per_s);
  g->epochs_done++;
  apply_rates(g);
  g->ep_seen = g->ep_correct = 0;
  g->ep_seconds = 0;
  return checkpoint_save(g);
}

/* Scores closed epoch r on the whole test split and emits its metrics. */
static int score_epoch(bgp *g, const bg_epoch_rec *r) {
  size_t nt = g->test.count;
  net_params(g, r->params, 1);
  int64_t correct = 0;
  int rc = 0, L = g->cfg.nlayers, T = g->cfg.steps;
  double spikes[BG_MAX_LAYERS] = {0}, in_spikes = 0, neurons = 0, silent = 0;
  for (size_t i = 0; i < nt && rc == 0; i++) {
    bg_raster x = store_get(g, &g->test, i);
    int pred = net_sample(g, &x, -1, 0);
    correct += pred == g->test.label[i];
    in_spikes += (double)x.ptr[x.steps];
    for (int l = 0; l < L; l++)
      spikes[l] += (double)net_spikes(g, l);
    if (g->want_predictions) rc = emit_prediction(g, i, pred, r->epoch);
  }
  if (rc) return rc;
  double test_acc = nt ? (double)correct / (double)nt : 0.0;
  /* activity: spikes per neuron per step over the test split, synaptic events
   * (a spike times its fan-out) per sample, and the same network given no input */
  memset(g->eptr, 0, sizeof(uint32_t) * (size_t)(T + 1));
  bg_raster quiet = {g->cfg.sizes[0], T, g->eptr, g->eunit};
  net_sample(g, &quiet, -1, 0);
  double all = 0, synops = in_spikes * g->cfg.sizes[1];
  for (int l = 0; l < L; l++) {
    neurons += g->cfg.sizes[l + 1];
    all += spikes[l];
    silent += (double)net_spikes(g, l);
    if (l + 1 < L) synops += spikes[l] * g->cfg.sizes[l + 2];
  }
  double denom = nt ? (double)nt * T : 1.0;
  myelin_builder *b = myelin_builder_new("metrics");
  if (!b) return MYELIN_ENOMEM;
  myelin_build_str(b, "stage", g->host->stage_id(g->st));
  myelin_build_int(b, "epoch", r->epoch);
  myelin_build_map_begin(b, "values");
  myelin_build_float(b, "train_acc", r->train_acc);
  myelin_build_float(b, "test_acc", test_acc);
  if (r->angle >= 0) myelin_build_float(b, "grad_angle", r->angle);
  myelin_build_float(b, "samples_per_s", r->samples_per_s);
  myelin_build_float(b, "train_samples", r->train_samples);
  myelin_build_float(b, "test_samples", (double)nt);
  myelin_build_float(b, "train_seconds", r->train_seconds);
  myelin_build_float(b, "spikes_per_neuron_step", all / (denom * neurons));
  myelin_build_float(b, "synops_per_sample", nt ? synops / (double)nt : 0.0);
  myelin_build_float(b, "silent_spikes_per_neuron_step", silent / ((double)T * neurons));
  for (int l = 0; l < L; l++) {
    char key[40];
    snprintf(key, sizeof key, "spikes_per_neuron_step_%d", l + 1);
    myelin_build_float(b, key, spikes[l] / (denom * g->cfg.sizes[l + 1]));
  }
  for (int l = 0; l + 1 < g->cfg.nlayers; l++) {
    char key[32];
    snprintf(key, sizeof key, "feedback_angle_%d", l + 1);
    myelin_build_float(b, key, r->fb_angle[l]);
  }
  for (int l = 0; r->angle >= 0 && l < g->cfg.nlayers; l++) {
    char key[32];
    snprintf(key, sizeof key, "grad_angle_%d", l + 1);
    myelin_build_float(b, key, r->per[l]);
  }
  myelin_build_map_end(b);
  myelin_msg *m = myelin_builder_finish(b);
  if (!m) return g->host->error(g->st, "cannot build the metrics message");
  g->host->log(g->st, MYELIN_LOG_INFO,
               "epoch %lld: train_acc %.4f test_acc %.4f (%zu) grad_angle %.1f, %.0f samples/s",
               (long long)r->epoch, r->train_acc, test_acc, nt, r->angle, r->samples_per_s);
  return g->host->emit(g->st, 1, m);
}

/* flush: every closed epoch scored in order on the whole test split; the net
 * is left with the last epoch's weights (the trained network). */
static int score_epochs(bgp *g) {
  int rc = 0;
  for (size_t i = 0; i < g->n_recs && rc == 0; i++)
    rc = score_epoch(g, &g->recs[i]);
  if (g->n_recs) net_params(g, g->recs[g->n_recs - 1].params, 1);
  return rc;
}

static int emit_network(bgp *g) {
  const bg_config *c = &g->cfg;
  myelin_builder *b = myelin_builder_new("network");
  if (!b) return MYELIN_ENOMEM;
  myelin_build_str(b, "model", "cuba_lif");
  myelin_build_map_begin(b, "neuron"); /* paper: plain LIF = cuba_lif without current (cdecay 0) */
  myelin_build_float(b, "vth", g->paper ? g->pcfg.vth : c->vth);
  myelin_build_float(b, "cdecay", g->paper ? 0.0 : c->cdecay);
  myelin_build_float(b, "vdecay", g->paper ? g->pcfg.vdecay : c->vdecay);
  myelin_build_map_end(b);
  myelin_build_int(b, "steps", c->steps);
  myelin_build_array_begin(b, "layers");
  for (int l = 0; l < c->nlayers; l++) {
    int ni = c->sizes[l], no = c->sizes[l + 1];
    char name[32];
    snprintf(name, sizeof name, "fc%d", l + 1);
    myelin_build_map_begin(b, NULL);
    myelin_build_str(b, "name", name);
    int64_t sw[2] = {no, ni}, sb[1] = {no};
    float *w = myelin_build_tensor(b, "weight", MYELIN_F4, 2, sw);
    const float *wt =
        g->pn ? bg_paper_inference_weight_t(g->pn, l) : net_wt(g, l); /* quantize: the 8-bit image */
    if (w)
      for (int i = 0; i < no; i++)
        for (int j = 0; j < ni; j++)
          w[(size_t)i * ni + j] = wt[(size_t)j * no + i];
    /* a layer without bias (bias: output or none) has no field: the netx
     * file and the export manifest then say it has none */
    if (bg_has_bias(c->bias, l, c->nlayers))
      myelin_build_tensor_copy(b, "bias", MYELIN_F4, 1, sb, net_b(g, l));
    myelin_build_map_end(b);
  }
  myelin_build_array_end(b);
  myelin_build_map_begin(b, "feedback");
  myelin_build_str(b, "method", g->paper ? "biograd-paper" : "biograd");
  myelin_build_str(b, "layout",
                   g->paper ? "weights[l] is [units of hidden layer l+1, classes]: output error spikes "
                              "to the apical compartments of hidden layer l+1 (direct feedback)"
                            : "weights[l] is [units of hidden layer l+1, units of layer l+2]: "
                              "error spikes of layer l+2 to apical compartments of layer l+1");
  myelin_build_array_begin(b, "weights");
  for (int l = 0; l + 1 < c->nlayers; l++) {
    int64_t sf[2] = {c->sizes[l + 1], fb_cols(g, l)};
    myelin_build_tensor_copy(b, NULL, MYELIN_F4, 2, sf, net_fb(g, l));
  }
  myelin_build_array_end(b);
  myelin_build_int(b, "epochs", g->epochs_done);
  myelin_build_map_end(b);
  myelin_msg *m = myelin_builder_finish(b);
  if (!m) return g->host->error(g->st, "cannot build the network message");
  int rc = g->host->emit(g->st, 0, m);
  return rc == MYELIN_ESTOP ? 0 : rc;
}

/* ---- callbacks ----------------------------------------------------------------------- */

static int train_one(bgp *g, const myelin_msg *m) {
  bg_raster r;
  int32_t label;
  int rc = decode_spikes(g, m, "train", &r);
  if (rc) return rc;
  if (!have_net(g) && (rc = make_net(g, &r)) != 0) return rc;
  if ((rc = msg_label(g, m, "train", &label)) != 0) return rc;
  int64_t epoch = 0;
  if (myelin_obj_exists(myelin_msg_get(m, "epoch")) && myelin_msg_int(m, "epoch", &epoch) != 0)
    return g->host->error(g->st, "train: field 'epoch' must be an integer");
  if (epoch < g->epochs_done && g->cur_epoch < 0) { /* resumed: epoch already trained */
    g->skipped++;
    return 0;
  }
  if (g->cur_epoch >= 0 && epoch != g->cur_epoch) {
    if (g->epochs_limit > 0 && g->epochs_done + 1 >= g->epochs_limit)
      g->stopped = 1; /* the last epoch is evaluated in flush, with the whole test split */
    else if ((rc = close_epoch(g)) != 0)
      return rc;
  }
  if (g->stopped) return 0;
  g->cur_epoch = epoch;
  if (g->probe.count < (size_t)g->probe_max && (rc = store_push(&g->probe, &r, label, 0)) != 0)
    return g->host->error(g->st, "out of memory");
  double t0 = now_s();
  int pred = net_sample(g, &r, label, 1);
  g->samples_total++;
  int sleep_now =
      !g->sleep_after_batch && g->sleep_every > 0 && g->samples_total % (uint64_t)g->sleep_every == 0;
  if (g->pn) {
    if (bg_paper_pending(g->pn) >= g->batch && (rc = paper_update(g)) != 0) return rc;
    if (sleep_now && (rc = paper_sleep(g)) != 0) return rc;
  } else if (sleep_now) {
    bg_sleep(g->net);
  }
  g->ep_seconds += now_s() - t0;
  g->ep_seen++;
  g->ep_correct += pred == label;
  g->pending = 1;
  g->host->counter_add(g->st, "train_samples", 1);
  return 0;
}

static int test_one(bgp *g, const myelin_msg *m) {
  bg_raster r;
  int32_t label;
  int rc = decode_spikes(g, m, "test", &r);
  if (rc) return rc;
  if ((rc = msg_label(g, m, "test", &label)) != 0) return rc;
  if (!have_net(g)) { /* test samples may arrive before any train one */
    size_t stride = (size_t)r.steps * (size_t)((r.n + 7) / 8);
    if (g->test.count > 0 && g->test.stride != stride)
      return g->host->error(g->st, "test: field 'n' or 'steps' changed between samples");
    g->test.stride = stride;
  }
  int64_t index = (int64_t)g->test.count;
  if (myelin_obj_exists(myelin_msg_get(m, "index"))) myelin_msg_int(m, "index", &index);
  if (store_push(&g->test, &r, label, index) != 0) return g->host->error(g->st, "out of memory");
  return 0;
}

static int bgp_process(void *state, int port, myelin_msg *m) {
  bgp *g = state;
  return port == 0 ? train_one(g, m) : test_one(g, m);
}

static int bgp_flush(void *state) {
  bgp *g = state;
  if (!have_net(g)) {
    g->host->log(g->st, MYELIN_LOG_WARN, "no train samples arrived: nothing learned, no network emitted");
    return 0;
  }
  if (g->skipped)
    g->host->log(g->st, MYELIN_LOG_INFO, "skipped %lld train samples of epochs already in the checkpoint",
                 (long long)g->skipped);
  int rc = close_epoch(g);
  if (rc == 0) rc = trace_write(g);
  if (rc == 0) rc = score_epochs(g);
  if (rc == MYELIN_ESTOP) return 0;
  if (rc) return rc;
  return emit_network(g);
}

static void bgp_fini(void *state) {
  bgp *g = state;
  if (!g) return;
  bg_net_free(g->net);
  bg_paper_free(g->pn);
  myelin_array_free(&g->noise);
  free(g->trace);
  store_free(&g->test);
  store_free(&g->probe);
  for (size_t i = 0; i < g->n_recs; i++)
    free(g->recs[i].params);
  free(g->recs);
  free(g->ptr);
  free(g->unit);
  free(g->eptr);
  free(g->eunit);
  free(g);
}

static int bgp_validate(const myelin_params *p, myelin_validate_ctx *ctx) {
  int rc = 0;
  size_t nh = myelin_param_len(p, "hidden");
  if (nh + 1 > BG_MAX_LAYERS)
    rc = myelin_validate_error(ctx, "hidden", "at most %d hidden layers", BG_MAX_LAYERS - 1);
  for (size_t i = 0; i < nh; i++)
    if (myelin_param_int_at(p, "hidden", i) < 1 || myelin_param_int_at(p, "hidden", i) > 65536)
      rc = myelin_validate_error(ctx, "hidden", "hidden layer %zu has %lld units (want 1..65536)", i + 1,
                                 (long long)myelin_param_int_at(p, "hidden", i));
  if (!myelin_validate_input_kinds(ctx, "train"))
    rc = myelin_validate_error(ctx, NULL, "input 'train' must be connected");
  int paper = strcmp(myelin_param_str(p, "variant"), "paper") == 0;
  if (!paper) {
    static const char *const paper_only[] = {"soft_start", "grad_win",    "grad_amp", "sleep_batch",
                                             "oja_power",  "sleep_noise", "trace",    "quantize"};
    for (size_t i = 0; i < sizeof paper_only / sizeof *paper_only; i++)
      if (myelin_param_is_set(p, paper_only[i]))
        rc = myelin_validate_error(ctx, paper_only[i], "%s belongs to variant paper (set variant: paper)",
                                   paper_only[i]);
    if (myelin_param_int(p, "batch") > 1)
      rc = myelin_validate_error(
          ctx, "batch", "variant myelin updates after every sample (batch 1); batches need variant paper");
  } else {
    if (myelin_param_is_set(p, "cdecay") && myelin_param_float(p, "cdecay") != 0.0)
      rc = myelin_validate_error(ctx, "cdecay",
                                 "variant paper has plain LIF neurons without synaptic current (cdecay 0)");
    if (myelin_param_is_set(p, "sleep_rate"))
      rc = myelin_validate_error(
          ctx, "sleep_rate",
          "variant paper draws its sleep rate from U(0,1) each phase; sleep_rate is variant myelin's");
    if (myelin_param_is_set(p, "lr_deep"))
      rc = myelin_validate_error(ctx, "lr_deep", "variant paper has one rate for every hidden layer (lr)");
    if (myelin_param_is_set(p, "init_gain"))
      rc = myelin_validate_error(ctx, "init_gain",
                                 "variant paper initialises as the authors' nn.Linear (U(+-1/sqrt(fan_in)))");
    if (myelin_param_is_set(p, "feedback_rule") && strcmp(myelin_param_str(p, "feedback_rule"), "sleep") != 0)
      rc = myelin_validate_error(ctx, "feedback_rule",
                                 "variant paper learns its feedback in sleep only (the authors' Oja rule)");
    if (myelin_param_int(p, "probe") > 0 && myelin_param_is_set(p, "probe"))
      rc = myelin_validate_error(ctx, "probe", "grad_angle (probe) is measured for variant myelin only");
  }
  return rc;
}

/* A param's value, or the paper's default when variant paper leaves it unset. */
static double pick(const myelin_params *p, int paper, const char *name, double paper_default) {
  return paper && !myelin_param_is_set(p, name) ? paper_default : myelin_param_float(p, name);
}

/* Copies path param `name` into dst (""  when unset); nonzero if too long. */
static int path_param(const myelin_params *p, const char *name, char *dst, size_t cap) {
  const char *v = myelin_param_str(p, name);
  if (!v) v = "";
  if (strlen(v) >= cap) return -1;
  snprintf(dst, cap, "%s", v);
  return 0;
}

/* fini is not called when init fails: free what init made. */
static int init_fail(bgp *g, void **state, int rc) {
  myelin_array_free(&g->noise);
  free(g);
  *state = NULL;
  return rc;
}

static int bgp_init(const myelin_host *host, myelin_stage *st, const myelin_params *p, void **state) {
  bgp *g = calloc(1, sizeof *g);
  if (!g) return MYELIN_ENOMEM;
  g->host = host;
  g->st = st;
  g->p = p;
  *state = g;
  size_t nh = myelin_param_len(p, "hidden");
  if (nh + 1 > BG_MAX_LAYERS)
    return init_fail(g, state, host->error(st, "hidden: at most %d hidden layers", BG_MAX_LAYERS - 1));
  bg_config *c = &g->cfg;
  c->nlayers = (int)nh + 1;
  for (size_t i = 0; i < nh; i++)
    c->sizes[i + 1] = (int)myelin_param_int_at(p, "hidden", i);
  c->sizes[nh + 1] = (int)myelin_param_int(p, "classes");
  c->steps = (int)myelin_param_int(p, "steps");
  c->vth = (float)myelin_param_float(p, "vth");
  c->cdecay = (float)myelin_param_float(p, "cdecay");
  c->vdecay = (float)myelin_param_float(p, "vdecay");
  c->lr = (float)myelin_param_float(p, "lr");
  c->lr_out = (float)myelin_param_float(p, "lr_out");
  c->lr_deep = (float)myelin_param_float(p, "lr_deep");
  /* init_gain: one value per weight layer, input side first; the last repeats */
  size_t ng = myelin_param_len(p, "init_gain");
  for (int l = 0; l < c->nlayers && ng; l++)
    c->init_gain[l] = (float)myelin_param_float_at(p, "init_gain", (size_t)l < ng ? (size_t)l : ng - 1);
  c->feedback_lr = (float)myelin_param_float(p, "feedback_lr");
  c->sleep_steps = (int)myelin_param_int(p, "sleep_steps");
  c->sleep_rate = (float)myelin_param_float(p, "sleep_rate");
  c->seed = (uint64_t)myelin_param_int(p, "seed");
  g->paper = strcmp(myelin_param_str(p, "variant"), "paper") == 0;
  /* variant paper learns B in sleep only: the default sleep+kp is variant myelin's */
  c->feedback_kp = !g->paper && strcmp(myelin_param_str(p, "feedback_rule"), "sleep+kp") == 0;
  /* variant paper: the authors' float code has a bias in every layer */
  const char *bm = g->paper && !myelin_param_is_set(p, "bias") ? "all" : myelin_param_str(p, "bias");
  c->bias = strcmp(bm, "none") == 0 ? BG_BIAS_NONE : strcmp(bm, "output") == 0 ? BG_BIAS_OUTPUT : BG_BIAS_ALL;
  g->pcfg.bias = c->bias;
  g->batch = myelin_param_int(p, "batch");
  if (g->batch <= 0) g->batch = g->paper ? 128 : 1;
  if (g->paper) { /* the authors' values where the user set nothing (README, variant paper) */
    bg_paper_config *q = &g->pcfg;
    q->vth = (float)pick(p, 1, "vth", 0.3);
    q->vdecay = (float)pick(p, 1, "vdecay", 0.3);
    q->grad_win = (float)myelin_param_float(p, "grad_win");
    q->grad_amp = (float)myelin_param_float(p, "grad_amp");
    q->soft_start = (int)myelin_param_int(p, "soft_start");
    q->lr = (float)pick(p, 1, "lr", 1e-3);
    q->lr_out = (float)pick(p, 1, "lr_out", q->lr);
    q->sleep_steps = (int)pick(p, 1, "sleep_steps", 50);
    q->sleep_batch = (int)myelin_param_int(p, "sleep_batch");
    q->sleep_lr = (float)pick(p, 1, "feedback_lr", 1e-4 / 3.0);
    q->oja_power = (float)myelin_param_float(p, "oja_power");
    q->seed = c->seed;
    q->quantize = myelin_param_bool(p, "quantize");
    c->lr = q->lr;
    c->lr_out = q->lr_out;
  }
  if (path_param(p, "init", g->init_path, sizeof g->init_path) ||
      path_param(p, "trace", g->trace_path, sizeof g->trace_path) ||
      path_param(p, "sleep_noise", g->noise_path, sizeof g->noise_path))
    return init_fail(g, state, host->error(st, "init, trace or sleep_noise: path too long"));
  if (g->noise_path[0]) {
    char err[512];
    if (myelin_npy_read(g->noise_path, &g->noise, err, sizeof err) != 0)
      return init_fail(g, state, host->error(st, "sleep_noise: %s", err));
    if (g->noise.dtype != MYELIN_U1 && g->noise.dtype != MYELIN_B1) {
      myelin_array_free(&g->noise);
      return init_fail(
          g, state, host->error(st, "sleep_noise %s: want a |u1 or |b1 array of 0/1 values", g->noise_path));
    }
  }
  if (g->trace_path[0]) {
    char err[512];
    if (myelin_check_writable(g->trace_path, err, sizeof err) != 0)
      return init_fail(g, state, host->error(st, "trace: %s", err));
  }
  int64_t th = myelin_param_int(p, "threads");
  if (th <= 0) th = sysconf(_SC_NPROCESSORS_ONLN);
  c->threads = th < 1 ? 1 : (th > 64 ? 64 : (int)th);
  g->epochs_limit = myelin_param_int(p, "epochs");
  g->sleep_every = myelin_param_int(p, "sleep_every");
  g->sleep_after_batch = g->paper && !myelin_param_is_set(p, "sleep_every");
  g->probe_max = g->paper ? 0 : myelin_param_int(p, "probe");
  g->want_predictions = myelin_param_bool(p, "predictions");
  g->lr_decay = pick(p, g->paper, "lr_decay", 1.0);
  g->cur_epoch = -1;
  const char *ck = myelin_param_str(p, "checkpoint");
  if (ck && *ck) {
    if (strlen(ck) >= sizeof g->checkpoint)
      return init_fail(g, state, host->error(st, "checkpoint: path too long"));
    snprintf(g->checkpoint, sizeof g->checkpoint, "%s", ck);
    char err[512];
    if (myelin_check_writable(g->checkpoint, err, sizeof err) != 0)
      return init_fail(g, state, host->error(st, "checkpoint: %s", err));
  }
  return 0;
}

/* ---- descriptor ------------------------------------------------------------------------- */

static const myelin_param_def bgp_params[] = {
    {"variant", MYELIN_PARAM_ENUM, "myelin", 0, 0, 0, "myelin|paper", NULL,
     "myelin: CUBA neurons, rank-one traces, layer-wise feedback, online (README). paper: the authors' code "
     "step "
     "for step (plain LIF, per-synapse traces, softmax error, direct feedback, batches, sleep after each "
     "batch); "
     "params left unset take the paper's values (README table)."},
    {"quantize", MYELIN_PARAM_BOOL, "false", 0, 0, 0, NULL, NULL,
     "paper: the authors' quantized mode: shadow weights (and biases) on a 16-bit grid per layer, the "
     "forward "
     "pass and the exported network on 8 bits (max|w|/127 steps, Loihi's weight precision)."},
    {"bias", MYELIN_PARAM_ENUM, "output", 0, 0, 0, "all|output|none", NULL,
     "Layers with a learned bias: all, only the output layer (the default: no bias drives a hidden layer, so "
     "a network given no input stays silent, as Loihi's energy budget wants), or none (biases fixed at 0). "
     "paper: all (the authors' float code)."},
    {"batch", MYELIN_PARAM_INT, "0", 1, 0, 1000000, NULL, "samples",
     "Samples per weight update (mean of their updates); 0 = the variant's: 128 for paper, 1 (online) for "
     "myelin. "
     "batch 1 with variant paper is truly online."},
    {"soft_start", MYELIN_PARAM_INT, "5", 1, 0, 100000, NULL, "steps",
     "paper: first step at which the output error is fed back (5 of 20 steps for MNIST; 19 of 60 on "
     "N-MNIST)."},
    {"grad_win", MYELIN_PARAM_FLOAT, "0.3", 1, 1e-9, 1e6, NULL, NULL,
     "paper: pseudo-derivative window, grad_amp * 1[|v - vth| < grad_win]."},
    {"grad_amp", MYELIN_PARAM_FLOAT, "1", 1, 0, 1e6, NULL, NULL, "paper: pseudo-derivative amplitude."},
    {"sleep_batch", MYELIN_PARAM_INT, "128", 1, 1, 1000000, NULL, "samples",
     "paper: noise samples per hidden layer in one sleep phase."},
    {"oja_power", MYELIN_PARAM_FLOAT, "2", 1, 0, 16, NULL, NULL,
     "paper: B += feedback_lr (sum_b h_b o_b^T - mean_b(o_b^oja_power) B) in sleep."},
    {"init", MYELIN_PARAM_INPUT_PATH, "", 0, 0, 0, NULL, NULL,
     "An .npz of initial weights (wt<l> = W^T [in,out], b<l>, optional fb<l>) instead of the seeded "
     "initialisation; variant paper aligns B with W when fb<l> are absent."},
    {"sleep_noise", MYELIN_PARAM_INPUT_PATH, "", 0, 0, 0, NULL, NULL,
     "paper: a |u1 .npy of 0/1 sleep noise read in order instead of the generator: per phase, per hidden "
     "layer "
     "(last first), [2 (+,-), sleep_batch, sleep_steps, units]. For reference checks."},
    {"trace", MYELIN_PARAM_PATH, "", 0, 0, 0, NULL, NULL,
     "paper: an .npy <f4 [records, 2 + P] written at the end: a record after every update (kind 1) and sleep "
     "phase (kind 2): kind, samples seen, then wt<l>, b<l>, fb<l> of each layer flattened. Kept in memory: "
     "for small networks."},
    {"hidden", MYELIN_PARAM_INT_LIST, "[500]", 1, 1, 65536, NULL, "units",
     "Hidden layer sizes, input side first ([500] is 784-500-10 on MNIST-like data)."},
    {"classes", MYELIN_PARAM_INT, "10", 1, 2, 65536, NULL, "units", "Output neurons, one per class label."},
    {"steps", MYELIN_PARAM_INT, "0", 1, 0, 100000, NULL, "steps",
     "Time steps per sample; 0 takes them from the first spikes message (others must match)."},
    {"lr", MYELIN_PARAM_FLOAT, "0.002", 1, 0, 10, NULL, NULL,
     "Learning rate of the hidden layers' W and b (once per update). paper: 0.001, all layers."},
    {"lr_decay", MYELIN_PARAM_FLOAT, "0.9", 1, 0, 1, NULL, NULL,
     "Both learning rates are multiplied by this after every epoch (1 = constant). paper: 1."},
    {"lr_out", MYELIN_PARAM_FLOAT, "0.0001", 1, 0, 10, NULL, NULL,
     "Learning rate of the output layer (smaller: its error is O(1) and its fan-in large). paper: = lr."},
    {"lr_deep", MYELIN_PARAM_FLOAT, "1", 1, 1e-6, 100, NULL, NULL,
     "Hidden layers fed by another hidden layer (the second and later) learn at lr * lr_deep (myelin only). "
     "0.25 lifted deep nets by 0.9-1.7 pt with bias: all; with bias: output it was a wash (README, Deep "
     "networks)."},
    {"init_gain", MYELIN_PARAM_FLOAT_LIST, "[0.4]", 1, 1e-3, 100, NULL, NULL,
     "Initial weights W_l ~ U(+-g/sqrt(fan_in)), one g per weight layer from the input side, the last "
     "repeating (myelin only). 0.4 suits dense inputs (Fashion-MNIST: 29% of pixels on per step); sparse "
     "inputs need more, or the net starts silent and never learns (README, Initialisation: the N-MNIST "
     "demo's frames, 4% on, learn with [2])."},
    {"feedback_rule", MYELIN_PARAM_ENUM, "sleep+kp", 0, 0, 0, "sleep|sleep+kp", NULL,
     "How the feedback weights B learn. sleep: only in sleep phases (the paper's; variant paper's only "
     "rule). sleep+kp: also awake, each feedback synapse with the same local product as its forward twin "
     "(Kolen-Pollack), so B keeps W^T's recent changes (variant myelin's default: deep nets +0.8 pt after "
     "one epoch of Fashion-MNIST, one hidden layer unchanged; README, Deep networks)."},
    {"epochs", MYELIN_PARAM_INT, "0", 1, 0, 1000000, NULL, "epochs",
     "Stop training after this many epochs of the train stream (0 = all it sends); counts resumed epochs."},
    {"sleep_every", MYELIN_PARAM_INT, "1000", 1, 0, 1000000000, NULL, "samples",
     "A sleep phase after every this many training samples (0 = never: plain feedback alignment). paper, "
     "unset: "
     "after every batch update."},
    {"sleep_steps", MYELIN_PARAM_INT, "256", 1, 1, 1000000, NULL, "steps",
     "Time steps of random drive per sleep phase (paper: per sleep sample, 50)."},
    {"sleep_rate", MYELIN_PARAM_FLOAT, "0.2", 1, 0.001, 0.999, NULL, "spikes/step",
     "Spike probability per step of the random drive during sleep (myelin only)."},
    {"feedback_lr", MYELIN_PARAM_FLOAT, "0.5", 1, 0, 100, NULL, NULL,
     "Sleep-phase rate of the feedback weights B (B += feedback_lr (mean (s-rho) y^T - rho(1-rho) B)). "
     "paper: "
     "the Oja-style rule's sleep_lr, 1e-4/3."},
    {"vth", MYELIN_PARAM_FLOAT, "0.5", 1, 1e-6, 1e6, NULL, NULL,
     "Firing threshold of the soma (paper: 0.3)."},
    {"cdecay", MYELIN_PARAM_FLOAT, "0.5", 1, 0, 0.999, NULL, NULL,
     "Synaptic current decay per step (paper: none, plain LIF; only 0 allowed)."},
    {"vdecay", MYELIN_PARAM_FLOAT, "0.75", 1, 0, 0.999, NULL, NULL,
     "Membrane voltage decay per step (paper: 0.3)."},
    {"seed", MYELIN_PARAM_INT, "1", 1, 0, 9.2e18, NULL, NULL,
     "Seed of weight initialisation and sleep noise."},
    {"threads", MYELIN_PARAM_INT, "0", 1, 0, 64, NULL, "threads",
     "Worker threads (0 = all cores). Results are bit-identical for any count."},
    {"checkpoint", MYELIN_PARAM_PATH, "", 0, 0, 0, NULL, NULL,
     "An .npz saved after each epoch; when it exists at start, training resumes from it."},
    {"predictions", MYELIN_PARAM_BOOL, "false", 0, 0, 0, NULL, NULL,
     "Emit one `predictions` message per test sample at each evaluation."},
    {"probe", MYELIN_PARAM_INT, "64", 1, 0, 100000, NULL, "samples",
     "Train samples (the first ones) on which grad_angle is measured each epoch (0 = off; myelin only)."},
    {0}};

static const myelin_port_def bgp_inputs[] = {
    {.name = "train", .kinds = "spikes", .doc = "training samples, with label and epoch"},
    {.name = "test",
     .kinds = "spikes",
     .optional = 1,
     .doc = "held-out samples; every epoch is scored on the whole split once it has ended"},
    {0}};

static const myelin_port_def bgp_outputs[] = {
    {.name = "network", .kinds = "network", .doc = "the trained cuba_lif network (after the last epoch)"},
    {.name = "metrics",
     .kinds = "metrics",
     .doc = "per epoch: train_acc, test_acc, grad_angle (myelin), samples_per_s, activity "
            "(spikes_per_neuron_step, synops_per_sample, silent_spikes_per_neuron_step)"},
    {.name = "predictions",
     .kinds = "predictions",
     .optional = 1,
     .doc = "with param predictions: per test sample and epoch, output spike counts and the predicted class"},
    {0}};

static const myelin_plugin_desc bgp_desc = {
    MYELIN_DESC_HEADER,
    .name = "biograd",
    .version = "1.0.0",
    .summary = "BioGrad: multi-compartment spiking network trained by local, online, spike-based learning",
    .doc =
        "Tang, Kumar, Polykretis & Michmizos, arXiv 2110.14092. Hidden neurons: spiking LIF soma + "
        "non-spiking apical compartment fed by signed error spikes through feedback weights B; "
        "updates = apical signal x eligibility trace; sleep aligns B with the forward weights. Two variants: "
        "myelin (default: CUBA neurons, rank-one traces, layer-wise feedback, online) and paper (the "
        "authors' "
        "code step for step: plain LIF vth 0.3 vdecay 0.3, per-synapse traces, softmax error from step "
        "soft_start, direct feedback, batch 128, sleep after every batch with lr 1e-3 and sleep_lr 1e-4/3 "
        "unless set). See plugins/biograd/README.md for every equation.",
    .params = bgp_params,
    .inputs = bgp_inputs,
    .outputs = bgp_outputs,
    .validate = bgp_validate,
    .init = bgp_init,
    .process = bgp_process,
    .flush = bgp_flush,
    .fini = bgp_fini,
};

MYELIN_PLUGIN(bgp_desc)
