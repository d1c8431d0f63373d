/*
 * load.c — the dataset readers of load.h.
 *
 * Whole-file loads go through myelin_read_file (gzip inflated transparently)
 * and are validated before any row is handed out: a truncated file, a bad
 * magic or a label count that differs from the row count fails at init with
 * the file named, not halfway through a run. The IDX data is converted to
 * little-endian in place and the header slid off with one memmove, so an
 * image file costs its own size in memory, once.
 *
 * The unshuffled IDX path streams instead (ds_idx_stream, zlib's gzread reads
 * plain and gzip files alike): only one row is held at a time, and a short
 * read reports which row the file ends in.
 *
 * CSV is parsed by hand (strtod per field) because the files we meet are
 * plain numeric tables: sklearn's digits.csv.gz has 64 pixel columns and the
 * label last, no header. A first line with a non-numeric field is taken as a
 * header; the delimiter is the first of , ; TAB found in the first line,
 * else runs of spaces.
 */
#include "load.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <zlib.h>

#include "myelin/io.h"
#include "myelin/npy.h"

void ds_table_free(ds_table *t) {
  free(t->x);
  free(t->y);
  memset(t, 0, sizeof *t);
}

static int has_suffix(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && strcasecmp(s + a - b, suf) == 0;
}

ds_format ds_guess_format(const char *path) {
  if (has_suffix(path, ".npz")) return DS_NPZ;
  if (has_suffix(path, ".npy")) return DS_NPY;
  if (has_suffix(path, ".csv") || has_suffix(path, ".csv.gz") || has_suffix(path, ".txt") ||
      has_suffix(path, ".txt.gz"))
    return DS_CSV;
  return DS_IDX;
}

/* ---- IDX ------------------------------------------------------------------ */

static myelin_dtype idx_dtype(uint8_t code) {
  switch (code) {
  case 0x08: return MYELIN_U1;
  case 0x09: return MYELIN_I1;
  case 0x0B: return MYELIN_I2;
  case 0x0C: return MYELIN_I4;
  case 0x0D: return MYELIN_F4;
  case 0x0E: return MYELIN_F8;
  default: return MYELIN_DTYPE_INVALID;
  }
}

int ds_idx_header(const uint8_t *b, size_t len, ds_idx_info *info, const char *what, char *err,
                  size_t errlen) {
  memset(info, 0, sizeof *info);
  if (len < 4 || b[0] != 0 || b[1] != 0 || idx_dtype(b[2]) == MYELIN_DTYPE_INVALID)
    return myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s: not an IDX file (bad magic %02x %02x %02x %02x)",
                what, len > 0 ? b[0] : 0, len > 1 ? b[1] : 0, len > 2 ? b[2] : 0, len > 3 ? b[3] : 0);
  int ndim = b[3];
  if (ndim < 1 || ndim > MYELIN_MAX_NDIM)
    return myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s: IDX header has %d dimensions (1..%d allowed)",
                what, ndim, MYELIN_MAX_NDIM);
  if (len < 4 + 4 * (size_t)ndim)
    return myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s: truncated IDX header", what);
  info->dtype = idx_dtype(b[2]);
  info->ndim = ndim;
  size_t row = myelin_dtype_size(info->dtype);
  for (int i = 0; i < ndim; i++) {
    const uint8_t *d = b + 4 + 4 * i;
    uint32_t v = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
    info->shape[i] = v;
    if (i > 0) {
      if (v && row > ((size_t)1 << 40) / v)
        return myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s: IDX row size too large", what);
      row *= v;
    }
  }
  info->rows = (size_t)info->shape[0];
  info->row_bytes = row;
  return 4 + 4 * ndim;
}

/* IDX stores big-endian; the system is little-endian throughout. */
static void from_big_endian(void *data, size_t count, size_t es) {
  if (es == 1) return;
  uint8_t *p = data;
  for (size_t i = 0; i < count; i++, p += es)
    for (size_t j = 0; j < es / 2; j++) {
      uint8_t t = p[j];
      p[j] = p[es - 1 - j];
      p[es - 1 - j] = t;
    }
}

