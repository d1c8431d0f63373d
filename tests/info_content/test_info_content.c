/*
 * test_info_content.c — the info_content plugin through the harness, and a
 * pipeline end to end through `myelin run`.
 *
 * Runs are small deterministic grids of multiples of 1/8 (exact in float32,
 * so Python builds the same arrays). Reference numbers were computed with
 * /usr/bin/python3: sklearn KernelDensity on the clipped rest run, the
 * paper's energy in closed form (checked against its expm simulation to
 * 2e-11) and nctpy's x^T W^-1 x with a Van Loan Gramian; they are committed.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <myelin/harness.h>
#include <myelin/msg.h>
#include <myelin/npy.h>

#include "ic_kernels.h"
#include "testutil.h"

enum { N = 5 };

#define NEAR(a, b, tol) ck_assert_msg(fabs((a) - (b)) <= (tol) * fmax(1.0, fabs(b)), \
                                      "%s = %.15g, expected %.15g", #a, (double)(a), (double)(b))

static void rm_rf(const char *dir) {
  char *cmd = mt_strf("rm -rf %s", dir);
  mt_run(cmd, NULL);
  free(cmd);
}

static float *grid(int T, double amp, int off) {
  float *x = malloc((size_t)T * N * sizeof *x);
  for (int t = 0; t < T; t++)
    for (int n = 0; n < N; n++) x[t * N + n] = (float)((((t * (2 * n + 3) + 5 * n + off) % 17) - 8) * 0.125 * amp);
  return x;
}

static myelin_msg *run_msg(const char *subject, const char *task, int T, double amp, int off) {
  float *x = grid(T, amp, off);
  myelin_builder *b = myelin_builder_new("run");
  int64_t shape[2] = {T, N};
  myelin_build_tensor_copy(b, "data", MYELIN_F4, 2, shape, x);
  myelin_build_float(b, "tr", 0.72);
  myelin_build_str(b, "subject", subject);
  myelin_build_str(b, "task", task);
  myelin_build_int(b, "run", 1);
  free(x);
  myelin_msg *m = myelin_builder_finish(b);
  ck_assert_ptr_nonnull(m);
  return m;
}

static myelin_msg *rest_msg(void) { return run_msg("s1", "rest", 60, 1.0, 0); }
static myelin_msg *task_msg(void) { return run_msg("s1", "social", 40, 1.5, 3); }

static myelin_msg *conn_msg(int n, const double *A) {
  myelin_builder *b = myelin_builder_new("tensor");
  int64_t shape[2] = {n, n};
  myelin_build_tensor_copy(b, "data", MYELIN_F8, 2, shape, A);
  return myelin_builder_finish(b);
}

static myelin_msg *conn5(void) {
  double A[N * N];
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++) A[i * N + j] = i == j ? 0 : ((i + 1) * (j + 1) % 7) / 7.0;
  return conn_msg(N, A);
}

static myelin_harness *harness(const char *params) {
  char err[512];
  myelin_harness *h = myelin_harness_new("info_content", params, err, sizeof err);
  ck_assert_msg(h != NULL, "harness: %s", err);
  return h;
}

static const double *field(const myelin_msg *m, const char *key, size_t count) {
  myelin_tensor t;
  ck_assert_msg(myelin_msg_tensor(m, key, &t) == 0, "no tensor '%s'", key);
  ck_assert_int_eq(t.dtype, MYELIN_F8);
  ck_assert_uint_eq(t.count, count);
  return t.data;
}

static const double REST_DATA[4] = {4.563187877008783, 4.41405940501525, 4.573044405551329, 4.083655785670125};
static const double REST_REGIONAL[N] = {0.8812585423774831, 0.8676102660508768, 0.8841758155993005,
                                        0.8969625765935049, 0.8659402715094007};
static const double REST_WEN[4] = {0.10968560513643905, 0.09327409680983517, 0.08388858089681392,
                                   0.07538072278565051};
static const double REST_NCT[4] = {5.779754914530539, 6.169139724360976, 4.689001103239663, 5.579504054507584};
static const double TASK_DATA[4] = {4.999792862609586, 5.033559788947581, 4.852427948250737, 4.575699858562469};
static const double TASK_REGIONAL[N] = {1.0130719066753497, 1.0149478440906994, 1.017400400162558,
                                        1.010083700330625, 1.0000593097126986};
static const double TASK_WEN[4] = {0.11750259263281493, 0.17311448520884548, 0.14787125347826338,
                                   0.1247927734032973};
static const double TASK_NCT[4] = {6.745859802285156, 9.915724563779136, 11.091222390224457, 7.777766862299918};

/* Task before rest before connectome: nothing leaves until both arrive,
 * then the runs come out in arrival order with the paper's numbers. */
