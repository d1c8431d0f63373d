/*
 * cli_monitor.c — `myelin run --monitor [HOST:]PORT`: the live view's server
 * (monitor.h).
 *
 * Where it runs: one monitor thread with a libuv loop of its own, and
 * libwebsockets (HTTP/1.1 and WebSocket) attached to that loop as a
 * "foreign" libuv loop. The runtime has no process-wide event loop to share:
 * each I/O source stage runs its own loop on its own thread, and a stage's
 * loop must never wait for a browser. The thread samples every
 * MONITOR_PERIOD_MS (a uv timer): run_snapshot copies the counters the
 * scheduler keeps anyway, msg_tap_take takes what the taps kept. Nothing of
 * the monitor runs on a stage's thread except msg_tap_put in host->emit (a
 * kind test; a pointer swap for metrics and maps; for spikes, only while a
 * client watches them, a copy a few times per sample). Without a client
 * nothing is rendered: the tick only samples, /api/stats and /metrics render
 * when asked.
 *
 * The listening socket is ours (bind errors name the address and the
 * reason; port 0 picks a free port); each accepted connection is handed to
 * libwebsockets (lws_adopt_socket_vhost), which parses HTTP and WebSocket.
 * Served: `/` the page (embedded at build time, monitor_page.c), `/api/stats`
 * (JSON), `/metrics` (Prometheus text), and WebSocket pushes on any path:
 * {"type": "stats"} every sample, {"type": "metrics"} and {"type": "map"}
 * when they change, {"type": "spikes"} for the edge a client chose by
 * sending "spikes EDGE". A client that reads slower than the pushes come
 * loses the oldest pushes (at most PUSH_QUEUE are kept per client).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libwebsockets.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "monitor.h"

extern const unsigned char monitor_page[];
extern const size_t monitor_page_len;

#define PUSH_QUEUE 32
#define SPIKES_MAX_EVENTS 20000 /* per client push */
#define CHUNK 16384

/* A push, shared by the clients it is queued for (monitor thread only). */
typedef struct frame {
  int refs;
  size_t len;
  unsigned char buf[]; /* LWS_PRE bytes for libwebsockets, then the text */
} frame;

static frame *frame_new(char *text) { /* takes text */
  if (!text) return NULL;
  size_t n = strlen(text);
  frame *f = malloc(sizeof *f + LWS_PRE + n);
  if (f) {
    f->refs = 1;
    f->len = n;
    memcpy(f->buf + LWS_PRE, text, n);
  }
  free(text);
  return f;
}

static void frame_unref(frame *f) {
  if (f && --f->refs == 0) free(f);
}

/* One connection: an HTTP exchange or a WebSocket client. */
typedef struct session {
  struct session *next;
  struct lws *wsi;
  int ws;
  /* HTTP: the body being written */
  const unsigned char *body;
  char *owned;
  size_t len, off;
  /* WebSocket: pushes waiting for the socket */
  frame *q[PUSH_QUEUE];
  size_t qh, qn;
  int spikes_edge; /* index in edges, -1: none chosen */
} session;

struct monitor {
  const pipeline *p;
  char url[320];
  int fd;
  int loopback; /* bound to a loopback address: only loopback names may reach it */
  uv_loop_t loop;
  uv_poll_t accept_poll;
  uv_timer_t tick;
  uv_async_t wake;
  pthread_t thread;
  int thread_started;
  struct lws_context *ctx;
  struct lws_vhost *vh;
  _Atomic int stopping;
  run_observer obs;
  session *clients; /* WebSocket sessions (monitor thread) */

