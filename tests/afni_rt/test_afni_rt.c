/*
 * tests/afni_rt — the AFNI realtime protocol (plugins/fmri_source/afni_rt.c)
 * and fmri_source's `listen` mode.
 *
 * The decoder is fed series framed as AFNI's rtfeedme and scanner relays
 * send them — control text, NUL, raw slices in alternating order (2D) or
 * whole big-endian float volumes (3D) — in uneven chunks, and must give back
 * the same voxels in C order with the affine AFNI's plug_realtime assigns.
 * Malformed control text is an error naming the command. Over TCP, a test
 * client (a thread here) sends a series, a malformed header, a stream cut in
 * the middle of a volume, and a series through AFNI's control-channel
 * handshake; the stage keeps the complete volumes, logs clear errors and
 * keeps listening.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>

#include "afni_rt.h"
#include "myelin/harness.h"
#include "myelin/myelin.h"
#include "testutil.h"

enum { NX = 8, NY = 5, NZ = 4 };

static int16_t value(int x, int y, int z, int t) { return (int16_t)(x + 10 * y + 100 * z + 1000 * t - 300); }

static const char HEADER_2D[] = "ACQUISITION_TYPE 2D+zt\n"
                                "TR 2.0\n"
                                "XYFOV 240 200 60\n"
                                "XYMATRIX 8 5\n"
                                "ZNUM 4\n"
                                "XYZAXES R-L A-P I-S\n"
                                "DATUM short\n"
                                "NAME sub-07_task-nf\n";

/* One series as rtfeedme sends it in 2D: slices in alternating order
 * (0, 2, 1, 3 for 4 slices), x fastest, this machine's byte order. */
static size_t frame_2d(uint8_t *out, int t0, int nvol) {
  size_t n = 0;
  static const int order[NZ] = {0, 2, 1, 3};
  for (int t = t0; t < t0 + nvol; t++)
    for (int k = 0; k < NZ; k++)
      for (int y = 0; y < NY; y++)
        for (int x = 0; x < NX; x++) {
          int16_t v = value(x, y, order[k], t);
          memcpy(out + n, &v, 2);
          n += 2;
        }
  return n;
}

typedef struct got {
  int n;
  float vols[8][NX * NY * NZ];
  double affine[4][4];
  double slice_times[NZ];
  int have_times;
} got;

static int collect(void *arg, const afni_rt *p, const float *vol) {
  got *g = arg;
  ck_assert_int_lt(g->n, 8);
  memcpy(g->vols[g->n++], vol, sizeof g->vols[0]);
  memcpy(g->affine, p->affine, sizeof g->affine);
  if ((g->have_times = p->slice_times != NULL)) memcpy(g->slice_times, p->slice_times, sizeof g->slice_times);
  return 0;
}

static void check_volume(const float *v, int t) {
  for (int x = 0; x < NX; x++)
    for (int y = 0; y < NY; y++)
      for (int z = 0; z < NZ; z++)
        ck_assert_float_eq(v[(x * NY + y) * NZ + z], (float)value(x, y, z, t));
}

/* Feeds the bytes in uneven chunks (1, 7, 1000, ...) as TCP may cut them. */
static int feed_chunked(afni_rt *p, const uint8_t *b, size_t n, got *g, char *err, size_t errlen) {
  static const size_t cuts[] = {1, 7, 1000, 3, 64, 13, 4096};
  for (size_t i = 0, k = 0; i < n; k++) {
    size_t c = cuts[k % 7] < n - i ? cuts[k % 7] : n - i;
    int rc = afni_rt_feed(p, b + i, c, collect, g, err, errlen);
    if (rc) return rc;
    i += c;
  }
  return 0;
}

