/*
 * fuzz_gifti.c — libFuzzer target for plugins/fmri_source/gifti.c.
 *
 * Feeds arbitrary bytes to the GIFTI reader (libxml2 parse, every encoding,
 * byte order and index order; external files are refused without a folder)
 * and, when a file parses, to the run view (gifti_rows_f32) and the
 * structure-name conversions. Any crash, overflow, leak or sanitizer report
 * is a bug: malformed input must only produce an error.
 */
#include <stdint.h>
#include <stdlib.h>

#include "gifti.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[512];
  gifti_image g;
  if (gifti_read_mem(data, size, "fuzz.gii", NULL, &g, err, sizeof err) != 0) return 0;
  float *X = NULL;
  size_t T = 0, V = 0;
  if (gifti_rows_f32(&g, "fuzz.gii", &X, &T, &V, err, sizeof err) == 0) free(X);
  const char *prim = gifti_meta_get(&g.meta, "AnatomicalStructurePrimary");
  if (prim) {
    char a[128], b[128];
    gifti_structure_to_cifti(prim, a, sizeof a);
    gifti_structure_from_cifti(a, b, sizeof b);
  }
  gifti_free(&g);
  return 0;
}
