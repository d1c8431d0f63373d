/*
 * End-to-end tests: real pipeline files through the `myelin` CLI.
 * record → replay is byte-identical; malformed files report FILE:LINE:COL;
 * a plugin with a wrong ABI is refused; SIGINT drains and leaves a complete
 * file holding every message the sink accepted (exit 130); a slow sink
 * keeps queues within capacity; corrupt input is an error naming the byte
 * offset (the sink discards its file); a failing stage exits 1 naming the
 * stage; unwritable output fails early. file_sink puts large tensor payloads
 * on multiples of 64 bytes of the file, where file_source (mapping it) reads
 * them in place.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "myelin/io.h"
#include "myelin/msg.h"
#include "myelin/plugin.h"
#include "testutil.h"

static const char *bin(void) { return mt_env("MYELIN_BIN", "myelin"); }

static char *write_pipeline(const char *dir, const char *name, const char *text) {
  char *path = mt_strf("%s/%s", dir, name);
  mt_write(path, text);
  return path;
}

static int run_cli(const char *args, char **out) {
  char *cmd = mt_strf("%s %s", bin(), args);
  int rc = mt_run(cmd, out);
  free(cmd);
  return rc;
}

static long count_lines(const char *s) {
  long n = 0;
  for (; *s; s++) n += *s == '\n';
  return n;
}

START_TEST(record_replay_identical) {
  char *d = mt_tmpdir();
  char *rec = write_pipeline(d, "rec.yaml",
                             "name: rec\nstages:\n"
                             "  - {id: gen, plugin: gen_source, params: {count: 3000, bytes: 300, fill: true}}\n"
                             "  - {id: sink, plugin: file_sink, inputs: [gen], params: {path: \"${OUT}/a.mpk\"}}\n");
  char *rep = write_pipeline(d, "rep.yaml",
                             "name: rep\nstages:\n"
                             "  - {id: src, plugin: file_source, params: {path: \"${OUT}/a.mpk\"}}\n"
                             "  - {id: p, plugin: passthrough, inputs: [src]}\n"
                             "  - {id: sink, plugin: file_sink, inputs: [p], params: {path: \"${OUT}/b.mpk\"}}\n");
  setenv("OUT", d, 1);
  /* messages larger than the readers' 1 MiB buffers, at unaligned offsets */
  char *big = write_pipeline(d, "big.yaml",
                             "name: big\nstages:\n"
                             "  - {id: gen, plugin: gen_source, params: {count: 9, bytes: 700000}}\n"
                             "  - {id: sink, plugin: file_sink, inputs: [gen], params: {path: \"${OUT}/big.mpk\"}}\n");
  char *bigrep = write_pipeline(d, "bigrep.yaml",
                                "name: bigrep\nstages:\n"
                                "  - {id: src, plugin: file_source, params: {path: \"${OUT}/big.mpk\"}}\n"
                                "  - {id: sink, plugin: file_sink, inputs: [src], params: {path: \"${OUT}/big2.mpk\"}}\n");
  ck_assert_int_eq(run_cli(mt_strf("run %s --quiet", big), NULL), 0);
  ck_assert_int_eq(run_cli(mt_strf("run %s --quiet", bigrep), NULL), 0);
  ck_assert_int_eq(mt_run(mt_strf("cmp %s/big.mpk %s/big2.mpk", d, d), NULL), 0);
  char *bigcat;
  ck_assert_int_eq(run_cli(mt_strf("cat %s/big2.mpk", d), &bigcat), 0);
  ck_assert_int_eq(count_lines(bigcat), 9);
  free(bigcat);
  char *out;
  char *a = mt_strf("run %s --quiet", rec);
  ck_assert_int_eq(run_cli(a, &out), 0);
  free(out);
  char *b = mt_strf("run %s --quiet", rep);
  ck_assert_int_eq(run_cli(b, &out), 0);
  free(out);
  char *cmp = mt_strf("cmp %s/a.mpk %s/b.mpk", d, d);
  ck_assert_int_eq(mt_run(cmp, NULL), 0);
  ck_assert_int_gt(mt_file_size(mt_strf("%s/a.mpk", d)), 3000 * 300);
  char *cat = mt_strf("cat %s/b.mpk --json", d);
  ck_assert_int_eq(run_cli(cat, &out), 0);
  ck_assert_int_eq(count_lines(out), 3000);
  ck_assert_ptr_nonnull(strstr(out, "\"data\": {\"dtype\": \"|u1\", \"shape\": [300]}"));
  free(out);
}
END_TEST

