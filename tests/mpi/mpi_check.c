/*
 * mpi_check — a test-only source that calls every collective of the host
 * (plugin.h, ABI 1.4) and checks the results on every rank:
 *
 *   - allreduce over f8/f4/i8 x sum/min/max on `count` values (several
 *     1 MiB pieces), on 1 value and on none: bit for bit the fold
 *     ((r0 op r1) op r2) ... of every rank's data, computed here from the
 *     data generator; the f8 sums are order-sensitive (values of widely
 *     different magnitudes: the number of values whose sum in the reverse
 *     order differs is logged, so a test can see that the order mattered);
 *   - every rank holds the same result (hashes gathered to rank 0);
 *   - gather of different sizes per rank to rank 0 and to the last rank;
 *   - bcast of 3 MiB + 17 bytes from rank min(1, N-1), barrier.
 *
 * Rank 0 writes the allreduce results to `out` (a test compares reruns).
 * Then every rank emits `messages` small tensor messages; the rank named by
 * `fail_rank` fails there (`fail_in: start`, after its messages) or in init
 * (`fail_in: init`), while the others wait in a last barrier or init
 * barrier: they must see MYELIN_ESTOP instead of hanging.
 */
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "myelin/plugin.h"

typedef struct mc {
  const myelin_host *host;
  myelin_stage *st;
  int64_t count, messages, fail_rank;
  const char *fail_in;
  char *out;
  FILE *f;
  int rank, size, checks, sensitive;
} mc;

static uint64_t mix(uint64_t x) { /* splitmix64 */
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/* Rank r's value i: magnitudes from 2^-30 to 2^30, signs mixed, so sums
 * depend on their order; integers large enough to wrap when summed. */
static double gen_f(int r, int64_t i) {
  uint64_t h = mix((uint64_t)r * 1000003u + (uint64_t)i);
  double v = ldexp((double)(h >> 11) / 9007199254740992.0 + 0.5, (int)(h % 61) - 30);
  return (h >> 7) & 1 ? -v : v;
}
static int64_t gen_i(int r, int64_t i) { return (int64_t)mix((uint64_t)r * 7919u + (uint64_t)i + 17); }

static void fill(void *buf, myelin_dtype dt, int r, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    if (dt == MYELIN_F8) ((double *)buf)[i] = gen_f(r, i);
    if (dt == MYELIN_F4) ((float *)buf)[i] = (float)gen_f(r, i);
    if (dt == MYELIN_I8) ((int64_t *)buf)[i] = gen_i(r, i);
  }
}

/* acc = acc op x, as the runtime documents it (NaN-free data here). */
static void fold1(void *acc, const void *x, myelin_dtype dt, myelin_reduce_op op, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    if (dt == MYELIN_F8) {
      double a = ((double *)acc)[i], b = ((const double *)x)[i];
      ((double *)acc)[i] = op == MYELIN_OP_SUM   ? a + b
                           : op == MYELIN_OP_MIN ? (a < b ? a : b)
                                                 : (a > b ? a : b);
    } else if (dt == MYELIN_F4) {
      float a = ((float *)acc)[i], b = ((const float *)x)[i];
      ((float *)acc)[i] = op == MYELIN_OP_SUM   ? a + b
                          : op == MYELIN_OP_MIN ? (a < b ? a : b)
                                                : (a > b ? a : b);
    } else {
      int64_t a = ((int64_t *)acc)[i], b = ((const int64_t *)x)[i];
      ((int64_t *)acc)[i] = op == MYELIN_OP_SUM   ? (int64_t)((uint64_t)a + (uint64_t)b)
                            : op == MYELIN_OP_MIN ? (a < b ? a : b)
                                                  : (a > b ? a : b);
    }
  }
}

static uint64_t fnv(const void *p, size_t n) {
  const unsigned char *b = p;
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++)
    h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

#define FAIL(...) return s->host->error(s->st, __VA_ARGS__)
#define CALL(x)                                                                                              \
  do {                                                                                                       \
    int rc_ = (x);                                                                                           \
    if (rc_) return rc_;                                                                                     \
  } while (0)

/* Every rank's hash equal (gathered to rank 0). */
static int same_everywhere(mc *s, uint64_t h, const char *what) {
  void *all = NULL;
  size_t *lens = calloc((size_t)s->size, sizeof *lens);
  if (!lens) FAIL("out of memory");
  int rc = s->host->gather(s->st, &h, sizeof h, 0, &all, lens);
  if (rc) {
    free(lens);
    return rc;
  }
  if (s->rank == 0)
    for (int r = 0; r < s->size; r++) {
      uint64_t hr;
      memcpy(&hr, (char *)all + 8 * r, 8);
      if (lens[r] != 8 || hr != h) {
        free(lens);
        s->host->free(s->st, all);
        FAIL("%s: rank %d's result differs from rank 0's", what, r);
      }
    }
  s->host->free(s->st, all);
  free(lens);
  s->checks++;
  return 0;
}