START_TEST(series_2d_alternating_slices) {
  static uint8_t buf[1 << 16];
  size_t n = sizeof HEADER_2D; /* the NUL included */
  memcpy(buf, HEADER_2D, n);
  n += frame_2d(buf + n, 0, 3);
  afni_rt p;
  afni_rt_init(&p);
  got g = {0};
  char err[512] = "";
  ck_assert_msg(feed_chunked(&p, buf, n, &g, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(g.n, 3);
  for (int t = 0; t < 3; t++)
    check_volume(g.vols[t], t);
  /* 30 x 40 x 15 mm voxels, centred; R-L A-P I-S in RAS */
  const double want[4][4] = {{-30, 0, 0, 105}, {0, -40, 0, 80}, {0, 0, 15, -22.5}, {0, 0, 0, 1}};
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++)
      ck_assert_double_eq_tol(g.affine[i][j], want[i][j], 1e-9);
  ck_assert(g.have_times); /* alternating: slices 0, 2, 1, 3 at 0, 0.5, 1, 1.5 s */
  const double tt[NZ] = {0, 1.0, 0.5, 1.5};
  for (int z = 0; z < NZ; z++)
    ck_assert_double_eq_tol(g.slice_times[z], tt[z], 1e-12);
  ck_assert_double_eq(p.tr, 2.0);
  ck_assert_str_eq(p.name, "sub-07_task-nf");
  char where[160];
  afni_rt_where(&p, where, sizeof where);
  ck_assert_str_eq(where, "");
  afni_rt_free(&p);
}
END_TEST

/* 3D+t volumes of big-endian floats, placed with XYZFIRST; then the end
 * marker and a second dataset (2D) on the same stream. */
START_TEST(series_3d_msb_floats_then_marker) {
  static uint8_t buf[1 << 16];
  const char hdr[] =
      "ACQUISITION_TYPE 3D+t\nXYFOV 240 200 60\nXYMATRIX 8 5 4\nDATUM float\nBYTEORDER MSB_FIRST\n"
      "XYZAXES L-R P-A S-I\nXYZFIRST 100R 90A 30S\nTR 0.8\n";
  size_t n = sizeof hdr;
  memcpy(buf, hdr, n);
  for (int t = 0; t < 2; t++)
    for (int z = 0; z < NZ; z++)
      for (int y = 0; y < NY; y++)
        for (int x = 0; x < NX; x++) {
          float f = (float)value(x, y, z, t) + 0.25f;
          uint32_t u;
          memcpy(&u, &f, 4);
          for (int b = 3; b >= 0; b--)
            buf[n++] = (uint8_t)(u >> (8 * b));
        }
  /* the end marker, padded to a whole image, then a new 2D dataset */
  memset(buf + n, 0, (size_t)NX * NY * NZ * 4);
  memcpy(buf + n, AFNI_RT_MARKER, sizeof AFNI_RT_MARKER - 1);
  n += (size_t)NX * NY * NZ * 4;
  memcpy(buf + n, HEADER_2D, sizeof HEADER_2D);
  n += sizeof HEADER_2D;
  n += frame_2d(buf + n, 5, 1);
  afni_rt p;
  afni_rt_init(&p);
  got g = {0};
  char err[512] = "";
  ck_assert_msg(feed_chunked(&p, buf, n, &g, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(g.n, 3);
  for (int t = 0; t < 2; t++)
    for (int x = 0; x < NX; x++)
      for (int y = 0; y < NY; y++)
        for (int z = 0; z < NZ; z++)
          ck_assert_float_eq(g.vols[t][(x * NY + y) * NZ + z], (float)value(x, y, z, t) + 0.25f);
  check_volume(g.vols[2], 5);
  ck_assert_uint_eq(p.datasets, 2);
  afni_rt_free(&p);
  /* the first dataset's affine: first voxel 100 mm right, 90 anterior, 30 superior */
  afni_rt q;
  afni_rt_init(&q);
  char text[256];
  snprintf(text, sizeof text, "%s", hdr);
  ck_assert_int_eq(afni_rt_parse_info(&q, text, err, sizeof err), 0);
  const double want[4][4] = {{30, 0, 0, 100}, {0, 40, 0, 90}, {0, 0, -15, 30}, {0, 0, 0, 1}};
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++)
      ck_assert_double_eq_tol(q.affine[i][j], want[i][j], 1e-9);
  ck_assert_ptr_null(q.slice_times);
  afni_rt_free(&q);
}
END_TEST

/* Each malformed control text is an error naming the command at fault. */
START_TEST(malformed_headers_name_the_field) {
  static const struct {
    const char *text, *want;
  } cases[] = {
      {"XYMATRIX 64 x\nXYFOV 240\nZNUM 3\nZDELTA 3\nXYZAXES L-R P-A I-S\n", "XYMATRIX '64 x'"},
      {"XYMATRIX 64 64\nXYFOV 240\nZDELTA 3\nXYZAXES L-R P-A I-S\n", "ZNUM: missing"},
      {"XYMATRIX 64 64 3\nZDELTA 3\nXYZAXES L-R P-A I-S\n", "XYFOV: missing"},
      {"XYMATRIX 64 64 3\nXYFOV 240\nXYZAXES L-R P-A I-S\n", "ZDELTA: missing"},
      {"XYMATRIX 64 64 3\nXYFOV 240\nZDELTA 3\n", "XYZAXES: missing"},
      {"XYMATRIX 64 64 3\nXYFOV 240\nZDELTA 3\nXYZAXES L-R R-L I-S\n", "XYZAXES 'L-R R-L I-S'"},
      {"XYMATRIX 64 64 3\nXYFOV 240\nZDELTA 3\nXYZAXES L-R P-A up\n", "XYZAXES: 'up'"},
      {"XYMATRIX 64 64 3\nXYFOV 240\nZDELTA 3\nXYZAXES L-R P-A I-S\nDATUM double\n", "DATUM 'double'"},
      {"XYMATRIX 64 64 3\nXYFOV 240\nZDELTA 3\nXYZAXES L-R P-A I-S\nTR -2\n", "TR '-2'"},
      {"XYMATRIX 64 64 3\nXYFOV 240\nZDELTA 3\nXYZAXES L-R P-A I-S\nACQUISITION_TYPE 4D\n",
       "ACQUISITION_TYPE '4D'"},
      {"XYMATRIX 64 64 3\nXYFOV 240\nZDELTA 3\nXYZAXES L-R P-A I-S\nXYZFIRST 10A 0 0\n",
       "XYZFIRST: direction code A"},
      {"XYMATRIX 64 64 3\nXYFOV 240\nZDELTA 3\nXYZAXES L-R P-A I-S\nNUM_CHAN 2\n", "NUM_CHAN 2"},
      {"XYMATRIX 64 64 3\nXYFOV 240\nZDELTA 3\nXYZAXES L-R P-A I-S\nBOGUS 1\n",
       "unknown control command 'BOGUS'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    afni_rt p;
    afni_rt_init(&p);
    char err[512] = "";
    size_t len = strlen(cases[i].text) + 1;
    ck_assert_int_eq(afni_rt_feed(&p, (const uint8_t *)cases[i].text, len, NULL, NULL, err, sizeof err), -1);
    ck_assert_msg(strstr(err, cases[i].want), "case %zu: '%s' does not name '%s'", i, err, cases[i].want);
    afni_rt_free(&p);
  }
  /* not the protocol at all: no NUL within 32 KiB */
  static uint8_t junk[40000];
  memset(junk, 'a', sizeof junk);
  afni_rt p;
  afni_rt_init(&p);
  char err[512] = "";
  ck_assert_int_eq(afni_rt_feed(&p, junk, sizeof junk, NULL, NULL, err, sizeof err), -1);
  ck_assert_ptr_nonnull(strstr(err, "no NUL terminator"));
  afni_rt_free(&p);
}
END_TEST

/* A stream cut mid-volume says where; the control channel names the data port. */
START_TEST(truncation_and_control_channel) {
  static uint8_t buf[1 << 16];
  size_t n = sizeof HEADER_2D;
  memcpy(buf, HEADER_2D, n);
  size_t one = frame_2d(buf + n, 0, 1);
  n += one + one / 2 + 10; /* volume 0, then half of volume 1 and a bit */
  frame_2d(buf + sizeof HEADER_2D + one, 1, 1);
  afni_rt p;
  afni_rt_init(&p);
  got g = {0};
  char err[512] = "", where[160];
  ck_assert_int_eq(feed_chunked(&p, buf, n, &g, err, sizeof err), 0);
  ck_assert_int_eq(g.n, 1);
  afni_rt_where(&p, where, sizeof where);
  ck_assert_str_eq(where, "in the middle of volume 1 (slice 3 of 4: 10 of 80 bytes)");
  afni_rt_free(&p);

  const char ctl[] = "tcp:localhost:7953";
  afni_rt_init(&p);
  ck_assert_int_eq(afni_rt_feed(&p, (const uint8_t *)ctl, sizeof ctl, NULL, NULL, err, sizeof err), 1);
  ck_assert_str_eq(p.channel, "tcp:localhost:7953");
  afni_rt_free(&p);
  const char shm[] = "shm:grv:1M";
  afni_rt_init(&p);
  ck_assert_int_eq(afni_rt_feed(&p, (const uint8_t *)shm, sizeof shm, NULL, NULL, err, sizeof err), -1);
  ck_assert_ptr_nonnull(strstr(err, "shared-memory"));
  afni_rt_free(&p);
}
END_TEST

/* ---- over TCP, through fmri_source ------------------------------------------------ */

static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t len = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &len);
  close(fd);
  return ntohs(a.sin_port);
}

static int dial(int port) {
  for (int i = 0; i < 500; i++) { /* the stage may not listen yet */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) return fd;
    close(fd);
    struct timespec ts = {0, 10000000};
    nanosleep(&ts, NULL);
  }
  return -1;
}

