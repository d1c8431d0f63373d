/*
 * fuzz_tcp.c — libFuzzer target for tcp_source's stream unpacker
 * (plugins/tcp_source/tcp_stream.c, the loop on_read() runs).
 *
 * The input is a byte stream as a producer would send it. It is fed through
 * tcp_stream_space()/tcp_stream_feed() in chunks of pseudo-random sizes
 * (1 byte up to several read buffers, seeded by the input), and every
 * emitted message is walked and dropped. Oracle: the chunked run must emit
 * exactly the messages (same count, same bytes) that decoding the whole
 * input at once emits, and fail exactly when that one does — chunk
 * boundaries must never change what a connection delivers. A small
 * max_bytes (from the input) exercises the size limit too.
 * Built with -DMYELIN_FUZZ=ON and clang (tests/fuzz/CMakeLists.txt).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "myelin/msg.h"
#include "tcp_stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct sink {
  const uint8_t *ref; /* the one-shot decode's messages, concatenated */
  size_t ref_len, pos, count;
} sink;

static int on_msg(void *ctx, myelin_msg *m) {
  sink *k = ctx;
  size_t len;
  const uint8_t *b = myelin_msg_bytes(m, &len);
  if (k->ref) {
    if (k->pos + len > k->ref_len || memcmp(k->ref + k->pos, b, len) != 0) {
      fprintf(stderr, "fuzz_tcp: chunked decode emitted different bytes at %zu\n", k->pos);
      __builtin_trap();
    }
  }
  (void)myelin_msg_kind(m);
  myelin_tensor t;
  if (myelin_msg_tensor(m, "data", &t) == 0 && t.nbytes) (void)((const volatile uint8_t *)t.data)[t.nbytes - 1];
  k->pos += len;
  k->count++;
  myelin_msg_unref(m);
  return 0;
}

static uint64_t next(uint64_t *s) { /* splitmix64 */
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  /* byte 0: max_bytes choice; byte 1: chunking seed; the rest is the stream */
  size_t max_bytes = (data[0] & 0x80) ? 0 : 64 + (size_t)data[0] * 16;
  uint64_t seed = data[1];
  data += 2;
  size -= 2;
  /* one shot */
  sink ref = {0};
  size_t avail;
  char err[256];
  int rc1 = 0;
  uint8_t *all = malloc(size ? size : 1);
  if (!all) return 0;
  size_t all_len = 0;
  {
    size_t off = 0;
    while (off < size) {
      myelin_msg *m = NULL;
      size_t used = 0;
      rc1 = myelin_msg_decode(data + off, size - off, max_bytes, &m, &used, err, sizeof err);
      if (rc1 < 0) break;
      size_t len;
      const uint8_t *b = myelin_msg_bytes(m, &len);
      memcpy(all + all_len, b, len);
      all_len += len;
      ref.count++;
      off += used;
      myelin_msg_unref(m);
    }
    if (rc1 == MYELIN_EAGAIN) rc1 = 0;
  }
  /* chunked, through the plugin's loop */
  tcp_stream s = {0};
  sink k = {all, all_len, 0, 0};
  size_t off = 0;
  int rc2 = 0;
  while (off < size && rc2 == 0) {
    uint8_t *sp = tcp_stream_space(&s, &avail);
    if (!sp) break;
    uint64_t r = next(&seed);
    size_t want = (r & 3) == 0 ? 1 : (r & 3) == 1 ? (size_t)(r >> 8) % 16 + 1 : (size_t)(r >> 8) % (avail + 1);
    if (want == 0) want = 1;
    if (want > avail) want = avail;
    if (want > size - off) want = size - off;
    memcpy(sp, data + off, want);
    off += want;
    rc2 = tcp_stream_feed(&s, want, max_bytes, on_msg, &k, err, sizeof err);
  }
  if (k.count != ref.count || (rc1 < 0) != (rc2 < 0) || (rc2 == 0 && k.pos != all_len)) {
    fprintf(stderr, "fuzz_tcp: chunked %zu msgs rc %d, one-shot %zu msgs rc %d\n", k.count, rc2, ref.count, rc1);
    __builtin_trap();
  }
  tcp_stream_free(&s);
  free(all);
  return 0;
}
