/*
 * zscore — a running z-score of every tensor element, per stream.
 *
 * An example of a plugin written as a user would, built out of tree against
 * an installed myelin (see CMakeLists.txt and README.md). For each incoming
 * message it reads the tensor in `field` (any numeric dtype), updates each
 * element's running mean and variance, and emits the same message with that
 * field replaced by (x - mean) / sqrt(var + eps) as <f4; every other field is
 * copied unchanged. A "stream" is one (subject, task, run) context: each
 * gets its own statistics. `window` = 0 uses every message seen so far
 * (Welford's update); window = W uses the last W messages (a ring of past
 * values with running sums).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <myelin/myelin.h>

typedef struct stream {
  char key[256];
  size_t n_el;     /* elements per tensor */
  uint64_t count;  /* messages seen */
  double *mean, *m2;     /* window = 0: Welford */
  double *sum, *sumsq;   /* window > 0: running sums over the ring */
  double *ring;          /* [window][n_el] */
} stream;

typedef struct zs {
  const myelin_host *host;
  myelin_stage *st;
  const char *field;
  size_t window;
  double eps;
  stream *streams;
  size_t n_streams;
} zs;

static void stream_free(stream *s) {
  free(s->mean), free(s->m2), free(s->sum), free(s->sumsq), free(s->ring);
}

static stream *find_stream(zs *z, const myelin_msg *m, size_t n_el) {
  char subj[80] = "", task[80] = "", run[80] = "", key[256];
  myelin_msg_str(m, "subject", subj, sizeof subj);
  myelin_msg_str(m, "task", task, sizeof task);
  int64_t r;
  if (myelin_msg_int(m, "run", &r) == 0) snprintf(run, sizeof run, "%lld", (long long)r);
  else myelin_msg_str(m, "run", run, sizeof run);
  snprintf(key, sizeof key, "%s/%s/%s", subj, task, run);
  for (size_t i = 0; i < z->n_streams; i++)
    if (!strcmp(z->streams[i].key, key)) return &z->streams[i];
  stream *ns = realloc(z->streams, (z->n_streams + 1) * sizeof *ns);
  if (!ns) return NULL;
  z->streams = ns;
  stream *s = &z->streams[z->n_streams++];
  memset(s, 0, sizeof *s);
  snprintf(s->key, sizeof s->key, "%s", key);
  s->n_el = n_el;
  if (z->window == 0) {
    s->mean = calloc(n_el, sizeof(double));
    s->m2 = calloc(n_el, sizeof(double));
    if (!s->mean || !s->m2) return NULL;
  } else {
    s->sum = calloc(n_el, sizeof(double));
    s->sumsq = calloc(n_el, sizeof(double));
    s->ring = calloc(n_el * z->window, sizeof(double));
    if (!s->sum || !s->sumsq || !s->ring) return NULL;
  }
  return s;
}

static double element(const myelin_tensor *t, size_t i) {
  switch (t->dtype) {
  case MYELIN_F4: return ((const float *)t->data)[i];
  case MYELIN_F8: return ((const double *)t->data)[i];
  case MYELIN_I1: return ((const int8_t *)t->data)[i];
  case MYELIN_I2: return ((const int16_t *)t->data)[i];
  case MYELIN_I4: return ((const int32_t *)t->data)[i];
  case MYELIN_I8: return (double)((const int64_t *)t->data)[i];
  case MYELIN_U1: case MYELIN_B1: return ((const uint8_t *)t->data)[i];
  case MYELIN_U2: return ((const uint16_t *)t->data)[i];
  case MYELIN_U4: return ((const uint32_t *)t->data)[i];
  case MYELIN_U8: return (double)((const uint64_t *)t->data)[i];
  default: return NAN;
  }
}

/* Updates the stream with x and writes the z-scores into out. */
static void update(zs *z, stream *s, const myelin_tensor *t, float *out) {
  s->count++;
  if (z->window == 0) {
    for (size_t i = 0; i < s->n_el; i++) {
      double x = element(t, i), d = x - s->mean[i];
      s->mean[i] += d / (double)s->count;
      s->m2[i] += d * (x - s->mean[i]);
      double var = s->m2[i] / (double)s->count;
      out[i] = (float)((x - s->mean[i]) / sqrt(var + z->eps));
    }
    return;
  }
  size_t slot = (size_t)((s->count - 1) % z->window);
  double n = (double)(s->count < z->window ? s->count : z->window);
  double *old = s->ring + slot * s->n_el;
  for (size_t i = 0; i < s->n_el; i++) {
    double x = element(t, i);
    if (s->count > z->window) s->sum[i] -= old[i], s->sumsq[i] -= old[i] * old[i];
    old[i] = x;
    s->sum[i] += x;
    s->sumsq[i] += x * x;
    double mean = s->sum[i] / n, var = s->sumsq[i] / n - mean * mean;
    if (var < 0) var = 0;
    out[i] = (float)((x - mean) / sqrt(var + z->eps));
  }
}

