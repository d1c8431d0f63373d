/*
 * test_schema.c — the schemas/ folder (one .yaml per kind) load, and each kind accepts a valid message
 * and rejects invalid ones with a message naming the kind and the field.
 * Also: errors in schema files are reported as FILE:LINE:COL.
 */
#include <stdlib.h>
#include <string.h>

#include "myelin/msg.h"
#include "schema.h"
#include "testutil.h"

static myelin_schemas *S;

static void load_all(void) {
  char err[512];
  char *dir = mt_strf("%s/schemas", mt_env("MYELIN_SOURCE_DIR", "."));
  S = myelin_schemas_load(dir, err, sizeof err);
  ck_assert_msg(S != NULL, "%s", err);
  free(dir);
}

static void unload_all(void) { myelin_schemas_free(S); }

static void tensor_u4(myelin_builder *b, const char *key, int64_t n) {
  uint32_t *p = myelin_build_tensor(b, key, MYELIN_U4, 1, &n);
  for (int64_t i = 0; i < n; i++)
    p[i] = (uint32_t)i;
}
static void tensor_f4(myelin_builder *b, const char *key, int ndim, int64_t d0, int64_t d1) {
  int64_t shape[2] = {d0, d1};
  float *p = myelin_build_tensor(b, key, MYELIN_F4, ndim, shape);
  size_t n = (size_t)d0 * (ndim > 1 ? (size_t)d1 : 1);
  for (size_t i = 0; i < n; i++)
    p[i] = (float)i;
}
static void geometry(myelin_builder *b) {
  myelin_build_map_begin(b, "geometry");
  myelin_build_array_begin(b, "dims");
  for (int i = 0; i < 3; i++)
    myelin_build_int(b, NULL, 4);
  myelin_build_array_end(b);
  int64_t s44[2] = {4, 4};
  double *a = myelin_build_tensor(b, "affine", MYELIN_F8, 2, s44);
  for (int i = 0; i < 16; i++)
    a[i] = i % 5 == 0;
  tensor_u4(b, "voxels", 5);
  myelin_build_map_end(b);
}
static void brain_ids(myelin_builder *b) {
  myelin_build_str(b, "subject", "sub-01");
  myelin_build_str(b, "task", "movie");
  myelin_build_int(b, "run", 1);
}

/* Builds a valid message of the kind; `skip` names a field to leave out and
 * `bad` a field to write as a string instead. */
/* Two word times [t, t + 0.4] <f8 (the words kind). */
static void times(myelin_builder *b, const char *key, double t) {
  int64_t n = 2;
  double *p = myelin_build_tensor(b, key, MYELIN_F8, 1, &n);
  if (p) p[0] = t, p[1] = t + 0.4;
}

