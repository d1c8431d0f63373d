/*
 * evhdf5.c — HDF5 event files, read through libhdf5 from a file image in
 * memory (the ev_decode contract of events.h). Two layouts are found:
 *
 *  - four 1-D datasets x, y, p, t of one length, in a group `events` (DSEC,
 *    tonic's DSEC loader, many lab exports) or at the root;
 *  - one 1-D compound dataset `CD/events` (or `events`) with fields x, y, p,
 *    t (Prophesee's HDF5 layout when not ECF-compressed).
 *
 * libhdf5 converts each field to x, y <u2, p |u1, t <i8 on reading. Integer
 * attributes `width` and `height` on the group or the root give the sensor;
 * otherwise the largest coordinates + 1. A file HDF5 cannot open, or that
 * holds neither layout, is an error naming it; an event outside the sensor
 * is named by its index (HDF5 files have no meaningful byte offset for it).
 * Kept apart from evdecode.c so the fuzz targets and bench need no libhdf5.
 */
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"

static int exists(hid_t g, const char *name) { return H5Lexists(g, name, H5P_DEFAULT) > 0; }

/* The length of a 1-D dataset, or -1. */
static long long length_of(hid_t d) {
  hid_t sp = H5Dget_space(d);
  hsize_t dims[2] = {0, 0};
  int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
  if (nd == 1) H5Sget_simple_extent_dims(sp, dims, NULL);
  if (sp >= 0) H5Sclose(sp);
  return nd == 1 ? (long long)dims[0] : -1;
}

static uint32_t int_attr(hid_t obj, const char *name) {
  if (H5Aexists(obj, name) <= 0) return 0;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  long long v = 0;
  if (a >= 0 && H5Aread(a, H5T_NATIVE_LLONG, &v) < 0) v = 0;
  if (a >= 0) H5Aclose(a);
  return v > 0 && v <= 65536 ? (uint32_t)v : 0;
}

static int read_columns(hid_t g, const char *what, ev_array *out, char *err, size_t errlen) {
  const char *names[4] = {"x", "y", "p", "t"};
  hid_t types[4] = {H5T_NATIVE_UINT16, H5T_NATIVE_UINT16, H5T_NATIVE_UINT8, H5T_NATIVE_INT64};
  hid_t d[4];
  long long n = -1;
  int rc = 0;
  for (int i = 0; i < 4; i++)
    d[i] = H5Dopen2(g, names[i], H5P_DEFAULT);
  for (int i = 0; i < 4 && !rc; i++) {
    long long k = d[i] >= 0 ? length_of(d[i]) : -1;
    if (k < 0)
      rc = myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s: dataset %s is not 1-D", what, names[i]);
    else if (n >= 0 && k != n)
      rc = myelin_errorf(err, errlen, MYELIN_EFORMAT,
                         "%s: datasets x, y, p, t differ in length (%lld vs %lld)", what, n, k);
    n = k;
  }
  if (!rc && (n > ((long long)1 << 32) || ev_reserve(out, (size_t)n)))
    rc = myelin_errorf(err, errlen, MYELIN_ENOMEM, "%s: %lld events: out of memory", what, n);
  void *dst[4] = {NULL, NULL, NULL, NULL};
  if (!rc) {
    dst[0] = out->x + out->n, dst[1] = out->y + out->n, dst[2] = out->p + out->n, dst[3] = out->t + out->n;
    for (int i = 0; i < 4 && !rc; i++)
      if (n > 0 && H5Dread(d[i], types[i], H5S_ALL, H5S_ALL, H5P_DEFAULT, dst[i]) < 0)
        rc = myelin_errorf(err, errlen, MYELIN_EFORMAT,
                           "%s: cannot read dataset %s (compressed with a filter "
                           "this libhdf5 lacks?)",
                           what, names[i]);
  }
  if (!rc) out->n += (size_t)n;
  for (int i = 0; i < 4; i++)
    if (d[i] >= 0) H5Dclose(d[i]);
  return rc;
}

typedef struct rec {
  uint16_t x, y;
  uint8_t p;
  int64_t t;
} rec;

