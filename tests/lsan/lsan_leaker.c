/*
 * lsan_leaker.c — leaks on purpose, for tests/lsan/test_lsan_supp.c. A Check
 * suite run by mt_run_suite, as every suite is, so mt_run_suite is on the
 * stack of each allocation. CK_RUN_CASE picks what leaks:
 *   library  a message built by libmyelin and never released: a library
 *            leak, which LeakSanitizer must report despite tests/lsan.supp;
 *   helper   the output buffer of mt_run, which tests never free: the one
 *            leak tests/lsan.supp is meant to suppress.
 * Not a test by itself; it fails (LeakSanitizer's exit) when it is meant to.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "myelin/msg.h"
#include "testutil.h"

/* Where the dropped pointers went: overwritten, so no stack slot keeps them. */
static void *volatile sink;

static __attribute__((noinline)) void drop_messages(void) {
  for (int i = 0; i < 8; i++) {
    myelin_builder *b = myelin_builder_new("lsan_leak");
    myelin_build_int(b, "i", i);
    sink = myelin_builder_finish(b); /* never released */
  }
  sink = NULL;
}

START_TEST(library) { drop_messages(); }
END_TEST

static __attribute__((noinline)) void drop_outputs(void) {
  for (int i = 0; i < 2; i++) {
    char *out = NULL;
    ck_assert_int_eq(mt_run("true", &out), 0);
    sink = out; /* never freed, as tests do */
  }
  sink = NULL;
}

START_TEST(helper) { drop_outputs(); }
END_TEST

int main(void) {
  Suite *s = suite_create("lsan_leaker");
  TCase *lib = tcase_create("library"), *help = tcase_create("helper");
  tcase_add_test(lib, library);
  tcase_add_test(help, helper);
  suite_add_tcase(s, lib);
  suite_add_tcase(s, help);
  return mt_run_suite(s);
}
