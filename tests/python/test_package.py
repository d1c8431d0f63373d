#!/usr/bin/python3
"""Checks of the myelin Python package (python/myelin) against this build's CLI.

Run by tests/python/test_python.c, one test per call:
    /usr/bin/python3 tests/python/test_package.py RoundTrip.test_every_kind_through_myelin
The package is imported from PYTHONPATH (the C suite points it at python/ or
at a `pip install --target` folder). MYELIN_BIN is this build's CLI.
"""
import os
import shutil
import sys
import tempfile
import unittest

import msgpack
import numpy as np

import myelin

MYELIN = os.environ.get("MYELIN_BIN", "myelin")
SRC = os.environ.get("MYELIN_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))


def geometry(dims=(4, 3, 2), keep=None):
    size = int(np.prod(dims))
    vox = np.arange(size, dtype="<u4") if keep is None else np.asarray(keep, "<u4")
    aff = np.diag([2.0, 2.0, 2.0, 1.0])
    aff[:3, 3] = [-4.0, -3.0, -2.0]
    return {"dims": list(dims), "affine": aff, "voxels": vox}


def every_kind(rng):
    """One message of every kind of schemas/ (and events), with small and
    large (>= 4 KiB, padded) tensors of every dtype."""
    g = geometry()
    spk_step = np.sort(rng.integers(0, 32, 40)).astype("<u4")
    return [
        {"kind": "tensor", "seq": 0, "t": 0.5, "name": "eye", "data": np.eye(3, dtype="<f4")},
        {"kind": "tensor", "seq": 1, "data": rng.standard_normal((64, 33)).astype("<f8")},  # 16.9 KB: padded
        {"kind": "tensor", "seq": 2, "data": np.arange(7, dtype="<i2")},
        {"kind": "tensor", "seq": 3, "data": np.arange(5, dtype="<i8") - 2},
        {"kind": "tensor", "seq": 4, "data": np.array([True, False, True])},
        {"kind": "tensor", "seq": 5, "data": np.arange(9000, dtype="<u2")},
        {"kind": "tensor", "seq": 6, "data": np.array(3.5, dtype="<f4")},  # a scalar, shape []
        {"kind": "tensor", "seq": 7, "data": np.zeros((0, 4), dtype="<i4")},
        {"kind": "tensor", "seq": 8, "data": np.arange(6, dtype="|i1").reshape(2, 3)},
        {"kind": "tensor", "seq": 9, "data": np.arange(4, dtype="<u8")},
        {"kind": "sample", "seq": 10, "x": rng.random((8, 8)).astype("<f4"), "label": 3, "index": 0,
         "split": "train", "epoch": 0},
        {"kind": "sample", "seq": 11, "x": rng.integers(0, 255, (28, 28)).astype("|u1"), "label": 7,
         "index": 1, "split": "test", "epoch": 0},
        {"kind": "spikes", "seq": 12, "n": 100, "steps": 32, "dt": 0.001, "step": spk_step,
         "unit": rng.integers(0, 100, 40).astype("<u4"), "label": 1, "index": 2},
        {"kind": "network", "seq": 13, "model": "cuba_lif", "neuron": {"vth": 1.0, "cdecay": 0.5, "vdecay": 0.25},
         "steps": 32, "layers": [{"name": "fc1", "weight": rng.standard_normal((20, 64)).astype("<f4"),
                                  "bias": np.zeros(20, "<f4")},
                                 {"name": "fc2", "weight": rng.standard_normal((10, 20)).astype("<f4")}]},
        {"kind": "metrics", "seq": 14, "stage": "learn", "epoch": 0,
         "values": {"train_accuracy": 0.5, "test_accuracy": 0.25, "loss": 1.5}},
        {"kind": "run", "seq": 15, "data": rng.standard_normal((10, 24)).astype("<f4"), "tr": 2.0,
         "subject": "01", "task": "story", "run": 1, "geometry": g},
        {"kind": "volume", "seq": 16, "data": rng.standard_normal(24).astype("<f4"), "index": 0, "tr": 2.0,
         "subject": "01", "task": "story", "run": 1, "geometry": g},
        {"kind": "features", "seq": 17, "task": "story", "tr": 1.5, "onset": np.array([0.1, 0.7, 2.0]),
         "data": rng.standard_normal((3, 16)).astype("<f4")},
        {"kind": "words", "seq": 18, "words": ["once", "upon", "a"], "onset": np.array([0.0, 0.4, 0.8]),
         "offset": np.array([0.3, 0.7, 0.9]), "task": "story"},
        {"kind": "events", "seq": 19, "sensor": [34, 34, 2], "x": np.array([1, 2], "<u2"),
         "y": np.array([3, 4], "<u2"), "p": np.array([0, 1], "|u1"), "t": np.array([10, 20], "<i8"),
         "label": 4},
        {"kind": "map", "seq": 20, "stat": "isc", "data": rng.standard_normal((3, 24)).astype("<f4"),
         "geometry": g, "subjects": ["01", "02", "03"]},
        {"kind": "predictions", "seq": 21, "data": np.array([0, 5, 1], "<i4"), "prediction": 1, "label": 1},
    ]


def assert_same(tc, a, b, where="msg"):
    if isinstance(a, np.ndarray):
        tc.assertIsInstance(b, np.ndarray, where)
        tc.assertEqual(a.dtype.str, b.dtype.str, where)
        tc.assertEqual(a.shape, b.shape, where)
        tc.assertTrue(np.array_equal(a, b), where)
    elif isinstance(a, dict):
        tc.assertIsInstance(b, dict, where)
        tc.assertEqual(sorted(a), sorted(b), where)
        for k in a:
            assert_same(tc, a[k], b[k], "%s.%s" % (where, k))
    elif isinstance(a, (list, tuple)):
        tc.assertEqual(len(a), len(b), where)
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(tc, x, y, "%s[%d]" % (where, i))
    else:
        tc.assertEqual(a, b, where)


def payload_offsets(raw_bytes):
    """(nbytes, offset in the message) of every tensor payload of one packed message."""
    m = msgpack.unpackb(raw_bytes, raw=False)
    found = []

    def walk(v):
        if myelin.is_tensor(v):
            found.append((len(v["data"]), raw_bytes.find(v["data"]) if len(v["data"]) else 0))
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
    walk(m)
    return found


def myelin_run(yaml_text, *args):
    return myelin.run(yaml_text, cli=MYELIN, args=list(args))


class RoundTrip(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="myelin-py-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.msgs = every_kind(np.random.default_rng(0))

    def test_python_read_write(self):
        path = os.path.join(self.dir, "all.mpk")
        self.assertEqual(myelin.write(path, self.msgs), len(self.msgs))
        back = list(myelin.read(path))
        self.assertEqual(len(back), len(self.msgs))
        for a, b in zip(self.msgs, back):
            assert_same(self, a, b, a["kind"])
        # plain msgpack reads it too (DESIGN: Python reads any stream with msgpack)
        self.assertEqual(len(list(msgpack.Unpacker(open(path, "rb"), raw=False))), len(self.msgs))

    def test_alignment_as_the_runtime_builds(self):
        """Payloads >= 4 KiB at multiples of 64 from the message start (with a
        _pad key), smaller ones at multiples of 8 (without one)."""
        n_big = 0
        for m in self.msgs:
            b = myelin.pack(m)
            for nbytes, off in payload_offsets(b):
                self.assertEqual(off % (64 if nbytes >= 4096 else 8), 0, (m["kind"], nbytes, off))
                n_big += nbytes >= 4096
            raw = msgpack.unpackb(b, raw=False)
            for k, v in raw.items():
                if myelin.is_tensor(v):
                    if len(v["data"]) < 4096:
                        self.assertNotIn("_pad", v, k)
        self.assertGreaterEqual(n_big, 2)
        # the same layout at every position: a small tensor after prefixes of every length
        for pre in range(0, 20):
            for n in (1, 3, 8, 255, 256, 4095, 4096, 70000):
                b = myelin.pack({"kind": "tensor", "name": "x" * pre, "data": np.full(n, 0xC1, "|u1")})  # 0xc1: never a msgpack byte
                [(nbytes, off)] = payload_offsets(b)
                self.assertEqual(off % (64 if n >= 4096 else 8), 0, (pre, n, off))

    def test_every_kind_through_myelin(self):
        """python writes -> file_source -> passthrough -> file_sink (every message
        checked against its kind's schema) -> python reads the same messages."""
        src = os.path.join(self.dir, "in.mpk")
        dst = os.path.join(self.dir, "out.mpk")
        myelin.write(src, self.msgs)
        yaml_text = ("name: rt\nstages:\n"
                     "  - {id: src, plugin: file_source, params: {path: %s}}\n"
                     "  - {id: tap, plugin: passthrough, inputs: [src]}\n"
                     "  - {id: rec, plugin: file_sink, inputs: [tap], params: {path: %s}}\n" % (src, dst))
        res = myelin_run(yaml_text, "--check-messages")
        self.assertEqual(res.returncode, 0)
        back = list(myelin.read(dst))
        self.assertEqual([m["kind"] for m in back], [m["kind"] for m in self.msgs])
        for a, b in zip(self.msgs, back):
            assert_same(self, a, b, a["kind"])
        with open(src, "rb") as f1, open(dst, "rb") as f2:  # file_sink writes the bytes it got
            self.assertEqual(f1.read(), f2.read())

    def test_schema_violation_is_reported(self):
        """The same path refuses a message that breaks its schema (spikes without unit)."""
        src = os.path.join(self.dir, "bad.mpk")
        bad = dict(self.msgs[12])
        del bad["unit"]
        myelin.write(src, [bad])
        yaml_text = ("name: rt\nstages:\n"
                     "  - {id: src, plugin: file_source, params: {path: %s}}\n"
                     "  - {id: rec, plugin: null_sink, inputs: [src]}\n" % src)
        with self.assertRaises(myelin.RunError) as e:
            myelin_run(yaml_text, "--check-messages")
        self.assertEqual(e.exception.returncode, 1)
        self.assertIn("unit", e.exception.stderr)

    def test_write_refuses_what_myelin_cannot_read(self):
        with self.assertRaises(ValueError):
            myelin.pack({"seq": 1})
        with self.assertRaises(TypeError) as e:
            myelin.pack({"kind": "tensor", "data": np.zeros(3, np.float16)})
        self.assertIn("tensor.data", str(e.exception))
        big_endian = np.arange(4, dtype=">f4")
        back = myelin.unpack(myelin.pack({"kind": "tensor", "data": big_endian}))
        self.assertEqual(back["data"].dtype.str, "<f4")
        self.assertTrue(np.array_equal(back["data"], big_endian))


class FromMyelin(unittest.TestCase):
    """Streams myelin's own stages wrote, read with the package."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="myelin-py-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def test_samples_spikes_stack(self):
        rng = np.random.default_rng(1)
        x = rng.random((12, 4, 5)).astype("<f4")
        y = rng.integers(0, 10, 12).astype("<i8")
        np.save(os.path.join(self.dir, "x.npy"), x)
        np.save(os.path.join(self.dir, "y.npy"), y)
        yaml_text = ("name: enc\nstages:\n"
                     "  - {id: ds, plugin: dataset, params: {path: %(d)s/x.npy, labels: %(d)s/y.npy, split: train}}\n"
                     "  - {id: enc, plugin: spike_encoder, inputs: [ds], params: {method: rate, steps: 16}}\n"
                     "  - {id: s, plugin: file_sink, inputs: [ds], params: {path: '${OUT}/samples.mpk'}}\n"
                     "  - {id: k, plugin: file_sink, inputs: [enc], params: {path: '${OUT}/spikes.mpk'}}\n"
                     % {"d": self.dir})
        res = myelin_run(yaml_text)
        self.assertEqual(sorted(res), ["samples.mpk", "spikes.mpk"])
        X, lab, ctx = myelin.stack(res.path("samples.mpk"), "x")
        self.assertTrue(np.array_equal(X, x))
        self.assertTrue(np.array_equal(lab, y))
        self.assertTrue(np.array_equal(ctx["index"], np.arange(12)))
        self.assertEqual(list(ctx["split"]), ["train"] * 12)
        spikes = res["spikes.mpk"]
        self.assertEqual(len(spikes), 12)
        for i, m in enumerate(spikes):
            self.assertEqual(m["kind"], "spikes")
            self.assertEqual((m["n"], m["steps"], m["label"]), (20, 16, int(y[i])))
            key = m["step"].astype(np.int64) * m["n"] + m["unit"]
            self.assertTrue(np.all(np.diff(key) > 0))  # sorted by step, then unit
            self.assertNotIn("_pad", m)
        with self.assertRaises(ValueError) as e:  # events of different counts do not stack
            myelin.stack(res.path("spikes.mpk"), "step")
        self.assertIn("cannot stack", str(e.exception))

    def test_isc_map_to_nifti_matches_nifti_sink(self):
        """runs written with myelin.write -> isc -> map: to_nifti equals the image
        nifti_sink wrote from the same map (grid, affine, values)."""
        import nibabel as nib
        rng = np.random.default_rng(2)
        dims, T, S = (5, 4, 3), 30, 4
        keep = np.flatnonzero(rng.random(int(np.prod(dims))) < 0.7).astype("<u4")  # a mask
        g = geometry(dims, keep)
        shared = rng.standard_normal(T)
        runs = []
        for s in range(S):
            data = rng.standard_normal((T, keep.size)) + np.outer(shared, np.linspace(0, 2, keep.size))
            runs.append({"kind": "run", "subject": "%02d" % (s + 1), "task": "story", "run": 1, "tr": 2.0,
                         "data": data.astype("<f4"), "geometry": g})
        myelin.write(os.path.join(self.dir, "runs.mpk"), runs)
        yaml_text = ("name: isc\nstages:\n"
                     "  - {id: src, plugin: file_source, params: {path: '${DATA}/runs.mpk'}}\n"
                     "  - {id: isc, plugin: isc, inputs: [src]}\n"
                     "  - {id: m, plugin: file_sink, inputs: [isc.map], params: {path: '${OUT}/isc.mpk'}}\n"
                     "  - {id: n, plugin: nifti_sink, inputs: [isc.map], params: {path: '${OUT}/isc.nii.gz'}}\n")
        res = myelin.run(yaml_text, cli=MYELIN, data=self.dir, isc__summary="mean")
        self.assertIn("isc.nii.gz", res)
        [m] = res["isc.mpk"]
        self.assertEqual(m["data"].shape, (S, keep.size))
        img = myelin.to_nifti(m)
        ref = res["isc.nii.gz"]
        self.assertEqual(img.shape, ref.shape)
        self.assertTrue(np.allclose(img.affine, ref.affine))
        self.assertTrue(np.allclose(img.get_fdata(), ref.get_fdata(), equal_nan=True))
        vol, aff = myelin.to_volume(m, fill=np.nan)
        self.assertEqual(vol.shape, dims + (S,))
        self.assertEqual(int(np.isnan(vol[..., 0]).sum()), int(np.prod(dims)) - keep.size)

    def test_run_errors_and_sets(self):
        yaml_text = "name: g\nstages:\n  - {id: gen, plugin: gen_source, params: {count: 3}}\n" \
                    "  - {id: rec, plugin: file_sink, inputs: [gen], params: {path: '${OUT}/g.mpk'}}\n"
        res = myelin.run(yaml_text, cli=MYELIN, gen__count=7, **{"gen.bytes": 16})
        self.assertEqual(len(res["g.mpk"]), 7)
        with self.assertRaises(myelin.RunError) as e:
            myelin.run(yaml_text, cli=MYELIN, gen__nope=1)
        self.assertEqual(e.exception.returncode, 2)
        self.assertIn("nope", e.exception.stderr)
        with self.assertRaises(TypeError):
            myelin.run(yaml_text, cli=MYELIN, count=1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
