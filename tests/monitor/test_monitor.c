/*
 * The live monitor (`myelin run --monitor`, runtime/src/monitor.h): its
 * renderers and taps alone, then a real pipeline served to headless Chromium,
 * /api/stats and /metrics read while it runs, and a port that is taken.
 */
#include <arpa/inet.h>
#include <cairo.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "monitor.h"
#include "testutil.h"

static const char *bin(void) { return mt_env("MYELIN_BIN", "myelin"); }
static const char *py(void) { return mt_env("MYELIN_PYTHON", "/usr/bin/python3"); }

/* ---- a pipeline and snapshots made by hand -------------------------------- */
static const myelin_port_def gen_out[] = {{"out", "tensor", 0, NULL}, {NULL, NULL, 0, NULL}};
static const myelin_port_def learn_out[] = {{"metrics", "metrics", 0, NULL}, {NULL, NULL, 0, NULL}};
static myelin_plugin_desc gen_desc, learn_desc;
static char *gen_kinds[] = {"tensor"}, *learn_kinds[] = {"metrics"};
static stage_def stages[2];
static pipeline pipe_ = {.name = "unit \"test\"", .file = "p.yaml", .stages = stages, .n = 2};

static void fake_pipeline(void) {
  gen_desc.outputs = gen_out;
  learn_desc.outputs = learn_out;
  stages[0].id = "we\"ird\\id\nx"; /* every character a label value must escape */
  stages[0].plugin = "gen_source";
  stages[0].lib.desc = &gen_desc;
  stages[0].out_kinds = gen_kinds;
  stages[1].id = "learn";
  stages[1].plugin = "biograd";
  stages[1].lib.desc = &learn_desc;
  stages[1].out_kinds = learn_kinds;
  stages[1].n_inputs = 1;
}

/* Two stages' counters at `wall` seconds. */
static void snapshot(run_stats *rs, double wall, uint64_t out0, uint64_t in1, double cpu1) {
  memset(rs, 0, sizeof *rs);
  rs->wall = wall;
  rs->n = 2;
  rs->st = calloc(2, sizeof *rs->st);
  rs->st[0].msgs_out = out0;
  rs->st[0].bytes_out = out0 * 64;
  rs->st[0].cpu = 0.5 * wall;
  rs->st[0].busy = 0.5;
  rs->st[1].has_inputs = 1;
  rs->st[1].msgs_in = in1;
  rs->st[1].msgs_out = in1 / 10;
  rs->st[1].queue_fill = 3;
  rs->st[1].queue_cap = 512;
  rs->st[1].queue_hiwater = 40;
  rs->st[1].cpu = cpu1;
  rs->st[1].busy = cpu1 / wall;
  rs->st[1].n_counters = 1;
  rs->st[1].counter_names = calloc(1, sizeof *rs->st[1].counter_names);
  rs->st[1].counter_values = calloc(1, sizeof *rs->st[1].counter_values);
  strcpy(rs->st[1].counter_names[0], "sleep_phases");
  rs->st[1].counter_values[0] = -2;
}

static myelin_msg *metrics_msg(int64_t epoch, const char *name, double v) {
  myelin_builder *b = myelin_builder_new("metrics");
  myelin_build_str(b, "stage", "learn");
  if (epoch >= 0) myelin_build_int(b, "epoch", epoch);
  myelin_build_map_begin(b, "values");
  myelin_build_float(b, name, v);
  myelin_build_str(b, "note", "not a number: left out");
  myelin_build_map_end(b);
  myelin_msg *m = myelin_builder_finish(b);
  ck_assert_ptr_nonnull(m);
  return m;
}

/* Writes text to DIR/name and runs a Python check on it; returns its output. */
static char *py_check(const char *dir, const char *name, const char *text, const char *script) {
  mt_write(mt_strf("%s/%s", dir, name), text);
  mt_write(mt_strf("%s/check.py", dir), script);
  char *out = NULL;
  int rc = mt_run(mt_strf("cd %s && %s check.py %s", dir, py(), name), &out);
  ck_assert_msg(rc == 0, "%s: %s", name, out);
  return out;
}

