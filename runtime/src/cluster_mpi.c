/*
 * cluster_mpi.c — cluster.h over MPI (-DMYELIN_MPI=ON; docs/mpi.md).
 *
 * The process joins an MPI job only when an MPI launcher started it
 * (cluster_init); otherwise, and when the job has one rank, every function
 * has its single-rank meaning (cluster.c).
 *
 * Threads. MPI_THREAD_MULTIPLE: stage threads call collectives on their own
 * communicators (one MPI_Comm_dup per stage, in pipeline order, so stage i of
 * every rank matches stage i), the control thread polls the control
 * communicator, the main thread uses the job communicator at the start and
 * the end of the run.
 *
 * Never hang on a failed peer. Every collective is built from nonblocking
 * point-to-point messages polled with MPI_Testall between short sleeps,
 * checking the run's abort flag on each round: when it is set the receives
 * are cancelled, the sends get a moment to finish (and are then left to the
 * library), the communicator is marked broken and the call returns
 * MYELIN_ESTOP. The abort flag is set locally (an error, a second signal) or
 * by the control thread when another rank reports its failure.
 *
 * Determinism. allreduce folds the ranks' buffers along a chain: rank 0
 * sends its buffer in 1 MiB pieces to rank 1, which combines (received op
 * own) and passes the piece on to rank 2, and so on; rank N-1 then holds
 * ((r0 op r1) op r2) ... op rN-1 and broadcasts it. The order of every
 * operation is fixed, so every rank and every rerun gets the same bits, and
 * the memory beyond the caller's buffer is two pieces.
 */
#include <mpi.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster.h"
#include "internal.h"

#define PIECE ((size_t)1 << 20)  /* bytes per message of allreduce, bcast and gather */
#define WINDOW 4                 /* pieces in flight per peer */
#define MAX_KIDS 32              /* children of a binomial tree node: log2(ranks) */
#define GIVE_UP_NS 1000000000ull /* how long an aborting collective lets its sends finish */

enum {
  TAG_REDUCE = 11,
  TAG_BCAST,
  TAG_GATHER_LEN,
  TAG_GATHER,
  TAG_BARRIER_IN,
  TAG_BARRIER_OUT,
  TAG_CTL = 99
};

struct cluster_comm {
  MPI_Comm comm;
  const _Atomic int *aborting;
  int broken; /* a collective gave up on it: only MYELIN_ESTOP from now on */
};

static int g_mpi;  /* MPI_Init_thread was called by cluster_init */
static int g_rank; /* 0 of 1 unless g_mpi */
static int g_size = 1;
static MPI_Comm g_job = MPI_COMM_NULL; /* main thread: agreement and the end-of-run report */

int cluster_rank(void) { return g_rank; }
int cluster_size(void) { return g_size; }

/* ---- waiting ------------------------------------------------------------- */
/* Between two polls: hot at first (a piece is usually on its way), then
 * yielding, then sleeping up to half a millisecond, so ranks waiting on a
 * busy peer leave the cores to it (oversubscribed runs, two cores). */
static void backoff(unsigned *round) {
  unsigned r = (*round)++;
  if (r < 64) return;
  if (r < 128) {
    sched_yield();
    return;
  }
  unsigned shift = (r - 128) / 8;
  long ns = 2000L << (shift > 8 ? 8 : shift); /* 2 µs .. 512 µs */
  struct timespec ts = {0, ns};
  nanosleep(&ts, NULL);
}

/* The job is aborting while reqs[0..n) may still be pending; the first
 * nrecv are receives: cancel those (only those: OpenMPI cannot cancel a
 * send), let the sends finish for a moment, leave what is left to the
 * library. */
