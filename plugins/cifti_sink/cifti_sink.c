/*
 * cifti_sink — writes `map` and `run` messages on grayordinates or parcels
 * as CIFTI-2: .dscalar.nii (surface or grayordinate geometry: a brain-model
 * axis) or .pscalar.nii (parcel geometry: a parcel axis), so maps computed on
 * a .dtseries/.ptseries run open in Connectome Workbench with the source's
 * structures, vertices, voxels and parcels.
 *
 * The column axis is rebuilt from the message's `geometry`
 * (schemas/geometry.md): each structure becomes a BrainModel (surface
 * vertices with the mesh size, or voxels as ijk in the `dims` grid with the
 * `affine`); each parcel a Parcel with its vertices per surface and voxels.
 * Every row of the data (everything before the last axis) becomes one named
 * map of the scalar axis: the subject when the map has `subjects`, else the
 * stat (and the row number). The tensor written is `data`, or the one the
 * `field` param names (info_content's per-parcel `regional`). Volume geometry is refused naming nifti_sink
 * (common/geometry.h). Files are written atomically; `path` expands
 * {subject} {task} {run} {stat} {layer} {seq}, and a path written twice is an error.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/geometry.h"
#include "../common/map_file.h"
#include "../common/path_template.h"
#include "../common/tensor_elem.h"
#include "cifti.h"
#include "myelin/myelin.h"

typedef struct cs_state {
  const myelin_host *host;
  myelin_stage *st;
  map_file_out out; /* path, fsync, files written, paths claimed in this run */
  uint64_t received;
} cs_state;

static const char *const tmpl_keys[] = {"subject", "task", "run", "stat", "layer", "seq", NULL};

static int ends_with(const char *s, const char *suf) {
  size_t n = strlen(s), k = strlen(suf);
  return n >= k && !strcmp(s + n - k, suf);
}

static int get_size(myelin_obj o, const char *key, size_t *out) {
  int64_t v;
  if (myelin_obj_int(myelin_obj_get(o, key), &v) || v < 0) return -1;
  *out = (size_t)v;
  return 0;
}

/* dims and affine of the geometry's voxel grid. */
static int read_grid(cs_state *s, myelin_obj g, cifti_axis *a) {
  myelin_obj d = myelin_obj_get(g, "dims");
  myelin_tensor t;
  if (myelin_obj_len(d) != 3 || myelin_obj_tensor(myelin_obj_get(g, "affine"), &t) || t.count != 16 ||
      t.dtype != MYELIN_F8)
    return s->host->error(s->st, "geometry with voxels needs dims [x, y, z] and affine <f8 [4, 4]");
  for (int i = 0; i < 3; i++)
    if (myelin_obj_int(myelin_obj_at(d, (size_t)i), &a->vol_dims[i]) || a->vol_dims[i] < 1)
      return s->host->error(s->st, "geometry.dims[%d] must be a positive integer", i);
  memcpy(a->affine, t.data, sizeof a->affine);
  a->has_volume = 1;
  return 0;
}

/* C-order voxel indices to ijk triples. */
static int to_ijk(cs_state *s, const cifti_axis *a, const myelin_tensor *t, int32_t **ijk) {
  int64_t nx = a->vol_dims[0], ny = a->vol_dims[1], nz = a->vol_dims[2];
  *ijk = malloc((t->count ? t->count : 1) * 3 * sizeof **ijk);
  if (!*ijk) return s->host->error(s->st, "out of memory");
  const uint32_t *v = t->data;
  for (size_t k = 0; k < t->count; k++) {
    if ((int64_t)v[k] >= nx * ny * nz)
      return s->host->error(s->st, "geometry voxel index %u is outside the %lldx%lldx%lld grid", v[k],
                            (long long)nx, (long long)ny, (long long)nz);
    (*ijk)[3 * k] = (int32_t)(v[k] / (uint32_t)(ny * nz));
    (*ijk)[3 * k + 1] = (int32_t)(v[k] / (uint32_t)nz % (uint32_t)ny);
    (*ijk)[3 * k + 2] = (int32_t)(v[k] % (uint32_t)nz);
  }
  return 0;
}

