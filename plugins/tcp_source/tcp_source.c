/*
 * tcp_source — live streams of msgpack messages from sockets.
 *
 * Modes (exactly one): `listen: host:port` accepts any number of producers
 * at once; `connect: host:port` dials a producer and reconnects with capped
 * exponential backoff; `unix: path` listens on a Unix-domain socket. Every
 * socket lives on the stage's libuv loop. Bytes are read straight into the
 * connection's buffer (libuv's alloc callback hands out its free tail), and
 * the streaming decoder measures each message's extent by its headers
 * alone, so a length field is checked against `max_message_bytes` before any
 * allocation for it: a 1 GiB claim costs nothing. Each complete message is
 * copied once, into its own aligned, immutable block, and emitted.
 *
 * A malformed or oversized message closes only that connection, with a
 * logged error and the `rejected` counter; the pipeline and the other
 * producers go on. `eos_on_disconnect` ends the stream when the last
 * producer leaves (for listen modes: after at least one came); otherwise the
 * source runs until interrupted. Emitting blocks under backpressure, which
 * pauses reading and lets TCP flow control slow the producers.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "../common/netaddr.h"
#include "myelin/plugin.h"
#include "tcp_stream.h"

typedef union anystream {
  uv_handle_t handle;
  uv_stream_t stream;
  uv_tcp_t tcp;
  uv_pipe_t pipe;
} anystream;

typedef struct conn {
  struct tsrc *src;
  anystream h;
  tcp_stream in;
  uint64_t id;
  struct conn *next;
} conn;

enum { MODE_LISTEN, MODE_CONNECT, MODE_UNIX };

typedef struct tsrc {
  const myelin_host *host;
  myelin_stage *st;
  int mode;
  const char *addr_s;
  struct sockaddr_storage addr;
  socklen_t addr_len;
  size_t max_bytes;
  int eos_on_disconnect, had_producer, stopping, server_open, timer_open;
  uint64_t backoff_ms, backoff_max_ms, next_id;
  anystream server;
  uv_timer_t retry;
  uv_connect_t creq;
  conn *conns;
  int64_t msgs, rejected, connections;
} tsrc;

static void server_close(tsrc *s);
static void schedule_reconnect(tsrc *s);

static void conn_closed(uv_handle_t *h) {
  conn *c = h->data;
  tsrc *s = c->src;
  for (conn **pp = &s->conns; *pp; pp = &(*pp)->next)
    if (*pp == c) {
      *pp = c->next;
      break;
    }
  tcp_stream_free(&c->in);
  free(c);
  if (s->stopping) return;
  if (s->mode == MODE_CONNECT) {
    if (s->eos_on_disconnect) s->stopping = 1, server_close(s);
    else schedule_reconnect(s);
  } else if (s->eos_on_disconnect && s->had_producer && !s->conns) {
    s->stopping = 1;
    server_close(s);
  }
}

static void conn_close(conn *c) {
  if (!uv_is_closing(&c->h.handle)) uv_close(&c->h.handle, conn_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
  (void)suggested;
  conn *c = h->data;
  size_t avail = 0;
  b->base = (char *)tcp_stream_space(&c->in, &avail);
  b->len = avail; /* NULL, 0 on out-of-memory: libuv reports UV_ENOBUFS to on_read */
}

static void reject(conn *c, const char *why) {
  tsrc *s = c->src;
  s->rejected++;
  s->host->counter_add(s->st, "rejected", 1);
  s->host->log(s->st, MYELIN_LOG_ERROR, "connection %llu: %s; closing that connection",
               (unsigned long long)c->id, why);
  uv_read_stop(&c->h.stream);
  conn_close(c);
}

static int on_message(void *ctx, myelin_msg *m) {
  tsrc *s = ctx;
  s->msgs++;
  if (s->host->emit(s->st, 0, m) == MYELIN_ESTOP) {
    s->stopping = 1;
    server_close(s);
    return 1;
  }
  return s->stopping;
}

static void on_read(uv_stream_t *h, ssize_t n, const uv_buf_t *b) {
  (void)b;
  conn *c = h->data;
  tsrc *s = c->src;
  if (n < 0) {
    size_t pending = tcp_stream_pending(&c->in);
    if (n != UV_EOF) s->host->log(s->st, MYELIN_LOG_WARN, "connection %llu: %s", (unsigned long long)c->id, uv_strerror((int)n));
    else if (pending)
      s->host->log(s->st, MYELIN_LOG_WARN, "connection %llu closed in the middle of a message (%zu bytes dropped)",
                   (unsigned long long)c->id, pending);
    conn_close(c);
    return;
  }
  if (s->stopping) return;
  char err[256];
  if (tcp_stream_feed(&c->in, (size_t)n, s->max_bytes, on_message, s, err, sizeof err) < 0) reject(c, err);
}

