/*
 * afni_rt.c — the AFNI realtime protocol, receiving side (see afni_rt.h and
 * the protocol section of README.md).
 *
 * A stream is a small state machine: control text is gathered up to its
 * NUL (bounded by AFNI's 32 KiB), parsed into the dataset's geometry, and
 * the images that follow are copied straight into a raw volume buffer at
 * their slice's place (slices arrive in ZORDER: alternating by default, as
 * AFNI assumes). A complete volume is converted once — byte order, datum,
 * AFNI's x-fastest layout to myelin's C order — into a float buffer that is
 * handed to the caller. Nothing is allocated per image or per volume.
 *
 * Geometry follows AFNI's plug_realtime: voxel sizes from the field of view
 * over the matrix, the volume centred on the origin unless XYZFIRST/ZFIRST
 * give the first voxel's position, XYZAXES giving each axis's direction in
 * AFNI's DICOM (LPS) frame; the affine is then turned to RAS (x and y
 * negated), like every other reader of fmri_source. OBLIQUE_XFORM, when
 * sent, is that voxel → LPS matrix itself.
 */
#include "afni_rt.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DIM 100000
#define MAX_VOLUME_BYTES ((size_t)1 << 31)

static const char AXIS_LETTER[] = "RLPAIS"; /* where each axis code starts */
static const char AXIS_SIGN[] = "+--++-";   /* '+': the LPS coordinate grows along it */
static const char *const AXIS_SHORT[6] = {"R-L", "L-R", "P-A", "A-P", "I-S", "S-I"};
static const char *const AXIS_TINY[6] = {"RL", "LR", "PA", "AP", "IS", "SI"};
static const char *const AXIS_LONG[6] = {"Right-to-Left",         "Left-to-Right",
                                         "Posterior-to-Anterior", "Anterior-to-Posterior",
                                         "Inferior-to-Superior",  "Superior-to-Inferior"};

/* Control information as parsed, before the geometry is derived. */
typedef struct info {
  int acq3d, timed, datum, msb, zorder, zlock, tpattern, nchan;
  long nx, ny, nz;
  double tr, fov[3], dz, zgap, off[3], first[3];
  int center[3], code[3], axes[3];
  int oblique;
  double obl[16];
  char name[128];
} info;

static int host_is_msb(void) {
  const uint16_t one = 1;
  uint8_t b;
  memcpy(&b, &one, 1);
  return b == 0;
}

void afni_rt_init(afni_rt *p) {
  memset(p, 0, sizeof *p);
  p->state = AFNI_RT_START;
}

static void dataset_free(afni_rt *p) {
  free(p->raw);
  free(p->vol);
  free(p->slice_times);
  p->raw = NULL;
  p->vol = NULL;
  p->slice_times = NULL;
}

void afni_rt_free(afni_rt *p) {
  dataset_free(p);
  free(p->info);
  p->info = NULL;
}

/* ---- parsing the control text ---------------------------------------------------- */

static int fail(char *err, size_t errlen, const char *fmt, const char *a, const char *b) {
  snprintf(err, errlen, fmt, a, b);
  return -1;
}

/* Up to max numbers from s (whitespace separated); the count, or -1 when a
 * token is not a number. */
static int numbers(const char *s, double *v, int max) {
  int n = 0;
  while (*s) {
    while (isspace((unsigned char)*s))
      s++;
    if (!*s) break;
    if (n == max) return -1;
    char *end;
    double x = strtod(s, &end);
    if (end == s || (*end && !isspace((unsigned char)*end)) || !isfinite(x)) return -1;
    v[n++] = x;
    s = end;
  }
  return n;
}

static int is_int(double x) { return x == floor(x) && fabs(x) < 1e9; }

/* One position "12.5" or "12.5R" (the letter says which side it lies to). */
static int position(const char **s, double *v, int *code) {
  while (isspace((unsigned char)**s))
    (*s)++;
  char *end;
  *v = strtod(*s, &end);
  if (end == *s || !isfinite(*v)) return -1;
  *code = -1;
  const char *c = strchr(AXIS_LETTER, toupper((unsigned char)*end));
  if (*end && c) *code = (int)(c - AXIS_LETTER), end++;
  if (*end && !isspace((unsigned char)*end)) return -1;
  *s = end;
  return 0;
}

