/* libFuzzer target: the event-camera decoders of plugins/event_common
 * (N-MNIST, EVT 2.0, EVT 3.0; AEDAT 2.0 and 3.1 by content) on arbitrary bytes, then the transforms on
 * what they decoded. Byte 0 picks the decoder (low 2 bits: auto by content,
 * nmnist, evt2, evt3) and whether a small sensor is imposed (bit 2); the
 * rest is the file. Checked: every delivered event lies inside the sensor
 * the decoder reports, and the frame bins partition sorted events in order. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  uint8_t sel = data[0];
  const uint8_t *b = data + 1;
  size_t len = size - 1;
  ev_format f = (ev_format)(sel & 3);
  if (f == EV_FMT_AUTO) f = ev_format_guess(b, len, "fuzz.bin");
  ev_sensor s = {0, 0, 0};
  if (sel & 4) s = (ev_sensor){20, 10, 2};
  ev_array a = {0};
  char err[512];
  ev_decode(f, b, len, "fuzz", &s, &a, err, sizeof err);
  for (size_t i = 0; i < a.n; i++)
    if (a.x[i] >= s.w || a.y[i] >= s.h || a.p[i] >= s.p) __builtin_trap();
  /* frames need sorted times: sort a copy of t (insertion sort, small n) */
  size_t n = a.n < 512 ? a.n : 512;
  int64_t t[512];
  for (size_t i = 0; i < n; i++) {
    int64_t v = a.t[i];
    size_t j = i;
    for (; j > 0 && t[j - 1] > v; j--)
      t[j] = t[j - 1];
    t[j] = v;
  }
  size_t *lo, *hi;
  size_t bins = ev_frame_bins(t, n, 1 + sel % 7, 0, 0, &lo, &hi);
  for (size_t i = 0; i < bins; i++)
    if (lo[i] > hi[i] || hi[i] > n || (i && lo[i] < lo[i - 1])) __builtin_trap();
  free(lo);
  free(hi);
  double w = (double)(1 + (sel >> 3)) * 7.5;
  if (n && (double)(t[n - 1] - t[0]) / w < 4096) { /* bounded bin counts keep runs fast */
    bins = ev_frame_bins(t, n, 0, w, sel & 1, &lo, &hi);
    for (size_t i = 0; i < bins; i++)
      if (lo[i] > hi[i] || hi[i] > n) __builtin_trap();
    free(lo);
    free(hi);
  }
  if (a.n && (size_t)s.w * s.h <= 65536) ev_denoise(&a, 1000); /* the grid is the events' extent */
  ev_crop(&a, &s, 2, 1, 5, 5);
  for (size_t i = 0; i < a.n; i++)
    if (a.x[i] >= 5 || a.y[i] >= 5) __builtin_trap();
  ev_free(&a);
  return 0;
}