static int load_idx_buffer(const char *path, uint8_t *buf, size_t len, ds_idx_info *info,
                           char *err, size_t errlen) {
  int hl = ds_idx_header(buf, len, info, path, err, errlen);
  if (hl < 0) return hl;
  size_t have = len - (size_t)hl;
  if (info->row_bytes && info->rows > have / info->row_bytes)
    return myelin_errorf(err, errlen, MYELIN_EFORMAT,
                "%s: truncated: header says %zu rows of %zu bytes, data ends within row %zu", path,
                info->rows, info->row_bytes, have / info->row_bytes);
  size_t nbytes = info->rows * info->row_bytes;
  memmove(buf, buf + hl, nbytes);
  from_big_endian(buf, nbytes / myelin_dtype_size(info->dtype), myelin_dtype_size(info->dtype));
  return 0;
}

/* Converts n values of any numeric dtype to int64 labels. */
static int to_labels(const void *data, myelin_dtype dt, size_t n, int64_t *y, const char *what,
                     char *err, size_t errlen) {
  for (size_t i = 0; i < n; i++) {
    double v;
    switch (dt) {
    case MYELIN_U1: case MYELIN_B1: y[i] = ((const uint8_t *)data)[i]; continue;
    case MYELIN_I1: y[i] = ((const int8_t *)data)[i]; continue;
    case MYELIN_I2: y[i] = ((const int16_t *)data)[i]; continue;
    case MYELIN_U2: y[i] = ((const uint16_t *)data)[i]; continue;
    case MYELIN_I4: y[i] = ((const int32_t *)data)[i]; continue;
    case MYELIN_U4: y[i] = ((const uint32_t *)data)[i]; continue;
    case MYELIN_I8: y[i] = ((const int64_t *)data)[i]; continue;
    case MYELIN_U8: y[i] = (int64_t)((const uint64_t *)data)[i]; continue;
    case MYELIN_F4: v = ((const float *)data)[i]; break;
    case MYELIN_F8: v = ((const double *)data)[i]; break;
    default: return myelin_errorf(err, errlen, MYELIN_ETYPE, "%s: labels have an unsupported dtype", what);
    }
    if (v != floor(v) || fabs(v) > 9e15)
      return myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s: label %zu (%g) is not an integer", what, i, v);
    y[i] = (int64_t)v;
  }
  return 0;
}

static int labels_from_text(const char *path, const char *text, size_t len, int64_t **y, size_t *n,
                            char *err, size_t errlen) {
  size_t cap = 1024, cnt = 0, line = 1;
  int64_t *v = malloc(cap * sizeof *v);
  if (!v) return myelin_errorf(err, errlen, MYELIN_ENOMEM, "%s: out of memory", path);
  const char *p = text, *end = text + len;
  while (p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol) eol = end;
    while (p < eol && (*p == ' ' || *p == '\t' || *p == '\r')) p++;
    if (p < eol) {
      char tmp[64];
      size_t l = (size_t)(eol - p) < sizeof tmp - 1 ? (size_t)(eol - p) : sizeof tmp - 1;
      memcpy(tmp, p, l);
      tmp[l] = 0;
      char *q;
      double d = strtod(tmp, &q);
      while (*q == ' ' || *q == '\t' || *q == '\r') q++;
      if (q == tmp || *q || d != floor(d) || fabs(d) > 9e15) {
        free(v);
        return myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s:%zu: label '%s' is not an integer", path, line, tmp);
      }
      if (cnt == cap) {
        int64_t *nv = realloc(v, (cap *= 2) * sizeof *nv);
        if (!nv) { free(v); return myelin_errorf(err, errlen, MYELIN_ENOMEM, "%s: out of memory", path); }
        v = nv;
      }
      v[cnt++] = (int64_t)d;
    }
    p = eol + 1;
    line++;
  }
  *y = v;
  *n = cnt;
  return 0;
}

