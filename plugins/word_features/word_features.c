/*
 * word_features — the usual baseline features of a story's words: `words`
 * -> `features` word events (onset [W], data <f4 [W, F]), one column per
 * name in `features`:
 *
 *   rate           1 for every word: summed per TR (encoding's binning) it
 *                  is the word rate; convolved (events: hrf) the word-rate
 *                  regressor;
 *   length         the word's length in Unicode characters, surrounding
 *                  punctuation left out ("house." -> 5);
 *   log_frequency  log10(1 + count) of the word in a user-given frequency
 *                  list (`frequencies`), matched lower-cased without
 *                  surrounding punctuation; a word not in the list counts 0
 *                  (the misses are logged and counted).
 *
 * The frequency list is a text file of "word count" lines (tab, comma or
 * spaces between; a first line whose count is not a number is a header, as
 * in SUBTLEX or wordfreq exports), read in init into a sorted array
 * searched by bisection. Errors name the file and line.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "myelin/io.h"
#include "myelin/plugin.h"

enum { COL_RATE, COL_LENGTH, COL_LOGFREQ };

typedef struct freq {
  char *word;
  double count;
} freq;

typedef struct wf_state {
  const myelin_host *host;
  myelin_stage *st;
  int cols[8];
  size_t ncols;
  freq *freqs;
  size_t nfreq;
  int lowercase;
  double tr;
} wf_state;

static const char *const col_names[] = {"rate", "length", "log_frequency"};

/* The word without surrounding ASCII punctuation: [*b, *e). */
static void core(const char *w, size_t n, size_t *b, size_t *e) {
  *b = 0, *e = n;
  while (*b < *e && ispunct((unsigned char)w[*b]))
    (*b)++;
  while (*e > *b && ispunct((unsigned char)w[*e - 1]))
    (*e)--;
}

static size_t utf8_chars(const char *s, size_t n) {
  size_t c = 0;
  for (size_t i = 0; i < n; i++)
    c += ((unsigned char)s[i] & 0xC0) != 0x80;
  return c;
}

static int cmp_freq(const void *a, const void *b) {
  return strcmp(((const freq *)a)->word, ((const freq *)b)->word);
}

static char *normalize(const wf_state *s, const char *w, size_t n) {
  size_t b, e;
  core(w, n, &b, &e);
  char *k = strndup(w + b, e - b);
  for (char *p = k; k && s->lowercase && *p; p++)
    *p = (char)tolower((unsigned char)*p);
  return k;
}

static int load_freqs(wf_state *s, const char *path) {
  uint8_t *text = NULL;
  size_t len = 0, cap = 0, line = 0;
  char err[512];
  if (myelin_read_file(path, (size_t)1 << 30, &text, &len, err, sizeof err) != 0)
    return s->host->error(s->st, "frequencies: %s: %s", path, err);
  int rc = 0;
  for (char *p = (char *)text, *end = p + len; p < end && !rc;) {
    char *nl = memchr(p, '\n', (size_t)(end - p)), *le = nl ? nl : end;
    line++;
    *le = 0;
    if (le > p && le[-1] == '\r') le[-1] = 0;
    char *w = p, *sep = p + strcspn(p, "\t, ");
    p = le + 1;
    if (!*w) continue;
    if (!*sep) {
      rc = s->host->error(s->st, "%s:%zu: expected \"word count\" (tab, comma or space between)", path, line);
      break;
    }
    *sep = 0;
    char *num = sep + 1;
    num += strspn(num, "\t, ");
    char *stop;
    double c = strtod(num, &stop);
    if (stop == num || (*stop && !isspace((unsigned char)*stop) && *stop != ',' && *stop != '\t') ||
        !(c >= 0)) {
      if (line == 1) continue; /* a header */
      rc = s->host->error(s->st, "%s:%zu: count '%.40s' of '%.40s' is not a number >= 0", path, line, num, w);
      break;
    }
    if (s->nfreq == cap) {
      cap = cap ? 2 * cap : 1024;
      freq *nf = realloc(s->freqs, cap * sizeof *nf);
      if (!nf) {
        rc = s->host->error(s->st, "out of memory");
        break;
      }
      s->freqs = nf;
    }
    char *k = normalize(s, w, strlen(w));
    if (!k)
      rc = s->host->error(s->st, "out of memory");
    else
      s->freqs[s->nfreq++] = (freq){k, c};
  }
  free(text);
  if (rc) return rc;
  if (s->nfreq == 0) return s->host->error(s->st, "%s: no \"word count\" lines", path);
  qsort(s->freqs, s->nfreq, sizeof *s->freqs, cmp_freq);
  /* duplicates (case folded together): counts add up */
  size_t j = 0;
  for (size_t i = 0; i < s->nfreq; i++) {
    if (j && !strcmp(s->freqs[j - 1].word, s->freqs[i].word)) {
      s->freqs[j - 1].count += s->freqs[i].count;
      free(s->freqs[i].word);
    } else {
      s->freqs[j++] = s->freqs[i];
    }
  }
  s->nfreq = j;
  return 0;
}

