#!/usr/bin/python3
"""Reference numbers for tests/isc/test_isc_kernels.c.

Re-implements brainiak.isc's code paths with numpy/scipy (isc, isfc,
bootstrap_isc, permutation_isc one- and two-sample, timeshift_isc,
phaseshift_isc) on the issue's test data, replaying fixed resampling draws so the C kernels can be compared
value by value. Run with Debian's /usr/bin/python3; prints C initializers.
"""
import numpy as np
from scipy.fftpack import fft, ifft
from scipy.spatial.distance import squareform

T, V, S = 40, 3, 5
t = np.arange(T)[:, None, None]; v = np.arange(V)[None, :, None]; s = np.arange(S)[None, None, :]
D = (np.sin(0.3 * (t + 1) * (v + 1)) + np.cos(0.7 * (t + 1) * (s + 1) + 0.5 * v) * (0.5 + 0.5 * v))
D = D.astype(np.float32).astype(np.float64)  # the C side reads float32


def acorr(x, y):
    x = x - x.mean(0); y = y - y.mean(0)
    return (x * y).sum(0) / np.sqrt((x * x).sum(0) * (y * y).sum(0))


def threshold_nans(d, tol):
    nans = np.all(np.any(np.isnan(d), axis=0), axis=1)
    if type(tol) is float:
        nans = nans | ~(np.sum(~np.any(np.isnan(d), axis=0), axis=1) >= d.shape[-1] * tol)
    return ~nans


def isc(d, pairwise=False, summary=None, tol=True):
    n = d.shape[2]
    mean = np.nanmean if tol else np.mean
    mask = threshold_nans(d, tol)
    dm = d[:, mask, :]
    if n == 2:
        st = acorr(dm[..., 0], dm[..., 1])[None]
    elif pairwise:
        st = np.column_stack([squareform(np.corrcoef(dm[:, j, :].T), checks=False)
                              for j in range(dm.shape[1])])
    else:
        with np.errstate(all="ignore"):
            st = np.array([acorr(dm[..., i], mean(np.delete(dm, i, 2), 2)) for i in range(n)])
    out = np.full((st.shape[0], d.shape[1]), np.nan); out[:, mask] = st
    if summary:
        out = summ(out, summary)[None]
    return out


def summ(x, kind, axis=0):
    if kind == "mean":
        with np.errstate(all="ignore"):
            return np.tanh(np.nanmean(np.arctanh(x), axis=axis))
    return np.nanmedian(x, axis=axis)


def p_from_null(obs, dist, side, exact=False):
    if side == "two-sided":
        num = np.sum(np.abs(dist) >= np.abs(obs), axis=0)
    elif side == "left":
        num = np.sum(dist <= obs, axis=0)
    else:
        num = np.sum(dist >= obs, axis=0)
    n = len(dist)
    return num / n if exact else (num + 1) / (n + 1)


def carr(name, a):
    a = np.asarray(a, dtype=np.float64).ravel()
    body = ", ".join("%.17g" % x if np.isfinite(x) else "NAN" for x in a)
    print("static const double %s[%d] = {%s};" % (name, a.size, body))


def iarr(name, a, ctype="uint32_t"):
    a = np.asarray(a).ravel()
    print("static const %s %s[%d] = {%s};" % (ctype, name, a.size, ", ".join(str(int(x)) for x in a)))


carr("REF_LOO", isc(D))
carr("REF_PAIR", isc(D, pairwise=True))
carr("REF_MEAN", isc(D, summary="mean"))
carr("REF_MEDIAN", isc(D, summary="median"))
carr("REF_PAIR_MEDIAN", isc(D, pairwise=True, summary="median"))
carr("REF_TWO", isc(D[:, :, :2]))

Dn = D.copy(); Dn[5, 1, 2] = np.nan
carr("REF_NAN_TRUE", isc(Dn, tol=True))
carr("REF_NAN_FALSE", isc(Dn, tol=False))
Dn2 = Dn.copy(); Dn2[7, 2, 0] = np.nan; Dn2[9, 2, 3] = np.nan
carr("REF_NAN2_TRUE", isc(Dn2, tol=True))
carr("REF_NAN2_F07", isc(Dn2, tol=0.7))
carr("REF_NAN2_F05", isc(Dn2, tol=0.5))
carr("REF_NAN2_PAIR_F07", isc(Dn2, pairwise=True, tol=0.7))