/* Sends, then waits for the stage to close its side: connections are
 * handled one after the other. */
static void send_and_wait(int port, const uint8_t *b, size_t n) {
  int fd = dial(port);
  if (fd < 0) return;
  for (size_t i = 0; i < n;) {
    ssize_t w = send(fd, b + i, n - i, MSG_NOSIGNAL);
    if (w <= 0) break;
    i += (size_t)w;
  }
  shutdown(fd, SHUT_WR);
  char c;
  while (recv(fd, &c, 1, 0) > 0) {
  }
  close(fd);
}

typedef struct client {
  int port, port2;
} client;

static void *client_main(void *arg) {
  client *cl = arg;
  static uint8_t buf[1 << 16];
  /* 1: a series of 3 volumes */
  size_t n = sizeof HEADER_2D;
  memcpy(buf, HEADER_2D, n);
  n += frame_2d(buf + n, 0, 3);
  send_and_wait(cl->port, buf, n);
  /* 2: a malformed header */
  const char bad[] = "XYMATRIX 8 5 4\nXYFOV 240 200 60\nXYZAXES R-L A-P I-S\nDATUM quad\n";
  send_and_wait(cl->port, (const uint8_t *)bad, sizeof bad);
  /* 3: one volume, then the sender dies in the middle of the next */
  n = sizeof HEADER_2D;
  memcpy(buf, HEADER_2D, n);
  size_t one = frame_2d(buf + n, 3, 2);
  send_and_wait(cl->port, buf, n + one / 2 + one / 4);
  /* 4: AFNI's handshake: the control channel names the data port */
  char ctl[64];
  int len = snprintf(ctl, sizeof ctl, "tcp:localhost:%d", cl->port2);
  send_and_wait(cl->port, (const uint8_t *)ctl, (size_t)len + 1);
  n = sizeof HEADER_2D;
  memcpy(buf, HEADER_2D, n);
  n += frame_2d(buf + n, 4, 1);
  send_and_wait(cl->port2, buf, n);
  return NULL;
}

