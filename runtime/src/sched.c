/*
 * sched.c — running a checked pipeline: threads, queues, end of stream.
 *
 * Every stage runs on its own thread. A stage owns one inbox: a bounded ring
 * of (input port, message) items shared by all its upstream edges, so order
 * is preserved per edge and fan-in interleaves in arrival order. Producers
 * block while the inbox is full (by count or by bytes): a slow stage slows
 * its producers and memory stays bounded. Consumers take items in batches
 * under one lock, and spin briefly (yielding the core) before sleeping, so a
 * busy pipeline on few cores moves many messages per context switch.
 *
 * Fan-out sends the same immutable message to every downstream inbox, each
 * holding a reference: no copy. End of stream is an item with a NULL
 * message; a stage flushes once every upstream edge has sent it, then sends
 * it on. The run ends when every stage thread has returned.
 *
 * Stopping, one rule for every sink (README, docs/plugins.md):
 *   - a clean stop (SIGINT/SIGTERM, run_request_stop) sets `stopping`:
 *     synchronous sources see host->stopping() and return; loop sources get
 *     their stop() callback on their own loop through a uv_async; everything
 *     queued drains and every stage flushes, so sinks commit (exit 130);
 *   - an error anywhere (a callback failing, or reporting through
 *     host->error even if it then returns 0: a truncated input file, a
 *     --check-messages violation) or a deliberate second signal sets
 *     `aborting` (and `stopping`): every blocked push/pop returns at once,
 *     no stage flushes any more, and each sink's fini() discards what it
 *     had not committed (exit 1, or 130 for a signal).
 * fini() runs either way; a sink calls host->stopping() there to learn that
 * the run ended early and says on stderr whether it kept or discarded its
 * file. A sink whose stream had ended and was committed before the error
 * keeps its complete file.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "cluster.h"
#include "internal.h"
#include "monitor.h"
#include "schema.h"

#define DEFAULT_CAPACITY 512
#define DEFAULT_BYTES ((size_t)128 << 20)
#define BATCH 256
#define MAX_TIMERS 8
#define MAX_COUNTERS 16

typedef struct item {
  myelin_msg *msg; /* NULL = end of stream on this edge */
  int port;
} item;

typedef struct inbox {
  pthread_mutex_t mu;
  pthread_cond_t not_empty, not_full;
  item *ring;
  size_t cap, head, count;
  size_t bytes, max_bytes;
  _Atomic size_t acount;  /* count, readable without the lock (spinning) */
  _Atomic size_t aeos;    /* end-of-stream items among them (host->pending) */
  _Atomic size_t hiwater; /* relaxed: written under mu, read by run_snapshot without it */
  int consumer_waiting, producers_waiting;
} inbox;

typedef struct edge {
  struct rstage *dst;
  int dst_port;
} edge;

typedef struct outport {
  edge *edges;
  size_t n;
} outport;

typedef struct timer {
  int active;
  uint64_t next_ns, repeat_ns;
  myelin_timer_cb cb;
  uv_timer_t *uvt;
} timer;

typedef struct counter {
  char name[48];
  _Atomic int64_t value;
} counter;

typedef struct rstage {
  struct myelin_run *run;
  stage_def *def;
  const myelin_plugin_desc *desc;
  void *state;
  int inited;
  pthread_t thread;
  int started;
  inbox in;
  outport *outs;
  size_t n_outs;
  size_t n_upstream, eos_seen;
  size_t batch_left; /* messages popped but not yet processed (host->pending) */
  uv_loop_t *loop;
  uv_async_t *stop_async;
  timer timers[MAX_TIMERS];
  counter counters[MAX_COUNTERS];
  _Atomic size_t n_counters;
  _Atomic uint64_t msgs_in, bytes_in, msgs_out, bytes_out;
  _Atomic uint64_t cpu_ns; /* CPU time of the stage's thread (--stats busy) */
  uint64_t t_start, t_end;
  char *error;
  char error_fallback[512]; /* the message when it could not be copied (out of memory) */
  _Atomic int reported;     /* host->error was called */
  _Atomic unsigned fail_no; /* order of failure in the run (1 = the root cause), 0 = none */
  pthread_mutex_t err_mu;
  cluster_comm *comm; /* this stage's communicator across ranks; NULL = one rank */
  msg_tap **taps;     /* per output port, NULL = untapped (run_tap: the live monitor) */
} rstage;

struct myelin_run {
  pipeline *p;
  run_opts o;
  rstage *st;
  size_t n;
  _Atomic int stopping, aborting, failed;
  _Atomic unsigned n_failed; /* numbers the failing stages in order */
  myelin_schemas *schemas;
  _Atomic int live_threads;
  /* Where errors and --stats go: stderr, or in an MPI job of several ranks
   * two buffers that rank 0 gathers and prints (ranks_report) */
  FILE *err_out, *stats_out;
  char *err_buf, *stats_buf;
  size_t err_len, stats_len;
  char label[24]; /* "rank R: " before each error in an MPI job, else "" */
  _Atomic int threads_ready; /* every pthread_create returned (run_snapshot reads thread clocks) */
  uint64_t t0;
};

/* ---- inbox --------------------------------------------------------------- */
static int inbox_init(inbox *q, size_t cap, size_t max_bytes) {
  memset(q, 0, sizeof *q);
  q->cap = cap;
  q->max_bytes = max_bytes;
  q->ring = calloc(cap, sizeof *q->ring);
  if (!q->ring) return MYELIN_ENOMEM;
  pthread_mutex_init(&q->mu, NULL);
  pthread_cond_init(&q->not_empty, NULL);
  pthread_cond_init(&q->not_full, NULL);
  return 0;
}

static void inbox_destroy(inbox *q) {
  for (size_t i = 0; i < q->count; i++)
    myelin_msg_unref(q->ring[(q->head + i) % q->cap].msg);
  free(q->ring);
  pthread_mutex_destroy(&q->mu);
  pthread_cond_destroy(&q->not_empty);
  pthread_cond_destroy(&q->not_full);
}

