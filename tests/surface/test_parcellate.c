/*
 * test_parcellate.c — the parcellate stage: parcel means match numpy for a
 * CIFTI .dtseries with a .dlabel atlas (nibabel writes both) and for a NIfTI
 * run with a NIfTI atlas; a GIFTI hemisphere pair with per-hemisphere label
 * files matches means computed by hand. Names come from the label tables;
 * the output geometry goes back through cifti_sink / nifti_sink.
 */
#include <math.h>

#include "gifti.h"
#include "myelin/harness.h"
#include "myelin/myelin.h"
#include "myelin/npy.h"
#include "nifti.h"
#include "testutil.h"

static myelin_harness *harness(const char *plugin, const char *params) {
  char err[1024];
  myelin_harness *h = myelin_harness_new(plugin, params, err, sizeof err);
  ck_assert_msg(h != NULL, "%s: %s", plugin, err);
  return h;
}

/* fmri_source(src_params) -> parcellate(params): the first output run. */
static myelin_msg *parcellate(const char *src_params, const char *params, myelin_harness **keep) {
  myelin_harness *src = harness("fmri_source", src_params);
  ck_assert_msg(myelin_harness_start(src) == 0, "%s", myelin_harness_error(src));
  myelin_harness_eos(src);
  myelin_harness *pc = harness("parcellate", params);
  ck_assert_msg(myelin_harness_push(pc, NULL, myelin_msg_ref(myelin_harness_output(src, "out", 0))) == 0,
                "%s", myelin_harness_error(pc));
  myelin_harness_eos(pc);
  myelin_harness_free(src);
  *keep = pc;
  return myelin_harness_output(pc, "out", 0);
}

static void expect_npy(const myelin_msg *m, const char *npy) {
  myelin_tensor d;
  myelin_array ref;
  char err[512];
  ck_assert_int_eq(myelin_msg_tensor(m, "data", &d), 0);
  ck_assert_msg(myelin_npy_read(npy, &ref, err, sizeof err) == 0, "%s", err);
  ck_assert_msg(d.shape[0] == ref.shape[0] && d.shape[1] == ref.shape[1],
                "[%lld, %lld] vs numpy [%lld, %lld]", (long long)d.shape[0], (long long)d.shape[1],
                (long long)ref.shape[0], (long long)ref.shape[1]);
  const float *a = d.data, *b = ref.data;
  for (size_t i = 0; i < ref.count; i++)
    ck_assert_msg(fabsf(a[i] - b[i]) <= 1e-6f * (1 + fabsf(b[i])), "element %zu: %.9g, numpy %.9g", i, a[i],
                  b[i]);
  myelin_array_free(&ref);
}

START_TEST(dlabel_and_nifti_atlas_match_numpy) {
  MT_NEED_PYTHON("nibabel numpy", "parcel means by numpy");
  const char *py = mt_env("MYELIN_PYTHON", "/usr/bin/python3");
  char *dir = mt_tmpdir(), *o = NULL;
  ck_assert_msg(
      mt_run(mt_strf("%s %s/tests/surface/cifti_ref.py %s", py, mt_env("MYELIN_SOURCE_DIR", "."), dir), &o) ==
          0,
      "%s", o);
  free(o);
  /* numpy: the means of the .dtseries over the .dlabel's map 1, and of
   * functional.nii over an atlas of x // 6 + 1 (labels 1..3) */
  char *nb_func = "/usr/lib/python3/dist-packages/nibabel/tests/data/functional.nii";
  MT_NEED_FILE(nb_func, "python3-nibabel's test data");
  char *cmd = mt_strf("%s -c \"\nimport nibabel as nb, numpy as np\n"
                      "x = nb.load('%s/x.dtseries.nii').get_fdata(dtype=np.float32)\n"
                      "lab = nb.load('%s/x.dlabel.nii'); k = lab.get_fdata()[1].round().astype(int)\n"
                      "keys = sorted(set(k[k > 0]))\n"
                      "np.save('%s/want_d.npy', np.stack([x[:, k == q].astype(np.float64).mean(1) for q in "
                      "keys], 1).astype(np.float32))\n"
                      "names = [lab.header.get_axis(0).label[1][q][0] for q in keys]\nopen('%s/names.txt', "
                      "'w').write(' '.join(names))\n"
                      "f = nb.load('%s'); a = np.zeros(f.shape[:3], np.float32)\n"
                      "for i in range(f.shape[0]): a[i] = i // 6 + 1\n"
                      "nb.save(nb.Nifti1Image(a, f.affine), '%s/atlas.nii.gz')\n"
                      "y = f.get_fdata(dtype=np.float32).reshape(-1, f.shape[3]).T\n"
                      "np.save('%s/want_v.npy', np.stack([y[:, a.ravel() == "
                      "q].astype(np.float64).mean(1) for q in (1, 2, 3)], "
                      "1).astype(np.float32))\n\"",
                      py, dir, dir, dir, dir, nb_func, dir, dir);
  ck_assert_msg(mt_run(cmd, &o) == 0, "numpy reference failed: %s", o);
  free(o);
  myelin_harness *h;
  myelin_msg *m = parcellate(mt_strf("{path: %s/x.dtseries.nii}", dir),
                             mt_strf("{atlas: [%s/x.dlabel.nii], map: 1}", dir), &h);
  ck_assert_ptr_nonnull(m);
  expect_npy(m, mt_strf("%s/want_d.npy", dir));
  /* names from the label table, geometry that cifti_sink writes */
  char want[256] = "", got[256] = "";
  FILE *f = fopen(mt_strf("%s/names.txt", dir), "r");
  ck_assert_ptr_nonnull(fgets(want, sizeof want, f));
  fclose(f);
  myelin_obj labels = myelin_msg_get(m, "labels");
  for (size_t i = 0; i < myelin_obj_len(labels); i++) {
    char nm[64];
    myelin_obj_str_copy(myelin_obj_at(labels, i), nm, sizeof nm);
    snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s", i ? " " : "", nm);
  }
  ck_assert_str_eq(got, want);
  ck_assert(myelin_obj_str_eq(myelin_obj_get(myelin_msg_get(m, "geometry"), "model"), "parcels"));
  myelin_harness *sink = harness("cifti_sink", mt_strf("{path: '%s/p.pscalar.nii'}", dir));
  ck_assert_msg(myelin_harness_push(sink, NULL, myelin_msg_ref(m)) == 0, "%s", myelin_harness_error(sink));
  myelin_harness_eos(sink);
  myelin_harness_free(sink);
  ck_assert_msg(
      mt_run(
          mt_strf("%s -c \"import nibabel as nb; p = nb.load('%s/p.pscalar.nii'); ax = p.header.get_axis(1); "
                  "assert list(ax.name) == '%s'.split(), ax.name; assert p.shape[0] == 7\"",
                  py, dir, want),
          &o) == 0,
      "pscalar check failed: %s", o);
  free(o);
  myelin_harness_free(h);
  /* a NIfTI run and atlas: the atlas geometry nifti_sink paints back */
  m = parcellate(mt_strf("{path: %s}", nb_func), mt_strf("{atlas: [%s/atlas.nii.gz]}", dir), &h);
  expect_npy(m, mt_strf("%s/want_v.npy", dir));
  myelin_obj g = myelin_msg_get(m, "geometry");
  ck_assert_msg(myelin_obj_str_eq(myelin_obj_get(g, "atlas"), mt_strf("%s/atlas.nii.gz", dir)), "atlas path");
  myelin_harness_free(h);
}
END_TEST

