/*
 * cluster.h — ranks and collectives behind host->rank/size/allreduce/gather/
 * bcast/barrier (plugin.h, ABI 1.4).
 *
 * Without MPI (the default build) there is one rank: rank 0 of 1, and the
 * collectives are local no-ops (gather copies). The MPI build
 * (-DMYELIN_MPI=ON) implements the same functions over one communicator per
 * stage (cluster_comm), created in pipeline order so every rank's stage i
 * gets the matching communicator.
 */
#ifndef MYELIN_CLUSTER_H
#define MYELIN_CLUSTER_H

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

#endif
