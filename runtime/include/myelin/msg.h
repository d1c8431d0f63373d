/*
 * myelin/msg.h — messages and tensors.
 *
 * A message is one msgpack map (DESIGN.md section 4) held in an immutable,
 * reference-counted buffer. The same bytes flow between threads, into .mpk
 * files and over sockets. Plugins never touch msgpack directly:
 *
 *  - reading: myelin_msg_root() gives a myelin_obj view of the map; the
 *    myelin_obj_* functions walk it without copying. Tensor payloads are read
 *    in place (myelin_obj_tensor); a payload whose address is not aligned to
 *    its element size is copied once into an aligned side buffer owned by the
 *    message, so the pointer handed out is always safe to cast.
 *  - building: myelin_builder_new(kind) opens the root map; myelin_build_*
 *    append fields; myelin_builder_finish() returns the message. Tensor
 *    payloads of 4 KiB or more are placed at 64-byte-aligned addresses (a
 *    "_pad" bin entry of 0 to 63 bytes precedes "data" in the tensor map;
 *    readers skip it, schemas/README.md; a stream-file writer re-sizes it to
 *    align the payload in the file, io.h); smaller ones at 8-byte-aligned
 *    addresses, with no extra key.
 *    Maps and arrays are written with 32-bit headers whose counts are patched
 *    on close, so no count is needed up front. Errors are sticky: after the
 *    first failure every build call is a no-op and finish returns NULL.
 *
 * Thread safety: a finished message is immutable and may be read from any
 * number of threads at once (fan-out shares one message, no copy).
 * myelin_msg_ref/unref are atomic. A builder belongs to one thread.
 */
#ifndef MYELIN_MSG_H
#define MYELIN_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- limits (enforced before allocation by every decoder) ---------------- */
#define MYELIN_MAX_NDIM 8
#define MYELIN_MAX_DEPTH 32                          /* map/array nesting */
#define MYELIN_DEFAULT_MAX_MESSAGE ((size_t)256 << 20) /* 256 MiB */

/* ---- dtypes -------------------------------------------------------------- */
typedef enum myelin_dtype {
  MYELIN_DTYPE_INVALID = 0,
  MYELIN_F4, /* "<f4" float    */
  MYELIN_F8, /* "<f8" double   */
  MYELIN_I1, /* "|i1" int8_t   */
  MYELIN_I2, /* "<i2" int16_t  */
  MYELIN_I4, /* "<i4" int32_t  */
  MYELIN_I8, /* "<i8" int64_t  */
  MYELIN_U1, /* "|u1" uint8_t  */
  MYELIN_U2, /* "<u2" uint16_t */
  MYELIN_U4, /* "<u4" uint32_t */
  MYELIN_U8, /* "<u8" uint64_t */
  MYELIN_B1  /* "|b1" bool, one byte 0/1 */
} myelin_dtype;

myelin_dtype myelin_dtype_parse(const char *s, size_t len); /* "<f4" -> MYELIN_F4; INVALID if unknown */
const char *myelin_dtype_name(myelin_dtype d);              /* MYELIN_F4 -> "<f4" */
size_t myelin_dtype_size(myelin_dtype d);                   /* bytes per element, 0 if invalid */

/* A read-only view of a tensor inside a message (or anywhere). */
typedef struct myelin_tensor {
  myelin_dtype dtype;
  int ndim;
  int64_t shape[MYELIN_MAX_NDIM];
  size_t count;      /* number of elements (product of shape; 1 for ndim 0) */
  size_t nbytes;     /* count * dtype size */
  const void *data;  /* aligned to at least the element size */
} myelin_tensor;

/* ---- messages ------------------------------------------------------------ */
typedef struct myelin_msg myelin_msg;

myelin_msg *myelin_msg_ref(myelin_msg *m); /* returns m */
void myelin_msg_unref(myelin_msg *m);      /* NULL is fine */

/* The encoded msgpack bytes (what file_sink writes). */
const uint8_t *myelin_msg_bytes(const myelin_msg *m, size_t *len);

