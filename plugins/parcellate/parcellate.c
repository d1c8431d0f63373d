/*
 * parcellate — averages a run's columns into parcels: `run` [T, V] on
 * voxels, surface vertices or grayordinates -> `run` [T, P] of parcel time
 * series with `labels` (the parcel names), what info_content takes.
 *
 * The atlas is read once at init: a NIfTI label image (volume runs: the
 * label of each kept voxel, same grid), a CIFTI-2 .dlabel.nii (surface or
 * grayordinate runs: the label of each structure's vertex or voxel, from
 * map `map`), or one GIFTI .label.gii per hemisphere (surface runs; the
 * hemisphere from AnatomicalStructurePrimary, else hemi-L/R in the name).
 * Each column of a run gets the label of its place (schemas/geometry.md);
 * parcels are the labels > 0 that cover at least one column, ascending, and
 * each parcel's series is the mean of its columns (fmri_parcel_means).
 * Names come from the atlas's label table (NIfTI: the label numbers).
 *
 * The output geometry is what a sink needs to paint the parcels back: the
 * NIfTI atlas form {atlas, labels, values, dims, affine} (nifti_sink) for a
 * volume atlas, and {model: parcels, labels, values, surfaces, parcels:
 * [{name, voxels, vertices}]} (cifti_sink .pscalar.nii) otherwise.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/geometry.h"
#include "cifti.h"
#include "fmri_kernels.h"
#include "gifti.h"
#include "myelin/myelin.h"
#include "nifti.h"

enum { ATLAS_NIFTI, ATLAS_DLABEL, ATLAS_GIFTI };
enum { PC_MAX_STRUCT = 64 };

/* Labels of one structure: per vertex (surface), or per C-order voxel of the
 * atlas grid (volume: one shared table). */
typedef struct pc_struct {
  char name[80];
  size_t nvert;
  int32_t *key; /* nvert keys, -1 = none */
} pc_struct;

typedef struct pc_state {
  const myelin_host *host;
  myelin_stage *st;
  int kind;
  char *path;
  pc_struct s[PC_MAX_STRUCT];
  size_t ns;
  int64_t dims[3];
  double affine[4][4];
  int32_t *vox_key; /* dims product, -1 = none */
  /* label names */
  int32_t *names_key;
  char **names;
  size_t nnames;
} pc_state;

static const char *name_of(const pc_state *s, int32_t key, char *buf, size_t n) {
  for (size_t i = 0; i < s->nnames; i++)
    if (s->names_key[i] == key) return s->names[i];
  snprintf(buf, n, "%d", (int)key);
  return buf;
}

static int add_names(pc_state *s, const gifti_label *l, size_t n) {
  for (size_t i = 0; i < n; i++) {
    int32_t *k = realloc(s->names_key, (s->nnames + 1) * sizeof *k);
    if (!k) return -1;
    s->names_key = k;
    char **nm = realloc(s->names, (s->nnames + 1) * sizeof *nm);
    if (!nm) return -1;
    s->names = nm;
    if (!(s->names[s->nnames] = strdup(l[i].name))) return -1;
    s->names_key[s->nnames++] = l[i].key;
  }
  return 0;
}

static int ends_with(const char *s, const char *suf) {
  size_t n = strlen(s), k = strlen(suf);
  return n >= k && !strcmp(s + n - k, suf);
}

static int load_nifti(pc_state *s, const char *path) {
  char err[1024];
  nifti_reader r;
  if (nifti_open_file(&r, path, err, sizeof err)) return s->host->error(s->st, "atlas: %s", err);
  for (int i = 0; i < 3; i++)
    s->dims[i] = r.h.dim[i + 1];
  nifti_affine(&r.h, s->affine);
  size_t n = r.h.nvox;
  float *v = malloc(n * sizeof *v);
  s->vox_key = malloc(n * sizeof *s->vox_key);
  int rc = 0;
  if (!v || !s->vox_key)
    rc = s->host->error(s->st, "out of memory");
  else if (nifti_read_volumes_c(&r, 1, NULL, n, v, n, err, sizeof err))
    rc = s->host->error(s->st, "%s", err);
  for (size_t i = 0; !rc && i < n; i++)
    s->vox_key[i] = isfinite(v[i]) && v[i] > 0 ? (int32_t)lrintf(v[i]) : -1;
  free(v);
  nifti_close(&r);
  return rc;
}

