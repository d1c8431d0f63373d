/*
 * info_content.c — the information content stage (Weninger et al. 2021).
 *
 * Input `run` messages carry parcel time series [T, N]; one run per subject
 * is the reference (task == reference_task, default "rest"), or a .npy file
 * given by `reference` serves every subject. From the reference, per parcel:
 * the demeaned series, clip limits [max(min, -k sd), min(max, k sd)], the
 * clipped series sorted, and a Silverman bandwidth. Every run (the reference
 * included) is then demeaned, clipped with those limits, and each value
 * scored as surprisal -ln p(x) under the parcel's Gaussian KDE; a state's
 * information content is the sum over parcels.
 *
 * With a `connectome` (a tensor [N, N]) the stage also reports the control
 * energy needed to reach every state, and the same averaged over connectomes
 * relabelled by seeded random permutations (`null`). The connectome is
 * decomposed once (ic_kernels.c) and each run's energies cost one GEMM; a
 * relabelled connectome only permutes the eigenvector rows, so the null needs
 * no further decomposition.
 *
 * Ordering. Runs are held (referenced, not copied) until their subject's
 * reference run has arrived. validate() requires the `connectome` input to
 * be connected unless `energy: none`, so with energy on, runs are also held
 * until a connectome arrives; if the connectome stream ends empty, the held
 * runs are emitted at flush without energies. A newer connectome replaces
 * the older one for runs processed after it.
 *
 * Outputs: `map` per run {stat: "info", data [T], regional [N], per_parcel
 * [T, N] (per_parcel: true), energy_<model> [T], energy_null_<model> [T]
 * (model weninger or nctpy: their units differ, so the names do), energy_model,
 * energy_c, energy_horizon, units, context, tr, geometry, labels}; `controllability` per connectome
 * (controllability: true) {stat: "controllability", data [N] average (continuous, over the horizon),
 * average_discrete [N], modal [N] (symmetric connectomes)}.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <myelin/io.h>
#include <myelin/npy.h>
#include <myelin/plugin.h>

#include "../common/ranks.h"

#include "ic_kernels.h"

enum { PORT_RUN = 0, PORT_CONNECTOME = 1 };
enum { OUT_MAP = 0, OUT_CONTROL = 1 };
enum { ENERGY_NONE, ENERGY_WENINGER, ENERGY_NCTPY };
enum { IC_MAX_THREADS = 64 };

/* A subject's reference: per parcel limits, bandwidth and sorted values. */
typedef struct ic_ref {
  char *subject; /* NULL for a `reference` file (every subject) */
  int n;         /* parcels */
  size_t t;      /* reference TRs */
  double *lo, *hi, *h;
  double *sorted; /* n rows of t */
} ic_ref;

/* The decomposed connectome. */
typedef struct ic_conn {
  int n;
  int sym;       /* symmetric path: V, q, w */
  double *V;     /* n*n eigenvectors */
  double *q;     /* 3n per-mode quadratic forms */
  double *w;     /* eigenvalues of the (prepared) connectome */
  double scale;  /* A_norm = A / scale - I */
  double *W;     /* general path: Gramian */
  double *eAT;   /* general path: e^{A_norm T} */
} ic_conn;

typedef struct ic_state {
  const myelin_host *host;
  myelin_stage *st;
  /* params */
  char ref_task[128];
  double bandwidth; /* 0 = silverman */
  double clip_sd, c, horizon, rho;
  int bits, demean, energy, S_identity, x0_prev, steps, null, per_parcel, control, threads;
  unsigned long long seed;
  /* references */
  ic_ref *refs;
  size_t n_refs;
  ic_ref *file_ref;
  /* connectome */
  ic_conn conn;
  int have_conn;
  /* held runs */
  myelin_msg **held;
  size_t n_held, cap_held;
} ic_state;

/* ---- small helpers --------------------------------------------------------- */

static void ref_free(ic_ref *r) {
  if (!r) return;
  free(r->subject);
  free(r->lo);
  free(r->hi);
  free(r->h);
  free(r->sorted);
}

static void conn_free(ic_conn *c) {
  free(c->V);
  free(c->q);
  free(c->w);
  free(c->W);
  free(c->eAT);
  memset(c, 0, sizeof *c);
}

/* The run's subject as text (a string or an integer; "" when absent). */
static void msg_subject(const myelin_msg *m, char *buf, size_t n) {
  int64_t v;
  if (myelin_msg_str(m, "subject", buf, n) == 0) return;
  if (myelin_msg_int(m, "subject", &v) == 0) snprintf(buf, n, "%lld", (long long)v);
  else buf[0] = 0;
}

/* A [T, N] (or [N, N]) float tensor as doubles, row-major. */
static double *tensor_doubles(const myelin_tensor *t) {
  double *x = malloc((t->count ? t->count : 1) * sizeof *x);
  if (!x) return NULL;
  if (t->dtype == MYELIN_F4) {
    const float *f = t->data;
    for (size_t i = 0; i < t->count; i++) x[i] = f[i];
  } else {
    memcpy(x, t->data, t->count * sizeof *x);
  }
  return x;
}

/* Reads the 2-D float `data` tensor of a message; errors name the field. */
static int read_matrix(ic_state *s, const myelin_msg *m, const char *what, myelin_tensor *t) {
  int rc = myelin_msg_tensor(m, "data", t);
  if (rc != 0)
    return s->host->error(s->st, "%s message: field 'data' is missing or not a tensor (%s)", what,
                          myelin_strerror(rc));
  if (t->ndim != 2 || (t->dtype != MYELIN_F4 && t->dtype != MYELIN_F8))
    return s->host->error(s->st, "%s message: field 'data' must be a 2-D <f4 or <f8 tensor, got %s with %d dims",
                          what, myelin_dtype_name(t->dtype), t->ndim);
  if (t->shape[0] < 1 || t->shape[1] < 1)
    return s->host->error(s->st, "%s message: field 'data' is empty (%lld x %lld)", what,
                          (long long)t->shape[0], (long long)t->shape[1]);
  return 0;
}

