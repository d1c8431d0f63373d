/*
 * test_nifti_sink.c — geometry round trip: fmri_source → nifti_sink → NIfTI
 * read back (with nifti.c, and with nibabel when Debian's python3 has it),
 * maps on voxel and atlas geometry, volume collection, path templates, fill,
 * and the same through `myelin run` on a pipeline file.
 */
#include <math.h>

#include "myelin/harness.h"
#include "myelin/myelin.h"
#include "nifti.h"
#include "testutil.h"

#define NB_DATA "/usr/lib/python3/dist-packages/nibabel/tests/data"

static myelin_harness *harness(const char *plugin, const char *params) {
  char err[1024];
  myelin_harness *h = myelin_harness_new(plugin, params, err, sizeof err);
  ck_assert_msg(h != NULL, "%s: %s", plugin, err);
  return h;
}

static float *read_back(const char *path, nifti_header *h) {
  char err[512];
  nifti_reader r;
  ck_assert_msg(nifti_open_file(&r, path, err, sizeof err) == 0, "%s", err);
  *h = r.h;
  float *d = malloc(r.h.nvox * r.h.nvols * sizeof *d);
  ck_assert_int_eq(nifti_read_volumes(&r, r.h.nvols, NULL, r.h.nvox, d, r.h.nvox, err, sizeof err), 0);
  nifti_close(&r);
  return d;
}

START_TEST(run_round_trip_through_the_grid) {
  MT_NEED_FILE(NB_DATA "/functional.nii", "python3-nibabel's test data");
  char *dir = mt_tmpdir();
  myelin_harness *src = harness("fmri_source", "{path: " NB_DATA "/functional.nii, mask: auto}");
  ck_assert_int_eq(myelin_harness_start(src), 0);
  myelin_harness_eos(src);
  myelin_msg *run = myelin_harness_output(src, "out", 0);
  ck_assert_ptr_nonnull(run);
  char *params = mt_strf("{path: '%s/{subject}_run{run}.nii.gz'}", dir);
  myelin_harness *sink = harness("nifti_sink", params);
  ck_assert_int_eq(myelin_harness_push(sink, NULL, myelin_msg_ref(run)), 0);
  ck_assert_int_eq(myelin_harness_eos(sink), 0);
  char *out = mt_strf("%s/functional_run1.nii.gz", dir);
  nifti_header h;
  float *img = read_back(out, &h);
  ck_assert_int_eq(h.dim[1], 17);
  ck_assert_int_eq(h.dim[3], 3);
  ck_assert_int_eq(h.nvols, 20);
  ck_assert_double_eq_tol(nifti_tr_seconds(&h), 2.0, 1e-6);
  /* every kept voxel carries its values; the others are 0 */
  myelin_tensor d, vx;
  ck_assert_int_eq(myelin_msg_tensor(run, "data", &d), 0);
  ck_assert_int_eq(myelin_obj_tensor(myelin_obj_get(myelin_msg_get(run, "geometry"), "voxels"), &vx), 0);
  size_t V = (size_t)d.shape[1], nvox = h.nvox;
  int64_t dims[3] = {17, 21, 3};
  uint32_t *f = malloc(V * sizeof *f);
  nifti_corder_to_forder(vx.data, V, dims, f);
  size_t nonzero = 0;
  for (size_t i = 0; i < nvox * 20; i++)
    nonzero += img[i] != 0;
  ck_assert_uint_eq(nonzero, V * 20);
  for (size_t t = 0; t < 20; t++)
    for (size_t k = 0; k < V; k += 17)
      ck_assert_float_eq(img[t * nvox + f[k]], ((const float *)d.data)[t * V + k]);
  /* the affine is the source's */
  double a[4][4];
  nifti_affine(&h, a);
  ck_assert_double_eq(a[0][0], -4.0);
  ck_assert_double_eq(a[0][3], 32.0);
  ck_assert_double_eq(a[1][3], -40.0);
  ck_assert_double_eq(a[2][2], 8.0);
  if (mt_python_or_skip("nibabel numpy", "the Python reference check")) {
    char *cmd = mt_strf("%s -c \"import nibabel as nb, numpy as np; a = nb.load('%s'); b = nb.load('" NB_DATA
                        "/functional.nii'); assert np.allclose(a.affine, b.affine), a.affine; "
                        "x = a.get_fdata(); y = b.get_fdata(dtype=np.float32); m = x[..., 0] != 0; "
                        "assert m.sum() == %zu; assert np.allclose(x[m], y[m], rtol=1e-6)\"",
                        mt_env("MYELIN_PYTHON", "/usr/bin/python3"), out, V);
    char *o = NULL;
    ck_assert_msg(mt_run(cmd, &o) == 0, "nibabel check failed: %s", o);
    free(o);
    free(cmd);
  }
  free(f);
  free(img);
  free(out);
  myelin_harness_free(sink);
  myelin_harness_free(src);
  free(params);
  free(dir);
}
END_TEST

