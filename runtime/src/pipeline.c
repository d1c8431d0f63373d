/*
 * pipeline.c — pipeline files: YAML in, a checked stage graph out.
 *
 * The whole file is loaded as a libyaml document so every node keeps its
 * line and column. Checking never stops at the first problem: each one is
 * added to a diagnostics list as "FILE:LINE:COL: error: ..." pointing at the
 * offending node, and the caller prints them all. The checks, in order:
 * YAML syntax; top-level and stage keys; unique ids; plugins found and
 * loadable (ABI gate); params known (with a "did you mean"), typed and in
 * range, required ones present; --set overrides; inputs resolved to an
 * upstream stage and port; no cycles; port kinds compatible along every
 * edge; finally each plugin's own validate(), which may narrow the kinds its
 * outputs carry for the stages downstream.
 *
 * Names that do not resolve (keys, plugins, stages, ports, params) get the
 * closest valid one as a "did you mean", and one mistake is one error: a
 * stage fed by a stage whose plugin did not load, or whose own inputs had an
 * error, is not also told that its inputs are unconnected, and its
 * validate() sees such ports as connected with their declared kinds.
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "fault.h"
#include "myelin/io.h"
#include "internal.h"
#include "schema.h"

/* Limits of a pipeline file (docs/limits.md), each checked before the memory
 * it bounds is committed: the file is read up to the size limit, the stage
 * list is counted before stages are allocated, input lists before they grow,
 * and a queue's capacity before its ring is allocated at run time. */
#define MAX_PIPELINE_FILE_BYTES ((size_t)1 << 20) /* 1 MiB of YAML */
#define MAX_STAGES 1024
#define MAX_INPUTS 1024                         /* upstream references of one stage, all ports together */
#define MAX_QUEUE_CAPACITY ((long long)1 << 20) /* messages per edge queue */

typedef struct ctx {
  const char *file;
  yaml_document_t *doc;
  myelin_diag *d;
  pipeline *p;
  myelin_schemas *schemas; /* NULL when the schema folder is unreadable */
} ctx;

#define LINE(n) ((int)(n)->start_mark.line + 1)
#define COL(n) ((int)(n)->start_mark.column + 1)

static yaml_node_t *node_at(ctx *c, yaml_node_item_t id) { return yaml_document_get_node(c->doc, id); }

static const char *scalar(yaml_node_t *n) {
  return (n && n->type == YAML_SCALAR_NODE) ? (const char *)n->data.scalar.value : NULL;
}

