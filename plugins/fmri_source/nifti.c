/*
 * nifti.c — NIfTI-1/2 reader and float32 NIfTI-1 writer (see nifti.h).
 *
 * Layout of this file:
 *  1. header decoding: fixed-offset fields read with explicit byte order,
 *     validated field by field so each error names its field;
 *  2. affine and time step, mirroring nibabel's choices;
 *  3. byte sources: a mapped or inflated image in memory, or a zlib stream
 *     for large .gz files (volumes are inflated one at a time);
 *  4. conversion kernels: one loop per (datatype, byte order), gathering an
 *     optional voxel list, scaling in double and storing float32;
 *  5. the writer.
 */
#include "nifti.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#ifdef NIFTI_HAVE_LIBDEFLATE
#include <libdeflate.h>
#endif

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return -1;
}

/* ---- 1. header decoding ------------------------------------------------- */

typedef struct hdr_in {
  const uint8_t *b;
  int swap;
} hdr_in;

static uint64_t rd_bytes(hdr_in in, size_t off, int n) {
  uint64_t v = 0;
  uint8_t tmp[8];
  memcpy(tmp, in.b + off, (size_t)n);
  if (in.swap) {
    for (int i = 0; i < n / 2; i++) {
      uint8_t t = tmp[i];
      tmp[i] = tmp[n - 1 - i];
      tmp[n - 1 - i] = t;
    }
  }
  memcpy(&v, tmp, (size_t)n); /* little-endian host assumed below */
  return v;
}
static int16_t rd_i16(hdr_in in, size_t off) { return (int16_t)(uint16_t)rd_bytes(in, off, 2); }
static int32_t rd_i32(hdr_in in, size_t off) { return (int32_t)(uint32_t)rd_bytes(in, off, 4); }
static int64_t rd_i64(hdr_in in, size_t off) { return (int64_t)rd_bytes(in, off, 8); }
static double rd_f32(hdr_in in, size_t off) {
  uint32_t u = (uint32_t)rd_bytes(in, off, 4);
  float f;
  memcpy(&f, &u, 4);
  return f;
}
static double rd_f64(hdr_in in, size_t off) {
  uint64_t u = rd_bytes(in, off, 8);
  double d;
  memcpy(&d, &u, 8);
  return d;
}

static int host_is_little(void) {
  const uint16_t one = 1;
  uint8_t b;
  memcpy(&b, &one, 1);
  return b == 1;
}

int nifti_datatype_size(int dt) {
  switch (dt) {
  case NIFTI_UINT8:
  case NIFTI_INT8:
    return 1;
  case NIFTI_INT16:
  case NIFTI_UINT16:
    return 2;
  case NIFTI_INT32:
  case NIFTI_UINT32:
  case NIFTI_FLOAT32:
    return 4;
  case NIFTI_INT64:
  case NIFTI_UINT64:
  case NIFTI_FLOAT64:
    return 8;
  default:
    return 0;
  }
}

const char *nifti_datatype_name(int dt) {
  switch (dt) {
  case NIFTI_UINT8:
    return "UINT8";
  case NIFTI_INT16:
    return "INT16";
  case NIFTI_INT32:
    return "INT32";
  case NIFTI_FLOAT32:
    return "FLOAT32";
  case NIFTI_COMPLEX64:
    return "COMPLEX64";
  case NIFTI_FLOAT64:
    return "FLOAT64";
  case NIFTI_RGB24:
    return "RGB24";
  case NIFTI_INT8:
    return "INT8";
  case NIFTI_UINT16:
    return "UINT16";
  case NIFTI_UINT32:
    return "UINT32";
  case NIFTI_INT64:
    return "INT64";
  case NIFTI_UINT64:
    return "UINT64";
  case NIFTI_FLOAT128:
    return "FLOAT128";
  case NIFTI_COMPLEX128:
    return "COMPLEX128";
  case NIFTI_COMPLEX256:
    return "COMPLEX256";
  case NIFTI_RGBA32:
    return "RGBA32";
  default:
    return "unknown";
  }
}

/* Field offsets of the two header versions. */
typedef struct layout {
  size_t dim, datatype, pixdim, vox_offset, scl_slope, scl_inter, qform_code, sform_code, quatern, qoffset,
      srow, xyzt_units, toffset, intent_code;
  int wide; /* NIfTI-2: 64-bit ints and doubles */
} layout;

static const layout L1 = {40, 70, 76, 108, 112, 116, 252, 254, 256, 268, 280, 123, 136, 68, 0};
static const layout L2 = {16, 12, 104, 168, 176, 184, 344, 348, 352, 376, 400, 500, 216, 504, 1};

/* CIFTI-2 (grayordinates: surface vertices + subcortical voxels) travels in a
 * NIfTI-2 container: its intent code (NIFTI_INTENT_CONNECTIVITY_*, 3000-3099)
 * or a header extension with ecode 32 says so. Its data axes are not x, y, z,
 * t, so reading it as a volume would silently mangle it: refuse it by name. */
enum { NIFTI_ECODE_CIFTI = 32 };

static const char *cifti_intent_name(int code) {
  switch (code) {
  case 3000:
    return "NIFTI_INTENT_CONNECTIVITY_UNKNOWN";
  case 3001:
    return "NIFTI_INTENT_CONNECTIVITY_DENSE";
  case 3002:
    return "NIFTI_INTENT_CONNECTIVITY_DENSE_SERIES";
  case 3003:
    return "NIFTI_INTENT_CONNECTIVITY_PARCELLATED";
  case 3004:
    return "NIFTI_INTENT_CONNECTIVITY_PARCELLATED_SERIES";
  case 3006:
    return "NIFTI_INTENT_CONNECTIVITY_DENSE_SCALARS";
  case 3007:
    return "NIFTI_INTENT_CONNECTIVITY_DENSE_LABELS";
  case 3008:
    return "NIFTI_INTENT_CONNECTIVITY_PARCELLATED_SCALAR";
  case 3009:
    return "NIFTI_INTENT_CONNECTIVITY_PARCELLATED_DENSE";
  case 3010:
    return "NIFTI_INTENT_CONNECTIVITY_DENSE_PARCELLATED";
  case 3011:
    return "NIFTI_INTENT_CONNECTIVITY_PARCELLATED_PARCELLATED_SERIES";
  case 3012:
    return "NIFTI_INTENT_CONNECTIVITY_PARCELLATED_PARCELLATED_SCALAR";
  default:
    return "a CIFTI connectivity intent";
  }
}

static int cifti_refused(const char *name, const char *why, char *err, size_t errlen) {
  return fail(err, errlen,
              "%s: a CIFTI-2 file (%s): CIFTI is not supported by this loader, which reads volumetric "
              "NIfTI only",
              name, why);
}

