/*
 * params.c — typed stage parameters, driven by the plugin's table.
 *
 * Each myelin_param_def names a type, a default (YAML text), a range or a
 * list of choices. Values arrive as YAML nodes from a pipeline file, or as
 * YAML text from `--set` and the test harness; both go through the same
 * conversion so a value means the same thing wherever it is written.
 * Defaults are parsed the same way when the params are created, so a plugin
 * reads every param with myelin_param_* and never parses text itself.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "internal.h"

/* The type's name in errors and in `myelin inspect` (text and --json). */
const char *param_type_name(myelin_param_type t) {
  switch (t) {
  case MYELIN_PARAM_BOOL:
    return "bool";
  case MYELIN_PARAM_INT:
    return "int";
  case MYELIN_PARAM_FLOAT:
    return "float";
  case MYELIN_PARAM_STRING:
    return "string";
  case MYELIN_PARAM_ENUM:
    return "enum";
  case MYELIN_PARAM_PATH:
    return "path";
  case MYELIN_PARAM_INPUT_PATH:
    return "input path";
  case MYELIN_PARAM_INT_LIST:
    return "int list";
  case MYELIN_PARAM_FLOAT_LIST:
    return "float list";
  case MYELIN_PARAM_STRING_LIST:
    return "string list";
  }
  return "?";
}

static void pval_clear(pval *v) {
  free(v->text);
  for (size_t i = 0; v->items && i < v->n; i++)
    free(v->items[i]);
  free(v->items);
  free(v->ints);
  free(v->floats);
  memset(v, 0, sizeof *v);
}

static int parse_bool(const char *s, int *out) {
  static const char *t[] = {"true", "yes", "on", "1"}, *f[] = {"false", "no", "off", "0"};
  for (int i = 0; i < 4; i++) {
    if (strcasecmp(s, t[i]) == 0) return *out = 1, 0;
    if (strcasecmp(s, f[i]) == 0) return *out = 0, 0;
  }
  return -1;
}

static int parse_int(const char *s, int64_t *out) {
  if (!*s) return -1;
  errno = 0;
  char *end;
  long long v = strtoll(s, &end, 0);
  if (errno || *end) {
    /* accept integral floats such as 1e6 */
    double d = strtod(s, &end);
    if (*end || d != floor(d) || fabs(d) > 9.2e18) return -1;
    v = (long long)d;
  }
  *out = v;
  return 0;
}

static int parse_float(const char *s, double *out) {
  if (!*s) return -1;
  if (strcasecmp(s, ".inf") == 0 || strcasecmp(s, "inf") == 0) return *out = INFINITY, 0;
  if (strcasecmp(s, "-.inf") == 0 || strcasecmp(s, "-inf") == 0) return *out = -INFINITY, 0;
  if (strcasecmp(s, ".nan") == 0 || strcasecmp(s, "nan") == 0) return *out = NAN, 0;
  char *end;
  errno = 0;
  double d = strtod(s, &end);
  if (errno == ERANGE || *end) return -1;
  *out = d;
  return 0;
}

static int choice_ok(const char *choices, const char *s) {
  size_t n = strlen(s);
  const char *p = choices;
  while (p && *p) {
    const char *e = strchr(p, '|');
    size_t m = e ? (size_t)(e - p) : strlen(p);
    if (m == n && strncmp(p, s, n) == 0) return 1;
    p = e ? e + 1 : NULL;
  }
  return 0;
}

/* A float param's integer view, saturated (a plain cast of 1e79 or NaN is
 * undefined behaviour). */
static int64_t float_to_int(double f) {
  if (isnan(f)) return 0;
  if (f >= 9223372036854775807.0) return INT64_MAX;
  if (f <= -9223372036854775808.0) return INT64_MIN;
  return (int64_t)f;
}

