/*
 * tests/dicom — DICOM reading (plugins/fmri_source/dicom.{h,c},
 * dicom_dcmtk.cpp) and fmri_source's `format: dicom`, batch and watch.
 *
 * Files: tests/data/dicom/ (provenance in tests/data/README.md): pydicom's
 * and nibabel's test files, and a mosaic run, an enhanced image and a
 * single-frame series derived from them by tests/dicom/make_dicom.py.
 *
 * References: dicom_ref.py converts the same files with dcm2niix and with
 * nibabel's nicom wrappers and maps them onto myelin's voxel axes; values
 * and affine must agree. When python or dcm2niix is missing that check
 * skips; committed numbers (from pydicom and dcm2niix) keep a check on
 * MR_small, and the compressed variants must equal the uncompressed one.
 */
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <time.h>

#include "dicom.h"
#include "myelin/harness.h"
#include "myelin/io.h"
#include "myelin/myelin.h"
#include "testutil.h"

static const char *data_dir(void) {
  static char buf[1024];
  snprintf(buf, sizeof buf, "%s/tests/data/dicom", mt_env("MYELIN_SOURCE_DIR", "."));
  return buf;
}

/* A test file's path; .gz files are inflated into a temporary folder. */
static char *dfile(const char *rel) {
  char *p = mt_strf("%s/%s", data_dir(), rel);
  size_t n = strlen(p);
  if (n < 3 || strcmp(p + n - 3, ".gz") != 0) return p;
  uint8_t *buf;
  size_t len;
  char err[512];
  ck_assert_msg(myelin_read_file(p, 0, &buf, &len, err, sizeof err) == 0, "%s", err);
  const char *base = strrchr(rel, '/');
  char *out =
      mt_strf("%s/%.*s", mt_tmpdir(), (int)(strlen(base ? base + 1 : rel) - 3), base ? base + 1 : rel);
  FILE *f = fopen(out, "wb");
  ck_assert(f != NULL);
  ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
  fclose(f);
  free(buf);
  return out;
}

/* Reads and assembles files into ser; returns 0 or -1 with err. */
static int load(char **paths, size_t n, dicom_series *ser, char *err, size_t errlen) {
  dicom_image *im = calloc(n, sizeof *im);
  size_t got = 0;
  int rc = 0;
  for (; got < n; got++)
    if (dicom_read(paths[got], 1, &im[got], err, errlen)) {
      rc = -1;
      break;
    }
  if (!rc) rc = dicom_assemble(im, n, ser, err, errlen);
  for (size_t i = 0; i < got; i++)
    dicom_image_free(&im[i]);
  free(im);
  return rc;
}

static void load_ok(char **paths, size_t n, dicom_series *ser) {
  char err[1024];
  ck_assert_msg(load(paths, n, ser, err, sizeof err) == 0, "%s", err);
}

/* The sorted files of a folder of the test data. */
static size_t folder(const char *rel, char **out, size_t max) {
  char *dir = mt_strf("%s/%s", data_dir(), rel);
  struct dirent **list;
  int n = scandir(dir, &list, NULL, alphasort);
  ck_assert_int_gt(n, 0);
  size_t k = 0;
  for (int i = 0; i < n; i++) {
    if (list[i]->d_name[0] != '.' && k < max) out[k++] = dfile(mt_strf("%s/%s", rel, list[i]->d_name));
    free(list[i]);
  }
  free(list);
  return k;
}

/* ---- values and affine against dcm2niix and nibabel ------------------------------- */

