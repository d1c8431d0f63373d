/*
 * evaedat4.c — iniVation AEDAT 4.0, from files and from network streams
 * (events.h: ev_aedat4_feed, ev_decode_aedat4).
 *
 * Written from iniVation's public format description (the AEDAT 4.0 page
 * of the DV documentation, dv-processing's I/O docs):
 *
 *   file:    "#!AER-DAT4.0\r\n", the header, packets, then (optionally) a
 *            packet index at the header's dataTablePosition
 *   network: the header, then packets (dv-processing's NetworkWriter sends
 *            no version line; one is accepted all the same)
 *   header:  a size-prefixed FlatBuffer "IOHE" (aedat4_header.fbs): the
 *            compression of every packet body, the index position, and an
 *            XML text describing the streams
 *   packet:  int32 stream id, int32 body size (little-endian), the body:
 *            a size-prefixed FlatBuffer, compressed whole as the header
 *            says: none, an LZ4 frame (liblz4's frame API) or a Zstandard
 *            frame (libzstd)
 *   events:  FlatBuffer "EVTS" (aedat4_events.fbs): 16-byte structs of
 *            int64 t (us), int16 x, int16 y, bool polarity
 *
 * The XML (parsed with libxml2) names each stream: a <node name="ID"> with
 * <attr key="typeIdentifier">EVTS</attr> and, in its <node name="info">,
 * sizeX and sizeY. The decoder reads the lowest-numbered event stream it
 * names (other streams — frames, IMU, triggers, a second camera — are
 * skipped unread); when the XML names none, the first stream whose packets
 * hold events. FlatBuffers are read only through the code flatc generates,
 * after its verifier (evaedat4_fb.cpp).
 */
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <lz4frame.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "events.h"
#include "evaedat4_fb.h"

#define A4_VERSION "#!AER-DAT4.0\r\n"
#define A4_VERSION_LEN 14
#define A4_MAX_HEADER ((size_t)64 << 20) /* bytes */
#define A4_MAX_BODY ((size_t)1 << 30)    /* bytes, compressed or not */

static uint32_t rd32(const uint8_t *r) {
  return (uint32_t)r[0] | (uint32_t)r[1] << 8 | (uint32_t)r[2] << 16 | (uint32_t)r[3] << 24;
}

void ev_aedat4_init(ev_aedat4 *d) {
  memset(d, 0, sizeof *d);
  d->stream = -1;
  d->table = -1;
}

void ev_aedat4_free(ev_aedat4 *d) {
  free(d->buf);
  if (d->lz4) LZ4F_freeDecompressionContext(d->lz4);
  if (d->zstd) ZSTD_freeDCtx(d->zstd);
  memset(d, 0, sizeof *d);
}

/* Room for n bytes of scratch. */
static int scratch(ev_aedat4 *d, size_t n) {
  if (n <= d->cap) return 0;
  size_t cap = d->cap ? d->cap : 65536;
  while (cap < n)
    cap *= 2;
  uint8_t *nb = realloc(d->buf, cap); /* malloc'ed memory is aligned for any scalar */
  if (!nb) return MYELIN_ENOMEM;
  d->buf = nb;
  d->cap = cap;
  return 0;
}

/* ---- the XML stream description ------------------------------------------ */

static xmlNodePtr child_with(xmlNodePtr n, const char *tag, const char *attr, const char *value) {
  for (xmlNodePtr c = n->children; c; c = c->next) {
    if (c->type != XML_ELEMENT_NODE || strcmp((const char *)c->name, tag) != 0) continue;
    xmlChar *v = xmlGetProp(c, (const xmlChar *)attr);
    int hit = v && strcmp((const char *)v, value) == 0;
    xmlFree(v);
    if (hit) return c;
  }
  return NULL;
}

/* The integer text of <attr key="KEY"> under n; -1 when absent or not one. */
static long attr_int(xmlNodePtr n, const char *key) {
  xmlNodePtr a = n ? child_with(n, "attr", "key", key) : NULL;
  if (!a) return -1;
  xmlChar *t = xmlNodeGetContent(a);
  char *end = NULL;
  long v = t ? strtol((const char *)t, &end, 10) : -1;
  if (!t || end == (char *)t || *end || v < 0) v = -1;
  xmlFree(t);
  return v;
}

