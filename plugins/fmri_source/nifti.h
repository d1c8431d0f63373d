/*
 * nifti.h — a small NIfTI-1 / NIfTI-2 reader and writer in plain C.
 *
 * Shared by fmri_source (reading runs, masks, atlases), nifti_sink (writing
 * maps back on the source grid), the NIfTI fuzz target and the benchmark. It
 * depends only on libc, zlib and (optionally) libdeflate, not on libmyelin.
 *
 * Reading follows nibabel's semantics, which is what users compare against:
 *  - NIfTI-1 (348-byte header) and NIfTI-2 (540), either byte order, single
 *    file (.nii) or pair (.hdr + .img), each possibly gzip-compressed;
 *  - every real scalar datatype (u1 i1 i2 u2 i4 u4 i8 u8 f4 f8) converted to
 *    float32, with scl_slope/scl_inter applied (slope 0 or NaN means none);
 *  - the affine chosen as nibabel's get_best_affine(): sform when sform_code
 *    != 0, else qform, else the pixdim "base" affine; the same header fixes
 *    nibabel applies on load (qfac not ±1 → 1, pixdim 0 → 1, negative pixdim
 *    → its absolute value, unknown xform codes → 0).
 *
 * Data access is volume by volume: nifti_read_volumes() converts the next
 * volumes straight into the caller's float rows, optionally gathering a
 * subset of voxels (a mask) in any order. Uncompressed files are mapped;
 * .gz files are inflated in one go with libdeflate when the gzip trailer
 * promises a size below a limit, and streamed through zlib otherwise, so a
 * large run never needs its whole raw image in memory.
 *
 * CIFTI-2 files (intent_code 3000-3099 or a header extension with ecode 32)
 * are refused with an error saying so: they hold grayordinates, not volumes.
 *
 * Every malformed input (bad sizeof_hdr or magic, dims <= 0, a size that
 * overflows, vox_offset past the end, truncated data) is an error naming the
 * file and the header field. Nothing here aborts.
 */
#ifndef MYELIN_NIFTI_H
#define MYELIN_NIFTI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* NIfTI datatype codes. */
enum {
  NIFTI_UINT8 = 2,
  NIFTI_INT16 = 4,
  NIFTI_INT32 = 8,
  NIFTI_FLOAT32 = 16,
  NIFTI_COMPLEX64 = 32,
  NIFTI_FLOAT64 = 64,
  NIFTI_RGB24 = 128,
  NIFTI_INT8 = 256,
  NIFTI_UINT16 = 512,
  NIFTI_UINT32 = 768,
  NIFTI_INT64 = 1024,
  NIFTI_UINT64 = 1280,
  NIFTI_FLOAT128 = 1536,
  NIFTI_COMPLEX128 = 1792,
  NIFTI_COMPLEX256 = 2048,
  NIFTI_RGBA32 = 2304
};

typedef struct nifti_header {
  int version;         /* 1 or 2 */
  int swapped;         /* file byte order differs from this machine's */
  int single_file;     /* magic n+1 / n+2 (else a .hdr/.img pair) */
  size_t header_bytes; /* 348 or 540 */
  int ndim;            /* dim[0], 1..7 */
  int64_t dim[8];      /* dim[1..ndim] >= 1; dims past ndim are 1 */
  double pixdim[8];    /* after nibabel's fixes */
  int datatype;
  int bytes_per_voxel;
  int64_t vox_offset;  /* byte offset of the data (352 / 544 when 0 in a .nii) */
  double slope, inter; /* effective scaling: (1, 0) when none */
  int qform_code, sform_code;
  double quatern[3]; /* b, c, d */
  double qoffset[3];
  double srow[3][4];
  int xyzt_units;
  double toffset;
  int intent_code; /* CIFTI's 3000-3099 are refused */
  size_t nvox;     /* dim1 * dim2 * dim3 (one volume) */
  size_t nvols;    /* product of dim4..dim7 */
} nifti_header;

/* Parses a header held in buf[0..len). name is used in error messages. */
int nifti_parse_header(const void *buf, size_t len, const char *name, nifti_header *h, char *err,
                       size_t errlen);
/* Same, but a CIFTI intent code (3000-3099) is accepted: for cifti.c, which
 * reads the matrix behind it. */
int nifti_parse_header_cifti(const void *buf, size_t len, const char *name, nifti_header *h, char *err,
                             size_t errlen);
/* n raw elements of a supported datatype (swapped: the other byte order)
 * to float32, times slope plus inter as nibabel scales; -1 for an
 * unsupported datatype. */
int nifti_convert_f32(const void *src, size_t n, int datatype, int swapped, double slope, double inter,
                      float *dst);
/* The affine nibabel reports for this header (row-major 4x4). */
void nifti_affine(const nifti_header *h, double aff[4][4]);
/* pixdim[4] converted to seconds through xyzt_units (ms, us; unknown = s);
 * 0 when the header has no time step. */
double nifti_tr_seconds(const nifti_header *h);
const char *nifti_datatype_name(int datatype);
/* Bytes per voxel of a supported real scalar datatype, 0 otherwise. */
int nifti_datatype_size(int datatype);

