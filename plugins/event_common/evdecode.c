/*
 * evdecode.c — event-camera file decoders: N-MNIST .bin, Prophesee EVT 2.0
 * and EVT 3.0 .raw, jAER AEDAT 2.0, iniVation AEDAT 3.1 (AEDAT 4.0 is in
 * evaedat4.c). Each takes a whole file image and appends events to an
 * ev_array (events.h); formats are written from the public specs:
 *
 *  - N-MNIST (Orchard et al. 2015): 5 bytes per event, x, y, then
 *    p (bit 7) and a 23-bit timestamp in microseconds, big-endian. A record
 *    with y = 240 is no event but a timestamp overflow marker that adds 2^13
 *    to every later timestamp (what the dataset's own reader and tonic do).
 *  - EVT 2.0 (docs.prophesee.ai, encoding_formats/evt2): little-endian
 *    32-bit words, type in bits 31..28. CD_OFF/CD_ON (0/1) carry the 6 low
 *    timestamp bits (27..22), x (21..11) and y (10..0); EVT_TIME_HIGH (8)
 *    carries the 28 high bits; triggers and vendor words are skipped.
 *  - EVT 3.0 (encoding_formats/evt3): little-endian 16-bit words, type in
 *    bits 15..12, a state machine: EVT_ADDR_Y sets y, EVT_ADDR_X emits one
 *    event at x with polarity bit 11, VECT_BASE_X sets a base x and
 *    polarity, VECT_12 / VECT_8 emit the events whose bits are set at base
 *    x + i and advance the base by 12 / 8; EVT_TIME_LOW and EVT_TIME_HIGH set
 *    the 12 low and 12 high bits of a 24-bit timestamp. The timestamp loops
 *    every 2^24 us; a TIME_HIGH lower than the previous one counts a loop.
 *
 *  - AEDAT 3.1 (iniVation docs, libcaer's events/common.h and polarity.h):
 *    "#!AER-DAT3.1" and "#" header lines up to "#!END-HEADER", then packets:
 *    a 28-byte little-endian header (type i16, source i16, eventSize i32,
 *    eventTSOffset i32, eventTSOverflow i32, eventCapacity i32, eventNumber
 *    i32, eventValid i32) and eventCapacity events of eventSize bytes.
 *    Polarity packets (type 1) hold 8-byte events: u32 data (bit 0 valid,
 *    bit 1 polarity, y in bits 2..16, x in bits 17..31) and an i32
 *    timestamp; the full time is overflow << 31 | timestamp. Invalid events
 *    and other packet types are skipped.
 *
 *  - AEDAT 2.0 (jAER's AEFileInputStream and its chip extractors): "#"
 *    header lines (the first "#!AER-DAT2.0"), then 8-byte big-endian
 *    records: a 32-bit address and a 32-bit timestamp in us (unwrapped
 *    when it goes back by more than 2^31, i.e. past 2^32). The address
 *    layout is the camera's, named by the header's AEChip line:
 *      DVS128 (the default): polarity bit 0 (0 = ON: jAER's fliptype),
 *        x = 127 - bits 1..7 (jAER's flipx), y = bits 8..14; bit 15 marks
 *        special (sync) events, skipped.
 *      DAVIS (AEChip naming a DAVIS chip): bit 31 set = APS sample or IMU
 *        (skipped), bit 10 set = external trigger (skipped); else a DVS
 *        event with polarity bit 11 (1 = ON), x = W - 1 - bits 12..21,
 *        y = bits 22..30. The width comes from the chip name (DAVIS240 =
 *        240x180, DAVIS346 = 346x260, DAVIS640 = 640x480, DAVIS128,
 *        DAVIS208) or the `sensor` param.
 *    Coordinates are jAER's own (tonic's read_davis_346 gives the same).
 *
 * Both raw formats may start with an ASCII header of "% ..." lines (ended
 * by "% end" in recent files) that names the format and the sensor size.
 *
 * The hot loops write through local copies of the arrays' pointers and only
 * check capacity once per input word: about one branch per event.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"

int ev_reserve(ev_array *a, size_t more) {
  if (more > SIZE_MAX / 16 - a->n) return MYELIN_ENOMEM;
  size_t need = a->n + more;
  if (need <= a->cap) return 0;
  size_t cap = a->cap ? a->cap : 1024;
  while (cap < need)
    cap = cap > SIZE_MAX / 4 ? need : cap * 2;
  uint16_t *x = realloc(a->x, cap * sizeof *x);
  if (x) a->x = x;
  uint16_t *y = x ? realloc(a->y, cap * sizeof *y) : NULL;
  if (y) a->y = y;
  uint8_t *p = y ? realloc(a->p, cap) : NULL;
  if (p) a->p = p;
  int64_t *t = p ? realloc(a->t, cap * sizeof *t) : NULL;
  if (!t) return MYELIN_ENOMEM; /* the arrays that did grow stay valid at the old count */
  a->t = t;
  a->cap = cap;
  return 0;
}

