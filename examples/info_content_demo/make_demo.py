#!/usr/bin/python3
"""Write the info_content demo: a random symmetric connectome and parcel time
series for one rest run and two task runs with different variance.

    /usr/bin/python3 examples/info_content_demo/make_demo.py [DIR] [--parcels N] [--trs T] [--seed S]

DIR (default out/info_content_demo) receives
    connectome.npy  float64 [N, N], symmetric, non-negative, zero diagonal
    runs.mpk        three `run` messages (subject "demo"): task "social"
                    (variance x2.5), "rest", task "gambling" (variance x0.6),
                    data <f4 [T, N], tr 0.72, in that order (the task run
                    arrives first, so the stage has to hold it).
Then: DEMO=DIR myelin run pipelines/info_content.yaml
"""
import argparse
import os

import msgpack
import numpy as np


def tensor(a):
    a = np.ascontiguousarray(a)
    return {"dtype": a.dtype.str, "shape": list(a.shape), "data": a.tobytes()}


def connectome(rng, n):
    # distance-dependent random weights on a ring: strong local, sparse long range
    i = np.arange(n)
    dist = np.minimum(abs(i[:, None] - i[None, :]), n - abs(i[:, None] - i[None, :]))
    w = rng.gamma(2.0, 1.0, (n, n)) * np.exp(-dist / (n / 8))
    w = np.triu(w * (rng.random((n, n)) < 0.6), 1)
    w = w + w.T
    return w


def series(rng, A, t, scale):
    # AR(1) driven by noise mixed through the connectome, then scaled
    n = A.shape[0]
    mix = np.eye(n) + 0.5 * A / np.abs(np.linalg.eigvalsh(A)).max()
    x = np.zeros((t, n))
    for k in range(1, t):
        x[k] = 0.6 * x[k - 1] + rng.standard_normal(n) @ mix.T
    return (scale * x + 10.0).astype(np.float32)  # an offset the stage demeans away


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", nargs="?", default="out/info_content_demo")
    ap.add_argument("--parcels", type=int, default=100)
    ap.add_argument("--trs", type=int, default=400)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    os.makedirs(a.dir, exist_ok=True)
    A = connectome(rng, a.parcels)
    np.save(os.path.join(a.dir, "connectome.npy"), A)
    labels = [f"parcel{k:03d}" for k in range(a.parcels)]
    runs = [("social", 1, 2.5), ("rest", 1, 1.0), ("gambling", 1, 0.6)]
    with open(os.path.join(a.dir, "runs.mpk"), "wb") as f:
        for seq, (task, run, scale) in enumerate(runs):
            msg = {"kind": "run", "seq": seq, "data": tensor(series(rng, A, a.trs, scale)), "tr": 0.72,
                   "subject": "demo", "task": task, "run": run,
                   "geometry": {"atlas": "demo-ring", "labels": labels}, "labels": labels}
            f.write(msgpack.packb(msg, use_bin_type=True))
    print(f"wrote {a.dir}/connectome.npy ({a.parcels} x {a.parcels}) and {a.dir}/runs.mpk "
          f"(social, rest, gambling; {a.trs} TRs)")


if __name__ == "__main__":
    main()