static void give_up(cluster_comm *c, MPI_Request *reqs, int n, int nrecv) {
  c->broken = 1;
  for (int i = 0; i < nrecv; i++)
    if (reqs[i] != MPI_REQUEST_NULL) MPI_Cancel(&reqs[i]);
  uint64_t until = now_ns() + GIVE_UP_NS;
  unsigned round = 0;
  for (;;) {
    int done = 0;
    MPI_Testall(n, reqs, &done, MPI_STATUSES_IGNORE);
    if (done || now_ns() > until) break;
    backoff(&round);
  }
  for (int i = 0; i < n; i++)
    if (reqs[i] != MPI_REQUEST_NULL) MPI_Request_free(&reqs[i]);
}

/* Waits for reqs[from..from+k) of the operation's request array all[0..n),
 * whose first nrecv are receives; MYELIN_ESTOP (after give_up on all of
 * them) when the job aborts. */
static int wait_reqs(cluster_comm *c, MPI_Request *all, int n, int nrecv, int from, int k) {
  unsigned round = 0;
  for (;;) {
    int done = 0;
    MPI_Testall(k, all + from, &done, MPI_STATUSES_IGNORE);
    if (done) return 0;
    if (atomic_load(c->aborting)) {
      give_up(c, all, n, nrecv);
      return MYELIN_ESTOP;
    }
    backoff(&round);
  }
}

static int unusable(cluster_comm *c) { return c->broken || atomic_load(c->aborting); }

/* ---- allreduce ----------------------------------------------------------- */
/* mine[i] = acc[i] op mine[i]: acc holds ranks 0..r-1 folded, mine is rank
 * r's. min/max propagate NaN (either operand NaN gives NaN). Integer sums
 * wrap (two's complement) instead of overflowing. */
#define FOLD_FLOAT(T)                                                                                        \
  do {                                                                                                       \
    const T *a = acc;                                                                                        \
    T *m = mine;                                                                                             \
    if (op == MYELIN_OP_SUM)                                                                                 \
      for (size_t i = 0; i < n; i++)                                                                         \
        m[i] = a[i] + m[i];                                                                                  \
    else if (op == MYELIN_OP_MIN)                                                                            \
      for (size_t i = 0; i < n; i++)                                                                         \
        m[i] = (a[i] < m[i] || a[i] != a[i]) ? a[i] : m[i];                                                  \
    else                                                                                                     \
      for (size_t i = 0; i < n; i++)                                                                         \
        m[i] = (a[i] > m[i] || a[i] != a[i]) ? a[i] : m[i];                                                  \
  } while (0)

static void fold(const void *acc, void *mine, size_t n, myelin_dtype dtype, myelin_reduce_op op) {
  if (dtype == MYELIN_F8)
    FOLD_FLOAT(double);
  else if (dtype == MYELIN_F4)
    FOLD_FLOAT(float);
  else {
    const int64_t *a = acc;
    int64_t *m = mine;
    for (size_t i = 0; i < n; i++)
      m[i] = op == MYELIN_OP_SUM   ? (int64_t)((uint64_t)a[i] + (uint64_t)m[i])
             : op == MYELIN_OP_MIN ? (a[i] < m[i] ? a[i] : m[i])
                                   : (a[i] > m[i] ? a[i] : m[i]);
  }
}

static int bcast_tree(cluster_comm *c, char *buf, size_t bytes, int root);

