/*
 * dataset.c — the `dataset` source: rows of an IDX / .npy / .npz / CSV file
 * out as `sample` messages (or the whole array as one `tensor` message).
 *
 * Everything that can fail on bad input — missing file, bad magic, label
 * count mismatch, truncated data in a whole-file load — fails in init, before
 * any stage runs. The file readers live in load.c; this file is the glue:
 * params in, rows out.
 *
 * Two ways to produce rows:
 *  - in memory (ds_table) when the rows must be visited out of order
 *    (shuffle), gathered (whole), or the format has no row streaming (npy,
 *    npz, csv);
 *  - streamed (ds_idx_stream) for an unshuffled IDX file, which holds one row
 *    at a time and rewinds for each further epoch; a truncated file then
 *    surfaces as a run-time error naming the row.
 *
 * Every sample carries `index` = its row number in the file (so a shuffled
 * sample keeps its identity: spike_encoder keys its random draws on it),
 * `epoch`, `label` when labels exist, `split` when set, and `seq`, the
 * number of messages emitted before it. The order of an epoch is
 * ds_permutation(seed, epoch): a function of the params alone.
 *
 * `shard: sample` (under mpirun): each epoch's order over all n rows is
 * computed on every rank alike, then rank r of N emits positions
 * [begin, end) of it (plugins/common/shard.h), so the ranks' samples are
 * disjoint and their union is the 1-rank epoch. An unshuffled IDX stream
 * seeks to its first row instead of reading the rows before it.
 */
#include <stdlib.h>
#include <string.h>

#include "../common/shard.h"
#include "load.h"
#include "myelin/myelin.h"

typedef struct dataset {
  const myelin_host *host;
  myelin_stage *st;
  ds_format format;
  const char *path, *split;
  char *path_buf, *labels; /* input paths, resolved (myelin_input_path) */
  int shuffle, whole, has_scale;
  double scale;
  uint64_t seed;
  int64_t epochs;
  size_t n;          /* rows per epoch (after limit) */
  size_t begin, end; /* this rank's positions in each epoch's order (all: 0, n) */
  ds_table table;
  ds_idx_stream *stream;
  ds_idx_info sinfo;
  int64_t *stream_y;
  uint8_t *rowbuf;
  uint32_t *order;
  uint64_t seq;
} dataset;

static void ds_fini(void *state) {
  dataset *d = state;
  if (!d) return;
  ds_table_free(&d->table);
  ds_idx_stream_close(d->stream);
  free(d->stream_y);
  free(d->rowbuf);
  free(d->order);
  free(d->path_buf);
  free(d->labels);
  free(d);
}

/* "-1", "3", "none" -> column or DS_NO_LABEL_COLUMN; 1 if not parseable. */
static int parse_label_column(const char *s, int *col) {
  if (strcmp(s, "none") == 0 || strcmp(s, "null") == 0 || strcmp(s, "~") == 0 || !*s) {
    *col = DS_NO_LABEL_COLUMN;
    return 0;
  }
  char *end;
  long v = strtol(s, &end, 10);
  if (*end || v < -100000 || v > 100000) return 1;
  *col = (int)v;
  return 0;
}

static ds_format format_of(const char *name, const char *path) {
  if (strcmp(name, "idx") == 0) return DS_IDX;
  if (strcmp(name, "npy") == 0) return DS_NPY;
  if (strcmp(name, "npz") == 0) return DS_NPZ;
  if (strcmp(name, "csv") == 0) return DS_CSV;
  return ds_guess_format(path);
}

static int ds_validate(const myelin_params *p, myelin_validate_ctx *ctx) {
  int col;
  if (parse_label_column(myelin_param_str(p, "label_column"), &col))
    return myelin_validate_error(ctx, "label_column", "label_column must be an integer or none, not '%s'",
                                 myelin_param_str(p, "label_column"));
  myelin_validate_set_output_kinds(ctx, "out", myelin_param_bool(p, "whole") ? "tensor" : "sample");
  return 0;
}

