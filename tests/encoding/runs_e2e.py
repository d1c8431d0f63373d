#!/usr/bin/python3
"""End-to-end data for features per (task, run), used by test_runs.c.

    /usr/bin/python3 tests/encoding/runs_e2e.py make OUT [--swap]
    /usr/bin/python3 tests/encoding/runs_e2e.py check OUT --expect right|wrong [--maps N --dir D]

`make` writes a story told in two runs of one task (as Narratives or Le Petit
Prince): BIDS OUT/bids/sub-0S/func/sub-0S_task-story_run-0R_bold.nii.gz for
2 subjects x 2 runs of different lengths (120 and 90 TRs, TR 1.5 s, 6x6x4
grid), each run with its own word events (16 features). In a 2x2x2 box the
voxels respond to the features of their own run, binned per TR and delayed
by 1-2 TRs, plus noise; elsewhere noise only. OUT/features.mpk holds one
`features` message per run: {task: "story", run: "01" (text, BIDS style)
or 2 (integer), tr, onset, data}. With --swap, each run's message carries
the other run's word events (the wrong pairing). OUT/truth.npy marks the box.

`check` reads OUT/D/r_*.npy (npy_sink; D = encoding) and exits 1 unless
there are N maps (4: one per subject and run; 2 with average_subjects) and, with --expect right, every map has r > 0.4 in
the whole box and a mean |r| < 0.1 outside; with --expect wrong, the box
mean is below 0.2 in every map.
"""
import argparse
import glob
import json
import os
import sys

import msgpack
import nibabel as nib
import numpy as np

TR = 1.5
GRID = (6, 6, 4)
F = 16
LENGTHS = {1: 120, 2: 90}


def tensor(a):
    a = np.ascontiguousarray(a)
    return {"dtype": a.dtype.str, "shape": list(a.shape), "data": a.tobytes()}


def make(out, swap):
    rng = np.random.default_rng(11)
    truth = np.zeros(GRID, dtype=np.int8)
    truth[2:4, 2:4, 1:3] = 1
    planted = np.flatnonzero(truth.ravel())
    weights = rng.standard_normal((F, planted.size)) / np.sqrt(F)
    V = int(np.prod(GRID))
    events, drives = {}, {}
    for run, T in LENGTHS.items():
        n = int(T * TR * 2.5)
        onset = np.sort(rng.uniform(0, T * TR, n))
        feats = rng.standard_normal((n, F)).astype(np.float32)
        binned = np.zeros((T, F))
        np.add.at(binned, np.floor(onset / TR).astype(int), feats.astype(np.float64))
        drive = sum(h * np.roll(binned, d, axis=0) * (np.arange(T) >= d)[:, None]
                    for d, h in ((1, 1.0), (2, 0.5))) @ weights
        drives[run] = drive / drive.std(0)
        events[run] = (onset, feats)
    os.makedirs(os.path.join(out, "bids"), exist_ok=True)
    with open(os.path.join(out, "bids", "dataset_description.json"), "w") as f:
        json.dump({"Name": "myelin encoding runs", "BIDSVersion": "1.8.0"}, f)
    for s in (1, 2):
        func = os.path.join(out, "bids", f"sub-{s:02d}", "func")
        os.makedirs(func, exist_ok=True)
        for run, T in LENGTHS.items():
            y = 1000 + rng.standard_normal((T, V)) * 2.0
            y[:, planted] += 3.0 * drives[run]
            img = nib.Nifti1Image(y.T.reshape(GRID + (T,)).astype(np.float32),
                                  np.diag([3.0, 3.0, 3.0, 1.0]))
            img.header.set_zooms((3.0, 3.0, 3.0, TR))
            img.header.set_xyzt_units("mm", "sec")
            base = os.path.join(func, f"sub-{s:02d}_task-story_run-{run:02d}_bold")
            nib.save(img, base + ".nii.gz")
            with open(base + ".json", "w") as f:
                json.dump({"RepetitionTime": TR, "TaskName": "story"}, f)
    with open(os.path.join(out, "features.mpk"), "wb") as f:
        for run, key in ((1, "01"), (2, 2)):
            onset, feats = events[3 - run if swap else run]
            f.write(msgpack.packb({"kind": "features", "task": "story", "run": key, "tr": TR,
                                   "onset": tensor(onset.astype("<f8")),
                                   "data": tensor(feats.astype("<f4"))}, use_bin_type=True))
    np.save(os.path.join(out, "truth.npy"), truth)


def check(out, expect, n_maps, folder):
    inside = np.load(os.path.join(out, "truth.npy")).ravel() == 1
    maps = sorted(glob.glob(os.path.join(out, folder, "r_*.npy")))
    ok = len(maps) == n_maps
    for path in maps:
        r = np.load(path)
        if r.shape != inside.shape:
            good = False
        elif expect == "right":
            good = r[inside].min() > 0.4 and abs(r[~inside].mean()) < 0.1
        else:
            good = r[inside].mean() < 0.2
        print("%s: r inside %.3f (min %.3f), outside %.3f (max %.3f)%s" % (
            os.path.basename(path), r[inside].mean(), r[inside].min(), r[~inside].mean(),
            r[~inside].max(), "" if good else "  <- unexpected"))
        ok = ok and good
    print("%d maps, pairing %s: %s" % (len(maps), expect, "as expected" if ok else "NOT as expected"))
    sys.exit(0 if ok else 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["make", "check"])
    ap.add_argument("out")
    ap.add_argument("--swap", action="store_true")
    ap.add_argument("--expect", choices=["right", "wrong"], default="right")
    ap.add_argument("--maps", type=int, default=4)
    ap.add_argument("--dir", default="encoding")
    a = ap.parse_args()
    if a.what == "make":
        make(a.out, a.swap)
    else:
        check(a.out, a.expect, a.maps, a.dir)


if __name__ == "__main__":
    main()
