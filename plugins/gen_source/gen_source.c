/*
 * gen_source — synthetic `tensor` messages for benchmarks and tests.
 *
 * Emits `count` messages (0 = endless until interrupted), each carrying a
 * |u1 `data` tensor of `bytes` bytes, with `seq` 0, 1, 2, ... and `t` the
 * seconds since the source started (or the scheduled time when paced).
 * With `rate` > 0 messages are paced to that many per second against the
 * monotonic clock (sleeping in between, never drifting); rate 0 emits as
 * fast as downstream accepts. The payload is filled with (seq + i) & 0xff
 * so a consumer can verify what it got.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/clock.h"
#include "myelin/plugin.h"

typedef struct gen {
  const myelin_host *host;
  myelin_stage *st;
  uint64_t count, bytes;
  double rate;
  int fill, reuse;
} gen;

static int gen_init(const myelin_host *host, myelin_stage *st, const myelin_params *p, void **state) {
  gen *g = calloc(1, sizeof *g);
  if (!g) return MYELIN_ENOMEM;
  g->host = host;
  g->st = st;
  g->count = (uint64_t)myelin_param_int(p, "count");
  g->bytes = (uint64_t)myelin_param_int(p, "bytes");
  g->rate = myelin_param_float(p, "rate");
  g->fill = myelin_param_bool(p, "fill");
  g->reuse = myelin_param_bool(p, "reuse");
  *state = g;
  return 0;
}

static int gen_start(void *state) {
  gen *g = state;
  double t0 = clock_mono();
  int64_t shape[1] = {(int64_t)g->bytes};
  myelin_msg *shared = NULL;
  for (uint64_t seq = 0; g->count == 0 || seq < g->count; seq++) {
    if (g->host->stopping(g->st)) break;
    double t = clock_mono() - t0;
    if (g->rate > 0) {
      double due = (double)seq / g->rate;
      if (due > t) clock_sleep_until(t0 + due);
      t = due;
    }
    if (shared) {
      if (g->host->emit(g->st, 0, myelin_msg_ref(shared)) == MYELIN_ESTOP) break;
      continue;
    }
    myelin_builder *b = myelin_builder_new("tensor");
    myelin_build_uint(b, "seq", seq);
    myelin_build_float(b, "t", t);
    uint8_t *data = myelin_build_tensor(b, "data", MYELIN_U1, 1, shape);
    if (data && g->fill)
      for (uint64_t i = 0; i < g->bytes; i++) data[i] = (uint8_t)(seq + i);
    else if (data)
      memset(data, (int)(seq & 0xff), g->bytes);
    myelin_msg *m = myelin_builder_finish(b);
    if (!m) return g->host->error(g->st, "cannot build message %llu (out of memory?)", (unsigned long long)seq);
    if (g->reuse) shared = myelin_msg_ref(m);
    if (g->host->emit(g->st, 0, m) == MYELIN_ESTOP) break;
  }
  myelin_msg_unref(shared);
  return 0;
}

static void gen_fini(void *state) { free(state); }

static const myelin_param_def gen_params[] = {
    {.name = "count", .type = MYELIN_PARAM_INT, .def = "1000", .has_range = 1, .min = 0, .max = 9.2e18,
     .unit = "messages", .doc = "How many messages to emit; 0 = endless until interrupted."},
    {.name = "bytes", .type = MYELIN_PARAM_INT, .def = "64", .has_range = 1, .min = 0, .max = 1 << 30,
     .unit = "bytes", .doc = "Payload size of the |u1 `data` tensor."},
    {.name = "rate", .type = MYELIN_PARAM_FLOAT, .def = "0", .has_range = 1, .min = 0, .max = 1e9,
     .unit = "messages/s", .doc = "Pacing against the monotonic clock; 0 = as fast as possible."},
    {.name = "fill", .type = MYELIN_PARAM_BOOL, .def = "false",
     .doc = "Fill byte i of message seq with (seq + i) & 0xff (else every byte = seq & 0xff)."},
    {.name = "reuse", .type = MYELIN_PARAM_BOOL, .def = "false",
     .doc = "Build one message and emit it `count` times (seq and t stay those of the first): measures "
            "transport alone, since the runtime moves references, never payloads."},
    {0}};

static const myelin_port_def gen_outputs[] = {
    {.name = "out", .kinds = "tensor", .doc = "tensor messages with seq, t and data"}, {0}};

static const myelin_plugin_desc gen_desc = {
    MYELIN_DESC_HEADER,
    .name = "gen_source",
    .version = "1.0.0",
    .summary = "synthetic tensor messages (benchmarks, tests)",
    .params = gen_params,
    .outputs = gen_outputs,
    .init = gen_init,
    .start = gen_start,
    .fini = gen_fini,
};

MYELIN_PLUGIN(gen_desc)
