/*
 * isc_kernels.h — inter-subject correlation (ISC) kernels, plain C over
 * arrays. No myelin types: these functions are unit-tested and benchmarked
 * alone and can be reused by other plugins.
 *
 * Layout: subject s's data is x[s], a float32 or float64 [T, V] array in C
 * order (time major, voxels contiguous), exactly the `run` tensor (isc_data).
 * Arithmetic and results are float64.
 * Leave-one-out results are [S, V] (one row when S == 2, as BrainIAK);
 * pairwise results are [S(S-1)/2, V] with pairs ordered (0,1), (0,2), ...
 * (scipy's squareform order).
 *
 * The semantics follow BrainIAK's brainiak.isc (isc, isfc, bootstrap_isc,
 * permutation_isc one- and two-sample, timeshift_isc, phaseshift_isc); every difference is listed
 * in plugins/isc/README.md. Return codes: 0, ISC_EARG (bad arguments) or
 * ISC_ENOMEM.
 */
#ifndef MYELIN_ISC_KERNELS_H
#define MYELIN_ISC_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { ISC_OK = 0, ISC_EARG = -1, ISC_ENOMEM = -2 };

/* BrainIAK's tolerate_nans: True -> {1, -1}; False -> {0, -1};
 * a float f -> {f != 0, f} (voxels where fewer than f*S subjects are NaN-free
 * become NaN; f == 0.0 is falsy in Python, so the mean is then strict). */
typedef struct isc_nan_policy {
  int tolerate;        /* 1: nanmean of the others; 0: plain mean (any NaN -> NaN) */
  double min_fraction; /* < 0: no threshold */
} isc_nan_policy;

typedef enum isc_summary_kind { ISC_SUMMARY_NONE = 0, ISC_SUMMARY_MEAN, ISC_SUMMARY_MEDIAN } isc_summary_kind;
typedef enum isc_side { ISC_SIDE_RIGHT = 0, ISC_SIDE_LEFT, ISC_SIDE_TWO } isc_side;

/* S subjects' [T, V] arrays, all float32 (f64 = 0) or all float64. */
typedef struct isc_data {
  const void *const *x;
  int f64;
  size_t S, T, V;
} isc_data;

/* Number of pairs S(S-1)/2. */
size_t isc_npairs(size_t S);
/* Row of pair {i, j} (i != j, either order) in squareform order. */
size_t isc_pair_index(size_t i, size_t j, size_t S);
/* Rows of an ISC result: 1 when S == 2, S (leave-one-out) or npairs. */
size_t isc_rows(size_t S, int pairwise);

/* ---- ISC ----------------------------------------------------------------- */

/* Leave-one-out ISC: row s is corr(x_s, mean of the other subjects), all in
 * one pass per voxel block (sum of all subjects, then x_s against sum - x_s).
 * out: [isc_rows(S, 0), V]. nthreads <= 0 uses every online CPU. */
int isc_loo(const isc_data *d, isc_nan_policy nan, int nthreads, double *out);

/* Leave-one-out with the subjects spread over several holders (MPI ranks),
 * in three steps that give isc_loo's values when the sums are isc_loo's,
 * over a slab of voxels [v0, v1) (W = v1 - v0; any slab: voxels are
 * independent):
 *  1. isc_loo_sums adds each subject of d to sum [T, W] (in subject order)
 *     and its time sum to colsum [W] (both float64, zeroed by the caller);
 *     the holders' sums are then added up (an allreduce);
 *  2. isc_loo_from_sums computes rows 0..rows-1 (rows <= d->S) of d's
 *     subjects against the global sums into columns v0..v1-1 of out
 *     [rows, V]; a voxel whose colsum is not finite (a NaN or Inf in some
 *     subject) is left NaN, to be recomputed by 3 from every subject's
 *     series;
 *  3. isc_loo_voxel: every row of one voxel from all S subjects' series
 *     g [S, T] with BrainIAK's NaN rules; row s goes to out[s * stride]. */
int isc_loo_sums(const isc_data *d, size_t v0, size_t v1, double *sum, double *colsum);
int isc_loo_from_sums(const isc_data *d, size_t rows, size_t v0, size_t v1, const double *sum,
                      const double *colsum, int nthreads, double *out);
int isc_loo_voxel(const double *g, size_t S, size_t T, isc_nan_policy nan, double *out, size_t stride);

/* Pairwise ISC: corr(x_i, x_j) for i < j. out: [isc_npairs(S), V]. */
int isc_pairwise(const isc_data *d, isc_nan_policy nan, int nthreads, double *out);

/* Summary over rows: MEAN is the Fisher-z mean tanh(nanmean(arctanh r)),
 * MEDIAN the nanmedian. out: [V]. */
void isc_summarize(const double *iscs, size_t rows, size_t V, isc_summary_kind kind, double *out);

