/*
 * test_runs.c — features per (task, run) in the encoding plugin, through the
 * harness: pairing of each run with its own features, the precedence
 * (task, run) > task > no task, duplicate keys, the arrival-order rule and
 * average_subjects over runs with different features.
 *
 * Data: three independent "stories" A, B, C [T, F] (LCG uniforms) and brain
 * runs planted on one of them, Y_S = 5 + S W + 0.5 E [T, V]. Encoding Y_A
 * with A gives r near 0.97; with B or C (the wrong pairing) r near 0. The
 * expected map of a run is the plugin's own map for that run with a single
 * task-wide features message (the numerics are checked against sklearn in
 * test_ridge.c and test_plugin.c); here only the routing is under test, so
 * the comparison is exact.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "myelin/harness.h"
#include "myelin/msg.h"
#include "testutil.h"

#define T 80
#define F 4
#define V 3
#define PARAMS "{delays: [0], scale_y: none}"

enum { SA, SB, SC, NSTORY };
static double story[NSTORY][T * F];
static float brain[NSTORY][T * V];

static void make_stories(void) {
  uint64_t s = 2024;
#define U() (s = (1664525u * s + 1013904223u) % 4294967296u, (double)s / 4294967296.0 - 0.5)
  double W[F * V];
  for (int i = 0; i < F * V; i++) W[i] = 1.0 + U();
  for (int k = 0; k < NSTORY; k++)
    for (int i = 0; i < T * F; i++) story[k][i] = U();
  for (int k = 0; k < NSTORY; k++)
    for (int t = 0; t < T; t++)
      for (int v = 0; v < V; v++) {
        double acc = 5.0;
        for (int f = 0; f < F; f++) acc += story[k][t * F + f] * W[f * V + v];
        brain[k][t * V + v] = (float)(acc + 0.5 * U());
      }
#undef U
}

/* A features message: task may be NULL; run < 0 = no `run`; run_text, if
 * given, is sent as a string instead. rows <= T first rows of story k. */
static myelin_msg *feat_msg(const char *task, int run, const char *run_text, int k, size_t rows) {
  myelin_builder *b = myelin_builder_new("features");
  if (task) myelin_build_str(b, "task", task);
  if (run_text) myelin_build_str(b, "run", run_text);
  else if (run >= 0) myelin_build_int(b, "run", run);
  int64_t shape[2] = {(int64_t)rows, F};
  myelin_build_tensor_copy(b, "data", MYELIN_F8, 2, shape, story[k]);
  myelin_msg *m = myelin_builder_finish(b);
  ck_assert_ptr_nonnull(m);
  return m;
}

/* A run message [rows, V]: brain of story k, times scale, plus shift. */
static myelin_msg *run_msg(const char *subject, const char *task, int run, int k, size_t rows,
                           float scale, float shift) {
  static float y[T * V];
  for (size_t i = 0; i < rows * V; i++) y[i] = scale * brain[k][i] + shift;
  myelin_builder *b = myelin_builder_new("run");
  myelin_build_str(b, "subject", subject);
  myelin_build_str(b, "task", task);
  myelin_build_int(b, "run", run);
  myelin_build_float(b, "tr", 2.0);
  int64_t shape[2] = {(int64_t)rows, V};
  myelin_build_tensor_copy(b, "data", MYELIN_F4, 2, shape, y);
  myelin_msg *m = myelin_builder_finish(b);
  ck_assert_ptr_nonnull(m);
  return m;
}

static myelin_msg *run1(const char *subject, const char *task, int run, int k) {
  return run_msg(subject, task, run, k, T, 1.0f, 0.0f);
}

static myelin_harness *harness(const char *params) {
  char err[512] = "";
  myelin_harness *h = myelin_harness_new("encoding", params, err, sizeof err);
  ck_assert_msg(h != NULL, "harness: %s", err);
  return h;
}

static void push_ok(myelin_harness *h, const char *port, myelin_msg *m) {
  int rc = myelin_harness_push(h, port, m);
  ck_assert_msg(rc == 0, "push on %s failed: %s", port, myelin_harness_error(h));
}

static const double *map_r(const myelin_msg *m) {
  myelin_tensor t;
  ck_assert_int_eq(myelin_msg_tensor(m, "data", &t), 0);
  ck_assert_uint_eq(t.count, V);
  return t.data;
}

