/*
 * npy.c — NumPy .npy / .npz reading and writing (implements myelin/npy.h).
 *
 * A .npy file is a 6-byte magic "\x93NUMPY", a version (major, minor), a
 * little-endian header length (u16 for 1.0, u32 for 2.0/3.0), a Python dict
 * literal {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), } padded
 * with spaces to a multiple of 64 bytes and ended by '\n', then the raw data
 * in C order.
 *
 * Reading: the header dict is parsed by a small tolerant scanner (keys in any
 * order, either quote style, extra whitespace) rather than a Python literal
 * evaluator; anything it does not understand is a format error naming the
 * file. Data lands in a 64-byte-aligned buffer; big-endian data ('>') is
 * byte-swapped so every myelin_array is little-endian like the rest of the
 * system. A .npy file is read with two freads straight into the final buffer
 * (no whole-file staging copy), which matters for 50+ MB datasets.
 *
 * .npz archives are zip files: reading goes through libarchive, one entry
 * streamed into memory, no extraction to disk. Writing uses libarchive's zip
 * writer with "store" compression (what np.savez produces), entries stamped
 * with a fixed time so identical inputs give identical archives, and the
 * whole archive goes through myelin_atomic_open/commit.
 */
#include "myelin/npy.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "myelin/io.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_PREFIX 10           /* magic(6) + version(2) + u16 header length */
#define NPY_MAX_HEADER (1 << 20) /* a sane bound on the dict text */
#define NPZ_FIXED_MTIME 315532800 /* 1980-01-01: the zip epoch, reproducible */

void myelin_array_free(myelin_array *a) {
  if (!a) return;
  free(a->data);
  memset(a, 0, sizeof *a);
}

/* ---- header dict parsing -------------------------------------------------- */

typedef struct npy_header {
  myelin_dtype dtype;
  int swap; /* data is big-endian and must be swapped */
  int fortran;
  int ndim;
  int64_t shape[MYELIN_MAX_NDIM];
} npy_header;

static const char *skip_ws(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  return p;
}

/* Reads a quoted Python string at p into buf; returns the position after it. */
static const char *scan_quoted(const char *p, const char *end, char *buf, size_t n) {
  if (p >= end || (*p != '\'' && *p != '"')) return NULL;
  char q = *p++;
  size_t i = 0;
  while (p < end && *p != q) {
    if (i + 1 >= n) return NULL;
    buf[i++] = *p++;
  }
  if (p >= end) return NULL;
  buf[i] = 0;
  return p + 1;
}

/* Maps a numpy descr ("<f4", ">i8", "|u1", "=b1", "u1") to a dtype. */
static int parse_descr(const char *d, npy_header *h) {
  char order = d[0];
  const char *code = d;
  if (order == '<' || order == '>' || order == '|' || order == '=') code = d + 1;
  char canon[8];
  if (strlen(code) > 3) return -1;
  int one_byte = strcmp(code, "u1") == 0 || strcmp(code, "i1") == 0 || strcmp(code, "b1") == 0;
  snprintf(canon, sizeof canon, "%c%s", one_byte ? '|' : '<', code);
  h->dtype = myelin_dtype_parse(canon, strlen(canon));
  if (h->dtype == MYELIN_DTYPE_INVALID) return -1;
  h->swap = order == '>' && !one_byte;
  return 0;
}

static const char *scan_shape(const char *p, const char *end, npy_header *h) {
  if (p >= end || *p != '(') return NULL;
  p++;
  h->ndim = 0;
  for (;;) {
    p = skip_ws(p, end);
    if (p >= end) return NULL;
    if (*p == ')') return p + 1;
    if (*p < '0' || *p > '9') return NULL;
    if (h->ndim >= MYELIN_MAX_NDIM) return NULL;
    int64_t v = 0;
    while (p < end && *p >= '0' && *p <= '9') {
      if (v > (INT64_MAX - 9) / 10) return NULL;
      v = v * 10 + (*p++ - '0');
    }
    if (p < end && *p == 'L') p++; /* Python 2 longs */
    h->shape[h->ndim++] = v;
    p = skip_ws(p, end);
    if (p < end && *p == ',') p++;
  }
}