START_TEST(held_until_ready_weninger) {
  myelin_harness *h = harness("{per_parcel: true, threads: 3}"); /* 5 parcels over 3 threads */
  ck_assert_int_eq(myelin_harness_push(h, "run", task_msg()), 0);
  ck_assert_int_eq(myelin_harness_push(h, "run", rest_msg()), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 0);
  ck_assert_int_eq(myelin_harness_push(h, "connectome", conn5()), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 2);
  ck_assert_int_eq(myelin_harness_eos(h), 0);

  myelin_msg *ta = myelin_harness_output(h, "map", 0), *re = myelin_harness_output(h, "map", 1);
  char buf[64];
  ck_assert_int_eq(myelin_msg_str(ta, "task", buf, sizeof buf), 0);
  ck_assert_str_eq(buf, "social");
  ck_assert_int_eq(myelin_msg_str(ta, "stat", buf, sizeof buf), 0);
  ck_assert_str_eq(buf, "info");
  ck_assert_int_eq(myelin_msg_str(re, "subject", buf, sizeof buf), 0);
  ck_assert_str_eq(buf, "s1");

  const double *d = field(ta, "data", 40), *r = field(ta, "regional", N),
               *e = field(ta, "energy_weninger", 40);
  const double *pp = field(ta, "per_parcel", 40 * N);
  for (int i = 0; i < 4; i++) NEAR(d[i], TASK_DATA[i], 1e-10);
  for (int i = 0; i < 4; i++) NEAR(e[i], TASK_WEN[i], 1e-9);
  for (int k = 0; k < N; k++) NEAR(r[k], TASK_REGIONAL[k], 1e-10);
  for (int t = 0; t < 40; t++) {
    double s = 0;
    for (int k = 0; k < N; k++) s += pp[t * N + k];
    NEAR(s, d[t], 1e-12);
  }
  d = field(re, "data", 60), r = field(re, "regional", N), e = field(re, "energy_weninger", 60);
  for (int i = 0; i < 4; i++) NEAR(d[i], REST_DATA[i], 1e-10);
  for (int i = 0; i < 4; i++) NEAR(e[i], REST_WEN[i], 1e-9);
  for (int k = 0; k < N; k++) NEAR(r[k], REST_REGIONAL[k], 1e-10);
  myelin_tensor t;
  ck_assert_int_ne(myelin_msg_tensor(re, "energy_null_weninger", &t), 0); /* null: 0 */
  myelin_harness_free(h);
}
END_TEST

START_TEST(nctpy_previous_and_null) {
  const char *p = "{energy: nctpy, x0: previous, null: 4, seed: 11}";
  myelin_harness *h = harness(p);
  ck_assert_int_eq(myelin_harness_push(h, "connectome", conn5()), 0);
  ck_assert_int_eq(myelin_harness_push(h, "run", rest_msg()), 0);
  ck_assert_int_eq(myelin_harness_push(h, "run", task_msg()), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 2);
  const double *e = field(myelin_harness_output(h, "map", 0), "energy_nctpy", 60);
  for (int i = 0; i < 4; i++) NEAR(e[i], REST_NCT[i], 1e-9);
  e = field(myelin_harness_output(h, "map", 1), "energy_nctpy", 40);
  for (int i = 0; i < 4; i++) NEAR(e[i], TASK_NCT[i], 1e-9);
  const double *nul = field(myelin_harness_output(h, "map", 1), "energy_null_nctpy", 40);
  double diff = 0;
  for (int i = 0; i < 40; i++) {
    ck_assert(isfinite(nul[i]) && nul[i] > 0);
    diff += fabs(nul[i] - e[i]);
  }
  ck_assert(diff > 1e-6);

  /* the same seed gives the same null */
  myelin_harness *h2 = harness(p);
  myelin_harness_push(h2, "connectome", conn5());
  myelin_harness_push(h2, "run", rest_msg());
  myelin_harness_push(h2, "run", task_msg());
  const double *nul2 = field(myelin_harness_output(h2, "map", 1), "energy_null_nctpy", 40);
  for (int i = 0; i < 40; i++) ck_assert(nul2[i] == nul[i]);
  myelin_harness_free(h2);
  myelin_harness_free(h);
}
END_TEST