int cluster_allreduce(cluster_comm *c, void *buf, size_t count, myelin_dtype dtype, myelin_reduce_op op,
                      char *err, size_t errlen) {
  int rc = cluster_check_reduce(dtype, op, err, errlen);
  if (rc || !c || g_size == 1) return rc;
  if (unusable(c)) return MYELIN_ESTOP;
  if (!count) return 0;
  size_t es = dtype == MYELIN_F4 ? 4 : 8, per = PIECE / es, np = (count + per - 1) / per;
  char *b = buf;
  /* the chain: receive the fold of ranks 0..r-1 from r-1, fold in our own,
   * pass it to r+1; pieces in flight both ways */
  enum { R0 = 0, S0 = 2, NQ = 2 + WINDOW };
  MPI_Request q[NQ];
  for (int i = 0; i < NQ; i++)
    q[i] = MPI_REQUEST_NULL;
  char *tmp = NULL;
  if (g_rank > 0) {
    size_t tb = (count < per ? count : per) * es;
    if (!(tmp = malloc(2 * tb))) {
      snprintf(err, errlen, "allreduce: out of memory (%zu bytes)", 2 * tb);
      return MYELIN_ENOMEM;
    }
  }
  for (size_t k = 0; k < np && !rc; k++) {
    size_t n = (k + 1 < np ? per : count - k * per), off = k * per * es;
    if (g_rank > 0) {
      if (k == 0) MPI_Irecv(tmp, (int)(n * es), MPI_BYTE, g_rank - 1, TAG_REDUCE, c->comm, &q[R0]);
      if ((rc = wait_reqs(c, q, NQ, 2, R0 + (int)(k % 2), 1))) break;
      if (k + 1 < np) {
        size_t n1 = (k + 2 < np ? per : count - (k + 1) * per);
        MPI_Irecv(tmp + ((k + 1) % 2) * per * es, (int)(n1 * es), MPI_BYTE, g_rank - 1, TAG_REDUCE, c->comm,
                  &q[R0 + (int)((k + 1) % 2)]);
      }
      fold(tmp + (k % 2) * per * es, b + off, n, dtype, op);
    }
    if (g_rank < g_size - 1) {
      int slot = S0 + (int)(k % WINDOW);
      if ((rc = wait_reqs(c, q, NQ, 2, slot, 1))) break;
      MPI_Isend(b + off, (int)(n * es), MPI_BYTE, g_rank + 1, TAG_REDUCE, c->comm, &q[slot]);
    }
  }
  if (!rc) rc = wait_reqs(c, q, NQ, 2, 0, NQ);
  free(tmp);
  if (rc) return rc;
  return bcast_tree(c, b, count * es, g_size - 1);
}

/* ---- bcast: a binomial tree rooted at root, piece by piece --------------- */
static int bcast_tree(cluster_comm *c, char *buf, size_t bytes, int root) {
  int vr = (g_rank - root + g_size) % g_size, parent = -1, kids[MAX_KIDS], nk = 0, mask = 1;
  while (mask < g_size) {
    if (vr & mask) {
      parent = (vr - mask + root) % g_size;
      break;
    }
    mask <<= 1;
  }
  for (mask >>= 1; mask > 0; mask >>= 1)
    if (vr + mask < g_size && nk < MAX_KIDS) kids[nk++] = (vr + mask + root) % g_size;
  size_t np = (bytes + PIECE - 1) / PIECE;
  enum { NQ = WINDOW * (1 + MAX_KIDS) };
  MPI_Request q[NQ]; /* [0, WINDOW): receives; then WINDOW slots of nk sends */
  for (int i = 0; i < NQ; i++)
    q[i] = MPI_REQUEST_NULL;
#define PIECE_LEN(k) ((k) + 1 < np ? PIECE : bytes - (k)*PIECE)
  if (parent >= 0)
    for (size_t k = 0; k < np && k < WINDOW; k++)
      MPI_Irecv(buf + k * PIECE, (int)PIECE_LEN(k), MPI_BYTE, parent, TAG_BCAST, c->comm, &q[k]);
  int rc = 0;
  for (size_t k = 0; k < np; k++) {
    int slot = (int)(k % WINDOW);
    if (parent >= 0) {
      if ((rc = wait_reqs(c, q, NQ, WINDOW, slot, 1))) return rc;
      if (k + WINDOW < np)
        MPI_Irecv(buf + (k + WINDOW) * PIECE, (int)PIECE_LEN(k + WINDOW), MPI_BYTE, parent, TAG_BCAST,
                  c->comm, &q[slot]);
    }
    if (nk) {
      int s0 = WINDOW + slot * MAX_KIDS;
      if ((rc = wait_reqs(c, q, NQ, WINDOW, s0, nk))) return rc;
      for (int j = 0; j < nk; j++)
        MPI_Isend(buf + k * PIECE, (int)PIECE_LEN(k), MPI_BYTE, kids[j], TAG_BCAST, c->comm, &q[s0 + j]);
    }
  }
#undef PIECE_LEN
  return wait_reqs(c, q, NQ, WINDOW, 0, NQ);
}

