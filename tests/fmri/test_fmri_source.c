/*
 * test_fmri_source.c — the fmri_source stage through the harness.
 *
 * Fixtures are written by the test itself with nifti.c's writer: a small
 * BIDS tree (2 subjects x 2 runs, one derivative in another space, an
 * anatomical image that must be ignored, inherited and exact JSON sidecars),
 * the same tree as .tar.gz and .zip (libarchive), masks and an atlas. Every
 * voxel value encodes where it came from,
 *   val(sub, run, x, y, z, t) = 1000 sub + 100 run + x + 10 y + 0.5 z + 0.25 t,
 * so each check can compute the expected number by hand.
 */
#include <dirent.h>
#include <archive.h>
#include <archive_entry.h>
#include <math.h>
#include <pthread.h>
#include <time.h>

#include "myelin/harness.h"
#include "myelin/myelin.h"
#include "nifti.h"
#include "testutil.h"

#define NX 4
#define NY 3
#define NZ 2
#define NT 6
#define NB_DATA "/usr/lib/python3/dist-packages/nibabel/tests/data"

static const double AFF[16] = {-3, 0, 0, 30, 0, 3, 0, -40, 0, 0, 4, -10, 0, 0, 0, 1};

static double val(int sub, int run, int x, int y, int z, int t) {
  return 1000.0 * sub + 100.0 * run + x + 10.0 * y + 0.5 * z + 0.25 * t;
}

static void write_nifti(const char *path, int nt, float (*f)(int, int, int, int, void *), void *arg) {
  size_t n = (size_t)NX * NY * NZ * (size_t)nt;
  float *d = malloc(n * sizeof *d);
  for (int t = 0; t < nt; t++)
    for (int z = 0; z < NZ; z++)
      for (int y = 0; y < NY; y++)
        for (int x = 0; x < NX; x++)
          d[(size_t)t * NX * NY * NZ + nifti_forder(x, y, z, NX, NY)] = f(x, y, z, t, arg);
  int64_t dims[4] = {NX, NY, NZ, nt};
  FILE *fp = fopen(path, "wb");
  ck_assert_msg(fp != NULL, "cannot write %s", path);
  char err[256];
  ck_assert_msg(nifti_write_f32(fp, dims, AFF, 2.0, d, strstr(path, ".gz") != NULL, err, sizeof err) == 0,
                "%s", err);
  fclose(fp);
  free(d);
}

typedef struct subrun {
  int sub, run;
} subrun;

static float f_run(int x, int y, int z, int t, void *arg) {
  subrun *sr = arg;
  return (float)val(sr->sub, sr->run, x, y, z, t);
}

static void mkdirs(const char *path) {
  char *cmd = mt_strf("mkdir -p '%s'", path);
  ck_assert_int_eq(system(cmd), 0);
  free(cmd);
}

/* root/sub-0S/func/sub-0S_task-story_run-R_bold.nii.gz for S, R in {1, 2};
 * TR 1.5 inherited from root/task-story_bold.json, 2.5 for sub-02 run-2 from
 * its own sidecar; a space-MNI derivative of sub-01 run-1 (values written
 * as sub = 51) and an anatomical image that is not _bold. */
static char *make_bids(void) {
  char *root = mt_tmpdir();
  for (int s = 1; s <= 2; s++) {
    char *func = mt_strf("%s/sub-%02d/func", root, s);
    mkdirs(func);
    for (int r = 1; r <= 2; r++) {
      subrun sr = {s, r};
      char *p = mt_strf("%s/sub-%02d_task-story_run-%d_bold.nii.gz", func, s, r);
      write_nifti(p, NT, f_run, &sr);
      free(p);
    }
    free(func);
    char *anat = mt_strf("%s/sub-%02d/anat", root, s);
    mkdirs(anat);
    subrun sr = {9, 9};
    char *p = mt_strf("%s/sub-%02d_T1w.nii.gz", anat, s);
    write_nifti(p, 1, f_run, &sr);
    free(p);
    free(anat);
  }
  char *js = mt_strf("%s/task-story_bold.json", root);
  mt_write(js, "{\n  \"TaskName\": \"story\",\n  \"RepetitionTime\": 1.5\n}\n");
  free(js);
  js = mt_strf("%s/sub-02/func/sub-02_task-story_run-2_bold.json", root);
  mt_write(js, "{\"RepetitionTime\" : 2.5, \"EchoTime\": 0.03}");
  free(js);
  char *deriv = mt_strf("%s/derivatives/sub-01/func", root);
  mkdirs(deriv);
  subrun sr = {51, 1};
  char *p = mt_strf("%s/sub-01_task-story_run-1_space-MNI_bold.nii.gz", deriv);
  write_nifti(p, NT, f_run, &sr);
  free(p);
  free(deriv);
  return root;
}

static myelin_harness *run_source(const char *params) {
  char err[1024];
  myelin_harness *h = myelin_harness_new("fmri_source", params, err, sizeof err);
  ck_assert_msg(h != NULL, "harness: %s", err);
  ck_assert_msg(myelin_harness_start(h) == 0, "start: %s", myelin_harness_error(h));
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  return h;
}

static int source_fails(const char *params, char *msg, size_t n) {
  char err[1024];
  myelin_harness *h = myelin_harness_new("fmri_source", params, err, sizeof err);
  if (!h) {
    snprintf(msg, n, "%s", err);
    return 1;
  }
  int rc = myelin_harness_start(h);
  snprintf(msg, n, "%s", myelin_harness_error(h));
  myelin_harness_free(h);
  return rc != 0 || msg[0] != 0;
}

