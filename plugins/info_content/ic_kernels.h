/*
 * ic_kernels.h — numeric kernels of the information content stage.
 *
 * Plain C over arrays, no framework types, so the plugin, the tests and the
 * benchmark driver share them. Two families:
 *
 *  - Information content: per parcel a Gaussian kernel density estimate
 *    fitted on a reference run (Silverman bandwidth), evaluated as surprisal
 *    -ln p(x) in nats (Weninger et al. 2021, sklearn KernelDensity).
 *  - Network control over a structural connectome A: eigendecomposition of a
 *    symmetric A once, then closed forms per mode (Gramian, minimum energy,
 *    the paper's sampled mean(u^2), optimal control with a state penalty),
 *    so the energy of m states costs one GEMM plus O(m n). A non-symmetric A
 *    goes through Van Loan's block matrix exponential and a Cholesky solve.
 *
 * Matrices are row-major doubles. A set of m states is X[m, n] (row t is the
 * state at TR t), matching a run's [T, N] layout. Eigenvectors are V[n, n]
 * with column k the k-th eigenvector (V[i * n + k]).
 */
#ifndef IC_KERNELS_H
#define IC_KERNELS_H

#include <stddef.h>

/* Terms whose kernel weight is below exp(-IC_KDE_CUT) times the largest one
 * are skipped (about 10 bandwidths beyond the nearest reference point). */
#define IC_KDE_CUT 50.0

/* ---- statistics ---------------------------------------------------------- */
double ic_mean(const double *x, size_t n);
double ic_sd(const double *x, size_t n); /* population sd (ddof 0) */
/* Silverman's rule of thumb 1.06 sd n^(-1/5) (sd with ddof 0). */
double ic_silverman(const double *x, size_t n);
/* Clip limits of the reference: [max(min, mean - k sd), min(max, mean + k sd)];
 * for demeaned data the paper's [max(min, -k sd), min(max, k sd)]. */
void ic_clip_limits(const double *ref, size_t n, double k, double *lo, double *hi);
void ic_clip(double *x, size_t n, double lo, double hi);
void ic_sort(double *x, size_t n);

/* ---- kernel density surprisal ---------------------------------------------
 * out[j] = -ln p(x[j]) in nats for a Gaussian KDE with bandwidth h over the
 * sorted reference xs[0..n). Terms beyond the IC_KDE_CUT window of the
 * nearest reference point are skipped; the rest are summed with the largest
 * term factored out (max-shifted log-sum-exp). work holds n doubles.
 * A non-finite query gives NaN. */
void ic_kde_surprisal(const double *xs, size_t n, double h, const double *x, size_t m, double *out,
                      double *work);

/* ---- symmetric systems ---------------------------------------------------- */
/* 1 when A[n, n] is symmetric to a relative tolerance tol. */
int ic_is_symmetric(int n, const double *A, double tol);
/* The paper's preprocessing, in place: mirror the strict upper triangle onto
 * the lower, zero the diagonal, divide by sum |A|. 0, or -1 if A is all zero. */
int ic_prepare_weninger(int n, double *A);
/* Eigendecomposition of a symmetric A (LAPACKE dsyevr): w ascending, V as
 * above. A is not modified. Returns 0 or the LAPACK info / -1 (memory). */
int ic_eigh(int n, const double *A, double *w, double *V);
/* Scale s with A_norm = A / s - I, from A's eigenvalues w (ascending):
 *   nctpy:    s = c + max |w|                 (matrix_normalization)
 *   weninger: s = w* (1 + c), w* the eigenvalue of largest magnitude, signed
 *             as MATLAB eigs(A, 1) in the paper; on a tie |w_min| = w_max
 *             (bipartite graphs) the first in ascending order, i.e. the
 *             negative one, as numpy's argmax over eigvalsh. */
double ic_scale_nctpy(const double *w, int n, double c);
double ic_scale_weninger(const double *w, int n, double c);