static int brain_models(cs_state *s, myelin_obj g, size_t V, cifti_axis *a) {
  myelin_obj list = myelin_obj_get(g, "structures");
  size_t n = myelin_obj_len(list);
  a->type = CIFTI_BRAIN_MODELS;
  a->models = calloc(n ? n : 1, sizeof *a->models);
  if (!a->models) return s->host->error(s->st, "out of memory");
  size_t next = 0;
  for (size_t i = 0; i < n; i++) {
    myelin_obj e = myelin_obj_at(list, i);
    cifti_model *m = &a->models[a->nmodels++];
    myelin_tensor t;
    char type[16] = "";
    myelin_obj_str_copy(myelin_obj_get(e, "type"), type, sizeof type);
    m->surface = !strcmp(type, "surface");
    if (myelin_obj_str_copy(myelin_obj_get(e, "name"), m->structure, sizeof m->structure) ||
        get_size(e, "offset", &m->offset) || get_size(e, "count", &m->count) || m->offset != next ||
        m->count > V - next || myelin_obj_tensor(myelin_obj_get(e, m->surface ? "vertices" : "voxels"), &t) ||
        t.dtype != MYELIN_U4 || t.count != m->count || (!m->surface && strcmp(type, "volume")))
      return s->host->error(s->st,
                            "geometry.structures[%zu] needs name, type (surface|volume), offset, count and "
                            "vertices/voxels <u4 [count] tiling the %zu columns",
                            i, V);
    next += m->count;
    if (m->surface) {
      if (get_size(e, "nvert", &m->nvert) || m->nvert < m->count)
        return s->host->error(s->st, "geometry.structures[%zu] (%s) needs nvert >= count", i, m->structure);
      if (!(m->vertices = malloc((m->count ? m->count : 1) * sizeof *m->vertices)))
        return s->host->error(s->st, "out of memory");
      memcpy(m->vertices, t.data, m->count * sizeof *m->vertices);
      for (size_t k = 0; k < m->count; k++)
        if (m->vertices[k] >= m->nvert)
          return s->host->error(
              s->st, "geometry.structures[%zu].vertices[%zu] is outside its %zu-vertex mesh", i, k, m->nvert);
    } else {
      if (!a->has_volume && read_grid(s, g, a)) return MYELIN_EINVAL;
      if (to_ijk(s, a, &t, &m->ijk)) return MYELIN_EINVAL;
    }
  }
  if (next != V)
    return s->host->error(s->st, "geometry.structures cover %zu columns, `%s` has %zu%s", next, s->out.field,
                          V, map_file_field_hint(&s->out));
  a->n = V;
  return 0;
}

