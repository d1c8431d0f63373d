/*
 * The skip helper of tests/testutil.h: a check whose dependency is missing
 * prints `SKIP: suite:test: reason` and records it in $MYELIN_SKIP_FILE
 * (tests/run.sh counts the lines); with MYELIN_REQUIRE_ALL=1 or CI=true the
 * same skip fails the check. The suite runs itself (/proc/self/exe) with
 * MT_SKIP_SELFTEST=1, where the only check needs a Python module that does
 * not exist.
 */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

START_TEST(needs_missing_module) {
  MT_NEED_PYTHON("myelin_no_such_module", "the self-test");
  ck_abort_msg("not reached: the module cannot exist");
}
END_TEST

/* Runs this binary's inner suite with env; *out its output, *lines the skip file. */
static int inner(const char *env, char **out, char **lines) {
  char *dir = mt_tmpdir(), self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  ck_assert_int_gt(n, 0);
  self[n] = 0;
  int rc =
      mt_run(mt_strf("env -u CI -u MYELIN_REQUIRE_ALL MT_SKIP_SELFTEST=1 MYELIN_SKIP_FILE=%s/skips %s '%s'",
                     dir, env, self),
             out);
  ck_assert_int_eq(mt_run(mt_strf("cat %s/skips", dir), lines), 0);
  return rc;
}

START_TEST(skip_is_printed_and_recorded) {
  char *out, *lines;
  int rc = inner("", &out, &lines);
  ck_assert_msg(rc == 0, "a plain skip must not fail (%d):\n%s", rc, out);
  const char *want = "SKIP: test_skip_helper:needs_missing_module: the self-test: ";
  ck_assert_msg(strstr(out, want) && strstr(out, "cannot import myelin_no_such_module"), "%s", out);
  ck_assert_msg(strncmp(lines, want, strlen(want)) == 0, "skip file: '%s'", lines);
  ck_assert_msg(strchr(lines, '\n') == lines + strlen(lines) - 1, "not one line: '%s'", lines);
  free(out);
  free(lines);
}
END_TEST

START_TEST(skip_fails_when_everything_is_required) {
  const char *envs[] = {"MYELIN_REQUIRE_ALL=1", "CI=true"};
  for (int i = 0; i < 2; i++) {
    char *out, *lines;
    int rc = inner(envs[i], &out, &lines);
    ck_assert_msg(rc != 0, "%s: a skip must fail:\n%s", envs[i], out);
    ck_assert_msg(strstr(out, "requires every dependency") && strstr(out, "SKIP: "), "%s:\n%s", envs[i], out);
    free(out);
    free(lines);
  }
}
END_TEST

int main(void) {
  Suite *s = suite_create("skip_helper");
  TCase *tc = tcase_create("skip");
  if (getenv("MT_SKIP_SELFTEST")) {
    tcase_add_test(tc, needs_missing_module);
  } else {
    tcase_add_test(tc, skip_is_printed_and_recorded);
    tcase_add_test(tc, skip_fails_when_everything_is_required);
  }
  suite_add_tcase(s, tc);
  return mt_run_suite(s);
}
