/*
 * loihi_hdf5.c — lava-dl netx files (read and write) and NIR files (write),
 * both HDF5, through libhdf5's C API.
 *
 * netx layout (lava-dl src/lava/lib/dl/netx/hdf5.py + utils.py NetDict),
 * matched item by item against tests/data/netx/trained_mnist_network.net:
 *   /layer/<i>/type          fixed 10-byte NULLPAD ASCII string, shape (1,)
 *   /layer/<i>/shape         int64 [out]
 *   /layer/<i>/inFeatures, outFeatures   int64 scalars
 *   /layer/<i>/weight        float32 [out, in] (integers)
 *   /layer/<i>/bias          float32 [out] (optional)
 *   /layer/<i>/neuron/type   scalar variable-length UTF-8 "CUBA"
 *   /layer/<i>/neuron/{iDecay,vDecay,vThMant,refDelay}  int64 scalars
 *   /layer/<i>/neuron/gradedSpike  scalar enum over int8 {FALSE=0, TRUE=1}
 * Every item is a dataset; there are no attributes.
 *
 * The reader is lenient the way NetDict is (strings fixed or variable, scalar
 * or (1,); numbers of any integer or float class; weights truncated to
 * integers as astype(int) does; 1-D weights reshaped by `shape`), accepts
 * `input` layers without neurons and `flatten` layers as no-ops, and rejects
 * anything else (conv, pool, graded spikes...) with the layer named. Sizes
 * are bounded before allocation, so a hostile file cannot ask for more memory
 * than its dimensions times 8 bytes, and dimensions are capped.
 *
 * NIR layout (neuromorphs/NIR nir/serialization.py): /version, /node/type =
 * "NIRGraph", /node/nodes/<name>/{type, fields...}, /node/edges [E, 2]
 * strings. Node names: input, fc<l> (Affine), lif<l> (CubaLIF), output.
 */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loihi.h"

#define ERR(...) loihi_errf(err, errlen, __VA_ARGS__)
#define MAX_WEIGHTS ((hsize_t)1 << 28)

/* Silences libhdf5's error printing on this thread for the duration of one
 * call; the previous handler is restored afterwards. */
typedef struct quiet {
  H5E_auto2_t fn;
  void *data;
} quiet;

static quiet quiet_begin(void) {
  quiet q = {0};
  H5Eget_auto2(H5E_DEFAULT, &q.fn, &q.data);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  return q;
}

static void quiet_end(quiet q) { H5Eset_auto2(H5E_DEFAULT, q.fn, q.data); }

/* ---- reading ------------------------------------------------------------- */

static int exists(hid_t g, const char *name) { return H5Lexists(g, name, H5P_DEFAULT) > 0; }

/* Reads a string dataset (fixed or variable, scalar or one element). */
static int read_str(hid_t g, const char *name, char *out, size_t cap) {
  int rc = -1;
  hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
  if (d < 0) return -1;
  hid_t ft = H5Dget_type(d), sp = H5Dget_space(d);
  if (ft < 0 || sp < 0 || H5Tget_class(ft) != H5T_STRING) goto done;
  hssize_t np = H5Sget_simple_extent_npoints(sp);
  if (np < 1 || np > 64) goto done;
  if (H5Tis_variable_str(ft) > 0) {
    char **v = calloc((size_t)np, sizeof(char *));
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5Tget_cset(ft));
    if (v && H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0) {
      snprintf(out, cap, "%s", v[0] ? v[0] : "");
      H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, v);
      rc = 0;
    }
    H5Tclose(mt);
    free(v);
  } else {
    size_t sz = H5Tget_size(ft);
    if (sz == 0 || sz > 4096) goto done;
    char *buf = calloc((size_t)np, sz + 1);
    hid_t mt = H5Tcopy(ft);
    if (buf && H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0) {
      size_t n = strnlen(buf, sz);
      snprintf(out, cap, "%.*s", (int)n, buf);
      rc = 0;
    }
    H5Tclose(mt);
    free(buf);
  }
