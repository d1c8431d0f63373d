/*
 * gifti.c — GIFTI reading and writing (see gifti.h).
 *
 * Reading: libxml2 builds the document tree (no network, no entity
 * substitution, huge text nodes allowed since one DataArray of a long run
 * can exceed libxml2's 10 MB default); the tree is walked once. Each
 * DataArray's <Data> text (the concatenation of its text and CDATA
 * children, never expanded entities) is decoded by its Encoding into the raw
 * element bytes, byte-swapped when the file's Endian differs from the host's
 * and permuted from column-major when ArrayIndexingOrder says so. Sizes
 * claimed by Dim attributes are checked against what the input can hold
 * before any allocation of that size.
 *
 * Writing: the XML is produced with libxml2's xmlTextWriter (escaping done
 * by the library), each row as one GZipBase64Binary DataArray: zlib-compress
 * then base64, as nibabel and Connectome Workbench write them.
 */
#include "gifti.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlwriter.h>
#include <archive.h>
#include <zlib.h>
#ifdef NIFTI_HAVE_LIBDEFLATE
#include <libdeflate.h>
#endif

#include "nifti.h"
#include "xml_util.h"

static int gfail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int gfail(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return -1;
}

/* ---- names ----------------------------------------------------------------- */

static const struct {
  const char *name;
  int code;
} intents[] = {{"NIFTI_INTENT_NONE", 0},
               {"NIFTI_INTENT_CORREL", 2},
               {"NIFTI_INTENT_TTEST", 3},
               {"NIFTI_INTENT_FTEST", 4},
               {"NIFTI_INTENT_ZSCORE", 5},
               {"NIFTI_INTENT_CHISQ", 6},
               {"NIFTI_INTENT_BETA", 7},
               {"NIFTI_INTENT_BINOM", 8},
               {"NIFTI_INTENT_GAMMA", 9},
               {"NIFTI_INTENT_POISSON", 10},
               {"NIFTI_INTENT_NORMAL", 11},
               {"NIFTI_INTENT_PVAL", 22},
               {"NIFTI_INTENT_LOGPVAL", 23},
               {"NIFTI_INTENT_LOG10PVAL", 24},
               {"NIFTI_INTENT_ESTIMATE", 1001},
               {"NIFTI_INTENT_LABEL", GIFTI_INTENT_LABEL},
               {"NIFTI_INTENT_NEURONAME", 1003},
               {"NIFTI_INTENT_GENMATRIX", 1004},
               {"NIFTI_INTENT_SYMMATRIX", 1005},
               {"NIFTI_INTENT_DISPVECT", 1006},
               {"NIFTI_INTENT_VECTOR", 1007},
               {"NIFTI_INTENT_POINTSET", GIFTI_INTENT_POINTSET},
               {"NIFTI_INTENT_TRIANGLE", GIFTI_INTENT_TRIANGLE},
               {"NIFTI_INTENT_QUATERNION", 1010},
               {"NIFTI_INTENT_DIMLESS", 1011},
               {"NIFTI_INTENT_TIME_SERIES", GIFTI_INTENT_TIME_SERIES},
               {"NIFTI_INTENT_NODE_INDEX", GIFTI_INTENT_NODE_INDEX},
               {"NIFTI_INTENT_RGB_VECTOR", 2003},
               {"NIFTI_INTENT_RGBA_VECTOR", 2004},
               {"NIFTI_INTENT_SHAPE", GIFTI_INTENT_SHAPE}};

int gifti_intent_code(const char *name) {
  for (size_t i = 0; i < sizeof intents / sizeof intents[0]; i++)
    if (!strcmp(name, intents[i].name)) return intents[i].code;
  return -1;
}

const char *gifti_intent_name(int code) {
  for (size_t i = 0; i < sizeof intents / sizeof intents[0]; i++)
    if (intents[i].code == code) return intents[i].name;
  return "NIFTI_INTENT_NONE";
}

static const struct {
  const char *name;
  int code;
} dtypes[] = {{"NIFTI_TYPE_UINT8", NIFTI_UINT8},     {"NIFTI_TYPE_INT8", NIFTI_INT8},
              {"NIFTI_TYPE_INT16", NIFTI_INT16},     {"NIFTI_TYPE_UINT16", NIFTI_UINT16},
              {"NIFTI_TYPE_INT32", NIFTI_INT32},     {"NIFTI_TYPE_UINT32", NIFTI_UINT32},
              {"NIFTI_TYPE_INT64", NIFTI_INT64},     {"NIFTI_TYPE_UINT64", NIFTI_UINT64},
              {"NIFTI_TYPE_FLOAT32", NIFTI_FLOAT32}, {"NIFTI_TYPE_FLOAT64", NIFTI_FLOAT64}};

static int datatype_code(const char *name) {
  for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
    if (!strcmp(name, dtypes[i].name)) return dtypes[i].code;
  return -1;
}

static int encoding_code(const char *s) {
  if (!strcmp(s, "ASCII") || !strcmp(s, "GIFTI_ENCODING_ASCII")) return GIFTI_ASCII;
  if (!strcmp(s, "Base64Binary") || !strcmp(s, "GIFTI_ENCODING_B64BIN")) return GIFTI_B64BIN;
  if (!strcmp(s, "GZipBase64Binary") || !strcmp(s, "GIFTI_ENCODING_B64GZ")) return GIFTI_B64GZ;
  if (!strcmp(s, "ExternalFileBinary") || !strcmp(s, "GIFTI_ENCODING_EXTBIN")) return GIFTI_EXTBIN;
  return -1;
}