# ISFC (symmetrized), leave-one-out and pairwise
def corr_mat(a, b):
    a = (a - a.mean(0)) / np.sqrt(((a - a.mean(0)) ** 2).sum(0))
    b = (b - b.mean(0)) / np.sqrt(((b - b.mean(0)) ** 2).sum(0))
    return a.T @ b

loo = [corr_mat(D[..., i], np.mean(np.delete(D, i, 2), 2)) for i in range(S)]
carr("REF_ISFC_LOO", np.array([(m + m.T) / 2 for m in loo]))
pw = []
for i in range(S):
    for j in range(i + 1, S):
        m = corr_mat(D[..., i], D[..., j]); pw.append((m + m.T) / 2)
carr("REF_ISFC_PAIR", np.array(pw))

# bootstrap with fixed draws
rng = np.random.RandomState(7)
NB = 50
samples = np.array([sorted(rng.choice(np.arange(S), size=S)) for _ in range(NB)])
iarr("BOOT_SAMPLES", samples)
for pairwise, kind, side, tag in [(False, "mean", "right", "LOO_MEAN"),
                                  (True, "median", "two-sided", "PAIR_MEDIAN")]:
    iscs = isc(D, pairwise=pairwise)
    obs = summ(iscs, kind)
    dist = []
    for smp in samples:
        if pairwise:
            cols = []
            for vi in iscs.T:
                sq = squareform(vi, force="tomatrix"); np.fill_diagonal(sq, 1)
                vs = squareform(sq[smp, :][:, smp], checks=False)
                vs[vs == 1.0] = np.nan
                cols.append(vs)
            sample = np.column_stack(cols)
        else:
            sample = iscs[smp, :]
        dist.append(summ(sample, kind))
    dist = np.array(dist)
    ci = (np.percentile(dist, 2.5, axis=0), np.percentile(dist, 97.5, axis=0))
    p = p_from_null(obs, dist - obs, side)
    carr("BOOT_%s_OBS" % tag, obs); carr("BOOT_%s_CI" % tag, np.array(ci)); carr("BOOT_%s_P" % tag, p)

# exact sign-flip permutation (2^5 = 32 <= 1000)
import itertools as it
flips = np.array(list(it.product([-1, 1], repeat=S)))
for pairwise, kind, tag in [(False, "median", "LOO_MEDIAN"), (True, "mean", "PAIR_MEAN")]:
    iscs = isc(D, pairwise=pairwise)
    obs = summ(iscs, kind)
    dist = []
    for f in flips:
        if pairwise:
            f = squareform(np.ones((S, S)) * f * f[:, None], checks=False)
        dist.append(summ(iscs * f[:, None], kind))
    carr("PERM_%s_P" % tag, p_from_null(obs, np.array(dist), "right", exact=True))

# time shift with fixed shifts
NS = 40
shifts = rng.choice(np.arange(T), size=(NS, S), replace=True)
iarr("SHIFTS", shifts)
for pairwise, kind, tag in [(False, "mean", "LOO_MEAN"), (True, "median", "PAIR_MEDIAN")]:
    obs = isc(D, pairwise=pairwise, summary=kind)[0]
    dist = []
    for sh in shifts:
        if pairwise:
            sd = np.dstack([np.concatenate((D[-k:, :, i], D[:-k, :, i])) for i, k in enumerate(sh)])
            dist.append(isc(sd, pairwise=True, summary=kind)[0])
        else:
            vals = []
            for i, k in enumerate(sh):
                ss = np.concatenate((D[-k:, :, i], D[:-k, :, i]))
                vals.append(isc(np.dstack((ss, np.mean(np.delete(D, i, 2), 2))))[0])
            dist.append(summ(np.array(vals), kind))
    dist = np.array(dist)
    carr("TSHIFT_%s_NULL0" % tag, dist[:, 0])
    carr("TSHIFT_%s_P" % tag, p_from_null(obs, dist, "right"))

