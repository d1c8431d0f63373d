/*
 * words_read.c — the readers of words_read.h.
 *
 * Delimited text is split into records by a small state machine (quotes only
 * for CSV, where a quoted field may hold separators, "" and newlines; TSV
 * fields are taken literally, as BIDS says). TextGrid files are read the way
 * Praat reads its text files: as a stream of values — numbers standing alone
 * between blanks, "quoted strings" (with "" escapes) and <flags> — with
 * every label (`xmin =`, `intervals [2]:`, `item []:`) skipped. The long and
 * the short format then give the same stream, so one parser reads both.
 * UTF-16 files (Praat writes them when a label is not ASCII) are converted
 * to UTF-8 first with iconv.
 */
#include "words_read.h"

#include <ctype.h>
#include <errno.h>
#include <iconv.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return -1;
}

static int push_word(word_list *w, const char *s, size_t len, double on, double off, size_t line) {
  if (w->n == w->cap) {
    size_t cap = w->cap ? 2 * w->cap : 256;
    char **words = realloc(w->words, cap * sizeof *words);
    if (words) w->words = words;
    double *o1 = realloc(w->onset, cap * sizeof *o1);
    if (o1) w->onset = o1;
    double *o2 = realloc(w->offset, cap * sizeof *o2);
    if (o2) w->offset = o2;
    unsigned char *ip = realloc(w->interpolated, cap);
    if (ip) w->interpolated = ip;
    size_t *ln = realloc(w->line, cap * sizeof *ln);
    if (ln) w->line = ln;
    if (!words || !o1 || !o2 || !ip || !ln) return -1;
    w->cap = cap;
  }
  char *copy = strndup(s, len);
  if (!copy) return -1;
  w->words[w->n] = copy;
  w->onset[w->n] = on, w->offset[w->n] = off;
  w->interpolated[w->n] = 0;
  w->line[w->n++] = line;
  return 0;
}

void words_free(word_list *w) {
  for (size_t i = 0; i < w->n; i++)
    free(w->words[i]);
  free(w->words), free(w->onset), free(w->offset), free(w->interpolated), free(w->line);
  memset(w, 0, sizeof *w);
}

/* A timing field: 0 with a number, 1 when missing (empty, n/a, nan, none),
 * -1 when it is something else. */
static int parse_time(const char *s, double *out) {
  while (isspace((unsigned char)*s))
    s++;
  size_t n = strlen(s);
  while (n && isspace((unsigned char)s[n - 1]))
    n--;
  if (n == 0 || (n == 3 && !strncasecmp(s, "n/a", 3)) || (n == 3 && !strncasecmp(s, "nan", 3)) ||
      (n == 4 && !strncasecmp(s, "none", 4)) || (n == 2 && !strncasecmp(s, "na", 2))) {
    *out = NAN;
    return 1;
  }
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (end != s + n || errno || !isfinite(v)) return -1;
  *out = v;
  return 0;
}

/* ---- delimited text ----------------------------------------------------------- */

typedef struct record {
  char **f;
  size_t n, cap;
  size_t line; /* where the record starts */
} record;

static void record_clear(record *r) {
  for (size_t i = 0; i < r->n; i++)
    free(r->f[i]);
  r->n = 0;
}

static int record_add(record *r, const char *s, size_t len) {
  if (r->n == r->cap) {
    size_t cap = r->cap ? 2 * r->cap : 16;
    char **f = realloc(r->f, cap * sizeof *f);
    if (!f) return -1;
    r->f = f, r->cap = cap;
  }
  r->f[r->n] = strndup(s, len);
  return r->f[r->n++] ? 0 : -1;
}

/* Reads the record starting at *pos. Returns 1 with a record, 0 at the end,
 * -1 on error (unterminated quote, out of memory). */
