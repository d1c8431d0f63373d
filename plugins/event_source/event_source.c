/*
 * event_source.c — the `event_source` source: event-camera recordings out as
 * `events` messages (schemas/events.md). The decoders are in
 * plugins/event_common (evdecode.c); this file is the glue: which files,
 * in which order, with which labels, chunked and paced how.
 *
 * `path` is one recording, or a dataset folder laid out as N-MNIST:
 *
 *     path/Train/0/00002.bin ... path/Train/9/...   path/Test/0/... ...
 *
 * `split: train` (or test) picks the Train (Test) subfolder, matched without
 * case; the class folders below give the labels (their names when every
 * name is an integer, as N-MNIST's digits are; otherwise their rank in
 * name order). A folder of plain files gives unlabelled samples. Samples are
 * numbered (`index`) in (class, file name) order, so a shuffled sample keeps
 * its identity; shuffle, seed, epochs and limit behave as in `dataset` (the
 * same permutation function, ds_permutation).
 *
 * Files are read one at a time, when their turn comes, so a 70,000-file
 * dataset costs one file of memory. A truncated or corrupt file delivers its
 * good prefix (the events decoded before the fault), then fails the run with
 * the file and byte offset named.
 *
 * `connect: host:port` reads a live AEDAT 4.0 stream instead (a camera
 * served by dv-processing's NetworkWriter or DV's network output): the
 * header, then packets, decoded as they arrive (evaedat4.c's incremental
 * decoder); each batch of whole packets read becomes one message, the
 * connection's end an empty message with `last: true`.
 *
 * `chunk_us` splits a recording into messages of consecutive time windows
 * (`chunk` counts windows, the last message has `last: true`); `pace:
 * realtime` delivers each message when the wall clock reaches its last
 * event's time, recordings played back to back, as a live camera would.
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/clock.h"
#include "../common/netaddr.h"
#include "events.h"
#include "load.h"
#include "myelin/io.h"
#include "myelin/myelin.h"

typedef struct sample {
  char *path;
  int64_t label; /* -1: none */
} sample;

typedef struct evsrc {
  const myelin_host *host;
  myelin_stage *st;
  ev_format format;
  ev_sensor sensor; /* from the params; 0s = from each file */
  const char *split;
  sample *samples;
  size_t n, cap, limit;
  uint32_t *order;
  int shuffle, realtime;
  const char *connect; /* host:port of a live AEDAT 4 stream, or "" */
  uint64_t seed, seq;
  int64_t epochs, chunk_us;
  double speed;
  /* pacing: wall time of the run's time origin, and where the next
   * recording starts on that time line (us) */
  int paced;
  double wall0;
  int64_t line_us;
  ev_array ev;
} evsrc;

static void es_fini(void *state) {
  evsrc *s = state;
  if (!s) return;
  for (size_t i = 0; i < s->n; i++)
    free(s->samples[i].path);
  free(s->samples);
  free(s->order);
  ev_free(&s->ev);
  free(s);
}

static int es_validate(const myelin_params *p, myelin_validate_ctx *ctx) {
  if (ev_format_parse(myelin_param_str(p, "format")) < 0)
    return myelin_validate_error(ctx, "format", "unknown format '%s'", myelin_param_str(p, "format"));
  size_t ns = myelin_param_len(p, "sensor");
  if (ns != 0 && ns != 3)
    return myelin_validate_error(ctx, "sensor", "sensor is [W, H, P] (3 integers) or [] (from the file)");
  for (size_t i = 0; i < ns; i++) {
    int64_t v = myelin_param_int_at(p, "sensor", i);
    if (v < 1 || v > (i == 2 ? 256 : 65536))
      return myelin_validate_error(ctx, "sensor", "sensor[%zu] = %lld is out of range", i, (long long)v);
  }
  const char *c = myelin_param_str(p, "connect");
  if (!*c == !*myelin_param_str(p, "path"))
    return myelin_validate_error(ctx, *c ? "connect" : "path",
                                 "give exactly one of path (recordings) or connect (a live AEDAT 4 stream)");
  if (*c) {
    struct sockaddr_storage ss;
    socklen_t len;
    char err[256];
    if (netaddr_parse(c, &ss, &len, err, sizeof err)) return myelin_validate_error(ctx, "connect", "%s", err);
    const char *f = myelin_param_str(p, "format");
    if (strcmp(f, "auto") && strcmp(f, "aedat4"))
      return myelin_validate_error(ctx, "format",
                                   "a live stream (connect) is AEDAT 4.0: format auto or aedat4");
  }
  return 0;
}

