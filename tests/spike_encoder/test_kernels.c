/*
 * test_kernels.c — the spike-encoding kernels of plugins/spike_encoder/encode.c
 * tested directly (no runtime): rate statistics and thread independence,
 * latency and regular coding on hand-computed cases, delta reconstruction.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>

#include "encode.h"
#include "testutil.h"

static void assert_sorted(const spk_events *e) {
  for (size_t i = 1; i < e->n; i++) {
    int ok = e->step[i - 1] < e->step[i] || (e->step[i - 1] == e->step[i] && e->unit[i - 1] < e->unit[i]);
    ck_assert_msg(ok, "events out of order at %zu", i);
  }
}

static void assert_events(const spk_events *e, const uint32_t (*want)[2], size_t n) {
  ck_assert_uint_eq(e->n, n);
  for (size_t i = 0; i < n; i++) {
    ck_assert_msg(e->step[i] == want[i][0] && e->unit[i] == want[i][1],
                  "event %zu: got (%u,%u) want (%u,%u)", i, e->step[i], e->unit[i], want[i][0], want[i][1]);
  }
}

/* ---- rate ---------------------------------------------------------------- */
#define RATE_N 11
#define RATE_STEPS 32
#define RATE_DRAWS 10000
static const float rate_x[RATE_N] = {0.0f, 0.01f, 0.1f, 0.25f, 0.5f, 0.5f, 0.75f, 0.9f, 0.99f, 1.0f, 0.3333f};

typedef struct rate_job {
  size_t first, count;
  spk_events ev; /* all draws, concatenated in index order */
} rate_job;

static void *rate_run(void *arg) {
  rate_job *j = arg;
  spk_rate_scratch s = {0};
  for (size_t i = j->first; i < j->first + j->count; i++)
    ck_assert_int_eq(spk_rate(rate_x, RATE_N, RATE_STEPS, 1.0, spk_key(7, 0, i), &s, &j->ev), 0);
  spk_rate_scratch_free(&s);
  return NULL;
}

START_TEST(rate_mean_counts_match) {
  rate_job j = {0, RATE_DRAWS, {0}};
  rate_run(&j);
  double count[RATE_N] = {0};
  for (size_t i = 0; i < j.ev.n; i++) count[j.ev.unit[i]] += 1;
  for (int u = 0; u < RATE_N; u++) {
    double p = rate_x[u], mean = count[u] / RATE_DRAWS, want = RATE_STEPS * p;
    double se = sqrt(RATE_STEPS * p * (1 - p) / RATE_DRAWS);
    if (p == 0 || p == 1) ck_assert_double_eq(mean, want);
    else ck_assert_msg(fabs(mean - want) <= 4 * se, "unit %d: mean %g, want %g +- 4*%g", u, mean, want, se);
  }
  spk_events_free(&j.ev);
}
END_TEST

START_TEST(rate_events_sorted_per_sample) {
  spk_rate_scratch s = {0};
  spk_events ev = {0};
  ck_assert_int_eq(spk_rate(rate_x, RATE_N, RATE_STEPS, 1.0, spk_key(1, 2, 3), &s, &ev), 0);
  assert_sorted(&ev);
  ck_assert_uint_gt(ev.n, 0);
  spk_events_free(&ev);
  spk_rate_scratch_free(&s);
}
END_TEST

/* The two units sharing one 64-bit hash must be independent: P(both) = p^2. */
START_TEST(rate_pair_halves_independent) {
  const float x[2] = {0.5f, 0.5f};
  size_t both = 0, total = 0;
  spk_rate_scratch s = {0};
  spk_events ev = {0};
  for (uint64_t i = 0; i < 2000; i++) {
    ev.n = 0;
    spk_rate(x, 2, 16, 1.0, spk_key(3, 1, i), &s, &ev);
    for (size_t k = 0; k + 1 < ev.n; k++) both += ev.step[k] == ev.step[k + 1];
    total += 16;
  }
  double f = (double)both / (double)total, se = sqrt(0.25 * 0.75 / (double)total);
  ck_assert_msg(fabs(f - 0.25) <= 4 * se, "P(both)=%g", f);
  spk_events_free(&ev);
  spk_rate_scratch_free(&s);
}
END_TEST

START_TEST(rate_same_with_one_or_two_threads) {
  rate_job one = {0, RATE_DRAWS, {0}};
  rate_run(&one);
  rate_job two[2] = {{0, RATE_DRAWS / 2, {0}}, {RATE_DRAWS / 2, RATE_DRAWS - RATE_DRAWS / 2, {0}}};
  pthread_t t[2];
  for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, rate_run, &two[i]);
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  ck_assert_uint_eq(one.ev.n, two[0].ev.n + two[1].ev.n);
  size_t n0 = two[0].ev.n;
  ck_assert_int_eq(memcmp(one.ev.step, two[0].ev.step, n0 * 4), 0);
  ck_assert_int_eq(memcmp(one.ev.unit, two[0].ev.unit, n0 * 4), 0);
  ck_assert_int_eq(memcmp(one.ev.step + n0, two[1].ev.step, two[1].ev.n * 4), 0);
  ck_assert_int_eq(memcmp(one.ev.unit + n0, two[1].ev.unit, two[1].ev.n * 4), 0);
  spk_events_free(&one.ev);
  spk_events_free(&two[0].ev);
  spk_events_free(&two[1].ev);
}
END_TEST

