/*
 * The `myelin` command line as a user meets it: every command's --help and
 * -h, unknown options refused with exit 2, `myelin --help` naming commands,
 * environment variables and exit codes; `myelin plugins` (and --json) showing
 * each plugin's file, warning about shadowed duplicates and misnamed files.
 */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static const char *bin(void) { return mt_env("MYELIN_BIN", "myelin"); }

static int run_cli(const char *args, char **out) { return mt_run(mt_strf("%s %s", bin(), args), out); }

static const char *const commands[] = {"run", "validate", "plugins", "inspect", "cat", "new-plugin"};
#define N_COMMANDS (sizeof commands / sizeof *commands)

START_TEST(every_command_has_help) {
  const char *cmd = commands[_i];
  const char *flags[] = {"--help", "-h"};
  for (size_t f = 0; f < 2; f++) {
    char *out;
    /* after other arguments too: `myelin run FILE --help` */
    const char *args[] = {mt_strf("%s %s", cmd, flags[f]), mt_strf("%s x.yaml %s", cmd, flags[f])};
    for (size_t a = 0; a < 2; a++) {
      ck_assert_msg(run_cli(args[a], &out) == 0, "myelin %s: not exit 0:\n%s", args[a], out);
      ck_assert_msg(strstr(out, mt_strf("usage: myelin %s ", cmd)), "myelin %s:\n%s", args[a], out);
      ck_assert_msg(strstr(out, "options:") && strstr(out, "--help"), "myelin %s:\n%s", args[a], out);
      ck_assert_msg(!strstr(out, "cannot open") && !strstr(out, "No such file"), "myelin %s:\n%s", args[a],
                    out);
      free(out);
    }
  }
  /* each command's own options are listed */
  char *out;
  ck_assert_int_eq(run_cli(mt_strf("%s --help", cmd), &out), 0);
  if (!strcmp(cmd, "run"))
    ck_assert_msg(strstr(out, "--set ID.PARAM=VALUE") && strstr(out, "--stats") && strstr(out, "--quiet") &&
                      strstr(out, "--check-messages"),
                  "%s", out);
  if (!strcmp(cmd, "cat") || !strcmp(cmd, "inspect") || !strcmp(cmd, "plugins"))
    ck_assert_msg(strstr(out, "--json"), "%s", out);
  if (!strcmp(cmd, "new-plugin")) ck_assert_msg(strstr(out, "--dir DIR"), "%s", out);
  free(out);
  /* `myelin help CMD` says the same */
  char *out2;
  ck_assert_int_eq(run_cli(mt_strf("%s --help", cmd), &out), 0);
  ck_assert_int_eq(run_cli(mt_strf("help %s", cmd), &out2), 0);
  ck_assert_str_eq(out, out2);
  free(out);
  free(out2);
}
END_TEST

START_TEST(unknown_options_refused) {
  const char *cmd = commands[_i];
  char *out;
  const char *args = mt_strf("%s --foo", cmd);
  ck_assert_msg(run_cli(args, &out) == 2, "myelin %s: not exit 2:\n%s", args, out);
  ck_assert_msg(strstr(out, mt_strf("myelin %s: unknown option '--foo'", cmd)) &&
                    strstr(out, mt_strf("usage: myelin %s ", cmd)),
                "myelin %s:\n%s", args, out);
  free(out);
}
END_TEST

START_TEST(top_level_help) {
  char *out;
  ck_assert_int_eq(run_cli("--help", &out), 0);
  for (size_t i = 0; i < N_COMMANDS; i++)
    ck_assert_msg(strstr(out, mt_strf("\n  %s ", commands[i])), "no line for %s in:\n%s", commands[i], out);
  const char *needles[] = {"MYELIN_PLUGIN_PATH",
                           "MYELIN_SCHEMA_DIR",
                           "MYELIN_DEBUG",
                           "exit codes",
                           "\n  0 ",
                           "\n  1 ",
                           "\n  2 ",
                           "\n  130 "};
  for (size_t i = 0; i < sizeof needles / sizeof *needles; i++)
    ck_assert_msg(strstr(out, needles[i]), "missing '%s' in:\n%s", needles[i], out);
  char *out2;
  ck_assert_int_eq(run_cli("-h", &out2), 0);
  ck_assert_str_eq(out, out2);
  free(out);
  free(out2);
  ck_assert_int_eq(run_cli("help frobnicate", &out), 2);
  ck_assert_msg(strstr(out, "unknown command 'frobnicate'"), "%s", out);
  free(out);
  ck_assert_int_eq(run_cli("", &out), 2); /* no command: the help, on stderr */
  ck_assert_msg(strstr(out, "exit codes"), "%s", out);
  free(out);
}
END_TEST

