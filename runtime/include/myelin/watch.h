/*
 * myelin/watch.h — watch a folder for new, complete files (live scanners,
 * drop folders).
 *
 * A watch runs on a libuv loop (a source stage's host->loop(st)). It
 * reports each new regular file whose name matches a glob pattern exactly
 * once, when the file is complete, in name order:
 *
 *  - complete means renamed into place (seen as a move into the folder), or
 *    its size and mtime unchanged for settle_ms. Empty files are never
 *    complete unless moved in. Names starting with '.' are ignored, so a
 *    writer can use ".name.tmp" and rename;
 *  - name order: a complete file is held back while a file with a smaller
 *    name is still being written, so volumes named by acquisition number
 *    arrive in acquisition order;
 *  - once: a name reported is never reported again, even if rewritten.
 *
 * Change notification comes from inotify (Linux, through a uv_poll handle)
 * or uv_fs_event elsewhere; a polling timer always runs too (every poll_ms),
 * so network filesystems without events still work.
 *
 *   myelin_watch_opts o = {.dir = "in", .pattern = "*.nii*", .settle_ms = 300};
 *   myelin_watch *w;
 *   if (myelin_watch_start(loop, &o, on_file, state, &w, err, sizeof err)) ...
 *   ...  on_file(w, "in/vol0001.nii", "vol0001.nii", state) per file
 *   myelin_watch_close(w);   // handles close; memory freed by the loop
 */
#ifndef MYELIN_WATCH_H
#define MYELIN_WATCH_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

struct uv_loop_s;
typedef struct myelin_watch myelin_watch;

typedef struct myelin_watch_opts {
  const char *dir;     /* the folder to watch (must exist) */
  const char *pattern; /* fnmatch(3) glob on the file name; NULL or "" = "*" */
  unsigned settle_ms;  /* size+mtime stable this long = complete; 0 = 500 */
  unsigned poll_ms;    /* polling period; 0 = settle_ms / 4, within [10, 1000] */
  int skip_existing;   /* 1: files present at start are never reported */
  int poll_only;       /* 1: no change notification, polling alone (NFS, tests) */
} myelin_watch_opts;

/* Called on the loop's thread, once per complete file. path is dir/name.
 * The callback may call myelin_watch_close(w). */
typedef void (*myelin_watch_cb)(myelin_watch *w, const char *path, const char *name, void *arg);

/* Starts watching; the first scan runs on the next loop iteration. Returns 0
 * or a negative MYELIN_E* code with a message naming the folder in err. */
int myelin_watch_start(struct uv_loop_s *loop, const myelin_watch_opts *opts, myelin_watch_cb cb,
                       void *arg, myelin_watch **out, char *err, size_t errlen);
/* Stops reporting at once and closes the handles; the watch's memory is
 * released from the loop's close callbacks (run the loop to finish).
 * Safe to call twice and from the callback. */
void myelin_watch_close(myelin_watch *w);
/* Files reported so far. */
uint64_t myelin_watch_count(const myelin_watch *w);

#ifdef __cplusplus
}
#endif
#endif