/* The two energy models differ in definition, c and horizon, so they are
 * reported under different names, with the model's c and horizon; no field
 * is called plain `energy` (it meant one thing or the other before). The
 * nctpy energy is the integral of u^T u dt: nctpy's integrate_u(u).sum() on
 * the same transition is 1000 x it (ref_nctpy_units.py, test_ic_kernels.c). */
START_TEST(energy_names_per_model) {
  static const struct {
    const char *params, *name, *null_name, *other, *model;
    double c, horizon;
    const double *want;
  } cases[] = {
      {"{energy: weninger, null: 1}", "energy_weninger", "energy_null_weninger", "energy_nctpy", "weninger",
       0.001, 10, REST_WEN},
      {"{energy: nctpy, x0: previous, null: 1}", "energy_nctpy", "energy_null_nctpy", "energy_weninger",
       "nctpy", 1, 1, REST_NCT},
      {"{energy: nctpy, x0: previous, c: 2, horizon: 3}", "energy_nctpy", NULL, "energy_weninger", "nctpy", 2,
       3, NULL},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    myelin_harness *h = harness(cases[k].params);
    ck_assert_int_eq(myelin_harness_push(h, "connectome", conn5()), 0);
    ck_assert_int_eq(myelin_harness_push(h, "run", rest_msg()), 0);
    const myelin_msg *m = myelin_harness_output(h, "map", 0);
    const double *e = field(m, cases[k].name, 60);
    for (int i = 0; cases[k].want && i < 4; i++)
      NEAR(e[i], cases[k].want[i], 1e-9);
    if (cases[k].null_name) (void)field(m, cases[k].null_name, 60);
    myelin_tensor t;
    ck_assert_int_ne(myelin_msg_tensor(m, "energy", &t), 0);
    ck_assert_int_ne(myelin_msg_tensor(m, "energy_null", &t), 0);
    ck_assert_int_ne(myelin_msg_tensor(m, cases[k].other, &t), 0);
    char buf[32];
    ck_assert_int_eq(myelin_msg_str(m, "energy_model", buf, sizeof buf), 0);
    ck_assert_str_eq(buf, cases[k].model);
    double c = -1, hor = -1;
    ck_assert_int_eq(myelin_msg_float(m, "energy_c", &c), 0);
    ck_assert_int_eq(myelin_msg_float(m, "energy_horizon", &hor), 0);
    NEAR(c, cases[k].c, 1e-15);
    NEAR(hor, cases[k].horizon, 1e-15);
    myelin_harness_free(h);
  }
}
END_TEST

START_TEST(no_energy_bits) {
  myelin_harness *h = harness("{energy: none, units: bits}");
  ck_assert_int_eq(myelin_harness_push(h, "run", rest_msg()), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 1); /* no waiting for a connectome */
  const double *d = field(myelin_harness_output(h, "map", 0), "data", 60);
  for (int i = 0; i < 4; i++) NEAR(d[i], REST_DATA[i] / M_LN2, 1e-10);
  char buf[16];
  myelin_msg_str(myelin_harness_output(h, "map", 0), "units", buf, sizeof buf);
  ck_assert_str_eq(buf, "bits");
  myelin_harness_free(h);
}
END_TEST

