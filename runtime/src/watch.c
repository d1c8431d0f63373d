/*
 * watch.c — folder watch: report each new complete file once, in name order
 * (see myelin/watch.h for the contract).
 *
 * Design. Everything is decided by a directory scan; notifications only make
 * scans happen sooner. A scan lists the folder, ignores dot-files, names not
 * matching the pattern, non-regular files and names already reported, and
 * keeps one `pending` entry per remaining name with the size/mtime last seen
 * and when they last changed. An entry is ready when it was moved into the
 * folder (inotify IN_MOVED_TO: a rename is atomic, so the file is whole) or
 * its size is non-zero and size+mtime have not changed for settle_ms.
 * Pending entries are kept sorted by name and reported from the front while
 * ready, so a later name never overtakes an earlier one still being written.
 * Reported names go into a sorted `done` array (binary search), which is what
 * makes "never twice" hold even when a file is rewritten or touched.
 *
 * Handles: a repeating uv_timer (polling, and the settle deadline), plus on
 * Linux a non-blocking inotify descriptor watched with uv_poll (so moves are
 * recognised), elsewhere a uv_fs_event. Closing marks the watch closed (no
 * more callbacks), closes the handles and frees the memory once the last
 * close callback ran, so closing from inside the user callback is safe.
 */
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>
#ifdef __linux__
#include <sys/inotify.h>
#endif

#include "myelin/watch.h"

typedef struct pending {
  char *name;
  int64_t size;
  int64_t mtime_ns;
  uint64_t changed_ms; /* loop time of the last change */
  int moved;           /* renamed into place */
  int seen;            /* present in the current scan */
} pending;

struct myelin_watch {
  uv_loop_t *loop;
  char *dir;
  char *pattern;
  unsigned settle_ms;
  myelin_watch_cb cb;
  void *arg;
  uv_timer_t timer;
  uv_fs_event_t fs_event;
  uv_poll_t poll;
  int inotify_fd;
  int have_fs_event, have_poll;
  int open_handles;
  int closing;
  int in_scan;
  pending *pend;
  size_t npend, cap_pend;
  char **done;
  size_t ndone, cap_done;
  char **moved; /* names announced by IN_MOVED_TO before the scan saw them */
  size_t nmoved, cap_moved;
  uint64_t count;
};

/* ---- the sorted name set of reported files ------------------------------ */