static myelin_msg *make(const char *kind, const char *skip, const char *bad) {
  myelin_builder *b = myelin_builder_new(kind);
  myelin_build_uint(b, "seq", 3);
  if (strcmp(kind, "events")) myelin_build_float(b, "t", 0.25); /* events: t is the timestamp tensor */
#define F(name, stmt)                                                                                        \
  do {                                                                                                       \
    if (skip && !strcmp(skip, name)) break;                                                                  \
    if (bad && !strcmp(bad, name)) {                                                                         \
      myelin_build_str(b, name, "oops");                                                                     \
      break;                                                                                                 \
    }                                                                                                        \
    stmt;                                                                                                    \
  } while (0)
  if (!strcmp(kind, "tensor")) {
    F("data", tensor_f4(b, "data", 2, 2, 3));
    F("name", myelin_build_str(b, "name", "x"));
  } else if (!strcmp(kind, "sample")) {
    F("x", tensor_f4(b, "x", 1, 784, 0));
    F("label", myelin_build_int(b, "label", 7));
    F("index", myelin_build_uint(b, "index", 12));
    F("split", myelin_build_str(b, "split", "train"));
    F("epoch", myelin_build_uint(b, "epoch", 0));
  } else if (!strcmp(kind, "spikes")) {
    F("n", myelin_build_uint(b, "n", 784));
    F("steps", myelin_build_uint(b, "steps", 32));
    F("dt", myelin_build_float(b, "dt", 0.001));
    F("step", tensor_u4(b, "step", 10));
    F("unit", tensor_u4(b, "unit", 10));
    F("label", myelin_build_int(b, "label", 2));
  } else if (!strcmp(kind, "network")) {
    F("model", myelin_build_str(b, "model", "cuba_lif"));
    F("neuron", {
      myelin_build_map_begin(b, "neuron");
      myelin_build_float(b, "vth", 1.0);
      myelin_build_int(b, "cdecay", 4096);
      myelin_build_int(b, "vdecay", 128);
      myelin_build_map_end(b);
    });
    F("steps", myelin_build_uint(b, "steps", 32));
    F("layers", {
      myelin_build_array_begin(b, "layers");
      myelin_build_map_begin(b, NULL);
      myelin_build_str(b, "name", "hidden");
      tensor_f4(b, "weight", 2, 5, 4);
      tensor_f4(b, "bias", 1, 5, 0);
      myelin_build_map_end(b);
      myelin_build_map_begin(b, NULL);
      myelin_build_str(b, "name", "out");
      tensor_f4(b, "weight", 2, 3, 5);
      myelin_build_map_end(b);
      myelin_build_array_end(b);
    });
  } else if (!strcmp(kind, "metrics")) {
    F("values", {
      myelin_build_map_begin(b, "values");
      myelin_build_float(b, "accuracy", 0.875);
      myelin_build_int(b, "errors", 12);
      myelin_build_map_end(b);
    });
    F("stage", myelin_build_str(b, "stage", "learn"));
    F("epoch", myelin_build_int(b, "epoch", 2));
  } else if (!strcmp(kind, "run")) {
    F("data", tensor_f4(b, "data", 2, 10, 5));
    F("tr", myelin_build_float(b, "tr", 2.0));
    brain_ids(b);
    F("geometry", geometry(b));
  } else if (!strcmp(kind, "volume")) {
    F("data", tensor_f4(b, "data", 1, 5, 0));
    F("index", myelin_build_int(b, "index", 4));
    F("tr", myelin_build_int(b, "tr", 2)); /* an int is a float */
    brain_ids(b);
    F("geometry", geometry(b));
  } else if (!strcmp(kind, "features")) {
    F("data", tensor_f4(b, "data", 2, 10, 3));
    F("task", myelin_build_str(b, "task", "movie"));
    F("tr", myelin_build_float(b, "tr", 1.5));
  } else if (!strcmp(kind, "map")) {
    F("stat", myelin_build_str(b, "stat", "isc"));
    F("data", tensor_f4(b, "data", 2, 3, 5));
    F("geometry", geometry(b));
    F("subjects", {
      myelin_build_array_begin(b, "subjects");
      myelin_build_str(b, NULL, "sub-01");
      myelin_build_array_end(b);
    });
  } else if (!strcmp(kind, "predictions")) {
    F("data", {
      int64_t n = 10;
      int32_t *p = myelin_build_tensor(b, "data", MYELIN_I4, 1, &n);
      for (int i = 0; i < 10; i++)
        p[i] = i;
    });
    F("prediction", myelin_build_int(b, "prediction", 9));
    F("label", myelin_build_int(b, "label", 9));
  } else if (!strcmp(kind, "words")) {
    F("words", {
      myelin_build_array_begin(b, "words");
      myelin_build_str(b, NULL, "Once");
      myelin_build_str(b, NULL, "upon");
      myelin_build_array_end(b);
    });
    F("onset", times(b, "onset", 0.5));
    F("offset", times(b, "offset", 0.9));
    F("task", myelin_build_str(b, "task", "story"));
    F("dropped", myelin_build_uint(b, "dropped", 1));
  } else if (!strcmp(kind, "events")) {
    int64_t n = 3;
    F("sensor", {
      myelin_build_array_begin(b, "sensor");
      for (int i = 0; i < 3; i++)
        myelin_build_uint(b, NULL, i == 2 ? 2 : 34);
      myelin_build_array_end(b);
    });
    F("x", memset(myelin_build_tensor(b, "x", MYELIN_U2, 1, &n), 0, 6));
    F("y", memset(myelin_build_tensor(b, "y", MYELIN_U2, 1, &n), 0, 6));
    F("p", memset(myelin_build_tensor(b, "p", MYELIN_U1, 1, &n), 0, 3));
    F("t", memset(myelin_build_tensor(b, "t", MYELIN_I8, 1, &n), 0, 24));
    F("label", myelin_build_int(b, "label", 7));
  }
#undef F
  myelin_msg *m = myelin_builder_finish(b);
  ck_assert_ptr_nonnull(m);
  return m;
}