typedef struct nifti_reader {
  nifti_header h;
  char name[512];
  /* whole data section in memory (mapped, inflated or borrowed) */
  const uint8_t *data;
  size_t data_len;
  size_t pos; /* next byte to convert, relative to data */
  void *map;  /* mmap'ed file */
  size_t map_len;
  uint8_t *owned; /* malloc'ed inflated image */
  /* streaming inflate (large .gz) */
  void *zs;           /* z_stream * */
  const uint8_t *zin; /* compressed bytes (borrowed from the map or caller) */
  size_t zin_len;
  uint8_t *vol; /* one raw volume for streaming */
  size_t vol_cap;
  size_t next_vol;
  int streaming;
  size_t whole_limit; /* inflate whole below this many bytes, else stream */
  float *scratch;     /* one C-order volume for nifti_read_volumes_c */
  size_t scratch_n;
  /* span reads (nifti_open_file_span) */
  int span;          /* opened for span reads */
  int span_fd;       /* the mapped file's descriptor + 1 (0 = none), for pread */
  uint8_t *span_buf; /* one volume's span */
  uint32_t *span_idx;
} nifti_reader;

/* Above this inflated size a .nii.gz is streamed instead of inflated whole. */
#define NIFTI_WHOLE_INFLATE_LIMIT ((size_t)1 << 30)

/* Opens a .nii / .nii.gz / .hdr(.gz) (+ .img(.gz)) file. */
int nifti_open_file(nifti_reader *r, const char *path, char *err, size_t errlen);
/* Same, choosing the inflate strategy: a .gz whose trailer promises at most
 * whole_limit bytes is inflated in one go (libdeflate), a larger one is
 * streamed through zlib a volume at a time (0 = always stream). */
int nifti_open_file_ex(nifti_reader *r, const char *path, size_t whole_limit, char *err, size_t errlen);
/* Opens a file for nifti_read_volumes_span: a .gz is always streamed (one
 * volume's buffer, never the whole image), and an uncompressed image is
 * read with pread, one call per volume for the span only (its mapping, used
 * for the header, gets no read-around). */
int nifti_open_file_span(nifti_reader *r, const char *path, char *err, size_t errlen);
/* Inflates gzip data in[0..len) (several members allowed) into *out
 * (malloc'ed, *out_len bytes): in one go with libdeflate when the trailer's
 * size is plausible and at most limit, else streamed through zlib. More than
 * limit inflated bytes, or corrupt data, is an error naming name. For whole-
 * file readers (CIFTI-2) that need the bytes in memory. */
int nifti_gunzip(const uint8_t *in, size_t len, const char *name, size_t limit, uint8_t **out,
                 size_t *out_len, char *err, size_t errlen);
/* 1 when buf starts with the gzip magic (1f 8b). */
int nifti_is_gzip(const void *buf, size_t len);
/* Opens a single-file NIfTI (.nii or gzip of it) held in memory. The buffer
 * is borrowed: keep it alive until nifti_close(). */
int nifti_open_mem(nifti_reader *r, const void *buf, size_t len, const char *name, char *err, size_t errlen);
/*
 * Converts the next nvols volumes to float32 (scaled). Row v goes to
 * out + v * stride. idx (n entries) lists, for each output column, the
 * voxel's offset in the file's volume (x + nx*(y + ny*z)); idx NULL means
 * every voxel in file order (n must equal h.nvox).
 */
int nifti_read_volumes(nifti_reader *r, size_t nvols, const uint32_t *idx, size_t n, float *out,
                       size_t stride, char *err, size_t errlen);
/* Same, for voxels whose file offsets all lie in [lo, hi) (a z-slab is one
 * such span): on an uncompressed file opened with nifti_open_file_span,
 * each volume's span is read with one pread and nothing else of the volume
 * is touched; a gzip stream still inflates every volume (one at a time),
 * and an image in memory is gathered from. */
int nifti_read_volumes_span(nifti_reader *r, size_t nvols, size_t lo, size_t hi, const uint32_t *idx,
                            size_t n, float *out, size_t stride, char *err, size_t errlen);
/* Same, but columns are voxels in C order over (x, y, z) — myelin's order:
 * cidx lists C-order indices ((x*ny + y)*nz + z), NULL = every voxel in C
 * order. Each volume is converted straight into C order in cache-sized
 * tiles (then gathered when cidx is given): several times faster than a
 * strided gather. */
int nifti_read_volumes_c(nifti_reader *r, size_t nvols, const uint32_t *cidx, size_t n, float *out,
                         size_t stride, char *err, size_t errlen);
void nifti_close(nifti_reader *r);

/* File offset of voxel (x, y, z) in a volume, and the C-order index myelin
 * uses in geometry.voxels. */
static inline size_t nifti_forder(size_t x, size_t y, size_t z, size_t nx, size_t ny) {
  return x + nx * (y + ny * z);
}
static inline size_t nifti_corder(size_t x, size_t y, size_t z, size_t ny, size_t nz) {
  return (x * ny + y) * nz + z;
}
/* Maps C-order voxel indices to file (Fortran) offsets. */
void nifti_corder_to_forder(const uint32_t *c, size_t n, const int64_t dims[3], uint32_t *f);

/* Writing: a float32 NIfTI-1 single file (dims nx, ny, nz, nt; nt 1 = 3-D)
 * with the given affine (16 doubles, row-major) as sform (code 2, aligned) and qform (code 2) when
 * the affine's 3x3 is a rotation times positive zooms, tr seconds as
 * pixdim[4]. data is in file order (x fastest, then y, z, t). gz selects
 * gzip. Writes to fp (the caller opened it, e.g. atomically). */
int nifti_write_f32(FILE *fp, const int64_t dims[4], const double *aff16, double tr, const float *data,
                    int gz, char *err, size_t errlen);

#endif
