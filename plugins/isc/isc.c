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

#include "isc_kernels.h"
#include "myelin/error.h"
#include "myelin/io.h"
#include "myelin/npy.h"
#include "myelin/plugin.h"

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
    return myelin_errorf(why, wn, -1, "groups: '%s' (item %zu) is not subject:group, e.g. sub-01:patients", tok, item);
  *colon = 0;
  char *sub = trim(tok), *grp = trim(colon + 1);
  const char *key = strip_sub(sub);
  if (!*key || !*grp)
    return myelin_errorf(why, wn, -1, "groups: '%s:%s' (item %zu) needs a subject and a group, e.g. sub-01:patients", sub,
                      grp, item);
  size_t k = 0;
  while (k < *nlab && strcmp(labels[k], grp)) k++;
  if (k == *nlab) {
    if (*nlab == 3) return 0; /* already too many: reported once */
    if (!(labels[k] = strdup(grp))) return myelin_errorf(why, wn, -1, "out of memory");
    (*nlab)++;
  }
  ptrdiff_t at = group_map_find(m, key);
  if (at >= 0) {
    if (m->g[at] == k) return 0;
    return myelin_errorf(why, wn, -1, "groups: subject '%s' is in two groups, '%s' and '%s'", sub, labels[m->g[at]], grp);
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
    rc = myelin_errorf(why, wn, -1,
                    "groups: more than two groups ('%s', '%s', '%s'); the two-sample test compares exactly two",
                    labels[0], labels[1], labels[2]);
  if (rc == 0 && nlab == 1)
    rc = myelin_errorf(why, wn, -1,
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
    return s->host->error(s->st, "run from subject '%s': `data` has %" PRId64 " TR(s); correlation needs at least 2",
                          subject, t->shape[0]);
  return 0;
}

static void *grow(void *p, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return p;
  size_t nc = *cap ? *cap * 2 : 4;
  while (nc < need) nc *= 2;
  void *q = realloc(p, nc * elem);
  if (q) *cap = nc;
  return q;
}

/* Builds the common part of an output map. */
static const char *const group_keys[] = {"task", "run", "tr", NULL};
static const char *const subject_keys[] = {"subject", "task", "run", "tr", NULL};

static myelin_builder *map_begin(const myelin_msg *first, const char *const *keys, char **subjects,
                                 size_t nsub, int pairwise) {
  myelin_builder *b = myelin_builder_new("map");
  if (!b) return NULL;
  myelin_build_str(b, "stat", "isc");
  myelin_build_fields(b, first, keys);
  myelin_build_array_begin(b, "subjects");
  for (size_t i = 0; i < nsub; i++) myelin_build_str(b, NULL, subjects[i]);
  myelin_build_array_end(b);
  myelin_build_bool(b, "pairwise", pairwise);
  /* `geometry` is required by the map schema: an empty map when the input
   * had none (nifti_sink then reports it cannot place the map). */
  myelin_obj geo = myelin_msg_get(first, "geometry");
  if (myelin_obj_type_of(geo) == MYELIN_OBJ_MAP) {
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
static int run_stats(isc_state *s, const isc_data *d, const double *iscs, double *observed,
                     double *p, double *ci, size_t *n_used) {
  const size_t S = d->S, T = d->T, V = d->V, n = s->n_resamples;
  isc_rng rng;
  isc_rng_seed(&rng, s->seed);
  int rc = ISC_OK;
  *n_used = n;
  if (s->stats == STATS_BOOTSTRAP) {
    uint32_t *smp = malloc(n * S * sizeof *smp);
    if (!smp) return ISC_ENOMEM;
    for (size_t i = 0; i < n * S; i++) smp[i] = isc_rng_below(&rng, (uint32_t)S);
    rc = isc_bootstrap(iscs, S, V, s->pairwise, s->summary, smp, n, s->ci, s->side, s->threads,
                       observed, ci, p, NULL);
    free(smp);
  } else if (s->stats == STATS_PERMUTATION) {
    int exact = S <= 24 && (double)n >= ldexp(1.0, (int)S);
    int8_t *signs = exact ? isc_all_sign_flips(S) : malloc(n * S);
    if (!signs) return ISC_ENOMEM;
    if (exact) {
      *n_used = (size_t)1 << S;
    } else {
      for (size_t i = 0; i < n * S; i++) signs[i] = (isc_rng_next(&rng) >> 63) ? 1 : -1;
    }
    rc = isc_permutation(iscs, S, V, s->pairwise, s->summary, signs, *n_used, exact, s->side,
                         s->threads, observed, p, NULL);
    free(signs);
  } else if (s->stats == STATS_TIMESHIFT) {
    uint32_t *sh = malloc(n * S * sizeof *sh);
    if (!sh) return ISC_ENOMEM;
    for (size_t i = 0; i < n * S; i++) sh[i] = isc_rng_below(&rng, (uint32_t)T);
    rc = isc_timeshift(d, s->pairwise, s->summary, s->nan, sh, n, s->side, s->threads, observed, p,
                       NULL);
    free(sh);
  } else if (s->stats == STATS_PHASESHIFT) {
    size_t F = isc_phase_count(T);
    double *ph = malloc((n * S * F + 1) * sizeof *ph);
    if (!ph) return ISC_ENOMEM;
    for (size_t i = 0; i < n * S * F; i++) ph[i] = isc_rng_unit(&rng) * 2.0 * M_PI;
    rc = isc_phaseshift(d, s->pairwise, s->summary, s->nan, ph, n, s->side, s->threads, observed, p,
                        NULL);
    free(ph);
  }
  return rc;
}

static const char *stats_name(int st) {
  switch (st) {
  case STATS_BOOTSTRAP: return "bootstrap";
  case STATS_PERMUTATION: return "permutation";
  case STATS_PHASESHIFT: return "phaseshift";
  case STATS_TIMESHIFT: return "timeshift";
  default: return "none";
  }
}

/* Each subject's group (0: A, 1: B) for the two-sample test, in row order;
 * an error naming the first subject without one, or a task whose subjects
 * do not make two usable groups. */
static int assign_groups(isc_state *s, const group *g, uint8_t *gr) {
  const group_map *m = &s->gm;
  size_t cnt[2] = {0, 0};
  for (size_t i = 0; i < g->n; i++) {
    ptrdiff_t k = group_map_find(m, g->subjects[i]);
    if (k < 0)
      return s->host->error(s->st,
                            "groups: subject '%s' (task '%s') has no group; every subject needs one, e.g. "
                            "%s:%s",
                            g->subjects[i], g->task, g->subjects[i], m->label[0]);
    gr[i] = m->g[k];
    cnt[gr[i]]++;
  }
  for (int k = 0; k < 2; k++)
    if (cnt[k] == 0)
      return s->host->error(s->st,
                            "groups: task '%s' has no subject of group '%s' (all %zu are in '%s'); the "
                            "two-sample test needs both",
                            g->task, m->label[k], g->n, m->label[!k]);
  for (int k = 0; k < 2; k++) {
    if (s->pairwise && cnt[k] < 2)
      return s->host->error(s->st,
                            "groups: group '%s' has one subject in task '%s'; the pairwise two-sample test "
                            "compares within-group pairs, so each group needs at least 2",
                            m->label[k], g->task);
    if (!s->pairwise && cnt[k] < 3)
      return s->host->error(s->st,
                            "groups: group '%s' has %zu subjects in task '%s'; leave-one-out ISC within a "
                            "group needs at least 3 (or use pairwise: true)",
                            m->label[k], cnt[k], g->task);
  }
  if (m->n > g->n)
    s->host->log(s->st, MYELIN_LOG_WARN, "groups: %zu listed subject(s) have no run in task '%s'; left out",
                 m->n - g->n, g->task);
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
static void build_group_fields(isc_state *s, myelin_builder *b, const group *g, const uint8_t *gr,
                               const double *iscs, const double *diff, size_t V) {
  myelin_build_array_begin(b, "group_labels");
  myelin_build_str(b, NULL, s->gm.label[0]);
  myelin_build_str(b, NULL, s->gm.label[1]);
  myelin_build_array_end(b);
  myelin_build_array_begin(b, "subject_groups");
  for (size_t i = 0; i < g->n; i++)
    myelin_build_str(b, NULL, s->gm.label[gr[i]]);
  myelin_build_array_end(b);
  int64_t vshape[1] = {(int64_t)V}, gshape[2] = {2, (int64_t)V};
  myelin_build_tensor_copy(b, "difference", MYELIN_F8, 1, vshape, diff);
  double *gs = myelin_build_tensor(b, "group_summary", MYELIN_F8, 2, gshape);
  if (gs && isc_group_summaries(iscs, g->n, V, s->pairwise, s->summary, gr, gs) != ISC_OK)
    for (size_t i = 0; i < 2 * V; i++)
      gs[i] = NAN;
}

/* ---- batch: one group ---------------------------------------------------------- */

static int emit_isfc(isc_state *s, group *g, const isc_data *d) {
  const size_t V = d->V, rows = isc_rows(d->S, s->pairwise);
  if (V > s->isfc_max)
    return s->host->error(s->st,
                          "isfc: task '%s' has %zu voxels, a %zu x %zu matrix per subject; reduce to "
                          "parcels or raise isfc_max_voxels (%zu)",
                          g->task, V, V, V, s->isfc_max);
  size_t out_rows = s->summary != ISC_SUMMARY_NONE ? 1 : rows;
  if ((double)out_rows * (double)V * (double)V * 8.0 > (double)MYELIN_DEFAULT_MAX_MESSAGE)
    return s->host->error(s->st,
                          "isfc: task '%s' gives %zu matrices of %zu x %zu float64 (%.0f MB), over the %zu MB "
                          "message limit; set summary: mean or median, or use parcels",
                          g->task, out_rows, V, V, (double)out_rows * (double)V * (double)V * 8e-6,
                          (size_t)(MYELIN_DEFAULT_MAX_MESSAGE >> 20));
  double *m = malloc(rows * V * V * sizeof *m);
  double *sm = s->summary != ISC_SUMMARY_NONE ? malloc(V * V * sizeof *sm) : NULL;
  if (!m || (s->summary != ISC_SUMMARY_NONE && !sm)) {
    free(m);
    return s->host->error(s->st, "isfc: out of memory for %zu x %zu x %zu matrices", rows, V, V);
  }
  int rc = isc_isfc(d, s->pairwise, s->nan, m);
  if (rc == 0) {
    myelin_builder *b = myelin_builder_new("tensor");
    myelin_build_str(b, "name", "isfc");
    static const char *const keys[] = {"task", "run", NULL};
    myelin_build_fields(b, g->msgs[0], keys);
    myelin_build_array_begin(b, "subjects");
    for (size_t i = 0; i < g->n; i++) myelin_build_str(b, NULL, g->subjects[i]);
    myelin_build_array_end(b);
    myelin_build_str(b, "summary", summary_name(s->summary));
    if (sm) {
      isc_summarize(m, rows, V * V, s->summary, sm);
      int64_t shp[2] = {(int64_t)V, (int64_t)V};
      myelin_build_tensor_copy(b, "data", MYELIN_F8, 2, shp, sm);
    } else {
      int64_t shp[3] = {(int64_t)rows, (int64_t)V, (int64_t)V};
      myelin_build_tensor_copy(b, "data", MYELIN_F8, 3, shp, m);
    }
    rc = emit_built(s, 1, b);
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

static int compute_group(isc_state *s, group *g) {
  group_sort(g);
  const size_t S = g->n;
  if (S < 2)
    return s->host->error(s->st, "task '%s'%s%s: ISC needs at least 2 subjects, got %zu", g->task,
                          g->run[0] ? " run " : "", g->run, S);
  if (s->stats == STATS_BOOTSTRAP && S < 3)
    return s->host->error(s->st, "task '%s'%s%s: stats: bootstrap " BOOTSTRAP_TWO_SUBJECTS, g->task,
                          g->run[0] ? " run " : "", g->run);
  myelin_tensor t0;
  myelin_msg_tensor(g->msgs[0], "data", &t0);
  const size_t T = (size_t)t0.shape[0], V = (size_t)t0.shape[1];
  const void **xs = malloc(S * sizeof *xs);
  if (!xs) return s->host->error(s->st, "out of memory");
  for (size_t i = 0; i < S; i++) {
    myelin_tensor t;
    myelin_msg_tensor(g->msgs[i], "data", &t);
    xs[i] = t.data;
  }
  isc_data d = {.x = xs, .f64 = t0.dtype == MYELIN_F8, .S = S, .T = T, .V = V};
  const size_t rows = isc_rows(S, s->pairwise);
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
  if (two_sample && (rc = assign_groups(s, g, gr)) != 0) goto done;
  /* two groups, leave-one-out: each subject against its own group's others */
  if (s->pairwise)
    rc = isc_pairwise(&d, s->nan, s->threads, iscs);
  else
    rc =
        two_sample ? isc_loo_groups(&d, gr, s->nan, s->threads, iscs) : isc_loo(&d, s->nan, s->threads, iscs);
  if (rc) {
    rc = s->host->error(s->st, "ISC kernel failed for task '%s' (code %d)", g->task, rc);
    goto done;
  }
  size_t n_used = 0;
  if (s->summary != ISC_SUMMARY_NONE) isc_summarize(iscs, rows, V, s->summary, sum);
  if (s->stats != STATS_NONE) {
    rc = two_sample ? run_group_test(s, &d, gr, iscs, obs, p, &n_used)
                    : run_stats(s, &d, iscs, obs, p, ci, &n_used);
    if (rc) {
      rc = s->host->error(s->st, "%s test failed for task '%s' (code %d)", stats_name(s->stats), g->task, rc);
      goto done;
    }
  }
  myelin_builder *b = map_begin(g->msgs[0], group_keys, g->subjects, S, s->pairwise);
  if (!b) {
    rc = s->host->error(s->st, "out of memory");
    goto done;
  }
  int64_t shp[2] = {(int64_t)rows, (int64_t)V};
  myelin_build_tensor_copy(b, "data", MYELIN_F8, 2, shp, iscs);
  if (s->pairwise && S > 2) {
    int64_t pshape[2] = {(int64_t)rows, 2};
    uint32_t *pairs = myelin_build_tensor(b, "pairs", MYELIN_U4, 2, pshape);
    if (pairs)
      for (size_t i = 0, q = 0; i < S; i++)
        for (size_t j = i + 1; j < S; j++, q++) pairs[2 * q] = (uint32_t)i, pairs[2 * q + 1] = (uint32_t)j;
  }
  myelin_build_str(b, "summary_statistic", summary_name(s->summary));
  int64_t vshape[1] = {(int64_t)V};
  if (s->summary != ISC_SUMMARY_NONE) myelin_build_tensor_copy(b, "summary", MYELIN_F8, 1, vshape, sum);
  myelin_build_str(b, "stats", stats_name(s->stats));
  if (s->stats != STATS_NONE) {
    myelin_build_tensor_copy(b, "p", MYELIN_F8, 1, vshape, p);
    myelin_build_uint(b, "n_resamples", n_used);
    myelin_build_str(b, "side", s->side == ISC_SIDE_LEFT ? "left" : s->side == ISC_SIDE_TWO ? "two-sided" : "right");
    if (s->stats == STATS_PERMUTATION) myelin_build_str(b, "test", two_sample ? "two-sample" : "one-sample");
    if (two_sample) build_group_fields(s, b, g, gr, iscs, obs, V);
    if (s->stats == STATS_BOOTSTRAP) {
      int64_t cshape[2] = {2, (int64_t)V};
      myelin_build_tensor_copy(b, "ci", MYELIN_F8, 2, cshape, ci);
      myelin_build_float(b, "ci_percent", s->ci);
    }
  }
  rc = emit_built(s, 0, b);
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
        return s->host->error(s->st, "task '%s'%s%s: subject '%s' sent two runs", task,
                              run[0] ? " run " : "", run, subject);
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
  if (s->subjects && g->n == s->subjects) {
    rc = compute_group(s, g);
    group_clear(g);
  }
  return rc;
}

/* ---- streaming ------------------------------------------------------------------- */

static void sgroup_free(sgroup *g) {
  for (size_t i = 0; i < g->nsub; i++) free(g->subjects[i]);
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
  for (size_t i = 0; i < S; i++) order[i] = i;
  for (size_t i = 1; i < S; i++)
    for (size_t j = i; j > 0 && strcmp(g->subjects[order[j - 1]], g->subjects[order[j]]) > 0; j--) {
      size_t tmp = order[j];
      order[j] = order[j - 1];
      order[j - 1] = tmp;
    }
  for (size_t i = 0; i < S; i++) names[i] = g->subjects[order[i]];
  if (g->st.pairwise) {
    for (size_t a = 0, r = 0; a < S; a++)
      for (size_t c = a + 1; c < S; c++, r++)
        memcpy(out + r * V, raw + isc_pair_index(order[a], order[c], S) * V, V * sizeof *out);
  } else {
    for (size_t r = 0; r < rows; r++) memcpy(out + r * V, raw + (rows == 1 ? 0 : order[r]) * V, V * sizeof *out);
  }
  myelin_builder *b = map_begin(g->first, group_keys, names, g->nsub, g->st.pairwise);
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

static int process_volume_group(isc_state *s, myelin_msg *m, const myelin_tensor *t,
                                const char *subject, const char *task, int64_t index) {
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
    return s->host->error(s->st, "task '%s': subject '%s' sends %zu voxels, expected %zu", task, subject, V, g->V);
  size_t si = 0;
  while (si < g->nsub && strcmp(g->subjects[si], subject)) si++;
  if (si == g->nsub) {
    if (g->nsub == g->S)
      return s->host->error(s->st, "task '%s': subject '%s' is subject number %zu but `subjects` is %zu",
                            task, subject, g->nsub + 1, g->S);
    g->subjects[g->nsub] = strdup(subject);
    if (!g->subjects[g->nsub]) return s->host->error(s->st, "out of memory");
    g->nsub++;
  }
  size_t pi = 0;
  while (pi < g->npend && g->pend[pi].index != index) pi++;
  if (pi == g->npend) {
    if ((g->npend + 1) * g->S * V * sizeof(double) > MAX_PENDING_BYTES)
      return s->host->error(s->st, "task '%s': %zu TRs wait for missing subjects (over 1 GiB); are all %zu "
                            "subjects streaming?", task, g->npend, g->S);
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
  for (size_t i = 0; i < g->S; i++) vol[i] = p->data + i * V;
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
    rc = s->host->error(s->st, "reference %s: need a <f4 or <f8 [T, V] array with T >= 2, got %s with %d dimension(s)",
                        path, myelin_dtype_name(t.dtype), t.ndim);
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
  myelin_builder *b = map_begin(r->first, subject_keys, &r->subject, 1, 0);
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
      x[v] = t->dtype == MYELIN_F8 ? ((const double *)t->data)[k * V + v] : ((const float *)t->data)[k * V + v];
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
    return s->host->error(s->st, "volume message from subject '%s' has no integer `index` (TR number)", subject);
  if (s->ref) return process_reference(s, m, &t, subject, is_run, index);
  return process_volume_group(s, m, &t, subject, task, index);
}

static int isc_flush(void *state) {
  isc_state *s = state;
  int rc = 0;
  for (size_t i = 0; i < s->ngroups && rc == 0; i++) {
    group *g = &s->groups[i];
    if (g->n == 0) continue;
    rc = compute_group(s, g);
    group_clear(g);
  }
  for (size_t i = 0; i < s->nsgroups && rc == 0; i++) {
    sgroup *g = &s->sgroups[i];
    if (g->npend)
      s->host->log(s->st, MYELIN_LOG_WARN, "task '%s': %zu TR(s) never completed by all %zu subjects were dropped",
                   g->task, g->npend, g->S);
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
  for (size_t i = 0; i < s->ngroups; i++) group_free(&s->groups[i]);
  free(s->groups);
  for (size_t i = 0; i < s->nsgroups; i++) sgroup_free(&s->sgroups[i]);
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
  if (!(ci > 0 && ci < 100)) rc = myelin_validate_error(ctx, "ci", "ci must be between 0 and 100 (exclusive)");
  const char *ref = myelin_param_str(p, "reference");
  if (ref && *ref && (stats != STATS_NONE || myelin_param_bool(p, "isfc") || myelin_param_bool(p, "pairwise")))
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
    rc = myelin_validate_error(ctx, "subjects", "subjects: ISC needs at least 2 subjects (0 = wait for end of stream)");
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
    {.name = "in", .kinds = "run|volume", .doc = "one run per subject (batch), or interleaved volumes (streaming)"},
    {0}};
static const myelin_port_def isc_outputs[] = {
    {.name = "map", .kinds = "map", .doc = "stat isc: data [S, V] or [S(S-1)/2, V]; summary, p, ci when asked"},
    {.name = "isfc", .kinds = "tensor", .doc = "the symmetrized ISFC matrices when isfc: true"},
    {0}};

static const myelin_plugin_desc isc_desc = {
    MYELIN_DESC_HEADER,
    .name = "isc",
    .version = "1.0.0",
    .summary = "inter-subject correlation (BrainIAK semantics): batch, streaming, reference, statistics",
    .doc = "Leave-one-out or pairwise ISC per voxel with BrainIAK's NaN rules, Fisher-z or median summary, "
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
