/*
 * msg.c — messages: immutable, reference-counted msgpack maps.
 *
 * Memory layout. A message is ONE malloc'ed block: a header (struct
 * myelin_msg, rounded up to 64 bytes) followed by the encoded bytes. The block
 * is aligned to 64 bytes by hand (malloc + slack, so small blocks still come
 * from glibc's fast per-thread caches), hence the bytes start 64-byte aligned
 * and a tensor payload placed at an offset that is a multiple of 64 lands on
 * a 64-byte-aligned address.
 *
 * Building. The builder owns such a block from the start and grows it with
 * realloc (re-aligning with a memmove in the rare case realloc changes the
 * alignment slack). myelin_builder_finish() turns the block into the message
 * in place: no copy, no parse. Maps and arrays are written with 32-bit headers
 * whose counts are patched when they close. A tensor payload of 4 KiB or more
 * starts at a multiple of 64 (a "_pad" bin entry in its map fills the gap,
 * 0 to 63 bytes; always present, so msg_pads can re-align it elsewhere);
 * a smaller one at a multiple of 8, without any extra key (see put_tensor).
 * The first error is sticky: later calls are no-ops and finish returns NULL.
 *
 * Decoding. myelin_msgpack_measure() is a hand-written iterative scanner: it
 * walks headers only, enforcing max_bytes and MYELIN_MAX_DEPTH before anything
 * is allocated, and tells apart a valid prefix (EAGAIN) from garbage (EFORMAT,
 * with the byte offset). In the same pass it notes where the root "kind"
 * value is, so myelin_msg_decode() needs one scan, one allocation and one copy
 * into a new block, and caches the NUL-terminated kind in the header. The
 * copy starts at the phase (0..63 past the 64-byte boundary) its first
 * "_pad" entry asks for: 0 for a builder's message, the file offset's phase
 * for one that writer.c re-aligned in a stream file, so padded payloads are
 * 64-byte aligned in the copy either way.
 * msg_decode_in() may instead borrow the bytes: a large message read from a
 * mapped stream file points into the mapping and holds a reference on it
 * (msg_backing, reader.c); no copy at all.
 *
 * Reading. The msgpack-c object tree (whose str/bin objects point into the
 * message bytes) is built lazily on the first read and published with a
 * compare-and-swap, so readers on several threads need no lock and messages
 * that are never read (e.g. gen_source -> null_sink) never pay for parsing.
 * The parse zone is sized to the message, so a stage holding many small
 * messages does not hold 8 KiB of tree for each.
 * A tensor payload that is misaligned for its element size (possible only in
 * bytes produced elsewhere) is copied once into an aligned side buffer kept in
 * a mutex-protected list owned by the message.
 */
#include "myelin/msg.h"

#include <msgpack.h>
#include "internal.h"
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- dtypes -------------------------------------------------------------- */

static const struct {
  const char *name;
  size_t size;
} dtype_info[] = {
    [MYELIN_DTYPE_INVALID] = {"", 0}, [MYELIN_F4] = {"<f4", 4}, [MYELIN_F8] = {"<f8", 8},
    [MYELIN_I1] = {"|i1", 1},         [MYELIN_I2] = {"<i2", 2}, [MYELIN_I4] = {"<i4", 4},
    [MYELIN_I8] = {"<i8", 8},         [MYELIN_U1] = {"|u1", 1}, [MYELIN_U2] = {"<u2", 2},
    [MYELIN_U4] = {"<u4", 4},         [MYELIN_U8] = {"<u8", 8}, [MYELIN_B1] = {"|b1", 1},
};
#define DTYPE_COUNT ((int)(sizeof dtype_info / sizeof dtype_info[0]))

myelin_dtype myelin_dtype_parse(const char *s, size_t len) {
  if (!s || len != 3) return MYELIN_DTYPE_INVALID;
  for (int d = 1; d < DTYPE_COUNT; d++) {
    const char *n = dtype_info[d].name;
    if (s[1] != n[1] || s[2] != n[2]) continue;
    /* numpy writes '|' for one-byte types; accept '<' and '=' there too. */
    if (s[0] == n[0] || (dtype_info[d].size == 1 && (s[0] == '<' || s[0] == '=' || s[0] == '|')))
      return (myelin_dtype)d;
  }
  return MYELIN_DTYPE_INVALID;
}

const char *myelin_dtype_name(myelin_dtype d) {
  return (d > 0 && (int)d < DTYPE_COUNT) ? dtype_info[d].name : "invalid";
}

size_t myelin_dtype_size(myelin_dtype d) {
  return (d > 0 && (int)d < DTYPE_COUNT) ? dtype_info[d].size : 0;
}

/* ---- the message block --------------------------------------------------- */

#define KIND_INLINE 48
#define ALIGN 64
#define PAD_MIN 4096 /* tensor payloads from this size get a "_pad" entry and 64-byte alignment */

typedef struct side_buf {
  struct side_buf *next;
  const void *src; /* the misaligned payload this copies */
  void *raw;       /* malloc'ed; data is raw rounded up to ALIGN */
  void *data;
} side_buf;

struct myelin_msg {
  atomic_uint refs;
  size_t len;
  const uint8_t *bytes;
  void *raw; /* what malloc returned for the whole block */
  _Atomic(msgpack_unpacked *) parsed;
  pthread_mutex_t side_lock;
  side_buf *side;
  msg_backing *backing; /* owns the bytes when they are not in this block (a mapped file) */
  char *kind;
  char kind_inline[KIND_INLINE];
};

#define HDR ((sizeof(struct myelin_msg) + ALIGN - 1) & ~(size_t)(ALIGN - 1))

static inline uint8_t *align_up(void *p) {
  return (uint8_t *)(((uintptr_t)p + ALIGN - 1) & ~(uintptr_t)(ALIGN - 1));
}

/* Fills the header of a message whose bytes are already in place: right
 * after the header (bytes NULL) or elsewhere (borrowed from a backing). */
static int msg_init(myelin_msg *m, void *raw, const uint8_t *bytes, size_t len, const char *kind,
                    size_t kind_len) {
  atomic_init(&m->refs, 1);
  m->len = len;
  m->bytes = bytes ? bytes : (const uint8_t *)m + HDR;
  m->raw = raw;
  m->backing = NULL;
  atomic_init(&m->parsed, NULL);
  m->side_lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
  m->side = NULL;
  m->kind = m->kind_inline;
  if (kind_len >= KIND_INLINE) {
    m->kind = malloc(kind_len + 1);
    if (!m->kind) return MYELIN_ENOMEM;
  }
  memcpy(m->kind, kind, kind_len);
  m->kind[kind_len] = 0;
  return 0;
}

myelin_msg *myelin_msg_ref(myelin_msg *m) {
  if (m) atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
  return m;
}

static void free_parsed(msgpack_unpacked *p) {
  msgpack_unpacked tmp = *p; /* p itself lives in the zone being freed */
  msgpack_unpacked_destroy(&tmp);
}

