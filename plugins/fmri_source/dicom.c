/*
 * dicom.c — the images of one DICOM series → T volumes on one grid
 * (dicom_assemble), in plain C; dicom_gdcm.cpp reads the files (dicom.h).
 *
 * Every image is cut into 2-D planes, each with its position (LPS mm of its
 * first pixel) and a time key: a Siemens mosaic into its tiles (positions
 * from the mosaic's corrected ImagePositionPatient stepped along the slice
 * normal, as nibabel's MosaicWrapper does), a multi-frame image into its
 * frames (per-frame PlanePosition), a single-frame image is one plane. The
 * planes are sorted by their distance along the slice normal, then by time
 * (AcquisitionNumber, InstanceNumber, TemporalPositionIndex, frame, file).
 * Planes at the same distance form one slice; every slice must hold the same
 * number T of planes, the t-th plane of each slice makes volume t. Planes
 * must share one orientation and in-plane grid, lie on one line along the
 * normal and be evenly spaced; otherwise the error names a file.
 *
 * Layout and affine are dcm2niix's: x = column, y = row from the last row
 * up, z = slice along the normal; LPS → RAS by negating x and y.
 */
#include "dicom.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct plane {
  const dicom_image *img;
  const float *pix; /* first pixel; rows of `stride` floats */
  size_t stride;
  double ipp[3], d;
  long key[4];
  size_t order; /* image index, then tile/frame: the last tie-break */
  int slice;    /* mosaic tile number (slice-time lookup), else -1 */
} plane;

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

int dicom_sniff(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  unsigned char b[132];
  size_t n = fread(b, 1, sizeof b, f);
  fclose(f);
  return n == sizeof b && memcmp(b + 128, "DICM", 4) == 0;
}

static uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* CSA2 layout (nibabel's csareader): "SV10" + 4 bytes, n_tags, a check
 * word, then per tag: name[64], vm, vr[4], syngodt, n_items, a check word;
 * per item four words (the second is the value length), then the value
 * string padded to 4 bytes. The older CSA1 layout (pre-2004 syngo) is not
 * read: 0 is returned and the caller falls back on the public fields. */
int dicom_csa_numbers(const uint8_t *buf, size_t len, const char *name, double *out, int max) {
  if (!buf || len < 16) return 0;
  if (memcmp(buf, "SV10", 4) != 0) return 0;
  size_t pos = 8;
  uint32_t ntags = le32(buf + pos);
  pos += 8;
  if (ntags < 1 || ntags > 1000) return 0;
  for (uint32_t t = 0; t < ntags; t++) {
    if (len - pos < 84) return 0;
    const uint8_t *tag = buf + pos;
    uint32_t nitems = le32(tag + 76);
    pos += 84;
    if (nitems > 100000) return 0;
    int match = strncmp((const char *)tag, name, 64) == 0;
    int n = 0;
    for (uint32_t i = 0; i < nitems; i++) {
      if (len - pos < 16) return 0;
      uint32_t ilen = le32(buf + pos + 4);
      pos += 16;
      if (ilen > len - pos) return 0;
      if (match && n < max && ilen > 0) {
        char txt[80];
        size_t k = ilen < sizeof txt - 1 ? ilen : sizeof txt - 1;
        memcpy(txt, buf + pos, k);
        txt[k] = 0;
        char *end;
        double v = strtod(txt, &end);
        if (end != txt && isfinite(v)) out[n++] = v;
      }
      pos += ilen + (4 - ilen % 4) % 4;
      if (pos > len) return 0;
    }
    if (match) return n;
  }
  return 0;
}

static double dot3(const double *a, const double *b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }

static void cross3(const double *a, const double *b, double *c) {
  c[0] = a[1] * b[2] - a[2] * b[1];
  c[1] = a[2] * b[0] - a[0] * b[2];
  c[2] = a[0] * b[1] - a[1] * b[0];
}

static int cmp_plane(const void *pa, const void *pb) {
  const plane *a = pa, *b = pb;
  double dd = a->d - b->d;
  if (fabs(dd) > 1e-3) return dd < 0 ? -1 : 1;
  for (int i = 0; i < 4; i++)
    if (a->key[i] != b->key[i]) return a->key[i] < b->key[i] ? -1 : 1;
  return (a->order > b->order) - (a->order < b->order);
}

/* Planes of image i; *np counts them. Mosaic tile positions per nibabel. */
static int add_planes(const dicom_image *im, size_t i, const double n[3], int plane_rc[2], plane *out,
                      size_t *np, char *err, size_t errlen) {
  const dicom_frame *f0 = &im->frames[0];
  if (!im->pixels) {
    set_err(err, errlen, "%s: read without pixels", im->path);
    return -1;
  }
  if (im->mosaic_n > 0) {
    int grid = (int)ceil(sqrt((double)im->mosaic_n));
    int tr = im->rows / grid, tc = im->cols / grid;
    if (tr < 1 || tc < 1 || im->nframes != 1 || im->rows % grid || im->cols % grid) {
      set_err(err, errlen, "%s: a mosaic of %d images (%d x %d tiles) cannot be cut from %d x %d pixels",
              im->path, im->mosaic_n, grid, grid, im->rows, im->cols);
      return -1;
    }
    const double *xr = f0->iop, *xc = f0->iop + 3;
    double dr = im->spacing[0], dc = im->spacing[1];
    double fr = (im->rows - (double)im->rows / grid) / 2, fc = (im->cols - (double)im->cols / grid) / 2;
    double step = im->between > 0 ? im->between : im->thickness > 0 ? im->thickness : 1;
    for (int k = 0; k < im->mosaic_n; k++) {
      plane *p = &out[(*np)++];
      memset(p, 0, sizeof *p);
      p->img = im;
      p->stride = (size_t)im->cols;
      p->pix = im->pixels + (size_t)(k / grid) * (size_t)tr * p->stride + (size_t)(k % grid) * (size_t)tc;
      for (int a = 0; a < 3; a++)
        p->ipp[a] = f0->ipp[a] + xc[a] * dr * fr + xr[a] * dc * fc + k * step * n[a];
      p->slice = k;
      p->order = i;
    }
    plane_rc[0] = tr;
    plane_rc[1] = tc;
    return 0;
  }
  for (int k = 0; k < im->nframes; k++) {
    const dicom_frame *f = &im->frames[k];
    plane *p = &out[(*np)++];
    memset(p, 0, sizeof *p);
    p->img = im;
    p->stride = (size_t)im->cols;
    p->pix = im->pixels + (size_t)k * (size_t)im->rows * p->stride;
    memcpy(p->ipp, f->ipp, sizeof p->ipp);
    p->key[2] = f->temporal;
    p->key[3] = k;
    p->slice = -1;
    p->order = i;
    if (fabs(dot3(f->iop, f0->iop) - 1) > 1e-3 || fabs(dot3(f->iop + 3, f0->iop + 3) - 1) > 1e-3) {
      set_err(err, errlen, "%s: inconsistent geometry: frame %d has another ImageOrientationPatient",
              im->path, k + 1);
      return -1;
    }
  }
  plane_rc[0] = im->rows;
  plane_rc[1] = im->cols;
  return 0;
}

/* The first image fixes orientation, spacing and kind; others must match. */
static int check_image(const dicom_image *ref, const dicom_image *im, char *err, size_t errlen) {
  const dicom_frame *a = &ref->frames[0], *b = &im->frames[0];
  if (!b->has_iop) {
    set_err(err, errlen, "%s: no ImageOrientationPatient: the slice geometry is unknown", im->path);
    return -1;
  }
  if (!im->has_spacing || !(im->spacing[0] > 0) || !(im->spacing[1] > 0)) {
    set_err(err, errlen, "%s: no valid PixelSpacing", im->path);
    return -1;
  }
  if (ref == im) return 0;
  if ((ref->mosaic_n > 0) != (im->mosaic_n > 0) || ref->mosaic_n != im->mosaic_n) {
    set_err(err, errlen, "%s: inconsistent series: %d mosaic slices, %s has %d", im->path, im->mosaic_n,
            ref->path, ref->mosaic_n);
    return -1;
  }
  if (ref->rows != im->rows || ref->cols != im->cols) {
    set_err(err, errlen, "%s: inconsistent geometry: %d x %d pixels, %s has %d x %d", im->path, im->rows,
            im->cols, ref->path, ref->rows, ref->cols);
    return -1;
  }
  if (fabs(dot3(a->iop, b->iop) - 1) > 1e-3 || fabs(dot3(a->iop + 3, b->iop + 3) - 1) > 1e-3) {
    set_err(err, errlen, "%s: inconsistent geometry: its ImageOrientationPatient differs from %s's", im->path,
            ref->path);
    return -1;
  }
  if (fabs(ref->spacing[0] - im->spacing[0]) > 1e-4 * ref->spacing[0] ||
      fabs(ref->spacing[1] - im->spacing[1]) > 1e-4 * ref->spacing[1]) {
    set_err(err, errlen, "%s: inconsistent geometry: PixelSpacing %g\\%g, %s has %g\\%g", im->path,
            im->spacing[0], im->spacing[1], ref->path, ref->spacing[0], ref->spacing[1]);
    return -1;
  }
  return 0;
}

/* Slices (runs of equal d) must each hold T planes, lie on one line along
 * the normal and be evenly spaced. Fills *nz, *T. */
static int check_stack(plane *p, size_t np, const double xr[3], const double xc[3], size_t *nz_out,
                       size_t *T_out, char *err, size_t errlen) {
  size_t nz = 0, T = 0, start = 0;
  for (size_t i = 1; i <= np; i++) {
    if (i < np && fabs(p[i].d - p[start].d) <= 1e-3) continue;
    size_t cnt = i - start;
    if (nz == 0)
      T = cnt;
    else if (cnt != T) {
      const plane *bad = cnt < T ? &p[start] : &p[0];
      set_err(err, errlen,
              "%s: inconsistent geometry: %zu image(s) at slice position %.3f mm, %zu at %.3f mm (missing or "
              "extra slices)",
              bad->img->path, cnt, p[start].d, T, p[0].d);
      return -1;
    }
    nz++;
    start = i;
  }
  for (size_t i = 0; i < np; i++) {
    double off[3] = {p[i].ipp[0] - p[0].ipp[0], p[i].ipp[1] - p[0].ipp[1], p[i].ipp[2] - p[0].ipp[2]};
    if (fabs(dot3(off, xr)) > 0.01 || fabs(dot3(off, xc)) > 0.01) {
      set_err(err, errlen,
              "%s: inconsistent geometry: its slice is shifted in-plane by %.3f, %.3f mm from %s's",
              p[i].img->path, dot3(off, xr), dot3(off, xc), p[0].img->path);
      return -1;
    }
  }
  if (nz > 2) {
    double mean = (p[(nz - 1) * T].d - p[0].d) / (double)(nz - 1);
    for (size_t k = 1; k < nz; k++) {
      double gap = p[k * T].d - p[(k - 1) * T].d;
      if (fabs(gap - mean) > 0.01 * fabs(mean) + 1e-3) {
        set_err(err, errlen, "%s: inconsistent geometry: slice gap %.4f mm, the series' mean is %.4f mm",
                p[k * T].img->path, gap, mean);
        return -1;
      }
    }
  }
  *nz_out = nz;
  *T_out = T;
  return 0;
}

static void build_affine(const dicom_image *ref, const plane *p0, const plane *plast, size_t nz, size_t ny,
                         const double n[3], double A[4][4]) {
  const double *xr = ref->frames[0].iop, *xc = ref->frames[0].iop + 3;
  double dr = ref->spacing[0], dc = ref->spacing[1], step[3];
  if (nz > 1) {
    for (int a = 0; a < 3; a++)
      step[a] = (plast->ipp[a] - p0->ipp[a]) / (double)(nz - 1);
  } else {
    double s = ref->between > 0 ? ref->between : ref->thickness > 0 ? ref->thickness : 1;
    for (int a = 0; a < 3; a++)
      step[a] = n[a] * s;
  }
  memset(A, 0, 16 * sizeof(double));
  for (int a = 0; a < 3; a++) {
    double sign = a < 2 ? -1 : 1; /* LPS -> RAS */
    A[a][0] = sign * xr[a] * dc;
    A[a][1] = sign * -xc[a] * dr;
    A[a][2] = sign * step[a];
    A[a][3] = sign * (p0->ipp[a] + (double)(ny - 1) * dr * xc[a]);
  }
  A[3][3] = 1;
}

/* Slice times: a mosaic's MosaicRefAcqTimes, else the AcquisitionTime of
 * the first volume's slices relative to the earliest (when they differ). */
static double *slice_times(const plane *p, size_t nz, size_t T) {
  const dicom_image *im = p[0].img;
  double *st = malloc(nz * sizeof *st);
  if (!st) return NULL;
  if (im->mosaic_n > 0) {
    if (im->n_slice_times == (size_t)im->mosaic_n && nz == im->n_slice_times) {
      for (size_t k = 0; k < nz; k++)
        st[k] = im->slice_times[p[k * T].slice];
      return st;
    }
    free(st);
    return NULL;
  }
  double lo = INFINITY, hi = -INFINITY;
  for (size_t k = 0; k < nz; k++) {
    const plane *q = &p[k * T];
    double t = q->img->frames[q->key[3]].acq_time;
    if (t < 0) {
      free(st);
      return NULL;
    }
    st[k] = t;
    lo = fmin(lo, t);
    hi = fmax(hi, t);
  }
  if (!(hi > lo)) {
    free(st);
    return NULL;
  }
  for (size_t k = 0; k < nz; k++)
    st[k] -= lo;
  return st;
}

int dicom_assemble(const dicom_image *imgs, size_t n, dicom_series *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  if (n == 0) {
    set_err(err, errlen, "no DICOM image");
    return -1;
  }
  const dicom_image *ref = &imgs[0];
  size_t total = 0;
  for (size_t i = 0; i < n; i++) {
    if (check_image(ref, &imgs[i], err, errlen)) return -1;
    total += imgs[i].mosaic_n > 0 ? (size_t)imgs[i].mosaic_n : (size_t)imgs[i].nframes;
  }
  const double *xr = ref->frames[0].iop, *xc = ref->frames[0].iop + 3;
  double nrm[3];
  if (ref->mosaic_n > 0 && ref->has_csa_normal)
    memcpy(nrm, ref->csa_normal, sizeof nrm);
  else
    cross3(xr, xc, nrm);
  if (total > 1)
    for (size_t i = 0; i < n; i++)
      for (int k = 0; k < imgs[i].nframes; k++)
        if (!imgs[i].frames[k].has_ipp) {
          set_err(err, errlen, "%s: no ImagePositionPatient (frame %d): the images cannot be stacked",
                  imgs[i].path, k + 1);
          return -1;
        }
  plane *p = malloc(total * sizeof *p);
  if (!p) {
    set_err(err, errlen, "%s: out of memory", ref->path);
    return -1;
  }
  size_t np = 0;
  int rc = 0, rc0[2] = {0, 0};
  for (size_t i = 0; i < n && !rc; i++) {
    size_t first = np;
    rc = add_planes(&imgs[i], i, nrm, rc0, p, &np, err, errlen);
    for (size_t k = first; k < np && !rc; k++) {
      p[k].key[0] = imgs[i].acquisition_number;
      p[k].key[1] = imgs[i].instance_number;
      p[k].d = dot3(nrm, p[k].ipp);
    }
  }
  size_t nz = 0, T = 0;
  if (!rc) {
    qsort(p, np, sizeof *p, cmp_plane);
    rc = check_stack(p, np, xr, xc, &nz, &T, err, errlen);
  }
  size_t nx = (size_t)rc0[1], ny = (size_t)rc0[0], V = nx * ny * nz;
  if (!rc && !(out->data = malloc((T * V > 0 ? T * V : 1) * sizeof *out->data))) {
    set_err(err, errlen, "%s: out of memory for %zu x %zu voxels", ref->path, T, V);
    rc = -1;
  }
  if (rc) {
    free(p);
    return -1;
  }
  for (size_t k = 0; k < nz; k++)
    for (size_t t = 0; t < T; t++) {
      const plane *q = &p[k * T + t];
      float *vol = out->data + t * V;
      for (size_t y = 0; y < ny; y++) {
        const float *row = q->pix + (ny - 1 - y) * q->stride;
        for (size_t x = 0; x < nx; x++)
          vol[(x * ny + y) * nz + k] = row[x];
      }
    }
  out->dims[0] = (int64_t)nx;
  out->dims[1] = (int64_t)ny;
  out->dims[2] = (int64_t)nz;
  out->T = T;
  out->tr = ref->tr;
  build_affine(ref, &p[0], &p[(nz - 1) * T], nz, ny, nrm, out->affine);
  out->slice_times = slice_times(p, nz, T);
  free(p);
  return 0;
}

void dicom_series_free(dicom_series *s) {
  free(s->data);
  free(s->slice_times);
  memset(s, 0, sizeof *s);
}