static conn *conn_new(tsrc *s) {
  conn *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->src = s;
  c->id = ++s->next_id;
  c->h.handle.data = c;
  c->next = s->conns;
  s->conns = c;
  return c;
}

static void on_connection(uv_stream_t *server, int status) {
  tsrc *s = server->data;
  if (status < 0 || s->stopping) return;
  conn *c = conn_new(s);
  if (!c) return;
  if (s->mode == MODE_UNIX) uv_pipe_init(server->loop, &c->h.pipe, 0);
  else uv_tcp_init(server->loop, &c->h.tcp);
  if (uv_accept(server, &c->h.stream) != 0) {
    conn_close(c);
    return;
  }
  if (s->mode != MODE_UNIX) uv_tcp_nodelay(&c->h.tcp, 1);
  int big = 4 << 20; /* fewer wake-ups for large tensors */
  uv_recv_buffer_size(&c->h.handle, &big);
  s->had_producer = 1;
  s->connections++;
  s->host->counter_add(s->st, "connections", 1);
  uv_read_start(&c->h.stream, on_alloc, on_read);
}

static void on_connect(uv_connect_t *req, int status) {
  conn *c = req->data;
  tsrc *s = c->src;
  if (status < 0) {
    if (!s->stopping)
      s->host->log(s->st, MYELIN_LOG_DEBUG, "connect %s: %s; retrying in %llu ms", s->addr_s, uv_strerror(status),
                   (unsigned long long)s->backoff_ms);
    conn_close(c); /* schedules the retry */
    return;
  }
  s->backoff_ms = 100;
  s->had_producer = 1;
  s->connections++;
  s->host->counter_add(s->st, "connections", 1);
  uv_tcp_nodelay(&c->h.tcp, 1);
  uv_read_start(&c->h.stream, on_alloc, on_read);
}

static void dial(tsrc *s) {
  conn *c = conn_new(s);
  if (!c) return;
  uv_tcp_init(s->host->loop(s->st), &c->h.tcp);
  s->creq.data = c;
  int rc = uv_tcp_connect(&s->creq, &c->h.tcp, (const struct sockaddr *)&s->addr, on_connect);
  if (rc) conn_close(c);
}

static void on_retry(uv_timer_t *t) { dial(t->data); }

static void schedule_reconnect(tsrc *s) {
  if (s->stopping || !s->timer_open) return;
  uv_timer_start(&s->retry, on_retry, s->backoff_ms, 0);
  s->backoff_ms = s->backoff_ms * 2 > s->backoff_max_ms ? s->backoff_max_ms : s->backoff_ms * 2;
}

static void server_close(tsrc *s) {
  if (s->server_open && !uv_is_closing(&s->server.handle)) uv_close(&s->server.handle, NULL);
  s->server_open = 0;
  if (s->timer_open && !uv_is_closing((uv_handle_t *)&s->retry)) uv_close((uv_handle_t *)&s->retry, NULL);
  s->timer_open = 0;
  if (s->stopping)
    for (conn *c = s->conns; c; c = c->next) conn_close(c);
}

static int ts_start(void *state) {
  tsrc *s = state;
  uv_loop_t *loop = s->host->loop(s->st);
  if (!loop) return s->host->error(s->st, "cannot create the event loop");
  s->server.handle.data = s;
  int rc;
  if (s->mode == MODE_CONNECT) {
    uv_timer_init(loop, &s->retry);
    s->retry.data = s;
    s->timer_open = 1;
    s->backoff_ms = 100;
    dial(s);
    return 0;
  }
  if (s->mode == MODE_UNIX) {
    uv_pipe_init(loop, &s->server.pipe, 0);
    unlink(s->addr_s); /* a stale socket file from an earlier run */
    rc = uv_pipe_bind(&s->server.pipe, s->addr_s);
  } else {
    uv_tcp_init(loop, &s->server.tcp);
    rc = uv_tcp_bind(&s->server.tcp, (const struct sockaddr *)&s->addr, 0);
  }
  s->server_open = 1;
  if (rc == 0) rc = uv_listen(&s->server.stream, 128, on_connection);
  if (rc) {
    uv_close(&s->server.handle, NULL);
    s->server_open = 0;
    return s->host->error(s->st, "cannot listen on %s: %s", s->addr_s, uv_strerror(rc));
  }
  s->host->log(s->st, MYELIN_LOG_INFO, "listening on %s", s->addr_s);
  return 0;
}

