/*
 * test_word_source.c — word_source through the harness, one family per
 * format: BIDS events.tsv (n/a, where, duration), Gentle align.csv without a
 * header (unaligned words interpolated by hand-computed slots, quoted
 * commas), CSV with a header, TextGrid in the long (MFA, two tiers), short
 * and UTF-16 formats (the same words from each); the missing-timing modes;
 * globs with BIDS context; and errors naming file and line.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "myelin/harness.h"
#include "testutil.h"

/* Runs word_source on params; returns the harness (caller frees) or NULL with
 * the error in err. */
static myelin_harness *run_source(const char *params, char *err, size_t n) {
  myelin_harness *h = myelin_harness_new("word_source", params, err, n);
  if (!h) return NULL;
  if (myelin_harness_start(h) != 0) {
    snprintf(err, n, "%s", myelin_harness_error(h));
    myelin_harness_free(h);
    return NULL;
  }
  return h;
}

static myelin_msg *only_msg(myelin_harness *h) {
  ck_assert_uint_eq(myelin_harness_count(h, "words"), 1);
  return myelin_harness_output(h, "words", 0);
}

/* Checks words and timings of m against the expected arrays. */
static void check_words(const myelin_msg *m, size_t n, const char *const *words, const double *on,
                        const double *off) {
  ck_assert_str_eq(myelin_msg_kind(m), "words");
  myelin_obj w = myelin_msg_get(m, "words");
  ck_assert_uint_eq(myelin_obj_len(w), n);
  myelin_tensor to, tf;
  ck_assert_int_eq(myelin_msg_tensor(m, "onset", &to), 0);
  ck_assert_int_eq(myelin_msg_tensor(m, "offset", &tf), 0);
  ck_assert_int_eq(to.dtype, MYELIN_F8);
  ck_assert_uint_eq(to.count, n);
  ck_assert_uint_eq(tf.count, n);
  for (size_t i = 0; i < n; i++) {
    char buf[256];
    ck_assert_int_eq(myelin_obj_str_copy(myelin_obj_at(w, i), buf, sizeof buf), 0);
    ck_assert_msg(!strcmp(buf, words[i]), "word %zu: '%s', expected '%s'", i, buf, words[i]);
    ck_assert_msg(fabs(((const double *)to.data)[i] - on[i]) < 1e-12, "onset %zu: %.17g vs %.17g", i,
                  ((const double *)to.data)[i], on[i]);
    ck_assert_msg(fabs(((const double *)tf.data)[i] - off[i]) < 1e-12, "offset %zu: %.17g vs %.17g", i,
                  ((const double *)tf.data)[i], off[i]);
  }
}

static void check_text(const myelin_msg *m, const char *key, const char *want) {
  char buf[256];
  myelin_msg_text(m, key, buf, sizeof buf);
  ck_assert_msg(!strcmp(buf, want), "%s: '%s', expected '%s'", key, buf, want);
}

START_TEST(tsv_bids_events) {
  char *d = mt_tmpdir();
  char *p = mt_strf("%s/sub-03_task-pieman_run-02_events.tsv", d);
  mt_write(p, "onset\tduration\ttrial_type\tword\n"
              "0.5\t0.25\tword\tThe\n"
              "0.75\t0.3\tword\tman,\n"
              "1.0\tn/a\tnoise\tn/a\n"
              "1.25\t0.5\tword\t\"said\"\n"
              "n/a\tn/a\tword\thello\n"
              "2.5\t0.5\tword\tthere.\r\n");
  char err[1024];
  myelin_harness *h = run_source(mt_strf("{path: '%s', where: trial_type=word}", p), err, sizeof err);
  ck_assert_msg(h != NULL, "%s", err);
  const myelin_msg *m = only_msg(h);
  /* "hello" lies between said (1.25..1.75) and there. (2.5): one slot. */
  const char *w[] = {"The", "man,", "\"said\"", "hello", "there."};
  double on[] = {0.5, 0.75, 1.25, 1.75, 2.5}, off[] = {0.75, 1.05, 1.75, 2.5, 3.0};
  check_words(m, 5, w, on, off);
  check_text(m, "task", "pieman");
  check_text(m, "run", "2");
  check_text(m, "subject", "03");
  int64_t run;
  ck_assert_int_eq(myelin_msg_int(m, "run", &run), 0); /* an integer, as fmri_source's */
  myelin_tensor ip;
  ck_assert_int_eq(myelin_msg_tensor(m, "interpolated", &ip), 0);
  const uint8_t *ipd = ip.data;
  ck_assert(ipd[3] == 1 && ipd[0] == 0 && ipd[4] == 0);
  ck_assert_int_eq(myelin_harness_counter(h, "interpolated"), 1);
  myelin_harness_free(h);
}
END_TEST