  pthread_mutex_t mu; /* the rest: the main thread attaches/detaches, the monitor thread samples */
  myelin_run *run;
  mon_state state;
  int exit_code;
  run_stats snap[2]; /* the latest sample, and the one before: snap[now], snap[!now] */
  int now;
  mon_edge *edges;
  size_t n_edges;
  int *series_of; /* per edge: index in series, -1 */
  mon_series *series;
  size_t n_series;
  int metrics_changed;
  myelin_msg **map_msg; /* per edge: the latest map, NULL */
  char **map_json;      /* per edge: its push, rendered when a client wants it, NULL */
  int *map_changed;     /* per edge: a new map not pushed yet */
  char **spikes_json;   /* per edge: the spikes taken at this sample, NULL */
  int *spikes_subs;     /* per edge: clients that chose it (no client: no spikes rendered) */
};

/* ---- sampling (mu held) -------------------------------------------------- */
static void edge_name(const monitor *m, size_t e, char *buf, size_t n) {
  const stage_def *d = &m->p->stages[m->edges[e].stage];
  snprintf(buf, n, "%s.%s", d->id, d->lib.desc->outputs[m->edges[e].port].name);
}

/* Takes what the taps kept; renders only the spikes that a client watches
 * (maps are rendered when pushed or greeted: render_map_locked). */
static void sample_locked(monitor *m) {
  if (!m->run) return;
  run_stats *older = &m->snap[!m->now];
  run_stats_free(older);
  if (run_snapshot(m->run, older)) return;
  m->now = !m->now;
  for (size_t e = 0; e < m->n_edges; e++) {
    msg_tap *tap = run_tap_get(m->run, m->edges[e].stage, m->edges[e].port);
    if (!tap) continue; /* out of memory at attach: this edge shows nothing */
    myelin_msg *msgs[MONITOR_TAP_TAKE], *spikes[MONITOR_TAP_TAKE], *map = NULL;
    size_t n = msg_tap_take(tap, msgs, MONITOR_TAP_TAKE, NULL), ns = 0;
    m->edges[e].seen |= msg_tap_seen(tap);
    for (size_t i = 0; i < n; i++) {
      const char *kind = myelin_msg_kind(msgs[i]);
      if (!strcmp(kind, "metrics")) {
        if (m->series_of[e] < 0) {
          mon_series *s = realloc(m->series, (m->n_series + 1) * sizeof *s);
          if (!s) continue;
          m->series = s;
          memset(&s[m->n_series], 0, sizeof *s);
          s[m->n_series].stage = m->edges[e].stage;
          s[m->n_series].port = m->edges[e].port;
          m->series_of[e] = (int)m->n_series++;
        }
        if (!mon_series_add(&m->series[m->series_of[e]], msgs[i])) m->metrics_changed = 1;
      } else if (!strcmp(kind, "map"))
        map = msgs[i]; /* the newest (the tap keeps no other) */
      else if (!strcmp(kind, "spikes"))
        spikes[ns++] = msgs[i];
    }
    char edge[256];
    edge_name(m, e, edge, sizeof edge);
    if (map) {
      myelin_msg_unref(m->map_msg[e]);
      m->map_msg[e] = myelin_msg_ref(map);
      free(m->map_json[e]);
      m->map_json[e] = NULL;
      m->map_changed[e] = 1;
    }
    free(m->spikes_json[e]);
    m->spikes_json[e] =
        ns && m->spikes_subs[e] ? monitor_spikes_json(spikes, ns, edge, SPIKES_MAX_EVENTS) : NULL;
    for (size_t i = 0; i < n; i++)
      myelin_msg_unref(msgs[i]);
  }
}

/* The push of edge e's latest map, rendered once per map (NULL: none). */
static const char *render_map_locked(monitor *m, size_t e) {
  if (!m->map_json[e] && m->map_msg[e]) {
    char edge[256];
    edge_name(m, e, edge, sizeof edge);
    m->map_json[e] = monitor_map_json(m->map_msg[e], edge);
  }
  return m->map_json[e];
}