static size_t msg_len(const myelin_msg *m) {
  size_t len = 0;
  if (m) myelin_msg_bytes(m, &len);
  return len;
}

/* Blocks while full; returns MYELIN_ESTOP when the run aborts. */
static int inbox_push(struct myelin_run *run, inbox *q, myelin_msg *m, int port) {
  size_t len = msg_len(m);
  pthread_mutex_lock(&q->mu);
  while ((q->count == q->cap || (q->count > 0 && q->bytes + len > q->max_bytes)) &&
         !atomic_load(&run->aborting)) {
    q->producers_waiting++;
    pthread_cond_wait(&q->not_full, &q->mu);
    q->producers_waiting--;
  }
  if (atomic_load(&run->aborting)) {
    pthread_mutex_unlock(&q->mu);
    myelin_msg_unref(m);
    return MYELIN_ESTOP;
  }
  q->ring[(q->head + q->count) % q->cap] = (item){m, port};
  q->count++;
  q->bytes += len;
  if (!m) atomic_fetch_add_explicit(&q->aeos, 1, memory_order_release);
  atomic_store_explicit(&q->acount, q->count, memory_order_release);
  if (q->count > atomic_load_explicit(&q->hiwater, memory_order_relaxed))
    atomic_store_explicit(&q->hiwater, q->count, memory_order_relaxed);
  if (q->consumer_waiting) pthread_cond_signal(&q->not_empty);
  pthread_mutex_unlock(&q->mu);
  return 0;
}

/* Takes up to max items; waits until at least one (or the deadline, or
 * abort). Returns the number taken, or -1 on abort. */
static int inbox_pop(struct myelin_run *run, inbox *q, item *out, size_t max, uint64_t deadline_ns) {
  /* brief spin: give producers the core instead of sleeping right away */
  for (int spin = 0; spin < 64 && atomic_load_explicit(&q->acount, memory_order_acquire) == 0 &&
                     !atomic_load(&run->aborting);
       spin++)
    sched_yield();
  pthread_mutex_lock(&q->mu);
  while (q->count == 0 && !atomic_load(&run->aborting)) {
    q->consumer_waiting = 1;
    if (deadline_ns) {
      struct timespec ts;
      clock_gettime(CLOCK_MONOTONIC, &ts);
      uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
      if (now >= deadline_ns) {
        q->consumer_waiting = 0;
        pthread_mutex_unlock(&q->mu);
        return 0;
      }
      struct timespec abs;
      clock_gettime(CLOCK_REALTIME, &abs);
      uint64_t wait = deadline_ns - now;
      abs.tv_sec += (time_t)(wait / 1000000000ull);
      abs.tv_nsec += (long)(wait % 1000000000ull);
      if (abs.tv_nsec >= 1000000000L) abs.tv_sec++, abs.tv_nsec -= 1000000000L;
      pthread_cond_timedwait(&q->not_empty, &q->mu, &abs);
    } else {
      pthread_cond_wait(&q->not_empty, &q->mu);
    }
    q->consumer_waiting = 0;
  }
  if (atomic_load(&run->aborting)) {
    pthread_mutex_unlock(&q->mu);
    return -1;
  }
  size_t n = q->count < max ? q->count : max, eos = 0;
  for (size_t i = 0; i < n; i++) {
    out[i] = q->ring[q->head];
    q->bytes -= msg_len(out[i].msg);
    eos += !out[i].msg;
    q->head = (q->head + 1) % q->cap;
  }
  q->count -= n;
  atomic_store_explicit(&q->acount, q->count, memory_order_release);
  if (eos) atomic_fetch_sub_explicit(&q->aeos, eos, memory_order_release);
  if (q->producers_waiting) pthread_cond_broadcast(&q->not_full);
  pthread_mutex_unlock(&q->mu);
  return (int)n;
}

static void inbox_wake_all(inbox *q) {
  pthread_mutex_lock(&q->mu);
  pthread_cond_broadcast(&q->not_empty);
  pthread_cond_broadcast(&q->not_full);
  pthread_mutex_unlock(&q->mu);
}

/* ---- failure and stop ---------------------------------------------------- */
static void stop_async_cb(uv_async_t *a) {
  rstage *s = a->data;
  if (s->desc->stop)
    s->desc->stop(s->state);
  else
    uv_stop(s->loop);
}

static void request_stop(struct myelin_run *run) {
  atomic_store(&run->stopping, 1);
  for (size_t i = 0; i < run->n; i++)
    if (run->st[i].stop_async) uv_async_send(run->st[i].stop_async);
}

static void request_abort(struct myelin_run *run) {
  atomic_store(&run->aborting, 1);
  request_stop(run);
  for (size_t i = 0; i < run->n; i++)
    inbox_wake_all(&run->st[i].in);
}

/* Numbers the stage's failure (once), so the root cause prints first. In
 * an MPI job the other ranks learn of it and abort too. */
static void mark_failed(rstage *s) {
  if (!atomic_load(&s->fail_no)) atomic_store(&s->fail_no, atomic_fetch_add(&s->run->n_failed, 1) + 1);
  atomic_store(&s->run->failed, 1);
  request_abort(s->run);
  cluster_notify(CLUSTER_FAIL);
}

static void stage_fail(rstage *s, const char *msg) {
  pthread_mutex_lock(&s->err_mu);
  if (!s->error && !(s->error = xstrdup(msg)) && !s->error_fallback[0])
    snprintf(s->error_fallback, sizeof s->error_fallback, "%.500s", msg);
  pthread_mutex_unlock(&s->err_mu);
  mark_failed(s);
}

