/*
 * monitor.h — the live view of a running pipeline (`myelin run --monitor`).
 *
 * Three parts, so that the data path never waits for the monitor:
 *
 *  - taps (monitor_tap.c, libmyelin): per tapped output port, what the
 *    view shows of the metrics, map and spikes messages emitted on it:
 *    references to the metrics and to the newest map, and, only while a
 *    client watches the port, a few copies of spikes messages per sample in
 *    buffers the tap owns (no reference to a spikes message is ever kept, so
 *    the pipeline's large buffers are freed when the pipeline is done with
 *    them). The emitting thread never blocks, and allocates only to grow a
 *    preview buffer; the monitor takes what was kept when it samples.
 *  - rendering (monitor_render.c, libmyelin): a snapshot of the counters the
 *    scheduler keeps anyway (run_snapshot, internal.h) as the JSON of
 *    /api/stats and the Prometheus text of /metrics; the latest map as three
 *    slices, spikes as events, metrics as values. Pure functions, tested
 *    alone (tests/monitor).
 *  - the server (cli_monitor.c, the CLI; libwebsockets on a libuv loop of its
 *    own, on one monitor thread): samples every MONITOR_PERIOD_MS, serves the
 *    page, /api/stats and /metrics over HTTP and pushes to WebSocket clients.
 *    Built when libwebsockets is found (CMake MYELIN_MONITOR), otherwise
 *    cli_monitor_off.c says it is not built in.
 */
#ifndef MYELIN_MONITOR_H
#define MYELIN_MONITOR_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

#define MONITOR_PERIOD_MS 250
#define MONITOR_TAP_METRICS 64                /* metrics messages a tap keeps between two samples */
#define MONITOR_TAP_PREVIEWS 4                /* spikes messages copied per take (sample), while watched */
#define MONITOR_PREVIEW_MAX ((size_t)4 << 20) /* larger spikes messages are not previewed */
#define MONITOR_TAP_TAKE 128 /* at most this many messages per take: 64 metrics, 1 map, 4 spikes */

/* ---- taps ---------------------------------------------------------------- */
/* (msg_tap is declared in internal.h, for run_tap_get) */
msg_tap *msg_tap_new(void);
/* The emitting stage's thread, for every message of the port: O(1), never
 * blocks. Keeps a reference to a metrics message (the last
 * MONITOR_TAP_METRICS) and to the newest map (at most 2 per
 * MONITOR_PERIOD_MS); of spikes, only while watched, copies the bytes of the
 * first MONITOR_TAP_PREVIEWS messages after each take (up to
 * MONITOR_PREVIEW_MAX bytes each) and keeps no reference. Other kinds pass. */
void msg_tap_put(msg_tap *t, myelin_msg *m);
/* Any thread: spikes previews on (a client shows this port's raster) or off. */
void msg_tap_watch(msg_tap *t, int on);
/* Any thread: the kinds put so far (MON_SEEN_*; what a "*" port carries). */
#define MON_SEEN_METRICS 1u
#define MON_SEEN_MAP 2u
#define MON_SEEN_SPIKES 4u
unsigned msg_tap_seen(const msg_tap *t);
/* The sampling thread: moves what was kept since the last take into out (at
 * most max; metrics oldest first, then the newest map, then the spikes
 * previews oldest first, decoded into messages of the monitor's own) and
 * returns how many. The caller unrefs them. *dropped (may be NULL) gets how
 * many kept messages were overwritten unseen or previews skipped. */
size_t msg_tap_take(msg_tap *t, myelin_msg **out, size_t max, uint64_t *dropped);
void msg_tap_free(msg_tap *t); /* unrefs what it still holds */

/* 1 when an output port of these kinds ("a|b", "*") may carry metrics, map
 * or spikes messages: worth a tap. */
int monitor_tap_kind(const char *kinds);

/* ---- rendering ------------------------------------------------------------ */
/* The latest values of one tapped metrics port, and their history: one
 * row per epoch (the messages of one epoch, train and test, share a row) or
 * per message when they carry no epoch. */
typedef struct mon_series {
  size_t stage;
  int port;
  size_t n_names;
  char (*names)[64];
  double *latest;  /* [n_names], NaN until a message had the value */
  int has_epoch;   /* the latest message had an epoch */
  int64_t epoch;   /* ... this one */
  uint64_t n_msgs; /* messages seen */
  size_t n_rows, cap;
  double *x;  /* [cap]: epoch, or message number */
  double **y; /* [n_names][cap], NaN where a row lacks the value */
} mon_series;

#define MONITOR_HISTORY 2000 /* metrics rows kept per port */

/* Adds a metrics message to s (new names widen the table; older rows get
 * NaN for them). 0, or MYELIN_ENOMEM / MYELIN_EFORMAT (no `values` map). */
int mon_series_add(mon_series *s, const myelin_msg *m);
void mon_series_free(mon_series *s);

typedef enum mon_state { MON_STARTING, MON_RUNNING, MON_FINISHED } mon_state;

/* A tapped output port, offered to the page (map and spikes choices). */
typedef struct mon_edge {
  size_t stage;
  int port;
  unsigned seen; /* kinds seen on it: 1 metrics, 2 map, 4 spikes (what a "*" port carries) */
} mon_edge;

/* What the renderers read: the pipeline, two snapshots of its counters
 * (cur, and prev: the previous sample, NULL or empty when none). */
typedef struct mon_view {
  const pipeline *p;
  mon_state state;
  int exit_code; /* when finished */
  const run_stats *cur, *prev;
  const mon_series *series;
  size_t n_series;
  const mon_edge *edges;
  size_t n_edges;
} mon_view;

/* /api/stats: {"pipeline", "state", "elapsed", "stages": [...], "metrics": [...], "edges": [...]}.
 * malloc'ed, NULL when out of memory. */
char *monitor_stats_json(const mon_view *v);
/* /metrics in the Prometheus text exposition format 0.0.4 (# HELP, # TYPE,
 * escaped label values). malloc'ed, NULL when out of memory. */
char *monitor_prometheus(const mon_view *v);
/* The history of every metrics port: {"type": "metrics", "series": [...]}. */
char *monitor_metrics_json(const mon_view *v);
/* A map message as {"type": "map", "edge", "stat", "dims", "cut", "vmax",
 * "slices": [sagittal, coronal, axial]} (three slices of the voxel grid
 * through the voxel of largest |value|), or, without a volume geometry,
 * {"values": [...]}; {"error"} when it cannot be shown. */
char *monitor_map_json(const myelin_msg *m, const char *edge);
/* Spikes messages (oldest first) as {"type": "spikes", "edge", "msgs":
 * [{"seq", "n", "steps", "dt", "step": [...], "unit": [...]}]}, at most
 * max_events events in all (the rest counted in "truncated"). */
char *monitor_spikes_json(myelin_msg *const *msgs, size_t n, const char *edge, size_t max_events);

/* ---- the server (cli_monitor.c / cli_monitor_off.c) ----------------------- */
typedef struct monitor monitor;
/* Parses [HOST:]PORT (HOST default 127.0.0.1; [v6]:PORT; PORT 0 picks a free
 * one), binds and starts the monitor thread. NULL with err when the address
 * is bad or taken, or the monitor is not built in: the CLI exits 2. */
monitor *monitor_start(const char *addr, const pipeline *p, char *err, size_t errlen);
/* The observer run_pipeline calls (run_opts.observer). */
const run_observer *monitor_observer(monitor *m);
/* "http://HOST:PORT/" it listens on. */
const char *monitor_url(const monitor *m);
/* Stops serving and frees everything. */
void monitor_stop(monitor *m);

#endif
