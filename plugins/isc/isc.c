/*
 * isc — inter-subject correlation stage (BrainIAK semantics).
 *
 * Three modes, chosen by what arrives and by `reference`:
 *
 *  - batch (`run` input): runs are grouped by (task, run). A group is
 *    computed as soon as `subjects` runs have arrived, or at end of stream.
 *    The stage keeps a reference to each run message (no copy) and hands the
 *    tensors in place to the kernels, so extra memory is the output plus
 *    O(T * block) per thread. It emits one `map` (stat "isc") per group:
 *    data [S, V] leave-one-out or [S(S-1)/2, V] pairwise, summary, p, ci,
 *    geometry copied from the first run; with `isfc` also a `tensor` on the
 *    second port.
 *  - streaming (`volume` input, several subjects interleaved): volumes are
 *    parked until every one of the `subjects` subjects has delivered a TR,
 *    then the TR updates each subject's leave-one-out accumulators in
 *    O(V * S) (or every pair's, pairwise) (isc_stream); a map is emitted
 *    every `every` TRs and at the end. Rows follow subject labels, as batch.
 *  - reference (`reference: file`): each subject's volumes (or whole runs)
 *    are correlated TR by TR with a group time series recorded earlier, for
 *    neurofeedback. One accumulator per subject.
 *
 * Statistics run on batch groups only. `stats: permutation` is the one-sample
 * sign-flip test, or with `groups` (subject:group pairs, parsed once into a
 * group_map) BrainIAK's two-sample test: each task's subjects are mapped to
 * group A/B in row order at compute time, so a subject without a group is
 * an error naming it before any work. Leave-one-out ISC is then computed
 * within each group (BrainIAK's usage: isc() per group, rows stacked);
 * pairwise ISC over everyone, the test keeping within-group pairs.
 *
 * Numerics live in isc_kernels.c; this file only routes messages, checks
 * shapes and builds outputs. Resampling draws come from isc_rng seeded by
 * `seed`, on this thread, so results do not depend on the thread count.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../common/ranks.h"
#include "isc_kernels.h"
#include "myelin/error.h"
#include "myelin/io.h"
#include "myelin/npy.h"
#include "myelin/plugin.h"

/* Several ranks: the sum of the subjects is reduced in this many voxel slabs. */
#define ISC_SLABS 4

enum { STATS_NONE, STATS_BOOTSTRAP, STATS_PERMUTATION, STATS_PHASESHIFT, STATS_TIMESHIFT };
#define MAX_PENDING_BYTES ((size_t)1 << 30)

/* A batch group: the runs of one (task, run), sorted by subject label
 * before computing. */
typedef struct group {
  char *task, *run;
  myelin_msg **msgs;
  char **subjects;
  size_t n, cap;
} group;

/* One TR waiting for every subject's volume. */
typedef struct pending {
  int64_t index;
  size_t have;
  unsigned char *got; /* [S] */
  double *data;       /* [S, V] */
} pending;

/* A streaming group (volume input): one per task. */
typedef struct sgroup {
  char *task;
  size_t S, V;
  char **subjects; /* [S], in order of first appearance */
  size_t nsub;
  isc_stream st;
  pending *pend;
  size_t npend, cappend;
  uint64_t ntr, emitted_at;
  int64_t last_index;
  myelin_msg *first; /* geometry and context source */
} sgroup;

/* The `groups` param: each subject's group for the two-sample permutation
 * test. Subject labels are kept without a "sub-" prefix, so "sub-01" and
 * "01" name the same subject (as fmri_source's `subject`). */
typedef struct group_map {
  char **sub;
  uint8_t *g; /* 0: group A, 1: group B */
  size_t n;
  char *label[2]; /* A, B in BrainIAK's np.unique order */
} group_map;

/* Reference mode: one accumulator per live subject. */
typedef struct rsubj {
  char *subject;
  isc_acc acc;
  uint64_t emitted_at;
  int64_t last_index;
  myelin_msg *first;
} rsubj;

typedef struct isc_state {
  const myelin_host *host;
  myelin_stage *st;
  /* params */
  size_t subjects;
  int pairwise, isfc, stats, threads;
  isc_summary_kind summary;
  isc_nan_policy nan;
  size_t n_resamples, isfc_max;
  uint64_t seed, every;
  isc_side side;
  double ci;
  group_map gm; /* empty: one-sample sign-flip test */
  /* reference time series [rT, rV], float64 */
  double *ref;
  size_t rT, rV;
  char *ref_path;
  /* groups */
  group *groups;
  size_t ngroups;
  sgroup *sgroups;
  size_t nsgroups;
  rsubj *rsubj;
  size_t nrsubj;
} isc_state;

/* The job's ranks (host ABI 1.4; one rank without MPI). */
static int nranks(const isc_state *s) { return s->host->size ? s->host->size(s->st) : 1; }
static int myrank(const isc_state *s) { return s->host->rank ? s->host->rank(s->st) : 0; }

/* ---- small helpers ------------------------------------------------------- */

/* tolerate_nans as BrainIAK reads the Python value: a boolean; an int (its
 * truthiness: 1 is True, 0 is False; other ints are refused here); a float in
 * [0, 1], the fraction of subjects that must be NaN-free (0.0 is falsy, so
 * the mean is then strict). The params layer hands over the YAML scalar's
 * text, so `1` (int) and `1.0` (float) stay distinct: a number is a float
 * when written with a decimal point or an exponent. */
#define TOLERATE_NANS_EXPECTED                                                                               \
  "expected true (or 1, as BrainIAK reads the int 1), false (or 0), or a fraction of subjects that must "    \
  "be NaN-free written as a float in [0, 1] (e.g. 0.8; 1.0 = every subject)"
static int parse_tolerate(const char *s, isc_nan_policy *out) {
  if (!strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcasecmp(s, "on") || !strcmp(s, "1") ||
      !strcmp(s, "+1")) {
    *out = (isc_nan_policy){1, -1};
    return 0;
  }
  if (!strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcasecmp(s, "off") || !strcmp(s, "0") ||
      !strcmp(s, "+0") || !strcmp(s, "-0")) {
    *out = (isc_nan_policy){0, -1};
    return 0;
  }
  /* a float literal: digits, sign, '.', exponent; at least one '.' or 'e' */
  if (!*s || s[strspn(s, "0123456789+-.eE")] != '\0' || !strpbrk(s, ".eE")) return -1;
  char *end;
  errno = 0;
  double f = strtod(s, &end);
  if (errno || end == s || *end || !(f >= 0.0 && f <= 1.0)) return -1;
  *out = (isc_nan_policy){f != 0.0, f};
  return 0;
}

/* stats: bootstrap with two subjects has a degenerate null (isc_bootstrap). */
#define BOOTSTRAP_TWO_SUBJECTS                                                                               \
  "needs at least 3 subjects, got 2: the one ISC value resamples to itself or to NaN (a subject drawn "      \
  "twice), so the null is 0 or NaN and every r > 0 would get p = 1/(n+1); use stats: timeshift, "            \
  "phaseshift or permutation"

static int parse_stats(const char *s) {
  if (!strcmp(s, "bootstrap")) return STATS_BOOTSTRAP;
  if (!strcmp(s, "permutation")) return STATS_PERMUTATION;
  if (!strcmp(s, "phaseshift")) return STATS_PHASESHIFT;
  if (!strcmp(s, "timeshift")) return STATS_TIMESHIFT;
  return STATS_NONE;
}

static isc_summary_kind parse_summary(const char *s) {
  if (!strcmp(s, "mean")) return ISC_SUMMARY_MEAN;
  if (!strcmp(s, "median")) return ISC_SUMMARY_MEDIAN;
  return ISC_SUMMARY_NONE;
}

static isc_side parse_side(const char *s) {
  if (!strcmp(s, "left")) return ISC_SIDE_LEFT;
  if (!strcmp(s, "two-sided")) return ISC_SIDE_TWO;
  return ISC_SIDE_RIGHT;
}

/* ---- the `groups` param ---------------------------------------------------- */

static const char *strip_sub(const char *s) { return strncmp(s, "sub-", 4) ? s : s + 4; }

static void group_map_free(group_map *m) {
  for (size_t i = 0; i < m->n; i++)
    free(m->sub[i]);
  free(m->sub);
  free(m->g);
  free(m->label[0]);
  free(m->label[1]);
  memset(m, 0, sizeof *m);
}

/* Index of subject in m, or -1. */
static ptrdiff_t group_map_find(const group_map *m, const char *subject) {
  const char *key = strip_sub(subject);
  for (size_t i = 0; i < m->n; i++)
    if (!strcmp(m->sub[i], key)) return (ptrdiff_t)i;
  return -1;
}

/* Group labels sort as np.unique sorts them: numbers as numbers (a list of
 * ints), anything else as strings (code points: strcmp on UTF-8). */
static int label_cmp(const char *a, const char *b) {
  char *ea, *eb;
  double x = strtod(a, &ea), y = strtod(b, &eb);
  if (ea != a && !*ea && eb != b && !*eb && x != y) return x < y ? -1 : 1;
  return strcmp(a, b);
}

static char *trim(char *t) {
  while (*t == ' ' || *t == '\t')
    t++;
  size_t n = strlen(t);
  while (n && (t[n - 1] == ' ' || t[n - 1] == '\t'))
    t[--n] = 0;
  return t;
}

/* Adds one "subject:group" token; labels[] collects up to 3 distinct group
 * names (a third is an error reported by the caller). */
static int group_map_add(group_map *m, char *tok, size_t item, char *labels[3], size_t *nlab, char *why,
                         size_t wn) {
  char *colon = strrchr(tok, ':');
  if (!colon)
    return myelin_errorf(why, wn, -1, "groups: '%s' (item %zu) is not subject:group, e.g. sub-01:patients",
                         tok, item);
  *colon = 0;
  char *sub = trim(tok), *grp = trim(colon + 1);
  const char *key = strip_sub(sub);
  if (!*key || !*grp)
    return myelin_errorf(why, wn, -1,
                         "groups: '%s:%s' (item %zu) needs a subject and a group, e.g. sub-01:patients", sub,
                         grp, item);
  size_t k = 0;
  while (k < *nlab && strcmp(labels[k], grp))
    k++;
  if (k == *nlab) {
    if (*nlab == 3) return 0; /* already too many: reported once */
    if (!(labels[k] = strdup(grp))) return myelin_errorf(why, wn, -1, "out of memory");
    (*nlab)++;
  }
  ptrdiff_t at = group_map_find(m, key);
  if (at >= 0) {
    if (m->g[at] == k) return 0;
    return myelin_errorf(why, wn, -1, "groups: subject '%s' is in two groups, '%s' and '%s'", sub,
                         labels[m->g[at]], grp);
  }
  char **ns = realloc(m->sub, (m->n + 1) * sizeof *ns);
  if (ns) m->sub = ns;
  uint8_t *ng = realloc(m->g, m->n + 1);
  if (ng) m->g = ng;
  if (!ns || !ng || !(m->sub[m->n] = strdup(key))) return myelin_errorf(why, wn, -1, "out of memory");
  m->g[m->n++] = (uint8_t)k;
  return 0;
}

/* Parses `groups` (a list of "subject:group" items, each may hold several
 * separated by commas) into m: exactly two groups, A first. An empty list
 * leaves m empty. */
static int group_map_parse(const myelin_params *p, group_map *m, char *why, size_t wn) {
  char *labels[3] = {NULL, NULL, NULL};
  size_t nlab = 0, len = myelin_param_len(p, "groups");
  int rc = 0;
  memset(m, 0, sizeof *m);
  for (size_t i = 0; i < len && rc == 0; i++) {
    char *item = strdup(myelin_param_str_at(p, "groups", i));
    if (!item) rc = myelin_errorf(why, wn, -1, "out of memory");
    char *save = NULL;
    for (char *tok = item ? strtok_r(item, ",", &save) : NULL; tok && rc == 0;
         tok = strtok_r(NULL, ",", &save))
      if (*trim(tok)) rc = group_map_add(m, tok, i, labels, &nlab, why, wn);
    free(item);
  }
  if (rc == 0 && nlab == 3)
    rc = myelin_errorf(
        why, wn, -1,
        "groups: more than two groups ('%s', '%s', '%s'); the two-sample test compares exactly two",
        labels[0], labels[1], labels[2]);
  if (rc == 0 && nlab == 1)
    rc = myelin_errorf(
        why, wn, -1,
        "groups: every subject is in group '%s'; the two-sample test needs two groups (leave groups "
        "empty for the one-sample sign-flip test)",
        labels[0]);
  if (rc == 0 && nlab == 2) {
    int swap = label_cmp(labels[0], labels[1]) > 0;
    m->label[0] = labels[swap];
    m->label[1] = labels[!swap];
    labels[0] = labels[1] = NULL;
    if (swap)
      for (size_t i = 0; i < m->n; i++)
        m->g[i] = (uint8_t)!m->g[i];
  }
  for (size_t k = 0; k < 3; k++)
    free(labels[k]);
  if (rc) group_map_free(m);
  return rc ? -1 : 0;
}

/* The data tensor of a run ([T, V]) or volume ([V]). */
static int read_data(isc_state *s, const myelin_msg *m, int want_ndim, myelin_tensor *t,
                     const char *subject) {
  int rc = myelin_msg_tensor(m, "data", t);
  if (rc != 0)
    return s->host->error(s->st, "%s message from subject '%s': field `data` is missing or not a tensor",
                          myelin_msg_kind(m), subject);
  if ((t->dtype != MYELIN_F4 && t->dtype != MYELIN_F8) || t->ndim != want_ndim)
    return s->host->error(s->st,
                          "%s message from subject '%s': `data` must be a <f4 or <f8 tensor with %d "
                          "dimension(s), got %s with %d",
                          myelin_msg_kind(m), subject, want_ndim, myelin_dtype_name(t->dtype), t->ndim);
  if (want_ndim == 2 && t->shape[0] < 2)
    return s->host->error(s->st,
                          "run from subject '%s': `data` has %" PRId64 " TR(s); correlation needs at least 2",
                          subject, t->shape[0]);
  return 0;
}

static void *grow(void *p, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return p;
  size_t nc = *cap ? *cap * 2 : 4;
  while (nc < need)
    nc *= 2;
  void *q = realloc(p, nc * elem);
  if (q) *cap = nc;
  return q;
}