/* ---- host table ---------------------------------------------------------- */
static int h_emit(myelin_stage *st, int port, myelin_msg *m) {
  rstage *s = (rstage *)st;
  if (!m) return MYELIN_EINVAL;
  if (port < 0 || (size_t)port >= s->n_outs) {
    myelin_msg_unref(m);
    char buf[128];
    snprintf(buf, sizeof buf, "emit on output port %d, but the plugin has %zu outputs", port, s->n_outs);
    stage_fail(s, buf);
    return MYELIN_EINVAL;
  }
  if (atomic_load(&s->run->aborting)) {
    myelin_msg_unref(m);
    return MYELIN_ESTOP;
  }
  if (s->run->o.check_messages && s->run->schemas) {
    char err[512];
    if (myelin_schemas_check(s->run->schemas, m, err, sizeof err)) {
      char buf[700];
      snprintf(buf, sizeof buf, "--check-messages: output '%s' emitted an invalid message: %s",
               s->desc->outputs[port].name, err);
      myelin_msg_unref(m);
      stage_fail(s, buf);
      return MYELIN_EINVAL;
    }
  }
  atomic_fetch_add_explicit(&s->msgs_out, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&s->bytes_out, msg_len(m), memory_order_relaxed);
  if (s->taps && s->taps[port]) msg_tap_put(s->taps[port], m);
  outport *op = &s->outs[port];
  if (op->n == 0) {
    myelin_msg_unref(m);
    return 0;
  }
  for (size_t i = 0; i + 1 < op->n; i++) {
    if (inbox_push(s->run, &op->edges[i].dst->in, myelin_msg_ref(m), op->edges[i].dst_port)) {
      myelin_msg_unref(m);
      return MYELIN_ESTOP;
    }
  }
  return inbox_push(s->run, &op->edges[op->n - 1].dst->in, m, op->edges[op->n - 1].dst_port);
}

static const char *level_name(int level) {
  return level >= MYELIN_LOG_ERROR  ? "error"
         : level == MYELIN_LOG_WARN ? "warning"
         : level == MYELIN_LOG_INFO ? "info"
                                    : "debug";
}

static void h_log(myelin_stage *st, int level, const char *fmt, ...) {
  rstage *s = (rstage *)st;
  if (level < MYELIN_LOG_INFO && !getenv("MYELIN_DEBUG")) return;
  if (s->run->o.quiet && level < MYELIN_LOG_WARN) return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "%s: %s (%s): %s\n", level_name(level), s->def->id, s->def->plugin, msg);
}

static int h_error(myelin_stage *st, const char *fmt, ...) {
  rstage *s = (rstage *)st;
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  pthread_mutex_lock(&s->err_mu);
  free(s->error);
  if (!(s->error = xstrdup(msg))) snprintf(s->error_fallback, sizeof s->error_fallback, "%.500s", msg);
  pthread_mutex_unlock(&s->err_mu);
  atomic_store(&s->reported, 1);
  return MYELIN_EINVAL;
}

static int h_stopping(myelin_stage *st) {
  rstage *s = (rstage *)st;
  return atomic_load(&s->run->stopping) || atomic_load(&s->run->aborting);
}

static uv_loop_t *h_loop(myelin_stage *st) {
  rstage *s = (rstage *)st;
  if (!s->loop) {
    s->loop = malloc(sizeof *s->loop);
    if (!s->loop || uv_loop_init(s->loop)) {
      free(s->loop);
      s->loop = NULL;
    }
  }
  return s->loop;
}

static void uv_timer_fire(uv_timer_t *t) {
  rstage *s = t->data;
  for (int i = 0; i < MAX_TIMERS; i++)
    if (s->timers[i].uvt == t && s->timers[i].active) {
      if (!s->timers[i].repeat_ns) s->timers[i].active = 0;
      s->timers[i].cb(s->state);
    }
}

static int h_timer_start(myelin_stage *st, uint64_t timeout_ms, uint64_t repeat_ms, myelin_timer_cb cb) {
  rstage *s = (rstage *)st;
  for (int i = 0; i < MAX_TIMERS; i++) {
    timer *t = &s->timers[i];
    if (t->active) continue;
    t->active = 1;
    t->cb = cb;
    t->repeat_ns = repeat_ms * 1000000ull;
    t->next_ns = now_ns() + timeout_ms * 1000000ull;
    if (!s->desc->inputs || !s->desc->inputs[0].name) { /* sources: on the loop */
      uv_loop_t *loop = h_loop(st);
      if (!loop) return MYELIN_ENOMEM;
      if (!t->uvt) {
        t->uvt = malloc(sizeof *t->uvt);
        if (!t->uvt) return MYELIN_ENOMEM;
        uv_timer_init(loop, t->uvt);
        t->uvt->data = s;
      }
      uv_timer_start(t->uvt, uv_timer_fire, timeout_ms, repeat_ms);
    }
    return i;
  }
  return MYELIN_ERANGE;
}

static void h_timer_stop(myelin_stage *st, int id) {
  rstage *s = (rstage *)st;
  if (id < 0 || id >= MAX_TIMERS) return;
  s->timers[id].active = 0;
  if (s->timers[id].uvt) uv_timer_stop(s->timers[id].uvt);
}

static void h_counter_add(myelin_stage *st, const char *name, int64_t delta) {
  rstage *s = (rstage *)st;
  size_t n = atomic_load(&s->n_counters);
  for (size_t i = 0; i < n; i++)
    if (!strcmp(s->counters[i].name, name)) {
      atomic_fetch_add(&s->counters[i].value, delta);
      return;
    }
  if (n == MAX_COUNTERS) return;
  snprintf(s->counters[n].name, sizeof s->counters[n].name, "%s", name);
  atomic_store(&s->counters[n].value, delta);
  atomic_store(&s->n_counters, n + 1);
}

static void *h_alloc(myelin_stage *st, size_t n) {
  (void)st;
  return malloc(n);
}
static void h_free(myelin_stage *st, void *p) {
  (void)st;
  free(p);
}
static const char *h_stage_id(myelin_stage *st) { return ((rstage *)st)->def->id; }
static const char *h_pipeline_dir(myelin_stage *st) { return ((rstage *)st)->run->p->dir; }

