/*
 * myelin/error.h — error codes shared by every public function.
 *
 * As in libuv, functions return 0 (or a non-negative count) on success and a
 * negative MYELIN_E* code on failure; myelin_strerror() turns a code into a
 * short readable phrase. Longer, contextual messages (which file, which
 * field) travel separately: through the host's error() for plugins, or an
 * `err` buffer for functions that parse input.
 */
#ifndef MYELIN_ERROR_H
#define MYELIN_ERROR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
  MYELIN_OK = 0,
  MYELIN_EINVAL = -1,  /* invalid argument or value */
  MYELIN_ENOMEM = -2,  /* out of memory */
  MYELIN_EIO = -3,     /* read/write failed */
  MYELIN_ENOENT = -4,  /* no such file, key or port */
  MYELIN_ETYPE = -5,   /* a value has the wrong type */
  MYELIN_EAGAIN = -6,  /* not enough bytes yet (streaming decoders) */
  MYELIN_ESTOP = -7,   /* the run is stopping; the caller should return */
  MYELIN_EABI = -8,    /* plugin ABI mismatch */
  MYELIN_ERANGE = -9,  /* value out of range, or over a limit */
  MYELIN_EFORMAT = -10 /* malformed input data */
};

const char *myelin_strerror(int code);

/* Formats a message into err (when err is not NULL) and returns code, so
 * error paths read `return myelin_errorf(err, errlen, MYELIN_EIO, "%s: ...", path);`. */
int myelin_errorf(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#ifdef __cplusplus
}
#endif
#endif
