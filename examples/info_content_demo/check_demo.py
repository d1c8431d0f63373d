#!/usr/bin/python3
"""Check the demo's output OUT/info_content/info.mpk against an independent computation:
sklearn's KernelDensity for the information content and the paper's energy
by numpy (closed form on the eigendecomposition; see plugins/info_content/README.md).
Exit 1 on any mismatch; prints the mean information and energy per task.

    check_demo.py DATA [OUT]         output of pipelines/info_content.yaml (tolerance 1e-9)
    check_demo.py DATA [OUT] --bids  output of examples/info_content_demo/bids.yaml: the
                                runs went through NIfTI voxels and fmri_source's
                                parcel means (float32), so tolerance 1e-5"""
import os
import sys

import numpy as np

try:
    import myelin
except ImportError:  # not installed (pip install ./python): the repository's copy
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
    import myelin


def main():
    args = [a for a in sys.argv[1:] if a != "--bids"]
    bids = "--bids" in sys.argv[1:]
    d = args[0] if args else "out/info_content_demo"  # DATA: the demo folder make_demo.py wrote
    o = (args[1] if len(args) > 1 else "out") + "/info_content"  # OUT: the pipeline's output folder
    tol = 1e-5 if bids else 1e-9
    runs = {m["task"]: m for m in myelin.read(f"{d}/runs.mpk")}
    maps = list(myelin.read(f"{o}/info_bids.mpk" if bids else f"{o}/info.mpk"))
    A = np.load(f"{d}/connectome.npy")
    order = ["gambling", "rest", "social"] if bids else ["social", "rest", "gambling"]
    assert [m["task"] for m in maps] == order, [m.get("task") for m in maps]
    rest = runs["rest"]["data"].astype(np.float64)
    rest = rest - rest.mean(0)
    lo = np.maximum(rest.min(0), -4 * rest.std(0))
    hi = np.minimum(rest.max(0), 4 * rest.std(0))
    rest = np.clip(rest, lo, hi)
    n = rest.shape[1]
    try:
        from sklearn.neighbors import KernelDensity
        kdes = [KernelDensity(bandwidth=1.06 * rest[:, k].std() * len(rest) ** -0.2).fit(rest[:, [k]])
                for k in range(n)]
    except ImportError:
        kdes = None
    # the paper's energy: mean u^2 of the minimum-energy input, closed form
    Ap = np.triu(A, 1)
    Ap = Ap + Ap.T
    Ap = Ap / np.abs(Ap).sum()
    w, V = np.linalg.eigh(Ap)
    lam = w / (w[np.argmax(np.abs(w))] * 1.001) - 1
    T, st = 10.0, 1000
    r = np.exp(-2 * lam * T / st)
    gain = (lam / np.sinh(lam * T)) ** 2 * (1 - r ** (st + 1)) / (1 - r) / (n * (st + 1))
    bad = 0
    for m in maps:
        x = runs[m["task"]]["data"].astype(np.float64)
        x = np.clip(x - x.mean(0), lo, hi)
        info, energy = m["data"], m["energy_weninger"]
        if kdes is not None:
            want = np.stack([-kdes[k].score_samples(x[:, [k]]) for k in range(n)], 1).sum(1)
            err = np.max(np.abs(info - want) / np.abs(want))
            bad += err > tol
            print(f"{m['task']:9s} info  max rel diff vs sklearn {err:.1e}")
        want_e = ((x @ V) ** 2 * gain).sum(1)
        err_e = np.max(np.abs(energy - want_e) / np.abs(want_e))
        bad += err_e > tol
        null = m["energy_null_weninger"] if "energy_null_weninger" in m else np.full_like(energy, np.nan)
        print(f"{m['task']:9s} mean info {info.mean():9.3f} nats   mean energy {energy.mean():.5f} "
              f"(null {null.mean():.5f})   max rel diff vs numpy {err_e:.1e}")
    if bad:
        print("MISMATCH")
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
