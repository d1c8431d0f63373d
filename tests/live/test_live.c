/*
 * Live streams end to end, through the CLI and real loopback sockets:
 * 100,000 messages arrive in order and byte-identical; garbage and a 1 GiB
 * length field close only their own connections while another producer
 * keeps streaming; a consumer killed and restarted sees the documented
 * at-most-once guarantee (in order, no duplicates); real-time replay keeps
 * the recorded timing (median error < 1 ms); the Python producer and
 * consumer stream through a running pipeline.
 *
 * Batching (tcp_sink 1.1, host->pending from ABI 1.1): 64 B messages from
 * a fast source arrive in order and byte-identical with fewer send() calls
 * than messages, and a small batch_bytes cap is respected; the consumer
 * restart keeps the at-most-once guarantee with 64 B messages batched; the
 * `pend` test sink checks inside a fan-in pipeline that pending() never
 * over-counts (end-of-stream markers excluded) and is 0 in flush; in the
 * harness (pending() 0) tcp_sink sends every message at once; a plugin
 * declaring ABI 1.0 still loads and runs. A consumer that stops reading
 * while the sink is blocked in the middle of a batch, then resets the
 * connection, gets only whole messages; the next connection starts with a
 * whole message and goes on from there.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "myelin/harness.h"
#include "myelin/msg.h"
#include "testutil.h"

static const char *bin(void) { return mt_env("MYELIN_BIN", "myelin"); }

static int test_port(int k) { return 20000 + (int)(getpid() % 20000) + k; }

/* Starts `myelin run FILE --stats` in the background, stderr to log. */
static pid_t spawn(const char *file, const char *log) {
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    if (!freopen(log, "w", stderr)) _exit(126);
    execl(bin(), "myelin", "run", file, "--stats", (char *)NULL);
    _exit(127);
  }
  return pid;
}

static int wait_exit(pid_t pid, int seconds) {
  for (int i = 0; i < seconds * 20; i++) {
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    usleep(50000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  return -1;
}

static int dial(int port) {
  for (int i = 0; i < 100; i++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) return fd;
    close(fd);
    usleep(50000);
  }
  ck_abort_msg("cannot connect to port %d", port);
  return -1;
}

static void send_all(int fd, const void *p, size_t n) {
  const uint8_t *b = p;
  while (n) {
    ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
    ck_assert_int_gt(w, 0);
    b += w;
    n -= (size_t)w;
  }
}

static void send_seq(int fd, uint64_t seq) {
  myelin_builder *b = myelin_builder_new("tensor");
  myelin_build_uint(b, "seq", seq);
  int64_t shape[1] = {16};
  uint8_t *d = myelin_build_tensor(b, "data", MYELIN_U1, 1, shape);
  memset(d, (int)(seq & 0xff), 16);
  myelin_msg *m = myelin_builder_finish(b);
  size_t len;
  const uint8_t *bytes = myelin_msg_bytes(m, &len);
  send_all(fd, bytes, len);
  myelin_msg_unref(m);
}

/* Reads an .mpk file's seq fields into *seqs; returns the count. */
static size_t read_seqs(const char *path, uint64_t **seqs) {
  uint8_t *buf;
  size_t len = 0, off = 0, n = 0, used;
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "no file %s", path);
  fseek(f, 0, SEEK_END);
  len = (size_t)ftell(f);
  rewind(f);
  buf = malloc(len + 1);
  ck_assert_uint_eq(fread(buf, 1, len, f), len);
  fclose(f);
  *seqs = malloc((len / 8 + 1) * sizeof **seqs);
  char err[256];
  while (off < len) {
    myelin_msg *m;
    ck_assert_int_eq(myelin_msg_decode(buf + off, len - off, 0, &m, &used, err, sizeof err), 0);
    ck_assert_int_eq(myelin_msg_uint(m, "seq", &(*seqs)[n]), 0);
    n++;
    off += used;
    myelin_msg_unref(m);
  }
  free(buf);
  return n;
}

static char *slurp(const char *path) {
  char *out;
  mt_run(mt_strf("cat %s", path), &out);
  return out;
}

