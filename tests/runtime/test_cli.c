/*
 * The `myelin` command line as a user meets it: every command's --help and
 * -h, unknown options refused with exit 2, `myelin --help` naming commands,
 * environment variables and exit codes; `myelin plugins` (and --json) showing
 * each plugin's file, warning about shadowed duplicates and misnamed files;
 * ports as GStreamer users expect them (list form for one required input, a
 * bare id meaning the first output), errors that suggest the closest name,
 * and one error per root cause; `validate` warning about input files that
 * match nothing yet.
 */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static const char *bin(void) { return mt_env("MYELIN_BIN", "myelin"); }

static int run_cli(const char *args, char **out) { return mt_run(mt_strf("%s %s", bin(), args), out); }

static const char *const commands[] = {"run", "validate", "plugins", "inspect", "cat", "graph", "plot", "new-plugin"};
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
  if (!strcmp(cmd, "plot"))
    ck_assert_msg(strstr(out, "-o, --output OUT") && strstr(out, "--type T") &&
                      strstr(out, "--set PARAM=VALUE"),
                  "%s", out);
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
  ck_assert_int_eq(run_cli("valdate x.yaml", &out), 2);
  ck_assert_msg(strstr(out, "unknown command 'valdate'; did you mean 'validate'?"), "%s", out);
  free(out);
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
  /* a folder on the path that is not there */
  ck_assert_int_eq(mt_run(mt_strf("MYELIN_PLUGIN_PATH=%s/nope %s plugins 2>&1 >/dev/null", d, bin()), &out),
                   0);
  ck_assert_msg(strstr(out, mt_strf("warning: MYELIN_PLUGIN_PATH folder %s/nope: No such file", d)), "%s",
                out);
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

/* Writes text to DIR/NAME and runs `myelin validate` on it (plus extra args). */
static int validate(const char *dir, const char *name, const char *text, const char *extra, char **out,
                    char **path) {
  *path = mt_strf("%s/%s", dir, name);
  mt_write(*path, text);
  return run_cli(mt_strf("validate %s %s", *path, extra), out);
}

/* Asserts that out holds exactly one error, at FILE:LINE:COL, containing each needle. */
static void one_error(const char *out, const char *file, int line, int col, const char *const *needles) {
  ck_assert_msg(count(out, "error:") == 1 && strstr(out, "\n1 error\n"), "want exactly one error in:\n%s",
                out);
  const char *e = strstr(out, mt_strf("%s:%d:%d: error: ", file, line, col));
  ck_assert_msg(e != NULL, "want the error at %s:%d:%d in:\n%s", file, line, col, out);
  for (; *needles; needles++)
    ck_assert_msg(strstr(e, *needles), "missing \"%s\" in:\n%s", *needles, out);
}