int ds_load_labels(const char *path, int64_t **y, size_t *n, char *err, size_t errlen) {
  *y = NULL;
  *n = 0;
  int rc;
  if (has_suffix(path, ".npy")) {
    myelin_array a;
    if ((rc = myelin_npy_read(path, &a, err, errlen))) return rc;
    if (a.ndim != 1) {
      myelin_array_free(&a);
      return myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s: labels must be a 1-D array, not %d-D", path, a.ndim);
    }
    *y = malloc((a.count ? a.count : 1) * sizeof **y);
    rc = *y ? to_labels(a.data, a.dtype, a.count, *y, path, err, errlen)
            : myelin_errorf(err, errlen, MYELIN_ENOMEM, "%s: out of memory", path);
    *n = a.count;
    myelin_array_free(&a);
    if (rc) { free(*y); *y = NULL; }
    return rc;
  }
  uint8_t *buf;
  size_t len;
  if ((rc = myelin_read_file(path, 0, &buf, &len, err, errlen))) return rc;
  if (len >= 4 && buf[0] == 0 && buf[1] == 0) { /* IDX */
    ds_idx_info info;
    rc = load_idx_buffer(path, buf, len, &info, err, errlen);
    if (!rc && info.ndim != 1)
      rc = myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s: labels must be a 1-D IDX file, not %d-D", path, info.ndim);
    if (!rc) {
      *y = malloc((info.rows ? info.rows : 1) * sizeof **y);
      rc = *y ? to_labels(buf, info.dtype, info.rows, *y, path, err, errlen)
              : myelin_errorf(err, errlen, MYELIN_ENOMEM, "%s: out of memory", path);
      *n = info.rows;
    }
  } else {
    rc = labels_from_text(path, (const char *)buf, len, y, n, err, errlen);
  }
  free(buf);
  if (rc) { free(*y); *y = NULL; *n = 0; }
  return rc;
}

static int attach_labels(ds_table *t, const char *path, const char *labels_path, char *err,
                         size_t errlen) {
  if (!labels_path || !*labels_path) return 0;
  size_t n;
  int rc = ds_load_labels(labels_path, &t->y, &n, err, errlen);
  if (rc) return rc;
  if (n != t->rows)
    return myelin_errorf(err, errlen, MYELIN_EFORMAT, "shape mismatch: %s has %zu rows but %s has %zu labels",
                path, t->rows, labels_path, n);
  return 0;
}

int ds_load_idx(const char *path, const char *labels_path, ds_table *t, char *err, size_t errlen) {
  memset(t, 0, sizeof *t);
  uint8_t *buf;
  size_t len;
  int rc = myelin_read_file(path, 0, &buf, &len, err, errlen);
  if (rc) return rc;
  ds_idx_info info;
  if ((rc = load_idx_buffer(path, buf, len, &info, err, errlen))) { free(buf); return rc; }
  t->dtype = info.dtype;
  t->ndim = info.ndim;
  memcpy(t->shape, info.shape, sizeof t->shape);
  t->rows = info.rows;
  t->row_bytes = info.row_bytes;
  t->x = buf;
  if ((rc = attach_labels(t, path, labels_path, err, errlen))) ds_table_free(t);
  return rc;
}

static int table_from_array(ds_table *t, myelin_array *a, const char *what, char *err, size_t errlen) {
  if (a->ndim < 1) {
    myelin_array_free(a);
    return myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s: a 0-d array has no rows", what);
  }
  t->dtype = a->dtype;
  t->ndim = a->ndim;
  memcpy(t->shape, a->shape, sizeof t->shape);
  t->rows = (size_t)a->shape[0];
  t->row_bytes = t->rows ? a->nbytes / t->rows : 0;
  t->x = a->data; /* ownership moves to the table */
  a->data = NULL;
  return 0;
}

int ds_load_npy(const char *path, const char *labels_path, ds_table *t, char *err, size_t errlen) {
  memset(t, 0, sizeof *t);
  myelin_array a;
  int rc = myelin_npy_read(path, &a, err, errlen);
  if (rc || (rc = table_from_array(t, &a, path, err, errlen))) return rc;
  if ((rc = attach_labels(t, path, labels_path, err, errlen))) ds_table_free(t);
  return rc;
}

int ds_load_npz(const char *path, const char *x_key, const char *y_key, int y_required, ds_table *t,
                char *err, size_t errlen) {
  memset(t, 0, sizeof *t);
  myelin_array a;
  int rc = myelin_npz_read(path, x_key, &a, err, errlen);
  if (rc || (rc = table_from_array(t, &a, path, err, errlen))) return rc;
  if (!y_key || !*y_key) return 0;
  rc = myelin_npz_read(path, y_key, &a, err, errlen);
  if (rc == MYELIN_ENOENT && !y_required) return 0;
  if (!rc && a.ndim != 1)
    rc = myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s: labels '%s' must be 1-D, not %d-D", path, y_key, a.ndim);
  if (!rc && a.count != t->rows)
    rc = myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s: shape mismatch: '%s' has %zu rows but '%s' has %zu labels",
              path, x_key, t->rows, y_key, a.count);
  if (!rc) {
    t->y = malloc((a.count ? a.count : 1) * sizeof *t->y);
    rc = t->y ? to_labels(a.data, a.dtype, a.count, t->y, path, err, errlen)
              : myelin_errorf(err, errlen, MYELIN_ENOMEM, "%s: out of memory", path);
  }
  if (a.data) myelin_array_free(&a);
  if (rc) ds_table_free(t);
  return rc;
}

