/*
 * writer.c — stream files (.mpk) written message by message (io.h).
 *
 * Large messages are written from their own bytes with writev: no staging
 * copy, the bytes go from the message (a builder's block or a mapped input
 * file) straight to the kernel. Small ones (under COPY_MAX) are gathered in a
 * 1 MiB buffer first, as stdio would, so a stream of 100-byte messages does
 * not cost one system call each; the gathered bytes ride along as the first
 * iovec of the next large message's writev.
 *
 * Alignment in the file. The builder places every tensor payload of 4 KiB
 * or more on a multiple of 64 bytes *of the message*, with a "_pad" entry in
 * its tensor map. Messages are concatenated in a file, so a message starts
 * wherever the previous one ended; the writer re-sizes each pad (0..63
 * bytes, msg_pads in msg.c finds them) so that the payload lands on a
 * multiple of 64 *of the file*. A reader that maps the file (reader.c) then
 * hands out those payloads in place, aligned. Readers skip "_pad", so the
 * message means the same; its bytes differ only in the pads' lengths, and a
 * message read back from the file is written again at the same offset with
 * the same bytes (a replay -> record round trip is byte-identical).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "internal.h"
#include "myelin/io.h"

#define GATHER_CAP ((size_t)1 << 20)
#define COPY_MAX ((size_t)64 << 10) /* messages below this are gathered */
#define FILE_ALIGN 64

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

typedef struct pad_bytes {
  uint8_t b[FILE_ALIGN]; /* the new bin8 length, then zeros */
} pad_bytes;

struct myelin_writer {
  int fd;
  uint64_t off; /* file offset of buf[0] */
  uint8_t *buf; /* gathered small messages */
  size_t len;
  msg_pad *pads;
  pad_bytes *padb;
  size_t pads_cap;
  struct iovec *iov;
  size_t iov_cap;
};

myelin_writer *myelin_writer_new(int fd) {
  myelin_writer *w = calloc(1, sizeof *w);
  if (!w) return NULL;
  w->buf = malloc(GATHER_CAP);
  if (!w->buf) {
    free(w);
    return NULL;
  }
  w->fd = fd;
  off_t at = lseek(fd, 0, SEEK_CUR);
  w->off = at > 0 ? (uint64_t)at : 0; /* a pipe has no offset: alignment is moot there */
  return w;
}

void myelin_writer_free(myelin_writer *w) {
  if (!w) return;
  free(w->buf);
  free(w->pads);
  free(w->padb);
  free(w->iov);
  free(w);
}

uint64_t myelin_writer_offset(const myelin_writer *w) { return w->off + w->len; }

/* Writes every iovec (partial writes resume; iov is consumed). */
static int write_all(myelin_writer *w, struct iovec *iov, size_t n, char *err, size_t errlen) {
  while (n && iov->iov_len == 0)
    iov++, n--;
  while (n) {
    ssize_t r = writev(w->fd, iov, n > IOV_MAX ? IOV_MAX : (int)n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      snprintf(err, errlen, "write failed at byte offset %llu: %s", (unsigned long long)w->off,
               r < 0 ? strerror(errno) : "no progress");
      return MYELIN_EIO;
    }
    size_t done = (size_t)r;
    while (n && done >= iov->iov_len)
      done -= iov->iov_len, iov++, n--;
    if (n) {
      iov->iov_base = (uint8_t *)iov->iov_base + done;
      iov->iov_len -= done;
    }
    while (n && iov->iov_len == 0)
      iov++, n--;
  }
  return 0;
}

int myelin_writer_flush(myelin_writer *w, char *err, size_t errlen) {
  struct iovec one = {w->buf, w->len};
  int rc = write_all(w, &one, 1, err, errlen);
  if (rc) return rc;
  w->off += w->len;
  w->len = 0;
  return 0;
}

/* Room for n pads and 2 + 2n iovecs. */
static int reserve(myelin_writer *w, size_t n) {
  if (n > w->pads_cap) {
    msg_pad *p = realloc(w->pads, n * sizeof *p);
    if (!p) return MYELIN_ENOMEM;
    w->pads = p;
    pad_bytes *b = calloc(n, sizeof *b); /* zeros after each length byte */
    if (!b) return MYELIN_ENOMEM;
    free(w->padb);
    w->padb = b;
    w->pads_cap = n;
  }
  if (2 + 2 * n > w->iov_cap) {
    struct iovec *v = realloc(w->iov, (2 + 2 * n) * sizeof *v);
    if (!v) return MYELIN_ENOMEM;
    w->iov = v;
    w->iov_cap = 2 + 2 * n;
  }
  return 0;
}

/* m's bytes as they land at file offset `at`, with re-sized pads, as iovecs
 * from w->iov[1]; returns their count (or a negative code) and the length. */
static int segments(myelin_writer *w, const myelin_msg *m, uint64_t at, size_t *total) {
  size_t len;
  const uint8_t *b = myelin_msg_bytes(m, &len);
  size_t np = msg_pads(m, w->pads, w->pads_cap);
  if (np > w->pads_cap) {
    if (reserve(w, np)) return MYELIN_ENOMEM;
    msg_pads(m, w->pads, w->pads_cap);
  }
  if (reserve(w, np)) return MYELIN_ENOMEM;
  struct iovec *v = w->iov + 1;
  size_t cur = 0, n = 0;
  int64_t shift = 0; /* bytes added (or removed) by the pads so far */
  for (size_t i = 0; i < np; i++) {
    const msg_pad *p = &w->pads[i];
    v[n++] = (struct iovec){(void *)(b + cur), p->hdr + 1 - cur}; /* through the bin8 type byte */
    uint64_t hdr_at = at + p->hdr + (uint64_t)shift;
    uint8_t k = (uint8_t)((FILE_ALIGN - (hdr_at + 2 + p->gap) % FILE_ALIGN) % FILE_ALIGN);
    w->padb[i].b[0] = k;
    v[n++] = (struct iovec){w->padb[i].b, 1 + (size_t)k};
    shift += (int64_t)k - p->k;
    cur = p->hdr + 2 + p->k;
  }
  v[n++] = (struct iovec){(void *)(b + cur), len - cur};
  *total = (size_t)((int64_t)len + shift);
  return (int)n;
}

int myelin_writer_put(myelin_writer *w, const myelin_msg *m, char *err, size_t errlen) {
  size_t total;
  int n = segments(w, m, myelin_writer_offset(w), &total);
  if (n < 0) {
    snprintf(err, errlen, "out of memory");
    return n;
  }
  if (total < COPY_MAX) {
    if (w->len + total > GATHER_CAP) {
      int rc = myelin_writer_flush(w, err, errlen); /* the offset stays: the iovecs hold */
      if (rc) return rc;
    }
    for (int i = 1; i <= n; i++) {
      if (w->iov[i].iov_len) memcpy(w->buf + w->len, w->iov[i].iov_base, w->iov[i].iov_len);
      w->len += w->iov[i].iov_len;
    }
    return 0;
  }
  w->iov[0] = (struct iovec){w->buf, w->len};
  int rc = write_all(w, w->iov, (size_t)n + 1, err, errlen);
  if (rc) return rc;
  w->off += w->len + total;
  w->len = 0;
  return 0;
}
