#!/usr/bin/env python3
"""scipy/numpy references for plugins/encoding/events.c (test_events.c).

  ref_events.py OUTDIR  writes hrf1.npy, hrf3.npy, lanczos3.npy, lanczos_half.npy

Cases (the same in test_events.c):
  hrf1:   one event, onset 0, x = 1; TR 2, T 20, offset 0
  hrf3:   onsets [0.7, 3.1, 10.25, 40], x [[1, -2], [0.5, 3], [2, 1], [1, 1]],
          TR 1.5, T 30, offset 1
  lanczos3 / lanczos_half: the same events, TR 2, T 25, offset 0, window 3 /
          window 2 with offset -1
HRF: SPM's canonical HRF (spm_hrf defaults: gamma(6) - gamma(16)/6, 32 s),
normalized to unit area over [0, 32 s], times TR, sampled at (t - offset) TR.
Lanczos: Huth et al.'s lanczosinterp2D (lanczosfun with cutoff 1 / TR).
"""
import sys

import numpy as np
from scipy.stats import gamma

out = sys.argv[1]


def hrf(t):
    area = gamma.cdf(32, 6) - gamma.cdf(32, 16) / 6
    v = (gamma.pdf(t, 6) - gamma.pdf(t, 16) / 6) / area
    return np.where((t > 0) & (t <= 32), v, 0.0)


def hrf_design(onset, x, tr, T, offset):
    tau = (np.arange(T) - offset) * tr
    return np.array([[tr * sum(hrf(tau[t] - onset[w]) * x[w][f] for w in range(len(onset)))
                      for f in range(len(x[0]))] for t in range(T)])


def lanczosfun(cutoff, t, window=3):  # Huth et al. 2016 (interpdata.py)
    t = t * cutoff
    with np.errstate(divide="ignore", invalid="ignore"):
        val = window * np.sin(np.pi * t) * np.sin(np.pi * t / window) / (np.pi ** 2 * t ** 2)
    val[t == 0] = 1.0
    val[np.abs(t) > window] = 0.0
    return val


def lanczosinterp2D(data, oldtime, newtime, window=3, cutoff_mult=1.0):
    cutoff = 1 / np.mean(np.diff(newtime)) * cutoff_mult
    sincmat = np.zeros((len(newtime), len(oldtime)))
    for i in range(len(newtime)):
        sincmat[i, :] = lanczosfun(cutoff, newtime[i] - oldtime, window)
    return np.dot(sincmat, data)


onsets = np.array([0.7, 3.1, 10.25, 40.0])
x = np.array([[1, -2], [0.5, 3], [2, 1], [1, 1]], float)
np.save(f"{out}/hrf1.npy", hrf_design([0.0], [[1.0]], 2.0, 20, 0))
np.save(f"{out}/hrf3.npy", hrf_design(onsets, x, 1.5, 30, 1))
np.save(f"{out}/lanczos3.npy", lanczosinterp2D(x, onsets, np.arange(25) * 2.0, 3))
np.save(f"{out}/lanczos_half.npy", lanczosinterp2D(x, onsets, (np.arange(25) + 1) * 2.0, 2))