static int load_dlabel(pc_state *s, const char *path, int64_t map) {
  char err[1024];
  cifti_file c;
  if (cifti_read_file(path, &c, err, sizeof err)) return s->host->error(s->st, "atlas: %s", err);
  int rc = 0;
  const cifti_axis *rows = &c.axes[0], *cols = &c.axes[1];
  if (rows->type != CIFTI_LABELS || cols->type != CIFTI_BRAIN_MODELS)
    rc = s->host->error(s->st, "atlas %s: not a dense label file (.dlabel.nii: labels x brain models)", path);
  else if (map < 0 || (size_t)map >= c.rows)
    rc = s->host->error(s->st, "atlas %s: map %lld does not exist (the file has %zu)", path, (long long)map,
                        c.rows);
  else if (add_names(s, rows->maps[map].labels, rows->maps[map].nlabels))
    rc = s->host->error(s->st, "out of memory");
  const float *keys = rc ? NULL : c.data + (size_t)map * c.cols;
  if (!rc && cols->has_volume) {
    memcpy(s->dims, cols->vol_dims, sizeof s->dims);
    memcpy(s->affine, cols->affine, sizeof s->affine);
    size_t n = (size_t)(s->dims[0] * s->dims[1] * s->dims[2]);
    if (!(s->vox_key = malloc(n * sizeof *s->vox_key))) rc = s->host->error(s->st, "out of memory");
    for (size_t i = 0; !rc && i < n; i++)
      s->vox_key[i] = -1;
  }
  for (size_t m = 0; !rc && m < cols->nmodels; m++) {
    const cifti_model *bm = &cols->models[m];
    if (!bm->surface) {
      for (size_t k = 0; k < bm->count; k++) {
        const int32_t *ijk = bm->ijk + 3 * k;
        s->vox_key[((int64_t)ijk[0] * s->dims[1] + ijk[1]) * s->dims[2] + ijk[2]] =
            (int32_t)lrintf(keys[bm->offset + k]);
      }
      continue;
    }
    if (s->ns == PC_MAX_STRUCT) {
      rc = s->host->error(s->st, "atlas %s: more than %d surface structures", path, PC_MAX_STRUCT);
      break;
    }
    pc_struct *ps = &s->s[s->ns++];
    snprintf(ps->name, sizeof ps->name, "%s", bm->structure);
    ps->nvert = bm->nvert;
    if (!(ps->key = malloc((bm->nvert ? bm->nvert : 1) * sizeof *ps->key))) {
      rc = s->host->error(s->st, "out of memory");
      break;
    }
    for (size_t v = 0; v < bm->nvert; v++)
      ps->key[v] = -1;
    for (size_t k = 0; k < bm->count; k++)
      ps->key[bm->vertices[k]] = (int32_t)lrintf(keys[bm->offset + k]);
  }
  cifti_free(&c);
  return rc;
}

static int load_gifti_label(pc_state *s, const char *path) {
  char err[1024];
  gifti_image g;
  if (gifti_read_file(path, &g, err, sizeof err)) return s->host->error(s->st, "atlas: %s", err);
  int rc = 0;
  if (g.narrays < 1 || g.arrays[0].intent_code != GIFTI_INTENT_LABEL)
    rc = s->host->error(s->st, "atlas %s: not a GIFTI label file (first DataArray is not NIFTI_INTENT_LABEL)",
                        path);
  else if (s->ns == PC_MAX_STRUCT)
    rc = s->host->error(s->st, "atlas %s: too many label files", path);
  pc_struct *ps = rc ? NULL : &s->s[s->ns];
  if (ps) {
    const char *prim = gifti_meta_get(&g.meta, "AnatomicalStructurePrimary");
    if (prim && *prim)
      gifti_structure_to_cifti(prim, ps->name, sizeof ps->name);
    else if (strstr(path, "hemi-L"))
      snprintf(ps->name, sizeof ps->name, "CIFTI_STRUCTURE_CORTEX_LEFT");
    else if (strstr(path, "hemi-R"))
      snprintf(ps->name, sizeof ps->name, "CIFTI_STRUCTURE_CORTEX_RIGHT");
    else
      rc = s->host->error(s->st, "atlas %s: no AnatomicalStructurePrimary and no hemi-L/R in the name", path);
  }
  if (!rc) {
    const gifti_array *a = &g.arrays[0];
    ps->nvert = a->n;
    if (!(ps->key = malloc((a->n ? a->n : 1) * sizeof *ps->key)) || add_names(s, g.labels, g.nlabels))
      rc = s->host->error(s->st, "out of memory");
    for (size_t v = 0; !rc && v < a->n; v++)
      ps->key[v] = (int32_t)lrintf(gifti_elem_f32(a, v));
    if (!rc) s->ns++;
  }
  gifti_free(&g);
  return rc;
}

