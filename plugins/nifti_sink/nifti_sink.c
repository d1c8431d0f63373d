/*
 * nifti_sink — writes `map`, `run` and `volume` messages back to NIfTI
 * (.nii or .nii.gz) on the source's grid, so any viewer shows them.
 *
 * The grid comes from the message's `geometry` (schemas/geometry.md): dims and
 * affine, plus either `voxels` (C-order indices of the V columns) or an
 * `atlas` label image whose parcels (geometry.values, else the atlas's
 * labels > 0 in ascending order) receive the V values. Surface, grayordinate
 * and parcel geometries are refused with an error naming the sinks that
 * write them (common/geometry.h). Every row of the
 * data (everything before the last axis) becomes one volume along the 4th
 * dimension: a map [S, V] of per-subject values is a 4-D image of S
 * volumes, a run [T, V] a 4-D image of T volumes with pixdim[4] = tr.
 * Voxels outside the map are 0, or NaN with `fill: nan`.
 *
 * `volume` messages are collected per (subject, task, run) and written as
 * one 4-D image when that key changes or at end of stream. Files are written
 * through myelin_atomic_open/commit: a half-written image never appears
 * under its final name. `path` expands {subject}, {task}, {run}, {stat}, {layer} and
 * {seq} from each message. A second image expanding to a path already
 * written in this run is an error naming both messages (myelin_pathset,
 * io.h): results are never silently replaced.
 *
 * When the run stopped early (an interrupt, or an error anywhere), fini says
 * on stderr what is left: the images written so far (each complete), and the
 * volumes still being collected, which are discarded after an error or
 * abort (a clean stop writes them in flush).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/geometry.h"
#include "../common/path_template.h"
#include "../common/tensor_elem.h"
#include "myelin/myelin.h"
#include "nifti.h"

typedef struct atlas_cache {
  char *path;
  int64_t dims[3];
  double affine[4][4];
  int32_t *label; /* per file-order voxel */
} atlas_cache;

typedef struct grid_out {
  int64_t dims[3];
  double affine[4][4];
  size_t V;
  uint32_t *fidx; /* per column: file-order voxel offset (voxel geometry) */
  /* atlas geometry: label per file voxel -> column (or -1) */
  int32_t *col_of_voxel;
} grid_out;

typedef struct ns_state {
  const myelin_host *host;
  myelin_stage *st;
  char *path_tmpl;
  int fill_nan, do_fsync;
  uint64_t files;
  uint64_t received;      /* messages seen, numbering them in errors */
  myelin_pathset written; /* paths written in this run */
  atlas_cache atlas;
  /* volumes being collected */
  myelin_msg *vol_first; /* geometry + context of the current group */
  uint64_t vol_first_no; /* its message number */
  char vol_key[512];
  float *vol_rows;
  size_t vol_n, vol_cap, vol_V;
} ns_state;

/* ---- path templates ------------------------------------------------------ */

static const char *const tmpl_keys[] = {"subject", "task", "run", "stat", "layer", "seq", NULL};

/* Expands {key} from m; seq falls back to the sink's file counter. */
static int expand_path(const ns_state *s, const myelin_msg *m, char *out, size_t n) {
  return path_template_expand(s->path_tmpl, tmpl_keys, m, NULL, NULL, (unsigned long long)s->files, out, n);
}

static int is_gz(const char *p) {
  size_t n = strlen(p);
  return n > 3 && !strcmp(p + n - 3, ".gz");
}

/* ---- geometry ---------------------------------------------------------------- */