/* A hand-built map on an atlas: parcel values paint their voxels. */
START_TEST(map_on_atlas_and_voxels) {
  char *dir = mt_tmpdir();
  char *atlas = mt_strf("%s/atlas.nii", dir);
  int64_t dims[4] = {3, 2, 2, 1};
  float lab[12];
  for (int i = 0; i < 12; i++)
    lab[i] = (float)(i % 3 == 0 ? 0 : (i % 3 == 1 ? 5 : 9));
  double aff[16] = {2, 0, 0, -3, 0, 2, 0, -2, 0, 0, 2, -1, 0, 0, 0, 1};
  FILE *fp = fopen(atlas, "wb");
  char err[256];
  ck_assert_int_eq(nifti_write_f32(fp, dims, aff, 0, lab, 0, err, sizeof err), 0);
  fclose(fp);

  myelin_builder *b = myelin_builder_new("map");
  myelin_build_str(b, "stat", "isc");
  int64_t shape[2] = {2, 2}; /* 2 subjects x 2 parcels */
  float v[4] = {0.5f, 0.25f, -1.0f, 3.0f};
  myelin_build_tensor_copy(b, "data", MYELIN_F4, 2, shape, v);
  myelin_build_map_begin(b, "geometry");
  myelin_build_str(b, "atlas", atlas);
  myelin_build_array_begin(b, "labels");
  myelin_build_str(b, NULL, "five");
  myelin_build_str(b, NULL, "nine");
  myelin_build_array_end(b);
  myelin_build_map_end(b);
  myelin_msg *m = myelin_builder_finish(b);
  ck_assert_ptr_nonnull(m);
  char *params = mt_strf("{path: '%s/{stat}_{seq}.nii', fill: nan}", dir);
  myelin_harness *sink = harness("nifti_sink", params);
  ck_assert_int_eq(myelin_harness_push(sink, NULL, m), 0);

  /* a voxel map [V] with 2 voxels on a 3x2x2 grid */
  b = myelin_builder_new("map");
  myelin_build_str(b, "stat", "r");
  int64_t s1[1] = {2};
  float v2[2] = {7.0f, 8.0f};
  myelin_build_tensor_copy(b, "data", MYELIN_F4, 1, s1, v2);
  myelin_build_map_begin(b, "geometry");
  myelin_build_array_begin(b, "dims");
  myelin_build_int(b, NULL, 3);
  myelin_build_int(b, NULL, 2);
  myelin_build_int(b, NULL, 2);
  myelin_build_array_end(b);
  int64_t as[2] = {4, 4};
  myelin_build_tensor_copy(b, "affine", MYELIN_F8, 2, as, aff);
  int64_t vs[1] = {2};
  uint32_t vox[2] = {(uint32_t)nifti_corder(2, 1, 0, 2, 2), (uint32_t)nifti_corder(0, 0, 1, 2, 2)};
  myelin_build_tensor_copy(b, "voxels", MYELIN_U4, 1, vs, vox);
  myelin_build_map_end(b);
  ck_assert_int_eq(myelin_harness_push(sink, NULL, myelin_builder_finish(b)), 0);
  ck_assert_int_eq(myelin_harness_eos(sink), 0);

  nifti_header h;
  char *p0 = mt_strf("%s/isc_0.nii", dir);
  float *img = read_back(p0, &h);
  ck_assert_int_eq(h.nvols, 2);
  for (int r = 0; r < 2; r++)
    for (int i = 0; i < 12; i++) {
      float got = img[r * 12 + i];
      if (lab[i] == 0)
        ck_assert(isnan(got));
      else
        ck_assert_float_eq(got, v[r * 2 + (lab[i] == 5 ? 0 : 1)]);
    }
  double a[4][4];
  nifti_affine(&h, a);
  ck_assert_double_eq_tol(a[0][3], -3.0, 1e-6);
  free(img);
  char *p1 = mt_strf("%s/r_1.nii", dir);
  img = read_back(p1, &h);
  ck_assert_int_eq(h.nvols, 1);
  ck_assert_float_eq(img[nifti_forder(2, 1, 0, 3, 2)], 7.0f);
  ck_assert_float_eq(img[nifti_forder(0, 0, 1, 3, 2)], 8.0f);
  ck_assert(isnan(img[0]));
  free(img);
  myelin_harness_free(sink);
  free(p0);
  free(p1);
  free(params);
  free(atlas);
  free(dir);
}
END_TEST