static int wf_process(void *state, int port, myelin_msg *m) {
  wf_state *s = state;
  (void)port;
  if (strcmp(myelin_msg_kind(m), "words"))
    return s->host->error(s->st, "expected a words message, got %s", myelin_msg_kind(m));
  myelin_obj wl = myelin_msg_get(m, "words");
  size_t W = myelin_obj_len(wl);
  myelin_tensor on;
  if (myelin_obj_type_of(wl) != MYELIN_OBJ_ARRAY || myelin_msg_tensor(m, "onset", &on) != 0 || on.ndim != 1 ||
      (size_t)on.shape[0] != W)
    return s->host->error(s->st, "words message: `words` (list of str) and `onset` [W] needed");
  myelin_builder *b = myelin_builder_new("features");
  if (!b) return s->host->error(s->st, "out of memory");
  myelin_build_context(b, m);
  myelin_build_float(b, "tr", s->tr);
  myelin_build_tensor_view(b, "onset", &on);
  myelin_build_array_begin(b, "names");
  for (size_t k = 0; k < s->ncols; k++)
    myelin_build_str(b, NULL, col_names[s->cols[k]]);
  myelin_build_array_end(b);
  int64_t shape[2] = {(int64_t)W, (int64_t)s->ncols};
  float *x = myelin_build_tensor(b, "data", MYELIN_F4, 2, shape);
  size_t misses = 0;
  int rc = x ? 0 : s->host->error(s->st, "out of memory");
  for (size_t i = 0; !rc && i < W; i++) {
    size_t n;
    const char *w = myelin_obj_str(myelin_obj_at(wl, i), &n);
    if (!w) {
      rc = s->host->error(s->st, "words message: word %zu is not a string", i);
      break;
    }
    for (size_t k = 0; k < s->ncols; k++) {
      size_t cb, ce;
      double v = 1;
      if (s->cols[k] == COL_LENGTH) {
        core(w, n, &cb, &ce);
        v = (double)utf8_chars(w + cb, ce - cb);
      } else if (s->cols[k] == COL_LOGFREQ) {
        char *key = normalize(s, w, n);
        if (!key) {
          rc = s->host->error(s->st, "out of memory");
          break;
        }
        freq probe = {key, 0};
        const freq *f = bsearch(&probe, s->freqs, s->nfreq, sizeof *s->freqs, cmp_freq);
        misses += !f;
        v = log10(1 + (f ? f->count : 0));
        free(key);
      }
      x[i * s->ncols + k] = (float)v;
    }
  }
  if (rc) return myelin_builder_free(b), rc;
  if (misses)
    s->host->log(s->st, MYELIN_LOG_INFO, "%zu of %zu words not in the frequency list (log frequency 0)",
                 misses, W);
  s->host->counter_add(s->st, "words", (int64_t)W);
  s->host->counter_add(s->st, "not_in_list", (int64_t)misses);
  myelin_msg *out = myelin_builder_finish(b);
  if (!out) return s->host->error(s->st, "could not build the features message");
  rc = s->host->emit(s->st, 0, out);
  return rc == MYELIN_ESTOP ? 0 : rc;
}