START_TEST(reference_file) {
  char *dir = mt_tmpdir(), *path = mt_strf("%s/rest.npy", dir), err[256];
  float *x = grid(60, 1.0, 0);
  int64_t shape[2] = {60, N};
  ck_assert_int_eq(myelin_npy_write(path, MYELIN_F4, 2, shape, x, err, sizeof err), 0);
  free(x);
  char *params = mt_strf("{energy: none, reference: %s}", path);
  myelin_harness *h = harness(params);
  ck_assert_int_eq(myelin_harness_push(h, "run", run_msg("s2", "social", 40, 1.5, 3)), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 1);
  const double *d = field(myelin_harness_output(h, "map", 0), "data", 40);
  for (int i = 0; i < 4; i++) NEAR(d[i], TASK_DATA[i], 1e-10);
  myelin_harness_free(h);
  free(params);

  params = mt_strf("{reference: %s/missing.npy}", dir);
  ck_assert_ptr_null(myelin_harness_new("info_content", params, err, sizeof err));
  ck_assert_msg(strstr(err, "missing.npy") != NULL, "%s", err);
  free(params);
  rm_rf(dir);
  free(path);
  free(dir);
}
END_TEST

START_TEST(errors) {
  char err[512];
  ck_assert_ptr_null(myelin_harness_new("info_content", "{bandwidth: wide}", err, sizeof err));
  ck_assert_msg(strstr(err, "bandwidth") != NULL, "%s", err);
  ck_assert_ptr_null(myelin_harness_new("info_content", "{S: identity}", err, sizeof err));
  ck_assert_msg(strstr(err, "nctpy") != NULL, "%s", err);

  /* parcels differ from the reference */
  myelin_harness *h = harness("{energy: none}");
  ck_assert_int_eq(myelin_harness_push(h, "run", rest_msg()), 0);
  myelin_builder *b = myelin_builder_new("run");
  float z[12] = {0};
  int64_t shape[2] = {4, 3};
  myelin_build_tensor_copy(b, "data", MYELIN_F4, 2, shape, z);
  myelin_build_str(b, "subject", "s1");
  myelin_build_str(b, "task", "social");
  ck_assert_int_ne(myelin_harness_push(h, "run", myelin_builder_finish(b)), 0);
  ck_assert_msg(strstr(myelin_harness_error(h), "3 parcels") != NULL, "%s", myelin_harness_error(h));
  myelin_harness_free(h);

  /* a constant reference parcel has no Silverman bandwidth */
  h = harness("{energy: none}");
  b = myelin_builder_new("run");
  float c[12] = {1, 0, 1, 2, 0, 3, 3, 0, 5, 4, 0, 1};
  myelin_build_tensor_copy(b, "data", MYELIN_F4, 2, shape, c);
  myelin_build_str(b, "subject", "s1");
  myelin_build_str(b, "task", "rest");
  ck_assert_int_ne(myelin_harness_push(h, "run", myelin_builder_finish(b)), 0);
  ck_assert_msg(strstr(myelin_harness_error(h), "parcel 1 is constant") != NULL, "%s", myelin_harness_error(h));
  myelin_harness_free(h);

  /* no reference ever */
  h = harness("{energy: none}");
  ck_assert_int_eq(myelin_harness_push(h, "run", task_msg()), 0);
  ck_assert_int_ne(myelin_harness_eos(h), 0);
  ck_assert_msg(strstr(myelin_harness_error(h), "never got a reference") != NULL, "%s", myelin_harness_error(h));
  myelin_harness_free(h);

  /* a run without data, a connectome with a NaN */
  h = harness("{}");
  b = myelin_builder_new("run");
  myelin_build_str(b, "subject", "s1");
  myelin_build_str(b, "task", "rest");
  ck_assert_int_ne(myelin_harness_push(h, "run", myelin_builder_finish(b)), 0);
  ck_assert_msg(strstr(myelin_harness_error(h), "field 'data' is missing") != NULL, "%s", myelin_harness_error(h));
  double An[4] = {0, 1, NAN, 0};
  ck_assert_int_ne(myelin_harness_push(h, "connectome", conn_msg(2, An)), 0);
  ck_assert_msg(strstr(myelin_harness_error(h), "entry [1, 0]") != NULL, "%s", myelin_harness_error(h));
  myelin_harness_free(h);

  /* a non-square connectome */
  h = harness("{}");
  double A[6] = {0};
  b = myelin_builder_new("tensor");
  int64_t s23[2] = {2, 3};
  myelin_build_tensor_copy(b, "data", MYELIN_F8, 2, s23, A);
  ck_assert_int_ne(myelin_harness_push(h, "connectome", myelin_builder_finish(b)), 0);
  ck_assert_msg(strstr(myelin_harness_error(h), "square") != NULL, "%s", myelin_harness_error(h));
  myelin_harness_free(h);
}
END_TEST