/* The value of counter `name` ("net.sends") in a --stats log; fails if absent. */
static long long stat_of(const char *log, const char *name) {
  const char *key = mt_strf("%s = ", name), *p = strstr(log, key);
  ck_assert_msg(p != NULL, "no counter %s in\n%s", name, log);
  return atoll(p + strlen(key));
}

static long long file_size(const char *path) {
  struct stat sb;
  ck_assert_int_eq(stat(path, &sb), 0);
  return (long long)sb.st_size;
}

START_TEST(loopback_100k_in_order_identical) {
  char *d = mt_tmpdir();
  int port = test_port(1);
  char *recv = mt_strf("%s/recv.yaml", d), *send = mt_strf("%s/send.yaml", d);
  mt_write(recv, mt_strf("name: r\nstages:\n"
                         "  - {id: src, plugin: tcp_source, params: {listen: '127.0.0.1:%d', eos_on_disconnect: true}}\n"
                         "  - {id: sink, plugin: file_sink, inputs: [src], params: {path: %s/recv.mpk}}\n", port, d));
  mt_write(send, mt_strf("name: s\nstages:\n"
                         "  - {id: gen, plugin: gen_source, params: {count: 100000, bytes: 96, fill: true}}\n"
                         "  - {id: net, plugin: tcp_sink, inputs: [gen], params: {connect: '127.0.0.1:%d'}}\n"
                         "  - {id: rec, plugin: file_sink, inputs: [gen], params: {path: %s/sent.mpk}}\n", port, d));
  pid_t r = spawn(recv, mt_strf("%s/recv.log", d));
  pid_t s = spawn(send, mt_strf("%s/send.log", d));
  ck_assert_int_eq(wait_exit(s, 120), 0);
  ck_assert_int_eq(wait_exit(r, 60), 0);
  ck_assert_int_eq(mt_run(mt_strf("cmp %s/sent.mpk %s/recv.mpk", d, d), NULL), 0);
  uint64_t *seqs;
  size_t n = read_seqs(mt_strf("%s/recv.mpk", d), &seqs);
  ck_assert_uint_eq(n, 100000);
  for (size_t i = 0; i < n; i++) ck_assert_uint_eq(seqs[i], i);
  free(seqs);
}
END_TEST

START_TEST(garbage_and_huge_length_rejected_others_continue) {
  char *d = mt_tmpdir();
  int port = test_port(2);
  char *recv = mt_strf("%s/recv.yaml", d);
  mt_write(recv, mt_strf("name: r\nstages:\n"
                         "  - {id: src, plugin: tcp_source, params: {listen: '127.0.0.1:%d', eos_on_disconnect: true}}\n"
                         "  - {id: sink, plugin: file_sink, inputs: [src], params: {path: %s/recv.mpk}}\n", port, d));
  char *log = mt_strf("%s/recv.log", d);
  pid_t r = spawn(recv, log);
  int good = dial(port);
  for (uint64_t i = 0; i < 500; i++) send_seq(good, i);
  int bad = dial(port);
  send_all(bad, "\xc1\xc1\xc1 not msgpack at all", 22);
  /* a map whose "data" bin claims 1 GiB: {kind: "tensor", data: bin32(2^30)} */
  int huge = dial(port);
  const uint8_t hdr[] = {0x82, 0xa4, 'k', 'i', 'n', 'd', 0xa6, 't', 'e', 'n', 's', 'o', 'r',
                         0xa4, 'd', 'a', 't', 'a', 0xc6, 0x40, 0x00, 0x00, 0x00, 1, 2, 3};
  send_all(huge, hdr, sizeof hdr);
  usleep(300000);
  for (uint64_t i = 500; i < 1000; i++) send_seq(good, i);
  usleep(200000);
  close(bad);
  close(huge);
  close(good);
  ck_assert_int_eq(wait_exit(r, 60), 0);
  uint64_t *seqs;
  size_t n = read_seqs(mt_strf("%s/recv.mpk", d), &seqs);
  ck_assert_uint_eq(n, 1000);
  for (size_t i = 0; i < n; i++) ck_assert_uint_eq(seqs[i], i);
  free(seqs);
  char *out = slurp(log);
  ck_assert_msg(strstr(out, "src.rejected = 2"), "%s", out);
  ck_assert_msg(strstr(out, "exceeds the limit"), "%s", out);
  ck_assert_msg(strstr(out, "invalid msgpack"), "%s", out);
  free(out);
}
END_TEST

