/*
 * schema.c — loading the schemas/ folder (one .yaml per kind) and checking messages against them.
 *
 * Loading uses libyaml's document API, so every node keeps its line and
 * column and every mistake in a schema file is reported as FILE:LINE:COL.
 * Each file becomes a tree of `spec` nodes: a bit set of accepted types plus,
 * for maps, a list of named fields (required or optional) and/or one spec for
 * all values, and for lists one spec for all items. The loaded set is
 * immutable, so one instance may check messages from many threads at once.
 *
 * Checking walks the message with the public myelin_obj_* readers (tensors
 * through myelin_obj_tensor, which verifies dtype, shape and data length) and
 * stops at the first problem, naming the kind and the dotted path of the
 * field: "network: field 'layers[1].weight': expected tensor, got str".
 * Fields that a schema does not list are allowed: readers ignore unknown keys.
 */
#include "schema.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "myelin/error.h"

enum {
  T_INT = 1 << 0,
  T_UINT = 1 << 1,
  T_FLOAT = 1 << 2,
  T_STR = 1 << 3,
  T_BOOL = 1 << 4,
  T_TENSOR = 1 << 5,
  T_MAP = 1 << 6,
  T_LIST = 1 << 7,
  T_BIN = 1 << 8,
  T_NIL = 1 << 9,
  T_ANY = 1 << 10
};

static const struct {
  const char *name;
  unsigned bit;
} type_names[] = {{"int", T_INT},     {"uint", T_UINT}, {"float", T_FLOAT}, {"str", T_STR},
                  {"bool", T_BOOL},   {"tensor", T_TENSOR}, {"map", T_MAP}, {"list", T_LIST},
                  {"bin", T_BIN},     {"nil", T_NIL},   {"any", T_ANY}};
#define N_TYPES (sizeof type_names / sizeof type_names[0])

typedef struct spec spec;
typedef struct field {
  char *name;
  int required;
  spec *type;
} field;

struct spec {
  unsigned types;
  unsigned dtypes; /* tensors: accepted dtypes, bit d for myelin_dtype d; 0 = any */
  int ndim;        /* tensors: required number of dimensions, -1 = any */
  field *fields; /* map fields */
  size_t n_fields;
  spec *values; /* every value of a map */
  spec *items;  /* every element of a list */
};

typedef struct kind_schema {
  char *kind;
  char *doc;
  char *file;
  spec *root;
} kind_schema;

struct myelin_schemas {
  kind_schema *k;
  size_t n;
};

/* ---- freeing ------------------------------------------------------------- */

static void spec_free(spec *s) {
  if (!s) return;
  for (size_t i = 0; i < s->n_fields; i++) {
    free(s->fields[i].name);
    spec_free(s->fields[i].type);
  }
  free(s->fields);
  spec_free(s->values);
  spec_free(s->items);
  free(s);
}

void myelin_schemas_free(myelin_schemas *s) {
  if (!s) return;
  for (size_t i = 0; i < s->n; i++) {
    free(s->k[i].kind);
    free(s->k[i].doc);
    free(s->k[i].file);
    spec_free(s->k[i].root);
  }
  free(s->k);
  free(s);
}

/* ---- loading ------------------------------------------------------------- */

typedef struct loader {
  yaml_document_t *doc;
  const char *file;
  char *err;
  size_t errlen;
  int failed;
} loader;

