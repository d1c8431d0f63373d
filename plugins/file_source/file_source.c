/*
 * file_source — replays a stream file (.mpk: concatenated msgpack messages).
 *
 * Messages come from myelin_reader (io.h), which maps a regular file: large
 * messages point into the mapping (no copy; tensors aligned in place where
 * file_sink aligned them) and keep their window mapped while they live;
 * pipes are read into a sliding buffer. Files of any size stream in bounded
 * memory, and messages are re-emitted byte for byte: a record → replay round
 * trip is identical. `pace: realtime` reproduces the
 * recorded timing by each message's `t` field (absolute deadlines on the
 * monotonic clock, so errors never accumulate); `speed` scales it. `loop`
 * restarts at the end of the file.
 *
 * A truncated or corrupt file is an error naming the byte offset of the
 * problem and how many good messages came before it. Like any error it
 * aborts the run (exit 1): sinks discard their unfinished files, so a
 * partial input never produces output that looks complete.
 *
 * `path` may be a glob: the matches, sorted by name, are replayed one after
 * another (`loop` restarts at the first). `shard: file` (under mpirun) splits
 * the sorted matches into contiguous blocks, one per rank
 * (plugins/common/shard.h), each rank replaying only its own files.
 */
#include <errno.h>
#include <glob.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/clock.h"
#include "../common/shard.h"
#include "myelin/io.h"
#include "myelin/plugin.h"

typedef struct fsrc {
  const myelin_host *host;
  myelin_stage *st;
  const char *path; /* the file being replayed */
  char **files;     /* this rank's files, in name order */
  size_t nfiles;
  int realtime, loop;
  double speed;
  FILE *f;
  myelin_reader *rd;
} fsrc;

static void fs_fini(void *state);

/* The files of `path` (resolved): itself when it names a file (or a FIFO),
 * else a glob's matches, sorted. Then this rank's block with shard: file. */
static int list_files(fsrc *s, const char *path, int shard) {
  glob_t g;
  memset(&g, 0, sizeof g);
  size_t n = 1;
  const char *const *names = &path;
  if (access(path, F_OK) != 0 && strpbrk(path, "*?[") && glob(path, 0, NULL, &g) == 0 && g.gl_pathc > 0) {
    n = g.gl_pathc;
    names = (const char *const *)g.gl_pathv;
  }
  size_t b = 0, e = n;
  if (shard) {
    int rank = s->host->rank(s->st), size = s->host->size(s->st);
    shard_range(n, rank, size, &b, &e);
    s->host->log(s->st, MYELIN_LOG_INFO, "rank %d of %d (shard: file): files %zu..%zu of %zu", rank, size, b,
                 e, n);
  }
  s->files = calloc(e > b ? e - b : 1, sizeof *s->files);
  int rc = s->files ? 0 : MYELIN_ENOMEM;
  for (size_t i = b; i < e && !rc; i++)
    if (!(s->files[s->nfiles++] = strdup(names[i]))) rc = MYELIN_ENOMEM;
  globfree(&g);
  return rc ? s->host->error(s->st, "out of memory") : 0;
}

static int open_file(fsrc *s, const char *path) {
  s->path = path;
  s->f = fopen(path, "rb");
  if (!s->f) return s->host->error(s->st, "%s: cannot open: %s", path, strerror(errno));
  s->rd = myelin_reader_new(s->f, 0);
  if (!s->rd) return s->host->error(s->st, "%s: out of memory", path);
  return 0;
}

static void close_file(fsrc *s) {
  myelin_reader_free(s->rd);
  if (s->f) fclose(s->f);
  s->rd = NULL;
  s->f = NULL;
}

static int fs_init(const myelin_host *host, myelin_stage *st, const myelin_params *p, void **state) {
  fsrc *s = calloc(1, sizeof *s);
  if (!s) return MYELIN_ENOMEM;
  s->host = host;
  s->st = st;
  s->realtime = !strcmp(myelin_param_str(p, "pace"), "realtime");
  s->speed = myelin_param_float(p, "speed");
  s->loop = myelin_param_bool(p, "loop");
  char *path =
      myelin_input_path(myelin_param_str(p, "path"), host->pipeline_dir ? host->pipeline_dir(st) : NULL);
  int rc = path ? list_files(s, path, !strcmp(myelin_param_str(p, "shard"), "file"))
                : host->error(st, "out of memory");
  free(path);
  /* the first file opens now (kept open: it may be a FIFO) and the others
   * must be readable, so a missing file fails before the run starts */
  if (!rc && s->nfiles) rc = open_file(s, s->files[0]);
  for (size_t i = 1; i < s->nfiles && !rc; i++)
    if (access(s->files[i], R_OK) != 0)
      rc = host->error(st, "%s: cannot open: %s", s->files[i], strerror(errno));
  if (rc) {
    fs_fini(s); /* fini runs only after a successful init */
    return rc;
  }
  *state = s;
  return 0;
}

