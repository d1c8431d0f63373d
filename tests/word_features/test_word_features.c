/*
 * test_word_features.c — word rate, length and log frequency by hand: a
 * SUBTLEX-like list with a header and extra columns, case folding and
 * punctuation, duplicates adding up, a word not in the list, Unicode
 * lengths; errors name the file and line.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "myelin/harness.h"
#include "testutil.h"

static myelin_msg *words_msg(void) {
  static const char *const w[] = {"The", "café,", "\"the\"", "zyzzyva", "Naïve!"};
  myelin_builder *b = myelin_builder_new("words");
  myelin_build_str(b, "task", "story");
  myelin_build_array_begin(b, "words");
  for (int i = 0; i < 5; i++)
    myelin_build_str(b, NULL, w[i]);
  myelin_build_array_end(b);
  int64_t n = 5;
  double *on = myelin_build_tensor(b, "onset", MYELIN_F8, 1, &n);
  for (int i = 0; i < 5; i++)
    on[i] = 0.5 * i;
  return myelin_builder_finish(b);
}

START_TEST(by_hand) {
  char *d = mt_tmpdir(), *f = mt_strf("%s/freq.txt", d);
  mt_write(f, "Word\tFREQcount\tCDcount\nthe\t999\t10\nThe\t1000\t3\ncafé\t9\t1\nnaïve\t99\t2\n");
  char err[512];
  myelin_harness *h = myelin_harness_new(
      "word_features", mt_strf("{features: [rate, length, log_frequency], frequencies: '%s'}", f), err,
      sizeof err);
  ck_assert_msg(h != NULL, "%s", err);
  ck_assert_msg(myelin_harness_push(h, NULL, words_msg()) == 0, "%s", myelin_harness_error(h));
  const myelin_msg *m = myelin_harness_output(h, "features", 0);
  ck_assert_ptr_nonnull(m);
  myelin_tensor x, on;
  ck_assert_int_eq(myelin_msg_tensor(m, "data", &x), 0);
  ck_assert_int_eq(myelin_msg_tensor(m, "onset", &on), 0);
  ck_assert_int_eq(x.shape[0], 5);
  ck_assert_int_eq(x.shape[1], 3);
  const float *v = x.data;
  /* the: 999 + 1000 = 1999 -> log10(2000); café 9 -> 1; zyzzyva 0 -> 0; naïve 99 -> 2 */
  const double want[5][3] = {{1, 3, log10(2000)}, {1, 4, 1}, {1, 3, log10(2000)}, {1, 7, 0}, {1, 5, 2}};
  for (int i = 0; i < 5; i++)
    for (int k = 0; k < 3; k++)
      ck_assert_msg(fabs(v[i * 3 + k] - want[i][k]) < 1e-6, "word %d column %d: %g vs %g", i, k, v[i * 3 + k],
                    want[i][k]);
  ck_assert(fabs(((const double *)on.data)[4] - 2.0) < 1e-12);
  ck_assert_int_eq(myelin_harness_counter(h, "not_in_list"), 1);
  char name[64];
  ck_assert_int_eq(myelin_obj_str_copy(myelin_obj_at(myelin_msg_get(m, "names"), 2), name, sizeof name), 0);
  ck_assert_str_eq(name, "log_frequency");
  myelin_harness_free(h);
}
END_TEST

START_TEST(errors) {
  char *d = mt_tmpdir(), *f = mt_strf("%s/freq.csv", d);
  mt_write(f, "word,count\nthe,12\na,many\n");
  char err[512];
  myelin_harness *h = myelin_harness_new(
      "word_features", mt_strf("{features: [log_frequency], frequencies: '%s'}", f), err, sizeof err);
  ck_assert_ptr_null(h);
  ck_assert_msg(strstr(err, mt_strf("%s:3: count 'many' of 'a' is not a number", f)), "%s", err);
  h = myelin_harness_new("word_features", "{features: [log_frequency]}", err, sizeof err);
  ck_assert_ptr_null(h);
  ck_assert_msg(strstr(err, "log_frequency needs a `frequencies` list"), "%s", err);
  h = myelin_harness_new("word_features", "{features: [surprisal]}", err, sizeof err);
  ck_assert_ptr_null(h);
  ck_assert_msg(strstr(err, "features[0] = 'surprisal'"), "%s", err);
}
END_TEST

int main(void) {
  Suite *s = suite_create("word_features");
  TCase *tc = tcase_create("baseline");
  tcase_add_test(tc, by_hand);
  tcase_add_test(tc, errors);
  suite_add_tcase(s, tc);
  return mt_run_suite(s);
}