/* A consumer killed mid-stream and a second one started: the sender sends
 * COUNT messages of BYTES payload at RATE/s; returns the sender's log. */
static char *restart_run(int port, int bytes, int count, int rate) {
  char *d = mt_tmpdir();
  char *c1 = mt_strf("%s/c1.yaml", d), *c2 = mt_strf("%s/c2.yaml", d), *snd = mt_strf("%s/s.yaml", d);
  mt_write(c1, mt_strf("name: c1\nstages:\n"
                       "  - {id: src, plugin: tcp_source, params: {listen: '127.0.0.1:%d'}}\n"
                       "  - {id: sink, plugin: file_sink, inputs: [src], params: {path: %s/one.mpk}}\n", port, d));
  mt_write(c2, mt_strf("name: c2\nstages:\n"
                       "  - {id: src, plugin: tcp_source, params: {listen: '127.0.0.1:%d', eos_on_disconnect: true}}\n"
                       "  - {id: sink, plugin: file_sink, inputs: [src], params: {path: %s/two.mpk}}\n", port, d));
  mt_write(snd, mt_strf("name: s\nstages:\n"
                        "  - {id: gen, plugin: gen_source, params: {count: %d, bytes: %d, rate: %d}}\n"
                        "  - {id: net, plugin: tcp_sink, inputs: [gen], params: {connect: '127.0.0.1:%d'}}\n",
                        count, bytes, rate, port));
  pid_t a = spawn(c1, mt_strf("%s/c1.log", d));
  usleep(200000);
  pid_t s = spawn(snd, mt_strf("%s/s.log", d));
  usleep(600000);
  kill(a, SIGINT);
  ck_assert_int_eq(wait_exit(a, 30), 130);
  pid_t b = spawn(c2, mt_strf("%s/c2.log", d));
  ck_assert_int_eq(wait_exit(s, 60), 0);
  ck_assert_int_eq(wait_exit(b, 60), 0);
  uint64_t *s1, *s2;
  size_t n1 = read_seqs(mt_strf("%s/one.mpk", d), &s1);
  size_t n2 = read_seqs(mt_strf("%s/two.mpk", d), &s2);
  ck_assert_uint_gt(n1, 100);
  ck_assert_uint_gt(n2, 100);
  for (size_t i = 1; i < n1; i++) ck_assert_uint_eq(s1[i], s1[i - 1] + 1); /* no gap within a connection */
  for (size_t i = 1; i < n2; i++) ck_assert_uint_eq(s2[i], s2[i - 1] + 1);
  ck_assert_uint_eq(s1[0], 0);
  ck_assert_uint_gt(s2[0], s1[n1 - 1]); /* at most once: nothing delivered twice */
  ck_assert_uint_eq(s2[n2 - 1], (uint64_t)count - 1); /* the stream resumed and completed */
  ck_assert_uint_le(n1 + n2, (size_t)count);
  char *out = slurp(mt_strf("%s/s.log", d));
  ck_assert_msg(strstr(out, "net.reconnects = "), "%s", out);
  ck_assert_int_ge(stat_of(out, "net.reconnects"), 1);
  free(s1);
  free(s2);
  return out;
}

START_TEST(consumer_restart_at_most_once) { free(restart_run(test_port(3), 32, 6000, 4000)); }
END_TEST

/* 64 B messages at 200,000/s: the sink batches (gen_source emits in bursts
 * between its sleeps), so the consumer dies with a batch partly written. */
START_TEST(consumer_restart_at_most_once_batched_64b) {
  char *out = restart_run(test_port(6), 64, 200000, 200000);
  long long msgs = stat_of(out, "net.messages"), sends = stat_of(out, "net.sends");
  ck_assert_msg(sends < msgs, "batching inactive: %lld sends for %lld messages\n%s", sends, msgs, out);
  free(out);
}
END_TEST

/* 64 B messages as fast as the source goes: with pending() > 0 most of the
 * time the sink gathers them, so there are far fewer send() calls than
 * messages; the bytes arrive in order and identical. With batch_bytes 1000
 * no batch is larger than that: at least size/1000 sends. */
