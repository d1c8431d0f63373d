/*
 * cluster.h — ranks and collectives behind host->rank/size/allreduce/gather/
 * bcast/barrier (plugin.h, ABI 1.4), and the job control of an MPI run.
 *
 * Without MPI (the default build), or in an MPI build started without an
 * MPI launcher, there is one rank: rank 0 of 1, the collectives are local
 * no-ops (gather copies) and the job functions do nothing. The MPI build
 * (-DMYELIN_MPI=ON, cluster_mpi.c) implements the same functions over one
 * communicator per stage (cluster_comm), created in pipeline order so every
 * rank's stage i gets the matching communicator, plus a control
 * communicator on which a rank tells the others that it stops, aborts or
 * failed (docs/mpi.md).
 */
#ifndef MYELIN_CLUSTER_H
#define MYELIN_CLUSTER_H

#include <stdatomic.h>
#include <stddef.h>

#include "myelin/plugin.h"

typedef struct cluster_comm cluster_comm; /* one per stage; NULL = single rank */

int cluster_rank(void);
int cluster_size(void);

/* Each returns 0, MYELIN_ESTOP when the job aborts while waiting, or another
 * negative MYELIN_E* with a message in err. `c` may be NULL (single rank). */
int cluster_allreduce(cluster_comm *c, void *buf, size_t count, myelin_dtype dtype, myelin_reduce_op op,
                      char *err, size_t errlen);
int cluster_gather(cluster_comm *c, const void *send, size_t bytes, int root, void **recv, size_t *recv_bytes,
                   char *err, size_t errlen);
int cluster_bcast(cluster_comm *c, void *buf, size_t bytes, int root, char *err, size_t errlen);
int cluster_barrier(cluster_comm *c, char *err, size_t errlen);

/* A stage's communicator: every rank calls this for stage 0, 1, ... in the
 * same order (a collective). *out is NULL with one rank. `aborting` is the
 * run's abort flag: a collective waiting on this communicator returns
 * MYELIN_ESTOP once it is set. MYELIN_ESTOP here too. */
int cluster_comm_new(const _Atomic int *aborting, cluster_comm **out, char *err, size_t errlen);
void cluster_comm_free(cluster_comm *c); /* NULL is fine */

/* ---- the job (main thread) ----------------------------------------------
 * cluster_init joins the MPI job when an MPI launcher started the process
 * (OMPI_COMM_WORLD_SIZE, PMIX_RANK or PMI_SIZE in the environment) and
 * starts the control thread; otherwise it does nothing. Call it once, after
 * the signal mask is set (MPI's threads inherit it). Returns 0, or -1 with
 * a message in err (MPI without MPI_THREAD_MULTIPLE). cluster_finalize
 * leaves the job (every rank calls it; safe when init did nothing). */
int cluster_init(char *err, size_t errlen);
void cluster_finalize(void);

/* Every rank's `value` in rank order into all[size] (all ranks). */
int cluster_job_allgather_int(int value, int *all);
/* Every rank's bytes concatenated in rank order on rank 0 (*recv malloc'ed,
 * lens[size]); *recv NULL elsewhere. Main thread, every rank. */
int cluster_job_gather(const void *send, size_t bytes, void **recv, size_t *lens);
/* rank 0's *v to every rank. */
int cluster_job_bcast_int(int *v);

/* Tells every other rank, over the control communicator, that this rank
 * stops cleanly (a signal), aborts (a second signal) or failed (an error).
 * Each kind is sent at most once; any thread. The receiving ranks' control
 * thread calls run_remote_request (internal.h). */
enum { CLUSTER_STOP = 1, CLUSTER_ABORT = 2, CLUSTER_FAIL = 3 };
void cluster_notify(int what);
/* The rank whose failure this rank learned of first (its own included), or
 * -1: rank 0 prints that rank's errors first (the root cause). */
int cluster_first_failure(void);

/* The single-rank meaning (cluster.c), which the MPI build uses too. */
int cluster_check_reduce(myelin_dtype dtype, myelin_reduce_op op, char *err, size_t errlen);
int cluster_check_root(int root, const char *what, char *err, size_t errlen);
int cluster_local_gather(const void *send, size_t bytes, void **recv, size_t *recv_bytes, char *err,
                         size_t errlen);

#endif
