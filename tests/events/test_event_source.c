/*
 * test_event_source.c — the event-camera decoders (plugins/event_common)
 * on files written here from the public format specs with known events
 * (N-MNIST .bin, Prophesee EVT 2.0 and EVT 3.0 .raw, AEDAT 3.1; HDF5 from h5py), truncated and corrupt
 * files (byte offset named, good prefix kept), and the `event_source`
 * plugin through the harness: an N-MNIST-layout folder with labels, split,
 * shuffle (the `dataset` permutation), epochs, limit, chunking, and a
 * corrupt file mid-dataset.
 */
#include "events.h"
#include "load.h"
#include "myelin/harness.h"
#include "testutil.h"

static char *tmp;
static void setup(void) { tmp = mt_tmpdir(); }
static void teardown(void) {
  char *cmd = mt_strf("rm -rf %s", tmp);
  ck_assert_int_eq(system(cmd), 0);
}

typedef struct kev {
  uint16_t x, y;
  uint8_t p;
  int64_t t;
} kev;

static void write_bytes(const char *path, const void *b, size_t n) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(b, 1, n, f), n);
  fclose(f);
}

/* N-MNIST: x, y, p<<7 | t[22:16], t[15:8], t[7:0]. */
static size_t put_nmnist(uint8_t *b, uint8_t x, uint8_t y, uint8_t p, uint32_t t) {
  b[0] = x;
  b[1] = y;
  b[2] = (uint8_t)(p << 7 | ((t >> 16) & 0x7f));
  b[3] = (uint8_t)(t >> 8);
  b[4] = (uint8_t)t;
  return 5;
}

static void check_events(const ev_array *a, const kev *want, size_t n) {
  ck_assert_uint_eq(a->n, n);
  for (size_t i = 0; i < n; i++) {
    ck_assert_msg(a->x[i] == want[i].x && a->y[i] == want[i].y && a->p[i] == want[i].p &&
                      a->t[i] == want[i].t,
                  "event %zu: got (%u,%u,%u,%lld) want (%u,%u,%u,%lld)", i, a->x[i], a->y[i], a->p[i],
                  (long long)a->t[i], want[i].x, want[i].y, want[i].p, (long long)want[i].t);
  }
}

START_TEST(nmnist_known_events_and_overflow) {
  uint8_t b[64];
  size_t n = 0;
  n += put_nmnist(b + n, 3, 5, 1, 100);
  n += put_nmnist(b + n, 33, 0, 0, 8000);
  n += put_nmnist(b + n, 0, 240, 0, 0); /* overflow marker: +2^13 from here on */
  n += put_nmnist(b + n, 10, 33, 1, 50);
  n += put_nmnist(b + n, 7, 7, 0, 0x7fffff);
  kev want[] = {{3, 5, 1, 100}, {33, 0, 0, 8000}, {10, 33, 1, 50 + 8192}, {7, 7, 0, 0x7fffff + 8192}};
  ev_array a = {0};
  ev_sensor s = {0, 0, 0};
  char err[512];
  ck_assert_int_eq(ev_decode_nmnist(b, n, "x.bin", &s, &a, err, sizeof err), 0);
  check_events(&a, want, 4);
  ck_assert(s.w == 34 && s.h == 34 && s.p == 2);
  /* truncated: 2 bytes of a 6th record; the 4 events stay */
  a.n = 0;
  ck_assert_int_eq(ev_decode_nmnist(b, n + 2, "x.bin", &s, &a, err, sizeof err), MYELIN_EFORMAT);
  check_events(&a, want, 4);
  ck_assert_msg(strstr(err, "x.bin") && strstr(err, "byte offset 25"), "%s", err);
  /* corrupt: x = 40 on a 34x34 sensor, at the 4th record (offset 15) */
  b[15] = 40;
  a.n = 0;
  ck_assert_int_eq(ev_decode_nmnist(b, n, "x.bin", &s, &a, err, sizeof err), MYELIN_EFORMAT);
  check_events(&a, want, 2);
  ck_assert_msg(strstr(err, "byte offset 15") && strstr(err, "x=40"), "%s", err);
  ev_free(&a);
}
END_TEST