static void batched_relay(int port, const char *extra, long long *msgs, long long *sends, long long *bytes) {
  char *d = mt_tmpdir();
  char *recv = mt_strf("%s/recv.yaml", d), *send = mt_strf("%s/send.yaml", d);
  mt_write(recv, mt_strf("name: r\nstages:\n"
                         "  - {id: src, plugin: tcp_source, params: {listen: '127.0.0.1:%d', eos_on_disconnect: true}}\n"
                         "  - {id: sink, plugin: file_sink, inputs: [src], params: {path: %s/recv.mpk}}\n", port, d));
  mt_write(send, mt_strf("name: s\nstages:\n"
                         "  - {id: gen, plugin: gen_source, params: {count: 200000, bytes: 64, fill: true}}\n"
                         "  - {id: net, plugin: tcp_sink, inputs: [gen], params: {connect: '127.0.0.1:%d'%s}}\n"
                         "  - {id: rec, plugin: file_sink, inputs: [gen], params: {path: %s/sent.mpk}}\n",
                         port, extra, d));
  pid_t r = spawn(recv, mt_strf("%s/recv.log", d));
  pid_t s = spawn(send, mt_strf("%s/send.log", d));
  ck_assert_int_eq(wait_exit(s, 120), 0);
  ck_assert_int_eq(wait_exit(r, 60), 0);
  ck_assert_int_eq(mt_run(mt_strf("cmp %s/sent.mpk %s/recv.mpk", d, d), NULL), 0);
  uint64_t *seqs;
  size_t n = read_seqs(mt_strf("%s/recv.mpk", d), &seqs);
  ck_assert_uint_eq(n, 200000);
  for (size_t i = 0; i < n; i++) ck_assert_uint_eq(seqs[i], i);
  free(seqs);
  char *out = slurp(mt_strf("%s/send.log", d));
  *msgs = stat_of(out, "net.messages");
  *sends = stat_of(out, "net.sends");
  *bytes = file_size(mt_strf("%s/recv.mpk", d));
  ck_assert_int_eq(stat_of(out, "net.reconnects"), 0);
  free(out);
}

START_TEST(small_messages_batched_in_order_identical) {
  long long msgs, sends, bytes;
  batched_relay(test_port(7), "", &msgs, &sends, &bytes);
  ck_assert_int_eq(msgs, 200000);
  ck_assert_msg(sends * 4 < msgs, "batching barely active: %lld sends for %lld messages", sends, msgs);
  batched_relay(test_port(8), ", batch_bytes: 1000", &msgs, &sends, &bytes);
  ck_assert_int_eq(msgs, 200000);
  ck_assert_msg(sends >= bytes / 1000, "%lld sends for %lld bytes: a batch exceeded batch_bytes 1000", sends, bytes);
  ck_assert_msg(sends < msgs, "%lld sends for %lld messages", sends, msgs);
}
END_TEST

/* pending() inside a running pipeline, fan-in from two sources of different
 * lengths: the shorter one's end-of-stream marker sits in the queue among
 * messages and must not be counted. */
START_TEST(pending_never_overcounts) {
  char *d = mt_tmpdir();
  const char *tp = mt_env("MYELIN_TEST_PLUGINS", ".");
  char *f = mt_strf("%s/p.yaml", d);
  mt_write(f, mt_strf("name: p\nplugin_path: [%s]\nstages:\n"
                      "  - {id: a, plugin: gen_source, params: {count: 60000, bytes: 16}}\n"
                      "  - {id: b, plugin: gen_source, params: {count: 20000, bytes: 16}}\n"
                      "  - {id: mid, plugin: passthrough, inputs: [a]}\n"
                      "  - {id: pd, plugin: pend, inputs: [mid, b]}\n", tp));
  char *out;
  ck_assert_int_eq(mt_run(mt_strf("%s run %s --stats", bin(), f), &out), 0);
  ck_assert_int_eq(stat_of(out, "pd.messages"), 80000);
  ck_assert_msg(stat_of(out, "pd.violations") == 0, "pending() over-counted\n%s", out);
  ck_assert_msg(stat_of(out, "pd.max_pending") > 0, "pending() never > 0 behind fast sources\n%s", out);
  ck_assert_int_gt(stat_of(out, "pd.nonzero"), 0);
  free(out);
}
END_TEST