/* Converts one scalar for element type `t` into v (scalars) or list slot i. */
static int scalar_value(const myelin_param_def *def, myelin_param_type t, const char *s, pval *v, size_t i,
                        char *why, size_t wn) {
  int64_t iv = 0;
  double fv = 0;
  int bv = 0;
  switch (t) {
  case MYELIN_PARAM_BOOL:
    if (parse_bool(s, &bv)) return snprintf(why, wn, "expected true or false, got '%s'", s), -1;
    v->b = bv;
    return 0;
  case MYELIN_PARAM_INT:
  case MYELIN_PARAM_INT_LIST:
    if (parse_int(s, &iv)) return snprintf(why, wn, "expected an integer, got '%s'", s), -1;
    if (def->has_range && ((double)iv < def->min || (double)iv > def->max))
      return snprintf(why, wn, "%lld is out of range [%g, %g]", (long long)iv, def->min, def->max), -1;
    if (t == MYELIN_PARAM_INT)
      v->i = iv, v->f = (double)iv;
    else
      v->ints[i] = iv, v->floats[i] = (double)iv;
    return 0;
  case MYELIN_PARAM_FLOAT:
  case MYELIN_PARAM_FLOAT_LIST:
    if (parse_float(s, &fv)) return snprintf(why, wn, "expected a number, got '%s'", s), -1;
    if (def->has_range && (fv < def->min || fv > def->max || isnan(fv)))
      return snprintf(why, wn, "%g is out of range [%g, %g]", fv, def->min, def->max), -1;
    if (t == MYELIN_PARAM_FLOAT)
      v->f = fv, v->i = float_to_int(fv);
    else
      v->floats[i] = fv, v->ints[i] = float_to_int(fv);
    return 0;
  case MYELIN_PARAM_ENUM:
    if (!choice_ok(def->choices, s))
      return snprintf(why, wn, "'%s' is not one of %s", s, def->choices ? def->choices : "?"), -1;
    return 0;
  default:
    return 0;
  }
}

static int is_list(myelin_param_type t) {
  return t == MYELIN_PARAM_INT_LIST || t == MYELIN_PARAM_FLOAT_LIST || t == MYELIN_PARAM_STRING_LIST;
}

/* Sets v from a list of scalar strings (already env-expanded). */
static int set_from_scalars(const myelin_param_def *def, pval *v, char **items, size_t n, int is_seq,
                            char *why, size_t wn) {
  pval nv;
  memset(&nv, 0, sizeof nv);
  if (!is_list(def->type)) {
    if (is_seq || n != 1)
      return snprintf(why, wn, "expected a single %s, got a list", param_type_name(def->type)), -1;
    if (scalar_value(def, def->type, items[0], &nv, 0, why, wn)) return -1;
    if (!(nv.text = xstrdup(items[0]))) return snprintf(why, wn, "out of memory"), -1;
  } else {
    nv.n = n;
    nv.items = calloc(n ? n : 1, sizeof *nv.items);
    nv.ints = calloc(n ? n : 1, sizeof *nv.ints);
    nv.floats = calloc(n ? n : 1, sizeof *nv.floats);
    if (!nv.items || !nv.ints || !nv.floats) {
      pval_clear(&nv);
      return snprintf(why, wn, "out of memory"), -1;
    }
    for (size_t i = 0; i < n; i++) {
      if (!(nv.items[i] = xstrdup(items[i]))) {
        pval_clear(&nv);
        return snprintf(why, wn, "out of memory"), -1;
      }
      if (scalar_value(def, def->type, items[i], &nv, i, why, wn)) {
        size_t off = strlen(why);
        snprintf(why + off, wn - off, " (item %zu)", i);
        pval_clear(&nv);
        return -1;
      }
    }
    if (!(nv.text = xstrdup(n ? items[0] : ""))) {
      pval_clear(&nv);
      return snprintf(why, wn, "out of memory"), -1;
    }
  }
  nv.is_set = v->is_set;
  nv.line = v->line;
  nv.col = v->col;
  pval_clear(v);
  *v = nv;
  return 0;
}