static mon_view view_locked(const monitor *m) {
  mon_view v = {0};
  v.p = m->p;
  v.state = m->state;
  v.exit_code = m->exit_code;
  v.cur = &m->snap[m->now];
  v.prev = &m->snap[!m->now];
  v.series = m->series;
  v.n_series = m->n_series;
  v.edges = m->edges;
  v.n_edges = m->n_edges;
  return v;
}

static char *stats_push_locked(const monitor *m) {
  mon_view v = view_locked(m);
  char *j = monitor_stats_json(&v), *out = j ? xasprintf("{\"type\":\"stats\",%s", j + 1) : NULL;
  free(j);
  return out;
}

/* ---- pushes (monitor thread) --------------------------------------------- */
static void push(session *s, frame *f) {
  if (!f) return;
  if (s->qn == PUSH_QUEUE) { /* a slow reader loses its oldest push */
    frame_unref(s->q[s->qh]);
    s->qh = (s->qh + 1) % PUSH_QUEUE;
    s->qn--;
  }
  f->refs++;
  s->q[(s->qh + s->qn++) % PUSH_QUEUE] = f;
  lws_callback_on_writable(s->wsi);
}

/* Every MONITOR_PERIOD_MS: samples; renders and pushes only when a client
 * is connected (/api/stats and /metrics render when asked). */
static void on_tick(uv_timer_t *t) {
  monitor *m = t->data;
  if (!m->clients) {
    pthread_mutex_lock(&m->mu);
    sample_locked(m);
    pthread_mutex_unlock(&m->mu);
    return;
  }
  frame *stats, *metrics = NULL, **maps = calloc(m->n_edges + 1, sizeof *maps),
                **spikes = calloc(m->n_edges + 1, sizeof *spikes);
  pthread_mutex_lock(&m->mu);
  sample_locked(m);
  stats = frame_new(stats_push_locked(m));
  if (m->metrics_changed) {
    mon_view v = view_locked(m);
    char *j = monitor_metrics_json(&v);
    if ((metrics = frame_new(j))) m->metrics_changed = 0;
  }
  for (size_t e = 0; maps && spikes && e < m->n_edges; e++) {
    if (m->map_changed[e] && render_map_locked(m, e) && (maps[e] = frame_new(xstrdup(m->map_json[e]))))
      m->map_changed[e] = 0;
    if (m->spikes_json[e]) spikes[e] = frame_new(xstrdup(m->spikes_json[e]));
  }
  pthread_mutex_unlock(&m->mu);
  for (session *s = m->clients; s; s = s->next) {
    push(s, stats);
    push(s, metrics);
    for (size_t e = 0; maps && e < m->n_edges; e++)
      push(s, maps[e]);
    if (spikes && s->spikes_edge >= 0) push(s, spikes[s->spikes_edge]);
  }
  frame_unref(stats);
  frame_unref(metrics);
  for (size_t e = 0; maps && spikes && e < m->n_edges; e++) {
    frame_unref(maps[e]);
    frame_unref(spikes[e]);
  }
  free(maps);
  free(spikes);
}

/* What a client gets when it connects: the state now, the metrics so far,
 * the latest maps. */
static void greet(monitor *m, session *s) {
  pthread_mutex_lock(&m->mu);
  frame *stats = frame_new(stats_push_locked(m)), *metrics = NULL;
  if (m->n_series) {
    mon_view v = view_locked(m);
    metrics = frame_new(monitor_metrics_json(&v));
  }
  push(s, stats);
  push(s, metrics);
  for (size_t e = 0; e < m->n_edges; e++)
    if (render_map_locked(m, e)) {
      frame *f = frame_new(xstrdup(m->map_json[e]));
      push(s, f);
      frame_unref(f);
    }
  pthread_mutex_unlock(&m->mu);
  frame_unref(stats);
  frame_unref(metrics);
}

