/*
 * tests/testutil.h — helpers shared by the Check suites (header-only).
 *
 * Suites find the build through environment variables set by
 * myelin_add_test() in cmake/Myelin.cmake: MYELIN_BIN, MYELIN_PLUGIN_PATH,
 * MYELIN_SOURCE_DIR, MYELIN_SHARED_DIR, MYELIN_BUILD_DIR, MYELIN_PYTHON.
 */
#ifndef MYELIN_TESTUTIL_H
#define MYELIN_TESTUTIL_H

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static inline const char *mt_env(const char *name, const char *fallback) {
  const char *v = getenv(name);
  return (v && *v) ? v : fallback;
}

/* Strings handed out by mt_strf/mt_tmpdir live until the test process
 * exits: they are kept reachable here so LeakSanitizer does not count them. */
static void **mt_kept;
static size_t mt_nkept, mt_capkept;
static inline void *mt_keep(void *p) {
  if (mt_nkept == mt_capkept) {
    mt_capkept = mt_capkept ? 2 * mt_capkept : 256;
    mt_kept = realloc(mt_kept, mt_capkept * sizeof *mt_kept);
  }
  mt_kept[mt_nkept++] = p;
  return p;
}

/* A fresh temporary folder. */
static inline char *mt_tmpdir(void) {
  char tmpl[] = "/tmp/myelin-test-XXXXXX";
  char *d = mkdtemp(tmpl);
  ck_assert_msg(d != NULL, "mkdtemp failed");
  return mt_keep(strdup(d));
}

static inline char *mt_strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline char *mt_strf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  if (vasprintf(&s, fmt, ap) < 0) s = NULL;
  va_end(ap);
  ck_assert_ptr_nonnull(s);
  return mt_keep(s);
}

/* Runs a shell command; stdout+stderr captured into *out (malloc'ed, may be
 * NULL to discard). Returns the exit status (128+signal if killed). */
static inline int mt_run(const char *cmd, char **out) {
  char *full = mt_strf("( %s ) 2>&1", cmd);
  FILE *p = popen(full, "r");
  ck_assert_ptr_nonnull(p);
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  size_t n;
  while ((n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
    len += n;
    if (cap - len < 2) buf = realloc(buf, cap *= 2);
  }
  buf[len] = 0;
  int st = pclose(p);
  if (out) *out = buf; else free(buf);
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return -1;
}

/* Writes a text file. */
static inline void mt_write(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  ck_assert_msg(f != NULL, "cannot write %s", path);
  fputs(text, f);
  fclose(f);
}

static inline long mt_file_size(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) return -1;
  return (long)st.st_size;
}

/* 1 when MYELIN_PYTHON (default /usr/bin/python3) can import every module in
 * the space-separated list; suites skip their reference checks otherwise. */
static inline int mt_python_has(const char *modules) {
  const char *py = mt_env("MYELIN_PYTHON", "/usr/bin/python3");
  if (access(py, X_OK) != 0) return 0;
  char *mods = strdup(modules);
  for (char *p = mods; *p; p++) if (*p == ' ') *p = ',';
  char *cmd = mt_strf("%s -c 'import %s' >/dev/null 2>&1", py, mods);
  int rc = system(cmd);
  free(cmd);
  free(mods);
  return rc == 0;
}

/* Runs a suite and returns main()'s exit status (0 when every test passed). */
static inline int mt_run_suite(Suite *s) {
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}

#endif
