/*
 * The figure plugin and `myelin plot`, checked by their pixels.
 *
 *  - kernels: fig_draw_map orients a flipped grid (x decreasing with i) with
 *    the left hemisphere on the left, and leaves sub-threshold voxels
 *    uncoloured; fig_draw_matrix fills cells in proportion.
 *  - real pipeline output: the ISC demo (examples/isc_demo) through
 *    fmri_source -> isc -> figure: in each of the three orthogonal panels the
 *    coloured pixels are exactly the planted box's cross-section (with
 *    threshold 0.3 nothing else is coloured; without it the box is bright and
 *    the rest dark); the mosaic shows the box in 3 of the 6 slices; BioGrad's
 *    metrics as curves, spike_encoder's spikes as a raster, a run's voxels as
 *    series, an identity matrix from a .npy.
 *  - the CLI: .nii.gz / .mpk / .npy inputs, PNG, SVG and PDF outputs, and the
 *    documented exit codes (2 for a bad command line, 1 for a missing file).
 */
#include <cairo.h>
#include <fontconfig/fontconfig.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "figure_draw.h"
#include "testutil.h"

/* ---- reading PNGs back --------------------------------------------------- */

typedef struct png {
  cairo_surface_t *s;
  int w, h, stride;
  const unsigned char *d;
} png;

static png png_load(const char *path) {
  png p;
  p.s = cairo_image_surface_create_from_png(path);
  ck_assert_msg(cairo_surface_status(p.s) == CAIRO_STATUS_SUCCESS, "%s: not a PNG (%s)", path,
                cairo_status_to_string(cairo_surface_status(p.s)));
  p.w = cairo_image_surface_get_width(p.s);
  p.h = cairo_image_surface_get_height(p.s);
  p.stride = cairo_image_surface_get_stride(p.s);
  p.d = cairo_image_surface_get_data(p.s);
  return p;
}

static png png_of_surface(cairo_surface_t *s) {
  cairo_surface_flush(s);
  png p = {s, cairo_image_surface_get_width(s), cairo_image_surface_get_height(s),
           cairo_image_surface_get_stride(s), cairo_image_surface_get_data(s)};
  return p;
}

static void rgb_at(const png *p, int x, int y, int c[3]) {
  uint32_t v = ((const uint32_t *)(p->d + (size_t)y * (size_t)p->stride))[x];
  c[0] = (int)(v >> 16 & 255), c[1] = (int)(v >> 8 & 255), c[2] = (int)(v & 255);
}

/* Saturated: a colour-map colour, not grey, black or white. */
static int coloured(const png *p, int x, int y) {
  int c[3];
  rgb_at(p, x, y, c);
  int hi = c[0] > c[1] ? (c[0] > c[2] ? c[0] : c[2]) : (c[1] > c[2] ? c[1] : c[2]);
  int lo = c[0] < c[1] ? (c[0] < c[2] ? c[0] : c[2]) : (c[1] < c[2] ? c[1] : c[2]);
  return hi - lo > 30; /* cold_hot's ends (255, 255, 217) included; grey, black, white text not */
}

static int bright_warm(const png *p, int x, int y) { /* cold_hot's upper end: yellow/white */
  int c[3];
  rgb_at(p, x, y, c);
  return c[0] > 200 && c[1] > 150 && c[2] < 235; /* not the white text */
}

static int near(const png *p, int x, int y, int r, int g, int b, int tol) {
  int c[3];
  rgb_at(p, x, y, c);
  return abs(c[0] - r) <= tol && abs(c[1] - g) <= tol && abs(c[2] - b) <= tol;
}

/* The panels of a map figure: maximal runs of columns, in the middle row
 * band, that hold non-black pixels (black is the figure's background). */
typedef struct span {
  int x0, x1, y0, y1; /* inclusive */
} span;

static int not_black(const png *p, int x, int y) {
  int c[3];
  rgb_at(p, x, y, c);
  return c[0] + c[1] + c[2] > 30;
}

