/*
 * test_plugin.c — the spike_encoder stage through the harness: message
 * fields and context, agreement with the kernels, batch results identical
 * for 1 and 2 threads and equal to one-sample-at-a-time encoding, delta on
 * series and on streams of volumes, and parameter / input errors.
 */
#include <math.h>

#include "encode.h"
#include "myelin/harness.h"
#include "testutil.h"

static myelin_harness *encoder(const char *params) {
  char err[1024];
  myelin_harness *h = myelin_harness_new("spike_encoder", params, err, sizeof err);
  ck_assert_msg(h != NULL, "harness: %s", err);
  return h;
}

static myelin_msg *sample(const float *x, int64_t n, int64_t index, int64_t epoch, int64_t label) {
  myelin_builder *b = myelin_builder_new("sample");
  myelin_build_tensor_copy(b, "x", MYELIN_F4, 1, &n, x);
  myelin_build_int(b, "label", label);
  myelin_build_int(b, "index", index);
  myelin_build_str(b, "split", "train");
  myelin_build_int(b, "epoch", epoch);
  myelin_msg *m = myelin_builder_finish(b);
  ck_assert_ptr_nonnull(m);
  return m;
}

static uint64_t u(myelin_msg *m, const char *k) {
  uint64_t v = 0;
  ck_assert_msg(myelin_msg_uint(m, k, &v) == 0, "field %s", k);
  return v;
}

static void events_of(myelin_msg *m, myelin_tensor *s, myelin_tensor *un) {
  ck_assert_int_eq(myelin_msg_tensor(m, "step", s), 0);
  ck_assert_int_eq(myelin_msg_tensor(m, "unit", un), 0);
  ck_assert_int_eq(s->dtype, MYELIN_U4);
  ck_assert_int_eq(un->dtype, MYELIN_U4);
  ck_assert_uint_eq(s->count, un->count);
}

START_TEST(rate_message_matches_kernel) {
  float x[10];
  for (int i = 0; i < 10; i++) x[i] = (float)i / 9;
  myelin_harness *h = encoder("{method: rate, steps: 16, seed: 4, dt: 0.002}");
  ck_assert_int_eq(myelin_harness_push(h, NULL, sample(x, 10, 5, 1, 3)), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "spikes"), 1);
  myelin_msg *m = myelin_harness_output(h, "spikes", 0);
  ck_assert_str_eq(myelin_msg_kind(m), "spikes");
  ck_assert_uint_eq(u(m, "n"), 10);
  ck_assert_uint_eq(u(m, "steps"), 16);
  ck_assert_uint_eq(u(m, "seq"), 0);
  ck_assert_uint_eq(u(m, "index"), 5);
  ck_assert_uint_eq(u(m, "epoch"), 1);
  ck_assert_uint_eq(u(m, "label"), 3);
  double dt;
  ck_assert_int_eq(myelin_msg_float(m, "dt", &dt), 0);
  ck_assert_double_eq(dt, 0.002);
  char split[8];
  ck_assert_int_eq(myelin_msg_str(m, "split", split, sizeof split), 0);
  ck_assert_str_eq(split, "train");
  spk_events ev = {0};
  spk_rate_scratch rs = {0};
  spk_rate(x, 10, 16, 1.0, spk_key(4, 1, 5), &rs, &ev);
  myelin_tensor s, un;
  events_of(m, &s, &un);
  ck_assert_uint_eq(s.count, ev.n);
  ck_assert_int_eq(memcmp(s.data, ev.step, ev.n * 4), 0);
  ck_assert_int_eq(memcmp(un.data, ev.unit, ev.n * 4), 0);
  spk_events_free(&ev);
  spk_rate_scratch_free(&rs);
  myelin_harness_free(h);
}
END_TEST

/* A [B, N] u8 batch with labels, as `dataset` sends with whole: true. */
static myelin_msg *batch_msg(int64_t B, int64_t N) {
  myelin_builder *b = myelin_builder_new("tensor");
  int64_t shape[2] = {B, N};
  uint8_t *x = myelin_build_tensor(b, "data", MYELIN_U1, 2, shape);
  for (int64_t i = 0; i < B * N; i++) x[i] = (uint8_t)((i * 7919) % 256);
  int64_t *y = myelin_build_tensor(b, "labels", MYELIN_I8, 1, shape);
  for (int64_t i = 0; i < B; i++) y[i] = i % 10;
  myelin_build_int(b, "epoch", 2);
  myelin_msg *m = myelin_builder_finish(b);
  ck_assert_ptr_nonnull(m);
  return m;
}

