/*
 * monitor_tap.c — the live monitor's taps (monitor.h): what an output port
 * emitted of the kinds the view shows, kept so that the emitting stage's
 * thread never waits for the monitor and the pipeline's own buffers are
 * never held for it.
 *
 *  - metrics: a ring of references to the last MONITOR_TAP_METRICS messages
 *    (every one: the curves need each epoch; they are small and rare).
 *  - map: one reference, the newest (put at most twice per sample period):
 *    only the latest map is drawn, and maps are rare.
 *  - spikes: no reference at all. A spikes stream is the one that floods
 *    (thousands of ~100 KB messages a second), and a kept reference delays the
 *    free of a large buffer: the allocator cannot reuse it for the next
 *    message. While a client watches the port (msg_tap_watch), each take
 *    grants MONITOR_TAP_PREVIEWS credits: the next that many spikes messages
 *    are copied into buffers the tap owns (grown only when a larger message
 *    comes, up to MONITOR_PREVIEW_MAX bytes), and the monitor decodes its own
 *    copy at its next take. Other spikes messages cost one relaxed atomic
 *    load: no clock, no copy, no reference.
 *
 * Every hand-over is one atomic exchange or compare-and-swap, so neither
 * side ever waits: whoever takes a reference out of a slot owns it, and a
 * preview buffer is written only in state P_WRITING (by the emitter) and read
 * only in P_READING (by the monitor). The view samples, it does not promise
 * every message: *dropped counts what was overwritten or skipped unseen.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "monitor.h"

enum { P_FREE, P_WRITING, P_FULL, P_READING };

typedef struct preview {
  _Atomic int state;
  uint64_t seq; /* put order (spikes_put at the write), for take's ordering */
  size_t len, cap;
  uint8_t *buf;
} preview;

struct msg_tap {
  _Atomic unsigned seen; /* MON_SEEN_* of the kinds put so far */
  /* metrics */
  _Atomic uint64_t metrics_put;
  uint64_t metrics_taken; /* the monitor's */
  _Atomic(myelin_msg *) metrics[MONITOR_TAP_METRICS];
  /* map */
  _Atomic uint64_t map_next_ns;
  _Atomic(myelin_msg *) map;
  _Atomic uint64_t map_put; /* maps that entered the slot */
  uint64_t map_taken;       /* ... counted by the monitor */
  /* spikes */
  _Atomic int watched;
  _Atomic int credits;             /* previews still to copy before the next take */
  _Atomic uint64_t spikes_put;     /* previews written */
  _Atomic uint64_t spikes_skipped; /* due a preview but over MONITOR_PREVIEW_MAX or out of memory */
  uint64_t spikes_taken, skipped_seen;
  preview prev[MONITOR_TAP_PREVIEWS];
};

#define MAP_EVERY_NS (MONITOR_PERIOD_MS * 1000000ull / 2)

msg_tap *msg_tap_new(void) {
  msg_tap *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  atomic_init(&t->seen, 0);
  atomic_init(&t->metrics_put, 0);
  for (size_t i = 0; i < MONITOR_TAP_METRICS; i++)
    atomic_init(&t->metrics[i], NULL);
  atomic_init(&t->map_next_ns, 0);
  atomic_init(&t->map, NULL);
  atomic_init(&t->map_put, 0);
  atomic_init(&t->watched, 0);
  atomic_init(&t->credits, 0);
  atomic_init(&t->spikes_put, 0);
  atomic_init(&t->spikes_skipped, 0);
  for (size_t i = 0; i < MONITOR_TAP_PREVIEWS; i++)
    atomic_init(&t->prev[i].state, P_FREE);
  return t;
}

/* Once per period at most: 1 when now is past *next (and moves it on). */
static int due(_Atomic uint64_t *next, uint64_t every) {
  uint64_t now = now_ns();
  if (now < atomic_load_explicit(next, memory_order_relaxed)) return 0;
  atomic_store_explicit(next, now + every, memory_order_relaxed);
  return 1;
}