/* The r map of brain story `yk` encoded with story `fk` alone (rows rows). */
static void ref_r(int fk, int yk, size_t rows, double out[V]) {
  myelin_harness *h = harness(PARAMS);
  push_ok(h, "features", feat_msg("solo", -1, NULL, fk, rows));
  push_ok(h, "brain", run_msg("01", "solo", 1, yk, rows, 1.0f, 0.0f));
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 1);
  memcpy(out, map_r(myelin_harness_output(h, "map", 0)), V * sizeof *out);
  myelin_harness_free(h);
}

/* Map i has this task and run, and the r map of (fk, yk). */
static void check_map(myelin_harness *h, size_t i, const char *task, int run, int fk, int yk,
                      double tol) {
  myelin_msg *m = myelin_harness_output(h, "map", i);
  ck_assert_ptr_nonnull(m);
  char buf[64];
  ck_assert_int_eq(myelin_msg_str(m, "task", buf, sizeof buf), 0);
  ck_assert_str_eq(buf, task);
  int64_t r;
  ck_assert_int_eq(myelin_msg_int(m, "run", &r), 0);
  ck_assert_int_eq(r, run);
  double want[V];
  ref_r(fk, yk, T, want);
  const double *got = map_r(m);
  for (int v = 0; v < V; v++)
    ck_assert_msg(fabs(got[v] - want[v]) <= tol, "map %zu (task %s run %d) voxel %d: r %.12f, "
                  "expected %.12f (features of story %d)", i, task, run, v, got[v], want[v], fk);
}

static void assert_error(myelin_harness *h, const char *a, const char *b) {
  const char *e = myelin_harness_error(h);
  ck_assert_msg(strstr(e, a) && (!b || strstr(e, b)), "error '%s' should name '%s' and '%s'", e,
                a, b ? b : "");
}

START_TEST(test_planted_pairing) {
  /* The data discriminate: right pairing r high, wrong pairing r near 0. */
  double r[V];
  for (int k = 0; k < NSTORY; k++) {
    ref_r(k, k, T, r);
    for (int v = 0; v < V; v++) ck_assert_msg(r[v] > 0.8, "story %d voxel %d: r %.3f", k, v, r[v]);
  }
  for (int k = 0; k < NSTORY; k++) {
    ref_r((k + 1) % NSTORY, k, T, r);
    for (int v = 0; v < V; v++) ck_assert_msg(fabs(r[v]) < 0.3, "wrong pairing %d: r %.3f", k, r[v]);
  }
}
END_TEST

START_TEST(test_each_run_its_own_features) {
  /* Features first: each run is computed at once with its own story. */
  myelin_harness *h = harness(PARAMS);
  push_ok(h, "features", feat_msg("story", 1, NULL, SA, T));
  push_ok(h, "features", feat_msg("story", 2, NULL, SB, T));
  push_ok(h, "brain", run1("01", "story", 2, SB));
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 1);
  push_ok(h, "brain", run1("01", "story", 1, SA));
  push_ok(h, "brain", run1("02", "story", 2, SB));
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 3);
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  check_map(h, 0, "story", 2, SB, SB, 1e-12);
  check_map(h, 1, "story", 1, SA, SA, 1e-12);
  check_map(h, 2, "story", 2, SB, SB, 1e-12);
  myelin_harness_free(h);

  /* Runs first: they wait; features sent as BIDS text ("01", "2") match the
   * integer runs; swapped stories give the wrong-pairing maps. */
  h = harness(PARAMS);
  push_ok(h, "brain", run1("01", "story", 1, SA));
  push_ok(h, "brain", run1("01", "story", 2, SB));
  push_ok(h, "features", feat_msg("other", 1, NULL, SA, T));
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 0);
  push_ok(h, "features", feat_msg("story", -1, "2", SA, T));
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 1);
  push_ok(h, "features", feat_msg("story", -1, "01", SB, T));
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 2);
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  check_map(h, 0, "story", 2, SA, SB, 1e-12);
  check_map(h, 1, "story", 1, SB, SA, 1e-12);
  for (size_t i = 0; i < 2; i++)
    for (int v = 0; v < V; v++) ck_assert(fabs(map_r(myelin_harness_output(h, "map", i))[v]) < 0.3);
  myelin_harness_free(h);
}
END_TEST

