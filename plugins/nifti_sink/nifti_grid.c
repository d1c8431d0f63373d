/*
 * nifti_grid.c — a message's geometry as a voxel grid (nifti_grid.h).
 * Errors are written to err and returned as negative codes, so each caller
 * (a sink, a figure) reports them under its own stage name.
 */
#include "nifti_grid.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/geometry.h"
#include "../common/tensor_elem.h"
#include "myelin/error.h"
#include "nifti.h"

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return code;
}
#define OOM() fail(err, errlen, MYELIN_ENOMEM, "out of memory")

void nifti_atlas_free(nifti_atlas *a) {
  free(a->path);
  free(a->label);
  memset(a, 0, sizeof *a);
}

static int load_atlas(nifti_atlas *a, const char *path, char *err, size_t errlen) {
  if (a->path && !strcmp(a->path, path)) return 0;
  nifti_atlas_free(a);
  char why[768];
  nifti_reader r;
  if (nifti_open_file(&r, path, why, sizeof why))
    return fail(err, errlen, MYELIN_EINVAL, "geometry.atlas: %s", why);
  size_t n = r.h.nvox;
  float *v = malloc(n * sizeof *v);
  a->label = malloc(n * sizeof *a->label);
  int rc = 0;
  if (!v || !a->label)
    rc = OOM();
  else if (nifti_read_volumes(&r, 1, NULL, n, v, n, why, sizeof why))
    rc = fail(err, errlen, MYELIN_EINVAL, "%s", why);
  if (!rc) {
    for (size_t i = 0; i < n; i++)
      a->label[i] = isfinite(v[i]) ? (int32_t)lrintf(v[i]) : 0;
    for (int i = 0; i < 3; i++)
      a->dims[i] = r.h.dim[i + 1];
    nifti_affine(&r.h, a->affine);
    if (!(a->path = strdup(path))) rc = OOM();
  }
  if (rc) nifti_atlas_free(a);
  free(v);
  nifti_close(&r);
  return rc;
}