/* Parcel-major copy P[n][t] of a time-major X[t][n]. */
static void transpose(const double *X, size_t t, int n, double *P) {
  for (size_t i = 0; i < t; i++)
    for (int k = 0; k < n; k++) P[(size_t)k * t + i] = X[i * n + k];
}

static void demean_rows(double *P, int n, size_t t) {
  for (int k = 0; k < n; k++) {
    double *x = P + (size_t)k * t, m = ic_mean(x, t);
    for (size_t i = 0; i < t; i++) x[i] -= m;
  }
}

/* ---- references ------------------------------------------------------------ */

/* Builds a reference from a time-major X[t, n]; label names it in errors. */
static int ref_build(ic_state *s, const double *X, size_t t, int n, const char *label, ic_ref *r) {
  memset(r, 0, sizeof *r);
  if (t < 2) return s->host->error(s->st, "%s has %zu TRs: a density needs at least 2", label, t);
  r->n = n;
  r->t = t;
  r->lo = malloc(n * sizeof *r->lo);
  r->hi = malloc(n * sizeof *r->hi);
  r->h = malloc(n * sizeof *r->h);
  r->sorted = malloc((size_t)n * t * sizeof *r->sorted);
  if (!r->lo || !r->hi || !r->h || !r->sorted) return s->host->error(s->st, "out of memory");
  transpose(X, t, n, r->sorted);
  if (s->demean) demean_rows(r->sorted, n, t);
  for (int k = 0; k < n; k++) {
    double *x = r->sorted + (size_t)k * t;
    for (size_t i = 0; i < t; i++)
      if (!isfinite(x[i]))
        return s->host->error(s->st, "%s: parcel %d has a non-finite value at TR %zu", label, k, i);
    if (s->clip_sd > 0) {
      ic_clip_limits(x, t, s->clip_sd, &r->lo[k], &r->hi[k]);
      ic_clip(x, t, r->lo[k], r->hi[k]);
    } else {
      r->lo[k] = -INFINITY;
      r->hi[k] = INFINITY;
    }
    r->h[k] = s->bandwidth > 0 ? s->bandwidth : ic_silverman(x, t);
    if (!(r->h[k] > 0))
      return s->host->error(s->st,
                            "%s: parcel %d is constant (sd 0), so its Silverman bandwidth is 0; "
                            "set a numeric `bandwidth` or drop the parcel",
                            label, k);
    ic_sort(x, t);
  }
  return 0;
}

static const ic_ref *ref_find(const ic_state *s, const char *subject) {
  if (s->file_ref) return s->file_ref;
  for (size_t i = 0; i < s->n_refs; i++)
    if (strcmp(s->refs[i].subject, subject) == 0) return &s->refs[i];
  return NULL;
}

static int ref_add_run(ic_state *s, const myelin_msg *m, const char *subject) {
  myelin_tensor t;
  int rc = read_matrix(s, m, "reference run", &t);
  if (rc) return rc;
  ic_ref *grown = realloc(s->refs, (s->n_refs + 1) * sizeof *grown);
  if (!grown) return s->host->error(s->st, "out of memory");
  s->refs = grown;
  double *X = tensor_doubles(&t);
  if (!X) return s->host->error(s->st, "out of memory");
  char label[320];
  snprintf(label, sizeof label, "reference run (subject '%s', task '%s')", subject, s->ref_task);
  ic_ref *r = &s->refs[s->n_refs];
  rc = ref_build(s, X, (size_t)t.shape[0], (int)t.shape[1], label, r);
  free(X);
  if (rc) {
    ref_free(r);
    return rc;
  }
  r->subject = strdup(subject);
  if (!r->subject) {
    ref_free(r);
    return s->host->error(s->st, "out of memory");
  }
  s->n_refs++;
  return 0;
}

/* ---- connectome --------------------------------------------------------- */

static int conn_symmetric(ic_state *s, ic_conn *c, double *A) {
  int n = c->n;
  c->V = malloc((size_t)n * n * sizeof *c->V);
  c->w = malloc(n * sizeof *c->w);
  c->q = malloc(3 * (size_t)n * sizeof *c->q);
  double *lam = malloc(n * sizeof *lam);
  if (!c->V || !c->w || !c->q || !lam) {
    free(lam);
    return s->host->error(s->st, "out of memory");
  }
  int info = ic_eigh(n, A, c->w, c->V);
  if (info != 0) {
    free(lam);
    return s->host->error(s->st, "connectome: eigendecomposition failed (LAPACK dsyevr info %d)", info);
  }
  c->scale = s->energy == ENERGY_WENINGER ? ic_scale_weninger(c->w, n, s->c)
                                          : ic_scale_nctpy(c->w, n, s->c);
  if (c->scale == 0) {
    free(lam);
    return s->host->error(s->st, "connectome: all eigenvalues are 0 and c is 0; cannot normalise");
  }
  for (int k = 0; k < n; k++) lam[k] = c->w[k] / c->scale - 1.0;
  if (s->energy == ENERGY_WENINGER)
    ic_quad_weninger(lam, n, s->horizon, s->steps, c->q);
  else if (s->S_identity)
    ic_quad_optimal(lam, n, s->horizon, s->rho, 1.0, c->q);
  else
    ic_quad_min_energy(lam, n, s->horizon, c->q);
  free(lam);
  return 0;
}

static int conn_general(ic_state *s, ic_conn *c, double *A) {
  int n = c->n;
  if (s->S_identity)
    return s->host->error(s->st, "connectome is not symmetric: optimal control with S: identity is only "
                                 "implemented for symmetric connectomes (use S: zero)");
  double l = ic_spectral_radius(n, A);
  if (l < 0) return s->host->error(s->st, "connectome: eigenvalue computation failed (dgeev)");
  c->scale = s->c + l;
  if (c->scale == 0) return s->host->error(s->st, "connectome: spectral radius and c are both 0");
  c->W = malloc((size_t)n * n * sizeof *c->W);
  c->eAT = malloc((size_t)n * n * sizeof *c->eAT);
  double *I = calloc((size_t)n * n, sizeof *I);
  if (!c->W || !c->eAT || !I) {
    free(I);
    return s->host->error(s->st, "out of memory");
  }
  for (int i = 0; i < n; i++) {
    I[i * n + i] = 1.0;
    for (int j = 0; j < n; j++) A[i * n + j] = A[i * n + j] / c->scale - (i == j);
  }
  int rc = ic_gramian_vanloan(n, A, I, n, s->horizon, c->W, c->eAT);
  free(I);
  if (rc != 0) return s->host->error(s->st, "connectome: matrix exponential failed (%d)", rc);
  return 0;
}

