/*
 * test_surface_io.c — surface runs end to end: fmri_source reading GIFTI
 * (single files, BIDS hemisphere pairs, sidecar TR, auto mask) and CIFTI-2
 * (.dtseries, .ptseries), gifti_sink and cifti_sink writing maps back, read
 * back by nibabel.
 *
 * Fixtures are written with gifti.c's writer (its output is checked against
 * nibabel in test_gifti.c). Every value encodes where it came from,
 *   val(sub, hemi, v, t) = 1000 sub + 100 hemi + v + 0.25 t   (hemi 0 = L, 1 = R),
 * so each check computes the expected number by hand.
 */
#include <math.h>

#include "cifti.h"
#include "gifti.h"
#include "myelin/npy.h"
#include "myelin/harness.h"
#include "myelin/myelin.h"
#include "testutil.h"

#define NL 30
#define NR 40
#define NT 6

static float val(int sub, int hemi, size_t v, size_t t) {
  return (float)(1000.0 * sub + 100.0 * hemi + (double)v + 0.25 * (double)t);
}

static void write_hemi(const char *path, int sub, int hemi, const char *structure) {
  size_t nv = hemi ? NR : NL;
  float *rows = malloc(NT * nv * sizeof *rows);
  for (size_t t = 0; t < NT; t++)
    for (size_t v = 0; v < nv; v++)
      rows[t * nv + v] = val(sub, hemi, v, t);
  FILE *fp = fopen(path, "wb");
  ck_assert_msg(fp != NULL, "cannot write %s", path);
  char err[256];
  ck_assert_msg(gifti_write_f32(fp, rows, NT, nv, GIFTI_INTENT_TIME_SERIES, structure, NULL, NULL, err,
                                sizeof err) == 0,
                "%s", err);
  fclose(fp);
  free(rows);
}

/* bids/sub-0S/func/sub-0S_task-story_space-fsaverage6_hemi-{L,R}_bold.func.gii,
 * task-story_bold.json (TR 1.5), and files discovery must skip. */
static char *make_bids(int nsub) {
  char *dir = mt_tmpdir();
  for (int sub = 1; sub <= nsub; sub++) {
    char *f = mt_strf("%s/sub-0%d/func", dir, sub);
    ck_assert_int_eq(mt_run(mt_strf("mkdir -p %s", f), NULL), 0);
    for (int h = 0; h < 2; h++)
      write_hemi(
          mt_strf("%s/sub-0%d_task-story_space-fsaverage6_hemi-%c_bold.func.gii", f, sub, h ? 'R' : 'L'), sub,
          h, h ? "CIFTI_STRUCTURE_CORTEX_RIGHT" : "CIFTI_STRUCTURE_CORTEX_LEFT");
    /* a mesh and a label file are not runs */
    mt_write(mt_strf("%s/sub-0%d_hemi-L_pial.surf.gii", f, sub), "<GIFTI/>");
    mt_write(mt_strf("%s/sub-0%d_hemi-L_desc-aparc.label.gii", f, sub), "<GIFTI/>");
  }
  mt_write(mt_strf("%s/task-story_bold.json", dir), "{\"RepetitionTime\": 1.5}");
  return dir;
}

static myelin_harness *harness(const char *plugin, const char *params) {
  char err[1024];
  myelin_harness *h = myelin_harness_new(plugin, params, err, sizeof err);
  ck_assert_msg(h != NULL, "%s: %s", plugin, err);
  return h;
}

static myelin_harness *run_source(const char *params) {
  myelin_harness *h = harness("fmri_source", params);
  ck_assert_msg(myelin_harness_start(h) == 0, "%s", myelin_harness_error(h));
  myelin_harness_eos(h);
  return h;
}

/* Structure i of a message's geometry. */
static myelin_obj structure(const myelin_msg *m, size_t i) {
  myelin_obj g = myelin_msg_get(m, "geometry");
  ck_assert_msg(myelin_obj_str_eq(myelin_obj_get(g, "model"), "surface"), "geometry.model is not surface");
  return myelin_obj_at(myelin_obj_get(g, "structures"), i);
}

static int64_t obj_int(myelin_obj o, const char *key) {
  int64_t v = -1;
  ck_assert_int_eq(myelin_obj_int(myelin_obj_get(o, key), &v), 0);
  return v;
}