START_TEST(test_precedence) {
  /* (story, 2) = B, story = A, no task = C; runs 1, 2, 3 of story and run 1
   * of "other": every run gets the most specific match. */
  myelin_harness *h = harness(PARAMS);
  push_ok(h, "features", feat_msg("story", 2, NULL, SB, T));
  push_ok(h, "features", feat_msg("story", -1, NULL, SA, T));
  push_ok(h, "features", feat_msg(NULL, -1, NULL, SC, T));
  push_ok(h, "brain", run1("01", "story", 2, SB));
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 1); /* exact match: at once */
  push_ok(h, "brain", run1("01", "story", 1, SA));
  push_ok(h, "brain", run1("01", "other", 1, SC));
  push_ok(h, "brain", run1("01", "story", 3, SA));
  /* story has run-specific features: its other runs wait for the end of
   * stream (a run-specific message could still come); task-less too. */
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 1);
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 4);
  check_map(h, 0, "story", 2, SB, SB, 1e-12);
  check_map(h, 1, "story", 1, SA, SA, 1e-12);
  check_map(h, 2, "other", 1, SC, SC, 1e-12);
  check_map(h, 3, "story", 3, SA, SA, 1e-12);
  myelin_harness_free(h);

  /* Task-wide features without any run-specific ones: at once (as before). */
  h = harness(PARAMS);
  push_ok(h, "features", feat_msg("story", -1, NULL, SA, T));
  push_ok(h, "brain", run1("01", "story", 1, SA));
  push_ok(h, "brain", run1("01", "story", 2, SA));
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 2);
  /* Run-specific features of another task do not serve a run. */
  push_ok(h, "features", feat_msg("other", 1, NULL, SB, T));
  push_ok(h, "brain", run1("01", "third", 1, SC));
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 2);
  ck_assert_int_ne(myelin_harness_eos(h), 0);
  assert_error(h, "task third, run 1", "subject 01");
  myelin_harness_free(h);
}
END_TEST

START_TEST(test_duplicate_keys) {
  myelin_harness *h = harness(PARAMS);
  push_ok(h, "features", feat_msg("story", 1, NULL, SA, T));
  push_ok(h, "features", feat_msg("story", 2, NULL, SB, T));
  push_ok(h, "features", feat_msg("story", -1, NULL, SC, T));
  push_ok(h, "features", feat_msg("other", 1, NULL, SC, T));
  ck_assert_int_ne(myelin_harness_push(h, "features", feat_msg("story", -1, "001", SB, T)), 0);
  assert_error(h, "task story, run 1 arrived twice", NULL);
  myelin_harness_free(h);

  h = harness(PARAMS);
  push_ok(h, "features", feat_msg("story", -1, NULL, SA, T));
  ck_assert_int_ne(myelin_harness_push(h, "features", feat_msg("story", -1, NULL, SA, T)), 0);
  assert_error(h, "task story (without `run`) arrived twice", NULL);
  myelin_harness_free(h);

  h = harness(PARAMS);
  push_ok(h, "features", feat_msg(NULL, -1, NULL, SA, T));
  ck_assert_int_ne(myelin_harness_push(h, "features", feat_msg(NULL, -1, NULL, SA, T)), 0);
  assert_error(h, "task (any)", "twice");
  myelin_harness_free(h);

  /* `run` without `task` is refused, naming the run. */
  h = harness(PARAMS);
  ck_assert_int_ne(myelin_harness_push(h, "features", feat_msg(NULL, 4, NULL, SA, T)), 0);
  assert_error(h, "`run` 4 but no `task`", NULL);
  myelin_harness_free(h);
}
END_TEST