/* The run's geometry (the map schema requires one; {} when the input had none). */
static void build_geometry(myelin_builder *b, const myelin_msg *m) {
  myelin_obj g = myelin_msg_get(m, "geometry");
  if (myelin_obj_type_of(g) == MYELIN_OBJ_MAP) {
    myelin_build_obj(b, "geometry", g);
  } else {
    myelin_build_map_begin(b, "geometry");
    myelin_build_map_end(b);
  }
}

static int emit_controllability(ic_state *s, const myelin_msg *m) {
  int n = s->conn.n;
  double *ave = malloc(n * sizeof *ave), *aved = malloc(n * sizeof *aved),
         *modal = malloc(n * sizeof *modal), *lam = malloc(n * sizeof *lam);
  int rc = 0;
  if (!ave || !aved || !modal || !lam) {
    rc = s->host->error(s->st, "out of memory");
    goto out;
  }
  if (s->conn.sym) {
    for (int k = 0; k < n; k++) lam[k] = s->conn.w[k] / s->conn.scale - 1.0;
    ic_ave_control_cont(n, s->conn.V, lam, s->horizon, ave);
    for (int k = 0; k < n; k++) lam[k] = s->conn.w[k] / s->conn.scale;
    ic_ave_control_disc(n, s->conn.V, lam, aved);
    ic_modal_control(n, s->conn.V, lam, modal);
  } else {
    for (int i = 0; i < n; i++) ave[i] = s->conn.W[i * n + i];
  }
  myelin_builder *b = myelin_builder_new("map");
  myelin_build_str(b, "stat", "controllability");
  myelin_build_context(b, m);
  build_geometry(b, m);
  int64_t shape[1] = {n};
  myelin_build_tensor_copy(b, "data", MYELIN_F8, 1, shape, ave);
  if (s->conn.sym) {
    myelin_build_tensor_copy(b, "average_discrete", MYELIN_F8, 1, shape, aved);
    myelin_build_tensor_copy(b, "modal", MYELIN_F8, 1, shape, modal);
  }
  myelin_build_float(b, "horizon", s->horizon);
  myelin_msg *o = myelin_builder_finish(b);
  if (!o) {
    rc = s->host->error(s->st, "could not build the controllability message");
    goto out;
  }
  rc = s->host->emit(s->st, OUT_CONTROL, o);
out:
  free(ave);
  free(aved);
  free(modal);
  free(lam);
  return rc;
}

static int conn_set(ic_state *s, const myelin_msg *m) {
  myelin_tensor t;
  int rc = read_matrix(s, m, "connectome", &t);
  if (rc) return rc;
  if (t.shape[0] != t.shape[1])
    return s->host->error(s->st, "connectome message: field 'data' must be square, got [%lld, %lld]",
                          (long long)t.shape[0], (long long)t.shape[1]);
  double *A = tensor_doubles(&t);
  if (!A) return s->host->error(s->st, "out of memory");
  int n = (int)t.shape[0];
  for (size_t i = 0; i < t.count; i++)
    if (!isfinite(A[i])) {
      free(A);
      return s->host->error(s->st, "connectome message: entry [%zu, %zu] of 'data' is not finite",
                            i / (size_t)n, i % (size_t)n);
    }
  conn_free(&s->conn);
  s->have_conn = 0;
  s->conn.n = n;
  if (s->energy == ENERGY_WENINGER && ic_prepare_weninger(n, A) != 0) {
    free(A);
    return s->host->error(s->st, "connectome message: all off-diagonal entries are 0");
  }
  s->conn.sym = ic_is_symmetric(n, A, 1e-12);
  rc = s->conn.sym ? conn_symmetric(s, &s->conn, A) : conn_general(s, &s->conn, A);
  free(A);
  if (rc) return rc;
  s->have_conn = 1;
  s->host->log(s->st, MYELIN_LOG_INFO, "connectome %d x %d (%s), A_norm = A / %.6g - I", n, n,
               s->conn.sym ? "symmetric" : "directed", s->conn.scale);
  if (s->control) return emit_controllability(s, m);
  return 0;
}

/* Energies of the states X[t, n] on the connectome relabelled by perm
 * (NULL = as given). */
static int energies(ic_state *s, const double *X, size_t t, const int *perm, double *out,
                    double *work) {
  const ic_conn *c = &s->conn;
  int n = c->n;
  size_t nn = (size_t)n * n;
  if (c->sym) {
    const double *V = c->V;
    double *Vp = NULL;
    if (perm) {
      if (!(Vp = malloc(nn * sizeof *Vp))) return s->host->error(s->st, "out of memory");
      ic_permute_rows(n, c->V, perm, Vp);
      V = Vp;
    }
    ic_energy_states(n, V, c->q, X, t, s->x0_prev, work, out);
    free(Vp);
    return 0;
  }
  double *W = malloc(2 * nn * sizeof *W);
  if (!W) return s->host->error(s->st, "out of memory");
  double *E = W + nn;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      int pi = perm ? perm[i] : i, pj = perm ? perm[j] : j;
      W[i * n + j] = c->W[(size_t)pi * n + pj];
      E[i * n + j] = c->eAT[(size_t)pi * n + pj];
    }
  int info = ic_energy_general(n, W, E, X, t, s->x0_prev, work, out);
  free(W);
  if (info != 0)
    return s->host->error(s->st, "connectome: the controllability Gramian is not positive definite "
                                 "(dpotrf info %d); the horizon may be too short",
                          info);
  return 0;
}

/* ---- one run ------------------------------------------------------------- */

typedef struct run_out {
  double *pp;  /* per parcel, time-major [t, n] */
  double *state, *regional, *energy, *null;
} run_out;

/* Parcels [k0, k1) of a run: demean, clip, surprisal into S (parcel-major).
 * Workers touch disjoint parcel rows only. */
