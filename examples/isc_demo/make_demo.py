#!/usr/bin/python3
"""Writes a small synthetic BIDS dataset for the ISC demo (pipelines/isc.yaml).

    /usr/bin/python3 examples/isc_demo/make_demo.py OUT [--subjects 8] [--trs 120]

OUT/bids/ holds sub-XX/func/sub-XX_task-story_bold.nii.gz (+ JSON sidecars
with RepetitionTime), a dataset_description.json and OUT/bids/mask.nii.gz.
Every subject "hears the same story": a stimulus-driven time course (a random
on/off sequence convolved with a canonical HRF) is added inside a planted 4x4x3
box of voxels, with subject-specific gain and noise everywhere. ISC should be
high inside the box and near zero elsewhere. OUT/truth.npy marks the box
(1 inside, 0 outside) on the grid; OUT/reference.npy is the mean time series
[T, V] of subjects 02.. (the group reference of pipelines/isc_feedback.yaml);
OUT/runs.mpk also holds the same runs as `run` messages (for file_source, when
no NIfTI loader is at hand), written with the myelin Python package (python/).

Needs numpy; NIfTI files are written with nibabel when available, otherwise
with a small struct-packed NIfTI-1 writer (gzip); runs.mpk needs msgpack.
"""
import argparse
import gzip
import json
import os
import struct
import sys

import numpy as np

DIMS = (12, 12, 6)
BOX = (slice(4, 8), slice(4, 8), slice(2, 5))
TR = 2.0


def hrf(tr, length=24.0):
    t = np.arange(0, length, tr)
    from math import gamma
    peak = t ** 5 * np.exp(-t) / gamma(6)
    under = t ** 15 * np.exp(-t) / gamma(16)
    h = peak - under / 6.0
    return h / h.max()


def write_nifti(path, data, affine):
    """NIfTI-1 single file, float32, gzip-compressed."""
    try:
        import nibabel as nib
        img = nib.Nifti1Image(data.astype(np.float32), affine)
        img.header.set_xyzt_units("mm", "sec")
        if data.ndim == 4:
            img.header["pixdim"][4] = TR
        nib.save(img, path)
        return
    except ImportError:
        pass
    shape = data.shape
    dim = [len(shape)] + list(shape) + [1] * (7 - len(shape))
    pixdim = [1.0, abs(affine[0, 0]), abs(affine[1, 1]), abs(affine[2, 2]), TR, 1, 1, 1]
    hdr = struct.pack("<i10s18sihsB", 348, b"", b"", 0, 0, b"r", 0)
    hdr += struct.pack("<8h", *dim)
    hdr += struct.pack("<3f", 0, 0, 0)                  # intent_p1..3
    hdr += struct.pack("<hhhh", 0, 16, 32, 0)           # intent, datatype float32, bitpix, slice_start
    hdr += struct.pack("<8f", *pixdim)
    hdr += struct.pack("<fffhbbffffii", 352.0, 1.0, 0.0, 0, 0, 10, 0, 0, 0, 0, 0, 0)
    hdr += struct.pack("<80s24s", b"myelin isc demo", b"")
    hdr += struct.pack("<hh", 0, 1)                      # qform, sform codes
    hdr += struct.pack("<6f", 0, 0, 0, affine[0, 3], affine[1, 3], affine[2, 3])
    for r in range(3):
        hdr += struct.pack("<4f", *affine[r])
    hdr += struct.pack("<16s4s", b"", b"n+1\0")
    assert len(hdr) == 348
    with gzip.open(path, "wb") as f:
        f.write(hdr + b"\0\0\0\0")
        f.write(np.asarray(data, dtype="<f4").tobytes(order="F"))


def import_myelin():
    """The myelin Python package (None without msgpack): installed, or the
    repository's copy."""
    try:
        import msgpack  # noqa: F401  (the package needs it; runs.mpk is optional)
    except ImportError:
        return None
    try:
        import myelin
    except ImportError:  # not installed (pip install ./python): the repository's copy
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
        import myelin
    return myelin


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--subjects", type=int, default=8)
    ap.add_argument("--trs", type=int, default=120)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    bids = os.path.join(a.out, "bids")
    os.makedirs(bids, exist_ok=True)
    with open(os.path.join(bids, "dataset_description.json"), "w") as f:
        json.dump({"Name": "myelin ISC demo (synthetic)", "BIDSVersion": "1.8.0"}, f)
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    affine[:3, 3] = [-18.0, -18.0, -9.0]

    stim = (rng.random(a.trs) < 0.3).astype(float)
    shared = np.convolve(stim, hrf(TR))[: a.trs]
    shared = (shared - shared.mean()) / shared.std()
    truth = np.zeros(DIMS, dtype=np.float32)
    truth[BOX] = 1
    np.save(os.path.join(a.out, "truth.npy"), truth)
    write_nifti(os.path.join(bids, "mask.nii.gz"), np.ones(DIMS, dtype=np.float32), affine)

    runs = []
    for s in range(a.subjects):
        sub = "%02d" % (s + 1)
        func = os.path.join(bids, "sub-" + sub, "func")
        os.makedirs(func, exist_ok=True)
        vol = 100.0 + 2.0 * rng.standard_normal(DIMS + (a.trs,))
        gain = 1.5 + 0.5 * rng.random()
        vol[BOX] += gain * shared
        name = "sub-%s_task-story_bold" % sub
        write_nifti(os.path.join(func, name + ".nii.gz"), vol.astype(np.float32), affine)
        with open(os.path.join(func, name + ".json"), "w") as f:
            json.dump({"RepetitionTime": TR, "TaskName": "story"}, f)
        runs.append((sub, vol.astype(np.float32)))

    # The "group time series recorded earlier" for neurofeedback (reference
    # mode): the mean of every subject but the first, [T, V] float32, voxels
    # in C order as fmri_source emits them.
    V = int(np.prod(DIMS))
    group = np.mean([vol.reshape(V, a.trs).T for _, vol in runs[1:]], axis=0)
    np.save(os.path.join(a.out, "reference.npy"), group.astype(np.float32))

    myelin = import_myelin()
    if myelin is not None:
        geometry = {"dims": list(DIMS), "affine": affine, "voxels": np.arange(V, dtype="<u4")}
        myelin.write(os.path.join(a.out, "runs.mpk"),
                     ({"kind": "run", "subject": sub, "task": "story", "run": 1, "tr": TR,
                       "data": vol.reshape(V, a.trs).T.astype("<f4"),  # [T, V], C-order voxels
                       "geometry": geometry} for sub, vol in runs))
    print("wrote %d subjects x %d TRs, grid %s, planted box %d voxels, under %s"
          % (a.subjects, a.trs, DIMS, int(truth.sum()), a.out))


if __name__ == "__main__":
    main()