static void err_at(ctx *c, yaml_node_t *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void err_at(ctx *c, yaml_node_t *n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  diag_vadd(c->d, c->file, n ? LINE(n) : 0, n ? COL(n) : 0, fmt, ap);
  va_end(ap);
}

/* Expands ${VAR} in a scalar; reports at the node when a variable is unset. */
static char *scalar_expanded(ctx *c, yaml_node_t *n, const char *what) {
  const char *s = scalar(n);
  if (!s) {
    err_at(c, n, "%s must be a plain value", what);
    return NULL;
  }
  char *bad = NULL;
  char *r = expand_env(s, &bad);
  if (!r && !bad)
    err_at(c, n, "out of memory");
  else if (!r) {
    err_at(c, n, "environment variable '%s' is not set (use ${%s:-default})", bad, bad);
    free(bad);
  }
  return r;
}

/* Writes "a, b, c": the names of ports, for error messages. */
static const char *port_names(const myelin_port_def *ports, char *buf, size_t n) {
  size_t off = 0;
  buf[0] = 0;
  for (size_t i = 0; ports && ports[i].name && off < n; i++)
    off += (size_t)snprintf(buf + off, n - off, "%s%s", i ? ", " : "", ports[i].name);
  return buf;
}

/* "; did you mean 'BEST'?", or "" when there is no close name (best NULL). */
static const char *did_you_mean(const char *best, char *buf, size_t n) {
  if (best)
    snprintf(buf, n, "; did you mean '%s'?", best);
  else
    buf[0] = 0;
  return buf;
}

/* The name of names[0..n) closest to name, or NULL. */
static const char *closest_of(const char *name, const char *const *names, size_t n) {
  suggest sg;
  suggest_init(&sg, name);
  for (size_t i = 0; i < n; i++)
    suggest_add(&sg, names[i]);
  return sg.best;
}

/* ---- stage parsing ------------------------------------------------------- */
typedef struct raw_stage {
  yaml_node_t *node, *id, *plugin, *inputs, *params, *queue;
  int unknown_key; /* reported; it may have been meant as `inputs` */
} raw_stage;

static void parse_stage_keys(ctx *c, yaml_node_t *sn, raw_stage *rs) {
  memset(rs, 0, sizeof *rs);
  rs->node = sn;
  if (sn->type != YAML_MAPPING_NODE) {
    err_at(c, sn, "a stage must be a mapping with id, plugin, inputs, params");
    return;
  }
  for (yaml_node_pair_t *pr = sn->data.mapping.pairs.start; pr < sn->data.mapping.pairs.top; pr++) {
    yaml_node_t *k = node_at(c, pr->key), *v = node_at(c, pr->value);
    const char *key = scalar(k);
    if (!key) {
      err_at(c, k, "stage keys must be plain names");
      continue;
    }
    if (!strcmp(key, "id"))
      rs->id = v;
    else if (!strcmp(key, "plugin"))
      rs->plugin = v;
    else if (!strcmp(key, "inputs"))
      rs->inputs = v;
    else if (!strcmp(key, "params"))
      rs->params = v;
    else if (!strcmp(key, "queue"))
      rs->queue = v;
    else {
      static const char *const keys[] = {"id", "plugin", "inputs", "params", "queue"};
      char mean[256];
      rs->unknown_key = 1;
      err_at(c, k, "unknown stage key '%s'%s (expected id, plugin, inputs, params, queue)", key,
             did_you_mean(closest_of(key, keys, sizeof keys / sizeof *keys), mean, sizeof mean));
    }
  }
  if (!rs->id) err_at(c, sn, "stage has no 'id'");
  if (!rs->plugin) err_at(c, sn, "stage has no 'plugin'");
}

static void parse_queue(ctx *c, stage_def *st, yaml_node_t *q) {
  st->queue_capacity = 0;
  st->queue_bytes = 0;
  if (!q) return;
  if (q->type != YAML_MAPPING_NODE) {
    err_at(c, q, "queue must be a mapping {capacity: N, bytes: N}");
    return;
  }
  for (yaml_node_pair_t *pr = q->data.mapping.pairs.start; pr < q->data.mapping.pairs.top; pr++) {
    yaml_node_t *k = node_at(c, pr->key), *v = node_at(c, pr->value);
    const char *key = scalar(k);
    char *val = scalar_expanded(c, v, "queue value");
    if (!key || !val) {
      free(val);
      continue;
    }
    char *end;
    long long x = strtoll(val, &end, 10);
    if (*end || x < 1)
      err_at(c, v, "queue %s must be a positive integer, got '%s'", key, val);
    else if (!strcmp(key, "capacity") && x > MAX_QUEUE_CAPACITY)
      err_at(c, v, "queue capacity %lld is over the limit of %lld messages", x, MAX_QUEUE_CAPACITY);
    else if (!strcmp(key, "capacity"))
      st->queue_capacity = (size_t)x;
    else if (!strcmp(key, "bytes"))
      st->queue_bytes = (size_t)x;
    else
      err_at(c, k, "unknown queue key '%s' (expected capacity, bytes)", key);
    free(val);
  }
}

static void parse_params(ctx *c, stage_def *st, yaml_node_t *pn) {
  if (!pn || !st->params) return;
  st->params_line = LINE(pn);
  st->params_col = COL(pn);
  if (pn->type != YAML_MAPPING_NODE) {
    if (!(pn->type == YAML_SCALAR_NODE && pn->data.scalar.length == 0))
      err_at(c, pn, "params must be a mapping");
    return;
  }
  for (yaml_node_pair_t *pr = pn->data.mapping.pairs.start; pr < pn->data.mapping.pairs.top; pr++) {
    yaml_node_t *k = node_at(c, pr->key), *v = node_at(c, pr->value);
    const char *key = scalar(k);
    if (!key) {
      err_at(c, k, "param names must be plain names");
      continue;
    }
    int idx = params_find(st->params, key);
    if (idx < 0) {
      const char *sug = params_suggest(st->lib.desc->params, key);
      if (sug)
        err_at(c, k, "unknown param '%s' for plugin '%s'; did you mean '%s'?", key, st->plugin, sug);
      else
        err_at(c, k, "unknown param '%s' for plugin '%s' (see `myelin inspect %s`)", key, st->plugin,
               st->plugin);
      continue;
    }
    params_set_node(st->params, idx, c->doc, v, c->d, c->file);
  }
}

static stage_def *stage_by_id(pipeline *p, const char *id, size_t len) {
  for (size_t i = 0; i < p->n; i++)
    if (p->stages[i].id && strlen(p->stages[i].id) == len && !strncmp(p->stages[i].id, id, len))
      return &p->stages[i];
  return NULL;
}

/* Resolves "id" (that stage's first output port, as in GStreamer) or
 * "id.port" to a stage and output port. Errors suggest the closest stage or
 * port name; a reference to a stage whose plugin did not load fails
 * silently, as that stage's error is the one to fix. */
static int resolve_ref(ctx *c, yaml_node_t *n, const char *ref, int *from, int *from_port) {
  pipeline *p = c->p;
  const char *dot = strrchr(ref, '.');
  stage_def *u = stage_by_id(p, ref, strlen(ref));
  const char *port = NULL;
  if (!u && dot) {
    u = stage_by_id(p, ref, (size_t)(dot - ref));
    port = dot + 1;
  }
  char mean[256], ports[512];
  if (!u) {
    char id[256];
    snprintf(id, sizeof id, "%.*s", (int)(dot ? dot - ref : (ptrdiff_t)strlen(ref)), ref);
    suggest s;
    suggest_init(&s, id);
    for (size_t i = 0; i < p->n; i++)
      suggest_add(&s, p->stages[i].id);
    err_at(c, n, "input '%s' names no stage of this pipeline%s", ref,
           did_you_mean(s.best, mean, sizeof mean));
    return -1;
  }
  *from = (int)(u - p->stages);
  if (!u->lib.desc) return -1; /* its plugin did not load: already reported */
  const myelin_port_def *outs = u->lib.desc->outputs;
  if (port_count(outs) == 0) {
    err_at(c, n, "input '%s': stage '%s' (%s) is a sink and has no outputs", ref, u->id, u->plugin);
    return -1;
  }
  if (!port) {
    *from_port = 0;
    return 0;
  }
  *from_port = port_index(outs, port);
  if (*from_port < 0) {
    suggest s;
    suggest_init(&s, port);
    for (size_t i = 0; outs[i].name; i++)
      suggest_add(&s, outs[i].name);
    err_at(c, n, "input '%s': stage '%s' (%s) has no output port '%s'%s (its outputs: %s)", ref, u->id,
           u->plugin, port, did_you_mean(s.best, mean, sizeof mean), port_names(outs, ports, sizeof ports));
    return -1;
  }
  return 0;
}

static void oom_at(ctx *c, yaml_node_t *n) { err_at(c, n, "out of memory"); }

static void add_input(ctx *c, stage_def *st, int port, int from, int from_port, yaml_node_t *n) {
  input_ref *in = realloc(st->inputs, (st->n_inputs + 1) * sizeof *st->inputs);
  if (!in) {
    oom_at(c, n);
    return;
  }
  st->inputs = in;
  st->inputs[st->n_inputs++] = (input_ref){port, from, from_port, LINE(n), COL(n)};
}

static void parse_input_list(ctx *c, stage_def *st, int port, yaml_node_t *list) {
  yaml_node_t *single[1] = {list};
  yaml_node_t **items = single;
  size_t n = 1;
  if (list->type == YAML_SEQUENCE_NODE) {
    n = (size_t)(list->data.sequence.items.top - list->data.sequence.items.start);
    if (n > MAX_INPUTS - st->n_inputs) {
      err_at(c, list, "stage '%s' lists %zu more inputs; the limit is %d per stage", st->id ? st->id : "?", n,
             MAX_INPUTS);
      return;
    }
    items = malloc((n ? n : 1) * sizeof *items);
    if (!items) {
      oom_at(c, list);
      return;
    }
    for (size_t i = 0; i < n; i++)
      items[i] = node_at(c, list->data.sequence.items.start[i]);
  }
  for (size_t i = 0; i < n; i++) {
    char *ref = scalar_expanded(c, items[i], "an input");
    int from, fp;
    if (ref && resolve_ref(c, items[i], ref, &from, &fp) == 0)
      add_input(c, st, port, from, fp, items[i]);
    else
      st->inputs_unresolved = 1;
    free(ref);
  }
  if (items != single) free(items);
}

/* The input port a plain list feeds: the only input port, or the only
 * required one (biograd's train, loihi_sim's spikes); -1 when ambiguous. */
static int list_port(const myelin_port_def *inputs) {
  int only = -1, n_required = 0;
  for (int i = 0; inputs[i].name; i++)
    if (!inputs[i].optional) n_required++, only = i;
  if (port_count(inputs) == 1) return 0;
  return n_required == 1 ? only : -1;
}

static void parse_inputs(ctx *c, stage_def *st, yaml_node_t *in) {
  if (!st->lib.desc || !in) return;
  const myelin_port_def *inputs = st->lib.desc->inputs;
  size_t nin = port_count(inputs);
  char ports[512], mean[256];
  if (nin == 0) {
    err_at(c, in, "plugin '%s' is a source and takes no inputs", st->plugin);
    return;
  }
  if (in->type == YAML_MAPPING_NODE) {
    for (yaml_node_pair_t *pr = in->data.mapping.pairs.start; pr < in->data.mapping.pairs.top; pr++) {
      yaml_node_t *k = node_at(c, pr->key), *v = node_at(c, pr->value);
      const char *pname = scalar(k);
      int port = pname ? port_index(inputs, pname) : -1;
      if (port < 0) {
        suggest s;
        suggest_init(&s, pname ? pname : "");
        for (size_t i = 0; pname && i < nin; i++)
          suggest_add(&s, inputs[i].name);
        err_at(c, k, "plugin '%s' has no input port '%s'%s (its inputs: %s)", st->plugin, pname ? pname : "?",
               did_you_mean(s.best, mean, sizeof mean), port_names(inputs, ports, sizeof ports));
        st->inputs_unresolved = 1;
        continue;
      }
      parse_input_list(c, st, port, v);
    }
    return;
  }
  int port = list_port(inputs);
  if (port < 0) {
    size_t n_required = 0;
    for (size_t i = 0; i < nin; i++)
      n_required += !inputs[i].optional;
    err_at(c, in,
           "plugin '%s' has %zu input ports (%s), %zu of them required: write inputs as a map, e.g. {%s: "
           "[...], %s: [...]}",
           st->plugin, nin, port_names(inputs, ports, sizeof ports), n_required, inputs[0].name,
           inputs[1].name);
    st->inputs_unresolved = 1;
    return;
  }
  parse_input_list(c, st, port, in);
}

/* ---- validation context (public API for plugins' validate) --------------- */
struct myelin_validate_ctx {
  ctx *c;
  stage_def *st;
  char **in_kinds; /* per input port */
  int failed;
};

const char *myelin_validate_input_kinds(const myelin_validate_ctx *v, const char *port) {
  int i = port_index(v->st->lib.desc->inputs, port);
  return i < 0 ? NULL : v->in_kinds[i];
}

void myelin_validate_set_output_kinds(myelin_validate_ctx *v, const char *port, const char *kinds) {
  int i = port_index(v->st->lib.desc->outputs, port);
  if (i < 0) return;
  char *k = xstrdup(kinds);
  if (!k) {
    oom_at(v->c, NULL);
    return;
  }
  free(v->st->out_kinds[i]);
  v->st->out_kinds[i] = k;
}

int myelin_validate_error(myelin_validate_ctx *v, const char *param, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  int line = v->st->line, col = v->st->col;
  int idx = param ? params_find(v->st->params, param) : -1;
  if (idx >= 0 && v->st->params->v[idx].line > 0) {
    line = v->st->params->v[idx].line;
    col = v->st->params->v[idx].col;
  }
  diag_add(v->c->d, v->c->file, line, col, "stage '%s' (%s): %s%s%s%s", v->st->id, v->st->plugin,
           param ? "param '" : "", param ? param : "", param ? "': " : "", msg);
  v->failed = 1;
  return MYELIN_EINVAL;
}

static char *join_kinds(ctx *c, char *acc, const char *k) {
  if (!k) return acc;
  char *r = acc ? xasprintf("%s|%s", acc, k) : xstrdup(k);
  if (!r) return oom_at(c, NULL), acc;
  free(acc);
  return r;
}

/* Port kinds along every edge, then the plugin's validate(). */
static void check_stage(ctx *c, stage_def *st) {
  const myelin_plugin_desc *d = st->lib.desc;
  size_t nin = port_count(d->inputs);
  myelin_validate_ctx v = {c, st, calloc(nin ? nin : 1, sizeof(char *)), 0};
  if (!v.in_kinds) {
    oom_at(c, NULL);
    return;
  }
  for (size_t i = 0; i < st->n_inputs; i++) {
    input_ref *r = &st->inputs[i];
    stage_def *u = &c->p->stages[r->from];
    const char *have = u->out_kinds[r->from_port];
    const char *want = d->inputs[r->port].kinds;
    int ok = kinds_compatible(have, want);
    if (!ok)
      diag_add(c->d, c->file, r->line, r->col,
               "port kind mismatch: input '%s' of stage '%s' (%s) takes %s, but '%s.%s' emits %s",
               d->inputs[r->port].name, st->id, st->plugin, want, u->id,
               u->lib.desc->outputs[r->from_port].name, have);
    /* after a mismatch, validate() sees what the port takes, not a second error's worth of wrong kinds */
    v.in_kinds[r->port] = join_kinds(c, v.in_kinds[r->port], ok ? have : want);
  }
  /* A required port left open is one error; when the stage's inputs had
   * errors already, none. Either way validate() then sees the port as
   * connected, so it does not report the same cause again. */
  for (size_t i = 0; i < nin; i++) {
    if (v.in_kinds[i] || d->inputs[i].optional) continue;
    if (!st->inputs_unresolved)
      diag_add(c->d, c->file, st->line, st->col, "stage '%s' (%s): required input '%s' is not connected",
               st->id, st->plugin, d->inputs[i].name);
    v.in_kinds[i] = join_kinds(c, NULL, d->inputs[i].kinds);
  }
  if (d->validate && !diag_out_of_memory(c->d)) {
    int rc = d->validate(st->params, &v);
    if (rc < 0 && !v.failed)
      diag_add(c->d, c->file, st->line, st->col, "stage '%s' (%s): invalid configuration (%s)", st->id,
               st->plugin, myelin_strerror(rc));
  }
  for (size_t i = 0; i < nin; i++)
    free(v.in_kinds[i]);
  free(v.in_kinds);
}

int harness_validate(stage_def *st, char *err, size_t errlen) {
  myelin_diag d = {0};
  ctx c = {"params", NULL, &d, NULL, NULL};
  size_t nin = port_count(st->lib.desc->inputs);
  myelin_validate_ctx v = {&c, st, calloc(nin ? nin : 1, sizeof(char *)), 0};
  if (!v.in_kinds) return snprintf(err, errlen, "out of memory"), MYELIN_ENOMEM;
  int rc = 0;
  for (size_t i = 0; i < nin; i++)
    if (!(v.in_kinds[i] = xstrdup(st->lib.desc->inputs[i].kinds))) rc = MYELIN_ENOMEM;
  if (rc == 0) rc = st->lib.desc->validate(st->params, &v);
  if (rc < 0 && !v.failed)
    diag_add(&d, "params", 0, 0, "%s", rc == MYELIN_ENOMEM ? "out of memory" : myelin_strerror(rc));
  size_t off = 0;
  for (size_t i = 0; i < d.n && off < errlen; i++)
    off += (size_t)snprintf(err + off, errlen - off, "%s%s", i ? "\n" : "", d.lines[i]);
  rc = d.n ? MYELIN_EINVAL : 0;
  for (size_t i = 0; i < nin; i++)
    free(v.in_kinds[i]);
  free(v.in_kinds);
  diag_free(&d);
  return rc;
}

int pipeline_topo(const pipeline *p, size_t *order) {
  size_t n = p->n, k = 0;
  size_t *indeg = calloc(n ? n : 1, sizeof *indeg);
  int *done = calloc(n ? n : 1, sizeof *done);
  if (!indeg || !done) {
    free(indeg);
    free(done);
    return MYELIN_ENOMEM;
  }
  for (size_t i = 0; i < n; i++)
    indeg[i] = p->stages[i].n_inputs;
  for (int progress = 1; progress;) {
    progress = 0;
    for (size_t i = 0; i < n; i++) {
      if (done[i] || indeg[i]) continue;
      done[i] = 1;
      order[k++] = i;
      progress = 1;
      for (size_t j = 0; j < n; j++)
        for (size_t e = 0; e < p->stages[j].n_inputs; e++)
          if (p->stages[j].inputs[e].from == (int)i) indeg[j]--;
    }
  }
  free(indeg);
  free(done);
  return k == n ? 0 : -1;
}

/* Stages that cannot be placed in topological order are on, or downstream
 * of, a cycle. Walking upstream from any of them along unplaced stages ends
 * on a cycle; each cycle is one error, at its first stage in file order,
 * naming the stages around it in data-flow order ("a -> b -> a"). Stages
 * only downstream of a cycle get no error of their own. */
static void report_cycles(ctx *c) {
  pipeline *p = c->p;
  int *placed = calloc(p->n, sizeof *placed), *reported = calloc(p->n, sizeof *reported);
  size_t *indeg = calloc(p->n, sizeof *indeg), *path = calloc(p->n + 1, sizeof *path);
  long *pos = calloc(p->n, sizeof *pos);
  if (!placed || !reported || !indeg || !path || !pos) {
    oom_at(c, NULL);
    goto out;
  }
  for (size_t i = 0; i < p->n; i++)
    indeg[i] = p->stages[i].n_inputs;
  for (int prog = 1; prog;) {
    prog = 0;
    for (size_t i = 0; i < p->n; i++) {
      if (placed[i] || indeg[i]) continue;
      placed[i] = prog = 1;
      for (size_t j = 0; j < p->n; j++)
        for (size_t e = 0; e < p->stages[j].n_inputs; e++)
          if (p->stages[j].inputs[e].from == (int)i) indeg[j]--;
    }
  }
  for (size_t i = 0; i < p->n; i++) {
    if (placed[i] || reported[i]) continue;
    for (size_t j = 0; j < p->n; j++)
      pos[j] = -1;
    size_t len = 0, cur = i;
    while (pos[cur] < 0) { /* an unplaced stage always has an unplaced input */
      pos[cur] = (long)len;
      path[len++] = cur;
      const stage_def *st = &p->stages[cur];
      for (size_t e = 0; e < st->n_inputs; e++)
        if (!placed[st->inputs[e].from]) {
          cur = (size_t)st->inputs[e].from;
          break;
        }
    }
    size_t start = (size_t)pos[cur], first = start, fresh = 0; /* the cycle is path[start..len) */
    for (size_t k = start; k < len; k++) {
      fresh += !reported[path[k]];
      if (path[k] < path[first]) first = k;
    }
    if (!fresh) continue;
    char ring[1024];
    size_t off = 0, n = len - start;
    for (size_t k = 0; k <= n && off < sizeof ring; k++) { /* upstream walk reversed: data-flow order */
      size_t idx = start + (first - start + n - k % n) % n;
      reported[path[idx]] = 1;
      off +=
          (size_t)snprintf(ring + off, sizeof ring - off, "%s%s", k ? " -> " : "", p->stages[path[idx]].id);
    }
    const stage_def *f = &p->stages[path[first]];
    diag_add(c->d, c->file, f->line, f->col, "stage '%s' is part of a cycle of inputs: %s", f->id, ring);
  }
out:
  free(placed);
  free(reported);
  free(indeg);
  free(path);
  free(pos);
}

/* Every kind a plugin's ports declare must have a schema. */
static void check_port_kinds(ctx *c, stage_def *st, yaml_node_t *pn, const myelin_port_def *ports) {
  for (size_t i = 0; c->schemas && ports && ports[i].name; i++) {
    const char *k = ports[i].kinds ? ports[i].kinds : "";
    while (*k && strcmp(k, "*") != 0) {
      const char *e = strchr(k, '|');
      size_t n = e ? (size_t)(e - k) : strlen(k);
      char kind[64];
      snprintf(kind, sizeof kind, "%.*s", (int)n, k);
      if (!myelin_schemas_has(c->schemas, kind))
        err_at(c, pn, "plugin '%s': port '%s' declares message kind '%s', which has no schema in %s",
               st->plugin, ports[i].name, kind, schema_dir());
      k = e ? e + 1 : k + n;
    }
  }
}

static void load_plugin(ctx *c, stage_def *st, yaml_node_t *pn) {
  char path[PATH_MAX], err[2048];
  if (plugin_find(st->plugin, c->p->plugin_path, c->p->n_plugin_path, path, sizeof path, err, sizeof err)) {
    err_at(c, pn, "%s", err);
    return;
  }
  if (plugin_open(path, &st->lib, err, sizeof err)) {
    err_at(c, pn, "%s", err);
    return;
  }
  myelin_diag dd = {0};
  st->params = params_new(st->lib.desc->params, &dd, st->lib.path);
  for (size_t i = 0; i < dd.n; i++)
    err_at(c, pn, "bad plugin table: %s", dd.lines[i]);
  diag_free(&dd);
  size_t nout = port_count(st->lib.desc->outputs);
  st->out_kinds = calloc(nout ? nout : 1, sizeof(char *));
  if (!st->out_kinds) {
    oom_at(c, pn);
    return;
  }
  for (size_t i = 0; i < nout; i++)
    if (!(st->out_kinds[i] = xstrdup(st->lib.desc->outputs[i].kinds))) {
      oom_at(c, pn);
      return;
    }
  check_port_kinds(c, st, pn, st->lib.desc->inputs);
  check_port_kinds(c, st, pn, st->lib.desc->outputs);
}

static void parse_top(ctx *c, yaml_node_t *root, yaml_node_t **stages_node) {
  pipeline *p = c->p;
  for (yaml_node_pair_t *pr = root->data.mapping.pairs.start; pr < root->data.mapping.pairs.top; pr++) {
    yaml_node_t *k = node_at(c, pr->key), *v = node_at(c, pr->value);
    const char *key = scalar(k);
    if (!key) {
      err_at(c, k, "top-level keys must be plain names");
    } else if (!strcmp(key, "name")) { /* a repeated key: the last one wins */
      free(p->name);
      p->name = scalar_expanded(c, v, "name");
    } else if (!strcmp(key, "description")) {
      free(p->description);
      p->description = scalar_expanded(c, v, "description");
    } else if (!strcmp(key, "stages")) {
      *stages_node = v;
    } else if (!strcmp(key, "plugin_path")) {
      yaml_node_t *one[1] = {v};
      size_t n = 1;
      yaml_node_item_t *ids = NULL;
      if (v->type == YAML_SEQUENCE_NODE) {
        ids = v->data.sequence.items.start;
        n = (size_t)(v->data.sequence.items.top - ids);
      }
      for (size_t i = 0; i < p->n_plugin_path; i++)
        free(p->plugin_path[i]); /* a repeated key: the last wins */
      free(p->plugin_path);
      p->plugin_path = calloc(n ? n : 1, sizeof(char *));
      p->n_plugin_path = 0;
      if (!p->plugin_path) {
        oom_at(c, v);
        continue;
      }
      for (size_t i = 0; i < n; i++) {
        yaml_node_t *it = ids ? node_at(c, ids[i]) : one[0];
        char *dir = scalar_expanded(c, it, "plugin_path entry");
        if (!dir) continue;
        char *full = dir[0] == '/' ? dir : xasprintf("%s/%s", p->dir, dir);
        if (dir[0] != '/') free(dir);
        if (!full) {
          oom_at(c, it);
          continue;
        }
        p->plugin_path[p->n_plugin_path++] = full;
      }
    } else {
      static const char *const keys[] = {"name", "description", "plugin_path", "stages"};
      char mean[256];
      err_at(c, k, "unknown top-level key '%s'%s (expected name, description, plugin_path, stages)", key,
             did_you_mean(closest_of(key, keys, sizeof keys / sizeof *keys), mean, sizeof mean));
    }
  }
}

static void apply_sets(ctx *c, const set_override *sets, size_t n_sets) {
  for (size_t i = 0; i < n_sets; i++) {
    const set_override *s = &sets[i];
    char where[512];
    snprintf(where, sizeof where, "--set %s", s->arg);
    stage_def *st = NULL;
    for (size_t j = 0; j < c->p->n; j++)
      if (c->p->stages[j].id && !strcmp(c->p->stages[j].id, s->stage)) st = &c->p->stages[j];
    if (!st) {
      suggest sg;
      suggest_init(&sg, s->stage);
      for (size_t j = 0; j < c->p->n; j++)
        suggest_add(&sg, c->p->stages[j].id);
      char mean[256];
      diag_add(c->d, where, 0, 0, "no stage '%s' in %s%s", s->stage, c->file,
               did_you_mean(sg.best, mean, sizeof mean));
      continue;
    }
    if (!st->params) continue; /* plugin failed to load: already reported */
    int idx = params_find(st->params, s->param);
    if (idx < 0) {
      const char *sug = params_suggest(st->lib.desc->params, s->param);
      diag_add(c->d, where, 0, 0, "unknown param '%s' for plugin '%s'%s%s%s", s->param, st->plugin,
               sug ? "; did you mean '" : "", sug ? sug : "", sug ? "'?" : "");
      continue;
    }
    if (params_set_text(st->params, idx, s->value, c->d, where) == 0) st->params->v[idx].is_set = 1;
  }
}

static pipeline *pipeline_parse(pipeline *p, const unsigned char *text, size_t text_len,
                                const set_override *sets, size_t n_sets, myelin_diag *d);

pipeline *pipeline_load(const char *file, const set_override *sets, size_t n_sets, myelin_diag *d) {
  FILE *fp = fopen(file, "rb");
  if (!fp) {
    diag_add(d, file, 0, 0, "cannot open pipeline file: %s", strerror(errno));
    return NULL;
  }
  pipeline *p = calloc(1, sizeof *p);
  char tmp[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s", file);
  if (!p || !(p->file = xstrdup(file)) || !(p->dir = xstrdup(dirname(tmp)))) {
    diag_add(d, file, 0, 0, "out of memory");
    fclose(fp);
    pipeline_free(p);
    return NULL;
  }
  /* read at most one byte over the limit (pipes and special files too) */
  struct stat sb;
  size_t want = MAX_PIPELINE_FILE_BYTES + 1;
  if (fstat(fileno(fp), &sb) == 0 && S_ISREG(sb.st_mode) && (uint64_t)sb.st_size < want)
    want = (size_t)sb.st_size + 1;
  unsigned char *text = malloc(want);
  size_t text_len = text ? fread(text, 1, want, fp) : 0;
  int read_err = text ? ferror(fp) : 0;
  fclose(fp);
  if (!text || read_err || text_len > MAX_PIPELINE_FILE_BYTES) {
    if (!text)
      diag_add(d, file, 0, 0, "out of memory");
    else if (read_err)
      diag_add(d, file, 0, 0, "cannot read pipeline file");
    else
      diag_add(d, file, 0, 0, "pipeline file is over the limit of %zu bytes", MAX_PIPELINE_FILE_BYTES);
    free(text);
    pipeline_free(p);
    return NULL;
  }
  pipeline *out = pipeline_parse(p, text, text_len, sets, n_sets, d);
  free(text);
  return out;
}

pipeline *pipeline_load_text(const char *name, const char *dir, const char *text, const set_override *sets,
                             size_t n_sets, myelin_diag *d) {
  pipeline *p = calloc(1, sizeof *p);
  if (!p || !(p->file = xstrdup(name)) || !(p->dir = xstrdup(dir))) {
    diag_add(d, name, 0, 0, "out of memory");
    pipeline_free(p);
    return NULL;
  }
  return pipeline_parse(p, (const unsigned char *)text, strlen(text), sets, n_sets, d);
}

/* Parses text into p (file and dir set), then loads and checks it; frees p
 * and returns NULL on any error. */
static pipeline *pipeline_parse(pipeline *p, const unsigned char *text, size_t text_len,
                                const set_override *sets, size_t n_sets, myelin_diag *d) {
  const char *file = p->file;
  yaml_parser_t parser;
  yaml_document_t doc;
  yaml_parser_initialize(&parser);
  yaml_parser_set_input_string(&parser, text, text_len);
  size_t before = d->n;
  if (!yaml_parser_load(&parser, &doc)) {
    yaml_mark_t m = parser.problem_mark;
    if (parser.context)
      diag_add(d, file, (int)m.line + 1, (int)m.column + 1,
               "YAML syntax: %s %s (which started at line %d, column %d)",
               parser.problem ? parser.problem : "invalid YAML", parser.context,
               (int)parser.context_mark.line + 1, (int)parser.context_mark.column + 1);
    else
      diag_add(d, file, (int)m.line + 1, (int)m.column + 1, "YAML syntax: %s",
               parser.problem ? parser.problem : "invalid YAML");
    yaml_parser_delete(&parser);
    pipeline_free(p);
    return NULL;
  }
  yaml_parser_delete(&parser);
  char serr[512];
  ctx c = {file, &doc, d, p, myelin_schemas_load(schema_dir(), serr, sizeof serr)};
  if (!c.schemas && strstr(serr, "out of memory"))
    diag_add(d, file, 0, 0, "loading message schemas: out of memory");
  yaml_node_t *root = yaml_document_get_root_node(&doc);
  yaml_node_t *stages = NULL;
  if (!root || root->type != YAML_MAPPING_NODE) {
    diag_add(d, file, root ? LINE(root) : 1, root ? COL(root) : 1,
             "a pipeline file is a mapping with name and stages");
  } else {
    parse_top(&c, root, &stages);
    if (!stages) err_at(&c, root, "no 'stages' list");
  }
  if (stages && stages->type != YAML_SEQUENCE_NODE) {
    err_at(&c, stages, "'stages' must be a list");
    stages = NULL;
  }
  raw_stage *raw = NULL;
  if (stages) {
    p->n = (size_t)(stages->data.sequence.items.top - stages->data.sequence.items.start);
    int too_many = p->n > MAX_STAGES;
    if (too_many) {
      err_at(&c, stages, "the pipeline has %zu stages; the limit is %d", p->n, MAX_STAGES);
      p->n = 0;
    }
    p->stages = calloc(p->n ? p->n : 1, sizeof *p->stages);
    raw = calloc(p->n ? p->n : 1, sizeof *raw);
    if (!p->stages || !raw) {
      oom_at(&c, stages);
      p->n = 0;
    } else if (p->n == 0 && !too_many)
      err_at(&c, stages, "the pipeline has no stages");
    for (size_t i = 0; i < p->n; i++) {
      yaml_node_t *sn = node_at(&c, stages->data.sequence.items.start[i]);
      stage_def *st = &p->stages[i];
      st->line = LINE(sn);
      st->col = COL(sn);
      parse_stage_keys(&c, sn, &raw[i]);
      st->inputs_unresolved = raw[i].unknown_key;
      if (raw[i].id) {
        st->id = scalar_expanded(&c, raw[i].id, "id");
        for (size_t j = 0; st->id && j < i; j++)
          if (p->stages[j].id && !strcmp(p->stages[j].id, st->id))
            err_at(&c, raw[i].id, "duplicate stage id '%s' (first at line %d)", st->id, p->stages[j].line);
      }
      if (raw[i].plugin) {
        st->plugin = scalar_expanded(&c, raw[i].plugin, "plugin");
        if (st->plugin) load_plugin(&c, st, raw[i].plugin);
      }
      parse_queue(&c, st, raw[i].queue);
      if (st->params) {
        parse_params(&c, st, raw[i].params);
      }
    }
    for (size_t i = 0; i < p->n; i++)
      parse_inputs(&c, &p->stages[i], raw[i].inputs);
  }
  apply_sets(&c, sets, n_sets);
  /* required params */
  for (size_t i = 0; i < p->n; i++) {
    stage_def *st = &p->stages[i];
    for (size_t j = 0; st->params && j < st->params->n; j++)
      if (!st->params->defs[j].def && !st->params->v[j].is_set)
        diag_add(d, file, st->line, st->col, "stage '%s' (%s): required param '%s' is missing",
                 st->id ? st->id : "?", st->plugin, st->params->defs[j].name);
  }
  if (p->n) {
    size_t *order = malloc(p->n * sizeof *order);
    int trc = order ? pipeline_topo(p, order) : MYELIN_ENOMEM;
    if (trc == MYELIN_ENOMEM)
      oom_at(&c, NULL);
    else if (trc)
      report_cycles(&c);
    else
      for (size_t i = 0; i < p->n; i++) {
        stage_def *st = &p->stages[order[i]];
        int ready = st->lib.desc != NULL;
        for (size_t e = 0; ready && e < st->n_inputs; e++)
          ready = p->stages[st->inputs[e].from].lib.desc != NULL;
        if (ready && !diag_out_of_memory(d)) check_stage(&c, st);
      }
    free(order);
  }
  free(raw);
  if (c.schemas) myelin_schemas_free(c.schemas);
  yaml_document_delete(&doc);
  if (d->n > before) {
    pipeline_free(p);
    return NULL;
  }
  return p;
}

static void warn_inputs(const pipeline *p, myelin_diag *w) {
  for (size_t i = 0; i < p->n; i++) {
    const stage_def *st = &p->stages[i];
    for (size_t j = 0; st->params && j < st->params->n; j++) {
      const myelin_param_def *def = &st->params->defs[j];
      const pval *v = &st->params->v[j];
      if (def->type != MYELIN_PARAM_INPUT_PATH || !v->text || !*v->text) continue;
      char *found = myelin_input_path(v->text, p->dir);
      if (!found) {
        diag_add(w, p->file, st->line, st->col, "out of memory");
        return;
      }
      if (!io_path_found(found)) {
        int here = v->line > 0; /* else: a default, or --set */
        char where[PATH_MAX + 64] = "";
        if (v->text[0] != '/')
          snprintf(where, sizeof where, " (looked in the working directory and in %s)", p->dir);
        diag_warn(w, p->file, here ? v->line : st->line, here ? v->col : st->col,
                  "stage '%s' (%s): param '%s'%s: input '%s' matches no file yet%s", st->id, st->plugin,
                  def->name, v->is_set && !here ? " (from --set)" : "", v->text, where);
      }
      free(found);
    }
  }
}

/* A plugin that several search folders hold: the first one is loaded, the
 * others are not (a pipeline's own plugin_path comes last). One warning per
 * plugin name, at the first stage using it. */
static void warn_shadowed(const pipeline *p, myelin_diag *w) {
  char **dirs;
  size_t nd = plugin_search_dirs(p->plugin_path, p->n_plugin_path, &dirs);
  for (size_t i = 0; i < p->n; i++) {
    const stage_def *st = &p->stages[i];
    int first_use = !strchr(st->plugin, '/');
    for (size_t j = 0; first_use && j < i; j++)
      first_use = strcmp(p->stages[j].plugin, st->plugin) != 0;
    if (!first_use) continue;
    const char *loaded = NULL;
    for (size_t k = 0; k < nd; k++) {
      char path[PATH_MAX];
      snprintf(path, sizeof path, "%s/%s.so", dirs[k], st->plugin);
      if (access(path, R_OK) != 0) continue;
      if (!loaded)
        loaded = dirs[k];
      else
        diag_warn(
            w, p->file, st->line, st->col,
            "stage '%s': plugin '%s' is loaded from %s; %s/%s.so is not used (search order: the install "
            "folder, MYELIN_PLUGIN_PATH, then the file's plugin_path)",
            st->id, st->plugin, loaded, dirs[k], st->plugin);
    }
  }
  for (size_t k = 0; k < nd; k++)
    free(dirs[k]);
  free(dirs);
}

void pipeline_warnings(const pipeline *p, myelin_diag *w) {
  warn_shadowed(p, w);
  warn_inputs(p, w);
}

void pipeline_free(pipeline *p) {
  if (!p) return;
  for (size_t i = 0; i < p->n; i++) {
    stage_def *st = &p->stages[i];
    size_t nout = st->lib.desc ? port_count(st->lib.desc->outputs) : 0;
    for (size_t j = 0; st->out_kinds && j < nout; j++)
      free(st->out_kinds[j]);
    free(st->out_kinds);
    params_free(st->params);
    plugin_close(&st->lib);
    free(st->inputs);
    free(st->id);
    free(st->plugin);
  }
  for (size_t i = 0; i < p->n_plugin_path; i++)
    free(p->plugin_path[i]);
  free(p->plugin_path);
  free(p->stages);
  free(p->file);
  free(p->dir);
  free(p->name);
  free(p->description);
  free(p);
}