typedef struct kde_job {
  const ic_ref *r;
  double *P, *S;
  size_t t;
  int k0, k1, demean, failed;
} kde_job;

static void *kde_worker(void *arg) {
  kde_job *j = arg;
  double *work = malloc((j->r->t ? j->r->t : 1) * sizeof *work);
  if (!work) {
    j->failed = 1;
    return NULL;
  }
  for (int k = j->k0; k < j->k1; k++) {
    double *x = j->P + (size_t)k * j->t;
    if (j->demean) {
      double m = ic_mean(x, j->t);
      for (size_t i = 0; i < j->t; i++) x[i] -= m;
    }
    ic_clip(x, j->t, j->r->lo[k], j->r->hi[k]);
    ic_kde_surprisal(j->r->sorted + (size_t)k * j->r->t, j->r->t, j->r->h[k], x, j->t,
                     j->S + (size_t)k * j->t, work);
  }
  free(work);
  return NULL;
}

/* Runs the KDE over all parcels on s->threads threads (the stage thread
 * takes the first share). Returns 0 or -1 (memory / thread creation). */
static int kde_parallel(ic_state *s, const ic_ref *r, double *P, double *S, size_t t, int n) {
  int nt = s->threads < n ? s->threads : n;
  if (nt < 1) nt = 1;
  kde_job jobs[IC_MAX_THREADS];
  pthread_t tid[IC_MAX_THREADS];
  int started[IC_MAX_THREADS] = {0}, failed = 0;
  for (int i = 0; i < nt; i++) {
    jobs[i] = (kde_job){r, P, S, t, (int)((long long)n * i / nt), (int)((long long)n * (i + 1) / nt), s->demean, 0};
    if (i > 0) started[i] = pthread_create(&tid[i], NULL, kde_worker, &jobs[i]) == 0;
  }
  for (int i = 1; i < nt; i++)
    if (!started[i]) kde_worker(&jobs[i]); /* could not start: do it here */
  kde_worker(&jobs[0]);
  for (int i = 0; i < nt; i++) {
    if (i > 0 && started[i]) pthread_join(tid[i], NULL);
    failed |= jobs[i].failed;
  }
  return failed ? -1 : 0;
}

static int score_run(ic_state *s, const ic_ref *r, double *P, size_t t, int n, double *X,
                     run_out *o) {
  size_t tn = t * (size_t)n;
  double *S = malloc((tn ? tn : 1) * sizeof *S);
  if (!S || kde_parallel(s, r, P, S, t, n) != 0) {
    free(S);
    return s->host->error(s->st, "out of memory");
  }
  double unit = s->bits ? 1.0 / M_LN2 : 1.0;
  for (int k = 0; k < n; k++) {
    const double *x = P + (size_t)k * t, *col = S + (size_t)k * t;
    double sum = 0;
    for (size_t i = 0; i < t; i++) {
      double v = col[i] * unit;
      o->pp[i * n + k] = v;
      X[i * n + k] = x[i];
      sum += v;
    }
    o->regional[k] = sum / (double)t;
  }
  for (size_t i = 0; i < t; i++) {
    double sum = 0;
    for (int k = 0; k < n; k++) sum += o->pp[i * n + k];
    o->state[i] = sum;
  }
  free(S);
  return 0;
}

static int null_energies(ic_state *s, const double *X, size_t t, double *out, double *work) {
  int n = s->conn.n;
  int *perm = malloc(n * sizeof *perm);
  double *e = malloc(t * sizeof *e);
  if (!perm || !e) {
    free(perm);
    free(e);
    return s->host->error(s->st, "out of memory");
  }
  unsigned long long rng = s->seed;
  memset(out, 0, t * sizeof *out);
  int rc = 0;
  for (int p = 0; p < s->null && !rc; p++) {
    ic_rand_perm(n, perm, &rng);
    rc = energies(s, X, t, perm, e, work);
    for (size_t i = 0; i < t && !rc; i++) out[i] += e[i] / s->null;
  }
  free(perm);
  free(e);
  return rc;
}

static int emit_map(ic_state *s, const myelin_msg *m, size_t t, int n, const run_out *o, int with_energy) {
  static const char *const pass[] = {"tr", "labels", "t", NULL};
  myelin_builder *b = myelin_builder_new("map");
  myelin_build_str(b, "stat", "info");
  myelin_build_str(b, "units", s->bits ? "bits" : "nats");
  myelin_build_context(b, m);
  myelin_build_fields(b, m, pass);
  build_geometry(b, m);
  int64_t st[1] = {(int64_t)t}, sn[1] = {n}, stn[2] = {(int64_t)t, n};
  myelin_build_tensor_copy(b, "data", MYELIN_F8, 1, st, o->state);
  myelin_build_tensor_copy(b, "regional", MYELIN_F8, 1, sn, o->regional);
  if (s->per_parcel) myelin_build_tensor_copy(b, "per_parcel", MYELIN_F8, 2, stn, o->pp);
  if (with_energy) {
    /* One name per model: the paper's mean u^2 and nctpy's integral of u^T u
     * differ in definition, c and horizon (README, "Energy units"). */
    const int wen = s->energy == ENERGY_WENINGER;
    myelin_build_tensor_copy(b, wen ? "energy_weninger" : "energy_nctpy", MYELIN_F8, 1, st, o->energy);
    if (s->null > 0)
      myelin_build_tensor_copy(b, wen ? "energy_null_weninger" : "energy_null_nctpy", MYELIN_F8, 1, st,
                               o->null);
    myelin_build_str(b, "energy_model", wen ? "weninger" : "nctpy");
    myelin_build_float(b, "energy_c", s->c);
    myelin_build_float(b, "energy_horizon", s->horizon);
  }
  myelin_msg *out = myelin_builder_finish(b);
  if (!out) return s->host->error(s->st, "could not build the output map message");
  return s->host->emit(s->st, OUT_MAP, out);
}

