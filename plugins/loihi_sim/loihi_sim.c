/*
 * loihi_sim — bit-accurate Loihi inference inside a pipeline.
 *
 * The network is either a lava-dl netx file (`net: path`, read in init so a
 * bad file fails before anything runs) or arrives on the `network` port as a
 * float network, which is quantized exactly as loihi_export does. Each
 * `spikes` message is one sample: the state is reset, the sample's steps run
 * followed by one flush step per layer, and the output spike counts go out
 * as a `predictions` message (data <i4 [n_out], prediction = first argmax,
 * plus the sample's context). At the end a `metrics` message reports
 * accuracy (over labelled samples), spikes and synaptic operations per
 * sample, and the simulator's own throughput.
 *
 * Samples that arrive before any network (a learner typically emits its
 * network at the end of training) are held in a compact store
 * (loihi_msg.h), bounded by `max_pending`, and run when the network comes. A
 * later network replaces the earlier one for the samples that follow.
 *
 * The arithmetic lives in plugins/loihi_common/loihi_sim_core.c; this file
 * is only glue.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <myelin/io.h>
#include <myelin/plugin.h>

#include "loihi.h"
#include "loihi_msg.h"

enum { IN_SPIKES = 0, IN_NETWORK = 1 };
enum { OUT_PREDICTIONS = 0, OUT_METRICS = 1 };

typedef struct simstate {
  const myelin_host *host;
  myelin_stage *st;
  int have_net;
  loihi_sim sim;
  loihi_store pending;
  int64_t max_pending;
  uint32_t *ev_step, *ev_unit;
  size_t ev_cap;
  int32_t *counts;
  uint64_t samples, labelled, correct, spikes, synops;
  double seconds;
} simstate;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int set_net(simstate *s, const loihi_net *net) {
  char err[512];
  loihi_sim fresh;
  if (loihi_sim_init(&fresh, net, err, sizeof err) != 0) return s->host->error(s->st, "%s", err);
  int32_t *counts = calloc((size_t)fresh.n_out, sizeof(int32_t));
  if (!counts) {
    loihi_sim_free(&fresh);
    return s->host->error(s->st, "out of memory");
  }
  if (s->have_net) loihi_sim_free(&s->sim);
  free(s->counts);
  s->sim = fresh;
  s->counts = counts;
  s->have_net = 1;
  return 0;
}

static int ensure_events(simstate *s, size_t n) {
  if (n <= s->ev_cap) return 0;
  uint32_t *a = realloc(s->ev_step, n * sizeof(uint32_t));
  if (a) s->ev_step = a;
  uint32_t *b = a ? realloc(s->ev_unit, n * sizeof(uint32_t)) : NULL;
  if (b) s->ev_unit = b;
  if (!a || !b) return s->host->error(s->st, "out of memory");
  s->ev_cap = n;
  return 0;
}

/* Runs one sample and emits its prediction; ctx supplies the context keys. */
static int run_sample(simstate *s, const myelin_msg *ctx, int64_t n, int64_t steps,
                      const uint32_t *step, const uint32_t *unit, size_t n_events, int has_label,
                      int64_t label) {
  char err[512];
  if (n != s->sim.n_in)
    return s->host->error(s->st, "spikes: n = %lld but the network has %d inputs", (long long)n,
                          s->sim.n_in);
  double t0 = now_s();
  int rc = loihi_sim_sample(&s->sim, step, unit, n_events, (int)steps, s->counts, err, sizeof err);
  s->seconds += now_s() - t0;
  if (rc) return s->host->error(s->st, "spikes: %s", err);
  int pred = loihi_argmax(s->counts, s->sim.n_out);
  s->samples++;
  s->spikes += s->sim.spikes;
  s->synops += s->sim.synops;
  if (has_label) {
    s->labelled++;
    s->correct += pred == label;
  }
  myelin_builder *b = myelin_builder_new("predictions");
  if (!b) return s->host->error(s->st, "out of memory");
  int64_t shape = s->sim.n_out;
  myelin_build_tensor_copy(b, "data", MYELIN_I4, 1, &shape, s->counts);
  myelin_build_int(b, "prediction", pred);
  myelin_build_context(b, ctx);
  myelin_msg *m = myelin_builder_finish(b);
  if (!m) return s->host->error(s->st, "cannot build predictions message");
  rc = s->host->emit(s->st, OUT_PREDICTIONS, m);
  return rc == MYELIN_ESTOP ? rc : 0;
}