void gifti_structure_to_cifti(const char *gifti, char *out, size_t n) {
  if (!strncmp(gifti, "CIFTI_STRUCTURE_", 16)) {
    snprintf(out, n, "%s", gifti);
    return;
  }
  size_t o = (size_t)snprintf(out, n, "CIFTI_STRUCTURE_");
  for (const char *c = gifti; *c && o + 2 < n; c++) {
    if (isupper((unsigned char)*c) && c != gifti && out[o - 1] != '_') out[o++] = '_';
    out[o++] = *c == ' ' ? '_' : (char)toupper((unsigned char)*c);
  }
  out[o < n ? o : n - 1] = 0;
}

void gifti_structure_from_cifti(const char *cifti, char *out, size_t n) {
  const char *s = strncmp(cifti, "CIFTI_STRUCTURE_", 16) ? cifti : cifti + 16;
  size_t o = 0;
  int up = 1;
  for (; *s && o + 1 < n; s++) {
    if (*s == '_') {
      up = 1;
      continue;
    }
    out[o++] = up ? (char)toupper((unsigned char)*s) : (char)tolower((unsigned char)*s);
    up = 0;
  }
  out[o] = 0;
}

/* ---- metadata -------------------------------------------------------------------- */

const char *gifti_meta_get(const gifti_meta *m, const char *name) {
  for (size_t i = 0; m && i < m->n; i++)
    if (m->v[i].name && !strcmp(m->v[i].name, name)) return m->v[i].value;
  return NULL;
}

static void meta_free(gifti_meta *m) {
  for (size_t i = 0; i < m->n; i++) {
    free(m->v[i].name);
    free(m->v[i].value);
  }
  free(m->v);
  memset(m, 0, sizeof *m);
}

void gifti_free(gifti_image *g) {
  meta_free(&g->meta);
  for (size_t i = 0; i < g->nlabels; i++)
    free(g->labels[i].name);
  free(g->labels);
  for (size_t i = 0; i < g->narrays; i++) {
    meta_free(&g->arrays[i].meta);
    free(g->arrays[i].data);
  }
  free(g->arrays);
  memset(g, 0, sizeof *g);
}

static int parse_meta(const xmlNode *md, gifti_meta *m) {
  for (const xmlNode *e = md->children; e; e = e->next) {
    if (!xml_is(e, "MD")) continue;
    char *name = NULL, *value = NULL;
    for (const xmlNode *c = e->children; c; c = c->next) {
      char **slot = xml_is(c, "Name") ? &name : xml_is(c, "Value") ? &value : NULL;
      if (!slot || *slot) continue;
      char *raw = xml_text(c, NULL); /* stripped, as nibabel does */
      *slot = raw ? xml_trimmed(raw) : NULL;
      free(raw);
    }
    if (!name) name = calloc(1, 1);
    if (!value) value = calloc(1, 1);
    gifti_md *nv = name && value ? realloc(m->v, (m->n + 1) * sizeof *nv) : NULL;
    if (!nv) {
      free(name);
      free(value);
      return -1;
    }
    m->v = nv;
    m->v[m->n].name = name;
    m->v[m->n].value = value;
    m->n++;
  }
  return 0;
}

static int parse_labels(const xmlNode *lt, gifti_image *g, const char *name, char *err, size_t errlen) {
  for (const xmlNode *e = lt->children; e; e = e->next) {
    if (!xml_is(e, "Label")) continue;
    char buf[64];
    gifti_label l;
    memset(&l, 0, sizeof l);
    if (xml_attr(e, "Key", buf, sizeof buf) && xml_attr(e, "Index", buf, sizeof buf))
      return gfail(err, errlen, "%s: LabelTable entry %zu has no Key attribute", name, g->nlabels);
    char *end;
    long k = strtol(buf, &end, 10);
    if (end == buf || *end || k < INT32_MIN || k > INT32_MAX)
      return gfail(err, errlen, "%s: LabelTable entry %zu: Key = '%s' is not an integer", name, g->nlabels,
                   buf);
    l.key = (int32_t)k;
    static const char *const rgba[4] = {"Red", "Green", "Blue", "Alpha"};
    for (int i = 0; i < 4; i++)
      l.rgba[i] = xml_attr(e, rgba[i], buf, sizeof buf) ? -1.0 : strtod(buf, NULL);
    gifti_label *nl = realloc(g->labels, (g->nlabels + 1) * sizeof *nl);
    if (!nl) return gfail(err, errlen, "%s: out of memory", name);
    g->labels = nl;
    char *raw = xml_text(e, NULL);
    l.name = raw ? xml_trimmed(raw) : NULL;
    free(raw);
    if (!l.name) return gfail(err, errlen, "%s: out of memory", name);
    g->labels[g->nlabels++] = l;
  }
  return 0;
}

static void parse_xform(const xmlNode *x, gifti_array *a) {
  for (const xmlNode *c = x->children; c; c = c->next) {
    char *t = NULL;
    if (xml_is(c, "DataSpace") || xml_is(c, "TransformedSpace") || xml_is(c, "MatrixData"))
      t = xml_text(c, NULL);
    if (!t) continue;
    char *tt = xml_trimmed(t);
    free(t);
    if (!tt) continue;
    if (xml_is(c, "DataSpace"))
      snprintf(a->dataspace, sizeof a->dataspace, "%s", tt);
    else if (xml_is(c, "TransformedSpace"))
      snprintf(a->xformspace, sizeof a->xformspace, "%s", tt);
    else {
      char *p = tt;
      for (int i = 0; i < 16; i++) {
        char *end;
        a->xform[i / 4][i % 4] = strtod(p, &end);
        p = end;
      }
    }
    free(tt);
    a->has_xform = 1;
  }
}

