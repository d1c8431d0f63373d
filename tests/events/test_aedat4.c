/*
 * test_aedat4.c — AEDAT 4.0 (plugins/event_common/evaedat4.c): files written
 * here from the public format description with known events — the header
 * and packet FlatBuffers from the generated C++ builder (aedat4_writer.cpp),
 * bodies compressed with liblz4's frame API and libzstd — read back event
 * for event with each compression; other streams and the packet index
 * skipped; truncated and corrupt files (byte offset named, good prefix
 * kept); and event_source reading a file and a live TCP stream framed as
 * dv-processing's NetworkWriter sends it.
 */
#include <arpa/inet.h>
#include <lz4frame.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zstd.h>

#include "aedat4_writer.h"
#include "events.h"
#include "myelin/harness.h"
#include "testutil.h"

static char *tmp;
static void setup(void) { tmp = mt_tmpdir(); }
static void teardown(void) {
  char *cmd = mt_strf("rm -rf %s", tmp);
  ck_assert_int_eq(system(cmd), 0);
}

/* A growing byte buffer. */
typedef struct buf {
  uint8_t *b;
  size_t n, cap;
} buf;
static void put(buf *o, const void *p, size_t n) {
  if (o->n + n > o->cap) {
    o->cap = (o->n + n) * 2 + 256;
    o->b = realloc(o->b, o->cap);
    ck_assert_ptr_nonnull(o->b);
  }
  memcpy(o->b + o->n, p, n);
  o->n += n;
}
static void put_le32(buf *o, uint32_t v) {
  uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
  put(o, b, 4);
}

/* The body as the header's compression stores it (malloc'ed). */
static uint8_t *compress_body(int compression, const uint8_t *b, size_t n, size_t *out) {
  if (compression == 0) {
    uint8_t *c = malloc(n);
    memcpy(c, b, n);
    *out = n;
    return c;
  }
  if (compression <= 2) {
    size_t cap = LZ4F_compressFrameBound(n, NULL);
    uint8_t *c = malloc(cap);
    *out = LZ4F_compressFrame(c, cap, b, n, NULL);
    ck_assert(!LZ4F_isError(*out));
    return c;
  }
  size_t cap = ZSTD_compressBound(n);
  uint8_t *c = malloc(cap);
  *out = ZSTD_compress(c, cap, b, n, compression == 4 ? 19 : 3);
  ck_assert(!ZSTD_isError(*out));
  return c;
}

/* A packet: stream id, body size, the (compressed) size-prefixed body. */
static void put_packet(buf *o, int compression, int32_t stream, uint8_t *fb, size_t n) {
  size_t cn;
  uint8_t *c = compress_body(compression, fb, n, &cn);
  put_le32(o, (uint32_t)stream);
  put_le32(o, (uint32_t)cn);
  put(o, c, cn);
  free(c);
  free(fb);
}

static void put_events(buf *o, int compression, int32_t stream, const int64_t *t, const int16_t *x,
                       const int16_t *y, const uint8_t *on, size_t count) {
  size_t n;
  uint8_t *fb = a4w_events(t, x, y, on, count, &n);
  put_packet(o, compression, stream, fb, n);
}

static void put_header(buf *o, int compression, int64_t table, const char *info) {
  size_t n;
  uint8_t *h = a4w_header(compression, table, info, &n);
  put(o, h, n);
  free(h);
}

/* dv-processing's stream description: stream 0 events (346x260), 1 frames. */
static const char info_xml[] =
    "<dv version=\"2.0\"><node name=\"outInfo\" path=\"/outInfo/\">"
    "<node name=\"0\" path=\"/outInfo/0/\"><attr key=\"compression\" type=\"string\">NONE</attr>"
    "<attr key=\"typeIdentifier\" type=\"string\">EVTS</attr>"
    "<node name=\"info\" path=\"/outInfo/0/info/\"><attr key=\"sizeX\" type=\"int\">346</attr>"
    "<attr key=\"sizeY\" type=\"int\">260</attr><attr key=\"source\" "
    "type=\"string\">DAVIS346_1</attr></node></node>"
    "<node name=\"1\" path=\"/outInfo/1/\"><attr key=\"typeIdentifier\" type=\"string\">FRME</attr>"
    "<node name=\"info\" path=\"/outInfo/1/info/\"><attr key=\"sizeX\" type=\"int\">346</attr>"
    "<attr key=\"sizeY\" type=\"int\">260</attr></node></node></node></dv>";