/* Builds the common part of an output map. */
static const char *const group_keys[] = {"task", "run", "tr", NULL};
static const char *const subject_keys[] = {"subject", "task", "run", "tr", NULL};

/* voxels: NULL, or the [V] C-order voxel indices that replace
 * geometry.voxels (a map assembled from the ranks' voxel slabs). */
static myelin_builder *map_begin(const myelin_msg *first, const char *const *keys, char **subjects,
                                 size_t nsub, int pairwise, const uint32_t *voxels, size_t V) {
  myelin_builder *b = myelin_builder_new("map");
  if (!b) return NULL;
  myelin_build_str(b, "stat", "isc");
  myelin_build_fields(b, first, keys);
  myelin_build_array_begin(b, "subjects");
  for (size_t i = 0; i < nsub; i++)
    myelin_build_str(b, NULL, subjects[i]);
  myelin_build_array_end(b);
  myelin_build_bool(b, "pairwise", pairwise);
  /* `geometry` is required by the map schema: an empty map when the input
   * had none (nifti_sink then reports it cannot place the map). */
  myelin_obj geo = myelin_msg_get(first, "geometry");
  if (myelin_obj_type_of(geo) == MYELIN_OBJ_MAP && voxels) {
    myelin_build_map_begin(b, "geometry");
    for (size_t i = 0; i < myelin_obj_len(geo); i++) {
      char key[64];
      if (myelin_obj_str_copy(myelin_obj_key_at(geo, i), key, sizeof key) != 0) continue;
      int64_t shp[1] = {(int64_t)V};
      if (!strcmp(key, "voxels"))
        myelin_build_tensor_copy(b, key, MYELIN_U4, 1, shp, voxels);
      else
        myelin_build_obj(b, key, myelin_obj_value_at(geo, i));
    }
    myelin_build_map_end(b);
  } else if (myelin_obj_type_of(geo) == MYELIN_OBJ_MAP) {
    myelin_build_obj(b, "geometry", geo);
  } else {
    myelin_build_map_begin(b, "geometry");
    myelin_build_map_end(b);
  }
  return b;
}

static int emit_built(isc_state *s, int port, myelin_builder *b) {
  myelin_msg *out = myelin_builder_finish(b);
  if (!out) return s->host->error(s->st, "could not build the output message (out of memory?)");
  int rc = s->host->emit(s->st, port, out);
  return rc == MYELIN_ESTOP ? 0 : rc;
}

static const char *summary_name(isc_summary_kind k) {
  return k == ISC_SUMMARY_MEAN ? "mean" : k == ISC_SUMMARY_MEDIAN ? "median" : "none";
}

/* ---- batch: statistics ------------------------------------------------------ */

/* Runs the requested test; fills observed/p (and ci for bootstrap). */
static int run_stats(isc_state *s, const isc_data *d, const double *iscs, double *observed, double *p,
                     double *ci, size_t *n_used) {
  const size_t S = d->S, T = d->T, V = d->V, n = s->n_resamples;
  isc_rng rng;
  isc_rng_seed(&rng, s->seed);
  int rc = ISC_OK;
  *n_used = n;
  if (s->stats == STATS_BOOTSTRAP) {
    uint32_t *smp = malloc(n * S * sizeof *smp);
    if (!smp) return ISC_ENOMEM;
    for (size_t i = 0; i < n * S; i++)
      smp[i] = isc_rng_below(&rng, (uint32_t)S);
    rc = isc_bootstrap(iscs, S, V, s->pairwise, s->summary, smp, n, s->ci, s->side, s->threads, observed, ci,
                       p, NULL);
    free(smp);
  } else if (s->stats == STATS_PERMUTATION) {
    int exact = S <= 24 && (double)n >= ldexp(1.0, (int)S);
    int8_t *signs = exact ? isc_all_sign_flips(S) : malloc(n * S);
    if (!signs) return ISC_ENOMEM;
    if (exact) {
      *n_used = (size_t)1 << S;
    } else {
      for (size_t i = 0; i < n * S; i++)
        signs[i] = (isc_rng_next(&rng) >> 63) ? 1 : -1;
    }
    rc = isc_permutation(iscs, S, V, s->pairwise, s->summary, signs, *n_used, exact, s->side, s->threads,
                         observed, p, NULL);
    free(signs);
  } else if (s->stats == STATS_TIMESHIFT) {
    uint32_t *sh = malloc(n * S * sizeof *sh);
    if (!sh) return ISC_ENOMEM;
    for (size_t i = 0; i < n * S; i++)
      sh[i] = isc_rng_below(&rng, (uint32_t)T);
    rc = isc_timeshift(d, s->pairwise, s->summary, s->nan, sh, n, s->side, s->threads, observed, p, NULL);
    free(sh);
  } else if (s->stats == STATS_PHASESHIFT) {
    size_t F = isc_phase_count(T);
    double *ph = malloc((n * S * F + 1) * sizeof *ph);
    if (!ph) return ISC_ENOMEM;
    for (size_t i = 0; i < n * S * F; i++)
      ph[i] = isc_rng_unit(&rng) * 2.0 * M_PI;
    rc = isc_phaseshift(d, s->pairwise, s->summary, s->nan, ph, n, s->side, s->threads, observed, p, NULL);
    free(ph);
  }
  return rc;
}

static const char *stats_name(int st) {
  switch (st) {
  case STATS_BOOTSTRAP:
    return "bootstrap";
  case STATS_PERMUTATION:
    return "permutation";
  case STATS_PHASESHIFT:
    return "phaseshift";
  case STATS_TIMESHIFT:
    return "timeshift";
  default:
    return "none";
  }
}

/* Each subject's group (0: A, 1: B) for the two-sample test, in row order;
 * an error naming the first subject without one, or a task whose subjects
 * do not make two usable groups. */
static int assign_groups(isc_state *s, char *const *subjects, size_t n, const char *task, uint8_t *gr) {
  const group_map *m = &s->gm;
  size_t cnt[2] = {0, 0};
  for (size_t i = 0; i < n; i++) {
    ptrdiff_t k = group_map_find(m, subjects[i]);
    if (k < 0)
      return s->host->error(s->st,
                            "groups: subject '%s' (task '%s') has no group; every subject needs one, e.g. "
                            "%s:%s",
                            subjects[i], task, subjects[i], m->label[0]);
    gr[i] = m->g[k];
    cnt[gr[i]]++;
  }
  for (int k = 0; k < 2; k++)
    if (cnt[k] == 0)
      return s->host->error(s->st,
                            "groups: task '%s' has no subject of group '%s' (all %zu are in '%s'); the "
                            "two-sample test needs both",
                            task, m->label[k], n, m->label[!k]);
  for (int k = 0; k < 2; k++) {
    if (s->pairwise && cnt[k] < 2)
      return s->host->error(s->st,
                            "groups: group '%s' has one subject in task '%s'; the pairwise two-sample test "
                            "compares within-group pairs, so each group needs at least 2",
                            m->label[k], task);
    if (!s->pairwise && cnt[k] < 3)
      return s->host->error(s->st,
                            "groups: group '%s' has %zu subjects in task '%s'; leave-one-out ISC within a "
                            "group needs at least 3 (or use pairwise: true)",
                            m->label[k], cnt[k], task);
  }
  if (m->n > n)
    s->host->log(s->st, MYELIN_LOG_WARN, "groups: %zu listed subject(s) have no run in task '%s'; left out",
                 m->n - n, task);
  return 0;
}

/* The two-sample permutation test: exact over every distinct assignment
 * when there are at most n_resamples of them, else n_resamples shuffles of
 * the labels (Fisher-Yates on isc_rng). */
static int run_group_test(isc_state *s, const isc_data *d, const uint8_t *gr, const double *iscs,
                          double *observed, double *p, size_t *n_used) {
  const size_t S = d->S, n = s->n_resamples;
  size_t na = 0;
  for (size_t i = 0; i < S; i++)
    na += gr[i] == 0;
  int exact = isc_group_assignment_count(S, na) <= n;
  uint8_t *assign = NULL;
  *n_used = n;
  if (exact) {
    assign = isc_all_group_assignments(gr, S, n, n_used);
  } else if ((assign = malloc(n * S))) {
    isc_rng rng;
    isc_rng_seed(&rng, s->seed);
    for (size_t i = 0; i < n; i++) {
      uint8_t *a = assign + i * S;
      memcpy(a, gr, S);
      for (size_t k = S - 1; k > 0; k--) {
        uint32_t j = isc_rng_below(&rng, (uint32_t)k + 1);
        uint8_t t = a[k];
        a[k] = a[j];
        a[j] = t;
      }
    }
  }
  if (!assign) return ISC_ENOMEM;
  int rc = isc_permutation_groups(iscs, S, d->V, s->pairwise, s->summary, gr, assign, *n_used, exact, s->side,
                                  s->threads, observed, p, NULL);
  free(assign);
  return rc;
}

/* The two-sample fields of the output map. */
static void build_group_fields(isc_state *s, myelin_builder *b, size_t S, const uint8_t *gr,
                               const double *iscs, const double *diff, size_t V) {
  myelin_build_array_begin(b, "group_labels");
  myelin_build_str(b, NULL, s->gm.label[0]);
  myelin_build_str(b, NULL, s->gm.label[1]);
  myelin_build_array_end(b);
  myelin_build_array_begin(b, "subject_groups");
  for (size_t i = 0; i < S; i++)
    myelin_build_str(b, NULL, s->gm.label[gr[i]]);
  myelin_build_array_end(b);
  int64_t vshape[1] = {(int64_t)V}, gshape[2] = {2, (int64_t)V};
  myelin_build_tensor_copy(b, "difference", MYELIN_F8, 1, vshape, diff);
  double *gs = myelin_build_tensor(b, "group_summary", MYELIN_F8, 2, gshape);
  if (gs && isc_group_summaries(iscs, S, V, s->pairwise, s->summary, gr, gs) != ISC_OK)
    for (size_t i = 0; i < 2 * V; i++)
      gs[i] = NAN;
}

/* ---- batch: one group ---------------------------------------------------------- */

/* Whether voxel-level ISFC of V voxels fits (isfc_max_voxels, the message
 * limit); an error naming the task otherwise. */
static int isfc_limits(isc_state *s, const group *g, size_t V) {
  if (V > s->isfc_max)
    return s->host->error(s->st,
                          "isfc: task '%s' has %zu voxels, a %zu x %zu matrix per subject; reduce to "
                          "parcels or raise isfc_max_voxels (%zu)",
                          g->task, V, V, V, s->isfc_max);
  size_t out_rows = s->summary != ISC_SUMMARY_NONE ? 1 : isc_rows(g->n, s->pairwise);
  if ((double)out_rows * (double)V * (double)V * 8.0 > (double)MYELIN_DEFAULT_MAX_MESSAGE)
    return s->host->error(
        s->st,
        "isfc: task '%s' gives %zu matrices of %zu x %zu float64 (%.0f MB), over the %zu MB "
        "message limit; set summary: mean or median, or use parcels",
        g->task, out_rows, V, V, (double)out_rows * (double)V * (double)V * 8e-6,
        (size_t)(MYELIN_DEFAULT_MAX_MESSAGE >> 20));
  return 0;
}

/* The `isfc` tensor: data [rows, V, V], or [V, V] when summarized. */
static int emit_isfc_tensor(isc_state *s, const group *g, size_t rows, size_t V, const double *data) {
  myelin_builder *b = myelin_builder_new("tensor");
  if (!b) return s->host->error(s->st, "out of memory");
  myelin_build_str(b, "name", "isfc");
  static const char *const keys[] = {"task", "run", NULL};
  myelin_build_fields(b, g->msgs[0], keys);
  myelin_build_array_begin(b, "subjects");
  for (size_t i = 0; i < g->n; i++)
    myelin_build_str(b, NULL, g->subjects[i]);
  myelin_build_array_end(b);
  myelin_build_str(b, "summary", summary_name(s->summary));
  int64_t shp[3] = {(int64_t)rows, (int64_t)V, (int64_t)V};
  if (s->summary != ISC_SUMMARY_NONE)
    myelin_build_tensor_copy(b, "data", MYELIN_F8, 2, shp + 1, data);
  else
    myelin_build_tensor_copy(b, "data", MYELIN_F8, 3, shp, data);
  return emit_built(s, 1, b);
}

static int emit_isfc(isc_state *s, group *g, const isc_data *d) {
  const size_t V = d->V, rows = isc_rows(d->S, s->pairwise);
  int rc = isfc_limits(s, g, V);
  if (rc) return rc;
  double *m = malloc(rows * V * V * sizeof *m);
  double *sm = s->summary != ISC_SUMMARY_NONE ? malloc(V * V * sizeof *sm) : NULL;
  if (!m || (s->summary != ISC_SUMMARY_NONE && !sm)) {
    free(m);
    free(sm);
    return s->host->error(s->st, "isfc: out of memory for %zu x %zu x %zu matrices", rows, V, V);
  }
  rc = isc_isfc(d, s->pairwise, s->nan, m);
  if (rc == 0) {
    if (sm) isc_summarize(m, rows, V * V, s->summary, sm);
    rc = emit_isfc_tensor(s, g, rows, V, sm ? sm : m);
  } else {
    rc = s->host->error(s->st, "isfc failed for task '%s' (code %d)", g->task, rc);
  }
  free(m);
  free(sm);
  return rc;
}

/* Sorts a group's runs by subject label (insertion sort: groups are small). */
static void group_sort(group *g) {
  for (size_t i = 1; i < g->n; i++) {
    char *sub = g->subjects[i];
    myelin_msg *m = g->msgs[i];
    size_t j = i;
    for (; j > 0 && strcmp(g->subjects[j - 1], sub) > 0; j--) {
      g->subjects[j] = g->subjects[j - 1];
      g->msgs[j] = g->msgs[j - 1];
    }
    g->subjects[j] = sub;
    g->msgs[j] = m;
  }
}

/* The group's output map (rank 0 when the subjects are spread over ranks). */
typedef struct gmap_out {
  const double *iscs, *sum, *p, *obs, *ci;
  const uint8_t *gr;
  size_t n_used;
  int two_sample;
  const uint32_t *voxels; /* NULL, or geometry.voxels of the whole map */
} gmap_out;