static int run_pending(simstate *s) {
  for (size_t i = 0; i < s->pending.len; i++) {
    const loihi_sample *x = &s->pending.items[i];
    int rc = ensure_events(s, x->n_events ? x->n_events : 1);
    if (rc) return rc;
    loihi_sample_events(x, s->ev_step, s->ev_unit);
    rc = run_sample(s, x->ctx, x->n, x->steps, s->ev_step, s->ev_unit, x->n_events, x->has_label,
                    x->label);
    if (rc) return rc;
  }
  loihi_store_clear(&s->pending);
  return 0;
}

static int on_spikes(simstate *s, const myelin_msg *m) {
  char err[512];
  loihi_spikes sp;
  if (loihi_spikes_view(m, &sp, err, sizeof err) != 0) return s->host->error(s->st, "%s", err);
  if (s->have_net)
    return run_sample(s, m, sp.n, sp.steps, sp.step, sp.unit, sp.n_events, sp.has_label, sp.label);
  if ((int64_t)s->pending.len >= s->max_pending)
    return s->host->error(s->st,
                          "%lld spike samples arrived before any network (max_pending); connect "
                          "'network' upstream of the data or raise max_pending",
                          (long long)s->max_pending);
  if (loihi_store_push(&s->pending, m, &sp, err, sizeof err) != 0)
    return s->host->error(s->st, "%s", err);
  return 0;
}

static int on_network(simstate *s, const myelin_msg *m) {
  char err[512];
  loihi_fnet f;
  loihi_net q;
  if (loihi_fnet_from_msg(m, &f, err, sizeof err) != 0) return s->host->error(s->st, "%s", err);
  int rc = loihi_quantize(&f, &q, NULL, err, sizeof err);
  loihi_fnet_free(&f);
  if (rc) return s->host->error(s->st, "network: %s", err);
  rc = set_net(s, &q);
  loihi_net_free(&q);
  if (rc) return rc;
  return run_pending(s);
}

/* ---- lifecycle ----------------------------------------------------------- */

static void sim_fini(void *state);

static int sim_validate(const myelin_params *p, myelin_validate_ctx *ctx) {
  const char *net = myelin_param_str(p, "net");
  int connected = myelin_validate_input_kinds(ctx, "network") != NULL;
  if ((!net || !*net) && !connected)
    return myelin_validate_error(ctx, "net",
                                 "no network: set 'net' to a netx file or connect the 'network' input");
  return 0;
}

static int sim_init(const myelin_host *host, myelin_stage *st, const myelin_params *p,
                    void **state) {
  simstate *s = calloc(1, sizeof *s);
  if (!s) return host->error(st, "out of memory");
  s->host = host;
  s->st = st;
  s->max_pending = myelin_param_int(p, "max_pending");
  *state = s;
  char *path = myelin_input_path(myelin_param_str(p, "net"), host->pipeline_dir(st));
  int rc = 0;
  if (path && *path) {
    char err[600];
    loihi_net net;
    if (loihi_netx_read_isolated(path, &net, err, sizeof err) != 0) {
      rc = host->error(st, "net: %s", err);
    } else {
      rc = set_net(s, &net);
      loihi_net_free(&net);
    }
  }
  free(path);
  if (rc) { /* fini is only called when init succeeded */
    sim_fini(s);
    *state = NULL;
  }
  return rc;
}

static int sim_process(void *state, int port, myelin_msg *msg) {
  simstate *s = state;
  return port == IN_NETWORK ? on_network(s, msg) : on_spikes(s, msg);
}

