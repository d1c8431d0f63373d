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

#include "fault.h"
#include "internal.h"

/* Out of memory never aborts: these return NULL and callers report it. */
char *xstrdup(const char *s) {
  if (!s) return NULL;
  return strdup(s);
}

char *xasprintf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  int n = vasprintf(&s, fmt, ap);
  va_end(ap);
  return n < 0 ? NULL : s;
}

void json_str(FILE *f, const char *s, size_t n) {
  fputc('"', f);
  for (size_t i = 0; s && i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\')
      fprintf(f, "\\%c", c);
    else if (c == '\n')
      fputs("\\n", f);
    else if (c == '\t')
      fputs("\\t", f);
    else if (c < 0x20)
      fprintf(f, "\\u%04x", c);
    else
      fputc(c, f);
  }
  fputc('"', f);
}

uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * Diagnostics survive out-of-memory: the list always keeps one free slot, so
 * when a line cannot be formatted or the list cannot grow, the static line
 * DIAG_OOM goes into that slot (once) and the caller still sees an error.
 * A list whose very first allocation failed points at a static one-line list.
 */
static char diag_oom_text[] = "error: out of memory";
static char *diag_oom_list[1] = {diag_oom_text};

static void diag_put_oom(myelin_diag *d) {
  if (d->lines == diag_oom_list) return;
  if (d->n && d->lines[d->n - 1] == diag_oom_text) return;
  if (!d->lines) {
    d->lines = diag_oom_list;
    d->n = d->cap = 1;
  } else if (d->n < d->cap) {
    d->lines[d->n++] = diag_oom_text;
  }
}

int diag_out_of_memory(const myelin_diag *d) {
  for (size_t i = 0; i < d->n; i++)
    if (d->lines[i] == diag_oom_text || strstr(d->lines[i], "out of memory")) return 1;
  return 0;
}

static void diag_vput(myelin_diag *d, const char *severity, const char *file, int line, int col,
                      const char *fmt, va_list ap) {
  char msg[1024];
  vsnprintf(msg, sizeof msg, fmt, ap);
  if (d->lines == diag_oom_list) return;
  if (d->n + 1 >= d->cap) { /* keep one slot free for the out-of-memory line */
    size_t ncap = d->cap ? d->cap * 2 : 8;
    char **nl = realloc(d->lines, ncap * sizeof *nl);
    if (!nl) {
      diag_put_oom(d);
      return;
    }
    d->lines = nl;
    d->cap = ncap;
  }
  char *s;
  if (line > 0)
    s = xasprintf("%s:%d:%d: %s: %s", file ? file : "<input>", line, col > 0 ? col : 1, severity, msg);
  else
    s = xasprintf("%s: %s: %s", file ? file : "<input>", severity, msg);
  if (!s) {
    diag_put_oom(d);
    return;
  }
  d->lines[d->n++] = s;
}

void diag_vadd(myelin_diag *d, const char *file, int line, int col, const char *fmt, va_list ap) {
  diag_vput(d, "error", file, line, col, fmt, ap);
}

void diag_warn(myelin_diag *d, const char *file, int line, int col, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  diag_vput(d, "warning", file, line, col, fmt, ap);
  va_end(ap);
}

void diag_add(myelin_diag *d, const char *file, int line, int col, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  diag_vadd(d, file, line, col, fmt, ap);
  va_end(ap);
}

void diag_print(const myelin_diag *d, void *fp) {
  for (size_t i = 0; i < d->n; i++)
    fprintf((FILE *)fp, "%s\n", d->lines[i]);
}

void diag_free(myelin_diag *d) {
  for (size_t i = 0; i < d->n; i++)
    if (d->lines[i] != diag_oom_text) free(d->lines[i]);
  if (d->lines != diag_oom_list) free(d->lines);
  d->lines = NULL;
  d->n = d->cap = 0;
}
