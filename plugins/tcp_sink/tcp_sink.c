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
 * Delivery is AT-MOST-ONCE. When the consumer goes away, the message being
 * written is sent again, whole, on the next connection (the consumer drops
 * the partial copy on the dead one), but messages that the kernel had
 * already accepted for the dead connection are lost. Reconnection uses
 * capped exponential backoff; while disconnected, the stage blocks, so
 * upstream queues fill and the pipeline slows rather than dropping.
 */
#include <errno.h>
#include <netinet/tcp.h>
#include <poll.h>
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
  int64_t msgs, reconnects;
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
    for (uint64_t waited = 0; waited < backoff && !s->host->stopping(s->st); waited += 50) sleep_ms(50);
    backoff = backoff * 2 > s->backoff_max_ms ? s->backoff_max_ms : backoff * 2;
  }
  return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int tk_process(void *state, int port, myelin_msg *m) {
  (void)port;
  tsink *s = state;
  size_t len;
  const uint8_t *b = myelin_msg_bytes(m, &len);
  for (;;) {
    if (ensure_connected(s) < 0) return 0; /* stopping: the message is dropped */
    if (write_all(s->fd, b, len) == 0) break;
    s->host->log(s->st, MYELIN_LOG_WARN, "%s: consumer went away (%s); reconnecting", s->addr_s, strerror(errno));
    close(s->fd);
    s->fd = -1;
    s->reconnects++;
  }
  s->msgs++;
  return 0;
}

static int tk_flush(void *state) {
  tsink *s = state;
  if (s->fd >= 0) shutdown(s->fd, SHUT_WR);
  s->host->counter_add(s->st, "messages", s->msgs);
  s->host->counter_add(s->st, "reconnects", s->reconnects);
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
  const char *l = myelin_param_str(p, "listen"), *c = myelin_param_str(p, "connect"), *u = myelin_param_str(p, "unix");
  s->mode = *l ? MODE_LISTEN : *c ? MODE_CONNECT : MODE_UNIX;
  s->addr_s = *l ? l : *c ? c : u;
  s->backoff_max_ms = (uint64_t)myelin_param_int(p, "backoff_max_ms");
  char err[256];
  if (s->mode != MODE_UNIX && netaddr_parse(s->addr_s, &s->addr, &s->addr_len, err, sizeof err)) {
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
  free(s);
}

static const myelin_param_def tk_params[] = {
    {.name = "connect", .type = MYELIN_PARAM_STRING, .def = "",
     .doc = "host:port of the consumer to dial (host defaults to 127.0.0.1); reconnects after a disconnect."},
    {.name = "listen", .type = MYELIN_PARAM_STRING, .def = "", .doc = "host:port to wait on for one consumer at a time."},
    {.name = "unix", .type = MYELIN_PARAM_STRING, .def = "", .doc = "Path of a Unix-domain socket to dial."},
    {.name = "backoff_max_ms", .type = MYELIN_PARAM_INT, .def = "5000", .has_range = 1, .min = 100, .max = 600000,
     .unit = "ms", .doc = "The reconnect delay doubles from 100 ms up to this."},
    {0}};

static const myelin_port_def tk_inputs[] = {{.name = "in", .kinds = "*", .doc = "any message"}, {0}};

static const myelin_plugin_desc tk_desc = {
    MYELIN_DESC_HEADER,
    .name = "tcp_sink",
    .version = "1.0.0",
    .summary = "write messages to a TCP or Unix socket (at-most-once, backpressured)",
    .doc = "Delivery guarantee: AT-MOST-ONCE. Each message is written whole with blocking writes, so a "
           "slow consumer backpressures the pipeline. If the consumer disconnects, the message being "
           "written is re-sent whole after reconnecting (capped exponential backoff), but messages the "
           "kernel had already accepted for the dead connection are lost.",
    .params = tk_params,
    .inputs = tk_inputs,
    .validate = tk_validate,
    .init = tk_init,
    .process = tk_process,
    .flush = tk_flush,
    .fini = tk_fini,
};

MYELIN_PLUGIN(tk_desc)