static int parse_header_dict(const char *s, size_t len, npy_header *h, const char *what,
                             char *err, size_t errlen) {
  const char *p = s, *end = s + len;
  int have_descr = 0, have_shape = 0;
  memset(h, 0, sizeof *h);
  p = skip_ws(p, end);
  if (p >= end || *p != '{') return myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s: header is not a dict", what);
  p++;
  for (;;) {
    p = skip_ws(p, end);
    if (p < end && *p == '}') break;
    char key[32], val[32];
    p = scan_quoted(p, end, key, sizeof key);
    if (!p) return myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s: malformed header key", what);
    p = skip_ws(p, end);
    if (p >= end || *p != ':') return myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s: malformed header", what);
    p = skip_ws(p + 1, end);
    if (strcmp(key, "descr") == 0) {
      p = scan_quoted(p, end, val, sizeof val);
      if (!p || parse_descr(val, h) != 0)
        return myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s: unsupported dtype in header (descr must be "
                    "a simple numeric or bool type)", what);
      have_descr = 1;
    } else if (strcmp(key, "fortran_order") == 0) {
      if (end - p >= 4 && memcmp(p, "True", 4) == 0) { h->fortran = 1; p += 4; }
      else if (end - p >= 5 && memcmp(p, "False", 5) == 0) p += 5;
      else return myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s: fortran_order is not True/False", what);
    } else if (strcmp(key, "shape") == 0) {
      p = scan_shape(p, end, h);
      if (!p) return myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s: malformed shape (or more than %d dims)",
                          what, MYELIN_MAX_NDIM);
      have_shape = 1;
    } else {
      return myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s: unknown header key '%s'", what, key);
    }
    p = skip_ws(p, end);
    if (p < end && *p == ',') p++;
  }
  if (!have_descr || !have_shape)
    return myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s: header lacks %s", what, have_descr ? "shape" : "descr");
  if (h->fortran)
    return myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s: Fortran-order arrays are not supported "
                "(save with np.ascontiguousarray)", what);
  return 0;
}

/* Validates the fixed prefix; stores the header text length and its offset. */
static int parse_prefix(const uint8_t *b, size_t len, size_t *hlen, size_t *hoff, const char *what,
                        char *err, size_t errlen) {
  *hlen = *hoff = 0;
  if (len < NPY_PREFIX || memcmp(b, NPY_MAGIC, 6) != 0)
    return myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s: not a .npy file (bad magic)", what);
  int major = b[6];
  if (major == 1) {
    *hlen = (size_t)b[8] | (size_t)b[9] << 8;
    *hoff = 10;
  } else if (major == 2 || major == 3) {
    if (len < 12) return myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s: truncated header", what);
    *hlen = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
    *hoff = 12;
  } else {
    return myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s: unsupported .npy version %d.%d", what, major, b[7]);
  }
  if (*hlen > NPY_MAX_HEADER) return myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s: header too long", what);
  return 0;
}

/* Fills a's shape fields from h (count, nbytes; no allocation yet). */
static int array_shape(myelin_array *a, const npy_header *h, const char *what, char *err, size_t errlen) {
  memset(a, 0, sizeof *a);
  size_t count = 1, es = myelin_dtype_size(h->dtype);
  for (int i = 0; i < h->ndim; i++) {
    uint64_t d = (uint64_t)h->shape[i];
    if (d != 0 && count > SIZE_MAX / es / d)
      return myelin_errorf(err, errlen, MYELIN_ERANGE, "%s: shape too large", what);
    count *= d;
    a->shape[i] = h->shape[i];
  }
  a->dtype = h->dtype;
  a->ndim = h->ndim;
  a->count = count;
  a->nbytes = count * es;
  return 0;
}

/* Allocates a's 64-byte-aligned data buffer — only once the caller has
 * checked that the input really holds a->nbytes bytes, so a header claiming
 * a huge shape cannot make us allocate what the file does not contain. */
