/*
 * gifti.h — a GIFTI (.gii) reader and writer in plain C.
 *
 * Shared by fmri_source (surface runs), gifti_sink (maps back to surfaces),
 * the parcellation of surface data, the GIFTI fuzz target and the tests. It
 * depends on libxml2 (the XML), zlib / libdeflate (GZipBase64Binary) and
 * nifti.h's datatype codes, not on libmyelin.
 *
 * Reading gives what nibabel's `nib.load(f).darrays[i].data` gives, bit for
 * bit: every DataArray's elements in their own datatype (u1 i1 i2 u2 i4 u4
 * i8 u8 f4 f8), in host byte order and C (row-major) order whatever the
 * file's ArrayIndexingOrder and Endian, from every encoding GIFTI allows:
 * ASCII, Base64Binary, GZipBase64Binary (a zlib stream, as nibabel reads it;
 * a gzip wrapper is accepted too) and ExternalFileBinary (raw bytes in a
 * file beside the .gii, at ExternalFileOffset). ASCII numbers are parsed as
 * numpy's loadtxt does (a double rounded to float32 for FLOAT32). Metadata,
 * the label table and each array's CoordinateSystemTransformMatrix come
 * along.
 *
 * The XML is parsed by libxml2 without network access or entity
 * substitution, and only text and CDATA nodes are read, so a hostile file
 * cannot make it fetch or expand anything. Sizes are checked against the
 * input before allocating (a short base64 text cannot claim gigabytes).
 * Every malformed input is an error naming the file and, where it has one,
 * the DataArray index and attribute. Nothing here aborts.
 */
#ifndef MYELIN_GIFTI_H
#define MYELIN_GIFTI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum { GIFTI_ASCII = 1, GIFTI_B64BIN = 2, GIFTI_B64GZ = 3, GIFTI_EXTBIN = 4 };

/* NIfTI intent codes GIFTI uses. */
enum {
  GIFTI_INTENT_NONE = 0,
  GIFTI_INTENT_LABEL = 1002,
  GIFTI_INTENT_POINTSET = 1008,
  GIFTI_INTENT_TRIANGLE = 1009,
  GIFTI_INTENT_TIME_SERIES = 2001,
  GIFTI_INTENT_NODE_INDEX = 2002,
  GIFTI_INTENT_SHAPE = 2005
};

typedef struct gifti_md {
  char *name, *value;
} gifti_md;

typedef struct gifti_meta {
  gifti_md *v;
  size_t n;
} gifti_meta;

typedef struct gifti_label {
  int32_t key;
  double rgba[4]; /* -1 when the attribute is absent */
  char *name;
} gifti_label;

typedef struct gifti_array {
  char intent[64]; /* as written, e.g. "NIFTI_INTENT_TIME_SERIES" */
  int intent_code; /* the NIfTI code, -1 when the name is unknown */
  int datatype;    /* NIFTI_UINT8 ... NIFTI_FLOAT64 (nifti.h) */
  int ndim;
  int64_t dims[6];
  size_t n;         /* elements (product of dims) */
  int column_major; /* the file's ArrayIndexingOrder (data is C order regardless) */
  int encoding;     /* GIFTI_ASCII ... as written */
  int big_endian;   /* the file's Endian (data is host order regardless) */
  char ext_file[512];
  int64_t ext_offset;
  gifti_meta meta;
  int has_xform;
  char dataspace[64], xformspace[64];
  double xform[4][4];
  void *data; /* n elements of datatype */
} gifti_array;

typedef struct gifti_image {
  char version[16];
  gifti_meta meta;
  gifti_label *labels;
  size_t nlabels;
  gifti_array *arrays;
  size_t narrays;
} gifti_image;

/* Reads a .gii file, or a .gii.gz / .gii.bz2 / .gii.xz (external data files
 * are found beside it). */
int gifti_read_file(const char *path, gifti_image *g, char *err, size_t errlen);
/* Reads a .gii held in memory; ext_dir is the folder of external data files
 * (NULL: ExternalFileBinary is an error, as in nibabel). name is used in
 * error messages. */
int gifti_read_mem(const void *buf, size_t len, const char *name, const char *ext_dir, gifti_image *g,
                   char *err, size_t errlen);
void gifti_free(gifti_image *g);

/* The value of a metadata entry, or NULL. */
const char *gifti_meta_get(const gifti_meta *m, const char *name);
/* Element i of an array as float (float32 rounding of any datatype). */
float gifti_elem_f32(const gifti_array *a, size_t i);
/* "NIFTI_INTENT_TIME_SERIES" -> 2001, -1 when unknown. */
int gifti_intent_code(const char *name);
const char *gifti_intent_name(int code);

/* The data of a functional, shape or label file as rows [T, V] of float32:
 * one row per DataArray of V values ([V] or [V, 1]), or the columns of a
 * single [V, T] array. A mesh (POINTSET, TRIANGLE) or arrays of different
 * lengths are errors naming the file. *X is malloc'ed. */
int gifti_rows_f32(const gifti_image *g, const char *name, float **X, size_t *T, size_t *V, char *err,
                   size_t errlen);

/* CortexLeft <-> CIFTI_STRUCTURE_CORTEX_LEFT, as nibabel's cifti2 converts
 * GIFTI's AnatomicalStructurePrimary: the CamelCase words joined by '_' and
 * upper-cased, prefixed with CIFTI_STRUCTURE_. Writes into out (size n). */
void gifti_structure_to_cifti(const char *gifti, char *out, size_t n);
void gifti_structure_from_cifti(const char *cifti, char *out, size_t n);

/* Writing: a GIFTI file of `rows` float32 DataArrays of nvert values each
 * (rows[r * nvert + v]), GZipBase64Binary, little-endian. intent is a
 * GIFTI_INTENT_* code; meta (file level) and row_meta (per array, n_row_meta
 * entries each, may be NULL) are copied as given; structure, when not NULL,
 * is written as the file's AnatomicalStructurePrimary (GIFTI spelling).
 * Writes to fp (the caller opened it, e.g. atomically). */
int gifti_write_f32(FILE *fp, const float *rows, size_t nrows, size_t nvert, int intent,
                    const char *structure, const gifti_meta *meta, const gifti_meta *row_meta, char *err,
                    size_t errlen);

#endif
