/*
 * word_source — word timings from transcript files -> `words` messages.
 *
 * Reads BIDS events.tsv, Narratives/Gentle alignment CSV and Praat / Montreal
 * Forced Aligner TextGrids (words_read.c) and emits one `words` message per
 * file: `words` (list of str), `onset` and `offset` <f8 [W] in seconds,
 * `interpolated` |b1 [W] (timings filled by the missing-timing rule),
 * `dropped` (words left out by it), and the task / run / subject context
 * that matches the file to its fMRI runs (encoding's matching rules).
 *
 * `path` may be a glob: each file is one message, in sorted order, with its
 * context from its own BIDS name (`sub-01_task-pieman_run-1_events.tsv`) or
 * from the `task`/`run`/`subject` params, which may use {stem} (the file
 * name without extension) and {dir} (its folder's name). Files are read and
 * checked in init, so a bad file stops the run before anything flows; start
 * only emits. Errors name the file and line. With `chunk`, a file goes out
 * as messages of `chunk` words, as a live transcript would arrive.
 */
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "myelin/io.h"
#include "myelin/plugin.h"
#include "words_read.h"

#define MAX_FILE_BYTES ((size_t)1 << 30)

typedef struct one_file {
  char *path, *task, *run, *subject;
  word_list w;
  size_t filled, dropped;
} one_file;

typedef struct ws_state {
  const myelin_host *host;
  myelin_stage *st;
  one_file *files;
  size_t nfiles;
  size_t chunk; /* words per message; 0 = a file per message */
} ws_state;

static int ends_with_ci(const char *s, const char *suf) {
  size_t n = strlen(s), k = strlen(suf);
  return n >= k && strcasecmp(s + n - k, suf) == 0;
}

/* The format of a file: the param, else its extension, else its content. */
static const char *format_of(const char *param, const char *path, const char *text, size_t len) {
  if (strcmp(param, "auto")) return param;
  char base[4096];
  snprintf(base, sizeof base, "%s", path);
  if (ends_with_ci(base, ".gz")) base[strlen(base) - 3] = 0;
  if (ends_with_ci(base, ".textgrid")) return "textgrid";
  if (ends_with_ci(base, ".tsv")) return "tsv";
  if (ends_with_ci(base, ".csv")) return "csv";
  if (len > 0 && memmem(text, len < 256 ? len : 256, "ooTextFile", 10)) return "textgrid";
  if (len > 1 && (unsigned char)text[0] >= 0xFE) return "textgrid"; /* UTF-16 BOM: Praat */
  return memchr(text, '\t', len < 4096 ? len : 4096) ? "tsv" : "csv";
}

/* The value of BIDS entity `key-` in the file name ("" if absent). */
static void bids_entity(const char *path, const char *key, char *out, size_t n) {
  const char *b = strrchr(path, '/');
  b = b ? b + 1 : path;
  size_t k = strlen(key);
  out[0] = 0;
  for (const char *p = b; *p;) {
    if (!strncmp(p, key, k) && p[k] == '-' && (p == b || p[-1] == '_')) {
      p += k + 1;
      size_t l = strcspn(p, "_.");
      snprintf(out, n, "%.*s", (int)l, p);
      return;
    }
    p = strchr(p, '_');
    if (!p) break;
    p++;
  }
}

/* A context param with {stem} and {dir} expanded; "" = the BIDS entity. */
static char *context_value(const char *param, const char *path, const char *entity) {
  char buf[1024] = "";
  if (!*param) {
    bids_entity(path, entity, buf, sizeof buf);
    return strdup(buf);
  }
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  char stem[512], dir[512] = ".";
  snprintf(stem, sizeof stem, "%s", base);
  char *dot = strchr(stem, '.');
  if (dot) *dot = 0;
  if (base > path) {
    const char *e = base - 1, *s = e;
    while (s > path && s[-1] != '/')
      s--;
    if (e > s) snprintf(dir, sizeof dir, "%.*s", (int)(e - s), s);
  }
  size_t o = 0;
  for (const char *p = param; *p && o + 1 < sizeof buf;) {
    const char *rep = !strncmp(p, "{stem}", 6) ? stem : !strncmp(p, "{dir}", 5) ? dir : NULL;
    if (rep) {
      o += (size_t)snprintf(buf + o, sizeof buf - o, "%s", rep);
      if (o >= sizeof buf) o = sizeof buf - 1;
      p += rep == stem ? 6 : 5;
    } else {
      buf[o++] = *p++;
    }
  }
  buf[o] = 0;
  return strdup(buf);
}

