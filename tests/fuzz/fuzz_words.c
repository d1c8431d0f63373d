/* libFuzzer target: word_source's readers (plugins/word_source/words_read.c)
 * on arbitrary bytes. Byte 0 picks the reader (low 2 bits: tsv, csv with a
 * header guess, headerless csv, TextGrid) and the missing-timing rule (bits
 * 2-3: interpolate, drop, error); the rest is the file. Checked: after the
 * missing-timing rule every word has finite timings with offset >= onset,
 * and the counts add up. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "words_read.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  uint8_t sel = data[0];
  const char *text = (const char *)data + 1;
  size_t len = size - 1;
  word_list w = {0};
  char err[512];
  int rc;
  static const char *const skip[] = {"sp", "sil", NULL};
  static const char *const modes[] = {"interpolate", "drop", "error", "interpolate"};
  if ((sel & 3) == 3) {
    rc = words_read_textgrid(text, len, (sel & 16) ? "words" : "", skip, &w, err, sizeof err);
  } else {
    table_opts o = {.sep = (sel & 3) == 0 ? '\t' : ',',
                    .word = "",
                    .onset = "",
                    .offset = "",
                    .duration = "",
                    .where = (sel & 32) ? "trial_type=word" : "",
                    .header = (sel & 3) == 2 ? 0 : -1};
    rc = words_read_table(text, len, &o, &w, err, sizeof err);
  }
  if (rc == 0) {
    size_t n0 = w.n, filled, dropped;
    if (words_fill_missing(&w, modes[(sel >> 2) & 3], &filled, &dropped, err, sizeof err) == 0) {
      if (w.n + dropped != n0 || filled > w.n) __builtin_trap();
      for (size_t i = 0; i < w.n; i++)
        if (!isfinite(w.onset[i]) || !isfinite(w.offset[i]) || w.offset[i] < w.onset[i] || !w.words[i])
          __builtin_trap();
    }
  }
  words_free(&w);
  return 0;
}