static int axis_code(const char *s) {
  for (int i = 0; i < 6; i++)
    if (!strcmp(s, AXIS_SHORT[i]) || !strcmp(s, AXIS_TINY[i]) || !strcmp(s, AXIS_LONG[i])) return i;
  return -1;
}

static int parse_line(info *in, const char *key, const char *args, char *err, size_t errlen) {
  double v[16];
  int n;
  char word[64] = "";
  sscanf(args, "%63s", word);
  if (!strcmp(key, "ACQUISITION_TYPE")) {
    if (!strcmp(word, "2D+z"))
      in->acq3d = 0, in->timed = 0;
    else if (!strcmp(word, "2D+zt"))
      in->acq3d = 0, in->timed = 1;
    else if (!strcmp(word, "3D"))
      in->acq3d = 1, in->timed = 0;
    else if (!strcmp(word, "3D+t"))
      in->acq3d = 1, in->timed = 1;
    else
      return fail(err, errlen, "ACQUISITION_TYPE '%s': expected 2D+z, 2D+zt, 3D or 3D+t%s", args, "");
  } else if (!strcmp(key, "NAME") || !strcmp(key, "PREFIX")) {
    snprintf(in->name, sizeof in->name, "%s", word);
  } else if (!strcmp(key, "TR")) {
    if (numbers(args, v, 1) != 1 || !(v[0] > 0))
      return fail(err, errlen, "TR '%s': expected the repetition time in seconds (> 0)%s", args, "");
    in->tr = v[0];
  } else if (!strcmp(key, "ZDELTA")) {
    if (numbers(args, v, 1) != 1 || !(v[0] > 0))
      return fail(err, errlen, "ZDELTA '%s': expected the slice thickness in mm (> 0)%s", args, "");
    in->dz = v[0];
  } else if (!strcmp(key, "ZGAP")) {
    if (numbers(args, v, 1) != 1 || !(v[0] >= 0))
      return fail(err, errlen, "ZGAP '%s': expected the gap between slices in mm (>= 0)%s", args, "");
    in->zgap = v[0];
  } else if (!strcmp(key, "XYFOV")) {
    n = numbers(args, v, 3);
    if (n < 1 || !(v[0] > 0))
      return fail(err, errlen, "XYFOV '%s': expected the field of view in mm, 'xx [yy [zz]]' with xx > 0%s",
                  args, "");
    in->fov[0] = v[0];
    in->fov[1] = n > 1 && v[1] > 0 ? v[1] : v[0];
    if (n > 2 && v[2] > 0) in->fov[2] = v[2];
  } else if (!strcmp(key, "XYMATRIX")) {
    n = numbers(args, v, 3);
    if (n < 1 || !is_int(v[0]) || v[0] < 2 || v[0] > MAX_DIM ||
        (n > 1 && (!is_int(v[1]) || v[1] > MAX_DIM)) || (n > 2 && (!is_int(v[2]) || v[2] > MAX_DIM)))
      return fail(err, errlen,
                  "XYMATRIX '%s': expected the image size in voxels, 'nx [ny [nz]]' (integers, nx > 1)%s",
                  args, "");
    in->nx = (long)v[0];
    in->ny = n > 1 && v[1] > 1 ? (long)v[1] : in->nx;
    if (n > 2 && v[2] > 0) in->nz = (long)v[2];
  } else if (!strcmp(key, "ZNUM")) {
    if (numbers(args, v, 1) != 1 || !is_int(v[0]) || v[0] < 1 || v[0] > MAX_DIM)
      return fail(err, errlen, "ZNUM '%s': expected the number of slices (an integer >= 1)%s", args, "");
    in->nz = (long)v[0];
  } else if (!strcmp(key, "DATUM")) {
    if (!strcmp(word, "byte"))
      in->datum = 1;
    else if (!strcmp(word, "short"))
      in->datum = 2;
    else if (!strcmp(word, "float"))
      in->datum = 4;
    else if (!strcmp(word, "complex"))
      return fail(err, errlen, "DATUM complex: complex images are not supported (send magnitudes)%s%s", "",
                  "");
    else
      return fail(err, errlen, "DATUM '%s': expected byte, short or float%s", args, "");
  } else if (!strcmp(key, "BYTEORDER")) {
    if (!strcmp(word, "LSB_FIRST"))
      in->msb = 0;
    else if (!strcmp(word, "MSB_FIRST"))
      in->msb = 1;
    else
      return fail(err, errlen, "BYTEORDER '%s': expected LSB_FIRST or MSB_FIRST%s", args, "");
  } else if (!strcmp(key, "LOCK_ZORDER")) {
    in->zlock = 1;
  } else if (!strcmp(key, "ZORDER")) {
    if (in->zlock) return 0;
    if (!strcmp(word, "alt"))
      in->zorder = 0;
    else if (!strcmp(word, "seq"))
      in->zorder = 1;
    else if (!strcmp(word, "explicit"))
      return fail(err, errlen,
                  "ZORDER explicit: an explicit slice order is not supported (use alt or seq)%s%s", "", "");
    else
      return fail(err, errlen, "ZORDER '%s': expected alt or seq%s", args, "");
  } else if (!strcmp(key, "TPATTERN")) {
    if (in->zlock) return 0;
    if (!strcmp(word, "alt+z"))
      in->tpattern = 0;
    else if (!strcmp(word, "seq+z"))
      in->tpattern = 1;
    else
      return fail(err, errlen, "TPATTERN '%s': expected alt+z or seq+z%s", args, "");
  } else if (!strcmp(key, "XYZAXES")) {
    char a[3][32] = {"", "", ""};
    int c[3];
    if (sscanf(args, "%31s %31s %31s", a[0], a[1], a[2]) != 3)
      return fail(err, errlen, "XYZAXES '%s': expected three axis codes such as 'L-R P-A I-S'%s", args, "");
    for (int i = 0; i < 3; i++)
      if ((c[i] = axis_code(a[i])) < 0)
        return fail(err, errlen,
                    "XYZAXES: '%s' is not an axis code (R-L, L-R, P-A, A-P, I-S, S-I, or RL, LR, ...)%s",
                    a[i], "");
    if ((c[0] >> 1) + (c[1] >> 1) + (c[2] >> 1) != 3 || c[0] >> 1 == c[1] >> 1)
      return fail(err, errlen, "XYZAXES '%s': two axes point along the same direction%s", args, "");
    memcpy(in->axes, c, sizeof c);
  } else if (!strcmp(key, "XYZFIRST") || !strcmp(key, "ZFIRST")) {
    int three = key[0] == 'X';
    const char *s = args;
    for (int i = three ? 0 : 2; i < 3; i++) {
      if (position(&s, &in->first[i], &in->code[i]))
        return fail(err, errlen,
                    "%s '%s': expected positions in mm, each optionally followed by R, L, A, P, I or S", key,
                    args);
      in->center[i] = 0;
    }
    while (isspace((unsigned char)*s))
      s++;
    if (*s) return fail(err, errlen, "%s '%s': too many values", key, args);
  } else if (!strcmp(key, "XYZOFF")) {
    if (numbers(args, v, 3) != 3)
      return fail(err, errlen, "XYZOFF '%s': expected three offsets in mm%s", args, "");
    for (int i = 0; i < 3; i++)
      in->off[i] = v[i], in->center[i] = 1;
  } else if (!strcmp(key, "NUM_CHAN")) {
    if (numbers(args, v, 1) != 1 || !is_int(v[0]) || v[0] < 1)
      return fail(err, errlen, "NUM_CHAN '%s': expected a channel count >= 1%s", args, "");
    if (v[0] > 1)
      return fail(err, errlen,
                  "NUM_CHAN %s: multi-channel acquisitions are not supported (one channel per stream)%s",
                  args, "");
  } else if (!strcmp(key, "OBLIQUE_XFORM")) {
    if (numbers(args, in->obl, 16) != 16)
      return fail(err, errlen,
                  "OBLIQUE_XFORM '%s': expected the 16 numbers of the 4x4 voxel-to-DICOM matrix%s", args, "");
    in->oblique = 1;
  } else if (!strcmp(key, "NUMVOL") || !strcmp(key, "NOTE") || !strcmp(key, "DRIVE_AFNI") ||
             !strcmp(key, "DRIVE_WAIT") || !strncmp(key, "GRAPH_", 6)) {
    /* display and bookkeeping commands of AFNI's own viewer: nothing to do */
  } else {
    return fail(err, errlen,
                "unknown control command '%s'%s (is the sender speaking AFNI's realtime protocol?)", key, "");
  }
  return 0;
}