static double rd_real(hdr_in in, const layout *l, size_t off, int i) {
  return l->wide ? rd_f64(in, off + 8 * (size_t)i) : rd_f32(in, off + 4 * (size_t)i);
}

static int detect_version(const uint8_t *b, size_t len, const char *name, int *version, int *swap, char *err,
                          size_t errlen) {
  if (len < 348) return fail(err, errlen, "%s: file too short for a NIfTI header (%zu bytes)", name, len);
  int32_t le, be;
  le = (int32_t)((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24);
  be = (int32_t)((uint32_t)b[3] | (uint32_t)b[2] << 8 | (uint32_t)b[1] << 16 | (uint32_t)b[0] << 24);
  int little = host_is_little();
  if (le == 348 || be == 348) {
    *version = 1;
    *swap = (le == 348) != little;
  } else if (le == 540 || be == 540) {
    *version = 2;
    *swap = (le == 540) != little;
  } else {
    return fail(err, errlen, "%s: header field sizeof_hdr is %d (expected 348 or 540): not a NIfTI file",
                name, (int)le);
  }
  return 0;
}

static int check_magic(const uint8_t *b, int version, const char *name, int *single, char *err,
                       size_t errlen) {
  const uint8_t *m = version == 1 ? b + 344 : b + 4;
  char v = version == 1 ? '1' : '2';
  if (m[0] == 'n' && (m[1] == '+' || m[1] == 'i') && m[2] == v && m[3] == 0) {
    *single = m[1] == '+';
    return 0;
  }
  return fail(err, errlen, "%s: header field magic is not \"n+%c\" or \"ni%c\" (ANALYZE or corrupt file)",
              name, v, v);
}

static int parse_dims(hdr_in in, const layout *l, const char *name, nifti_header *h, char *err,
                      size_t errlen) {
  int64_t d0 = l->wide ? rd_i64(in, l->dim) : rd_i16(in, l->dim);
  if (d0 < 1 || d0 > 7)
    return fail(err, errlen, "%s: header field dim[0] = %lld (number of dimensions must be 1..7)", name,
                (long long)d0);
  h->ndim = (int)d0;
  h->dim[0] = d0;
  for (int i = 1; i < 8; i++) {
    int64_t d = l->wide ? rd_i64(in, l->dim + 8 * (size_t)i) : rd_i16(in, l->dim + 2 * (size_t)i);
    if (i <= h->ndim && d <= 0)
      return fail(err, errlen, "%s: header field dim[%d] = %lld (dimensions must be >= 1)", name, i,
                  (long long)d);
    h->dim[i] = i <= h->ndim ? d : 1;
  }
  size_t nvox = 1, nvols = 1;
  for (int i = 1; i < 8; i++) {
    size_t *acc = i <= 3 ? &nvox : &nvols;
    if ((uint64_t)h->dim[i] > SIZE_MAX || __builtin_mul_overflow(*acc, (size_t)h->dim[i], acc))
      return fail(err, errlen, "%s: header field dim: the product of dimensions overflows", name);
  }
  size_t total;
  if (__builtin_mul_overflow(nvox, nvols, &total) ||
      __builtin_mul_overflow(total, (size_t)h->bytes_per_voxel, &total) || total > (SIZE_MAX >> 2))
    return fail(err, errlen, "%s: header field dim: the image size overflows", name);
  if (nvox > UINT32_MAX)
    return fail(err, errlen, "%s: header field dim: %zu voxels per volume is over the 2^32 limit", name,
                nvox);
  h->nvox = nvox;
  h->nvols = nvols;
  return 0;
}

static int valid_xform(int code) { return code >= 0 && code <= 5; }

static void fix_pixdim(nifti_header *h) {
  if (h->pixdim[0] != 1.0 && h->pixdim[0] != -1.0) h->pixdim[0] = 1.0; /* qfac */
  for (int i = 1; i <= 3; i++) {
    if (h->pixdim[i] == 0.0)
      h->pixdim[i] = 1.0;
    else if (h->pixdim[i] < 0)
      h->pixdim[i] = -h->pixdim[i];
  }
}

static int parse_scaling(hdr_in in, const layout *l, const char *name, nifti_header *h, char *err,
                         size_t errlen) {
  double slope = l->wide ? rd_f64(in, l->scl_slope) : rd_f32(in, l->scl_slope);
  double inter = l->wide ? rd_f64(in, l->scl_inter) : rd_f32(in, l->scl_inter);
  h->slope = 1.0;
  h->inter = 0.0;
  if (slope == 0.0 || !isfinite(slope)) return 0;
  if (!isfinite(inter))
    return fail(err, errlen, "%s: header field scl_inter is %g with a valid scl_slope", name, inter);
  h->slope = slope;
  h->inter = inter;
  return 0;
}

static int parse_offset(hdr_in in, const layout *l, const char *name, nifti_header *h, char *err,
                        size_t errlen) {
  double off = l->wide ? (double)rd_i64(in, l->vox_offset) : rd_f32(in, l->vox_offset);
  if (!isfinite(off) || off < 0 || off > 9.0e18)
    return fail(err, errlen, "%s: header field vox_offset = %g is invalid", name, off);
  h->vox_offset = (int64_t)off;
  if (h->single_file) {
    int64_t min = (int64_t)h->header_bytes + 4;
    if (h->vox_offset == 0)
      h->vox_offset = min;
    else if (h->vox_offset < min)
      return fail(err, errlen, "%s: header field vox_offset = %lld is inside the header (minimum %lld)", name,
                  (long long)h->vox_offset, (long long)min);
  }
  return 0;
}

static int parse_header(const void *buf, size_t len, const char *name, int allow_cifti, nifti_header *h,
                        char *err, size_t errlen);

int nifti_parse_header(const void *buf, size_t len, const char *name, nifti_header *h, char *err,
                       size_t errlen) {
  return parse_header(buf, len, name, 0, h, err, errlen);
}

int nifti_parse_header_cifti(const void *buf, size_t len, const char *name, nifti_header *h, char *err,
                             size_t errlen) {
  return parse_header(buf, len, name, 1, h, err, errlen);
}

static int parse_header(const void *buf, size_t len, const char *name, int allow_cifti, nifti_header *h,
                        char *err, size_t errlen) {
  const uint8_t *b = buf;
  memset(h, 0, sizeof *h);
  if (detect_version(b, len, name, &h->version, &h->swapped, err, errlen)) return -1;
  if (h->version == 2 && len < 540)
    return fail(err, errlen, "%s: file too short for a NIfTI-2 header (%zu bytes)", name, len);
  if (check_magic(b, h->version, name, &h->single_file, err, errlen)) return -1;
  const layout *l = h->version == 1 ? &L1 : &L2;
  hdr_in in = {b, h->swapped};
  h->header_bytes = h->version == 1 ? 348 : 540;
  h->intent_code = l->wide ? rd_i32(in, l->intent_code) : rd_i16(in, l->intent_code);
  if (!allow_cifti && h->intent_code >= 3000 && h->intent_code <= 3099) {
    char why[96];
    snprintf(why, sizeof why, "intent_code %d, %s", h->intent_code, cifti_intent_name(h->intent_code));
    return cifti_refused(name, why, err, errlen);
  }
  h->datatype = rd_i16(in, l->datatype);
  h->bytes_per_voxel = nifti_datatype_size(h->datatype);
  if (!h->bytes_per_voxel)
    return fail(err, errlen, "%s: header field datatype = %d (%s) is not a supported real scalar type", name,
                h->datatype, nifti_datatype_name(h->datatype));
  if (parse_dims(in, l, name, h, err, errlen)) return -1;
  for (int i = 0; i < 8; i++)
    h->pixdim[i] = rd_real(in, l, l->pixdim, i);
  fix_pixdim(h);
  if (parse_offset(in, l, name, h, err, errlen)) return -1;
  if (parse_scaling(in, l, name, h, err, errlen)) return -1;
  h->qform_code = l->wide ? rd_i32(in, l->qform_code) : rd_i16(in, l->qform_code);
  h->sform_code = l->wide ? rd_i32(in, l->sform_code) : rd_i16(in, l->sform_code);
  if (!valid_xform(h->qform_code)) h->qform_code = 0;
  if (!valid_xform(h->sform_code)) h->sform_code = 0;
  for (int i = 0; i < 3; i++) {
    h->quatern[i] = rd_real(in, l, l->quatern, i);
    h->qoffset[i] = rd_real(in, l, l->qoffset, i);
    for (int j = 0; j < 4; j++)
      h->srow[i][j] = rd_real(in, l, l->srow, i * 4 + j);
  }
  h->xyzt_units = l->wide ? rd_i32(in, l->xyzt_units) : b[l->xyzt_units];
  h->toffset = rd_real(in, l, l->toffset, 0);
  return 0;
}

/* ---- 2. affine and time step -------------------------------------------- */

static void eye4(double a[4][4]) {
  memset(a, 0, 16 * sizeof(double));
  for (int i = 0; i < 4; i++)
    a[i][i] = 1.0;
}

static void qform_affine(const nifti_header *h, double a[4][4]) {
  double b = h->quatern[0], c = h->quatern[1], d = h->quatern[2];
  double w2 = 1.0 - (b * b + c * c + d * d);
  double w = w2 > 0 ? sqrt(w2) : 0.0;
  double n = w * w + b * b + c * c + d * d;
  double R[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
  if (n > 1e-300) {
    double s = 2.0 / n;
    double X = b * s, Y = c * s, Z = d * s;
    double wX = w * X, wY = w * Y, wZ = w * Z, xX = b * X, xY = b * Y, xZ = b * Z;
    double yY = c * Y, yZ = c * Z, zZ = d * Z;
    double M[3][3] = {{1.0 - (yY + zZ), xY - wZ, xZ + wY},
                      {xY + wZ, 1.0 - (xX + zZ), yZ - wX},
                      {xZ - wY, yZ + wX, 1.0 - (xX + yY)}};
    memcpy(R, M, sizeof R);
  }
  double vox[3] = {h->pixdim[1], h->pixdim[2], h->pixdim[3] * h->pixdim[0]};
  eye4(a);
  for (int i = 0; i < 3; i++) {
    for (int j = 0; j < 3; j++)
      a[i][j] = R[i][j] * vox[j];
    a[i][3] = h->qoffset[i];
  }
}

static void base_affine(const nifti_header *h, double a[4][4]) {
  eye4(a);
  for (int i = 0; i < 3; i++) {
    double shape = i < h->ndim ? (double)h->dim[i + 1] : 1.0;
    double zoom = i < h->ndim ? h->pixdim[i + 1] : 1.0;
    if (i == 0) zoom = -zoom;
    a[i][i] = zoom;
    a[i][3] = -((shape - 1.0) / 2.0) * zoom;
  }
}

void nifti_affine(const nifti_header *h, double a[4][4]) {
  if (h->sform_code != 0) {
    eye4(a);
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < 4; j++)
        a[i][j] = h->srow[i][j];
  } else if (h->qform_code != 0) {
    qform_affine(h, a);
  } else {
    base_affine(h, a);
  }
}

double nifti_tr_seconds(const nifti_header *h) {
  if (h->ndim < 4) return 0.0;
  double tr = h->pixdim[4];
  if (!isfinite(tr) || tr <= 0) return 0.0;
  switch (h->xyzt_units & 0x38) {
  case 16:
    return tr / 1e3; /* msec */
  case 24:
    return tr / 1e6; /* usec */
  default:
    return tr; /* sec or unknown */
  }
}

void nifti_corder_to_forder(const uint32_t *c, size_t n, const int64_t dims[3], uint32_t *f) {
  size_t nx = (size_t)dims[0], ny = (size_t)dims[1], nz = (size_t)dims[2];
  for (size_t i = 0; i < n; i++) {
    size_t z = c[i] % nz, y = (c[i] / nz) % ny, x = c[i] / (nz * ny);
    f[i] = (uint32_t)nifti_forder(x, y, z, nx, ny);
  }
}

/* ---- 3. byte sources ------------------------------------------------------ */

static int is_gzip(const uint8_t *b, size_t len) { return len >= 18 && b[0] == 0x1f && b[1] == 0x8b; }

#ifdef NIFTI_HAVE_LIBDEFLATE
/* One-shot gzip inflate of a whole member list into out[0..out_len). */
static int inflate_whole(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len, size_t *got) {
  struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
  if (!d) return -1;
  size_t used = 0;
  enum libdeflate_result rc = libdeflate_gzip_decompress_ex(d, in, in_len, out, out_len, &used, got);
  libdeflate_free_decompressor(d);
  return rc == LIBDEFLATE_SUCCESS && used == in_len ? 0 : -1;
}
#endif

/* Streams up to n inflated bytes into dst; returns bytes produced, -1 on
 * corrupt data. Concatenated gzip members are followed. */
static long zread(nifti_reader *r, uint8_t *dst, size_t n) {
  z_stream *zs = r->zs;
  size_t done = 0;
  while (done < n) {
    if (zs->avail_in == 0) { /* refill: inputs over 4 GiB go in 1 GiB steps */
      size_t used = (size_t)(zs->next_in - r->zin);
      if (used >= r->zin_len) break;
      size_t left = r->zin_len - used;
      zs->avail_in = (uInt)(left > (1u << 30) ? (1u << 30) : left);
    }
    size_t want = n - done > (1u << 30) ? (1u << 30) : n - done;
    zs->next_out = dst + done;
    zs->avail_out = (uInt)want;
    int rc = inflate(zs, Z_NO_FLUSH);
    done = (size_t)(zs->next_out - dst);
    if (rc == Z_STREAM_END) {
      if (zs->avail_in >= 2 && zs->next_in[0] == 0x1f && zs->next_in[1] == 0x8b) {
        inflateReset(zs);
        continue;
      }
      r->zin_len = (size_t)(zs->next_in - r->zin); /* trailing garbage ignored */
      zs->avail_in = 0;
      break;
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) return -1;
    if (rc == Z_BUF_ERROR && zs->avail_in == 0 && (size_t)(zs->next_in - r->zin) >= r->zin_len) break;
  }
  return (long)done;
}

static int start_stream(nifti_reader *r, const uint8_t *in, size_t len, char *err, size_t errlen) {
  z_stream *zs = calloc(1, sizeof *zs);
  if (!zs || inflateInit2(zs, 15 + 32) != Z_OK) {
    free(zs);
    return fail(err, errlen, "%s: cannot start zlib", r->name);
  }
  r->zs = zs;
  r->zin = in;
  r->zin_len = len;
  zs->next_in = (Bytef *)in;
  zs->avail_in = 0; /* zread fills it */
  r->streaming = 1;
  return 0;
}

/* Makes r's data source the bytes of buf (plain or gzip). */
static int src_init(nifti_reader *r, const uint8_t *buf, size_t len, char *err, size_t errlen) {
  size_t limit = r->whole_limit;
  if (!is_gzip(buf, len)) {
    r->data = buf;
    r->data_len = len;
    return 0;
  }
  size_t isize = (size_t)buf[len - 4] | (size_t)buf[len - 3] << 8 | (size_t)buf[len - 2] << 16 |
                 (size_t)buf[len - 1] << 24;
#ifdef NIFTI_HAVE_LIBDEFLATE
  /* deflate cannot expand more than ~1032:1, so a larger ISIZE is a lie (or
   * several members): do not allocate for it, stream instead */
  if (isize > 0 && isize <= limit && isize / 1032 <= len) {
    uint8_t *out = malloc(isize);
    if (!out) return fail(err, errlen, "%s: out of memory inflating %zu bytes", r->name, isize);
    size_t got = 0;
    if (inflate_whole(buf, len, out, isize, &got) == 0 && got == isize) {
      r->owned = out;
      r->data = out;
      r->data_len = got;
      return 0;
    }
    free(out); /* multi-member, >4 GiB or corrupt: the stream decides */
  }
#else
  (void)isize; /* without libdeflate every .gz is streamed through zlib */
  (void)limit;
#endif
  return start_stream(r, buf, len, err, errlen);
}

int nifti_is_gzip(const void *buf, size_t len) { return is_gzip(buf, len); }

int nifti_gunzip(const uint8_t *in, size_t len, const char *name, size_t limit, uint8_t **out,
                 size_t *out_len, char *err, size_t errlen) {
  nifti_reader r;
  memset(&r, 0, sizeof r);
  r.whole_limit = limit;
  snprintf(r.name, sizeof r.name, "%s", name ? name : "(memory)");
  *out = NULL, *out_len = 0;
  if (!is_gzip(in, len)) return fail(err, errlen, "%s: not gzip data", r.name);
  if (src_init(&r, in, len, err, errlen)) return -1;
  if (!r.streaming) { /* inflated whole: hand the buffer over */
    *out = r.owned, *out_len = r.data_len;
    r.owned = NULL;
    nifti_close(&r);
    return 0;
  }
  size_t cap = (size_t)1 << 20, n = 0;
  uint8_t *buf = malloc(cap);
  int rc = buf ? 0 : fail(err, errlen, "%s: out of memory inflating", r.name);
  while (!rc) {
    if (n == cap) {
      if (cap >= limit) {
        rc = fail(err, errlen, "%s: inflates to more than %zu bytes", r.name, limit);
        break;
      }
      uint8_t *b = realloc(buf, cap * 2 < limit ? cap * 2 : limit);
      if (!b) {
        rc = fail(err, errlen, "%s: out of memory inflating %zu bytes", r.name, cap * 2);
        break;
      }
      buf = b, cap = cap * 2 < limit ? cap * 2 : limit;
    }
    long k = zread(&r, buf + n, cap - n);
    if (k < 0) rc = fail(err, errlen, "%s: corrupt gzip data after %zu inflated bytes", r.name, n);
    if (k <= 0 || (size_t)k < cap - n) {
      n += k > 0 ? (size_t)k : 0;
      break;
    }
    n += (size_t)k;
  }
  nifti_close(&r);
  if (rc) {
    free(buf);
    return rc;
  }
  *out = buf, *out_len = n;
  return 0;
}

/* Reads n bytes at the current position; returns a pointer (into the image,
 * or r->vol when streaming) or NULL when fewer than n bytes remain. */
static const uint8_t *src_next(nifti_reader *r, size_t n, size_t *got) {
  if (!r->streaming) {
    size_t avail = r->data_len > r->pos ? r->data_len - r->pos : 0;
    *got = avail < n ? avail : n;
    if (avail < n) return NULL;
    const uint8_t *p = r->data + r->pos;
    r->pos += n;
    return p;
  }
  if (r->vol_cap < n) {
    uint8_t *v = realloc(r->vol, n ? n : 1);
    if (!v) {
      *got = 0;
      return NULL;
    }
    r->vol = v;
    r->vol_cap = n;
  }
  long k = zread(r, r->vol, n);
  *got = k < 0 ? 0 : (size_t)k;
  r->pos += *got;
  return k == (long)n ? r->vol : NULL;
}

static int src_skip_to(nifti_reader *r, size_t offset, char *err, size_t errlen) {
  if (offset < r->pos) return fail(err, errlen, "%s: internal seek backwards", r->name);
  size_t got;
  while (r->pos < offset) {
    size_t step = offset - r->pos > 65536 ? 65536 : offset - r->pos;
    if (!src_next(r, step, &got))
      return fail(err, errlen, "%s: header field vox_offset = %zu is past the end of the file", r->name,
                  offset);
  }
  return 0;
}

/* Maps path. For span reads (r->span) the mapping gets no read-around (its
 * faults read only what they touch) and the descriptor stays open in
 * r->span_fd for pread. */
static int map_file(nifti_reader *r, const char *path, void **map, size_t *len, char *err, size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(err, errlen, "%s: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return fail(err, errlen, "%s: not a regular file", path);
  }
  if (st.st_size == 0) {
    close(fd);
    return fail(err, errlen, "%s: file is empty", path);
  }
  void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (m == MAP_FAILED) {
    close(fd);
    return fail(err, errlen, "%s: mmap: %s", path, strerror(errno));
  }
  if (r->span) {
    madvise(m, (size_t)st.st_size, MADV_RANDOM);
    posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
    r->span_fd = fd + 1;
  } else {
    close(fd);
  }
  *map = m;
  *len = (size_t)st.st_size;
  return 0;
}

/* Walks the header extensions of a single file (between the header and
 * vox_offset) and refuses a CIFTI one. Extensions that do not parse end the
 * walk without an error: they are optional metadata that nibabel skips too. */
static int check_extensions(nifti_reader *r, char *err, size_t errlen) {
  size_t end = (size_t)r->h.vox_offset, got;
  if (!r->h.single_file || end < r->pos + 4) return 0;
  const uint8_t *p = src_next(r, 4, &got); /* extender: byte 0 != 0 when extensions follow */
  if (!p || p[0] == 0) return 0;
  while (r->pos + 8 <= end) {
    if (!(p = src_next(r, 8, &got))) return 0;
    hdr_in in = {p, r->h.swapped};
    int32_t esize = rd_i32(in, 0), ecode = rd_i32(in, 4);
    if (ecode == NIFTI_ECODE_CIFTI)
      return cifti_refused(r->name, "header extension ecode 32, CIFTI", err, errlen);
    if (esize < 16 || (size_t)esize - 8 > end - r->pos) return 0;
    if (src_skip_to(r, r->pos + (size_t)esize - 8, err, errlen)) return -1;
  }
  return 0;
}

/* Header bytes from the current source, then seek to vox_offset. */
static int read_header(nifti_reader *r, char *err, size_t errlen) {
  uint8_t hb[540];
  size_t got = 0;
  const uint8_t *p = src_next(r, 348, &got);
  if (!p) return fail(err, errlen, "%s: file too short for a NIfTI header (%zu bytes)", r->name, got);
  memcpy(hb, p, 348);
  size_t have = 348;
  int version, swap;
  if (detect_version(hb, 348, r->name, &version, &swap, err, errlen)) return -1;
  if (version == 2) {
    p = src_next(r, 540 - 348, &got);
    if (!p) return fail(err, errlen, "%s: file too short for a NIfTI-2 header", r->name);
    memcpy(hb + 348, p, 540 - 348);
    have = 540;
  }
  if (nifti_parse_header(hb, have, r->name, &r->h, err, errlen)) return -1;
  return check_extensions(r, err, errlen);
}

static int check_size(nifti_reader *r, char *err, size_t errlen) {
  size_t need = r->h.nvox * r->h.nvols * (size_t)r->h.bytes_per_voxel;
  if (r->streaming) { /* checked volume by volume; here only deflate's bound */
    if (need / 1032 > r->zin_len)
      return fail(err, errlen,
                  "%s: truncated data: %zu compressed bytes cannot hold the %zu the header needs", r->name,
                  r->zin_len, need);
    return 0;
  }
  size_t have = r->data_len - r->pos;
  if (have < need)
    return fail(err, errlen, "%s: truncated data: %zu bytes after vox_offset %lld, the header needs %zu",
                r->name, have, (long long)r->h.vox_offset, need);
  return 0;
}

static void set_name(nifti_reader *r, const char *name) {
  snprintf(r->name, sizeof r->name, "%s", name ? name : "(memory)");
}

int nifti_open_mem(nifti_reader *r, const void *buf, size_t len, const char *name, char *err, size_t errlen) {
  memset(r, 0, sizeof *r);
  r->whole_limit = NIFTI_WHOLE_INFLATE_LIMIT;
  set_name(r, name);
  if (len == 0) return fail(err, errlen, "%s: file is empty", r->name);
  if (src_init(r, buf, len, err, errlen) || read_header(r, err, errlen)) goto bad;
  if (!r->h.single_file) {
    fail(err, errlen, "%s: header magic says .hdr/.img pair; a single .nii is needed here", r->name);
    goto bad;
  }
  if (src_skip_to(r, (size_t)r->h.vox_offset, err, errlen) || check_size(r, err, errlen)) goto bad;
  return 0;
bad:
  nifti_close(r);
  return -1;
}

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* For a .hdr(.gz) file: the .img(.gz) beside it. */
static char *image_path(const char *hdr) {
  size_t n = strlen(hdr);
  char *p = malloc(n + 4);
  if (!p) return NULL;
  memcpy(p, hdr, n + 1);
  char *dot = ends_with(p, ".hdr.gz") ? p + n - 7 : p + n - 4;
  memcpy(dot, ".img", 4);
  if (access(p, R_OK) != 0) {
    memcpy(dot, ".img.gz", 8);
    if (access(p, R_OK) != 0) memcpy(dot, ".img", 5);
  }
  return p;
}

static int open_pair_image(nifti_reader *r, const char *path, char *err, size_t errlen) {
  nifti_header h = r->h;
  size_t limit = r->whole_limit;
  int span = r->span;
  char *img = image_path(path);
  if (!img) return fail(err, errlen, "%s: out of memory", path);
  /* Drop the header's source and switch to the image's. */
  nifti_close(r);
  r->h = h;
  r->whole_limit = limit;
  r->span = span;
  set_name(r, img);
  int rc = map_file(r, img, &r->map, &r->map_len, err, errlen);
  free(img);
  if (rc) return -1;
  if (src_init(r, r->map, r->map_len, err, errlen)) return -1;
  if (src_skip_to(r, (size_t)h.vox_offset, err, errlen)) return -1;
  return check_size(r, err, errlen);
}

int nifti_open_file(nifti_reader *r, const char *path, char *err, size_t errlen) {
  return nifti_open_file_ex(r, path, NIFTI_WHOLE_INFLATE_LIMIT, err, errlen);
}

static int open_file(nifti_reader *r, const char *path, size_t whole_limit, int span, char *err,
                     size_t errlen) {
  memset(r, 0, sizeof *r);
  r->whole_limit = whole_limit;
  r->span = span;
  set_name(r, path);
  if (map_file(r, path, &r->map, &r->map_len, err, errlen)) goto bad;
  if (src_init(r, r->map, r->map_len, err, errlen) || read_header(r, err, errlen)) goto bad;
  if (!r->h.single_file) {
    if (open_pair_image(r, path, err, errlen)) goto bad;
    set_name(r, path);
    return 0;
  }
  if (src_skip_to(r, (size_t)r->h.vox_offset, err, errlen) || check_size(r, err, errlen)) goto bad;
  return 0;
bad:
  nifti_close(r);
  return -1;
}

int nifti_open_file_ex(nifti_reader *r, const char *path, size_t whole_limit, char *err, size_t errlen) {
  return open_file(r, path, whole_limit, 0, err, errlen);
}

int nifti_open_file_span(nifti_reader *r, const char *path, char *err, size_t errlen) {
  return open_file(r, path, 0, 1, err, errlen);
}

void nifti_close(nifti_reader *r) {
  if (r->zs) {
    inflateEnd(r->zs);
    free(r->zs);
  }
  free(r->owned);
  free(r->vol);
  free(r->scratch);
  if (r->map) munmap(r->map, r->map_len);
  if (r->span_fd) close(r->span_fd - 1);
  free(r->span_buf);
  free(r->span_idx);
  nifti_header h = r->h;
  char name[sizeof r->name];
  memcpy(name, r->name, sizeof name);
  memset(r, 0, sizeof *r);
  r->h = h;
  memcpy(r->name, name, sizeof name);
}

/* ---- 4. conversion kernels ------------------------------------------------ */

#define LOAD_FN(NAME, T, U, SZ, BSWAP, OUT)                                                                  \
  static inline OUT NAME##_0(const uint8_t *p) {                                                             \
    T v;                                                                                                     \
    memcpy(&v, p, SZ);                                                                                       \
    return (OUT)v;                                                                                           \
  }                                                                                                          \
  static inline OUT NAME##_1(const uint8_t *p) {                                                             \
    U u;                                                                                                     \
    memcpy(&u, p, SZ);                                                                                       \
    u = BSWAP(u);                                                                                            \
    T v;                                                                                                     \
    memcpy(&v, &u, SZ);                                                                                      \
    return (OUT)v;                                                                                           \
  }

