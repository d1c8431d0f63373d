/*
 * npy_sink.c — the `npy_sink` stage: one tensor field of each message into
 * .npy files, or collected into .npz archives, for numpy users.
 *
 * Paths are patterns: {name} expands from the message's top-level field of
 * that name ({seq}, {subject}, {task}, {stat}, {index}, {run}, {label},
 * {split}, {epoch}, {kind}...); integers may be zero-padded with {index:04}.
 * {seq} falls back to the count of messages received when the message has
 * no seq. A field that is missing (or not a string/number) is an error
 * naming the placeholder, never an empty string in a file name. '/' inside a
 * value becomes '_' so a field cannot move a file to another folder.
 *
 * .npy: every message writes its own file, atomically (temporary name, then
 * rename). A second message expanding to a path already written in this run
 * is an error naming both messages — results are never silently replaced.
 * The written paths are kept in a myelin_pathset (io.h), shared with nifti_sink.
 *
 * .npz: the archive (one per distinct expanded path) stays open through the
 * run and is committed in flush; array names come from `key`
 * (default arr_{seq}), and a duplicate name is an error. Nothing is visible
 * under the final name before flush; an aborted run leaves no archive.
 *
 * Several MPI ranks: an .npz path pattern that is the same on every rank is
 * one archive per job — ranks other than 0 hold their arrays and send them
 * to rank 0 at flush, which adds them after its own in rank order (npz_ranks);
 * a pattern that differs by rank is an archive per rank. .npy files a rank
 * writes are its own; rank 0 checks at flush that no path was written by two
 * ranks (ranks_paths_disjoint), an error naming both instead of a silent
 * overwrite.
 *
 * When the run stopped early (an interrupt, or an error anywhere), fini says
 * on stderr what is left: the .npy files written so far (each complete), or
 * per archive whether it was committed or discarded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "myelin/myelin.h"
#include "../common/ranks.h"

#define PATH_MAX_LEN 4096

typedef struct archive_slot {
  char *path;
  myelin_npz_writer *w;
  int committed;
} archive_slot;

typedef struct npy_sink {
  const myelin_host *host;
  myelin_stage *st;
  const char *path, *field, *key;
  int field_set, npz;
  uint64_t received, n_written;
  myelin_pathset written;
  archive_slot *archives;
  size_t n_archives;
  char last_dir[PATH_MAX_LEN];
  int hold;          /* several ranks, one pattern, .npz, not rank 0: arrays go to rank 0 at flush */
  myelin_msg **held; /* {path, key, data} of each held array, in arrival order */
  size_t n_held, cap_held;
} npy_sink;

/* ---- pattern expansion --------------------------------------------------------- */

typedef struct out_buf {
  char *p;
  size_t len, cap;
} out_buf;

static int put(out_buf *o, const char *s, size_t n) {
  if (o->len + n + 1 > o->cap) return -1;
  memcpy(o->p + o->len, s, n);
  o->len += n;
  o->p[o->len] = 0;
  return 0;
}

/* Appends the value of field `name` of m (pad = zero-pad width for integers). */
static int put_field(out_buf *o, const myelin_msg *m, const char *name, int pad, uint64_t fallback_seq,
                     char *err, size_t errlen) {
  myelin_obj v = myelin_msg_get(m, name);
  char tmp[512];
  int64_t iv;
  double dv;
  if (!myelin_obj_exists(v) && strcmp(name, "seq") == 0) {
    snprintf(tmp, sizeof tmp, "%0*llu", pad, (unsigned long long)fallback_seq);
  } else if (myelin_obj_type_of(v) == MYELIN_OBJ_STR) {
    if (myelin_obj_str_copy(v, tmp, sizeof tmp) != 0) {
      snprintf(err, errlen, "field '%s' is too long for a file name", name);
      return -1;
    }
    for (char *c = tmp; *c; c++)
      if (*c == '/') *c = '_';
  } else if (myelin_obj_int(v, &iv) == 0) {
    snprintf(tmp, sizeof tmp, "%0*lld", pad, (long long)iv);
  } else if (myelin_obj_float(v, &dv) == 0) {
    snprintf(tmp, sizeof tmp, "%g", dv);
  } else {
    snprintf(err, errlen, "{%s}: the message has no %sfield '%s'", name,
             myelin_obj_exists(v) ? "string or number " : "", name);
    return -1;
  }
  if (put(o, tmp, strlen(tmp)) != 0) {
    snprintf(err, errlen, "expanded name too long");
    return -1;
  }
  return 0;
}