/* Copies m's bytes into a free (or unseen full) preview buffer; skips when
 * the monitor is reading them all. */
static void spikes_put(msg_tap *t, const myelin_msg *m) {
  size_t len;
  const uint8_t *bytes = myelin_msg_bytes(m, &len);
  preview *p = NULL;
  for (size_t i = 0; i < MONITOR_TAP_PREVIEWS && !p; i++) {
    preview *c =
        &t->prev[(atomic_load_explicit(&t->spikes_put, memory_order_relaxed) + i) % MONITOR_TAP_PREVIEWS];
    int s = P_FREE;
    if (atomic_compare_exchange_strong_explicit(&c->state, &s, P_WRITING, memory_order_acquire,
                                                memory_order_relaxed) ||
        (s == P_FULL && atomic_compare_exchange_strong_explicit(&c->state, &s, P_WRITING,
                                                                memory_order_acquire, memory_order_relaxed)))
      p = c;
  }
  if (!p) {
    atomic_fetch_add_explicit(&t->spikes_skipped, 1, memory_order_relaxed);
    return;
  }
  if (len > p->cap) { /* grows to the largest message seen, once */
    uint8_t *b = len <= MONITOR_PREVIEW_MAX ? realloc(p->buf, len) : NULL;
    if (!b) {
      atomic_store_explicit(&p->state, P_FREE, memory_order_release); /* its old contents are gone */
      atomic_fetch_add_explicit(&t->spikes_skipped, 1, memory_order_relaxed);
      return;
    }
    p->buf = b;
    p->cap = len;
  }
  memcpy(p->buf, bytes, len);
  p->len = len;
  p->seq = atomic_fetch_add_explicit(&t->spikes_put, 1, memory_order_relaxed);
  atomic_store_explicit(&p->state, P_FULL, memory_order_release);
}

void msg_tap_put(msg_tap *t, myelin_msg *m) {
  const char *k = myelin_msg_kind(m);
  unsigned bit = k[0] == 'm' && !strcmp(k, "metrics")  ? MON_SEEN_METRICS
                 : k[0] == 'm' && !strcmp(k, "map")    ? MON_SEEN_MAP
                 : k[0] == 's' && !strcmp(k, "spikes") ? MON_SEEN_SPIKES
                                                       : 0;
  if (!bit) return; /* a "*" port's other messages */
  if (!(atomic_load_explicit(&t->seen, memory_order_relaxed) & bit))
    atomic_fetch_or_explicit(&t->seen, bit, memory_order_relaxed);
  if (bit == MON_SEEN_SPIKES) {
    if (atomic_load_explicit(&t->credits, memory_order_relaxed) > 0 &&
        atomic_fetch_sub_explicit(&t->credits, 1, memory_order_relaxed) > 0)
      spikes_put(t, m);
  } else if (bit == MON_SEEN_MAP) {
    if (!due(&t->map_next_ns, MAP_EVERY_NS)) return;
    atomic_fetch_add_explicit(&t->map_put, 1, memory_order_relaxed);
    myelin_msg_unref(atomic_exchange_explicit(&t->map, myelin_msg_ref(m), memory_order_acq_rel));
  } else {
    uint64_t n = atomic_fetch_add_explicit(&t->metrics_put, 1, memory_order_acq_rel);
    myelin_msg_unref(atomic_exchange_explicit(&t->metrics[n % MONITOR_TAP_METRICS], myelin_msg_ref(m),
                                              memory_order_acq_rel));
  }
}

void msg_tap_watch(msg_tap *t, int on) {
  atomic_store_explicit(&t->watched, !!on, memory_order_relaxed);
  atomic_store_explicit(&t->credits, on ? MONITOR_TAP_PREVIEWS : 0, memory_order_relaxed);
}

unsigned msg_tap_seen(const msg_tap *t) { return atomic_load_explicit(&t->seen, memory_order_relaxed); }