typedef struct pacer {
  int have_base;
  double t_first, wall_first;
} pacer;

static int stopping(void *arg) {
  fsrc *s = arg;
  return s->host->stopping(s->st);
}

static void pace(fsrc *s, pacer *pc, const myelin_msg *m) {
  double t;
  if (!s->realtime || myelin_msg_float(m, "t", &t) != 0 || !isfinite(t)) return;
  if (!pc->have_base) {
    pc->have_base = 1;
    pc->t_first = t;
    pc->wall_first = clock_mono();
    return;
  }
  double due = pc->wall_first + (t - pc->t_first) / s->speed;
  clock_pace_until(due, stopping, s);
}

/* One pass over the file; returns 0 at a clean end, 1 when stopped, <0 on
 * error (a corrupt tail, out of memory). */
static int one_pass(fsrc *s, uint64_t *count) {
  pacer pc = {0};
  char err[512];
  myelin_reader_rewind(s->rd);
  for (;;) {
    if (s->host->stopping(s->st)) return 1;
    myelin_msg *m;
    int r = myelin_reader_next(s->rd, &m, err, sizeof err);
    if (r == 0) return 0;
    if (r == MYELIN_ENOMEM) /* not the file's fault */
      return s->host->error(s->st, "%s: %s", s->path, err);
    if (r < 0)
      return s->host->error(s->st, "%s: %s; the %" PRIu64 " messages before it were delivered", s->path, err,
                            *count);
    pace(s, &pc, m);
    (*count)++;
    if (s->host->emit(s->st, 0, m) == MYELIN_ESTOP) return 1;
  }
}

static int fs_start(void *state) {
  fsrc *s = state;
  uint64_t count = 0;
  int rc = 0;
  for (;;) {
    uint64_t before = count;
    for (size_t i = 0; i < s->nfiles && rc == 0; i++) {
      if (!s->rd) rc = open_file(s, s->files[i]);
      if (!rc) rc = one_pass(s, &count);
      if (s->nfiles > 1) close_file(s); /* one file stays open for loop (a FIFO) */
    }
    if (rc < 0) return rc; /* the run fails without committing outputs */
    if (rc != 0 || !s->loop) break;
    if (count == before) break; /* empty files would loop forever */
  }
  s->host->counter_add(s->st, "messages", (int64_t)count);
  return 0;
}

static void fs_fini(void *state) {
  fsrc *s = state;
  close_file(s);
  for (size_t i = 0; i < s->nfiles; i++)
    free(s->files[i]);
  free(s->files);
  free(s);
}

static const myelin_param_def fs_params[] = {
    {.name = "path",
     .type = MYELIN_PARAM_INPUT_PATH,
     .doc = "The .mpk stream file to replay, or a glob: its matches in name order, one after another."},
    {.name = "pace",
     .type = MYELIN_PARAM_ENUM,
     .def = "asap",
     .choices = "asap|realtime",
     .doc = "asap: as fast as downstream accepts; realtime: reproduce the recorded timing by `t`."},
    {.name = "speed",
     .type = MYELIN_PARAM_FLOAT,
     .def = "1.0",
     .has_range = 1,
     .min = 1e-6,
     .max = 1e6,
     .doc = "Realtime pacing factor: 2.0 replays twice as fast."},
    {.name = "loop",
     .type = MYELIN_PARAM_BOOL,
     .def = "false",
     .doc = "Start again at the end of the file(s)."},
    {.name = "shard",
     .type = MYELIN_PARAM_ENUM,
     .def = "none",
     .choices = "none|file",
     .doc = "Under mpirun: none = every rank replays every file; file = the glob's matches (sorted) split "
            "into contiguous blocks, one per rank (disjoint, covering, sizes differ by <= 1)."},
    {0}};

static const myelin_port_def fs_outputs[] = {
    {.name = "out", .kinds = "*", .doc = "the recorded messages, byte for byte"}, {0}};

static const myelin_plugin_desc fs_desc = {
    MYELIN_DESC_HEADER,  .name = "file_source",
    .version = "1.0.0",  .summary = "replay a recorded .mpk stream file (asap or real time)",
    .params = fs_params, .outputs = fs_outputs,
    .init = fs_init,     .start = fs_start,
    .fini = fs_fini,
};

MYELIN_PLUGIN(fs_desc)
