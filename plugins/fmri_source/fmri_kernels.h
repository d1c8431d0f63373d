/*
 * fmri_kernels.h — numeric kernels of the fMRI loader, plain C over arrays.
 *
 * A run is a row-major float matrix X [T, V] (time by voxel). Every kernel
 * loops time outer and voxel inner so the inner loop is contiguous and
 * vectorizes; per-voxel accumulators are double. No framework types, so
 * other plugins (isc, encoding) and benchmarks can reuse them.
 */
#ifndef MYELIN_FMRI_KERNELS_H
#define MYELIN_FMRI_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* keep[v] = 1 when column v is finite everywhere and not constant over time
 * ("non-zero variance"); returns the number kept. */
size_t fmri_nonconstant(const float *X, size_t T, size_t V, uint8_t *keep);

/* Removes the least-squares polynomial trend of degree `order` (0 = mean,
 * 1 = linear, ...) from every column, in place. When order >= T - 1 the
 * polynomial fits every series exactly and X becomes exactly 0 (not rounding
 * noise: the caller should warn). Returns 0, or -1 when out of memory. */
int fmri_detrend(float *X, size_t T, size_t V, int order);

/* z-scores every column in place (population std, ddof = 0, as
 * scipy.stats.zscore); a constant column becomes 0. Returns 0 or -1 (OOM). */
int fmri_zscore(float *X, size_t T, size_t V);

/* Parcel means: out [T, P] = mean over voxels v with parcel[v] == p of
 * X[t, v]; parcel[v] < 0 skips the voxel. Parcels with no voxel are NaN.
 * Returns 0 or -1 (OOM). */
int fmri_parcel_means(const float *X, size_t T, size_t V, const int32_t *parcel, size_t P, float *out);

/* Keeps the columns with keep[v] != 0, in place; returns the new V. */
size_t fmri_compact_columns(float *X, size_t T, size_t V, const uint8_t *keep);

#endif
