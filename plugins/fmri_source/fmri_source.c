/*
 * fmri_source — the fMRI loader: NIfTI files, globs, BIDS folders, archives
 * and live scanner folders → `run` or `volume` messages (DESIGN.md §4).
 *
 * Stored data (`path`). fmri_discover() lists the runs (BIDS entities from
 * the names, TR from JSON sidecars), the subject/task/run/space filters pick
 * some, and each is read with nifti.c straight into a [T, V] float matrix:
 * V follows a "selection" — the voxels kept, listed in C order over (x, y, z)
 * (geometry.voxels) together with their offsets in the file's Fortran-order
 * volume, so reading is one gather per volume. The selection comes from the
 * mask (none / a NIfTI mask / auto = non-constant voxels, decided per run
 * after reading) and the atlas (labelled voxels, later averaged per parcel).
 * Then trim, detrend and zscore, then one `run` message, or one `volume` per
 * TR (streamed volume by volume when nothing needs the whole run).
 * `pace: realtime` waits out each TR (or each run's duration) before emitting.
 *
 * Surface data (GIFTI, gifti.c): a .func.gii / .shape.gii file, or a BIDS
 * hemi-L + hemi-R pair (paired by fmri_discover), is read whole into [T, V]
 * (left vertices, then right) and emitted with `surface` geometry
 * (schemas/geometry.md); trim, auto mask, detrend and zscore apply as for
 * volumes.
 *
 * CIFTI-2 (cifti.c, by file name): a .dtseries/.dscalar/.dlabel/.ptseries
 * file is one run [rows, cols] with grayordinate or parcel geometry.
 *
 * Live data (`watch`). A myelin_watch on the stage's libuv loop reports each
 * complete volume file once, in name order; each becomes `volume` messages
 * (t = the file's modification time) with the mask or atlas applied. The
 * grid is fixed by the first file. The stream ends after `count` volumes,
 * after `idle_timeout` seconds without a new one, or when the run stops.
 *
 * Network data (`listen`): scanners push control text and raw images in
 * the AFNI realtime protocol (afni_rt.c decodes it); each complete volume
 * goes out as a watched file's would, through the same grid/mask/atlas code.
 *
 * Memory: one run at a time (plus the mask/atlas tables).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <glob.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <uv.h>

#include "../common/shard.h"
#include "cifti.h"
#include "dicom.h"
#include "fmri_discover.h"
#include "fmri_kernels.h"
#include "gifti.h"
#include "myelin/myelin.h"
#include "myelin/watch.h"
#include "../common/netaddr.h"
#include "afni_rt.h"
#include "nifti.h"

enum { MASK_NONE, MASK_AUTO, MASK_FILE };
enum { FMT_AUTO, FMT_NIFTI, FMT_DICOM };
enum { SHARD_NONE, SHARD_SUBJECT, SHARD_RUN, SHARD_VOXELS };

/* Where the run being read stands among every rank's runs (stored mode):
 * the global counts and indices every message carries. */
typedef struct shard_ctx {
  int valid;
  int64_t n_subjects, subject_index, n_runs, run_index;
} shard_ctx;

/* Voxels kept from a grid: C-order indices (all = every voxel, in order);
 * with an atlas also each voxel's parcel index. A voxel slab (shard:
 * voxels) also has fidx, each voxel's offset in the file's volume, so that
 * reading touches only the slab's bytes. */
typedef struct selection {
  size_t n;
  int all;
  uint32_t *cidx;
  int32_t *parcel;
  uint32_t *fidx;
  size_t flo, fhi; /* the file offsets' span: fidx[k] in [flo, fhi) */
} selection;

/* shard: voxels — this rank's slab of the run being read: z-planes
 * [z0, z1) of the volume, its columns' places among the run's `total`
 * columns (ascending), carried by every message of the run. */
typedef struct slab_ctx {
  int valid;
  int64_t z0, z1;
  size_t total, n;
  uint32_t *cols;
} slab_ctx;

typedef struct grid {
  int64_t dims[3];
  double affine[4][4];
} grid;

typedef struct fs_state {
  const myelin_host *host;
  myelin_stage *st;
  const myelin_params *p;
  int emit_volume, realtime, zscore, detrend, format;
  int64_t trim, count;
  double tr_param, idle_timeout;
  int mask_mode;
  /* mask file: keep flags in C order over its grid */
  uint8_t *mask;
  grid mask_grid;
  char *mask_path;
  char *path, *watch_dir, *labels_path; /* input paths, resolved (myelin_input_path) */
  /* atlas: parcel index per voxel (C order, -1 = none) */
  int32_t *atlas;
  grid atlas_grid;
  char *atlas_path;
  size_t nparcels;
  int32_t *parcel_values;
  char **parcel_names;
  uint64_t seq;
  double pace_next; /* monotonic seconds when the next message may go */
  /* live mode */
  myelin_watch *watch;
  uv_timer_t idle;
  int idle_active;
  int have_grid;
  grid live_grid;
  selection live_sel;
  uint64_t live_index;
  char live_subject[128], live_task[128], live_run[64];
  int failed;
  /* sharding across ranks (stored runs) */
  int shard, rank, size;
  shard_ctx ctx;
  slab_ctx slab;
  /* watch mode, single-frame DICOM: slices held per volume until complete */
  int64_t slices;
  struct slice_group *groups; /* [SLICE_GROUPS] */
  uint64_t group_clock;
  /* network mode (listen): AFNI realtime senders */
  struct sockaddr_storage listen_addr;
  uv_tcp_t listen_srv[2]; /* [0] the `listen` address, [1] a data port a control channel named */
  int listen_open[2], listen_port2;
  struct rt_conn *conns;
  uint64_t next_conn;
} fs_state;

/* ---- small helpers ---------------------------------------------------------- */

static double mono_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Sleeps until the pacing deadline (realtime), polling stopping(). */
static int pace_wait(fs_state *s, double step) {
  if (!s->realtime) return 0;
  double now = mono_now();
  if (s->pace_next == 0) s->pace_next = now;
  while (now < s->pace_next) {
    if (s->host->stopping(s->st)) return MYELIN_ESTOP;
    double left = s->pace_next - now;
    if (left > 0.05) left = 0.05;
    struct timespec ts = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
    nanosleep(&ts, NULL);
    now = mono_now();
  }
  s->pace_next += step;
  return 0;
}

#define SEL_IDX(sel) ((sel)->all ? NULL : (sel)->cidx)

static void selection_free(selection *sel) {
  free(sel->cidx);
  free(sel->parcel);
  free(sel->fidx);
  memset(sel, 0, sizeof *sel);
}

static int same_dims(const int64_t a[3], const int64_t b[3]) {
  return a[0] == b[0] && a[1] == b[1] && a[2] == b[2];
}

static void header_grid(const nifti_header *h, grid *g) {
  for (int i = 0; i < 3; i++)
    g->dims[i] = h->dim[i + 1];
  nifti_affine(h, g->affine);
}

/* Reads a 3-D image (first volume) as floats in C order over its grid. */
static int read_image_corder(fs_state *s, const char *path, float **out, grid *g) {
  char err[768];
  nifti_reader r;
  if (nifti_open_file(&r, path, err, sizeof err)) return s->host->error(s->st, "%s", err);
  header_grid(&r.h, g);
  size_t n = r.h.nvox;
  float *v = malloc(n * sizeof *v);
  int rc = 0;
  if (!v)
    rc = s->host->error(s->st, "%s: out of memory", path);
  else if (nifti_read_volumes_c(&r, 1, NULL, n, v, n, err, sizeof err))
    rc = s->host->error(s->st, "%s", err);
  nifti_close(&r);
  if (rc)
    free(v);
  else
    *out = v;
  return rc;
}

/* ---- mask and atlas ---------------------------------------------------------- */

static int load_mask(fs_state *s, const char *path) {
  float *v;
  if (read_image_corder(s, path, &v, &s->mask_grid)) return MYELIN_EINVAL;
  size_t n = (size_t)(s->mask_grid.dims[0] * s->mask_grid.dims[1] * s->mask_grid.dims[2]);
  s->mask = malloc(n ? n : 1);
  if (!s->mask) {
    free(v);
    return s->host->error(s->st, "%s: out of memory", path);
  }
  size_t kept = 0;
  for (size_t i = 0; i < n; i++)
    kept += (s->mask[i] = v[i] != 0 && !isnan(v[i]));
  free(v);
  if (!kept) return s->host->error(s->st, "mask %s keeps no voxel (all zero)", path);
  return 0;
}

static int cmp_i32(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

/* Label names from a TSV ("index<TAB>name" per line; a header line and
 * extra columns are ignored). */
static void load_label_names(fs_state *s, const char *tsv) {
  FILE *f = fopen(tsv, "r");
  if (!f) {
    s->host->log(s->st, MYELIN_LOG_WARN, "atlas_labels %s: cannot open; using label numbers", tsv);
    return;
  }
  char line[1024];
  while (fgets(line, sizeof line, f)) {
    char *end;
    long v = strtol(line, &end, 10);
    if (end == line || (*end != '\t' && *end != ',' && *end != ' ')) continue;
    char *name = end + 1;
    name[strcspn(name, "\t,\r\n")] = 0;
    for (size_t k = 0; k < s->nparcels; k++)
      if (s->parcel_values[k] == v && *name) {
        free(s->parcel_names[k]);
        s->parcel_names[k] = strdup(name);
      }
  }
  fclose(f);
}

static int load_atlas(fs_state *s, const char *path, const char *tsv) {
  float *v;
  if (read_image_corder(s, path, &v, &s->atlas_grid)) return MYELIN_EINVAL;
  size_t n = (size_t)(s->atlas_grid.dims[0] * s->atlas_grid.dims[1] * s->atlas_grid.dims[2]);
  int32_t *lab = malloc(n * sizeof *lab), *uniq = malloc(n * sizeof *uniq);
  s->atlas = malloc(n * sizeof *s->atlas);
  if (!lab || !uniq || !s->atlas) {
    free(v);
    free(lab);
    free(uniq);
    return s->host->error(s->st, "%s: out of memory", path);
  }
  size_t nu = 0;
  for (size_t i = 0; i < n; i++) {
    lab[i] = isfinite(v[i]) ? (int32_t)lrintf(v[i]) : 0;
    if (lab[i] > 0) uniq[nu++] = lab[i];
  }
  free(v);
  qsort(uniq, nu, sizeof *uniq, cmp_i32);
  size_t np = 0;
  for (size_t i = 0; i < nu; i++)
    if (np == 0 || uniq[i] != uniq[np - 1]) uniq[np++] = uniq[i];
  if (np == 0) {
    free(lab);
    free(uniq);
    return s->host->error(s->st, "atlas %s has no label > 0", path);
  }
  s->nparcels = np;
  s->parcel_values = uniq;
  s->parcel_names = calloc(np, sizeof *s->parcel_names);
  if (!s->parcel_names) {
    free(lab);
    return s->host->error(s->st, "%s: out of memory", path);
  }
  for (size_t k = 0; k < np; k++) {
    char num[24];
    snprintf(num, sizeof num, "%d", (int)uniq[k]);
    s->parcel_names[k] = strdup(num);
  }
  for (size_t i = 0; i < n; i++) {
    s->atlas[i] = -1;
    if (lab[i] > 0) {
      int32_t *hit = bsearch(&lab[i], uniq, np, sizeof *uniq, cmp_i32);
      s->atlas[i] = (int32_t)(hit - uniq);
    }
  }
  free(lab);
  if (tsv && *tsv) load_label_names(s, tsv);
  return 0;
}

static int check_grid(fs_state *s, const char *name, const grid *g, const char *what, const char *wpath,
                      const grid *w) {
  if (same_dims(g->dims, w->dims)) return 0;
  return s->host->error(s->st, "%s: grid %lldx%lldx%lld does not match %s %s (%lldx%lldx%lld)", name,
                        (long long)g->dims[0], (long long)g->dims[1], (long long)g->dims[2], what, wpath,
                        (long long)w->dims[0], (long long)w->dims[1], (long long)w->dims[2]);
}

/* The voxels to read from a run on grid g (every voxel for mask none/auto). */
static int make_selection(fs_state *s, const char *name, const grid *g, selection *sel) {
  memset(sel, 0, sizeof *sel);
  if (s->mask && check_grid(s, name, g, "mask", s->mask_path, &s->mask_grid)) return MYELIN_EINVAL;
  if (s->atlas && check_grid(s, name, g, "atlas", s->atlas_path, &s->atlas_grid)) return MYELIN_EINVAL;
  size_t n = (size_t)(g->dims[0] * g->dims[1] * g->dims[2]);
  sel->cidx = malloc(n * sizeof *sel->cidx);
  if (s->atlas) sel->parcel = malloc(n * sizeof *sel->parcel);
  if (!sel->cidx || (s->atlas && !sel->parcel)) {
    selection_free(sel);
    return s->host->error(s->st, "%s: out of memory", name);
  }
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (s->mask && !s->mask[i]) continue;
    if (s->atlas && s->atlas[i] < 0) continue;
    if (s->atlas) sel->parcel[k] = s->atlas[i];
    sel->cidx[k++] = (uint32_t)i;
  }
  sel->n = k;
  sel->all = k == n;
  if (k == 0) {
    selection_free(sel);
    return s->host->error(s->st, "%s: the mask and atlas leave no voxel", name);
  }
  return 0;
}

/* ---- message building -------------------------------------------------------- */

static void build_run_value(myelin_builder *b, const char *run) {
  char *end;
  long v = strtol(run, &end, 10);
  if (*run && *end == 0)
    myelin_build_int(b, "run", v);
  else if (*run)
    myelin_build_str(b, "run", run);
  else
    myelin_build_int(b, "run", 1);
}