done:
  if (ft >= 0) H5Tclose(ft);
  if (sp >= 0) H5Sclose(sp);
  H5Dclose(d);
  return rc;
}

/* An integer or float type whose bit layout fits its byte size: libhdf5 1.10
 * converts a damaged layout (precision or offset beyond the size) by reading
 * outside its buffers (fuzz_netx found a SIGBUS in H5T__bit_copy), so the
 * layout is checked before H5Dread converts anything. */
static int plain_numeric_type(hid_t ft, H5T_class_t c) {
  size_t size = H5Tget_size(ft), prec = H5Tget_precision(ft);
  int off = H5Tget_offset(ft);
  if (size != 1 && size != 2 && size != 4 && size != 8) return 0;
  if (prec == 0 || off < 0 || (size_t)off + prec > 8 * size) return 0;
  if (c == H5T_FLOAT) {
    size_t spos, epos, esize, mpos, msize;
    if (H5Tget_fields(ft, &spos, &epos, &esize, &mpos, &msize) < 0) return 0;
    if (esize == 0 || msize == 0 || spos >= prec || epos + esize > prec || mpos + msize > prec ||
        esize > 16 || msize > 64)
      return 0;
    if (H5Tget_ebias(ft) > ((size_t)1 << esize)) return 0;
  }
  return 1;
}

/* Whether a dataset's values were written to the file: a damaged or hostile
 * header can declare millions of elements over a few bytes of storage (HDF5
 * then makes up fill values), and the reader would allocate for all of them.
 * Contiguous and compact data must be stored in full; chunked data may be
 * compressed, up to 1024:1. */
static int stored_in_full(hid_t d, hsize_t bytes) {
  hsize_t have = H5Dget_storage_size(d);
  hid_t dcpl = H5Dget_create_plist(d);
  H5D_layout_t lay = dcpl >= 0 ? H5Pget_layout(dcpl) : H5D_LAYOUT_ERROR;
  if (dcpl >= 0) H5Pclose(dcpl);
  if (have == 0 || lay == H5D_LAYOUT_ERROR) return 0;
  if (lay == H5D_CHUNKED) return have >= bytes / 1024;
  return have >= bytes;
}

/* Reads a numeric dataset as doubles; dims (up to 2) into dims/ndim. */
static double *read_num(hid_t g, const char *name, int *ndim, hsize_t dims[2], hsize_t max_n,
                        char *err, size_t errlen) {
  double *out = NULL;
  hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
  if (d < 0) {
    ERR("missing dataset '%s'", name);
    return NULL;
  }
  hid_t ft = H5Dget_type(d), sp = H5Dget_space(d);
  H5T_class_t c = ft >= 0 ? H5Tget_class(ft) : H5T_NO_CLASS;
  int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
  if (c != H5T_INTEGER && c != H5T_FLOAT) {
    ERR("'%s' is not numeric", name);
  } else if (!plain_numeric_type(ft, c)) {
    ERR("'%s' has a malformed numeric type", name);
  } else if (nd < 0 || nd > 2) {
    ERR("'%s' has %d dimensions (at most 2 expected)", name, nd);
  } else {
    hsize_t dd[2] = {1, 1};
    if (nd > 0) H5Sget_simple_extent_dims(sp, dd, NULL);
    hsize_t n = dd[0] * (nd > 1 ? dd[1] : 1);
    if (nd > 1 && dd[1] != 0 && n / dd[1] != dd[0]) n = max_n + 1;
    if (n == 0 || n > max_n) {
      ERR("'%s' has %llu elements (expected 1 to %llu)", name, (unsigned long long)n,
          (unsigned long long)max_n);
    } else if (!stored_in_full(d, n * H5Tget_size(ft))) {
      ERR("'%s' declares %llu elements but the file holds less data", name, (unsigned long long)n);
    } else {
      out = malloc(sizeof(double) * (size_t)n);
      if (!out) {
        ERR("out of memory reading '%s'", name);
      } else if (H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0) {
        ERR("cannot read '%s'", name);
        free(out);
        out = NULL;
      } else {
        *ndim = nd;
        dims[0] = dd[0];
        dims[1] = nd > 1 ? dd[1] : 1;
      }
    }
  }
  if (ft >= 0) H5Tclose(ft);
  if (sp >= 0) H5Sclose(sp);
  H5Dclose(d);
  return out;
}

