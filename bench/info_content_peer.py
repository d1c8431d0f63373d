#!/usr/bin/python3
"""Peers for bench/info_content.sh (Debian /usr/bin/python3: numpy, scipy, sklearn).

  gen DIR N M TREF        write A.bin, X.bin, R.bin (float64, C order)
  energy DIR N M K        numpy closed form for all M states; the paper's
                          per-state method (scipy expm + 1000-step simulation,
                          weningerleon/InformationContent_HCP min_cont_nrj.m)
                          on the first K states, extrapolated; compares with
                          DIR/energy.bin from the C driver
  kde DIR N M TREF P      sklearn KernelDensity on the first P parcels,
                          extrapolated to N; compares with DIR/kde.bin
  mpk DIR N M TREF        runs.mpk (rest = R, task = X, as <f4 `run` messages)
                          and connectome.npy (= A) for the pipeline timing
Prints "key value [cpu_value]" lines (wall-clock and process CPU seconds).
"""
import sys
import time

import numpy as np


def load(d, name, shape):
    return np.fromfile(f"{d}/{name}", dtype="<f8").reshape(shape)


def gen(d, n, m, tref):
    rng = np.random.default_rng(0)
    i = np.arange(n)
    dist = np.minimum(abs(i[:, None] - i[None, :]), n - abs(i[:, None] - i[None, :]))
    A = rng.gamma(2.0, 1.0, (n, n)) * np.exp(-dist / (n / 8)) * (rng.random((n, n)) < 0.5)
    A = np.triu(A, 1)
    A = A + A.T
    mix = np.eye(n) + 0.3 * A / np.abs(np.linalg.eigvalsh(A)).max()
    R = rng.standard_normal((tref, n)) @ mix.T
    X = 1.3 * rng.standard_normal((m, n)) @ mix.T
    A.astype("<f8").tofile(f"{d}/A.bin")
    X.astype("<f8").tofile(f"{d}/X.bin")
    R.astype("<f8").tofile(f"{d}/R.bin")


def paper_prepare(A):
    A = np.triu(A, 1)
    A = A + A.T
    return A / np.sum(np.abs(A))


def energy(d, n, m, k):
    import scipy.linalg as la
    A = load(d, "A.bin", (n, n))
    X = load(d, "X.bin", (m, n))
    ours = np.fromfile(f"{d}/energy.bin", dtype="<f8")
    # numpy/scipy closed form (same mathematics as the C kernels)
    t0, c0 = time.perf_counter(), time.process_time()
    Ap = paper_prepare(A)
    w, V = np.linalg.eigh(Ap)
    lam = w / (w[np.argmax(np.abs(w))] * 1.001) - 1
    T, st = 10.0, 1000
    r = np.exp(-2 * lam * T / st)
    gain = (lam / np.sinh(lam * T)) ** 2 * (1 - r ** (st + 1)) / (1 - r) / (n * (st + 1))
    closed = ((X @ V) ** 2 * gain).sum(1)
    t1, c1 = time.perf_counter(), time.process_time()
    print(f"numpy_closed_form {t1 - t0:.6f} {c1 - c0:.6f}")
    print(f"diff_closed_form {np.max(np.abs(ours - closed) / np.abs(closed)):.3e}")
    # the paper's per-state method (min_cont_nrj.m in scipy), on k states
    t0, c0 = time.perf_counter(), time.process_time()
    per = []
    for j in range(k):
        An = Ap / (w[np.argmax(np.abs(w))] * 1.001) - np.eye(n)
        AT = np.block([[An, -0.5 * np.eye(n)], [np.zeros((n, n)), -An.T]])
        E = la.expm(AT * T)
        p0 = np.linalg.pinv(E[:n, n:]) @ X[j]
        Et = la.expm(AT * T / st)
        v = np.concatenate([np.zeros(n), p0])
        acc = np.sum((0.5 * v[n:]) ** 2)
        for _ in range(st):
            v = Et @ v
            acc += np.sum((0.5 * v[n:]) ** 2)
        per.append(acc / (n * (st + 1)))
    t1, c1 = time.perf_counter(), time.process_time()
    per = np.array(per)
    print(f"paper_per_state_each {(t1 - t0) / k:.6f} {(c1 - c0) / k:.6f}")
    print(f"paper_per_state_extrapolated {(t1 - t0) / k * m:.3f} {(c1 - c0) / k * m:.3f}")
    print(f"diff_paper_method {np.max(np.abs(ours[:k] - per) / np.abs(per)):.3e}")


def kde(d, n, m, tref, p):
    from sklearn.neighbors import KernelDensity
    X = load(d, "X.bin", (m, n))
    R = load(d, "R.bin", (tref, n))
    ours = np.fromfile(f"{d}/kde.bin", dtype="<f8").reshape(m, n)
    t0, c0 = time.perf_counter(), time.process_time()
    diff = 0.0
    for k in range(p):
        h = 1.06 * R[:, k].std() * tref ** -0.2
        model = KernelDensity(bandwidth=h, kernel="gaussian").fit(R[:, [k]])
        ic = -model.score_samples(X[:, [k]])
        diff = max(diff, np.max(np.abs(ours[:, k] - ic) / np.abs(ic)))
    t1, c1 = time.perf_counter(), time.process_time()
    print(f"sklearn_kde_parcels {p}")
    print(f"sklearn_kde_subset {t1 - t0:.3f} {c1 - c0:.3f}")
    print(f"sklearn_kde_extrapolated {(t1 - t0) / p * n:.3f} {(c1 - c0) / p * n:.3f}")
    print(f"diff_sklearn {diff:.3e}")


def mpk(d, n, m, tref):
    import msgpack
    A = load(d, "A.bin", (n, n))
    np.save(f"{d}/connectome.npy", A)
    labels = [f"p{k}" for k in range(n)]
    with open(f"{d}/runs.mpk", "wb") as f:
        for task, x in (("rest", load(d, "R.bin", (tref, n))), ("task", load(d, "X.bin", (m, n)))):
            x = np.ascontiguousarray(x, dtype="<f4")
            f.write(msgpack.packb({"kind": "run", "data": {"dtype": "<f4", "shape": list(x.shape), "data": x.tobytes()},
                                   "tr": 0.72, "subject": "b", "task": task, "run": 1,
                                   "geometry": {"atlas": "bench", "labels": labels}}, use_bin_type=True))


if __name__ == "__main__":
    cmd, d = sys.argv[1], sys.argv[2]
    a = [int(v) for v in sys.argv[3:]]
    {"gen": gen, "energy": energy, "kde": kde, "mpk": mpk}[cmd](d, *a)
