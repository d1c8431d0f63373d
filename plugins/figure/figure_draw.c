/*
 * figure_draw.c — the figures, drawn with cairo (figure_draw.h).
 *
 * Images (map slices, matrices) are small cairo image surfaces with one
 * pixel per voxel or cell, painted through a pattern matrix that maps the
 * figure's coordinates (mm for maps) onto them, with the nearest filter for
 * data and the bilinear one for an anatomical background: cairo resamples,
 * and SVG/PDF output keeps them as embedded images instead of thousands of
 * rectangles. Axes, ticks, lines, dots and text are cairo paths.
 */
#include "figure_draw.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- colours ------------------------------------------------------------- */

typedef struct stop {
  double t, r, g, b;
} stop;

/* nilearn's cold_hot: matplotlib's `hot` above the middle, its mirror in
 * blue and cyan below, black in the middle. */
static const stop cold_hot[] = {{0.0, 0.85, 1.0, 1.0}, {0.125, 0.0, 1.0, 1.0},  {0.3125, 0.0, 0.0, 1.0},
                                {0.5, 0.0, 0.0, 0.0},  {0.6875, 1.0, 0.0, 0.0}, {0.875, 1.0, 1.0, 0.0},
                                {1.0, 1.0, 1.0, 0.85}};
static const stop hot[] = {
    {0.0, 0.04, 0.0, 0.0}, {0.365, 1.0, 0.0, 0.0}, {0.746, 1.0, 1.0, 0.0}, {1.0, 1.0, 1.0, 1.0}};
static const stop viridis[] = {
    {0.0, 0.267, 0.005, 0.329},   {0.125, 0.283, 0.141, 0.458}, {0.25, 0.254, 0.265, 0.530},
    {0.375, 0.207, 0.372, 0.553}, {0.5, 0.164, 0.471, 0.558},   {0.625, 0.128, 0.567, 0.551},
    {0.75, 0.135, 0.659, 0.518},  {0.875, 0.478, 0.821, 0.318}, {1.0, 0.993, 0.906, 0.144}};
static const stop rdbu[] = {{0.0, 0.020, 0.188, 0.380},
                            {0.25, 0.263, 0.576, 0.765},
                            {0.5, 0.969, 0.969, 0.969},
                            {0.75, 0.839, 0.376, 0.302},
                            {1.0, 0.404, 0.0, 0.122}};
static const stop gray[] = {{0.0, 0.0, 0.0, 0.0}, {1.0, 1.0, 1.0, 1.0}};

static const struct {
  const char *name;
  const stop *s;
  size_t n;
} cmaps[] = {[FIG_COLD_HOT] = {"cold_hot", cold_hot, sizeof cold_hot / sizeof *cold_hot},
             [FIG_HOT] = {"hot", hot, sizeof hot / sizeof *hot},
             [FIG_VIRIDIS] = {"viridis", viridis, sizeof viridis / sizeof *viridis},
             [FIG_RDBU] = {"rdbu", rdbu, sizeof rdbu / sizeof *rdbu},
             [FIG_GRAY] = {"gray", gray, sizeof gray / sizeof *gray}};

int fig_cmap_parse(const char *name) {
  for (int i = 0; i < (int)(sizeof cmaps / sizeof *cmaps); i++)
    if (!strcmp(name, cmaps[i].name)) return i;
  return -1;
}

const char *fig_cmap_names(void) { return "cold_hot|hot|viridis|rdbu|gray"; }

void fig_cmap_rgb(fig_cmap c, double t, double rgb[3]) {
  const stop *s = cmaps[c].s;
  size_t n = cmaps[c].n;
  if (!(t > 0)) t = 0; /* NaN too */
  if (t > 1) t = 1;
  size_t i = 1;
  while (i < n - 1 && s[i].t < t)
    i++;
  double f = (t - s[i - 1].t) / (s[i].t - s[i - 1].t);
  rgb[0] = s[i - 1].r + f * (s[i].r - s[i - 1].r);
  rgb[1] = s[i - 1].g + f * (s[i].g - s[i - 1].g);
  rgb[2] = s[i - 1].b + f * (s[i].b - s[i - 1].b);
}

/* Tab10, the matplotlib default line colours. */
static const double tab10[10][3] = {{0.122, 0.467, 0.706}, {1.0, 0.498, 0.055},   {0.173, 0.627, 0.173},
                                    {0.839, 0.153, 0.157}, {0.580, 0.404, 0.741}, {0.549, 0.337, 0.294},
                                    {0.890, 0.467, 0.761}, {0.498, 0.498, 0.498}, {0.737, 0.741, 0.133},
                                    {0.090, 0.745, 0.812}};

static void set_line_colour(cairo_t *cr, size_t i) {
  cairo_set_source_rgb(cr, tab10[i % 10][0], tab10[i % 10][1], tab10[i % 10][2]);
}

/* ---- text ---------------------------------------------------------------- */

/* Text with its anchor at (x, y): ax 0 left, 0.5 centre, 1 right; ay 0 top,
 * 0.5 middle, 1 baseline. */