START_TEST(prometheus_text_format) {
  fake_pipeline();
  run_stats prev, cur;
  snapshot(&prev, 1.0, 100, 90, 0.2);
  snapshot(&cur, 1.5, 300, 290, 0.6);
  mon_series s = {.stage = 1, .port = 0};
  myelin_msg *m1 = metrics_msg(1, "test_accuracy", 0.75), *m2 = metrics_msg(2, "test_accuracy", NAN);
  ck_assert_int_eq(mon_series_add(&s, m1), 0);
  ck_assert_int_eq(mon_series_add(&s, m2), 0);
  mon_view v = {&pipe_, MON_RUNNING, 0, &cur, &prev, &s, 1, NULL, 0};
  char *t = monitor_prometheus(&v);
  ck_assert_ptr_nonnull(t);
  /* exact lines: escaped labels, counters, gauges, the busy ratio over the interval, NaN */
  const char *want[] = {
      "# HELP myelin_stage_messages_in_total Messages a stage received.\n"
      "# TYPE myelin_stage_messages_in_total counter\n"
      "myelin_stage_messages_in_total{stage=\"we\\\"ird\\\\id\\nx\",plugin=\"gen_source\"} 0\n"
      "myelin_stage_messages_in_total{stage=\"learn\",plugin=\"biograd\"} 290\n",
      "myelin_stage_messages_out_total{stage=\"we\\\"ird\\\\id\\nx\",plugin=\"gen_source\"} 300\n",
      "myelin_stage_queue_messages{stage=\"learn\",plugin=\"biograd\"} 3\n",
      "myelin_stage_queue_capacity_messages{stage=\"learn\",plugin=\"biograd\"} 512\n",
      "myelin_stage_busy_ratio{stage=\"learn\",plugin=\"biograd\"} 0.8\n",
      "myelin_stage_counter{stage=\"learn\",plugin=\"biograd\",name=\"sleep_phases\"} -2\n",
      "myelin_metrics_value{stage=\"learn\",port=\"metrics\",name=\"test_accuracy\"} NaN\n",
      "myelin_run_info{pipeline=\"unit \\\"test\\\"\",file=\"p.yaml\"} 1\n",
      "myelin_run_running 1\n"};
  for (size_t i = 0; i < sizeof want / sizeof *want; i++)
    ck_assert_msg(strstr(t, want[i]), "missing:\n%s\nin:\n%s", want[i], t);
  /* a source has no queue */
  ck_assert_ptr_null(strstr(t, "myelin_stage_queue_messages{stage=\"we"));
  /* and Prometheus' own parser reads every family back */
  if (mt_python_or_skip("prometheus_client", "the Prometheus parser")) {
    char *out = py_check(mt_tmpdir(), "metrics.txt", t,
                         "import sys\n"
                         "from prometheus_client.parser import text_string_to_metric_families as parse\n"
                         "fams = list(parse(open(sys.argv[1]).read()))\n"
                         "s = {(f.name, x.labels.get('stage')): x.value for f in fams for x in f.samples}\n"
                         "assert s[('myelin_stage_messages_in', 'we\"ird\\\\id\\nx')] == 0, s\n"
                         "assert s[('myelin_stage_messages_out', 'we\"ird\\\\id\\nx')] == 300, s\n"
                         "assert abs(s[('myelin_stage_busy_ratio', 'learn')] - 0.8) < 1e-9, s\n"
                         "print('families', len(fams))\n");
    ck_assert_msg(strstr(out, "families 13"), "%s", out);
    free(out);
  }
  free(t);
  mon_series_free(&s);
  myelin_msg_unref(m1);
  myelin_msg_unref(m2);
  run_stats_free(&prev);
  run_stats_free(&cur);
}
END_TEST

START_TEST(stats_json) {
  fake_pipeline();
  run_stats prev, cur;
  snapshot(&prev, 1.0, 100, 90, 0.2);
  snapshot(&cur, 1.5, 300, 290, 0.6);
  mon_series s = {.stage = 1, .port = 0};
  /* train and test values of one epoch share a row; a message without epoch... */
  myelin_msg *m[] = {metrics_msg(1, "train_accuracy", 0.5), metrics_msg(1, "test_accuracy", 0.25),
                     metrics_msg(2, "train_accuracy", 0.75)};
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(mon_series_add(&s, m[i]), 0);
  ck_assert_uint_eq(s.n_rows, 2);
  ck_assert_uint_eq(s.n_names, 2);
  ck_assert(s.y[0][0] == 0.5 && s.y[1][0] == 0.25 && s.y[0][1] == 0.75 && isnan(s.y[1][1]));
  mon_edge e = {1, 0, 0};
  mon_view v = {&pipe_, MON_FINISHED, 130, &cur, &prev, &s, 1, &e, 1};
  char *j = monitor_stats_json(&v), *mj = monitor_metrics_json(&v);
  ck_assert_ptr_nonnull(j);
  ck_assert_ptr_nonnull(mj);
  if (mt_python_or_skip("json", "JSON checks")) {
    char *d = mt_tmpdir();
    mt_write(mt_strf("%s/metrics.json", d), mj);
    char *out = py_check(d, "stats.json", j,
                         "import json, sys\n"
                         "s = json.load(open(sys.argv[1]))\n"
                         "assert s['pipeline'] == 'unit \"test\"' and s['state'] == 'finished', s\n"
                         "assert s['exit_code'] == 130 and abs(s['interval'] - 0.5) < 1e-9, s\n"
                         "g, l = s['stages']\n"
                         "assert g['id'] == 'we\"ird\\\\id\\nx' and not g['inputs'], g\n"
                         "assert abs(g['rate_out'] - 400) < 1e-6, g\n"
                         "assert abs(l['rate_in'] - 400) < 1e-6 and abs(l['busy'] - 0.8) < 1e-6, l\n"
                         "assert l['queue'] == 3 and l['queue_capacity'] == 512, l\n"
                         "assert l['counters'] == {'sleep_phases': -2}, l\n"
                         "assert s['metrics'] == [{'edge': 'learn.metrics', 'messages': 3, 'epoch': 2,\n"
                         "  'values': {'train_accuracy': 0.75, 'test_accuracy': 0.25}}], s['metrics']\n"
                         "assert s['edges'] == [{'edge': 'learn.metrics', 'kind': 'metrics'}], s['edges']\n"
                         "m = json.load(open('metrics.json'))['series'][0]\n"
                         "assert m['x'] == [1, 2] and m['names'] == ['train_accuracy', 'test_accuracy'], m\n"
                         "assert m['y'] == [[0.5, 0.75], [0.25, None]], m\n"
                         "print('ok')\n");
    ck_assert_msg(strstr(out, "ok"), "%s", out);
    free(out);
  }
  /* epochs that start again (a second training run) start the history again */
  myelin_msg *again = metrics_msg(0, "train_accuracy", 0.1);
  ck_assert_int_eq(mon_series_add(&s, again), 0);
  ck_assert_uint_eq(s.n_rows, 1);
  ck_assert(s.x[0] == 0 && s.y[0][0] == 0.1);
  /* the history is bounded */
  for (int i = 1; i < MONITOR_HISTORY + 10; i++) {
    myelin_msg *x = metrics_msg(i, "loss", 1.0 / i);
    ck_assert_int_eq(mon_series_add(&s, x), 0);
    myelin_msg_unref(x);
  }
  ck_assert_uint_le(s.n_rows, MONITOR_HISTORY);
  ck_assert(s.x[s.n_rows - 1] == MONITOR_HISTORY + 9);
  myelin_msg_unref(again);
  for (int i = 0; i < 3; i++)
    myelin_msg_unref(m[i]);
  free(j);
  free(mj);
  mon_series_free(&s);
  run_stats_free(&prev);
  run_stats_free(&cur);
}
END_TEST

