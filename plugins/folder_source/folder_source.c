/*
 * folder_source — emit each new complete file of a folder as a `tensor`
 * message holding its bytes (DESIGN.md §4: data <u1 [n], name).
 *
 * Built on the runtime's folder watch (myelin/watch.h): files are reported
 * once, complete (size stable for settle_ms, or renamed into place), in name
 * order. The watch runs on the stage's libuv loop; each report reads the
 * file straight into the message payload (one copy, from the page cache) and
 * emits it. The stream ends after `count` files, after `idle_timeout`
 * seconds without one, or when the run stops. A file over max_bytes, or one
 * that cannot be read, is an error naming it (the run exits 1).
 *
 * `shard: file` (under mpirun): every rank watches the folder and emits only
 * the files whose name hashes to it (shard.h, shard_name_owner): the set of
 * files is not known in advance, so blocks are impossible, and the hash
 * depends on nothing a rank could see differently (arrival order, timing).
 * `count` counts every file seen, so all ranks end after the same files.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#include "../common/shard.h"
#include "myelin/myelin.h"
#include "myelin/watch.h"

typedef struct fo_state {
  const myelin_host *host;
  myelin_stage *st;
  const myelin_params *p;
  char *dir; /* path, resolved (myelin_input_path) */
  myelin_watch *watch;
  uv_timer_t idle;
  int idle_active;
  int64_t count;
  uint64_t seen, seq; /* files reported (emitted, or another rank's with shard: file) */
  size_t max_bytes;
  int failed;
  int shard, rank, size; /* shard: file: emit only the names hashing to this rank */
} fo_state;

static void idle_closed(uv_handle_t *h) { (void)h; }

static void fo_end(fo_state *s) {
  if (s->watch) myelin_watch_close(s->watch);
  s->watch = NULL;
  if (s->idle_active) {
    uv_close((uv_handle_t *)&s->idle, idle_closed);
    s->idle_active = 0;
  }
}

/* Reads path into a new tensor message. */
static int emit_file(fo_state *s, const char *path, const char *name) {
  FILE *f = fopen(path, "rb");
  if (!f) return s->host->error(s->st, "%s: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fileno(f), &st) != 0) {
    fclose(f);
    return s->host->error(s->st, "%s: %s", path, strerror(errno));
  }
  size_t n = (size_t)st.st_size;
  if (n > s->max_bytes) {
    fclose(f);
    return s->host->error(s->st, "%s: %zu bytes is over max_bytes (%zu)", path, n, s->max_bytes);
  }
  myelin_builder *b = myelin_builder_new("tensor");
  if (!b) {
    fclose(f);
    return s->host->error(s->st, "out of memory");
  }
  myelin_build_uint(b, "seq", s->seq++);
  myelin_build_float(b, "t", (double)st.st_mtim.tv_sec + 1e-9 * (double)st.st_mtim.tv_nsec);
  myelin_build_str(b, "name", name);
  const int64_t shape[1] = {(int64_t)n};
  uint8_t *dst = myelin_build_tensor(b, "data", MYELIN_U1, 1, shape);
  size_t got = dst && n ? fread(dst, 1, n, f) : 0;
  fclose(f);
  if (!dst || got != n) {
    myelin_builder_free(b);
    return s->host->error(s->st, "%s: read %zu of %zu bytes", path, got, n);
  }
  myelin_msg *m = myelin_builder_finish(b);
  if (!m) return s->host->error(s->st, "out of memory");
  s->host->counter_add(s->st, "bytes", (int64_t)n);
  return s->host->emit(s->st, 0, m);
}

static void on_file(myelin_watch *w, const char *path, const char *name, void *arg) {
  fo_state *s = arg;
  (void)w;
  if (s->failed) return;
  int mine = !s->shard || shard_name_owner(name, s->size) == s->rank;
  int rc = mine ? emit_file(s, path, name) : 0;
  if (rc) {
    if (rc != MYELIN_ESTOP) s->failed = 1;
    fo_end(s);
    return;
  }
  s->seen++;
  if ((s->count > 0 && s->seen >= (uint64_t)s->count) || s->host->stopping(s->st)) {
    fo_end(s);
    return;
  }
  if (s->idle_active) uv_timer_again(&s->idle);
}

static void on_idle(uv_timer_t *t) { fo_end(t->data); }