static const struct {
  const char *kind, *required, *optional;
} cases[] = {
    {"tensor", "data", NULL},       {"sample", "x", "label"},
    {"spikes", "step", "label"},    {"network", "layers", NULL},
    {"metrics", "values", "epoch"}, {"run", "geometry", NULL},
    {"volume", "index", NULL},      {"features", "tr", NULL},
    {"map", "data", "subjects"},    {"predictions", "prediction", "label"},
    {"words", "onset", "dropped"},  {"events", "t", "label"},
};
#define NCASES (sizeof cases / sizeof *cases)

START_TEST(every_kind_loaded) {
  ck_assert_uint_eq(myelin_schemas_count(S), NCASES);
  for (size_t i = 0; i < NCASES; i++)
    ck_assert(myelin_schemas_has(S, cases[i].kind));
  for (size_t i = 0; i < myelin_schemas_count(S); i++)
    ck_assert_ptr_nonnull(myelin_schemas_kind_at(S, i));
  ck_assert_ptr_null(myelin_schemas_kind_at(S, 99));
  ck_assert(!myelin_schemas_has(S, "nope"));
}
END_TEST

START_TEST(valid_and_invalid) {
  const char *kind = cases[_i].kind;
  char err[512];
  myelin_msg *m = make(kind, NULL, NULL);
  ck_assert_msg(myelin_schemas_check(S, m, err, sizeof err) == 0, "%s: %s", kind, err);
  myelin_msg_unref(m);
  /* a required field missing */
  m = make(kind, cases[_i].required, NULL);
  ck_assert_int_eq(myelin_schemas_check(S, m, err, sizeof err), MYELIN_EFORMAT);
  char *want = mt_strf("%s: field '%s': missing", kind, cases[_i].required);
  ck_assert_msg(strstr(err, want) != NULL, "got: %s", err);
  free(want);
  myelin_msg_unref(m);
  /* a required field of the wrong type */
  m = make(kind, NULL, cases[_i].required);
  ck_assert_int_eq(myelin_schemas_check(S, m, err, sizeof err), MYELIN_EFORMAT);
  want = mt_strf("%s: field '%s': expected ", kind, cases[_i].required);
  ck_assert_msg(strstr(err, want) != NULL && strstr(err, "got str"), "got: %s", err);
  free(want);
  myelin_msg_unref(m);
  if (cases[_i].optional) {
    m = make(kind, cases[_i].optional, NULL); /* optional may be absent */
    ck_assert_msg(myelin_schemas_check(S, m, err, sizeof err) == 0, "%s", err);
    myelin_msg_unref(m);
    m = make(kind, NULL, cases[_i].optional); /* but not of the wrong type */
    ck_assert_int_eq(myelin_schemas_check(S, m, err, sizeof err), MYELIN_EFORMAT);
    myelin_msg_unref(m);
  }
}
END_TEST