static int add_sample(evsrc *s, const char *path, int64_t label) {
  if (s->n == s->cap) {
    size_t cap = s->cap ? 2 * s->cap : 256;
    sample *ns = realloc(s->samples, cap * sizeof *ns);
    if (!ns) return MYELIN_ENOMEM;
    s->samples = ns;
    s->cap = cap;
  }
  char *c = strdup(path);
  if (!c) return MYELIN_ENOMEM;
  s->samples[s->n++] = (sample){c, label};
  return 0;
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* dir/name into out; 1 when it does not fit. */
static int join(char *out, size_t n, const char *dir, const char *name) {
  int k = snprintf(out, n, "%s/%s", dir, name);
  return k < 0 || (size_t)k >= n;
}

static int is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The sorted entry names of a folder (no hidden ones) that are folders
 * (dirs = 1) or files (dirs = 0). */
static int list_dir(const char *dir, int dirs, char ***out, size_t *n) {
  *out = NULL;
  *n = 0;
  DIR *d = opendir(dir);
  if (!d) return MYELIN_EIO;
  size_t cap = 0;
  struct dirent *e;
  char path[4096];
  int rc = 0;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    if (join(path, sizeof path, dir, e->d_name) || is_dir(path) != dirs) continue;
    if (*n == cap) {
      cap = cap ? 2 * cap : 64;
      char **nl = realloc(*out, cap * sizeof *nl);
      if (!nl) {
        rc = MYELIN_ENOMEM;
        break;
      }
      *out = nl;
    }
    if (!((*out)[*n] = strdup(e->d_name))) {
      rc = MYELIN_ENOMEM;
      break;
    }
    (*n)++;
  }
  closedir(d);
  if (*n) qsort(*out, *n, sizeof **out, cmp_name);
  return rc;
}

static void free_list(char **l, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(l[i]);
  free(l);
}

/* Folder names as labels: their integer values when all are integers. */
static int all_integers(char **names, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char *end;
    long v = strtol(names[i], &end, 10);
    if (*end || v < 0 || end == names[i]) return 0;
  }
  return n > 0;
}

static int add_files(evsrc *s, const char *dir, int64_t label) {
  char **files;
  size_t nf;
  int rc = list_dir(dir, 0, &files, &nf);
  char path[4096];
  for (size_t i = 0; !rc && i < nf; i++) {
    rc = join(path, sizeof path, dir, files[i]) ? MYELIN_ERANGE : add_sample(s, path, label);
  }
  free_list(files, nf);
  return rc;
}

static int scan_folder(evsrc *s, const char *root) {
  char dir[4096];
  if (strlen(root) >= sizeof dir) return s->host->error(s->st, "%s: path too long", root);
  memcpy(dir, root, strlen(root) + 1);
  char **subs;
  size_t ns;
  int rc = list_dir(dir, 1, &subs, &ns);
  if (rc) return s->host->error(s->st, "%s: cannot list the folder", root);
  /* a Train/Test level: pick the split */
  const char *pick = NULL;
  int has_split_dirs = 0;
  for (size_t i = 0; i < ns; i++) {
    if (!strcasecmp(subs[i], "train") || !strcasecmp(subs[i], "test")) has_split_dirs = 1;
    if (*s->split && !strcasecmp(subs[i], s->split)) pick = subs[i];
  }
  if (has_split_dirs) {
    if (!pick) {
      free_list(subs, ns);
      return s->host->error(s->st, "%s: holds Train/Test folders: set `split` to train or test%s", root,
                            *s->split ? " (no folder matches the split given)" : "");
    }
    int long_path = join(dir, sizeof dir, root, pick);
    free_list(subs, ns);
    if (long_path) return s->host->error(s->st, "%s: path too long", root);
    if ((rc = list_dir(dir, 1, &subs, &ns))) return s->host->error(s->st, "%s: cannot list the folder", dir);
  }
  if (ns == 0) {
    rc = add_files(s, dir, -1);
  } else {
    int ints = all_integers(subs, ns);
    if (ints) { /* numeric order: 2 before 10 */
      for (size_t i = 1; i < ns; i++)
        for (size_t j = i; j > 0 && atol(subs[j - 1]) > atol(subs[j]); j--) {
          char *t = subs[j];
          subs[j] = subs[j - 1];
          subs[j - 1] = t;
        }
    }
    char path[4096];
    for (size_t i = 0; !rc && i < ns; i++) {
      rc = join(path, sizeof path, dir, subs[i]) ? MYELIN_ERANGE
                                                 : add_files(s, path, ints ? atol(subs[i]) : (int64_t)i);
    }
  }
  free_list(subs, ns);
  if (rc)
    return s->host->error(s->st, "%s: cannot list the dataset (a path too long, or out of memory)", dir);
  if (s->n == 0) return s->host->error(s->st, "%s: no event files found", dir);
  return 0;
}

