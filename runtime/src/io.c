/*
 * io.c — small file helpers: atomic output files, folders, whole-file reads.
 *
 * Atomic output. A sink never writes under the final name: it writes
 * "PATH.tmp-XXXXXX" (mkostemp, same folder so rename() stays on one file
 * system) and renames it onto PATH only in myelin_atomic_commit(), after a
 * flush, an optional fsync of the file and of its folder, and a checked
 * fclose (ENOSPC often surfaces only there). Anything that fails unlinks the
 * temporary file, so a half-written file never looks finished. The final
 * mode is 0644 (mkstemp's 0600 would surprise users sharing results).
 *
 * Whole-file input. myelin_read_file() reads regular files in one go (size
 * from fstat) and pipes or /proc files in growing chunks, then inflates the
 * content when it starts with the gzip magic. The buffer always carries one
 * extra NUL byte after the data (not counted in len) so text parsers can use
 * it directly. myelin_gunzip() uses zlib with automatic gzip/zlib header
 * detection and follows concatenated gzip members (pigz, `cat a.gz b.gz`);
 * max_bytes bounds the inflated size before memory is committed to it.
 *
 * Every error message names the path and the OS reason (strerror).
 */
#include "myelin/io.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static void io_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void io_err(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || !errlen) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

static int code_of(int e) {
  switch (e) {
  case ENOENT:
  case ENOTDIR:
    return MYELIN_ENOENT;
  case ENOMEM:
    return MYELIN_ENOMEM;
  case EINVAL:
  case ENAMETOOLONG:
    return MYELIN_EINVAL;
  default:
    return MYELIN_EIO;
  }
}

/* The folder part of path ("." when there is none), malloc'ed. */
static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return strdup(".");
  if (slash == path) return strdup("/");
  return strndup(path, (size_t)(slash - path));
}

/* ---- atomic output ------------------------------------------------------- */

static void atomic_clear(myelin_atomic_file *f) {
  free(f->path);
  free(f->tmp_path);
  f->fp = NULL;
  f->path = NULL;
  f->tmp_path = NULL;
}

int myelin_atomic_open(myelin_atomic_file *f, const char *path, char *err, size_t errlen) {
  memset(f, 0, sizeof *f);
  if (!path || !*path) return io_err(err, errlen, "empty output path"), MYELIN_EINVAL;
  f->path = strdup(path);
  size_t n = strlen(path) + sizeof ".tmp-XXXXXX";
  f->tmp_path = malloc(n);
  if (!f->path || !f->tmp_path) {
    atomic_clear(f);
    return io_err(err, errlen, "%s: out of memory", path), MYELIN_ENOMEM;
  }
  snprintf(f->tmp_path, n, "%s.tmp-XXXXXX", path);
  int fd = mkostemp(f->tmp_path, O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    io_err(err, errlen, "%s: cannot create temporary file %s: %s", path, f->tmp_path, strerror(e));
    atomic_clear(f);
    return code_of(e);
  }
  (void)fchmod(fd, 0644);
  f->fp = fdopen(fd, "wb");
  if (!f->fp) {
    int e = errno;
    close(fd);
    unlink(f->tmp_path);
    io_err(err, errlen, "%s: %s", path, strerror(e));
    atomic_clear(f);
    return code_of(e);
  }
  return 0;
}

static void fsync_dir(const char *path) {
  char *dir = dir_of(path);
  if (!dir) return;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
  free(dir);
}

