/*
 * Unit tests of runtime modules: env expansion, typed params, "did you
 * mean", kind compatibility, and the plugin harness on core plugins.
 */
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "internal.h"
#include "myelin/harness.h"
#include "testutil.h"

START_TEST(env_expansion) {
  setenv("MT_X", "abc", 1);
  unsetenv("MT_UNSET");
  char *bad = NULL;
  char *s = expand_env("a/${MT_X}/${MT_UNSET:-dflt}/$x/${", &bad);
  ck_assert_str_eq(s, "a/abc/dflt/$x/${");
  free(s);
  s = expand_env("${MT_UNSET}", &bad);
  ck_assert_ptr_null(s);
  ck_assert_str_eq(bad, "MT_UNSET");
  free(bad);
}
END_TEST

static const myelin_param_def defs[] = {
    {.name = "steps", .type = MYELIN_PARAM_INT, .def = "32", .has_range = 1, .min = 1, .max = 100},
    {.name = "gain", .type = MYELIN_PARAM_FLOAT, .def = "1.5"},
    {.name = "method", .type = MYELIN_PARAM_ENUM, .def = "rate", .choices = "rate|latency"},
    {.name = "hidden", .type = MYELIN_PARAM_INT_LIST, .def = "[500, 100]"},
    {.name = "on", .type = MYELIN_PARAM_BOOL, .def = "false"},
    {.name = "path", .type = MYELIN_PARAM_PATH},
    {0}};

START_TEST(params_defaults_and_set) {
  myelin_diag d = {0};
  myelin_params *p = params_new(defs, &d, "t");
  ck_assert_uint_eq(d.n, 0);
  ck_assert_int_eq(myelin_param_int(p, "steps"), 32);
  ck_assert_double_eq(myelin_param_float(p, "gain"), 1.5);
  ck_assert_str_eq(myelin_param_str(p, "method"), "rate");
  ck_assert_uint_eq(myelin_param_len(p, "hidden"), 2);
  ck_assert_int_eq(myelin_param_int_at(p, "hidden", 1), 100);
  ck_assert_int_eq(myelin_param_bool(p, "on"), 0);
  ck_assert_int_eq(myelin_param_is_set(p, "steps"), 0);
  ck_assert_int_eq(params_set_text(p, params_find(p, "steps"), "64", &d, "x"), 0);
  ck_assert_int_eq(myelin_param_int(p, "steps"), 64);
  ck_assert_int_eq(params_set_text(p, params_find(p, "hidden"), "7", &d, "x"), 0);
  ck_assert_uint_eq(myelin_param_len(p, "hidden"), 1);
  ck_assert_int_eq(myelin_param_int_at(p, "hidden", 0), 7);
  ck_assert_int_eq(params_set_text(p, params_find(p, "on"), "yes", &d, "x"), 0);
  ck_assert_int_eq(myelin_param_bool(p, "on"), 1);
  ck_assert_uint_eq(d.n, 0);
  /* errors: out of range, wrong type, bad choice, list for scalar */
  ck_assert_int_ne(params_set_text(p, params_find(p, "steps"), "1000", &d, "x"), 0);
  ck_assert_int_ne(params_set_text(p, params_find(p, "gain"), "fast", &d, "x"), 0);
  ck_assert_int_ne(params_set_text(p, params_find(p, "method"), "delta", &d, "x"), 0);
  ck_assert_int_ne(params_set_text(p, params_find(p, "steps"), "[1, 2]", &d, "x"), 0);
  ck_assert_uint_eq(d.n, 4);
  ck_assert_ptr_nonnull(strstr(d.lines[0], "out of range"));
  ck_assert_ptr_nonnull(strstr(d.lines[2], "rate|latency"));
  ck_assert_int_eq(myelin_param_int(p, "steps"), 64); /* unchanged by the failures */
  diag_free(&d);
  params_free(p);
}
END_TEST

START_TEST(suggestions_and_kinds) {
  ck_assert_str_eq(params_suggest(defs, "step"), "steps");
  ck_assert_str_eq(params_suggest(defs, "hiden"), "hidden");
  ck_assert_ptr_null(params_suggest(defs, "completely_else"));
  ck_assert_int_eq(kinds_compatible("sample", "sample|tensor|volume"), 1);
  ck_assert_int_eq(kinds_compatible("spikes", "sample|tensor"), 0);
  ck_assert_int_eq(kinds_compatible("*", "spikes"), 1);
  ck_assert_int_eq(kinds_compatible("run|volume", "volume"), 1);
}
END_TEST

