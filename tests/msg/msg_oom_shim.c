/*
 * msg_oom_shim.c — msg.c compiled with its malloc/realloc renamed to
 * oom_malloc/oom_realloc (defined by test_msg_oom.c), so the fault injector
 * sees exactly msg.c's allocations and nothing else (not Check's, not libc's).
 */
#define malloc oom_malloc
#define realloc oom_realloc
#include "../../runtime/src/msg.c"
