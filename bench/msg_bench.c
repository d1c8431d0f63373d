/*
 * msg_bench.c — message core throughput (numbers printed, never asserted).
 *
 *   build+unref   builder_new, kind, seq, t, a 64-byte |u1 tensor, finish,
 *                 unref: what gen_source does ~millions of times a second.
 *   msgpack-c     the same map packed with msgpack-c's sbuffer packer (peer).
 *   decode+read   decode the bytes, read seq and the tensor, unref.
 *   measure       the length scanner alone.
 *
 *   read_file     (with a second argument) myelin_read_file on a .gz file:
 *                 whole-file read + zlib inflate, as dataset does for IDX.
 *
 * Usage: msg_bench [iterations] [file.gz]   (default 2,000,000)
 */
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "myelin/io.h"
#include "myelin/msg.h"

/* CPU time of this thread: on a shared machine, time spent preempted by
 * other processes would otherwise be counted (the peers are timed alike). */
static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void report(const char *what, long n, double secs) {
  printf("%-28s %8.1f ns/msg  %7.2f M msg/s\n", what, 1e9 * secs / (double)n, (double)n / secs / 1e6);
}

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 2000000;
  uint8_t payload[64];
  for (int i = 0; i < 64; i++) payload[i] = (uint8_t)i;
  const int64_t shape[1] = {64};
  volatile size_t sink = 0;

  double t0 = now();
  for (long i = 0; i < n; i++) {
    myelin_builder *b = myelin_builder_new("tensor");
    myelin_build_uint(b, "seq", (uint64_t)i);
    myelin_build_float(b, "t", (double)i * 1e-3);
    myelin_build_tensor_copy(b, "data", MYELIN_U1, 1, shape, payload);
    myelin_msg *m = myelin_builder_finish(b);
    sink += myelin_msg_bytes(m, NULL)[0];
    myelin_msg_unref(m);
  }
  report("myelin build+unref", n, now() - t0);

  t0 = now();
  for (long i = 0; i < n; i++) {
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 4);
    msgpack_pack_str_with_body(&pk, "kind", 4);
    msgpack_pack_str_with_body(&pk, "tensor", 6);
    msgpack_pack_str_with_body(&pk, "seq", 3);
    msgpack_pack_uint64(&pk, (uint64_t)i);
    msgpack_pack_str_with_body(&pk, "t", 1);
    msgpack_pack_double(&pk, (double)i * 1e-3);
    msgpack_pack_str_with_body(&pk, "data", 4);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str_with_body(&pk, "dtype", 5);
    msgpack_pack_str_with_body(&pk, "|u1", 3);
    msgpack_pack_str_with_body(&pk, "shape", 5);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_int64(&pk, 64);
    msgpack_pack_str_with_body(&pk, "data", 4);
    msgpack_pack_bin_with_body(&pk, payload, 64);
    sink += (uint8_t)sb.data[0];
    msgpack_sbuffer_destroy(&sb);
  }
  report("msgpack-c sbuffer pack+free", n, now() - t0);

  myelin_builder *b = myelin_builder_new("tensor");
  myelin_build_uint(b, "seq", 12345);
  myelin_build_float(b, "t", 0.5);
  myelin_build_tensor_copy(b, "data", MYELIN_U1, 1, shape, payload);
  myelin_msg *m = myelin_builder_finish(b);
  size_t len;
  const uint8_t *bytes = myelin_msg_bytes(m, &len);

  t0 = now();
  for (long i = 0; i < n; i++) {
    size_t used;
    myelin_msgpack_measure(bytes, len, 0, &used, NULL, 0);
    sink += used;
  }
  report("measure (scanner)", n, now() - t0);

  long nd = n / 4;
  t0 = now();
  for (long i = 0; i < nd; i++) {
    myelin_msg *d;
    myelin_msg_decode(bytes, len, 0, &d, NULL, NULL, 0);
    sink += myelin_msg_bytes(d, NULL)[0];
    myelin_msg_unref(d);
  }
  report("decode+unref", nd, now() - t0);

  t0 = now();
  for (long i = 0; i < nd; i++) {
    myelin_msg *d;
    myelin_msg_decode(bytes, len, 0, &d, NULL, NULL, 0);
    uint64_t seq;
    myelin_tensor t;
    myelin_msg_uint(d, "seq", &seq);
    myelin_msg_tensor(d, "data", &t);
    sink += seq + t.nbytes;
    myelin_msg_unref(d);
  }
  report("decode+read seq,tensor+unref", nd, now() - t0);

  t0 = now();
  for (long i = 0; i < nd; i++) {
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    msgpack_unpack_next(&up, (const char *)bytes, len, &off);
    sink += off;
    msgpack_unpacked_destroy(&up);
  }
  report("msgpack-c unpack_next (peer)", nd, now() - t0);
  printf("message size %zu bytes (sink %zu)\n", len, (size_t)sink);
  myelin_msg_unref(m);

  if (argc > 2) {
    for (int r = 0; r < 3; r++) {
      uint8_t *data;
      size_t n_bytes;
      char err[256];
      t0 = now();
      if (myelin_read_file(argv[2], 0, &data, &n_bytes, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
      }
      double dt = now() - t0;
      printf("read_file %s: %zu bytes in %.1f ms (%.0f MB/s inflated)\n", argv[2], n_bytes,
             1e3 * dt, (double)n_bytes / dt / 1e6);
      free(data);
    }
  }
  return 0;
}
