/*
 * harness.c — one plugin instance driven by hand, for tests (harness.h).
 *
 * The harness loads the plugin through the normal search path, builds its
 * params from YAML text with the same conversion as pipeline files, runs
 * validate() with each input port assumed to carry its declared kinds, and
 * calls init. Everything then happens on the caller's thread: push() calls
 * process(), eos() calls flush(), start() runs a source to completion.
 * Emitted messages are collected per output port.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <yaml.h>

#include "cluster.h"
#include "internal.h"
#include "myelin/harness.h"

typedef struct collected {
  myelin_msg **msgs;
  size_t n, cap;
} collected;

typedef struct hcounter {
  char *name;
  int64_t value;
} hcounter;

struct myelin_harness {
  plugin_lib lib;
  myelin_params *params;
  void *state;
  int inited;
  collected *outs;
  size_t n_outs;
  char error[2048];
  uv_loop_t *loop;
  hcounter *counters;
  size_t n_counters;
  char logs[8192]; /* warnings and errors logged, one per line (truncated) */
};

static int hh_emit(myelin_stage *st, int port, myelin_msg *m) {
  myelin_harness *h = (myelin_harness *)st;
  if (port < 0 || (size_t)port >= h->n_outs) {
    myelin_msg_unref(m);
    snprintf(h->error, sizeof h->error, "emit on output port %d of %zu", port, h->n_outs);
    return MYELIN_EINVAL;
  }
  collected *c = &h->outs[port];
  if (c->n == c->cap) {
    c->cap = c->cap ? c->cap * 2 : 16;
    myelin_msg **nm = realloc(c->msgs, c->cap * sizeof *nm);
    if (!nm) {
      myelin_msg_unref(m);
      return MYELIN_ENOMEM;
    }
    c->msgs = nm;
  }
  c->msgs[c->n++] = m;
  return 0;
}

static void hh_log(myelin_stage *st, int level, const char *fmt, ...) {
  myelin_harness *h = (myelin_harness *)st;
  if (level < MYELIN_LOG_WARN && !getenv("MYELIN_DEBUG")) return;
  va_list ap;
  va_start(ap, fmt);
  char line[2048];
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  fprintf(stderr, "harness: %s\n", line);
  size_t used = strlen(h->logs);
  if (level >= MYELIN_LOG_WARN && used + 1 < sizeof h->logs)
    snprintf(h->logs + used, sizeof h->logs - used, "%s\n", line);
}

static int hh_error(myelin_stage *st, const char *fmt, ...) {
  myelin_harness *h = (myelin_harness *)st;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(h->error, sizeof h->error, fmt, ap);
  va_end(ap);
  return MYELIN_EINVAL;
}

static int hh_stopping(myelin_stage *st) {
  (void)st;
  return 0;
}

static uv_loop_t *hh_loop(myelin_stage *st) {
  myelin_harness *h = (myelin_harness *)st;
  if (!h->loop) {
    h->loop = malloc(sizeof *h->loop);
    if (!h->loop || uv_loop_init(h->loop)) {
      free(h->loop);
      h->loop = NULL;
    }
  }
  return h->loop;
}

static int hh_timer_start(myelin_stage *st, uint64_t t, uint64_t r, myelin_timer_cb cb) {
  (void)st, (void)t, (void)r, (void)cb;
  return MYELIN_EINVAL; /* timers are not simulated by the harness */
}
static void hh_timer_stop(myelin_stage *st, int id) { (void)st, (void)id; }

static void hh_counter_add(myelin_stage *st, const char *name, int64_t delta) {
  myelin_harness *h = (myelin_harness *)st;
  for (size_t i = 0; i < h->n_counters; i++)
    if (!strcmp(h->counters[i].name, name)) {
      h->counters[i].value += delta;
      return;
    }
  hcounter *nc = realloc(h->counters, (h->n_counters + 1) * sizeof *nc);
  if (!nc) return;
  h->counters = nc;
  char *nm = xstrdup(name);
  if (nm) h->counters[h->n_counters++] = (hcounter){nm, delta};
}

static void *hh_alloc(myelin_stage *st, size_t n) {
  (void)st;
  return malloc(n);
}
static void hh_free(myelin_stage *st, void *p) {
  (void)st;
  free(p);
}
static const char *hh_stage_id(myelin_stage *st) {
  (void)st;
  return "harness";
}
static const char *hh_pipeline_dir(myelin_stage *st) {
  (void)st;
  return ".";
}

/* push() hands messages over one at a time: nothing is ever queued behind
 * the one being processed, so a batching plugin sends at every message. */
static size_t hh_pending(myelin_stage *st) {
  (void)st;
  return 0;
}

/* The harness is one rank: the same single-rank semantics as a run
 * without MPI (cluster.c), errors recorded like hh_error's. */