static int read_compound(hid_t d, const char *what, ev_array *out, char *err, size_t errlen) {
  long long n = length_of(d);
  if (n < 0) return myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s: the events dataset is not 1-D", what);
  hid_t mt = H5Tcreate(H5T_COMPOUND, sizeof(rec));
  H5Tinsert(mt, "x", HOFFSET(rec, x), H5T_NATIVE_UINT16);
  H5Tinsert(mt, "y", HOFFSET(rec, y), H5T_NATIVE_UINT16);
  H5Tinsert(mt, "p", HOFFSET(rec, p), H5T_NATIVE_UINT8);
  H5Tinsert(mt, "t", HOFFSET(rec, t), H5T_NATIVE_INT64);
  rec *r = n > 0 && n <= ((long long)1 << 32) ? malloc((size_t)n * sizeof *r) : NULL;
  int rc = 0;
  if (n > 0 && (!r || ev_reserve(out, (size_t)n)))
    rc = myelin_errorf(err, errlen, MYELIN_ENOMEM, "%s: %lld events: out of memory", what, n);
  else if (n > 0 && H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, r) < 0)
    rc = myelin_errorf(err, errlen, MYELIN_EFORMAT,
                       "%s: cannot read the events as fields x, y, p, t (a "
                       "compression filter this libhdf5 lacks, or other fields?)",
                       what);
  for (long long i = 0; !rc && i < n; i++) {
    out->x[out->n] = r[i].x, out->y[out->n] = r[i].y, out->p[out->n] = r[i].p, out->t[out->n] = r[i].t;
    out->n++;
  }
  free(r);
  H5Tclose(mt);
  return rc;
}

int ev_decode_hdf5(const uint8_t *b, size_t len, const char *what, ev_sensor *s, ev_array *out, char *err,
                   size_t errlen) {
  H5E_auto2_t efn;
  void *edata;
  H5Eget_auto2(H5E_DEFAULT, &efn, &edata);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), f = -1;
  if (fapl >= 0 && H5Pset_fapl_core(fapl, 1 << 16, 0) >= 0 &&
      H5Pset_file_image(fapl, (void *)(uintptr_t)b, len) >= 0)
    f = H5Fopen("events-image", H5F_ACC_RDONLY, fapl);
  size_t from = out->n;
  int rc;
  if (f < 0) {
    rc = myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s: byte offset 0: not an HDF5 file libhdf5 can open",
                       what);
  } else {
    hid_t g = exists(f, "events") && H5Oexists_by_name(f, "events/x", H5P_DEFAULT) > 0
                  ? H5Gopen2(f, "events", H5P_DEFAULT)
                  : -1;
    hid_t where = g >= 0 ? g : f;
    if (!s->w && !s->h) {
      s->w = int_attr(where, "width") ? int_attr(where, "width") : int_attr(f, "width");
      s->h = int_attr(where, "height") ? int_attr(where, "height") : int_attr(f, "height");
    }
    if (g >= 0 || (exists(f, "x") && exists(f, "y") && exists(f, "p") && exists(f, "t"))) {
      rc = read_columns(where, what, out, err, errlen);
    } else {
      const char *cd = exists(f, "CD") && H5Oexists_by_name(f, "CD/events", H5P_DEFAULT) > 0 ? "CD/events"
                       : exists(f, "events")                                                 ? "events"
                                                                                             : NULL;
      hid_t d = cd ? H5Dopen2(f, cd, H5P_DEFAULT) : -1;
      rc = d >= 0 ? read_compound(d, what, out, err, errlen)
                  : myelin_errorf(
                        err, errlen, MYELIN_EFORMAT,
                        "%s: no events found: expected datasets events/{x,y,p,t}, {x,y,p,t} at the root, "
                        "or a compound CD/events",
                        what);
      if (d >= 0) H5Dclose(d);
    }
    if (g >= 0) H5Gclose(g);
    H5Fclose(f);
  }
  if (fapl >= 0) H5Pclose(fapl);
  H5Eset_auto2(H5E_DEFAULT, efn, edata);
  if (!s->p) s->p = 2;
  if (rc) {
    out->n = from; /* libhdf5 reads a dataset whole or not at all: no prefix to keep */
    return rc;
  }
  int known = s->w && s->h;
  size_t bad = out->n;
  for (size_t i = from; i < out->n && bad == out->n; i++)
    if ((known && (out->x[i] >= s->w || out->y[i] >= s->h)) || out->p[i] >= s->p) bad = i;
  if (bad < out->n) {
    int r = myelin_errorf(err, errlen, MYELIN_EFORMAT,
                          "%s: event %zu (x=%u y=%u p=%u) lies outside the sensor %ux%ux%u (set `sensor`)",
                          what, bad - from, out->x[bad], out->y[bad], out->p[bad], s->w, s->h, s->p);
    out->n = bad;
    return r;
  }
  if (!known) {
    uint32_t mx = 0, my = 0;
    for (size_t i = from; i < out->n; i++) {
      if (out->x[i] >= mx) mx = out->x[i] + 1u;
      if (out->y[i] >= my) my = out->y[i] + 1u;
    }
    s->w = mx ? mx : 1;
    s->h = my ? my : 1;
  }
  return 0;
}