START_TEST(plugins_json) {
  char *out;
  ck_assert_int_eq(run_cli("plugins --json 2>/dev/null", &out), 0);
  ck_assert_msg(out[0] == '[', "%s", out);
  ck_assert_msg(strstr(out, "{\"name\": \"gen_source\", \"version\": \""), "%s", out);
  ck_assert_msg(strstr(out, "/gen_source.so\", \"file_name\": \"gen_source\""), "no gen_source path");
  free(out);
  if (mt_python_or_skip("json", "the JSON parse check"))
    ck_assert_int_eq(
        run_cli("plugins --json 2>/dev/null | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); "
                "g=[p for p in d if p[\"name\"]==\"gen_source\"]; "
                "assert len(g)==1 and g[0][\"path\"].endswith(\"/gen_source.so\"), g'",
                NULL),
        0);
  ck_assert_int_eq(run_cli("plugins extra", &out), 2);
  ck_assert_msg(strstr(out, "unexpected argument 'extra'"), "%s", out);
  free(out);
}
END_TEST

/* Counts the occurrences of needle in s. */
static int count(const char *s, const char *needle) {
  int n = 0;
  for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
    n++;
  return n;
}

START_TEST(plugins_files_and_duplicates) {
  const char *install = mt_env("MYELIN_PLUGIN_PATH", "."); /* the build's plugin folder */
  char *out;
  /* each file once, with its path, even when MYELIN_PLUGIN_PATH names the install folder again */
  ck_assert_int_eq(run_cli(mt_strf("plugins 2>&1 >/dev/null"), &out), 0);
  ck_assert_msg(!strstr(out, "warning"), "%s", out);
  free(out);
  ck_assert_int_eq(run_cli("plugins", &out), 0);
  char *gen = mt_strf("%s/gen_source.so", install);
  ck_assert_msg(count(out, gen) == 1, "want '%s' once in:\n%s", gen, out);
  free(out);
  /* a second gen_source.so later on the path, and a file named unlike its descriptor */
  char *d = mt_tmpdir();
  ck_assert_int_eq(
      mt_run(mt_strf("cp %s/gen_source.so %s/ && cp %s/null_sink.so %s/drop.so", install, d, install, d),
             NULL),
      0);
  char *env = mt_strf("MYELIN_PLUGIN_PATH=%s:%s", install, d);
  ck_assert_int_eq(mt_run(mt_strf("%s %s plugins 2>/dev/null", env, bin()), &out), 0);
  char *shadowed = mt_strf("%s/gen_source.so (shadowed by %s/gen_source.so: not used)", d, install);
  ck_assert_msg(strstr(out, shadowed), "missing '%s' in:\n%s", shadowed, out);
  ck_assert_msg(strstr(out, mt_strf("%s/drop.so", d)), "%s", out);
  free(out);
  ck_assert_int_eq(mt_run(mt_strf("%s %s plugins 2>&1 >/dev/null", env, bin()), &out), 0);
  char *w1 = mt_strf("warning: plugin 'gen_source': %s/gen_source.so (MYELIN_PLUGIN_PATH) is shadowed by "
                     "%s/gen_source.so (the install folder), which is searched first",
                     d, install);
  char *w2 = mt_strf("warning: %s/drop.so: the descriptor names the plugin 'null_sink', not 'drop'", d);
  ck_assert_msg(strstr(out, w1), "missing '%s' in:\n%s", w1, out);
  ck_assert_msg(strstr(out, w2), "missing '%s' in:\n%s", w2, out);
  ck_assert_int_eq(count(out, "warning"), 2);
  free(out);
  /* the loader agrees: the first gen_source.so on the path is the one a pipeline gets */
  ck_assert_int_eq(mt_run(mt_strf("%s %s inspect gen_source", env, bin()), &out), 0);
  ck_assert_msg(strstr(out, mt_strf("file: %s/gen_source.so", install)), "%s", out);
  free(out);
  if (mt_python_or_skip("json", "the JSON parse check"))
    ck_assert_int_eq(
        mt_run(mt_strf("%s %s plugins --json 2>/dev/null | /usr/bin/python3 -c 'import json,sys; "
                       "d=json.load(sys.stdin); g=[p for p in d if p[\"file_name\"]==\"gen_source\"]; "
                       "assert len(g)==2 and g[0][\"shadowed_by\"] is None and "
                       "g[1][\"shadowed_by\"]==g[0][\"path\"], g'",
                       env, bin()),
               NULL),
        0);
}
END_TEST

int main(void) {
  Suite *s = suite_create("runtime_cli");
  TCase *tc = tcase_create("cli");
  tcase_set_timeout(tc, 120);
  tcase_add_loop_test(tc, every_command_has_help, 0, (int)N_COMMANDS);
  tcase_add_loop_test(tc, unknown_options_refused, 0, (int)N_COMMANDS);
  tcase_add_test(tc, top_level_help);
  tcase_add_test(tc, plugins_json);
  tcase_add_test(tc, plugins_files_and_duplicates);
  suite_add_tcase(s, tc);
  return mt_run_suite(s);
}
