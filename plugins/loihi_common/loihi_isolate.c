/*
 * loihi_isolate.c — reading netx files that may be damaged, without letting
 * libhdf5 take the process down.
 *
 * Fuzzing found inputs on which Debian's libhdf5 (1.10) itself crashes or
 * asks for gigabytes (a damaged local heap reached through H5Lexists; see
 * tests/fuzz/pending/netx). A user-supplied `net:` file is therefore parsed
 * in a forked child: the child reads it with loihi_netx_read() and streams the
 * integer network back over a pipe; the parent rebuilds it. A child that dies
 * on a signal becomes a clear error naming the file, never a crash of the run.
 * The child's address space is capped (RLIMIT_AS) so a runaway allocation
 * fails there too.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "loihi.h"

/* AddressSanitizer reserves terabytes of address space for its shadow, so an
 * address-space cap would kill a sanitized child at its first allocation. */
#if defined(__SANITIZE_ADDRESS__)
#define CAP_ADDRESS_SPACE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CAP_ADDRESS_SPACE 0
#endif
#endif
#ifndef CAP_ADDRESS_SPACE
#define CAP_ADDRESS_SPACE 1
#endif

static int write_all(int fd, const void *p, size_t n) {
  const char *b = p;
  while (n) {
    ssize_t w = write(fd, b, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    b += w;
    n -= (size_t)w;
  }
  return 0;
}

static int read_all(int fd, void *p, size_t n) {
  char *b = p;
  while (n) {
    ssize_t r = read(fd, b, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    b += r;
    n -= (size_t)r;
  }
  return 0;
}

/* Wire format: int32 rc; on success int32 n_layers, then per layer int64
 * header [n_in, n_out, i_decay, v_decay, vth_mant, ref_delay, graded,
 * has_bias], weights, bias; on failure the error text (NUL-terminated). */
static void child(const char *path, int fd) {
  loihi_net n;
  char err[512] = "";
  int32_t rc = loihi_netx_read(path, &n, err, sizeof err);
  int bad = write_all(fd, &rc, sizeof rc);
  if (rc) {
    bad |= write_all(fd, err, strlen(err) + 1);
    _exit(bad ? 3 : 0);
  }
  int32_t nl = n.n_layers;
  bad |= write_all(fd, &nl, sizeof nl);
  for (int i = 0; i < n.n_layers && !bad; i++) {
    const loihi_layer *l = &n.layers[i];
    int64_t h[8] = {l->n_in, l->n_out, l->i_decay, l->v_decay, l->vth_mant, l->ref_delay, l->graded, l->bias != NULL};
    bad |= write_all(fd, h, sizeof h);
    bad |= write_all(fd, l->weight, (size_t)l->n_in * (size_t)l->n_out * sizeof(int32_t));
    if (l->bias) bad |= write_all(fd, l->bias, (size_t)l->n_out * sizeof(int32_t));
  }
  _exit(bad ? 3 : 0);
}

static int receive(int fd, const char *path, loihi_net *out, char *err, size_t errlen) {
  int32_t rc;
  if (read_all(fd, &rc, sizeof rc)) return -1;
  if (rc) {
    size_t k = 0;
    char c;
    while (k + 1 < errlen && read_all(fd, &c, 1) == 0 && c) err[k++] = c;
    if (errlen) err[k] = 0;
    return rc < 0 ? rc : -1;
  }
  int32_t nl;
  if (read_all(fd, &nl, sizeof nl) || nl < 0 || nl > 1024) return -1;
  out->layers = calloc(nl ? (size_t)nl : 1, sizeof *out->layers);
  if (!out->layers) return loihi_errf(err, errlen, "%s: out of memory", path);
  out->n_layers = nl;
  for (int i = 0; i < nl; i++) {
    int64_t h[8];
    loihi_layer *l = &out->layers[i];
    if (read_all(fd, h, sizeof h) || h[0] < 0 || h[1] < 0 || h[0] > (1 << 24) || h[1] > (1 << 24)) return -1;
    l->n_in = (int)h[0], l->n_out = (int)h[1];
    l->i_decay = h[2], l->v_decay = h[3], l->vth_mant = h[4], l->ref_delay = h[5], l->graded = (int)h[6];
    size_t nw = (size_t)l->n_in * (size_t)l->n_out;
    l->weight = malloc((nw ? nw : 1) * sizeof(int32_t));
    if (!l->weight || read_all(fd, l->weight, nw * sizeof(int32_t))) return -1;
    if (h[7]) {
      l->bias = malloc((l->n_out ? (size_t)l->n_out : 1) * sizeof(int32_t));
      if (!l->bias || read_all(fd, l->bias, (size_t)l->n_out * sizeof(int32_t))) return -1;
    }
  }
  return 0;
}

int loihi_netx_read_isolated(const char *path, loihi_net *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  int p[2];
  if (pipe(p)) return loihi_netx_read(path, out, err, errlen);
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    close(p[0]), close(p[1]);
    return loihi_netx_read(path, out, err, errlen);
  }
  if (pid == 0) {
    close(p[0]);
    if (CAP_ADDRESS_SPACE) {
      struct rlimit lim = {(rlim_t)8 << 30, (rlim_t)8 << 30}; /* a runaway allocation fails here */
      setrlimit(RLIMIT_AS, &lim);
    }
    child(path, p[1]);
  }
  close(p[1]);
  char why[512] = "";
  int rc = receive(p[0], path, out, why, sizeof why);
  close(p[0]);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(st)) {
    loihi_net_free(out);
    return loihi_errf(err, errlen, "%s: the HDF5 library crashed reading this file (signal %d): the file is damaged",
                      path, WTERMSIG(st));
  }
  if (rc) {
    loihi_net_free(out);
    if (why[0]) snprintf(err, errlen, "%s", why);
    else loihi_errf(err, errlen, "%s: could not be read (reader exited with status %d)", path, WEXITSTATUS(st));
    return rc < 0 ? rc : -1;
  }
  return 0;
}