/* Panels found left of x_end (the colour bar is right of it). */
static int find_panels(const png *p, int x_end, span *out, int max) {
  int n = 0, in = 0;
  for (int x = 0; x <= x_end && n < max; x++) {
    int any = 0;
    for (int y = p->h / 4; y < 3 * p->h / 4 && !any; y++)
      any = not_black(p, x, y);
    if (any && !in) out[n].x0 = x, in = 1;
    if ((!any || x == x_end) && in) {
      out[n].x1 = x - 1;
      /* rows: the longest run of non-black rows through the middle row, in
       * three columns (a label's outline or the title cannot cut it short) */
      int y0 = p->h / 2, y1 = p->h / 2;
      for (int c = 0; c < 3; c++) {
        int cx = c == 0   ? out[n].x0 + 2
                 : c == 1 ? (out[n].x0 + out[n].x1) / 2
                          : out[n].x1 - 2,
            a = p->h / 2, b = a;
        while (a > 0 && not_black(p, cx, a - 1))
          a--;
        while (b + 1 < p->h && not_black(p, cx, b + 1))
          b++;
        if (a < y0) y0 = a;
        if (b > y1) y1 = b;
      }
      out[n].y0 = y0, out[n].y1 = y1;
      if (out[n].x1 - out[n].x0 > 20) n++; /* not a stray text glyph */
      in = 0;
    }
  }
  return n;
}

/* Bounding box (fractions of the panel) of the pixels where test() holds. */
static long bbox_in(const png *p, const span *s, int (*test)(const png *, int, int), double f[4]) {
  int x0 = 1 << 30, x1 = -1, y0 = 1 << 30, y1 = -1;
  long n = 0;
  for (int y = s->y0; y <= s->y1; y++)
    for (int x = s->x0; x <= s->x1; x++)
      if (test(p, x, y)) {
        n++;
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
  double W = s->x1 - s->x0 + 1, H = s->y1 - s->y0 + 1;
  f[0] = (x0 - s->x0) / W, f[1] = (x1 + 1 - s->x0) / W, f[2] = (y0 - s->y0) / H, f[3] = (y1 + 1 - s->y0) / H;
  return n;
}

static void expect_box(const double f[4], const double want[4], const char *what) {
  for (int i = 0; i < 4; i++)
    ck_assert_msg(fabs(f[i] - want[i]) < 0.035,
                  "%s: coloured box [%.3f %.3f] x [%.3f %.3f], want [%.3f %.3f] x [%.3f %.3f]", what, f[0],
                  f[1], f[2], f[3], want[0], want[1], want[2], want[3]);
}

/* ---- kernels ------------------------------------------------------------- */

START_TEST(map_left_is_left) {
  /* 10^3 grid, x decreasing with i (LAS, as many scanners write), 2 mm */
  float *v = calloc(1000, sizeof *v);
  for (int i = 0; i < 1000; i++)
    v[i] = NAN;
  for (int k = 0; k < 10; k++)
    for (int j = 0; j < 10; j++)
      for (int i = 0; i < 10; i++)
        v[i + 10 * (j + 10 * k)] = 0.1f; /* covered, under the threshold */
  v[1 + 10 * (5 + 10 * 5)] = 1.0f;       /* i = 1: world x = +7 mm, the right hemisphere */
  fig_volume vol = {v, {10, 10, 10}, {{-2, 0, 0, 9}, {0, 2, 0, -9}, {0, 0, 2, -9}, {0, 0, 0, 1}}};
  fig_map_opts o = {0};
  o.threshold = 0.5;
  o.cmap = FIG_COLD_HOT;
  o.colorbar = 1;
  cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 900, 360);
  cairo_t *cr = cairo_create(s);
  double cut[3];
  fig_draw_map(cr, 900, 360, &vol, NULL, &o, cut);
  cairo_destroy(cr);
  ck_assert_msg(fabs(cut[0] - 7) < 1e-9 && fabs(cut[1] - 1) < 1e-9 && fabs(cut[2] - 1) < 1e-9,
                "cut at the peak: %g %g %g", cut[0], cut[1], cut[2]);
  png p = png_of_surface(s);
  span pan[4];
  int np = find_panels(&p, 900 - 80, pan, 4);
  ck_assert_int_eq(np, 3);
  for (int k = 1; k < 3; k++) { /* coronal and axial: x horizontal, right hemisphere on the right */
    double f[4];
    long n = bbox_in(&p, &pan[k], coloured, f);
    ck_assert_msg(n > 0, "panel %d: no coloured pixel", k);
    ck_assert_msg(f[0] > 0.75 && f[1] < 0.9,
                  "panel %d: the voxel at x = +7 mm is at [%.2f, %.2f] of the width", k, f[0], f[1]);
  }
  cairo_surface_destroy(s);
  free(v);
  cairo_debug_reset_static_data(); /* fontconfig's cache, as the figure plugin does */
  FcFini();
}
END_TEST

