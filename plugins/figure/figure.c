/*
 * figure — draws what arrives as a PNG, SVG or PDF figure (cairo).
 *
 * The figure type follows the first message unless `type` says otherwise:
 *   map | volume | run          -> map      (brain map: orthogonal slices or a mosaic)
 *   metrics                     -> curves   (every value per epoch, train/test together)
 *   spikes                      -> raster   (spike raster + population rate)
 *   predictions                 -> matrix   (confusion matrix: label x prediction)
 *   tensor | sample, 2-D field  -> matrix;  1-D -> series;  3-D -> map (identity affine)
 * `series` draws columns of a run [T, V] (or of any 2-D field) over time.
 *
 * Curves gather every message of the stream, a confusion matrix those of
 * the latest evaluation (the last `epoch` seen); the
 * other figures draw one message, `message` (default -1: the last), whose
 * reference is kept until the end. The figure is drawn in flush (end of
 * stream) and written through myelin_atomic_open/commit, so a half-written
 * file never appears under its name; after an error or abort nothing is
 * written. The drawing itself is figure_draw.c, over plain arrays; this file
 * turns messages into those arrays (maps are placed on their grid by
 * nifti_grid.c, exactly as nifti_sink writes them).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <cairo.h>
#include <fontconfig/fontconfig.h>
#include <stdatomic.h>

#include "figure_draw.h"
#include "myelin/myelin.h"
#include "nifti.h"
#include "nifti_grid.h"
#include "../common/tensor_elem.h"

typedef enum { T_AUTO, T_MAP, T_CURVES, T_RASTER, T_MATRIX, T_SERIES } fig_type;
static const char *const type_names[] = {"auto", "map", "curves", "raster", "matrix", "series"};

#define MAX_CLASSES 1000

/* One named value of the metrics stream: its points over messages. */
typedef struct series {
  char *name;
  double *x, *y;
  size_t n, cap;
} series;

typedef struct fig_state {
  const myelin_host *host;
  myelin_stage *st;
  const myelin_params *p;
  const char *path;
  fig_type type;
  int64_t which; /* `message` */
  uint64_t received;
  myelin_msg *kept; /* the message a single-message figure draws */
  /* curves */
  series *ser;
  size_t n_ser;
  int have_epoch;
  /* confusion matrix of the latest evaluation (epoch) */
  double *conf;
  size_t classes;
  int64_t conf_epoch;
  nifti_atlas atlas;
  int committed;
} fig_state;

/* Cairo's toy text API loads fontconfig's configuration once per process
 * and keeps it. When the last figure stage ends, both are released
 * (cairo_debug_reset_static_data, FcFini), so a run leaves no memory behind
 * for LeakSanitizer to report. The count is process-wide state by nature: it
 * guards a process-wide library. */
static atomic_int live_figures;

static void release_fonts(void) {
  if (atomic_fetch_sub(&live_figures, 1) == 1) {
    cairo_debug_reset_static_data();
    FcFini();
  }
}

static int parse_type(const char *s) {
  for (int i = 0; i < (int)(sizeof type_names / sizeof *type_names); i++)
    if (!strcmp(s, type_names[i])) return i;
  return -1;
}

static fig_type type_for(const myelin_msg *m, const char *field) {
  const char *k = myelin_msg_kind(m);
  if (!strcmp(k, "map") || !strcmp(k, "volume") || !strcmp(k, "run")) return T_MAP;
  if (!strcmp(k, "metrics")) return T_CURVES;
  if (!strcmp(k, "spikes")) return T_RASTER;
  if (!strcmp(k, "predictions")) return T_MATRIX;
  myelin_tensor t;
  const char *f = *field ? field : !strcmp(k, "sample") ? "x" : "data";
  if (myelin_msg_tensor(m, f, &t) == 0) return t.ndim == 1 ? T_SERIES : t.ndim == 3 ? T_MAP : T_MATRIX;
  return T_AUTO;
}

/* ---- gathering ----------------------------------------------------------- */

static series *series_get(fig_state *s, const char *name, size_t len) {
  for (size_t i = 0; i < s->n_ser; i++)
    if (strlen(s->ser[i].name) == len && !memcmp(s->ser[i].name, name, len)) return &s->ser[i];
  series *ns = realloc(s->ser, (s->n_ser + 1) * sizeof *ns);
  if (!ns) return NULL;
  s->ser = ns;
  series *x = &s->ser[s->n_ser];
  memset(x, 0, sizeof *x);
  if (!(x->name = strndup(name, len))) return NULL;
  s->n_ser++;
  return x;
}

/* 1 when `values` is empty or lists name. */
static int value_wanted(const fig_state *s, const char *name, size_t len) {
  size_t n = myelin_param_len(s->p, "values");
  if (!n) return 1;
  for (size_t i = 0; i < n; i++) {
    const char *v = myelin_param_str_at(s->p, "values", i);
    if (strlen(v) == len && !memcmp(v, name, len)) return 1;
  }
  return 0;
}

