#!/usr/bin/python3
"""Reference check of the event transforms against tonic's rules.

tonic (github.com/neuromorphs/tonic) is not packaged for Debian, so this is a
small numpy transcription of the rules of its ToFrame (with SliceByTime /
SliceByTimeBins), Denoise, CenterCrop and Downsample, written from reading
them. test_event_transforms.c writes, per case, the input events and what the
plugin produced; this script recomputes the result and compares.

usage: tonic_ref.py DIR   (DIR/case*.json with the .npy files they name)
"""
import json, os, sys
import numpy as np


def load(d, name):
    return np.load(os.path.join(d, name))


def bins_by_count(t, n_bins):
    # n equal bins from the first event: width = span // n (integer), bins
    # [t0 + i*w, t0 + (i+1)*w); bounds found by left-sided binary search
    w = float((t[-1] - t[0]) // n_bins)
    starts = np.arange(n_bins) * w + t[0]
    return np.searchsorted(t, starts), np.searchsorted(t, starts + w)


def bins_by_window(t, w, incomplete):
    # windows of length w from the first event; their number is
    # floor((span - w) / w) + 1 (ceil when incomplete), at least one
    span = t[-1] - t[0]
    k = (np.ceil if incomplete else np.floor)((span - w) / w)
    n = max(int(k + 1), 1)
    starts = np.arange(n) * w + t[0]
    return np.searchsorted(t, starts), np.searchsorted(t, starts + w)


def frames(ev, sensor, c):
    W, H, P = sensor
    t = ev["t"]
    if len(t) == 0:
        n = c["n_time_bins"] or 1
        return np.zeros((n, P, H, W), np.int64)
    if c["n_time_bins"]:
        lo, hi = bins_by_count(t, c["n_time_bins"])
    else:
        lo, hi = bins_by_window(t, c["time_window"], c["include_incomplete"])
    out = np.zeros((len(lo), P, H, W), np.int64)
    for i, (a, b) in enumerate(zip(lo, hi)):
        np.add.at(out[i], (ev["p"][a:b].astype(int), ev["y"][a:b].astype(int), ev["x"][a:b].astype(int)), 1)
    if c.get("mode") == "binary":
        out = (out > 0).astype(np.int64)
    return out


def denoise(ev, ft):
    # a grid over the events' own extent, every cell first holding ft; each
    # event stamps its own cell with t + ft, then survives if a 4-neighbour
    # in the grid holds a stamp later than its t
    w, h = int(ev["x"].max()) + 1, int(ev["y"].max()) + 1
    stamp = np.full((w, h), float(ft))
    keep = []
    for i in range(len(ev["t"])):
        x, y, t = int(ev["x"][i]), int(ev["y"][i]), int(ev["t"][i])
        stamp[x, y] = t + ft
        near = [(x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1)]
        keep.append(any(0 <= a < w and 0 <= b < h and stamp[a, b] > t for a, b in near))
    return {k: v[np.array(keep, bool)] for k, v in ev.items()}


def center_crop(ev, sensor, size):
    ox, oy = (sensor[0] - size[0]) // 2, (sensor[1] - size[1]) // 2
    lx, ly = max(ox, 0), max(oy, 0)
    m = (ev["x"] >= lx) & (ev["x"] < lx + size[0]) & (ev["y"] >= ly) & (ev["y"] < ly + size[1])
    out = {k: v[m].copy() for k, v in ev.items()}
    out["x"] = (out["x"].astype(np.int64) - ox).astype(np.uint16)
    out["y"] = (out["y"].astype(np.int64) - oy).astype(np.uint16)
    return out


def downsample(ev, sensor, c):
    if c.get("target_size"):
        fx, fy = c["target_size"][0] / sensor[0], c["target_size"][1] / sensor[1]
    else:
        fx, fy = c["spatial_factor"]
    out = dict(ev)
    # products truncated toward zero, as assigning floats into int fields does
    out["t"] = (ev["t"] * c["time_factor"]).astype(np.int64)
    out["x"] = (ev["x"] * fx).astype(np.uint16)
    out["y"] = (ev["y"] * fy).astype(np.uint16)
    return out


def main(d):
    cases = sorted(f for f in os.listdir(d) if f.endswith(".json"))
    assert cases, "no cases"
    for f in cases:
        c = json.load(open(os.path.join(d, f)))
        name = f[:-5]
        ev = {k: load(d, f"{name}_in_{k}.npy") for k in "xypt"}
        sensor = c["sensor"]
        if c["op"] == "to_frames":
            want = frames(ev, sensor, c)
            step, unit = load(d, f"{name}_step.npy"), load(d, f"{name}_unit.npy")
            assert c["steps"] == want.shape[0], (name, c["steps"], want.shape)
            got = np.zeros(want.size, np.int64)
            np.add.at(got, step.astype(np.int64) * (want.size // want.shape[0]) + unit, 1)
            got = got.reshape(want.shape)
            assert (got == want).all(), (name, np.argwhere(got != want)[:5])
            assert np.all(np.diff(step.astype(np.int64) * 2**32 + unit) >= 0), (name, "not sorted")
        else:
            if c["op"] == "denoise":
                want = denoise(ev, c["filter_time"])
            elif c["op"] == "crop":
                want = center_crop(ev, sensor, c["size"])
            else:
                want = downsample(ev, sensor, c)
            for k in "xypt":
                got = load(d, f"{name}_out_{k}.npy")
                assert got.shape == want[k].shape and (got == want[k]).all(), (name, k, got[:10], want[k][:10])
        print(f"{name}: {c['op']} ok ({len(ev['t'])} events)")


if __name__ == "__main__":
    main(sys.argv[1])