static void text_at(cairo_t *cr, double x, double y, double size, double ax, double ay, const char *s) {
  if (!s || !*s) return;
  cairo_set_font_size(cr, size);
  cairo_text_extents_t e;
  cairo_text_extents(cr, s, &e);
  double cap = size * 0.72; /* height of capitals above the baseline */
  cairo_move_to(cr, x - ax * e.x_advance, y + (1 - ay) * cap);
  cairo_show_text(cr, s);
}

/* White text with a dark outline, legible over any part of a map. */
static void text_outlined(cairo_t *cr, double x, double y, double size, double ax, double ay, const char *s) {
  cairo_set_font_size(cr, size);
  cairo_text_extents_t e;
  cairo_text_extents(cr, s, &e);
  cairo_move_to(cr, x - ax * e.x_advance, y + (1 - ay) * size * 0.72);
  cairo_text_path(cr, s);
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_set_line_width(cr, 3);
  cairo_stroke_preserve(cr);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_fill(cr);
}

static void text_vertical(cairo_t *cr, double x, double y, double size, const char *s) {
  cairo_save(cr);
  cairo_translate(cr, x, y);
  cairo_rotate(cr, -M_PI / 2);
  text_at(cr, 0, 0, size, 0.5, 0.5, s);
  cairo_restore(cr);
}

static void fmt_num(char *buf, size_t n, double v) {
  if (v == 0)
    snprintf(buf, n, "0");
  else if (fabs(v) >= 1e4 || fabs(v) < 1e-3)
    snprintf(buf, n, "%.4g", v);
  else
    snprintf(buf, n, "%.3g", v);
}

static void fonts(cairo_t *cr) {
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
}

/* ---- axes ---------------------------------------------------------------- */