static int load_file(ws_state *s, const myelin_params *p, const char *path, one_file *f) {
  char err[1024] = "";
  uint8_t *text = NULL;
  size_t len = 0;
  f->path = strdup(path);
  f->task = context_value(myelin_param_str(p, "task"), path, "task");
  f->run = context_value(myelin_param_str(p, "run"), path, "run");
  f->subject = context_value(myelin_param_str(p, "subject"), path, "sub");
  if (!f->path || !f->task || !f->run || !f->subject) return s->host->error(s->st, "out of memory");
  if (myelin_read_file(path, MAX_FILE_BYTES, &text, &len, err, sizeof err) != 0)
    return s->host->error(s->st, "%s: %s", path, err);
  const char *fmt = format_of(myelin_param_str(p, "format"), path, (const char *)text, len);
  int rc;
  if (!strcmp(fmt, "textgrid")) {
    size_t ns = myelin_param_len(p, "skip");
    const char **skip = calloc(ns + 1, sizeof *skip);
    if (!skip) return free(text), s->host->error(s->st, "out of memory");
    for (size_t i = 0; i < ns; i++)
      skip[i] = myelin_param_str_at(p, "skip", i);
    rc = words_read_textgrid((const char *)text, len, myelin_param_str(p, "tier"), skip, &f->w, err,
                             sizeof err);
    free(skip);
  } else {
    const char *h = myelin_param_str(p, "header");
    table_opts o = {.sep = strcmp(fmt, "tsv") ? ',' : '\t',
                    .word = myelin_param_str(p, "word_column"),
                    .onset = myelin_param_str(p, "onset_column"),
                    .offset = myelin_param_str(p, "offset_column"),
                    .duration = myelin_param_str(p, "duration_column"),
                    .where = myelin_param_str(p, "where"),
                    .header = !strcmp(h, "auto") ? -1 : !strcmp(h, "true")};
    rc = words_read_table((const char *)text, len, &o, &f->w, err, sizeof err);
  }
  free(text);
  if (rc != 0) return s->host->error(s->st, "%s:%s (read as %s)", path, err, fmt);
  if (words_fill_missing(&f->w, myelin_param_str(p, "missing"), &f->filled, &f->dropped, err, sizeof err))
    return s->host->error(s->st, "%s:%s", path, err);
  if (f->w.n == 0) return s->host->error(s->st, "%s: no words with timings", path);
  if (f->filled || f->dropped)
    s->host->log(s->st, MYELIN_LOG_INFO, "%s: %zu of %zu words had no timing: %zu interpolated, %zu dropped",
                 path, f->filled + f->dropped, f->w.n + f->dropped, f->filled, f->dropped);
  s->host->counter_add(s->st, "words", (int64_t)f->w.n);
  s->host->counter_add(s->st, "interpolated", (int64_t)f->filled);
  s->host->counter_add(s->st, "dropped", (int64_t)f->dropped);
  return 0;
}

static void ws_fini(void *state) {
  ws_state *s = state;
  if (!s) return;
  for (size_t i = 0; i < s->nfiles; i++) {
    one_file *f = &s->files[i];
    free(f->path), free(f->task), free(f->run), free(f->subject);
    words_free(&f->w);
  }
  free(s->files);
  free(s);
}

static int ws_setup(ws_state *s, const myelin_params *p) {
  const char *dir = s->host->pipeline_dir ? s->host->pipeline_dir(s->st) : NULL;
  char *path = myelin_input_path(myelin_param_str(p, "path"), dir);
  if (!path) return s->host->error(s->st, "out of memory");
  s->chunk = (size_t)myelin_param_int(p, "chunk");
  glob_t g;
  int grc = glob(path, 0, NULL, &g);
  if (grc == GLOB_NOMATCH) {
    int rc = s->host->error(s->st, "path: no file matches %s", path);
    free(path);
    return rc;
  }
  free(path);
  if (grc != 0) return s->host->error(s->st, "path: cannot expand the pattern (glob error %d)", grc);
  s->files = calloc(g.gl_pathc, sizeof *s->files);
  int rc = s->files ? 0 : s->host->error(s->st, "out of memory");
  for (size_t i = 0; rc == 0 && i < g.gl_pathc; i++) {
    rc = load_file(s, p, g.gl_pathv[i], &s->files[i]);
    s->nfiles = i + 1;
  }
  globfree(&g);
  return rc;
}

