/*
 * The README's quick start and the plugin guide's first commands, word for
 * word, as a new user meets them once the README's first command
 * (pipelines/main.sh) has installed myelin:
 *  - this build is installed into a fresh prefix, PATH starts with PREFIX/bin,
 *    and nothing of the build tree is in the environment (no
 *    MYELIN_PLUGIN_PATH, MYELIN_SCHEMA_DIR or PKG_CONFIG_PATH);
 *  - the commands are read from the ```sh blocks of README.md (under
 *    "## Quick start") and docs/plugins.md (after "The fastest start"), so
 *    the test breaks when the docs drift;
 *  - they run in a fresh folder holding a copy of pipelines/ (the quick start
 *    runs "from the repository folder"); `myelin run` lines get a small budget
 *    appended (--set train.limit=... --set test.limit=...), nothing else
 *    changes.
 * Then the `next:` line that `myelin new-plugin` prints is run as printed.
 */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static char *prefix;

static void install_prefix(void) {
  if (prefix) return;
  prefix = mt_tmpdir();
  char *out;
  int rc = mt_run(mt_strf("cmake --install %s --prefix %s", mt_env("MYELIN_BUILD_DIR", "."), prefix), &out);
  ck_assert_msg(rc == 0, "install failed:\n%s", out);
  free(out);
}

/* The lines of the first ```sh block after the line containing `marker` in
 * the source tree's file `doc`, comments (" # ...") cut off, one per line. */
static char *sh_block(const char *doc, const char *marker) {
  char *path = mt_strf("%s/%s", mt_env("MYELIN_SOURCE_DIR", ".."), doc);
  FILE *f = fopen(path, "r");
  ck_assert_msg(f != NULL, "cannot open %s", path);
  char line[4096];
  int state = 0; /* 0: before marker, 1: before ```sh, 2: in the block */
  size_t cap = 1 << 16, len = 0;
  char *out = mt_keep(calloc(1, cap));
  while (fgets(line, sizeof line, f) && state < 3) {
    if (state == 0 && strstr(line, marker))
      state = 1;
    else if (state == 1 && strncmp(line, "```sh", 5) == 0)
      state = 2;
    else if (state == 2 && strncmp(line, "```", 3) == 0)
      state = 3;
    else if (state == 2) {
      char *hash = strstr(line, " #");
      if (hash) *hash = 0;
      line[strcspn(line, "\n")] = 0;
      size_t n = strlen(line);
      while (n && line[n - 1] == ' ')
        line[--n] = 0;
      if (!n) continue;
      ck_assert(len + n + 2 < cap);
      memcpy(out + len, line, n);
      len += n;
      out[len++] = '\n';
    }
  }
  fclose(f);
  ck_assert_msg(state == 3, "%s: no ```sh block after '%s'", path, marker);
  return out;
}

/* Runs a script (bash -e, each command echoed) in dir as a user with only the
 * install on PATH; returns the exit status, *out the combined output. */
static int run_as_user(const char *dir, const char *script, char **out) {
  char *file = mt_strf("%s/.steps.sh", dir);
  mt_write(file, script);
  /* a sanitized libmyelin needs sanitized plugins: the flags come from the
   * environment, the commands stay as written */
  const char *san = getenv("MYELIN_SANITIZED") ? "CFLAGS='-fsanitize=address,undefined' "
                                                 "LDFLAGS='-fsanitize=address,undefined' "
                                               : "";
  return mt_run(mt_strf("cd %s && env -u MYELIN_PLUGIN_PATH -u MYELIN_SCHEMA_DIR -u PKG_CONFIG_PATH %s"
                        "PATH=%s/bin:$PATH bash -ex %s",
                        dir, san, prefix, file),
                out);
}

/* A folder like the repository's for the quick start: a copy of pipelines/. */
static char *user_folder(void) {
  char *w = mt_tmpdir();
  ck_assert_int_eq(mt_run(mt_strf("cp -r %s/pipelines %s/", mt_env("MYELIN_SOURCE_DIR", ".."), w), NULL), 0);
  return w;
}

/* Skips unless this build has every plugin the quick start names (a
 * MYELIN_ONLY developer build may lack some). */
static int have_plugins(const char *names) {
  char *list = mt_strf("%s", names);
  for (char *tok = strtok(list, " "); tok; tok = strtok(NULL, " "))
    if (access(mt_strf("%s/%s.so", mt_env("MYELIN_PLUGIN_PATH", "."), tok), R_OK) != 0) return 0;
  return 1;
}

