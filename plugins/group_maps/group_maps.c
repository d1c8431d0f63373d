/*
 * group_maps — from per-subject encoding maps to group maps: noise-ceiling
 * normalization, mean over subjects, FDR or permutation thresholds, one map
 * per layer and the layer profile (which layer fits best where).
 *
 * Ports: `r` takes encoding's `map`s (stat r, data [V], subject, task, run,
 * and `layer` with split_layers); `ceiling` (optional) takes isc's
 * leave-one-out `map`s (data [S, V], `subjects`, task, run). Everything
 * is kept (by reference) until end of stream, since a group needs every
 * subject; flush computes (gm_kernels.c) and emits, per layer in increasing
 * order, then the profile when there are several layers.
 *
 * Per subject s and layer, r_s is the mean of s's r maps of that layer
 * (over tasks and runs), and c_s the mean of the ceiling rows of s for
 * those same (task, run)s — a ceiling map serves the r maps of its task and
 * run (or of every run of its task when it has no `run`). The score is
 * r_s / max(c_s, min_ceiling) on the voxels whose mean ceiling over
 * subjects exceeds min_ceiling (elsewhere 0, never tested); without a
 * ceiling input it is r_s itself. See README.md for the test and the
 * thresholds.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gm_kernels.h"
#include "myelin/plugin.h"

enum { PORT_R = 0, PORT_CEILING = 1 };
enum { TH_FDR, TH_FWE, TH_NONE };

typedef struct entry {
  char subject[128], task[128], run[64];
  int64_t layer; /* -1 when absent */
  myelin_msg *msg;
} entry;

typedef struct gm_state {
  const myelin_host *host;
  myelin_stage *st;
  entry *r, *c;
  size_t nr, nc;
  double min_ceiling, alpha;
  size_t n_perm;
  uint64_t seed;
  int threshold, use_ceiling;
} gm_state;

/* Context as text; digit strings without leading zeros ("01" = 1). */
static void key_text(const myelin_msg *m, const char *key, char *buf, size_t n) {
  myelin_msg_text(m, key, buf, n);
  size_t len = strlen(buf);
  if (len && strspn(buf, "0123456789") == len) {
    size_t z = strspn(buf, "0");
    if (z == len) z = len - 1;
    memmove(buf, buf + z, len - z + 1);
  }
}

static int add_entry(gm_state *s, entry **list, size_t *n, myelin_msg *m) {
  entry *e = realloc(*list, (*n + 1) * sizeof *e);
  if (!e) return s->host->error(s->st, "out of memory");
  *list = e;
  e += *n;
  myelin_msg_text(m, "subject", e->subject, sizeof e->subject);
  key_text(m, "task", e->task, sizeof e->task);
  key_text(m, "run", e->run, sizeof e->run);
  if (myelin_msg_int(m, "layer", &e->layer) != 0) e->layer = -1;
  e->msg = myelin_msg_ref(m);
  (*n)++;
  return 0;
}

static int gm_process(void *state, int port, myelin_msg *m) {
  gm_state *s = state;
  if (strcmp(myelin_msg_kind(m), "map"))
    return s->host->error(s->st, "port %s: expected a map, got %s", port == PORT_R ? "r" : "ceiling",
                          myelin_msg_kind(m));
  if (port == PORT_R) return add_entry(s, &s->r, &s->nr, m);
  return add_entry(s, &s->c, &s->nc, m);
}