static int next_record(const char *t, size_t len, size_t *pos, size_t *line, char sep, record *r, char *err,
                       size_t errlen) {
  record_clear(r);
  size_t p = *pos;
  /* skip blank lines */
  for (;;) {
    size_t q = p;
    while (q < len && (t[q] == ' ' || t[q] == '\r' || (sep != '\t' && t[q] == '\t')))
      q++;
    if (q < len && t[q] == '\n') {
      p = q + 1, (*line)++;
      continue;
    }
    if (q >= len) {
      *pos = len;
      return 0;
    }
    break;
  }
  r->line = *line;
  char *buf = NULL;
  size_t blen = 0, bcap = 0;
  for (;;) {
    blen = 0;
    int quoted = sep == ',' && p < len && t[p] == '"';
    if (quoted) {
      size_t start_line = *line;
      p++;
      for (;;) {
        if (p >= len) {
          free(buf);
          return fail(err, errlen, "%zu: a quoted field is never closed", start_line);
        }
        char c = t[p++];
        if (c == '"') {
          if (p < len && t[p] == '"')
            p++;
          else
            break;
        }
        if (c == '\n') (*line)++;
        if (blen + 1 >= bcap) {
          bcap = bcap ? 2 * bcap : 64;
          char *nb = realloc(buf, bcap);
          if (!nb) return free(buf), fail(err, errlen, "out of memory");
          buf = nb;
        }
        buf[blen++] = c;
      }
      while (p < len && t[p] != sep && t[p] != '\n')
        p++; /* text after the quote is ignored */
      if (record_add(r, buf ? buf : "", blen) != 0) return free(buf), fail(err, errlen, "out of memory");
    } else {
      size_t s = p;
      while (p < len && t[p] != sep && t[p] != '\n')
        p++;
      size_t e = p;
      if (e > s && t[e - 1] == '\r') e--;
      if (record_add(r, t + s, e - s) != 0) return free(buf), fail(err, errlen, "out of memory");
    }
    if (p < len && t[p] == sep) {
      p++;
      continue;
    }
    if (p < len && t[p] == '\n') p++, (*line)++;
    break;
  }
  free(buf);
  *pos = p;
  return 1;
}

static void trim(char *s) {
  size_t n = strlen(s), a = 0;
  while (n && isspace((unsigned char)s[n - 1]))
    s[--n] = 0;
  while (isspace((unsigned char)s[a]))
    a++;
  memmove(s, s + a, n - a + 1);
}

/* A column spec against a header: index, or -1 when absent. A number is a
 * 1-based column. */
static long find_column(const record *hdr, const char *spec) {
  if (!spec || !*spec) return -1;
  char *end;
  long k = strtol(spec, &end, 10);
  if (*end == 0 && k >= 1) return k - 1;
  for (size_t i = 0; hdr && i < hdr->n; i++)
    if (!strcasecmp(hdr->f[i], spec)) return (long)i;
  return -2; /* named, but not in the header */
}

static long first_of(const record *hdr, const char *const *names) {
  for (; *names; names++) {
    long c = find_column(hdr, *names);
    if (c >= 0) return c;
  }
  return -1;
}

static int is_number_spec(const char *s) { return s && *s && strspn(s, "0123456789") == strlen(s); }

static const char *const word_names[] = {"word", "words", "text", "token", "transcript", "value", NULL};
static const char *const onset_names[] = {"onset", "start", "start_time", "tmin", "begin", NULL};
static const char *const offset_names[] = {"offset", "end", "stop", "end_time", "tmax", NULL};
static const char *const duration_names[] = {"duration", NULL};

/* Resolves one column: the user's spec, else the defaults. */
static int resolve(const record *hdr, const char *spec, const char *const *defaults, long fallback,
                   const char *what, long *col, char *err, size_t errlen) {
  if (spec && *spec) {
    *col = find_column(hdr, spec);
    if (*col == -2) {
      char cols[512] = "";
      for (size_t i = 0; hdr && i < hdr->n; i++) {
        size_t l = strlen(cols);
        snprintf(cols + l, sizeof cols - l, "%s%s", i ? ", " : "", hdr->f[i]);
      }
      return fail(err, errlen, "%zu: no column '%s' (%s column) in the header (columns: %s)",
                  hdr ? hdr->line : 1, spec, what, cols);
    }
    return 0;
  }
  *col = hdr ? first_of(hdr, defaults) : fallback;
  return 0;
}

