/*
 * abi10 — a test-only sink declaring plugin ABI 1.0, as a plugin built
 * before host->pending existed: a 1.1 host must still load and run it (minor
 * versions only add at the end of structs). Counts messages (`messages`)
 * and records the host table size it was given (`host_size`).
 */
#include <stdlib.h>

#include "myelin/plugin.h"

typedef struct a10 {
  const myelin_host *host;
  myelin_stage *st;
  int64_t n;
} a10;

static int a_init(const myelin_host *host, myelin_stage *st, const myelin_params *p, void **state) {
  (void)p;
  a10 *s = calloc(1, sizeof *s);
  if (!s) return MYELIN_ENOMEM;
  s->host = host;
  s->st = st;
  *state = s;
  return 0;
}

static int a_process(void *state, int port, myelin_msg *m) {
  (void)port, (void)m;
  ((a10 *)state)->n++;
  return 0;
}

static int a_flush(void *state) {
  a10 *s = state;
  s->host->counter_add(s->st, "messages", s->n);
  s->host->counter_add(s->st, "host_size", (int64_t)s->host->struct_size);
  return 0;
}

static void a_fini(void *state) { free(state); }

static const myelin_param_def a_params[] = {{0}};
static const myelin_port_def a_in[] = {{.name = "in", .kinds = "*"}, {0}};

static const myelin_plugin_desc a_desc = {
    .abi_major = 1,
    .abi_minor = 0, /* built against 1.0 */
    .struct_size = sizeof(myelin_plugin_desc),
    .name = "abi10",
    .version = "0.0.1",
    .summary = "test sink declaring ABI 1.0",
    .params = a_params,
    .inputs = a_in,
    .init = a_init,
    .process = a_process,
    .flush = a_flush,
    .fini = a_fini,
};

MYELIN_PLUGIN(a_desc)
