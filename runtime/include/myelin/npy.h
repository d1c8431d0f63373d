/*
 * myelin/npy.h — NumPy .npy and .npz files, the interop format for arrays.
 *
 * Reading accepts format versions 1.0, 2.0 and 3.0, C order (Fortran order is
 * rejected with a clear error), the dtypes of msg.h in either byte order
 * (big-endian data is swapped to little-endian on load). .npz archives are
 * read through libarchive without extracting to disk, stored or deflated.
 * Writing produces version 1.0 (2.0 when the header needs it), C order,
 * little-endian; numpy.load reads it bit for bit.
 */
#ifndef MYELIN_NPY_H
#define MYELIN_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "msg.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An owned array: data is malloc'ed, 64-byte aligned; free with myelin_array_free. */
typedef struct myelin_array {
  myelin_dtype dtype;
  int ndim;
  int64_t shape[MYELIN_MAX_NDIM];
  size_t count;
  size_t nbytes;
  void *data;
} myelin_array;

void myelin_array_free(myelin_array *a);

/* Parses a whole .npy image held in memory. */
int myelin_npy_parse(const void *buf, size_t len, myelin_array *out, char *err, size_t errlen);
/* Reads a .npy file. Errors name the file and what is wrong. */
int myelin_npy_read(const char *path, myelin_array *out, char *err, size_t errlen);
/* Reads array `key` (with or without ".npy") from an .npz archive. */
int myelin_npz_read(const char *path, const char *key, myelin_array *out, char *err, size_t errlen);
/* Lists the array names of an .npz ("x", "y" — without .npy); NULL-terminated,
 * free each string and the list. */
int myelin_npz_list(const char *path, char ***names, char *err, size_t errlen);

/* Encodes a .npy header for (dtype, ndim, shape): writes up to cap bytes into
 * hdr and returns its length (a multiple of 64), or a negative code. */
int myelin_npy_header(myelin_dtype dtype, int ndim, const int64_t *shape, uint8_t *hdr, size_t cap);
/* Writes a .npy file atomically (temporary name, then rename). */
int myelin_npy_write(const char *path, myelin_dtype dtype, int ndim, const int64_t *shape,
                     const void *data, char *err, size_t errlen);

/* Collects arrays into one .npz (zip, stored) written atomically on close. */
typedef struct myelin_npz_writer myelin_npz_writer;
myelin_npz_writer *myelin_npz_open(const char *path, char *err, size_t errlen);
/* key without ".npy"; a duplicate key is an error (MYELIN_EINVAL). */
int myelin_npz_add(myelin_npz_writer *w, const char *key, myelin_dtype dtype, int ndim,
                   const int64_t *shape, const void *data, char *err, size_t errlen);
int myelin_npz_close(myelin_npz_writer *w, char *err, size_t errlen); /* commit + free */
void myelin_npz_abort(myelin_npz_writer *w);                         /* discard + free */

#ifdef __cplusplus
}
#endif
#endif