/* ---- decoding -------------------------------------------------------------------- */

static const signed char b64_val[256] = {
    ['A'] = 1,  ['B'] = 2,  ['C'] = 3,  ['D'] = 4,  ['E'] = 5,  ['F'] = 6,  ['G'] = 7,  ['H'] = 8,
    ['I'] = 9,  ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16,
    ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
    ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32,
    ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40,
    ['o'] = 41, ['p'] = 42, ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
    ['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
    ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['+'] = 63, ['/'] = 64};

/* Base64 (white space skipped, '=' ends the data) into out (cap bytes).
 * Returns the decoded length, or -1 on a character outside the alphabet or
 * when more than cap bytes would result. */
static long long b64_decode(const char *s, size_t len, uint8_t *out, size_t cap) {
  uint32_t acc = 0;
  int bits = 0;
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '=') break;
    if (isspace(c)) continue;
    int v = b64_val[c] - 1;
    if (v < 0) return -1;
    acc = (acc << 6) | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (o == cap) return -1;
      out[o++] = (uint8_t)(acc >> bits);
    }
  }
  return (long long)o;
}

/* zlib stream (or gzip) into exactly want bytes. */
static int inflate_exact(const uint8_t *in, size_t inlen, uint8_t *out, size_t want) {
#ifdef NIFTI_HAVE_LIBDEFLATE
  struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
  if (d) {
    size_t got = 0;
    enum libdeflate_result r = libdeflate_zlib_decompress(d, in, inlen, out, want, &got);
    libdeflate_free_decompressor(d);
    if (r == LIBDEFLATE_SUCCESS && got == want) return 0;
  }
#endif
  z_stream z;
  memset(&z, 0, sizeof z);
  if (inflateInit2(&z, 15 + 32) != Z_OK) return -1;
  z.next_in = (Bytef *)(uintptr_t)in;
  size_t done = 0;
  int rc = Z_OK;
  while (rc == Z_OK) {
    size_t in_left = inlen - (size_t)((const uint8_t *)z.next_in - in);
    z.avail_in = in_left > UINT_MAX ? UINT_MAX : (uInt)in_left;
    z.next_out = out + done;
    size_t out_left = want - done;
    z.avail_out = out_left > UINT_MAX ? UINT_MAX : (uInt)out_left;
    uInt before = z.avail_out;
    rc = inflate(&z, Z_NO_FLUSH);
    done += before - z.avail_out;
    if (rc == Z_OK && z.avail_out != 0 && z.avail_in == 0) rc = Z_DATA_ERROR; /* truncated */
    if (rc == Z_OK && done == want) {
      /* all bytes there: the stream must end now */
      uint8_t extra;
      z.next_out = &extra;
      z.avail_out = 1;
      rc = inflate(&z, Z_NO_FLUSH);
      if (rc != Z_STREAM_END) rc = Z_DATA_ERROR;
    }
  }
  inflateEnd(&z);
  return rc == Z_STREAM_END && done == want ? 0 : -1;
}

static void swap_bytes(uint8_t *p, size_t n, int size) {
  for (size_t i = 0; i < n; i++, p += size)
    for (int a = 0, b = size - 1; a < b; a++, b--) {
      uint8_t t = p[a];
      p[a] = p[b];
      p[b] = t;
    }
}

static int host_big_endian(void) {
  const uint16_t one = 1;
  return *(const uint8_t *)&one == 0;
}

/* Column-major (first index fastest) to C order. */
static int to_c_order(gifti_array *a, int size) {
  if (a->ndim < 2 || a->n == 0) return 0;
  uint8_t *c = malloc(a->n * (size_t)size);
  if (!c) return -1;
  int64_t idx[6] = {0};
  const uint8_t *f = a->data;
  for (size_t i = 0; i < a->n; i++) {
    size_t ci = 0;
    for (int d = 0; d < a->ndim; d++)
      ci = ci * (size_t)a->dims[d] + (size_t)idx[d];
    memcpy(c + ci * (size_t)size, f + i * (size_t)size, (size_t)size);
    for (int d = 0; d < a->ndim && ++idx[d] == a->dims[d]; d++)
      idx[d] = 0;
  }
  free(a->data);
  a->data = c;
  return 0;
}

