/*
 * test_nifti.c — the NIfTI reader/writer (plugins/fmri_source/nifti.c).
 *
 * Conformance: nifti_ref.py (Debian's python3 + nibabel) writes synthetic
 * files of every datatype and byte order and, for those and every NIfTI file
 * nibabel ships, get_fdata(dtype=float32) and the affine; we compare. When
 * nibabel is missing that check skips, and the committed numbers below (also
 * computed with nibabel) keep a check in place. Malformed headers must give
 * an error naming the field; the writer must round-trip.
 */
#include <math.h>
#include <stdint.h>

#include "nifti.h"
#include "testutil.h"

#define NIB_DATA "/usr/lib/python3/dist-packages/nibabel/tests/data"

static float *read_all(const char *path, nifti_header *h, char *err, size_t errlen) {
  nifti_reader r;
  if (nifti_open_file(&r, path, err, errlen)) return NULL;
  *h = r.h;
  float *out = malloc(r.h.nvox * r.h.nvols * sizeof(float) + 1);
  ck_assert_ptr_nonnull(out);
  int rc = nifti_read_volumes(&r, r.h.nvols, NULL, r.h.nvox, out, r.h.nvox, err, errlen);
  nifti_close(&r);
  if (rc) {
    free(out);
    return NULL;
  }
  return out;
}