static int hh_rank(myelin_stage *st) {
  (void)st;
  return 0;
}
static int hh_size(myelin_stage *st) {
  (void)st;
  return 1;
}
static int hh_coll(myelin_stage *st, int rc, const char *err) {
  if (rc && rc != MYELIN_ESTOP) hh_error(st, "%s", err);
  return rc;
}
static int hh_allreduce(myelin_stage *st, void *buf, size_t count, myelin_dtype dtype, myelin_reduce_op op) {
  char err[512] = "";
  return hh_coll(st, cluster_allreduce(NULL, buf, count, dtype, op, err, sizeof err), err);
}
static int hh_gather(myelin_stage *st, const void *send, size_t bytes, int root, void **recv, size_t *recv_bytes) {
  char err[512] = "";
  return hh_coll(st, cluster_gather(NULL, send, bytes, root, recv, recv_bytes, err, sizeof err), err);
}
static int hh_bcast(myelin_stage *st, void *buf, size_t bytes, int root) {
  char err[512] = "";
  return hh_coll(st, cluster_bcast(NULL, buf, bytes, root, err, sizeof err), err);
}
static int hh_barrier(myelin_stage *st) {
  char err[512] = "";
  return hh_coll(st, cluster_barrier(NULL, err, sizeof err), err);
}

static const myelin_host harness_host = {
    .struct_size = sizeof(myelin_host),
    .emit = hh_emit,
    .log = hh_log,
    .error = hh_error,
    .stopping = hh_stopping,
    .loop = hh_loop,
    .timer_start = hh_timer_start,
    .timer_stop = hh_timer_stop,
    .counter_add = hh_counter_add,
    .alloc = hh_alloc,
    .free = hh_free,
    .stage_id = hh_stage_id,
    .pipeline_dir = hh_pipeline_dir,
    .pending = hh_pending,
    .rank = hh_rank,
    .size = hh_size,
    .allreduce = hh_allreduce,
    .gather = hh_gather,
    .bcast = hh_bcast,
    .barrier = hh_barrier,
};

static int set_params(myelin_harness *h, const char *yaml_text, char *err, size_t errlen) {
  myelin_diag d = {0};
  h->params = params_new(h->lib.desc->params, &d, h->lib.path);
  if (!h->params) {
    diag_free(&d);
    snprintf(err, errlen, "out of memory");
    return MYELIN_ENOMEM;
  }
  if (yaml_text && *yaml_text) {
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml_text, strlen(yaml_text));
    if (!yaml_parser_load(&parser, &doc)) {
      diag_add(&d, "params", (int)parser.problem_mark.line + 1, (int)parser.problem_mark.column + 1,
               "YAML syntax: %s", parser.problem ? parser.problem : "?");
      yaml_parser_delete(&parser);
    } else {
      yaml_parser_delete(&parser);
      yaml_node_t *root = yaml_document_get_root_node(&doc);
      if (root && root->type == YAML_MAPPING_NODE) {
        for (yaml_node_pair_t *pr = root->data.mapping.pairs.start; pr < root->data.mapping.pairs.top; pr++) {
          yaml_node_t *k = yaml_document_get_node(&doc, pr->key);
          yaml_node_t *v = yaml_document_get_node(&doc, pr->value);
          const char *key = k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value : "?";
          int idx = params_find(h->params, key);
          if (idx < 0) {
            const char *sug = params_suggest(h->lib.desc->params, key);
            diag_add(&d, "params", (int)k->start_mark.line + 1, (int)k->start_mark.column + 1,
                     "unknown param '%s'%s%s%s", key, sug ? "; did you mean '" : "", sug ? sug : "",
                     sug ? "'?" : "");
          } else {
            params_set_node(h->params, idx, &doc, v, &d, "params");
          }
        }
      } else if (root) {
        diag_add(&d, "params", 1, 1, "params must be a mapping");
      }
      yaml_document_delete(&doc);
    }
  }
  for (size_t i = 0; i < h->params->n; i++)
    if (!h->params->defs[i].def && !h->params->v[i].is_set)
      diag_add(&d, "params", 0, 0, "required param '%s' is missing", h->params->defs[i].name);
  int rc = d.n ? MYELIN_EINVAL : 0;
  if (rc) {
    size_t off = 0;
    for (size_t i = 0; i < d.n && off < errlen; i++)
      off += (size_t)snprintf(err + off, errlen - off, "%s%s", i ? "\n" : "", d.lines[i]);
  }
  diag_free(&d);
  return rc;
}

