/*
 * passthrough — forwards every message unchanged (a reference, no copy).
 * Useful in benchmarks (per-stage overhead) and to join several inputs.
 */
#include <stdlib.h>

#include "myelin/plugin.h"

typedef struct pt {
  const myelin_host *host;
  myelin_stage *st;
} pt;

static int pt_init(const myelin_host *host, myelin_stage *st, const myelin_params *p, void **state) {
  (void)p;
  pt *s = calloc(1, sizeof *s);
  if (!s) return MYELIN_ENOMEM;
  s->host = host;
  s->st = st;
  *state = s;
  return 0;
}

static int pt_process(void *state, int port, myelin_msg *m) {
  (void)port;
  pt *s = state;
  int rc = s->host->emit(s->st, 0, myelin_msg_ref(m));
  return rc == MYELIN_ESTOP ? 0 : rc;
}

static void pt_fini(void *state) { free(state); }

static int pt_validate(const myelin_params *p, myelin_validate_ctx *ctx) {
  (void)p;
  const char *k = myelin_validate_input_kinds(ctx, "in");
  if (k) myelin_validate_set_output_kinds(ctx, "out", k); /* same kinds out as in */
  return 0;
}

static const myelin_param_def pt_params[] = {{0}};
static const myelin_port_def pt_inputs[] = {{.name = "in", .kinds = "*", .doc = "any message"}, {0}};
static const myelin_port_def pt_outputs[] = {{.name = "out", .kinds = "*", .doc = "the same messages"}, {0}};

static const myelin_plugin_desc pt_desc = {
    MYELIN_DESC_HEADER,
    .name = "passthrough",
    .version = "1.0.0",
    .summary = "forwards every message unchanged",
    .params = pt_params,
    .inputs = pt_inputs,
    .outputs = pt_outputs,
    .validate = pt_validate,
    .init = pt_init,
    .process = pt_process,
    .fini = pt_fini,
};

MYELIN_PLUGIN(pt_desc)