START_TEST(listen_mode_over_tcp) {
  client cl = {free_port(), free_port()};
  pthread_t th;
  ck_assert_int_eq(pthread_create(&th, NULL, client_main, &cl), 0);
  char err[1024];
  char *params = mt_strf("{listen: '127.0.0.1:%d', count: 5, idle_timeout: 30}", cl.port);
  myelin_harness *h = myelin_harness_new("fmri_source", params, err, sizeof err);
  ck_assert_msg(h != NULL, "harness: %s", err);
  ck_assert_msg(myelin_harness_start(h) == 0, "start: %s", myelin_harness_error(h));
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  pthread_join(th, NULL);
  ck_assert_uint_eq(myelin_harness_count(h, "out"), 5);
  const int sent_t[5] = {0, 1, 2, 3, 4}; /* the cut volume (t = 4 of connection 3) is not among them */
  for (int i = 0; i < 5; i++) {
    myelin_msg *m = myelin_harness_output(h, "out", (size_t)i);
    ck_assert_str_eq(myelin_msg_kind(m), "volume");
    int64_t idx;
    ck_assert_int_eq(myelin_msg_int(m, "index", &idx), 0);
    ck_assert_int_eq(idx, i);
    double tr;
    ck_assert_int_eq(myelin_msg_float(m, "tr", &tr), 0);
    ck_assert_double_eq(tr, 2.0);
    char sub[32] = "";
    myelin_msg_str(m, "subject", sub, sizeof sub);
    ck_assert_str_eq(sub, "07");
    myelin_tensor x;
    ck_assert_int_eq(myelin_msg_tensor(m, "data", &x), 0);
    ck_assert_uint_eq(x.count, NX * NY * NZ);
    check_volume(x.data, sent_t[i]);
    myelin_tensor a;
    ck_assert_int_eq(myelin_obj_tensor(myelin_obj_get(myelin_msg_get(m, "geometry"), "affine"), &a), 0);
    ck_assert_double_eq_tol(((const double *)a.data)[3], 105, 1e-9);
    myelin_tensor st;
    ck_assert_int_eq(myelin_msg_tensor(m, "slice_times", &st), 0);
    ck_assert_double_eq_tol(((const double *)st.data)[1], 1.0, 1e-12);
  }
  ck_assert_int_eq(myelin_harness_counter(h, "rejected"), 1);
  ck_assert_int_eq(myelin_harness_counter(h, "truncated"), 1);
  const char *logs = myelin_harness_logs(h);
  ck_assert_msg(strstr(logs, "DATUM 'quad'"), "logs: %s", logs);
  ck_assert_msg(strstr(logs, "disconnected in the middle of volume 1"), "logs: %s", logs);
  ck_assert_msg(strstr(logs, "1 complete volume(s) before it were kept"), "logs: %s", logs);
  myelin_harness_free(h);
  free(params);
}
END_TEST

int main(void) {
  Suite *s = suite_create("afni_rt");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, series_2d_alternating_slices);
  tcase_add_test(tc, series_3d_msb_floats_then_marker);
  tcase_add_test(tc, malformed_headers_name_the_field);
  tcase_add_test(tc, truncation_and_control_channel);
  tcase_add_test(tc, listen_mode_over_tcp);
  suite_add_tcase(s, tc);
  return mt_run_suite(s);
}