static int parcels(cs_state *s, myelin_obj g, size_t V, cifti_axis *a) {
  myelin_obj list = myelin_obj_get(g, "parcels"), surfs = myelin_obj_get(g, "surfaces");
  size_t n = myelin_obj_len(list), ns = myelin_obj_len(surfs);
  if (n != V)
    return s->host->error(s->st, "geometry.parcels has %zu parcels, `%s` has %zu columns%s", n, s->out.field,
                          V, map_file_field_hint(&s->out));
  a->type = CIFTI_PARCELS;
  a->parcels = calloc(n ? n : 1, sizeof *a->parcels);
  a->surfaces = calloc(ns ? ns : 1, sizeof *a->surfaces);
  if (!a->parcels || !a->surfaces) return s->host->error(s->st, "out of memory");
  for (size_t i = 0; i < ns; i++) {
    myelin_obj e = myelin_obj_at(surfs, i);
    cifti_surface *sf = &a->surfaces[a->nsurfaces++];
    if (myelin_obj_str_copy(myelin_obj_get(e, "name"), sf->structure, sizeof sf->structure) ||
        get_size(e, "nvert", &sf->nvert))
      return s->host->error(s->st, "geometry.surfaces[%zu] needs name and nvert", i);
  }
  for (size_t i = 0; i < n; i++) {
    myelin_obj e = myelin_obj_at(list, i);
    cifti_parcel *p = &a->parcels[a->nparcels++];
    char name[1024];
    if (myelin_obj_str_copy(myelin_obj_get(e, "name"), name, sizeof name) || !(p->name = strdup(name)))
      return s->host->error(s->st, "geometry.parcels[%zu] needs a name", i);
    myelin_tensor t;
    if (myelin_obj_exists(myelin_obj_get(e, "voxels"))) {
      if (myelin_obj_tensor(myelin_obj_get(e, "voxels"), &t) || t.dtype != MYELIN_U4)
        return s->host->error(s->st, "geometry.parcels[%zu].voxels must be <u4", i);
      if (!a->has_volume && read_grid(s, g, a)) return MYELIN_EINVAL;
      p->nvox = t.count;
      if (to_ijk(s, a, &t, &p->ijk)) return MYELIN_EINVAL;
    }
    myelin_obj vm = myelin_obj_get(e, "vertices");
    size_t nv = myelin_obj_type_of(vm) == MYELIN_OBJ_MAP ? myelin_obj_len(vm) : 0;
    p->surf = calloc(nv ? nv : 1, sizeof *p->surf);
    if (!p->surf) return s->host->error(s->st, "out of memory");
    for (size_t k = 0; k < nv; k++) {
      cifti_parcel_surf *ps = &p->surf[p->nsurf++];
      if (myelin_obj_str_copy(myelin_obj_key_at(vm, k), ps->structure, sizeof ps->structure) ||
          myelin_obj_tensor(myelin_obj_value_at(vm, k), &t) || t.dtype != MYELIN_U4)
        return s->host->error(s->st, "geometry.parcels[%zu].vertices must map surface names to <u4", i);
      size_t nvert = 0;
      for (size_t j = 0; j < a->nsurfaces; j++)
        if (!strcmp(a->surfaces[j].structure, ps->structure)) nvert = a->surfaces[j].nvert;
      if (!nvert)
        return s->host->error(s->st,
                              "geometry.parcels[%zu] (%s) has vertices on %s, which geometry.surfaces lacks",
                              i, name, ps->structure);
      ps->n = t.count;
      if (!(ps->vertices = malloc((t.count ? t.count : 1) * sizeof *ps->vertices)))
        return s->host->error(s->st, "out of memory");
      memcpy(ps->vertices, t.data, t.count * sizeof *ps->vertices);
    }
  }
  a->n = V;
  return 0;
}

static void axis_release(cifti_axis *a) {
  cifti_file f;
  memset(&f, 0, sizeof f);
  f.axes[0] = *a; /* cifti_free owns the cleanup of an axis */
  cifti_free(&f);
  memset(a, 0, sizeof *a);
}

static int cs_process(void *state, int port, myelin_msg *m) {
  cs_state *s = state;
  (void)port;
  uint64_t msg_no = s->received++;
  const char *kind = myelin_msg_kind(m);
  if (strcmp(kind, "map") && strcmp(kind, "run"))
    return s->host->error(s->st, "cannot write a '%s' message as CIFTI-2 (map or run)", kind);
  myelin_tensor t;
  int rc = map_file_tensor(&s->out, m, &t);
  if (rc) return rc;
  size_t V = (size_t)t.shape[t.ndim - 1], R = t.count / V;
  myelin_obj g = myelin_msg_get(m, "geometry");
  geom_model model = geom_model_of(g);
  if (myelin_obj_type_of(g) != MYELIN_OBJ_MAP || model == GEOM_VOLUME || model == GEOM_UNKNOWN) {
    char why[512];
    geom_refusal(why, sizeof why, "cifti_sink", kind, g);
    return s->host->error(s->st, "%s", why);
  }
  int dense = model != GEOM_PARCELS;
  if (dense != ends_with(s->out.path_tmpl, ".dscalar.nii"))
    return s->host->error(s->st, "a %s map is written as %s, but path '%s' ends otherwise",
                          geom_model_name(model), dense ? ".dscalar.nii" : ".pscalar.nii", s->out.path_tmpl);
  cifti_axis a;
  memset(&a, 0, sizeof a);
  rc = dense ? brain_models(s, g, V, &a) : parcels(s, g, V, &a);
  float *data = rc ? NULL : malloc(R * V * sizeof *data);
  char **names = rc ? NULL : calloc(R, sizeof *names);
  if (!rc && (!data || !names)) rc = s->host->error(s->st, "out of memory");
  myelin_obj subjects = myelin_msg_get(m, "subjects");
  int named = myelin_obj_type_of(subjects) == MYELIN_OBJ_ARRAY && myelin_obj_len(subjects) == R;
  for (size_t r = 0; r < R && !rc; r++) {
    char nm[300];
    if (named)
      myelin_obj_str_copy(myelin_obj_at(subjects, r), nm, sizeof nm);
    else
      map_file_row_name(&s->out, m, r, R, nm, sizeof nm);
    if (!(names[r] = strdup(nm))) rc = s->host->error(s->st, "out of memory");
    for (size_t c = 0; c < V; c++)
      data[r * V + c] = tensor_elem_f32(&t, r * V + c);
  }
  char path[4096], err[1024];
  if (!rc && path_template_expand(s->out.path_tmpl, tmpl_keys, m, NULL, NULL,
                                  (unsigned long long)s->out.files, path, sizeof path))
    rc = s->host->error(s->st, "path too long");
  myelin_atomic_file f;
  if (!rc) rc = map_file_open(&s->out, path, msg_no, "{subject} {task} {run} {stat} {layer} or {seq}", &f);
  if (!rc)
    rc = map_file_close(&s->out, &f, path,
                        cifti_write_scalars(f.fp, data, R, (const char *const *)names, &a, err, sizeof err),
                        err);
  for (size_t r = 0; names && r < R; r++)
    free(names[r]);
  free(names);
  free(data);
  axis_release(&a);
  return rc;
}