/* A GIFTI pair with one label file per hemisphere: key = 1 + v % 3 on the
 * left, 4 (every vertex) on the right; means by hand. */
START_TEST(gifti_label_pair) {
  char *dir = mt_tmpdir();
  enum { NV = 9, T = 4 };
  char err[256];
  for (int h = 0; h < 2; h++) {
    float rows[T * NV], keys[NV];
    for (int t = 0; t < T; t++)
      for (int v = 0; v < NV; v++)
        rows[t * NV + v] = (float)(100 * h + 10 * v + t);
    for (int v = 0; v < NV; v++)
      keys[v] = h ? 4.0f : (float)(1 + v % 3);
    const char *st = h ? "CIFTI_STRUCTURE_CORTEX_RIGHT" : "CIFTI_STRUCTURE_CORTEX_LEFT";
    FILE *fp = fopen(mt_strf("%s/sub-01_task-a_hemi-%c_bold.func.gii", dir, h ? 'R' : 'L'), "wb");
    ck_assert_int_eq(
        gifti_write_f32(fp, rows, T, NV, GIFTI_INTENT_TIME_SERIES, st, NULL, NULL, err, sizeof err), 0);
    fclose(fp);
    fp = fopen(mt_strf("%s/atlas_hemi-%c.label.gii", dir, h ? 'R' : 'L'), "wb");
    ck_assert_int_eq(gifti_write_f32(fp, keys, 1, NV, GIFTI_INTENT_LABEL, st, NULL, NULL, err, sizeof err),
                     0);
    fclose(fp);
  }
  myelin_harness *h;
  myelin_msg *m =
      parcellate(mt_strf("{path: %s, tr: 1}", dir),
                 mt_strf("{atlas: [%s/atlas_hemi-L.label.gii, %s/atlas_hemi-R.label.gii]}", dir, dir), &h);
  myelin_tensor d;
  ck_assert_int_eq(myelin_msg_tensor(m, "data", &d), 0);
  ck_assert_int_eq(d.shape[1], 4);
  const float *x = d.data;
  for (int t = 0; t < T; t++) {
    for (int k = 0; k < 3; k++) /* vertices k, k+3, k+6: mean 10 (k + 3) + t */
      ck_assert_float_eq(x[t * 4 + k], (float)(10 * (k + 3) + t));
    ck_assert_float_eq(x[t * 4 + 3], (float)(100 + 40 + t)); /* right: mean of 10 v, v = 0..8 */
  }
  myelin_harness_free(h);
}
END_TEST

int main(void) {
  Suite *s = suite_create("parcellate");
  TCase *tc = tcase_create("parcellate");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, dlabel_and_nifti_atlas_match_numpy);
  tcase_add_test(tc, gifti_label_pair);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int nf = srunner_ntests_failed(sr);
  srunner_free(sr);
  return nf ? 1 : 0;
}
