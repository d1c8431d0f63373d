/*
 * events.h — word events to the TR grid, the two ways besides summing into
 * bins (ridge_bin_events): convolution with SPM's canonical HRF, and
 * Lanczos resampling as Huth et al. (2016). Plain functions over float64
 * arrays (events x [W, F] at times onset [W] -> out [T, F]), reused by the
 * tests.
 *
 * Frame t of the run is at time tau_t = (t - offset) * tr seconds (offset in
 * TRs, as the bins' offset: a positive offset moves the events later).
 *
 *   HRF:      out[t] = sum_w x_w * tr * h(tau_t - onset_w), with h SPM's
 *             canonical HRF (spm_hrf defaults: gamma(6) - gamma(16) / 6, unit
 *             scale, 32 s long) normalized to unit area over [0, 32 s]
 *             (h = (g6 - g16 / 6) / A, A = G6(32) - G16(32) / 6, G the gamma
 *             CDFs), so that each word adds about x_w over the whole run,
 *             like one bin would.
 *   Lanczos:  out[t] = sum_w x_w * L((tau_t - onset_w) / tr * cutoff_mult),
 *             L(u) = a sin(pi u) sin(pi u / a) / (pi u)^2, L(0) = 1, 0 for
 *             |u| > a (a = window, 3): Huth's lanczosinterp2D with the cutoff
 *             frequency 1 / tr times cutoff_mult.
 */
#ifndef MYELIN_EVENTS_H
#define MYELIN_EVENTS_H

#include <stddef.h>

/* SPM's canonical HRF at t seconds, unit area (0 outside (0, 32]). */
double events_spm_hrf(double t);

void events_hrf(const double *onset, const double *x, size_t W, size_t F, double tr, long offset, size_t T,
                double *out);
void events_lanczos(const double *onset, const double *x, size_t W, size_t F, double tr, long offset,
                    size_t T, double window, double cutoff_mult, double *out);

#endif