static void build_labels(const fs_state *s, myelin_builder *b, const char *key) {
  myelin_build_array_begin(b, key);
  for (size_t k = 0; k < s->nparcels; k++)
    myelin_build_str(b, NULL, s->parcel_names[k]);
  myelin_build_array_end(b);
}

/* geometry: dims, affine and voxels, or dims, affine, atlas, labels, values. */
static void build_geometry(const fs_state *s, myelin_builder *b, const grid *g, const uint32_t *voxels,
                           size_t n) {
  myelin_build_map_begin(b, "geometry");
  myelin_build_array_begin(b, "dims");
  for (int i = 0; i < 3; i++)
    myelin_build_int(b, NULL, g->dims[i]);
  myelin_build_array_end(b);
  const int64_t a_shape[2] = {4, 4};
  myelin_build_tensor_copy(b, "affine", MYELIN_F8, 2, a_shape, &g->affine[0][0]);
  if (s->atlas) {
    myelin_build_str(b, "atlas", s->atlas_path);
    build_labels(s, b, "labels");
    const int64_t p_shape[1] = {(int64_t)s->nparcels};
    myelin_build_tensor_copy(b, "values", MYELIN_I4, 1, p_shape, s->parcel_values);
  } else {
    const int64_t v_shape[1] = {(int64_t)n};
    myelin_build_tensor_copy(b, "voxels", MYELIN_U4, 1, v_shape, voxels);
  }
  myelin_build_map_end(b);
}

/* Surface runs (GIFTI): one part per hemisphere file, its columns in order. */
typedef struct surf_part {
  char name[96]; /* CIFTI structure name, e.g. CIFTI_STRUCTURE_CORTEX_LEFT */
  char hemi[4];  /* "L", "R" or "" */
  size_t nvert;  /* vertices of the whole mesh */
  size_t count;  /* columns kept (all, or the auto mask's) */
  uint32_t *vertices;
} surf_part;

typedef struct surf_geom {
  int n;
  surf_part p[2];
} surf_geom;

typedef struct run_info {
  const char *subject, *task, *run;
  double tr;
  const grid *g;
  const uint32_t *voxels; /* C-order indices of the V columns (voxel mode) */
  size_t nvox;
  const surf_geom *surf;     /* surface runs: the vertices instead of g/voxels */
  const double *slice_times; /* dims[2] seconds (DICOM), or NULL */
  const cifti_axis *cifti;   /* CIFTI runs: the column axis (brain models or parcels) */
  const uint8_t *cifti_keep; /* its columns kept by mask: auto (NULL = all) */
} run_info;

/* geometry {model: surface, structures: [...]} (schemas/geometry.md). */
static void build_surface_geometry(myelin_builder *b, const surf_geom *sg) {
  myelin_build_map_begin(b, "geometry");
  myelin_build_str(b, "model", "surface");
  myelin_build_array_begin(b, "structures");
  size_t offset = 0;
  for (int i = 0; i < sg->n; i++) {
    const surf_part *p = &sg->p[i];
    myelin_build_map_begin(b, NULL);
    myelin_build_str(b, "name", p->name);
    myelin_build_str(b, "type", "surface");
    if (p->hemi[0]) myelin_build_str(b, "hemi", p->hemi);
    myelin_build_int(b, "offset", (int64_t)offset);
    myelin_build_int(b, "count", (int64_t)p->count);
    myelin_build_int(b, "nvert", (int64_t)p->nvert);
    const int64_t shape[1] = {(int64_t)p->count};
    myelin_build_tensor_copy(b, "vertices", MYELIN_U4, 1, shape, p->vertices);
    myelin_build_map_end(b);
    offset += p->count;
  }
  myelin_build_array_end(b);
  myelin_build_map_end(b);
}

static void build_grid(myelin_builder *b, const cifti_axis *a) {
  if (!a->has_volume) return;
  myelin_build_array_begin(b, "dims");
  for (int i = 0; i < 3; i++)
    myelin_build_int(b, NULL, a->vol_dims[i]);
  myelin_build_array_end(b);
  const int64_t a_shape[2] = {4, 4};
  myelin_build_tensor_copy(b, "affine", MYELIN_F8, 2, a_shape, &a->affine[0][0]);
}

/* C-order index of voxel ijk in the axis's volume. */
static uint32_t cifti_cindex(const cifti_axis *a, const int32_t *ijk) {
  return (uint32_t)(((int64_t)ijk[0] * a->vol_dims[1] + ijk[1]) * a->vol_dims[2] + ijk[2]);
}

/* geometry of a CIFTI brain-model axis: {model: surface | grayordinates,
 * structures, dims, affine}, keeping the columns keep[] marks. */
static void build_brain_model_geometry(myelin_builder *b, const cifti_axis *a, const uint8_t *keep) {
  int all_surface = 1;
  for (size_t i = 0; i < a->nmodels; i++)
    all_surface &= a->models[i].surface;
  myelin_build_map_begin(b, "geometry");
  myelin_build_str(b, "model", all_surface ? "surface" : "grayordinates");
  myelin_build_array_begin(b, "structures");
  size_t offset = 0;
  for (size_t i = 0; i < a->nmodels; i++) {
    const cifti_model *m = &a->models[i];
    size_t kept = 0;
    for (size_t k = 0; k < m->count; k++)
      kept += !keep || keep[m->offset + k];
    myelin_build_map_begin(b, NULL);
    myelin_build_str(b, "name", m->structure);
    myelin_build_str(b, "type", m->surface ? "surface" : "volume");
    if (!strcmp(m->structure, "CIFTI_STRUCTURE_CORTEX_LEFT")) myelin_build_str(b, "hemi", "L");
    if (!strcmp(m->structure, "CIFTI_STRUCTURE_CORTEX_RIGHT")) myelin_build_str(b, "hemi", "R");
    myelin_build_int(b, "offset", (int64_t)offset);
    myelin_build_int(b, "count", (int64_t)kept);
    if (m->surface) myelin_build_int(b, "nvert", (int64_t)m->nvert);
    const int64_t shape[1] = {(int64_t)kept};
    uint32_t *idx = myelin_build_tensor(b, m->surface ? "vertices" : "voxels", MYELIN_U4, 1, shape);
    for (size_t k = 0, o = 0; idx && k < m->count; k++)
      if (!keep || keep[m->offset + k])
        idx[o++] = m->surface ? m->vertices[k] : cifti_cindex(a, m->ijk + 3 * k);
    myelin_build_map_end(b);
    offset += kept;
  }
  myelin_build_array_end(b);
  build_grid(b, a);
  myelin_build_map_end(b);
}

/* geometry of a CIFTI parcel axis: {model: parcels, labels, surfaces,
 * parcels: [{name, voxels, vertices: {structure: <u4>}}], dims, affine}. */
static void build_parcel_geometry(myelin_builder *b, const cifti_axis *a) {
  myelin_build_map_begin(b, "geometry");
  myelin_build_str(b, "model", "parcels");
  myelin_build_array_begin(b, "labels");
  for (size_t i = 0; i < a->nparcels; i++)
    myelin_build_str(b, NULL, a->parcels[i].name);
  myelin_build_array_end(b);
  myelin_build_array_begin(b, "surfaces");
  for (size_t i = 0; i < a->nsurfaces; i++) {
    myelin_build_map_begin(b, NULL);
    myelin_build_str(b, "name", a->surfaces[i].structure);
    myelin_build_int(b, "nvert", (int64_t)a->surfaces[i].nvert);
    myelin_build_map_end(b);
  }
  myelin_build_array_end(b);
  myelin_build_array_begin(b, "parcels");
  for (size_t i = 0; i < a->nparcels; i++) {
    const cifti_parcel *p = &a->parcels[i];
    myelin_build_map_begin(b, NULL);
    myelin_build_str(b, "name", p->name);
    if (p->nvox) {
      const int64_t shape[1] = {(int64_t)p->nvox};
      uint32_t *idx = myelin_build_tensor(b, "voxels", MYELIN_U4, 1, shape);
      for (size_t k = 0; idx && k < p->nvox; k++)
        idx[k] = cifti_cindex(a, p->ijk + 3 * k);
    }
    myelin_build_map_begin(b, "vertices");
    for (size_t k = 0; k < p->nsurf; k++) {
      const int64_t shape[1] = {(int64_t)p->surf[k].n};
      myelin_build_tensor_copy(b, p->surf[k].structure, MYELIN_U4, 1, shape, p->surf[k].vertices);
    }
    myelin_build_map_end(b);
    myelin_build_map_end(b);
  }
  myelin_build_array_end(b);
  build_grid(b, a);
  myelin_build_map_end(b);
}

static void build_run_geometry(const fs_state *s, myelin_builder *b, const run_info *ri) {
  if (ri->cifti && ri->cifti->type == CIFTI_PARCELS)
    build_parcel_geometry(b, ri->cifti);
  else if (ri->cifti)
    build_brain_model_geometry(b, ri->cifti, ri->cifti_keep);
  else if (ri->surf)
    build_surface_geometry(b, ri->surf);
  else
    build_geometry(s, b, ri->g, ri->voxels, ri->nvox);
}

static void build_context(const fs_state *s, myelin_builder *b, const run_info *ri) {
  myelin_build_str(b, "subject", ri->subject);
  myelin_build_str(b, "task", ri->task);
  build_run_value(b, ri->run);
  if (s->ctx.valid) {
    myelin_build_int(b, "n_subjects", s->ctx.n_subjects);
    myelin_build_int(b, "subject_index", s->ctx.subject_index);
    myelin_build_int(b, "n_runs", s->ctx.n_runs);
    myelin_build_int(b, "run_index", s->ctx.run_index);
  }
  if (s->slab.valid) {
    myelin_build_int(b, "voxel_total", (int64_t)s->slab.total);
    const int64_t shape[1] = {(int64_t)s->slab.n};
    myelin_build_tensor_copy(b, "voxel_index", MYELIN_U4, 1, shape, s->slab.cols);
    myelin_build_array_begin(b, "slab");
    myelin_build_int(b, NULL, s->slab.z0);
    myelin_build_int(b, NULL, s->slab.z1);
    myelin_build_array_end(b);
  }
  myelin_build_float(b, "tr", ri->tr);
  if (ri->slice_times) {
    const int64_t shape[1] = {ri->g->dims[2]};
    myelin_build_tensor_copy(b, "slice_times", MYELIN_F8, 1, shape, ri->slice_times);
  }
}

static int emit_msg(fs_state *s, myelin_builder *b) {
  myelin_msg *m = myelin_builder_finish(b);
  if (!m) return s->host->error(s->st, "cannot build message (out of memory)");
  return s->host->emit(s->st, 0, m);
}

static int emit_run(fs_state *s, const run_info *ri, const float *X, size_t T, size_t V) {
  myelin_builder *b = myelin_builder_new("run");
  if (!b) return s->host->error(s->st, "out of memory");
  myelin_build_uint(b, "seq", s->seq++);
  build_context(s, b, ri);
  const int64_t shape[2] = {(int64_t)T, (int64_t)V};
  myelin_build_tensor_copy(b, "data", MYELIN_F4, 2, shape, X);
  if (s->atlas) build_labels(s, b, "labels");
  if (ri->cifti && ri->cifti->type == CIFTI_PARCELS) {
    myelin_build_array_begin(b, "labels");
    for (size_t i = 0; i < ri->cifti->nparcels; i++)
      myelin_build_str(b, NULL, ri->cifti->parcels[i].name);
    myelin_build_array_end(b);
  }
  build_run_geometry(s, b, ri);
  return emit_msg(s, b);
}

static int emit_volume(fs_state *s, const run_info *ri, const float *x, size_t V, uint64_t index, double t) {
  myelin_builder *b = myelin_builder_new("volume");
  if (!b) return s->host->error(s->st, "out of memory");
  myelin_build_uint(b, "seq", s->seq++);
  myelin_build_float(b, "t", t);
  myelin_build_uint(b, "index", index);
  build_context(s, b, ri);
  const int64_t shape[1] = {(int64_t)V};
  myelin_build_tensor_copy(b, "data", MYELIN_F4, 1, shape, x);
  build_run_geometry(s, b, ri);
  return emit_msg(s, b);
}

/* ---- stored runs --------------------------------------------------------------- */

/* ---- sharding across ranks -------------------------------------------------------- */

/* Which of n candidate runs (in their fixed order: path, or SeriesNumber for
 * DICOM) this rank reads. Runs with sel[i] count; the subjects are the
 * distinct labels of the counted runs in strcmp order; each counted run gets
 * its global run and subject index. Every rank computes the same plan from
 * the same listing, and shard.h splits subjects (or runs) into contiguous
 * blocks, so the ranks' reads are disjoint and cover every run. */
typedef struct shard_plan {
  size_t n_runs, n_subjects;
  int64_t *run_index, *subject_index; /* per candidate; -1 = not counted */
  uint8_t *mine;                      /* per candidate: this rank reads it */
} shard_plan;

static void plan_free(shard_plan *pl) {
  free(pl->run_index);
  free(pl->subject_index);
  free(pl->mine);
  memset(pl, 0, sizeof *pl);
}