static int emit_group_map(isc_state *s, const myelin_msg *first, char **subjects, size_t S, size_t V,
                          const gmap_out *o) {
  const size_t rows = isc_rows(S, s->pairwise);
  myelin_builder *b = map_begin(first, group_keys, subjects, S, s->pairwise, o->voxels, V);
  if (!b) return s->host->error(s->st, "out of memory");
  int64_t shp[2] = {(int64_t)rows, (int64_t)V};
  myelin_build_tensor_copy(b, "data", MYELIN_F8, 2, shp, o->iscs);
  if (s->pairwise && S > 2) {
    int64_t pshape[2] = {(int64_t)rows, 2};
    uint32_t *pairs = myelin_build_tensor(b, "pairs", MYELIN_U4, 2, pshape);
    if (pairs)
      for (size_t i = 0, q = 0; i < S; i++)
        for (size_t j = i + 1; j < S; j++, q++)
          pairs[2 * q] = (uint32_t)i, pairs[2 * q + 1] = (uint32_t)j;
  }
  myelin_build_str(b, "summary_statistic", summary_name(s->summary));
  int64_t vshape[1] = {(int64_t)V};
  if (s->summary != ISC_SUMMARY_NONE) myelin_build_tensor_copy(b, "summary", MYELIN_F8, 1, vshape, o->sum);
  myelin_build_str(b, "stats", stats_name(s->stats));
  if (s->stats != STATS_NONE) {
    myelin_build_tensor_copy(b, "p", MYELIN_F8, 1, vshape, o->p);
    myelin_build_uint(b, "n_resamples", o->n_used);
    myelin_build_str(b, "side",
                     s->side == ISC_SIDE_LEFT  ? "left"
                     : s->side == ISC_SIDE_TWO ? "two-sided"
                                               : "right");
    if (s->stats == STATS_PERMUTATION)
      myelin_build_str(b, "test", o->two_sample ? "two-sample" : "one-sample");
    if (o->two_sample) build_group_fields(s, b, S, o->gr, o->iscs, o->obs, V);
    if (s->stats == STATS_BOOTSTRAP) {
      int64_t cshape[2] = {2, (int64_t)V};
      myelin_build_tensor_copy(b, "ci", MYELIN_F8, 2, cshape, o->ci);
      myelin_build_float(b, "ci_percent", s->ci);
    }
  }
  return emit_built(s, 0, b);
}

/* The runs' data pointers of a sorted group (xs: [S]). */
static isc_data group_data(const group *g, const void **xs) {
  myelin_tensor t0;
  myelin_msg_tensor(g->msgs[0], "data", &t0);
  for (size_t i = 0; i < g->n; i++) {
    myelin_tensor t;
    myelin_msg_tensor(g->msgs[i], "data", &t);
    xs[i] = t.data;
  }
  return (isc_data){
      .x = xs, .f64 = t0.dtype == MYELIN_F8, .S = g->n, .T = (size_t)t0.shape[0], .V = (size_t)t0.shape[1]};
}

/* The ISC rows [rows, V] of a group's runs and, with stats, p, the observed
 * statistic (two-sample: the difference) and ci [2, V] — per voxel, so a slab
 * of voxels gives that slab's columns of the whole map. */
static int group_kernels(isc_state *s, const char *task, const isc_data *d, const uint8_t *gr, int two_sample,
                         double *iscs, double *obs, double *p, double *ci, size_t *n_used) {
  int rc;
  /* two groups, leave-one-out: each subject against its own group's others */
  if (s->pairwise)
    rc = isc_pairwise(d, s->nan, s->threads, iscs);
  else
    rc = two_sample ? isc_loo_groups(d, gr, s->nan, s->threads, iscs) : isc_loo(d, s->nan, s->threads, iscs);
  if (rc) return s->host->error(s->st, "ISC kernel failed for task '%s' (code %d)", task, rc);
  *n_used = 0;
  if (s->stats != STATS_NONE) {
    rc = two_sample ? run_group_test(s, d, gr, iscs, obs, p, n_used)
                    : run_stats(s, d, iscs, obs, p, ci, n_used);
    if (rc)
      return s->host->error(s->st, "%s test failed for task '%s' (code %d)", stats_name(s->stats), task, rc);
  }
  return 0;
}

static int compute_group(isc_state *s, group *g) {
  group_sort(g);
  const size_t S = g->n;
  if (S < 2)
    return s->host->error(s->st, "task '%s'%s%s: ISC needs at least 2 subjects, got %zu", g->task,
                          g->run[0] ? " run " : "", g->run, S);
  if (s->stats == STATS_BOOTSTRAP && S < 3)
    return s->host->error(s->st, "task '%s'%s%s: stats: bootstrap " BOOTSTRAP_TWO_SUBJECTS, g->task,
                          g->run[0] ? " run " : "", g->run);
  const void **xs = malloc(S * sizeof *xs);
  if (!xs) return s->host->error(s->st, "out of memory");
  isc_data d = group_data(g, xs);
  const size_t V = d.V, rows = isc_rows(S, s->pairwise);
  double *iscs = malloc((rows * V + 1) * sizeof *iscs);
  double *sum = malloc((3 * V + 1) * sizeof *sum);
  double *ci = malloc((2 * V + 1) * sizeof *ci);
  const int two_sample = s->stats == STATS_PERMUTATION && s->gm.n > 0;
  uint8_t *gr = malloc(S);
  int rc = 0;
  if (!iscs || !sum || !ci || !gr) {
    rc = s->host->error(s->st, "out of memory for a %zu x %zu ISC map", rows, V);
    goto done;
  }
  double *p = sum + V, *obs = p + V;
  if (two_sample && (rc = assign_groups(s, g->subjects, g->n, g->task, gr)) != 0) goto done;
  size_t n_used = 0;
  if ((rc = group_kernels(s, g->task, &d, gr, two_sample, iscs, obs, p, ci, &n_used)) != 0) goto done;
  if (s->summary != ISC_SUMMARY_NONE) isc_summarize(iscs, rows, V, s->summary, sum);
  gmap_out o = {iscs, sum, p, obs, ci, gr, n_used, two_sample, NULL};
  rc = emit_group_map(s, g->msgs[0], g->subjects, S, V, &o);
  if (rc == 0 && s->isfc) rc = emit_isfc(s, g, &d);
  s->host->counter_add(s->st, "groups", 1);
done:
  free(xs);
  free(iscs);
  free(sum);
  free(ci);
  free(gr);
  return rc;
}

static void group_clear(group *g) {
  for (size_t i = 0; i < g->n; i++) {
    myelin_msg_unref(g->msgs[i]);
    free(g->subjects[i]);
  }
  g->n = 0;
}

static void group_free(group *g) {
  group_clear(g);
  free(g->msgs);
  free(g->subjects);
  free(g->task);
  free(g->run);
}

static group *group_find(isc_state *s, const char *task, const char *run) {
  for (size_t i = 0; i < s->ngroups; i++)
    if (!strcmp(s->groups[i].task, task) && !strcmp(s->groups[i].run, run)) return &s->groups[i];
  group *ng = realloc(s->groups, (s->ngroups + 1) * sizeof *ng);
  if (!ng) return NULL;
  s->groups = ng;
  group *g = &s->groups[s->ngroups];
  memset(g, 0, sizeof *g);
  g->task = strdup(task);
  g->run = strdup(run);
  if (!g->task || !g->run) {
    free(g->task);
    free(g->run);
    return NULL;
  }
  s->ngroups++;
  return g;
}

static int process_run(isc_state *s, myelin_msg *m) {
  char subject[256], task[256], run[64];
  myelin_msg_text(m, "subject", subject, sizeof subject);
  myelin_msg_text(m, "task", task, sizeof task);
  myelin_msg_text(m, "run", run, sizeof run);
  myelin_tensor t;
  int rc = read_data(s, m, 2, &t, subject);
  if (rc) return rc;
  group *g = group_find(s, task, run);
  if (!g) return s->host->error(s->st, "out of memory");
  if (!subject[0]) snprintf(subject, sizeof subject, "%zu", g->n);
  if (g->n > 0) {
    myelin_tensor t0;
    myelin_msg_tensor(g->msgs[0], "data", &t0);
    if (t.shape[0] != t0.shape[0] || t.shape[1] != t0.shape[1])
      return s->host->error(s->st,
                            "task '%s': subject '%s' has data [%" PRId64 ", %" PRId64 "] but subject '%s' "
                            "has [%" PRId64 ", %" PRId64 "]; every subject needs the same TRs and voxels",
                            task, subject, t.shape[0], t.shape[1], g->subjects[0], t0.shape[0], t0.shape[1]);
    if (t.dtype != t0.dtype)
      return s->host->error(s->st, "task '%s': subject '%s' sends %s data but subject '%s' sent %s", task,
                            subject, myelin_dtype_name(t.dtype), g->subjects[0], myelin_dtype_name(t0.dtype));
    for (size_t i = 0; i < g->n; i++)
      if (!strcmp(g->subjects[i], subject))
        return s->host->error(s->st, "task '%s'%s%s: subject '%s' sent two runs", task, run[0] ? " run " : "",
                              run, subject);
  }
  if (g->n == g->cap) {
    size_t nc = g->cap ? 2 * g->cap : 8;
    myelin_msg **nm = realloc(g->msgs, nc * sizeof *nm);
    if (!nm) return s->host->error(s->st, "out of memory");
    g->msgs = nm;
    char **ns = realloc(g->subjects, nc * sizeof *ns);
    if (!ns) return s->host->error(s->st, "out of memory");
    g->subjects = ns;
    g->cap = nc;
  }
  g->subjects[g->n] = strdup(subject);
  if (!g->subjects[g->n]) return s->host->error(s->st, "out of memory");
  g->msgs[g->n++] = myelin_msg_ref(m);
  if (s->subjects && g->n == s->subjects && nranks(s) == 1) {
    rc = compute_group(s, g);
    group_clear(g);
  }
  return rc;
}

/* ---- batch groups with the subjects spread over ranks (MPI) ----------------------
 *
 * Under `mpirun -n N` with the source sharding subjects (fmri_source
 * `shard: subject`), each rank's isc holds the runs of its own subjects only.
 * Groups are then computed at end of stream, in (task, run) order, every rank
 * taking part in every group (a rank without a subject of the group too):
 *
 *  1. plan: each rank sends rank 0 its groups (task, run, shape, subject
 *     labels, the context of its first run); rank 0 merges them (subjects in
 *     label order, as one rank sorts them), checks that no subject arrived on
 *     two ranks and that shapes agree, and broadcasts the plan;
 *  2. per group, an allreduce of the float64 sum of the subjects [T, V] and
 *     their time sums [V], in ISC_SLABS slabs of voxels (each rank adds its
 *     subjects in label order, then the runtime adds the ranks' buffers in
 *     rank order); each rank computes
 *     the leave-one-out rows of its own subjects against sum - x_s (with
 *     `groups`, once per group A and B); voxels with a NaN/Inf in some
 *     subject are recomputed on rank 0 from every subject's series there
 *     (gathered in chunks), with BrainIAK's NaN rules, exactly as one rank;
 *  3. rank 0 gathers the rows into [S, V] and computes the summary;
 *  4. bootstrap and permutation: the rows are broadcast and each rank runs
 *     every resample (the same seeded draws as one rank) on its slab of
 *     voxels, V r / N .. V (r + 1) / N; rank 0 gathers p (and ci, the
 *     observed statistic) — per voxel the same computation as one rank, so
 *     these are identical to one rank given identical rows;
 *  5. rank 0 emits the map. Other ranks emit nothing.
 *
 * Memory per rank: its own runs, a [T + 1, V / ISC_SLABS] float64 slab of
 * the sum (T V 2 bytes), the [S_own, V] rows; rank 0 also the [S, V] map.
 */

/* One group of the plan, the same on every rank. */
typedef struct pgroup {
  char *task, *run;
  size_t S, T, V;
  int f64;
  char **labels;   /* [S], sorted */
  int *owner;      /* [S], the rank holding each subject */
  myelin_msg *ctx; /* rank 0: context and geometry of the first subject's run */
  char *ctx_label; /* rank 0 while merging: the label ctx belongs to */
} pgroup;

static void pgroup_free(pgroup *g) {
  for (size_t i = 0; g->labels && i < g->S; i++)
    free(g->labels[i]);
  free(g->labels);
  free(g->owner);
  free(g->task);
  free(g->run);
  free(g->ctx_label);
  myelin_msg_unref(g->ctx);
}

static int gather_blob(isc_state *s, const void *p, size_t n, uint8_t **recv, size_t **sizes) {
  return ranks_gather(s->host, s->st, p, n, recv, sizes);
}

static int bcast_blob(isc_state *s, uint8_t **buf, size_t *len) {
  return ranks_bcast(s->host, s->st, buf, len);
}

static char *obj_strdup(myelin_obj o) {
  size_t n;
  const char *p = myelin_obj_str(o, &n);
  return p ? strndup(p, n) : strdup("");
}

static uint64_t obj_u64(myelin_obj o) {
  uint64_t v = 0;
  myelin_obj_uint(o, &v);
  return v;
}

/* This rank's groups: {groups: [{task, run, T, V, f64, subjects, ctx}]}. */
static myelin_msg *build_inventory(isc_state *s) {
  myelin_builder *b = myelin_builder_new("isc_inventory");
  if (!b) return NULL;
  myelin_build_array_begin(b, "groups");
  for (size_t i = 0; i < s->ngroups; i++) {
    group *g = &s->groups[i];
    if (g->n == 0) continue;
    group_sort(g);
    myelin_tensor t;
    myelin_msg_tensor(g->msgs[0], "data", &t);
    myelin_build_map_begin(b, NULL);
    myelin_build_str(b, "task", g->task);
    myelin_build_str(b, "run", g->run);
    myelin_build_uint(b, "T", (uint64_t)t.shape[0]);
    myelin_build_uint(b, "V", (uint64_t)t.shape[1]);
    myelin_build_bool(b, "f64", t.dtype == MYELIN_F8);
    myelin_build_array_begin(b, "subjects");
    for (size_t k = 0; k < g->n; k++)
      myelin_build_str(b, NULL, g->subjects[k]);
    myelin_build_array_end(b);
    myelin_builder *cb = myelin_builder_new("run");
    myelin_msg *ctx = NULL;
    if (cb) {
      myelin_build_fields(cb, g->msgs[0], group_keys);
      myelin_obj geo = myelin_msg_get(g->msgs[0], "geometry");
      if (myelin_obj_type_of(geo) == MYELIN_OBJ_MAP) myelin_build_obj(cb, "geometry", geo);
      ctx = myelin_builder_finish(cb);
    }
    size_t clen = 0;
    const uint8_t *cbytes = ctx ? myelin_msg_bytes(ctx, &clen) : NULL;
    if (!ctx)
      myelin_build_nil(b, "ctx"); /* makes the builder fail: out of memory */
    else
      myelin_build_bin(b, "ctx", cbytes, clen);
    myelin_msg_unref(ctx);
    myelin_build_map_end(b);
  }
  myelin_build_array_end(b);
  return myelin_builder_finish(b);
}