int words_read_table(const char *text, size_t len, const table_opts *o, word_list *out, char *err,
                     size_t errlen) {
  size_t pos = 0, line = 1;
  if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) pos = 3; /* UTF-8 BOM */
  record r = {0}, hdr = {0};
  int rc = next_record(text, len, &pos, &line, o->sep, &hdr, err, errlen);
  if (rc <= 0) {
    record_clear(&hdr);
    free(hdr.f);
    return rc < 0 ? -1 : fail(err, errlen, "1: the file is empty");
  }
  for (size_t i = 0; i < hdr.n; i++)
    trim(hdr.f[i]);
  /* Header: auto = the first row names a known or requested column. */
  int header = o->header;
  if (header < 0) {
    const char *specs[4] = {o->word, o->onset, o->offset, o->duration};
    header = first_of(&hdr, onset_names) >= 0 || first_of(&hdr, word_names) >= 0;
    for (int k = 0; k < 4; k++)
      if (specs[k] && *specs[k] && !is_number_spec(specs[k]) && find_column(&hdr, specs[k]) >= 0) header = 1;
  }
  const record *h = header ? &hdr : NULL;
  long cw, con, coff, cdur;
  /* Without a header the defaults are Gentle's align.csv: word, aligned
   * word, onset, offset. */
  if (resolve(h, o->word, word_names, 0, "word", &cw, err, errlen) ||
      resolve(h, o->onset, onset_names, 2, "onset", &con, err, errlen) ||
      resolve(h, o->offset, offset_names, 3, "offset", &coff, err, errlen) ||
      resolve(h, o->duration, duration_names, -1, "duration", &cdur, err, errlen))
    goto bad;
  if (!h && !(o->offset && *o->offset) && o->duration && *o->duration) coff = -1;
  if (cw < 0 || con < 0) {
    rc = fail(err, errlen, "%zu: no %s column in the header (name it with %s)", hdr.line,
              cw < 0 ? "word" : "onset", cw < 0 ? "word_column" : "onset_column");
    goto bad;
  }
  long wcol = -1;
  char *wval = NULL;
  if (o->where && *o->where) {
    const char *eq = strchr(o->where, '=');
    char *name = eq ? strndup(o->where, (size_t)(eq - o->where)) : NULL;
    if (name) trim(name);
    wcol = name ? find_column(h, name) : -3;
    free(name);
    if (wcol < 0) {
      rc = fail(err, errlen, "%zu: where: expected COLUMN=VALUE with a column of the header, got '%s'",
                hdr.line, o->where);
      goto bad;
    }
    wval = (char *)eq + 1;
  }
  const record *row = h ? NULL : &hdr;
  for (;;) {
    if (!row) {
      rc = next_record(text, len, &pos, &line, o->sep, &r, err, errlen);
      if (rc < 0) goto bad;
      if (rc == 0) break;
      row = &r;
    }
    long need = cw > con ? cw : con;
    if ((size_t)need >= row->n) {
      rc = fail(err, errlen, "%zu: %zu fields, but the %s column is number %ld", row->line, row->n,
                cw > con ? "word" : "onset", need + 1);
      goto bad;
    }
    if (wcol >= 0 && ((size_t)wcol >= row->n || strcmp(row->f[wcol], wval) != 0)) {
      row = NULL;
      continue;
    }
    double on, off = NAN, dur = NAN;
    int m = parse_time(row->f[con], &on);
    if (m < 0) {
      rc = fail(err, errlen, "%zu: onset '%s' is not a number (or empty / n/a)", row->line, row->f[con]);
      goto bad;
    }
    if (coff >= 0 && (size_t)coff < row->n && parse_time(row->f[coff], &off) < 0) {
      rc = fail(err, errlen, "%zu: offset '%s' is not a number (or empty / n/a)", row->line, row->f[coff]);
      goto bad;
    }
    if (cdur >= 0 && (size_t)cdur < row->n) {
      if (parse_time(row->f[cdur], &dur) < 0) {
        rc =
            fail(err, errlen, "%zu: duration '%s' is not a number (or empty / n/a)", row->line, row->f[cdur]);
        goto bad;
      }
      if (isnan(off) && !isnan(dur) && !isnan(on)) off = on + dur;
    }
    if (!isnan(on) && !isnan(off) && off < on) {
      rc = fail(err, errlen, "%zu: offset %g is before onset %g", row->line, off, on);
      goto bad;
    }
    char *w = row->f[cw];
    trim(w);
    if (push_word(out, w, strlen(w), on, off, row->line) != 0) {
      rc = fail(err, errlen, "out of memory");
      goto bad;
    }
    row = NULL;
  }
  rc = 0;
bad:
  record_clear(&r), record_clear(&hdr);
  free(r.f), free(hdr.f);
  return rc ? -1 : 0;
}

/* ---- TextGrid ---------------------------------------------------------------------- */

typedef enum { TOK_END, TOK_NUM, TOK_STR, TOK_FLAG } tok_type;

typedef struct lexer {
  const char *t;
  size_t len, pos, line;
  tok_type type;
  double num;
  char *str; /* TOK_STR / TOK_FLAG: malloc'ed */
  size_t tok_line;
} lexer;

