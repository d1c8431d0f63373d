#!/usr/bin/python3
"""Checks the encoding demo's outputs: r must be high in the planted box only.

    /usr/bin/python3 examples/encoding_demo/check_demo.py DATA [OUT]

Reads DATA/truth.npy (DATA: the demo folder make_demo.py wrote) and every
OUT/encoding/r_*.npy (OUT: the output folder, default out) written by
pipelines/encoding.yaml (npy_sink: the `data` field [V], voxels in flat C
order over the grid: the demo has no constant voxel, so `mask: auto` keeps
them all). Prints the mean r inside and outside the box per map and exits 1
unless every map separates them.
"""
import glob
import os
import sys

import numpy as np


def main():
    data = sys.argv[1] if len(sys.argv) > 1 else "out/encoding_demo"
    out = sys.argv[2] if len(sys.argv) > 2 else "out"
    inside = np.load(os.path.join(data, "truth.npy")).ravel() == 1
    maps = sorted(glob.glob(os.path.join(out, "encoding", "r_*.npy")))
    ok = bool(maps)
    for path in maps:
        r = np.load(path)
        good = r.shape == inside.shape and r[inside].min() > 0.3 and r[~inside].max() < 0.3
        print("%s: r inside %.3f (min %.3f), outside %.3f (max %.3f)%s" % (
            os.path.basename(path), r[inside].mean(), r[inside].min(), r[~inside].mean(),
            r[~inside].max(), "" if good else "  <- NOT separated"))
        ok = ok and good
    print("planted voxels recovered" if ok else "planted voxels NOT recovered")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