static int add_metrics(fig_state *s, const myelin_msg *m) {
  int64_t epoch;
  double x = (double)s->received;
  if (myelin_msg_int(m, "epoch", &epoch) == 0) x = (double)epoch, s->have_epoch = 1;
  myelin_obj v = myelin_msg_get(m, "values");
  if (myelin_obj_type_of(v) != MYELIN_OBJ_MAP)
    return s->host->error(s->st, "metrics message %llu has no values map", (unsigned long long)s->received);
  for (size_t i = 0; i < myelin_obj_len(v); i++) {
    size_t len;
    const char *name = myelin_obj_str(myelin_obj_key_at(v, i), &len);
    double y;
    if (!name || myelin_obj_float(myelin_obj_value_at(v, i), &y) || !value_wanted(s, name, len)) continue;
    series *se = series_get(s, name, len);
    if (!se) return s->host->error(s->st, "out of memory");
    if (se->n == se->cap) {
      size_t nc = se->cap ? 2 * se->cap : 16;
      double *nx = realloc(se->x, nc * sizeof *nx), *ny = nx ? realloc(se->y, nc * sizeof *ny) : NULL;
      if (nx) se->x = nx;
      if (!nx || !ny) return s->host->error(s->st, "out of memory");
      se->y = ny;
      se->cap = nc;
    }
    se->x[se->n] = x;
    se->y[se->n++] = y;
  }
  return 0;
}

static int add_prediction(fig_state *s, const myelin_msg *m) {
  int64_t label, pred;
  if (myelin_msg_int(m, "prediction", &pred) || myelin_msg_int(m, "label", &label)) return 0; /* unlabelled */
  if (label < 0 || pred < 0 || label >= MAX_CLASSES || pred >= MAX_CLASSES)
    return s->host->error(s->st, "predictions message %llu: label %lld / prediction %lld outside 0..%d",
                          (unsigned long long)s->received, (long long)label, (long long)pred,
                          MAX_CLASSES - 1);
  int64_t epoch;
  if (myelin_msg_int(m, "epoch", &epoch) == 0 && epoch != s->conf_epoch) { /* a new evaluation */
    if (s->conf) memset(s->conf, 0, s->classes * s->classes * sizeof *s->conf);
    s->conf_epoch = epoch;
  }
  size_t need = (size_t)(label > pred ? label : pred) + 1;
  if (need > s->classes) {
    double *nc = calloc(need * need, sizeof *nc);
    if (!nc) return s->host->error(s->st, "out of memory");
    for (size_t r = 0; r < s->classes; r++)
      memcpy(nc + r * need, s->conf + r * s->classes, s->classes * sizeof *nc);
    free(s->conf);
    s->conf = nc;
    s->classes = need;
  }
  s->conf[(size_t)label * s->classes + (size_t)pred] += 1;
  return 0;
}

static int fg_process(void *state, int port, myelin_msg *m) {
  (void)port;
  fig_state *s = state;
  const char *field = myelin_param_str(s->p, "field");
  if (s->type == T_AUTO) {
    s->type = type_for(m, field);
    if (s->type == T_AUTO)
      return s->host->error(s->st, "cannot draw a '%s' message (no tensor field '%s'); set type",
                            myelin_msg_kind(m), *field ? field : "data");
  }
  int rc = 0;
  const char *k = myelin_msg_kind(m);
  if (s->type == T_CURVES) {
    if (strcmp(k, "metrics"))
      return s->host->error(s->st, "type curves draws metrics messages, not '%s' (message %llu)", k,
                            (unsigned long long)s->received);
    rc = add_metrics(s, m);
  } else if (s->type == T_MATRIX && !strcmp(k, "predictions")) {
    rc = add_prediction(s, m);
  } else if (s->which < 0 || (uint64_t)s->which == s->received) {
    myelin_msg_unref(s->kept);
    s->kept = myelin_msg_ref(m);
  }
  s->received++;
  return rc;
}

/* ---- drawing ------------------------------------------------------------- */

/* The field to draw: `field`, else summary (isc's group map) when present,
 * else x for samples, else data. */
static const char *field_of(const fig_state *s, const myelin_msg *m) {
  const char *f = myelin_param_str(s->p, "field");
  if (*f) return f;
  if (myelin_obj_exists(myelin_msg_get(m, "summary"))) return "summary";
  if (!strcmp(myelin_msg_kind(m), "sample")) return "x";
  return "data";
}

/* Row `row` of t [..., V] (or the NaN-aware mean of all rows when row < 0) into out[V]. */
static int pick_row(fig_state *s, const myelin_tensor *t, int64_t row, float *out) {
  size_t V = (size_t)t->shape[t->ndim - 1], R = V ? t->count / V : 0;
  if (row >= (int64_t)R)
    return s->host->error(s->st, "row %lld: the field has %zu row(s)", (long long)row, R);
  for (size_t k = 0; k < V; k++) {
    if (row >= 0) {
      out[k] = tensor_elem_f32(t, (size_t)row * V + k);
      continue;
    }
    double sum = 0;
    size_t n = 0;
    for (size_t r = 0; r < R; r++) {
      float x = tensor_elem_f32(t, r * V + k);
      if (isfinite(x)) sum += x, n++;
    }
    out[k] = n ? (float)(sum / (double)n) : NAN;
  }
  return 0;
}