/* The known events: 3 in the first packet, 2 in the last. */
static const int64_t T[] = {1700000000000000LL, 1700000000000007LL, 1700000000000007LL, 1700000000001000LL,
                            1700000000002000LL};
static const int16_t X[] = {0, 345, 17, 200, 5};
static const int16_t Y[] = {0, 259, 100, 3, 250};
static const uint8_t ON[] = {1, 0, 1, 0, 1};

/* A whole file: version, header, events, a frame packet, an event packet of
 * a second camera (stream 2, not named: skipped), events, the packet index
 * (bytes that are no packet). Offsets of the packets into off[]. */
static buf make_file(int compression, size_t off[4]) {
  buf o = {0};
  put(&o, "#!AER-DAT4.0\r\n", 14);
  size_t hpos = o.n;
  put_header(&o, compression, -1, info_xml);
  off[0] = o.n;
  put_events(&o, compression, 0, T, X, Y, ON, 3);
  off[1] = o.n;
  size_t n;
  uint8_t *frame = a4w_other("FRME", &n);
  put_packet(&o, compression, 1, frame, n);
  off[2] = o.n;
  put_events(&o, compression, 2, T, X, Y, ON, 1);
  off[3] = o.n;
  put_events(&o, compression, 0, T + 3, X + 3, Y + 3, ON + 3, 2);
  /* the index: the header is rewritten with its position, same size */
  size_t table = o.n, hn;
  uint8_t *h = a4w_header(compression, (int64_t)table, info_xml, &hn);
  ck_assert_uint_eq(hn, off[0] - hpos);
  memcpy(o.b + hpos, h, hn);
  free(h);
  put(&o, "\xff\xff\xff\xff\x01\x00\x00\x00index", 13);
  return o;
}

static void check_known(const ev_array *a, size_t n) {
  ck_assert_uint_eq(a->n, n);
  for (size_t i = 0; i < n; i++)
    ck_assert_msg(a->x[i] == X[i] && a->y[i] == Y[i] && a->p[i] == ON[i] && a->t[i] == T[i],
                  "event %zu: got (%u,%u,%u,%lld)", i, a->x[i], a->y[i], a->p[i], (long long)a->t[i]);
}

START_TEST(known_events_each_compression) {
  int comp[] = {0, 1, 2, 3, 4};
  for (size_t c = 0; c < 5; c++) {
    size_t off[4];
    buf f = make_file(comp[c], off);
    ev_array a = {0};
    ev_sensor s = {0, 0, 0};
    char err[512] = "";
    ck_assert_uint_eq(ev_format_guess(f.b, f.n, "x.aedat4"), EV_FMT_AEDAT4);
    ck_assert_msg(ev_decode_aedat4(f.b, f.n, "r.aedat4", &s, &a, err, sizeof err) == 0, "compression %d: %s",
                  comp[c], err);
    check_known(&a, 5);
    ck_assert(s.w == 346 && s.h == 260 && s.p == 2);
    /* cut inside the last packet: the first packet's 3 events stay */
    a.n = 0;
    size_t cut = off[3] + 8 + 5;
    ck_assert_int_eq(ev_decode_aedat4(f.b, cut, "r.aedat4", &s, &a, err, sizeof err), MYELIN_EFORMAT);
    check_known(&a, 3);
    ck_assert_msg(strstr(err, mt_strf("truncated at byte offset %zu", off[3])) &&
                      strstr(err, "last packet has 13 of"),
                  "%s", err);
    /* cut inside the packet header */
    a.n = 0;
    ck_assert_int_eq(ev_decode_aedat4(f.b, off[3] + 3, "r.aedat4", &s, &a, err, sizeof err), MYELIN_EFORMAT);
    ck_assert_msg(strstr(err, mt_strf("byte offset %zu", off[3])) && strstr(err, "3 of its 8"), "%s", err);
    check_known(&a, 3);
    ev_free(&a);
    free(f.b);
  }
}
END_TEST

