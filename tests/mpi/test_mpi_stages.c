/*
 * tests/mpi/test_mpi_stages.c — the stages that combine results across ranks
 * (isc, encoding, info_content, file_sink; docs/mpi.md) run as real pipeline
 * files under `mpirun --oversubscribe -n 1/2/4` of an MPI build. Subjects are
 * dealt to ranks by file_source `shard: file` (one file per subject or run);
 * stages.py writes the data and compares the maps of 2 and 4 ranks with the
 * 1-rank maps: bit for bit where no reduction is involved (per-subject
 * encoding and info_content maps, with one BLAS thread), within 1e-12 where
 * one is (ISC rows come from the sum over subjects; encoding averages); a
 * rerun is bit-identical; a rank that fails leaves no group output. isc on
 * fmri_source `shard: voxels` (all subjects, a slab of voxels per rank)
 * equals the 1-rank unsharded map bit for bit.
 */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static const char *bin(void) { return mt_env("MYELIN_BIN", "myelin"); }
static const char *py(void) { return mt_env("MYELIN_PYTHON", "/usr/bin/python3"); }
static char *stages_py(void) { return mt_strf("%s/tests/mpi/stages.py", mt_env("MYELIN_SOURCE_DIR", ".")); }

static void mpi_env(void) {
  setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
  setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
  setenv("OMPI_MCA_rmaps_base_oversubscribe", "1", 1);
  setenv("OPENBLAS_NUM_THREADS", "1", 1); /* threaded DGEMM sums in another order per thread count */
}

/* Runs FILE on n ranks with OUT=out; returns the exit code, output in *log. */
/* The job left nothing in out (absent or empty folder). */
static void assert_no_output(const char *out, const char *after) {
  char *log;
  int rc = mt_run(mt_strf("test ! -e %s || test -z \"$(ls -A %s)\"", out, out), &log);
  ck_assert_msg(rc == 0, "%s holds files after the %s", out, after);
  free(log);
}

static int run_on(int n, const char *file, const char *out, char **log) {
  return mt_run(mt_strf("OUT=%s mpirun --oversubscribe -n %d %s run --quiet %s", out, n, bin(), file), log);
}

static void run_ok(int n, const char *file, const char *out) {
  char *log;
  int rc = run_on(n, file, out, &log);
  ck_assert_msg(rc == 0, "%d ranks, %s: exit %d:\n%s", n, file, rc, log);
  free(log);
}

static void same_maps(const char *a, const char *b, const char *tol) {
  char *log;
  int rc = mt_run(mt_strf("%s %s compare %s %s %s", py(), stages_py(), a, b, tol), &log);
  ck_assert_msg(rc == 0, "%s vs %s (tolerance %s):\n%s", a, b, tol, log);
  free(log);
}

static void make_data(const char *kind, const char *dir, const char *extra) {
  char *log;
  int rc = mt_run(mt_strf("%s %s %s %s %s", py(), stages_py(), kind, dir, extra), &log);
  ck_assert_msg(rc == 0, "stages.py %s:\n%s", kind, log);
  free(log);
}

static char *write_pipeline(const char *d, const char *name, const char *stages) {
  char *f = mt_strf("%s/%s", d, name);
  mt_write(f, mt_strf("name: %s\nstages:\n%s", name, stages));
  return f;
}

/* Exactly the names listed (space separated, sorted) are in dir: no
 * temporary or per-rank leftovers. */
static void dir_holds(const char *dir, const char *names) {
  char *log;
  int rc = mt_run(mt_strf("ls -A %s | sort | tr '\\n' ' '", dir), &log);
  ck_assert_msg(rc == 0 && !strcmp(log, mt_strf("%s ", names)), "%s holds '%s', expected '%s '", dir, log,
                names);
  free(log);
}

#define NEED_MPI_PYTHON()                                                                                    \
  do {                                                                                                       \
    MT_NEED_PYTHON("numpy msgpack", "tests/mpi stages.py");                                                  \
    mpi_env();                                                                                               \
  } while (0)

static char *isc_pipeline(const char *d, const char *name, const char *data, const char *params) {
  return write_pipeline(
      d, name,
      mt_strf("  - {id: runs, plugin: file_source, params: {path: '%s/sub-*.mpk', shard: file}}\n"
              "  - {id: isc, plugin: isc, inputs: [runs], params: {%s}}\n"
              "  - {id: out, plugin: file_sink, inputs: [isc.map], params: {path: '${OUT}/isc.mpk'}}\n"
              "  - {id: npy, plugin: npy_sink, inputs: [isc.map], params: {path: '${OUT}/isc_{task}.npy', "
              "field: summary}}\n",
              data, params));
}