static void *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "cannot open %s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  void *b = malloc((size_t)n + 1);
  ck_assert_int_eq(fread(b, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  *len = (size_t)n;
  return b;
}

static void check_affine(const nifti_header *h, const double *ref, const char *path) {
  double a[4][4];
  nifti_affine(h, a);
  for (int i = 0; i < 16; i++) {
    double want = ref[i], got = a[i / 4][i % 4];
    ck_assert_msg(fabs(want - got) <= 1e-5 * (1 + fabs(want)), "%s: affine[%d][%d] = %.9g, nibabel %.9g",
                  path, i / 4, i % 4, got, want);
  }
}

START_TEST(conformance_with_nibabel) {
  MT_NEED_PYTHON("nibabel numpy", "conformance with nibabel");
  char *dir = mt_tmpdir();
  char *cmd = mt_strf("%s %s/tests/nifti/nifti_ref.py %s", mt_env("MYELIN_PYTHON", "/usr/bin/python3"),
                      mt_env("MYELIN_SOURCE_DIR", "."), dir);
  char *out = NULL;
  ck_assert_msg(mt_run(cmd, &out) == 0, "reference script failed: %s", out);
  free(out);
  char *list = mt_strf("%s/list.txt", dir);
  FILE *f = fopen(list, "r");
  ck_assert_ptr_nonnull(f);
  char line[4096];
  int files = 0, data_files = 0;
  while (fgets(line, sizeof line, f)) {
    char path[1500], kind[16], ref[1500], err[512];
    ck_assert_int_eq(sscanf(line, "%1499[^\t]\t%15[^\t]\t%1499[^\n]", path, kind, ref), 3);
    size_t alen, dlen;
    char *affp = mt_strf("%s.aff", ref);
    double *aff = slurp(affp, &alen);
    ck_assert_int_eq(alen, 16 * sizeof(double));
    nifti_header h;
    if (strcmp(kind, "cifti") == 0) {
      nifti_reader r;
      ck_assert_int_ne(nifti_open_file(&r, path, err, sizeof err), 0);
      ck_assert_msg(strstr(err, path) && strstr(err, "CIFTI is not supported"), "%s", err);
    } else if (strcmp(kind, "header") == 0) {
      /* A .hdr without its .img: the header must match, the data must be
       * reported missing by name. */
      void *hb = slurp(path, &dlen);
      ck_assert_msg(nifti_parse_header(hb, dlen, path, &h, err, sizeof err) == 0, "%s", err);
      check_affine(&h, aff, path);
      nifti_reader r;
      ck_assert_int_ne(nifti_open_file(&r, path, err, sizeof err), 0);
      ck_assert_msg(strstr(err, ".img") != NULL, "error should name the .img: %s", err);
      free(hb);
    } else {
      float *got = read_all(path, &h, err, sizeof err);
      ck_assert_msg(got != NULL, "%s: %s", path, err);
      char *dp = mt_strf("%s.f32", ref);
      float *want = slurp(dp, &dlen);
      ck_assert_msg(dlen == h.nvox * h.nvols * sizeof(float), "%s: %zu values, nibabel %zu", path,
                    h.nvox * h.nvols, dlen / sizeof(float));
      for (size_t i = 0; i < h.nvox * h.nvols; i++) {
        if (isnan(want[i])) {
          ck_assert_msg(isnan(got[i]), "%s: value %zu = %g, nibabel NaN", path, i, got[i]);
          continue;
        }
        double tol = 1e-6 * (1.0 + fabs(want[i]));
        ck_assert_msg(fabs((double)got[i] - want[i]) <= tol, "%s: value %zu = %.9g, nibabel %.9g", path, i,
                      got[i], want[i]);
      }
      check_affine(&h, aff, path);
      free(dp);
      free(want);
      free(got);
      data_files++;
    }
    free(aff);
    free(affp);
    files++;
  }
  fclose(f);
  ck_assert_int_ge(files, 52);
  ck_assert_int_ge(data_files, 50);
  free(list);
  free(cmd);
  free(dir);
}
END_TEST

/* Numbers from nibabel 5 on Debian 12 (get_fdata(dtype=float32), affine). */
START_TEST(committed_reference_values) {
  char err[512];
  nifti_header h;
  float *d = read_all(NIB_DATA "/functional.nii", &h, err, sizeof err);
  if (!d && access(NIB_DATA "/functional.nii", R_OK) != 0)
    MT_SKIP("%s not readable (python3-nibabel's test data)", NIB_DATA "/functional.nii");
  ck_assert_msg(d != NULL, "%s", err);
  /* (17, 21, 3, 20) int16 LE, slope 0.0754, inter 3100.76 */
  ck_assert_int_eq(h.dim[1], 17);
  ck_assert_int_eq(h.nvols, 20);
  size_t nx = 17, ny = 21, nvox = 17 * 21 * 3;
  ck_assert_float_eq_tol(d[0], 4004.13720703125f, 1e-3);
  ck_assert_float_eq_tol(d[5 * nvox + nifti_forder(8, 10, 1, nx, ny)], 3897.36083984375f, 1e-3);
  ck_assert_float_eq_tol(d[19 * nvox + nifti_forder(16, 20, 2, nx, ny)], 3129.341064453125f, 1e-3);
  double sum = 0;
  for (size_t i = 0; i < nvox * 20; i++)
    sum += d[i];
  ck_assert_double_eq_tol(sum, 77913290.40527344, 1.0);
  ck_assert_double_eq_tol(nifti_tr_seconds(&h), 2.0, 1e-9);
  double a[4][4];
  nifti_affine(&h, a);
  ck_assert_double_eq(a[0][0], -4.0);
  ck_assert_double_eq(a[0][3], 32.0);
  ck_assert_double_eq(a[1][3], -40.0);
  ck_assert_double_eq(a[2][2], 8.0);
  free(d);

  d = read_all(NIB_DATA "/anatomical.nii", &h, err, sizeof err); /* big-endian int16 */
  ck_assert_msg(d != NULL, "%s", err);
  ck_assert_int_eq(h.swapped, 1);
  ck_assert_float_eq(d[nifti_forder(16, 20, 12, 33, 41)], 11881.0f);
  ck_assert_float_eq(d[nifti_forder(10, 30, 20, 33, 41)], 9968.0f);
  nifti_affine(&h, a);
  ck_assert_double_eq(a[2][3], -16.0);
  free(d);

  d = read_all(NIB_DATA "/example_nifti2.nii.gz", &h, err, sizeof err);
  ck_assert_msg(d != NULL, "%s", err);
  ck_assert_int_eq(h.version, 2);
  ck_assert_float_eq(d[h.nvox + nifti_forder(10, 5, 6, 32, 20)], 406.0f);
  nifti_affine(&h, a);
  ck_assert_double_eq_tol(a[1][1], 1.9737114906311035, 1e-6);
  ck_assert_double_eq_tol(a[2][1], 0.32320761680603027, 1e-6);
  ck_assert_double_eq_tol(a[0][3], 117.85510253906250, 1e-5);
  free(d);
}
END_TEST

/* A minimal valid NIfTI-1 single file: 2x2x2 int16, then we corrupt it. */
static uint8_t *make_file(size_t *len) {
  *len = 352 + 16;
  uint8_t *b = calloc(1, *len);
  int32_t s = 348;
  memcpy(b, &s, 4);
  int16_t dim[8] = {3, 2, 2, 2, 1, 1, 1, 1};
  memcpy(b + 40, dim, sizeof dim);
  int16_t dt = NIFTI_INT16, bp = 16;
  memcpy(b + 70, &dt, 2);
  memcpy(b + 72, &bp, 2);
  float pix[8] = {1, 2, 2, 2, 1, 1, 1, 1}, off = 352;
  memcpy(b + 76, pix, sizeof pix);
  memcpy(b + 108, &off, 4);
  memcpy(b + 344, "n+1", 4);
  for (int i = 0; i < 8; i++) {
    int16_t v = (int16_t)(i * 10);
    memcpy(b + 352 + 2 * i, &v, 2);
  }
  return b;
}

static void expect_error(uint8_t *b, size_t len, const char *needle) {
  nifti_reader r;
  char err[512] = "";
  int rc = nifti_open_mem(&r, b, len, "bad.nii", err, sizeof err);
  if (rc == 0) {
    float out[64];
    rc = nifti_read_volumes(&r, r.h.nvols, NULL, r.h.nvox, out, r.h.nvox, err, sizeof err);
    nifti_close(&r);
  }
  ck_assert_msg(rc != 0, "expected an error about %s", needle);
  ck_assert_msg(strstr(err, "bad.nii") && strstr(err, needle), "error '%s' should name bad.nii and %s", err,
                needle);
}

START_TEST(malformed_headers) {
  size_t len;
  uint8_t *b = make_file(&len);
  nifti_reader r;
  char err[512];
  ck_assert_msg(nifti_open_mem(&r, b, len, "ok.nii", err, sizeof err) == 0, "%s", err);
  float out[8];
  ck_assert_int_eq(nifti_read_volumes(&r, 1, NULL, 8, out, 8, err, sizeof err), 0);
  ck_assert_float_eq(out[7], 70.0f);
  nifti_close(&r);

  int32_t bad = 349;
  memcpy(b, &bad, 4);
  expect_error(b, len, "sizeof_hdr");
  free(b);

  b = make_file(&len);
  int16_t neg = -3;
  memcpy(b + 44, &neg, 2);
  expect_error(b, len, "dim[2]");
  free(b);

  b = make_file(&len);
  int16_t big[8] = {7, 32767, 32767, 32767, 32767, 32767, 32767, 32767};
  memcpy(b + 40, big, sizeof big);
  expect_error(b, len, "dim");
  free(b);

  b = make_file(&len);
  float off = 1e6f;
  memcpy(b + 108, &off, 4);
  expect_error(b, len, "vox_offset");
  free(b);

  b = make_file(&len);
  expect_error(b, len - 3, "truncated");
  free(b);

  b = make_file(&len);
  memcpy(b + 344, "xyz", 4);
  expect_error(b, len, "magic");
  free(b);

  b = make_file(&len);
  int16_t cplx = NIFTI_COMPLEX64;
  memcpy(b + 70, &cplx, 2);
  expect_error(b, len, "datatype");
  free(b);

  b = make_file(&len);
  expect_error(b, 200, "too short");
  free(b);

  b = make_file(&len);
  float slope = 2.0f, inter = NAN;
  memcpy(b + 112, &slope, 4);
  memcpy(b + 116, &inter, 4);
  expect_error(b, len, "scl_inter");
  free(b);
}
END_TEST

/* CIFTI-2 is refused by name, whether its intent code or a header
 * extension (ecode 32) says so; other extensions are skipped. */
START_TEST(cifti_is_refused) {
  size_t len;
  uint8_t *b = make_file(&len);
  int16_t intent = 3002;
  memcpy(b + 68, &intent, 2);
  expect_error(b, len, "CIFTI is not supported");
  expect_error(b, len, "intent_code 3002, NIFTI_INTENT_CONNECTIVITY_DENSE_SERIES");
  free(b);

  /* extensions: a comment (ecode 6, 16 bytes), then optionally CIFTI (ecode 32, 32 bytes) */
  for (int with_cifti = 0; with_cifti < 2; with_cifti++) {
    uint8_t *base = make_file(&len);
    size_t ext = 16 + (with_cifti ? 32 : 0), n = len + ext;
    b = calloc(1, n);
    memcpy(b, base, 348);
    b[348] = 1; /* extender */
    int32_t e1[2] = {16, 6}, e2[2] = {32, 32};
    memcpy(b + 352, e1, 8);
    memcpy(b + 360, "comment", 8);
    if (with_cifti) {
      memcpy(b + 368, e2, 8);
      memcpy(b + 376, "<CIFTI Version=\"2\">", 19);
    }
    float off = (float)(352 + ext);
    memcpy(b + 108, &off, 4);
    memcpy(b + 352 + ext, base + 352, len - 352);
    free(base);
    if (with_cifti) {
      expect_error(b, n, "CIFTI is not supported");
      expect_error(b, n, "ecode 32");
    } else {
      nifti_reader r;
      char err[512];
      ck_assert_msg(nifti_open_mem(&r, b, n, "ext.nii", err, sizeof err) == 0, "%s", err);
      float out[8];
      ck_assert_int_eq(nifti_read_volumes(&r, 1, NULL, 8, out, 8, err, sizeof err), 0);
      ck_assert_float_eq(out[7], 70.0f);
      nifti_close(&r);
    }
    free(b);
  }
}
END_TEST

START_TEST(writer_round_trip) {
  char *dir = mt_tmpdir();
  int64_t dims[4] = {4, 3, 2, 5};
  double aff[4][4] = {{0, -2.5, 0, 10}, {3.0, 0, 0, -20}, {0, 0, 2.0, 5}, {0, 0, 0, 1}};
  size_t n = 4 * 3 * 2 * 5;
  float *data = malloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++)
    data[i] = (float)i * 0.5f - 7.0f;
  for (int gz = 0; gz <= 1; gz++) {
    char *path = mt_strf("%s/out%s", dir, gz ? ".nii.gz" : ".nii");
    FILE *f = fopen(path, "wb");
    char err[512];
    ck_assert_msg(nifti_write_f32(f, dims, &aff[0][0], 1.5, data, gz, err, sizeof err) == 0, "%s", err);
    fclose(f);
    nifti_header h;
    float *back = read_all(path, &h, err, sizeof err);
    ck_assert_msg(back != NULL, "%s", err);
    ck_assert_int_eq(h.nvols, 5);
    ck_assert_int_eq(h.dim[2], 3);
    ck_assert_mem_eq(back, data, n * sizeof(float));
    ck_assert_double_eq_tol(nifti_tr_seconds(&h), 1.5, 1e-6);
    double a[4][4];
    nifti_affine(&h, a);
    for (int i = 0; i < 16; i++)
      ck_assert_double_eq_tol(a[i / 4][i % 4], aff[i / 4][i % 4], 1e-6);
    /* the qform alone must give the same affine */
    ck_assert_int_eq(h.qform_code, 2);
    h.sform_code = 0;
    nifti_affine(&h, a);
    for (int i = 0; i < 16; i++)
      ck_assert_double_eq_tol(a[i / 4][i % 4], aff[i / 4][i % 4], 1e-5);
    if (mt_python_or_skip("nibabel numpy", "the Python reference check")) {
      char *cmd = mt_strf(
          "%s -c \"import nibabel as nb, numpy as np; im = nb.load('%s'); "
          "d = im.get_fdata(); assert d.shape == (4, 3, 2, 5), d.shape; "
          "assert abs(d[3, 2, 1, 4] - (%zu * 0.5 - 7)) < 1e-6; "
          "assert np.allclose(im.affine, [[0, -2.5, 0, 10], [3, 0, 0, -20], [0, 0, 2, 5], [0, 0, 0, 1]])\"",
          mt_env("MYELIN_PYTHON", "/usr/bin/python3"), path, (size_t)nifti_forder(3, 2, 1, 4, 3) + 4 * 24);
      char *out = NULL;
      ck_assert_msg(mt_run(cmd, &out) == 0, "nibabel rejects our file: %s", out);
      free(out);
      free(cmd);
    }
    free(back);
    free(path);
  }
  free(data);
  free(dir);
}
END_TEST