/* 1 when compared, 0 when the tool could not convert the files (skip noted). */
static int compare_with(const char *tool, char **paths, size_t n) {
  dicom_series ser;
  load_ok(paths, n, &ser);
  char *prefix = mt_strf("%s/ours", mt_tmpdir());
  FILE *f = fopen(mt_strf("%s.dims", prefix), "w");
  fprintf(f, "%lld %lld %lld %zu\n", (long long)ser.dims[0], (long long)ser.dims[1], (long long)ser.dims[2],
          ser.T);
  fclose(f);
  f = fopen(mt_strf("%s.aff", prefix), "wb");
  fwrite(ser.affine, sizeof(double), 16, f);
  fclose(f);
  char *cmd = mt_strf("%s %s/tests/dicom/dicom_ref.py %s %s", mt_env("MYELIN_PYTHON", "/usr/bin/python3"),
                      mt_env("MYELIN_SOURCE_DIR", "."), tool, prefix);
  for (size_t i = 0; i < n; i++)
    cmd = mt_strf("%s %s", cmd, paths[i]);
  char *out = NULL;
  int rc = mt_run(cmd, &out);
  ck_assert_msg(rc == 0 || rc == 3, "%s on %s: %s", tool, paths[0], out);
  if (rc == 3) {
    mt_skip_note("%s cannot convert %s: %s", tool, paths[0], out);
    free(out);
    dicom_series_free(&ser);
    return 0;
  }
  free(out);
  size_t V = (size_t)(ser.dims[0] * ser.dims[1] * ser.dims[2]), len;
  uint8_t *ref, *raff;
  char err[256];
  ck_assert_int_eq(myelin_read_file(mt_strf("%s.ref.f32", prefix), 0, &ref, &len, err, sizeof err), 0);
  ck_assert_uint_eq(len, V * ser.T * sizeof(float));
  const float *r = (const float *)ref;
  for (size_t i = 0; i < V * ser.T; i++)
    ck_assert_msg(fabsf(r[i] - ser.data[i]) <= 1e-4f * (1 + fabsf(r[i])), "%s, %s: value %zu = %g, %s %g",
                  paths[0], tool, i, ser.data[i], tool, r[i]);
  ck_assert_int_eq(myelin_read_file(mt_strf("%s.ref.aff", prefix), 0, &raff, &len, err, sizeof err), 0);
  const double *a = (const double *)raff;
  for (int i = 0; i < 16; i++)
    ck_assert_msg(fabs(a[i] - (&ser.affine[0][0])[i]) < 1e-3, "%s, %s: affine[%d] = %.6f, %s %.6f", paths[0],
                  tool, i, (&ser.affine[0][0])[i], tool, a[i]);
  free(ref);
  free(raff);
  dicom_series_free(&ser);
  return 1;
}

static int have_tool(const char *tool) {
  if (strcmp(tool, "dcm2niix") == 0 && system("dcm2niix -h >/dev/null 2>&1") != 0) {
    mt_skip_note("dcm2niix is not installed (Debian package dcm2niix)");
    return 0;
  }
  return mt_python_or_skip("nibabel numpy", "the dcm2niix/nibabel reference check");
}

START_TEST(same_as_dcm2niix) {
  if (!have_tool("dcm2niix")) return;
  static const char *single[] = {
      "MR_small.dcm",        "MR_small_RLE.dcm", "MR_small_bigendian.dcm",   "MR_small_implicit.dcm",
      "decimal_rescale.dcm", "enhanced.dcm.gz",  "mosaic_run/vol_001.dcm.gz"};
  for (size_t i = 0; i < sizeof single / sizeof *single; i++) {
    char *p = dfile(single[i]);
    compare_with("dcm2niix", &p, 1);
  }
  char *v[16];
  size_t n = folder("mosaic_run", v, 16);
  ck_assert_uint_eq(n, 3);
  ck_assert(compare_with("dcm2niix", v, n));
  n = folder("slices", v, 16);
  ck_assert_uint_eq(n, 12);
  ck_assert(compare_with("dcm2niix", v, n));
}
END_TEST

/* nibabel's nicom reads single files (nibabel 5.0's enhanced-image affine puts the
 * origin at the far end of the stack, so enhanced.dcm is checked against
 * dcm2niix only). */