static int parse_cols(const myelin_params *p, int *cols, size_t *n, char *msg, size_t len) {
  size_t k = myelin_param_len(p, "features");
  if (k == 0 || k > 8) return snprintf(msg, len, "features: give 1 to 8 of rate, length, log_frequency"), -1;
  for (size_t i = 0; i < k; i++) {
    const char *name = myelin_param_str_at(p, "features", i);
    int c = -1;
    for (int j = 0; j < 3; j++)
      if (!strcmp(name, col_names[j])) c = j;
    if (c < 0)
      return snprintf(msg, len, "features[%zu] = '%s': expected rate, length or log_frequency", i, name), -1;
    if (c == COL_LOGFREQ && !*myelin_param_str(p, "frequencies"))
      return snprintf(msg, len, "features: log_frequency needs a `frequencies` list"), -1;
    cols[i] = c;
  }
  *n = k;
  return 0;
}

static int wf_validate(const myelin_params *p, myelin_validate_ctx *ctx) {
  int cols[8];
  size_t n;
  char msg[256];
  if (parse_cols(p, cols, &n, msg, sizeof msg)) return myelin_validate_error(ctx, "features", "%s", msg);
  return 0;
}

static void wf_fini(void *state) {
  wf_state *s = state;
  if (!s) return;
  for (size_t i = 0; i < s->nfreq; i++)
    free(s->freqs[i].word);
  free(s->freqs), free(s);
}

static int wf_init(const myelin_host *host, myelin_stage *st, const myelin_params *p, void **state) {
  wf_state *s = calloc(1, sizeof *s);
  if (!s) return host->error(st, "out of memory");
  s->host = host, s->st = st;
  s->lowercase = myelin_param_bool(p, "lowercase");
  s->tr = myelin_param_float(p, "tr");
  char msg[256];
  int rc = parse_cols(p, s->cols, &s->ncols, msg, sizeof msg) ? host->error(st, "%s", msg) : 0;
  const char *fp = myelin_param_str(p, "frequencies");
  if (!rc && *fp) {
    char *path = myelin_input_path(fp, host->pipeline_dir ? host->pipeline_dir(st) : NULL);
    rc = path ? load_freqs(s, path) : host->error(st, "out of memory");
    free(path);
  }
  if (rc) return wf_fini(s), rc;
  *state = s;
  return 0;
}

static const myelin_param_def wf_params[] = {
    {.name = "features",
     .type = MYELIN_PARAM_STRING_LIST,
     .def = "[rate, length]",
     .doc = "Columns, in order: rate (1 per word), length (characters without surrounding punctuation), "
            "log_frequency (log10(1 + count) in `frequencies`)."},
    {.name = "frequencies",
     .type = MYELIN_PARAM_INPUT_PATH,
     .def = "",
     .doc = "A \"word count\" text file (tab, comma or space separated; a header line is skipped)."},
    {.name = "lowercase",
     .type = MYELIN_PARAM_BOOL,
     .def = "true",
     .doc = "Match words to the frequency list lower-cased (ASCII)."},
    {.name = "tr",
     .type = MYELIN_PARAM_FLOAT,
     .def = "0",
     .has_range = 1,
     .min = 0,
     .max = 1e6,
     .unit = "s",
     .doc = "The `tr` written in the features message (0 = the run's)."},
    {0}};

static const myelin_port_def wf_inputs[] = {{.name = "words", .kinds = "words", .doc = "word timings"}, {0}};
static const myelin_port_def wf_outputs[] = {
    {.name = "features", .kinds = "features", .doc = "word events: onset [W], data <f4 [W, F], names"}, {0}};

static const myelin_plugin_desc wf_desc = {
    MYELIN_DESC_HEADER,
    .name = "word_features",
    .version = "1.0.0",
    .summary = "baseline word features (word rate, length, log frequency): words -> features word events",
    .params = wf_params,
    .inputs = wf_inputs,
    .outputs = wf_outputs,
    .validate = wf_validate,
    .init = wf_init,
    .process = wf_process,
    .fini = wf_fini,
};

MYELIN_PLUGIN(wf_desc)