START_TEST(ports_list_form_and_first_output) {
  char *d = mt_tmpdir(), *out, *f;
  /* one required input port takes the list form (biograd's train, loihi_sim's spikes, loihi_export's
   * network, info_content's run); a bare id of a stage with several outputs is its first output */
  int rc = validate(d, "ports.yaml",
                    "name: ports\nstages:\n"
                    "  - {id: data, plugin: gen_source}\n"
                    "  - {id: enc, plugin: spike_encoder, inputs: [data]}\n"
                    "  - {id: learn, plugin: biograd, inputs: [enc]}\n"
                    "  - {id: sim, plugin: loihi_sim, inputs: [enc], params: {net: x.net}}\n"
                    "  - {id: exp, plugin: loihi_export, inputs: [learn], params: {path: out/x}}\n"
                    "  - {id: m, plugin: null_sink, inputs: [sim]}\n"
                    "  - {id: m2, plugin: null_sink, inputs: [learn.metrics, exp]}\n"
                    "  - {id: bold, plugin: fmri_source, params: {path: x.nii.gz}}\n"
                    "  - {id: info, plugin: info_content, inputs: [bold], params: {energy: none}}\n"
                    "  - {id: m3, plugin: null_sink, inputs: [info]}\n",
                    "", &out, &f);
  ck_assert_msg(rc == 0, "%s", out);
  free(out);
  /* the bare id really is the first port: learn -> exp carries `network`, so a sink taking
   * only `metrics` from it is a kind mismatch naming learn.network */
  rc = validate(d, "first.yaml",
                "name: first\nstages:\n"
                "  - {id: data, plugin: gen_source}\n"
                "  - {id: enc, plugin: spike_encoder, inputs: [data]}\n"
                "  - {id: learn, plugin: biograd, inputs: [enc]}\n"
                "  - {id: sim, plugin: loihi_sim, inputs: {spikes: [enc], network: [learn]}}\n",
                "", &out, &f);
  ck_assert_msg(rc == 0, "%s", out);
  free(out);
  /* two required ports: the list form is still an error, naming the ports */
  rc = validate(d, "two.yaml",
                "name: two\nstages:\n"
                "  - {id: data, plugin: gen_source}\n"
                "  - {id: e, plugin: encoding, inputs: [data]}\n",
                "", &out, &f);
  ck_assert_int_eq(rc, 2);
  one_error(out, f, 4, 39,
            (const char *const[]){"plugin 'encoding' has 2 input ports (features, brain), 2 of them required",
                                  "{features: [...], brain: [...]}", NULL});
  free(out);
}
END_TEST

START_TEST(errors_suggest_names) {
  char *d = mt_tmpdir(), *out, *f;
  ck_assert_int_eq(validate(d, "plugin.yaml",
                            "name: x\nstages:\n"
                            "  - {id: gen, plugin: gen_sorce}\n",
                            "", &out, &f),
                   2);
  one_error(out, f, 3, 23,
            (const char *const[]){"unknown plugin 'gen_sorce'; did you mean 'gen_source'?", NULL});
  free(out);
  ck_assert_int_eq(validate(d, "stage.yaml",
                            "name: x\nstages:\n"
                            "  - {id: gen, plugin: gen_source}\n"
                            "  - {id: s, plugin: null_sink, inputs: [gne]}\n",
                            "", &out, &f),
                   2);
  one_error(out, f, 4, 41,
            (const char *const[]){"input 'gne' names no stage of this pipeline; did you mean 'gen'?", NULL});
  free(out);
  ck_assert_int_eq(validate(d, "outport.yaml",
                            "name: x\nstages:\n"
                            "  - {id: gen, plugin: gen_source}\n"
                            "  - {id: enc, plugin: spike_encoder, inputs: [gen]}\n"
                            "  - {id: learn, plugin: biograd, inputs: [enc]}\n"
                            "  - {id: s, plugin: null_sink, inputs: [learn.metric]}\n",
                            "", &out, &f),
                   2);
  one_error(
      out, f, 6, 41,
      (const char *const[]){"input 'learn.metric': stage 'learn' (biograd) has no output port 'metric'; "
                            "did you mean 'metrics'? (its outputs: network, metrics, predictions)",
                            NULL});
  free(out);
  ck_assert_int_eq(validate(d, "inport.yaml",
                            "name: x\nstages:\n"
                            "  - {id: gen, plugin: gen_source}\n"
                            "  - {id: enc, plugin: spike_encoder, inputs: [gen]}\n"
                            "  - {id: learn, plugin: biograd, inputs: {trian: [enc]}}\n",
                            "", &out, &f),
                   2);
  one_error(
      out, f, 5, 43,
      (const char *const[]){"plugin 'biograd' has no input port 'trian'; did you mean 'train'? (its inputs: "
                            "train, test)",
                            NULL});
  free(out);
  ck_assert_int_eq(validate(d, "key.yaml",
                            "name: x\nstages:\n"
                            "  - {id: gen, plugin: gen_source}\n"
                            "  - {id: s, plugin: null_sink, input: [gen]}\n",
                            "", &out, &f),
                   2);
  one_error(out, f, 4, 32, (const char *const[]){"unknown stage key 'input'; did you mean 'inputs'?", NULL});
  free(out);
  ck_assert_int_eq(validate(d, "set.yaml",
                            "name: x\nstages:\n"
                            "  - {id: gen, plugin: gen_source}\n"
                            "  - {id: s, plugin: null_sink, inputs: [gen]}\n",
                            "--set gne.count=3", &out, &f),
                   2);
  ck_assert_msg(strstr(out, "error: no stage 'gne' in ") && strstr(out, "did you mean 'gen'?"), "%s", out);
  free(out);
}
END_TEST