#define NOSWAP(x) (x)
LOAD_FN(ld_u1, uint8_t, uint8_t, 1, NOSWAP, float)
LOAD_FN(ld_i1, int8_t, uint8_t, 1, NOSWAP, float)
LOAD_FN(ld_i2, int16_t, uint16_t, 2, __builtin_bswap16, float)
LOAD_FN(ld_u2, uint16_t, uint16_t, 2, __builtin_bswap16, float)
LOAD_FN(ld_i4, int32_t, uint32_t, 4, __builtin_bswap32, double)
LOAD_FN(ld_u4, uint32_t, uint32_t, 4, __builtin_bswap32, double)
LOAD_FN(ld_i8, int64_t, uint64_t, 8, __builtin_bswap64, double)
LOAD_FN(ld_u8, uint64_t, uint64_t, 8, __builtin_bswap64, double)
LOAD_FN(ld_f4, float, uint32_t, 4, __builtin_bswap32, double)
LOAD_FN(ld_f8, double, uint64_t, 8, __builtin_bswap64, double)

/* One kernel per (type, byte order): gather idx (or all), optional scale. */
#define CONV_FN(NAME, LD, SZ)                                                                                \
  static void NAME(const uint8_t *src, const uint32_t *idx, size_t n, float *dst, double s, double b) {      \
    int scale = !(s == 1.0 && b == 0.0);                                                                     \
    if (!idx && !scale)                                                                                      \
      for (size_t i = 0; i < n; i++)                                                                         \
        dst[i] = (float)LD(src + i * SZ);                                                                    \
    else if (!idx)                                                                                           \
      for (size_t i = 0; i < n; i++)                                                                         \
        dst[i] = (float)((double)LD(src + i * SZ) * s + b);                                                  \
    else if (!scale)                                                                                         \
      for (size_t i = 0; i < n; i++)                                                                         \
        dst[i] = (float)LD(src + (size_t)idx[i] * SZ);                                                       \
    else                                                                                                     \
      for (size_t i = 0; i < n; i++)                                                                         \
        dst[i] = (float)((double)LD(src + (size_t)idx[i] * SZ) * s + b);                                     \
  }

