/*
 * gifti_sink — writes `map` and `run` messages with surface geometry back to
 * GIFTI, one file per hemisphere (.func.gii or .shape.gii), so a statistic
 * computed on a surface run opens in Connectome Workbench, FreeSurfer's
 * freeview or nilearn on the mesh it came from.
 *
 * The vertices come from the message's `geometry` (schemas/geometry.md,
 * model `surface`): each structure (hemisphere) names its mesh size `nvert`
 * and the vertex of each of its columns; a structure becomes one file of
 * nvert values per row, vertices the message does not cover filled with 0
 * (or NaN). Every row of the data (everything before the last axis) becomes
 * one DataArray: a run [T, V] gives T arrays (intent TIME_SERIES, TimeStep =
 * tr), a map [S, V] S arrays named after `subjects` when given. A message
 * with another geometry model is refused naming the sink that writes it
 * (common/geometry.h).
 *
 * The tensor written is `data`, or the one the `field` param names (e.g.
 * info_content's per-vertex `regional`).
 *
 * `path` expands {subject}, {task}, {run}, {stat}, {layer}, {seq} and {hemi} (L, R,
 * or the structure's GIFTI name); a message with two structures needs
 * {hemi}. Files are written through myelin_atomic_open/commit, and a path
 * written twice in a run is an error naming both messages (myelin_pathset).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/geometry.h"
#include "../common/map_file.h"
#include "../common/path_template.h"
#include "../common/tensor_elem.h"
#include "gifti.h"
#include "myelin/myelin.h"

enum { GS_MAX_STRUCTURES = 64 };

typedef struct gs_state {
  const myelin_host *host;
  myelin_stage *st;
  map_file_out out; /* path, fsync, files written, paths claimed in this run */
  int fill_nan, shape;
  uint64_t received;
} gs_state;

static const char *const tmpl_keys[] = {"subject", "task", "run", "stat", "layer", "seq", NULL};

static int ends_with(const char *s, const char *suf) {
  size_t n = strlen(s), k = strlen(suf);
  return n >= k && !strcmp(s + n - k, suf);
}

/* One structure of the geometry, checked against the data's V columns. */
typedef struct gs_part {
  char name[96], hemi[96];
  size_t offset, count, nvert;
  myelin_tensor vertices;
} gs_part;

static int read_int(myelin_obj o, const char *key, size_t *out) {
  int64_t v;
  if (myelin_obj_int(myelin_obj_get(o, key), &v) || v < 0) return -1;
  *out = (size_t)v;
  return 0;
}

static int read_parts(gs_state *s, const myelin_msg *m, size_t V, gs_part *parts, size_t *n) {
  myelin_obj g = myelin_msg_get(m, "geometry");
  const char *kind = myelin_msg_kind(m);
  if (myelin_obj_type_of(g) != MYELIN_OBJ_MAP)
    return s->host->error(s->st, "%s message without a geometry map: cannot place it on a surface", kind);
  if (geom_model_of(g) != GEOM_SURFACE) {
    char why[512];
    geom_refusal(why, sizeof why, "gifti_sink", kind, g);
    return s->host->error(s->st, "%s", why);
  }
  myelin_obj list = myelin_obj_get(g, "structures");
  size_t ns = myelin_obj_len(list);
  if (myelin_obj_type_of(list) != MYELIN_OBJ_ARRAY || ns == 0 || ns > GS_MAX_STRUCTURES)
    return s->host->error(s->st, "geometry.structures must be a list of 1..%d structures", GS_MAX_STRUCTURES);
  size_t next = 0;
  for (size_t i = 0; i < ns; i++) {
    myelin_obj e = myelin_obj_at(list, i);
    gs_part *p = &parts[i];
    memset(p, 0, sizeof *p);
    if (myelin_obj_str_copy(myelin_obj_get(e, "name"), p->name, sizeof p->name) ||
        read_int(e, "offset", &p->offset) || read_int(e, "count", &p->count) ||
        read_int(e, "nvert", &p->nvert) || myelin_obj_tensor(myelin_obj_get(e, "vertices"), &p->vertices) ||
        p->vertices.dtype != MYELIN_U4)
      return s->host->error(s->st,
                            "geometry.structures[%zu] needs name, offset, count, nvert and vertices <u4", i);
    if (p->offset != next || p->count > V - next || p->vertices.count != p->count || p->count > p->nvert)
      return s->host->error(
          s->st,
          "geometry.structures[%zu] (%s): offset %zu, count %zu, %zu vertices, nvert %zu do not "
          "tile the %zu data columns",
          i, p->name, p->offset, p->count, p->vertices.count, p->nvert, V);
    const uint32_t *vx = p->vertices.data;
    for (size_t k = 0; k < p->count; k++)
      if (vx[k] >= p->nvert)
        return s->host->error(s->st,
                              "geometry.structures[%zu].vertices[%zu] = %u is outside its %zu-vertex mesh", i,
                              k, vx[k], p->nvert);
    char h[8] = "";
    myelin_obj_str_copy(myelin_obj_get(e, "hemi"), h, sizeof h);
    if (h[0])
      snprintf(p->hemi, sizeof p->hemi, "%s", h);
    else
      gifti_structure_from_cifti(p->name, p->hemi, sizeof p->hemi);
    next += p->count;
  }
  if (next != V)
    return s->host->error(s->st, "geometry.structures cover %zu columns, `%s` has %zu%s", next, s->out.field,
                          V, map_file_field_hint(&s->out));
  *n = ns;
  return 0;
}