/* Leave-one-out ISC with the subjects on n ranks equals one rank's: float32
 * data (one magnitude: the float64 sums are exact, and so is everything);
 * float64 data spread over 6 orders of magnitude (the sums round: rows within
 * 1e-12, and a rerun is bit-identical); NaN rules, bootstrap, sign-flip and
 * two-sample permutation tests. Group outputs are written once. */
static void isc_equal(int n) {
  NEED_MPI_PYTHON();
  char *d = mt_tmpdir(), *f4 = mt_strf("%s/f4", d), *f8 = mt_strf("%s/f8", d);
  make_data("isc", f4, "");
  make_data("isc", f8, "--spread");
  static const char *const cases[][3] = {
      {"f4", "summary: mean, stats: bootstrap, n_resamples: 60, tolerate_nans: true", "0"},
      {"f4",
       "summary: median, stats: permutation, n_resamples: 60, groups: '01:a,02:a,03:a,04:b,05:b,06:b,07:b', "
       "tolerate_nans: 0.7",
       "0"},
      {"f4", "summary: mean, stats: permutation, n_resamples: 1000, tolerate_nans: false", "0"},
      {"f8", "summary: mean, stats: bootstrap, n_resamples: 60", "1e-12"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    char *f = isc_pipeline(d, mt_strf("isc%zu.yaml", c), !strcmp(cases[c][0], "f4") ? f4 : f8, cases[c][1]);
    char *one = mt_strf("%s/one%zu", d, c), *many = mt_strf("%s/many%zu", d, c);
    run_ok(1, f, one);
    run_ok(n, f, many);
    same_maps(mt_strf("%s/isc.mpk", one), mt_strf("%s/isc.mpk", many), cases[c][2]);
    dir_holds(many, "isc.mpk isc_story.npy");
    if (n == 4 && c == 3) { /* the rounded sums: a rerun is the same bytes */
      char *again = mt_strf("%s/again", d), *log;
      run_ok(n, f, again);
      ck_assert_msg(mt_run(mt_strf("cmp %s/isc.mpk %s/isc.mpk", many, again), &log) == 0, "rerun differs: %s",
                    log);
      free(log);
    }
  }
}

START_TEST(isc_2_ranks) { isc_equal(2); }
END_TEST
START_TEST(isc_4_ranks) { isc_equal(4); }
END_TEST

/* Per-subject encoding maps on their own ranks are one rank's, bit for bit;
 * average_subjects adds the ranks' sums (within 1e-12). */
static void encoding_equal(int n) {
  NEED_MPI_PYTHON();
  char *d = mt_tmpdir(), *data = mt_strf("%s/data", d);
  make_data("encoding", data, "");
  for (int avg = 0; avg < 2; avg++) {
    char *f = write_pipeline(
        d, mt_strf("enc%d.yaml", avg),
        mt_strf("  - {id: feats, plugin: file_source, params: {path: '%s/features.mpk'}}\n"
                "  - {id: runs, plugin: file_source, params: {path: '%s/sub-*.mpk', shard: file}}\n"
                "  - {id: enc, plugin: encoding, inputs: {features: [feats], brain: [runs]},\n"
                "     params: {delays: [0, 1, 2], folds: 3, average_subjects: %s}}\n"
                "  - {id: out, plugin: file_sink, inputs: [enc], params: {path: '${OUT}/enc.mpk'}}\n",
                data, data, avg ? "true" : "false"));
    char *one = mt_strf("%s/one%d", d, avg), *many = mt_strf("%s/many%d", d, avg);
    run_ok(1, f, one);
    run_ok(n, f, many);
    same_maps(mt_strf("%s/enc.mpk", one), mt_strf("%s/enc.mpk", many), avg ? "1e-12" : "0");
    dir_holds(many, "enc.mpk");
  }
}

START_TEST(encoding_2_ranks) { encoding_equal(2); }
END_TEST
START_TEST(encoding_4_ranks) { encoding_equal(4); }
END_TEST

/* info_content with each run in its own file, named by task first, so that
 * shard: file puts subjects' rest runs (their references) on other ranks
 * than their task runs: the references are shared, the maps are one rank's
 * bit for bit. */
static void info_content_equal(int n) {
  NEED_MPI_PYTHON();
  char *d = mt_tmpdir(), *data = mt_strf("%s/data", d);
  make_data("info_content", data, "");
  char *f = write_pipeline(
      d, "ic.yaml",
      mt_strf("  - {id: runs, plugin: file_source, params: {path: '%s/task-*.mpk', shard: file}}\n"
              "  - {id: conn, plugin: dataset, params: {path: '%s/connectome.npy', whole: true}}\n"
              "  - {id: info, plugin: info_content, inputs: {run: [runs], connectome: [conn]},\n"
              "     params: {reference_task: rest, energy: weninger, null: 3, seed: 2}}\n"
              "  - {id: out, plugin: file_sink, inputs: [info.map], params: {path: '${OUT}/info.mpk'}}\n",
              data, data));
  char *one = mt_strf("%s/one", d), *many = mt_strf("%s/many", d);
  run_ok(1, f, one);
  run_ok(n, f, many);
  same_maps(mt_strf("%s/info.mpk", one), mt_strf("%s/info.mpk", many), "0");
  dir_holds(many, "info.mpk");
}

START_TEST(info_content_2_ranks) { info_content_equal(2); }
END_TEST
START_TEST(info_content_4_ranks) { info_content_equal(4); }
END_TEST

/* fmri_source `shard: voxels` (every rank all subjects, a z-slab of the
 * voxels; 3 planes, so 4 ranks leave one rank without voxels): pairwise and
 * leave-one-out ISC with their statistics equal the 1-rank unsharded map bit
 * for bit (rows, summary, p, ci, two-sample fields, geometry.voxels of the
 * whole run), and the NIfTI and .npy written from it are the 1-rank files. */
static char *isc_voxels_pipeline(const char *d, const char *name, const char *data, const char *shard,
                                 const char *params) {
  return write_pipeline(
      d, name,
      mt_strf(
          "  - {id: runs, plugin: fmri_source, params: {path: '%s/sub-*_bold.nii.gz', mask: "
          "'%s/mask.nii.gz', "
          "shard: %s}}\n"
          "  - {id: isc, plugin: isc, inputs: [runs], params: {%s}}\n"
          "  - {id: out, plugin: file_sink, inputs: [isc.map], params: {path: '${OUT}/isc.mpk'}}\n"
          "  - {id: nii, plugin: nifti_sink, inputs: [isc.map], params: {path: '${OUT}/isc_{task}.nii.gz', "
          "field: summary}}\n"
          "  - {id: npy, plugin: npy_sink, inputs: [isc.map], params: {path: '${OUT}/isc_{task}.npy', "
          "field: summary}}\n",
          data, data, shard, params));
}

static void isc_voxels_equal(int n) {
  MT_NEED_PYTHON("numpy msgpack nibabel", "tests/mpi stages.py");
  mpi_env();
  char *d = mt_tmpdir(), *data = mt_strf("%s/data", d), *log;
  make_data("isc_nifti", data, "");
  static const char *const cases[] = {
      "pairwise: true, summary: mean, stats: bootstrap, n_resamples: 50, tolerate_nans: true",
      "pairwise: true, summary: median, stats: permutation, groups: '01:a,02:a,03:a,04:b,05:b,06:b'",
      "pairwise: true, summary: mean, stats: timeshift, n_resamples: 20, tolerate_nans: 0.7",
      "summary: mean, stats: permutation, n_resamples: 100, tolerate_nans: false",
      "summary: median, stats: phaseshift, n_resamples: 20, tolerate_nans: 0.7",
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    char *whole = isc_voxels_pipeline(d, mt_strf("whole%zu.yaml", c), data, "none", cases[c]);
    char *slabs = isc_voxels_pipeline(d, mt_strf("slabs%zu.yaml", c), data, "voxels", cases[c]);
    char *one = mt_strf("%s/one%zu", d, c), *many = mt_strf("%s/many%zu", d, c);
    run_ok(1, whole, one);
    run_ok(n, slabs, many);
    same_maps(mt_strf("%s/isc.mpk", one), mt_strf("%s/isc.mpk", many), "0");
    int rc =
        mt_run(mt_strf("%s %s same_nifti %s/isc_story.nii.gz %s/isc_story.nii.gz && cmp %s/isc_story.npy "
                       "%s/isc_story.npy",
                       py(), stages_py(), many, one, many, one),
               &log);
    ck_assert_msg(rc == 0, "%d ranks, case %zu: written maps differ:\n%s", n, c, log);
    free(log);
    dir_holds(many, "isc.mpk isc_story.nii.gz isc_story.npy");
  }
}

START_TEST(isc_voxels_1_rank) { isc_voxels_equal(1); }
END_TEST
START_TEST(isc_voxels_2_ranks) { isc_voxels_equal(2); }
END_TEST
START_TEST(isc_voxels_4_ranks) { isc_voxels_equal(4); }
END_TEST

/* ISFC with fmri_source `shard: voxels`: each rank z-scores its slab of
 * every subject and of the leave-one-out means, the ranks broadcast their
 * slabs in turn, and rank 0 assembles the [rows, V, V] (or summarized
 * [V, V]) tensor: the 1-rank unsharded ISFC within 1e-12 (the dot products
 * over TRs come from dgemm on [n_rank, T] x [T, n_rank'] blocks instead of one
 * [V, T] x [T, V] product, and BLAS sums an element in a shape-dependent
 * order: 2.2e-16 measured), NaN in the same places, leave-one-out with
 * planted NaNs (tolerate_nans true and false), pairwise with a threshold and
 * the median; the ISC map alongside bit for bit; a rerun on as many ranks
 * gives the same bytes. */
static void isfc_voxels_equal(int n) {
  MT_NEED_PYTHON("numpy msgpack nibabel", "tests/mpi stages.py");
  mpi_env();
  char *d = mt_tmpdir(), *data = mt_strf("%s/data", d);
  make_data("isc_nifti", data, "");
  static const char *const cases[] = {
      "isfc: true, tolerate_nans: true",
      "isfc: true, summary: mean, tolerate_nans: false",
      "isfc: true, pairwise: true, summary: median, tolerate_nans: 0.7",
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    char *one = mt_strf("%s/one%zu", d, c), *many = mt_strf("%s/many%zu", d, c);
    for (int k = 0; k < 2; k++)
      run_ok(k ? n : 1,
             write_pipeline(
                 d, mt_strf("isfc%zu_%d.yaml", c, k),
                 mt_strf(
                     "  - {id: runs, plugin: fmri_source, params: {path: '%s/sub-*_bold.nii.gz', mask: "
                     "'%s/mask.nii.gz', shard: %s}}\n"
                     "  - {id: isc, plugin: isc, inputs: [runs], params: {%s}}\n"
                     "  - {id: out, plugin: file_sink, inputs: [isc.map], params: {path: '${OUT}/isc.mpk'}}\n"
                     "  - {id: fc, plugin: file_sink, inputs: [isc.isfc], params: {path: "
                     "'${OUT}/isfc.mpk'}}\n",
                     data, data, k ? "voxels" : "none", cases[c])),
             k ? many : one);
    same_maps(mt_strf("%s/isfc.mpk", one), mt_strf("%s/isfc.mpk", many), "1e-12");
    same_maps(mt_strf("%s/isc.mpk", one), mt_strf("%s/isc.mpk", many), "0");
    dir_holds(many, "isc.mpk isfc.mpk");
    if (c == 0) { /* the same ranks give the same bytes on a rerun */
      char *again = mt_strf("%s/again", d), *log;
      run_ok(n, mt_strf("%s/isfc0_1.yaml", d), again);
      ck_assert_msg(mt_run(mt_strf("cmp %s/isfc.mpk %s/isfc.mpk", many, again), &log) == 0,
                    "rerun differs: %s", log);
      free(log);
    }
  }
}

START_TEST(isfc_voxels_2_ranks) { isfc_voxels_equal(2); }
END_TEST
START_TEST(isfc_voxels_4_ranks) { isfc_voxels_equal(4); }
END_TEST

/* Runs marked as voxel slabs but dealt by subject (each rank other
 * subjects) are refused by rank 0 naming the rank, with no output. */
START_TEST(voxel_slabs_of_other_subjects_refused) {
  NEED_MPI_PYTHON();
  char *d = mt_tmpdir(), *data = mt_strf("%s/data", d), *out = mt_strf("%s/out", d), *log;
  make_data("isc_slabs", data, "");
  int rc = run_on(2, isc_pipeline(d, "slabs.yaml", data, "pairwise: true, summary: mean"), out, &log);
  ck_assert_msg(rc != 0 && strstr(log, "rank 1 holds other runs than rank 0") && strstr(log, "shard: voxels"),
                "exit %d:\n%s", rc, log);
  free(log);
  assert_no_output(out, "refusal");
}
END_TEST

/* A bad file on rank 2 of 4 stops the job with the file named, and leaves no
 * group output (no isc.mpk, no .npy, no temporary file). */
START_TEST(failing_rank_leaves_no_group_output) {
  NEED_MPI_PYTHON();
  char *d = mt_tmpdir(), *data = mt_strf("%s/data", d);
  make_data("isc", data, "");
  mt_write(mt_strf("%s/sub-05.mpk", data), "not a message stream"); /* files 4..6 of 7 are rank 2's */
  char *f = isc_pipeline(d, "bad.yaml", data, "summary: mean");
  char *out = mt_strf("%s/out", d), *log;
  int rc = run_on(4, f, out, &log);
  ck_assert_msg(rc != 0 && strstr(log, "sub-05.mpk"), "exit %d:\n%s", rc, log);
  free(log);
  assert_no_output(out, "failure");
}
END_TEST

/* With more ranks than subjects some ranks receive nothing: still one file
 * of each, the 1-rank maps. */
START_TEST(ranks_without_subjects) {
  NEED_MPI_PYTHON();
  char *d = mt_tmpdir(), *data = mt_strf("%s/data", d), *log;
  make_data("isc", data, "");
  for (int s = 4; s <= 7; s++)
    mt_run(mt_strf("rm %s/sub-%02d.mpk", data, s), &log), free(log);
  char *f = isc_pipeline(d, "few.yaml", data, "summary: mean, stats: permutation");
  char *one = mt_strf("%s/one", d), *many = mt_strf("%s/many", d);
  run_ok(1, f, one);
  run_ok(4, f, many);
  same_maps(mt_strf("%s/isc.mpk", one), mt_strf("%s/isc.mpk", many), "0");
  dir_holds(many, "isc.mpk isc_story.npy");
}
END_TEST

/* npy_sink on several ranks. .npz with one path for every rank: one
 * archive per job, rank 0 adding the other ranks' arrays after its own (the
 * 1-rank archive's arrays, checked by numpy); with a path per rank, an
 * archive per rank holding its own arrays; a key two ranks use is an error
 * naming the rank, leaving no archive. .npy: a file two ranks write is an
 * error naming both ranks and the path (before: exit 0, one rank's array
 * silently replaced by the other's). */
static char *npy_pipeline(const char *d, const char *name, const char *data, const char *params) {
  return write_pipeline(
      d, name,
      mt_strf("  - {id: runs, plugin: file_source, params: {path: '%s/sub-*.mpk', shard: file}}\n"
              "  - {id: save, plugin: npy_sink, inputs: [runs], params: {%s}}\n",
              data, params));
}

static void npz_holds(const char *npz, const char *keys, const char *data) {
  char *log;
  int rc = mt_run(
      mt_strf("%s -c \"import numpy as np, msgpack, sys\n"
              "z = np.load('%s')\n"
              "want = '%s'.split()\n"
              "assert sorted(z.files) == want, (z.files, want)\n"
              "for k in want:\n"
              "    m = next(iter(msgpack.Unpacker(open('%s/sub-' + k[3:] + '.mpk', 'rb'), raw=False)))\n"
              "    x = np.frombuffer(m['data']['data'], m['data']['dtype']).reshape(m['data']['shape'])\n"
              "    assert z[k].tobytes() == x.tobytes() and z[k].shape == x.shape, k\n\"",
              py(), npz, keys, data),
      &log);
  ck_assert_msg(rc == 0, "%s:\n%s", npz, log);
  free(log);
}

START_TEST(npy_sink_2_ranks) {
  NEED_MPI_PYTHON();
  char *d = mt_tmpdir(), *data = mt_strf("%s/data", d), *log;
  make_data("isc", data, "");
  for (int s = 4; s <= 7; s++) /* 3 subjects: rank 0 holds 01, 02; rank 1 holds 03 */
    mt_run(mt_strf("rm %s/sub-%02d.mpk", data, s), &log), free(log);
  char *one = mt_strf("%s/one", d), *two = mt_strf("%s/two", d);
  char *f = npy_pipeline(d, "npz.yaml", data, "path: '${OUT}/runs_{task}.npz', key: 'sub{subject}'");
  run_ok(1, f, one);
  run_ok(2, f, two);
  npz_holds(mt_strf("%s/runs_story.npz", one), "sub01 sub02 sub03", data);
  npz_holds(mt_strf("%s/runs_story.npz", two), "sub01 sub02 sub03", data);
  dir_holds(two, "runs_story.npz");

  char *per = mt_strf("%s/per", d);
  run_ok(2,
         npy_pipeline(d, "per.yaml", data,
                      "path: '${OUT}/part${OMPI_COMM_WORLD_RANK}.npz', key: 'sub{subject}'"),
         per);
  npz_holds(mt_strf("%s/part0.npz", per), "sub01 sub02", data);
  npz_holds(mt_strf("%s/part1.npz", per), "sub03", data);
  dir_holds(per, "part0.npz part1.npz");

  char *dup = mt_strf("%s/dup", d);
  int rc = run_on(2, npy_pipeline(d, "dup.yaml", data, "path: '${OUT}/runs.npz', key: 'run{task}{seq}'"), dup,
                  &log);
  ck_assert_msg(rc != 0 && strstr(log, "rank 1") && strstr(log, "duplicate array name 'runstory0'"),
                "exit %d:\n%s", rc, log);
  free(log);
  assert_no_output(dup, "duplicate key");

  for (int s = 2; s <= 3; s++) /* 1 subject per rank: each rank alone writes x_story.npy once */
    mt_run(mt_strf("rm -f %s/sub-%02d.mpk", data, s), &log), free(log);
  mt_run(mt_strf("cp %s/sub-01.mpk %s/sub-02.mpk", data, data), &log), free(log);
  char *npy = mt_strf("%s/npy", d);
  rc = run_on(2, npy_pipeline(d, "npy.yaml", data, "path: '${OUT}/x_{task}.npy'"), npy, &log);
  ck_assert_msg(rc != 0 && strstr(log, "ranks 0 and 1 both wrote") && strstr(log, "x_story.npy") &&
                    strstr(log, "OMPI_COMM_WORLD_RANK"),
                "exit %d:\n%s", rc, log);
  free(log);
}
END_TEST

/* nifti_sink (and the other image sinks, map_file.h): one run per rank
 * written to the same path is an error naming both ranks and the path
 * (before: exit 0, one rank's image silently replaced); with {subject} each
 * rank writes its own. */
START_TEST(nifti_sink_same_path_2_ranks) {
  MT_NEED_PYTHON("numpy msgpack nibabel", "tests/mpi stages.py");
  mpi_env();
  char *d = mt_tmpdir(), *data = mt_strf("%s/data", d), *log;
  make_data("isc_nifti", data, "");
  mt_run(mt_strf("rm %s/sub-0[3-6]_*", data), &log), free(log); /* 2 subjects, one per rank */
  for (int k = 0; k < 2; k++) {
    char *out = mt_strf("%s/out%d", d, k);
    char *f = write_pipeline(
        d, mt_strf("nii%d.yaml", k),
        mt_strf(
            "  - {id: runs, plugin: fmri_source, params: {path: '%s/sub-*_bold.nii.gz', mask: "
            "'%s/mask.nii.gz', shard: subject}}\n"
            "  - {id: nii, plugin: nifti_sink, inputs: [runs], params: {path: '${OUT}/bold_%s.nii.gz'}}\n",
            data, data, k ? "{subject}" : "{task}"));
    if (k) {
      run_ok(2, f, out);
      dir_holds(out, "bold_01.nii.gz bold_02.nii.gz");
      continue;
    }
    int rc = run_on(2, f, out, &log);
    ck_assert_msg(rc != 0 && strstr(log, "ranks 0 and 1 both wrote") && strstr(log, "bold_story.nii.gz") &&
                      strstr(log, "nifti_sink"),
                  "exit %d:\n%s", rc, log);
    free(log);
  }
}
END_TEST

int main(void) {
  Suite *s = suite_create("mpi_stages");
  TCase *tc = tcase_create("stages");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, isc_2_ranks);
  tcase_add_test(tc, isc_4_ranks);
  tcase_add_test(tc, encoding_2_ranks);
  tcase_add_test(tc, encoding_4_ranks);
  tcase_add_test(tc, info_content_2_ranks);
  tcase_add_test(tc, info_content_4_ranks);
  tcase_add_test(tc, isc_voxels_1_rank);
  tcase_add_test(tc, isc_voxels_2_ranks);
  tcase_add_test(tc, isc_voxels_4_ranks);
  tcase_add_test(tc, isfc_voxels_2_ranks);
  tcase_add_test(tc, isfc_voxels_4_ranks);
  tcase_add_test(tc, voxel_slabs_of_other_subjects_refused);
  tcase_add_test(tc, failing_rank_leaves_no_group_output);
  tcase_add_test(tc, ranks_without_subjects);
  tcase_add_test(tc, npy_sink_2_ranks);
  tcase_add_test(tc, nifti_sink_same_path_2_ranks);
  suite_add_tcase(s, tc);
  return mt_run_suite(s);
}