/* ---- runs --------------------------------------------------------------------------- */

static const pc_struct *find_struct(const pc_state *s, const char *name) {
  for (size_t i = 0; i < s->ns; i++)
    if (!strcmp(s->s[i].name, name)) return &s->s[i];
  return NULL;
}

/* key[v] for each of the run's V columns, from its geometry. */
static int column_keys(pc_state *s, myelin_obj g, size_t V, int32_t *key) {
  geom_model model = geom_model_of(g);
  if (model == GEOM_VOLUME) {
    if (!s->vox_key || s->kind != ATLAS_NIFTI)
      return s->host->error(s->st, "a volume run needs a NIfTI atlas (%s is not one)", s->path);
    myelin_obj d = myelin_obj_get(g, "dims");
    int64_t dims[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++)
      myelin_obj_int(myelin_obj_at(d, (size_t)i), &dims[i]);
    if (dims[0] != s->dims[0] || dims[1] != s->dims[1] || dims[2] != s->dims[2])
      return s->host->error(s->st, "run grid %lldx%lldx%lld does not match atlas %s (%lldx%lldx%lld)",
                            (long long)dims[0], (long long)dims[1], (long long)dims[2], s->path,
                            (long long)s->dims[0], (long long)s->dims[1], (long long)s->dims[2]);
    myelin_tensor t;
    size_t n = (size_t)(dims[0] * dims[1] * dims[2]);
    if (myelin_obj_tensor(myelin_obj_get(g, "voxels"), &t) == 0) {
      if (t.count != V || t.dtype != MYELIN_U4)
        return s->host->error(s->st, "geometry.voxels must be <u4 [V]");
      for (size_t k = 0; k < V; k++)
        key[k] = ((const uint32_t *)t.data)[k] < n ? s->vox_key[((const uint32_t *)t.data)[k]] : -1;
    } else if (V == n) {
      memcpy(key, s->vox_key, V * sizeof *key);
    } else {
      return s->host->error(s->st,
                            "volume run without geometry.voxels (an atlas run cannot be parcellated again)");
    }
    return 0;
  }
  if (model != GEOM_SURFACE && model != GEOM_GRAYORDINATES)
    return s->host->error(s->st, "cannot parcellate a run with %s geometry", geom_model_name(model));
  myelin_obj list = myelin_obj_get(g, "structures");
  for (size_t k = 0; k < V; k++)
    key[k] = -1;
  for (size_t i = 0; i < myelin_obj_len(list); i++) {
    myelin_obj e = myelin_obj_at(list, i);
    char name[80] = "", type[16] = "";
    int64_t off = 0, cnt = 0;
    myelin_obj_str_copy(myelin_obj_get(e, "name"), name, sizeof name);
    myelin_obj_str_copy(myelin_obj_get(e, "type"), type, sizeof type);
    myelin_obj_int(myelin_obj_get(e, "offset"), &off);
    myelin_obj_int(myelin_obj_get(e, "count"), &cnt);
    int surf = !strcmp(type, "surface");
    myelin_tensor t;
    if (off < 0 || cnt < 0 || (size_t)(off + cnt) > V ||
        myelin_obj_tensor(myelin_obj_get(e, surf ? "vertices" : "voxels"), &t) || t.dtype != MYELIN_U4 ||
        t.count != (size_t)cnt)
      return s->host->error(s->st, "geometry.structures[%zu] is malformed", i);
    const uint32_t *idx = t.data;
    if (surf) {
      const pc_struct *ps = find_struct(s, name);
      if (!ps) continue; /* a structure the atlas does not cover: no parcel */
      for (int64_t k = 0; k < cnt; k++)
        key[off + k] = idx[k] < ps->nvert ? ps->key[idx[k]] : -1;
    } else if (s->vox_key) {
      size_t n = (size_t)(s->dims[0] * s->dims[1] * s->dims[2]);
      for (int64_t k = 0; k < cnt; k++)
        key[off + k] = idx[k] < n ? s->vox_key[idx[k]] : -1;
    }
  }
  return 0;
}

