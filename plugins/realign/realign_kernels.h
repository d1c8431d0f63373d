/*
 * realign_kernels.h — rigid-body (6-DOF) realignment of a volume to a
 * reference: plain C over float arrays, no framework types (used by the
 * realign plugin, its tests and bench/rtfmri).
 *
 * Volumes are float arrays in C order over (x, y, z) on one grid with a
 * voxel → world (RAS mm) affine A. A rigid transform T (4x4) maps a point of
 * the reference (world mm) to the same tissue in the moving volume.
 *
 * Estimation is Gauss-Newton least squares in the inverse-compositional
 * form (Baker & Matthews 2004): the Jacobian of the cost — the reference's
 * gradient times the warp's derivatives — and its 6x6 Hessian are fixed by
 * the reference, so each iteration is one trilinear resampling of the
 * moving volume at the sample points, an error, and a 6x6 solve. Samples are
 * the reference voxels above an eighth of the mean (SPM's brain mask rule)
 * away from the grid's border. A coarse pass on Gaussian-smoothed volumes
 * (FWHM 2 voxels) widens the capture range, then the full-resolution pass
 * refines it.
 *
 * Parameters (rg_params / rg_matrix): T(p) = R (p - c) + c + t, c the grid's
 * center in world mm, t = (tx, ty, tz) mm, R = Rx(rx) Ry(ry) Rz(rz) with
 * angles in degrees, right-handed about the world (RAS) x, y, z axes.
 */
#ifndef MYELIN_REALIGN_KERNELS_H
#define MYELIN_REALIGN_KERNELS_H

#include <stddef.h>
#include <stdint.h>

typedef struct rg_level {
  size_t n;       /* sample points */
  int32_t *ijk;   /* [n][3] reference voxel of each sample */
  float *r;       /* [n] reference value */
  float *J;       /* [n][6] d(reference)/d(parameters) at p = 0 */
  double H[6][6]; /* sum of J J^T over the samples: the Gauss-Newton matrix */
  float *smooth;  /* scratch: the moving volume smoothed (coarse level), or NULL */
} rg_level;

typedef struct rg_ref {
  int64_t dims[3];
  double A[4][4], Ainv[4][4];
  double c[3];          /* grid center, world mm */
  rg_level lev[2];      /* [0] coarse (smoothed), [1] full resolution */
  float *scratch;       /* [V] for smoothing the moving volume */
  double sigma_vox;     /* Gaussian sigma of the coarse level, voxels */
  uint64_t coarse_runs; /* estimates that took the coarse-to-fine path */
} rg_ref;

/* Prepares a reference volume (C order over dims) with affine A. Returns 0,
 * or -1 when out of memory or the volume has too few usable voxels. */
int rg_ref_init(rg_ref *ref, const float *vol, const int64_t dims[3], double A[4][4]);
void rg_ref_free(rg_ref *ref);

/* Estimates T (in: the starting guess, e.g. the previous volume's; out: the
 * estimate) aligning `mov` (same grid) to the reference. Returns the
 * iterations used, or -1 when out of memory or the solve is singular. */
int rg_estimate(rg_ref *ref, const float *mov, double T[4][4], int max_iter, double tol_mm);

/* out = mov resampled on the reference grid through T (trilinear; 0 outside). */
void rg_resample(const float *mov, const int64_t dims[3], double A[4][4], double Ainv[4][4], double T[4][4],
                 float *out);

/* T <-> (tx, ty, tz mm, rx, ry, rz degrees) about center c (see above). */
void rg_params(double T[4][4], const double c[3], double p[6]);
void rg_matrix(const double p[6], const double c[3], double T[4][4]);
/* Framewise displacement (Power et al. 2012): |dt| summed + 50 mm x |d angle
 * in radians| summed, between two parameter vectors. */
double rg_fd(const double prev[6], const double cur[6]);
/* Trilinear value of vol at voxel coordinates (x, y, z); 0 outside. */
float rg_trilinear(const float *vol, const int64_t dims[3], double x, double y, double z);
/* 4x4 inverse of a rigid or affine matrix (general); 0, or -1 if singular. */
int rg_inv4(double M[4][4], double out[4][4]);
/* Separable Gaussian smoothing in place, sigma per axis in voxels (<= 0 =
 * that axis untouched); scratch holds dims[0] * dims[1] * dims[2] floats. */
void rg_smooth(float *vol, const int64_t dims[3], const double sigma[3], float *scratch);

#endif