START_TEST(one_cause_one_error) {
  char *d = mt_tmpdir(), *out, *f;
  /* an unknown plugin: nothing about the stages fed by it */
  ck_assert_int_eq(validate(d, "plugin.yaml",
                            "name: x\nstages:\n"
                            "  - {id: gen, plugin: no_such_source}\n"
                            "  - {id: p, plugin: passthrough, inputs: [gen]}\n"
                            "  - {id: p2, plugin: passthrough, inputs: [gen.out]}\n"
                            "  - {id: s, plugin: null_sink, inputs: [p, p2]}\n",
                            "", &out, &f),
                   2);
  one_error(out, f, 3, 23, (const char *const[]){"unknown plugin 'no_such_source'", NULL});
  free(out);
  /* a misspelt stage id: not also "required input is not connected", nor the plugin's own check */
  ck_assert_int_eq(validate(d, "id.yaml",
                            "name: x\nstages:\n"
                            "  - {id: gen, plugin: gen_source}\n"
                            "  - {id: enc, plugin: spike_encoder, inputs: [gen]}\n"
                            "  - {id: learn, plugin: biograd, inputs: {train: [ecn]}}\n"
                            "  - {id: s, plugin: null_sink, inputs: [learn.metrics]}\n",
                            "", &out, &f),
                   2);
  one_error(out, f, 5, 51, (const char *const[]){"input 'ecn' names no stage", NULL});
  free(out);
  /* an input port left open: the runtime says so once (biograd's validate would say it again) */
  ck_assert_int_eq(validate(d, "open.yaml",
                            "name: x\nstages:\n"
                            "  - {id: learn, plugin: biograd}\n"
                            "  - {id: s, plugin: null_sink, inputs: [learn]}\n",
                            "", &out, &f),
                   2);
  one_error(out, f, 3, 5, (const char *const[]){"required input 'train' is not connected", NULL});
  free(out);
  /* a cycle: one error naming its stages, none for the stage downstream of it */
  ck_assert_int_eq(validate(d, "cycle.yaml",
                            "name: x\nstages:\n"
                            "  - {id: a, plugin: passthrough, inputs: [c]}\n"
                            "  - {id: b, plugin: passthrough, inputs: [a]}\n"
                            "  - {id: c, plugin: passthrough, inputs: [b]}\n"
                            "  - {id: s, plugin: null_sink, inputs: [c]}\n",
                            "", &out, &f),
                   2);
  one_error(out, f, 3, 5,
            (const char *const[]){"stage 'a' is part of a cycle of inputs: a -> b -> c -> a", NULL});
  free(out);
}
END_TEST

