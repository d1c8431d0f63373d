/*
 * test_surface_pipelines.c — encoding and info_content end to end on surface
 * and parcel data, through the CLI with the repository's pipeline files:
 *
 *  - examples/surface_demo/make_demo.py writes GIFTI hemisphere pairs
 *    (42-vertex icospheres, fsaverage's ico1 size), CIFTI-2 .dtseries runs
 *    (both cortices with a medial wall left out, plus thalamus voxels), a
 *    .dlabel.nii atlas and word-event features;
 *  - `myelin run --check-messages pipelines/encoding_surface.yaml` (GIFTI ->
 *    encoding -> gifti_sink; .dtseries -> encoding -> .dscalar.nii;
 *    .dtseries -> parcellate -> encoding -> .pscalar.nii) and
 *    pipelines/info_content_surface.yaml (GIFTI and parcels -> info_content
 *    -> gifti_sink / cifti_sink writing `regional` with `field`);
 *  - examples/surface_demo/check_demo.py recomputes every map from the input
 *    files (sklearn's RidgeCV pipeline; numpy's KDE surprisal) and checks the
 *    geometry: 42 vertices and the hemisphere per GIFTI file, the .dtseries'
 *    brain-model axis, the .dlabel's parcels with their vertices and voxels.
 *
 * And the sinks' `field` and {layer}: a map's other tensor is written when
 * asked, an unknown field is named, and maps per layer get their own files.
 */
#include <math.h>

#include "myelin/harness.h"
#include "myelin/myelin.h"
#include "testutil.h"

static const char *src(void) { return mt_env("MYELIN_SOURCE_DIR", "."); }

static void sh(const char *cmd, const char *what) {
  char *o = NULL;
  int rc = mt_run(cmd, &o);
  ck_assert_msg(rc == 0, "%s failed (%d):\n%s", what, rc, o);
  free(o);
}

/* make_demo.py into a fresh folder; NULL (skip recorded) without the CLI or Python. */
static char *demo(const char *modules) {
  const char *bin = mt_env("MYELIN_BIN", "myelin");
  if (access(bin, X_OK) != 0) {
    mt_skip_note("the CLI %s is not built", bin);
    return NULL;
  }
  if (!mt_python_or_skip(modules, "the surface demo and its references")) return NULL;
  char *d = mt_tmpdir();
  sh(mt_strf("%s %s/examples/surface_demo/make_demo.py %s/data", mt_env("MYELIN_PYTHON", "/usr/bin/python3"),
             src(), d),
     "make_demo.py");
  return d;
}

/* Runs pipelines/NAME.yaml on the demo in d (DATA, OUT as its header says),
 * then check_demo.py WHAT. */
static void run_and_check(const char *d, const char *name, const char *what) {
  sh(mt_strf("cd %s && DATA=%s/data OUT=%s/out %s run --quiet --check-messages %s/pipelines/%s.yaml", d, d, d,
             mt_env("MYELIN_BIN", "myelin"), src(), name),
     name);
  char *o = NULL;
  int rc = mt_run(mt_strf("%s %s/examples/surface_demo/check_demo.py %s/data %s/out %s",
                          mt_env("MYELIN_PYTHON", "/usr/bin/python3"), src(), d, d, what),
                  &o);
  ck_assert_msg(rc == 0, "check_demo.py %s: %s", what, o);
  ck_assert_msg(strstr(o, "geometry kept"), "%s", o);
  free(o);
}

START_TEST(encoding_on_surfaces_and_parcels) {
  char *d = demo("numpy nibabel msgpack sklearn");
  if (!d) return;
  run_and_check(d, "encoding_surface", "encoding");
}
END_TEST

START_TEST(info_content_on_surfaces_and_parcels) {
  char *d = demo("numpy nibabel msgpack");
  if (!d) return;
  run_and_check(d, "info_content_surface", "info_content");
}
END_TEST

/* A map {stat: r, layer, data [3], alpha [3]} on vertices 0, 2, 4 of a
 * 5-vertex left hemisphere. */