/* Gentle's align.csv: word, aligned word, onset, offset; unaligned words
 * have empty fields. */
static const char *gentle_csv = "So,so,0.10,0.30\n"
                                "\"well, um\",<unk>,,\n"
                                "uh,,,\n"
                                "I,i,1.00,1.20\n"
                                "went,went,1.30,1.60\n"
                                "home,,,\n";

START_TEST(csv_gentle_interpolate) {
  char *d = mt_tmpdir();
  char *p = mt_strf("%s/align.csv", d);
  mt_write(p, gentle_csv);
  char err[1024];
  myelin_harness *h = run_source(mt_strf("{path: '%s', task: '{dir}'}", p), err, sizeof err);
  ck_assert_msg(h != NULL, "%s", err);
  const myelin_msg *m = only_msg(h);
  /* Two unaligned words share 0.30 .. 1.00: slots of 0.35 s; "home" is after
   * the last aligned word: dropped. */
  const char *w[] = {"So", "well, um", "uh", "I", "went"};
  double on[] = {0.10, 0.30, 0.65, 1.00, 1.30}, off[] = {0.30, 0.65, 1.00, 1.20, 1.60};
  check_words(m, 5, w, on, off);
  int64_t dropped;
  ck_assert_int_eq(myelin_msg_int(m, "dropped", &dropped), 0);
  ck_assert_int_eq(dropped, 1);
  check_text(m, "task", d + strlen("/tmp/")); /* {dir}: the folder's name */
  myelin_harness_free(h);

  h = run_source(mt_strf("{path: '%s', missing: drop}", p), err, sizeof err);
  ck_assert_msg(h != NULL, "%s", err);
  const char *w2[] = {"So", "I", "went"};
  double on2[] = {0.10, 1.00, 1.30}, off2[] = {0.30, 1.20, 1.60};
  check_words(only_msg(h), 3, w2, on2, off2);
  ck_assert_int_eq(myelin_harness_counter(h, "dropped"), 3);
  myelin_harness_free(h);

  h = run_source(mt_strf("{path: '%s', missing: error}", p), err, sizeof err);
  ck_assert_ptr_null(h);
  ck_assert_msg(strstr(err, mt_strf("%s:2: word 'well, um' has no onset", p)), "%s", err);
}
END_TEST

START_TEST(csv_header_columns) {
  char *d = mt_tmpdir();
  char *p = mt_strf("%s/story.csv", d);
  mt_write(p, "\xEF\xBB\xBFtoken,start,stop,speaker\n"
              "Once,0,0.4,A\n"
              "upon,0.4,0.7,A\n"
              "\n"
              "a,0.7,0.8,A\n");
  char err[1024];
  myelin_harness *h = run_source(mt_strf("{path: '%s', task: story, run: '1'}", p), err, sizeof err);
  ck_assert_msg(h != NULL, "%s", err);
  const char *w[] = {"Once", "upon", "a"};
  double on[] = {0, 0.4, 0.7}, off[] = {0.4, 0.7, 0.8};
  const myelin_msg *m = only_msg(h);
  check_words(m, 3, w, on, off);
  check_text(m, "task", "story");
  myelin_harness_free(h);
  /* By number, forcing no header: the header row is then a bad onset. */
  h = run_source(mt_strf("{path: '%s', header: 'false', word_column: '4', onset_column: '2'}", p), err,
                 sizeof err);
  ck_assert_ptr_null(h);
  ck_assert_msg(strstr(err, mt_strf("%s:1: onset 'start' is not a number", p)), "%s", err);
  /* A named column that does not exist lists the header. */
  h = run_source(mt_strf("{path: '%s', word_column: lemma}", p), err, sizeof err);
  ck_assert_ptr_null(h);
  ck_assert_msg(strstr(err, "no column 'lemma'") && strstr(err, "token, start, stop, speaker"), "%s", err);
}
END_TEST

