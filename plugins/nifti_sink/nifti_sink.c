/*
 * nifti_sink — writes `map`, `run` and `volume` messages back to NIfTI
 * (.nii or .nii.gz) on the source's grid, so any viewer shows them.
 *
 * The grid comes from the message's `geometry` (schemas/geometry.md): dims and
 * affine, plus either `voxels` (C-order indices of the V columns) or an
 * `atlas` label image whose parcels (geometry.values, else the atlas's
 * labels > 0 in ascending order) receive the V values. Surface, grayordinate
 * and parcel geometries are refused with an error naming the sinks that
 * write them (common/geometry.h; the grid itself is read by nifti_grid.c,
 * shared with the figure plugin). Every row of the
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

#include "../common/map_file.h"
#include "../common/path_template.h"
#include "../common/tensor_elem.h"
#include "myelin/myelin.h"
#include "nifti.h"
#include "nifti_grid.h"

typedef struct ns_state {
  const myelin_host *host;
  myelin_stage *st;
  map_file_out out; /* path, fsync, files written, paths claimed in this run */
  int fill_nan;
  uint64_t received; /* messages seen, numbering them in errors */
  nifti_atlas atlas;
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
  return path_template_expand(s->out.path_tmpl, tmpl_keys, m, NULL, NULL, (unsigned long long)s->out.files,
                              out, n);
}

static int is_gz(const char *p) {
  size_t n = strlen(p);
  return n > 3 && !strcmp(p + n - 3, ".gz");
}

/* ---- geometry (nifti_grid.c) -------------------------------------------------- */

/* The grid of V columns of m, errors reported under this stage. */
static int read_geometry(ns_state *s, const myelin_msg *m, size_t V, nifti_grid *go) {
  char err[1024];
  int rc = nifti_grid_read(myelin_msg_get(m, "geometry"), myelin_msg_kind(m), "nifti_sink", V, &s->atlas, go,
                           err, sizeof err);
  if (rc) return s->host->error(s->st, "%s", err);
  if (go->no_affine) s->host->log(s->st, MYELIN_LOG_WARN, "geometry has no affine: writing the identity");
  return 0;
}

/* ---- writing ----------------------------------------------------------------------- */

/* Scatters R rows of V columns (row r at rows + r * V, or from a tensor)
 * into R file-order volumes and writes the image. */
static int write_image(ns_state *s, const myelin_msg *m, uint64_t msg_no, const nifti_grid *go,
                       const myelin_tensor *t, const float *rows, size_t R, double tr) {
  size_t nvox = (size_t)(go->dims[0] * go->dims[1] * go->dims[2]);
  if (R > 32767) return s->host->error(s->st, "%zu rows do not fit a NIfTI-1 4th dimension", R);
  float *img = malloc((nvox * R > 0 ? nvox * R : 1) * sizeof *img);
  if (!img) return s->host->error(s->st, "out of memory for a %zu x %zu image", nvox, R);
  float fill = s->fill_nan ? NAN : 0.0f;
  for (size_t i = 0; i < nvox * R; i++)
    img[i] = fill;
  for (size_t r = 0; r < R; r++)
    nifti_grid_scatter(go, t, rows, r * go->V, img + r * nvox);
  char path[4096], err[1024];
  int rc = 0;
  myelin_atomic_file f;
  if (expand_path(s, m, path, sizeof path))
    rc = s->host->error(s->st, "path too long");
  else
    rc = map_file_open(&s->out, path, msg_no, "{subject} {task} {run} {stat} {layer} or {seq}", &f);
  int64_t dims[4] = {go->dims[0], go->dims[1], go->dims[2], (int64_t)R};
  if (!rc)
    rc = map_file_close(&s->out, &f, path,
                        nifti_write_f32(f.fp, dims, &go->affine[0][0], tr, img, is_gz(path), err, sizeof err),
                        err);
  free(img);
  return rc;
}

static int write_tensor_msg(ns_state *s, const myelin_msg *m, uint64_t msg_no) {
  myelin_tensor t;
  int rc0 = map_file_tensor(&s->out, m, &t);
  if (rc0) return rc0;
  size_t V = (size_t)t.shape[t.ndim - 1], R = t.count / V;
  nifti_grid go;
  int rc = read_geometry(s, m, V, &go);
  double tr = 0;
  if (myelin_msg_float(m, "tr", &tr) != 0) tr = 0;
  if (!rc) rc = write_image(s, m, msg_no, &go, &t, NULL, R, tr);
  nifti_grid_free(&go);
  return rc;
}

/* ---- volume groups ------------------------------------------------------------------- */

static int flush_volumes(ns_state *s) {
  if (!s->vol_first) return 0;
  nifti_grid go;
  int rc = read_geometry(s, s->vol_first, s->vol_V, &go);
  double tr = 0;
  if (myelin_msg_float(s->vol_first, "tr", &tr) != 0) tr = 0;
  if (!rc) rc = write_image(s, s->vol_first, s->vol_first_no, &go, NULL, s->vol_rows, s->vol_n, tr);
  nifti_grid_free(&go);
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
    row[k] = tensor_elem_f32(&t, k);
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
    return myelin_validate_error(
        ctx, "path", "unknown placeholder in path (use {subject} {task} {run} {stat} {layer} {seq})");
  return 0;
}

static int ns_init(const myelin_host *host, myelin_stage *st, const myelin_params *p, void **state) {
  ns_state *s = calloc(1, sizeof *s);
  if (!s) return MYELIN_ENOMEM;
  *state = s;
  s->host = host;
  s->st = st;
  s->fill_nan = strcmp(myelin_param_str(p, "fill"), "nan") == 0;
  int rc = map_file_init(&s->out, host, st, p);
  if (rc) {
    free(s); /* fini only runs after a successful init */
    *state = NULL;
  }
  return rc;
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

static int ns_flush(void *state) {
  ns_state *s = state;
  int rc = flush_volumes(s);
  return rc ? rc : map_file_ranks(&s->out);
}

static void ns_fini(void *state) {
  ns_state *s = state;
  if (!s) return;
  if (s->host->stopping(s->st)) {
    char path[4096] = "";
    if (s->vol_first && expand_path(s, s->vol_first, path, sizeof path))
      snprintf(path, sizeof path, "%s", s->out.path_tmpl);
    if (s->vol_first)
      s->host->log(
          s->st, MYELIN_LOG_WARN,
          "discarded %s: its %zu volume(s) were never written (the run stopped on an error or abort); "
          "kept %llu image(s) %s written before, each complete",
          path, s->vol_n, (unsigned long long)s->out.files, s->out.path_tmpl);
    else if (s->out.files)
      s->host->log(s->st, MYELIN_LOG_INFO, "kept %llu image(s) %s written before the stop, each complete",
                   (unsigned long long)s->out.files, s->out.path_tmpl);
    else
      s->host->log(s->st, MYELIN_LOG_INFO, "wrote nothing to %s: no message arrived before the stop",
                   s->out.path_tmpl);
  }
  myelin_msg_unref(s->vol_first);
  free(s->vol_rows);
  nifti_atlas_free(&s->atlas);
  map_file_free(&s->out);
  free(s);
}

static const myelin_param_def ns_params[] = {
    {.name = "path",
     .type = MYELIN_PARAM_STRING,
     .doc =
         "Output file, .nii or .nii.gz (gzip); {subject} {task} {run} {stat} {layer} {seq} expand from each "
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
    MAP_FILE_FIELD_PARAM,
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