#define CONV_PAIR(T, SZ) CONV_FN(cv_##T##_0, ld_##T##_0, SZ) CONV_FN(cv_##T##_1, ld_##T##_1, SZ)
CONV_PAIR(u1, 1)
CONV_PAIR(i1, 1)
CONV_PAIR(i2, 2)
CONV_PAIR(u2, 2)
CONV_PAIR(i4, 4)
CONV_PAIR(u4, 4)
CONV_PAIR(i8, 8)
CONV_PAIR(u8, 8)
CONV_PAIR(f4, 4)
CONV_PAIR(f8, 8)

typedef void (*conv_fn)(const uint8_t *, const uint32_t *, size_t, float *, double, double);

static conv_fn pick_conv(int dt, int swap) {
#define PICK(T) return swap ? cv_##T##_1 : cv_##T##_0
  switch (dt) {
  case NIFTI_UINT8:
    PICK(u1);
  case NIFTI_INT8:
    PICK(i1);
  case NIFTI_INT16:
    PICK(i2);
  case NIFTI_UINT16:
    PICK(u2);
  case NIFTI_INT32:
    PICK(i4);
  case NIFTI_UINT32:
    PICK(u4);
  case NIFTI_INT64:
    PICK(i8);
  case NIFTI_UINT64:
    PICK(u8);
  case NIFTI_FLOAT32:
    PICK(f4);
  case NIFTI_FLOAT64:
    PICK(f8);
  default:
    return NULL;
  }
#undef PICK
}