static const char *tg_long = "File type = \"ooTextFile\"\n"
                             "Object class = \"TextGrid\"\n"
                             "\n"
                             "xmin = 0 \n"
                             "xmax = 2.5 \n"
                             "tiers? <exists> \n"
                             "size = 2 \n"
                             "item []: \n"
                             "    item [1]:\n"
                             "        class = \"IntervalTier\" \n"
                             "        name = \"words\" \n"
                             "        xmin = 0 \n"
                             "        xmax = 2.5 \n"
                             "        intervals: size = 5 \n"
                             "        intervals [1]:\n"
                             "            xmin = 0 \n"
                             "            xmax = 0.31 \n"
                             "            text = \"\" \n"
                             "        intervals [2]:\n"
                             "            xmin = 0.31 \n"
                             "            xmax = 0.62 \n"
                             "            text = \"say \"\"hi\"\"\" \n"
                             "        intervals [3]:\n"
                             "            xmin = 0.62 \n"
                             "            xmax = 1.1 \n"
                             "            text = \"sp\" \n"
                             "        intervals [4]:\n"
                             "            xmin = 1.1 \n"
                             "            xmax = 1.9 \n"
                             "            text = \"caf\xC3\xA9\" \n"
                             "        intervals [5]:\n"
                             "            xmin = 1.9 \n"
                             "            xmax = 2.5 \n"
                             "            text = \"2\" \n"
                             "    item [2]:\n"
                             "        class = \"IntervalTier\" \n"
                             "        name = \"phones\" \n"
                             "        xmin = 0 \n"
                             "        xmax = 2.5 \n"
                             "        intervals: size = 1 \n"
                             "        intervals [1]:\n"
                             "            xmin = 0 \n"
                             "            xmax = 2.5 \n"
                             "            text = \"AH0\" \n";

static const char *tg_short = "File type = \"ooTextFile\"\n"
                              "Object class = \"TextGrid\"\n"
                              "\n"
                              "0\n2.5\n<exists>\n2\n"
                              "\"TextTier\"\n\"events\"\n0\n2.5\n1\n0.5\n\"click\"\n"
                              "\"IntervalTier\"\n\"speaker - words\"\n0\n2.5\n5\n"
                              "0\n0.31\n\"\"\n0.31\n0.62\n\"say \"\"hi\"\"\"\n0.62\n1.1\n\"sp\"\n"
                              "1.1\n1.9\n\"caf\xC3\xA9\"\n1.9\n2.5\n\"2\"\n";

static const char *tg_words[] = {"say \"hi\"", "caf\xC3\xA9", "2"};
static const double tg_on[] = {0.31, 1.1, 1.9}, tg_off[] = {0.62, 1.9, 2.5};

START_TEST(textgrid_long_short_utf16) {
  char *d = mt_tmpdir();
  char err[1024];
  char *pl = mt_strf("%s/sub-01_task-tg_run-1.TextGrid", d), *ps = mt_strf("%s/short.textgrid", d);
  mt_write(pl, tg_long);
  mt_write(ps, tg_short);
  myelin_harness *h = run_source(mt_strf("{path: '%s'}", pl), err, sizeof err);
  ck_assert_msg(h != NULL, "%s", err);
  check_words(only_msg(h), 3, tg_words, tg_on, tg_off);
  myelin_harness_free(h);
  h = run_source(mt_strf("{path: '%s'}", ps), err, sizeof err); /* tier "speaker - words" */
  ck_assert_msg(h != NULL, "%s", err);
  check_words(only_msg(h), 3, tg_words, tg_on, tg_off);
  myelin_harness_free(h);
  /* UTF-16LE with a BOM, as Praat writes non-ASCII labels. */
  char *pu = mt_strf("%s/utf16.TextGrid", d);
  FILE *f = fopen(pu, "wb");
  ck_assert_ptr_nonnull(f);
  fputc(0xFF, f), fputc(0xFE, f);
  for (const unsigned char *c = (const unsigned char *)tg_long; *c; c++) {
    unsigned cp = *c;
    if (*c == 0xC3) cp = 0xC0 | (c[1] & 0x3F) | ((*c & 0x1F) << 6), c++; /* é */
    fputc((int)(cp & 0xFF), f), fputc((int)(cp >> 8), f);
  }
  fclose(f);
  h = run_source(mt_strf("{path: '%s'}", pu), err, sizeof err);
  ck_assert_msg(h != NULL, "%s", err);
  check_words(only_msg(h), 3, tg_words, tg_on, tg_off);
  myelin_harness_free(h);
  /* An explicit tier; a missing one names the tiers there are. */
  h = run_source(mt_strf("{path: '%s', tier: phones}", pl), err, sizeof err);
  ck_assert_msg(h != NULL, "%s", err);
  const char *ph[] = {"AH0"};
  double p0[] = {0}, p1[] = {2.5};
  check_words(only_msg(h), 1, ph, p0, p1);
  myelin_harness_free(h);
  h = run_source(mt_strf("{path: '%s', tier: word}", pl), err, sizeof err);
  ck_assert_ptr_null(h);
  ck_assert_msg(strstr(err, "no interval tier named \"word\"") && strstr(err, "\"words\", \"phones\""), "%s",
                err);
}
END_TEST

