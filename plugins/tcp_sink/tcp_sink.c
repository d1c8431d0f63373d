/*
 * tcp_sink — writes every message to a socket, for consumers outside the
 * pipeline (another pipeline's tcp_source, a Python script).
 *
 * Modes (exactly one): `connect: host:port` dials the consumer; `listen:
 * host:port` waits for a consumer to connect; `unix: path` dials a
 * Unix-domain socket. Writes are blocking on the stage's own thread, so a
 * slow consumer fills the kernel's socket buffer, then blocks this stage,
 * then — through the bounded queues — its producers: no unbounded buffer
 * anywhere.
 *
 * Batching. One send() per small message costs a system call and a TCP
 * segment each (TCP_NODELAY), which caps small-message relays near 100 k
 * messages/s. So while host->pending() (ABI 1.1) says more input is already
 * queued behind the current message, its bytes are appended to an outgoing
 * buffer of `batch_bytes` instead; the buffer goes out in one send() as
 * soon as pending() is 0 — the stage would otherwise block waiting for
 * input, so a slow stream is never delayed — when the next message would
 * not fit, and in flush. A message of `batch_bytes` or more is sent from
 * its own memory, without copying, after the buffer. On a 1.0 host (no
 * pending) every message is sent at once, as before.
 *
 * Delivery is AT-MOST-ONCE. When the consumer goes away, the message being
 * written is sent again, whole, on the next connection (the consumer drops
 * the partial copy on the dead one), but messages that the kernel had
 * already accepted for the dead connection are lost. A batch keeps exactly
 * this: the buffer records where each message ends, so after a failed send
 * the messages wholly accepted by the kernel are dropped with the dead
 * connection, the one partly written is resent from its first byte, and
 * the rest follow — never a message twice, never a partial one on the new
 * connection. Reconnection uses capped exponential backoff; while
 * disconnected, the stage blocks, so upstream queues fill and the pipeline
 * slows rather than dropping.
 */
#include <errno.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../common/netaddr.h"
#include "myelin/plugin.h"

enum { MODE_LISTEN, MODE_CONNECT, MODE_UNIX };

typedef struct tsink {
  const myelin_host *host;
  myelin_stage *st;
  int mode;
  const char *addr_s;
  struct sockaddr_storage addr;
  socklen_t addr_len;
  int lfd, fd;
  uint64_t backoff_max_ms;
  int has_pending; /* the host has pending() (ABI >= 1.1) */
  uint8_t *buf;    /* the batch: whole encoded messages, back to back */
  size_t len, cap; /* bytes held; cap = batch_bytes */
  size_t *ends;    /* ends[i]: offset just past message i in buf */
  size_t nb, ends_cap;
  int64_t msgs, reconnects, sends, dropped;
} tsink;

