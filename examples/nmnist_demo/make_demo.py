#!/usr/bin/python3
"""Writes a small N-MNIST-format dataset for pipelines/nmnist_biograd.yaml.

    /usr/bin/python3 examples/nmnist_demo/make_demo.py OUT [--per-class 60] [--test-per-class 20] [--seed 1]

N-MNIST (Orchard et al. 2015) was recorded by an ATIS camera looking at MNIST
digits on a monitor while the camera made three saccades; events mark
brightness changes. This does the same in numpy with sklearn's 8x8 digits
(python3-sklearn's digits.csv.gz): each digit is upscaled to 28x28 and placed
on a 34x34 sensor; the view moves along N-MNIST's triangle (3 saccades of
100 ms: to (3, 6), to (6, 0), back to (0, 0) pixels), sampled every 1 ms;
a pixel fires one ON (OFF) event in a step when its log brightness has risen
(fallen) by the contrast threshold (0.4) or more since its reference level,
which then moves by the whole multiples crossed, with a few isolated
noise events that denoise should remove. Files are N-MNIST's 40-bit records
(x, y, p in bit 7 then a 23-bit big-endian microsecond timestamp):

    OUT/Train/<digit>/<n>.bin   OUT/Test/<digit>/<n>.bin

Needs numpy and scipy (upscaling, sub-pixel shifts).
"""
import argparse
import gzip
import os

import numpy as np
from scipy import ndimage

DIGITS = "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz"
SIZE = 34
SACCADES = [(0.0, 0.0), (3.0, 6.0), (6.0, 0.0), (0.0, 0.0)]  # (dx, dy) at 0, 100, 200, 300 ms
STEP_US = 1000
CONTRAST = 0.4


def load_digits():
    with gzip.open(DIGITS, "rt") as f:
        d = np.loadtxt(f, delimiter=",")
    return d[:, :64].reshape(-1, 8, 8) / 16.0, d[:, 64].astype(int)


def position(t_us):
    seg = min(int(t_us // 100000), 2)
    a, b = np.array(SACCADES[seg]), np.array(SACCADES[seg + 1])
    f = (t_us - seg * 100000) / 100000.0
    return a + (b - a) * f


def events_of(img8, rng):
    digit = np.clip(ndimage.zoom(img8, 3.5, order=1), 0, 1)  # 28x28
    canvas = np.zeros((SIZE, SIZE))
    canvas[0:28, 0:28] = digit
    def frame(t):
        dx, dy = position(t)
        return np.log(0.05 + ndimage.shift(canvas, (dy, dx), order=1, mode="constant"))
    ref = frame(0)
    xs, ys, ps, ts = [], [], [], []
    for t in range(STEP_US, 300000 + 1, STEP_US):
        cur = frame(t)
        diff = cur - ref
        n = np.trunc(diff / CONTRAST).astype(int)  # crossings since the last event
        yy, xx = np.nonzero(n)
        k = n[yy, xx]
        xs.extend(xx.tolist()); ys.extend(yy.tolist()); ps.extend((k > 0).astype(int).tolist())
        ts.extend((t - STEP_US + rng.integers(0, STEP_US, len(k))).tolist())
        ref[yy, xx] += k * CONTRAST
    for _ in range(int(rng.integers(10, 30))):  # background activity
        xs.append(int(rng.integers(0, SIZE))); ys.append(int(rng.integers(0, SIZE)))
        ps.append(int(rng.integers(0, 2))); ts.append(int(rng.integers(0, 300000)))
    order = np.argsort(np.array(ts), kind="stable")
    return (np.array(xs)[order], np.array(ys)[order], np.array(ps)[order], np.array(ts)[order])


def nmnist_bytes(x, y, p, t):
    rec = np.zeros((len(t), 5), np.uint8)
    rec[:, 0] = x
    rec[:, 1] = y
    rec[:, 2] = (p << 7) | ((t >> 16) & 0x7F)
    rec[:, 3] = (t >> 8) & 0xFF
    rec[:, 4] = t & 0xFF
    return rec.tobytes()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--per-class", type=int, default=60, help="training recordings per digit")
    ap.add_argument("--test-per-class", type=int, default=20, help="test recordings per digit")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    imgs, labels = load_digits()
    total = 0
    for d in range(10):
        idx = np.nonzero(labels == d)[0]
        rng.shuffle(idx)
        need = a.per_class + a.test_per_class
        if len(idx) < need:
            raise SystemExit(f"digit {d}: only {len(idx)} images, asked for {need}")
        for split, part in (("Train", idx[: a.per_class]), ("Test", idx[a.per_class : need])):
            folder = os.path.join(a.out, split, str(d))
            os.makedirs(folder, exist_ok=True)
            for n, i in enumerate(part):
                ev = events_of(imgs[i], rng)
                with open(os.path.join(folder, f"{int(i):05d}.bin"), "wb") as f:
                    f.write(nmnist_bytes(*ev))
                total += len(ev[3])
    files = 10 * (a.per_class + a.test_per_class)
    print(f"wrote {files} recordings ({total} events, {total // files} per recording) into {a.out}")


if __name__ == "__main__":
    main()