static pgroup *plan_find(pgroup *pg, size_t n, const char *task, const char *run) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(pg[i].task, task) && !strcmp(pg[i].run, run)) return &pg[i];
  return NULL;
}

static int pgroup_cmp(const void *a, const void *b) {
  const pgroup *x = a, *y = b;
  int c = strcmp(x->task, y->task);
  return c ? c : strcmp(x->run, y->run);
}

/* Rank 0: merges the inventories into the plan; errors go to why. */
static int plan_merge(isc_state *s, const uint8_t *all, const size_t *sizes, pgroup **out, size_t *nout,
                      char *why, size_t wn) {
  pgroup *pg = NULL;
  size_t npg = 0, off = 0;
  int rc = 0;
  for (int r = 0; r < nranks(s) && rc == 0; off += sizes[r], r++) {
    myelin_msg *inv = NULL;
    size_t used = 0;
    char err[256];
    if (myelin_msg_decode(all + off, sizes[r], 0, &inv, &used, err, sizeof err) != 0) {
      rc = myelin_errorf(why, wn, -1, "rank %d sent a bad inventory: %s", r, err);
      break;
    }
    myelin_obj gs = myelin_msg_get(inv, "groups");
    for (size_t i = 0; i < myelin_obj_len(gs) && rc == 0; i++) {
      myelin_obj go = myelin_obj_at(gs, i);
      char *task = obj_strdup(myelin_obj_get(go, "task")), *run = obj_strdup(myelin_obj_get(go, "run"));
      size_t T = (size_t)obj_u64(myelin_obj_get(go, "T")), V = (size_t)obj_u64(myelin_obj_get(go, "V"));
      int f64 = 0;
      myelin_obj_bool(myelin_obj_get(go, "f64"), &f64);
      myelin_obj subs = myelin_obj_get(go, "subjects");
      size_t ns = myelin_obj_len(subs);
      pgroup *g = task && run ? plan_find(pg, npg, task, run) : NULL;
      if (task && run && !g) {
        pgroup *np = realloc(pg, (npg + 1) * sizeof *np);
        if (np) {
          pg = np;
          g = &pg[npg++];
          memset(g, 0, sizeof *g);
          g->task = task, g->run = run, task = run = NULL;
          g->T = T, g->V = V, g->f64 = f64;
        }
      }
      free(task), free(run);
      char **nl = g ? realloc(g->labels, (g->S + ns) * sizeof *nl) : NULL;
      if (nl) g->labels = nl;
      int *no = nl ? realloc(g->owner, (g->S + ns) * sizeof *no) : NULL;
      if (no) g->owner = no;
      if (!no) {
        rc = myelin_errorf(why, wn, -1, "out of memory");
        break;
      }
      if (g->T != T || g->V != V || g->f64 != f64) {
        rc = myelin_errorf(
            why, wn, -1,
            "task '%s': rank %d has data [%zu, %zu] %s but another rank has [%zu, %zu] %s; every "
            "subject needs the same TRs, voxels and dtype",
            g->task, r, T, V, f64 ? "<f8" : "<f4", g->T, g->V, g->f64 ? "<f8" : "<f4");
        break;
      }
      for (size_t k = 0; k < ns; k++) {
        g->labels[g->S] = obj_strdup(myelin_obj_at(subs, k));
        g->owner[g->S++] = r;
      }
      char *first = ns ? obj_strdup(myelin_obj_at(subs, 0)) : NULL;
      if (first && (!g->ctx_label || strcmp(first, g->ctx_label) < 0)) {
        size_t clen = 0;
        const void *cb = myelin_obj_bin(myelin_obj_get(go, "ctx"), &clen);
        myelin_msg *ctx = NULL;
        if (cb && myelin_msg_decode(cb, clen, 0, &ctx, &used, err, sizeof err) == 0) {
          myelin_msg_unref(g->ctx);
          free(g->ctx_label);
          g->ctx = ctx;
          g->ctx_label = first, first = NULL;
        }
      }
      free(first);
    }
    myelin_msg_unref(inv);
  }
  if (rc == 0 && npg) qsort(pg, npg, sizeof *pg, pgroup_cmp);
  for (size_t i = 0; i < npg && rc == 0; i++) {
    pgroup *g = &pg[i];
    for (size_t a = 1; a < g->S; a++) /* insertion sort by label, owners along */
      for (size_t j = a; j > 0 && strcmp(g->labels[j - 1], g->labels[j]) > 0; j--) {
        char *t = g->labels[j];
        g->labels[j] = g->labels[j - 1], g->labels[j - 1] = t;
        int o = g->owner[j];
        g->owner[j] = g->owner[j - 1], g->owner[j - 1] = o;
      }
    for (size_t a = 1; a < g->S && rc == 0; a++)
      if (!strcmp(g->labels[a - 1], g->labels[a]))
        rc = myelin_errorf(
            why, wn, -1,
            "task '%s'%s%s: subject '%s' arrived on rank %d and on rank %d; with several ranks "
            "each subject's runs must reach one rank (shard the source by subject, e.g. "
            "fmri_source shard: subject)",
            g->task, g->run[0] ? " run " : "", g->run, g->labels[a], g->owner[a - 1], g->owner[a]);
  }
  *out = pg;
  *nout = npg;
  return rc;
}

static myelin_msg *plan_encode(const pgroup *pg, size_t n, const char *error) {
  myelin_builder *b = myelin_builder_new("isc_plan");
  if (!b) return NULL;
  myelin_build_str(b, "error", error);
  myelin_build_array_begin(b, "groups");
  for (size_t i = 0; i < n && !*error; i++) {
    myelin_build_map_begin(b, NULL);
    myelin_build_str(b, "task", pg[i].task);
    myelin_build_str(b, "run", pg[i].run);
    myelin_build_uint(b, "T", pg[i].T);
    myelin_build_uint(b, "V", pg[i].V);
    myelin_build_bool(b, "f64", pg[i].f64);
    myelin_build_array_begin(b, "subjects");
    for (size_t k = 0; k < pg[i].S; k++)
      myelin_build_str(b, NULL, pg[i].labels[k]);
    myelin_build_array_end(b);
    myelin_build_array_begin(b, "owners");
    for (size_t k = 0; k < pg[i].S; k++)
      myelin_build_int(b, NULL, pg[i].owner[k]);
    myelin_build_array_end(b);
    myelin_build_map_end(b);
  }
  myelin_build_array_end(b);
  return myelin_builder_finish(b);
}

/* Every rank but 0: the plan from its message. */
static int plan_decode(isc_state *s, const myelin_msg *m, pgroup **out, size_t *nout) {
  myelin_obj gs = myelin_msg_get(m, "groups");
  size_t n = myelin_obj_len(gs);
  pgroup *pg = calloc(n + 1, sizeof *pg);
  if (!pg) return s->host->error(s->st, "out of memory");
  *out = pg;
  *nout = n;
  for (size_t i = 0; i < n; i++) {
    myelin_obj go = myelin_obj_at(gs, i), subs = myelin_obj_get(go, "subjects"),
               own = myelin_obj_get(go, "owners");
    pgroup *g = &pg[i];
    g->task = obj_strdup(myelin_obj_get(go, "task"));
    g->run = obj_strdup(myelin_obj_get(go, "run"));
    g->T = (size_t)obj_u64(myelin_obj_get(go, "T"));
    g->V = (size_t)obj_u64(myelin_obj_get(go, "V"));
    myelin_obj_bool(myelin_obj_get(go, "f64"), &g->f64);
    size_t ns = myelin_obj_len(subs);
    g->labels = calloc(ns + 1, sizeof *g->labels);
    g->owner = calloc(ns + 1, sizeof *g->owner);
    if (!g->task || !g->run || !g->labels || !g->owner) return s->host->error(s->st, "out of memory");
    for (size_t k = 0; k < ns; k++, g->S++) {
      int64_t o = 0;
      myelin_obj_int(myelin_obj_at(own, k), &o);
      g->owner[k] = (int)o;
      if (!(g->labels[k] = obj_strdup(myelin_obj_at(subs, k)))) return s->host->error(s->st, "out of memory");
    }
  }
  return 0;
}

/* Rank 0 fills the voxels vox[0..nvox) of rows mem[0..Sk) of iscs from every
 * member's series (BrainIAK's NaN rules), gathered in chunks of voxels; xs
 * holds this rank's members in member order. */
static int nan_fill_ranks(isc_state *s, const pgroup *pg, const size_t *mem, size_t Sk, const void *const *xs,
                          size_t nl, const size_t *vox, size_t nvox, double *iscs) {
  const size_t T = pg->T, V = pg->V, rows = isc_rows(Sk, 0);
  const int root = myrank(s) == 0, N = nranks(s);
  size_t chunk = ((size_t)64 << 20) / (Sk * T * sizeof(double) + 1);
  if (chunk < 1) chunk = 1;
  int rc = 0;
  for (size_t c0 = 0; c0 < nvox && rc == 0; c0 += chunk) {
    const size_t nc = nvox - c0 < chunk ? nvox - c0 : chunk;
    double *send = malloc((nc * nl * T + 1) * sizeof *send);
    if (!send) return s->host->error(s->st, "out of memory");
    for (size_t i = 0; i < nc; i++)
      for (size_t j = 0; j < nl; j++)
        for (size_t t = 0; t < T; t++) {
          size_t at = t * V + vox[c0 + i];
          send[(i * nl + j) * T + t] =
              pg->f64 ? ((const double *)xs[j])[at] : (double)((const float *)xs[j])[at];
        }
    uint8_t *all = NULL;
    size_t *sizes = NULL;
    rc = gather_blob(s, send, nc * nl * T * sizeof *send, &all, &sizes);
    free(send);
    if (rc == 0 && root) {
      double *g = malloc((Sk * T + rows + 1) * sizeof *g), *col = g ? g + Sk * T : NULL;
      const double *from = (const double *)all;
      size_t base = 0; /* doubles of earlier ranks */
      if (!g) rc = s->host->error(s->st, "out of memory");
      for (size_t i = 0; i < nc && rc == 0; i++) {
        base = 0;
        for (int r = 0; r < N; r++) {
          size_t nr = 0, k = 0;
          for (size_t m = 0; m < Sk; m++)
            nr += pg->owner[mem[m]] == r;
          for (size_t m = 0; m < Sk; m++)
            if (pg->owner[mem[m]] == r) memcpy(g + m * T, from + base + (i * nr + k++) * T, T * sizeof *g);
          base += sizes[r] / sizeof(double);
        }
        if (isc_loo_voxel(g, Sk, T, s->nan, col, 1) != ISC_OK) {
          rc = s->host->error(s->st, "out of memory");
          break;
        }
        for (size_t r = 0; r < rows; r++)
          iscs[mem[r] * V + vox[c0 + i]] = col[r];
      }
      free(g);
    }
    s->host->free(s->st, all);
    free(sizes);
  }
  return rc;
}

/* Leave-one-out rows of the members mem[0..Sk) (global subject indices, in
 * order) into rank 0's iscs (row = subject index); lg: this rank's runs of
 * the group (label order), NULL when it has none. */
static int loo_ranks(isc_state *s, const pgroup *pg, const group *lg, const size_t *mem, size_t Sk,
                     double *iscs) {
  const size_t T = pg->T, V = pg->V;
  const int me = myrank(s), N = nranks(s), root = me == 0;
  const void **xs = malloc((Sk + 1) * sizeof *xs);
  size_t *vox = NULL, nl = 0, nvox = 0;
  if (!xs) return s->host->error(s->st, "out of memory");
  /* this rank's members, in member order (a subset of its label-ordered runs) */
  for (size_t m = 0, k = 0; m < Sk; m++) {
    if (pg->owner[mem[m]] != me) continue;
    while (lg && k < lg->n && strcmp(lg->subjects[k], pg->labels[mem[m]]))
      k++;
    if (!lg || k == lg->n) {
      free(xs);
      return s->host->error(s->st, "task '%s': subject '%s' is missing on rank %d", pg->task,
                            pg->labels[mem[m]], me);
    }
    myelin_tensor t;
    myelin_msg_tensor(lg->msgs[k], "data", &t);
    xs[nl++] = t.data;
  }
  const size_t rows_here = Sk == 2 ? (pg->owner[mem[0]] == me) : nl;
  isc_data d = {.x = xs, .f64 = pg->f64, .S = nl, .T = T, .V = V};
  /* ISC_SLABS allreduces of [T + 1, V / ISC_SLABS]: the sum buffer is half a
   * subject's float32 run (slabs of at least 1024 voxels) */
  const size_t W = V < 1024 * ISC_SLABS ? (V < 1024 ? V : 1024) : (V + ISC_SLABS - 1) / ISC_SLABS;
  double *sums = calloc((T + 1) * W + 1, sizeof *sums), *out = malloc((rows_here * V + 1) * sizeof *out);
  int rc =
      sums && out ? 0 : s->host->error(s->st, "out of memory for the [%zu, %zu] sum of subjects", T + 1, W);
  if (rc == 0 && !(vox = malloc((V + 1) * sizeof *vox))) rc = s->host->error(s->st, "out of memory");
  for (size_t v0 = 0; rc == 0 && v0 < V; v0 += W) {
    const size_t v1 = v0 + W < V ? v0 + W : V, w = v1 - v0;
    memset(sums, 0, (T + 1) * w * sizeof *sums);
    if (isc_loo_sums(&d, v0, v1, sums, sums + T * w) != ISC_OK) rc = s->host->error(s->st, "ISC sums failed");
    if (rc == 0) rc = s->host->allreduce(s->st, sums, (T + 1) * w, MYELIN_F8, MYELIN_OP_SUM);
    if (rc == 0 && isc_loo_from_sums(&d, rows_here, v0, v1, sums, sums + T * w, s->threads, out) != ISC_OK)
      rc = s->host->error(s->st, "ISC kernel failed for task '%s'", pg->task);
    for (size_t v = v0; rc == 0 && v < v1; v++)
      if (!isfinite(sums[T * w + v - v0])) vox[nvox++] = v;
  }
  free(sums); /* before the gathers: rank 0 holds the map instead */
  uint8_t *all = NULL;
  size_t *sizes = NULL;
  if (rc == 0) rc = gather_blob(s, out, rows_here * V * sizeof *out, &all, &sizes);
  free(out);
  if (rc == 0 && root) {
    const double *from = (const double *)all;
    for (int r = 0; r < N; r++) {
      size_t k = 0, nr = V ? sizes[r] / (V * sizeof(double)) : 0;
      for (size_t m = 0; m < Sk && k < nr; m++)
        if (pg->owner[mem[m]] == r) memcpy(iscs + mem[m] * V, from + k++ * V, V * sizeof *iscs);
      from += sizes[r] / sizeof(double);
    }
  }
  s->host->free(s->st, all);
  free(sizes);
  if (rc == 0 && nvox) rc = nan_fill_ranks(s, pg, mem, Sk, xs, nl, vox, nvox, iscs);
  free(vox);
  free(xs);
  return rc;
}