int myelin_atomic_commit(myelin_atomic_file *f, int do_fsync, char *err, size_t errlen) {
  if (!f || !f->fp || !f->tmp_path)
    return io_err(err, errlen, "atomic commit of a file that is not open"), MYELIN_EINVAL;
  int e = 0, renaming = 0;
  errno = 0;
  if (fflush(f->fp) != 0)
    e = errno ? errno : EIO;
  else if (ferror(f->fp))
    e = EIO; /* an earlier write failed; its errno is gone */
  if (!e && do_fsync && fsync(fileno(f->fp)) != 0) e = errno;
  if (fclose(f->fp) != 0 && !e) e = errno;
  f->fp = NULL;
  if (!e && rename(f->tmp_path, f->path) != 0) e = errno, renaming = 1;
  if (e) {
    if (renaming)
      io_err(err, errlen, "%s: cannot rename %s into place: %s", f->path, f->tmp_path, strerror(e));
    else
      io_err(err, errlen, "%s: write failed: %s", f->path, strerror(e));
    unlink(f->tmp_path);
    atomic_clear(f);
    return code_of(e) == MYELIN_ENOMEM ? MYELIN_ENOMEM : MYELIN_EIO;
  }
  if (do_fsync) fsync_dir(f->path);
  atomic_clear(f);
  return 0;
}

void myelin_atomic_abort(myelin_atomic_file *f) {
  if (!f) return;
  if (f->fp) fclose(f->fp);
  if (f->tmp_path) unlink(f->tmp_path);
  atomic_clear(f);
}

/* ---- folders ------------------------------------------------------------- */

int myelin_mkdirs_for(const char *path, char *err, size_t errlen) {
  if (!path) return io_err(err, errlen, "NULL path"), MYELIN_EINVAL;
  char *dir = dir_of(path);
  if (!dir) return io_err(err, errlen, "%s: out of memory", path), MYELIN_ENOMEM;
  int rc = 0;
  for (char *p = dir + 1;; p++) {
    if (*p != '/' && *p != 0) continue;
    char c = *p;
    *p = 0;
    struct stat st;
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
      int e = errno;
      io_err(err, errlen, "cannot create folder %s: %s", dir, strerror(e));
      rc = code_of(e);
    } else if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
      io_err(err, errlen, "cannot create folder %s: a file of that name exists", dir);
      rc = MYELIN_EIO;
    }
    *p = c;
    if (rc || !c) break;
  }
  free(dir);
  return rc;
}

/* Whether path names something: a file or folder, or for a glob pattern at
 * least one match. */
int io_path_found(const char *path) {
  if (!strpbrk(path, "*?[")) return access(path, F_OK) == 0;
  glob_t g;
  int found = glob(path, 0, NULL, &g) == 0 && g.gl_pathc > 0;
  globfree(&g);
  return found;
}

char *myelin_input_path(const char *path, const char *dir) {
  if (!path) return NULL;
  if (path[0] == '/' || !*path || io_path_found(path) || !dir || !*dir) return strdup(path);
  size_t n = strlen(dir) + strlen(path) + 2;
  char *joined = malloc(n);
  if (!joined) return NULL;
  snprintf(joined, n, "%s/%s", dir, path);
  if (io_path_found(joined)) return joined;
  free(joined);
  return strdup(path);
}

int myelin_check_writable(const char *path, char *err, size_t errlen) {
  if (!path || !*path) return io_err(err, errlen, "empty output path"), MYELIN_EINVAL;
  struct stat st;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
    return io_err(err, errlen, "%s: is a folder, expected a file path", path), MYELIN_EINVAL;
  /* Missing folders will be created by the sink: check the nearest one that exists. */
  char *dir = dir_of(path);
  if (!dir) return io_err(err, errlen, "%s: out of memory", path), MYELIN_ENOMEM;
  int rc = 0;
  for (;;) {
    if (stat(dir, &st) == 0) {
      if (!S_ISDIR(st.st_mode)) {
        io_err(err, errlen, "%s: cannot create it, %s is not a folder", path, dir);
        rc = MYELIN_EIO;
      } else if (access(dir, W_OK | X_OK) != 0) {
        io_err(err, errlen, "%s: folder %s is not writable: %s", path, dir, strerror(errno));
        rc = MYELIN_EIO;
      }
      break;
    }
    if (errno != ENOENT && errno != ENOTDIR) {
      io_err(err, errlen, "%s: cannot access %s: %s", path, dir, strerror(errno));
      rc = code_of(errno);
      break;
    }
    char *up = dir_of(dir);
    if (!up) {
      rc = MYELIN_ENOMEM;
      break;
    }
    int same = strcmp(up, dir) == 0;
    free(dir);
    dir = up;
    if (same) break; /* "." or "/" missing: cannot happen in practice */
  }
  free(dir);
  return rc;
}