static size_t count(const char *s, const char *needle) {
  size_t n = 0;
  for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
    n++;
  return n;
}

START_TEST(readme_quick_start) {
  const char *need = "dataset spike_encoder biograd file_sink loihi_export fmri_source isc nifti_sink "
                     "npy_sink file_source figure";
  if (!have_plugins(need)) MT_SKIP("this build lacks one of the plugins %s (MYELIN_ONLY)", need);
  install_prefix();
  const char *block = sh_block("README.md", "## Quick start");
  ck_assert_msg(strstr(block, "myelin run ") && strstr(block, "myelin cat "), "%s", block);
  /* small budget for `myelin run` lines: 300 training images, 200 test images */
  size_t cap = strlen(block) + 4096, len = 0;
  char *script = mt_keep(calloc(1, cap));
  for (const char *p = block; *p;) {
    const char *e = strchr(p, '\n');
    len += (size_t)snprintf(script + len, cap - len, "%.*s%s\n", (int)(e - p), p,
                            strncmp(p, "myelin run ", 11) == 0 ? " --set train.limit=300 --set test.limit=200"
                                                               : "");
    p = e + 1;
  }
  char *w = user_folder(), *out = NULL;
  int rc = run_as_user(w, script, &out);
  ck_assert_msg(rc == 0, "the quick start failed (exit %d):\n%s", rc, out);
  ck_assert_msg(strstr(out, "spike_encoder") && strstr(out, "gen_source"), "%s", out);
  /* the metrics file the README names, one JSON object per epoch: the
   * `--set train.epochs=3` of the README made the source send 3 epochs */
  ck_assert_msg(mt_file_size(mt_strf("%s/out/fashion_mnist_biograd.metrics.mpk", w)) > 0, "%s", out);
  ck_assert_msg(count(out, "{\"kind\": \"metrics\"") == 3, "not 3 epochs of metrics:\n%s", out);
  ck_assert_msg(strstr(out, "\"epoch\": 2") && !strstr(out, "\"epoch\": 3"), "%s", out);
  /* the quick start's `myelin plot` of the same metrics */
  ck_assert_msg(mt_file_size(mt_strf("%s/out/curves.png", w)) > 1000 && strstr(out, "wrote out/curves.png"),
                "%s", out);
  free(out);
}
END_TEST

START_TEST(plugin_guide_fastest_start) {
  install_prefix();
  const char *block = sh_block("docs/plugins.md", "The fastest start");
  ck_assert_msg(strstr(block, "myelin new-plugin "), "%s", block);
  char *w = mt_tmpdir(), *out = NULL;
  int rc = run_as_user(w, block, &out);
  ck_assert_msg(rc == 0, "the plugin guide's first commands failed (exit %d):\n%s", rc, out);
  ck_assert_msg(strstr(out, "100% tests passed"), "the scaffold's test did not pass:\n%s", out);
  ck_assert_msg(strstr(out, "gain"), "inspect shows no params:\n%s", out);
  free(out);
}
END_TEST

START_TEST(new_plugin_next_line) {
  install_prefix();
  char *w = mt_tmpdir(), *out = NULL;
  int rc = run_as_user(w, "myelin new-plugin my_next --dir plugins/here\n", &out);
  ck_assert_msg(rc == 0, "%s", out);
  const char *next = strstr(out, "next: ");
  ck_assert_msg(next != NULL, "no next: line:\n%s", out);
  char *line = mt_strf("%.*s\n", (int)strcspn(next + 6, "\n"), next + 6);
  free(out);
  rc = run_as_user(w, line, &out);
  ck_assert_msg(rc == 0, "the next: line failed (exit %d): %s\n%s", rc, line, out);
  ck_assert_msg(strstr(out, "100% tests passed"), "%s", out);
  free(out);
}
END_TEST

int main(void) {
  Suite *s = suite_create("docs_e2e");
  TCase *tc = tcase_create("docs");
  tcase_set_timeout(tc, 900);
  tcase_add_test(tc, readme_quick_start);
  tcase_add_test(tc, plugin_guide_fastest_start);
  tcase_add_test(tc, new_plugin_next_line);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_set_fork_status(sr, CK_NOFORK); /* one install shared by the tests */
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