START_TEST(volumes_collected_per_run) {
  MT_NEED_FILE(NB_DATA "/functional.nii", "python3-nibabel's test data");
  char *dir = mt_tmpdir();
  myelin_harness *src = harness("fmri_source", "{path: " NB_DATA "/functional.nii, emit: volume, trim: 15}");
  ck_assert_int_eq(myelin_harness_start(src), 0);
  ck_assert_uint_eq(myelin_harness_count(src, "out"), 5);
  char *params = mt_strf("{path: '%s/vol_{subject}.nii'}", dir);
  myelin_harness *sink = harness("nifti_sink", params);
  for (size_t i = 0; i < 5; i++)
    ck_assert_int_eq(myelin_harness_push(sink, NULL, myelin_msg_ref(myelin_harness_output(src, "out", i))),
                     0);
  ck_assert_int_eq(myelin_harness_eos(sink), 0);
  char *out = mt_strf("%s/vol_functional.nii", dir);
  nifti_header h;
  float *img = read_back(out, &h);
  ck_assert_int_eq(h.nvols, 5);
  /* volume 4 of the file is TR 19 of the source: nibabel [16, 20, 2, 19] */
  ck_assert_float_eq_tol(img[4 * h.nvox + nifti_forder(16, 20, 2, 17, 21)], 3129.341064453125f, 1e-3);
  free(img);
  free(out);
  myelin_harness_free(sink);
  myelin_harness_free(src);
  free(params);
  free(dir);
}
END_TEST

/* A one-voxel map on a 2x1x1 grid, value v, with `task` set. */
static myelin_msg *voxel_map(const char *task, float v) {
  myelin_builder *b = myelin_builder_new("map");
  myelin_build_str(b, "stat", "isc");
  myelin_build_str(b, "task", task);
  int64_t s1[1] = {1};
  myelin_build_tensor_copy(b, "data", MYELIN_F4, 1, s1, &v);
  myelin_build_map_begin(b, "geometry");
  myelin_build_array_begin(b, "dims");
  myelin_build_int(b, NULL, 2);
  myelin_build_int(b, NULL, 1);
  myelin_build_int(b, NULL, 1);
  myelin_build_array_end(b);
  int64_t as[2] = {4, 4};
  double aff[16] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1};
  myelin_build_tensor_copy(b, "affine", MYELIN_F8, 2, as, aff);
  uint32_t vox = 1;
  myelin_build_tensor_copy(b, "voxels", MYELIN_U4, 1, s1, &vox);
  myelin_build_map_end(b);
  myelin_msg *m = myelin_builder_finish(b);
  ck_assert_ptr_nonnull(m);
  return m;
}

/* Several messages expanding to one path: an error naming both messages,
 * and the first file stays as written (issue 15 item 4). */