static int expand(const char *pattern, const myelin_msg *m, uint64_t fallback_seq, char *out, size_t cap,
                  char *err, size_t errlen) {
  out_buf o = {out, 0, cap};
  out[0] = 0;
  for (const char *p = pattern; *p;) {
    const char *open = strchr(p, '{');
    if (!open) return put(&o, p, strlen(p)) ? (snprintf(err, errlen, "path too long"), -1) : 0;
    if (put(&o, p, (size_t)(open - p))) return snprintf(err, errlen, "path too long"), -1;
    const char *close = strchr(open, '}');
    if (!close) return snprintf(err, errlen, "unclosed '{' in '%s'", pattern), -1;
    char name[128];
    size_t nl = (size_t)(close - open - 1);
    if (nl == 0 || nl >= sizeof name) return snprintf(err, errlen, "bad placeholder in '%s'", pattern), -1;
    memcpy(name, open + 1, nl);
    name[nl] = 0;
    int pad = 0;
    char *colon = strchr(name, ':');
    if (colon) {
      *colon = 0;
      pad = atoi(colon + 1);
      if (pad < 0 || pad > 32) pad = 0;
    }
    if (put_field(&o, m, name, pad, fallback_seq, err, errlen) != 0) return -1;
    p = close + 1;
  }
  return 0;
}

/* ---- lifecycle ------------------------------------------------------------------ */

static int ends_with(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && strcmp(s + a - b, suf) == 0;
}

static void sink_fini(void *state) {
  npy_sink *s = state;
  if (!s) return;
  int stopped = s->host->stopping(s->st);
  if (stopped && (s->npz ? s->n_archives == 0 : s->n_written == 0))
    s->host->log(s->st, MYELIN_LOG_INFO, "wrote nothing to %s: no array arrived before the stop", s->path);
  else if (stopped && !s->npz)
    s->host->log(s->st, MYELIN_LOG_INFO, "kept %llu file(s) %s written before the stop, each complete",
                 (unsigned long long)s->n_written, s->path);
  for (size_t i = 0; i < s->n_archives; i++) {
    if (!s->archives[i].committed)
      s->host->log(s->st, MYELIN_LOG_WARN, "discarded %s: the run stopped on an error or abort",
                   s->archives[i].path);
    else if (stopped)
      s->host->log(s->st, MYELIN_LOG_INFO, "kept %s: complete", s->archives[i].path);
    myelin_npz_abort(s->archives[i].w); /* committed ones were already removed */
    free(s->archives[i].path);
  }
  free(s->archives);
  for (size_t i = 0; i < s->n_held; i++)
    myelin_msg_unref(s->held[i]);
  free(s->held);
  myelin_pathset_free(&s->written);
  free(s);
}

static int sink_validate(const myelin_params *p, myelin_validate_ctx *ctx) {
  const char *path = myelin_param_str(p, "path");
  if (!ends_with(path, ".npy") && !ends_with(path, ".npz"))
    return myelin_validate_error(ctx, "path", "path must end in .npy or .npz: '%s'", path);
  int depth = 0;
  for (const char *c = path; *c; c++) {
    depth += *c == '{';
    depth -= *c == '}';
    if (depth < 0 || depth > 1) break;
  }
  if (depth != 0) return myelin_validate_error(ctx, "path", "unbalanced braces in '%s'", path);
  return 0;
}