static int array_alloc(myelin_array *a, const char *what, char *err, size_t errlen) {
  size_t alloc = (a->nbytes + 63) / 64 * 64;
  if (posix_memalign(&a->data, 64, alloc ? alloc : 64) != 0) {
    a->data = NULL;
    return myelin_errorf(err, errlen, MYELIN_ENOMEM, "%s: out of memory for %zu bytes", what, a->nbytes);
  }
  return 0;
}

static void swap_bytes(void *data, size_t count, size_t es) {
  uint8_t *p = data;
  for (size_t i = 0; i < count; i++, p += es)
    for (size_t j = 0; j < es / 2; j++) {
      uint8_t t = p[j];
      p[j] = p[es - 1 - j];
      p[es - 1 - j] = t;
    }
}

static int parse_named(const void *buf, size_t len, myelin_array *out, const char *what, char *err,
                       size_t errlen) {
  const uint8_t *b = buf;
  size_t hlen, hoff;
  npy_header h;
  memset(out, 0, sizeof *out);
  int rc = parse_prefix(b, len, &hlen, &hoff, what, err, errlen);
  if (rc) return rc;
  if (hoff + hlen > len) return myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s: truncated header", what);
  rc = parse_header_dict((const char *)b + hoff, hlen, &h, what, err, errlen);
  if (rc) return rc;
  if ((rc = array_shape(out, &h, what, err, errlen))) return rc;
  if (len - hoff - hlen < out->nbytes) {
    size_t have = len - hoff - hlen, want = out->nbytes;
    memset(out, 0, sizeof *out);
    return myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s: truncated data (%zu of %zu bytes)", what, have, want);
  }
  if ((rc = array_alloc(out, what, err, errlen))) {
    memset(out, 0, sizeof *out);
    return rc;
  }
  memcpy(out->data, b + hoff + hlen, out->nbytes);
  if (h.swap) swap_bytes(out->data, out->count, myelin_dtype_size(out->dtype));
  return 0;
}

int myelin_npy_parse(const void *buf, size_t len, myelin_array *out, char *err, size_t errlen) {
  return parse_named(buf, len, out, "npy", err, errlen);
}

/* ---- .npy files ------------------------------------------------------------ */

int myelin_npy_read(const char *path, myelin_array *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  FILE *f = fopen(path, "rb");
  if (!f)
    return myelin_errorf(err, errlen, errno == ENOENT ? MYELIN_ENOENT : MYELIN_EIO, "%s: %s", path,
                strerror(errno));
  uint8_t pre[12];
  size_t got = fread(pre, 1, sizeof pre, f);
  size_t hlen, hoff;
  npy_header h;
  char *text = NULL;
  int rc = parse_prefix(pre, got, &hlen, &hoff, path, err, errlen);
  if (rc) goto done;
  text = malloc(hlen + 1);
  if (!text) { rc = myelin_errorf(err, errlen, MYELIN_ENOMEM, "%s: out of memory", path); goto done; }
  if (fseek(f, (long)hoff, SEEK_SET) != 0 || fread(text, 1, hlen, f) != hlen) {
    rc = myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s: truncated header", path);
    goto done;
  }
  if ((rc = parse_header_dict(text, hlen, &h, path, err, errlen))) goto done;
  if ((rc = array_shape(out, &h, path, err, errlen))) goto done;
  struct stat sb;
  if (fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode) &&
      (uint64_t)sb.st_size - (hoff + hlen) < out->nbytes) {
    rc = myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s: truncated data (%llu of %zu bytes)", path,
              (unsigned long long)((uint64_t)sb.st_size - (hoff + hlen)), out->nbytes);
    memset(out, 0, sizeof *out);
    goto done;
  }
  if ((rc = array_alloc(out, path, err, errlen))) {
    memset(out, 0, sizeof *out);
    goto done;
  }
  got = fread(out->data, 1, out->nbytes, f);
  if (got != out->nbytes) {
    rc = myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s: truncated data (%zu of %zu bytes)", path, got,
              out->nbytes);
    myelin_array_free(out);
    goto done;
  }
  if (h.swap) swap_bytes(out->data, out->count, myelin_dtype_size(out->dtype));
done:
  free(text);
  fclose(f);
  return rc;
}