/* A NIfTI image's first volume (the background). */
static int read_background(fig_state *s, const char *path, float **data, fig_volume *v) {
  char err[768];
  nifti_reader r;
  if (nifti_open_file(&r, path, err, sizeof err)) return s->host->error(s->st, "background: %s", err);
  *data = malloc(r.h.nvox * sizeof **data);
  int rc = 0;
  if (!*data)
    rc = s->host->error(s->st, "out of memory");
  else if (nifti_read_volumes(&r, 1, NULL, r.h.nvox, *data, r.h.nvox, err, sizeof err))
    rc = s->host->error(s->st, "background: %s", err);
  if (!rc) {
    for (int i = 0; i < 3; i++)
      v->dims[i] = r.h.dim[i + 1];
    nifti_affine(&r.h, v->affine);
    v->data = *data;
  }
  nifti_close(&r);
  return rc;
}

static int draw_map(fig_state *s, cairo_t *cr, double w, double h) {
  const myelin_msg *m = s->kept;
  const char *f = field_of(s, m);
  myelin_tensor t;
  if (myelin_msg_tensor(m, f, &t) || t.ndim < 1 || !t.count)
    return s->host->error(s->st, "%s message has no tensor field '%s' to draw", myelin_msg_kind(m), f);
  float *vol = NULL, *row = NULL, *bgdata = NULL;
  fig_volume stat = {0}, bg = {0};
  nifti_grid go = {0};
  int rc = 0;
  if (!myelin_obj_exists(myelin_msg_get(m, "geometry"))) { /* a 3-D array: voxel = mm */
    if (t.ndim != 3)
      return s->host->error(s->st, "a map needs a geometry, or a 3-D field (this one has %d dimensions)",
                            t.ndim);
    size_t n = t.count;
    if (!(vol = malloc(n * sizeof *vol))) return s->host->error(s->st, "out of memory");
    size_t nx = (size_t)t.shape[0], ny = (size_t)t.shape[1], nz = (size_t)t.shape[2];
    for (size_t x = 0; x < nx; x++)
      for (size_t y = 0; y < ny; y++)
        for (size_t z = 0; z < nz; z++)
          vol[x + nx * (y + ny * z)] = tensor_elem_f32(&t, (x * ny + y) * nz + z);
    for (int i = 0; i < 3; i++) {
      stat.dims[i] = t.shape[i];
      stat.affine[i][i] = 1;
    }
    stat.affine[3][3] = 1;
  } else {
    size_t V = (size_t)t.shape[t.ndim - 1];
    char err[1024];
    if (nifti_grid_read(myelin_msg_get(m, "geometry"), myelin_msg_kind(m), "figure", V, &s->atlas, &go, err,
                        sizeof err))
      return s->host->error(s->st, "%s", err);
    size_t n = (size_t)(go.dims[0] * go.dims[1] * go.dims[2]);
    vol = malloc(n * sizeof *vol);
    row = malloc((V ? V : 1) * sizeof *row);
    if (!vol || !row) rc = s->host->error(s->st, "out of memory");
    if (!rc) rc = pick_row(s, &t, myelin_param_int(s->p, "row"), row);
    if (!rc) {
      for (size_t i = 0; i < n; i++)
        vol[i] = NAN;
      nifti_grid_scatter(&go, NULL, row, 0, vol);
      memcpy(stat.dims, go.dims, sizeof stat.dims);
      memcpy(stat.affine, go.affine, sizeof stat.affine);
    }
  }
  stat.data = vol;
  const char *bgpath = myelin_param_str(s->p, "background");
  char *bgp = NULL;
  if (!rc && *bgpath) {
    bgp = myelin_input_path(bgpath, s->host->pipeline_dir(s->st));
    rc = bgp ? read_background(s, bgp, &bgdata, &bg) : s->host->error(s->st, "out of memory");
  }
  if (!rc) {
    fig_map_opts o = {0};
    o.mosaic = !strcmp(myelin_param_str(s->p, "view"), "mosaic");
    o.slices = (int)myelin_param_int(s->p, "slices");
    o.have_cut = myelin_param_len(s->p, "cut") == 3;
    for (int i = 0; i < 3 && o.have_cut; i++)
      o.cut[i] = myelin_param_float_at(s->p, "cut", (size_t)i);
    o.threshold = myelin_param_float(s->p, "threshold");
    o.vmax = myelin_param_float(s->p, "vmax");
    const char *cm = myelin_param_str(s->p, "cmap");
    /* a statistic (a map message, signed values, or a threshold): cold_hot
     * around 0; a raw image (non-negative run/volume/array): grey */
    int signed_values = 0;
    for (size_t i = 0; i < (size_t)(stat.dims[0] * stat.dims[1] * stat.dims[2]) && !signed_values; i++)
      signed_values = vol[i] < 0;
    int statistic = !strcmp(myelin_msg_kind(m), "map") || signed_values || o.threshold > 0;
    o.cmap = *cm ? (fig_cmap)fig_cmap_parse(cm) : statistic ? FIG_COLD_HOT : FIG_GRAY;
    char title[256];
    snprintf(title, sizeof title, "%s", myelin_param_str(s->p, "title"));
    if (!myelin_param_is_set(s->p, "title")) { /* the statistic and its context */
      char stat_name[64], task[64];
      myelin_msg_text(m, "stat", stat_name, sizeof stat_name);
      myelin_msg_text(m, "task", task, sizeof task);
      snprintf(title, sizeof title, "%s%s%s", *stat_name ? stat_name : myelin_msg_kind(m), *task ? " - " : "",
               task);
    }
    o.title = title;
    o.colorbar = myelin_param_bool(s->p, "colorbar");
    fig_draw_map(cr, w, h, &stat, *bgpath ? &bg : NULL, &o, NULL);
  }
  free(bgp);
  free(bgdata);
  free(vol);
  free(row);
  nifti_grid_free(&go);
  return rc;
}

