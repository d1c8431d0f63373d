#!/usr/bin/python3
"""Checks the ISC demo's outputs: the Fisher-mean map must show the planted box.

    /usr/bin/python3 examples/isc_demo/check_demo.py DATA [OUT]            (pipelines/isc.yaml)
    /usr/bin/python3 examples/isc_demo/check_demo.py DATA [OUT] --live     (pipelines/isc_live.yaml)
    /usr/bin/python3 examples/isc_demo/check_demo.py DATA [OUT] --feedback (pipelines/isc_feedback.yaml)

DATA is the demo folder make_demo.py wrote (truth.npy, bids/, reference.npy),
OUT the pipelines' output folder (default out). Reads OUT/isc/isc_story.npy
(npy_sink: the `summary` field, [V]) and, when present, OUT/isc/isc_story.nii.gz
(nifti_sink: one ISC volume per subject). Prints the mean ISC inside and
outside the box and exits 1 unless the box stands out.
"""
import os
import sys

import numpy as np

try:
    import myelin
except ImportError:  # not installed (pip install ./python): the repository's copy
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
    import myelin


def loo(d):
    """Leave-one-out ISC of d [T, V, S] (numpy, float64)."""
    out = []
    for s in range(d.shape[2]):
        x = d[:, :, s]
        y = np.delete(d, s, axis=2).mean(axis=2)
        x = x - x.mean(0)
        y = y - y.mean(0)
        out.append((x * y).sum(0) / np.sqrt((x * x).sum(0) * (y * y).sum(0)))
    return np.array(out)


def check_live(demo, out):
    """isc_live.mpk: one map per 20 TRs; the last equals batch ISC of the
    four subjects' NIfTI data."""
    import nibabel as nib
    maps = list(myelin.read(os.path.join(out, "isc", "isc_live.mpk")))
    last = maps[-1]
    data = last["data"]
    subs = last["subjects"]
    d = np.stack([nib.load(os.path.join(demo, "bids", "sub-%s" % s, "func", "sub-%s_task-story_bold.nii.gz" % s))
                  .get_fdata(dtype=np.float32).reshape(-1, last["trs"]).T for s in subs], axis=2).astype(np.float64)
    diff = np.nanmax(np.abs(data - loo(d)))
    print("streamed maps: %d, TRs in the last: %d, max |streamed - batch numpy| = %.3g" % (len(maps), last["trs"], diff))
    sys.exit(0 if diff < 1e-6 and len(maps) == last["trs"] // 20 else 1)


def check_feedback(demo, out):
    """feedback.mpk: one map per 10 TRs; the last is corr(sub-01, reference)."""
    import nibabel as nib
    maps = list(myelin.read(os.path.join(out, "isc", "feedback.mpk")))
    last = maps[-1]
    r = last["data"][0]
    ref = np.load(os.path.join(demo, "reference.npy")).astype(np.float64)
    x = nib.load(os.path.join(demo, "bids", "sub-01", "func", "sub-01_task-story_bold.nii.gz")) \
        .get_fdata(dtype=np.float32).reshape(-1, ref.shape[0]).T.astype(np.float64)
    x = x - x.mean(0)
    y = ref - ref.mean(0)
    want = (x * y).sum(0) / np.sqrt((x * x).sum(0) * (y * y).sum(0))
    truth = np.load(os.path.join(demo, "truth.npy")).ravel() == 1
    diff = np.max(np.abs(r - want))
    print("feedback maps: %d, last after %d TRs; max |myelin - numpy| = %.3g; box r %.3f, rest %.3f"
          % (len(maps), last["trs"], diff, r[truth].mean(), r[~truth].mean()))
    sys.exit(0 if diff < 1e-6 and r[truth].min() > 0.3 and len(maps) == last["trs"] // 10 else 1)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    data = args[0] if args else "out/isc_demo"
    out = args[1] if len(args) > 1 else "out"
    if "--live" in sys.argv[1:]:
        check_live(data, out)
    if "--feedback" in sys.argv[1:]:
        check_feedback(data, out)
    truth = np.load(os.path.join(data, "truth.npy"))
    m = np.load(os.path.join(out, "isc", "isc_story.npy"))
    inside = truth.ravel() == 1
    print("ISC (Fisher mean) inside the planted box: %.3f (min %.3f)" % (m[inside].mean(), m[inside].min()))
    print("ISC outside: mean %.3f, max |r| %.3f" % (m[~inside].mean(), np.abs(m[~inside]).max()))
    ok = m[inside].min() > 0.3 and np.abs(m[~inside]).max() < 0.3
    nii = os.path.join(out, "isc", "isc_story.nii.gz")
    if os.path.exists(nii):
        try:
            import nibabel as nib
            img = nib.load(nii).get_fdata()
            img = img.mean(axis=3) if img.ndim > 3 else img  # one volume per subject
            print("NIfTI map: inside %.3f, outside %.3f" % (img[truth == 1].mean(), img[truth == 0].mean()))
            ok = ok and img[truth == 1].min() > 0.3
        except ImportError:
            pass
    print("planted region recovered" if ok else "planted region NOT recovered")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