START_TEST(matrix_cells) {
  double m[64] = {0};
  for (int i = 0; i < 8; i++)
    m[i * 8 + i] = 1;
  cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 600, 400);
  cairo_t *cr = cairo_create(s);
  fig_draw_matrix(cr, 600, 400, m, 8, 8, 0, 1, FIG_VIRIDIS, 0, NULL, NULL, "eye");
  cairo_destroy(cr);
  png p = png_of_surface(s);
  long yellow = 0, purple = 0;
  for (int y = 0; y < p.h; y++)
    for (int x = 0; x < 480; x++) /* left of the colour bar */
      yellow += near(&p, x, y, 253, 231, 37, 3), purple += near(&p, x, y, 68, 1, 84, 3);
  ck_assert_msg(purple > 0 && fabs((double)yellow / (double)purple - 8.0 / 56.0) < 0.02,
                "diagonal/off-diagonal area %ld / %ld, want 8/56", yellow, purple);
  cairo_surface_destroy(s);
  cairo_debug_reset_static_data();
  FcFini();
}
END_TEST

/* ---- real pipeline output ------------------------------------------------ */

static char *isc_dir; /* the ISC demo and its figures, made once */

static void make_isc_figures(void) {
  if (isc_dir) return;
  const char *py = mt_env("MYELIN_PYTHON", "/usr/bin/python3"), *src = mt_env("MYELIN_SOURCE_DIR", ".");
  char *d = mt_tmpdir(), *out = NULL;
  ck_assert_msg(
      mt_run(mt_strf("%s %s/examples/isc_demo/make_demo.py %s/demo --subjects 6 --trs 80", py, src, d),
             &out) == 0,
      "%s", out);
  free(out);
  mt_write(
      mt_strf("%s/figs.yaml", d),
      "name: isc-figures\nstages:\n"
      "  - {id: bold, plugin: fmri_source, params: {path: demo/bids, detrend: 1}}\n"
      "  - {id: isc, plugin: isc, inputs: [bold], params: {summary: mean}}\n"
      "  - {id: ortho, plugin: figure, inputs: [isc.map], params: {path: out/isc.png}}\n"
      "  - {id: thr, plugin: figure, inputs: [isc.map], params: {path: out/isc_thr.png, threshold: 0.3}}\n"
      "  - {id: mosaic, plugin: figure, inputs: [isc.map],\n"
      "     params: {path: out/isc_mosaic.png, view: mosaic, threshold: 0.3}}\n"
      "  - {id: series, plugin: figure, inputs: [bold],\n"
      "     params: {path: out/series.png, type: series, message: 0, columns: [340, 0]}}\n"
      "  - {id: nii, plugin: nifti_sink, inputs: [isc.map], params: {path: out/isc.nii.gz}}\n"
      "  - {id: rec, plugin: file_sink, inputs: [isc.map], params: {path: out/isc.mpk}}\n");
  int rc = mt_run(mt_strf("cd %s && %s run figs.yaml --quiet", d, mt_env("MYELIN_BIN", "myelin")), &out);
  ck_assert_msg(rc == 0, "run: %s", out);
  free(out);
  isc_dir = d;
}

/* The planted box (examples/isc_demo: x 4..7, y 4..7, z 2..4 of a 12x12x6
 * grid) as fractions of each panel: sagittal (y across, z up), coronal (x
 * across, z up), axial (x across, y up). */
static const double box_sag[4] = {4 / 12.0, 8 / 12.0, 1 / 6.0, 4 / 6.0};
static const double box_cor[4] = {4 / 12.0, 8 / 12.0, 1 / 6.0, 4 / 6.0};
static const double box_axi[4] = {4 / 12.0, 8 / 12.0, 4 / 12.0, 8 / 12.0};

