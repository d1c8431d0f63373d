/*
 * nifti_grid.h — the voxel grid of a `map`, `run` or `volume` message.
 *
 * A message's `geometry` (schemas/geometry.md, model `volume`) places its V
 * columns on a 3-D grid: `dims` + `affine` + `voxels` (C-order indices; absent
 * = every voxel), or an `atlas` label image whose parcels receive the columns
 * (`values` gives each column's label, else the atlas's labels > 0 in
 * ascending order). nifti_grid_read() turns that into per-column file-order
 * offsets (or a column per atlas voxel) and nifti_grid_scatter() paints a row
 * of V values into a file-order volume (x fastest, as NIfTI stores it).
 * Shared by nifti_sink (writing images) and figure (drawing them), so both
 * place every column on the same voxel.
 */
#ifndef MYELIN_NIFTI_GRID_H
#define MYELIN_NIFTI_GRID_H

#include <stddef.h>
#include <stdint.h>

#include "myelin/msg.h"

/* The last atlas read, kept across messages (most maps share one atlas). */
typedef struct nifti_atlas {
  char *path;
  int64_t dims[3];
  double affine[4][4];
  int32_t *label; /* per file-order voxel */
} nifti_atlas;

typedef struct nifti_grid {
  int64_t dims[3];
  double affine[4][4];
  int no_affine; /* geometry had none: the identity is used */
  size_t V;
  uint32_t *fidx;        /* per column: file-order voxel offset (voxel geometry) */
  int32_t *col_of_voxel; /* atlas geometry: per file-order voxel, its column or -1 */
} nifti_grid;

/* Builds the grid of V columns from geometry g of a `kind` message; `sink`
 * names the caller in the refusal of a non-volume model. Returns 0 or a
 * negative code with the reason in err. */
int nifti_grid_read(myelin_obj g, const char *kind, const char *sink, size_t V, nifti_atlas *atlas,
                    nifti_grid *go, char *err, size_t errlen);
void nifti_grid_free(nifti_grid *go);
void nifti_atlas_free(nifti_atlas *a);

/* Paints columns base .. base + V - 1 (of rows, or of tensor t when rows is
 * NULL) into vol, a file-order volume of dims[0]*dims[1]*dims[2] floats;
 * voxels without a column are left as they are. */
void nifti_grid_scatter(const nifti_grid *go, const myelin_tensor *t, const float *rows, size_t base,
                        float *vol);

#endif
