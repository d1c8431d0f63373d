/*
 * fuzz_msg.c — libFuzzer target for the message decoder and readers.
 *
 * Decodes every message at the front of the input, walks the whole object
 * tree (every scalar reader, every tensor), deep-copies the root into a new
 * message and decodes that copy again; checks that the cached kind is the
 * root "kind" the object view sees. Build: cmake -DMYELIN_FUZZ=ON -DCMAKE_C_COMPILER=clang
 * then ./bin/fuzz_msg [corpus/].
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "myelin/msg.h"

static size_t walk(myelin_obj o, int depth) {
  size_t n = 1;
  int64_t i;
  uint64_t u;
  double f;
  int b;
  size_t len;
  char buf[8];
  myelin_tensor t;
  (void)myelin_obj_int(o, &i);
  (void)myelin_obj_uint(o, &u);
  (void)myelin_obj_float(o, &f);
  (void)myelin_obj_bool(o, &b);
  (void)myelin_obj_str(o, &len);
  (void)myelin_obj_str_copy(o, buf, sizeof buf);
  (void)myelin_obj_bin(o, &len);
  if (myelin_obj_tensor(o, &t) == 0) {
    const volatile uint8_t *p = t.data;
    if (t.nbytes) n += p[0] + p[t.nbytes - 1];
    if ((uintptr_t)t.data % myelin_dtype_size(t.dtype)) abort();
  }
  myelin_obj_type ty = myelin_obj_type_of(o);
  if ((ty == MYELIN_OBJ_ARRAY || ty == MYELIN_OBJ_MAP) && depth > MYELIN_MAX_DEPTH) abort();
  for (size_t k = 0; k < myelin_obj_len(o); k++) {
    if (ty == MYELIN_OBJ_ARRAY) n += walk(myelin_obj_at(o, k), depth + 1);
    if (ty == MYELIN_OBJ_MAP) {
      n += walk(myelin_obj_key_at(o, k), depth + 1);
      n += walk(myelin_obj_value_at(o, k), depth + 1);
    }
  }
  return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t off = 0;
  while (off < size) {
    myelin_msg *m;
    size_t used;
    char err[128];
    int rc = myelin_msg_decode(data + off, size - off, 1 << 20, &m, &used, err, sizeof err);
    if (rc) break;
    if (used == 0 || used > size - off) abort();
    myelin_obj root = myelin_msg_root(m);
    if (myelin_obj_type_of(root) != MYELIN_OBJ_MAP) abort();
    /* the kind cached by the scanner is the one the object view sees */
    size_t kl;
    const char *ks = myelin_obj_str(myelin_obj_get(root, "kind"), &kl);
    const char *kind = myelin_msg_kind(m);
    if (!ks || memcmp(ks, kind, kl) != 0 || kind[kl] != 0) abort();
    walk(root, 1);
    myelin_builder *b = myelin_builder_new(myelin_msg_kind(m));
    for (size_t k = 0; k < myelin_obj_len(root); k++) {
      myelin_obj key = myelin_obj_key_at(root, k);
      size_t kl;
      const char *ks = myelin_obj_str(key, &kl);
      if (!ks || memchr(ks, 0, kl) || (kl == 4 && !memcmp(ks, "kind", 4))) continue;
      char *name = strndup(ks, kl);
      myelin_build_obj(b, name, myelin_obj_value_at(root, k));
      free(name);
    }
    myelin_msg *c = myelin_builder_finish(b);
    if (c) {
      size_t clen;
      const uint8_t *cb = myelin_msg_bytes(c, &clen);
      myelin_msg *d;
      if (myelin_msg_decode(cb, clen, 0, &d, NULL, NULL, 0) != 0) abort();
      walk(myelin_msg_root(d), 1);
      myelin_msg_unref(d);
      myelin_msg_unref(c);
    }
    myelin_msg_unref(m);
    off += used;
  }
  return 0;
}
