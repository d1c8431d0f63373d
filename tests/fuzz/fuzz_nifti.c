/*
 * fuzz_nifti.c — libFuzzer target for plugins/fmri_source/nifti.c.
 *
 * Feeds arbitrary bytes to the header parser and, when a header parses, to
 * the in-memory reader (gzip included) reading every volume with and
 * without a voxel gather, and to the affine. Any crash, overflow or
 * sanitizer report is a bug: malformed input must only produce an error.
 * Built with -DMYELIN_FUZZ=ON and clang (tests/fmri/CMakeLists.txt).
 */
#include <stdint.h>
#include <stdlib.h>

#include "nifti.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[256];
  nifti_header h;
  if (nifti_parse_header(data, size, "fuzz", &h, err, sizeof err) == 0) {
    double a[4][4];
    nifti_affine(&h, a);
    (void)nifti_tr_seconds(&h);
  }
  nifti_reader r;
  if (nifti_open_mem(&r, data, size, "fuzz", err, sizeof err) != 0) return 0;
  if (r.h.nvox <= (1u << 16) && r.h.nvols <= 64) {
    float *out = malloc((r.h.nvox < 3 ? 3 : r.h.nvox) * sizeof(float));
    uint32_t idx[3] = {0, (uint32_t)(r.h.nvox / 2), (uint32_t)(r.h.nvox - 1)};
    if (out) {
      for (size_t v = 0; v < r.h.nvols; v++) {
        int rc = (v & 1) ? nifti_read_volumes(&r, 1, idx, 3, out, 3, err, sizeof err)
                         : nifti_read_volumes(&r, 1, NULL, r.h.nvox, out, r.h.nvox, err, sizeof err);
        if (rc) break;
      }
      free(out);
    }
  }
  nifti_close(&r);
  return 0;
}
