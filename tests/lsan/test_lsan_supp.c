/*
 * test_lsan_supp.c — tests/lsan.supp suppresses the test helpers' own
 * allocations and nothing else.
 *
 * LeakSanitizer matches a `leak:` pattern as a substring of every function
 * (and file, and module) name on the allocation's stack; `^` and `$` anchor
 * it. `leak:mt_run` therefore also matched `mt_run_suite`, which is on the
 * stack of every allocation a suite makes: a leak in libmyelin or a plugin
 * under test was silently suppressed.
 *
 * - every build: each pattern is anchored (`leak:^name$`) and names a helper
 *   of tests/testutil.h;
 * - ASan builds (MYELIN_SANITIZE=ON, where LeakSanitizer runs; the check
 *   does not exist in other builds): lsan_leaker, a suite run by
 *   mt_run_suite, leaks libmyelin messages on purpose and must be reported
 *   with the suppressions in force; its leak of mt_run's output (what the
 *   suppression is for) must not be.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#if defined(__SANITIZE_ADDRESS__)
#define MT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MT_ASAN 1
#endif
#endif

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "cannot read %s", path);
  static char buf[1 << 16];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  return buf;
}

/* 1 when text has a line "static inline ... name(" (name after ' ' or '*'). */
static int defines(const char *text, const char *name_paren) {
  for (const char *p = strstr(text, name_paren); p; p = strstr(p + 1, name_paren)) {
    if (p == text || (p[-1] != ' ' && p[-1] != '*')) continue;
    const char *bol = p;
    while (bol > text && bol[-1] != '\n')
      bol--;
    if (strncmp(bol, "static inline ", 14) == 0) return 1;
  }
  return 0;
}

START_TEST(patterns_are_anchored_helpers) {
  const char *src = mt_env("MYELIN_SOURCE_DIR", ".");
  char *util = strdup(slurp(mt_strf("%s/tests/testutil.h", src)));
  char *supp = slurp(mt_strf("%s/tests/lsan.supp", src));
  int patterns = 0;
  for (char *line = strtok(supp, "\n"); line; line = strtok(NULL, "\n")) {
    if (line[0] == '#' || line[0] == 0) continue;
    ck_assert_msg(strncmp(line, "leak:", 5) == 0, "lsan.supp: not a leak suppression: %s", line);
    const char *pat = line + 5;
    size_t len = strlen(pat);
    ck_assert_msg(len > 2 && pat[0] == '^' && pat[len - 1] == '$',
                  "lsan.supp: '%s' is not anchored (^name$): as a substring it also matches longer names, "
                  "e.g. mt_run matches mt_run_suite, which is on the stack of every test allocation",
                  line);
    ck_assert_msg(defines(util, mt_strf("%.*s(", (int)(len - 2), pat + 1)),
                  "lsan.supp: '%s' names no helper of tests/testutil.h", line);
    patterns++;
  }
  ck_assert_int_gt(patterns, 0);
  free(util);
}
END_TEST

#ifdef MT_ASAN
static int leaker(const char *tcase, char **out) {
  const char *src = mt_env("MYELIN_SOURCE_DIR", ".");
  /* fast_unwind_on_malloc=0: the whole stack, through libcheck (built
   * without frame pointers, where the fast unwinder may stop) to
   * mt_run_suite and main, as a suppression can see it */
  return mt_run(
      mt_strf(
          "CK_FORK=no CK_RUN_CASE=%s ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:fast_unwind_on_malloc=0 "
          "LSAN_OPTIONS=suppressions=%s/tests/lsan.supp:print_suppressions=0 %s",
          tcase, src, LSAN_LEAKER),
      out);
}

START_TEST(library_leak_is_reported) {
  char *out = NULL;
  int rc = leaker("library", &out);
  ck_assert_msg(rc != 0 && strstr(out, "LeakSanitizer: detected memory leaks"),
                "a libmyelin leak was not reported (exit %d):\n%s", rc, out);
  ck_assert_msg(strstr(out, "myelin_builder_new") && strstr(out, "mt_run_suite"),
                "the report should show the library allocation under mt_run_suite:\n%s", out);
  free(out);
}
END_TEST

START_TEST(helper_leak_is_suppressed) {
  char *out = NULL;
  int rc = leaker("helper", &out);
  ck_assert_msg(rc == 0 && !strstr(out, "detected memory leaks"),
                "mt_run's output buffer should stay suppressed (exit %d):\n%s", rc, out);
  free(out);
}
END_TEST
#endif

int main(void) {
  Suite *s = suite_create("lsan_supp");
  TCase *tc = tcase_create("supp");
  tcase_add_test(tc, patterns_are_anchored_helpers);
#ifdef MT_ASAN
  tcase_add_test(tc, library_leak_is_reported);
  tcase_add_test(tc, helper_leak_is_suppressed);
#endif
  suite_add_tcase(s, tc);
  return mt_run_suite(s);
}