int cluster_bcast(cluster_comm *c, void *buf, size_t bytes, int root, char *err, size_t errlen) {
  int rc = cluster_check_root(root, "bcast", err, errlen);
  if (rc || !c || g_size == 1) return rc;
  if (unusable(c)) return MYELIN_ESTOP;
  return bytes ? bcast_tree(c, buf, bytes, root) : 0;
}

/* ---- gather: lengths first, then every rank's pieces in rank order ------- */
int cluster_gather(cluster_comm *c, const void *send, size_t bytes, int root, void **recv, size_t *recv_bytes,
                   char *err, size_t errlen) {
  int rc = cluster_check_root(root, "gather", err, errlen);
  if (rc) return rc;
  if (!c || g_size == 1) return cluster_local_gather(send, bytes, recv, recv_bytes, err, errlen);
  if (g_rank == root && (!recv || !recv_bytes)) {
    snprintf(err, errlen, "gather: the root needs recv and recv_bytes");
    return MYELIN_EINVAL;
  }
  if (recv && g_rank != root) *recv = NULL;
  if (unusable(c)) return MYELIN_ESTOP;
  uint64_t len = bytes;
  if (g_rank != root) {
    enum { NQ = 1 + WINDOW };
    MPI_Request q[NQ];
    for (int i = 0; i < NQ; i++)
      q[i] = MPI_REQUEST_NULL;
    MPI_Isend(&len, 8, MPI_BYTE, root, TAG_GATHER_LEN, c->comm, &q[0]);
    for (size_t k = 0; k * PIECE < bytes; k++) {
      int slot = 1 + (int)(k % WINDOW);
      if ((rc = wait_reqs(c, q, NQ, 0, slot, 1))) return rc;
      size_t n = bytes - k * PIECE < PIECE ? bytes - k * PIECE : PIECE;
      MPI_Isend((const char *)send + k * PIECE, (int)n, MPI_BYTE, root, TAG_GATHER, c->comm, &q[slot]);
    }
    return wait_reqs(c, q, NQ, 0, 0, NQ);
  }
  uint64_t *lens = calloc((size_t)g_size, sizeof *lens);
  MPI_Request *q = malloc(((size_t)g_size + WINDOW) * sizeof *q);
  if (!lens || !q) {
    free(lens);
    free(q);
    snprintf(err, errlen, "gather: out of memory");
    return MYELIN_ENOMEM;
  }
  int nq = g_size + WINDOW;
  for (int i = 0; i < nq; i++)
    q[i] = MPI_REQUEST_NULL;
  for (int r = 0; r < g_size; r++)
    if (r != root) MPI_Irecv(&lens[r], 8, MPI_BYTE, r, TAG_GATHER_LEN, c->comm, &q[r]);
  lens[root] = len;
  char *out = NULL;
  if (!(rc = wait_reqs(c, q, nq, nq, 0, g_size))) {
    size_t total = 0;
    for (int r = 0; r < g_size; r++)
      total += lens[r];
    if (!(out = malloc(total ? total : 1))) {
      snprintf(err, errlen, "gather: out of memory (%zu bytes)", total);
      rc = MYELIN_ENOMEM;
    }
    /* receive in rank order, WINDOW pieces in flight; a receive error of
     * the root still drains nothing: the senders' MYELIN_ENOMEM is the
     * root's failure, which aborts the job and frees them */
    size_t off = 0, k = 0;
    for (int r = 0; r < g_size && !rc; r++) {
      if (r == root) {
        if (bytes) memcpy(out + off, send, bytes);
        off += bytes;
        continue;
      }
      for (size_t p = 0; p * PIECE < lens[r] && !rc; p++, k++) {
        int slot = g_size + (int)(k % WINDOW);
        if ((rc = wait_reqs(c, q, nq, nq, slot, 1))) break;
        size_t n = lens[r] - p * PIECE < PIECE ? lens[r] - p * PIECE : PIECE;
        MPI_Irecv(out + off, (int)n, MPI_BYTE, r, TAG_GATHER, c->comm, &q[slot]);
        off += n;
      }
    }
    if (!rc) rc = wait_reqs(c, q, nq, nq, 0, nq);
  }
  if (!rc) {
    for (int r = 0; r < g_size; r++)
      recv_bytes[r] = lens[r];
    *recv = out;
  } else {
    free(out);
    *recv = NULL;
  }
  free(lens);
  free(q);
  return rc;
}