int nifti_convert_f32(const void *src, size_t n, int datatype, int swapped, double slope, double inter,
                      float *dst) {
  conv_fn cv = pick_conv(datatype, swapped);
  if (!cv) return -1;
  cv(src, NULL, n, dst, slope, inter);
  return 0;
}

int nifti_read_volumes(nifti_reader *r, size_t nvols, const uint32_t *idx, size_t n, float *out,
                       size_t stride, char *err, size_t errlen) {
  const nifti_header *h = &r->h;
  if (r->next_vol + nvols > h->nvols)
    return fail(err, errlen, "%s: asked for volume %zu of %zu", r->name, r->next_vol + nvols, h->nvols);
  if (!idx && n != h->nvox) return fail(err, errlen, "%s: voxel count mismatch", r->name);
  if (idx)
    for (size_t i = 0; i < n; i++)
      if (idx[i] >= h->nvox)
        return fail(err, errlen, "%s: voxel index %u outside the image", r->name, idx[i]);
  conv_fn cv = pick_conv(h->datatype, h->swapped);
  if (!cv) return fail(err, errlen, "%s: datatype %d not supported", r->name, h->datatype);
  size_t vbytes = h->nvox * (size_t)h->bytes_per_voxel;
  for (size_t v = 0; v < nvols; v++) {
    size_t got;
    const uint8_t *p = src_next(r, vbytes, &got);
    if (!p)
      return fail(err, errlen, "%s: truncated data: volume %zu of %zu has %zu of %zu bytes", r->name,
                  r->next_vol + 1, h->nvols, got, vbytes);
    cv(p, idx, n, out + v * stride, h->slope, h->inter);
    r->next_vol++;
  }
  return 0;
}