/* ---- CSV ------------------------------------------------------------------ */

typedef struct csv_line {
  const char *p, *end;
} csv_line;

static int next_line(const char **pos, const char *end, csv_line *l) {
  while (*pos < end) {
    const char *p = *pos, *eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol) eol = end;
    *pos = eol + 1;
    const char *e = eol;
    while (e > p && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t')) e--;
    l->p = p;
    l->end = e;
    return 1;
  }
  return 0;
}

static char pick_delimiter(csv_line l) {
  const char *cands = ",;\t";
  for (const char *c = cands; *c; c++)
    if (memchr(l.p, *c, (size_t)(l.end - l.p))) return *c;
  return ' ';
}

/* Splits one line into up to cap doubles; returns the field count, or -1-i
 * when field i is not a number (and *bad_at the field start). */
static long parse_fields(csv_line l, char delim, double *out, size_t cap, const char **bad_at) {
  const char *p = l.p;
  long n = 0;
  char tmp[128];
  while (p <= l.end) {
    while (p < l.end && (*p == ' ' || *p == '\t') && delim != '\t') p++;
    if (delim == '\t') while (p < l.end && *p == ' ') p++;
    const char *f = p;
    while (p < l.end && *p != delim && !(delim == ' ' && *p == '\t')) p++;
    size_t fl = (size_t)(p - f);
    while (fl && (f[fl - 1] == ' ' || f[fl - 1] == '\t')) fl--;
    if (fl >= sizeof tmp) fl = sizeof tmp - 1;
    memcpy(tmp, f, fl);
    tmp[fl] = 0;
    char *q;
    double v = strtod(tmp, &q);
    if (fl == 0 || *q) { *bad_at = f; return -1 - n; }
    if ((size_t)n < cap) out[n] = v;
    n++;
    if (p >= l.end) break;
    p++; /* delimiter */
    if (delim == ' ') while (p < l.end && (*p == ' ' || *p == '\t')) p++;
  }
  return n;
}

typedef struct csv_parse {
  const char *path;
  char delim;
  size_t cols, line_no, rows, cap;
  double *vals;
} csv_parse;

static int csv_collect(csv_parse *c, const char *text, size_t len, char *err, size_t errlen) {
  const char *pos = text, *end = text + len, *bad;
  csv_line l;
  int first = 1;
  double *row = NULL;
  while (next_line(&pos, end, &l)) {
    c->line_no++;
    if (l.p == l.end) continue;
    if (first) {
      first = 0;
      c->delim = pick_delimiter(l);
      if (parse_fields(l, c->delim, NULL, 0, &bad) < 0) continue; /* a header line */
    }
    if (!row) { /* the first data row fixes the column count */
      long k0 = parse_fields(l, c->delim, NULL, 0, &bad);
      c->cols = k0 > 0 ? (size_t)k0 : 1;
      if (!(row = malloc(c->cols * sizeof *row)))
        return myelin_errorf(err, errlen, MYELIN_ENOMEM, "%s: out of memory", c->path);
    }
    long k = parse_fields(l, c->delim, row, c->cols, &bad);
    if (k < 0) {
      int fl = 0;
      while (bad + fl < l.end && bad[fl] != c->delim && fl < 40) fl++;
      free(row);
      return myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s:%zu: field %ld ('%.*s') is not a number", c->path,
                  c->line_no, -k, fl, bad);
    }
    if ((size_t)k != c->cols) {
      free(row);
      return myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s:%zu: expected %zu columns, found %ld", c->path,
                  c->line_no, c->cols, k);
    }
    if ((c->rows + 1) * c->cols > c->cap) {
      size_t nc = c->cap ? c->cap * 2 : 1024 * c->cols;
      double *nv = realloc(c->vals, nc * sizeof *nv);
      if (!nv) { free(row); return myelin_errorf(err, errlen, MYELIN_ENOMEM, "%s: out of memory", c->path); }
      c->vals = nv;
      c->cap = nc;
    }
    memcpy(c->vals + c->rows * c->cols, row, c->cols * sizeof *row);
    c->rows++;
  }
  free(row);
  if (c->rows == 0) return myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s: no data rows", c->path);
  return 0;
}