static int open_stream(dataset *d, const char *labels, char *err, size_t errlen) {
  d->stream = ds_idx_stream_open(d->path, &d->sinfo, err, errlen);
  if (!d->stream) return MYELIN_EINVAL;
  d->rowbuf = malloc(d->sinfo.row_bytes ? d->sinfo.row_bytes : 1);
  if (!d->rowbuf) return MYELIN_ENOMEM;
  d->table.dtype = d->sinfo.dtype;
  d->table.ndim = d->sinfo.ndim;
  memcpy(d->table.shape, d->sinfo.shape, sizeof d->table.shape);
  d->table.rows = d->sinfo.rows;
  d->table.row_bytes = d->sinfo.row_bytes;
  if (!*labels) return 0;
  size_t ny;
  int rc = ds_load_labels(labels, &d->stream_y, &ny, err, errlen);
  if (rc) return rc;
  if (ny != d->sinfo.rows) {
    snprintf(err, errlen, "shape mismatch: %s has %zu rows but %s has %zu labels", d->path,
             d->sinfo.rows, labels, ny);
    return MYELIN_EFORMAT;
  }
  return 0;
}

static int load(dataset *d, const myelin_params *p, char *err, size_t errlen) {
  const char *labels = d->labels;
  switch (d->format) {
  case DS_IDX:
    if (!d->shuffle && !d->whole) return open_stream(d, labels, err, errlen);
    return ds_load_idx(d->path, labels, &d->table, err, errlen);
  case DS_NPY: return ds_load_npy(d->path, labels, &d->table, err, errlen);
  case DS_NPZ:
    return ds_load_npz(d->path, myelin_param_str(p, "x_key"), myelin_param_str(p, "y_key"),
                       myelin_param_is_set(p, "y_key"), &d->table, err, errlen);
  default: {
    int col;
    if (parse_label_column(myelin_param_str(p, "label_column"), &col)) {
      snprintf(err, errlen, "label_column must be an integer or none, not '%s'",
               myelin_param_str(p, "label_column"));
      return MYELIN_EINVAL;
    }
    if (*labels && !myelin_param_is_set(p, "label_column")) col = DS_NO_LABEL_COLUMN;
    return ds_load_csv(d->path, col, labels, &d->table, err, errlen);
  }
  }
}

/* Loads everything the run needs; on failure the state is freed here, since
 * fini only runs after a successful init. */
static int ds_setup(dataset *d, const myelin_params *p) {
  const char *dir = d->host->pipeline_dir ? d->host->pipeline_dir(d->st) : NULL;
  d->path = d->path_buf = myelin_input_path(myelin_param_str(p, "path"), dir);
  d->labels = myelin_input_path(myelin_param_str(p, "labels"), dir);
  if (!d->path_buf || !d->labels) return d->host->error(d->st, "out of memory");
  d->split = myelin_param_str(p, "split");
  d->format = format_of(myelin_param_str(p, "format"), d->path);
  d->shuffle = myelin_param_bool(p, "shuffle");
  d->whole = myelin_param_bool(p, "whole");
  d->has_scale = myelin_param_is_set(p, "scale");
  d->scale = myelin_param_float(p, "scale");
  d->seed = (uint64_t)myelin_param_int(p, "seed");
  d->epochs = myelin_param_int(p, "epochs");
  char err[1024] = "";
  if (load(d, p, err, sizeof err) != 0)
    return d->host->error(d->st, "%s", err[0] ? err : "cannot load dataset");
  int64_t limit = myelin_param_int(p, "limit");
  d->n = d->table.rows;
  if (limit > 0 && (size_t)limit < d->n) d->n = (size_t)limit;
  d->order = malloc((d->n ? d->n : 1) * sizeof *d->order);
  if (!d->order) return d->host->error(d->st, "out of memory");
  d->begin = 0;
  d->end = d->n;
  if (strcmp(myelin_param_str(p, "shard"), "sample") == 0) {
    int rank = d->host->rank(d->st), size = d->host->size(d->st);
    shard_range(d->n, rank, size, &d->begin, &d->end);
    d->host->log(d->st, MYELIN_LOG_INFO, "rank %d of %d (shard: sample): positions %zu..%zu of %zu per epoch",
                 rank, size, d->begin, d->end, d->n);
  }
  return 0;
}