void ev_free(ev_array *a) {
  free(a->x);
  free(a->y);
  free(a->p);
  free(a->t);
  memset(a, 0, sizeof *a);
}

static const char *const format_names[] = {"auto",   "nmnist", "evt2",   "evt3",
                                           "aedat3", "hdf5",   "aedat2", "aedat4"};

int ev_format_parse(const char *name) {
  for (int i = 0; i < (int)(sizeof format_names / sizeof *format_names); i++)
    if (strcmp(name, format_names[i]) == 0) return i;
  return -1;
}

const char *ev_format_name(ev_format f) {
  return (unsigned)f < sizeof format_names / sizeof *format_names ? format_names[f] : "?";
}

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* ---- Prophesee raw header ------------------------------------------------ */

/* Parses "KEY=N" out of a ';'-separated list such as "EVT3;height=720;width=1280". */
static uint32_t field_of(const char *s, size_t n, const char *key) {
  size_t k = strlen(key);
  for (size_t i = 0; i + k < n; i++) {
    if ((i == 0 || s[i - 1] == ';' || s[i - 1] == ' ') && memcmp(s + i, key, k) == 0 && s[i + k] == '=') {
      uint32_t v = 0;
      for (size_t j = i + k + 1; j < n && s[j] >= '0' && s[j] <= '9' && v < 1000000; j++)
        v = v * 10 + (uint32_t)(s[j] - '0');
      return v;
    }
  }
  return 0;
}

static void header_line(const char *s, size_t n, int *evt, ev_sensor *sensor) {
  if (n >= 4 && memcmp(s, "evt ", 4) == 0) {
    if (n >= 5 && s[4] == '2') *evt = 2;
    if (n >= 5 && s[4] == '3') *evt = 3;
  } else if (n >= 7 && memcmp(s, "format ", 7) == 0) {
    if (n >= 11 && memcmp(s + 7, "EVT2", 4) == 0 && (n == 11 || s[11] == ';')) *evt = 2;
    if (n >= 11 && memcmp(s + 7, "EVT3", 4) == 0) *evt = 3;
    uint32_t w = field_of(s + 7, n - 7, "width"), h = field_of(s + 7, n - 7, "height");
    if (w && h && !sensor->w && !sensor->h) {
      sensor->w = w;
      sensor->h = h;
    }
  } else if (n >= 9 && memcmp(s, "geometry ", 9) == 0) {
    uint32_t w = 0, h = 0;
    size_t i = 9;
    for (; i < n && s[i] >= '0' && s[i] <= '9' && w < 1000000; i++)
      w = w * 10 + (uint32_t)(s[i] - '0');
    if (i < n && s[i] == 'x')
      for (i++; i < n && s[i] >= '0' && s[i] <= '9' && h < 1000000; i++)
        h = h * 10 + (uint32_t)(s[i] - '0');
    if (w && h && !sensor->w && !sensor->h) {
      sensor->w = w;
      sensor->h = h;
    }
  }
}

size_t ev_raw_header(const uint8_t *b, size_t len, int *evt, ev_sensor *sensor) {
  size_t pos = 0;
  *evt = 0;
  while (pos < len && b[pos] == '%') {
    const uint8_t *nl = memchr(b + pos, '\n', len - pos);
    size_t end = nl ? (size_t)(nl - b) : len;
    const char *s = (const char *)b + pos + 1;
    size_t n = end - pos - 1;
    while (n && *s == ' ')
      s++, n--;
    while (n && (s[n - 1] == '\r' || s[n - 1] == ' '))
      n--;
    header_line(s, n, evt, sensor);
    pos = nl ? end + 1 : len;
    if (n == 3 && memcmp(s, "end", 3) == 0) break;
  }
  return pos;
}