/* ASCII numbers, as numpy's loadtxt reads them for the datatype. */
static int parse_ascii(gifti_array *a, char *text, const char *where, char *err, size_t errlen) {
  char *p = text;
  int size = nifti_datatype_size(a->datatype);
  uint8_t *out = a->data;
  for (size_t i = 0; i < a->n; i++) {
    while (isspace((unsigned char)*p))
      p++;
    if (!*p)
      return gfail(err, errlen, "%s: ASCII data has %zu numbers, Dim attributes say %zu", where, i, a->n);
    char *end;
    errno = 0;
    uint8_t *o = out + i * (size_t)size;
    if (a->datatype == NIFTI_FLOAT32 || a->datatype == NIFTI_FLOAT64) {
      double v = strtod(p, &end);
      if (a->datatype == NIFTI_FLOAT32) {
        float f = (float)v;
        memcpy(o, &f, 4);
      } else {
        memcpy(o, &v, 8);
      }
    } else if (a->datatype == NIFTI_UINT64) {
      unsigned long long v = strtoull(p, &end, 10);
      memcpy(o, &v, 8);
    } else {
      long long v = strtoll(p, &end, 10);
      int ok = 1;
      switch (a->datatype) {
      case NIFTI_UINT8:
        ok = v >= 0 && v <= UINT8_MAX;
        *o = (uint8_t)v;
        break;
      case NIFTI_INT8:
        ok = v >= INT8_MIN && v <= INT8_MAX;
        *(int8_t *)o = (int8_t)v;
        break;
      case NIFTI_INT16: {
        ok = v >= INT16_MIN && v <= INT16_MAX;
        int16_t x = (int16_t)v;
        memcpy(o, &x, 2);
      } break;
      case NIFTI_UINT16: {
        ok = v >= 0 && v <= UINT16_MAX;
        uint16_t x = (uint16_t)v;
        memcpy(o, &x, 2);
      } break;
      case NIFTI_INT32: {
        ok = v >= INT32_MIN && v <= INT32_MAX;
        int32_t x = (int32_t)v;
        memcpy(o, &x, 4);
      } break;
      case NIFTI_UINT32: {
        ok = v >= 0 && v <= UINT32_MAX;
        uint32_t x = (uint32_t)v;
        memcpy(o, &x, 4);
      } break;
      default: /* INT64 */
        memcpy(o, &v, 8);
      }
      if (!ok) errno = ERANGE;
    }
    if (end == p || (*end && !isspace((unsigned char)*end)) || errno == ERANGE) {
      char tok[32];
      snprintf(tok, sizeof tok, "%.*s", (int)strcspn(p, " \t\r\n"), p);
      return gfail(err, errlen, "%s: ASCII value %zu '%s' is not a valid %s", where, i, tok,
                   nifti_datatype_name(a->datatype));
    }
    p = end;
  }
  while (isspace((unsigned char)*p))
    p++;
  if (*p)
    return gfail(err, errlen, "%s: ASCII data has more than the %zu numbers the Dim attributes say", where,
                 a->n);
  return 0;
}

static int read_external(gifti_array *a, const char *ext_dir, size_t bytes, const char *where, char *err,
                         size_t errlen) {
  if (!ext_dir) return gfail(err, errlen, "%s: ExternalFileBinary data needs the .gii file's folder", where);
  if (!a->ext_file[0] || strstr(a->ext_file, ".."))
    return gfail(err, errlen, "%s: ExternalFileName '%s' is empty or leaves the .gii's folder", where,
                 a->ext_file);
  char path[4200];
  if (a->ext_file[0] == '/')
    snprintf(path, sizeof path, "%s", a->ext_file);
  else
    snprintf(path, sizeof path, "%s/%s", ext_dir, a->ext_file);
  FILE *f = fopen(path, "rb");
  if (!f) return gfail(err, errlen, "%s: cannot open ExternalFileName %s: %s", where, path, strerror(errno));
  struct stat st;
  int rc = 0;
  if (fstat(fileno(f), &st) || a->ext_offset < 0 || (uint64_t)st.st_size < (uint64_t)a->ext_offset ||
      (uint64_t)st.st_size - (uint64_t)a->ext_offset < bytes)
    rc = gfail(err, errlen, "%s: %s holds %lld bytes, ExternalFileOffset %lld + %zu bytes of data needed",
               where, path, (long long)st.st_size, (long long)a->ext_offset, bytes);
  else if (!(a->data = malloc(bytes ? bytes : 1)))
    rc = gfail(err, errlen, "%s: out of memory", where);
  else if (fseeko(f, a->ext_offset, SEEK_SET) || fread(a->data, 1, bytes, f) != bytes)
    rc = gfail(err, errlen, "%s: cannot read %s: %s", where, path, strerror(errno));
  fclose(f);
  return rc;
}

/* 1 when ASCII text is a table of more than one row and column (what
 * numpy's loadtxt returns as a 2-D array). */
static int text_is_2d(const xmlNode *data) {
  char *t = data ? xml_text(data, NULL) : NULL;
  if (!t) return 0;
  size_t rows = 0, cols = 0;
  for (char *line = t; *line;) {
    size_t len = strcspn(line, "\n");
    size_t tokens = 0;
    for (size_t i = 0; i < len; i++)
      if (!isspace((unsigned char)line[i]) && (i == 0 || isspace((unsigned char)line[i - 1]))) tokens++;
    if (tokens) {
      if (!rows) cols = tokens;
      rows++;
    }
    line += len + (line[len] != 0);
  }
  free(t);
  return rows > 1 && cols > 1;
}