START_TEST(exact_messages) {
  char err[512];
  /* the documented example */
  myelin_msg *m = make("spikes", NULL, "step");
  myelin_schemas_check(S, m, err, sizeof err);
  ck_assert_str_eq(err, "spikes: field 'step': expected tensor, got str");
  myelin_msg_unref(m);
  /* uint refuses negatives */
  myelin_builder *b = myelin_builder_new("spikes");
  myelin_build_int(b, "n", -1);
  m = myelin_builder_finish(b);
  myelin_schemas_check(S, m, err, sizeof err);
  ck_assert_str_eq(err, "spikes: field 'n': expected uint, got negative int");
  myelin_msg_unref(m);
  /* nested paths */
  b = myelin_builder_new("network");
  myelin_build_str(b, "model", "cuba_lif");
  myelin_build_map_begin(b, "neuron");
  myelin_build_float(b, "vth", 1);
  myelin_build_float(b, "cdecay", 1);
  myelin_build_float(b, "vdecay", 1);
  myelin_build_map_end(b);
  myelin_build_uint(b, "steps", 8);
  myelin_build_array_begin(b, "layers");
  myelin_build_map_begin(b, NULL);
  myelin_build_str(b, "name", "a");
  tensor_f4(b, "weight", 2, 2, 2);
  myelin_build_map_end(b);
  myelin_build_map_begin(b, NULL);
  myelin_build_str(b, "name", "b");
  myelin_build_map_begin(b, "weight"); /* not a tensor: shape does not match data */
  myelin_build_str(b, "dtype", "<f4");
  myelin_build_array_begin(b, "shape");
  myelin_build_int(b, NULL, 3);
  myelin_build_array_end(b);
  myelin_build_bin(b, "data", "1234", 4);
  myelin_build_map_end(b);
  myelin_build_map_end(b);
  myelin_build_array_end(b);
  m = myelin_builder_finish(b);
  ck_assert_int_eq(myelin_schemas_check(S, m, err, sizeof err), MYELIN_EFORMAT);
  ck_assert_msg(strstr(err, "network: field 'layers[1].weight': expected tensor, got a map") == err, "%s",
                err);
  myelin_msg_unref(m);
  /* metrics values must be numbers */
  b = myelin_builder_new("metrics");
  myelin_build_str(b, "stage", "x");
  myelin_build_map_begin(b, "values");
  myelin_build_float(b, "acc", 0.5);
  myelin_build_str(b, "loss", "high");
  myelin_build_map_end(b);
  m = myelin_builder_finish(b);
  myelin_schemas_check(S, m, err, sizeof err);
  ck_assert_str_eq(err, "metrics: field 'values.loss': expected float, got str");
  myelin_msg_unref(m);
  /* tensor dtype and ndim constraints */
  b = myelin_builder_new("spikes");
  myelin_build_uint(b, "n", 2);
  myelin_build_uint(b, "steps", 2);
  myelin_build_float(b, "dt", 1);
  int64_t e = 3;
  myelin_build_tensor(b, "step", MYELIN_I4, 1, &e);
  m = myelin_builder_finish(b);
  myelin_schemas_check(S, m, err, sizeof err);
  ck_assert_str_eq(err, "spikes: field 'step': expected a tensor of dtype <u4, got <i4");
  myelin_msg_unref(m);
  b = myelin_builder_new("volume");
  tensor_f4(b, "data", 2, 1, 5);
  m = myelin_builder_finish(b);
  myelin_schemas_check(S, m, err, sizeof err);
  ck_assert_str_eq(err, "volume: field 'data': expected a tensor with 1 dimension, got 2");
  myelin_msg_unref(m);
  b = myelin_builder_new("map");
  myelin_build_str(b, "stat", "r");
  tensor_f4(b, "data", 1, 5, 0);
  myelin_build_map_begin(b, "geometry");
  tensor_f4(b, "affine", 2, 4, 4); /* <f4 instead of <f8 */
  myelin_build_map_end(b);
  m = myelin_builder_finish(b);
  myelin_schemas_check(S, m, err, sizeof err);
  ck_assert_str_eq(err, "map: field 'geometry.affine': expected a tensor of dtype <f8, got <f4");
  myelin_msg_unref(m);
  /* unknown kinds pass; extra fields pass */
  b = myelin_builder_new("my_custom_kind");
  m = myelin_builder_finish(b);
  ck_assert_int_eq(myelin_schemas_check(S, m, err, sizeof err), 0);
  myelin_msg_unref(m);
}
END_TEST

/* The surface / grayordinate / parcel geometry of schemas/geometry.md. */
static myelin_msg *surface_map(int drop_offset, int vertices_i4) {
  myelin_builder *b = myelin_builder_new("map");
  myelin_build_str(b, "stat", "isc");
  tensor_f4(b, "data", 1, 3, 0);
  myelin_build_map_begin(b, "geometry");
  myelin_build_str(b, "model", "grayordinates");
  myelin_build_array_begin(b, "structures");
  myelin_build_map_begin(b, NULL);
  myelin_build_str(b, "name", "CIFTI_STRUCTURE_CORTEX_LEFT");
  myelin_build_str(b, "type", "surface");
  if (!drop_offset) myelin_build_int(b, "offset", 0);
  myelin_build_int(b, "count", 2);
  myelin_build_int(b, "nvert", 5);
  int64_t n = 2;
  myelin_build_tensor(b, "vertices", vertices_i4 ? MYELIN_I4 : MYELIN_U4, 1, &n);
  myelin_build_map_end(b);
  myelin_build_map_begin(b, NULL);
  myelin_build_str(b, "name", "CIFTI_STRUCTURE_THALAMUS_LEFT");
  myelin_build_str(b, "type", "volume");
  myelin_build_int(b, "offset", 2);
  myelin_build_int(b, "count", 1);
  tensor_u4(b, "voxels", 1);
  myelin_build_map_end(b);
  myelin_build_array_end(b);
  myelin_build_array_begin(b, "dims");
  for (int i = 0; i < 3; i++)
    myelin_build_int(b, NULL, 4);
  myelin_build_array_end(b);
  myelin_build_map_end(b);
  return myelin_builder_finish(b);
}