/* The ceiling row [V] of r map e (subject, task, run), NULL with an error. */
static const double *ceiling_row(gm_state *s, const entry *e, size_t V) {
  for (size_t i = 0; i < s->nc; i++) {
    const entry *c = &s->c[i];
    if (strcmp(c->task, e->task) || (c->run[0] && strcmp(c->run, e->run))) continue;
    myelin_obj subs = myelin_msg_get(c->msg, "subjects");
    myelin_tensor t;
    if (myelin_msg_tensor(c->msg, "data", &t) != 0 || t.dtype != MYELIN_F8 || t.ndim != 2 ||
        (size_t)t.shape[1] != V || (size_t)t.shape[0] != myelin_obj_len(subs) ||
        myelin_obj_exists(myelin_msg_get(c->msg, "pairs"))) {
      s->host->error(s->st,
                     "ceiling map of task %s: expected leave-one-out ISC, data <f8 [S, %zu] with one "
                     "`subjects` label per row (not pairwise)",
                     c->task, V);
      return NULL;
    }
    for (size_t k = 0; k < myelin_obj_len(subs); k++) {
      char lab[128];
      if (myelin_obj_str_copy(myelin_obj_at(subs, k), lab, sizeof lab) == 0 && !strcmp(lab, e->subject))
        return (const double *)t.data + k * V;
    }
  }
  s->host->error(s->st,
                 "no ceiling row for subject %s, task %s, run %s: connect isc maps (leave-one-out) of the "
                 "same task and run, or leave the ceiling port unconnected",
                 e->subject, e->task, e->run[0] ? e->run : "-");
  return NULL;
}

static int cmp_label(const void *a, const void *b) { return strcmp(a, b); }

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* r and ceiling [S, V] of one layer, mean over each subject's maps. */
static int gather(gm_state *s, int64_t layer, char (*subs)[128], size_t S, size_t V, double *r, double *c) {
  memset(r, 0, S * V * sizeof *r);
  memset(c, 0, S * V * sizeof *c);
  for (size_t k = 0; k < S; k++) {
    size_t n = 0;
    for (size_t i = 0; i < s->nr; i++) {
      const entry *e = &s->r[i];
      if (e->layer != layer || strcmp(e->subject, subs[k])) continue;
      myelin_tensor t;
      if (myelin_msg_tensor(e->msg, "data", &t) != 0 || t.count != V ||
          (t.dtype != MYELIN_F8 && t.dtype != MYELIN_F4))
        return s->host->error(s->st,
                              "r map of subject %s, task %s: data must be a float [%zu] like the first map's",
                              e->subject, e->task, V);
      for (size_t v = 0; v < V; v++)
        r[k * V + v] += t.dtype == MYELIN_F8 ? ((const double *)t.data)[v] : ((const float *)t.data)[v];
      if (s->use_ceiling) {
        const double *row = ceiling_row(s, e, V);
        if (!row) return MYELIN_EINVAL;
        for (size_t v = 0; v < V; v++)
          c[k * V + v] += row[v];
      }
      n++;
    }
    if (n == 0)
      return s->host->error(s->st, "subject %s has no r map of layer %lld (every subject needs every layer)",
                            subs[k], (long long)layer);
    for (size_t v = 0; v < V; v++)
      r[k * V + v] /= (double)n, c[k * V + v] /= (double)n;
  }
  return 0;
}

static void build_common(gm_state *s, myelin_builder *b, char (*subs)[128], size_t S) {
  myelin_build_array_begin(b, "subjects");
  for (size_t k = 0; k < S; k++)
    myelin_build_str(b, NULL, subs[k]);
  myelin_build_array_end(b);
  myelin_obj geo = myelin_msg_get(s->r[0].msg, "geometry");
  if (myelin_obj_exists(geo)) myelin_build_obj(b, "geometry", geo);
}

static int emit(gm_state *s, myelin_builder *b) {
  myelin_msg *m = myelin_builder_finish(b);
  if (!m) return s->host->error(s->st, "could not build a map (out of memory?)");
  int rc = s->host->emit(s->st, 0, m);
  return rc == MYELIN_ESTOP ? 0 : rc;
}