START_TEST(isc_box_is_coloured_background_is_not) {
  MT_NEED_PYTHON("numpy nibabel", "the ISC demo generator");
  make_isc_figures();
  png p = png_load(mt_strf("%s/out/isc_thr.png", isc_dir));
  ck_assert_int_eq(p.w, 900);
  ck_assert_int_eq(p.h, 360);
  span pan[4];
  ck_assert_int_eq(find_panels(&p, p.w - 80, pan, 4), 3);
  const double *want[3] = {box_sag, box_cor, box_axi};
  const char *name[3] = {"sagittal", "coronal", "axial"};
  for (int k = 0; k < 3; k++) {
    double f[4];
    long n = bbox_in(&p, &pan[k], coloured, f);
    ck_assert_msg(n > 100, "%s: %ld coloured pixels", name[k], n);
    expect_box(f, want[k], name[k]); /* nothing coloured outside the box */
    double fb[4];
    long nb = bbox_in(&p, &pan[k], bright_warm, fb);
    ck_assert_msg(nb > 0.8 * (double)n, "%s: only %ld of %ld box pixels are warm (ISC > 0)", name[k], nb, n);
  }
  /* no threshold: every voxel is drawn; the box's are bright (ISC > 0.3),
   * none of the others. Probed off each voxel's centre (the cross lines go
   * through the peak's), skipping the top and bottom rows (L/R, x= labels);
   * the panels are the ones found above (near-black voxels hide the edges). */
  png q = png_load(mt_strf("%s/out/isc.png", isc_dir));
  ck_assert(q.w == p.w && q.h == p.h);
  const int grid[3][2] = {{12, 6}, {12, 6}, {12, 12}};
  for (int k = 0; k < 3; k++) {
    int nu = grid[k][0], nw = grid[k][1], bad = 0, inside = 0;
    double W = pan[k].x1 - pan[k].x0 + 1, H = pan[k].y1 - pan[k].y0 + 1;
    for (int j = 1; j < nw - 1; j++)
      for (int i = 0; i < nu; i++) {
        int x = pan[k].x0 + (int)((i + 0.3) * W / nu), y = pan[k].y0 + (int)((j + 0.3) * H / nw);
        double fu = (i + 0.5) / nu, fw = (j + 0.5) / nw;
        int in = fu > want[k][0] && fu < want[k][1] && fw > want[k][2] && fw < want[k][3];
        inside += in;
        if (bright_warm(&q, x, y) != in) bad++;
      }
    ck_assert_msg(inside > 0 && bad == 0, "%s: %d voxel(s) bright outside or dark inside the box", name[k],
                  bad);
  }
  cairo_surface_destroy(p.s);
  cairo_surface_destroy(q.s);
}
END_TEST

START_TEST(isc_mosaic_shows_box_slices) {
  MT_NEED_PYTHON("numpy nibabel", "the ISC demo generator");
  make_isc_figures();
  png p = png_load(mt_strf("%s/out/isc_mosaic.png", isc_dir));
  /* 6 axial slices (the grid's z size) on the grey mask of covered voxels;
   * warm pixels only where the box is: 16 voxels in 3 of the 6 slices */
  long warm = 0, grey = 0;
  for (int y = 0; y < p.h; y++)
    for (int x = 0; x < p.w - 80; x++) {
      warm += bright_warm(&p, x, y);
      grey += near(&p, x, y, 56, 56, 56, 2);
    }
  /* each slice: 144 voxels; the box: 16 voxels in 3 of 6 slices -> 48 / 864 */
  double frac = (double)warm / (double)(warm + grey);
  ck_assert_msg(fabs(frac - 48.0 / 864.0) < 0.012, "warm fraction %.4f, want %.4f", frac, 48.0 / 864.0);
  cairo_surface_destroy(p.s);
}
END_TEST

START_TEST(series_of_a_run) {
  MT_NEED_PYTHON("numpy nibabel", "the ISC demo generator");
  make_isc_figures();
  png p = png_load(mt_strf("%s/out/series.png", isc_dir));
  long blue = 0, orange = 0;
  for (int y = 0; y < p.h; y++)
    for (int x = 0; x < p.w; x++)
      blue += near(&p, x, y, 31, 119, 180, 12), orange += near(&p, x, y, 255, 127, 14, 12);
  ck_assert_msg(blue > 300 && orange > 300, "two lines: %ld blue, %ld orange pixels", blue, orange);
  cairo_surface_destroy(p.s);
}
END_TEST