static void lerr(loader *L, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void lerr(loader *L, const yaml_node_t *n, const char *fmt, ...) {
  if (L->failed++) return; /* keep the first */
  int k = snprintf(L->err, L->errlen, "%s:%lu:%lu: error: ", L->file,
                   n ? (unsigned long)n->start_mark.line + 1 : 1UL,
                   n ? (unsigned long)n->start_mark.column + 1 : 1UL);
  if (k < 0 || (size_t)k >= L->errlen) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(L->err + k, L->errlen - (size_t)k, fmt, ap);
  va_end(ap);
}

static const char *scalar(const yaml_node_t *n) {
  return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static yaml_node_t *node(loader *L, int id) { return yaml_document_get_node(L->doc, id); }

/* "int|str" -> bit set; 0 after reporting an unknown name. */
static unsigned parse_types(loader *L, const yaml_node_t *n) {
  const char *s = scalar(n);
  if (!s || !*s) {
    lerr(L, n, "expected a type name (int, uint, float, str, bool, tensor, map, list, bin, nil, any)");
    return 0;
  }
  unsigned bits = 0;
  while (*s) {
    size_t len = strcspn(s, "|");
    while (len && s[len - 1] == ' ') len--;
    size_t i;
    for (i = 0; i < N_TYPES; i++)
      if (strlen(type_names[i].name) == len && strncmp(type_names[i].name, s, len) == 0) break;
    if (i == N_TYPES) {
      lerr(L, n, "unknown type '%.*s' (int, uint, float, str, bool, tensor, map, list, bin, nil, any)",
           (int)len, s);
      return 0;
    }
    bits |= type_names[i].bit;
    s += strcspn(s, "|");
    while (*s == '|' || *s == ' ') s++;
  }
  return bits;
}

static spec *parse_spec(loader *L, yaml_node_t *n, int depth);

static unsigned parse_dtype1(loader *L, const yaml_node_t *n) {
  const char *s = scalar(n);
  myelin_dtype d = s ? myelin_dtype_parse(s, strlen(s)) : MYELIN_DTYPE_INVALID;
  if (d == MYELIN_DTYPE_INVALID) {
    lerr(L, n, "unknown dtype '%s' (<f4 <f8 |i1 <i2 <i4 <i8 |u1 <u2 <u4 <u8 |b1)", s ? s : "");
    return 0;
  }
  return 1u << d;
}

/* "<u4" or a list such as [<f4, <f8] -> bit set over myelin_dtype. ('|' is
 * part of numpy's names, so it cannot join alternatives here.) */
static unsigned parse_dtypes(loader *L, yaml_node_t *n) {
  if (n->type != YAML_SEQUENCE_NODE) return parse_dtype1(L, n);
  unsigned bits = 0;
  for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++)
    bits |= parse_dtype1(L, node(L, *i));
  if (!bits && !L->failed) lerr(L, n, "expected at least one dtype");
  return bits;
}

/* Adds the fields of a {name: spec} mapping to s. */
static void parse_fields(loader *L, spec *s, yaml_node_t *map, int required, int depth) {
  if (map->type != YAML_MAPPING_NODE) {
    lerr(L, map, "expected a mapping of field name to type");
    return;
  }
  for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
    yaml_node_t *k = node(L, p->key), *v = node(L, p->value);
    const char *name = scalar(k);
    if (!name || !*name) {
      lerr(L, k, "field names must be non-empty strings");
      return;
    }
    for (size_t i = 0; i < s->n_fields; i++)
      if (s->fields[i].name && strcmp(s->fields[i].name, name) == 0) {
        lerr(L, k, "field '%s' is listed twice", name);
        return;
      }
    field *nf = realloc(s->fields, (s->n_fields + 1) * sizeof *nf);
    if (!nf) {
      lerr(L, k, "out of memory");
      return;
    }
    s->fields = nf;
    field *f = &s->fields[s->n_fields];
    f->name = strdup(name);
    f->required = required;
    f->type = parse_spec(L, v, depth + 1);
    s->n_fields++;
    if (!f->name || !f->type) {
      if (!f->name) lerr(L, k, "out of memory");
      return;
    }
  }
}

