"""Runs the BioGrad authors' own PyTorch code (a checkout of the public
repository j0sh162/FederatedLearning-SNN, folder biograd/, NOT part of
myelin) on Fashion-MNIST with their training schedule, for bench/biograd.sh:
rate-coded inputs (T steps), batches of 128, lr 1e-3, error from step
SOFT_START, a sleep phase after every batch (128 samples x 50 steps,
sleep_lr 1e-4/3, Oja power 2), test on the test split after every epoch.

usage: authors_run.py AUTHORS_DIR DATA_DIR HIDDEN(500 or 500,100) EPOCHS LIMIT TEST_LIMIT [STEPS] [THREADS]

Prints one line per epoch like the other learners of bench/biograd.sh.
"""
import gzip
import sys
import time

import numpy as np
import torch


def load(d, img, lab):
    x = np.frombuffer(gzip.open(f"{d}/{img}").read(), np.uint8, offset=16).reshape(-1, 784)
    y = np.frombuffer(gzip.open(f"{d}/{lab}").read(), np.uint8, offset=8)
    return torch.from_numpy(x.astype(np.float32) / 255.0), torch.from_numpy(y.astype(np.int64))


def spikes(x, steps, gen):
    # [B, 784] probabilities -> [B, T, 1, 28, 28] Bernoulli spikes (their loader's 5-D frame layout)
    p = x[:, None, :].expand(-1, steps, -1)
    return (torch.rand(p.shape, generator=gen) < p).float().view(-1, steps, 1, 28, 28)


def main():
    authors, data, hidden = sys.argv[1], sys.argv[2], [int(h) for h in sys.argv[3].split(",")]
    epochs, limit, test_limit = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
    steps = int(sys.argv[7]) if len(sys.argv) > 7 else 20
    torch.set_num_threads(int(sys.argv[8]) if len(sys.argv) > 8 else 1)
    sys.path.insert(0, authors)
    from biograd.network_w_biograd import BioGradNetworkWithSleep
    from biograd.online_error_functions import cross_entropy_loss_error_function

    xtr, ytr = load(data, "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
    xte, yte = load(data, "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    if limit > 0:
        xtr, ytr = xtr[:limit], ytr[:limit]
    if test_limit > 0:
        xte, yte = xte[:test_limit], yte[:test_limit]
    torch.manual_seed(1)
    gen = torch.Generator().manual_seed(2)
    neuron = (0.3, 0.3, 0.3, 1.0)
    params = {"hidden_layer": [neuron] * len(hidden), "out_layer": neuron}
    net = BioGradNetworkWithSleep(784, 10, hidden, params, cross_entropy_loss_error_function, torch.device("cpu"))
    batch, soft_start = 128, 5
    t0 = time.perf_counter()
    with torch.no_grad():
        for ep in range(epochs):
            order = torch.randperm(len(xtr), generator=gen)
            s0 = time.perf_counter()
            correct = 0
            for i in range(0, len(order), batch):
                idx = order[i:i + batch]
                onehot = torch.nn.functional.one_hot(ytr[idx], 10).float()
                out = net.train_online(spikes(xtr[idx], steps, gen), onehot, soft_start)
                net.train_update_parameter(*out[1:], 1e-3)
                correct += int((out[0] == ytr[idx]).sum())
                net.sleep_feedback_update(128, 50, 2.0, 1e-4 / 3.0)
            train_s = time.perf_counter() - s0
            tc = 0
            for i in range(0, len(xte), 256):
                tc += int((net.test(spikes(xte[i:i + 256], steps, gen)) == yte[i:i + 256]).sum())
            print(f"authors {sys.argv[3]} epoch {ep + 1} train_acc {correct / len(xtr):.4f} "
                  f"test_acc {tc / len(xte):.4f} samples_per_s {len(xtr) / train_s:.1f} "
                  f"wall_s {time.perf_counter() - t0:.1f}", flush=True)


if __name__ == "__main__":
    main()