START_TEST(textgrid_errors_name_line) {
  char *d = mt_tmpdir();
  char err[1024];
  char *p = mt_strf("%s/bad.TextGrid", d);
  char *bad = strdup(tg_long);
  char *x = strstr(bad, "xmax = 1.1");
  memcpy(x, "xmax = ab ", 10); /* line 25: a label, so the value found is line 26 */
  mt_write(p, bad);
  free(bad);
  myelin_harness *h = run_source(mt_strf("{path: '%s'}", p), err, sizeof err);
  ck_assert_ptr_null(h);
  ck_assert_msg(strstr(err, mt_strf("%s:26: expected a number (xmax)", p)), "%s", err);
  mt_write(p, "File type = \"ooTextFile\"\nObject class = \"Pitch 1\"\n");
  h = run_source(mt_strf("{path: '%s'}", p), err, sizeof err);
  ck_assert_ptr_null(h);
  ck_assert_msg(strstr(err, "not a Praat TextGrid"), "%s", err);
  /* Truncated file */
  mt_write(p, "File type = \"ooTextFile\"\nObject class = \"TextGrid\"\n0\n2.5\n<exists>\n1\n"
              "\"IntervalTier\"\n\"words\"\n0\n2.5\n2\n0\n1\n\"a\"\n");
  h = run_source(mt_strf("{path: '%s'}", p), err, sizeof err);
  ck_assert_ptr_null(h);
  ck_assert_msg(strstr(err, "expected a number (xmin / number), found the end of the file"), "%s", err);
  /* Overlapping intervals */
  mt_write(p, "File type = \"ooTextFile\"\nObject class = \"TextGrid\"\n0\n2.5\n<exists>\n1\n"
              "\"IntervalTier\"\n\"words\"\n0\n2.5\n2\n0\n1\n\"a\"\n0.5\n2\n\"b\"\n");
  h = run_source(mt_strf("{path: '%s'}", p), err, sizeof err);
  ck_assert_ptr_null(h);
  ck_assert_msg(strstr(err, mt_strf("%s:17: interval [0.5, 2] of tier \"words\" is before", p)), "%s", err);
}
END_TEST

START_TEST(table_errors_name_line) {
  char *d = mt_tmpdir();
  char err[1024];
  char *p = mt_strf("%s/e.tsv", d);
  mt_write(p, "onset\tduration\tword\n0.5\t0.2\tok\n0.9\tabc\tbad\n");
  myelin_harness *h = run_source(mt_strf("{path: '%s'}", p), err, sizeof err);
  ck_assert_ptr_null(h);
  ck_assert_msg(strstr(err, mt_strf("%s:3: duration 'abc' is not a number", p)), "%s", err);
  mt_write(p, "onset\tduration\tword\n0.5\t0.2\n");
  h = run_source(mt_strf("{path: '%s'}", p), err, sizeof err);
  ck_assert_ptr_null(h);
  ck_assert_msg(strstr(err, mt_strf("%s:2: 2 fields, but the word column is number 3", p)), "%s", err);
  mt_write(p, "onset\tduration\tstim\n0.5\t0.2\tx\n");
  h = run_source(mt_strf("{path: '%s'}", p), err, sizeof err);
  ck_assert_ptr_null(h);
  ck_assert_msg(strstr(err, "no word column in the header (name it with word_column)"), "%s", err);
  char *c = mt_strf("%s/q.csv", d);
  mt_write(c, "word,onset\na,1\n\"b,2\n");
  h = run_source(mt_strf("{path: '%s'}", c), err, sizeof err);
  ck_assert_ptr_null(h);
  ck_assert_msg(strstr(err, mt_strf("%s:3: a quoted field is never closed", c)), "%s", err);
  mt_write(c, "word,onset,offset\na,1,0.5\n");
  h = run_source(mt_strf("{path: '%s'}", c), err, sizeof err);
  ck_assert_ptr_null(h);
  ck_assert_msg(strstr(err, mt_strf("%s:2: offset 0.5 is before onset 1", c)), "%s", err);
  h = run_source(mt_strf("{path: '%s/none-*.tsv'}", d), err, sizeof err);
  ck_assert_ptr_null(h);
  ck_assert_msg(strstr(err, "no file matches"), "%s", err);
}
END_TEST