static int process_run(ic_state *s, const myelin_msg *m, const ic_ref *r) {
  char subject[128], task[128];
  msg_subject(m, subject, sizeof subject);
  if (myelin_msg_str(m, "task", task, sizeof task) != 0) task[0] = 0;
  myelin_tensor tt;
  int rc = read_matrix(s, m, "run", &tt);
  if (rc) return rc;
  size_t t = (size_t)tt.shape[0];
  int n = (int)tt.shape[1];
  if (n != r->n)
    return s->host->error(s->st, "run (subject '%s', task '%s'): field 'data' has %d parcels, the reference has %d",
                          subject, task, n, r->n);
  int with_energy = s->energy != ENERGY_NONE && s->have_conn;
  if (with_energy && n != s->conn.n)
    return s->host->error(s->st, "run (subject '%s', task '%s'): %d parcels but the connectome is %d x %d",
                          subject, task, n, s->conn.n, s->conn.n);
  size_t tn = t * (size_t)n;
  double *X = tensor_doubles(&tt);
  double *P = malloc(tn * sizeof *P), *pp = malloc(tn * sizeof *pp), *work = NULL;
  double *vec = malloc((3 * t + n) * sizeof *vec);
  if (!X || !P || !pp || !vec) {
    rc = s->host->error(s->st, "out of memory");
    goto out;
  }
  for (size_t i = 0; i < tn; i++)
    if (!isfinite(X[i])) {
      rc = s->host->error(s->st, "run (subject '%s', task '%s'): non-finite value at TR %zu, parcel %zu",
                          subject, task, i / n, i % n);
      goto out;
    }
  transpose(X, t, n, P);
  run_out o = {pp, vec, vec + t, vec + t + n, vec + 2 * t + n};
  rc = score_run(s, r, P, t, n, X, &o);
  if (!rc && with_energy) {
    if (!(work = malloc(tn * sizeof *work))) {
      rc = s->host->error(s->st, "out of memory");
      goto out;
    }
    rc = energies(s, X, t, NULL, o.energy, work);
    if (!rc && s->null > 0) rc = null_energies(s, X, t, o.null, work);
  }
  if (!rc) rc = emit_map(s, m, t, n, &o, with_energy);
  s->host->counter_add(s->st, "runs", 1);
out:
  free(X);
  free(P);
  free(pp);
  free(vec);
  free(work);
  return rc;
}

/* ---- holding ------------------------------------------------------------- */

static int hold(ic_state *s, myelin_msg *m) {
  if (s->n_held == s->cap_held) {
    size_t cap = s->cap_held ? 2 * s->cap_held : 8;
    myelin_msg **g = realloc(s->held, cap * sizeof *g);
    if (!g) return s->host->error(s->st, "out of memory");
    s->held = g;
    s->cap_held = cap;
  }
  s->held[s->n_held++] = myelin_msg_ref(m);
  return 0;
}

static int ready(const ic_state *s) { return s->energy == ENERGY_NONE || s->have_conn; }

/* Processes the held runs whose reference is known (all, at_end). */
static int release(ic_state *s, int at_end) {
  if (!ready(s) && !at_end) return 0;
  size_t keep = 0;
  int rc = 0;
  for (size_t i = 0; i < s->n_held; i++) {
    myelin_msg *m = s->held[i];
    char subject[128];
    msg_subject(m, subject, sizeof subject);
    const ic_ref *r = ref_find(s, subject);
    if (!r || rc) {
      s->held[keep++] = m;
      continue;
    }
    rc = process_run(s, m, r);
    myelin_msg_unref(m);
  }
  s->n_held = keep;
  return rc;
}

/* ---- references across ranks (MPI) ----------------------------------------------
 *
 * With the source sharding subjects (fmri_source shard: subject) a subject's
 * reference run and its other runs reach the same rank and nothing is
 * exchanged. When they may not (shard: run, or runs.mpk split by file), the
 * runs still held at end of stream are those whose reference is on another
 * rank: every rank sends rank 0 the subjects it waits for; rank 0
 * broadcasts the list; every rank sends rank 0 what its KDEs need for those
 * subjects (clip limits, bandwidths, the sorted clipped reference of each
 * parcel); rank 0 broadcasts them, and each rank scores its own held runs.
 * The densities are the ones the owning rank fitted, bit for bit, so every
 * map equals one rank's. */

static int ranks_n(const ic_state *s) { return s->host->size(s->st); }

static myelin_msg *waiting_list(ic_state *s) {
  myelin_builder *b = myelin_builder_new("ic_waiting");
  if (!b) return NULL;
  myelin_build_array_begin(b, "subjects");
  for (size_t i = 0; i < s->n_held; i++) {
    char subject[128];
    msg_subject(s->held[i], subject, sizeof subject);
    myelin_build_str(b, NULL, subject);
  }
  myelin_build_array_end(b);
  return myelin_builder_finish(b);
}

/* Concatenates the "subjects" arrays of the gathered messages (rank 0). */
static myelin_msg *union_lists(ic_state *s, const uint8_t *all, const size_t *sizes, const char *kind,
                               const char *key) {
  myelin_builder *b = myelin_builder_new(kind);
  if (!b) return NULL;
  myelin_build_array_begin(b, key);
  for (size_t r = 0, off = 0; r < (size_t)ranks_n(s); off += sizes[r], r++) {
    myelin_msg *m = NULL;
    size_t used = 0;
    if (myelin_msg_decode(all + off, sizes[r], 0, &m, &used, NULL, 0) != 0) {
      myelin_builder_free(b);
      return NULL;
    }
    myelin_obj list = myelin_msg_get(m, key);
    for (size_t i = 0; i < myelin_obj_len(list); i++) myelin_build_obj(b, NULL, myelin_obj_at(list, i));
    myelin_msg_unref(m);
  }
  myelin_build_array_end(b);
  return myelin_builder_finish(b);
}

/* Gathers one message per rank to rank 0, which combines them with
 * union_lists, and broadcasts the result; *out on every rank. */