static int zs_process(void *state, int port, myelin_msg *m) {
  (void)port;
  zs *z = state;
  myelin_tensor t;
  int rc = myelin_msg_tensor(m, z->field, &t);
  if (rc) return z->host->error(z->st, "message %s has no tensor field '%s' (%s)", myelin_msg_kind(m), z->field, myelin_strerror(rc));
  stream *s = find_stream(z, m, t.count);
  if (!s) return z->host->error(z->st, "out of memory");
  if (s->n_el != t.count)
    return z->host->error(z->st, "stream '%s': tensor '%s' changed size from %zu to %zu elements", s->key, z->field, s->n_el, t.count);
  myelin_builder *b = myelin_builder_new(myelin_msg_kind(m));
  myelin_obj root = myelin_msg_root(m);
  for (size_t i = 0; i < myelin_obj_len(root); i++) {
    myelin_obj k = myelin_obj_key_at(root, i);
    char key[128];
    if (myelin_obj_str_copy(k, key, sizeof key) || !strcmp(key, "kind")) continue;
    if (!strcmp(key, z->field)) {
      float *out = myelin_build_tensor(b, key, MYELIN_F4, t.ndim, t.shape);
      if (out) update(z, s, &t, out);
    } else {
      myelin_build_obj(b, key, myelin_obj_value_at(root, i));
    }
  }
  myelin_msg *o = myelin_builder_finish(b);
  if (!o) return z->host->error(z->st, "cannot build the output message");
  rc = z->host->emit(z->st, 0, o);    /* takes ownership */
  return rc == MYELIN_ESTOP ? 0 : rc; /* ESTOP: the run is aborting, just return */
}

static int zs_init(const myelin_host *host, myelin_stage *st, const myelin_params *p, void **state) {
  zs *z = calloc(1, sizeof *z);
  if (!z) return MYELIN_ENOMEM;
  z->host = host;
  z->st = st;
  z->field = myelin_param_str(p, "field");
  z->window = (size_t)myelin_param_int(p, "window");
  z->eps = myelin_param_float(p, "eps");
  *state = z;
  return 0;
}

static void zs_fini(void *state) {
  zs *z = state;
  for (size_t i = 0; i < z->n_streams; i++) stream_free(&z->streams[i]);
  free(z->streams);
  free(z);
}

static int zs_validate(const myelin_params *p, myelin_validate_ctx *ctx) {
  (void)p;
  const char *k = myelin_validate_input_kinds(ctx, "in");
  if (k) myelin_validate_set_output_kinds(ctx, "out", k);
  return 0;
}

static const myelin_param_def zs_params[] = {
    {.name = "window", .type = MYELIN_PARAM_INT, .def = "0", .has_range = 1, .min = 0, .max = 1e6,
     .unit = "messages", .doc = "Messages in the running window; 0 = all messages so far."},
    {.name = "eps", .type = MYELIN_PARAM_FLOAT, .def = "1e-8", .has_range = 1, .min = 0, .max = 1e6,
     .doc = "Added to the variance before the square root: z = (x - mean) / sqrt(var + eps)."},
    {.name = "field", .type = MYELIN_PARAM_STRING, .def = "data", .doc = "The tensor field to z-score."},
    {0}};
static const myelin_port_def zs_inputs[] = {
    {.name = "in", .kinds = "tensor|volume|sample", .doc = "messages carrying a numeric tensor"}, {0}};
static const myelin_port_def zs_outputs[] = {
    {.name = "out", .kinds = "tensor|volume|sample", .doc = "the same messages, field z-scored as <f4"}, {0}};

static const myelin_plugin_desc zs_desc = {
    MYELIN_DESC_HEADER,
    .name = "zscore",
    .version = "1.0.0",
    .summary = "running z-score of every tensor element, per (subject, task, run) stream",
    .params = zs_params,
    .inputs = zs_inputs,
    .outputs = zs_outputs,
    .validate = zs_validate,
    .init = zs_init,
    .process = zs_process,
    .fini = zs_fini,
};

MYELIN_PLUGIN(zs_desc)