/* ---- geometry ----------------------------------------------------------------------- */

/* Position of the i-th slice to arrive (0-based) in the volume. */
static int64_t slice_place(int64_t k, int64_t nz, int alt) {
  if (!alt) return k;
  int64_t half = (nz + 1) / 2;
  return k < half ? 2 * k : 1 + 2 * (k - half);
}

static void derive_affine(afni_rt *p, const info *in) {
  double A[4][4] = {{0}};
  A[3][3] = 1;
  if (in->oblique) {
    for (int i = 0; i < 4; i++)
      for (int j = 0; j < 4; j++)
        A[i][j] = in->obl[4 * i + j];
  } else {
    double d[3] = {in->fov[0] / (double)in->nx, in->fov[1] / (double)in->ny,
                   in->fov[2] > 0 ? in->fov[2] / (double)in->nz + in->zgap : in->dz};
    for (int a = 0; a < 3; a++) {
      int ax = in->axes[a];
      double org;
      if (in->center[a]) {
        org = 0.5 * (double)(p->dims[a] - 1) * d[a] + in->off[a];
        if (AXIS_SIGN[ax] == '+') org = -org;
      } else {
        org = in->first[a];
        if (AXIS_SIGN[in->code[a] >= 0 ? in->code[a] : ax] == '+') org = -org;
      }
      A[ax >> 1][a] = AXIS_SIGN[ax] == '-' ? -d[a] : d[a];
      A[ax >> 1][3] = org;
    }
  }
  for (int i = 0; i < 2; i++) /* LPS -> RAS */
    for (int j = 0; j < 4; j++)
      A[i][j] = -A[i][j];
  memcpy(p->affine, A, sizeof A);
}

