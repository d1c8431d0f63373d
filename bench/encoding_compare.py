#!/usr/bin/python3
"""Compares the r maps of bench/encoding.sh: ours vs sklearn.

Usage: encoding_compare.py DIR V
Prints: max |r_ours - r_sklearn| over folds and voxels, the same for the
fold-mean map, the fraction of (fold, voxel) alpha choices that agree, and
the mean r of the planted (first quarter) and noise voxels.
"""
import sys

import numpy as np


def main():
    d, V = sys.argv[1], int(sys.argv[2])
    ro = np.fromfile(f"{d}/r_ours.f8").reshape(5, V)
    rs = np.fromfile(f"{d}/r_sklearn.f8").reshape(5, V)
    ao = np.fromfile(f"{d}/alpha_ours.i4", dtype=np.int32).reshape(5, V)
    as_ = np.fromfile(f"{d}/alpha_sklearn.i4", dtype=np.int32).reshape(5, V)
    q = V // 4
    print(f"max |dr| per fold {np.abs(ro - rs).max():.3g}; fold-mean map "
          f"{np.abs(ro.mean(0) - rs.mean(0)).max():.3g}; alphas agree "
          f"{(ao == as_).mean() * 100:.3f}%; mean r planted {ro.mean(0)[:q].mean():.3f}, "
          f"noise {ro.mean(0)[q:].mean():.3f}")


if __name__ == "__main__":
    main()
