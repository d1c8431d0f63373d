/*
 * evtransform.c — transforms over event arrays with tonic's semantics
 * (tonic.functional and tonic.slicers, read for their rules, written anew):
 * denoise, crop, downsample, and the time slicing behind time windows and
 * ToFrame. Plain functions over arrays, no messages: the plugins
 * event_transform and to_frames are their glue.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"

/* Moves event i to slot k (k <= i). */
static inline void keep(ev_array *a, size_t k, size_t i) {
  a->x[k] = a->x[i];
  a->y[k] = a->y[i];
  a->p[k] = a->p[i];
  a->t[k] = a->t[i];
}

/*
 * tonic's denoise: the grid spans the events' own extent (max x + 1 by
 * max y + 1), every cell starts at filter_time, and an event first stamps
 * its own cell with t + filter_time, then survives when a 4-neighbour inside
 * the grid holds a stamp > t. (So before t = filter_time, cells never hit
 * still count as recent: tonic's rule, kept.)
 */
int ev_denoise(ev_array *a, int64_t filter_time) {
  if (a->n == 0) return 0;
  size_t w = 0, h = 0;
  for (size_t i = 0; i < a->n; i++) {
    if (a->x[i] >= w) w = a->x[i] + 1u;
    if (a->y[i] >= h) h = a->y[i] + 1u;
  }
  int64_t *mem = malloc(w * h * sizeof *mem);
  if (!mem) return MYELIN_ENOMEM;
  for (size_t i = 0; i < w * h; i++)
    mem[i] = filter_time;
  size_t k = 0;
  for (size_t i = 0; i < a->n; i++) {
    size_t x = a->x[i], y = a->y[i];
    int64_t t = a->t[i];
    int64_t *c = mem + y * w + x;
    *c = t + filter_time;
    if ((x > 0 && c[-1] > t) || (x + 1 < w && c[1] > t) || (y > 0 && c[-(ptrdiff_t)w] > t) ||
        (y + 1 < h && c[w] > t))
      keep(a, k++, i);
  }
  a->n = k;
  free(mem);
  return 0;
}

/*
 * A box [x0, x0 + w) x [y0, y0 + h) of the sensor, shifted to the origin
 * (tonic's CenterCrop with x0 = (W - w) // 2, y0 = (H - h) // 2). Origins
 * may be negative (a box larger than the sensor): events then move right
 * or down, as tonic's padding does.
 */
void ev_crop(ev_array *a, ev_sensor *s, int64_t x0, int64_t y0, uint32_t w, uint32_t h) {
  int64_t lx = x0 > 0 ? x0 : 0, ly = y0 > 0 ? y0 : 0;
  size_t k = 0;
  for (size_t i = 0; i < a->n; i++) {
    int64_t x = a->x[i], y = a->y[i];
    if (x < lx || x >= lx + w || y < ly || y >= ly + h || x - x0 >= w || y - y0 >= h) continue;
    keep(a, k, i);
    a->x[k] = (uint16_t)(x - x0);
    a->y[k] = (uint16_t)(y - y0);
    k++;
  }
  a->n = k;
  s->w = w;
  s->h = h;
}

/*
 * tonic's Downsample: t = t * time_factor, x = x * fx, y = y * fy, each
 * truncated toward zero as numpy's assignment into an integer field does.
 * No event is dropped; the sensor becomes the image of its last pixel + 1.
 */
void ev_downsample(ev_array *a, ev_sensor *s, double fx, double fy, double time_factor) {
  for (size_t i = 0; i < a->n; i++) {
    a->x[i] = (uint16_t)(a->x[i] * fx);
    a->y[i] = (uint16_t)(a->y[i] * fy);
    if (time_factor != 1.0) a->t[i] = (int64_t)((double)a->t[i] * time_factor);
  }
  if (s->w) s->w = (uint32_t)((s->w - 1) * fx) + 1;
  if (s->h) s->h = (uint32_t)((s->h - 1) * fy) + 1;
}

/* First index i in [lo, n) with (double)t[i] >= v: numpy's searchsorted
 * (side left) of a float bound in an integer array. */
