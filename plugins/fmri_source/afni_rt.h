/*
 * afni_rt.h — a receiver for the AFNI realtime protocol (the framing AFNI's
 * realtime plugin accepts from scanners and from rtfeedme / Dimon -rt):
 * plain C over bytes, no sockets, no framework types. fmri_source's `listen`
 * mode feeds it what a connection delivers; tests feed it directly.
 *
 * A data stream is: control information — text lines "KEYWORD args" such as
 * ACQUISITION_TYPE, TR, XYFOV, XYMATRIX, ZNUM, DATUM, XYZAXES, XYZFIRST,
 * ended by one NUL byte — then raw images, each exactly one slice (2D
 * acquisitions) or one volume (3D) of DATUM values, x fastest. The 30-byte
 * text "Et Earello Endorenna utulien!!" at the start of an image ends the
 * dataset: new control information follows on the same stream. A
 * connection whose first bytes are "tcp:" or "shm:" is a control channel:
 * one line naming where the data channel will be (AFNI's port 7954
 * handshake). plugins/fmri_source/README.md documents every command.
 *
 * Volumes come out as float32 in C order over (x, y, z) with a voxel →
 * world (RAS mm) affine, as fmri_source's other readers give them.
 */
#ifndef MYELIN_AFNI_RT_H
#define MYELIN_AFNI_RT_H

#include <stddef.h>
#include <stdint.h>

#define AFNI_RT_MAX_INFO 32768 /* control information, NUL included (AFNI's INFO_SIZE) */
#define AFNI_RT_MARKER "Et Earello Endorenna utulien!!"

enum { AFNI_RT_START, AFNI_RT_CONTROL, AFNI_RT_INFO, AFNI_RT_IMAGES };

typedef struct afni_rt {
  int state;
  /* control information of the current dataset */
  int acq3d, timed; /* 3D (whole volumes) or 2D (slices); time series or one volume */
  int64_t dims[3];  /* nx, ny, nz */
  int datum;        /* bytes per value: 1 byte (u1), 2 short (i2), 4 float (f4) */
  int swap;         /* BYTEORDER differs from this machine's */
  int axes[3];      /* orientation code of x, y, z: 0 R-L, 1 L-R, 2 P-A, 3 A-P, 4 I-S, 5 S-I */
  int zorder;       /* slice arrival order: 0 alt, 1 seq */
  int tpattern;     /* slice timing: -1 = as zorder, 0 alt+z, 1 seq+z */
  double tr;        /* seconds */
  double affine[4][4];
  double *slice_times; /* [nz] seconds (2D time series), or NULL */
  char name[128];      /* NAME / PREFIX, or "" */
  /* streaming state */
  char *info; /* control text being received */
  size_t ninfo;
  uint8_t *raw;      /* one volume as it arrives (AFNI order, sender's bytes) */
  size_t imsize;     /* bytes per image (slice or volume) */
  size_t have;       /* bytes of the current image received */
  int64_t nsl;       /* slices of the current volume received */
  uint8_t *image;    /* the current image (a slice's place in raw, or raw) */
  float *vol;        /* the finished volume, C order */
  uint64_t volumes;  /* complete volumes of this dataset */
  uint64_t datasets; /* datasets started on this stream */
  char channel[128]; /* control channel: the data channel named ("tcp:host:port") */
} afni_rt;

/* Called with each complete volume (C order, dims of p); non-zero stops. */
typedef int (*afni_rt_volume_fn)(void *arg, const afni_rt *p, const float *vol);

void afni_rt_init(afni_rt *p);
void afni_rt_free(afni_rt *p);

/* Feeds n bytes. Returns 0 (consumed, volumes delivered), 1 when a control
 * channel message is complete (p->channel names the data channel; the rest
 * of the connection is ignored), 2 when cb asked to stop, or -1 with err
 * naming the command or field at fault (the stream cannot go on). */
int afni_rt_feed(afni_rt *p, const uint8_t *data, size_t n, afni_rt_volume_fn cb, void *arg, char *err,
                 size_t errlen);

/* Parses one block of control information (the text before the NUL) into p,
 * as afni_rt_feed does; 0, or -1 with err naming the command. */
int afni_rt_parse_info(afni_rt *p, const char *text, char *err, size_t errlen);

/* Where a stream stopped, for a message when the sender disconnects: "" when
 * at a clean boundary (between volumes, or before any byte), else a phrase
 * such as "in the middle of volume 3 (slice 5 of 40, 1000 of 8192 bytes)". */
void afni_rt_where(const afni_rt *p, char *buf, size_t len);

#endif