START_TEST(learning_curves_and_raster) {
  const char *img = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";
  MT_NEED_FILE(img, "dataset-fashion-mnist");
  char *d = mt_tmpdir(), *out = NULL;
  mt_write(
      mt_strf("%s/bg.yaml", d),
      "name: bg\nstages:\n"
      "  - {id: train, plugin: dataset, params: {format: idx, path: "
      "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz, labels: "
      "/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz, split: train, limit: 200, epochs: 3, "
      "scale: 0.00392156862745098}}\n"
      "  - {id: test, plugin: dataset, params: {format: idx, path: "
      "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz, labels: "
      "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz, split: test, limit: 100, "
      "scale: 0.00392156862745098}}\n"
      "  - {id: et, plugin: spike_encoder, inputs: [train], params: {method: rate, steps: 20}}\n"
      "  - {id: es, plugin: spike_encoder, inputs: [test], params: {method: rate, steps: 20}}\n"
      "  - {id: learn, plugin: biograd, inputs: {train: [et], test: [es]},\n"
      "     params: {hidden: [30], predictions: true}}\n"
      "  - {id: curves, plugin: figure, inputs: [learn.metrics],\n"
      "     params: {path: out/acc.png, values: [train_acc, test_acc]}}\n"
      "  - {id: conf, plugin: figure, inputs: [learn.predictions], params: {path: out/confusion.png}}\n"
      "  - {id: raster, plugin: figure, inputs: [es], params: {path: out/raster.png, message: 0}}\n"
      "  - {id: spk, plugin: file_sink, inputs: [es], params: {path: out/spikes.mpk}}\n");
  int rc = mt_run(mt_strf("cd %s && %s run bg.yaml --quiet", d, mt_env("MYELIN_BIN", "myelin")), &out);
  ck_assert_msg(rc == 0, "run: %s", out);
  free(out);
  /* curves: one panel (acc) with train (blue) and test (orange) lines */
  png p = png_load(mt_strf("%s/out/acc.png", d));
  long blue = 0, orange = 0;
  for (int y = 0; y < p.h; y++)
    for (int x = 0; x < p.w; x++)
      blue += near(&p, x, y, 31, 119, 180, 12), orange += near(&p, x, y, 255, 127, 14, 12);
  ck_assert_msg(blue > 200 && orange > 200, "train/test lines: %ld blue, %ld orange pixels", blue, orange);
  cairo_surface_destroy(p.s);
  /* raster: dark dots where there are events, none in the rows of units that never fire */
  png r = png_load(mt_strf("%s/out/raster.png", d));
  long dark = 0;
  for (int y = 0; y < r.h * 2 / 3; y++)
    for (int x = 70; x < r.w - 30; x++)
      dark += near(&r, x, y, 26, 26, 26, 10);
  ck_assert_msg(dark > 500, "raster: %ld dot pixels", dark);
  long bars = 0;
  for (int y = r.h * 2 / 3; y < r.h; y++)
    for (int x = 0; x < r.w; x++)
      bars += near(&r, x, y, 31, 119, 180, 6);
  ck_assert_msg(bars > 1000, "rate histogram: %ld bar pixels", bars);
  cairo_surface_destroy(r.s);
  png c = png_load(mt_strf("%s/out/confusion.png", d));
  ck_assert_int_eq(c.w, 900);
  cairo_surface_destroy(c.s);
}
END_TEST

/* ---- the CLI ------------------------------------------------------------- */