/* Moves the parsed values into t: x as <f4 without the label column. */
static int csv_to_table(const csv_parse *c, long label_col, ds_table *t, char *err, size_t errlen) {
  size_t xcols = c->cols - (label_col >= 0 ? 1 : 0);
  if (xcols == 0) return myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s: no feature columns besides the label", c->path);
  float *x = malloc(c->rows * xcols * sizeof *x);
  int64_t *y = label_col >= 0 ? malloc(c->rows * sizeof *y) : NULL;
  if (!x || (label_col >= 0 && !y)) {
    free(x);
    free(y);
    return myelin_errorf(err, errlen, MYELIN_ENOMEM, "%s: out of memory", c->path);
  }
  for (size_t r = 0; r < c->rows; r++) {
    const double *row = c->vals + r * c->cols;
    float *xo = x + r * xcols;
    for (size_t j = 0; j < c->cols; j++) {
      if ((long)j == label_col) {
        if (row[j] != floor(row[j]) || fabs(row[j]) > 9e15) {
          free(x);
          free(y);
          return myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s: data row %zu: label %g is not an integer",
                      c->path, r + 1, row[j]);
        }
        y[r] = (int64_t)row[j];
      } else {
        *xo++ = (float)row[j];
      }
    }
  }
  t->dtype = MYELIN_F4;
  t->ndim = 2;
  t->shape[0] = (int64_t)c->rows;
  t->shape[1] = (int64_t)xcols;
  t->rows = c->rows;
  t->row_bytes = xcols * sizeof(float);
  t->x = (uint8_t *)x;
  t->y = y;
  return 0;
}

int ds_parse_csv(const char *what, const char *text, size_t len, int label_column, ds_table *t,
                 char *err, size_t errlen) {
  memset(t, 0, sizeof *t);
  csv_parse c = {.path = what};
  int rc = csv_collect(&c, text, len, err, errlen);
  long col = -1;
  if (!rc && label_column != DS_NO_LABEL_COLUMN) {
    col = label_column < 0 ? (long)c.cols + label_column : label_column;
    if (col < 0 || (size_t)col >= c.cols)
      rc = myelin_errorf(err, errlen, MYELIN_ERANGE, "%s: label_column %d is outside the %zu columns", what,
                label_column, c.cols);
  }
  if (!rc) rc = csv_to_table(&c, col, t, err, errlen);
  free(c.vals);
  return rc;
}

int ds_load_csv(const char *path, int label_column, const char *labels_path, ds_table *t, char *err,
                size_t errlen) {
  memset(t, 0, sizeof *t);
  uint8_t *buf;
  size_t len;
  int rc = myelin_read_file(path, 0, &buf, &len, err, errlen);
  if (rc) return rc;
  rc = ds_parse_csv(path, (const char *)buf, len, label_column, t, err, errlen);
  free(buf);
  if (!rc && labels_path && *labels_path) {
    free(t->y);
    t->y = NULL;
    rc = attach_labels(t, path, labels_path, err, errlen);
  }
  if (rc) ds_table_free(t);
  return rc;
}

/* ---- IDX streaming ---------------------------------------------------------- */

struct ds_idx_stream {
  gzFile gz;
  char *path;
  ds_idx_info info;
  size_t header_len, next_row;
};

void ds_idx_stream_close(ds_idx_stream *s) {
  if (!s) return;
  if (s->gz) gzclose(s->gz);
  free(s->path);
  free(s);
}