/* ---- HTTP and WebSocket (libwebsockets callbacks, monitor thread) --------- */
static int http_reply(struct lws *wsi, session *s, unsigned status, const char *type,
                      const unsigned char *body, size_t len, char *owned) {
  unsigned char buf[LWS_PRE + 1024], *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf - 1;
  free(s->owned);
  s->owned = owned;
  s->body = body;
  s->len = len;
  s->off = 0;
  if (lws_add_http_common_headers(wsi, status, type, len, &p, end) ||
      lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL, (const unsigned char *)"no-store", 8,
                                   &p, end) ||
      lws_finalize_write_http_header(wsi, start, &p, end))
    return 1;
  lws_callback_on_writable(wsi);
  return 0;
}

static int serve_http(monitor *m, struct lws *wsi, session *s, const char *path) {
  char *body = NULL;
  const char *type = "application/json";
  if (!strcmp(path, "/") || !strcmp(path, "/index.html"))
    return http_reply(wsi, s, HTTP_STATUS_OK, "text/html; charset=utf-8", monitor_page, monitor_page_len,
                      NULL);
  if (!strcmp(path, "/api/stats")) {
    pthread_mutex_lock(&m->mu);
    mon_view v = view_locked(m);
    body = monitor_stats_json(&v);
    pthread_mutex_unlock(&m->mu);
  } else if (!strcmp(path, "/metrics")) {
    type = "text/plain; version=0.0.4; charset=utf-8";
    pthread_mutex_lock(&m->mu);
    mon_view v = view_locked(m);
    body = monitor_prometheus(&v);
    pthread_mutex_unlock(&m->mu);
  } else {
    body = xasprintf("not found: %s (the monitor serves /, /api/stats, /metrics and a WebSocket)\n", path);
    return http_reply(wsi, s, HTTP_STATUS_NOT_FOUND, "text/plain; charset=utf-8", (const unsigned char *)body,
                      body ? strlen(body) : 0, body);
  }
  if (!body) return http_reply(wsi, s, HTTP_STATUS_INTERNAL_SERVER_ERROR, "text/plain", NULL, 0, NULL);
  return http_reply(wsi, s, HTTP_STATUS_OK, type, (const unsigned char *)body, strlen(body), body);
}

/* Spikes previews on for the edges some client watches, off for the others. */
static void watch_locked(monitor *m) {
  for (size_t e = 0; m->run && e < m->n_edges; e++) {
    msg_tap *tap = run_tap_get(m->run, m->edges[e].stage, m->edges[e].port);
    if (tap) msg_tap_watch(tap, m->spikes_subs[e] > 0);
  }
}

/* A client's spikes edge (-1: none), counted per edge for the taps. */
static void choose_spikes(monitor *m, session *s, int e) {
  pthread_mutex_lock(&m->mu);
  if (s->spikes_edge >= 0) m->spikes_subs[s->spikes_edge]--;
  s->spikes_edge = e;
  if (e >= 0) m->spikes_subs[e]++;
  watch_locked(m);
  pthread_mutex_unlock(&m->mu);
}

/* A browser sends the page's Origin with every WebSocket handshake. Only
 * the monitor's own page may connect: a page of another site, open in the
 * same browser, must not read the pipeline's live data from localhost.
 * Clients that are not browsers send no Origin and are let in. Nonzero:
 * refuse the handshake (libwebsockets hangs up; it cannot answer 403 at
 * this point, its issue 1415). */
static int origin_refused(struct lws *wsi) {
  char origin[256], host[256];
  if (lws_hdr_copy(wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN) <= 0) return 0;
  if (lws_hdr_copy(wsi, host, sizeof host, WSI_TOKEN_HOST) <= 0) return 1;
  const char *o = strstr(origin, "://");
  o = o ? o + 3 : origin;
  if (strcasecmp(o, host) == 0) return 0;
  fprintf(stderr, "myelin monitor: refused a WebSocket from origin %s (the monitor is %s)\n", origin, host);
  return 1;
}

