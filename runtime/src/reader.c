/*
 * reader.c — stream files (.mpk) read message by message (io.h).
 *
 * Regular files are mapped. A window of at least 64 MiB of the file is
 * mmap'ed read-only; a message that ends past the window's end gets a new
 * window starting at the message's page, doubled until the message fits.
 * Messages of BORROW_MIN bytes or more are not copied: they point into the
 * window and hold a reference on it (msg_backing, msg.c), so the window is
 * unmapped when the reader has moved on and the last such message is
 * released. A 12 MB tensor thus costs no copy and no fresh allocation, and
 * its payload is 64-byte aligned in place when the writer aligned it in the
 * file (writer.c). Smaller messages are copied, as the copy is cheaper than
 * pinning a window and realigns their small tensors. Memory stays bounded:
 * one window plus the messages alive downstream.
 *
 * Anything else (a pipe, a FIFO, stdin, a file mmap refuses) is read() into
 * a 1 MiB window that slides over the input: it is refilled when less than
 * a quarter remains, and when a message is only partly in it, the partial
 * message is moved to the front first and the window doubles only if the
 * message alone fills it. Every message is copied out of it.
 *
 * Either way every error names the byte offset of the message it concerns,
 * and the messages before it have been returned.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "myelin/io.h"

#define MAP_WINDOW ((size_t)64 << 20)
#define BORROW_MIN ((size_t)64 << 10)

typedef struct window {
  msg_backing bk; /* first: messages hold &bk */
  uint8_t *base;
  size_t len;
  uint64_t off; /* file offset of base[0] */
} window;

struct myelin_reader {
  FILE *f;
  size_t max_bytes;
  /* mapped files */
  int mapped;
  uint64_t size, pos, start;
  window *win;
  /* read() fallback */
  uint8_t *buf;
  size_t cap, len, off;
  uint64_t base; /* file offset of buf[0] */
  int eof;
};

static void window_release(msg_backing *b) {
  window *w = (window *)b;
  munmap(w->base, w->len);
  free(w);
}

/* Maps the part of the file from (the page of) `at`, at least want bytes
 * after `at` when the file has them. Returns 0 or MYELIN_ENOMEM. */
static int map_window(myelin_reader *r, uint64_t at, size_t want) {
  static size_t page;
  if (!page) page = (size_t)sysconf(_SC_PAGESIZE);
  uint64_t from = at - at % page;
  uint64_t len = (at - from) + (want > MAP_WINDOW ? want : MAP_WINDOW);
  if (len > r->size - from) len = r->size - from;
  window *w = malloc(sizeof *w);
  if (!w) return MYELIN_ENOMEM;
  void *p = mmap(NULL, (size_t)len, PROT_READ, MAP_PRIVATE, fileno(r->f), (off_t)from);
  if (p == MAP_FAILED) {
    free(w);
    return MYELIN_ENOMEM;
  }
  madvise(p, (size_t)len, MADV_SEQUENTIAL);
  msg_backing_init(&w->bk, window_release);
  w->base = p;
  w->len = (size_t)len;
  w->off = from;
  msg_backing_unref(r->win ? &r->win->bk : NULL);
  r->win = w;
  return 0;
}

myelin_reader *myelin_reader_new(FILE *f, size_t max_bytes) {
  myelin_reader *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->f = f;
  r->max_bytes = max_bytes;
  struct stat st;
  off_t at = ftello(f);
  if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && at >= 0 && st.st_size > at) {
    r->size = (uint64_t)st.st_size;
    r->pos = r->start = (uint64_t)at;
    r->mapped = map_window(r, r->pos, 0) == 0;
    if (r->mapped) return r;
  }
  r->cap = 1 << 20;
  r->buf = malloc(r->cap);
  if (!r->buf) {
    free(r);
    return NULL;
  }
  return r;
}

void myelin_reader_free(myelin_reader *r) {
  if (!r) return;
  msg_backing_unref(r->win ? &r->win->bk : NULL);
  free(r->buf);
  free(r);
}