char *expand_env(const char *s, char **bad) {
  size_t cap = strlen(s) + 64, n = 0;
  char *out = malloc(cap);
  *bad = NULL;
  if (!out) return NULL; /* out of memory: NULL with *bad NULL */
  for (const char *p = s; *p;) {
    const char *val = NULL;
    size_t vlen = 0, adv = 1;
    char *tmpname = NULL;
    if (p[0] == '$' && p[1] == '{') {
      const char *end = strchr(p + 2, '}');
      if (end) {
        const char *colon = strstr(p + 2, ":-");
        size_t nlen = (colon && colon < end) ? (size_t)(colon - p - 2) : (size_t)(end - p - 2);
        tmpname = strndup(p + 2, nlen);
        if (!tmpname) {
          free(out);
          return NULL;
        }
        const char *env = getenv(tmpname);
        if (env)
          val = env, vlen = strlen(env);
        else if (colon && colon < end)
          val = colon + 2, vlen = (size_t)(end - colon - 2);
        else {
          *bad = tmpname;
          free(out);
          return NULL;
        }
        adv = (size_t)(end - p + 1);
      }
    }
    if (!val) val = p, vlen = 1;
    if (n + vlen + 1 > cap) {
      cap = (n + vlen + 1) * 2;
      char *no = realloc(out, cap);
      if (!no) {
        free(out);
        free(tmpname);
        return NULL;
      }
      out = no;
    }
    memcpy(out + n, val, vlen);
    n += vlen;
    p += adv;
    free(tmpname);
  }
  out[n] = 0;
  return out;
}

int params_find(const myelin_params *p, const char *name) {
  for (size_t i = 0; i < p->n; i++)
    if (strcmp(p->defs[i].name, name) == 0) return (int)i;
  return -1;
}

/* Collects the scalars of a node (a scalar, or a sequence of scalars),
 * expanding ${VAR}. Returns -1 with `why` set on a bad shape. */
static int node_scalars(yaml_document_t *doc, yaml_node_t *node, char ***items, size_t *n, int *is_seq,
                        char *why, size_t wn) {
  *items = NULL;
  *n = 0;
  *is_seq = 0;
  yaml_node_t **kids = NULL;
  size_t nk = 0;
  yaml_node_t *single[1];
  if (node->type == YAML_SCALAR_NODE) {
    single[0] = node;
    kids = single;
    nk = 1;
  } else if (node->type == YAML_SEQUENCE_NODE) {
    *is_seq = 1;
    nk = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    kids = calloc(nk ? nk : 1, sizeof *kids);
    if (!kids) return snprintf(why, wn, "out of memory"), -1;
    for (size_t i = 0; i < nk; i++)
      kids[i] = yaml_document_get_node(doc, node->data.sequence.items.start[i]);
  } else {
    snprintf(why, wn, "expected a value or a list, got a mapping");
    return -1;
  }
  char **out = calloc(nk ? nk : 1, sizeof *out);
  if (!out) {
    if (kids != single) free(kids);
    return snprintf(why, wn, "out of memory"), -1;
  }
  int rc = 0;
  for (size_t i = 0; i < nk; i++) {
    if (!kids[i] || kids[i]->type != YAML_SCALAR_NODE) {
      snprintf(why, wn, "list items must be plain values");
      rc = -1;
      break;
    }
    char *bad = NULL;
    out[i] = expand_env((const char *)kids[i]->data.scalar.value, &bad);
    if (!out[i] && !bad) {
      snprintf(why, wn, "out of memory");
      rc = -1;
      break;
    }
    if (!out[i]) {
      snprintf(why, wn, "environment variable '%s' is not set (use ${%s:-default})", bad, bad);
      free(bad);
      rc = -1;
      break;
    }
    *n = i + 1;
  }
  if (kids != single) free(kids);
  if (rc) {
    for (size_t i = 0; i < *n; i++)
      free(out[i]);
    free(out);
    *n = 0;
    return -1;
  }
  *items = out;
  return 0;
}