void myelin_msg_unref(myelin_msg *m) {
  if (!m) return;
  if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_release) != 1) return;
  atomic_thread_fence(memory_order_acquire);
  msgpack_unpacked *p = atomic_load_explicit(&m->parsed, memory_order_relaxed);
  if (p) free_parsed(p);
  for (side_buf *s = m->side, *next; s; s = next) {
    next = s->next;
    free(s->raw);
    free(s);
  }
  pthread_mutex_destroy(&m->side_lock);
  if (m->kind != m->kind_inline) free(m->kind);
  msg_backing_unref(m->backing);
  free(m->raw);
}

void msg_backing_init(msg_backing *b, void (*release)(msg_backing *b)) {
  atomic_init(&b->refs, 1);
  b->release = release;
}

void msg_backing_unref(msg_backing *b) {
  if (!b || atomic_fetch_sub_explicit(&b->refs, 1, memory_order_release) != 1) return;
  atomic_thread_fence(memory_order_acquire);
  b->release(b);
}

const uint8_t *myelin_msg_bytes(const myelin_msg *m, size_t *len) {
  if (len) *len = m ? m->len : 0;
  return m ? m->bytes : NULL;
}

const char *myelin_msg_kind(const myelin_msg *m) { return m ? m->kind : ""; }

/* ---- scanning ------------------------------------------------------------ */

static inline uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

enum { V_SCALAR, V_ARRAY, V_MAP, V_BAD };

/* Reads the header of the value at p. *hlen = header bytes, *skip = payload
 * bytes after the header, *n = entries for arrays/maps. Returns V_* or, when
 * fewer than *hlen bytes are available, sets *hlen and returns -1. */
static inline int value_head(const uint8_t *p, size_t avail, size_t *hlen, uint64_t *skip, uint64_t *n) {
  uint8_t b = p[0];
  *skip = 0;
  *n = 0;
  *hlen = 1;
  if (b <= 0x7f || b >= 0xe0) return V_SCALAR;
  if (b <= 0x8f) return *n = b & 15, V_MAP;
  if (b <= 0x9f) return *n = b & 15, V_ARRAY;
  if (b <= 0xbf) return *skip = b & 31, V_SCALAR;
  static const uint8_t fixed[] = {
      /* payload bytes after the type byte for 0xc0..0xdf, 0xff = variable/bad */
      0, 0xff, 0, 0,       /* nil, never used, false, true */
      0xff, 0xff, 0xff,    /* bin8/16/32 */
      0xff, 0xff, 0xff,    /* ext8/16/32 */
      4, 8,                /* float32/64 */
      1, 2, 4, 8,          /* uint8..64 */
      1, 2, 4, 8,          /* int8..64 */
      2, 3, 5, 9, 17,      /* fixext 1,2,4,8,16 (type byte + data) */
      0xff, 0xff, 0xff,    /* str8/16/32 */
      0xff, 0xff,          /* array16/32 */
      0xff, 0xff           /* map16/32 */
  };
  uint8_t f = fixed[b - 0xc0];
  if (b == 0xc1) return V_BAD;
  if (f != 0xff) return *skip = f, V_SCALAR;
  size_t w; /* width of the length field */
  int type = V_SCALAR;
  size_t extra = 0; /* ext type byte */
  switch (b) {
  case 0xc4: case 0xd9: w = 1; break;
  case 0xc5: case 0xda: w = 2; break;
  case 0xc6: case 0xdb: w = 4; break;
  case 0xc7: w = 1, extra = 1; break;
  case 0xc8: w = 2, extra = 1; break;
  case 0xc9: w = 4, extra = 1; break;
  case 0xdc: w = 2, type = V_ARRAY; break;
  case 0xdd: w = 4, type = V_ARRAY; break;
  case 0xde: w = 2, type = V_MAP; break;
  default: w = 4, type = V_MAP; break; /* 0xdf */
  }
  *hlen = 1 + w + extra;
  if (avail < 1 + w) return -1;
  uint64_t v = w == 1 ? p[1] : w == 2 ? be16(p + 1) : be32(p + 1);
  if (type == V_SCALAR) *skip = v;
  else *n = v;
  return type;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || !errlen) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* 1 when p[0..avail) starts with the str "kind" (any str encoding). */
static inline int is_kind_key(const uint8_t *p, size_t avail) {
  if (avail >= 5 && p[0] == 0xa4) return memcmp(p + 1, "kind", 4) == 0;
  if (avail >= 6 && p[0] == 0xd9 && p[1] == 4) return memcmp(p + 2, "kind", 4) == 0;
  if (avail >= 7 && p[0] == 0xda && be16(p + 1) == 4) return memcmp(p + 3, "kind", 4) == 0;
  if (avail >= 9 && p[0] == 0xdb && be32(p + 1) == 4) return memcmp(p + 5, "kind", 4) == 0;
  return 0;
}

/* The length scanner behind measure and decode. When kind_off is not NULL
 * and the value is a map, also records the offset of the value of its first
 * "kind" key (SIZE_MAX if none), so decoding needs one pass only. */
static int scan(const uint8_t *p, size_t len, size_t max_bytes, size_t *used, size_t *kind_off,
                char *err, size_t errlen) {
  uint64_t left[MYELIN_MAX_DEPTH];
  uint64_t root_items = 0;
  int depth = 0, kind_next = 0;
  size_t pos = 0;
  if (max_bytes == 0) max_bytes = MYELIN_DEFAULT_MAX_MESSAGE;
  if (used) *used = 0;
  if (kind_off) *kind_off = SIZE_MAX;
  if (!p && len) return set_err(err, errlen, "NULL buffer"), MYELIN_EINVAL;
  for (;;) {
    if (pos >= len) goto again;
    if (depth == 1 && root_items) { /* an entry of the root map */
      if (((root_items - left[0]) & 1) == 0) kind_next = is_kind_key(p + pos, len - pos);
      else if (kind_next && *kind_off == SIZE_MAX) *kind_off = pos, kind_next = 0;
    }
    size_t hlen;
    uint64_t skip, n;
    int t = value_head(p + pos, len - pos, &hlen, &skip, &n);
    if (t == V_BAD) {
      set_err(err, errlen, "byte %zu: invalid msgpack type byte 0x%02x", pos, p[pos]);
      return MYELIN_EFORMAT;
    }
    uint64_t end = (uint64_t)pos + hlen + skip;
    if (end > max_bytes) {
      set_err(err, errlen, "byte %zu: message of at least %llu bytes exceeds the limit of %zu bytes",
              pos, (unsigned long long)end, max_bytes);
      return MYELIN_ERANGE;
    }
    if (t < 0 || end > len) goto again;
    if (t == V_ARRAY || t == V_MAP) {
      if (depth == MYELIN_MAX_DEPTH) {
        set_err(err, errlen, "byte %zu: nesting deeper than %d maps/arrays", pos, MYELIN_MAX_DEPTH);
        return MYELIN_ERANGE;
      }
      if (n > 0) {
        left[depth] = t == V_MAP ? 2 * n : n;
        if (depth == 0 && t == V_MAP && kind_off) root_items = left[0];
        depth++;
        pos = (size_t)end;
        continue;
      }
    }
    pos = (size_t)end;
    while (depth > 0 && --left[depth - 1] == 0) depth--;
    if (depth == 0) {
      if (used) *used = pos;
      return 0;
    }
  }
again:
  set_err(err, errlen, "incomplete msgpack value: %zu bytes so far", len);
  return MYELIN_EAGAIN;
}