/* ---- ISFC ---------------------------------------------------------------- */

/* Symmetrized inter-subject functional correlation, (C + C^T) / 2 where
 * C[i, j] = corr(x_s voxel i, others' mean voxel j) (leave-one-out) or
 * corr(x_a voxel i, x_b voxel j) (pairwise). out: [isc_rows(S, pairwise), V, V].
 * Uses BLAS dgemm. */
int isc_isfc(const isc_data *d, int pairwise, isc_nan_policy nan, double *out);

/* ISFC with the voxels spread over several holders (MPI ranks, each a slab
 * of every subject's voxels), in three steps that give isc_isfc's values:
 *  1. isc_isfc_mask: BrainIAK's voxel mask (threshold_nans) of d's voxels;
 *  2. isc_isfc_zscore: for output row `row` (a subject, leave-one-out, or a
 *     pair in (0,1), (0,2), ... order), za = the z-scored subject (pair: its
 *     first subject), zb = the z-scored others' mean (pair: its second
 *     subject), [T, V] each; bad [V] = either is NaN or constant, or masked;
 *     m: [T, V] scratch (leave-one-out with S > 2), else may be NULL;
 *  3. isc_isfc_block: the block of rows i (this holder's voxels) and columns
 *     j (any holder's), out[i * ld + cols[j]] = (C[i, j] + C[j, i]) / 2 with
 *     C[i, j] = sum_t za[t, i] zb[t, j]; scratch: 2 ni nj doubles. */
int isc_isfc_mask(const isc_data *d, isc_nan_policy nan, unsigned char *masked);
int isc_isfc_zscore(const isc_data *d, size_t row, int pairwise, isc_nan_policy nan,
                    const unsigned char *masked, double *za, double *zb, double *m, unsigned char *bad);
void isc_isfc_block(const double *za_i, const double *zb_i, const unsigned char *bad_i, size_t ni,
                    const double *za_j, const double *zb_j, const unsigned char *bad_j, const uint32_t *cols,
                    size_t nj, size_t T, double *scratch, double *out, size_t ld);

/* ---- streaming ------------------------------------------------------------ */

/* Welford co-moment accumulators for corr(x, y) per voxel, updated one time
 * point at a time (numerically equal to the two-pass batch formula). NaN in
 * x or y poisons the voxel, as in the batch computation. */
typedef struct isc_acc {
  size_t V;
  uint64_t n;
  double *mx, *my, *cxx, *cyy, *cxy;
} isc_acc;

int isc_acc_init(isc_acc *a, size_t V);
void isc_acc_free(isc_acc *a);
void isc_acc_reset(isc_acc *a);
/* x, y: [V] */
void isc_acc_add(isc_acc *a, const double *x, const double *y);
void isc_acc_corr(const isc_acc *a, double *r); /* [V]; NaN with < 2 points */

/* Streaming ISC: one update per TR with every subject's volume. Leave-one-out
 * costs O(S V) per TR and isc_stream_result equals isc_loo over the TRs seen;
 * pairwise keeps one accumulator per pair (O(S^2 V)) and equals isc_pairwise. */
typedef struct isc_stream {
  size_t S, V;
  int pairwise;
  isc_acc *acc;  /* [S]: leave-one-out rows (and every subject's NaN flags) */
  isc_acc *pacc; /* [S(S-1)/2] when pairwise */
  double *sum;   /* [V] scratch */
  double *y;     /* [V] scratch */
  uint32_t *cnt;
} isc_stream;

int isc_stream_init(isc_stream *st, size_t S, size_t V, int pairwise);
void isc_stream_free(isc_stream *st);
/* vol[s]: subject s's volume at this TR, [V]. */
void isc_stream_add(isc_stream *st, const double *const *vol);
/* out: [isc_rows(S, pairwise), V]. */
void isc_stream_result(const isc_stream *st, isc_nan_policy nan, double *out);

/* ---- statistics ----------------------------------------------------------- */

/* A small deterministic generator (xoshiro256**, seeded by splitmix64). */
typedef struct isc_rng {
  uint64_t s[4];
} isc_rng;
void isc_rng_seed(isc_rng *r, uint64_t seed);
uint64_t isc_rng_next(isc_rng *r);
uint32_t isc_rng_below(isc_rng *r, uint32_t n); /* uniform in [0, n), unbiased */
double isc_rng_unit(isc_rng *r);                /* uniform in [0, 1) */

/* p from a null distribution (BrainIAK p_from_null): count of null values at
 * least as extreme as observed (side), then (count + 1) / (n + 1), or
 * count / n when exact. NaN observed gives NaN. */
double isc_p_from_null(double observed, const double *null, size_t n, isc_side side, int exact);
/* numpy.percentile (linear); NaN when any value is NaN. Reorders v. */
double isc_percentile(double *v, size_t n, double q);