/* The folder part of a path when it has no placeholders: created up front. */
static int prepare_static_dir(npy_sink *s) {
  const char *slash = strrchr(s->path, '/');
  if (!slash) return 0;
  if (memchr(s->path, '{', (size_t)(slash - s->path))) return 0;
  char err[1024];
  char probe[PATH_MAX_LEN];
  snprintf(probe, sizeof probe, "%.*s/.probe", (int)(slash - s->path), s->path);
  if (myelin_mkdirs_for(probe, err, sizeof err) != 0 || myelin_check_writable(probe, err, sizeof err) != 0)
    return s->host->error(s->st, "%s", err);
  return 0;
}

static int sink_init(const myelin_host *host, myelin_stage *st, const myelin_params *p, void **state) {
  npy_sink *s = calloc(1, sizeof *s);
  if (!s) return host->error(st, "out of memory");
  *state = s;
  s->host = host;
  s->st = st;
  s->path = myelin_param_str(p, "path");
  s->field = myelin_param_str(p, "field");
  s->field_set = myelin_param_is_set(p, "field");
  s->key = myelin_param_str(p, "key");
  s->npz = ends_with(s->path, ".npz");
  int rc = prepare_static_dir(s);
  if (rc) { /* fini runs only after a successful init */
    sink_fini(s);
    *state = NULL;
  }
  return rc;
}

/* Creates the folder of path unless it is the one created last. */
static int ensure_dir(npy_sink *s, const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return 0;
  size_t dl = (size_t)(slash - path);
  if (dl < sizeof s->last_dir && strncmp(s->last_dir, path, dl) == 0 && s->last_dir[dl] == 0) return 0;
  char err[1024];
  if (myelin_mkdirs_for(path, err, sizeof err) != 0) return s->host->error(s->st, "%s", err);
  if (dl < sizeof s->last_dir) {
    memcpy(s->last_dir, path, dl);
    s->last_dir[dl] = 0;
  }
  return 0;
}

static myelin_npz_writer *archive_for(npy_sink *s, const char *path) {
  for (size_t i = 0; i < s->n_archives; i++)
    if (strcmp(s->archives[i].path, path) == 0) return s->archives[i].w;
  if (ensure_dir(s, path) != 0) return NULL;
  archive_slot *na = realloc(s->archives, (s->n_archives + 1) * sizeof *na);
  if (!na) {
    s->host->error(s->st, "out of memory");
    return NULL;
  }
  s->archives = na;
  char err[1024];
  myelin_npz_writer *w = myelin_npz_open(path, err, sizeof err);
  if (!w) {
    s->host->error(s->st, "%s", err);
    return NULL;
  }
  char *copy = strdup(path);
  if (!copy) {
    myelin_npz_abort(w);
    s->host->error(s->st, "out of memory");
    return NULL;
  }
  s->archives[s->n_archives++] = (archive_slot){copy, w, 0};
  return w;
}

static int write_npy(npy_sink *s, const char *path, const myelin_tensor *t, uint64_t msg_no) {
  char err[1024];
  int r = myelin_pathset_claim(&s->written, path, msg_no, err, sizeof err);
  if (r == MYELIN_ENOMEM) return s->host->error(s->st, "%s", err);
  if (r != 0) return s->host->error(s->st, "%s; make the path unique with {seq} or {index}", err);
  if (ensure_dir(s, path) != 0) return MYELIN_EIO;
  if (myelin_npy_write(path, t->dtype, t->ndim, t->shape, t->data, err, sizeof err) != 0)
    return s->host->error(s->st, "%s", err);
  s->n_written++;
  return 0;
}

/* Adds one array to the archive of `path`; `from` names its message (or
 * rank) in an error. */
static int add_array(npy_sink *s, const char *path, const char *key, const myelin_tensor *t,
                     const char *from) {
  myelin_npz_writer *w = archive_for(s, path);
  if (!w) return MYELIN_EIO;
  char err[1024];
  if (myelin_npz_add(w, key, t->dtype, t->ndim, t->shape, t->data, err, sizeof err) != 0)
    return s->host->error(s->st, "%s: %s", from, err);
  return 0;
}

/* Several ranks, .npz, not rank 0: the array is kept ({path, key, data}, a
 * copy of the tensor) until flush, which sends it to rank 0 (one archive per
 * job) or, when the path pattern differs by rank, adds it here. */
