"""Simulates an exported .nir as snnTorch's NIR importer would run it, with numpy.

usage: nir_import_sim.py EXPORTED.nir INPUTS.u8 LABELS.u8 LOIHI_COUNTS.i4 STEPS
  INPUTS.u8        uint8 [S, STEPS, n_in] binary input spikes of S samples
  LABELS.u8        uint8 [S] labels
  LOIHI_COUNTS.i4  int32 [S, n_out] output spike counts of the same samples
                   from loihi_sim on the .net (bit-accurate Loihi, STEPS input
                   steps plus one flush step per layer)

snnTorch and nir are not packaged in Debian, so this is our own numpy
restatement of the conversion that snnTorch's importer applies (read in
jeshraghian/snntorch, snntorch/import_nir.py, function
_nir_to_snntorch_module, commit 634fc22385ec5581998e62787bbe39b53662140f of
2026-05-11; the same in release v0.9.4) and of the neuron it builds
(snntorch/_neurons/synaptic.py Synaptic.forward with reset_mechanism="zero",
reset_delay=False; firing in snntorch/_neurons/neurons.py fire(), which is
surrogate ATan's forward: spike where mem - threshold > 0):

  Affine (weight W, bias b)  -> torch.nn.Linear: cur = W x + b
  CubaLIF, with dt = 1e-4 fixed inside the importer (no dt argument):
    requires v_leak == 0 and r == tau_mem / dt (else "r not supported in
    CubaLIF"); alpha = 1 - dt / tau_syn, beta = 1 - dt / tau_mem;
    w_scale = w_in * dt / tau_syn, and when w_scale is not 1 the threshold
    becomes v_threshold / w_scale (its "hack_w_scale"); one threshold per
    layer is required.
  Synaptic step: syn = alpha syn + cur; mem = beta mem + syn;
    spk = mem > threshold; mem = 0 where spk (syn keeps its value).

nirtorch runs the nodes in graph order within one call, one call per time
step, so a spike crosses every layer in the step it is emitted; Loihi adds
one step per layer, which the STEPS + L flush steps of loihi_sim absorb:
the output counts over STEPS steps here correspond to loihi_sim's over
STEPS + L steps.

The file's own dt (graph metadata) is used, and it must equal the
importer's fixed 1e-4 for snnTorch to load the file at all. Prints the
accuracies and agreement, and fails (exit 1) when the simulation disagrees
with loihi_sim beyond rounding (accuracy within 0.03, predictions agree on
>= 90% of the samples, total output spikes within 10%).
"""
import sys

import h5py
import numpy as np

SNNTORCH_DT = 1e-4  # hard-coded in snntorch/import_nir.py


def text(x):
    return x.decode() if isinstance(x, bytes) else str(x)


def read_graph(path):
    with h5py.File(path, "r") as f:
        node = f["node"]
        nodes = {}
        for name, g in node["nodes"].items():
            kind = text(g["type"][()])
            nodes[name] = (kind, {k: g[k][()] for k in g if k != "type"})
        edges = [(text(a), text(b)) for a, b in node["edges"][()]]
        dt = float(node["metadata"]["dt"][()])
    return nodes, edges, dt


def chain(nodes, edges):
    """Node names from input to output (the exported graph is a chain)."""
    nxt = dict(edges)
    assert len(nxt) == len(edges), "not a chain"
    order, cur = [], "input"
    while cur != "output":
        cur = nxt[cur]
        order.append(cur)
    return order[:-1]


def snntorch_cubalif(p, dt):
    """The importer's CubaLIF -> snn.Synaptic(alpha, beta, threshold)."""
    if not np.allclose(p["v_leak"], 0):
        raise ValueError("v_leak not supported")
    if not np.allclose(p["r"], p["tau_mem"] / dt):
        raise ValueError("r not supported in CubaLIF")
    alpha = 1 - dt / p["tau_syn"]
    beta = 1 - dt / p["tau_mem"]
    vthr = p["v_threshold"]
    w_scale = p["w_in"] * (dt / p["tau_syn"])
    if not np.allclose(w_scale, 1.0):
        vthr = vthr / w_scale
    if np.unique(vthr).size != 1:
        raise ValueError("CubaLIF v_thr must be same for all neurons")
    return alpha, beta, float(np.unique(vthr)[0]), w_scale


def simulate(layers, inputs):
    """inputs [S, T, n_in] -> output spike counts [S, n_out]."""
    S, T, _ = inputs.shape
    syn = [np.zeros((S, W.shape[0])) for W, _, _, _, _ in layers]
    mem = [np.zeros((S, W.shape[0])) for W, _, _, _, _ in layers]
    counts = np.zeros((S, layers[-1][0].shape[0]), dtype=np.int64)
    for t in range(T):
        x = inputs[:, t, :].astype(np.float64)
        for k, (W, b, alpha, beta, vthr) in enumerate(layers):
            syn[k] = alpha * syn[k] + (x @ W.T + b)
            mem[k] = beta * mem[k] + syn[k]
            spk = mem[k] > vthr
            mem[k][spk] = 0.0
            x = spk.astype(np.float64)
        counts += x.astype(np.int64)
    return counts


def main():
    nir_path, in_path, lab_path, cnt_path, steps = sys.argv[1:6]
    steps = int(steps)
    nodes, edges, dt = read_graph(nir_path)
    order = chain(nodes, edges)
    layers, W = [], None
    for name in order:
        kind, p = nodes[name]
        if kind == "Affine":
            W, b = p["weight"].astype(np.float64), p["bias"].astype(np.float64)
        elif kind == "CubaLIF":
            alpha, beta, vthr, w_scale = snntorch_cubalif(p, dt)
            layers.append((W, b, alpha, beta, vthr))
            print(f"{name}: alpha {np.unique(alpha)}, beta {np.unique(beta)}, threshold {vthr:g}, "
                  f"w_scale {np.unique(w_scale)}")
        else:
            raise ValueError(f"unexpected node {name}: {kind}")
    n_in, n_out = layers[0][0].shape[1], layers[-1][0].shape[0]
    labels = np.fromfile(lab_path, dtype=np.uint8)
    S = labels.size
    inputs = np.fromfile(in_path, dtype=np.uint8).reshape(S, steps, n_in)
    loihi = np.fromfile(cnt_path, dtype=np.int32).reshape(S, n_out)
    # snnTorch loads the file only at its own dt
    try:
        snntorch_cubalif(nodes[order[1]][1], SNNTORCH_DT)
        importable = True
    except ValueError as e:
        importable = False
        print(f"snnTorch's importer (dt = {SNNTORCH_DT}) rejects this file: {e}")
    counts = simulate(layers, inputs)
    pred, pred_l = counts.argmax(1), loihi.argmax(1)
    acc, acc_l = (pred == labels).mean(), (pred_l == labels).mean()
    agree = (pred == pred_l).mean()
    tot, tot_l = counts.sum(), loihi.sum()
    print(f"dt {dt:g}; snnTorch-importable {importable}; NIR sim accuracy {acc:.3f}, "
          f"loihi_sim {acc_l:.3f}; predictions agree {agree:.3f}; output spikes {tot} vs {tot_l}")
    ok = importable and abs(acc - acc_l) <= 0.03 and agree >= 0.9 and abs(tot - tot_l) <= 0.1 * tot_l
    print("OK" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