/* ---- whole-file reads ---------------------------------------------------- */

static int read_all(int fd, const char *path, size_t size_hint, size_t max_raw, uint8_t **out, size_t *len,
                    char *err, size_t errlen) {
  size_t cap = size_hint ? size_hint + 1 : 65536, n = 0;
  uint8_t *buf = malloc(cap + 1);
  if (!buf) return io_err(err, errlen, "%s: out of memory", path), MYELIN_ENOMEM;
  for (;;) {
    if (n == cap) {
      if (max_raw && cap > max_raw) {
        free(buf);
        io_err(err, errlen, "%s: larger than the limit (%zu bytes read)", path, n);
        return MYELIN_ERANGE;
      }
      size_t ncap = cap * 2;
      uint8_t *nb = realloc(buf, ncap + 1);
      if (!nb) {
        free(buf);
        return io_err(err, errlen, "%s: out of memory", path), MYELIN_ENOMEM;
      }
      buf = nb;
      cap = ncap;
    }
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int e = errno;
      free(buf);
      io_err(err, errlen, "%s: read failed: %s", path, strerror(e));
      return MYELIN_EIO;
    }
    if (r == 0) break;
    n += (size_t)r;
  }
  buf[n] = 0;
  *out = buf;
  *len = n;
  return 0;
}

int myelin_read_file(const char *path, size_t max_bytes, uint8_t **out, size_t *len, char *err,
                     size_t errlen) {
  *out = NULL;
  *len = 0;
  if (!path) return io_err(err, errlen, "NULL path"), MYELIN_EINVAL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    io_err(err, errlen, "%s: cannot open: %s", path, strerror(e));
    return code_of(e);
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
    int e = S_ISDIR(st.st_mode) ? EISDIR : errno;
    close(fd);
    io_err(err, errlen, "%s: cannot read: %s", path, strerror(e));
    return MYELIN_EIO;
  }
  size_t hint = S_ISREG(st.st_mode) ? (size_t)st.st_size : 0;
  /* With a limit, even compressed input cannot be much larger than it
   * (deflate expands incompressible data by well under 1/64). */
  size_t max_raw = max_bytes ? max_bytes + max_bytes / 64 + 4096 : 0;
  if (max_raw && max_raw < max_bytes) max_raw = SIZE_MAX;
  if (max_raw && hint > max_raw) {
    close(fd);
    io_err(err, errlen, "%s: %zu bytes, over the limit of %zu bytes", path, hint, max_bytes);
    return MYELIN_ERANGE;
  }
  uint8_t *raw;
  size_t n;
  int rc = read_all(fd, path, hint, max_raw, &raw, &n, err, errlen);
  close(fd);
  if (rc) return rc;
  if (n >= 2 && raw[0] == 0x1f && raw[1] == 0x8b) {
    char inner[200];
    rc = myelin_gunzip(raw, n, max_bytes, out, len, inner, sizeof inner);
    free(raw);
    if (rc) io_err(err, errlen, "%s: %s", path, inner);
    return rc;
  }
  if (max_bytes && n > max_bytes) {
    free(raw);
    io_err(err, errlen, "%s: %zu bytes, over the limit of %zu bytes", path, n, max_bytes);
    return MYELIN_ERANGE;
  }
  *out = raw;
  *len = n;
  return 0;
}

