/*
 * test_nmnist_demo.c — the N-MNIST demo end to end: examples/nmnist_demo
 * writes a small N-MNIST-format dataset (sklearn's digits moved in N-MNIST's
 * three saccades, events at brightness changes), pipelines/nmnist_biograd.yaml
 * reads it (event_source -> denoise -> 60 binary frames -> BioGrad) on a
 * small budget, and the test accuracy must be well above chance (10%).
 */
#include "testutil.h"

#define DIGITS "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz"

START_TEST(demo_trains_well_above_chance) {
  MT_NEED_FILE(DIGITS, "python3-sklearn's digits");
  MT_NEED_PYTHON("numpy scipy", "the N-MNIST demo generator");
  char *d = mt_tmpdir();
  const char *py = mt_env("MYELIN_PYTHON", "/usr/bin/python3"), *src = mt_env("MYELIN_SOURCE_DIR", ".");
  char *out;
  int rc =
      mt_run(mt_strf("%s %s/examples/nmnist_demo/make_demo.py %s/data --per-class 30 --test-per-class 10", py,
                     src, d),
             &out);
  ck_assert_msg(rc == 0 && strstr(out, "wrote 400 recordings"), "%s", out);
  free(out);
  /* the pipeline as shipped: the paper's [500, 100], 6 epochs, init_gain
   * [2] for the sparse frames (at the dense-input default, 0.4, the net
   * starts silent and stays at chance) */
  rc = mt_run(mt_strf("cd %s && DATA=%s/data OUT=%s/out %s run %s/pipelines/nmnist_biograd.yaml --quiet", d, d, d,
                      mt_env("MYELIN_BIN", "myelin"), src),
              &out);
  ck_assert_msg(rc == 0, "%s", out);
  free(out);
  rc = mt_run(mt_strf("%s cat %s/out/nmnist_biograd.metrics.mpk --json | %s -c \"import sys, json; "
                      "a = [json.loads(l)['values']['test_acc'] for l in sys.stdin]; print('test_acc', a); "
                      "assert len(a) == 6 and a[-1] >= 0.6, a\"",
                      mt_env("MYELIN_BIN", "myelin"), d, py),
              &out);
  printf("nmnist demo: %s", out);
  ck_assert_msg(rc == 0, "%s", out);
  free(out);
  /* the trained network was exported for Loihi (netx) */
  ck_assert_int_gt(mt_file_size(mt_strf("%s/out/nmnist_biograd.net", d)), 1000);
  ck_assert_int_eq(mt_run(mt_strf("rm -rf %s", d), NULL), 0);
}
END_TEST

int main(void) {
  Suite *s = suite_create("nmnist_demo");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, demo_trains_well_above_chance);
  suite_add_tcase(s, tc);
  return mt_run_suite(s);
}