START_TEST(bids_hemisphere_pair_is_one_run) {
  char *dir = make_bids(2);
  myelin_harness *h = run_source(mt_strf("{path: %s}", dir));
  ck_assert_uint_eq(myelin_harness_count(h, "out"), 2); /* one run per subject, not per file */
  for (int sub = 1; sub <= 2; sub++) {
    myelin_msg *m = myelin_harness_output(h, "out", (size_t)sub - 1);
    ck_assert_str_eq(myelin_msg_kind(m), "run");
    char s[16];
    myelin_msg_text(m, "subject", s, sizeof s);
    ck_assert_str_eq(s, sub == 1 ? "01" : "02");
    double tr = 0;
    ck_assert_int_eq(myelin_msg_float(m, "tr", &tr), 0);
    ck_assert_double_eq(tr, 1.5); /* the inherited BIDS sidecar */
    myelin_tensor d;
    ck_assert_int_eq(myelin_msg_tensor(m, "data", &d), 0);
    ck_assert_int_eq(d.shape[0], NT);
    ck_assert_int_eq(d.shape[1], NL + NR);
    const float *x = d.data;
    for (size_t t = 0; t < NT; t++)
      for (size_t c = 0; c < NL + NR; c++) {
        int hemi = c >= NL;
        ck_assert_float_eq(x[t * (NL + NR) + c], val(sub, hemi, hemi ? c - NL : c, t));
      }
    for (int i = 0; i < 2; i++) {
      myelin_obj st = structure(m, (size_t)i);
      ck_assert(myelin_obj_str_eq(myelin_obj_get(st, "name"),
                                  i ? "CIFTI_STRUCTURE_CORTEX_RIGHT" : "CIFTI_STRUCTURE_CORTEX_LEFT"));
      ck_assert(myelin_obj_str_eq(myelin_obj_get(st, "hemi"), i ? "R" : "L"));
      ck_assert(myelin_obj_str_eq(myelin_obj_get(st, "type"), "surface"));
      ck_assert_int_eq(obj_int(st, "offset"), i ? NL : 0);
      ck_assert_int_eq(obj_int(st, "count"), i ? NR : NL);
      ck_assert_int_eq(obj_int(st, "nvert"), i ? NR : NL);
      myelin_tensor vx;
      ck_assert_int_eq(myelin_obj_tensor(myelin_obj_get(st, "vertices"), &vx), 0);
      ck_assert_int_eq(vx.dtype, MYELIN_U4);
      for (size_t k = 0; k < vx.count; k++)
        ck_assert_uint_eq(((const uint32_t *)vx.data)[k], k);
    }
  }
  myelin_harness_free(h);
  /* the hemi filter of a glob keeps one hemisphere: a one-structure run */
  h = run_source(mt_strf("{path: '%s/sub-01/func/*hemi-R*.func.gii', trim: 2, emit: volume}", dir));
  ck_assert_uint_eq(myelin_harness_count(h, "out"), NT - 2);
  myelin_msg *m = myelin_harness_output(h, "out", 1);
  ck_assert_str_eq(myelin_msg_kind(m), "volume");
  myelin_tensor d;
  ck_assert_int_eq(myelin_msg_tensor(m, "data", &d), 0);
  ck_assert_int_eq(d.shape[0], NR);
  ck_assert_float_eq(((const float *)d.data)[5], val(1, 1, 5, 3)); /* index 1 after trim 2 = row 3 */
  ck_assert_int_eq(obj_int(structure(m, 0), "nvert"), NR);
  ck_assert_uint_eq(myelin_obj_len(myelin_obj_get(myelin_msg_get(m, "geometry"), "structures")), 1);
  myelin_harness_free(h);
}
END_TEST

/* mask: auto drops constant vertices from the data and from geometry. */
START_TEST(auto_mask_keeps_vertex_indices) {
  char *dir = mt_tmpdir();
  float rows[NT * 5];
  for (size_t t = 0; t < NT; t++)
    for (size_t v = 0; v < 5; v++)
      rows[t * 5 + v] = v == 1 || v == 3 ? 7.0f : (float)(v * 10 + t);
  char *path = mt_strf("%s/x_hemi-L.func.gii", dir);
  FILE *fp = fopen(path, "wb");
  char err[256];
  ck_assert_int_eq(
      gifti_write_f32(fp, rows, NT, 5, GIFTI_INTENT_TIME_SERIES, NULL, NULL, NULL, err, sizeof err), 0);
  fclose(fp);
  myelin_harness *h = run_source(mt_strf("{path: %s, mask: auto, tr: 2}", path));
  myelin_msg *m = myelin_harness_output(h, "out", 0);
  myelin_obj st = structure(m, 0);
  ck_assert(myelin_obj_str_eq(myelin_obj_get(st, "name"), "CIFTI_STRUCTURE_CORTEX_LEFT")); /* from hemi-L */
  ck_assert_int_eq(obj_int(st, "count"), 3);
  ck_assert_int_eq(obj_int(st, "nvert"), 5);
  myelin_tensor vx, d;
  ck_assert_int_eq(myelin_obj_tensor(myelin_obj_get(st, "vertices"), &vx), 0);
  const uint32_t *v = vx.data;
  ck_assert(vx.count == 3 && v[0] == 0 && v[1] == 2 && v[2] == 4);
  ck_assert_int_eq(myelin_msg_tensor(m, "data", &d), 0);
  ck_assert_float_eq(((const float *)d.data)[1 * 3 + 2], 41.0f); /* t 1, vertex 4 */
  myelin_harness_free(h);
}
END_TEST

