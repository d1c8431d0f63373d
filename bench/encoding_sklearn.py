#!/usr/bin/python3
"""The peer: sklearn's encoding model on the bench data (bench/encoding.sh).

Usage: encoding_sklearn.py DIR T P V
Per contiguous outer fold (KFold(5)): StandardScaler + RidgeCV(alphas =
logspace(-1, 8, 10), alpha_per_target=True) fitted on the training rows,
Pearson r on the held-out rows. Prints the wall-clock and CPU seconds of the
fit/score loop (data loading excluded) and writes DIR/r_sklearn.f8 [5, V] and
DIR/alpha_sklearn.i4 [5, V] (alpha indices).
"""
import sys
import time

import numpy as np
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

ALPHAS = np.logspace(-1, 8, 10)


def pearson(a, b):
    a = a - a.mean(0)
    b = b - b.mean(0)
    den = np.sqrt((a**2).sum(0)) * np.sqrt((b**2).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * b).sum(0) / den
    return np.where(den > 0, r, 0.0)


def main():
    d, T, P, V = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    X = np.fromfile(f"{d}/X.f8").reshape(T, P)
    Y = np.fromfile(f"{d}/Y.f4", dtype=np.float32).reshape(T, V)
    rs, picks = [], []
    t0, c0 = time.perf_counter(), time.process_time()
    for tr, te in KFold(5).split(X):
        model = make_pipeline(StandardScaler(),
                              RidgeCV(alphas=ALPHAS, alpha_per_target=True))
        model.fit(X[tr], Y[tr])
        rs.append(pearson(Y[te].astype(np.float64), model.predict(X[te])))
        picks.append(np.searchsorted(ALPHAS, model[-1].alpha_))
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    np.array(rs).tofile(f"{d}/r_sklearn.f8")
    np.array(picks, dtype=np.int32).tofile(f"{d}/alpha_sklearn.i4")
    print(f"{dt:.3f} {cpu:.3f}")


if __name__ == "__main__":
    main()