START_TEST(corrupt_packets_and_header) {
  size_t off[4];
  ev_array a = {0};
  ev_sensor s = {0, 0, 0};
  char err[512];
  /* uncompressed: the event vector's length claims more than the buffer */
  buf f = make_file(0, off);
  size_t body = off[3] + 8, vec = 0;
  /* the vector length is the u32 just before the first event (t = T[3]) */
  for (size_t i = body; i + 8 <= f.n; i++) {
    int64_t v;
    memcpy(&v, f.b + i, 8);
    if (v == T[3]) {
      vec = i - 4;
      break;
    }
  }
  ck_assert_uint_gt(vec, body);
  f.b[vec + 2] = 0x7f;
  ck_assert_int_eq(ev_decode_aedat4(f.b, f.n, "r.aedat4", &s, &a, err, sizeof err), MYELIN_EFORMAT);
  ck_assert_msg(a.n == 3, "%s", err);
  check_known(&a, 3);
  ck_assert_msg(strstr(err, mt_strf("byte offset %zu", off[3])) &&
                    strstr(err, "fails FlatBuffer verification"),
                "%s", err);
  free(f.b);
  /* LZ4 and Zstd: a damaged compressed body */
  for (int c = 1; c <= 3; c += 2) {
    f = make_file(c, off);
    f.b[off[3] + 8] ^= 0xff; /* the frame's magic number */
    a.n = 0;
    s = (ev_sensor){0, 0, 0};
    ck_assert_int_eq(ev_decode_aedat4(f.b, f.n, "r.aedat4", &s, &a, err, sizeof err), MYELIN_EFORMAT);
    ck_assert_msg(strstr(err, mt_strf("byte offset %zu", off[3])) && strstr(err, "of stream 0") &&
                      strstr(err, c == 1 ? "LZ4" : "Zstd"),
                  "%s", err);
    check_known(&a, 3);
    free(f.b);
  }
  /* an event outside a given sensor: x = 345 on a 300-wide one */
  f = make_file(1, off);
  a.n = 0;
  s = (ev_sensor){300, 260, 2};
  ck_assert_int_eq(ev_decode_aedat4(f.b, f.n, "r.aedat4", &s, &a, err, sizeof err), MYELIN_EFORMAT);
  check_known(&a, 1);
  ck_assert_msg(strstr(err, mt_strf("byte offset %zu", off[0])) && strstr(err, "event 1 ") &&
                    strstr(err, "x=345"),
                "%s", err);
  /* a header that is no FlatBuffer, and a bad packet size */
  buf g = {0};
  put(&g, f.b, f.n);
  g.b[14 + 4] ^= 0xff;
  g.b[14 + 5] ^= 0xff;
  a.n = 0;
  s = (ev_sensor){0, 0, 0};
  ck_assert_int_eq(ev_decode_aedat4(g.b, g.n, "r.aedat4", &s, &a, err, sizeof err), MYELIN_EFORMAT);
  ck_assert_msg(strstr(err, "byte offset 14") && strstr(err, "header"), "%s", err);
  memcpy(g.b, f.b, f.n);
  g.b[off[1] + 7] = 0x80; /* size < 0 */
  a.n = 0;
  s = (ev_sensor){0, 0, 0};
  ck_assert_int_eq(ev_decode_aedat4(g.b, g.n, "r.aedat4", &s, &a, err, sizeof err), MYELIN_EFORMAT);
  check_known(&a, 3);
  ck_assert_msg(strstr(err, mt_strf("byte offset %zu: bad packet header", off[1])), "%s", err);
  /* a packet index placed inside the header */
  buf t = {0};
  put(&t, "#!AER-DAT4.0\r\n", 14);
  put_header(&t, 0, 20, info_xml);
  put_events(&t, 0, 0, T, X, Y, ON, 3);
  a.n = 0;
  s = (ev_sensor){0, 0, 0};
  ck_assert_int_eq(ev_decode_aedat4(t.b, t.n, "r.aedat4", &s, &a, err, sizeof err), MYELIN_EFORMAT);
  ck_assert_msg(strstr(err, "byte offset 14") && strstr(err, "packet index at 20"), "%s", err);
  free(t.b);
  ev_free(&a);
  free(f.b);
  free(g.b);
}
END_TEST

/* No stream description: the first stream holding events is read, the
 * sensor size is the largest coordinates + 1. */
