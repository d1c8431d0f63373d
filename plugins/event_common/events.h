/*
 * events.h — event-camera data shared by event_source, event_transform and
 * to_frames (and their tests, fuzz targets and bench): the event arrays, the
 * file-format decoders, the transforms with tonic's semantics, and the
 * `events` message glue.
 *
 * Events are kept as four parallel arrays (x <u2, y <u2, p |u1, t <i8
 * microseconds), the layout of the `events` message (schemas/events.md), so
 * a decoded file becomes a message by four copies and a message is read in
 * place.
 *
 * Decoders take a whole file image in memory and append to an ev_array. On a
 * truncated or corrupt file they keep every event decoded before the fault
 * (the good prefix) and return MYELIN_EFORMAT with a message naming the file
 * and the byte offset of the fault. An event outside the sensor (when its
 * size is known) is such a fault too, so downstream code may index frames
 * with x, y, p without checking.
 */
#ifndef MYELIN_EVENTS_H
#define MYELIN_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "myelin/msg.h"

/* ---- event arrays -------------------------------------------------------- */
typedef struct ev_array {
  uint16_t *x, *y;
  uint8_t *p;
  int64_t *t;
  size_t n, cap;
} ev_array;

/* Makes room for n more events. 0 or MYELIN_ENOMEM. */
int ev_reserve(ev_array *a, size_t more);
void ev_free(ev_array *a);

/* [W, H, P]; 0 = unknown. */
typedef struct ev_sensor {
  uint32_t w, h, p;
} ev_sensor;

/* ---- file formats -------------------------------------------------------- */
typedef enum ev_format {
  EV_FMT_AUTO = 0,
  EV_FMT_NMNIST, /* N-MNIST / N-Caltech101 .bin: 5-byte events */
  EV_FMT_EVT2,   /* Prophesee EVT 2.0 .raw: 32-bit words */
  EV_FMT_EVT3,   /* Prophesee EVT 3.0 .raw: 16-bit words */
  EV_FMT_AEDAT3, /* iniVation AEDAT 3.1 (cAER, libcaer): packets of polarity events */
  EV_FMT_HDF5,   /* HDF5 event files (evhdf5.c, library event_hdf5: needs libhdf5) */
  EV_FMT_AEDAT2, /* jAER AEDAT 2.0: big-endian 32-bit address + 32-bit timestamp */
  EV_FMT_AEDAT4  /* iniVation AEDAT 4.0 (evaedat4.c, library event_aedat4: FlatBuffers, LZ4, Zstd) */
} ev_format;

/* "nmnist" -> EV_FMT_NMNIST ...; EV_FMT_AUTO for "auto"; -1 if unknown. */
int ev_format_parse(const char *name);
const char *ev_format_name(ev_format f);
/* Picks the format of a file image: an AEDAT 2.0 / 3.x / 4.0 header, the
 * HDF5 signature, a Prophesee header naming EVT 2.0/3.0, else the name
 * (.bin = N-MNIST, .raw = EVT 3.0). EV_FMT_AUTO if unsure. */
ev_format ev_format_guess(const uint8_t *b, size_t len, const char *path);

/* N-MNIST's sensor, the default when a .bin gives none. */
#define EV_NMNIST_W 34
#define EV_NMNIST_H 34

/*
 * Decodes a whole file image of format f, appending to out. `sensor` holds
 * the size to check events against (from the user, or 0s); a header giving
 * the size fills the zero fields (EVT raw files), and a format with a fixed
 * default fills the rest (N-MNIST: 34x34x2; EVT: 2 polarities). `what`
 * names the file in messages. Returns 0, or a negative code with err naming
 * the byte offset; the events before the fault stay in out.
 */
int ev_decode(ev_format f, const uint8_t *b, size_t len, const char *what, ev_sensor *sensor, ev_array *out,
              char *err, size_t errlen);

/* The format-specific decoders behind ev_decode (same contract). */
int ev_decode_nmnist(const uint8_t *b, size_t len, const char *what, ev_sensor *sensor, ev_array *out,
                     char *err, size_t errlen);
int ev_decode_evt2(const uint8_t *b, size_t len, const char *what, ev_sensor *sensor, ev_array *out,
                   char *err, size_t errlen);
int ev_decode_evt3(const uint8_t *b, size_t len, const char *what, ev_sensor *sensor, ev_array *out,
                   char *err, size_t errlen);
/* In evhdf5.c (library event_hdf5, which links libhdf5; ev_decode does not
 * call it, so the decoders, fuzz targets and bench need no libhdf5). */
int ev_decode_hdf5(const uint8_t *b, size_t len, const char *what, ev_sensor *sensor, ev_array *out,
                   char *err, size_t errlen);
int ev_decode_aedat3(const uint8_t *b, size_t len, const char *what, ev_sensor *sensor, ev_array *out,
                     char *err, size_t errlen);
/* AEDAT 2.0 (jAER): the address layout comes from the header's AEChip line
 * (a DAVIS chip, else the DVS128's); see evdecode.c. */
int ev_decode_aedat2(const uint8_t *b, size_t len, const char *what, ev_sensor *sensor, ev_array *out,
                     char *err, size_t errlen);
/* AEDAT 4.0: in evaedat4.c (library event_aedat4, which links liblz4,
 * libzstd and libxml2; ev_decode does not call it). A file ends at the
 * header's packet index, or at its end. */
int ev_decode_aedat4(const uint8_t *b, size_t len, const char *what, ev_sensor *sensor, ev_array *out,
                     char *err, size_t errlen);

/* ---- AEDAT 4.0 (evaedat4.c, library event_aedat4) ---------------------- */

