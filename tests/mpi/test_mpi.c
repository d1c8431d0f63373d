/*
 * tests/mpi — `mpirun --oversubscribe -n 1/2/4 myelin run` of an MPI build
 * (-DMYELIN_MPI=ON; docs/mpi.md). The test plugins (mpi_check.c,
 * mpi_reduce.c) call every collective and check the results themselves;
 * these checks run them on 1, 2 and 4 ranks, compare reruns byte for byte,
 * and check job control: one rank's failure stops every rank, a signal
 * drains every rank.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

static const char *bin(void) { return mt_env("MYELIN_BIN", "myelin"); }

/* mpirun as root needs both of these (CI containers run as root). */
static void mpi_env(void) {
  setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
  setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
  setenv("OMPI_MCA_rmaps_base_oversubscribe", "1", 1);
}

static char *mpirun(int n, const char *args) {
  return mt_strf("mpirun --oversubscribe -n %d %s run %s", n, bin(), args);
}

static char *pipeline(const char *d, const char *name, const char *stages) {
  char *f = mt_strf("%s/%s", d, name);
  mt_write(f,
           mt_strf("name: mpi\nplugin_path: [%s]\nstages:\n%s", mt_env("MYELIN_TEST_PLUGINS", "."), stages));
  return f;
}

static int count_of(const char *s, const char *what) {
  int n = 0;
  for (const char *p = s; (p = strstr(p, what)); p += strlen(what))
    n++;
  return n;
}

static int same_file(const char *a, const char *b) {
  char *out;
  int rc = mt_run(mt_strf("cmp %s %s", a, b), &out);
  free(out);
  return rc == 0;
}

/* Every collective on n ranks; the allreduce results of two runs are the
 * same bytes, and with 4 ranks the f8 sums depend on the order (so the
 * check of the rank-order fold means something). */
static void collectives(int n) {
  mpi_env();
  char *d = mt_tmpdir();
  for (int round = 0; round < 2; round++) {
    char *f = pipeline(d, mt_strf("c%d.yaml", round),
                       mt_strf("  - {id: check, plugin: mpi_check, params: {out: %s/ar%d.bin}}\n", d, round));
    char *out;
    int rc = mt_run(mpirun(n, f), &out);
    ck_assert_msg(rc == 0, "%d ranks: exit %d:\n%s", n, rc, out);
    ck_assert_msg(count_of(out, "checks passed") == n, "%d ranks:\n%s", n, out);
    ck_assert_msg(strstr(out, mt_strf("rank 0 of %d: 42 checks passed", n)), "%s", out);
    if (n == 4) {
      const char *p = strstr(out, "rank 0 of 4: 42 checks passed, ");
      ck_assert_msg(p && atoi(p + strlen("rank 0 of 4: 42 checks passed, ")) > 1000, "%s", out);
    }
    free(out);
  }
  ck_assert_int_eq(mt_file_size(mt_strf("%s/ar0.bin", d)), 300001L * (3 * 8 + 3 * 4 + 3 * 8));
  ck_assert_msg(same_file(mt_strf("%s/ar0.bin", d), mt_strf("%s/ar1.bin", d)), "reruns differ on %d ranks",
                n);
}

START_TEST(collectives_1) { collectives(1); }
END_TEST
START_TEST(collectives_2) { collectives(2); }
END_TEST
START_TEST(collectives_4) { collectives(4); }
END_TEST

/* An MPI build run without a launcher is an ordinary single-rank run. */
START_TEST(plain_run_is_one_rank) {
  char *d = mt_tmpdir();
  char *f = pipeline(d, "p.yaml", "  - {id: check, plugin: mpi_check, params: {count: 1000}}\n");
  char *out;
  int rc = mt_run(mt_strf("%s run %s", bin(), f), &out);
  ck_assert_msg(rc == 0 && strstr(out, "rank 0 of 1: 42 checks passed"), "exit %d:\n%s", rc, out);
  free(out);
}
END_TEST

/* ---- job control --------------------------------------------------------- */
/* Runs `mpirun -n n` of a shell that runs myelin and writes its exit code
 * to D/rc.RANK (mpirun itself only reports the first non-zero code). */