static size_t put32(uint8_t *b, uint32_t w) {
  for (int i = 0; i < 4; i++)
    b[i] = (uint8_t)(w >> (8 * i));
  return 4;
}
static size_t put16(uint8_t *b, uint32_t w) {
  b[0] = (uint8_t)w;
  b[1] = (uint8_t)(w >> 8);
  return 2;
}

START_TEST(evt2_known_events) {
  static const char hdr[] =
      "% camera_integrator_name Prophesee\n% evt 2.0\n% format EVT2;height=480;width=640\n"
      "% geometry 640x480\n% end\n";
  uint8_t b[256];
  size_t n = strlen(hdr);
  memcpy(b, hdr, n);
  kev want[] = {{5, 6, 1, (100 << 6) | 7}, {639, 479, 0, (100 << 6) | 63}, {0, 1, 1, (5000000 << 6) | 0}};
  n += put32(b + n, 0x8u << 28 | 100);
  for (int i = 0; i < 2; i++)
    n += put32(b + n, (uint32_t)want[i].p << 28 | (uint32_t)(want[i].t & 63) << 22 |
                          (uint32_t)want[i].x << 11 | want[i].y);
  n += put32(b + n, 0xAu << 28 | 12345); /* trigger: skipped */
  n += put32(b + n, 0x8u << 28 | 5000000);
  n += put32(b + n, 1u << 28 | 0 << 22 | 0 << 11 | 1);
  ev_array a = {0};
  ev_sensor s = {0, 0, 0};
  char err[512];
  ck_assert_uint_eq(ev_format_guess(b, n, "rec.dat"), EV_FMT_EVT2);
  ck_assert_int_eq(ev_decode(EV_FMT_EVT2, b, n, "r.raw", &s, &a, err, sizeof err), 0);
  check_events(&a, want, 3);
  ck_assert(s.w == 640 && s.h == 480 && s.p == 2);
  /* a reserved word type at the 5th word */
  size_t off = strlen(hdr) + 16;
  b[off + 3] = 0x30;
  a.n = 0;
  ck_assert_int_eq(ev_decode(EV_FMT_EVT2, b, n, "r.raw", &s, &a, err, sizeof err), MYELIN_EFORMAT);
  check_events(&a, want, 2);
  ck_assert_msg(strstr(err, mt_strf("byte offset %zu", off)) && strstr(err, "0x3"), "%s", err);
  b[off + 3] = 0x80;
  a.n = 0;
  ck_assert_int_eq(ev_decode(EV_FMT_EVT2, b, n - 1, "r.raw", &s, &a, err, sizeof err), MYELIN_EFORMAT);
  check_events(&a, want, 2);
  ck_assert_msg(strstr(err, mt_strf("byte offset %zu", n - 4)) && strstr(err, "truncated"), "%s", err);
  ev_free(&a);
}
END_TEST