/* A monitor on a loopback address answers loopback names only: a page that
 * re-points its own domain name at 127.0.0.1 (DNS rebinding) sends that
 * name as Host, and is refused. Nonzero: refuse. */
static int host_refused(const monitor *m, struct lws *wsi) {
  char host[256], name[256];
  if (!m->loopback || lws_hdr_copy(wsi, host, sizeof host, WSI_TOKEN_HOST) <= 0) return 0;
  const char *end = host[0] == '[' ? strchr(host, ']') : strrchr(host, ':');
  const char *start = host[0] == '[' ? host + 1 : host;
  snprintf(name, sizeof name, "%.*s", end ? (int)(end - start) : (int)strlen(start), start);
  struct in_addr v4;
  struct in6_addr v6;
  if (!strcasecmp(name, "localhost") ||
      (inet_pton(AF_INET, name, &v4) == 1 && (ntohl(v4.s_addr) >> 24) == 127) ||
      (inet_pton(AF_INET6, name, &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6)))
    return 0;
  fprintf(stderr, "myelin monitor: refused a request for host %s (the monitor is %s)\n", host, m->url);
  return 1;
}

static int on_lws(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
  monitor *m = lws_context_user(lws_get_context(wsi));
  session *s = user;
  switch (reason) {
  case LWS_CALLBACK_HTTP:
    if (host_refused(m, wsi)) {
      static const char no[] = "this monitor answers to loopback names only (localhost, 127.0.0.1, [::1])\n";
      return http_reply(wsi, s, HTTP_STATUS_FORBIDDEN, "text/plain; charset=utf-8", (const unsigned char *)no,
                        sizeof no - 1, NULL);
    }
    return serve_http(m, wsi, s, in ? (const char *)in : "/");
  case LWS_CALLBACK_HTTP_WRITEABLE: {
    if (!s->body && s->len) return -1;
    unsigned char buf[LWS_PRE + CHUNK];
    size_t n = s->len - s->off < CHUNK ? s->len - s->off : CHUNK;
    int last = s->off + n == s->len;
    if (n) memcpy(buf + LWS_PRE, s->body + s->off, n);
    if (lws_write(wsi, buf + LWS_PRE, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != (int)n) return -1;
    s->off += n;
    if (!last) {
      lws_callback_on_writable(wsi);
      return 0;
    }
    free(s->owned);
    s->owned = NULL;
    s->body = NULL;
    s->len = 0;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
  }
  case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
  case LWS_CALLBACK_CLOSED_HTTP:
    if (s && !s->ws) {
      free(s->owned);
      s->owned = NULL;
      s->body = NULL;
    }
    break;
  case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
    return host_refused(m, wsi) || origin_refused(wsi);
  case LWS_CALLBACK_ESTABLISHED: {
    memset(s, 0, sizeof *s);
    s->ws = 1;
    s->wsi = wsi;
    int first = -1; /* the first spikes edge, until the client chooses one */
    for (size_t e = 0; e < m->n_edges && first < 0; e++)
      if (strcmp(m->p->stages[m->edges[e].stage].out_kinds[m->edges[e].port], "*") &&
          kinds_compatible(m->p->stages[m->edges[e].stage].out_kinds[m->edges[e].port], "spikes"))
        first = (int)e;
    s->spikes_edge = -1;
    choose_spikes(m, s, first);
    s->next = m->clients;
    m->clients = s;
    greet(m, s);
    return 0;
  }
  case LWS_CALLBACK_RECEIVE:
    if (len > 7 && !memcmp(in, "spikes ", 7)) {
      char want[256], edge[256];
      int chosen = -1;
      snprintf(want, sizeof want, "%.*s", (int)(len - 7), (const char *)in + 7);
      for (size_t e = 0; e < m->n_edges; e++) {
        edge_name(m, e, edge, sizeof edge);
        if (!strcmp(edge, want)) chosen = (int)e;
      }
      choose_spikes(m, s, chosen);
    }
    return 0;
  case LWS_CALLBACK_SERVER_WRITEABLE:
    if (s->qn) {
      frame *f = s->q[s->qh];
      s->qh = (s->qh + 1) % PUSH_QUEUE;
      s->qn--;
      int n = lws_write(wsi, f->buf + LWS_PRE, f->len, LWS_WRITE_TEXT), whole = n == (int)f->len;
      frame_unref(f);
      if (!whole) return -1; /* libwebsockets keeps what the socket did not take: short is an error */
      if (s->qn) lws_callback_on_writable(wsi);
    }
    return 0;
  case LWS_CALLBACK_CLOSED:
    if (!s || !s->ws) break;
    choose_spikes(m, s, -1);
    for (session **pp = &m->clients; *pp; pp = &(*pp)->next)
      if (*pp == s) {
        *pp = s->next;
        break;
      }
    while (s->qn) {
      frame_unref(s->q[s->qh]);
      s->qh = (s->qh + 1) % PUSH_QUEUE;
      s->qn--;
    }
    return 0;
  default:
    break;
  }
  return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols protocols[] = {
    {"myelin-monitor", on_lws, sizeof(session), 4096, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- the loop and its thread --------------------------------------------- */
static void on_accept(uv_poll_t *h, int status, int events) {
  monitor *m = h->data;
  (void)events;
  if (status < 0) return;
  for (;;) {
    int fd = accept4(m->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return; /* EAGAIN, or a connection that went away */
    if (!lws_adopt_socket_vhost(m->vh, fd)) close(fd);
  }
}

static void on_wake(uv_async_t *a) {
  monitor *m = a->data;
  if (!atomic_load(&m->stopping)) return;
  uv_poll_stop(&m->accept_poll);
  uv_close((uv_handle_t *)&m->accept_poll, NULL);
  uv_close((uv_handle_t *)&m->tick, NULL);
  uv_close((uv_handle_t *)&m->wake, NULL);
  lws_context_destroy(m->ctx); /* closes its connections; on a foreign loop it finishes later */
}

/* libwebsockets sets m->ctx to NULL (info.pcontext) once its context is
 * wholly destroyed; on a foreign loop that takes a second call and more turns
 * of the loop (its minimal-http-server-eventlib-foreign example). */
static void finish_lws(monitor *m) {
  uv_run(&m->loop, UV_RUN_DEFAULT);
  for (int i = 0; m->ctx && i < 8; i++) {
    lws_context_destroy(m->ctx);
    uv_run(&m->loop, UV_RUN_DEFAULT);
  }
}

static void *monitor_main(void *arg) {
  monitor *m = arg;
  sigset_t set; /* a browser that went away is an error on write(), not a SIGPIPE */
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  finish_lws(m); /* runs until on_wake stopped everything */
  return NULL;
}

static void lws_log(int level, const char *line) {
  (void)level;
  fprintf(stderr, "myelin monitor: %s", line);
}

/* ---- the observer (main thread) ------------------------------------------ */
static void on_attach(void *ctx, myelin_run *run) {
  monitor *m = ctx;
  pthread_mutex_lock(&m->mu);
  for (size_t e = 0; e < m->n_edges; e++)
    run_tap(run, m->edges[e].stage, m->edges[e].port); /* out of memory: that edge shows nothing */
  m->run = run;
  m->state = MON_RUNNING;
  watch_locked(m);  /* for clients that came before the run */
  sample_locked(m); /* counters from the start (all zero), so every stage has them */
  pthread_mutex_unlock(&m->mu);
}

static void on_detach(void *ctx, myelin_run *run, int exit_code) {
  monitor *m = ctx;
  (void)run;
  pthread_mutex_lock(&m->mu);
  sample_locked(m); /* the final counters and messages */
  m->run = NULL;
  m->state = MON_FINISHED;
  m->exit_code = exit_code;
  pthread_mutex_unlock(&m->mu);
}

/* ---- start and stop ------------------------------------------------------- */
/* Parses [HOST:]PORT, [V6]:PORT; binds and listens. */
static int listen_on(monitor *m, const char *addr, char *err, size_t errlen) {
  char host[256] = "127.0.0.1";
  const char *port = addr, *colon = strrchr(addr, ':');
  if (addr[0] == '[') { /* [::1]:8080 */
    const char *close = strchr(addr, ']');
    if (!close || close[1] != ':' || (size_t)(close - addr - 1) >= sizeof host)
      return snprintf(err, errlen, "expected [HOST]:PORT, e.g. [::1]:8080"), -1;
    snprintf(host, sizeof host, "%.*s", (int)(close - addr - 1), addr + 1);
    port = close + 2;
  } else if (colon) {
    if ((size_t)(colon - addr) >= sizeof host || colon == addr)
      return snprintf(err, errlen, "expected [HOST:]PORT, e.g. 8080 or 0.0.0.0:8080"), -1;
    snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
    port = colon + 1;
  }
  char *end = NULL;
  long pn = strtol(port, &end, 10);
  if (!*port || *end || pn < 0 || pn > 65535)
    return snprintf(err, errlen, "'%s' is not a port (0 to 65535; 0 picks a free one)", port), -1;
  struct addrinfo hints = {0}, *ai = NULL;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  int rc = getaddrinfo(host, port, &hints, &ai);
  if (rc) return snprintf(err, errlen, "cannot resolve '%s': %s", host, gai_strerror(rc)), -1;
  int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
  if (fd >= 0)
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one); /* not REUSEPORT: a taken port fails */
  if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 64)) {
    int e = errno, v6 = ai->ai_family == AF_INET6;
    snprintf(err, errlen, "cannot listen on %s%s%s:%s: %s%s", v6 ? "[" : "", host, v6 ? "]" : "", port,
             strerror(e),
             e == EADDRINUSE ? " (another program uses the port: pick another, or 0 for a free one)" : "");
    if (fd >= 0) close(fd);
    freeaddrinfo(ai);
    return -1;
  }
  struct sockaddr_storage sa;
  socklen_t sl = sizeof sa;
  int bound = (int)pn;
  if (!getsockname(fd, (struct sockaddr *)&sa, &sl))
    bound = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                           : ((struct sockaddr_in *)&sa)->sin_port);
  snprintf(m->url, sizeof m->url, ai->ai_family == AF_INET6 ? "http://[%s]:%d/" : "http://%s:%d/", host,
           bound);
  const struct sockaddr *a = ai->ai_addr;
  m->loopback = a->sa_family == AF_INET
                    ? (ntohl(((const struct sockaddr_in *)a)->sin_addr.s_addr) >> 24) == 127
                    : IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)a)->sin6_addr);
  freeaddrinfo(ai);
  m->fd = fd;
  return 0;
}

