"""bench/loihi_peer.py — the peer for bench/loihi.sh: Lava's bit-accurate
Dense + LIF arithmetic (PyDenseModelBitAcc, PyLifModelBitAcc) written in
numpy, batched over samples (dense int64 matmuls), on the same netx file and
the same encoded Fashion-MNIST images. Lava itself is not installable here
(no network, not packaged in Debian); per-step Lava process execution would
be far slower than this batched numpy form, so this is a generous peer.

usage: loihi_peer.py NET IMAGES.gz LABELS.gz N STEPS OURS_PRED.bin
Prints: rate=<samples/s> agree=<fraction of predictions equal to ours>
"""
import gzip
import sys
import time

import h5py
import numpy as np

net, images, labels, n, steps, ours = sys.argv[1:7]
n, steps = int(n), int(steps)
with h5py.File(net, "r") as f:
    layers = []
    for i in range(len(f["layer"])):
        g = f["layer"][str(i)]
        nr = g["neuron"]
        layers.append(dict(W=g["weight"][()].astype(np.int64), du=int(nr["iDecay"][()]),
                           dv=int(nr["vDecay"][()]), vth=int(nr["vThMant"][()]) << 6))
img = np.frombuffer(gzip.open(images).read()[16:16 + 784 * n], np.uint8).reshape(n, 784)
lab = np.frombuffer(gzip.open(labels).read()[8:8 + n], np.uint8)

# the netx tutorial's encoder (as spike_encoder method: regular)
x = img / 255.0
v = np.zeros_like(x)
S = np.zeros((steps, n, 784), bool)
for t in range(steps):
    v += x
    S[t] = v > 1
    v[S[t]] = 0


def decay(x, d):
    p = x * (4096 - d)
    return np.sign(p) * (np.abs(p) >> 12)


t0 = time.perf_counter()
L = len(layers)
u = [np.zeros((n, l["W"].shape[0]), np.int64) for l in layers]
vv = [np.zeros_like(a) for a in u]
buf = [np.zeros_like(a) for a in u]
counts = np.zeros((n, layers[-1]["W"].shape[0]), np.int64)
zero_in = np.zeros((n, 784), bool)
for t in range(steps + L):
    s = S[t] if t < steps else zero_in
    for k, l in enumerate(layers):
        a = buf[k]
        buf[k] = s.astype(np.int64) @ l["W"].T
        uk = decay(u[k], l["du"]) + (a << 6)
        uk = np.where(uk > 2**23, uk - 2**24, uk)
        uk = np.where(uk <= -2**23, uk + 2**24, uk)
        vk = np.clip(decay(vv[k], l["dv"]) + uk, -(2**23 - 1), 2**23 - 1)
        s = vk > l["vth"]
        vk[s] = 0
        u[k], vv[k] = uk, vk
    counts += s
elapsed = time.perf_counter() - t0
pred = counts.argmax(1)
mine = np.fromfile(ours, np.int32)
print(f"rate={n / elapsed:.0f} agree={np.mean(pred == mine):.4f} accuracy={np.mean(pred == lab):.4f}")