static int check_info(const info *in, char *err, size_t errlen) {
  if (!in->nx)
    return fail(err, errlen, "XYMATRIX: missing (the image size in voxels is required)%s%s", "", "");
  if (!in->nz)
    return fail(err, errlen,
                "ZNUM: missing (give the slice count with ZNUM or as XYMATRIX's third value)%s%s", "", "");
  if (!(in->fov[0] > 0))
    return fail(err, errlen, "XYFOV: missing (the field of view in mm is required)%s%s", "", "");
  if (!(in->fov[2] > 0) && !(in->dz > 0))
    return fail(err, errlen,
                "ZDELTA: missing (give the slice thickness with ZDELTA or as XYFOV's third value)%s%s", "",
                "");
  if (in->axes[0] < 0)
    return fail(err, errlen, "XYZAXES: missing (the orientation of the axes is required)%s%s", "", "");
  for (int a = 0; a < 3; a++)
    if (!in->center[a] && in->code[a] >= 0 && in->code[a] >> 1 != in->axes[a] >> 1) {
      char c[2] = {AXIS_LETTER[in->code[a]], 0};
      return fail(err, errlen, "XYZFIRST: direction code %s does not lie along axis %s", c,
                  AXIS_SHORT[in->axes[a]]);
    }
  return 0;
}