static int read_i64(hid_t g, const char *name, int64_t *v, char *err, size_t errlen) {
  int nd;
  hsize_t dims[2];
  double *x = read_num(g, name, &nd, dims, 1, err, errlen);
  if (!x) return MYELIN_EFORMAT;
  double d = x[0];
  free(x);
  if (!isfinite(d) || fabs(d) > 9e15) return ERR("'%s' = %g is not a usable integer", name, d);
  *v = (int64_t)d;
  return 0;
}

static int to_i32(const double *x, size_t n, int32_t *out, const char *what, char *err,
                  size_t errlen) {
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(x[i]) || fabs(x[i]) >= 2147483648.0)
      return ERR("%s[%zu] = %g is not a 32-bit integer", what, i, x[i]);
    out[i] = (int32_t)x[i]; /* truncation, like numpy astype(int) */
  }
  return 0;
}

/* gradedSpike: an enum (or integer) scalar; nonzero means graded. */
static int read_graded(hid_t g, int *graded) {
  *graded = 0;
  if (!exists(g, "gradedSpike")) return 0;
  hid_t d = H5Dopen2(g, "gradedSpike", H5P_DEFAULT);
  if (d < 0) return -1;
  hid_t ft = H5Dget_type(d), sp = H5Dget_space(d);
  int rc = -1;
  if (ft >= 0 && sp >= 0 && H5Sget_simple_extent_npoints(sp) == 1) {
    H5T_class_t c = H5Tget_class(ft);
    hid_t base = c == H5T_ENUM ? H5Tget_super(ft) : -1;
    int plain = c == H5T_ENUM ? base >= 0 && plain_numeric_type(base, H5T_INTEGER)
                              : (c == H5T_INTEGER || c == H5T_FLOAT) && plain_numeric_type(ft, c);
    if (base >= 0) H5Tclose(base);
    if (!plain) {
      /* a damaged type: refused below (rc stays -1) */
    } else if (c == H5T_ENUM && H5Tget_size(ft) <= 8) {
      unsigned char buf[8] = {0};
      hid_t mt = H5Tget_native_type(ft, H5T_DIR_DEFAULT);
      if (mt >= 0 && H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0) {
        for (size_t i = 0; i < H5Tget_size(ft); i++) *graded |= buf[i] != 0;
        rc = 0;
      }
      if (mt >= 0) H5Tclose(mt);
    } else if (c == H5T_INTEGER || c == H5T_FLOAT) {
      double x = 0;
      if (H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &x) >= 0) {
        *graded = x != 0;
        rc = 0;
      }
    }
  }
  if (ft >= 0) H5Tclose(ft);
  if (sp >= 0) H5Sclose(sp);
  H5Dclose(d);
  return rc;
}