/* The next value; labels are skipped. -1 on an unterminated string. */
static int lex(lexer *x, char *err, size_t errlen) {
  free(x->str);
  x->str = NULL;
  const char *t = x->t;
  for (;;) {
    while (x->pos < x->len && isspace((unsigned char)t[x->pos])) {
      if (t[x->pos] == '\n') x->line++;
      x->pos++;
    }
    if (x->pos >= x->len) return x->type = TOK_END, 0;
    x->tok_line = x->line;
    char c = t[x->pos];
    if (c == '!') { /* a comment to the end of the line */
      while (x->pos < x->len && t[x->pos] != '\n')
        x->pos++;
      continue;
    }
    if (c == '"') {
      size_t cap = 64, n = 0;
      char *s = malloc(cap);
      if (!s) return fail(err, errlen, "out of memory");
      x->pos++;
      for (;;) {
        if (x->pos >= x->len) {
          free(s);
          return fail(err, errlen, "%zu: a \"string\" is never closed", x->tok_line);
        }
        char d = t[x->pos++];
        if (d == '"') {
          if (x->pos < x->len && t[x->pos] == '"')
            x->pos++;
          else
            break;
        }
        if (d == '\n') x->line++;
        if (n + 1 >= cap) {
          char *ns = realloc(s, cap *= 2);
          if (!ns) return free(s), fail(err, errlen, "out of memory");
          s = ns;
        }
        s[n++] = d;
      }
      s[n] = 0;
      x->str = s;
      return x->type = TOK_STR, 0;
    }
    size_t s = x->pos;
    while (x->pos < x->len && !isspace((unsigned char)t[x->pos]))
      x->pos++;
    size_t n = x->pos - s;
    if (c == '<' && t[x->pos - 1] == '>') {
      x->str = strndup(t + s, n);
      return x->str ? (x->type = TOK_FLAG, 0) : fail(err, errlen, "out of memory");
    }
    char buf[64], *end;
    if (n < sizeof buf) {
      memcpy(buf, t + s, n);
      buf[n] = 0;
      double v = strtod(buf, &end);
      if (end == buf + n && n > 0) return x->num = v, x->type = TOK_NUM, 0;
    }
    /* anything else is a label */
  }
}

static int expect_num(lexer *x, const char *what, double *v, char *err, size_t errlen) {
  if (lex(x, err, errlen) != 0) return -1;
  if (x->type != TOK_NUM)
    return fail(err, errlen, "%zu: expected a number (%s), found %s", x->tok_line, what,
                x->type == TOK_END   ? "the end of the file"
                : x->type == TOK_STR ? "a string"
                                     : "a flag");
  *v = x->num;
  return 0;
}

static int expect_str(lexer *x, const char *what, char **s, char *err, size_t errlen) {
  if (lex(x, err, errlen) != 0) return -1;
  if (x->type != TOK_STR)
    return fail(err, errlen, "%zu: expected a \"string\" (%s), found %s", x->tok_line, what,
                x->type == TOK_END   ? "the end of the file"
                : x->type == TOK_NUM ? "a number"
                                     : "a flag");
  *s = x->str;
  x->str = NULL;
  return 0;
}

static int expect_count(lexer *x, const char *what, size_t *n, char *err, size_t errlen) {
  double v = 0;
  if (expect_num(x, what, &v, err, errlen) != 0) return -1;
  if (!(v >= 0 && v <= 1e8) || v != floor(v))
    return fail(err, errlen, "%zu: %s = %g is not a count", x->tok_line, what, v);
  *n = (size_t)v;
  return 0;
}

/* UTF-16 with a BOM -> UTF-8 (malloc'ed); NULL text when not UTF-16. */
static int utf16_to_utf8(const char *text, size_t len, char **out, size_t *olen, char *err, size_t errlen) {
  *out = NULL;
  if (len < 2) return 0;
  const unsigned char *u = (const unsigned char *)text;
  const char *from = (u[0] == 0xFF && u[1] == 0xFE)   ? "UTF-16LE"
                     : (u[0] == 0xFE && u[1] == 0xFF) ? "UTF-16BE"
                                                      : NULL;
  if (!from) return 0;
  iconv_t cd = iconv_open("UTF-8", from);
  if (cd == (iconv_t)-1) return fail(err, errlen, "1: cannot convert %s (iconv)", from);
  size_t cap = len * 2 + 16, left = cap, inleft = len - 2;
  char *buf = malloc(cap), *in = (char *)text + 2, *o = buf;
  if (!buf) return iconv_close(cd), fail(err, errlen, "out of memory");
  size_t r = iconv(cd, &in, &inleft, &o, &left);
  iconv_close(cd);
  if (r == (size_t)-1) {
    free(buf);
    return fail(err, errlen, "1: invalid %s text at byte %zu", from, (size_t)(in - text));
  }
  *out = buf, *olen = cap - left;
  return 0;
}

