/*
 * figure_draw.h — the figures of the `figure` plugin, drawn with cairo from
 * plain arrays (no myelin types), so each can be tested and reused alone.
 *
 * Every function draws a whole figure into the box (0, 0, w, h) of a cairo
 * context whose surface may be an image (PNG), SVG or PDF: cairo does all
 * the drawing (paths, images painted through pattern matrices, gradients)
 * and text uses cairo's toy text API with the "sans-serif" face.
 *
 *  - fig_draw_map: a brain map as nilearn's plot_stat_map draws it: three
 *    orthogonal slices (sagittal, coronal, axial) through a cut point, or a
 *    mosaic of axial slices; over an optional anatomical background; values
 *    with |v| <= threshold left transparent; a symmetric colour bar; the
 *    cut's mm coordinates (x=, y=, z=) and L/R marks (left on the left).
 *    Volumes are in file order (x fastest) with a voxel-to-mm affine; each
 *    world axis is shown along the voxel axis that dominates it (as
 *    nibabel's aff2axcodes), so flipped and permuted grids come out upright.
 *  - fig_draw_curves: panels of lines over epochs (learning curves).
 *  - fig_draw_raster: a spike raster above a population rate histogram.
 *  - fig_draw_matrix: a matrix as an image with a colour bar (connectome,
 *    ISFC, confusion matrix; small integer matrices get their counts).
 *  - fig_draw_series: time series of selected columns, one line each.
 */
#ifndef MYELIN_FIGURE_DRAW_H
#define MYELIN_FIGURE_DRAW_H

#include <cairo.h>
#include <stddef.h>
#include <stdint.h>

typedef enum fig_cmap { FIG_COLD_HOT, FIG_HOT, FIG_VIRIDIS, FIG_RDBU, FIG_GRAY } fig_cmap;

/* "cold_hot", "hot", "viridis", "rdbu", "gray"; -1 when unknown. */
int fig_cmap_parse(const char *name);
const char *fig_cmap_names(void); /* "cold_hot|hot|viridis|rdbu|gray" */
/* The colour at t in [0, 1] (clamped). */
void fig_cmap_rgb(fig_cmap c, double t, double rgb[3]);

/* A 3-D volume in file order (x fastest): data[x + nx * (y + ny * z)]. */
typedef struct fig_volume {
  const float *data;
  int64_t dims[3];
  double affine[4][4]; /* voxel (i, j, k, 1) -> mm */
} fig_volume;

typedef struct fig_map_opts {
  int mosaic;       /* 0: orthogonal slices; 1: a mosaic of axial slices */
  int slices;       /* mosaic: how many */
  int have_cut;     /* cut given, else the peak |value| */
  double cut[3];    /* mm */
  double threshold; /* |v| <= threshold is not drawn */
  double vmax;      /* colour range [-vmax, vmax]; <= 0: the max |value| */
  fig_cmap cmap;
  const char *title; /* NULL or "" = none */
  int colorbar;
} fig_map_opts;

/* Draws stat (NaN = not covered) over bg (NULL: the covered voxels in dark
 * grey). Writes the cut used (mm) to cut_out when not NULL. */
void fig_draw_map(cairo_t *cr, double w, double h, const fig_volume *stat, const fig_volume *bg,
                  const fig_map_opts *o, double cut_out[3]);

/* One line of a curves panel: n points (x[i], y[i]); NaN y = no point. */
typedef struct fig_line {
  const char *name;
  const double *x, *y;
  size_t n;
} fig_line;

typedef struct fig_panel {
  const char *title;
  const fig_line *lines;
  size_t n_lines;
} fig_panel;

void fig_draw_curves(cairo_t *cr, double w, double h, const fig_panel *panels, size_t n_panels,
                     const char *xlabel, const char *title);

/* E events (step[e], unit[e]) of n units over T steps of dt seconds; the
 * histogram counts events per bin of `bin` steps as a population rate (Hz). */
void fig_draw_raster(cairo_t *cr, double w, double h, const uint32_t *step, const uint32_t *unit, size_t E,
                     uint32_t n, uint32_t T, double dt, uint32_t bin, const char *title);

/* rows x cols values (row-major; NaN = blank) in [vmin, vmax]; annotate
 * writes each value in its cell (integers, for small confusion matrices). */
void fig_draw_matrix(cairo_t *cr, double w, double h, const double *m, size_t rows, size_t cols, double vmin,
                     double vmax, fig_cmap cmap, int annotate, const char *xlabel, const char *ylabel,
                     const char *title);

/* k series of T samples: data[t * k + j]; sample t at t * dt (xlabel names
 * the unit). */
void fig_draw_series(cairo_t *cr, double w, double h, const double *data, size_t T, size_t k, double dt,
                     const char *const *names, const char *xlabel, const char *title);

#endif
