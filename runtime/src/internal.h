/*
 * internal.h — runtime internals shared by loader, params, pipeline,
 * scheduler, harness and CLI. Nothing here is visible to plugins.
 */
#ifndef MYELIN_INTERNAL_H
#define MYELIN_INTERNAL_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "myelin/plugin.h"

/* ---- diagnostics: a list of "FILE:LINE:COL: error: msg" ----------------- */
typedef struct myelin_diag {
  char **lines;
  size_t n, cap;
} myelin_diag;

void diag_add(myelin_diag *d, const char *file, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void diag_vadd(myelin_diag *d, const char *file, int line, int col, const char *fmt, va_list ap);
/* The same as "FILE:LINE:COL: warning: msg" (keep warnings in their own list). */
void diag_warn(myelin_diag *d, const char *file, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void diag_print(const myelin_diag *d, void *fp /* FILE* */);
void diag_free(myelin_diag *d);

/* ---- loader -------------------------------------------------------------- */
typedef struct plugin_lib {
  char *path;
  void *dl;
  const myelin_plugin_desc *desc;
} plugin_lib;

/* Opens path, checks the entry symbol and the ABI. err names the file. */
int plugin_open(const char *path, plugin_lib *out, char *err, size_t errlen);
void plugin_close(plugin_lib *p);
/* The folder of installed plugins (next to libmyelin: LIBDIR/myelin/plugins). */
const char *plugin_install_dir(void);
/* Search order: install dir, MYELIN_PLUGIN_PATH, then extra dirs. Writes the
 * .so path; MYELIN_ENOENT when not found (searched dirs listed in err). */
int plugin_find(const char *name, char *const *extra_dirs, size_t n_extra, char *path, size_t n, char *err,
                size_t errlen);
/* Every folder searched, in order, each once (malloc'ed list of malloc'ed
 * strings); [0] is the install folder. */
size_t plugin_search_dirs(char *const *extra_dirs, size_t n_extra, char ***dirs);

/* The folder of message schemas: MYELIN_SCHEMA_DIR, the install's
 * share/myelin/schemas, else the source tree's schemas/. */
const char *schema_dir(void);

int port_index(const myelin_port_def *ports, const char *name);
size_t port_count(const myelin_port_def *ports);
size_t param_count(const myelin_param_def *defs);
/* 1 when any kind of `have` ("a|b") is accepted by `want` ("x|y" or "*"). */
int kinds_compatible(const char *have, const char *want);

/* ---- params -------------------------------------------------------------- */
typedef struct pval {
  int is_set;
  int line, col; /* where the value came from (0 = default) */
  char *text;    /* scalar text */
  int64_t i;
  double f;
  int b;
  size_t n; /* lists */
  char **items;
  int64_t *ints;
  double *floats;
} pval;

struct myelin_params {
  const myelin_param_def *defs;
  size_t n;
  pval *v;
};

struct yaml_document_s;
struct yaml_node_s;
/* Allocates params with every default applied. Errors (a bad default in the
 * plugin's own table) go to d under `file`. */
myelin_params *params_new(const myelin_param_def *defs, myelin_diag *d, const char *file);
void params_free(myelin_params *p);
int params_find(const myelin_params *p, const char *name);
/* "int", "float list", ...: errors and `myelin inspect` name types alike. */
const char *param_type_name(myelin_param_type t);
/* Sets param `idx` from a YAML node; on error adds a diagnostic at the node. */
int params_set_node(myelin_params *p, int idx, struct yaml_document_s *doc, struct yaml_node_s *node,
                    myelin_diag *d, const char *file);
/* Sets a param from YAML text (--set VALUE, harness params). */
int params_set_text(myelin_params *p, int idx, const char *text, myelin_diag *d, const char *where);
/* The valid name closest to `name` (for "did you mean"), or NULL. */
const char *params_suggest(const myelin_param_def *defs, const char *name);
/* "Did you mean": offer each valid name to suggest_add; s.best is then the
 * one closest to `name` by edit distance (case-insensitive; a name containing
 * the other counts as close), or NULL when none is close enough to be a
 * likely typo. suggest_add returns 1 when candidate became the best (copy it
 * if it does not outlive s). */
typedef struct suggest {
  const char *name;
  const char *best;
  size_t dist;
} suggest;
void suggest_init(suggest *s, const char *name);
int suggest_add(suggest *s, const char *candidate);
/* Expands ${VAR} and ${VAR:-default}; NULL with *bad set to the variable name
 * (malloc'ed) when VAR is unset and has no default. */
char *expand_env(const char *s, char **bad);

/* ---- pipeline ------------------------------------------------------------ */
typedef struct input_ref {
  int port;      /* this stage's input port */
  int from;      /* upstream stage index */
  int from_port; /* upstream output port */
  int line, col;
} input_ref;

typedef struct stage_def {
  char *id;
  char *plugin;
  int line, col;
  plugin_lib lib;
  myelin_params *params;
  input_ref *inputs;
  size_t n_inputs;
  size_t queue_capacity;
  size_t queue_bytes;
  char **out_kinds; /* per output port, after validate() narrowed them */
  int params_line, params_col;
  int inputs_unresolved; /* an input was reported already: no "not connected" errors after it */
} stage_def;

typedef struct pipeline {
  char *file;
  char *dir;
  char *name;
  char *description;
  char **plugin_path;
  size_t n_plugin_path;
  stage_def *stages;
  size_t n;
} pipeline;

typedef struct set_override {
  const char *stage;
  const char *param;
  const char *value;
  const char *arg; /* the full --set argument, for messages */
} set_override;

/* Parses, loads plugins, checks params, ports, kinds, cycles. Every problem
 * goes to d; returns NULL when any error was found. */
pipeline *pipeline_load(const char *file, const set_override *sets, size_t n_sets, myelin_diag *d);
/* The same for pipeline text held in memory (`myelin plot` builds one): name
 * stands for the file in messages, dir for its folder. */
pipeline *pipeline_load_text(const char *name, const char *dir, const char *text, const set_override *sets,
                             size_t n_sets, myelin_diag *d);
void pipeline_free(pipeline *p);
/* Adds "FILE:LINE:COL: warning: ..." to w (`myelin validate`) for each
 * plugin found in several search folders (the later ones are not used), and
 * for each input path param (MYELIN_PARAM_INPUT_PATH) that matches nothing,
 * resolved as myelin_input_path does: a warning, as files may appear before
 * `run`. */
void pipeline_warnings(const pipeline *p, myelin_diag *w);
/* Runs a plugin's validate() for a stage outside any pipeline (the test
 * harness), each input port assumed to carry its declared kinds. */
int harness_validate(stage_def *st, char *err, size_t errlen);
/* Stage indices in topological order (upstream first). */
int pipeline_topo(const pipeline *p, size_t *order);

/* ---- run ----------------------------------------------------------------- */
/* What `--stats` prints, kept for a caller (the run report): per stage, in
 * pipeline order. run_stats_free() releases it. */
typedef struct stage_stats {
  uint64_t msgs_in, msgs_out, bytes_out;
  int has_inputs;
  size_t queue_hiwater, queue_cap;
  double busy;       /* CPU time of the stage's thread / wall time */
  double cpu;        /* CPU seconds of the stage's thread so far */
  size_t queue_fill; /* messages queued now (run_snapshot during the run) */
  size_t n_counters;
  char (*counter_names)[48];
  int64_t *counter_values;
} stage_stats;

typedef struct run_stats {
  double wall; /* seconds */
  size_t n;
  stage_stats *st;
} run_stats;
void run_stats_free(run_stats *rs);

typedef struct myelin_run myelin_run;
/* Something that watches a run while it runs (the live monitor, monitor.h). */
typedef struct run_observer {
  void *ctx;
  /* After the stages' init, before any stage starts: may call run_tap. */
  void (*attach)(void *ctx, myelin_run *run);
  /* Every stage has returned, its counters are final; the last chance to
   * call run_snapshot / msg_tap_take. exit_code: the run's. */
  void (*detach)(void *ctx, myelin_run *run, int exit_code);
} run_observer;

typedef struct run_opts {
  run_stats *collect;           /* filled at the end of the run when not NULL */
  const run_observer *observer; /* NULL: none */
  int stats;
  int quiet;
  int check_messages;
  int progress;          /* redraw a progress line on stderr (a TTY) */
  double progress_every; /* > 0: a plain progress line every this many seconds */
} run_opts;

/* Runs the pipeline to completion. Returns the CLI exit code (0, 1, 130). */
int run_pipeline(pipeline *p, const run_opts *o);
/* Ask the current run to stop: sources stop, queues drain, sinks commit
 * (exit 130). A request made before run_pipeline starts its stages makes it
 * run nothing. Called from the CLI's signal thread, never from a handler. */
void run_request_stop(void);
/* Ask the current run to abort: nothing more is processed or flushed, sinks
 * discard their unfinished files (exit 130, or 1 after an error). */
void run_request_abort(void);
/* Another rank of an MPI job (cluster.h) stops (CLUSTER_STOP), aborts
 * (CLUSTER_ABORT) or failed (CLUSTER_FAIL): the same on this rank, without
 * telling the others again. The control thread calls it. */
void run_remote_request(int what, int from_rank);
/* For an observer, between attach and detach (any thread): the counters now
 * (wall: seconds since the stages started; busy over the whole run so far;
 * queue_fill). 0, or MYELIN_ENOMEM (rs left empty). run_stats_free() it. */
int run_snapshot(myelin_run *run, run_stats *rs);
/* In attach only: keep the messages that stage's output port emits in a
 * tap (monitor.h). 0, MYELIN_EINVAL (no such port) or MYELIN_ENOMEM. */
int run_tap(myelin_run *run, size_t stage, int port);
/* Between attach and detach: the tap of that port, NULL when it has none
 * (monitor.h: msg_tap_take from one thread, msg_tap_watch, msg_tap_seen). */
typedef struct msg_tap msg_tap;
msg_tap *run_tap_get(myelin_run *run, size_t stage, int port);

/* ---- messages over borrowed bytes (msg.c) -------------------------------- */
/* Memory that messages may point into instead of owning a copy (a mapped
 * window of a stream file, reader.c). Reference-counted: the creator holds
 * one reference, each borrowing message another; release runs at zero. */
typedef struct msg_backing {
  atomic_uint refs;
  void (*release)(struct msg_backing *b);
} msg_backing;
void msg_backing_init(msg_backing *b, void (*release)(msg_backing *b)); /* refs = 1 */
void msg_backing_unref(msg_backing *b);                                 /* NULL is fine */
/* myelin_msg_decode, except that a message of borrow_min bytes or more
 * inside backing's memory is not copied: it points into buf and holds a
 * reference on backing. backing NULL: always copy. */
int msg_decode_in(const void *buf, size_t len, size_t max_bytes, msg_backing *backing, size_t borrow_min,
                  myelin_msg **out, size_t *used, char *err, size_t errlen);
/* A tensor payload aligned with a "_pad" entry: the pad's bin8 header is at
 * byte `hdr` of the message (0xc4, k, then k zero bytes) and the payload
 * starts `gap` bytes after the pad's end. A writer that re-sizes k to
 * (64 - (file offset of hdr + 2 + gap) % 64) % 64 puts the payload on a
 * multiple of 64 in the file. msg_pads stores the pads of m in byte order
 * (up to max) and returns how many there are. */
typedef struct msg_pad {
  size_t hdr, gap;
  uint8_t k;
} msg_pad;
size_t msg_pads(const myelin_msg *m, msg_pad *out, size_t max);

/* ---- shared helpers ------------------------------------------------------ */
/* 1 when path names a file or folder, or is a glob pattern with a match (io.c;
 * myelin_input_path's test). */
int io_path_found(const char *path);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Writes s[0..n) as a JSON string literal (quoted, escaped). */
void json_str(FILE *f, const char *s, size_t n);
uint64_t now_ns(void);

#endif
