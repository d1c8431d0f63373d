/*
 * spike_encoder.c — the `spike_encoder` stage: `sample`, `tensor` or
 * `volume` in, `spikes` out, context passed through. The coding itself is in
 * encode.c (plain kernels); this file converts inputs to float, picks the
 * kernel, and builds the messages.
 *
 * What counts as one sample:
 *  - rate / latency / regular: the message's tensor (`x` of a sample, `data`
 *    otherwise) flattened, n = its element count. With `batch: true` a
 *    tensor of 2+ dims is instead a batch [B, ...]: each row becomes its own
 *    `spikes` message, with `index` = the message's `index` (else 0) + row
 *    and `label` from a `labels` tensor when present (what `dataset` sends
 *    with `whole: true`). Rows are encoded and their messages built by
 *    `threads` threads, a block at a time, then emitted in row order.
 *  - delta: a tensor of 2+ dims is a series [T, N...] encoded in one message
 *    (steps = T, n = 2N); a 1-D tensor or `volume` is one frame of a stream:
 *    each gives a message with steps = 1, and the per-channel references
 *    persist across messages until the channel count or the
 *    subject/task/run changes.
 *
 * The rate coder's random draws are keyed by (seed, epoch, index), where
 * index is the message's `index` (else `seq`, else the input count): output
 * is identical however many threads or however large the batches.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encode.h"
#include "myelin/myelin.h"

enum { M_RATE, M_LATENCY, M_REGULAR, M_DELTA };
#define MAX_THREADS 64
#define ROWS_PER_THREAD 256

/* Per-thread scratch: reused from row to row and message to message. */
typedef struct scratch {
  float *xf;
  size_t xcap;
  double *v;
  size_t vcap;
  spk_rate_scratch rs;
  spk_events ev;
} scratch;

typedef struct encoder {
  const myelin_host *host;
  myelin_stage *st;
  int method, threads, batch;
  uint32_t steps;
  double gain, threshold, dt;
  uint64_t seed, seq, received;
  scratch sc[MAX_THREADS];
  /* delta streams */
  double *ref;
  size_t ref_n;
  int primed;
  char stream_id[512];
} encoder;

static void scratch_free(scratch *s) {
  free(s->xf);
  free(s->v);
  spk_rate_scratch_free(&s->rs);
  spk_events_free(&s->ev);
}

static void enc_fini(void *state) {
  encoder *e = state;
  if (!e) return;
  for (int i = 0; i < MAX_THREADS; i++) scratch_free(&e->sc[i]);
  free(e->ref);
  free(e);
}

static int method_of(const char *s) {
  if (strcmp(s, "latency") == 0) return M_LATENCY;
  if (strcmp(s, "regular") == 0) return M_REGULAR;
  if (strcmp(s, "delta") == 0) return M_DELTA;
  return M_RATE;
}

static int enc_validate(const myelin_params *p, myelin_validate_ctx *ctx) {
  if (method_of(myelin_param_str(p, "method")) == M_DELTA && !(myelin_param_float(p, "threshold") > 0))
    return myelin_validate_error(ctx, "threshold", "method delta needs threshold > 0 (got %g)",
                                 myelin_param_float(p, "threshold"));
  return 0;
}

static int enc_init(const myelin_host *host, myelin_stage *st, const myelin_params *p, void **state) {
  encoder *e = calloc(1, sizeof *e);
  if (!e) return host->error(st, "out of memory");
  *state = e;
  e->host = host;
  e->st = st;
  e->method = method_of(myelin_param_str(p, "method"));
  e->steps = (uint32_t)myelin_param_int(p, "steps");
  e->gain = myelin_param_float(p, "gain");
  e->threshold = myelin_param_float(p, "threshold");
  e->dt = myelin_param_float(p, "dt");
  e->seed = (uint64_t)myelin_param_int(p, "seed");
  e->batch = myelin_param_bool(p, "batch");
  e->threads = (int)myelin_param_int(p, "threads");
  return 0;
}

/* ---- input conversion -------------------------------------------------------- */

static int grow(void **p, size_t *cap, size_t n, size_t es) {
  if (n <= *cap) return 0;
  void *np = realloc(*p, (n ? n : 1) * es);
  if (!np) return -1;
  *p = np;
  *cap = n;
  return 0;
}