ev_format ev_format_guess(const uint8_t *b, size_t len, const char *path) {
  if (len >= 10 && memcmp(b, "#!AER-DAT3", 10) == 0) return EV_FMT_AEDAT3;
  if (len >= 10 && memcmp(b, "#!AER-DAT2", 10) == 0) return EV_FMT_AEDAT2;
  if (len >= 10 && memcmp(b, "#!AER-DAT4", 10) == 0) return EV_FMT_AEDAT4;
  if (len >= 8 && memcmp(b, "\x89HDF\r\n\x1a\n", 8) == 0) return EV_FMT_HDF5;
  if (len && b[0] == '%') {
    int evt;
    ev_sensor s = {0, 0, 0};
    ev_raw_header(b, len, &evt, &s);
    if (evt == 2) return EV_FMT_EVT2;
    if (evt == 3) return EV_FMT_EVT3;
  }
  if (path && ends_with(path, ".bin")) return EV_FMT_NMNIST;
  if (path && ends_with(path, ".raw")) return EV_FMT_EVT3;
  return EV_FMT_AUTO;
}

/* ---- shared checks --------------------------------------------------------- */

static int outside(const char *what, size_t off, const ev_sensor *s, unsigned x, unsigned y, unsigned p,
                   char *err, size_t errlen) {
  return myelin_errorf(err, errlen, MYELIN_EFORMAT,
                       "%s: byte offset %zu: event at x=%u y=%u p=%u lies outside the sensor %ux%ux%u "
                       "(corrupt file, or set `sensor`)",
                       what, off, x, y, p, s->w, s->h, s->p);
}

static int truncated(const char *what, size_t off, size_t have, size_t need, const char *unit, char *err,
                     size_t errlen) {
  return myelin_errorf(err, errlen, MYELIN_EFORMAT,
                       "%s: truncated at byte offset %zu: the last %s has %zu of its %zu bytes", what, off,
                       unit, have, need);
}

/* ---- N-MNIST -------------------------------------------------------------- */

int ev_decode_nmnist(const uint8_t *b, size_t len, const char *what, ev_sensor *s, ev_array *out, char *err,
                     size_t errlen) {
  if (!s->w) s->w = EV_NMNIST_W;
  if (!s->h) s->h = EV_NMNIST_H;
  if (!s->p) s->p = 2;
  size_t whole = len / 5;
  if (ev_reserve(out, whole)) return myelin_errorf(err, errlen, MYELIN_ENOMEM, "%s: out of memory", what);
  uint16_t *X = out->x, *Y = out->y;
  uint8_t *P = out->p;
  int64_t *T = out->t;
  size_t n = out->n;
  int64_t overflow = 0;
  const uint32_t W = s->w, H = s->h, NP = s->p;
  for (size_t i = 0; i < whole; i++) {
    const uint8_t *r = b + 5 * i;
    uint32_t x = r[0], y = r[1], p = r[2] >> 7;
    if (y == 240) {
      overflow += 1 << 13;
      continue;
    }
    if (x >= W || y >= H || p >= NP) {
      out->n = n;
      return outside(what, 5 * i, s, x, y, p, err, errlen);
    }
    X[n] = (uint16_t)x;
    Y[n] = (uint16_t)y;
    P[n] = (uint8_t)p;
    T[n] = (int64_t)(((uint32_t)(r[2] & 0x7f) << 16) | ((uint32_t)r[3] << 8) | r[4]) + overflow;
    n++;
  }
  out->n = n;
  if (len % 5) return truncated(what, whole * 5, len % 5, 5, "event", err, errlen);
  return 0;
}

/* ---- EVT 2.0 ---------------------------------------------------------------- */

static int bad_word(const char *what, const char *fmt, size_t off, unsigned type, char *err, size_t errlen) {
  return myelin_errorf(err, errlen, MYELIN_EFORMAT,
                       "%s: byte offset %zu: unknown %s word type 0x%X (corrupt file, or not %s)", what, off,
                       fmt, type, fmt);
}

