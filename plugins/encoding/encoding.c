/*
 * encoding — ridge encoding models: stimulus features + fMRI runs -> maps of
 * Pearson r (Caucheteux, Gramfort & King 2021; sklearn RidgeCV semantics).
 *
 * Two input ports. `features` takes `features` messages (dense [T, F] at the
 * TR, or word events `onset` [W] + `data` [W, F] summed into TR bins) or
 * plain `tensor` messages ([T, F] or [T]); `brain` takes `run` messages.
 *
 * Matching. A features message is keyed by its `task` and `run` (either may
 * be absent; `run` needs `task`). A run takes, by precedence, the features of
 * its (task, run), else of its task (no `run`), else the features without
 * task. One features message per key; run numbers compare as text, except
 * that digit strings ignore leading zeros ("01" matches the integer 1).
 *
 * Flow. A run whose (task, run) features have arrived is computed at once;
 * so is a run served by its task-wide features, as long as no run-specific
 * features of that task have arrived (else it waits until end of stream, when
 * every run-specific message is known). Other runs are kept (a reference to
 * the message, no copy) until their features arrive, or until end of stream,
 * where the task-less features serve them. Arrival order never changes a
 * result: a run-specific message for a (task, run) already computed with the
 * task-wide features is refused (the `served` list remembers those keys).
 * With `average_subjects`, runs are summed per (task, run) instead and maps
 * of the average subject are computed at end of stream: one per (task, run)
 * when the task has run-specific features, else one per task (its runs
 * summed together, as repetitions of one stimulus).
 *
 * Per run: features -> [T, F] float64 (binning events with bin =
 * floor(onset / tr) + offset), FIR delays -> [T, D*F] (zero or wrap padding,
 * the latter being np.roll as in the paper's code), then ridge_encode() in
 * ridge.c does the cross-validation: contiguous outer folds, z-scored X and
 * scaled y fitted on each training fold, one SVD (or Gram eigendecomposition)
 * per fold, alpha per voxel by exact leave-one-out or inner folds, Pearson r
 * on the held-out fold. The map carries `data` [V] (fold-mean r), `alpha`
 * [V] (the median over folds of the chosen alphas), `r_folds` [K, V],
 * `alpha_folds` [K, V], the run's `geometry` and context.
 *
 * All numerics are in ridge.c; this file only routes messages, checks shapes
 * and builds outputs. Threads: OpenBLAS's, inside the BLAS/LAPACK calls.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/ranks.h"
#include "events.h"
#include "myelin/plugin.h"
#include "ridge.h"

#define MAX_ALPHAS 64
#define MAX_DELAYS 64

enum { PORT_FEATURES = 0, PORT_BRAIN = 1 };
enum { EV_SUM = 0, EV_HRF = 1, EV_LANCZOS = 2 };

/* Features of one key: (task, run), (task, NULL) or (NULL, NULL) = any task. */
typedef struct feat {
  char *task, *run;
  myelin_msg *msg;
} feat;

/* A (task, run) already computed with its task's task-wide features. */
typedef struct served {
  char *task, *run, *subject;
} served;

/* average_subjects: the running sum of one (task, run)'s runs. */
typedef struct avg {
  char *task, *run;
  size_t T, V, count;
  double *sum;       /* [T, V] */
  myelin_msg *first; /* geometry, tr, run */
  char **subjects;
  int whole_task; /* flush: other runs of the task were merged into this one */
  int done;       /* flush: emitted, or merged into another */
} avg;

typedef struct enc_state {
  const myelin_host *host;
  myelin_stage *st;
  ridge_opts opts;
  double alphas[MAX_ALPHAS];
  int delays[MAX_DELAYS];
  size_t n_delays;
  int wrap;
  double tr;
  long offset;
  int events; /* EV_SUM, EV_HRF, EV_LANCZOS */
  int split_layers;
  double lanczos_window;
  int average;
  feat *feats;
  size_t nfeat;
  served *served;
  size_t nserved;
  myelin_msg **pending;
  size_t npend;
  avg *avgs;
  size_t navg;
} enc_state;

/* ---- small helpers -------------------------------------------------------- */

/* The message's `key` as a malloc'ed string (str or int), NULL if absent. */
static char *msg_text(const myelin_msg *m, const char *key) {
  myelin_obj o = myelin_msg_get(m, key);
  size_t len;
  const char *s = myelin_obj_str(o, &len);
  if (s) return strndup(s, len);
  int64_t v;
  if (myelin_obj_int(o, &v) == 0) {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)v);
    return strdup(buf);
  }
  return NULL;
}