#define CONVERT(T)                                                                           \
  do {                                                                                       \
    const T *src = (const T *)t->data + first;                                               \
    for (size_t i = 0; i < n; i++) out[i] = (float)src[i];                                   \
  } while (0)

/* Converts n elements starting at element `first` of t to float. */
static void to_float(const myelin_tensor *t, size_t first, size_t n, float *out) {
  switch (t->dtype) {
  case MYELIN_F4: memcpy(out, (const float *)t->data + first, n * sizeof *out); break;
  case MYELIN_F8: CONVERT(double); break;
  case MYELIN_I1: CONVERT(int8_t); break;
  case MYELIN_I2: CONVERT(int16_t); break;
  case MYELIN_I4: CONVERT(int32_t); break;
  case MYELIN_I8: CONVERT(int64_t); break;
  case MYELIN_U2: CONVERT(uint16_t); break;
  case MYELIN_U4: CONVERT(uint32_t); break;
  case MYELIN_U8: CONVERT(uint64_t); break;
  default: CONVERT(uint8_t); break; /* u1, b1 */
  }
}

/* The input row as floats: in place for <f4 (payloads are aligned), else
 * converted into the scratch buffer. NULL when out of memory. */
static const float *input_floats(scratch *s, const myelin_tensor *t, size_t first, size_t n) {
  if (t->dtype == MYELIN_F4) return (const float *)t->data + first;
  if (grow((void **)&s->xf, &s->xcap, n, sizeof *s->xf)) return NULL;
  to_float(t, first, n, s->xf);
  return s->xf;
}

/* ---- one sample ---------------------------------------------------------------- */

/* Encodes x[0..n) with rate/latency/regular into s->ev (cleared first). */
static int encode_sample(const encoder *e, scratch *s, const float *x, size_t n, uint64_t epoch,
                         uint64_t index) {
  s->ev.n = 0;
  switch (e->method) {
  case M_RATE:
    return spk_rate(x, n, e->steps, e->gain, spk_key(e->seed, epoch, index), &s->rs, &s->ev);
  case M_LATENCY: return spk_latency(x, n, e->steps, e->threshold, &s->ev);
  default:
    if (grow((void **)&s->v, &s->vcap, n, sizeof *s->v)) return -1;
    memset(s->v, 0, n * sizeof *s->v);
    return spk_regular(x, n, e->steps, e->gain, s->v, &s->ev);
  }
}

static void build_events(myelin_builder *b, const encoder *e, const spk_events *ev, size_t n,
                         uint32_t steps, uint64_t seq) {
  /* the two tensors (each with up to 63 bytes of pad and its header) and the small fields */
  myelin_builder_reserve(b, 2 * (ev->n * sizeof(uint32_t) + 160) + 512);
  myelin_build_uint(b, "seq", seq);
  myelin_build_uint(b, "n", n);
  myelin_build_uint(b, "steps", steps);
  myelin_build_float(b, "dt", e->dt);
  int64_t len = (int64_t)ev->n;
  myelin_build_tensor_copy(b, "step", MYELIN_U4, 1, &len, ev->step);
  myelin_build_tensor_copy(b, "unit", MYELIN_U4, 1, &len, ev->unit);
}

static int emit_built(encoder *e, myelin_builder *b) {
  myelin_msg *m = myelin_builder_finish(b);
  if (!m) return e->host->error(e->st, "cannot build a spikes message (out of memory?)");
  e->host->counter_add(e->st, "spikes", 1);
  int rc = e->host->emit(e->st, 0, m);
  return rc == MYELIN_ESTOP ? 0 : rc;
}

static int emit_events(encoder *e, const myelin_msg *src, const spk_events *ev, size_t n, uint32_t steps) {
  myelin_builder *b = myelin_builder_new("spikes");
  if (!b) return e->host->error(e->st, "out of memory");
  build_events(b, e, ev, n, steps, e->seq++);
  myelin_build_context(b, src);
  static const char *const extra[] = {"t", NULL};
  myelin_build_fields(b, src, extra);
  return emit_built(e, b);
}

/* ---- batches ------------------------------------------------------------------- */