/* The sensor size a headerless raw file implies: the largest coordinate seen. */
void ev_size_from_events(const ev_array *a, size_t from, ev_sensor *s) {
  uint32_t mx = 0, my = 0;
  for (size_t i = from; i < a->n; i++) {
    if (a->x[i] >= mx) mx = a->x[i] + 1u;
    if (a->y[i] >= my) my = a->y[i] + 1u;
  }
  s->w = mx ? mx : 1;
  s->h = my ? my : 1;
}

int ev_decode_evt2(const uint8_t *b, size_t len, const char *what, ev_sensor *s, ev_array *out, char *err,
                   size_t errlen) {
  int evt;
  size_t off = ev_raw_header(b, len, &evt, s), from = out->n;
  if (!s->p) s->p = 2;
  int known = s->w && s->h;
  const uint32_t W = known ? s->w : 2048, H = known ? s->h : 2048;
  const ev_sensor lim = {W, H, s->p};
  size_t words = (len - off) / 4;
  if (ev_reserve(out, words)) return myelin_errorf(err, errlen, MYELIN_ENOMEM, "%s: out of memory", what);
  uint16_t *X = out->x, *Y = out->y;
  uint8_t *P = out->p;
  int64_t *T = out->t;
  size_t n = out->n;
  int64_t high = 0;
  int rc = 0;
  const uint32_t NP = s->p; /* a local: a store through P may alias *s */
  for (size_t i = 0; i < words; i++) {
    const uint8_t *r = b + off + 4 * i;
    uint32_t w = (uint32_t)r[0] | (uint32_t)r[1] << 8 | (uint32_t)r[2] << 16 | (uint32_t)r[3] << 24;
    uint32_t type = w >> 28;
    if (type <= 1) {
      uint32_t x = (w >> 11) & 0x7ff, y = w & 0x7ff;
      if ((x >= W) | (y >= H) | (type >= NP)) {
        rc = outside(what, off + 4 * i, &lim, x, y, type, err, errlen);
        break;
      }
      X[n] = (uint16_t)x;
      Y[n] = (uint16_t)y;
      P[n] = (uint8_t)type;
      T[n] = high | ((w >> 22) & 0x3f);
      n++;
    } else if (type == 0x8) {
      high = (int64_t)(w & 0x0fffffff) << 6;
    } else if (type != 0xA && type != 0xE && type != 0xF) {
      rc = bad_word(what, "EVT 2.0", off + 4 * i, type, err, errlen);
      break;
    }
  }
  out->n = n;
  if (!known) ev_size_from_events(out, from, s);
  if (rc) return rc;
  if ((len - off) % 4) return truncated(what, off + words * 4, (len - off) % 4, 4, "word", err, errlen);
  return 0;
}

/* ---- EVT 3.0 ---------------------------------------------------------------- */

