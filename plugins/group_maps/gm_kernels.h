/*
 * gm_kernels.h — group statistics of per-subject maps: the noise-ceiling
 * normalization, the sign-flip permutation test of the group mean, and the
 * Benjamini-Hochberg and max-statistic thresholds. Plain functions over
 * float64 arrays, reused by the tests.
 */
#ifndef MYELIN_GM_KERNELS_H
#define MYELIN_GM_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* score = r / max(c, c_min) for each element, where the group ceiling
 * (mean over the S rows of c [S, V]) exceeds c_min; elsewhere in[v] = 0 and
 * the scores are 0. r, c, score: [S, V]. */
void gm_normalize(const double *r, const double *c, size_t S, size_t V, double c_min, double *score,
                  unsigned char *in);

/* Sign-flip test of the mean over S subjects of x [S, V], one-sided
 * (greater). Exact over all 2^S sign patterns when 2^S <= n_perm (p = the
 * fraction of patterns, identity included, whose mean >= the observed one),
 * else n_perm random patterns (xorshift from seed; p = (1 + count) / (1 +
 * n_perm)). mean [V], p [V] (1 where !in[v]); p_fwe [V] (may be NULL): the
 * same with each pattern's maximum over the voxels in `in`. Returns the
 * number of patterns used, 0 when out of memory. */
size_t gm_signflip(const double *x, size_t S, size_t V, const unsigned char *in, size_t n_perm, uint64_t seed,
                   double *mean, double *p, double *p_fwe);

/* Benjamini-Hochberg at level q over the voxels in `in`: sig[v] = 1 when
 * p[v] <= the largest p_(k) with p_(k) <= k q / m. Returns the count. */
size_t gm_fdr_bh(const double *p, const unsigned char *in, size_t V, double q, unsigned char *sig);

#endif
