/*
 * loihi_msg.h — message glue shared by loihi_export and loihi_sim: reading
 * `network` and `spikes` messages (DESIGN.md section 4) into the plain
 * structs of loihi.h, and a compact store for spike samples that arrive
 * before the network they must be run on.
 *
 * Why a store: in a training pipeline the learner emits its network at the
 * end, while the test spikes stream past earlier. Holding the messages
 * themselves would cost ~8 bytes per event (57 KB per 32-step image); the
 * store keeps each sample as a bitmap (n*steps bits) or as CSR with 16-bit
 * units, whichever is smaller (3 KB for a 784-input 32-step image), plus a
 * tiny message with the sample's pass-through context.
 */
#ifndef MYELIN_LOIHI_MSG_H
#define MYELIN_LOIHI_MSG_H

#include <myelin/msg.h>

#include "loihi.h"

/* Parses a `network` message: model "cuba_lif", neuron {vth, cdecay,
 * vdecay}, layers [{name, weight [out, in], bias [out]?}]. */
int loihi_fnet_from_msg(const myelin_msg *m, loihi_fnet *f, char *err, size_t errlen);

/* A borrowed view of a `spikes` message. */
typedef struct loihi_spikes {
  int64_t n, steps;
  double dt;
  const uint32_t *step, *unit;
  size_t n_events;
  int has_label;
  int64_t label;
} loihi_spikes;

int loihi_spikes_view(const myelin_msg *m, loihi_spikes *s, char *err, size_t errlen);


/* ---- pending samples ----------------------------------------------------- */
typedef struct loihi_sample {
  myelin_msg *ctx;  /* kind "ctx" + the source's context keys */
  int64_t n, steps;
  int has_label;
  int64_t label;
  size_t n_events;
  int bitmap;       /* 1: bits[steps][n]; 0: ptr[steps+1] + 16/32-bit units */
  int wide;         /* CSR units are 32-bit */
  void *data;
} loihi_sample;

typedef struct loihi_store {
  loihi_sample *items;
  size_t len, cap, bytes;
} loihi_store;

int loihi_store_push(loihi_store *st, const myelin_msg *m, const loihi_spikes *s, char *err,
                     size_t errlen);
/* Expands item i into step/unit arrays (capacity n_events each). */
void loihi_sample_events(const loihi_sample *x, uint32_t *step, uint32_t *unit);
void loihi_store_clear(loihi_store *st);

#endif