/* Messages popped in the current batch but not processed yet, plus those
 * still queued. Only the stage's own thread pops, so between the two loads
 * below the queue only grows: reading the item count before the end-of-
 * stream count can under-count (a marker pushed in between), never
 * over-count, which is what a batching stage needs. */
static size_t h_pending(myelin_stage *st) {
  rstage *s = (rstage *)st;
  size_t queued = atomic_load_explicit(&s->in.acount, memory_order_acquire);
  size_t eos = atomic_load_explicit(&s->in.aeos, memory_order_acquire);
  return s->batch_left + (queued > eos ? queued - eos : 0);
}

/* ---- ranks (ABI 1.4): cluster.h does the work; errors become the stage's */
static int h_rank(myelin_stage *st) {
  (void)st;
  return cluster_rank();
}
static int h_size(myelin_stage *st) {
  (void)st;
  return cluster_size();
}
static int coll_result(myelin_stage *st, int rc, const char *err) {
  if (rc && rc != MYELIN_ESTOP) h_error(st, "%s", err);
  return rc;
}
static int h_allreduce(myelin_stage *st, void *buf, size_t count, myelin_dtype dtype, myelin_reduce_op op) {
  char err[512] = "";
  return coll_result(st, cluster_allreduce(((rstage *)st)->comm, buf, count, dtype, op, err, sizeof err),
                     err);
}
static int h_gather(myelin_stage *st, const void *send, size_t bytes, int root, void **recv,
                    size_t *recv_bytes) {
  char err[512] = "";
  return coll_result(
      st, cluster_gather(((rstage *)st)->comm, send, bytes, root, recv, recv_bytes, err, sizeof err), err);
}
static int h_bcast(myelin_stage *st, void *buf, size_t bytes, int root) {
  char err[512] = "";
  return coll_result(st, cluster_bcast(((rstage *)st)->comm, buf, bytes, root, err, sizeof err), err);
}
static int h_barrier(myelin_stage *st) {
  char err[512] = "";
  return coll_result(st, cluster_barrier(((rstage *)st)->comm, err, sizeof err), err);
}

static const myelin_host host_table = {
    .struct_size = sizeof(myelin_host),
    .emit = h_emit,
    .log = h_log,
    .error = h_error,
    .stopping = h_stopping,
    .loop = h_loop,
    .timer_start = h_timer_start,
    .timer_stop = h_timer_stop,
    .counter_add = h_counter_add,
    .alloc = h_alloc,
    .free = h_free,
    .stage_id = h_stage_id,
    .pipeline_dir = h_pipeline_dir,
    .pending = h_pending,
    .rank = h_rank,
    .size = h_size,
    .allreduce = h_allreduce,
    .gather = h_gather,
    .bcast = h_bcast,
    .barrier = h_barrier,
};

/* ---- stage threads ------------------------------------------------------- */
static const char *stage_error(rstage *s, int rc) {
  return s->error ? s->error : s->error_fallback[0] ? s->error_fallback : myelin_strerror(rc);
}

static void fail_rc(rstage *s, const char *what, int rc) {
  /* MYELIN_ESTOP while the run aborts is the abort reaching this stage (an
   * emit refused), a consequence of another stage's error: not an error */
  if (rc == MYELIN_ESTOP && atomic_load(&s->run->aborting) && !atomic_load(&s->reported)) return;
  char buf[2300];
  pthread_mutex_lock(&s->err_mu);
  snprintf(buf, sizeof buf, "%s failed: %s", what, stage_error(s, rc));
  pthread_mutex_unlock(&s->err_mu);
  free(s->error);
  s->error = NULL;
  stage_fail(s, buf);
}

/* A callback returned 0 but reported an error through host->error: the
 * stage fails all the same (the run aborts, sinks discard), so a plugin
 * cannot choose between the two outcomes by its return value. */
static int check_reported(rstage *s) {
  if (!atomic_load(&s->reported)) return 0;
  mark_failed(s);
  return MYELIN_EINVAL;
}

static uint64_t fire_due_timers(rstage *s) {
  uint64_t now = now_ns(), next = 0;
  for (int i = 0; i < MAX_TIMERS; i++) {
    timer *t = &s->timers[i];
    if (!t->active || t->uvt) continue;
    if (t->next_ns <= now) {
      if (t->repeat_ns)
        t->next_ns = now + t->repeat_ns;
      else
        t->active = 0;
      t->cb(s->state);
    }
    if (t->active && (!next || t->next_ns < next)) next = t->next_ns;
  }
  return next;
}

static void send_eos(rstage *s) {
  for (size_t p = 0; p < s->n_outs; p++)
    for (size_t e = 0; e < s->outs[p].n; e++)
      inbox_push(s->run, &s->outs[p].edges[e].dst->in, NULL, s->outs[p].edges[e].dst_port);
}

static int run_source(rstage *s) {
  int rc = s->desc->start ? s->desc->start(s->state) : 0;
  if (rc < 0) return fail_rc(s, "start", rc), rc;
  if ((rc = check_reported(s))) return rc;
  if (s->loop) {
    s->stop_async = malloc(sizeof *s->stop_async);
    if (s->stop_async) {
      uv_async_init(s->loop, s->stop_async, stop_async_cb);
      s->stop_async->data = s;
      uv_unref((uv_handle_t *)s->stop_async);
      if (atomic_load(&s->run->stopping)) uv_async_send(s->stop_async);
    }
    uv_run(s->loop, UV_RUN_DEFAULT);
  }
  return check_reported(s); /* from a loop callback */
}

