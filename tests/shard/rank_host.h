/*
 * rank_host.h — runs one source plugin as rank r of N, in this process, for
 * the sharding tests (test-only: the runtime has no way to fake a rank).
 *
 * rh_run() loads the plugin through the runtime's loader, sets its params
 * from YAML text, and drives init → start (running the stage's libuv loop
 * when start registered handles) → fini with a host whose rank() and size()
 * return the given values. Emitted messages are collected. A source that
 * calls a collective fails the run (the sources under test must not: they
 * decide their share from rank/size alone). Running every rank of N one
 * after another and comparing the union with the 1-rank run is what mpirun
 * does in parallel (tests/shard/mpi_shard.sh).
 */
#ifndef MYELIN_TEST_RANK_HOST_H
#define MYELIN_TEST_RANK_HOST_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "internal.h"
#include "myelin/myelin.h"

typedef struct rh_out {
  myelin_msg **msgs;
  size_t n, cap;
  char error[4096];
} rh_out;

typedef struct rh_stage {
  int rank, size;
  uv_loop_t loop;
  int loop_used;
  rh_out *out;
} rh_stage;

static int rh_emit(myelin_stage *st, int port, myelin_msg *m) {
  rh_out *o = ((rh_stage *)(void *)st)->out;
  (void)port;
  if (o->n == o->cap) {
    o->cap = o->cap ? 2 * o->cap : 64;
    o->msgs = realloc(o->msgs, o->cap * sizeof *o->msgs);
  }
  o->msgs[o->n++] = m;
  return 0;
}
static void rh_log(myelin_stage *st, int level, const char *fmt, ...) {
  (void)st;
  if (level < MYELIN_LOG_WARN) return;
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}
static int rh_error(myelin_stage *st, const char *fmt, ...) {
  rh_out *o = ((rh_stage *)(void *)st)->out;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(o->error, sizeof o->error, fmt, ap);
  va_end(ap);
  return MYELIN_EINVAL;
}
static int rh_stopping(myelin_stage *st) {
  (void)st;
  return 0;
}
static struct uv_loop_s *rh_loop(myelin_stage *st) {
  rh_stage *s = (rh_stage *)(void *)st;
  s->loop_used = 1;
  return &s->loop;
}
static int rh_timer_start(myelin_stage *st, uint64_t a, uint64_t b, myelin_timer_cb cb) {
  (void)a, (void)b, (void)cb;
  return rh_error(st, "timers are not available in the test host");
}
static void rh_timer_stop(myelin_stage *st, int id) { (void)st, (void)id; }
static void rh_counter_add(myelin_stage *st, const char *name, int64_t d) { (void)st, (void)name, (void)d; }
static void *rh_alloc(myelin_stage *st, size_t n) {
  (void)st;
  return malloc(n ? n : 1);
}
static void rh_free(myelin_stage *st, void *p) {
  (void)st;
  free(p);
}
static const char *rh_stage_id(myelin_stage *st) {
  (void)st;
  return "src";
}
static const char *rh_pipeline_dir(myelin_stage *st) {
  (void)st;
  return NULL;
}
static size_t rh_pending(myelin_stage *st) {
  (void)st;
  return 0;
}
static int rh_rank(myelin_stage *st) { return ((rh_stage *)(void *)st)->rank; }
static int rh_size(myelin_stage *st) { return ((rh_stage *)(void *)st)->size; }
static int rh_allreduce(myelin_stage *st, void *b, size_t c, myelin_dtype d, myelin_reduce_op op) {
  (void)b, (void)c, (void)d, (void)op;
  return rh_error(st, "a source called allreduce");
}
static int rh_gather(myelin_stage *st, const void *s, size_t b, int r, void **rv, size_t *rb) {
  (void)s, (void)b, (void)r, (void)rv, (void)rb;
  return rh_error(st, "a source called gather");
}
static int rh_bcast(myelin_stage *st, void *b, size_t n, int r) {
  (void)b, (void)n, (void)r;
  return rh_error(st, "a source called bcast");
}
static int rh_barrier(myelin_stage *st) { return rh_error(st, "a source called barrier"); }

static const myelin_host rh_host = {
    .struct_size = sizeof(myelin_host),
    .emit = rh_emit,
    .log = rh_log,
    .error = rh_error,
    .stopping = rh_stopping,
    .loop = rh_loop,
    .timer_start = rh_timer_start,
    .timer_stop = rh_timer_stop,
    .counter_add = rh_counter_add,
    .alloc = rh_alloc,
    .free = rh_free,
    .stage_id = rh_stage_id,
    .pipeline_dir = rh_pipeline_dir,
    .pending = rh_pending,
    .rank = rh_rank,
    .size = rh_size,
    .allreduce = rh_allreduce,
    .gather = rh_gather,
    .bcast = rh_bcast,
    .barrier = rh_barrier,
};

static void rh_out_free(rh_out *o) {
  for (size_t i = 0; i < o->n; i++)
    myelin_msg_unref(o->msgs[i]);
  free(o->msgs);
  memset(o, 0, sizeof *o);
}

/* Runs `plugin` as rank `rank` of `size`; params are pairs (name, YAML
 * text) ending with NULL. Returns 0, or the failing callback's code with
 * the reason in out->error. */
static int rh_run(const char *plugin, const char *const *params, int rank, int size, rh_out *out) {
  memset(out, 0, sizeof *out);
  char path[4096], err[1024];
  plugin_lib lib;
  if (plugin_find(plugin, NULL, 0, path, sizeof path, err, sizeof err) ||
      plugin_open(path, &lib, err, sizeof err)) {
    snprintf(out->error, sizeof out->error, "load %s: %s", plugin, err);
    return MYELIN_EINVAL;
  }
  myelin_diag d = {0};
  myelin_params *p = params_new(lib.desc->params, &d, plugin);
  for (size_t i = 0; p && params[i] && params[i + 1]; i += 2) {
    int idx = params_find(p, params[i]);
    if (idx < 0)
      diag_add(&d, plugin, 0, 0, "unknown param %s", params[i]);
    else
      params_set_text(p, idx, params[i + 1], &d, plugin);
  }
  int rc = 0;
  if (!p || d.n) {
    snprintf(out->error, sizeof out->error, "params: %s", d.n ? d.lines[0] : "out of memory");
    rc = MYELIN_EINVAL;
  }
  rh_stage st = {.rank = rank, .size = size, .out = out};
  uv_loop_init(&st.loop);
  void *state = NULL;
  if (!rc) rc = lib.desc->init(&rh_host, (myelin_stage *)(void *)&st, p, &state);
  if (!rc) {
    rc = lib.desc->start(state);
    if (!rc && st.loop_used) uv_run(&st.loop, UV_RUN_DEFAULT);
    if (!rc && out->error[0]) rc = MYELIN_EINVAL;
    if (!rc && lib.desc->flush) rc = lib.desc->flush(state);
    if (lib.desc->fini) lib.desc->fini(state);
  }
  uv_run(&st.loop, UV_RUN_NOWAIT); /* close callbacks */
  uv_loop_close(&st.loop);
  params_free(p);
  diag_free(&d);
  plugin_close(&lib);
  return rc;
}

#endif
