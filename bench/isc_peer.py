#!/usr/bin/python3
"""Helper for bench/isc.sh: data generation and the numpy peer.

  isc_peer.py gen DIR S T V     writes DIR/data.f32: float32 [S, T, V], a shared
                                signal in the first 10% of voxels plus noise
  isc_peer.py run DIR S T V     a VECTORIZED numpy transcription of
                                brainiak.isc.isc() (leave-one-out,
                                tolerate_nans=True, then the Fisher-z mean of
                                compute_summary_statistic): the same maths, but
                                np.delete + nanmean over the whole [T, V, S]
                                array at once instead of BrainIAK's Python loop
                                over voxels, so it is much faster than BrainIAK
                                and needs far more memory; prints seconds and
                                its own peak extra memory
  isc_peer.py loop DIR S T V NV BrainIAK's own algorithm, transcribed: the
                                masked copy of _threshold_nans, then the loop
                                over voxels (per voxel: np.delete, nanmean and
                                scipy.stats.pearsonr per subject), run on the
                                first NV voxels; prints its measured peak extra
                                memory and the loop time extrapolated to V
  isc_peer.py diff DIR V        max |ours - numpy| of the Fisher mean maps
"""
import sys
import time

import numpy as np


def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def gen(d, S, T, V):
    rng = np.random.default_rng(1)
    shared = rng.standard_normal((T, 1)).astype(np.float32)
    k = max(1, V // 10)
    with open(d + "/data.f32", "wb") as f:
        for s in range(S):
            x = rng.standard_normal((T, V), dtype=np.float32)
            x[:, :k] += shared
            x.tofile(f)


# brainiak.isc semantics, written with numpy (the same operations BrainIAK
# performs: voxel mask, np.delete + nanmean of the others per subject,
# array_correlation, then tanh(nanmean(arctanh))).
def array_correlation(x, y):
    xd = x - np.mean(x, axis=0)
    yd = y - np.mean(y, axis=0)
    return np.sum(xd * yd, axis=0) / np.sqrt(np.sum(xd ** 2, axis=0) * np.sum(yd ** 2, axis=0))


def isc_loo(data):
    n_voxels, n_subjects = data.shape[1], data.shape[2]
    nans = np.all(np.any(np.isnan(data), axis=0), axis=1)
    mask = ~nans
    data = data[:, mask, :]
    iscs = np.array([array_correlation(data[..., s], np.nanmean(np.delete(data, s, axis=2), axis=2))
                     for s in range(n_subjects)])
    out = np.full((n_subjects, n_voxels), np.nan)
    out[:, mask] = iscs
    return np.tanh(np.nanmean(np.arctanh(out), axis=0))


def brainiak_loop(d, S, T, V, NV):
    from scipy.stats import pearsonr
    raw = np.fromfile(d + "/data.f32", dtype=np.float32).reshape(S, T, V)
    data = np.ascontiguousarray(np.moveaxis(raw, 0, 2))  # [T, V, S]
    del raw
    base = status("VmRSS")
    reset_peak()
    t0 = time.perf_counter()
    # _threshold_nans(data, True): a boolean-masked copy of the whole array
    nans = np.all(np.any(np.isnan(data), axis=0), axis=1)
    mask = ~nans
    data = data[:, mask, :]
    t_mask = time.perf_counter() - t0
    # isc(): the loop over voxels, leave-one-out with nanmean
    nv = min(NV, data.shape[1])
    t1 = time.perf_counter()
    voxel_iscs = []
    for v in np.arange(nv):
        voxel_data = data[:, v, :].T
        iscs = np.array([pearsonr(subject, np.nanmean(np.delete(voxel_data, s, axis=0), axis=0))[0]
                         for s, subject in enumerate(voxel_data)])
        voxel_iscs.append(iscs)
    t_loop = time.perf_counter() - t1
    iscs_stack = np.column_stack(voxel_iscs)
    peak = status("VmHWM")
    # the rest of the loop's results (V - nv lists of S floats and their
    # stacked copies) are not held here: add them as arrays would take
    rest = (data.shape[1] - nv) * S * 8 * 2
    print("loop_seconds_extrapolated %.3f" % (t_mask + t_loop * data.shape[1] / nv))
    print("loop_voxels_run %d" % nv)
    print("loop_extra_bytes %d" % (max(0, peak - base) + rest))
    return iscs_stack


def run(d, S, T, V):
    raw = np.fromfile(d + "/data.f32", dtype=np.float32).reshape(S, T, V)
    data = np.ascontiguousarray(np.moveaxis(raw, 0, 2))  # [T, V, S]
    del raw
    base = status("VmRSS")
    reset_peak()
    t0 = time.perf_counter()
    mean = isc_loo(data)
    sec = time.perf_counter() - t0
    peak = status("VmHWM")
    np.save(d + "/numpy_mean.npy", mean)
    print("numpy_seconds %.3f" % sec)
    print("numpy_extra_bytes %d" % max(0, peak - base))
    print("input_bytes %d" % data.nbytes)


def diff(d, V):
    ours = np.fromfile(d + "/ours_mean.f64", dtype=np.float64)
    ref = np.load(d + "/numpy_mean.npy")
    print("max_abs_diff %.3g" % np.nanmax(np.abs(ours - ref)))
    k = max(1, V // 10)
    print("planted_mean %.3f" % np.mean(ours[:k]))
    print("noise_mean %.3f" % np.mean(ours[k:]))


if __name__ == "__main__":
    cmd, d = sys.argv[1], sys.argv[2]
    if cmd == "diff":
        diff(d, int(sys.argv[3]))
    else:
        S, T, V = (int(a) for a in sys.argv[3:6])
        if cmd == "loop":
            brainiak_loop(d, S, T, V, int(sys.argv[6]))
        else:
            {"gen": gen, "run": run}[cmd](d, S, T, V)