int params_set_node(myelin_params *p, int idx, yaml_document_t *doc, yaml_node_t *node, myelin_diag *d,
                    const char *file) {
  char why[512] = "";
  char **items;
  size_t n;
  int is_seq;
  const myelin_param_def *def = &p->defs[idx];
  int line = (int)node->start_mark.line + 1, col = (int)node->start_mark.column + 1;
  int rc = node_scalars(doc, node, &items, &n, &is_seq, why, sizeof why);
  if (rc == 0) {
    pval *v = &p->v[idx];
    v->is_set = 1;
    v->line = line;
    v->col = col;
    rc = set_from_scalars(def, v, items, n, is_seq, why, sizeof why);
    for (size_t i = 0; i < n; i++)
      free(items[i]);
    free(items);
  }
  if (rc) diag_add(d, file, line, col, "param '%s' (%s): %s", def->name, param_type_name(def->type), why);
  return rc;
}

/* Parses YAML text into a document; returns the root node or NULL. */
static yaml_node_t *load_text(const char *text, yaml_document_t *doc, char *why, size_t wn) {
  yaml_parser_t parser;
  yaml_parser_initialize(&parser);
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, strlen(text));
  if (!yaml_parser_load(&parser, doc)) {
    snprintf(why, wn, "bad YAML value '%s': %s", text, parser.problem ? parser.problem : "?");
    yaml_parser_delete(&parser);
    return NULL;
  }
  yaml_parser_delete(&parser);
  yaml_node_t *root = yaml_document_get_root_node(doc);
  if (!root) {
    /* an empty value: an empty scalar */
    yaml_document_delete(doc);
    yaml_document_initialize(doc, NULL, NULL, NULL, 1, 1);
    int id = yaml_document_add_scalar(doc, NULL, (yaml_char_t *)"", 0, YAML_PLAIN_SCALAR_STYLE);
    root = yaml_document_get_node(doc, id);
  }
  return root;
}

int params_set_text(myelin_params *p, int idx, const char *text, myelin_diag *d, const char *where) {
  yaml_document_t doc;
  char why[512];
  yaml_node_t *root = load_text(text, &doc, why, sizeof why);
  if (!root) {
    diag_add(d, where, 0, 0, "param '%s': %s", p->defs[idx].name, why);
    return -1;
  }
  myelin_diag local = {0};
  int rc = params_set_node(p, idx, &doc, root, &local, where);
  /* Text values have no meaningful line: re-issue without the position. */
  for (size_t i = 0; i < local.n; i++) {
    const char *msg = strstr(local.lines[i], "error: ");
    diag_add(d, where, 0, 0, "%s", msg ? msg + 7 : local.lines[i]);
  }
  diag_free(&local);
  p->v[idx].line = p->v[idx].col = 0;
  yaml_document_delete(&doc);
  return rc;
}

myelin_params *params_new(const myelin_param_def *defs, myelin_diag *d, const char *file) {
  myelin_params *p = calloc(1, sizeof *p);
  if (!p) return diag_add(d, file, 0, 0, "out of memory"), NULL;
  p->defs = defs;
  p->n = param_count(defs);
  p->v = calloc(p->n ? p->n : 1, sizeof *p->v);
  if (!p->v) {
    free(p);
    return diag_add(d, file, 0, 0, "out of memory"), NULL;
  }
  for (size_t i = 0; i < p->n; i++) {
    if (!defs[i].def) continue; /* required: checked by the pipeline */
    char where[256];
    snprintf(where, sizeof where, "%s (default of param '%s')", file ? file : "plugin", defs[i].name);
    params_set_text(p, (int)i, defs[i].def, d, where);
    p->v[i].is_set = 0;
  }
  return p;
}