static size_t search(const int64_t *t, size_t lo, size_t n, double v) {
  size_t hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if ((double)t[mid] < v)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/*
 * tonic's slicers without overlap:
 *  - n_time_bins (SliceByTimeBins): a window of (t_last - t_first) // n
 *    (integer division), bins [t_first + i*w, t_first + (i+1)*w) for
 *    i < n. Events at or after t_first + n*w fall in no bin.
 *  - time_window (SliceByTime): n = floor((duration - w) / w) + 1 windows,
 *    ceil with include_incomplete, at least 1, from t_first.
 * No events: n_time_bins empty bins, or one empty window (ToFrame's rule).
 * The bounds are computed in double, as numpy does.
 */
size_t ev_frame_bins(const int64_t *t, size_t n, uint32_t n_bins, double time_window, int include_incomplete,
                     size_t **lo_out, size_t **hi_out) {
  size_t bins;
  double w = 0;
  if (n_bins > 0) {
    bins = n_bins;
    if (n) w = (double)((t[n - 1] - t[0]) / (int64_t)n_bins);
  } else if (n == 0) {
    bins = 1;
  } else {
    w = time_window;
    double q = ((double)(t[n - 1] - t[0]) - w) / w;
    double c = include_incomplete ? ceil(q) : floor(q);
    bins = c + 1 < 1 || !isfinite(c) ? 1 : (size_t)(c + 1);
  }
  if (bins > EV_MAX_BINS) {
    *lo_out = *hi_out = NULL;
    return 0;
  }
  size_t *lo = malloc(bins * sizeof *lo), *hi = malloc(bins * sizeof *hi);
  if (!lo || !hi) {
    free(lo);
    free(hi);
    *lo_out = *hi_out = NULL;
    return 0;
  }
  size_t from = 0;
  for (size_t i = 0; i < bins; i++) {
    if (n == 0) {
      lo[i] = hi[i] = 0;
      continue;
    }
    double start = (double)i * w + (double)t[0];
    lo[i] = search(t, from, n, start);
    hi[i] = search(t, lo[i], n, start + w);
    from = lo[i];
  }
  *lo_out = lo;
  *hi_out = hi;
  return bins;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

static int grow(uint32_t **p, size_t *cap, size_t need) {
  if (need <= *cap) return 0;
  size_t c = *cap ? *cap : 1024;
  while (c < need)
    c *= 2;
  uint32_t *np = realloc(*p, c * sizeof *np);
  if (!np) return MYELIN_ENOMEM;
  *p = np;
  *cap = c;
  return 0;
}

/*
 * Per bin, the units hit are counted in a dense array of P*H*W counters,
 * marked in a bitmap, and listed once in a touched list. They are read out
 * in ascending order either by scanning the bitmap words between the
 * lowest and highest unit hit (when the bin is dense for that span: one
 * word covers 64 units) or by sorting the touched list (when it is sparse);
 * counters and bits are cleared as they are read, so they stay zero between
 * bins and calls. O(E + span/64) per bin, whatever the sensor size.
 */
/* Appends unit u of bin b (once, or as often as it was hit) and clears its counter. */
static inline size_t emit_unit(uint32_t *restrict cnt, uint32_t *restrict step, uint32_t *restrict unit,
                               size_t out, uint32_t b, uint32_t u, int binary) {
  uint32_t c = binary ? 1 : cnt[u];
  cnt[u] = 0;
  step[out] = b;
  unit[out++] = u;
  for (uint32_t r = 1; r < c; r++) {
    step[out] = b;
    unit[out++] = u;
  }
  return out;
}

int64_t ev_frames_sparse(ev_frames *f, const ev_sensor *s, const uint16_t *x, const uint16_t *y,
                         const uint8_t *p, const size_t *lo, const size_t *hi, size_t bins, int binary) {
  size_t n = (size_t)s->w * s->h * s->p, W = s->w, H = s->h;
  if (n > f->ncnt) {
    free(f->cnt);
    free(f->bits);
    f->cnt = calloc(n, sizeof *f->cnt);
    f->bits = calloc(n / 64 + 1, sizeof *f->bits);
    f->ncnt = f->cnt && f->bits ? n : 0;
    if (!f->ncnt) return MYELIN_ENOMEM;
  }
  if (grow(&f->step, &f->cap_step, 1) || grow(&f->unit, &f->cap_unit, 1)) return MYELIN_ENOMEM;
  size_t out = 0;
  uint32_t *restrict cnt = f->cnt;
  uint64_t *restrict bits = f->bits;
  for (size_t b = 0; b < bins; b++) {
    if (grow(&f->touched, &f->cap_touched, hi[b] - lo[b] + 1)) return MYELIN_ENOMEM;
    uint32_t *restrict touched = f->touched;
    size_t nt = 0;
    uint32_t umin = UINT32_MAX, umax = 0;
    for (size_t e = lo[b]; e < hi[b]; e++) {
      uint32_t u = (uint32_t)(((size_t)p[e] * H + y[e]) * W + x[e]);
      if (cnt[u]++ == 0) {
        touched[nt++] = u;
        bits[u >> 6] |= (uint64_t)1 << (u & 63);
        umin = u < umin ? u : umin;
        umax = u > umax ? u : umax;
      }
    }
    size_t add = binary ? nt : hi[b] - lo[b];
    if (grow(&f->step, &f->cap_step, out + add) || grow(&f->unit, &f->cap_unit, out + add))
      return MYELIN_ENOMEM;
    if (!nt) continue;
    uint32_t *restrict step = f->step, *restrict unit = f->unit;
    size_t w0 = umin >> 6, w1 = umax >> 6;
    if (nt * 8 >= w1 - w0 + 1) { /* dense: scan the bitmap */
      for (size_t w = w0; w <= w1; w++) {
        uint64_t m = bits[w];
        bits[w] = 0;
        while (m) {
          out = emit_unit(cnt, step, unit, out, (uint32_t)b, (uint32_t)(w * 64 + (size_t)__builtin_ctzll(m)),
                          binary);
          m &= m - 1;
        }
      }
    } else { /* sparse: sort the few units hit */
      qsort(touched, nt, sizeof *touched, cmp_u32);
      for (size_t k = 0; k < nt; k++) {
        bits[touched[k] >> 6] = 0;
        out = emit_unit(cnt, step, unit, out, (uint32_t)b, touched[k], binary);
      }
    }
  }
  return (int64_t)out;
}

void ev_frames_free(ev_frames *f) {
  free(f->cnt);
  free(f->bits);
  free(f->touched);
  free(f->step);
  free(f->unit);
  memset(f, 0, sizeof *f);
}