static int load_atlas(ns_state *s, const char *path) {
  if (s->atlas.path && !strcmp(s->atlas.path, path)) return 0;
  free(s->atlas.path);
  free(s->atlas.label);
  memset(&s->atlas, 0, sizeof s->atlas);
  char err[768];
  nifti_reader r;
  if (nifti_open_file(&r, path, err, sizeof err)) return s->host->error(s->st, "geometry.atlas: %s", err);
  size_t n = r.h.nvox;
  float *v = malloc(n * sizeof *v);
  s->atlas.label = malloc(n * sizeof *s->atlas.label);
  int rc = 0;
  if (!v || !s->atlas.label)
    rc = s->host->error(s->st, "out of memory");
  else if (nifti_read_volumes(&r, 1, NULL, n, v, n, err, sizeof err))
    rc = s->host->error(s->st, "%s", err);
  if (!rc) {
    for (size_t i = 0; i < n; i++)
      s->atlas.label[i] = isfinite(v[i]) ? (int32_t)lrintf(v[i]) : 0;
    for (int i = 0; i < 3; i++)
      s->atlas.dims[i] = r.h.dim[i + 1];
    nifti_affine(&r.h, s->atlas.affine);
    s->atlas.path = strdup(path);
  }
  free(v);
  nifti_close(&r);
  return rc;
}