static int run_consumer(rstage *s) {
  item batch[BATCH];
  while (s->eos_seen < s->n_upstream) {
    uint64_t deadline = fire_due_timers(s);
    int n = inbox_pop(s->run, &s->in, batch, BATCH, deadline);
    if (n < 0) return MYELIN_ESTOP;
    s->batch_left = 0;
    for (int i = 0; i < n; i++)
      s->batch_left += batch[i].msg != NULL;
    for (int i = 0; i < n; i++) {
      if (!batch[i].msg) {
        s->eos_seen++;
        continue;
      }
      s->batch_left--;
      int rc = 0;
      if (!atomic_load(&s->run->aborting)) {
        atomic_fetch_add_explicit(&s->msgs_in, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&s->bytes_in, msg_len(batch[i].msg), memory_order_relaxed);
        rc = s->desc->process ? s->desc->process(s->state, batch[i].port, batch[i].msg) : 0;
      }
      myelin_msg_unref(batch[i].msg);
      if (rc == 0) rc = check_reported(s);
      if (rc < 0) {
        for (int j = i + 1; j < n; j++)
          myelin_msg_unref(batch[j].msg);
        fail_rc(s, "process", rc);
        return rc;
      }
    }
  }
  return 0;
}

/* CPU time of the calling thread: what --stats calls busy. Time blocked on
 * a queue, in the event loop's poll or asleep (pacing) is not in it. */
static uint64_t thread_cpu_ns(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)) return 0;
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *stage_main(void *arg) {
  rstage *s = arg;
  s->t_start = now_ns();
  int is_source = s->n_upstream == 0;
  int rc = is_source ? run_source(s) : run_consumer(s);
  if (rc == 0 && !atomic_load(&s->run->aborting) && s->desc->flush) {
    rc = s->desc->flush(s->state);
    if (rc < 0)
      fail_rc(s, "flush", rc);
    else
      check_reported(s);
  }
  if (s->loop) { /* let handles closed in flush/stop finish */
    uv_run(s->loop, UV_RUN_NOWAIT);
  }
  s->t_end = now_ns();
  atomic_store(&s->cpu_ns, thread_cpu_ns());
  send_eos(s);
  atomic_fetch_sub(&s->run->live_threads, 1);
  return NULL;
}

