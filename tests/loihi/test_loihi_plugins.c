/*
 * test_loihi_plugins.c — loihi_sim and loihi_export through the harness:
 * predictions on the lava-dl MNIST fixture, network input with pending
 * samples, error paths, the exported files read back with libhdf5 and
 * compared item by item (name, HDF5 class, size) with the netx and NIR
 * fixtures, the bundle's content, and (when Debian's python3-h5py is there)
 * an independent read of the files with h5py.
 */
#include <archive.h>
#include <archive_entry.h>
#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <zlib.h>

#include <myelin/harness.h>

#include "fashion_data.h"
#include "loihi.h"
#include "testutil.h"

/* A file of tests/data/ (provenance and license: tests/data/README.md). */
static char *fixture(const char *rel) {
  return mt_strf("%s/tests/data/%s", mt_env("MYELIN_SOURCE_DIR", "."), rel);
}

/* A spikes message of split "test" (epoch < 0) or "train" with that epoch. */
static myelin_msg *spikes_msg_split(int n, int steps, const uint32_t *st, const uint32_t *un, size_t ne,
                                    int label, int index, int epoch) {
  myelin_builder *b = myelin_builder_new("spikes");
  myelin_build_int(b, "n", n);
  myelin_build_int(b, "steps", steps);
  myelin_build_float(b, "dt", 0.001);
  int64_t e = (int64_t)ne;
  myelin_build_tensor_copy(b, "step", MYELIN_U4, 1, &e, st);
  myelin_build_tensor_copy(b, "unit", MYELIN_U4, 1, &e, un);
  if (label >= 0) myelin_build_int(b, "label", label);
  myelin_build_int(b, "index", index);
  myelin_build_str(b, "split", epoch < 0 ? "test" : "train");
  if (epoch >= 0) myelin_build_int(b, "epoch", epoch);
  myelin_msg *m = myelin_builder_finish(b);
  ck_assert_ptr_nonnull(m);
  return m;
}

static myelin_msg *spikes_msg(int n, int steps, const uint32_t *st, const uint32_t *un, size_t ne, int label,
                              int index) {
  return spikes_msg_split(n, steps, st, un, ne, label, index, -1);
}

/* A float network message from a loihi_fnet. */
static myelin_msg *network_msg(const loihi_fnet *f) {
  myelin_builder *b = myelin_builder_new("network");
  myelin_build_str(b, "model", "cuba_lif");
  myelin_build_map_begin(b, "neuron");
  myelin_build_float(b, "vth", f->vth);
  myelin_build_float(b, "cdecay", f->cdecay);
  myelin_build_float(b, "vdecay", f->vdecay);
  myelin_build_map_end(b);
  myelin_build_int(b, "steps", 32);
  myelin_build_array_begin(b, "layers");
  for (int l = 0; l < f->n_layers; l++) {
    const loihi_flayer *L = &f->layers[l];
    int64_t shape[2] = {L->n_out, L->n_in};
    myelin_build_map_begin(b, NULL);
    myelin_build_str(b, "name", L->name);
    myelin_build_tensor_copy(b, "weight", MYELIN_F4, 2, shape, L->weight);
    if (L->bias) myelin_build_tensor_copy(b, "bias", MYELIN_F4, 1, shape, L->bias);
    myelin_build_map_end(b);
  }
  myelin_build_array_end(b);
  myelin_msg *m = myelin_builder_finish(b);
  ck_assert_ptr_nonnull(m);
  return m;
}

/* The lava-dl MNIST network as a float network: w = W/64, vth = 1,
 * cdecay = vdecay = 1 - 410/4096 (what quantization maps back to 410). */
static void fixture_as_float(loihi_fnet *f) {
  char *path = fixture("netx/trained_mnist_network.net");
  loihi_net q;
  char err[512];
  ck_assert_msg(loihi_netx_read(path, &q, err, sizeof err) == 0, "%s", err);
  f->n_layers = q.n_layers;
  f->layers = calloc((size_t)q.n_layers, sizeof(loihi_flayer));
  f->vth = 1.0;
  f->cdecay = f->vdecay = 1.0 - 410.0 / 4096.0;
  for (int l = 0; l < q.n_layers; l++) {
    loihi_flayer *L = &f->layers[l];
    L->n_in = q.layers[l].n_in;
    L->n_out = q.layers[l].n_out;
    snprintf(L->name, sizeof L->name, "dense%d", l);
    size_t nw = (size_t)L->n_in * (size_t)L->n_out;
    L->weight = malloc(nw * sizeof(float));
    for (size_t i = 0; i < nw; i++)
      L->weight[i] = (float)q.layers[l].weight[i] / 64.0f;
  }
  loihi_net_free(&q);
  free(path);
}

static double metric(myelin_msg *m, const char *key) {
  double x = NAN;
  myelin_obj_float(myelin_obj_get(myelin_msg_get(m, "values"), key), &x);
  return x;
}

START_TEST(test_sim_netx_fixture_predictions) {
  uint8_t *img = fashion("t10k-images-idx3-ubyte.gz", 3, 16);
  if (!img) MT_SKIP("dataset-fashion-mnist is not installed");
  char *net = fixture("netx/trained_mnist_network.net");
  char *params = mt_strf("{net: '%s'}", net);
  char err[512];
  myelin_harness *h = myelin_harness_new("loihi_sim", params, err, sizeof err);
  ck_assert_msg(h != NULL, "%s", err);
  uint32_t st[784 * 32], un[784 * 32];
  const int labels[3] = {9, 2, 1};
  for (int k = 0; k < 3; k++) {
    size_t n = encode_regular(img + 784 * k, 32, st, un);
    ck_assert_int_eq(myelin_harness_push(h, "spikes", spikes_msg(784, 32, st, un, n, labels[k], 100 + k)), 0);
  }
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "predictions"), 3);
  /* numpy bit-accurate reference (see test_loihi_core.c) */
  const int32_t ref[3][10] = {
      {0, 0, 31, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 31, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 27, 0, 29, 5}};
  const int pred[3] = {2, 6, 8};
  for (int k = 0; k < 3; k++) {
    myelin_msg *m = myelin_harness_output(h, "predictions", (size_t)k);
    ck_assert_str_eq(myelin_msg_kind(m), "predictions");
    myelin_tensor t;
    ck_assert_int_eq(myelin_msg_tensor(m, "data", &t), 0);
    ck_assert_int_eq(t.dtype, MYELIN_I4);
    ck_assert_int_eq(t.count, 10);
    for (int j = 0; j < 10; j++)
      ck_assert_int_eq(((const int32_t *)t.data)[j], ref[k][j]);
    int64_t p, lab, idx;
    ck_assert_int_eq(myelin_msg_int(m, "prediction", &p), 0);
    ck_assert_int_eq(p, pred[k]);
    ck_assert_int_eq(myelin_msg_int(m, "label", &lab), 0);
    ck_assert_int_eq(lab, labels[k]);
    ck_assert_int_eq(myelin_msg_int(m, "index", &idx), 0);
    ck_assert_int_eq(idx, 100 + k);
    char split[16];
    ck_assert_int_eq(myelin_msg_str(m, "split", split, sizeof split), 0);
    ck_assert_str_eq(split, "test");
  }
  ck_assert_uint_eq(myelin_harness_count(h, "metrics"), 1);
  myelin_msg *mm = myelin_harness_output(h, "metrics", 0);
  ck_assert(fabs(metric(mm, "accuracy") - 0.0) < 1e-12); /* an MNIST net on Fashion images */
  ck_assert(fabs(metric(mm, "spikes_per_sample") - (1598 + 1542 + 1411) / 3.0) < 1e-9);
  /* synops: every input spike touches 128 rows, layer-0 spikes 64, layer-1 10 */
  ck_assert(metric(mm, "synops_per_sample") > 128.0 * 3211 / 3);
  ck_assert(metric(mm, "samples_per_s") > 0);
  myelin_harness_free(h);
  free(params);
  free(net);
  free(img);
}
END_TEST