static size_t lower_bound(char **v, size_t n, const char *name) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (strcmp(v[mid], name) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

static int set_has(char **v, size_t n, const char *name) {
  size_t i = lower_bound(v, n, name);
  return i < n && strcmp(v[i], name) == 0;
}

static int set_add(char ***v, size_t *n, size_t *cap, const char *name) {
  size_t i = lower_bound(*v, *n, name);
  if (i < *n && strcmp((*v)[i], name) == 0) return 0;
  if (*n == *cap) {
    size_t nc = *cap ? *cap * 2 : 64;
    char **nv = realloc(*v, nc * sizeof *nv);
    if (!nv) return -1;
    *v = nv;
    *cap = nc;
  }
  char *copy = strdup(name);
  if (!copy) return -1;
  memmove(*v + i + 1, *v + i, (*n - i) * sizeof **v);
  (*v)[i] = copy;
  (*n)++;
  return 0;
}

static void set_remove(char **v, size_t *n, const char *name) {
  size_t i = lower_bound(v, *n, name);
  if (i < *n && strcmp(v[i], name) == 0) {
    free(v[i]);
    memmove(v + i, v + i + 1, (*n - i - 1) * sizeof *v);
    (*n)--;
  }
}

/* ---- pending entries ---------------------------------------------------- */

static pending *pend_find(myelin_watch *w, const char *name) {
  for (size_t i = 0; i < w->npend; i++)
    if (strcmp(w->pend[i].name, name) == 0) return &w->pend[i];
  return NULL;
}

static pending *pend_add(myelin_watch *w, const char *name) {
  if (w->npend == w->cap_pend) {
    size_t nc = w->cap_pend ? w->cap_pend * 2 : 32;
    pending *np = realloc(w->pend, nc * sizeof *np);
    if (!np) return NULL;
    w->pend = np;
    w->cap_pend = nc;
  }
  pending *p = &w->pend[w->npend];
  memset(p, 0, sizeof *p);
  p->name = strdup(name);
  if (!p->name) return NULL;
  p->size = -1;
  w->npend++;
  return p;
}

static int cmp_pending(const void *a, const void *b) {
  return strcmp(((const pending *)a)->name, ((const pending *)b)->name);
}

static int wanted(const myelin_watch *w, const char *name) {
  if (name[0] == '.') return 0;
  return fnmatch(w->pattern, name, FNM_PERIOD) == 0;
}

static char *join(const char *dir, const char *name) {
  size_t a = strlen(dir), b = strlen(name);
  char *p = malloc(a + b + 2);
  if (!p) return NULL;
  memcpy(p, dir, a);
  p[a] = '/';
  memcpy(p + a + 1, name, b + 1);
  return p;
}

/* Records one directory entry's size/mtime; returns -1 on OOM. */
static int observe(myelin_watch *w, const char *name, uint64_t now) {
  char *path = join(w->dir, name);
  if (!path) return -1;
  struct stat st;
  int ok = stat(path, &st) == 0 && S_ISREG(st.st_mode);
  free(path);
  if (!ok) return 0;
  pending *p = pend_find(w, name);
  if (!p && !(p = pend_add(w, name))) return -1;
  int64_t mt = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
  if (p->size != (int64_t)st.st_size || p->mtime_ns != mt) {
    p->size = (int64_t)st.st_size;
    p->mtime_ns = mt;
    p->changed_ms = now;
  }
  if (set_has(w->moved, w->nmoved, name)) {
    p->moved = 1;
    set_remove(w->moved, &w->nmoved, name);
  }
  p->seen = 1;
  return 0;
}

static int ready(const myelin_watch *w, const pending *p, uint64_t now) {
  if (p->moved) return 1;
  return p->size > 0 && now - p->changed_ms >= w->settle_ms;
}

/* Reports ready entries from the front of the name-sorted pending list. */
static void report(myelin_watch *w, uint64_t now) {
  if (w->npend == 0) return;
  qsort(w->pend, w->npend, sizeof *w->pend, cmp_pending);
  size_t k = 0;
  while (k < w->npend && !w->closing && ready(w, &w->pend[k], now)) {
    pending *p = &w->pend[k];
    if (set_add(&w->done, &w->ndone, &w->cap_done, p->name)) break;
    char *path = join(w->dir, p->name);
    if (!path) break;
    w->count++;
    k++;
    w->cb(w, path, p->name, w->arg);
    free(path);
  }
  for (size_t i = 0; i < k; i++) free(w->pend[i].name);
  if (k) memmove(w->pend, w->pend + k, (w->npend - k) * sizeof *w->pend);
  w->npend -= k;
}

static void scan(myelin_watch *w) {
  if (w->closing || w->in_scan) return;
  w->in_scan = 1;
  uv_update_time(w->loop);
  uint64_t now = uv_now(w->loop);
  DIR *d = opendir(w->dir);
  if (d) {
    for (size_t i = 0; i < w->npend; i++) w->pend[i].seen = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (!wanted(w, e->d_name) || set_has(w->done, w->ndone, e->d_name)) continue;
      if (observe(w, e->d_name, now)) break;
    }
    closedir(d);
    size_t j = 0; /* drop entries whose file disappeared */
    for (size_t i = 0; i < w->npend; i++) {
      if (w->pend[i].seen) w->pend[j++] = w->pend[i];
      else free(w->pend[i].name);
    }
    w->npend = j;
    report(w, now);
  }
  w->in_scan = 0;
}

/* ---- handles ------------------------------------------------------------ */

static void on_timer(uv_timer_t *t) { scan(t->data); }

static void on_fs_event(uv_fs_event_t *h, const char *name, int events, int status) {
  (void)name;
  (void)events;
  (void)status;
  scan(h->data);
}

#ifdef __linux__
static void on_inotify(uv_poll_t *h, int status, int events) {
  myelin_watch *w = h->data;
  (void)events;
  if (status < 0) return;
  char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
  ssize_t n;
  while ((n = read(w->inotify_fd, buf, sizeof buf)) > 0) {
    for (char *p = buf; p < buf + n;) {
      struct inotify_event *ev = (struct inotify_event *)(void *)p;
      if ((ev->mask & IN_MOVED_TO) && ev->len && wanted(w, ev->name) &&
          !set_has(w->done, w->ndone, ev->name))
        set_add(&w->moved, &w->nmoved, &w->cap_moved, ev->name);
      p += sizeof *ev + ev->len;
    }
  }
  scan(w);
}
#endif

