/*
 * error.c — readable phrases for the MYELIN_E* codes of error.h.
 *
 * Codes are small negative integers (libuv style); the phrase is short and
 * generic. Context (which file, which field) travels separately in the err
 * buffers and host->error() messages, so these strings never need to change.
 */
#include <stdarg.h>
#include <stdio.h>

#include "myelin/error.h"

const char *myelin_strerror(int code) {
  switch (code) {
  case MYELIN_OK: return "success";
  case MYELIN_EINVAL: return "invalid argument";
  case MYELIN_ENOMEM: return "out of memory";
  case MYELIN_EIO: return "input/output error";
  case MYELIN_ENOENT: return "not found";
  case MYELIN_ETYPE: return "wrong type";
  case MYELIN_EAGAIN: return "incomplete data, need more bytes";
  case MYELIN_ESTOP: return "stopping";
  case MYELIN_EABI: return "plugin ABI mismatch";
  case MYELIN_ERANGE: return "out of range or over a limit";
  case MYELIN_EFORMAT: return "malformed data";
  default: return code > 0 ? "success" : "unknown error";
  }
}

int myelin_errorf(char *err, size_t errlen, int code, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return code;
}