static const float *tensor2(const myelin_msg *m, int64_t *T, int64_t *V) {
  myelin_tensor t;
  ck_assert_int_eq(myelin_msg_tensor(m, "data", &t), 0);
  ck_assert_int_eq(t.dtype, MYELIN_F4);
  ck_assert_int_eq(t.ndim, 2);
  *T = t.shape[0];
  *V = t.shape[1];
  return t.data;
}

static void str_field(const myelin_msg *m, const char *key, char *buf, size_t n) {
  ck_assert_msg(myelin_msg_str(m, key, buf, n) == 0, "field %s", key);
}

/* Checks a run message against val() for (sub, run) with all voxels. */
static void check_full_run(const myelin_msg *m, int sub, int run, double tr, int trim) {
  int64_t T, V;
  const float *d = tensor2(m, &T, &V);
  ck_assert_int_eq(T, NT - trim);
  ck_assert_int_eq(V, NX * NY * NZ);
  for (int t = 0; t < T; t++)
    for (int x = 0; x < NX; x++)
      for (int y = 0; y < NY; y++)
        for (int z = 0; z < NZ; z++)
          ck_assert_float_eq_tol(d[t * V + (int64_t)nifti_corder(x, y, z, NY, NZ)],
                                 val(sub, run, x, y, z, t + trim), 1e-3);
  double got_tr;
  ck_assert_int_eq(myelin_msg_float(m, "tr", &got_tr), 0);
  ck_assert_double_eq_tol(got_tr, tr, 1e-6);
  char s[32];
  str_field(m, "subject", s, sizeof s);
  char want[32];
  snprintf(want, sizeof want, "%02d", sub % 50); /* 51: the derivative of sub-01 */
  ck_assert_str_eq(s, want);
  str_field(m, "task", s, sizeof s);
  ck_assert_str_eq(s, "story");
  int64_t r;
  ck_assert_int_eq(myelin_msg_int(m, "run", &r), 0);
  ck_assert_int_eq(r, run);
  /* geometry: dims, affine, voxels 0..V-1 */
  myelin_obj g = myelin_msg_get(m, "geometry");
  myelin_obj dims = myelin_obj_get(g, "dims");
  ck_assert_uint_eq(myelin_obj_len(dims), 3);
  int64_t dv;
  ck_assert_int_eq(myelin_obj_int(myelin_obj_at(dims, 0), &dv), 0);
  ck_assert_int_eq(dv, NX);
  ck_assert_int_eq(myelin_obj_int(myelin_obj_at(dims, 2), &dv), 0);
  ck_assert_int_eq(dv, NZ);
  myelin_tensor a, vx;
  ck_assert_int_eq(myelin_obj_tensor(myelin_obj_get(g, "affine"), &a), 0);
  ck_assert_int_eq(a.dtype, MYELIN_F8);
  for (int i = 0; i < 16; i++)
    ck_assert_double_eq_tol(((const double *)a.data)[i], AFF[i], 1e-5);
  ck_assert_int_eq(myelin_obj_tensor(myelin_obj_get(g, "voxels"), &vx), 0);
  ck_assert_int_eq(vx.dtype, MYELIN_U4);
  ck_assert_uint_eq(vx.count, (size_t)V);
  ck_assert_uint_eq(((const uint32_t *)vx.data)[V - 1], (uint32_t)(V - 1));
}

START_TEST(single_file_matches_nibabel) {
  MT_NEED_FILE(NB_DATA "/functional.nii", "python3-nibabel's test data");
  myelin_harness *h = run_source("{path: " NB_DATA "/functional.nii}");
  ck_assert_uint_eq(myelin_harness_count(h, "out"), 1);
  myelin_msg *m = myelin_harness_output(h, "out", 0);
  ck_assert_str_eq(myelin_msg_kind(m), "run");
  int64_t T, V;
  const float *d = tensor2(m, &T, &V);
  ck_assert_int_eq(T, 20);
  ck_assert_int_eq(V, 17 * 21 * 3);
  /* nibabel: get_fdata(dtype=float32)[8, 10, 1, 5] and [16, 20, 2, 19] */
  ck_assert_float_eq_tol(d[5 * V + (int64_t)nifti_corder(8, 10, 1, 21, 3)], 3897.36083984375f, 1e-3);
  ck_assert_float_eq_tol(d[19 * V + (int64_t)nifti_corder(16, 20, 2, 21, 3)], 3129.341064453125f, 1e-3);
  double tr;
  ck_assert_int_eq(myelin_msg_float(m, "tr", &tr), 0);
  ck_assert_double_eq(tr, 2.0);
  char s[64];
  str_field(m, "subject", s, sizeof s);
  ck_assert_str_eq(s, "functional");
  myelin_harness_free(h);
}
END_TEST