/* The streamed zlib path gives the same numbers as the one-shot inflate. */
START_TEST(streamed_equals_whole) {
  char *dir = mt_tmpdir();
  char *path = mt_strf("%s/s.nii.gz", dir);
  int64_t dims[4] = {7, 5, 3, 9};
  size_t n = 7 * 5 * 3 * 9;
  float *d = malloc(n * sizeof *d);
  for (size_t i = 0; i < n; i++)
    d[i] = sinf((float)i) * 100.0f;
  double aff[16] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1};
  FILE *f = fopen(path, "wb");
  char err[256];
  ck_assert_int_eq(nifti_write_f32(f, dims, aff, 2.0, d, 1, err, sizeof err), 0);
  fclose(f);
  nifti_reader a, b;
  ck_assert_int_eq(nifti_open_file_ex(&a, path, 0, err, sizeof err), 0);
  ck_assert_int_eq(a.streaming, 1);
  ck_assert_int_eq(nifti_open_file(&b, path, err, sizeof err), 0);
  float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
  size_t nv = 7 * 5 * 3;
  for (int v = 0; v < 9; v++) { /* volume by volume, as fmri_source streams */
    ck_assert_int_eq(nifti_read_volumes(&a, 1, NULL, nv, x + v * nv, nv, err, sizeof err), 0);
  }
  ck_assert_int_eq(nifti_read_volumes(&b, 9, NULL, nv, y, nv, err, sizeof err), 0);
  ck_assert_mem_eq(x, d, n * sizeof *x);
  ck_assert_mem_eq(y, d, n * sizeof *y);
  ck_assert_int_ne(nifti_read_volumes(&a, 1, NULL, nv, x, nv, err, sizeof err), 0);
  nifti_close(&a);
  nifti_close(&b);
  /* a truncated .gz is reported by the stream as truncated data */
  long sz = mt_file_size(path);
  ck_assert_int_eq(truncate(path, sz - 200), 0);
  ck_assert_int_eq(nifti_open_file_ex(&a, path, 0, err, sizeof err), 0);
  int rc = nifti_read_volumes(&a, 9, NULL, nv, x, nv, err, sizeof err);
  ck_assert_int_ne(rc, 0);
  ck_assert_msg(strstr(err, "truncated") && strstr(err, "s.nii.gz"), "%s", err);
  nifti_close(&a);
  free(x);
  free(y);
  free(d);
  free(path);
  free(dir);
}
END_TEST

