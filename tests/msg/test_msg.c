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


/* Payload alignment the builder promises: 64 from 4 KiB up, else 8. */
static uintptr_t want_align(size_t nbytes) { return nbytes >= 4096 ? 64 : 8; }

/* Several tensors separated by odd-sized fields: every payload aligned. */
static myelin_msg *build_tensors(void) {
  myelin_builder *b = myelin_builder_new("tensor");
  myelin_build_uint(b, "seq", 7);
  myelin_build_str(b, "name", "odd-name");
  static const myelin_dtype dts[] = {MYELIN_F4, MYELIN_U1, MYELIN_F8, MYELIN_I2, MYELIN_U4, MYELIN_B1};
  char key[8];
  for (int k = 0; k < 6; k++) {
    int64_t shape[2] = {k + 1, 3 + 2 * k};
    snprintf(key, sizeof key, "t%d", k);
    uint8_t *p = myelin_build_tensor(b, key, dts[k], 2, shape);
    ck_assert_ptr_nonnull(p);
    size_t nb = (size_t)shape[0] * (size_t)shape[1] * myelin_dtype_size(dts[k]);
    ck_assert_uint_eq((uintptr_t)p % want_align(nb), 0);
    for (size_t i = 0; i < nb; i++) p[i] = dts[k] == MYELIN_B1 ? (uint8_t)(i & 1) : (uint8_t)(i * 7 + (size_t)k);
    snprintf(key, sizeof key, "s%d", k);
    myelin_build_strn(b, key, "abcdefghij", (size_t)k); /* shifts the next tensor */
  }
  int64_t scalar_shape[1] = {0};
  myelin_build_tensor_copy(b, "scalar", MYELIN_F8, 0, scalar_shape, &(double){3.5});
  myelin_build_tensor(b, "empty", MYELIN_F4, 1, scalar_shape);
  myelin_msg *m = myelin_builder_finish(b);
  ck_assert_ptr_nonnull(m);
  return m;
}

static void check_tensors(const myelin_msg *m) {
  static const myelin_dtype dts[] = {MYELIN_F4, MYELIN_U1, MYELIN_F8, MYELIN_I2, MYELIN_U4, MYELIN_B1};
  char key[8];
  myelin_tensor t;
  for (int k = 0; k < 6; k++) {
    snprintf(key, sizeof key, "t%d", k);
    ck_assert_int_eq(myelin_msg_tensor(m, key, &t), 0);
    ck_assert_int_eq(t.dtype, dts[k]);
    ck_assert_int_eq(t.ndim, 2);
    ck_assert_int_eq(t.shape[0], k + 1);
    ck_assert_int_eq(t.shape[1], 3 + 2 * k);
    ck_assert_uint_eq(t.count, (size_t)((k + 1) * (3 + 2 * k)));
    ck_assert_uint_eq(t.nbytes, t.count * myelin_dtype_size(dts[k]));
    ck_assert_uint_eq((uintptr_t)t.data % want_align(t.nbytes), 0);
    const uint8_t *p = t.data;
    for (size_t i = 0; i < t.nbytes; i++)
      ck_assert_uint_eq(p[i], dts[k] == MYELIN_B1 ? (uint8_t)(i & 1) : (uint8_t)(i * 7 + (size_t)k));
  }
  ck_assert_int_eq(myelin_msg_tensor(m, "scalar", &t), 0);
  ck_assert_int_eq(t.ndim, 0);
  ck_assert_uint_eq(t.count, 1);
  ck_assert_double_eq(*(const double *)t.data, 3.5);
  ck_assert_int_eq(myelin_msg_tensor(m, "empty", &t), 0);
  ck_assert_uint_eq(t.count, 0);
  ck_assert_int_eq(myelin_msg_tensor(m, "name", &t), MYELIN_ETYPE);
  ck_assert_int_eq(myelin_msg_tensor(m, "nope", &t), MYELIN_ENOENT);
}

START_TEST(tensor_alignment) {
  myelin_msg *m = build_tensors();
  check_tensors(m);
  size_t len;
  const uint8_t *bytes = myelin_msg_bytes(m, &len);
  /* decoded from an odd address: the copy is realigned, payloads too */
  uint8_t *odd = malloc(len + 3);
  memcpy(odd + 3, bytes, len);
  myelin_msg *d;
  ck_assert_int_eq(myelin_msg_decode(odd + 3, len, 0, &d, NULL, NULL, 0), 0);
  free(odd);
  check_tensors(d);
  myelin_msg_unref(d);
  myelin_msg_unref(m);
}
END_TEST

/* Small tensors carry no "_pad" key (issue 15 item 20: it tripled small
 * messages) and are still 8-byte aligned, at every offset, for every bin
 * header width; a large one keeps its 64-byte alignment, also after a decode
 * from an odd address. */
static int has_pad(const myelin_msg *m) {
  size_t len;
  const uint8_t *p = myelin_msg_bytes(m, &len);
  for (size_t i = 0; i + 4 <= len; i++)
    if (!memcmp(p + i, "_pad", 4)) return 1;
  return 0;
}