/* The gzip trailer's ISIZE (inflated size mod 2^32) as a first guess. */
static size_t size_guess(const uint8_t *in, size_t in_len) {
  if (in_len >= 18 && in[0] == 0x1f && in[1] == 0x8b) {
    const uint8_t *t = in + in_len - 4;
    size_t isize = (size_t)t[0] | (size_t)t[1] << 8 | (size_t)t[2] << 16 | (size_t)t[3] << 24;
    if (isize) return isize;
  }
  return in_len < SIZE_MAX / 4 ? in_len * 4 + 64 : in_len;
}

int myelin_gunzip(const uint8_t *in, size_t in_len, size_t max_bytes, uint8_t **out, size_t *out_len,
                  char *err, size_t errlen) {
  *out = NULL;
  *out_len = 0;
  if (!in && in_len) return io_err(err, errlen, "NULL input"), MYELIN_EINVAL;
  size_t cap = size_guess(in, in_len);
  if (cap < 64) cap = 64;
  if (max_bytes && cap > max_bytes) cap = max_bytes;
  uint8_t *buf = malloc(cap + 1);
  if (!buf) return io_err(err, errlen, "out of memory"), MYELIN_ENOMEM;
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  if (inflateInit2(&zs, 15 + 32) != Z_OK) {
    free(buf);
    return io_err(err, errlen, "zlib init failed"), MYELIN_ENOMEM;
  }
  size_t in_pos = 0, n = 0;
  int rc = 0, zr = Z_OK;
  for (;;) {
    if (zr == Z_STREAM_END) {
      /* another gzip member follows? (anything else after the end is ignored) */
      if (in_len - in_pos < 2 || in[in_pos] != 0x1f || in[in_pos + 1] != 0x8b) break;
      inflateReset(&zs);
    }
    if (n == cap && !(max_bytes && cap >= max_bytes)) {
      size_t ncap = cap * 2;
      if (max_bytes && ncap > max_bytes) ncap = max_bytes;
      uint8_t *nb = realloc(buf, ncap + 1);
      if (!nb) {
        io_err(err, errlen, "out of memory (%zu bytes)", ncap);
        rc = MYELIN_ENOMEM;
        break;
      }
      buf = nb;
      cap = ncap;
    }
    /* at the limit, inflate into a 1-byte probe: any output means "too big" */
    uint8_t probe;
    size_t ain = in_len - in_pos, aout = cap - n;
    zs.next_in = (Bytef *)(uintptr_t)(in + in_pos);
    zs.avail_in = ain > UINT_MAX ? UINT_MAX : (uInt)ain;
    zs.next_out = aout ? buf + n : &probe;
    zs.avail_out = aout ? (aout > UINT_MAX ? UINT_MAX : (uInt)aout) : 1;
    uInt before_in = zs.avail_in, before_out = zs.avail_out;
    zr = inflate(&zs, Z_NO_FLUSH);
    in_pos += before_in - zs.avail_in;
    if (!aout && zs.avail_out == 0) {
      io_err(err, errlen, "inflated data exceeds the limit of %zu bytes", max_bytes);
      rc = MYELIN_ERANGE;
      break;
    }
    if (aout) n += before_out - zs.avail_out;
    if (zr == Z_NEED_DICT || zr == Z_DATA_ERROR || zr == Z_MEM_ERROR || zr == Z_STREAM_ERROR) {
      io_err(err, errlen, "corrupt gzip data near input byte %zu: %s", in_pos,
             zs.msg ? zs.msg : "invalid data");
      rc = zr == Z_MEM_ERROR ? MYELIN_ENOMEM : MYELIN_EFORMAT;
      break;
    }
    if (zr == Z_BUF_ERROR) { /* no progress possible: the input ended early */
      io_err(err, errlen, "truncated gzip data (%zu bytes)", in_len);
      rc = MYELIN_EFORMAT;
      break;
    }
  }
  inflateEnd(&zs);
  if (rc) {
    free(buf);
    return rc;
  }
  buf[n] = 0;
  *out = buf;
  *out_len = n;
  return 0;
}