/* The "kind" field, NUL-terminated; "" if absent. */
const char *myelin_msg_kind(const myelin_msg *m);

/*
 * Decode one message from the front of buf[0..len). On success stores a new
 * message (its own copy of the bytes, placed so that padded payloads are
 * 64-byte aligned) in *out and the bytes used in *used.
 * Returns MYELIN_EAGAIN when buf holds only a prefix of a valid message (read
 * more and call again), MYELIN_ERANGE when the message would exceed max_bytes
 * (0 = MYELIN_DEFAULT_MAX_MESSAGE) or MYELIN_MAX_DEPTH, MYELIN_EFORMAT when the
 * bytes are not a msgpack map with a string "kind". err (may be NULL) gets a
 * readable reason.
 */
int myelin_msg_decode(const void *buf, size_t len, size_t max_bytes, myelin_msg **out,
                      size_t *used, char *err, size_t errlen);

/*
 * Scan only: find the length of the msgpack value at the front of buf without
 * allocating. Same return codes as myelin_msg_decode (EFORMAT for a value that
 * is not a map is NOT reported here: any valid msgpack value is measured).
 */
int myelin_msgpack_measure(const void *buf, size_t len, size_t max_bytes, size_t *used,
                           char *err, size_t errlen);

/* ---- reading: object views ----------------------------------------------- */
typedef enum myelin_obj_type {
  MYELIN_OBJ_NONE = 0, /* absent (lookup failed) */
  MYELIN_OBJ_NIL,
  MYELIN_OBJ_BOOL,
  MYELIN_OBJ_INT, /* positive or negative integer */
  MYELIN_OBJ_FLOAT,
  MYELIN_OBJ_STR,
  MYELIN_OBJ_BIN,
  MYELIN_OBJ_ARRAY,
  MYELIN_OBJ_MAP,
  MYELIN_OBJ_EXT
} myelin_obj_type;

/* A borrowed view into a message; valid while the message is referenced. */
typedef struct myelin_obj {
  const void *o;         /* internal: msgpack_object *, NULL when absent */
  const myelin_msg *msg; /* the owning message */
} myelin_obj;

myelin_obj myelin_msg_root(const myelin_msg *m);
myelin_obj myelin_msg_get(const myelin_msg *m, const char *key); /* root[key] */

myelin_obj_type myelin_obj_type_of(myelin_obj o);
int myelin_obj_exists(myelin_obj o);
myelin_obj myelin_obj_get(myelin_obj map, const char *key); /* NONE if absent or not a map */
size_t myelin_obj_len(myelin_obj o);                        /* array/map entries, str/bin bytes */
myelin_obj myelin_obj_at(myelin_obj array, size_t i);       /* array element */
myelin_obj myelin_obj_key_at(myelin_obj map, size_t i);
myelin_obj myelin_obj_value_at(myelin_obj map, size_t i);

/* Scalars. Return 0, MYELIN_ENOENT (absent) or MYELIN_ETYPE. int accepts any
 * integer that fits; float accepts integers too; uint rejects negatives. */
int myelin_obj_int(myelin_obj o, int64_t *out);
int myelin_obj_uint(myelin_obj o, uint64_t *out);
int myelin_obj_float(myelin_obj o, double *out);
int myelin_obj_bool(myelin_obj o, int *out);
/* Strings are not NUL-terminated inside a message. */
const char *myelin_obj_str(myelin_obj o, size_t *len); /* NULL if not a str */
int myelin_obj_str_eq(myelin_obj o, const char *s);    /* 1 if a str equal to s */
/* Copy a str into buf (NUL-terminated). MYELIN_ERANGE if it does not fit. */
int myelin_obj_str_copy(myelin_obj o, char *buf, size_t n);
const void *myelin_obj_bin(myelin_obj o, size_t *len);

/* A tensor map {dtype, shape, data}. Checks that dtype is known, ndim <=
 * MYELIN_MAX_NDIM, dims >= 0, the product does not overflow and equals the
 * data length. Returns 0, MYELIN_ENOENT, MYELIN_ETYPE or MYELIN_EFORMAT. */