static int cmp_i32(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

/* The parcels geometry: each parcel's vertices (per structure) and voxels. */
static void build_parcels_geometry(pc_state *s, myelin_builder *b, myelin_obj g, const int32_t *col, size_t V,
                                   const int32_t *vals, char **names, size_t P) {
  myelin_build_map_begin(b, "geometry");
  myelin_build_str(b, "model", "parcels");
  myelin_build_array_begin(b, "labels");
  for (size_t p = 0; p < P; p++)
    myelin_build_str(b, NULL, names[p]);
  myelin_build_array_end(b);
  const int64_t pshape[1] = {(int64_t)P};
  myelin_build_tensor_copy(b, "values", MYELIN_I4, 1, pshape, vals);
  myelin_obj list = myelin_obj_get(g, "structures");
  size_t ns = myelin_obj_len(list);
  myelin_build_array_begin(b, "surfaces");
  for (size_t i = 0; i < ns; i++) {
    myelin_obj e = myelin_obj_at(list, i);
    if (!myelin_obj_str_eq(myelin_obj_get(e, "type"), "surface")) continue;
    myelin_build_map_begin(b, NULL);
    myelin_build_obj(b, "name", myelin_obj_get(e, "name"));
    myelin_build_obj(b, "nvert", myelin_obj_get(e, "nvert"));
    myelin_build_map_end(b);
  }
  myelin_build_array_end(b);
  uint32_t *buf = malloc((V ? V : 1) * sizeof *buf);
  myelin_build_array_begin(b, "parcels");
  for (size_t p = 0; buf && p < P; p++) {
    myelin_build_map_begin(b, NULL);
    myelin_build_str(b, "name", names[p]);
    size_t nv = 0;
    for (size_t i = 0; i < ns; i++) { /* voxels of every volume structure */
      myelin_obj e = myelin_obj_at(list, i);
      myelin_tensor t;
      int64_t off = 0;
      myelin_obj_int(myelin_obj_get(e, "offset"), &off);
      if (myelin_obj_str_eq(myelin_obj_get(e, "type"), "volume") &&
          !myelin_obj_tensor(myelin_obj_get(e, "voxels"), &t))
        for (size_t k = 0; k < t.count; k++)
          if (col[(size_t)off + k] == (int32_t)p) buf[nv++] = ((const uint32_t *)t.data)[k];
    }
    if (nv) {
      const int64_t sh[1] = {(int64_t)nv};
      myelin_build_tensor_copy(b, "voxels", MYELIN_U4, 1, sh, buf);
    }
    myelin_build_map_begin(b, "vertices");
    for (size_t i = 0; i < ns; i++) {
      myelin_obj e = myelin_obj_at(list, i);
      myelin_tensor t;
      int64_t off = 0;
      char name[80] = "";
      myelin_obj_int(myelin_obj_get(e, "offset"), &off);
      myelin_obj_str_copy(myelin_obj_get(e, "name"), name, sizeof name);
      if (!myelin_obj_str_eq(myelin_obj_get(e, "type"), "surface") ||
          myelin_obj_tensor(myelin_obj_get(e, "vertices"), &t))
        continue;
      size_t n = 0;
      for (size_t k = 0; k < t.count; k++)
        if (col[(size_t)off + k] == (int32_t)p) buf[n++] = ((const uint32_t *)t.data)[k];
      if (n) {
        const int64_t sh[1] = {(int64_t)n};
        myelin_build_tensor_copy(b, name, MYELIN_U4, 1, sh, buf);
      }
    }
    myelin_build_map_end(b);
    myelin_build_map_end(b);
  }
  myelin_build_array_end(b);
  free(buf);
  if (s->vox_key) {
    myelin_build_array_begin(b, "dims");
    for (int i = 0; i < 3; i++)
      myelin_build_int(b, NULL, s->dims[i]);
    myelin_build_array_end(b);
    const int64_t a_shape[2] = {4, 4};
    myelin_build_tensor_copy(b, "affine", MYELIN_F8, 2, a_shape, &s->affine[0][0]);
  }
  myelin_build_map_end(b);
}

static int pc_process(void *state, int port, myelin_msg *m) {
  pc_state *s = state;
  (void)port;
  if (strcmp(myelin_msg_kind(m), "run"))
    return s->host->error(s->st, "parcellate takes runs, not '%s'", myelin_msg_kind(m));
  myelin_tensor t;
  if (myelin_msg_tensor(m, "data", &t) || t.ndim != 2 || t.dtype != MYELIN_F4)
    return s->host->error(s->st, "run message: data must be <f4 [T, V]");
  size_t T = (size_t)t.shape[0], V = (size_t)t.shape[1];
  myelin_obj g = myelin_msg_get(m, "geometry");
  int32_t *key = malloc((V ? V : 1) * sizeof *key), *col = malloc((V ? V : 1) * sizeof *col);
  int32_t *vals = malloc((V ? V : 1) * sizeof *vals);
  if (!key || !col || !vals) {
    free(key);
    free(col);
    free(vals);
    return s->host->error(s->st, "out of memory");
  }
  int rc = column_keys(s, g, V, key);
  size_t P = 0;
  for (size_t v = 0; !rc && v < V; v++)
    if (key[v] > 0) vals[P++] = key[v];
  qsort(vals, P, sizeof *vals, cmp_i32);
  size_t u = 0;
  for (size_t i = 0; i < P; i++)
    if (!u || vals[i] != vals[u - 1]) vals[u++] = vals[i];
  P = u;
  if (!rc && P == 0) rc = s->host->error(s->st, "atlas %s gives no column of this run a label > 0", s->path);
  for (size_t v = 0; !rc && v < V; v++) {
    int32_t *hit = key[v] > 0 ? bsearch(&key[v], vals, P, sizeof *vals, cmp_i32) : NULL;
    col[v] = hit ? (int32_t)(hit - vals) : -1;
  }
  char **names = rc ? NULL : calloc(P, sizeof *names);
  if (!rc && !names) rc = s->host->error(s->st, "out of memory");
  for (size_t p = 0; !rc && p < P; p++) {
    char num[24];
    if (!(names[p] = strdup(name_of(s, vals[p], num, sizeof num))))
      rc = s->host->error(s->st, "out of memory");
  }
  myelin_builder *b = rc ? NULL : myelin_builder_new("run");
  if (!rc && !b) rc = s->host->error(s->st, "out of memory");
  if (!rc) {
    static const char *const pass[] = {"seq", "t", "tr", "subject", "task", "run", NULL};
    myelin_build_fields(b, m, pass);
    const int64_t shape[2] = {(int64_t)T, (int64_t)P};
    float *out = myelin_build_tensor(b, "data", MYELIN_F4, 2, shape);
    if (!out || fmri_parcel_means(t.data, T, V, col, P, out)) rc = s->host->error(s->st, "out of memory");
    myelin_build_array_begin(b, "labels");
    for (size_t p = 0; p < P; p++)
      myelin_build_str(b, NULL, names[p]);
    myelin_build_array_end(b);
    if (s->kind == ATLAS_NIFTI) {
      myelin_build_map_begin(b, "geometry");
      myelin_build_array_begin(b, "dims");
      for (int i = 0; i < 3; i++)
        myelin_build_int(b, NULL, s->dims[i]);
      myelin_build_array_end(b);
      const int64_t a_shape[2] = {4, 4};
      myelin_build_tensor_copy(b, "affine", MYELIN_F8, 2, a_shape, &s->affine[0][0]);
      myelin_build_str(b, "atlas", s->path);
      myelin_build_array_begin(b, "labels");
      for (size_t p = 0; p < P; p++)
        myelin_build_str(b, NULL, names[p]);
      myelin_build_array_end(b);
      const int64_t pshape[1] = {(int64_t)P};
      myelin_build_tensor_copy(b, "values", MYELIN_I4, 1, pshape, vals);
      myelin_build_map_end(b);
    } else {
      build_parcels_geometry(s, b, g, col, V, vals, names, P);
    }
  }
  for (size_t p = 0; names && p < P; p++)
    free(names[p]);
  free(names);
  free(key);
  free(col);
  free(vals);
  if (rc) {
    myelin_builder_free(b);
    return rc;
  }
  myelin_msg *out = myelin_builder_finish(b);
  if (!out) return s->host->error(s->st, "cannot build message (out of memory)");
  return s->host->emit(s->st, 0, out);
}

/* ---- lifecycle ------------------------------------------------------------------------ */

static int pc_validate(const myelin_params *p, myelin_validate_ctx *ctx) {
  size_t n = myelin_param_len(p, "atlas");
  if (n < 1 || n > 2)
    return myelin_validate_error(ctx, "atlas", "give one atlas file, or two .label.gii (L and R)");
  for (size_t i = 0; i < n; i++) {
    const char *a = myelin_param_str_at(p, "atlas", i);
    int gii = ends_with(a, ".label.gii") || ends_with(a, ".gii");
    if (n == 2 && !gii)
      return myelin_validate_error(ctx, "atlas", "two atlas files must be GIFTI .label.gii files");
    if (!gii && !ends_with(a, ".dlabel.nii") && !ends_with(a, ".nii") && !ends_with(a, ".nii.gz"))
      return myelin_validate_error(
          ctx, "atlas", "atlas must be a .nii/.nii.gz label image, a .dlabel.nii(.gz) or .label.gii");
  }
  return 0;
}

static void pc_fini(void *state);

static int pc_init(const myelin_host *host, myelin_stage *st, const myelin_params *p, void **state) {
  pc_state *s = calloc(1, sizeof *s);
  if (!s) return MYELIN_ENOMEM;
  s->host = host;
  s->st = st;
  const char *dir = host->pipeline_dir ? host->pipeline_dir(st) : NULL;
  int rc = 0;
  for (size_t i = 0; !rc && i < myelin_param_len(p, "atlas"); i++) {
    char *path = myelin_input_path(myelin_param_str_at(p, "atlas", i), dir);
    if (!path) {
      rc = MYELIN_ENOMEM;
      break;
    }
    if (i == 0) s->path = strdup(path);
    if (ends_with(path, ".gii")) {
      s->kind = ATLAS_GIFTI;
      rc = load_gifti_label(s, path);
    } else if (ends_with(path, ".dlabel.nii") || ends_with(path, ".dlabel.nii.gz")) {
      s->kind = ATLAS_DLABEL;
      rc = load_dlabel(s, path, myelin_param_int(p, "map"));
    } else {
      s->kind = ATLAS_NIFTI;
      rc = load_nifti(s, path);
    }
    free(path);
  }
  if (rc) {
    pc_fini(s);
    return rc;
  }
  *state = s;
  return 0;
}

static void pc_fini(void *state) {
  pc_state *s = state;
  if (!s) return;
  for (size_t i = 0; i < s->ns; i++)
    free(s->s[i].key);
  for (size_t i = 0; i < s->nnames; i++)
    free(s->names[i]);
  free(s->names);
  free(s->names_key);
  free(s->vox_key);
  free(s->path);
  free(s);
}

static const myelin_param_def pc_params[] = {{.name = "atlas",
                                              .type = MYELIN_PARAM_STRING_LIST,
                                              .def = "[]",
                                              .doc = "The parcellation: a NIfTI label image on the runs' "
                                                     "grid, a CIFTI-2 .dlabel.nii, or one or two GIFTI "
                                                     ".label.gii files (one per hemisphere)."},
                                             {.name = "map",
                                              .type = MYELIN_PARAM_INT,
                                              .def = "0",
                                              .has_range = 1,
                                              .min = 0,
                                              .max = 1e6,
                                              .doc = "Which map (row) of a .dlabel.nii to use."},
                                             {0}};

static const myelin_port_def pc_inputs[] = {
    {.name = "in", .kinds = "run", .doc = "runs [T, V] on voxels, surface vertices or grayordinates"}, {0}};
static const myelin_port_def pc_outputs[] = {
    {.name = "out", .kinds = "run", .doc = "parcel time series [T, P] with labels and parcel geometry"}, {0}};

static const myelin_plugin_desc pc_desc = {
    MYELIN_DESC_HEADER,
    .name = "parcellate",
    .version = "1.0.0",
    .summary =
        "average runs into parcels of a NIfTI, CIFTI .dlabel or GIFTI .label atlas -> parcel time series",
    .doc = "Parcels are the labels > 0 covering at least one column, ascending; each is the mean of its "
           "columns.",
    .params = pc_params,
    .inputs = pc_inputs,
    .outputs = pc_outputs,
    .validate = pc_validate,
    .init = pc_init,
    .process = pc_process,
    .fini = pc_fini,
};

MYELIN_PLUGIN(pc_desc)