static myelin_msg *layer_map(int layer) {
  myelin_builder *b = myelin_builder_new("map");
  myelin_build_str(b, "stat", "r");
  myelin_build_str(b, "subject", "01");
  myelin_build_int(b, "layer", layer);
  int64_t n[1] = {3};
  double r[3] = {0.1 * layer, 0.2, 0.3}, alpha[3] = {10, 100, 1000};
  myelin_build_tensor_copy(b, "data", MYELIN_F8, 1, n, r);
  myelin_build_tensor_copy(b, "alpha", MYELIN_F8, 1, n, alpha);
  myelin_build_map_begin(b, "geometry");
  myelin_build_str(b, "model", "surface");
  myelin_build_array_begin(b, "structures");
  myelin_build_map_begin(b, NULL);
  myelin_build_str(b, "name", "CIFTI_STRUCTURE_CORTEX_LEFT");
  myelin_build_str(b, "type", "surface");
  myelin_build_str(b, "hemi", "L");
  myelin_build_int(b, "offset", 0);
  myelin_build_int(b, "count", 3);
  myelin_build_int(b, "nvert", 5);
  uint32_t v[3] = {0, 2, 4};
  myelin_build_tensor_copy(b, "vertices", MYELIN_U4, 1, n, v);
  myelin_build_map_end(b);
  myelin_build_array_end(b);
  myelin_build_map_end(b);
  myelin_msg *m = myelin_builder_finish(b);
  ck_assert_ptr_nonnull(m);
  return m;
}

static myelin_harness *sink(const char *plugin, const char *params) {
  char err[1024];
  myelin_harness *h = myelin_harness_new(plugin, params, err, sizeof err);
  ck_assert_msg(h != NULL, "%s: %s", plugin, err);
  return h;
}

START_TEST(sinks_field_and_layer) {
  if (!mt_python_or_skip("numpy nibabel", "nibabel reads the written maps")) return;
  char *d = mt_tmpdir();
  const char *py = mt_env("MYELIN_PYTHON", "/usr/bin/python3");
  /* one file per layer ({layer}), the `alpha` tensor with field */
  myelin_harness *g = sink("gifti_sink", mt_strf("{path: '%s/a_layer-{layer}.func.gii', field: alpha}", d));
  myelin_harness *c = sink("cifti_sink", mt_strf("{path: '%s/r_layer-{layer}.dscalar.nii'}", d));
  for (int layer = 4; layer <= 8; layer += 4) {
    ck_assert_msg(myelin_harness_push(g, NULL, layer_map(layer)) == 0, "%s", myelin_harness_error(g));
    ck_assert_msg(myelin_harness_push(c, NULL, layer_map(layer)) == 0, "%s", myelin_harness_error(c));
  }
  myelin_harness_free(g), myelin_harness_free(c);
  sh(mt_strf("%s -c \"\nimport nibabel as nb, numpy as np\n"
             "for l in (4, 8):\n"
             "    g = nb.load('%s/a_layer-%%d.func.gii' %% l)\n"
             "    assert g.darrays[0].data.tolist() == [10, 0, 100, 0, 1000], g.darrays[0].data\n"
             "    assert g.darrays[0].meta['Name'] == 'r alpha' and g.meta['AnatomicalStructurePrimary'] == "
             "'CortexLeft'\n"
             "    c = nb.load('%s/r_layer-%%d.dscalar.nii' %% l)\n"
             "    assert np.allclose(c.get_fdata()[0], [0.1 * l, 0.2, 0.3]), c.get_fdata()\n"
             "    assert list(c.header.get_axis(0).name) == ['r']\n"
             "    assert c.header.get_axis(1).vertex.tolist() == [0, 2, 4]\n\"",
             py, d, d),
     "nibabel check of the field / layer files");
  /* an absent field is named; a field that does not fit the geometry says which was written */
  g = sink("gifti_sink", mt_strf("{path: '%s/x.func.gii', field: regional}", d));
  ck_assert_int_ne(myelin_harness_push(g, NULL, layer_map(1)), 0);
  ck_assert_msg(
      strstr(myelin_harness_error(g), "map message without a `regional` tensor (the `field` param)"), "%s",
      myelin_harness_error(g));
  myelin_harness_free(g);
}
END_TEST

int main(void) {
  Suite *s = suite_create("surface_pipelines");
  TCase *tc = tcase_create("surface_pipelines");
  tcase_set_timeout(tc, 240);
  tcase_add_test(tc, encoding_on_surfaces_and_parcels);
  tcase_add_test(tc, info_content_on_surfaces_and_parcels);
  tcase_add_test(tc, sinks_field_and_layer);
  suite_add_tcase(s, tc);
  return mt_run_suite(s);
}
