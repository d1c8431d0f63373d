/*
 * test_folder_source.c — folder_source through the harness: files written
 * slowly in pieces (and renamed into place) arrive once, complete, in name
 * order, byte-identical; existing: false skips what was already there; a
 * missing folder is an error naming it; `myelin run` ends on idle_timeout.
 */
#include <pthread.h>
#include <time.h>

#include "myelin/harness.h"
#include "myelin/myelin.h"
#include "testutil.h"

#define N 12

static void msleep(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static void content(int i, char *buf, size_t n) {
  for (size_t k = 0; k < n; k++) buf[k] = (char)('a' + (i * 7 + (int)k) % 26);
}

static void *writer(void *arg) {
  const char *dir = arg;
  msleep(100);
  for (int i = 0; i < N; i++) {
    char buf[3000];
    content(i, buf, sizeof buf);
    char *p = mt_strf("%s/f%03d.bin", dir, i);
    if (i % 4 == 3) {
      char *tmp = mt_strf("%s/.f%03d.part", dir, i);
      FILE *f = fopen(tmp, "wb");
      fwrite(buf, 1, sizeof buf, f);
      fclose(f);
      rename(tmp, p);
      free(tmp);
    } else {
      FILE *f = fopen(p, "wb");
      fwrite(buf, 1, 1000, f);
      fflush(f);
      msleep(30);
      fwrite(buf + 1000, 1, 2000, f);
      fclose(f);
    }
    free(p);
    msleep(10);
  }
  return NULL;
}

START_TEST(files_once_complete_in_order) {
  char *dir = mt_tmpdir();
  char *old = mt_strf("%s/a_old.bin", dir);
  mt_write(old, "already here");
  char *params = mt_strf("{path: %s, pattern: 'f*.bin', settle_ms: 1000, count: %d, idle_timeout: 30, "
                         "existing: false}", dir, N);
  char err[512];
  myelin_harness *h = myelin_harness_new("folder_source", params, err, sizeof err);
  ck_assert_msg(h != NULL, "%s", err);
  pthread_t th;
  pthread_create(&th, NULL, writer, dir);
  ck_assert_int_eq(myelin_harness_start(h), 0);
  pthread_join(th, NULL);
  ck_assert_uint_eq(myelin_harness_count(h, "out"), N);
  for (int i = 0; i < N; i++) {
    myelin_msg *m = myelin_harness_output(h, "out", (size_t)i);
    ck_assert_str_eq(myelin_msg_kind(m), "tensor");
    char name[64], want[64];
    ck_assert_int_eq(myelin_msg_str(m, "name", name, sizeof name), 0);
    snprintf(want, sizeof want, "f%03d.bin", i);
    ck_assert_str_eq(name, want);
    myelin_tensor t;
    ck_assert_int_eq(myelin_msg_tensor(m, "data", &t), 0);
    ck_assert_int_eq(t.dtype, MYELIN_U1);
    ck_assert_uint_eq(t.count, 3000);
    char buf[3000];
    content(i, buf, sizeof buf);
    ck_assert_mem_eq(t.data, buf, sizeof buf);
  }
  myelin_harness_free(h);
  free(params);
  free(old);
  free(dir);
}
END_TEST

START_TEST(errors_and_pipeline) {
  char err[512];
  myelin_harness *h = myelin_harness_new("folder_source", "{path: /nonexistent/in}", err, sizeof err);
  if (h) {
    ck_assert_str_ne(myelin_harness_error(h), "");
    myelin_harness_free(h);
  } else {
    ck_assert_msg(strstr(err, "/nonexistent/in") != NULL, "%s", err);
  }
  const char *bin = mt_env("MYELIN_BIN", "myelin");
  if (access(bin, X_OK) != 0) MT_SKIP("the CLI %s is not built", bin);
  char *dir = mt_tmpdir();
  char *in = mt_strf("%s/in", dir);
  mkdir(in, 0755);
  for (int i = 0; i < 3; i++) {
    char *p = mt_strf("%s/x%d.txt", in, i);
    mt_write(p, "hello");
    free(p);
  }
  char *yaml = mt_strf("%s/p.yaml", dir);
  char *text = mt_strf("name: drop\nstages:\n  - {id: in, plugin: folder_source, params: {path: %s, "
                       "settle_ms: 50, idle_timeout: 0.5}}\n  - {id: out, plugin: file_sink, inputs: [in], "
                       "params: {path: %s/out.mpk}}\n", in, dir);
  mt_write(yaml, text);
  char *cmd = mt_strf("%s run %s && %s cat %s/out.mpk", bin, yaml, bin, dir);
  char *o = NULL;
  int rc = mt_run(cmd, &o);
  ck_assert_msg(rc == 0, "%s", o);
  ck_assert_msg(strstr(o, "x0.txt") && strstr(o, "x2.txt"), "%s", o);
  free(o);
  free(cmd);
  free(text);
  free(yaml);
  free(in);
  free(dir);
}
END_TEST

int main(void) {
  Suite *s = suite_create("folder_source");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 100);
  tcase_add_test(tc, files_once_complete_in_order);
  tcase_add_test(tc, errors_and_pipeline);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
