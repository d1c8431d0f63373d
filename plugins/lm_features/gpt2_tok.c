/*
 * gpt2_tok.c — the tokenizer of gpt2_tok.h.
 *
 * Two string tables, each an open-addressing hash map (FNV-1a, linear
 * probing, load <= 1/2) over strings kept in one arena: token -> id, and
 * "left right" -> merge rank. The vocabulary file is JSON and is read with
 * json-c. A piece is merged on an array of symbols (offset, length) into the
 * byte-mapped piece, so a merge only extends one symbol and removes the
 * next; the pair lookup formats "left right" into a scratch buffer. Pieces
 * repeat a lot in running text (" the", " of"), so the ids of each piece are
 * cached in a third map.
 */
#include "gpt2_tok.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <json.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "myelin/io.h"

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return -1;
}

/* ---- a string -> int32 map ------------------------------------------------------ */

typedef struct strmap {
  char **keys; /* NULL = empty slot */
  size_t *klen;
  int32_t *vals;
  size_t cap, n;
} strmap;

static uint64_t fnv(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++)
    h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  return h;
}

static int strmap_grow(strmap *m) {
  size_t cap = m->cap ? 2 * m->cap : 1024;
  strmap nm = {calloc(cap, sizeof(char *)), calloc(cap, sizeof(size_t)), calloc(cap, sizeof(int32_t)), cap,
               0};
  if (!nm.keys || !nm.klen || !nm.vals) {
    free(nm.keys), free(nm.klen), free(nm.vals);
    return -1;
  }
  for (size_t i = 0; i < m->cap; i++) {
    if (!m->keys[i]) continue;
    size_t j = fnv(m->keys[i], m->klen[i]) & (cap - 1);
    while (nm.keys[j])
      j = (j + 1) & (cap - 1);
    nm.keys[j] = m->keys[i], nm.klen[j] = m->klen[i], nm.vals[j] = m->vals[i];
    nm.n++;
  }
  free(m->keys), free(m->klen), free(m->vals);
  *m = nm;
  return 0;
}

static int32_t *strmap_find(const strmap *m, const char *s, size_t n) {
  if (!m->cap) return NULL;
  for (size_t j = fnv(s, n) & (m->cap - 1);; j = (j + 1) & (m->cap - 1)) {
    if (!m->keys[j]) return NULL;
    if (m->klen[j] == n && !memcmp(m->keys[j], s, n)) return &m->vals[j];
  }
}

/* Inserts a copy of s (or overwrites its value). -1 when out of memory. */
static int strmap_put(strmap *m, const char *s, size_t n, int32_t v) {
  int32_t *old = strmap_find(m, s, n);
  if (old) return *old = v, 0;
  if (2 * (m->n + 1) > m->cap && strmap_grow(m) != 0) return -1;
  size_t j = fnv(s, n) & (m->cap - 1);
  while (m->keys[j])
    j = (j + 1) & (m->cap - 1);
  m->keys[j] = malloc(n + 1);
  if (!m->keys[j]) return -1;
  memcpy(m->keys[j], s, n);
  m->keys[j][n] = 0;
  m->klen[j] = n, m->vals[j] = v;
  m->n++;
  return 0;
}

static void strmap_free(strmap *m) {
  for (size_t i = 0; i < m->cap; i++)
    free(m->keys[i]);
  free(m->keys), free(m->klen), free(m->vals);
  memset(m, 0, sizeof *m);
}

/* ---- the tokenizer ------------------------------------------------------------------ */

struct gpt2_tok {
  strmap vocab, ranks;
  strmap cache;       /* piece -> index into cache_ids (start), lengths in cache_len */
  int32_t *cache_ids; /* concatenated ids of cached pieces */
  size_t ncache_ids, capcache_ids;
  char byte_char[256][3]; /* bytes_to_unicode(): UTF-8 of the char of each byte */
  uint8_t byte_len[256];
  pcre2_code *re;
  pcre2_match_data *md;
};