static int cmp_strp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int plan_make(fs_state *s, size_t n, const uint8_t *sel, char *const *subjects, shard_plan *pl) {
  memset(pl, 0, sizeof *pl);
  const char **sorted = malloc((n ? n : 1) * sizeof *sorted);
  pl->run_index = malloc((n ? n : 1) * sizeof *pl->run_index);
  pl->subject_index = malloc((n ? n : 1) * sizeof *pl->subject_index);
  pl->mine = calloc(n ? n : 1, 1);
  if (!sorted || !pl->run_index || !pl->subject_index || !pl->mine) {
    free(sorted);
    plan_free(pl);
    return s->host->error(s->st, "out of memory");
  }
  size_t ns = 0;
  for (size_t i = 0; i < n; i++)
    if (sel[i]) sorted[ns++] = subjects[i];
  qsort(sorted, ns, sizeof *sorted, cmp_strp);
  size_t nu = 0;
  for (size_t i = 0; i < ns; i++)
    if (nu == 0 || strcmp(sorted[i], sorted[nu - 1])) sorted[nu++] = sorted[i];
  pl->n_subjects = nu;
  size_t total = nu;
  for (size_t i = 0; i < n; i++) {
    pl->run_index[i] = pl->subject_index[i] = -1;
    if (!sel[i]) continue;
    const char **hit = bsearch(&subjects[i], sorted, nu, sizeof *sorted, cmp_strp);
    pl->subject_index[i] = (int64_t)(hit - sorted);
    pl->run_index[i] = (int64_t)pl->n_runs++;
  }
  free(sorted);
  if (s->shard == SHARD_RUN) total = pl->n_runs;
  size_t b = 0, e = total;
  if (s->shard == SHARD_SUBJECT || s->shard == SHARD_RUN) shard_range(total, s->rank, s->size, &b, &e);
  size_t mine = 0;
  for (size_t i = 0; i < n; i++) {
    int64_t k = s->shard == SHARD_RUN ? pl->run_index[i] : pl->subject_index[i];
    pl->mine[i] = k >= 0 && (size_t)k >= b && (size_t)k < e;
    mine += pl->mine[i];
  }
  if (s->shard == SHARD_SUBJECT || s->shard == SHARD_RUN)
    s->host->log(s->st, MYELIN_LOG_INFO, "rank %d of %d (shard: %s): %s %zu..%zu of %zu, %zu run(s)", s->rank,
                 s->size, s->shard == SHARD_RUN ? "run" : "subject",
                 s->shard == SHARD_RUN ? "runs" : "subjects", b, e, total, mine);
  return 0;
}

/* The context of candidate i, carried by the messages of its run. */
static void plan_enter(fs_state *s, const shard_plan *pl, size_t i) {
  s->ctx.valid = 1;
  s->ctx.n_subjects = (int64_t)pl->n_subjects;
  s->ctx.subject_index = pl->subject_index[i];
  s->ctx.n_runs = (int64_t)pl->n_runs;
  s->ctx.run_index = pl->run_index[i];
}

static int item_selected(const fs_state *s, const fmri_item *it) {
  static const char *const keys[4] = {"subject", "task", "run", "space"};
  const char *vals[4] = {it->sub, it->task, it->run, it->space};
  for (int k = 0; k < 4; k++) {
    size_t n = myelin_param_len(s->p, keys[k]);
    const char *allowed[64];
    if (n > 64) n = 64;
    for (size_t i = 0; i < n; i++)
      allowed[i] = myelin_param_str_at(s->p, keys[k], i);
    if (!fmri_filter_match(vals[k], allowed, n, k == 0 ? "sub-" : NULL)) return 0;
  }
  return 1;
}

/* The subject label: the BIDS entity, else the file name without extension. */
static void subject_of(const fmri_item *it, char *buf, size_t n) {
  if (it->sub[0]) {
    snprintf(buf, n, "%s", it->sub);
    return;
  }
  const char *b = strrchr(it->path, '/');
  snprintf(buf, n, "%s", b ? b + 1 : it->path);
  buf[strcspn(buf, ".")] = 0;
}

static double run_tr(fs_state *s, const fmri_item *it, const nifti_header *h) {
  if (s->tr_param > 0) return s->tr_param;
  if (it && it->tr > 0) return it->tr;
  return nifti_tr_seconds(h);
}

/* The selection's voxels of the next nvols volumes: a slab by its file
 * offsets (only its bytes are touched), else converted in C order. */
static int read_sel(nifti_reader *r, size_t nvols, const selection *sel, float *out, size_t stride, char *err,
                    size_t errlen) {
  if (sel->fidx)
    return nifti_read_volumes_span(r, nvols, sel->flo, sel->fhi, sel->fidx, sel->n, out, stride, err, errlen);
  return nifti_read_volumes_c(r, nvols, SEL_IDX(sel), sel->n, out, stride, err, errlen);
}

/* shard: voxels. The z-planes go to ranks in contiguous slabs balanced by
 * the selected voxels they hold: plane z goes to the rank that owns (in
 * shard.h's blocks over the V selected voxels) the middle voxel of the
 * plane; the owner never decreases with z, so each rank's planes are
 * contiguous, disjoint from the others' and together every plane. A z-slab
 * is one contiguous byte range of each volume in the file (x fastest), so a
 * rank reads only its part. *slab gets the rank's voxels (C order, with
 * file offsets) and s->slab their places among the V columns. */
static int make_slab(fs_state *s, const char *name, const grid *g, const selection *full, selection *slab) {
  size_t nx = (size_t)g->dims[0], ny = (size_t)g->dims[1], nz = (size_t)g->dims[2], V = full->n;
  size_t *count = calloc(nz ? nz : 1, sizeof *count);
  memset(slab, 0, sizeof *slab);
  if (!count) return s->host->error(s->st, "%s: out of memory", name);
  for (size_t k = 0; k < V; k++)
    count[(full->all ? k : full->cidx[k]) % nz]++;
  int64_t z0 = -1, z1 = -1;
  for (size_t z = 0, cum = 0; z < nz; cum += count[z++]) {
    size_t mid = cum + (count[z] ? (count[z] - 1) / 2 : 0);
    int owner = mid < V ? shard_owner(V, s->size, mid) : s->size - 1;
    if (owner != s->rank) continue;
    if (z0 < 0) z0 = (int64_t)z;
    z1 = (int64_t)z + 1;
  }
  if (z0 < 0) z0 = z1 = 0; /* no plane for this rank */
  free(count);
  size_t n = 0;
  for (size_t k = 0; k < V; k++) {
    size_t z = (full->all ? k : full->cidx[k]) % nz;
    n += (int64_t)z >= z0 && (int64_t)z < z1;
  }
  slab->cidx = malloc((n ? n : 1) * sizeof *slab->cidx);
  slab->fidx = malloc((n ? n : 1) * sizeof *slab->fidx);
  free(s->slab.cols);
  s->slab.cols = malloc((n ? n : 1) * sizeof *s->slab.cols);
  if (!slab->cidx || !slab->fidx || !s->slab.cols) {
    selection_free(slab);
    return s->host->error(s->st, "%s: out of memory", name);
  }
  for (size_t k = 0; k < V; k++) {
    size_t c = full->all ? k : full->cidx[k], z = c % nz, y = (c / nz) % ny, x = c / (nz * ny);
    if ((int64_t)z < z0 || (int64_t)z >= z1) continue;
    slab->cidx[slab->n] = (uint32_t)c;
    slab->fidx[slab->n] = (uint32_t)nifti_forder(x, y, z, nx, ny);
    s->slab.cols[slab->n++] = (uint32_t)k;
  }
  slab->flo = (size_t)z0 * nx * ny;
  slab->fhi = (size_t)z1 * nx * ny;
  s->slab.valid = 1;
  s->slab.z0 = z0;
  s->slab.z1 = z1;
  s->slab.total = V;
  s->slab.n = slab->n;
  return 0;
}

/* Volume by volume, for emit: volume when nothing needs the whole run. */
static int stream_volumes(fs_state *s, nifti_reader *r, const selection *sel, const run_info *ri, size_t T) {
  char err[768];
  float *x = malloc((sel->n ? sel->n : 1) * sizeof *x);
  if (!x) return s->host->error(s->st, "%s: out of memory", r->name);
  int rc = 0;
  for (size_t t = 0; t < T && !rc; t++) {
    if (s->host->stopping(s->st)) break;
    if (read_sel(r, 1, sel, x, sel->n, err, sizeof err)) {
      rc = s->host->error(s->st, "%s", err);
      break;
    }
    if ((rc = pace_wait(s, ri->tr)) != 0) break;
    rc = emit_volume(s, ri, x, sel->n, t, (double)(t + (size_t)s->trim) * ri->tr);
  }
  free(x);
  return rc == MYELIN_ESTOP ? 0 : rc;
}

/* detrend, then zscore, X [T, V] in place. A detrend order >= T - 1 fits
 * every series exactly: fmri_detrend returns zeros (which zscore keeps), and
 * the user is told, since such an output carries no information. */
static int clean_run(fs_state *s, const char *name, float *X, size_t T, size_t V) {
  if (s->detrend >= 0 && (size_t)s->detrend + 1 >= T) {
    char hint[64];
    if (T >= 2)
      snprintf(hint, sizeof hint, "detrend <= %zu", T - 2);
    else
      snprintf(hint, sizeof hint, "detrend: -1");
    s->host->log(s->st, MYELIN_LOG_WARN,
                 "%s: param detrend = %d with T = %zu volumes: a polynomial of order >= T-1 fits every "
                 "series exactly, so the output is all zeros; use %s, or a run with more volumes",
                 name, s->detrend, T, hint);
  }
  if (fmri_detrend(X, T, V, s->detrend) || (s->zscore && fmri_zscore(X, T, V)))
    return s->host->error(s->st, "out of memory");
  return 0;
}

/* One `run` message whose [T, V] payload is filled in place: read straight
 * from the file into the message, then detrend/zscore there (no copy). For
 * runs whose V is known before reading (no auto mask, no atlas). */
static int direct_run(fs_state *s, nifti_reader *r, const selection *sel, const run_info *ri, size_t T) {
  char err[768];
  size_t V = sel->n;
  int rc = pace_wait(s, ri->tr * (double)T);
  if (rc) return rc == MYELIN_ESTOP ? 0 : rc;
  myelin_builder *b = myelin_builder_new("run");
  if (!b) return s->host->error(s->st, "out of memory");
  myelin_build_uint(b, "seq", s->seq++);
  build_context(s, b, ri);
  const int64_t shape[2] = {(int64_t)T, (int64_t)V};
  float *X = myelin_build_tensor(b, "data", MYELIN_F4, 2, shape);
  if (!X)
    rc = s->host->error(s->st, "%s: out of memory for %zu x %zu floats", r->name, T, V);
  else if (read_sel(r, T, sel, X, V, err, sizeof err))
    rc = s->host->error(s->st, "%s", err);
  else
    rc = clean_run(s, r->name, X, T, V);
  if (rc) {
    myelin_builder_free(b);
    return rc;
  }
  build_geometry(s, b, ri->g, sel->cidx, V);
  return emit_msg(s, b);
}

/* A finished run X [T, V]: one `run`, or one `volume` per row (paced). */
static int emit_matrix(fs_state *s, const run_info *ri, const float *X, size_t T, size_t V) {
  int rc = 0;
  if (!s->emit_volume) {
    rc = pace_wait(s, ri->tr * (double)T);
    if (!rc) rc = emit_run(s, ri, X, T, V);
  } else {
    for (size_t t = 0; t < T && !rc && !s->host->stopping(s->st); t++) {
      rc = pace_wait(s, ri->tr);
      if (!rc) rc = emit_volume(s, ri, X + t * V, V, t, (double)(t + (size_t)s->trim) * ri->tr);
    }
  }
  return rc == MYELIN_ESTOP ? 0 : rc;
}

static int finish_run(fs_state *s, const char *name, float *X, selection *sel, const run_info *base,
                      size_t T);

/* Whole run into X [T, V]; then auto mask / parcel means / detrend / zscore. */
static int process_run(fs_state *s, nifti_reader *r, selection *sel, const run_info *base, size_t T) {
  char err[768];
  size_t V = sel->n;
  float *X = malloc((T * V > 0 ? T * V : 1) * sizeof *X);
  if (!X) return s->host->error(s->st, "%s: out of memory for %zu x %zu floats", r->name, T, V);
  if (read_sel(r, T, sel, X, V, err, sizeof err)) {
    free(X);
    return s->host->error(s->st, "%s", err);
  }
  return finish_run(s, r->name, X, sel, base, T);
}

/* X [T, sel->n] (taken over, freed here): auto mask, parcel means,
 * detrend, zscore, then a `run` or T `volume` messages. */
static int finish_run(fs_state *s, const char *name, float *X, selection *sel, const run_info *base,
                      size_t T) {
  size_t V = sel->n;
  run_info ri = *base;
  ri.voxels = sel->cidx;
  ri.nvox = V;
  if (s->mask_mode == MASK_AUTO) {
    uint8_t *keep = malloc(V ? V : 1);
    if (!keep) {
      free(X);
      return s->host->error(s->st, "out of memory");
    }
    fmri_nonconstant(X, T, V, keep);
    size_t k = 0;
    for (size_t v = 0; v < V; v++)
      if (keep[v]) sel->cidx[k++] = sel->cidx[v];
    V = fmri_compact_columns(X, T, V, keep);
    free(keep);
    ri.nvox = V;
    if (V == 0) {
      free(X);
      return s->host->error(s->st, "%s: mask auto: every voxel is constant over time", name);
    }
  }
  if (s->atlas) {
    float *P = malloc((T * s->nparcels > 0 ? T * s->nparcels : 1) * sizeof *P);
    if (!P || fmri_parcel_means(X, T, V, sel->parcel, s->nparcels, P)) {
      free(P);
      free(X);
      return s->host->error(s->st, "out of memory");
    }
    free(X);
    X = P;
    V = s->nparcels;
  }
  int rc = clean_run(s, name, X, T, V);
  if (!rc) rc = emit_matrix(s, &ri, X, T, V);
  free(X);
  return rc;
}

/* ---- surface runs (GIFTI) ----------------------------------------------------------- */

