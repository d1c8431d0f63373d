/*
 * test_npy_sink.c — the npy_sink stage through the harness: path patterns,
 * bit-exact .npy output (checked by numpy when available), the
 * written-twice error, .npz collection committed at end of stream, and
 * errors for missing fields.
 */
#include "myelin/harness.h"
#include "myelin/npy.h"
#include "testutil.h"

static char *tmp;
static void setup(void) { tmp = mt_tmpdir(); }
static void teardown(void) {
  char *cmd = mt_strf("rm -rf %s", tmp);
  ck_assert_int_eq(system(cmd), 0);
  free(cmd);
  free(tmp);
}

static myelin_harness *sink(const char *params) {
  char err[1024];
  myelin_harness *h = myelin_harness_new("npy_sink", params, err, sizeof err);
  ck_assert_msg(h != NULL, "harness: %s", err);
  return h;
}

static const double vals[6] = {0.1, -2.5, 3e-300, 1e300, -0.0, 7.0};

static myelin_msg *map_msg(const char *subject, int64_t seq, int64_t index) {
  myelin_builder *b = myelin_builder_new("map");
  myelin_build_int(b, "seq", seq);
  myelin_build_str(b, "subject", subject);
  myelin_build_str(b, "stat", "isc");
  myelin_build_int(b, "index", index);
  double *d = myelin_build_tensor(b, "data", MYELIN_F8, 2, (const int64_t[]){2, 3});
  for (int i = 0; i < 6; i++) d[i] = vals[i] * (double)(seq + 1);
  myelin_msg *m = myelin_builder_finish(b);
  ck_assert_ptr_nonnull(m);
  return m;
}

