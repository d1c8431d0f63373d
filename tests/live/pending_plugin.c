/*
 * pend — a test-only sink checking host->pending() (ABI 1.1) from inside a
 * running pipeline. At every process() it records what pending() returned;
 * in flush it checks the promise a batching plugin relies on — pending()
 * never over-counts: when it said k at message i, at least k more messages
 * followed (end-of-stream markers of other inputs do not count) — and that
 * pending() is 0 in flush. Counters: `messages`, `violations` (over-counts,
 * plus 1 if flush saw pending() > 0), `max_pending`, `nonzero` (messages
 * with something queued behind them).
 */
#include <stddef.h>
#include <stdlib.h>

#include "myelin/plugin.h"

typedef struct pend {
  const myelin_host *host;
  myelin_stage *st;
  size_t *seen, n, cap;
} pend;

static int pd_init(const myelin_host *host, myelin_stage *st, const myelin_params *p, void **state) {
  (void)p;
  if (host->struct_size <= offsetof(myelin_host, pending) || !host->pending)
    return host->error(st, "the host has no pending() (ABI < 1.1)");
  pend *s = calloc(1, sizeof *s);
  if (!s) return MYELIN_ENOMEM;
  s->host = host;
  s->st = st;
  *state = s;
  return 0;
}

static int pd_process(void *state, int port, myelin_msg *m) {
  (void)port, (void)m;
  pend *s = state;
  if (s->n == s->cap) {
    s->cap = s->cap ? 2 * s->cap : 4096;
    size_t *ns = realloc(s->seen, s->cap * sizeof *ns);
    if (!ns) return MYELIN_ENOMEM;
    s->seen = ns;
  }
  s->seen[s->n++] = s->host->pending(s->st);
  return 0;
}

static int pd_flush(void *state) {
  pend *s = state;
  int64_t violations = s->host->pending(s->st) != 0, nonzero = 0;
  size_t max = 0;
  for (size_t i = 0; i < s->n; i++) {
    violations += s->seen[i] > s->n - i - 1;
    nonzero += s->seen[i] > 0;
    if (s->seen[i] > max) max = s->seen[i];
  }
  s->host->counter_add(s->st, "messages", (int64_t)s->n);
  s->host->counter_add(s->st, "violations", violations);
  s->host->counter_add(s->st, "max_pending", (int64_t)max);
  s->host->counter_add(s->st, "nonzero", nonzero);
  return 0;
}

static void pd_fini(void *state) {
  pend *s = state;
  free(s->seen);
  free(s);
}

static const myelin_param_def pd_params[] = {{0}};
static const myelin_port_def pd_in[] = {{.name = "in", .kinds = "*"}, {0}};

static const myelin_plugin_desc pd_desc = {
    MYELIN_DESC_HEADER,  .name = "pend",
    .version = "0.0.1",  .summary = "test sink: host->pending() never over-counts",
    .params = pd_params, .inputs = pd_in,
    .init = pd_init,     .process = pd_process,
    .flush = pd_flush,   .fini = pd_fini,
};

MYELIN_PLUGIN(pd_desc)