static void find_event_streams(ev_aedat4 *d, xmlNodePtr n) {
  for (xmlNodePtr c = n->children; c; c = c->next) {
    if (c->type != XML_ELEMENT_NODE) continue;
    if (strcmp((const char *)c->name, "node") == 0) {
      xmlNodePtr type = child_with(c, "attr", "key", "typeIdentifier");
      xmlChar *t = type ? xmlNodeGetContent(type) : NULL;
      xmlChar *name =
          t && strcmp((const char *)t, "EVTS") == 0 ? xmlGetProp(c, (const xmlChar *)"name") : NULL;
      char *end = NULL;
      long id = name ? strtol((const char *)name, &end, 10) : -1;
      if (name && end != (char *)name && !*end && id >= 0 && id <= INT32_MAX &&
          (d->stream < 0 || id < d->stream)) {
        d->stream = (int32_t)id;
        xmlNodePtr info = child_with(c, "node", "name", "info");
        long w = attr_int(info, "sizeX"), h = attr_int(info, "sizeY");
        d->size =
            (ev_sensor){w > 0 && w <= 65536 ? (uint32_t)w : 0, h > 0 && h <= 65536 ? (uint32_t)h : 0, 0};
      }
      xmlFree(name);
      xmlFree(t);
    }
    find_event_streams(d, c);
  }
}