/* nibabel's own files load as runs: a shape file [V, 1] is one row, and its
 * AnatomicalStructurePrimary names the structure; a mesh is an error. */
START_TEST(nibabel_files_as_runs) {
  const char *data = mt_strf("%s/tests/data/nibabel/gifti", mt_env("MYELIN_SOURCE_DIR", "."));
  myelin_harness *h = run_source(mt_strf("{path: %s/rh.shape.curv.gii}", data));
  myelin_msg *m = myelin_harness_output(h, "out", 0);
  myelin_tensor d;
  ck_assert_int_eq(myelin_msg_tensor(m, "data", &d), 0);
  ck_assert_int_eq(d.shape[0], 1);
  ck_assert_int_eq(d.shape[1], 133764);
  ck_assert(myelin_obj_str_eq(myelin_obj_get(structure(m, 0), "name"), "CIFTI_STRUCTURE_CORTEX_RIGHT"));
  myelin_harness_free(h);
  h = run_source(mt_strf("{path: %s/task.func.gii, tr: 1}", data));
  ck_assert_int_eq(myelin_msg_tensor(myelin_harness_output(h, "out", 0), "data", &d), 0);
  ck_assert_int_eq(d.shape[0], 10);
  ck_assert_int_eq(d.shape[1], 642);
  myelin_harness_free(h);
  h = harness("fmri_source", mt_strf("{path: %s/ascii.gii}", data));
  ck_assert_int_ne(myelin_harness_start(h), 0);
  ck_assert_msg(
      strstr(myelin_harness_error(h), "ascii.gii: DataArray 0 is a surface mesh (NIFTI_INTENT_POINTSET)"),
      "%s", myelin_harness_error(h));
  myelin_harness_free(h);
}
END_TEST

START_TEST(nifti_mask_on_surface_is_an_error) {
  MT_NEED_FILE("/usr/lib/python3/dist-packages/nibabel/tests/data/anatomical.nii",
               "python3-nibabel's test data");
  char *dir = make_bids(1);
  myelin_harness *h = harness(
      "fmri_source",
      mt_strf("{path: %s, mask: /usr/lib/python3/dist-packages/nibabel/tests/data/anatomical.nii}", dir));
  ck_assert_int_ne(myelin_harness_start(h), 0);
  ck_assert_msg(strstr(myelin_harness_error(h), "a surface (GIFTI) run cannot take the NIfTI mask"), "%s",
                myelin_harness_error(h));
  myelin_harness_free(h);
}
END_TEST

/* run -> gifti_sink: one file per hemisphere; nibabel reads the values bit
 * for bit, the structure, the context and TimeStep. */