/* The panel key of each series: its name without a train/test/val prefix or
 * suffix, so train_acc and test_acc share a panel. Returns the number of
 * distinct keys (panels), or 0 when out of memory. */
static size_t curve_keys(const fig_state *s, char (*keys)[128]);

/* Panels of curves, about 230 px high each, three to a row. */
static double curves_height(const fig_state *s, double w) {
  char(*keys)[128] = calloc(s->n_ser ? s->n_ser : 1, sizeof *keys);
  size_t np = keys ? curve_keys(s, keys) : s->n_ser;
  free(keys);
  size_t cols = np < 3 ? np : np <= 4 ? 2 : 3, rows = cols ? (np + cols - 1) / cols : 1;
  return fmax(w * 0.4, 46 + 230 * (double)rows);
}

static size_t curve_keys(const fig_state *s, char (*keys)[128]) {
  static const char *const tags[] = {"train_", "test_", "val_", "_train", "_test", "_val"};
  for (size_t i = 0; i < s->n_ser; i++) { /* the key: the name without its split tag */
    const char *n = s->ser[i].name;
    snprintf(keys[i], sizeof keys[i], "%s", n);
    for (size_t t = 0; t < sizeof tags / sizeof *tags; t++) {
      size_t tl = strlen(tags[t]), nl = strlen(n);
      if (tags[t][0] != '_' && !strncmp(n, tags[t], tl) && nl > tl) {
        snprintf(keys[i], sizeof keys[i], "%s", n + tl);
        break;
      }
      if (tags[t][0] == '_' && nl > tl && !strcmp(n + nl - tl, tags[t])) {
        snprintf(keys[i], sizeof keys[i], "%.*s", (int)(nl - tl), n);
        break;
      }
    }
  }
  size_t np = 0;
  for (size_t i = 0; i < s->n_ser; i++) {
    size_t j = 0;
    while (j < i && strcmp(keys[j], keys[i]))
      j++;
    np += j == i;
  }
  return np;
}

static int draw_curves(fig_state *s, cairo_t *cr, double w, double h) {
  fig_panel *panels = calloc(s->n_ser ? s->n_ser : 1, sizeof *panels);
  fig_line *lines = calloc(s->n_ser ? s->n_ser : 1, sizeof *lines);
  char(*keys)[128] = calloc(s->n_ser ? s->n_ser : 1, sizeof *keys);
  if (!panels || !lines || !keys) {
    free(panels), free(lines), free(keys);
    return s->host->error(s->st, "out of memory");
  }
  curve_keys(s, keys);
  size_t np = 0, nl = 0;
  for (size_t i = 0; i < s->n_ser; i++) {
    size_t j = 0;
    while (j < i && strcmp(keys[j], keys[i]))
      j++;
    if (j < i) continue; /* panel made with its first member */
    panels[np].title = keys[i];
    panels[np].lines = &lines[nl];
    for (size_t k = i; k < s->n_ser; k++)
      if (!strcmp(keys[k], keys[i])) {
        lines[nl++] = (fig_line){s->ser[k].name, s->ser[k].x, s->ser[k].y, s->ser[k].n};
        panels[np].n_lines++;
      }
    np++;
  }
  fig_draw_curves(cr, w, h, panels, np, s->have_epoch ? "epoch" : "message", myelin_param_str(s->p, "title"));
  free(panels), free(lines), free(keys);
  return 0;
}

