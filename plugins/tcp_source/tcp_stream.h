/*
 * tcp_stream.h — the byte-stream unpacker of tcp_source: a growable receive
 * buffer and the loop that cuts complete messages off its front.
 *
 * Kept apart from the socket code so that tests/fuzz/fuzz_tcp.c drives the
 * very same loop with arbitrary bytes in arbitrary chunk sizes.
 */
#ifndef MYELIN_TCP_STREAM_H
#define MYELIN_TCP_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "myelin/msg.h"

#define TCP_STREAM_CHUNK 65536

typedef struct tcp_stream {
  uint8_t *buf;
  size_t len, cap, off; /* buf[off..len) holds bytes not yet decoded */
} tcp_stream;

/* Called for each complete message (ownership passes); nonzero stops the loop. */
typedef int (*tcp_stream_emit_fn)(void *ctx, myelin_msg *m);

/* Free space for the next read (at least TCP_STREAM_CHUNK bytes, or NULL on
 * out-of-memory); *avail gets its size. */
uint8_t *tcp_stream_space(tcp_stream *s, size_t *avail);
/* n bytes were read into the space: emits every complete message at the
 * front. Returns 0 (all complete messages emitted, the rest waits for more
 * bytes), 1 (emit asked to stop) or a negative MYELIN_E* code with err set
 * (malformed or oversized message: the stream cannot resync). */
int tcp_stream_feed(tcp_stream *s, size_t n, size_t max_bytes, tcp_stream_emit_fn emit, void *ctx,
                    char *err, size_t errlen);
/* Bytes of an incomplete message still buffered. */
size_t tcp_stream_pending(const tcp_stream *s);
void tcp_stream_free(tcp_stream *s);

#endif