/* Large and small messages interleaved (two sources fan into one sink, so
 * offsets drift by odd amounts): every payload of 4 KiB or more starts on a
 * multiple of 64 bytes of the file (issue 16 item 10; before, file_sink
 * wrote the builder's message-relative padding at whatever offset the
 * message landed on). Replayed and recorded again: the same bytes; --stats
 * counts the bytes written. */
START_TEST(stream_file_payloads_aligned) {
  char *d = mt_tmpdir();
  char *rec = write_pipeline(
      d, "rec.yaml",
      mt_strf("name: rec\nstages:\n"
              "  - {id: small, plugin: gen_source, params: {count: 300, bytes: 37}}\n"
              "  - {id: big, plugin: gen_source, params: {count: 40, bytes: 100003, fill: true}}\n"
              "  - {id: mid, plugin: gen_source, params: {count: 60, bytes: 5001, fill: true}}\n"
              "  - {id: sink, plugin: file_sink, inputs: [small, big, mid], params: {path: %s/a.mpk}}\n",
              d));
  char *stats;
  ck_assert_int_eq(run_cli(mt_strf("run %s --stats", rec), &stats), 0);
  long size = mt_file_size(mt_strf("%s/a.mpk", d));
  ck_assert_msg(strstr(stats, mt_strf("sink.bytes = %ld", size)), "%ld\n%s", size, stats);
  free(stats);
  FILE *f = fopen(mt_strf("%s/a.mpk", d), "rb");
  ck_assert_ptr_nonnull(f);
  myelin_reader *r = myelin_reader_new(f, 0);
  char err[256];
  myelin_msg *m;
  int n = 0, large = 0;
  for (;;) {
    uint64_t at = myelin_reader_offset(r);
    int rc = myelin_reader_next(r, &m, err, sizeof err);
    ck_assert_int_ge(rc, 0);
    if (rc == 0) break;
    n++;
    myelin_tensor t;
    ck_assert_int_eq(myelin_msg_tensor(m, "data", &t), 0);
    const uint8_t *bytes = myelin_msg_bytes(m, NULL);
    if (t.nbytes >= 4096) {
      large++;
      uint64_t off = at + (uint64_t)((const uint8_t *)t.data - bytes);
      ck_assert_msg(off % 64 == 0, "message %d: payload of %zu bytes at file offset %llu", n, t.nbytes,
                    (unsigned long long)off);
      ck_assert_uint_eq((uintptr_t)t.data % 64, 0);
      uint64_t seq;
      ck_assert_int_eq(myelin_msg_uint(m, "seq", &seq), 0);
      ck_assert_uint_eq(((const uint8_t *)t.data)[t.nbytes - 1], (uint8_t)(seq + t.nbytes - 1));
    }
    myelin_msg_unref(m);
  }
  myelin_reader_free(r);
  fclose(f);
  ck_assert_int_eq(n, 400);
  ck_assert_int_eq(large, 100);
  char *rep =
      write_pipeline(d, "rep.yaml",
                     mt_strf("name: rep\nstages:\n"
                             "  - {id: src, plugin: file_source, params: {path: %s/a.mpk}}\n"
                             "  - {id: sink, plugin: file_sink, inputs: [src], params: {path: %s/b.mpk}}\n",
                             d, d));
  ck_assert_int_eq(run_cli(mt_strf("run %s --quiet", rep), NULL), 0);
  ck_assert_int_eq(mt_run(mt_strf("cmp %s/a.mpk %s/b.mpk", d, d), NULL), 0);
}
END_TEST

