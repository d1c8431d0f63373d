/*
 * test_gifti.c — the GIFTI reader and writer (plugins/fmri_source/gifti.c).
 *
 * Conformance: gifti_ref.py (Debian's python3 + nibabel) writes synthetic
 * files (every datatype x encoding x byte order x index order, a label
 * table, an external big-endian column-major file) and dumps what nibabel
 * reads from each of them and from every .gii in nibabel's test data; each
 * DataArray must match bit for bit, with the same metadata and labels.
 * Also: the writer's files read back by nibabel, the structure-name
 * conversions, and malformed inputs rejected with errors naming the file.
 */
#include <math.h>

#include "gifti.h"
#include "myelin/npy.h"
#include "nifti.h"
#include "testutil.h"

static const char *py(void) { return mt_env("MYELIN_PYTHON", "/usr/bin/python3"); }

/* nibabel's GIFTI test files, committed in tests/data (README there). */
static char *gii_data(void) {
  return mt_strf("%s/tests/data/nibabel/gifti", mt_env("MYELIN_SOURCE_DIR", "."));
}

static myelin_dtype dtype_of(int nifti) {
  switch (nifti) {
  case NIFTI_UINT8:
    return MYELIN_U1;
  case NIFTI_INT8:
    return MYELIN_I1;
  case NIFTI_INT16:
    return MYELIN_I2;
  case NIFTI_UINT16:
    return MYELIN_U2;
  case NIFTI_INT32:
    return MYELIN_I4;
  case NIFTI_UINT32:
    return MYELIN_U4;
  case NIFTI_INT64:
    return MYELIN_I8;
  case NIFTI_UINT64:
    return MYELIN_U8;
  case NIFTI_FLOAT32:
    return MYELIN_F4;
  case NIFTI_FLOAT64:
    return MYELIN_F8;
  default:
    return MYELIN_DTYPE_INVALID;
  }
}

static void hex(const char *s, char *out) {
  for (; *s; s++, out += 2)
    sprintf(out, "%02x", (unsigned char)*s);
  *out = 0;
}

/* The reader's metadata as gifti_ref.py's lines, one string. */
static char *meta_lines(const gifti_image *g) {
  size_t cap = 1 << 16, len = 0;
  char *s = malloc(cap);
  s[0] = 0;
  char *k = malloc(1 << 16), *v = malloc(1 << 16);
  for (size_t a = 0; a <= g->narrays; a++) {
    const gifti_meta *m = a == 0 ? &g->meta : &g->arrays[a - 1].meta;
    for (size_t i = 0; i < m->n; i++) {
      char scope[32];
      if (a == 0)
        snprintf(scope, sizeof scope, "file");
      else
        snprintf(scope, sizeof scope, "array%zu", a - 1);
      hex(m->v[i].name, k);
      hex(m->v[i].value, v);
      size_t need = strlen(scope) + strlen(k) + strlen(v) + 4;
      if (len + need >= cap) s = realloc(s, cap = 2 * cap + need);
      len += (size_t)sprintf(s + len, "%s\t%s\t%s\n", scope, k, v);
    }
  }
  for (size_t i = 0; i < g->nlabels; i++) {
    char key[32];
    snprintf(key, sizeof key, "%d", (int)g->labels[i].key);
    hex(key, k);
    hex(g->labels[i].name, v);
    size_t need = strlen(k) + strlen(v) + 10;
    if (len + need >= cap) s = realloc(s, cap = 2 * cap + need);
    len += (size_t)sprintf(s + len, "label\t%s\t%s\n", k, v);
  }
  free(k);
  free(v);
  return s;
}

static char *slurp_text(const char *path) {
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "cannot open %s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  ck_assert_int_eq(fread(s, 1, (size_t)n, f), (size_t)n);
  s[n] = 0;
  fclose(f);
  return s;
}