int ev_decode_evt3(const uint8_t *b, size_t len, const char *what, ev_sensor *s, ev_array *out, char *err,
                   size_t errlen) {
  int evt;
  size_t off = ev_raw_header(b, len, &evt, s), from = out->n;
  if (!s->p) s->p = 2;
  int known = s->w && s->h;
  const uint32_t W = known ? s->w : 2048, H = known ? s->h : 2048;
  const ev_sensor lim = {W, H, s->p};
  size_t words = (len - off) / 2;
  int rc = 0;
  uint32_t y = 0, base = 0, vpol = 0, low = 0, high = 0;
  int64_t loops = 0, tbase = 0; /* tbase = loops + (high << 12) */
  size_t n = out->n;
  for (size_t i = 0; i < words; i++) {
    if (n + 12 > out->cap) {
      out->n = n;
      if (ev_reserve(out, words - i > 4096 ? 4096 * 12 : 12 * (words - i) + 12)) {
        rc = myelin_errorf(err, errlen, MYELIN_ENOMEM, "%s: out of memory", what);
        break;
      }
    }
    const uint8_t *r = b + off + 2 * i;
    uint32_t w = (uint32_t)r[0] | (uint32_t)r[1] << 8;
    uint32_t type = w >> 12;
    switch (type) {
    case 0x0:
      y = w & 0x7ff;
      break;
    case 0x2: {
      uint32_t x = w & 0x7ff, p = (w >> 11) & 1;
      if (x >= W || y >= H || p >= s->p) {
        rc = outside(what, off + 2 * i, &lim, x, y, p, err, errlen);
        goto done;
      }
      out->x[n] = (uint16_t)x;
      out->y[n] = (uint16_t)y;
      out->p[n] = (uint8_t)p;
      out->t[n] = tbase + low;
      n++;
      break;
    }
    case 0x3:
      base = w & 0x7ff;
      vpol = (w >> 11) & 1;
      break;
    case 0x4:
    case 0x5: {
      uint32_t bits = type == 0x4 ? 12 : 8, mask = w & (type == 0x4 ? 0xfffu : 0xffu);
      if (mask && (y >= H || vpol >= s->p || base + 31 - (uint32_t)__builtin_clz(mask) >= W)) {
        rc =
            outside(what, off + 2 * i, &lim, base + 31 - (uint32_t)__builtin_clz(mask), y, vpol, err, errlen);
        goto done;
      }
      int64_t t = tbase + low;
      while (mask) {
        uint32_t k = (uint32_t)__builtin_ctz(mask);
        mask &= mask - 1;
        out->x[n] = (uint16_t)(base + k);
        out->y[n] = (uint16_t)y;
        out->p[n] = (uint8_t)vpol;
        out->t[n] = t;
        n++;
      }
      base += bits;
      break;
    }
    case 0x6:
      low = w & 0xfff;
      break;
    case 0x8: {
      uint32_t h = w & 0xfff;
      if (h < high) loops += (int64_t)1 << 24;
      high = h;
      tbase = loops + ((int64_t)high << 12);
      break;
    }
    case 0x7: /* CONTINUED_4 */
    case 0xA: /* EXT_TRIGGER */
    case 0xE: /* OTHERS */
    case 0xF: /* CONTINUED_12 */
      break;
    default:
      rc = bad_word(what, "EVT 3.0", off + 2 * i, type, err, errlen);
      goto done;
    }
  }
done:
  out->n = n;
  if (!known) ev_size_from_events(out, from, s);
  if (rc) return rc;
  if ((len - off) % 2) return truncated(what, off + words * 2, 1, 2, "word", err, errlen);
  return 0;
}

static uint32_t le32(const uint8_t *r) {
  return (uint32_t)r[0] | (uint32_t)r[1] << 8 | (uint32_t)r[2] << 16 | (uint32_t)r[3] << 24;
}