/* ---- lifecycle ---------------------------------------------------------------------- */

static int cs_validate(const myelin_params *p, myelin_validate_ctx *ctx) {
  const char *path = myelin_param_str(p, "path");
  if (!ends_with(path, ".dscalar.nii") && !ends_with(path, ".pscalar.nii"))
    return myelin_validate_error(ctx, "path", "path must end in .dscalar.nii or .pscalar.nii");
  if (path_template_check(path, tmpl_keys, NULL))
    return myelin_validate_error(
        ctx, "path", "unknown placeholder in path (use {subject} {task} {run} {stat} {layer} {seq})");
  return 0;
}

static int cs_init(const myelin_host *host, myelin_stage *st, const myelin_params *p, void **state) {
  cs_state *s = calloc(1, sizeof *s);
  if (!s) return MYELIN_ENOMEM;
  s->host = host;
  s->st = st;
  int rc = map_file_init(&s->out, host, st, p);
  if (rc) {
    free(s); /* fini only runs after a successful init */
    return rc;
  }
  *state = s;
  return 0;
}

static int cs_flush(void *state) { return map_file_ranks(&((cs_state *)state)->out); }

static void cs_fini(void *state) {
  cs_state *s = state;
  if (!s) return;
  if (s->host->stopping(s->st))
    s->host->log(s->st, MYELIN_LOG_INFO, "kept %llu CIFTI file(s) %s written before the stop, each complete",
                 (unsigned long long)s->out.files, s->out.path_tmpl);
  map_file_free(&s->out);
  free(s);
}

static const myelin_param_def cs_params[] = {{.name = "path",
                                              .type = MYELIN_PARAM_STRING,
                                              .doc = "Output file: .dscalar.nii for surface/grayordinate "
                                                     "maps, .pscalar.nii for parcel maps; {subject} {task} "
                                                     "{run} {stat} {layer} {seq} expand from each message."},
                                             {.name = "fsync",
                                              .type = MYELIN_PARAM_BOOL,
                                              .def = "false",
                                              .doc = "fsync each file before renaming it into place."},
                                             MAP_FILE_FIELD_PARAM,
                                             {0}};

static const myelin_port_def cs_inputs[] = {
    {.name = "in",
     .kinds = "map|run",
     .doc =
         "maps [..., V] or runs [T, V] with surface, grayordinate or parcel geometry (schemas/geometry.md)"},
    {0}};

static const myelin_plugin_desc cs_desc = {
    MYELIN_DESC_HEADER,
    .name = "cifti_sink",
    .version = "1.0.0",
    .summary = "write map/run messages on grayordinates or parcels as CIFTI-2 .dscalar.nii / .pscalar.nii",
    .doc = "float32 NIfTI-2 with the CIFTI-2 XML extension: a scalar axis (one named map per row) by the "
           "brain-model "
           "or parcel axis rebuilt from the geometry; nibabel and Workbench read it.",
    .params = cs_params,
    .inputs = cs_inputs,
    .validate = cs_validate,
    .init = cs_init,
    .process = cs_process,
    .flush = cs_flush,
    .fini = cs_fini,
};

MYELIN_PLUGIN(cs_desc)