START_TEST(same_as_nibabel) {
  if (!have_tool("nibabel")) return;
  static const char *single[] = {"MR_small.dcm", "MR_small_RLE.dcm", "MR_small_bigendian.dcm",
                                 "decimal_rescale.dcm", "mosaic_run/vol_002.dcm.gz"};
  for (size_t i = 0; i < sizeof single / sizeof *single; i++) {
    char *p = dfile(single[i]);
    ck_assert_msg(compare_with("nibabel", &p, 1), "nibabel reads %s", single[i]);
  }
}
END_TEST

/* Without python: numbers from pydicom and dcm2niix, committed; every
 * transfer syntax DCMTK decodes gives MR_small's values. */
START_TEST(committed_numbers_and_codecs) {
  char *p = dfile("MR_small.dcm");
  dicom_series a;
  load_ok(&p, 1, &a);
  ck_assert_int_eq(a.dims[0], 64);
  ck_assert_int_eq(a.dims[1], 64);
  ck_assert_int_eq(a.dims[2], 1);
  ck_assert_uint_eq(a.T, 1);
  /* pixel_array[63, 0], [0, 63], [10, 20]: (x = column, y = 63 - row) */
  ck_assert_float_eq(a.data[(0 * 64 + 0)], 378.0f);
  ck_assert_float_eq(a.data[(63 * 64 + 63)], 328.0f);
  ck_assert_float_eq(a.data[(20 * 64 + 53)], 316.0f);
  double sum = 0;
  for (size_t i = 0; i < 4096; i++)
    sum += a.data[i];
  ck_assert_double_eq(sum, 2125338.0);
  /* dcm2niix's affine of MR_small.dcm */
  static const double aff[4][4] = {
      {-0.3125, 0, 0, 83.90625}, {0, 0.3125, 0, 71.5125}, {0, 0, 0.8, 6.640625}, {0, 0, 0, 1}};
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++)
      ck_assert_double_eq_tol(a.affine[i][j], aff[i][j], 1e-4);
  ck_assert_double_eq_tol(a.tr, 4.0, 1e-12); /* RepetitionTime 4000 ms */
  static const char *variants[] = {"MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm",
                                   "MR_small_bigendian.dcm", "MR_small_implicit.dcm"};
  for (size_t k = 0; k < sizeof variants / sizeof *variants; k++) {
    char *q = dfile(variants[k]);
    dicom_series b;
    load_ok(&q, 1, &b);
    ck_assert_int_eq(memcmp(a.data, b.data, 4096 * sizeof(float)), 0);
    ck_assert_int_eq(memcmp(a.affine, b.affine, sizeof a.affine), 0);
    dicom_series_free(&b);
  }
  dicom_series_free(&a);
}
END_TEST

/* dicom_preload (watch mode calls it before the first volume) loads DCMTK's
 * data dictionary, and says so when there is none. Each check runs in its
 * own forked process, so the dictionary is not loaded yet at its start. */
START_TEST(dictionary_preload) {
  ck_assert_int_eq(dicom_preload(), 0);
  ck_assert_int_eq(dicom_preload(), 0); /* once is enough; again is harmless */
  char *p = dfile("MR_small.dcm");
  dicom_series a;
  load_ok(&p, 1, &a);
  ck_assert_int_eq(a.dims[0], 64);
  dicom_series_free(&a);
}
END_TEST

START_TEST(dictionary_missing) {
  const char *fork_mode = getenv("CK_FORK");
  if (fork_mode && !strcmp(fork_mode, "no")) MT_SKIP("needs a process of its own (CK_FORK=no)");
  setenv("DCMDICTPATH", "/nonexistent/dicom.dic", 1);
  ck_assert_int_eq(dicom_preload(), -1);
}
END_TEST