uint64_t myelin_reader_offset(const myelin_reader *r) { return r->mapped ? r->pos : r->base + r->off; }

void myelin_reader_rewind(myelin_reader *r) {
  if (r->mapped) {
    r->pos = r->start;
    return;
  }
  rewind(r->f);
  r->len = r->off = 0;
  r->base = 0;
  r->eof = 0;
}

/* The error text of a failed decode at byte offset `at`. */
static int report(int rc, uint64_t at, size_t trailing, const char *why, char *err, size_t errlen) {
  if (rc == MYELIN_EAGAIN) {
    snprintf(err, errlen, "truncated message at byte offset %" PRIu64 " (%zu trailing bytes)", at, trailing);
    return MYELIN_EFORMAT;
  }
  if (rc == MYELIN_ENOMEM)
    snprintf(err, errlen, "out of memory reading the message at byte offset %" PRIu64, at);
  else
    snprintf(err, errlen, "corrupt message at byte offset %" PRIu64 ": %s", at, why);
  return rc;
}

static int next_mapped(myelin_reader *r, myelin_msg **out, char *err, size_t errlen) {
  if (r->pos >= r->size) return 0;
  for (;;) {
    window *w = r->win;
    if (r->pos < w->off || r->pos >= w->off + w->len) { /* rewound, or past the window */
      if (map_window(r, r->pos, 0)) return report(MYELIN_ENOMEM, r->pos, 0, "", err, errlen);
      continue;
    }
    size_t in = (size_t)(r->pos - w->off), avail = w->len - in;
    size_t used = 0;
    char why[256] = "";
    int rc =
        msg_decode_in(w->base + in, avail, r->max_bytes, &w->bk, BORROW_MIN, out, &used, why, sizeof why);
    if (rc == 0) {
      r->pos += used;
      return 1;
    }
    if (rc == MYELIN_EAGAIN && w->off + w->len < r->size) { /* the message runs past the window */
      if (map_window(r, r->pos, avail * 2)) return report(MYELIN_ENOMEM, r->pos, 0, "", err, errlen);
      continue;
    }
    return report(rc, r->pos, (size_t)(r->size - r->pos), why, err, errlen);
  }
}

/* Moves the unread bytes to the front and reads more after them. */
static void refill(myelin_reader *r) {
  memmove(r->buf, r->buf + r->off, r->len - r->off);
  r->base += r->off;
  r->len -= r->off;
  r->off = 0;
  size_t n = fread(r->buf + r->len, 1, r->cap - r->len, r->f);
  r->len += n;
  if (n == 0) r->eof = 1;
}

int myelin_reader_next(myelin_reader *r, myelin_msg **out, char *err, size_t errlen) {
  *out = NULL;
  if (r->mapped) return next_mapped(r, out, err, errlen);
  if (!r->eof && r->len - r->off < r->cap / 4) refill(r);
  for (;;) {
    if (r->off == r->len && r->eof) return 0;
    size_t used = 0;
    char why[256] = "";
    int rc = myelin_msg_decode(r->buf + r->off, r->len - r->off, r->max_bytes, out, &used, why, sizeof why);
    if (rc == 0) {
      r->off += used;
      return 1;
    }
    uint64_t at = myelin_reader_offset(r);
    if (rc == MYELIN_EAGAIN && !r->eof) {
      if (r->len - r->off == r->cap) { /* the message alone fills the window */
        uint8_t *nb = realloc(r->buf, r->cap * 2);
        if (!nb) {
          snprintf(err, errlen, "out of memory for the message at byte offset %" PRIu64 " (over %zu bytes)",
                   at, r->cap);
          return MYELIN_ENOMEM;
        }
        r->buf = nb;
        r->cap *= 2;
      }
      refill(r);
      continue;
    }
    return report(rc, at, r->len - r->off, why, err, errlen);
  }
}