void params_free(myelin_params *p) {
  if (!p) return;
  for (size_t i = 0; i < p->n; i++)
    pval_clear(&p->v[i]);
  free(p->v);
  free(p);
}

/* Edit distance, case-insensitive, where swapping two neighbours counts as
 * one edit ("gne" -> "gen"): the optimal string alignment distance. */
static size_t lev(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 63 || lb > 63) return 99;
  size_t rows[3][64], *pp = rows[0], *p = rows[1], *r = rows[2]; /* rows i-2, i-1, i */
  for (size_t j = 0; j <= lb; j++)
    p[j] = j;
  for (size_t i = 1; i <= la; i++) {
    r[0] = i;
    int ai = tolower((unsigned char)a[i - 1]);
    for (size_t j = 1; j <= lb; j++) {
      int bj = tolower((unsigned char)b[j - 1]);
      size_t best = p[j - 1] + (ai != bj);
      if (p[j] + 1 < best) best = p[j] + 1;
      if (r[j - 1] + 1 < best) best = r[j - 1] + 1;
      if (i > 1 && j > 1 && ai == tolower((unsigned char)b[j - 2]) &&
          tolower((unsigned char)a[i - 2]) == bj && pp[j - 2] + 1 < best)
        best = pp[j - 2] + 1;
      r[j] = best;
    }
    size_t *t = pp;
    pp = p;
    p = r;
    r = t;
  }
  return p[lb];
}

void suggest_init(suggest *s, const char *name) {
  s->name = name;
  s->best = NULL;
  s->dist = 99;
}

int suggest_add(suggest *s, const char *candidate) {
  if (!candidate || !strcmp(candidate, s->name)) return 0;
  size_t dd = lev(s->name, candidate);
  if (strstr(candidate, s->name) || strstr(s->name, candidate)) dd = dd < 2 ? dd : 2;
  size_t len = strlen(s->name);
  if (dd >= s->dist || dd > (len < 4 ? 1 : len / 2)) return 0;
  s->dist = dd;
  s->best = candidate;
  return 1;
}

const char *params_suggest(const myelin_param_def *defs, const char *name) {
  suggest s;
  suggest_init(&s, name);
  for (size_t i = 0; defs && defs[i].name; i++)
    suggest_add(&s, defs[i].name);
  return s.best;
}

/* ---- public getters ------------------------------------------------------ */
static const pval *get(const myelin_params *p, const char *name) {
  int i = p ? params_find(p, name) : -1;
  return i < 0 ? NULL : &p->v[i];
}

int64_t myelin_param_int(const myelin_params *p, const char *name) {
  const pval *v = get(p, name);
  return v ? v->i : 0;
}
double myelin_param_float(const myelin_params *p, const char *name) {
  const pval *v = get(p, name);
  return v ? v->f : 0.0;
}
int myelin_param_bool(const myelin_params *p, const char *name) {
  const pval *v = get(p, name);
  return v ? v->b : 0;
}
const char *myelin_param_str(const myelin_params *p, const char *name) {
  const pval *v = get(p, name);
  return (v && v->text) ? v->text : "";
}
size_t myelin_param_len(const myelin_params *p, const char *name) {
  const pval *v = get(p, name);
  return v ? v->n : 0;
}
int64_t myelin_param_int_at(const myelin_params *p, const char *name, size_t i) {
  const pval *v = get(p, name);
  return (v && i < v->n && v->ints) ? v->ints[i] : 0;
}
double myelin_param_float_at(const myelin_params *p, const char *name, size_t i) {
  const pval *v = get(p, name);
  return (v && i < v->n && v->floats) ? v->floats[i] : 0.0;
}
const char *myelin_param_str_at(const myelin_params *p, const char *name, size_t i) {
  const pval *v = get(p, name);
  return (v && i < v->n) ? v->items[i] : NULL;
}
int myelin_param_is_set(const myelin_params *p, const char *name) {
  const pval *v = get(p, name);
  return v ? v->is_set : 0;
}