START_TEST(batch_same_for_one_and_two_threads) {
  const int64_t B = 700, N = 30; /* more than one block of rows per thread */
  myelin_harness *h1 = encoder("{steps: 8, gain: 0.00392156862745098, batch: true, threads: 1, seed: 9}");
  myelin_harness *h2 = encoder("{steps: 8, gain: 0.00392156862745098, batch: true, threads: 2, seed: 9}");
  myelin_msg *in = batch_msg(B, N);
  ck_assert_int_eq(myelin_harness_push(h1, NULL, myelin_msg_ref(in)), 0);
  ck_assert_int_eq(myelin_harness_push(h2, NULL, myelin_msg_ref(in)), 0);
  ck_assert_uint_eq(myelin_harness_count(h1, "spikes"), (size_t)B);
  ck_assert_uint_eq(myelin_harness_count(h2, "spikes"), (size_t)B);
  /* and one sample at a time, index = row, gives the same events */
  myelin_harness *hs = encoder("{steps: 8, gain: 0.00392156862745098, seed: 9}");
  myelin_tensor x;
  ck_assert_int_eq(myelin_msg_tensor(in, "data", &x), 0);
  size_t total = 0;
  for (int64_t r = 0; r < B; r++) {
    myelin_msg *a = myelin_harness_output(h1, "spikes", (size_t)r);
    myelin_msg *b = myelin_harness_output(h2, "spikes", (size_t)r);
    size_t la, lb;
    const uint8_t *ba = myelin_msg_bytes(a, &la), *bb = myelin_msg_bytes(b, &lb);
    ck_assert_uint_eq(la, lb);
    ck_assert_int_eq(memcmp(ba, bb, la), 0);
    ck_assert_uint_eq(u(a, "index"), (uint64_t)r);
    ck_assert_uint_eq(u(a, "label"), (uint64_t)(r % 10));
    ck_assert_uint_eq(u(a, "seq"), (uint64_t)r);
    ck_assert_uint_eq(u(a, "epoch"), 2);
    myelin_builder *sb = myelin_builder_new("sample");
    myelin_build_tensor_copy(sb, "x", MYELIN_U1, 1, &N, (const uint8_t *)x.data + r * N);
    myelin_build_int(sb, "index", r);
    myelin_build_int(sb, "epoch", 2);
    ck_assert_int_eq(myelin_harness_push(hs, NULL, myelin_builder_finish(sb)), 0);
    myelin_msg *c = myelin_harness_output(hs, "spikes", (size_t)r);
    myelin_tensor s1, u1, s2, u2;
    events_of(a, &s1, &u1);
    events_of(c, &s2, &u2);
    ck_assert_uint_eq(s1.count, s2.count);
    ck_assert_int_eq(memcmp(s1.data, s2.data, s1.nbytes), 0);
    ck_assert_int_eq(memcmp(u1.data, u2.data, u1.nbytes), 0);
    total += s1.count;
  }
  ck_assert_uint_gt(total, 0);
  myelin_msg_unref(in);
  myelin_harness_free(h1);
  myelin_harness_free(h2);
  myelin_harness_free(hs);
}
END_TEST

START_TEST(latency_and_regular_through_plugin) {
  const float x[4] = {1.0f, 0.5f, 0.0f, 0.25f};
  myelin_harness *h = encoder("{method: latency, steps: 5, threshold: 0.1}");
  ck_assert_int_eq(myelin_harness_push(h, NULL, sample(x, 4, 0, 0, 0)), 0);
  myelin_tensor s, un;
  events_of(myelin_harness_output(h, "spikes", 0), &s, &un);
  const uint32_t ws[] = {0, 2, 3}, wu[] = {0, 1, 3};
  ck_assert_uint_eq(s.count, 3);
  ck_assert_int_eq(memcmp(s.data, ws, 12), 0);
  ck_assert_int_eq(memcmp(un.data, wu, 12), 0);
  myelin_harness_free(h);
  h = encoder("{method: regular, steps: 4, gain: 1.0}");
  ck_assert_int_eq(myelin_harness_push(h, NULL, sample(x, 4, 0, 0, 0)), 0);
  ck_assert_int_eq(myelin_harness_push(h, NULL, sample(x, 4, 1, 0, 0)), 0);
  for (int k = 0; k < 2; k++) { /* state is fresh for each sample */
    events_of(myelin_harness_output(h, "spikes", (size_t)k), &s, &un);
    /* unit0: v=1,2>1 at t1, 1, 2>1 at t3; unit1: 0.5,1,1.5>1 at t2 */
    const uint32_t rs[] = {1, 2, 3}, ru[] = {0, 1, 0};
    ck_assert_uint_eq(s.count, 3);
    ck_assert_int_eq(memcmp(s.data, rs, 12), 0);
    ck_assert_int_eq(memcmp(un.data, ru, 12), 0);
  }
  myelin_harness_free(h);
}
END_TEST

