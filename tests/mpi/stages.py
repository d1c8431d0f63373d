"""Data and comparisons for tests/mpi/test_mpi_stages.c (run with /usr/bin/python3).

  stages.py isc DIR [--spread] [--size S T V]
                                     one run .mpk per subject (7 x 40 x 300, planted NaNs), <f4;
                                     --spread: <f8 scaled by 10^(s-3) for subject s, whose float64
                                     sums round, so the rank-order sum differs from one rank's
  stages.py encoding DIR             features.mpk + one run .mpk per subject (5 subjects)
  stages.py info_content DIR         one .mpk per run, named task-..._sub-....mpk so that
                                     `shard: file` puts rest runs on other ranks than task runs;
                                     connectome.npy
  stages.py isc_nifti DIR             sub-0N_task-story_bold.nii.gz for 6 subjects (7 x 6 x 3 voxels x 30
                                     TRs, planted NaNs) and mask.nii.gz keeping an irregular 2/3 of the
                                     voxels: input of fmri_source `shard: voxels`, 3 planes for up to 4 ranks
  stages.py isc_slabs DIR             4 runs .mpk marked as whole slabs (voxel_total, voxel_index) for
                                     a source that deals subjects instead of voxels
  stages.py same_nifti A B           two NIfTI maps: same shape, affine, zooms, dtype; data bit for bit
  stages.py compare A B TOL          the maps of two stream files, matched by (stat, subject,
                                     task, run): same fields, tensors equal within TOL (0 = bit
                                     for bit, NaN where NaN); prints the largest difference
"""
import os
import sys

import msgpack
import numpy as np


def tensor(x):
    x = np.ascontiguousarray(x)
    return {"dtype": x.dtype.str, "shape": list(x.shape), "data": x.tobytes()}


def aligned(m):
    """m packed with a "_pad" bin before its large `data` payload so that the
    payload starts at a multiple of 64 bytes, as myelin writes messages
    (schemas/README.md): file_source then hands it out in place, uncopied."""
    t = m.get("data")
    if not isinstance(t, dict) or len(t["data"]) < 4096:
        return msgpack.packb(m, use_bin_type=True)
    for k in range(64):
        m2 = dict(m, data={"dtype": t["dtype"], "shape": t["shape"], "_pad": bytes(k), "data": t["data"]})
        b = msgpack.packb(m2, use_bin_type=True)
        if (len(b) - len(t["data"])) % 64 == 0:  # `data` is the last value: its payload ends the message
            return b
    raise AssertionError("no padding aligns the payload")


def write(path, msgs):
    with open(path, "wb") as f:
        for m in msgs:
            f.write(aligned(m))  # one message per file here: file offsets are message offsets


def make_isc(d, spread, S=7, T=40, V=300):
    rng = np.random.default_rng(11)
    shared = rng.standard_normal((T, V))
    for s in range(S):
        x = 100 + 0.6 * shared + rng.standard_normal((T, V))
        x = (x * 10.0 ** (s - 3)).astype("<f8") if spread else x.astype("<f4")
        if s == 1:
            x[3, 5] = np.nan  # one TR of one subject
        if s == 2:
            x[:, 9] = np.nan  # a whole voxel of one subject
        if s % 3 == 0:
            x[:, 11] = np.nan  # three subjects
        write(os.path.join(d, "sub-%02d.mpk" % (s + 1)),
              [{"kind": "run", "subject": "%02d" % (s + 1), "task": "story", "tr": 1.5, "data": tensor(x)}])


def make_encoding(d):
    rng = np.random.default_rng(12)
    T, F, V, S = 120, 6, 40, 5
    X = rng.standard_normal((T, F))
    W = rng.standard_normal((F, V))
    write(os.path.join(d, "features.mpk"), [{"kind": "features", "task": "story", "tr": 2.0, "data": tensor(X)}])
    for s in range(S):
        y = (np.roll(X, 1, axis=0) @ W * 0.5 + rng.standard_normal((T, V)) + 1000).astype("<f4")
        write(os.path.join(d, "sub-%02d.mpk" % (s + 1)),
              [{"kind": "run", "subject": "%02d" % (s + 1), "task": "story", "tr": 2.0, "data": tensor(y)}])


def make_info_content(d):
    rng = np.random.default_rng(13)
    N, T = 12, 80
    A = np.abs(rng.standard_normal((N, N)))
    np.save(os.path.join(d, "connectome.npy"), (A + A.T) / 2)
    for s in range(4):
        for task, sd in (("rest", 1.0), ("social", 2.5), ("gambling", 0.6)):
            x = rng.standard_normal((T, N)) * sd * (1 + 0.1 * s) + 3
            write(os.path.join(d, "task-%s_sub-%d.mpk" % (task, s)),
                  [{"kind": "run", "subject": "s%d" % s, "task": task, "tr": 0.72, "data": tensor(x)}])


