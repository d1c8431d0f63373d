/*
 * fashion_data.h — test data shared by the Loihi suites: the first images or
 * labels of Debian's Fashion-MNIST test split, and the netx tutorial's
 * regular encoder. Header-only (static functions), included by one .c each.
 */
#ifndef MYELIN_TEST_FASHION_DATA_H
#define MYELIN_TEST_FASHION_DATA_H
#include <stdint.h>
#include <stdlib.h>
#include <zlib.h>

#include "testutil.h"

/* The first `count` rows of an IDX file under /usr/share/datasets/fashion-mnist
 * (skip: 16 for images, 784 bytes a row; 8 for labels, 1 byte a row); NULL
 * when the package is not installed. */
static uint8_t *fashion(const char *file, int count, size_t skip) {
  char *path = mt_strf("/usr/share/datasets/fashion-mnist/%s", file);
  gzFile g = gzopen(path, "rb");
  free(path);
  if (!g) return NULL;
  uint8_t hdr[16];
  size_t n = (size_t)count * (skip == 16 ? 784 : 1);
  uint8_t *buf = malloc(n);
  int ok = buf && gzread(g, hdr, (unsigned)skip) == (int)skip && gzread(g, buf, (unsigned)n) == (int)n;
  gzclose(g);
  if (!ok) {
    free(buf);
    return NULL;
  }
  return buf;
}

/* The netx tutorial's encoder: v += x, spike when v > 1, then v = 0. */
static size_t encode_regular(const uint8_t *img, int steps, uint32_t *st, uint32_t *un) {
  double v[784] = {0};
  size_t n = 0;
  for (int t = 0; t < steps; t++)
    for (int i = 0; i < 784; i++) {
      v[i] += img[i] / 255.0;
      if (v[i] > 1) {
        v[i] = 0;
        st[n] = (uint32_t)t;
        un[n++] = (uint32_t)i;
      }
    }
  return n;
}
#endif