START_TEST(same_path_twice_is_an_error) {
  char *dir = mt_tmpdir();
  char *params = mt_strf("{path: '%s/{stat}_{task}.nii.gz'}", dir);
  myelin_harness *sink = harness("nifti_sink", params);
  ck_assert_int_eq(myelin_harness_push(sink, NULL, voxel_map("a", 1.5f)), 0);
  ck_assert_int_eq(myelin_harness_push(sink, NULL, voxel_map("b", 2.5f)), 0);
  ck_assert_int_ne(myelin_harness_push(sink, NULL, voxel_map("a", 9.0f)), 0);
  const char *e = myelin_harness_error(sink);
  ck_assert_msg(strstr(e, "isc_a.nii.gz: written twice (messages 0 and 2)") != NULL, "%s", e);
  myelin_harness_free(sink);
  char *p = mt_strf("%s/isc_a.nii.gz", dir);
  nifti_header h;
  float *img = read_back(p, &h);
  ck_assert_float_eq(img[1], 1.5f);
  free(img);
  free(p);
  free(params);

  /* volume groups too: sub x, then y, then x again */
  params = mt_strf("{path: '%s/vol_{subject}.nii'}", dir);
  sink = harness("nifti_sink", params);
  const char *subs[3] = {"x", "y", "x"};
  int rc = 0;
  for (int i = 0; i < 3 && rc == 0; i++) {
    myelin_builder *b = myelin_builder_new("volume");
    myelin_build_str(b, "subject", subs[i]);
    myelin_msg *m = voxel_map("t", (float)i);
    myelin_tensor d;
    ck_assert_int_eq(myelin_msg_tensor(m, "data", &d), 0);
    myelin_build_tensor_copy(b, "data", MYELIN_F4, 1, d.shape, d.data);
    myelin_build_obj(b, "geometry", myelin_msg_get(m, "geometry"));
    rc = myelin_harness_push(sink, NULL, myelin_builder_finish(b));
    myelin_msg_unref(m);
  }
  if (rc == 0) rc = myelin_harness_eos(sink);
  ck_assert_int_ne(rc, 0);
  e = myelin_harness_error(sink);
  ck_assert_msg(strstr(e, "vol_x.nii: written twice (messages 0 and 2)") != NULL, "%s", e);
  myelin_harness_free(sink);
  free(params);
  free(dir);
}
END_TEST

/* A map on surface vertices (or grayordinates, or CIFTI parcels) has no
 * voxel grid: nifti_sink refuses it naming the sinks that write it
 * (schemas/geometry.md), instead of a puzzling "geometry.dims" error. */
static myelin_msg *surface_map(const char *model) {
  myelin_builder *b = myelin_builder_new("map");
  myelin_build_str(b, "stat", "isc");
  int64_t shape[1] = {4};
  float v[4] = {0.1f, 0.2f, 0.3f, 0.4f};
  uint32_t vert[2] = {0, 1};
  int64_t s2[1] = {2};
  myelin_build_tensor_copy(b, "data", MYELIN_F4, 1, shape, v);
  myelin_build_map_begin(b, "geometry");
  myelin_build_str(b, "model", model);
  myelin_build_array_begin(b, "structures");
  for (int h = 0; h < 2; h++) {
    myelin_build_map_begin(b, NULL);
    myelin_build_str(b, "name", h ? "CIFTI_STRUCTURE_CORTEX_RIGHT" : "CIFTI_STRUCTURE_CORTEX_LEFT");
    myelin_build_str(b, "type", "surface");
    myelin_build_int(b, "offset", 2 * h);
    myelin_build_int(b, "count", 2);
    myelin_build_int(b, "nvert", 2);
    myelin_build_tensor_copy(b, "vertices", MYELIN_U4, 1, s2, vert);
    myelin_build_map_end(b);
  }
  myelin_build_array_end(b);
  myelin_build_map_end(b);
  myelin_msg *m = myelin_builder_finish(b);
  ck_assert_ptr_nonnull(m);
  return m;
}