START_TEST(npy_pattern_files_bit_exact) {
  char *params = mt_strf("{path: '%s/out/{subject}/{stat}_{seq:03}.npy'}", tmp);
  myelin_harness *h = sink(params);
  ck_assert_int_eq(myelin_harness_push(h, NULL, map_msg("sub-01", 0, 0)), 0);
  ck_assert_int_eq(myelin_harness_push(h, NULL, map_msg("sub-01", 1, 1)), 0);
  ck_assert_int_eq(myelin_harness_push(h, NULL, map_msg("sub/02", 2, 2)), 0);
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  myelin_harness_free(h);
  char *p = mt_strf("%s/out/sub-01/isc_001.npy", tmp);
  myelin_array a;
  char err[512];
  ck_assert_msg(myelin_npy_read(p, &a, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(a.dtype, MYELIN_F8);
  ck_assert_int_eq(a.shape[1], 3);
  for (int i = 0; i < 6; i++) {
    double w = vals[i] * 2.0;
    ck_assert_int_eq(memcmp((double *)a.data + i, &w, 8), 0);
  }
  myelin_array_free(&a);
  char *q = mt_strf("%s/out/sub_02/isc_002.npy", tmp); /* '/' in a value cannot make folders */
  ck_assert_int_gt(mt_file_size(q), 0);
  if (mt_python_or_skip("numpy", "the Python reference check")) {
    char *cmd = mt_strf("%s -c \"import numpy as np; a=np.load('%s'); "
                        "v=np.array([0.1,-2.5,3e-300,1e300,-0.0,7.0])*2; "
                        "assert a.dtype=='<f8' and a.shape==(2,3) and a.tobytes()==v.reshape(2,3).tobytes(); print('ok')\"",
                        mt_env("MYELIN_PYTHON", "/usr/bin/python3"), p), *out;
    ck_assert_msg(mt_run(cmd, &out) == 0, "%s", out);
    free(out);
    free(cmd);
  }
  free(p);
  free(q);
  free(params);
}
END_TEST

START_TEST(same_path_twice_is_an_error) {
  char *params = mt_strf("{path: '%s/{subject}.npy'}", tmp);
  myelin_harness *h = sink(params);
  ck_assert_int_eq(myelin_harness_push(h, NULL, map_msg("a", 0, 0)), 0);
  ck_assert_int_ne(myelin_harness_push(h, NULL, map_msg("a", 1, 1)), 0);
  ck_assert_msg(strstr(myelin_harness_error(h), "written twice") != NULL, "%s", myelin_harness_error(h));
  myelin_harness_free(h);
  /* the first file is intact (first message's values) */
  char *p = mt_strf("%s/a.npy", tmp);
  myelin_array a;
  char err[256];
  ck_assert_int_eq(myelin_npy_read(p, &a, err, sizeof err), 0);
  ck_assert_double_eq(((double *)a.data)[5], 7.0);
  myelin_array_free(&a);
  free(p);
  free(params);
}
END_TEST

START_TEST(npz_collects_until_eos) {
  char *params = mt_strf("{path: %s/all.npz, key: 's{index}'}", tmp);
  char *p = mt_strf("%s/all.npz", tmp);
  myelin_harness *h = sink(params);
  for (int i = 0; i < 3; i++) ck_assert_int_eq(myelin_harness_push(h, NULL, map_msg("x", i, 10 + i)), 0);
  ck_assert_int_eq(mt_file_size(p), -1);
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  myelin_harness_free(h);
  char **names, err[256];
  ck_assert_int_eq(myelin_npz_list(p, &names, err, sizeof err), 3);
  ck_assert_str_eq(names[0], "s10");
  ck_assert_str_eq(names[2], "s12");
  for (int i = 0; i < 3; i++) free(names[i]);
  free(names);
  myelin_array a;
  ck_assert_int_eq(myelin_npz_read(p, "s12", &a, err, sizeof err), 0);
  ck_assert_double_eq(((double *)a.data)[5], 21.0);
  myelin_array_free(&a);
  if (mt_python_or_skip("numpy", "the Python reference check")) {
    char *cmd = mt_strf("%s -c \"import numpy as np; z=np.load('%s'); assert z['s11'][1,2]==14.0; print('ok')\"",
                        mt_env("MYELIN_PYTHON", "/usr/bin/python3"), p), *out;
    ck_assert_msg(mt_run(cmd, &out) == 0, "%s", out);
    free(out);
    free(cmd);
  }
  /* default keys arr_{seq}; a duplicate key is an error */
  free(params);
  params = mt_strf("{path: %s/dup.npz}", tmp);
  h = sink(params);
  ck_assert_int_eq(myelin_harness_push(h, NULL, map_msg("x", 4, 0)), 0);
  ck_assert_int_ne(myelin_harness_push(h, NULL, map_msg("x", 4, 1)), 0);
  ck_assert_msg(strstr(myelin_harness_error(h), "arr_4") != NULL, "%s", myelin_harness_error(h));
  myelin_harness_free(h);
  char *d = mt_strf("%s/dup.npz", tmp);
  ck_assert_int_eq(mt_file_size(d), -1); /* aborted: nothing left */
  free(d);
  free(p);
  free(params);
}
END_TEST

START_TEST(fields_and_errors) {
  char *params = mt_strf("{path: '%s/{task}.npy'}", tmp);
  myelin_harness *h = sink(params);
  ck_assert_int_ne(myelin_harness_push(h, NULL, map_msg("x", 0, 0)), 0);
  ck_assert_msg(strstr(myelin_harness_error(h), "{task}") != NULL, "%s", myelin_harness_error(h));
  myelin_harness_free(h);
  free(params);
  /* spikes: write the step tensor; samples fall back to x */
  params = mt_strf("{path: '%s/step_{index}.npy', field: step}", tmp);
  h = sink(params);
  myelin_builder *b = myelin_builder_new("spikes");
  const uint32_t st[3] = {0, 0, 5};
  myelin_build_tensor_copy(b, "step", MYELIN_U4, 1, (const int64_t[]){3}, st);
  myelin_build_int(b, "index", 7);
  ck_assert_int_eq(myelin_harness_push(h, NULL, myelin_builder_finish(b)), 0);
  b = myelin_builder_new("spikes");
  myelin_build_int(b, "index", 8);
  ck_assert_int_ne(myelin_harness_push(h, NULL, myelin_builder_finish(b)), 0);
  ck_assert_msg(strstr(myelin_harness_error(h), "'step'") != NULL, "%s", myelin_harness_error(h));
  myelin_harness_free(h);
  char *p = mt_strf("%s/step_7.npy", tmp);
  myelin_array a;
  char err[256];
  ck_assert_int_eq(myelin_npy_read(p, &a, err, sizeof err), 0);
  ck_assert_int_eq(a.dtype, MYELIN_U4);
  ck_assert_uint_eq(((uint32_t *)a.data)[2], 5);
  myelin_array_free(&a);
  free(p);
  free(params);
  params = mt_strf("{path: '%s/s{index:02}.npy'}", tmp);
  h = sink(params);
  b = myelin_builder_new("sample");
  const uint8_t x[2] = {3, 4};
  myelin_build_tensor_copy(b, "x", MYELIN_U1, 1, (const int64_t[]){2}, x);
  myelin_build_int(b, "index", 3);
  ck_assert_int_eq(myelin_harness_push(h, NULL, myelin_builder_finish(b)), 0);
  myelin_harness_free(h);
  p = mt_strf("%s/s03.npy", tmp);
  ck_assert_int_gt(mt_file_size(p), 0);
  free(p);
  free(params);
  char err2[512] = "";
  ck_assert_ptr_null(myelin_harness_new("npy_sink", "{path: out.txt}", err2, sizeof err2));
  ck_assert_msg(strstr(err2, ".npy") != NULL, "%s", err2);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("npy_sink");
  TCase *tc = tcase_create("sink");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, npy_pattern_files_bit_exact);
  tcase_add_test(tc, same_path_twice_is_an_error);
  tcase_add_test(tc, npz_collects_until_eos);
  tcase_add_test(tc, fields_and_errors);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
