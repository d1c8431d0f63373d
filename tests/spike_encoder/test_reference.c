/*
 * test_reference.c — the rate coder inside a real pipeline (`myelin run`
 * of pipelines/fashion_mnist_encode.yaml) checked event for event against an
 * independent Python implementation (rate_reference.py). Skips when the
 * Fashion-MNIST files or Debian's python3 with numpy and msgpack are absent.
 */
#include "testutil.h"

#define FMNIST "/usr/share/datasets/fashion-mnist"

START_TEST(pipeline_matches_python_reference) {
  MT_NEED_FILE(FMNIST "/t10k-images-idx3-ubyte.gz", "dataset-fashion-mnist");
  MT_NEED_PYTHON("numpy msgpack", "the numpy reference encoder");
  char *tmp = mt_tmpdir();
  const char *src = mt_env("MYELIN_SOURCE_DIR", ".");
  char *cmd = mt_strf("LIMIT=4 OUT=%s %s run %s/pipelines/fashion_mnist_encode.yaml --quiet", tmp,
                      mt_env("MYELIN_BIN", "myelin"), src), *out;
  ck_assert_msg(mt_run(cmd, &out) == 0, "%s", out);
  free(out);
  free(cmd);
  cmd = mt_strf("%s %s/tests/spike_encoder/rate_reference.py %s/fashion_mnist_spikes.mpk "
                FMNIST "/t10k-images-idx3-ubyte.gz 1 4", mt_env("MYELIN_PYTHON", "/usr/bin/python3"),
                src, tmp);
  ck_assert_msg(mt_run(cmd, &out) == 0, "%s", out);
  ck_assert_ptr_nonnull(strstr(out, "ok 4"));
  free(out);
  free(cmd);
  cmd = mt_strf("rm -rf %s", tmp);
  ck_assert_int_eq(system(cmd), 0);
  free(cmd);
  free(tmp);
}
END_TEST

int main(void) {
  Suite *s = suite_create("spike_encoder_reference");
  TCase *tc = tcase_create("reference");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, pipeline_matches_python_reference);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
