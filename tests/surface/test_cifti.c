/*
 * test_cifti.c — the CIFTI-2 reader and writer (plugins/fmri_source/cifti.c).
 *
 * Conformance: cifti_ref.py writes one file of each type with nibabel's
 * cifti2 API (dtseries, dscalar, dlabel, ptseries, pscalar, pconn, dconn;
 * both cortical surfaces plus subcortical voxels, parcels with vertices and
 * voxels, labels) and dumps what nibabel reads from each and from nibabel's
 * row_major.dconn.nii (tests/data): the data, bit for bit, and the axes, as
 * canonical text that this suite prints from myelin's reader the same way.
 * Also: written .dscalar/.pscalar files read back by nibabel, and malformed
 * files refused by name.
 */
#include <math.h>

#include "cifti.h"
#include "myelin/npy.h"
#include "testutil.h"

static const char *py(void) { return mt_env("MYELIN_PYTHON", "/usr/bin/python3"); }

typedef struct sbuf {
  char *s;
  size_t n, cap;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (b->n + (size_t)k + 1 > b->cap) {
    b->cap = (b->n + (size_t)k + 1) * 2;
    b->s = realloc(b->s, b->cap);
  }
  va_start(ap, fmt);
  vsnprintf(b->s + b->n, (size_t)k + 1, fmt, ap);
  va_end(ap);
  b->n += (size_t)k;
}

static long long bits(double v) {
  long long x;
  memcpy(&x, &v, 8);
  return x;
}

static void volume_text(sbuf *b, const cifti_axis *a) {
  if (!a->has_volume) return;
  sb_printf(b, "volume %lld %lld %lld", (long long)a->vol_dims[0], (long long)a->vol_dims[1],
            (long long)a->vol_dims[2]);
  for (int i = 0; i < 16; i++)
    sb_printf(b, " %lld", bits(a->affine[i / 4][i % 4]));
  sb_printf(b, "\n");
}

static void ints(sbuf *b, const char *tag, const int32_t *v, const uint32_t *u, size_t n) {
  sb_printf(b, "%s", tag);
  for (size_t i = 0; i < n; i++)
    sb_printf(b, " %lld", u ? (long long)u[i] : (long long)v[i]);
  sb_printf(b, "\n");
}