/* bootstrap / permutation: every resample, on this rank's slab of voxels. */
static int stats_ranks(isc_state *s, const pgroup *pg, const uint8_t *gr, int two_sample, double *iscs,
                       double *obs, double *p, double *ci, size_t *n_used) {
  const size_t S = pg->S, V = pg->V, rows = isc_rows(S, 0);
  const int me = myrank(s), N = nranks(s), root = me == 0;
  double *full = root ? iscs : malloc((rows * V + 1) * sizeof *full);
  if (!full) return s->host->error(s->st, "out of memory");
  int rc = s->host->bcast(s->st, full, rows * V * sizeof *full, 0);
  const size_t v0 = V * (size_t)me / (size_t)N, v1 = V * (size_t)(me + 1) / (size_t)N, Vs = v1 - v0;
  double *slab = malloc((rows * Vs + 4 * Vs + 1) * sizeof *slab), *res = slab ? slab + rows * Vs : NULL;
  if (rc == 0 && !slab) rc = s->host->error(s->st, "out of memory");
  if (rc == 0) {
    for (size_t r = 0; r < rows; r++)
      memcpy(slab + r * Vs, full + r * V + v0, Vs * sizeof *slab);
    isc_data d = {.x = NULL, .f64 = pg->f64, .S = S, .T = pg->T, .V = Vs};
    int krc = two_sample ? run_group_test(s, &d, gr, slab, res, res + Vs, n_used)
                         : run_stats(s, &d, slab, res, res + Vs, res + 2 * Vs, n_used);
    if (krc)
      rc = s->host->error(s->st, "%s test failed for task '%s' (code %d)", stats_name(s->stats), pg->task,
                          krc);
  }
  if (!root) free(full);
  uint8_t *all = NULL;
  size_t *sizes = NULL;
  if (rc == 0) rc = gather_blob(s, res, 4 * Vs * sizeof *res, &all, &sizes);
  free(slab);
  if (rc == 0 && root) {
    const double *from = (const double *)all;
    for (int r = 0; r < N; r++) {
      size_t a = V * (size_t)r / (size_t)N, w = V * (size_t)(r + 1) / (size_t)N - a;
      memcpy(obs + a, from, w * sizeof *obs);
      memcpy(p + a, from + w, w * sizeof *p);
      memcpy(ci + a, from + 2 * w, w * sizeof *ci);
      memcpy(ci + V + a, from + 3 * w, w * sizeof *ci);
      from += 4 * w;
    }
  }
  s->host->free(s->st, all);
  free(sizes);
  return rc;
}

static group *group_lookup(isc_state *s, const char *task, const char *run) {
  for (size_t i = 0; i < s->ngroups; i++)
    if (s->groups[i].n && !strcmp(s->groups[i].task, task) && !strcmp(s->groups[i].run, run))
      return &s->groups[i];
  return NULL;
}

static int compute_group_ranks(isc_state *s, const pgroup *pg) {
  const size_t S = pg->S, V = pg->V;
  const int root = myrank(s) == 0;
  const char *sep = pg->run[0] ? " run " : "";
  if (S < 2)
    return s->host->error(s->st, "task '%s'%s%s: ISC needs at least 2 subjects, got %zu", pg->task, sep,
                          pg->run, S);
  if (s->stats == STATS_BOOTSTRAP && S < 3)
    return s->host->error(s->st, "task '%s'%s%s: stats: bootstrap " BOOTSTRAP_TWO_SUBJECTS, pg->task, sep,
                          pg->run);
  if (s->pairwise || s->isfc || s->stats == STATS_TIMESHIFT || s->stats == STATS_PHASESHIFT)
    return s->host->error(
        s->st,
        "task '%s'%s%s: %s needs every subject's data on one rank, but the %zu subjects are "
        "spread over %d ranks; with subjects sharded use leave-one-out with stats none, "
        "bootstrap or permutation (or run on one rank)",
        pg->task, sep, pg->run,
        s->pairwise ? "pairwise: true"
        : s->isfc   ? "isfc: true"
                    : stats_name(s->stats),
        S, nranks(s));
  const group *lg = group_lookup(s, pg->task, pg->run);
  const int two_sample = s->stats == STATS_PERMUTATION && s->gm.n > 0;
  const size_t rows = isc_rows(S, 0);
  uint8_t *gr = malloc(S + 1);
  size_t *mem = malloc((S + 1) * sizeof *mem);
  double *iscs = root ? malloc((rows * V + 1) * sizeof *iscs) : NULL;
  double *sum = root ? malloc((5 * V + 1) * sizeof *sum) : NULL;
  int rc = gr && mem && (!root || (iscs && sum)) ? 0 : s->host->error(s->st, "out of memory");
  if (rc == 0 && two_sample) rc = assign_groups(s, pg->labels, S, pg->task, gr);
  for (int k = 0; rc == 0 && k < (two_sample ? 2 : 1); k++) {
    size_t Sk = 0;
    for (size_t i = 0; i < S; i++)
      if (!two_sample || gr[i] == k) mem[Sk++] = i;
    rc = loo_ranks(s, pg, lg, mem, Sk, iscs);
  }
  double *p = sum ? sum + V : NULL, *obs = sum ? p + V : NULL, *ci = sum ? obs + V : NULL;
  size_t n_used = 0;
  if (rc == 0 && root && s->summary != ISC_SUMMARY_NONE) isc_summarize(iscs, rows, V, s->summary, sum);
  if (rc == 0 && s->stats != STATS_NONE) rc = stats_ranks(s, pg, gr, two_sample, iscs, obs, p, ci, &n_used);
  if (rc == 0 && root) {
    gmap_out o = {iscs, sum, p, obs, ci, gr, n_used, two_sample, NULL};
    rc = emit_group_map(s, pg->ctx, pg->labels, S, V, &o);
  }
  if (rc == 0) s->host->counter_add(s->st, "groups", 1);
  free(gr);
  free(mem);
  free(iscs);
  free(sum);
  return rc;
}

/* End of stream with several ranks: plan, then every group in order. */
static int flush_groups_ranks(isc_state *s) {
  const int root = myrank(s) == 0;
  pgroup *pg = NULL;
  size_t npg = 0;
  char why[1024] = "";
  myelin_msg *inv = build_inventory(s);
  if (!inv) return s->host->error(s->st, "out of memory");
  size_t ilen = 0;
  const uint8_t *ib = myelin_msg_bytes(inv, &ilen);
  uint8_t *all = NULL;
  size_t *sizes = NULL;
  int rc = gather_blob(s, ib, ilen, &all, &sizes);
  myelin_msg_unref(inv);
  myelin_msg *plan = NULL;
  uint8_t *pb = NULL;
  size_t plen = 0;
  if (rc == 0 && root) {
    if (plan_merge(s, all, sizes, &pg, &npg, why, sizeof why) != 0 && !why[0])
      snprintf(why, sizeof why, "out of memory");
    plan = plan_encode(pg, npg, why);
    if (!plan)
      rc = s->host->error(s->st, "out of memory");
    else
      pb = (uint8_t *)myelin_msg_bytes(plan, &plen);
  }
  s->host->free(s->st, all);
  free(sizes);
  if (rc == 0) rc = bcast_blob(s, &pb, &plen);
  if (rc == 0 && !root) {
    char err[256];
    size_t used;
    if (myelin_msg_decode(pb, plen, 0, &plan, &used, err, sizeof err) != 0)
      rc = s->host->error(s->st, "the plan from rank 0 is not readable: %s", err);
    else if (myelin_msg_str(plan, "error", why, sizeof why) == 0 && why[0] == 0)
      rc = plan_decode(s, plan, &pg, &npg);
    free(pb);
  }
  if (rc == 0 && why[0]) rc = s->host->error(s->st, "%s", why);
  for (size_t i = 0; i < npg && rc == 0; i++)
    rc = compute_group_ranks(s, &pg[i]);
  for (size_t i = 0; i < npg; i++)
    pgroup_free(&pg[i]);
  free(pg);
  myelin_msg_unref(plan);
  return rc;
}

/* ---- batch groups with the voxels sharded over ranks (MPI) -----------------------
 *
 * With fmri_source `shard: voxels` every rank receives every subject's runs,
 * but only its slab of voxels: the runs carry `voxel_total` (the run's V) and
 * `voxel_index` (each column's place among them). ISC is per voxel — the
 * pairwise and leave-one-out rows of a voxel, and every resample of its
 * statistics (the same seeded draws on every rank), read that voxel's series
 * only — so each rank computes the whole map for its slab, alone. Groups are
 * taken in (task, run) order; for each, rank 0 gathers every rank's columns
 * (with the slab's geometry.voxels), checks that the slabs cover the run's
 * voxels exactly once and were computed from the same subjects, places the
 * columns by voxel_index, computes the summary and emits the map once, with
 * geometry.voxels of the whole run. Other ranks emit nothing. Memory per
 * rank: its slab of every subject, its columns of the map; rank 0 also the
 * [rows, V] map. ISFC compares every voxel with every other: isfc_voxels
 * exchanges the ranks' z-scored slabs.
 */

/* Header of a rank's columns of one group. */
enum { VH_S, VH_T, VH_TOTAL, VH_N, VH_HASH, VH_USED, VH_GEO, VH_LEN };

static uint64_t fnv1a(uint64_t h, const char *str) {
  for (const unsigned char *c = (const unsigned char *)str;; c++) {
    h = (h ^ *c) * 1099511628211u;
    if (!*c) return h;
  }
}

/* Whether any run holds a slab of voxels; 1 when the job's runs do (agreed
 * by every rank), an error when some do and some do not. */
static int voxel_sharded(isc_state *s, int *yes) {
  int64_t f[2] = {0, 0}; /* runs with voxel_total, runs without */
  for (size_t i = 0; i < s->ngroups; i++)
    for (size_t k = 0; k < s->groups[i].n; k++) {
      uint64_t vt;
      f[myelin_msg_uint(s->groups[i].msgs[k], "voxel_total", &vt) != 0] = 1;
    }
  int rc = s->host->allreduce(s->st, f, 2, MYELIN_I8, MYELIN_OP_MAX);
  if (rc) return rc;
  if (f[0] && f[1])
    return s->host->error(s->st,
                          "some runs carry `voxel_total` (fmri_source shard: voxels) and some do not; shard "
                          "every source of isc's runs the same way");
  *yes = f[0] != 0;
  return 0;
}

static int cmp_group(const void *a, const void *b) {
  const group *x = *(group *const *)a, *y = *(group *const *)b;
  int c = strcmp(x->task, y->task);
  return c ? c : strcmp(x->run, y->run);
}

/* This rank's columns of one group: header, voxel_index, geometry.voxels,
 * rows, p, observed, ci. */
static int slab_columns(isc_state *s, group *g, uint8_t **out, size_t *len, int two_sample, uint8_t *gr) {
  const char *sep = g->run[0] ? " run " : "";
  const size_t S = g->n;
  myelin_tensor t0, ix = {.ndim = 0}, gv = {.ndim = 0};
  myelin_msg_tensor(g->msgs[0], "data", &t0);
  const size_t T = (size_t)t0.shape[0], n = (size_t)t0.shape[1], rows = isc_rows(S, s->pairwise);
  uint64_t total = 0;
  for (size_t i = 0; i < S; i++) {
    uint64_t vt;
    myelin_tensor t;
    if (myelin_msg_uint(g->msgs[i], "voxel_total", &vt) != 0 ||
        myelin_msg_tensor(g->msgs[i], "voxel_index", &t) != 0 || t.dtype != MYELIN_U4 || t.ndim != 1 ||
        (size_t)t.shape[0] != n)
      return s->host->error(
          s->st,
          "task '%s'%s%s: subject '%s': with `voxel_total` a run needs `voxel_index`, a <u4 "
          "tensor of its %zu columns",
          g->task, sep, g->run, g->subjects[i], n);
    if (i == 0) {
      total = vt;
      ix = t;
    } else if (vt != total || (n && memcmp(t.data, ix.data, n * 4) != 0)) {
      return s->host->error(
          s->st, "task '%s'%s%s: subjects '%s' and '%s' hold different voxels of the run on rank %d", g->task,
          sep, g->run, g->subjects[0], g->subjects[i], myrank(s));
    }
  }
  myelin_obj geo = myelin_obj_get(myelin_msg_get(g->msgs[0], "geometry"), "voxels");
  int has_geo = myelin_obj_exists(geo);
  if (has_geo &&
      (myelin_obj_tensor(geo, &gv) != 0 || gv.dtype != MYELIN_U4 || gv.ndim != 1 || (size_t)gv.shape[0] != n))
    return s->host->error(s->st,
                          "task '%s'%s%s: geometry.voxels must be a <u4 tensor of the run's %zu columns",
                          g->task, sep, g->run, n);
  const size_t nd = rows * n + 4 * n;
  *len = VH_LEN * 8 + n * 4 * (1 + (size_t)has_geo) + nd * 8;
  uint8_t *b = malloc(*len);
  double *cols = malloc((nd + 1) * sizeof *cols);
  const void **xs = malloc(S * sizeof *xs);
  int rc = b && cols && xs ? 0 : s->host->error(s->st, "out of memory for the [%zu, %zu] ISC slab", rows, n);
  uint64_t h[VH_LEN] = {
      S, T, total, n, fnv1a(fnv1a(14695981039346656037u, g->task), g->run), 0, (uint64_t)has_geo};
  for (size_t i = 0; i < S; i++)
    h[VH_HASH] = fnv1a(h[VH_HASH], g->subjects[i]);
  if (rc == 0 && n) {
    isc_data d = group_data(g, xs);
    double *iscs = cols, *p = iscs + rows * n, *obs = p + n, *ci = obs + n;
    size_t n_used = 0;
    rc = group_kernels(s, g->task, &d, gr, two_sample, iscs, obs, p, ci, &n_used);
    h[VH_USED] = n_used;
  }
  if (rc == 0) {
    uint8_t *q = b;
    memcpy(q, h, sizeof h), q += sizeof h;
    if (n) memcpy(q, ix.data, n * 4), q += n * 4;
    if (has_geo && n) memcpy(q, gv.data, n * 4), q += n * 4;
    memcpy(q, cols, nd * 8);
    *out = b;
    b = NULL;
  }
  free(b);
  free(cols);
  free(xs);
  return rc;
}