static void ts_stop(void *state) {
  tsrc *s = state;
  s->stopping = 1;
  server_close(s);
}

static int ts_flush(void *state) {
  tsrc *s = state;
  s->stopping = 1;
  s->host->counter_add(s->st, "messages", s->msgs);
  return 0;
}

static int ts_validate(const myelin_params *p, myelin_validate_ctx *ctx) { return netaddr_validate(p, ctx); }

static int ts_init(const myelin_host *host, myelin_stage *st, const myelin_params *p, void **state) {
  tsrc *s = calloc(1, sizeof *s);
  if (!s) return MYELIN_ENOMEM;
  s->host = host;
  s->st = st;
  *state = s;
  const char *l = myelin_param_str(p, "listen"), *c = myelin_param_str(p, "connect"), *u = myelin_param_str(p, "unix");
  s->mode = *l ? MODE_LISTEN : *c ? MODE_CONNECT : MODE_UNIX;
  s->addr_s = *l ? l : *c ? c : u;
  s->max_bytes = (size_t)myelin_param_int(p, "max_message_bytes");
  s->eos_on_disconnect = myelin_param_bool(p, "eos_on_disconnect");
  s->backoff_max_ms = (uint64_t)myelin_param_int(p, "backoff_max_ms");
  char err[256];
  if (s->mode != MODE_UNIX && netaddr_parse(s->addr_s, &s->addr, &s->addr_len, err, sizeof err)) {
    free(s); /* fini runs only after a successful init */
    *state = NULL;
    return host->error(st, "%s", err);
  }
  return 0;
}

static void ts_fini(void *state) {
  tsrc *s = state;
  /* the runtime closed every handle and ran the loop before fini */
  while (s->conns) {
    conn *c = s->conns;
    s->conns = c->next;
    tcp_stream_free(&c->in);
    free(c);
  }
  if (s->mode == MODE_UNIX && s->addr_s) unlink(s->addr_s);
  free(s);
}

static const myelin_param_def ts_params[] = {
    {.name = "listen", .type = MYELIN_PARAM_STRING, .def = "",
     .doc = "host:port to accept producers on (host defaults to 127.0.0.1; 0.0.0.0 for every interface)."},
    {.name = "connect", .type = MYELIN_PARAM_STRING, .def = "",
     .doc = "host:port of a producer to dial; reconnects with capped exponential backoff."},
    {.name = "unix", .type = MYELIN_PARAM_STRING, .def = "", .doc = "Path of a Unix-domain socket to listen on."},
    {.name = "max_message_bytes", .type = MYELIN_PARAM_INT, .def = "268435456", .has_range = 1, .min = 64,
     .max = 4294967295.0, .unit = "bytes",
     .doc = "Largest message accepted; checked from the headers before allocating. A larger one closes "
            "that connection."},
    {.name = "eos_on_disconnect", .type = MYELIN_PARAM_BOOL, .def = "false",
     .doc = "End the stream when the last producer disconnects (else run until interrupted)."},
    {.name = "backoff_max_ms", .type = MYELIN_PARAM_INT, .def = "5000", .has_range = 1, .min = 100, .max = 600000,
     .unit = "ms", .doc = "connect mode: the reconnect delay doubles from 100 ms up to this."},
    {0}};

static const myelin_port_def ts_outputs[] = {
    {.name = "out", .kinds = "*", .doc = "every well-formed message, in order per connection"}, {0}};

static const myelin_plugin_desc ts_desc = {
    MYELIN_DESC_HEADER,
    .name = "tcp_source",
    .version = "1.0.0",
    .summary = "live msgpack message streams from TCP or Unix sockets (listen or connect)",
    .doc = "Messages are msgpack maps as in DESIGN.md section 4, concatenated on the stream with no "
           "framing. Order is kept per connection; connections interleave in arrival order. A "
           "malformed or oversized message closes its connection only (counter `rejected`).",
    .params = ts_params,
    .outputs = ts_outputs,
    .validate = ts_validate,
    .init = ts_init,
    .start = ts_start,
    .stop = ts_stop,
    .flush = ts_flush,
    .fini = ts_fini,
};

MYELIN_PLUGIN(ts_desc)