static void parse_info(ev_aedat4 *d, const char *xml, size_t n) {
  if (!xml || !n || n > INT32_MAX) return;
  xmlDocPtr doc = xmlReadMemory(xml, (int)n, "aedat4-info.xml", NULL,
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
  if (!doc) return; /* no usable description: events are taken from the first event stream seen */
  xmlNodePtr root = xmlDocGetRootElement(doc);
  if (root) find_event_streams(d, root);
  xmlFreeDoc(doc);
}

/* ---- packet bodies ------------------------------------------------------- */

/* Decompresses (or copies) a body into d->buf; its length into *n. */
static int inflate_body(ev_aedat4 *d, const uint8_t *src, size_t len, size_t *n, char *why, size_t whylen) {
  if (d->compression == 0) {
    if (scratch(d, len)) return MYELIN_ENOMEM;
    memcpy(d->buf, src, len); /* aligned for the FlatBuffers reader */
    *n = len;
    return 0;
  }
  size_t out = 0;
  if (scratch(d, (len < ((size_t)64 << 20) ? len * 4 : len) + 1024)) return MYELIN_ENOMEM;
  if (d->compression <= 2) {
    if (!d->lz4 && LZ4F_isError(LZ4F_createDecompressionContext((LZ4F_dctx **)&d->lz4, LZ4F_VERSION)))
      return MYELIN_ENOMEM;
    LZ4F_resetDecompressionContext(d->lz4);
    size_t in = 0, hint = 1;
    while (in < len) {
      if (d->cap - out < 65536 && (d->cap >= A4_MAX_BODY || scratch(d, d->cap * 2)))
        return snprintf(why, whylen, "the LZ4 body inflates beyond %zu bytes", A4_MAX_BODY), MYELIN_EFORMAT;
      size_t dst = d->cap - out, srcn = len - in;
      hint = LZ4F_decompress(d->lz4, d->buf + out, &dst, src + in, &srcn, NULL);
      if (LZ4F_isError(hint))
        return snprintf(why, whylen, "corrupt LZ4 body (%s)", LZ4F_getErrorName(hint)), MYELIN_EFORMAT;
      in += srcn;
      out += dst;
      if (!srcn && !dst) break;
    }
    if (hint != 0) return snprintf(why, whylen, "the LZ4 frame of the body is cut short"), MYELIN_EFORMAT;
  } else {
    if (!d->zstd && !(d->zstd = ZSTD_createDCtx())) return MYELIN_ENOMEM;
    ZSTD_DCtx_reset(d->zstd, ZSTD_reset_session_only);
    ZSTD_inBuffer in = {src, len, 0};
    size_t ret = 1;
    while (in.pos < in.size || ret != 0) {
      if (d->cap - out < 65536 && (d->cap >= A4_MAX_BODY || scratch(d, d->cap * 2)))
        return snprintf(why, whylen, "the Zstd body inflates beyond %zu bytes", A4_MAX_BODY), MYELIN_EFORMAT;
      ZSTD_outBuffer o = {d->buf + out, d->cap - out, 0};
      size_t before = in.pos;
      ret = ZSTD_decompressStream(d->zstd, &o, &in);
      if (ZSTD_isError(ret))
        return snprintf(why, whylen, "corrupt Zstd body (%s)", ZSTD_getErrorName(ret)), MYELIN_EFORMAT;
      out += o.pos;
      if (in.pos == before && o.pos == 0) break; /* input used up inside a frame */
    }
    if (ret != 0) return snprintf(why, whylen, "the Zstd frame of the body is cut short"), MYELIN_EFORMAT;
  }
  *n = out;
  return 0;
}

static int outside4(const char *what, uint64_t off, int32_t stream, size_t i, int x, int y, int p,
                    const ev_sensor *s, char *err, size_t errlen) {
  return myelin_errorf(
      err, errlen, MYELIN_EFORMAT,
      "%s: byte offset %llu: event %zu of the packet of stream %d at x=%d y=%d p=%d lies outside "
      "the sensor %ux%ux%u (corrupt file, or set `sensor`)",
      what, (unsigned long long)off, i, (int)stream, x, y, p, s->w, s->h, s->p);
}

/* One packet (at stream offset off): events of the event stream into out. */
static int packet(ev_aedat4 *d, int32_t stream, const uint8_t *body, size_t len, uint64_t off,
                  const char *what, const ev_sensor *lim, ev_array *out, char *err, size_t errlen) {
  if (d->stream >= 0 && stream != d->stream) return 0; /* another stream: not even inflated */
  char why[256] = "";
  size_t n = 0;
  int rc = inflate_body(d, body, len, &n, why, sizeof why);
  if (rc == MYELIN_ENOMEM) return myelin_errorf(err, errlen, rc, "%s: out of memory", what);
  if (rc)
    return myelin_errorf(err, errlen, rc, "%s: byte offset %llu: the packet of stream %d: %s", what,
                         (unsigned long long)off, (int)stream, why);
  const uint8_t *ev = NULL;
  size_t count = 0;
  char id[5];
  int k = ev_fb_events(d->buf, n, &ev, &count, id, why, sizeof why);
  if (k < 0)
    return myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s: byte offset %llu: the packet of stream %d: %s",
                         what, (unsigned long long)off, (int)stream, why);
  if (k == 0) return 0; /* not events */
  d->stream = stream;   /* the first event stream seen, when the XML named none */
  if (!count) return 0; /* an empty packet: out may have no arrays yet */
  if (ev_reserve(out, count)) return myelin_errorf(err, errlen, MYELIN_ENOMEM, "%s: out of memory", what);
  uint16_t *X = out->x + out->n, *Y = out->y + out->n;
  uint8_t *P = out->p + out->n;
  int64_t *T = out->t + out->n;
  const uint32_t W = lim->w, H = lim->h, NP = lim->p;
  for (size_t i = 0; i < count; i++) {
    const uint8_t *r = ev + 16 * i;
    uint64_t t = (uint64_t)rd32(r) | (uint64_t)rd32(r + 4) << 32;
    int x = (int16_t)(uint16_t)(r[8] | r[9] << 8), y = (int16_t)(uint16_t)(r[10] | r[11] << 8);
    int p = r[12] != 0;
    if (x < 0 || y < 0 || (uint32_t)x >= W || (uint32_t)y >= H || (uint32_t)p >= NP) {
      out->n += i;
      return outside4(what, off, stream, i, x, y, p, lim, err, errlen);
    }
    X[i] = (uint16_t)x;
    Y[i] = (uint16_t)y;
    P[i] = (uint8_t)p;
    T[i] = (int64_t)t;
  }
  out->n += count;
  return 0;
}

/* ---- the stream ---------------------------------------------------------- */