static int hold(npy_sink *s, const char *path, const char *key, const myelin_tensor *t) {
  if (s->n_held == s->cap_held) {
    size_t cap = s->cap_held ? 2 * s->cap_held : 16;
    myelin_msg **nh = realloc(s->held, cap * sizeof *nh);
    if (!nh) return s->host->error(s->st, "out of memory");
    s->held = nh;
    s->cap_held = cap;
  }
  myelin_builder *b = myelin_builder_new("npz_array");
  if (b) {
    myelin_build_str(b, "path", path);
    myelin_build_str(b, "key", key);
    myelin_build_tensor_copy(b, "data", t->dtype, t->ndim, t->shape, t->data);
  }
  myelin_msg *m = b ? myelin_builder_finish(b) : NULL;
  if (!m) return s->host->error(s->st, "out of memory holding array '%s' of %s", key, path);
  s->held[s->n_held++] = m;
  return 0;
}

static int sink_process(void *state, int port, myelin_msg *msg) {
  (void)port;
  npy_sink *s = state;
  uint64_t msg_no = s->received++;
  const char *field = s->field;
  myelin_tensor t;
  int rc = myelin_msg_tensor(msg, field, &t);
  if (rc == MYELIN_ENOENT && !s->field_set && myelin_msg_tensor(msg, "x", &t) == 0) rc = 0;
  if (rc != 0)
    return s->host->error(s->st, "message %llu (kind '%s'): %s tensor field '%s' (set `field`)",
                          (unsigned long long)msg_no, myelin_msg_kind(msg),
                          rc == MYELIN_ENOENT ? "no" : "malformed", field);
  char path[PATH_MAX_LEN], err[512];
  if (expand(s->path, msg, msg_no, path, sizeof path, err, sizeof err) != 0)
    return s->host->error(s->st, "path '%s', message %llu: %s", s->path, (unsigned long long)msg_no, err);
  s->host->counter_add(s->st, "arrays", 1);
  if (!s->npz) return write_npy(s, path, &t, msg_no);
  char key[1024];
  if (expand(s->key, msg, msg_no, key, sizeof key, err, sizeof err) != 0)
    return s->host->error(s->st, "key '%s', message %llu: %s", s->key, (unsigned long long)msg_no, err);
  if (s->host->size(s->st) > 1 && s->host->rank(s->st) != 0) return hold(s, path, key, &t);
  char from[64];
  snprintf(from, sizeof from, "message %llu", (unsigned long long)msg_no);
  return add_array(s, path, key, &t, from);
}

/* Adds a stream of held arrays (hold) to the archives; `from`: whose. */
static int add_held(npy_sink *s, const uint8_t *buf, size_t len, const char *from) {
  for (size_t off = 0; off < len;) {
    myelin_msg *m = NULL;
    size_t used = 0;
    char err[512], path[PATH_MAX_LEN], key[1024];
    myelin_tensor t;
    if (myelin_msg_decode(buf + off, len - off, 0, &m, &used, err, sizeof err) != 0)
      return s->host->error(s->st, "%s: the arrays %s sent are not readable: %s", s->path, from, err);
    int rc = myelin_msg_str(m, "path", path, sizeof path) || myelin_msg_str(m, "key", key, sizeof key) ||
                     myelin_msg_tensor(m, "data", &t)
                 ? s->host->error(s->st, "%s: a malformed array from %s", s->path, from)
                 : add_array(s, path, key, &t, from);
    myelin_msg_unref(m);
    if (rc) return rc;
    off += used;
  }
  return 0;
}

/* Several ranks, .npz: one archive per expanded path and job when every
 * rank has the same pattern — rank 0 receives the other ranks' held arrays
 * and adds them after its own, in rank order (a key two ranks used is the
 * duplicate-name error, naming the rank); a pattern that differs by rank
 * (${OMPI_COMM_WORLD_RANK}) is an archive per rank, each adding its own. */