START_TEST(realtime_replay_timing) {
  char *d = mt_tmpdir();
  const char *tp = mt_env("MYELIN_TEST_PLUGINS", ".");
  char *rec = mt_strf("%s/rec.yaml", d), *rep = mt_strf("%s/rep.yaml", d);
  /* 400 messages recorded at 400/s: t = 0, 2.5 ms, 5 ms, ... */
  mt_write(rec, mt_strf("name: rec\nstages:\n"
                        "  - {id: gen, plugin: gen_source, params: {count: 400, bytes: 8, rate: 400}}\n"
                        "  - {id: sink, plugin: file_sink, inputs: [gen], params: {path: %s/r.mpk}}\n", d));
  ck_assert_int_eq(mt_run(mt_strf("%s run %s --quiet", bin(), rec), NULL), 0);
  mt_write(rep, mt_strf("name: rep\nplugin_path: [%s]\nstages:\n"
                        "  - {id: src, plugin: file_source, params: {path: %s/r.mpk, pace: realtime, speed: 2.0}}\n"
                        "  - {id: st, plugin: stamp, inputs: [src], params: {speed: 2.0}}\n", tp, d));
  /* Timing on a shared machine (ctest -j runs other suites beside this one)
   * is noisy: the pacing must meet the target in one of three runs. */
  long limit = getenv("MYELIN_SANITIZED") ? 3000 : 1000; /* the target is < 1 ms */
  long med = -1, span = 0;
  char *out = NULL;
  for (int attempt = 0; attempt < 3 && (med < 0 || med >= limit); attempt++) {
    free(out);
    ck_assert_int_eq(mt_run(mt_strf("%s run %s --stats", bin(), rep), &out), 0);
    char *p = strstr(out, "st.median_error_us = ");
    ck_assert_msg(p != NULL, "%s", out);
    med = atol(p + strlen("st.median_error_us = "));
    p = strstr(out, "st.span_ms = ");
    ck_assert_msg(p != NULL, "%s", out);
    span = atol(p + strlen("st.span_ms = "));
  }
  ck_assert_msg(med < limit, "median pacing error %ld us (limit %ld)\n%s", med, limit, out);
  ck_assert_msg(span > 450 && span < 600, "399 gaps of 2.5 ms at speed 2 should span ~499 ms, got %ld\n%s", span, out);
  free(out);
}
END_TEST

START_TEST(python_producer_consumer) {
  MT_NEED_PYTHON("msgpack numpy", "examples/python");
  char *d = mt_tmpdir();
  const char *src = mt_env("MYELIN_SOURCE_DIR", "..");
  const char *py = mt_env("MYELIN_PYTHON", "/usr/bin/python3");
  int in = test_port(4), outp = test_port(5);
  char *clog = mt_strf("%s/consumer.txt", d);
  char *cmd = mt_strf("%s %s/examples/python/consumer.py --port %d --quiet > %s 2>&1 &", py, src, outp, clog);
  ck_assert_int_eq(system(cmd), 0);
  usleep(800000);
  char *pipe = mt_strf("%s/pipelines/live_tcp.yaml", src);
  char *run = mt_strf("cd %s && OUT=%s MYELIN_IN_PORT=%d MYELIN_OUT_PORT=%d %s run %s --stats > %s/run.log 2>&1 &",
                      d, d, in, outp, bin(), pipe, d);
  ck_assert_int_eq(system(run), 0);
  char *prod;
  ck_assert_int_eq(mt_run(mt_strf("sleep 0.5; %s %s/examples/python/producer.py --port %d --count 50", py, src, in), &prod), 0);
  ck_assert_ptr_nonnull(strstr(prod, "sent 100 messages"));
  char *got = NULL;
  for (int i = 0; i < 100; i++) {
    free(got);
    got = slurp(clog);
    if (strstr(got, "received")) break;
    usleep(100000);
  }
  ck_assert_msg(strstr(got, "received 100 messages: spikes=50, tensor=50"), "%s", got);
  free(got);
  /* the recording holds the same 100 messages */
  char *cat;
  ck_assert_int_eq(mt_run(mt_strf("%s cat %s/live.mpk | grep -c .", bin(), d), &cat), 0);
  ck_assert_int_eq(atoi(cat), 100);
  free(cat);
}
END_TEST