START_TEST(no_description) {
  buf o = {0};
  put(&o, "#!AER-DAT4.0\r\n", 14);
  put_header(&o, 3, -1, NULL);
  size_t n;
  uint8_t *imu = a4w_other("IMUS", &n);
  put_packet(&o, 3, 5, imu, n);
  put_events(&o, 3, 7, T + 2, X + 2, Y + 2, ON + 2, 3);
  put_events(&o, 3, 8, T, X, Y, ON, 2); /* another event stream: skipped */
  ev_array a = {0};
  ev_sensor s = {0, 0, 0};
  char err[512];
  ck_assert_msg(ev_decode_aedat4(o.b, o.n, "r.aedat4", &s, &a, err, sizeof err) == 0, "%s", err);
  ck_assert_uint_eq(a.n, 3);
  ck_assert(a.x[0] == 17 && a.x[2] == 5 && a.y[2] == 250 && a.t[1] == T[3]);
  ck_assert(s.w == 201 && s.h == 251);
  ev_free(&a);
  free(o.b);
}
END_TEST

/* ---- event_source ---------------------------------------------------------- */

START_TEST(file_through_the_plugin) {
  size_t off[4];
  buf f = make_file(1, off);
  char *path = mt_strf("%s/rec.aedat4", tmp);
  FILE *fp = fopen(path, "wb");
  ck_assert_uint_eq(fwrite(f.b, 1, f.n, fp), f.n);
  fclose(fp);
  char err[1024];
  myelin_harness *h = myelin_harness_new("event_source", mt_strf("{path: %s}", path), err, sizeof err);
  ck_assert_msg(h != NULL, "%s", err);
  ck_assert_int_eq(myelin_harness_start(h), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "out"), 1);
  ev_view v;
  ck_assert_int_eq(ev_view_of(myelin_harness_output(h, "out", 0), &v, err, sizeof err), 0);
  ck_assert(v.sensor.w == 346 && v.sensor.h == 260 && v.n == 5);
  ck_assert(v.x[4] == 5 && v.y[4] == 250 && v.p[4] == 1 && v.t[4] == T[4]);
  myelin_harness_free(h);
  free(f.b);
}
END_TEST

/* A camera server: sends `data` in pieces of `piece` bytes (so packets
 * arrive split across reads), then closes. */
typedef struct server {
  int lfd;
  buf data;
  size_t piece;
} server;

static void *serve(void *arg) {
  server *sv = arg;
  int fd = accept(sv->lfd, NULL, NULL);
  if (fd < 0) return NULL;
  for (size_t at = 0; at < sv->data.n; at += sv->piece) {
    size_t n = sv->data.n - at < sv->piece ? sv->data.n - at : sv->piece;
    if (write(fd, sv->data.b + at, n) != (ssize_t)n) break;
    usleep(2000);
  }
  close(fd);
  return NULL;
}

static int listen_local(int *port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = 0};
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  ck_assert_int_eq(listen(fd, 1), 0);
  socklen_t l = sizeof a;
  ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &l), 0);
  *port = ntohs(a.sin_port);
  return fd;
}

/* As dv-processing's NetworkWriter sends it: the size-prefixed header (no
 * version line), then packets; here LZ4-compressed, in 37-byte pieces. */
START_TEST(live_tcp_stream) {
  server sv = {.piece = 37};
  int port;
  sv.lfd = listen_local(&port);
  put_header(&sv.data, 1, -1, info_xml);
  for (size_t i = 0; i < 5; i++) {
    if (i == 2) {
      size_t n;
      uint8_t *frame = a4w_other("FRME", &n);
      put_packet(&sv.data, 1, 1, frame, n);
    }
    put_events(&sv.data, 1, 0, T + i, X + i, Y + i, ON + i, 1);
  }
  pthread_t th;
  ck_assert_int_eq(pthread_create(&th, NULL, serve, &sv), 0);
  char err[1024];
  myelin_harness *h =
      myelin_harness_new("event_source", mt_strf("{connect: \"127.0.0.1:%d\"}", port), err, sizeof err);
  ck_assert_msg(h != NULL, "%s", err);
  ck_assert_msg(myelin_harness_start(h) == 0, "%s", myelin_harness_error(h));
  pthread_join(th, NULL);
  size_t nm = myelin_harness_count(h, "out"), k = 0;
  ck_assert_uint_ge(nm, 2);
  for (size_t m = 0; m < nm; m++) {
    const myelin_msg *msg = myelin_harness_output(h, "out", m);
    ev_view v;
    ck_assert_int_eq(ev_view_of(msg, &v, err, sizeof err), 0);
    ck_assert(v.sensor.w == 346 && v.sensor.h == 260 && v.sensor.p == 2);
    int64_t chunk;
    int last;
    ck_assert(myelin_msg_int(msg, "chunk", &chunk) == 0 && chunk == (int64_t)m);
    ck_assert(myelin_obj_bool(myelin_msg_get(msg, "last"), &last) == 0 && last == (m == nm - 1));
    for (size_t i = 0; i < v.n; i++, k++)
      ck_assert(k < 5 && v.x[i] == X[k] && v.y[i] == Y[k] && v.p[i] == ON[k] && v.t[i] == T[k]);
    if (m == nm - 1) ck_assert_uint_eq(v.n, 0);
  }
  ck_assert_uint_eq(k, 5);
  myelin_harness_free(h);
  close(sv.lfd);
  free(sv.data.b);
}
END_TEST