static int read_neuron(hid_t lg, loihi_layer *L, char *err, size_t errlen) {
  /* netx's default when a dense layer has no neuron: non-leaky integrator
   * with vThMant = 1 << 18 - 1 (Python precedence: 1 << 17) */
  L->i_decay = 0;
  L->v_decay = 4096;
  L->vth_mant = (int64_t)1 << 17;
  L->ref_delay = 1;
  if (!exists(lg, "neuron")) return 0;
  hid_t g = H5Gopen2(lg, "neuron", H5P_DEFAULT);
  if (g < 0) return ERR("'neuron' is not a group");
  char type[64] = "";
  int rc = 0;
  if (read_str(g, "type", type, sizeof type) != 0) {
    rc = ERR("neuron/type missing or not a string");
  } else if (strcmp(type, "CUBA") != 0 && strcmp(type, "LOIHI") != 0) {
    rc = ERR("neuron type '%s' not supported (CUBA only)", type);
  } else if ((rc = read_i64(g, "iDecay", &L->i_decay, err, errlen)) ||
             (rc = read_i64(g, "vDecay", &L->v_decay, err, errlen)) ||
             (rc = read_i64(g, "vThMant", &L->vth_mant, err, errlen))) {
    /* err set */
  } else if (exists(g, "refDelay") && (rc = read_i64(g, "refDelay", &L->ref_delay, err, errlen))) {
    /* err set */
  } else if (read_graded(g, &L->graded) != 0) {
    rc = ERR("neuron/gradedSpike unreadable");
  }
  H5Gclose(g);
  return rc;
}

static int read_dense(hid_t lg, loihi_layer *L, char *err, size_t errlen) {
  int nd = 0, rc;
  hsize_t dims[2];
  int64_t out_n = -1;
  if (exists(lg, "shape")) {
    hsize_t sd[2];
    int snd;
    double *sh = read_num(lg, "shape", &snd, sd, 8, err, errlen);
    if (!sh) return MYELIN_EFORMAT;
    double prod = 1;
    for (hsize_t i = 0; i < sd[0] * sd[1]; i++) prod *= sh[i];
    free(sh);
    if (!(prod >= 1 && prod <= LOIHI_MAX_UNITS)) return ERR("bad 'shape' (%g units)", prod);
    out_n = (int64_t)prod;
  }
  double *w = read_num(lg, "weight", &nd, dims, MAX_WEIGHTS, err, errlen);
  if (!w) return MYELIN_EFORMAT;
  if (nd == 1) {
    if (out_n < 1 || dims[0] % (hsize_t)out_n) {
      free(w);
      return ERR("1-D 'weight' of %llu values does not match 'shape'", (unsigned long long)dims[0]);
    }
    dims[1] = dims[0] / (hsize_t)out_n;
    dims[0] = (hsize_t)out_n;
  } else if (nd != 2) {
    free(w);
    return ERR("'weight' must be [out, in]");
  }
  if (out_n >= 0 && dims[0] != (hsize_t)out_n) {
    free(w);
    return ERR("'weight' has %llu rows but 'shape' says %lld", (unsigned long long)dims[0],
               (long long)out_n);
  }
  if (dims[0] > LOIHI_MAX_UNITS || dims[1] > LOIHI_MAX_UNITS) {
    free(w);
    return ERR("'weight' too large");
  }
  L->n_out = (int)dims[0];
  L->n_in = (int)dims[1];
  L->weight = malloc(sizeof(int32_t) * (size_t)(dims[0] * dims[1]));
  rc = L->weight ? to_i32(w, (size_t)(dims[0] * dims[1]), L->weight, "weight", err, errlen)
                 : ERR("out of memory");
  free(w);
  if (rc) return rc;
  if (exists(lg, "bias")) {
    double *b = read_num(lg, "bias", &nd, dims, LOIHI_MAX_UNITS, err, errlen);
    if (!b) return MYELIN_EFORMAT;
    if (dims[0] * dims[1] != (hsize_t)L->n_out) {
      free(b);
      return ERR("'bias' has %llu values for %d neurons", (unsigned long long)(dims[0] * dims[1]),
                 L->n_out);
    }
    L->bias = malloc(sizeof(int32_t) * (size_t)L->n_out);
    rc = L->bias ? to_i32(b, (size_t)L->n_out, L->bias, "bias", err, errlen) : ERR("out of memory");
    free(b);
    if (rc) return rc;
  }
  return read_neuron(lg, L, err, errlen);
}