static char *mpirun_rc(int n, const char *d, const char *args) {
  return mt_strf("mpirun --oversubscribe -n %d sh -c '%s run %s; echo $? > %s/rc.$OMPI_COMM_WORLD_RANK'", n,
                 bin(), args, d);
}

static void assert_rank_codes(const char *d, int n, int want, const char *log) {
  for (int r = 0; r < n; r++) {
    char *out;
    ck_assert_int_eq(mt_run(mt_strf("cat %s/rc.%d", d, r), &out), 0);
    ck_assert_msg(atoi(out) == want, "rank %d exited %d, not %d:\n%s", r, atoi(out), want, log);
    free(out);
  }
}

/* Nothing under D named g*: no group output, not even a temporary file. */
static void assert_no_outputs(const char *d, const char *log) {
  char *out;
  mt_run(mt_strf("ls %s | grep '^g' || true", d), &out);
  ck_assert_msg(!out[0], "outputs left behind: %s\n%s", out, log);
  free(out);
}

/* mpi_check fails on rank 2 of 4 after emitting, while the others wait in
 * a barrier: every rank stops, exits 1, rank 0 names rank 2 and the stage
 * once, and no rank keeps its group output (mpi_reduce's allreduce in flush
 * never completes). */
START_TEST(failure_on_rank_2_stops_all) {
  mpi_env();
  char *d = mt_tmpdir();
  char *f = pipeline(
      d, "f.yaml",
      mt_strf("  - {id: check, plugin: mpi_check, params: {count: 1000, messages: 5, fail_rank: 2}}\n"
              "  - {id: red, plugin: mpi_reduce, inputs: [check]}\n"
              "  - {id: sink, plugin: file_sink, inputs: [red],"
              " params: {path: '%s/g${OMPI_COMM_WORLD_RANK}.mpk'}}\n",
              d));
  char *out;
  mt_run(mpirun_rc(4, d, f), &out);
  assert_rank_codes(d, 4, 1, out);
  ck_assert_msg(
      strstr(out, "error: rank 2: stage 'check' (mpi_check): start failed: planted failure on rank 2\n"),
      "%s", out);
  ck_assert_msg(count_of(out, "error:") == 1, "%s", out);
  assert_no_outputs(d, out);
  free(out);
}
END_TEST

/* The same with an existing source and a bad input file on rank 2 only:
 * file_source reads D/inRANK.mpk, and in2.mpk is not a stream file. */
START_TEST(bad_file_on_rank_2) {
  mpi_env();
  char *d = mt_tmpdir();
  char *w = pipeline(d, "w.yaml",
                     mt_strf("  - {id: gen, plugin: gen_source, params: {count: 20, bytes: 8}}\n"
                             "  - {id: sink, plugin: file_sink, inputs: [gen], params: {path: %s/in0.mpk}}\n",
                             d));
  ck_assert_int_eq(mt_run(mt_strf("%s run %s --quiet && cp %s/in0.mpk %s/in1.mpk && cp %s/in0.mpk %s/in3.mpk",
                                  bin(), w, d, d, d, d),
                          NULL),
                   0);
  mt_write(mt_strf("%s/in2.mpk", d), "this is not a stream file\n");
  char *f = pipeline(
      d, "f.yaml",
      mt_strf("  - {id: src, plugin: file_source, params: {path: '%s/in${OMPI_COMM_WORLD_RANK}.mpk'}}\n"
              "  - {id: red, plugin: mpi_reduce, inputs: [src]}\n"
              "  - {id: sink, plugin: file_sink, inputs: [red],"
              " params: {path: '%s/g${OMPI_COMM_WORLD_RANK}.mpk'}}\n",
              d, d));
  char *out;
  mt_run(mpirun_rc(4, d, f), &out);
  assert_rank_codes(d, 4, 1, out);
  ck_assert_msg(strstr(out, "error: rank 2: stage 'src' (file_source): "), "%s", out);
  ck_assert_msg(strstr(out, "in2.mpk"), "%s", out);
  ck_assert_msg(!strstr(out, "error: rank 0") && !strstr(out, "error: rank 1") &&
                    !strstr(out, "error: rank 3"),
                "%s", out);
  assert_no_outputs(d, out);
  free(out);
}
END_TEST