static int ds_init(const myelin_host *host, myelin_stage *st, const myelin_params *p, void **state) {
  dataset *d = calloc(1, sizeof *d);
  if (!d) return host->error(st, "out of memory");
  d->host = host;
  d->st = st;
  int rc = ds_setup(d, p);
  if (rc) {
    ds_fini(d);
    return rc;
  }
  *state = d;
  return 0;
}

/* Element i of a row of any dtype, as double. */
static double value_at(myelin_dtype dt, const void *p, size_t i) {
  switch (dt) {
  case MYELIN_F4: return ((const float *)p)[i];
  case MYELIN_F8: return ((const double *)p)[i];
  case MYELIN_I1: return ((const int8_t *)p)[i];
  case MYELIN_I2: return ((const int16_t *)p)[i];
  case MYELIN_I4: return ((const int32_t *)p)[i];
  case MYELIN_I8: return (double)((const int64_t *)p)[i];
  case MYELIN_U2: return ((const uint16_t *)p)[i];
  case MYELIN_U4: return ((const uint32_t *)p)[i];
  case MYELIN_U8: return (double)((const uint64_t *)p)[i];
  default: return ((const uint8_t *)p)[i]; /* u1, b1 */
  }
}

/* Writes rows as one tensor field: the file's dtype, or value * scale as <f4
 * (computed in double, rounded once, like numpy's (x * scale).astype('<f4')). */
static void build_rows(dataset *d, myelin_builder *b, const char *key, int ndim, const int64_t *shape,
                       const uint8_t *const *rows, size_t nrows) {
  size_t rb = d->table.row_bytes, es = myelin_dtype_size(d->table.dtype);
  size_t per = es ? rb / es : 0;
  if (!d->has_scale) {
    uint8_t *out = myelin_build_tensor(b, key, d->table.dtype, ndim, shape);
    for (size_t r = 0; out && r < nrows; r++) memcpy(out + r * rb, rows[r], rb);
    return;
  }
  float *out = myelin_build_tensor(b, key, MYELIN_F4, ndim, shape);
  for (size_t r = 0; out && r < nrows; r++) {
    if (d->table.dtype == MYELIN_U1) { /* the common case, kept tight */
      for (size_t i = 0; i < per; i++) out[r * per + i] = (float)(rows[r][i] * d->scale);
      continue;
    }
    for (size_t i = 0; i < per; i++)
      out[r * per + i] = (float)(value_at(d->table.dtype, rows[r], i) * d->scale);
  }
}

static void build_common(dataset *d, myelin_builder *b, uint64_t epoch) {
  myelin_build_uint(b, "seq", d->seq++);
  if (*d->split) myelin_build_str(b, "split", d->split);
  myelin_build_uint(b, "epoch", epoch);
}

static int emit(dataset *d, myelin_builder *b) {
  myelin_msg *m = myelin_builder_finish(b);
  if (!m) return d->host->error(d->st, "%s: cannot build a message (out of memory?)", d->path);
  int rc = d->host->emit(d->st, 0, m);
  return rc == MYELIN_ESTOP ? 1 : rc;
}

static int emit_sample(dataset *d, uint64_t epoch, size_t row, const uint8_t *x, const int64_t *y) {
  myelin_builder *b = myelin_builder_new("sample");
  if (!b) return d->host->error(d->st, "out of memory");
  build_common(d, b, epoch);
  build_rows(d, b, "x", d->table.ndim - 1, d->table.shape + 1, &x, 1);
  if (y) myelin_build_int(b, "label", y[row]);
  myelin_build_uint(b, "index", row);
  return emit(d, b);
}