START_TEST(rate_key_changes_draws) {
  ck_assert_uint_ne(spk_key(1, 0, 0), spk_key(1, 1, 0));
  ck_assert_uint_ne(spk_key(1, 0, 0), spk_key(1, 0, 1));
  ck_assert_uint_ne(spk_key(1, 0, 0), spk_key(2, 0, 0));
  /* the fast path and the reference draw agree */
  const float x[3] = {0.3f, 0.6f, 0.9f};
  spk_rate_scratch s = {0};
  spk_events ev = {0};
  uint64_t key = spk_key(5, 0, 9);
  spk_rate(x, 3, 20, 1.0, key, &s, &ev);
  size_t k = 0;
  for (uint32_t t = 0; t < 20; t++)
    for (uint32_t u = 0; u < 3; u++) {
      uint64_t thr = (uint64_t)((double)x[u] * 4294967296.0);
      if (spk_uniform32(key, t, u) < thr) {
        ck_assert_uint_lt(k, ev.n);
        ck_assert_uint_eq(ev.step[k], t);
        ck_assert_uint_eq(ev.unit[k], u);
        k++;
      }
    }
  ck_assert_uint_eq(k, ev.n);
  spk_events_free(&ev);
  spk_rate_scratch_free(&s);
}
END_TEST

/* Reference computed by an independent Python re-implementation of the
 * generator (SplitMix64 key chain and per-(step, pair) hash), x = i/12 as
 * float32, 4 steps, seed 3, epoch 2, index 11. */
START_TEST(rate_matches_python_reference) {
  float x[12];
  for (int i = 0; i < 12; i++) x[i] = (float)i / 12;
  ck_assert_uint_eq(spk_key(3, 2, 11), 0x40d249f53935528dULL);
  const uint32_t want[][2] = {{0, 5}, {0, 6}, {0, 7}, {0, 8}, {0, 9}, {0, 10}, {0, 11}, {1, 5},
                              {1, 6}, {1, 9}, {1, 10}, {1, 11}, {2, 8}, {2, 9}, {2, 10}, {2, 11},
                              {3, 2}, {3, 6}, {3, 8}, {3, 9}, {3, 10}, {3, 11}};
  spk_rate_scratch s = {0};
  spk_events ev = {0};
  for (int scalar = 0; scalar < 2; scalar++) {
    s.scalar_only = scalar;
    ev.n = 0;
    ck_assert_int_eq(spk_rate(x, 12, 4, 1.0, spk_key(3, 2, 11), &s, &ev), 0);
    assert_events(&ev, want, sizeof want / sizeof want[0]);
  }
  spk_events_free(&ev);
  spk_rate_scratch_free(&s);
}
END_TEST

/* The vector path (AVX-512 when the CPU has it) and the scalar path give the
 * same events for any length, including p = 0, p = 1, negative and NaN. */
START_TEST(rate_vector_and_scalar_paths_agree) {
  float x[301];
  uint64_t r = 7;
  for (size_t n = 1; n <= 301; n += (n < 40 ? 1 : 37)) {
    for (size_t i = 0; i < n; i++) {
      r = r * 6364136223846793005ULL + 1442695040888963407ULL;
      unsigned k = (unsigned)(r >> 59);
      x[i] = k < 8 ? 0.0f : k < 10 ? 1.0f : k == 10 ? -0.5f : k == 11 ? NAN : k == 12 ? 1.5f
                                          : (float)((r >> 20) & 0xffff) / 65536.0f;
    }
    spk_rate_scratch fast = {0}, slow = {.scalar_only = 1};
    spk_events a = {0}, b = {0};
    ck_assert_int_eq(spk_rate(x, n, 12, 1.0, spk_key(1, 2, n), &fast, &a), 0);
    ck_assert_int_eq(spk_rate(x, n, 12, 1.0, spk_key(1, 2, n), &slow, &b), 0);
    ck_assert_msg(a.n == b.n, "n=%zu: %zu vs %zu events", n, a.n, b.n);
    ck_assert_int_eq(memcmp(a.step, b.step, a.n * 4), 0);
    ck_assert_int_eq(memcmp(a.unit, b.unit, a.n * 4), 0);
    assert_sorted(&a);
    spk_events_free(&a);
    spk_events_free(&b);
    spk_rate_scratch_free(&fast);
    spk_rate_scratch_free(&slow);
  }
}
END_TEST

