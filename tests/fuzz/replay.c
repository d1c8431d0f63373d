/*
 * replay.c — runs a fuzz target's LLVMFuzzerTestOneInput over every file of
 * its seed corpus and regression folder, in ordinary (gcc, ASan) builds.
 *
 * This is how the corpora and every crash the fuzzers found stay tested in
 * CI without clang: tests/fuzz/corpus/<target>/ holds the seeds and the
 * minimized crash inputs (named crash-*), and this suite feeds each one to
 * the target's own checks (which trap on a violated invariant) under
 * whatever sanitizers the build has.
 */
#include <check.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *slurp(const char *path, size_t *n) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return NULL;
  size_t cap = 4096, len = 0;
  uint8_t *b = malloc(cap);
  size_t r;
  while (b && (r = fread(b + len, 1, cap - len, fp)) > 0) {
    len += r;
    if (len == cap) {
      uint8_t *nb = realloc(b, cap *= 2);
      if (!nb) free(b);
      b = nb;
    }
  }
  fclose(fp);
  *n = len;
  return b;
}

START_TEST(replay_corpus) {
  DIR *d = opendir(FUZZ_CORPUS_DIR);
  ck_assert_msg(d != NULL, "no corpus folder %s", FUZZ_CORPUS_DIR);
  struct dirent *e;
  size_t files = 0;
  char path[4096];
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "%s/%s", FUZZ_CORPUS_DIR, e->d_name);
    size_t n = 0;
    uint8_t *b = slurp(path, &n);
    ck_assert_msg(b != NULL, "cannot read %s", path);
    ck_assert_int_eq(LLVMFuzzerTestOneInput(b, n), 0);
    free(b);
    files++;
  }
  closedir(d);
  ck_assert_msg(files > 0, "empty corpus folder %s", FUZZ_CORPUS_DIR);
}
END_TEST

int main(void) {
  Suite *s = suite_create("fuzz_replay");
  TCase *tc = tcase_create("corpus");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, replay_corpus);
  suite_add_tcase(s, tc);
  SRunner *r = srunner_create(s);
  srunner_run_all(r, CK_NORMAL);
  int failed = srunner_ntests_failed(r);
  srunner_free(r);
  return failed ? 1 : 0;
}