static void surf_geom_free(surf_geom *sg) {
  for (int i = 0; i < sg->n; i++)
    free(sg->p[i].vertices);
  memset(sg, 0, sizeof *sg);
}

/* One hemisphere file: rows [T, V], its structure (AnatomicalStructurePrimary,
 * else the hemi- entity) and the first array's TimeStep (seconds; 0 if none). */
static int read_hemisphere(fs_state *s, const char *path, float **X, size_t *T, surf_part *part,
                           double *step) {
  char err[1024];
  gifti_image g;
  if (gifti_read_file(path, &g, err, sizeof err)) return s->host->error(s->st, "%s", err);
  size_t V = 0;
  int rc = gifti_rows_f32(&g, path, X, T, &V, err, sizeof err) ? s->host->error(s->st, "%s", err) : 0;
  const char *prim = gifti_meta_get(&g.meta, "AnatomicalStructurePrimary");
  if (!prim && g.narrays) prim = gifti_meta_get(&g.arrays[0].meta, "AnatomicalStructurePrimary");
  fmri_item ent;
  memset(&ent, 0, sizeof ent);
  const char *hemi = fmri_entities(path, &ent) == 0 ? ent.hemi : "";
  if (prim && *prim)
    gifti_structure_to_cifti(prim, part->name, sizeof part->name);
  else if (!strcmp(hemi, "L") || !strcmp(hemi, "R"))
    snprintf(part->name, sizeof part->name, "CIFTI_STRUCTURE_CORTEX_%s", *hemi == 'L' ? "LEFT" : "RIGHT");
  else
    snprintf(part->name, sizeof part->name, "CIFTI_STRUCTURE_OTHER");
  size_t nl = strlen(part->name);
  if (nl > 5 && !strcmp(part->name + nl - 5, "_LEFT"))
    snprintf(part->hemi, sizeof part->hemi, "L");
  else if (nl > 6 && !strcmp(part->name + nl - 6, "_RIGHT"))
    snprintf(part->hemi, sizeof part->hemi, "R");
  else
    snprintf(part->hemi, sizeof part->hemi, "%s", !strcmp(hemi, "L") || !strcmp(hemi, "R") ? hemi : "");
  fmri_item_free(&ent);
  const char *ts = g.narrays ? gifti_meta_get(&g.arrays[0].meta, "TimeStep") : NULL;
  *step = ts ? strtod(ts, NULL) : 0;
  if (!(*step > 0) || !isfinite(*step)) *step = 0;
  gifti_free(&g);
  if (rc) return rc;
  part->nvert = part->count = V;
  part->vertices = malloc((V ? V : 1) * sizeof *part->vertices);
  if (!part->vertices) return s->host->error(s->st, "%s: out of memory", path);
  for (size_t v = 0; v < V; v++)
    part->vertices[v] = (uint32_t)v;
  return 0;
}

/* The auto mask on a surface run: drops constant columns and their vertices;
 * *V becomes the number kept. */
static int surface_auto_mask(fs_state *s, const char *name, float *X, size_t T, size_t *V, surf_geom *sg) {
  uint8_t *keep = malloc(*V ? *V : 1);
  if (!keep) return s->host->error(s->st, "out of memory");
  fmri_nonconstant(X, T, *V, keep);
  size_t col = 0;
  for (int i = 0; i < sg->n; i++) {
    surf_part *p = &sg->p[i];
    size_t k = 0;
    for (size_t v = 0; v < p->count; v++, col++)
      if (keep[col]) p->vertices[k++] = p->vertices[v];
    p->count = k;
  }
  *V = fmri_compact_columns(X, T, *V, keep);
  free(keep);
  if (*V == 0) return s->host->error(s->st, "%s: mask auto: every vertex is constant over time", name);
  return 0;
}

/* A GIFTI run: one hemisphere file, or the L + R pair (it->path2) as one run
 * whose columns are the left vertices, then the right ones. */
static int load_gifti(fs_state *s, const fmri_item *it) {
  const char *name = it->path;
  if (s->mask_mode == MASK_FILE || s->atlas)
    return s->host->error(s->st,
                          "%s: a surface (GIFTI) run cannot take the NIfTI %s %s; use mask: none or auto",
                          name, s->atlas ? "atlas" : "mask", s->atlas ? s->atlas_path : s->mask_path);
  surf_geom sg;
  memset(&sg, 0, sizeof sg);
  float *H[2] = {NULL, NULL}, *X = NULL;
  size_t T[2] = {0, 0};
  double step[2] = {0, 0};
  const char *paths[2] = {it->path, it->path2};
  int rc = 0;
  for (int h = 0; h < 2 && paths[h] && !rc; h++) {
    sg.n = h + 1;
    rc = read_hemisphere(s, paths[h], &H[h], &T[h], &sg.p[h], &step[h]);
  }
  if (!rc && sg.n == 2 && T[0] != T[1])
    rc = s->host->error(s->st, "%s has %zu rows but %s has %zu: not a hemisphere pair of one run", paths[0],
                        T[0], paths[1], T[1]);
  if (!rc && sg.n == 2 && !strcmp(sg.p[0].name, sg.p[1].name))
    rc = s->host->error(s->st, "%s and %s are both %s: not a left + right pair", paths[0], paths[1],
                        sg.p[0].name);
  size_t V = sg.n == 2 ? sg.p[0].count + sg.p[1].count : sg.p[0].count, T0 = T[0];
  if (!rc && (size_t)s->trim >= T0)
    rc = s->host->error(s->st, "%s: trim %lld removes every volume (the run has %zu)", name,
                        (long long)s->trim, T0);
  size_t Tn = rc ? 0 : T0 - (size_t)s->trim;
  if (!rc && !(X = malloc((Tn * V > 0 ? Tn * V : 1) * sizeof *X)))
    rc = s->host->error(s->st, "out of memory");
  for (size_t t = 0; !rc && t < Tn; t++) {
    size_t src = t + (size_t)s->trim, o = 0;
    for (int h = 0; h < sg.n; h++) {
      memcpy(X + t * V + o, H[h] + src * sg.p[h].count, sg.p[h].count * sizeof *X);
      o += sg.p[h].count;
    }
  }
  free(H[0]);
  free(H[1]);
  if (!rc && s->mask_mode == MASK_AUTO) rc = surface_auto_mask(s, name, X, Tn, &V, &sg);
  char subject[256];
  subject_of(it, subject, sizeof subject);
  double tr = s->tr_param > 0 ? s->tr_param : it->tr > 0 ? it->tr : step[0];
  if (!rc && tr <= 0 && Tn > 1)
    s->host->log(s->st, MYELIN_LOG_WARN,
                 "%s: no repetition time (no sidecar, no TimeStep metadata): tr = 0; set `tr`", name);
  run_info ri = {subject, it->task, it->run, tr, NULL, NULL, 0, &sg, NULL, NULL, NULL};
  if (!rc) rc = clean_run(s, name, X, Tn, V);
  if (!rc) rc = emit_matrix(s, &ri, X, Tn, V);
  free(X);
  surf_geom_free(&sg);
  return rc;
}

/* ---- grayordinate and parcel runs (CIFTI-2) ------------------------------------------ */

/* A CIFTI-2 file whose rows are a series, scalars or labels and whose
 * columns are brain models (grayordinates) or parcels: one run [rows, cols]. */
static int load_cifti(fs_state *s, const fmri_item *it) {
  const char *name = it->path;
  char err[1024];
  if (s->mask_mode == MASK_FILE || s->atlas)
    return s->host->error(s->st, "%s: a CIFTI-2 run cannot take the NIfTI %s %s; use mask: none or auto",
                          name, s->atlas ? "atlas" : "mask", s->atlas ? s->atlas_path : s->mask_path);
  cifti_file c;
  if (cifti_read_file(name, &c, err, sizeof err)) return s->host->error(s->st, "%s", err);
  const cifti_axis *rows = &c.axes[0], *cols = &c.axes[1];
  int rc = 0;
  if (rows->type == CIFTI_BRAIN_MODELS || rows->type == CIFTI_PARCELS)
    rc = s->host->error(
        s->st,
        "%s: a connectome (%s x %s), not a run: fmri_source reads CIFTI files whose rows are a "
        "series, scalars or labels (.dtseries, .dscalar, .dlabel, .ptseries, .pscalar)",
        name, cifti_axis_type_name(rows->type), cifti_axis_type_name(cols->type));
  else if (cols->type != CIFTI_BRAIN_MODELS && cols->type != CIFTI_PARCELS)
    rc = s->host->error(s->st, "%s: columns are %s: a run needs brain models or parcels along dimension 1",
                        name, cifti_axis_type_name(cols->type));
  size_t T0 = c.rows, V = c.cols;
  if (!rc && (size_t)s->trim >= T0)
    rc = s->host->error(s->st, "%s: trim %lld removes every volume (the run has %zu)", name,
                        (long long)s->trim, T0);
  size_t T = rc ? 0 : T0 - (size_t)s->trim;
  float *X = rc ? NULL : c.data + (size_t)s->trim * V;
  uint8_t *keep = NULL;
  if (!rc && s->mask_mode == MASK_AUTO) {
    if (cols->type == CIFTI_PARCELS)
      rc = s->host->error(s->st, "%s: mask: auto drops grayordinates, not parcels; use mask: none", name);
    else if (!(keep = malloc(V ? V : 1)))
      rc = s->host->error(s->st, "out of memory");
    else {
      fmri_nonconstant(X, T, V, keep);
      if ((V = fmri_compact_columns(X, T, V, keep)) == 0)
        rc = s->host->error(s->st, "%s: mask auto: every grayordinate is constant over time", name);
    }
  }
  char subject[256];
  subject_of(it, subject, sizeof subject);
  double step =
      rows->type == CIFTI_SERIES && !strcmp(rows->unit, "SECOND") ? rows->step * pow(10, rows->exponent) : 0;
  double tr = s->tr_param > 0 ? s->tr_param : it->tr > 0 ? it->tr : step > 0 ? step : 0;
  if (!rc && tr <= 0 && T > 1 && rows->type == CIFTI_SERIES)
    s->host->log(s->st, MYELIN_LOG_WARN,
                 "%s: no repetition time (no sidecar, no series step): tr = 0; set `tr`", name);
  run_info ri = {subject, it->task, it->run, tr, NULL, NULL, 0, NULL, NULL, cols, keep};
  if (!rc) rc = clean_run(s, name, X, T, V);
  if (!rc) rc = emit_matrix(s, &ri, X, T, V);
  free(keep);
  cifti_free(&c);
  return rc;
}

/* One run: from its file, or from buf (an archive entry) when buf != NULL. */
static int load_item(fs_state *s, const fmri_item *it, const char *archive, const uint8_t *buf, size_t len) {
  char err[768];
  nifti_reader r;
  int rc;
  int gifti = !buf && fmri_is_gifti(it->path), cifti = !buf && cifti_is_cifti_name(it->path);
  if (s->shard == SHARD_VOXELS && (gifti || cifti))
    return s->host->error(s->st,
                          "%s: shard: voxels reads NIfTI volumes, not %s files; use shard: subject or run",
                          it->path, gifti ? "GIFTI" : "CIFTI-2");
  if (gifti) return load_gifti(s, it);
  if (cifti) return load_cifti(s, it);
  if (buf) {
    char name[1200];
    snprintf(name, sizeof name, "%s:%s", archive, it->path);
    rc = nifti_open_mem(&r, buf, len, name, err, sizeof err);
  } else {
    /* a voxel slab: pread of the slab per volume, a .gz streamed, never whole */
    rc = s->shard == SHARD_VOXELS ? nifti_open_file_span(&r, it->path, err, sizeof err)
                                  : nifti_open_file(&r, it->path, err, sizeof err);
  }
  if (rc) return s->host->error(s->st, "%s", err);
  grid g;
  header_grid(&r.h, &g);
  selection sel;
  char subject[256];
  subject_of(it, subject, sizeof subject);
  run_info ri = {subject, it->task, it->run, run_tr(s, it, &r.h), &g, NULL, 0, NULL, NULL, NULL, NULL};
  size_t T0 = r.h.nvols;
  if (ri.tr <= 0 && T0 > 1)
    s->host->log(s->st, MYELIN_LOG_WARN,
                 "%s: no repetition time (no sidecar, pixdim[4] = 0): tr = 0; set `tr`", r.name);
  if ((size_t)s->trim >= T0) {
    rc = s->host->error(s->st, "%s: trim %lld removes every volume (the run has %zu)", r.name,
                        (long long)s->trim, T0);
  } else if ((rc = make_selection(s, r.name, &g, &sel)) == 0) {
    if (s->shard == SHARD_VOXELS) {
      selection full = sel;
      rc = make_slab(s, r.name, &g, &full, &sel);
      selection_free(&full);
      if (rc) {
        nifti_close(&r);
        return rc;
      }
    }
    uint32_t none = 0;
    float sink = 0;
    if (s->trim && nifti_read_volumes(&r, (size_t)s->trim, &none, 0, &sink, 0, err, sizeof err))
      rc = s->host->error(s->st, "%s", err);
    size_t T = T0 - (size_t)s->trim;
    ri.voxels = sel.cidx;
    ri.nvox = sel.n;
    int simple = s->mask_mode != MASK_AUTO && !s->atlas;
    if (!rc && simple && s->emit_volume && s->detrend < 0 && !s->zscore)
      rc = stream_volumes(s, &r, &sel, &ri, T);
    else if (!rc && simple && !s->emit_volume)
      rc = direct_run(s, &r, &sel, &ri, T);
    else if (!rc)
      rc = process_run(s, &r, &sel, &ri, T);
    selection_free(&sel);
  }
  s->slab.valid = 0;
  nifti_close(&r);
  return rc;
}

