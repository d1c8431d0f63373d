/*
 * cluster.c — the single-rank implementation of cluster.h: what every
 * collective means when the job has one rank. Argument checks are the same
 * as the MPI build's, so a plugin that misuses the API fails on a laptop too.
 * The MPI build (cluster_mpi.c) uses the checks and cluster_local_gather
 * from here and falls back to them when the job has one rank.
 */
#include "cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cluster_check_reduce(myelin_dtype dtype, myelin_reduce_op op, char *err, size_t errlen) {
  if (dtype != MYELIN_F8 && dtype != MYELIN_F4 && dtype != MYELIN_I8) {
    snprintf(err, errlen, "allreduce: dtype %s is not one of <f8, <f4, <i8",
             myelin_dtype_name(dtype) ? myelin_dtype_name(dtype) : "(invalid)");
    return MYELIN_EINVAL;
  }
  if (op != MYELIN_OP_SUM && op != MYELIN_OP_MIN && op != MYELIN_OP_MAX) {
    snprintf(err, errlen, "allreduce: unknown operator %d", (int)op);
    return MYELIN_EINVAL;
  }
  return 0;
}

int cluster_check_root(int root, const char *what, char *err, size_t errlen) {
  if (root < 0 || root >= cluster_size()) {
    snprintf(err, errlen, "%s: root %d is not a rank (0..%d)", what, root, cluster_size() - 1);
    return MYELIN_EINVAL;
  }
  return 0;
}

int cluster_local_gather(const void *send, size_t bytes, void **recv, size_t *recv_bytes, char *err,
                         size_t errlen) {
  if (!recv || !recv_bytes) {
    snprintf(err, errlen, "gather: the root needs recv and recv_bytes");
    return MYELIN_EINVAL;
  }
  *recv = malloc(bytes ? bytes : 1);
  if (!*recv) {
    snprintf(err, errlen, "gather: out of memory (%zu bytes)", bytes);
    return MYELIN_ENOMEM;
  }
  if (bytes) memcpy(*recv, send, bytes);
  recv_bytes[0] = bytes;
  return 0;
}

#ifndef MYELIN_MPI
int cluster_rank(void) { return 0; }
int cluster_size(void) { return 1; }

int cluster_allreduce(cluster_comm *c, void *buf, size_t count, myelin_dtype dtype, myelin_reduce_op op,
                      char *err, size_t errlen) {
  (void)c, (void)buf, (void)count;
  return cluster_check_reduce(dtype, op, err, errlen);
}

int cluster_gather(cluster_comm *c, const void *send, size_t bytes, int root, void **recv, size_t *recv_bytes,
                   char *err, size_t errlen) {
  (void)c;
  int rc = cluster_check_root(root, "gather", err, errlen);
  return rc ? rc : cluster_local_gather(send, bytes, recv, recv_bytes, err, errlen);
}

int cluster_bcast(cluster_comm *c, void *buf, size_t bytes, int root, char *err, size_t errlen) {
  (void)c, (void)buf, (void)bytes;
  return cluster_check_root(root, "bcast", err, errlen);
}

int cluster_barrier(cluster_comm *c, char *err, size_t errlen) {
  (void)c, (void)err, (void)errlen;
  return 0;
}

int cluster_comm_new(const _Atomic int *aborting, cluster_comm **out, char *err, size_t errlen) {
  (void)aborting, (void)err, (void)errlen;
  *out = NULL;
  return 0;
}
void cluster_comm_free(cluster_comm *c) { (void)c; }

int cluster_init(char *err, size_t errlen) {
  (void)err, (void)errlen;
  return 0;
}
void cluster_finalize(void) {}

int cluster_job_allgather_int(int value, int *all) {
  all[0] = value;
  return 0;
}
int cluster_job_gather(const void *send, size_t bytes, void **recv, size_t *lens) {
  char err[128];
  return cluster_local_gather(send, bytes, recv, lens, err, sizeof err);
}
int cluster_job_bcast_int(int *v) {
  (void)v;
  return 0;
}
void cluster_notify(int what) { (void)what; }
int cluster_first_failure(void) { return -1; }
#endif