static int read_layers(hid_t f, loihi_net *out, char *err, size_t errlen) {
  hid_t lay = exists(f, "layer") ? H5Gopen2(f, "layer", H5P_DEFAULT) : -1;
  if (lay < 0) return ERR("no /layer group (not a netx file)");
  /* count layers by probing "0", "1", ... (what netx does with len() and
   * f'{i}'); cheaper on a damaged file than walking the group's B-tree */
  int rc = 0, nl = 0;
  char probe[16];
  for (; nl <= LOIHI_MAX_LAYERS; nl++) {
    snprintf(probe, sizeof probe, "%d", nl);
    if (!exists(lay, probe)) break;
  }
  if (nl < 1 || nl > LOIHI_MAX_LAYERS) {
    H5Gclose(lay);
    return ERR("/layer must hold layers named 0, 1, ... (1 to %d)", LOIHI_MAX_LAYERS);
  }
  out->layers = calloc((size_t)nl, sizeof(loihi_layer));
  if (!out->layers) {
    H5Gclose(lay);
    return ERR("out of memory");
  }
  for (int i = 0; i < nl && rc == 0; i++) {
    char name[32], type[64] = "", sub[400] = "";
    snprintf(name, sizeof name, "%d", i);
    hid_t lg = H5Gopen2(lay, name, H5P_DEFAULT);
    if (lg < 0) {
      rc = ERR("/layer/%s is not a group", name);
      break;
    }
    if (read_str(lg, "type", type, sizeof type) != 0) {
      rc = ERR("/layer/%s/type missing or not a string", name);
    } else if (strcmp(type, "dense") == 0) {
      loihi_layer *L = &out->layers[out->n_layers++];
      if (read_dense(lg, L, sub, sizeof sub) != 0) rc = ERR("/layer/%s (dense): %s", name, sub);
    } else if (strcmp(type, "input") == 0) {
      if (exists(lg, "neuron"))
        rc = ERR("/layer/%s: input layers with neurons are not supported", name);
    } else if (strcmp(type, "flatten") != 0) {
      rc = ERR("/layer/%s: layer type '%s' not supported (dense CUBA networks only)", name, type);
    }
    H5Gclose(lg);
  }
  H5Gclose(lay);
  if (rc == 0) rc = loihi_net_check(out, err, errlen);
  return rc;
}

int loihi_netx_read(const char *path, loihi_net *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  quiet q = quiet_begin();
  int rc;
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) {
    rc = ERR("%s: cannot open as HDF5", path);
  } else {
    char sub[480];
    rc = read_layers(f, out, sub, sizeof sub);
    if (rc) snprintf(err, errlen, "%s: %s", path, sub);
    H5Fclose(f);
  }
  quiet_end(q);
  if (rc) loihi_net_free(out);
  return rc;
}

int loihi_netx_read_mem(const void *buf, size_t len, loihi_net *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  quiet q = quiet_begin();
  int rc;
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  hid_t f = -1;
  if (fapl >= 0 && H5Pset_fapl_core(fapl, 1 << 16, 0) >= 0 &&
      H5Pset_file_image(fapl, (void *)(uintptr_t)buf, len) >= 0)
    f = H5Fopen("netx-image", H5F_ACC_RDONLY, fapl);
  if (f < 0) {
    rc = ERR("not an HDF5 file image");
  } else {
    rc = read_layers(f, out, err, errlen);
    H5Fclose(f);
  }
  if (fapl >= 0) H5Pclose(fapl);
  quiet_end(q);
  if (rc) loihi_net_free(out);
  return rc;
}

/* ---- writing ------------------------------------------------------------- */

/* gzip: one chunk, deflate level 4 (what nir.write's compression="gzip"
 * gives through h5py); only for non-empty arrays (scalars cannot be
 * chunked). The netx file stays uncompressed, as lava-dl's. */