/* Per-mode quadratic forms. For a mode with eigenvalue lam of A_norm and
 * modal coordinates a (x0) and b (xf), the energy of the transition is
 *   q[3k] a^2 + 2 q[3k+1] a b + q[3k+2] b^2,
 * and the energy of a state is the sum over modes. q holds 3 n doubles. */
/* Continuous Gramian weights g_k = (e^{2 lam T} - 1) / (2 lam) (T at lam = 0). */
double ic_gramian_weight(double lam, double T);
/* Minimum energy x0 -> xf: (xf - e^{AT} x0)^T W_T^-1 (...), B = I. */
void ic_quad_min_energy(const double *lam, int n, double T, double *q);
/* The paper's reported energy: mean of u^2 over (steps + 1) samples of
 * [0, T] and n nodes, for the minimum-energy input (B = I). */
void ic_quad_weninger(const double *lam, int n, double T, int steps, double *q);
/* nctpy optimal control (B = I, S = s I, xr = 0): the integral of u^T u over
 * [0, T] for the input minimising the integral of x^T S x + rho u^T u. */
void ic_quad_optimal(const double *lam, int n, double T, double rho, double s, double *q);

/* Energies of m states X[m, n] (one GEMM Y = X V, then O(n) per state).
 * x0_prev: the transition into state t starts from state t-1 (state 0 from
 * zero); otherwise every transition starts from zero. Y is m*n work. */
void ic_energy_states(int n, const double *V, const double *q, const double *X, size_t m,
                      int x0_prev, double *Y, double *out);
/* V with its rows relabelled: Vp[i, :] = V[perm[i], :] — the eigenvectors of
 * the connectome relabelled by perm (A_p[i, j] = A[perm[i], perm[j]]). */
void ic_permute_rows(int n, const double *V, const int *perm, double *Vp);

/* Full Gramian W = V diag(g) V^T (n*n). Returns 0 or -1 (memory). */
int ic_gramian_sym(int n, const double *V, const double *lam, double T, double *W);
/* Average controllability: continuous (Gramian diagonal over [0, T]) ... */
void ic_ave_control_cont(int n, const double *V, const double *lam, double T, double *out);
/* ... and discrete, for the discrete system's eigenvalues mu (|mu| < 1). */
void ic_ave_control_disc(int n, const double *V, const double *mu, double *out);
/* Modal controllability (discrete): sum_k V_ik^2 (1 - mu_k^2). */
void ic_modal_control(int n, const double *V, const double *mu, double *out);

/* ---- general systems ------------------------------------------------------ */
/* max |eigenvalue| of a general A (LAPACKE dgeev); negative on failure. */
double ic_spectral_radius(int n, const double *A);
/* Matrix exponential (Pade 13 with scaling and squaring, Higham 2005).
 * Returns 0, -1 (memory) or a LAPACK info. */
int ic_expm(int n, const double *A, double *E);
/* Gramian over [0, T] of (A, B[n, nb]) by Van Loan's block exponential of
 * [[-A, B B^T], [0, A^T]] T; also e^{AT} when eAT is not NULL. */
int ic_gramian_vanloan(int n, const double *A, const double *B, int nb, double T, double *W,
                       double *eAT);
/* Minimum energies (xf - e^{AT} x0)^T W^-1 (...) of m states through a
 * Cholesky factor of W and one triangular solve. W is overwritten by its
 * factor. work: m*n doubles. Returns 0 or the dpotrf info (W not positive
 * definite). */
int ic_energy_general(int n, double *W, const double *eAT, const double *X, size_t m,
                      int x0_prev, double *work, double *out);

/* ---- random permutations ------------------------------------------------- */
/* splitmix64 stream; the state is one uint64 kept by the caller. */
unsigned long long ic_rand_next(unsigned long long *s);
void ic_rand_perm(int n, int *perm, unsigned long long *s);

#endif