START_TEST(bids_discovery_and_filters) {
  char *root = make_bids();
  char *params = mt_strf("{path: %s}", root);
  myelin_harness *h = run_source(params);
  /* 4 raw runs + 1 derivative, sorted by path: derivatives/ first */
  ck_assert_uint_eq(myelin_harness_count(h, "out"), 5);
  check_full_run(myelin_harness_output(h, "out", 1), 1, 1, 1.5, 0);
  check_full_run(myelin_harness_output(h, "out", 2), 1, 2, 1.5, 0);
  check_full_run(myelin_harness_output(h, "out", 3), 2, 1, 1.5, 0);
  check_full_run(myelin_harness_output(h, "out", 4), 2, 2, 2.5, 0);
  myelin_harness_free(h);
  free(params);

  params = mt_strf("{path: %s, subject: [sub-02], run: ['02'], trim: 2}", root);
  h = run_source(params);
  ck_assert_uint_eq(myelin_harness_count(h, "out"), 1);
  check_full_run(myelin_harness_output(h, "out", 0), 2, 2, 2.5, 2);
  myelin_harness_free(h);
  free(params);

  params = mt_strf("{path: %s, space: [MNI]}", root);
  h = run_source(params);
  ck_assert_uint_eq(myelin_harness_count(h, "out"), 1);
  check_full_run(myelin_harness_output(h, "out", 0), 51, 1, 1.5, 0);
  myelin_harness_free(h);
  free(params);

  char msg[1024];
  params = mt_strf("{path: %s, task: [rest]}", root);
  ck_assert(source_fails(params, msg, sizeof msg));
  ck_assert_msg(strstr(msg, "none matches") != NULL, "%s", msg);
  free(params);
  params = mt_strf("{path: %s/sub-0*/func/*run-1_bold.nii.gz, tr: 0.8}", root);
  h = run_source(params); /* a glob; tr overrides */
  ck_assert_uint_eq(myelin_harness_count(h, "out"), 2);
  check_full_run(myelin_harness_output(h, "out", 1), 2, 1, 0.8, 0);
  myelin_harness_free(h);
  free(params);
  free(root);
}
END_TEST

/* BIDS sessions (sub-07/ses-pre/func ...), and plain .nii next to .nii.gz */
START_TEST(bids_sessions) {
  char *root = mt_tmpdir();
  for (int ses = 0; ses < 2; ses++) {
    char *func = mt_strf("%s/sub-07/ses-%s/func", root, ses ? "post" : "pre");
    mkdirs(func);
    subrun sr = {7, ses + 1};
    char *p = mt_strf("%s/sub-07_ses-%s_task-rest_run-%d_bold.nii%s", func, ses ? "post" : "pre", ses + 1,
                      ses ? "" : ".gz");
    write_nifti(p, NT, f_run, &sr);
    free(p);
    free(func);
  }
  char *params = mt_strf("{path: %s, task: [rest], emit: volume}", root);
  myelin_harness *h = run_source(params);
  ck_assert_uint_eq(myelin_harness_count(h, "out"), 2 * NT);
  myelin_msg *m = myelin_harness_output(h, "out", 1); /* ses-post sorts first: its TR 1 */
  int64_t run;
  ck_assert_int_eq(myelin_msg_int(m, "run", &run), 0);
  ck_assert_int_eq(run, 2);
  myelin_tensor x;
  ck_assert_int_eq(myelin_msg_tensor(m, "data", &x), 0);
  ck_assert_float_eq_tol(((const float *)x.data)[nifti_corder(1, 2, 0, NY, NZ)], val(7, 2, 1, 2, 0, 1), 1e-3);
  double tr;
  ck_assert_int_eq(myelin_msg_float(m, "tr", &tr), 0);
  ck_assert_double_eq_tol(tr, 2.0, 1e-6); /* no sidecar: the header's pixdim[4] */
  myelin_harness_free(h);
  free(params);
  free(root);
}
END_TEST

/* Packs every file under root into an archive (format "tar.gz" or "zip"). */
static void pack(const char *root, const char *out, int zip) {
  struct archive *a = archive_write_new();
  if (zip)
    archive_write_set_format_zip(a);
  else {
    archive_write_set_format_pax_restricted(a);
    archive_write_add_filter_gzip(a);
  }
  ck_assert_int_eq(archive_write_open_filename(a, out), ARCHIVE_OK);
  char *cmd = mt_strf("cd '%s' && find . -type f | sort", root);
  char *list = NULL;
  ck_assert_int_eq(mt_run(cmd, &list), 0);
  for (char *line = strtok(list, "\n"); line; line = strtok(NULL, "\n")) {
    char *full = mt_strf("%s/%s", root, line + 2);
    size_t n;
    FILE *f = fopen(full, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(n + 1);
    ck_assert_uint_eq(fread(buf, 1, n, f), n);
    fclose(f);
    char *name = mt_strf("ds/%s", line + 2);
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, name);
    archive_entry_set_size(e, (la_int64_t)n);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    ck_assert_int_eq(archive_write_header(a, e), ARCHIVE_OK);
    ck_assert_int_eq(archive_write_data(a, buf, n), (la_ssize_t)n);
    archive_entry_free(e);
    free(name);
    free(buf);
    free(full);
  }
  free(list);
  free(cmd);
  archive_write_close(a);
  archive_write_free(a);
}

START_TEST(archives_read_in_place) {
  char *root = make_bids();
  char *dir = mt_tmpdir();
  for (int zip = 0; zip <= 1; zip++) {
    char *arc = mt_strf("%s/ds.%s", dir, zip ? "zip" : "tar.gz");
    pack(root, arc, zip);
    char *params = mt_strf("{path: %s, subject: ['01', '02'], space: []}", arc);
    myelin_harness *h = run_source(params);
    ck_assert_uint_eq(myelin_harness_count(h, "out"), 5);
    check_full_run(myelin_harness_output(h, "out", 0), 51, 1, 1.5, 0);
    check_full_run(myelin_harness_output(h, "out", 2), 1, 2, 1.5, 0);
    check_full_run(myelin_harness_output(h, "out", 4), 2, 2, 2.5, 0);
    myelin_harness_free(h);
    free(params);
    free(arc);
  }
  /* nothing was extracted next to the archives */
  char *cmd = mt_strf("ls '%s' | wc -l", dir);
  char *out = NULL;
  mt_run(cmd, &out);
  ck_assert_int_eq(atoi(out), 2);
  free(out);
  free(cmd);
  free(dir);
  free(root);
}
END_TEST