typedef struct batch_job {
  const encoder *e;
  scratch *s;
  const myelin_msg *src;
  const myelin_tensor *x, *labels;
  size_t row_len, first, count;
  uint64_t index0, epoch, seq0;
  myelin_msg **out;
  int failed;
} batch_job;

/* Row r of a labels tensor of an integer dtype. */
static int64_t label_at(const myelin_tensor *t, size_t r) {
  const void *d = t->data;
  switch (t->dtype) {
  case MYELIN_I8: return ((const int64_t *)d)[r];
  case MYELIN_I4: return ((const int32_t *)d)[r];
  case MYELIN_I2: return ((const int16_t *)d)[r];
  case MYELIN_I1: return ((const int8_t *)d)[r];
  case MYELIN_U8: return (int64_t)((const uint64_t *)d)[r];
  case MYELIN_U4: return ((const uint32_t *)d)[r];
  case MYELIN_U2: return ((const uint16_t *)d)[r];
  default: return ((const uint8_t *)d)[r]; /* u1, b1 */
  }
}

static const char *const batch_context[] = {"subject", "task", "run", "split", "epoch", "t", NULL};

static void *run_batch_job(void *arg) {
  batch_job *j = arg;
  scratch *s = j->s;
  for (size_t r = j->first; r < j->first + j->count; r++) {
    const float *xf = input_floats(s, j->x, r * j->row_len, j->row_len);
    myelin_builder *b = NULL;
    if (!xf || encode_sample(j->e, s, xf, j->row_len, j->epoch, j->index0 + r) != 0 ||
        !(b = myelin_builder_new("spikes"))) {
      j->failed = 1;
      return NULL;
    }
    build_events(b, j->e, &s->ev, j->row_len, j->e->steps, j->seq0 + r);
    myelin_build_fields(b, j->src, batch_context);
    myelin_build_uint(b, "index", j->index0 + r);
    if (j->labels) myelin_build_int(b, "label", label_at(j->labels, r));
    if (!(j->out[r - j->first] = myelin_builder_finish(b))) { j->failed = 1; return NULL; }
  }
  return NULL;
}

/* Encodes rows [first, first+count) on up to e->threads threads. */
static int run_block(encoder *e, batch_job *proto, size_t first, size_t count, myelin_msg **out) {
  int nt = e->threads;
  if ((size_t)nt > count) nt = (int)count;
  batch_job jobs[MAX_THREADS];
  pthread_t tid[MAX_THREADS];
  int started[MAX_THREADS] = {0};
  for (int t = 0; t < nt; t++) {
    jobs[t] = *proto;
    jobs[t].s = &e->sc[t];
    jobs[t].first = first + count * (size_t)t / (size_t)nt;
    jobs[t].count = first + count * (size_t)(t + 1) / (size_t)nt - jobs[t].first;
    jobs[t].out = out + (jobs[t].first - first);
    if (t > 0) started[t] = pthread_create(&tid[t], NULL, run_batch_job, &jobs[t]) == 0;
    if (t > 0 && !started[t]) run_batch_job(&jobs[t]); /* no thread: do it here */
  }
  run_batch_job(&jobs[0]);
  int failed = jobs[0].failed;
  for (int t = 1; t < nt; t++) {
    if (started[t]) pthread_join(tid[t], NULL);
    failed |= jobs[t].failed;
  }
  return failed ? -1 : 0;
}

