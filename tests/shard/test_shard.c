/*
 * test_shard.c — sharding across ranks (issue 23): the pure split of
 * plugins/common/shard.h, and every sharded source run as each rank of N
 * (tests/shard/rank_host.h): the ranks' outputs are disjoint and their union
 * is the 1-rank output, for N = 1..7 and uneven counts.
 */
#include <fcntl.h>
#include <math.h>
#include <sys/mman.h>
#include <zlib.h>

#include "../../plugins/common/shard.h"
#include "myelin/harness.h"
#include "myelin/io.h"
#include "nifti.h"
#include "rank_host.h"
#include "testutil.h"

/* ---- the split -------------------------------------------------------------------- */

START_TEST(shard_blocks_cover) {
  static const size_t counts[] = {0, 1, 2, 5, 6, 7, 13, 100};
  for (size_t c = 0; c < sizeof counts / sizeof *counts; c++) {
    size_t n = counts[c];
    for (int N = 1; N <= 7; N++) {
      int *owner = malloc((n ? n : 1) * sizeof *owner);
      for (size_t i = 0; i < n; i++)
        owner[i] = -1;
      size_t next = 0, lo = n, hi = 0;
      for (int r = 0; r < N; r++) {
        size_t b, e;
        shard_range(n, r, N, &b, &e);
        ck_assert_msg(b == next, "n=%zu N=%d rank %d starts at %zu, not %zu (contiguous, in order)", n, N, r,
                      b, next);
        ck_assert_uint_le(b, e);
        size_t len = e - b;
        lo = len < lo ? len : lo;
        hi = len > hi ? len : hi;
        /* the sizes: n/N, the first n%N ranks one more */
        ck_assert_uint_eq(len, n / (size_t)N + ((size_t)r < n % (size_t)N));
        for (size_t i = b; i < e; i++) {
          ck_assert_msg(owner[i] == -1, "n=%zu N=%d item %zu on ranks %d and %d", n, N, i, owner[i], r);
          owner[i] = r;
        }
        next = e;
      }
      ck_assert_msg(next == n, "n=%zu N=%d: the blocks end at %zu", n, N, next);
      ck_assert_msg(hi - lo <= 1 || n == 0, "n=%zu N=%d: block sizes %zu..%zu", n, N, lo, hi);
      for (size_t i = 0; i < n; i++) {
        ck_assert_msg(owner[i] >= 0, "n=%zu N=%d item %zu on no rank", n, N, i);
        ck_assert_int_eq(shard_owner(n, N, i), owner[i]);
      }
      ck_assert_int_eq(shard_owner(n, N, n), -1);
      /* deterministic: the same call gives the same block */
      size_t b1, e1, b2, e2;
      shard_range(n, N - 1, N, &b1, &e1);
      shard_range(n, N - 1, N, &b2, &e2);
      ck_assert(b1 == b2 && e1 == e2);
      free(owner);
    }
  }
  size_t b, e;
  shard_range(10, 3, 3, &b, &e); /* no such rank: empty */
  ck_assert_uint_eq(b, e);
  shard_range(10, 0, 0, &b, &e); /* size < 1 counts as 1 */
  ck_assert(b == 0 && e == 10);
}
END_TEST

/* ---- running a source on every rank ----------------------------------------------------- */

/* One emitted message reduced to a comparable line: its identity fields and
 * a checksum of its data. */
static char *msg_key(const myelin_msg *m, const char *const *fields) {
  char buf[4096];
  size_t o = (size_t)snprintf(buf, sizeof buf, "%s", myelin_msg_kind(m));
  for (size_t i = 0; fields[i]; i++) {
    char v[512];
    myelin_msg_text(m, fields[i], v, sizeof v);
    o += (size_t)snprintf(buf + o, sizeof buf - o, " %s=%s", fields[i], v);
  }
  myelin_tensor t;
  const char *tk = myelin_msg_tensor(m, "data", &t) == 0 ? "data"
                   : myelin_msg_tensor(m, "x", &t) == 0  ? "x"
                                                         : NULL;
  if (tk) {
    size_t n = 1;
    for (int d = 0; d < t.ndim; d++)
      n *= (size_t)t.shape[d];
    uint64_t h = 1469598103934665603ull;
    const uint8_t *p = t.data;
    for (size_t i = 0; i < n * myelin_dtype_size(t.dtype); i++)
      h = (h ^ p[i]) * 1099511628211ull;
    o += (size_t)snprintf(buf + o, sizeof buf - o, " %s=%016llx", tk, (unsigned long long)h);
  }
  return strdup(buf);
}

typedef struct keyset {
  char **v;
  size_t n;
} keyset;