START_TEST(surface_geometry) {
  char err[512];
  myelin_msg *m = surface_map(0, 0);
  ck_assert_msg(myelin_schemas_check(S, m, err, sizeof err) == 0, "%s", err);
  myelin_msg_unref(m);
  m = surface_map(1, 0);
  myelin_schemas_check(S, m, err, sizeof err);
  ck_assert_str_eq(err, "map: field 'geometry.structures[0].offset': missing (required, int)");
  myelin_msg_unref(m);
  m = surface_map(0, 1);
  myelin_schemas_check(S, m, err, sizeof err);
  ck_assert_str_eq(err,
                   "map: field 'geometry.structures[0].vertices': expected a tensor of dtype <u4, got <i4");
  myelin_msg_unref(m);
  /* parcels: vertices is a map of surface name -> <u4 */
  myelin_builder *b = myelin_builder_new("map");
  myelin_build_str(b, "stat", "r");
  tensor_f4(b, "data", 1, 1, 0);
  myelin_build_map_begin(b, "geometry");
  myelin_build_str(b, "model", "parcels");
  myelin_build_array_begin(b, "parcels");
  myelin_build_map_begin(b, NULL);
  myelin_build_str(b, "name", "V1");
  myelin_build_map_begin(b, "vertices");
  myelin_build_str(b, "CIFTI_STRUCTURE_CORTEX_LEFT", "0 1 2");
  myelin_build_map_end(b);
  myelin_build_map_end(b);
  myelin_build_array_end(b);
  myelin_build_map_end(b);
  m = myelin_builder_finish(b);
  myelin_schemas_check(S, m, err, sizeof err);
  ck_assert_str_eq(
      err, "map: field 'geometry.parcels[0].vertices.CIFTI_STRUCTURE_CORTEX_LEFT': expected tensor, got str");
  myelin_msg_unref(m);
}
END_TEST

/* ---- errors in schema files ---------------------------------------------- */

static char *bad_dir(const char *name, const char *text) {
  char *dir = mt_tmpdir();
  char *path = mt_strf("%s/%s", dir, name);
  mt_write(path, text);
  free(path);
  return dir;
}

static void expect_load_error(const char *text, const char *want) {
  char *dir = bad_dir("x.yaml", text);
  char err[512];
  myelin_schemas *s = myelin_schemas_load(dir, err, sizeof err);
  ck_assert_ptr_null(s);
  char *w = mt_strf("%s/x.yaml%s", dir, want);
  ck_assert_msg(strstr(err, w) != NULL, "want '%s' in '%s'", w, err);
  free(w);
  char *cmd = mt_strf("rm -rf %s", dir);
  mt_run(cmd, NULL);
  free(cmd);
  free(dir);
}