/* Decodes <Data> into a->data (C order, host byte order). */
static int decode_data(gifti_array *a, const xmlNode *data, const char *ext_dir, const char *where, char *err,
                       size_t errlen) {
  int size = nifti_datatype_size(a->datatype);
  size_t bytes = a->n * (size_t)size;
  size_t tlen = 0;
  char *text = data ? xml_text(data, &tlen) : calloc(1, 1);
  if (!text) return gfail(err, errlen, "%s: out of memory", where);
  int rc = 0;
  if (a->encoding == GIFTI_EXTBIN) {
    rc = read_external(a, ext_dir, bytes, where, err, errlen);
  } else if (a->encoding == GIFTI_ASCII) {
    if (a->n > tlen / 2 + 1)
      rc = gfail(err, errlen, "%s: ASCII data too short for %zu values", where, a->n);
    else if (!(a->data = malloc(bytes ? bytes : 1)))
      rc = gfail(err, errlen, "%s: out of memory", where);
    else
      rc = parse_ascii(a, text, where, err, errlen);
  } else {
    size_t raw_cap = tlen / 4 * 3 + 3;
    if (a->encoding == GIFTI_B64BIN && bytes > raw_cap)
      rc = gfail(err, errlen, "%s: base64 data holds at most %zu bytes, Dim attributes need %zu", where,
                 raw_cap, bytes);
    else if (a->encoding == GIFTI_B64GZ && raw_cap && bytes / 1032 > raw_cap)
      rc = gfail(err, errlen,
                 "%s: compressed data of %zu bytes cannot inflate to the %zu the Dim attributes need", where,
                 raw_cap, bytes);
    uint8_t *raw = rc ? NULL : malloc(raw_cap);
    if (!rc && !raw) rc = gfail(err, errlen, "%s: out of memory", where);
    long long got = rc ? -1 : b64_decode(text, tlen, raw, raw_cap);
    if (!rc && got < 0) rc = gfail(err, errlen, "%s: Data is not valid base64", where);
    if (!rc && a->encoding == GIFTI_B64BIN) {
      if ((size_t)got != bytes)
        rc = gfail(err, errlen, "%s: base64 data decodes to %lld bytes, Dim attributes need %zu", where, got,
                   bytes);
      else
        a->data = raw, raw = NULL;
    } else if (!rc) {
      if (!(a->data = malloc(bytes ? bytes : 1)))
        rc = gfail(err, errlen, "%s: out of memory", where);
      else if (bytes && inflate_exact(raw, (size_t)got, a->data, bytes))
        rc = gfail(err, errlen, "%s: GZipBase64Binary data is not a zlib stream of %zu bytes", where, bytes);
    }
    free(raw);
  }
  free(text);
  if (rc) return rc;
  if (a->encoding != GIFTI_ASCII && a->big_endian != host_big_endian() && size > 1)
    swap_bytes(a->data, a->n, size);
  /* nibabel reads ASCII with numpy's loadtxt and reshapes in the file's
   * index order only when the text's own layout (rows x columns, squeezed)
   * does not already have the array's number of dimensions. */
  int as_laid_out = a->encoding == GIFTI_ASCII && a->ndim == 2 && text_is_2d(data);
  if (a->column_major && !as_laid_out && to_c_order(a, size))
    return gfail(err, errlen, "%s: out of memory", where);
  return 0;
}

static int parse_array(const xmlNode *e, gifti_array *a, size_t k, const char *name, const char *ext_dir,
                       char *err, size_t errlen) {
  char where[600], buf[512];
  snprintf(where, sizeof where, "%s: DataArray %zu", name, k);
  if (xml_attr(e, "Intent", a->intent, sizeof a->intent))
    snprintf(a->intent, sizeof a->intent, "NIFTI_INTENT_NONE");
  a->intent_code = gifti_intent_code(a->intent);
  if (xml_attr(e, "DataType", buf, sizeof buf)) return gfail(err, errlen, "%s: no DataType attribute", where);
  if ((a->datatype = datatype_code(buf)) < 0)
    return gfail(err, errlen, "%s: DataType = '%s' is not a supported type (NIFTI_TYPE_UINT8 ... FLOAT64)",
                 where, buf);
  if (xml_attr(e, "Dimensionality", buf, sizeof buf))
    return gfail(err, errlen, "%s: no Dimensionality attribute", where);
  char *end;
  long nd = strtol(buf, &end, 10);
  if (end == buf || *end || nd < 1 || nd > 6)
    return gfail(err, errlen, "%s: Dimensionality = '%s' must be 1..6", where, buf);
  a->ndim = (int)nd;
  a->n = 1;
  for (int d = 0; d < a->ndim; d++) {
    char an[16];
    snprintf(an, sizeof an, "Dim%d", d);
    if (xml_attr(e, an, buf, sizeof buf)) return gfail(err, errlen, "%s: no %s attribute", where, an);
    long long v = strtoll(buf, &end, 10);
    if (end == buf || *end || v < 0 || v > INT32_MAX)
      return gfail(err, errlen, "%s: %s = '%s' is not a size", where, an, buf);
    a->dims[d] = v;
    if (v && a->n > SIZE_MAX / 16 / (size_t)v)
      return gfail(err, errlen, "%s: the Dim attributes' product overflows", where);
    a->n *= (size_t)v;
  }
  if (xml_attr(e, "Encoding", buf, sizeof buf)) return gfail(err, errlen, "%s: no Encoding attribute", where);
  if ((a->encoding = encoding_code(buf)) < 0)
    return gfail(err, errlen,
                 "%s: Encoding = '%s' is not ASCII, Base64Binary, GZipBase64Binary or ExternalFileBinary",
                 where, buf);
  a->big_endian = 0;
  if (!xml_attr(e, "Endian", buf, sizeof buf)) {
    if (!strcmp(buf, "BigEndian") || !strcmp(buf, "GIFTI_ENDIAN_BIG"))
      a->big_endian = 1;
    else if (strcmp(buf, "LittleEndian") && strcmp(buf, "GIFTI_ENDIAN_LITTLE"))
      return gfail(err, errlen, "%s: Endian = '%s' is not BigEndian or LittleEndian", where, buf);
  }
  if (!xml_attr(e, "ArrayIndexingOrder", buf, sizeof buf)) {
    if (!strcmp(buf, "ColumnMajorOrder"))
      a->column_major = 1;
    else if (strcmp(buf, "RowMajorOrder"))
      return gfail(err, errlen, "%s: ArrayIndexingOrder = '%s' is not RowMajorOrder or ColumnMajorOrder",
                   where, buf);
  }
  xml_attr(e, "ExternalFileName", a->ext_file, sizeof a->ext_file);
  if (!xml_attr(e, "ExternalFileOffset", buf, sizeof buf) && buf[0]) {
    long long v = strtoll(buf, &end, 10);
    if (end == buf || *end || v < 0)
      return gfail(err, errlen, "%s: ExternalFileOffset = '%s' is not an offset", where, buf);
    a->ext_offset = v;
  }
  const xmlNode *data = NULL;
  for (const xmlNode *c = e->children; c; c = c->next) {
    if (xml_is(c, "MetaData") && parse_meta(c, &a->meta))
      return gfail(err, errlen, "%s: out of memory", where);
    if (xml_is(c, "CoordinateSystemTransformMatrix")) parse_xform(c, a);
    if (xml_is(c, "Data") && !data) data = c;
  }
  return decode_data(a, data, ext_dir, where, err, errlen);
}

