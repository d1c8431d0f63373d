"""Peer for bench/biograd.sh: sklearn's MLPClassifier on the same Fashion-MNIST
images (pixels / 255, the spike probabilities BioGrad sees), same hidden sizes,
ReLU + softmax cross-entropy, Adam on minibatches of 32: what a standard
artificial network of that size reaches in the same number of epochs.

usage: peer.py DATA_DIR HIDDEN(500 or 500,500) EPOCHS LIMIT
"""
import gzip
import sys
import time

import numpy as np
from sklearn.neural_network import MLPClassifier


def load(d, img, lab):
    x = np.frombuffer(gzip.open(f"{d}/{img}").read(), np.uint8, offset=16).reshape(-1, 784)
    y = np.frombuffer(gzip.open(f"{d}/{lab}").read(), np.uint8, offset=8)
    return x.astype(np.float32) / 255.0, y.astype(np.int64)


def main():
    d, hidden, epochs, limit = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    xtr, ytr = load(d, "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
    xte, yte = load(d, "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    if limit > 0:
        xtr, ytr = xtr[:limit], ytr[:limit]
    sizes = tuple(int(h) for h in hidden.split(","))
    clf = MLPClassifier(hidden_layer_sizes=sizes, batch_size=32, random_state=1)
    rng = np.random.default_rng(42)
    t0 = time.perf_counter()
    for ep in range(epochs):
        order = rng.permutation(len(xtr))
        s0 = time.perf_counter()
        for i in range(0, len(order), 4096):
            idx = order[i:i + 4096]
            clf.partial_fit(xtr[idx], ytr[idx], classes=np.arange(10))
        train_s = time.perf_counter() - s0
        print(f"sklearn {hidden} epoch {ep + 1} train_acc {clf.score(xtr, ytr):.4f} "
              f"test_acc {clf.score(xte, yte):.4f} samples_per_s {len(xtr) / train_s:.0f} "
              f"wall_s {time.perf_counter() - t0:.1f}", flush=True)


if __name__ == "__main__":
    main()