START_TEST(map_slices_and_spikes) {
  /* a 3x4x5 grid, 7 voxels kept, the largest |value| at voxel (2, 3, 4) */
  const int64_t dims[3] = {3, 4, 5};
  const uint32_t vox[7] = {0, 7, 23, 28, 33, 38, 59};
  float data[2][7];
  for (int r = 0; r < 2; r++)
    for (int k = 0; k < 7; k++)
      data[r][k] = (float)(k + 1) * (r ? 1.5f : 0.5f); /* mean of the rows: k + 1 */
  data[0][6] = -20, data[1][6] = -2;                   /* voxel 59 = (2, 3, 4): mean -11 */
  myelin_builder *b = myelin_builder_new("map");
  myelin_build_str(b, "stat", "isc");
  myelin_build_tensor_copy(b, "data", MYELIN_F4, 2, (int64_t[]){2, 7}, data);
  myelin_build_map_begin(b, "geometry");
  myelin_build_array_begin(b, "dims");
  for (int i = 0; i < 3; i++)
    myelin_build_int(b, NULL, dims[i]);
  myelin_build_array_end(b);
  myelin_build_tensor_copy(b, "voxels", MYELIN_U4, 1, (int64_t[]){7}, vox);
  myelin_build_map_end(b);
  myelin_msg *map = myelin_builder_finish(b);
  ck_assert_ptr_nonnull(map);
  char *j = monitor_map_json(map, "isc.map");
  ck_assert_ptr_nonnull(j);
  /* the cut goes through (2, 3, 4); slice k = 4 (axial) is 3 wide, 4 high: voxels 59 -> (2,3), 39 not kept */
  ck_assert_msg(strstr(j, "\"dims\":[3,4,5],\"cut\":[2,3,4],\"vmax\":11"), "%s", j);
  ck_assert_msg(strstr(j,
                       "{\"axis\":2,\"at\":4,\"w\":3,\"h\":4,\"v\":[null,null,null,null,null,null,null,null,"
                       "null,null,null,-11]}"),
                "%s", j);
  /* slice i = 2 (sagittal): j across (4), k up (5) */
  ck_assert_msg(strstr(j, "{\"axis\":0,\"at\":2,\"w\":4,\"h\":5,"), "%s", j);
  free(j);
  myelin_msg_unref(map);
  /* without a voxel grid: the values in order */
  b = myelin_builder_new("map");
  myelin_build_tensor_copy(b, "data", MYELIN_F4, 1, (int64_t[]){3}, (float[]){1, NAN, -3});
  myelin_build_map_begin(b, "geometry");
  myelin_build_str(b, "atlas", "parcels.nii.gz");
  myelin_build_map_end(b);
  map = myelin_builder_finish(b);
  j = monitor_map_json(map, "p.map");
  ck_assert_msg(strstr(j, "\"count\":3,\"vmax\":3,\"values\":[1,null,-3]"), "%s", j);
  free(j);
  myelin_msg_unref(map);
  /* spikes: events in order, truncated past the budget */
  myelin_msg *sp[2];
  for (int i = 0; i < 2; i++) {
    b = myelin_builder_new("spikes");
    myelin_build_uint(b, "seq", (uint64_t)i);
    myelin_build_int(b, "n", 10);
    myelin_build_int(b, "steps", 4);
    myelin_build_float(b, "dt", 0.001);
    myelin_build_tensor_copy(b, "step", MYELIN_U4, 1, (int64_t[]){3}, (uint32_t[]){0, 1, 3});
    myelin_build_tensor_copy(b, "unit", MYELIN_U4, 1, (int64_t[]){3}, (uint32_t[]){9, 2, 5});
    sp[i] = myelin_builder_finish(b);
  }
  j = monitor_spikes_json(sp, 2, "enc.out", 4);
  ck_assert_str_eq(
      j, "{\"type\":\"spikes\",\"edge\":\"enc.out\",\"msgs\":["
         "{\"seq\":0,\"n\":10,\"steps\":4,\"dt\":0.001,\"step\":[0,1,3],\"unit\":[9,2,5]},"
         "{\"seq\":1,\"n\":10,\"steps\":4,\"dt\":0.001,\"step\":[0],\"unit\":[9]}],\"truncated\":2}");
  free(j);
  myelin_msg_unref(sp[0]);
  myelin_msg_unref(sp[1]);
}
END_TEST

/* A spikes message whose bytes live in memory of its own (a msg_backing):
 * *released turns 1 when the last reference to it is gone. */
typedef struct watched_backing {
  msg_backing b;
  uint8_t *bytes;
  int released;
} watched_backing;

static void backing_released(msg_backing *b) {
  watched_backing *w = (watched_backing *)b;
  free(w->bytes);
  w->bytes = NULL;
  w->released = 1;
}

