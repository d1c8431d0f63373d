/*
 * test_story_to_brain.c — the whole story_to_brain pipeline end to end:
 * examples/story_demo/make_demo.py writes a BIDS dataset, a transcript and
 * a random 4-layer GPT-2 whose layer-2 activations (HRF-convolved) drive a
 * planted 3x3x3 box in 10 subjects; `myelin run pipelines/story_to_brain.yaml`
 * (word_source -> lm_features -> encoding with split_layers and events: hrf,
 * isc as the ceiling, group_maps, nifti_sink) must find the box and give it
 * the planted layer (check_demo.py: >= 80% of the box, <= 5% false
 * positives). A second dataset plants layer 1 instead.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static void demo(int layer, int seed) {
  MT_NEED_PYTHON("numpy scipy nibabel", "story demo");
  const char *src = mt_env("MYELIN_SOURCE_DIR", "."), *py = mt_env("MYELIN_PYTHON", "/usr/bin/python3");
  char *d = mt_tmpdir();
  char *out = NULL;
  char *cmd = mt_strf("%s %s/examples/story_demo/make_demo.py %s/data --layer %d --seed %d && "
                      "%s validate %s/pipelines/story_to_brain.yaml && "
                      "DATA=%s/data OUT=%s %s run %s/pipelines/story_to_brain.yaml --quiet && "
                      "%s %s/examples/story_demo/check_demo.py %s/data %s",
                      py, src, d, layer, seed, mt_env("MYELIN_BIN", "myelin"), src, d, d,
                      mt_env("MYELIN_BIN", "myelin"), src, py, src, d, d);
  int rc = mt_run(cmd, &out);
  ck_assert_msg(rc == 0, "%s\n%s", cmd, out);
  ck_assert_msg(strstr(out, mt_strf("planted layer %d: best in", layer)) != NULL, "%s", out);
  free(out);
}

START_TEST(planted_layer_2) { demo(2, 3); }
END_TEST

START_TEST(planted_layer_1) { demo(1, 4); }
END_TEST

int main(void) {
  Suite *s = suite_create("story_to_brain");
  TCase *tc = tcase_create("e2e");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, planted_layer_2);
  tcase_add_test(tc, planted_layer_1);
  suite_add_tcase(s, tc);
  return mt_run_suite(s);
}