START_TEST(test_sim_network_input_and_pending) {
  loihi_fnet f = {0};
  fixture_as_float(&f);
  uint8_t *img = fashion("t10k-images-idx3-ubyte.gz", 4, 16);
  if (!img) {
    loihi_fnet_free(&f);
    MT_SKIP("dataset-fashion-mnist is not installed");
  }
  char err[512];
  myelin_harness *h = myelin_harness_new("loihi_sim", "{}", err, sizeof err);
  ck_assert_msg(h != NULL, "%s", err);
  uint32_t st[784 * 32], un[784 * 32];
  /* expected: the quantized net through the kernel directly */
  loihi_net q;
  loihi_sim sim;
  ck_assert_int_eq(loihi_quantize(&f, &q, NULL, err, sizeof err), 0);
  ck_assert_int_eq(loihi_sim_init(&sim, &q, err, sizeof err), 0);
  int32_t expect[4][10];
  for (int k = 0; k < 4; k++) {
    size_t n = encode_regular(img + 784 * k, 32, st, un);
    ck_assert_int_eq(loihi_sim_sample(&sim, st, un, n, 32, expect[k], err, sizeof err), 0);
    if (k == 2) ck_assert_int_eq(myelin_harness_push(h, "network", network_msg(&f)), 0);
    ck_assert_int_eq(myelin_harness_push(h, "spikes", spikes_msg(784, 32, st, un, n, -1, k)), 0);
    /* samples before the network wait; the network releases them */
    ck_assert_uint_eq(myelin_harness_count(h, "predictions"), k < 2 ? 0 : (size_t)k + 1);
  }
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  for (int k = 0; k < 4; k++) {
    myelin_msg *m = myelin_harness_output(h, "predictions", (size_t)k);
    myelin_tensor t;
    int64_t idx;
    ck_assert_int_eq(myelin_msg_tensor(m, "data", &t), 0);
    ck_assert_int_eq(myelin_msg_int(m, "index", &idx), 0);
    ck_assert_int_eq(idx, k);
    ck_assert_int_eq(memcmp(t.data, expect[k], sizeof expect[k]), 0);
  }
  /* no labels: no accuracy, but the other metrics */
  myelin_msg *mm = myelin_harness_output(h, "metrics", 0);
  ck_assert(isnan(metric(mm, "accuracy")));
  ck_assert(metric(mm, "samples") == 4);
  myelin_harness_free(h);
  loihi_sim_free(&sim);
  loihi_net_free(&q);
  loihi_fnet_free(&f);
  free(img);
}
END_TEST

/* Sparse samples held before the network use the CSR form of the store
 * (1000 inputs x 10 steps, 6 events with one duplicate); dense ones the
 * bitmap. Both must give what the kernel gives on the original events. */
START_TEST(test_sim_pending_store_forms) {
  const int n_in = 1000, n_out = 4;
  float *w = calloc((size_t)n_in * n_out, sizeof(float));
  for (int j = 0; j < n_out; j++)
    for (int i = 0; i < n_in; i++)
      w[j * n_in + i] = (float)(((i * 7 + j * 13) % 11) - 4) * 0.05f;
  loihi_flayer fl = {.n_in = n_in, .n_out = n_out, .weight = w};
  snprintf(fl.name, sizeof fl.name, "fc");
  loihi_fnet f = {.n_layers = 1, .layers = &fl, .vth = 0.3, .cdecay = 0.5, .vdecay = 0.75};
  char err[512];
  loihi_net q;
  loihi_sim sim;
  ck_assert_int_eq(loihi_quantize(&f, &q, NULL, err, sizeof err), 0);
  ck_assert_int_eq(loihi_sim_init(&sim, &q, err, sizeof err), 0);
  uint32_t sst[6] = {0, 1, 1, 1, 4, 9}, sun[6] = {3, 100, 999, 999, 3, 500};
  static uint32_t dst[10 * 1000], dun[10 * 1000];
  size_t dn = 0;
  for (uint32_t t = 0; t < 10; t++)
    for (uint32_t i = 0; i < 1000; i += 1 + (t % 3)) {
      dst[dn] = t;
      dun[dn++] = i;
    }
  int32_t e_sparse[4], e_dense[4];
  ck_assert_int_eq(loihi_sim_sample(&sim, sst, sun, 6, 10, e_sparse, err, sizeof err), 0);
  ck_assert_int_eq(loihi_sim_sample(&sim, dst, dun, dn, 10, e_dense, err, sizeof err), 0);
  ck_assert_int_gt(e_dense[0] + e_dense[1] + e_dense[2] + e_dense[3], 0);
  myelin_harness *h = myelin_harness_new("loihi_sim", "{}", err, sizeof err);
  ck_assert_msg(h != NULL, "%s", err);
  ck_assert_int_eq(myelin_harness_push(h, "spikes", spikes_msg(n_in, 10, sst, sun, 6, 1, 0)), 0);
  ck_assert_int_eq(myelin_harness_push(h, "spikes", spikes_msg(n_in, 10, dst, dun, dn, 2, 1)), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "predictions"), 0);
  ck_assert_int_eq(myelin_harness_push(h, "network", network_msg(&f)), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "predictions"), 2);
  myelin_tensor t;
  ck_assert_int_eq(myelin_msg_tensor(myelin_harness_output(h, "predictions", 0), "data", &t), 0);
  ck_assert_int_eq(memcmp(t.data, e_sparse, sizeof e_sparse), 0);
  ck_assert_int_eq(myelin_msg_tensor(myelin_harness_output(h, "predictions", 1), "data", &t), 0);
  ck_assert_int_eq(memcmp(t.data, e_dense, sizeof e_dense), 0);
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  myelin_harness_free(h);
  loihi_sim_free(&sim);
  loihi_net_free(&q);
  free(w);
}
END_TEST