/* ---- latency --------------------------------------------------------------- */
START_TEST(latency_hand_computed) {
  /* max 1, steps 5: step = round((1 - x) * 4); 0.625 -> 1.5 rounds up to 2 */
  const float x[7] = {0.0f, 0.2f, 1.0f, 0.5f, 0.75f, 0.1f, 0.625f};
  const uint32_t want[][2] = {{0, 2}, {1, 4}, {2, 3}, {2, 6}, {3, 1}};
  spk_events ev = {0};
  ck_assert_int_eq(spk_latency(x, 7, 5, 0.15, &ev), 0);
  assert_events(&ev, want, 5);
  /* scaling by the max: x/2 gives the same steps */
  const float h[3] = {2.0f, 4.0f, 1.0f};
  const uint32_t want2[][2] = {{0, 1}, {2, 0}, {3, 2}};
  ev.n = 0;
  spk_latency(h, 3, 5, 0.0, &ev);
  assert_events(&ev, want2, 3);
  /* non-finite inputs: NaN never spikes, inf is the max (step 0), finite ones land last */
  const float nf[3] = {NAN, INFINITY, 0.5f};
  const uint32_t want3[][2] = {{0, 1}, {4, 2}};
  ev.n = 0;
  spk_latency(nf, 3, 5, 0.0, &ev);
  assert_events(&ev, want3, 2);
  /* nothing positive: no spikes */
  const float z[2] = {0.0f, -1.0f};
  ev.n = 0;
  spk_latency(z, 2, 5, -5.0, &ev);
  ck_assert_uint_eq(ev.n, 0);
  spk_events_free(&ev);
}
END_TEST

/* ---- regular --------------------------------------------------------------- */
START_TEST(regular_hand_computed) {
  const float x[5] = {0.5f, 0.0f, 1.0f, 0.26f, 2.0f};
  const uint32_t want[][2] = {{0, 4}, {1, 2}, {1, 4}, {2, 0}, {2, 4}, {3, 2}, {3, 3}, {3, 4},
                              {4, 4}, {5, 0}, {5, 2}, {5, 4}, {6, 4}, {7, 2}, {7, 3}, {7, 4}};
  double v[5] = {0};
  spk_events ev = {0};
  ck_assert_int_eq(spk_regular(x, 5, 8, 1.0, v, &ev), 0);
  assert_events(&ev, want, sizeof want / sizeof want[0]);
  /* gain scales the drive: 0.5 * gain 4 = 2 per step fires every step */
  double v2[1] = {0};
  ev.n = 0;
  spk_regular(x, 1, 3, 4.0, v2, &ev);
  ck_assert_uint_eq(ev.n, 3);
  spk_events_free(&ev);
}
END_TEST

/* ---- delta ----------------------------------------------------------------- */
START_TEST(delta_reconstructs_sine) {
  enum { T = 400, N = 2 };
  const double thr = 0.05;
  float x[T * N];
  for (int t = 0; t < T; t++) {
    x[t * N] = (float)sin(2 * M_PI * t / 200.0);
    x[t * N + 1] = (float)(3 + 2 * cos(2 * M_PI * t / 300.0));
  }
  double ref[N];
  int primed = 0;
  spk_events ev = {0};
  ck_assert_int_eq(spk_delta(x, T, N, thr, ref, &primed, 0, &ev), 0);
  assert_sorted(&ev);
  ck_assert_uint_gt(ev.n, 50);
  double rec[N] = {x[0], x[1]};
  size_t k = 0;
  for (uint32_t t = 0; t < T; t++) {
    while (k < ev.n && ev.step[k] == t) {
      uint32_t u = ev.unit[k++];
      rec[u / 2] += (u & 1) ? -thr : thr;
    }
    for (int c = 0; c < N; c++)
      ck_assert_msg(fabs(rec[c] - x[t * N + c]) < thr, "t=%u c=%d: rec %g x %g", t, c, rec[c], x[t * N + c]);
  }
  /* streaming one row at a time gives the same events */
  double ref2[N];
  int primed2 = 0;
  spk_events ev2 = {0};
  for (uint32_t t = 0; t < T; t++) spk_delta(x + t * N, 1, N, thr, ref2, &primed2, t, &ev2);
  ck_assert_uint_eq(ev2.n, ev.n);
  ck_assert_int_eq(memcmp(ev.step, ev2.step, ev.n * 4), 0);
  ck_assert_int_eq(memcmp(ev.unit, ev2.unit, ev.n * 4), 0);
  spk_events_free(&ev);
  spk_events_free(&ev2);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("spike_encoder_kernels");
  TCase *tc = tcase_create("kernels");
  tcase_add_test(tc, rate_mean_counts_match);
  tcase_add_test(tc, rate_events_sorted_per_sample);
  tcase_add_test(tc, rate_pair_halves_independent);
  tcase_add_test(tc, rate_same_with_one_or_two_threads);
  tcase_add_test(tc, rate_key_changes_draws);
  tcase_add_test(tc, rate_matches_python_reference);
  tcase_add_test(tc, rate_vector_and_scalar_paths_agree);
  tcase_add_test(tc, latency_hand_computed);
  tcase_add_test(tc, regular_hand_computed);
  tcase_add_test(tc, delta_reconstructs_sine);
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