/* Rank 0: every rank's columns (all, sizes) placed into the whole map. */
static int place_slabs(isc_state *s, const group *g, const uint8_t *all, const size_t *sizes,
                       const uint64_t *mine, double *iscs, double *p, double *obs, double *ci, uint32_t *vox,
                       uint8_t *seen, size_t *n_used) {
  const char *sep = g->run[0] ? " run " : "";
  const size_t V = mine[VH_TOTAL], rows = isc_rows(g->n, s->pairwise);
  size_t placed = 0;
  *n_used = s->n_resamples;
  memset(seen, 0, V);
  for (int r = 0; r < nranks(s); all += sizes[r], r++) {
    uint64_t h[VH_LEN];
    if (sizes[r] < sizeof h)
      return s->host->error(s->st, "task '%s'%s%s: rank %d sent no ISC slab", g->task, sep, g->run, r);
    memcpy(h, all, sizeof h);
    if (h[VH_S] != mine[VH_S] || h[VH_T] != mine[VH_T] || h[VH_TOTAL] != V || h[VH_HASH] != mine[VH_HASH] ||
        h[VH_GEO] != mine[VH_GEO])
      return s->host->error(s->st,
                            "task '%s'%s%s: rank %d holds other runs than rank 0 (%" PRIu64
                            " subjects x %" PRIu64 " TRs of %" PRIu64 " voxels vs %zu x %" PRIu64
                            " of %zu, or other subjects); with "
                            "shard: voxels every rank needs every subject's runs",
                            g->task, sep, g->run, r, h[VH_S], h[VH_T], h[VH_TOTAL], g->n, mine[VH_T], V);
    const size_t n = h[VH_N], nd = rows * n + 4 * n;
    if (n > V || sizes[r] != sizeof h + n * 4 * (1 + h[VH_GEO]) + nd * 8)
      return s->host->error(s->st, "task '%s'%s%s: rank %d sent a bad ISC slab", g->task, sep, g->run, r);
    const uint8_t *ix = all + sizeof h, *gv = ix + n * 4, *cols = gv + n * 4 * h[VH_GEO];
    if (n) *n_used = h[VH_USED];
    for (size_t j = 0; j < n; j++) {
      uint32_t v;
      memcpy(&v, ix + 4 * j, 4);
      if (v >= V || seen[v])
        return s->host->error(s->st, "task '%s'%s%s: voxel_index %" PRIu32 " from rank %d is %s", g->task,
                              sep, g->run, v, r, v >= V ? "past voxel_total" : "also another slab's");
      seen[v] = 1;
      placed++;
      if (h[VH_GEO]) memcpy(vox + v, gv + 4 * j, 4);
      for (size_t q = 0; q < rows; q++)
        memcpy(iscs + q * V + v, cols + 8 * (q * n + j), 8);
      const uint8_t *tail = cols + 8 * rows * n;
      memcpy(p + v, tail + 8 * j, 8);
      memcpy(obs + v, tail + 8 * (n + j), 8);
      memcpy(ci + v, tail + 8 * (2 * n + j), 8);
      memcpy(ci + V + v, tail + 8 * (3 * n + j), 8);
    }
  }
  if (placed != V)
    return s->host->error(s->st, "task '%s'%s%s: the ranks' slabs hold %zu of the run's %zu voxels", g->task,
                          sep, g->run, placed, V);
  return 0;
}

/* ISFC with the voxels sharded. Row i of a subject's (or pair's) matrix,
 * (C[i, j] + C[j, i]) / 2 with C[i, j] = sum_t za[t, i] zb[t, j], needs this
 * rank's z-scored columns i and every rank's columns j of za (the subject)
 * and zb (the others' leave-one-out mean, or the pair's second subject); a
 * voxel's z-scores, its others' mean and its NaN mask read that voxel's
 * series only, so each rank computes them for its slab. Then, per output
 * row, every rank in turn broadcasts its slab of za and zb (with its
 * voxel_index and NaN/constant/masked flags) and every rank computes the
 * block of its rows against those columns (two dgemm of n_own x T x n_q).
 * Memory per rank beyond its runs: za, zb and the mean of its slab
 * (3 T n_own doubles), one broadcast slab (2 T n_max doubles), the block
 * scratch (2 n_own n_max), and its rows [n_own, V] — of every output row
 * when summarized (the summary is elementwise over rows, so each rank
 * summarizes its own rows), else one at a time, gathered to rank 0 per row.
 * Rank 0 places the rows by voxel_index and emits the tensor once. */
static int isfc_voxels(isc_state *s, group *g, size_t V) {
  const char *sep = g->run[0] ? " run " : "";
  const int me = myrank(s), N = nranks(s), root = me == 0;
  const int summarized = s->summary != ISC_SUMMARY_NONE;
  const size_t S = g->n, rows = isc_rows(S, s->pairwise);
  myelin_tensor t0, ix;
  myelin_msg_tensor(g->msgs[0], "data", &t0);
  myelin_msg_tensor(g->msgs[0], "voxel_index", &ix); /* checked by slab_columns */
  const size_t T = (size_t)t0.shape[0], n = (size_t)t0.shape[1];
  int64_t *cnt = calloc((size_t)N, sizeof *cnt);
  if (!cnt) return s->host->error(s->st, "out of memory");
  cnt[me] = (int64_t)n;
  int rc = s->host->allreduce(s->st, cnt, (size_t)N, MYELIN_I8, MYELIN_OP_SUM);
  size_t nmax = 0, total = 0;
  for (int q = 0; rc == 0 && q < N; q++) {
    total += (size_t)cnt[q];
    if ((size_t)cnt[q] > nmax) nmax = (size_t)cnt[q];
  }
  if (rc == 0 && total != V)
    rc = s->host->error(s->st, "task '%s'%s%s: isfc: the ranks' slabs hold %zu of the run's %zu voxels",
                        g->task, sep, g->run, total, V);
  const size_t out_rows = summarized ? 1 : rows;
  const void **xs = malloc(S * sizeof *xs);
  double *za = malloc((3 * T * n + 1) * sizeof *za), *zb = za ? za + T * n : NULL,
         *m = zb ? zb + T * n : NULL;
  double *scratch = malloc((2 * n * nmax + 1) * sizeof *scratch);
  double *mine = malloc(((summarized ? rows + 1 : 1) * n * V + 1) * sizeof *mine);
  uint8_t *buf = malloc(16 * T * nmax + 5 * nmax + 1), *masked = malloc(2 * n + 1),
          *bad = masked ? masked + n : NULL;
  double *full = root ? malloc((out_rows * V * V + 1) * sizeof *full) : NULL;
  uint8_t *allix = NULL, *all = NULL;
  size_t *sizes = NULL, *rsizes = NULL;
  if (rc == 0 && (!xs || !za || !scratch || !mine || !buf || !masked || (root && !full)))
    rc = s->host->error(s->st, "isfc: out of memory for the %zu x %zu rows of %zu voxels", rows, n, V);
  isc_data d = {0};
  if (rc == 0) d = group_data(g, xs);
  if (rc == 0 && n && isc_isfc_mask(&d, s->nan, masked) != ISC_OK)
    rc = s->host->error(s->st, "out of memory");
  if (rc == 0) rc = ranks_gather(s->host, s->st, ix.data, n * 4, &allix, &sizes);
  for (size_t r = 0; r < rows && rc == 0; r++) {
    double *o = mine + (summarized ? r * n * V : 0);
    int krc = n ? isc_isfc_zscore(&d, r, s->pairwise, s->nan, masked, za, zb, m, bad) : ISC_OK;
    if (krc) rc = s->host->error(s->st, "isfc failed for task '%s' (code %d)", g->task, krc);
    for (int q = 0; q < N && rc == 0; q++) {
      const size_t nq = (size_t)cnt[q];
      if (q == me && n) {
        memcpy(buf, za, 8 * T * n);
        memcpy(buf + 8 * T * n, zb, 8 * T * n);
        memcpy(buf + 16 * T * n, ix.data, 4 * n);
        memcpy(buf + 16 * T * n + 4 * n, bad, n);
      }
      if (nq && (rc = s->host->bcast(s->st, buf, 16 * T * nq + 5 * nq, q)) != 0) break;
      isc_isfc_block(za, zb, bad, n, (const double *)buf, (const double *)(buf + 8 * T * nq),
                     buf + 16 * T * nq + 4 * nq, (const uint32_t *)(buf + 16 * T * nq), nq, T, scratch, o, V);
    }
    if (rc == 0 && !summarized) rc = ranks_gather(s->host, s->st, o, n * V * 8, &all, &rsizes);
    if (rc == 0 && !summarized && root) {
      const uint8_t *from = all, *fix = allix;
      for (int q = 0; q < N; fix += sizes[q], q++)
        for (size_t i = 0; i < (size_t)cnt[q]; i++, from += V * 8) {
          uint32_t v;
          memcpy(&v, fix + 4 * i, 4);
          memcpy(full + r * V * V + (size_t)v * V, from, V * 8);
        }
    }
    if (all) s->host->free(s->st, all);
    all = NULL;
    free(rsizes);
    rsizes = NULL;
  }
  if (rc == 0 && summarized) {
    double *sm = mine + rows * n * V;
    isc_summarize(mine, rows, n * V, s->summary, sm);
    rc = ranks_gather(s->host, s->st, sm, n * V * 8, &all, &rsizes);
    if (rc == 0 && root) {
      const uint8_t *from = all, *fix = allix;
      for (int q = 0; q < N; fix += sizes[q], q++)
        for (size_t i = 0; i < (size_t)cnt[q]; i++, from += V * 8) {
          uint32_t v;
          memcpy(&v, fix + 4 * i, 4);
          memcpy(full + (size_t)v * V, from, V * 8);
        }
    }
  }
  if (rc == 0 && root) rc = emit_isfc_tensor(s, g, rows, V, full);
  if (all) s->host->free(s->st, all);
  if (allix) s->host->free(s->st, allix);
  free(rsizes);
  free(sizes);
  free(cnt);
  free(xs);
  free(za);
  free(scratch);
  free(mine);
  free(buf);
  free(masked);
  free(full);
  return rc;
}

/* One group with the voxels sharded: every rank its slab, rank 0 the map. */
static int compute_group_voxels(isc_state *s, group *g) {
  group_sort(g);
  const size_t S = g->n;
  const char *sep = g->run[0] ? " run " : "";
  const int root = myrank(s) == 0, two_sample = s->stats == STATS_PERMUTATION && s->gm.n > 0;
  if (S < 2)
    return s->host->error(s->st, "task '%s'%s%s: ISC needs at least 2 subjects, got %zu", g->task, sep,
                          g->run, S);
  if (s->stats == STATS_BOOTSTRAP && S < 3)
    return s->host->error(s->st, "task '%s'%s%s: stats: bootstrap " BOOTSTRAP_TWO_SUBJECTS, g->task, sep,
                          g->run);
  uint64_t total = 0;
  if (s->isfc && myelin_msg_uint(g->msgs[0], "voxel_total", &total) == 0) {
    int lrc = isfc_limits(s, g, (size_t)total);
    if (lrc) return lrc;
  }
  uint8_t *gr = malloc(S), *blob = NULL, *all = NULL;
  size_t len = 0, *sizes = NULL;
  int rc = gr ? 0 : s->host->error(s->st, "out of memory");
  if (rc == 0 && two_sample) rc = assign_groups(s, g->subjects, S, g->task, gr);
  if (rc == 0) rc = slab_columns(s, g, &blob, &len, two_sample, gr);
  if (rc == 0) rc = ranks_gather(s->host, s->st, blob, len, &all, &sizes);
  if (rc == 0 && root) {
    uint64_t mine[VH_LEN];
    memcpy(mine, blob, sizeof mine);
    const size_t V = mine[VH_TOTAL], rows = isc_rows(S, s->pairwise);
    double *iscs = malloc((rows * V + 1) * sizeof *iscs), *sum = malloc((5 * V + 1) * sizeof *sum);
    uint32_t *vox = malloc((V + 1) * sizeof *vox);
    uint8_t *seen = malloc(V + 1);
    if (!iscs || !sum || !vox || !seen)
      rc = s->host->error(s->st, "out of memory for a %zu x %zu ISC map", rows, V);
    double *p = sum ? sum + V : NULL, *obs = p ? p + V : NULL, *ci = obs ? obs + V : NULL;
    size_t n_used = 0;
    if (rc == 0) rc = place_slabs(s, g, all, sizes, mine, iscs, p, obs, ci, vox, seen, &n_used);
    if (rc == 0 && s->summary != ISC_SUMMARY_NONE) isc_summarize(iscs, rows, V, s->summary, sum);
    if (rc == 0) {
      gmap_out o = {iscs, sum, p, obs, ci, gr, n_used, two_sample, mine[VH_GEO] ? vox : NULL};
      rc = emit_group_map(s, g->msgs[0], g->subjects, S, V, &o);
    }
    free(iscs);
    free(sum);
    free(vox);
    free(seen);
  }
  if (rc == 0 && s->isfc) rc = isfc_voxels(s, g, (size_t)total);
  if (rc == 0) s->host->counter_add(s->st, "groups", 1);
  if (all) s->host->free(s->st, all);
  free(sizes);
  free(blob);
  free(gr);
  return rc;
}