# phase randomization with fixed phases (BrainIAK draws [F, 1, S])
F = T // 2 - 1
phases = rng.rand(NS, F, 1, S) * 2 * np.pi
carr("PHASES", np.transpose(phases[:, :, 0, :], (0, 2, 1)))  # -> [n, S, F]
pos = np.arange(1, T // 2); neg = np.arange(T - 1, T // 2, -1)
for pairwise, kind, tag in [(False, "median", "LOO_MEDIAN"), (True, "mean", "PAIR_MEAN")]:
    obs = isc(D, pairwise=pairwise, summary=kind)[0]
    dist = []
    for ph in phases:
        fd = fft(D, axis=0)
        fd[pos, :, :] *= np.exp(1j * ph); fd[neg, :, :] *= np.exp(-1j * ph)
        sd = np.real(ifft(fd, axis=0))
        if pairwise:
            dist.append(isc(sd, pairwise=True, summary=kind)[0])
        else:
            vals = [isc(np.dstack((sd[:, :, i], np.mean(np.delete(D, i, 2), 2))))[0] for i in range(S)]
            dist.append(summ(np.array(vals), kind))
    dist = np.array(dist)
    carr("PSHIFT_%s_NULL0" % tag, dist[:, 0])
    carr("PSHIFT_%s_P" % tag, p_from_null(obs, dist, "right"))

# ---- two-sample permutation test (permutation_isc with a group_assignment) ----
# BrainIAK: group A is np.unique(labels)[0] and the statistic is summary(A) -
# summary(B). Leave-one-out: a relabeling is assignment[perm]. Pairwise: a
# block matrix (label inside a group, NaN across groups and on the diagonal)
# is built in sorted-label order, its rows/columns permuted, unsorted and
# squareform'ed into a selector of pair rows. Exact (all S! permutations)
# when n_permutations >= S!; else Monte Carlo with BrainIAK's reseeding chain
# (each iteration a new RandomState seeded by randint(0, 2**32 - 1)).
import math
import warnings

MAX_SEED = 2 ** 32 - 1


def pair_selector(assign, perm):
    """Selector of pair rows for labels sorted, permuted by perm, unsorted."""
    assign = np.asarray(assign)
    labels = np.unique(assign)
    srt = np.argsort(assign); unsrt = np.argsort(srt)
    sizes = [int(np.sum(assign == l)) for l in labels]
    n = len(assign)
    block = np.full((n, n), np.nan)
    block[:sizes[0], :sizes[0]] = labels[0]
    block[sizes[0]:, sizes[0]:] = labels[1]
    np.fill_diagonal(block, np.nan)
    shuffled = block[perm, :][:, perm]
    return squareform(shuffled[unsrt, :][:, unsrt], checks=False)


def relabeled(assign, perm, pairwise):
    """Each subject's label under a BrainIAK shuffle, as 0 (group A) / 1 (B)."""
    assign = np.asarray(assign)
    labels = np.unique(assign)
    if pairwise:
        srt = np.argsort(assign); unsrt = np.argsort(srt)
        new = assign[srt][np.asarray(perm)[unsrt]]
    else:
        new = assign[np.asarray(perm)]
    return (new == labels[1]).astype(np.uint8)


def two_sample(iscs, assign, pairwise, kind, n_perm, side, seed):
    assign = np.asarray(assign)
    labels = np.unique(assign)
    n = len(assign)

    def stat(perm):
        if pairwise:
            sel = pair_selector(assign, perm)
        else:
            sel = assign[np.asarray(perm)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # all-NaN groups: nanmean/nanmedian warn, give NaN
            return summ(iscs[sel == labels[0], :], kind) - summ(iscs[sel == labels[1], :], kind)

    # observed: the assignment itself (pairwise: the unshuffled block matrix)
    obs = stat(np.arange(n))
    exact = n_perm >= math.factorial(n)
    draws, dist = [], []
    if exact:
        perms = it.permutations(range(n))
    else:
        def chain():
            rs = seed
            for _ in range(n_perm):
                prng = rs if isinstance(rs, np.random.RandomState) else np.random.RandomState(rs)
                perm = prng.permutation(np.arange(n))
                rs = np.random.RandomState(prng.randint(0, MAX_SEED, dtype=np.int64))
                yield perm
        perms = chain()
    for perm in perms:
        perm = np.asarray(perm)
        draws.append(relabeled(assign, perm, pairwise))
        # the 0/1 labels select the same rows as BrainIAK's selector
        sel = pair_selector(assign, perm) if pairwise else assign[perm]
        mine = np.asarray(draws[-1])
        if pairwise:
            ii, jj = np.triu_indices(n, 1)
            want = np.where(mine[ii] != mine[jj], -1, mine[ii])
            got = np.where(np.isnan(sel), -1, (sel == labels[1]).astype(int))
            assert np.array_equal(want, got)
        else:
            assert np.array_equal(mine, (sel == labels[1]).astype(np.uint8))
        dist.append(stat(perm))
    dist = np.array(dist)
    p = p_from_null(obs, dist, side, exact=exact)
    p = np.where(np.isnan(obs), np.nan, p)  # README: NaN observed -> NaN p
    return obs, p, dist, np.array(draws), exact


def groups01(assign):
    assign = np.asarray(assign)
    return (assign == np.unique(assign)[1]).astype(np.uint8)


G5 = [2, 1, 2, 1, 2]  # group A (label 1) = subjects 1 and 3
iarr("G5", groups01(G5), "uint8_t")
iscs_loo, iscs_pair = isc(D), isc(D, pairwise=True)
for pairwise, kind, tag in [(False, "median", "LOO_MEDIAN"), (False, "mean", "LOO_MEAN"),
                            (True, "mean", "PAIR_MEAN"), (True, "median", "PAIR_MEDIAN")]:
    for side in ("right", "left", "two-sided"):
        obs, p, dist, _, exact = two_sample(iscs_pair if pairwise else iscs_loo, G5, pairwise,
                                            kind, 1000, side, None)
        assert exact and len(dist) == 120
        sfx = {"right": "R", "left": "L", "two-sided": "2"}[side]
        if side == "right":
            carr("GPERM_%s_OBS" % tag, obs)
        carr("GPERM_%s_P%s" % (tag, sfx), p)

# Monte Carlo (30 < 5! = 120), BrainIAK's draws replayed
for pairwise, kind, side, seed, tag in [(False, "mean", "two-sided", 11, "LOO_MEAN"),
                                        (True, "median", "right", 12, "PAIR_MEDIAN")]:
    obs, p, dist, draws, exact = two_sample(iscs_pair if pairwise else iscs_loo, G5, pairwise,
                                            kind, 30, side, seed)
    assert not exact
    iarr("GMC_%s_ASSIGN" % tag, draws, "uint8_t")
    carr("GMC_%s_DIST" % tag, dist)
    carr("GMC_%s_P" % tag, p)

# 7 subjects (3 + 4), a group effect, NaN ISCs; exact over 7! = 5040
prs = np.random.RandomState(5)
G7 = [0, 1, 1, 0, 1, 0, 1]
iarr("G7", groups01(G7), "uint8_t")
L7 = prs.uniform(-0.2, 0.6, size=(7, 4)) + 0.3 * (np.array(G7) == 0)[:, None]
L7[2, 1] = np.nan
L7[[0, 3, 5], 3] = np.nan  # voxel 3: group A all NaN -> observed NaN
P7 = prs.uniform(-0.2, 0.6, size=(21, 4))
P7[4, 2] = np.nan
carr("L7", L7)
carr("P7", P7)
for iscs7, pairwise, kind, side, tag in [(L7, False, "mean", "right", "LOO_MEAN"),
                                         (L7, False, "median", "two-sided", "LOO_MEDIAN"),
                                         (P7, True, "mean", "left", "PAIR_MEAN")]:
    obs, p, dist, _, exact = two_sample(iscs7, G7, pairwise, kind, 6000, side, None)
    assert exact and len(dist) == 5040
    carr("G7_%s_OBS" % tag, obs)
    carr("G7_%s_P" % tag, p)

# The whole leave-one-out two-sample path as BrainIAK's tests run it: isc()
# on each group's data, rows stacked (here back in subject order, with the
# assignment to match), then permutation_isc; 6 subjects, exact over 6!.
t6 = np.arange(T)[:, None, None]; v6 = np.arange(V)[None, :, None]; s6 = np.arange(6)[None, None, :]
D6 = (np.sin(0.3 * (t6 + 1) * (v6 + 1)) + np.cos(0.7 * (t6 + 1) * (s6 + 1) + 0.5 * v6) * (0.5 + 0.5 * v6))
D6 = D6.astype(np.float32).astype(np.float64)
G6 = [1, 2, 1, 2, 1, 2]
iarr("G6", groups01(G6), "uint8_t")
loo6 = np.full((6, V), np.nan)
for lab in np.unique(G6):
    members = np.flatnonzero(np.array(G6) == lab)
    loo6[members] = isc(D6[:, :, members])
carr("GLOO6_ISCS", loo6)
obs, p, dist, _, exact = two_sample(loo6, G6, False, "mean", 1000, "two-sided", None)
assert exact and len(dist) == 720
carr("GLOO6_MEAN_OBS", obs)
carr("GLOO6_MEAN_P", p)

# ---- time-/phase-shift nulls with partial NaN (Dn2: voxel 1 subject 2;
# voxel 2 subjects 0 and 3). Pairwise: BrainIAK's null is the summary of the
# shifted data's pairwise ISC; pairs with a NaN subject are NaN in every
# resample (a shift or a phase randomization keeps the NaN), the summary skips
# them, and the null of the other pairs is valid. Leave-one-out: the others'
# plain mean is NaN, the null is all NaN, and BrainIAK's formula would give the
# floor 1/(n+1): we report NaN there (README), as for a NaN observed value.
def p_or_nan(obs, dist, side):
    p = p_from_null(obs, dist, side)
    return np.where(np.isnan(obs) | np.all(np.isnan(dist), axis=0), np.nan, p)


def tshift_null(d, sh, pairwise, kind, tol):
    if pairwise:
        sd = np.dstack([np.concatenate((d[-k:, :, i], d[:-k, :, i])) for i, k in enumerate(sh)])
        return isc(sd, pairwise=True, summary=kind, tol=tol)[0]
    vals = []
    for i, k in enumerate(sh):
        ss = np.concatenate((d[-k:, :, i], d[:-k, :, i]))
        vals.append(isc(np.dstack((ss, np.mean(np.delete(d, i, 2), 2))), tol=tol)[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return summ(np.array(vals), kind)


def pshift_null(d, ph, pairwise, kind, tol):
    fd = fft(d, axis=0)
    fd[pos, :, :] *= np.exp(1j * ph); fd[neg, :, :] *= np.exp(-1j * ph)
    sd = np.real(ifft(fd, axis=0))
    if pairwise:
        return isc(sd, pairwise=True, summary=kind, tol=tol)[0]
    vals = [isc(np.dstack((sd[:, :, i], np.mean(np.delete(d, i, 2), 2))), tol=tol)[0] for i in range(S)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return summ(np.array(vals), kind)


with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # nanmean/nanmedian of all-NaN columns
    for pairwise, kind, tol, tag in [(True, "median", True, "PAIR_MEDIAN"),
                                     (True, "mean", 0.7, "PAIR_MEAN_F07"),
                                     (False, "mean", True, "LOO_MEAN")]:
        obs = isc(Dn2, pairwise=pairwise, summary=kind, tol=tol)[0]
        dist = np.array([tshift_null(Dn2, sh, pairwise, kind, tol) for sh in shifts])
        carr("TSHIFT_NAN_%s_OBS" % tag, obs)
        carr("TSHIFT_NAN_%s_NULL1" % tag, dist[:, 1])
        carr("TSHIFT_NAN_%s_P" % tag, p_or_nan(obs, dist, "right"))
        obs = isc(Dn2, pairwise=pairwise, summary=kind, tol=tol)[0]
        dist = np.array([pshift_null(Dn2, ph, pairwise, kind, tol) for ph in phases])
        carr("PSHIFT_NAN_%s_NULL1" % tag, dist[:, 1])
        carr("PSHIFT_NAN_%s_P" % tag, p_or_nan(obs, dist, "two-sided"))