int ev_decode_aedat3(const uint8_t *b, size_t len, const char *what, ev_sensor *s, ev_array *out, char *err,
                     size_t errlen) {
  if (len < 10 || memcmp(b, "#!AER-DAT3", 10) != 0)
    return myelin_errorf(err, errlen, MYELIN_EFORMAT,
                         "%s: byte offset 0: not an AEDAT 3 file (no #!AER-DAT3)", what);
  size_t pos = 0, from = out->n;
  for (;;) { /* the header: '#' lines, the last one #!END-HEADER */
    const uint8_t *nl = memchr(b + pos, '\n', len - pos);
    if (!nl)
      return myelin_errorf(err, errlen, MYELIN_EFORMAT,
                           "%s: truncated at byte offset %zu: the header has no "
                           "#!END-HEADER line",
                           what, len);
    int end = (size_t)(nl - b) - pos >= 12 && memcmp(b + pos, "#!END-HEADER", 12) == 0;
    pos = (size_t)(nl - b) + 1;
    if (end) break;
    if (pos < len && b[pos] != '#')
      return myelin_errorf(err, errlen, MYELIN_EFORMAT,
                           "%s: byte offset %zu: header line without '#' before "
                           "#!END-HEADER",
                           what, pos);
  }
  if (!s->p) s->p = 2;
  int known = s->w && s->h;
  const ev_sensor lim = {known ? s->w : 32768, known ? s->h : 32768, s->p};
  int rc = 0;
  while (pos < len && !rc) {
    if (len - pos < 28) {
      rc = truncated(what, pos, len - pos, 28, "packet header", err, errlen);
      break;
    }
    const uint8_t *h = b + pos;
    uint32_t type = (uint32_t)h[0] | (uint32_t)h[1] << 8, size = le32(h + 4), overflow = le32(h + 12);
    uint32_t cap = le32(h + 16), number = le32(h + 20);
    if (size == 0 || size > 65536 || cap > INT32_MAX || number > cap || (type == 1 && size < 8) ||
        overflow > INT32_MAX) {
      rc = myelin_errorf(
          err, errlen, MYELIN_EFORMAT,
          "%s: byte offset %zu: bad packet header (type %u, eventSize %u, capacity %u, number %u)", what, pos,
          type, size, cap, number);
      break;
    }
    size_t payload = (size_t)size * cap, have = len - pos - 28;
    if (type == 1) {
      size_t whole = (have < payload ? have : payload) / size, nev = number < whole ? number : whole;
      if (ev_reserve(out, nev)) return myelin_errorf(err, errlen, MYELIN_ENOMEM, "%s: out of memory", what);
      for (size_t i = 0; i < nev; i++) {
        const uint8_t *e = h + 28 + i * size;
        uint32_t d = le32(e), ts = le32(e + 4);
        if (!(d & 1)) continue; /* invalidated */
        uint32_t x = d >> 17, y = (d >> 2) & 0x7fff, p = (d >> 1) & 1;
        if (x >= lim.w || y >= lim.h || p >= lim.p || ts > INT32_MAX) {
          rc = ts > INT32_MAX
                   ? myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s: byte offset %zu: negative timestamp",
                                   what, (size_t)(e - b) + 4)
                   : outside(what, (size_t)(e - b), &lim, x, y, p, err, errlen);
          break;
        }
        out->x[out->n] = (uint16_t)x;
        out->y[out->n] = (uint16_t)y;
        out->p[out->n] = (uint8_t)p;
        out->t[out->n] = (int64_t)overflow << 31 | ts;
        out->n++;
      }
    }
    if (!rc && have < payload && have % size)
      rc = truncated(what, pos + 28 + have / size * size, have % size, size, "event", err, errlen);
    else if (!rc && have < payload)
      rc = myelin_errorf(err, errlen, MYELIN_EFORMAT,
                         "%s: truncated at byte offset %zu: the packet starting there holds %zu of its %zu "
                         "bytes",
                         what, pos, have, payload);
    pos += 28 + payload;
  }
  if (!known) ev_size_from_events(out, from, s);
  return rc;
}

/* ---- AEDAT 2.0 --------------------------------------------------------------- */

static uint32_t be32(const uint8_t *r) {
  return (uint32_t)r[0] << 24 | (uint32_t)r[1] << 16 | (uint32_t)r[2] << 8 | r[3];
}

/* Case-insensitive search of a chip name in the header text. */
static int header_has(const uint8_t *h, size_t n, const char *name) {
  size_t k = strlen(name);
  for (size_t i = 0; i + k <= n; i++) {
    size_t j = 0;
    while (j < k && (h[i + j] | 0x20) == (name[j] | 0x20))
      j++;
    if (j == k) return 1;
  }
  return 0;
}

/* The camera an AEDAT 2.0 header names: 1 for a DAVIS chip (its size into
 * w, h when known), 0 for the DVS128 layout. */
static int aedat2_chip(const uint8_t *h, size_t n, uint32_t *w, uint32_t *hh) {
  static const struct {
    const char *name;
    uint32_t w, h;
  } davis[] = {{"davis240", 240, 180},
               {"davis346", 346, 260},
               {"davis640", 640, 480},
               {"davis128", 128, 128},
               {"davis208", 208, 192}};
  *w = *hh = 0;
  for (size_t i = 0; i < sizeof davis / sizeof *davis; i++)
    if (header_has(h, n, davis[i].name)) {
      *w = davis[i].w;
      *hh = davis[i].h;
      return 1;
    }
  return header_has(h, n, "davis");
}