static void free_watch(myelin_watch *w) {
  for (size_t i = 0; i < w->npend; i++) free(w->pend[i].name);
  for (size_t i = 0; i < w->ndone; i++) free(w->done[i]);
  for (size_t i = 0; i < w->nmoved; i++) free(w->moved[i]);
  free(w->pend);
  free(w->done);
  free(w->moved);
  free(w->dir);
  free(w->pattern);
  free(w);
}

static void on_closed(uv_handle_t *h) {
  myelin_watch *w = h->data;
  if (--w->open_handles == 0) {
    if (w->inotify_fd >= 0) close(w->inotify_fd);
    free_watch(w);
  }
}

static void start_notify(myelin_watch *w) {
  w->inotify_fd = -1;
#ifdef __linux__
  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd >= 0 &&
      inotify_add_watch(fd, w->dir, IN_CREATE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_ATTRIB) >= 0 &&
      uv_poll_init(w->loop, &w->poll, fd) == 0) {
    w->inotify_fd = fd;
    w->poll.data = w;
    w->have_poll = 1;
    w->open_handles++;
    uv_poll_start(&w->poll, UV_READABLE, on_inotify);
    return;
  }
  if (fd >= 0) close(fd);
#endif
  if (uv_fs_event_init(w->loop, &w->fs_event) == 0) {
    w->fs_event.data = w;
    w->have_fs_event = 1;
    w->open_handles++;
    if (uv_fs_event_start(&w->fs_event, on_fs_event, w->dir, 0) != 0) uv_fs_event_stop(&w->fs_event);
  }
}

/* Marks what is already there as reported, for skip_existing. */
static int skip_existing(myelin_watch *w) {
  DIR *d = opendir(w->dir);
  if (!d) return 0;
  struct dirent *e;
  int rc = 0;
  while (!rc && (e = readdir(d)) != NULL)
    if (wanted(w, e->d_name)) rc = set_add(&w->done, &w->ndone, &w->cap_done, e->d_name);
  closedir(d);
  return rc;
}

int myelin_watch_start(struct uv_loop_s *loop, const myelin_watch_opts *o, myelin_watch_cb cb,
                       void *arg, myelin_watch **out, char *err, size_t errlen) {
  *out = NULL;
  if (!loop || !o || !o->dir || !cb) return myelin_errorf(err, errlen, MYELIN_EINVAL, "watch: missing argument");
  struct stat st;
  if (stat(o->dir, &st) != 0)
    return myelin_errorf(err, errlen, MYELIN_ENOENT, "%s: cannot watch: %s", o->dir, strerror(errno));
  if (!S_ISDIR(st.st_mode)) return myelin_errorf(err, errlen, MYELIN_EINVAL, "%s: cannot watch: not a folder", o->dir);
  myelin_watch *w = calloc(1, sizeof *w);
  if (!w) return myelin_errorf(err, errlen, MYELIN_ENOMEM, "watch: out of memory");
  w->loop = loop;
  w->dir = strdup(o->dir);
  w->pattern = strdup(o->pattern && *o->pattern ? o->pattern : "*");
  w->settle_ms = o->settle_ms ? o->settle_ms : 500;
  w->cb = cb;
  w->arg = arg;
  if (!w->dir || !w->pattern || (o->skip_existing && skip_existing(w))) {
    free_watch(w);
    return myelin_errorf(err, errlen, MYELIN_ENOMEM, "watch: out of memory");
  }
  unsigned poll = o->poll_ms ? o->poll_ms : w->settle_ms / 4;
  if (poll < 10) poll = 10;
  if (poll > 1000) poll = 1000;
  uv_timer_init(loop, &w->timer);
  w->timer.data = w;
  w->open_handles = 1;
  uv_timer_start(&w->timer, on_timer, 0, poll);
  w->inotify_fd = -1;
  if (!o->poll_only) start_notify(w);
  *out = w;
  return 0;
}

void myelin_watch_close(myelin_watch *w) {
  if (!w || w->closing) return;
  w->closing = 1;
  uv_close((uv_handle_t *)&w->timer, on_closed);
  if (w->have_poll) uv_close((uv_handle_t *)&w->poll, on_closed);
  if (w->have_fs_event) uv_close((uv_handle_t *)&w->fs_event, on_closed);
}

uint64_t myelin_watch_count(const myelin_watch *w) { return w ? w->count : 0; }