START_TEST(padding_only_for_large_tensors) {
  static const size_t sizes[] = {0, 1, 8, 64, 255, 256, 1000, 4095};
  for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++)
    for (size_t shift = 0; shift < 64; shift++) {
      myelin_builder *b = myelin_builder_new("tensor");
      char fill[64];
      memset(fill, 'x', sizeof fill);
      myelin_build_strn(b, "s", fill, shift);
      int64_t shape[2] = {1, (int64_t)sizes[si]};
      uint8_t *p = myelin_build_tensor(b, "data", MYELIN_U1, 2, shape);
      ck_assert_ptr_nonnull(p);
      ck_assert_uint_eq((uintptr_t)p % 8, 0);
      for (size_t i = 0; i < sizes[si]; i++) p[i] = (uint8_t)(i * 13 + shift);
      myelin_msg *m = myelin_builder_finish(b);
      ck_assert_ptr_nonnull(m);
      ck_assert_msg(!has_pad(m), "size %zu shift %zu: _pad in a small message", sizes[si], shift);
      size_t len;
      const uint8_t *bytes = myelin_msg_bytes(m, &len);
      myelin_msg *d;
      ck_assert_int_eq(myelin_msg_decode(bytes, len, 0, &d, NULL, NULL, 0), 0);
      myelin_tensor t;
      ck_assert_int_eq(myelin_msg_tensor(d, "data", &t), 0);
      ck_assert_uint_eq(t.nbytes, sizes[si]);
      ck_assert_int_eq(t.ndim, 2);
      ck_assert_int_eq(t.shape[1], (int64_t)sizes[si]);
      ck_assert_uint_eq((uintptr_t)t.data % 8, 0);
      for (size_t i = 0; i < sizes[si]; i++) ck_assert_uint_eq(((const uint8_t *)t.data)[i], (uint8_t)(i * 13 + shift));
      myelin_msg_unref(d);
      myelin_msg_unref(m);
    }
  /* 16 floats (64 B) in a tensor message: no padding at all */
  myelin_builder *b = myelin_builder_new("tensor");
  int64_t s16[1] = {16};
  float v[16] = {0};
  myelin_build_tensor_copy(b, "data", MYELIN_F4, 1, s16, v);
  myelin_msg *m = myelin_builder_finish(b);
  size_t len;
  myelin_msg_bytes(m, &len);
  ck_assert(!has_pad(m));
  ck_assert_uint_le(len, 64 + 48);
  myelin_msg_unref(m);
  /* 4 KiB and more: 64-byte aligned, also decoded from an odd address */
  b = myelin_builder_new("tensor");
  myelin_build_str(b, "name", "odd");
  int64_t big[1] = {1024};
  float *p = myelin_build_tensor(b, "data", MYELIN_F4, 1, big);
  ck_assert_uint_eq((uintptr_t)p % 64, 0);
  for (int i = 0; i < 1024; i++) p[i] = (float)i;
  m = myelin_builder_finish(b);
  const uint8_t *bytes = myelin_msg_bytes(m, &len);
  uint8_t *odd = malloc(len + 3);
  memcpy(odd + 3, bytes, len);
  myelin_msg *d;
  ck_assert_int_eq(myelin_msg_decode(odd + 3, len, 0, &d, NULL, NULL, 0), 0);
  free(odd);
  myelin_tensor t;
  ck_assert_int_eq(myelin_msg_tensor(d, "data", &t), 0);
  ck_assert_uint_eq((uintptr_t)t.data % 64, 0);
  ck_assert_float_eq(((const float *)t.data)[1023], 1023.0f);
  myelin_msg_unref(d);
  myelin_msg_unref(m);
}
END_TEST