/* A "nice" tick step giving about `want` ticks over [lo, hi]. */
static double nice_step(double lo, double hi, int want) {
  double span = hi - lo;
  if (!(span > 0)) return 1;
  double raw = span / want, mag = pow(10, floor(log10(raw))), f = raw / mag;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

typedef struct axes {
  double x0, y0, w, h;           /* plot box in device units */
  double xmin, xmax, ymin, ymax; /* data range */
} axes;

static double ax_x(const axes *a, double x) { return a->x0 + (x - a->xmin) / (a->xmax - a->xmin) * a->w; }
static double ax_y(const axes *a, double y) {
  return a->y0 + a->h - (y - a->ymin) / (a->ymax - a->ymin) * a->h;
}

/* Widens a degenerate or empty range. */
static void fix_range(double *lo, double *hi) {
  if (!isfinite(*lo) || !isfinite(*hi)) *lo = 0, *hi = 1;
  if (*hi <= *lo) {
    double c = *lo, d = fabs(c) > 0 ? fabs(c) * 0.1 : 0.5;
    *lo = c - d;
    *hi = c + d;
  }
}

/* Frame, grid, ticks and labels of a plot box. */
static void draw_axes(cairo_t *cr, const axes *a, const char *xlabel, const char *ylabel, const char *title) {
  double fs = 11;
  cairo_set_line_width(cr, 1);
  char buf[32];
  double st = nice_step(a->xmin, a->xmax, (int)fmax(2, fmin(8, a->w / 70)));
  for (double v = ceil(a->xmin / st) * st; v <= a->xmax + st * 1e-9; v += st) {
    double x = ax_x(a, v);
    cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
    cairo_move_to(cr, x, a->y0);
    cairo_line_to(cr, x, a->y0 + a->h);
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    fmt_num(buf, sizeof buf, fabs(v) < st * 1e-9 ? 0 : v);
    text_at(cr, x, a->y0 + a->h + 5, fs, 0.5, 0, buf);
  }
  st = nice_step(a->ymin, a->ymax, (int)fmax(2, fmin(6, a->h / 35)));
  for (double v = ceil(a->ymin / st) * st; v <= a->ymax + st * 1e-9; v += st) {
    double y = ax_y(a, v);
    cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
    cairo_move_to(cr, a->x0, y);
    cairo_line_to(cr, a->x0 + a->w, y);
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    fmt_num(buf, sizeof buf, fabs(v) < st * 1e-9 ? 0 : v);
    text_at(cr, a->x0 - 5, y, fs, 1, 0.5, buf);
  }
  cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
  cairo_rectangle(cr, a->x0, a->y0, a->w, a->h);
  cairo_stroke(cr);
  text_at(cr, a->x0 + a->w / 2, a->y0 + a->h + 22, fs + 1, 0.5, 0, xlabel);
  if (ylabel && *ylabel) text_vertical(cr, a->x0 - 48, a->y0 + a->h / 2, fs + 1, ylabel);
  text_at(cr, a->x0 + a->w / 2, a->y0 - 8, fs + 2, 0.5, 1, title);
}

/* A legend box in the bottom-right corner of a plot: the names of lines
 * (or of names[]), each with its line colour. */
static void legend(cairo_t *cr, const axes *a, const fig_line *lines, size_t n, const char *const *names) {
  double wmax = 0;
  cairo_set_font_size(cr, 11);
  for (size_t i = 0; i < n; i++) {
    cairo_text_extents_t e;
    const char *s = lines ? lines[i].name : names ? names[i] : "";
    cairo_text_extents(cr, s ? s : "", &e);
    wmax = fmax(wmax, e.x_advance);
  }
  double bw = wmax + 32, bh = 16 * (double)n + 6, x = a->x0 + a->w - bw - 6, y = a->y0 + a->h - bh - 6;
  cairo_set_source_rgba(cr, 1, 1, 1, 0.85);
  cairo_rectangle(cr, x, y, bw, bh);
  cairo_fill_preserve(cr);
  cairo_set_source_rgb(cr, 0.8, 0.8, 0.8);
  cairo_set_line_width(cr, 1);
  cairo_stroke(cr);
  for (size_t i = 0; i < n; i++) {
    double ly = y + 11 + 16 * (double)i;
    set_line_colour(cr, i);
    cairo_rectangle(cr, x + 6, ly - 4, 14, 8);
    cairo_fill(cr);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    text_at(cr, x + 26, ly, 11, 0, 0.5, lines ? lines[i].name : names ? names[i] : NULL);
  }
}

static void white(cairo_t *cr, double w, double h) {
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_rectangle(cr, 0, 0, w, h);
  cairo_fill(cr);
}

static void figure_title(cairo_t *cr, double w, const char *title, double r, double g, double b) {
  if (!title || !*title) return;
  cairo_set_source_rgb(cr, r, g, b);
  text_at(cr, w / 2, 8, 16, 0.5, 0, title);
}

/* A vertical colour bar in (x, y, bw, bh) for [lo, hi]; text in colour fg. */
static void colour_bar(cairo_t *cr, double x, double y, double bw, double bh, fig_cmap c, double lo,
                       double hi, double threshold, const double fg[3]) {
  cairo_pattern_t *g = cairo_pattern_create_linear(0, y + bh, 0, y);
  for (int i = 0; i <= 64; i++) {
    double rgb[3], t = i / 64.0, v = lo + t * (hi - lo);
    fig_cmap_rgb(c, t, rgb);
    if (threshold > 0 && fabs(v) <= threshold) rgb[0] = rgb[1] = rgb[2] = 0.5; /* not drawn on the map */
    cairo_pattern_add_color_stop_rgb(g, t, rgb[0], rgb[1], rgb[2]);
  }
  cairo_rectangle(cr, x, y, bw, bh);
  cairo_set_source(cr, g);
  cairo_fill(cr);
  cairo_pattern_destroy(g);
  cairo_set_source_rgb(cr, fg[0], fg[1], fg[2]);
  cairo_set_line_width(cr, 1);
  cairo_rectangle(cr, x, y, bw, bh);
  cairo_stroke(cr);
  char buf[32];
  double st = nice_step(lo, hi, 4);
  for (double v = ceil(lo / st - 1e-9) * st; v <= hi + st * 1e-9; v += st) {
    double ty = y + bh - (v - lo) / (hi - lo) * bh;
    cairo_move_to(cr, x + bw, ty);
    cairo_line_to(cr, x + bw + 4, ty);
    cairo_stroke(cr);
    fmt_num(buf, sizeof buf, fabs(v) < st * 1e-9 ? 0 : v);
    text_at(cr, x + bw + 7, ty, 11, 0, 0.5, buf);
  }
}

/* ---- brain maps ---------------------------------------------------------- */

/* How a volume's voxel axes show the world axes. */
typedef struct vox_axes {
  int ax[3];           /* world axis a is shown along voxel axis ax[a] */
  double step[3];      /* mm per voxel along world axis a (signed) */
  double lo[3], hi[3]; /* world extent along a (voxel edges) */
} vox_axes;

static void vox_axes_of(const fig_volume *v, vox_axes *va) {
  int used[3] = {0, 0, 0};
  for (int a = 0; a < 3; a++) {
    int best = -1;
    for (int j = 0; j < 3; j++)
      if (!used[j] && (best < 0 || fabs(v->affine[a][j]) > fabs(v->affine[a][best]))) best = j;
    used[best] = 1;
    va->ax[a] = best;
    va->step[a] = v->affine[a][best] != 0 ? v->affine[a][best] : 1;
    double e0 = v->affine[a][3] - 0.5 * va->step[a];
    double e1 = v->affine[a][3] + ((double)v->dims[best] - 0.5) * va->step[a];
    va->lo[a] = fmin(e0, e1);
    va->hi[a] = fmax(e0, e1);
  }
}

/* The voxel index along world axis a nearest to mm (clamped), ignoring the
 * other axes' (small) contributions, as a slice viewer does. */
static int64_t vox_index(const fig_volume *v, const vox_axes *va, int a, double mm) {
  double i = (mm - v->affine[a][3]) / va->step[a];
  int64_t k = (int64_t)llround(i), n = v->dims[va->ax[a]];
  return k < 0 ? 0 : k >= n ? n - 1 : k;
}

static int64_t vox_offset(const fig_volume *v, const int64_t idx[3]) {
  return idx[0] + v->dims[0] * (idx[1] + v->dims[1] * idx[2]);
}

typedef enum { PIX_STAT, PIX_BG, PIX_MASK } pix_mode;

typedef struct pix_style {
  pix_mode mode;
  fig_cmap cmap;
  double lo, hi, threshold;
} pix_style;

/* The slice of v at world axis c = mm, showing world axes u (horizontal) and
 * w (vertical), painted in the current user space (mm). */
static void paint_slice(cairo_t *cr, const fig_volume *v, int u, int w, int c, double mm,
                        const pix_style *ps) {
  vox_axes va;
  vox_axes_of(v, &va);
  int nu = (int)v->dims[va.ax[u]], nw = (int)v->dims[va.ax[w]];
  cairo_surface_t *img = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, nu, nw);
  if (cairo_surface_status(img) != CAIRO_STATUS_SUCCESS) {
    cairo_surface_destroy(img);
    return;
  }
  cairo_surface_flush(img);
  unsigned char *px = cairo_image_surface_get_data(img);
  int stride = cairo_image_surface_get_stride(img);
  int64_t idx[3];
  idx[va.ax[c]] = vox_index(v, &va, c, mm);
  for (int j = 0; j < nw; j++) {
    uint32_t *row = (uint32_t *)(px + (size_t)j * (size_t)stride);
    for (int i = 0; i < nu; i++) {
      idx[va.ax[u]] = i;
      idx[va.ax[w]] = j;
      float x = v->data[vox_offset(v, idx)];
      uint32_t argb = 0; /* transparent */
      if (isfinite(x)) {
        double rgb[3] = {0.22, 0.22, 0.22};
        int draw = 1;
        if (ps->mode == PIX_STAT) {
          draw = fabs(x) > ps->threshold;
          fig_cmap_rgb(ps->cmap, (x - ps->lo) / (ps->hi - ps->lo), rgb);
        } else if (ps->mode == PIX_BG) {
          double t = (x - ps->lo) / (ps->hi - ps->lo);
          draw = x != 0;
          rgb[0] = rgb[1] = rgb[2] = t < 0 ? 0 : t > 1 ? 1 : t;
        }
        if (draw)
          argb = 0xff000000u | (uint32_t)lrint(rgb[0] * 255) << 16 | (uint32_t)lrint(rgb[1] * 255) << 8 |
                 (uint32_t)lrint(rgb[2] * 255);
      }
      row[i] = argb;
    }
  }
  cairo_surface_mark_dirty(img);
  /* user space (mm) -> pixel space: pixel i covers voxel i's centre +- 0.5 */
  double ou = v->affine[u][3], ow = v->affine[w][3];
  cairo_pattern_t *pat = cairo_pattern_create_for_surface(img);
  cairo_matrix_t m;
  cairo_matrix_init(&m, 1 / va.step[u], 0, 0, 1 / va.step[w], -ou / va.step[u] + 0.5, -ow / va.step[w] + 0.5);
  cairo_pattern_set_matrix(pat, &m);
  cairo_pattern_set_filter(pat, ps->mode == PIX_BG ? CAIRO_FILTER_GOOD : CAIRO_FILTER_NEAREST);
  cairo_pattern_set_extend(pat, CAIRO_EXTEND_NONE);
  cairo_set_source(cr, pat);
  cairo_rectangle(cr, va.lo[u], va.lo[w], va.hi[u] - va.lo[u], va.hi[w] - va.lo[w]);
  cairo_fill(cr);
  cairo_pattern_destroy(pat);
  cairo_surface_destroy(img);
}