static int sim_flush(void *state) {
  simstate *s = state;
  if (s->pending.len)
    return s->host->error(s->st, "%zu spike samples arrived but no network ever did",
                          s->pending.len);
  myelin_builder *b = myelin_builder_new("metrics");
  if (!b) return s->host->error(s->st, "out of memory");
  double n = s->samples ? (double)s->samples : 1.0;
  myelin_build_map_begin(b, "values");
  if (s->labelled) myelin_build_float(b, "accuracy", (double)s->correct / (double)s->labelled);
  myelin_build_int(b, "samples", (int64_t)s->samples);
  myelin_build_float(b, "spikes_per_sample", (double)s->spikes / n);
  myelin_build_float(b, "synops_per_sample", (double)s->synops / n);
  myelin_build_float(b, "samples_per_s", s->seconds > 0 ? (double)s->samples / s->seconds : 0.0);
  myelin_build_map_end(b);
  myelin_build_str(b, "stage", s->host->stage_id(s->st));
  myelin_msg *m = myelin_builder_finish(b);
  if (!m) return s->host->error(s->st, "cannot build metrics message");
  int rc = s->host->emit(s->st, OUT_METRICS, m);
  return rc == MYELIN_ESTOP ? rc : 0;
}

static void sim_fini(void *state) {
  simstate *s = state;
  if (!s) return;
  if (s->have_net) loihi_sim_free(&s->sim);
  loihi_store_clear(&s->pending);
  free(s->ev_step);
  free(s->ev_unit);
  free(s->counts);
  free(s);
}

/* ---- descriptor ---------------------------------------------------------- */

static const myelin_param_def sim_params[] = {
    {.name = "net", .type = MYELIN_PARAM_INPUT_PATH, .def = "",
     .doc = "lava-dl netx HDF5 file (dense CUBA layers) to simulate; a relative path missing from "
            "the working directory is looked up next to the pipeline file. Leave empty to take the "
            "network from the 'network' input instead (quantized like loihi_export)."},
    {.name = "max_pending", .type = MYELIN_PARAM_INT, .def = "20000", .has_range = 1, .min = 0,
     .max = 10000000, .unit = "samples",
     .doc = "Spike samples held (compactly, ~3 KB for a 784x32 image) while waiting for the "
            "first network message; more is an error."},
    {0}};

static const myelin_port_def sim_inputs[] = {
    {.name = "spikes", .kinds = "spikes", .doc = "One sample per message; label/index/split pass through."},
    {.name = "network", .kinds = "network", .optional = 1,
     .doc = "Float CUBA-LIF network (DESIGN.md section 4); replaces `net` for later samples."},
    {0}};

static const myelin_port_def sim_outputs[] = {
    {.name = "predictions", .kinds = "predictions",
     .doc = "Per sample: data = output spike counts <i4 [n_out], prediction = first argmax, context."},
    {.name = "metrics", .kinds = "metrics",
     .doc = "At the end: accuracy, samples, spikes_per_sample, synops_per_sample, samples_per_s."},
    {0}};

static const myelin_plugin_desc sim_desc = {
    MYELIN_DESC_HEADER,
    .name = "loihi_sim",
    .version = "1.0.0",
    .summary = "Bit-accurate Loihi (Lava PyLifModelBitAcc + Dense) inference of dense CUBA networks",
    .doc = "Reproduces Lava's bit-accurate CUBA LIF and Dense models step for step: 24-bit "
           "wrapped current, clamped voltage, decays as sign-magnitude 12-bit shifts, one step of "
           "synaptic delay per layer and one flush step per layer after the input. Event-driven: "
           "only weight rows of spiking inputs are touched. See plugins/loihi_sim/README.md.",
    .params = sim_params,
    .inputs = sim_inputs,
    .outputs = sim_outputs,
    .validate = sim_validate,
    .init = sim_init,
    .process = sim_process,
    .flush = sim_flush,
    .fini = sim_fini,
};

MYELIN_PLUGIN(sim_desc)
