/*
 * myelin/plugin.h — the plugin ABI. This header is the whole contract
 * between the runtime and a plugin.
 *
 * A plugin is a shared object exporting one function,
 *
 *     const myelin_plugin_desc *myelin_plugin_entry(void);
 *
 * returning a static descriptor. The descriptor begins with the ABI version it
 * was built against and its own size; the loader refuses a plugin whose major
 * differs from MYELIN_ABI_MAJOR or whose minor is newer than
 * MYELIN_ABI_MINOR. Nothing else is looked up by symbol.
 *
 * The descriptor declares name, version, summary, a parameter table, input
 * and output ports, and the lifecycle callbacks. The runtime parses, defaults
 * and range-checks every parameter from the table (the plugin reads typed
 * values with myelin_param_*), checks port kinds between stages, and drives
 * the lifecycle:
 *
 *   validate  main thread, before anything runs; pure (no side effects).
 *   init      main thread, in pipeline order; allocate state, open files.
 *   start     sources only (no input ports), on the stage's own thread.
 *   process   the stage's own thread, once per input message, in order.
 *   flush     the stage's own thread, once, after every input has ended
 *             (for sources: after start returned). Emit what is pending.
 *   stop      optional; the stage's own thread when the stage runs a libuv
 *             loop (see below), otherwise never: the run is being
 *             interrupted, close handles so the loop can end.
 *   fini      main thread, after every stage thread has joined. Free state.
 *             Called whenever init succeeded, even after errors.
 *
 * Ending early. A clean stop (the first SIGINT/SIGTERM) stops the sources
 * and drains the queues: every stage's flush still runs, so a sink commits
 * its file there. An error anywhere in the run (any callback failing, or
 * calling host->error at all, whatever it then returns) or a second signal
 * aborts: flush is not called any more, and fini discards what was not
 * committed. host->stopping() is 1 in fini whenever the run ended early; a
 * sink then says on stderr, with host->log, whether it kept (info) or
 * discarded (warning) its file, naming it.
 *
 * One instance is never called concurrently with itself. Different
 * instances (and different plugins) run concurrently.
 *
 * Sources: start() either does its work synchronously — emitting and
 * checking host->stopping() between messages, returning when done — or
 * registers handles on host->loop(stage) and returns 0; the runtime then runs
 * that loop on the stage thread until it has no active handles. Either way,
 * end of stream follows.
 *
 * Return values: callbacks return 0 on success or a negative MYELIN_E* code.
 * Report the reason first with host->error(stage, fmt, ...), which also
 * returns MYELIN_EINVAL so `return host->error(st, "...")` reads naturally.
 * A failing callback stops the run: exit code 1, the message prefixed with the
 * stage id and plugin name. Plugins never call exit() or abort().
 */
#ifndef MYELIN_PLUGIN_H
#define MYELIN_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "msg.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MYELIN_ABI_MAJOR 1
#define MYELIN_ABI_MINOR 4
#define MYELIN_ENTRY_SYMBOL "myelin_plugin_entry"

/* ---- parameters ---------------------------------------------------------- */
typedef enum myelin_param_type {
  MYELIN_PARAM_BOOL = 1,
  MYELIN_PARAM_INT,
  MYELIN_PARAM_FLOAT,
  MYELIN_PARAM_STRING,      /* any scalar, kept as text (plugin interprets) */
  MYELIN_PARAM_ENUM,        /* one of `choices` ("a|b|c") */
  MYELIN_PARAM_PATH,        /* a file path; "" allowed when default is "" */
  MYELIN_PARAM_INT_LIST,    /* [1, 2, 3]; a single scalar is a list of one */
  MYELIN_PARAM_FLOAT_LIST,
  MYELIN_PARAM_STRING_LIST,
  /* ---- ABI 1.2 ---- */
  MYELIN_PARAM_INPUT_PATH   /* a PATH the stage reads (file, folder or glob): `myelin validate`
                               warns when it matches nothing, resolved as myelin_input_path does */
} myelin_param_type;

typedef struct myelin_param_def {
  const char *name;
  myelin_param_type type;
  const char *def;     /* default as YAML text ("32", "[500]", "rate"); NULL = required */
  int has_range;       /* INT/FLOAT(/lists): enforce min <= value <= max */
  double min, max;
  const char *choices; /* ENUM: "asap|realtime" */
  const char *unit;    /* "s", "messages/s", ... or NULL */
  const char *doc;     /* one or more sentences for `myelin inspect` */
} myelin_param_def;

/* Parsed, defaulted, range-checked parameters of one stage. */
typedef struct myelin_params myelin_params;