/* File-level metadata from the message: stat, subject, task, run. */
static void file_meta(const myelin_msg *m, gifti_md *md, char vals[4][256], gifti_meta *meta) {
  static const char *const keys[4] = {"stat", "subject", "task", "run"};
  meta->v = md;
  meta->n = 0;
  for (int k = 0; k < 4; k++) {
    myelin_msg_text(m, keys[k], vals[k], sizeof vals[k]);
    if (!vals[k][0]) continue;
    md[meta->n].name = (char *)keys[k];
    md[meta->n].value = vals[k];
    meta->n++;
  }
}

static int write_part(gs_state *s, const myelin_msg *m, uint64_t msg_no, const gs_part *p, size_t nparts,
                      const myelin_tensor *t, size_t R, size_t V) {
  char path[4096], err[1024];
  if (path_template_expand(s->out.path_tmpl, tmpl_keys, m, "hemi", p->hemi, (unsigned long long)s->out.files,
                           path, sizeof path))
    return s->host->error(s->st, "path too long");
  if (nparts > 1 && !strstr(s->out.path_tmpl, "{hemi}"))
    return s->host->error(s->st,
                          "the %s message has %zu structures (hemispheres): put {hemi} in path '%s' to get "
                          "one file per hemisphere",
                          myelin_msg_kind(m), nparts, s->out.path_tmpl);
  float *rows = malloc((R * p->nvert > 0 ? R * p->nvert : 1) * sizeof *rows);
  if (!rows) return s->host->error(s->st, "out of memory for %zu x %zu values", R, p->nvert);
  float fill = s->fill_nan ? NAN : 0.0f;
  const uint32_t *vx = p->vertices.data;
  for (size_t r = 0; r < R; r++) {
    float *row = rows + r * p->nvert;
    for (size_t v = 0; v < p->nvert; v++)
      row[v] = fill;
    for (size_t k = 0; k < p->count; k++)
      row[vx[k]] = tensor_elem_f32(t, r * V + p->offset + k);
  }
  /* metadata: the message's context per file, a name (or TimeStep) per row */
  gifti_md fmd[4];
  char fvals[4][256];
  gifti_meta meta;
  file_meta(m, fmd, fvals, &meta);
  int is_run = !strcmp(myelin_msg_kind(m), "run");
  double tr = 0;
  if (myelin_msg_float(m, "tr", &tr)) tr = 0;
  myelin_obj subjects = myelin_msg_get(m, "subjects");
  int named = myelin_obj_type_of(subjects) == MYELIN_OBJ_ARRAY && myelin_obj_len(subjects) == R;
  gifti_meta *row_meta = calloc(R ? R : 1, sizeof *row_meta);
  gifti_md *rmd = calloc(R ? R : 1, sizeof *rmd);
  char(*names)[300] = calloc(R ? R : 1, sizeof *names);
  int rc = 0;
  if (!row_meta || !rmd || !names) rc = s->host->error(s->st, "out of memory");
  for (size_t r = 0; r < R && !rc; r++) {
    if (is_run) {
      snprintf(names[r], sizeof names[r], "%f", tr);
      rmd[r].name = "TimeStep";
    } else {
      if (named)
        myelin_obj_str_copy(myelin_obj_at(subjects, r), names[r], sizeof names[r]);
      else
        map_file_row_name(&s->out, m, r, R, names[r], sizeof names[r]);
      rmd[r].name = "Name";
    }
    rmd[r].value = names[r];
    row_meta[r].v = &rmd[r];
    row_meta[r].n = 1;
  }
  int intent = s->shape ? GIFTI_INTENT_SHAPE : is_run ? GIFTI_INTENT_TIME_SERIES : GIFTI_INTENT_NONE;
  myelin_atomic_file f;
  if (!rc)
    rc = map_file_open(&s->out, path, msg_no, "{subject} {task} {run} {stat} {layer} {seq} {hemi}", &f);
  if (!rc)
    rc = map_file_close(
        &s->out, &f, path,
        gifti_write_f32(f.fp, rows, R, p->nvert, intent, p->name, &meta, row_meta, err, sizeof err), err);
  free(rows);
  free(row_meta);
  free(rmd);
  free(names);
  return rc;
}

