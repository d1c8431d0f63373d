/*
 * bg_testdata.h — test fixtures for the BioGrad suites (header-only): the 8x8
 * digits that python3-sklearn ships, read straight from its csv.gz with zlib,
 * and a tiny seeded rate encoder producing CSR rasters for the kernels.
 */
#ifndef BG_TESTDATA_H
#define BG_TESTDATA_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "biograd_kernels.h"

#define BG_DIGITS_PATH "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz"

typedef struct bg_digits {
  int count;
  float *x; /* [count x 64], 0..1 */
  int *y;
} bg_digits;

/* 0 on success; -1 when the file is absent or malformed. */
static inline int bg_digits_load(const char *path, bg_digits *d) {
  memset(d, 0, sizeof *d);
  gzFile f = gzopen(path, "rb");
  if (!f) return -1;
  size_t cap = 1 << 20, len = 0;
  char *buf = malloc(cap);
  int n;
  while (buf && (n = gzread(f, buf + len, (unsigned)(cap - len - 1))) > 0) {
    len += (size_t)n;
    if (cap - len < 2) buf = realloc(buf, cap *= 2);
  }
  gzclose(f);
  if (!buf) return -1;
  buf[len] = 0;
  int rows = 0;
  for (size_t i = 0; i < len; i++) rows += buf[i] == '\n';
  d->x = malloc(sizeof(float) * 64 * (size_t)(rows + 1));
  d->y = malloc(sizeof(int) * (size_t)(rows + 1));
  char *p = buf;
  while (*p && d->count <= rows) {
    float v[65];
    int k = 0;
    while (k < 65) {
      char *end;
      v[k] = strtof(p, &end);
      if (end == p) break;
      k++;
      p = end;
      if (*p == ',') p++;
    }
    if (k == 65) {
      for (int j = 0; j < 64; j++) d->x[(size_t)d->count * 64 + j] = v[j] / 16.0f;
      d->y[d->count++] = (int)v[64];
    }
    while (*p && *p != '\n') p++;
    if (*p == '\n') p++;
  }
  free(buf);
  return d->count > 0 ? 0 : -1;
}

static inline void bg_digits_free(bg_digits *d) {
  free(d->x);
  free(d->y);
}

/* Rate code: unit j fires at each step with probability x[j]. ptr [T+1],
 * unit [T*n]. */
static inline void bg_encode_rate(const float *x, int n, int T, uint64_t rng[4], uint32_t *ptr,
                                  uint32_t *unit) {
  uint32_t k = 0;
  for (int t = 0; t < T; t++) {
    ptr[t] = k;
    for (int j = 0; j < n; j++)
      if (bg_rng_uniform(rng) < x[j]) unit[k++] = (uint32_t)j;
  }
  ptr[T] = k;
}

#endif
