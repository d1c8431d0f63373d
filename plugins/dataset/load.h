/*
 * load.h — dataset readers behind the `dataset` plugin, usable alone (tests,
 * benchmarks): IDX (MNIST/Fashion-MNIST, plain or .gz), .npy, .npz and
 * numeric CSV, plus the seeded permutation used for shuffling.
 *
 * A dataset is a table of rows (the first axis) with one optional integer
 * label per row. ds_table holds it in memory; ds_idx_stream reads an IDX
 * file row by row for the unshuffled case so that a large file is never held
 * whole. Every error message names the file and what is wrong.
 */
#ifndef MYELIN_DATASET_LOAD_H
#define MYELIN_DATASET_LOAD_H

#include <stddef.h>
#include <stdint.h>

#include "myelin/msg.h"

typedef struct ds_table {
  myelin_dtype dtype;
  int ndim;                        /* of the whole array: rows + row shape */
  int64_t shape[MYELIN_MAX_NDIM];  /* shape[0] = rows */
  size_t rows, row_bytes;
  uint8_t *x;                      /* rows * row_bytes, little-endian */
  int64_t *y;                      /* rows labels, or NULL */
} ds_table;

void ds_table_free(ds_table *t);

/* IDX: magic 00 00 TYPE NDIM, NDIM big-endian u32 dims, big-endian data. */
typedef struct ds_idx_info {
  myelin_dtype dtype;
  int ndim;
  int64_t shape[MYELIN_MAX_NDIM];
  size_t rows, row_bytes;
} ds_idx_info;

/* Parses an IDX header held in memory (at least 4 + 4*ndim bytes). Returns the
 * header length, or a negative code with a message naming `what`. */
int ds_idx_header(const uint8_t *b, size_t len, ds_idx_info *info, const char *what, char *err,
                  size_t errlen);

/* Whole-file loaders. labels_path may be NULL/"" (no labels). */
int ds_load_idx(const char *path, const char *labels_path, ds_table *t, char *err, size_t errlen);
int ds_load_npy(const char *path, const char *labels_path, ds_table *t, char *err, size_t errlen);
/* y_key NULL or missing from the archive (when !y_required) means no labels. */
int ds_load_npz(const char *path, const char *x_key, const char *y_key, int y_required, ds_table *t,
                char *err, size_t errlen);
/* label_column: column index (negative counts from the end) or
 * DS_NO_LABEL_COLUMN. A first line that is not numeric is a header.
 * labels_path, when given, supplies labels instead (one per line or IDX/npy). */
#define DS_NO_LABEL_COLUMN INT32_MIN
int ds_load_csv(const char *path, int label_column, const char *labels_path, ds_table *t, char *err,
                size_t errlen);
/* The CSV parser on text in memory; `what` names it in errors. */
int ds_parse_csv(const char *what, const char *text, size_t len, int label_column, ds_table *t,
                 char *err, size_t errlen);

/* Reads just a labels file (IDX, .npy or one integer per text line). */
int ds_load_labels(const char *path, int64_t **y, size_t *n, char *err, size_t errlen);

/* Streams an IDX file row by row (gzip or plain). */
typedef struct ds_idx_stream ds_idx_stream;
ds_idx_stream *ds_idx_stream_open(const char *path, ds_idx_info *info, char *err, size_t errlen);
/* Reads the next row into buf (row_bytes, little-endian). 1 = row read,
 * 0 = end, negative = error (truncated file: message names the row). */
int ds_idx_stream_next(ds_idx_stream *s, void *buf, char *err, size_t errlen);
int ds_idx_stream_rewind(ds_idx_stream *s, char *err, size_t errlen);
/* Positions the stream at row `row` (the next row read): a seek on a plain
 * file, inflating up to it (nothing kept) on a gzip one. */
int ds_idx_stream_seek(ds_idx_stream *s, size_t row, char *err, size_t errlen);
void ds_idx_stream_close(ds_idx_stream *s);

/* The row order of one epoch: order[i] for i < n is a permutation of 0..n-1
 * drawn by Fisher-Yates from a SplitMix64 stream keyed by (seed, epoch), with
 * unbiased bounded integers (Lemire's multiply-and-reject) — identical on
 * every machine and thread count. */
void ds_permutation(uint64_t seed, uint64_t epoch, uint32_t *order, size_t n);

typedef enum ds_format { DS_AUTO, DS_IDX, DS_NPY, DS_NPZ, DS_CSV } ds_format;
/* Guesses the format from the file name (.npz, .npy, .csv/.txt, else IDX). */
ds_format ds_guess_format(const char *path);

#endif