static float f_mask(int x, int y, int z, int t, void *arg) {
  (void)t;
  (void)arg;
  return (x + y + z) % 2 == 0 ? 1.0f : 0.0f;
}

/* parcels: label 3 where x < 2, label 7 where x >= 2 and y == 0, 0 elsewhere */
static float f_atlas(int x, int y, int z, int t, void *arg) {
  (void)z;
  (void)t;
  (void)arg;
  return x < 2 ? 3.0f : (y == 0 ? 7.0f : 0.0f);
}

START_TEST(mask_file_auto_and_atlas) {
  char *root = make_bids();
  char *mask = mt_strf("%s/mask.nii", root);
  write_nifti(mask, 1, f_mask, NULL);
  char *run = mt_strf("%s/sub-01/func/sub-01_task-story_run-2_bold.nii.gz", root);
  char *params = mt_strf("{path: %s, mask: %s}", run, mask);
  myelin_harness *h = run_source(params);
  myelin_msg *m = myelin_harness_output(h, "out", 0);
  int64_t T, V;
  const float *d = tensor2(m, &T, &V);
  ck_assert_int_eq(V, NX * NY * NZ / 2);
  myelin_tensor vx;
  ck_assert_int_eq(myelin_obj_tensor(myelin_obj_get(myelin_msg_get(m, "geometry"), "voxels"), &vx), 0);
  const uint32_t *vox = vx.data;
  int k = 0;
  for (int x = 0; x < NX; x++)
    for (int y = 0; y < NY; y++)
      for (int z = 0; z < NZ; z++) {
        if ((x + y + z) % 2) continue;
        ck_assert_uint_eq(vox[k], nifti_corder(x, y, z, NY, NZ));
        ck_assert_float_eq_tol(d[3 * V + k], val(1, 2, x, y, z, 3), 1e-3);
        k++;
      }
  myelin_harness_free(h);
  free(params);

  /* auto: a run whose voxels with x == 0 are constant over time */
  char *flat = mt_strf("%s/flat.nii", root);
  size_t n = (size_t)NX * NY * NZ * NT;
  float *buf = malloc(n * sizeof *buf);
  for (int t = 0; t < NT; t++)
    for (int z = 0; z < NZ; z++)
      for (int y = 0; y < NY; y++)
        for (int x = 0; x < NX; x++)
          buf[(size_t)t * NX * NY * NZ + nifti_forder(x, y, z, NX, NY)] = x == 0 ? 5.0f : (float)(t * x);
  int64_t dims[4] = {NX, NY, NZ, NT};
  FILE *fp = fopen(flat, "wb");
  char err[256];
  ck_assert_int_eq(nifti_write_f32(fp, dims, AFF, 2.0, buf, 0, err, sizeof err), 0);
  fclose(fp);
  free(buf);
  params = mt_strf("{path: %s, mask: auto, zscore: true}", flat);
  h = run_source(params);
  m = myelin_harness_output(h, "out", 0);
  d = tensor2(m, &T, &V);
  ck_assert_int_eq(V, (NX - 1) * NY * NZ);
  ck_assert_int_eq(myelin_obj_tensor(myelin_obj_get(myelin_msg_get(m, "geometry"), "voxels"), &vx), 0);
  ck_assert_uint_eq(((const uint32_t *)vx.data)[0], nifti_corder(1, 0, 0, NY, NZ));
  /* zscored ramp 0..5: (t - 2.5) / sqrt(35/12) */
  ck_assert_float_eq_tol(d[0], -2.5 / sqrt(35.0 / 12.0), 1e-5);
  ck_assert_float_eq_tol(d[5 * V + 7], 2.5 / sqrt(35.0 / 12.0), 1e-5);
  myelin_harness_free(h);
  free(params);

  /* atlas + TSV names: parcel means by hand */
  char *atlas = mt_strf("%s/atlas.nii.gz", root), *tsv = mt_strf("%s/atlas.tsv", root);
  write_nifti(atlas, 1, f_atlas, NULL);
  mt_write(tsv, "index\tname\n3\tleft\n7\tfront-right\n");
  params = mt_strf("{path: %s, atlas: %s, atlas_labels: %s}", run, atlas, tsv);
  h = run_source(params);
  m = myelin_harness_output(h, "out", 0);
  d = tensor2(m, &T, &V);
  ck_assert_int_eq(V, 2);
  for (int t = 0; t < NT; t++) {
    double s3 = 0, s7 = 0;
    int n3 = 0, n7 = 0;
    for (int x = 0; x < NX; x++)
      for (int y = 0; y < NY; y++)
        for (int z = 0; z < NZ; z++) {
          float l = f_atlas(x, y, z, 0, NULL);
          if (l == 3.0f) s3 += val(1, 2, x, y, z, t), n3++;
          if (l == 7.0f) s7 += val(1, 2, x, y, z, t), n7++;
        }
    ck_assert_float_eq_tol(d[t * 2 + 0], s3 / n3, 1e-3);
    ck_assert_float_eq_tol(d[t * 2 + 1], s7 / n7, 1e-3);
  }
  myelin_obj labels = myelin_msg_get(m, "labels");
  ck_assert_uint_eq(myelin_obj_len(labels), 2);
  ck_assert(myelin_obj_str_eq(myelin_obj_at(labels, 1), "front-right"));
  myelin_obj g = myelin_msg_get(m, "geometry");
  ck_assert(myelin_obj_str_eq(myelin_obj_get(g, "atlas"), atlas));
  myelin_tensor vals;
  ck_assert_int_eq(myelin_obj_tensor(myelin_obj_get(g, "values"), &vals), 0);
  ck_assert_int_eq(((const int32_t *)vals.data)[1], 7);
  myelin_harness_free(h);
  free(params);

  /* a mask on another grid is an error naming both files */
  char msg[1024];
  params = mt_strf("{path: %s, mask: %s/nb.nii}", run, root);
  char *cp = mt_strf("cp " NB_DATA "/standard.nii.gz %s/nb.nii.gz && gunzip %s/nb.nii.gz", root, root);
  if (system(cp) == 0) {
    ck_assert(source_fails(params, msg, sizeof msg));
    ck_assert_msg(strstr(msg, "does not match mask") && strstr(msg, "nb.nii"), "%s", msg);
  }
  free(cp);
  free(params);
  free(atlas);
  free(tsv);
  free(flat);
  free(run);
  free(mask);
  free(root);
}
END_TEST

