/*
 * fuzz_npz.c — libFuzzer target for .npz archives (runtime/src/npy.c via
 * libarchive): the bytes are written to a scratch file, their members
 * listed with myelin_npz_list() and each one read with myelin_npz_read()
 * (zip stored or deflated, .npy inside). A member that reads must have a
 * consistent size; nothing may crash or leak.
 * Built with -DMYELIN_FUZZ=ON and clang (tests/fuzz/CMakeLists.txt).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "myelin/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static char path[256]; /* one scratch file per process */
  if (!path[0]) {
    const char *tmp = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/myelin_fuzz_npz_%ld.npz", tmp && *tmp ? tmp : "/tmp", (long)getpid());
  }
  FILE *fp = fopen(path, "wb");
  if (!fp) return 0;
  if (size) fwrite(data, 1, size, fp);
  fclose(fp);
  char err[256];
  char **names = NULL;
  int n = myelin_npz_list(path, &names, err, sizeof err);
  for (int i = 0; i < n && i < 16; i++) {
    myelin_array a;
    if (myelin_npz_read(path, names[i], &a, err, sizeof err) == 0) {
      size_t count = 1;
      for (int d = 0; d < a.ndim; d++) count *= (size_t)a.shape[d];
      if (a.nbytes != count * myelin_dtype_size(a.dtype)) __builtin_trap();
      if (a.nbytes) memset(a.data, 0, a.nbytes);
      myelin_array_free(&a);
    }
  }
  for (int i = 0; i < n; i++) free(names[i]);
  free(names);
  unlink(path);
  return 0;
}
