/*
 * test_dataset.c — the dataset readers (plugins/dataset/load.c) tested
 * directly, and the `dataset` plugin through the harness: IDX round trips on
 * files written here (plain and gzip, byte-swapped dtypes), malformed files,
 * Debian's Fashion-MNIST and sklearn's digits CSV, the seeded permutation
 * against values computed by a Python re-implementation, and the plugin's
 * sample / whole / shuffle / epochs / limit / scale behaviour.
 */
#include <zlib.h>

#include "load.h"
#include "myelin/harness.h"
#include "myelin/npy.h"
#include "testutil.h"

#define FMNIST "/usr/share/datasets/fashion-mnist"
#define DIGITS "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz"

static char *tmp;

static void setup(void) { tmp = mt_tmpdir(); }
static void teardown(void) {
  char *cmd = mt_strf("rm -rf %s", tmp);
  ck_assert_int_eq(system(cmd), 0);
  free(cmd);
  free(tmp);
}

/* Writes an IDX file: header for (type, dims) then payload bytes as given. */
static void write_idx(const char *path, int gz, uint8_t type, int ndim, const uint32_t *dims,
                      const void *payload, size_t nbytes) {
  uint8_t hdr[4 + 4 * 8] = {0, 0, type, (uint8_t)ndim};
  for (int i = 0; i < ndim; i++) {
    hdr[4 + 4 * i] = (uint8_t)(dims[i] >> 24);
    hdr[5 + 4 * i] = (uint8_t)(dims[i] >> 16);
    hdr[6 + 4 * i] = (uint8_t)(dims[i] >> 8);
    hdr[7 + 4 * i] = (uint8_t)dims[i];
  }
  if (gz) {
    gzFile g = gzopen(path, "wb");
    ck_assert_ptr_nonnull(g);
    gzwrite(g, hdr, 4 + 4 * (unsigned)ndim);
    if (nbytes) gzwrite(g, payload, (unsigned)nbytes);
    gzclose(g);
  } else {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fwrite(hdr, 1, 4 + 4 * (size_t)ndim, f);
    fwrite(payload, 1, nbytes, f);
    fclose(f);
  }
}

/* 5 images of 3x2 u8 (value 10*row + i) and labels 4,3,2,1,0. */
static void write_small(const char *img, const char *lab, int gz) {
  uint8_t px[30], y[5] = {4, 3, 2, 1, 0};
  for (int r = 0; r < 5; r++)
    for (int i = 0; i < 6; i++) px[r * 6 + i] = (uint8_t)(10 * r + i);
  write_idx(img, gz, 0x08, 3, (const uint32_t[]){5, 3, 2}, px, sizeof px);
  write_idx(lab, gz, 0x08, 1, (const uint32_t[]){5}, y, sizeof y);
}