static int es_setup(evsrc *s, const myelin_params *p) {
  const char *dir = s->host->pipeline_dir ? s->host->pipeline_dir(s->st) : NULL;
  char *path = myelin_input_path(myelin_param_str(p, "path"), dir);
  if (!path) return s->host->error(s->st, "out of memory");
  int rc;
  if (is_dir(path))
    rc = scan_folder(s, path);
  else if (access(path, R_OK) != 0)
    rc = s->host->error(s->st, "%s: no such file or folder", path);
  else
    rc = add_sample(s, path, -1) ? s->host->error(s->st, "out of memory") : 0;
  free(path);
  if (rc) return rc;
  int64_t limit = myelin_param_int(p, "limit");
  s->limit = limit > 0 && (size_t)limit < s->n ? (size_t)limit : s->n;
  s->order = malloc((s->limit ? s->limit : 1) * sizeof *s->order);
  /* the arrays always exist, so an empty recording's slices are never NULL + 0 */
  if (!s->order || ev_reserve(&s->ev, 1)) return s->host->error(s->st, "out of memory");
  return 0;
}

static int es_init(const myelin_host *host, myelin_stage *st, const myelin_params *p, void **state) {
  evsrc *s = calloc(1, sizeof *s);
  if (!s) return host->error(st, "out of memory");
  s->host = host;
  s->st = st;
  s->format = (ev_format)ev_format_parse(myelin_param_str(p, "format"));
  if (myelin_param_len(p, "sensor") == 3)
    s->sensor = (ev_sensor){(uint32_t)myelin_param_int_at(p, "sensor", 0),
                            (uint32_t)myelin_param_int_at(p, "sensor", 1),
                            (uint32_t)myelin_param_int_at(p, "sensor", 2)};
  s->split = myelin_param_str(p, "split");
  s->shuffle = myelin_param_bool(p, "shuffle");
  s->seed = (uint64_t)myelin_param_int(p, "seed");
  s->epochs = myelin_param_int(p, "epochs");
  s->chunk_us = myelin_param_int(p, "chunk_us");
  s->realtime = !strcmp(myelin_param_str(p, "pace"), "realtime");
  s->speed = myelin_param_float(p, "speed");
  s->connect = myelin_param_str(p, "connect");
  int rc = *s->connect ? (ev_reserve(&s->ev, 1) ? host->error(st, "out of memory") : 0) : es_setup(s, p);
  if (rc) {
    es_fini(s);
    return rc;
  }
  *state = s;
  return 0;
}

static int stopping(void *arg) {
  evsrc *s = arg;
  return s->host->stopping(s->st);
}

/* Emits events [lo, hi) of the current recording as one message. */
static int emit_chunk(evsrc *s, const ev_sensor *sensor, const sample *sm, size_t index, uint64_t epoch,
                      size_t lo, size_t hi, uint64_t chunk, int last, int64_t t_first) {
  ev_array *a = &s->ev;
  if (s->realtime && hi > lo) {
    if (!s->paced) {
      s->paced = 1;
      s->wall0 = clock_mono();
    }
    double due = s->wall0 + (double)(s->line_us + a->t[hi - 1] - t_first) * 1e-6 / s->speed;
    if (clock_pace_until(due, stopping, s)) return 1;
  }
  myelin_builder *b = ev_build(sensor, a->x + lo, a->y + lo, a->p + lo, a->t + lo, hi - lo);
  if (!b) return s->host->error(s->st, "out of memory");
  myelin_build_uint(b, "seq", s->seq++);
  if (sm->label >= 0) myelin_build_int(b, "label", sm->label);
  myelin_build_uint(b, "index", index);
  if (*s->split) myelin_build_str(b, "split", s->split);
  myelin_build_uint(b, "epoch", epoch);
  if (s->chunk_us > 0 || *s->connect) {
    myelin_build_uint(b, "chunk", chunk);
    myelin_build_bool(b, "last", last);
  }
  myelin_msg *m = myelin_builder_finish(b);
  if (!m) return s->host->error(s->st, "%s: cannot build a message (out of memory?)", sm->path);
  s->host->counter_add(s->st, "events", (int64_t)(hi - lo));
  return s->host->emit(s->st, 0, m) == MYELIN_ESTOP ? 1 : 0;
}

