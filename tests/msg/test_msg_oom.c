/*
 * test_msg_oom.c — out-of-memory paths of msg.c (SQLite-style fault injection).
 *
 * This suite compiles msg.c into itself through msg_oom_shim.c, which renames
 * its malloc/realloc to oom_malloc/oom_realloc below; they fail the Nth call
 * (counting only msg.c's allocations). For
 * N = 0, 1, 2, ... a build / decode / read scenario runs until it completes
 * without an injected failure; every earlier run must fail cleanly (NULL or
 * an error code, no crash, no leak under ASan). msgpack-c's own allocations
 * (inside libmsgpackc.so) are not wrapped.
 */
#include <stdlib.h>
#include <string.h>

#include "myelin/msg.h"
#include "testutil.h"

void *oom_malloc(size_t n);
void *oom_realloc(void *p, size_t n);

static long fail_at = -1; /* the call that fails; -1 = never */
static long calls;

void *oom_malloc(size_t n) {
  if (fail_at >= 0 && calls++ == fail_at) return NULL;
  return malloc(n);
}
void *oom_realloc(void *p, size_t n) {
  if (fail_at >= 0 && calls++ == fail_at) return NULL;
  return realloc(p, n);
}

/* Returns 0 when everything succeeded, 1 when an allocation failure was
 * reported cleanly. */
static int scenario(void) {
  char kind[80];
  memset(kind, 'k', sizeof kind - 1); /* long kind: heap-allocated copy */
  kind[sizeof kind - 1] = 0;
  myelin_builder *b = myelin_builder_new(kind);
  if (!b) return 1;
  myelin_build_uint(b, "seq", 1);
  int64_t shape[1] = {4096}; /* forces the block to grow */
  float *p = myelin_build_tensor(b, "data", MYELIN_F4, 1, shape);
  if (p) for (int i = 0; i < 4096; i++) p[i] = (float)i;
  else ck_assert_int_eq(myelin_builder_status(b), MYELIN_ENOMEM);
  myelin_build_str(b, "name", "x");
  myelin_msg *m = myelin_builder_finish(b);
  if (!m) return 1;
  ck_assert_ptr_nonnull(p);
  size_t len;
  const uint8_t *bytes = myelin_msg_bytes(m, &len);
  myelin_msg *d = NULL;
  int rc = myelin_msg_decode(bytes, len, 0, &d, NULL, NULL, 0);
  int failed = 0;
  if (rc) {
    ck_assert_int_eq(rc, MYELIN_ENOMEM);
    failed = 1;
  } else {
    myelin_tensor t;
    ck_assert_int_eq(myelin_msg_tensor(d, "data", &t), 0);
    ck_assert_float_eq(((const float *)t.data)[4095], 4095.0f);
    myelin_msg_unref(d);
  }
  myelin_msg_unref(m);
  return failed;
}

START_TEST(every_allocation_fails_cleanly) {
  int completed = 0;
  for (long n = 0; n < 200 && !completed; n++) {
    fail_at = n;
    calls = 0;
    int failed = scenario();
    long used = calls;
    fail_at = -1;
    if (!failed) {
      ck_assert_int_le(used, n); /* no injected failure was hit */
      /* builder, block, growth, long kind; decoded block, its kind */
      ck_assert_int_ge(n, 6);
      completed = 1;
    }
  }
  ck_assert_msg(completed, "the scenario never completed");
}
END_TEST

/* A failed side copy (misaligned payload) reports an error, then works. */
START_TEST(side_copy_oom) {
  uint8_t buf[80];
  memcpy(buf, "\x82\xa4kind\xa6tensor\xa4" "data\x83\xa5" "dtype\xa3<f8\xa5shape\x91\x03\xa4" "data\xc4\x18", 44);
  const double vals[3] = {1.5, -2.25, 1e300};
  memcpy(buf + 44, vals, sizeof vals);
  myelin_msg *m;
  ck_assert_int_eq(myelin_msg_decode(buf, 68, 0, &m, NULL, NULL, 0), 0);
  myelin_obj root = myelin_msg_root(m); /* parse first (msgpack-c allocations) */
  ck_assert(myelin_obj_exists(root));
  myelin_tensor t;
  fail_at = 0;
  calls = 0;
  ck_assert_int_eq(myelin_msg_tensor(m, "data", &t), MYELIN_EFORMAT);
  fail_at = 1;
  calls = 0;
  ck_assert_int_eq(myelin_msg_tensor(m, "data", &t), MYELIN_EFORMAT);
  fail_at = -1;
  ck_assert_int_eq(myelin_msg_tensor(m, "data", &t), 0);
  ck_assert_double_eq(((const double *)t.data)[2], 1e300);
  myelin_msg_unref(m);
}
END_TEST

int main(void) {
  Suite *s = suite_create("msg_oom");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, every_allocation_fails_cleanly);
  tcase_add_test(tc, side_copy_oom);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_set_fork_status(sr, CK_NOFORK); /* the counters live in this process */
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
