/*
 * test_watch.c — the folder watch (runtime/src/watch.c).
 *
 * A writer thread produces 200 files slowly, in pieces: half written in
 * place (2 pieces with a pause), half written under a dot-name and renamed
 * into place. The watch must report each exactly once, complete (full size
 * when reported), in name order. Also: pattern and dot-file filtering,
 * skip_existing, no second report after a rewrite, a clear error for a
 * missing folder.
 */
#include <pthread.h>
#include <time.h>
#include <uv.h>

#include "myelin/watch.h"
#include "testutil.h"

#define NFILES 200
#define PIECE 1000

typedef struct ctx {
  char *dir;
  int count;
  int bad_size;
  int out_of_order;
  int dup;
  char last[64];
  int seen[NFILES];
  int stop_at;
  char *late_file; /* written 30 ms after the watch started */
  uv_timer_t deadline, late;
  myelin_watch *w;
} ctx;

static void msleep(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static void on_file(myelin_watch *w, const char *path, const char *name, void *arg) {
  ctx *c = arg;
  long sz = mt_file_size(path);
  if (sz != 2 * PIECE) c->bad_size++;
  if (c->last[0] && strcmp(name, c->last) <= 0) c->out_of_order++;
  snprintf(c->last, sizeof c->last, "%s", name);
  int i;
  if (sscanf(name, "vol%d.dat", &i) == 1 && i >= 0 && i < NFILES) {
    if (c->seen[i]++) c->dup++;
  }
  c->count++;
  if (c->count == c->stop_at) {
    myelin_watch_close(w);
    uv_close((uv_handle_t *)&c->deadline, NULL);
  }
}

static void on_deadline(uv_timer_t *t) {
  ctx *c = t->data;
  myelin_watch_close(c->w);
  uv_close((uv_handle_t *)t, NULL);
}

static void write_piece(const char *path, const char *mode, char fill) {
  FILE *f = fopen(path, mode);
  ck_assert_ptr_nonnull(f);
  char buf[PIECE];
  memset(buf, fill, sizeof buf);
  fwrite(buf, 1, sizeof buf, f);
  fclose(f);
}

static int g_nfiles = NFILES; /* set before the writer thread starts */

static void *writer(void *arg) {
  const char *dir = arg;
  for (int i = 0; i < g_nfiles; i++) {
    char *final = mt_strf("%s/vol%04d.dat", dir, i);
    if (i % 2 == 0) { /* in place, two pieces */
      write_piece(final, "wb", 'a');
      msleep(15);
      write_piece(final, "ab", 'b');
    } else { /* hidden temporary, then renamed into place */
      char *tmp = mt_strf("%s/.vol%04d.tmp", dir, i);
      write_piece(tmp, "wb", 'a');
      msleep(5);
      write_piece(tmp, "ab", 'b');
      ck_assert_int_eq(rename(tmp, final), 0);
      free(tmp);
    }
    if (i % 10 == 0) msleep(20);
    free(final);
  }
  return NULL;
}

static void on_late(uv_timer_t *t) {
  ctx *c = t->data;
  write_piece(c->late_file, "wb", 'a');
  write_piece(c->late_file, "ab", 'a');
  uv_close((uv_handle_t *)t, NULL);
}

static void run_watch(ctx *c, myelin_watch_opts *o, int timeout_ms) {
  uv_loop_t loop;
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  char err[256];
  ck_assert_msg(myelin_watch_start(&loop, o, on_file, c, &c->w, err, sizeof err) == 0, "%s", err);
  uv_timer_init(&loop, &c->deadline);
  c->deadline.data = c;
  uv_timer_start(&c->deadline, on_deadline, (uint64_t)timeout_ms, 0);
  if (c->late_file) {
    uv_timer_init(&loop, &c->late);
    c->late.data = c;
    uv_timer_start(&c->late, on_late, 30, 0);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(uv_loop_close(&loop), 0); /* every handle closed, memory freed */
}

static void files_in_pieces(int nfiles, int poll_only) {
  ctx c;
  memset(&c, 0, sizeof c);
  c.dir = mt_tmpdir();
  c.stop_at = nfiles;
  g_nfiles = nfiles;
  char *notes = mt_strf("%s/notes.txt", c.dir);
  mt_write(notes, "not matched by the pattern\n");
  free(notes);
  pthread_t th;
  ck_assert_int_eq(pthread_create(&th, NULL, writer, c.dir), 0);
  myelin_watch_opts o = {.dir = c.dir, .pattern = "vol*.dat", .settle_ms = 1000, .poll_only = poll_only};
  run_watch(&c, &o, 120000);
  pthread_join(th, NULL);
  ck_assert_int_eq(c.count, nfiles);
  ck_assert_int_eq(c.bad_size, 0);
  ck_assert_int_eq(c.out_of_order, 0);
  ck_assert_int_eq(c.dup, 0);
  for (int i = 0; i < nfiles; i++) ck_assert_int_eq(c.seen[i], 1);
  free(c.dir);
}

START_TEST(two_hundred_files_in_pieces) { files_in_pieces(NFILES, 0); }
END_TEST

START_TEST(polling_fallback) { files_in_pieces(40, 1); }
END_TEST

/* After the first report, rewriting a file or adding non-matching / dot
 * files reports nothing more; skip_existing hides files already there. */
START_TEST(once_and_filters) {
  ctx c;
  memset(&c, 0, sizeof c);
  c.dir = mt_tmpdir();
  char *old = mt_strf("%s/vol0000.dat", c.dir);
  write_piece(old, "wb", 'x');
  write_piece(old, "ab", 'x');
  c.stop_at = 1000; /* never: the deadline ends the run */
  myelin_watch_opts o = {.dir = c.dir, .pattern = "vol*.dat", .settle_ms = 50, .skip_existing = 1};
  c.late_file = mt_strf("%s/vol0001.dat", c.dir);
  char *dot = mt_strf("%s/.vol0002.dat", c.dir), *other = mt_strf("%s/other.bin", c.dir);
  write_piece(dot, "wb", 'a');
  write_piece(other, "wb", 'a');
  run_watch(&c, &o, 600);
  ck_assert_int_eq(c.count, 1);
  ck_assert_int_eq(c.seen[1], 1);
  ck_assert_int_eq(c.seen[0], 0);

  /* a second watch on the same folder without skip_existing sees both */
  ctx d;
  memset(&d, 0, sizeof d);
  d.stop_at = 1000;
  myelin_watch_opts o2 = {.dir = c.dir, .pattern = "vol*.dat", .settle_ms = 50};
  run_watch(&d, &o2, 600);
  ck_assert_int_eq(d.count, 2);
  free(dot);
  free(other);
  free(old);
  free(c.late_file);
  free(c.dir);
}
END_TEST

START_TEST(missing_folder_is_an_error) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  myelin_watch *w = NULL;
  char err[256] = "";
  myelin_watch_opts o = {.dir = "/nonexistent/myelin-watch"};
  ck_assert_int_lt(myelin_watch_start(&loop, &o, on_file, NULL, &w, err, sizeof err), 0);
  ck_assert_ptr_null(w);
  ck_assert_msg(strstr(err, "/nonexistent/myelin-watch") != NULL, "%s", err);
  uv_loop_close(&loop);
}
END_TEST

int main(void) {
  Suite *s = suite_create("watch");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 170);
  tcase_add_test(tc, two_hundred_files_in_pieces);
  tcase_add_test(tc, polling_fallback);
  tcase_add_test(tc, once_and_filters);
  tcase_add_test(tc, missing_folder_is_an_error);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