typedef struct archive_walk {
  fs_state *s;
  const fmri_list *l;
  const shard_plan *pl;
} archive_walk;

static const fmri_item *find_item(const fmri_list *l, const char *path) {
  size_t lo = 0, hi = l->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(l->v[mid].path, path);
    if (c == 0) return &l->v[mid];
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

static int walk_want(void *arg, const char *entry) {
  archive_walk *w = arg;
  const fmri_item *it = find_item(w->l, entry);
  return it && w->pl->mine[it - w->l->v] && !w->s->host->stopping(w->s->st);
}

static int walk_run(void *arg, const char *entry, const uint8_t *buf, size_t len) {
  archive_walk *w = arg;
  const fmri_item *it = find_item(w->l, entry);
  plan_enter(w->s, w->pl, (size_t)(it - w->l->v));
  return load_item(w->s, it, w->l->archive, buf, len);
}

/* Archive runs come in entry order, in a single pass (this rank's only). */
static int load_archive(fs_state *s, const fmri_list *l, const shard_plan *pl) {
  archive_walk w = {s, l, pl};
  char err[1024] = ""; /* set only by the archive walk itself */
  int rc = fmri_archive_each(l->archive, walk_want, walk_run, &w, err, sizeof err);
  if (rc == -1 && err[0]) return s->host->error(s->st, "%s", err);
  return rc;
}

/* ---- DICOM series (dicom.h) ------------------------------------------------------ */

typedef struct dicom_files {
  char **v;
  size_t n;
} dicom_files;

static void dicom_files_free(dicom_files *f) {
  for (size_t i = 0; i < f->n; i++)
    free(f->v[i]);
  free(f->v);
  memset(f, 0, sizeof *f);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int has_ext(const char *name, const char *ext) {
  size_t n = strlen(name), e = strlen(ext);
  return n > e && strcasecmp(name + n - e, ext) == 0;
}

static int is_nifti_name(const char *name) {
  return has_ext(name, ".nii") || has_ext(name, ".nii.gz") || has_ext(name, ".hdr") ||
         has_ext(name, ".hdr.gz");
}

/* A DICOM file by its name (.dcm, .ima) or by the DICM magic. */
static int is_dicom_file(const char *path) {
  return has_ext(path, ".dcm") || has_ext(path, ".ima") || dicom_sniff(path);
}

/* The DICOM files of `path`: the file itself, every non-dot regular file of
 * a folder (not recursive), or a glob's matches; sorted by path. With
 * `sniff`, only files that look like DICOM (for format auto). */
static int dicom_list(const char *path, int sniff, dicom_files *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  struct stat st;
  size_t cap = 0;
  glob_t g;
  memset(&g, 0, sizeof g);
  DIR *d = NULL;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
    if (!(d = opendir(path))) {
      snprintf(err, errlen, "%s: cannot open the folder", path);
      return -1;
    }
  } else if (stat(path, &st) != 0 && glob(path, 0, NULL, &g) != 0) {
    snprintf(err, errlen, "%s: no such file, folder or glob match", path);
    return -1;
  }
  size_t i = 0;
  for (;;) {
    char *full = NULL;
    if (d) {
      struct dirent *e = readdir(d);
      if (!e) break;
      if (e->d_name[0] == '.') continue;
      if (asprintf(&full, "%s/%s", path, e->d_name) < 0) full = NULL;
    } else if (g.gl_pathc) {
      if (i >= g.gl_pathc) break;
      full = strdup(g.gl_pathv[i++]);
    } else {
      if (i++) break;
      full = strdup(path);
    }
    if (!full) break;
    struct stat fst;
    if (stat(full, &fst) != 0 || !S_ISREG(fst.st_mode) || (sniff && !is_dicom_file(full))) {
      free(full);
      continue;
    }
    if (out->n == cap) {
      cap = cap ? 2 * cap : 64;
      char **nv = realloc(out->v, cap * sizeof *nv);
      if (!nv) {
        free(full);
        break;
      }
      out->v = nv;
    }
    out->v[out->n++] = full;
  }
  if (d) closedir(d);
  globfree(&g);
  if (out->n == 0) {
    snprintf(err, errlen, "%s: no DICOM file found", path);
    return -1;
  }
  qsort(out->v, out->n, sizeof *out->v, cmp_str);
  return 0;
}

/* format auto: a path is DICOM when it names a DICOM file, or a folder or
 * glob holding DICOM files and no NIfTI file. */
static int path_is_dicom(const char *path) {
  struct stat st;
  if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) return !is_nifti_name(path) && is_dicom_file(path);
  char err[256];
  dicom_files f;
  if (dicom_list(path, 1, &f, err, sizeof err)) return 0;
  dicom_files_free(&f);
  fmri_list l;
  if (fmri_discover(path, &l, err, sizeof err) == 0) {
    fmri_list_free(&l);
    return 0;
  }
  return 1;
}

/* Labels of a DICOM run: the first subject/task/run filter value, else the
 * PatientID, the series description and the SeriesNumber. */
static void dicom_subject(const fs_state *s, const char *patient_id, char *sub, size_t ns) {
  const char *p = myelin_param_len(s->p, "subject") ? myelin_param_str_at(s->p, "subject", 0) : patient_id;
  if (!strncmp(p, "sub-", 4)) p += 4;
  snprintf(sub, ns, "%s", *p ? p : "dicom");
}

static void dicom_labels(const fs_state *s, const dicom_image *im, char *sub, size_t ns, char *task,
                         size_t nt, char *run, size_t nr) {
  dicom_subject(s, im->patient_id, sub, ns);
  snprintf(task, nt, "%s",
           myelin_param_len(s->p, "task") ? myelin_param_str_at(s->p, "task", 0) : im->description);
  if (myelin_param_len(s->p, "run"))
    snprintf(run, nr, "%s", myelin_param_str_at(s->p, "run", 0));
  else if (im->series_number >= 0)
    snprintf(run, nr, "%d", im->series_number);
  else
    snprintf(run, nr, "1");
}

static void series_grid(const dicom_series *ser, grid *g) {
  memcpy(g->dims, ser->dims, sizeof g->dims);
  memcpy(g->affine, ser->affine, sizeof g->affine);
}

/* Gathers the selected voxels of T volumes [T, V_all] into X [T, sel->n]. */
static float *gather_volumes(const float *all, size_t T, size_t Vall, const selection *sel) {
  float *X = malloc((T * sel->n > 0 ? T * sel->n : 1) * sizeof *X);
  if (!X) return NULL;
  for (size_t t = 0; t < T; t++)
    for (size_t v = 0; v < sel->n; v++)
      X[t * sel->n + v] = all[t * Vall + (sel->all ? v : sel->cidx[v])];
  return X;
}

/* One series: read its files, assemble the volumes, then as a NIfTI run. */
static int load_dicom_series(fs_state *s, char **paths, size_t n) {
  char err[1024];
  dicom_image *im = calloc(n, sizeof *im);
  if (!im) return s->host->error(s->st, "out of memory");
  int rc = 0;
  size_t got = 0;
  for (; got < n && !rc; got++)
    if (dicom_read(paths[got], 1, &im[got], err, sizeof err)) rc = s->host->error(s->st, "%s", err);
  if (rc) got--;
  dicom_series ser;
  memset(&ser, 0, sizeof ser);
  if (!rc && dicom_assemble(im, n, &ser, err, sizeof err)) rc = s->host->error(s->st, "%s", err);
  char sub[128], task[128], run[64];
  if (!rc) dicom_labels(s, &im[0], sub, sizeof sub, task, sizeof task, run, sizeof run);
  for (size_t i = 0; i < got; i++)
    dicom_image_free(&im[i]);
  free(im);
  if (rc) {
    dicom_series_free(&ser);
    return rc;
  }
  grid g;
  series_grid(&ser, &g);
  selection sel;
  double tr = s->tr_param > 0 ? s->tr_param : ser.tr;
  run_info ri = {sub, task, run, tr, &g, NULL, 0, NULL, ser.slice_times, NULL, NULL};
  size_t Vall = (size_t)(g.dims[0] * g.dims[1] * g.dims[2]);
  if ((size_t)s->trim >= ser.T) {
    rc = s->host->error(s->st, "%s: trim %lld removes every volume (the series has %zu)", paths[0],
                        (long long)s->trim, ser.T);
  } else if ((rc = make_selection(s, paths[0], &g, &sel)) == 0) {
    size_t T = ser.T - (size_t)s->trim;
    float *X = gather_volumes(ser.data + (size_t)s->trim * Vall, T, Vall, &sel);
    ri.voxels = sel.cidx;
    ri.nvox = sel.n;
    if (!X)
      rc = s->host->error(s->st, "%s: out of memory", paths[0]);
    else
      rc = finish_run(s, paths[0], X, &sel, &ri, T);
    selection_free(&sel);
  }
  dicom_series_free(&ser);
  return rc;
}

typedef struct series_key {
  char uid[72], patient[72];
  int number;
  size_t file;
} series_key;

static int cmp_series(const void *pa, const void *pb) {
  const series_key *a = pa, *b = pb;
  if (a->number != b->number) return a->number < b->number ? -1 : 1;
  int c = strcmp(a->uid, b->uid);
  if (c) return c;
  return (a->file > b->file) - (a->file < b->file);
}

/* Stored DICOM: the files of `path` grouped by SeriesInstanceUID, one run
 * per series in SeriesNumber order. */
static int start_dicom(fs_state *s) {
  char err[1024];
  if (s->shard == SHARD_VOXELS)
    return s->host->error(
        s->st, "%s: shard: voxels reads NIfTI volumes, not DICOM series; use shard: subject or run", s->path);
  dicom_files f;
  if (dicom_list(s->path, 0, &f, err, sizeof err)) return s->host->error(s->st, "%s", err);
  series_key *k = calloc(f.n, sizeof *k);
  char **paths = calloc(f.n, sizeof *paths);
  int rc = 0;
  if (!k || !paths) rc = s->host->error(s->st, "out of memory");
  for (size_t i = 0; i < f.n && !rc; i++) {
    dicom_image h;
    if (dicom_read(f.v[i], 0, &h, err, sizeof err)) {
      rc = s->host->error(s->st, "%s", err);
      break;
    }
    snprintf(k[i].uid, sizeof k[i].uid, "%s", h.series_uid);
    snprintf(k[i].patient, sizeof k[i].patient, "%s", h.patient_id);
    k[i].number = h.series_number;
    k[i].file = i;
    dicom_image_free(&h);
  }
  if (!rc) qsort(k, f.n, sizeof *k, cmp_series);
  /* series g starts at k[first[g]]; its subject label decides its shard */
  size_t ng = 0, *first = rc ? NULL : malloc((f.n + 1) * sizeof *first);
  char **subjects = rc ? NULL : calloc(f.n ? f.n : 1, sizeof *subjects);
  uint8_t *all = rc ? NULL : malloc(f.n ? f.n : 1);
  if (!rc && (!first || !subjects || !all)) rc = s->host->error(s->st, "out of memory");
  for (size_t i = 0; i < f.n && !rc; i++) {
    if (i && strcmp(k[i].uid, k[i - 1].uid) == 0) continue;
    char sub[128];
    dicom_subject(s, k[i].patient, sub, sizeof sub);
    all[ng] = 1;
    first[ng] = i;
    if (!(subjects[ng++] = strdup(sub))) rc = s->host->error(s->st, "out of memory");
  }
  if (first) first[ng] = f.n;
  shard_plan pl;
  memset(&pl, 0, sizeof pl);
  if (!rc) rc = plan_make(s, ng, all, subjects, &pl);
  for (size_t g = 0; g < ng && !rc && !s->host->stopping(s->st); g++) {
    if (!pl.mine[g]) continue;
    size_t m = 0;
    for (size_t j = first[g]; j < first[g + 1]; j++)
      paths[m++] = f.v[k[j].file];
    qsort(paths, m, sizeof *paths, cmp_str);
    plan_enter(s, &pl, g);
    rc = load_dicom_series(s, paths, m);
  }
  for (size_t g = 0; subjects && g < ng; g++)
    free(subjects[g]);
  free(subjects);
  free(all);
  free(first);
  plan_free(&pl);
  free(k);
  free(paths);
  dicom_files_free(&f);
  return rc;
}

static int start_stored(fs_state *s) {
  if (s->format == FMT_DICOM || (s->format == FMT_AUTO && path_is_dicom(s->path))) return start_dicom(s);
  char err[1024];
  fmri_list l;
  const char *path = s->path;
  if (fmri_discover(path, &l, err, sizeof err)) return s->host->error(s->st, "%s", err);
  uint8_t *sel = malloc(l.n ? l.n : 1);
  char **subjects = calloc(l.n ? l.n : 1, sizeof *subjects);
  shard_plan pl;
  memset(&pl, 0, sizeof pl);
  int rc = sel && subjects ? 0 : s->host->error(s->st, "out of memory");
  for (size_t i = 0; i < l.n && !rc; i++) {
    char sub[256];
    subject_of(&l.v[i], sub, sizeof sub);
    sel[i] = (uint8_t)item_selected(s, &l.v[i]);
    if (!(subjects[i] = strdup(sub))) rc = s->host->error(s->st, "out of memory");
  }
  if (!rc) rc = plan_make(s, l.n, sel, subjects, &pl);
  if (!rc && pl.n_runs == 0)
    rc = s->host->error(s->st, "%s: %zu run(s) found, none matches the subject/task/run/space filters", path,
                        l.n);
  if (!rc && l.archive) rc = load_archive(s, &l, &pl);
  for (size_t i = 0; i < l.n && !rc && !l.archive; i++) {
    if (s->host->stopping(s->st)) break;
    if (!pl.mine[i]) continue;
    plan_enter(s, &pl, i);
    rc = load_item(s, &l.v[i], NULL, NULL, 0);
  }
  for (size_t i = 0; subjects && i < l.n; i++)
    free(subjects[i]);
  free(subjects);
  free(sel);
  plan_free(&pl);
  fmri_list_free(&l);
  return rc;
}