START_TEST(idx_round_trip) {
  for (int gz = 0; gz < 2; gz++) {
    char *img = mt_strf("%s/img%d.idx", tmp, gz), *lab = mt_strf("%s/lab%d.idx", tmp, gz);
    write_small(img, lab, gz);
    ds_table t;
    char err[512];
    ck_assert_msg(ds_load_idx(img, lab, &t, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(t.rows, 5);
    ck_assert_int_eq(t.ndim, 3);
    ck_assert_int_eq(t.shape[1], 3);
    ck_assert_int_eq(t.shape[2], 2);
    ck_assert_int_eq(t.dtype, MYELIN_U1);
    ck_assert_uint_eq(t.row_bytes, 6);
    ck_assert_uint_eq(t.x[4 * 6 + 5], 45);
    ck_assert_int_eq(t.y[0], 4);
    ck_assert_int_eq(t.y[4], 0);
    /* the stream gives the same rows */
    ds_idx_info info;
    ds_idx_stream *s = ds_idx_stream_open(img, &info, err, sizeof err);
    ck_assert_msg(s != NULL, "%s", err);
    uint8_t row[6];
    for (int r = 0; r < 5; r++) {
      ck_assert_int_eq(ds_idx_stream_next(s, row, err, sizeof err), 1);
      ck_assert_int_eq(memcmp(row, t.x + r * 6, 6), 0);
    }
    ck_assert_int_eq(ds_idx_stream_next(s, row, err, sizeof err), 0);
    ck_assert_int_eq(ds_idx_stream_rewind(s, err, sizeof err), 0);
    ck_assert_int_eq(ds_idx_stream_next(s, row, err, sizeof err), 1);
    ck_assert_uint_eq(row[1], 1);
    ds_idx_stream_close(s);
    ds_table_free(&t);
    free(img);
    free(lab);
  }
}
END_TEST

START_TEST(idx_big_endian_types) {
  /* <i2 and <f4 values stored big-endian in the file */
  const uint8_t i16[] = {0x01, 0x02, 0xff, 0xfe}; /* 258, -2 */
  char *p = mt_strf("%s/i16.idx", tmp);
  write_idx(p, 0, 0x0B, 2, (const uint32_t[]){2, 1}, i16, sizeof i16);
  ds_table t;
  char err[512];
  ck_assert_msg(ds_load_idx(p, NULL, &t, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(t.dtype, MYELIN_I2);
  ck_assert_int_eq(((int16_t *)t.x)[0], 258);
  ck_assert_int_eq(((int16_t *)t.x)[1], -2);
  ds_table_free(&t);
  const uint8_t f32[] = {0x3f, 0xc0, 0x00, 0x00}; /* 1.5f */
  char *q = mt_strf("%s/f32.idx.gz", tmp);
  write_idx(q, 1, 0x0D, 1, (const uint32_t[]){1}, f32, sizeof f32);
  ck_assert_msg(ds_load_idx(q, NULL, &t, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(t.dtype, MYELIN_F4);
  ck_assert_float_eq(((float *)t.x)[0], 1.5f);
  ds_table_free(&t);
  free(p);
  free(q);
}
END_TEST

START_TEST(idx_errors_name_the_file) {
  char err[512];
  ds_table t;
  char *bad = mt_strf("%s/bad.idx", tmp);
  mt_write(bad, "PK\3\4 this is not an idx file");
  ck_assert_int_ne(ds_load_idx(bad, NULL, &t, err, sizeof err), 0);
  ck_assert_msg(strstr(err, bad) && strstr(err, "bad magic"), "%s", err);
  /* truncated: header says 5 rows of 6 bytes, 27 bytes of data */
  char *tr = mt_strf("%s/trunc.idx", tmp);
  uint8_t px[27] = {0};
  write_idx(tr, 0, 0x08, 3, (const uint32_t[]){5, 3, 2}, px, sizeof px);
  ck_assert_int_ne(ds_load_idx(tr, NULL, &t, err, sizeof err), 0);
  ck_assert_msg(strstr(err, tr) && strstr(err, "truncated") && strstr(err, "row 4"), "%s", err);
  ds_idx_info info;
  ds_idx_stream *s = ds_idx_stream_open(tr, &info, err, sizeof err);
  ck_assert_ptr_nonnull(s);
  uint8_t row[6];
  for (int r = 0; r < 4; r++) ck_assert_int_eq(ds_idx_stream_next(s, row, err, sizeof err), 1);
  ck_assert_int_lt(ds_idx_stream_next(s, row, err, sizeof err), 0);
  ck_assert_msg(strstr(err, tr) && strstr(err, "row 4"), "%s", err);
  ds_idx_stream_close(s);
  /* a header claiming rows far larger than the file is refused before any
   * row buffer is allocated */
  char *huge = mt_strf("%s/huge.idx", tmp);
  write_idx(huge, 0, 0x08, 3, (const uint32_t[]){3, 1u << 20, 1u << 19}, px, sizeof px);
  ck_assert_ptr_null(ds_idx_stream_open(huge, &info, err, sizeof err));
  ck_assert_msg(strstr(err, huge) && strstr(err, "truncated"), "%s", err);
  ck_assert_int_ne(ds_load_idx(huge, NULL, &t, err, sizeof err), 0);
  ck_assert_msg(strstr(err, "truncated") != NULL, "%s", err);
  free(huge);
  /* label count differs from row count */
  char *img = mt_strf("%s/img.idx", tmp), *lab = mt_strf("%s/lab.idx", tmp);
  write_small(img, lab, 0);
  uint8_t y4[4] = {0};
  write_idx(lab, 0, 0x08, 1, (const uint32_t[]){4}, y4, 4);
  ck_assert_int_ne(ds_load_idx(img, lab, &t, err, sizeof err), 0);
  ck_assert_msg(strstr(err, "mismatch") && strstr(err, img) && strstr(err, lab), "%s", err);
  /* missing file */
  char *none = mt_strf("%s/none.idx", tmp);
  ck_assert_int_ne(ds_load_idx(none, NULL, &t, err, sizeof err), 0);
  ck_assert_msg(strstr(err, none) != NULL, "%s", err);
  free(bad);
  free(tr);
  free(img);
  free(lab);
  free(none);
}
END_TEST

static void check_histogram(const ds_table *t, size_t want) {
  size_t h[10] = {0};
  for (size_t i = 0; i < t->rows; i++) {
    ck_assert(t->y[i] >= 0 && t->y[i] < 10);
    h[t->y[i]]++;
  }
  for (int c = 0; c < 10; c++) ck_assert_uint_eq(h[c], want);
}

START_TEST(fashion_mnist_loads) {
  MT_NEED_FILE(FMNIST "/train-images-idx3-ubyte.gz", "dataset-fashion-mnist");
  ds_table t;
  char err[512];
  ck_assert_msg(ds_load_idx(FMNIST "/train-images-idx3-ubyte.gz", FMNIST "/train-labels-idx1-ubyte.gz",
                            &t, err, sizeof err) == 0, "%s", err);
  ck_assert_uint_eq(t.rows, 60000);
  ck_assert_uint_eq(t.row_bytes, 784);
  check_histogram(&t, 6000);
  ds_table_free(&t);
  ck_assert_msg(ds_load_idx(FMNIST "/t10k-images-idx3-ubyte.gz", FMNIST "/t10k-labels-idx1-ubyte.gz",
                            &t, err, sizeof err) == 0, "%s", err);
  ck_assert_uint_eq(t.rows, 10000);
  check_histogram(&t, 1000);
  ds_table_free(&t);
}
END_TEST

START_TEST(digits_csv_loads) {
  MT_NEED_FILE(DIGITS, "python3-sklearn's digits");
  ds_table t;
  char err[512];
  ck_assert_msg(ds_load_csv(DIGITS, -1, NULL, &t, err, sizeof err) == 0, "%s", err);
  ck_assert_uint_eq(t.rows, 1797);
  ck_assert_int_eq(t.shape[1], 64);
  ck_assert_int_eq(t.dtype, MYELIN_F4);
  const size_t want[10] = {178, 182, 177, 183, 181, 182, 181, 179, 174, 180}; /* numpy bincount */
  size_t h[10] = {0};
  double sum = 0;
  for (size_t i = 0; i < t.rows; i++) h[t.y[i]]++;
  for (size_t i = 0; i < t.rows * 64; i++) sum += ((float *)t.x)[i];
  for (int c = 0; c < 10; c++) ck_assert_uint_eq(h[c], want[c]);
  ck_assert_double_eq(sum, 561718.0);
  ck_assert_float_eq(((float *)t.x)[2], 5.0f);
  ds_table_free(&t);
}
END_TEST

START_TEST(csv_header_columns_and_errors) {
  char *p = mt_strf("%s/h.csv", tmp);
  mt_write(p, "label,a,b\n1,0.5,2\n\n0,1.5,-3e2\n");
  ds_table t;
  char err[512];
  ck_assert_msg(ds_load_csv(p, 0, NULL, &t, err, sizeof err) == 0, "%s", err);
  ck_assert_uint_eq(t.rows, 2);
  ck_assert_int_eq(t.shape[1], 2);
  ck_assert_int_eq(t.y[0], 1);
  ck_assert_int_eq(t.y[1], 0);
  ck_assert_float_eq(((float *)t.x)[3], -300.0f);
  ds_table_free(&t);
  ck_assert_int_eq(ds_load_csv(p, DS_NO_LABEL_COLUMN, NULL, &t, err, sizeof err), 0);
  ck_assert_int_eq(t.shape[1], 3);
  ck_assert_ptr_null(t.y);
  ds_table_free(&t);
  mt_write(p, "1 2 3\n4 5 6\n");
  ck_assert_int_eq(ds_load_csv(p, -1, NULL, &t, err, sizeof err), 0);
  ck_assert_int_eq(t.shape[1], 2);
  ck_assert_int_eq(t.y[1], 6);
  ds_table_free(&t);
  mt_write(p, "1,2,3\n4,x5,6\n");
  ck_assert_int_ne(ds_load_csv(p, -1, NULL, &t, err, sizeof err), 0);
  ck_assert_msg(strstr(err, p) && strstr(err, ":2:") && strstr(err, "x5"), "%s", err);
  mt_write(p, "1,2,3\n4,5\n");
  ck_assert_int_ne(ds_load_csv(p, -1, NULL, &t, err, sizeof err), 0);
  ck_assert_msg(strstr(err, ":2:") && strstr(err, "columns"), "%s", err);
  mt_write(p, "1,2,3.5\n");
  ck_assert_int_ne(ds_load_csv(p, -1, NULL, &t, err, sizeof err), 0);
  ck_assert_msg(strstr(err, "not an integer") != NULL, "%s", err);
  free(p);
}
END_TEST

START_TEST(permutation_matches_reference) {
  /* Reference: the same algorithm re-implemented in Python (SplitMix64,
   * Lemire bounded integers, Fisher-Yates from the top). */
  uint32_t o[60000];
  const uint32_t w10[] = {6, 4, 7, 2, 9, 1, 5, 0, 8, 3};
  const uint32_t w10e1[] = {0, 2, 7, 3, 9, 6, 5, 8, 4, 1};
  const uint32_t w20[] = {0, 4, 12, 13, 3, 5, 15, 17, 11, 19, 7, 14, 9, 2, 16, 10, 1, 8, 18, 6};
  const uint32_t w60k[] = {41454, 59421, 28057, 15021, 58499, 35224, 42450, 29529};
  ds_permutation(1, 0, o, 10);
  ck_assert_int_eq(memcmp(o, w10, sizeof w10), 0);
  ds_permutation(1, 1, o, 10);
  ck_assert_int_eq(memcmp(o, w10e1, sizeof w10e1), 0);
  ds_permutation(42, 0, o, 20);
  ck_assert_int_eq(memcmp(o, w20, sizeof w20), 0);
  ds_permutation(1, 0, o, 60000);
  ck_assert_int_eq(memcmp(o, w60k, sizeof w60k), 0);
  static uint8_t seen[60000];
  memset(seen, 0, sizeof seen);
  for (size_t i = 0; i < 60000; i++) {
    ck_assert_uint_lt(o[i], 60000);
    ck_assert_uint_eq(seen[o[i]], 0);
    seen[o[i]] = 1;
  }
}
END_TEST

/* Random and mutated IDX headers and CSV text never crash the readers. */
START_TEST(mutations_do_not_crash) {
  uint64_t r = 99;
  for (int it = 0; it < 20000; it++) {
    uint8_t b[40];
    for (size_t i = 0; i < sizeof b; i++) {
      r = r * 6364136223846793005ULL + 1442695040888963407ULL;
      b[i] = (uint8_t)(r >> 56);
    }
    if (it & 1) { b[0] = b[1] = 0; b[2] = 0x08; b[3] = (uint8_t)(it % 11); }
    ds_idx_info info;
    char err[256];
    int hl = ds_idx_header(b, (size_t)(it % 41), &info, "fuzz", err, sizeof err);
    if (hl >= 0) ck_assert_int_le(hl, it % 41);
  }
  char *p = mt_strf("%s/f.csv", tmp);
  const char pool[] = "0123456789.,;\t -e+\nx#";
  for (int it = 0; it < 300; it++) {
    char text[200];
    size_t n = (size_t)(it % 199);
    for (size_t i = 0; i < n; i++) {
      r = r * 6364136223846793005ULL + 1442695040888963407ULL;
      text[i] = pool[(r >> 40) % (sizeof pool - 1)];
    }
    text[n] = 0;
    mt_write(p, text);
    ds_table t;
    char err[256];
    if (ds_load_csv(p, it % 3 - 1, NULL, &t, err, sizeof err) == 0) {
      ck_assert_uint_gt(t.rows, 0);
      ds_table_free(&t);
    }
  }
  free(p);
}
END_TEST

/* ---- the plugin through the harness ---------------------------------------- */

static myelin_harness *start_dataset(const char *params) {
  char err[1024];
  myelin_harness *h = myelin_harness_new("dataset", params, err, sizeof err);
  ck_assert_msg(h != NULL, "harness: %s", err);
  ck_assert_msg(myelin_harness_start(h) == 0, "start: %s", myelin_harness_error(h));
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  return h;
}

static int64_t msg_i(myelin_msg *m, const char *k) {
  int64_t v = -1;
  ck_assert_msg(myelin_msg_int(m, k, &v) == 0, "field %s", k);
  return v;
}

START_TEST(plugin_samples_in_order) {
  char *img = mt_strf("%s/img.idx.gz", tmp), *lab = mt_strf("%s/lab.idx.gz", tmp);
  write_small(img, lab, 1);
  char *params = mt_strf("{path: %s, labels: %s, split: train}", img, lab);
  myelin_harness *h = start_dataset(params);
  ck_assert_uint_eq(myelin_harness_count(h, "out"), 5);
  for (int i = 0; i < 5; i++) {
    myelin_msg *m = myelin_harness_output(h, "out", (size_t)i);
    ck_assert_str_eq(myelin_msg_kind(m), "sample");
    ck_assert_int_eq(msg_i(m, "index"), i);
    ck_assert_int_eq(msg_i(m, "seq"), i);
    ck_assert_int_eq(msg_i(m, "label"), 4 - i);
    ck_assert_int_eq(msg_i(m, "epoch"), 0);
    char split[16];
    ck_assert_int_eq(myelin_msg_str(m, "split", split, sizeof split), 0);
    ck_assert_str_eq(split, "train");
    myelin_tensor x;
    ck_assert_int_eq(myelin_msg_tensor(m, "x", &x), 0);
    ck_assert_int_eq(x.dtype, MYELIN_U1);
    ck_assert_int_eq(x.ndim, 2);
    ck_assert_int_eq(x.shape[0], 3);
    ck_assert_uint_eq(((const uint8_t *)x.data)[5], 10 * i + 5);
  }
  myelin_harness_free(h);
  free(params);
  free(img);
  free(lab);
}
END_TEST

START_TEST(plugin_shuffle_epochs_limit_scale) {
  char *img = mt_strf("%s/img.idx", tmp), *lab = mt_strf("%s/lab.idx", tmp);
  write_small(img, lab, 0);
  char *params = mt_strf("{path: %s, labels: %s, shuffle: true, seed: 3, epochs: 2, limit: 4, "
                         "scale: 0.5}", img, lab);
  myelin_harness *h = start_dataset(params);
  ck_assert_uint_eq(myelin_harness_count(h, "out"), 8);
  for (int e = 0; e < 2; e++) {
    uint32_t order[4];
    ds_permutation(3, (uint64_t)e, order, 4);
    for (int i = 0; i < 4; i++) {
      myelin_msg *m = myelin_harness_output(h, "out", (size_t)(4 * e + i));
      ck_assert_int_eq(msg_i(m, "epoch"), e);
      ck_assert_int_eq(msg_i(m, "index"), order[i]);
      ck_assert_int_eq(msg_i(m, "label"), 4 - (int)order[i]);
      myelin_tensor x;
      ck_assert_int_eq(myelin_msg_tensor(m, "x", &x), 0);
      ck_assert_int_eq(x.dtype, MYELIN_F4);
      ck_assert_float_eq(((const float *)x.data)[1], 0.5f * (10 * order[i] + 1));
    }
  }
  /* the two epochs are ordered differently, and identically on a rerun */
  myelin_harness *h2 = start_dataset(params);
  for (size_t i = 0; i < 8; i++)
    ck_assert_int_eq(msg_i(myelin_harness_output(h, "out", i), "index"),
                     msg_i(myelin_harness_output(h2, "out", i), "index"));
  myelin_harness_free(h);
  myelin_harness_free(h2);
  free(params);
  free(img);
  free(lab);
}
END_TEST

START_TEST(plugin_streamed_epochs_and_truncation) {
  char *img = mt_strf("%s/img.idx.gz", tmp), *lab = mt_strf("%s/lab.idx.gz", tmp);
  write_small(img, lab, 1);
  char *params = mt_strf("{path: %s, labels: %s, epochs: 2, limit: 3}", img, lab);
  myelin_harness *h = start_dataset(params);
  ck_assert_uint_eq(myelin_harness_count(h, "out"), 6);
  for (int i = 0; i < 6; i++) {
    myelin_msg *m = myelin_harness_output(h, "out", (size_t)i);
    ck_assert_int_eq(msg_i(m, "index"), i % 3);
    ck_assert_int_eq(msg_i(m, "epoch"), i / 3);
    ck_assert_int_eq(msg_i(m, "seq"), i);
    myelin_tensor x;
    ck_assert_int_eq(myelin_msg_tensor(m, "x", &x), 0);
    ck_assert_uint_eq(((const uint8_t *)x.data)[0], 10 * (i % 3));
  }
  myelin_harness_free(h);
  free(params);
  /* a streamed file that ends early fails at run time, naming the row */
  char *tr = mt_strf("%s/trunc.idx", tmp);
  uint8_t px[27] = {0};
  write_idx(tr, 0, 0x08, 3, (const uint32_t[]){5, 3, 2}, px, sizeof px);
  params = mt_strf("{path: %s}", tr);
  char err[1024];
  h = myelin_harness_new("dataset", params, err, sizeof err);
  ck_assert_msg(h != NULL, "%s", err);
  ck_assert_int_ne(myelin_harness_start(h), 0);
  ck_assert_msg(strstr(myelin_harness_error(h), "row 4") && strstr(myelin_harness_error(h), tr), "%s",
                myelin_harness_error(h));
  ck_assert_uint_eq(myelin_harness_count(h, "out"), 4);
  myelin_harness_free(h);
  free(params);
  free(tr);
  free(img);
  free(lab);
}
END_TEST

START_TEST(plugin_whole_tensor) {
  char *img = mt_strf("%s/img.idx", tmp), *lab = mt_strf("%s/lab.idx", tmp);
  write_small(img, lab, 0);
  char *params = mt_strf("{path: %s, labels: %s, whole: true, limit: 3}", img, lab);
  myelin_harness *h = start_dataset(params);
  ck_assert_uint_eq(myelin_harness_count(h, "out"), 1);
  myelin_msg *m = myelin_harness_output(h, "out", 0);
  ck_assert_str_eq(myelin_msg_kind(m), "tensor");
  myelin_tensor x, y;
  ck_assert_int_eq(myelin_msg_tensor(m, "data", &x), 0);
  ck_assert_int_eq(x.ndim, 3);
  ck_assert_int_eq(x.shape[0], 3);
  ck_assert_uint_eq(((const uint8_t *)x.data)[2 * 6 + 3], 23);
  ck_assert_int_eq(myelin_msg_tensor(m, "labels", &y), 0);
  ck_assert_int_eq(((const int64_t *)y.data)[2], 2);
  myelin_harness_free(h);
  free(params);
  free(img);
  free(lab);
}
END_TEST

START_TEST(plugin_npy_npz_csv) {
  char err[512];
  char *x = mt_strf("%s/x.npy", tmp), *y = mt_strf("%s/y.npy", tmp), *z = mt_strf("%s/d.npz", tmp);
  const double xv[6] = {1, 2, 3, 4, 5, 6};
  const int32_t yv[3] = {7, 8, 9};
  ck_assert_int_eq(myelin_npy_write(x, MYELIN_F8, 2, (const int64_t[]){3, 2}, xv, err, sizeof err), 0);
  ck_assert_int_eq(myelin_npy_write(y, MYELIN_I4, 1, (const int64_t[]){3}, yv, err, sizeof err), 0);
  myelin_npz_writer *w = myelin_npz_open(z, err, sizeof err);
  ck_assert_ptr_nonnull(w);
  ck_assert_int_eq(myelin_npz_add(w, "feat", MYELIN_F8, 2, (const int64_t[]){3, 2}, xv, err, sizeof err), 0);
  ck_assert_int_eq(myelin_npz_add(w, "target", MYELIN_I4, 1, (const int64_t[]){3}, yv, err, sizeof err), 0);
  ck_assert_int_eq(myelin_npz_close(w, err, sizeof err), 0);
  const char *params[2];
  params[0] = mt_strf("{path: %s, labels: %s}", x, y);
  params[1] = mt_strf("{format: npz, path: %s, x_key: feat, y_key: target}", z);
  for (int k = 0; k < 2; k++) {
    myelin_harness *h = start_dataset(params[k]);
    ck_assert_uint_eq(myelin_harness_count(h, "out"), 3);
    myelin_msg *m = myelin_harness_output(h, "out", 2);
    ck_assert_int_eq(msg_i(m, "label"), 9);
    myelin_tensor t;
    ck_assert_int_eq(myelin_msg_tensor(m, "x", &t), 0);
    ck_assert_int_eq(t.dtype, MYELIN_F8);
    ck_assert_double_eq(((const double *)t.data)[1], 6.0);
    myelin_harness_free(h);
    free((char *)params[k]);
  }
  /* an explicitly named labels array must exist; the default one may be absent */
  char *nolab = mt_strf("{format: npz, path: %s, x_key: feat, y_key: nope}", z);
  char herr0[1024] = "";
  ck_assert_ptr_null(myelin_harness_new("dataset", nolab, herr0, sizeof herr0));
  ck_assert_msg(strstr(herr0, "'nope'") && strstr(herr0, z), "%s", herr0);
  free(nolab);
  nolab = mt_strf("{path: %s, x_key: feat}", z);
  myelin_harness *h0 = start_dataset(nolab);
  ck_assert_int_ne(myelin_msg_int(myelin_harness_output(h0, "out", 0), "label", &(int64_t){0}), 0);
  myelin_harness_free(h0);
  free(nolab);
  /* labels of the wrong length are refused at init, naming both files */
  char *y2 = mt_strf("%s/y2.npy", tmp);
  ck_assert_int_eq(myelin_npy_write(y2, MYELIN_I4, 1, (const int64_t[]){2}, yv, err, sizeof err), 0);
  char *bad = mt_strf("{path: %s, labels: %s}", x, y2);
  char herr[1024] = "";
  myelin_harness *h = myelin_harness_new("dataset", bad, herr, sizeof herr);
  if (h) { /* the harness may defer init errors to start */
    ck_assert_int_ne(myelin_harness_start(h), 0);
    snprintf(herr, sizeof herr, "%s", myelin_harness_error(h));
    myelin_harness_free(h);
  }
  ck_assert_msg(strstr(herr, "mismatch") && strstr(herr, y2), "%s", herr);
  free(bad);
  free(y2);
  free(x);
  free(y);
  free(z);
}
END_TEST

START_TEST(plugin_digits_csv) {
  MT_NEED_FILE(DIGITS, "python3-sklearn's digits");
  myelin_harness *h = start_dataset("{format: csv, path: " DIGITS ", label_column: -1, limit: 10, "
                                    "scale: 0.0625}");
  ck_assert_uint_eq(myelin_harness_count(h, "out"), 10);
  myelin_msg *m = myelin_harness_output(h, "out", 0);
  ck_assert_int_eq(msg_i(m, "label"), 0);
  myelin_tensor t;
  ck_assert_int_eq(myelin_msg_tensor(m, "x", &t), 0);
  ck_assert_int_eq(t.shape[0], 64);
  ck_assert_float_eq(((const float *)t.data)[3], 13.0f / 16);
  myelin_harness_free(h);
}
END_TEST

START_TEST(plugin_fashion_mnist_streams) {
  MT_NEED_FILE(FMNIST "/t10k-images-idx3-ubyte.gz", "dataset-fashion-mnist");
  myelin_harness *h = start_dataset("{path: " FMNIST "/t10k-images-idx3-ubyte.gz, labels: " FMNIST
                                    "/t10k-labels-idx1-ubyte.gz, split: test}");
  ck_assert_uint_eq(myelin_harness_count(h, "out"), 10000);
  size_t hist[10] = {0};
  for (size_t i = 0; i < 10000; i++) hist[msg_i(myelin_harness_output(h, "out", i), "label")]++;
  for (int c = 0; c < 10; c++) ck_assert_uint_eq(hist[c], 1000);
  myelin_harness_free(h);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("dataset");
  TCase *tc = tcase_create("load");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, idx_round_trip);
  tcase_add_test(tc, idx_big_endian_types);
  tcase_add_test(tc, idx_errors_name_the_file);
  tcase_add_test(tc, fashion_mnist_loads);
  tcase_add_test(tc, digits_csv_loads);
  tcase_add_test(tc, csv_header_columns_and_errors);
  tcase_add_test(tc, permutation_matches_reference);
  tcase_add_test(tc, mutations_do_not_crash);
  suite_add_tcase(s, tc);
  TCase *tp = tcase_create("plugin");
  tcase_add_checked_fixture(tp, setup, teardown);
  tcase_set_timeout(tp, 120);
  tcase_add_test(tp, plugin_samples_in_order);
  tcase_add_test(tp, plugin_shuffle_epochs_limit_scale);
  tcase_add_test(tp, plugin_streamed_epochs_and_truncation);
  tcase_add_test(tp, plugin_whole_tensor);
  tcase_add_test(tp, plugin_npy_npz_csv);
  tcase_add_test(tp, plugin_digits_csv);
  tcase_add_test(tp, plugin_fashion_mnist_streams);
  suite_add_tcase(s, tp);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