/* A field type: "type" or {type, doc, required, optional, values, items}. */
static spec *parse_spec(loader *L, yaml_node_t *n, int depth) {
  if (depth > 16) {
    lerr(L, n, "schema nested too deeply");
    return NULL;
  }
  spec *s = calloc(1, sizeof *s);
  if (!s) return lerr(L, n, "out of memory"), NULL;
  s->ndim = -1;
  if (n->type == YAML_SCALAR_NODE) {
    s->types = parse_types(L, n);
  } else if (n->type == YAML_MAPPING_NODE) {
    yaml_node_t *type = NULL;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
      yaml_node_t *k = node(L, p->key), *v = node(L, p->value);
      const char *key = scalar(k);
      if (!key) lerr(L, k, "expected a key");
      else if (!strcmp(key, "type")) type = v, s->types = parse_types(L, v);
      else if (!strcmp(key, "doc")) continue;
      else if (!strcmp(key, "required")) parse_fields(L, s, v, 1, depth);
      else if (!strcmp(key, "optional")) parse_fields(L, s, v, 0, depth);
      else if (!strcmp(key, "values")) s->values = parse_spec(L, v, depth + 1);
      else if (!strcmp(key, "items")) s->items = parse_spec(L, v, depth + 1);
      else if (!strcmp(key, "dtype")) s->dtypes = parse_dtypes(L, v);
      else if (!strcmp(key, "ndim")) {
        char *end = NULL;
        const char *txt = scalar(v);
        long d = txt ? strtol(txt, &end, 10) : -1;
        if (!txt || !*txt || *end || d < 0 || d > MYELIN_MAX_NDIM)
          lerr(L, v, "'ndim' must be an integer from 0 to %d", MYELIN_MAX_NDIM);
        else s->ndim = (int)d;
      } else
        lerr(L, k, "unknown key '%s' (type, doc, required, optional, values, items, dtype, ndim)",
             key);
    }
    if (!type) lerr(L, n, "a field given as a mapping needs a 'type'");
    else if ((s->n_fields || s->values) && !(s->types & T_MAP))
      lerr(L, n, "'required', 'optional' and 'values' apply to maps only");
    else if (s->items && !(s->types & T_LIST)) lerr(L, n, "'items' applies to lists only");
    else if ((s->dtypes || s->ndim >= 0) && !(s->types & T_TENSOR))
      lerr(L, n, "'dtype' and 'ndim' apply to tensors only");
  } else {
    lerr(L, n, "expected a type name or a mapping with 'type'");
  }
  if (L->failed) {
    spec_free(s);
    return NULL;
  }
  return s;
}

/* Parses one schema file into k. */
static int load_file(const char *path, kind_schema *k, char *err, size_t errlen) {
  memset(k, 0, sizeof *k);
  FILE *fp = fopen(path, "rb");
  if (!fp) {
    snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    return MYELIN_EIO;
  }
  yaml_parser_t parser;
  yaml_document_t doc;
  yaml_parser_initialize(&parser);
  yaml_parser_set_input_file(&parser, fp);
  if (!yaml_parser_load(&parser, &doc)) {
    snprintf(err, errlen, "%s:%lu:%lu: error: %s", path, (unsigned long)parser.problem_mark.line + 1,
             (unsigned long)parser.problem_mark.column + 1,
             parser.problem ? parser.problem : "YAML syntax error");
    yaml_parser_delete(&parser);
    fclose(fp);
    return MYELIN_EFORMAT;
  }
  loader L = {&doc, path, err, errlen, 0};
  yaml_node_t *root = yaml_document_get_root_node(&doc);
  k->root = calloc(1, sizeof *k->root);
  if (!k->root) lerr(&L, root, "out of memory");
  else if (!root || root->type != YAML_MAPPING_NODE) lerr(&L, root, "expected a mapping with 'kind'");
  else {
    k->root->types = T_MAP;
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
      yaml_node_t *kn = node(&L, p->key), *v = node(&L, p->value);
      const char *key = scalar(kn);
      if (!key) lerr(&L, kn, "expected a key");
      else if (!strcmp(key, "kind")) {
        if (!scalar(v) || !*scalar(v)) lerr(&L, v, "'kind' must be a non-empty string");
        else k->kind = strdup(scalar(v));
      } else if (!strcmp(key, "doc")) {
        if (scalar(v)) k->doc = strdup(scalar(v));
      } else if (!strcmp(key, "required")) parse_fields(&L, k->root, v, 1, 0);
      else if (!strcmp(key, "optional")) parse_fields(&L, k->root, v, 0, 0);
      else lerr(&L, kn, "unknown key '%s' (kind, doc, required, optional)", key);
    }
    if (!L.failed && !k->kind) lerr(&L, root, "missing 'kind'");
  }
  yaml_document_delete(&doc);
  yaml_parser_delete(&parser);
  fclose(fp);
  k->file = strdup(path);
  return L.failed ? MYELIN_EFORMAT : 0;
}

