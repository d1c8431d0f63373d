/*
 * cli_cat.c — `myelin cat FILE.mpk [--json]`: one line per message.
 *
 * Text mode prints `kind key=value ...` with tensors summarized as
 * dtype[shape]; --json prints one JSON object per line with each tensor
 * shown as {"dtype": ..., "shape": [...]}, so `jq` works on stream files.
 * A truncated or corrupt file prints every good message first, then names
 * the byte offset where decoding failed, and exits 1. "-" reads stdin; any
 * other argument starting with '-' is an option (unknown ones: exit 2).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "myelin/io.h"
#include "internal.h"

static int is_tensor(myelin_obj o) {
  return myelin_obj_type_of(o) == MYELIN_OBJ_MAP &&
         myelin_obj_type_of(myelin_obj_get(o, "dtype")) == MYELIN_OBJ_STR &&
         myelin_obj_type_of(myelin_obj_get(o, "shape")) == MYELIN_OBJ_ARRAY &&
         myelin_obj_type_of(myelin_obj_get(o, "data")) == MYELIN_OBJ_BIN;
}

static void print_shape(FILE *f, myelin_obj shape, int json) {
  fputc('[', f);
  for (size_t i = 0; i < myelin_obj_len(shape); i++) {
    int64_t v = 0;
    myelin_obj_int(myelin_obj_at(shape, i), &v);
    fprintf(f, json ? "%s%" PRId64 : "%s%" PRId64, i ? (json ? ", " : ",") : "", v);
  }
  fputc(']', f);
}

static void print_value(FILE *f, myelin_obj o, int json, int depth) {
  int64_t iv;
  uint64_t uv;
  double dv;
  int bv;
  size_t len;
  switch (myelin_obj_type_of(o)) {
  case MYELIN_OBJ_NONE:
  case MYELIN_OBJ_NIL:
    fputs("null", f);
    return;
  case MYELIN_OBJ_BOOL:
    myelin_obj_bool(o, &bv);
    fputs(bv ? "true" : "false", f);
    return;
  case MYELIN_OBJ_INT:
    if (myelin_obj_int(o, &iv) == 0)
      fprintf(f, "%" PRId64, iv);
    else if (myelin_obj_uint(o, &uv) == 0)
      fprintf(f, "%" PRIu64, uv);
    return;
  case MYELIN_OBJ_FLOAT:
    myelin_obj_float(o, &dv);
    if (json && !isfinite(dv))
      fputs("null", f);
    else
      fprintf(f, "%.17g", dv);
    return;
  case MYELIN_OBJ_STR: {
    const char *s = myelin_obj_str(o, &len);
    if (json || depth > 0)
      json_str(f, s, len);
    else
      fwrite(s, 1, len, f);
    return;
  }
  case MYELIN_OBJ_BIN:
    myelin_obj_bin(o, &len);
    if (json)
      fprintf(f, "{\"bin\": %zu}", len);
    else
      fprintf(f, "bin[%zu]", len);
    return;
  case MYELIN_OBJ_EXT:
    fputs(json ? "{\"ext\": true}" : "ext", f);
    return;
  case MYELIN_OBJ_ARRAY:
    fputc('[', f);
    for (size_t i = 0; i < myelin_obj_len(o); i++) {
      if (i) fputs(json ? ", " : ",", f);
      if (!json && i >= 16) {
        fprintf(f, "...+%zu", myelin_obj_len(o) - i);
        break;
      }
      print_value(f, myelin_obj_at(o, i), json, depth + 1);
    }
    fputc(']', f);
    return;
  case MYELIN_OBJ_MAP:
    if (is_tensor(o)) {
      myelin_obj dt = myelin_obj_get(o, "dtype");
      const char *s = myelin_obj_str(dt, &len);
      if (json) {
        fputs("{\"dtype\": ", f);
        json_str(f, s, len);
        fputs(", \"shape\": ", f);
        print_shape(f, myelin_obj_get(o, "shape"), 1);
        fputc('}', f);
      } else {
        fwrite(s, 1, len, f);
        print_shape(f, myelin_obj_get(o, "shape"), 0);
      }
      return;
    }
    fputc('{', f);
    for (size_t i = 0; i < myelin_obj_len(o); i++) {
      if (i) fputs(json ? ", " : " ", f);
      myelin_obj k = myelin_obj_key_at(o, i);
      if (json) {
        if (myelin_obj_type_of(k) == MYELIN_OBJ_STR)
          print_value(f, k, 1, depth + 1);
        else {
          fputc('"', f);
          print_value(f, k, 0, depth + 1);
          fputc('"', f);
        }
        fputs(": ", f);
      } else {
        print_value(f, k, 0, 0);
        fputc('=', f);
      }
      print_value(f, myelin_obj_value_at(o, i), json, depth + 1);
    }
    fputc('}', f);
    return;
  }
}

static void print_msg(const myelin_msg *m, int json) {
  myelin_obj root = myelin_msg_root(m);
  if (json) {
    print_value(stdout, root, 1, 0);
    fputc('\n', stdout);
    return;
  }
  fputs(myelin_msg_kind(m), stdout);
  for (size_t i = 0; i < myelin_obj_len(root); i++) {
    myelin_obj k = myelin_obj_key_at(root, i);
    if (myelin_obj_str_eq(k, "kind")) continue;
    fputc(' ', stdout);
    print_value(stdout, k, 0, 0);
    fputc('=', stdout);
    print_value(stdout, myelin_obj_value_at(root, i), 0, 1);
  }
  fputc('\n', stdout);
}

int cmd_cat(int argc, char **argv) {
  const char *path = NULL;
  int json = 0;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--json"))
      json = 1;
    else if (a[0] == '-' && a[1]) /* "-" alone is stdin */
      return cli_usage_error("cat", "unknown option '%s' (a file named so: ./%s)", a, a);
    else if (!path)
      path = a;
    else
      return cli_usage_error("cat", "unexpected argument '%s' (one file per command)", a);
  }
  if (!path) return cli_usage_error("cat", "no stream file given");
  FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
  if (!f) {
    perror(path);
    return 1;
  }
  myelin_reader *rd = myelin_reader_new(f, 0);
  if (!rd) {
    fprintf(stderr, "%s: error: out of memory\n", path);
    if (f != stdin) fclose(f);
    return 1;
  }
  uint64_t count = 0;
  int rc = 0;
  for (;;) {
    myelin_msg *m;
    char err[512];
    int r = myelin_reader_next(rd, &m, err, sizeof err);
    if (r == 0) break;
    if (r < 0) {
      fprintf(stderr, "%s: %s (after %" PRIu64 " good messages)\n", path, err, count);
      rc = 1;
      break;
    }
    print_msg(m, json);
    myelin_msg_unref(m);
    count++;
  }
  myelin_reader_free(rd);
  if (f != stdin) fclose(f);
  return rc;
}