static int draw_raster(fig_state *s, cairo_t *cr, double w, double h) {
  const myelin_msg *m = s->kept;
  uint64_t n, T;
  double dt;
  myelin_tensor st, un;
  if (strcmp(myelin_msg_kind(m), "spikes") || myelin_msg_uint(m, "n", &n) ||
      myelin_msg_uint(m, "steps", &T) || myelin_msg_float(m, "dt", &dt) ||
      myelin_msg_tensor(m, "step", &st) || myelin_msg_tensor(m, "unit", &un) || st.dtype != MYELIN_U4 ||
      un.dtype != MYELIN_U4 || st.count != un.count)
    return s->host->error(s->st, "a raster needs a spikes message (n, steps, dt, step and unit <u4 [E])");
  if (n > UINT32_MAX || T > UINT32_MAX) return s->host->error(s->st, "spikes: n or steps too large");
  char title[256];
  int64_t label;
  snprintf(title, sizeof title, "%s", myelin_param_str(s->p, "title"));
  if (!myelin_param_is_set(s->p, "title")) {
    int n_ = snprintf(title, sizeof title, "spikes: %zu events", st.count);
    if (myelin_msg_int(m, "label", &label) == 0 && n_ > 0 && (size_t)n_ < sizeof title)
      snprintf(title + n_, sizeof title - (size_t)n_, ", label %lld", (long long)label);
  }
  fig_draw_raster(cr, w, h, st.data, un.data, st.count, (uint32_t)n, (uint32_t)T, dt,
                  (uint32_t)myelin_param_int(s->p, "bin"), title);
  return 0;
}

static int draw_matrix(fig_state *s, cairo_t *cr, double w, double h) {
  const char *title = myelin_param_str(s->p, "title");
  const char *cm = myelin_param_str(s->p, "cmap");
  if (!s->kept) { /* confusion matrix */
    double top = 0;
    for (size_t i = 0; i < s->classes * s->classes; i++)
      top = fmax(top, s->conf[i]);
    char def[64];
    snprintf(def, sizeof def, "confusion matrix (epoch %lld)", (long long)s->conf_epoch);
    fig_draw_matrix(cr, w, h, s->conf, s->classes, s->classes, 0, top > 0 ? top : 1,
                    *cm ? (fig_cmap)fig_cmap_parse(cm) : FIG_VIRIDIS, s->classes <= 20, "prediction", "label",
                    myelin_param_is_set(s->p, "title") ? title : def);
    return 0;
  }
  const myelin_msg *m = s->kept;
  const char *f = field_of(s, m);
  myelin_tensor t;
  if (myelin_msg_tensor(m, f, &t) || t.ndim != 2)
    return s->host->error(s->st, "a matrix needs a 2-D tensor field; '%s' of the %s message is not one", f,
                          myelin_msg_kind(m));
  size_t R = (size_t)t.shape[0], C = (size_t)t.shape[1];
  double *a = malloc((t.count ? t.count : 1) * sizeof *a), lo = INFINITY, hi = -INFINITY;
  if (!a) return s->host->error(s->st, "out of memory");
  for (size_t i = 0; i < t.count; i++) {
    a[i] = tensor_elem_f32(&t, i);
    if (isfinite(a[i])) lo = fmin(lo, a[i]), hi = fmax(hi, a[i]);
  }
  if (!isfinite(lo)) lo = 0, hi = 1;
  fig_cmap c = FIG_VIRIDIS;
  if (lo < 0 && hi > 0) { /* signed: a diverging map centred on 0 */
    hi = fmax(-lo, hi);
    lo = -hi;
    c = FIG_RDBU;
  }
  if (myelin_param_float(s->p, "vmax") > 0) {
    hi = myelin_param_float(s->p, "vmax");
    if (c == FIG_RDBU) lo = -hi;
  }
  if (*cm) c = (fig_cmap)fig_cmap_parse(cm);
  char def[128];
  snprintf(def, sizeof def, "%s %s [%zu x %zu]", myelin_msg_kind(m), f, R, C);
  fig_draw_matrix(cr, w, h, a, R, C, lo, hi, c, 0, NULL, NULL,
                  myelin_param_is_set(s->p, "title") ? title : def);
  free(a);
  return 0;
}

/* Default series: the (up to) 5 columns with the largest variance. */
static size_t pick_columns(const myelin_tensor *t, size_t T, size_t V, size_t *cols) {
  size_t k = V < 5 ? V : 5;
  double *var = calloc(V ? V : 1, sizeof *var);
  if (!var) return 0;
  for (size_t j = 0; j < V; j++) {
    double s1 = 0, s2 = 0;
    for (size_t i = 0; i < T; i++) {
      double x = tensor_elem_f32(t, i * V + j);
      if (isfinite(x)) s1 += x, s2 += x * x;
    }
    var[j] = s2 / (double)T - (s1 / (double)T) * (s1 / (double)T);
  }
  for (size_t c = 0; c < k; c++) {
    size_t best = 0;
    for (size_t j = 1; j < V; j++)
      if (var[j] > var[best]) best = j;
    cols[c] = best;
    var[best] = -INFINITY;
  }
  free(var);
  return k;
}

