/*
 * The `myelin` command line as a user meets it: every command's --help and
 * -h, unknown options refused with exit 2, `myelin --help` naming commands,
 * environment variables and exit codes, and `myelin plugins --json`.
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
  ck_assert_msg(strstr(out, "gen_source.so\", \"abi\": ["), "%s", out);
  free(out);
  if (mt_python_has("json"))
    ck_assert_int_eq(
        run_cli("plugins --json 2>/dev/null | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); "
                "g=[p for p in d if p[\"name\"]==\"gen_source\"]; "
                "assert len(g)>=1 and g[0][\"path\"].endswith(\"/gen_source.so\"), g'",
                NULL),
        0);
  ck_assert_int_eq(run_cli("plugins extra", &out), 2);
  ck_assert_msg(strstr(out, "unexpected argument 'extra'"), "%s", out);
  free(out);
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
  suite_add_tcase(s, tc);
  return mt_run_suite(s);
}