START_TEST(test_sim_errors) {
  char err[512];
  /* a missing or non-netx file fails before anything runs, naming it */
  myelin_harness *h = myelin_harness_new("loihi_sim", "{net: /nonexistent/x.net}", err, sizeof err);
  ck_assert_ptr_null(h);
  ck_assert_msg(strstr(err, "/nonexistent/x.net"), "%s", err);
  char *tiny = fixture("netx/tiny.net");
  char *tp = mt_strf("{net: '%s'}", tiny);
  h = myelin_harness_new("loihi_sim", tp, err, sizeof err);
  ck_assert_ptr_null(h);
  ck_assert_msg(strstr(err, "tiny.net") && strstr(err, "not supported"), "%s", err);
  free(tp);
  free(tiny);
  char *net = fixture("netx/trained_mnist_network.net");
  char *params = mt_strf("{net: '%s'}", net);
  h = myelin_harness_new("loihi_sim", params, err, sizeof err);
  ck_assert_ptr_nonnull(h);
  uint32_t st[2] = {0, 1}, un[2] = {3, 2};
  ck_assert_int_ne(myelin_harness_push(h, "spikes", spikes_msg(100, 4, st, un, 2, 1, 0)), 0);
  ck_assert_msg(strstr(myelin_harness_error(h), "784"), "%s", myelin_harness_error(h));
  uint32_t bad[2] = {3, 900};
  ck_assert_int_ne(myelin_harness_push(h, "spikes", spikes_msg(784, 4, st, bad, 2, 1, 0)), 0);
  ck_assert_msg(strstr(myelin_harness_error(h), "unit 900"), "%s", myelin_harness_error(h));
  myelin_builder *b = myelin_builder_new("spikes");
  myelin_build_int(b, "n", 784);
  myelin_build_int(b, "steps", 4);
  ck_assert_int_ne(myelin_harness_push(h, "spikes", myelin_builder_finish(b)), 0);
  ck_assert_msg(strstr(myelin_harness_error(h), "'step'"), "%s", myelin_harness_error(h));
  b = myelin_builder_new("network");
  myelin_build_map_begin(b, "neuron");
  myelin_build_float(b, "vth", 1);
  myelin_build_map_end(b);
  ck_assert_int_ne(myelin_harness_push(h, "network", myelin_builder_finish(b)), 0);
  ck_assert_msg(strstr(myelin_harness_error(h), "cdecay"), "%s", myelin_harness_error(h));
  myelin_harness_free(h);
  /* spikes but no network at the end */
  h = myelin_harness_new("loihi_sim", "{}", err, sizeof err);
  ck_assert_ptr_nonnull(h);
  ck_assert_int_eq(myelin_harness_push(h, "spikes", spikes_msg(784, 4, st, un, 2, 1, 0)), 0);
  ck_assert_int_ne(myelin_harness_eos(h), 0);
  ck_assert_msg(strstr(myelin_harness_error(h), "no network"), "%s", myelin_harness_error(h));
  myelin_harness_free(h);
  free(params);
  free(net);
}
END_TEST

/* ---- HDF5 layout walk ---------------------------------------------------- */

typedef struct item {
  char path[160];
  char desc[200]; /* class, size, string properties, attributes */
  char dims[64];
} item;

typedef struct items {
  item v[512];
  int n;
} items;

static herr_t visit(hid_t obj, const char *name, const H5O_info_t *info, void *data) {
  items *it = data;
  if (strcmp(name, ".") == 0 || it->n >= 512) return 0;
  item *x = &it->v[it->n++];
  snprintf(x->path, sizeof x->path, "/%s", name);
  if (info->type == H5O_TYPE_GROUP) {
    snprintf(x->desc, sizeof x->desc, "group attrs=%llu", (unsigned long long)info->num_attrs);
    return 0;
  }
  hid_t d = H5Dopen2(obj, name, H5P_DEFAULT);
  hid_t t = H5Dget_type(d), s = H5Dget_space(d);
  int cls = H5Tget_class(t);
  size_t size = H5Tget_size(t);
  int vlen = cls == H5T_STRING ? H5Tis_variable_str(t) : -1;
  int cset = cls == H5T_STRING ? (int)H5Tget_cset(t) : -1;
  int pad = cls == H5T_STRING ? (int)H5Tget_strpad(t) : -1;
  int sign = cls == H5T_INTEGER ? (int)H5Tget_sign(t) : -1;
  int members = cls == H5T_ENUM ? H5Tget_nmembers(t) : -1;
  int ndims = H5Sget_simple_extent_ndims(s);
  hsize_t dd[4] = {0};
  H5Sget_simple_extent_dims(s, dd, NULL);
  snprintf(x->desc, sizeof x->desc,
           "class=%d size=%zu vlen=%d cset=%d pad=%d sign=%d enum=%d ndims=%d attrs=%llu", cls, size, vlen,
           cset, pad, sign, members, ndims, (unsigned long long)info->num_attrs);
  snprintf(x->dims, sizeof x->dims, "%llu,%llu", (unsigned long long)dd[0], (unsigned long long)dd[1]);
  H5Tclose(t);
  H5Sclose(s);
  H5Dclose(d);
  return 0;
}

static void walk(const char *path, items *it) {
  it->n = 0;
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  ck_assert_msg(f >= 0, "cannot open %s", path);
  ck_assert(H5Ovisit2(f, H5_INDEX_NAME, H5_ITER_INC, visit, it, H5O_INFO_BASIC | H5O_INFO_NUM_ATTRS) >= 0);
  H5Fclose(f);
}

static const item *find(const items *it, const char *path) {
  for (int i = 0; i < it->n; i++)
    if (strcmp(it->v[i].path, path) == 0) return &it->v[i];
  return NULL;
}

/* The float64 scalar at path in an HDF5 file (NaN when absent). */
static double h5_scalar(const char *file, const char *path) {
  double v = NAN;
  hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
  ck_assert_msg(f >= 0, "cannot open %s", file);
  if (H5Lexists(f, "/node/metadata", H5P_DEFAULT) > 0 && H5Lexists(f, path, H5P_DEFAULT) > 0) {
    hid_t d = H5Dopen2(f, path, H5P_DEFAULT);
    if (H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v) < 0) v = NAN;
    H5Dclose(d);
  }
  H5Fclose(f);
  return v;
}