/* OpenAI's bytes_to_unicode(): printable bytes map to themselves, the others
 * to 256, 257, ... in byte order. */
static void byte_map(gpt2_tok *t) {
  int n = 0;
  for (int b = 0; b < 256; b++) {
    int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    int cp = printable ? b : 256 + n++;
    if (cp < 0x80) {
      t->byte_char[b][0] = (char)cp;
      t->byte_len[b] = 1;
    } else {
      t->byte_char[b][0] = (char)(0xC0 | (cp >> 6));
      t->byte_char[b][1] = (char)(0x80 | (cp & 0x3F));
      t->byte_len[b] = 2;
    }
  }
}

/* Unicode White_Space (what \s means to Python's `regex`, GPT-2's reference). */
#define WS                                                                                                   \
  "\\t\\n\\x{0B}\\f\\r "                                                                                     \
  "\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
static const char pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" WS "\\p{L}\\p{N}]+|[" WS "]+(?![^" WS "])|[" WS "]+";

static int load_vocab(gpt2_tok *t, const char *path, char *err, size_t errlen) {
  uint8_t *text = NULL;
  size_t len = 0;
  char e[512];
  if (myelin_read_file(path, (size_t)1 << 30, &text, &len, e, sizeof e) != 0)
    return fail(err, errlen, "%s: %s", path, e);
  struct json_tokener *tk = json_tokener_new();
  json_object *root = tk ? json_tokener_parse_ex(tk, (const char *)text, (int)len) : NULL;
  int rc = 0;
  if (!tk)
    rc = fail(err, errlen, "out of memory");
  else if (!root || !json_object_is_type(root, json_type_object))
    rc = fail(err, errlen, "%s: not a JSON object of token -> id (%s, at byte %zu)", path,
              root ? "another JSON value" : json_tokener_error_desc(json_tokener_get_error(tk)),
              json_tokener_get_parse_end(tk));
  if (tk) json_tokener_free(tk);
  free(text);
  if (rc) return json_object_put(root), rc;
  json_object_object_foreach(root, key, val) {
    if (!json_object_is_type(val, json_type_int)) {
      rc = fail(err, errlen, "%s: token \"%s\": the id is not an integer", path, key);
      break;
    }
    int64_t id = json_object_get_int64(val);
    if (id < 0 || id > INT32_MAX) {
      rc = fail(err, errlen, "%s: token \"%s\": id %lld out of range", path, key, (long long)id);
      break;
    }
    if (strmap_put(&t->vocab, key, strlen(key), (int32_t)id) != 0) {
      rc = fail(err, errlen, "out of memory");
      break;
    }
  }
  json_object_put(root);
  if (!rc && t->vocab.n == 0) rc = fail(err, errlen, "%s: the vocabulary is empty", path);
  return rc;
}

static int load_merges(gpt2_tok *t, const char *path, char *err, size_t errlen) {
  uint8_t *text = NULL;
  size_t len = 0;
  char e[512];
  if (myelin_read_file(path, (size_t)1 << 30, &text, &len, e, sizeof e) != 0)
    return fail(err, errlen, "%s: %s", path, e);
  const char *s = (const char *)text, *end = s + len;
  size_t line = 0;
  int32_t rank = 0;
  int rc = 0;
  while (s < end && !rc) {
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    const char *le = nl ? nl : end;
    line++;
    size_t n = (size_t)(le - s);
    if (n && s[n - 1] == '\r') n--;
    if (n == 0 || (line == 1 && n >= 8 && !memcmp(s, "#version", 8))) {
      s = le + 1;
      continue;
    }
    const char *sp = memchr(s, ' ', n);
    if (!sp || sp == s || sp == s + n - 1 || memchr(sp + 1, ' ', (size_t)(s + n - sp - 1)))
      rc = fail(err, errlen, "%s:%zu: expected one merge \"left right\", got \"%.*s\"", path, line,
                (int)(n < 80 ? n : 80), s);
    else if (strmap_put(&t->ranks, s, n, rank++) != 0)
      rc = fail(err, errlen, "out of memory");
    s = le + 1;
  }
  free(text);
  return rc;
}