/* ---- barrier: everyone to rank 0, rank 0 to everyone -------------------- */
int cluster_barrier(cluster_comm *c, char *err, size_t errlen) {
  (void)err, (void)errlen;
  if (!c || g_size == 1) return 0;
  if (unusable(c)) return MYELIN_ESTOP;
  if (g_rank != 0) {
    MPI_Request q[2];
    MPI_Irecv(NULL, 0, MPI_BYTE, 0, TAG_BARRIER_OUT, c->comm, &q[0]);
    MPI_Isend(NULL, 0, MPI_BYTE, 0, TAG_BARRIER_IN, c->comm, &q[1]);
    return wait_reqs(c, q, 2, 1, 0, 2);
  }
  int n = g_size - 1, rc;
  MPI_Request *q = malloc((size_t)n * sizeof *q);
  if (!q) {
    snprintf(err, errlen, "barrier: out of memory");
    return MYELIN_ENOMEM;
  }
  for (int r = 1; r < g_size; r++)
    MPI_Irecv(NULL, 0, MPI_BYTE, r, TAG_BARRIER_IN, c->comm, &q[r - 1]);
  if (!(rc = wait_reqs(c, q, n, n, 0, n))) {
    for (int r = 1; r < g_size; r++)
      MPI_Isend(NULL, 0, MPI_BYTE, r, TAG_BARRIER_OUT, c->comm, &q[r - 1]);
    rc = wait_reqs(c, q, n, 0, 0, n);
  }
  free(q);
  return rc;
}

/* ---- stage communicators ------------------------------------------------- */
int cluster_comm_new(const _Atomic int *aborting, cluster_comm **out, char *err, size_t errlen) {
  *out = NULL;
  if (!g_mpi || g_size == 1) return 0;
  /* Every rank duplicates every stage's communicator before any stage
   * starts (even when out of memory), so this completes even when another
   * rank has already failed (its own duplicate completed first): wait
   * without looking at the abort flag. A nonblocking collective cannot be
   * cancelled (MPI_Cancel on it deadlocks OpenMPI). */
  MPI_Comm comm;
  MPI_Request q = MPI_REQUEST_NULL;
  MPI_Comm_idup(MPI_COMM_WORLD, &comm, &q);
  for (unsigned round = 0;;) {
    int done = 0;
    MPI_Test(&q, &done, MPI_STATUS_IGNORE);
    if (done) break;
    backoff(&round);
  }
  cluster_comm *c = calloc(1, sizeof *c);
  if (!c) {
    MPI_Comm_free(&comm);
    snprintf(err, errlen, "out of memory");
    return MYELIN_ENOMEM;
  }
  c->comm = comm;
  c->aborting = aborting;
  *out = c;
  return 0;
}

void cluster_comm_free(cluster_comm *c) {
  if (!c) return;
  if (!c->broken) MPI_Comm_free(&c->comm); /* a broken one may have requests left: MPI_Finalize's */
  free(c);
}

/* ---- control: who stops, aborts, fails ----------------------------------
 * Each rank sends each kind of notice at most once to every other rank
 * (MPI_Isend on g_ctl, tag TAG_CTL); the control thread keeps one receive
 * posted from any rank and hands what arrives to the scheduler. At the end
 * the ranks exchange how many notices each sent to each, receive the ones
 * still in flight and only then free the communicator. */