/* The harness hands messages over one by one (pending() is 0): every message
 * is sent at once, whole; a bad batch_bytes is refused naming the param. */
START_TEST(harness_sends_every_message) {
  int port = test_port(9);
  int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
  ck_assert_int_eq(listen(lfd, 1), 0);
  char err[1024];
  myelin_harness *h = myelin_harness_new("tcp_sink", mt_strf("{connect: '127.0.0.1:%d'}", port), err, sizeof err);
  ck_assert_msg(h != NULL, "%s", err);
  uint8_t want[64 * 200];
  size_t wlen = 0;
  for (uint64_t i = 0; i < 50; i++) {
    myelin_builder *b = myelin_builder_new("tensor");
    myelin_build_uint(b, "seq", i);
    int64_t shape[1] = {16};
    memset(myelin_build_tensor(b, "data", MYELIN_U1, 1, shape), (int)i, 16);
    myelin_msg *m = myelin_builder_finish(b);
    size_t len;
    const uint8_t *bytes = myelin_msg_bytes(m, &len);
    ck_assert_uint_le(wlen + len, sizeof want);
    memcpy(want + wlen, bytes, len);
    wlen += len;
    ck_assert_int_eq(myelin_harness_push(h, NULL, m), 0);
  }
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  ck_assert_int_eq(myelin_harness_counter(h, "messages"), 50);
  ck_assert_int_eq(myelin_harness_counter(h, "sends"), 50);
  int fd = accept(lfd, NULL, NULL);
  ck_assert_int_ge(fd, 0);
  uint8_t got[sizeof want];
  size_t glen = 0;
  ssize_t k;
  while (glen < sizeof got && (k = read(fd, got + glen, sizeof got - glen)) > 0) glen += (size_t)k;
  ck_assert_uint_eq(glen, wlen);
  ck_assert_int_eq(memcmp(got, want, wlen), 0);
  close(fd);
  close(lfd);
  myelin_harness_free(h);
  ck_assert_ptr_null(myelin_harness_new("tcp_sink", "{connect: '127.0.0.1:1', batch_bytes: -5}", err, sizeof err));
  ck_assert_msg(strstr(err, "batch_bytes"), "%s", err);
}
END_TEST

/* Decodes seq fields from buf[0..len); returns the count, *tail the bytes
 * left undecoded at the end (a message cut short). */
static size_t seqs_of(const uint8_t *buf, size_t len, uint64_t *seqs, size_t *tail) {
  size_t off = 0, n = 0, used;
  char err[256];
  myelin_msg *m;
  while (off < len && myelin_msg_decode(buf + off, len - off, 0, &m, &used, err, sizeof err) == 0) {
    ck_assert_int_eq(myelin_msg_uint(m, "seq", &seqs[n]), 0);
    n++;
    off += used;
    myelin_msg_unref(m);
  }
  *tail = len - off;
  return n;
}

/* Reads until EOF (or `max` bytes, or 60 s without data). */
static size_t read_upto(int fd, uint8_t *buf, size_t max) {
  size_t len = 0;
  while (len < max) {
    struct pollfd pfd = {fd, POLLIN, 0};
    ck_assert_msg(poll(&pfd, 1, 60000) == 1, "no data for 60 s");
    ssize_t k = read(fd, buf + len, max - len);
    if (k <= 0) break;
    len += (size_t)k;
  }
  return len;
}

