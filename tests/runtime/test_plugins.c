/*
 * Test-only plugins for the runtime suites, built into one .so per name
 * with -DTP_NAME=...: `slow_sink` (sleeps `delay_us` per message),
 * `fail_after` (passthrough that fails on message `n`), and `bad_abi`
 * (declares ABI major + 1, which the loader must refuse). Both forward
 * every message and return what emit returned.
 */
#include <stdlib.h>
#include <unistd.h>

#include "myelin/plugin.h"

typedef struct tp {
  const myelin_host *host;
  myelin_stage *st;
  int64_t n, seen, delay;
} tp;

static int tp_init(const myelin_host *host, myelin_stage *st, const myelin_params *p, void **state) {
  tp *s = calloc(1, sizeof *s);
  if (!s) return MYELIN_ENOMEM;
  s->host = host;
  s->st = st;
  s->n = myelin_param_int(p, "n");
  s->delay = myelin_param_int(p, "delay_us");
  *state = s;
  return 0;
}

static int tp_process(void *state, int port, myelin_msg *m) {
  (void)port;
  tp *s = state;
  if (s->delay) usleep((useconds_t)s->delay);
  if (s->n >= 0 && s->seen++ == s->n) return s->host->error(s->st, "planted failure at message %lld", (long long)s->n);
  /* emit's MYELIN_ESTOP (the run aborting) is passed on, as loihi_sim does:
   * the runtime must not report it as this stage's error */
  if (s->host->emit) return s->host->emit(s->st, 0, myelin_msg_ref(m));
  return 0;
}

static void tp_fini(void *state) { free(state); }

static const myelin_param_def tp_params[] = {
    {.name = "n", .type = MYELIN_PARAM_INT, .def = "-1", .doc = "fail on this message (0-based); -1 never"},
    {.name = "delay_us", .type = MYELIN_PARAM_INT, .def = "0", .has_range = 1, .min = 0, .max = 1e7,
     .doc = "sleep per message"},
    {0}};
static const myelin_port_def tp_in[] = {{.name = "in", .kinds = "*"}, {0}};
static const myelin_port_def tp_out[] = {{.name = "out", .kinds = "*"}, {0}};

static const myelin_plugin_desc tp_desc = {
#ifdef TP_BAD_ABI
    .abi_major = MYELIN_ABI_MAJOR + 1, .abi_minor = 0, .struct_size = sizeof(myelin_plugin_desc),
#else
    MYELIN_DESC_HEADER,
#endif
    .name = TP_NAME,
    .version = "0.0.1",
    .summary = "runtime test plugin",
    .params = tp_params,
    .inputs = tp_in,
    .outputs = tp_out,
    .init = tp_init,
    .process = tp_process,
    .fini = tp_fini,
};

MYELIN_PLUGIN(tp_desc)