int nifti_read_volumes_span(nifti_reader *r, size_t nvols, size_t lo, size_t hi, const uint32_t *idx,
                            size_t n, float *out, size_t stride, char *err, size_t errlen) {
  const nifti_header *h = &r->h;
  for (size_t i = 0; i < n; i++)
    if (idx[i] < lo || idx[i] >= hi || idx[i] >= h->nvox)
      return fail(err, errlen, "%s: voxel offset %u outside the span %zu..%zu", r->name, idx[i], lo, hi);
  /* gzip streams and images in memory: every byte passes anyway */
  if (!r->span_fd || r->streaming || r->owned || hi <= lo)
    return nifti_read_volumes(r, nvols, idx, n, out, stride, err, errlen);
  if (r->next_vol + nvols > h->nvols)
    return fail(err, errlen, "%s: asked for volume %zu of %zu", r->name, r->next_vol + nvols, h->nvols);
  conv_fn cv = pick_conv(h->datatype, h->swapped);
  if (!cv) return fail(err, errlen, "%s: datatype %d not supported", r->name, h->datatype);
  size_t bpv = (size_t)h->bytes_per_voxel, vbytes = h->nvox * bpv, span = (hi - lo) * bpv;
  free(r->span_buf);
  free(r->span_idx);
  r->span_buf = malloc(span);
  r->span_idx = malloc((n ? n : 1) * sizeof *r->span_idx);
  if (!r->span_buf || !r->span_idx) return fail(err, errlen, "%s: out of memory", r->name);
  for (size_t i = 0; i < n; i++)
    r->span_idx[i] = (uint32_t)(idx[i] - lo);
  for (size_t v = 0; v < nvols; v++) {
    if (r->pos + vbytes > r->data_len)
      return fail(err, errlen, "%s: truncated data: volume %zu of %zu has %zu of %zu bytes", r->name,
                  r->next_vol + 1, h->nvols, r->data_len > r->pos ? r->data_len - r->pos : 0, vbytes);
    /* the file offset of the span: the data section starts inside the map */
    off_t at = (off_t)((size_t)(r->data - (const uint8_t *)r->map) + r->pos + lo * bpv);
    size_t got = 0;
    while (got < span) {
      ssize_t k = pread(r->span_fd - 1, r->span_buf + got, span - got, at + (off_t)got);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0)
        return fail(err, errlen, "%s: volume %zu: read of %zu bytes at %lld failed: %s", r->name,
                    r->next_vol + 1, span, (long long)at, k < 0 ? strerror(errno) : "end of file");
      got += (size_t)k;
    }
    cv(r->span_buf, r->span_idx, n, out + v * stride, h->slope, h->inter);
    r->pos += vbytes;
    r->next_vol++;
  }
  return 0;
}