START_TEST(tensor_bad) {
  myelin_builder *b = myelin_builder_new("tensor");
  int64_t neg[1] = {-1};
  ck_assert_ptr_null(myelin_build_tensor(b, "x", MYELIN_F4, 1, neg));
  ck_assert_int_eq(myelin_builder_status(b), MYELIN_EINVAL);
  ck_assert_ptr_null(myelin_builder_finish(b));
  b = myelin_builder_new("tensor");
  int64_t dims[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
  ck_assert_ptr_null(myelin_build_tensor(b, "x", MYELIN_F4, 9, dims));
  ck_assert_ptr_null(myelin_builder_finish(b));
  b = myelin_builder_new("tensor");
  ck_assert_ptr_null(myelin_build_tensor(b, "x", MYELIN_DTYPE_INVALID, 1, dims));
  myelin_builder_free(b);
  /* over the 4 GiB bin32 limit, and overflowing products: refused, nothing allocated */
  b = myelin_builder_new("tensor");
  int64_t huge[1] = {(int64_t)1 << 40};
  ck_assert_ptr_null(myelin_build_tensor(b, "x", MYELIN_F4, 1, huge));
  ck_assert_int_eq(myelin_builder_status(b), MYELIN_ERANGE);
  myelin_builder_free(b);
  b = myelin_builder_new("tensor");
  int64_t over[3] = {(int64_t)1 << 40, (int64_t)1 << 40, 16};
  ck_assert_ptr_null(myelin_build_tensor(b, "x", MYELIN_F8, 3, over));
  ck_assert_int_eq(myelin_builder_status(b), MYELIN_ERANGE);
  myelin_builder_free(b);
  /* inconsistent tensor maps are rejected by the reader */
  b = myelin_builder_new("tensor");
  myelin_build_map_begin(b, "x");
  myelin_build_str(b, "dtype", "<f4");
  myelin_build_array_begin(b, "shape");
  myelin_build_int(b, NULL, 3);
  myelin_build_array_end(b);
  myelin_build_bin(b, "data", "12345678", 8);
  myelin_build_map_end(b);
  myelin_build_map_begin(b, "y");
  myelin_build_str(b, "dtype", ">f4");
  myelin_build_array_begin(b, "shape");
  myelin_build_int(b, NULL, 2);
  myelin_build_array_end(b);
  myelin_build_bin(b, "data", "12345678", 8);
  myelin_build_map_end(b);
  myelin_msg *m = myelin_builder_finish(b);
  ck_assert_ptr_nonnull(m);
  myelin_tensor t;
  ck_assert_int_eq(myelin_msg_tensor(m, "x", &t), MYELIN_EFORMAT);
  ck_assert_int_eq(myelin_msg_tensor(m, "y", &t), MYELIN_EFORMAT);
  myelin_msg_unref(m);
}
END_TEST

START_TEST(dtypes) {
  static const char *names[] = {"<f4", "<f8", "|i1", "<i2", "<i4", "<i8", "|u1", "<u2", "<u4", "<u8", "|b1"};
  static const size_t sizes[] = {4, 8, 1, 2, 4, 8, 1, 2, 4, 8, 1};
  for (int i = 0; i < 11; i++) {
    myelin_dtype d = myelin_dtype_parse(names[i], 3);
    ck_assert_int_eq(d, i + 1);
    ck_assert_str_eq(myelin_dtype_name(d), names[i]);
    ck_assert_uint_eq(myelin_dtype_size(d), sizes[i]);
  }
  ck_assert_int_eq(myelin_dtype_parse("<u1", 3), MYELIN_U1);
  ck_assert_int_eq(myelin_dtype_parse(">f4", 3), MYELIN_DTYPE_INVALID);
  ck_assert_int_eq(myelin_dtype_parse("<f4x", 4), MYELIN_DTYPE_INVALID);
  ck_assert_int_eq(myelin_dtype_parse("|f4", 3), MYELIN_DTYPE_INVALID);
  ck_assert_uint_eq(myelin_dtype_size(MYELIN_DTYPE_INVALID), 0);
}
END_TEST

START_TEST(truncated_prefixes) {
  myelin_msg *m = build_all();
  myelin_msg *m2 = build_tensors();
  const myelin_msg *ms[2] = {m, m2};
  for (int k = 0; k < 2; k++) {
    size_t len;
    const uint8_t *bytes = myelin_msg_bytes(ms[k], &len);
    for (size_t n = 0; n < len; n++) {
      uint8_t *cut = malloc(n ? n : 1); /* exact size: ASan catches over-reads */
      memcpy(cut, bytes, n);
      myelin_msg *d = (myelin_msg *)1;
      size_t used = 99;
      ck_assert_int_eq(myelin_msg_decode(cut, n, 0, &d, &used, NULL, 0), MYELIN_EAGAIN);
      ck_assert_ptr_null(d);
      ck_assert_int_eq(myelin_msgpack_measure(cut, n, 0, &used, NULL, 0), MYELIN_EAGAIN);
      free(cut);
    }
    size_t used;
    ck_assert_int_eq(myelin_msgpack_measure(bytes, len, 0, &used, NULL, 0), 0);
    ck_assert_uint_eq(used, len);
  }
  /* two messages back to back: decode the first, then the second */
  size_t l1, l2, used;
  const uint8_t *b1 = myelin_msg_bytes(m, &l1), *b2 = myelin_msg_bytes(m2, &l2);
  uint8_t *both = malloc(l1 + l2);
  memcpy(both, b1, l1);
  memcpy(both + l1, b2, l2);
  myelin_msg *d;
  ck_assert_int_eq(myelin_msg_decode(both, l1 + l2, 0, &d, &used, NULL, 0), 0);
  ck_assert_uint_eq(used, l1);
  ck_assert_str_eq(myelin_msg_kind(d), "sample");
  myelin_msg_unref(d);
  ck_assert_int_eq(myelin_msg_decode(both + l1, l2, 0, &d, &used, NULL, 0), 0);
  ck_assert_str_eq(myelin_msg_kind(d), "tensor");
  myelin_msg_unref(d);
  free(both);
  myelin_msg_unref(m);
  myelin_msg_unref(m2);
}
END_TEST

START_TEST(garbage) {
  char err[160];
  myelin_msg *d;
  size_t used;
  ck_assert_int_eq(myelin_msg_decode("\xc1", 1, 0, &d, &used, err, sizeof err), MYELIN_EFORMAT);
  ck_assert_ptr_nonnull(strstr(err, "byte 0"));
  /* {"kind": "x", "a": <0xc1>} : the bad byte is at offset 10 */
  const char bad[] = "\x82\xa4kind\xa1x\xa1" "a\xc1";
  ck_assert_int_eq(myelin_msg_decode(bad, sizeof bad - 1, 0, &d, &used, err, sizeof err), MYELIN_EFORMAT);
  ck_assert_msg(strstr(err, "byte 10") != NULL, "%s", err);
  /* an array is valid msgpack but not a message */
  const char arr[] = "\x92\x01\x02";
  ck_assert_int_eq(myelin_msgpack_measure(arr, 3, 0, &used, err, sizeof err), 0);
  ck_assert_uint_eq(used, 3);
  ck_assert_int_eq(myelin_msg_decode(arr, 3, 0, &d, &used, err, sizeof err), MYELIN_EFORMAT);
  ck_assert_ptr_nonnull(strstr(err, "not a msgpack map"));
  /* no kind; kind not a string */
  const char nokind[] = "\x81\xa1" "a\x01";
  ck_assert_int_eq(myelin_msg_decode(nokind, 4, 0, &d, &used, err, sizeof err), MYELIN_EFORMAT);
  ck_assert_ptr_nonnull(strstr(err, "kind"));
  /* non-minimal encodings of the "kind" key and value are fine */
  const char str16kind[] = "\x82\xa1" "a\x01\xda\x00\x04kind\xdb\x00\x00\x00\x02xy";
  ck_assert_int_eq(myelin_msg_decode(str16kind, sizeof str16kind - 1, 0, &d, &used, err, sizeof err), 0);
  ck_assert_str_eq(myelin_msg_kind(d), "xy");
  myelin_msg_unref(d);
  /* a "kind" nested deeper does not count */
  const char nested_kind[] = "\x81\xa1m\x81\xa4kind\xa1x";
  ck_assert_int_eq(myelin_msg_decode(nested_kind, sizeof nested_kind - 1, 0, &d, &used, err, sizeof err), MYELIN_EFORMAT);
  /* a "kind" value is not taken for a key */
  const char value_kind[] = "\x82\xa1k\xa4kind\xa4kind\xa2ok";
  ck_assert_int_eq(myelin_msg_decode(value_kind, sizeof value_kind - 1, 0, &d, &used, err, sizeof err), 0);
  ck_assert_str_eq(myelin_msg_kind(d), "ok");
  myelin_msg_unref(d);
  const char intkind[] = "\x81\xa4kind\x05";
  ck_assert_int_eq(myelin_msg_decode(intkind, 7, 0, &d, &used, err, sizeof err), MYELIN_EFORMAT);
  ck_assert_ptr_nonnull(strstr(err, "kind"));
  /* random bytes never crash; each result is one of the documented codes */
  uint32_t x = 12345;
  uint8_t buf[64];
  for (int round = 0; round < 20000; round++) {
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)((x = x * 1103515245u + 12345u) >> 24);
    buf[0] = (uint8_t)(0x80 | (buf[0] & 15)); /* start as a map to go deeper */
    size_t n = 1 + (size_t)(x % sizeof buf);
    int rc = myelin_msg_decode(buf, n, 0, &d, &used, err, sizeof err);
    ck_assert(rc == 0 || rc == MYELIN_EAGAIN || rc == MYELIN_EFORMAT || rc == MYELIN_ERANGE);
    if (rc == 0) {
      ck_assert_uint_le(used, n);
      myelin_obj root = myelin_msg_root(d); /* parse must work on anything accepted */
      ck_assert_int_eq(myelin_obj_type_of(root), MYELIN_OBJ_MAP);
      myelin_msg_unref(d);
    }
  }
}
END_TEST