/* ---- live folder ------------------------------------------------------------------ */

static void idle_closed(uv_handle_t *h) { (void)h; }

static void listen_end(fs_state *s);

static void live_end(fs_state *s) {
  listen_end(s);
  if (s->watch) myelin_watch_close(s->watch);
  s->watch = NULL;
  if (s->idle_active) {
    uv_close((uv_handle_t *)&s->idle, idle_closed);
    s->idle_active = 0;
  }
}

static void on_idle(uv_timer_t *t) {
  fs_state *s = t->data;
  s->host->log(s->st, MYELIN_LOG_INFO, "no new volume for %g s: ending the stream", s->idle_timeout);
  live_end(s);
}

/* Live files: 0 = emitted; LIVE_BAD = the file is unusable (err says why:
 * logged, skipped, the session goes on); < 0 = a fatal error (recorded). */
enum { LIVE_BAD = 1 };

/* The first good file fixes the grid, the selection and the labels. */
static int live_first(fs_state *s, const grid *g, const char *path, const char *name, const dicom_image *im,
                      char *err, size_t errlen) {
  const grid *w = s->mask ? &s->mask_grid : s->atlas ? &s->atlas_grid : NULL;
  if (w && !same_dims(g->dims, w->dims)) {
    snprintf(err, errlen, "%s: grid %lldx%lldx%lld does not match the %s's (%lldx%lldx%lld)", path,
             (long long)g->dims[0], (long long)g->dims[1], (long long)g->dims[2], s->mask ? "mask" : "atlas",
             (long long)w->dims[0], (long long)w->dims[1], (long long)w->dims[2]);
    return LIVE_BAD;
  }
  s->live_grid = *g;
  if (make_selection(s, path, &s->live_grid, &s->live_sel)) return MYELIN_EINVAL;
  if (im) {
    dicom_labels(s, im, s->live_subject, sizeof s->live_subject, s->live_task, sizeof s->live_task,
                 s->live_run, sizeof s->live_run);
    s->have_grid = 1;
    return 0;
  }
  fmri_item it;
  memset(&it, 0, sizeof it);
  if (fmri_entities(name, &it) == 0) {
    const char *sub = myelin_param_len(s->p, "subject") ? myelin_param_str_at(s->p, "subject", 0) : it.sub;
    const char *task = myelin_param_len(s->p, "task") ? myelin_param_str_at(s->p, "task", 0) : it.task;
    const char *run = myelin_param_len(s->p, "run") ? myelin_param_str_at(s->p, "run", 0) : it.run;
    if (!strncmp(sub, "sub-", 4)) sub += 4;
    snprintf(s->live_subject, sizeof s->live_subject, "%s", *sub ? sub : "live");
    snprintf(s->live_task, sizeof s->live_task, "%s", task);
    snprintf(s->live_run, sizeof s->live_run, "%s", run);
  }
  fmri_item_free(&it);
  s->have_grid = 1;
  return 0;
}

/* A later file must be on the first file's grid. */
static int live_check_grid(fs_state *s, const grid *g, const char *path, char *err, size_t errlen) {
  if (same_dims(g->dims, s->live_grid.dims)) return 0;
  snprintf(err, errlen, "%s: grid %lldx%lldx%lld differs from the first volume's (%lldx%lldx%lld)", path,
           (long long)g->dims[0], (long long)g->dims[1], (long long)g->dims[2],
           (long long)s->live_grid.dims[0], (long long)s->live_grid.dims[1], (long long)s->live_grid.dims[2]);
  return LIVE_BAD;
}

static double file_mtime(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (double)st.st_mtim.tv_sec + 1e-9 * (double)st.st_mtim.tv_nsec : 0;
}

/* Emits one volume x [all voxels of the live grid, C order]: the selection
 * gathered, parcel means with an atlas. */
static int live_emit(fs_state *s, const run_info *ri, const float *x, double t) {
  size_t V = s->live_sel.n;
  float *y = malloc((V ? V : 1) * sizeof *y), *P = NULL;
  if (!y) return s->host->error(s->st, "out of memory");
  for (size_t v = 0; v < V; v++)
    y[v] = x[s->live_sel.all ? v : s->live_sel.cidx[v]];
  const float *out = y;
  if (s->atlas) {
    if (!(P = malloc(s->nparcels * sizeof *P))) {
      free(y);
      return s->host->error(s->st, "out of memory");
    }
    fmri_parcel_means(y, 1, V, s->live_sel.parcel, s->nparcels, P);
    out = P;
    V = s->nparcels;
  }
  int rc = emit_volume(s, ri, out, V, s->live_index++, t);
  free(y);
  free(P);
  return rc;
}

static int live_nifti(fs_state *s, const char *path, const char *name, char *err, size_t errlen) {
  nifti_reader r;
  if (nifti_open_file(&r, path, err, errlen)) return LIVE_BAD;
  grid g;
  header_grid(&r.h, &g);
  int rc = s->have_grid ? live_check_grid(s, &g, path, err, errlen)
                        : live_first(s, &g, path, name, NULL, err, errlen);
  size_t n = r.h.nvox, nv = r.h.nvols;
  float *x = rc ? NULL : malloc((n ? n : 1) * nv * sizeof *x);
  if (!rc && !x) rc = s->host->error(s->st, "out of memory");
  /* Read every volume first: a truncated file emits nothing. */
  if (!rc && nifti_read_volumes_c(&r, nv, NULL, n, x, n, err, errlen)) rc = LIVE_BAD;
  double t0 = file_mtime(path), tr = s->tr_param > 0 ? s->tr_param : nifti_tr_seconds(&r.h);
  nifti_close(&r);
  run_info ri = {s->live_subject, s->live_task, s->live_run, tr,   &s->live_grid, s->live_sel.cidx,
                 s->live_sel.n,   NULL,         NULL,        NULL, NULL};
  for (size_t v = 0; !rc && v < nv; v++) {
    rc = live_emit(s, &ri, x + v * n, t0 + (double)v * tr);
    if (s->count > 0 && s->live_index >= (uint64_t)s->count) break;
  }
  free(x);
  return rc;
}

/* Assembles images (one file, or the slice files of one volume) and emits
 * their volumes; path/name: the file that completed them. */
static int live_images(fs_state *s, const char *path, const char *name, const dicom_image *im, size_t n,
                       char *err, size_t errlen) {
  dicom_series ser;
  if (dicom_assemble(im, n, &ser, err, errlen)) return LIVE_BAD;
  grid g;
  series_grid(&ser, &g);
  int rc = s->have_grid ? live_check_grid(s, &g, path, err, errlen)
                        : live_first(s, &g, path, name, &im[0], err, errlen);
  double t0 = file_mtime(path), tr = s->tr_param > 0 ? s->tr_param : ser.tr;
  run_info ri = {s->live_subject, s->live_task, s->live_run,     tr,   &s->live_grid, s->live_sel.cidx,
                 s->live_sel.n,   NULL,         ser.slice_times, NULL, NULL};
  size_t Vall = (size_t)(g.dims[0] * g.dims[1] * g.dims[2]);
  for (size_t t = 0; !rc && t < ser.T; t++) {
    rc = live_emit(s, &ri, ser.data + t * Vall, t0 + (double)t * tr);
    if (s->count > 0 && s->live_index >= (uint64_t)s->count) break;
  }
  dicom_series_free(&ser);
  return rc;
}

/* Classic single-frame exports write one file per slice. Slices are held
 * per volume — keyed by SeriesInstanceUID and AcquisitionNumber (else the
 * InstanceNumber's volume, (instance - 1) / slices) — until `slices` of
 * them have arrived, then assembled like a stored series (slices ordered by
 * their position along the normal, whatever the arrival order). A few
 * volumes may be incomplete at once (files of neighbouring volumes
 * interleaved); a volume pushed out by newer ones before it completes is
 * logged and skipped. */
enum { SLICE_GROUPS = 4, LIVE_PENDING = 2 };

typedef struct slice_group {
  char series[72];
  int64_t volume; /* AcquisitionNumber, else the InstanceNumber's volume */
  size_t n;
  dicom_image *im; /* [slices] */
  uint64_t age;
} slice_group;

static void group_clear(slice_group *g) {
  for (size_t i = 0; i < g->n; i++)
    dicom_image_free(&g->im[i]);
  g->n = 0;
  g->series[0] = 0;
}

static int live_slice(fs_state *s, const char *path, const char *name, dicom_image *im, char *err,
                      size_t errlen) {
  if (s->slices <= 0) {
    snprintf(err, errlen,
             "%s: a single-frame DICOM slice; set `slices` (the slice count of a volume) to assemble volumes "
             "from slice files in watch mode",
             path);
    dicom_image_free(im);
    return LIVE_BAD;
  }
  if (!s->groups && !(s->groups = calloc(SLICE_GROUPS, sizeof *s->groups))) {
    dicom_image_free(im);
    return s->host->error(s->st, "out of memory");
  }
  int64_t vol = im->acquisition_number >= 0 ? im->acquisition_number
                : im->instance_number >= 1  ? (im->instance_number - 1) / s->slices
                                            : -1;
  slice_group *g = NULL, *oldest = NULL;
  for (int i = 0; i < SLICE_GROUPS && !g; i++)
    if (s->groups[i].n && s->groups[i].volume == vol && !strcmp(s->groups[i].series, im->series_uid))
      g = &s->groups[i];
  for (int i = 0; i < SLICE_GROUPS && !g; i++) {
    slice_group *c = &s->groups[i];
    if (!c->n)
      g = c;
    else if (!oldest || c->age < oldest->age)
      oldest = c;
  }
  if (!g) {
    g = oldest;
    s->host->log(s->st, MYELIN_LOG_WARN,
                 "%s: the volume of acquisition %lld (series %s) got %zu of %lld slices before newer volumes "
                 "pushed it out; skipped",
                 g->im[g->n - 1].path, (long long)g->volume, g->series, g->n, (long long)s->slices);
    s->host->counter_add(s->st, "skipped", 1);
    group_clear(g);
  }
  if (!g->n) {
    if (!g->im && !(g->im = calloc((size_t)s->slices, sizeof *g->im))) {
      dicom_image_free(im);
      return s->host->error(s->st, "out of memory");
    }
    snprintf(g->series, sizeof g->series, "%s", im->series_uid);
    g->volume = vol;
  }
  g->age = ++s->group_clock;
  g->im[g->n++] = *im; /* the group owns the image now */
  if ((int64_t)g->n < s->slices) return LIVE_PENDING;
  int rc = live_images(s, path, name, g->im, g->n, err, errlen);
  group_clear(g);
  return rc;
}

/* A DICOM file: whole volumes (a mosaic, an enhanced image), or one slice. */
static int live_dicom(fs_state *s, const char *path, const char *name, char *err, size_t errlen) {
  dicom_image im;
  if (dicom_read(path, 1, &im, err, errlen)) return LIVE_BAD;
  if (im.nframes == 1 && im.mosaic_n == 0) return live_slice(s, path, name, &im, err, errlen);
  int rc = live_images(s, path, name, &im, 1, err, errlen);
  dicom_image_free(&im);
  return rc;
}

static void on_live_file(myelin_watch *w, const char *path, const char *name, void *arg) {
  fs_state *s = arg;
  (void)w;
  if (s->failed) return;
  char err[1024] = "";
  int dicom =
      s->format == FMT_DICOM || (s->format == FMT_AUTO && !is_nifti_name(name) && is_dicom_file(path));
  if (s->format == FMT_AUTO && !dicom && !is_nifti_name(name)) {
    s->host->log(s->st, MYELIN_LOG_DEBUG, "%s: neither NIfTI nor DICOM: ignored", path);
    return;
  }
  /* latency trace (MYELIN_DEBUG=1): last write -> reported by the watch -> read and emitted */
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  double lag = (double)now.tv_sec + 1e-9 * (double)now.tv_nsec - file_mtime(path);
  uint64_t t0 = uv_hrtime();
  int rc = dicom ? live_dicom(s, path, name, err, sizeof err) : live_nifti(s, path, name, err, sizeof err);
  s->host->log(s->st, MYELIN_LOG_DEBUG,
               "%s: reported %.1f ms after its last write; read and emitted in %.1f ms", name, 1e3 * lag,
               (double)(uv_hrtime() - t0) / 1e6);
  if (rc < 0) {
    s->failed = 1; /* the error is recorded: the run exits 1 */
    live_end(s);
    return;
  }
  if (rc == LIVE_BAD) {
    s->host->log(s->st, MYELIN_LOG_WARN, "%s; file skipped, still watching", err);
    s->host->counter_add(s->st, "skipped", 1);
  } else if (rc == 0) {
    s->host->counter_add(s->st, "volumes", 1);
  }
  if ((s->count > 0 && s->live_index >= (uint64_t)s->count) || s->host->stopping(s->st)) {
    live_end(s);
    return;
  }
  if (s->idle_active && (rc == 0 || rc == LIVE_PENDING)) uv_timer_again(&s->idle);
}

/* The idle timeout of the live modes: the stream ends after idle_timeout s
 * without a volume. */
static void start_idle(fs_state *s, uv_loop_t *loop) {
  if (!(s->idle_timeout > 0)) return;
  uint64_t ms = (uint64_t)(s->idle_timeout * 1000.0);
  uv_timer_init(loop, &s->idle);
  s->idle.data = s;
  uv_timer_start(&s->idle, on_idle, ms, ms);
  s->idle_active = 1;
}