static int emit_whole(dataset *d, uint64_t epoch) {
  size_t n = d->end - d->begin;
  if (n == 0 && d->n > 0) return 0; /* a rank with no share of the rows */
  const uint8_t **rows = malloc((n ? n : 1) * sizeof *rows);
  int64_t *y = d->table.y ? malloc((n ? n : 1) * sizeof *y) : NULL;
  myelin_builder *b = myelin_builder_new("tensor");
  if (!rows || (d->table.y && !y) || !b) {
    free(rows);
    free(y);
    myelin_builder_free(b);
    return d->host->error(d->st, "out of memory");
  }
  for (size_t i = 0; i < n; i++) {
    size_t r = d->order[d->begin + i];
    rows[i] = d->table.x + r * d->table.row_bytes;
    if (y) y[i] = d->table.y[r];
  }
  int64_t shape[MYELIN_MAX_NDIM];
  memcpy(shape, d->table.shape, sizeof shape);
  shape[0] = (int64_t)n;
  build_common(d, b, epoch);
  build_rows(d, b, "data", d->table.ndim, shape, rows, n);
  if (y) myelin_build_tensor_copy(b, "labels", MYELIN_I8, 1, shape, y);
  myelin_build_str(b, "name", "x");
  free(rows);
  free(y);
  return emit(d, b);
}

static int run_streamed_epoch(dataset *d, uint64_t epoch) {
  char err[1024];
  if ((epoch > 0 || d->begin > 0) && ds_idx_stream_seek(d->stream, d->begin, err, sizeof err) != 0)
    return d->host->error(d->st, "%s", err);
  for (size_t i = d->begin; i < d->end; i++) {
    if (d->host->stopping(d->st)) return 1;
    int rc = ds_idx_stream_next(d->stream, d->rowbuf, err, sizeof err);
    if (rc < 0) return d->host->error(d->st, "%s", err);
    if ((rc = emit_sample(d, epoch, i, d->rowbuf, d->stream_y))) return rc;
  }
  return 0;
}

static int run_epoch(dataset *d, uint64_t epoch) {
  if (d->stream) return run_streamed_epoch(d, epoch);
  if (d->shuffle) ds_permutation(d->seed, epoch, d->order, d->n);
  else for (size_t i = 0; i < d->n; i++) d->order[i] = (uint32_t)i;
  if (d->whole) return emit_whole(d, epoch);
  for (size_t i = d->begin; i < d->end; i++) {
    if (d->host->stopping(d->st)) return 1;
    size_t r = d->order[i];
    int rc = emit_sample(d, epoch, r, d->table.x + r * d->table.row_bytes, d->table.y);
    if (rc) return rc;
  }
  return 0;
}

static int ds_start(void *state) {
  dataset *d = state;
  for (int64_t e = 0; e < d->epochs; e++) {
    int rc = run_epoch(d, (uint64_t)e);
    if (rc > 0) return 0; /* stopping: end the stream cleanly */
    if (rc < 0) return rc;
    d->host->counter_add(d->st, "epochs", 1);
  }
  return 0;
}