static int cmp_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

/* The 2nd and 98th percentiles of the non-zero finite values (a background's
 * grey range, robust to a few bright voxels). */
static void bg_range(const fig_volume *bg, double *lo, double *hi) {
  size_t n = (size_t)(bg->dims[0] * bg->dims[1] * bg->dims[2]), m = 0;
  float *v = malloc((n ? n : 1) * sizeof *v);
  *lo = 0;
  *hi = 1;
  if (!v) return;
  for (size_t i = 0; i < n; i++)
    if (isfinite(bg->data[i]) && bg->data[i] != 0) v[m++] = bg->data[i];
  if (m) {
    qsort(v, m, sizeof *v, cmp_float);
    *lo = v[(size_t)(0.02 * (double)(m - 1))];
    *hi = v[(size_t)(0.98 * (double)(m - 1))];
  }
  if (!(*hi > *lo)) *hi = *lo + 1;
  free(v);
}

/* The world position of the voxel with the largest |value|. */
static void peak_mm(const fig_volume *v, double mm[3]) {
  size_t n = (size_t)(v->dims[0] * v->dims[1] * v->dims[2]), best = 0;
  float bv = -1;
  for (size_t i = 0; i < n; i++)
    if (isfinite(v->data[i]) && fabsf(v->data[i]) > bv) bv = fabsf(v->data[i]), best = i;
  double ijk[3] = {(double)(best % (size_t)v->dims[0]),
                   (double)(best / (size_t)v->dims[0] % (size_t)v->dims[1]),
                   (double)(best / (size_t)(v->dims[0] * v->dims[1]))};
  for (int a = 0; a < 3; a++)
    mm[a] = v->affine[a][0] * ijk[0] + v->affine[a][1] * ijk[1] + v->affine[a][2] * ijk[2] + v->affine[a][3];
}