/* Bootstrap over subjects (BrainIAK bootstrap_isc). samples: [n, S] subject
 * indices drawn with replacement. iscs: [rows, V] from isc_loo/isc_pairwise.
 * observed, p: [V]; ci: [2, V] (lower row, upper row), may be NULL. Every
 * resampling function also stores its null distribution in dist [n, V] when
 * dist is not NULL. Needs S >= 3 (else ISC_EARG): with two subjects the one
 * ISC value resamples to itself or to NaN (a subject drawn twice), the
 * shifted null is 0 or NaN, and every r > 0 would get the floor p. */
int isc_bootstrap(const double *iscs, size_t S, size_t V, int pairwise, isc_summary_kind kind,
                  const uint32_t *samples, size_t n, double ci_percent, isc_side side, int nthreads,
                  double *observed, double *ci, double *p, double *dist);

/* One-sample sign-flip permutation test (BrainIAK permutation_isc without
 * groups). signs: [n, S] of +1/-1; exact: p = count / n (all 2^S flips). */
int isc_permutation(const double *iscs, size_t S, size_t V, int pairwise, isc_summary_kind kind,
                    const int8_t *signs, size_t n, int exact, isc_side side, int nthreads, double *observed,
                    double *p, double *dist);
/* Every flip vector in itertools.product([-1, 1], repeat=S) order; [2^S, S]. */
int8_t *isc_all_sign_flips(size_t S);

/* Two-sample permutation test (BrainIAK permutation_isc with a two-group
 * group_assignment). groups: [S], 0 for group A (BrainIAK's first label in
 * np.unique order) or 1 for B. observed = summary(A's rows) - summary(B's
 * rows): a leave-one-out row belongs to its subject's group (BrainIAK's
 * leave-one-out input is ISC within each group: isc_loo_groups); a pairwise row
 * (i, j) to A when both are in A, to B when both are in B, and to neither
 * when it straddles the groups. assign: [n, S], each resample's group of
 * every subject (a relabeling of groups, same group sizes: BrainIAK's
 * shuffled assignment). exact: p = count / n over every distinct assignment
 * (isc_all_group_assignments); else (count + 1) / (n + 1). Leave-one-out
 * needs S >= 3 (S rows). ISC_EARG for values other than 0/1, a single group,
 * or an assign row with other group sizes. */
int isc_permutation_groups(const double *iscs, size_t S, size_t V, int pairwise, isc_summary_kind kind,
                           const uint8_t *groups, const uint8_t *assign, size_t n, int exact, isc_side side,
                           int nthreads, double *observed, double *p, double *dist);
/* Leave-one-out ISC within each group, BrainIAK's input to its two-sample
 * leave-one-out test (isc() on each group's data, rows stacked): row s is
 * corr(x_s, mean of the other subjects of s's group), in subject order.
 * groups: [S] of 0/1, each group at least 3 subjects. out: [S, V]. */
int isc_loo_groups(const isc_data *d, const uint8_t *groups, isc_nan_policy nan, int nthreads, double *out);
/* Each group's summary over its rows (as isc_permutation_groups assigns
 * them): out [2, V], group A then B; observed = out[0] - out[1]. */
int isc_group_summaries(const double *iscs, size_t S, size_t V, int pairwise, isc_summary_kind kind,
                        const uint8_t *groups, double *out);
/* Distinct assignments of S subjects with na in group A: C(S, na)
 * (SIZE_MAX when it overflows). */
size_t isc_group_assignment_count(size_t S, size_t na);
/* Every distinct assignment with the group sizes of groups, [count, S],
 * group A's members in lexicographic order of combinations; NULL when there
 * are more than max (or out of memory). Each stands for the
 * nA! nB! permutations BrainIAK's exact test enumerates (S! in all), so
 * count / C(S, nA) is its count / S!. */
uint8_t *isc_all_group_assignments(const uint8_t *groups, size_t S, size_t max, size_t *count);

/* Circular time-shift null (BrainIAK timeshift_isc). shifts: [n, S] in [0, T).
 * observed: the summary of ISC computed with `nan`; p: [V]. */
int isc_timeshift(const isc_data *d, int pairwise, isc_summary_kind kind, isc_nan_policy nan,
                  const uint32_t *shifts, size_t n, isc_side side, int nthreads, double *observed, double *p,
                  double *dist);

/* Phase-randomization null (BrainIAK phaseshift_isc). phases: [n, S, F] in
 * radians with F = isc_phase_count(T) (one phase per positive frequency per
 * subject, shared by every voxel). */
size_t isc_phase_count(size_t T);
int isc_phaseshift(const isc_data *d, int pairwise, isc_summary_kind kind, isc_nan_policy nan,
                   const double *phases, size_t n, isc_side side, int nthreads, double *observed, double *p,
                   double *dist);

#ifdef __cplusplus
}
#endif
#endif
