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
 *   ranks_same_string(host, st, str, &same)  same = 1 when every rank passes
 *       the same string (a sink's path pattern: one file per job), else 0
 *   ranks_paths_disjoint(host, st, set, what)  sinks writing a file per
 *       message (myelin_pathset of the paths written): rank 0 gathers every
 *       rank's paths and fails naming the first one two ranks wrote
 *
 * Both are collectives: every rank calls them in the same order. They return
 * 0, MYELIN_ESTOP when the job is stopping, or host->error's code.
 */
#ifndef MYELIN_PLUGIN_RANKS_H
#define MYELIN_PLUGIN_RANKS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "myelin/io.h"
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

static inline int ranks_same_string(const myelin_host *h, myelin_stage *st, const char *str, int *same) {
  uint64_t fnv = 1469598103934665603ull; /* FNV-1a 64 of str, its min and max over ranks */
  for (const char *c = str; *c; c++)
    fnv = (fnv ^ (unsigned char)*c) * 1099511628211ull;
  int64_t lo = (int64_t)(fnv >> 1), hi = lo;
  int rc = h->allreduce(st, &lo, 1, MYELIN_I8, MYELIN_OP_MIN);
  if (rc == 0) rc = h->allreduce(st, &hi, 1, MYELIN_I8, MYELIN_OP_MAX);
  *same = rc == 0 && lo == hi;
  return rc;
}

static inline int ranks_paths_disjoint(const myelin_host *h, myelin_stage *st, const myelin_pathset *set,
                                       const char *what) {
  size_t len = 0;
  for (size_t i = 0; i < set->cap; i++)
    if (set->keys && set->keys[i]) len += strlen(set->keys[i]) + 1;
  char *mine = malloc(len + 1), *q = mine;
  if (!mine) return h->error(st, "out of memory");
  for (size_t i = 0; i < set->cap; i++)
    if (set->keys && set->keys[i]) {
      size_t n = strlen(set->keys[i]) + 1;
      memcpy(q, set->keys[i], n);
      q += n;
    }
  uint8_t *all = NULL;
  size_t *sizes = NULL;
  int rc = ranks_gather(h, st, mine, len, &all, &sizes);
  free(mine);
  if (rc == 0 && all) {
    myelin_pathset seen = {0};
    char err[64];
    const char *p = (const char *)all;
    for (int r = 0; rc == 0 && r < h->size(st); r++)
      for (const char *end = p + sizes[r]; rc == 0 && p < end; p += strlen(p) + 1) {
        int c = myelin_pathset_claim(&seen, p, (uint64_t)r, err, sizeof err);
        if (c == MYELIN_ENOMEM) rc = h->error(st, "out of memory");
        for (size_t i = 0; c && c != MYELIN_ENOMEM && i < seen.cap; i++)
          if (seen.keys[i] && !strcmp(seen.keys[i], p))
            rc = h->error(
                st,
                "%s: ranks %llu and %d both wrote %s, so it holds one rank's output only; make the path "
                "differ per message ({subject}, {index}) or per rank (${OMPI_COMM_WORLD_RANK}, "
                "${SLURM_PROCID})",
                what, (unsigned long long)seen.msg[i], r, p);
      }
    myelin_pathset_free(&seen);
  }
  if (all) h->free(st, all);
  free(sizes);
  return rc;
}

#endif