static void monitor_free(monitor *m) {
  if (m->fd >= 0) close(m->fd);
  run_stats_free(&m->snap[0]);
  run_stats_free(&m->snap[1]);
  for (size_t i = 0; i < m->n_series; i++)
    mon_series_free(&m->series[i]);
  free(m->series);
  for (size_t e = 0; e < m->n_edges; e++) {
    myelin_msg_unref(m->map_msg[e]);
    free(m->map_json[e]);
    free(m->spikes_json[e]);
  }
  free(m->map_msg);
  free(m->map_json);
  free(m->spikes_json);
  free(m->map_changed);
  free(m->spikes_subs);
  free(m->series_of);
  free(m->edges);
  pthread_mutex_destroy(&m->mu);
  free(m);
}

monitor *monitor_start(const char *addr, const pipeline *p, char *err, size_t errlen) {
  monitor *m = calloc(1, sizeof *m);
  if (!m) return snprintf(err, errlen, "out of memory"), NULL;
  m->fd = -1;
  m->p = p;
  pthread_mutex_init(&m->mu, NULL);
  size_t cap = 0;
  for (size_t i = 0; i < p->n; i++)
    cap += port_count(p->stages[i].lib.desc->outputs);
  m->edges = calloc(cap + 1, sizeof *m->edges);
  m->series_of = calloc(cap + 1, sizeof *m->series_of);
  m->map_msg = calloc(cap + 1, sizeof *m->map_msg);
  m->map_json = calloc(cap + 1, sizeof *m->map_json);
  m->spikes_json = calloc(cap + 1, sizeof *m->spikes_json);
  m->map_changed = calloc(cap + 1, sizeof *m->map_changed);
  m->spikes_subs = calloc(cap + 1, sizeof *m->spikes_subs);
  if (!m->edges || !m->series_of || !m->map_msg || !m->map_json || !m->spikes_json || !m->map_changed ||
      !m->spikes_subs) {
    snprintf(err, errlen, "out of memory");
    monitor_free(m);
    return NULL;
  }
  for (size_t i = 0; i < p->n; i++)
    for (size_t j = 0; j < port_count(p->stages[i].lib.desc->outputs); j++)
      if (monitor_tap_kind(p->stages[i].out_kinds[j])) {
        m->series_of[m->n_edges] = -1;
        m->edges[m->n_edges++] = (mon_edge){i, (int)j, 0};
      }
  if (listen_on(m, addr, err, errlen)) {
    monitor_free(m);
    return NULL;
  }
  lws_set_log_level(LLL_ERR, lws_log);
  if (uv_loop_init(&m->loop)) {
    snprintf(err, errlen, "cannot start an event loop");
    monitor_free(m);
    return NULL;
  }
  void *loops[1] = {&m->loop};
  struct lws_context_creation_info info;
  memset(&info, 0, sizeof info);
  info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
  info.protocols = protocols;
  info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN |
                 LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
  info.foreign_loops = loops;
  info.user = m;
  info.pcontext = &m->ctx;
  info.server_string = "myelin";
  m->ctx = lws_create_context(&info);
  if (m->ctx) m->vh = lws_create_vhost(m->ctx, &info);
  if (!m->ctx || !m->vh) {
    snprintf(err, errlen,
             "libwebsockets could not start on a libuv loop (is libwebsockets-evlib-uv installed?)");
    finish_lws(m);
    uv_loop_close(&m->loop);
    monitor_free(m);
    return NULL;
  }
  uv_poll_init(&m->loop, &m->accept_poll, m->fd);
  m->accept_poll.data = m;
  uv_poll_start(&m->accept_poll, UV_READABLE, on_accept);
  uv_timer_init(&m->loop, &m->tick);
  m->tick.data = m;
  uv_timer_start(&m->tick, on_tick, MONITOR_PERIOD_MS, MONITOR_PERIOD_MS);
  uv_async_init(&m->loop, &m->wake, on_wake);
  m->wake.data = m;
  m->obs = (run_observer){m, on_attach, on_detach};
  if (pthread_create(&m->thread, NULL, monitor_main, m)) {
    snprintf(err, errlen, "cannot start the monitor thread");
    atomic_store(&m->stopping, 1);
    on_wake(&m->wake);
    finish_lws(m);
    uv_loop_close(&m->loop);
    monitor_free(m);
    return NULL;
  }
  pthread_setname_np(m->thread, "myelin-monitor");
  m->thread_started = 1;
  return m;
}

const run_observer *monitor_observer(monitor *m) { return &m->obs; }
const char *monitor_url(const monitor *m) { return m->url; }

void monitor_stop(monitor *m) {
  if (!m) return;
  atomic_store(&m->stopping, 1);
  uv_async_send(&m->wake);
  pthread_join(m->thread, NULL);
  uv_loop_close(&m->loop);
  monitor_free(m);
}
