/*
 * Stopping a run through the `myelin` CLI: signals, the sink rule, error
 * order, --stats and --progress.
 *
 * - SIGINT (or SIGTERM) reaches a pipeline whose plugin starts an OpenBLAS pool
 *   when it is loaded (biograd, isc, encoding, info_content): the run drains
 *   and exits 130 with complete outputs, whatever thread the kernel picks.
 * - Two signals at once (a process-group Ctrl-C, `timeout -s INT`) are one
 *   request; a second request more than a second later aborts and says what
 *   it discarded. A request while the pipeline is still being set up runs
 *   nothing and leaves earlier outputs alone.
 * - The sink rule: a clean stop commits every sink's file, an error anywhere
 *   (a failing stage, truncated input, --check-messages) discards them; each
 *   sink says which on stderr.
 * - The root cause of an error is printed first, without "stopping" noise.
 * - --stats `busy` is time spent working; --progress prints plain lines.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "myelin/msg.h"
#include "testutil.h"

static const char *bin(void) { return mt_env("MYELIN_BIN", "myelin"); }

static char *write_pipeline(const char *dir, const char *name, const char *text) {
  char *path = mt_strf("%s/%s", dir, name);
  mt_write(path, text);
  return path;
}

static long count_lines(const char *s) {
  long n = 0;
  for (; *s; s++)
    n += *s == '\n';
  return n;
}

static char *slurp(const char *path) {
  char *out;
  ck_assert_int_eq(mt_run(mt_strf("cat %s", path), &out), 0);
  return out;
}

/* Number of entries of dir whose name contains `part`. */
static int count_named(const char *dir, const char *part) {
  DIR *d = opendir(dir);
  ck_assert_ptr_nonnull(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    n += strstr(e->d_name, part) != NULL;
  closedir(d);
  return n;
}

/* Messages of a stream file (myelin cat parses it to the end), -1 if absent. */
static long stream_count(const char *path) {
  if (mt_file_size(path) < 0) return -1;
  char *out;
  char *cmd = mt_strf("%s cat %s", bin(), path);
  int rc = mt_run(cmd, &out);
  ck_assert_msg(rc == 0, "%s: %s", path, out);
  long n = count_lines(out);
  free(out);
  return n;
}

static void write_stream(const char *path, myelin_msg **msgs, size_t n) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  for (size_t i = 0; i < n; i++) {
    ck_assert_ptr_nonnull(msgs[i]);
    size_t len;
    const uint8_t *b = myelin_msg_bytes(msgs[i], &len);
    ck_assert_uint_eq(fwrite(b, 1, len, f), len);
    myelin_msg_unref(msgs[i]);
  }
  ck_assert_int_eq(fclose(f), 0);
}

/* Starts `myelin run FILE ARGS...` in its own process group, stderr to log,
 * with an OpenBLAS pool of 4 threads even on a 2-core machine. */
static pid_t spawn_run(const char *file, const char *log, const char *arg) {
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    setpgid(0, 0);
    setenv("OPENBLAS_NUM_THREADS", "4", 1);
    if (!freopen(log, "w", stderr) || !freopen("/dev/null", "w", stdout)) _exit(126);
    execl(bin(), "myelin", "run", file, arg, (char *)NULL);
    _exit(127);
  }
  setpgid(pid, pid); /* also here: no race with the child's own call */
  return pid;
}

/* Waits until the run is past init (a sink's temporary file exists in dir),
 * then `settle_ms` more. */
static void wait_running(pid_t pid, const char *dir, int settle_ms) {
  for (int i = 0; i < 3000 && count_named(dir, ".tmp-") == 0; i++) {
    int st;
    ck_assert_msg(waitpid(pid, &st, WNOHANG) == 0, "the run ended before it started");
    usleep(10000);
  }
  ck_assert_msg(count_named(dir, ".tmp-") > 0, "no sink temporary file in %s", dir);
  usleep((useconds_t)settle_ms * 1000);
}

/* Waits for pid (at most 60 s); returns the exit code, or -signal when a
 * signal killed it (not 128+signal: 130 must mean a clean drain). */