gpt2_tok *gpt2_tok_load(const char *vocab, const char *merges, char *err, size_t errlen) {
  gpt2_tok *t = calloc(1, sizeof *t);
  if (!t) return fail(err, errlen, "out of memory"), NULL;
  byte_map(t);
  int ec;
  PCRE2_SIZE eo;
  t->re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &ec, &eo, NULL);
  if (!t->re) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(ec, msg, sizeof msg);
    fail(err, errlen, "pcre2: %s at %zu", (const char *)msg, (size_t)eo);
    return gpt2_tok_free(t), NULL;
  }
  pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE); /* optional: interpreted matching otherwise */
  t->md = pcre2_match_data_create_from_pattern(t->re, NULL);
  if (!t->md) return fail(err, errlen, "out of memory"), gpt2_tok_free(t), NULL;
  if (load_vocab(t, vocab, err, errlen) != 0 || load_merges(t, merges, err, errlen) != 0)
    return gpt2_tok_free(t), NULL;
  return t;
}

void gpt2_tok_free(gpt2_tok *t) {
  if (!t) return;
  strmap_free(&t->vocab), strmap_free(&t->ranks), strmap_free(&t->cache);
  free(t->cache_ids);
  if (t->md) pcre2_match_data_free(t->md);
  if (t->re) pcre2_code_free(t->re);
  free(t);
}

size_t gpt2_tok_vocab_size(const gpt2_tok *t) { return t->vocab.n; }

static int push_id(int32_t **ids, size_t *n, size_t *cap, int32_t v) {
  if (*n == *cap) {
    size_t c = *cap ? 2 * *cap : 256;
    int32_t *p = realloc(*ids, c * sizeof *p);
    if (!p) return -1;
    *ids = p, *cap = c;
  }
  (*ids)[(*n)++] = v;
  return 0;
}

typedef struct sym {
  uint32_t off, len;
} sym;