/* The axes as cifti_ref.py's axis_text prints them. */
static char *axes_text(const cifti_file *c) {
  sbuf b = {0};
  for (int d = 0; d < 2; d++) {
    const cifti_axis *a = &c->axes[d];
    switch (a->type) {
    case CIFTI_BRAIN_MODELS:
      sb_printf(&b, "axis %d brain_models %zu\n", d, a->n);
      volume_text(&b, a);
      for (size_t i = 0; i < a->nmodels; i++) {
        const cifti_model *m = &a->models[i];
        sb_printf(&b, "model %s %s %zu %zu %zu\n", m->structure, m->surface ? "surface" : "voxels", m->offset,
                  m->count, m->surface ? m->nvert : 0);
        if (m->surface)
          ints(&b, "v", NULL, m->vertices, m->count);
        else
          ints(&b, "ijk", m->ijk, NULL, m->count * 3);
      }
      break;
    case CIFTI_PARCELS:
      sb_printf(&b, "axis %d parcels %zu\n", d, a->n);
      volume_text(&b, a);
      for (size_t i = 0; i < a->nsurfaces; i++)
        sb_printf(&b, "surface %s %zu\n", a->surfaces[i].structure, a->surfaces[i].nvert);
      for (size_t i = 0; i < a->nparcels; i++) {
        const cifti_parcel *p = &a->parcels[i];
        sb_printf(&b, "parcel %s %zu %zu\n", p->name, p->nvox, p->nsurf);
        if (p->nvox) ints(&b, "ijk", p->ijk, NULL, p->nvox * 3);
        for (size_t k = 0; k < p->nsurf; k++) {
          char tag[100];
          snprintf(tag, sizeof tag, "verts %s", p->surf[k].structure);
          ints(&b, tag, NULL, p->surf[k].vertices, p->surf[k].n);
        }
      }
      break;
    case CIFTI_SERIES:
      sb_printf(&b, "axis %d series %zu\nseries %lld %lld %s\n", d, a->n,
                bits(a->start * pow(10, a->exponent)), bits(a->step * pow(10, a->exponent)), a->unit);
      break;
    case CIFTI_SCALARS:
    case CIFTI_LABELS:
      sb_printf(&b, "axis %d %s %zu\n", d, a->type == CIFTI_SCALARS ? "scalars" : "labels", a->n);
      for (size_t i = 0; i < a->n; i++) {
        sb_printf(&b, "map %s\n", a->maps[i].name);
        for (size_t k = 0; k < a->maps[i].nlabels; k++) {
          const gifti_label *l = &a->maps[i].labels[k];
          sb_printf(&b, "label %d %s %lld %lld %lld %lld\n", (int)l->key, l->name, bits(l->rgba[0]),
                    bits(l->rgba[1]), bits(l->rgba[2]), bits(l->rgba[3]));
        }
      }
      break;
    default:
      sb_printf(&b, "axis %d unknown\n", d);
    }
  }
  return b.s;
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
  MT_NEED_PYTHON("nibabel numpy", "CIFTI-2 conformance with nibabel");
  char *dconn = mt_strf("%s/tests/data/nibabel/row_major.dconn.nii", mt_env("MYELIN_SOURCE_DIR", "."));
  ck_assert_msg(access(dconn, R_OK) == 0, "%s is missing", dconn);
  char *dir = mt_tmpdir();
  char *out = NULL;
  ck_assert_msg(mt_run(mt_strf("%s %s/tests/surface/cifti_ref.py %s %s", py(),
                               mt_env("MYELIN_SOURCE_DIR", "."), dir, dconn),
                       &out) == 0,
                "reference script failed: %s", out);
  free(out);
  FILE *f = fopen(mt_strf("%s/list.txt", dir), "r");
  ck_assert_ptr_nonnull(f);
  char line[2048];
  int files = 0;
  while (fgets(line, sizeof line, f)) {
    char path[1500], tag[64], err[1024];
    ck_assert_int_eq(sscanf(line, "%1499[^\t]\t%63[^\n]", path, tag), 2);
    cifti_file c;
    ck_assert_msg(cifti_read_file(path, &c, err, sizeof err) == 0, "%s", err);
    myelin_array ref;
    ck_assert_msg(myelin_npy_read(mt_strf("%s/%s.npy", dir, tag), &ref, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(ref.ndim, 2);
    ck_assert_msg((size_t)ref.shape[0] == c.rows && (size_t)ref.shape[1] == c.cols,
                  "%s: %zu x %zu, nibabel %lld x %lld", path, c.rows, c.cols, (long long)ref.shape[0],
                  (long long)ref.shape[1]);
    ck_assert_msg(memcmp(ref.data, c.data, ref.nbytes) == 0, "%s: data differ from nibabel's", path);
    char *want = slurp_text(mt_strf("%s/%s.axes.txt", dir, tag));
    char *got = axes_text(&c);
    ck_assert_msg(!strcmp(want, got), "%s: axes differ\nnibabel:\n%s\nmyelin:\n%s", path, want, got);
    if (strstr(path, "row_major.dconn.nii")) /* a dense connectome: brain models on both axes */
      ck_assert(c.axes[0].type == CIFTI_BRAIN_MODELS && c.axes[1].type == CIFTI_BRAIN_MODELS &&
                c.rows == c.cols);
    free(want);
    free(got);
    myelin_array_free(&ref);
    cifti_free(&c);
    files++;
  }
  fclose(f);
  ck_assert_int_eq(files, 9);
}
END_TEST

/* Written dscalar and pscalar files: nibabel reads the values and the axes
 * of the source file back. */
START_TEST(writer_read_back_by_nibabel) {
  MT_NEED_PYTHON("nibabel numpy", "the nibabel read-back");
  char *dir = mt_tmpdir();
  char *out = NULL;
  ck_assert_msg(
      mt_run(mt_strf("%s %s/tests/surface/cifti_ref.py %s", py(), mt_env("MYELIN_SOURCE_DIR", "."), dir),
             &out) == 0,
      "reference script failed: %s", out);
  free(out);
  const char *src[2] = {"x.dscalar.nii", "x.pscalar.nii"};
  for (int k = 0; k < 2; k++) {
    char err[1024];
    cifti_file c;
    ck_assert_msg(cifti_read_file(mt_strf("%s/%s", dir, src[k]), &c, err, sizeof err) == 0, "%s", err);
    char *dst = mt_strf("%s/out_%s", dir, src[k]);
    const char *names[3] = {c.axes[0].maps[0].name, c.axes[0].maps[1].name, c.axes[0].maps[2].name};
    FILE *fp = fopen(dst, "wb");
    ck_assert_msg(cifti_write_scalars(fp, c.data, c.rows, names, &c.axes[1], err, sizeof err) == 0, "%s",
                  err);
    fclose(fp);
    char *cmd = mt_strf(
        "%s -c \"import nibabel as nb, numpy as np; a = nb.load('%s/%s'); b = nb.load('%s'); "
        "assert b.get_fdata(dtype=np.float32).tobytes() == a.get_fdata(dtype=np.float32).tobytes(); "
        "assert a.header.get_axis(0) == b.header.get_axis(0); "
        "assert a.header.get_axis(1) == b.header.get_axis(1), (a.header.get_axis(1), "
        "b.header.get_axis(1)); assert b.nifti_header.get_intent()[0] == a.nifti_header.get_intent()[0]\"",
        py(), dir, src[k], dst);
    ck_assert_msg(mt_run(cmd, &out) == 0, "nibabel check of %s failed: %s", dst, out);
    free(out);
    /* and our reader */
    cifti_file r;
    ck_assert_msg(cifti_read_file(dst, &r, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(memcmp(r.data, c.data, c.rows * c.cols * sizeof(float)), 0);
    cifti_free(&r);
    cifti_free(&c);
  }
}
END_TEST

START_TEST(malformed_files_are_errors) {
  char *dconn = mt_strf("%s/tests/data/nibabel/row_major.dconn.nii", mt_env("MYELIN_SOURCE_DIR", "."));
  FILE *f = fopen(dconn, "rb");
  ck_assert_ptr_nonnull(f);
  uint8_t buf[4096];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  cifti_file c;
  char err[1024];
  ck_assert_int_eq(cifti_read_mem(buf, n, "ok.dconn.nii", &c, err, sizeof err), 0);
  cifti_free(&c);
  /* truncated data */
  ck_assert_int_ne(cifti_read_mem(buf, n - 4, "short.dconn.nii", &c, err, sizeof err), 0);
  ck_assert_msg(strstr(err, "short.dconn.nii: truncated data"), "%s", err);
  /* broken XML */
  uint8_t *bad = malloc(n);
  memcpy(bad, buf, n);
  uint8_t *x = memmem(bad, n, "<Matrix>", 8);
  ck_assert_ptr_nonnull(x);
  memcpy(x, "<Matrix/", 8);
  ck_assert_int_ne(cifti_read_mem(bad, n, "bad.dconn.nii", &c, err, sizeof err), 0);
  ck_assert_msg(strstr(err, "bad.dconn.nii (CIFTI XML):") && strstr(err, "not a well-formed XML"), "%s", err);
  /* an axis whose length disagrees with the header */
  memcpy(bad, buf, n);
  x = memmem(bad, n, "IndexCount=\"6\"", 14);
  ck_assert_ptr_nonnull(x);
  x[12] = '5';
  ck_assert_int_ne(cifti_read_mem(bad, n, "len.dconn.nii", &c, err, sizeof err), 0);
  ck_assert_msg(strstr(err, "len.dconn.nii: CIFTI VoxelIndicesIJK has more than 15 entries"), "%s", err);
  /* no extension */
  memcpy(bad, buf, n);
  bad[540] = 0;
  ck_assert_int_ne(cifti_read_mem(bad, n, "plain.nii", &c, err, sizeof err), 0);
  ck_assert_msg(strstr(err, "plain.nii: no NIfTI header extension"), "%s", err);
  free(bad);
}
END_TEST

int main(void) {
  Suite *s = suite_create("cifti");
  TCase *tc = tcase_create("cifti");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, conformance_with_nibabel);
  tcase_add_test(tc, writer_read_back_by_nibabel);
  tcase_add_test(tc, malformed_files_are_errors);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int nf = srunner_ntests_failed(sr);
  srunner_free(sr);
  return nf ? 1 : 0;
}