/* Emits the decoded recording, whole or in time windows. */
static int emit_recording(evsrc *s, const ev_sensor *sensor, const sample *sm, size_t index, uint64_t epoch) {
  ev_array *a = &s->ev;
  int64_t t_first = a->n ? a->t[0] : 0;
  int rc = 0;
  if (s->chunk_us <= 0 || a->n == 0) {
    rc = emit_chunk(s, sensor, sm, index, epoch, 0, a->n, 0, 1, t_first);
  } else {
    size_t lo = 0;
    uint64_t chunk = 0;
    while (!rc && lo < a->n) {
      /* the window holding event lo, and the events in it */
      int64_t since = a->t[lo] > t_first ? a->t[lo] - t_first : 0;
      chunk = (uint64_t)(since / s->chunk_us);
      int64_t end = t_first + (int64_t)(chunk + 1) * s->chunk_us;
      size_t hi = lo;
      while (hi < a->n && a->t[hi] < end)
        hi++;
      if (hi == lo) hi = lo + 1; /* a timestamp going back: keep it with the next window */
      rc = emit_chunk(s, sensor, sm, index, epoch, lo, hi, chunk, hi == a->n, t_first);
      lo = hi;
    }
  }
  if (a->n) s->line_us += a->t[a->n - 1] - t_first;
  return rc;
}

static int run_sample(evsrc *s, size_t index, uint64_t epoch) {
  const sample *sm = &s->samples[index];
  uint8_t *buf = NULL;
  size_t len = 0;
  char err[1024];
  if (myelin_read_file(sm->path, 0, &buf, &len, err, sizeof err)) return s->host->error(s->st, "%s", err);
  ev_format f = s->format != EV_FMT_AUTO ? s->format : ev_format_guess(buf, len, sm->path);
  ev_sensor sensor = s->sensor;
  s->ev.n = 0;
  int drc = f == EV_FMT_HDF5     ? ev_decode_hdf5(buf, len, sm->path, &sensor, &s->ev, err, sizeof err)
            : f == EV_FMT_AEDAT4 ? ev_decode_aedat4(buf, len, sm->path, &sensor, &s->ev, err, sizeof err)
                                 : ev_decode(f, buf, len, sm->path, &sensor, &s->ev, err, sizeof err);
  free(buf);
  if (drc == MYELIN_ENOMEM) return s->host->error(s->st, "%s", err);
  int rc = emit_recording(s, &sensor, sm, index, epoch);
  if (drc) {
    if (rc < 0) return rc;
    return s->host->error(s->st, "%s; the %zu events before it were delivered", err, s->ev.n);
  }
  return rc;
}

/* Connects to addr, polling so that a stop is seen; the socket or -1 (errno). */
static int dial(evsrc *s, const struct sockaddr_storage *ss, socklen_t len) {
  int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  if (connect(fd, (const struct sockaddr *)ss, len) == 0) return fd;
  if (errno != EINPROGRESS) goto fail;
  for (;;) {
    struct pollfd pf = {fd, POLLOUT, 0};
    int k = poll(&pf, 1, 100);
    if (k < 0 && errno != EINTR) goto fail;
    if (s->host->stopping(s->st)) {
      errno = ECANCELED;
      goto fail;
    }
    if (k > 0) break;
  }
  int e = 0;
  socklen_t el = sizeof e;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) == 0 && e == 0) return fd;
  errno = e ? e : EIO;
fail:;
  int keep = errno;
  close(fd);
  errno = keep;
  return -1;
}