START_TEST(volumes_detrend_and_realtime_pace) {
  char *root = make_bids();
  char *run = mt_strf("%s/sub-02/func/sub-02_task-story_run-1_bold.nii.gz", root);
  char *params = mt_strf("{path: %s, emit: volume, pace: realtime, tr: 0.05}", run);
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  myelin_harness *h = run_source(params);
  clock_gettime(CLOCK_MONOTONIC, &b);
  double el = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
  ck_assert_msg(el >= 0.05 * (NT - 1) - 0.01, "realtime replay took only %g s", el);
  ck_assert_uint_eq(myelin_harness_count(h, "out"), NT);
  for (int t = 0; t < NT; t++) {
    myelin_msg *m = myelin_harness_output(h, "out", (size_t)t);
    ck_assert_str_eq(myelin_msg_kind(m), "volume");
    int64_t idx;
    double tt;
    ck_assert_int_eq(myelin_msg_int(m, "index", &idx), 0);
    ck_assert_int_eq(idx, t);
    ck_assert_int_eq(myelin_msg_float(m, "t", &tt), 0);
    ck_assert_double_eq_tol(tt, 0.05 * t, 1e-9);
    myelin_tensor x;
    ck_assert_int_eq(myelin_msg_tensor(m, "data", &x), 0);
    ck_assert_int_eq(x.ndim, 1);
    ck_assert_float_eq_tol(((const float *)x.data)[nifti_corder(3, 2, 1, NY, NZ)], val(2, 1, 3, 2, 1, t),
                           1e-3);
  }
  myelin_harness_free(h);
  free(params);
  /* with trim, t is the acquisition time: (index + trim) * tr */
  params = mt_strf("{path: %s, emit: volume, trim: 2, tr: 1.5}", run);
  h = run_source(params);
  ck_assert_uint_eq(myelin_harness_count(h, "out"), NT - 2);
  double t0;
  int64_t i0;
  ck_assert_int_eq(myelin_msg_float(myelin_harness_output(h, "out", 0), "t", &t0), 0);
  ck_assert_int_eq(myelin_msg_int(myelin_harness_output(h, "out", 0), "index", &i0), 0);
  ck_assert_double_eq_tol(t0, 3.0, 1e-9);
  ck_assert_int_eq(i0, 0);
  myelin_harness_free(h);
  free(params);
  /* linear detrend of a linear-in-t series leaves ~0 */
  params = mt_strf("{path: %s, detrend: 1}", run);
  h = run_source(params);
  int64_t T, V;
  const float *d = tensor2(myelin_harness_output(h, "out", 0), &T, &V);
  for (int64_t i = 0; i < T * V; i++)
    ck_assert_float_eq_tol(d[i], 0.0f, 2e-2);
  myelin_harness_free(h);
  free(params);
  free(run);
  free(root);
}
END_TEST

/* ---- live folder ---------------------------------------------------------- */

typedef struct live_ctx {
  char *dir;
  int n;
} live_ctx;