static int process_batch(encoder *e, const myelin_msg *src, const myelin_tensor *x, uint64_t epoch) {
  size_t rows = (size_t)x->shape[0], row_len = rows ? x->count / rows : 0;
  myelin_tensor labels;
  int has_labels = myelin_msg_tensor(src, "labels", &labels) == 0 && labels.ndim == 1 &&
                   (size_t)labels.shape[0] == rows && labels.dtype != MYELIN_F4 &&
                   labels.dtype != MYELIN_F8;
  uint64_t index0 = 0;
  myelin_msg_uint(src, "index", &index0);
  batch_job proto = {.e = e, .src = src, .x = x, .labels = has_labels ? &labels : NULL,
                     .row_len = row_len, .index0 = index0, .epoch = epoch, .seq0 = e->seq};
  size_t block = (size_t)e->threads * ROWS_PER_THREAD;
  myelin_msg **out = calloc(block, sizeof *out);
  if (!out) return e->host->error(e->st, "out of memory");
  int rc = 0;
  for (size_t first = 0; first < rows && rc == 0; first += block) {
    size_t count = rows - first < block ? rows - first : block;
    if (run_block(e, &proto, first, count, out) != 0) {
      rc = e->host->error(e->st, "out of memory while encoding a batch of %zu rows", rows);
    }
    for (size_t i = 0; i < count; i++) {
      if (rc == 0 && out[i]) {
        e->host->counter_add(e->st, "spikes", 1);
        int er = e->host->emit(e->st, 0, out[i]);
        if (er == MYELIN_ESTOP) rc = 1;
        else if (er) rc = er;
      } else {
        myelin_msg_unref(out[i]);
      }
      out[i] = NULL;
    }
  }
  e->seq += rows;
  free(out);
  return rc > 0 ? 0 : rc;
}

/* ---- delta ------------------------------------------------------------------- */

/* subject/task/run of a message, to notice a new stream of volumes. */
static void stream_id(const myelin_msg *m, char *buf, size_t n) {
  char s[160] = "", t[160] = "", r[160] = "";
  myelin_msg_str(m, "subject", s, sizeof s);
  myelin_msg_str(m, "task", t, sizeof t);
  int64_t run;
  if (myelin_msg_int(m, "run", &run) == 0) snprintf(r, sizeof r, "%lld", (long long)run);
  else myelin_msg_str(m, "run", r, sizeof r);
  snprintf(buf, n, "%s\x1f%s\x1f%s", s, t, r);
}

static int process_delta(encoder *e, const myelin_msg *src, const myelin_tensor *x, const float *xf) {
  scratch *s = &e->sc[0];
  s->ev.n = 0;
  int series = x->ndim >= 2;
  size_t T = series ? (size_t)x->shape[0] : 1;
  size_t n = T ? x->count / T : 0;
  if (series) {
    double *ref = malloc((n ? n : 1) * sizeof *ref);
    int primed = 0;
    if (!ref || spk_delta(xf, T, n, e->threshold, ref, &primed, 0, &s->ev) != 0) {
      free(ref);
      return e->host->error(e->st, "out of memory");
    }
    free(ref);
    return emit_events(e, src, &s->ev, 2 * n, (uint32_t)T);
  }
  char id[512];
  stream_id(src, id, sizeof id);
  if (n != e->ref_n || strcmp(id, e->stream_id) != 0) {
    double *ref = realloc(e->ref, (n ? n : 1) * sizeof *ref);
    if (!ref) return e->host->error(e->st, "out of memory");
    e->ref = ref;
    e->ref_n = n;
    e->primed = 0;
    snprintf(e->stream_id, sizeof e->stream_id, "%s", id);
  }
  if (spk_delta(xf, 1, n, e->threshold, e->ref, &e->primed, 0, &s->ev) != 0)
    return e->host->error(e->st, "out of memory");
  return emit_events(e, src, &s->ev, 2 * n, 1);
}

/* ---- process ------------------------------------------------------------------ */

static int enc_process(void *state, int port, myelin_msg *msg) {
  (void)port;
  encoder *e = state;
  uint64_t received = e->received++;
  const char *kind = myelin_msg_kind(msg);
  const char *field = strcmp(kind, "sample") == 0 ? "x" : "data";
  myelin_tensor x;
  int rc = myelin_msg_tensor(msg, field, &x);
  if (rc != 0)
    return e->host->error(e->st, "input message %llu (kind '%s'): %s tensor field '%s'",
                          (unsigned long long)received, kind,
                          rc == MYELIN_ENOENT ? "no" : "malformed", field);
  uint64_t epoch = 0, index;
  myelin_msg_uint(msg, "epoch", &epoch);
  if (myelin_msg_uint(msg, "index", &index) != 0 && myelin_msg_uint(msg, "seq", &index) != 0)
    index = received;
  if (e->batch && x.ndim >= 2 && e->method != M_DELTA) return process_batch(e, msg, &x, epoch);
  scratch *s = &e->sc[0];
  const float *xf = input_floats(s, &x, 0, x.count);
  if (!xf) return e->host->error(e->st, "out of memory for %zu inputs", x.count);
  if (e->method == M_DELTA) return process_delta(e, msg, &x, xf);
  if (encode_sample(e, s, xf, x.count, epoch, index) != 0)
    return e->host->error(e->st, "out of memory while encoding %zu inputs", x.count);
  return emit_events(e, msg, &s->ev, x.count, e->steps);
}

