#!/usr/bin/python3
"""Synthetic encoding-model data for bench/encoding.sh.

Usage: encoding_make.py DIR T F V [SEED]
Writes DIR/X.f8 (float64 [T, 5F]: F features with FIR delays 0..4, zero
padding) and DIR/Y.f4 (float32 [T, V]): a quarter of the voxels carry a
planted low-rank linear response to the delayed features plus noise of
varying level, the rest is noise only.
"""
import sys

import numpy as np


def main():
    out, T, F, V = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    rng = np.random.default_rng(int(sys.argv[5]) if len(sys.argv) > 5 else 0)
    feats = rng.standard_normal((T, F))
    X = np.zeros((T, 5 * F))
    for d in range(5):
        X[d:, d * F:(d + 1) * F] = feats[: T - d]
    nsig = V // 4
    B = rng.standard_normal((5 * F, 8)) / np.sqrt(5 * F)
    C = rng.standard_normal((8, nsig))
    Y = rng.standard_normal((T, V)) * rng.uniform(0.5, 4.0, V)
    Y[:, :nsig] += X @ B @ C
    Y += rng.uniform(-10, 10, V)
    X.tofile(f"{out}/X.f8")
    Y.astype(np.float32).tofile(f"{out}/Y.f4")


if __name__ == "__main__":
    main()