int myelin_msgpack_measure(const void *buf, size_t len, size_t max_bytes, size_t *used,
                           char *err, size_t errlen) {
  return scan(buf, len, max_bytes, used, NULL, err, errlen);
}

/* A str at p (known complete). Returns 1 and sets *s and *n, 0 if not a str. */
static int str_at(const uint8_t *p, const uint8_t **s, size_t *n) {
  uint8_t b = p[0];
  if (b >= 0xa0 && b <= 0xbf) return *n = b & 31, *s = p + 1, 1;
  if (b == 0xd9) return *n = p[1], *s = p + 2, 1;
  if (b == 0xda) return *n = be16(p + 1), *s = p + 3, 1;
  if (b == 0xdb) return *n = be32(p + 1), *s = p + 5, 1;
  return 0;
}

/* ---- re-aligning padded payloads (internal.h) ---------------------------- */

/* A "_pad" map key at p[pos] with a bin8 value and, as the next entry, a key
 * whose value is a bin: fills *pad and returns 1. */
static int pad_at(const uint8_t *p, size_t len, size_t pos, msg_pad *pad) {
  if (len - pos < 7 || p[pos] != 0xa4 || memcmp(p + pos + 1, "_pad", 4) || p[pos + 5] != 0xc4) return 0;
  size_t k = p[pos + 6], e = pos + 7 + k; /* end of the pad entry */
  size_t hlen;
  uint64_t skip, n;
  if (e >= len || value_head(p + e, len - e, &hlen, &skip, &n) != V_SCALAR) return 0;
  uint8_t kb = p[e];
  if (!((kb >= 0xa0 && kb <= 0xbf) || (kb >= 0xd9 && kb <= 0xdb))) return 0; /* key: a str */
  size_t q = e + hlen + (size_t)skip;
  if (q >= len || p[q] < 0xc4 || p[q] > 0xc6) return 0; /* value: a bin */
  size_t w = p[q] == 0xc4 ? 1 : p[q] == 0xc5 ? 2 : 4;
  pad->hdr = pos + 5;
  pad->k = (uint8_t)k;
  pad->gap = q + 1 + w - e;
  return 1;
}

/* The pads of the message p[0..len), in byte order, up to max; returns how
 * many there are (or 1 at the first one, with first_only). */
static size_t pads_scan(const uint8_t *p, size_t len, msg_pad *out, size_t max, int first_only) {
  size_t pos = 0, n = 0;
  uint64_t left[MYELIN_MAX_DEPTH];
  int is_map[MYELIN_MAX_DEPTH], depth = 0;
  if (len < PAD_MIN) return 0; /* the builder pads payloads of PAD_MIN bytes and more only */
  while (pos < len) {
    msg_pad pad;
    if (depth && is_map[depth - 1] && (left[depth - 1] & 1) == 0 && pad_at(p, len, pos, &pad)) {
      if (n < max) out[n] = pad;
      if (++n && first_only) break;
    }
    size_t hlen;
    uint64_t skip, cnt;
    int t = value_head(p + pos, len - pos, &hlen, &skip, &cnt);
    if (t < 0 || t == V_BAD || hlen + skip > len - pos) break; /* not in a decoded message */
    pos += hlen + (size_t)skip;
    if ((t == V_ARRAY || t == V_MAP) && cnt) {
      if (depth == MYELIN_MAX_DEPTH) break;
      left[depth] = t == V_MAP ? 2 * cnt : cnt;
      is_map[depth++] = t == V_MAP;
      continue;
    }
    while (depth > 0 && --left[depth - 1] == 0)
      depth--;
    if (depth == 0) break;
  }
  return n;
}

size_t msg_pads(const myelin_msg *m, msg_pad *out, size_t max) {
  return pads_scan(m->bytes, m->len, out, max, 0);
}

/* Where (0..ALIGN-1 bytes past an aligned address) a copy of the message at
 * p must start for its padded payloads to be 64-byte aligned: 0 for a
 * builder's message, the file offset's phase for one a writer re-aligned in
 * a stream file (writer.c). All pads of a message share the phase. */
static size_t copy_phase(const uint8_t *p, size_t len) {
  msg_pad pad;
  if (!pads_scan(p, len, &pad, 1, 1)) return 0;
  return (ALIGN - (pad.hdr + 2 + pad.k + pad.gap) % ALIGN) % ALIGN;
}

int msg_decode_in(const void *buf, size_t len, size_t max_bytes, msg_backing *backing, size_t borrow_min,
                  myelin_msg **out, size_t *used, char *err, size_t errlen) {
  size_t total;
  if (out) *out = NULL;
  if (used) *used = 0;
  if (!out) return set_err(err, errlen, "NULL output"), MYELIN_EINVAL;
  size_t kind_off;
  int rc = scan(buf, len, max_bytes, &total, &kind_off, err, errlen);
  if (rc) return rc;
  const uint8_t *p = buf, *kind;
  size_t kind_len;
  if (!((p[0] >= 0x80 && p[0] <= 0x8f) || p[0] == 0xde || p[0] == 0xdf)) {
    set_err(err, errlen, "byte 0: message is not a msgpack map (type byte 0x%02x)", p[0]);
    return MYELIN_EFORMAT;
  }
  if (kind_off == SIZE_MAX) return set_err(err, errlen, "message has no 'kind' field"), MYELIN_EFORMAT;
  if (!str_at(p + kind_off, &kind, &kind_len)) {
    set_err(err, errlen, "byte %zu: field 'kind' is not a string", kind_off);
    return MYELIN_EFORMAT;
  }
  int borrow = backing && total >= borrow_min;
  size_t phase = borrow ? 0 : copy_phase(p, total);
  void *raw = malloc(borrow ? sizeof(myelin_msg) : HDR + phase + total + ALIGN - 1);
  if (!raw) return set_err(err, errlen, "out of memory (%zu bytes)", total), MYELIN_ENOMEM;
  myelin_msg *m = borrow ? raw : (myelin_msg *)align_up(raw);
  uint8_t *bytes = borrow ? (uint8_t *)p : (uint8_t *)m + HDR + phase;
  if (!borrow) memcpy(bytes, buf, total);
  if (msg_init(m, raw, bytes, total, (const char *)kind, kind_len)) {
    free(raw);
    return set_err(err, errlen, "out of memory"), MYELIN_ENOMEM;
  }
  if (borrow) {
    atomic_fetch_add_explicit(&backing->refs, 1, memory_order_relaxed);
    m->backing = backing;
  }
  *out = m;
  if (used) *used = total;
  return 0;
}

int myelin_msg_decode(const void *buf, size_t len, size_t max_bytes, myelin_msg **out, size_t *used,
                      char *err, size_t errlen) {
  return msg_decode_in(buf, len, max_bytes, NULL, 0, out, used, err, errlen);
}

/* ---- object views -------------------------------------------------------- */

static inline const msgpack_object *O(myelin_obj o) { return (const msgpack_object *)o.o; }
static inline myelin_obj mkobj(const msgpack_object *p, const myelin_msg *m) {
  myelin_obj r = {p, m};
  return r;
}