static int check_allreduce(mc *s, myelin_dtype dt, myelin_reduce_op op, int64_t n) {
  size_t es = dt == MYELIN_F4 ? 4 : 8, bytes = (size_t)n * es;
  char *buf = malloc(bytes + 8), *want = malloc(bytes + 8), *x = malloc(bytes + 8), *rev = malloc(bytes + 8);
  if (!buf || !want || !x || !rev) {
    free(buf), free(want), free(x), free(rev);
    FAIL("out of memory");
  }
  fill(buf, dt, s->rank, n);
  fill(want, dt, 0, n);
  for (int r = 1; r < s->size; r++) {
    fill(x, dt, r, n);
    fold1(want, x, dt, op, n);
  }
  if (dt == MYELIN_F8 && op == MYELIN_OP_SUM) { /* the same sum in the reverse rank order */
    fill(rev, dt, s->size - 1, n);
    for (int r = s->size - 2; r >= 0; r--) {
      fill(x, dt, r, n);
      fold1(rev, x, dt, op, n);
    }
    for (int64_t i = 0; i < n; i++)
      s->sensitive += memcmp(rev + 8 * i, want + 8 * i, 8) != 0;
  }
  int rc = s->host->allreduce(s->st, n ? buf : NULL, (size_t)n, dt, op);
  if (!rc && memcmp(buf, want, bytes)) {
    int64_t i = 0;
    while (!memcmp(buf + (size_t)i * es, want + (size_t)i * es, es))
      i++;
    rc = s->host->error(
        s->st, "allreduce %s op %d over %" PRId64 " values: value %" PRId64 " is not the fold in rank order",
        myelin_dtype_name(dt), (int)op, n, i);
  }
  if (!rc && s->f && fwrite(buf, 1, bytes, s->f) != bytes)
    rc = s->host->error(s->st, "cannot write %s", s->out);
  uint64_t h = fnv(buf, bytes);
  free(buf), free(want), free(x), free(rev);
  if (rc) return rc;
  s->checks++;
  return same_everywhere(s, h, "allreduce");
}

static int check_gather(mc *s, int root) {
  size_t mine = (size_t)s->rank * 700001 + 5; /* rank 1 and up: more than one 1 MiB piece with 3+ ranks */
  unsigned char *send = malloc(mine);
  size_t *lens = calloc((size_t)s->size, sizeof *lens);
  if (!send || !lens) {
    free(send), free(lens);
    FAIL("out of memory");
  }
  for (size_t i = 0; i < mine; i++)
    send[i] = (unsigned char)(s->rank * 31 + i * 7);
  void *all = (void *)1; /* must become NULL off the root */
  int rc = s->host->gather(s->st, send, mine, root, &all, lens);
  free(send);
  if (rc) {
    free(lens);
    return rc;
  }
  if (s->rank != root && all) rc = s->host->error(s->st, "gather: recv not NULL off the root");
  size_t off = 0;
  for (int r = 0; s->rank == root && !rc && r < s->size; r++) {
    size_t want = (size_t)r * 700001 + 5;
    if (lens[r] != want)
      rc = s->host->error(s->st, "gather to %d: rank %d sent %zu bytes, got %zu", root, r, want, lens[r]);
    for (size_t i = 0; !rc && i < want; i++)
      if (((unsigned char *)all)[off + i] != (unsigned char)(r * 31 + i * 7))
        rc = s->host->error(s->st, "gather to %d: rank %d's byte %zu differs", root, r, i);
    off += want;
  }
  if (s->rank == root) s->host->free(s->st, all);
  free(lens);
  if (!rc) s->checks++;
  return rc;
}

static int check_bcast(mc *s) {
  int root = s->size > 1 ? 1 : 0;
  size_t n = (3u << 20) + 17;
  unsigned char *b = calloc(n, 1);
  if (!b) FAIL("out of memory");
  if (s->rank == root)
    for (size_t i = 0; i < n; i++)
      b[i] = (unsigned char)(i * 13 + 1);
  int rc = s->host->bcast(s->st, b, n, root);
  for (size_t i = 0; !rc && i < n; i++)
    if (b[i] != (unsigned char)(i * 13 + 1)) rc = s->host->error(s->st, "bcast: byte %zu differs", i);
  free(b);
  if (!rc) s->checks++;
  return rc;
}

static int mc_init(const myelin_host *host, myelin_stage *st, const myelin_params *p, void **state) {
  mc *s = calloc(1, sizeof *s);
  if (!s) return MYELIN_ENOMEM;
  s->host = host;
  s->st = st;
  *state = s;
  s->count = myelin_param_int(p, "count");
  s->messages = myelin_param_int(p, "messages");
  s->fail_rank = myelin_param_int(p, "fail_rank");
  s->fail_in = myelin_param_str(p, "fail_in");
  s->rank = host->rank(st);
  s->size = host->size(st);
  const char *out = myelin_param_str(p, "out");
  if (*out && s->rank == 0 && !(s->out = strdup(out))) return MYELIN_ENOMEM;
  if (s->rank == s->fail_rank && !strcmp(s->fail_in, "init"))
    return host->error(st, "planted failure in init on rank %d", s->rank);
  if (!strcmp(s->fail_in, "init")) return host->barrier(st); /* the others wait for the failing rank */
  return 0;
}

