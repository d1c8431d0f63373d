#!/usr/bin/python3
"""Reference values for tests/encoding/test_ridge.c, from Debian's sklearn.

Run once with /usr/bin/python3; the numbers it prints are committed in the
test. The data construction here is the one written in the test file:
LCG s <- (1664525 s + 1013904223) mod 2^32, u = s / 2^32 - 0.5, s0 = 12345;
X [60, 8] drawn row by row, x = u * (j + 1) + j for column j; W [8, 5] drawn
row by row, w = 0.05 u; E [60, 5] drawn row by row; column k of Y is
5 + sum_j X[i, j] W[j, k] (summed in j order) + noise[k] * E[i, k] with
noise = 0.01, 0.1, 0.5, 1, 3, then rounded to float32. data_ill(): the
float64 ill-conditioned responses (offset 1e5, SD ~0.02) of the same draws.
"""
import numpy as np
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold
from sklearn.preprocessing import StandardScaler

N, P, K = 60, 8, 5
NOISE = [0.01, 0.1, 0.5, 1.0, 3.0]
ALPHAS = np.logspace(-1, 8, 10)


def lcg(seed=12345):
    s = seed
    while True:
        s = (1664525 * s + 1013904223) % 2**32
        yield s / 2**32 - 0.5


def data():
    g = lcg()
    X = np.array([[next(g) * (j + 1) + j for j in range(P)] for _ in range(N)])
    W = np.array([[0.05 * next(g) for _ in range(K)] for _ in range(P)])
    E = np.array([[next(g) for _ in range(K)] for _ in range(N)])
    Y = np.empty((N, K))
    for i in range(N):
        for k in range(K):
            acc = 5.0
            for j in range(P):
                acc += X[i, j] * W[j, k]
            Y[i, k] = acc + NOISE[k] * E[i, k]
    return X, Y.astype(np.float32).astype(np.float64)


def data_ill():
    """Ill-conditioned float64 responses: YILL[i][k] = 1e5 + 0.02 * (sum_j
    X[i, j] W[j, k] (from 0, in j order) + noise[k] E[i, k]), no rounding.
    Rounded to float32 (spacing 2^-7 near 1e5), most of the signal is lost."""
    g = lcg()
    X = np.array([[next(g) * (j + 1) + j for j in range(P)] for _ in range(N)])
    W = np.array([[0.05 * next(g) for _ in range(K)] for _ in range(P)])
    E = np.array([[next(g) for _ in range(K)] for _ in range(N)])
    Y = np.empty((N, K))
    for i in range(N):
        for k in range(K):
            acc = 0.0
            for j in range(P):
                acc += X[i, j] * W[j, k]
            Y[i, k] = 1e5 + 0.02 * (acc + NOISE[k] * E[i, k])
    return X, Y


def pearson(a, b):
    a = a - a.mean(0)
    b = b - b.mean(0)
    den = np.sqrt((a**2).sum(0)) * np.sqrt((b**2).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * b).sum(0) / den
    return np.where(den > 0, r, 0.0)


def encode(X, Y, centered=False, **kw):
    """centered: score the prediction without its intercept (X_te coef_, same
    r in exact arithmetic). predict() adds intercept_ (~1e5 for YILL) to a
    part that is ~1e-9 at alpha = 1e8, which rounds it to a few ulps of 1e5
    and moves r by up to 5e-4 in a fold; the centered prediction does not."""
    rs, picks = [], []
    for tr, te in KFold(5).split(X):
        sc = StandardScaler().fit(X[tr])
        m = RidgeCV(alphas=ALPHAS, **kw).fit(sc.transform(X[tr]), Y[tr])
        pred = sc.transform(X[te]) @ m.coef_.T if centered else m.predict(sc.transform(X[te]))
        rs.append(pearson(Y[te], pred))
        picks.append(np.searchsorted(ALPHAS, np.broadcast_to(m.alpha_, (K,))))
    return np.array(rs), np.array(picks)


def show(name, rs, picks):
    print(f"/* {name} */")
    print("static const double R_MEAN[K] = {" + ", ".join(f"{v:.17g}" for v in rs.mean(0)) + "};")
    print("static const int PICK[FOLDS][K] = {" +
          ", ".join("{" + ", ".join(str(int(v)) for v in row) + "}" for row in picks) + "};")


if __name__ == "__main__":
    X, Y = data()
    print("/* X[0][:3] =", X[0, :3].tolist(), " Y[0][:2] =", Y[0, :2].tolist(), "*/")
    show("gcv, alpha_per_target=True", *encode(X, Y, alpha_per_target=True))
    show("gcv, alpha_per_target=False", *encode(X, Y))
    show("cv=KFold(3), alpha_per_target=False", *encode(X, Y, cv=KFold(3)))
    # Wide design (80 > 48 training rows: sklearn's gcv_mode "eigen"): FIR
    # delays 0..9 of X, zero padded (row t holds X[t - d] in columns d*8..).
    Xw = np.zeros((N, 10 * P))
    for d in range(10):
        Xw[d:, d * P:(d + 1) * P] = X[: N - d]
    show("wide (delays 0..9), gcv, alpha_per_target=True", *encode(Xw, Y, alpha_per_target=True))
    show("wide (delays 0..9), gcv, alpha_per_target=False", *encode(Xw, Y))
    Xi, Yi = data_ill()
    show("float64 YILL, gcv, alpha_per_target=True, centered prediction",
         *encode(Xi, Yi, centered=True, alpha_per_target=True))
    show("float32(YILL): what rounding the input gives", *encode(Xi, Yi.astype(np.float32).astype(np.float64),
                                                               alpha_per_target=True))
