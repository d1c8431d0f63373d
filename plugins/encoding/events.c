/*
 * events.c — the kernels of events.h. Each event touches only the frames
 * its kernel reaches (32 s of HRF, `window` TRs each side for Lanczos), so
 * a story costs O(W x frames-per-kernel x F).
 */
#include "events.h"

#include <math.h>
#include <string.h>

#define HRF_LEN 32.0

/* Regularized lower incomplete gamma P(a, x) for integer a: 1 - e^-x sum_{k<a} x^k / k!. */
static double gamma_cdf_int(int a, double x) {
  double term = 1, sum = 1;
  for (int k = 1; k < a; k++)
    sum += term *= x / k;
  return 1 - exp(-x) * sum;
}

static double gamma_pdf_int(int a, double t) {
  double f = 1; /* (a - 1)! */
  for (int k = 2; k < a; k++)
    f *= k;
  return exp((a - 1) * log(t) - t) / f;
}

double events_spm_hrf(double t) {
  if (!(t > 0) || t > HRF_LEN) return 0;
  double area = gamma_cdf_int(6, HRF_LEN) - gamma_cdf_int(16, HRF_LEN) / 6;
  return (gamma_pdf_int(6, t) - gamma_pdf_int(16, t) / 6) / area;
}

void events_hrf(const double *onset, const double *x, size_t W, size_t F, double tr, long offset, size_t T,
                double *out) {
  memset(out, 0, T * F * sizeof *out);
  for (size_t w = 0; w < W; w++) {
    /* frames with 0 < tau_t - onset <= 32 */
    double t0 = ceil(onset[w] / tr + (double)offset), t1 = floor((onset[w] + HRF_LEN) / tr + (double)offset);
    if (t0 < 0) t0 = 0;
    if (t1 > (double)T - 1) t1 = (double)T - 1;
    for (double tf = t0; tf <= t1; tf++) {
      double h = tr * events_spm_hrf((tf - (double)offset) * tr - onset[w]);
      if (h == 0) continue;
      double *row = out + (size_t)tf * F;
      for (size_t f = 0; f < F; f++)
        row[f] += h * x[w * F + f];
    }
  }
}

static double lanczos(double u, double a) {
  if (u == 0) return 1;
  if (fabs(u) > a) return 0;
  return a * sin(M_PI * u) * sin(M_PI * u / a) / (M_PI * M_PI * u * u);
}

void events_lanczos(const double *onset, const double *x, size_t W, size_t F, double tr, long offset,
                    size_t T, double window, double cutoff_mult, double *out) {
  memset(out, 0, T * F * sizeof *out);
  double reach = window / cutoff_mult; /* in TRs */
  for (size_t w = 0; w < W; w++) {
    double c = onset[w] / tr + (double)offset; /* the event's position in frames */
    double t0 = ceil(c - reach), t1 = floor(c + reach);
    if (t0 < 0) t0 = 0;
    if (t1 > (double)T - 1) t1 = (double)T - 1;
    for (double tf = t0; tf <= t1; tf++) {
      double k = lanczos((tf - c) * cutoff_mult, window);
      if (k == 0) continue;
      double *row = out + (size_t)tf * F;
      for (size_t f = 0; f < F; f++)
        row[f] += k * x[w * F + f];
    }
  }
}
