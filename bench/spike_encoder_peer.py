"""Peer figure for bench/spike_encoder.sh: rate coding of Fashion-MNIST with numpy.

Same work as myelin's encoder: p = pixel/255, STEPS Bernoulli draws per pixel,
and the events of each image listed as (step, unit) sorted by step then unit
(np.nonzero on the [steps, 784] boolean array gives exactly that order).
Vectorized over blocks of images, as a numpy user would write it.
Prints: images, seconds, images/s, CPU seconds, mean spikes per image.
"""
import gzip
import sys
import time

import numpy as np


def load(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    n, rows, cols = (int.from_bytes(raw[i:i + 4], "big") for i in (4, 8, 12))
    return np.frombuffer(raw, np.uint8, offset=16).reshape(n, rows * cols)


def main():
    path, steps, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    x = load(path)[:count].astype(np.float32) * np.float32(1 / 255)
    rng = np.random.default_rng(1)
    block = 256
    t0 = time.perf_counter()
    c0 = time.process_time()
    spikes = 0
    for b in range(0, len(x), block):
        xb = x[b:b + block]
        fired = rng.random((len(xb), steps, xb.shape[1]), dtype=np.float32) < xb[:, None, :]
        for i in range(len(xb)):
            step, unit = np.nonzero(fired[i])
            step = step.astype("<u4")
            unit = unit.astype("<u4")
            spikes += len(step)
    sec = time.perf_counter() - t0
    cpu = time.process_time() - c0
    print(f"numpy   images={len(x)} steps={steps} seconds={sec:.3f} "
          f"images_per_s={len(x) / sec:.0f} cpu_seconds={cpu:.3f} images_per_cpu_s={len(x) / cpu:.0f} "
          f"spikes_per_image={spikes / len(x):.1f}")


if __name__ == "__main__":
    main()