int afni_rt_parse_info(afni_rt *p, const char *text, char *err, size_t errlen) {
  info in;
  memset(&in, 0, sizeof in);
  in.timed = 1; /* AFNI's defaults: 2D+zt, short, alternating slices, TR 1 s, this machine's byte order */
  in.datum = 2;
  in.tr = 1.0;
  in.tpattern = -1;
  in.msb = host_is_msb();
  in.axes[0] = -1;
  for (int a = 0; a < 3; a++)
    in.center[a] = 1, in.code[a] = -1;
  const char *s = text;
  for (int line = 1; *s; line++) {
    const char *e = strchr(s, '\n');
    size_t len = e ? (size_t)(e - s) : strlen(s);
    char buf[1024];
    if (len >= sizeof buf) {
      snprintf(err, errlen, "control line %d is longer than %zu bytes", line, sizeof buf - 1);
      return -1;
    }
    memcpy(buf, s, len);
    buf[len] = 0;
    s += len + (e != NULL);
    while (len && isspace((unsigned char)buf[len - 1]))
      buf[--len] = 0;
    char *k = buf;
    while (isspace((unsigned char)*k))
      k++;
    if (!*k) continue;
    char *args = k;
    while (*args && !isspace((unsigned char)*args))
      args++;
    if (*args) *args++ = 0;
    while (isspace((unsigned char)*args))
      args++;
    if (parse_line(&in, k, args, err, errlen)) return -1;
  }
  if (check_info(&in, err, errlen)) return -1;
  dataset_free(p);
  p->acq3d = in.acq3d;
  p->timed = in.timed;
  p->dims[0] = in.nx;
  p->dims[1] = in.ny;
  p->dims[2] = in.nz;
  p->datum = in.datum;
  p->swap = in.msb;
  memcpy(p->axes, in.axes, sizeof p->axes);
  p->zorder = in.zorder;
  p->tpattern = in.tpattern;
  p->tr = in.tr;
  snprintf(p->name, sizeof p->name, "%s", in.name);
  derive_affine(p, &in);
  size_t nvox = (size_t)in.nx * (size_t)in.ny * (size_t)in.nz;
  if (nvox * sizeof(float) > MAX_VOLUME_BYTES) {
    snprintf(err, errlen, "XYMATRIX %ldx%ldx%ld: a volume of more than %zu float32 bytes", in.nx, in.ny,
             in.nz, MAX_VOLUME_BYTES);
    return -1;
  }
  p->imsize = (size_t)in.nx * (size_t)in.ny * (size_t)in.datum * (in.acq3d ? (size_t)in.nz : 1);
  p->raw = malloc(nvox * (size_t)in.datum);
  p->vol = malloc(nvox * sizeof *p->vol);
  if (!in.acq3d && in.timed) p->slice_times = malloc((size_t)in.nz * sizeof *p->slice_times);
  if (!p->raw || !p->vol || (!in.acq3d && in.timed && !p->slice_times)) {
    snprintf(err, errlen, "out of memory for a %ldx%ldx%ld volume", in.nx, in.ny, in.nz);
    return -1;
  }
  if (p->slice_times) { /* slice k's time: its rank in the timing pattern (the arrival order by default) */
    int alt = (in.tpattern >= 0 ? in.tpattern : in.zorder) == 0;
    for (int64_t k = 0; k < in.nz; k++)
      p->slice_times[slice_place(k, in.nz, alt)] = (double)k * in.tr / (double)in.nz;
  }
  return 0;
}

/* ---- streaming ------------------------------------------------------------------------ */

static void start_volume(afni_rt *p) {
  p->nsl = 0;
  p->have = 0;
  p->image = p->raw + (p->acq3d ? 0 : (size_t)slice_place(0, p->dims[2], p->zorder == 0) * p->imsize);
}

/* raw (x fastest, sender's byte order) -> vol (float, C order over x, y, z). */
static void convert(afni_rt *p) {
  const int64_t nx = p->dims[0], ny = p->dims[1], nz = p->dims[2];
  const size_t w = (size_t)p->datum;
  const int msb = p->swap;
  for (int64_t x = 0; x < nx; x++)
    for (int64_t y = 0; y < ny; y++) {
      float *o = p->vol + (size_t)((x * ny + y) * nz);
      const uint8_t *b = p->raw + (size_t)(y * nx + x) * w;
      const size_t step = (size_t)(nx * ny) * w;
      for (int64_t z = 0; z < nz; z++, b += step) {
        if (w == 1) {
          o[z] = b[0];
        } else if (w == 2) {
          uint16_t u = msb ? (uint16_t)(b[0] << 8 | b[1]) : (uint16_t)(b[1] << 8 | b[0]);
          o[z] = (float)(int16_t)u;
        } else {
          uint32_t u = msb ? (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3]
                           : (uint32_t)b[3] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[1] << 8 | b[0];
          float f;
          memcpy(&f, &u, sizeof f);
          o[z] = f;
        }
      }
    }
}

/* A complete image is in place: 1 = a volume is complete, 2 = the end marker. */
static int image_done(afni_rt *p) {
  if (p->imsize >= sizeof AFNI_RT_MARKER - 1 && !memcmp(p->image, AFNI_RT_MARKER, sizeof AFNI_RT_MARKER - 1))
    return 2;
  if (!p->acq3d && ++p->nsl < p->dims[2]) {
    p->have = 0;
    p->image = p->raw + (size_t)slice_place(p->nsl, p->dims[2], p->zorder == 0) * p->imsize;
    return 0;
  }
  return 1;
}

