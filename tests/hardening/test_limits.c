/*
 * test_limits.c — the documented limits (docs/limits.md) are enforced, with
 * a clear error, before the memory they bound is committed (issue 12).
 *
 * Messages (runtime/src/msg.c, decode side): size (default 256 MiB or the
 * caller's max_bytes) is checked from the headers, so a 20-byte buffer that
 * claims a 300 MiB bin is refused as too large (ERANGE) instead of waiting
 * for the bytes (EAGAIN); nesting deeper than MYELIN_MAX_DEPTH; tensors of
 * rank > MYELIN_MAX_NDIM, shapes whose element count overflows or differs
 * from the data length. Builders refuse the same (rank, depth).
 * Pipeline files (runtime/src/pipeline.c): file size 1 MiB, 1024 stages,
 * 1024 inputs per stage, queue capacity 2^20 — exactly at the limit is
 * accepted, one over is an error naming the file.
 */
#include <stdint.h>

#include "myelin/msg.h"
#include "testutil.h"

/* ---- a tiny msgpack writer for hand-made (possibly hostile) messages ---- */
typedef struct wbuf {
  uint8_t b[4096];
  size_t n;
} wbuf;

static void put(wbuf *w, const void *p, size_t n) {
  ck_assert_uint_le(w->n + n, sizeof w->b);
  memcpy(w->b + w->n, p, n);
  w->n += n;
}
static void put1(wbuf *w, uint8_t x) { put(w, &x, 1); }
static void put_be32(wbuf *w, uint32_t x) {
  uint8_t b[4] = {(uint8_t)(x >> 24), (uint8_t)(x >> 16), (uint8_t)(x >> 8), (uint8_t)x};
  put(w, b, 4);
}
static void put_str(wbuf *w, const char *s) {
  put1(w, (uint8_t)(0xa0 | strlen(s)));
  put(w, s, strlen(s));
}
static void put_u64(wbuf *w, uint64_t x) {
  put1(w, 0xcf);
  for (int i = 7; i >= 0; i--) put1(w, (uint8_t)(x >> (8 * i)));
}
/* {"kind": "tensor", "data": {"dtype": dt, "shape": [dims...], "data": bin(nbytes)}} */
static void tensor_msg(wbuf *w, const char *dt, int ndim, const uint64_t *dims, size_t nbytes) {
  w->n = 0;
  put1(w, 0x82);
  put_str(w, "kind");
  put_str(w, "tensor");
  put_str(w, "data");
  put1(w, 0x83);
  put_str(w, "dtype");
  put_str(w, dt);
  put_str(w, "shape");
  put1(w, (uint8_t)(0x90 | ndim));
  for (int i = 0; i < ndim; i++) put_u64(w, dims[i]);
  put_str(w, "data");
  put1(w, 0xc5);
  put1(w, (uint8_t)(nbytes >> 8));
  put1(w, (uint8_t)nbytes);
  for (size_t i = 0; i < nbytes; i++) put1(w, 0);
}

static int decode(const wbuf *w, size_t max, myelin_msg **m) {
  size_t used = 0;
  char err[256];
  *m = NULL;
  return myelin_msg_decode(w->b, w->n, max, m, &used, err, sizeof err);
}

START_TEST(message_size_checked_from_headers) {
  wbuf w = {.n = 0};
  put1(&w, 0x82);
  put_str(&w, "kind");
  put_str(&w, "tensor");
  put_str(&w, "blob");
  put1(&w, 0xc6);
  put_be32(&w, 300u << 20); /* claims 300 MiB, sends nothing of it */
  myelin_msg *m;
  ck_assert_int_eq(decode(&w, 0, &m), MYELIN_ERANGE); /* over the 256 MiB default: refused now */
  ck_assert_ptr_null(m);
  w.n -= 4;
  put_be32(&w, 1000);
  ck_assert_int_eq(decode(&w, 0, &m), MYELIN_EAGAIN); /* within it: waits for the bytes */
  ck_assert_int_eq(decode(&w, 512, &m), MYELIN_ERANGE); /* the caller's smaller limit */
}
END_TEST