static MPI_Comm g_ctl = MPI_COMM_NULL;
static pthread_t g_ctl_thread;
static _Atomic int g_ctl_quit;
static int g_ctl_in[2]; /* the posted receive: {what, from rank} */
static MPI_Request g_ctl_req = MPI_REQUEST_NULL;
static int g_ctl_received;
static pthread_mutex_t g_ctl_mu = PTHREAD_MUTEX_INITIALIZER; /* everything below */
static int g_ctl_closed;                                     /* finalizing: no more notices */
static int g_ctl_sent_kind[4];
static int g_ctl_out[4][2]; /* send buffers, one per kind */
static int *g_ctl_sent_to;  /* notices sent to each rank */
static MPI_Request *g_ctl_sends;
static size_t g_ctl_nsends, g_ctl_capsends;
static _Atomic int g_first_failure = -1;

static void note_failure(int rank) {
  int none = -1;
  atomic_compare_exchange_strong(&g_first_failure, &none, rank);
}

int cluster_first_failure(void) { return atomic_load(&g_first_failure); }

void cluster_notify(int what) {
  if (!g_mpi || g_size == 1 || what < CLUSTER_STOP || what > CLUSTER_FAIL) return;
  if (what == CLUSTER_FAIL) note_failure(g_rank);
  pthread_mutex_lock(&g_ctl_mu);
  if (g_ctl_closed || g_ctl_sent_kind[what]) {
    pthread_mutex_unlock(&g_ctl_mu);
    return;
  }
  size_t need = g_ctl_nsends + (size_t)g_size;
  if (need > g_ctl_capsends) {
    MPI_Request *n = realloc(g_ctl_sends, need * sizeof *n);
    if (!n) { /* out of memory: the other ranks learn it from the end-of-run report */
      pthread_mutex_unlock(&g_ctl_mu);
      return;
    }
    g_ctl_sends = n;
    g_ctl_capsends = need;
  }
  g_ctl_sent_kind[what] = 1;
  g_ctl_out[what][0] = what;
  g_ctl_out[what][1] = g_rank;
  for (int r = 0; r < g_size; r++) {
    if (r == g_rank) continue;
    MPI_Isend(g_ctl_out[what], 2, MPI_INT, r, TAG_CTL, g_ctl, &g_ctl_sends[g_ctl_nsends++]);
    g_ctl_sent_to[r]++;
  }
  pthread_mutex_unlock(&g_ctl_mu);
}

static void ctl_post(void) { MPI_Irecv(g_ctl_in, 2, MPI_INT, MPI_ANY_SOURCE, TAG_CTL, g_ctl, &g_ctl_req); }

static void *ctl_main(void *arg) {
  (void)arg;
  while (!atomic_load(&g_ctl_quit)) {
    int flag = 0;
    MPI_Test(&g_ctl_req, &flag, MPI_STATUS_IGNORE);
    if (flag) {
      g_ctl_received++;
      int what = g_ctl_in[0], from = g_ctl_in[1];
      ctl_post();
      if (what == CLUSTER_FAIL) note_failure(from);
      run_remote_request(what, from);
      continue;
    }
    struct timespec ts = {0, 2000000}; /* 2 ms: how fast an abort reaches a busy rank */
    nanosleep(&ts, NULL);
  }
  return NULL;
}