/* No connectome by end of stream: the runs still come out, without energy. */
START_TEST(flush_without_connectome) {
  myelin_harness *h = harness("{}");
  ck_assert_int_eq(myelin_harness_push(h, "run", rest_msg()), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 0);
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 1);
  myelin_tensor t;
  ck_assert_int_ne(myelin_msg_tensor(myelin_harness_output(h, "map", 0), "energy_weninger", &t), 0);
  ck_assert(myelin_obj_type_of(myelin_msg_get(myelin_harness_output(h, "map", 0), "energy_model")) ==
            MYELIN_OBJ_NONE);
  myelin_harness_free(h);
}
END_TEST

START_TEST(controllability_output) {
  myelin_harness *h = harness("{energy: nctpy, controllability: true}");
  const double P[9] = {0, 1, 0, 1, 0, 1, 0, 1, 0};
  ck_assert_int_eq(myelin_harness_push(h, "connectome", conn_msg(3, P)), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "controllability"), 1);
  myelin_msg *m = myelin_harness_output(h, "controllability", 0);
  const double *ave = field(m, "data", 3), *aved = field(m, "average_discrete", 3), *mod = field(m, "modal", 3);
  const double want_ave[3] = {0.461665727145, 0.490999095909, 0.461665727145};
  const double want_d[3] = {1.26120387, 1.52240775, 1.26120387}, want_m[3] = {0.82842712, 0.65685425, 0.82842712};
  for (int i = 0; i < 3; i++) {
    NEAR(ave[i], want_ave[i], 1e-11);
    NEAR(aved[i], want_d[i], 1e-8);
    NEAR(mod[i], want_m[i], 1e-8);
  }
  myelin_harness_free(h);
}
END_TEST

/* Each subject is scored against its own reference run. */
START_TEST(per_subject_reference) {
  myelin_harness *h = harness("{energy: none}");
  ck_assert_int_eq(myelin_harness_push(h, "run", rest_msg()), 0);                              /* s1 rest */
  ck_assert_int_eq(myelin_harness_push(h, "run", run_msg("s2", "social", 40, 1.5, 3)), 0);     /* held */
  ck_assert_int_eq(myelin_harness_push(h, "run", task_msg()), 0);                              /* s1 task */
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 2);
  ck_assert_int_eq(myelin_harness_push(h, "run", run_msg("s2", "rest", 60, 2.0, 7)), 0);       /* s2 rest */
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 4);
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  const double *d = field(myelin_harness_output(h, "map", 1), "data", 40);
  for (int i = 0; i < 3; i++) NEAR(d[i], TASK_DATA[i], 1e-10);
  myelin_msg *s2 = myelin_harness_output(h, "map", 2);
  char buf[32];
  myelin_msg_str(s2, "subject", buf, sizeof buf);
  ck_assert_str_eq(buf, "s2");
  d = field(s2, "data", 40);
  const double want[3] = {7.4823657207300851, 7.3777249368057785, 7.3563498773232574};
  for (int i = 0; i < 3; i++) NEAR(d[i], want[i], 1e-10);
  myelin_harness_free(h);

  /* integer subjects are told apart too */
  h = harness("{energy: none}");
  myelin_builder *b = myelin_builder_new("run");
  float *x = grid(60, 1.0, 0);
  int64_t shape[2] = {60, N};
  myelin_build_tensor_copy(b, "data", MYELIN_F4, 2, shape, x);
  myelin_build_int(b, "subject", 1);
  myelin_build_str(b, "task", "rest");
  ck_assert_int_eq(myelin_harness_push(h, "run", myelin_builder_finish(b)), 0);
  b = myelin_builder_new("run");
  myelin_build_tensor_copy(b, "data", MYELIN_F4, 2, shape, x);
  myelin_build_int(b, "subject", 2);
  myelin_build_str(b, "task", "social");
  ck_assert_int_eq(myelin_harness_push(h, "run", myelin_builder_finish(b)), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 1);
  ck_assert_int_ne(myelin_harness_eos(h), 0);
  ck_assert_msg(strstr(myelin_harness_error(h), "subject '2'") != NULL, "%s", myelin_harness_error(h));
  free(x);
  myelin_harness_free(h);
}
END_TEST

