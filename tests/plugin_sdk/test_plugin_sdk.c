/*
 * The plugin SDK end to end, as a plugin author meets it:
 *  1. `cmake --install` this build into a temporary prefix;
 *  2. build examples/zscore_plugin against that prefix only (pkg-config),
 *     run its pipeline through MYELIN_PLUGIN_PATH with the installed CLI,
 *     and check the z-scores in the output file;
 *  3. `myelin new-plugin` scaffolds a plugin that builds and passes its own
 *     harness test as generated;
 *  4. pkg-config describes the install and the build tree correctly.
 * The installed `myelin` must find its own plugins with no variable set.
 */
#include <stdlib.h>
#include <string.h>

#include "myelin/msg.h"
#include "testutil.h"

static char *prefix;

static void install_prefix(void) {
  if (prefix) return;
  prefix = mt_tmpdir();
  char *out;
  const char *build = mt_env("MYELIN_BUILD_DIR", ".");
  int rc = mt_run(mt_strf("cmake --install %s --prefix %s", build, prefix), &out);
  ck_assert_msg(rc == 0, "install failed:\n%s", out);
  free(out);
}

/* Environment for an out-of-tree CMake build: -Werror (the scaffold and the
 * example must compile warning-free), and the sanitizers when libmyelin has them. */
static const char *sdk_env(void) {
  return getenv("MYELIN_SANITIZED")
             ? "CFLAGS='-Werror -fsanitize=address,undefined' LDFLAGS='-fsanitize=address,undefined'"
             : "CFLAGS=-Werror";
}

START_TEST(installed_cli_finds_plugins) {
  install_prefix();
  char *out;
  /* from another folder, with nothing of the build tree in the environment */
  int rc = mt_run(
      mt_strf("cd / && env -u MYELIN_PLUGIN_PATH -u MYELIN_SCHEMA_DIR %s/bin/myelin plugins", prefix), &out);
  ck_assert_int_eq(rc, 0);
  ck_assert_msg(strstr(out, "gen_source") && strstr(out, "file_sink"), "%s", out);
  ck_assert_msg(strstr(out, mt_strf("%s/lib/myelin/plugins/gen_source.so", prefix)),
                "not the installed plugins:\n%s", out);
  free(out);
  ck_assert_int_ge(mt_file_size(mt_strf("%s/lib/pkgconfig/myelin.pc", prefix)), 1);
  ck_assert_int_ge(mt_file_size(mt_strf("%s/include/myelin/plugin.h", prefix)), 1);
  ck_assert_int_ge(mt_file_size(mt_strf("%s/share/myelin/schemas/tensor.yaml", prefix)), 1);
  /* the installed schemas, not the source tree's */
  rc = mt_run(mt_strf("cd / && env -u MYELIN_SCHEMA_DIR %s/bin/myelin --help", prefix), &out);
  ck_assert_int_eq(rc, 0);
  ck_assert_msg(strstr(out, mt_strf("in use: %s/share/myelin/schemas", prefix)), "%s", out);
  free(out);
}
END_TEST

/* A plugin compiled by hand with `pkg-config --cflags --libs myelin` against
 * the install, loaded by the installed CLI from another folder. */
START_TEST(pkg_config_compiles_a_plugin) {
  install_prefix();
  char *w = mt_tmpdir(), *out;
  const char *src = mt_env("MYELIN_SOURCE_DIR", "..");
  const char *san = getenv("MYELIN_SANITIZED") ? "-fsanitize=address,undefined" : "";
  int rc = mt_run(
      mt_strf("export PKG_CONFIG_PATH=%s/lib/pkgconfig; cc -std=c11 -Wall -Wextra -Wpedantic -Werror %s "
              "-shared -fPIC -o %s/zscore.so %s/examples/zscore_plugin/zscore.c "
              "$(pkg-config --cflags --libs myelin) -lm",
              prefix, san, w, src),
      &out);
  ck_assert_msg(rc == 0, "compile failed:\n%s", out);
  free(out);
  rc = mt_run(mt_strf("cd / && MYELIN_PLUGIN_PATH=%s %s/bin/myelin inspect zscore", w, prefix), &out);
  ck_assert_msg(rc == 0 && strstr(out, "window"), "%s", out);
  free(out);
}
END_TEST

