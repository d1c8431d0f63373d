"""Independent re-implementation of spike_encoder's rate coder, used by
test_reference.c: reads a .mpk of `spikes` messages made from Fashion-MNIST
test images (dataset scale 1/255, rate coding) and checks every event of the
first messages against draws computed here from (seed, epoch, index).

usage: rate_reference.py SPIKES.mpk IMAGES.idx3.gz SEED COUNT
"""
import gzip
import sys

import msgpack
import numpy as np

MASK = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15


def mix(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def key(seed, epoch, index):
    k = mix((seed + GAMMA) & MASK)
    k = mix(k ^ ((epoch + 2 * GAMMA) & MASK))
    return mix(k ^ ((index + 3 * GAMMA) & MASK))


def threshold(p):
    if not p > 0:
        return 0
    if p >= 1:
        return 1 << 32
    return int(p * 4294967296.0)


def encode(x, steps, k):
    thr = [threshold(float(v)) for v in x]
    events = []
    for t in range(steps):
        for u in range(len(x)):
            if not thr[u]:
                continue
            h = mix((k + (((t << 32) | (u >> 1)) * GAMMA)) & MASK)
            r = (h >> 32) if u & 1 else h & 0xFFFFFFFF
            if r < thr[u]:
                events.append((t, u))
    return events


def main():
    path, images, seed, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    raw = gzip.open(images).read()
    px = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 784)
    msgs = list(msgpack.Unpacker(open(path, "rb"), raw=False))
    assert len(msgs) >= count, len(msgs)
    for m in msgs[:count]:
        i = m["index"]
        x = (px[i].astype(np.float64) * 0.00392156862745098).astype(np.float32)
        want = encode(x, m["steps"], key(seed, m.get("epoch", 0), i))
        step = np.frombuffer(m["step"]["data"], "<u4").tolist()
        unit = np.frombuffer(m["unit"]["data"], "<u4").tolist()
        got = list(zip(step, unit))
        assert got == want, f"index {i}: {len(got)} events, reference {len(want)}"
    print(f"ok {count}")


if __name__ == "__main__":
    main()