/* ---- setup, stats, teardown --------------------------------------------- */
static void walk_close(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void free_loop(rstage *s) {
  if (!s->loop) return;
  uv_walk(s->loop, walk_close, NULL);
  uv_run(s->loop, UV_RUN_DEFAULT);
  uv_loop_close(s->loop);
  free(s->loop);
  s->loop = NULL;
  free(s->stop_async);
  for (int i = 0; i < MAX_TIMERS; i++)
    free(s->timers[i].uvt);
}

static void human_bytes(double b, char *buf, size_t n) {
  const char *u[] = {"B", "KB", "MB", "GB", "TB"};
  int i = 0;
  while (b >= 1000 && i < 4)
    b /= 1000, i++;
  snprintf(buf, n, "%.1f %s", b, u[i]);
}

static void print_stats(struct myelin_run *run, double wall) {
  FILE *f = run->stats_out;
  if (run->label[0]) fprintf(f, "rank %d:\n", cluster_rank());
  fprintf(f, "%-16s %-14s %12s %12s %10s %12s %7s %8s\n", "stage", "plugin", "msgs in", "msgs out",
          "bytes out", "msgs/s", "queue", "busy");
  for (size_t i = 0; i < run->n; i++) {
    rstage *s = &run->st[i];
    uint64_t in = atomic_load(&s->msgs_in), out = atomic_load(&s->msgs_out);
    char bo[32];
    human_bytes((double)atomic_load(&s->bytes_out), bo, sizeof bo);
    double rate = wall > 0 ? (double)(in > out ? in : out) / wall : 0;
    char q[32];
    if (s->n_upstream)
      snprintf(q, sizeof q, "%zu/%zu", atomic_load(&s->in.hiwater), s->in.cap);
    else
      snprintf(q, sizeof q, "-");
    fprintf(f, "%-16s %-14s %12" PRIu64 " %12" PRIu64 " %10s %12.0f %7s %7.1f%%\n", s->def->id,
            s->def->plugin, in, out, bo, rate, q,
            wall > 0 ? 100.0 * (double)atomic_load(&s->cpu_ns) / 1e9 / wall : 0.0);
    size_t nc = atomic_load(&s->n_counters);
    for (size_t c = 0; c < nc; c++)
      fprintf(f, "    %s.%s = %" PRId64 "\n", s->def->id, s->counters[c].name,
              atomic_load(&s->counters[c].value));
  }
  fprintf(f, "wall time: %.3f s\n", wall);
}

void run_stats_free(run_stats *rs) {
  for (size_t i = 0; rs->st && i < rs->n; i++) {
    free(rs->st[i].counter_names);
    free(rs->st[i].counter_values);
  }
  free(rs->st);
  memset(rs, 0, sizeof *rs);
}

/* CPU time of a stage's thread: final once the stage returned; before, read
 * from the running thread's clock (run_snapshot; threads_ready is cleared
 * before any thread is joined). */
static uint64_t stage_cpu_ns(rstage *s) {
  uint64_t ns = atomic_load(&s->cpu_ns);
  clockid_t cid;
  struct timespec ts;
  if (!ns && atomic_load(&s->run->threads_ready) && s->started && !pthread_getcpuclockid(s->thread, &cid) &&
      !clock_gettime(cid, &ts))
    ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
  return ns;
}

/* The numbers print_stats prints, into rs (left empty when out of memory). */
static void collect_stats(struct myelin_run *run, double wall, run_stats *rs) {
  memset(rs, 0, sizeof *rs);
  rs->wall = wall;
  if (!(rs->st = calloc(run->n ? run->n : 1, sizeof *rs->st))) return;
  rs->n = run->n;
  for (size_t i = 0; i < run->n; i++) {
    rstage *s = &run->st[i];
    stage_stats *t = &rs->st[i];
    t->msgs_in = atomic_load(&s->msgs_in);
    t->msgs_out = atomic_load(&s->msgs_out);
    t->bytes_out = atomic_load(&s->bytes_out);
    t->has_inputs = s->n_upstream > 0;
    t->queue_hiwater = atomic_load(&s->in.hiwater);
    t->queue_cap = s->in.cap;
    t->queue_fill = atomic_load_explicit(&s->in.acount, memory_order_acquire);
    t->cpu = (double)stage_cpu_ns(s) / 1e9;
    t->busy = wall > 0 ? t->cpu / wall : 0.0;
    size_t nc = atomic_load(&s->n_counters);
    t->counter_names = calloc(nc ? nc : 1, sizeof *t->counter_names);
    t->counter_values = calloc(nc ? nc : 1, sizeof *t->counter_values);
    if (!t->counter_names || !t->counter_values) continue;
    t->n_counters = nc;
    for (size_t c = 0; c < nc; c++) {
      memcpy(t->counter_names[c], s->counters[c].name, sizeof t->counter_names[c]);
      t->counter_values[c] = atomic_load(&s->counters[c].value);
    }
  }
}

int run_snapshot(myelin_run *run, run_stats *rs) {
  collect_stats(run, run->t0 ? (double)(now_ns() - run->t0) / 1e9 : 0.0, rs);
  return rs->st ? 0 : MYELIN_ENOMEM;
}

int run_tap(myelin_run *run, size_t stage, int port) {
  if (stage >= run->n || port < 0 || (size_t)port >= run->st[stage].n_outs) return MYELIN_EINVAL;
  rstage *s = &run->st[stage];
  if (!s->taps && !(s->taps = calloc(s->n_outs, sizeof *s->taps))) return MYELIN_ENOMEM;
  if (!s->taps[port] && !(s->taps[port] = msg_tap_new())) return MYELIN_ENOMEM;
  return 0;
}

msg_tap *run_tap_get(myelin_run *run, size_t stage, int port) {
  rstage *s = stage < run->n ? &run->st[stage] : NULL;
  return s && s->taps && port >= 0 && (size_t)port < s->n_outs ? s->taps[port] : NULL;
}


/* --progress: one plain line every o.progress_every seconds (any stderr,
 * TTY or not): per stage the messages so far (in for stages with inputs,
 * out for sources) and the rate since the previous line. */
static void progress_line(struct myelin_run *run, double elapsed, double since, uint64_t *prev) {
  char line[2048];
  size_t off = (size_t)snprintf(line, sizeof line, "progress %.1f s:", elapsed);
  for (size_t i = 0; i < run->n && off < sizeof line - 80; i++) {
    rstage *s = &run->st[i];
    uint64_t c = s->n_upstream ? atomic_load(&s->msgs_in) : atomic_load(&s->msgs_out);
    off += (size_t)snprintf(line + off, sizeof line - off, "%s %s %" PRIu64 " %s (%.0f/s)", i ? "," : "",
                            s->def->id, c, s->n_upstream ? "in" : "out",
                            since > 0 ? (double)(c - prev[i]) / since : 0.0);
    prev[i] = c;
  }
  fprintf(stderr, "%s\n", line);
  fflush(stderr);
}

static void draw_progress(struct myelin_run *run, double elapsed) {
  char line[512];
  size_t off = (size_t)snprintf(line, sizeof line, "\r[%6.1fs]", elapsed);
  for (size_t i = 0; i < run->n && off < sizeof line - 40; i++) {
    rstage *s = &run->st[i];
    uint64_t c = s->n_upstream ? atomic_load(&s->msgs_in) : atomic_load(&s->msgs_out);
    off += (size_t)snprintf(line + off, sizeof line - off, " %s:%" PRIu64, s->def->id, c);
  }
  fprintf(stderr, "%s\033[K", line);
  fflush(stderr);
}

/* Errors in the order the stages failed: the root cause first, then the
 * stages that failed on their own while the run aborted; an error recorded
 * without a failure (none expected) last. */
static void print_errors(struct myelin_run *run) {
  unsigned last = atomic_load(&run->n_failed);
  for (unsigned k = 1; k <= last + 1; k++)
    for (size_t i = 0; i < run->n; i++) {
      rstage *s = &run->st[i];
      unsigned no = atomic_load(&s->fail_no);
      const char *msg = s->error ? s->error : s->error_fallback;
      if ((k <= last ? no != k : no != 0) || !msg[0]) continue;
      fprintf(run->err_out, "error: %sstage '%s' (%s): %s\n", run->label, s->def->id, s->def->plugin, msg);
    }
}

/* The signal path: the CLI's signal thread calls these (and, for another
 * rank's request, the MPI control thread). A request that comes before the
 * run exists is remembered and seen by run_pipeline. */
static _Atomic(struct myelin_run *) current_run;
static _Atomic int requested;     /* 0 none, 1 stop, 2 abort */
static _Atomic int remote_failed; /* 1 + the rank whose failure stopped this one, 0 none */

static void stop_here(void) {
  int none = 0;
  atomic_compare_exchange_strong(&requested, &none, 1);
  struct myelin_run *run = atomic_load(&current_run);
  if (run) request_stop(run);
}

static void abort_here(void) {
  atomic_store(&requested, 2);
  struct myelin_run *run = atomic_load(&current_run);
  if (run) request_abort(run);
}

void run_request_stop(void) {
  stop_here();
  cluster_notify(CLUSTER_STOP);
}

void run_request_abort(void) {
  abort_here();
  cluster_notify(CLUSTER_ABORT);
}

void run_remote_request(int what, int from_rank) {
  if (what == CLUSTER_STOP) {
    if (!atomic_load(&requested))
      fprintf(stderr, "myelin: rank %d was interrupted: stopping sources and draining here too\n", from_rank);
    stop_here();
    return;
  }
  if (what == CLUSTER_FAIL) {
    int none = 0;
    atomic_compare_exchange_strong(&remote_failed, &none, from_rank + 1);
  }
  abort_here();
}

/* An MPI job of several ranks: every rank's errors and --stats go to rank
 * 0, which prints the errors of the rank that failed first (the root cause;
 * cluster_first_failure), then the other ranks' in rank order, then the
 * stats block of each rank in rank order. Every rank returns the job's exit
 * code: that of the most severe outcome over the ranks, 2 (a bad pipeline
 * or option) > 1 (an error on any rank) > 130 (stopped early) > 0. */
static int severity(int code) { return code == 0 ? 0 : code == 130 ? 1 : code == 1 ? 2 : 3; }

static int ranks_report(struct myelin_run *run, int code) {
  if (cluster_size() == 1) return code;
  for (int k = 0; k < 2; k++) {
    FILE *f = k ? run->stats_out : run->err_out;
    if (f != stderr) fclose(f);
  }
  run->err_out = run->stats_out = stderr;
  /* one record per rank: code (4 bytes), error text length (8), errors, stats */
  size_t n = 12 + run->err_len + run->stats_len;
  char *rec = malloc(n);
  if (!rec) n = 0;
  if (rec) {
    int32_t c = code;
    uint64_t el = run->err_len;
    memcpy(rec, &c, 4);
    memcpy(rec + 4, &el, 8);
    if (run->err_len) memcpy(rec + 12, run->err_buf, run->err_len);
    if (run->stats_len) memcpy(rec + 12 + run->err_len, run->stats_buf, run->stats_len);
  } else { /* out of memory: this rank's own texts, and the code as it is */
    fprintf(stderr, "%.*s%.*s", (int)run->err_len, run->err_buf ? run->err_buf : "", (int)run->stats_len,
            run->stats_buf ? run->stats_buf : "");
  }
  free(run->err_buf);
  free(run->stats_buf);
  run->err_buf = run->stats_buf = NULL;
  size_t *lens = calloc((size_t)cluster_size(), sizeof *lens);
  void *all = NULL;
  int job = code;
  if (lens && !cluster_job_gather(rec, n, &all, lens) && all) {
    int ranks = cluster_size(), first = cluster_first_failure();
    size_t *off = calloc((size_t)ranks, sizeof *off);
    for (int r = 1; off && r < ranks; r++)
      off[r] = off[r - 1] + lens[r - 1];
    for (int pass = 0; off && pass < 3; pass++) /* the first failure's errors, the others', then stats */
      for (int r = 0; r < ranks; r++) {
        const char *b = (const char *)all + off[r];
        if (lens[r] < 12) continue;
        int32_t c;
        uint64_t el;
        memcpy(&c, b, 4);
        memcpy(&el, b + 4, 8);
        if (pass == 0 && severity(c) > severity(job)) job = c;
        if (pass == 0 ? r == first : pass == 1 ? r != first : 1)
          fprintf(stderr, "%.*s", pass < 2 ? (int)el : (int)(lens[r] - 12 - el),
                  b + 12 + (pass < 2 ? 0 : el));
      }
    free(off);
  }
  free(all);
  free(lens);
  free(rec);
  cluster_job_bcast_int(&job);
  return job;
}

static int setup(struct myelin_run *run) {
  pipeline *p = run->p;
  run->n = p->n;
  run->st = calloc(p->n, sizeof *run->st);
  if (!run->st) return MYELIN_ENOMEM;
  for (size_t i = 0; i < p->n; i++) {
    rstage *s = &run->st[i];
    s->run = run;
    s->def = &p->stages[i];
    s->desc = s->def->lib.desc;
    pthread_mutex_init(&s->err_mu, NULL);
    s->n_outs = port_count(s->desc->outputs);
    s->outs = calloc(s->n_outs ? s->n_outs : 1, sizeof *s->outs);
    if (!s->outs) return MYELIN_ENOMEM;
    s->n_upstream = s->def->n_inputs;
    size_t cap = s->def->queue_capacity ? s->def->queue_capacity : DEFAULT_CAPACITY;
    size_t bytes = s->def->queue_bytes ? s->def->queue_bytes : DEFAULT_BYTES;
    if (inbox_init(&s->in, cap, bytes)) return MYELIN_ENOMEM;
  }
  for (size_t i = 0; i < p->n; i++)
    for (size_t e = 0; e < p->stages[i].n_inputs; e++) {
      input_ref *r = &p->stages[i].inputs[e];
      outport *op = &run->st[r->from].outs[r->from_port];
      edge *ne = realloc(op->edges, (op->n + 1) * sizeof *op->edges);
      if (!ne) return MYELIN_ENOMEM;
      op->edges = ne;
      op->edges[op->n++] = (edge){&run->st[i], r->port};
    }
  return 0;
}

int run_pipeline(pipeline *p, const run_opts *o) {
  struct myelin_run run_s;
  memset(&run_s, 0, sizeof run_s);
  struct myelin_run *run = &run_s;
  run->p = p;
  run->o = *o;
  run->err_out = run->stats_out = stderr;
  if (cluster_size() > 1) {
    snprintf(run->label, sizeof run->label, "rank %d: ", cluster_rank());
    FILE *e = open_memstream(&run->err_buf, &run->err_len),
         *t = open_memstream(&run->stats_buf, &run->stats_len);
    if (e) run->err_out = e; /* else: straight to stderr, still labelled */
    if (t) run->stats_out = t;
  }
  if (o->check_messages) {
    char err[512];
    run->schemas = myelin_schemas_load(schema_dir(), err, sizeof err);
    if (!run->schemas) {
      fprintf(stderr, "error: --check-messages: %s\n", err);
      return ranks_report(run, 2);
    }
  }
  int exit_code = 0;
  if (setup(run)) {
    fprintf(run->err_out, "error: %sout of memory setting up the pipeline\n", run->label);
    cluster_notify(CLUSTER_FAIL);
    exit_code = 1;
  } else {
    atomic_store(&current_run, run); /* from here another rank's stop, abort or failure reaches this run */
  }
  /* one communicator per stage, in pipeline order on every rank; all of
   * them even after an error, as the other ranks wait for each */
  for (size_t i = 0; i < p->n; i++) {
    char err[256] = "";
    cluster_comm *c = NULL;
    if (cluster_comm_new(&run->aborting, &c, err, sizeof err) && !exit_code) {
      fprintf(run->err_out, "error: %sstage '%s' (%s): cannot set up its MPI communicator: %s\n", run->label,
              p->stages[i].id, p->stages[i].plugin, err);
      cluster_notify(CLUSTER_FAIL);
      exit_code = 1;
    }
    if (run->st)
      run->st[i].comm = c;
    else
      cluster_comm_free(c);
  }
  if (exit_code) goto teardown;
  size_t *order = malloc(p->n * sizeof *order);
  if (!order || pipeline_topo(p, order)) {
    fprintf(run->err_out, "error: %sout of memory setting up the pipeline\n", run->label);
    free(order);
    exit_code = 1;
    goto teardown;
  }
  for (size_t k = 0; k < p->n; k++) {
    rstage *s = &run->st[order[k]];
    int rc = s->desc->init(&host_table, (myelin_stage *)s, s->def->params, &s->state);
    if (rc == MYELIN_ESTOP && atomic_load(&run->aborting) && !atomic_load(&s->reported)) {
      exit_code = 1; /* a collective in init saw another rank's failure: not this stage's error */
      break;
    }
    if (rc < 0) {
      fprintf(run->err_out, "error: %sstage '%s' (%s): init failed: %s\n", run->label, s->def->id,
              s->def->plugin, stage_error(s, rc));
      cluster_notify(CLUSTER_FAIL);
      exit_code = 1;
      break;
    }
    s->inited = 1;
  }
  free(order);
  if (exit_code) goto teardown;

  if (atomic_load(&requested)) { /* interrupted while loading: run nothing, keep nothing */
    atomic_store(&current_run, NULL);
    atomic_store(&run->aborting, 1);
    atomic_store(&run->stopping, 1);
    if (atomic_load(&remote_failed)) { /* another rank failed */
      exit_code = 1;
    } else {
      if (cluster_rank() == 0)
        fprintf(stderr, "myelin: interrupted before the run started: nothing was run\n");
      exit_code = 130;
    }
    goto teardown;
  }
  if (o->observer) o->observer->attach(o->observer->ctx, run);
  uint64_t t0 = run->t0 = now_ns();
  atomic_store(&run->live_threads, (int)p->n);
  for (size_t i = 0; i < p->n; i++) {
    if (pthread_create(&run->st[i].thread, NULL, stage_main, &run->st[i])) {
      atomic_fetch_sub(&run->live_threads, 1);
      stage_fail(&run->st[i], "cannot create thread");
    } else {
      run->st[i].started = 1;
    }
  }
  atomic_store(&run->threads_ready, 1);
  int drew = 0, tty = o->progress && !(o->progress_every > 0);
  uint64_t *prev = calloc(p->n, sizeof *prev), last_line = t0, last_draw = t0;
  while (atomic_load(&run->live_threads) > 0) {
    usleep(20000);
    uint64_t now = now_ns();
    if (atomic_load(&run->live_threads) == 0) break;
    if (tty && now - last_draw >= 200000000ull) {
      draw_progress(run, (double)(now - t0) / 1e9);
      drew = 1;
      last_draw = now;
    }
    if (o->progress_every > 0 && prev && (double)(now - last_line) / 1e9 >= o->progress_every) {
      progress_line(run, (double)(now - t0) / 1e9, (double)(now - last_line) / 1e9, prev);
      last_line = now;
    }
  }
  free(prev);
  atomic_store(&run->threads_ready, 0);
  for (size_t i = 0; i < p->n; i++)
    if (run->st[i].started) pthread_join(run->st[i].thread, NULL);
  atomic_store(&current_run, NULL);
  double wall = (double)(now_ns() - t0) / 1e9;
  if (drew) {
    draw_progress(run, wall);
    fputc('\n', stderr);
  }
  int any_error = 0;
  for (size_t i = 0; i < p->n; i++)
    any_error |= run->st[i].error != NULL;
  if (atomic_load(&run->failed) || any_error) {
    exit_code = 1;
    print_errors(run);
  } else if (atomic_load(&remote_failed)) {
    exit_code = 1;
  } else if (atomic_load(&run->aborting) || atomic_load(&run->stopping)) {
    exit_code = 130;
  }
  if (o->observer) o->observer->detach(o->observer->ctx, run, exit_code);
  if (o->stats) print_stats(run, wall);
  if (o->collect) collect_stats(run, wall, o->collect);

teardown:
  atomic_store(&current_run, NULL);
  for (size_t i = 0; run->st && i < run->n; i++) {
    rstage *s = &run->st[i];
    free_loop(s); /* handles live in plugin state: close them before fini */
    if (s->inited && s->desc->fini) s->desc->fini(s->state);
  }
  for (size_t i = 0; run->st && i < run->n; i++)
    cluster_comm_free(run->st[i].comm);
  for (size_t i = 0; run->st && i < run->n; i++) {
    rstage *s = &run->st[i];
    inbox_destroy(&s->in);
    for (size_t j = 0; s->outs && j < s->n_outs; j++)
      free(s->outs[j].edges);
    free(s->outs);
    for (size_t j = 0; s->taps && j < s->n_outs; j++)
      msg_tap_free(s->taps[j]);
    free(s->taps);
    free(s->error);
    pthread_mutex_destroy(&s->err_mu);
  }
  free(run->st);
  if (run->schemas) myelin_schemas_free(run->schemas);
  return ranks_report(run, exit_code);
}
