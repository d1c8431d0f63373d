/*
 * fuzz_cifti.c — libFuzzer target for plugins/fmri_source/cifti.c.
 *
 * Feeds arbitrary bytes to the CIFTI-2 reader: the NIfTI-2 header, the
 * extension walk, the XML (brain models, parcels, series, scalars, labels)
 * and the column-major matrix conversion; a file that parses is written back
 * (to /dev/null) when its columns are brain models or parcels. Any crash,
 * overflow, leak or sanitizer report is a bug.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "cifti.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[512];
  cifti_file c;
  if (cifti_read_mem(data, size, "fuzz.dscalar.nii", &c, err, sizeof err) != 0) return 0;
  const cifti_axis *cols = &c.axes[1];
  if ((cols->type == CIFTI_BRAIN_MODELS || cols->type == CIFTI_PARCELS) && c.rows <= 64) {
    const char *names[64];
    for (size_t r = 0; r < c.rows; r++)
      names[r] = "map";
    FILE *f = fopen("/dev/null", "wb");
    if (f) {
      cifti_write_scalars(f, c.data, c.rows, names, cols, err, sizeof err);
      fclose(f);
    }
  }
  cifti_free(&c);
  return 0;
}