static int tier_matches_auto(const char *name, int pass) {
  size_t n = strlen(name);
  if (pass == 0) return !strcasecmp(name, "words");
  if (pass == 1) return n >= 5 && !strcasecmp(name + n - 5, "words");
  return 1;
}

static int is_silence(const char *label, const char *const *skip) {
  const char *s = label;
  while (isspace((unsigned char)*s))
    s++;
  if (!*s) return 1;
  for (; skip && *skip; skip++)
    if (!strcmp(s, *skip)) return 1;
  return 0;
}

typedef struct tier_pos {
  char *name;
  size_t pos, line; /* lexer state just after the tier's interval count */
  size_t count;
} tier_pos;

int words_read_textgrid(const char *text, size_t len, const char *tier, const char *const *skip,
                        word_list *out, char *err, size_t errlen) {
  char *conv = NULL;
  size_t clen = 0;
  if (utf16_to_utf8(text, len, &conv, &clen, err, errlen) != 0) return -1;
  if (conv) text = conv, len = clen;
  lexer x = {.t = text, .len = len, .line = 1};
  if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) x.pos = 3;
  char *ftype = NULL, *oclass = NULL;
  tier_pos tiers[256];
  size_t ntiers = 0, n = 0;
  double v;
  int rc = -1;
  if (expect_str(&x, "File type", &ftype, err, errlen) ||
      expect_str(&x, "Object class", &oclass, err, errlen))
    goto done;
  if (strcmp(ftype, "ooTextFile") != 0 || strcmp(oclass, "TextGrid") != 0) {
    fail(err, errlen,
         "1: not a Praat TextGrid text file (File type \"%s\", Object class \"%s\"; "
         "binary TextGrids are not read: save as text file in Praat)",
         ftype, oclass);
    goto done;
  }
  if (expect_num(&x, "xmin", &v, err, errlen) || expect_num(&x, "xmax", &v, err, errlen)) goto done;
  if (lex(&x, err, errlen) != 0) goto done;
  if (x.type == TOK_FLAG && !strcmp(x.str, "<absent>")) {
    fail(err, errlen, "%zu: the TextGrid has no tiers", x.tok_line);
    goto done;
  }
  if (x.type != TOK_FLAG || strcmp(x.str, "<exists>")) {
    fail(err, errlen, "%zu: expected tiers? <exists>", x.tok_line);
    goto done;
  }
  if (expect_count(&x, "size (tiers)", &n, err, errlen)) goto done;
  /* Index every tier, skipping its items. */
  for (size_t k = 0; k < n; k++) {
    char *cls = NULL, *name = NULL;
    size_t cnt;
    if (expect_str(&x, "tier class", &cls, err, errlen) || expect_str(&x, "tier name", &name, err, errlen) ||
        expect_num(&x, "tier xmin", &v, err, errlen) || expect_num(&x, "tier xmax", &v, err, errlen) ||
        expect_count(&x, "intervals: size", &cnt, err, errlen)) {
      free(cls), free(name);
      goto done;
    }
    int interval = !strcmp(cls, "IntervalTier");
    if (!interval && strcmp(cls, "TextTier")) {
      fail(err, errlen, "%zu: unknown tier class \"%s\" (IntervalTier or TextTier)", x.tok_line, cls);
      free(cls), free(name);
      goto done;
    }
    free(cls);
    if (interval && ntiers < sizeof tiers / sizeof *tiers)
      tiers[ntiers++] = (tier_pos){name, x.pos, x.line, cnt};
    else
      free(name);
    for (size_t i = 0; i < cnt; i++) {
      char *s = NULL;
      if (expect_num(&x, "xmin / number", &v, err, errlen) ||
          (interval && expect_num(&x, "xmax", &v, err, errlen)) ||
          expect_str(&x, "text / mark", &s, err, errlen))
        goto done;
      free(s);
    }
  }
  const tier_pos *tp = NULL;
  if (tier && *tier) {
    for (size_t k = 0; k < ntiers && !tp; k++)
      if (!strcmp(tiers[k].name, tier)) tp = &tiers[k];
    if (!tp) {
      char names[512] = "";
      for (size_t k = 0; k < ntiers; k++) {
        size_t l = strlen(names);
        snprintf(names + l, sizeof names - l, "%s\"%s\"", k ? ", " : "", tiers[k].name);
      }
      fail(err, errlen, "1: no interval tier named \"%s\" (interval tiers: %s)", tier, names);
      goto done;
    }
  }
  for (int pass = 0; pass < 3 && !tp; pass++)
    for (size_t k = 0; k < ntiers && !tp; k++)
      if (tier_matches_auto(tiers[k].name, pass)) tp = &tiers[k];
  if (!tp) {
    fail(err, errlen, "1: the TextGrid has no interval tier");
    goto done;
  }
  x.pos = tp->pos, x.line = tp->line;
  double prev_end = -INFINITY;
  for (size_t i = 0; i < tp->count; i++) {
    double a, b;
    char *s = NULL;
    if (expect_num(&x, "xmin", &a, err, errlen) || expect_num(&x, "xmax", &b, err, errlen) ||
        expect_str(&x, "text", &s, err, errlen))
      goto done;
    if (b < a || a < prev_end - 1e-9) {
      fail(err, errlen, "%zu: interval [%g, %g] of tier \"%s\" is %s", x.tok_line, a, b, tp->name,
           b < a ? "reversed" : "before the previous one");
      free(s);
      goto done;
    }
    prev_end = b;
    if (!is_silence(s, skip)) {
      char *w = s;
      while (isspace((unsigned char)*w))
        w++;
      size_t wl = strlen(w);
      while (wl && isspace((unsigned char)w[wl - 1]))
        wl--;
      if (push_word(out, w, wl, a, b, x.tok_line) != 0) {
        free(s);
        fail(err, errlen, "out of memory");
        goto done;
      }
    }
    free(s);
  }
  rc = 0;
