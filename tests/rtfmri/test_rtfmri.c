/*
 * tests/rtfmri — pipelines/rtfmri.yaml end to end, as a user runs it:
 * examples/rtfmri/fake_scanner.py replays the test mosaic series into a
 * watched folder (chunked writes under a dot-name, then a rename), the
 * pipeline realigns, smooths and computes ROI feedback, sends it to a
 * display (a TCP listener here) and records volumes and feedback.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

#include "myelin/io.h"
#include "myelin/myelin.h"
#include "nifti.h"
#include "testutil.h"

typedef struct display {
  int fd;
  size_t messages;
  char first_name[32];
} display;

static void *display_main(void *arg) {
  display *d = arg;
  int c = accept(d->fd, NULL, NULL);
  if (c < 0) return NULL;
  FILE *f = fdopen(c, "rb");
  myelin_reader *r = myelin_reader_new(f, 0);
  myelin_msg *m;
  char err[256];
  while (myelin_reader_next(r, &m, err, sizeof err) == 1) {
    if (d->messages++ == 0) myelin_msg_str(m, "name", d->first_name, sizeof d->first_name);
    myelin_msg_unref(m);
  }
  myelin_reader_free(r);
  fclose(f);
  return NULL;
}

static size_t count_messages(const char *path, const char *field) {
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "%s missing", path);
  myelin_reader *r = myelin_reader_new(f, 0);
  myelin_msg *m;
  char err[256];
  size_t n = 0;
  while (myelin_reader_next(r, &m, err, sizeof err) == 1) {
    ck_assert_msg(myelin_obj_exists(myelin_msg_get(m, field)), "%s: a message without %s", path, field);
    n++;
    myelin_msg_unref(m);
  }
  myelin_reader_free(r);
  fclose(f);
  return n;
}

START_TEST(pipeline_end_to_end) {
  const char *bin = mt_env("MYELIN_BIN", "myelin"), *src = mt_env("MYELIN_SOURCE_DIR", ".");
  const char *py = mt_env("MYELIN_PYTHON", "/usr/bin/python3");
  if (access(bin, X_OK) != 0) MT_SKIP("the CLI %s is not built", bin);
  if (access(py, X_OK) != 0) MT_SKIP("%s is missing (fake_scanner.py)", py);
  char *root = mt_tmpdir(), *in = mt_strf("%s/incoming", root), *out = mt_strf("%s/out", root);
  ck_assert_int_eq(mkdir(in, 0755), 0);
  /* ROI: a 4 x 4 x 10 block of the 8 x 8 x 48 mosaic grid (file order) */
  static float mask[8 * 8 * 48];
  for (int z = 10; z < 20; z++)
    for (int y = 2; y < 6; y++)
      for (int x = 2; x < 6; x++)
        mask[x + 8 * (y + 8 * z)] = 1;
  char *roi = mt_strf("%s/roi.nii", root);
  FILE *fp = fopen(roi, "wb");
  const int64_t dims[4] = {8, 8, 48, 1};
  const double aff[16] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1};
  char err[256];
  ck_assert_int_eq(nifti_write_f32(fp, dims, aff, 0, mask, 0, err, sizeof err), 0);
  fclose(fp);
  /* the display: a listener on an ephemeral port */
  display d = {socket(AF_INET, SOCK_STREAM, 0), 0, ""};
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(bind(d.fd, (struct sockaddr *)&a, sizeof a), 0);
  ck_assert_int_eq(listen(d.fd, 1), 0);
  socklen_t al = sizeof a;
  getsockname(d.fd, (struct sockaddr *)&a, &al);
  pthread_t th;
  ck_assert_int_eq(pthread_create(&th, NULL, display_main, &d), 0);
  char *cmd =
      mt_strf("cd %s; (WATCH=%s OUT=%s ROI=%s COUNT=6 DISPLAY_ADDR=127.0.0.1:%d %s run --quiet "
              "%s/pipelines/rtfmri.yaml > run.log 2>&1; echo $? > rc) & "
              "%s %s/examples/rtfmri/fake_scanner.py %s/tests/data/dicom/mosaic_run %s --tr 0.3 --count 6 "
              "> scanner.log && wait; cat rc; cat run.log",
              root, in, out, roi, ntohs(a.sin_port), bin, src, py, src, src, in);
  char *o = NULL;
  ck_assert_int_eq(mt_run(cmd, &o), 0);
  ck_assert_msg(o[0] == '0', "the pipeline failed: %s", o);
  free(o);
  pthread_join(th, NULL);
  close(d.fd);
  ck_assert_uint_eq(d.messages, 6);
  ck_assert_str_eq(d.first_name, "roi_psc");
  ck_assert_uint_eq(count_messages(mt_strf("%s/rtfmri/volumes.mpk", out), "motion"), 6);
  ck_assert_uint_eq(count_messages(mt_strf("%s/rtfmri/feedback.mpk", out), "raw"), 6);
  /* the fake scanner never left a partial file under a final name */
  ck_assert_int_eq(mt_run(mt_strf("ls -A %s | grep -c part", in), NULL), 1);
}
END_TEST

int main(void) {
  Suite *s = suite_create("rtfmri");
  TCase *tc = tcase_create("rtfmri");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, pipeline_end_to_end);
  suite_add_tcase(s, tc);
  return mt_run_suite(s);
}