/* 1 when the dataset at path is stored with the deflate (gzip) filter. */
static int h5_gzipped(const char *file, const char *path) {
  hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
  ck_assert_msg(f >= 0, "cannot open %s", file);
  hid_t d = H5Dopen2(f, path, H5P_DEFAULT);
  ck_assert_msg(d >= 0, "%s: no %s", file, path);
  hid_t pl = H5Dget_create_plist(d);
  int z = 0;
  for (int i = 0; i < H5Pget_nfilters(pl); i++) {
    unsigned flags;
    size_t nv = 0;
    z |= H5Pget_filter2(pl, (unsigned)i, &flags, &nv, NULL, 0, NULL, NULL) == H5Z_FILTER_DEFLATE;
  }
  H5Pclose(pl);
  H5Dclose(d);
  H5Fclose(f);
  return z;
}

static void same_item(const items *a, const char *pa, const items *b, const char *pb) {
  const item *x = find(a, pa), *y = find(b, pb);
  ck_assert_msg(x != NULL, "exported file lacks %s", pa);
  ck_assert_msg(y != NULL, "fixture lacks %s", pb);
  ck_assert_msg(strcmp(x->desc, y->desc) == 0, "%s: %s vs fixture %s: %s", pa, x->desc, pb, y->desc);
}

static int count_prefix(const items *it, const char *prefix) {
  int n = 0;
  for (int i = 0; i < it->n; i++)
    n += strncmp(it->v[i].path, prefix, strlen(prefix)) == 0;
  return n;
}

/* Runs loihi_export on a float network message with n_test labelled
 * Fashion test images (takes the message); returns the harness (caller
 * frees). */
/* dt: the param's YAML value, or NULL for the plugin's default (1e-4 s). */
static myelin_harness *run_export_msg(const char *prefix, int n_test, myelin_msg *net, const char *dt) {
  char err[512];
  char *params = dt ? mt_strf("{path: '%s', dt: %s}", prefix, dt) : mt_strf("{path: '%s'}", prefix);
  myelin_harness *h = myelin_harness_new("loihi_export", params, err, sizeof err);
  ck_assert_msg(h != NULL, "%s", err);
  free(params);
  uint8_t *img = n_test ? fashion("t10k-images-idx3-ubyte.gz", n_test, 16) : NULL;
  uint8_t *lab = n_test ? fashion("t10k-labels-idx1-ubyte.gz", n_test, 8) : NULL;
  static uint32_t st[784 * 32], un[784 * 32];
  for (int k = 0; img && lab && k < n_test; k++) {
    size_t n = encode_regular(img + 784 * k, 32, st, un);
    ck_assert_int_eq(myelin_harness_push(h, "test", spikes_msg(784, 32, st, un, n, lab[k], k)), 0);
  }
  ck_assert_int_eq(myelin_harness_push(h, "network", net), 0);
  ck_assert_msg(myelin_harness_eos(h) == 0, "%s", myelin_harness_error(h));
  free(img);
  free(lab);
  return h;
}

/* The same with the fixture-derived float net (layout tests). */
static myelin_harness *run_export(const char *prefix, int n_test, loihi_fnet *f) {
  return run_export_msg(prefix, n_test, network_msg(f), "0.001");
}

/* A 784-64-10 network trained here by BioGrad (the biograd plugin) on the
 * first n_train Fashion-MNIST training images, regular encoding at 32 steps,
 * `epochs` epochs: a network made for the Fashion test images, unlike the
 * lava-dl fixture (MNIST), which scores at chance on them. NULL when the
 * plugin or the training split is missing. */
static myelin_msg *trained_network(int n_train, int epochs) {
  char err[512];
  myelin_harness *h = myelin_harness_new("biograd", "{hidden: [64], threads: 1, probe: 0}", err, sizeof err);
  uint8_t *img = fashion("train-images-idx3-ubyte.gz", n_train, 16);
  uint8_t *lab = fashion("train-labels-idx1-ubyte.gz", n_train, 8);
  myelin_msg *net = NULL;
  if (h && img && lab) {
    static uint32_t st[784 * 32], un[784 * 32];
    for (int e = 0; e < epochs; e++)
      for (int k = 0; k < n_train; k++) {
        size_t n = encode_regular(img + 784 * k, 32, st, un);
        ck_assert_int_eq(myelin_harness_push(h, "train", spikes_msg_split(784, 32, st, un, n, lab[k], k, e)),
                         0);
      }
    ck_assert_msg(myelin_harness_eos(h) == 0, "%s", myelin_harness_error(h));
    ck_assert_uint_eq(myelin_harness_count(h, "network"), 1);
    net = myelin_msg_ref(myelin_harness_output(h, "network", 0));
  }
  if (h) myelin_harness_free(h);
  free(img);
  free(lab);
  return net;
}