static int put_z(hid_t g, const char *name, hid_t ftype, hid_t mtype, int ndim, const hsize_t *dims,
                 const void *data, int gzip) {
  hid_t sp = ndim == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(ndim, dims, NULL);
  if (sp < 0) return -1;
  hid_t dcpl = H5P_DEFAULT;
  int nonempty = ndim > 0;
  for (int k = 0; k < ndim; k++)
    nonempty &= dims[k] > 0;
  if (gzip && nonempty) {
    dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (dcpl < 0 || H5Pset_chunk(dcpl, ndim, dims) < 0 || H5Pset_deflate(dcpl, 4) < 0) {
      if (dcpl >= 0) H5Pclose(dcpl);
      H5Sclose(sp);
      return -1;
    }
  }
  hid_t d = H5Dcreate2(g, name, ftype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  int rc = d < 0 ? -1 : (H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0 ? -1 : 0);
  if (d >= 0) H5Dclose(d);
  if (dcpl != H5P_DEFAULT) H5Pclose(dcpl);
  H5Sclose(sp);
  return rc;
}

static int put(hid_t g, const char *name, hid_t ftype, hid_t mtype, int ndim, const hsize_t *dims,
               const void *data) {
  return put_z(g, name, ftype, mtype, ndim, dims, data, 0);
}

static int put_i64(hid_t g, const char *name, int64_t v) {
  return put(g, name, H5T_STD_I64LE, H5T_NATIVE_INT64, 0, NULL, &v);
}

static int put_vstr(hid_t g, const char *name, int ndim, const hsize_t *dims, const char **s) {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  H5Tset_strpad(t, H5T_STR_NULLTERM);
  int rc = put(g, name, t, t, ndim, dims, s);
  H5Tclose(t);
  return rc;
}

static int put_fixed_str(hid_t g, const char *name, const char *s, size_t size) {
  char buf[64] = {0};
  if (size > sizeof buf) return -1;
  memcpy(buf, s, strnlen(s, size));
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, size);
  H5Tset_strpad(t, H5T_STR_NULLPAD);
  H5Tset_cset(t, H5T_CSET_ASCII);
  hsize_t one = 1;
  int rc = put(g, name, t, t, 1, &one, buf);
  H5Tclose(t);
  return rc;
}

static int put_bool_enum(hid_t g, const char *name, int v) {
  hid_t t = H5Tenum_create(H5T_STD_I8LE);
  int8_t f = 0, tr = 1, x = v ? 1 : 0;
  H5Tenum_insert(t, "FALSE", &f);
  H5Tenum_insert(t, "TRUE", &tr);
  int rc = put(g, name, t, t, 0, NULL, &x);
  H5Tclose(t);
  return rc;
}

