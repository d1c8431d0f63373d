/*
 * tests/testutil.h — helpers shared by the Check suites (header-only).
 *
 * Suites find the build through environment variables set by
 * myelin_add_test() in cmake/Myelin.cmake: MYELIN_BIN, MYELIN_PLUGIN_PATH,
 * MYELIN_SOURCE_DIR (test data in tests/data/), MYELIN_BUILD_DIR,
 * MYELIN_PYTHON, MYELIN_SKIP_FILE.
 *
 * A check that cannot run here (a Debian data package or a Python module is
 * missing) says so with MT_SKIP / MT_NEED_FILE / MT_NEED_PYTHON, never with a
 * silent return: it prints `SKIP: <suite>:<test>: <reason>` and appends that
 * line to $MYELIN_SKIP_FILE, which tests/run.sh counts. With CI=true or
 * MYELIN_REQUIRE_ALL=1 (CI installs every dependency) a skip fails the test.
 */
#ifndef MYELIN_TESTUTIL_H
#define MYELIN_TESTUTIL_H

#include <check.h>
#include <errno.h>
#include <ftw.h>
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

/* 1 when every dependency must be present: CI=true or MYELIN_REQUIRE_ALL=1. */
static inline int mt_require_all(void) {
  const char *ci = getenv("CI"), *all = getenv("MYELIN_REQUIRE_ALL");
  return (ci && strcmp(ci, "true") == 0) || (all && strcmp(all, "1") == 0);
}

/* Records that the running check (or a part of it) did not run: prints
 * `SKIP: <suite>:<test>: <reason>`, appends it to $MYELIN_SKIP_FILE, and
 * fails the check when mt_require_all(). Use MT_SKIP to leave the check. */
static inline void mt_skip_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void mt_skip_note(const char *fmt, ...) {
  char reason[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(reason, sizeof reason, fmt, ap);
  va_end(ap);
  char line[1400];
  snprintf(line, sizeof line, "SKIP: %s:%s: %s\n", program_invocation_short_name, tcase_name(), reason);
  fputs(line, stderr);
  const char *file = getenv("MYELIN_SKIP_FILE");
  FILE *f = file && *file ? fopen(file, "a") : NULL;
  if (f) {
    fputs(line, f);
    fclose(f);
  }
  if (mt_require_all())
    ck_abort_msg("%s:%s: skipped (%s), but CI=true / MYELIN_REQUIRE_ALL=1 requires every dependency",
                 program_invocation_short_name, tcase_name(), reason);
}

/* Leaves the running check as skipped (see mt_skip_note). */
#define MT_SKIP(...)                                                                                         \
  do {                                                                                                       \
    mt_skip_note(__VA_ARGS__);                                                                               \
    return;                                                                                                  \
  } while (0)

/* 1 when path is readable; otherwise records a skip naming it and returns 0. */
static inline int mt_have_file(const char *path, const char *why) {
  if (access(path, R_OK) == 0) return 1;
  mt_skip_note("%s not readable (%s)", path, why);
  return 0;
}
#define MT_NEED_FILE(path, why)                                                                              \
  do {                                                                                                       \
    if (!mt_have_file(path, why)) return;                                                                    \
  } while (0)

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

/* Temporary folders are removed when the process that made them exits
 * normally: a passing test's child (CK_FORK), or the suite. A failing check
 * ends its forked child with _exit, so its folder stays for a look, and so
 * does every folder when MYELIN_KEEP_TMP=1. Each folder remembers the pid
 * that made it: a forked child never removes its parent's. */
typedef struct mt_tmp {
  char path[32]; /* its own copy: a test may free the string it was given */
  pid_t pid;
} mt_tmp;
static mt_tmp *mt_tmps;
static size_t mt_ntmps, mt_captmps;

static int mt_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  remove(path);
  return 0;
}

static void mt_rm_tmpdirs(void) {
  const char *keep = getenv("MYELIN_KEEP_TMP");
  if (keep && *keep && strcmp(keep, "0")) return;
  pid_t me = getpid();
  for (size_t i = 0; i < mt_ntmps; i++)
    if (mt_tmps[i].pid == me) nftw(mt_tmps[i].path, mt_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh temporary folder. */
static inline char *mt_tmpdir(void) {
  char tmpl[] = "/tmp/myelin-test-XXXXXX";
  char *d = mkdtemp(tmpl);
  ck_assert_msg(d != NULL, "mkdtemp failed");
  char *path = mt_keep(strdup(d));
  if (mt_ntmps == mt_captmps) {
    mt_captmps = mt_captmps ? 2 * mt_captmps : 64;
    mt_tmps = realloc(mt_tmps, mt_captmps * sizeof *mt_tmps);
    ck_assert_ptr_nonnull(mt_tmps);
  }
  static int registered; /* a forked child inherits the handler */
  if (!registered++) atexit(mt_rm_tmpdirs);
  mt_tmp *t = &mt_tmps[mt_ntmps++];
  snprintf(t->path, sizeof t->path, "%s", d);
  t->pid = getpid();
  return path;
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
 * the space-separated list (no skip recorded: see mt_python_or_skip). */
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

/* mt_python_has, recording a skip of `what` (a reference check, a demo)
 * when the modules are missing. */
static inline int mt_python_or_skip(const char *modules, const char *what) {
  if (mt_python_has(modules)) return 1;
  mt_skip_note("%s: %s cannot import %s", what, mt_env("MYELIN_PYTHON", "/usr/bin/python3"), modules);
  return 0;
}
#define MT_NEED_PYTHON(modules, what)                                                                        \
  do {                                                                                                       \
    if (!mt_python_or_skip(modules, what)) return;                                                           \
  } while (0)

/* Runs a suite and returns main()'s exit status (0 when every test passed). */
static inline int mt_run_suite(Suite *s) {
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}

#endif