START_TEST(evt3_known_events_vectors_and_loop) {
  static const char hdr[] = "% evt 3.0\n% format EVT3;height=720;width=1280\n% end\n";
  uint8_t b[256];
  size_t n = strlen(hdr);
  memcpy(b, hdr, n);
  n += put16(b + n, 0x8000 | 0xFFF);         /* TIME_HIGH 4095 */
  n += put16(b + n, 0x6000 | 0x010);         /* TIME_LOW 16 */
  n += put16(b + n, 0x0000 | 700);           /* y = 700 */
  n += put16(b + n, 0x2000 | 1 << 11 | 9);   /* x = 9, p = 1 */
  n += put16(b + n, 0x3000 | 0 << 11 | 100); /* vector base x = 100, p = 0 */
  n += put16(b + n, 0x4000 | 0x801);         /* VECT_12: x = 100, 111 */
  n += put16(b + n, 0x5000 | 0x03);          /* VECT_8: x = 112, 113 */
  n += put16(b + n, 0xA000 | 0x5);           /* trigger: skipped */
  n += put16(b + n, 0x8000 | 0x001);         /* TIME_HIGH 1 < 4095: the 24-bit time looped */
  n += put16(b + n, 0x6000 | 0x002);
  n += put16(b + n, 0x2000 | 0 << 11 | 1279);
  int64_t t0 = (4095 << 12) | 16, t1 = (1 << 24) + (1 << 12) + 2;
  kev want[] = {{9, 700, 1, t0},   {100, 700, 0, t0}, {111, 700, 0, t0},
                {112, 700, 0, t0}, {113, 700, 0, t0}, {1279, 700, 0, t1}};
  ev_array a = {0};
  ev_sensor s = {0, 0, 0};
  char err[512];
  ck_assert_uint_eq(ev_format_guess(b, n, NULL), EV_FMT_EVT3);
  ck_assert_int_eq(ev_decode(EV_FMT_EVT3, b, n, "r.raw", &s, &a, err, sizeof err), 0);
  check_events(&a, want, 6);
  ck_assert(s.w == 1280 && s.h == 720);
  /* a vector running off the sensor's right edge (x = 1279 + 11) */
  size_t vb = strlen(hdr) + 8;
  b[vb] = (uint8_t)(1279 & 0xff);
  b[vb + 1] = (uint8_t)(0x30 | 1279 >> 8);
  a.n = 0;
  ck_assert_int_eq(ev_decode(EV_FMT_EVT3, b, n, "r.raw", &s, &a, err, sizeof err), MYELIN_EFORMAT);
  check_events(&a, want, 1);
  ck_assert_msg(strstr(err, mt_strf("byte offset %zu", vb + 2)) && strstr(err, "x=1290"), "%s", err);
  /* a reserved word type */
  b[vb + 1] = 0x90;
  a.n = 0;
  ck_assert_int_eq(ev_decode(EV_FMT_EVT3, b, n, "r.raw", &s, &a, err, sizeof err), MYELIN_EFORMAT);
  ck_assert_msg(strstr(err, mt_strf("byte offset %zu", vb)) && strstr(err, "0x9"), "%s", err);
  ev_free(&a);
}
END_TEST

/* AEDAT 3.1 packet header: type, source, eventSize, tsOffset, tsOverflow, capacity, number, valid. */
static size_t put_packet(uint8_t *b, uint16_t type, uint32_t size, uint32_t overflow, uint32_t cap,
                         uint32_t number) {
  put16(b, type);
  put16(b + 2, 1);
  put32(b + 4, size);
  put32(b + 8, 4);
  put32(b + 12, overflow);
  put32(b + 16, cap);
  put32(b + 20, number);
  put32(b + 24, number);
  return 28;
}
static size_t put_pol(uint8_t *b, uint32_t x, uint32_t y, uint32_t p, uint32_t valid, uint32_t ts) {
  put32(b, x << 17 | y << 2 | p << 1 | valid);
  put32(b + 4, ts);
  return 8;
}

