"""Reference of BioGrad as its authors' code computes it, for the trajectory
check of the biograd plugin's `variant: paper` (tests/biograd, bench/biograd/
trajectory.sh).

It is written from the equations (plugins/biograd/README.md, "variant: paper"),
not from the authors' code, and deliberately the slow, literal way: every
synapse keeps its own leaky trace as an [out x in] matrix, updated at every
step, the error neurons and dendrites run step by step, the sleep phase runs
sample by sample. The plugin factorises the traces instead (one backward
recursion per neuron); agreement of the weights after every update and every
sleep phase shows the two are the same algorithm.

float32 throughout, with the additions of the forward pass in the plugin's
order (input rows added by increasing unit index, then the bias), so that the
same weights give the same spikes on both sides; the trace sums are added in
another order, so the weights differ by rounding only.

  paper_ref.py gen DIR [options]   writes DIR/{data.npz, init.npz, noise.npy,
                                   train.mpk, pipeline.yaml}
  paper_ref.py check DIR           runs the reference and compares it with the
                                   plugin's DIR/trace.npy; exit 0 when every
                                   record agrees within tolerance
"""
import argparse
import json
import math
import os
import sys

import numpy as np

F = np.float32


# ---- the model ------------------------------------------------------------------


class Net:
    def __init__(self, cfg, W, b, B):
        self.c = cfg
        self.W = [w.astype(F).copy() for w in W]  # [out, in]
        self.b = [x.astype(F).copy() for x in b]
        self.B = [x.astype(F).copy() for x in B]  # [n_hidden, classes]
        self.vd, self.vth = F(cfg["vdecay"]), F(cfg["vth"])
        self.win, self.amp = F(cfg["grad_win"]), F(cfg["grad_amp"])

    def drive(self, l, spikes):
        """Input current of weight layer l: columns of W added one spike at a time."""
        cur = np.zeros(self.W[l].shape[0], F)
        for j in np.nonzero(spikes)[0]:
            for _ in range(int(spikes[j])):
                cur = cur + self.W[l][:, j]
        return cur

    def lif(self, v, s, cur):
        v = self.vd * v * (F(1) - s) + cur
        return v, (v > self.vth).astype(F)

    def sample(self, x, label):
        """One training sample x [T, n0] (spike counts). Returns the prediction
        and the per-sample changes (dW, db) before the learning rate."""
        L, K, T = len(self.W), self.W[-1].shape[0], x.shape[0]
        v = [np.zeros(w.shape[0], F) for w in self.W]
        s = [np.zeros(w.shape[0], F) for w in self.W]
        pre = [np.zeros(w.shape, F) for w in self.W]  # per-synapse trace
        edw = [np.zeros(w.shape, F) for w in self.W]  # its sum weighted by the pseudo-derivative
        pb = [np.zeros(w.shape[0], F) for w in self.W]  # bias trace (an input always at 1)
        edb = [np.zeros(w.shape[0], F) for w in self.W]
        counts = np.zeros(K, F)
        vp, vn, sp, sn = (np.zeros(K, F) for _ in range(4))
        dend_out = np.zeros(K, F)
        dend_hid = [np.zeros(B.shape[0], F) for B in self.B]
        nerr = 0
        onehot = np.zeros(K, F)
        onehot[label] = 1
        for t in range(T):
            inp = x[t].astype(F)
            for l in range(L):
                cur = self.drive(l, inp) + self.b[l]
                v[l], spk = self.lif(v[l], s[l], cur)
                g = np.where(np.abs(v[l] - self.vth) < self.win, self.amp, F(0)).astype(F)
                keep = F(1) - spk - v[l] * g  # what a spike (or the window) leaves of the traces
                pre[l] = self.vd * pre[l] + inp[None, :]
                edw[l] = edw[l] + pre[l] * g[:, None]
                pre[l] = pre[l] * keep[:, None]
                pb[l] = self.vd * pb[l] + F(1)
                edb[l] = edb[l] + pb[l] * g
                pb[l] = pb[l] * keep
                s[l] = spk
                inp = spk
            counts = counts + s[-1]
            if t < self.c["soft_start"]:
                continue
            # error: softmax of the counts so far minus the label, into two IF neurons per class
            m = max(float(c) for c in counts)
            ex = [math.exp(float(c) - m) for c in counts]
            tot = 0.0
            for e in ex:
                tot += e
            err = np.array([e / tot for e in ex], F) - onehot
            up = np.maximum(err, F(0))
            down = np.maximum(-err, F(0))
            psp = up - down
            vp = vp - sp + psp
            sp = (vp > F(1)).astype(F)
            vn = vn - sn - psp
            sn = (vn > F(1)).astype(F)
            dend_out = dend_out + (sp - sn)
            for h, B in enumerate(self.B):  # every hidden layer hears the output error spikes
                dend_hid[h] = dend_hid[h] + (B @ sp - B @ sn)
            nerr += 1
        pred = int(np.argmax(counts))
        errs = [d / F(nerr) for d in dend_hid] + [dend_out / F(nerr)]
        dW = [e[:, None] * tr for e, tr in zip(errs, edw)]
        db = [e * tr for e, tr in zip(errs, edb)]
        return pred, dW, db

    def apply(self, dWs, dbs, lr, lr_out):
        L = len(self.W)
        for l in range(L):
            rate = F(lr_out if l == L - 1 else lr)
            self.W[l] = self.W[l] - rate * np.mean(np.stack([d[l] for d in dWs]), axis=0)
            self.b[l] = self.b[l] - rate * np.mean(np.stack([d[l] for d in dbs]), axis=0)

    def sleep(self, noise_blocks):
        """One sleep phase; noise_blocks[h] is [2, SB, S, n_h] for hidden layer h (1-based)."""
        L, K = len(self.W), self.W[-1].shape[0]
        lr, power = F(self.c["sleep_lr"]), F(self.c["oja_power"])
        for h in range(L - 1, 0, -1):
            blk = noise_blocks[h]
            SB, S, n = blk.shape[1], blk.shape[2], blk.shape[3]
            corr = np.zeros((n, K), F)
            osq = np.zeros(K, F)
            for smp in range(SB):
                v = [np.zeros(self.W[l].shape[0], F) for l in range(L)]
                s = [np.zeros(self.W[l].shape[0], F) for l in range(L)]
                noise_sum = np.zeros(n, np.int64)
                out = np.zeros(K, np.int64)
                for t in range(S):
                    up, down = blk[0, smp, t], blk[1, smp, t]
                    noise_sum += up.astype(np.int64) - down.astype(np.int64)
                    # the layer above the noise sees (W up + b) - (W down + b)
                    cur = (self.drive(h, up) + self.b[h]) - (self.drive(h, down) + self.b[h])
                    v[h], s[h] = self.lif(v[h], s[h], cur)
                    for l in range(h + 1, L):
                        v[l], s[l] = self.lif(v[l], s[l], self.drive(l, s[l - 1]) + self.b[l])
                    out += s[L - 1].astype(np.int64)
                corr = corr + np.outer(noise_sum, out).astype(F)
                osq = osq + np.power(out.astype(F), power)
            oja = osq / F(SB)
            B = self.B[h - 1]
            self.B[h - 1] = B + lr * (corr - oja[None, :] * B)


