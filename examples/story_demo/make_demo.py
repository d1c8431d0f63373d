#!/usr/bin/python3
"""Writes the story_to_brain demo: a BIDS dataset, its transcript, and a
small random GPT-2 whose activations drive the synthetic brain responses.

    /usr/bin/python3 examples/story_demo/make_demo.py OUT [--subjects 10] [--trs 200] [--layer 2]

  OUT/model/          a random GPT-2 (16 wide, 4 layers, 2 heads, 128 positions)
                      in the Hugging Face layout: config.json, model.safetensors
                      (written by hand, gpt2 tensor names) and a byte-level
                      tokenizer (vocab.json, merges.txt), by
                      tests/lm_features/ref_gpt2.py
  OUT/transcript/task-story_events.tsv
                      the story's words (BIDS events: onset, duration, word),
                      about 2.2 words per second over T TRs of 1.5 s
  OUT/bids/sub-XX/func/sub-XX_task-story_bold.nii.gz (+ .json)
                      8x8x6 voxels; in a planted 3x3x3 box each voxel is a
                      random linear readout of the model's hidden state
                      `--layer` (2) of each word — computed by the numpy GPT-2
                      with lm_features' windows (context 128, stride 64, last
                      token) — convolved with SPM's canonical HRF at the TR
                      (encoding's `events: hrf` formula), plus noise; every
                      other voxel is noise
  OUT/truth.npy       1 inside the box, on the grid
  OUT/planted.json    the planted layer and box

pipelines/story_to_brain.yaml should then find the box significant and give
it the planted layer as the best one (examples/story_demo/check_demo.py).
"""
import argparse
import json
import os
import sys

import nibabel as nib
import numpy as np
from scipy.stats import gamma

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "lm_features"))
import ref_gpt2  # noqa: E402  (the repo's numpy GPT-2 and safetensors writer)

TR = 1.5
GRID = (8, 8, 6)
POOL = ("the a of and to in was he she it that his her they said one day when there with for but at "
        "story brain listened morning teacher garden window quietly remembered never almost because "
        "children river mountain, house. again! why? don't I'm 1987 café old new small light dark "
        "walked across bridge under stars while dog barked softly").split()


def hrf(t):
    """SPM canonical HRF, unit area over (0, 32 s] (encoding's events: hrf)."""
    area = gamma.cdf(32, 6) - gamma.cdf(32, 16) / 6
    v = (gamma.pdf(t, 6) - gamma.pdf(t, 16) / 6) / area
    return np.where((t > 0) & (t <= 32), v, 0.0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--subjects", type=int, default=10)
    ap.add_argument("--trs", type=int, default=200)
    ap.add_argument("--layer", type=int, default=2)
    ap.add_argument("--seed", type=int, default=3)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    T = a.trs

    model = os.path.join(a.out, "model")
    ref_gpt2.write_model(model, {"n_embd": 16, "n_head": 2, "n_layer": 4, "n_ctx": 128, "vocab": 300,
                                 "dtype": "f32", "prefix": False, "act": "gelu_new", "seed": a.seed,
                                 "std": 0.7, "extra": False})
    cfg, w = ref_gpt2.read_model(model)

    n_words = int(T * TR / 0.45)
    words = [POOL[i] for i in rng.integers(0, len(POOL), n_words)]
    onset = np.round(np.arange(n_words) * 0.45 + rng.uniform(0, 0.1, n_words), 3)
    os.makedirs(os.path.join(a.out, "transcript"), exist_ok=True)
    with open(os.path.join(a.out, "transcript", "task-story_events.tsv"), "w", encoding="utf-8") as f:
        f.write("onset\tduration\tword\n")
        for o, wd in zip(onset, words):
            f.write(f"{o:.3f}\t0.300\t{wd}\n")

    feats = ref_gpt2.features(cfg, w, words, [a.layer], "last", 128, 0)  # [W, 16]
    feats = (feats - feats.mean(0)) / feats.std(0)
    tau = np.arange(T) * TR
    design = TR * hrf(tau[:, None] - onset[None, :]) @ feats  # [T, 16]

    truth = np.zeros(GRID, dtype=np.int8)
    truth[2:5, 2:5, 1:4] = 1
    planted = np.flatnonzero(truth.ravel())
    drive = design @ rng.standard_normal((feats.shape[1], planted.size))
    drive = (drive - drive.mean(0)) / drive.std(0)

    os.makedirs(os.path.join(a.out, "bids"), exist_ok=True)
    with open(os.path.join(a.out, "bids", "dataset_description.json"), "w") as f:
        json.dump({"Name": "myelin story_to_brain demo", "BIDSVersion": "1.8.0"}, f)
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    V = int(np.prod(GRID))
    for s in range(1, a.subjects + 1):
        y = 1000 + rng.standard_normal((T, V))
        y[:, planted] += 2.0 * drive
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
    np.save(os.path.join(a.out, "truth.npy"), truth)
    json.dump({"layer": a.layer, "box": [[2, 5], [2, 5], [1, 4]]}, open(os.path.join(a.out, "planted.json"), "w"))
    print(f"wrote {a.subjects} runs of {T} TRs on a {GRID} grid, {n_words} words, a 4-layer GPT-2, "
          f"layer {a.layer} planted in {planted.size} voxels, to {a.out}")


if __name__ == "__main__":
    main()
