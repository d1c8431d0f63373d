"""Independent check of loihi_export's files with h5py (Debian python3-h5py).

usage: check_export.py EXPORTED.net EXPORTED.nir REFERENCE.net
Reads the netx file the way lava-dl's NetDict does and the NIR file the way
nir.read does (field names per node type, edges, shapes), compares every
netx item's dtype with lava-dl's own file, and calls nir.read when the nir
package is installed. Prints OK or raises.
"""
import sys

import h5py
import numpy as np

net_path, nir_path, ref_path = sys.argv[1:4]


def items(f):
    out = {}
    f.visititems(lambda name, obj: out.__setitem__(name, obj))
    return out


with h5py.File(net_path, "r") as f, h5py.File(ref_path, "r") as r:
    mine, ref = items(f), items(r)
    assert set(mine) == set(ref), set(mine) ^ set(ref)
    for name, obj in ref.items():
        assert len(mine[name].attrs) == 0 and len(obj.attrs) == 0, name
        if isinstance(obj, h5py.Dataset):
            assert mine[name].dtype == obj.dtype, (name, mine[name].dtype, obj.dtype)
            assert mine[name].shape == obj.shape, (name, mine[name].shape, obj.shape)
    layers = f["layer"]
    for i in range(len(layers)):
        g = layers[str(i)]
        assert g["type"][0].decode("ascii") == "dense"
        assert g["neuron"]["type"][()].decode("ascii") == "CUBA"
        w = g["weight"][()]
        assert w.dtype == np.float32 and np.all(w == np.round(w)), "weights not integers"
        assert np.all(w % 2 == 0) and w.min() >= -256 and w.max() <= 254, "weights not 8-bit even"
        assert int(g["outFeatures"][()]) == w.shape[0] and int(g["inFeatures"][()]) == w.shape[1]
        assert list(g["shape"][()]) == [w.shape[0]]
        for k in ("iDecay", "vDecay", "vThMant", "refDelay"):
            assert g["neuron"][k].dtype == np.int64
        assert 0 <= int(g["neuron"]["iDecay"][()]) <= 4096
        assert 0 < int(g["neuron"]["vThMant"][()]) < 2**17
        assert bool(g["neuron"]["gradedSpike"][()]) is False

FIELDS = {
    "Input": {"type", "shape"},
    "Output": {"type", "shape"},
    "Affine": {"type", "weight", "bias"},
    "CubaLIF": {"type", "tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in"},
}
with h5py.File(nir_path, "r") as f:
    assert isinstance(f["version"][()].decode("utf8"), str)
    node = f["node"]
    assert set(node.keys()) == {"type", "nodes", "edges", "metadata"}
    assert node["type"][()] == b"NIRGraph"
    dt = float(node["metadata"]["dt"][()])  # seconds per step (nir.NIRGraph metadata)
    assert dt > 0
    sizes = {}
    for name, g in node["nodes"].items():
        t = g["type"][()].decode("utf8")
        assert set(g.keys()) == FIELDS[t], (name, set(g.keys()))
        for k in FIELDS[t] - {"type"}:  # arrays gzip'd, as nir.write
            assert g[k].compression == "gzip", (name, k, g[k].compression)
        if t == "Affine":
            sizes[name] = (g["weight"].shape[1], g["weight"].shape[0])
            assert g["bias"].shape == (g["weight"].shape[0],)
        elif t == "CubaLIF":
            n = g["v_threshold"].shape[0]
            for k in FIELDS[t] - {"type"}:
                assert g[k].shape == (n,), (name, k)
            sizes[name] = (n, n)
            assert np.allclose(g["r"][()], g["tau_mem"][()] / dt)
            assert np.allclose(g["w_in"][()], g["tau_syn"][()] / dt)
        else:
            n = int(g["shape"][()][0])
            sizes[name] = (n, n)
    edges = [(a.decode("utf8"), b.decode("utf8")) for a, b in node["edges"][()]]
    for a, b in edges:
        assert a in sizes and b in sizes, (a, b)
        assert sizes[a][1] == sizes[b][0], ("shape mismatch", a, b)
try:
    import nir  # not packaged in Debian; used when present
except ImportError:
    nir = None
if nir is not None:
    g = nir.read(nir_path)
    assert "lif0" in g.nodes
print("OK")