START_TEST(load_errors) {
  expect_load_error("kind: a\nrequired:\n  x: tensr\n", ":3:6: error: unknown type 'tensr'");
  expect_load_error("kind: a\nrequired: {x: int|flot}\n", ":2:15: error: unknown type 'flot'");
  expect_load_error("kind: a\nrequired: [x]\n", ":2:11: error: expected a mapping");
  expect_load_error("kind: a\nrequird: {x: int}\n", ":2:1: error: unknown key 'requird'");
  expect_load_error("doc: no kind\n", ":1:1: error: missing 'kind'");
  expect_load_error("kind: a\nrequired: {x: {type: int, items: int}}\n",
                    ":2:15: error: 'items' applies to lists only");
  expect_load_error("kind: a\nrequired: {x: {values: int}}\n",
                    ":2:15: error: a field given as a mapping needs a 'type'");
  expect_load_error("kind: a\nrequired: {x: int\n", ":3:1: error:"); /* YAML syntax */
  expect_load_error("kind: a\nrequired: {x: {type: tensor, dtype: <f5}}\n",
                    ":2:37: error: unknown dtype '<f5'");
  expect_load_error("kind: a\nrequired: {x: {type: tensor, ndim: two}}\n", ":2:36: error: 'ndim' must be");
  expect_load_error("kind: a\nrequired: {x: {type: str, ndim: 1}}\n",
                    ":2:15: error: 'dtype' and 'ndim' apply to tensors only");
  /* duplicate kinds across files */
  char *dir = bad_dir("a.yaml", "kind: k\n");
  char *p2 = mt_strf("%s/b.yml", dir);
  mt_write(p2, "kind: k\n");
  char err[512];
  ck_assert_ptr_null(myelin_schemas_load(dir, err, sizeof err));
  ck_assert_ptr_nonnull(strstr(err, "already defined"));
  /* a good nested schema with unions */
  mt_write(p2, "kind: k2\nrequired:\n  v: {type: map|nil, required: {a: int|str}, values: any}\n"
               "  l: {type: list, items: {type: map, optional: {b: bool}}}\n"
               "optional:\n  t: {type: tensor, dtype: [\"|u1\", <f8], ndim: 0}\n");
  myelin_schemas *s = myelin_schemas_load(dir, err, sizeof err);
  ck_assert_msg(s != NULL, "%s", err);
  ck_assert_uint_eq(myelin_schemas_count(s), 2);
  myelin_builder *b = myelin_builder_new("k2");
  myelin_build_nil(b, "v");
  myelin_build_array_begin(b, "l");
  myelin_build_map_begin(b, NULL);
  myelin_build_int(b, "b", 1);
  myelin_build_map_end(b);
  myelin_build_array_end(b);
  myelin_msg *m = myelin_builder_finish(b);
  ck_assert_int_eq(myelin_schemas_check(s, m, err, sizeof err), MYELIN_EFORMAT);
  ck_assert_str_eq(err, "k2: field 'l[0].b': expected bool, got int");
  myelin_msg_unref(m);
  b = myelin_builder_new("k2");
  myelin_build_nil(b, "v");
  myelin_build_array_begin(b, "l");
  myelin_build_array_end(b);
  int64_t none = 0;
  myelin_build_tensor(b, "t", MYELIN_U1, 0, &none);
  m = myelin_builder_finish(b);
  ck_assert_msg(myelin_schemas_check(s, m, err, sizeof err) == 0, "%s", err);
  myelin_msg_unref(m);
  b = myelin_builder_new("k2");
  myelin_build_nil(b, "v");
  myelin_build_array_begin(b, "l");
  myelin_build_array_end(b);
  myelin_build_tensor(b, "t", MYELIN_F4, 0, &none);
  m = myelin_builder_finish(b);
  myelin_schemas_check(s, m, err, sizeof err);
  ck_assert_str_eq(err, "k2: field 't': expected a tensor of dtype <f8 or |u1, got <f4");
  myelin_msg_unref(m);
  myelin_schemas_free(s);
  free(p2);
  char *cmd = mt_strf("rm -rf %s", dir);
  mt_run(cmd, NULL);
  free(cmd);
  free(dir);
  /* missing / empty folder */
  ck_assert_ptr_null(myelin_schemas_load("/nonexistent/schemas", err, sizeof err));
  ck_assert_ptr_nonnull(strstr(err, "/nonexistent/schemas"));
  dir = mt_tmpdir();
  ck_assert_ptr_null(myelin_schemas_load(dir, err, sizeof err));
  ck_assert_ptr_nonnull(strstr(err, "no schema files"));
  rmdir(dir);
  free(dir);
}
END_TEST

int main(void) {
  Suite *s = suite_create("schema");
  TCase *tc = tcase_create("core");
  tcase_add_unchecked_fixture(tc, load_all, unload_all);
  tcase_add_test(tc, every_kind_loaded);
  tcase_add_loop_test(tc, valid_and_invalid, 0, (int)(sizeof cases / sizeof cases[0]));
  tcase_add_test(tc, exact_messages);
  tcase_add_test(tc, surface_geometry);
  tcase_add_test(tc, load_errors);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