typedef struct panel_box {
  int u, w, c;   /* world axes shown horizontally, vertically, and cut */
  double x0, y0; /* top-left in device units */
  double scale;  /* device units per mm */
  double ulo, uhi, wlo, whi;
} panel_box;

/* One slice panel: background, stat, cross and labels. */
static void draw_panel(cairo_t *cr, const panel_box *pb, const fig_volume *stat, const fig_volume *bg,
                       const pix_style *stat_style, const pix_style *bg_style, const double cut[3], int cross,
                       int lr) {
  static const char axis_name[3] = {'x', 'y', 'z'};
  cairo_save(cr);
  cairo_rectangle(cr, pb->x0, pb->y0, (pb->uhi - pb->ulo) * pb->scale, (pb->whi - pb->wlo) * pb->scale);
  cairo_clip(cr);
  cairo_translate(cr, pb->x0 - pb->ulo * pb->scale, pb->y0 + pb->whi * pb->scale);
  cairo_scale(cr, pb->scale, -pb->scale); /* mm, with w up */
  if (bg)
    paint_slice(cr, bg, pb->u, pb->w, pb->c, cut[pb->c], bg_style);
  else {
    pix_style mask = {PIX_MASK, FIG_GRAY, 0, 1, 0};
    paint_slice(cr, stat, pb->u, pb->w, pb->c, cut[pb->c], &mask);
  }
  paint_slice(cr, stat, pb->u, pb->w, pb->c, cut[pb->c], stat_style);
  if (cross) {
    cairo_set_source_rgba(cr, 0.6, 0.6, 0.6, 0.8);
    cairo_set_line_width(cr, 1 / pb->scale);
    cairo_move_to(cr, cut[pb->u], pb->wlo);
    cairo_line_to(cr, cut[pb->u], pb->whi);
    cairo_move_to(cr, pb->ulo, cut[pb->w]);
    cairo_line_to(cr, pb->uhi, cut[pb->w]);
    cairo_stroke(cr);
  }
  cairo_restore(cr);
  char buf[48];
  snprintf(buf, sizeof buf, "%c=%d", axis_name[pb->c], (int)lround(cut[pb->c]));
  double ph = (pb->whi - pb->wlo) * pb->scale, pw = (pb->uhi - pb->ulo) * pb->scale;
  text_outlined(cr, pb->x0 + 4, pb->y0 + ph - 4, 13, 0, 1, buf);
  if (lr) { /* u is world x: left hemisphere (x < 0) on the left */
    text_outlined(cr, pb->x0 + 4, pb->y0 + 4, 14, 0, 0, "L");
    text_outlined(cr, pb->x0 + pw - 4, pb->y0 + 4, 14, 1, 0, "R");
  }
}

