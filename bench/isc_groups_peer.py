#!/usr/bin/python3
"""Peer side of bench/isc_groups.sh: BrainIAK's two-sample permutation_isc
semantics in numpy (group_assignment with two labels; A = np.unique()[0];
statistic summary(A) - summary(B); Monte Carlo label shuffles from its
RandomState reseeding chain), timed on the same ISCs the C driver reads.

  isc_groups_peer.py gen DIR S V N PAIRWISE    write iscs/groups/draws (raw)
  isc_groups_peer.py run DIR KIND SIDE         time the numpy test
  isc_groups_peer.py diff DIR                  compare with the driver's output
"""
import sys
import time
import warnings

import numpy as np
from scipy.spatial.distance import squareform

MAX_SEED = 2 ** 32 - 1


def summ(x, kind):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "mean":
            return np.tanh(np.nanmean(np.arctanh(x), axis=0))
        return np.nanmedian(x, axis=0)


def selectors(assign, perms, pairwise):
    """Per permutation, the row selector BrainIAK builds (labels or NaN)."""
    assign = np.asarray(assign)
    labels = np.unique(assign)
    if not pairwise:
        return [assign[p] for p in perms]
    srt = np.argsort(assign); unsrt = np.argsort(srt)
    n = len(assign); na = int(np.sum(assign == labels[0]))
    block = np.full((n, n), np.nan)
    block[:na, :na] = labels[0]; block[na:, na:] = labels[1]
    np.fill_diagonal(block, np.nan)
    return [squareform(block[p][:, p][unsrt][:, unsrt], checks=False) for p in perms]


def gen(d, S, V, N, pairwise):
    rs = np.random.RandomState(1)
    assign = np.array([0, 1] * (S // 2) + [0] * (S % 2))
    rows = S * (S - 1) // 2 if pairwise else S
    iscs = rs.uniform(-0.1, 0.5, size=(rows, V))
    if not pairwise:
        iscs[assign == 0, : V // 50] += 0.3  # planted effect, 2% of voxels
    iscs[rs.rand(rows, V) < 1e-4] = np.nan
    # BrainIAK's Monte Carlo chain: RandomState(seed).permutation, reseeded
    perms, state = [], 0
    for _ in range(N):
        prng = state if isinstance(state, np.random.RandomState) else np.random.RandomState(state)
        perms.append(prng.permutation(np.arange(S)))
        state = np.random.RandomState(prng.randint(0, MAX_SEED, dtype=np.int64))
    labels = np.unique(assign)
    if pairwise:
        srt = np.argsort(assign); unsrt = np.argsort(srt)
        draws = np.array([(assign[srt][p[unsrt]] == labels[1]) for p in perms], dtype=np.uint8)
    else:
        draws = np.array([(assign[p] == labels[1]) for p in perms], dtype=np.uint8)
    np.save(d + "/perms.npy", np.array(perms))
    np.save(d + "/assign.npy", assign)
    np.save(d + "/iscs.npy", iscs)
    iscs.astype("<f8").tofile(d + "/iscs.bin")
    (assign == labels[1]).astype(np.uint8).tofile(d + "/groups.bin")
    draws.tofile(d + "/draws.bin")
    with open(d + "/meta.txt", "w") as f:
        f.write("%d %d %d %d %d\n" % (S, V, N, pairwise, rows))


def run(d, kind, side):
    S, V, N, pairwise, rows = map(int, open(d + "/meta.txt").read().split())
    iscs = np.load(d + "/iscs.npy"); assign = np.load(d + "/assign.npy")
    perms = np.load(d + "/perms.npy")
    labels = np.unique(assign)
    t0 = time.perf_counter()
    sel0 = selectors(assign, [np.arange(S)], pairwise)[0]
    obs = summ(iscs[sel0 == labels[0]], kind) - summ(iscs[sel0 == labels[1]], kind)
    dist = np.empty((N, V))
    for i, sel in enumerate(selectors(assign, perms, pairwise)):
        dist[i] = summ(iscs[sel == labels[0]], kind) - summ(iscs[sel == labels[1]], kind)
    if side == "two-sided":
        num = np.sum(np.abs(dist) >= np.abs(obs), axis=0)
    elif side == "left":
        num = np.sum(dist <= obs, axis=0)
    else:
        num = np.sum(dist >= obs, axis=0)
    p = (num + 1) / (N + 1)
    sec = time.perf_counter() - t0
    np.save(d + "/np_p.npy", p); np.save(d + "/np_obs.npy", obs)
    print("numpy_seconds %.3f" % sec)


def diff(d):
    S, V, N, pairwise, rows = map(int, open(d + "/meta.txt").read().split())
    p = np.fromfile(d + "/our_p.bin"); obs = np.fromfile(d + "/our_obs.bin")
    np_p = np.load(d + "/np_p.npy"); np_obs = np.load(d + "/np_obs.npy")
    ok = np.isfinite(np_obs)
    print("max_abs_obs %.3g" % np.max(np.abs(obs[ok] - np_obs[ok])))
    print("p_equal_fraction %.6f" % np.mean(np.where(ok, p == np_p, np.isnan(p))))
    print("significant_fraction %.4f" % np.mean(np_p[ok] <= 0.01))


if __name__ == "__main__":
    cmd, d = sys.argv[1], sys.argv[2]
    if cmd == "gen":
        gen(d, *map(int, sys.argv[3:7]))
    elif cmd == "run":
        run(d, sys.argv[3], sys.argv[4])
    else:
        diff(d)