static int start_live(fs_state *s) {
  char err[1024];
  uv_loop_t *loop = s->host->loop(s->st);
  if (!loop) return s->host->error(s->st, "no event loop for watch mode");
  const char *pattern = myelin_param_str(s->p, "pattern");
  if (!*pattern) pattern = s->format == FMT_NIFTI ? "*.nii*" : "*";
  myelin_watch_opts o = {
      .dir = s->watch_dir,
      .pattern = pattern,
      .settle_ms = (unsigned)myelin_param_int(s->p, "settle_ms"),
      .skip_existing = !myelin_param_bool(s->p, "existing"),
  };
  if (s->format != FMT_NIFTI && dicom_preload() != 0) /* volume 0 would pay the dictionary load */
    s->host->log(s->st, MYELIN_LOG_WARN,
                 "DCMTK found no data dictionary (DCMDICTPATH; Debian: libdcmtk17 ships dicom.dic): DICOM "
                 "files will not be readable");
  if (myelin_watch_start(loop, &o, on_live_file, s, &s->watch, err, sizeof err))
    return s->host->error(s->st, "%s", err);
  start_idle(s, loop);
  return 0;
}

/* ---- network input (`listen`): the AFNI realtime protocol --------------------------
 * Scanners and their relays (AFNI's rtfeedme, Dimon -rt, vendor plugins) push
 * control text and raw images over TCP; afni_rt.c decodes them. Each
 * connection has its own decoder; every complete volume goes out like a
 * watched file's. A connection that starts with a control channel message
 * ("tcp:host:port", AFNI's port-7954 handshake) makes the stage listen on
 * that port for the data channel too. A bad stream closes its connection
 * only: the error is logged and the stage keeps listening. */

typedef struct rt_conn {
  fs_state *s;
  uv_tcp_t tcp;
  afni_rt rt;
  char name[96]; /* "connection 3 (127.0.0.1:40112)" */
  int done;      /* an error or a control message: the rest is ignored */
  uint8_t buf[1 << 16];
  struct rt_conn *next;
} rt_conn;

static void rt_conn_closed(uv_handle_t *h) {
  rt_conn *c = h->data;
  fs_state *s = c->s;
  for (rt_conn **pp = &s->conns; *pp; pp = &(*pp)->next)
    if (*pp == c) {
      *pp = c->next;
      break;
    }
  afni_rt_free(&c->rt);
  free(c);
}

static void rt_conn_close(rt_conn *c) {
  if (!uv_is_closing((uv_handle_t *)&c->tcp)) uv_close((uv_handle_t *)&c->tcp, rt_conn_closed);
}

static void listen_end(fs_state *s) {
  for (int i = 0; i < 2; i++)
    if (s->listen_open[i]) {
      uv_close((uv_handle_t *)&s->listen_srv[i], NULL);
      s->listen_open[i] = 0;
    }
  for (rt_conn *c = s->conns; c; c = c->next)
    rt_conn_close(c);
}

static double wall_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One complete volume from a sender: t = its arrival (epoch seconds). */
static int rt_volume(void *arg, const afni_rt *p, const float *vol) {
  rt_conn *c = arg;
  fs_state *s = c->s;
  if (s->failed) return 1;
  double t = wall_now();
  grid g;
  memcpy(g.dims, p->dims, sizeof g.dims);
  memcpy(g.affine, p->affine, sizeof g.affine);
  char err[1024] = "", what[160];
  snprintf(what, sizeof what, "%s, volume %llu", c->name, (unsigned long long)p->volumes - 1);
  int rc = s->have_grid ? live_check_grid(s, &g, what, err, sizeof err)
                        : live_first(s, &g, what, p->name[0] ? p->name : "live", NULL, err, sizeof err);
  if (rc == 0) {
    run_info ri = {.subject = s->live_subject,
                   .task = s->live_task,
                   .run = s->live_run,
                   .tr = s->tr_param > 0 ? s->tr_param : p->tr,
                   .g = &s->live_grid,
                   .voxels = s->live_sel.cidx,
                   .nvox = s->live_sel.n,
                   .slice_times = p->slice_times};
    rc = live_emit(s, &ri, vol, t);
  }
  if (rc < 0) {
    s->failed = 1; /* recorded: the run exits 1 */
    live_end(s);
    return 1;
  }
  if (rc == LIVE_BAD) {
    s->host->log(s->st, MYELIN_LOG_WARN, "%s; volume skipped, still listening", err);
    s->host->counter_add(s->st, "skipped", 1);
  } else {
    s->host->counter_add(s->st, "volumes", 1);
  }
  if ((s->count > 0 && s->live_index >= (uint64_t)s->count) || s->host->stopping(s->st)) {
    live_end(s);
    return 1;
  }
  if (s->idle_active && rc == 0) uv_timer_again(&s->idle);
  return 0;
}

static void on_rt_connection(uv_stream_t *server, int status);

/* Listens on addr (slot i); 0 or a uv error code. */
static int listen_on(fs_state *s, int i, const struct sockaddr *addr) {
  uv_loop_t *loop = s->host->loop(s->st);
  uv_tcp_init(loop, &s->listen_srv[i]);
  s->listen_srv[i].data = s;
  s->listen_open[i] = 1;
  int rc = uv_tcp_bind(&s->listen_srv[i], addr, 0);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&s->listen_srv[i], 16, on_rt_connection);
  if (rc) {
    uv_close((uv_handle_t *)&s->listen_srv[i], NULL);
    s->listen_open[i] = 0;
  }
  return rc;
}

/* A control channel named the data channel "tcp:HOST:PORT": listen on PORT
 * (at the `listen` address) unless that is where we listen already. */
static void open_data_channel(fs_state *s, rt_conn *c) {
  const char *port_s = strrchr(c->rt.channel, ':');
  char *end;
  long port = port_s ? strtol(port_s + 1, &end, 10) : -1;
  if (!port_s || port_s == c->rt.channel + 3 || *end || port <= 0 || port > 65535) {
    s->host->log(s->st, MYELIN_LOG_ERROR, "%s: control channel names '%s', not tcp:host:port", c->name,
                 c->rt.channel);
    s->host->counter_add(s->st, "rejected", 1);
    return;
  }
  struct sockaddr_storage a = s->listen_addr;
  uint16_t own = a.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&a)->sin6_port)
                                         : ntohs(((struct sockaddr_in *)&a)->sin_port);
  if (port == own || (s->listen_open[1] && port == s->listen_port2)) return;
  if (s->listen_open[1]) uv_close((uv_handle_t *)&s->listen_srv[1], NULL), s->listen_open[1] = 0;
  if (a.ss_family == AF_INET6)
    ((struct sockaddr_in6 *)&a)->sin6_port = htons((uint16_t)port);
  else
    ((struct sockaddr_in *)&a)->sin_port = htons((uint16_t)port);
  int rc = listen_on(s, 1, (const struct sockaddr *)&a);
  if (rc) {
    s->host->log(s->st, MYELIN_LOG_ERROR, "%s: cannot listen on the data channel %s: %s", c->name,
                 c->rt.channel, uv_strerror(rc));
    return;
  }
  s->listen_port2 = (int)port;
  s->host->log(s->st, MYELIN_LOG_INFO, "%s: control channel; listening for the data channel on port %ld",
               c->name, port);
}

static void rt_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
  (void)suggested;
  rt_conn *c = h->data;
  b->base = (char *)c->buf;
  b->len = sizeof c->buf;
}

static void rt_read(uv_stream_t *h, ssize_t n, const uv_buf_t *b) {
  (void)b;
  rt_conn *c = h->data;
  fs_state *s = c->s;
  if (n == 0) return;
  if (n < 0) {
    char where[160];
    afni_rt_where(&c->rt, where, sizeof where);
    if (where[0] && !c->done) {
      s->host->log(
          s->st, MYELIN_LOG_ERROR,
          "%s: the sender disconnected %s; that volume is dropped, the %llu complete volume(s) before "
          "it were kept",
          c->name, where, (unsigned long long)c->rt.volumes);
      s->host->counter_add(s->st, "truncated", 1);
    } else if (n != UV_EOF) {
      s->host->log(s->st, MYELIN_LOG_WARN, "%s: %s", c->name, uv_strerror((int)n));
    } else if (!c->done) {
      s->host->log(s->st, MYELIN_LOG_INFO, "%s: closed after %llu volume(s)", c->name,
                   (unsigned long long)c->rt.volumes);
    }
    rt_conn_close(c);
    return;
  }
  if (c->done || s->failed) return;
  char err[1024];
  int rc = afni_rt_feed(&c->rt, c->buf, (size_t)n, rt_volume, c, err, sizeof err);
  if (rc == 1) {
    c->done = 1;
    open_data_channel(s, c);
  } else if (rc < 0) {
    c->done = 1;
    s->host->log(s->st, MYELIN_LOG_ERROR, "%s: %s; closing that connection, still listening", c->name, err);
    s->host->counter_add(s->st, "rejected", 1);
    uv_read_stop(h);
    rt_conn_close(c);
  }
}

static void on_rt_connection(uv_stream_t *server, int status) {
  fs_state *s = server->data;
  if (status < 0 || s->failed) return;
  rt_conn *c = calloc(1, sizeof *c);
  if (!c) return;
  c->s = s;
  afni_rt_init(&c->rt);
  uv_tcp_init(server->loop, &c->tcp);
  c->tcp.data = c;
  c->next = s->conns;
  s->conns = c;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    rt_conn_close(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  struct sockaddr_storage peer;
  int len = sizeof peer;
  char ip[64] = "?";
  int port = 0;
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&peer, &len) == 0) {
    if (peer.ss_family == AF_INET6) {
      uv_ip6_name((struct sockaddr_in6 *)&peer, ip, sizeof ip);
      port = ntohs(((struct sockaddr_in6 *)&peer)->sin6_port);
    } else {
      uv_ip4_name((struct sockaddr_in *)&peer, ip, sizeof ip);
      port = ntohs(((struct sockaddr_in *)&peer)->sin_port);
    }
  }
  snprintf(c->name, sizeof c->name, "connection %llu (%s:%d)", (unsigned long long)++s->next_conn, ip, port);
  s->host->counter_add(s->st, "connections", 1);
  uv_read_start((uv_stream_t *)&c->tcp, rt_alloc, rt_read);
}

static int start_listen(fs_state *s) {
  uv_loop_t *loop = s->host->loop(s->st);
  if (!loop) return s->host->error(s->st, "no event loop for listen mode");
  const char *spec = myelin_param_str(s->p, "listen");
  char err[256];
  socklen_t len;
  if (netaddr_parse(spec, &s->listen_addr, &len, err, sizeof err))
    return s->host->error(s->st, "listen: %s", err);
  int rc = listen_on(s, 0, (const struct sockaddr *)&s->listen_addr);
  if (rc) return s->host->error(s->st, "cannot listen on %s: %s", spec, uv_strerror(rc));
  s->host->log(s->st, MYELIN_LOG_INFO, "listening for AFNI realtime senders on %s", spec);
  start_idle(s, loop);
  return 0;
}

/* ---- lifecycle ---------------------------------------------------------------------- */

static int fs_validate(const myelin_params *p, myelin_validate_ctx *ctx) {
  const char *path = myelin_param_str(p, "path"), *watch = myelin_param_str(p, "watch");
  const char *listen = myelin_param_str(p, "listen");
  int live = (watch && *watch) || (listen && *listen);
  int rc = 0;
  if ((path && *path) + (watch && *watch) + (listen && *listen) != 1)
    rc = myelin_validate_error(ctx,
                               listen && *listen ? "listen"
                               : watch && *watch ? "watch"
                                                 : "path",
                               "set exactly one of path (stored runs), watch (a live folder) and listen (a "
                               "scanner pushing volumes over TCP)");
  struct sockaddr_storage ss;
  socklen_t sl;
  char aerr[256];
  if (listen && *listen && netaddr_parse(listen, &ss, &sl, aerr, sizeof aerr))
    rc = myelin_validate_error(ctx, "listen", "%s", aerr);
  const char *mask = myelin_param_str(p, "mask");
  if (live && myelin_param_is_set(p, "emit") && strcmp(myelin_param_str(p, "emit"), "run") == 0)
    rc = myelin_validate_error(ctx, "emit", "watch and listen modes emit volumes (emit: volume)");
  if (live && strcmp(mask, "auto") == 0)
    rc = myelin_validate_error(ctx, "mask",
                               "mask: auto needs whole runs; use a mask file with watch or listen");
  if (live && (myelin_param_int(p, "detrend") >= 0 || myelin_param_bool(p, "zscore")))
    rc = myelin_validate_error(ctx, live && myelin_param_bool(p, "zscore") ? "zscore" : "detrend",
                               "detrend and zscore need whole runs; not available with watch or listen");
  const char *atlas = myelin_param_str(p, "atlas");
  if (atlas && *atlas && strcmp(mask, "auto") == 0)
    rc = myelin_validate_error(ctx, "mask", "mask: auto cannot be combined with an atlas");
  if (live && strcmp(myelin_param_str(p, "shard"), "none") != 0)
    rc = myelin_validate_error(ctx, "shard",
                               "watch and listen modes read one live source on every rank: use shard: none");
  if (strcmp(myelin_param_str(p, "shard"), "voxels") == 0 && (strcmp(mask, "auto") == 0 || (atlas && *atlas)))
    rc = myelin_validate_error(ctx, strcmp(mask, "auto") == 0 ? "mask" : "atlas",
                               "shard: voxels splits the voxels across ranks: %s needs every voxel of a run; "
                               "use a mask file",
                               strcmp(mask, "auto") == 0 ? "mask: auto (a per-run choice of voxels)"
                                                         : "an atlas (parcel means)");
  int volumes = live || strcmp(myelin_param_str(p, "emit"), "volume") == 0;
  myelin_validate_set_output_kinds(ctx, "out", volumes ? "volume" : "run");
  return rc;
}