/* The parsed root, built on first use and published with a CAS. */
static const msgpack_object *msg_tree(const myelin_msg *cm) {
  myelin_msg *m = (myelin_msg *)cm; /* the cache is internal, logically const */
  msgpack_unpacked *p = atomic_load_explicit(&m->parsed, memory_order_acquire);
  if (p) return &p->data;
  /* A zone sized to the message (msgpack_unpack_next would take 8 KiB even
   * for a 100-byte message, which adds up in stages that hold many). Objects
   * are 24 bytes and most take a few bytes on the wire; the zone grows if not. */
  msgpack_unpacked up;
  msgpack_unpacked_init(&up);
  size_t chunk = m->len < 4096 ? 256 + 2 * m->len : 8192;
  up.zone = msgpack_zone_new(chunk);
  if (!up.zone) return NULL;
  size_t off = 0;
  msgpack_unpack_return r =
      msgpack_unpack((const char *)m->bytes, m->len, &off, up.zone, &up.data);
  if (r != MSGPACK_UNPACK_SUCCESS && r != MSGPACK_UNPACK_EXTRA_BYTES) {
    msgpack_unpacked_destroy(&up);
    return NULL;
  }
  p = msgpack_zone_malloc(up.zone, sizeof *p);
  if (!p) {
    msgpack_unpacked_destroy(&up);
    return NULL;
  }
  *p = up;
  msgpack_unpacked *expected = NULL;
  if (!atomic_compare_exchange_strong_explicit(&m->parsed, &expected, p, memory_order_acq_rel,
                                               memory_order_acquire)) {
    free_parsed(p);
    return &expected->data;
  }
  return &p->data;
}

myelin_obj myelin_msg_root(const myelin_msg *m) {
  return mkobj(m ? msg_tree(m) : NULL, m);
}

myelin_obj myelin_msg_get(const myelin_msg *m, const char *key) {
  return myelin_obj_get(myelin_msg_root(m), key);
}

myelin_obj_type myelin_obj_type_of(myelin_obj o) {
  const msgpack_object *p = O(o);
  if (!p) return MYELIN_OBJ_NONE;
  switch (p->type) {
  case MSGPACK_OBJECT_NIL: return MYELIN_OBJ_NIL;
  case MSGPACK_OBJECT_BOOLEAN: return MYELIN_OBJ_BOOL;
  case MSGPACK_OBJECT_POSITIVE_INTEGER:
  case MSGPACK_OBJECT_NEGATIVE_INTEGER: return MYELIN_OBJ_INT;
  case MSGPACK_OBJECT_FLOAT32:
  case MSGPACK_OBJECT_FLOAT64: return MYELIN_OBJ_FLOAT;
  case MSGPACK_OBJECT_STR: return MYELIN_OBJ_STR;
  case MSGPACK_OBJECT_BIN: return MYELIN_OBJ_BIN;
  case MSGPACK_OBJECT_ARRAY: return MYELIN_OBJ_ARRAY;
  case MSGPACK_OBJECT_MAP: return MYELIN_OBJ_MAP;
  case MSGPACK_OBJECT_EXT: return MYELIN_OBJ_EXT;
  }
  return MYELIN_OBJ_NONE;
}

int myelin_obj_exists(myelin_obj o) { return O(o) != NULL; }

static int str_is(const msgpack_object *p, const char *s, size_t n) {
  return p->type == MSGPACK_OBJECT_STR && p->via.str.size == n && memcmp(p->via.str.ptr, s, n) == 0;
}

myelin_obj myelin_obj_get(myelin_obj map, const char *key) {
  const msgpack_object *p = O(map);
  if (!p || p->type != MSGPACK_OBJECT_MAP || !key) return mkobj(NULL, map.msg);
  size_t n = strlen(key);
  for (uint32_t i = 0; i < p->via.map.size; i++)
    if (str_is(&p->via.map.ptr[i].key, key, n)) return mkobj(&p->via.map.ptr[i].val, map.msg);
  return mkobj(NULL, map.msg);
}

size_t myelin_obj_len(myelin_obj o) {
  const msgpack_object *p = O(o);
  if (!p) return 0;
  switch (p->type) {
  case MSGPACK_OBJECT_ARRAY: return p->via.array.size;
  case MSGPACK_OBJECT_MAP: return p->via.map.size;
  case MSGPACK_OBJECT_STR: return p->via.str.size;
  case MSGPACK_OBJECT_BIN: return p->via.bin.size;
  case MSGPACK_OBJECT_EXT: return p->via.ext.size;
  default: return 0;
  }
}

myelin_obj myelin_obj_at(myelin_obj array, size_t i) {
  const msgpack_object *p = O(array);
  if (!p || p->type != MSGPACK_OBJECT_ARRAY || i >= p->via.array.size) return mkobj(NULL, array.msg);
  return mkobj(&p->via.array.ptr[i], array.msg);
}

myelin_obj myelin_obj_key_at(myelin_obj map, size_t i) {
  const msgpack_object *p = O(map);
  if (!p || p->type != MSGPACK_OBJECT_MAP || i >= p->via.map.size) return mkobj(NULL, map.msg);
  return mkobj(&p->via.map.ptr[i].key, map.msg);
}

myelin_obj myelin_obj_value_at(myelin_obj map, size_t i) {
  const msgpack_object *p = O(map);
  if (!p || p->type != MSGPACK_OBJECT_MAP || i >= p->via.map.size) return mkobj(NULL, map.msg);
  return mkobj(&p->via.map.ptr[i].val, map.msg);
}

int myelin_obj_int(myelin_obj o, int64_t *out) {
  const msgpack_object *p = O(o);
  if (!p) return MYELIN_ENOENT;
  if (p->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) return *out = p->via.i64, 0;
  if (p->type == MSGPACK_OBJECT_POSITIVE_INTEGER && p->via.u64 <= (uint64_t)INT64_MAX)
    return *out = (int64_t)p->via.u64, 0;
  return MYELIN_ETYPE;
}

int myelin_obj_uint(myelin_obj o, uint64_t *out) {
  const msgpack_object *p = O(o);
  if (!p) return MYELIN_ENOENT;
  if (p->type == MSGPACK_OBJECT_POSITIVE_INTEGER) return *out = p->via.u64, 0;
  return MYELIN_ETYPE;
}

int myelin_obj_float(myelin_obj o, double *out) {
  const msgpack_object *p = O(o);
  if (!p) return MYELIN_ENOENT;
  switch (p->type) {
  case MSGPACK_OBJECT_FLOAT32:
  case MSGPACK_OBJECT_FLOAT64: *out = p->via.f64; return 0;
  case MSGPACK_OBJECT_POSITIVE_INTEGER: *out = (double)p->via.u64; return 0;
  case MSGPACK_OBJECT_NEGATIVE_INTEGER: *out = (double)p->via.i64; return 0;
  default: return MYELIN_ETYPE;
  }
}

int myelin_obj_bool(myelin_obj o, int *out) {
  const msgpack_object *p = O(o);
  if (!p) return MYELIN_ENOENT;
  if (p->type != MSGPACK_OBJECT_BOOLEAN) return MYELIN_ETYPE;
  *out = p->via.boolean ? 1 : 0;
  return 0;
}