START_TEST(test_export_files_and_layout) {
  char *dir = mt_tmpdir();
  char *prefix = mt_strf("%s/sub/mnist", dir);
  loihi_fnet f = {0};
  fixture_as_float(&f);
  myelin_harness *h = run_export(prefix, 0, &f);
  ck_assert_uint_eq(myelin_harness_count(h, "metrics"), 1);
  myelin_msg *mm = myelin_harness_output(h, "metrics", 0);
  char *netp = mt_strf("%s.net", prefix), *nirp = mt_strf("%s.nir", prefix),
       *tgz = mt_strf("%s.tar.gz", prefix);
  ck_assert_int_eq((long)metric(mm, "net_bytes"), mt_file_size(netp));
  ck_assert_int_eq((long)metric(mm, "nir_bytes"), mt_file_size(nirp));
  ck_assert_int_eq((long)metric(mm, "bundle_bytes"), mt_file_size(tgz));
  char got[4200];
  ck_assert_int_eq(myelin_obj_str_copy(myelin_obj_get(myelin_msg_get(mm, "files"), "net"), got, sizeof got),
                   0);
  ck_assert_str_eq(got, netp);

  /* read back with libhdf5: identical integers to the quantizer's */
  loihi_net q, back;
  char err[512];
  ck_assert_int_eq(loihi_quantize(&f, &q, NULL, err, sizeof err), 0);
  ck_assert_msg(loihi_netx_read(netp, &back, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(back.n_layers, 3);
  for (int l = 0; l < 3; l++) {
    ck_assert_int_eq(back.layers[l].i_decay, 410);
    ck_assert_int_eq(back.layers[l].v_decay, 410);
    ck_assert_int_eq(back.layers[l].vth_mant, q.layers[l].vth_mant);
    size_t nw = (size_t)q.layers[l].n_in * (size_t)q.layers[l].n_out;
    ck_assert_int_eq(memcmp(back.layers[l].weight, q.layers[l].weight, nw * 4), 0);
    for (size_t i = 0; i < nw; i++) {
      int32_t w = back.layers[l].weight[i];
      ck_assert(w % 2 == 0 && w >= -256 && w <= 254);
    }
  }

  /* netx layout: item by item against lava-dl's own file (same shapes) */
  static items mine, ref;
  char *ref_net = fixture("netx/trained_mnist_network.net");
  walk(netp, &mine);
  walk(ref_net, &ref);
  ck_assert_int_eq(mine.n, ref.n);
  for (int i = 0; i < ref.n; i++) {
    same_item(&mine, ref.v[i].path, &ref, ref.v[i].path);
    ck_assert_str_eq(find(&mine, ref.v[i].path)->dims, ref.v[i].dims);
  }

  /* NIR layout against the NIR fixtures (node by node type) */
  static items nir, braille, norse;
  char *bp = fixture("nir/braille_noDelay_bias_zero.nir"), *np = fixture("nir/lif_norse.nir");
  walk(nirp, &nir);
  walk(bp, &braille);
  walk(np, &norse);
  same_item(&nir, "/version", &braille, "/version");
  same_item(&nir, "/node", &braille, "/node");
  same_item(&nir, "/node/type", &braille, "/node/type");
  same_item(&nir, "/node/edges", &braille, "/node/edges");
  same_item(&nir, "/node/nodes/input/type", &braille, "/node/nodes/input/type");
  same_item(&nir, "/node/nodes/input/shape", &braille, "/node/nodes/input/shape");
  same_item(&nir, "/node/nodes/output/shape", &braille, "/node/nodes/output/shape");
  static const char *const lif[] = {"type", "tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "w_in"};
  for (int l = 0; l < 3; l++) {
    char a[64], b[64];
    snprintf(a, sizeof a, "/node/nodes/fc%d/weight", l);
    same_item(&nir, a, &braille, "/node/nodes/fc1/weight");
    snprintf(a, sizeof a, "/node/nodes/fc%d/bias", l);
    same_item(&nir, a, &braille, "/node/nodes/fc1/bias");
    snprintf(a, sizeof a, "/node/nodes/fc%d/type", l);
    same_item(&nir, a, &norse, "/node/nodes/0/type");
    for (size_t k = 0; k < sizeof lif / sizeof *lif; k++) {
      snprintf(a, sizeof a, "/node/nodes/lif%d/%s", l, lif[k]);
      snprintf(b, sizeof b, "/node/nodes/lif2/%s", lif[k]);
      same_item(&nir, a, &braille, b);
    }
    snprintf(a, sizeof a, "/node/nodes/lif%d/v_reset", l);
    same_item(&nir, a, &braille, "/node/nodes/lif2/v_threshold");
    /* nir.read rejects unexpected names: exactly the CubaLIF fields */
    snprintf(a, sizeof a, "/node/nodes/lif%d/", l);
    ck_assert_int_eq(count_prefix(&nir, a), 8);
    snprintf(a, sizeof a, "/node/nodes/fc%d/", l);
    ck_assert_int_eq(count_prefix(&nir, a), 3);
  }
  ck_assert_int_eq(count_prefix(&nir, "/node/nodes/input/"), 2);
  /* + the graph metadata group and its dt */
  ck_assert_int_eq(nir.n, 3 + 1 + 2 + 2 + 2 + 3 * (1 + 3 + 1 + 8) + 1 + 2);
  ck_assert(find(&nir, "/node/metadata") && find(&nir, "/node/metadata/dt"));
  ck_assert(h5_scalar(nirp, "/node/metadata/dt") == 0.001); /* run_export's dt */
  /* arrays gzip'd as nir.write does; the netx file as lava-dl's (plain) */
  ck_assert(h5_gzipped(nirp, "/node/nodes/fc0/weight") && h5_gzipped(nirp, "/node/nodes/lif2/tau_mem"));
  ck_assert(!h5_gzipped(netp, "/layer/0/weight"));

  /* the bundle: both files, manifest.json, README.txt */
  struct archive *a = archive_read_new();
  archive_read_support_filter_gzip(a);
  archive_read_support_format_tar(a);
  ck_assert_int_eq(archive_read_open_filename(a, tgz, 65536), ARCHIVE_OK);
  struct archive_entry *e;
  int seen = 0;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    const char *name = archive_entry_pathname(e);
    la_int64_t size = archive_entry_size(e);
    char *buf = calloc(1, (size_t)size + 1);
    ck_assert_int_eq(archive_read_data(a, buf, (size_t)size), size);
    if (strcmp(name, "mnist.net") == 0) {
      ck_assert_int_eq(size, mt_file_size(netp));
      seen |= 1;
    } else if (strcmp(name, "mnist.nir") == 0) {
      ck_assert_int_eq(size, mt_file_size(nirp));
      seen |= 2;
    } else if (strcmp(name, "manifest.json") == 0) {
      ck_assert_ptr_nonnull(strstr(buf, "\"layer_sizes\": [784, 128, 64, 10]"));
      ck_assert_ptr_nonnull(strstr(buf, "\"scale\""));
      ck_assert_ptr_nonnull(strstr(buf, "\"source\""));
      /* the same layer names as the NIR nodes and the netx groups, by index */
      for (int l = 0; l < 3; l++) {
        char *want = mt_strf("{\"name\": \"fc%d\", \"netx\": \"/layer/%d\", \"nir\": [\"fc%d\", \"lif%d\"], "
                             "\"source_name\": \"dense%d\"",
                             l, l, l, l, l);
        ck_assert_msg(strstr(buf, want) != NULL, "manifest lacks %s:\n%s", want, buf);
      }
      seen |= 4;
    } else if (strcmp(name, "README.txt") == 0) {
      ck_assert_ptr_nonnull(strstr(buf, "netx.hdf5.Network(net_config='mnist.net')"));
      ck_assert_ptr_nonnull(strstr(buf, "nir.read('mnist.nir')"));
      /* the importers' real entry points (snnTorch exports no top-level import_from_nir) */
      ck_assert_ptr_nonnull(strstr(buf, "from snntorch.import_nir import import_from_nir"));
      ck_assert_ptr_nonnull(strstr(buf, "graph.metadata['dt']"));
      ck_assert_ptr_null(strstr(buf, "snntorch.import_from_nir("));
      /* snntorch/import_nir.py: import_from_nir(graph) takes no dt (1e-4 is
       * fixed inside); norse.torch.from_nir(node, ..., dt=0.001) does */
      ck_assert_ptr_nonnull(strstr(buf, "net = import_from_nir(graph)"));
      ck_assert_ptr_null(strstr(buf, "import_from_nir(graph, dt"));
      ck_assert_ptr_nonnull(strstr(buf, "norse.torch.from_nir(graph, dt=dt)"));
      seen |= 8;
    }
    free(buf);
  }
  archive_read_free(a);
  ck_assert_int_eq(seen, 15);

  /* independent reader: h5py, when Debian's python3-h5py is there */
  if (mt_python_or_skip("h5py numpy", "the h5py cross-check")) {
    char *script = mt_strf("%s/tests/loihi/check_export.py", mt_env("MYELIN_SOURCE_DIR", "."));
    char *cmd =
        mt_strf("%s %s %s %s %s", mt_env("MYELIN_PYTHON", "/usr/bin/python3"), script, netp, nirp, ref_net);
    char *out = NULL;
    int rc = mt_run(cmd, &out);
    ck_assert_msg(rc == 0, "check_export.py failed: %s", out);
    ck_assert_ptr_nonnull(strstr(out, "OK"));
    free(out);
    free(cmd);
    free(script);
  }
  myelin_harness_free(h);
  loihi_net_free(&q);
  loihi_net_free(&back);
  loihi_fnet_free(&f);
  free(bp);
  free(np);
  free(ref_net);
  free(netp);
  free(nirp);
  free(tgz);
  free(prefix);
  free(dir);
}
END_TEST

/* With test spikes: float and quantized accuracies side by side, on a
 * network trained for these images (chance is 0.1: both must be far above
 * it, so a quantization that destroyed the network would fail), and the
 * quantized one equals loihi_sim run on the exported .net file. */
START_TEST(test_export_accuracies) {
  uint8_t *probe = fashion("train-labels-idx1-ubyte.gz", 1, 8);
  if (!probe) MT_SKIP("dataset-fashion-mnist is not installed");
  free(probe);
  myelin_msg *net = trained_network(2000, 2);
  if (!net) MT_SKIP("the biograd plugin is not built");
  char *dir = mt_tmpdir();
  char *prefix = mt_strf("%s/acc", dir);
  const int n_test = 200;
  myelin_harness *h = run_export_msg(prefix, n_test, net, NULL); /* the default dt, as snnTorch's */
  myelin_msg *mm = myelin_harness_output(h, "metrics", 0);
  double fa = metric(mm, "float_accuracy"), qa = metric(mm, "quantized_accuracy");
  ck_assert(metric(mm, "test_samples") == n_test);
  ck_assert_msg(fa >= 0.6 && qa >= 0.6, "float %g, quantized %g: a trained network scores well above 0.1", fa,
                qa);
  ck_assert_msg(fabs(fa - qa) <= 0.05, "float %g vs quantized %g", fa, qa);
  /* activity of the quantized network: spikes per neuron and step, synaptic
   * events per sample (at least the input spikes times the first layer's
   * width), and what the network does with no input */
  double spn = metric(mm, "spikes_per_neuron_step"), syn = metric(mm, "synops_per_sample");
  double silent = metric(mm, "silent_spikes_per_neuron_step");
  fprintf(stderr, "export activity: %.4f spikes/neuron/step, %.0f synops/sample, silent %.4f\n", spn, syn, silent);
  ck_assert(spn > 0 && spn < 1 && silent >= 0 && silent < 1);
  ck_assert(syn > 64.0 * 20);
  /* re-simulate the exported file with loihi_sim */
  char err[512];
  char *params = mt_strf("{net: '%s.net'}", prefix);
  myelin_harness *s = myelin_harness_new("loihi_sim", params, err, sizeof err);
  ck_assert_msg(s != NULL, "%s", err);
  uint8_t *img = fashion("t10k-images-idx3-ubyte.gz", n_test, 16);
  uint8_t *lab = fashion("t10k-labels-idx1-ubyte.gz", n_test, 8);
  static uint32_t st[784 * 32], un[784 * 32];
  for (int k = 0; k < n_test; k++) {
    size_t n = encode_regular(img + 784 * k, 32, st, un);
    ck_assert_int_eq(myelin_harness_push(s, "spikes", spikes_msg(784, 32, st, un, n, lab[k], k)), 0);
  }
  ck_assert_int_eq(myelin_harness_eos(s), 0);
  double sa = metric(myelin_harness_output(s, "metrics", 0), "accuracy");
  ck_assert_msg(fabs(sa - qa) < 1e-12, "loihi_sim on the file %g vs export %g", sa, qa);
  /* the .nir, run as snnTorch's importer would (numpy restatement of its
   * conversion, nir_import_sim.py), behaves as the .net under loihi_sim */
  if (mt_python_or_skip("h5py numpy", "the NIR import simulation")) {
    char *inp = mt_strf("%s/inputs.u8", dir), *labp = mt_strf("%s/labels.u8", dir);
    char *cntp = mt_strf("%s/loihi_counts.i4", dir);
    FILE *fi = fopen(inp, "wb"), *fl = fopen(labp, "wb"), *fc = fopen(cntp, "wb");
    ck_assert(fi && fl && fc);
    static uint8_t raster[32 * 784];
    for (int k = 0; k < n_test; k++) {
      memset(raster, 0, sizeof raster);
      size_t n = encode_regular(img + 784 * k, 32, st, un);
      for (size_t e = 0; e < n; e++)
        raster[st[e] * 784 + un[e]] = 1;
      ck_assert_uint_eq(fwrite(raster, 1, sizeof raster, fi), sizeof raster);
      myelin_msg *pm = myelin_harness_output(s, "predictions", (size_t)k);
      myelin_tensor t;
      ck_assert_int_eq(myelin_msg_tensor(pm, "data", &t), 0);
      ck_assert_int_eq(t.count, 10);
      ck_assert_uint_eq(fwrite(t.data, sizeof(int32_t), 10, fc), 10);
    }
    ck_assert_uint_eq(fwrite(lab, 1, (size_t)n_test, fl), (size_t)n_test);
    fclose(fi), fclose(fl), fclose(fc);
    char *cmd = mt_strf("%s %s/tests/loihi/nir_import_sim.py %s.nir %s %s %s 32",
                        mt_env("MYELIN_PYTHON", "/usr/bin/python3"), mt_env("MYELIN_SOURCE_DIR", "."), prefix,
                        inp, labp, cntp);
    char *out = NULL;
    int rc = mt_run(cmd, &out);
    ck_assert_msg(rc == 0 && strstr(out, "OK"), "nir_import_sim.py: %s", out);
    fprintf(stderr, "%s", out);
    free(out);
  }
  myelin_harness_free(s);
  myelin_harness_free(h);
  free(img);
  free(lab);
  free(params);
  free(prefix);
  free(dir);
}
END_TEST

START_TEST(test_export_errors) {
  char err[512];
  myelin_harness *h = myelin_harness_new("loihi_export", "{path: /proc/loihi/x}", err, sizeof err);
  ck_assert_ptr_null(h);
  ck_assert_msg(strstr(err, "/proc/loihi"), "%s", err);
  char *dir = mt_tmpdir();
  char *params = mt_strf("{path: '%s/none'}", dir);
  h = myelin_harness_new("loihi_export", params, err, sizeof err);
  ck_assert_msg(h != NULL, "%s", err);
  ck_assert_int_ne(myelin_harness_eos(h), 0);
  ck_assert_msg(strstr(myelin_harness_error(h), "no network"), "%s", myelin_harness_error(h));
  myelin_harness_free(h);
  /* a network with a zero threshold cannot be quantized: clear error */
  h = myelin_harness_new("loihi_export", params, err, sizeof err);
  loihi_fnet f = {0};
  fixture_as_float(&f);
  f.vth = 0;
  ck_assert_int_eq(myelin_harness_push(h, "network", network_msg(&f)), 0);
  ck_assert_int_ne(myelin_harness_eos(h), 0);
  ck_assert_msg(strstr(myelin_harness_error(h), "vth"), "%s", myelin_harness_error(h));
  char *netp = mt_strf("%s/none.net", dir);
  ck_assert_int_eq(mt_file_size(netp), -1);
  myelin_harness_free(h);
  loihi_fnet_free(&f);
  free(netp);
  free(params);
  free(dir);
}
END_TEST

/* ---- through `myelin run` ------------------------------------------------ */

static int have_plugins(const char *names) {
  const char *dir = getenv("MYELIN_PLUGIN_PATH");
  const char *bin = getenv("MYELIN_BIN");
  if (!dir || !bin || access(bin, X_OK) != 0) return 0;
  char *list = strdup(names);
  int ok = 1;
  for (char *tok = strtok(list, " "); tok && ok; tok = strtok(NULL, " ")) {
    char *so = mt_strf("%s/%s.so", dir, tok);
    ok = access(so, R_OK) == 0;
    free(so);
  }
  free(list);
  return ok;
}
/* Leaves the check as skipped unless the CLI and these plugins are built. */
#define need_plugins(names)                                                                                  \
  do {                                                                                                       \
    if (!have_plugins(names)) MT_SKIP("the CLI or one of the plugins %s is not built", names);               \
  } while (0)

/* Decodes every message of an .mpk file; returns the count, *last = the last one. */
static size_t read_mpk(const char *path, myelin_msg **last) {
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "cannot open %s", path);
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *buf = malloc((size_t)len + 1);
  ck_assert_int_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
  fclose(f);
  size_t off = 0, n = 0;
  *last = NULL;
  while (off < (size_t)len) {
    myelin_msg *m;
    size_t used;
    char err[256];
    ck_assert_int_eq(myelin_msg_decode(buf + off, (size_t)len - off, 0, &m, &used, err, sizeof err), 0);
    myelin_msg_unref(*last);
    *last = m;
    off += used;
    n++;
  }
  free(buf);
  return n;
}

START_TEST(test_cli_sim_pipeline) {
  need_plugins("dataset spike_encoder file_sink loihi_sim");
  char *dir = mt_tmpdir();
  char *net = fixture("netx/trained_mnist_network.net");
  char *yaml = mt_strf(
      "name: loihi-sim-e2e\n"
      "stages:\n"
      "  - id: test\n"
      "    plugin: dataset\n"
      "    params: {format: idx, path: /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz,\n"
      "             labels: /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz,\n"
      "             split: test, limit: 100, scale: 0.00392156862745098}\n"
      "  - {id: enc, plugin: spike_encoder, inputs: [test], params: {method: regular, steps: 32}}\n"
      "  - {id: sim, plugin: loihi_sim, inputs: {spikes: [enc]}, params: {net: m.net}}\n"
      "  - {id: preds, plugin: file_sink, inputs: [sim.predictions], params: {path: '%s/preds.mpk'}}\n"
      "  - {id: metrics, plugin: file_sink, inputs: [sim.metrics], params: {path: '%s/metrics.mpk'}}\n",
      dir, dir);
  char *pf = mt_strf("%s/p.yaml", dir);
  mt_write(pf, yaml);
  /* a relative net path is found next to the pipeline file */
  char *cp = mt_strf("cp '%s' '%s/m.net'", net, dir);
  ck_assert_int_eq(mt_run(cp, NULL), 0);
  free(cp);
  MT_NEED_FILE("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", "dataset-fashion-mnist");
  char *cmd = mt_strf("%s run %s --quiet", getenv("MYELIN_BIN"), pf), *out = NULL;
  int rc = mt_run(cmd, &out);
  ck_assert_msg(rc == 0, "myelin run failed (%d): %s", rc, out);
  char *pp = mt_strf("%s/preds.mpk", dir), *mp = mt_strf("%s/metrics.mpk", dir);
  myelin_msg *last;
  ck_assert_uint_eq(read_mpk(pp, &last), 100);
  int64_t idx, pred;
  ck_assert_int_eq(myelin_msg_int(last, "index", &idx), 0);
  ck_assert_int_eq(idx, 99);
  ck_assert_int_eq(myelin_msg_int(last, "prediction", &pred), 0);
  ck_assert(pred >= 0 && pred < 10);
  myelin_msg_unref(last);
  ck_assert_uint_eq(read_mpk(mp, &last), 1);
  ck_assert(metric(last, "samples") == 100);
  ck_assert(metric(last, "accuracy") >= 0 && metric(last, "accuracy") <= 1);
  myelin_msg_unref(last);
  /* validate: a loihi_sim with neither net nor network is a file error */
  char *bad = mt_strf("%s/bad.yaml", dir);
  mt_write(bad, "name: bad\nstages:\n"
                "  - {id: src, plugin: file_source, params: {path: x.mpk}}\n"
                "  - {id: sim, plugin: loihi_sim, inputs: {spikes: [src]}}\n");
  free(cmd);
  free(out);
  cmd = mt_strf("%s validate %s", getenv("MYELIN_BIN"), bad);
  rc = mt_run(cmd, &out);
  if (have_plugins("file_source")) {
    ck_assert_msg(rc == 2, "validate gave %d: %s", rc, out);
    ck_assert_msg(strstr(out, "bad.yaml:") && strstr(out, "net"), "%s", out);
  } else {
    mt_skip_note("the validate check: file_source is not built");
  }
  free(bad);
  free(cmd);
  free(out);
  free(pp);
  free(mp);
  free(pf);
  free(yaml);
  free(net);
  free(dir);
}
END_TEST

/* BioGrad trains, loihi_export writes the files and reports the float and
 * quantized test accuracy side by side (small sizes: a smoke test). */
START_TEST(test_cli_biograd_export_pipeline) {
  need_plugins("dataset spike_encoder file_sink biograd loihi_export");
  MT_NEED_FILE("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", "dataset-fashion-mnist");
  char *dir = mt_tmpdir();
  const char *d = "/usr/share/datasets/fashion-mnist";
  char *yaml = mt_strf(
      "name: biograd-loihi-e2e\n"
      "stages:\n"
      "  - id: train\n"
      "    plugin: dataset\n"
      "    params: {format: idx, path: %s/train-images-idx3-ubyte.gz, labels: "
      "%s/train-labels-idx1-ubyte.gz,\n"
      "             split: train, limit: 1000, epochs: 3, shuffle: true, seed: 1, scale: "
      "0.00392156862745098}\n"
      "  - id: test\n"
      "    plugin: dataset\n"
      "    params: {format: idx, path: %s/t10k-images-idx3-ubyte.gz, labels: %s/t10k-labels-idx1-ubyte.gz,\n"
      "             split: test, limit: 200, scale: 0.00392156862745098}\n"
      "  - {id: enc_train, plugin: spike_encoder, inputs: [train], params: {method: rate, steps: 16}}\n"
      "  - {id: enc_test, plugin: spike_encoder, inputs: [test], params: {method: rate, steps: 16}}\n"
      "  - {id: learn, plugin: biograd, inputs: {train: [enc_train], test: [enc_test]}, params: {hidden: "
      "[64]}}\n"
      "  - id: export\n"
      "    plugin: loihi_export\n"
      "    inputs: {network: [learn.network], test: [enc_test]}\n"
      "    params: {path: '%s/wrong/prefix', pipeline: '%s/bg.yaml'}\n"
      "  - {id: m, plugin: file_sink, inputs: [export.metrics], params: {path: '%s/export.mpk'}}\n",
      d, d, d, d, dir, dir, dir);
  char *pf = mt_strf("%s/bg.yaml", dir);
  mt_write(pf, yaml);
  char *cmd = mt_strf("%s run %s --quiet --set export.path=%s/out/fmnist", getenv("MYELIN_BIN"), pf, dir);
  char *out = NULL;
  int rc = mt_run(cmd, &out);
  ck_assert_msg(rc == 0, "myelin run failed (%d): %s", rc, out);
  char *mp = mt_strf("%s/export.mpk", dir);
  myelin_msg *m;
  ck_assert_uint_eq(read_mpk(mp, &m), 1);
  double fa = metric(m, "float_accuracy"), qa = metric(m, "quantized_accuracy");
  /* trained for these images (1000 x 3 epochs: ~0.67 both; chance 0.1) */
  ck_assert_msg(fa >= 0.5 && qa >= 0.5 && fabs(fa - qa) <= 0.05, "float %g quantized %g", fa, qa);
  ck_assert(metric(m, "test_samples") == 200);
  myelin_msg_unref(m);
  char *netp = mt_strf("%s/out/fmnist.net", dir), *tgz = mt_strf("%s/out/fmnist.tar.gz", dir);
  ck_assert_int_gt(mt_file_size(netp), 0);
  ck_assert_int_gt(mt_file_size(tgz), 0);
  loihi_net q;
  char err[512];
  ck_assert_msg(loihi_netx_read(netp, &q, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(q.n_layers, 2);
  ck_assert_int_eq(q.layers[0].n_in, 784);
  ck_assert_int_eq(q.layers[0].n_out, 64);
  ck_assert_int_eq(q.layers[1].n_out, 10);
  ck_assert_int_eq(q.layers[0].i_decay, 2048); /* biograd's cdecay 0.5 */
  ck_assert_int_eq(q.layers[0].v_decay, 1024); /* vdecay 0.75 */
  loihi_net_free(&q);
  /* default dt: 1e-4 s, what snnTorch's NIR importer assumes, in the graph metadata */
  char *nirp = mt_strf("%s/out/fmnist.nir", dir);
  ck_assert(h5_scalar(nirp, "/node/metadata/dt") == 1e-4);
  free(nirp);
  /* the manifest records the source pipeline's text */
  free(cmd);
  free(out);
  cmd = mt_strf("tar -xzf %s -O manifest.json", tgz);
  ck_assert_int_eq(mt_run(cmd, &out), 0);
  ck_assert_msg(strstr(out, "biograd-loihi-e2e") && strstr(out, "\"quantized_accuracy\"") &&
                    strstr(out, "\"silent_spikes_per_neuron_step\""),
                "%s", out);
  char *wrong = mt_strf("%s/wrong/prefix.net", dir);
  ck_assert_int_eq(mt_file_size(wrong), -1); /* --set won over the file */
  free(wrong);
  free(cmd);
  free(out);
  free(netp);
  free(tgz);
  free(mp);
  free(pf);
  free(yaml);
  free(dir);
}
END_TEST

/* The main job, pipelines/fashion_mnist_biograd.yaml, in miniature (--set
 * shrinks the data and the network): its bundle's manifest records the
 * pipeline (source.pipeline was null: the job did not name its file). */
START_TEST(test_main_job_manifest_names_pipeline) {
  need_plugins("dataset spike_encoder file_sink biograd loihi_export");
  MT_NEED_FILE("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", "dataset-fashion-mnist");
  char *dir = mt_tmpdir();
  char *cmd =
      mt_strf("cd %s && OUT=%s %s run %s/pipelines/fashion_mnist_biograd.yaml --quiet --set train.limit=100 "
              "--set train.epochs=1 --set test.limit=20 --set 'learn.hidden=[8]'",
              dir, dir, getenv("MYELIN_BIN"), mt_env("MYELIN_SOURCE_DIR", "."));
  char *out = NULL;
  int rc = mt_run(cmd, &out);
  ck_assert_msg(rc == 0, "myelin run failed (%d): %s", rc, out);
  free(out);
  free(cmd);
  cmd = mt_strf("tar -xzf %s/fashion_mnist_biograd.tar.gz -O manifest.json", dir);
  ck_assert_int_eq(mt_run(cmd, &out), 0);
  ck_assert_msg(strstr(out, "\"pipeline\": {\"path\": ") && strstr(out, "fashion_mnist_biograd.yaml") &&
                    strstr(out, "name: fashion-mnist-biograd"),
                "manifest.json lacks the source pipeline:\n%s", out);
  free(out);
  free(cmd);
  free(dir);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("loihi_plugins");
  TCase *tc = tcase_create("plugins");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_sim_netx_fixture_predictions);
  tcase_add_test(tc, test_main_job_manifest_names_pipeline);
  tcase_add_test(tc, test_sim_network_input_and_pending);
  tcase_add_test(tc, test_sim_pending_store_forms);
  tcase_add_test(tc, test_sim_errors);
  tcase_add_test(tc, test_export_files_and_layout);
  tcase_add_test(tc, test_export_accuracies);
  tcase_add_test(tc, test_export_errors);
  tcase_add_test(tc, test_cli_sim_pipeline);
  tcase_add_test(tc, test_cli_biograd_export_pipeline);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
