/*
 * test_stream.c — stream files through io.h's writer and reader (issue 16
 * item 10): myelin_writer puts every padded tensor payload on a multiple of
 * 64 bytes of the file; myelin_reader maps a regular file and hands out its
 * large messages in place (their bytes are the mapping's, their tensors
 * aligned), copies the small ones, keeps a window mapped while a message
 * uses it (after the reader and the FILE are gone), crosses 64 MiB windows,
 * reads pipes the old way (copies keep the payloads 64-byte aligned), stops at a truncated tail after the
 * good prefix with the byte offset, and a read -> write round trip is byte-identical.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "myelin/io.h"
#include "testutil.h"

/* Payload sizes: odd small strings shift the offsets of everything after. */
static const size_t SIZES[] = {3, 100, 4096, 5000, 70000, 1 << 20, 3000001, 17, 12 << 20, 64, 9999};
#define NSIZES (sizeof SIZES / sizeof *SIZES)

static uint8_t fill_byte(size_t msg, size_t i) { return (uint8_t)(i * 31 + msg * 7 + (i >> 12)); }

/* Message i: a "run"-like map with an odd-length name (so offsets drift),
 * a |u1 tensor of SIZES[i % NSIZES] bytes and, for large ones, a second
 * <f4 tensor after it (two pads in one message). */
static myelin_msg *make_msg(size_t i) {
  myelin_builder *b = myelin_builder_new("tensor");
  char name[40];
  memset(name, 'a' + (int)(i % 26), sizeof name);
  myelin_build_strn(b, "name", name, i % 37);
  myelin_build_uint(b, "seq", i);
  size_t n = SIZES[i % NSIZES];
  int64_t shape[1] = {(int64_t)n};
  uint8_t *p = myelin_build_tensor(b, "data", MYELIN_U1, 1, shape);
  ck_assert_ptr_nonnull(p);
  for (size_t k = 0; k < n; k++)
    p[k] = fill_byte(i, k);
  if (n >= 4096) {
    int64_t s2[2] = {3, 1001};
    float *f = myelin_build_tensor(b, "w", MYELIN_F4, 2, s2);
    ck_assert_ptr_nonnull(f);
    for (int k = 0; k < 3003; k++)
      f[k] = (float)k + (float)i;
  }
  myelin_msg *m = myelin_builder_finish(b);
  ck_assert_ptr_nonnull(m);
  return m;
}

/* Writes messages 0..n-1 to path with myelin_writer; returns the file size. */
static long write_file(const char *path, size_t n) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  myelin_writer *w = myelin_writer_new(fileno(f));
  ck_assert_ptr_nonnull(w);
  char err[256];
  for (size_t i = 0; i < n; i++) {
    myelin_msg *m = make_msg(i);
    ck_assert_int_eq(myelin_writer_put(w, m, err, sizeof err), 0);
    myelin_msg_unref(m);
  }
  ck_assert_int_eq(myelin_writer_flush(w, err, sizeof err), 0);
  long size = (long)myelin_writer_offset(w);
  myelin_writer_free(w);
  ck_assert_int_eq(fclose(f), 0);
  ck_assert_int_eq(mt_file_size(path), size);
  return size;
}

/* Message i as read back: same fields and bytes; `at` is its byte offset
 * in the file (UINT64_MAX: not known). Large tensors sit on multiples of 64
 * of the file and of memory. */
static void check_msg(const myelin_msg *m, size_t i, uint64_t at, int mapped) {
  size_t len;
  const uint8_t *bytes = myelin_msg_bytes(m, &len);
  uint64_t seq;
  ck_assert_int_eq(myelin_msg_uint(m, "seq", &seq), 0);
  ck_assert_uint_eq(seq, i);
  myelin_tensor t;
  ck_assert_int_eq(myelin_msg_tensor(m, "data", &t), 0);
  size_t n = SIZES[i % NSIZES];
  ck_assert_uint_eq(t.nbytes, n);
  const uint8_t *d = t.data;
  for (size_t k = 0; k < n; k++)
    if (d[k] != fill_byte(i, k)) ck_abort_msg("message %zu: byte %zu differs", i, k);
  if (n < 4096) return;
  /* read in place (not a side copy): the payload is inside the message */
  ck_assert_msg(d > bytes && d + n <= bytes + len, "message %zu: tensor copied out of the message", i);
  uint64_t file_off = at + (uint64_t)(d - bytes);
  ck_assert_msg(at == UINT64_MAX || file_off % 64 == 0, "message %zu: payload at file offset %llu", i,
                (unsigned long long)file_off);
  ck_assert_uint_eq((uintptr_t)d % 64, 0); /* in place when mapped, or a copy at the file's phase */
  myelin_tensor w;
  ck_assert_int_eq(myelin_msg_tensor(m, "w", &w), 0);
  ck_assert_uint_eq((uintptr_t)w.data % 64, 0);
  if (at != UINT64_MAX) ck_assert_uint_eq((at + (uint64_t)((const uint8_t *)w.data - bytes)) % 64, 0);
  ck_assert_float_eq(((const float *)w.data)[3002], 3002.0f + (float)i);
  if (mapped && at != UINT64_MAX && len >= (64 << 10)) {
    /* borrowed from the mapping: its address follows the file offset */
    long page = sysconf(_SC_PAGESIZE);
    ck_assert_uint_eq((uintptr_t)bytes % (uintptr_t)page, at % (uint64_t)page);
  }
}