START_TEST(message_nesting) {
  for (int depth = MYELIN_MAX_DEPTH - 2; depth <= MYELIN_MAX_DEPTH + 2; depth++) {
    wbuf w = {.n = 0};
    put1(&w, 0x82);
    put_str(&w, "kind");
    put_str(&w, "x");
    put_str(&w, "a");
    for (int i = 1; i < depth; i++) put1(&w, 0x91); /* root map + depth-1 arrays */
    put1(&w, 0x01);
    myelin_msg *m;
    int rc = decode(&w, 0, &m);
    if (depth <= MYELIN_MAX_DEPTH) {
      ck_assert_msg(rc == 0, "depth %d refused (%d)", depth, rc);
      myelin_msg_unref(m);
    } else {
      ck_assert_msg(rc == MYELIN_ERANGE, "depth %d accepted (%d)", depth, rc);
    }
  }
  /* the builder refuses the same */
  myelin_builder *b = myelin_builder_new("x");
  ck_assert_ptr_nonnull(b);
  myelin_build_array_begin(b, "a");
  for (int i = 0; i < MYELIN_MAX_DEPTH + 2; i++) myelin_build_array_begin(b, NULL);
  ck_assert_int_ne(myelin_builder_status(b), 0);
  myelin_builder_free(b);
}
END_TEST

START_TEST(tensor_rank_and_count) {
  wbuf w;
  myelin_msg *m;
  myelin_tensor t;
  uint64_t d8[9] = {1, 1, 1, 1, 1, 1, 1, 2, 1};
  tensor_msg(&w, "<f4", 8, d8, 8); /* rank 8: fine */
  ck_assert_int_eq(decode(&w, 0, &m), 0);
  ck_assert_int_eq(myelin_msg_tensor(m, "data", &t), 0);
  ck_assert_int_eq(t.ndim, 8);
  ck_assert_uint_eq(t.count, 2);
  myelin_msg_unref(m);
  tensor_msg(&w, "<f4", 9, d8, 8); /* rank 9 */
  ck_assert_int_eq(decode(&w, 0, &m), 0);
  ck_assert_int_ne(myelin_msg_tensor(m, "data", &t), 0);
  myelin_msg_unref(m);
  uint64_t big[3] = {1ull << 31, 1ull << 31, 1ull << 31}; /* 2^93 elements: overflows */
  tensor_msg(&w, "<f4", 3, big, 8);
  ck_assert_int_eq(decode(&w, 0, &m), 0);
  ck_assert_int_ne(myelin_msg_tensor(m, "data", &t), 0);
  myelin_msg_unref(m);
  uint64_t wrap[2] = {1ull << 62, 4}; /* 2^64 elements: wraps to 0 if unchecked */
  tensor_msg(&w, "|u1", 2, wrap, 0);
  ck_assert_int_eq(decode(&w, 0, &m), 0);
  ck_assert_int_ne(myelin_msg_tensor(m, "data", &t), 0);
  myelin_msg_unref(m);
  uint64_t three[1] = {3}; /* 3 x <f4 = 12 bytes, 8 given */
  tensor_msg(&w, "<f4", 1, three, 8);
  ck_assert_int_eq(decode(&w, 0, &m), 0);
  ck_assert_int_ne(myelin_msg_tensor(m, "data", &t), 0);
  myelin_msg_unref(m);
  /* the builder refuses rank 9 */
  myelin_builder *b = myelin_builder_new("tensor");
  int64_t s9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
  ck_assert_ptr_null(myelin_build_tensor(b, "data", MYELIN_F4, 9, s9));
  myelin_builder_free(b);
}
END_TEST

/* ---- pipeline files ------------------------------------------------------ */
static const char *dir;

static int validate(const char *name, const char *text, char **out) {
  if (!dir) dir = mt_tmpdir();
  const char *path = mt_strf("%s/%s", dir, name);
  mt_write(path, text);
  return mt_run(mt_strf("'%s' validate '%s'", mt_env("MYELIN_BIN", "myelin"), path), out);
}

