/*
 * myelin/io.h — small file helpers shared by plugins.
 *
 * Atomic output: sinks write to "PATH.tmp-XXXXXX" in the destination folder
 * and rename onto PATH only when complete, so a half-written file never looks
 * finished (DESIGN.md section 6). An aborted file is unlinked.
 *
 * Whole-file input: myelin_read_file() loads a file, inflating gzip
 * transparently when the content starts with the gzip magic.
 */
#ifndef MYELIN_IO_H
#define MYELIN_IO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "error.h"
#include "msg.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct myelin_atomic_file {
  FILE *fp;            /* write through this */
  char *path;          /* final path */
  char *tmp_path;      /* temporary path being written */
} myelin_atomic_file;

/* Creates the temporary file (parent folders are NOT created). Returns 0 or a
 * negative code with a readable message in err. */
int myelin_atomic_open(myelin_atomic_file *f, const char *path, char *err, size_t errlen);
/* Flushes (fsync when do_fsync), closes and renames into place. */
int myelin_atomic_commit(myelin_atomic_file *f, int do_fsync, char *err, size_t errlen);
/* Closes and unlinks the temporary file. Safe on a zeroed or committed struct. */
void myelin_atomic_abort(myelin_atomic_file *f);

/* Creates the parent folders of path (like mkdir -p dirname). */
int myelin_mkdirs_for(const char *path, char *err, size_t errlen);
/* 0 when a file can be created in path's folder (checked before work starts). */
int myelin_check_writable(const char *path, char *err, size_t errlen);

/* The output paths a sink has written in this run: a second message that
 * expands to a path already written is an error naming both messages, never a
 * silent overwrite. Start from a zeroed struct. myelin_pathset_claim returns 0
 * and records (path, msg) when path is new; otherwise MYELIN_EINVAL with
 * "PATH: written twice (messages A and B)" in err (A the earlier one), or
 * MYELIN_ENOMEM. */
typedef struct myelin_pathset {
  char **keys;
  uint64_t *msg; /* the message number that wrote each path */
  size_t cap, n;
} myelin_pathset;
int myelin_pathset_claim(myelin_pathset *set, const char *path, uint64_t msg, char *err, size_t errlen);
void myelin_pathset_free(myelin_pathset *set);

/* Where an input file named in a pipeline file is: path as given when it is
 * absolute, empty or exists (relative to the working directory; a glob
 * pattern exists when it matches); otherwise dir/path when that exists (dir: host->pipeline_dir, the pipeline file's
 * folder); otherwise path as given, so that the error names what the user
 * wrote. Returns a malloc'ed string (NULL only when out of memory or path is
 * NULL). */
char *myelin_input_path(const char *path, const char *dir);

/* Reads a whole file; gzip content (magic 1f 8b) is inflated. *out is
 * malloc'ed (caller frees). max_bytes bounds the (inflated) size, 0 = none. */
int myelin_read_file(const char *path, size_t max_bytes, uint8_t **out, size_t *len, char *err,
                     size_t errlen);
/* Inflates a gzip or zlib buffer in memory. */
int myelin_gunzip(const uint8_t *in, size_t in_len, size_t max_bytes, uint8_t **out,
                  size_t *out_len, char *err, size_t errlen);

/* Stream files (.mpk: concatenated messages), read one message at a time in
 * bounded memory. myelin_reader_next returns 1 with a new message in *out
 * (the caller unrefs it), 0 at a clean end of file, or a negative code:
 * MYELIN_EFORMAT for a truncated or corrupt message, MYELIN_ERANGE for one
 * over max_bytes (0 = the default limit) or too deeply nested, MYELIN_ENOMEM;
 * err then names the byte offset. The FILE stays the caller's (it may be
 * closed before the messages are released).
 * A regular file is mapped (mmap) in windows of 64 MiB or more: messages of
 * 64 KiB and more point into the mapping (no copy; tensors that the writer
 * aligned are aligned in place) and keep their window mapped as long as they
 * live; smaller ones are copied. Pipes, FIFOs and other files are read() into
 * a sliding buffer and every message is copied. A mapped file must not be
 * truncated while it is read (the kernel then kills the process, SIGBUS). */
typedef struct myelin_reader myelin_reader;
myelin_reader *myelin_reader_new(FILE *f, size_t max_bytes);
int myelin_reader_next(myelin_reader *r, myelin_msg **out, char *err, size_t errlen);
uint64_t myelin_reader_offset(const myelin_reader *r); /* byte offset of the next message */
void myelin_reader_rewind(myelin_reader *r);
void myelin_reader_free(myelin_reader *r);

/* Stream files written message by message (ABI 1.3), to fd from its current
 * offset. Messages under 64 KiB are gathered in a 1 MiB buffer; larger ones
 * are written from their own bytes by writev (no staging copy). Each tensor
 * payload the builder padded ("_pad", msg.h) has its pad re-sized so that the
 * payload starts on a multiple of 64 bytes of the file, where a mapping
 * reader finds it aligned; readers skip "_pad", so only the pads' lengths can
 * differ from myelin_msg_bytes. myelin_writer_put and _flush return 0 or a
 * negative code (MYELIN_EIO, MYELIN_ENOMEM) with err naming the byte offset;
 * flush writes what is gathered (call it before closing fd). The fd stays
 * the caller's; myelin_writer_free does not flush. */
typedef struct myelin_writer myelin_writer;
myelin_writer *myelin_writer_new(int fd);
int myelin_writer_put(myelin_writer *w, const myelin_msg *m, char *err, size_t errlen);
int myelin_writer_flush(myelin_writer *w, char *err, size_t errlen);
uint64_t myelin_writer_offset(const myelin_writer *w); /* bytes accepted: written or gathered */
void myelin_writer_free(myelin_writer *w);

#ifdef __cplusplus
}
#endif
#endif
