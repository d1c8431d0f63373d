/*
 * fuzz_netx.c — libFuzzer target for the netx reader of
 * plugins/loihi_common/loihi_hdf5.c.
 *
 * The bytes are opened as an HDF5 file image in memory (libhdf5's core
 * driver, H5Pset_file_image) and read as a lava-dl netx network. A network
 * that reads is then checked, prepared for simulation and run for a few
 * steps with every input spiking, so that whatever the reader accepts is also
 * safe to simulate. Any crash, leak or sanitizer report is a bug: a malformed
 * file must only produce an error message; every HDF5 identifier the reader
 * opened must be closed again (checked with H5Fget_obj_count). Seed corpus:
 * the .net fixtures.
 *
 * libhdf5 1.10 itself leaks internal free-list blocks on some corrupted
 * files (no identifier of ours is left open when it happens); those leaks
 * are suppressed by module name below so that LeakSanitizer keeps reporting
 * leaks of our own allocations.
 * Built with -DMYELIN_FUZZ=ON and clang (tests/loihi/CMakeLists.txt):
 *   ASAN_OPTIONS=allocator_may_return_null=1 ./bin/fuzz_netx corpus/ SRC/tests/data/netx
 * (libhdf5 asks malloc for sizes read from a damaged header and handles the
 * NULL; without that option ASan aborts on the request instead.)
 *
 * Found so far: a NULL read inside libhdf5's H5Gget_info on a damaged
 * symbol table, now avoided (layers are counted by probing "0", "1", ...);
 * a SIGBUS in libhdf5's H5T__bit_copy converting an integer type whose bit
 * layout exceeds its size, now refused before H5Dread (corpus:
 * crash-h5t-damaged-int-layout.net); 2 GiB requests for datasets declared
 * huge over a few stored bytes, now refused (stored_in_full). Crashes inside
 * libhdf5 that no check of ours can foresee (damaged local heaps) are
 * reported by bench/fuzz.sh as KNOWN or FOREIGN: production reads user
 * files in a forked child (loihi_isolate.c).
 */
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "loihi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__lsan_default_suppressions(void);

const char *__lsan_default_suppressions(void) { return "leak:libhdf5_serial.so\nleak:libhdf5.so\n"; }

static void check_no_open_ids(void) {
  ssize_t n = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
  if (n > 0) {
    fprintf(stderr, "fuzz_netx: %zd HDF5 identifiers left open\n", n);
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[512];
  loihi_net net;
  int rc = loihi_netx_read_mem(data, size, &net, err, sizeof err);
  check_no_open_ids();
  if (rc != 0) return 0;
  size_t work = 0;
  for (int l = 0; l < net.n_layers; l++) work += (size_t)net.layers[l].n_in * (size_t)net.layers[l].n_out;
  loihi_sim sim;
  if (work <= ((size_t)1 << 22) && loihi_sim_init(&sim, &net, err, sizeof err) == 0) {
    uint32_t *all = malloc(sizeof(uint32_t) * (size_t)sim.n_in);
    if (all) {
      for (int i = 0; i < sim.n_in; i++) all[i] = (uint32_t)i;
      for (int t = 0; t < 4; t++) loihi_sim_step(&sim, all, t < 2 ? sim.n_in : 0);
      free(all);
    }
    loihi_sim_free(&sim);
  }
  loihi_net_free(&net);
  return 0;
}