START_TEST(mapped_read_in_place_and_aligned) {
  char *dir = mt_tmpdir();
  char *path = mt_strf("%s/s.mpk", dir);
  size_t n = 3 * NSIZES;
  write_file(path, n);
  FILE *f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  myelin_reader *r = myelin_reader_new(f, 0);
  ck_assert_ptr_nonnull(r);
  myelin_msg **kept = calloc(n, sizeof *kept);
  char err[256];
  for (size_t i = 0; i < n; i++) {
    uint64_t at = myelin_reader_offset(r);
    ck_assert_int_eq(myelin_reader_next(r, &kept[i], err, sizeof err), 1);
    check_msg(kept[i], i, at, 1);
  }
  myelin_msg *end;
  ck_assert_int_eq(myelin_reader_next(r, &end, err, sizeof err), 0);
  /* the messages outlive the reader and the FILE: their windows stay mapped */
  myelin_reader_free(r);
  fclose(f);
  unlink(path);
  for (size_t i = 0; i < n; i++) {
    check_msg(kept[i], i, UINT64_MAX, 0); /* contents and alignment */
    myelin_msg_unref(kept[i]);
  }
  free(kept);
}
END_TEST

/* 72 MiB: messages that start in one 64 MiB window and end in the next. */
START_TEST(mapped_windows) {
  char *dir = mt_tmpdir();
  char *path = mt_strf("%s/w.mpk", dir);
  FILE *f = fopen(path, "wb");
  myelin_writer *w = myelin_writer_new(fileno(f));
  char err[256];
  size_t n = 8;
  for (size_t i = 0; i < n; i++) {
    myelin_builder *b = myelin_builder_new("tensor");
    myelin_build_uint(b, "seq", i);
    int64_t shape[1] = {9 << 20};
    uint8_t *p = myelin_build_tensor(b, "data", MYELIN_U1, 1, shape);
    memset(p, (int)i + 1, (size_t)shape[0]);
    p[0] = 0xAB, p[shape[0] - 1] = 0xCD;
    myelin_msg *m = myelin_builder_finish(b);
    ck_assert_int_eq(myelin_writer_put(w, m, err, sizeof err), 0);
    myelin_msg_unref(m);
  }
  ck_assert_int_eq(myelin_writer_flush(w, err, sizeof err), 0);
  myelin_writer_free(w);
  fclose(f);
  f = fopen(path, "rb");
  myelin_reader *r = myelin_reader_new(f, 0);
  for (int pass = 0; pass < 2; pass++) { /* and again after a rewind */
    for (size_t i = 0; i < n; i++) {
      myelin_msg *m;
      uint64_t at = myelin_reader_offset(r);
      ck_assert_int_eq(myelin_reader_next(r, &m, err, sizeof err), 1);
      myelin_tensor t;
      ck_assert_int_eq(myelin_msg_tensor(m, "data", &t), 0);
      const uint8_t *d = t.data, *bytes = myelin_msg_bytes(m, NULL);
      ck_assert_uint_eq(t.nbytes, 9u << 20);
      ck_assert_uint_eq(d[0], 0xAB);
      ck_assert_uint_eq(d[t.nbytes / 2], i + 1);
      ck_assert_uint_eq(d[t.nbytes - 1], 0xCD);
      ck_assert_uint_eq((uintptr_t)d % 64, 0);
      ck_assert_uint_eq((at + (uint64_t)(d - bytes)) % 64, 0);
      myelin_msg_unref(m);
    }
    myelin_msg *m;
    ck_assert_int_eq(myelin_reader_next(r, &m, err, sizeof err), 0);
    myelin_reader_rewind(r);
  }
  myelin_reader_free(r);
  fclose(f);
  unlink(path);
}
END_TEST

/* A pipe is read(), not mapped: same messages, contents intact. */
START_TEST(pipe_read) {
  char *dir = mt_tmpdir();
  char *path = mt_strf("%s/p.mpk", dir);
  size_t n = NSIZES;
  write_file(path, n);
  FILE *f = popen(mt_strf("cat '%s'", path), "r");
  ck_assert_ptr_nonnull(f);
  myelin_reader *r = myelin_reader_new(f, 0);
  char err[256];
  for (size_t i = 0; i < n; i++) {
    myelin_msg *m;
    uint64_t at = myelin_reader_offset(r);
    ck_assert_int_eq(myelin_reader_next(r, &m, err, sizeof err), 1);
    check_msg(m, i, at, 0);
    myelin_msg_unref(m);
  }
  myelin_msg *m;
  ck_assert_int_eq(myelin_reader_next(r, &m, err, sizeof err), 0);
  myelin_reader_free(r);
  pclose(f);
}
END_TEST