START_TEST(aedat31_known_events) {
  static const char hdr[] = "#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DAVIS240C\r\n#!END-HEADER\r\n";
  uint8_t b[512];
  size_t n = strlen(hdr);
  memcpy(b, hdr, n);
  n += put_packet(b + n, 1, 8, 0, 4, 3); /* capacity 4, 3 events used */
  n += put_pol(b + n, 239, 179, 1, 1, 100);
  n += put_pol(b + n, 5, 6, 0, 0, 110); /* invalidated: skipped */
  n += put_pol(b + n, 0, 0, 0, 1, 120);
  n += put_pol(b + n, 9, 9, 1, 1, 999);  /* beyond eventNumber: unused capacity */
  n += put_packet(b + n, 2, 4, 0, 2, 2); /* another event type (frames, IMU...): skipped */
  put32(b + n, 0xdeadbeef);
  put32(b + n + 4, 0xdeadbeef);
  n += 8;
  n += put_packet(b + n, 1, 8, 3, 2, 2); /* after 3 timestamp overflows */
  n += put_pol(b + n, 7, 8, 0, 1, 5);
  n += put_pol(b + n, 200, 100, 1, 1, 7);
  kev want[] = {{239, 179, 1, 100},
                {0, 0, 0, 120},
                {7, 8, 0, ((int64_t)3 << 31) | 5},
                {200, 100, 1, ((int64_t)3 << 31) | 7}};
  ev_array a = {0};
  ev_sensor s = {0, 0, 0};
  char err[512];
  ck_assert_uint_eq(ev_format_guess(b, n, "x.aedat"), EV_FMT_AEDAT3);
  ck_assert_msg(ev_decode(EV_FMT_AEDAT3, b, n, "r.aedat", &s, &a, err, sizeof err) == 0, "%s", err);
  check_events(&a, want, 4);
  ck_assert(s.w == 240 && s.h == 180 && s.p == 2); /* no size in the file: the largest coordinates */
  /* cut inside the last event: the 3 events before it stay */
  a.n = 0;
  s = (ev_sensor){240, 180, 2};
  ck_assert_int_eq(ev_decode(EV_FMT_AEDAT3, b, n - 3, "r.aedat", &s, &a, err, sizeof err), MYELIN_EFORMAT);
  check_events(&a, want, 3);
  ck_assert_msg(strstr(err, mt_strf("byte offset %zu", n - 8)) && strstr(err, "5 of its 8"), "%s", err);
  /* an event outside a given sensor, and a bad packet header */
  a.n = 0;
  s = (ev_sensor){128, 128, 2};
  ck_assert_int_eq(ev_decode(EV_FMT_AEDAT3, b, n, "r.aedat", &s, &a, err, sizeof err), MYELIN_EFORMAT);
  ck_assert_msg(strstr(err, mt_strf("byte offset %zu", strlen(hdr) + 28)) && strstr(err, "x=239"), "%s", err);
  b[strlen(hdr) + 4] = 0; /* eventSize 0 */
  a.n = 0;
  s = (ev_sensor){0, 0, 0};
  ck_assert_int_eq(ev_decode(EV_FMT_AEDAT3, b, n, "r.aedat", &s, &a, err, sizeof err), MYELIN_EFORMAT);
  ck_assert_msg(strstr(err, mt_strf("byte offset %zu", strlen(hdr))) && strstr(err, "bad packet header"),
                "%s", err);
  ev_free(&a);
}
END_TEST

/* AEDAT 2.0 record: big-endian address, big-endian timestamp. */
static size_t put_a2(uint8_t *b, uint32_t addr, uint32_t ts) {
  for (int i = 0; i < 4; i++) {
    b[i] = (uint8_t)(addr >> (24 - 8 * i));
    b[4 + i] = (uint8_t)(ts >> (24 - 8 * i));
  }
  return 8;
}

/* DVS128 (jAER's default layout): pol bit 0 (0 = ON), x = 127 - bits 1..7,
 * y = bits 8..14, bit 15 special; timestamps unwrapped past 2^32. */
START_TEST(aedat2_dvs128_known_events) {
  static const char hdr[] = "#!AER-DAT2.0\r\n# This is a raw AE data file - do not edit\r\n"
                            "# AEChip: ch.unizh.ini.jaer.chip.retina.DVS128\r\n";
  uint8_t b[256];
  size_t n = strlen(hdr);
  memcpy(b, hdr, n);
  n += put_a2(b + n, 3u << 8 | 5u << 1 | 0, 100);   /* x = 122, y = 3, ON */
  n += put_a2(b + n, 127u << 8 | 0u << 1 | 1, 200); /* x = 127, y = 127, OFF */
  n += put_a2(b + n, 0x8000u | 7, 250);             /* special: skipped */
  n += put_a2(b + n, 0u << 8 | 127u << 1 | 1, 0xfffffff0u);
  n += put_a2(b + n, 9u << 8 | 1u << 1 | 0, 0x10); /* the 32-bit timestamp wrapped */
  kev want[] = {
      {122, 3, 1, 100}, {127, 127, 0, 200}, {0, 0, 0, 0xfffffff0}, {126, 9, 1, ((int64_t)1 << 32) + 0x10}};
  ev_array a = {0};
  ev_sensor s = {0, 0, 0};
  char err[512];
  ck_assert_uint_eq(ev_format_guess(b, n, "x.dat"), EV_FMT_AEDAT2);
  ck_assert_msg(ev_decode(EV_FMT_AEDAT2, b, n, "r.aedat", &s, &a, err, sizeof err) == 0, "%s", err);
  check_events(&a, want, 4);
  ck_assert(s.w == 128 && s.h == 128 && s.p == 2);
  /* cut 3 bytes into the last record: the first 3 events stay */
  a.n = 0;
  ck_assert_int_eq(ev_decode(EV_FMT_AEDAT2, b, n - 5, "r.aedat", &s, &a, err, sizeof err), MYELIN_EFORMAT);
  check_events(&a, want, 3);
  ck_assert_msg(strstr(err, mt_strf("byte offset %zu", n - 8)) && strstr(err, "3 of its 8"), "%s", err);
  /* a sensor too small for the second event */
  a.n = 0;
  s = (ev_sensor){128, 100, 2};
  ck_assert_int_eq(ev_decode(EV_FMT_AEDAT2, b, n, "r.aedat", &s, &a, err, sizeof err), MYELIN_EFORMAT);
  check_events(&a, want, 1);
  ck_assert_msg(strstr(err, mt_strf("byte offset %zu", strlen(hdr) + 8)) && strstr(err, "y=127"), "%s", err);
  ev_free(&a);
}
END_TEST

