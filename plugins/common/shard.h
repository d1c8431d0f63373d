/*
 * shard.h — which items a rank takes when N ranks share n items (the
 * `shard` params of fmri_source, dataset, folder_source and file_source);
 * header-only, pure.
 *
 * Items are split into N contiguous blocks in item order: rank r takes
 * [begin, end) with sizes n/N or n/N + 1 (the first n mod N ranks take one
 * more). Deterministic (a function of n, r and N only), disjoint and
 * covering for every N >= 1, including N > n, where the last ranks get an
 * empty block. shard_owner() inverts it: the rank that takes item i, so a
 * reducing stage can tell which rank holds which subject.
 *
 * When the items are not known in advance (files arriving in a watched
 * folder), shard_name_owner() assigns each by its name alone (FNV-1a 64 of
 * the bytes, mod N): disjoint, covering and independent of arrival order and
 * timing on each rank, but balanced only on average.
 */
#ifndef MYELIN_PLUGIN_SHARD_H
#define MYELIN_PLUGIN_SHARD_H

#include <stddef.h>

/* Rank `rank`'s block [*begin, *end) of n items among `size` ranks. A size
 * below 1 counts as 1, a rank outside 0..size-1 gets an empty block. */
static inline void shard_range(size_t n, int rank, int size, size_t *begin, size_t *end) {
  if (size < 1) size = 1;
  if (rank < 0 || rank >= size) {
    *begin = *end = n;
    return;
  }
  size_t N = (size_t)size, r = (size_t)rank, q = n / N, rem = n % N;
  *begin = r * q + (r < rem ? r : rem);
  *end = *begin + q + (r < rem);
}

/* The rank whose block holds item i among `size` ranks; -1 when i >= n. */
static inline int shard_owner(size_t n, int size, size_t i) {
  if (i >= n) return -1;
  if (size < 1) size = 1;
  size_t N = (size_t)size, q = n / N, rem = n % N, big = rem * (q + 1);
  if (i < big) return (int)(i / (q + 1));
  return (int)(rem + (i - big) / q); /* i >= big implies q > 0 */
}

/* The rank (0..size-1) that takes the item named `name`: FNV-1a 64 mod size. */
static inline int shard_name_owner(const char *name, int size) {
  if (size < 1) size = 1;
  unsigned long long h = 14695981039346656037ull;
  for (const unsigned char *p = (const unsigned char *)name; *p; p++)
    h = (h ^ *p) * 1099511628211ull;
  return (int)(h % (unsigned long long)size);
}

#endif