const char *myelin_obj_str(myelin_obj o, size_t *len) {
  const msgpack_object *p = O(o);
  if (!p || p->type != MSGPACK_OBJECT_STR) {
    if (len) *len = 0;
    return NULL;
  }
  if (len) *len = p->via.str.size;
  return p->via.str.size ? p->via.str.ptr : "";
}

int myelin_obj_str_eq(myelin_obj o, const char *s) {
  const msgpack_object *p = O(o);
  return p && s && str_is(p, s, strlen(s));
}

int myelin_obj_str_copy(myelin_obj o, char *buf, size_t n) {
  const msgpack_object *p = O(o);
  if (!p) return MYELIN_ENOENT;
  if (p->type != MSGPACK_OBJECT_STR) return MYELIN_ETYPE;
  if (!buf || p->via.str.size >= n) return MYELIN_ERANGE;
  if (p->via.str.size) memcpy(buf, p->via.str.ptr, p->via.str.size);
  buf[p->via.str.size] = 0;
  return 0;
}

const void *myelin_obj_bin(myelin_obj o, size_t *len) {
  const msgpack_object *p = O(o);
  if (!p || p->type != MSGPACK_OBJECT_BIN) {
    if (len) *len = 0;
    return NULL;
  }
  if (len) *len = p->via.bin.size;
  return p->via.bin.ptr;
}

/* An aligned copy of a misaligned payload, made once per message. */
static const void *side_copy(const myelin_msg *cm, const void *src, size_t n) {
  myelin_msg *m = (myelin_msg *)cm;
  if (!m) return NULL;
  pthread_mutex_lock(&m->side_lock);
  side_buf *s;
  for (s = m->side; s; s = s->next)
    if (s->src == src) break;
  if (!s && (s = malloc(sizeof *s)) != NULL) {
    s->raw = malloc(n + ALIGN);
    if (!s->raw) {
      free(s);
      s = NULL;
    } else {
      s->src = src;
      s->data = align_up(s->raw);
      memcpy(s->data, src, n);
      s->next = m->side;
      m->side = s;
    }
  }
  pthread_mutex_unlock(&m->side_lock);
  return s ? s->data : NULL;
}

int myelin_obj_tensor(myelin_obj o, myelin_tensor *t) {
  const msgpack_object *p = O(o);
  memset(t, 0, sizeof *t);
  if (!p) return MYELIN_ENOENT;
  if (p->type != MSGPACK_OBJECT_MAP) return MYELIN_ETYPE;
  const msgpack_object *dt = O(myelin_obj_get(o, "dtype"));
  const msgpack_object *sh = O(myelin_obj_get(o, "shape"));
  const msgpack_object *da = O(myelin_obj_get(o, "data"));
  if (!dt || !sh || !da || dt->type != MSGPACK_OBJECT_STR || sh->type != MSGPACK_OBJECT_ARRAY ||
      da->type != MSGPACK_OBJECT_BIN)
    return MYELIN_EFORMAT;
  myelin_dtype d = myelin_dtype_parse(dt->via.str.ptr, dt->via.str.size);
  if (d == MYELIN_DTYPE_INVALID || sh->via.array.size > MYELIN_MAX_NDIM) return MYELIN_EFORMAT;
  size_t count = 1, esize = myelin_dtype_size(d);
  for (uint32_t i = 0; i < sh->via.array.size; i++) {
    const msgpack_object *e = &sh->via.array.ptr[i];
    if (e->type != MSGPACK_OBJECT_POSITIVE_INTEGER || e->via.u64 > (uint64_t)INT64_MAX ||
        e->via.u64 > SIZE_MAX || __builtin_mul_overflow(count, (size_t)e->via.u64, &count))
      return MYELIN_EFORMAT;
    t->shape[i] = (int64_t)e->via.u64;
  }
  size_t nbytes;
  if (__builtin_mul_overflow(count, esize, &nbytes) || nbytes != da->via.bin.size)
    return MYELIN_EFORMAT;
  const void *data = da->via.bin.ptr;
  if (!nbytes) {
    static const _Alignas(ALIGN) uint8_t empty_payload[ALIGN]; /* immutable */
    data = empty_payload;
  } else if ((uintptr_t)data % esize) {
    data = side_copy(o.msg, data, nbytes);
    if (!data) return MYELIN_EFORMAT; /* out of memory or a view outside any message */
  }
  t->dtype = d;
  t->ndim = (int)sh->via.array.size;
  t->count = count;
  t->nbytes = nbytes;
  t->data = data;
  return 0;
}

int myelin_msg_int(const myelin_msg *m, const char *key, int64_t *out) {
  return myelin_obj_int(myelin_msg_get(m, key), out);
}
int myelin_msg_uint(const myelin_msg *m, const char *key, uint64_t *out) {
  return myelin_obj_uint(myelin_msg_get(m, key), out);
}
int myelin_msg_float(const myelin_msg *m, const char *key, double *out) {
  return myelin_obj_float(myelin_msg_get(m, key), out);
}
int myelin_msg_str(const myelin_msg *m, const char *key, char *buf, size_t n) {
  return myelin_obj_str_copy(myelin_msg_get(m, key), buf, n);
}
int myelin_msg_tensor(const myelin_msg *m, const char *key, myelin_tensor *t) {
  return myelin_obj_tensor(myelin_msg_get(m, key), t);
}

/* ---- building ------------------------------------------------------------ */

#define BUILDER_INITIAL 448 /* bytes of payload room: header + this fits glibc's tcache */

typedef struct frame {
  size_t off;     /* offset of the map32/array32 header */
  uint64_t count; /* entries written (pairs for maps) */
  int is_map;
} frame;

struct myelin_builder {
  uint8_t *buf;    /* where the bytes start: raw + base_off + HDR */
  uint8_t *raw;    /* malloc'ed block */
  size_t base_off; /* aligned header start = raw + base_off */
  size_t cap;      /* room for bytes after the header */
  size_t pos;      /* bytes written */
  int status;
  int depth;
  size_t kind_off, kind_len;
  frame stack[MYELIN_MAX_DEPTH];
};

static inline uint8_t *bbuf(myelin_builder *b) { return b->buf; }

static void fail(myelin_builder *b, int code) {
  if (!b->status) b->status = code;
}

/* Resizes the block to hold cap bytes, keeping the header 64-byte aligned. */
static int block_resize(myelin_builder *b, size_t cap) {
  size_t total;
  if (__builtin_add_overflow(cap, HDR + ALIGN - 1, &total)) return MYELIN_ENOMEM;
  uint8_t *raw = realloc(b->raw, total);
  if (!raw) return MYELIN_ENOMEM;
  size_t off = (size_t)(align_up(raw) - raw);
  if (off != b->base_off) memmove(raw + off, raw + b->base_off, HDR + b->pos);
  b->raw = raw;
  b->base_off = off;
  b->buf = raw + off + HDR;
  b->cap = cap;
  return 0;
}

static uint8_t *reserve_slow(myelin_builder *b, size_t n) {
  if (b->status) return NULL;
  size_t need, cap = b->cap * 2;
  if (__builtin_add_overflow(b->pos, n, &need)) return fail(b, MYELIN_ENOMEM), NULL;
  if (cap < need) cap = need;
  int rc = block_resize(b, cap);
  if (rc) return fail(b, rc), NULL;
  return b->buf + b->pos;
}