/* A directed connectome: nctpy goes through Van Loan; the paper's
 * convention mirrors the upper triangle (dataloader.get_dCM). */
START_TEST(directed_connectome) {
  double A[N * N];
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++) A[i * N + j] = i == j ? 0 : ((i + 2) * (j + 1) % 7) / 7.0;
  const double want_nct[3] = {5.8299443777038169, 5.1558854549863007, 3.9907592461490959};
  const double want_wen[3] = {0.11324365431472964, 0.10178846751808877, 0.056473365969457935};
  const char *params[2] = {"{energy: nctpy}", "{energy: weninger}"};
  const char *names[2] = {"energy_nctpy", "energy_weninger"};
  const double *want[2] = {want_nct, want_wen};
  for (int v = 0; v < 2; v++) {
    myelin_harness *h = harness(params[v]);
    ck_assert_int_eq(myelin_harness_push(h, "connectome", conn_msg(N, A)), 0);
    ck_assert_int_eq(myelin_harness_push(h, "run", rest_msg()), 0);
    const double *e = field(myelin_harness_output(h, "map", 0), names[v], 60);
    for (int i = 0; i < 3; i++) NEAR(e[i], want[v][i], 1e-9);
    myelin_harness_free(h);
  }
  myelin_harness *h = harness("{energy: nctpy, S: identity}");
  ck_assert_int_ne(myelin_harness_push(h, "connectome", conn_msg(N, A)), 0);
  ck_assert_msg(strstr(myelin_harness_error(h), "not symmetric") != NULL, "%s", myelin_harness_error(h));
  myelin_harness_free(h);
}
END_TEST

/* Fixed bandwidth, no clipping, no demeaning, a custom reference task. */
START_TEST(raw_options) {
  myelin_harness *h = harness("{energy: none, bandwidth: 0.3, clip_sd: 0, demean: false, reference_task: baseline}");
  ck_assert_int_eq(myelin_harness_push(h, "run", run_msg("s1", "baseline", 60, 1.0, 0)), 0);
  ck_assert_int_eq(myelin_harness_push(h, "run", task_msg()), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 2);
  const double *d = field(myelin_harness_output(h, "map", 1), "data", 40);
  const double want[3] = {6.0143443123426739, 7.2889187514693106, 6.2938629051516868};
  for (int i = 0; i < 3; i++) NEAR(d[i], want[i], 1e-10);
  /* an integer tensor is refused with the field named */
  myelin_builder *b = myelin_builder_new("run");
  int32_t z[10] = {0};
  int64_t shape[2] = {2, N};
  myelin_build_tensor_copy(b, "data", MYELIN_I4, 2, shape, z);
  myelin_build_str(b, "subject", "s1");
  myelin_build_str(b, "task", "social");
  ck_assert_int_ne(myelin_harness_push(h, "run", myelin_builder_finish(b)), 0);
  ck_assert_msg(strstr(myelin_harness_error(h), "'data' must be a 2-D <f4 or <f8") != NULL, "%s",
                myelin_harness_error(h));
  myelin_harness_free(h);
}
END_TEST

/* energy_null with one permutation equals the energy on the explicitly
 * relabelled connectome (symmetric: permuted eigenvectors; directed:
 * permuted Gramian and e^{AT}). */
