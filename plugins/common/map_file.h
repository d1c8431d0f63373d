/*
 * map_file.h — one complete output file per message, shared by the image
 * sinks (nifti_sink, gifti_sink, cifti_sink); header-only.
 *
 * The sink keeps a map_file_out: its `path` template, `fsync`, `field` (the
 * tensor of a message it writes: `data`, or another [..., V] tensor such
 * as info_content's `regional`), the count of
 * files written and the set of paths this run has written (a second message
 * that expands to the same path is an error naming both, never a silent
 * overwrite). Each file goes through myelin_atomic_open/commit, so a
 * half-written file never appears under its name.
 *
 *   map_file_open(o, path, msg_no, "{subject} {task} ...", &f)   claim + open
 *   ...write f.fp...
 *   map_file_close(o, &f, path, write_failed, err)                commit or abort
 *   map_file_ranks(o)   at end of stream (flush): with several MPI ranks, a
 *       path two ranks wrote is an error naming both (ranks.h)
 */
#ifndef MYELIN_PLUGIN_MAP_FILE_H
#define MYELIN_PLUGIN_MAP_FILE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "myelin/myelin.h"
#include "ranks.h"

typedef struct {
  const myelin_host *host;
  myelin_stage *st;
  char *path_tmpl; /* the `path` param */
  int do_fsync;    /* the `fsync` param */
  char *field;     /* the `field` param: the tensor written */
  uint64_t files;  /* files committed */
  myelin_pathset written;
} map_file_out;

/* Reads the `path` and `fsync` params. A path without placeholders has its
 * folder made and checked for writing now, so a typo fails at start-up.
 * Returns 0, MYELIN_ENOMEM, or host->error's code; o holds nothing to free
 * unless it returns 0. */
static inline int map_file_init(map_file_out *o, const myelin_host *host, myelin_stage *st,
                                const myelin_params *p) {
  memset(o, 0, sizeof *o);
  o->host = host;
  o->st = st;
  if (!(o->path_tmpl = strdup(myelin_param_str(p, "path")))) return MYELIN_ENOMEM;
  if (!(o->field = strdup(myelin_param_str(p, "field")))) {
    free(o->path_tmpl);
    return MYELIN_ENOMEM;
  }
  o->do_fsync = myelin_param_bool(p, "fsync");
  if (!strchr(o->path_tmpl, '{')) {
    char err[1024];
    if (myelin_mkdirs_for(o->path_tmpl, err, sizeof err) ||
        myelin_check_writable(o->path_tmpl, err, sizeof err)) {
      int rc = host->error(st, "%s", err);
      free(o->path_tmpl), free(o->field);
      o->path_tmpl = o->field = NULL;
      return rc;
    }
  }
  return 0;
}

/* Claims path for message msg_no (unique in this run; keys_hint names the
 * placeholders that make a path unique), makes its folder and opens it
 * atomically into *f. Returns 0 or host->error's code. */
static inline int map_file_open(map_file_out *o, const char *path, uint64_t msg_no, const char *keys_hint,
                                myelin_atomic_file *f) {
  char err[1024];
  memset(f, 0, sizeof *f);
  int claim = myelin_pathset_claim(&o->written, path, msg_no, err, sizeof err);
  if (claim == MYELIN_ENOMEM) return o->host->error(o->st, "%s", err);
  if (claim) return o->host->error(o->st, "%s; make the path unique with %s", err, keys_hint);
  if (myelin_mkdirs_for(path, err, sizeof err) || myelin_atomic_open(f, path, err, sizeof err))
    return o->host->error(o->st, "%s", err);
  return 0;
}

/* After the writer ran on f->fp: when it failed (write_failed != 0, its
 * message in write_err) the file is dropped and the error names path;
 * otherwise it is committed under its name and counted ("files").
 * Returns 0 or host->error's code. */
static inline int map_file_close(map_file_out *o, myelin_atomic_file *f, const char *path, int write_failed,
                                 const char *write_err) {
  char err[1024];
  if (write_failed) {
    myelin_atomic_abort(f);
    return o->host->error(o->st, "%s: %s", path, write_err);
  }
  if (myelin_atomic_commit(f, o->do_fsync, err, sizeof err)) return o->host->error(o->st, "%s", err);
  o->files++;
  o->host->counter_add(o->st, "files", 1);
  return 0;
}

/* The `field` param of the image sinks (their parameter tables). */
#define MAP_FILE_FIELD_PARAM                                                                                 \
  {                                                                                                          \
    .name = "field", .type = MYELIN_PARAM_STRING, .def = "data",                                             \
    .doc = "The tensor of each message to write, [..., V] on the geometry's columns: data, or e.g. "         \
           "info_content's regional / per_parcel, encoding's alpha / r_folds."                               \
  }

/* The tensor of m the sink writes (o->field), non-empty with a known dtype.
 * Returns 0 or host->error's code naming the field. */
static inline int map_file_tensor(const map_file_out *o, const myelin_msg *m, myelin_tensor *t) {
  const char *kind = myelin_msg_kind(m);
  int other = strcmp(o->field, "data") != 0;
  if (myelin_msg_tensor(m, o->field, t) != 0 || t->ndim < 1 || t->dtype == MYELIN_DTYPE_INVALID)
    return o->host->error(o->st, "%s message without a `%s` tensor%s", kind, o->field,
                          other ? " (the `field` param)" : "");
  if (t->count == 0) return o->host->error(o->st, "the `%s` tensor is empty", o->field);
  return 0;
}

/* Appended to errors where the written tensor's columns do not fit the
 * geometry: names the tensor, and `field` when the sink writes `data`. */
static inline const char *map_file_field_hint(const map_file_out *o) {
  return strcmp(o->field, "data") ? " (`field` names the tensor written)"
                                  : " (the sink writes `data`; `field` picks another [..., V] tensor of the "
                                    "message, e.g. info_content's per-parcel `regional`)";
}

/* The name of row r of R of the written tensor: `stat` (or the message
 * kind), followed by the field when it is not `data`, and by r when R > 1. */
static inline void map_file_row_name(const map_file_out *o, const myelin_msg *m, size_t r, size_t R,
                                     char *buf, size_t n) {
  char stat[128];
  myelin_msg_text(m, "stat", stat, sizeof stat);
  const char *base = stat[0] ? stat : myelin_msg_kind(m);
  int other = strcmp(o->field, "data") != 0;
  if (R == 1)
    snprintf(buf, n, "%s%s%s", base, other ? " " : "", other ? o->field : "");
  else
    snprintf(buf, n, "%s%s%s %zu", base, other ? " " : "", other ? o->field : "", r);
}

static inline void map_file_free(map_file_out *o) {
  free(o->path_tmpl), free(o->field);
  o->path_tmpl = o->field = NULL;
  myelin_pathset_free(&o->written);
}

/* Several ranks: each rank's paths are claimed in its own set, so a path
 * two ranks wrote (a pattern without {subject} on per-subject messages)
 * would be one rank's file, silently; rank 0 checks the union. */
static inline int map_file_ranks(map_file_out *o) {
  if (o->host->size(o->st) <= 1) return 0;
  char what[256];
  snprintf(what, sizeof what, "path '%.200s'", o->path_tmpl);
  return ranks_paths_disjoint(o->host, o->st, &o->written, what);
}

#endif