START_TEST(harness_core_plugins) {
  char err[1024];
  myelin_harness *g = myelin_harness_new("gen_source", "{count: 5, bytes: 8, fill: true}", err, sizeof err);
  ck_assert_msg(g != NULL, "%s", err);
  ck_assert_int_eq(myelin_harness_start(g), 0);
  ck_assert_uint_eq(myelin_harness_count(g, "out"), 5);
  myelin_harness *p = myelin_harness_new("passthrough", NULL, err, sizeof err);
  ck_assert_msg(p != NULL, "%s", err);
  for (size_t i = 0; i < 5; i++)
    ck_assert_int_eq(myelin_harness_push(p, "in", myelin_msg_ref(myelin_harness_output(g, "out", i))), 0);
  ck_assert_int_eq(myelin_harness_eos(p), 0);
  ck_assert_uint_eq(myelin_harness_count(p, NULL), 5);
  myelin_msg *m = myelin_harness_output(p, "out", 3);
  ck_assert_ptr_eq(m, myelin_harness_output(g, "out", 3)); /* forwarded, not copied */
  myelin_tensor t;
  ck_assert_int_eq(myelin_msg_tensor(m, "data", &t), 0);
  ck_assert_uint_eq(t.nbytes, 8);
  ck_assert_uint_eq(((const uint8_t *)t.data)[2], 5); /* (seq + i) & 0xff */
  ck_assert_uint_eq((uintptr_t)t.data % 64, 0);
  uint64_t seq;
  ck_assert_int_eq(myelin_msg_uint(m, "seq", &seq), 0);
  ck_assert_uint_eq(seq, 3);
  myelin_harness_free(p);
  myelin_harness_free(g);
  /* bad params are reported with the closest name */
  ck_assert_ptr_null(myelin_harness_new("gen_source", "{cuont: 5}", err, sizeof err));
  ck_assert_ptr_nonnull(strstr(err, "did you mean 'count'"));
  ck_assert_ptr_null(myelin_harness_new("no_such_plugin", NULL, err, sizeof err));
  ck_assert_ptr_nonnull(strstr(err, "unknown plugin 'no_such_plugin'"));
}
END_TEST

/* One rank (no MPI): rank 0 of 1, allreduce leaves the data as it is,
 * gather copies, bad dtypes/ops/roots are refused with a message. */
START_TEST(cluster_single_rank) {
  char err[256] = "";
  ck_assert_int_eq(cluster_rank(), 0);
  ck_assert_int_eq(cluster_size(), 1);
  double d[3] = {1.5, -2, 3};
  ck_assert_int_eq(cluster_allreduce(NULL, d, 3, MYELIN_F8, MYELIN_OP_SUM, err, sizeof err), 0);
  ck_assert_double_eq(d[0], 1.5);
  ck_assert_double_eq(d[1], -2);
  int64_t i[2] = {7, -9};
  ck_assert_int_eq(cluster_allreduce(NULL, i, 2, MYELIN_I8, MYELIN_OP_MAX, err, sizeof err), 0);
  ck_assert_int_eq(i[1], -9);
  ck_assert_int_eq(cluster_allreduce(NULL, i, 2, MYELIN_U2, MYELIN_OP_SUM, err, sizeof err), MYELIN_EINVAL);
  ck_assert_ptr_nonnull(strstr(err, "<u2"));
  ck_assert_int_eq(cluster_allreduce(NULL, d, 3, MYELIN_F8, (myelin_reduce_op)9, err, sizeof err), MYELIN_EINVAL);
  ck_assert_ptr_nonnull(strstr(err, "operator"));
  void *recv = NULL;
  size_t lens[1] = {0};
  ck_assert_int_eq(cluster_gather(NULL, "abcd", 4, 0, &recv, lens, err, sizeof err), 0);
  ck_assert_uint_eq(lens[0], 4);
  ck_assert_int_eq(memcmp(recv, "abcd", 4), 0);
  free(recv);
  ck_assert_int_eq(cluster_gather(NULL, "abcd", 4, 1, &recv, lens, err, sizeof err), MYELIN_EINVAL);
  ck_assert_ptr_nonnull(strstr(err, "root 1"));
  ck_assert_int_eq(cluster_bcast(NULL, d, sizeof d, 0, err, sizeof err), 0);
  ck_assert_int_eq(cluster_bcast(NULL, d, sizeof d, -1, err, sizeof err), MYELIN_EINVAL);
  ck_assert_int_eq(cluster_barrier(NULL, err, sizeof err), 0);
}
END_TEST

int main(void) {
  Suite *s = suite_create("runtime_unit");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, env_expansion);
  tcase_add_test(tc, params_defaults_and_set);
  tcase_add_test(tc, suggestions_and_kinds);
  tcase_add_test(tc, harness_core_plugins);
  tcase_add_test(tc, cluster_single_rank);
  suite_add_tcase(s, tc);
  return mt_run_suite(s);
}