static int cmp_i32(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

/* Column per atlas voxel: geometry.values, else the sorted labels > 0. */
static int atlas_columns(const nifti_atlas *a, myelin_obj g, size_t V, nifti_grid *go, char *err,
                         size_t errlen) {
  size_t n = (size_t)(go->dims[0] * go->dims[1] * go->dims[2]);
  int32_t *vals = malloc((V ? V : 1) * sizeof *vals);
  go->col_of_voxel = malloc(n * sizeof *go->col_of_voxel);
  if (!vals || !go->col_of_voxel) {
    free(vals);
    return OOM();
  }
  myelin_tensor t;
  if (myelin_obj_tensor(myelin_obj_get(g, "values"), &t) == 0) {
    if (t.count != V) {
      free(vals);
      return fail(err, errlen, MYELIN_EINVAL, "geometry.values has %zu entries, data has %zu columns",
                  t.count, V);
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
      return OOM();
    }
    size_t m = 0, k = 0;
    for (size_t i = 0; i < n; i++)
      if (a->label[i] > 0) u[m++] = a->label[i];
    qsort(u, m, sizeof *u, cmp_i32);
    for (size_t i = 0; i < m; i++)
      if (k == 0 || u[i] != u[k - 1]) u[k++] = u[i];
    if (k != V) {
      free(u);
      free(vals);
      return fail(err, errlen, MYELIN_EINVAL, "atlas %s has %zu labels but the data has %zu columns", a->path,
                  k, V);
    }
    memcpy(vals, u, V * sizeof *vals);
    free(u);
  }
  /* label -> column through a sorted (label, column) table */
  int32_t(*tab)[2] = malloc((V ? V : 1) * sizeof *tab);
  if (!tab) {
    free(vals);
    return OOM();
  }
  for (size_t k = 0; k < V; k++) {
    tab[k][0] = vals[k];
    tab[k][1] = (int32_t)k;
  }
  qsort(tab, V, sizeof *tab, cmp_i32); /* compares the first int32 of each pair */
  for (size_t i = 0; i < n; i++) {
    int32_t key[2] = {a->label[i], 0};
    int32_t(*hit)[2] = a->label[i] > 0 ? bsearch(key, tab, V, sizeof *tab, cmp_i32) : NULL;
    go->col_of_voxel[i] = hit ? (*hit)[1] : -1;
  }
  free(tab);
  free(vals);
  return 0;
}

static int read_dims(myelin_obj g, int64_t dims[3], char *err, size_t errlen) {
  myelin_obj d = myelin_obj_get(g, "dims");
  if (myelin_obj_type_of(d) != MYELIN_OBJ_ARRAY || myelin_obj_len(d) != 3)
    return fail(err, errlen, MYELIN_EINVAL, "geometry.dims must be a list [x, y, z]");
  for (int i = 0; i < 3; i++)
    if (myelin_obj_int(myelin_obj_at(d, (size_t)i), &dims[i]) || dims[i] < 1 || dims[i] > 32767)
      return fail(err, errlen, MYELIN_EINVAL, "geometry.dims[%d] must be an integer in 1..32767", i);
  return 0;
}

static int read_affine(myelin_obj g, double a[4][4], int *missing, char *err, size_t errlen) {
  myelin_tensor t;
  if (myelin_obj_tensor(myelin_obj_get(g, "affine"), &t) != 0) {
    memset(a, 0, 16 * sizeof(double));
    for (int i = 0; i < 4; i++)
      a[i][i] = 1.0;
    *missing = 1;
    return 0;
  }
  if (t.count != 16 || (t.dtype != MYELIN_F8 && t.dtype != MYELIN_F4))
    return fail(err, errlen, MYELIN_EINVAL, "geometry.affine must be a float tensor [4, 4]");
  for (int i = 0; i < 16; i++)
    a[i / 4][i % 4] = t.dtype == MYELIN_F8 ? ((const double *)t.data)[i] : ((const float *)t.data)[i];
  return 0;
}

void nifti_grid_free(nifti_grid *go) {
  free(go->fidx);
  free(go->col_of_voxel);
  memset(go, 0, sizeof *go);
}

int nifti_grid_read(myelin_obj g, const char *kind, const char *sink, size_t V, nifti_atlas *atlas,
                    nifti_grid *go, char *err, size_t errlen) {
  memset(go, 0, sizeof *go);
  go->V = V;
  if (myelin_obj_type_of(g) != MYELIN_OBJ_MAP)
    return fail(err, errlen, MYELIN_EINVAL, "%s message without a geometry map: cannot place it on a grid",
                kind);
  if (geom_model_of(g) != GEOM_VOLUME) {
    geom_refusal(err, errlen, sink, kind, g);
    return MYELIN_EINVAL;
  }
  char apath[4096];
  if (myelin_obj_str_copy(myelin_obj_get(g, "atlas"), apath, sizeof apath) == 0 && apath[0]) {
    int rc = load_atlas(atlas, apath, err, errlen);
    if (rc) return rc;
    memcpy(go->dims, atlas->dims, sizeof go->dims);
    memcpy(go->affine, atlas->affine, sizeof go->affine);
    int missing = 0;
    if (myelin_obj_exists(myelin_obj_get(g, "affine")) &&
        (rc = read_affine(g, go->affine, &missing, err, errlen)))
      return rc;
    return atlas_columns(atlas, g, V, go, err, errlen);
  }
  int rc = read_dims(g, go->dims, err, errlen);
  if (!rc) rc = read_affine(g, go->affine, &go->no_affine, err, errlen);
  if (rc) return rc;
  size_t n = (size_t)(go->dims[0] * go->dims[1] * go->dims[2]);
  go->fidx = malloc((V ? V : 1) * sizeof *go->fidx);
  if (!go->fidx) return OOM();
  myelin_tensor t;
  if (myelin_obj_tensor(myelin_obj_get(g, "voxels"), &t) != 0) {
    if (V != n)
      return fail(err, errlen, MYELIN_EINVAL,
                  "geometry has neither voxels nor atlas, and V = %zu is not the grid size %zu", V, n);
    uint32_t *c = malloc(n * sizeof *c);
    if (!c) return OOM();
    for (size_t i = 0; i < n; i++)
      c[i] = (uint32_t)i;
    nifti_corder_to_forder(c, n, go->dims, go->fidx);
    free(c);
    return 0;
  }
  if (t.count != V)
    return fail(err, errlen, MYELIN_EINVAL, "geometry.voxels has %zu entries, data has %zu columns", t.count,
                V);
  uint32_t *c = malloc((V ? V : 1) * sizeof *c);
  if (!c) return OOM();
  for (size_t k = 0; k < V && !rc; k++) {
    int64_t v = t.dtype == MYELIN_U4   ? ((const uint32_t *)t.data)[k]
                : t.dtype == MYELIN_I4 ? ((const int32_t *)t.data)[k]
                : t.dtype == MYELIN_I8 ? ((const int64_t *)t.data)[k]
                : t.dtype == MYELIN_U8 ? (int64_t)((const uint64_t *)t.data)[k]
                                       : -1;
    if (v < 0 || (size_t)v >= n)
      rc = fail(err, errlen, MYELIN_EINVAL, "geometry.voxels[%zu] = %lld is outside the %zu-voxel grid", k,
                (long long)v, n);
    else
      c[k] = (uint32_t)v;
  }
  if (!rc) nifti_corder_to_forder(c, V, go->dims, go->fidx);
  free(c);
  return rc;
}

void nifti_grid_scatter(const nifti_grid *go, const myelin_tensor *t, const float *rows, size_t base,
                        float *vol) {
  if (go->fidx) {
    for (size_t k = 0; k < go->V; k++)
      vol[go->fidx[k]] = rows ? rows[base + k] : tensor_elem_f32(t, base + k);
    return;
  }
  size_t nvox = (size_t)(go->dims[0] * go->dims[1] * go->dims[2]);
  for (size_t i = 0; i < nvox; i++) {
    int32_t k = go->col_of_voxel[i];
    if (k >= 0) vol[i] = rows ? rows[base + (size_t)k] : tensor_elem_f32(t, base + (size_t)k);
  }
}