void fig_draw_map(cairo_t *cr, double w, double h, const fig_volume *stat, const fig_volume *bg,
                  const fig_map_opts *o, double cut_out[3]) {
  fonts(cr);
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_rectangle(cr, 0, 0, w, h);
  cairo_fill(cr);
  size_t n = (size_t)(stat->dims[0] * stat->dims[1] * stat->dims[2]);
  double vmax = o->vmax;
  if (!(vmax > 0)) {
    vmax = 0;
    for (size_t i = 0; i < n; i++)
      if (isfinite(stat->data[i]) && fabs(stat->data[i]) > vmax) vmax = fabs(stat->data[i]);
    if (!(vmax > 0)) vmax = 1;
  }
  pix_style ss = {PIX_STAT, o->cmap, -vmax, vmax, o->threshold};
  if (o->cmap == FIG_HOT || o->cmap == FIG_VIRIDIS || o->cmap == FIG_GRAY) ss.lo = fmax(0, o->threshold);
  pix_style bs = {PIX_BG, FIG_GRAY, 0, 1, 0};
  if (bg) bg_range(bg, &bs.lo, &bs.hi);
  double cut[3];
  if (o->have_cut)
    memcpy(cut, o->cut, sizeof cut);
  else
    peak_mm(stat, cut);
  if (cut_out) memcpy(cut_out, cut, sizeof cut);
  vox_axes va;
  vox_axes_of(bg ? bg : stat, &va);
  double top = (o->title && *o->title) ? 32 : 8, bar = o->colorbar ? 80 : 8;
  double aw = w - bar - 8, ah = h - top - 8;
  static const double fg[3] = {1, 1, 1};
  figure_title(cr, w, o->title, 1, 1, 1);
  if (!o->mosaic) {
    /* sagittal (y, z | x), coronal (x, z | y), axial (x, y | z), one scale */
    static const int uw[3][3] = {{1, 2, 0}, {0, 2, 1}, {0, 1, 2}};
    double sumw = 0, maxh = 0;
    for (int p = 0; p < 3; p++) {
      sumw += va.hi[uw[p][0]] - va.lo[uw[p][0]];
      maxh = fmax(maxh, va.hi[uw[p][1]] - va.lo[uw[p][1]]);
    }
    double gap = 6, scale = fmin((aw - 2 * gap) / sumw, ah / maxh);
    double x = 8 + (aw - 2 * gap - sumw * scale) / 2;
    for (int p = 0; p < 3; p++) {
      panel_box pb = {uw[p][0],        uw[p][1],        uw[p][2],       x, 0, scale, va.lo[uw[p][0]],
                      va.hi[uw[p][0]], va.lo[uw[p][1]], va.hi[uw[p][1]]};
      pb.y0 = top + (ah - (pb.whi - pb.wlo) * scale) / 2;
      draw_panel(cr, &pb, stat, bg, &ss, &bs, cut, 1, p > 0);
      x += (pb.uhi - pb.ulo) * scale + gap;
    }
  } else {
    /* axial slices spread over the z extent of the covered voxels */
    vox_axes sa;
    vox_axes_of(stat, &sa);
    double zlo = sa.lo[2] + 0.5 * fabs(sa.step[2]), zhi = sa.hi[2] - 0.5 * fabs(sa.step[2]);
    int k = o->slices > 0 ? o->slices : 12;
    if (k > stat->dims[sa.ax[2]]) k = (int)stat->dims[sa.ax[2]]; /* no slice twice */
    double pw = va.hi[0] - va.lo[0], ph = va.hi[1] - va.lo[1];
    int best_cols = 1;
    double best_scale = 0;
    for (int cols = 1; cols <= k; cols++) {
      int rows = (k + cols - 1) / cols;
      double s = fmin(aw / (cols * pw), ah / (rows * ph));
      if (s > best_scale) best_scale = s, best_cols = cols;
    }
    int rows = (k + best_cols - 1) / best_cols;
    double x0 = 8 + (aw - best_cols * pw * best_scale) / 2, y0 = top + (ah - rows * ph * best_scale) / 2;
    for (int i = 0; i < k; i++) {
      double z = k == 1 ? cut[2] : zlo + (zhi - zlo) * i / (k - 1);
      double c3[3] = {cut[0], cut[1], z};
      panel_box pb = {0,
                      1,
                      2,
                      x0 + (i % best_cols) * pw * best_scale,
                      y0 + (i / best_cols) * ph * best_scale,
                      best_scale,
                      va.lo[0],
                      va.hi[0],
                      va.lo[1],
                      va.hi[1]};
      draw_panel(cr, &pb, stat, bg, &ss, &bs, c3, 0, i == 0);
    }
  }
  if (o->colorbar)
    colour_bar(cr, w - bar + 8, top + ah * 0.15, 16, ah * 0.7, o->cmap, ss.lo, ss.hi, o->threshold, fg);
}

/* ---- learning curves ----------------------------------------------------- */

void fig_draw_curves(cairo_t *cr, double w, double h, const fig_panel *panels, size_t n_panels,
                     const char *xlabel, const char *title) {
  fonts(cr);
  white(cr, w, h);
  figure_title(cr, w, title, 0, 0, 0);
  if (!n_panels) return;
  size_t cols = n_panels < 3 ? n_panels : n_panels <= 4 ? 2 : 3;
  size_t rows = (n_panels + cols - 1) / cols;
  double top = (title && *title) ? 36 : 10, cw = w / (double)cols, ch = (h - top) / (double)rows;
  for (size_t p = 0; p < n_panels; p++) {
    const fig_panel *pn = &panels[p];
    axes a = {cw * (double)(p % cols) + 62,
              top + ch * (double)(p / cols) + 26,
              cw - 80,
              ch - 80,
              INFINITY,
              -INFINITY,
              INFINITY,
              -INFINITY};
    for (size_t l = 0; l < pn->n_lines; l++)
      for (size_t i = 0; i < pn->lines[l].n; i++)
        if (isfinite(pn->lines[l].y[i])) {
          a.xmin = fmin(a.xmin, pn->lines[l].x[i]);
          a.xmax = fmax(a.xmax, pn->lines[l].x[i]);
          a.ymin = fmin(a.ymin, pn->lines[l].y[i]);
          a.ymax = fmax(a.ymax, pn->lines[l].y[i]);
        }
    fix_range(&a.xmin, &a.xmax);
    fix_range(&a.ymin, &a.ymax);
    double pad = (a.ymax - a.ymin) * 0.05;
    a.ymin -= pad;
    a.ymax += pad;
    draw_axes(cr, &a, xlabel, NULL, pn->title);
    cairo_save(cr);
    cairo_rectangle(cr, a.x0, a.y0, a.w, a.h);
    cairo_clip(cr);
    for (size_t l = 0; l < pn->n_lines; l++) {
      const fig_line *ln = &pn->lines[l];
      set_line_colour(cr, l);
      cairo_set_line_width(cr, 2);
      int pen = 0;
      for (size_t i = 0; i < ln->n; i++) {
        if (!isfinite(ln->y[i])) {
          pen = 0;
          continue;
        }
        double x = ax_x(&a, ln->x[i]), y = ax_y(&a, ln->y[i]);
        if (pen)
          cairo_line_to(cr, x, y);
        else
          cairo_move_to(cr, x, y);
        pen = 1;
      }
      cairo_stroke(cr);
      for (size_t i = 0; i < ln->n; i++) /* markers */
        if (isfinite(ln->y[i])) {
          cairo_arc(cr, ax_x(&a, ln->x[i]), ax_y(&a, ln->y[i]), 3, 0, 2 * M_PI);
          cairo_fill(cr);
        }
    }
    cairo_restore(cr);
    if (pn->n_lines > 1) legend(cr, &a, pn->lines, pn->n_lines, NULL);
  }
}