START_TEST(plot_command) {
  MT_NEED_PYTHON("numpy nibabel", "the ISC demo generator");
  make_isc_figures();
  const char *bin = mt_env("MYELIN_BIN", "myelin"), *py = mt_env("MYELIN_PYTHON", "/usr/bin/python3");
  char *out = NULL;
  /* nifti_sink's image of the same map: one volume per subject, drawn as their mean */
  int rc =
      mt_run(mt_strf("cd %s && %s plot out/isc.nii.gz -o p/nii.png --set threshold=0.3", isc_dir, bin), &out);
  ck_assert_msg(rc == 0 && strstr(out, "wrote p/nii.png"), "%s", out);
  free(out);
  png p = png_load(mt_strf("%s/p/nii.png", isc_dir));
  span pan[4];
  ck_assert_int_eq(find_panels(&p, p.w - 80, pan, 4), 3);
  double f[4];
  bbox_in(&p, &pan[2], coloured, f);
  expect_box(f, box_axi, "axial (from the NIfTI file)");
  cairo_surface_destroy(p.s);
  /* a file without context is titled by its name (it was the message kind, "run"): the default draws
   * the same pixels as an explicit title of the file name, and not those of the title "run" */
  rc = mt_run(
      mt_strf("cd %s && %s plot out/isc.nii.gz -o p/named.png --set threshold=0.3 --set title=isc.nii.gz "
              "--quiet && %s plot out/isc.nii.gz -o p/run.png --set threshold=0.3 --set title=run --quiet "
              "&& cmp p/nii.png p/named.png && ! cmp -s p/nii.png p/run.png",
              isc_dir, bin, bin),
      &out);
  ck_assert_msg(rc == 0, "the default title of a NIfTI file is not its name: %s", out);
  free(out);
  /* .mpk to SVG and PDF */
  rc = mt_run(mt_strf("cd %s && %s plot out/isc.mpk -o p/isc.svg --quiet && %s plot out/isc.mpk -o p/isc.pdf "
                      "--set view=mosaic && head -c 200 p/isc.svg && head -c 5 p/isc.pdf",
                      isc_dir, bin, bin),
              &out);
  ck_assert_msg(rc == 0 && strstr(out, "<svg") && strstr(out, "%PDF"), "%s", out);
  free(out);
  /* .npy */
  rc = mt_run(
      mt_strf("cd %s && %s -c 'import numpy as np; np.save(\"eye.npy\", np.eye(8))' && %s plot eye.npy -o "
              "p/eye.png --type matrix",
              isc_dir, py, bin),
      &out);
  ck_assert_msg(rc == 0, "%s", out);
  free(out);
  png e = png_load(mt_strf("%s/p/eye.png", isc_dir));
  long yellow = 0, purple = 0;
  for (int y = 0; y < e.h; y++)
    for (int x = 0; x < e.w - 150; x++)
      yellow += near(&e, x, y, 253, 231, 37, 3), purple += near(&e, x, y, 68, 1, 84, 3);
  ck_assert_msg(purple > 0 && fabs((double)yellow / (double)purple - 8.0 / 56.0) < 0.02, "%ld / %ld", yellow,
                purple);
  cairo_surface_destroy(e.s);
  /* exit codes: 2 for the command line or the figure's params, 1 when the input is missing */
  ck_assert_int_eq(mt_run(mt_strf("%s plot %s/out/isc.mpk", bin, isc_dir), NULL), 2);
  ck_assert_int_eq(mt_run(mt_strf("%s plot %s/figs.yaml -o x.png", bin, isc_dir), NULL), 2);
  ck_assert_int_eq(mt_run(mt_strf("%s plot %s/out/isc.mpk -o %s/x.jpg", bin, isc_dir, isc_dir), NULL), 2);
  ck_assert_int_eq(
      mt_run(mt_strf("%s plot %s/out/isc.mpk -o %s/x.png --set cmap=nope", bin, isc_dir, isc_dir), NULL), 2);
  rc = mt_run(mt_strf("%s plot %s/missing.mpk -o %s/x.png", bin, isc_dir, isc_dir), &out);
  ck_assert_msg(rc == 1 && strstr(out, "missing.mpk"), "exit %d: %s", rc, out);
  free(out);
  ck_assert_int_eq(mt_file_size(mt_strf("%s/x.png", isc_dir)), -1);
}
END_TEST

int main(void) {
  Suite *s = suite_create("figure");
  struct {
    const char *name;
    const TTest *t;
  } tests[] = {{"map_left_is_left", map_left_is_left},
               {"matrix_cells", matrix_cells},
               {"isc_box_is_coloured_background_is_not", isc_box_is_coloured_background_is_not},
               {"isc_mosaic_shows_box_slices", isc_mosaic_shows_box_slices},
               {"series_of_a_run", series_of_a_run},
               {"learning_curves_and_raster", learning_curves_and_raster},
               {"plot_command", plot_command}};
  for (size_t i = 0; i < sizeof tests / sizeof *tests; i++) {
    TCase *tc = tcase_create(tests[i].name);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, tests[i].t);
    suite_add_tcase(s, tc);
  }
  return mt_run_suite(s);
}