/* One layer: test, threshold, emit; mean and significance kept for the profile. */
static int one_layer(gm_state *s, int64_t layer, char (*subs)[128], size_t S, size_t V, double *mean,
                     unsigned char *sig) {
  double *r = malloc(S * V * sizeof *r), *c = malloc(S * V * sizeof *c),
         *score = malloc(S * V * sizeof *score);
  double *p = malloc(V * sizeof *p), *pf = malloc(V * sizeof *pf);
  unsigned char *in = malloc(V);
  int rc = !r || !c || !score || !p || !pf || !in
               ? s->host->error(s->st, "out of memory for %zu x %zu maps", S, V)
               : 0;
  if (!rc) rc = gather(s, layer, subs, S, V, r, c);
  if (!rc) {
    if (s->use_ceiling) {
      gm_normalize(r, c, S, V, s->min_ceiling, score, in);
    } else {
      memcpy(score, r, S * V * sizeof *r);
      memset(in, 1, V);
    }
    size_t N = gm_signflip(score, S, V, in, s->n_perm, s->seed, mean, p, s->threshold == TH_FWE ? pf : NULL);
    if (N == 0) rc = s->host->error(s->st, "out of memory for the permutation test");
    size_t nsig = 0;
    if (!rc && s->threshold == TH_FDR) nsig = gm_fdr_bh(p, in, V, s->alpha, sig);
    for (size_t v = 0; !rc && s->threshold != TH_FDR && v < V; v++) {
      sig[v] = in[v] && (s->threshold == TH_NONE || pf[v] <= s->alpha);
      nsig += sig[v];
    }
    if (!rc) {
      s->host->log(s->st, MYELIN_LOG_INFO,
                   "layer %lld: %zu subjects, %zu patterns, %zu of %zu voxels significant", (long long)layer,
                   S, N, nsig, V);
      myelin_builder *b = myelin_builder_new("map");
      myelin_build_str(b, "stat", s->use_ceiling ? "score" : "r");
      if (layer >= 0) myelin_build_int(b, "layer", layer);
      myelin_build_str(b, "subject", "group");
      int64_t vs[1] = {(int64_t)V}, ss[2] = {(int64_t)S, (int64_t)V};
      double *data = myelin_build_tensor(b, "data", MYELIN_F8, 1, vs);
      for (size_t v = 0; data && v < V; v++)
        data[v] = sig[v] ? mean[v] : 0;
      myelin_build_tensor_copy(b, "mean", MYELIN_F8, 1, vs, mean);
      myelin_build_tensor_copy(b, "p", MYELIN_F8, 1, vs, p);
      if (s->threshold == TH_FWE) myelin_build_tensor_copy(b, "p_fwe", MYELIN_F8, 1, vs, pf);
      myelin_build_tensor_copy(b, "significant", MYELIN_B1, 1, vs, sig);
      myelin_build_tensor_copy(b, "scores", MYELIN_F8, 2, ss, score);
      if (s->use_ceiling) {
        double *cm = myelin_build_tensor(b, "ceiling", MYELIN_F8, 1, vs);
        for (size_t v = 0; cm && v < V; v++) {
          cm[v] = 0;
          for (size_t k = 0; k < S; k++)
            cm[v] += c[k * V + v] / (double)S;
        }
      }
      myelin_build_str(b, "threshold",
                       s->threshold == TH_FDR   ? "fdr"
                       : s->threshold == TH_FWE ? "fwe"
                                                : "none");
      myelin_build_float(b, "alpha", s->alpha);
      myelin_build_uint(b, "n_perm", N);
      build_common(s, b, subs, S);
      rc = emit(s, b);
    }
  }
  free(r), free(c), free(score), free(p), free(pf), free(in);
  return rc;
}