/* One raw volume (file order: x fastest) converted straight into C order
 * (z fastest). For each y and each run of up to B z-planes, every x is one
 * gather of B voxels nx*ny apart — the conversion kernel with a fixed
 * stride pattern — written as B contiguous floats. The B source rows stay
 * in cache while x sweeps, so memory is read and written about once. */
static void convert_corder(const nifti_reader *r, conv_fn cv, const uint8_t *src, float *dst) {
  enum { B = 16 };
  const nifti_header *h = &r->h;
  size_t nx = (size_t)h->dim[1], ny = (size_t)h->dim[2], nz = (size_t)h->dim[3];
  size_t bpv = (size_t)h->bytes_per_voxel;
  uint32_t pattern[B];
  for (size_t k = 0; k < B; k++)
    pattern[k] = (uint32_t)(k * nx * ny);
  for (size_t y = 0; y < ny; y++)
    for (size_t z0 = 0; z0 < nz; z0 += B) {
      size_t zn = nz - z0 < B ? nz - z0 : B;
      const uint8_t *base = src + (z0 * nx * ny + y * nx) * bpv;
      for (size_t x = 0; x < nx; x++)
        cv(base + x * bpv, pattern, zn, dst + (x * ny + y) * nz + z0, h->slope, h->inter);
    }
}

int nifti_read_volumes_c(nifti_reader *r, size_t nvols, const uint32_t *cidx, size_t n, float *out,
                         size_t stride, char *err, size_t errlen) {
  const nifti_header *h = &r->h;
  size_t nvox = h->nvox;
  if (r->next_vol + nvols > h->nvols)
    return fail(err, errlen, "%s: asked for volume %zu of %zu", r->name, r->next_vol + nvols, h->nvols);
  if (!cidx && n != nvox) return fail(err, errlen, "%s: voxel count mismatch", r->name);
  if (cidx)
    for (size_t i = 0; i < n; i++)
      if (cidx[i] >= nvox) return fail(err, errlen, "%s: voxel index %u outside the image", r->name, cidx[i]);
  conv_fn cv = pick_conv(h->datatype, h->swapped);
  if (!cv) return fail(err, errlen, "%s: datatype %d not supported", r->name, h->datatype);
  if (cidx && r->scratch_n < nvox) {
    free(r->scratch);
    r->scratch = malloc(nvox * sizeof *r->scratch);
    if (!r->scratch) {
      r->scratch_n = 0;
      return fail(err, errlen, "%s: out of memory", r->name);
    }
    r->scratch_n = nvox;
  }
  size_t vbytes = nvox * (size_t)h->bytes_per_voxel;
  for (size_t v = 0; v < nvols; v++) {
    size_t got;
    const uint8_t *p = src_next(r, vbytes, &got);
    if (!p)
      return fail(err, errlen, "%s: truncated data: volume %zu of %zu has %zu of %zu bytes", r->name,
                  r->next_vol + 1, h->nvols, got, vbytes);
    float *row = out + v * stride;
    if (!cidx) {
      convert_corder(r, cv, p, row);
    } else {
      convert_corder(r, cv, p, r->scratch);
      for (size_t k = 0; k < n; k++)
        row[k] = r->scratch[cidx[k]];
    }
    r->next_vol++;
  }
  return 0;
}

/* ---- 5. writer -------------------------------------------------------------- */

static void put16(uint8_t *b, size_t off, int16_t v) { memcpy(b + off, &v, 2); }
static void put32(uint8_t *b, size_t off, int32_t v) { memcpy(b + off, &v, 4); }
static void putf(uint8_t *b, size_t off, double v) {
  float f = (float)v;
  memcpy(b + off, &f, 4);
}

/* Splits the affine's 3x3 into rotation * diag(zooms) (qfac for a flip) and
 * stores the quaternion; returns 0 when that is not possible (shears). */