static void msleep(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Writes n 3-D volumes; each lands in two pieces 40 ms apart (or, every
 * third one, under a dot-name then renamed). */
static void *live_writer(void *arg) {
  live_ctx *c = arg;
  char *tmp = mt_strf("%s/.scratch", c->dir);
  mkdirs(tmp);
  for (int t = 0; t < c->n; t++) {
    subrun sr = {3, 1};
    char *whole = mt_strf("%s/vol.nii", tmp);
    size_t nvox = (size_t)NX * NY * NZ;
    float *d = malloc(nvox * sizeof *d);
    for (int z = 0; z < NZ; z++)
      for (int y = 0; y < NY; y++)
        for (int x = 0; x < NX; x++)
          d[nifti_forder(x, y, z, NX, NY)] = (float)val(sr.sub, sr.run, x, y, z, t);
    int64_t dims[4] = {NX, NY, NZ, 1};
    FILE *fp = fopen(whole, "wb");
    char err[256];
    ck_assert_int_eq(nifti_write_f32(fp, dims, AFF, 0, d, 0, err, sizeof err), 0);
    fclose(fp);
    free(d);
    size_t len;
    fp = fopen(whole, "rb");
    fseek(fp, 0, SEEK_END);
    len = (size_t)ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *bytes = malloc(len);
    ck_assert_uint_eq(fread(bytes, 1, len, fp), len);
    fclose(fp);
    char *final = mt_strf("%s/sub-03_task-live_run-1_vol%04d.nii", c->dir, t);
    if (t % 3 == 2) {
      char *hidden = mt_strf("%s/.incoming%04d", c->dir, t);
      fp = fopen(hidden, "wb");
      fwrite(bytes, 1, len, fp);
      fclose(fp);
      ck_assert_int_eq(rename(hidden, final), 0);
      free(hidden);
    } else {
      fp = fopen(final, "wb");
      fwrite(bytes, 1, 200, fp); /* a partial header first */
      fflush(fp);
      msleep(40);
      fwrite(bytes + 200, 1, len - 200, fp);
      fclose(fp);
    }
    msleep(30);
    free(final);
    free(bytes);
    free(whole);
  }
  free(tmp);
  return NULL;
}

START_TEST(live_folder_volumes) {
  live_ctx c = {mt_tmpdir(), 8};
  char *root = mt_tmpdir();
  char *mask = mt_strf("%s/mask.nii", root);
  write_nifti(mask, 1, f_mask, NULL);
  pthread_t th;
  ck_assert_int_eq(pthread_create(&th, NULL, live_writer, &c), 0);
  char *params = mt_strf("{watch: %s, pattern: 'sub-*.nii', settle_ms: 1000, count: %d, idle_timeout: 30, "
                         "mask: %s}",
                         c.dir, c.n, mask);
  myelin_harness *h = run_source(params);
  pthread_join(th, NULL);
  ck_assert_uint_eq(myelin_harness_count(h, "out"), (size_t)c.n);
  for (int t = 0; t < c.n; t++) {
    myelin_msg *m = myelin_harness_output(h, "out", (size_t)t);
    ck_assert_str_eq(myelin_msg_kind(m), "volume");
    int64_t idx;
    ck_assert_int_eq(myelin_msg_int(m, "index", &idx), 0);
    ck_assert_int_eq(idx, t);
    char s[32];
    str_field(m, "subject", s, sizeof s);
    ck_assert_str_eq(s, "03");
    str_field(m, "task", s, sizeof s);
    ck_assert_str_eq(s, "live");
    myelin_tensor x;
    ck_assert_int_eq(myelin_msg_tensor(m, "data", &x), 0);
    ck_assert_uint_eq(x.count, NX * NY * NZ / 2);
    /* the first masked voxel is (0,0,0), the last (3,2,1) */
    ck_assert_float_eq_tol(((const float *)x.data)[0], val(3, 1, 0, 0, 0, t), 1e-3);
    ck_assert_float_eq_tol(((const float *)x.data)[x.count - 1], val(3, 1, 3, 2, 1, t), 1e-3);
  }
  myelin_harness_free(h);
  free(params);
  free(mask);
  free(root);
  free(c.dir);
}
END_TEST

/* One corrupt file in a live folder is logged and skipped; the session
 * goes on (it used to end the run with exit 1). Files already there. */
START_TEST(live_folder_skips_a_bad_file) {
  char *dir = mt_tmpdir();
  subrun sr = {4, 1};
  write_nifti(mt_strf("%s/vol001.nii", dir), 1, f_run, &sr);
  mt_write(mt_strf("%s/vol002.nii", dir), "not a NIfTI header");
  char *whole = mt_strf("%s/whole.tmp", dir);
  write_nifti(whole, 1, f_run, &sr);
  /* vol003: a truncated image (header complete, data cut) */
  long len = mt_file_size(whole);
  ck_assert_int_eq(truncate(whole, len - 40), 0);
  ck_assert_int_eq(rename(whole, mt_strf("%s/vol003.nii", dir)), 0);
  write_nifti(mt_strf("%s/vol004.nii", dir), 1, f_run, &sr);
  myelin_harness *h = run_source(mt_strf("{watch: %s, settle_ms: 100, count: 2, idle_timeout: 10}", dir));
  ck_assert_uint_eq(myelin_harness_count(h, "out"), 2);
  ck_assert_int_eq(myelin_harness_counter(h, "skipped"), 2);
  int64_t idx;
  ck_assert_int_eq(myelin_msg_int(myelin_harness_output(h, "out", 1), "index", &idx), 0);
  ck_assert_int_eq(idx, 1);
  myelin_harness_free(h);
}
END_TEST

/* Live volumes through an atlas: parcel means per volume, on the fly. */
START_TEST(live_folder_atlas) {
  live_ctx c = {mt_tmpdir(), 3};
  char *root = mt_tmpdir();
  char *atlas = mt_strf("%s/atlas.nii", root);
  write_nifti(atlas, 1, f_atlas, NULL);
  pthread_t th;
  ck_assert_int_eq(pthread_create(&th, NULL, live_writer, &c), 0);
  char *params = mt_strf("{watch: %s, pattern: 'sub-*.nii', settle_ms: 1000, count: %d, idle_timeout: 30, "
                         "atlas: %s, subject: [live7]}",
                         c.dir, c.n, atlas);
  myelin_harness *h = run_source(params);
  pthread_join(th, NULL);
  ck_assert_uint_eq(myelin_harness_count(h, "out"), (size_t)c.n);
  for (int t = 0; t < c.n; t++) {
    myelin_msg *m = myelin_harness_output(h, "out", (size_t)t);
    char s[32];
    str_field(m, "subject", s, sizeof s);
    ck_assert_str_eq(s, "live7");
    myelin_tensor x;
    ck_assert_int_eq(myelin_msg_tensor(m, "data", &x), 0);
    ck_assert_uint_eq(x.count, 2);
    double s7 = 0;
    int n7 = 0;
    for (int xx = 2; xx < NX; xx++)
      for (int z = 0; z < NZ; z++)
        s7 += val(3, 1, xx, 0, z, t), n7++;
    ck_assert_float_eq_tol(((const float *)x.data)[1], s7 / n7, 1e-3);
    ck_assert(myelin_obj_str_eq(myelin_obj_get(myelin_msg_get(m, "geometry"), "atlas"), atlas));
  }
  myelin_harness_free(h);
  free(params);
  free(atlas);
  free(root);
  free(c.dir);
}
END_TEST

/* The shipped pipelines, as users run them: pipelines/fmri_to_nifti.yaml on
 * a run, and pipelines/fmri_live.yaml on a folder, ended once by its idle
 * timeout and once by SIGINT (exit 130 after a clean drain: the collected
 * volumes are still written). */
START_TEST(shipped_pipelines) {
  const char *bin = mt_env("MYELIN_BIN", "myelin"), *src = mt_env("MYELIN_SOURCE_DIR", ".");
  char *yaml = mt_strf("%s/pipelines/fmri_live.yaml", src);
  if (access(bin, X_OK) != 0) MT_SKIP("the CLI %s is not built", bin);
  ck_assert_msg(access(yaml, R_OK) == 0, "%s is missing", yaml);
  char *root = make_bids();
  char *out = mt_strf("%s/out", root), *o = NULL;
  char *cmd = mt_strf("DATA=%s/sub-01/func/sub-01_task-story_run-2_bold.nii.gz OUT=%s %s run --quiet "
                      "%s/pipelines/fmri_to_nifti.yaml",
                      root, out, bin, src);
  ck_assert_msg(mt_run(cmd, &o) == 0, "%s", o);
  free(o);
  free(cmd);
  char *clean = mt_strf("%s/fmri/01_task-story_run-2_clean.nii.gz", out);
  ck_assert_int_gt(mt_file_size(clean), 0);

  char *in = mt_strf("%s/incoming", root);
  mkdirs(in);
  for (int t = 0; t < 4; t++) {
    char *p = mt_strf("%s/sub-05_task-rt_vol%02d.nii", in, t);
    subrun sr = {5, 1};
    write_nifti(p, 1, f_run, &sr); /* 3-D volumes (T = 1) */
    free(p);
  }
  cmd = mt_strf("WATCH=%s OUT=%s %s run --quiet %s --set scanner.idle_timeout=1.5 "
                "--set scanner.settle_ms=100",
                in, root, bin, yaml);
  ck_assert_msg(mt_run(cmd, &o) == 0, "%s", o);
  free(o);
  free(cmd);
  char *live = mt_strf("%s/live/05_live.nii.gz", root);
  nifti_reader r;
  char err[512];
  ck_assert_msg(nifti_open_file(&r, live, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(r.h.nvols, 4);
  nifti_close(&r);
  free(live);

  cmd = mt_strf("WATCH=%s OUT=%s/o2 %s run --quiet %s --set scanner.idle_timeout=0 "
                "--set scanner.settle_ms=100 & pid=$!; sleep 2; kill -INT $pid; wait $pid; echo rc=$?",
                in, root, bin, yaml);
  ck_assert_int_eq(mt_run(cmd, &o), 0);
  ck_assert_msg(strstr(o, "rc=130") != NULL, "SIGINT should end the run with 130: %s", o);
  free(o);
  free(cmd);
  live = mt_strf("%s/o2/live/05_live.nii.gz", root);
  ck_assert_msg(nifti_open_file(&r, live, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(r.h.nvols, 4);
  nifti_close(&r);
  free(live);
  free(in);
  free(clean);
  free(out);
  free(root);
  free(yaml);
}
END_TEST

START_TEST(bad_inputs_are_errors) {
  char msg[1024];
  ck_assert(source_fails("{path: /nonexistent/x.nii.gz}", msg, sizeof msg));
  ck_assert_msg(strstr(msg, "/nonexistent/x.nii.gz") != NULL, "%s", msg);
  ck_assert(source_fails("{path: x.nii, watch: /tmp}", msg, sizeof msg));
  ck_assert_msg(strstr(msg, "exactly one") != NULL, "%s", msg);
  ck_assert(source_fails("{path: x.nii, mask: /nonexistent/mask.nii}", msg, sizeof msg));
  ck_assert_msg(strstr(msg, "/nonexistent/mask.nii") != NULL, "%s", msg);
  ck_assert(source_fails("{path: x.nii, atlas: /nonexistent/atlas.nii.gz}", msg, sizeof msg));
  ck_assert_msg(strstr(msg, "/nonexistent/atlas.nii.gz") != NULL, "%s", msg);
  ck_assert(source_fails("{watch: /tmp, mask: auto}", msg, sizeof msg));
  ck_assert_msg(strstr(msg, "auto") != NULL, "%s", msg);
  char *dir = mt_tmpdir();
  char *bad = mt_strf("%s/sub-01_task-x_bold.nii", dir);
  mt_write(bad, "this is not a NIfTI file, but it is long enough to hold a header ......");
  char *params = mt_strf("{path: %s}", dir);
  ck_assert(source_fails(params, msg, sizeof msg));
  ck_assert_msg(strstr(msg, "sub-01_task-x_bold.nii") != NULL, "%s", msg);
  free(params);
  params = mt_strf("{path: %s, trim: 50}", NB_DATA "/functional.nii");
  if (mt_have_file(NB_DATA "/functional.nii", "python3-nibabel's test data")) {
    ck_assert(source_fails(params, msg, sizeof msg));
    ck_assert_msg(strstr(msg, "trim") != NULL, "%s", msg);
  }
  free(params);
  free(bad);
  free(dir);
}
END_TEST

/* A CIFTI-2 dense connectome (nibabel's row_major.dconn.nii, committed in
 * tests/data) is read as CIFTI (not as a (1,1,1,100) volume run), and
 * refused by name as a connectome: its rows are brain models, not TRs. */
START_TEST(cifti_is_refused) {
  char *path = mt_strf("%s/tests/data/nibabel/row_major.dconn.nii", mt_env("MYELIN_SOURCE_DIR", "."));
  ck_assert_msg(access(path, R_OK) == 0, "%s is missing", path);
  char *params = mt_strf("{path: %s}", path), msg[1024];
  ck_assert(source_fails(params, msg, sizeof msg));
  ck_assert_msg(strstr(msg, "row_major.dconn.nii: a connectome (CIFTI_INDEX_TYPE_BRAIN_MODELS x "
                            "CIFTI_INDEX_TYPE_BRAIN_MODELS), not a run"),
                "%s", msg);
  free(params);
  free(path);
}
END_TEST

/* detrend with an order >= T - 1 fits every series exactly: the output is 0
 * (not rounding noise z-scored to +-1) and stderr says why, naming the
 * file, the param and T. The demo's default input has enough volumes for a
 * meaningful output (issue 15 item 6). */
static float *read_first_image(const char *dir, nifti_header *h) {
  DIR *d = opendir(dir);
  ck_assert_msg(d != NULL, "%s: no output folder", dir);
  struct dirent *e;
  char *path = NULL;
  while ((e = readdir(d)))
    if (strstr(e->d_name, ".nii.gz")) path = mt_strf("%s/%s", dir, e->d_name);
  closedir(d);
  ck_assert_msg(path != NULL, "%s: no image written", dir);
  nifti_reader r;
  char err[512];
  ck_assert_msg(nifti_open_file(&r, path, err, sizeof err) == 0, "%s", err);
  *h = r.h;
  float *img = malloc(r.h.nvox * r.h.nvols * sizeof *img);
  ck_assert_int_eq(nifti_read_volumes(&r, r.h.nvols, NULL, r.h.nvox, img, r.h.nvox, err, sizeof err), 0);
  nifti_close(&r);
  free(path);
  return img;
}

START_TEST(detrend_order_too_high_warns) {
  const char *bin = mt_env("MYELIN_BIN", "myelin"), *src = mt_env("MYELIN_SOURCE_DIR", ".");
  if (access(bin, X_OK) != 0) MT_SKIP("the CLI %s is not built", bin);
  char *dir = mt_tmpdir();
  char *two = mt_strf("%s/sub-07_task-x_run-1_bold.nii.gz", dir), *o = NULL;
  subrun sr = {7, 1};
  write_nifti(two, 2, f_run, &sr);
  char *cmd = mt_strf("DATA=%s OUT=%s/out %s run %s/pipelines/fmri_to_nifti.yaml", two, dir, bin, src);
  ck_assert_msg(mt_run(cmd, &o) == 0, "%s", o);
  ck_assert_msg(strstr(o, "sub-07_task-x_run-1_bold.nii.gz: param detrend = 1 with T = 2 volumes") &&
                    strstr(o, "warn"),
                "%s", o);
  free(o);
  free(cmd);
  char *out = mt_strf("%s/out/fmri", dir);
  nifti_header h;
  float *img = read_first_image(out, &h);
  ck_assert_int_eq(h.nvols, 2);
  for (size_t i = 0; i < h.nvox * 2; i++)
    ck_assert_msg(img[i] == 0.0f, "voxel %zu = %g, not 0", i, img[i]);
  free(img);
  free(out);

  /* the demo as shipped: no warning, a z-scored output */
  if (mt_have_file("/usr/lib/python3/dist-packages/nibabel/tests/data/functional.nii",
                   "python3-nibabel's test data")) {
    cmd = mt_strf("OUT=%s/demo %s run %s/pipelines/fmri_to_nifti.yaml", dir, bin, src);
    ck_assert_msg(mt_run(cmd, &o) == 0, "%s", o);
    ck_assert_msg(strstr(o, "detrend") == NULL, "%s", o);
    free(o);
    free(cmd);
    out = mt_strf("%s/demo/fmri", dir);
    img = read_first_image(out, &h);
    ck_assert_uint_ge(h.nvols, 10);
    size_t kept = 0;
    for (size_t v = 0; v < h.nvox; v++) {
      double ss = 0;
      for (size_t t = 0; t < h.nvols; t++)
        ss += (double)img[t * h.nvox + v] * img[t * h.nvox + v];
      if (ss == 0) continue; /* outside the auto mask */
      kept++;
      ck_assert_double_eq_tol(ss / (double)h.nvols, 1.0, 1e-3); /* unit variance */
    }
    ck_assert_uint_gt(kept, h.nvox / 4);
    free(img);
    free(out);
  }
  free(two);
  free(dir);
}
END_TEST

int main(void) {
  Suite *s = suite_create("fmri_source");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, single_file_matches_nibabel);
  tcase_add_test(tc, bids_discovery_and_filters);
  tcase_add_test(tc, bids_sessions);
  tcase_add_test(tc, archives_read_in_place);
  tcase_add_test(tc, mask_file_auto_and_atlas);
  tcase_add_test(tc, volumes_detrend_and_realtime_pace);
  tcase_add_test(tc, live_folder_volumes);
  tcase_add_test(tc, live_folder_atlas);
  tcase_add_test(tc, live_folder_skips_a_bad_file);
  tcase_add_test(tc, shipped_pipelines);
  tcase_add_test(tc, bad_inputs_are_errors);
  tcase_add_test(tc, cifti_is_refused);
  tcase_add_test(tc, detrend_order_too_high_warns);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