int myelin_npy_header(myelin_dtype dtype, int ndim, const int64_t *shape, uint8_t *hdr, size_t cap) {
  const char *descr = myelin_dtype_name(dtype);
  if (!descr || myelin_dtype_size(dtype) == 0 || ndim < 0 || ndim > MYELIN_MAX_NDIM)
    return MYELIN_EINVAL;
  char dict[512];
  int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0) return MYELIN_EINVAL;
    n += snprintf(dict + n, sizeof dict - (size_t)n, i ? ", %lld" : "%lld", (long long)shape[i]);
  }
  n += snprintf(dict + n, sizeof dict - (size_t)n, ndim == 1 ? ",), }" : "), }");
  /* Version 1.0 while the u16 length field suffices, else 2.0 (u32). */
  size_t pre = (size_t)n + 1 + NPY_PREFIX > 65535 ? 12 : NPY_PREFIX;
  size_t total = (pre + (size_t)n + 1 + 63) / 64 * 64;
  if (total > cap) return MYELIN_ERANGE;
  size_t hl = total - pre;
  memcpy(hdr, NPY_MAGIC, 6);
  hdr[6] = pre == 12 ? 2 : 1;
  hdr[7] = 0;
  for (size_t i = 0; i < pre - 8; i++) hdr[8 + i] = (uint8_t)(hl >> (8 * i));
  memcpy(hdr + pre, dict, (size_t)n);
  memset(hdr + pre + n, ' ', hl - (size_t)n - 1);
  hdr[total - 1] = '\n';
  return (int)total;
}

static size_t array_nbytes(myelin_dtype dtype, int ndim, const int64_t *shape) {
  size_t count = 1;
  for (int i = 0; i < ndim; i++) count *= (size_t)shape[i];
  return count * myelin_dtype_size(dtype);
}

int myelin_npy_write(const char *path, myelin_dtype dtype, int ndim, const int64_t *shape,
                     const void *data, char *err, size_t errlen) {
  uint8_t hdr[1024];
  int hl = myelin_npy_header(dtype, ndim, shape, hdr, sizeof hdr);
  if (hl < 0) return myelin_errorf(err, errlen, hl, "%s: invalid dtype or shape for .npy", path);
  myelin_atomic_file f;
  memset(&f, 0, sizeof f);
  int rc = myelin_atomic_open(&f, path, err, errlen);
  if (rc) return rc;
  size_t nb = array_nbytes(dtype, ndim, shape);
  if (fwrite(hdr, 1, (size_t)hl, f.fp) != (size_t)hl || (nb && fwrite(data, 1, nb, f.fp) != nb)) {
    myelin_atomic_abort(&f);
    return myelin_errorf(err, errlen, MYELIN_EIO, "%s: write failed: %s", path, strerror(errno));
  }
  return myelin_atomic_commit(&f, 0, err, errlen);
}

/* ---- .npz reading ---------------------------------------------------------- */

static struct archive *npz_open_read(const char *path, char *err, size_t errlen, int *rc) {
  struct archive *a = archive_read_new();
  if (!a) { *rc = myelin_errorf(err, errlen, MYELIN_ENOMEM, "%s: out of memory", path); return NULL; }
  archive_read_support_format_zip(a);
  if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK) {
    int missing = archive_errno(a) == ENOENT;
    *rc = myelin_errorf(err, errlen, missing ? MYELIN_ENOENT : MYELIN_EFORMAT, "%s: %s", path,
               missing ? "no such file" : archive_error_string(a));
    archive_read_free(a);
    return NULL;
  }
  return a;
}

/* Reads the current entry's bytes into a malloc'ed buffer. */
static int npz_slurp(struct archive *a, const char *what, uint8_t **out, size_t *len, char *err,
                     size_t errlen) {
  size_t cap = 1 << 16, n = 0;
  uint8_t *buf = malloc(cap);
  if (!buf) return myelin_errorf(err, errlen, MYELIN_ENOMEM, "%s: out of memory", what);
  for (;;) {
    if (n == cap) {
      uint8_t *nb = realloc(buf, cap *= 2);
      if (!nb) { free(buf); return myelin_errorf(err, errlen, MYELIN_ENOMEM, "%s: out of memory", what); }
      buf = nb;
    }
    la_ssize_t r = archive_read_data(a, buf + n, cap - n);
    if (r < 0) {
      free(buf);
      return myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s: %s", what, archive_error_string(a));
    }
    if (r == 0) break;
    n += (size_t)r;
  }
  *out = buf;
  *len = n;
  return 0;
}