START_TEST(gather_and_corder) {
  int64_t dims[3] = {3, 4, 5};
  uint32_t c[3] = {0, (uint32_t)nifti_corder(2, 1, 3, 4, 5), 59};
  uint32_t f[3];
  nifti_corder_to_forder(c, 3, dims, f);
  ck_assert_uint_eq(f[0], 0);
  ck_assert_uint_eq(f[1], nifti_forder(2, 1, 3, 3, 4));
  ck_assert_uint_eq(f[2], 59);
  /* gather through the reader */
  size_t len;
  uint8_t *b = make_file(&len);
  nifti_reader r;
  char err[256];
  ck_assert_int_eq(nifti_open_mem(&r, b, len, "g.nii", err, sizeof err), 0);
  uint32_t idx[2] = {7, 2};
  float out[2];
  ck_assert_int_eq(nifti_read_volumes(&r, 1, idx, 2, out, 2, err, sizeof err), 0);
  ck_assert_float_eq(out[0], 70.0f);
  ck_assert_float_eq(out[1], 20.0f);
  ck_assert_int_ne(nifti_read_volumes(&r, 1, idx, 2, out, 2, err, sizeof err), 0); /* past the end */
  nifti_close(&r);
  free(b);
}
END_TEST

/* The tiled C-order reader equals the strided gather, on odd sizes. */
START_TEST(corder_reader_equals_gather) {
  char *dir = mt_tmpdir();
  char *path = mt_strf("%s/c.nii", dir);
  int64_t dims[4] = {37, 19, 23, 3};
  size_t nv = 37 * 19 * 23, n = nv * 3;
  float *d = malloc(n * sizeof *d);
  for (size_t i = 0; i < n; i++)
    d[i] = (float)i;
  double aff[16] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1};
  FILE *f = fopen(path, "wb");
  char err[256];
  ck_assert_int_eq(nifti_write_f32(f, dims, aff, 1.0, d, 0, err, sizeof err), 0);
  fclose(f);
  uint32_t *c = malloc(nv * sizeof *c), *fo = malloc(nv * sizeof *fo), sub[4] = {5, 0, 999, (uint32_t)nv - 1};
  for (size_t i = 0; i < nv; i++)
    c[i] = (uint32_t)i;
  int64_t g[3] = {37, 19, 23};
  nifti_corder_to_forder(c, nv, g, fo);
  float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y), xs[12], ys[12];
  nifti_reader a, b;
  ck_assert_int_eq(nifti_open_file(&a, path, err, sizeof err), 0);
  ck_assert_int_eq(nifti_open_file(&b, path, err, sizeof err), 0);
  ck_assert_int_eq(nifti_read_volumes_c(&a, 2, NULL, nv, x, nv, err, sizeof err), 0);
  ck_assert_int_eq(nifti_read_volumes(&b, 2, fo, nv, y, nv, err, sizeof err), 0);
  ck_assert_mem_eq(x, y, 2 * nv * sizeof *x);
  ck_assert_float_eq(x[nifti_corder(36, 18, 22, 19, 23)], (float)nifti_forder(36, 18, 22, 37, 19));
  uint32_t fsub[4];
  for (int k = 0; k < 4; k++)
    fsub[k] = fo[sub[k]];
  ck_assert_int_eq(nifti_read_volumes_c(&a, 1, sub, 4, xs, 4, err, sizeof err), 0);
  ck_assert_int_eq(nifti_read_volumes(&b, 1, fsub, 4, ys, 4, err, sizeof err), 0);
  ck_assert_mem_eq(xs, ys, 4 * sizeof *xs);
  uint32_t bad = (uint32_t)nv;
  ck_assert_int_ne(nifti_read_volumes_c(&a, 1, &bad, 1, xs, 1, err, sizeof err), 0);
  nifti_close(&a);
  nifti_close(&b);
  free(x);
  free(y);
  free(c);
  free(fo);
  free(d);
  free(path);
  free(dir);
}
END_TEST

int main(void) {
  Suite *s = suite_create("nifti");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, conformance_with_nibabel);
  tcase_add_test(tc, committed_reference_values);
  tcase_add_test(tc, malformed_headers);
  tcase_add_test(tc, cifti_is_refused);
  tcase_add_test(tc, writer_round_trip);
  tcase_add_test(tc, gather_and_corder);
  tcase_add_test(tc, streamed_equals_whole);
  tcase_add_test(tc, corder_reader_equals_gather);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