static void sleep_ms(uint64_t ms) {
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Blocks until a consumer is connected; -1 when the run is stopping. */
static int ensure_connected(tsink *s) {
  uint64_t backoff = 100;
  while (s->fd < 0) {
    if (s->host->stopping(s->st)) return -1;
    if (s->mode == MODE_LISTEN) {
      struct pollfd pfd = {s->lfd, POLLIN, 0};
      if (poll(&pfd, 1, 200) > 0) {
        s->fd = accept(s->lfd, NULL, NULL);
        if (s->fd >= 0) {
          int one = 1;
          setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
      }
      continue;
    }
    int fd = socket(s->mode == MODE_UNIX ? AF_UNIX : s->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int rc;
    if (s->mode == MODE_UNIX) {
      struct sockaddr_un un = {.sun_family = AF_UNIX};
      snprintf(un.sun_path, sizeof un.sun_path, "%s", s->addr_s);
      rc = connect(fd, (struct sockaddr *)&un, sizeof un);
    } else {
      rc = connect(fd, (struct sockaddr *)&s->addr, s->addr_len);
    }
    if (rc == 0) {
      int one = 1, big = 4 << 20;
      if (s->mode != MODE_UNIX) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big); /* fewer wake-ups for large tensors */
      s->fd = fd;
      break;
    }
    close(fd);
    for (uint64_t waited = 0; waited < backoff && !s->host->stopping(s->st); waited += 50)
      sleep_ms(50);
    backoff = backoff * 2 > s->backoff_max_ms ? s->backoff_max_ms : backoff * 2;
  }
  return 0;
}

static void drop_connection(tsink *s) {
  s->host->log(s->st, MYELIN_LOG_WARN, "%s: consumer went away (%s); reconnecting", s->addr_s,
               strerror(errno));
  close(s->fd);
  s->fd = -1;
  s->reconnects++;
}

/* Sends p[0..len), nb whole messages ending at ends[], reconnecting as
 * needed. After a failure, the messages the kernel had wholly accepted are
 * gone with the connection; sending resumes at the first byte of the first
 * message that was not (the partly written one). Returns -1 when the run is
 * stopping: what was not accepted yet is dropped. */
static int send_msgs(tsink *s, const uint8_t *p, size_t len, const size_t *ends, size_t nb) {
  size_t off = 0, first = 0; /* first: the first message not wholly accepted */
  while (off < len) {
    if (ensure_connected(s) < 0) {
      s->msgs += (int64_t)first;
      s->dropped += (int64_t)(nb - first);
      return -1;
    }
    ssize_t w = send(s->fd, p + off, len - off, MSG_NOSIGNAL);
    if (w > 0) {
      s->sends++;
      off += (size_t)w;
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w == 0) errno = EPIPE;
    drop_connection(s);
    while (first < nb && ends[first] <= off)
      first++;
    off = first ? ends[first - 1] : 0;
  }
  s->msgs += (int64_t)nb;
  return 0;
}

/* Sends the batch and empties it. */
static int send_batch(tsink *s) {
  if (!s->nb) return 0;
  int rc = send_msgs(s, s->buf, s->len, s->ends, s->nb);
  s->len = s->nb = 0;
  return rc;
}

static int append(tsink *s, const uint8_t *b, size_t len) {
  if (s->nb == s->ends_cap) {
    size_t ncap = s->ends_cap ? 2 * s->ends_cap : 256;
    size_t *ne = realloc(s->ends, ncap * sizeof *ne);
    if (!ne) return s->host->error(s->st, "out of memory for the batch of %zu messages", s->nb);
    s->ends = ne;
    s->ends_cap = ncap;
  }
  memcpy(s->buf + s->len, b, len);
  s->len += len;
  s->ends[s->nb++] = s->len;
  return 0;
}

static size_t pending(const tsink *s) { return s->has_pending ? s->host->pending(s->st) : 0; }

static int tk_process(void *state, int port, myelin_msg *m) {
  (void)port;
  tsink *s = state;
  size_t len;
  const uint8_t *b = myelin_msg_bytes(m, &len);
  if (len >= s->cap) { /* large: after the batch, from its own memory */
    size_t end = len;
    send_batch(s);
    send_msgs(s, b, len, &end, 1);
    return 0; /* stopping: the message is dropped */
  }
  if (s->len + len > s->cap) send_batch(s);
  int rc = append(s, b, len);
  if (rc < 0) return rc;
  if (pending(s) == 0) send_batch(s); /* nothing queued behind: do not wait */
  return 0;
}

static int tk_flush(void *state) {
  tsink *s = state;
  send_batch(s);
  if (s->fd >= 0) shutdown(s->fd, SHUT_WR);
  s->host->counter_add(s->st, "messages", s->msgs);
  s->host->counter_add(s->st, "reconnects", s->reconnects);
  s->host->counter_add(s->st, "sends", s->sends);
  if (s->dropped) s->host->counter_add(s->st, "dropped", s->dropped);
  return 0;
}

static int tk_validate(const myelin_params *p, myelin_validate_ctx *ctx) { return netaddr_validate(p, ctx); }

static int tk_init(const myelin_host *host, myelin_stage *st, const myelin_params *p, void **state) {
  tsink *s = calloc(1, sizeof *s);
  if (!s) return MYELIN_ENOMEM;
  s->host = host;
  s->st = st;
  s->lfd = s->fd = -1;
  *state = s;
  const char *l = myelin_param_str(p, "listen"), *c = myelin_param_str(p, "connect"),
             *u = myelin_param_str(p, "unix");
  s->mode = *l ? MODE_LISTEN : *c ? MODE_CONNECT : MODE_UNIX;
  s->addr_s = *l ? l : *c ? c : u;
  s->backoff_max_ms = (uint64_t)myelin_param_int(p, "backoff_max_ms");
  s->cap = (size_t)myelin_param_int(p, "batch_bytes");
  s->has_pending = host->struct_size > offsetof(myelin_host, pending) && host->pending;
  if (s->cap && !(s->buf = malloc(s->cap))) {
    free(s);
    *state = NULL;
    return host->error(st, "out of memory for a batch of %zu bytes",
                       (size_t)myelin_param_int(p, "batch_bytes"));
  }
  char err[256];
  if (s->mode != MODE_UNIX && netaddr_parse(s->addr_s, &s->addr, &s->addr_len, err, sizeof err)) {
    free(s->buf);
    free(s); /* fini runs only after a successful init */
    *state = NULL;
    return host->error(st, "%s", err);
  }
  if (s->mode == MODE_LISTEN) {
    s->lfd = socket(s->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&s->addr, s->addr_len) || listen(s->lfd, 4)) {
      int e = errno;
      if (s->lfd >= 0) close(s->lfd);
      free(s->buf);
      free(s);
      *state = NULL;
      return host->error(st, "cannot listen on %s: %s", myelin_param_str(p, "listen"), strerror(e));
    }
  }
  return 0;
}

static void tk_fini(void *state) {
  tsink *s = state;
  if (s->fd >= 0) close(s->fd);
  if (s->lfd >= 0) close(s->lfd);
  free(s->buf);
  free(s->ends);
  free(s);
}

static const myelin_param_def tk_params[] = {
    {.name = "connect",
     .type = MYELIN_PARAM_STRING,
     .def = "",
     .doc = "host:port of the consumer to dial (host defaults to 127.0.0.1); reconnects after a disconnect."},
    {.name = "listen",
     .type = MYELIN_PARAM_STRING,
     .def = "",
     .doc = "host:port to wait on for one consumer at a time."},
    {.name = "unix", .type = MYELIN_PARAM_STRING, .def = "", .doc = "Path of a Unix-domain socket to dial."},
    {.name = "backoff_max_ms",
     .type = MYELIN_PARAM_INT,
     .def = "5000",
     .has_range = 1,
     .min = 100,
     .max = 600000,
     .unit = "ms",
     .doc = "The reconnect delay doubles from 100 ms up to this."},
    {.name = "batch_bytes",
     .type = MYELIN_PARAM_INT,
     .def = "262144",
     .has_range = 1,
     .min = 0,
     .max = 67108864,
     .unit = "bytes",
     .doc =
         "Outgoing buffer: while more input is already queued (host->pending), messages smaller than "
         "this are gathered and sent together; the buffer is sent as soon as nothing is queued, so a "
         "slow stream is not delayed. Larger messages are sent directly. 0 sends every message on its own."},
    {0}};

static const myelin_port_def tk_inputs[] = {{.name = "in", .kinds = "*", .doc = "any message"}, {0}};

static const myelin_plugin_desc tk_desc = {
    MYELIN_DESC_HEADER,
    .name = "tcp_sink",
    .version = "1.1.0",
    .summary = "write messages to a TCP or Unix socket (at-most-once, backpressured)",
    .doc = "Delivery guarantee: AT-MOST-ONCE. Each message is written whole with blocking writes, so a "
           "slow consumer backpressures the pipeline. If the consumer disconnects, the message being "
           "written is re-sent whole after reconnecting (capped exponential backoff), but messages the "
           "kernel had already accepted for the dead connection are lost. Small messages already queued "
           "behind one another are sent together (batch_bytes); the batch keeps the same guarantee, and "
           "goes out as soon as nothing more is queued. Counters: messages, sends, reconnects, dropped "
           "(stopped while disconnected).",
    .params = tk_params,
    .inputs = tk_inputs,
    .validate = tk_validate,
    .init = tk_init,
    .process = tk_process,
    .flush = tk_flush,
    .fini = tk_fini,
};

MYELIN_PLUGIN(tk_desc)