int64_t myelin_param_int(const myelin_params *p, const char *name);
double myelin_param_float(const myelin_params *p, const char *name); /* INT params too */
int myelin_param_bool(const myelin_params *p, const char *name);
const char *myelin_param_str(const myelin_params *p, const char *name); /* any scalar type's text */
size_t myelin_param_len(const myelin_params *p, const char *name);      /* list length */
int64_t myelin_param_int_at(const myelin_params *p, const char *name, size_t i);
double myelin_param_float_at(const myelin_params *p, const char *name, size_t i);
const char *myelin_param_str_at(const myelin_params *p, const char *name, size_t i);
int myelin_param_is_set(const myelin_params *p, const char *name); /* given by the user */

/* ---- ports --------------------------------------------------------------- */
typedef struct myelin_port_def {
  const char *name;
  const char *kinds; /* message kinds, "spikes" or "sample|tensor|volume"; "*" = any */
  int optional;      /* inputs: may be left unconnected */
  const char *doc;
} myelin_port_def;

/* ---- validation context -------------------------------------------------- */
typedef struct myelin_validate_ctx myelin_validate_ctx;

/* Kinds arriving on an input port ("spikes", "a|b", "*"), NULL if unconnected. */
const char *myelin_validate_input_kinds(const myelin_validate_ctx *ctx, const char *port);
/* Narrow what an output port emits given the params (e.g. "tensor" vs "sample"). */
void myelin_validate_set_output_kinds(myelin_validate_ctx *ctx, const char *port, const char *kinds);
/* Report an error; `param` (or NULL for the stage) picks the YAML node to point at. */
int myelin_validate_error(myelin_validate_ctx *ctx, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- host table ---------------------------------------------------------- */
typedef struct myelin_stage myelin_stage;
struct uv_loop_s;

/* Reduction operators of host->allreduce (ABI 1.4). */
typedef enum myelin_reduce_op { MYELIN_OP_SUM = 1, MYELIN_OP_MIN, MYELIN_OP_MAX } myelin_reduce_op;

enum { MYELIN_LOG_DEBUG = 0, MYELIN_LOG_INFO = 1, MYELIN_LOG_WARN = 2, MYELIN_LOG_ERROR = 3 };

typedef void (*myelin_timer_cb)(void *state);

typedef struct myelin_host {
  uint32_t struct_size;
  /* Emit on output port `port` (index in the outputs table). Takes ownership
   * of one reference. Blocks while a downstream queue is full (backpressure).
   * Returns 0, or MYELIN_ESTOP when the run is aborting (the message is
   * dropped; return promptly). Any thread the stage runs on. */
  int (*emit)(myelin_stage *st, int port, myelin_msg *msg);
  void (*log)(myelin_stage *st, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
  /* Records the stage's error message; returns MYELIN_EINVAL. The stage
   * fails (the run aborts) even if the callback then returns 0. */
  int (*error)(myelin_stage *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
  /* 1 once the run has been asked to stop (SIGINT/SIGTERM or another stage's
   * error). Synchronous sources poll it between messages; sinks read it in
   * fini to report what they kept. Any thread. */
  int (*stopping)(myelin_stage *st);
  /* The stage's own libuv loop, run on the stage's thread. */
  struct uv_loop_s *(*loop)(myelin_stage *st);
  /* Calls cb(state) on the stage's thread after timeout_ms, then every
   * repeat_ms (0 = once). Works for sources using the loop and for
   * processing stages (between messages). Returns a timer id >= 0. */
  int (*timer_start)(myelin_stage *st, uint64_t timeout_ms, uint64_t repeat_ms, myelin_timer_cb cb);
  void (*timer_stop)(myelin_stage *st, int timer_id);
  /* Adds to a named counter, reported by `myelin run --stats`. */
  void (*counter_add)(myelin_stage *st, const char *name, int64_t delta);
  /* Memory that failure-injection builds can make fail. */
  void *(*alloc)(myelin_stage *st, size_t n);
  void (*free)(myelin_stage *st, void *p);
  /* The stage's id in the pipeline file and the pipeline file's folder. */
  const char *(*stage_id)(myelin_stage *st);
  const char *(*pipeline_dir)(myelin_stage *st);
  /* ---- ABI 1.1 ---- */
  /* The number of input messages already queued for this stage that
   * process() has not yet been called with (end-of-stream markers do not
   * count); 0 when none. A hint, never an over-count: when it says > 0,
   * process() will be called again without waiting for new input, so a
   * stage may batch its output (hold bytes back) until it returns 0.
   * Only meaningful on the stage's own thread (process/flush). Check
   * `host->struct_size > offsetof(myelin_host, pending) && host->pending`
   * before calling it: a 1.0 host does not have it. */
  size_t (*pending)(myelin_stage *st);
  /* ---- ABI 1.4: ranks ------------------------------------------------------
   * Under `mpirun -n N myelin run FILE` every rank runs the whole pipeline
   * (SPMD); a stage learns its place with rank() (0..N-1) and size() (N).
   * Without MPI, or with one rank, rank() is 0, size() is 1 and the
   * collectives below are local no-ops (gather copies), so a plugin needs no
   * #ifdef and behaves the same on a laptop.
   *
   * Collectives are over the instances of this same stage (same id) on every
   * rank: each stage has its own communicator, so concurrent stages never
   * match each other's calls. Every rank's instance must make the same
   * collective calls in the same order, each from one thread at a time.
   * Allowed in init, start, process and flush (on the thread the runtime
   * calls them on); not in validate, stop or fini, and not from a plugin's
   * own threads. They block until every rank has called; when the job is
   * aborting (an error on any rank, or a second signal) they return
   * MYELIN_ESTOP: return promptly. A clean stop (the first SIGINT/SIGTERM on
   * any rank) is not an abort: collectives keep working, so a stage can
   * still reduce in flush. Other errors: a negative MYELIN_E* after
   * host->error.
   *
   * allreduce: in place over `count` elements of `dtype` (MYELIN_F8,
   *   MYELIN_F4 or MYELIN_I8). Deterministic: the runtime combines the ranks'
   *   buffers in rank order (((r0 op r1) op r2) ...), the same on every rank
   *   and every rerun, whatever the network does.
   * gather: every rank sends `bytes` (they may differ); on `root`, *recv is
   *   set to the concatenation in rank order (free it with host->free) and
   *   recv_bytes[r] (an array of size() entries) to each rank's length; on
   *   other ranks *recv is NULL and recv_bytes is not touched (may be NULL).
   * bcast: `bytes` from `root` to every rank (every rank passes the same
   *   `bytes`; broadcast a length first when only the root knows it).
   * barrier: returns when every rank has called it. */
  int (*rank)(myelin_stage *st);
  int (*size)(myelin_stage *st);
  int (*allreduce)(myelin_stage *st, void *buf, size_t count, myelin_dtype dtype, myelin_reduce_op op);
  int (*gather)(myelin_stage *st, const void *send, size_t bytes, int root, void **recv, size_t *recv_bytes);
  int (*bcast)(myelin_stage *st, void *buf, size_t bytes, int root);
  int (*barrier)(myelin_stage *st);
} myelin_host;

/* ---- descriptor ---------------------------------------------------------- */
typedef struct myelin_plugin_desc {
  uint16_t abi_major; /* MYELIN_ABI_MAJOR */
  uint16_t abi_minor; /* MYELIN_ABI_MINOR */
  uint32_t struct_size; /* sizeof(myelin_plugin_desc) */

  const char *name;    /* unique, [a-z0-9_]+, equals the .so base name */
  const char *version; /* "1.0.0" */
  const char *summary; /* one line */
  const char *doc;     /* longer text for `myelin inspect`, or NULL */

  const myelin_param_def *params;  /* terminated by an entry with name NULL */
  const myelin_port_def *inputs;   /* terminated by name NULL; NULL = source */
  const myelin_port_def *outputs;  /* terminated by name NULL; NULL = sink */

  int (*validate)(const myelin_params *p, myelin_validate_ctx *ctx); /* may be NULL */
  int (*init)(const myelin_host *host, myelin_stage *st, const myelin_params *p, void **state);
  int (*start)(void *state);                             /* sources */
  int (*process)(void *state, int port, myelin_msg *msg); /* msg is borrowed */
  int (*flush)(void *state);                             /* may be NULL */
  void (*stop)(void *state);                             /* may be NULL */
  void (*fini)(void *state);                             /* may be NULL */
} myelin_plugin_desc;

typedef const myelin_plugin_desc *(*myelin_plugin_entry_fn)(void);

/* Declares the entry function. Use once per plugin:
 *     MYELIN_PLUGIN(my_desc) */
#define MYELIN_PLUGIN(desc)                                                         \
  __attribute__((visibility("default"))) const myelin_plugin_desc *myelin_plugin_entry(void); \
  const myelin_plugin_desc *myelin_plugin_entry(void) { return &(desc); }

#define MYELIN_DESC_HEADER                                                          \
  .abi_major = MYELIN_ABI_MAJOR, .abi_minor = MYELIN_ABI_MINOR,                     \
  .struct_size = sizeof(myelin_plugin_desc)

#ifdef __cplusplus
}
#endif
#endif