static int draw_series(fig_state *s, cairo_t *cr, double w, double h) {
  const myelin_msg *m = s->kept;
  const char *f = field_of(s, m);
  myelin_tensor t;
  if (myelin_msg_tensor(m, f, &t) || t.ndim < 1 || t.ndim > 2 || !t.count)
    return s->host->error(s->st, "a series needs a 1-D or 2-D tensor field [T] or [T, V]; '%s' is not one",
                          f);
  size_t T = (size_t)t.shape[0], V = t.ndim == 2 ? (size_t)t.shape[1] : 1;
  size_t cols[32], k = myelin_param_len(s->p, "columns");
  if (k > 32) return s->host->error(s->st, "columns: at most 32");
  for (size_t i = 0; i < k; i++) {
    int64_t c = myelin_param_int_at(s->p, "columns", i);
    if (c < 0 || (size_t)c >= V)
      return s->host->error(s->st, "columns[%zu] = %lld: the field has %zu columns", i, (long long)c, V);
    cols[i] = (size_t)c;
  }
  if (!k) k = pick_columns(&t, T, V, cols);
  double *d = malloc((T * k > 0 ? T * k : 1) * sizeof *d);
  char(*names)[96] = calloc(k ? k : 1, sizeof *names);
  const char **np = calloc(k ? k : 1, sizeof *np);
  if (!d || !names || !np) {
    free(d), free(names), free(np);
    return s->host->error(s->st, "out of memory");
  }
  myelin_obj labels = myelin_msg_get(m, "labels");
  myelin_obj g = myelin_msg_get(m, "geometry");
  myelin_tensor vox;
  int64_t dims[3];
  int have_vox = myelin_obj_tensor(myelin_obj_get(g, "voxels"), &vox) == 0 && vox.count == V;
  myelin_obj dl = myelin_obj_get(g, "dims");
  have_vox = have_vox && myelin_obj_len(dl) == 3 && !myelin_obj_int(myelin_obj_at(dl, 0), &dims[0]) &&
             !myelin_obj_int(myelin_obj_at(dl, 1), &dims[1]) &&
             !myelin_obj_int(myelin_obj_at(dl, 2), &dims[2]) && dims[1] > 0 && dims[2] > 0;
  for (size_t j = 0; j < k; j++) {
    for (size_t i = 0; i < T; i++)
      d[i * k + j] = tensor_elem_f32(&t, i * V + cols[j]);
    char lab[80];
    if (myelin_obj_str_copy(myelin_obj_at(labels, cols[j]), lab, sizeof lab) == 0)
      snprintf(names[j], sizeof names[j], "%s", lab);
    else if (have_vox) {
      int64_t c = (int64_t)tensor_elem_f32(&vox, cols[j]);
      snprintf(names[j], sizeof names[j], "voxel (%lld, %lld, %lld)", (long long)(c / (dims[1] * dims[2])),
               (long long)(c / dims[2] % dims[1]), (long long)(c % dims[2]));
    } else
      snprintf(names[j], sizeof names[j], "column %zu", cols[j]);
    np[j] = names[j];
  }
  double tr = 0;
  int have_tr = myelin_msg_float(m, "tr", &tr) == 0 && tr > 0;
  char title[256];
  snprintf(title, sizeof title, "%s", myelin_param_str(s->p, "title"));
  if (!myelin_param_is_set(s->p, "title")) {
    char sub[64], task[64];
    myelin_msg_text(m, "subject", sub, sizeof sub);
    myelin_msg_text(m, "task", task, sizeof task);
    snprintf(title, sizeof title, "%s%s%s%s%s", myelin_msg_kind(m), *sub ? " sub-" : "", sub,
             *task ? " task-" : "", task);
  }
  fig_draw_series(cr, w, h, d, T, k, have_tr ? tr : 1, np, have_tr ? "time (s)" : "sample", title);
  free(d), free(names), free(np);
  return 0;
}

/* ---- output -------------------------------------------------------------- */