/* The build tree's pkg-config files describe the build tree (its headers are
 * the source tree's runtime/include, its library is BUILD/lib). */
START_TEST(build_tree_pkg_config) {
  const char *build = mt_env("MYELIN_BUILD_DIR", "."), *src = mt_env("MYELIN_SOURCE_DIR", "..");
  const char *dirs[] = {mt_strf("%s/lib/pkgconfig", build), build};
  for (int i = 0; i < 2; i++) {
    char *inc, *lib, *plug;
    ck_assert_int_eq(
        mt_run(mt_strf("PKG_CONFIG_PATH=%s pkg-config --variable=includedir myelin", dirs[i]), &inc), 0);
    ck_assert_int_eq(mt_run(mt_strf("PKG_CONFIG_PATH=%s pkg-config --variable=libdir myelin", dirs[i]), &lib),
                     0);
    ck_assert_int_eq(
        mt_run(mt_strf("PKG_CONFIG_PATH=%s pkg-config --variable=plugindir myelin", dirs[i]), &plug), 0);
    inc[strcspn(inc, "\n")] = lib[strcspn(lib, "\n")] = plug[strcspn(plug, "\n")] = 0;
    ck_assert_msg(mt_file_size(mt_strf("%s/myelin/plugin.h", inc)) > 0, "%s: includedir %s", dirs[i], inc);
    ck_assert_msg(mt_file_size(mt_strf("%s/libmyelin.so", lib)) > 0, "%s: libdir %s", dirs[i], lib);
    ck_assert_msg(mt_file_size(mt_strf("%s/gen_source.so", plug)) > 0, "%s: plugindir %s", dirs[i], plug);
    ck_assert_msg(mt_file_size(mt_strf("%s/runtime/include/myelin/plugin.h", src)) > 0, "%s", src);
    free(inc);
    free(lib);
    free(plug);
  }
}
END_TEST

START_TEST(zscore_example_out_of_tree) {
  install_prefix();
  char *w = mt_tmpdir(), *out;
  const char *src = mt_env("MYELIN_SOURCE_DIR", "..");
  int rc = mt_run(mt_strf("env -u MYELIN_PLUGIN_PATH PKG_CONFIG_PATH=%s/lib/pkgconfig %s cmake -S "
                          "%s/examples/zscore_plugin -B %s/zb && cmake --build %s/zb",
                          prefix, sdk_env(), src, w, w),
                  &out);
  ck_assert_msg(rc == 0, "example build failed:\n%s", out);
  free(out);
  rc = mt_run(mt_strf("cd %s && OUT=%s MYELIN_PLUGIN_PATH=%s/zb %s/bin/myelin run %s/examples/zscore_plugin/zscore.yaml --quiet",
                      w, w, w, prefix, src),
              &out);
  ck_assert_msg(rc == 0, "pipeline failed:\n%s", out);
  free(out);
  /* check one z-score by hand: element 0 of message k is (k + 0) & 0xff;
   * with window 10, message 20 sees values 11..20: mean 15.5, var 8.25 */
  uint8_t *buf;
  size_t len;
  char err[256];
  FILE *f = fopen(mt_strf("%s/zscore.mpk", w), "rb");
  ck_assert_ptr_nonnull(f);
  buf = malloc(1 << 20);
  len = fread(buf, 1, 1 << 20, f);
  fclose(f);
  size_t off = 0, k = 0, used;
  float z20 = 0;
  while (off < len) {
    myelin_msg *m;
    ck_assert_int_eq(myelin_msg_decode(buf + off, len - off, 0, &m, &used, err, sizeof err), 0);
    if (k == 20) {
      myelin_tensor t;
      ck_assert_int_eq(myelin_msg_tensor(m, "data", &t), 0);
      ck_assert_int_eq(t.dtype, MYELIN_F4);
      z20 = ((const float *)t.data)[0];
    }
    myelin_msg_unref(m);
    off += used;
    k++;
  }
  free(buf);
  ck_assert_uint_eq(k, 200);
  ck_assert_double_eq_tol(z20, (20 - 15.5) / 2.8722813232690143, 1e-5);
}
END_TEST