int myelin_builder_reserve(myelin_builder *b, size_t bytes) {
  size_t need;
  if (!b || b->status) return b ? b->status : MYELIN_EINVAL;
  if (__builtin_add_overflow(b->pos, bytes, &need)) return MYELIN_ENOMEM;
  return need <= b->cap ? 0 : block_resize(b, need);
}

/* Makes room for n more bytes; returns the write pointer or NULL (sticky).
 * Inlined: the common case is one compare. */
static inline uint8_t *reserve(myelin_builder *b, size_t n) {
  if (__builtin_expect(n <= b->cap - b->pos && !b->status, 1)) return b->buf + b->pos;
  return reserve_slow(b, n);
}

static inline void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8), p[1] = (uint8_t)v; }
static inline void wr32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}
static inline void wr64(uint8_t *p, uint64_t v) {
  wr32(p, (uint32_t)(v >> 32));
  wr32(p + 4, (uint32_t)v);
}

static inline void put_raw(myelin_builder *b, const void *src, size_t n) {
  uint8_t *w = reserve(b, n);
  if (!w) return;
  if (n) memcpy(w, src, n);
  b->pos += n;
}

static inline void put_byte(myelin_builder *b, uint8_t v) {
  uint8_t *w = reserve(b, 1);
  if (w) *w = v, b->pos++;
}

/* A type byte followed by a big-endian length field of w bytes. */
static inline void put_len(myelin_builder *b, uint8_t type, int w, uint64_t v) {
  uint8_t *p = reserve(b, 1 + (size_t)w);
  if (!p) return;
  p[0] = type;
  if (w == 1) p[1] = (uint8_t)v;
  else if (w == 2) wr16(p + 1, (uint16_t)v);
  else if (w == 4) wr32(p + 1, (uint32_t)v);
  else wr64(p + 1, v);
  b->pos += 1 + (size_t)w;
}

static inline void put_uint(myelin_builder *b, uint64_t v) {
  if (v < 128) put_byte(b, (uint8_t)v);
  else if (v <= UINT8_MAX) put_len(b, 0xcc, 1, v);
  else if (v <= UINT16_MAX) put_len(b, 0xcd, 2, v);
  else if (v <= UINT32_MAX) put_len(b, 0xce, 4, v);
  else put_len(b, 0xcf, 8, v);
}

static inline void put_int(myelin_builder *b, int64_t v) {
  if (v >= 0) put_uint(b, (uint64_t)v);
  else if (v >= -32) put_byte(b, (uint8_t)(int8_t)v);
  else if (v >= INT8_MIN) put_len(b, 0xd0, 1, (uint64_t)v);
  else if (v >= INT16_MIN) put_len(b, 0xd1, 2, (uint64_t)v);
  else if (v >= INT32_MIN) put_len(b, 0xd2, 4, (uint64_t)v);
  else put_len(b, 0xd3, 8, (uint64_t)v);
}

static inline void put_f64(myelin_builder *b, double v) {
  uint64_t u;
  memcpy(&u, &v, 8);
  put_len(b, 0xcb, 8, u);
}

static void put_f32(myelin_builder *b, float v) {
  uint32_t u;
  memcpy(&u, &v, 4);
  put_len(b, 0xca, 4, u);
}

static inline void put_str(myelin_builder *b, const char *s, size_t n) {
  if (n > UINT32_MAX) { fail(b, MYELIN_ERANGE); return; }
  if (n < 32) put_byte(b, (uint8_t)(0xa0 | n));
  else if (n <= UINT8_MAX) put_len(b, 0xd9, 1, n);
  else if (n <= UINT16_MAX) put_len(b, 0xda, 2, n);
  else put_len(b, 0xdb, 4, n);
  put_raw(b, s, n);
}

static inline void put_bin_head(myelin_builder *b, size_t n) {
  if (n > UINT32_MAX) { fail(b, MYELIN_ERANGE); return; }
  if (n <= UINT8_MAX) put_len(b, 0xc4, 1, n);
  else if (n <= UINT16_MAX) put_len(b, 0xc5, 2, n);
  else put_len(b, 0xc6, 4, n);
}

static void put_ext(myelin_builder *b, int8_t type, const void *p, size_t n) {
  if (n > UINT32_MAX) { fail(b, MYELIN_ERANGE); return; }
  switch (n) {
  case 1: put_byte(b, 0xd4); break;
  case 2: put_byte(b, 0xd5); break;
  case 4: put_byte(b, 0xd6); break;
  case 8: put_byte(b, 0xd7); break;
  case 16: put_byte(b, 0xd8); break;
  default:
    if (n <= UINT8_MAX) put_len(b, 0xc7, 1, n);
    else if (n <= UINT16_MAX) put_len(b, 0xc8, 2, n);
    else put_len(b, 0xc9, 4, n);
  }
  put_byte(b, (uint8_t)type);
  put_raw(b, p, n);
}

/* Starts a value in the open container: checks key use, counts the entry and
 * writes the key. Returns 0 when the value must not be written. */
static inline int open_slot(myelin_builder *b, const char *key) {
  if (!b || b->status) return 0;
  frame *f = &b->stack[b->depth - 1];
  if (f->is_map != (key != NULL)) return fail(b, MYELIN_EINVAL), 0;
  if (f->count == UINT32_MAX) return fail(b, MYELIN_ERANGE), 0;
  f->count++;
  if (key) put_str(b, key, strlen(key));
  return !b->status;
}

myelin_builder *myelin_builder_new(const char *kind) {
  myelin_builder *b = malloc(sizeof *b);
  if (!b) return NULL;
  b->raw = NULL;
  b->base_off = 0;
  b->pos = 0;
  b->status = 0;
  if (block_resize(b, BUILDER_INITIAL)) {
    free(b);
    return NULL;
  }
  if (!kind) kind = "";
  b->depth = 1;
  b->stack[0] = (frame){0, 0, 1};
  put_len(b, 0xdf, 4, 0);
  open_slot(b, "kind");
  size_t n = strlen(kind);
  put_str(b, kind, n);
  b->kind_len = n;
  b->kind_off = b->pos - n;
  if (b->status) {
    myelin_builder_free(b);
    return NULL;
  }
  return b;
}

void myelin_builder_free(myelin_builder *b) {
  if (!b) return;
  free(b->raw);
  free(b);
}

int myelin_builder_status(const myelin_builder *b) { return b ? b->status : MYELIN_EINVAL; }

myelin_msg *myelin_builder_finish(myelin_builder *b) {
  if (!b) return NULL;
  if (!b->status && b->depth != 1) fail(b, MYELIN_EINVAL);
  if (!b->status && b->cap - b->pos > 65536 && b->cap - b->pos > b->pos / 4)
    block_resize(b, b->pos); /* give back growth slack; failure is harmless */
  if (b->status) {
    myelin_builder_free(b);
    return NULL;
  }
  uint8_t *buf = bbuf(b);
  wr32(buf + 1, (uint32_t)b->stack[0].count);
  myelin_msg *m = (myelin_msg *)(b->raw + b->base_off);
  if (msg_init(m, b->raw, NULL, b->pos, (const char *)buf + b->kind_off, b->kind_len)) {
    myelin_builder_free(b);
    return NULL;
  }
  free(b);
  return m;
}

