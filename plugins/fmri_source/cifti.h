/*
 * cifti.h — a CIFTI-2 reader and writer in plain C (.dtseries.nii,
 * .dscalar.nii, .dlabel.nii, .ptseries.nii, .pscalar.nii, .pconn.nii,
 * .dconn.nii, ...).
 *
 * A CIFTI-2 file is a NIfTI-2 container (nifti.c parses the header) whose
 * header extension (ecode 32) holds an XML document (read with libxml2)
 * describing the two axes of a matrix: dimension 0 (rows, NIfTI dim[5]) and
 * dimension 1 (columns, dim[6]). Reading gives nibabel's view:
 * `img.get_fdata()` as float32 [rows, cols] in C order (the file stores it
 * column-major: converted in cache-sized column blocks), and each axis as
 * nibabel's cifti2 axes describe it: brain models (per structure: surface
 * vertices or voxel ijk, with the volume's shape and affine), parcels (names,
 * their vertices per surface and voxels), series (start, step, unit),
 * scalars (map names) and labels (map names and label tables).
 *
 * Depends on libxml2, nifti.c and gifti.c (label records), not on libmyelin.
 * Every malformed input is an error naming the file and the element or
 * field; nothing here aborts.
 */
#ifndef MYELIN_CIFTI_H
#define MYELIN_CIFTI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gifti.h"

enum { CIFTI_BRAIN_MODELS = 1, CIFTI_PARCELS, CIFTI_SERIES, CIFTI_SCALARS, CIFTI_LABELS };

typedef struct cifti_model {
  char structure[80]; /* CIFTI_STRUCTURE_... */
  int surface;        /* 1: vertices, 0: voxels */
  size_t offset, count;
  size_t nvert;       /* surface: SurfaceNumberOfVertices */
  uint32_t *vertices; /* surface: count vertex indices */
  int32_t *ijk;       /* voxels: count x 3 */
} cifti_model;

typedef struct cifti_parcel_surf {
  char structure[80];
  size_t n;
  uint32_t *vertices;
} cifti_parcel_surf;

typedef struct cifti_parcel {
  char *name;
  size_t nvox;
  int32_t *ijk; /* nvox x 3 */
  size_t nsurf;
  cifti_parcel_surf *surf;
} cifti_parcel;

typedef struct cifti_surface {
  char structure[80];
  size_t nvert;
} cifti_surface;

typedef struct cifti_map {
  char *name;
  gifti_label *labels; /* label axis: the map's label table */
  size_t nlabels;
} cifti_map;

typedef struct cifti_axis {
  int type; /* CIFTI_BRAIN_MODELS ... */
  size_t n; /* length of this dimension */
  /* brain models and parcels: the voxel grid (has_volume) */
  int has_volume;
  int64_t vol_dims[3];
  double affine[4][4]; /* in mm (MeterExponent applied) */
  size_t nmodels;
  cifti_model *models;
  size_t nparcels;
  cifti_parcel *parcels;
  size_t nsurfaces;
  cifti_surface *surfaces;
  /* series */
  double start, step;
  int exponent;
  char unit[32];
  /* scalars, labels */
  cifti_map *maps;
} cifti_axis;

typedef struct cifti_file {
  int intent_code;
  size_t rows, cols;
  cifti_axis axes[2];
  float *data; /* rows x cols, C order */
} cifti_file;

/* Reads a CIFTI-2 file: a NIfTI-2 container, or a gzip of one
 * (.dtseries.nii.gz; inflated in memory by nifti_gunzip: libdeflate, or zlib
 * for several members or over 4 GiB). */
int cifti_read_file(const char *path, cifti_file *c, char *err, size_t errlen);
/* Same from memory (buf borrowed for the call; gzip content is inflated). */
int cifti_read_mem(const void *buf, size_t len, const char *name, cifti_file *c, char *err, size_t errlen);
void cifti_free(cifti_file *c);
const char *cifti_axis_type_name(int type);
/* 1 for names CIFTI-2 uses: .dtseries.nii .dscalar.nii .dlabel.nii
 * .ptseries.nii .pscalar.nii .plabel.nii .pconn.nii .dconn.nii .pdconn.nii
 * .dpconn.nii .pconnseries.nii .pconnscalar.nii (and .gz of them). */
int cifti_is_cifti_name(const char *path);

/* Writing float32 data [rows, cols] (C order) with a scalar axis of `rows`
 * map names (dimension 0) and the brain-model or parcel axis `cols`
 * (dimension 1): a .dscalar.nii (intent 3006) or .pscalar.nii (3008).
 * Writes to fp (the caller opened it, e.g. atomically). */
int cifti_write_scalars(FILE *fp, const float *data, size_t rows, const char *const *map_names,
                        const cifti_axis *cols, char *err, size_t errlen);

#endif