static int cmp_key(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void keys_add(keyset *k, const rh_out *o, const char *const *fields) {
  k->v = realloc(k->v, (k->n + o->n + 1) * sizeof *k->v);
  for (size_t i = 0; i < o->n; i++)
    k->v[k->n++] = msg_key(o->msgs[i], fields);
}

static void keys_free(keyset *k) {
  for (size_t i = 0; i < k->n; i++)
    free(k->v[i]);
  free(k->v);
  memset(k, 0, sizeof *k);
}

/* How the tests run a source as every rank of N: outs[r] gets rank r's
 * messages. In this process through rank_host.h (N = 1..7), or with an MPI
 * build under mpirun (N = 1, 2, 4; ranks_mpi below). */
typedef int (*ranks_fn)(const char *plugin, const char *const *params, int N, rh_out *outs, char *err,
                        size_t errlen);

static int ranks_host(const char *plugin, const char *const *params, int N, rh_out *outs, char *err,
                      size_t errlen) {
  for (int r = 0; r < N; r++) {
    int rc = rh_run(plugin, params, r, N, &outs[r]);
    if (rc) {
      snprintf(err, errlen, "rank %d of %d: %s", r, N, outs[r].error);
      for (int k = 0; k <= r; k++)
        rh_out_free(&outs[k]);
      return rc;
    }
  }
  return 0;
}

static ranks_fn g_ranks = ranks_host;
static int g_counts[8] = {1, 2, 3, 4, 5, 6, 7, 0}; /* rank counts to try, 0-terminated; 1 first */

/* Runs the source as every rank of 1..7 and checks: each rank's messages
 * are its own (no message on two ranks), and the union equals the 1-rank
 * run (as sorted multisets of keys). Returns the 1-rank message count. */
static size_t check_ranks(const char *plugin, const char *const *params, const char *const *fields) {
  rh_out one;
  char err[4096];
  int rc = g_ranks(plugin, params, 1, &one, err, sizeof err);
  ck_assert_msg(rc == 0, "%s, 1 rank: %s", plugin, err);
  keyset ref = {0};
  keys_add(&ref, &one, fields);
  qsort(ref.v, ref.n, sizeof *ref.v, cmp_key);
  for (size_t i = 1; i < ref.n; i++)
    ck_assert_msg(strcmp(ref.v[i - 1], ref.v[i]) != 0, "%s: duplicate message %s in the 1-rank run", plugin,
                  ref.v[i]);
  for (int *np = g_counts + 1; *np; np++) {
    int N = *np;
    keyset all = {0};
    rh_out o[7];
    rc = g_ranks(plugin, params, N, o, err, sizeof err);
    ck_assert_msg(rc == 0, "%s: %s", plugin, err);
    for (int r = 0; r < N; r++) {
      keys_add(&all, &o[r], fields);
      rh_out_free(&o[r]);
    }
    qsort(all.v, all.n, sizeof *all.v, cmp_key);
    ck_assert_msg(all.n == ref.n, "%s: %d ranks emit %zu messages in all, 1 rank %zu", plugin, N, all.n,
                  ref.n);
    for (size_t i = 0; i < ref.n; i++)
      ck_assert_msg(strcmp(all.v[i], ref.v[i]) == 0, "%s, %d ranks: %s where 1 rank has %s", plugin, N,
                    all.v[i], ref.v[i]);
    keys_free(&all);
  }
  size_t n = one.n;
  keys_free(&ref);
  rh_out_free(&one);
  return n;
}

/* ---- fmri_source ----------------------------------------------------------------------- */

#define NX 3
#define NY 2
#define NZ 2
#define NT 4
static const double AFF[16] = {2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1};

static void write_run(const char *path, int sub, int run) {
  size_t nv = (size_t)NX * NY * NZ;
  float *d = malloc(nv * NT * sizeof *d);
  for (size_t t = 0; t < NT; t++)
    for (size_t v = 0; v < nv; v++)
      d[t * nv + v] = (float)(1000 * sub + 100 * run + (int)v) + 0.25f * (float)t;
  int64_t dims[4] = {NX, NY, NZ, NT};
  FILE *fp = fopen(path, "wb");
  ck_assert_msg(fp != NULL, "cannot write %s", path);
  char err[256];
  ck_assert_msg(nifti_write_f32(fp, dims, AFF, 2.0, d, strstr(path, ".gz") != NULL, err, sizeof err) == 0,
                "%s", err);
  fclose(fp);
  free(d);
}

/* A BIDS tree of 5 subjects (01..05); subjects 02 and 04 have two runs, the
 * others one: 7 runs. Listed in the order they sort. */
static char *make_bids(void) {
  char *root = mt_tmpdir();
  for (int s = 1; s <= 5; s++) {
    char *func = mt_strf("%s/sub-%02d/func", root, s);
    ck_assert_int_eq(mt_run(mt_strf("mkdir -p '%s'", func), NULL), 0);
    for (int r = 1; r <= (s % 2 == 0 ? 2 : 1); r++)
      write_run(mt_strf("%s/sub-%02d_task-story_run-%d_bold.nii%s", func, s, r, s == 3 ? ".gz" : ""), s, r);
  }
  return root;
}

static const char *const FMRI_KEYS[] = {"subject",       "task",   "run",       "n_subjects",
                                        "subject_index", "n_runs", "run_index", NULL};

START_TEST(fmri_shard_subject_and_run) {
  char *root = make_bids();
  const char *subj[] = {"path", root, "shard", "subject", NULL};
  ck_assert_uint_eq(check_ranks("fmri_source", subj, FMRI_KEYS), 7);
  const char *runs[] = {"path", root, "shard", "run", NULL};
  ck_assert_uint_eq(check_ranks("fmri_source", runs, FMRI_KEYS), 7);
  /* emit: volume streams, still sharded */
  const char *vols[] = {"path", root, "shard", "subject", "emit", "volume", NULL};
  ck_assert_uint_eq(check_ranks("fmri_source", vols, (const char *const[]){"subject", "run", "index", NULL}),
                    7 * NT);
  /* an archive of the tree: the same plan over its entries */
  char *tar = mt_strf("%s.tar", root);
  ck_assert_int_eq(mt_run(mt_strf("tar -cf '%s' -C '%s' .", tar, root), NULL), 0);
  const char *arch[] = {"path", tar, "shard", "subject", NULL};
  ck_assert_uint_eq(check_ranks("fmri_source", arch, FMRI_KEYS), 7);
}
END_TEST

/* DICOM: series are runs (SeriesNumber order), PatientID the subject. */
START_TEST(fmri_shard_dicom) {
  const char *data = mt_strf("%s/tests/data/dicom", mt_env("MYELIN_SOURCE_DIR", "."));
  char *dir = mt_tmpdir();
  /* 3 series of 2 patients: the 12-slice series and MR_small (4MR1), decimal_rescale (Anon) */
  ck_assert_int_eq(
      mt_run(mt_strf("cp %s/MR_small.dcm %s/decimal_rescale.dcm %s/slices/*.dcm %s/", data, data, data, dir),
             NULL),
      0);
  const char *subj[] = {"path", dir, "format", "dicom", "shard", "subject", NULL};
  ck_assert_uint_eq(check_ranks("fmri_source", subj, FMRI_KEYS), 3);
  const char *runs[] = {"path", dir, "format", "dicom", "shard", "run", NULL};
  ck_assert_uint_eq(check_ranks("fmri_source", runs, FMRI_KEYS), 3);
  /* 2 ranks by subject: rank 0 reads patient 4MR1's two series, rank 1 Anon's */
  rh_out o;
  ck_assert_msg(rh_run("fmri_source", subj, 0, 2, &o) == 0, "%s", o.error);
  ck_assert_uint_eq(o.n, 2);
  rh_out_free(&o);
  const char *vox[] = {"path", dir, "format", "dicom", "shard", "voxels", NULL};
  ck_assert_int_ne(rh_run("fmri_source", vox, 0, 2, &o), 0);
  ck_assert_msg(strstr(o.error, "DICOM"), "%s", o.error);
  rh_out_free(&o);
}
END_TEST

/* What each rank reads, and the global context every message carries. */
START_TEST(fmri_shard_context) {
  char *root = make_bids();
  const char *subj[] = {"path", root, "shard", "subject", NULL};
  /* 5 subjects on 2 ranks: 01 02 03 (4 runs) | 04 05 (3 runs) */
  static const char *const want[2][4] = {{"01", "02", "02", "03"}, {"04", "04", "05", NULL}};
  for (int r = 0; r < 2; r++) {
    rh_out o;
    ck_assert_msg(rh_run("fmri_source", subj, r, 2, &o) == 0, "%s", o.error);
    ck_assert_uint_eq(o.n, r == 0 ? 4 : 3);
    for (size_t i = 0; i < o.n; i++) {
      char sub[64];
      int64_t ns, si, nr, ri;
      ck_assert_int_eq(myelin_msg_str(o.msgs[i], "subject", sub, sizeof sub), 0);
      ck_assert_str_eq(sub, want[r][i]);
      ck_assert_int_eq(myelin_msg_int(o.msgs[i], "n_subjects", &ns), 0);
      ck_assert_int_eq(myelin_msg_int(o.msgs[i], "subject_index", &si), 0);
      ck_assert_int_eq(myelin_msg_int(o.msgs[i], "n_runs", &nr), 0);
      ck_assert_int_eq(myelin_msg_int(o.msgs[i], "run_index", &ri), 0);
      ck_assert_int_eq(ns, 5);
      ck_assert_int_eq(si, atoi(sub) - 1);
      ck_assert_int_eq(nr, 7);
      ck_assert_int_eq(ri, (int64_t)(r == 0 ? i : 4 + i));
      ck_assert_int_eq(shard_owner((size_t)ns, 2, (size_t)si), r);
    }
    rh_out_free(&o);
  }
  /* 5 subjects on 7 ranks: ranks 5 and 6 read nothing, without an error */
  for (int r = 5; r < 7; r++) {
    rh_out o;
    ck_assert_msg(rh_run("fmri_source", subj, r, 7, &o) == 0, "%s", o.error);
    ck_assert_uint_eq(o.n, 0);
    rh_out_free(&o);
  }
  /* shard: none reads everything on every rank */
  const char *none[] = {"path", root, NULL};
  rh_out o;
  ck_assert_msg(rh_run("fmri_source", none, 1, 3, &o) == 0, "%s", o.error);
  ck_assert_uint_eq(o.n, 7);
  rh_out_free(&o);
  /* filters apply before the split: the counts are of the kept runs */
  const char *filt[] = {"path", root, "shard", "subject", "subject", "[02, 05]", NULL};
  ck_assert_msg(rh_run("fmri_source", filt, 1, 2, &o) == 0, "%s", o.error);
  ck_assert_uint_eq(o.n, 1);
  int64_t ns, si;
  ck_assert_int_eq(myelin_msg_int(o.msgs[0], "n_subjects", &ns), 0);
  ck_assert_int_eq(myelin_msg_int(o.msgs[0], "subject_index", &si), 0);
  ck_assert_int_eq(ns, 2);
  ck_assert_int_eq(si, 1);
  rh_out_free(&o);
}
END_TEST

/* ---- fmri_source shard: voxels ---------------------------------------------------------- */

#define VX 4
#define VY 3
#define VZ 9
#define VT 5

static void write_grid(const char *path, int sub, int nx, int ny, int nz, int nt) {
  size_t nv = (size_t)nx * ny * nz;
  float *d = malloc(nv * (size_t)nt * sizeof *d);
  for (size_t t = 0; t < (size_t)nt; t++)
    for (size_t v = 0; v < nv; v++) /* file order; a value per voxel, time and subject */
      d[t * nv + v] = (float)(sub * 100000 + (int)v) + (float)((t * 7 + v) % 11) * 0.125f;
  int64_t dims[4] = {nx, ny, nz, nt};
  FILE *fp = fopen(path, "wb");
  ck_assert_ptr_nonnull(fp);
  char err[256];
  ck_assert_msg(nifti_write_f32(fp, dims, AFF, 2.0, d, strstr(path, ".gz") != NULL, err, sizeof err) == 0,
                "%s", err);
  fclose(fp);
  free(d);
}

/* Two subjects on a 4x3x9 grid (sub-02 gzipped) and a mask keeping an
 * irregular 2/3 of the voxels, more of them in the low planes. */
static char *make_voxel_tree(char **mask) {
  char *root = mt_tmpdir();
  for (int s = 1; s <= 2; s++) {
    char *func = mt_strf("%s/sub-%02d/func", root, s);
    ck_assert_int_eq(mt_run(mt_strf("mkdir -p '%s'", func), NULL), 0);
    write_grid(mt_strf("%s/sub-%02d_task-t_bold.nii%s", func, s, s == 2 ? ".gz" : ""), s, VX, VY, VZ, VT);
  }
  float m[VX * VY * VZ];
  for (int z = 0; z < VZ; z++)
    for (int y = 0; y < VY; y++)
      for (int x = 0; x < VX; x++)
        m[x + VX * (y + VY * z)] = (float)((x + 2 * y + z) % 3 != 0 || z < 2);
  *mask = mt_strf("%s/mask.nii", mt_tmpdir());
  FILE *fp = fopen(*mask, "wb");
  char err[256];
  ck_assert_int_eq(nifti_write_f32(fp, (const int64_t[]){VX, VY, VZ, 1}, AFF, 0, m, 0, err, sizeof err), 0);
  fclose(fp);
  return root;
}

/* Every rank's slab put back by voxel_index equals the 1-rank run, column
 * for column; every column comes from exactly one rank. */
static void check_voxel_slabs(const char *const *params_voxels, const char *const *params_none, size_t nmsg,
                              int volume) {
  rh_out one;
  char err[4096];
  ck_assert_msg(g_ranks("fmri_source", params_none, 1, &one, err, sizeof err) == 0, "%s", err);
  ck_assert_uint_eq(one.n, nmsg);
  for (int *np = g_counts; *np; np++) {
    int N = *np;
    rh_out o[7];
    ck_assert_msg(g_ranks("fmri_source", params_voxels, N, o, err, sizeof err) == 0, "%s", err);
    for (int r = 0; r < N; r++)
      ck_assert_uint_eq(o[r].n, nmsg); /* every rank emits every run, its slab of it */
    for (size_t i = 0; i < nmsg; i++) {
      myelin_tensor ref, rvox;
      ck_assert_int_eq(myelin_msg_tensor(one.msgs[i], "data", &ref), 0);
      myelin_obj geo = myelin_msg_get(one.msgs[i], "geometry");
      ck_assert_int_eq(myelin_obj_tensor(myelin_obj_get(geo, "voxels"), &rvox), 0);
      size_t T = volume ? 1 : (size_t)ref.shape[0], V = (size_t)ref.shape[volume ? 0 : 1];
      int *seen = calloc(V, sizeof *seen);
      int64_t prev_z1 = 0;
      for (int r = 0; r < N; r++) {
        const myelin_msg *m = o[r].msgs[i];
        myelin_tensor d, idx, vox;
        int64_t total;
        ck_assert_int_eq(myelin_msg_int(m, "voxel_total", &total), 0);
        ck_assert_int_eq(total, (int64_t)V);
        ck_assert_int_eq(myelin_msg_tensor(m, "data", &d), 0);
        ck_assert_int_eq(myelin_msg_tensor(m, "voxel_index", &idx), 0);
        ck_assert_int_eq(myelin_obj_tensor(myelin_obj_get(myelin_msg_get(m, "geometry"), "voxels"), &vox), 0);
        size_t n = (size_t)idx.shape[0];
        ck_assert_int_eq(d.shape[volume ? 0 : 1], (int64_t)n);
        ck_assert_int_eq(vox.shape[0], (int64_t)n);
        /* the slabs are consecutive z ranges */
        myelin_obj slab = myelin_msg_get(m, "slab");
        int64_t z0, z1;
        ck_assert_int_eq(myelin_obj_int(myelin_obj_at(slab, 0), &z0), 0);
        ck_assert_int_eq(myelin_obj_int(myelin_obj_at(slab, 1), &z1), 0);
        if (z1 > z0) {
          ck_assert_int_eq(z0, prev_z1);
          prev_z1 = z1;
        }
        const uint32_t *ix = idx.data, *vx = vox.data, *rv = rvox.data;
        const float *x = d.data, *rx = ref.data;
        for (size_t k = 0; k < n; k++) {
          ck_assert_uint_lt(ix[k], V);
          ck_assert_msg(seen[ix[k]]++ == 0, "N=%d: column %u on two ranks", N, ix[k]);
          ck_assert_uint_eq(vx[k], rv[ix[k]]);
          ck_assert_int_ge(vx[k] % VZ, z0);
          ck_assert_int_lt(vx[k] % VZ, z1);
          for (size_t t = 0; t < T; t++)
            ck_assert_msg(x[t * n + k] == rx[t * V + ix[k]], "N=%d rank %d msg %zu t %zu col %u: %g != %g", N,
                          r, i, t, ix[k], (double)x[t * n + k], (double)rx[t * V + ix[k]]);
        }
      }
      ck_assert_int_eq(prev_z1, VZ);
      for (size_t v = 0; v < V; v++)
        ck_assert_msg(seen[v] == 1, "N=%d msg %zu: column %zu on no rank", N, i, v);
      free(seen);
    }
    for (int r = 0; r < N; r++)
      rh_out_free(&o[r]);
  }
  rh_out_free(&one);
}

START_TEST(fmri_shard_voxels) {
  char *mask;
  char *root = make_voxel_tree(&mask);
  const char *vox[] = {"path", root, "shard", "voxels", NULL};
  const char *none[] = {"path", root, NULL};
  check_voxel_slabs(vox, none, 2, 0);
  const char *voxm[] = {"path", root, "shard", "voxels", "mask", mask, "trim", "1", NULL};
  const char *nonem[] = {"path", root, "mask", mask, "trim", "1", NULL};
  check_voxel_slabs(voxm, nonem, 2, 0);
  const char *voxv[] = {"path", root, "shard", "voxels", "mask", mask, "emit", "volume", NULL};
  const char *nonev[] = {"path", root, "mask", mask, "emit", "volume", NULL};
  check_voxel_slabs(voxv, nonev, 2 * VT, 1);
  /* zscore and detrend work per column: the same on a slab */
  const char *voxz[] = {"path",    root, "shard",  "voxels", "mask", mask,
                        "detrend", "1",  "zscore", "true",   NULL};
  const char *nonez[] = {"path", root, "mask", mask, "detrend", "1", "zscore", "true", NULL};
  check_voxel_slabs(voxz, nonez, 2, 0);
}
END_TEST

/* An uncompressed run: a rank's read faults in its slab's pages, not the
 * whole file (mincore over the file after dropping it from the page cache). */
START_TEST(fmri_shard_voxels_reads_its_slab) {
  enum { X = 64, Y = 64, Z = 48, T = 6 };
  char *dir = mt_tmpdir();
  char *path = mt_strf("%s/sub-01_task-t_bold.nii", dir);
  write_grid(path, 1, X, Y, Z, T);
  int fd = open(path, O_RDONLY);
  ck_assert_int_ge(fd, 0);
  fsync(fd);
  struct stat st;
  fstat(fd, &st);
  size_t len = (size_t)st.st_size, page = (size_t)sysconf(_SC_PAGESIZE), npages = (len + page - 1) / page;
  unsigned char *vec = malloc(npages);
  ck_assert_int_eq(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
  void *map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
  ck_assert(map != MAP_FAILED);
  ck_assert_int_eq(mincore(map, len, vec), 0);
  size_t before = 0;
  for (size_t i = 0; i < npages; i++)
    before += vec[i] & 1;
  if (before * 10 > npages) {
    munmap(map, len);
    close(fd);
    free(vec);
    MT_SKIP("the page cache kept %zu of %zu pages of %s after POSIX_FADV_DONTNEED", before, npages, path);
  }
  const char *p[] = {"path", path, "shard", "voxels", NULL};
  rh_out o;
  ck_assert_msg(rh_run("fmri_source", p, 1, 4, &o) == 0, "%s", o.error); /* planes 12..23 of 48 */
  ck_assert_uint_eq(o.n, 1);
  myelin_obj slab = myelin_msg_get(o.msgs[0], "slab");
  int64_t z0, z1;
  ck_assert_int_eq(myelin_obj_int(myelin_obj_at(slab, 0), &z0), 0);
  ck_assert_int_eq(myelin_obj_int(myelin_obj_at(slab, 1), &z1), 0);
  ck_assert(z0 == 12 && z1 == 24);
  rh_out_free(&o);
  ck_assert_int_eq(mincore(map, len, vec), 0);
  size_t after = 0;
  for (size_t i = 0; i < npages; i++)
    after += vec[i] & 1;
  size_t vbytes = (size_t)X * Y * Z * 4, plane = (size_t)X * Y * 4, inslab = 0, slabpages = 0;
  for (size_t t = 0; t < T; t++) {
    size_t b = 352 + t * vbytes + (size_t)z0 * plane, e = 352 + t * vbytes + (size_t)z1 * plane;
    for (size_t pg = (b + page - 1) / page; pg < e / page; pg++, slabpages++)
      inslab += vec[pg] & 1;
  }
  munmap(map, len);
  close(fd);
  free(vec);
  ck_assert_msg(inslab == slabpages, "%zu of the slab's %zu pages resident", inslab, slabpages);
  /* the slab is a quarter of the data; read-ahead around it adds a little */
  ck_assert_msg(after * 2 < npages, "reading a quarter of the voxels faulted in %zu of %zu pages", after,
                npages);
}
END_TEST

/* Combinations that cannot shard are refused before the run, naming the param. */
START_TEST(fmri_shard_refusals) {
  static const char *const bad[][2] = {
      {"{path: x.nii, shard: voxels, mask: auto}", "mask"},
      {"{path: x.nii, shard: voxels, atlas: a.nii}", "atlas"},
      {"{watch: /tmp, shard: subject}", "shard"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char err[1024] = "";
    myelin_harness *h = myelin_harness_new("fmri_source", bad[i][0], err, sizeof err);
    ck_assert_msg(h == NULL, "%s was accepted", bad[i][0]);
    ck_assert_msg(strstr(err, bad[i][1]) && strstr(err, "shard"), "%s: %s", bad[i][0], err);
  }
  /* a surface run cannot be split by voxels: an error naming the file */
  char *dir = mt_tmpdir();
  char *gii = mt_strf("%s/sub-01_hemi-L.func.gii", dir);
  mt_write(gii, "<GIFTI/>");
  const char *p[] = {"path", gii, "shard", "voxels", NULL};
  rh_out o;
  ck_assert_int_ne(rh_run("fmri_source", p, 0, 2, &o), 0);
  ck_assert_msg(strstr(o.error, gii) && strstr(o.error, "GIFTI"), "%s", o.error);
  rh_out_free(&o);
}
END_TEST

/* ---- dataset ------------------------------------------------------------------------ */

static void write_idx(const char *path, int gz, uint8_t type, int ndim, const uint32_t *dims,
                      const void *data, size_t nbytes) {
  uint8_t hdr[4 + 4 * 4] = {0, 0, type, (uint8_t)ndim};
  for (int i = 0; i < ndim; i++)
    for (int k = 0; k < 4; k++)
      hdr[4 + 4 * i + k] = (uint8_t)(dims[i] >> (24 - 8 * k));
  gzFile g = gzopen(path, gz ? "wb" : "wbT"); /* T: plain, no gzip */
  ck_assert_ptr_nonnull(g);
  gzwrite(g, hdr, 4 + 4 * (unsigned)ndim);
  gzwrite(g, data, (unsigned)nbytes);
  gzclose(g);
}

/* 13 images of 2x3 u8 (6 r + i) and labels r mod 10, plain and gzip. */
static const char *make_idx(const char *dir, int gz) {
  uint8_t px[13 * 6], y[13];
  for (int r = 0; r < 13; r++) {
    y[r] = (uint8_t)(r % 10);
    for (int i = 0; i < 6; i++)
      px[r * 6 + i] = (uint8_t)(6 * r + i);
  }
  const char *img = mt_strf("%s/img%d.idx%s", dir, gz, gz ? ".gz" : "");
  write_idx(img, gz, 0x08, 3, (const uint32_t[]){13, 2, 3}, px, sizeof px);
  write_idx(mt_strf("%s/lab%d.idx%s", dir, gz, gz ? ".gz" : ""), gz, 0x08, 1, (const uint32_t[]){13}, y,
            sizeof y);
  return img;
}

static const char *const DS_KEYS[] = {"index", "epoch", "label", NULL};

START_TEST(dataset_shard_sample) {
  char *dir = mt_tmpdir();
  for (int gz = 0; gz <= 1; gz++) {
    const char *img = make_idx(dir, gz), *lab = mt_strf("%s/lab%d.idx%s", dir, gz, gz ? ".gz" : "");
    /* unshuffled IDX: streamed, each rank seeks to its first row */
    const char *stream[] = {"path", img, "labels", lab, "shard", "sample", "epochs", "2", NULL};
    ck_assert_uint_eq(check_ranks("dataset", stream, DS_KEYS), 26);
    /* shuffled, every epoch its own order; and a limit */
    const char *shuf[] = {"path", img,    "labels", lab,      "shard", "sample", "shuffle",
                          "true", "seed", "7",      "epochs", "3",     NULL};
    ck_assert_uint_eq(check_ranks("dataset", shuf, DS_KEYS), 39);
    const char *lim[] = {"path",    img,    "labels", lab,  "shard", "sample",
                         "shuffle", "true", "limit",  "11", NULL};
    ck_assert_uint_eq(check_ranks("dataset", lim, DS_KEYS), 11);
  }
  /* A rank's stream is its block of the 1-rank stream, in the same order:
   * shuffle first over every row, then split. */
  const char *img = make_idx(dir, 0);
  const char *shuf[] = {"path", img, "shard", "sample", "shuffle", "true", "seed", "3", "epochs", "2", NULL};
  rh_out one;
  ck_assert_msg(rh_run("dataset", shuf, 0, 1, &one) == 0, "%s", one.error);
  ck_assert_uint_eq(one.n, 26);
  for (int N = 2; N <= 7; N++)
    for (int r = 0; r < N; r++) {
      rh_out o;
      ck_assert_msg(rh_run("dataset", shuf, r, N, &o) == 0, "%s", o.error);
      size_t b, e, k = 0;
      shard_range(13, r, N, &b, &e);
      ck_assert_uint_eq(o.n, 2 * (e - b));
      for (size_t ep = 0; ep < 2; ep++)
        for (size_t i = b; i < e; i++, k++) {
          int64_t want, got;
          ck_assert_int_eq(myelin_msg_int(one.msgs[ep * 13 + i], "index", &want), 0);
          ck_assert_int_eq(myelin_msg_int(o.msgs[k], "index", &got), 0);
          ck_assert_msg(got == want, "N=%d rank %d epoch %zu position %zu: row %lld, 1 rank has %lld", N, r,
                        ep, i, (long long)got, (long long)want);
        }
      rh_out_free(&o);
    }
  rh_out_free(&one);
  /* whole: each rank's tensor holds its rows; in rank order they are the 1-rank tensor */
  const char *whole[] = {"path", img, "shard", "sample", "shuffle", "true",
                         "seed", "5", "whole", "true",   NULL};
  ck_assert_msg(rh_run("dataset", whole, 0, 1, &one) == 0, "%s", one.error);
  myelin_tensor ref;
  ck_assert_int_eq(myelin_msg_tensor(one.msgs[0], "data", &ref), 0);
  for (int N = 2; N <= 7; N++) {
    size_t off = 0;
    for (int r = 0; r < N; r++) {
      rh_out o;
      ck_assert_msg(rh_run("dataset", whole, r, N, &o) == 0, "%s", o.error);
      size_t b, e;
      shard_range(13, r, N, &b, &e);
      ck_assert_uint_eq(o.n, e > b ? 1 : 0);
      if (o.n) {
        myelin_tensor t;
        ck_assert_int_eq(myelin_msg_tensor(o.msgs[0], "data", &t), 0);
        ck_assert_int_eq(t.shape[0], (int64_t)(e - b));
        ck_assert_int_eq(memcmp(t.data, (const uint8_t *)ref.data + off, (e - b) * 6), 0);
        off += (e - b) * 6;
      }
      rh_out_free(&o);
    }
    ck_assert_uint_eq(off, 13 * 6);
  }
  rh_out_free(&one);
}
END_TEST

/* ---- folder_source and file_source ------------------------------------------------------- */

START_TEST(folder_shard_file) {
  char *dir = mt_tmpdir();
  for (int i = 0; i < 13; i++)
    mt_write(mt_strf("%s/f%02d.txt", dir, i), mt_strf("file %d", i));
  const char *p[] = {"path", dir, "shard", "file", "settle_ms", "20", "count", "13", NULL};
  ck_assert_uint_eq(check_ranks("folder_source", p, (const char *const[]){"name", NULL}), 13);
}
END_TEST

/* Writes n messages {i, file} to path (concatenated msgpack, as file_sink). */
static void write_mpk(const char *path, int file, int n) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  for (int i = 0; i < n; i++) {
    myelin_builder *b = myelin_builder_new("tensor");
    myelin_build_int(b, "i", i);
    myelin_build_int(b, "file", file);
    float x[3] = {(float)file, (float)i, 0.5f};
    myelin_build_tensor_copy(b, "data", MYELIN_F4, 1, (const int64_t[]){3}, x);
    myelin_msg *m = myelin_builder_finish(b);
    size_t len;
    const uint8_t *bytes = myelin_msg_bytes(m, &len);
    ck_assert_uint_eq(fwrite(bytes, 1, len, f), len);
    myelin_msg_unref(m);
  }
  fclose(f);
}

START_TEST(file_source_shard_file) {
  char *dir = mt_tmpdir();
  for (int k = 0; k < 5; k++)
    write_mpk(mt_strf("%s/rec%d.mpk", dir, k), k, 1 + k % 3);
  const char *glob1[] = {"path", mt_strf("%s/rec*.mpk", dir), "shard", "file", NULL};
  ck_assert_uint_eq(check_ranks("file_source", glob1, (const char *const[]){"file", "i", NULL}),
                    1 + 2 + 3 + 1 + 2);
  /* the 1-rank replay is every file in name order */
  rh_out o;
  ck_assert_msg(rh_run("file_source", glob1, 0, 1, &o) == 0, "%s", o.error);
  int64_t prev = -1;
  for (size_t i = 0; i < o.n; i++) {
    int64_t f;
    ck_assert_int_eq(myelin_msg_int(o.msgs[i], "file", &f), 0);
    ck_assert_int_ge(f, prev);
    prev = f;
  }
  rh_out_free(&o);
  /* 5 files on 2 ranks: rec0-2 | rec3-4 */
  ck_assert_msg(rh_run("file_source", glob1, 1, 2, &o) == 0, "%s", o.error);
  ck_assert_uint_eq(o.n, 1 + 2);
  rh_out_free(&o);
  /* a single file with shard: file is rank 0's; the others replay nothing */
  const char *one[] = {"path", mt_strf("%s/rec2.mpk", dir), "shard", "file", NULL};
  ck_assert_uint_eq(check_ranks("file_source", one, (const char *const[]){"file", "i", NULL}), 3);
}
END_TEST

START_TEST(name_owner_spread) {
  for (int N = 1; N <= 7; N++) {
    size_t per[7] = {0};
    for (int i = 0; i < 700; i++) {
      int r = shard_name_owner(mt_strf("sub-%03d_bold.nii", i), N);
      ck_assert(r >= 0 && r < N);
      ck_assert_int_eq(r, shard_name_owner(mt_strf("sub-%03d_bold.nii", i), N));
      per[r]++;
    }
    for (int r = 0; r < N; r++) /* balanced on average: within 30% of 700/N */
      ck_assert_msg(per[r] * 10 * (size_t)N >= 7 * 700 && per[r] * 10 * (size_t)N <= 13 * 700,
                    "N=%d rank %d takes %zu of 700 names", N, r, per[r]);
  }
}
END_TEST

#ifdef SHARD_MPI
/* ---- the same checks under mpirun (an MPI build) ---------------------------------------- */

/* Runs `mpirun -n N myelin run` of [source → file_sink] with a file per rank
 * (${OMPI_COMM_WORLD_RANK} in the path) and reads each rank's file back. */
static int ranks_mpi(const char *plugin, const char *const *params, int N, rh_out *outs, char *err,
                     size_t errlen) {
  setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
  setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
  char *d = mt_tmpdir();
  char *ps = mt_strf("%s", "");
  for (size_t i = 0; params[i] && params[i + 1]; i += 2)
    ps = mt_strf("%s%s%s: %s", ps, i ? ", " : "", params[i], params[i + 1]);
  char *yaml = mt_strf("%s/p.yaml", d);
  mt_write(yaml, mt_strf("name: shard\nstages:\n  - {id: src, plugin: %s, params: {%s}}\n"
                         "  - {id: out, plugin: file_sink, inputs: [src], params: {path: "
                         "'%s/r${OMPI_COMM_WORLD_RANK}.mpk'}}\n",
                         plugin, ps, d));
  char *out = NULL;
  int rc = mt_run(mt_strf("mpirun --oversubscribe -n %d %s run %s", N, mt_env("MYELIN_BIN", "myelin"), yaml),
                  &out);
  if (rc) {
    snprintf(err, errlen, "mpirun -n %d: exit %d:\n%s", N, rc, out);
    free(out);
    return MYELIN_EINVAL;
  }
  free(out);
  for (int r = 0; r < N; r++) {
    memset(&outs[r], 0, sizeof outs[r]);
    FILE *f = fopen(mt_strf("%s/r%d.mpk", d, r), "rb");
    if (!f) continue; /* a rank that emitted nothing may leave no file */
    myelin_reader *rd = myelin_reader_new(f, 0);
    myelin_msg *m;
    char e[512];
    int k;
    while ((k = myelin_reader_next(rd, &m, e, sizeof e)) == 1) {
      outs[r].msgs = realloc(outs[r].msgs, (outs[r].n + 1) * sizeof *outs[r].msgs);
      outs[r].msgs[outs[r].n++] = m;
    }
    myelin_reader_free(rd);
    fclose(f);
    if (k < 0) {
      snprintf(err, errlen, "rank %d's file: %s", r, e);
      return MYELIN_EINVAL;
    }
  }
  return 0;
}

/* Every sharded source under mpirun -n 1, 2, 4: disjoint parts whose union
 * is the 1-rank run. */
START_TEST(mpi_sources) {
  g_ranks = ranks_mpi;
  int counts[] = {1, 2, 4, 0};
  memcpy(g_counts, counts, sizeof counts);
  char *root = make_bids();
  const char *subj[] = {"path", root, "shard", "subject", NULL};
  ck_assert_uint_eq(check_ranks("fmri_source", subj, FMRI_KEYS), 7);
  const char *runs[] = {"path", root, "shard", "run", NULL};
  ck_assert_uint_eq(check_ranks("fmri_source", runs, FMRI_KEYS), 7);
  char *mask;
  char *vroot = make_voxel_tree(&mask);
  const char *vox[] = {"path", vroot, "shard", "voxels", "mask", mask, NULL};
  const char *none[] = {"path", vroot, "mask", mask, NULL};
  check_voxel_slabs(vox, none, 2, 0);
  char *dir = mt_tmpdir();
  const char *img = make_idx(dir, 1), *lab = mt_strf("%s/lab1.idx.gz", dir);
  const char *shuf[] = {"path", img,    "labels", lab,      "shard", "sample", "shuffle",
                        "true", "seed", "7",      "epochs", "2",     NULL};
  ck_assert_uint_eq(check_ranks("dataset", shuf, DS_KEYS), 26);
  for (int k = 0; k < 5; k++)
    write_mpk(mt_strf("%s/rec%d.mpk", dir, k), k, 1 + k % 3);
  const char *glob1[] = {"path", mt_strf("'%s/rec*.mpk'", dir), "shard", "file", NULL};
  ck_assert_uint_eq(check_ranks("file_source", glob1, (const char *const[]){"file", "i", NULL}), 9);
  char *fdir = mt_tmpdir();
  for (int i = 0; i < 13; i++)
    mt_write(mt_strf("%s/f%02d.txt", fdir, i), mt_strf("file %d", i));
  const char *fo[] = {"path", fdir, "shard", "file", "settle_ms", "20", "count", "13", NULL};
  ck_assert_uint_eq(check_ranks("folder_source", fo, (const char *const[]){"name", NULL}), 13);
  g_ranks = ranks_host;
}
END_TEST
#endif

int main(void) {
  Suite *s = suite_create("shard");
  TCase *tc = tcase_create("shard");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, shard_blocks_cover);
  tcase_add_test(tc, fmri_shard_subject_and_run);
  tcase_add_test(tc, fmri_shard_context);
  tcase_add_test(tc, fmri_shard_dicom);
  tcase_add_test(tc, fmri_shard_voxels);
  tcase_add_test(tc, fmri_shard_voxels_reads_its_slab);
  tcase_add_test(tc, fmri_shard_refusals);
  tcase_add_test(tc, dataset_shard_sample);
  tcase_add_test(tc, folder_shard_file);
  tcase_add_test(tc, file_source_shard_file);
  tcase_add_test(tc, name_owner_spread);
  suite_add_tcase(s, tc);
#ifdef SHARD_MPI
  TCase *mc = tcase_create("mpirun");
  tcase_set_timeout(mc, 600);
  tcase_add_test(mc, mpi_sources);
  suite_add_tcase(s, mc);
#endif
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