/* {"kind":"x","d": depth-1 nested arrays [[[...[1]...]]]} : total depth `depth` */
static uint8_t *nested(int depth, size_t *len) {
  uint8_t *p = malloc(16 + (size_t)depth);
  size_t n = 0;
  memcpy(p, "\x82\xa4kind\xa1x\xa1" "d", 10);
  n = 10;
  for (int i = 1; i < depth; i++) p[n++] = 0x91;
  p[n++] = 0x01;
  *len = n;
  return p;
}

START_TEST(depth_limit) {
  size_t len, used;
  char err[128];
  myelin_msg *d;
  uint8_t *ok = nested(MYELIN_MAX_DEPTH, &len);
  ck_assert_int_eq(myelin_msg_decode(ok, len, 0, &d, &used, err, sizeof err), 0);
  myelin_obj o = myelin_msg_get(d, "d");
  for (int i = 2; i < MYELIN_MAX_DEPTH; i++) o = myelin_obj_at(o, 0);
  int64_t v;
  ck_assert_int_eq(myelin_obj_int(myelin_obj_at(o, 0), &v), 0);
  ck_assert_int_eq(v, 1);
  myelin_msg_unref(d);
  free(ok);
  uint8_t *deep = nested(MYELIN_MAX_DEPTH + 1, &len);
  ck_assert_int_eq(myelin_msg_decode(deep, len, 0, &d, &used, err, sizeof err), MYELIN_ERANGE);
  ck_assert_ptr_nonnull(strstr(err, "nesting"));
  /* even a prefix is refused as soon as the depth is exceeded */
  ck_assert_int_eq(myelin_msg_decode(deep, len - 1, 0, &d, &used, err, sizeof err), MYELIN_ERANGE);
  free(deep);
  /* the builder enforces the same limit */
  myelin_builder *b = myelin_builder_new("x");
  for (int i = 1; i < MYELIN_MAX_DEPTH; i++) myelin_build_array_begin(b, i == 1 ? "d" : NULL);
  ck_assert_int_eq(myelin_builder_status(b), 0);
  myelin_build_array_begin(b, NULL);
  ck_assert_int_eq(myelin_builder_status(b), MYELIN_ERANGE);
  myelin_builder_free(b);
}
END_TEST

START_TEST(size_limit) {
  char err[160];
  myelin_msg *d;
  size_t used;
  /* {"kind":"x","b": bin32 of 16 MiB} with only the header present */
  const char big[] = "\x82\xa4kind\xa1x\xa1" "b\xc6\x01\x00\x00\x00";
  ck_assert_int_eq(myelin_msg_decode(big, sizeof big - 1, 1 << 20, &d, &used, err, sizeof err),
                   MYELIN_ERANGE);
  ck_assert_ptr_nonnull(strstr(err, "limit"));
  ck_assert_int_eq(myelin_msgpack_measure(big, sizeof big - 1, 1 << 20, &used, NULL, 0), MYELIN_ERANGE);
  /* under the default limit the same prefix just needs more bytes */
  ck_assert_int_eq(myelin_msg_decode(big, sizeof big - 1, 0, &d, &used, err, sizeof err), MYELIN_EAGAIN);
  /* an endless stream of small values hits the limit too */
  size_t n = 4096;
  uint8_t *many = calloc(n, 1);
  memcpy(many, "\xdd\xff\xff\xff\xff", 5);
  ck_assert_int_eq(myelin_msgpack_measure(many, n, 1000, &used, NULL, 0), MYELIN_ERANGE);
  free(many);
  /* exact limit */
  myelin_msg *m = build_all();
  size_t len;
  const uint8_t *bytes = myelin_msg_bytes(m, &len);
  ck_assert_int_eq(myelin_msg_decode(bytes, len, len, &d, &used, NULL, 0), 0);
  myelin_msg_unref(d);
  ck_assert_int_eq(myelin_msg_decode(bytes, len, len - 1, &d, &used, NULL, 0), MYELIN_ERANGE);
  myelin_msg_unref(m);
}
END_TEST

