/*
 * fault.h — fault injection for hardening tests (MYELIN_FAULT_INJECTION=ON).
 *
 * In such a build, libmyelin, the CLI and the core plugins are linked with
 * -Wl,--wrap for malloc, calloc, realloc, strdup, strndup, vasprintf,
 * fwrite, write and writev, so every call they make goes through the hooks in
 * fault.c. The environment picks the call that fails:
 *   MYELIN_FAULT_ALLOC=N   the Nth allocation returns NULL (errno ENOMEM)
 *   MYELIN_FAULT_WRITE=N   the Nth fwrite/write/writev fails (ENOSPC: 0 items / -1)
 *   MYELIN_FAULT_REPORT=1  at exit, print "myelin-fault: allocs A writes W"
 *                          (how many calls a run makes: the range to walk)
 * Only that one call fails (later calls succeed again), so both the failure
 * and the recovery path after it are exercised. Counting is process-wide and
 * atomic (threads share it). In an ordinary build nothing is wrapped and
 * fault.c compiles to nothing.
 */
#ifndef MYELIN_FAULT_H
#define MYELIN_FAULT_H

struct myelin_diag;
/* 1 when a diagnostics list reports running out of memory (util.c): the CLI
 * then exits 1 (a runtime failure), not 2 (a bad pipeline file). */
int diag_out_of_memory(const struct myelin_diag *d);

/* 1 when this libmyelin was built with fault injection. */
int myelin_fault_enabled(void);

#endif
