/*
 * test_watch.c — the folder watch (runtime/src/watch.c).
 *
 * A writer thread produces 200 files slowly, in pieces: half written in
 * place (2 pieces with a pause), half written under a dot-name and renamed
 * into place. The watch must report each exactly once, complete (full size
 * when reported), in name order. Also: pattern and dot-file filtering,
 * skip_existing, no second report after a rewrite, a renamed file reported
 * at once while one written in place waits its settle time, a clear error
 * for a missing folder.
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
  for (int i = 0; i < nfiles; i++)
    ck_assert_int_eq(c.seen[i], 1);
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

/* Latency (pipelines/rtfmri.yaml relies on it): a file renamed into the
 * folder is whole, so it is reported as soon as the move is seen, without
 * waiting settle_ms; a file written in place is reported only once it has
 * stopped changing for settle_ms, complete. settle_ms is long (2 s) so the
 * two cases cannot be confused even on a loaded machine. */
typedef struct timing {
  double t0, renamed_at, grown_at; /* seconds since t0 (monotonic) */
  double reported[2];
  long size[2];
  int n;
} timing;

static double mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void on_timed(myelin_watch *w, const char *path, const char *name, void *arg) {
  timing *t = arg;
  int i = strcmp(name, "vol1.dat") == 0 ? 0 : 1;
  t->reported[i] = mono() - t->t0;
  t->size[i] = mt_file_size(path);
  if (++t->n == 2) myelin_watch_close(w);
}

typedef struct timed_writer {
  const char *dir;
  timing *t;
} timed_writer;

static void *timed_writes(void *arg) {
  timed_writer *tw = arg;
  msleep(100);
  char *tmp = mt_strf("%s/.vol1.tmp", tw->dir), *renamed = mt_strf("%s/vol1.dat", tw->dir);
  write_piece(tmp, "wb", 'a');
  write_piece(tmp, "ab", 'b');
  ck_assert_int_eq(rename(tmp, renamed), 0);
  tw->t->renamed_at = mono() - tw->t->t0;
  char *grown = mt_strf("%s/vol2.dat", tw->dir);
  for (int k = 0; k < 8; k++) { /* in place, a piece every 100 ms */
    write_piece(grown, k ? "ab" : "wb", 'c');
    msleep(100);
  }
  tw->t->grown_at = mono() - tw->t->t0;
  free(tmp);
  free(renamed);
  free(grown);
  return NULL;
}

START_TEST(renamed_file_skips_the_settle_time) {
  char *dir = mt_tmpdir();
  timing t;
  memset(&t, 0, sizeof t);
  t.t0 = mono();
  timed_writer tw = {dir, &t};
  uv_loop_t loop;
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  myelin_watch *w;
  char err[256];
  myelin_watch_opts o = {.dir = dir, .pattern = "vol*.dat", .settle_ms = 2000};
  ck_assert_msg(myelin_watch_start(&loop, &o, on_timed, &t, &w, err, sizeof err) == 0, "%s", err);
  pthread_t th;
  ck_assert_int_eq(pthread_create(&th, NULL, timed_writes, &tw), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  pthread_join(th, NULL);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
  printf("renamed file reported %.1f ms after the rename; grown file %.0f ms after its last write\n",
         1000 * (t.reported[0] - t.renamed_at), 1000 * (t.reported[1] - t.grown_at));
  ck_assert_int_eq(t.size[0], 2 * PIECE);
  ck_assert_int_eq(t.size[1], 8 * PIECE);
  ck_assert_msg(t.reported[0] - t.renamed_at < 1.0, "renamed file reported %.3f s after the rename",
                t.reported[0] - t.renamed_at);
  /* the last piece went in before grown_at (then a 100 ms pause) */
  ck_assert_msg(t.reported[1] - t.grown_at > 2.0 - 0.1 - 0.05,
                "grown file reported %.3f s after its last write", t.reported[1] - t.grown_at);
  free(dir);
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
  tcase_add_test(tc, renamed_file_skips_the_settle_time);
  tcase_add_test(tc, missing_folder_is_an_error);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
