/*
 * pathset.c — the set of output paths a sink has written in this run
 * (myelin/io.h), so that a second message expanding to the same path is an
 * error naming both messages instead of a silent overwrite.
 *
 * A small open-addressing hash table (FNV-1a, linear probing, kept at most
 * half full); each path remembers the number of the message that wrote it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "myelin/io.h"

static uint64_t fnv1a(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++)
    h = (h ^ (uint8_t)*s) * 1099511628211ULL;
  return h;
}

/* The slot of s: keys[slot] is NULL when absent. */
static size_t slot_of(const myelin_pathset *set, const char *s) {
  size_t i = fnv1a(s) & (set->cap - 1);
  while (set->keys[i] && strcmp(set->keys[i], s) != 0)
    i = (i + 1) & (set->cap - 1);
  return i;
}

static int grow(myelin_pathset *set) {
  size_t nc = set->cap ? set->cap * 2 : 256;
  myelin_pathset ns = {calloc(nc, sizeof(char *)), calloc(nc, sizeof(uint64_t)), nc, set->n};
  if (!ns.keys || !ns.msg) {
    free(ns.keys);
    free(ns.msg);
    return -1;
  }
  for (size_t i = 0; i < set->cap; i++) {
    if (!set->keys[i]) continue;
    size_t j = slot_of(&ns, set->keys[i]);
    ns.keys[j] = set->keys[i];
    ns.msg[j] = set->msg[i];
  }
  free(set->keys);
  free(set->msg);
  *set = ns;
  return 0;
}

int myelin_pathset_claim(myelin_pathset *set, const char *path, uint64_t msg, char *err, size_t errlen) {
  if ((set->n + 1) * 2 > set->cap && grow(set) != 0)
    return myelin_errorf(err, errlen, MYELIN_ENOMEM, "out of memory");
  size_t i = slot_of(set, path);
  if (set->keys[i])
    return myelin_errorf(err, errlen, MYELIN_EINVAL, "%s: written twice (messages %llu and %llu)", path,
                         (unsigned long long)set->msg[i], (unsigned long long)msg);
  if (!(set->keys[i] = strdup(path))) return myelin_errorf(err, errlen, MYELIN_ENOMEM, "out of memory");
  set->msg[i] = msg;
  set->n++;
  return 0;
}

void myelin_pathset_free(myelin_pathset *set) {
  for (size_t i = 0; i < set->cap; i++)
    free(set->keys[i]);
  free(set->keys);
  free(set->msg);
  memset(set, 0, sizeof *set);
}