START_TEST(misaligned_payload) {
  /* {"kind":"tensor","data":{"dtype":"<f8","shape":[3],"data":bin8 24}}:
   * the payload sits at offset 44, misaligned for 8-byte doubles. */
  uint8_t buf[80];
  size_t n = 0;
  memcpy(buf, "\x82\xa4kind\xa6tensor\xa4" "data\x83\xa5" "dtype\xa3<f8\xa5shape\x91\x03\xa4" "data\xc4\x18", 44);
  n = 44;
  const double vals[3] = {1.5, -2.25, 1e300};
  memcpy(buf + n, vals, sizeof vals);
  n += sizeof vals;
  myelin_msg *d;
  size_t used;
  char err[128];
  ck_assert_int_eq(myelin_msg_decode(buf, n, 0, &d, &used, err, sizeof err), 0);
  size_t len;
  const uint8_t *bytes = myelin_msg_bytes(d, &len);
  myelin_tensor t, t2;
  ck_assert_int_eq(myelin_msg_tensor(d, "data", &t), 0);
  ck_assert_uint_eq((uintptr_t)t.data % 8, 0);
  ck_assert((const uint8_t *)t.data < bytes || (const uint8_t *)t.data >= bytes + len); /* a copy */
  const double *v = t.data;
  ck_assert_double_eq(v[0], 1.5);
  ck_assert_double_eq(v[1], -2.25);
  ck_assert_double_eq(v[2], 1e300);
  ck_assert_int_eq(myelin_msg_tensor(d, "data", &t2), 0);
  ck_assert_ptr_eq(t.data, t2.data); /* copied once */
  myelin_msg_unref(d);
  /* an empty payload at an odd offset still gets an aligned, non-NULL pointer */
  const char empty[] = "\x82\xa4kind\xa6tensor\xa1" "e\x83\xa5" "dtype\xa3<f8\xa5shape\x91\x00\xa4" "data\xc4\x00";
  ck_assert_int_eq(myelin_msg_decode(empty, sizeof empty - 1, 0, &d, &used, err, sizeof err), 0);
  ck_assert_int_eq(myelin_msg_tensor(d, "e", &t), 0);
  ck_assert_uint_eq(t.count, 0);
  ck_assert_ptr_nonnull(t.data);
  ck_assert_uint_eq((uintptr_t)t.data % 8, 0);
  myelin_msg_unref(d);
}
END_TEST

START_TEST(builder_errors) {
  myelin_builder *b = myelin_builder_new("x");
  myelin_build_int(b, NULL, 1); /* no key in a map */
  ck_assert_int_eq(myelin_builder_status(b), MYELIN_EINVAL);
  myelin_build_int(b, "ok", 1); /* sticky */
  ck_assert_int_eq(myelin_builder_status(b), MYELIN_EINVAL);
  ck_assert_ptr_null(myelin_builder_finish(b));
  b = myelin_builder_new("x");
  myelin_build_array_begin(b, "a");
  myelin_build_int(b, "k", 1); /* a key in an array */
  ck_assert_int_eq(myelin_builder_status(b), MYELIN_EINVAL);
  myelin_builder_free(b);
  b = myelin_builder_new("x");
  myelin_build_map_begin(b, "m");
  ck_assert_ptr_null(myelin_builder_finish(b)); /* still open */
  b = myelin_builder_new("x");
  myelin_build_map_end(b); /* the root cannot be closed */
  ck_assert_int_eq(myelin_builder_status(b), MYELIN_EINVAL);
  myelin_builder_free(b);
  b = myelin_builder_new("x");
  myelin_build_array_begin(b, "a");
  myelin_build_map_end(b); /* mismatched */
  ck_assert_int_eq(myelin_builder_status(b), MYELIN_EINVAL);
  myelin_builder_free(b);
  myelin_build_int(NULL, "x", 1); /* NULL builder is a no-op */
  ck_assert_int_eq(myelin_builder_status(NULL), MYELIN_EINVAL);
  ck_assert_ptr_null(myelin_builder_finish(NULL));
}
END_TEST

START_TEST(long_kind_and_big_message) {
  char kind[100];
  memset(kind, 'k', 99);
  kind[99] = 0;
  myelin_builder *b = myelin_builder_new(kind);
  int64_t shape[1] = {3 << 20};
  float *p = myelin_build_tensor(b, "data", MYELIN_F4, 1, shape);
  ck_assert_ptr_nonnull(p);
  for (int64_t i = 0; i < shape[0]; i++) p[i] = (float)i;
  myelin_build_str(b, "after", "yes");
  myelin_msg *m = myelin_builder_finish(b);
  ck_assert_ptr_nonnull(m);
  ck_assert_str_eq(myelin_msg_kind(m), kind);
  myelin_tensor t;
  ck_assert_int_eq(myelin_msg_tensor(m, "data", &t), 0);
  ck_assert_uint_eq((uintptr_t)t.data % 64, 0);
  ck_assert_float_eq(((const float *)t.data)[(3 << 20) - 1], (float)((3 << 20) - 1));
  ck_assert(myelin_obj_str_eq(myelin_msg_get(m, "after"), "yes"));
  size_t len;
  const uint8_t *bytes = myelin_msg_bytes(m, &len);
  myelin_msg *d;
  ck_assert_int_eq(myelin_msg_decode(bytes, len, 0, &d, NULL, NULL, 0), 0);
  ck_assert_str_eq(myelin_msg_kind(d), kind);
  myelin_msg_unref(d);
  myelin_msg_unref(m);
}
END_TEST