static int same(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

/* Equal keys, absent (NULL) equal to absent. */
static int same_key(const char *a, const char *b) { return (!a && !b) || same(a, b); }

/* The message's `run` as a key: text, digit strings without leading zeros
 * (BIDS "01" and the integer 1 are one run); NULL if absent or empty. */
static char *run_key(const myelin_msg *m) {
  char *r = msg_text(m, "run");
  if (!r || !*r) return free(r), NULL;
  size_t n = strlen(r);
  if (strspn(r, "0123456789") == n) {
    size_t z = strspn(r, "0");
    if (z == n) z = n - 1;
    memmove(r, r + z, n - z + 1);
  }
  return r;
}

/* Copies any real tensor into a new float64 array. */
static double *tensor_f64(const myelin_tensor *t) {
  double *out = malloc((t->count ? t->count : 1) * sizeof *out);
  if (!out) return NULL;
  for (size_t i = 0; i < t->count; i++) {
    switch (t->dtype) {
    case MYELIN_F4: out[i] = ((const float *)t->data)[i]; break;
    case MYELIN_F8: out[i] = ((const double *)t->data)[i]; break;
    case MYELIN_I1: out[i] = ((const int8_t *)t->data)[i]; break;
    case MYELIN_I2: out[i] = ((const int16_t *)t->data)[i]; break;
    case MYELIN_I4: out[i] = ((const int32_t *)t->data)[i]; break;
    case MYELIN_I8: out[i] = (double)((const int64_t *)t->data)[i]; break;
    case MYELIN_U1: case MYELIN_B1: out[i] = ((const uint8_t *)t->data)[i]; break;
    case MYELIN_U2: out[i] = ((const uint16_t *)t->data)[i]; break;
    case MYELIN_U4: out[i] = ((const uint32_t *)t->data)[i]; break;
    case MYELIN_U8: out[i] = (double)((const uint64_t *)t->data)[i]; break;
    default: free(out); return NULL;
    }
  }
  return out;
}

static const char *or_any(const char *task) { return task ? task : "(any)"; }
static const char *or_q(const char *text) { return text ? text : "?"; }

/* ---- features -> design matrix --------------------------------------------- */

/* Builds the [T, F] feature matrix of a run of T volumes every run_tr s. */
static int features_matrix(enc_state *s, const myelin_msg *fm, size_t T, double run_tr,
                           double **out, size_t *F) {
  const char *kind = myelin_msg_kind(fm);
  myelin_tensor d, on;
  if (myelin_msg_tensor(fm, "data", &d) != 0 || d.ndim < 1 || d.ndim > 2)
    return s->host->error(s->st, "%s message: `data` must be a tensor [T, F] or [T] "
                          "(or [W, F] with `onset`)", kind);
  size_t rows = (size_t)d.shape[0], cols = d.ndim == 2 ? (size_t)d.shape[1] : 1;
  if (cols == 0) return s->host->error(s->st, "%s message: `data` has no feature columns", kind);
  double *x = tensor_f64(&d);
  if (!x) return s->host->error(s->st, "%s message: `data` has dtype %s, or out of memory", kind,
                                myelin_dtype_name(d.dtype));
  *F = cols;
  if (myelin_msg_tensor(fm, "onset", &on) != 0) { /* dense, already at the TR */
    double ftr;
    if (myelin_msg_float(fm, "tr", &ftr) == 0 && ftr > 0 && run_tr > 0 &&
        fabs(ftr - run_tr) > 1e-6 * run_tr)
      s->host->log(s->st, MYELIN_LOG_WARN, "features sampled every %g s, run every %g s: rows are "
                   "taken as TRs of the run", ftr, run_tr);
    if (rows != T) {
      free(x);
      return s->host->error(s->st, "features have %zu rows but the run has %zu volumes "
                            "(give word events with `onset`, or features at the run's TR)", rows, T);
    }
    *out = x;
    return 0;
  }
  if (on.ndim != 1 || (size_t)on.shape[0] != rows) {
    free(x);
    return s->host->error(s->st, "features: `onset` must be [W] with W = %zu rows of `data`", rows);
  }
  double tr = s->tr, mtr;
  if (!(tr > 0) && myelin_msg_float(fm, "tr", &mtr) == 0 && mtr > 0) tr = mtr;
  if (!(tr > 0)) tr = run_tr;
  double *onset = tensor_f64(&on), *bins = malloc((T * cols + 1) * sizeof *bins);
  if (!onset || !bins || !(tr > 0)) {
    free(x), free(onset), free(bins);
    return s->host->error(s->st, "features: cannot bin word events (tr %g s; out of memory?)", tr);
  }
  size_t dropped = 0;
  if (s->events == EV_SUM) {
    dropped = ridge_bin_events(onset, x, rows, cols, tr, s->offset, T, bins);
  } else {
    if (s->events == EV_HRF) events_hrf(onset, x, rows, cols, tr, s->offset, T, bins);
    else events_lanczos(onset, x, rows, cols, tr, s->offset, T, s->lanczos_window, 1.0, bins);
    for (size_t w = 0; w < rows; w++) {
      double b = onset[w] / tr + (double)s->offset;
      dropped += !(b >= 0 && b < (double)T);
    }
  }
  if (dropped)
    s->host->log(s->st, MYELIN_LOG_INFO, "%zu of %zu word events fall outside the run's %zu TRs",
                 dropped, rows, T);
  free(x), free(onset);
  *out = bins;
  return 0;
}

/* ---- one encoding model ----------------------------------------------------- */

static int cmp_int(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

/* Builds and emits the map of one run (or of the average subject). */
static int emit_map(enc_state *s, const myelin_msg *ctx, const avg *g, const double *r,
                    const int *idx, size_t V, const char *who, int64_t layer) {
  size_t K = s->opts.folds;
  myelin_builder *b = myelin_builder_new("map");
  if (!b) return s->host->error(s->st, "out of memory");
  myelin_build_str(b, "stat", "r");
  if (layer >= 0) myelin_build_int(b, "layer", layer);
  if (g) {
    myelin_build_str(b, "subject", "average");
    if (g->task) myelin_build_str(b, "task", g->task);
    myelin_obj run = myelin_msg_get(g->first, "run");
    if (!g->whole_task && myelin_obj_exists(run)) myelin_build_obj(b, "run", run);
    myelin_build_array_begin(b, "subjects");
    for (size_t i = 0; i < g->count; i++) myelin_build_str(b, NULL, g->subjects[i]);
    myelin_build_array_end(b);
  } else {
    myelin_build_context(b, ctx);
  }
  int64_t vshape[1] = {(int64_t)V}, kshape[2] = {(int64_t)K, (int64_t)V};
  double *mean = myelin_build_tensor(b, "data", MYELIN_F8, 1, vshape), avg_r = 0, max_r = -1;
  for (size_t v = 0; mean && v < V; v++) {
    double m = 0;
    for (size_t f = 0; f < K; f++) m += r[f * V + v];
    mean[v] = m / (double)K;
    avg_r += mean[v] / (double)V;
    max_r = mean[v] > max_r ? mean[v] : max_r;
  }
  char lt[32] = "";
  if (layer >= 0) snprintf(lt, sizeof lt, ", layer %lld", (long long)layer);
  s->host->log(s->st, MYELIN_LOG_INFO, "%s%s: r over %zu voxels: mean %.4f, max %.4f", who, lt, V, avg_r, max_r);
  double *alpha = myelin_build_tensor(b, "alpha", MYELIN_F8, 1, vshape);
  int *col = malloc(K * sizeof *col);
  if (!col) alpha = NULL, myelin_builder_free(b), b = NULL;
  for (size_t v = 0; alpha && v < V; v++) {
    for (size_t f = 0; f < K; f++) col[f] = idx[f * V + v];
    qsort(col, K, sizeof *col, cmp_int);
    alpha[v] = s->opts.alphas[col[(K - 1) / 2]];
  }
  free(col);
  if (!b) return s->host->error(s->st, "out of memory");
  myelin_build_tensor_copy(b, "r_folds", MYELIN_F8, 2, kshape, r);
  double *af = myelin_build_tensor(b, "alpha_folds", MYELIN_F8, 2, kshape);
  for (size_t i = 0; af && i < K * V; i++) af[i] = s->opts.alphas[idx[i]];
  myelin_obj geo = myelin_msg_get(ctx, "geometry");
  if (myelin_obj_exists(geo)) myelin_build_obj(b, "geometry", geo);
  myelin_msg *out = myelin_builder_finish(b);
  if (!out) return s->host->error(s->st, "could not build the map (out of memory?)");
  int rc = s->host->emit(s->st, 0, out);
  return rc == MYELIN_ESTOP ? 0 : rc;
}

/* Responses [T, V] in the run's own precision, read in place: float32 (f)
 * or float64 (d), exactly one set. float64 stays float64 all the way. */
typedef struct resp {
  const float *f;
  const double *d;
} resp;

static double resp_at(resp y, size_t i) { return y.d ? y.d[i] : (double)y.f[i]; }

/* The features' layer blocks (split_layers): the `layers` list of an
 * lm_features message, whose `data` holds len(layers) blocks of `n_embd`
 * columns. 0 with *nl = 0 when not splitting. */
static int layer_blocks(enc_state *s, const myelin_msg *fm, size_t F, int64_t *layers, size_t *nl) {
  *nl = 0;
  if (!s->split_layers) return 0;
  myelin_obj l = myelin_msg_get(fm, "layers");
  int64_t C;
  size_t n = myelin_obj_len(l);
  if (myelin_obj_type_of(l) != MYELIN_OBJ_ARRAY || n == 0 || n > 256 || myelin_msg_int(fm, "n_embd", &C) != 0 ||
      C <= 0 || (size_t)C * n != F)
    return s->host->error(s->st, "split_layers: the features message needs `layers` (a list, at most 256) and "
                          "`n_embd` with len(layers) x n_embd = its %zu columns (lm_features writes them)", F);
  for (size_t k = 0; k < n; k++)
    if (myelin_obj_int(myelin_obj_at(l, k), &layers[k]) != 0)
      return s->host->error(s->st, "split_layers: layers[%zu] is not an integer", k);
  *nl = n;
  return 0;
}

/* One encoding model of feats [T, F] (columns c0 .. c0 + Fb of a row of
 * F), emitted with `layer` when layer >= 0. */
static int encode_block(enc_state *s, const double *feats, size_t F, size_t c0, size_t Fb, const myelin_msg *ctx,
                        const avg *g, resp Y, size_t T, size_t V, const char *who, int64_t layer) {
  size_t P = s->n_delays * Fb;
  double *block = malloc((T * Fb + 1) * sizeof *block), *X = malloc((T * P + 1) * sizeof *X);
  double *r = malloc((s->opts.folds * V + 1) * sizeof *r);
  int *idx = malloc((s->opts.folds * V + 1) * sizeof *idx);
  int rc;
  if (!block || !X || !r || !idx) {
    rc = s->host->error(s->st, "out of memory for %s (T = %zu, features = %zu, V = %zu)", who, T, P, V);
  } else {
    for (size_t t = 0; t < T; t++) memcpy(block + t * Fb, feats + t * F + c0, Fb * sizeof *block);
    ridge_delay(block, T, Fb, s->delays, s->n_delays, s->wrap, X);
    char err[256];
    int erc = Y.d ? ridge_encode_f64(X, T, P, Y.d, V, V, &s->opts, r, idx, err, sizeof err)
                  : ridge_encode(X, T, P, Y.f, V, V, &s->opts, r, idx, err, sizeof err);
    if (erc != 0)
      rc = s->host->error(s->st, "%s: %s", who, err);
    else
      rc = emit_map(s, ctx, g, r, idx, V, who, layer);
    s->host->counter_add(s->st, "maps", rc == 0);
  }
  free(block), free(X), free(r), free(idx);
  return rc;
}

/* Encodes Y [T, V] with the features of fm (one model per layer block with
 * split_layers). */
static int encode(enc_state *s, const myelin_msg *fm, const myelin_msg *ctx, const avg *g, resp Y, size_t T,
                  size_t V, double tr, const char *who) {
  double *feats = NULL;
  size_t F = 0;
  int rc = features_matrix(s, fm, T, tr, &feats, &F);
  if (rc) return rc;
  for (size_t i = 0; i < T * F; i++)
    if (!isfinite(feats[i])) {
      free(feats);
      return s->host->error(s->st, "features for %s: non-finite value at TR %zu, feature %zu",
                            who, i / F, i % F);
    }
  int64_t layers[256];
  size_t nl;
  rc = layer_blocks(s, fm, F, layers, &nl);
  if (!rc && nl == 0) rc = encode_block(s, feats, F, 0, F, ctx, g, Y, T, V, who, -1);
  for (size_t k = 0; !rc && k < nl; k++)
    rc = encode_block(s, feats, F, k * (F / nl), F / nl, ctx, g, Y, T, V, who, layers[k]);
  free(feats);
  return rc;
}

/* Checks a run message and hands out its data [T, V] in place, float32 or
 * float64 as it came. */
static int run_data(enc_state *s, const myelin_msg *m, resp *Y, size_t *T, size_t *V, double *tr, char *who,
                    size_t wholen) {
  char *sub = msg_text(m, "subject"), *task = msg_text(m, "task"), *run = msg_text(m, "run");
  snprintf(who, wholen, "run (subject %s, task %s, run %s)", sub ? sub : "?", task ? task : "?",
           run ? run : "?");
  free(sub), free(task), free(run);
  myelin_tensor d;
  if (myelin_msg_tensor(m, "data", &d) != 0 || d.ndim != 2 ||
      (d.dtype != MYELIN_F4 && d.dtype != MYELIN_F8))
    return s->host->error(s->st, "%s: `data` must be a float tensor [T, V]", who);
  *T = (size_t)d.shape[0], *V = (size_t)d.shape[1];
  if (myelin_msg_float(m, "tr", tr) != 0) *tr = 0;
  *Y = d.dtype == MYELIN_F4 ? (resp){.f = d.data} : (resp){.d = d.data};
  for (size_t i = 0; i < d.count; i++)
    if (!isfinite(resp_at(*Y, i))) {
      return s->host->error(s->st, "%s: non-finite value at volume %zu, voxel %zu (mask or "
                            "clean the data first)", who, i / *V, i % *V);
    }
  return 0;
}

/* ---- routing ---------------------------------------------------------------- */

/* The features stored under exactly this key. */
static const feat *feat_exact(const enc_state *s, const char *task, const char *run) {
  for (size_t i = 0; i < s->nfeat; i++)
    if (same_key(s->feats[i].task, task) && same_key(s->feats[i].run, run)) return &s->feats[i];
  return NULL;
}

/* 1 if some features of this task carry a `run`. */
static int task_has_run_feats(const enc_state *s, const char *task) {
  for (size_t i = 0; i < s->nfeat; i++)
    if (s->feats[i].run && same_key(s->feats[i].task, task)) return 1;
  return 0;
}

/* The features of a run by precedence: (task, run) > (task) > (no task),
 * the last only with allow_any (end of stream). */
static const feat *best_feat(const enc_state *s, const char *task, const char *run, int allow_any) {
  const feat *f = NULL;
  if (task && run) f = feat_exact(s, task, run);
  if (!f && task) f = feat_exact(s, task, NULL);
  if (!f && allow_any) f = feat_exact(s, NULL, NULL);
  return f;
}

/* The features a run may be computed with now, before end of stream: those
 * of its (task, run), or its task-wide ones while no run-specific features
 * of the task have arrived (a later one could still claim the run). */
static const feat *ready_feat(const enc_state *s, const char *task, const char *run) {
  if (!task) return NULL;
  const feat *f = run ? feat_exact(s, task, run) : NULL;
  if (!f && !task_has_run_feats(s, task)) f = feat_exact(s, task, NULL);
  return f;
}

/* Remembers that (task, run) was computed with task-wide features. */
static int remember_served(enc_state *s, const myelin_msg *run, const char *task, const char *rk) {
  for (size_t i = 0; i < s->nserved; i++)
    if (same(s->served[i].task, task) && same(s->served[i].run, rk)) return 0;
  served *ns = realloc(s->served, (s->nserved + 1) * sizeof *ns);
  if (!ns) return s->host->error(s->st, "out of memory");
  s->served = ns;
  s->served[s->nserved++] = (served){strdup(task), strdup(rk), msg_text(run, "subject")};
  return 0;
}

static int encode_run(enc_state *s, const myelin_msg *run, const feat *f) {
  resp Y;
  size_t T, V;
  double tr;
  char who[256];
  int rc = run_data(s, run, &Y, &T, &V, &tr, who, sizeof who);
  if (rc) return rc;
  return encode(s, f->msg, run, NULL, Y, T, V, tr, who);
}

/* Computes a run with f now, remembering runs served by task-wide features. */
static int encode_now(enc_state *s, const myelin_msg *run, const char *task, const char *rk,
                      const feat *f) {
  int rc = encode_run(s, run, f);
  if (rc == 0 && rk && !f->run && !s->average) rc = remember_served(s, run, task, rk);
  return rc;
}

/* Adds a run to the average of its (task, run). */
static int add_to_average(enc_state *s, const myelin_msg *run) {
  resp Y;
  size_t T, V;
  double tr;
  char who[256];
  int rc = run_data(s, run, &Y, &T, &V, &tr, who, sizeof who);
  if (rc) return rc;
  char *task = msg_text(run, "task"), *rk = run_key(run);
  avg *g = NULL;
  for (size_t i = 0; i < s->navg; i++)
    if (same_key(s->avgs[i].task, task) && same_key(s->avgs[i].run, rk)) g = &s->avgs[i];
  if (!g) {
    avg *na = realloc(s->avgs, (s->navg + 1) * sizeof *na);
    if (!na) rc = s->host->error(s->st, "out of memory");
    else {
      s->avgs = na;
      g = &s->avgs[s->navg++];
      memset(g, 0, sizeof *g);
      g->task = task, task = NULL;
      g->run = rk, rk = NULL;
      g->T = T, g->V = V;
      g->sum = calloc(T * V + 1, sizeof *g->sum);
      g->first = myelin_msg_ref((myelin_msg *)run);
      if (!g->sum) rc = s->host->error(s->st, "out of memory for the average of %zu x %zu", T, V);
    }
  } else if (g->T != T || g->V != V) {
    rc = s->host->error(s->st, "%s: shape [%zu, %zu] differs from the first run of this task and "
                        "run [%zu, %zu]; average_subjects needs equal shapes", who, T, V, g->T, g->V);
  }
  char **subs = rc ? NULL : realloc(g->subjects, (g->count + 1) * sizeof *subs);
  if (!rc && !subs) rc = s->host->error(s->st, "out of memory");
  if (!rc) {
    g->subjects = subs;
    char *sub = msg_text(run, "subject");
    g->subjects[g->count++] = sub ? sub : strdup("?");
    for (size_t i = 0; i < T * V; i++)
      g->sum[i] += resp_at(Y, i);
  }
  free(task), free(rk);
  return rc;
}

/* Refuses a second message for a key, or a run-specific message for a
 * (task, run) already computed with the task-wide features. */
static int check_new_key(enc_state *s, const char *task, const char *run) {
  if (run && !task)
    return s->host->error(s->st, "features message with `run` %s but no `task`: run-specific "
                          "features must name their task", run);
  if (feat_exact(s, task, run)) {
    if (run)
      return s->host->error(s->st, "features for task %s, run %s arrived twice (one features "
                            "message per task and run)", task, run);
    return s->host->error(s->st, "features for task %s (without `run`) arrived twice (one "
                          "features message per task, or per task and run; concatenate them "
                          "upstream)", or_any(task));
  }
  for (size_t i = 0; run && i < s->nserved; i++)
    if (same(s->served[i].task, task) && same(s->served[i].run, run))
      return s->host->error(s->st, "features for task %s, run %s arrived after that run (subject "
                            "%s) was already computed with the task-wide features of task %s; "
                            "send run-specific features before the task-wide ones or before the "
                            "runs (see the encoding README, \"Arrival order\")",
                            task, run, or_q(s->served[i].subject), task);
  return 0;
}

static int on_features(enc_state *s, myelin_msg *m) {
  char *task = msg_text(m, "task"), *rk = run_key(m);
  int rc = check_new_key(s, task, rk);
  feat *nf = rc ? NULL : realloc(s->feats, (s->nfeat + 1) * sizeof *nf);
  if (!rc && !nf) rc = s->host->error(s->st, "out of memory");
  if (rc) {
    free(task), free(rk);
    return rc;
  }
  s->feats = nf;
  s->feats[s->nfeat++] = (feat){task, rk, myelin_msg_ref(m)};
  if (!task || s->average) return 0;
  /* Runs of this task that may now be computed. */
  size_t keep = 0;
  for (size_t i = 0; i < s->npend; i++) {
    char *t = msg_text(s->pending[i], "task"), *r = run_key(s->pending[i]);
    const feat *f = rc == 0 && same(t, task) ? ready_feat(s, t, r) : NULL;
    if (f) {
      rc = encode_now(s, s->pending[i], t, r, f);
      myelin_msg_unref(s->pending[i]);
    } else {
      s->pending[keep++] = s->pending[i];
    }
    free(t), free(r);
  }
  s->npend = keep;
  return rc;
}

static int on_run(enc_state *s, myelin_msg *m) {
  if (s->average) return add_to_average(s, m);
  char *task = msg_text(m, "task"), *rk = run_key(m);
  const feat *f = ready_feat(s, task, rk);
  int rc = 0;
  if (f) {
    rc = encode_now(s, m, task, rk, f);
  } else {
    myelin_msg **np = realloc(s->pending, (s->npend + 1) * sizeof *np);
    if (!np) rc = s->host->error(s->st, "out of memory");
    else {
      s->pending = np;
      s->pending[s->npend++] = myelin_msg_ref(m);
    }
  }
  free(task), free(rk);
  return rc;
}

static int enc_process(void *state, int port, myelin_msg *m) {
  enc_state *s = state;
  const char *kind = myelin_msg_kind(m);
  if (port == PORT_FEATURES) {
    if (strcmp(kind, "features") && strcmp(kind, "tensor"))
      return s->host->error(s->st, "port features: expected a features or tensor message, got %s", kind);
    return on_features(s, m);
  }
  if (strcmp(kind, "run")) return s->host->error(s->st, "port brain: expected a run message, got %s", kind);
  return on_run(s, m);
}

/* Without run-specific features, a task's runs are one average: merges the
 * later (task, run) sums of g's task into g. */
static int merge_task_runs(enc_state *s, avg *g) {
  g->whole_task = 1;
  for (avg *o = g + 1; o < s->avgs + s->navg; o++) {
    if (o->done || !same_key(o->task, g->task)) continue;
    if (o->T != g->T || o->V != g->V)
      return s->host->error(s->st, "average_subjects: runs %s and %s of task %s have different "
                            "shapes [%zu, %zu] and [%zu, %zu]; without run-specific features the "
                            "runs of a task are averaged together (give one features message per "
                            "task and run to average each run separately)", or_q(g->run),
                            or_q(o->run), or_any(g->task), g->T, g->V, o->T, o->V);
    char **subs = realloc(g->subjects, (g->count + o->count) * sizeof *subs);
    if (!subs) return s->host->error(s->st, "out of memory");
    g->subjects = subs;
    memcpy(g->subjects + g->count, o->subjects, o->count * sizeof *subs);
    g->count += o->count, o->count = 0;
    for (size_t i = 0; i < g->T * g->V; i++) g->sum[i] += o->sum[i];
    o->done = 1;
  }
  return 0;
}

static int flush_average(enc_state *s, avg *g) {
  g->done = 1;
  int per_run = g->task && task_has_run_feats(s, g->task);
  int rc = per_run ? 0 : merge_task_runs(s, g);
  if (rc) return rc;
  const feat *f = best_feat(s, g->task, per_run ? g->run : NULL, 1);
  char who[256];
  if (per_run)
    snprintf(who, sizeof who, "average of %zu runs (task %s, run %s)", g->count, g->task, or_q(g->run));
  else
    snprintf(who, sizeof who, "average of %zu runs (task %s)", g->count, or_any(g->task));
  if (!f) return s->host->error(s->st, "no features arrived for the %s", who);
  size_t n = g->T * g->V;
  double *Y = malloc((n ? n : 1) * sizeof *Y); /* the float64 mean, not rounded */
  if (!Y) return s->host->error(s->st, "out of memory");
  for (size_t i = 0; i < n; i++)
    Y[i] = g->sum[i] / (double)g->count;
  double tr = 0;
  if (myelin_msg_float(g->first, "tr", &tr) != 0) tr = 0;
  rc = encode(s, f->msg, g->first, g, (resp){.d = Y}, g->T, g->V, tr, who);
  free(Y);
  return rc;
}

/* ---- average_subjects with the subjects spread over ranks (MPI) ---------------
 *
 * Each rank sums the runs it received per (task, run). At end of stream,
 * before any average is encoded: every rank sends rank 0 its keys (task,
 * run, shape, count, subjects, the first run's context); rank 0 merges them
 * (its own keys in arrival order, then each other rank's new keys, in rank
 * order; subjects concatenated in rank order) and broadcasts the list; then
 * one allreduce per key adds the ranks' [T, V] float64 sums in rank order
 * (a rank without the key adds zeros). Rank 0 then encodes and emits the
 * averages as one rank would (`subjects` sorted by label); the other ranks
 * emit none. */

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static myelin_msg *avg_inventory(enc_state *s) {
  static const char *const ctx_keys[] = {"task", "run", "tr", "geometry", NULL};
  myelin_builder *b = myelin_builder_new("encoding_inventory");
  if (!b) return NULL;
  myelin_build_array_begin(b, "avgs");
  for (size_t i = 0; i < s->navg; i++) {
    const avg *g = &s->avgs[i];
    myelin_build_map_begin(b, NULL);
    if (g->task) myelin_build_str(b, "task", g->task);
    if (g->run) myelin_build_str(b, "run", g->run);
    myelin_build_uint(b, "T", g->T);
    myelin_build_uint(b, "V", g->V);
    myelin_build_array_begin(b, "subjects");
    for (size_t k = 0; k < g->count; k++) myelin_build_str(b, NULL, g->subjects[k]);
    myelin_build_array_end(b);
    myelin_builder *cb = myelin_builder_new("run");
    if (cb) myelin_build_fields(cb, g->first, ctx_keys);
    myelin_msg *ctx = cb ? myelin_builder_finish(cb) : NULL;
    size_t clen = 0;
    const uint8_t *cbytes = ctx ? myelin_msg_bytes(ctx, &clen) : NULL;
    if (!ctx) {
      myelin_builder_free(b);
      return NULL;
    }
    myelin_build_bin(b, "ctx", cbytes, clen);
    myelin_msg_unref(ctx);
    myelin_build_map_end(b);
  }
  myelin_build_array_end(b);
  return myelin_builder_finish(b);
}

static char *obj_text(myelin_obj o) {
  size_t n;
  const char *p = myelin_obj_str(o, &n);
  return p ? strndup(p, n) : NULL;
}

/* Rank 0: adds the keys and subjects of one rank's inventory to s->avgs
 * (sum left NULL for keys new to rank 0; filled after the allreduce). */
static int avg_merge(enc_state *s, const myelin_msg *inv, int r) {
  myelin_obj list = myelin_msg_get(inv, "avgs");
  for (size_t i = 0; i < myelin_obj_len(list); i++) {
    myelin_obj o = myelin_obj_at(list, i);
    char *task = obj_text(myelin_obj_get(o, "task")), *rk = obj_text(myelin_obj_get(o, "run"));
    uint64_t T = 0, V = 0;
    myelin_obj_uint(myelin_obj_get(o, "T"), &T);
    myelin_obj_uint(myelin_obj_get(o, "V"), &V);
    avg *g = NULL;
    for (size_t k = 0; k < s->navg; k++)
      if (same_key(s->avgs[k].task, task) && same_key(s->avgs[k].run, rk)) g = &s->avgs[k];
    int rc = 0;
    if (!g) {
      avg *na = realloc(s->avgs, (s->navg + 1) * sizeof *na);
      size_t clen = 0, used = 0;
      const void *cb = myelin_obj_bin(myelin_obj_get(o, "ctx"), &clen);
      myelin_msg *ctx = NULL;
      if (!na || !cb || myelin_msg_decode(cb, clen, 0, &ctx, &used, NULL, 0) != 0) {
        rc = s->host->error(s->st, "average_subjects: could not merge rank %d's averages (out of memory?)", r);
      } else {
        s->avgs = na;
        g = &s->avgs[s->navg++];
        memset(g, 0, sizeof *g);
        g->task = task, task = NULL;
        g->run = rk, rk = NULL;
        g->T = (size_t)T, g->V = (size_t)V;
        g->first = ctx;
      }
    } else if (g->T != T || g->V != V) {
      rc = s->host->error(s->st, "average of task %s, run %s: rank %d's runs are [%zu, %zu], rank 0's [%zu, %zu]; "
                          "average_subjects needs equal shapes", or_any(task), or_q(rk), r, (size_t)T, (size_t)V,
                          g->T, g->V);
    }
    free(task), free(rk);
    if (rc) return rc;
    myelin_obj subs = myelin_obj_get(o, "subjects");
    size_t ns = myelin_obj_len(subs);
    char **nsub = realloc(g->subjects, (g->count + ns + 1) * sizeof *nsub);
    if (!nsub) return s->host->error(s->st, "out of memory");
    g->subjects = nsub;
    for (size_t k = 0; k < ns; k++) {
      char *t = obj_text(myelin_obj_at(subs, k));
      g->subjects[g->count++] = t ? t : strdup("?");
    }
  }
  return 0;
}

static int merge_averages_ranks(enc_state *s) {
  const myelin_host *h = s->host;
  const int me = h->rank(s->st), N = h->size(s->st);
  myelin_msg *inv = avg_inventory(s);
  if (!inv) return h->error(s->st, "out of memory");
  size_t ilen = 0;
  const uint8_t *ib = myelin_msg_bytes(inv, &ilen);
  uint8_t *all = NULL;
  size_t *sizes = NULL;
  int rc = ranks_gather(h, s->st, ib, ilen, &all, &sizes);
  myelin_msg_unref(inv);
  /* rank 0: merge; the key list (T, V per key, in rank 0's order) goes to all */
  myelin_msg *plan = NULL;
  uint8_t *pb = NULL;
  size_t plen = 0;
  if (rc == 0 && me == 0) {
    for (size_t i = 0; i < s->navg; i++) { /* subjects: recounted from the inventories, rank 0's first */
      for (size_t k = 0; k < s->avgs[i].count; k++) free(s->avgs[i].subjects[k]);
      s->avgs[i].count = 0;
    }
    for (size_t r = 0, off = 0; r < (size_t)N && rc == 0; off += sizes[r], r++) {
      myelin_msg *m = NULL;
      size_t used = 0;
      if (myelin_msg_decode(all + off, sizes[r], 0, &m, &used, NULL, 0) != 0)
        rc = h->error(s->st, "average_subjects: rank %zu's averages are unreadable", r);
      if (rc == 0) rc = avg_merge(s, m, (int)r);
      myelin_msg_unref(m);
    }
    for (size_t i = 0; i < s->navg; i++) /* arrival order across ranks is no order: by label */
      qsort(s->avgs[i].subjects, s->avgs[i].count, sizeof *s->avgs[i].subjects, cmp_str);
    myelin_builder *b = myelin_builder_new("encoding_plan");
    if (b) {
      myelin_build_array_begin(b, "avgs");
      for (size_t i = 0; rc == 0 && i < s->navg; i++) {
        myelin_build_map_begin(b, NULL);
        if (s->avgs[i].task) myelin_build_str(b, "task", s->avgs[i].task);
        if (s->avgs[i].run) myelin_build_str(b, "run", s->avgs[i].run);
        myelin_build_uint(b, "T", s->avgs[i].T);
        myelin_build_uint(b, "V", s->avgs[i].V);
        myelin_build_map_end(b);
      }
      myelin_build_array_end(b);
      myelin_build_bool(b, "ok", rc == 0);
      plan = myelin_builder_finish(b);
    }
    if (!plan) rc = rc ? rc : h->error(s->st, "out of memory");
    else pb = (uint8_t *)myelin_msg_bytes(plan, &plen);
  }
  if (all) h->free(s->st, all);
  free(sizes);
  if (rc == 0 || (me == 0 && plan)) { /* rank 0 sends its failure too, so no rank waits */
    int brc = ranks_bcast(h, s->st, &pb, &plen);
    if (!rc) rc = brc;
  }
  if (rc == 0 && me != 0) {
    size_t used = 0;
    int ok = 0;
    if (myelin_msg_decode(pb, plen, 0, &plan, &used, NULL, 0) != 0) rc = h->error(s->st, "the plan from rank 0 is unreadable");
    free(pb);
    if (rc == 0 && (myelin_obj_bool(myelin_msg_get(plan, "ok"), &ok) || !ok)) rc = MYELIN_ESTOP; /* rank 0 reported it */
  }
  myelin_obj keys = plan ? myelin_msg_get(plan, "avgs") : (myelin_obj){0};
  for (size_t i = 0; rc == 0 && i < myelin_obj_len(keys); i++) {
    myelin_obj o = myelin_obj_at(keys, i);
    char *task = obj_text(myelin_obj_get(o, "task")), *rk = obj_text(myelin_obj_get(o, "run"));
    uint64_t T = 0, V = 0;
    myelin_obj_uint(myelin_obj_get(o, "T"), &T);
    myelin_obj_uint(myelin_obj_get(o, "V"), &V);
    avg *g = NULL;
    for (size_t k = 0; k < s->navg; k++)
      if (same_key(s->avgs[k].task, task) && same_key(s->avgs[k].run, rk)) g = &s->avgs[k];
    free(task), free(rk);
    if (g && !g->sum) g->sum = calloc(T * V + 1, sizeof *g->sum); /* rank 0: a key it had no run of */
    double *buf = g ? g->sum : calloc(T * V + 1, sizeof *buf);
    if (!buf) rc = h->error(s->st, "out of memory for an average of [%zu, %zu]", (size_t)T, (size_t)V);
    if (rc == 0) rc = h->allreduce(s->st, buf, (size_t)(T * V), MYELIN_F8, MYELIN_OP_SUM);
    if (!g) free(buf);
  }
  myelin_msg_unref(plan);
  if (me != 0)
    for (size_t i = 0; i < s->navg; i++) s->avgs[i].done = 1; /* rank 0 emits the averages */
  return rc;
}

static int enc_flush(void *state) {
  enc_state *s = state;
  int rc = s->average && s->host->size(s->st) > 1 ? merge_averages_ranks(s) : 0;
  for (size_t i = 0; rc == 0 && i < s->navg; i++)
    if (!s->avgs[i].done) rc = flush_average(s, &s->avgs[i]);
  for (size_t i = 0; rc == 0 && i < s->npend; i++) {
    char *task = msg_text(s->pending[i], "task"), *rk = run_key(s->pending[i]);
    char *sub = msg_text(s->pending[i], "subject");
    const feat *f = best_feat(s, task, rk, 1);
    rc = f ? encode_run(s, s->pending[i], f)
           : s->host->error(s->st, "no features arrived for task %s, run %s (subject %s): runs "
                            "take the features of their task and run, else of their task, else "
                            "a features message without `task`", or_any(task), or_q(rk), or_q(sub));
    free(task), free(rk), free(sub);
  }
  return rc;
}

/* ---- lifecycle ---------------------------------------------------------------- */

/* inner: "gcv" -> 0, an integer k >= 2 -> k, anything else -> -1. */
static int parse_inner(const char *s) {
  if (!s || !strcmp(s, "gcv") || !strcmp(s, "loo")) return 0;
  char *end;
  long k = strtol(s, &end, 10);
  return (*end == 0 && end != s && k >= 2 && k <= 1000) ? (int)k : -1;
}

static int check_lists(const myelin_params *p, char *msg, size_t n, const char **param) {
  size_t na = myelin_param_len(p, "alphas"), nd = myelin_param_len(p, "delays");
  *param = "alphas";
  if (na == 0 || na > MAX_ALPHAS) return snprintf(msg, n, "alphas: give 1 to %d values", MAX_ALPHAS), -1;
  for (size_t i = 0; i < na; i++)
    if (!(myelin_param_float_at(p, "alphas", i) > 0))
      return snprintf(msg, n, "alphas[%zu] = %g: every alpha must be > 0", i,
                      myelin_param_float_at(p, "alphas", i)), -1;
  *param = "delays";
  if (nd == 0 || nd > MAX_DELAYS) return snprintf(msg, n, "delays: give 1 to %d lags", MAX_DELAYS), -1;
  *param = "inner";
  if (parse_inner(myelin_param_str(p, "inner")) < 0)
    return snprintf(msg, n, "inner: expected gcv or an integer number of folds >= 2, got '%s'",
                    myelin_param_str(p, "inner")), -1;
  return 0;
}

static int enc_validate(const myelin_params *p, myelin_validate_ctx *ctx) {
  char msg[256];
  const char *param;
  if (check_lists(p, msg, sizeof msg, &param) != 0)
    return myelin_validate_error(ctx, param, "%s", msg);
  return 0;
}

static void enc_fini(void *state) {
  enc_state *s = state;
  if (!s) return;
  for (size_t i = 0; i < s->nfeat; i++)
    free(s->feats[i].task), free(s->feats[i].run), myelin_msg_unref(s->feats[i].msg);
  for (size_t i = 0; i < s->nserved; i++)
    free(s->served[i].task), free(s->served[i].run), free(s->served[i].subject);
  for (size_t i = 0; i < s->npend; i++) myelin_msg_unref(s->pending[i]);
  for (size_t i = 0; i < s->navg; i++) {
    avg *g = &s->avgs[i];
    for (size_t j = 0; j < g->count; j++) free(g->subjects[j]);
    free(g->subjects), free(g->sum), free(g->task), free(g->run);
    myelin_msg_unref(g->first);
  }
  free(s->feats), free(s->served), free(s->pending), free(s->avgs);
  free(s);
}

static int enc_init(const myelin_host *host, myelin_stage *st, const myelin_params *p,
                    void **state) {
  char msg[256];
  const char *param;
  if (check_lists(p, msg, sizeof msg, &param) != 0) return host->error(st, "%s", msg);
  enc_state *s = calloc(1, sizeof *s);
  if (!s) return MYELIN_ENOMEM;
  *state = s;
  s->host = host, s->st = st;
  size_t na = myelin_param_len(p, "alphas");
  for (size_t i = 0; i < na; i++) s->alphas[i] = myelin_param_float_at(p, "alphas", i);
  s->n_delays = myelin_param_len(p, "delays");
  for (size_t i = 0; i < s->n_delays; i++) s->delays[i] = (int)myelin_param_int_at(p, "delays", i);
  s->wrap = !strcmp(myelin_param_str(p, "pad"), "wrap");
  s->tr = myelin_param_float(p, "tr");
  s->offset = (long)myelin_param_int(p, "offset");
  const char *ev = myelin_param_str(p, "events");
  s->events = !strcmp(ev, "hrf") ? EV_HRF : !strcmp(ev, "lanczos") ? EV_LANCZOS : EV_SUM;
  s->lanczos_window = myelin_param_float(p, "lanczos_window");
  s->split_layers = myelin_param_bool(p, "split_layers");
  s->average = myelin_param_bool(p, "average_subjects");
  const char *sy = myelin_param_str(p, "scale_y");
  s->opts = (ridge_opts){
      .alphas = s->alphas,
      .n_alphas = na,
      .alpha_per_target = myelin_param_bool(p, "alpha_per_target"),
      .inner = parse_inner(myelin_param_str(p, "inner")),
      .folds = (size_t)myelin_param_int(p, "folds"),
      .standardize = myelin_param_bool(p, "standardize"),
      .scale_y = !strcmp(sy, "zscore") ? RIDGE_SCALE_ZSCORE
                 : !strcmp(sy, "robust") ? RIDGE_SCALE_ROBUST : RIDGE_SCALE_NONE,
      .intercept = myelin_param_bool(p, "fit_intercept"),
      .block = (size_t)myelin_param_int(p, "block")};
  return 0;
}

static const myelin_param_def enc_params[] = {
    {"delays", MYELIN_PARAM_INT_LIST, "[0, 1, 2, 3, 4]", 1, -1000, 1000, NULL, "TRs",
     "FIR lags: the design holds the features shifted by each lag (row t sees features of t - lag)."},
    {"pad", MYELIN_PARAM_ENUM, "zero", 0, 0, 0, "zero|wrap", NULL,
     "Rows shifted in from outside the run: zero, or wrap around (np.roll, as the paper's code)."},
    {"tr", MYELIN_PARAM_FLOAT, "0", 1, 0, 1e6, NULL, "s",
     "Bin width for word events (bin = floor(onset / tr) + offset); 0 = the features message's `tr`, "
     "else the run's `tr`."},
    {"offset", MYELIN_PARAM_INT, "0", 1, -1e6, 1e6, NULL, "TRs", "Added to every word event's bin."},
    {"events", MYELIN_PARAM_ENUM, "sum", 0, 0, 0, "sum|hrf|lanczos", NULL,
     "Word events to the TR grid: sum into bins; hrf = convolve with SPM's canonical HRF (unit area) sampled at "
     "frame times (t - offset) * tr; lanczos = Lanczos resampling as Huth et al. 2016 (cutoff 1 / tr)."},
    {"split_layers", MYELIN_PARAM_BOOL, "false", 0, 0, 0, NULL, NULL,
     "One model per layer of lm_features' output (its `layers` and `n_embd` fields): one map per layer, with "
     "`layer`, instead of one model of all columns."},
    {"lanczos_window", MYELIN_PARAM_FLOAT, "3", 1, 1, 100, NULL, "lobes",
     "events: lanczos: the kernel's half-width a (in TRs)."},
    {"standardize", MYELIN_PARAM_BOOL, "true", 0, 0, 0, NULL, NULL,
     "Z-score each feature column on the training rows of each fold (StandardScaler)."},
    {"scale_y", MYELIN_PARAM_ENUM, "zscore", 0, 0, 0, "zscore|robust|none", NULL,
     "Scale each voxel on the training rows of each fold: zscore (mean/std), robust (median/IQR) or "
     "none. Pearson r and per-voxel alphas do not depend on it; a shared alpha does."},
    {"alphas", MYELIN_PARAM_FLOAT_LIST,
     "[0.1, 1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000]", 0, 0, 0, NULL, NULL,
     "Ridge penalties tried, in order (ties go to the earlier one); default logspace(-1, 8, 10)."},
    {"alpha_per_target", MYELIN_PARAM_BOOL, "true", 0, 0, 0, NULL, NULL,
     "Choose the alpha of each voxel separately (true) or one alpha for all voxels (false)."},
    {"inner", MYELIN_PARAM_STRING, "gcv", 0, 0, 0, NULL, NULL,
     "Alpha selection on the training rows: gcv = exact leave-one-out (sklearn RidgeCV, cv=None), or "
     "an integer k = k contiguous inner folds scored by R^2 (RidgeCV(cv=KFold(k)))."},
    {"folds", MYELIN_PARAM_INT, "5", 1, 2, 1000, NULL, "folds",
     "Contiguous outer folds (sklearn KFold without shuffle); r is averaged over folds."},
    {"fit_intercept", MYELIN_PARAM_BOOL, "true", 0, 0, 0, NULL, NULL,
     "Fit an unpenalized intercept (center X and y on the training rows)."},
    {"block", MYELIN_PARAM_INT, "2048", 1, 1, 1e7, NULL, "voxels",
     "Voxels per block: bounds scratch memory to about 3 x T x block doubles."},
    {"average_subjects", MYELIN_PARAM_BOOL, "false", 0, 0, 0, NULL, NULL,
     "Average runs over subjects and emit the maps of the average subject at end of stream, instead "
     "of one map per run: one map per task and run when the task has run-specific features (each "
     "run with its own features), else one per task (its runs summed, equal shapes needed)."},
    {0}};

static const myelin_port_def enc_inputs[] = {
    {.name = "features", .kinds = "features|tensor",
     .doc = "stimulus features per task, or per task and run (`run` field): [T, F] at the TR, or "
            "word events (onset + data)"},
    {.name = "brain", .kinds = "run",
     .doc = "fMRI runs [T, V]; features by precedence: same task and run > same task > no task"},
    {0}};
static const myelin_port_def enc_outputs[] = {
    {.name = "map", .kinds = "map",
     .doc = "stat r: data [V] fold-mean Pearson r, alpha [V], r_folds [K, V], alpha_folds [K, V], geometry"},
    {0}};

static const myelin_plugin_desc enc_desc = {
    MYELIN_DESC_HEADER,
    .name = "encoding",
    .version = "1.1.0",
    .summary = "ridge encoding models (RidgeCV semantics): features + runs -> maps of Pearson r",
    .doc = "Per run: FIR-delayed features, contiguous outer folds, z-scored X, alpha per voxel by exact "
           "leave-one-out (one SVD per fold) or inner folds, Pearson r of the held-out predictions. "
           "A run takes the features of its task and run, else of its task, else those without task; "
           "a run-specific message for a run already computed with task-wide features is refused. "
           "See plugins/encoding/README.md.",
    .params = enc_params,
    .inputs = enc_inputs,
    .outputs = enc_outputs,
    .validate = enc_validate,
    .init = enc_init,
    .process = enc_process,
    .flush = enc_flush,
    .fini = enc_fini,
};

MYELIN_PLUGIN(enc_desc)