int ev_decode_aedat2(const uint8_t *b, size_t len, const char *what, ev_sensor *s, ev_array *out, char *err,
                     size_t errlen) {
  if (len < 10 || memcmp(b, "#!AER-DAT2", 10) != 0)
    return myelin_errorf(err, errlen, MYELIN_EFORMAT,
                         "%s: byte offset 0: not an AEDAT 2.0 file (no #!AER-DAT2)", what);
  size_t off = 0; /* the header: lines starting with '#' (tonic's and jAER's rule) */
  while (off < len && b[off] == '#') {
    const uint8_t *nl = memchr(b + off, '\n', len - off);
    if (!nl)
      return myelin_errorf(err, errlen, MYELIN_EFORMAT,
                           "%s: truncated at byte offset %zu: a header line has no end", what, off);
    off = (size_t)(nl - b) + 1;
  }
  uint32_t cw, ch;
  int davis = aedat2_chip(b, off, &cw, &ch);
  if (!s->w && !s->h) {
    s->w = davis ? cw : 128;
    s->h = davis ? ch : 128;
  }
  if (!s->p) s->p = 2;
  if (!s->w || !s->h)
    return myelin_errorf(err, errlen, MYELIN_EFORMAT,
                         "%s: byte offset %zu: a DAVIS recording of an unknown chip: set `sensor` [W, H, 2] "
                         "(jAER's x is W - 1 - the address's column)",
                         what, off);
  size_t whole = (len - off) / 8;
  if (ev_reserve(out, whole)) return myelin_errorf(err, errlen, MYELIN_ENOMEM, "%s: out of memory", what);
  uint16_t *X = out->x, *Y = out->y;
  uint8_t *P = out->p;
  int64_t *T = out->t;
  size_t n = out->n;
  const uint32_t W = s->w, H = s->h, NP = s->p;
  uint32_t prev = 0;
  int64_t wrap = 0;
  int rc = 0;
  for (size_t i = 0; i < whole; i++) {
    const uint8_t *r = b + off + 8 * i;
    uint32_t a = be32(r), ts = be32(r + 4);
    if (ts < prev && prev - ts > 0x80000000u) wrap += (int64_t)1 << 32;
    prev = ts;
    uint32_t x, y, p;
    if (davis) {
      if (a & 0x80000400u) continue; /* APS / IMU sample, or an external trigger */
      uint32_t col = (a >> 12) & 0x3ff;
      y = (a >> 22) & 0x1ff;
      p = (a >> 11) & 1;
      if (col >= W) { /* reported as the address gives it */
        rc = outside(what, off + 8 * i, s, col, y, p, err, errlen);
        break;
      }
      x = W - 1 - col;
    } else {
      if (a & 0x8000u) continue; /* special (sync) event */
      x = 127 - ((a >> 1) & 0x7f);
      y = (a >> 8) & 0x7f;
      p = 1 - (a & 1);
    }
    if (x >= W || y >= H || p >= NP) {
      rc = outside(what, off + 8 * i, s, x, y, p, err, errlen);
      break;
    }
    X[n] = (uint16_t)x;
    Y[n] = (uint16_t)y;
    P[n] = (uint8_t)p;
    T[n] = wrap + ts;
    n++;
  }
  out->n = n;
  if (rc) return rc;
  if ((len - off) % 8) return truncated(what, off + whole * 8, (len - off) % 8, 8, "event", err, errlen);
  return 0;
}

int ev_decode(ev_format f, const uint8_t *b, size_t len, const char *what, ev_sensor *sensor, ev_array *out,
              char *err, size_t errlen) {
  switch (f) {
  case EV_FMT_NMNIST:
    return ev_decode_nmnist(b, len, what, sensor, out, err, errlen);
  case EV_FMT_EVT2:
    return ev_decode_evt2(b, len, what, sensor, out, err, errlen);
  case EV_FMT_EVT3:
    return ev_decode_evt3(b, len, what, sensor, out, err, errlen);
  case EV_FMT_AEDAT3:
    return ev_decode_aedat3(b, len, what, sensor, out, err, errlen);
  case EV_FMT_AEDAT2:
    return ev_decode_aedat2(b, len, what, sensor, out, err, errlen);
  default:
    return myelin_errorf(
        err, errlen, MYELIN_EFORMAT,
        "%s: cannot tell the event format (no AEDAT or Prophesee header, not .bin or .raw); set "
        "`format`",
        what);
  }
}
