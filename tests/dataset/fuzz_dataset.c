/* libFuzzer target: the IDX header and CSV readers of plugins/dataset/load.c
 * on arbitrary bytes (tests/dataset/CMakeLists.txt). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "load.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[256];
  ds_idx_info info;
  int hl = ds_idx_header(data, size, &info, "fuzz", err, sizeof err);
  if (hl > (int)size) __builtin_trap();
  ds_table t;
  int col = size ? (int)(data[0] % 5) - 2 : -1;
  if (ds_parse_csv("fuzz", (const char *)data, size, col, &t, err, sizeof err) == 0) {
    if (!t.rows || t.rows * t.row_bytes == 0) __builtin_trap();
    memset(t.x, 0, t.rows * t.row_bytes);
    ds_table_free(&t);
  }
  return 0;
}