static int fo_init(const myelin_host *host, myelin_stage *st, const myelin_params *p, void **state) {
  fo_state *s = calloc(1, sizeof *s);
  if (!s) return MYELIN_ENOMEM;
  *state = s;
  s->host = host;
  s->st = st;
  s->p = p;
  s->count = myelin_param_int(p, "count");
  s->max_bytes = (size_t)myelin_param_int(p, "max_bytes");
  s->shard = strcmp(myelin_param_str(p, "shard"), "file") == 0;
  s->rank = host->rank(st);
  s->size = host->size(st);
  struct stat sb;
  const char *dir = s->dir = myelin_input_path(myelin_param_str(p, "path"), host->pipeline_dir ? host->pipeline_dir(st) : NULL);
  errno = 0;
  if (!dir || stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
    int rc = dir ? host->error(st, "path %s: not a folder (%s)", dir, errno ? strerror(errno) : "not a directory")
                 : host->error(st, "out of memory");
    free(s->dir);
    free(s); /* fini only runs after a successful init */
    *state = NULL;
    return rc;
  }
  return 0;
}

static int fo_start(void *state) {
  fo_state *s = state;
  uv_loop_t *loop = s->host->loop(s->st);
  if (!loop) return s->host->error(s->st, "no event loop");
  myelin_watch_opts o = {
      .dir = s->dir,
      .pattern = myelin_param_str(s->p, "pattern"),
      .settle_ms = (unsigned)myelin_param_int(s->p, "settle_ms"),
      .skip_existing = !myelin_param_bool(s->p, "existing"),
      .poll_only = myelin_param_bool(s->p, "poll_only"),
  };
  char err[1024];
  if (myelin_watch_start(loop, &o, on_file, s, &s->watch, err, sizeof err))
    return s->host->error(s->st, "%s", err);
  double idle = myelin_param_float(s->p, "idle_timeout");
  if (idle > 0) {
    uint64_t ms = (uint64_t)(idle * 1000.0);
    uv_timer_init(loop, &s->idle);
    s->idle.data = s;
    uv_timer_start(&s->idle, on_idle, ms, ms);
    s->idle_active = 1;
  }
  return 0;
}

static void fo_stop(void *state) { fo_end(state); }

static void fo_fini(void *state) {
  fo_state *s = state;
  if (s) free(s->dir);
  free(s);
}

static const myelin_param_def fo_params[] = {
    {.name = "path", .type = MYELIN_PARAM_INPUT_PATH, .doc = "The folder to watch (must exist)."},
    {.name = "pattern", .type = MYELIN_PARAM_STRING, .def = "'*'",
     .doc = "fnmatch glob on file names; names starting with '.' are always ignored (write there, then rename)."},
    {.name = "settle_ms", .type = MYELIN_PARAM_INT, .def = "500", .has_range = 1, .min = 1, .max = 3600000,
     .unit = "ms", .doc = "A file is complete once its size and mtime are unchanged this long (or it was renamed in)."},
    {.name = "existing", .type = MYELIN_PARAM_BOOL, .def = "true", .doc = "Also emit files already there at start."},
    {.name = "count", .type = MYELIN_PARAM_INT, .def = "0", .has_range = 1, .min = 0, .max = 1e15, .unit = "files",
     .doc = "End the stream after this many files (0 = no limit)."},
    {.name = "idle_timeout", .type = MYELIN_PARAM_FLOAT, .def = "0", .has_range = 1, .min = 0, .max = 1e9,
     .unit = "s", .doc = "End the stream after this long without a new file (0 = never)."},
    {.name = "max_bytes", .type = MYELIN_PARAM_INT, .def = "268435456", .has_range = 1, .min = 0, .max = 4e18,
     .unit = "bytes", .doc = "Largest file accepted; a bigger one is an error naming it."},
    {.name = "poll_only", .type = MYELIN_PARAM_BOOL, .def = "false",
     .doc = "Do not use change notification, only polling (network filesystems)."},
    {.name = "shard", .type = MYELIN_PARAM_ENUM, .def = "none", .choices = "none|file",
     .doc = "Under mpirun: none = every rank emits every file; file = each file on one rank, chosen by a hash "
            "of its name (disjoint and covering whatever the arrival order; balanced on average). `count` "
            "counts every rank's files."},
    {0}};

static const myelin_port_def fo_outputs[] = {
    {.name = "out", .kinds = "tensor", .doc = "{data <u1 [bytes], name, t = the file's mtime, seq}"}, {0}};

static const myelin_plugin_desc fo_desc = {
    MYELIN_DESC_HEADER,
    .name = "folder_source",
    .version = "1.0.0",
    .summary = "emit each new complete file of a folder once, in name order, as a byte tensor",
    .doc = "Complete = size stable for settle_ms or renamed into place. Delivery: each file name once per run "
           "(a restarted pipeline with existing: true sees the folder's files again).",
    .params = fo_params,
    .outputs = fo_outputs,
    .init = fo_init,
    .start = fo_start,
    .stop = fo_stop,
    .fini = fo_fini,
};

MYELIN_PLUGIN(fo_desc)