/* A mosaic: 48 slices of 8 x 8 cut from 56 x 56, slice times carried. */
START_TEST(mosaic_and_slice_times) {
  char *v[4];
  size_t n = folder("mosaic_run", v, 4);
  dicom_series s;
  load_ok(v, n, &s);
  ck_assert_int_eq(s.dims[0], 8);
  ck_assert_int_eq(s.dims[2], 48);
  ck_assert_uint_eq(s.T, 3);
  ck_assert_double_eq_tol(s.tr, 2.0, 1e-12);
  ck_assert_ptr_nonnull(s.slice_times);
  /* make_dicom.py: MosaicRefAcqTimes = (k * 17 mod 48) * 40 ms */
  for (int k = 0; k < 48; k++)
    ck_assert_double_eq_tol(s.slice_times[k], (k * 17 % 48) * 0.040, 1e-9);
  /* pattern((48, 8, 8), t)[k, r, c] = 100 + 50t + k + 8r + 15c + (r*c + t) % 13 */
  for (size_t t = 0; t < 3; t++)
    for (int k = 0; k < 48; k += 7) {
      int r = 5, c = 2, x = c, y = 7 - r;
      float want = (float)(100 + 50 * (int)t + k + 8 * r + 15 * c + (r * c + (int)t) % 13);
      ck_assert_float_eq(s.data[t * 8 * 8 * 48 + (size_t)(x * 8 + y) * 48 + (size_t)k], want);
    }
  dicom_series_free(&s);
}
END_TEST

/* ---- errors -------------------------------------------------------------------------- */

static void expect_error(char **paths, size_t n, const char *needle, const char *who) {
  char err[1024] = "";
  dicom_series s;
  ck_assert_msg(load(paths, n, &s, err, sizeof err) != 0, "%s: accepted", paths[0]);
  ck_assert_msg(strstr(err, needle) != NULL, "error \"%s\" lacks \"%s\"", err, needle);
  ck_assert_msg(strstr(err, who) != NULL, "error \"%s\" does not name %s", err, who);
}

START_TEST(bad_files_named) {
  char *dir = mt_tmpdir();
  char *txt = mt_strf("%s/notes.dcm", dir);
  mt_write(txt, "these are not the pixels you are looking for\n");
  expect_error(&txt, 1, "not a DICOM file", "notes.dcm");
  char *p = dfile("MR_truncated.dcm");
  expect_error(&p, 1, "truncated", "MR_truncated.dcm");
  p = dfile("csa_slice_norm.dcm");
  expect_error(&p, 1, "no pixel data", "csa_slice_norm.dcm");
  /* Every truncation of three encodings is an error, never a crash. */
  static const char *whole[] = {"slices/IM0000.dcm", "MR_small_jpeg_ls_lossless.dcm",
                                "mosaic_run/vol_001.dcm.gz"};
  for (size_t w = 0; w < 3; w++) {
    char *src = dfile(whole[w]);
    uint8_t *buf;
    size_t len;
    char err[512];
    ck_assert_int_eq(myelin_read_file(src, 0, &buf, &len, err, sizeof err), 0);
    char *cut = mt_strf("%s/cut%zu.dcm", dir, w);
    for (size_t k = 0; k < len; k += len / 40 + 1) {
      FILE *f = fopen(cut, "wb");
      fwrite(buf, 1, k, f);
      fclose(f);
      expect_error(&cut, 1, "", cut);
    }
    free(buf);
  }
}
END_TEST

START_TEST(inconsistent_geometry_named) {
  char *v[16];
  size_t n = folder("slices", v, 16);
  ck_assert_uint_eq(n, 12);
  /* the files of volume 0 are IM0011, IM0003, IM0007, IM0000 (slices 0-3) */
  char *vol0[4] = {v[11], v[3], v[7], v[0]};
  dicom_series s;
  load_ok(vol0, 4, &s);
  ck_assert_int_eq(s.dims[2], 4);
  ck_assert_uint_eq(s.T, 1);
  ck_assert_ptr_nonnull(s.slice_times);
  ck_assert_double_eq_tol(s.slice_times[1], 0.5, 1e-9);
  ck_assert_double_eq_tol(s.slice_times[3], 1.5, 1e-9);
  dicom_series_free(&s);
  char *rot[4] = {v[11], v[3], dfile("slice_rotated.dcm"), v[0]};
  expect_error(rot, 4, "inconsistent geometry", "slice_rotated.dcm");
  char *uneven[3] = {v[11], v[3], v[0]};
  expect_error(uneven, 3, "slice gap", "IM0003.dcm"); /* the file after the odd gap */
  expect_error(v, 11, "missing or extra slices", "IM00");
  char *mosaic = dfile("mosaic_run/vol_001.dcm.gz");
  char *mixed[2] = {v[0], mosaic};
  expect_error(mixed, 2, "inconsistent series", "vol_001.dcm");
}
END_TEST

