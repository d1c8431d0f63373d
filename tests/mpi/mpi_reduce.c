/*
 * mpi_reduce — a test-only stage with a group result: it counts the
 * messages it gets and sums their `data` values; in flush every rank
 * allreduces the count and the sum, and rank 0 emits one `tensor` message
 * {count, sum}. A job that aborts never reaches the emit (the allreduce
 * returns MYELIN_ESTOP), so a group output written downstream stays absent.
 * `delay_us` sleeps per message (a slow stage, to interrupt).
 */
#include <stdlib.h>
#include <unistd.h>

#include "myelin/plugin.h"

typedef struct mr {
  const myelin_host *host;
  myelin_stage *st;
  int64_t delay;
  double acc[2]; /* count, sum */
} mr;

static int mr_init(const myelin_host *host, myelin_stage *st, const myelin_params *p, void **state) {
  mr *s = calloc(1, sizeof *s);
  if (!s) return MYELIN_ENOMEM;
  s->host = host;
  s->st = st;
  s->delay = myelin_param_int(p, "delay_us");
  *state = s;
  return 0;
}

static int mr_process(void *state, int port, myelin_msg *m) {
  (void)port;
  mr *s = state;
  if (s->delay) usleep((useconds_t)s->delay);
  myelin_tensor t;
  s->acc[0] += 1;
  if (myelin_msg_tensor(m, "data", &t) == 0 && t.dtype == MYELIN_F8 && t.nbytes >= 8)
    s->acc[1] += ((const double *)t.data)[0];
  return 0;
}

static int mr_flush(void *state) {
  mr *s = state;
  int rc = s->host->allreduce(s->st, s->acc, 2, MYELIN_F8, MYELIN_OP_SUM);
  if (rc || s->host->rank(s->st) != 0) return rc;
  myelin_builder *b = myelin_builder_new("tensor");
  int64_t shape[1] = {2};
  myelin_build_int(b, "ranks", s->host->size(s->st));
  myelin_build_tensor_copy(b, "data", MYELIN_F8, 1, shape, s->acc);
  myelin_msg *m = myelin_builder_finish(b);
  if (!m) return s->host->error(s->st, "out of memory");
  s->host->log(s->st, MYELIN_LOG_INFO, "group: %.0f messages, sum %.0f over %d ranks", s->acc[0], s->acc[1],
               s->host->size(s->st));
  return s->host->emit(s->st, 0, m);
}

static void mr_fini(void *state) { free(state); }

static const myelin_param_def mr_params[] = {{.name = "delay_us",
                                              .type = MYELIN_PARAM_INT,
                                              .def = "0",
                                              .has_range = 1,
                                              .min = 0,
                                              .max = 1e7,
                                              .doc = "sleep per message"},
                                             {0}};
static const myelin_port_def mr_in[] = {{.name = "in", .kinds = "*"}, {0}};
static const myelin_port_def mr_out[] = {{.name = "out", .kinds = "tensor"}, {0}};

static const myelin_plugin_desc mr_desc = {
    MYELIN_DESC_HEADER,    .name = "mpi_reduce", .version = "0.0.1", .summary = "MPI group-result test stage",
    .params = mr_params,   .inputs = mr_in,      .outputs = mr_out,  .init = mr_init,
    .process = mr_process, .flush = mr_flush,    .fini = mr_fini,
};

MYELIN_PLUGIN(mr_desc)