START_TEST(surface_map_is_refused_naming_the_surface_sinks) {
  char *dir = mt_tmpdir();
  char *params = mt_strf("{path: '%s/{stat}.nii.gz'}", dir);
  static const char *const models[3] = {"surface", "grayordinates", "parcels"};
  for (int i = 0; i < 3; i++) {
    myelin_harness *sink = harness("nifti_sink", params);
    ck_assert_int_ne(myelin_harness_push(sink, NULL, surface_map(models[i])), 0);
    const char *e = myelin_harness_error(sink);
    ck_assert_msg(strstr(e, models[i]) && strstr(e, "nifti_sink cannot write it"), "%s", e);
    ck_assert_msg(strstr(e, i == 0 ? "gifti_sink" : "cifti_sink") != NULL, "%s", e);
    myelin_harness_free(sink);
  }
  /* an unknown model is named too */
  myelin_harness *sink = harness("nifti_sink", params);
  ck_assert_int_ne(myelin_harness_push(sink, NULL, surface_map("mesh3d")), 0);
  ck_assert_msg(strstr(myelin_harness_error(sink), "unknown model 'mesh3d'") != NULL, "%s",
                myelin_harness_error(sink));
  myelin_harness_free(sink);
  char *p = mt_strf("%s/isc.nii.gz", dir);
  ck_assert_int_lt(mt_file_size(p), 0); /* nothing written */
  free(p);
  free(params);
  free(dir);
}
END_TEST

START_TEST(pipeline_file_end_to_end) {
  const char *bin = mt_env("MYELIN_BIN", "myelin");
  if (access(bin, X_OK) != 0) MT_SKIP("the CLI %s is not built", bin);
  MT_NEED_FILE(NB_DATA "/example4d.nii.gz", "python3-nibabel's test data");
  char *dir = mt_tmpdir();
  char *yaml = mt_strf("%s/p.yaml", dir);
  char *text =
      mt_strf("name: fmri-roundtrip\nstages:\n"
              "  - {id: src, plugin: fmri_source, params: {path: " NB_DATA "/example4d.nii.gz, mask: auto}}\n"
              "  - {id: out, plugin: nifti_sink, inputs: [src], params: {path: '%s/out/{subject}.nii.gz'}}\n",
              dir);
  mt_write(yaml, text);
  char *cmd = mt_strf("%s run %s", bin, yaml);
  char *o = NULL;
  ck_assert_msg(mt_run(cmd, &o) == 0, "myelin run failed: %s", o);
  free(o);
  char *out = mt_strf("%s/out/example4d.nii.gz", dir);
  ck_assert_int_gt(mt_file_size(out), 0);
  if (mt_python_or_skip("nibabel numpy", "the Python reference check")) {
    char *py = mt_strf(
        "%s -c \"import nibabel as nb, numpy as np; a = nb.load('%s'); b = nb.load('" NB_DATA
        "/example4d.nii.gz'); assert np.allclose(a.affine, b.affine, atol=1e-5), (a.affine, b.affine); "
        "assert a.shape == b.shape; x = a.get_fdata(); y = b.get_fdata(); m = x.std(-1) > 0; "
        "assert np.allclose(x[m], y[m])\"",
        mt_env("MYELIN_PYTHON", "/usr/bin/python3"), out);
    ck_assert_msg(mt_run(py, &o) == 0, "nibabel check failed: %s", o);
    free(o);
    free(py);
  }
  /* a bad path is reported with the param, before anything runs */
  char *bad = mt_strf("%s/bad.yaml", dir);
  mt_write(bad, "name: bad\nstages:\n  - {id: src, plugin: fmri_source, params: {path: x.nii}}\n"
                "  - {id: out, plugin: nifti_sink, inputs: [src], params: {path: out.png}}\n");
  free(cmd);
  cmd = mt_strf("%s validate %s", bin, bad);
  ck_assert_int_eq(mt_run(cmd, &o), 2);
  ck_assert_msg(strstr(o, ".nii") != NULL, "%s", o);
  free(o);
  free(bad);
  free(out);
  free(cmd);
  free(text);
  free(yaml);
  free(dir);
}
END_TEST

int main(void) {
  Suite *s = suite_create("nifti_sink");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, run_round_trip_through_the_grid);
  tcase_add_test(tc, map_on_atlas_and_voxels);
  tcase_add_test(tc, volumes_collected_per_run);
  tcase_add_test(tc, same_path_twice_is_an_error);
  tcase_add_test(tc, surface_map_is_refused_naming_the_surface_sinks);
  tcase_add_test(tc, pipeline_file_end_to_end);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