/* The CSA parser on cut and corrupted headers: never reads out of bounds
 * (ASan), returns 0 when malformed. */
START_TEST(csa_bounds) {
  uint8_t buf[300];
  memset(buf, 0, sizeof buf);
  memcpy(buf, "SV10\4\3\2\1", 8);
  buf[8] = 1; /* one tag */
  buf[12] = 77;
  memcpy(buf + 16, "SliceNormalVector", 17);
  buf[16 + 76] = 3; /* three items */
  size_t pos = 16 + 84;
  const char *vals[3] = {"0.5", "-0.25", "1"};
  for (int i = 0; i < 3; i++) {
    uint32_t l = (uint32_t)strlen(vals[i]);
    memcpy(buf + pos + 4, &l, 4);
    pos += 16;
    memcpy(buf + pos, vals[i], l);
    pos += (l + 3) / 4 * 4;
  }
  double out[3];
  ck_assert_int_eq(dicom_csa_numbers(buf, pos, "SliceNormalVector", out, 3), 3);
  ck_assert_double_eq(out[1], -0.25);
  ck_assert_int_eq(dicom_csa_numbers(buf, pos, "Other", out, 3), 0);
  for (size_t cut = 0; cut < pos; cut++)
    ck_assert_int_lt(dicom_csa_numbers(buf, cut, "SliceNormalVector", out, 3), 3);
  uint32_t huge = 0xfffffff0u;
  memcpy(buf + 16 + 84 + 4, &huge, 4);
  ck_assert_int_eq(dicom_csa_numbers(buf, pos, "SliceNormalVector", out, 3), 0);
}
END_TEST

/* ---- fmri_source: batch ------------------------------------------------------------- */

static myelin_harness *run_source(const char *params) {
  char err[1024];
  myelin_harness *h = myelin_harness_new("fmri_source", params, err, sizeof err);
  ck_assert_msg(h != NULL, "harness: %s", err);
  ck_assert_msg(myelin_harness_start(h) == 0, "start: %s", myelin_harness_error(h));
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  return h;
}

START_TEST(source_series_folder_is_a_run) {
  myelin_harness *h = run_source(mt_strf("{path: %s/slices}", data_dir()));
  ck_assert_uint_eq(myelin_harness_count(h, "out"), 1);
  myelin_msg *m = myelin_harness_output(h, "out", 0);
  ck_assert_str_eq(myelin_msg_kind(m), "run");
  myelin_tensor x;
  ck_assert_int_eq(myelin_msg_tensor(m, "data", &x), 0);
  ck_assert_int_eq(x.ndim, 2);
  ck_assert_int_eq(x.shape[0], 3);
  ck_assert_int_eq(x.shape[1], 64 * 64 * 4);
  myelin_tensor st;
  ck_assert_int_eq(myelin_msg_tensor(m, "slice_times", &st), 0);
  ck_assert_int_eq(st.shape[0], 4);
  double tr;
  ck_assert_int_eq(myelin_msg_float(m, "tr", &tr), 0);
  ck_assert_double_eq_tol(tr, 4.0, 1e-12);
  /* volume 2, slice 3 (seed 4*2+3 = 11) at (x=0, y=0, z=3) = row 63, column 0:
   * make_dicom.py's pattern 100 + 50 seed + r + 8 c + (r c + seed) % 13 */
  const float *d = x.data;
  ck_assert_float_eq(d[2 * (size_t)x.shape[1] + 3], (float)(100 + 50 * 11 + 63 + 0 + (0 + 11) % 13));
  myelin_harness_free(h);
  /* the same series as volumes, through `format: dicom` and a glob */
  h = run_source(mt_strf("{path: '%s/slices/IM*.dcm', format: dicom, emit: volume}", data_dir()));
  ck_assert_uint_eq(myelin_harness_count(h, "out"), 3);
  myelin_harness_free(h);
}
END_TEST