/* ---- spike raster -------------------------------------------------------- */

void fig_draw_raster(cairo_t *cr, double w, double h, const uint32_t *step, const uint32_t *unit, size_t E,
                     uint32_t n, uint32_t T, double dt, uint32_t bin, const char *title) {
  fonts(cr);
  white(cr, w, h);
  figure_title(cr, w, title, 0, 0, 0);
  double top = (title && *title) ? 40 : 16, ms = dt * 1000;
  double tmax = (T ? T : 1) * ms;
  double H = h - top - 60;
  axes r = {70, top, w - 100, H * 0.68, 0, tmax, -0.5, (n ? n : 1) - 0.5};
  axes hs = {70, top + H * 0.68 + 40, w - 100, H * 0.32 - 40 + 20, 0, tmax, 0, 1};
  draw_axes(cr, &r, NULL, "unit", NULL);
  /* dots: one small rectangle per event, one fill */
  double dw = fmax(1.0, fmin(3.0, r.w / (T ? T : 1) * 0.8)),
         dh = fmax(1.0, fmin(4.0, r.h / (n ? n : 1) * 0.8));
  cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
  for (size_t e = 0; e < E; e++)
    cairo_rectangle(cr, ax_x(&r, (step[e] + 0.5) * ms) - dw / 2, ax_y(&r, unit[e]) - dh / 2, dw, dh);
  cairo_fill(cr);
  /* population rate per bin */
  if (!bin) bin = T > 50 ? T / 50 : 1;
  size_t nb = ((size_t)T + bin - 1) / bin;
  double *rate = calloc(nb ? nb : 1, sizeof *rate), top_rate = 0;
  if (!rate) return;
  for (size_t e = 0; e < E; e++)
    if (step[e] < T) rate[step[e] / bin] += 1;
  for (size_t b = 0; b < nb; b++) {
    double width = (b + 1 == nb ? T - b * bin : bin) * dt;
    rate[b] = rate[b] / ((n ? n : 1) * width);
    top_rate = fmax(top_rate, rate[b]);
  }
  hs.ymax = top_rate > 0 ? top_rate * 1.1 : 1;
  draw_axes(cr, &hs, "time (ms)", "rate (Hz)", NULL);
  cairo_set_source_rgb(cr, 0.122, 0.467, 0.706);
  for (size_t b = 0; b < nb; b++) {
    double x0 = ax_x(&hs, (double)(b * bin) * ms), x1 = ax_x(&hs, fmin((double)((b + 1) * bin), T) * ms);
    cairo_rectangle(cr, x0, ax_y(&hs, rate[b]), fmax(1, x1 - x0 - 1), ax_y(&hs, 0) - ax_y(&hs, rate[b]));
  }
  cairo_fill(cr);
  free(rate);
}

/* ---- matrices ------------------------------------------------------------ */