static int exchange(ic_state *s, myelin_msg *mine, const char *kind, const char *key, myelin_msg **out) {
  const myelin_host *h = s->host;
  const int root = h->rank(s->st) == 0;
  *out = NULL;
  if (!mine) return h->error(s->st, "out of memory");
  size_t len = 0;
  const uint8_t *bytes = myelin_msg_bytes(mine, &len);
  uint8_t *all = NULL, *ub = NULL;
  size_t *sizes = NULL, ulen = 0;
  int rc = ranks_gather(h, s->st, bytes, len, &all, &sizes);
  myelin_msg_unref(mine);
  myelin_msg *u = NULL;
  if (rc == 0 && root) {
    u = union_lists(s, all, sizes, kind, key);
    if (!u) rc = h->error(s->st, "could not combine the ranks' %s (out of memory?)", key);
    else ub = (uint8_t *)myelin_msg_bytes(u, &ulen);
  }
  if (all) h->free(s->st, all);
  free(sizes);
  if (rc == 0) rc = ranks_bcast(h, s->st, &ub, &ulen);
  if (rc == 0 && !root) {
    size_t used = 0;
    if (myelin_msg_decode(ub, ulen, 0, &u, &used, NULL, 0) != 0) rc = h->error(s->st, "rank 0's %s are unreadable", key);
    free(ub);
  }
  if (rc) myelin_msg_unref(u);
  else *out = u;
  return rc;
}

static int listed(myelin_obj list, const char *subject) {
  for (size_t i = 0; i < myelin_obj_len(list); i++)
    if (myelin_obj_str_eq(myelin_obj_at(list, i), subject)) return 1;
  return 0;
}

static int share_refs(ic_state *s) {
  myelin_msg *wanted = NULL, *got = NULL;
  int rc = exchange(s, waiting_list(s), "ic_waiting", "subjects", &wanted);
  if (rc) return rc;
  myelin_obj want = myelin_msg_get(wanted, "subjects");
  if (myelin_obj_len(want) == 0) { /* every reference was where its runs were */
    myelin_msg_unref(wanted);
    return 0;
  }
  myelin_builder *b = myelin_builder_new("ic_refs");
  if (b) {
    myelin_build_array_begin(b, "refs");
    for (size_t i = 0; i < s->n_refs; i++) {
      const ic_ref *r = &s->refs[i];
      if (!listed(want, r->subject)) continue;
      int64_t n1[1] = {r->n}, nt[2] = {r->n, (int64_t)r->t};
      myelin_build_map_begin(b, NULL);
      myelin_build_str(b, "subject", r->subject);
      myelin_build_tensor_copy(b, "lo", MYELIN_F8, 1, n1, r->lo);
      myelin_build_tensor_copy(b, "hi", MYELIN_F8, 1, n1, r->hi);
      myelin_build_tensor_copy(b, "h", MYELIN_F8, 1, n1, r->h);
      myelin_build_tensor_copy(b, "sorted", MYELIN_F8, 2, nt, r->sorted);
      myelin_build_map_end(b);
    }
    myelin_build_array_end(b);
  }
  myelin_msg_unref(wanted);
  rc = exchange(s, b ? myelin_builder_finish(b) : NULL, "ic_refs", "refs", &got);
  if (rc) return rc;
  myelin_obj refs = myelin_msg_get(got, "refs");
  for (size_t i = 0; i < myelin_obj_len(refs) && rc == 0; i++) {
    myelin_obj o = myelin_obj_at(refs, i);
    char subject[128];
    myelin_obj_str_copy(myelin_obj_get(o, "subject"), subject, sizeof subject);
    if (ref_find(s, subject)) continue; /* its own (or already received) */
    myelin_tensor lo, hi, h, so;
    if (myelin_obj_tensor(myelin_obj_get(o, "lo"), &lo) || myelin_obj_tensor(myelin_obj_get(o, "hi"), &hi) ||
        myelin_obj_tensor(myelin_obj_get(o, "h"), &h) || myelin_obj_tensor(myelin_obj_get(o, "sorted"), &so) ||
        so.ndim != 2) {
      rc = s->host->error(s->st, "the reference of subject '%s' from another rank is malformed", subject);
      break;
    }
    ic_ref *grown = realloc(s->refs, (s->n_refs + 1) * sizeof *grown);
    if (!grown) {
      rc = s->host->error(s->st, "out of memory");
      break;
    }
    s->refs = grown;
    ic_ref *r = &s->refs[s->n_refs];
    memset(r, 0, sizeof *r);
    r->n = (int)so.shape[0];
    r->t = (size_t)so.shape[1];
    r->subject = strdup(subject);
    r->lo = tensor_doubles(&lo), r->hi = tensor_doubles(&hi), r->h = tensor_doubles(&h);
    r->sorted = tensor_doubles(&so);
    if (!r->subject || !r->lo || !r->hi || !r->h || !r->sorted) {
      ref_free(r);
      rc = s->host->error(s->st, "out of memory");
      break;
    }
    s->n_refs++;
  }
  myelin_msg_unref(got);
  return rc;
}

/* ---- lifecycle ----------------------------------------------------------- */

static int parse_bandwidth(const char *txt, double *out) {
  if (strcmp(txt, "silverman") == 0) {
    *out = 0;
    return 0;
  }
  char *end;
  double v = strtod(txt, &end);
  if (end == txt || *end || !(v > 0) || !isfinite(v)) return -1;
  *out = v;
  return 0;
}

static int ic_validate(const myelin_params *p, myelin_validate_ctx *ctx) {
  double bw;
  int bad = 0;
  if (parse_bandwidth(myelin_param_str(p, "bandwidth"), &bw) != 0)
    bad |= myelin_validate_error(ctx, "bandwidth", "bandwidth must be 'silverman' or a positive number, got '%s'",
                                 myelin_param_str(p, "bandwidth"));
  const char *energy = myelin_param_str(p, "energy");
  if (strcmp(energy, "weninger") == 0 && strcmp(myelin_param_str(p, "S"), "identity") == 0)
    bad |= myelin_validate_error(ctx, "S", "S: identity (optimal control) needs energy: nctpy; the paper's "
                                           "energy is minimum-energy control");
  if (!myelin_validate_input_kinds(ctx, "connectome")) {
    if (strcmp(energy, "none") != 0)
      bad |= myelin_validate_error(ctx, "energy",
                                   "energy: %s needs a structural connectome: connect the `connectome` input "
                                   "(a tensor [N, N], e.g. dataset with whole: true) or set energy: none",
                                   energy);
    if (myelin_param_bool(p, "controllability"))
      bad |= myelin_validate_error(ctx, "controllability", "controllability: true needs the `connectome` input");
  }
  if (strcmp(energy, "none") != 0 && myelin_param_is_set(p, "rho") &&
      strcmp(myelin_param_str(p, "S"), "identity") != 0)
    bad |= myelin_validate_error(ctx, "rho", "rho only matters with S: identity");
  return bad ? MYELIN_EINVAL : 0;
}