/* DAVIS (AEChip names a DAVIS chip): bit 31 APS/IMU and bit 10 triggers
 * skipped; pol bit 11 (1 = ON), x = W - 1 - bits 12..21, y = bits 22..30. */
START_TEST(aedat2_davis_known_events) {
  static const char hdr[] = "#!AER-DAT2.0\r\n# AEChip: eu.seebetter.ini.chips.davis.DAVIS240C\r\n";
  uint8_t b[256];
  size_t n = strlen(hdr);
  memcpy(b, hdr, n);
  n += put_a2(b + n, 179u << 22 | 0u << 12 | 1u << 11, 5);  /* x = 239, y = 179, ON */
  n += put_a2(b + n, 0x80000000u | 3u << 22 | 4u << 12, 6); /* APS sample */
  n += put_a2(b + n, 1u << 10, 7);                          /* external trigger */
  n += put_a2(b + n, 0x80000C00u, 8);                       /* IMU */
  n += put_a2(b + n, 7u << 22 | 239u << 12 | 0u << 11, 9);  /* x = 0, y = 7, OFF */
  size_t bad = n;
  n += put_a2(b + n, 7u << 22 | 240u << 12, 10); /* column 240 on a 240-wide chip */
  kev want[] = {{239, 179, 1, 5}, {0, 7, 0, 9}};
  ev_array a = {0};
  ev_sensor s = {0, 0, 0};
  char err[512];
  ck_assert_int_eq(ev_decode(EV_FMT_AEDAT2, b, n, "d.aedat", &s, &a, err, sizeof err), MYELIN_EFORMAT);
  check_events(&a, want, 2);
  ck_assert(s.w == 240 && s.h == 180);
  ck_assert_msg(strstr(err, mt_strf("byte offset %zu", bad)) && strstr(err, "x=240"), "%s", err);
  a.n = 0;
  ck_assert_int_eq(ev_decode(EV_FMT_AEDAT2, b, bad, "d.aedat", &s, &a, err, sizeof err), 0);
  check_events(&a, want, 2);
  /* a DAVIS chip of unknown size: `sensor` is needed to flip x */
  static const char hdr2[] = "#!AER-DAT2.0\r\n# AEChip: eu.seebetter.ini.chips.davis.DavisFoo\r\n";
  memcpy(b, hdr2, strlen(hdr2));
  size_t m = strlen(hdr2) + put_a2(b + strlen(hdr2), 0, 1);
  a.n = 0;
  s = (ev_sensor){0, 0, 0};
  ck_assert_int_eq(ev_decode(EV_FMT_AEDAT2, b, m, "d.aedat", &s, &a, err, sizeof err), MYELIN_EFORMAT);
  ck_assert_msg(strstr(err, "set `sensor`"), "%s", err);
  s = (ev_sensor){10, 10, 2};
  ck_assert_int_eq(ev_decode(EV_FMT_AEDAT2, b, m, "d.aedat", &s, &a, err, sizeof err), 0);
  ck_assert(a.n == 1 && a.x[0] == 9 && a.y[0] == 0 && a.p[0] == 0 && a.t[0] == 1);
  ev_free(&a);
}
END_TEST

