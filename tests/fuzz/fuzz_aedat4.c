/* libFuzzer target: the AEDAT 4.0 decoder of plugins/event_common
 * (evaedat4.c, with the FlatBuffers verifier of evaedat4_fb.cpp, liblz4,
 * libzstd, libxml2) on arbitrary bytes. Byte 0 sets the piece size of the
 * stream run (1 + byte 0 bytes at a time, as a TCP stream arrives); the
 * rest is the file. The bytes go through ev_decode_aedat4 whole and through
 * ev_aedat4_feed piece by piece. Checked: every event lies inside the
 * sensor the decoder reports, and the stream run decodes the same events
 * as the whole-file run (as far as both got). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  size_t piece = 1 + data[0];
  const uint8_t *b = data + 1;
  size_t len = size - 1;
  char err[512];
  ev_array whole = {0};
  ev_sensor s = {0, 0, 0};
  ev_decode_aedat4(b, len, "fuzz", &s, &whole, err, sizeof err);
  for (size_t i = 0; i < whole.n; i++)
    if (whole.x[i] >= s.w || whole.y[i] >= s.h || whole.p[i] >= s.p) __builtin_trap();
  /* the stream run: a buffer topped up piece by piece, whole units consumed */
  ev_aedat4 d;
  ev_aedat4_init(&d);
  ev_array got = {0}, all = {0};
  ev_sensor ss = {0, 0, 0};
  uint8_t *buf = malloc(len + 1);
  size_t have = 0, at = 0;
  while (buf && at < len) {
    size_t k = len - at < piece ? len - at : piece;
    memcpy(buf + have, b + at, k);
    have += k;
    at += k;
    size_t used = 0;
    got.n = 0;
    int rc = ev_aedat4_feed(&d, buf, have, &used, "fuzz", &ss, &got, err, sizeof err);
    if (used > have) __builtin_trap();
    if (got.n && ev_reserve(&all, got.n) == 0) {
      memcpy(all.x + all.n, got.x, got.n * sizeof *got.x);
      memcpy(all.y + all.n, got.y, got.n * sizeof *got.y);
      memcpy(all.p + all.n, got.p, got.n);
      memcpy(all.t + all.n, got.t, got.n * sizeof *got.t);
      all.n += got.n;
    }
    if (rc || d.state == 3) break;
    memmove(buf, buf + used, have - used);
    have -= used;
  }
  size_t n = all.n < whole.n ? all.n : whole.n;
  for (size_t i = 0; i < n; i++)
    if (all.x[i] != whole.x[i] || all.y[i] != whole.y[i] || all.p[i] != whole.p[i] || all.t[i] != whole.t[i])
      __builtin_trap();
  free(buf);
  ev_aedat4_free(&d);
  ev_free(&whole);
  ev_free(&got);
  ev_free(&all);
  return 0;
}