START_TEST(glob_one_message_per_file) {
  char *d = mt_tmpdir();
  mt_write(mt_strf("%s/sub-01_task-a_run-1_events.tsv", d), "onset\tduration\tword\n1\t0.5\tx\n");
  mt_write(mt_strf("%s/sub-01_task-a_run-2_events.tsv", d), "onset\tduration\tword\n2\t0.5\ty\n3\t1\tz\n");
  char err[1024];
  myelin_harness *h = run_source(mt_strf("{path: '%s/*_events.tsv', subject: ''}", d), err, sizeof err);
  ck_assert_msg(h != NULL, "%s", err);
  ck_assert_uint_eq(myelin_harness_count(h, "words"), 2);
  const char *w1[] = {"x"}, *w2[] = {"y", "z"};
  double o1[] = {1}, f1[] = {1.5}, o2[] = {2, 3}, f2[] = {2.5, 4};
  check_words(myelin_harness_output(h, "words", 0), 1, w1, o1, f1);
  check_words(myelin_harness_output(h, "words", 1), 2, w2, o2, f2);
  check_text(myelin_harness_output(h, "words", 1), "run", "2");
  ck_assert_int_eq(myelin_harness_counter(h, "words"), 3);
  myelin_harness_free(h);
}
END_TEST

/* chunk: a file as messages of N words, in order, with the file's context;
 * `dropped` on the first only. */
START_TEST(chunk_splits_a_file) {
  char *d = mt_tmpdir();
  char *p = mt_strf("%s/align.csv", d);
  mt_write(p, gentle_csv);
  char err[1024];
  myelin_harness *h = run_source(mt_strf("{path: '%s', task: story, chunk: 2}", p), err, sizeof err);
  ck_assert_msg(h != NULL, "%s", err);
  ck_assert_uint_eq(myelin_harness_count(h, "words"), 3);
  const char *w[] = {"So", "well, um", "uh", "I", "went"};
  double on[] = {0.10, 0.30, 0.65, 1.00, 1.30}, off[] = {0.30, 0.65, 1.00, 1.20, 1.60};
  for (size_t i = 0; i < 3; i++) {
    const myelin_msg *m = myelin_harness_output(h, "words", i);
    check_words(m, i < 2 ? 2 : 1, w + 2 * i, on + 2 * i, off + 2 * i);
    check_text(m, "task", "story");
    check_text(m, "source", p);
    uint64_t seq;
    ck_assert_int_eq(myelin_msg_uint(m, "seq", &seq), 0);
    ck_assert_uint_eq(seq, i);
    int64_t dropped;
    ck_assert_int_eq(myelin_msg_int(m, "dropped", &dropped), i ? MYELIN_ENOENT : 0);
    myelin_tensor ip;
    ck_assert_int_eq(myelin_msg_tensor(m, "interpolated", &ip), 0);
    ck_assert_uint_eq(ip.count, i < 2 ? 2 : 1);
    ck_assert_int_eq(((const uint8_t *)ip.data)[0], i == 1); /* "uh" is interpolated */
  }
  myelin_harness_free(h);
}
END_TEST

/* The message passes its schema through a real pipeline (--check-messages). */
START_TEST(schema_checked_in_pipeline) {
  char *d = mt_tmpdir();
  char *p = mt_strf("%s/align.csv", d), *y = mt_strf("%s/p.yaml", d);
  mt_write(p, gentle_csv);
  mt_write(y, mt_strf("name: t\nstages:\n  - {id: w, plugin: word_source, params: {path: '%s'}}\n"
                      "  - {id: out, plugin: file_sink, inputs: [w], params: {path: '%s/w.mpk'}}\n",
                      p, d));
  char *out = NULL;
  int rc = mt_run(mt_strf("%s run --quiet --check-messages %s", mt_env("MYELIN_BIN", "myelin"), y), &out);
  ck_assert_msg(rc == 0, "%s", out);
  free(out);
  ck_assert_int_gt(mt_file_size(mt_strf("%s/w.mpk", d)), 100);
}
END_TEST

int main(void) {
  Suite *s = suite_create("word_source");
  TCase *tc = tcase_create("formats");
  tcase_add_test(tc, tsv_bids_events);
  tcase_add_test(tc, csv_gentle_interpolate);
  tcase_add_test(tc, csv_header_columns);
  tcase_add_test(tc, textgrid_long_short_utf16);
  tcase_add_test(tc, textgrid_errors_name_line);
  tcase_add_test(tc, table_errors_name_line);
  tcase_add_test(tc, glob_one_message_per_file);
  tcase_add_test(tc, chunk_splits_a_file);
  tcase_add_test(tc, schema_checked_in_pipeline);
  suite_add_tcase(s, tc);
  return mt_run_suite(s);
}