ds_idx_stream *ds_idx_stream_open(const char *path, ds_idx_info *info, char *err, size_t errlen) {
  ds_idx_stream *s = calloc(1, sizeof *s);
  if (!s || !(s->path = strdup(path))) {
    free(s);
    myelin_errorf(err, errlen, MYELIN_ENOMEM, "%s: out of memory", path);
    return NULL;
  }
  s->gz = gzopen(path, "rb");
  if (!s->gz) {
    myelin_errorf(err, errlen, errno == ENOENT ? MYELIN_ENOENT : MYELIN_EIO, "%s: %s", path,
         errno ? strerror(errno) : "cannot open");
    ds_idx_stream_close(s);
    return NULL;
  }
  gzbuffer(s->gz, 1 << 17);
  uint8_t hdr[4 + 4 * MYELIN_MAX_NDIM];
  int got = gzread(s->gz, hdr, 4);
  if (got == 4 && hdr[3] >= 1 && hdr[3] <= MYELIN_MAX_NDIM)
    got += gzread(s->gz, hdr + 4, 4u * hdr[3]);
  int hl = ds_idx_header(hdr, got > 0 ? (size_t)got : 0, &s->info, path, err, errlen);
  if (hl < 0) {
    ds_idx_stream_close(s);
    return NULL;
  }
  /* A row must fit in what the file can hold (gzip inflates at most ~1032x),
   * so a header claiming huge rows fails here, before the row buffer exists. */
  struct stat sb;
  if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode) &&
      s->info.row_bytes / 1100 > (uint64_t)sb.st_size) {
    myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s: truncated: header says rows of %zu bytes, the file has %lld",
         path, s->info.row_bytes, (long long)sb.st_size);
    ds_idx_stream_close(s);
    return NULL;
  }
  s->header_len = (size_t)hl;
  *info = s->info;
  return s;
}

int ds_idx_stream_next(ds_idx_stream *s, void *buf, char *err, size_t errlen) {
  if (s->next_row >= s->info.rows) return 0;
  int got = gzread(s->gz, buf, (unsigned)s->info.row_bytes);
  if (got < 0 || (size_t)got != s->info.row_bytes) {
    int zerr;
    const char *zmsg = gzerror(s->gz, &zerr);
    return myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s: truncated: file ends within row %zu of %zu%s%s",
                s->path, s->next_row, s->info.rows, zerr ? ": " : "", zerr ? zmsg : "");
  }
  size_t es = myelin_dtype_size(s->info.dtype);
  from_big_endian(buf, s->info.row_bytes / es, es);
  s->next_row++;
  return 1;
}

int ds_idx_stream_rewind(ds_idx_stream *s, char *err, size_t errlen) {
  if (gzrewind(s->gz) != 0 || gzseek(s->gz, (z_off_t)s->header_len, SEEK_SET) < 0)
    return myelin_errorf(err, errlen, MYELIN_EIO, "%s: cannot rewind", s->path);
  s->next_row = 0;
  return 0;
}

int ds_idx_stream_seek(ds_idx_stream *s, size_t row, char *err, size_t errlen) {
  if (row > s->info.rows) row = s->info.rows;
  z_off_t off = (z_off_t)(s->header_len + row * s->info.row_bytes);
  if (gzrewind(s->gz) != 0 || gzseek(s->gz, off, SEEK_SET) < 0) {
    int zerr;
    const char *zmsg = gzerror(s->gz, &zerr);
    return myelin_errorf(err, errlen, MYELIN_EFORMAT, "%s: cannot seek to row %zu of %zu%s%s", s->path, row,
                         s->info.rows, zerr ? ": " : "", zerr ? zmsg : "");
  }
  s->next_row = row;
  return 0;
}

/* ---- permutation -------------------------------------------------------------- */

typedef struct sm64 {
  uint64_t s;
} sm64;

static uint64_t sm64_next(sm64 *g) {
  uint64_t z = (g->s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* Unbiased integer in [0, range), range >= 1 (Lemire 2019). */
static uint32_t sm64_below(sm64 *g, uint32_t range) {
  uint64_t m = (sm64_next(g) >> 32) * (uint64_t)range;
  uint32_t low = (uint32_t)m;
  if (low < range) {
    uint32_t t = (uint32_t)(-range) % range;
    while (low < t) {
      m = (sm64_next(g) >> 32) * (uint64_t)range;
      low = (uint32_t)m;
    }
  }
  return (uint32_t)(m >> 32);
}

void ds_permutation(uint64_t seed, uint64_t epoch, uint32_t *order, size_t n) {
  sm64 g = {seed};
  g.s = sm64_next(&g) ^ (epoch * 0xd1b54a32d192ed03ULL);
  for (size_t i = 0; i < n; i++) order[i] = (uint32_t)i;
  for (size_t i = n; i > 1; i--) {
    uint32_t j = sm64_below(&g, (uint32_t)i);
    uint32_t tmp = order[i - 1];
    order[i - 1] = order[j];
    order[j] = tmp;
  }
}