/* ---- the job ------------------------------------------------------------- */
int cluster_init(char *err, size_t errlen) {
  if (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMIX_RANK") && !getenv("PMI_SIZE")) return 0;
  int provided = MPI_THREAD_SINGLE;
  if (MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS) {
    snprintf(err, errlen, "MPI_Init_thread failed");
    return -1;
  }
  if (provided < MPI_THREAD_MULTIPLE) {
    snprintf(
        err, errlen,
        "the MPI library provides thread level %d, not MPI_THREAD_MULTIPLE (%d): stages call collectives "
        "from their own threads; use an MPI built with thread support",
        provided, MPI_THREAD_MULTIPLE);
    MPI_Finalize();
    return -1;
  }
  g_mpi = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  MPI_Comm_dup(MPI_COMM_WORLD, &g_job);
  if (g_size == 1) return 0;
  MPI_Comm_dup(MPI_COMM_WORLD, &g_ctl);
  if (!(g_ctl_sent_to = calloc((size_t)g_size, sizeof *g_ctl_sent_to))) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  ctl_post();
  if (pthread_create(&g_ctl_thread, NULL, ctl_main, NULL)) {
    snprintf(err, errlen, "cannot start the MPI control thread");
    return -1;
  }
  return 0;
}

void cluster_finalize(void) {
  if (!g_mpi) return;
  if (g_ctl != MPI_COMM_NULL) {
    pthread_mutex_lock(&g_ctl_mu);
    g_ctl_closed = 1;
    pthread_mutex_unlock(&g_ctl_mu);
    atomic_store(&g_ctl_quit, 1);
    pthread_join(g_ctl_thread, NULL);
    int *expect = calloc((size_t)g_size, sizeof *expect), total = 0;
    if (expect) {
      MPI_Alltoall(g_ctl_sent_to, 1, MPI_INT, expect, 1, MPI_INT, g_job);
      for (int r = 0; r < g_size; r++)
        total += expect[r];
    }
    while (g_ctl_received < total) { /* notices still in flight: too late to act on */
      MPI_Wait(&g_ctl_req, MPI_STATUS_IGNORE);
      g_ctl_received++;
      ctl_post();
    }
    MPI_Cancel(&g_ctl_req);
    MPI_Wait(&g_ctl_req, MPI_STATUS_IGNORE);
    MPI_Waitall((int)g_ctl_nsends, g_ctl_sends, MPI_STATUSES_IGNORE);
    free(expect);
    free(g_ctl_sends);
    free(g_ctl_sent_to);
    MPI_Comm_free(&g_ctl);
  }
  MPI_Comm_free(&g_job);
  MPI_Finalize();
  g_mpi = 0;
}

int cluster_job_allgather_int(int value, int *all) {
  if (!g_mpi) {
    all[0] = value;
    return 0;
  }
  return MPI_Allgather(&value, 1, MPI_INT, all, 1, MPI_INT, g_job) == MPI_SUCCESS ? 0 : MYELIN_EIO;
}

int cluster_job_gather(const void *send, size_t bytes, void **recv, size_t *lens) {
  char err[128];
  if (!g_mpi || g_size == 1) return cluster_local_gather(send, bytes, recv, lens, err, sizeof err);
  /* the end-of-run report: kilobytes, so int counts */
  int n = bytes > (size_t)1 << 30 ? 1 << 30 : (int)bytes, *counts = NULL, *displs = NULL, total = 0;
  *recv = NULL;
  if (g_rank == 0) {
    counts = calloc((size_t)g_size, sizeof *counts);
    displs = calloc((size_t)g_size, sizeof *displs);
  }
  MPI_Gather(&n, 1, MPI_INT, counts, 1, MPI_INT, 0, g_job);
  char *out = NULL;
  if (g_rank == 0) {
    for (int r = 0; r < g_size; r++)
      displs[r] = total, total += counts[r], lens[r] = (size_t)counts[r];
    out = malloc(total ? (size_t)total : 1);
  }
  MPI_Gatherv(send, n, MPI_BYTE, out, counts, displs, MPI_BYTE, 0, g_job);
  free(counts);
  free(displs);
  if (g_rank == 0) *recv = out;
  return 0;
}

int cluster_job_bcast_int(int *v) {
  if (!g_mpi || g_size == 1) return 0;
  return MPI_Bcast(v, 1, MPI_INT, 0, g_job) == MPI_SUCCESS ? 0 : MYELIN_EIO;
}