int ev_aedat4_feed(ev_aedat4 *d, const uint8_t *b, size_t len, size_t *used, const char *what, ev_sensor *s,
                   ev_array *out, char *err, size_t errlen) {
  size_t pos = 0;
  int rc = 0;
  d->need = d->have = 0;
  d->unit = NULL;
  while (!rc && d->state < 3) {
    const uint8_t *u = b + pos;
    size_t left = len - pos;
    uint64_t off = d->off + pos;
    if (d->state == 0) { /* the version line (a file's); a stream may begin with the header */
      if (left && u[0] != '#') {
        d->state = 1;
        continue;
      }
      if (left < A4_VERSION_LEN) {
        d->need = A4_VERSION_LEN, d->have = left, d->unit = "version line";
        break;
      }
      if (memcmp(u, A4_VERSION, A4_VERSION_LEN) != 0) {
        rc = myelin_errorf(err, errlen, MYELIN_EFORMAT,
                           "%s: byte offset %llu: not AEDAT 4.0 (no #!AER-DAT4.0 line)", what,
                           (unsigned long long)off);
        break;
      }
      pos += A4_VERSION_LEN;
      d->state = 1;
    } else if (d->state == 1) { /* the header */
      size_t hl = left >= 4 ? rd32(u) : 0;
      if (left >= 4 && (hl < 8 || hl > A4_MAX_HEADER)) {
        rc = myelin_errorf(err, errlen, MYELIN_EFORMAT,
                           "%s: byte offset %llu: implausible AEDAT 4 header size %zu", what,
                           (unsigned long long)off, hl);
        break;
      }
      if (left < 4 || left - 4 < hl) {
        d->need = 4 + hl, d->have = left, d->unit = "header";
        break;
      }
      if (scratch(d, 4 + hl)) return myelin_errorf(err, errlen, MYELIN_ENOMEM, "%s: out of memory", what);
      memcpy(d->buf, u, 4 + hl);
      const char *info;
      size_t info_len;
      char why[256] = "";
      if (ev_fb_header(d->buf, 4 + hl, &d->compression, &d->table, &info, &info_len, why, sizeof why)) {
        rc = myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s: byte offset %llu: the AEDAT 4 header: %s", what,
                           (unsigned long long)off, why);
        break;
      }
      if (d->compression < 0 || d->compression > 4) {
        rc = myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s: byte offset %llu: unknown compression type %d",
                           what, (unsigned long long)off, (int)d->compression);
        break;
      }
      if (d->table >= 0 && (uint64_t)d->table < off + 4 + hl) {
        rc = myelin_errorf(
            err, errlen, MYELIN_EFORMAT,
            "%s: byte offset %llu: the header puts the packet index at %lld, before the packets", what,
            (unsigned long long)off, (long long)d->table);
        break;
      }
      parse_info(d, info, info_len);
      if (!s->w && !s->h && d->size.w && d->size.h) {
        s->w = d->size.w;
        s->h = d->size.h;
      }
      if (!s->p) s->p = 2;
      pos += 4 + hl;
      d->state = 2;
    } else { /* packets, up to a file's packet index */
      if (d->table > 0 && off >= (uint64_t)d->table) {
        d->state = 3;
        break;
      }
      if (left < 8) {
        d->need = 8, d->have = left, d->unit = "packet header";
        break;
      }
      int32_t stream = (int32_t)rd32(u);
      int32_t size = (int32_t)rd32(u + 4);
      if (size <= 0 || (size_t)size > A4_MAX_BODY) {
        rc = myelin_errorf(err, errlen, MYELIN_EFORMAT,
                           "%s: byte offset %llu: bad packet header (stream %d, size %d)", what,
                           (unsigned long long)off, (int)stream, (int)size);
        break;
      }
      if (left - 8 < (size_t)size) {
        d->need = 8 + (size_t)size, d->have = left, d->unit = "packet";
        break;
      }
      const ev_sensor lim = {s->w ? s->w : 32768, s->h ? s->h : 32768, s->p ? s->p : 2};
      rc = packet(d, stream, u + 8, (size_t)size, off, what, &lim, out, err, errlen);
      if (!rc) pos += 8 + (size_t)size;
    }
  }
  *used = pos;
  d->off += pos;
  return rc;
}

int ev_decode_aedat4(const uint8_t *b, size_t len, const char *what, ev_sensor *s, ev_array *out, char *err,
                     size_t errlen) {
  if (len < A4_VERSION_LEN || memcmp(b, A4_VERSION, A4_VERSION_LEN) != 0)
    return myelin_errorf(err, errlen, MYELIN_EFORMAT,
                         "%s: byte offset 0: not an AEDAT 4.0 file (no #!AER-DAT4.0)", what);
  ev_aedat4 d;
  ev_aedat4_init(&d);
  size_t used = 0, from = out->n;
  int rc = ev_aedat4_feed(&d, b, len, &used, what, s, out, err, errlen);
  if (!rc && d.state < 3 && used < len)
    rc = myelin_errorf(err, errlen, MYELIN_EFORMAT,
                       "%s: truncated at byte offset %zu: the last %s has %zu of its %zu bytes", what, used,
                       d.unit, d.have, d.need);
  if (!s->w || !s->h) ev_size_from_events(out, from, s);
  ev_aedat4_free(&d);
  return rc;
}
