/*
 * live_probe — drives a relay (a myelin pipeline tcp_source → tcp_sink, or a
 * GStreamer tcpserversrc ! tcpclientsink) from both ends over loopback:
 * listens on OUT for the relay's sink, connects to IN, sends N messages of
 * B payload bytes at RATE/s (0 = as fast as possible), each stamped with its
 * send time, and measures per-message latency (send → received back) and
 * throughput. Prints one line of figures.
 *   live_probe IN OUT N BYTES RATE LABEL
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "myelin/msg.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct rx {
  int lfd, timed;
  long n;
  double *lat, t_last;
} rx;

static void *receiver(void *arg) {
  rx *r = arg;
  int fd = accept(r->lfd, NULL, NULL);
  size_t cap = 64 << 20, len = 0, off = 0;
  uint8_t *buf = malloc(cap);
  long got = 0;
  while (got < r->n) {
    if (off == len) off = len = 0;
    if (cap - len < (1 << 20)) {
      memmove(buf, buf + off, len - off);
      len -= off;
      off = 0;
    }
    ssize_t k = read(fd, buf + len, cap - len);
    if (k <= 0) break;
    len += (size_t)k;
    for (;;) {
      size_t used;
      if (!r->timed) { /* throughput: find message boundaries only, no copy */
        if (myelin_msgpack_measure(buf + off, len - off, 0, &used, NULL, 0)) break;
        r->t_last = now();
        got++;
        off += used;
        continue;
      }
      myelin_msg *m;
      if (myelin_msg_decode(buf + off, len - off, 0, &m, &used, NULL, 0)) break;
      double t, tn = now();
      if (myelin_msg_float(m, "t", &t) == 0) r->lat[got] = tn - t;
      r->t_last = tn;
      got++;
      off += used;
      myelin_msg_unref(m);
    }
  }
  r->n = got;
  free(buf);
  close(fd);
  return NULL;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (argc < 7) {
    fprintf(stderr, "usage: live_probe IN OUT N BYTES RATE LABEL\n");
    return 2;
  }
  int in = atoi(argv[1]), out = atoi(argv[2]);
  long n = atol(argv[3]);
  int64_t bytes = atol(argv[4]);
  double rate = atof(argv[5]);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  rx r = {.n = n, .timed = rate > 0, .lat = calloc((size_t)n, sizeof(double))};
  r.lfd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(r.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  a.sin_port = htons((uint16_t)out);
  if (bind(r.lfd, (struct sockaddr *)&a, sizeof a) || listen(r.lfd, 1)) {
    perror("listen");
    return 1;
  }
  pthread_t th;
  pthread_create(&th, NULL, receiver, &r);
  int fd = -1;
  a.sin_port = htons((uint16_t)in);
  for (int i = 0; i < 200 && fd < 0; i++) {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
      close(fd);
      fd = -1;
      usleep(25000);
    }
  }
  if (fd < 0) {
    fprintf(stderr, "cannot reach the relay on port %d\n", in);
    return 1;
  }
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int64_t shape[1] = {bytes};
  double t0 = now();
  myelin_msg *shared = NULL; /* throughput runs send one prebuilt message */
  for (long i = 0; i < n; i++) {
    if (rate > 0) {
      double due = t0 + (double)i / rate;
      while (now() < due) {
        double w = due - now();
        if (w > 0.0002) usleep((useconds_t)((w - 0.0001) * 1e6));
      }
    }
    myelin_msg *m = shared ? myelin_msg_ref(shared) : NULL;
    if (!m) {
      myelin_builder *b = myelin_builder_new("tensor");
      myelin_build_uint(b, "seq", (uint64_t)i);
      myelin_build_float(b, "t", now());
      uint8_t *d = myelin_build_tensor(b, "data", MYELIN_U1, 1, shape);
      memset(d, (int)i, (size_t)bytes);
      m = myelin_builder_finish(b);
      if (rate <= 0) shared = myelin_msg_ref(m);
    }
    size_t len;
    const uint8_t *p = myelin_msg_bytes(m, &len);
    while (len) {
      ssize_t w = write(fd, p, len);
      if (w <= 0) {
        perror("write");
        return 1;
      }
      p += w;
      len -= (size_t)w;
    }
    myelin_msg_unref(m);
  }
  myelin_msg_unref(shared);
  close(fd);
  pthread_join(th, NULL);
  double wall = r.t_last - t0;
  qsort(r.lat, (size_t)r.n, sizeof(double), cmp);
  double p50 = r.n ? r.lat[r.n / 2] : 0, p99 = r.n ? r.lat[(size_t)((double)r.n * 0.99)] : 0;
  if (r.timed)
    printf("%-10s %8ld x %8lld B at %5.0f/s: latency p50 %7.1f us  p99 %7.1f us%s\n", argv[6], r.n, (long long)bytes,
           rate, p50 * 1e6, p99 * 1e6, r.n == n ? "" : "  (INCOMPLETE)");
  else
    printf("%-10s %8ld x %8lld B: %9.0f msgs/s %8.3f GB/s%s\n", argv[6], r.n, (long long)bytes, (double)r.n / wall,
           (double)r.n * (double)bytes / wall / 1e9, r.n == n ? "" : "  (INCOMPLETE)");
  return r.n == n ? 0 : 1;
}
