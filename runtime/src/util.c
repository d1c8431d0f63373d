/*
 * util.c — small helpers shared by the runtime: diagnostics lists in the
 * compiler-style "FILE:LINE:COL: error: message" form, string helpers and a
 * monotonic clock.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

char *xstrdup(const char *s) {
  if (!s) return NULL;
  char *r = strdup(s);
  if (!r) abort(); /* the runtime's own tiny strings: OOM here is fatal */
  return r;
}

char *xasprintf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  int n = vasprintf(&s, fmt, ap);
  va_end(ap);
  if (n < 0) abort();
  return s;
}

uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void diag_vadd(myelin_diag *d, const char *file, int line, int col, const char *fmt, va_list ap) {
  char msg[1024];
  vsnprintf(msg, sizeof msg, fmt, ap);
  char *s;
  if (line > 0)
    s = xasprintf("%s:%d:%d: error: %s", file ? file : "<input>", line, col > 0 ? col : 1, msg);
  else
    s = xasprintf("%s: error: %s", file ? file : "<input>", msg);
  if (d->n == d->cap) {
    d->cap = d->cap ? d->cap * 2 : 8;
    d->lines = realloc(d->lines, d->cap * sizeof *d->lines);
    if (!d->lines) abort();
  }
  d->lines[d->n++] = s;
}

void diag_add(myelin_diag *d, const char *file, int line, int col, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  diag_vadd(d, file, line, col, fmt, ap);
  va_end(ap);
}

void diag_print(const myelin_diag *d, void *fp) {
  for (size_t i = 0; i < d->n; i++) fprintf((FILE *)fp, "%s\n", d->lines[i]);
}

void diag_free(myelin_diag *d) {
  for (size_t i = 0; i < d->n; i++) free(d->lines[i]);
  free(d->lines);
  d->lines = NULL;
  d->n = d->cap = 0;
}