/* A file cut inside a large message: every message before it is returned
 * intact, then an error naming the byte offset where the cut message starts. */
START_TEST(truncated_large_message) {
  char *dir = mt_tmpdir();
  char *path = mt_strf("%s/t.mpk", dir);
  size_t n = NSIZES; /* message 8 is the 12 MiB one */
  write_file(path, n);
  FILE *f = fopen(path, "rb");
  myelin_reader *r = myelin_reader_new(f, 0);
  char err[256];
  uint64_t off8 = 0;
  for (size_t i = 0; i <= 8; i++) {
    myelin_msg *m;
    off8 = myelin_reader_offset(r);
    ck_assert_int_eq(myelin_reader_next(r, &m, err, sizeof err), 1);
    myelin_msg_unref(m);
  }
  myelin_reader_free(r);
  fclose(f);
  ck_assert_int_eq(truncate(path, (off_t)(off8 + (6 << 20))), 0);
  f = fopen(path, "rb");
  r = myelin_reader_new(f, 0);
  for (size_t i = 0; i < 8; i++) {
    myelin_msg *m;
    uint64_t at = myelin_reader_offset(r);
    ck_assert_int_eq(myelin_reader_next(r, &m, err, sizeof err), 1);
    check_msg(m, i, at, 1);
    myelin_msg_unref(m);
  }
  myelin_msg *m = NULL;
  ck_assert_int_eq(myelin_reader_next(r, &m, err, sizeof err), MYELIN_EFORMAT);
  ck_assert_ptr_null(m);
  char *want =
      mt_strf("truncated message at byte offset %llu (%d trailing bytes)", (unsigned long long)off8, 6 << 20);
  ck_assert_msg(strstr(err, want), "%s", err);
  myelin_reader_free(r);
  fclose(f);
}
END_TEST

/* Read every message of a file and write it again: the same bytes. */
START_TEST(read_write_round_trip_identical) {
  char *dir = mt_tmpdir();
  char *a = mt_strf("%s/a.mpk", dir), *b = mt_strf("%s/b.mpk", dir);
  size_t n = 2 * NSIZES;
  write_file(a, n);
  FILE *in = fopen(a, "rb"), *out = fopen(b, "wb");
  myelin_reader *r = myelin_reader_new(in, 0);
  myelin_writer *w = myelin_writer_new(fileno(out));
  char err[256];
  myelin_msg *m;
  size_t count = 0;
  while (myelin_reader_next(r, &m, err, sizeof err) == 1) {
    ck_assert_int_eq(myelin_writer_put(w, m, err, sizeof err), 0);
    myelin_msg_unref(m);
    count++;
  }
  ck_assert_uint_eq(count, n);
  ck_assert_int_eq(myelin_writer_flush(w, err, sizeof err), 0);
  myelin_writer_free(w);
  myelin_reader_free(r);
  fclose(in);
  fclose(out);
  ck_assert_int_eq(mt_run(mt_strf("cmp '%s' '%s'", a, b), NULL), 0);
}
END_TEST

/* Python's msgpack reads the file (skipping "_pad") and finds the same data. */
START_TEST(python_reads_it) {
  MT_NEED_PYTHON("msgpack numpy", "python reads a myelin_writer file");
  char *dir = mt_tmpdir();
  char *path = mt_strf("%s/py.mpk", dir);
  write_file(path, NSIZES);
  char *script = mt_strf("%s/check.py", dir);
  mt_write(script, "import sys, msgpack, numpy as np\n"
                   "sizes = [3, 100, 4096, 5000, 70000, 1 << 20, 3000001, 17, 12 << 20, 64, 9999]\n"
                   "for i, m in enumerate(msgpack.Unpacker(open(sys.argv[1], 'rb'), raw=False, "
                   "max_buffer_size=1 << 30)):\n"
                   "    d = m['data']\n"
                   "    x = np.frombuffer(d['data'], d['dtype']).reshape(d['shape'])\n"
                   "    k = np.arange(sizes[i], dtype=np.int64)\n"
                   "    assert m['seq'] == i and (x == ((k * 31 + i * 7 + (k >> 12)) & 255)).all(), i\n"
                   "print('ok', i + 1)\n");
  char *py = mt_strf("%s '%s' '%s'", mt_env("MYELIN_PYTHON", "/usr/bin/python3"), script, path);
  char *out;
  ck_assert_int_eq(mt_run(py, &out), 0);
  ck_assert_msg(strstr(out, mt_strf("ok %zu", NSIZES)), "%s", out);
  free(out);
}
END_TEST

int main(void) {
  Suite *s = suite_create("msg_stream");
  TCase *tc = tcase_create("stream");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, mapped_read_in_place_and_aligned);
  tcase_add_test(tc, mapped_windows);
  tcase_add_test(tc, pipe_read);
  tcase_add_test(tc, truncated_large_message);
  tcase_add_test(tc, read_write_round_trip_identical);
  tcase_add_test(tc, python_reads_it);
  suite_add_tcase(s, tc);
  return mt_run_suite(s);
}