static int name_matches(const char *entry, const char *key) {
  size_t kl = strlen(key);
  if (strncmp(entry, key, kl) != 0) return 0;
  if (entry[kl] == 0) return 1;
  return strcmp(entry + kl, ".npy") == 0;
}

int myelin_npz_read(const char *path, const char *key, myelin_array *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  int rc = 0;
  struct archive *a = npz_open_read(path, err, errlen, &rc);
  if (!a) return rc;
  struct archive_entry *e;
  rc = myelin_errorf(err, errlen, MYELIN_ENOENT, "%s: no array named '%s' in the archive", path, key);
  int r;
  while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
    const char *name = archive_entry_pathname(e);
    if (!name || !name_matches(name, key)) continue;
    char what[1024];
    snprintf(what, sizeof what, "%s[%s]", path, key);
    uint8_t *buf = NULL;
    size_t len = 0;
    rc = npz_slurp(a, what, &buf, &len, err, errlen);
    if (rc == 0) {
      rc = parse_named(buf, len, out, what, err, errlen);
      free(buf);
    }
    break;
  }
  if (r != ARCHIVE_OK && r != ARCHIVE_EOF)
    rc = myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s: %s", path, archive_error_string(a));
  archive_read_free(a);
  return rc;
}

int myelin_npz_list(const char *path, char ***names, char *err, size_t errlen) {
  *names = NULL;
  int rc = 0;
  struct archive *a = npz_open_read(path, err, errlen, &rc);
  if (!a) return rc;
  size_t n = 0, cap = 8;
  char **list = calloc(cap + 1, sizeof *list);
  struct archive_entry *e;
  int r = ARCHIVE_OK;
  while (list && (r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
    const char *name = archive_entry_pathname(e);
    if (!name) continue;
    size_t l = strlen(name);
    if (l > 4 && strcmp(name + l - 4, ".npy") == 0) l -= 4;
    if (n == cap) {
      char **nl = realloc(list, (cap * 2 + 1) * sizeof *list);
      if (!nl) break;
      list = nl;
      cap *= 2;
    }
    list[n] = strndup(name, l);
    if (!list[n]) break;
    list[++n] = NULL;
  }
  if (!list || r == ARCHIVE_OK) {
    rc = myelin_errorf(err, errlen, MYELIN_ENOMEM, "%s: out of memory", path);
  } else if (r != ARCHIVE_EOF) {
    rc = myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s: %s", path, archive_error_string(a));
  }
  archive_read_free(a);
  if (rc) {
    for (size_t i = 0; list && i < n; i++) free(list[i]);
    free(list);
    return rc;
  }
  *names = list;
  return (int)n;
}

/* ---- .npz writing ---------------------------------------------------------- */

struct myelin_npz_writer {
  myelin_atomic_file file;
  struct archive *a;
  char **keys;
  size_t nkeys, cap;
};

void myelin_npz_abort(myelin_npz_writer *w) {
  if (!w) return;
  if (w->a) archive_write_free(w->a);
  myelin_atomic_abort(&w->file);
  for (size_t i = 0; i < w->nkeys; i++) free(w->keys[i]);
  free(w->keys);
  free(w);
}

myelin_npz_writer *myelin_npz_open(const char *path, char *err, size_t errlen) {
  myelin_npz_writer *w = calloc(1, sizeof *w);
  if (!w) { myelin_errorf(err, errlen, MYELIN_ENOMEM, "%s: out of memory", path); return NULL; }
  if (myelin_atomic_open(&w->file, path, err, errlen) != 0) {
    free(w);
    return NULL;
  }
  w->a = archive_write_new();
  if (!w->a || archive_write_set_format_zip(w->a) != ARCHIVE_OK ||
      archive_write_zip_set_compression_store(w->a) != ARCHIVE_OK ||
      archive_write_set_bytes_in_last_block(w->a, 1) != ARCHIVE_OK ||
      archive_write_open_FILE(w->a, w->file.fp) != ARCHIVE_OK) {
    myelin_errorf(err, errlen, MYELIN_EIO, "%s: cannot start zip archive: %s", path,
         w->a ? archive_error_string(w->a) : "out of memory");
    myelin_npz_abort(w);
    return NULL;
  }
  return w;
}

static int npz_remember_key(myelin_npz_writer *w, const char *key, char *err, size_t errlen) {
  for (size_t i = 0; i < w->nkeys; i++)
    if (strcmp(w->keys[i], key) == 0)
      return myelin_errorf(err, errlen, MYELIN_EINVAL, "%s: duplicate array name '%s'", w->file.path, key);
  if (w->nkeys == w->cap) {
    size_t nc = w->cap ? w->cap * 2 : 16;
    char **nk = realloc(w->keys, nc * sizeof *nk);
    if (!nk) return myelin_errorf(err, errlen, MYELIN_ENOMEM, "out of memory");
    w->keys = nk;
    w->cap = nc;
  }
  if (!(w->keys[w->nkeys] = strdup(key))) return myelin_errorf(err, errlen, MYELIN_ENOMEM, "out of memory");
  w->nkeys++;
  return 0;
}

int myelin_npz_add(myelin_npz_writer *w, const char *key, myelin_dtype dtype, int ndim,
                   const int64_t *shape, const void *data, char *err, size_t errlen) {
  uint8_t hdr[1024];
  int hl = myelin_npy_header(dtype, ndim, shape, hdr, sizeof hdr);
  if (hl < 0) return myelin_errorf(err, errlen, hl, "%s[%s]: invalid dtype or shape", w->file.path, key);
  size_t kl = strlen(key);
  if (kl >= 4 && strcmp(key + kl - 4, ".npy") == 0) kl -= 4;
  char name[1024];
  if (kl == 0 || kl + 5 > sizeof name)
    return myelin_errorf(err, errlen, MYELIN_EINVAL, "%s: bad array name '%s'", w->file.path, key);
  memcpy(name, key, kl);
  name[kl] = 0;
  int rc = npz_remember_key(w, name, err, errlen);
  if (rc) return rc;
  strcat(name, ".npy");
  size_t nb = array_nbytes(dtype, ndim, shape);
  struct archive_entry *e = archive_entry_new();
  if (!e) return myelin_errorf(err, errlen, MYELIN_ENOMEM, "out of memory");
  archive_entry_set_pathname(e, name);
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0644);
  archive_entry_set_size(e, (la_int64_t)(nb + (size_t)hl));
  archive_entry_set_mtime(e, NPZ_FIXED_MTIME, 0);
  rc = 0;
  if (archive_write_header(w->a, e) != ARCHIVE_OK ||
      archive_write_data(w->a, hdr, (size_t)hl) != hl ||
      (nb && archive_write_data(w->a, data, nb) != (la_ssize_t)nb) ||
      archive_write_finish_entry(w->a) != ARCHIVE_OK)
    rc = myelin_errorf(err, errlen, MYELIN_EIO, "%s[%s]: write failed: %s", w->file.path, name,
              archive_error_string(w->a));
  archive_entry_free(e);
  return rc;
}

int myelin_npz_close(myelin_npz_writer *w, char *err, size_t errlen) {
  if (!w) return MYELIN_EINVAL;
  if (archive_write_close(w->a) != ARCHIVE_OK) {
    int rc = myelin_errorf(err, errlen, MYELIN_EIO, "%s: %s", w->file.path, archive_error_string(w->a));
    myelin_npz_abort(w);
    return rc;
  }
  archive_write_free(w->a);
  w->a = NULL;
  int rc = myelin_atomic_commit(&w->file, 0, err, errlen);
  myelin_npz_abort(w); /* frees keys; the committed file is left alone */
  return rc;
}