/* ---- the plugin ----------------------------------------------------------- */

/* dir/Train/<digit>/<k>.bin: sample k of class d has 1 + d + k events at
 * x = d, y = k, t = 10 * i. */
static void write_dataset(const char *dir, const char *split, int classes, int per_class) {
  for (int d = 0; d < classes; d++) {
    char *cd = mt_strf("%s/%s/%d", dir, split, d);
    ck_assert_int_eq(mt_run(mt_strf("mkdir -p %s", cd), NULL), 0);
    for (int k = 0; k < per_class; k++) {
      uint8_t b[5 * 64];
      size_t n = 0;
      for (int i = 0; i < 1 + d + k; i++)
        n += put_nmnist(b + n, (uint8_t)d, (uint8_t)k, (uint8_t)(i & 1), 10u * i);
      write_bytes(mt_strf("%s/%05d.bin", cd, k), b, n);
    }
  }
}

static myelin_harness *run_source(const char *params) {
  char err[1024];
  myelin_harness *h = myelin_harness_new("event_source", params, err, sizeof err);
  ck_assert_msg(h != NULL, "%s", err);
  return h;
}

static int64_t field(const myelin_msg *m, const char *key) {
  int64_t v;
  ck_assert_msg(myelin_msg_int(m, key, &v) == 0, "no %s", key);
  return v;
}

START_TEST(folder_labels_split_shuffle_epochs) {
  write_dataset(tmp, "Train", 3, 4);
  write_dataset(tmp, "Test", 2, 1);
  myelin_harness *h = run_source(mt_strf("{path: %s, split: train, shuffle: true, seed: 5, epochs: 2}", tmp));
  ck_assert_int_eq(myelin_harness_start(h), 0);
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "out"), 24);
  uint32_t order[12];
  for (int e = 0; e < 2; e++) {
    ds_permutation(5, (uint64_t)e, order, 12);
    for (int i = 0; i < 12; i++) {
      myelin_msg *m = myelin_harness_output(h, "out", (size_t)(12 * e + i));
      ev_view v;
      char err[256];
      ck_assert_msg(ev_view_of(m, &v, err, sizeof err) == 0, "%s", err);
      int64_t idx = field(m, "index"), d = idx / 4, k = idx % 4;
      ck_assert_int_eq(idx, order[i]);
      ck_assert_int_eq(field(m, "label"), d);
      ck_assert_int_eq(field(m, "epoch"), e);
      char split[16];
      ck_assert_int_eq(myelin_msg_str(m, "split", split, sizeof split), 0);
      ck_assert_str_eq(split, "train");
      ck_assert_uint_eq(v.n, (size_t)(1 + d + k));
      ck_assert(v.sensor.w == 34 && v.sensor.h == 34 && v.sensor.p == 2);
      for (size_t j = 0; j < v.n; j++)
        ck_assert(v.x[j] == d && v.y[j] == k && v.p[j] == (j & 1) && v.t[j] == (int64_t)(10 * j));
    }
  }
  myelin_harness_free(h);
  /* the test split, in order, with a limit; no split: an error naming it */
  h = run_source(mt_strf("{path: %s, split: Test, limit: 1}", tmp));
  ck_assert_int_eq(myelin_harness_start(h), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "out"), 1);
  ck_assert_int_eq(field(myelin_harness_output(h, "out", 0), "label"), 0);
  myelin_harness_free(h);
  char err[1024];
  h = myelin_harness_new("event_source", mt_strf("{path: %s}", tmp), err, sizeof err);
  ck_assert_ptr_null(h);
  ck_assert_msg(strstr(err, "split"), "%s", err);
}
END_TEST