/* builder_reserve is a hint: the message is byte for byte the one built
 * without it, and an impossible reservation fails alone, not the builder. */
static myelin_msg *two_tensors(size_t reserve) {
  myelin_builder *b = myelin_builder_new("spikes");
  if (reserve) ck_assert_int_eq(myelin_builder_reserve(b, reserve), 0);
  ck_assert_int_eq(myelin_builder_reserve(b, SIZE_MAX), MYELIN_ENOMEM);
  ck_assert_int_eq(myelin_builder_status(b), 0);
  int64_t n = 50000;
  uint32_t *v = malloc((size_t)n * sizeof *v);
  for (int64_t i = 0; i < n; i++)
    v[i] = (uint32_t)(i * 7);
  myelin_build_uint(b, "n", 3);
  myelin_build_tensor_copy(b, "step", MYELIN_U4, 1, &n, v);
  myelin_build_tensor_copy(b, "unit", MYELIN_U4, 1, &n, v);
  free(v);
  myelin_msg *m = myelin_builder_finish(b);
  ck_assert_ptr_nonnull(m);
  return m;
}

START_TEST(builder_reserve_is_a_hint) {
  myelin_msg *a = two_tensors(0), *b = two_tensors(2 * 50000 * 4 + 1024), *c = two_tensors(10);
  size_t la, lb, lc;
  const uint8_t *pa = myelin_msg_bytes(a, &la), *pb = myelin_msg_bytes(b, &lb), *pc = myelin_msg_bytes(c, &lc);
  ck_assert_uint_eq(la, lb);
  ck_assert_uint_eq(la, lc);
  ck_assert_mem_eq(pa, pb, la);
  ck_assert_mem_eq(pa, pc, la);
  myelin_tensor t;
  ck_assert_int_eq(myelin_msg_tensor(b, "unit", &t), 0);
  ck_assert_uint_eq((uintptr_t)t.data % 64, 0);
  ck_assert_uint_eq(((const uint32_t *)t.data)[49999], 49999u * 7);
  myelin_msg_unref(a);
  myelin_msg_unref(b);
  myelin_msg_unref(c);
}
END_TEST

START_TEST(deep_copy_and_context) {
  myelin_msg *src = build_all();
  myelin_msg *ts = build_tensors();
  myelin_builder *b = myelin_builder_new("copy");
  myelin_build_obj(b, "inner", myelin_msg_get(src, "inner"));
  myelin_build_obj(b, "root", myelin_msg_root(src));
  myelin_build_obj(b, "t2", myelin_msg_get(ts, "t2"));
  myelin_build_fields(b, src, (const char *const[]){"split", "seq", "absent", NULL});
  ck_assert_int_eq(myelin_builder_status(b), 0);
  myelin_msg *m = myelin_builder_finish(b);
  ck_assert_ptr_nonnull(m);
  int64_t i;
  ck_assert_int_eq(myelin_obj_int(myelin_obj_get(myelin_msg_get(m, "inner"), "a"), &i), 0);
  ck_assert_int_eq(i, 1);
  myelin_obj r = myelin_msg_get(m, "root");
  ck_assert_uint_eq(myelin_obj_len(r), 15);
  ck_assert(myelin_obj_str_eq(myelin_obj_get(r, "split"), "train"));
  ck_assert(myelin_obj_str_eq(myelin_msg_get(m, "split"), "train"));
  ck_assert(!myelin_obj_exists(myelin_msg_get(m, "absent")));
  myelin_tensor a, c;
  ck_assert_int_eq(myelin_msg_tensor(ts, "t2", &a), 0);
  ck_assert_int_eq(myelin_msg_tensor(m, "t2", &c), 0);
  ck_assert_uint_eq((uintptr_t)c.data % want_align(c.nbytes), 0);
  ck_assert_uint_eq(a.nbytes, c.nbytes);
  ck_assert(memcmp(a.data, c.data, a.nbytes) == 0);
  /* context: only the keys present are copied */
  myelin_builder *b2 = myelin_builder_new("sample");
  myelin_build_context(b2, src);
  myelin_msg *m2 = myelin_builder_finish(b2);
  ck_assert_uint_eq(myelin_obj_len(myelin_msg_root(m2)), 2); /* kind + split */
  ck_assert(myelin_obj_str_eq(myelin_msg_get(m2, "split"), "train"));
  /* a sharded run's place among all ranks' runs is context too */
  myelin_builder *bs = myelin_builder_new("run");
  myelin_build_int(bs, "n_subjects", 40);
  myelin_build_int(bs, "subject_index", 17);
  myelin_build_int(bs, "seq", 3);
  myelin_msg *sm = myelin_builder_finish(bs);
  myelin_builder *bc = myelin_builder_new("map");
  myelin_build_context(bc, sm);
  myelin_msg *cm = myelin_builder_finish(bc);
  ck_assert_uint_eq(myelin_obj_len(myelin_msg_root(cm)), 3); /* kind + both, not seq */
  int64_t si = 0;
  ck_assert_int_eq(myelin_obj_int(myelin_msg_get(cm, "subject_index"), &si), 0);
  ck_assert_int_eq(si, 17);
  myelin_msg_unref(cm);
  myelin_msg_unref(sm);
  /* copying an absent value is an error */
  myelin_builder *b3 = myelin_builder_new("x");
  myelin_build_obj(b3, "x", myelin_msg_get(src, "absent"));
  ck_assert_int_eq(myelin_builder_status(b3), MYELIN_ENOENT);
  myelin_builder_free(b3);
  myelin_msg_unref(m2);
  myelin_msg_unref(m);
  myelin_msg_unref(ts);
  myelin_msg_unref(src);
}
END_TEST