/* The text up to the NUL is complete in p->info. */
static int info_done(afni_rt *p, char *err, size_t errlen) {
  if (p->state == AFNI_RT_START && (!strncmp(p->info, "tcp:", 4) || !strncmp(p->info, "shm:", 4))) {
    const char *nl = strchr(p->info, '\n');
    size_t len = nl ? (size_t)(nl - p->info) : strlen(p->info);
    snprintf(p->channel, sizeof p->channel, "%.*s", (int)len, p->info);
    if (!strncmp(p->info, "shm:", 4)) {
      snprintf(err, errlen,
               "control channel asks for a shared-memory data channel (%s): only TCP data channels are "
               "supported (rtfeedme: give -host)",
               p->channel);
      return -1;
    }
    if (nl && nl[1]) {
      snprintf(err, errlen,
               "control channel names an info program ('%s'): it cannot be run here; send the control "
               "information on the data channel",
               nl + 1);
      return -1;
    }
    p->state = AFNI_RT_CONTROL;
    return 1;
  }
  if (afni_rt_parse_info(p, p->info, err, errlen)) return -1;
  p->datasets++;
  p->volumes = 0;
  p->state = AFNI_RT_IMAGES;
  start_volume(p);
  return 0;
}

int afni_rt_feed(afni_rt *p, const uint8_t *data, size_t n, afni_rt_volume_fn cb, void *arg, char *err,
                 size_t errlen) {
  while (n) {
    if (p->state == AFNI_RT_CONTROL) return 1;
    if (p->state == AFNI_RT_START || p->state == AFNI_RT_INFO) {
      if (!p->info && !(p->info = malloc(AFNI_RT_MAX_INFO))) {
        snprintf(err, errlen, "out of memory");
        return -1;
      }
      const uint8_t *nul = memchr(data, 0, n);
      size_t take = nul ? (size_t)(nul - data) + 1 : n;
      if (p->ninfo + take > AFNI_RT_MAX_INFO) {
        snprintf(
            err, errlen,
            "control information: no NUL terminator within %d bytes (is the sender speaking AFNI's realtime "
            "protocol?)",
            AFNI_RT_MAX_INFO);
        return -1;
      }
      memcpy(p->info + p->ninfo, data, take);
      p->ninfo += take;
      data += take;
      n -= take;
      if (!nul) continue;
      int rc = info_done(p, err, errlen);
      p->ninfo = 0;
      if (rc) return rc;
      continue;
    }
    size_t take = p->imsize - p->have < n ? p->imsize - p->have : n;
    memcpy(p->image + p->have, data, take);
    p->have += take;
    data += take;
    n -= take;
    if (p->have < p->imsize) continue;
    int done = image_done(p);
    if (done == 2) { /* end of this dataset: control information for the next one follows */
      p->state = AFNI_RT_INFO;
      p->have = 0;
      p->nsl = 0;
      continue;
    }
    if (done == 1) {
      convert(p);
      p->volumes++;
      start_volume(p);
      if (cb && cb(arg, p, p->vol)) return 2;
    }
  }
  return p->state == AFNI_RT_CONTROL ? 1 : 0;
}

void afni_rt_where(const afni_rt *p, char *buf, size_t len) {
  buf[0] = 0;
  if ((p->state == AFNI_RT_START || p->state == AFNI_RT_INFO) && p->ninfo)
    snprintf(buf, len, "in the middle of the control information (%zu bytes, no NUL yet)", p->ninfo);
  else if (p->state == AFNI_RT_IMAGES && (p->have || p->nsl)) {
    if (p->acq3d)
      snprintf(buf, len, "in the middle of volume %llu (%zu of %zu bytes)", (unsigned long long)p->volumes,
               p->have, p->imsize);
    else
      snprintf(buf, len, "in the middle of volume %llu (slice %lld of %lld: %zu of %zu bytes)",
               (unsigned long long)p->volumes, (long long)p->nsl + 1, (long long)p->dims[2], p->have,
               p->imsize);
  }
}