void myelin_build_nil(myelin_builder *b, const char *key) {
  if (open_slot(b, key)) put_byte(b, 0xc0);
}
void myelin_build_bool(myelin_builder *b, const char *key, int v) {
  if (open_slot(b, key)) put_byte(b, v ? 0xc3 : 0xc2);
}
void myelin_build_int(myelin_builder *b, const char *key, int64_t v) {
  if (open_slot(b, key)) put_int(b, v);
}
void myelin_build_uint(myelin_builder *b, const char *key, uint64_t v) {
  if (open_slot(b, key)) put_uint(b, v);
}
void myelin_build_float(myelin_builder *b, const char *key, double v) {
  if (open_slot(b, key)) put_f64(b, v);
}
void myelin_build_str(myelin_builder *b, const char *key, const char *s) {
  if (b && !s) { fail(b, MYELIN_EINVAL); return; }
  if (open_slot(b, key)) put_str(b, s, strlen(s));
}
void myelin_build_strn(myelin_builder *b, const char *key, const char *s, size_t n) {
  if (b && !s && n) { fail(b, MYELIN_EINVAL); return; }
  if (open_slot(b, key)) put_str(b, s, n);
}
void myelin_build_bin(myelin_builder *b, const char *key, const void *p, size_t n) {
  if (b && !p && n) { fail(b, MYELIN_EINVAL); return; }
  if (!open_slot(b, key)) return;
  put_bin_head(b, n);
  put_raw(b, p, n);
}

static void open_container(myelin_builder *b, const char *key, int is_map) {
  if (b && !b->status && b->depth == MYELIN_MAX_DEPTH) { fail(b, MYELIN_ERANGE); return; }
  if (!open_slot(b, key)) return;
  b->stack[b->depth++] = (frame){b->pos, 0, is_map};
  put_len(b, is_map ? 0xdf : 0xdd, 4, 0);
}

static void close_container(myelin_builder *b, int is_map) {
  if (!b || b->status) return;
  frame *f = &b->stack[b->depth - 1];
  if (b->depth == 1 || f->is_map != is_map) { fail(b, MYELIN_EINVAL); return; }
  wr32(bbuf(b) + f->off + 1, (uint32_t)f->count);
  b->depth--;
}

void myelin_build_map_begin(myelin_builder *b, const char *key) { open_container(b, key, 1); }
void myelin_build_map_end(myelin_builder *b) { close_container(b, 1); }
void myelin_build_array_begin(myelin_builder *b, const char *key) { open_container(b, key, 0); }
void myelin_build_array_end(myelin_builder *b) { close_container(b, 0); }

/* Checks a tensor description; returns its byte size or sets an error. */
static int tensor_nbytes(myelin_dtype dtype, int ndim, const int64_t *shape, size_t *nbytes) {
  size_t n = myelin_dtype_size(dtype);
  if (!n || ndim < 0 || ndim > MYELIN_MAX_NDIM || (ndim && !shape)) return MYELIN_EINVAL;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0) return MYELIN_EINVAL;
    if ((uint64_t)shape[i] > SIZE_MAX || __builtin_mul_overflow(n, (size_t)shape[i], &n))
      return MYELIN_ERANGE;
  }
  if (n > UINT32_MAX) return MYELIN_ERANGE;
  *nbytes = n;
  return 0;
}

/* Tensor payload alignment. A payload of at least PAD_MIN bytes starts at a
 * multiple of 64 (a cache line, the widest SIMD load): a "_pad" bin entry in
 * the tensor map fills the gap, at most 70 bytes, under 2% of such a payload.
 * Smaller payloads carry no "_pad" key (it would often outweigh the data):
 * they start at a multiple of 8 — every dtype's element size, so they are
 * still read in place — by choosing among valid msgpack encodings of the same
 * values: the shape array header (fixarray/array16/array32), the "data" key
 * (fixstr/str8/str16/str32) and the bin header (bin8/bin16/bin32). Some
 * combination always ends on a multiple of 8. */
#define SMALL_ALIGN 8

static const uint8_t data_keys[4][10] = {{5, 0xa4, 'd', 'a', 't', 'a'},
                                         {6, 0xd9, 4, 'd', 'a', 't', 'a'},
                                         {7, 0xda, 0, 4, 'd', 'a', 't', 'a'},
                                         {9, 0xdb, 0, 0, 0, 4, 'd', 'a', 't', 'a'}};

/* Header encodings for a small payload at pos: the extra bytes of a wider
 * shape array header (0, 2 or 4), the data key (index into data_keys) and the
 * bin length width (1, 2 or 4) so that the payload lands on SMALL_ALIGN. */
static void small_layout(size_t pos, size_t nbytes, int *extra, int *key, int *width) {
  static const int widths[3] = {1, 2, 4};
  for (int e = 0; e <= 4; e += 2)
    for (int k = 0; k < 4; k++)
      for (int w = 0; w < 3; w++) {
        if ((w == 0 && nbytes > 0xff) || (w == 1 && nbytes > 0xffff)) continue;
        if ((pos + (size_t)e + data_keys[k][0] + 1 + (size_t)widths[w]) % SMALL_ALIGN) continue;
        *extra = e, *key = k, *width = widths[w];
        return;
      }
  *extra = 0, *key = 0, *width = 4; /* not reached: some combination always fits */
}

/* Writes the tensor map at the current position (slot already opened). */
static void *put_tensor(myelin_builder *b, myelin_dtype dtype, int ndim, const int64_t *shape,
                        size_t nbytes) {
  size_t map_at = b->pos;
  put_byte(b, 0x83);
  put_raw(b, "\xa5" "dtype", 6);
  put_str(b, myelin_dtype_name(dtype), 3);
  put_raw(b, "\xa5" "shape", 6);
  size_t shape_at = b->pos;
  put_byte(b, (uint8_t)(0x90 | ndim));
  for (int i = 0; i < ndim; i++) put_uint(b, (uint64_t)shape[i]);
  if (b->status) return NULL;
  if (nbytes >= PAD_MIN) {
    /* "_pad" key + bin8 header (7) + k bytes + "data" key (5) + bin32
     * header (5) end on a multiple of 64. The pad is written even when k is
     * 0, so that a writer placing the message at another offset (file_sink,
     * msg_pads) can re-size it and keep the payload aligned there. */
    size_t k = (ALIGN - (b->pos + 7 + 10) % ALIGN) % ALIGN;
    uint8_t *w = reserve(b, 7 + k);
    if (!w) return NULL;
    memcpy(w,
           "\xa4"
           "_pad"
           "\xc4",
           6);
    w[6] = (uint8_t)k;
    memset(w + 7, 0, k);
    b->pos += 7 + k;
    bbuf(b)[map_at] = 0x84;
    put_raw(b, "\xa4" "data", 5);
    put_len(b, 0xc6, 4, nbytes);
  } else {
    int extra, key, width;
    small_layout(b->pos, nbytes, &extra, &key, &width);
    if (extra) { /* widen the shape header: array16 (0xdc) or array32 (0xdd) */
      if (!reserve(b, (size_t)extra)) return NULL;
      uint8_t *a = bbuf(b) + shape_at;
      memmove(a + 1 + extra, a + 1, b->pos - shape_at - 1);
      a[0] = extra == 2 ? 0xdc : 0xdd;
      if (extra == 2)
        wr16(a + 1, (uint16_t)ndim);
      else
        wr32(a + 1, (uint32_t)ndim);
      b->pos += (size_t)extra;
    }
    put_raw(b, data_keys[key] + 1, data_keys[key][0]);
    put_len(b, (uint8_t)(width == 1 ? 0xc4 : width == 2 ? 0xc5 : 0xc6), width, nbytes);
  }
  uint8_t *payload = reserve(b, nbytes);
  if (!payload) return NULL;
  b->pos += nbytes;
  return payload;
}

