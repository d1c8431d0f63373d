/*
 * reader.c — stream files (.mpk) read message by message (io.h).
 *
 * A 1 MiB window slides over the file: it is refilled when less than a
 * quarter remains, and when a message is only partly in it, the partial
 * message is moved to the front first and the window doubles only if the
 * message alone fills it. So files of any size stream in constant memory,
 * and one message costs one copy (decode's, into its own aligned block).
 * Every error names the byte offset of the message it concerns.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "myelin/io.h"

struct myelin_reader {
  FILE *f;
  size_t max_bytes;
  uint8_t *buf;
  size_t cap, len, off;
  uint64_t base; /* file offset of buf[0] */
  int eof;
};

myelin_reader *myelin_reader_new(FILE *f, size_t max_bytes) {
  myelin_reader *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->cap = 1 << 20;
  r->buf = malloc(r->cap);
  if (!r->buf) {
    free(r);
    return NULL;
  }
  r->f = f;
  r->max_bytes = max_bytes;
  return r;
}

void myelin_reader_free(myelin_reader *r) {
  if (!r) return;
  free(r->buf);
  free(r);
}

uint64_t myelin_reader_offset(const myelin_reader *r) { return r->base + r->off; }

void myelin_reader_rewind(myelin_reader *r) {
  rewind(r->f);
  r->len = r->off = 0;
  r->base = 0;
  r->eof = 0;
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
          snprintf(err, errlen, "out of memory for the message at byte offset %" PRIu64 " (over %zu bytes)", at, r->cap);
          return MYELIN_ENOMEM;
        }
        r->buf = nb;
        r->cap *= 2;
      }
      refill(r);
      continue;
    }
    if (rc == MYELIN_EAGAIN) {
      snprintf(err, errlen, "truncated message at byte offset %" PRIu64 " (%zu trailing bytes)", at, r->len - r->off);
      return MYELIN_EFORMAT;
    }
    if (rc == MYELIN_ENOMEM) {
      snprintf(err, errlen, "out of memory reading the message at byte offset %" PRIu64, at);
      return rc;
    }
    snprintf(err, errlen, "corrupt message at byte offset %" PRIu64 ": %s", at, why);
    return rc;
  }
}
