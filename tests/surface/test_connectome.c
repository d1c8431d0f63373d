/*
 * test_connectome.c — connectome_source: MATLAB .mat v5 matches
 * scipy.io.loadmat, v7.3 (written here with libmatio) matches h5py, and
 * .npy, .csv and nibabel-written .pconn.nii give the same matrix as numpy /
 * nibabel, bit for bit.
 */
#include <matio.h>

#include "myelin/harness.h"
#include "myelin/myelin.h"
#include "myelin/npy.h"
#include "testutil.h"

static const double *load(const char *path, const char *extra, size_t *n, myelin_harness **keep) {
  char err[1024];
  myelin_harness *h =
      myelin_harness_new("connectome_source", mt_strf("{path: '%s'%s}", path, extra), err, sizeof err);
  ck_assert_msg(h != NULL, "%s", err);
  ck_assert_msg(myelin_harness_start(h) == 0, "%s", myelin_harness_error(h));
  myelin_msg *m = myelin_harness_output(h, "out", 0);
  ck_assert_ptr_nonnull(m);
  myelin_tensor t;
  ck_assert_int_eq(myelin_msg_tensor(m, "data", &t), 0);
  ck_assert_int_eq(t.dtype, MYELIN_F8);
  ck_assert_int_eq(t.shape[0], t.shape[1]);
  *n = (size_t)t.shape[0];
  *keep = h;
  return t.data;
}

static void expect_same(const double *got, size_t n, const char *npy) {
  myelin_array ref;
  char err[512];
  ck_assert_msg(myelin_npy_read(npy, &ref, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(ref.dtype, MYELIN_F8);
  ck_assert_uint_eq(ref.count, n * n);
  ck_assert_msg(memcmp(ref.data, got, n * n * sizeof(double)) == 0, "%s: matrix differs", npy);
  myelin_array_free(&ref);
}

START_TEST(formats_match_python) {
  MT_NEED_PYTHON("nibabel numpy scipy h5py", "the Python reference readers");
  const char *py = mt_env("MYELIN_PYTHON", "/usr/bin/python3");
  char *dir = mt_tmpdir(), *o = NULL;
  /* v7.3 with libmatio (column-major 4 x 4, A(i, j) = 10 i + j + 0.5) */
  char *m73 = mt_strf("%s/c73.mat", dir);
  mat_t *mat = Mat_CreateVer(m73, NULL, MAT_FT_MAT73);
  ck_assert_ptr_nonnull(mat);
  double a[16];
  for (int j = 0; j < 4; j++)
    for (int i = 0; i < 4; i++)
      a[i + 4 * j] = 10.0 * i + j + 0.5;
  size_t dims[2] = {4, 4};
  matvar_t *v = Mat_VarCreate("C", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, dims, a, 0);
  ck_assert_int_eq(Mat_VarWrite(mat, v, MAT_COMPRESSION_NONE), 0);
  Mat_VarFree(v);
  Mat_Close(mat);
  ck_assert_msg(
      mt_run(
          mt_strf(
              "%s -c \"\nimport numpy as np, scipy.io, h5py, nibabel as nb, sys\nd = '%s'\n"
              "rng = np.random.default_rng(1)\nW = rng.normal(size=(6, 6))\n"
              "scipy.io.savemat(d + '/c5.mat', {'rect': np.ones((3, 2)), 'W': W, 'note': 'text'})\n"
              "np.save(d + '/want5.npy', np.ascontiguousarray(scipy.io.loadmat(d + '/c5.mat')['W']))\n"
              "np.save(d + '/want73.npy', np.ascontiguousarray(h5py.File(d + '/c73.mat', 'r')['C'][()].T))\n"
              "np.save(d + '/c.npy', W.astype(np.float32)); np.save(d + '/wantnpy.npy', "
              "W.astype(np.float32).astype(np.float64))\n"
              "np.savetxt(d + '/c.csv', W, delimiter=',', header='a,b,c,d,e,f', comments='', fmt='%%.17g')\n"
              "np.save(d + '/wantcsv.npy', np.loadtxt(d + '/c.csv', delimiter=',', skiprows=1))\n\"",
              py, dir),
          &o) == 0,
      "python reference failed: %s", o);
  free(o);
  myelin_harness *h;
  size_t n;
  const double *x = load(mt_strf("%s/c5.mat", dir), "", &n, &h); /* skips 'rect' (not square) */
  ck_assert_uint_eq(n, 6);
  expect_same(x, n, mt_strf("%s/want5.npy", dir));
  myelin_harness_free(h);
  x = load(m73, "", &n, &h);
  expect_same(x, n, mt_strf("%s/want73.npy", dir));
  ck_assert_double_eq(x[1 * 4 + 2], 12.5); /* A(2, 3) in MATLAB terms */
  myelin_harness_free(h);
  x = load(mt_strf("%s/c5.mat", dir), ", variable: W", &n, &h);
  expect_same(x, n, mt_strf("%s/want5.npy", dir));
  myelin_harness_free(h);
  x = load(mt_strf("%s/c.npy", dir), "", &n, &h);
  expect_same(x, n, mt_strf("%s/wantnpy.npy", dir));
  myelin_harness_free(h);
  x = load(mt_strf("%s/c.csv", dir), "", &n, &h);
  expect_same(x, n, mt_strf("%s/wantcsv.npy", dir));
  myelin_harness_free(h);
  /* a .pconn.nii written by nibabel: values and parcel names */
  ck_assert_msg(
      mt_run(mt_strf("%s %s/tests/surface/cifti_ref.py %s", py, mt_env("MYELIN_SOURCE_DIR", "."), dir), &o) ==
          0,
      "%s", o);
  free(o);
  ck_assert_msg(mt_run(mt_strf("%s -c \"import numpy as np, nibabel as nb; d = '%s'; "
                               "np.save(d + '/wantp.npy', np.ascontiguousarray(nb.load(d + "
                               "'/x.pconn.nii').get_fdata(dtype=np.float32)"
                               ".astype(np.float64)))\"",
                               py, dir),
                       &o) == 0,
                "%s", o);
  free(o);
  x = load(mt_strf("%s/x.pconn.nii", dir), "", &n, &h);
  expect_same(x, n, mt_strf("%s/wantp.npy", dir));
  myelin_obj labels = myelin_msg_get(myelin_harness_output(h, "out", 0), "labels");
  ck_assert_uint_eq(myelin_obj_len(labels), 4);
  ck_assert(myelin_obj_str_eq(myelin_obj_at(labels, 0), "V1_L"));
  myelin_harness_free(h);
  /* errors name the file */
  mt_write(mt_strf("%s/bad.csv", dir), "1,2\n3,x\n");
  char err[1024];
  h = myelin_harness_new("connectome_source", mt_strf("{path: '%s/bad.csv'}", dir), err, sizeof err);
  ck_assert_int_ne(myelin_harness_start(h), 0);
  ck_assert_msg(strstr(myelin_harness_error(h), "bad.csv:2: field 2 is not a number"), "%s",
                myelin_harness_error(h));
  myelin_harness_free(h);
}
END_TEST

int main(void) {
  Suite *s = suite_create("connectome");
  TCase *tc = tcase_create("connectome");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, formats_match_python);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int nf = srunner_ntests_failed(sr);
  srunner_free(sr);
  return nf ? 1 : 0;
}