static myelin_msg *spikes_msg(uint64_t seq, size_t events, watched_backing *w) {
  myelin_builder *b = myelin_builder_new("spikes");
  myelin_build_uint(b, "seq", seq);
  myelin_build_int(b, "n", 64);
  myelin_build_int(b, "steps", 32);
  uint32_t *step = calloc(events ? events : 1, sizeof *step),
           *unit = calloc(events ? events : 1, sizeof *unit);
  for (size_t k = 0; k < events; k++)
    step[k] = (uint32_t)(k % 32), unit[k] = (uint32_t)((k * 7 + seq) % 64);
  myelin_build_tensor_copy(b, "step", MYELIN_U4, 1, (int64_t[]){(int64_t)events}, step);
  myelin_build_tensor_copy(b, "unit", MYELIN_U4, 1, (int64_t[]){(int64_t)events}, unit);
  free(step);
  free(unit);
  myelin_msg *m = myelin_builder_finish(b);
  ck_assert_ptr_nonnull(m);
  if (!w) return m;
  size_t len;
  const uint8_t *bytes = myelin_msg_bytes(m, &len);
  w->bytes = malloc(len);
  memcpy(w->bytes, bytes, len);
  w->released = 0;
  msg_backing_init(&w->b, backing_released);
  myelin_msg *borrowed = NULL;
  size_t used;
  ck_assert_int_eq(msg_decode_in(w->bytes, len, len, &w->b, 0, &borrowed, &used, NULL, 0), 0);
  msg_backing_unref(&w->b); /* the message's reference is the last */
  ck_assert(!w->released);
  myelin_msg_unref(m);
  return borrowed;
}

START_TEST(tap_keeps_no_reference_to_spikes) {
  msg_tap *t = msg_tap_new();
  ck_assert_ptr_nonnull(t);
  myelin_msg *out[MONITOR_TAP_TAKE];
  uint64_t dropped = 99;
  /* nobody watches: a spikes message is neither kept nor copied */
  watched_backing w;
  myelin_msg *m = spikes_msg(1, 25000, &w); /* 200 KB, as a spike_encoder emits */
  for (int i = 0; i < 100; i++)
    msg_tap_put(t, m);
  myelin_msg_unref(m);
  ck_assert_msg(w.released, "the tap still holds a reference to an unwatched spikes message");
  ck_assert_uint_eq(msg_tap_take(t, out, MONITOR_TAP_TAKE, &dropped), 0);
  ck_assert_uint_eq(dropped, 0);
  ck_assert_uint_eq(msg_tap_seen(t), MON_SEEN_SPIKES);
  /* watched: copies of it, and still no reference; the original is freed when the pipeline drops it */
  msg_tap_watch(t, 1);
  m = spikes_msg(2, 25000, &w);
  size_t len;
  const uint8_t *bytes = myelin_msg_bytes(m, &len);
  uint8_t *expect = malloc(len);
  memcpy(expect, bytes, len);
  for (int i = 0; i < 100; i++) /* a burst: the first MONITOR_TAP_PREVIEWS are copied */
    msg_tap_put(t, m);
  myelin_msg_unref(m);
  ck_assert_msg(w.released, "the tap still holds a reference to a watched spikes message");
  size_t n = msg_tap_take(t, out, MONITOR_TAP_TAKE, &dropped);
  ck_assert_uint_eq(n, MONITOR_TAP_PREVIEWS);
  ck_assert_uint_eq(dropped, 0);
  for (size_t i = 0; i < n; i++) {
    size_t got_len;
    const uint8_t *got = myelin_msg_bytes(out[i], &got_len);
    ck_assert_uint_eq(got_len, len);
    ck_assert(!memcmp(got, expect, len));
    myelin_msg_unref(out[i]);
  }
  free(expect);
  msg_tap_free(t);
}
END_TEST

/* The spikes messages put since the previous take: seq first .. first + n - 1. */
static void expect_previews(msg_tap *t, uint64_t first, size_t n) {
  myelin_msg *out[MONITOR_TAP_TAKE];
  uint64_t dropped = 99, seq = 0;
  size_t got = msg_tap_take(t, out, MONITOR_TAP_TAKE, &dropped);
  ck_assert_uint_eq(got, n);
  ck_assert_uint_eq(dropped, 0);
  for (size_t i = 0; i < got; i++) {
    ck_assert_int_eq(myelin_msg_uint(out[i], "seq", &seq), 0);
    ck_assert_uint_eq(seq, first + i);
    myelin_tensor st;
    ck_assert_int_eq(myelin_msg_tensor(out[i], "step", &st), 0);
    ck_assert_uint_eq(st.count, 100 + 10 * seq);
  }
  if (got) {
    char *j = monitor_spikes_json(out, got, "enc.spikes", 100000); /* what the page gets of them */
    ck_assert_ptr_nonnull(strstr(j, mt_strf("\"seq\":%d,", (int)(first + got - 1))));
    free(j);
  }
  for (size_t i = 0; i < got; i++)
    myelin_msg_unref(out[i]);
}