START_TEST(null_is_relabelled_connectome) {
  double A[N * N], Ap[N * N];
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++) A[i * N + j] = i == j ? 0 : ((i + 2) * (j + 1) % 7) / 7.0 + (i < j ? 0.1 : 0);
  int perm[N];
  unsigned long long seed = 42;
  ic_rand_perm(N, perm, &seed);
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++) Ap[i * N + j] = A[perm[i] * N + perm[j]];
  const char *models[3] = {"nctpy", "weninger", "nctpy, x0: previous"};
  for (int sym = 0; sym < 2; sym++) {
    if (sym) { /* mirror the upper triangle, relabel again */
      for (int i = 0; i < N; i++)
        for (int j = 0; j < i; j++) A[i * N + j] = A[j * N + i];
      for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) Ap[i * N + j] = A[perm[i] * N + perm[j]];
    }
    for (int v = 0; v < 3; v++) {
      /* weninger symmetrises from the upper triangle first and relabels the
       * symmetrised matrix (as the paper's randomMatrix on get_dCM's output),
       * which is not the upper triangle of a relabelled directed matrix */
      if (!sym && v == 1) continue;
      char *p1 = mt_strf("{energy: %s, null: 1, seed: 42}", models[v]), *p2 = mt_strf("{energy: %s}", models[v]);
      myelin_harness *h1 = harness(p1), *h2 = harness(p2);
      myelin_harness_push(h1, "connectome", conn_msg(N, A));
      myelin_harness_push(h2, "connectome", conn_msg(N, Ap));
      ck_assert_int_eq(myelin_harness_push(h1, "run", rest_msg()), 0);
      ck_assert_int_eq(myelin_harness_push(h2, "run", rest_msg()), 0);
      const char *ename = v == 1 ? "energy_weninger" : "energy_nctpy";
      const char *nname = v == 1 ? "energy_null_weninger" : "energy_null_nctpy";
      const double *nul = field(myelin_harness_output(h1, "map", 0), nname, 60);
      const double *e = field(myelin_harness_output(h2, "map", 0), ename, 60);
      for (int t = 0; t < 60; t++) NEAR(nul[t], e[t], 1e-9);
      myelin_harness_free(h1);
      myelin_harness_free(h2);
      free(p1);
      free(p2);
    }
  }
}
END_TEST

/* Splitting parcels over threads changes nothing, bit for bit. */
START_TEST(threads_identical) {
  myelin_harness *h1 = harness("{energy: none, per_parcel: true}");
  myelin_harness *h4 = harness("{energy: none, per_parcel: true, threads: 4}");
  myelin_harness *h9 = harness("{energy: none, per_parcel: true, threads: 9}"); /* more threads than parcels */
  myelin_harness *hs[3] = {h1, h4, h9};
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(myelin_harness_push(hs[i], "run", rest_msg()), 0);
    ck_assert_int_eq(myelin_harness_push(hs[i], "run", task_msg()), 0);
  }
  for (int i = 1; i < 3; i++)
    for (size_t m = 0; m < 2; m++) {
      size_t t = m ? 40 : 60;
      const double *a = field(myelin_harness_output(h1, "map", m), "per_parcel", t * N);
      const double *b = field(myelin_harness_output(hs[i], "map", m), "per_parcel", t * N);
      ck_assert(memcmp(a, b, t * N * sizeof *a) == 0);
    }
  for (int i = 0; i < 3; i++) myelin_harness_free(hs[i]);
}
END_TEST

/* The demo pipeline end to end: the example script writes the data, the
 * pipeline runs through `myelin run`, Python reads the outputs. */