def make_isc_nifti(d):
    import nibabel as nib
    rng = np.random.default_rng(14)
    X, Y, Z, T = 7, 6, 3, 30
    aff = np.array([[-2.5, 0, 0, 90], [0, 2.5, 0, -120], [0, 0, 3, -70], [0, 0, 0, 1]])
    shared = rng.standard_normal((X, Y, Z, T))
    for s in range(6):
        x = (500 + 0.7 * shared + rng.standard_normal((X, Y, Z, T))).astype("<f4")
        if s == 1:
            x[2, 3, 1, 4] = np.nan  # one TR of one subject
        if s == 2:
            x[4, 1, 0, :] = np.nan  # a whole voxel of one subject
        img = nib.Nifti1Image(x, aff)
        img.header.set_xyzt_units("mm", "sec")
        img.header["pixdim"][4] = 1.5
        nib.save(img, os.path.join(d, "sub-%02d_task-story_bold.nii.gz" % (s + 1)))
    mask = (rng.random((X, Y, Z)) < np.array([0.8, 0.6, 0.55])[None, None, :]).astype("u1")
    nib.save(nib.Nifti1Image(mask, aff), os.path.join(d, "mask.nii.gz"))


def make_isc_slabs(d):
    rng = np.random.default_rng(15)
    T, V = 20, 30
    for s in range(4):
        x = rng.standard_normal((T, V)).astype("<f4")
        write(os.path.join(d, "sub-%02d.mpk" % (s + 1)),
              [{"kind": "run", "subject": "%02d" % (s + 1), "task": "story", "tr": 1.5, "data": tensor(x),
                "voxel_total": V, "voxel_index": tensor(np.arange(V, dtype="<u4"))}])


def same_nifti(a, b):
    import nibabel as nib
    x, y = nib.load(a), nib.load(b)
    if x.shape != y.shape or x.get_data_dtype() != y.get_data_dtype():
        sys.exit("%s %s %s vs %s %s" % (a, x.shape, x.get_data_dtype(), y.shape, y.get_data_dtype()))
    if not np.array_equal(x.affine, y.affine) or x.header.get_zooms() != y.header.get_zooms():
        sys.exit("%s: other affine or zooms than %s" % (a, b))
    dx, dy = np.asanyarray(x.dataobj), np.asanyarray(y.dataobj)
    if dx.tobytes() != dy.tobytes():
        sys.exit("%s: data differ from %s" % (a, b))
    print("%s: %s, %d finite values, as %s" % (a, x.shape, np.isfinite(dx).sum(), b))


def load(path):
    out = {}
    for m in msgpack.Unpacker(open(path, "rb"), raw=False):
        key = tuple(str(m.get(k)) for k in ("stat", "subject", "task", "run"))
        if key in out:
            sys.exit("%s: two maps for %s" % (path, key))
        out[key] = {k: (np.frombuffer(v["data"], v["dtype"]).reshape(v["shape"])
                        if isinstance(v, dict) and "dtype" in v and "data" in v else v)
                    for k, v in m.items() if k != "_pad"}
    return out


def compare(a, b, tol):
    A, B = load(a), load(b)
    if set(A) != set(B):
        sys.exit("different maps: %s vs %s" % (sorted(A), sorted(B)))
    if not A:
        sys.exit("no maps in %s" % a)
    worst = 0.0
    for key in A:
        x, y = A[key], B[key]
        if set(x) != set(y):
            sys.exit("%s: fields differ: %s" % (key, set(x) ^ set(y)))
        for k in x:
            if not isinstance(x[k], np.ndarray):
                if x[k] != y[k]:
                    sys.exit("%s: %s is %r vs %r" % (key, k, x[k], y[k]))
                continue
            if x[k].shape != y[k].shape or x[k].dtype != y[k].dtype:
                sys.exit("%s: %s has shape %s vs %s" % (key, k, x[k].shape, y[k].shape))
            nx, ny = np.isnan(x[k]), np.isnan(y[k])
            if not np.array_equal(nx, ny):
                sys.exit("%s: %s has NaN in other places" % (key, k))
            diff = float(np.max(np.abs(x[k][~nx] - y[k][~ny]), initial=0.0))
            if tol == 0 and not np.array_equal(x[k].view(np.uint8), y[k].view(np.uint8)):
                sys.exit("%s: %s differs (max %.3g), expected bit for bit" % (key, k, diff))
            if diff > tol:
                sys.exit("%s: %s differs by %.3g > %g" % (key, k, diff, tol))
            worst = max(worst, diff)
    print("%d maps equal, max difference %.3g" % (len(A), worst))


if __name__ == "__main__":
    cmd, d = sys.argv[1], sys.argv[2]
    if cmd == "compare":
        compare(d, sys.argv[3], float(sys.argv[4]))
    elif cmd == "same_nifti":
        same_nifti(d, sys.argv[3])
    else:
        os.makedirs(d, exist_ok=True)
        size = [int(v) for v in sys.argv[sys.argv.index("--size") + 1:][:3]] if "--size" in sys.argv else []
        {"isc": lambda: make_isc(d, "--spread" in sys.argv, *size), "encoding": lambda: make_encoding(d),
         "info_content": lambda: make_info_content(d), "isc_nifti": lambda: make_isc_nifti(d),
         "isc_slabs": lambda: make_isc_slabs(d)}[cmd]()
