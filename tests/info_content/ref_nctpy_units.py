#!/usr/bin/python3
"""Energy units of info_content `energy: nctpy` against nctpy's conventions.

Run with Debian's /usr/bin/python3 (numpy, scipy); the numbers it prints are
committed in tests/info_content/test_ic_kernels.c (energy_units_vs_nctpy).

nctpy (LindenParkesLab/nctpy, energies.py) computes a continuous-time control
task as follows: A normalised as A / (c + max|eig|) - I (c = 1); the joint
state-costate system [[A, -B B^T / (2 rho)], [-2 S, -A^T]] propagated from
(x0, p0) by its exact step exponential at the fixed step dt = 0.001 over
[0, T], p0 chosen so that x(T) = xf (reference state xr = 0); the input
u = -B^T p / (2 rho); and integrate_u(u) = Simpson's rule over the *samples*
of u^2 (unit spacing), per node. This script does the same with its own
code, B = I, rho = 1, T = 1, on the 3-node path graph, for S = 0
(minimum-energy control: x^T W_T^-1 x) and S = I (optimal control).

Simpson with unit spacing is 1/dt = 1000 times Simpson with spacing dt, the
integral of u^T u over [0, T] (to Simpson's error, ~1e-13 here), which is
what info_content reports as energy_nctpy.
"""
import numpy as np
import scipy.integrate as si
import scipy.linalg as sl

DT = 1e-3
A = np.array([[0.0, 1, 0], [1, 0, 1], [0, 1, 0]])
AN = A / (1.0 + np.abs(np.linalg.eigvals(A)).max()) - np.eye(3)


def inputs(x0, xf, S, T=1.0, rho=1.0):
    n = len(AN)
    H = np.block([[AN, -np.eye(n) / (2 * rho)], [-2 * S, -AN.T]])
    E = sl.expm(H * T)
    p0 = np.linalg.solve(E[:n, n:], xf - E[:n, :n] @ x0)
    k = int(round(T / DT))
    step = sl.expm(H * DT)
    z = np.empty((2 * n, k + 1))
    z[:, 0] = np.concatenate([x0, p0])
    for i in range(k):
        z[:, i + 1] = step @ z[:, i]
    assert np.allclose(z[:n, -1], xf, atol=1e-9)
    return -z[n:, :] / (2 * rho)  # u [n, samples]


def gramian_energy(x0, xf, T=1.0):
    w, V = np.linalg.eigh(AN)
    W = (V * (np.expm1(2 * w * T) / (2 * w))) @ V.T
    d = xf - sl.expm(AN * T) @ x0
    return d @ np.linalg.solve(W, d)


e1, e3, ones, zero = np.eye(3)[0], np.eye(3)[2], np.ones(3), np.zeros(3)
for S, tag in [(np.zeros((3, 3)), "S = 0"), (np.eye(3), "S = I")]:
    for x0, xf, name in [(zero, e1, "0 -> e1"), (zero, ones, "0 -> (1,1,1)"), (e1, e3, "e1 -> e3")]:
        u = inputs(x0, xf, S)
        samples = si.simpson(u**2, axis=1).sum()  # integrate_u(u.T).sum()
        integral = si.simpson(u**2, dx=DT, axis=1).sum()
        extra = "   x^T W^-1 x %.12f" % gramian_energy(x0, xf) if tag == "S = 0" else ""
        print("%s %-13s integrate_u sum %.10f   / 1000 = %.12f   integral %.12f%s"
              % (tag, name, samples, samples / 1000, integral, extra))