START_TEST(malformed_pipeline_positions) {
  char *d = mt_tmpdir();
  char *f = write_pipeline(d, "bad.yaml",
                           "name: bad\n"
                           "stages:\n"
                           "  - id: gen\n"
                           "    plugin: gen_source\n"
                           "    params: {count: 10, byts: 3}\n"
                           "  - id: s\n"
                           "    plugin: null_sink\n"
                           "    inputs: [nothere]\n"
                           "  - id: x\n"
                           "    plugin: no_such_plugin\n");
  char *out;
  char *a = mt_strf("validate %s", f);
  ck_assert_int_eq(run_cli(a, &out), 2);
  char *e1 = mt_strf("%s:5:25: error: unknown param 'byts' for plugin 'gen_source'; did you mean 'bytes'?", f);
  char *e2 = mt_strf("%s:8:14: error: input 'nothere' names no stage", f);
  char *e3 = mt_strf("%s:10:13: error: unknown plugin 'no_such_plugin'", f);
  ck_assert_msg(strstr(out, e1), "missing '%s' in:\n%s", e1, out);
  ck_assert_msg(strstr(out, e2), "missing '%s' in:\n%s", e2, out);
  ck_assert_msg(strstr(out, e3), "missing '%s' in:\n%s", e3, out);
  free(out);
  /* YAML syntax error */
  char *g = write_pipeline(d, "syntax.yaml", "name: x\nstages:\n  - {id: a, plugin: gen_source\n  - b\n");
  a = mt_strf("validate %s", g);
  ck_assert_int_eq(run_cli(a, &out), 2);
  ck_assert_msg(strstr(out, mt_strf("%s:5:1: error: YAML syntax", g)) && strstr(out, "started at line 3"), "%s", out);
  ck_assert_ptr_nonnull(strstr(out, "YAML syntax"));
  free(out);
  /* kind mismatch and a cycle */
  char *k = write_pipeline(d, "cycle.yaml",
                           "name: c\nstages:\n"
                           "  - {id: p, plugin: passthrough, inputs: [q]}\n"
                           "  - {id: q, plugin: passthrough, inputs: [p]}\n");
  a = mt_strf("validate %s", k);
  ck_assert_int_eq(run_cli(a, &out), 2);
  ck_assert_ptr_nonnull(strstr(out, mt_strf("%s:3:5: error: stage 'p' is part of", k)));
  free(out);
  /* --set errors and overrides */
  char *ok = write_pipeline(d, "ok.yaml",
                            "name: ok\nstages:\n"
                            "  - {id: gen, plugin: gen_source, params: {count: 10}}\n"
                            "  - {id: s, plugin: null_sink, inputs: [gen]}\n");
  a = mt_strf("validate %s --set gen.count=abc", ok);
  ck_assert_int_eq(run_cli(a, &out), 2);
  ck_assert_ptr_nonnull(strstr(out, "--set gen.count=abc"));
  free(out);
  a = mt_strf("run %s --stats --set gen.count=77", ok);
  ck_assert_int_eq(run_cli(a, &out), 0);
  ck_assert_msg(strstr(out, "s.messages = 77"), "%s", out);
  free(out);
}
END_TEST