/* End of stream with the voxels sharded: every group, in (task, run) order. */
static int flush_groups_voxels(isc_state *s) {
  group **order = malloc((s->ngroups + 1) * sizeof *order);
  if (!order) return s->host->error(s->st, "out of memory");
  size_t n = 0;
  for (size_t i = 0; i < s->ngroups; i++)
    if (s->groups[i].n) order[n++] = &s->groups[i];
  qsort(order, n, sizeof *order, cmp_group);
  int64_t cnt[2] = {(int64_t)n, -(int64_t)n};
  int rc = s->host->allreduce(s->st, cnt, 2, MYELIN_I8, MYELIN_OP_MAX);
  if (rc == 0 && cnt[0] != -cnt[1])
    rc = s->host->error(
        s->st,
        "with shard: voxels every rank needs every (task, run) group, but ranks hold between %" PRId64
        " and %" PRId64 " groups",
        -cnt[1], cnt[0]);
  for (size_t i = 0; i < n && rc == 0; i++) {
    rc = compute_group_voxels(s, order[i]);
    group_clear(order[i]);
  }
  free(order);
  return rc;
}

/* ---- streaming ------------------------------------------------------------------- */

static void sgroup_free(sgroup *g) {
  for (size_t i = 0; i < g->nsub; i++)
    free(g->subjects[i]);
  free(g->subjects);
  for (size_t i = 0; i < g->npend; i++) {
    free(g->pend[i].got);
    free(g->pend[i].data);
  }
  free(g->pend);
  isc_stream_free(&g->st);
  myelin_msg_unref(g->first);
  free(g->task);
}

static int emit_stream(isc_state *s, sgroup *g) {
  const size_t S = g->S, V = g->V, rows = isc_rows(S, g->st.pairwise);
  double *out = malloc((2 * rows + 1) * V * sizeof *out + 1);
  size_t *order = malloc(S * sizeof *order);
  char **names = malloc(S * sizeof *names);
  if (!out || !order || !names) {
    free(out);
    free(order);
    free(names);
    return s->host->error(s->st, "out of memory");
  }
  double *raw = out + (rows + 1) * V;
  isc_stream_result(&g->st, s->nan, raw);
  /* rows in subject-label order, like batch groups */
  for (size_t i = 0; i < S; i++)
    order[i] = i;
  for (size_t i = 1; i < S; i++)
    for (size_t j = i; j > 0 && strcmp(g->subjects[order[j - 1]], g->subjects[order[j]]) > 0; j--) {
      size_t tmp = order[j];
      order[j] = order[j - 1];
      order[j - 1] = tmp;
    }
  for (size_t i = 0; i < S; i++)
    names[i] = g->subjects[order[i]];
  if (g->st.pairwise) {
    for (size_t a = 0, r = 0; a < S; a++)
      for (size_t c = a + 1; c < S; c++, r++)
        memcpy(out + r * V, raw + isc_pair_index(order[a], order[c], S) * V, V * sizeof *out);
  } else {
    for (size_t r = 0; r < rows; r++)
      memcpy(out + r * V, raw + (rows == 1 ? 0 : order[r]) * V, V * sizeof *out);
  }
  myelin_builder *b = map_begin(g->first, group_keys, names, g->nsub, g->st.pairwise, NULL, 0);
  free(order);
  free(names);
  if (!b) {
    free(out);
    return s->host->error(s->st, "out of memory");
  }
  int64_t shp[2] = {(int64_t)rows, (int64_t)V}, vshape[1] = {(int64_t)V};
  myelin_build_tensor_copy(b, "data", MYELIN_F8, 2, shp, out);
  myelin_build_str(b, "summary_statistic", summary_name(s->summary));
  if (s->summary != ISC_SUMMARY_NONE) {
    isc_summarize(out, rows, V, s->summary, out + rows * V);
    myelin_build_tensor_copy(b, "summary", MYELIN_F8, 1, vshape, out + rows * V);
  }
  myelin_build_uint(b, "trs", g->ntr);
  myelin_build_int(b, "index", g->last_index);
  free(out);
  g->emitted_at = g->ntr;
  return emit_built(s, 0, b);
}

static sgroup *sgroup_find(isc_state *s, const char *task, size_t V, const myelin_msg *m) {
  for (size_t i = 0; i < s->nsgroups; i++)
    if (!strcmp(s->sgroups[i].task, task)) return &s->sgroups[i];
  sgroup *ng = realloc(s->sgroups, (s->nsgroups + 1) * sizeof *ng);
  if (!ng) return NULL;
  s->sgroups = ng;
  sgroup *g = &s->sgroups[s->nsgroups];
  memset(g, 0, sizeof *g);
  g->task = strdup(task);
  g->subjects = calloc(s->subjects, sizeof *g->subjects);
  if (!g->task || !g->subjects || isc_stream_init(&g->st, s->subjects, V, s->pairwise) != 0) {
    free(g->task);
    free(g->subjects);
    isc_stream_free(&g->st);
    return NULL;
  }
  g->S = s->subjects;
  g->V = V;
  g->first = myelin_msg_ref((myelin_msg *)m);
  s->nsgroups++;
  return g;
}

static int process_volume_group(isc_state *s, myelin_msg *m, const myelin_tensor *t, const char *subject,
                                const char *task, int64_t index) {
  if (s->subjects < 2)
    return s->host->error(s->st,
                          "volume input: set `subjects` to the number of subjects streaming (>= 2), so "
                          "each TR can be completed");
  if (s->stats != STATS_NONE || s->isfc)
    return s->host->error(s->st, "volume input: `stats` and `isfc` need whole runs (run input)");
  const size_t V = (size_t)t->shape[0];
  sgroup *g = sgroup_find(s, task, V, m);
  if (!g) return s->host->error(s->st, "out of memory");
  if (V != g->V)
    return s->host->error(s->st, "task '%s': subject '%s' sends %zu voxels, expected %zu", task, subject, V,
                          g->V);
  size_t si = 0;
  while (si < g->nsub && strcmp(g->subjects[si], subject))
    si++;
  if (si == g->nsub) {
    if (g->nsub == g->S)
      return s->host->error(s->st, "task '%s': subject '%s' is subject number %zu but `subjects` is %zu",
                            task, subject, g->nsub + 1, g->S);
    g->subjects[g->nsub] = strdup(subject);
    if (!g->subjects[g->nsub]) return s->host->error(s->st, "out of memory");
    g->nsub++;
  }
  size_t pi = 0;
  while (pi < g->npend && g->pend[pi].index != index)
    pi++;
  if (pi == g->npend) {
    if ((g->npend + 1) * g->S * V * sizeof(double) > MAX_PENDING_BYTES)
      return s->host->error(s->st,
                            "task '%s': %zu TRs wait for missing subjects (over 1 GiB); are all %zu "
                            "subjects streaming?",
                            task, g->npend, g->S);
    pending *np = grow(g->pend, &g->cappend, g->npend + 1, sizeof *np);
    if (!np) return s->host->error(s->st, "out of memory");
    g->pend = np;
    pending *p = &g->pend[g->npend];
    p->index = index;
    p->have = 0;
    p->got = calloc(g->S, 1);
    p->data = malloc(g->S * V * sizeof *p->data);
    if (!p->got || !p->data) {
      free(p->got);
      free(p->data);
      return s->host->error(s->st, "out of memory");
    }
    g->npend++;
  }
  pending *p = &g->pend[pi];
  if (p->got[si])
    return s->host->error(s->st, "task '%s': subject '%s' sent TR %" PRId64 " twice", task, subject, index);
  double *dst = p->data + si * V;
  for (size_t v = 0; v < V; v++)
    dst[v] = t->dtype == MYELIN_F8 ? ((const double *)t->data)[v] : ((const float *)t->data)[v];
  p->got[si] = 1;
  if (++p->have < g->S) return 0;
  const double **vol = malloc(g->S * sizeof *vol);
  if (!vol) return s->host->error(s->st, "out of memory");
  for (size_t i = 0; i < g->S; i++)
    vol[i] = p->data + i * V;
  isc_stream_add(&g->st, vol);
  free(vol);
  g->ntr++;
  g->last_index = p->index;
  s->host->counter_add(s->st, "trs", 1);
  free(p->got);
  free(p->data);
  g->pend[pi] = g->pend[--g->npend];
  if (g->ntr >= 2 && g->ntr % s->every == 0) return emit_stream(s, g);
  return 0;
}

/* ---- reference mode ------------------------------------------------------------------ */

static int load_reference(isc_state *s, const char *path) {
  char err[512];
  const char *dot = strrchr(path, '.');
  myelin_tensor t = {0};
  myelin_array arr = {0};
  myelin_msg *msg = NULL;
  int rc;
  if (dot && !strcmp(dot, ".mpk")) {
    uint8_t *buf = NULL;
    size_t len = 0, used = 0;
    rc = myelin_read_file(path, 0, &buf, &len, err, sizeof err);
    if (rc) return s->host->error(s->st, "reference: %s", err);
    rc = myelin_msg_decode(buf, len, 0, &msg, &used, err, sizeof err);
    free(buf);
    if (rc) return s->host->error(s->st, "reference %s: not a message stream: %s", path, err);
    if (myelin_msg_tensor(msg, "data", &t) != 0) {
      myelin_msg_unref(msg);
      return s->host->error(s->st, "reference %s: the first message has no `data` tensor", path);
    }
  } else {
    rc = myelin_npy_read(path, &arr, err, sizeof err);
    if (rc) return s->host->error(s->st, "reference: %s", err);
    t.dtype = arr.dtype;
    t.ndim = arr.ndim;
    memcpy(t.shape, arr.shape, sizeof t.shape);
    t.count = arr.count;
    t.data = arr.data;
  }
  if ((t.dtype != MYELIN_F4 && t.dtype != MYELIN_F8) || t.ndim != 2 || t.shape[0] < 2) {
    rc = s->host->error(
        s->st, "reference %s: need a <f4 or <f8 [T, V] array with T >= 2, got %s with %d dimension(s)", path,
        myelin_dtype_name(t.dtype), t.ndim);
  } else {
    s->rT = (size_t)t.shape[0];
    s->rV = (size_t)t.shape[1];
    s->ref = malloc(s->rT * s->rV * sizeof *s->ref + 1);
    if (!s->ref) {
      rc = s->host->error(s->st, "reference %s: out of memory", path);
    } else {
      for (size_t i = 0; i < s->rT * s->rV; i++)
        s->ref[i] = t.dtype == MYELIN_F8 ? ((const double *)t.data)[i] : ((const float *)t.data)[i];
      rc = 0;
    }
  }
  myelin_msg_unref(msg);
  myelin_array_free(&arr);
  return rc;
}

static rsubj *rsubj_find(isc_state *s, const char *subject, const myelin_msg *m) {
  for (size_t i = 0; i < s->nrsubj; i++)
    if (!strcmp(s->rsubj[i].subject, subject)) return &s->rsubj[i];
  rsubj *nr = realloc(s->rsubj, (s->nrsubj + 1) * sizeof *nr);
  if (!nr) return NULL;
  s->rsubj = nr;
  rsubj *r = &s->rsubj[s->nrsubj];
  memset(r, 0, sizeof *r);
  r->subject = strdup(subject);
  if (!r->subject || isc_acc_init(&r->acc, s->rV) != 0) {
    free(r->subject);
    return NULL;
  }
  r->first = myelin_msg_ref((myelin_msg *)m);
  s->nrsubj++;
  return r;
}

static int emit_reference(isc_state *s, rsubj *r) {
  const size_t V = s->rV;
  double *out = malloc(V * sizeof *out + 1);
  if (!out) return s->host->error(s->st, "out of memory");
  isc_acc_corr(&r->acc, out);
  myelin_builder *b = map_begin(r->first, subject_keys, &r->subject, 1, 0, NULL, 0);
  if (!b) {
    free(out);
    return s->host->error(s->st, "out of memory");
  }
  myelin_build_int(b, "index", r->last_index);
  int64_t shp[2] = {1, (int64_t)V};
  myelin_build_tensor_copy(b, "data", MYELIN_F8, 2, shp, out);
  myelin_build_str(b, "reference", s->ref_path);
  myelin_build_uint(b, "trs", r->acc.n);
  free(out);
  r->emitted_at = r->acc.n;
  return emit_built(s, 0, b);
}

/* Adds TR rows [row0, row0 + nrows) of data to subject r's accumulator. */
static int reference_add(isc_state *s, rsubj *r, const myelin_tensor *t, size_t nrows, int64_t index) {
  const size_t V = s->rV;
  double *x = malloc(V * sizeof *x + 1);
  if (!x) return s->host->error(s->st, "out of memory");
  for (size_t k = 0; k < nrows; k++) {
    int64_t tr = index + (int64_t)k;
    if (tr < 0 || (size_t)tr >= s->rT) {
      free(x);
      return s->host->error(s->st, "subject '%s': TR %" PRId64 " is past the reference's %zu TRs (%s)",
                            r->subject, tr, s->rT, s->ref_path);
    }
    for (size_t v = 0; v < V; v++)
      x[v] =
          t->dtype == MYELIN_F8 ? ((const double *)t->data)[k * V + v] : ((const float *)t->data)[k * V + v];
    isc_acc_add(&r->acc, x, s->ref + (size_t)tr * V);
    r->last_index = tr;
  }
  free(x);
  s->host->counter_add(s->st, "trs", (int64_t)nrows);
  return 0;
}