void *myelin_build_tensor(myelin_builder *b, const char *key, myelin_dtype dtype, int ndim,
                          const int64_t *shape) {
  size_t nbytes;
  if (!b || b->status) return NULL;
  int rc = tensor_nbytes(dtype, ndim, shape, &nbytes);
  if (rc) return fail(b, rc), NULL;
  if (b->depth + 2 > MYELIN_MAX_DEPTH) return fail(b, MYELIN_ERANGE), NULL;
  if (!open_slot(b, key)) return NULL;
  return put_tensor(b, dtype, ndim, shape, nbytes);
}

void myelin_build_tensor_copy(myelin_builder *b, const char *key, myelin_dtype dtype, int ndim,
                              const int64_t *shape, const void *src) {
  void *p = myelin_build_tensor(b, key, dtype, ndim, shape);
  if (!p) return;
  size_t n = myelin_dtype_size(dtype);
  for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
  if (n && !src) { fail(b, MYELIN_EINVAL); return; }
  if (n) memcpy(p, src, n);
}

void myelin_build_tensor_view(myelin_builder *b, const char *key, const myelin_tensor *t) {
  if (b && !t) { fail(b, MYELIN_EINVAL); return; }
  if (t) myelin_build_tensor_copy(b, key, t->dtype, t->ndim, t->shape, t->data);
}

/* 1 when the map holds only dtype/shape/data(/_pad) and is a valid tensor:
 * such maps are re-laid out so the copy's payload is aligned too. */
static int plain_tensor(myelin_obj o, myelin_tensor *t) {
  const msgpack_object *p = O(o);
  for (uint32_t i = 0; i < p->via.map.size; i++) {
    const msgpack_object *k = &p->via.map.ptr[i].key;
    if (!str_is(k, "dtype", 5) && !str_is(k, "shape", 5) && !str_is(k, "data", 4) &&
        !str_is(k, "_pad", 4))
      return 0;
  }
  return myelin_obj_tensor(o, t) == 0;
}

/* Writes a deep copy of o; level = nesting depth the value will sit at. */
static void put_obj(myelin_builder *b, myelin_obj o, int level) {
  const msgpack_object *p = O(o);
  if (b->status) return;
  switch (p->type) {
  case MSGPACK_OBJECT_NIL: put_byte(b, 0xc0); return;
  case MSGPACK_OBJECT_BOOLEAN: put_byte(b, p->via.boolean ? 0xc3 : 0xc2); return;
  case MSGPACK_OBJECT_POSITIVE_INTEGER: put_uint(b, p->via.u64); return;
  case MSGPACK_OBJECT_NEGATIVE_INTEGER: put_int(b, p->via.i64); return;
  case MSGPACK_OBJECT_FLOAT32: put_f32(b, (float)p->via.f64); return;
  case MSGPACK_OBJECT_FLOAT64: put_f64(b, p->via.f64); return;
  case MSGPACK_OBJECT_STR: put_str(b, p->via.str.ptr, p->via.str.size); return;
  case MSGPACK_OBJECT_BIN:
    put_bin_head(b, p->via.bin.size);
    put_raw(b, p->via.bin.ptr, p->via.bin.size);
    return;
  case MSGPACK_OBJECT_EXT: put_ext(b, p->via.ext.type, p->via.ext.ptr, p->via.ext.size); return;
  case MSGPACK_OBJECT_ARRAY:
  case MSGPACK_OBJECT_MAP: break;
  }
  if (level > MYELIN_MAX_DEPTH) { fail(b, MYELIN_ERANGE); return; }
  if (p->type == MSGPACK_OBJECT_ARRAY) {
    put_len(b, 0xdd, 4, p->via.array.size);
    for (uint32_t i = 0; i < p->via.array.size; i++)
      put_obj(b, mkobj(&p->via.array.ptr[i], o.msg), level + 1);
    return;
  }
  myelin_tensor t;
  if (level + 1 <= MYELIN_MAX_DEPTH && plain_tensor(o, &t)) {
    void *dst = put_tensor(b, t.dtype, t.ndim, t.shape, t.nbytes);
    if (dst && t.nbytes) memcpy(dst, t.data, t.nbytes);
    return;
  }
  put_len(b, 0xdf, 4, p->via.map.size);
  for (uint32_t i = 0; i < p->via.map.size; i++) {
    put_obj(b, mkobj(&p->via.map.ptr[i].key, o.msg), level + 1);
    put_obj(b, mkobj(&p->via.map.ptr[i].val, o.msg), level + 1);
  }
}

void myelin_build_obj(myelin_builder *b, const char *key, myelin_obj o) {
  if (b && !b->status && !O(o)) { fail(b, MYELIN_ENOENT); return; }
  if (open_slot(b, key)) put_obj(b, o, b->depth + 1);
}

/* The last four place a stored run among all ranks' runs (fmri_source
 * `shard:`); reducing stages downstream of a transform still see them. */
const char *const myelin_context_keys[] = {"subject",       "task",   "run",       "label",
                                           "index",         "split",  "epoch",     "n_subjects",
                                           "subject_index", "n_runs", "run_index", NULL};

void myelin_build_fields(myelin_builder *b, const myelin_msg *src, const char *const *keys) {
  if (!b || !src || !keys) return;
  myelin_obj root = myelin_msg_root(src);
  for (size_t i = 0; keys[i]; i++) {
    myelin_obj v = myelin_obj_get(root, keys[i]);
    if (O(v)) myelin_build_obj(b, keys[i], v);
  }
}

void myelin_build_context(myelin_builder *b, const myelin_msg *src) {
  myelin_build_fields(b, src, myelin_context_keys);
}

void myelin_msg_text(const myelin_msg *m, const char *key, char *buf, size_t n) {
  myelin_obj o = myelin_msg_get(m, key);
  int64_t iv;
  double fv;
  if (!n) return;
  buf[0] = 0;
  if (myelin_obj_type_of(o) == MYELIN_OBJ_STR) {
    if (myelin_obj_str_copy(o, buf, n) != 0) buf[0] = 0;
  } else if (myelin_obj_int(o, &iv) == 0) {
    snprintf(buf, n, "%lld", (long long)iv);
  } else if (myelin_obj_float(o, &fv) == 0) {
    snprintf(buf, n, "%g", fv);
  }
}