/* ---- fmri_source: watch ------------------------------------------------------------- */

static void msleep(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

typedef struct writer {
  char *dir;
  uint8_t *vol[3];
  size_t len[3];
} writer;

static void write_bytes(const char *path, const uint8_t *b, size_t n) {
  FILE *f = fopen(path, "wb");
  fwrite(b, 1, n, f);
  fclose(f);
}

/* As a scanner: vol 1 renamed into place, a corrupt file, vol 2 in three
 * chunks 150 ms apart (settle_ms 400), vol 1 rewritten (must not come
 * again), vol 3 whole. */
static void *scanner(void *arg) {
  writer *w = arg;
  msleep(300);
  char *tmp = mt_strf("%s/.partial", w->dir);
  write_bytes(tmp, w->vol[0], w->len[0]);
  ck_assert_int_eq(rename(tmp, mt_strf("%s/img_0001.dcm", w->dir)), 0);
  msleep(100);
  write_bytes(mt_strf("%s/img_0001b.dcm", w->dir), w->vol[1], w->len[1] / 3);
  FILE *f = fopen(mt_strf("%s/img_0002.dcm", w->dir), "wb");
  size_t third = w->len[1] / 3;
  for (int k = 0; k < 3; k++) {
    fwrite(w->vol[1] + k * third, 1, k == 2 ? w->len[1] - 2 * third : third, f);
    fflush(f);
    msleep(150);
  }
  fclose(f);
  msleep(600);
  write_bytes(mt_strf("%s/img_0001.dcm", w->dir), w->vol[2], w->len[2]);
  write_bytes(mt_strf("%s/img_0003.dcm", w->dir), w->vol[2], w->len[2]);
  return NULL;
}

START_TEST(watch_dicom_skips_bad_and_half_written) {
  writer w = {mt_tmpdir(), {0}, {0}};
  char err[256];
  for (int t = 0; t < 3; t++)
    ck_assert_int_eq(myelin_read_file(mt_strf("%s/mosaic_run/vol_%03d.dcm.gz", data_dir(), t + 1), 0,
                                      &w.vol[t], &w.len[t], err, sizeof err),
                     0);
  pthread_t th;
  ck_assert_int_eq(pthread_create(&th, NULL, scanner, &w), 0);
  myelin_harness *h = run_source(mt_strf("{watch: %s, settle_ms: 400, idle_timeout: 2.5}", w.dir));
  pthread_join(th, NULL);
  /* vol 1, vol 2 (once complete), vol 3; the corrupt file skipped; the
   * rewritten img_0001 not read again */
  ck_assert_uint_eq(myelin_harness_count(h, "out"), 3);
  ck_assert_int_eq(myelin_harness_counter(h, "skipped"), 1);
  static const int want_t[3] = {0, 1, 2};
  for (int i = 0; i < 3; i++) {
    myelin_msg *m = myelin_harness_output(h, "out", (size_t)i);
    myelin_tensor x;
    ck_assert_int_eq(myelin_msg_tensor(m, "data", &x), 0);
    ck_assert_uint_eq(x.count, 8 * 8 * 48);
    /* slice 0, row 7, column 0 at (x = 0, y = 0, z = 0) */
    int t = want_t[i];
    ck_assert_float_eq(((const float *)x.data)[0], (float)(100 + 50 * t + 8 * 7 + (0 + t) % 13));
    myelin_tensor st;
    ck_assert_int_eq(myelin_msg_tensor(m, "slice_times", &st), 0);
  }
  myelin_harness_free(h);
  for (int t = 0; t < 3; t++)
    free(w.vol[t]);
}
END_TEST

/* Watch mode with one DICOM file per slice (the classic single-frame
 * export): the 12 slice files of tests/data/dicom/slices (3 volumes of 4
 * slices, names shuffled so volumes interleave in name order) become the 3
 * volumes batch mode reads, each once its 4 slices are in; without
 * `slices` they are skipped with a warning saying what to set. */
START_TEST(watch_single_frame_slices) {
  char *dir = mt_tmpdir();
  for (int i = 0; i < 12; i++) {
    uint8_t *b;
    size_t n;
    char err[256];
    ck_assert_int_eq(
        myelin_read_file(mt_strf("%s/slices/IM%04d.dcm", data_dir(), i), 0, &b, &n, err, sizeof err), 0);
    write_bytes(mt_strf("%s/IM%04d.dcm", dir, i), b, n);
    free(b);
  }
  myelin_harness *run = run_source(mt_strf("{path: %s/slices}", data_dir()));
  myelin_tensor all;
  ck_assert_int_eq(myelin_msg_tensor(myelin_harness_output(run, "out", 0), "data", &all), 0);
  const size_t V = 64 * 64 * 4;
  myelin_harness *h = run_source(
      mt_strf("{watch: %s, format: dicom, slices: 4, count: 3, settle_ms: 50, idle_timeout: 10}", dir));
  ck_assert_uint_eq(myelin_harness_count(h, "out"), 3);
  int seen[3] = {0, 0, 0};
  for (size_t i = 0; i < 3; i++) {
    myelin_msg *m = myelin_harness_output(h, "out", i);
    myelin_tensor x;
    ck_assert_int_eq(myelin_msg_tensor(m, "data", &x), 0);
    ck_assert_uint_eq(x.count, V);
    int match = -1;
    for (int t = 0; t < 3; t++)
      if (!memcmp(x.data, (const float *)all.data + (size_t)t * V, V * sizeof(float))) match = t;
    ck_assert_msg(match >= 0, "volume %zu is none of the series' volumes", i);
    seen[match]++;
    myelin_tensor st;
    ck_assert_int_eq(myelin_msg_tensor(m, "slice_times", &st), 0);
    ck_assert_int_eq(st.shape[0], 4);
  }
  ck_assert(seen[0] == 1 && seen[1] == 1 && seen[2] == 1);
  ck_assert_int_eq(myelin_harness_counter(h, "skipped"), 0);
  myelin_harness_free(h);
  myelin_harness_free(run);
  h = run_source(mt_strf("{watch: %s, format: dicom, settle_ms: 50, idle_timeout: 1}", dir));
  ck_assert_uint_eq(myelin_harness_count(h, "out"), 0);
  ck_assert_int_eq(myelin_harness_counter(h, "skipped"), 12);
  ck_assert_ptr_nonnull(strstr(myelin_harness_logs(h), "set `slices`"));
  myelin_harness_free(h);
}
END_TEST

int main(void) {
  Suite *s = suite_create("dicom");
  TCase *tc = tcase_create("dicom");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, same_as_dcm2niix);
  tcase_add_test(tc, same_as_nibabel);
  tcase_add_test(tc, committed_numbers_and_codecs);
  tcase_add_test(tc, dictionary_preload);
  tcase_add_test(tc, dictionary_missing);
  tcase_add_test(tc, mosaic_and_slice_times);
  tcase_add_test(tc, bad_files_named);
  tcase_add_test(tc, inconsistent_geometry_named);
  tcase_add_test(tc, csa_bounds);
  tcase_add_test(tc, source_series_folder_is_a_run);
  tcase_add_test(tc, watch_dicom_skips_bad_and_half_written);
  tcase_add_test(tc, watch_single_frame_slices);
  suite_add_tcase(s, tc);
  return mt_run_suite(s);
}