/* An AEDAT 4.0 decoder over a byte stream (a file image fed whole, or a
 * network stream fed as it arrives): the "#!AER-DAT4.0\r\n" version line
 * (a file's; dv-processing's network stream starts with the header
 * directly), the size-prefixed IOHeader FlatBuffer, then packets of an
 * 8-byte header (int32 stream id, int32 body size) and a body compressed as
 * the header says (none, LZ4 frame, Zstd frame) holding a size-prefixed
 * FlatBuffer. ev_aedat4_init first, ev_aedat4_free when done. */
typedef struct ev_aedat4 {
  int state;           /* 0 version line, 1 header, 2 packets, 3 the file's packet index: done */
  int32_t compression; /* 0 none, 1/2 LZ4, 3/4 Zstd */
  int64_t table;       /* byte offset of the packet index (files), -1 none */
  int32_t stream;      /* the event stream read; -1 until known */
  ev_sensor size;      /* the header's sizeX/sizeY of that stream (0s: not given) */
  uint64_t off;        /* stream offset of the next byte to feed */
  size_t need, have;   /* after a short feed: the bytes of the unit begun, and those present */
  const char *unit;    /* its name ("packet", "header") */
  uint8_t *buf;        /* scratch (8-byte aligned): a packet body, decompressed */
  size_t cap;
  void *lz4, *zstd; /* decompression contexts */
} ev_aedat4;

/* Decodes the complete units in b[0, len) (the version line, the header,
 * packets), appending the events of the event stream to out. *sensor: the
 * size to check against (0s: the header's, filled in when it names one).
 * *used = the bytes consumed; the rest begins an incomplete unit (need/have
 * say how big). Returns 0, or a negative code with err naming `what` and the
 * stream byte offset; events before the fault stay in out. */
int ev_aedat4_feed(ev_aedat4 *d, const uint8_t *b, size_t len, size_t *used, const char *what, ev_sensor *sensor,
                   ev_array *out, char *err, size_t errlen);
void ev_aedat4_init(ev_aedat4 *d);
void ev_aedat4_free(ev_aedat4 *d);

/* The sensor size a file without one implies: the largest coordinates seen
 * from event `from` on, + 1. */
void ev_size_from_events(const ev_array *a, size_t from, ev_sensor *s);

/* A Prophesee raw header ("% key value" lines up to "% end"): its length
 * (0 when the file has none), the EVT version (2 or 3, 0 unknown) and the
 * sensor size when given ("% geometry WxH", or "width=..;height=.." in
 * "% format"). */
size_t ev_raw_header(const uint8_t *b, size_t len, int *evt, ev_sensor *sensor);

/* ---- transforms (tonic's semantics; see the README of event_transform) ---- */

/* tonic's denoise (filter_time): keeps an event when one of its 4 neighbours
 * fired within filter_time before it (the grid is the events' own extent).
 * In place. 0 or MYELIN_ENOMEM. */
int ev_denoise(ev_array *a, int64_t filter_time);
/* tonic's crop: keeps the box [x0, x0+w) x [y0, y0+h), shifted to 0; the
 * sensor becomes w x h. Negative origins (a box larger than the sensor)
 * shift events right/down as tonic's CenterCrop padding does. */
void ev_crop(ev_array *a, ev_sensor *s, int64_t x0, int64_t y0, uint32_t w, uint32_t h);
/* tonic's Downsample: x*fx, y*fy, t*time_factor, truncated toward zero. */
void ev_downsample(ev_array *a, ev_sensor *s, double fx, double fy, double time_factor);

/* tonic's ToFrame / SliceByTime(Bins) slicing (no overlap): the [lo, hi)
 * index range of every bin over events sorted by t. n_time_bins mode when
 * n_bins > 0, else time_window mode (include_incomplete as tonic's). Returns
 * the number of bins and fills lo/hi (malloc'ed, caller frees); 0 when out
 * of memory or over EV_MAX_BINS. */
#define EV_MAX_BINS ((size_t)1 << 24)
size_t ev_frame_bins(const int64_t *t, size_t n, uint32_t n_bins, double time_window, int include_incomplete,
                     size_t **lo, size_t **hi);

/* ToFrame's frames [T, P, H, W] over the bins, sparsely: for every bin b
 * in order, the units u = (p*H + y)*W + x hit in it, ascending, each once
 * (binary) or as often as it was hit (counts), into step[]/unit[]. Returns
 * the number of (step, unit) pairs or MYELIN_ENOMEM. Scratch and output
 * live in f (start zeroed; reused across calls). */
typedef struct ev_frames {
  uint32_t *cnt, *touched, *step, *unit;
  uint64_t *bits;
  size_t ncnt, cap_touched, cap_step, cap_unit;
} ev_frames;
int64_t ev_frames_sparse(ev_frames *f, const ev_sensor *s, const uint16_t *x, const uint16_t *y,
                         const uint8_t *p, const size_t *lo, const size_t *hi, size_t bins, int binary);
void ev_frames_free(ev_frames *f);

/* ---- messages ------------------------------------------------------------ */
/* A borrowed view of an `events` message. */
typedef struct ev_view {
  ev_sensor sensor;
  size_t n;
  const uint16_t *x, *y;
  const uint8_t *p;
  const int64_t *t;
} ev_view;

/* Reads an `events` message: the four tensors (same length, right dtypes)
 * and `sensor` [W, H, P]; checks every event lies inside the sensor. */
int ev_view_of(const myelin_msg *m, ev_view *v, char *err, size_t errlen);

/* Starts an `events` message: `sensor` and the four tensors, copied from
 * the n events at the given pointers. The caller adds the context and
 * finishes it. NULL when out of memory. */
myelin_builder *ev_build(const ev_sensor *s, const uint16_t *x, const uint16_t *y, const uint8_t *p,
                         const int64_t *t, size_t n);

#endif