START_TEST(tap_previews_spikes_after_each_take) {
  msg_tap *t = msg_tap_new();
  ck_assert_ptr_nonnull(t);
  myelin_msg *out[MONITOR_TAP_TAKE];
  uint64_t dropped = 99, seq = 0;
  msg_tap_watch(t, 1);
  /* the first MONITOR_TAP_PREVIEWS after a take are copied, the rest pass */
  for (; seq < 3 * MONITOR_TAP_PREVIEWS; seq++) {
    myelin_msg *m = spikes_msg(seq, 100 + 10 * (size_t)seq, NULL); /* growing: the buffers grow */
    msg_tap_put(t, m);
    myelin_msg_unref(m);
  }
  expect_previews(t, 0, MONITOR_TAP_PREVIEWS);
  /* the take freed the buffers: the next ones are copied, fewer than the credits too */
  for (uint64_t i = 0; i < 2; i++, seq++) {
    myelin_msg *m = spikes_msg(seq, 100 + 10 * (size_t)seq, NULL);
    msg_tap_put(t, m);
    myelin_msg_unref(m);
  }
  expect_previews(t, 3 * MONITOR_TAP_PREVIEWS, 2);
  char *j = NULL;
  {
    myelin_msg *m = spikes_msg(5, 40, NULL); /* the events as the page gets them */
    msg_tap_put(t, m);
    myelin_msg_unref(m);
    ck_assert_uint_eq(msg_tap_take(t, out, MONITOR_TAP_TAKE, &dropped), 1);
    j = monitor_spikes_json(out, 1, "enc.spikes", 100000);
    ck_assert_ptr_nonnull(strstr(j, "\"steps\":32,\"dt\":0,\"step\":[0,1,2,3,4,5,6,7,8,9,10,11,"));
    ck_assert_ptr_nonnull(strstr(j, "\"unit\":[5,12,19,26,33,40,47,54,61,4,11,"));
    free(j);
    myelin_msg_unref(out[0]);
  }
  /* no longer watched: nothing more is copied */
  msg_tap_watch(t, 0);
  myelin_msg *m = spikes_msg(99, 10, NULL);
  msg_tap_put(t, m);
  myelin_msg_unref(m);
  ck_assert_uint_eq(msg_tap_take(t, out, MONITOR_TAP_TAKE, &dropped), 0);
  ck_assert_uint_eq(msg_tap_take(t, out, MONITOR_TAP_TAKE, &dropped), 0);
  /* larger than MONITOR_PREVIEW_MAX: skipped, and counted */
  msg_tap_watch(t, 1);
  m = spikes_msg(100, MONITOR_PREVIEW_MAX / 8 + 1, NULL);
  msg_tap_put(t, m);
  myelin_msg_unref(m);
  ck_assert_uint_eq(msg_tap_take(t, out, MONITOR_TAP_TAKE, &dropped), 0);
  ck_assert_uint_eq(dropped, 1);
  /* a preview left untaken is freed with the tap (ASan: no leak) */
  m = spikes_msg(101, 10, NULL);
  msg_tap_put(t, m);
  myelin_msg_unref(m);
  msg_tap_free(t);
}
END_TEST

START_TEST(tap_keeps_metrics_and_the_newest_map) {
  msg_tap *t = msg_tap_new();
  ck_assert_ptr_nonnull(t);
  myelin_msg *metrics = metrics_msg(1, "loss", 1);
  myelin_msg *tensor = myelin_builder_finish(myelin_builder_new("tensor"));
  myelin_msg *maps[5];
  for (int i = 0; i < 5; i++) {
    myelin_builder *b = myelin_builder_new("map");
    myelin_build_int(b, "n", i);
    maps[i] = myelin_builder_finish(b);
  }
  myelin_msg *out[MONITOR_TAP_TAKE];
  uint64_t dropped = 99;
  int64_t k = -1;
  /* a burst: every metrics message, and one map (the first: the next enter at most twice a period) */
  for (int i = 0; i < 20; i++)
    msg_tap_put(t, metrics), msg_tap_put(t, maps[0]);
  msg_tap_put(t, tensor); /* not a kind the view shows: not kept */
  size_t n = msg_tap_take(t, out, MONITOR_TAP_TAKE, &dropped);
  ck_assert_uint_eq(n, 20 + 1);
  ck_assert_uint_eq(dropped, 0);
  ck_assert_str_eq(myelin_msg_kind(out[0]), "metrics");
  ck_assert_str_eq(myelin_msg_kind(out[20]), "map");
  for (size_t i = 0; i < n; i++)
    myelin_msg_unref(out[i]);
  ck_assert_uint_eq(msg_tap_seen(t), MON_SEEN_METRICS | MON_SEEN_MAP);
  /* spaced out: only the newest map is kept; metrics beyond the ring are dropped */
  usleep(MONITOR_PERIOD_MS * 1000 / 2 + 2000);
  for (int i = 0; i < 5; i++)
    msg_tap_put(t, maps[i]), usleep(MONITOR_PERIOD_MS * 1000 / 2 + 2000);
  for (int i = 0; i < MONITOR_TAP_METRICS + 3; i++)
    msg_tap_put(t, metrics);
  n = msg_tap_take(t, out, MONITOR_TAP_TAKE, &dropped);
  ck_assert_uint_eq(n, MONITOR_TAP_METRICS + 1);
  ck_assert_uint_eq(dropped, 3 + 4);
  ck_assert_ptr_eq(out[n - 1], maps[4]);
  ck_assert_int_eq(myelin_msg_int(out[n - 1], "n", &k), 0);
  ck_assert_int_eq(k, 4);
  for (size_t i = 0; i < n; i++)
    myelin_msg_unref(out[i]);
  ck_assert_uint_eq(msg_tap_take(t, out, MONITOR_TAP_TAKE, &dropped), 0);
  usleep(MONITOR_PERIOD_MS * 1000 / 2 + 2000);
  msg_tap_put(t, maps[1]);
  msg_tap_free(t); /* drops the reference it still holds (ASan: no leak) */
  ck_assert(monitor_tap_kind("spikes") && monitor_tap_kind("*") && monitor_tap_kind("tensor|metrics"));
  ck_assert(!monitor_tap_kind("tensor") && !monitor_tap_kind("sample|volume"));
  myelin_msg_unref(metrics);
  myelin_msg_unref(tensor);
  for (int i = 0; i < 5; i++)
    myelin_msg_unref(maps[i]);
}
END_TEST