static int wait_exit(pid_t pid) {
  int st;
  for (int i = 0; i < 6000; i++) {
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
    usleep(10000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, &st, 0);
  ck_abort_msg("the run did not end within 60 s of the signal");
  return -1;
}

/* ---- 1. SIGINT with an OpenBLAS pool in the process ---------------------- */

/* `volume`/`run` geometry: V voxels along x. */
static void build_geometry(myelin_builder *b, int V) {
  myelin_build_map_begin(b, "geometry");
  myelin_build_array_begin(b, "dims");
  for (int i = 0; i < 3; i++)
    myelin_build_int(b, NULL, i == 0 ? V : 1);
  myelin_build_array_end(b);
  double aff[16] = {2, 0, 0, -90, 0, 2, 0, -126, 0, 0, 2, -72, 0, 0, 0, 1};
  int64_t as[2] = {4, 4};
  myelin_build_tensor_copy(b, "affine", MYELIN_F8, 2, as, aff);
  uint32_t vox[64];
  for (int v = 0; v < V; v++)
    vox[v] = (uint32_t)v;
  int64_t vs[1] = {V};
  myelin_build_tensor_copy(b, "voxels", MYELIN_U4, 1, vs, vox);
  myelin_build_map_end(b);
}

static float wave(int t, int v, int s) {
  return (float)(((t * (2 * v + 3) + 5 * v + 7 * s) % 17) - 8) * 0.125f + 0.01f * (float)((t * s) % 5);
}

static myelin_msg *run_msg(const char *subject, const char *task, int T, int V, int s, double t) {
  float *x = malloc((size_t)T * (size_t)V * sizeof *x);
  for (int i = 0; i < T; i++)
    for (int v = 0; v < V; v++)
      x[i * V + v] = wave(i, v, s);
  myelin_builder *b = myelin_builder_new("run");
  int64_t shape[2] = {T, V};
  myelin_build_tensor_copy(b, "data", MYELIN_F4, 2, shape, x);
  free(x);
  myelin_build_float(b, "tr", 2.0);
  myelin_build_float(b, "t", t);
  myelin_build_str(b, "subject", subject);
  myelin_build_str(b, "task", task);
  myelin_build_int(b, "run", 1);
  build_geometry(b, V);
  return myelin_builder_finish(b);
}

/* The four plugins' pipelines: a realtime replay (~8 s) feeds the plugin,
 * whose outputs go to file_sinks. Returns the pipeline file; *outs lists
 * the output files (NULL-terminated). */
static char *blas_pipeline(const char *plugin, const char *d, const char ***outs) {
  static const char *one[] = {"out.mpk", NULL}, *two[] = {"net.mpk", "metrics.mpk", NULL};
  *outs = one;
  enum { N = 160 };
  myelin_msg *m[N];
  if (!strcmp(plugin, "biograd")) {
    for (int i = 0; i < N; i++) {
      uint32_t step[8], unit[8];
      for (int e = 0; e < 8; e++)
        step[e] = (uint32_t)e, unit[e] = (uint32_t)((i % 2) * 8 + e);
      myelin_builder *b = myelin_builder_new("spikes");
      myelin_build_uint(b, "n", 16);
      myelin_build_uint(b, "steps", 8);
      myelin_build_float(b, "dt", 0.001);
      int64_t shape[1] = {8};
      myelin_build_tensor_copy(b, "step", MYELIN_U4, 1, shape, step);
      myelin_build_tensor_copy(b, "unit", MYELIN_U4, 1, shape, unit);
      myelin_build_int(b, "label", i % 2);
      myelin_build_int(b, "index", i % 20);
      myelin_build_str(b, "split", "train");
      myelin_build_int(b, "epoch", i / 20);
      myelin_build_float(b, "t", 0.05 * i);
      m[i] = myelin_builder_finish(b);
    }
    write_stream(mt_strf("%s/in.mpk", d), m, N);
    *outs = two;
    return write_pipeline(
        d, "p.yaml",
        mt_strf("name: sig-biograd\nstages:\n"
                "  - {id: src, plugin: file_source, params: {path: %s/in.mpk, pace: realtime}}\n"
                "  - {id: learn, plugin: biograd, inputs: {train: [src]},"
                " params: {hidden: [16], classes: 2, sleep_every: 10}}\n"
                "  - {id: net, plugin: file_sink, inputs: [learn.network], params: {path: %s/net.mpk}}\n"
                "  - {id: met, plugin: file_sink, inputs: [learn.metrics], params: {path: %s/metrics.mpk}}\n"
                "  - {id: export, plugin: loihi_export, inputs: [learn.network], params: {path: %s/net}}\n",
                d, d, d, d));
  }
  if (!strcmp(plugin, "isc")) { /* two subjects' volumes, interleaved */
    for (int i = 0; i < N; i++) {
      int t = i / 2, s = i % 2;
      float x[12];
      for (int v = 0; v < 12; v++)
        x[v] = wave(t, v, s);
      myelin_builder *b = myelin_builder_new("volume");
      myelin_build_str(b, "subject", s ? "02" : "01");
      myelin_build_str(b, "task", "story");
      myelin_build_int(b, "index", t);
      myelin_build_float(b, "tr", 2.0);
      myelin_build_float(b, "t", 0.1 * t);
      int64_t shp[1] = {12};
      myelin_build_tensor_copy(b, "data", MYELIN_F4, 1, shp, x);
      build_geometry(b, 12);
      m[i] = myelin_builder_finish(b);
    }
    write_stream(mt_strf("%s/in.mpk", d), m, N);
    return write_pipeline(
        d, "p.yaml",
        mt_strf("name: sig-isc\nstages:\n"
                "  - {id: src, plugin: file_source, params: {path: %s/in.mpk, pace: realtime}}\n"
                "  - {id: isc, plugin: isc, inputs: [src], params: {subjects: 2, every: 5}}\n"
                "  - {id: save, plugin: file_sink, inputs: [isc.map], params: {path: %s/out.mpk}}\n",
                d, d));
  }
  if (!strcmp(plugin, "info_content")) { /* a rest run, then task runs */
    m[0] = run_msg("s1", "rest", 60, 5, 0, 0);
    for (int i = 1; i < N / 4; i++)
      m[i] = run_msg("s1", "social", 30, 5, i, 0.2 * i);
    write_stream(mt_strf("%s/in.mpk", d), m, N / 4);
    return write_pipeline(
        d, "p.yaml",
        mt_strf("name: sig-ic\nstages:\n"
                "  - {id: src, plugin: file_source, params: {path: %s/in.mpk, pace: realtime}}\n"
                "  - {id: info, plugin: info_content, inputs: {run: [src]}, params: {energy: none}}\n"
                "  - {id: save, plugin: file_sink, inputs: [info.map], params: {path: %s/out.mpk}}\n",
                d, d));
  }
  /* encoding: one features message, then runs of many subjects */
  double X[60 * 3];
  for (int i = 0; i < 60 * 3; i++)
    X[i] = wave(i / 3, i % 3, 9);
  myelin_builder *b = myelin_builder_new("features");
  myelin_build_str(b, "task", "story");
  int64_t xs[2] = {60, 3};
  myelin_build_tensor_copy(b, "data", MYELIN_F8, 2, xs, X);
  myelin_build_float(b, "tr", 2.0);
  m[0] = myelin_builder_finish(b);
  write_stream(mt_strf("%s/feat.mpk", d), m, 1);
  for (int i = 0; i < N / 4; i++)
    m[i] = run_msg(mt_strf("%02d", i), "story", 60, 5, i, 0.2 * i);
  write_stream(mt_strf("%s/in.mpk", d), m, N / 4);
  return write_pipeline(
      d, "p.yaml",
      mt_strf("name: sig-enc\nstages:\n"
              "  - {id: feat, plugin: file_source, params: {path: %s/feat.mpk}}\n"
              "  - {id: src, plugin: file_source, params: {path: %s/in.mpk, pace: realtime}}\n"
              "  - {id: enc, plugin: encoding, inputs: {features: [feat], brain: [src]},"
              " params: {delays: [0, 1], folds: 3, alphas: [1, 10]}}\n"
              "  - {id: save, plugin: file_sink, inputs: [enc.map], params: {path: %s/out.mpk}}\n",
              d, d, d));
}

static void signal_blas(const char *plugin, int sig) {
  char *d = mt_tmpdir();
  const char **outs;
  char *f = blas_pipeline(plugin, d, &outs);
  char *log = mt_strf("%s/log.txt", d);
  pid_t pid = spawn_run(f, log, "--stats");
  wait_running(pid, d, 1500);
  kill(pid, sig);
  int rc = wait_exit(pid);
  char *err = slurp(log);
  ck_assert_msg(rc == 130, "%s: exit %d, expected 130 after a clean drain; stderr:\n%s", plugin, rc, err);
  ck_assert_msg(strstr(err, "wall time:"), "%s: no stats after the drain:\n%s", plugin, err);
  ck_assert_msg(count_named(d, ".tmp-") == 0, "%s: a temporary file is left; stderr:\n%s", plugin, err);
  for (const char **o = outs; *o; o++) {
    ck_assert_msg(strstr(err, mt_strf(" (file_sink): kept %s/%s: complete", d, *o)),
                  "%s: no kept line for %s:\n%s", plugin, *o, err);
    long n = stream_count(mt_strf("%s/%s", d, *o));
    ck_assert_msg(n >= 1, "%s: %s missing or empty (%ld); stderr:\n%s", plugin, *o, n, err);
  }
  if (!strcmp(plugin, "biograd")) { /* the network the learner emits at its end is exported */
    ck_assert_msg(
        strstr(err, mt_strf("info: export (loihi_export): kept %s/net.net, %s/net.nir and .tar.gz", d, d)),
        "%s", err);
    ck_assert_int_gt(mt_file_size(mt_strf("%s/net.net", d)), 0);
    ck_assert_int_gt(mt_file_size(mt_strf("%s/net.tar.gz", d)), 0);
  }
  /* the run was interrupted, not finished: the source stopped early */
  ck_assert_msg(strstr(err, sig == SIGINT ? "myelin: interrupt: stopping" : "myelin: terminate: stopping"),
                "%s:\n%s", plugin, err);
  free(err);
}

START_TEST(sigint_biograd) { signal_blas("biograd", SIGINT); }
END_TEST
START_TEST(sigint_isc) { signal_blas("isc", SIGINT); }
END_TEST
START_TEST(sigint_encoding) { signal_blas("encoding", SIGINT); }
END_TEST
START_TEST(sigint_info_content) { signal_blas("info_content", SIGINT); }
END_TEST
START_TEST(sigterm_isc) { signal_blas("isc", SIGTERM); }
END_TEST

/* ---- 2. one request, however many copies -------------------------------- */

static long stats_counter(const char *log, const char *name) {
  const char *p = strstr(log, name);
  ck_assert_msg(p != NULL, "no %s in:\n%s", name, log);
  return atol(p + strlen(name));
}

/* gen_source -> slow_sink (1 ms a message, 64 queued) -> file_sink: a drain
 * of ~60 ms, long enough for a second signal copy to arrive during it. */
static char *live_pipeline(const char *d) {
  return write_pipeline(
      d, "live.yaml",
      mt_strf("name: live\nplugin_path: [%s]\nstages:\n"
              "  - {id: gen, plugin: gen_source, params: {count: 0, bytes: 200}}\n"
              "  - {id: p, plugin: slow_sink, inputs: [gen], queue: {capacity: 64},"
              " params: {delay_us: 1000}}\n"
              "  - {id: sink, plugin: file_sink, inputs: [p], params: {path: %s/live.mpk}}\n",
              mt_env("MYELIN_TEST_PLUGINS", "."), d));
}

/* The run drained: nothing discarded, and live.mpk holds exactly the
 * messages the sink accepted (--stats), under its final name. */
static void assert_live_kept(const char *d, const char *log, int round) {
  ck_assert_msg(!strstr(log, "discarded") && !strstr(log, "aborting"), "round %d:\n%s", round, log);
  long accepted = stats_counter(log, "sink.messages = ");
  ck_assert_int_gt(accepted, 10);
  ck_assert_int_eq(stream_count(mt_strf("%s/live.mpk", d)), accepted);
  ck_assert_int_eq(count_named(d, ".tmp-"), 0);
}

/* Two signals at once, as a process-group Ctrl-C or `timeout -s INT` sends
 * them (to the process, then to its group), a few milliseconds apart (with
 * no gap the kernel merges them into one pending signal): the run drains and
 * keeps every message the sink accepted, every time. */
START_TEST(double_sigint_is_one_request) {
  for (int i = 0; i < 6; i++) {
    char *d = mt_tmpdir();
    char *f = live_pipeline(d);
    char *log = mt_strf("%s/log.txt", d);
    pid_t pid = spawn_run(f, log, "--stats");
    wait_running(pid, d, 300);
    useconds_t gap = (useconds_t)(i % 2 ? 2000 : 15000);
    if (i % 3 == 0) { /* twice to the process */
      kill(pid, SIGINT);
      usleep(gap);
      kill(pid, SIGINT);
    } else if (i % 3 == 1) { /* timeout -s INT: the child, then its group */
      kill(pid, SIGINT);
      usleep(gap);
      kill(-pid, SIGINT);
    } else { /* twice to the group */
      kill(-pid, SIGINT);
      usleep(gap);
      kill(-pid, SIGINT);
    }
    int rc = wait_exit(pid);
    char *err = slurp(log);
    ck_assert_msg(rc == 130, "round %d: exit %d; stderr:\n%s", i, rc, err);
    assert_live_kept(d, err, i);
    free(err);
  }
}
END_TEST

/* The real thing: GNU `timeout -s INT` signals the child, then its whole
 * process group. */
START_TEST(timeout_s_int_keeps_file) {
  for (int i = 0; i < 3; i++) {
    char *d = mt_tmpdir();
    char *f = live_pipeline(d);
    char *out;
    int rc = mt_run(mt_strf("timeout --preserve-status -s INT 1 %s run %s --stats", bin(), f), &out);
    ck_assert_msg(rc == 130, "round %d: exit %d:\n%s", i, rc, out);
    assert_live_kept(d, out, i);
    free(out);
  }
}
END_TEST

/* A request that comes while the pipeline is still being set up (here
 * file_source's init blocks opening a FIFO nobody writes yet): nothing is
 * run, no output replaces an earlier one, exit 130. */
START_TEST(sigint_before_the_run_starts) {
  char *d = mt_tmpdir();
  char *fifo = mt_strf("%s/in.mpk", d), *done = mt_strf("%s/out.mpk", d);
  ck_assert_int_eq(mkfifo(fifo, 0600), 0);
  mt_write(done, "an earlier result");
  char *f = write_pipeline(d, "p.yaml",
                           mt_strf("name: p\nstages:\n"
                                   "  - {id: src, plugin: file_source, params: {path: %s}}\n"
                                   "  - {id: sink, plugin: file_sink, inputs: [src], params: {path: %s}}\n",
                                   fifo, done));
  char *log = mt_strf("%s/log.txt", d);
  pid_t pid = spawn_run(f, log, "--stats");
  usleep(500000); /* loaded, blocked in init */
  kill(pid, SIGINT);
  usleep(200000);
  /* myelin may close the FIFO unread once it sees the request: that is a
   * write error here, not a reason for this test to die of SIGPIPE */
  signal(SIGPIPE, SIG_IGN);
  myelin_builder *b = myelin_builder_new("tensor"); /* now let init go on */
  myelin_build_int(b, "seq", 0);
  myelin_msg *m = myelin_builder_finish(b);
  FILE *w = fopen(fifo, "wb");
  ck_assert_ptr_nonnull(w);
  size_t len;
  const uint8_t *bytes = myelin_msg_bytes(m, &len);
  fwrite(bytes, 1, len, w);
  fclose(w);
  myelin_msg_unref(m);
  int rc = wait_exit(pid);
  char *err = slurp(log);
  ck_assert_msg(rc == 130, "exit %d:\n%s", rc, err);
  ck_assert_msg(strstr(err, "interrupted before the run started"), "%s", err);
  char *kept = slurp(done);
  ck_assert_str_eq(kept, "an earlier result");
  free(kept);
  ck_assert_int_eq(count_named(d, ".tmp-"), 0);
  free(err);
}
END_TEST

/* A second request more than a second after the first aborts the drain:
 * the sink discards its file and says so, naming it. */
START_TEST(second_sigint_later_aborts) {
  char *d = mt_tmpdir();
  const char *tp = mt_env("MYELIN_TEST_PLUGINS", ".");
  char *f = write_pipeline(
      d, "slow.yaml",
      mt_strf("name: slow\nplugin_path: [%s]\nstages:\n"
              "  - {id: gen, plugin: gen_source, params: {count: 0, bytes: 100}}\n"
              "  - {id: slow, plugin: slow_sink, inputs: [gen], queue: {capacity: 512},"
              " params: {delay_us: 10000}}\n"
              "  - {id: sink, plugin: file_sink, inputs: [slow], params: {path: %s/out.mpk}}\n",
              tp, d));
  char *log = mt_strf("%s/log.txt", d);
  pid_t pid = spawn_run(f, log, "--quiet");
  wait_running(pid, d, 500);
  kill(pid, SIGINT);
  usleep(1300000); /* the drain of ~500 queued messages takes ~5 s */
  kill(pid, SIGINT);
  int rc = wait_exit(pid);
  char *err = slurp(log);
  ck_assert_msg(rc == 130, "exit %d; stderr:\n%s", rc, err);
  ck_assert_msg(strstr(err, "aborting"), "%s", err);
  char *line = strstr(err, "warning: sink (file_sink): discarded ");
  ck_assert_msg(line && strstr(line, mt_strf("%s/out.mpk", d)), "no discard line naming the file:\n%s", err);
  ck_assert_int_eq(mt_file_size(mt_strf("%s/out.mpk", d)), -1);
  ck_assert_int_eq(count_named(d, ".tmp-"), 0);
  free(err);
}
END_TEST

/* ---- 3. one rule for every sink on every stop ----------------------------- */

/* n `volume` messages of one run (12 voxels), t 0.1 s apart; with `bad`, a
 * last message that --check-messages refuses (a spikes message without n). */
static void write_volumes(const char *path, int n, int bad) {
  myelin_msg **m = calloc((size_t)n + 1, sizeof *m);
  for (int i = 0; i < n; i++) {
    float x[12];
    for (int v = 0; v < 12; v++)
      x[v] = wave(i, v, 1);
    myelin_builder *b = myelin_builder_new("volume");
    myelin_build_str(b, "subject", "01");
    myelin_build_str(b, "task", "rest");
    myelin_build_int(b, "run", 1);
    myelin_build_int(b, "index", i);
    myelin_build_float(b, "tr", 2.0);
    myelin_build_float(b, "t", 0.1 * i);
    int64_t shp[1] = {12};
    myelin_build_tensor_copy(b, "data", MYELIN_F4, 1, shp, x);
    build_geometry(b, 12);
    m[i] = myelin_builder_finish(b);
  }
  if (bad) {
    myelin_builder *b = myelin_builder_new("spikes");
    uint32_t u[1] = {0};
    int64_t shp[1] = {1};
    myelin_build_tensor_copy(b, "step", MYELIN_U4, 1, shp, u);
    m[n] = myelin_builder_finish(b);
  }
  write_stream(path, m, (size_t)n + (bad ? 1 : 0));
  free(m);
}

/* file_source -> file_sink, npy_sink (.npz) and nifti_sink (collected
 * volumes): three kinds of sink, one rule. */
static char *three_sinks(const char *d, const char *in, const char *src_params) {
  return write_pipeline(
      d, "three.yaml",
      mt_strf("name: three\nstages:\n"
              "  - {id: src, plugin: file_source, params: {path: %s, %s}}\n"
              "  - {id: rec, plugin: file_sink, inputs: [src], params: {path: %s/out/a.mpk}}\n"
              "  - {id: arr, plugin: npy_sink, inputs: [src], params: {path: %s/out/v.npz}}\n"
              "  - {id: img, plugin: nifti_sink, inputs: [src], params: {path: %s/out/v.nii}}\n",
              in, src_params, d, d, d));
}

static void assert_all_discarded(const char *d, const char *err) {
  const char *files[] = {"a.mpk", "v.npz", "v.nii"};
  const char *sinks[] = {"rec (file_sink)", "arr (npy_sink)", "img (nifti_sink)"};
  for (int i = 0; i < 3; i++) {
    ck_assert_msg(mt_file_size(mt_strf("%s/out/%s", d, files[i])) == -1, "%s exists:\n%s", files[i], err);
    char *line = strstr(err, mt_strf("warning: %s: discarded %s/out/%s", sinks[i], d, files[i]));
    ck_assert_msg(line != NULL, "no discard line for %s:\n%s", files[i], err);
  }
  ck_assert_int_eq(count_named(mt_strf("%s/out", d), ".tmp-"), 0);
}

/* Truncated input and a --check-messages violation: both are errors, both
 * abort, every sink discards and names its file. The replay is paced (1 s)
 * so that every sink holds data when the error comes. */
START_TEST(error_discards_every_sink) {
  char *d = mt_tmpdir();
  char *full = mt_strf("%s/full.mpk", d), *cut = mt_strf("%s/cut.mpk", d);
  write_volumes(full, 40, 0);
  ck_assert_int_eq(mt_run(mt_strf("head -c %ld %s > %s", mt_file_size(full) - 30, full, cut), NULL), 0);
  char *out;
  ck_assert_int_eq(mt_run(mt_strf("%s run %s", bin(), three_sinks(d, cut, "pace: realtime, speed: 4")), &out),
                   1);
  ck_assert_msg(strstr(out, "truncated message at byte offset"), "%s", out);
  assert_all_discarded(d, out);
  free(out);

  char *bad = mt_strf("%s/bad.mpk", d);
  write_volumes(bad, 40, 1);
  ck_assert_int_eq(
      mt_run(mt_strf("%s run %s --check-messages", bin(), three_sinks(d, bad, "pace: realtime, speed: 4")),
             &out),
      1);
  ck_assert_msg(strstr(out, "--check-messages"), "%s", out);
  assert_all_discarded(d, out);
  free(out);

  /* the same stream, complete and valid: every file, and no stop lines */
  ck_assert_int_eq(
      mt_run(mt_strf("%s run %s --check-messages", bin(), three_sinks(d, full, "pace: asap")), &out), 0);
  ck_assert_msg(!strstr(out, "kept") && !strstr(out, "discarded"), "%s", out);
  ck_assert_int_eq(stream_count(mt_strf("%s/out/a.mpk", d)), 40);
  ck_assert_int_gt(mt_file_size(mt_strf("%s/out/v.npz", d)), 40 * 48);
  ck_assert_int_gt(mt_file_size(mt_strf("%s/out/v.nii", d)), 40 * 48);
  free(out);
}
END_TEST

/* A failing stage in one branch aborts the run: the sink behind it and the
 * sink of another branch both discard. */
START_TEST(failing_stage_discards_other_branches) {
  char *d = mt_tmpdir();
  const char *tp = mt_env("MYELIN_TEST_PLUGINS", ".");
  char *f =
      write_pipeline(d, "f.yaml",
                     mt_strf("name: f\nplugin_path: [%s]\nstages:\n"
                             "  - {id: gen, plugin: gen_source, params: {count: 100000}}\n"
                             "  - {id: boom, plugin: fail_after, inputs: [gen], params: {n: 500}}\n"
                             "  - {id: s1, plugin: file_sink, inputs: [boom], params: {path: %s/one.mpk}}\n"
                             "  - {id: s2, plugin: file_sink, inputs: [gen], params: {path: %s/two.mpk}}\n",
                             tp, d, d));
  char *out;
  ck_assert_int_eq(mt_run(mt_strf("%s run %s", bin(), f), &out), 1);
  ck_assert_msg(strstr(out, mt_strf("warning: s1 (file_sink): discarded %s/one.mpk", d)), "%s", out);
  ck_assert_msg(strstr(out, mt_strf("warning: s2 (file_sink): discarded %s/two.mpk", d)), "%s", out);
  ck_assert_int_eq(mt_file_size(mt_strf("%s/one.mpk", d)), -1);
  ck_assert_int_eq(mt_file_size(mt_strf("%s/two.mpk", d)), -1);
  ck_assert_int_eq(count_named(d, ".tmp-"), 0);
  free(out);
}
END_TEST

/* A clean stop: every sink commits, and says so naming its file. */
START_TEST(interrupt_keeps_every_sink) {
  char *d = mt_tmpdir();
  char *in = mt_strf("%s/in.mpk", d);
  write_volumes(in, 100, 0); /* 10 s of realtime replay */
  char *log = mt_strf("%s/log.txt", d);
  mt_run(mt_strf("mkdir -p %s/out", d), NULL);
  pid_t pid = spawn_run(three_sinks(d, in, "pace: realtime"), log, "--stats");
  wait_running(pid, mt_strf("%s/out", d), 1000);
  kill(pid, SIGINT);
  int rc = wait_exit(pid);
  char *err = slurp(log);
  ck_assert_msg(rc == 130, "exit %d:\n%s", rc, err);
  long n = stats_counter(err, "rec.messages = ");
  ck_assert_int_gt(n, 3);
  ck_assert_int_lt(n, 100);
  ck_assert_int_eq(stream_count(mt_strf("%s/out/a.mpk", d)), n);
  ck_assert_msg(strstr(err, mt_strf("info: rec (file_sink): kept %s/out/a.mpk", d)), "%s", err);
  ck_assert_msg(strstr(err, mt_strf("info: arr (npy_sink): kept %s/out/v.npz", d)), "%s", err);
  ck_assert_msg(strstr(err, mt_strf("info: img (nifti_sink): kept 1 image(s) %s/out/v.nii", d)), "%s", err);
  ck_assert_int_gt(mt_file_size(mt_strf("%s/out/v.npz", d)), n * 48);
  ck_assert_int_gt(mt_file_size(mt_strf("%s/out/v.nii", d)), n * 48);
  ck_assert_int_eq(count_named(mt_strf("%s/out", d), ".tmp-"), 0);
  free(err);
}
END_TEST

/* ---- 17. the root cause first, no "stopping" noise ------------------------ */

/* `boom` fails; `relay`, listed before it, is blocked in emit behind a slow
 * stage at that moment and returns the MYELIN_ESTOP that the abort gives it.
 * The first error line is boom's; no line reports "stopping". */
START_TEST(root_cause_first) {
  char *d = mt_tmpdir();
  const char *tp = mt_env("MYELIN_TEST_PLUGINS", ".");
  char *f = write_pipeline(d, "f.yaml",
                           mt_strf("name: f\nplugin_path: [%s]\nstages:\n"
                                   "  - {id: gen, plugin: gen_source, params: {count: 0}}\n"
                                   "  - {id: relay, plugin: slow_sink, inputs: [gen]}\n"
                                   "  - {id: slow, plugin: slow_sink, inputs: [relay], queue: {capacity: 2},"
                                   " params: {delay_us: 2000}}\n"
                                   "  - {id: gen2, plugin: gen_source, params: {count: 0, rate: 1000}}\n"
                                   "  - {id: boom, plugin: fail_after, inputs: [gen2], params: {n: 100}}\n",
                                   tp));
  for (int round = 0; round < 3; round++) {
    char *out;
    ck_assert_int_eq(mt_run(mt_strf("%s run %s", bin(), f), &out), 1);
    char *first = strstr(out, "error: ");
    ck_assert_msg(
        first && !strncmp(first, "error: stage 'boom' (fail_after): process failed: planted failure", 65),
        "the root cause is not the first error:\n%s", out);
    ck_assert_msg(!strstr(out, "stopping"), "a consequence of the abort reported as an error:\n%s", out);
    free(out);
  }
}
END_TEST

/* ---- 16. --stats busy, --progress --------------------------------------- */

/* The busy column (percent) of stage `id` in a --stats table. */
static double stats_busy(const char *log, const char *id) {
  const char *row = log;
  size_t n = strlen(id);
  while (row && !(strncmp(row, id, n) == 0 && row[n] == ' ')) {
    row = strchr(row, '\n');
    if (row) row++;
  }
  ck_assert_msg(row != NULL, "no stats row for %s:\n%s", id, log);
  const char *eol = strchr(row, '\n'), *pct = row;
  for (const char *c = row; c < eol; c++)
    if (*c == '%') pct = c;
  ck_assert_msg(pct > row, "no busy column for %s:\n%s", id, log);
  while (pct > row && pct[-1] != ' ')
    pct--;
  return atof(pct);
}

/* Idle stages (a tcp_source nobody connects to, a generator sleeping between
 * 20 messages a second) are not busy; a generator that never waits is. */
START_TEST(stats_busy_is_work) {
  char *d = mt_tmpdir();
  char *f =
      write_pipeline(d, "b.yaml",
                     mt_strf("name: b\nstages:\n"
                             "  - {id: idle, plugin: tcp_source, params: {unix: %s/s.sock}}\n"
                             "  - {id: s1, plugin: null_sink, inputs: [idle]}\n"
                             "  - {id: paced, plugin: gen_source, params: {count: 0, rate: 20}}\n"
                             "  - {id: s2, plugin: file_sink, inputs: [paced], params: {path: %s/p.mpk}}\n"
                             "  - {id: flat, plugin: gen_source, params: {count: 300000, bytes: 64}}\n"
                             "  - {id: s3, plugin: null_sink, inputs: [flat]}\n",
                             d, d));
  char *log = mt_strf("%s/log.txt", d);
  pid_t pid = spawn_run(f, log, "--stats");
  wait_running(pid, d, 1500);
  kill(pid, SIGINT);
  int rc = wait_exit(pid);
  char *err = slurp(log);
  ck_assert_msg(rc == 130, "exit %d:\n%s", rc, err);
  ck_assert_msg(stats_busy(err, "idle") < 10, "an idle tcp_source is not busy:\n%s", err);
  ck_assert_msg(stats_busy(err, "paced") < 10, "a source sleeping to pace itself is not busy:\n%s", err);
  ck_assert_msg(stats_busy(err, "flat") > 1, "a generator that never waits is busy:\n%s", err);
  free(err);
}
END_TEST

/* --progress prints plain lines on a non-TTY stderr while the run goes on. */
START_TEST(progress_lines) {
  char *d = mt_tmpdir();
  char *f = write_pipeline(d, "p.yaml",
                           "name: p\nstages:\n"
                           "  - {id: gen, plugin: gen_source, params: {count: 25, rate: 10}}\n"
                           "  - {id: sink, plugin: null_sink, inputs: [gen]}\n");
  char *out;
  ck_assert_int_eq(mt_run(mt_strf("%s run %s --progress=0.5 2>&1 | cat", bin(), f), &out), 0);
  long lines = 0, last = -1;
  for (const char *l = strstr(out, "progress "); l; l = strstr(l + 1, "\nprogress ")) {
    const char *g = strstr(l, ": gen ");
    ck_assert_msg(g != NULL, "%s", out);
    long c = atol(g + 6);
    ck_assert_msg(c >= last && c <= 25, "%s", out);
    ck_assert_msg(strstr(l, " out (") && strstr(l, "sink "), "%s", out);
    last = c;
    lines++;
  }
  ck_assert_msg(lines >= 3, "%ld progress lines in a 2.5 s run at --progress=0.5:\n%s", lines, out);
  free(out);
  ck_assert_int_eq(mt_run(mt_strf("%s run %s --progress=soon", bin(), f), &out), 2);
  ck_assert_msg(strstr(out, "--progress=soon"), "%s", out);
  free(out);
}
END_TEST

int main(void) {
  Suite *s = suite_create("runtime_run");
  TCase *tc = tcase_create("signals");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, sigint_biograd);
  tcase_add_test(tc, sigint_isc);
  tcase_add_test(tc, sigint_encoding);
  tcase_add_test(tc, sigint_info_content);
  tcase_add_test(tc, sigterm_isc);
  tcase_add_test(tc, double_sigint_is_one_request);
  tcase_add_test(tc, timeout_s_int_keeps_file);
  tcase_add_test(tc, sigint_before_the_run_starts);
  tcase_add_test(tc, second_sigint_later_aborts);
  tcase_add_test(tc, error_discards_every_sink);
  tcase_add_test(tc, failing_stage_discards_other_branches);
  tcase_add_test(tc, interrupt_keeps_every_sink);
  tcase_add_test(tc, root_cause_first);
  tcase_add_test(tc, stats_busy_is_work);
  tcase_add_test(tc, progress_lines);
  suite_add_tcase(s, tc);
  return mt_run_suite(s);
}