void fig_draw_matrix(cairo_t *cr, double w, double h, const double *m, size_t rows, size_t cols, double vmin,
                     double vmax, fig_cmap cmap, int annotate, const char *xlabel, const char *ylabel,
                     const char *title) {
  fonts(cr);
  white(cr, w, h);
  figure_title(cr, w, title, 0, 0, 0);
  if (!rows || !cols) return;
  if (!(vmax > vmin)) vmax = vmin + 1;
  double top = (title && *title) ? 40 : 16, aw = w - 80 - 110, ah = h - top - 60;
  double cell = fmin(aw / (double)cols, ah / (double)rows);
  double x0 = 80 + (aw - cell * (double)cols) / 2, y0 = top + (ah - cell * (double)rows) / 2;
  cairo_surface_t *img = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, (int)cols, (int)rows);
  if (cairo_surface_status(img) != CAIRO_STATUS_SUCCESS) {
    cairo_surface_destroy(img);
    return;
  }
  cairo_surface_flush(img);
  unsigned char *px = cairo_image_surface_get_data(img);
  int stride = cairo_image_surface_get_stride(img);
  for (size_t r = 0; r < rows; r++)
    for (size_t c = 0; c < cols; c++) {
      double v = m[r * cols + c], rgb[3];
      fig_cmap_rgb(cmap, (v - vmin) / (vmax - vmin), rgb);
      ((uint32_t *)(px + r * (size_t)stride))[c] =
          isfinite(v) ? 0xff000000u | (uint32_t)lrint(rgb[0] * 255) << 16 |
                            (uint32_t)lrint(rgb[1] * 255) << 8 | (uint32_t)lrint(rgb[2] * 255)
                      : 0;
    }
  cairo_surface_mark_dirty(img);
  cairo_save(cr);
  cairo_translate(cr, x0, y0);
  cairo_scale(cr, cell, cell);
  cairo_set_source_surface(cr, img, 0, 0);
  cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
  cairo_rectangle(cr, 0, 0, (double)cols, (double)rows);
  cairo_fill(cr);
  cairo_restore(cr);
  cairo_surface_destroy(img);
  cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
  cairo_set_line_width(cr, 1);
  cairo_rectangle(cr, x0, y0, cell * (double)cols, cell * (double)rows);
  cairo_stroke(cr);
  char buf[32];
  size_t every = cols > 20 ? (size_t)nice_step(0, (double)cols, 8) : 1;
  for (size_t c = 0; c < cols; c += every) {
    snprintf(buf, sizeof buf, "%zu", c);
    text_at(cr, x0 + (c + 0.5) * cell, y0 + rows * cell + 5, 10, 0.5, 0, buf);
  }
  every = rows > 20 ? (size_t)nice_step(0, (double)rows, 8) : 1;
  for (size_t r = 0; r < rows; r += every) {
    snprintf(buf, sizeof buf, "%zu", r);
    text_at(cr, x0 - 5, y0 + (r + 0.5) * cell, 10, 1, 0.5, buf);
  }
  text_at(cr, x0 + cols * cell / 2, y0 + rows * cell + 22, 12, 0.5, 0, xlabel);
  if (ylabel && *ylabel) text_vertical(cr, x0 - 40, y0 + rows * cell / 2, 12, ylabel);
  if (annotate && cell >= 18)
    for (size_t r = 0; r < rows; r++)
      for (size_t c = 0; c < cols; c++) {
        double v = m[r * cols + c], rgb[3];
        if (!isfinite(v)) continue;
        fig_cmap_rgb(cmap, (v - vmin) / (vmax - vmin), rgb);
        double lum = 0.3 * rgb[0] + 0.59 * rgb[1] + 0.11 * rgb[2];
        cairo_set_source_rgb(cr, lum > 0.5 ? 0 : 1, lum > 0.5 ? 0 : 1, lum > 0.5 ? 0 : 1);
        snprintf(buf, sizeof buf, "%.0f", v);
        text_at(cr, x0 + (c + 0.5) * cell, y0 + (r + 0.5) * cell, fmin(12, cell * 0.4), 0.5, 0.5, buf);
      }
  static const double fg[3] = {0.2, 0.2, 0.2};
  colour_bar(cr, x0 + (double)cols * cell + 24, y0, 16, (double)rows * cell, cmap, vmin, vmax, 0, fg);
}

/* ---- time series --------------------------------------------------------- */

void fig_draw_series(cairo_t *cr, double w, double h, const double *data, size_t T, size_t k, double dt,
                     const char *const *names, const char *xlabel, const char *title) {
  fonts(cr);
  white(cr, w, h);
  figure_title(cr, w, title, 0, 0, 0);
  double top = (title && *title) ? 40 : 16;
  axes a = {70, top, w - 100, h - top - 60, 0, T > 1 ? (double)(T - 1) * dt : 1, INFINITY, -INFINITY};
  for (size_t i = 0; i < T * k; i++)
    if (isfinite(data[i])) a.ymin = fmin(a.ymin, data[i]), a.ymax = fmax(a.ymax, data[i]);
  fix_range(&a.ymin, &a.ymax);
  double pad = (a.ymax - a.ymin) * 0.05;
  a.ymin -= pad;
  a.ymax += pad;
  draw_axes(cr, &a, xlabel, "value", NULL);
  cairo_save(cr);
  cairo_rectangle(cr, a.x0, a.y0, a.w, a.h);
  cairo_clip(cr);
  cairo_set_line_width(cr, 1.5);
  for (size_t j = 0; j < k; j++) {
    set_line_colour(cr, j);
    int pen = 0;
    for (size_t t = 0; t < T; t++) {
      double v = data[t * k + j];
      if (!isfinite(v)) {
        pen = 0;
        continue;
      }
      if (pen)
        cairo_line_to(cr, ax_x(&a, (double)t * dt), ax_y(&a, v));
      else
        cairo_move_to(cr, ax_x(&a, (double)t * dt), ax_y(&a, v));
      pen = 1;
    }
    cairo_stroke(cr);
  }
  cairo_restore(cr);
  legend(cr, &a, NULL, k, names);
}
