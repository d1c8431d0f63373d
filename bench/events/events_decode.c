/*
 * events_decode.c — bench/events.sh's driver: the event_common decoders and
 * to_frames' binning on the files events_peer.py writes, one core.
 *
 *   events_decode decode FMT FILE   seconds (best of 3, file already in memory), count, checksum
 *   events_decode frames FILE N     N-MNIST recordings of 4000 events binned into N
 *                                   count frames (ToFrame's rules); seconds, events
 *
 * The checksum is the one events_peer.py prints, so the script checks that
 * both decoded the same events in the same order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "events.h"
#include "myelin/io.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static unsigned long long checksum(const ev_array *a) {
  unsigned long long s = 0;
  for (size_t i = 0; i < a->n; i++)
    s += (3ull * a->x[i] + 5ull * a->y[i] + 7ull * a->p[i] + (unsigned long long)a->t[i]) * (i % 1000003 + 1);
  return s;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: events_decode decode FMT FILE | frames FILE N\n");
    return 2;
  }
  const char *file = !strcmp(argv[1], "decode") ? argv[3] : argv[2];
  uint8_t *buf;
  size_t len;
  char err[512];
  if (myelin_read_file(file, 0, &buf, &len, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  ev_array a = {0};
  if (!strcmp(argv[1], "decode")) {
    int f = ev_format_parse(argv[2]);
    double best = 1e9;
    for (int r = 0; r < 3; r++) {
      ev_sensor s = {0, 0, 0};
      a.n = 0;
      double t0 = now();
      int rc = f == EV_FMT_AEDAT4 ? ev_decode_aedat4(buf, len, file, &s, &a, err, sizeof err)
                                  : ev_decode((ev_format)f, buf, len, file, &s, &a, err, sizeof err);
      double dt = now() - t0;
      if (rc) {
        fprintf(stderr, "%s\n", err);
        return 1;
      }
      if (dt < best) best = dt;
    }
    printf("%.6f %zu %llu\n", best, a.n, checksum(&a));
  } else {
    ev_sensor s = {0, 0, 0};
    if (ev_decode(EV_FMT_NMNIST, buf, len, file, &s, &a, err, sizeof err)) {
      fprintf(stderr, "%s\n", err);
      return 1;
    }
    uint32_t bins = (uint32_t)atoi(argv[3]);
    size_t per = 4000, recs = a.n / per, total = 0;
    int64_t *t = malloc(per * sizeof *t);
    ev_frames fr = {0};
    double t0 = now();
    for (size_t r = 0; r < recs; r++) {
      /* the peer sorts each recording's times too (the file's wrap around) */
      memcpy(t, a.t + r * per, per * sizeof *t);
      for (size_t i = 1; i < per; i++)
        if (t[i] < t[i - 1]) {
          int64_t v = t[i];
          size_t j = i;
          for (; j > 0 && t[j - 1] > v; j--)
            t[j] = t[j - 1];
          t[j] = v;
        }
      size_t *lo, *hi;
      size_t nb = ev_frame_bins(t, per, bins, 0, 0, &lo, &hi);
      if (ev_frames_sparse(&fr, &s, a.x + r * per, a.y + r * per, a.p + r * per, lo, hi, nb, 0) < 0) return 1;
      free(lo);
      free(hi);
      total += per;
    }
    printf("%.6f %zu\n", now() - t0, total);
    ev_frames_free(&fr);
    free(t);
  }
  ev_free(&a);
  free(buf);
  return 0;
}