/* A corrupt packet mid-stream: the events before it are delivered, the
 * error names the stream offset; a stream cut inside a packet too. */
START_TEST(live_tcp_corrupt_and_cut) {
  for (int cut = 0; cut < 2; cut++) {
    server sv = {.piece = 4096};
    int port;
    sv.lfd = listen_local(&port);
    put_header(&sv.data, 0, -1, info_xml);
    put_events(&sv.data, 0, 0, T, X, Y, ON, 3);
    size_t bad = sv.data.n;
    put_events(&sv.data, 0, 0, T + 3, X + 3, Y + 3, ON + 3, 2);
    if (cut)
      sv.data.n -= 6;
    else
      memset(sv.data.b + bad + 8, 0xee, 8); /* the body's size prefix and root offset */
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, serve, &sv), 0);
    char err[1024];
    myelin_harness *h = myelin_harness_new(
        "event_source", mt_strf("{connect: \"127.0.0.1:%d\", format: aedat4}", port), err, sizeof err);
    ck_assert_msg(h != NULL, "%s", err);
    ck_assert_int_ne(myelin_harness_start(h), 0);
    pthread_join(th, NULL);
    const char *e = myelin_harness_error(h);
    ck_assert_msg(strstr(e, mt_strf("tcp://127.0.0.1:%d", port)) &&
                      strstr(e, mt_strf("byte offset %zu", bad)),
                  "%s", e);
    size_t got = 0;
    for (size_t m = 0; m < myelin_harness_count(h, "out"); m++) {
      ev_view v;
      ck_assert_int_eq(ev_view_of(myelin_harness_output(h, "out", m), &v, err, sizeof err), 0);
      got += v.n;
    }
    ck_assert_uint_eq(got, 3);
    myelin_harness_free(h);
    close(sv.lfd);
    free(sv.data.b);
  }
}
END_TEST

START_TEST(connect_param_checks) {
  char err[1024];
  myelin_harness *h =
      myelin_harness_new("event_source", "{connect: \"127.0.0.1:1\", path: x.aedat4}", err, sizeof err);
  ck_assert_msg(!h && strstr(err, "exactly one of path"), "%s", err);
  h = myelin_harness_new("event_source", "{connect: \"127.0.0.1:1\", format: evt3}", err, sizeof err);
  ck_assert_msg(!h && strstr(err, "format auto or aedat4"), "%s", err);
  h = myelin_harness_new("event_source", "{connect: \"nohost:x\"}", err, sizeof err);
  ck_assert_msg(!h && strstr(err, "bad port"), "%s", err);
  /* nobody listening: a clear error */
  int port;
  int fd = listen_local(&port);
  close(fd);
  h = myelin_harness_new("event_source", mt_strf("{connect: \"127.0.0.1:%d\"}", port), err, sizeof err);
  ck_assert_msg(h != NULL, "%s", err);
  ck_assert_int_ne(myelin_harness_start(h), 0);
  ck_assert_msg(strstr(myelin_harness_error(h), "cannot connect"), "%s", myelin_harness_error(h));
  myelin_harness_free(h);
}
END_TEST

int main(void) {
  Suite *s = suite_create("aedat4");
  TCase *tc = tcase_create("aedat4");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, known_events_each_compression);
  tcase_add_test(tc, corrupt_packets_and_header);
  tcase_add_test(tc, no_description);
  tcase_add_test(tc, file_through_the_plugin);
  tcase_add_test(tc, live_tcp_stream);
  tcase_add_test(tc, live_tcp_corrupt_and_cut);
  tcase_add_test(tc, connect_param_checks);
  suite_add_tcase(s, tc);
  return mt_run_suite(s);
}