static int process_reference(isc_state *s, myelin_msg *m, const myelin_tensor *t, const char *subject,
                             int is_run, int64_t index) {
  size_t V = (size_t)t->shape[is_run ? 1 : 0];
  if (V != s->rV)
    return s->host->error(s->st, "subject '%s' sends %zu voxels but the reference %s has %zu", subject, V,
                          s->ref_path, s->rV);
  rsubj *r = rsubj_find(s, subject, m);
  if (!r) return s->host->error(s->st, "out of memory");
  int rc = reference_add(s, r, t, is_run ? (size_t)t->shape[0] : 1, is_run ? 0 : index);
  if (rc) return rc;
  if (is_run) return emit_reference(s, r);
  if (r->acc.n >= 2 && r->acc.n % s->every == 0) return emit_reference(s, r);
  return 0;
}

/* ---- lifecycle ------------------------------------------------------------------------ */

static int isc_process(void *state, int port, myelin_msg *m) {
  (void)port;
  isc_state *s = state;
  const char *kind = myelin_msg_kind(m);
  int is_run = !strcmp(kind, "run");
  if (!is_run && strcmp(kind, "volume"))
    return s->host->error(s->st, "expected `run` or `volume` messages, got `%s`", kind);
  char subject[256], task[256];
  myelin_msg_text(m, "subject", subject, sizeof subject);
  myelin_msg_text(m, "task", task, sizeof task);
  if (!is_run && !subject[0])
    return s->host->error(s->st, "volume message without a `subject` field (task '%s')", task);
  if (is_run && !s->ref) return process_run(s, m);
  myelin_tensor t;
  int rc = read_data(s, m, is_run ? 2 : 1, &t, subject);
  if (rc) return rc;
  int64_t index = 0;
  if (!is_run && myelin_msg_int(m, "index", &index) != 0)
    return s->host->error(s->st, "volume message from subject '%s' has no integer `index` (TR number)",
                          subject);
  if (s->ref) return process_reference(s, m, &t, subject, is_run, index);
  return process_volume_group(s, m, &t, subject, task, index);
}

static int isc_flush(void *state) {
  isc_state *s = state;
  int voxels = 0, rc = nranks(s) > 1 && !s->ref ? voxel_sharded(s, &voxels) : 0;
  if (rc == 0 && nranks(s) > 1 && !s->ref) rc = voxels ? flush_groups_voxels(s) : flush_groups_ranks(s);
  for (size_t i = 0; i < s->ngroups && rc == 0 && nranks(s) == 1; i++) {
    group *g = &s->groups[i];
    if (g->n == 0) continue;
    rc = compute_group(s, g);
    group_clear(g);
  }
  for (size_t i = 0; i < s->nsgroups && rc == 0; i++) {
    sgroup *g = &s->sgroups[i];
    if (g->npend)
      s->host->log(s->st, MYELIN_LOG_WARN,
                   "task '%s': %zu TR(s) never completed by all %zu subjects were dropped", g->task, g->npend,
                   g->S);
    if (g->ntr >= 2 && g->emitted_at != g->ntr) rc = emit_stream(s, g);
  }
  for (size_t i = 0; i < s->nrsubj && rc == 0; i++) {
    rsubj *r = &s->rsubj[i];
    if (r->acc.n >= 2 && r->emitted_at != r->acc.n) rc = emit_reference(s, r);
  }
  return rc;
}

static void isc_fini(void *state) {
  isc_state *s = state;
  if (!s) return;
  for (size_t i = 0; i < s->ngroups; i++)
    group_free(&s->groups[i]);
  free(s->groups);
  for (size_t i = 0; i < s->nsgroups; i++)
    sgroup_free(&s->sgroups[i]);
  free(s->sgroups);
  for (size_t i = 0; i < s->nrsubj; i++) {
    isc_acc_free(&s->rsubj[i].acc);
    free(s->rsubj[i].subject);
    myelin_msg_unref(s->rsubj[i].first);
  }
  free(s->rsubj);
  free(s->ref);
  free(s->ref_path);
  group_map_free(&s->gm);
  free(s);
}

static int init_state(isc_state *s, const myelin_host *host, myelin_stage *st, const myelin_params *p);

/* fini only runs after a successful init: a failing init frees its state. */
static int isc_init(const myelin_host *host, myelin_stage *st, const myelin_params *p, void **state) {
  isc_state *s = calloc(1, sizeof *s);
  if (!s) return MYELIN_ENOMEM;
  int rc = init_state(s, host, st, p);
  if (rc) {
    isc_fini(s);
    *state = NULL;
    return rc;
  }
  *state = s;
  return 0;
}

static int init_state(isc_state *s, const myelin_host *host, myelin_stage *st, const myelin_params *p) {
  s->host = host;
  s->st = st;
  s->subjects = (size_t)myelin_param_int(p, "subjects");
  s->pairwise = myelin_param_bool(p, "pairwise");
  s->summary = parse_summary(myelin_param_str(p, "summary"));
  if (parse_tolerate(myelin_param_str(p, "tolerate_nans"), &s->nan) != 0)
    return host->error(st, "tolerate_nans: " TOLERATE_NANS_EXPECTED ", got '%s'",
                       myelin_param_str(p, "tolerate_nans"));
  s->isfc = myelin_param_bool(p, "isfc");
  s->isfc_max = (size_t)myelin_param_int(p, "isfc_max_voxels");
  s->stats = parse_stats(myelin_param_str(p, "stats"));
  s->n_resamples = (size_t)myelin_param_int(p, "n_resamples");
  s->seed = (uint64_t)myelin_param_int(p, "seed");
  s->side = parse_side(myelin_param_str(p, "side"));
  s->ci = myelin_param_float(p, "ci");
  s->every = (uint64_t)myelin_param_int(p, "every");
  s->threads = (int)myelin_param_int(p, "threads");
  if (s->stats != STATS_NONE && s->summary == ISC_SUMMARY_NONE)
    return host->error(st, "stats: %s needs summary: mean or median", stats_name(s->stats));
  char why[512];
  if (group_map_parse(p, &s->gm, why, sizeof why) != 0) return host->error(st, "%s", why);
  if (s->gm.n && s->stats != STATS_PERMUTATION)
    return host->error(st, "groups: the two-sample test needs stats: permutation (stats is %s)",
                       stats_name(s->stats));
  const char *ref = myelin_param_str(p, "reference");
  if (ref && *ref) {
    s->ref_path = myelin_input_path(ref, host->pipeline_dir ? host->pipeline_dir(st) : NULL);
    if (!s->ref_path) return host->error(st, "out of memory");
    int rc = load_reference(s, s->ref_path);
    if (rc) return rc;
  }
  return 0;
}

static int isc_validate(const myelin_params *p, myelin_validate_ctx *ctx) {
  isc_nan_policy np;
  int rc = 0;
  if (parse_tolerate(myelin_param_str(p, "tolerate_nans"), &np) != 0)
    rc = myelin_validate_error(ctx, "tolerate_nans", TOLERATE_NANS_EXPECTED ", got '%s'",
                               myelin_param_str(p, "tolerate_nans"));
  int stats = parse_stats(myelin_param_str(p, "stats"));
  if (stats != STATS_NONE && parse_summary(myelin_param_str(p, "summary")) == ISC_SUMMARY_NONE)
    rc = myelin_validate_error(ctx, "stats", "stats: %s needs summary: mean or median",
                               myelin_param_str(p, "stats"));
  double ci = myelin_param_float(p, "ci");
  if (!(ci > 0 && ci < 100))
    rc = myelin_validate_error(ctx, "ci", "ci must be between 0 and 100 (exclusive)");
  const char *ref = myelin_param_str(p, "reference");
  if (ref && *ref &&
      (stats != STATS_NONE || myelin_param_bool(p, "isfc") || myelin_param_bool(p, "pairwise")))
    rc = myelin_validate_error(ctx, "reference",
                               "reference mode correlates each subject with a recorded series; it does not "
                               "combine with stats, isfc or pairwise");
  group_map gm;
  char why[512];
  if (group_map_parse(p, &gm, why, sizeof why) != 0) {
    rc = myelin_validate_error(ctx, "groups", "%s", strncmp(why, "groups: ", 8) ? why : why + 8);
  } else {
    if (gm.n && stats != STATS_PERMUTATION)
      rc = myelin_validate_error(ctx, "groups", "the two-sample test needs stats: permutation (stats is %s)",
                                 myelin_param_str(p, "stats"));
    group_map_free(&gm);
  }
  if (stats == STATS_BOOTSTRAP && myelin_param_int(p, "subjects") == 2)
    rc = myelin_validate_error(ctx, "stats", "stats: bootstrap " BOOTSTRAP_TWO_SUBJECTS " (subjects: 2)");
  if (myelin_param_int(p, "subjects") == 1)
    rc = myelin_validate_error(ctx, "subjects",
                               "subjects: ISC needs at least 2 subjects (0 = wait for end of stream)");
  return rc;
}

static const myelin_param_def isc_params[] = {
    {"subjects", MYELIN_PARAM_INT, "0", 1, 0, 1e6, NULL, "subjects",
     "Compute a task's group as soon as this many runs arrived (0 = at end of stream). Required for "
     "volume input: a TR is complete when this many subjects delivered it."},
    {"pairwise", MYELIN_PARAM_BOOL, "false", 0, 0, 0, NULL, NULL,
     "false: leave-one-out (each subject vs the mean of the others), rows in subject order; true: every "
     "pair (0,1), (0,2), ... as scipy's squareform."},
    {"summary", MYELIN_PARAM_ENUM, "none", 0, 0, 0, "none|mean|median", NULL,
     "Also emit `summary` [V]: mean is the Fisher-z mean tanh(mean(arctanh r)), median the nanmedian."},
    {"tolerate_nans", MYELIN_PARAM_STRING, "true", 0, 0, 0, NULL, NULL,
     "As BrainIAK: true (or the int 1) = nanmean of the others; false (or 0) = any NaN makes the voxel "
     "NaN; a float f in [0, 1], written with a decimal point (0.8, 1.0) = voxels where fewer than f*S "
     "subjects are NaN-free become NaN (1.0: a voxel with a NaN in any subject; 0.0 is false)."},
    {"isfc", MYELIN_PARAM_BOOL, "false", 0, 0, 0, NULL, NULL,
     "Also emit the symmetrized ISFC matrix as a `tensor` on port `isfc`: [rows, V, V], or [V, V] with a "
     "summary."},
    {"isfc_max_voxels", MYELIN_PARAM_INT, "4096", 1, 2, 65536, NULL, "voxels",
     "Refuse ISFC above this many voxels (the matrix is V x V per subject)."},
    {"stats", MYELIN_PARAM_ENUM, "none", 0, 0, 0, "none|bootstrap|permutation|phaseshift|timeshift", NULL,
     "Group test on the summary statistic (needs summary: mean or median): subject bootstrap (at least 3 "
     "subjects), permutation "
     "(one-sample sign flips, exact when 2^S <= n_resamples; with `groups` the two-sample relabeling test, "
     "exact "
     "when C(S, size of A) <= n_resamples), phase randomization or circular time shifts."},
    {"groups", MYELIN_PARAM_STRING_LIST, "[]", 0, 0, 0, NULL, NULL,
     "Two-sample permutation test (stats: permutation): each subject's group as subject:group items, e.g. "
     "[sub-01:patients, sub-02:controls, ...] or one string 'sub-01:patients,sub-02:controls,...' (sub- "
     "optional). "
     "Exactly two groups; every subject of a task needs one. p tests summary(A) - summary(B), A the first "
     "group "
     "in sorted order (numbers numerically). Leave-one-out ISC is computed within each group; pairwise "
     "leaves between-group pairs out of the test. Empty: one-sample sign-flip test."},
    {"n_resamples", MYELIN_PARAM_INT, "1000", 1, 1, 1e7, NULL, "resamples",
     "Bootstrap samples, permutations or shifts. Monte Carlo p = (count + 1) / (n + 1)."},
    {"seed", MYELIN_PARAM_INT, "0", 1, 0, 9.2e18, NULL, NULL,
     "Seed of the resampling generator (results do not depend on threads)."},
    {"side", MYELIN_PARAM_ENUM, "right", 0, 0, 0, "right|left|two-sided", NULL,
     "Tail of the test: right counts null >= observed, left null <= observed, two-sided |null| >= "
     "|observed|."},
    {"ci", MYELIN_PARAM_FLOAT, "95", 1, 0, 100, NULL, "%",
     "Bootstrap confidence interval width, emitted as `ci` [2, V]."},
    {"every", MYELIN_PARAM_INT, "1", 1, 1, 1e9, NULL, "TRs",
     "Streaming and reference modes: emit an updated map every this many complete TRs (and at the end)."},
    {"reference", MYELIN_PARAM_INPUT_PATH, "", 0, 0, 0, NULL, NULL,
     "Reference mode: a group time series [T, V] (.npy, or .mpk whose first message has `data`) to "
     "correlate each live subject with, TR by TR (volume `index` selects the row)."},
    {"threads", MYELIN_PARAM_INT, "0", 1, 0, 64, NULL, "threads",
     "Worker threads across voxels (0 = every CPU)."},
    {0}};

static const myelin_port_def isc_inputs[] = {
    {.name = "in",
     .kinds = "run|volume",
     .doc = "one run per subject (batch), or interleaved volumes (streaming)"},
    {0}};
static const myelin_port_def isc_outputs[] = {
    {.name = "map",
     .kinds = "map",
     .doc = "stat isc: data [S, V] or [S(S-1)/2, V]; summary, p, ci when asked"},
    {.name = "isfc", .kinds = "tensor", .doc = "the symmetrized ISFC matrices when isfc: true"},
    {0}};

static const myelin_plugin_desc isc_desc = {
    MYELIN_DESC_HEADER,
    .name = "isc",
    .version = "1.0.0",
    .summary = "inter-subject correlation (BrainIAK semantics): batch, streaming, reference, statistics",
    .doc =
        "Leave-one-out or pairwise ISC per voxel with BrainIAK's NaN rules, Fisher-z or median summary, "
        "bootstrap/permutation/phase-shift/time-shift p-values and optional ISFC. See plugins/isc/README.md.",
    .params = isc_params,
    .inputs = isc_inputs,
    .outputs = isc_outputs,
    .validate = isc_validate,
    .init = isc_init,
    .process = isc_process,
    .flush = isc_flush,
    .fini = isc_fini,
};

MYELIN_PLUGIN(isc_desc)
