/*
 * monitor_tap.c — the live monitor's taps (monitor.h): per output port, rings
 * of the last message references emitted on it, one ring per kind shown.
 *
 * Every hand-over is one atomic exchange of a slot, so the emitting thread
 * never waits for the monitor and no reference is lost or dropped twice:
 * whoever takes a message out of a slot (the emitter replacing it, the
 * monitor taking it, or msg_tap_free) owns that reference. put numbers the
 * messages; take moves the slots of the numbers put since its previous call
 * (at most the ring's capacity of them). A message being put while the monitor
 * takes may be seen at the next take, or replaced unseen: the view samples,
 * it does not promise every message. Only messages of the kinds the view
 * shows (metrics, map, spikes) are kept, whatever the port declares; maps and
 * spikes at most as often as the monitor takes them (ring_every_ns).
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "monitor.h"

/* One ring per kind, so that a flood of spikes does not push the rare
 * metrics and maps out before the monitor samples. */
enum { TAP_METRICS, TAP_MAP, TAP_SPIKES, TAP_KINDS };
static const size_t ring_cap[TAP_KINDS] = {64, 2, MONITOR_TAP_RING}; /* a map only matters as the latest */
#define RING_MAX 64

/* At most this often a message of the kind enters its ring: no more than the
 * monitor takes per sample, so that the emitter rarely drops the ring's last
 * reference to a message (its free would move onto the emitting stage's
 * thread, the one that is busy). Metrics: every one (curves need each epoch). */
static const uint64_t ring_every_ns[TAP_KINDS] = {0, MONITOR_PERIOD_MS * 1000000ull / 2,
                                                  MONITOR_PERIOD_MS * 1000000ull / MONITOR_TAP_RING};

typedef struct ring {
  _Atomic uint64_t next_ns; /* no put before this time (ring_every_ns) */
  _Atomic uint64_t put;     /* messages put so far */
  uint64_t taken;           /* put count at the previous take (the monitor's) */
  _Atomic(myelin_msg *) slot[RING_MAX];
} ring;

struct msg_tap {
  ring r[TAP_KINDS];
};

msg_tap *msg_tap_new(void) {
  msg_tap *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  for (int k = 0; k < TAP_KINDS; k++) {
    atomic_init(&t->r[k].put, 0);
    atomic_init(&t->r[k].next_ns, 0);
    for (size_t i = 0; i < RING_MAX; i++)
      atomic_init(&t->r[k].slot[i], NULL);
  }
  return t;
}

/* The ring of a kind the view shows; -1 for the others (a "*" port is
 * tapped too, and its other messages are passed over here). */
static int ring_of(const char *k) {
  return !strcmp(k, "spikes")    ? TAP_SPIKES
         : !strcmp(k, "metrics") ? TAP_METRICS
         : !strcmp(k, "map")     ? TAP_MAP
                                 : -1;
}

void msg_tap_put(msg_tap *t, myelin_msg *m) {
  int kind = ring_of(myelin_msg_kind(m));
  if (kind < 0) return;
  ring *r = &t->r[kind];
  if (ring_every_ns[kind]) {
    uint64_t now = now_ns();
    if (now < atomic_load_explicit(&r->next_ns, memory_order_relaxed)) return;
    atomic_store_explicit(&r->next_ns, now + ring_every_ns[kind], memory_order_relaxed);
  }
  uint64_t k = atomic_fetch_add_explicit(&r->put, 1, memory_order_acq_rel);
  myelin_msg *old =
      atomic_exchange_explicit(&r->slot[k % ring_cap[kind]], myelin_msg_ref(m), memory_order_acq_rel);
  myelin_msg_unref(old);
}

static size_t ring_take(ring *r, size_t cap, myelin_msg **out, size_t max, uint64_t *dropped) {
  uint64_t put = atomic_load_explicit(&r->put, memory_order_acquire);
  uint64_t from = put - r->taken > cap ? put - cap : r->taken;
  if (put - from > max) from = put - max;
  size_t n = 0;
  for (uint64_t k = from; k < put; k++) {
    myelin_msg *m = atomic_exchange_explicit(&r->slot[k % cap], NULL, memory_order_acq_rel);
    if (m) out[n++] = m;
  }
  *dropped += (put - r->taken) - n;
  r->taken = put;
  return n;
}

size_t msg_tap_take(msg_tap *t, myelin_msg **out, size_t max, uint64_t *dropped) {
  uint64_t lost = 0;
  size_t n = 0;
  for (int k = 0; k < TAP_KINDS; k++)
    n += ring_take(&t->r[k], ring_cap[k], out + n, max - n, &lost);
  if (dropped) *dropped = lost;
  return n;
}

void msg_tap_free(msg_tap *t) {
  if (!t) return;
  for (int k = 0; k < TAP_KINDS; k++)
    for (size_t i = 0; i < RING_MAX; i++)
      myelin_msg_unref(atomic_exchange(&t->r[k].slot[i], NULL));
  free(t);
}

int monitor_tap_kind(const char *kinds) {
  return kinds && (!strcmp(kinds, "*") || kinds_compatible(kinds, "metrics") ||
                   kinds_compatible(kinds, "map") || kinds_compatible(kinds, "spikes"));
}