static int load_file_ref(ic_state *s, const char *path) {
  myelin_array a;
  char err[512];
  if (myelin_npy_read(path, &a, err, sizeof err) != 0)
    return s->host->error(s->st, "reference: %s", err);
  int rc = 0;
  if (a.ndim != 2 || (a.dtype != MYELIN_F4 && a.dtype != MYELIN_F8)) {
    rc = s->host->error(s->st, "reference: %s must hold a 2-D float array [T, N], got %s with %d dims", path,
                        myelin_dtype_name(a.dtype), a.ndim);
  } else {
    myelin_tensor t = {.dtype = a.dtype, .ndim = 2, .count = a.count, .nbytes = a.nbytes, .data = a.data};
    t.shape[0] = a.shape[0];
    t.shape[1] = a.shape[1];
    double *X = tensor_doubles(&t);
    s->file_ref = calloc(1, sizeof *s->file_ref);
    if (!X || !s->file_ref) {
      rc = s->host->error(s->st, "out of memory");
    } else {
      char label[600];
      snprintf(label, sizeof label, "reference %s", path);
      rc = ref_build(s, X, (size_t)a.shape[0], (int)a.shape[1], label, s->file_ref);
    }
    free(X);
  }
  myelin_array_free(&a);
  return rc;
}

static void ic_fini(void *state);

static int ic_init(const myelin_host *host, myelin_stage *st, const myelin_params *p, void **state) {
  ic_state *s = calloc(1, sizeof *s);
  if (!s) return host->error(st, "out of memory");
  s->host = host;
  s->st = st;
  snprintf(s->ref_task, sizeof s->ref_task, "%s", myelin_param_str(p, "reference_task"));
  if (parse_bandwidth(myelin_param_str(p, "bandwidth"), &s->bandwidth) != 0) {
    free(s);
    return host->error(st, "bandwidth must be 'silverman' or a positive number");
  }
  const char *energy = myelin_param_str(p, "energy");
  s->energy = strcmp(energy, "none") == 0 ? ENERGY_NONE
              : strcmp(energy, "nctpy") == 0 ? ENERGY_NCTPY : ENERGY_WENINGER;
  int wen = s->energy == ENERGY_WENINGER;
  s->clip_sd = myelin_param_float(p, "clip_sd");
  s->c = myelin_param_is_set(p, "c") ? myelin_param_float(p, "c") : (wen ? 0.001 : 1.0);
  s->horizon = myelin_param_is_set(p, "horizon") ? myelin_param_float(p, "horizon") : (wen ? 10.0 : 1.0);
  s->rho = myelin_param_float(p, "rho");
  s->bits = strcmp(myelin_param_str(p, "units"), "bits") == 0;
  s->demean = myelin_param_bool(p, "demean");
  s->S_identity = strcmp(myelin_param_str(p, "S"), "identity") == 0;
  s->x0_prev = strcmp(myelin_param_str(p, "x0"), "previous") == 0;
  s->steps = (int)myelin_param_int(p, "steps");
  s->null = (int)myelin_param_int(p, "null");
  s->seed = (unsigned long long)myelin_param_int(p, "seed");
  s->per_parcel = myelin_param_bool(p, "per_parcel");
  s->control = myelin_param_bool(p, "controllability");
  s->threads = (int)myelin_param_int(p, "threads");
  const char *ref = myelin_param_str(p, "reference");
  if (ref && *ref) {
    char *path = myelin_input_path(ref, host->pipeline_dir ? host->pipeline_dir(st) : NULL);
    int rc = path ? load_file_ref(s, path) : host->error(st, "out of memory");
    free(path);
    if (rc) {
      ic_fini(s);
      return rc;
    }
  }
  *state = s;
  return 0;
}

static int ic_process(void *state, int port, myelin_msg *m) {
  ic_state *s = state;
  if (port == PORT_CONNECTOME) {
    if (s->energy == ENERGY_NONE && !s->control) return 0;
    int rc = conn_set(s, m);
    return rc ? rc : release(s, 0);
  }
  char subject[128], task[128];
  msg_subject(m, subject, sizeof subject);
  if (myelin_msg_str(m, "task", task, sizeof task) != 0) task[0] = 0;
  if (!s->file_ref && strcmp(task, s->ref_task) == 0 && !ref_find(s, subject)) {
    int rc = ref_add_run(s, m, subject);
    if (rc) return rc;
  }
  if (ready(s) && ref_find(s, subject)) {
    int rc = release(s, 0); /* earlier runs first: order is kept */
    return rc ? rc : process_run(s, m, ref_find(s, subject));
  }
  return hold(s, m);
}

static int ic_flush(void *state) {
  ic_state *s = state;
  if (s->energy != ENERGY_NONE && !s->have_conn && s->n_held)
    s->host->log(s->st, MYELIN_LOG_WARN, "no connectome arrived: %zu runs scored without energy", s->n_held);
  int rc = release(s, 1);
  if (rc == 0 && ranks_n(s) > 1 && !s->file_ref && (rc = share_refs(s)) == 0) rc = release(s, 1);
  if (rc) return rc;
  if (s->n_held) {
    char subject[128];
    msg_subject(s->held[0], subject, sizeof subject);
    return s->host->error(s->st,
                          "%zu runs never got a reference: no run with task '%s' arrived for subject '%s' "
                          "(set reference_task, or reference: FILE.npy)",
                          s->n_held, s->ref_task, subject);
  }
  return 0;
}

static void ic_fini(void *state) {
  ic_state *s = state;
  if (!s) return;
  for (size_t i = 0; i < s->n_refs; i++) ref_free(&s->refs[i]);
  free(s->refs);
  ref_free(s->file_ref);
  free(s->file_ref);
  conn_free(&s->conn);
  for (size_t i = 0; i < s->n_held; i++) myelin_msg_unref(s->held[i]);
  free(s->held);
  free(s);
}