START_TEST(validate_warns_missing_inputs) {
  char *d = mt_tmpdir(), *out;
  mt_write(mt_strf("%s/here.mpk", d), ""); /* next to the pipeline file */
  ck_assert_int_eq(mt_run(mt_strf("mkdir -p %s/sub-01 && touch %s/sub-01/bold.nii.gz", d, d), NULL), 0);
  char *f = mt_strf("%s/inputs.yaml", d);
  mt_write(f, "name: inputs\nstages:\n"
              "  - {id: src, plugin: file_source, params: {path: missing.mpk}}\n"
              "  - {id: near, plugin: file_source, params: {path: here.mpk}}\n"
              "  - {id: data, plugin: dataset, params: {path: /nonexistent/x.npy}}\n"
              "  - {id: bold, plugin: fmri_source, params: {path: \"sub-*/bold.nii.gz\"}}\n"
              "  - {id: none, plugin: fmri_source, params: {path: \"sub-*/nothing.nii.gz\"}}\n"
              "  - {id: rec, plugin: file_sink, inputs: [src], params: {path: new/dir/out.mpk}}\n");
  /* from another folder: relative inputs are looked up there, then next to the file */
  const char *cmd = mt_strf("cd / && %s validate %s", bin(), f);
  ck_assert_int_eq(mt_run(cmd, &out), 0);
  ck_assert_msg(strstr(out, mt_strf("%s: ok (6 stages, 3 warnings)", f)), "%s", out);
  const char *want[] = {mt_strf("%s:3:51: warning: stage 'src' (file_source): param 'path': input "
                                "'missing.mpk' matches no file yet "
                                "(looked in the working directory and in %s)",
                                f, d),
                        mt_strf("%s:5:48: warning: stage 'data' (dataset): param 'path': input "
                                "'/nonexistent/x.npy' matches no file yet\n",
                                f),
                        mt_strf("%s:7:52: warning: stage 'none' (fmri_source): param 'path': input "
                                "'sub-*/nothing.nii.gz' matches no "
                                "file yet",
                                f)};
  for (size_t i = 0; i < 3; i++)
    ck_assert_msg(strstr(out, want[i]), "missing '%s' in:\n%s", want[i], out);
  ck_assert_int_eq(count(out, "warning:"), 3); /* not here.mpk, the matching glob, nor the output path */
  ck_assert_msg(!strstr(out, "error"), "%s", out);
  free(out);
  /* a --set value has no node of its own: the warning points at the stage */
  ck_assert_int_eq(mt_run(mt_strf("%s --set near.path=gone.mpk", cmd), &out), 0);
  ck_assert_msg(
      strstr(out, mt_strf("%s:4:5: warning: stage 'near' (file_source): param 'path' (from --set): input "
                          "'gone.mpk' matches no file yet",
                          f)),
      "%s", out);
  free(out);
  /* a plugin_path copy of an installed plugin is not the one loaded: validate says so */
  ck_assert_int_eq(mt_run(mt_strf("cp %s/passthrough.so %s/", mt_env("MYELIN_PLUGIN_PATH", "."), d), NULL),
                   0);
  char *g = mt_strf("%s/shadow.yaml", d);
  mt_write(g, "name: shadow\nplugin_path: [.]\nstages:\n"
              "  - {id: gen, plugin: gen_source}\n"
              "  - {id: p, plugin: passthrough, inputs: [gen]}\n"
              "  - {id: p2, plugin: passthrough, inputs: [p]}\n");
  ck_assert_int_eq(run_cli(mt_strf("validate %s", g), &out), 0);
  char *w = strstr(out, mt_strf("%s:5:5: warning: stage 'p': plugin 'passthrough' is loaded from ", g));
  ck_assert_msg(w && strstr(w, mt_strf("; %s/./passthrough.so is not used", d)), "%s", out);
  ck_assert_int_eq(count(out, "warning:"), 1); /* once per plugin, not per stage */
  free(out);
  /* inspect shows which params are inputs */
  ck_assert_int_eq(run_cli("inspect file_source --json", &out), 0);
  ck_assert_msg(strstr(out, "{\"name\": \"path\", \"type\": \"input path\""), "%s", out);
  free(out);
  ck_assert_int_eq(run_cli("inspect file_sink --json", &out), 0);
  ck_assert_msg(strstr(out, "{\"name\": \"path\", \"type\": \"path\""), "%s", out);
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
  tcase_add_test(tc, plugins_files_and_duplicates);
  tcase_add_test(tc, ports_list_form_and_first_output);
  tcase_add_test(tc, errors_suggest_names);
  tcase_add_test(tc, one_cause_one_error);
  tcase_add_test(tc, validate_warns_missing_inputs);
  suite_add_tcase(s, tc);
  return mt_run_suite(s);
}