/* A failure in init on rank 2 while the other ranks wait in a collective
 * of their own init. */
START_TEST(init_failure_on_rank_2) {
  mpi_env();
  char *d = mt_tmpdir();
  char *f = pipeline(d, "f.yaml",
                     mt_strf("  - {id: check, plugin: mpi_check, params: {fail_rank: 2, fail_in: init}}\n"
                             "  - {id: sink, plugin: file_sink, inputs: [check],"
                             " params: {path: '%s/g${OMPI_COMM_WORLD_RANK}.mpk'}}\n",
                             d));
  char *out;
  mt_run(mpirun_rc(4, d, f), &out);
  assert_rank_codes(d, 4, 1, out);
  ck_assert_msg(
      strstr(out, "error: rank 2: stage 'check' (mpi_check): init failed: planted failure in init on rank 2"),
      "%s", out);
  ck_assert_msg(count_of(out, "error:") == 1, "%s", out);
  assert_no_outputs(d, out);
  free(out);
}
END_TEST

/* A pipeline file that loads on rank 0 but not on rank 1 (an environment
 * variable differs): no rank runs it, every rank exits 2, rank 1's errors
 * come under a "rank 1:" line and rank 0 names it. */
START_TEST(load_failure_on_one_rank) {
  mpi_env();
  char *d = mt_tmpdir();
  char *f = pipeline(d, "f.yaml", "  - {id: check, plugin: mpi_check, params: {count: '${COUNT:-10}'}}\n");
  char *out;
  mt_run(
      mt_strf(
          "mpirun --oversubscribe -n 2 sh -c '[ $OMPI_COMM_WORLD_RANK = 1 ] && export COUNT=ten; %s run %s; "
          "echo $? > %s/rc.$OMPI_COMM_WORLD_RANK'",
          bin(), f, d),
      &out);
  assert_rank_codes(d, 2, 2, out);
  ck_assert_msg(strstr(out, "rank 1:\n") && strstr(out, "count") &&
                    strstr(out, "error: rank 1 could not load the pipeline file"),
                "%s", out);
  ck_assert_msg(!strstr(out, "checks passed"), "%s", out);
  free(out);
}
END_TEST

/* An endless source into mpi_reduce (which allreduces its count in flush)
 * and a file per rank: the pipeline the signal tests interrupt. */
static char *endless_reduce_pipeline(const char *d) {
  return pipeline(d, "s.yaml",
                  mt_strf("  - {id: gen, plugin: gen_source, params: {count: 0, rate: 400, bytes: 8}}\n"
                          "  - {id: red, plugin: mpi_reduce, inputs: [gen], queue: {capacity: 16},"
                          " params: {delay_us: 1000}}\n"
                          "  - {id: sink, plugin: file_sink, inputs: [red],"
                          " params: {path: '%s/g${OMPI_COMM_WORLD_RANK}.mpk'}}\n",
                          d));
}

/* SIGINT to mpirun: mpirun sends SIGTERM to every rank (SIGKILL after
 * odls_base_sigkill_timeout seconds); each rank drains, mpi_reduce still
 * allreduces in flush, and rank 0's group output is complete: its count is
 * the sum of the messages every rank's stage took (rank 0's --stats report
 * lists each rank). */