START_TEST(reset_mid_batch_resends_whole_message) {
  char *d = mt_tmpdir();
  int one = 1, count = 200000;
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  /* port 0: the kernel picks a free one (a fixed one can be taken) */
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t alen = sizeof a;
  ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
  int port = ntohs(a.sin_port);
  ck_assert_int_eq(listen(lfd, 1), 0);
  char *snd = mt_strf("%s/s.yaml", d);
  mt_write(snd, mt_strf("name: s\nstages:\n"
                        "  - {id: gen, plugin: gen_source, params: {count: %d, bytes: 64}}\n"
                        "  - {id: net, plugin: tcp_sink, inputs: [gen], params: {connect: '127.0.0.1:%d'}}\n",
                        count, port));
  pid_t s = spawn(snd, mt_strf("%s/s.log", d));
  int c1 = accept(lfd, NULL, NULL);
  ck_assert_int_ge(c1, 0);
  usleep(500000); /* the sink fills both socket buffers and blocks inside a batch */
  size_t cap = (size_t)count * 256;
  uint8_t *b1 = malloc(cap), *b2 = malloc(cap);
  size_t n1b = read_upto(c1, b1, 1 << 20);
  ck_assert_uint_eq(n1b, 1 << 20);
  struct linger lg = {1, 0}; /* close with a reset: unread data is discarded */
  setsockopt(c1, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(c1);
  int c2 = accept(lfd, NULL, NULL);
  ck_assert_int_ge(c2, 0);
  size_t n2b = read_upto(c2, b2, cap);
  close(c2);
  close(lfd);
  ck_assert_int_eq(wait_exit(s, 60), 0);
  uint64_t *s1 = malloc((size_t)count * sizeof *s1), *s2 = malloc((size_t)count * sizeof *s2);
  size_t tail1, tail2;
  size_t n1 = seqs_of(b1, n1b, s1, &tail1), n2 = seqs_of(b2, n2b, s2, &tail2);
  ck_assert_uint_gt(n1, 100);
  ck_assert_uint_lt(tail1, 256);   /* only the last message of the first 1 MiB is cut */
  ck_assert_uint_eq(tail2, 0);     /* the new connection: whole messages from its first byte */
  ck_assert_uint_gt(n2, 100);
  for (size_t i = 0; i < n1; i++) ck_assert_uint_eq(s1[i], i);
  for (size_t i = 1; i < n2; i++) ck_assert_uint_eq(s2[i], s2[i - 1] + 1); /* no gap within a connection */
  ck_assert_uint_gt(s2[0], s1[n1 - 1]);                                   /* never twice */
  ck_assert_uint_eq(s2[n2 - 1], (uint64_t)count - 1);
  char *out = slurp(mt_strf("%s/s.log", d));
  ck_assert_int_ge(stat_of(out, "net.reconnects"), 1);
  ck_assert_int_lt(stat_of(out, "net.sends"), stat_of(out, "net.messages"));
  free(out);
  free(b1);
  free(b2);
  free(s1);
  free(s2);
}
END_TEST

/* A plugin built against ABI 1.0 keeps working with the 1.1 host. */
START_TEST(abi_1_0_plugin_still_runs) {
  char *d = mt_tmpdir();
  const char *tp = mt_env("MYELIN_TEST_PLUGINS", ".");
  char *f = mt_strf("%s/a.yaml", d);
  mt_write(f, mt_strf("name: a\nplugin_path: [%s]\nstages:\n"
                      "  - {id: gen, plugin: gen_source, params: {count: 1000, bytes: 8}}\n"
                      "  - {id: old, plugin: abi10, inputs: [gen]}\n", tp));
  char *out;
  ck_assert_int_eq(mt_run(mt_strf("%s run %s --stats", bin(), f), &out), 0);
  ck_assert_int_eq(stat_of(out, "old.messages"), 1000);
  ck_assert_int_eq(stat_of(out, "old.host_size"), (long long)sizeof(myelin_host));
  free(out);
  ck_assert_int_eq(mt_run(mt_strf("MYELIN_PLUGIN_PATH=%s %s inspect abi10", tp, bin()), &out), 0);
  ck_assert_msg(strstr(out, "(ABI 1.0)"), "%s", out);
  free(out);
}
END_TEST

int main(void) {
  Suite *s = suite_create("live");
  TCase *tc = tcase_create("sockets");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, loopback_100k_in_order_identical);
  tcase_add_test(tc, garbage_and_huge_length_rejected_others_continue);
  tcase_add_test(tc, consumer_restart_at_most_once);
  tcase_add_test(tc, consumer_restart_at_most_once_batched_64b);
  tcase_add_test(tc, small_messages_batched_in_order_identical);
  tcase_add_test(tc, pending_never_overcounts);
  tcase_add_test(tc, harness_sends_every_message);
  tcase_add_test(tc, abi_1_0_plugin_still_runs);
  tcase_add_test(tc, reset_mid_batch_resends_whole_message);
  tcase_add_test(tc, realtime_replay_timing);
  tcase_add_test(tc, python_producer_consumer);
  suite_add_tcase(s, tc);
  return mt_run_suite(s);
}