static int ws_init(const myelin_host *host, myelin_stage *st, const myelin_params *p, void **state) {
  ws_state *s = calloc(1, sizeof *s);
  if (!s) return host->error(st, "out of memory");
  s->host = host, s->st = st;
  int rc = ws_setup(s, p);
  if (rc) {
    ws_fini(s);
    return rc;
  }
  *state = s;
  return 0;
}

/* run as an integer when it is one (fmri_source sends run-01 as 1). */
static void build_run(myelin_builder *b, const char *run) {
  char *end;
  long v = strtol(run, &end, 10);
  if (*end == 0)
    myelin_build_int(b, "run", v);
  else
    myelin_build_str(b, "run", run);
}

/* The words [k0, k1) of a file as one message. */
static myelin_msg *words_msg(const one_file *f, size_t k0, size_t k1, uint64_t seq) {
  int64_t shape[1] = {(int64_t)(k1 - k0)};
  myelin_builder *b = myelin_builder_new("words");
  if (!b) return NULL;
  myelin_build_uint(b, "seq", seq);
  if (*f->subject) myelin_build_str(b, "subject", f->subject);
  if (*f->task) myelin_build_str(b, "task", f->task);
  if (*f->run) build_run(b, f->run);
  myelin_build_array_begin(b, "words");
  for (size_t k = k0; k < k1; k++)
    myelin_build_str(b, NULL, f->w.words[k]);
  myelin_build_array_end(b);
  myelin_build_tensor_copy(b, "onset", MYELIN_F8, 1, shape, f->w.onset + k0);
  myelin_build_tensor_copy(b, "offset", MYELIN_F8, 1, shape, f->w.offset + k0);
  myelin_build_tensor_copy(b, "interpolated", MYELIN_B1, 1, shape, f->w.interpolated + k0);
  if (k0 == 0) myelin_build_uint(b, "dropped", f->dropped); /* once per file: counts add up */
  myelin_build_str(b, "source", f->path);
  return myelin_builder_finish(b);
}

static int ws_start(void *state) {
  ws_state *s = state;
  uint64_t seq = 0;
  for (size_t i = 0; i < s->nfiles; i++) {
    const one_file *f = &s->files[i];
    size_t W = f->w.n, step = s->chunk && s->chunk < W ? s->chunk : W;
    for (size_t k0 = 0; k0 < W || (W == 0 && k0 == 0); k0 += step ? step : 1) {
      if (s->host->stopping(s->st)) return 0;
      size_t k1 = k0 + step < W ? k0 + step : W;
      myelin_msg *m = words_msg(f, k0, k1, seq++);
      if (!m) return s->host->error(s->st, "%s: cannot build the words message (out of memory?)", f->path);
      if (s->host->emit(s->st, 0, m) == MYELIN_ESTOP) return 0;
    }
  }
  return 0;
}

static int ws_validate(const myelin_params *p, myelin_validate_ctx *ctx) {
  const char *w = myelin_param_str(p, "where");
  if (*w && (!strchr(w, '=') || *w == '='))
    return myelin_validate_error(ctx, "where", "where: expected COLUMN=VALUE, got '%s'", w);
  return 0;
}