START_TEST(wrong_abi_refused) {
  char *d = mt_tmpdir();
  const char *tp = mt_env("MYELIN_TEST_PLUGINS", ".");
  char *f = write_pipeline(d, "abi.yaml",
                           mt_strf("name: abi\nplugin_path: [%s]\nstages:\n"
                                   "  - {id: gen, plugin: gen_source}\n"
                                   "  - {id: b, plugin: bad_abi, inputs: [gen]}\n"
                                   "  - {id: s, plugin: null_sink, inputs: [b]}\n",
                                   tp));
  char *out;
  ck_assert_int_eq(run_cli(mt_strf("validate %s", f), &out), 2);
  char *refused = mt_strf("bad_abi.so: plugin ABI 2.0 is not compatible with this myelin (ABI %d.%d)",
                          MYELIN_ABI_MAJOR, MYELIN_ABI_MINOR);
  ck_assert_msg(strstr(out, refused), "%s", out);
  free(out);
  /* a shared object without the entry symbol, and a file that is not one */
  char *g = write_pipeline(d, "noentry.yaml",
                           mt_strf("name: n\nplugin_path: [%s, %s]\nstages:\n"
                                   "  - {id: gen, plugin: gen_source}\n"
                                   "  - {id: a, plugin: no_entry, inputs: [gen]}\n"
                                   "  - {id: b, plugin: junk, inputs: [gen]}\n",
                                   tp, d));
  mt_write(mt_strf("%s/junk.so", d), "this is not an ELF file");
  ck_assert_int_eq(run_cli(mt_strf("validate %s", g), &out), 2);
  ck_assert_msg(strstr(out, "no_entry.so: not a myelin plugin: no 'myelin_plugin_entry' symbol"), "%s", out);
  ck_assert_msg(strstr(out, "junk.so: cannot load plugin"), "%s", out);
  free(out);
}
END_TEST

START_TEST(sigint_drains_and_keeps_file) {
  char *d = mt_tmpdir();
  char *f = write_pipeline(d, "live.yaml",
                           mt_strf("name: live\nstages:\n"
                                   "  - {id: gen, plugin: gen_source, params: {count: 0, bytes: 200, rate: 5000}}\n"
                                   "  - {id: p, plugin: passthrough, inputs: [gen], queue: {capacity: 64}}\n"
                                   "  - {id: sink, plugin: file_sink, inputs: [p], params: {path: %s/live.mpk}}\n",
                                   d));
  char *log = mt_strf("%s/log.txt", d);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    freopen(log, "w", stderr);
    execl(bin(), "myelin", "run", f, "--stats", (char *)NULL);
    _exit(127);
  }
  usleep(700000);
  kill(pid, SIGINT);
  int st;
  waitpid(pid, &st, 0);
  ck_assert(WIFEXITED(st));
  ck_assert_int_eq(WEXITSTATUS(st), 130);
  char *out;
  ck_assert_int_eq(mt_run(mt_strf("cat %s", log), &out), 0);
  char *p = strstr(out, "sink.messages = ");
  ck_assert_msg(p != NULL, "%s", out);
  long accepted = atol(p + strlen("sink.messages = "));
  ck_assert_int_gt(accepted, 100);
  free(out);
  ck_assert_int_eq(run_cli(mt_strf("cat %s/live.mpk", d), &out), 0); /* parses fully */
  ck_assert_int_eq(count_lines(out), accepted);
  free(out);
}
END_TEST

START_TEST(slow_sink_bounded_queue) {
  char *d = mt_tmpdir();
  const char *tp = mt_env("MYELIN_TEST_PLUGINS", ".");
  char *f = write_pipeline(d, "slow.yaml",
                           mt_strf("name: slow\nplugin_path: [%s]\nstages:\n"
                                   "  - {id: gen, plugin: gen_source, params: {count: 3000, bytes: 65536}}\n"
                                   "  - {id: slow, plugin: slow_sink, inputs: [gen], queue: {capacity: 8}, params: {delay_us: 200}}\n"
                                   "  - {id: s, plugin: null_sink, inputs: [slow]}\n",
                                   tp));
  char *out;
  ck_assert_int_eq(run_cli(mt_strf("run %s --stats", f), &out), 0);
  /* the slow stage's row shows its queue high-water mark as N/8 */
  char *row = strstr(out, "\nslow ");
  ck_assert_msg(row != NULL, "%s", out);
  char *q = strstr(row, "/8 ");
  ck_assert_msg(q != NULL, "%s", out);
  long hw = strtol(q - 1, NULL, 10);
  while (q > row && q[-1] >= '0' && q[-1] <= '9') q--;
  hw = strtol(q, NULL, 10);
  ck_assert_int_le(hw, 8);
  ck_assert_int_ge(hw, 1);
  ck_assert_ptr_nonnull(strstr(out, "s.messages = 3000"));
  free(out);
}
END_TEST