static char *stages_yaml(int n, int inputs_of_last) {
  size_t cap = (size_t)n * 96 + (size_t)inputs_of_last * 8 + 256;
  char *s = mt_keep(malloc(cap));
  size_t k = (size_t)snprintf(s, cap, "name: big\nstages:\n");
  for (int i = 0; i < n; i++)
    k += (size_t)snprintf(s + k, cap - k, "  - {id: g%d, plugin: gen_source, params: {count: 1}}\n", i);
  if (inputs_of_last) {
    k += (size_t)snprintf(s + k, cap - k, "  - {id: sink, plugin: null_sink, inputs: [");
    for (int i = 0; i < inputs_of_last; i++) k += (size_t)snprintf(s + k, cap - k, "%sg0", i ? ", " : "");
    k += (size_t)snprintf(s + k, cap - k, "]}\n");
  }
  return s;
}

START_TEST(pipeline_file_size) {
  size_t lim = 1u << 20;
  const char *head = "name: x\nstages:\n  - {id: g, plugin: gen_source, params: {count: 1}}\n#";
  char *s = mt_keep(malloc(lim + 2));
  memset(s, 'a', lim + 1);
  memcpy(s, head, strlen(head));
  s[lim - 1] = '\n';
  s[lim] = 0; /* exactly 1 MiB */
  char *out = NULL;
  ck_assert_msg(validate("exact.yaml", s, &out) == 0, "%s", out);
  free(out);
  s[lim] = '\n';
  s[lim + 1] = 0; /* one byte over */
  ck_assert_int_eq(validate("over.yaml", s, &out), 2);
  ck_assert_msg(strstr(out, "over.yaml") && strstr(out, "over the limit of 1048576 bytes"), "%s", out);
  free(out);
}
END_TEST

START_TEST(pipeline_stages) {
  char *out = NULL;
  ck_assert_msg(validate("s1024.yaml", stages_yaml(1024, 0), &out) == 0, "%.2000s", out);
  free(out);
  ck_assert_int_eq(validate("s1025.yaml", stages_yaml(1025, 0), &out), 2);
  ck_assert_msg(strstr(out, "s1025.yaml:3:") && strstr(out, "1025 stages; the limit is 1024"), "%.2000s", out);
  free(out);
}
END_TEST

START_TEST(pipeline_inputs) {
  char *out = NULL;
  ck_assert_msg(validate("i1024.yaml", stages_yaml(1, 1024), &out) == 0, "%.2000s", out);
  free(out);
  ck_assert_int_eq(validate("i1025.yaml", stages_yaml(1, 1025), &out), 2);
  ck_assert_msg(strstr(out, "i1025.yaml:4:") && strstr(out, "the limit is 1024 per stage"), "%.2000s", out);
  free(out);
}
END_TEST

START_TEST(pipeline_queue_capacity) {
  const char *fmt = "name: q\nstages:\n  - {id: g, plugin: gen_source, params: {count: 1}}\n"
                    "  - {id: n, plugin: null_sink, inputs: [g], queue: {capacity: %ld}}\n";
  char *out = NULL;
  ck_assert_msg(validate("q1.yaml", mt_strf(fmt, 1L << 20), &out) == 0, "%s", out);
  free(out);
  ck_assert_int_eq(validate("q2.yaml", mt_strf(fmt, (1L << 20) + 1), &out), 2);
  ck_assert_msg(strstr(out, "q2.yaml:4:") && strstr(out, "over the limit of 1048576 messages"), "%s", out);
  free(out);
}
END_TEST

int main(void) {
  Suite *s = suite_create("limits");
  TCase *tc = tcase_create("limits");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, message_size_checked_from_headers);
  tcase_add_test(tc, message_nesting);
  tcase_add_test(tc, tensor_rank_and_count);
  tcase_add_test(tc, pipeline_file_size);
  tcase_add_test(tc, pipeline_stages);
  tcase_add_test(tc, pipeline_inputs);
  tcase_add_test(tc, pipeline_queue_capacity);
  suite_add_tcase(s, tc);
  SRunner *r = srunner_create(s);
  srunner_run_all(r, CK_NORMAL);
  int failed = srunner_ntests_failed(r);
  srunner_free(r);
  return failed ? 1 : 0;
}