/* ---- descriptor ---------------------------------------------------------- */

static const myelin_param_def ic_params[] = {
    {"reference_task", MYELIN_PARAM_STRING, "rest", 0, 0, 0, NULL, NULL,
     "Task of the reference run (one per subject): its parcel distributions define the densities and "
     "clip limits. Runs of a subject are held until its reference run arrives."},
    {"reference", MYELIN_PARAM_INPUT_PATH, "", 0, 0, 0, NULL, NULL,
     "A .npy file [T, N] used as the reference for every subject instead of a reference run."},
    {"bandwidth", MYELIN_PARAM_STRING, "silverman", 0, 0, 0, NULL, "data units",
     "Gaussian kernel bandwidth: 'silverman' (1.06 sd n^-1/5 per parcel, sd with ddof 0) or a number."},
    {"clip_sd", MYELIN_PARAM_FLOAT, "4", 1, 0, 1e6, NULL, "sd",
     "Clip every run per parcel to [max(min_ref, -k sd_ref), min(max_ref, k sd_ref)]; 0 disables."},
    {"units", MYELIN_PARAM_ENUM, "nats", 0, 0, 0, "nats|bits", NULL, "Units of information content."},
    {"demean", MYELIN_PARAM_BOOL, "true", 0, 0, 0, NULL, NULL, "Subtract each parcel's mean per run."},
    {"energy", MYELIN_PARAM_ENUM, "weninger", 0, 0, 0, "none|weninger|nctpy", NULL,
     "Control energy with a connectome, output as energy_<model> (the two differ in units): weninger = the "
     "paper (A symmetrised, diagonal zeroed, A/(lambda (1+c)) - I, T = 10): mean of u^2 over the steps+1 "
     "samples and N nodes (a power, ~ integral / (T N)); nctpy = integral of u^T u dt over [0, T] (T = 1), "
     "x^T W_T^-1 x with A/(c + lambda_max) - I (or optimal control with S: identity). nctpy's "
     "integrate_u(u).sum() (Simpson over dt = 0.001 samples) = 1000 x energy_nctpy; its "
     "minimum_energy_fast(...).sum() = 1 x. none = never wait for a connectome."},
    {"c", MYELIN_PARAM_FLOAT, "0.001", 1, 0, 1e12, NULL, NULL,
     "Normalisation constant; defaults to 0.001 (weninger, multiplicative) or 1 (nctpy, additive)."},
    {"horizon", MYELIN_PARAM_FLOAT, "10", 1, 1e-9, 1e6, NULL, "model time",
     "Control horizon T; defaults to 10 (weninger) or 1 (nctpy)."},
    {"rho", MYELIN_PARAM_FLOAT, "1", 1, 1e-12, 1e12, NULL, NULL,
     "Weight of the input cost against the state penalty (S: identity)."},
    {"S", MYELIN_PARAM_ENUM, "zero", 0, 0, 0, "zero|identity", NULL,
     "State penalty: zero = minimum-energy control; identity = nctpy optimal control (symmetric A)."},
    {"x0", MYELIN_PARAM_ENUM, "zero", 0, 0, 0, "zero|previous", NULL,
     "Initial state of each transition: zero, or the previous TR's state (the first TR starts at zero)."},
    {"steps", MYELIN_PARAM_INT, "1000", 1, 1, 1e9, NULL, "steps",
     "weninger: the trajectory is sampled at steps + 1 points of [0, T] for mean(u^2)."},
    {"null", MYELIN_PARAM_INT, "0", 1, 0, 1e6, NULL, "permutations",
     "Number of seeded random relabellings of the connectome averaged into energy_null_<model> (0 = none)."},
    {"seed", MYELIN_PARAM_INT, "0", 1, 0, 9.2e18, NULL, NULL, "Seed of the null permutations."},
    {"per_parcel", MYELIN_PARAM_BOOL, "false", 0, 0, 0, NULL, NULL,
     "Also output per_parcel [T, N], the information content of every parcel at every TR."},
    {"controllability", MYELIN_PARAM_BOOL, "false", 0, 0, 0, NULL, NULL,
     "Emit average (continuous and discrete) and modal controllability per connectome on "
     "`controllability`."},
    {"threads", MYELIN_PARAM_INT, "1", 1, 1, IC_MAX_THREADS, NULL, "threads",
     "Threads for the density step (parcels are split among them; the stage thread is one)."},
    {NULL, 0, NULL, 0, 0, 0, NULL, NULL, NULL}};

static const myelin_port_def ic_inputs[] = {
    {"run", "run", 0, "Parcel time series [T, N] with subject/task/run."},
    {"connectome", "tensor", 1, "Structural connectome [N, N] (e.g. dataset with whole: true)."},
    {NULL, NULL, 0, NULL}};

static const myelin_port_def ic_outputs[] = {
    {"map", "map", 0,
     "Per run: stat 'info', data [T], regional [N], optional per_parcel, energy_weninger or energy_nctpy, "
     "energy_null_<model>, energy_model, energy_c, energy_horizon."},
    {"controllability", "map", 0, "Per connectome: average and modal controllability [N]."},
    {NULL, NULL, 0, NULL}};

static const myelin_plugin_desc ic_desc = {
    MYELIN_DESC_HEADER,
    .name = "info_content",
    .version = "1.0.0",
    .summary = "Information content of brain states (KDE surprisal) and the control energy to reach them",
    .doc = "Weninger et al. 2021 (arXiv 2110.13781): per-parcel Gaussian KDE on a reference run, "
           "surprisal summed over parcels; minimum control energy over a structural connectome "
           "(closed forms on one eigendecomposition; nctpy conventions with energy: nctpy).",
    .params = ic_params,
    .inputs = ic_inputs,
    .outputs = ic_outputs,
    .validate = ic_validate,
    .init = ic_init,
    .process = ic_process,
    .flush = ic_flush,
    .fini = ic_fini,
};

MYELIN_PLUGIN(ic_desc)