static cairo_status_t write_fp(void *closure, const unsigned char *data, unsigned int len) {
  return fwrite(data, 1, len, (FILE *)closure) == len ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

static const char *ext_of(const char *path) {
  const char *dot = strrchr(path, '.');
  return dot && !strchr(dot, '/') ? dot + 1 : "";
}

static int fg_flush(void *state) {
  fig_state *s = state;
  if (s->type == T_AUTO || (s->type == T_CURVES && !s->n_ser) ||
      (s->type == T_MATRIX && !s->kept && !s->classes) ||
      (s->type != T_CURVES && s->type != T_MATRIX && !s->kept)) {
    s->host->log(s->st, MYELIN_LOG_WARN, "wrote nothing to %s: no message to draw arrived", s->path);
    s->committed = 1;
    return 0;
  }
  double w = (double)myelin_param_int(s->p, "width"), h = (double)myelin_param_int(s->p, "height");
  if (!myelin_param_is_set(s->p, "height"))
    h = s->type == T_MAP ? w * 0.4 : s->type == T_CURVES ? curves_height(s, w) : w * 0.62;
  if (s->type == T_MAP && !myelin_param_is_set(s->p, "height") &&
      !strcmp(myelin_param_str(s->p, "view"), "mosaic"))
    h = w * 0.75;
  char err[1024];
  myelin_atomic_file af;
  memset(&af, 0, sizeof af);
  if (myelin_mkdirs_for(s->path, err, sizeof err) || myelin_atomic_open(&af, s->path, err, sizeof err))
    return s->host->error(s->st, "%s", err);
  const char *ext = ext_of(s->path);
  cairo_surface_t *surf = !strcmp(ext, "svg") ? cairo_svg_surface_create_for_stream(write_fp, af.fp, w, h)
                          : !strcmp(ext, "pdf")
                              ? cairo_pdf_surface_create_for_stream(write_fp, af.fp, w, h)
                              : cairo_image_surface_create(CAIRO_FORMAT_ARGB32, (int)w, (int)h);
  cairo_t *cr = cairo_create(surf);
  int rc = s->type == T_MAP      ? draw_map(s, cr, w, h)
           : s->type == T_CURVES ? draw_curves(s, cr, w, h)
           : s->type == T_RASTER ? draw_raster(s, cr, w, h)
           : s->type == T_MATRIX ? draw_matrix(s, cr, w, h)
                                 : draw_series(s, cr, w, h);
  cairo_status_t cst = cairo_status(cr);
  cairo_destroy(cr);
  if (!rc && !strcmp(ext, "png")) cst = cst ? cst : cairo_surface_write_to_png_stream(surf, write_fp, af.fp);
  cairo_surface_finish(surf);
  if (!cst) cst = cairo_surface_status(surf);
  cairo_surface_destroy(surf);
  if (!rc && cst) rc = s->host->error(s->st, "%s: cairo: %s", s->path, cairo_status_to_string(cst));
  if (rc) {
    myelin_atomic_abort(&af);
    return rc;
  }
  if (myelin_atomic_commit(&af, 0, err, sizeof err)) return s->host->error(s->st, "%s", err);
  s->committed = 1;
  s->host->counter_add(s->st, "figures", 1);
  return 0;
}

/* ---- lifecycle ----------------------------------------------------------- */

static int fg_validate(const myelin_params *p, myelin_validate_ctx *ctx) {
  const char *ext = ext_of(myelin_param_str(p, "path"));
  if (strcmp(ext, "png") && strcmp(ext, "svg") && strcmp(ext, "pdf"))
    return myelin_validate_error(ctx, "path", "path must end in .png, .svg or .pdf (got '.%s')", ext);
  const char *cm = myelin_param_str(p, "cmap");
  if (*cm && fig_cmap_parse(cm) < 0)
    return myelin_validate_error(ctx, "cmap", "unknown colour map '%s' (one of %s)", cm, fig_cmap_names());
  size_t nc = myelin_param_len(p, "cut");
  if (nc != 0 && nc != 3)
    return myelin_validate_error(ctx, "cut", "cut is [x, y, z] in mm (or [] for the peak)");
  return 0;
}

static int fg_init(const myelin_host *host, myelin_stage *st, const myelin_params *p, void **state) {
  fig_state *s = calloc(1, sizeof *s);
  if (!s) return MYELIN_ENOMEM;
  s->host = host;
  s->st = st;
  s->p = p;
  s->path = myelin_param_str(p, "path");
  s->type = (fig_type)parse_type(myelin_param_str(p, "type"));
  s->which = myelin_param_int(p, "message");
  char err[1024];
  if (myelin_mkdirs_for(s->path, err, sizeof err) || myelin_check_writable(s->path, err, sizeof err)) {
    free(s);
    *state = NULL;
    return host->error(st, "%s", err);
  }
  *state = s;
  atomic_fetch_add(&live_figures, 1);
  return 0;
}

static void fg_fini(void *state) {
  fig_state *s = state;
  if (!s) return;
  if (!s->committed && s->host->stopping(s->st))
    s->host->log(s->st, MYELIN_LOG_WARN, "discarded %s: the run stopped on an error or abort", s->path);
  myelin_msg_unref(s->kept);
  for (size_t i = 0; i < s->n_ser; i++) {
    free(s->ser[i].name);
    free(s->ser[i].x);
    free(s->ser[i].y);
  }
  free(s->ser);
  free(s->conf);
  nifti_atlas_free(&s->atlas);
  free(s);
  release_fonts();
}

static const myelin_param_def fg_params[] = {
    {.name = "path",
     .type = MYELIN_PARAM_PATH,
     .doc = "Output figure: .png, .svg or .pdf; written under a temporary name and renamed when complete."},
    {.name = "type",
     .type = MYELIN_PARAM_ENUM,
     .def = "auto",
     .choices = "auto|map|curves|raster|matrix|series",
     .doc =
         "auto: from the first message (map/volume/run: map; metrics: curves; spikes: raster; predictions: "
         "confusion matrix; a 2-D tensor field: matrix; 1-D: series; 3-D: map)."},
    {.name = "width",
     .type = MYELIN_PARAM_INT,
     .def = "900",
     .has_range = 1,
     .min = 100,
     .max = 10000,
     .unit = "px",
     .doc = "Figure width (points in SVG/PDF)."},
    {.name = "height",
     .type = MYELIN_PARAM_INT,
     .def = "0",
     .has_range = 1,
     .min = 0,
     .max = 10000,
     .unit = "px",
     .doc = "Figure height; 0: from the width (0.4 x for orthogonal slices, 0.75 x for a mosaic, 0.62 x "
            "otherwise) or, for curves, 230 px per row of panels."},
    {.name = "title",
     .type = MYELIN_PARAM_STRING,
     .def = "",
     .doc = "Title; default: the statistic and task of a map, the kind and context otherwise."},
    {.name = "message",
     .type = MYELIN_PARAM_INT,
     .def = "-1",
     .has_range = 1,
     .min = -1,
     .max = 1e12,
     .doc =
         "Which message a single-message figure (map, raster, matrix of a tensor, series) draws: its number "
         "from 0, or -1 for the last."},
    {.name = "field",
     .type = MYELIN_PARAM_STRING,
     .def = "",
     .doc = "The tensor field to draw; default: summary when the message has one (isc), x for samples, else "
            "data."},
    {.name = "row",
     .type = MYELIN_PARAM_INT,
     .def = "-1",
     .has_range = 1,
     .min = -1,
     .max = 1e9,
     .doc = "Map: which row of a [R, V] field (a subject, a TR); -1: the mean over rows (NaN ignored)."},
    {.name = "view",
     .type = MYELIN_PARAM_ENUM,
     .def = "ortho",
     .choices = "ortho|mosaic",
     .doc = "Map: three orthogonal slices through `cut`, or a mosaic of axial slices."},
    {.name = "cut",
     .type = MYELIN_PARAM_FLOAT_LIST,
     .def = "[]",
     .unit = "mm",
     .doc = "Map: the cut point [x, y, z] in mm (world coordinates); [] = the voxel of largest |value|."},
    {.name = "slices",
     .type = MYELIN_PARAM_INT,
     .def = "12",
     .has_range = 1,
     .min = 1,
     .max = 100,
     .doc = "Mosaic: the number of axial slices, evenly spaced over the grid."},
    {.name = "threshold",
     .type = MYELIN_PARAM_FLOAT,
     .def = "0",
     .has_range = 1,
     .min = 0,
     .max = 1e30,
     .doc = "Map: values with |v| <= threshold are not drawn (the background shows)."},
    {.name = "vmax",
     .type = MYELIN_PARAM_FLOAT,
     .def = "0",
     .has_range = 1,
     .min = 0,
     .max = 1e30,
     .doc = "Colour range [-vmax, vmax] (maps, signed matrices) or [0, vmax]; 0 = the largest |value|."},
    {.name = "cmap",
     .type = MYELIN_PARAM_STRING,
     .def = "",
     .doc =
         "Colour map: cold_hot (default for map messages, signed values or a threshold), gray (default for "
         "other images: non-negative runs, volumes, arrays), hot, viridis "
         "(non-negative matrices, default), rdbu (signed matrices, default)."},
    {.name = "colorbar", .type = MYELIN_PARAM_BOOL, .def = "true", .doc = "Map: draw the colour bar."},
    {.name = "background",
     .type = MYELIN_PARAM_INPUT_PATH,
     .def = "",
     .doc = "Map: an anatomical NIfTI image drawn in grey under the map (its own grid and affine)."},
    {.name = "values",
     .type = MYELIN_PARAM_STRING_LIST,
     .def = "[]",
     .doc =
         "Curves: the metrics values to draw; [] = all. train_X/test_X (or X_train/X_test) share a panel."},
    {.name = "bin",
     .type = MYELIN_PARAM_INT,
     .def = "0",
     .has_range = 1,
     .min = 0,
     .max = 1e9,
     .unit = "steps",
     .doc = "Raster: the rate histogram's bin; 0 = steps / 50."},
    {.name = "columns",
     .type = MYELIN_PARAM_INT_LIST,
     .def = "[]",
     .doc = "Series: the columns (voxels/parcels) to draw, at most 32; [] = the 5 of largest variance."},
    {0}};

static const myelin_port_def fg_inputs[] = {
    {.name = "in", .kinds = "*", .doc = "map, volume, run, metrics, spikes, predictions, tensor, sample"},
    {0}};

static const myelin_plugin_desc fg_desc = {
    MYELIN_DESC_HEADER,
    .name = "figure",
    .version = "1.0.0",
    .summary = "draw a PNG/SVG/PDF figure: brain map, learning curves, spike raster, matrix, time series",
    .doc =
        "One figure per stage, drawn at end of stream with cairo. Brain maps follow nilearn's plot_stat_map: "
        "orthogonal slices (or a mosaic) through the peak, the cut's mm coordinates, L/R marks (left on the "
        "left), a symmetric cold_hot colour bar, an optional anatomical background. Curves gather every "
        "metrics message (one panel per value, train and test together); a confusion matrix counts the "
        "predictions messages of the last epoch; the other figures draw one message (`message`). `myelin "
        "plot FILE -o OUT` "
        "runs this stage on a .mpk, .nii(.gz) or .npy file.",
    .params = fg_params,
    .inputs = fg_inputs,
    .validate = fg_validate,
    .init = fg_init,
    .process = fg_process,
    .flush = fg_flush,
    .fini = fg_fini,
};

MYELIN_PLUGIN(fg_desc)