static const myelin_param_def enc_params[] = {
    {"method", MYELIN_PARAM_ENUM, "rate", 0, 0, 0, "rate|latency|regular|delta", NULL,
     "rate: unit i spikes at each step with probability clamp(gain*x_i, 0, 1) (Bernoulli; "
     "counter-based draws keyed by seed, epoch, index, step, unit). "
     "latency: one spike per unit with x_i > threshold, at step "
     "round((1 - x_i/max(x)) * (steps - 1)) (halves round up; none when max(x) <= 0). "
     "regular: integrate-and-fire, v_i += gain*x_i each step, spike when v_i > 1, then v_i = 0. "
     "delta: two units per channel (2c up, 2c+1 down); a spike when the signal moved by >= "
     "threshold since the channel's reference, which then moves by threshold; the first frame "
     "is the reference."},
    {"steps", MYELIN_PARAM_INT, "32", 1, 1, 1000000, NULL, "steps",
     "Time steps per sample (rate, latency, regular); delta uses the series length."},
    {"gain", MYELIN_PARAM_FLOAT, "1.0", 0, 0, 0, NULL, NULL,
     "Input multiplier: spike probability (rate) or drive per step (regular)."},
    {"threshold", MYELIN_PARAM_FLOAT, "0.0", 0, 0, 0, NULL, NULL,
     "latency: inputs at or below it never spike. delta: the change that triggers a spike "
     "(must be > 0)."},
    {"dt", MYELIN_PARAM_FLOAT, "0.001", 1, 0, 1e9, NULL, "s", "Seconds per step, copied into `dt`."},
    {"seed", MYELIN_PARAM_INT, "0", 1, 0, 9.2e18, NULL, NULL, "Seed of the rate coder's draws."},
    {"batch", MYELIN_PARAM_BOOL, "false", 0, 0, 0, NULL, NULL,
     "Treat a tensor of 2+ dims as a batch [B, ...]: one `spikes` message per row, "
     "index = message index (else 0) + row, label from a `labels` tensor [B] when present."},
    {"threads", MYELIN_PARAM_INT, "2", 1, 1, MAX_THREADS, NULL, "threads",
     "Threads encoding the rows of a batch; results do not depend on it."},
    {NULL, 0, NULL, 0, 0, 0, NULL, NULL, NULL}};

static const myelin_port_def enc_inputs[] = {
    {"in", "sample|tensor|volume", 0,
     "`x` of a sample or `data` of a tensor/volume, any numeric dtype, flattened."},
    {NULL, NULL, 0, NULL}};

static const myelin_port_def enc_outputs[] = {
    {"spikes", "spikes", 0,
     "{n, steps, dt, step <u4 [E], unit <u4 [E]} sorted by step then unit, with seq and the "
     "input's context (subject, task, run, label, index, split, epoch, t)."},
    {NULL, NULL, 0, NULL}};

static const myelin_plugin_desc enc_desc = {
    MYELIN_DESC_HEADER,
    .name = "spike_encoder",
    .version = "1.0.0",
    .summary = "Samples, tensors or volumes to spike trains (rate, latency, regular, delta coding)",
    .doc = "n = number of input elements (2 per channel for delta). Rate coding draws "
           "u = SplitMix64(key(seed, epoch, index) + (step<<32 | unit/2) * golden) (low half for "
           "even units, high half for odd) and spikes when u < clamp(gain*x, 0, 1) * 2^32, so the "
           "output never depends on threads or batching; index is the message's `index`, else "
           "`seq`, else its position in the input stream.",
    .params = enc_params,
    .inputs = enc_inputs,
    .outputs = enc_outputs,
    .validate = enc_validate,
    .init = enc_init,
    .process = enc_process,
    .fini = enc_fini,
};

MYELIN_PLUGIN(enc_desc)