static int affine_to_quatern(double a[4][4], double zoom[3], double *qfac, double q[3]) {
  double R[3][3];
  for (int j = 0; j < 3; j++) {
    zoom[j] = sqrt(a[0][j] * a[0][j] + a[1][j] * a[1][j] + a[2][j] * a[2][j]);
    if (zoom[j] == 0) return 0;
    for (int i = 0; i < 3; i++)
      R[i][j] = a[i][j] / zoom[j];
  }
  double det = R[0][0] * (R[1][1] * R[2][2] - R[1][2] * R[2][1]) -
               R[0][1] * (R[1][0] * R[2][2] - R[1][2] * R[2][0]) +
               R[0][2] * (R[1][0] * R[2][1] - R[1][1] * R[2][0]);
  *qfac = det < 0 ? -1.0 : 1.0;
  if (det < 0)
    for (int i = 0; i < 3; i++)
      R[i][2] = -R[i][2];
  for (int i = 0; i < 3; i++) /* orthogonality check: R^T R = I */
    for (int j = 0; j < 3; j++) {
      double d = R[0][i] * R[0][j] + R[1][i] * R[1][j] + R[2][i] * R[2][j];
      if (fabs(d - (i == j)) > 1e-4) return 0;
    }
  double w, x, y, z, t = R[0][0] + R[1][1] + R[2][2] + 1.0;
  if (t > 0.5) {
    w = 0.5 * sqrt(t);
    x = 0.25 * (R[2][1] - R[1][2]) / w;
    y = 0.25 * (R[0][2] - R[2][0]) / w;
    z = 0.25 * (R[1][0] - R[0][1]) / w;
  } else {
    double xd = 1.0 + R[0][0] - (R[1][1] + R[2][2]), yd = 1.0 + R[1][1] - (R[0][0] + R[2][2]);
    double zd = 1.0 + R[2][2] - (R[0][0] + R[1][1]);
    if (xd > 1.0) {
      x = 0.5 * sqrt(xd);
      y = 0.25 * (R[0][1] + R[1][0]) / x;
      z = 0.25 * (R[0][2] + R[2][0]) / x;
      w = 0.25 * (R[2][1] - R[1][2]) / x;
    } else if (yd > 1.0) {
      y = 0.5 * sqrt(yd);
      x = 0.25 * (R[0][1] + R[1][0]) / y;
      z = 0.25 * (R[1][2] + R[2][1]) / y;
      w = 0.25 * (R[0][2] - R[2][0]) / y;
    } else {
      z = 0.5 * sqrt(zd);
      x = 0.25 * (R[0][2] + R[2][0]) / z;
      y = 0.25 * (R[1][2] + R[2][1]) / z;
      w = 0.25 * (R[1][0] - R[0][1]) / z;
    }
    if (w < 0) {
      x = -x;
      y = -y;
      z = -z;
    }
  }
  q[0] = x;
  q[1] = y;
  q[2] = z;
  return 1;
}

static void build_header(uint8_t hb[352], const int64_t dims[4], double a[4][4], double tr) {
  memset(hb, 0, 352);
  put32(hb, 0, 348);
  int nd = dims[3] > 1 ? 4 : 3;
  put16(hb, 40, (int16_t)nd);
  for (int i = 0; i < 4; i++)
    put16(hb, 42 + 2 * (size_t)i, (int16_t)(i < nd ? dims[i] : 1));
  for (int i = 5; i < 8; i++)
    put16(hb, 40 + 2 * (size_t)i, 1);
  put16(hb, 70, NIFTI_FLOAT32);
  put16(hb, 72, 32);
  double zoom[3], qfac = 1, q[3] = {0, 0, 0};
  int have_q = affine_to_quatern(a, zoom, &qfac, q);
  if (!have_q)
    for (int j = 0; j < 3; j++)
      zoom[j] = sqrt(a[0][j] * a[0][j] + a[1][j] * a[1][j] + a[2][j] * a[2][j]);
  putf(hb, 76, qfac);
  for (int j = 0; j < 3; j++)
    putf(hb, 80 + 4 * (size_t)j, zoom[j]);
  putf(hb, 92, tr > 0 ? tr : 1.0);
  for (int j = 5; j < 8; j++)
    putf(hb, 76 + 4 * (size_t)j, 1.0);
  putf(hb, 108, 352);
  putf(hb, 112, 1.0); /* scl_slope */
  hb[123] = 2 | 8;    /* mm, sec */
  snprintf((char *)hb + 148, 80, "myelin");
  put16(hb, 252, (int16_t)(have_q ? 2 : 0));
  put16(hb, 254, 2);
  for (int j = 0; j < 3; j++) {
    putf(hb, 256 + 4 * (size_t)j, q[j]);
    putf(hb, 268 + 4 * (size_t)j, a[j][3]);
  }
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 4; j++)
      putf(hb, 280 + 16 * (size_t)i + 4 * (size_t)j, a[i][j]);
  memcpy(hb + 344, "n+1", 4);
}

static int write_gz(FILE *fp, const uint8_t *hb, const float *data, size_t n, char *err, size_t errlen) {
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  if (deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return fail(err, errlen, "cannot start zlib");
  uint8_t out[1 << 16];
  const uint8_t *parts[2] = {hb, (const uint8_t *)data};
  size_t lens[2] = {352, n * sizeof(float)};
  int rc = 0;
  for (int k = 0; k < 2 && !rc; k++) {
    size_t off = 0;
    int last = k == 1;
    do {
      size_t chunk = lens[k] - off > (1u << 30) ? (1u << 30) : lens[k] - off;
      zs.next_in = (Bytef *)(parts[k] + off);
      zs.avail_in = (uInt)chunk;
      off += chunk;
      int flush = last && off == lens[k] ? Z_FINISH : Z_NO_FLUSH;
      int zr;
      do {
        zs.next_out = out;
        zs.avail_out = sizeof out;
        zr = deflate(&zs, flush);
        size_t have = sizeof out - zs.avail_out;
        if (have && fwrite(out, 1, have, fp) != have) rc = -1;
      } while (zs.avail_out == 0 && !rc);
      if (flush == Z_FINISH && zr != Z_STREAM_END && !rc) rc = -1;
    } while (off < lens[k] && !rc);
  }
  deflateEnd(&zs);
  return rc ? fail(err, errlen, "write failed: %s", strerror(errno)) : 0;
}

int nifti_write_f32(FILE *fp, const int64_t dims[4], const double *aff16, double tr, const float *data,
                    int gz, char *err, size_t errlen) {
  double aff[4][4];
  memcpy(aff, aff16, sizeof aff);
  for (int i = 0; i < 4; i++)
    if (dims[i] < 1 || dims[i] > 32767)
      return fail(err, errlen, "dimension %d = %lld does not fit a NIfTI-1 header (1..32767)", i + 1,
                  (long long)dims[i]);
  if (!host_is_little()) return fail(err, errlen, "the writer needs a little-endian machine");
  uint8_t hb[352];
  build_header(hb, dims, aff, tr);
  size_t n = (size_t)dims[0] * (size_t)dims[1] * (size_t)dims[2] * (size_t)dims[3];
  if (gz) return write_gz(fp, hb, data, n, err, errlen);
  if (fwrite(hb, 1, 352, fp) != 352 || fwrite(data, sizeof(float), n, fp) != n)
    return fail(err, errlen, "write failed: %s", strerror(errno));
  return 0;
}