/* A live AEDAT 4.0 stream: one message per batch of whole packets read. */
static int run_live(evsrc *s) {
  struct sockaddr_storage ss;
  socklen_t sl = 0;
  char err[1024];
  if (netaddr_parse(s->connect, &ss, &sl, err, sizeof err) != 0) /* validate checked it already */
    return s->host->error(s->st, "connect: %s", err);
  char what[300];
  snprintf(what, sizeof what, "tcp://%s", s->connect);
  int fd = dial(s, &ss, sl);
  if (fd < 0) {
    if (errno == ECANCELED) return 0;
    return s->host->error(s->st, "%s: cannot connect: %s", what, strerror(errno));
  }
  s->host->log(s->st, MYELIN_LOG_INFO, "connected to %s", what);
  sample sm = {what, -1};
  s->realtime = 0; /* the network paces a live stream */
  ev_aedat4 d;
  ev_aedat4_init(&d);
  ev_sensor sensor = s->sensor;
  size_t cap = (size_t)1 << 20, len = 0;
  uint8_t *buf = malloc(cap);
  uint64_t chunk = 0;
  int rc = buf ? 0 : s->host->error(s->st, "out of memory"), eof = 0;
  while (!rc && !eof) {
    struct pollfd pf = {fd, POLLIN, 0};
    int k = poll(&pf, 1, 100);
    if (s->host->stopping(s->st)) break;
    if (k < 0 && errno != EINTR) {
      rc = s->host->error(s->st, "%s: poll: %s", what, strerror(errno));
      break;
    }
    if (k <= 0) continue;
    ssize_t got = read(fd, buf + len, cap - len);
    if (got < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      rc = s->host->error(s->st, "%s: read: %s", what, strerror(errno));
      break;
    }
    if (got == 0) {
      eof = 1;
      if (len)
        rc = s->host->error(s->st,
                            "%s: the stream ended at byte offset %llu inside a %s (%zu of its %zu bytes)",
                            what, (unsigned long long)d.off, d.unit ? d.unit : "unit", d.have, d.need);
      break;
    }
    len += (size_t)got;
    size_t used = 0;
    s->ev.n = 0;
    int drc = ev_aedat4_feed(&d, buf, len, &used, what, &sensor, &s->ev, err, sizeof err);
    if (!drc && d.state >= 2 && (!sensor.w || !sensor.h)) {
      rc = s->host->error(s->st, "%s: the stream's header names no event stream size: set `sensor`", what);
      break;
    }
    if (s->ev.n) {
      int erc = emit_chunk(s, &sensor, &sm, 0, 0, 0, s->ev.n, chunk++, 0, s->ev.t[0]);
      if (erc) {
        rc = erc > 0 ? 0 : erc;
        if (erc > 0) break;
      }
    }
    if (drc) {
      rc = s->host->error(s->st, "%s%s", err, s->ev.n ? "; the events before it were delivered" : "");
      break;
    }
    if (d.state == 3) { /* a file's packet index: nothing after it is a packet */
      eof = 1;
      break;
    }
    memmove(buf, buf + used, len - used);
    len -= used;
    if (d.need > cap) {
      uint8_t *nb = realloc(buf, d.need);
      if (!nb) {
        rc = s->host->error(s->st, "out of memory");
        break;
      }
      buf = nb;
      cap = d.need;
    } else if (len == cap) {
      rc = s->host->error(s->st, "%s: internal: no progress", what);
    }
  }
  if (!rc && eof) { /* the end of the stream: an empty last message */
    s->ev.n = 0;
    int erc = emit_chunk(s, &sensor, &sm, 0, 0, 0, 0, chunk, 1, 0);
    if (erc < 0) rc = erc;
  }
  close(fd);
  free(buf);
  ev_aedat4_free(&d);
  return rc;
}

static int es_start(void *state) {
  evsrc *s = state;
  if (*s->connect) return run_live(s);
  for (int64_t e = 0; e < s->epochs; e++) {
    if (s->shuffle)
      ds_permutation(s->seed, (uint64_t)e, s->order, s->limit);
    else
      for (size_t i = 0; i < s->limit; i++)
        s->order[i] = (uint32_t)i;
    for (size_t i = 0; i < s->limit; i++) {
      if (s->host->stopping(s->st)) return 0;
      int rc = run_sample(s, s->order[i], (uint64_t)e);
      if (rc > 0) return 0; /* stopping: end the stream cleanly */
      if (rc < 0) return rc;
    }
    s->host->counter_add(s->st, "epochs", 1);
  }
  return 0;
}