myelin_harness *myelin_harness_new(const char *plugin, const char *params_yaml, char *err, size_t errlen) {
  char path[PATH_MAX], e[2048];
  myelin_harness *h = calloc(1, sizeof *h);
  if (!h) return NULL;
  if (plugin_find(plugin, NULL, 0, path, sizeof path, e, sizeof e) ||
      plugin_open(path, &h->lib, e, sizeof e)) {
    snprintf(err, errlen, "%s", e);
    free(h);
    return NULL;
  }
  if (set_params(h, params_yaml, err, errlen)) {
    myelin_harness_free(h);
    return NULL;
  }
  h->n_outs = port_count(h->lib.desc->outputs);
  h->outs = calloc(h->n_outs ? h->n_outs : 1, sizeof *h->outs);
  if (!h->outs) {
    myelin_harness_free(h);
    return NULL;
  }
  if (h->lib.desc->validate) {
    /* a one-stage pipeline so validate() has its usual context */
    stage_def st;
    memset(&st, 0, sizeof st);
    st.id = (char *)"harness";
    st.plugin = (char *)h->lib.desc->name;
    st.lib = h->lib;
    st.params = h->params;
    size_t nout = h->n_outs;
    st.out_kinds = calloc(nout ? nout : 1, sizeof(char *));
    int rc = st.out_kinds ? 0 : MYELIN_ENOMEM;
    for (size_t i = 0; !rc && i < nout; i++)
      if (!(st.out_kinds[i] = xstrdup(h->lib.desc->outputs[i].kinds))) rc = MYELIN_ENOMEM;
    if (rc)
      snprintf(err, errlen, "out of memory");
    else
      rc = harness_validate(&st, err, errlen);
    for (size_t i = 0; st.out_kinds && i < nout; i++)
      free(st.out_kinds[i]);
    free(st.out_kinds);
    if (rc) {
      myelin_harness_free(h);
      return NULL;
    }
  }
  int rc = h->lib.desc->init(&harness_host, (myelin_stage *)h, h->params, &h->state);
  if (rc < 0) {
    snprintf(err, errlen, "init failed: %s", h->error[0] ? h->error : myelin_strerror(rc));
    myelin_harness_free(h);
    return NULL;
  }
  h->inited = 1;
  return h;
}

int myelin_harness_start(myelin_harness *h) {
  if (!h->lib.desc->start) return 0;
  int rc = h->lib.desc->start(h->state);
  if (rc == 0 && h->loop) uv_run(h->loop, UV_RUN_DEFAULT);
  return rc;
}

int myelin_harness_push(myelin_harness *h, const char *port, myelin_msg *msg) {
  int idx = port ? port_index(h->lib.desc->inputs, port) : 0;
  if (idx < 0 || !h->lib.desc->inputs || !h->lib.desc->inputs[idx].name) {
    snprintf(h->error, sizeof h->error, "no input port '%s'", port ? port : "(default)");
    myelin_msg_unref(msg);
    return MYELIN_ENOENT;
  }
  int rc = h->lib.desc->process ? h->lib.desc->process(h->state, idx, msg) : 0;
  myelin_msg_unref(msg);
  return rc;
}

int myelin_harness_eos(myelin_harness *h) {
  int rc = h->lib.desc->flush ? h->lib.desc->flush(h->state) : 0;
  if (h->loop) uv_run(h->loop, UV_RUN_NOWAIT);
  return rc;
}

static const collected *out_of(const myelin_harness *h, const char *port) {
  int idx = port ? port_index(h->lib.desc->outputs, port) : 0;
  if (idx < 0 || (size_t)idx >= h->n_outs) return NULL;
  return &h->outs[idx];
}

size_t myelin_harness_count(const myelin_harness *h, const char *port) {
  const collected *c = out_of(h, port);
  return c ? c->n : 0;
}

myelin_msg *myelin_harness_output(const myelin_harness *h, const char *port, size_t i) {
  const collected *c = out_of(h, port);
  return (c && i < c->n) ? c->msgs[i] : NULL;
}

void myelin_harness_clear(myelin_harness *h) {
  for (size_t p = 0; p < h->n_outs; p++) {
    for (size_t i = 0; i < h->outs[p].n; i++)
      myelin_msg_unref(h->outs[p].msgs[i]);
    h->outs[p].n = 0;
  }
}

const char *myelin_harness_error(const myelin_harness *h) { return h->error; }

const char *myelin_harness_logs(const myelin_harness *h) { return h->logs; }

int64_t myelin_harness_counter(const myelin_harness *h, const char *name) {
  for (size_t i = 0; i < h->n_counters; i++)
    if (!strcmp(h->counters[i].name, name)) return h->counters[i].value;
  return 0;
}

static void close_cb(uv_handle_t *hd, void *arg) {
  (void)arg;
  if (!uv_is_closing(hd)) uv_close(hd, NULL);
}

void myelin_harness_free(myelin_harness *h) {
  if (!h) return;
  if (h->loop) { /* handles live in plugin state: close them before fini */
    uv_walk(h->loop, close_cb, NULL);
    uv_run(h->loop, UV_RUN_DEFAULT);
    uv_loop_close(h->loop);
    free(h->loop);
  }
  if (h->inited && h->lib.desc->fini) h->lib.desc->fini(h->state);
  if (h->outs) myelin_harness_clear(h);
  for (size_t p = 0; p < h->n_outs; p++)
    free(h->outs[p].msgs);
  free(h->outs);
  for (size_t i = 0; i < h->n_counters; i++)
    free(h->counters[i].name);
  free(h->counters);
  params_free(h->params);
  plugin_close(&h->lib);
  free(h);
}
