/*
 * tcp_stream.c — receive buffer and message cutter of tcp_source.
 *
 * Bytes are read straight into the buffer's free tail. After each read,
 * myelin_msg_decode measures the message at the front by its headers alone
 * (a length field is checked against max_bytes before any allocation), so a
 * partial message costs nothing but its bytes; a complete one is copied once
 * into its own message. Consumed bytes are dropped lazily: the buffer is
 * compacted only when the free tail gets smaller than one read chunk, and
 * grows (doubling) only when a single message needs more room.
 */
#include "tcp_stream.h"

#include <stdlib.h>
#include <string.h>

uint8_t *tcp_stream_space(tcp_stream *s, size_t *avail) {
  if (s->off > 0 && s->off == s->len) s->off = s->len = 0;
  if (s->cap - s->len < TCP_STREAM_CHUNK && s->off > 0) { /* compact */
    memmove(s->buf, s->buf + s->off, s->len - s->off);
    s->len -= s->off;
    s->off = 0;
  }
  if (s->cap - s->len < TCP_STREAM_CHUNK) {
    size_t ncap = s->cap ? s->cap * 2 : 4 * TCP_STREAM_CHUNK;
    while (ncap - s->len < TCP_STREAM_CHUNK) ncap *= 2;
    uint8_t *nb = realloc(s->buf, ncap);
    if (!nb) {
      *avail = 0;
      return NULL;
    }
    s->buf = nb;
    s->cap = ncap;
  }
  *avail = s->cap - s->len;
  return s->buf + s->len;
}

int tcp_stream_feed(tcp_stream *s, size_t n, size_t max_bytes, tcp_stream_emit_fn emit, void *ctx,
                    char *err, size_t errlen) {
  s->len += n;
  while (s->off < s->len) {
    myelin_msg *m = NULL;
    size_t used = 0;
    int rc = myelin_msg_decode(s->buf + s->off, s->len - s->off, max_bytes, &m, &used, err, errlen);
    if (rc == MYELIN_EAGAIN) return 0;
    if (rc < 0) return rc;
    s->off += used;
    if (emit(ctx, m)) return 1;
  }
  return 0;
}

size_t tcp_stream_pending(const tcp_stream *s) { return s->len - s->off; }

void tcp_stream_free(tcp_stream *s) {
  free(s->buf);
  s->buf = NULL;
  s->len = s->cap = s->off = 0;
}