/* BPE on one piece (raw bytes), ids appended. */
static int bpe_piece(gpt2_tok *t, const char *piece, size_t plen, int32_t **ids, size_t *n, size_t *cap,
                     char *err, size_t errlen) {
  int32_t *hit = strmap_find(&t->cache, piece, plen);
  if (hit) {
    uint32_t start = (uint32_t)*hit & 0xFFFFFF, count = (uint32_t)*hit >> 24;
    for (uint32_t i = 0; i < count; i++)
      if (push_id(ids, n, cap, t->cache_ids[start + i]) != 0) return fail(err, errlen, "out of memory");
    return 0;
  }
  char stack_buf[512];
  sym stack_syms[256];
  char *m = 2 * plen <= sizeof stack_buf ? stack_buf : malloc(2 * plen + 1);
  sym *s = plen <= 256 ? stack_syms : malloc(plen * sizeof *s);
  char *pair = NULL;
  size_t ns = 0, mlen = 0, pcap = 0;
  int rc = 0;
  if (!m || !s) {
    rc = fail(err, errlen, "out of memory");
    goto out;
  }
  for (size_t i = 0; i < plen; i++) {
    unsigned char b = (unsigned char)piece[i];
    s[ns++] = (sym){(uint32_t)mlen, t->byte_len[b]};
    memcpy(m + mlen, t->byte_char[b], t->byte_len[b]);
    mlen += t->byte_len[b];
  }
  while (ns > 1) {
    int32_t best = INT32_MAX;
    size_t bi = 0;
    for (size_t i = 0; i + 1 < ns; i++) {
      size_t need = s[i].len + s[i + 1].len + 1;
      if (need > pcap) {
        char *np = realloc(pair, pcap = 2 * need);
        if (!np) {
          rc = fail(err, errlen, "out of memory");
          goto out;
        }
        pair = np;
      }
      memcpy(pair, m + s[i].off, s[i].len);
      pair[s[i].len] = ' ';
      memcpy(pair + s[i].len + 1, m + s[i + 1].off, s[i + 1].len);
      int32_t *r = strmap_find(&t->ranks, pair, need);
      if (r && *r < best) best = *r, bi = i;
    }
    if (best == INT32_MAX) break;
    /* Merge every occurrence of the pair, left to right (encoder.py). */
    sym a = s[bi], b = s[bi + 1];
    size_t w = 0;
    for (size_t i = 0; i < ns;) {
      if (i + 1 < ns && s[i].len == a.len && s[i + 1].len == b.len &&
          !memcmp(m + s[i].off, m + a.off, a.len) && !memcmp(m + s[i + 1].off, m + b.off, b.len)) {
        s[w++] = (sym){s[i].off, s[i].len + s[i + 1].len};
        i += 2;
      } else {
        s[w++] = s[i++];
      }
    }
    ns = w;
  }
  size_t first = *n;
  for (size_t i = 0; i < ns; i++) {
    int32_t *id = strmap_find(&t->vocab, m + s[i].off, s[i].len);
    if (!id) {
      rc = fail(err, errlen,
                "the BPE symbol \"%.*s\" of \"%.*s\" is not in the vocabulary (vocabulary and "
                "merges of different models?)",
                (int)s[i].len, m + s[i].off, (int)(plen < 64 ? plen : 64), piece);
      goto out;
    }
    if (push_id(ids, n, cap, *id) != 0) {
      rc = fail(err, errlen, "out of memory");
      goto out;
    }
  }
  /* Cache pieces while the cache is small (start < 2^24, count < 128). */
  size_t count = *n - first;
  if (count < 128 && t->ncache_ids + count < (1u << 24)) {
    if (t->ncache_ids + count > t->capcache_ids) {
      size_t c = t->capcache_ids ? 2 * t->capcache_ids : 4096;
      while (c < t->ncache_ids + count)
        c *= 2;
      int32_t *p = realloc(t->cache_ids, c * sizeof *p);
      if (!p) goto out; /* no cache, no harm */
      t->cache_ids = p, t->capcache_ids = c;
    }
    memcpy(t->cache_ids + t->ncache_ids, *ids + first, count * sizeof(int32_t));
    if (strmap_put(&t->cache, piece, plen, (int32_t)(t->ncache_ids | (count << 24))) == 0)
      t->ncache_ids += count;
  }
out:
  if (m != stack_buf) free(m);
  if (s != stack_syms) free(s);
  free(pair);
  return rc;
}

int gpt2_tok_encode(gpt2_tok *t, const char *text, size_t len, int32_t **ids, size_t *n, size_t *cap,
                    char *err, size_t errlen) {
  PCRE2_SIZE pos = 0;
  while (pos < len) {
    int r = pcre2_match(t->re, (PCRE2_SPTR)text, len, pos, pos ? PCRE2_NO_UTF_CHECK : 0, t->md, NULL);
    if (r == PCRE2_ERROR_NOMATCH) break; /* cannot happen: \s+ or a class matches any char */
    if (r < 0) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(r, msg, sizeof msg);
      return fail(err, errlen, "\"%.*s\": %s", (int)(len < 64 ? len : 64), text, (const char *)msg);
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(t->md);
    if (ov[0] != pos || ov[1] <= ov[0])
      return fail(err, errlen, "\"%.*s\": pre-tokenization skipped text at byte %zu",
                  (int)(len < 64 ? len : 64), text, (size_t)pos);
    if (bpe_piece(t, text + ov[0], ov[1] - ov[0], ids, n, cap, err, errlen) != 0) return -1;
    pos = ov[1];
  }
  return 0;
}