START_TEST(conformance_with_nibabel) {
  MT_NEED_PYTHON("nibabel numpy", "GIFTI conformance with nibabel");
  char *data = gii_data();
  ck_assert_msg(access(mt_strf("%s/ascii.gii", data), R_OK) == 0, "%s: nibabel's GIFTI files are missing",
                data);
  char *dir = mt_tmpdir();
  char *cmd =
      mt_strf("%s %s/tests/surface/gifti_ref.py %s %s", py(), mt_env("MYELIN_SOURCE_DIR", "."), dir, data);
  char *out = NULL;
  ck_assert_msg(mt_run(cmd, &out) == 0, "reference script failed: %s", out);
  free(out);
  FILE *f = fopen(mt_strf("%s/list.txt", dir), "r");
  ck_assert_ptr_nonnull(f);
  char line[2048];
  int files = 0, nibabel_files = 0;
  size_t arrays = 0;
  int encodings[5] = {0};
  while (fgets(line, sizeof line, f)) {
    char path[1500], tag[64], err[1024];
    size_t n;
    ck_assert_int_eq(sscanf(line, "%1499[^\t]\t%63[^\t]\t%zu", path, tag, &n), 3);
    gifti_image g;
    ck_assert_msg(gifti_read_file(path, &g, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(g.narrays == n, "%s: %zu arrays, nibabel %zu", path, g.narrays, n);
    for (size_t k = 0; k < n; k++) {
      myelin_array ref;
      char *npy = mt_strf("%s/%s.%zu.npy", dir, tag, k);
      ck_assert_msg(myelin_npy_read(npy, &ref, err, sizeof err) == 0, "%s", err);
      const gifti_array *a = &g.arrays[k];
      ck_assert_msg(dtype_of(a->datatype) == ref.dtype, "%s[%zu]: dtype %s, nibabel %s", path, k,
                    nifti_datatype_name(a->datatype), myelin_dtype_name(ref.dtype));
      ck_assert_msg(a->n == ref.count, "%s[%zu]: %zu elements, nibabel %zu", path, k, a->n, ref.count);
      ck_assert_msg(memcmp(a->data, ref.data, ref.nbytes) == 0, "%s[%zu]: data differ from nibabel's", path,
                    k);
      encodings[a->encoding]++;
      myelin_array_free(&ref);
      arrays++;
    }
    /* every metadata entry and label nibabel sees, and no other */
    char *want = slurp_text(mt_strf("%s/%s.meta.txt", dir, tag));
    char *got = meta_lines(&g);
    for (char *l = strtok(want, "\n"); l; l = strtok(NULL, "\n")) {
      char *needle = mt_strf("%s\n", l);
      ck_assert_msg(strstr(got, needle) != NULL, "%s: nibabel has metadata line '%s', the reader:\n%s", path,
                    l, got);
    }
    free(want);
    free(got);
    if (!strncmp(path, data, strlen(data))) nibabel_files++;
    files++;
    gifti_free(&g);
  }
  fclose(f);
  ck_assert_int_ge(nibabel_files, 10); /* every .gii(.gz, .bz2) nibabel ships */
  ck_assert_int_gt(files, 100);
  for (int e = GIFTI_ASCII; e <= GIFTI_EXTBIN; e++)
    ck_assert_msg(encodings[e] > 0, "encoding %d not covered", e);
  printf("gifti: %d files (%d from nibabel), %zu data arrays bit-exact with nibabel\n", files, nibabel_files,
         arrays);
}
END_TEST

START_TEST(structure_names) {
  char b[128];
  gifti_structure_to_cifti("CortexLeft", b, sizeof b);
  ck_assert_str_eq(b, "CIFTI_STRUCTURE_CORTEX_LEFT");
  gifti_structure_to_cifti("CerebellumRight", b, sizeof b);
  ck_assert_str_eq(b, "CIFTI_STRUCTURE_CEREBELLUM_RIGHT");
  gifti_structure_to_cifti("CIFTI_STRUCTURE_CORTEX_RIGHT", b, sizeof b);
  ck_assert_str_eq(b, "CIFTI_STRUCTURE_CORTEX_RIGHT");
  gifti_structure_from_cifti("CIFTI_STRUCTURE_CORTEX_RIGHT", b, sizeof b);
  ck_assert_str_eq(b, "CortexRight");
}
END_TEST

/* Written files: nibabel reads the values bit for bit and the metadata. */
START_TEST(writer_read_back_by_nibabel) {
  char *dir = mt_tmpdir();
  char *path = mt_strf("%s/out.func.gii", dir);
  const size_t R = 3, V = 1000;
  float *rows = malloc(R * V * sizeof *rows);
  for (size_t i = 0; i < R * V; i++)
    rows[i] = (float)sin((double)i * 0.37) * 1e3f + (i % 7 == 0 ? NAN : 0.0f);
  gifti_md fm[2] = {{"subject", "01"}, {"escaped", "<a&b>"}};
  gifti_meta meta = {fm, 2};
  gifti_md rm[3][1] = {{{"Name", "row0"}}, {{"Name", "row1"}}, {{"Name", "row2"}}};
  gifti_meta row_meta[3] = {{rm[0], 1}, {rm[1], 1}, {rm[2], 1}};
  FILE *fp = fopen(path, "wb");
  char err[512];
  ck_assert_int_eq(gifti_write_f32(fp, rows, R, V, GIFTI_INTENT_TIME_SERIES, "CIFTI_STRUCTURE_CORTEX_LEFT",
                                   &meta, row_meta, err, sizeof err),
                   0);
  fclose(fp);
  /* our reader */
  gifti_image g;
  ck_assert_msg(gifti_read_file(path, &g, err, sizeof err) == 0, "%s", err);
  ck_assert_uint_eq(g.narrays, R);
  for (size_t r = 0; r < R; r++) {
    ck_assert_int_eq(g.arrays[r].intent_code, GIFTI_INTENT_TIME_SERIES);
    ck_assert_int_eq(memcmp(g.arrays[r].data, rows + r * V, V * sizeof(float)), 0);
  }
  ck_assert_str_eq(gifti_meta_get(&g.meta, "AnatomicalStructurePrimary"), "CortexLeft");
  ck_assert_str_eq(gifti_meta_get(&g.meta, "escaped"), "<a&b>");
  gifti_free(&g);
  /* nibabel */
  if (mt_python_or_skip("nibabel numpy", "the nibabel read-back")) {
    char *raw = mt_strf("%s/rows.f32", dir);
    FILE *rf = fopen(raw, "wb");
    fwrite(rows, sizeof *rows, R * V, rf);
    fclose(rf);
    char *cmd =
        mt_strf("%s -c \"import nibabel as nb, numpy as np; g = nb.load('%s'); "
                "x = np.fromfile('%s', '<f4').reshape(%zu, %zu); d = np.stack([a.data for a in g.darrays]); "
                "assert d.dtype == np.float32 and d.shape == x.shape; "
                "assert d.tobytes() == x.tobytes(), 'values differ'; "
                "m = dict(g.meta); assert m == {'subject': '01', 'escaped': '<a&b>', "
                "'AnatomicalStructurePrimary': 'CortexLeft'}, m; "
                "assert [a.meta['Name'] for a in g.darrays] == ['row0', 'row1', 'row2']; "
                "assert all(a.intent == 2001 for a in g.darrays)\"",
                py(), path, raw, R, V);
    char *o = NULL;
    ck_assert_msg(mt_run(cmd, &o) == 0, "nibabel check failed: %s", o);
    free(o);
  }
  free(rows);
}
END_TEST

static void expect_error(const char *xml, const char *want) {
  gifti_image g;
  char err[1024];
  ck_assert_int_ne(gifti_read_mem(xml, strlen(xml), "bad.gii", NULL, &g, err, sizeof err), 0);
  ck_assert_msg(strstr(err, "bad.gii") && strstr(err, want), "error '%s' lacks '%s'", err, want);
}

#define DA(attrs, data)                                                                                      \
  "<GIFTI Version='1.0' NumberOfDataArrays='1'><DataArray " attrs "><Data>" data "</Data></DataArray></"     \
  "GIFTI>"
#define OK_ATTRS(enc, dims)                                                                                  \
  "Intent='NIFTI_INTENT_SHAPE' DataType='NIFTI_TYPE_FLOAT32' ArrayIndexingOrder='RowMajorOrder' "            \
  "Dimensionality='1' Dim0='" dims "' Encoding='" enc "' Endian='LittleEndian'"

START_TEST(malformed_inputs_are_errors) {
  expect_error("<GIFTI><DataArray", "not a well-formed XML file");
  expect_error("<NIFTI/>", "not <GIFTI>");
  expect_error(DA(OK_ATTRS("ASCII", "3"), "1 2"), "ASCII data too short for 3 values");
  expect_error(DA(OK_ATTRS("ASCII", "3"), "1   2   "), "ASCII data has 2 numbers");
  expect_error(DA(OK_ATTRS("ASCII", "2"), "1 x"), "ASCII value 1 'x' is not a valid FLOAT32");
  expect_error(DA(OK_ATTRS("ASCII", "1"), "1 2"), "more than the 1 numbers");
  expect_error(DA(OK_ATTRS("Base64Binary", "2"), "AAAA"), "base64 data holds at most");
  expect_error(DA(OK_ATTRS("Base64Binary", "1"), "AA*A"), "not valid base64");
  expect_error(DA(OK_ATTRS("GZipBase64Binary", "1"), "AAAAAAAA"), "not a zlib stream");
  expect_error(DA(OK_ATTRS("GZipBase64Binary", "2000000000"), "AAAA"), "cannot inflate to");
  expect_error(DA(OK_ATTRS("ExternalFileBinary", "1"), ""), "ExternalFileBinary data needs");
  expect_error(DA(OK_ATTRS("Raw", "1"), ""), "Encoding = 'Raw'");
  expect_error(DA("DataType='NIFTI_TYPE_COMPLEX64' Dimensionality='1' Dim0='1' Encoding='ASCII'", "1"),
               "DataType = 'NIFTI_TYPE_COMPLEX64'");
  expect_error(DA("DataType='NIFTI_TYPE_FLOAT32' Dimensionality='9' Dim0='1' Encoding='ASCII'", "1"),
               "Dimensionality = '9'");
  expect_error(DA("DataType='NIFTI_TYPE_FLOAT32' Dimensionality='2' Dim0='1' Encoding='ASCII'", "1"),
               "no Dim1 attribute");
  expect_error(DA("DataType='NIFTI_TYPE_UINT8' Dimensionality='1' Dim0='1' Encoding='ASCII'", "300"),
               "ASCII value 0 '300' is not a valid UINT8");
  expect_error("<GIFTI NumberOfDataArrays='2'></GIFTI>", "NumberOfDataArrays = 2 but the file has 0");
  /* entities are never expanded or fetched */
  expect_error("<!DOCTYPE GIFTI [<!ENTITY x SYSTEM 'file:///etc/passwd'>]>"
               "<GIFTI NumberOfDataArrays='1'><DataArray " OK_ATTRS(
                   "ASCII", "1") "><Data>&x;</Data></DataArray></GIFTI>",
               "ASCII data has 0 numbers");
}
END_TEST

int main(void) {
  Suite *s = suite_create("gifti");
  TCase *tc = tcase_create("gifti");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, conformance_with_nibabel);
  tcase_add_test(tc, structure_names);
  tcase_add_test(tc, writer_read_back_by_nibabel);
  tcase_add_test(tc, malformed_inputs_are_errors);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int nf = srunner_ntests_failed(sr);
  srunner_free(sr);
  return nf ? 1 : 0;
}
