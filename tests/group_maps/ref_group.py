#!/usr/bin/env python3
"""numpy reference of group_maps (test_group_maps.c).

  ref_group.py DIR  reads DIR/r.npy [L, S, V], DIR/c.npy [S, V], DIR/layers.npy [L]
                    writes DIR/ref_fdr.npz and DIR/ref_fwe.npz (normalize: ceiling) and
                    DIR/ref_none.npz (normalize: none, fdr)

For each layer: score = r / max(c, c_min) where mean_s c > c_min (else 0, out
of the mask); mean over subjects; exact one-sided sign-flip test over all
2^S patterns (p = share of patterns with mean >= observed); BH at q = 0.05
over the mask (statsmodels' fdr_bh rule, written out); FWE: share of patterns
whose max over the mask >= observed <= 0.05; best layer = argmax of the mean
among significant layers, -1 where none.
"""
import itertools
import sys

import numpy as np

d = sys.argv[1]
r, c, layers = np.load(f"{d}/r.npy"), np.load(f"{d}/c.npy"), np.load(f"{d}/layers.npy")
L, S, V = r.shape
c_min, q = 0.05, 0.05
signs = np.array(list(itertools.product([1, -1], repeat=S)))[:, ::-1]  # any order: all patterns


def bh(p, m):
    idx = np.where(m)[0]
    ps = np.sort(p[idx])
    k = np.where(ps <= np.arange(1, len(ps) + 1) * q / len(ps))[0]
    sig = np.zeros(V, bool)
    if len(k):
        sig[idx] = p[idx] <= ps[k[-1]]
    return sig


def run(normalize, threshold):
    out = {}
    means, sigs = [], []
    for li in range(L):
        if normalize:
            inm = c.mean(0) > c_min
            score = np.where(inm, r[li] / np.maximum(c, c_min), 0.0)
        else:
            inm = np.ones(V, bool)
            score = r[li]
        mean = score.mean(0)
        perm = signs @ score / S  # [2^S, V]
        tol = 1e-12 * np.abs(mean)
        p = np.where(inm, (perm >= mean - tol).mean(0), 1.0)
        mx = np.where(inm, perm, -np.inf).max(1)
        p_fwe = np.where(inm, (mx[:, None] >= mean - tol).mean(0), 1.0)
        sig = bh(p, inm) if threshold == "fdr" else inm & (p_fwe <= q)
        out[f"mean{li}"], out[f"p{li}"], out[f"pfwe{li}"], out[f"sig{li}"] = mean, p, p_fwe, sig.astype(np.uint8)
        means.append(mean)
        sigs.append(sig)
    means, sigs = np.array(means), np.array(sigs)
    masked = np.where(sigs, means, -np.inf)
    best = np.where(sigs.any(0), layers[masked.argmax(0)], -1).astype(float)
    out["best"] = best
    return out


np.savez(f"{d}/ref_fdr.npz", **run(True, "fdr"))
np.savez(f"{d}/ref_fwe.npz", **run(True, "fwe"))
np.savez(f"{d}/ref_none.npz", **run(False, "fdr"))