START_TEST(pipeline_end_to_end) {
  MT_NEED_PYTHON("numpy msgpack", "the demo generator");
  const char *src = mt_env("MYELIN_SOURCE_DIR", ".");
  char *dir = mt_tmpdir(), *out = NULL;
  char *cmd = mt_strf("%s %s/examples/info_content_demo/make_demo.py %s --parcels 20 --trs 200",
                      mt_env("MYELIN_PYTHON", "/usr/bin/python3"), src, dir);
  ck_assert_msg(mt_run(cmd, &out) == 0, "%s", out);
  free(cmd);
  free(out);
  cmd = mt_strf("cd %s && DATA=%s %s run %s/pipelines/info_content.yaml --quiet --check-messages", dir, dir,
                mt_env("MYELIN_BIN", "myelin"), src);
  ck_assert_msg(mt_run(cmd, &out) == 0, "%s\n%s", cmd, out);
  free(cmd);
  free(out);
  /* without a connectome, energy must be switched off explicitly */
  char *yaml = mt_strf("%s/noconn.yaml", dir);
  mt_write(yaml, "name: noconn\nstages:\n"
                 "  - {id: runs, plugin: file_source, params: {path: runs.mpk}}\n"
                 "  - {id: info, plugin: info_content, inputs: {run: [runs]}}\n"
                 "  - {id: save, plugin: file_sink, inputs: [info.map], params: {path: noconn.mpk}}\n");
  cmd = mt_strf("cd %s && %s validate %s", dir, mt_env("MYELIN_BIN", "myelin"), yaml);
  ck_assert_int_eq(mt_run(cmd, &out), 2);
  ck_assert_msg(strstr(out, "noconn.yaml:4:") && strstr(out, "energy: none"), "%s", out);
  free(cmd);
  free(out);
  cmd = mt_strf("cd %s && %s run %s --set info.energy=none --quiet", dir, mt_env("MYELIN_BIN", "myelin"), yaml);
  ck_assert_msg(mt_run(cmd, &out) == 0, "%s", out);
  char *mpk = mt_strf("%s/noconn.mpk", dir);
  ck_assert_int_gt(mt_file_size(mpk), 1000);
  free(mpk);
  free(cmd);
  free(out);
  free(yaml);
  /* OUT defaults to out/ in the working directory */
  cmd = mt_strf("%s %s/examples/info_content_demo/check_demo.py %s %s/out",
                mt_env("MYELIN_PYTHON", "/usr/bin/python3"), src, dir, dir);
  ck_assert_msg(mt_run(cmd, &out) == 0, "%s", out);
  free(cmd);
  free(out);
  rm_rf(dir);
  free(dir);
}
END_TEST

/* The same demo as NIfTI/BIDS through fmri_source with an atlas. */
START_TEST(bids_end_to_end) {
  MT_NEED_PYTHON("numpy msgpack nibabel", "the BIDS demo generator");
  const char *src = mt_env("MYELIN_SOURCE_DIR", "."), *py = mt_env("MYELIN_PYTHON", "/usr/bin/python3");
  char *dir = mt_tmpdir(), *out = NULL;
  char *cmd = mt_strf("%s %s/examples/info_content_demo/make_demo.py %s --parcels 16 --trs 120 --bids", py, src, dir);
  ck_assert_msg(mt_run(cmd, &out) == 0, "%s", out);
  free(cmd);
  free(out);
  cmd = mt_strf("DATA=%s OUT=%s %s run %s/examples/info_content_demo/bids.yaml --quiet --check-messages", dir,
                dir, mt_env("MYELIN_BIN", "myelin"), src);
  ck_assert_msg(mt_run(cmd, &out) == 0, "%s\n%s", cmd, out);
  free(cmd);
  free(out);
  cmd = mt_strf("%s %s/examples/info_content_demo/check_demo.py %s %s --bids", py, src, dir, dir);
  ck_assert_msg(mt_run(cmd, &out) == 0, "%s", out);
  ck_assert_msg(strstr(out, "ok") != NULL, "%s", out);
  free(cmd);
  free(out);
  rm_rf(dir);
  free(dir);
}
END_TEST

int main(void) {
  Suite *s = suite_create("info_content");
  TCase *tc = tcase_create("plugin");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, held_until_ready_weninger);
  tcase_add_test(tc, nctpy_previous_and_null);
  tcase_add_test(tc, energy_names_per_model);
  tcase_add_test(tc, no_energy_bits);
  tcase_add_test(tc, reference_file);
  tcase_add_test(tc, errors);
  tcase_add_test(tc, flush_without_connectome);
  tcase_add_test(tc, controllability_output);
  tcase_add_test(tc, per_subject_reference);
  tcase_add_test(tc, directed_connectome);
  tcase_add_test(tc, raw_options);
  tcase_add_test(tc, null_is_relabelled_connectome);
  tcase_add_test(tc, threads_identical);
  tcase_add_test(tc, pipeline_end_to_end);
  tcase_add_test(tc, bids_end_to_end);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