/* Many threads read one fresh message at once: the lazy parse is published
 * once and every reader sees the same tree. */
#include <pthread.h>
static void *reader(void *arg) {
  const myelin_msg *m = arg;
  for (int k = 0; k < 100; k++) check_all(m);
  return (void *)myelin_msg_root(m).o;
}

/* Threads asking at once for the same misaligned tensor share one copy. */
static void *misaligned_reader(void *arg) {
  const myelin_msg *m = arg;
  myelin_tensor t;
  if (myelin_msg_tensor(m, "data", &t) != 0 || (uintptr_t)t.data % 8) return NULL;
  if (((const double *)t.data)[1] != -2.25) return NULL;
  return (void *)t.data;
}

START_TEST(concurrent_side_copies) {
  uint8_t buf[80];
  memcpy(buf, "\x82\xa4kind\xa6tensor\xa4" "data\x83\xa5" "dtype\xa3<f8\xa5shape\x91\x03\xa4" "data\xc4\x18", 44);
  const double vals[3] = {1.5, -2.25, 1e300};
  memcpy(buf + 44, vals, sizeof vals);
  for (int round = 0; round < 20; round++) {
    myelin_msg *m;
    ck_assert_int_eq(myelin_msg_decode(buf, 68, 0, &m, NULL, NULL, 0), 0);
    pthread_t th[4];
    void *ptrs[4];
    for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, misaligned_reader, m);
    for (int i = 0; i < 4; i++) pthread_join(th[i], &ptrs[i]);
    ck_assert_ptr_nonnull(ptrs[0]);
    for (int i = 1; i < 4; i++) ck_assert_ptr_eq(ptrs[i], ptrs[0]);
    myelin_msg_unref(m);
  }
}
END_TEST

START_TEST(concurrent_readers) {
  for (int round = 0; round < 20; round++) {
    myelin_msg *m = build_all();
    pthread_t th[4];
    void *roots[4];
    for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, reader, myelin_msg_ref(m));
    for (int i = 0; i < 4; i++) pthread_join(th[i], &roots[i]);
    for (int i = 1; i < 4; i++) ck_assert_ptr_eq(roots[i], roots[0]);
    for (int i = 0; i < 5; i++) myelin_msg_unref(m);
  }
}
END_TEST

START_TEST(strerror_all) {
  for (int c = 0; c >= -10; c--) {
    const char *s = myelin_strerror(c);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_ne(s, "unknown error");
  }
  ck_assert_str_eq(myelin_strerror(-99), "unknown error");
}
END_TEST

/* ---- Python interop ------------------------------------------------------ */

static void write_bytes(const char *path, const myelin_msg *m, FILE *f) {
  size_t len;
  const uint8_t *b = myelin_msg_bytes(m, &len);
  ck_assert_msg(fwrite(b, 1, len, f) == len, "write %s", path);
}

START_TEST(python_reads_ours) {
  MT_NEED_PYTHON("msgpack numpy", "the Python interop check");
  char *dir = mt_tmpdir();
  char *path = mt_strf("%s/m.mpk", dir);
  FILE *f = fopen(path, "wb");
  myelin_msg *a = build_tensors(), *b = build_all();
  write_bytes(path, a, f);
  write_bytes(path, b, f);
  fclose(f);
  char *py = mt_strf(
      "%s - <<'EOF'\n"
      "import msgpack, numpy as np\n"
      "ms = list(msgpack.Unpacker(open('%s', 'rb'), raw=False))\n"
      "assert len(ms) == 2 and ms[0]['kind'] == 'tensor' and ms[1]['kind'] == 'sample'\n"
      "def arr(m): return np.frombuffer(m['data'], m['dtype']).reshape(m['shape'])\n"
      "a = arr(ms[0]['t2'])\n"
      "assert a.dtype == np.float64 and a.shape == (3, 7), a.shape\n"
      "exp = np.array([(i * 7 + 2) & 255 for i in range(3 * 7 * 8)], np.uint8).view('<f8').reshape(3, 7)\n"
      "assert np.array_equal(a.view(np.uint8), exp.view(np.uint8))\n"
      "b = arr(ms[0]['t5'])\n"
      "assert b.dtype == np.bool_ and b.shape == (6, 13) and b.sum() == 39\n"
      "assert arr(ms[0]['scalar']) == 3.5 and arr(ms[0]['empty']).shape == (0,)\n"
      "s = ms[1]\n"
      "assert s['seq'] == 1234567890123 and s['t'] == 1.25 and s['big'] == -2**63 and s['umax'] == 2**64 - 1\n"
      "assert s['yes'] is True and s['nothing'] is None and s['blob'] == b'\\x00\\x01\\x02'\n"
      "assert s['inner'] == {'a': 1, 'list': [10, 'x', {'f': -0.5}]} and s['empty'] == []\n"
      "print('PYOK')\n"
      "EOF\n",
      mt_env("MYELIN_PYTHON", "/usr/bin/python3"), path);
  char *out = NULL;
  int rc = mt_run(py, &out);
  ck_assert_msg(rc == 0 && strstr(out, "PYOK"), "python failed (%d): %s", rc, out);
  free(out);
  free(py);
  myelin_msg_unref(a);
  myelin_msg_unref(b);
  unlink(path);
  rmdir(dir);
  free(path);
  free(dir);
}
END_TEST