/* ---- reading --------------------------------------------------------------------- */

int gifti_read_mem(const void *buf, size_t len, const char *name, const char *ext_dir, gifti_image *g,
                   char *err, size_t errlen) {
  memset(g, 0, sizeof *g);
  xmlDocPtr doc = xml_parse(buf, len, name, err, errlen);
  if (!doc) return -1;
  int rc = 0;
  xmlNode *root = xmlDocGetRootElement(doc);
  if (!root || !xml_is(root, "GIFTI")) {
    rc = gfail(err, errlen, "%s: root element is <%s>, not <GIFTI>", name,
               root ? (const char *)root->name : "");
    goto done;
  }
  xml_attr(root, "Version", g->version, sizeof g->version);
  size_t na = 0;
  for (const xmlNode *c = root->children; c; c = c->next)
    na += xml_is(c, "DataArray");
  char nbuf[32];
  if (!xml_attr(root, "NumberOfDataArrays", nbuf, sizeof nbuf) && strtoull(nbuf, NULL, 10) != na) {
    rc = gfail(err, errlen, "%s: NumberOfDataArrays = %s but the file has %zu DataArray elements", name, nbuf,
               na);
    goto done;
  }
  g->arrays = calloc(na ? na : 1, sizeof *g->arrays);
  if (!g->arrays) {
    rc = gfail(err, errlen, "%s: out of memory", name);
    goto done;
  }
  for (const xmlNode *c = root->children; c && !rc; c = c->next) {
    if (xml_is(c, "MetaData") && parse_meta(c, &g->meta))
      rc = gfail(err, errlen, "%s: out of memory", name);
    else if (xml_is(c, "LabelTable"))
      rc = parse_labels(c, g, name, err, errlen);
    else if (xml_is(c, "DataArray")) {
      rc = parse_array(c, &g->arrays[g->narrays], g->narrays, name, ext_dir, err, errlen);
      g->narrays++;
    }
  }
done:
  xmlFreeDoc(doc);
  if (rc) gifti_free(g);
  return rc;
}

static int ends_with(const char *s, const char *suf) {
  size_t n = strlen(s), k = strlen(suf);
  return n >= k && !strcmp(s + n - k, suf);
}

/* A compressed .gii (.gz, .bz2, .xz: nibabel opens them too) through
 * libarchive's raw format, into a malloc'ed buffer. */
static int read_compressed(const char *path, char **buf, size_t *len, char *err, size_t errlen) {
  struct archive *a = archive_read_new();
  if (!a) return gfail(err, errlen, "%s: out of memory", path);
  archive_read_support_filter_all(a);
  archive_read_support_format_raw(a);
  struct archive_entry *e;
  int rc = 0;
  if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK ||
      archive_read_next_header(a, &e) != ARCHIVE_OK) {
    rc = gfail(err, errlen, "%s: cannot decompress: %s", path, archive_error_string(a));
  } else {
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    for (;;) {
      if (b && n == cap) {
        char *nb = cap <= (size_t)INT_MAX ? realloc(b, cap *= 2) : NULL;
        if (!nb) free(b);
        b = nb;
      }
      if (!b) {
        rc = gfail(err, errlen, "%s: out of memory (or larger than 2 GiB)", path);
        break;
      }
      la_ssize_t k = archive_read_data(a, b + n, cap - n);
      if (k < 0) {
        free(b);
        rc = gfail(err, errlen, "%s: cannot decompress: %s", path, archive_error_string(a));
        break;
      }
      if (k == 0) break;
      n += (size_t)k;
    }
    if (!rc) {
      *buf = b;
      *len = n;
    }
  }
  archive_read_free(a);
  return rc;
}