/* ---- the CLI ------------------------------------------------------------- */
static int have_cmd(const char *c) { return mt_run(mt_strf("command -v %s", c), NULL) == 0; }

/* Starts `myelin run FILE --monitor 0` in DIR in the background (its pid in
 * DIR/run.pid, its exit status in DIR/run.rc when it ends); returns the
 * page's URL (read from its stderr) and the pid in *pid. */
static char *start_run(const char *dir, const char *file, pid_t *pid) {
  int rc =
      mt_run(mt_strf("cd %s && ( ( sh -c 'echo $$ >run.pid; exec %s run %s --monitor 0' >run.out 2>run.err; "
                     "echo $? >run.rc ) </dev/null >/dev/null 2>&1 & )",
                     dir, bin(), file),
             NULL);
  ck_assert_int_eq(rc, 0);
  char buf[4096];
  for (int i = 0; i < 200; i++) { /* up to 20 s on a loaded machine */
    FILE *f = fopen(mt_strf("%s/run.err", dir), "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = 0;
    char *u = strstr(buf, "monitor: http://");
    if (u && strchr(u, '\n')) {
      *strchr(u, '\n') = 0;
      FILE *p = fopen(mt_strf("%s/run.pid", dir), "r");
      ck_assert_ptr_nonnull(p);
      ck_assert_int_eq(fscanf(p, "%d", pid), 1);
      fclose(p);
      return mt_strf("%s", u + 9);
    }
    usleep(100000);
  }
  ck_abort_msg("no monitor URL on stderr: %s", buf);
  return NULL;
}

/* SIGINT to the run; its exit status (130 after a clean drain). */
static int stop_run(const char *dir, pid_t pid) {
  kill(pid, SIGINT);
  int rc = -1;
  for (int i = 0; i < 300 && rc < 0; i++) {
    FILE *f = fopen(mt_strf("%s/run.rc", dir), "r");
    if (f && fscanf(f, "%d", &rc) != 1) rc = -1;
    if (f) fclose(f);
    if (rc < 0) usleep(100000);
  }
  char *out = NULL;
  mt_run(mt_strf("cat %s/run.err", dir), &out);
  ck_assert_msg(rc == 130, "the run ended with %d: %s", rc, out);
  free(out);
  return rc;
}

typedef struct png {
  cairo_surface_t *s;
  int w, h, stride;
  const unsigned char *d;
} png;

/* Pixels within tol of (r, g, b). */
static long count_rgb(const png *p, int r, int g, int b, int tol) {
  long n = 0;
  for (int y = 0; y < p->h; y++)
    for (int x = 0; x < p->w; x++) {
      const unsigned char *px = p->d + (size_t)y * (size_t)p->stride + 4 * (size_t)x; /* BGRA */
      n += abs(px[2] - r) <= tol && abs(px[1] - g) <= tol && abs(px[0] - b) <= tol;
    }
  return n;
}

static const char *stream_py =
    "import msgpack, numpy as np\n"
    "rng = np.random.default_rng(1)\n"
    "def tensor(a):\n"
    "    a = np.ascontiguousarray(a)\n"
    "    return {'dtype': a.dtype.str, 'shape': list(a.shape), 'data': a.tobytes()}\n"
    "xs, ys, zs = np.meshgrid(np.arange(20), np.arange(24), np.arange(18), indexing='ij')\n"
    "mask = ((xs - 10) / 9) ** 2 + ((ys - 12) / 11) ** 2 + ((zs - 9) / 8) ** 2 <= 1\n"
    "vox = np.flatnonzero(mask).astype('<u4')\n"
    "geom = {'dims': [20, 24, 18], 'affine': tensor(np.diag([3.0, 3, 3, 1])), 'voxels': tensor(vox)}\n"
    "with open('live.mpk', 'wb') as f:\n"
    "    for k in range(2000):\n"
    "        t = 0.01 * (k + 1)\n"
    "        step = np.sort(rng.integers(0, 50, 150)).astype('<u4')\n"
    "        unit = rng.integers(0, 64, 150).astype('<u4')\n"
    "        o = np.lexsort((unit, step))\n"
    "        m = [{'kind': 'spikes', 'seq': k, 't': t, 'n': 64, 'steps': 50, 'dt': 0.001,\n"
    "              'step': tensor(step[o]), 'unit': tensor(unit[o])}]\n"
    "        if k % 20 == 0:\n"
    "            e = k // 20\n"
    "            m.append({'kind': 'metrics', 't': t, 'stage': 'learn', 'epoch': e, 'values':\n"
    "                      {'train_accuracy': 1 - 0.5 / (1 + e), 'test_accuracy': 1 - 0.6 / (1 + e)}})\n"
    "        if k % 50 == 0:\n"
    "            c = 5 + (k // 50) % 10\n"
    "            v = np.exp(-((xs - c) ** 2 + (ys - 12) ** 2 + (zs - 9) ** 2) / 20.0)[mask] - 0.2\n"
    "            m.append({'kind': 'map', 't': t, 'stat': 'isc', 'data': tensor(v.astype('<f4')[None]),\n"
    "                      'geometry': geom})\n"
    "        for x in m:\n"
    "            f.write(msgpack.packb(x, use_bin_type=True))\n";

static const char *http_py =
    "import json, sys, time, urllib.error, urllib.request\n"
    "from prometheus_client.parser import text_string_to_metric_families as parse\n"
    "base = sys.argv[1]\n"
    "def get(p):\n"
    "    with urllib.request.urlopen(base + p, timeout=20) as r:\n"
    "        return r.status, r.headers.get('Content-Type'), r.read()\n"
    "a = json.loads(get('api/stats')[2]); time.sleep(1.5); b = json.loads(get('api/stats')[2])\n"
    "assert a['state'] == b['state'] == 'running', (a['state'], b['state'])\n"
    "src0, src1 = a['stages'][0]['msgs_out'], b['stages'][0]['msgs_out']\n"
    "sink0, sink1 = a['stages'][1]['msgs_in'], b['stages'][1]['msgs_in']\n"
    "assert src1 > src0 and sink1 > sink0 and b['elapsed'] > a['elapsed'], (a, b)\n"
    "assert b['stages'][1]['rate_in'] > 10, b['stages'][1]\n"
    "st, ct, body = get('metrics')\n"
    "assert st == 200 and ct.startswith('text/plain; version=0.0.4'), ct\n"
    "s = {(f.name, x.labels.get('stage')): x.value for f in parse(body.decode()) for x in f.samples}\n"
    "assert s[('myelin_stage_messages_in', 'sink')] >= sink1, s\n"
    "assert s[('myelin_run_running', None)] == 1, s\n"
    "st, ct, page = get('')\n"
    "assert st == 200 and ct.startswith('text/html') and b'.uplot' in page and b'WebSocket' in page, ct\n"
    "assert b'src=\"http' not in page and b'href=\"http' not in page  # nothing from the network\n"
    "import websocket\n"
    "ws = 'ws' + base[len('http'):] + 'ws'\n"
    "w = websocket.create_connection(ws, timeout=20)  # Origin: the monitor's own\n"
    "assert w.recv(), 'no greeting'\n"
    "w.close()\n"
    "try:\n"
    "    websocket.create_connection(ws, timeout=20, origin='http://elsewhere.example')\n"
    "    sys.exit('a page of another origin was let in')\n"
    "except (websocket.WebSocketException, OSError) as e:  # libwebsockets hangs up\n"
    "    print('foreign origin refused:', type(e).__name__)\n"
    "port = base.rsplit(':', 1)[1].strip('/')\n"
    "try:  # DNS rebinding: a foreign name pointed at 127.0.0.1\n"
    "    urllib.request.urlopen(urllib.request.Request(base + 'api/stats', headers={'Host': "
    "'rebound.example:' + port}), timeout=20)\n"
    "    sys.exit('a foreign Host was served')\n"
    "except urllib.error.HTTPError as e:\n"
    "    assert e.code == 403, e.code\n"
    "try:\n"
    "    websocket.create_connection(ws, timeout=20, host='rebound.example:' + port, "
    "origin='http://rebound.example:' + port)\n"
    "    sys.exit('a WebSocket for a foreign Host was let in')\n"
    "except (websocket.WebSocketException, OSError) as e:\n"
    "    print('foreign host refused:', type(e).__name__)\n"
    "assert get('api/stats')[0] == 200\n"
    "w = websocket.create_connection(ws, timeout=20, suppress_origin=True)  # not a browser\n"
    "assert w.recv(), 'no greeting without Origin'\n"
    "w.close()\n"
    "print('advanced', src0, src1, sink0, sink1)\n";

START_TEST(page_in_chromium) {
  const char *chromium = have_cmd("chromium")           ? "chromium"
                         : have_cmd("chromium-browser") ? "chromium-browser"
                                                        : NULL;
  if (!chromium) MT_SKIP("chromium is not installed (Debian: chromium)");
  MT_NEED_PYTHON("numpy msgpack prometheus_client websocket",
                 "the stream generator, the Prometheus parser and the DevTools client");
  char *d = mt_tmpdir(), *out = NULL;
  mt_write(mt_strf("%s/gen.py", d), stream_py);
  mt_write(mt_strf("%s/fetch.py", d), http_py);
  ck_assert_int_eq(mt_run(mt_strf("cd %s && %s gen.py", d, py()), NULL), 0);
  mt_write(mt_strf("%s/live.yaml", d),
           "name: live-view\nstages:\n"
           "  - {id: replay, plugin: file_source, params: {path: live.mpk, pace: realtime, loop: true}}\n"
           "  - {id: sink, plugin: null_sink, inputs: [replay]}\n");
  pid_t pid;
  char *url = start_run(d, "live.yaml", &pid);
  /* /api/stats twice: the counters advance; /metrics parses; the page is bundled */
  int rc = mt_run(mt_strf("cd %s && %s fetch.py %s", d, py(), url), &out);
  ck_assert_msg(rc == 0 && strstr(out, "advanced"), "%s", out);
  free(out);
  /* the page in Chromium, driven over the DevTools protocol until its script drew every part from
   * the pushes: then a screenshot, and every console message it produced (it logs nothing: any is an
   * error, a failed load or a warning) */
  rc = mt_run(
      mt_strf("cd %s && HOME=%s timeout 200 %s %s/tests/monitor/cdp_page.py %s %s %s/shot.png %s/profile", d,
              d, py(), mt_env("MYELIN_SOURCE_DIR", "."), chromium, url, d, d),
      &out);
  ck_assert_msg(rc == 0 && strstr(out, "ready\n") && !strstr(out, "not ready") && !strstr(out, "CONSOLE:"),
                "exit %d:\n%s", rc, out);
  free(out);
  stop_run(d, pid);
  /* the screenshot shows each part: the header, plot lines, the map's hot colours, raster dots */
  png p;
  p.s = cairo_image_surface_create_from_png(mt_strf("%s/shot.png", d));
  ck_assert_int_eq(cairo_surface_status(p.s), CAIRO_STATUS_SUCCESS);
  p.w = cairo_image_surface_get_width(p.s);
  p.h = cairo_image_surface_get_height(p.s);
  p.stride = cairo_image_surface_get_stride(p.s);
  p.d = cairo_image_surface_get_data(p.s);
  long header = count_rgb(&p, 0x24, 0x32, 0x3f, 2), blue = count_rgb(&p, 31, 119, 180, 30),
       red = count_rgb(&p, 214, 39, 40, 30), dots = count_rgb(&p, 0x1f, 0x3a, 0x93, 10), hot = 0;
  for (int y = 0; y < p.h; y++)
    for (int x = 0; x < p.w; x++) {
      const unsigned char *px = p.d + (size_t)y * (size_t)p.stride + 4 * (size_t)x;
      hot += px[2] > 200 && px[1] > 100 && px[0] < 80; /* orange: the map around its peak */
    }
  ck_assert_msg(p.w == 1300 && header > 20000, "header: %ld pixels of %dx%d", header, p.w, p.h);
  ck_assert_msg(blue > 300 && red > 300, "plot lines: %ld blue, %ld red pixels", blue, red);
  ck_assert_msg(hot > 50, "map: %ld hot pixels", hot);
  ck_assert_msg(dots > 200, "raster: %ld dot pixels", dots);
  cairo_surface_destroy(p.s);
}
END_TEST

/* A free port, kept bound (listening) by the returned socket. */
static int hold_port(int *port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  ck_assert_int_eq(listen(fd, 1), 0);
  socklen_t l = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &l);
  *port = ntohs(a.sin_port);
  return fd;
}