done:
  free(x.str), free(ftype), free(oclass), free(conv);
  for (size_t k = 0; k < ntiers; k++)
    free(tiers[k].name);
  return rc;
}

/* ---- missing timings --------------------------------------------------------------- */

static void drop_words(word_list *w, const unsigned char *keep) {
  size_t j = 0;
  for (size_t i = 0; i < w->n; i++) {
    if (!keep[i]) {
      free(w->words[i]);
      continue;
    }
    w->words[j] = w->words[i], w->onset[j] = w->onset[i], w->offset[j] = w->offset[i];
    w->interpolated[j] = w->interpolated[i], w->line[j] = w->line[i];
    j++;
  }
  w->n = j;
}

int words_fill_missing(word_list *w, const char *mode, size_t *filled, size_t *dropped, char *err,
                       size_t errlen) {
  *filled = *dropped = 0;
  int interp = !strcmp(mode, "interpolate"), drop = !strcmp(mode, "drop");
  if (!interp && !drop && strcmp(mode, "error"))
    return fail(err, errlen, "missing: expected interpolate, drop or error, got '%s'", mode);
  unsigned char *keep = malloc(w->n + 1);
  if (!keep) return fail(err, errlen, "out of memory");
  size_t first = w->n, last = 0;
  for (size_t i = 0; i < w->n; i++) {
    keep[i] = 1;
    if (!isnan(w->onset[i])) {
      if (first == w->n) first = i;
      last = i;
    }
  }
  for (size_t i = 0; i < w->n; i++) {
    if (!isnan(w->onset[i])) continue;
    if (!interp && !drop) {
      free(keep);
      return fail(err, errlen, "%zu: word '%s' has no onset (missing: error)", w->line[i], w->words[i]);
    }
    if (drop || first == w->n || i < first || i > last) {
      keep[i] = 0, (*dropped)++;
      continue;
    }
    /* The gap from the previous timed word's end to the next one's onset. */
    size_t a = i - 1, b = i;
    while (isnan(w->onset[b]))
      b++;
    double start = isnan(w->offset[a]) ? w->onset[a] : w->offset[a], stop = w->onset[b];
    if (stop < start) stop = start;
    size_t k = b - a - 1;
    double slot = (stop - start) / (double)k;
    for (size_t j = 0; j < k; j++) {
      w->onset[i + j] = start + (double)j * slot;
      w->offset[i + j] = start + (double)(j + 1) * slot;
      w->interpolated[i + j] = 1;
    }
    *filled += k;
    i = b;
  }
  drop_words(w, keep);
  free(keep);
  for (size_t i = 0; i < w->n; i++)
    if (isnan(w->offset[i]))
      w->offset[i] = i + 1 < w->n && w->onset[i + 1] >= w->onset[i] ? w->onset[i + 1] : w->onset[i];
  return 0;
}