START_TEST(chunks_by_time) {
  uint8_t b[5 * 10];
  size_t n = 0;
  uint32_t ts[] = {0, 400, 999, 1000, 3500, 3999, 4000};
  for (size_t i = 0; i < 7; i++)
    n += put_nmnist(b + n, 1, 2, 0, ts[i]);
  char *f = mt_strf("%s/one.bin", tmp);
  write_bytes(f, b, n);
  myelin_harness *h = run_source(mt_strf("{path: %s, chunk_us: 1000}", f));
  ck_assert_int_eq(myelin_harness_start(h), 0);
  /* windows 0 (3 events), 1 (1), 3 (2), 4 (1, last); window 2 is empty */
  size_t want_n[] = {3, 1, 2, 1};
  int64_t want_chunk[] = {0, 1, 3, 4};
  ck_assert_uint_eq(myelin_harness_count(h, "out"), 4);
  for (size_t i = 0; i < 4; i++) {
    myelin_msg *m = myelin_harness_output(h, "out", i);
    ev_view v;
    char err[256];
    ck_assert_int_eq(ev_view_of(m, &v, err, sizeof err), 0);
    ck_assert_uint_eq(v.n, want_n[i]);
    ck_assert_int_eq(field(m, "chunk"), want_chunk[i]);
    int last = -1;
    ck_assert_int_eq(myelin_obj_bool(myelin_msg_get(m, "last"), &last), 0);
    ck_assert_int_eq(last, i == 3);
    ck_assert(myelin_obj_type_of(myelin_msg_get(m, "label")) == MYELIN_OBJ_NONE);
  }
  myelin_harness_free(h);
}
END_TEST

START_TEST(corrupt_file_delivers_prefix_and_names_offset) {
  write_dataset(tmp, "Train", 2, 2);
  /* Train/1/00001.bin has 3 events: cut it inside the third */
  char *bad = mt_strf("%s/Train/1/00001.bin", tmp);
  ck_assert_int_eq(truncate(bad, 13), 0);
  myelin_harness *h = run_source(mt_strf("{path: %s, split: train}", tmp));
  ck_assert_int_ne(myelin_harness_start(h), 0);
  const char *e = myelin_harness_error(h);
  ck_assert_msg(strstr(e, "00001.bin") && strstr(e, "byte offset 10") && strstr(e, "2 events before it"),
                "%s", e);
  /* the 3 good files, then the good prefix of the bad one */
  ck_assert_uint_eq(myelin_harness_count(h, "out"), 4);
  ev_view v;
  char err[256];
  ck_assert_int_eq(ev_view_of(myelin_harness_output(h, "out", 3), &v, err, sizeof err), 0);
  ck_assert_uint_eq(v.n, 2);
  myelin_harness_free(h);
}
END_TEST

START_TEST(evt3_file_through_the_plugin) {
  static const char hdr[] = "% evt 3.0\n% geometry 64x48\n% end\n";
  uint8_t b[128];
  size_t n = strlen(hdr);
  memcpy(b, hdr, n);
  n += put16(b + n, 0x8000 | 1);
  n += put16(b + n, 0x6000 | 5);
  n += put16(b + n, 0x0000 | 47);
  n += put16(b + n, 0x2000 | 1 << 11 | 63);
  char *f = mt_strf("%s/cam.raw", tmp);
  write_bytes(f, b, n);
  myelin_harness *h = run_source(mt_strf("{path: %s}", f));
  ck_assert_int_eq(myelin_harness_start(h), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "out"), 1);
  ev_view v;
  char err[256];
  ck_assert_int_eq(ev_view_of(myelin_harness_output(h, "out", 0), &v, err, sizeof err), 0);
  ck_assert(v.sensor.w == 64 && v.sensor.h == 48 && v.n == 1);
  ck_assert(v.x[0] == 63 && v.y[0] == 47 && v.p[0] == 1 && v.t[0] == 4096 + 5);
  myelin_harness_free(h);
  /* the sensor param overrides the header: the event is then outside */
  h = run_source(mt_strf("{path: %s, sensor: [32, 32, 2]}", f));
  ck_assert_int_ne(myelin_harness_start(h), 0);
  ck_assert_msg(strstr(myelin_harness_error(h), "outside the sensor 32x32x2"), "%s", myelin_harness_error(h));
  myelin_harness_free(h);
}
END_TEST