START_TEST(port_taken_and_bad_addresses) {
  char *d = mt_tmpdir(), *out = NULL;
  mt_write(mt_strf("%s/p.yaml", d),
           "name: short\nstages:\n"
           "  - {id: gen, plugin: gen_source, params: {count: 200}}\n"
           "  - {id: rec, plugin: file_sink, inputs: [gen], params: {path: out.mpk}}\n");
  int port, fd = hold_port(&port);
  int rc = mt_run(mt_strf("cd %s && %s run p.yaml --monitor %d", d, bin(), port), &out);
  ck_assert_msg(rc == 2 && strstr(out, mt_strf("--monitor %d: cannot listen on 127.0.0.1:%d", port, port)) &&
                    strstr(out, "Address already in use"),
                "exit %d: %s", rc, out);
  free(out);
  ck_assert_int_eq(mt_file_size(mt_strf("%s/out.mpk", d)), -1); /* nothing ran */
  rc = mt_run(mt_strf("cd %s && %s run p.yaml --monitor=127.0.0.1:%d", d, bin(), port), &out);
  ck_assert_msg(rc == 2 && strstr(out, "in use"), "exit %d: %s", rc, out);
  free(out);
  close(fd);
  const char *bad[] = {"--monitor",      "--monitor notaport", "--monitor 70000", "--monitor 203.0.113.7:0",
                       "--monitor [::1", "--monitor ="};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    rc = mt_run(mt_strf("cd %s && %s run p.yaml %s", d, bin(), bad[i]), &out);
    ck_assert_msg(rc == 2 && strstr(out, "--monitor"), "%s: exit %d: %s", bad[i], rc, out);
    free(out);
  }
  ck_assert_int_eq(mt_file_size(mt_strf("%s/out.mpk", d)), -1);
  /* a run that ends on its own with the monitor on: exit 0, the page's address on stderr */
  rc = mt_run(mt_strf("cd %s && %s run p.yaml --monitor 0 --stats", d, bin()), &out);
  ck_assert_msg(rc == 0 && strstr(out, "monitor: http://127.0.0.1:") && strstr(out, "wall time"),
                "exit %d: %s", rc, out);
  free(out);
  ck_assert_int_gt(mt_file_size(mt_strf("%s/out.mpk", d)), 0);
  /* --help lists it */
  rc = mt_run(mt_strf("%s run --help", bin()), &out);
  ck_assert_msg(rc == 0 && strstr(out, "--monitor [HOST:]PORT"), "%s", out);
  free(out);
}
END_TEST

int main(void) {
  Suite *s = suite_create("monitor");
  struct {
    const char *name;
    const TTest *t;
  } tests[] = {{"prometheus_text_format", prometheus_text_format},
               {"stats_json", stats_json},
               {"map_slices_and_spikes", map_slices_and_spikes},
               {"tap_keeps_no_reference_to_spikes", tap_keeps_no_reference_to_spikes},
               {"tap_previews_spikes_after_each_take", tap_previews_spikes_after_each_take},
               {"tap_keeps_metrics_and_the_newest_map", tap_keeps_metrics_and_the_newest_map},
               {"port_taken_and_bad_addresses", port_taken_and_bad_addresses},
               {"page_in_chromium", page_in_chromium}};
  for (size_t i = 0; i < sizeof tests / sizeof *tests; i++) {
    TCase *tc = tcase_create(tests[i].name);
    tcase_set_timeout(tc, 280);
    tcase_add_test(tc, tests[i].t);
    suite_add_tcase(s, tc);
  }
  return mt_run_suite(s);
}