static int write_neuron(hid_t lg, const loihi_layer *L) {
  hid_t g = H5Gcreate2(lg, "neuron", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (g < 0) return -1;
  const char *type = "CUBA";
  int rc = put_vstr(g, "type", 0, NULL, &type) | put_i64(g, "iDecay", L->i_decay) |
           put_i64(g, "vDecay", L->v_decay) | put_i64(g, "vThMant", L->vth_mant) |
           put_i64(g, "refDelay", L->ref_delay) | put_bool_enum(g, "gradedSpike", L->graded);
  H5Gclose(g);
  return rc;
}

static int write_dense(hid_t lay, int i, const loihi_layer *L) {
  char name[16];
  snprintf(name, sizeof name, "%d", i);
  hid_t lg = H5Gcreate2(lay, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (lg < 0) return -1;
  size_t nw = (size_t)L->n_in * (size_t)L->n_out;
  float *w = malloc(sizeof(float) * nw);
  int64_t shape = L->n_out;
  hsize_t d1 = 1, dw[2] = {(hsize_t)L->n_out, (hsize_t)L->n_in}, db = (hsize_t)L->n_out;
  int rc = w ? 0 : -1;
  for (size_t k = 0; w && k < nw; k++) w[k] = (float)L->weight[k];
  rc |= put_fixed_str(lg, "type", "dense", 10);
  rc |= put(lg, "shape", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, &d1, &shape);
  rc |= put_i64(lg, "inFeatures", L->n_in) | put_i64(lg, "outFeatures", L->n_out);
  if (w) rc |= put(lg, "weight", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, dw, w);
  if (L->bias && w) {
    for (int j = 0; j < L->n_out; j++) w[j] = (float)L->bias[j];
    rc |= put(lg, "bias", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, &db, w);
  }
  rc |= write_neuron(lg, L);
  free(w);
  H5Gclose(lg);
  return rc;
}

int loihi_netx_write(const char *path, const loihi_net *n, char *err, size_t errlen) {
  int rc = loihi_net_check(n, err, errlen);
  if (rc) return rc;
  quiet q = quiet_begin();
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) {
    quiet_end(q);
    return ERR("%s: cannot create HDF5 file", path);
  }
  hid_t lay = H5Gcreate2(f, "layer", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  rc = lay < 0 ? -1 : 0;
  for (int i = 0; rc == 0 && i < n->n_layers; i++) rc = write_dense(lay, i, &n->layers[i]);
  if (lay >= 0) H5Gclose(lay);
  if (H5Fclose(f) < 0) rc = -1;
  quiet_end(q);
  return rc ? ERR("%s: writing netx failed", path) : 0;
}

/* ---- NIR ----------------------------------------------------------------- */

static int put_f64_vec(hid_t g, const char *name, int n, const double *x) {
  hsize_t d = (hsize_t)n;
  return put_z(g, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, &d, x, 1);
}

static hid_t nir_node(hid_t nodes, const char *name, const char *type) {
  hid_t g = H5Gcreate2(nodes, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (g >= 0 && put_vstr(g, "type", 0, NULL, &type) < 0) {
    H5Gclose(g);
    return -1;
  }
  return g;
}

static int nir_shape_node(hid_t nodes, const char *name, const char *type, int64_t n) {
  hid_t g = nir_node(nodes, name, type);
  if (g < 0) return -1;
  hsize_t one = 1;
  int rc = put_z(g, "shape", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, &one, &n, 1);
  H5Gclose(g);
  return rc;
}

/* Affine: weight = W/64 (float32), bias mapped into the current input. */
static int nir_affine(hid_t nodes, int l, const loihi_layer *L) {
  char name[32];
  snprintf(name, sizeof name, "fc%d", l);
  hid_t g = nir_node(nodes, name, "Affine");
  if (g < 0) return -1;
  size_t nw = (size_t)L->n_in * (size_t)L->n_out;
  float *w = malloc(sizeof(float) * (nw > (size_t)L->n_out ? nw : (size_t)L->n_out));
  hsize_t dw[2] = {(hsize_t)L->n_out, (hsize_t)L->n_in}, db = (hsize_t)L->n_out;
  int rc = w ? 0 : -1;
  for (size_t k = 0; w && k < nw; k++) w[k] = (float)L->weight[k] / 64.0f;
  if (w) rc |= put_z(g, "weight", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, dw, w, 1);
  /* a constant bias b (added to v each step) equals, at steady state, a
   * current input of b * iDecay/4096 (exact when iDecay = 4096) */
  for (int j = 0; w && j < L->n_out; j++)
    w[j] = L->bias ? (float)(L->bias[j] / 64.0 * (double)L->i_decay / LOIHI_DECAY_UNITY) : 0.0f;
  if (w) rc |= put_z(g, "bias", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, &db, w, 1);
  free(w);
  H5Gclose(g);
  return rc;
}

/* CubaLIF: tau = dt*4096/decay, r = tau_mem/dt, w_in = tau_syn/dt,
 * v_threshold = vThMant/64, v_leak = v_reset = 0. */
static int nir_cubalif(hid_t nodes, int l, const loihi_layer *L, double dt) {
  char name[32];
  snprintf(name, sizeof name, "lif%d", l);
  hid_t g = nir_node(nodes, name, "CubaLIF");
  if (g < 0) return -1;
  int n = L->n_out;
  double *x = malloc(sizeof(double) * (size_t)n * 7);
  if (!x) {
    H5Gclose(g);
    return -1;
  }
  double tau_syn = L->i_decay > 0 ? dt * LOIHI_DECAY_UNITY / (double)L->i_decay : INFINITY;
  double tau_mem = L->v_decay > 0 ? dt * LOIHI_DECAY_UNITY / (double)L->v_decay : INFINITY;
  double vals[7] = {tau_syn, tau_mem, tau_mem / dt, 0.0, (double)L->vth_mant / 64.0, 0.0,
                    tau_syn / dt};
  static const char *const names[7] = {"tau_syn", "tau_mem", "r", "v_leak",
                                       "v_threshold", "v_reset", "w_in"};
  int rc = 0;
  for (int k = 0; k < 7; k++) {
    double *col = x + (size_t)k * (size_t)n;
    for (int j = 0; j < n; j++) col[j] = vals[k];
    rc |= put_f64_vec(g, names[k], n, col);
  }
  free(x);
  H5Gclose(g);
  return rc;
}

static int nir_edges(hid_t node, int n_layers) {
  int ne = 2 * n_layers + 1;
  char(*names)[16] = calloc((size_t)ne * 2, 16);
  const char **ptr = calloc((size_t)ne * 2, sizeof(char *));
  if (!names || !ptr) {
    free(names);
    free(ptr);
    return -1;
  }
  /* input -> fc0 -> lif0 -> fc1 -> ... -> lif(L-1) -> output */
  char prev[16] = "input";
  for (int e = 0; e < ne; e++) {
    char next[16];
    if (e == ne - 1)
      snprintf(next, sizeof next, "output");
    else
      snprintf(next, sizeof next, e % 2 == 0 ? "fc%d" : "lif%d", e / 2);
    snprintf(names[2 * e], 16, "%s", prev);
    snprintf(names[2 * e + 1], 16, "%s", next);
    snprintf(prev, sizeof prev, "%s", next);
  }
  for (int k = 0; k < 2 * ne; k++) ptr[k] = names[k];
  hsize_t d[2] = {(hsize_t)ne, 2};
  int rc = put_vstr(node, "edges", 2, d, ptr);
  free(names);
  free(ptr);
  return rc;
}

int loihi_nir_write(const char *path, const loihi_net *n, double dt, char *err, size_t errlen) {
  int rc = loihi_net_check(n, err, errlen);
  if (rc) return rc;
  if (!(dt > 0)) return ERR("dt must be > 0");
  quiet q = quiet_begin();
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) {
    quiet_end(q);
    return ERR("%s: cannot create HDF5 file", path);
  }
  const char *version = LOIHI_NIR_VERSION, *graph = "NIRGraph";
  rc = put_vstr(f, "version", 0, NULL, &version);
  hid_t node = H5Gcreate2(f, "node", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  hid_t nodes = node >= 0 ? H5Gcreate2(node, "nodes", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
  if (nodes < 0) rc = -1;
  if (rc == 0) {
    rc |= put_vstr(node, "type", 0, NULL, &graph);
    rc |= nir_shape_node(nodes, "input", "Input", n->layers[0].n_in);
    for (int l = 0; l < n->n_layers; l++)
      rc |= nir_affine(nodes, l, &n->layers[l]) | nir_cubalif(nodes, l, &n->layers[l], dt);
    rc |= nir_shape_node(nodes, "output", "Output", n->layers[n->n_layers - 1].n_out);
    rc |= nir_edges(node, n->n_layers);
    /* the graph's metadata (nir.NIRGraph(metadata=...), read back by
     * nir.read): the seconds per step the time constants assume */
    hid_t meta = H5Gcreate2(node, "metadata", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    rc |= meta < 0 ? -1 : put(meta, "dt", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 0, NULL, &dt);
    if (meta >= 0) H5Gclose(meta);
  }
  if (nodes >= 0) H5Gclose(nodes);
  if (node >= 0) H5Gclose(node);
  if (H5Fclose(f) < 0) rc = -1;
  quiet_end(q);
  return rc ? ERR("%s: writing NIR failed", path) : 0;
}
