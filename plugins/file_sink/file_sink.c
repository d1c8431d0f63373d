/*
 * file_sink — records every message into a stream file (.mpk).
 *
 * The file is written under a temporary name in the destination folder
 * (created in init, so an unwritable folder is reported before any work
 * starts) and renamed onto `path` only at end of stream: a file under the
 * final name is always complete. An interrupt drains the queues first, so
 * every message the sink accepted is in the file. After an error anywhere
 * in the run (or a second interrupt) the stream never ends here: flush is
 * not called and fini removes the temporary file. Whenever the run stopped
 * early, fini says on stderr which of the two happened, naming the file.
 *
 * Bytes go through myelin_writer (io.h): a large message is written from its
 * own bytes with writev (no staging copy), small ones are gathered, and each
 * padded tensor payload is placed on a multiple of 64 bytes of the file, so
 * file_source maps it and hands it out aligned, in place.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/ranks.h"
#include "myelin/io.h"
#include "myelin/plugin.h"

typedef struct fsink {
  const myelin_host *host;
  myelin_stage *st;
  myelin_atomic_file af;
  myelin_writer *w;
  const char *path;
  int fsync_on, open, committed;
  int handed_over; /* several ranks: another rank wrote the job's file */
  int64_t n, bytes;
} fsink;

static int fk_init(const myelin_host *host, myelin_stage *st, const myelin_params *p, void **state) {
  fsink *s = calloc(1, sizeof *s);
  if (!s) return MYELIN_ENOMEM;
  s->host = host;
  s->st = st;
  s->fsync_on = myelin_param_bool(p, "fsync");
  *state = s;
  char err[512];
  const char *path = s->path = myelin_param_str(p, "path");
  if (myelin_mkdirs_for(path, err, sizeof err) || myelin_atomic_open(&s->af, path, err, sizeof err)) {
    free(s); /* fini runs only after a successful init */
    *state = NULL;
    return host->error(st, "%s", err);
  }
  s->open = 1;
  s->w = myelin_writer_new(fileno(s->af.fp));
  if (!s->w) {
    myelin_atomic_abort(&s->af);
    free(s);
    *state = NULL;
    return host->error(st, "%s: out of memory", path);
  }
  return 0;
}

static int fk_process(void *state, int port, myelin_msg *m) {
  (void)port;
  fsink *s = state;
  char err[256];
  if (myelin_writer_put(s->w, m, err, sizeof err))
    return s->host->error(s->st, "%s: %s", s->af.tmp_path, err);
  s->n++;
  return 0;
}

/* Several ranks (MPI) writing to one path: one file per job. Every rank learns every rank's
 * count; when only one rank received messages, that rank commits its file;
 * when several did, their streams are gathered to rank 0, which appends
 * them after its own in rank order; rank 0 also writes the (empty) file
 * when no rank received anything, as one rank does. Every other rank
 * removes its temporary file: a rank that received nothing, or whose
 * messages went to rank 0, leaves no file. Returns 1 when this rank keeps
 * the file, 0 when it drops it, or a negative error. */
static int fk_ranks(fsink *s) {
  const myelin_host *h = s->host;
  const int me = h->rank(s->st), N = h->size(s->st);
  /* A path that differs by rank (${OMPI_COMM_WORLD_RANK} in it) is a file
   * per rank: each rank keeps its own. */
  int same = 0, rc = ranks_same_string(h, s->st, s->path, &same);
  if (rc) return rc;
  if (!same) return 1;
  int64_t *cnt = calloc((size_t)N, sizeof *cnt);
  if (!cnt) return h->error(s->st, "out of memory");
  cnt[me] = s->n;
  rc = h->allreduce(s->st, cnt, (size_t)N, MYELIN_I8, MYELIN_OP_SUM);
  int holders = 0, holder = 0;
  for (int r = 0; r < N; r++)
    if (cnt[r] > 0) holders++, holder = r;
  free(cnt);
  if (rc) return rc;
  if (holders <= 1) return me == holder;
  uint8_t *mine = NULL, *all = NULL;
  size_t len = 0, *sizes = NULL;
  char err[512];
  if (me != 0 && s->n > 0 && myelin_read_file(s->af.tmp_path, 0, &mine, &len, err, sizeof err))
    return h->error(s->st, "%s", err);
  rc = ranks_gather(h, s->st, mine, me == 0 ? 0 : len, &all, &sizes);
  free(mine);
  if (rc == 0 && me == 0) {
    size_t off = 0, total = 0;
    for (int r = 0; r < N; r++) total += sizes[r];
    while (rc == 0 && off < total) {
      myelin_msg *m = NULL;
      size_t used = 0;
      if (myelin_msg_decode(all + off, total - off, 0, &m, &used, err, sizeof err) ||
          myelin_writer_put(s->w, m, err, sizeof err))
        rc = h->error(s->st, "%s: appending the other ranks' messages: %s", s->path, err);
      myelin_msg_unref(m);
      off += used;
      s->n += rc == 0;
    }
    if (rc == 0 && myelin_writer_flush(s->w, err, sizeof err)) rc = h->error(s->st, "%s: %s", s->af.tmp_path, err);
  }
  if (all) h->free(s->st, all);
  free(sizes);
  return rc ? rc : me == 0;
}

static int fk_flush(void *state) {
  fsink *s = state;
  char err[512];
  if (myelin_writer_flush(s->w, err, sizeof err)) return s->host->error(s->st, "%s: %s", s->af.tmp_path, err);
  if (s->host->size(s->st) > 1) {
    int keep = fk_ranks(s);
    if (keep < 0) return keep;
    if (!keep) {
      s->open = 0;
      s->handed_over = 1;
      myelin_atomic_abort(&s->af);
      return 0;
    }
  }
  s->bytes = (int64_t)myelin_writer_offset(s->w);
  s->open = 0;
  if (myelin_atomic_commit(&s->af, s->fsync_on, err, sizeof err)) return s->host->error(s->st, "%s", err);
  s->committed = 1;
  s->host->counter_add(s->st, "messages", s->n);
  s->host->counter_add(s->st, "bytes", s->bytes);
  return 0;
}

static void fk_fini(void *state) {
  fsink *s = state;
  if (!s->committed && !s->handed_over) /* handed over: the file is another rank's */
    s->host->log(s->st, MYELIN_LOG_WARN,
                 "discarded %s: the run stopped on an error or abort (%lld messages not kept)", s->path,
                 (long long)s->n);
  else if (s->host->stopping(s->st))
    s->host->log(s->st, MYELIN_LOG_INFO, "kept %s: complete, %lld messages", s->path, (long long)s->n);
  if (s->open) myelin_atomic_abort(&s->af);
  myelin_writer_free(s->w);
  free(s);
}

static const myelin_param_def fk_params[] = {
    {.name = "path",
     .type = MYELIN_PARAM_PATH,
     .doc = "Destination .mpk file; written to a temporary name and renamed when complete."},
    {.name = "fsync",
     .type = MYELIN_PARAM_BOOL,
     .def = "false",
     .doc = "fsync the file before renaming it into place."},
    {0}};

static const myelin_port_def fk_inputs[] = {{.name = "in", .kinds = "*", .doc = "any message"}, {0}};

static const myelin_plugin_desc fk_desc = {
    MYELIN_DESC_HEADER,  .name = "file_sink",
    .version = "1.1.0",  .summary = "record messages into an .mpk stream file (atomic rename when complete)",
    .params = fk_params, .inputs = fk_inputs,
    .init = fk_init,     .process = fk_process,
    .flush = fk_flush,   .fini = fk_fini,
};

MYELIN_PLUGIN(fk_desc)