static int is_yaml_name(const char *n) {
  size_t len = strlen(n);
  return n[0] != '.' && ((len > 5 && !strcmp(n + len - 5, ".yaml")) ||
                         (len > 4 && !strcmp(n + len - 4, ".yml")));
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

myelin_schemas *myelin_schemas_load(const char *dir, char *err, size_t errlen) {
  char dummy[8];
  if (!err || !errlen) err = dummy, errlen = sizeof dummy;
  DIR *d = dir ? opendir(dir) : NULL;
  if (!d) {
    snprintf(err, errlen, "%s: cannot open schema folder: %s", dir ? dir : "(null)", strerror(errno));
    return NULL;
  }
  char **names = NULL;
  size_t n = 0;
  struct dirent *e;
  int listed = 1; /* 0 when memory ran out while listing: never drop files silently */
  while ((e = readdir(d))) {
    if (!is_yaml_name(e->d_name)) continue;
    char **nn = realloc(names, (n + 1) * sizeof *nn);
    if (!nn) {
      listed = 0;
      break;
    }
    names = nn;
    if (!(names[n] = strdup(e->d_name))) {
      listed = 0;
      break;
    }
    n++;
  }
  closedir(d);
  if (n) qsort(names, n, sizeof *names, cmp_str);
  myelin_schemas *s = calloc(1, sizeof *s);
  if (s) s->k = calloc(n ? n : 1, sizeof *s->k);
  int rc = (!s || !s->k || !listed) ? MYELIN_ENOMEM : 0;
  if (rc) snprintf(err, errlen, "%s: out of memory while loading schemas", dir);
  for (size_t i = 0; i < n && !rc; i++) {
    char *path = NULL;
    if (asprintf(&path, "%s/%s", dir, names[i]) < 0) {
      snprintf(err, errlen, "%s: out of memory while loading schemas", dir);
      rc = MYELIN_ENOMEM;
      break;
    }
    rc = load_file(path, &s->k[s->n], err, errlen);
    s->n++; /* freed with the set even when half-loaded */
    for (size_t j = 0; !rc && j + 1 < s->n; j++)
      if (!strcmp(s->k[j].kind, s->k[s->n - 1].kind)) {
        snprintf(err, errlen, "%s: kind '%s' is already defined in %s", path, s->k[j].kind,
                 s->k[j].file);
        rc = MYELIN_EFORMAT;
      }
    free(path);
  }
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
  if (!rc && s->n == 0) {
    snprintf(err, errlen, "%s: no schema files (*.yaml)", dir);
    rc = MYELIN_ENOENT;
  }
  if (rc) {
    myelin_schemas_free(s);
    return NULL;
  }
  return s;
}

static const kind_schema *find(const myelin_schemas *s, const char *kind) {
  for (size_t i = 0; s && kind && i < s->n; i++)
    if (!strcmp(s->k[i].kind, kind)) return &s->k[i];
  return NULL;
}

int myelin_schemas_has(const myelin_schemas *s, const char *kind) { return find(s, kind) != NULL; }
size_t myelin_schemas_count(const myelin_schemas *s) { return s ? s->n : 0; }
const char *myelin_schemas_kind_at(const myelin_schemas *s, size_t i) {
  return s && i < s->n ? s->k[i].kind : NULL;
}

/* ---- checking ------------------------------------------------------------ */

typedef struct checker {
  const char *kind;
  char path[256];
  char *err;
  size_t errlen;
} checker;

static int cerr(checker *C, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int cerr(checker *C, const char *fmt, ...) {
  if (C->err && C->errlen) {
    int k = snprintf(C->err, C->errlen, "%s: field '%s': ", C->kind, C->path);
    if (k >= 0 && (size_t)k < C->errlen) {
      va_list ap;
      va_start(ap, fmt);
      vsnprintf(C->err + k, C->errlen - (size_t)k, fmt, ap);
      va_end(ap);
    }
  }
  return MYELIN_EFORMAT;
}

static const char *got_name(myelin_obj o) {
  int64_t i;
  switch (myelin_obj_type_of(o)) {
  case MYELIN_OBJ_NONE: return "nothing";
  case MYELIN_OBJ_NIL: return "nil";
  case MYELIN_OBJ_BOOL: return "bool";
  case MYELIN_OBJ_INT: return myelin_obj_int(o, &i) == 0 && i < 0 ? "negative int" : "int";
  case MYELIN_OBJ_FLOAT: return "float";
  case MYELIN_OBJ_STR: return "str";
  case MYELIN_OBJ_BIN: return "bin";
  case MYELIN_OBJ_ARRAY: return "list";
  case MYELIN_OBJ_MAP: return "map";
  case MYELIN_OBJ_EXT: return "ext";
  }
  return "?";
}

/* "int|str" from a bit set. */
static void types_str(unsigned bits, char *buf, size_t n) {
  buf[0] = 0;
  for (size_t i = 0; i < N_TYPES; i++)
    if (bits & type_names[i].bit) {
      size_t len = strlen(buf);
      snprintf(buf + len, n - len, "%s%s", len ? "|" : "", type_names[i].name);
    }
}

/* The type of o that the spec accepts, or 0. */
static unsigned match(unsigned types, myelin_obj o) {
  int64_t i;
  uint64_t u;
  double f;
  int b;
  myelin_tensor t;
  if (types & T_ANY) return T_ANY;
  myelin_obj_type ot = myelin_obj_type_of(o);
  if ((types & T_TENSOR) && ot == MYELIN_OBJ_MAP && myelin_obj_tensor(o, &t) == 0) return T_TENSOR;
  if ((types & T_MAP) && ot == MYELIN_OBJ_MAP) return T_MAP;
  if ((types & T_INT) && myelin_obj_int(o, &i) == 0) return T_INT;
  if ((types & T_UINT) && myelin_obj_uint(o, &u) == 0) return T_UINT;
  if ((types & T_FLOAT) && myelin_obj_float(o, &f) == 0) return T_FLOAT;
  if ((types & T_STR) && ot == MYELIN_OBJ_STR) return T_STR;
  if ((types & T_BOOL) && myelin_obj_bool(o, &b) == 0) return T_BOOL;
  if ((types & T_LIST) && ot == MYELIN_OBJ_ARRAY) return T_LIST;
  if ((types & T_BIN) && ot == MYELIN_OBJ_BIN) return T_BIN;
  if ((types & T_NIL) && ot == MYELIN_OBJ_NIL) return T_NIL;
  return 0;
}

static int check_value(checker *C, const spec *s, myelin_obj o);

/* Appends a path element; returns the old length to restore. */
static size_t path_push(checker *C, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static size_t path_push(checker *C, const char *fmt, ...) {
  size_t len = strlen(C->path);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(C->path + len, sizeof C->path - len, fmt, ap);
  va_end(ap);
  return len;
}

static int check_fields(checker *C, const spec *s, myelin_obj map) {
  for (size_t i = 0; i < s->n_fields; i++) {
    const field *f = &s->fields[i];
    size_t old = path_push(C, "%s%s", C->path[0] ? "." : "", f->name);
    myelin_obj v = myelin_obj_get(map, f->name);
    int rc = 0;
    if (!myelin_obj_exists(v)) {
      if (f->required) {
        char want[96];
        types_str(f->type->types, want, sizeof want);
        rc = cerr(C, "missing (required, %s)", want);
      }
    } else {
      rc = check_value(C, f->type, v);
    }
    C->path[old] = 0;
    if (rc) return rc;
  }
  return 0;
}

static int check_value(checker *C, const spec *s, myelin_obj o) {
  unsigned m = match(s->types, o);
  if (!m) {
    char want[96];
    types_str(s->types, want, sizeof want);
    if ((s->types & T_TENSOR) && myelin_obj_type_of(o) == MYELIN_OBJ_MAP)
      return cerr(C, "expected %s, got a map that is not a valid tensor "
                     "{dtype, shape, data} (unknown dtype, or shape not matching the data length)",
                  want);
    return cerr(C, "expected %s, got %s", want, got_name(o));
  }
  if (m == T_TENSOR && (s->dtypes || s->ndim >= 0)) {
    myelin_tensor t;
    myelin_obj_tensor(o, &t); /* valid: match() checked it */
    if (s->dtypes && !(s->dtypes & (1u << t.dtype))) {
      char want[96] = "";
      for (int d = 1; d <= MYELIN_B1; d++)
        if (s->dtypes & (1u << d)) {
          size_t len = strlen(want);
          snprintf(want + len, sizeof want - len, "%s%s", len ? " or " : "",
                   myelin_dtype_name((myelin_dtype)d));
        }
      return cerr(C, "expected a tensor of dtype %s, got %s", want, myelin_dtype_name(t.dtype));
    }
    if (s->ndim >= 0 && t.ndim != s->ndim)
      return cerr(C, "expected a tensor with %d dimension%s, got %d", s->ndim,
                  s->ndim == 1 ? "" : "s", t.ndim);
    return 0;
  }
  if (m == T_MAP) {
    int rc = check_fields(C, s, o);
    for (size_t i = 0; !rc && s->values && i < myelin_obj_len(o); i++) {
      myelin_obj k = myelin_obj_key_at(o, i);
      size_t klen;
      const char *ks = myelin_obj_str(k, &klen);
      size_t old = ks ? path_push(C, "%s%.*s", C->path[0] ? "." : "", (int)klen, ks)
                      : path_push(C, "[%zu]", i);
      rc = check_value(C, s->values, myelin_obj_value_at(o, i));
      C->path[old] = 0;
    }
    return rc;
  }
  if (m == T_LIST && s->items) {
    for (size_t i = 0; i < myelin_obj_len(o); i++) {
      size_t old = path_push(C, "[%zu]", i);
      int rc = check_value(C, s->items, myelin_obj_at(o, i));
      C->path[old] = 0;
      if (rc) return rc;
    }
  }
  return 0;
}

int myelin_schemas_check(const myelin_schemas *s, const myelin_msg *m, char *err, size_t errlen) {
  if (!m) {
    if (err && errlen) snprintf(err, errlen, "no message");
    return MYELIN_EINVAL;
  }
  const kind_schema *k = find(s, myelin_msg_kind(m));
  if (!k) return 0;
  checker C = {k->kind, "", err, errlen};
  myelin_obj root = myelin_msg_root(m);
  if (myelin_obj_type_of(root) != MYELIN_OBJ_MAP) {
    if (err && errlen) snprintf(err, errlen, "%s: message is not a map", k->kind);
    return MYELIN_EFORMAT;
  }
  return check_fields(&C, k->root, root);
}