static int gs_process(void *state, int port, myelin_msg *m) {
  gs_state *s = state;
  (void)port;
  uint64_t msg_no = s->received++;
  const char *kind = myelin_msg_kind(m);
  if (strcmp(kind, "map") && strcmp(kind, "run"))
    return s->host->error(s->st, "cannot write a '%s' message as GIFTI (map or run)", kind);
  myelin_tensor t;
  int rc = map_file_tensor(&s->out, m, &t);
  if (rc) return rc;
  size_t V = (size_t)t.shape[t.ndim - 1], R = t.count / V;
  gs_part parts[GS_MAX_STRUCTURES];
  size_t n = 0;
  rc = read_parts(s, m, V, parts, &n);
  for (size_t i = 0; i < n && !rc; i++)
    rc = write_part(s, m, msg_no, &parts[i], n, &t, R, V);
  return rc;
}

/* ---- lifecycle ---------------------------------------------------------------------- */

static int gs_validate(const myelin_params *p, myelin_validate_ctx *ctx) {
  const char *path = myelin_param_str(p, "path");
  if (!ends_with(path, ".func.gii") && !ends_with(path, ".shape.gii"))
    return myelin_validate_error(ctx, "path", "path must end in .func.gii or .shape.gii");
  if (path_template_check(path, tmpl_keys, "hemi"))
    return myelin_validate_error(
        ctx, "path", "unknown placeholder in path (use {subject} {task} {run} {stat} {layer} {seq} {hemi})");
  return 0;
}

static int gs_init(const myelin_host *host, myelin_stage *st, const myelin_params *p, void **state) {
  gs_state *s = calloc(1, sizeof *s);
  if (!s) return MYELIN_ENOMEM;
  s->host = host;
  s->st = st;
  int rc = map_file_init(&s->out, host, st, p);
  if (rc) {
    free(s); /* fini only runs after a successful init */
    return rc;
  }
  s->fill_nan = strcmp(myelin_param_str(p, "fill"), "nan") == 0;
  s->shape = ends_with(s->out.path_tmpl, ".shape.gii");
  *state = s;
  return 0;
}

static int gs_flush(void *state) { return map_file_ranks(&((gs_state *)state)->out); }

static void gs_fini(void *state) {
  gs_state *s = state;
  if (!s) return;
  if (s->host->stopping(s->st))
    s->host->log(s->st, MYELIN_LOG_INFO, "kept %llu GIFTI file(s) %s written before the stop, each complete",
                 (unsigned long long)s->out.files, s->out.path_tmpl);
  map_file_free(&s->out);
  free(s);
}

static const myelin_param_def gs_params[] = {
    {.name = "path",
     .type = MYELIN_PARAM_STRING,
     .doc = "Output file, .func.gii or .shape.gii; {subject} {task} {run} {stat} {layer} {seq} expand from "
            "each message, "
            "{hemi} per structure (L, R, or its GIFTI name): needed when a message has both hemispheres."},
    {.name = "fill",
     .type = MYELIN_PARAM_ENUM,
     .def = "zero",
     .choices = "zero|nan",
     .doc = "Value of mesh vertices the map does not cover (e.g. dropped by mask: auto)."},
    {.name = "fsync",
     .type = MYELIN_PARAM_BOOL,
     .def = "false",
     .doc = "fsync each file before renaming it into place."},
    MAP_FILE_FIELD_PARAM,
    {0}};

static const myelin_port_def gs_inputs[] = {
    {.name = "in",
     .kinds = "map|run",
     .doc =
         "maps [..., V] or runs [T, V] with surface geometry (schemas/geometry.md); rows become DataArrays"},
    {0}};

static const myelin_plugin_desc gs_desc = {
    MYELIN_DESC_HEADER,
    .name = "gifti_sink",
    .version = "1.0.0",
    .summary = "write map/run messages on surface vertices as GIFTI, one .func.gii/.shape.gii per hemisphere",
    .doc = "float32 DataArrays, GZipBase64Binary; AnatomicalStructurePrimary from the geometry's structure; "
           "nibabel, "
           "Workbench and FreeSurfer read them.",
    .params = gs_params,
    .inputs = gs_inputs,
    .validate = gs_validate,
    .init = gs_init,
    .process = gs_process,
    .flush = gs_flush,
    .fini = gs_fini,
};

MYELIN_PLUGIN(gs_desc)
