/*
 * words_read.h — word timings from the files forced aligners and BIDS write.
 *
 * Plain functions over a file's bytes, no framework types, so the tests call
 * them directly. Three readers fill one word list:
 *
 *  - delimited text (BIDS events.tsv, tab-separated, `n/a` for missing;
 *    Narratives/Gentle align.csv, comma-separated with RFC 4180 quotes, with
 *    or without a header): columns are found by name in the header, or by
 *    1-based number;
 *  - Praat TextGrid, long ("ooTextFile" with `xmin = ...` labels) and short
 *    (values only) text formats, UTF-8 or UTF-16 with a byte-order mark: one
 *    interval tier, silences skipped.
 *
 * A word whose onset is missing (an empty field, n/a, nan: Gentle writes
 * nothing for a word "not found in audio") is kept with NAN timings; a word
 * with an onset but no offset gets NAN offset. words_fill_missing() then
 * applies the documented rule (README.md, "Missing timings").
 */
#ifndef MYELIN_WORDS_READ_H
#define MYELIN_WORDS_READ_H

#include <stddef.h>

typedef struct word_list {
  char **words;
  double *onset, *offset;      /* seconds; NAN = missing */
  unsigned char *interpolated; /* 1 where words_fill_missing() filled the timing */
  size_t *line;                /* the word's line in its file (1-based) */
  size_t n, cap;
} word_list;

/* Which columns hold what: a header name, a 1-based column number ("3"), or
 * "" for the defaults (README.md). header: -1 auto, 0 none, 1 present. */
typedef struct table_opts {
  char sep; /* '\t' or ',' */
  const char *word, *onset, *offset, *duration;
  const char *where; /* "COLUMN=VALUE": only those rows; "" = all */
  int header;
} table_opts;

/* Each returns 0, or -1 with "LINE: reason" (the caller prefixes the file)
 * in err. The list grows; on error it holds what was read so far. */
int words_read_table(const char *text, size_t len, const table_opts *o, word_list *out, char *err,
                     size_t errlen);
/* tier: a tier name, "" = auto ("words", else a tier whose name ends in
 * "words", else the first interval tier). skip: labels that are silences
 * (NULL-terminated; empty labels are always skipped). */
int words_read_textgrid(const char *text, size_t len, const char *tier, const char *const *skip,
                        word_list *out, char *err, size_t errlen);

/* Missing timings. mode "interpolate": a run of k words without onset between
 * two timed words shares the gap evenly (previous word's offset to next
 * word's onset, k equal slots); words before the first or after the last
 * timed word cannot be placed and are dropped. "drop": every word without an
 * onset is dropped. "error": any missing onset fails (err names its line). A missing offset becomes the next
 * kept word's onset (the onset itself for the last word). Counts go to *filled and *dropped. */
int words_fill_missing(word_list *w, const char *mode, size_t *filled, size_t *dropped, char *err,
                       size_t errlen);

void words_free(word_list *w);

#endif