static void fs_fini(void *state);

static int fs_init_state(fs_state *s, const myelin_params *p);

/* fini only runs after a successful init: a failed init frees here. */
static int fs_init(const myelin_host *host, myelin_stage *st, const myelin_params *p, void **state) {
  fs_state *s = calloc(1, sizeof *s);
  if (!s) return MYELIN_ENOMEM;
  s->host = host;
  s->st = st;
  int rc = fs_init_state(s, p);
  if (rc) {
    fs_fini(s);
    return rc;
  }
  *state = s;
  return 0;
}

/* A relative input path that is not found from the working directory is
 * looked up next to the pipeline file (myelin_input_path). */
static char *input_path(fs_state *s, const char *path) {
  return myelin_input_path(path, s->host->pipeline_dir ? s->host->pipeline_dir(s->st) : NULL);
}

static int fs_init_state(fs_state *s, const myelin_params *p) {
  s->p = p;
  const char *watch = myelin_param_str(p, "watch");
  s->path = input_path(s, myelin_param_str(p, "path"));
  s->watch_dir = input_path(s, watch);
  s->labels_path = input_path(s, myelin_param_str(p, "atlas_labels"));
  if (!s->path || !s->watch_dir || !s->labels_path) return MYELIN_ENOMEM;
  s->emit_volume = (watch && *watch) || *myelin_param_str(p, "listen") ||
                   strcmp(myelin_param_str(p, "emit"), "volume") == 0;
  s->realtime = strcmp(myelin_param_str(p, "pace"), "realtime") == 0;
  const char *fmt = myelin_param_str(p, "format");
  s->format = strcmp(fmt, "dicom") == 0 ? FMT_DICOM : strcmp(fmt, "nifti") == 0 ? FMT_NIFTI : FMT_AUTO;
  s->zscore = myelin_param_bool(p, "zscore");
  s->detrend = (int)myelin_param_int(p, "detrend");
  s->trim = myelin_param_int(p, "trim");
  s->count = myelin_param_int(p, "count");
  s->slices = myelin_param_int(p, "slices");
  s->tr_param = myelin_param_float(p, "tr");
  s->idle_timeout = myelin_param_float(p, "idle_timeout");
  const char *shard = myelin_param_str(p, "shard");
  s->shard = !strcmp(shard, "subject")  ? SHARD_SUBJECT
             : !strcmp(shard, "run")    ? SHARD_RUN
             : !strcmp(shard, "voxels") ? SHARD_VOXELS
                                        : SHARD_NONE;
  s->rank = s->host->rank(s->st);
  s->size = s->host->size(s->st);
  const char *mask = myelin_param_str(p, "mask");
  s->mask_mode = strcmp(mask, "none") == 0 || !*mask ? MASK_NONE
                 : strcmp(mask, "auto") == 0         ? MASK_AUTO
                                                     : MASK_FILE;
  if (s->mask_mode == MASK_FILE) {
    s->mask_path = input_path(s, mask);
    if (!s->mask_path) return MYELIN_ENOMEM;
    if (load_mask(s, s->mask_path)) return MYELIN_EINVAL;
  }
  const char *atlas = myelin_param_str(p, "atlas");
  if (atlas && *atlas) {
    s->atlas_path = input_path(s, atlas);
    if (!s->atlas_path) return MYELIN_ENOMEM;
    if (load_atlas(s, s->atlas_path, s->labels_path)) return MYELIN_EINVAL;
  }
  return 0;
}

static int fs_start(void *state) {
  fs_state *s = state;
  const char *watch = myelin_param_str(s->p, "watch");
  if (*myelin_param_str(s->p, "listen")) return start_listen(s);
  return watch && *watch ? start_live(s) : start_stored(s);
}

static void fs_stop(void *state) { live_end(state); }

static void fs_fini(void *state) {
  fs_state *s = state;
  if (!s) return;
  while (s->conns) { /* the runtime closed every handle and ran the loop before fini */
    rt_conn *c = s->conns;
    s->conns = c->next;
    afni_rt_free(&c->rt);
    free(c);
  }
  for (int i = 0; s->groups && i < SLICE_GROUPS; i++) {
    group_clear(&s->groups[i]);
    free(s->groups[i].im);
  }
  free(s->groups);
  selection_free(&s->live_sel);
  free(s->slab.cols);
  free(s->mask);
  free(s->mask_path);
  free(s->path);
  free(s->watch_dir);
  free(s->labels_path);
  free(s->atlas);
  free(s->atlas_path);
  free(s->parcel_values);
  for (size_t k = 0; k < s->nparcels && s->parcel_names; k++)
    free(s->parcel_names[k]);
  free(s->parcel_names);
  free(s);
}

/* ---- descriptor -------------------------------------------------------------------- */

static const myelin_param_def fs_params[] = {
    {.name = "path",
     .type = MYELIN_PARAM_INPUT_PATH,
     .def = "",
     .doc = "A .nii/.nii.gz or GIFTI .func.gii/.shape.gii file, a glob, a BIDS dataset folder "
            "(sub-*/[ses-*/]func/*_bold.nii[.gz] or *_hemi-L/R_bold.func.gii: a hemisphere pair is one run) "
            "or a .tar/.tar.gz/.zip archive of NIfTI files (read in place); or a DICOM file, series folder "
            "or glob."},
    {.name = "watch",
     .type = MYELIN_PARAM_INPUT_PATH,
     .def = "",
     .doc =
         "Live mode: a folder where a scanner writes one volume file per TR (NIfTI, or a DICOM mosaic / "
         "enhanced image; or single-frame DICOM slice files, see slices); each complete file is read once, "
         "in name order; a bad file is logged and skipped. Exclusive with path and listen."},
    {.name = "listen",
     .type = MYELIN_PARAM_STRING,
     .def = "",
     .doc =
         "Network mode: host:port where a scanner (or AFNI's rtfeedme / Dimon -rt) pushes images in the "
         "AFNI realtime protocol; e.g. 127.0.0.1:7954, AFNI's control port (a control channel naming "
         "another data port opens that port too). Each complete volume is emitted; a bad stream closes its "
         "connection only. Exclusive with path and watch."},
    {.name = "format",
     .type = MYELIN_PARAM_ENUM,
     .def = "auto",
     .choices = "auto|nifti|dicom",
     .doc =
         "nifti, dicom (one series per SeriesInstanceUID: single-frame slices, Siemens mosaics, enhanced "
         "multi-frame), or auto: DICOM when the path is a DICOM file or a folder/glob of DICOM files and no "
         "NIfTI; in watch mode per file (.nii* = NIfTI, .dcm/.ima or the DICM magic = DICOM)."},
    {.name = "pattern",
     .type = MYELIN_PARAM_STRING,
     .def = "",
     .doc = "Watch mode: glob on file names (dot-files are always ignored); empty = '*.nii*' with format "
            "nifti, else '*' (with auto, files that are neither NIfTI nor DICOM are ignored)."},
    {.name = "settle_ms",
     .type = MYELIN_PARAM_INT,
     .def = "200",
     .has_range = 1,
     .min = 1,
     .max = 600000,
     .unit = "ms",
     .doc = "Watch mode: a file is complete when its size is stable this long (or renamed in)."},
    {.name = "slices",
     .type = MYELIN_PARAM_INT,
     .def = "0",
     .has_range = 1,
     .min = 0,
     .max = 100000,
     .unit = "files",
     .doc = "Watch mode, classic single-frame DICOM (one file per slice): the slices of a volume; a volume "
            "is assembled once this many files of one acquisition (AcquisitionNumber) have arrived. 0 = "
            "single-frame files are skipped with a warning."},
    {.name = "existing",
     .type = MYELIN_PARAM_BOOL,
     .def = "true",
     .doc = "Watch mode: also emit volumes already in the folder at start."},
    {.name = "count",
     .type = MYELIN_PARAM_INT,
     .def = "0",
     .has_range = 1,
     .min = 0,
     .max = 1e12,
     .unit = "volumes",
     .doc = "Watch and listen modes: end the stream after this many volumes (0 = no limit)."},
    {.name = "idle_timeout",
     .type = MYELIN_PARAM_FLOAT,
     .def = "0",
     .has_range = 1,
     .min = 0,
     .max = 1e9,
     .unit = "s",
     .doc = "Watch and listen modes: end the stream after this long without a new volume (0 = never)."},
    {.name = "subject",
     .type = MYELIN_PARAM_STRING_LIST,
     .def = "[]",
     .doc = "Keep these subjects (\"01\" or \"sub-01\"); empty = all. In watch mode the first one labels the "
            "data."},
    {.name = "task", .type = MYELIN_PARAM_STRING_LIST, .def = "[]", .doc = "Keep these tasks; empty = all."},
    {.name = "run",
     .type = MYELIN_PARAM_STRING_LIST,
     .def = "[]",
     .doc = "Keep these runs (numbers compare as numbers); empty = all."},
    {.name = "space",
     .type = MYELIN_PARAM_STRING_LIST,
     .def = "[]",
     .doc = "Keep these spaces (the BIDS space- entity, e.g. MNI152NLin2009cAsym); empty = all."},
    {.name = "mask",
     .type = MYELIN_PARAM_STRING,
     .def = "none",
     .doc = "none (every voxel), auto (voxels whose time series is not constant), or a NIfTI mask path "
            "(non-zero voxels kept; same grid as the runs)."},
    {.name = "atlas",
     .type = MYELIN_PARAM_INPUT_PATH,
     .def = "",
     .doc = "A NIfTI label image on the runs' grid: emit parcel-mean time series (one column per label > 0, "
            "ascending) with `labels`."},
    {.name = "atlas_labels",
     .type = MYELIN_PARAM_INPUT_PATH,
     .def = "",
     .doc = "TSV of label names (\"index<TAB>name\" per line, a header line is skipped)."},
    {.name = "trim",
     .type = MYELIN_PARAM_INT,
     .def = "0",
     .has_range = 1,
     .min = 0,
     .max = 1e9,
     .unit = "TRs",
     .doc = "Drop the first k volumes of each run (scanner warm-up)."},
    {.name = "detrend",
     .type = MYELIN_PARAM_INT,
     .def = "-1",
     .has_range = 1,
     .min = -1,
     .max = 10,
     .doc = "Remove a polynomial trend of this order per voxel (0 = mean, 1 = linear, ...; -1 = off). "
            "Needs order <= T-2: a higher order fits exactly, so the output is 0 (with a warning)."},
    {.name = "zscore",
     .type = MYELIN_PARAM_BOOL,
     .def = "false",
     .doc = "z-score every voxel/parcel over time (population std; constant series become 0)."},
    {.name = "emit",
     .type = MYELIN_PARAM_ENUM,
     .def = "run",
     .choices = "run|volume",
     .doc = "run: one `run` message [T, V] per run; volume: one `volume` [V] per TR."},
    {.name = "pace",
     .type = MYELIN_PARAM_ENUM,
     .def = "asap",
     .choices = "asap|realtime",
     .doc = "realtime replays stored runs at their TR (one volume per TR, or a run per its duration)."},
    {.name = "shard",
     .type = MYELIN_PARAM_ENUM,
     .def = "none",
     .choices = "none|subject|run|voxels",
     .doc = "Under mpirun: which runs each rank reads. none: every rank reads every run; subject: the "
            "subjects (sorted) in contiguous blocks, one block per rank, each rank reading all runs of its "
            "subjects; run: the runs (in path order) in blocks; voxels: every run on every rank, each rank "
            "reading only its z-slab (planes balanced by masked voxels; NIfTI only; with voxel_total, "
            "voxel_index, slab). Messages carry n_subjects, subject_index, n_runs and run_index (global)."},
    {.name = "tr",
     .type = MYELIN_PARAM_FLOAT,
     .def = "0",
     .has_range = 1,
     .min = 0,
     .max = 1e4,
     .unit = "s",
     .doc = "Repetition time override; 0 = the JSON sidecar's RepetitionTime, else the header's pixdim[4]."},
    {0}};

static const myelin_port_def fs_outputs[] = {
    {.name = "out",
     .kinds = "run|volume",
     .doc = "`run` {data <f4 [T, V], tr, subject, task, run, n_subjects, subject_index, n_runs, run_index, "
            "geometry, labels?, slice_times?} or `volume` {data <f4 [V], index, t, tr, subject, task, run, "
            "n_subjects, subject_index, n_runs, run_index, geometry, slice_times?} (watch mode: no n_*/ "
            "*_index)"},
    {0}};

static const myelin_plugin_desc fs_desc = {
    MYELIN_DESC_HEADER,
    .name = "fmri_source",
    .version = "1.0.0",
    .summary = "fMRI loader: NIfTI-1/2, DICOM, GIFTI surfaces, BIDS folders, archives, masks, atlases, live "
               "scanner folders",
    .doc = "Voxel order in V is flat C order over (x, y, z): index = (x*ny + y)*nz + z, listed in "
           "geometry.voxels. Data equal nibabel's get_fdata() (scl_slope/scl_inter applied) and the affine "
           "is nibabel's (sform, else qform, else pixdim).",
    .params = fs_params,
    .outputs = fs_outputs,
    .validate = fs_validate,
    .init = fs_init,
    .start = fs_start,
    .stop = fs_stop,
    .fini = fs_fini,
};

MYELIN_PLUGIN(fs_desc)