static int npz_ranks(npy_sink *s) {
  const myelin_host *h = s->host;
  int same = 0, rc = ranks_same_string(h, s->st, s->path, &same);
  if (rc) return rc;
  size_t len = 0;
  for (size_t i = 0; i < s->n_held; i++) {
    size_t n;
    myelin_msg_bytes(s->held[i], &n);
    len += n;
  }
  uint8_t *mine = malloc(len + 1), *q = mine;
  if (!mine) return h->error(s->st, "out of memory");
  for (size_t i = 0; i < s->n_held; i++) {
    size_t n;
    const uint8_t *b = myelin_msg_bytes(s->held[i], &n);
    memcpy(q, b, n);
    q += n;
    myelin_msg_unref(s->held[i]);
  }
  s->n_held = 0;
  if (!same) {
    rc = add_held(s, mine, len, "this rank");
    free(mine);
    return rc;
  }
  uint8_t *all = NULL;
  size_t *sizes = NULL;
  rc = ranks_gather(h, s->st, mine, len, &all, &sizes);
  free(mine);
  const uint8_t *p = all;
  for (int r = 0; rc == 0 && all && r < h->size(s->st); p += sizes[r], r++) {
    char from[32];
    snprintf(from, sizeof from, "rank %d", r);
    rc = add_held(s, p, sizes[r], from);
  }
  if (all) h->free(s->st, all);
  free(sizes);
  return rc;
}

static int sink_flush(void *state) {
  npy_sink *s = state;
  int rc = 0;
  if (s->host->size(s->st) > 1) {
    char what[64 + PATH_MAX_LEN];
    snprintf(what, sizeof what, "path '%s'", s->path);
    rc = s->npz ? npz_ranks(s) : ranks_paths_disjoint(s->host, s->st, &s->written, what);
  }
  for (size_t i = 0; i < s->n_archives; i++) {
    char err[1024];
    myelin_npz_writer *w = s->archives[i].w;
    s->archives[i].w = NULL;
    if (rc == 0 && myelin_npz_close(w, err, sizeof err) != 0)
      rc = s->host->error(s->st, "%s", err);
    else if (rc != 0)
      myelin_npz_abort(w);
    else
      s->archives[i].committed = 1;
  }
  return rc;
}

static const myelin_param_def sink_params[] = {
    {"path", MYELIN_PARAM_PATH, NULL, 0, 0, 0, NULL, NULL,
     "Output file pattern ending in .npy (one file per message) or .npz (one archive for "
     "the run). {name} expands from the message's field: {seq}, {subject}, {task}, {stat}, "
     "{index}, {run}, {label}, ...; {index:04} zero-pads. Folders are created."},
    {"field", MYELIN_PARAM_STRING, "data", 0, 0, 0, NULL, NULL,
     "Tensor field to write (e.g. data, x, step, unit, weight). When left at the default, "
     "a message without `data` but with `x` (a sample) writes `x`."},
    {"key", MYELIN_PARAM_STRING, "arr_{seq}", 0, 0, 0, NULL, NULL,
     ".npz only: array-name pattern inside the archive (same placeholders); "
     "duplicates are an error."},
    {NULL, 0, NULL, 0, 0, 0, NULL, NULL, NULL}};

static const myelin_port_def sink_inputs[] = {{"in", "*", 0, "Any message carrying a tensor field."},
                                              {NULL, NULL, 0, NULL}};

static const myelin_plugin_desc sink_desc = {
    MYELIN_DESC_HEADER,
    .name = "npy_sink",
    .version = "1.0.0",
    .summary = "Tensor fields of messages to .npy files or one .npz archive",
    .doc = "Files are written atomically (temporary name, then rename) and numpy.load reads "
           "them bit for bit. Two messages expanding to the same .npy path is an error, not an "
           "overwrite. An .npz archive is committed when the stream ends.",
    .params = sink_params,
    .inputs = sink_inputs,
    .outputs = NULL,
    .validate = sink_validate,
    .init = sink_init,
    .process = sink_process,
    .flush = sink_flush,
    .fini = sink_fini,
};

MYELIN_PLUGIN(sink_desc)