static const myelin_param_def ds_params[] = {
    {"format", MYELIN_PARAM_ENUM, "auto", 0, 0, 0, "auto|idx|npy|npz|csv", NULL,
     "File format; auto picks from the name: .npz, .npy, .csv/.txt(.gz), anything else IDX."},
    {"path", MYELIN_PARAM_INPUT_PATH, NULL, 0, 0, 0, NULL, NULL,
     "Data file: IDX images (plain or .gz), .npy, .npz, or numeric CSV (plain or .gz). "
     "Rows are the first axis."},
    {"labels", MYELIN_PARAM_INPUT_PATH, "", 0, 0, 0, NULL, NULL,
     "Labels file for idx/npy/csv: IDX (e.g. train-labels-idx1-ubyte.gz), .npy, or one integer "
     "per line. Its length must equal the number of rows."},
    {"x_key", MYELIN_PARAM_STRING, "x", 0, 0, 0, NULL, NULL, "npz: name of the data array."},
    {"y_key", MYELIN_PARAM_STRING, "y", 0, 0, 0, NULL, NULL,
     "npz: name of the labels array (skipped when absent, unless set explicitly)."},
    {"label_column", MYELIN_PARAM_STRING, "-1", 0, 0, 0, NULL, NULL,
     "csv: column holding the label (negative counts from the end, -1 = last) or none. "
     "Defaults to none when `labels` is given."},
    {"split", MYELIN_PARAM_STRING, "", 0, 0, 0, NULL, NULL,
     "Copied into each message's `split` field (e.g. train, test); omitted when empty."},
    {"limit", MYELIN_PARAM_INT, "0", 1, 0, 4294967295.0, NULL, "rows",
     "Use only the first `limit` rows of the file (before shuffling); 0 = all."},
    {"shuffle", MYELIN_PARAM_BOOL, "false", 0, 0, 0, NULL, NULL,
     "Visit rows in a seeded random order (a full Fisher-Yates permutation from SplitMix64), "
     "a new order each epoch; identical across runs, machines and thread counts."},
    {"seed", MYELIN_PARAM_INT, "0", 1, 0, 9.2e18, NULL, NULL, "Seed of the shuffle."},
    {"epochs", MYELIN_PARAM_INT, "1", 1, 1, 1e9, NULL, "passes",
     "Passes over the data; messages carry `epoch` (0-based)."},
    {"scale", MYELIN_PARAM_FLOAT, "1", 0, 0, 0, NULL, NULL,
     "When set, values are multiplied by it and sent as <f4 (0.00392156862745098 = 1/255 "
     "maps u8 pixels to [0, 1]); when not set, the file's dtype is kept."},
    {"shard", MYELIN_PARAM_ENUM, "none", 0, 0, 0, "none|sample", NULL,
     "Under mpirun: none = every rank emits every sample; sample = each epoch's order (shuffled or not) "
     "over all rows, split into contiguous blocks, one per rank (disjoint, covering, sizes differ by <= 1)."},
    {"whole", MYELIN_PARAM_BOOL, "false", 0, 0, 0, NULL, NULL,
     "Emit the whole array (after limit and shuffle) as one `tensor` message per epoch, "
     "`data` [rows, ...] plus `labels` <i8 [rows] when labels exist, instead of one `sample` per row."},
    {NULL, 0, NULL, 0, 0, 0, NULL, NULL, NULL}};

static const myelin_port_def ds_outputs[] = {
    {"out", "sample|tensor", 0,
     "`sample` {x, label, index, split, epoch, seq} per row, or one `tensor` with `whole`."},
    {NULL, NULL, 0, NULL}};

static const myelin_plugin_desc ds_desc = {
    MYELIN_DESC_HEADER,
    .name = "dataset",
    .version = "1.0.0",
    .summary = "Rows of IDX, NPY, NPZ or CSV files as samples (split, shuffle, epochs, limit)",
    .doc = "Reads MNIST/Fashion-MNIST IDX files (plain or gzip), NumPy .npy/.npz and numeric CSV "
           "(optional header, label column). Each row becomes a `sample` message whose `index` "
           "is the row number in the file; `whole: true` sends the array as one `tensor`. "
           "Unshuffled IDX files are streamed row by row; other cases load the file once in init, "
           "so malformed input is reported before the run starts.",
    .params = ds_params,
    .inputs = NULL,
    .outputs = ds_outputs,
    .validate = ds_validate,
    .init = ds_init,
    .start = ds_start,
    .fini = ds_fini,
};

MYELIN_PLUGIN(ds_desc)