START_TEST(sink_writes_one_file_per_hemisphere) {
  char *dir = make_bids(1);
  char *out = mt_tmpdir();
  myelin_harness *src = run_source(mt_strf("{path: %s, mask: auto}", dir));
  myelin_msg *run = myelin_harness_output(src, "out", 0);
  myelin_harness *sink =
      harness("gifti_sink", mt_strf("{path: '%s/{subject}_{task}_hemi-{hemi}.func.gii'}", out));
  ck_assert_msg(myelin_harness_push(sink, NULL, myelin_msg_ref(run)) == 0, "%s", myelin_harness_error(sink));
  ck_assert_int_eq(myelin_harness_eos(sink), 0);
  for (int hemi = 0; hemi < 2; hemi++) {
    char *p = mt_strf("%s/01_story_hemi-%c.func.gii", out, hemi ? 'R' : 'L');
    gifti_image g;
    char err[512];
    ck_assert_msg(gifti_read_file(p, &g, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(g.narrays, NT);
    size_t nv = hemi ? NR : NL;
    for (size_t t = 0; t < NT; t++) {
      ck_assert_int_eq(g.arrays[t].dims[0], (int64_t)nv);
      for (size_t v = 0; v < nv; v++)
        ck_assert_float_eq(((const float *)g.arrays[t].data)[v], val(1, hemi, v, t));
    }
    ck_assert_str_eq(gifti_meta_get(&g.meta, "AnatomicalStructurePrimary"),
                     hemi ? "CortexRight" : "CortexLeft");
    gifti_free(&g);
    if (mt_python_or_skip("nibabel numpy", "the nibabel read-back")) {
      char *cmd = mt_strf(
          "%s -c \"import nibabel as nb, numpy as np; g = nb.load('%s'); d = np.stack([a.data for a in "
          "g.darrays]); "
          "t, v = np.mgrid[0:%d, 0:%zu]; want = (1000 + 100 * %d + v + 0.25 * t).astype(np.float32); "
          "assert d.dtype == np.float32 and d.tobytes() == want.tobytes(), d; "
          "m = dict(g.meta); assert m == {'subject': '01', 'task': 'story', 'run': '1', "
          "'AnatomicalStructurePrimary': '%s'}, m; "
          "assert all(a.intent == 2001 and float(a.meta['TimeStep']) == 1.5 for a in g.darrays)\"",
          mt_env("MYELIN_PYTHON", "/usr/bin/python3"), p, NT, nv, hemi, hemi ? "CortexRight" : "CortexLeft");
      char *o = NULL;
      ck_assert_msg(mt_run(cmd, &o) == 0, "nibabel check failed: %s", o);
      free(o);
    }
  }
  myelin_harness_free(sink);
  /* the same pair without {hemi} in the path: an error saying so */
  sink = harness("gifti_sink", mt_strf("{path: '%s/one.func.gii'}", out));
  ck_assert_int_ne(myelin_harness_push(sink, NULL, myelin_msg_ref(run)), 0);
  ck_assert_msg(strstr(myelin_harness_error(sink), "put {hemi} in path"), "%s", myelin_harness_error(sink));
  myelin_harness_free(sink);
  myelin_harness_free(src);
}
END_TEST

/* A map over a subset of vertices (mask: auto upstream): uncovered vertices
 * are NaN with fill: nan; rows named after `subjects`; a volume map is
 * refused naming nifti_sink. */
START_TEST(sink_map_fill_and_refusals) {
  char *out = mt_tmpdir();
  myelin_builder *b = myelin_builder_new("map");
  myelin_build_str(b, "stat", "isc");
  int64_t shape[2] = {2, 3};
  float v[6] = {0.5f, -0.25f, 1.0f, 2.0f, 3.0f, 4.0f};
  myelin_build_tensor_copy(b, "data", MYELIN_F4, 2, shape, v);
  myelin_build_array_begin(b, "subjects");
  myelin_build_str(b, NULL, "01");
  myelin_build_str(b, NULL, "02");
  myelin_build_array_end(b);
  myelin_build_map_begin(b, "geometry");
  myelin_build_str(b, "model", "surface");
  myelin_build_array_begin(b, "structures");
  myelin_build_map_begin(b, NULL);
  myelin_build_str(b, "name", "CIFTI_STRUCTURE_CORTEX_LEFT");
  myelin_build_str(b, "type", "surface");
  myelin_build_int(b, "offset", 0);
  myelin_build_int(b, "count", 3);
  myelin_build_int(b, "nvert", 6);
  uint32_t vert[3] = {5, 0, 2};
  int64_t s3[1] = {3};
  myelin_build_tensor_copy(b, "vertices", MYELIN_U4, 1, s3, vert);
  myelin_build_map_end(b);
  myelin_build_array_end(b);
  myelin_build_map_end(b);
  myelin_msg *m = myelin_builder_finish(b);
  myelin_harness *sink = harness("gifti_sink", mt_strf("{path: '%s/{stat}.shape.gii', fill: nan}", out));
  ck_assert_msg(myelin_harness_push(sink, NULL, m) == 0, "%s", myelin_harness_error(sink));
  myelin_harness_eos(sink);
  myelin_harness_free(sink);
  char *p = mt_strf("%s/isc.shape.gii", out);
  gifti_image g;
  char err[512];
  ck_assert_msg(gifti_read_file(p, &g, err, sizeof err) == 0, "%s", err);
  ck_assert_uint_eq(g.narrays, 2);
  const float *r1 = g.arrays[1].data;
  ck_assert_float_eq(r1[5], 2.0f);
  ck_assert_float_eq(r1[0], 3.0f);
  ck_assert_float_eq(r1[2], 4.0f);
  ck_assert(isnan(r1[1]) && isnan(r1[3]) && isnan(r1[4]));
  ck_assert_int_eq(g.arrays[0].intent_code, GIFTI_INTENT_SHAPE);
  ck_assert_str_eq(gifti_meta_get(&g.arrays[1].meta, "Name"), "02");
  ck_assert_str_eq(gifti_meta_get(&g.meta, "stat"), "isc");
  gifti_free(&g);
  /* a volume map */
  b = myelin_builder_new("map");
  myelin_build_str(b, "stat", "r");
  myelin_build_tensor_copy(b, "data", MYELIN_F4, 1, s3, v);
  myelin_build_map_begin(b, "geometry");
  myelin_build_array_begin(b, "dims");
  for (int i = 0; i < 3; i++)
    myelin_build_int(b, NULL, i ? 1 : 3);
  myelin_build_array_end(b);
  myelin_build_map_end(b);
  sink = harness("gifti_sink", mt_strf("{path: '%s/{stat}.func.gii'}", out));
  ck_assert_int_ne(myelin_harness_push(sink, NULL, myelin_builder_finish(b)), 0);
  ck_assert_msg(strstr(myelin_harness_error(sink), "volume geometry") &&
                    strstr(myelin_harness_error(sink), "gifti_sink cannot write it; use nifti_sink"),
                "%s", myelin_harness_error(sink));
  myelin_harness_free(sink);
}
END_TEST

/* CIFTI-2 runs: a .dtseries (both cortices + subcortical voxels) and a
 * .ptseries written by nibabel load with nibabel's data and geometry, and
 * their maps go back through cifti_sink with the axes kept (nibabel compares
 * the written brain-model / parcel axis with the source's). A dense
 * connectome is not a run. */
START_TEST(cifti_runs_and_cifti_sink) {
  MT_NEED_PYTHON("nibabel numpy", "CIFTI-2 files written by nibabel");
  const char *py = mt_env("MYELIN_PYTHON", "/usr/bin/python3");
  char *dir = mt_tmpdir();
  char *o = NULL;
  ck_assert_msg(
      mt_run(mt_strf("%s %s/tests/surface/cifti_ref.py %s", py, mt_env("MYELIN_SOURCE_DIR", "."), dir), &o) ==
          0,
      "reference script failed: %s", o);
  free(o);
  const char *files[2] = {"x.dtseries.nii", "x.ptseries.nii"}, *tags[2] = {"c0", "c4"};
  const char *outs[2] = {"out.dscalar.nii", "out.pscalar.nii"};
  for (int k = 0; k < 2; k++) {
    myelin_harness *h = run_source(mt_strf("{path: %s/%s}", dir, files[k]));
    myelin_msg *m = myelin_harness_output(h, "out", 0);
    ck_assert_ptr_nonnull(m);
    double tr = 0;
    ck_assert_int_eq(myelin_msg_float(m, "tr", &tr), 0);
    ck_assert_double_eq(tr, 0.72); /* the series step */
    myelin_tensor d;
    ck_assert_int_eq(myelin_msg_tensor(m, "data", &d), 0);
    myelin_array ref;
    char err[512];
    ck_assert_msg(myelin_npy_read(mt_strf("%s/%s.npy", dir, tags[k]), &ref, err, sizeof err) == 0, "%s", err);
    ck_assert(d.shape[0] == ref.shape[0] && d.shape[1] == ref.shape[1]);
    ck_assert_msg(memcmp(d.data, ref.data, ref.nbytes) == 0, "%s: data differ from nibabel's", files[k]);
    myelin_array_free(&ref);
    myelin_obj g = myelin_msg_get(m, "geometry");
    if (k == 0) {
      ck_assert(myelin_obj_str_eq(myelin_obj_get(g, "model"), "grayordinates"));
      myelin_obj st = myelin_obj_at(myelin_obj_get(g, "structures"), 2);
      ck_assert(myelin_obj_str_eq(myelin_obj_get(st, "name"), "CIFTI_STRUCTURE_THALAMUS_LEFT"));
      ck_assert(myelin_obj_str_eq(myelin_obj_get(st, "type"), "volume"));
      myelin_tensor vx;
      ck_assert_int_eq(myelin_obj_tensor(myelin_obj_get(st, "voxels"), &vx), 0);
      /* thal[1:3, 2:4, 1:3] in a 6x5x4 grid: the first voxel is (1, 2, 1) */
      ck_assert_uint_eq(((const uint32_t *)vx.data)[0], (1 * 5 + 2) * 4 + 1);
    } else {
      ck_assert(myelin_obj_str_eq(myelin_obj_get(g, "model"), "parcels"));
      myelin_obj labels = myelin_msg_get(m, "labels");
      ck_assert_uint_eq(myelin_obj_len(labels), 4);
      ck_assert(myelin_obj_str_eq(myelin_obj_at(labels, 2), "thal+caud"));
    }
    /* back through cifti_sink */
    char *out = mt_strf("%s/%s", dir, outs[k]);
    myelin_harness *sink = harness("cifti_sink", mt_strf("{path: '%s'}", out));
    ck_assert_msg(myelin_harness_push(sink, NULL, myelin_msg_ref(m)) == 0, "%s", myelin_harness_error(sink));
    ck_assert_int_eq(myelin_harness_eos(sink), 0);
    myelin_harness_free(sink);
    char *cmd =
        mt_strf("%s -c \"import nibabel as nb, numpy as np; a = nb.load('%s/%s'); b = nb.load('%s'); "
                "assert b.get_fdata(dtype=np.float32).tobytes() == a.get_fdata(dtype=np.float32).tobytes(); "
                "assert a.header.get_axis(1) == b.header.get_axis(1); "
                "assert list(b.header.get_axis(0).name) == ['run %%d' %% i for i in range(7)]\"",
                py, dir, files[k], out);
    ck_assert_msg(mt_run(cmd, &o) == 0, "nibabel check of %s failed: %s", out, o);
    free(o);
    /* the wrong extension for the geometry is an error naming both */
    sink = harness("cifti_sink", mt_strf("{path: '%s/wrong.%s'}", dir, k ? "dscalar.nii" : "pscalar.nii"));
    ck_assert_int_ne(myelin_harness_push(sink, NULL, myelin_msg_ref(m)), 0);
    ck_assert_msg(strstr(myelin_harness_error(sink), k ? "a parcels map is written as .pscalar.nii"
                                                       : "a grayordinates map is written as .dscalar.nii"),
                  "%s", myelin_harness_error(sink));
    myelin_harness_free(sink);
    myelin_harness_free(h);
  }
  myelin_harness *h = harness("fmri_source", mt_strf("{path: %s/x.dconn.nii}", dir));
  ck_assert_int_ne(myelin_harness_start(h), 0);
  ck_assert_msg(strstr(myelin_harness_error(h), "x.dconn.nii: a connectome"), "%s", myelin_harness_error(h));
  myelin_harness_free(h);
}
END_TEST

/* The same CIFTI-2 file read plain and gzipped gives the same data and axes. */
static void same_cifti(const char *plain, const char *gz) {
  cifti_file a, b;
  char err[1024];
  ck_assert_msg(cifti_read_file(plain, &a, err, sizeof err) == 0, "%s", err);
  ck_assert_msg(cifti_read_file(gz, &b, err, sizeof err) == 0, "%s", err);
  ck_assert(a.rows == b.rows && a.cols == b.cols && a.intent_code == b.intent_code);
  ck_assert_msg(memcmp(a.data, b.data, a.rows * a.cols * sizeof *a.data) == 0, "%s: data differ", gz);
  for (int k = 0; k < 2; k++) {
    const cifti_axis *x = &a.axes[k], *y = &b.axes[k];
    ck_assert(x->type == y->type && x->n == y->n && x->nmodels == y->nmodels && x->nparcels == y->nparcels);
    for (size_t i = 0; i < x->nmodels; i++) {
      const cifti_model *m = &x->models[i], *n = &y->models[i];
      ck_assert_str_eq(m->structure, n->structure);
      ck_assert(m->surface == n->surface && m->offset == n->offset && m->count == n->count);
      ck_assert(m->surface ? !memcmp(m->vertices, n->vertices, m->count * sizeof *m->vertices)
                           : !memcmp(m->ijk, n->ijk, m->count * 3 * sizeof *m->ijk));
    }
  }
  cifti_free(&a), cifti_free(&b);
}

/* Gzipped CIFTI-2 (.dtseries.nii.gz, .dlabel.nii.gz) reads as the plain file:
 * one gzip member (libdeflate in one go) and two concatenated members (zlib
 * streaming), through the reader, BIDS discovery in fmri_source and
 * parcellate's atlas; a truncated .gz is an error naming the file. */
START_TEST(gzipped_cifti) {
  MT_NEED_PYTHON("nibabel numpy", "CIFTI-2 files written by nibabel");
  const char *py = mt_env("MYELIN_PYTHON", "/usr/bin/python3");
  char *dir = mt_tmpdir(), *o = NULL;
  ck_assert_msg(
      mt_run(mt_strf("%s %s/tests/surface/cifti_ref.py %s", py, mt_env("MYELIN_SOURCE_DIR", "."), dir), &o) ==
          0,
      "reference script failed: %s", o);
  free(o);
  char *x = mt_strf("%s/x.dtseries.nii", dir), *f = mt_strf("%s/bids/sub-01/func", dir);
  char *one = mt_strf("%s/sub-01_task-story_bold.dtseries.nii.gz", f);
  char *two = mt_strf("%s/bids/sub-02/func/sub-02_task-story_bold.dtseries.nii.gz", dir);
  ck_assert_int_eq(
      mt_run(
          mt_strf("mkdir -p %s %s/bids/sub-02/func && gzip -c %s > %s && "
                  "head -c 3000 %s | gzip -c > %s && tail -c +3001 %s | gzip -c >> %s && "
                  "gzip -c %s/x.dlabel.nii > %s/x.dlabel.nii.gz && head -c 2000 %s > %s/cut.dtseries.nii.gz",
                  f, dir, x, one, x, two, x, two, dir, dir, one, dir),
          NULL),
      0);
  same_cifti(x, one);
  same_cifti(x, two);
  same_cifti(mt_strf("%s/x.dlabel.nii", dir), mt_strf("%s/x.dlabel.nii.gz", dir));
  /* BIDS discovery finds the .gz runs; their data are nibabel's */
  myelin_harness *h = run_source(mt_strf("{path: %s/bids}", dir));
  ck_assert_uint_eq(myelin_harness_count(h, "out"), 2);
  myelin_array ref;
  char err[1024];
  ck_assert_msg(myelin_npy_read(mt_strf("%s/c0.npy", dir), &ref, err, sizeof err) == 0, "%s", err);
  for (size_t i = 0; i < 2; i++) {
    myelin_tensor d;
    ck_assert_int_eq(myelin_msg_tensor(myelin_harness_output(h, "out", i), "data", &d), 0);
    ck_assert_msg(d.count * 4 == ref.nbytes && !memcmp(d.data, ref.data, ref.nbytes), "run %zu differs", i);
    ck_assert(myelin_obj_str_eq(
        myelin_obj_get(myelin_msg_get(myelin_harness_output(h, "out", i), "geometry"), "model"),
        "grayordinates"));
  }
  /* parcellate with the gzipped .dlabel gives what the plain one gives */
  const myelin_msg *run = myelin_harness_output(h, "out", 0);
  myelin_harness *p1 = harness("parcellate", mt_strf("{atlas: ['%s/x.dlabel.nii']}", dir));
  myelin_harness *p2 = harness("parcellate", mt_strf("{atlas: ['%s/x.dlabel.nii.gz']}", dir));
  ck_assert_msg(myelin_harness_push(p1, NULL, myelin_msg_ref((myelin_msg *)run)) == 0, "%s",
                myelin_harness_error(p1));
  ck_assert_msg(myelin_harness_push(p2, NULL, myelin_msg_ref((myelin_msg *)run)) == 0, "%s",
                myelin_harness_error(p2));
  myelin_tensor a, b;
  ck_assert_int_eq(myelin_msg_tensor(myelin_harness_output(p1, "out", 0), "data", &a), 0);
  ck_assert_int_eq(myelin_msg_tensor(myelin_harness_output(p2, "out", 0), "data", &b), 0);
  ck_assert(a.count == b.count && a.count > 0 && !memcmp(a.data, b.data, a.count * 4));
  myelin_harness_free(p1), myelin_harness_free(p2), myelin_harness_free(h);
  myelin_array_free(&ref);
  /* a truncated .gz: an error naming the file */
  cifti_file c;
  char *cut = mt_strf("%s/cut.dtseries.nii.gz", dir);
  ck_assert_int_ne(cifti_read_file(cut, &c, err, sizeof err), 0);
  ck_assert_msg(strstr(err, cut), "%s", err);
}
END_TEST

/* ISC runs unchanged on surface data and its map goes back to GIFTI with the
 * geometry kept: 3 subjects' hemisphere pairs (a shared signal plus noise)
 * -> `myelin run` fmri_source -> isc -> gifti_sink; numpy's leave-one-out
 * ISC from the input files equals the written maps, per hemisphere. The
 * same through a .ptseries (parcels) -> isc -> cifti_sink keeps the parcel
 * axis (nibabel compares it with the source's). */
START_TEST(isc_pipeline_on_surfaces) {
  const char *bin = mt_env("MYELIN_BIN", "myelin");
  if (access(bin, X_OK) != 0) MT_SKIP("the CLI %s is not built", bin);
  MT_NEED_PYTHON("nibabel numpy", "the numpy ISC reference");
  const char *py = mt_env("MYELIN_PYTHON", "/usr/bin/python3");
  char *dir = mt_tmpdir();
  uint64_t seed = 12345;
  const size_t T = 40;
  float shared[40];
  for (size_t t = 0; t < T; t++)
    shared[t] = (float)sin(0.7 * (double)t) + (float)cos(0.23 * (double)t * (double)t);
  for (int sub = 1; sub <= 3; sub++) {
    char *f = mt_strf("%s/bids/sub-0%d/func", dir, sub);
    ck_assert_int_eq(mt_run(mt_strf("mkdir -p %s", f), NULL), 0);
    for (int h = 0; h < 2; h++) {
      size_t nv = h ? NR : NL;
      float *rows = malloc(T * nv * sizeof *rows);
      for (size_t t = 0; t < T; t++)
        for (size_t v = 0; v < nv; v++) {
          seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
          double noise = (double)(seed >> 11) / 9007199254740992.0 - 0.5;
          rows[t * nv + v] = (float)((double)(v % 5) * 0.3 * shared[t] + 2.0 * noise);
        }
      FILE *fp = fopen(
          mt_strf("%s/sub-0%d_task-story_space-fsaverage6_hemi-%c_bold.func.gii", f, sub, h ? 'R' : 'L'),
          "wb");
      char err[256];
      ck_assert_int_eq(gifti_write_f32(fp, rows, T, nv, GIFTI_INTENT_TIME_SERIES,
                                       h ? "CIFTI_STRUCTURE_CORTEX_RIGHT" : "CIFTI_STRUCTURE_CORTEX_LEFT",
                                       NULL, NULL, err, sizeof err),
                       0);
      fclose(fp);
      free(rows);
    }
  }
  char *yaml = mt_strf("%s/isc.yaml", dir);
  mt_write(yaml, mt_strf("name: surface-isc\nstages:\n"
                         "  - {id: bold, plugin: fmri_source, params: {path: %s/bids, tr: 1.5}}\n"
                         "  - {id: isc, plugin: isc, inputs: [bold]}\n"
                         "  - {id: save, plugin: gifti_sink, inputs: [isc.map], "
                         "params: {path: '%s/out/isc_{task}_hemi-{hemi}.func.gii'}}\n",
                         dir, dir));
  char *o = NULL;
  ck_assert_msg(mt_run(mt_strf("%s run --check-messages %s", bin, yaml), &o) == 0, "myelin run failed: %s",
                o);
  free(o);
  char *cmd =
      mt_strf("%s -c \"\nimport nibabel as nb, numpy as np, glob\nfor h, s in (('L', 'CortexLeft'), ('R', "
              "'CortexRight')):\n"
              "    runs = [np.stack([a.data for a in nb.load(f).darrays]) for f in "
              "sorted(glob.glob('%s/bids/sub-*/func/*hemi-' + h + '_bold.func.gii'))]\n"
              "    want = []\n    for i, x in enumerate(runs):\n"
              "        others = np.mean([r for j, r in enumerate(runs) if j != i], axis=0)\n"
              "        xc, oc = x - x.mean(0), others - others.mean(0)\n"
              "        want.append((xc * oc).sum(0) / np.sqrt((xc ** 2).sum(0) * (oc ** 2).sum(0)))\n"
              "    g = nb.load('%s/out/isc_story_hemi-' + h + '.func.gii')\n"
              "    got = np.stack([a.data for a in g.darrays])\n"
              "    assert got.shape == (3, runs[0].shape[1]), got.shape\n"
              "    assert np.allclose(got, np.array(want), atol=2e-5), abs(got - np.array(want)).max()\n"
              "    assert g.meta['AnatomicalStructurePrimary'] == s and g.meta['stat'] == 'isc'\n"
              "    assert [a.meta['Name'] for a in g.darrays] == ['01', '02', '03']\n\"",
              py, dir, dir);
  ck_assert_msg(mt_run(cmd, &o) == 0, "numpy ISC check failed: %s", o);
  free(o);

  /* parcels: three subjects' .ptseries (written by nibabel) -> isc -> cifti_sink */
  ck_assert_msg(
      mt_run(
          mt_strf(
              "%s -c \"\nimport numpy as np, nibabel as nb\nfrom nibabel import cifti2 as ci\n"
              "rng = np.random.default_rng(3)\nvox = np.empty(3, dtype=object)\n"
              "for i in range(3): vox[i] = np.zeros((0, 3), int)\n"
              "pa = ci.ParcelsAxis(['A', 'B', 'C'], vox, [{'CIFTI_STRUCTURE_CORTEX_LEFT': np.array([0, 1])}, "
              "{'CIFTI_STRUCTURE_CORTEX_LEFT': np.array([2])}, {'CIFTI_STRUCTURE_CORTEX_RIGHT': np.array([0, "
              "4])}], "
              "nvertices={'CIFTI_STRUCTURE_CORTEX_LEFT': 3, 'CIFTI_STRUCTURE_CORTEX_RIGHT': 5})\n"
              "sh = np.sin(np.arange(30) * 0.5)[:, None]\n"
              "for s in (1, 2, 3):\n"
              "    d = (sh * [1, 0.5, 0] + rng.normal(size=(30, 3))).astype(np.float32)\n"
              "    nb.save(ci.Cifti2Image(d, header=(ci.SeriesAxis(0, 0.8, 30), pa)), "
              "'%s/sub-0%%d_task-story_bold.ptseries.nii' %% s)\n\"",
              py, dir),
          &o) == 0,
      "writing .ptseries files failed: %s", o);
  free(o);
  char *yaml2 = mt_strf("%s/pisc.yaml", dir);
  mt_write(
      yaml2,
      mt_strf("name: parcel-isc\nstages:\n"
              "  - {id: bold, plugin: fmri_source, params: {path: '%s/sub-*_bold.ptseries.nii'}}\n"
              "  - {id: isc, plugin: isc, inputs: [bold]}\n"
              "  - {id: save, plugin: cifti_sink, inputs: [isc.map], params: {path: '%s/isc.pscalar.nii'}}\n",
              dir, dir));
  ck_assert_msg(mt_run(mt_strf("%s run --check-messages %s", bin, yaml2), &o) == 0, "myelin run failed: %s",
                o);
  free(o);
  ck_assert_msg(
      mt_run(mt_strf("%s -c \"import nibabel as nb; a = nb.load('%s/sub-01_task-story_bold.ptseries.nii'); "
                     "b = nb.load('%s/isc.pscalar.nii'); assert b.shape == (3, 3), b.shape; "
                     "assert a.header.get_axis(1) == b.header.get_axis(1); "
                     "assert list(b.header.get_axis(0).name) == ['01', '02', '03']\"",
                     py, dir, dir),
             &o) == 0,
      "nibabel check of the parcel ISC map failed: %s", o);
  free(o);
}
END_TEST

int main(void) {
  Suite *s = suite_create("surface_io");
  TCase *tc = tcase_create("surface_io");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, bids_hemisphere_pair_is_one_run);
  tcase_add_test(tc, auto_mask_keeps_vertex_indices);
  tcase_add_test(tc, nibabel_files_as_runs);
  tcase_add_test(tc, nifti_mask_on_surface_is_an_error);
  tcase_add_test(tc, sink_writes_one_file_per_hemisphere);
  tcase_add_test(tc, sink_map_fill_and_refusals);
  tcase_add_test(tc, cifti_runs_and_cifti_sink);
  tcase_add_test(tc, isc_pipeline_on_surfaces);
  tcase_add_test(tc, gzipped_cifti);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int nf = srunner_ntests_failed(sr);
  srunner_free(sr);
  return nf ? 1 : 0;
}