/* `myelin new-plugin` into a --dir that does not exist yet; the scaffold
 * builds (-Werror) and passes its test with no PKG_CONFIG_PATH: its
 * CMakeLists.txt knows the prefix of the myelin that made it. */
START_TEST(new_plugin_scaffold_builds_and_passes) {
  install_prefix();
  char *w = mt_tmpdir(), *out;
  int rc = mt_run(
      mt_strf("env -u PKG_CONFIG_PATH %s/bin/myelin new-plugin my_gain --dir %s/new/sub", prefix, w), &out);
  ck_assert_msg(rc == 0, "%s", out);
  ck_assert_msg(!strstr(out, "warning"), "%s", out);
  free(out);
  char *c = NULL;
  ck_assert_int_eq(mt_run(mt_strf("cat %s/new/sub/my_gain/my_gain.c", w), &c), 0);
  ck_assert_msg(!strstr(c, "? 0 : 0"), "the template still has '== MYELIN_ESTOP ? 0 : 0'");
  free(c);
  rc = mt_run(mt_strf("cd %s/new/sub/my_gain && env -u PKG_CONFIG_PATH %s cmake -S . -B build && cmake "
                      "--build build && cd build && ctest --output-on-failure",
                      w, sdk_env()),
              &out);
  ck_assert_msg(rc == 0, "scaffold build/test failed:\n%s", out);
  ck_assert_ptr_nonnull(strstr(out, "100% tests passed"));
  free(out);
  rc = mt_run(mt_strf("MYELIN_PLUGIN_PATH=%s/new/sub/my_gain/build %s/bin/myelin inspect my_gain", w, prefix),
              &out);
  ck_assert_msg(rc == 0 && strstr(out, "gain"), "%s", out);
  free(out);
  /* a second scaffold with the same name refuses to overwrite */
  rc = mt_run(mt_strf("%s/bin/myelin new-plugin my_gain --dir %s/new/sub", prefix, w), NULL);
  ck_assert_int_eq(rc, 2);
  rc = mt_run(mt_strf("%s/bin/myelin new-plugin Bad-Name --dir %s", prefix, w), NULL);
  ck_assert_int_eq(rc, 2);
  /* the name of an installed plugin: scaffolded, with a warning naming it */
  rc = mt_run(mt_strf("env -u MYELIN_PLUGIN_PATH %s/bin/myelin new-plugin gen_source --dir %s", prefix, w),
              &out);
  ck_assert_msg(rc == 0, "%s", out);
  ck_assert_msg(strstr(out, "warning") && strstr(out, mt_strf("%s/lib/myelin/plugins/gen_source.so", prefix)),
                "no shadowing warning:\n%s", out);
  free(out);
}
END_TEST

int main(void) {
  Suite *s = suite_create("plugin_sdk");
  TCase *tc = tcase_create("sdk");
  tcase_set_timeout(tc, 900);
  tcase_add_test(tc, installed_cli_finds_plugins);
  tcase_add_test(tc, pkg_config_compiles_a_plugin);
  tcase_add_test(tc, build_tree_pkg_config);
  tcase_add_test(tc, zscore_example_out_of_tree);
  tcase_add_test(tc, new_plugin_scaffold_builds_and_passes);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_set_fork_status(sr, CK_NOFORK); /* one install shared by the tests */
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
