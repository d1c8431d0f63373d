/*
 * null_sink — accepts and drops every message (benchmarks and tests).
 * Counts messages and bytes into the `messages` and `bytes` counters.
 */
#include <stdlib.h>

#include "myelin/plugin.h"

typedef struct nsink {
  const myelin_host *host;
  myelin_stage *st;
  int64_t n, bytes;
} nsink;

static int ns_init(const myelin_host *host, myelin_stage *st, const myelin_params *p, void **state) {
  (void)p;
  nsink *s = calloc(1, sizeof *s);
  if (!s) return MYELIN_ENOMEM;
  s->host = host;
  s->st = st;
  *state = s;
  return 0;
}

static int ns_process(void *state, int port, myelin_msg *m) {
  (void)port;
  nsink *s = state;
  size_t len;
  myelin_msg_bytes(m, &len);
  s->n++;
  s->bytes += (int64_t)len;
  return 0;
}

static int ns_flush(void *state) {
  nsink *s = state;
  s->host->counter_add(s->st, "messages", s->n);
  s->host->counter_add(s->st, "bytes", s->bytes);
  return 0;
}

static void ns_fini(void *state) { free(state); }

static const myelin_param_def ns_params[] = {{0}};
static const myelin_port_def ns_inputs[] = {{.name = "in", .kinds = "*", .doc = "any message"}, {0}};

static const myelin_plugin_desc ns_desc = {
    MYELIN_DESC_HEADER,
    .name = "null_sink",
    .version = "1.0.0",
    .summary = "drops every message (benchmarks, tests)",
    .params = ns_params,
    .inputs = ns_inputs,
    .init = ns_init,
    .process = ns_process,
    .flush = ns_flush,
    .fini = ns_fini,
};

MYELIN_PLUGIN(ns_desc)