START_TEST(test_arrival_order) {
  /* A run computed with the task-wide features cannot be claimed later: the
   * late run-specific message is refused, naming task, run and subject. */
  myelin_harness *h = harness(PARAMS);
  push_ok(h, "features", feat_msg("story", -1, NULL, SA, T));
  push_ok(h, "brain", run1("07", "story", 1, SA));
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 1);
  push_ok(h, "features", feat_msg("story", 3, NULL, SC, T)); /* no run 3 yet: accepted */
  ck_assert_int_ne(myelin_harness_push(h, "features", feat_msg("story", 1, NULL, SB, T)), 0);
  assert_error(h, "task story, run 1 arrived after", "subject 07");
  myelin_harness_free(h);

  /* The same messages, run-specific first: run 1 gets B. */
  h = harness(PARAMS);
  push_ok(h, "features", feat_msg("story", 1, NULL, SB, T));
  push_ok(h, "features", feat_msg("story", -1, NULL, SA, T));
  push_ok(h, "brain", run1("07", "story", 1, SA));
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 1);
  check_map(h, 0, "story", 1, SB, SA, 1e-12);
  myelin_harness_free(h);

  /* Features before the run but run-specific after the task-wide: same. */
  h = harness(PARAMS);
  push_ok(h, "features", feat_msg("story", -1, NULL, SA, T));
  push_ok(h, "features", feat_msg("story", 1, NULL, SB, T));
  push_ok(h, "brain", run1("07", "story", 1, SA));
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  check_map(h, 0, "story", 1, SB, SA, 1e-12);
  myelin_harness_free(h);

  /* Once the task has run-specific features, a run served only by the
   * task-wide ones is held, so a later message for its run still claims it. */
  h = harness(PARAMS);
  push_ok(h, "features", feat_msg("story", -1, NULL, SA, T));
  push_ok(h, "features", feat_msg("story", 2, NULL, SB, T));
  push_ok(h, "brain", run1("07", "story", 1, SA));
  push_ok(h, "brain", run1("07", "story", 4, SA));
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 0);
  push_ok(h, "features", feat_msg("story", 1, NULL, SC, T));
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 1);
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 2);
  check_map(h, 0, "story", 1, SC, SA, 1e-12);
  check_map(h, 1, "story", 4, SA, SA, 1e-12);
  myelin_harness_free(h);
}
END_TEST

START_TEST(test_average_runs_own_features) {
  /* Subject 02 = 2 Y - 1 (a positive affine map per voxel): the average of
   * a run over subjects has the r map of subject 01's run. Task-wide
   * features A arrive first, then run 2's own B: each run's average is
   * modelled with its own features, whatever the order. */
  myelin_harness *h = harness("{delays: [0], scale_y: none, average_subjects: true}");
  push_ok(h, "features", feat_msg("story", -1, NULL, SA, T));
  push_ok(h, "brain", run1("01", "story", 1, SA));
  push_ok(h, "brain", run1("01", "story", 2, SB));
  push_ok(h, "brain", run_msg("02", "story", 2, SB, T, 2.0f, -1.0f));
  push_ok(h, "brain", run_msg("02", "story", 1, SA, T, 2.0f, -1.0f));
  push_ok(h, "features", feat_msg("story", 2, NULL, SB, T));
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 0);
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 2);
  check_map(h, 0, "story", 1, SA, SA, 1e-5);
  check_map(h, 1, "story", 2, SB, SB, 1e-5);
  for (size_t i = 0; i < 2; i++) {
    myelin_msg *m = myelin_harness_output(h, "map", i);
    char buf[64];
    ck_assert_int_eq(myelin_msg_str(m, "subject", buf, sizeof buf), 0);
    ck_assert_str_eq(buf, "average");
    ck_assert_uint_eq(myelin_obj_len(myelin_msg_get(m, "subjects")), 2);
  }
  myelin_harness_free(h);

  /* Runs of different lengths (stories are rarely cut evenly) average per
   * run with their own features. */
  h = harness("{delays: [0], scale_y: none, average_subjects: true}");
  push_ok(h, "features", feat_msg("story", 1, NULL, SA, T));
  push_ok(h, "features", feat_msg("story", 2, NULL, SB, 60));
  push_ok(h, "brain", run1("01", "story", 1, SA));
  push_ok(h, "brain", run_msg("01", "story", 2, SB, 60, 1.0f, 0.0f));
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 2);
  double want[V];
  ref_r(SB, SB, 60, want);
  const double *got = map_r(myelin_harness_output(h, "map", 1));
  for (int v = 0; v < V; v++) ck_assert_double_eq_tol(got[v], want[v], 1e-9);
  myelin_harness_free(h);

  /* Without run-specific features the runs of a task are one average (as
   * before): one map, no `run`, every run listed; unequal shapes are named. */
  h = harness("{delays: [0], scale_y: none, average_subjects: true}");
  push_ok(h, "features", feat_msg("story", -1, NULL, SA, T));
  push_ok(h, "brain", run1("01", "story", 1, SA));
  push_ok(h, "brain", run_msg("01", "story", 2, SA, T, 2.0f, -1.0f));
  push_ok(h, "brain", run1("02", "story", 1, SA));
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "map"), 1);
  myelin_msg *m = myelin_harness_output(h, "map", 0);
  ck_assert(!myelin_obj_exists(myelin_msg_get(m, "run")));
  ck_assert_uint_eq(myelin_obj_len(myelin_msg_get(m, "subjects")), 3);
  ref_r(SA, SA, T, want);
  got = map_r(m);
  for (int v = 0; v < V; v++) ck_assert_double_eq_tol(got[v], want[v], 1e-5);
  myelin_harness_free(h);

  h = harness("{delays: [0], average_subjects: true}");
  push_ok(h, "features", feat_msg("story", -1, NULL, SA, T));
  push_ok(h, "brain", run1("01", "story", 1, SA));
  push_ok(h, "brain", run_msg("01", "story", 2, SB, 60, 1.0f, 0.0f));
  ck_assert_int_ne(myelin_harness_eos(h), 0);
  assert_error(h, "runs 1 and 2 of task story have different shapes", "run-specific");
  myelin_harness_free(h);
}
END_TEST