START_TEST(bad_input_errors) {
  char *d = mt_tmpdir();
  const char *tp = mt_env("MYELIN_TEST_PLUGINS", ".");
  /* corrupt tail: byte offset and the good prefix named, exit 1, the sink discards */
  char *rec = write_pipeline(d, "rec.yaml",
                             mt_strf("name: rec\nstages:\n"
                                     "  - {id: gen, plugin: gen_source, params: {count: 50, bytes: 100}}\n"
                                     "  - {id: sink, plugin: file_sink, inputs: [gen], params: {path: %s/a.mpk}}\n", d));
  ck_assert_int_eq(run_cli(mt_strf("run %s", rec), NULL), 0);
  long size = mt_file_size(mt_strf("%s/a.mpk", d));
  ck_assert_int_eq(mt_run(mt_strf("head -c %ld %s/a.mpk > %s/t.mpk", size - 40, d, d), NULL), 0);
  char *rep = write_pipeline(d, "rep.yaml",
                             mt_strf("name: rep\nstages:\n"
                                     "  - {id: src, plugin: file_source, params: {path: %s/t.mpk}}\n"
                                     "  - {id: sink, plugin: file_sink, inputs: [src], params: {path: %s/b.mpk}}\n", d, d));
  char *out;
  ck_assert_int_eq(run_cli(mt_strf("run %s", rep), &out), 1);
  ck_assert_msg(strstr(out, "error: stage 'src' (file_source):") &&
                    strstr(out, "truncated message at byte offset") &&
                    strstr(out, "the 49 messages before it were delivered"),
                "%s", out);
  /* an error aborts the run: the sink discards its partial file and says so */
  ck_assert_msg(strstr(out, mt_strf("warning: sink (file_sink): discarded %s/b.mpk", d)), "%s", out);
  free(out);
  ck_assert_int_eq(mt_file_size(mt_strf("%s/b.mpk", d)), -1);
  /* a plugin error stops the run: exit 1 naming the stage id; no final file */
  char *fail = write_pipeline(d, "fail.yaml",
                              mt_strf("name: f\nplugin_path: [%s]\nstages:\n"
                                      "  - {id: gen, plugin: gen_source, params: {count: 100000}}\n"
                                      "  - {id: boom, plugin: fail_after, inputs: [gen], params: {n: 500}}\n"
                                      "  - {id: sink, plugin: file_sink, inputs: [boom], params: {path: %s/f.mpk}}\n", tp, d));
  ck_assert_int_eq(run_cli(mt_strf("run %s", fail), &out), 1);
  ck_assert_msg(strstr(out, "error: stage 'boom' (fail_after): process failed: planted failure at message 500"), "%s", out);
  free(out);
  ck_assert_int_eq(mt_file_size(mt_strf("%s/f.mpk", d)), -1);
  ck_assert_int_ne(mt_run(mt_strf("ls %s | grep -q tmp-", d), NULL), 0); /* temp removed */
  /* a missing input file and an unwritable output folder fail before work */
  char *miss = write_pipeline(d, "miss.yaml",
                              "name: m\nstages:\n"
                              "  - {id: src, plugin: file_source, params: {path: /nonexistent/x.mpk}}\n"
                              "  - {id: sink, plugin: null_sink, inputs: [src]}\n");
  ck_assert_int_eq(run_cli(mt_strf("run %s", miss), &out), 1);
  ck_assert_msg(strstr(out, "/nonexistent/x.mpk: cannot open"), "%s", out);
  free(out);
  char *unw = write_pipeline(d, "unw.yaml",
                             "name: u\nstages:\n"
                             "  - {id: gen, plugin: gen_source}\n"
                             "  - {id: sink, plugin: file_sink, inputs: [gen], params: {path: /proc/nope/x.mpk}}\n");
  ck_assert_int_eq(run_cli(mt_strf("run %s", unw), &out), 1);
  ck_assert_msg(strstr(out, "stage 'sink' (file_sink): init failed") && strstr(out, "/proc/nope"), "%s", out);
  free(out);
  /* garbage stream file */
  mt_write(mt_strf("%s/g.mpk", d), "\xc1\xc1garbage");
  ck_assert_int_eq(run_cli(mt_strf("cat %s/g.mpk", d), &out), 1);
  ck_assert_msg(strstr(out, "at byte offset 0"), "%s", out);
  free(out);
}
END_TEST