static int gm_flush(void *state) {
  gm_state *s = state;
  if (s->nr == 0) return s->host->error(s->st, "no r maps arrived");
  if (s->use_ceiling && s->nc == 0)
    return s->host->error(s->st,
                          "no ceiling maps arrived (normalize: ceiling needs isc maps on the ceiling port)");
  myelin_tensor t0;
  if (myelin_msg_tensor(s->r[0].msg, "data", &t0) != 0 || t0.count == 0)
    return s->host->error(s->st, "r map of subject %s: no data", s->r[0].subject);
  size_t V = t0.count;
  int64_t *layers = malloc(s->nr * sizeof *layers);
  char(*subs)[128] = malloc(s->nr * sizeof *subs);
  if (!layers || !subs) return free(layers), free(subs), s->host->error(s->st, "out of memory");
  size_t L = 0, S = 0;
  for (size_t i = 0; i < s->nr; i++) {
    size_t j = 0;
    while (j < L && layers[j] != s->r[i].layer)
      j++;
    if (j == L) layers[L++] = s->r[i].layer;
    for (j = 0; j < S && strcmp(subs[j], s->r[i].subject); j++) {
    }
    if (j == S) memcpy(subs[S++], s->r[i].subject, sizeof *subs);
  }
  qsort(layers, L, sizeof *layers, cmp_i64);
  qsort(subs, S, sizeof *subs, cmp_label);
  double *means = malloc(L * V * sizeof *means);
  unsigned char *sigs = malloc(L * V);
  int rc = !means || !sigs ? s->host->error(s->st, "out of memory") : 0;
  if (!rc && S < 2) rc = s->host->error(s->st, "a group needs at least 2 subjects (got %zu)", S);
  for (size_t k = 0; !rc && k < L; k++)
    rc = one_layer(s, layers[k], subs, S, V, means + k * V, sigs + k * V);
  if (!rc && L > 1) {
    myelin_builder *b = myelin_builder_new("map");
    myelin_build_str(b, "stat", "best_layer");
    myelin_build_str(b, "subject", "group");
    int64_t vs[1] = {(int64_t)V};
    double *best = myelin_build_tensor(b, "data", MYELIN_F8, 1, vs);
    double *bs = best ? malloc(V * sizeof *bs) : NULL;
    for (size_t v = 0; bs && v < V; v++) {
      best[v] = -1, bs[v] = 0;
      for (size_t k = 0; k < L; k++)
        if (sigs[k * V + v] && (best[v] < 0 || means[k * V + v] > bs[v]))
          best[v] = (double)layers[k], bs[v] = means[k * V + v];
    }
    if (bs) myelin_build_tensor_copy(b, "best_score", MYELIN_F8, 1, vs, bs);
    free(bs);
    myelin_build_array_begin(b, "layers");
    for (size_t k = 0; k < L; k++)
      myelin_build_int(b, NULL, layers[k]);
    myelin_build_array_end(b);
    build_common(s, b, subs, S);
    rc = emit(s, b);
  }
  free(layers), free(subs), free(means), free(sigs);
  return rc;
}

static void gm_fini(void *state) {
  gm_state *s = state;
  if (!s) return;
  for (size_t i = 0; i < s->nr; i++)
    myelin_msg_unref(s->r[i].msg);
  for (size_t i = 0; i < s->nc; i++)
    myelin_msg_unref(s->c[i].msg);
  free(s->r), free(s->c), free(s);
}

static int gm_validate(const myelin_params *p, myelin_validate_ctx *ctx) {
  if (!strcmp(myelin_param_str(p, "normalize"), "ceiling") && !myelin_validate_input_kinds(ctx, "ceiling"))
    return myelin_validate_error(ctx, "normalize",
                                 "normalize: ceiling needs the ceiling port (isc maps): connect it "
                                 "or set normalize: none");
  return 0;
}