START_TEST(test_pipeline_per_run) {
  /* `myelin run`: file_source (one features message per run, "01" as text
   * and 2 as an integer) + fmri_source (BIDS run-01, run-02 of one task, of
   * different lengths) -> encoding -> npy_sink; runs_e2e.py plants each
   * run's response on its own word events and checks the r maps. */
  MT_NEED_PYTHON("numpy nibabel msgpack", "runs_e2e.py");
  const char *py = mt_env("MYELIN_PYTHON", "/usr/bin/python3"), *bin = mt_env("MYELIN_BIN", "myelin");
  char *script = mt_strf("%s/tests/encoding/runs_e2e.py", mt_env("MYELIN_SOURCE_DIR", "."));
  static const struct {
    const char *make, *params, *folder, *check;
  } cases[] = {
      {"", "", "encoding", "--expect right"},
      {"", ", average_subjects: true", "avg", "--expect right --maps 2 --dir avg"},
      {"--swap", "", "encoding", "--expect wrong"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char *dir = mt_tmpdir(), *out = NULL;
    char *yaml = mt_strf("%s/runs.yaml", dir);
    mt_write(yaml, mt_strf(
        "name: encoding-runs\n"
        "stages:\n"
        "  - {id: words, plugin: file_source, params: {path: %s/features.mpk}}\n"
        "  - {id: brain, plugin: fmri_source, params: {path: %s/bids, mask: auto}}\n"
        "  - id: encode\n"
        "    plugin: encoding\n"
        "    inputs: {features: [words], brain: [brain]}\n"
        "    params: {delays: [0, 1, 2, 3]%s}\n"
        "  - {id: save, plugin: npy_sink, inputs: [encode], "
        "params: {path: \"%s/%s/r_{subject}_{run}.npy\"}}\n",
        dir, dir, cases[i].params, dir, cases[i].folder));
    char *cmd = mt_strf("%s %s make %s %s && %s run %s --quiet && %s %s check %s %s", py, script,
                        dir, cases[i].make, bin, yaml, py, script, dir, cases[i].check);
    int rc = mt_run(cmd, &out);
    ck_assert_msg(rc == 0, "case %zu failed (%d):\n%s", i, rc, out);
    ck_assert(strstr(out, "maps, pairing ") && strstr(out, ": as expected"));
    free(out);
    mt_run(mt_strf("rm -rf %s", dir), NULL);
  }
}
END_TEST

int main(void) {
  Suite *s = suite_create("encoding_runs");
  TCase *tc = tcase_create("runs");
  tcase_add_checked_fixture(tc, make_stories, NULL);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_planted_pairing);
  tcase_add_test(tc, test_each_run_its_own_features);
  tcase_add_test(tc, test_precedence);
  tcase_add_test(tc, test_duplicate_keys);
  tcase_add_test(tc, test_arrival_order);
  tcase_add_test(tc, test_average_runs_own_features);
  tcase_add_test(tc, test_pipeline_per_run);
  suite_add_tcase(s, tc);
  return mt_run_suite(s);
}