static int by_seq(const void *a, const void *b) {
  const preview *x = *(preview *const *)a, *y = *(preview *const *)b;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

size_t msg_tap_take(msg_tap *t, myelin_msg **out, size_t max, uint64_t *dropped) {
  uint64_t lost = 0;
  size_t n = 0;
  /* metrics: the slots of the numbers put since the previous take */
  uint64_t put = atomic_load_explicit(&t->metrics_put, memory_order_acquire);
  uint64_t from = put - t->metrics_taken > MONITOR_TAP_METRICS ? put - MONITOR_TAP_METRICS : t->metrics_taken;
  if (put - from > max) from = put - max;
  for (uint64_t k = from; k < put; k++) {
    myelin_msg *m =
        atomic_exchange_explicit(&t->metrics[k % MONITOR_TAP_METRICS], NULL, memory_order_acq_rel);
    if (m) out[n++] = m;
  }
  lost += (put - t->metrics_taken) - n;
  t->metrics_taken = put;
  /* map: the newest */
  uint64_t maps = atomic_load_explicit(&t->map_put, memory_order_acquire);
  myelin_msg *map = n < max ? atomic_exchange_explicit(&t->map, NULL, memory_order_acq_rel) : NULL;
  if (map) out[n++] = map;
  lost += maps - t->map_taken > (map != NULL) ? maps - t->map_taken - (map != NULL) : 0;
  t->map_taken = maps;
  /* spikes: decode the full previews, oldest first, and free their buffers for the emitter */
  preview *full[MONITOR_TAP_PREVIEWS];
  size_t nf = 0;
  for (size_t i = 0; i < MONITOR_TAP_PREVIEWS; i++) {
    int s = P_FULL;
    if (atomic_compare_exchange_strong_explicit(&t->prev[i].state, &s, P_READING, memory_order_acquire,
                                                memory_order_relaxed))
      full[nf++] = &t->prev[i];
  }
  qsort(full, nf, sizeof *full, by_seq);
  uint64_t sp = atomic_load_explicit(&t->spikes_put, memory_order_relaxed), taken = 0;
  for (size_t i = 0; i < nf; i++) {
    myelin_msg *m = NULL;
    size_t used;
    if (n < max && !myelin_msg_decode(full[i]->buf, full[i]->len, full[i]->len, &m, &used, NULL, 0))
      out[n++] = m, taken++;
    atomic_store_explicit(&full[i]->state, P_FREE, memory_order_release);
  }
  uint64_t skipped = atomic_load_explicit(&t->spikes_skipped, memory_order_relaxed);
  /* previews written since the last take that did not come out here, and those skipped */
  lost += (sp - t->spikes_taken > taken ? sp - t->spikes_taken - taken : 0) + (skipped - t->skipped_seen);
  t->spikes_taken = sp;
  t->skipped_seen = skipped;
  /* the buffers are free again: the next messages may fill them */
  atomic_store_explicit(&t->credits,
                        atomic_load_explicit(&t->watched, memory_order_relaxed) ? MONITOR_TAP_PREVIEWS : 0,
                        memory_order_relaxed);
  if (dropped) *dropped = lost;
  return n;
}

void msg_tap_free(msg_tap *t) {
  if (!t) return;
  for (size_t i = 0; i < MONITOR_TAP_METRICS; i++)
    myelin_msg_unref(atomic_exchange(&t->metrics[i], NULL));
  myelin_msg_unref(atomic_exchange(&t->map, NULL));
  for (size_t i = 0; i < MONITOR_TAP_PREVIEWS; i++)
    free(t->prev[i].buf);
  free(t);
}

int monitor_tap_kind(const char *kinds) {
  return kinds && (!strcmp(kinds, "*") || kinds_compatible(kinds, "metrics") ||
                   kinds_compatible(kinds, "map") || kinds_compatible(kinds, "spikes"));
}