# ---- files --------------------------------------------------------------------------


def flat_params(net):
    parts = []
    for l in range(len(net.W)):
        parts += [net.W[l].T.ravel(), net.b[l]]  # the plugin's wt<l> = W^T
        if l < len(net.B):
            parts.append(net.B[l].ravel())
    return np.concatenate(parts)


def gen(a):
    rng = np.random.default_rng(a.seed)
    sizes = [int(x) for x in a.sizes.split(",")]
    L, K, T, n0 = len(sizes) - 1, sizes[-1], a.steps, sizes[0]
    os.makedirs(a.dir, exist_ok=True)
    # inputs: each class a random rate pattern, samples Bernoulli around it
    protos = rng.uniform(0.0, a.max_rate, (K, n0))
    labels = rng.integers(0, K, a.samples)
    x = (rng.random((a.samples, T, n0)) < protos[labels][:, None, :]).astype(np.uint8)
    # nn.Linear's default initialisation, and B aligned with the forward chain
    W, b = [], []
    for l in range(L):
        bound = 1.0 / math.sqrt(sizes[l])
        W.append(rng.uniform(-bound, bound, (sizes[l + 1], sizes[l])).astype(F))
        b.append(rng.uniform(-bound, bound, sizes[l + 1]).astype(F))
    B = [None] * (L - 1)
    chain = W[L - 1].astype(np.float64)
    for h in range(L - 1, 0, -1):
        B[h - 1] = np.ascontiguousarray(chain.T, F)
        chain = chain @ W[h - 1]
    init = {}
    for l in range(L):
        init[f"wt{l}"] = np.ascontiguousarray(W[l].T)
        init[f"b{l}"] = b[l]
        if l < L - 1:
            init[f"fb{l}"] = B[l]
    np.savez(os.path.join(a.dir, "init.npz"), **init)
    # sleep noise: one phase per update; rate U(0,1) per phase, layers last first
    updates = -(-a.samples // a.batch)
    chunks = []
    for _ in range(updates):
        rate = rng.random()
        for h in range(L - 1, 0, -1):
            chunks.append((rng.random((2, a.sleep_batch, a.sleep_steps, sizes[h])) < rate).astype(np.uint8).ravel())
    noise = np.concatenate(chunks) if chunks else np.zeros(0, np.uint8)
    np.save(os.path.join(a.dir, "noise.npy"), noise)
    cfg = dict(sizes=sizes, steps=T, batch=a.batch, soft_start=a.soft_start, sleep_steps=a.sleep_steps,
               sleep_batch=a.sleep_batch, vth=0.3, vdecay=0.3, grad_win=0.3, grad_amp=1.0, lr=a.lr, lr_out=a.lr,
               sleep_lr=1e-4 / 3.0 if a.sleep_lr is None else a.sleep_lr, oja_power=2.0)
    np.savez(os.path.join(a.dir, "data.npz"), x=x, labels=labels, config=np.array(json.dumps(cfg)))
    write_spikes(os.path.join(a.dir, "train.mpk"), x, labels)
    d = os.path.abspath(a.dir)
    hidden = ", ".join(str(h) for h in sizes[1:-1])
    with open(os.path.join(a.dir, "pipeline.yaml"), "w") as f:
        f.write(f"""name: biograd-paper-trajectory
stages:
  - {{id: src, plugin: file_source, params: {{path: {d}/train.mpk}}}}
  - id: learn
    plugin: biograd
    inputs: {{train: [src]}}
    params: {{variant: paper, hidden: [{hidden}], classes: {K}, batch: {a.batch}, soft_start: {a.soft_start},
             sleep_steps: {a.sleep_steps}, sleep_batch: {a.sleep_batch}, lr: {a.lr}, feedback_lr: {cfg['sleep_lr']!r},
             threads: 1, init: {d}/init.npz, sleep_noise: {d}/noise.npy, trace: {d}/trace.npy}}
  - {{id: net, plugin: null_sink, inputs: [learn.network]}}
""")


def write_spikes(path, x, labels):
    import msgpack

    def tensor(a):
        a = np.ascontiguousarray(a, "<u4")
        return {"dtype": "<u4", "shape": [int(a.size)], "data": a.tobytes()}

    with open(path, "wb") as f:
        for i in range(x.shape[0]):
            st, un = np.nonzero(x[i])  # sorted by step, then unit
            m = {"kind": "spikes", "n": int(x.shape[2]), "steps": int(x.shape[1]), "dt": 0.001,
                 "step": tensor(st), "unit": tensor(un), "label": int(labels[i]), "index": i,
                 "split": "train", "epoch": 0}
            f.write(msgpack.packb(m, use_bin_type=True))


def check(a):
    data = np.load(os.path.join(a.dir, "data.npz"))
    cfg = json.loads(str(data["config"]))
    x, labels = data["x"], data["labels"]
    sizes, L = cfg["sizes"], len(cfg["sizes"]) - 1
    init = np.load(os.path.join(a.dir, "init.npz"))
    net = Net(cfg, [init[f"wt{l}"].T for l in range(L)], [init[f"b{l}"] for l in range(L)],
              [init[f"fb{l}"] for l in range(L - 1)])
    noise = np.load(os.path.join(a.dir, "noise.npy"))
    trace = np.load(os.path.join(a.dir, "trace.npy"))
    pos = 0
    row = 0
    worst = {1: 0.0, 2: 0.0}
    bad = 0

    def compare(kind, seen):
        nonlocal row, bad
        if row >= trace.shape[0]:
            print(f"trace ends at record {row}, reference has more")
            bad += 1
            return
        k, n = int(trace[row, 0]), int(trace[row, 1])
        ref = flat_params(net)
        got = trace[row, 2:]
        err = float(np.max(np.abs(got - ref) / (a.atol + a.rtol * np.abs(ref))))
        worst[kind] = max(worst[kind], float(np.max(np.abs(got - ref))))
        if k != kind or n != seen or err > 1.0:
            bad += 1
            if bad <= 5:
                print(f"record {row}: kind {k} (want {kind}) after {n} samples (want {seen}): "
                      f"max |diff| {float(np.max(np.abs(got - ref))):.3g}")
        row += 1

    dWs, dbs = [], []
    for i in range(x.shape[0]):
        _, dW, db = net.sample(x[i], int(labels[i]))
        dWs.append(dW)
        dbs.append(db)
        if len(dWs) == cfg["batch"] or i == x.shape[0] - 1:
            net.apply(dWs, dbs, cfg["lr"], cfg["lr_out"])
            dWs, dbs = [], []
            compare(1, i + 1)
            blocks = {}
            for h in range(L - 1, 0, -1):
                size = 2 * cfg["sleep_batch"] * cfg["sleep_steps"] * sizes[h]
                blocks[h] = noise[pos:pos + size].reshape(2, cfg["sleep_batch"], cfg["sleep_steps"], sizes[h])
                pos += size
            if L > 1:
                net.sleep(blocks)
                compare(2, i + 1)
    if row != trace.shape[0]:
        print(f"trace has {trace.shape[0]} records, reference {row}")
        bad += 1
    print(f"trajectory: {row} records ({x.shape[0]} samples, batch {cfg['batch']}), "
          f"max |diff| after updates {worst[1]:.3g}, after sleep {worst[2]:.3g}, "
          f"{'OK' if bad == 0 else f'{bad} records off'}")
    return 0 if bad == 0 else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cmd", choices=["gen", "check"])
    ap.add_argument("dir")
    ap.add_argument("--sizes", default="64,24,16,10")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--soft-start", type=int, default=3)
    ap.add_argument("--sleep-steps", type=int, default=10)
    ap.add_argument("--sleep-batch", type=int, default=4)
    ap.add_argument("--sleep-lr", type=float, default=None)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--max-rate", type=float, default=0.6)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--atol", type=float, default=1e-5)
    ap.add_argument("--rtol", type=float, default=1e-4)
    a = ap.parse_args()
    if a.cmd == "gen":
        gen(a)
        return 0
    return check(a)


if __name__ == "__main__":
    sys.exit(main())