START_TEST(check_messages_flags_bad_fields) {
  char *d = mt_tmpdir();
  FILE *f = fopen(mt_strf("%s/m.mpk", d), "wb");
  ck_assert_ptr_nonnull(f);
  myelin_builder *b = myelin_builder_new("tensor");
  int64_t shape[1] = {4};
  float x[4] = {1, 2, 3, 4};
  myelin_build_tensor_copy(b, "data", MYELIN_F4, 1, shape, x);
  myelin_msg *ok = myelin_builder_finish(b);
  b = myelin_builder_new("spikes"); /* no n, steps, dt, unit */
  myelin_build_tensor_copy(b, "step", MYELIN_F4, 1, shape, x);
  myelin_msg *bad = myelin_builder_finish(b);
  size_t len;
  const uint8_t *bytes = myelin_msg_bytes(ok, &len);
  fwrite(bytes, 1, len, f);
  bytes = myelin_msg_bytes(bad, &len);
  fwrite(bytes, 1, len, f);
  fclose(f);
  myelin_msg_unref(ok);
  myelin_msg_unref(bad);
  char *p = write_pipeline(d, "c.yaml",
                           mt_strf("name: c\nstages:\n"
                                   "  - {id: src, plugin: file_source, params: {path: %s/m.mpk}}\n"
                                   "  - {id: s, plugin: null_sink, inputs: [src]}\n", d));
  char *out;
  ck_assert_int_eq(run_cli(mt_strf("run %s", p), &out), 0); /* off by default */
  free(out);
  ck_assert_int_eq(run_cli(mt_strf("run %s --check-messages", p), &out), 1);
  ck_assert_msg(strstr(out, "stage 'src' (file_source)") && strstr(out, "spikes") && strstr(out, "'n'"), "%s", out);
  free(out);
}
END_TEST

START_TEST(cli_plugins_and_inspect) {
  char *out;
  ck_assert_int_eq(run_cli("plugins", &out), 0);
  ck_assert_ptr_nonnull(strstr(out, "gen_source"));
  ck_assert_ptr_nonnull(strstr(out, "file_sink"));
  free(out);
  ck_assert_int_eq(run_cli("inspect gen_source", &out), 0);
  ck_assert_ptr_nonnull(strstr(out, "count"));
  ck_assert_ptr_nonnull(strstr(out, "messages/s"));
  free(out);
  ck_assert_int_eq(run_cli("inspect file_source --json", &out), 0);
  ck_assert_ptr_nonnull(strstr(out, "\"choices\": [\"asap\", \"realtime\"]"));
  free(out);
  if (mt_python_or_skip("json", "the Python reference check")) {
    ck_assert_int_eq(run_cli("inspect file_source --json | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); assert d[\"name\"]==\"file_source\"'", NULL), 0);
  }
  ck_assert_int_eq(run_cli("inspect nope", &out), 2);
  free(out);
  ck_assert_int_eq(run_cli("frobnicate", &out), 2);
  free(out);
}
END_TEST

int main(void) {
  Suite *s = suite_create("runtime_e2e");
  TCase *tc = tcase_create("cli");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, record_replay_identical);
  tcase_add_test(tc, stream_file_payloads_aligned);
  tcase_add_test(tc, malformed_pipeline_positions);
  tcase_add_test(tc, wrong_abi_refused);
  tcase_add_test(tc, sigint_drains_and_keeps_file);
  tcase_add_test(tc, slow_sink_bounded_queue);
  tcase_add_test(tc, bad_input_errors);
  tcase_add_test(tc, check_messages_flags_bad_fields);
  tcase_add_test(tc, cli_plugins_and_inspect);
  suite_add_tcase(s, tc);
  return mt_run_suite(s);
}
