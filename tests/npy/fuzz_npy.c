/* libFuzzer target: the .npy parser on arbitrary bytes (tests/npy/CMakeLists.txt). */
#include <stdint.h>
#include <string.h>

#include "myelin/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  myelin_array a;
  char err[256];
  if (myelin_npy_parse(data, size, &a, err, sizeof err) == 0) {
    if (a.nbytes > size) __builtin_trap();
    if (a.nbytes) memset(a.data, 0, a.nbytes);
    myelin_array_free(&a);
  }
  return 0;
}