int myelin_obj_tensor(myelin_obj o, myelin_tensor *t);

/* Shorthands on the root map. */
int myelin_msg_int(const myelin_msg *m, const char *key, int64_t *out);
int myelin_msg_uint(const myelin_msg *m, const char *key, uint64_t *out);
int myelin_msg_float(const myelin_msg *m, const char *key, double *out);
int myelin_msg_str(const myelin_msg *m, const char *key, char *buf, size_t n);
int myelin_msg_tensor(const myelin_msg *m, const char *key, myelin_tensor *t);
/* A root field that is a string, integer or float, as text ("%g" for
 * floats) into buf; "" when absent or of another type. For path templates
 * and grouping keys ({subject}, {run}, ...). */
void myelin_msg_text(const myelin_msg *m, const char *key, char *buf, size_t n);

/* ---- building ------------------------------------------------------------ */
typedef struct myelin_builder myelin_builder;

/* Opens the root map and writes "kind". NULL on allocation failure. */
myelin_builder *myelin_builder_new(const char *kind);
/* Returns the finished message (refcount 1) and frees the builder; NULL if any
 * build call failed or a map/array is still open. */
myelin_msg *myelin_builder_finish(myelin_builder *b);
void myelin_builder_free(myelin_builder *b); /* abandon */
int myelin_builder_status(const myelin_builder *b); /* 0 or the first error */
/* Makes room for `bytes` more bytes at once, so that a builder that knows its
 * size (large tensors) is not grown, and copied, step by step. A hint only:
 * 0, or MYELIN_ENOMEM without failing the builder. */
int myelin_builder_reserve(myelin_builder *b, size_t bytes);

/* key is the field name inside a map, and must be NULL inside an array. */
void myelin_build_nil(myelin_builder *b, const char *key);
void myelin_build_bool(myelin_builder *b, const char *key, int v);
void myelin_build_int(myelin_builder *b, const char *key, int64_t v);
void myelin_build_uint(myelin_builder *b, const char *key, uint64_t v);
void myelin_build_float(myelin_builder *b, const char *key, double v);
void myelin_build_str(myelin_builder *b, const char *key, const char *s);
void myelin_build_strn(myelin_builder *b, const char *key, const char *s, size_t n);
void myelin_build_bin(myelin_builder *b, const char *key, const void *p, size_t n);
void myelin_build_map_begin(myelin_builder *b, const char *key);
void myelin_build_map_end(myelin_builder *b);
void myelin_build_array_begin(myelin_builder *b, const char *key);
void myelin_build_array_end(myelin_builder *b);

/* Writes a tensor map and returns its payload (nbytes uninitialized; 64-byte
 * aligned from 4 KiB, else 8-byte aligned) for the caller to fill; the pointer
 * is valid until the next call on this builder. NULL on error. */
void *myelin_build_tensor(myelin_builder *b, const char *key, myelin_dtype dtype, int ndim,
                          const int64_t *shape);
/* Same, copying the payload from src. */
void myelin_build_tensor_copy(myelin_builder *b, const char *key, myelin_dtype dtype, int ndim,
                              const int64_t *shape, const void *src);
void myelin_build_tensor_view(myelin_builder *b, const char *key, const myelin_tensor *t);

/* Deep-copies any value (e.g. a `geometry` map from an input message). */
void myelin_build_obj(myelin_builder *b, const char *key, myelin_obj o);
/* Copies the pass-through context keys present in src: subject, task, run,
 * label, index, split, epoch. */
void myelin_build_context(myelin_builder *b, const myelin_msg *src);
/* Copies root fields of src whose names are listed (NULL-terminated). */
void myelin_build_fields(myelin_builder *b, const myelin_msg *src, const char *const *keys);

/* The pass-through context keys, NULL-terminated. */
extern const char *const myelin_context_keys[];

#ifdef __cplusplus
}
#endif
#endif
