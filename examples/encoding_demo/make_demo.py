#!/usr/bin/python3
"""Writes a synthetic story-listening dataset for the encoding demo.

    /usr/bin/python3 examples/encoding_demo/make_demo.py OUT [--subjects 3] [--trs 300]

A "story" of word events (about 2.5 words per second, TR = 1.5 s): every
word has a 16-dimensional feature vector (a fixed random embedding of its
vocabulary entry). The brain data are NIfTI runs on an 8x8x6 grid (BIDS:
OUT/bids/sub-XX/func/sub-XX_task-story_bold.nii.gz + JSON sidecars with
RepetitionTime). In a planted 3x3x3 box, each voxel responds linearly to
the features summed per TR, delayed by 1 to 4 TRs with an HRF-like profile,
plus noise; everywhere else there is only noise. An encoding model should
give a high r inside the box and r near 0 outside.

Also written:
  OUT/features.mpk   one `features` message: task "story", tr 1.5, word
                     events `onset` <f8 [W] and `data` <f4 [W, 16]
                     (for file_source; the encoding stage bins them per TR)
  OUT/features_tr.npy the same features already summed per TR, [T, 16]
                     (for `dataset` with whole: true)
  OUT/truth.npy      1 inside the planted box, 0 outside, on the 8x8x6 grid
"""
import argparse
import json
import os
import sys

import nibabel as nib
import numpy as np

try:
    import myelin
except ImportError:  # not installed (pip install ./python): the repository's copy
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
    import myelin

TR = 1.5
GRID = (8, 8, 6)
F = 16
HRF = [0.0, 0.6, 1.0, 0.6, 0.2]  # weights of delays 0..4 TRs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--subjects", type=int, default=3)
    ap.add_argument("--trs", type=int, default=300)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    T = a.trs

    # Word events: Poisson-ish onsets over the story, embeddings per word type.
    n_words = int(T * TR * 2.5)
    onset = np.sort(rng.uniform(0, T * TR, n_words))
    vocab = rng.standard_normal((200, F))
    words = rng.integers(0, 200, n_words)
    feats = vocab[words].astype(np.float32)
    binned = np.zeros((T, F))
    np.add.at(binned, np.floor(onset / TR).astype(int), feats.astype(np.float64))

    truth = np.zeros(GRID, dtype=np.int8)
    truth[2:5, 2:5, 1:4] = 1
    planted = np.flatnonzero(truth.ravel())
    weights = rng.standard_normal((F, planted.size)) / np.sqrt(F)
    drive = sum(h * np.roll(binned, d, axis=0) * (np.arange(T) >= d)[:, None]
                for d, h in enumerate(HRF)) @ weights
    drive /= drive.std(0)

    os.makedirs(os.path.join(a.out, "bids"), exist_ok=True)
    with open(os.path.join(a.out, "bids", "dataset_description.json"), "w") as f:
        json.dump({"Name": "myelin encoding demo", "BIDSVersion": "1.8.0"}, f)
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    V = int(np.prod(GRID))
    for s in range(1, a.subjects + 1):
        y = 1000 + rng.standard_normal((T, V)) * 2.0
        y[:, planted] += 3.0 * drive * rng.uniform(0.8, 1.2, planted.size)
        vol = y.T.reshape(GRID + (T,)).astype(np.float32)
        func = os.path.join(a.out, "bids", f"sub-{s:02d}", "func")
        os.makedirs(func, exist_ok=True)
        img = nib.Nifti1Image(vol, affine)
        img.header.set_zooms((3.0, 3.0, 3.0, TR))
        img.header.set_xyzt_units("mm", "sec")
        base = os.path.join(func, f"sub-{s:02d}_task-story_bold")
        nib.save(img, base + ".nii.gz")
        with open(base + ".json", "w") as f:
            json.dump({"RepetitionTime": TR, "TaskName": "story"}, f)

    myelin.write(os.path.join(a.out, "features.mpk"),
                 [{"kind": "features", "task": "story", "tr": TR,
                   "onset": onset.astype("<f8"), "data": feats.astype("<f4")}])
    np.save(os.path.join(a.out, "features_tr.npy"), binned)
    np.save(os.path.join(a.out, "truth.npy"), truth)
    print(f"wrote {a.subjects} runs of {T} TRs on a {GRID} grid, {n_words} words, "
          f"{planted.size} planted voxels to {a.out}")


if __name__ == "__main__":
    main()