static const myelin_param_def ws_params[] = {
    {.name = "path",
     .type = MYELIN_PARAM_INPUT_PATH,
     .doc = "A transcript file, or a glob pattern (one message per file, in sorted order)."},
    {.name = "format",
     .type = MYELIN_PARAM_ENUM,
     .def = "auto",
     .choices = "auto|tsv|csv|textgrid",
     .doc = "auto: by extension (.tsv, .csv, .TextGrid, optionally .gz), else by content."},
    {.name = "word_column",
     .type = MYELIN_PARAM_STRING,
     .def = "",
     .doc = "tsv/csv: the word column, a header name or a 1-based number; \"\" = the first of word, "
            "words, text, token, transcript, value (no header: column 1)."},
    {.name = "onset_column",
     .type = MYELIN_PARAM_STRING,
     .def = "",
     .doc = "tsv/csv: the onset column (seconds); \"\" = onset, start, start_time, tmin, begin (no "
            "header: column 3, Gentle's align.csv)."},
    {.name = "offset_column",
     .type = MYELIN_PARAM_STRING,
     .def = "",
     .doc = "tsv/csv: the offset column; \"\" = offset, end, stop, end_time, tmax (no header: column 4)."},
    {.name = "duration_column",
     .type = MYELIN_PARAM_STRING,
     .def = "",
     .doc = "tsv/csv: a duration column, used when there is no offset (offset = onset + duration); "
            "\"\" = duration."},
    {.name = "header",
     .type = MYELIN_PARAM_ENUM,
     .def = "auto",
     .choices = "auto|true|false",
     .doc = "tsv/csv: whether the first row names the columns; auto = it names a known or requested "
            "column."},
    {.name = "where",
     .type = MYELIN_PARAM_STRING,
     .def = "",
     .doc = "tsv/csv: keep only rows with COLUMN=VALUE (e.g. trial_type=word); \"\" = every row."},
    {.name = "tier",
     .type = MYELIN_PARAM_STRING,
     .def = "",
     .doc = "textgrid: the interval tier; \"\" = \"words\", else a tier whose name ends in \"words\" "
            "(MFA's \"speaker - words\"), else the first interval tier."},
    {.name = "skip",
     .type = MYELIN_PARAM_STRING_LIST,
     .def = "[sp, sil, \"<sil>\", \"<eps>\", \"{SL}\"]",
     .doc = "textgrid: labels that are silences, not words (empty labels are always skipped)."},
    {.name = "missing",
     .type = MYELIN_PARAM_ENUM,
     .def = "interpolate",
     .choices = "interpolate|drop|error",
     .doc = "Words without an onset: interpolate (share the gap between the timed neighbours evenly; "
            "words before the first or after the last timed word are dropped), drop, or error. "
            "Counts are logged and carried as `interpolated` and `dropped`."},
    {.name = "chunk",
     .type = MYELIN_PARAM_INT,
     .def = "0",
     .has_range = 1,
     .min = 0,
     .max = 1 << 30,
     .unit = "words",
     .doc = "Words per message: a file's words go out in messages of `chunk` words, in order, as a live "
            "transcript would send them (lm_features carries the story across them); 0 = one message "
            "per file."},
    {.name = "task",
     .type = MYELIN_PARAM_STRING,
     .def = "",
     .doc = "Task of the messages; \"\" = the file name's BIDS task- entity (absent if none). "
            "{stem} and {dir} expand to the file's name without extension and its folder's name."},
    {.name = "run",
     .type = MYELIN_PARAM_STRING,
     .def = "",
     .doc = "Run (an integer when it is one); \"\" = the BIDS run- entity (absent if none)."},
    {.name = "subject",
     .type = MYELIN_PARAM_STRING,
     .def = "",
     .doc = "Subject; \"\" = the BIDS sub- entity (absent if none)."},
    {0}};

static const myelin_port_def ws_outputs[] = {
    {.name = "words",
     .kinds = "words",
     .doc = "one message per file (or per `chunk` words): words, onset/offset <f8 [W], interpolated |b1 [W], "
            "dropped, task/run"},
    {0}};

static const myelin_plugin_desc ws_desc = {
    MYELIN_DESC_HEADER,
    .name = "word_source",
    .version = "1.0.0",
    .summary = "word timings from BIDS events.tsv, alignment CSV or TextGrid -> words messages",
    .doc = "Reads the word timings forced aligners and BIDS datasets give (events.tsv, Narratives/Gentle "
           "align.csv, Praat/MFA TextGrid long and short text formats). Words without timing follow "
           "`missing`, never silently. See plugins/word_source/README.md.",
    .params = ws_params,
    .outputs = ws_outputs,
    .validate = ws_validate,
    .init = ws_init,
    .start = ws_start,
    .fini = ws_fini,
};

MYELIN_PLUGIN(ws_desc)