static const myelin_param_def es_params[] = {
    {"format", MYELIN_PARAM_ENUM, "auto", 0, 0, 0, "auto|nmnist|evt2|evt3|aedat2|aedat3|aedat4|hdf5", NULL,
     "File format: nmnist (N-MNIST/N-Caltech101 .bin), evt2 / evt3 (Prophesee .raw), aedat2 (jAER "
     "AEDAT 2.0, DVS128 or DAVIS layout by the header's AEChip), aedat3 (iniVation AEDAT 3.1), aedat4 "
     "(iniVation AEDAT 4.0: FlatBuffers packets, none/LZ4/Zstd), hdf5 "
     "(events/{x,y,p,t} or a compound CD/events); auto reads the "
     "content (AEDAT, HDF5, Prophesee header), else the name (.bin = nmnist, "
     ".raw = evt3)."},
    {"path", MYELIN_PARAM_INPUT_PATH, "", 0, 0, 0, NULL, NULL,
     "One recording, or a dataset folder laid out as N-MNIST (Train|Test/<class>/<files>; labels from "
     "the class folders), or a folder of recordings (unlabelled). Give this or `connect`."},
    {"connect", MYELIN_PARAM_STRING, "", 0, 0, 0, NULL, NULL,
     "host:port of a live AEDAT 4.0 stream (dv-processing's NetworkWriter, DV's network output) to read "
     "instead of `path`: one message per batch of packets received (with `chunk`), an empty one with "
     "`last: true` when the server closes; pace, chunk_us, split and the dataset params do not apply."},
    {"split", MYELIN_PARAM_STRING, "", 0, 0, 0, NULL, NULL,
     "train or test: picks the Train/Test subfolder (any case) and is copied into each message."},
    {"sensor", MYELIN_PARAM_INT_LIST, "[]", 0, 0, 0, NULL, NULL,
     "[W, H, P]; [] = from the file (N-MNIST: 34x34x2; EVT: the header's geometry, else the largest "
     "coordinates). Events outside it are a corrupt-file error."},
    {"limit", MYELIN_PARAM_INT, "0", 1, 0, 4294967295.0, NULL, "recordings",
     "Use only the first `limit` recordings (before shuffling); 0 = all."},
    {"shuffle", MYELIN_PARAM_BOOL, "false", 0, 0, 0, NULL, NULL,
     "Visit recordings in a seeded random order, a new one each epoch (as `dataset`)."},
    {"seed", MYELIN_PARAM_INT, "0", 1, 0, 9.2e18, NULL, NULL, "Seed of the shuffle."},
    {"epochs", MYELIN_PARAM_INT, "1", 1, 1, 1e9, NULL, "passes",
     "Passes over the recordings; messages carry `epoch` (0-based)."},
    {"chunk_us", MYELIN_PARAM_INT, "0", 1, 0, 9.2e18, NULL, "us",
     "0: one message per recording; else one per time window of this length (empty windows are "
     "skipped), with `chunk` (window number) and `last`."},
    {"pace", MYELIN_PARAM_ENUM, "asap", 0, 0, 0, "asap|realtime", NULL,
     "asap: as fast as downstream accepts; realtime: each message when the wall clock reaches its "
     "last event's time (recordings back to back)."},
    {"speed", MYELIN_PARAM_FLOAT, "1", 1, 1e-6, 1e6, NULL, NULL, "Replay speed factor for pace: realtime."},
    {NULL, 0, NULL, 0, 0, 0, NULL, NULL, NULL}};

static const myelin_port_def es_outputs[] = {
    {"out", "events", 0,
     "`events` {sensor, x, y, p, t, label, index, split, epoch, seq} per recording (or per chunk)."},
    {NULL, NULL, 0, NULL}};

static const myelin_plugin_desc es_desc = {
    MYELIN_DESC_HEADER,
    .name = "event_source",
    .version = "1.0.0",
    .summary =
        "Event-camera recordings (N-MNIST .bin, Prophesee EVT 2.0/3.0, AEDAT 2.0/3.1/4.0, HDF5) and live "
        "AEDAT 4.0 streams as `events` messages",
    .doc = "Reads N-MNIST binaries, Prophesee EVT 2.0 / 3.0 raw files, jAER AEDAT 2.0, iniVation AEDAT 3.1 "
           "and 4.0 and HDF5 event files, one recording or a dataset folder laid out as N-MNIST (labels from "
           "the class folders, split/shuffle/epochs as `dataset`), or a live AEDAT 4.0 stream over TCP "
           "(`connect`). Files are decoded one at a time; a truncated or corrupt file delivers its good "
           "prefix and fails naming the byte offset. `pace: realtime` replays by the timestamps.",
    .params = es_params,
    .outputs = es_outputs,
    .validate = es_validate,
    .init = es_init,
    .start = es_start,
    .fini = es_fini,
};

MYELIN_PLUGIN(es_desc)
