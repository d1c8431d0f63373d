#!/usr/bin/python3
"""Synthetic story-listening data for bench/mpi.sh (strong scaling of ISC and
encoding over MPI ranks).

    /usr/bin/python3 bench/mpi_make.py OUT [--subjects 40] [--trs 300] [--grid 50 50 20]

OUT/bids/sub-XX/func/sub-XX_task-story_bold.nii (float32, uncompressed, so
the bench times the stages and not gzip) with JSON sidecars, for
fmri_source; OUT/features.mpk, one `features` message (word onsets and
16-dimensional word vectors) for encoding. Every subject hears the same
story: in a planted tenth of the voxels the response is the story's binned
features through fixed weights and an HRF, with a subject gain and noise,
so ISC and encoding both find signal there; elsewhere only noise.
"""
import argparse
import json
import os
import sys

import nibabel as nib
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import myelin  # noqa: E402

TR = 1.5
F = 16
HRF = [0.0, 0.6, 1.0, 0.6, 0.2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--subjects", type=int, default=40)
    ap.add_argument("--trs", type=int, default=300)
    ap.add_argument("--grid", type=int, nargs=3, default=[50, 50, 20])
    ap.add_argument("--seed", type=int, default=23)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    T, grid = a.trs, tuple(a.grid)
    V = int(np.prod(grid))

    n_words = int(T * TR * 2.5)
    onset = np.sort(rng.uniform(0, T * TR, n_words))
    vocab = rng.standard_normal((500, F))
    feats = vocab[rng.integers(0, 500, n_words)].astype(np.float32)
    binned = np.zeros((T, F))
    np.add.at(binned, np.floor(onset / TR).astype(int), feats.astype(np.float64))
    planted = rng.choice(V, V // 10, replace=False)
    weights = rng.standard_normal((F, planted.size)).astype(np.float32) / np.sqrt(F)
    drive = sum(h * np.roll(binned, d, axis=0) * (np.arange(T) >= d)[:, None] for d, h in enumerate(HRF))
    drive = (drive @ weights).astype(np.float32)
    drive /= drive.std(0)

    bids = os.path.join(a.out, "bids")
    os.makedirs(bids, exist_ok=True)
    with open(os.path.join(bids, "dataset_description.json"), "w") as f:
        json.dump({"Name": "myelin MPI bench", "BIDSVersion": "1.8.0"}, f)
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    for s in range(1, a.subjects + 1):
        y = rng.standard_normal((T, V), dtype=np.float32) * 2.0
        y += 1000.0
        y[:, planted] += 2.0 * drive * np.float32(rng.uniform(0.7, 1.3))
        vol = np.ascontiguousarray(y.T).reshape(grid + (T,), order="F")
        func = os.path.join(bids, f"sub-{s:02d}", "func")
        os.makedirs(func, exist_ok=True)
        img = nib.Nifti1Image(vol, affine)
        img.header.set_zooms((3.0, 3.0, 3.0, TR))
        img.header.set_xyzt_units("mm", "sec")
        base = os.path.join(func, f"sub-{s:02d}_task-story_bold")
        nib.save(img, base + ".nii")
        with open(base + ".json", "w") as f:
            json.dump({"RepetitionTime": TR, "TaskName": "story"}, f)
    myelin.write(os.path.join(a.out, "features.mpk"),
                 [{"kind": "features", "task": "story", "tr": TR,
                   "onset": onset.astype("<f8"), "data": feats.astype("<f4")}])
    print(f"wrote {a.subjects} runs of {T} TRs x {V} voxels ({grid}), {a.subjects * T * V * 4 / 1e9:.2f} GB, "
          f"and {n_words} words to {a.out}")


if __name__ == "__main__":
    main()