int gifti_read_file(const char *path, gifti_image *g, char *err, size_t errlen) {
  memset(g, 0, sizeof *g);
  char *buf = NULL;
  size_t len = 0;
  if (ends_with(path, ".gz") || ends_with(path, ".bz2") || ends_with(path, ".xz")) {
    if (read_compressed(path, &buf, &len, err, errlen)) return -1;
  } else {
    FILE *f = fopen(path, "rb");
    if (!f) return gfail(err, errlen, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) || st.st_size < 0) {
      fclose(f);
      return gfail(err, errlen, "%s: cannot stat", path);
    }
    len = (size_t)st.st_size;
    buf = malloc(len ? len : 1);
    if (!buf || fread(buf, 1, len, f) != len) {
      free(buf);
      fclose(f);
      return gfail(err, errlen, "%s: cannot read %zu bytes", path, len);
    }
    fclose(f);
  }
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash)
    *slash = 0;
  else
    snprintf(dir, sizeof dir, ".");
  int rc = gifti_read_mem(buf, len, path, dir, g, err, errlen);
  free(buf);
  return rc;
}

float gifti_elem_f32(const gifti_array *a, size_t i) {
  const uint8_t *p = (const uint8_t *)a->data;
  switch (a->datatype) {
  case NIFTI_UINT8:
    return p[i];
  case NIFTI_INT8:
    return ((const int8_t *)p)[i];
  case NIFTI_INT16:
    return ((const int16_t *)p)[i];
  case NIFTI_UINT16:
    return ((const uint16_t *)p)[i];
  case NIFTI_INT32:
    return (float)((const int32_t *)p)[i];
  case NIFTI_UINT32:
    return (float)((const uint32_t *)p)[i];
  case NIFTI_INT64:
    return (float)((const int64_t *)p)[i];
  case NIFTI_UINT64:
    return (float)((const uint64_t *)p)[i];
  case NIFTI_FLOAT32:
    return ((const float *)p)[i];
  case NIFTI_FLOAT64:
    return (float)((const double *)p)[i];
  default:
    return NAN;
  }
}

int gifti_rows_f32(const gifti_image *g, const char *name, float **X, size_t *T, size_t *V, char *err,
                   size_t errlen) {
  *X = NULL;
  if (g->narrays == 0) return gfail(err, errlen, "%s: no DataArray: no data on vertices", name);
  for (size_t k = 0; k < g->narrays; k++) {
    const gifti_array *a = &g->arrays[k];
    if (a->intent_code == GIFTI_INTENT_POINTSET || a->intent_code == GIFTI_INTENT_TRIANGLE)
      return gfail(err, errlen,
                   "%s: DataArray %zu is a surface mesh (%s), not data on vertices (.func.gii, "
                   ".shape.gii, .label.gii)",
                   name, k, a->intent);
  }
  const gifti_array *a0 = &g->arrays[0];
  int columns = g->narrays == 1 && a0->ndim == 2 && a0->dims[1] > 1;
  size_t t = columns ? (size_t)a0->dims[1] : g->narrays, v = (size_t)a0->dims[0];
  for (size_t k = 0; k < g->narrays && !columns; k++) {
    const gifti_array *a = &g->arrays[k];
    if (a->ndim > 2 || (a->ndim == 2 && a->dims[1] != 1) || (size_t)a->dims[0] != v)
      return gfail(err, errlen,
                   "%s: DataArray %zu has shape %lld%s, DataArray 0 has %zu values: not one row of "
                   "a run",
                   name, k, (long long)a->dims[0], a->ndim > 1 ? " x ..." : "", v);
  }
  float *x = malloc((t * v > 0 ? t * v : 1) * sizeof *x);
  if (!x) return gfail(err, errlen, "%s: out of memory for %zu x %zu floats", name, t, v);
  for (size_t r = 0; r < t; r++)
    for (size_t i = 0; i < v; i++)
      x[r * v + i] = columns ? gifti_elem_f32(a0, i * t + r) : gifti_elem_f32(&g->arrays[r], i);
  *X = x;
  *T = t;
  *V = v;
  return 0;
}

/* ---- writing --------------------------------------------------------------------- */

static const char b64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *b64_encode(const uint8_t *in, size_t n) {
  char *out = malloc((n + 2) / 3 * 4 + 1);
  if (!out) return NULL;
  size_t o = 0, i = 0;
  for (; i + 2 < n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    out[o++] = b64_chars[v >> 18];
    out[o++] = b64_chars[(v >> 12) & 63];
    out[o++] = b64_chars[(v >> 6) & 63];
    out[o++] = b64_chars[v & 63];
  }
  if (i < n) {
    uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
    out[o++] = b64_chars[v >> 18];
    out[o++] = b64_chars[(v >> 12) & 63];
    out[o++] = i + 1 < n ? b64_chars[(v >> 6) & 63] : '=';
    out[o++] = '=';
  }
  out[o] = 0;
  return out;
}

static int write_md(xmlTextWriterPtr w, const char *name, const char *value) {
  int rc = xmlTextWriterStartElement(w, BAD_CAST "MD") < 0;
  rc |= xmlTextWriterWriteElement(w, BAD_CAST "Name", BAD_CAST name) < 0;
  rc |= xmlTextWriterWriteElement(w, BAD_CAST "Value", BAD_CAST value) < 0;
  rc |= xmlTextWriterEndElement(w) < 0;
  return rc;
}

/* <MetaData> with m's entries, then (extra_name, extra_value) when given. */
static int write_meta(xmlTextWriterPtr w, const gifti_meta *m, const char *extra_name,
                      const char *extra_value) {
  int rc = xmlTextWriterStartElement(w, BAD_CAST "MetaData") < 0;
  for (size_t i = 0; !rc && m && i < m->n; i++)
    rc |= write_md(w, m->v[i].name, m->v[i].value);
  if (!rc && extra_name) rc |= write_md(w, extra_name, extra_value);
  rc |= xmlTextWriterEndElement(w) < 0;
  return rc ? -1 : 0;
}