static int gm_init(const myelin_host *host, myelin_stage *st, const myelin_params *p, void **state) {
  gm_state *s = calloc(1, sizeof *s);
  if (!s) return host->error(st, "out of memory");
  s->host = host, s->st = st;
  s->min_ceiling = myelin_param_float(p, "min_ceiling");
  s->alpha = myelin_param_float(p, "alpha");
  s->n_perm = (size_t)myelin_param_int(p, "n_perm");
  s->seed = (uint64_t)myelin_param_int(p, "seed");
  s->use_ceiling = !strcmp(myelin_param_str(p, "normalize"), "ceiling");
  const char *th = myelin_param_str(p, "threshold");
  s->threshold = !strcmp(th, "fdr") ? TH_FDR : !strcmp(th, "fwe") ? TH_FWE : TH_NONE;
  *state = s;
  return 0;
}

static const myelin_param_def gm_params[] = {
    {.name = "normalize",
     .type = MYELIN_PARAM_ENUM,
     .def = "ceiling",
     .choices = "ceiling|none",
     .doc = "ceiling: each subject's r divided by its noise ceiling (the ceiling port's ISC); none: r as it "
            "is."},
    {.name = "threshold",
     .type = MYELIN_PARAM_ENUM,
     .def = "fdr",
     .choices = "fdr|fwe|none",
     .doc =
         "fdr: Benjamini-Hochberg on the sign-flip p-values at `alpha`; fwe: the permutation max-statistic "
         "(family-wise) p <= alpha; none: every voxel in the ceiling mask."},
    {.name = "alpha",
     .type = MYELIN_PARAM_FLOAT,
     .def = "0.05",
     .has_range = 1,
     .min = 1e-9,
     .max = 1,
     .doc = "FDR level q, or family-wise alpha."},
    {.name = "n_perm",
     .type = MYELIN_PARAM_INT,
     .def = "10000",
     .has_range = 1,
     .min = 1,
     .max = 1e8,
     .unit = "patterns",
     .doc = "Sign-flip patterns; all 2^S when that is not more (an exact test)."},
    {.name = "seed",
     .type = MYELIN_PARAM_INT,
     .def = "1",
     .has_range = 1,
     .min = 0,
     .max = 9.2e18,
     .doc = "Random patterns' seed (xorshift64)."},
    {.name = "min_ceiling",
     .type = MYELIN_PARAM_FLOAT,
     .def = "0.05",
     .has_range = 1,
     .min = 1e-6,
     .max = 1,
     .doc = "Voxels whose mean ceiling over subjects is not above this are left out (score 0, never "
            "significant); a subject's ceiling below it counts as it when dividing."},
    {0}};

static const myelin_port_def gm_inputs[] = {
    {.name = "r", .kinds = "map", .doc = "encoding maps (stat r, data [V]; `layer` with split_layers)"},
    {.name = "ceiling",
     .kinds = "map",
     .optional = 1,
     .doc = "isc leave-one-out maps (data [S, V], subjects) of the same tasks/runs: the noise ceiling"},
    {0}};
static const myelin_port_def gm_outputs[] = {
    {.name = "map",
     .kinds = "map",
     .doc =
         "per layer: stat score (r / ceiling) or r, data = thresholded group mean [V], mean, p, significant, "
         "scores [S, V]; then stat best_layer [V] when there are several layers"},
    {0}};

static const myelin_plugin_desc gm_desc = {
    MYELIN_DESC_HEADER,
    .name = "group_maps",
    .version = "1.0.0",
    .summary = "noise-ceiling normalized group maps per layer with FDR / permutation thresholds, and the "
               "layer profile",
    .doc =
        "score_s = r_s / max(ceiling_s, min_ceiling) where the group ceiling exceeds min_ceiling; group mean "
        "over "
        "subjects; one-sided sign-flip permutation test; Benjamini-Hochberg or max-statistic thresholds. See "
        "plugins/group_maps/README.md.",
    .params = gm_params,
    .inputs = gm_inputs,
    .outputs = gm_outputs,
    .validate = gm_validate,
    .init = gm_init,
    .process = gm_process,
    .flush = gm_flush,
    .fini = gm_fini,
};

MYELIN_PLUGIN(gm_desc)