static myelin_msg *volume(const float *v, int64_t n, const char *subject, int64_t index) {
  myelin_builder *b = myelin_builder_new("volume");
  myelin_build_tensor_copy(b, "data", MYELIN_F4, 1, &n, v);
  myelin_build_str(b, "subject", subject);
  myelin_build_int(b, "index", index);
  myelin_msg *m = myelin_builder_finish(b);
  ck_assert_ptr_nonnull(m);
  return m;
}

START_TEST(delta_series_and_volume_stream) {
  enum { T = 300 };
  float x[T * 2];
  for (int t = 0; t < T; t++) {
    x[2 * t] = (float)sin(2 * M_PI * t / 150.0);
    x[2 * t + 1] = 0.0f;
  }
  myelin_harness *h = encoder("{method: delta, threshold: 0.1}");
  myelin_builder *b = myelin_builder_new("tensor");
  myelin_build_tensor_copy(b, "data", MYELIN_F4, 2, (const int64_t[]){T, 2}, x);
  ck_assert_int_eq(myelin_harness_push(h, NULL, myelin_builder_finish(b)), 0);
  myelin_msg *m = myelin_harness_output(h, "spikes", 0);
  ck_assert_uint_eq(u(m, "n"), 4);
  ck_assert_uint_eq(u(m, "steps"), T);
  myelin_tensor s, un;
  events_of(m, &s, &un);
  double rec = 0;
  size_t k = 0;
  for (uint32_t t = 0; t < T; t++) {
    for (; k < s.count && ((const uint32_t *)s.data)[k] == t; k++) {
      uint32_t unit = ((const uint32_t *)un.data)[k];
      ck_assert_uint_lt(unit, 2); /* the flat channel never spikes */
      rec += unit ? -0.1 : 0.1;
    }
    ck_assert_msg(fabs(rec - x[2 * t]) < 0.1, "t=%u rec=%g x=%g", t, rec, x[2 * t]);
  }
  /* volumes: first is the reference, then one message per volume */
  const float v0[3] = {0, 0, 0}, v1[3] = {0.25f, -0.25f, 0.05f}, v2[3] = {0.25f, -0.25f, 0.05f};
  ck_assert_int_eq(myelin_harness_push(h, NULL, volume(v0, 3, "s1", 0)), 0);
  ck_assert_int_eq(myelin_harness_push(h, NULL, volume(v1, 3, "s1", 1)), 0);
  ck_assert_int_eq(myelin_harness_push(h, NULL, volume(v2, 3, "s1", 2)), 0);
  ck_assert_int_eq(myelin_harness_push(h, NULL, volume(v1, 3, "s2", 0)), 0); /* new subject */
  const size_t want[] = {0, 2, 2, 0};
  for (int i = 0; i < 4; i++) {
    m = myelin_harness_output(h, "spikes", (size_t)(1 + i));
    ck_assert_uint_eq(u(m, "n"), 6);
    ck_assert_uint_eq(u(m, "steps"), 1);
    events_of(m, &s, &un);
    ck_assert_msg(s.count == want[i], "volume %d: %zu events", i, s.count);
  }
  /* v1 after v0: unit 0 (ch0 up) and unit 3 (ch1 down) */
  events_of(myelin_harness_output(h, "spikes", 2), &s, &un);
  ck_assert_uint_eq(((const uint32_t *)un.data)[0], 0);
  ck_assert_uint_eq(((const uint32_t *)un.data)[1], 3);
  myelin_harness_free(h);
}
END_TEST

START_TEST(errors_are_reported) {
  char err[1024] = "";
  myelin_harness *h = myelin_harness_new("spike_encoder", "{method: delta}", err, sizeof err);
  ck_assert_ptr_null(h);
  ck_assert_msg(strstr(err, "threshold") != NULL, "%s", err);
  h = encoder("{}");
  myelin_builder *b = myelin_builder_new("tensor");
  myelin_build_int(b, "index", 1);
  ck_assert_int_ne(myelin_harness_push(h, NULL, myelin_builder_finish(b)), 0);
  ck_assert_msg(strstr(myelin_harness_error(h), "'data'") != NULL, "%s", myelin_harness_error(h));
  myelin_harness_free(h);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("spike_encoder_plugin");
  TCase *tc = tcase_create("plugin");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, rate_message_matches_kernel);
  tcase_add_test(tc, batch_same_for_one_and_two_threads);
  tcase_add_test(tc, latency_and_regular_through_plugin);
  tcase_add_test(tc, delta_series_and_volume_stream);
  tcase_add_test(tc, errors_are_reported);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
