/*
 * test_e2e.c — dataset, spike_encoder and npy_sink inside real pipelines run
 * by the `myelin` CLI: the Fashion-MNIST demo pipeline, sklearn's digits CSV
 * written back to .npy/.npz and compared by numpy, and a bad input reported
 * with exit code 1 and the file named; relative inputs found next to the
 * pipeline file.
 */
#include "testutil.h"

#define FMNIST "/usr/share/datasets/fashion-mnist"
#define DIGITS "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz"

static char *tmp;
static void setup(void) { tmp = mt_tmpdir(); }
static void teardown(void) {
  char *cmd = mt_strf("rm -rf %s", tmp);
  ck_assert_int_eq(system(cmd), 0);
  free(cmd);
  free(tmp);
}

static const char *bin(void) { return mt_env("MYELIN_BIN", "myelin"); }

START_TEST(fashion_mnist_demo_pipeline) {
  MT_NEED_FILE(FMNIST "/t10k-images-idx3-ubyte.gz", "dataset-fashion-mnist");
  char *cmd = mt_strf("cd %s && LIMIT=50 OUT=%s %s run %s/pipelines/fashion_mnist_encode.yaml --quiet",
                      tmp, tmp, bin(), mt_env("MYELIN_SOURCE_DIR", ".")), *out;
  ck_assert_msg(mt_run(cmd, &out) == 0, "%s", out);
  free(out);
  free(cmd);
  cmd = mt_strf("%s cat %s/fashion_mnist_spikes.mpk", bin(), tmp);
  ck_assert_msg(mt_run(cmd, &out) == 0, "%s", out);
  size_t lines = 0;
  for (char *p = out; *p; p++) lines += *p == '\n';
  ck_assert_uint_eq(lines, 50);
  ck_assert_ptr_nonnull(strstr(out, "n=784 steps=32"));
  ck_assert_ptr_nonnull(strstr(out, "label=9 index=0"));
  free(out);
  free(cmd);
}
END_TEST

START_TEST(digits_to_npy_and_npz) {
  MT_NEED_FILE(DIGITS, "python3-sklearn's digits");
  char *yaml = mt_strf("%s/digits.yaml", tmp);
  char *text = mt_strf(
      "name: digits-out\n"
      "stages:\n"
      "  - {id: all, plugin: dataset, params: {format: csv, path: %s, whole: true}}\n"
      "  - {id: rows, plugin: dataset, params: {format: csv, path: %s, limit: 5, shuffle: true, seed: 2}}\n"
      "  - {id: npy, plugin: npy_sink, inputs: [all], params: {path: '%s/out/digits.npy'}}\n"
      "  - {id: npz, plugin: npy_sink, inputs: [rows], params: {path: '%s/out/rows.npz', key: 'row{index}'}}\n",
      DIGITS, DIGITS, tmp, tmp);
  mt_write(yaml, text);
  char *cmd = mt_strf("%s run %s --quiet", bin(), yaml), *out;
  ck_assert_msg(mt_run(cmd, &out) == 0, "%s", out);
  free(out);
  free(cmd);
  char *npy = mt_strf("%s/out/digits.npy", tmp);
  ck_assert_int_gt(mt_file_size(npy), 1797 * 64 * 4);
  if (mt_python_or_skip("numpy", "the Python reference check")) {
    char *py = mt_strf(
        "%s -c \"import numpy as np; d=np.loadtxt('%s', delimiter=','); a=np.load('%s'); "
        "assert a.dtype=='<f4' and a.shape==(1797,64) and (a==d[:,:64]).all(); "
        "z=np.load('%s/out/rows.npz'); assert len(z.files)==5; "
        "assert all((z[k]==d[int(k[3:]),:64]).all() for k in z.files); print('ok')\"",
        mt_env("MYELIN_PYTHON", "/usr/bin/python3"), DIGITS, npy, tmp);
    ck_assert_msg(mt_run(py, &out) == 0, "%s", out);
    free(out);
    free(py);
  }
  free(npy);
  free(text);
  free(yaml);
}
END_TEST

START_TEST(bad_input_exit_code_and_message) {
  char *bad = mt_strf("%s/bad-images.idx", tmp);
  mt_write(bad, "not an idx file at all");
  char *yaml = mt_strf("%s/bad.yaml", tmp);
  char *text = mt_strf("name: bad\nstages:\n"
                       "  - {id: d, plugin: dataset, params: {path: %s}}\n"
                       "  - {id: s, plugin: null_sink, inputs: [d]}\n", bad);
  mt_write(yaml, text);
  char *cmd = mt_strf("%s run %s --quiet", bin(), yaml), *out;
  ck_assert_int_eq(mt_run(cmd, &out), 1);
  ck_assert_msg(strstr(out, bad) && strstr(out, "bad magic") && strstr(out, "dataset"), "%s", out);
  free(out);
  free(cmd);
  free(text);
  free(yaml);
  free(bad);
}
END_TEST

/* A relative input path is found next to the pipeline file when the run
 * starts elsewhere; a missing one is reported as written. */
START_TEST(inputs_next_to_pipeline_file) {
  char *proj = mt_strf("%s/proj", tmp);
  ck_assert_int_eq(mt_run(mt_strf("mkdir -p %s/data", proj), NULL), 0);
  mt_write(mt_strf("%s/data/rows.csv", proj), "1,2,0\n3,4,1\n5,6,0\n");
  char *yaml = mt_strf("%s/p.yaml", proj);
  mt_write(yaml, mt_strf("name: near\nstages:\n"
                         "  - {id: d, plugin: dataset, params: {format: csv, path: data/rows.csv, whole: true}}\n"
                         "  - {id: s, plugin: npy_sink, inputs: [d], params: {path: '%s/out.npy'}}\n", tmp));
  char *out;
  ck_assert_msg(mt_run(mt_strf("cd / && %s run %s --quiet", bin(), yaml), &out) == 0, "%s", out);
  free(out);
  ck_assert_int_gt(mt_file_size(mt_strf("%s/out.npy", tmp)), 6 * 4);
  mt_write(yaml, "name: near\nstages:\n"
                 "  - {id: d, plugin: dataset, params: {format: csv, path: data/missing.csv}}\n"
                 "  - {id: s, plugin: null_sink, inputs: [d]}\n");
  ck_assert_int_eq(mt_run(mt_strf("cd / && %s run %s --quiet", bin(), yaml), &out), 1);
  ck_assert_msg(strstr(out, "data/missing.csv") && !strstr(out, "proj/data/missing.csv"), "%s", out);
  free(out);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("dataset_e2e");
  TCase *tc = tcase_create("e2e");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, fashion_mnist_demo_pipeline);
  tcase_add_test(tc, digits_to_npy_and_npz);
  tcase_add_test(tc, bad_input_exit_code_and_message);
  tcase_add_test(tc, inputs_next_to_pipeline_file);
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