/* HDF5 files written by h5py in the three layouts event_source finds. */
START_TEST(hdf5_layouts) {
  MT_NEED_PYTHON("h5py numpy", "HDF5 event files written by h5py");
  char *py = mt_strf(
      "%s -c \"import h5py, numpy as np\n"
      "x = np.array([1, 639, 5], '<u2'); y = np.array([2, 479, 0], '<u2'); p = np.array([1, 0, 1], 'u1')\n"
      "t = np.array([10, 20, 1 << 40], '<i8')\n"
      "with h5py.File('%s/a.h5', 'w') as f:\n"
      "  g = f.create_group('events'); g.attrs['width'] = 640; g.attrs['height'] = 480\n"
      "  [g.create_dataset(k, data=v, compression='gzip') for k, v in zip('xypt', (x, y, p, t))]\n"
      "with h5py.File('%s/b.hdf5', 'w') as f:\n"
      "  [f.create_dataset(k, data=v.astype('<i4')) for k, v in zip('xypt', (x, y, p, t %% 1000))]\n"
      "r = np.zeros(3, [('x', '<u2'), ('y', '<u2'), ('p', '<i2'), ('t', '<i8')])\n"
      "r['x'], r['y'], r['p'], r['t'] = x, y, p, t\n"
      "with h5py.File('%s/c.h5', 'w') as f: f.create_dataset('CD/events', data=r)\n"
      "with h5py.File('%s/d.h5', 'w') as f: f.create_dataset('nothing', data=x)\n\"",
      mt_env("MYELIN_PYTHON", "/usr/bin/python3"), tmp, tmp, tmp, tmp);
  char *out;
  int rc = mt_run(py, &out);
  ck_assert_msg(rc == 0, "%s", out);
  free(out);
  const char *files[] = {"a.h5", "b.hdf5", "c.h5"};
  for (int k = 0; k < 3; k++) {
    myelin_harness *h = run_source(mt_strf("{path: %s/%s}", tmp, files[k]));
    ck_assert_msg(myelin_harness_start(h) == 0, "%s: %s", files[k], myelin_harness_error(h));
    ev_view v;
    char err[256];
    ck_assert_int_eq(ev_view_of(myelin_harness_output(h, "out", 0), &v, err, sizeof err), 0);
    ck_assert_uint_eq(v.n, 3);
    ck_assert(v.x[1] == 639 && v.y[1] == 479 && v.p[0] == 1 && v.p[1] == 0 && v.x[2] == 5);
    ck_assert_int_eq(v.t[2], k == 1 ? (((int64_t)1 << 40) % 1000) : ((int64_t)1 << 40));
    ck_assert(v.sensor.w == 640 && v.sensor.h == 480); /* attributes, or the largest coordinates */
    myelin_harness_free(h);
  }
  myelin_harness *h = run_source(mt_strf("{path: %s/d.h5}", tmp));
  ck_assert_int_ne(myelin_harness_start(h), 0);
  ck_assert_msg(strstr(myelin_harness_error(h), "no events found"), "%s", myelin_harness_error(h));
  myelin_harness_free(h);
}
END_TEST

int main(void) {
  Suite *s = suite_create("event_source");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, nmnist_known_events_and_overflow);
  tcase_add_test(tc, evt2_known_events);
  tcase_add_test(tc, evt3_known_events_vectors_and_loop);
  tcase_add_test(tc, aedat31_known_events);
  tcase_add_test(tc, aedat2_dvs128_known_events);
  tcase_add_test(tc, aedat2_davis_known_events);
  tcase_add_test(tc, folder_labels_split_shuffle_epochs);
  tcase_add_test(tc, chunks_by_time);
  tcase_add_test(tc, corrupt_file_delivers_prefix_and_names_offset);
  tcase_add_test(tc, evt3_file_through_the_plugin);
  tcase_add_test(tc, hdf5_layouts);
  suite_add_tcase(s, tc);
  return mt_run_suite(s);
}
