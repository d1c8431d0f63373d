/*
 * fault.c — the allocation and write hooks of fault-injection builds.
 *
 * Design: the linker's --wrap turns each call to malloc (etc.) in the wrapped
 * targets into a call to __wrap_malloc here, which counts the call and either
 * fails it or forwards to __real_malloc (the C library's, or ASan's
 * interceptor in sanitizer builds). The counters are process-wide by nature:
 * the hook has no context to carry state in, and every thread and plugin
 * must share one numbering for "the Nth call" to mean anything. They are
 * atomics, read from the environment once (a racing first read computes the
 * same value). See fault.h for the environment variables.
 */
#include "fault.h"

#ifdef MYELIN_FAULT_INJECTION
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t s);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
int __real_vasprintf(char **out, const char *fmt, va_list ap);
size_t __real_fwrite(const void *p, size_t s, size_t n, FILE *fp);
ssize_t __real_write(int fd, const void *p, size_t n);
ssize_t __real_writev(int fd, const struct iovec *iov, int n);

void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t s);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
int __wrap_vasprintf(char **out, const char *fmt, va_list ap);
int __wrap_asprintf(char **out, const char *fmt, ...);
size_t __wrap_fwrite(const void *p, size_t s, size_t n, FILE *fp);
ssize_t __wrap_write(int fd, const void *p, size_t n);
ssize_t __wrap_writev(int fd, const struct iovec *iov, int n);

typedef struct fault_counter {
  const char *env;
  atomic_long fail_at; /* -1 unread, 0 never */
  atomic_long calls;
} fault_counter;

typedef struct fault_state {
  fault_counter alloc, write;
} fault_state;

static fault_state F = {{"MYELIN_FAULT_ALLOC", -1, 0}, {"MYELIN_FAULT_WRITE", -1, 0}};

static int hit(fault_counter *c) {
  long at = atomic_load(&c->fail_at);
  if (at < 0) {
    const char *s = getenv(c->env);
    at = s ? strtol(s, NULL, 10) : 0;
    if (at < 0) at = 0;
    atomic_store(&c->fail_at, at);
  }
  long n = atomic_fetch_add(&c->calls, 1) + 1;
  return at > 0 && n == at;
}

void *__wrap_malloc(size_t n) {
  if (hit(&F.alloc)) return errno = ENOMEM, NULL;
  return __real_malloc(n);
}
void *__wrap_calloc(size_t n, size_t s) {
  if (hit(&F.alloc)) return errno = ENOMEM, NULL;
  return __real_calloc(n, s);
}
void *__wrap_realloc(void *p, size_t n) {
  if (hit(&F.alloc)) return errno = ENOMEM, NULL;
  return __real_realloc(p, n);
}
char *__wrap_strdup(const char *s) {
  if (hit(&F.alloc)) return errno = ENOMEM, NULL;
  return __real_strdup(s);
}
char *__wrap_strndup(const char *s, size_t n) {
  if (hit(&F.alloc)) return errno = ENOMEM, NULL;
  return __real_strndup(s, n);
}
int __wrap_vasprintf(char **out, const char *fmt, va_list ap) {
  if (hit(&F.alloc)) return errno = ENOMEM, *out = NULL, -1;
  return __real_vasprintf(out, fmt, ap);
}
int __wrap_asprintf(char **out, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int r = __wrap_vasprintf(out, fmt, ap);
  va_end(ap);
  return r;
}
size_t __wrap_fwrite(const void *p, size_t s, size_t n, FILE *fp) {
  if (hit(&F.write)) return errno = ENOSPC, 0;
  return __real_fwrite(p, s, n, fp);
}
ssize_t __wrap_write(int fd, const void *p, size_t n) {
  if (hit(&F.write)) return errno = ENOSPC, -1;
  return __real_write(fd, p, n);
}
ssize_t __wrap_writev(int fd, const struct iovec *iov, int n) {
  if (hit(&F.write)) return errno = ENOSPC, -1;
  return __real_writev(fd, iov, n);
}

__attribute__((destructor)) static void fault_report(void) {
  const char *r = getenv("MYELIN_FAULT_REPORT");
  if (r && *r && *r != '0')
    fprintf(stderr, "myelin-fault: allocs %ld writes %ld\n", atomic_load(&F.alloc.calls),
            atomic_load(&F.write.calls));
}

int myelin_fault_enabled(void) { return 1; }
#else
int myelin_fault_enabled(void) { return 0; }
#endif
