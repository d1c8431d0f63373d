#!/usr/bin/python3
"""Write the info_content demo: a random symmetric connectome and parcel time
series for one rest run and two task runs with different variance.

    /usr/bin/python3 examples/info_content_demo/make_demo.py [DIR] [--parcels N] [--trs T] [--seed S] [--bids]

DIR (default out/info_content_demo) receives
    connectome.npy  float64 [N, N], symmetric, non-negative, zero diagonal
    runs.mpk        three `run` messages (subject "demo"): task "social"
                    (variance x2.5), "rest", task "gambling" (variance x0.6),
                    data <f4 [T, N], tr 0.72, in that order (the task run
                    arrives first, so the stage has to hold it).
Then: DATA=DIR myelin run pipelines/info_content.yaml   (results in OUT, default out)

With --bids the same three runs are also written as a BIDS folder of NIfTI
images for fmri_source, with a parcellation:
    bids/sub-demo/func/sub-demo_task-{social,rest,gambling}_run-1_bold.nii.gz
    bids/task-*_bold.json (RepetitionTime), atlas.nii.gz, atlas_labels.tsv
Every voxel of parcel k holds parcel k's series plus small voxel noise that
averages out exactly (zero mean per parcel and TR), so fmri_source's parcel
means reproduce runs.mpk up to float32 rounding.
Then: DATA=DIR myelin run examples/info_content_demo/bids.yaml
"""
import argparse
import os
import sys

import numpy as np

try:
    import myelin
except ImportError:  # not installed (pip install ./python): the repository's copy
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
    import myelin


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


def write_bids(d, runs, n, rng):
    import json
    import nibabel as nib
    vox = 8  # voxels per parcel, along z
    nx = int(np.ceil(np.sqrt(n)))
    shape = (nx, nx, vox)
    atlas = np.zeros(shape, np.int16)
    for k in range(n):
        atlas[k // nx, k % nx, :] = k + 1
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    affine[:3, 3] = [-30.0, -30.0, -12.0]
    nib.save(nib.Nifti1Image(atlas, affine), os.path.join(d, "atlas.nii.gz"))
    with open(os.path.join(d, "atlas_labels.tsv"), "w") as f:
        f.write("index\tname\n" + "".join(f"{k + 1}\tparcel{k:03d}\n" for k in range(n)))
    func = os.path.join(d, "bids", "sub-demo", "func")
    os.makedirs(func, exist_ok=True)
    with open(os.path.join(d, "bids", "dataset_description.json"), "w") as f:
        json.dump({"Name": "myelin info_content demo", "BIDSVersion": "1.8.0"}, f)
    for task, run, x in runs:
        t = x.shape[0]
        img = np.zeros(shape + (t,), np.float32)
        noise = rng.standard_normal((vox, t)) * 0.05
        noise -= noise.mean(0)  # zero mean over a parcel's voxels
        for k in range(n):
            img[k // nx, k % nx, :, :] = x[:, k][None, :] + noise
        name = f"sub-demo_task-{task}_run-{run}_bold"
        nib.save(nib.Nifti1Image(img, affine), os.path.join(func, name + ".nii.gz"))
        with open(os.path.join(d, "bids", f"task-{task}_bold.json"), "w") as f:
            json.dump({"RepetitionTime": 0.72, "TaskName": task}, f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", nargs="?", default="out/info_content_demo")
    ap.add_argument("--parcels", type=int, default=100)
    ap.add_argument("--trs", type=int, default=400)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--bids", action="store_true", help="also write a BIDS/NIfTI copy with an atlas")
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    os.makedirs(a.dir, exist_ok=True)
    A = connectome(rng, a.parcels)
    np.save(os.path.join(a.dir, "connectome.npy"), A)
    labels = [f"parcel{k:03d}" for k in range(a.parcels)]
    runs = [("social", 1, 2.5), ("rest", 1, 1.0), ("gambling", 1, 0.6)]
    written = [(task, run, series(rng, A, a.trs, scale)) for task, run, scale in runs]
    myelin.write(os.path.join(a.dir, "runs.mpk"),
                 [{"kind": "run", "seq": seq, "data": x, "tr": 0.72, "subject": "demo", "task": task, "run": run,
                   "geometry": {"atlas": "demo-ring", "labels": labels}, "labels": labels}
                  for seq, (task, run, x) in enumerate(written)])
    if a.bids:
        write_bids(a.dir, written, a.parcels, rng)
        print(f"wrote {a.dir}/bids (NIfTI runs), {a.dir}/atlas.nii.gz, {a.dir}/atlas_labels.tsv")
    print(f"wrote {a.dir}/connectome.npy ({a.parcels} x {a.parcels}) and {a.dir}/runs.mpk "
          f"(social, rest, gambling; {a.trs} TRs)")


if __name__ == "__main__":
    main()