START_TEST(sigint_to_mpirun_drains) {
  mpi_env();
  char *d = mt_tmpdir();
  char *f = endless_reduce_pipeline(d);
  char *log = mt_strf("%s/log.txt", d);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    execlp("mpirun", "mpirun", "--oversubscribe", "--mca", "odls_base_sigkill_timeout", "10", "-n", "2",
           bin(), "run", f, "--stats", (char *)NULL);
    _exit(127);
  }
  sleep(3);
  kill(pid, SIGINT);
  int st;
  waitpid(pid, &st, 0);
  char *out;
  ck_assert_int_eq(mt_run(mt_strf("cat %s", log), &out), 0);
  const char *g = strstr(out, "group: ");
  ck_assert_msg(g, "no group result:\n%s", out);
  long group = atol(g + strlen("group: ")), sum = 0;
  int rows = 0;
  for (const char *p = out; (p = strstr(p, "\nred ")); p++, rows++)
    sum += atol(p + strlen("\nred ") + strspn(p + strlen("\nred "), " ") + strlen("mpi_reduce"));
  ck_assert_msg(rows == 2 && group == sum && group > 100, "group %ld, stats rows %d sum %ld:\n%s", group,
                rows, sum, out);
  ck_assert_msg(strstr(out, mt_strf("kept %s/g0.mpk: complete, 1 messages", d)), "%s", out);
  ck_assert_msg(!strstr(out, "discarded") && !strstr(out, "error:"), "%s", out);
  free(out);
}
END_TEST

/* SIGINT to one rank only (a scheduler or a user signalling one task):
 * that rank drains and tells the other over the control communicator, so
 * both drain, the group result counts both ranks' messages, and both ranks
 * exit 130. */
START_TEST(sigint_to_one_rank_drains_all) {
  mpi_env();
  char *d = mt_tmpdir();
  char *f = endless_reduce_pipeline(d);
  char *log = mt_strf("%s/log.txt", d);
  char *cmd = mt_strf(
      "mpirun --oversubscribe -n 2 sh -c '%s run %s --stats & echo $! > %s/pid.$OMPI_COMM_WORLD_RANK; "
      "wait $!; echo $? > %s/rc.$OMPI_COMM_WORLD_RANK' > %s 2>&1",
      bin(), f, d, d, log);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
  }
  sleep(3);
  char *rank1;
  ck_assert_int_eq(mt_run(mt_strf("cat %s/pid.1", d), &rank1), 0);
  ck_assert_int_eq(kill((pid_t)atol(rank1), SIGINT), 0);
  free(rank1);
  int st;
  waitpid(pid, &st, 0);
  char *out;
  ck_assert_int_eq(mt_run(mt_strf("cat %s", log), &out), 0);
  assert_rank_codes(d, 2, 130, out);
  const char *g = strstr(out, "group: ");
  ck_assert_msg(g, "no group result:\n%s", out);
  long group = atol(g + strlen("group: ")), sum = 0;
  int rows = 0;
  for (const char *p = out; (p = strstr(p, "\nred ")); p++, rows++)
    sum += atol(p + strlen("\nred ") + strspn(p + strlen("\nred "), " ") + strlen("mpi_reduce"));
  ck_assert_msg(rows == 2 && group == sum && group > 100, "group %ld, stats rows %d sum %ld:\n%s", group,
                rows, sum, out);
  ck_assert_msg(count_of(out, "interrupt: stopping sources and draining") == 1, "%s", out);
  ck_assert_msg(strstr(out, "myelin: rank 1 was interrupted: stopping sources and draining here too"), "%s",
                out);
  ck_assert_msg(!strstr(out, "discarded") && !strstr(out, "error:"), "%s", out);
  free(out);
}
END_TEST

int main(void) {
  Suite *s = suite_create("mpi");
  TCase *tc = tcase_create("collectives");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, plain_run_is_one_rank);
  tcase_add_test(tc, collectives_1);
  tcase_add_test(tc, collectives_2);
  tcase_add_test(tc, collectives_4);
  suite_add_tcase(s, tc);
  TCase *jc = tcase_create("job");
  tcase_set_timeout(jc, 300);
  tcase_add_test(jc, failure_on_rank_2_stops_all);
  tcase_add_test(jc, bad_file_on_rank_2);
  tcase_add_test(jc, init_failure_on_rank_2);
  tcase_add_test(jc, load_failure_on_one_rank);
  tcase_add_test(jc, sigint_to_mpirun_drains);
  tcase_add_test(jc, sigint_to_one_rank_drains_all);
  suite_add_tcase(s, jc);
  return mt_run_suite(s);
}