static int cmp_i32(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

/* Column per atlas voxel: geometry.values, else the sorted labels > 0. */
static int atlas_columns(ns_state *s, myelin_obj g, size_t V, grid_out *go) {
  size_t n = (size_t)(go->dims[0] * go->dims[1] * go->dims[2]);
  int32_t *vals = malloc((V ? V : 1) * sizeof *vals);
  go->col_of_voxel = malloc(n * sizeof *go->col_of_voxel);
  if (!vals || !go->col_of_voxel) {
    free(vals);
    return s->host->error(s->st, "out of memory");
  }
  myelin_tensor t;
  if (myelin_obj_tensor(myelin_obj_get(g, "values"), &t) == 0) {
    if (t.count != V) {
      free(vals);
      return s->host->error(s->st, "geometry.values has %zu entries, data has %zu columns", t.count, V);
    }
    for (size_t k = 0; k < V; k++)
      vals[k] = t.dtype == MYELIN_I4   ? ((const int32_t *)t.data)[k]
                : t.dtype == MYELIN_I8 ? (int32_t)((const int64_t *)t.data)[k]
                : t.dtype == MYELIN_U4 ? (int32_t)((const uint32_t *)t.data)[k]
                                       : -1;
  } else {
    int32_t *u = malloc(n * sizeof *u);
    if (!u) {
      free(vals);
      return s->host->error(s->st, "out of memory");
    }
    size_t m = 0, k = 0;
    for (size_t i = 0; i < n; i++)
      if (s->atlas.label[i] > 0) u[m++] = s->atlas.label[i];
    qsort(u, m, sizeof *u, cmp_i32);
    for (size_t i = 0; i < m; i++)
      if (k == 0 || u[i] != u[k - 1]) u[k++] = u[i];
    if (k != V) {
      free(u);
      free(vals);
      return s->host->error(s->st, "atlas %s has %zu labels but the data has %zu columns", s->atlas.path, k,
                            V);
    }
    memcpy(vals, u, V * sizeof *vals);
    free(u);
  }
  /* label -> column through a sorted (label, column) table */
  int32_t(*tab)[2] = malloc((V ? V : 1) * sizeof *tab);
  if (!tab) {
    free(vals);
    return s->host->error(s->st, "out of memory");
  }
  for (size_t k = 0; k < V; k++) {
    tab[k][0] = vals[k];
    tab[k][1] = (int32_t)k;
  }
  qsort(tab, V, sizeof *tab, cmp_i32); /* compares the first int32 of each pair */
  for (size_t i = 0; i < n; i++) {
    int32_t key[2] = {s->atlas.label[i], 0};
    int32_t(*hit)[2] = s->atlas.label[i] > 0 ? bsearch(key, tab, V, sizeof *tab, cmp_i32) : NULL;
    go->col_of_voxel[i] = hit ? (*hit)[1] : -1;
  }
  free(tab);
  free(vals);
  return 0;
}

static int read_dims(ns_state *s, myelin_obj g, int64_t dims[3]) {
  myelin_obj d = myelin_obj_get(g, "dims");
  if (myelin_obj_type_of(d) != MYELIN_OBJ_ARRAY || myelin_obj_len(d) != 3)
    return s->host->error(s->st, "geometry.dims must be a list [x, y, z]");
  for (int i = 0; i < 3; i++)
    if (myelin_obj_int(myelin_obj_at(d, (size_t)i), &dims[i]) || dims[i] < 1 || dims[i] > 32767)
      return s->host->error(s->st, "geometry.dims[%d] must be an integer in 1..32767", i);
  return 0;
}

static int read_affine(ns_state *s, myelin_obj g, double a[4][4]) {
  myelin_tensor t;
  if (myelin_obj_tensor(myelin_obj_get(g, "affine"), &t) != 0) {
    memset(a, 0, 16 * sizeof(double));
    for (int i = 0; i < 4; i++)
      a[i][i] = 1.0;
    s->host->log(s->st, MYELIN_LOG_WARN, "geometry has no affine: writing the identity");
    return 0;
  }
  if (t.count != 16 || (t.dtype != MYELIN_F8 && t.dtype != MYELIN_F4))
    return s->host->error(s->st, "geometry.affine must be a float tensor [4, 4]");
  for (int i = 0; i < 16; i++)
    a[i / 4][i % 4] = t.dtype == MYELIN_F8 ? ((const double *)t.data)[i] : ((const float *)t.data)[i];
  return 0;
}

static void grid_free(grid_out *go) {
  free(go->fidx);
  free(go->col_of_voxel);
  memset(go, 0, sizeof *go);
}

/* Builds the output grid for V columns from m's geometry. */
static int read_geometry(ns_state *s, const myelin_msg *m, size_t V, grid_out *go) {
  memset(go, 0, sizeof *go);
  go->V = V;
  myelin_obj g = myelin_msg_get(m, "geometry");
  if (myelin_obj_type_of(g) != MYELIN_OBJ_MAP)
    return s->host->error(s->st, "%s message without a geometry map: cannot place it on a grid",
                          myelin_msg_kind(m));
  if (geom_model_of(g) != GEOM_VOLUME) {
    char why[512];
    geom_refusal(why, sizeof why, "nifti_sink", myelin_msg_kind(m), g);
    return s->host->error(s->st, "%s", why);
  }
  char atlas[4096];
  if (myelin_obj_str_copy(myelin_obj_get(g, "atlas"), atlas, sizeof atlas) == 0 && atlas[0]) {
    if (load_atlas(s, atlas)) return MYELIN_EINVAL;
    memcpy(go->dims, s->atlas.dims, sizeof go->dims);
    memcpy(go->affine, s->atlas.affine, sizeof go->affine);
    if (myelin_obj_exists(myelin_obj_get(g, "affine")) && read_affine(s, g, go->affine)) return MYELIN_EINVAL;
    return atlas_columns(s, g, V, go);
  }
  if (read_dims(s, g, go->dims) || read_affine(s, g, go->affine)) return MYELIN_EINVAL;
  size_t n = (size_t)(go->dims[0] * go->dims[1] * go->dims[2]);
  go->fidx = malloc((V ? V : 1) * sizeof *go->fidx);
  if (!go->fidx) return s->host->error(s->st, "out of memory");
  myelin_tensor t;
  if (myelin_obj_tensor(myelin_obj_get(g, "voxels"), &t) != 0) {
    if (V != n)
      return s->host->error(
          s->st, "geometry has neither voxels nor atlas, and V = %zu is not the grid size %zu", V, n);
    uint32_t *c = malloc(n * sizeof *c);
    if (!c) return s->host->error(s->st, "out of memory");
    for (size_t i = 0; i < n; i++)
      c[i] = (uint32_t)i;
    nifti_corder_to_forder(c, n, go->dims, go->fidx);
    free(c);
    return 0;
  }
  if (t.count != V)
    return s->host->error(s->st, "geometry.voxels has %zu entries, data has %zu columns", t.count, V);
  uint32_t *c = malloc((V ? V : 1) * sizeof *c);
  if (!c) return s->host->error(s->st, "out of memory");
  int rc = 0;
  for (size_t k = 0; k < V && !rc; k++) {
    int64_t v = t.dtype == MYELIN_U4   ? ((const uint32_t *)t.data)[k]
                : t.dtype == MYELIN_I4 ? ((const int32_t *)t.data)[k]
                : t.dtype == MYELIN_I8 ? ((const int64_t *)t.data)[k]
                : t.dtype == MYELIN_U8 ? (int64_t)((const uint64_t *)t.data)[k]
                                       : -1;
    if (v < 0 || (size_t)v >= n)
      rc = s->host->error(s->st, "geometry.voxels[%zu] = %lld is outside the %zu-voxel grid", k, (long long)v,
                          n);
    else
      c[k] = (uint32_t)v;
  }
  if (!rc) nifti_corder_to_forder(c, V, go->dims, go->fidx);
  free(c);
  return rc;
}

/* ---- writing ----------------------------------------------------------------------- */

static float elem(const myelin_tensor *t, size_t i) { return tensor_elem_f32(t, i); }

/* Scatters R rows of V columns (row r at rows + r * V, or from a tensor)
 * into R file-order volumes and writes the image. */
static int write_image(ns_state *s, const myelin_msg *m, uint64_t msg_no, const grid_out *go,
                       const myelin_tensor *t, const float *rows, size_t R, double tr) {
  size_t nvox = (size_t)(go->dims[0] * go->dims[1] * go->dims[2]);
  if (R > 32767) return s->host->error(s->st, "%zu rows do not fit a NIfTI-1 4th dimension", R);
  float *img = malloc((nvox * R > 0 ? nvox * R : 1) * sizeof *img);
  if (!img) return s->host->error(s->st, "out of memory for a %zu x %zu image", nvox, R);
  float fill = s->fill_nan ? NAN : 0.0f;
  for (size_t i = 0; i < nvox * R; i++)
    img[i] = fill;
  for (size_t r = 0; r < R; r++) {
    float *vol = img + r * nvox;
    size_t base = r * go->V;
    if (go->fidx) {
      for (size_t k = 0; k < go->V; k++)
        vol[go->fidx[k]] = rows ? rows[base + k] : elem(t, base + k);
    } else {
      for (size_t i = 0; i < nvox; i++) {
        int32_t k = go->col_of_voxel[i];
        if (k >= 0) vol[i] = rows ? rows[base + (size_t)k] : elem(t, base + (size_t)k);
      }
    }
  }
  char path[4096], err[1024];
  int rc = 0;
  if (expand_path(s, m, path, sizeof path)) rc = s->host->error(s->st, "path too long");
  int claim = rc ? 0 : myelin_pathset_claim(&s->written, path, msg_no, err, sizeof err);
  if (claim == MYELIN_ENOMEM)
    rc = s->host->error(s->st, "%s", err);
  else if (claim)
    rc = s->host->error(s->st, "%s; make the path unique with {subject} {task} {run} {stat} {layer} or {seq}", err);
  myelin_atomic_file f;
  memset(&f, 0, sizeof f);
  if (!rc && (myelin_mkdirs_for(path, err, sizeof err) || myelin_atomic_open(&f, path, err, sizeof err)))
    rc = s->host->error(s->st, "%s", err);
  int64_t dims[4] = {go->dims[0], go->dims[1], go->dims[2], (int64_t)R};
  if (!rc && nifti_write_f32(f.fp, dims, &go->affine[0][0], tr, img, is_gz(path), err, sizeof err)) {
    myelin_atomic_abort(&f);
    rc = s->host->error(s->st, "%s: %s", path, err);
  }
  if (!rc && myelin_atomic_commit(&f, s->do_fsync, err, sizeof err)) rc = s->host->error(s->st, "%s", err);
  free(img);
  if (!rc) {
    s->files++;
    s->host->counter_add(s->st, "files", 1);
  }
  return rc;
}

static int write_tensor_msg(ns_state *s, const myelin_msg *m, uint64_t msg_no) {
  myelin_tensor t;
  if (myelin_msg_tensor(m, "data", &t) != 0 || t.ndim < 1)
    return s->host->error(s->st, "%s message without a data tensor", myelin_msg_kind(m));
  if (t.dtype == MYELIN_DTYPE_INVALID) return s->host->error(s->st, "data has an unknown dtype");
  size_t V = (size_t)t.shape[t.ndim - 1], R = V ? t.count / V : 0;
  if (R == 0) return s->host->error(s->st, "data tensor is empty");
  grid_out go;
  int rc = read_geometry(s, m, V, &go);
  double tr = 0;
  if (myelin_msg_float(m, "tr", &tr) != 0) tr = 0;
  if (!rc) rc = write_image(s, m, msg_no, &go, &t, NULL, R, tr);
  grid_free(&go);
  return rc;
}

/* ---- volume groups ------------------------------------------------------------------- */

static int flush_volumes(ns_state *s) {
  if (!s->vol_first) return 0;
  grid_out go;
  int rc = read_geometry(s, s->vol_first, s->vol_V, &go);
  double tr = 0;
  if (myelin_msg_float(s->vol_first, "tr", &tr) != 0) tr = 0;
  if (!rc) rc = write_image(s, s->vol_first, s->vol_first_no, &go, NULL, s->vol_rows, s->vol_n, tr);
  grid_free(&go);
  myelin_msg_unref(s->vol_first);
  s->vol_first = NULL;
  s->vol_n = 0;
  return rc;
}

static int add_volume(ns_state *s, myelin_msg *m, uint64_t msg_no) {
  char key[512], sub[160], task[160], run[160];
  myelin_msg_text(m, "subject", sub, sizeof sub);
  myelin_msg_text(m, "task", task, sizeof task);
  myelin_msg_text(m, "run", run, sizeof run);
  snprintf(key, sizeof key, "%s\x1f%s\x1f%s", sub, task, run);
  myelin_tensor t;
  if (myelin_msg_tensor(m, "data", &t) != 0 || t.ndim != 1)
    return s->host->error(s->st, "volume message: data must be a 1-D tensor [V]");
  if (s->vol_first && (strcmp(key, s->vol_key) != 0 || t.count != s->vol_V)) {
    int rc = flush_volumes(s);
    if (rc) return rc;
  }
  if (!s->vol_first) {
    s->vol_first = myelin_msg_ref(m);
    s->vol_first_no = msg_no;
    snprintf(s->vol_key, sizeof s->vol_key, "%s", key);
    s->vol_V = t.count;
  }
  if (s->vol_n == s->vol_cap) {
    size_t nc = s->vol_cap ? s->vol_cap * 2 : 64;
    float *nr = realloc(s->vol_rows, nc * s->vol_V * sizeof *nr);
    if (!nr) return s->host->error(s->st, "out of memory collecting volumes");
    s->vol_rows = nr;
    s->vol_cap = nc;
  }
  float *row = s->vol_rows + s->vol_n * s->vol_V;
  for (size_t k = 0; k < s->vol_V; k++)
    row[k] = elem(&t, k);
  s->vol_n++;
  return 0;
}

/* ---- lifecycle ------------------------------------------------------------------------ */

static int ns_validate(const myelin_params *p, myelin_validate_ctx *ctx) {
  const char *path = myelin_param_str(p, "path");
  size_t n = strlen(path);
  if (!(n > 4 && !strcmp(path + n - 4, ".nii")) && !(n > 7 && !strcmp(path + n - 7, ".nii.gz")))
    return myelin_validate_error(ctx, "path", "path must end in .nii or .nii.gz");
  if (path_template_check(path, tmpl_keys, NULL))
    return myelin_validate_error(ctx, "path",
                                 "unknown placeholder in path (use {subject} {task} {run} {stat} {layer} {seq})");
  return 0;
}

static int ns_init(const myelin_host *host, myelin_stage *st, const myelin_params *p, void **state) {
  ns_state *s = calloc(1, sizeof *s);
  if (!s) return MYELIN_ENOMEM;
  *state = s;
  s->host = host;
  s->st = st;
  s->path_tmpl = strdup(myelin_param_str(p, "path"));
  if (!s->path_tmpl) {
    free(s);
    *state = NULL;
    return MYELIN_ENOMEM;
  }
  s->fill_nan = strcmp(myelin_param_str(p, "fill"), "nan") == 0;
  s->do_fsync = myelin_param_bool(p, "fsync");
  if (!strchr(s->path_tmpl, '{')) { /* a fixed folder can be checked now */
    char err[1024];
    if (myelin_mkdirs_for(s->path_tmpl, err, sizeof err) ||
        myelin_check_writable(s->path_tmpl, err, sizeof err)) {
      int rc = host->error(st, "%s", err);
      free(s->path_tmpl);
      free(s); /* fini only runs after a successful init */
      *state = NULL;
      return rc;
    }
  }
  return 0;
}

static int ns_process(void *state, int port, myelin_msg *msg) {
  ns_state *s = state;
  (void)port;
  const char *kind = myelin_msg_kind(msg);
  uint64_t msg_no = s->received++;
  if (!strcmp(kind, "volume")) return add_volume(s, msg, msg_no);
  if (s->vol_first) {
    int rc = flush_volumes(s);
    if (rc) return rc;
  }
  if (!strcmp(kind, "map") || !strcmp(kind, "run")) return write_tensor_msg(s, msg, msg_no);
  return s->host->error(s->st, "cannot write a '%s' message as NIfTI (map, run or volume)", kind);
}

static int ns_flush(void *state) { return flush_volumes(state); }

static void ns_fini(void *state) {
  ns_state *s = state;
  if (!s) return;
  if (s->host->stopping(s->st)) {
    char path[4096] = "";
    if (s->vol_first && expand_path(s, s->vol_first, path, sizeof path))
      snprintf(path, sizeof path, "%s", s->path_tmpl);
    if (s->vol_first)
      s->host->log(
          s->st, MYELIN_LOG_WARN,
          "discarded %s: its %zu volume(s) were never written (the run stopped on an error or abort); "
          "kept %llu image(s) %s written before, each complete",
          path, s->vol_n, (unsigned long long)s->files, s->path_tmpl);
    else if (s->files)
      s->host->log(s->st, MYELIN_LOG_INFO, "kept %llu image(s) %s written before the stop, each complete",
                   (unsigned long long)s->files, s->path_tmpl);
    else
      s->host->log(s->st, MYELIN_LOG_INFO, "wrote nothing to %s: no message arrived before the stop",
                   s->path_tmpl);
  }
  myelin_msg_unref(s->vol_first);
  free(s->vol_rows);
  free(s->atlas.path);
  free(s->atlas.label);
  free(s->path_tmpl);
  myelin_pathset_free(&s->written);
  free(s);
}

static const myelin_param_def ns_params[] = {
    {.name = "path",
     .type = MYELIN_PARAM_STRING,
     .doc = "Output file, .nii or .nii.gz (gzip); {subject} {task} {run} {stat} {layer} {seq} expand from each "
            "message ({seq}: the message's seq, else the count of files written)."},
    {.name = "fill",
     .type = MYELIN_PARAM_ENUM,
     .def = "zero",
     .choices = "zero|nan",
     .doc = "Value of grid voxels the map does not cover."},
    {.name = "fsync",
     .type = MYELIN_PARAM_BOOL,
     .def = "false",
     .doc = "fsync each file before renaming it into place."},
    {0}};

static const myelin_port_def ns_inputs[] = {
    {.name = "in",
     .kinds = "map|run|volume",
     .doc = "maps (rows become volumes), runs [T, V], or volumes collected per subject/task/run"},
    {0}};

static const myelin_plugin_desc ns_desc = {
    MYELIN_DESC_HEADER,
    .name = "nifti_sink",
    .version = "1.0.0",
    .summary = "write map/run/volume messages as NIfTI images on the source grid",
    .doc = "float32 NIfTI-1 with the geometry's affine as sform and qform; nibabel and any viewer read it.",
    .params = ns_params,
    .inputs = ns_inputs,
    .validate = ns_validate,
    .init = ns_init,
    .process = ns_process,
    .flush = ns_flush,
    .fini = ns_fini,
};

MYELIN_PLUGIN(ns_desc)