int gifti_write_f32(FILE *fp, const float *rows, size_t nrows, size_t nvert, int intent,
                    const char *structure, const gifti_meta *meta, const gifti_meta *row_meta, char *err,
                    size_t errlen) {
  if (nvert > INT32_MAX) return gfail(err, errlen, "%zu vertices do not fit a GIFTI Dim0", nvert);
  xmlBufferPtr xb = xmlBufferCreate();
  xmlTextWriterPtr w = xb ? xmlNewTextWriterMemory(xb, 0) : NULL;
  if (!w) {
    if (xb) xmlBufferFree(xb);
    return gfail(err, errlen, "out of memory");
  }
  char gstruct[128] = "", num[32];
  if (structure) gifti_structure_from_cifti(structure, gstruct, sizeof gstruct);
  int rc = xmlTextWriterSetIndent(w, 1) < 0;
  rc |= xmlTextWriterStartDocument(w, "1.0", "UTF-8", NULL) < 0;
  rc |= xmlTextWriterWriteDTD(w, BAD_CAST "GIFTI", NULL,
                              BAD_CAST "http://www.nitrc.org/frs/download.php/115/gifti.dtd", NULL) < 0;
  rc |= xmlTextWriterStartElement(w, BAD_CAST "GIFTI") < 0;
  rc |= xmlTextWriterWriteAttribute(w, BAD_CAST "Version", BAD_CAST "1.0") < 0;
  snprintf(num, sizeof num, "%zu", nrows);
  rc |= xmlTextWriterWriteAttribute(w, BAD_CAST "NumberOfDataArrays", BAD_CAST num) < 0;
  if (!rc)
    rc = write_meta(w, meta,
                    gstruct[0] && !gifti_meta_get(meta, "AnatomicalStructurePrimary")
                        ? "AnatomicalStructurePrimary"
                        : NULL,
                    gstruct);
  rc |= xmlTextWriterStartElement(w, BAD_CAST "LabelTable") < 0;
  rc |= xmlTextWriterEndElement(w) < 0;
  size_t raw_len = nvert * sizeof(float);
  uLongf cap = compressBound((uLong)raw_len);
  uint8_t *z = malloc(cap ? cap : 1), *le = malloc(raw_len ? raw_len : 1);
  if (!z || !le) rc = 1;
  for (size_t r = 0; r < nrows && !rc; r++) {
    memcpy(le, rows + r * nvert, raw_len);
    if (host_big_endian()) swap_bytes(le, nvert, 4);
    uLongf zl = cap;
    if (compress2(z, &zl, le, (uLong)raw_len, 6) != Z_OK) {
      rc = 1;
      break;
    }
    char *b64 = b64_encode(z, zl);
    if (!b64) {
      rc = 1;
      break;
    }
    rc |= xmlTextWriterStartElement(w, BAD_CAST "DataArray") < 0;
    rc |= xmlTextWriterWriteAttribute(w, BAD_CAST "Intent", BAD_CAST gifti_intent_name(intent)) < 0;
    rc |= xmlTextWriterWriteAttribute(w, BAD_CAST "DataType", BAD_CAST "NIFTI_TYPE_FLOAT32") < 0;
    rc |= xmlTextWriterWriteAttribute(w, BAD_CAST "ArrayIndexingOrder", BAD_CAST "RowMajorOrder") < 0;
    rc |= xmlTextWriterWriteAttribute(w, BAD_CAST "Dimensionality", BAD_CAST "1") < 0;
    snprintf(num, sizeof num, "%zu", nvert);
    rc |= xmlTextWriterWriteAttribute(w, BAD_CAST "Dim0", BAD_CAST num) < 0;
    rc |= xmlTextWriterWriteAttribute(w, BAD_CAST "Encoding", BAD_CAST "GZipBase64Binary") < 0;
    rc |= xmlTextWriterWriteAttribute(w, BAD_CAST "Endian", BAD_CAST "LittleEndian") < 0;
    rc |= xmlTextWriterWriteAttribute(w, BAD_CAST "ExternalFileName", BAD_CAST "") < 0;
    rc |= xmlTextWriterWriteAttribute(w, BAD_CAST "ExternalFileOffset", BAD_CAST "") < 0;
    if (!rc) rc = write_meta(w, row_meta ? &row_meta[r] : NULL, NULL, NULL);
    rc |= xmlTextWriterWriteElement(w, BAD_CAST "Data", BAD_CAST b64) < 0;
    rc |= xmlTextWriterEndElement(w) < 0;
    free(b64);
  }
  free(z);
  free(le);
  rc |= xmlTextWriterEndElement(w) < 0;
  rc |= xmlTextWriterEndDocument(w) < 0;
  xmlFreeTextWriter(w);
  if (!rc && fwrite(xmlBufferContent(xb), 1, (size_t)xmlBufferLength(xb), fp) != (size_t)xmlBufferLength(xb))
    rc = gfail(err, errlen, "write failed: %s", strerror(errno));
  else if (rc)
    rc = gfail(err, errlen, "cannot build the GIFTI document (out of memory)");
  xmlBufferFree(xb);
  return rc;
}