static int mc_start(void *state) {
  mc *s = state;
  if (s->size < 1 || s->rank < 0 || s->rank >= s->size) FAIL("rank %d of %d", s->rank, s->size);
  /* every rank knows its place: ranks gathered to the root are 0..N-1 */
  void *all = NULL;
  size_t *lens = calloc((size_t)s->size, sizeof *lens);
  if (!lens) FAIL("out of memory");
  int rc = s->host->gather(s->st, &s->rank, sizeof s->rank, 0, &all, lens);
  for (int r = 0; !rc && s->rank == 0 && r < s->size; r++)
    if (((int *)all)[r] != r)
      rc = s->host->error(s->st, "gather of ranks: entry %d is %d", r, ((int *)all)[r]);
  if (s->rank == 0) s->host->free(s->st, all);
  free(lens);
  if (rc) return rc;
  if (s->out && !(s->f = fopen(s->out, "wb"))) FAIL("cannot create %s", s->out);
  static const myelin_dtype dts[] = {MYELIN_F8, MYELIN_F4, MYELIN_I8};
  static const myelin_reduce_op ops[] = {MYELIN_OP_SUM, MYELIN_OP_MIN, MYELIN_OP_MAX};
  for (int d = 0; d < 3; d++)
    for (int o = 0; o < 3; o++) {
      CALL(check_allreduce(s, dts[d], ops[o], s->count));
      CALL(check_allreduce(s, dts[d], ops[o], 1));
    }
  CALL(check_allreduce(s, MYELIN_F8, MYELIN_OP_SUM, 0));
  if (s->f) {
    int bad = fclose(s->f) != 0;
    s->f = NULL;
    if (bad) FAIL("cannot write %s", s->out);
  }
  CALL(check_gather(s, 0));
  CALL(check_gather(s, s->size - 1));
  CALL(check_bcast(s));
  CALL(s->host->barrier(s->st));
  s->checks++;
  s->host->log(s->st, MYELIN_LOG_INFO, "rank %d of %d: %d checks passed, %d order-sensitive sums", s->rank,
               s->size, s->checks, s->sensitive);
  for (int64_t i = 0; i < s->messages; i++) {
    myelin_builder *b = myelin_builder_new("tensor");
    myelin_build_int(b, "rank", s->rank);
    myelin_build_int(b, "seq", i);
    int64_t shape[1] = {1};
    double v = (double)i;
    myelin_build_tensor_copy(b, "data", MYELIN_F8, 1, shape, &v);
    myelin_msg *m = myelin_builder_finish(b);
    if (!m) FAIL("out of memory");
    if (s->host->emit(s->st, 0, m)) return MYELIN_ESTOP;
  }
  if (s->rank == s->fail_rank && !strcmp(s->fail_in, "start")) FAIL("planted failure on rank %d", s->rank);
  return s->host->barrier(s->st); /* with a failing rank: the others wait here until the job aborts */
}

static void mc_fini(void *state) {
  mc *s = state;
  if (s->f) fclose(s->f);
  free(s->out);
  free(s);
}

static const myelin_param_def mc_params[] = {
    {.name = "count",
     .type = MYELIN_PARAM_INT,
     .def = "300000",
     .has_range = 1,
     .min = 0,
     .max = 1e9,
     .doc = "values per allreduce"},
    {.name = "messages",
     .type = MYELIN_PARAM_INT,
     .def = "0",
     .has_range = 1,
     .min = 0,
     .max = 1e9,
     .doc = "tensor messages to emit after the checks"},
    {.name = "fail_rank", .type = MYELIN_PARAM_INT, .def = "-1", .doc = "this rank fails; -1 none"},
    {.name = "fail_in",
     .type = MYELIN_PARAM_ENUM,
     .def = "start",
     .choices = "start|init",
     .doc = "where fail_rank fails"},
    {.name = "out", .type = MYELIN_PARAM_PATH, .def = "", .doc = "rank 0 writes the allreduce results here"},
    {0}};
static const myelin_port_def mc_out[] = {{.name = "out", .kinds = "tensor"}, {0}};

static const myelin_plugin_desc mc_desc = {
    MYELIN_DESC_HEADER,  .name = "mpi_check", .version = "0.0.1", .summary = "MPI collectives test source",
    .params = mc_params, .outputs = mc_out,   .init = mc_init,    .start = mc_start,
    .fini = mc_fini,
};

MYELIN_PLUGIN(mc_desc)