static uint8_t *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *p = malloc((size_t)n + 1);
  ck_assert_uint_eq(fread(p, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  *len = (size_t)n;
  return p;
}

START_TEST(we_read_python) {
  MT_NEED_PYTHON("msgpack numpy", "the Python interop check");
  char *dir = mt_tmpdir();
  char *path = mt_strf("%s/py.mpk", dir);
  char *py = mt_strf(
      "%s - <<'EOF'\n"
      "import msgpack, numpy as np\n"
      "x = np.arange(6, dtype='<f4').reshape(2, 3) * 0.5\n"
      "m1 = {'kind': 'tensor', 'seq': 1, 't': 0.5, 'neg': -3, 'big': 70000,\n"
      "      'data': {'dtype': x.dtype.str, 'shape': list(x.shape), 'data': x.tobytes()}}\n"
      "v = np.array([1, 2, 3], '<u4')\n"
      "m2 = {'kind': 'spikes', 'n': 3, 'label': -1, 'name': 'a' * 40,\n"
      "      'unit': {'dtype': v.dtype.str, 'shape': [3], 'data': v.tobytes()}, 'nested': {'l': [1.5, None, True]}}\n"
      "with open('%s', 'wb') as f:\n"
      "    f.write(msgpack.packb(m1, use_single_float=True))\n"
      "    f.write(msgpack.packb(m2))\n"
      "EOF\n",
      mt_env("MYELIN_PYTHON", "/usr/bin/python3"), path);
  char *out = NULL;
  int rc = mt_run(py, &out);
  ck_assert_msg(rc == 0, "python failed (%d): %s", rc, out);
  free(out);
  size_t len, used;
  uint8_t *bytes = slurp(path, &len);
  myelin_msg *d;
  char err[128];
  ck_assert_int_eq(myelin_msg_decode(bytes, len, 0, &d, &used, err, sizeof err), 0);
  ck_assert(bytes[0] == 0x86); /* python wrote a fixmap */
  ck_assert_str_eq(myelin_msg_kind(d), "tensor");
  double t;
  int64_t i;
  ck_assert_int_eq(myelin_msg_float(d, "t", &t), 0); /* float32 on the wire */
  ck_assert_double_eq(t, 0.5);
  ck_assert_int_eq(myelin_msg_int(d, "neg", &i), 0);
  ck_assert_int_eq(i, -3);
  ck_assert_int_eq(myelin_msg_int(d, "big", &i), 0);
  ck_assert_int_eq(i, 70000);
  myelin_tensor tt;
  ck_assert_int_eq(myelin_msg_tensor(d, "data", &tt), 0);
  ck_assert_int_eq(tt.dtype, MYELIN_F4);
  ck_assert_int_eq(tt.ndim, 2);
  ck_assert_uint_eq((uintptr_t)tt.data % 4, 0);
  for (int k = 0; k < 6; k++) ck_assert_float_eq(((const float *)tt.data)[k], 0.5f * (float)k);
  myelin_msg_unref(d);
  size_t used2;
  ck_assert_int_eq(myelin_msg_decode(bytes + used, len - used, 0, &d, &used2, err, sizeof err), 0);
  ck_assert_uint_eq(used + used2, len);
  ck_assert_str_eq(myelin_msg_kind(d), "spikes");
  ck_assert_int_eq(myelin_msg_tensor(d, "unit", &tt), 0);
  ck_assert_int_eq(tt.dtype, MYELIN_U4);
  ck_assert_uint_eq(((const uint32_t *)tt.data)[2], 3);
  ck_assert_int_eq(myelin_msg_int(d, "label", &i), 0);
  ck_assert_int_eq(i, -1);
  myelin_obj l = myelin_obj_get(myelin_msg_get(d, "nested"), "l");
  ck_assert_int_eq(myelin_obj_type_of(myelin_obj_at(l, 1)), MYELIN_OBJ_NIL);
  ck_assert_int_eq(myelin_obj_type_of(myelin_obj_at(l, 2)), MYELIN_OBJ_BOOL);
  /* deep copy keeps float32 a float */
  myelin_builder *b = myelin_builder_new("copy");
  myelin_build_obj(b, "l", l);
  myelin_msg *c = myelin_builder_finish(b);
  double f;
  ck_assert_int_eq(myelin_obj_float(myelin_obj_at(myelin_msg_get(c, "l"), 0), &f), 0);
  ck_assert_double_eq(f, 1.5);
  myelin_msg_unref(c);
  myelin_msg_unref(d);
  free(bytes);
  free(py);
  unlink(path);
  rmdir(dir);
  free(path);
  free(dir);
}
END_TEST

Suite *msg_suite(void) {
  Suite *s = suite_create("msg");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, roundtrip_built);
  tcase_add_test(tc, roundtrip_decoded);
  tcase_add_test(tc, refcount);
  tcase_add_test(tc, tensor_alignment);
  tcase_add_test(tc, tensor_bad);
  tcase_add_test(tc, dtypes);
  tcase_add_test(tc, truncated_prefixes);
  tcase_add_test(tc, garbage);
  tcase_add_test(tc, depth_limit);
  tcase_add_test(tc, size_limit);
  tcase_add_test(tc, misaligned_payload);
  tcase_add_test(tc, padding_only_for_large_tensors);
  tcase_add_test(tc, builder_errors);
  tcase_add_test(tc, long_kind_and_big_message);
  tcase_add_test(tc, deep_copy_and_context);
  tcase_add_test(tc, concurrent_readers);
  tcase_add_test(tc, concurrent_side_copies);
  tcase_add_test(tc, builder_reserve_is_a_hint);
  tcase_add_test(tc, strerror_all);
  tcase_add_test(tc, python_reads_ours);
  tcase_add_test(tc, we_read_python);
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
