/*
 * ranks.h — blob collectives over host->gather/bcast (ABI 1.4) for stages
 * that combine results across MPI ranks (isc, encoding, info_content,
 * file_sink); header-only. With one rank they reduce to copies.
 *
 *   ranks_gather(host, st, p, n, &all, &sizes)  every rank sends n bytes; on
 *       rank 0 all = the concatenation in rank order (free with host->free),
 *       sizes = each rank's n (malloc'ed, free()); NULL on other ranks
 *   ranks_bcast(host, st, &buf, &len)  buf/len from rank 0 to every rank;
 *       on other ranks *buf is malloc'ed (free())
 *
 * Both are collectives: every rank calls them in the same order. They return
 * 0, MYELIN_ESTOP when the job is stopping, or host->error's code.
 */
#ifndef MYELIN_PLUGIN_RANKS_H
#define MYELIN_PLUGIN_RANKS_H

#include <stdint.h>
#include <stdlib.h>

#include "myelin/plugin.h"

static inline int ranks_gather(const myelin_host *h, myelin_stage *st, const void *p, size_t n, uint8_t **all,
                               size_t **sizes) {
  const int root = h->rank(st) == 0;
  *all = NULL;
  *sizes = NULL;
  size_t *sz = root ? calloc((size_t)h->size(st), sizeof *sz) : NULL;
  if (root && !sz) return h->error(st, "out of memory");
  void *r = NULL;
  int rc = h->gather(st, p, n, 0, root ? &r : NULL, sz);
  if (rc) {
    free(sz);
    if (r) h->free(st, r);
    return rc;
  }
  *all = r;
  *sizes = sz;
  return 0;
}

static inline int ranks_bcast(const myelin_host *h, myelin_stage *st, uint8_t **buf, size_t *len) {
  uint64_t n = *len;
  int rc = h->bcast(st, &n, sizeof n, 0);
  if (rc) return rc;
  if (h->rank(st) != 0) {
    *len = (size_t)n;
    if (!(*buf = malloc(*len + 1))) return h->error(st, "out of memory (%zu bytes)", *len);
  }
  return h->bcast(st, *buf, *len, 0);
}

#endif
